//! Scan engines: keep an account book's breach and at-risk bitmaps equal to
//! [`reference::scan`](crate::reference::scan) of the current (terms by slot, prices).
//!
//! ```text
//!   upsert / remove (account terms)        tick (one asset)    batch_tick (whole vector)
//!              \                                 |                     /
//!               v                                v                    v
//!          +------------------------------------------------------------+
//!          |  ScanEngine: SoftwareEngine, LinkEngine (the card), a       |
//!          |  FailoverEngine (a primary, and the software mirror), or a |
//!          |  RouterEngine (the card where it wins, software the rest)  |
//!          +------------------------------------------------------------+
//!                  |  breach / at_risk bitmaps     |  changed_words
//!                  v                               v
//!              Step: old-versus-new diff -> newly breached / cleared / at risk -> dispatch
//! ```
//!
//! Every engine gives bitmaps bit-identical to the reference; that is what the tests check.
//! Everything that drives an engine (the pipeline, the simulator, `liqscan scan`, journal
//! recovery) takes any engine, `Box<dyn ScanEngine>` or generic, and turns its bitmaps into
//! news with one [`Step`].

mod bits;
mod blocks;
pub mod dram;
pub mod failover;
mod kernel;
mod pairs;
mod pool;
mod relabel;
pub mod router;
mod software;
mod step;
mod terms;
#[cfg(test)]
mod test_card;
mod windows;

pub use blocks::{Layout, advise_huge};
pub use kernel::Kernel;
pub use relabel::Relabelled;
pub use software::{
    COMPACT_AFTER, EngineStats, PRIOR_DELTA_PER_ACCOUNT, PRIOR_SCAN_PER_SLOT, Routing, SoftwareEngine,
    account_health, helper_core,
};
pub use step::Step;
pub use windows::WindowPolicy;

use liqscan_hdl::abi::{Coeff, PriceEntry, TermError};

/// True when a full scan reads the account: it holds terms and is not a pair (one collateral
/// and one debt asset), which the software engine keeps in exact liquidation-price order
/// instead. Books put these accounts first ([`crate::book::Book`]).
pub fn is_scanned(terms: &[Coeff]) -> bool {
    !terms.is_empty() && pairs::as_pair(terms).is_none()
}

use crate::link::LinkError;

/// One scan engine: the software engine here, the card behind the card link elsewhere.
///
/// All prices start at zero ([`PriceEntry::default`]); every empty slot has health 0, so no bit
/// is set until accounts and prices arrive. After every successful call the bitmaps equal
/// [`reference::scan`](crate::reference::scan) of the current terms and prices; a call that
/// returns a refusal has changed nothing. A call that returns [`EngineError::Card`] may have
/// been half done on the card: the engine's state is unknown, and the caller fails over
/// ([`failover::FailoverEngine`] does).
pub trait ScanEngine: Send {
    /// Short name for tables and logs.
    fn name(&self) -> &'static str;
    /// Account slots, which is also the number of bitmap bits.
    fn slots(&self) -> usize;
    /// Assets in the price table.
    fn assets(&self) -> usize;
    /// Inserts or replaces the account in `slot`; terms are validated with
    /// [`check_terms`](liqscan_hdl::abi::check_terms) (the card's 16 terms, each asset once).
    /// The software engine also takes what
    /// [`check_terms_software`](liqscan_hdl::abi::check_terms_software) accepts: up to 64
    /// terms, an asset once on each side, in any order.
    fn upsert(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError>;
    /// Empties `slot` (health 0, both bits clear).
    fn remove(&mut self, slot: u32) -> Result<(), EngineError>;
    /// One asset's prices move (incremental mode: only exposed accounts are looked at).
    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError>;
    /// The whole price vector moves (full-scan mode); `prices.len()` must equal [`assets`].
    ///
    /// [`assets`]: ScanEngine::assets
    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError>;
    /// The current price vector.
    fn prices(&self) -> &[PriceEntry];
    /// Breach bitmap: bit `i % 64` of word `i / 64` is slot `i`.
    fn breach(&self) -> &[u64];
    /// At-risk bitmap, same layout.
    fn at_risk(&self) -> &[u64];
    /// Appends the indices of the bitmap words whose breach or at-risk bits changed since the
    /// last call (each index once, in no particular order), then forgets them.
    fn changed_words(&mut self, out: &mut Vec<u32>);
    /// Says a bulk load (many upserts before the ticks start) is over, so the engine may
    /// reorganise what the load left behind now rather than never; it may allocate and take
    /// milliseconds: call it off the hot path. Changes no bitmap. The default does nothing;
    /// the software engine compacts its full-scan arenas ([`SoftwareEngine::compact`]) when
    /// enough changed since it last did.
    fn loaded(&mut self) {}
    /// True while a card (behind the card link) computes the bitmaps; the software engine
    /// and a fail-over engine that has switched to its software mirror say false.
    fn is_card(&self) -> bool {
        false
    }
    /// Fail-overs this engine made so far, oldest first: each a switch from its primary engine
    /// to the software mirror ([`failover::FailoverEngine`]); an engine that cannot fail over
    /// has none. Cheap to call per message (a slice, no allocation).
    fn failovers(&self) -> &[failover::Failover] {
        &[]
    }
    /// Where a router ([`router::RouterEngine`]) sent the ticks so far, and why; `None` for
    /// every other engine.
    fn routes(&self) -> Option<router::RouteStats> {
        None
    }
}

impl<E: ScanEngine + ?Sized> ScanEngine for Box<E> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn slots(&self) -> usize {
        (**self).slots()
    }
    fn assets(&self) -> usize {
        (**self).assets()
    }
    #[inline]
    fn upsert(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        (**self).upsert(slot, terms)
    }
    #[inline]
    fn remove(&mut self, slot: u32) -> Result<(), EngineError> {
        (**self).remove(slot)
    }
    #[inline]
    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError> {
        (**self).tick(asset, price)
    }
    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError> {
        (**self).batch_tick(prices)
    }
    fn prices(&self) -> &[PriceEntry] {
        (**self).prices()
    }
    #[inline]
    fn breach(&self) -> &[u64] {
        (**self).breach()
    }
    #[inline]
    fn at_risk(&self) -> &[u64] {
        (**self).at_risk()
    }
    #[inline]
    fn changed_words(&mut self, out: &mut Vec<u32>) {
        (**self).changed_words(out)
    }
    fn loaded(&mut self) {
        (**self).loaded()
    }
    fn is_card(&self) -> bool {
        (**self).is_card()
    }
    #[inline]
    fn failovers(&self) -> &[failover::Failover] {
        (**self).failovers()
    }
    fn routes(&self) -> Option<router::RouteStats> {
        (**self).routes()
    }
}

/// Why an engine call failed: a refusal (nothing was changed), or a card fault.
#[derive(thiserror::Error, Debug)]
pub enum EngineError {
    /// Slot beyond the engine's capacity.
    #[error("slot {slot} is out of range: the engine has {slots} slots (create it with more)")]
    SlotOutOfRange {
        /// The slot asked for.
        slot: u32,
        /// The engine's slot count.
        slots: usize,
    },
    /// The account's terms do not fit the datapath.
    #[error("account in slot {slot} refused: {source}")]
    BadTerms {
        /// The slot the account was meant for.
        slot: u32,
        /// What was wrong with the terms.
        #[source]
        source: TermError,
    },
    /// The account has more terms than a card's memory layout gives one account (the router
    /// keeps such accounts on software).
    #[error("account in slot {slot} refused: {terms} terms, and this card's layout holds {max} an account")]
    TooManyTermsForCard {
        /// The slot the account was meant for.
        slot: u32,
        /// Its terms.
        terms: usize,
        /// Term slots an account has on the card.
        max: usize,
    },
    /// Asset index beyond the price table.
    #[error("asset {asset} is out of range: the price table has {assets} assets")]
    AssetOutOfRange {
        /// The asset asked for.
        asset: u16,
        /// The engine's asset count.
        assets: usize,
    },
    /// A batch tick whose vector does not cover exactly the price table.
    #[error("price vector has {got} entries; the engine has {assets} assets (send one entry per asset)")]
    PriceVectorLength {
        /// Entries received.
        got: usize,
        /// The engine's asset count.
        assets: usize,
    },
    /// The card stopped answering or answered wrongly (the link's watchdog, a protocol
    /// error): the call may have been half done on the card. Fail over to software.
    /// (Not a `source`: the message carries the link's error once, so a chain of causes does
    /// not repeat it.)
    #[error("card fault: {0}")]
    Card(Box<LinkError>),
}

impl EngineError {
    /// True for a card fault (fail over), false for a refusal (the input was wrong).
    pub fn is_card_fault(&self) -> bool {
        matches!(self, EngineError::Card(_))
    }
}

impl From<LinkError> for EngineError {
    fn from(e: LinkError) -> Self {
        EngineError::Card(Box::new(e))
    }
}

/// Health of one account, for display and ranking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccountHealth {
    /// Exact health at spot prices (`< 0`: breach).
    pub spot: i128,
    /// Exact health at stressed prices (`< 0`: at risk).
    pub stressed: i128,
    /// Sum of positive terms over the sum of |negative terms|, at spot prices;
    /// `f64::INFINITY` when the account has no negative term (and `NaN` never: 0/0 is reported
    /// as infinity too). Display and ranking only, never a decision.
    pub ratio: f64,
}
