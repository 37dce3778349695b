//! [`SoftwareCard`]: the emulated card running the host's software engine.

use liqscan_hdl::abi::config::TERM_WORDS_PER_ACCOUNT;
use liqscan_hdl::abi::regs::error_bit;
use liqscan_hdl::abi::{Coeff, MAX_COEFFS_PER_ACCOUNT, PriceEntry};
use liqscan_hdl::golden::Extent;
use liqscan_host::engine::{ScanEngine, SoftwareEngine};

use super::{CardEngine, CardRefusal, ScanInfo};

/// Lanes the software card reports: a group is 32 accounts, one card bitmap word.
const LANES: usize = 32;

/// The software engine behind the card's rings. Any book size (rounded up to 64 accounts).
///
/// It keeps the packed term memory as the hardware does: per lane, term words (grown as they
/// are written; unwritten words are zero), [`TERM_WORDS_PER_ACCOUNT`] per account slot, and a
/// group table. An account whose words or group changed is marked; before the next scan its
/// terms are read from its group's extent and upserted into the engine. Padding words
/// (asset 0, coefficient 0) carry no value and are dropped.
pub struct SoftwareCard {
    engine: SoftwareEngine,
    staged: Vec<PriceEntry>,
    active: u32,
    changed: Vec<u32>,
    scratch: Vec<Coeff>,
    words: Vec<Vec<Coeff>>,
    groups: Vec<Extent>,
    term_words: usize,
    marked: Vec<bool>,
    marked_list: Vec<u32>,
}

impl SoftwareCard {
    /// A card of `accounts` (rounded up to a multiple of 64) over `assets` assets.
    pub fn new(accounts: usize, assets: usize) -> SoftwareCard {
        let accounts = accounts.div_ceil(64).max(1) * 64;
        let groups = accounts / LANES;
        SoftwareCard {
            engine: SoftwareEngine::new(accounts, assets),
            staged: vec![PriceEntry::default(); assets],
            active: 0,
            changed: Vec::new(),
            scratch: Vec::with_capacity(MAX_COEFFS_PER_ACCOUNT),
            words: vec![Vec::new(); LANES],
            groups: vec![Extent::default(); groups],
            term_words: TERM_WORDS_PER_ACCOUNT * groups,
            marked: vec![false; accounts],
            marked_list: Vec::new(),
        }
    }

    fn mark(&mut self, account: usize) {
        if !self.marked[account] {
            self.marked[account] = true;
            self.marked_list.push(account as u32);
        }
    }

    /// Reads every marked account's terms from its group's extent into the engine.
    fn settle(&mut self) {
        for i in 0..self.marked_list.len() {
            let a = self.marked_list[i] as usize;
            self.marked[a] = false;
            let e = self.groups[a / LANES];
            let lane = &self.words[a % LANES];
            self.scratch.clear();
            for w in e.first as usize..e.first as usize + e.len as usize {
                let t = lane.get(w).copied().unwrap_or_default();
                if t.asset != 0 || t.coeff != 0 {
                    self.scratch.push(t);
                }
            }
            // The words were checked when written (assets, coefficients, at most 16 a group).
            let r = if self.scratch.is_empty() {
                self.engine.remove(a as u32)
            } else {
                self.engine.upsert(a as u32, &self.scratch)
            };
            if let Err(e) = r {
                tracing::error!("software card: account {a} does not load ({e}); it scans as empty");
                let _ = self.engine.remove(a as u32);
            }
        }
        self.marked_list.clear();
    }

    fn account(&self, account: u32) -> Result<(), CardRefusal> {
        if (account as usize) < self.engine.slots() {
            Ok(())
        } else {
            Err((error_bit::ACCOUNT_RANGE, account))
        }
    }

    fn asset(&self, asset: u16) -> Result<(), CardRefusal> {
        if (asset as usize) < self.staged.len() {
            Ok(())
        } else {
            Err((error_bit::ASSET_RANGE, asset as u32))
        }
    }

    fn count(&self, words: impl Iterator<Item = (u32, u32)>) -> (u32, u32) {
        words.fold((0, 0), |(b, a), (x, y)| (b + x.count_ones(), a + y.count_ones()))
    }
}

fn half(words: &[u64], card_word: usize) -> u32 {
    (words[card_word / 2] >> (32 * (card_word % 2))) as u32
}

impl CardEngine for SoftwareCard {
    fn name(&self) -> &'static str {
        "software"
    }

    fn accounts(&self) -> usize {
        self.engine.slots()
    }

    fn assets(&self) -> usize {
        self.staged.len()
    }

    fn lanes(&self) -> usize {
        32
    }

    fn write_terms(&mut self, account: u32, word: u16, terms: &[Coeff]) -> Result<(), CardRefusal> {
        self.account(account)?;
        let end = word as usize + terms.len();
        if end > self.term_words {
            return Err((error_bit::SLOT_RANGE, word as u32 | (terms.len() as u32) << 16));
        }
        if let Some(t) = terms.iter().find(|t| t.asset as usize >= self.staged.len()) {
            return Err((error_bit::ASSET_RANGE, t.asset as u32));
        }
        let a = account as usize;
        let lane = &mut self.words[a % LANES];
        if lane.len() < end {
            lane.resize(end, Coeff::default());
        }
        lane[word as usize..end].copy_from_slice(terms);
        let e = self.groups[a / LANES];
        if (word as usize) < e.first as usize + e.len as usize && end > e.first as usize {
            self.mark(a);
        }
        Ok(())
    }

    fn set_group(&mut self, group: u32, first: u16, len: u8) -> Result<(), CardRefusal> {
        let g = group as usize;
        if g >= self.groups.len() {
            return Err((error_bit::ACCOUNT_RANGE, group));
        }
        let (first_, len_) = (first as usize, len as usize);
        if first_ >= self.term_words || len_ > MAX_COEFFS_PER_ACCOUNT || first_ + len_ > self.term_words {
            return Err((error_bit::SLOT_RANGE, first as u32 | (len as u32) << 16));
        }
        self.groups[g] = Extent { first, len };
        for a in g * LANES..(g + 1) * LANES {
            self.mark(a);
        }
        Ok(())
    }

    fn params(&mut self, active_accounts: u32, term_slots: u32) -> Result<(), CardRefusal> {
        if active_accounts as usize > self.engine.slots() {
            return Err((error_bit::PARAMS_RANGE, active_accounts));
        }
        if !(1..=MAX_COEFFS_PER_ACCOUNT as u32).contains(&term_slots) {
            return Err((error_bit::PARAMS_RANGE, term_slots));
        }
        self.active = active_accounts;
        Ok(())
    }

    fn set_price(&mut self, asset: u16, price: PriceEntry) -> Result<(), CardRefusal> {
        self.asset(asset)?;
        self.staged[asset as usize] = price;
        Ok(())
    }

    fn tick(
        &mut self,
        asset: u16,
        price: PriceEntry,
        out: &mut Vec<(u32, u32, u32)>,
    ) -> Result<ScanInfo, CardRefusal> {
        self.asset(asset)?;
        self.settle();
        self.staged[asset as usize] = price;
        self.engine.tick(asset, price).map_err(|_| (error_bit::ASSET_RANGE, asset as u32))?;
        self.changed.clear();
        self.engine.changed_words(&mut self.changed);
        let card_words = (self.active as usize).div_ceil(32);
        let (b, a) = (self.engine.breach(), self.engine.at_risk());
        let start = out.len();
        for &w in &self.changed {
            for cw in [2 * w as usize, 2 * w as usize + 1] {
                if cw < card_words {
                    out.push((cw as u32, half(b, cw), half(a, cw)));
                }
            }
        }
        let (breached, at_risk) = self.count(out[start..].iter().map(|&(_, b, a)| (b, a)));
        Ok(ScanInfo { groups: (out.len() - start) as u32, cycles: 0, breached, at_risk })
    }

    fn scan_full(&mut self, out: &mut Vec<(u32, u32)>) -> ScanInfo {
        self.settle();
        self.engine.batch_tick(&self.staged).expect("staged vector has one entry per asset");
        self.changed.clear();
        self.engine.changed_words(&mut self.changed);
        let card_words = (self.active as usize).div_ceil(32);
        let (b, a) = (self.engine.breach(), self.engine.at_risk());
        let start = out.len();
        out.extend((0..card_words).map(|cw| (half(b, cw), half(a, cw))));
        let (breached, at_risk) = self.count(out[start..].iter().copied());
        ScanInfo { groups: card_words as u32, cycles: 0, breached, at_risk }
    }
}
