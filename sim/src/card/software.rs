//! [`SoftwareCard`]: the emulated card running the host's software engine.

use liqscan_hdl::abi::regs::error_bit;
use liqscan_hdl::abi::{Coeff, MAX_COEFFS_PER_ACCOUNT, PriceEntry};
use liqscan_host::engine::{ScanEngine, SoftwareEngine};

use super::{CardEngine, CardRefusal, ScanInfo};

/// The software engine behind the card's rings. Any book size (rounded up to 64 accounts).
///
/// Terms are stored compactly: padding slots (asset 0, coefficient 0) carry no value and are
/// dropped, so an account's terms are the written, non-padding slots in order.
pub struct SoftwareCard {
    engine: SoftwareEngine,
    staged: Vec<PriceEntry>,
    active: u32,
    changed: Vec<u32>,
    scratch: Vec<Coeff>,
}

impl SoftwareCard {
    /// A card of `accounts` (rounded up to a multiple of 64) over `assets` assets.
    pub fn new(accounts: usize, assets: usize) -> SoftwareCard {
        let accounts = accounts.div_ceil(64).max(1) * 64;
        SoftwareCard {
            engine: SoftwareEngine::new(accounts, assets),
            staged: vec![PriceEntry::default(); assets],
            active: 0,
            changed: Vec::new(),
            scratch: Vec::with_capacity(MAX_COEFFS_PER_ACCOUNT),
        }
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

    fn write_terms(
        &mut self,
        account: u32,
        slot_base: u8,
        terms: &[Coeff],
        clear_rest: bool,
    ) -> Result<(), CardRefusal> {
        self.account(account)?;
        let cur = self.engine.terms(account);
        let base = (slot_base as usize).min(cur.len());
        self.scratch.clear();
        self.scratch.extend_from_slice(&cur[..base]);
        self.scratch.extend_from_slice(terms);
        if !clear_rest && cur.len() > slot_base as usize + terms.len() {
            self.scratch.extend_from_slice(&cur[slot_base as usize + terms.len()..]);
        }
        self.scratch.retain(|t| t.asset != 0 || t.coeff != 0);
        let terms = std::mem::take(&mut self.scratch);
        let r = self.engine.upsert(account, &terms);
        self.scratch = terms;
        r.map_err(|e| match e {
            liqscan_host::engine::EngineError::BadTerms { .. } => (error_bit::ASSET_RANGE, account),
            _ => (error_bit::ACCOUNT_RANGE, account),
        })
    }

    fn remove(&mut self, account: u32) -> Result<(), CardRefusal> {
        self.account(account)?;
        self.engine.remove(account).map_err(|_| (error_bit::ACCOUNT_RANGE, account))
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
