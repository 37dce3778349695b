//! Accounts the card cannot hold, kept on the host beside it.
//!
//! The card holds at most 16 terms an account, each of a distinct asset
//! ([`card_holds`](liqscan_hdl::abi::card_holds)). An account with more terms (cross-margin
//! books with many perpetual positions, up to 64) or with one asset both as collateral and as
//! debt is kept here instead:
//!
//! ```text
//!   upsert ──card_holds?──yes──> card (its slot scanned there)
//!                        └─no───> Held: slot emptied on the card (health 0, bits clear),
//!                                 terms kept here, bits computed exactly on the host
//!   card's bitmap word ──OR── Held's bits of the same word ──> LinkEngine mirror
//! ```
//!
//! A tick rescans the held accounts exposed to the moved asset (an index by asset), so the
//! mirror stays equal to `reference::scan` of the whole book.

use std::collections::{BTreeSet, HashMap};

use liqscan_hdl::abi::{Coeff, PriceEntry};

use crate::bitmap;
use crate::reference;

/// The host-held accounts of a card-backed book.
#[derive(Debug, Default)]
pub(crate) struct Held {
    terms: HashMap<u32, Vec<Coeff>>,
    /// Held slots holding each asset, for ticks.
    by_asset: Vec<BTreeSet<u32>>,
    /// Breach bits of held slots (zero elsewhere).
    pub(crate) breach: Vec<u64>,
    /// At-risk bits of held slots (zero elsewhere).
    pub(crate) at_risk: Vec<u64>,
}

impl Held {
    pub(crate) fn new(slots: usize, assets: usize) -> Held {
        Held {
            terms: HashMap::new(),
            by_asset: vec![BTreeSet::new(); assets],
            breach: vec![0; bitmap::words_for(slots)],
            at_risk: vec![0; bitmap::words_for(slots)],
        }
    }

    /// Accounts held on the host.
    pub(crate) fn len(&self) -> usize {
        self.terms.len()
    }

    pub(crate) fn contains(&self, slot: u32) -> bool {
        self.terms.contains_key(&slot)
    }

    /// Holds `terms` in `slot` (replacing what it held) and scores it at `prices`; returns its
    /// (breach, at-risk) bits.
    pub(crate) fn insert(&mut self, slot: u32, terms: &[Coeff], prices: &[PriceEntry]) -> (bool, bool) {
        self.remove(slot);
        for t in terms {
            self.by_asset[t.asset as usize].insert(slot);
        }
        self.terms.insert(slot, terms.to_vec());
        self.score(slot, terms, prices)
    }

    /// Forgets `slot`; false if it was not held.
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        let Some(old) = self.terms.remove(&slot) else { return false };
        for t in &old {
            self.by_asset[t.asset as usize].remove(&slot);
        }
        bitmap::set(&mut self.breach, slot as usize, false);
        bitmap::set(&mut self.at_risk, slot as usize, false);
        true
    }

    fn score(&mut self, slot: u32, terms: &[Coeff], prices: &[PriceEntry]) -> (bool, bool) {
        let (spot, stressed) = reference::health(terms, prices);
        let bits = (spot < 0, stressed < 0);
        bitmap::set(&mut self.breach, slot as usize, bits.0);
        bitmap::set(&mut self.at_risk, slot as usize, bits.1);
        bits
    }

    /// Rescores the held accounts exposed to `asset` (every held account when `None`) at
    /// `prices`, calling `changed(slot, breach, at_risk)` for each.
    pub(crate) fn rescore(
        &mut self,
        asset: Option<u16>,
        prices: &[PriceEntry],
        mut changed: impl FnMut(u32, bool, bool),
    ) {
        let Held { terms, by_asset, breach, at_risk } = self;
        let mut one = |slot: u32, t: &[Coeff]| {
            let (spot, stressed) = reference::health(t, prices);
            bitmap::set(breach, slot as usize, spot < 0);
            bitmap::set(at_risk, slot as usize, stressed < 0);
            changed(slot, spot < 0, stressed < 0);
        };
        match asset {
            Some(a) => {
                for &slot in &by_asset[a as usize] {
                    one(slot, &terms[&slot]);
                }
            }
            None => {
                for (&slot, t) in terms.iter() {
                    one(slot, t);
                }
            }
        }
    }
}
