//! The card with its term memory in DRAM, emulated in this process behind the engine trait.
//!
//! The book lies in external memory as the external-memory scan block reads it
//! ([`liqscan_hdl::extmem::Layout`]); a tick lists the groups exposed to the asset and runs
//! the block's cycle model ([`StreamModel::run_inc`], checked cycle for cycle against the
//! rust-hdl block in `hdl/tests/ext_scan.rs`) against a memory model with the DDR3
//! controller's simulated timing; a batch tick runs its full scan. The words the model sends are
//! the bitmaps, so they are the block's, not the software engine's (the tests hold the two equal).
//! With pacing on, a call returns no sooner than the block's cycles take at its clock, so a
//! caller that times it (the router's cost model) sees the card's speed, not the host's.
//!
//! A term write re-checks its group by the block's golden model ([`inc_scan_model`]) rather
//! than the cycle model: the block has no write path yet (the host would write DRAM by DMA),
//! so there is no cycle count to model.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use liqscan_hdl::abi::config::LANES;
use liqscan_hdl::abi::{CARD_ASSETS, Coeff, PriceEntry, check_terms};
use liqscan_hdl::extmem::{
    BitmapWord, IncGroups, Layout, MemTiming, StreamModel, inc_scan_model, term_word, word_term,
};

use super::{EngineError, ScanEngine};
use crate::bitmap::words_for;

/// How the emulated DRAM card is built.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DramConfig {
    /// Memory channels.
    pub channels: usize,
    /// Term words per memory word (a 128-bit port: 2).
    pub words_per_beat: usize,
    /// Term slots per account (an account with more stays on software).
    pub term_slots: usize,
    /// The readers' prefetch buffer, in memory words.
    pub buffer_words: usize,
    /// The memory's timing.
    pub timing: MemTiming,
    /// The block's clock, MHz.
    pub mhz: f64,
    /// Return from a scan no sooner than its cycles take at `mhz`.
    pub pace: bool,
}

impl DramConfig {
    /// The LFE5U-85F with DDR3 (docs/CROSSOVER.md): one 128-bit native port of LiteDRAM's
    /// controller at 75 MHz, simulated at 0.414 words a cycle after a 23-cycle first read with
    /// 16 reads in flight; 4 term slots an account; paced.
    pub fn ddr3() -> DramConfig {
        let mut timing = MemTiming::fixed(23, 29, 70);
        timing.queue = 16;
        DramConfig {
            channels: 1,
            words_per_beat: 2,
            term_slots: 4,
            buffer_words: 512,
            timing,
            mhz: 75.0,
            pace: true,
        }
    }
}

/// What the emulated DRAM card did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DramStats {
    /// Block cycles of every scan run (full and incremental).
    pub cycles: u64,
    /// Full scans (batch ticks).
    pub full_scans: u64,
    /// Incremental scans (ticks with at least one exposed group).
    pub inc_scans: u64,
    /// Groups the incremental scans read.
    pub groups_read: u64,
}

/// The card with its book in DRAM, emulated: see the module's docs.
pub struct DramCard {
    cfg: DramConfig,
    slots: usize,
    lay: Layout,
    model: StreamModel,
    img: Vec<Vec<u64>>,
    prices: Vec<PriceEntry>,
    breach: Vec<u64>,
    at_risk: Vec<u64>,
    changed: Vec<u32>,
    marked: Vec<u64>,
    /// Per asset, the groups holding a non-zero term of it and how many such terms: the host's
    /// exposure index, which lists a tick's groups to the block.
    exposure: Vec<HashMap<u32, u32>>,
    groups: Vec<u32>,
    /// The words a scan sent, kept between scans (the model borrows the image while it sends).
    words: Vec<BitmapWord>,
    stats: DramStats,
}

impl DramCard {
    /// A card of `slots` accounts over `assets` assets (at most [`CARD_ASSETS`]).
    pub fn new(slots: usize, assets: usize, cfg: DramConfig) -> Result<DramCard, String> {
        if assets > CARD_ASSETS {
            return Err(format!("the DRAM card takes at most {CARD_ASSETS} assets, not {assets}"));
        }
        let lay = Layout::new(cfg.channels, cfg.words_per_beat, cfg.term_slots, slots.max(1))
            .map_err(|e| e.to_string())?;
        let words = words_for(slots);
        Ok(DramCard {
            cfg,
            slots,
            lay,
            model: StreamModel::new(lay, cfg.buffer_words),
            img: vec![vec![0; lay.words_per_channel() * lay.k]; lay.ch],
            prices: vec![PriceEntry::default(); assets],
            breach: vec![0; words],
            at_risk: vec![0; words],
            changed: Vec::new(),
            marked: vec![0; words.div_ceil(64)],
            exposure: vec![HashMap::new(); assets],
            groups: Vec::new(),
            words: Vec::new(),
            stats: DramStats::default(),
        })
    }

    /// What the card did so far.
    pub fn stats(&self) -> DramStats {
        self.stats
    }

    fn word_at(&mut self, account: usize, slot: usize) -> &mut u64 {
        let (c, addr, k) = self.lay.place(account, slot);
        &mut self.img[c][addr * self.lay.k + k]
    }

    /// Counts the account's non-zero terms in the exposure index (`by` +1 or -1).
    fn expose(&mut self, account: usize, by: i32) {
        let group = (account / LANES) as u32;
        for s in 0..self.lay.slots {
            let t = word_term(*self.word_at(account, s));
            if t.coeff == 0 {
                continue;
            }
            let index = &mut self.exposure[t.asset as usize];
            let n = index.entry(group).or_insert(0);
            *n = n.wrapping_add_signed(by);
            if *n == 0 {
                index.remove(&group);
            }
        }
    }

    /// Takes a word the block sent into the bitmaps.
    fn apply(&mut self, w: BitmapWord) {
        for l in 0..LANES {
            let a = w.offset as usize + l;
            if a >= self.slots {
                break;
            }
            let (i, bit) = (a / 64, 1u64 << (a % 64));
            let (b, r) = (w.breach >> l & 1 == 1, w.at_risk >> l & 1 == 1);
            if (self.breach[i] & bit != 0) != b || (self.at_risk[i] & bit != 0) != r {
                self.breach[i] = self.breach[i] & !bit | if b { bit } else { 0 };
                self.at_risk[i] = self.at_risk[i] & !bit | if r { bit } else { 0 };
                if self.marked[i / 64] >> (i % 64) & 1 == 0 {
                    self.marked[i / 64] |= 1 << (i % 64);
                    self.changed.push(i as u32);
                }
            }
        }
    }

    /// Takes a scan's words into the bitmaps and keeps the buffer for the next scan.
    fn take_words(&mut self, mut words: Vec<BitmapWord>) {
        for &w in &words {
            self.apply(w);
        }
        words.clear();
        self.words = words;
    }

    /// Waits out what the block's `cycles` take at its clock, counted from `start`.
    fn pace(&self, start: Instant, cycles: u64) {
        if self.cfg.pace {
            let due = Duration::from_secs_f64(cycles as f64 / (self.cfg.mhz * 1e6));
            if let Some(left) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(left);
            }
        }
    }

    fn write(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        if slot as usize >= self.slots {
            return Err(EngineError::SlotOutOfRange { slot, slots: self.slots });
        }
        check_terms(terms, self.prices.len()).map_err(|source| EngineError::BadTerms { slot, source })?;
        if terms.len() > self.lay.slots {
            return Err(EngineError::TooManyTermsForCard { slot, terms: terms.len(), max: self.lay.slots });
        }
        let a = slot as usize;
        self.expose(a, -1);
        for s in 0..self.lay.slots {
            *self.word_at(a, s) = terms.get(s).map_or(0, |&t| term_word(t));
        }
        self.expose(a, 1);
        let group = [(a / LANES) as u32];
        for w in inc_scan_model(&self.lay, &self.img, &self.prices, &group) {
            self.apply(w);
        }
        Ok(())
    }
}

impl ScanEngine for DramCard {
    fn name(&self) -> &'static str {
        "card-dram"
    }
    fn slots(&self) -> usize {
        self.slots
    }
    fn assets(&self) -> usize {
        self.prices.len()
    }
    fn upsert(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        self.write(slot, terms)
    }
    fn remove(&mut self, slot: u32) -> Result<(), EngineError> {
        self.write(slot, &[])
    }
    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError> {
        let assets = self.prices.len();
        let entry =
            self.prices.get_mut(asset as usize).ok_or(EngineError::AssetOutOfRange { asset, assets })?;
        *entry = price;
        let mut groups = std::mem::take(&mut self.groups);
        groups.clear();
        groups.extend(self.exposure[asset as usize].keys());
        if groups.is_empty() {
            self.groups = groups;
            return Ok(());
        }
        // The host lists them in DRAM order, so the block's reads run forward.
        groups.sort_unstable();
        let start = Instant::now();
        let mut words = std::mem::take(&mut self.words);
        let inc = IncGroups { groups: &groups, stall: 0, seed: 0 };
        let run = self.model.run_inc(
            &self.img,
            &self.prices,
            inc,
            self.cfg.timing,
            0,
            0,
            Some(&mut |w| words.push(w)),
        );
        self.take_words(words);
        self.stats.cycles += run.done_cycle + 1;
        self.stats.inc_scans += 1;
        self.stats.groups_read += groups.len() as u64;
        self.pace(start, run.done_cycle + 1);
        self.groups = groups;
        Ok(())
    }
    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError> {
        if prices.len() != self.prices.len() {
            return Err(EngineError::PriceVectorLength { got: prices.len(), assets: self.prices.len() });
        }
        self.prices.copy_from_slice(prices);
        let start = Instant::now();
        let mut words = std::mem::take(&mut self.words);
        let run =
            self.model.run(&self.img, &self.prices, self.cfg.timing, 0, 0, Some(&mut |w| words.push(w)));
        self.take_words(words);
        self.stats.cycles += run.done_cycle + 1;
        self.stats.full_scans += 1;
        self.pace(start, run.done_cycle + 1);
        Ok(())
    }
    fn prices(&self) -> &[PriceEntry] {
        &self.prices
    }
    fn breach(&self) -> &[u64] {
        &self.breach
    }
    fn at_risk(&self) -> &[u64] {
        &self.at_risk
    }
    fn changed_words(&mut self, out: &mut Vec<u32>) {
        for &i in &self.changed {
            self.marked[i as usize / 64] &= !(1 << (i % 64));
        }
        out.append(&mut self.changed);
    }
    fn is_card(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SoftwareEngine;
    use crate::engine::Step;
    use crate::engine::router::{CardLimits, DEVICE_CLASSES, Route, RouterEngine};
    use liqscan_hdl::abi::{COEFF_MAX, COEFF_MIN, QuotedPrice};
    use proptest::prelude::*;

    const SLOTS: usize = 90;
    const ASSETS: usize = 6;

    fn quiet() -> DramConfig {
        DramConfig { pace: false, ..DramConfig::ddr3() }
    }

    fn coeff() -> impl Strategy<Value = i32> {
        prop_oneof![Just(COEFF_MAX), Just(COEFF_MIN), Just(1), Just(-1), -2_000_000i32..2_000_000]
    }

    fn quote() -> impl Strategy<Value = u32> {
        prop_oneof![Just(0u32), Just(1), Just(u32::MAX), 1u32..2_000_000_000]
    }

    fn price() -> impl Strategy<Value = PriceEntry> {
        (quote(), quote(), quote(), quote()).prop_map(|(a, l, sa, sl)| PriceEntry {
            spot: QuotedPrice { asset: a, liability: l },
            stressed: QuotedPrice { asset: sa, liability: sl },
        })
    }

    /// 0 to 6 terms of distinct assets: five or more do not fit the card's four slots.
    fn account() -> impl Strategy<Value = Vec<Coeff>> {
        (
            Just((0..ASSETS as u16).collect::<Vec<_>>()).prop_shuffle(),
            proptest::collection::vec(coeff(), 0..=6),
        )
            .prop_map(|(assets, cs)| {
                cs.iter().zip(assets).map(|(&coeff, asset)| Coeff { asset, coeff }).collect()
            })
    }

    #[derive(Clone, Debug)]
    enum Call {
        Upsert(u32, Vec<Coeff>),
        Remove(u32),
        Tick(u16, PriceEntry),
        Batch(Vec<PriceEntry>),
    }

    fn call() -> impl Strategy<Value = Call> {
        prop_oneof![
            5 => (0..SLOTS as u32, account()).prop_map(|(s, t)| Call::Upsert(s, t)),
            1 => (0..SLOTS as u32).prop_map(Call::Remove),
            5 => (0..ASSETS as u16, price()).prop_map(|(a, p)| Call::Tick(a, p)),
            1 => proptest::collection::vec(price(), ASSETS).prop_map(Call::Batch),
        ]
    }

    /// Makes the same call on `e` and on the software engine; both must take it.
    fn both(e: &mut dyn ScanEngine, sw: &mut SoftwareEngine, c: &Call) {
        let engines: [&mut dyn ScanEngine; 2] = [e, sw];
        for e in engines {
            match c {
                Call::Upsert(s, t) => e.upsert(*s, t),
                Call::Remove(s) => e.remove(*s),
                Call::Tick(a, p) => e.tick(*a, *p),
                Call::Batch(ps) => e.batch_tick(ps),
            }
            .unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The DRAM card's bitmaps, taken from the block's cycle model, equal the software
        /// engine's after every call on random books with extreme coefficients and prices; an
        /// account of more than four terms is refused and changes nothing; a step over the
        /// card sees every change through `changed_words`.
        #[test]
        fn the_dram_card_agrees_with_the_software_engine(calls in proptest::collection::vec(call(), 1..80)) {
            let mut card = DramCard::new(SLOTS, ASSETS, quiet()).unwrap();
            let mut sw = SoftwareEngine::new(SLOTS, ASSETS);
            let mut step = Step::new(&mut card);
            for (i, c) in calls.iter().enumerate() {
                match c {
                    Call::Upsert(s, t) if t.len() > 4 => {
                        let before = (card.breach().to_vec(), card.at_risk().to_vec());
                        let e = card.upsert(*s, t).unwrap_err();
                        let refused = matches!(e, EngineError::TooManyTermsForCard { terms, max: 4, .. } if terms == t.len());
                        prop_assert!(refused, "{:?}", e);
                        prop_assert_eq!((card.breach().to_vec(), card.at_risk().to_vec()), before);
                    }
                    c => both(&mut card, &mut sw, c),
                }
                prop_assert_eq!(card.breach(), sw.breach(), "breach after call {} ({:?})", i, c);
                prop_assert_eq!(card.at_risk(), sw.at_risk(), "at risk after call {}", i);
                step.scan(&mut card);
                prop_assert_eq!(step.seen(), (sw.breach(), sw.at_risk()), "news lost after call {}", i);
            }
            let st = card.stats();
            let ticks = calls.iter().filter(|c| matches!(c, Call::Tick(..) | Call::Batch(_))).count() as u64;
            prop_assert!(st.inc_scans + st.full_scans <= ticks);
            prop_assert_eq!(st.full_scans, calls.iter().filter(|c| matches!(c, Call::Batch(_))).count() as u64);
        }

        /// The router with the DRAM card as its card: the card holds the accounts of at most
        /// four terms, software the rest, and the bitmaps equal the software engine's.
        #[test]
        fn a_router_over_the_dram_card_agrees_with_software(calls in proptest::collection::vec(call(), 1..60), route in 0u8..3) {
            let card = DramCard::new(SLOTS, ASSETS, quiet()).unwrap();
            let limits = CardLimits { accounts: SLOTS, term_slots: 4, lanes: LANES };
            let route = [Route::Measured, Route::Card, Route::Software][route as usize];
            let mut r = RouterEngine::new(Box::new(card), limits, DEVICE_CLASSES[1], SLOTS, ASSETS).unwrap().with_route(route);
            let mut sw = SoftwareEngine::new(SLOTS, ASSETS);
            for (i, c) in calls.iter().enumerate() {
                both(&mut r, &mut sw, c);
                prop_assert_eq!(r.breach(), sw.breach(), "breach after call {} ({:?})", i, c);
                prop_assert_eq!(r.at_risk(), sw.at_risk(), "at risk after call {}", i);
            }
            prop_assert!(r.is_card(), "the card never failed over");
            // Forced to the card, the card served every tick of its partition.
            let st = r.routes().unwrap();
            if route == Route::Card {
                prop_assert_eq!(st.software_ticks.total() + st.software_batches.total(), 0);
            }
            let big = (0..SLOTS as u32).filter(|&s| sw.terms(s).len() > 4).count();
            prop_assert!(st.host_accounts >= big, "{} accounts of five terms or more, {} on software", big, st.host_accounts);
        }
    }

    #[test]
    fn pacing_waits_out_the_blocks_cycles() {
        let mut card = DramCard::new(4096, 2, DramConfig::ddr3()).unwrap();
        for s in 0..4096u32 {
            card.upsert(s, &[Coeff { asset: 0, coeff: 10 }, Coeff { asset: 1, coeff: -9 }]).unwrap();
        }
        let p = |x| PriceEntry {
            spot: QuotedPrice { asset: x, liability: x },
            stressed: QuotedPrice { asset: x, liability: x },
        };
        let t = Instant::now();
        card.batch_tick(&[p(1), p(2)]).unwrap();
        let took = t.elapsed().as_secs_f64();
        let cycles = card.stats().cycles;
        // 4,096 accounts of 4 slots at 0.414 words of two terms a cycle: about 20,000 cycles.
        assert!(cycles > 16_384 / 2, "{cycles} cycles");
        assert!(
            took >= cycles as f64 / 75e6,
            "returned after {took} s, before the block's {cycles} cycles at 75 MHz"
        );
        assert_eq!(card.breach()[0], u64::MAX, "every account owes more than it holds at these prices");
    }
}
