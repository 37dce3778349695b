//! The software engine.

use liqscan_hdl::abi::{Coeff, PriceEntry, check_terms};

use super::{AccountHealth, EngineError, Kernel, ScanEngine};
use crate::{bitmap, reference};

/// The software scan engine (first cut: exact recompute of exposed accounts).
pub struct SoftwareEngine {
    #[allow(dead_code)]
    kernel: Kernel,
    assets: usize,
    terms: Vec<Vec<Coeff>>,
    prices: Vec<PriceEntry>,
    breach: Vec<u64>,
    at_risk: Vec<u64>,
    dirty: Vec<u64>,
    dirty_list: Vec<u32>,
}

impl SoftwareEngine {
    /// An empty book of `slots` account slots over `assets` assets, all prices zero.
    pub fn new(slots: usize, assets: usize) -> Self {
        Self::with_kernel(slots, assets, Kernel::detect())
    }

    /// Like [`new`](Self::new) with a chosen full-scan kernel (tests run both).
    pub fn with_kernel(slots: usize, assets: usize, kernel: Kernel) -> Self {
        let words = bitmap::words_for(slots);
        SoftwareEngine {
            kernel,
            assets,
            terms: vec![Vec::new(); slots],
            prices: vec![PriceEntry::default(); assets],
            breach: vec![0; words],
            at_risk: vec![0; words],
            dirty: vec![0; bitmap::words_for(words)],
            dirty_list: Vec::with_capacity(words),
        }
    }

    /// Health of the account in `slot`, or `None` when the slot is out of range.
    pub fn health(&self, slot: u32) -> Option<AccountHealth> {
        let terms = self.terms.get(slot as usize)?;
        Some(account_health(terms, &self.prices))
    }

    /// The terms of the account in `slot` (empty when the slot is empty or out of range).
    pub fn terms(&self, slot: u32) -> &[Coeff] {
        self.terms.get(slot as usize).map_or(&[], |t| t.as_slice())
    }

    fn check_slot(&self, slot: u32) -> Result<(), EngineError> {
        if (slot as usize) < self.terms.len() {
            Ok(())
        } else {
            Err(EngineError::SlotOutOfRange { slot, slots: self.terms.len() })
        }
    }

    fn set_bits(&mut self, slot: usize, breach: bool, at_risk: bool) {
        let w = slot / 64;
        let (ob, oa) = (self.breach[w], self.at_risk[w]);
        bitmap::set(&mut self.breach, slot, breach);
        bitmap::set(&mut self.at_risk, slot, at_risk);
        if ob != self.breach[w] || oa != self.at_risk[w] {
            self.mark(w);
        }
    }

    fn mark(&mut self, w: usize) {
        if !bitmap::get(&self.dirty, w) {
            bitmap::set(&mut self.dirty, w, true);
            self.dirty_list.push(w as u32);
        }
    }

    fn rescan_slot(&mut self, slot: usize) {
        let (spot, stressed) = reference::health(&self.terms[slot], &self.prices);
        self.set_bits(slot, spot < 0, stressed < 0);
    }
}

/// Exact health and display ratio of one account.
pub(crate) fn account_health(terms: &[Coeff], prices: &[PriceEntry]) -> AccountHealth {
    let (spot, stressed) = reference::health(terms, prices);
    let (mut pos, mut neg) = (0i128, 0i128);
    for t in terms {
        let v = t.coeff as i128 * prices[t.asset as usize].spot.for_coeff(t.coeff) as i128;
        if t.coeff >= 0 {
            pos += v;
        } else {
            neg -= v;
        }
    }
    let ratio = if neg == 0 { f64::INFINITY } else { pos as f64 / neg as f64 };
    AccountHealth { spot, stressed, ratio }
}

impl ScanEngine for SoftwareEngine {
    fn name(&self) -> &'static str {
        "software"
    }

    fn slots(&self) -> usize {
        self.terms.len()
    }

    fn assets(&self) -> usize {
        self.assets
    }

    fn upsert(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        self.check_slot(slot)?;
        check_terms(terms, self.assets).map_err(|source| EngineError::BadTerms { slot, source })?;
        let t = &mut self.terms[slot as usize];
        t.clear();
        t.extend_from_slice(terms);
        self.rescan_slot(slot as usize);
        Ok(())
    }

    fn remove(&mut self, slot: u32) -> Result<(), EngineError> {
        self.check_slot(slot)?;
        self.terms[slot as usize].clear();
        self.set_bits(slot as usize, false, false);
        Ok(())
    }

    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError> {
        if asset as usize >= self.assets {
            return Err(EngineError::AssetOutOfRange { asset, assets: self.assets });
        }
        self.prices[asset as usize] = price;
        for slot in 0..self.terms.len() {
            if self.terms[slot].iter().any(|t| t.asset == asset) {
                self.rescan_slot(slot);
            }
        }
        Ok(())
    }

    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError> {
        if prices.len() != self.assets {
            return Err(EngineError::PriceVectorLength { got: prices.len(), assets: self.assets });
        }
        self.prices.copy_from_slice(prices);
        for slot in 0..self.terms.len() {
            self.rescan_slot(slot);
        }
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
        for &w in &self.dirty_list {
            bitmap::set(&mut self.dirty, w as usize, false);
        }
        out.extend_from_slice(&self.dirty_list);
        self.dirty_list.clear();
    }
}
