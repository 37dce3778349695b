//! [`Relabelled`]: an engine whose accounts sit in other slots inside than the caller names.
//!
//! ```text
//!   caller's slot ──to_inner──> inner engine's slot      (upsert, remove: O(1))
//!   inner bitmap words changed ──> the bits that moved ──to_outer──> caller's bitmaps
//! ```
//!
//! The software engine's full scan leaves pair accounts to its pair index and skips the blocks
//! of 64 slots that hold only pairs, so a book with the accounts it must read in the first
//! slots scans about a third of a lending venue where file order scans all of it
//! ([`crate::book::Book::in_scan_order`]). `liqscan scan` reorders its book, since its events
//! name accounts by id. A keeper cannot: its feeds, journals and orders name accounts by their
//! slot in the book file. This wrapper gives it the scan's layout and keeps the caller's slots.
//!
//! Cost: a call's upkeep is one look at each bitmap word the inner engine changed, and one
//! table read and bit write for each bit that moved (O(changes), as the caller's own diff of
//! those words is); memory is two `u32` tables and four bitmaps, 8.5 bytes a slot.

use liqscan_hdl::abi::{Coeff, PriceEntry};

use crate::prefetch::prefetch;

use super::{AccountHealth, EngineError, ScanEngine, SoftwareEngine, failover, is_scanned, router};

/// `inner` with caller slot `s` kept in inner slot `to_inner[s]`; see the [module](self) doc.
pub struct Relabelled<E> {
    inner: E,
    to_inner: Vec<u32>,
    to_outer: Vec<u32>,
    /// The caller's bitmaps, in its slots.
    breach: Vec<u64>,
    at_risk: Vec<u64>,
    /// The inner bitmaps as last copied out (to find which bits of a changed word moved).
    seen_breach: Vec<u64>,
    seen_at_risk: Vec<u64>,
    /// Caller's words changed since the last `changed_words`, each once (`marked` dedupes).
    changed: Vec<u32>,
    marked: Vec<u64>,
    /// The inner engine's changed words, and the inner slots whose bits moved (buffers kept
    /// between calls).
    scratch: Vec<u32>,
    moved: Vec<u32>,
}

impl<E: ScanEngine> Relabelled<E> {
    /// Wraps `inner`; `to_inner` must be a permutation of its slots (panics otherwise). The
    /// inner engine's bitmaps as they are become the caller's, relabelled.
    pub fn new(mut inner: E, to_inner: Vec<u32>) -> Self {
        let slots = inner.slots();
        assert_eq!(to_inner.len(), slots, "a slot map covers every slot");
        let mut to_outer = vec![u32::MAX; slots];
        for (outer, &i) in to_inner.iter().enumerate() {
            let t = to_outer.get_mut(i as usize).expect("a slot map names inner slots");
            assert_eq!(*t, u32::MAX, "a slot map is one to one");
            *t = outer as u32;
        }
        let words = slots.div_ceil(64);
        let mut scratch = Vec::with_capacity(words);
        inner.changed_words(&mut scratch);
        let mut r = Relabelled {
            inner,
            to_inner,
            to_outer,
            breach: vec![0; words],
            at_risk: vec![0; words],
            seen_breach: vec![0; words],
            seen_at_risk: vec![0; words],
            changed: Vec::with_capacity(words),
            marked: vec![0; words.div_ceil(64)],
            scratch,
            moved: Vec::new(),
        };
        r.scratch.clear();
        r.scratch.extend(0..words as u32);
        r.copy_out();
        r
    }

    /// The inner slot of the caller's `slot` (`None` out of range).
    fn inner_slot(&self, slot: u32) -> Option<u32> {
        self.to_inner.get(slot as usize).copied()
    }

    fn map(&self, slot: u32) -> Result<u32, EngineError> {
        self.inner_slot(slot).ok_or(EngineError::SlotOutOfRange { slot, slots: self.to_inner.len() })
    }

    /// Takes the inner engine's changed words and carries the bits that moved to the caller's
    /// bitmaps. Runs after every call: nothing to do when nothing changed.
    fn sync(&mut self) {
        self.scratch.clear();
        self.inner.changed_words(&mut self.scratch);
        self.copy_out();
    }

    fn copy_out(&mut self) {
        // First the inner slots whose bits moved, then their caller's slots: at 10 M accounts
        // the table and the caller's bitmaps are far beyond the cache and a crash tick moves
        // tens of thousands of bits, so each lookup is hinted ahead (a miss apiece otherwise,
        // two in a row per bit: measured as long as the tick's own scan).
        let (ib, ia) = (self.inner.breach(), self.inner.at_risk());
        self.moved.clear();
        for &w in &self.scratch {
            let w = w as usize;
            let (nb, na) = (ib[w], ia[w]);
            let mut moved = (nb ^ self.seen_breach[w]) | (na ^ self.seen_at_risk[w]);
            self.seen_breach[w] = nb;
            self.seen_at_risk[w] = na;
            while moved != 0 {
                self.moved.push((w * 64) as u32 + moved.trailing_zeros());
                moved &= moved - 1;
            }
        }
        for k in 0..self.moved.len() {
            if let Some(&s) = self.moved.get(k + 2 * AHEAD) {
                prefetch(&self.to_outer, s as usize);
            }
            if let Some(&s) = self.moved.get(k + AHEAD) {
                let ow = self.to_outer[s as usize] as usize / 64;
                prefetch(&self.breach, ow);
                prefetch(&self.at_risk, ow);
            }
            let s = self.moved[k] as usize;
            let (w, i) = (s / 64, s % 64);
            let o = self.to_outer[s] as usize;
            let (ow, bit) = (o / 64, 1u64 << (o % 64));
            let set = |word: &mut u64, on: bool| *word = if on { *word | bit } else { *word & !bit };
            set(&mut self.breach[ow], self.seen_breach[w] >> i & 1 != 0);
            set(&mut self.at_risk[ow], self.seen_at_risk[w] >> i & 1 != 0);
            let m = &mut self.marked[ow / 64];
            if *m >> (ow % 64) & 1 == 0 {
                *m |= 1 << (ow % 64);
                self.changed.push(ow as u32);
            }
        }
    }
}

/// The slot map of [`Relabelled::load_in_scan_order`] for a book of `slots` slots holding
/// `book` (a later entry for a slot replacing an earlier one; slots out of range ignored):
/// the accounts a full scan reads first, then the pairs and empty slots, each in the caller's
/// order.
fn scan_order<'a>(slots: usize, book: impl IntoIterator<Item = (u32, &'a [Coeff])>) -> Vec<u32> {
    let mut scanned = vec![false; slots];
    for (s, t) in book {
        if let Some(x) = scanned.get_mut(s as usize) {
            *x = is_scanned(t);
        }
    }
    let mut to_inner = vec![0u32; slots];
    let mut next = 0u32;
    for pass in [true, false] {
        for (s, _) in scanned.iter().enumerate().filter(|(_, x)| **x == pass) {
            to_inner[s] = next;
            next += 1;
        }
    }
    to_inner
}

/// How many moved bits ahead [`Relabelled::copy_out`] hints the caller's bitmap words (and
/// twice as far, the table entry that names them).
const AHEAD: usize = 16;

impl Relabelled<SoftwareEngine> {
    /// `inner` (empty) holding `book` (caller's slots; a later entry for a slot replaces an
    /// earlier one) in one bulk load, laid out as
    /// [`Book::in_scan_order`](crate::book::Book::in_scan_order) lays a book: the accounts a
    /// full scan reads first, then the pairs and empty slots, each in the caller's order.
    /// Refuses what [`SoftwareEngine::load`] refuses, naming the caller's slot.
    pub fn load_in_scan_order<'a, I>(inner: SoftwareEngine, book: I) -> Result<Self, EngineError>
    where
        I: IntoIterator<Item = (u32, &'a [Coeff])>,
        I::IntoIter: Clone,
    {
        let book = book.into_iter();
        let to_inner = scan_order(inner.slots(), book.clone());
        let mut r = Relabelled::new(inner, to_inner);
        r.load(book)?;
        Ok(r)
    }

    /// [`SoftwareEngine::load`] in the caller's slots (the layout stays as it is). Refuses
    /// what that refuses, naming the caller's slot, and then changes nothing.
    pub fn load<'a, I>(&mut self, accounts: I) -> Result<(), EngineError>
    where
        I: IntoIterator<Item = (u32, &'a [Coeff])>,
        I::IntoIter: Clone,
    {
        let map = &self.to_inner;
        // A slot out of range stays as it is: the inner engine refuses it by that number.
        let mapped = accounts.into_iter().map(|(s, t)| (map.get(s as usize).copied().unwrap_or(s), t));
        let r = self.inner.load(mapped).map_err(|e| match e {
            EngineError::BadTerms { slot, source } => {
                EngineError::BadTerms { slot: self.to_outer[slot as usize], source }
            }
            e => e,
        });
        self.sync();
        r
    }

    /// [`SoftwareEngine::health`] of the caller's `slot`.
    pub fn health(&self, slot: u32) -> Option<AccountHealth> {
        self.inner.health(self.inner_slot(slot)?)
    }

    /// [`SoftwareEngine::healths`] of the caller's slots (`out` cleared, one entry a slot).
    pub fn healths(&self, slots: &[u32], out: &mut Vec<Option<AccountHealth>>) {
        out.clear();
        out.extend(slots.iter().map(|&s| self.health(s)));
    }

    /// [`SoftwareEngine::terms`] of the caller's `slot` (empty out of range).
    pub fn terms(&self, slot: u32) -> &[Coeff] {
        self.inner_slot(slot).map_or(&[], |s| self.inner.terms(s))
    }
}

impl<E: ScanEngine> ScanEngine for Relabelled<E> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn slots(&self) -> usize {
        self.inner.slots()
    }

    fn assets(&self) -> usize {
        self.inner.assets()
    }

    fn upsert(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        let r = self.inner.upsert(self.map(slot)?, terms).map_err(|e| match e {
            EngineError::BadTerms { source, .. } => EngineError::BadTerms { slot, source },
            e => e,
        });
        self.sync();
        r
    }

    fn remove(&mut self, slot: u32) -> Result<(), EngineError> {
        let r = self.inner.remove(self.map(slot)?);
        self.sync();
        r
    }

    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError> {
        let r = self.inner.tick(asset, price);
        self.sync();
        r
    }

    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError> {
        let r = self.inner.batch_tick(prices);
        self.sync();
        r
    }

    fn prices(&self) -> &[PriceEntry] {
        self.inner.prices()
    }

    fn breach(&self) -> &[u64] {
        &self.breach
    }

    fn at_risk(&self) -> &[u64] {
        &self.at_risk
    }

    fn changed_words(&mut self, out: &mut Vec<u32>) {
        for &w in &self.changed {
            self.marked[w as usize / 64] &= !(1 << (w % 64));
        }
        out.append(&mut self.changed);
    }

    fn loaded(&mut self) {
        self.inner.loaded();
    }

    fn is_card(&self) -> bool {
        self.inner.is_card()
    }

    fn failovers(&self) -> &[failover::Failover] {
        self.inner.failovers()
    }

    fn routes(&self) -> Option<router::RouteStats> {
        self.inner.routes()
    }
}
