//! [`FailoverEngine`]: a primary engine (the card) and the software mirror that replaces it.
//!
//! ```text
//!   call ──> primary (LinkEngine) ──ok──> mirror.apply (the book the primary holds)
//!               │ card fault
//!               v
//!            SoftwareEngine built from the mirror ──> the same call again ──> ok / refused
//! ```
//!
//! The mirror is the host's copy of everything the primary took: terms by slot and the price
//! vector, updated only after the primary accepted a call. When the primary faults (a watchdog
//! expiry, a protocol error), the engine builds a software engine from the mirror, repeats the
//! call that faulted on it, and serves every later call from it: its bitmaps equal
//! [`reference::scan`](crate::reference::scan) of every call made, so nothing is lost. After
//! the switch [`changed_words`](ScanEngine::changed_words) reports every word once, since the
//! primary's last bitmaps may have been half updated. The switch is the one place that
//! allocates; [`failovers`](ScanEngine::failovers) says when it happened and why.

use std::time::Instant;

use liqscan_hdl::abi::{Coeff, PriceEntry};

use super::{EngineError, ScanEngine, SoftwareEngine};

/// The host's copy of a book: what the primary engine was told, to rebuild from on fail-over.
#[derive(Clone, Debug, Default)]
pub struct Mirror {
    /// Terms by slot.
    pub terms: Vec<Vec<Coeff>>,
    /// Price vector.
    pub prices: Vec<PriceEntry>,
}

impl Mirror {
    /// An empty book of `slots` slots over `assets` assets, all prices zero.
    pub fn new(slots: usize, assets: usize) -> Mirror {
        Mirror { terms: vec![Vec::new(); slots], prices: vec![PriceEntry::default(); assets] }
    }

    /// A software engine holding this book (allocates: the fail-over path and start-up only).
    pub fn software_engine(&self) -> Result<SoftwareEngine, EngineError> {
        let mut e = SoftwareEngine::new(self.terms.len(), self.prices.len());
        e.batch_tick(&self.prices)?;
        e.load(
            self.terms.iter().enumerate().filter(|(_, t)| !t.is_empty()).map(|(s, t)| (s as u32, &t[..])),
        )?;
        e.loaded();
        Ok(e)
    }

    #[inline]
    fn upsert(&mut self, slot: u32, terms: &[Coeff]) {
        let t = &mut self.terms[slot as usize];
        t.clear();
        t.extend_from_slice(terms);
    }
}

/// One switch from the primary engine to the software mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failover {
    /// The call the primary faulted on (`tick`, `upsert`, ...; `drill` for
    /// [`FailoverEngine::fail_over`]).
    pub call: &'static str,
    /// The fault (the card link's error).
    pub why: String,
    /// Nanoseconds the switch took: building the software engine and repeating the call.
    pub ns: u64,
}

/// A primary engine with the software mirror kept beside it; see the [module](self) doc.
pub struct FailoverEngine {
    primary: Option<Box<dyn ScanEngine>>,
    software: Option<SoftwareEngine>,
    mirror: Mirror,
    failovers: Vec<Failover>,
    /// Set by the switch: the next `changed_words` reports every word.
    all_words: bool,
}

impl FailoverEngine {
    /// Wraps `primary`, which must be as new (empty slots, zero prices): the mirror starts
    /// empty.
    pub fn new(primary: Box<dyn ScanEngine>) -> FailoverEngine {
        let mirror = Mirror::new(primary.slots(), primary.assets());
        FailoverEngine {
            primary: Some(primary),
            software: None,
            mirror,
            failovers: Vec::with_capacity(1),
            all_words: false,
        }
    }

    /// The host's copy of the book.
    pub fn mirror(&self) -> &Mirror {
        &self.mirror
    }

    /// The primary engine while it serves (None after the fail-over).
    pub fn primary(&self) -> Option<&dyn ScanEngine> {
        self.primary.as_deref()
    }

    /// Switches to software as if the primary had faulted with `why` (a drill, or a caller
    /// that learnt of a dead card elsewhere). Does nothing once on software.
    pub fn fail_over(&mut self, why: &str) {
        if self.primary.is_some() {
            let t0 = Instant::now();
            self.switch("drill", why.to_string(), t0);
        }
    }

    fn engine(&self) -> &dyn ScanEngine {
        match (&self.primary, &self.software) {
            (Some(p), _) => &**p,
            (None, Some(s)) => s,
            (None, None) => unreachable!("a fail-over engine always has an engine"),
        }
    }

    fn switch(&mut self, call: &'static str, why: String, t0: Instant) {
        self.primary = None;
        // The mirror holds only calls an engine accepted, so the software engine takes them:
        // the card link keeps on the host what the card cannot hold, within the software
        // engine's own check.
        self.software = Some(self.mirror.software_engine().expect("the mirror holds only accepted calls"));
        self.all_words = true;
        self.failovers.push(Failover { call, why, ns: t0.elapsed().as_nanos() as u64 });
    }

    /// Runs `call` on the engine in use; on a card fault of the primary, switches to the
    /// mirror and runs it again there. Returns the engine's refusal, never a card fault.
    #[inline]
    fn run(
        &mut self,
        what: &'static str,
        mut call: impl FnMut(&mut dyn ScanEngine) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let r = match (&mut self.primary, &mut self.software) {
            (Some(p), _) => call(&mut **p),
            (None, Some(s)) => return call(s),
            (None, None) => unreachable!("a fail-over engine always has an engine"),
        };
        match r {
            Err(EngineError::Card(fault)) => {
                let t0 = Instant::now();
                self.switch(what, fault.to_string(), t0);
                let r = call(self.software.as_mut().expect("just built"));
                if let Some(f) = self.failovers.last_mut() {
                    f.ns = t0.elapsed().as_nanos() as u64;
                }
                r
            }
            r => r,
        }
    }
}

impl ScanEngine for FailoverEngine {
    fn name(&self) -> &'static str {
        self.engine().name()
    }

    fn slots(&self) -> usize {
        self.mirror.terms.len()
    }

    fn assets(&self) -> usize {
        self.mirror.prices.len()
    }

    #[inline]
    fn upsert(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        self.run("upsert", |e| e.upsert(slot, terms))?;
        self.mirror.upsert(slot, terms);
        Ok(())
    }

    #[inline]
    fn remove(&mut self, slot: u32) -> Result<(), EngineError> {
        self.run("remove", |e| e.remove(slot))?;
        self.mirror.terms[slot as usize].clear();
        Ok(())
    }

    #[inline]
    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError> {
        self.run("tick", |e| e.tick(asset, price))?;
        self.mirror.prices[asset as usize] = price;
        Ok(())
    }

    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError> {
        self.run("batch tick", |e| e.batch_tick(prices))?;
        self.mirror.prices.copy_from_slice(prices);
        Ok(())
    }

    fn prices(&self) -> &[PriceEntry] {
        &self.mirror.prices
    }

    #[inline]
    fn breach(&self) -> &[u64] {
        self.engine().breach()
    }

    #[inline]
    fn at_risk(&self) -> &[u64] {
        self.engine().at_risk()
    }

    #[inline]
    fn changed_words(&mut self, out: &mut Vec<u32>) {
        match (&mut self.primary, &mut self.software) {
            (Some(p), _) => p.changed_words(out),
            (None, Some(s)) => {
                let before = out.len();
                s.changed_words(out);
                if self.all_words {
                    self.all_words = false;
                    out.truncate(before);
                    out.extend(0..s.breach().len() as u32);
                }
            }
            (None, None) => unreachable!("a fail-over engine always has an engine"),
        }
    }

    fn loaded(&mut self) {
        match (&mut self.primary, &mut self.software) {
            (Some(p), _) => p.loaded(),
            (None, Some(s)) => s.loaded(),
            (None, None) => {}
        }
    }

    fn is_card(&self) -> bool {
        self.engine().is_card()
    }

    #[inline]
    fn failovers(&self) -> &[Failover] {
        &self.failovers
    }
}

#[cfg(test)]
mod tests {
    use liqscan_hdl::abi::QuotedPrice;
    use proptest::prelude::*;

    use super::*;
    use crate::engine::Step;
    use crate::engine::test_card::TestCard;
    use crate::reference;

    fn price(p: u32) -> PriceEntry {
        PriceEntry {
            spot: QuotedPrice { asset: p, liability: p },
            stressed: QuotedPrice { asset: p * 9 / 10, liability: p * 11 / 10 },
        }
    }

    #[derive(Clone, Debug)]
    enum Call {
        Upsert(u32, Vec<Coeff>),
        Remove(u32),
        Tick(u16, u32),
        Batch(Vec<u32>),
        /// Refused by every engine: a slot beyond the book.
        BadSlot,
    }

    const SLOTS: usize = 140;
    const ASSETS: usize = 4;

    fn call() -> impl Strategy<Value = Call> {
        let account =
            (0..ASSETS as u16, 0..ASSETS as u16, 10..1000i32, 1..120i32).prop_map(|(c, d, k, pct)| {
                let debt = Coeff { asset: d, coeff: -(k * pct / 100).max(1) };
                if c == d {
                    vec![Coeff { asset: c, coeff: k }]
                } else {
                    vec![Coeff { asset: c, coeff: k }, debt]
                }
            });
        prop_oneof![
            3 => (0..SLOTS as u32, account).prop_map(|(s, t)| Call::Upsert(s, t)),
            1 => (0..SLOTS as u32).prop_map(Call::Remove),
            4 => (0..ASSETS as u16, 50..150u32).prop_map(|(a, p)| Call::Tick(a, p)),
            1 => proptest::collection::vec(50..150u32, ASSETS).prop_map(Call::Batch),
            1 => Just(Call::BadSlot),
        ]
    }

    proptest! {
        /// Whatever call the primary faults on, the engine's bitmaps equal the reference's
        /// after every call, a refused call changes nothing, and a step over it misses nothing.
        #[test]
        fn bitmaps_equal_the_reference_after_every_call_whenever_the_primary_faults(
            fault_at in 1usize..120,
            calls in proptest::collection::vec(call(), 1..100),
        ) {
            // A primary that does half of the call it faults on and leaves its bitmaps scribbled on.
            let flaky = TestCard::new(SLOTS, ASSETS).faulting_at(fault_at).scribbling();
            let mut e = FailoverEngine::new(Box::new(flaky));
            let mut step = Step::new(&mut e);
            let mut terms: Vec<Vec<Coeff>> = vec![Vec::new(); SLOTS];
            let mut prices = vec![PriceEntry::default(); ASSETS];
            for (i, c) in calls.iter().enumerate() {
                match c {
                    Call::Upsert(s, t) => {
                        e.upsert(*s, t).unwrap();
                        terms[*s as usize] = t.clone();
                    }
                    Call::Remove(s) => {
                        e.remove(*s).unwrap();
                        terms[*s as usize].clear();
                    }
                    Call::Tick(a, p) => {
                        e.tick(*a, price(*p)).unwrap();
                        prices[*a as usize] = price(*p);
                    }
                    Call::Batch(ps) => {
                        let v: Vec<PriceEntry> = ps.iter().map(|&p| price(p)).collect();
                        e.batch_tick(&v).unwrap();
                        prices = v;
                    }
                    Call::BadSlot => {
                        let r = e.upsert(SLOTS as u32, &[Coeff { asset: 0, coeff: 1 }]);
                        prop_assert!(matches!(r, Err(EngineError::SlotOutOfRange { .. })), "{:?}", r);
                    }
                }
                let want = reference::scan(&terms, &prices);
                prop_assert_eq!(e.breach(), &want.breach[..], "breach after call {}: {:?}", i, c);
                prop_assert_eq!(e.at_risk(), &want.at_risk[..], "at risk after call {}", i);
                step.scan(&mut e);
                prop_assert_eq!(step.seen(), (&want.breach[..], &want.at_risk[..]), "news lost after call {}", i);
            }
            let faulted = fault_at <= calls.len();
            prop_assert_eq!(e.failovers().len(), usize::from(faulted));
            prop_assert_eq!(e.is_card(), !faulted);
            prop_assert_eq!(e.primary().is_some(), !faulted);
            prop_assert_eq!(e.mirror().terms.clone(), terms);
        }
    }

    #[test]
    fn a_drill_switches_once_and_reports_it() {
        let mut e = FailoverEngine::new(Box::new(SoftwareEngine::new(64, 2)));
        e.tick(0, price(100)).unwrap();
        e.upsert(3, &[Coeff { asset: 0, coeff: 10 }, Coeff { asset: 1, coeff: -9 }]).unwrap();
        e.fail_over("drill");
        e.fail_over("again");
        assert_eq!(e.failovers().len(), 1);
        assert_eq!(e.failovers()[0].why, "drill");
        e.tick(1, price(120)).unwrap();
        let want = reference::scan(&e.mirror().terms, e.prices());
        assert_eq!(e.breach(), &want.breach[..]);
        assert!(want.breach[0] & 1 << 3 != 0);
        let mut words = vec![7];
        e.changed_words(&mut words);
        assert_eq!(words, vec![7, 0], "after the switch every word is reported, after what was there");
    }
}
