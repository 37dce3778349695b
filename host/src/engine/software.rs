//! The software engine: exact, bit-identical to the reference, and fast in both scan modes.
//!
//! ```text
//!            upsert / remove                   tick(asset)                  batch_tick
//!                  |                               |                            |
//!    terms by slot + three indexes:        +-------+--------+                   v
//!     - BlockStore (columns, full scan)    v                v           BlockStore, block
//!     - PairIndex  (1 coll + 1 debt)    PairIndex:     exposure[asset]: by block through
//!     - exposure[asset] (other accounts)  move the cuts,  is the new price   the f64-exact
//!                                         flip between    in each window?    kernel
//!                                                         no: recompute
//! ```
//!
//! Accounts with exactly one positive and one negative term live in the [`PairIndex`]; all
//! others ("delta accounts") are in the exposure list of each asset they hold. An exposure
//! holds price windows (spot and stressed, for the term's sign) computed from the account's
//! exact health when it was last recomputed: the room between the health and zero is shared
//! equally by the account's terms, so while every one of its prices stays inside its window
//! the account's signs cannot change ([`Window::of`] has the argument). A tick reads the
//! asset's list sequentially and recomputes (from the terms, exactly) only the accounts whose
//! window the new price left, which then get new windows in all their lists; on a
//! 1,000,000-account book about 7 of the 4,769 exposed delta accounts a tick
//! (docs/PERFORMANCE.md). A batch tick does not rewrite windows (that would triple the full
//! scan's memory traffic); it bumps a generation number instead, and an exposure whose
//! generation is old is treated as left: its account is recomputed the next time one of its
//! assets ticks.
//!
//! Allocation: `tick` and `batch_tick` never allocate. `upsert` reuses each slot's vectors,
//! so it allocates only when a slot, a block, an exposure list or a pair group grows past
//! anything it held before (amortised doubling, documented on each structure).

use liqscan_hdl::abi::{Coeff, PriceEntry, check_terms};

use super::bits::Bits;
use super::blocks::{BlockStore, Layout};
use super::kernel::{PriceTables, Words};
use super::pairs::{PairIndex, as_pair};
use super::pool::Pool;
use super::{AccountHealth, EngineError, Kernel, ScanEngine};

/// How [`tick`](ScanEngine::tick) serves an asset that many accounts hold.
///
/// A tick costs about `delta accounts x (cost per delta)` by deltas and `slots x (cost per
/// slot)` by a full scan. Both costs depend on the book and on the machine (a 100,000-account
/// book in the last-level cache updates an account by delta in a few ns; a 1,000,000-account
/// book pays a DRAM miss, ~50 ns, per account), so no fixed fraction of the book is right
/// everywhere (docs/PERFORMANCE.md, "Routing a tick"). [`Routing::Measured`] keeps running
/// averages of both costs, timed with the CPU's time-stamp counter (no syscall), and takes
/// the cheaper path; both paths give the same exact bitmaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Routing {
    /// By measured cost. Until a cost is measured it is assumed to be
    /// [`PRIOR_SCAN_PER_SLOT`] and [`PRIOR_DELTA_PER_ACCOUNT`] cycles. Opt-in: with exact
    /// healths updated per account it won on a 1,000,000-account book (19 %-held asset:
    /// 9.5 ms against 38 ms by deltas) but made `liqscan demo` slower (p50 80 us -> 180 us);
    /// with price windows deltas measured cheaper than a scan for every asset of that book
    /// (19 %: 0.3 ms against 2.3 ms), so it routes nothing there (docs/PERFORMANCE.md).
    Measured,
    /// Every tick by deltas (the default).
    #[default]
    Deltas,
    /// Every tick by a full scan (tests and benchmarks).
    FullScan,
}

/// Assumed full-scan cost per slot (time-stamp counter cycles) before one is measured: the
/// 4-asset book's scan measured about 3 cycles per slot, the 64-asset book's 15-20.
pub const PRIOR_SCAN_PER_SLOT: u32 = 16;
/// Assumed delta cost per exposed account (cycles) before one is measured. With exact healths
/// updated per account it measured 30-45 on a 1,000,000-account book (300+ when the exposure
/// list spanned the book); with price windows most accounts cost one sequential read of their
/// exposure (about 5 cycles on the same book) and the recomputed few cost the rest.
pub const PRIOR_DELTA_PER_ACCOUNT: u32 = 16;
/// Every this many routed ticks, the ticks that would be routed go by deltas instead until
/// one measures the delta cost (the first ones recompute the healths the scans left stale and
/// are not counted), at most [`EXPLORE_MAX`] of them, so a delta cost measured long ago (or
/// during start-up page faults) cannot keep routing wrong forever.
const EXPLORE_EVERY: u64 = 256;
/// Most ticks one exploration sends by deltas.
const EXPLORE_MAX: u8 = 32;

/// [`ScanEngine::loaded`] compacts after upserts and removes of at least this fraction
/// (numerator, denominator) of the slots.
pub const COMPACT_AFTER: (usize, usize) = (1, 16);

/// Delta accounts a tick recomputes together (their cache misses overlap).
const RECOMPUTE_BATCH: usize = 16;

/// Asks for the cache line at `p` (a hint: no fault, any address).
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch never faults and changes no state visible to the program.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Cycle counter for the routing costs (0 where there is none: the priors stay).
#[inline]
fn cycles() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: rdtsc has no preconditions.
    unsafe {
        std::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// Running average (weight 1/8) of a cost in 1/16 cycle.
#[derive(Clone, Copy, Debug)]
struct Cost(u64);

impl Cost {
    fn prior(cycles: u32) -> Self {
        Cost(cycles as u64 * 16)
    }
    /// Adds a sample; a sample above 4x the average (a preemption, a page fault) counts as
    /// 4x, so one disturbed sample cannot swing the routing, while a real change still moves
    /// the average by up to 1.375x per sample.
    fn record(&mut self, cycles: u64, units: usize) -> bool {
        if units == 0 || cycles == 0 {
            return false;
        }
        let x = (cycles * 16 / units as u64).min(self.0.max(1) * 4);
        self.0 = (self.0 * 7 + x) / 8;
        true
    }
}
use crate::reference;

/// Prices of one term within which its account keeps its sign: `p` is inside when
/// `p - lo <= width` (wrapping: one compare).
#[derive(Clone, Copy, Debug)]
struct Window {
    lo: u32,
    width: u32,
}

impl Window {
    /// The window of a term with coefficient `c` (nonzero) at price `p` (the price its sign
    /// uses), in an account of health `h`, given the term's share `num / den` of the room to
    /// zero (`h`, or `-1 - h` for a negative health). The shares of an account's terms add up
    /// to at most 1, so while every term's price stays in its window the health moves towards
    /// zero by at most the sum of `floor(room * num / den)` over the terms, at most the room:
    /// its sign cannot change. Moves away from zero are not limited.
    fn of(c: i32, p: u32, h: i128, (num, den): (u32, u32)) -> Window {
        let room = (if h >= 0 { h } else { -1 - h }) * num as i128 / den.max(1) as i128;
        // Price units the term may move towards zero: |c| * step <= room.
        let step = (room / c.unsigned_abs() as i128).min(u32::MAX as i128) as u32;
        // A positive term lowers the health when its price falls.
        if (c > 0) == (h >= 0) {
            let lo = p.saturating_sub(step);
            Window { lo, width: u32::MAX - lo }
        } else {
            Window { lo: 0, width: p.saturating_add(step) }
        }
    }

    #[inline(always)]
    fn holds(self, p: u32) -> bool {
        p.wrapping_sub(self.lo) <= self.width
    }
}

/// One exposure of a delta account to an asset: the slot, and the windows of the asset's
/// spot and stressed prices (for this term's sign) within which the account's bits cannot
/// change. A tick reads only this list; the account itself is recomputed only when the new
/// price leaves one of its windows (or the windows are from before a batch tick).
#[derive(Clone, Copy, Debug)]
struct Exposure {
    slot: u32,
    /// Batch generation the windows were set in; older windows say nothing.
    generation: u32,
    /// 1 when the coefficient is negative: the term uses the liability prices.
    neg: u32,
    spot: Window,
    stressed: Window,
}

impl Exposure {
    /// The exposure of `slot`'s term (`c` in an asset at `price`) for healths `h`, `hs`,
    /// with `share` of the room ([`Window::of`]).
    fn new(
        slot: u32,
        c: i32,
        price: &PriceEntry,
        (h, hs): (i128, i128),
        share: (u32, u32),
        generation: u32,
    ) -> Self {
        Exposure {
            slot,
            generation,
            neg: (c < 0) as u32,
            spot: Window::of(c, price.spot.for_coeff(c), h, share),
            stressed: Window::of(c, price.stressed.for_coeff(c), hs, share),
        }
    }

    /// Whether the account's bits still hold at this asset's new prices (`spot[neg]`,
    /// `stressed[neg]`).
    #[inline(always)]
    fn holds(&self, generation: u32, spot: &[u32; 2], stressed: &[u32; 2]) -> bool {
        let n = self.neg as usize & 1;
        (self.generation == generation) & self.spot.holds(spot[n]) & self.stressed.holds(stressed[n])
    }
}

/// Counts of what the engine holds, for benchmarks and operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Accounts in the pair index (one collateral, one debt).
    pub pair_accounts: usize,
    /// Bytes one full scan reads (coefficient columns and rows).
    pub scan_bytes: usize,
    /// Bytes the full-scan arenas occupy: `scan_bytes` plus spare capacity and the garbage
    /// that upserts leave (see [`SoftwareEngine::compact`]).
    pub arena_bytes: usize,
    /// Blocks of 64 slots stored in the row (term-major) layout.
    pub row_blocks: usize,
    /// All blocks.
    pub blocks: usize,
    /// Slots whose filtered sign was rechecked exactly, since the engine was made.
    pub rechecks: u64,
    /// Ticks served by a full scan (routing), since the engine was made.
    pub routed_ticks: u64,
    /// Delta accounts recomputed by ticks (a price left one of their windows, or the windows
    /// were from before a batch tick), since the engine was made.
    pub recomputed: u64,
}

/// The software scan engine. See the module docs for its structures.
pub struct SoftwareEngine {
    kernel: Kernel,
    assets: usize,
    terms: Vec<Vec<Coeff>>,
    /// For delta accounts, `exposure_pos[slot][k]` is the index of term k in its asset's
    /// exposure list (`u32::MAX` for a zero coefficient).
    exposure_pos: Vec<Vec<u32>>,
    exposure: Vec<Vec<Exposure>>,
    generation: u32,
    prices: Vec<PriceEntry>,
    tables: PriceTables,
    bits: Bits,
    blocks: BlockStore,
    pairs: PairIndex,
    pool: Option<Pool>,
    routing: Routing,
    explore: u8,
    scan_cost: Cost,
    delta_cost: Cost,
    rechecks: u64,
    routed_ticks: u64,
    recomputed: u64,
    /// Upserts and removes since the last compaction.
    changes_since_compact: usize,
}

impl SoftwareEngine {
    /// An empty book of `slots` account slots over `assets` assets, all prices zero, with the
    /// fastest full-scan kernel this CPU runs.
    pub fn new(slots: usize, assets: usize) -> Self {
        Self::with_kernel(slots, assets, Kernel::detect())
    }

    /// Like [`new`](Self::new) with a chosen full-scan kernel (falls back to
    /// [`Kernel::Portable`] when the CPU lacks the asked one). Tests run both.
    pub fn with_kernel(slots: usize, assets: usize, kernel: Kernel) -> Self {
        assert!(slots <= u32::MAX as usize, "slots are u32");
        assert!(assets <= u16::MAX as usize, "assets are u16");
        SoftwareEngine {
            kernel: kernel.supported(),
            assets,
            terms: vec![Vec::new(); slots],
            exposure_pos: vec![Vec::new(); slots],
            exposure: vec![Vec::new(); assets],
            generation: 1,
            prices: vec![PriceEntry::default(); assets],
            tables: PriceTables::new(assets),
            bits: Bits::new(slots),
            blocks: BlockStore::new(slots, assets),
            pairs: PairIndex::new(assets),
            pool: None,
            routing: Routing::Deltas,
            explore: 0,
            scan_cost: Cost::prior(PRIOR_SCAN_PER_SLOT),
            delta_cost: Cost::prior(PRIOR_DELTA_PER_ACCOUNT),
            rechecks: 0,
            routed_ticks: 0,
            recomputed: 0,
            changes_since_compact: 0,
        }
    }

    /// Chooses how blocks are laid out for the full scan ([`Layout::Auto`] by default: per
    /// block by density). Only on an engine without accounts (panics otherwise).
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.blocks.set_layout(layout);
        self
    }

    /// Splits the full scan over `threads` threads (1 or 2): with 2, a helper thread is
    /// spawned once, pinned (see [`helper_core`]), and woken by an atomic for each scan
    /// (`pool.rs`). Off by default (docs/PERFORMANCE.md has what it gains).
    pub fn with_threads(mut self, threads: usize) -> Self {
        assert!((1..=2).contains(&threads), "1 or 2 scan threads");
        self.pool =
            (threads == 2).then(|| Pool::new(self.blocks.blocks(), crate::pipeline::affinity::helper_core()));
        self
    }

    /// How [`tick`](ScanEngine::tick) chooses between deltas and a full scan
    /// ([`Routing::Deltas`] by default).
    pub fn with_routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// The current routing costs in cycles: (full scan per slot, delta per account).
    pub fn routing_costs(&self) -> (f64, f64) {
        (self.scan_cost.0 as f64 / 16.0, self.delta_cost.0 as f64 / 16.0)
    }

    /// The full-scan kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Exact health of the account in `slot` and its display ratio; `None` when the slot is
    /// out of range (an empty slot has health 0 and ratio infinity).
    pub fn health(&self, slot: u32) -> Option<AccountHealth> {
        let terms = self.terms.get(slot as usize)?;
        Some(account_health(terms, &self.prices))
    }

    /// The terms of the account in `slot`, in the order given (empty when the slot is empty
    /// or out of range).
    pub fn terms(&self, slot: u32) -> &[Coeff] {
        self.terms.get(slot as usize).map_or(&[], |t| t.as_slice())
    }

    /// Rewrites the full-scan layout's arenas in block order, packed, dropping the garbage
    /// that upserts leave (allocates: call it after a bulk load, not on the hot path). A book
    /// B full scan (1,000,000 accounts, 64 assets) measured 2.1 ms after it against 3.2 ms
    /// straight after loading (docs/PERFORMANCE.md). [`ScanEngine::loaded`] calls it.
    pub fn compact(&mut self) {
        self.blocks.compact();
        self.changes_since_compact = 0;
    }

    /// Counts of what the engine holds.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            pair_accounts: self.pairs.len(),
            scan_bytes: self.blocks.scan_bytes(),
            arena_bytes: self.blocks.arena_bytes(),
            row_blocks: self.blocks.row_blocks(),
            blocks: self.blocks.blocks(),
            rechecks: self.rechecks,
            routed_ticks: self.routed_ticks,
            recomputed: self.recomputed,
        }
    }

    /// Accounts that a tick of `asset` updates by delta (the pair accounts are not counted).
    pub fn delta_exposure(&self, asset: u16) -> usize {
        self.exposure.get(asset as usize).map_or(0, |e| e.len())
    }

    fn check_slot(&self, slot: u32) -> Result<(), EngineError> {
        if (slot as usize) < self.terms.len() {
            Ok(())
        } else {
            Err(EngineError::SlotOutOfRange { slot, slots: self.terms.len() })
        }
    }

    /// Takes the account in `slot` out of every index (its terms stay in `self.terms`).
    fn unindex(&mut self, slot: usize) {
        let terms = &self.terms[slot];
        for t in terms.iter().filter(|t| t.coeff != 0) {
            self.blocks.remove(slot, t.asset);
        }
        if let Some(pair) = as_pair(terms) {
            self.pairs.remove(slot as u32, pair, &self.prices);
            return;
        }
        for (k, t) in terms.iter().enumerate() {
            let i = self.exposure_pos[slot][k];
            if i == u32::MAX {
                continue;
            }
            let list = &mut self.exposure[t.asset as usize];
            list.swap_remove(i as usize);
            if let Some(moved) = list.get(i as usize) {
                let m = moved.slot as usize;
                let j = self.terms[m].iter().position(|u| u.asset == t.asset).expect("exposed term");
                self.exposure_pos[m][j] = i;
            }
        }
        self.exposure_pos[slot].clear();
    }

    /// Puts the account in `slot` (terms already in `self.terms`) into every index and sets its
    /// bits.
    fn index(&mut self, slot: usize) {
        let terms = &self.terms[slot];
        for t in terms.iter().filter(|t| t.coeff != 0) {
            self.blocks.insert(slot, t.asset, t.coeff);
        }
        let (spot, stressed) = reference::health(terms, &self.prices);
        if let Some(pair) = as_pair(terms) {
            self.pairs.insert(slot as u32, pair, &self.prices);
        } else {
            let pos = &mut self.exposure_pos[slot];
            pos.clear();
            let k = terms.iter().filter(|t| t.coeff != 0).count() as u32;
            for t in terms {
                if t.coeff == 0 {
                    pos.push(u32::MAX);
                } else {
                    let list = &mut self.exposure[t.asset as usize];
                    pos.push(list.len() as u32);
                    let p = &self.prices[t.asset as usize];
                    // Equal shares: no asset has moved this account yet.
                    let e = Exposure::new(slot as u32, t.coeff, p, (spot, stressed), (1, k), self.generation);
                    list.push(e);
                }
            }
        }
        self.bits.set(slot, spot < 0, stressed < 0);
    }

    /// Starts a new price generation: every stored delta health becomes stale.
    fn bump_generation(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Once in 2^32 scans: make every window stale rather than ambiguous.
            for e in self.exposure.iter_mut().flatten() {
                e.generation = 0;
            }
            self.generation = 1;
        }
    }

    /// Recomputes the delta account in `slot` exactly at the current prices, sets its bits and
    /// gives each of its exposures new windows around the current prices.
    ///
    /// The term in `moved` (the asset whose tick left the window) gets half the room, the
    /// others share the rest equally: the asset that moved is the likeliest to move again.
    /// Against equal shares, on book B (docs/PERFORMANCE.md): 6.5-7.4 recomputed accounts a
    /// tick instead of 7.7-9.0 on the 1 % asset, 9.8 instead of 11.6 with ticks rotating over
    /// 8 assets, and the tick's p99 15-18 us instead of 26-33 us.
    fn recompute(&mut self, slot: usize, moved: u16) {
        let terms = &self.terms[slot];
        let (h, hs) = reference::health(terms, &self.prices);
        self.bits.set(slot, h < 0, hs < 0);
        let pos = &self.exposure_pos[slot];
        let k = pos.iter().filter(|&&i| i != u32::MAX).count() as u32;
        for (t, &i) in terms.iter().zip(pos) {
            if i != u32::MAX {
                let share = match (k, t.asset == moved) {
                    (1, _) => (1, 1),
                    (_, true) => (1, 2),
                    (_, false) => (1, 2 * (k - 1)),
                };
                let p = &self.prices[t.asset as usize];
                self.exposure[t.asset as usize][i as usize] =
                    Exposure::new(slot as u32, t.coeff, p, (h, hs), share, self.generation);
            }
        }
        self.recomputed += 1;
    }

    /// [`recompute`](Self::recompute) for each slot, after prefetching what each needs in
    /// three rounds (the slot's vectors, their contents, the exposures to rewrite), so that
    /// the cache misses of the batch overlap instead of coming one after another: each
    /// account's data is scattered over the book (about 600 ns an account unprefetched).
    fn recompute_batch(&mut self, slots: &[u32], moved: u16) {
        if slots.len() > 1 {
            for &s in slots {
                prefetch(&self.terms[s as usize]);
                prefetch(&self.exposure_pos[s as usize]);
            }
            for &s in slots {
                prefetch(self.terms[s as usize].as_ptr());
                prefetch(self.exposure_pos[s as usize].as_ptr());
            }
            for &s in slots {
                let (terms, pos) = (&self.terms[s as usize], &self.exposure_pos[s as usize]);
                for (t, &i) in terms.iter().zip(pos) {
                    if let Some(e) = self.exposure[t.asset as usize].get(i as usize) {
                        prefetch(e);
                    }
                }
            }
        }
        for &s in slots {
            self.recompute(s as usize, moved);
        }
    }

    /// Scans every block at the current prices into the bitmaps.
    fn full_scan(&mut self) {
        let t0 = cycles();
        self.full_scan_untimed();
        let slots = self.terms.len();
        let _ = self.scan_cost.record(cycles().wrapping_sub(t0), slots);
    }

    fn full_scan_untimed(&mut self) {
        let n = self.blocks.blocks();
        let k = self.kernel;
        let (blocks, tables) = (&self.blocks, &self.tables);
        let (bits, terms, prices) = (&mut self.bits, &self.terms[..], &self.prices[..]);
        let mut rechecks = 0;
        match &mut self.pool {
            Some(pool) if n >= 2 => {
                let mid = n / 2;
                pool.start(k, blocks, tables, mid, n);
                for b in 0..mid {
                    rechecks += apply(bits, terms, prices, b, k.scan_block(&blocks.view(b), tables));
                }
                for (i, w) in pool.wait().iter().enumerate() {
                    rechecks += apply(bits, terms, prices, mid + i, *w);
                }
            }
            _ => {
                for b in 0..n {
                    rechecks += apply(bits, terms, prices, b, k.scan_block(&blocks.view(b), tables));
                }
            }
        }
        self.rechecks += rechecks;
    }

    fn set_price(&mut self, a: usize, p: PriceEntry) {
        self.prices[a] = p;
        self.tables.set(a, &p);
    }
}

/// The core for the scan helper: when the calling thread is pinned to one core, the first
/// other online core (a helper inheriting the caller's mask would share its core and spin
/// against it); otherwise the first core the caller may run on.
pub fn helper_core() -> Option<core_affinity::CoreId> {
    let mine = core_affinity::get_core_ids()?;
    if let [only] = mine[..] {
        // SAFETY: sysconf has no preconditions.
        let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        let other = (0..online.max(0) as usize).find(|&id| id != only.id);
        return Some(other.map_or(only, |id| core_affinity::CoreId { id }));
    }
    mine.first().copied()
}

/// Writes block `b`'s words into the bitmaps after recomputing exactly the lanes the filter
/// left open; returns how many it recomputed.
#[inline]
fn apply(bits: &mut Bits, terms: &[Vec<Coeff>], prices: &[PriceEntry], b: usize, w: Words) -> u64 {
    let (mut breach, mut at_risk, mut open) = (w.breach, w.at_risk, w.recheck);
    let n = open.count_ones() as u64;
    while open != 0 {
        let l = open.trailing_zeros() as usize;
        open &= open - 1;
        let (spot, stressed) = match terms.get(b * 64 + l) {
            Some(t) => reference::health(t, prices),
            None => (0, 0),
        };
        breach = (breach & !(1 << l)) | (((spot < 0) as u64) << l);
        at_risk = (at_risk & !(1 << l)) | (((stressed < 0) as u64) << l);
    }
    bits.set_words(b, breach, at_risk);
    n
}

/// Exact health and display ratio of one account.
fn account_health(terms: &[Coeff], prices: &[PriceEntry]) -> AccountHealth {
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
        let s = slot as usize;
        self.changes_since_compact += 1;
        self.unindex(s);
        let t = &mut self.terms[s];
        t.clear();
        t.extend_from_slice(terms);
        self.index(s);
        Ok(())
    }

    fn remove(&mut self, slot: u32) -> Result<(), EngineError> {
        self.check_slot(slot)?;
        let s = slot as usize;
        self.changes_since_compact += 1;
        self.unindex(s);
        self.terms[s].clear();
        self.bits.set(s, false, false);
        Ok(())
    }

    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError> {
        let a = asset as usize;
        if a >= self.assets {
            return Err(EngineError::AssetOutOfRange { asset, assets: self.assets });
        }
        let old = self.prices[a];
        self.set_price(a, price);
        let exposed = self.exposure[a].len() as u64;
        let by_scan = match self.routing {
            Routing::Deltas => false,
            Routing::FullScan => true,
            Routing::Measured => {
                let scan = exposed * self.delta_cost.0 > self.terms.len() as u64 * self.scan_cost.0;
                if scan && self.explore > 0 {
                    self.explore -= 1;
                    false
                } else {
                    if scan && self.routed_ticks % EXPLORE_EVERY == EXPLORE_EVERY - 1 {
                        self.explore = EXPLORE_MAX;
                    }
                    scan
                }
            }
        };
        if by_scan {
            // Widely held: one full scan is cheaper than this many deltas.
            self.routed_ticks += 1;
            self.bump_generation();
            self.full_scan();
            self.pairs.invalidate();
            return Ok(());
        }
        self.pairs.tick(asset, &old, &self.prices, &mut self.bits);

        // The new prices by coefficient sign (asset price for positive terms).
        let spot = [price.spot.asset, price.spot.liability];
        let stressed = [price.stressed.asset, price.stressed.liability];
        let generation = self.generation;
        let t0 = cycles();
        let mut stale = 0usize;
        // Most exposures keep their windows: find the next ones that do not (a sequential read
        // of the list), up to RECOMPUTE_BATCH at a time, and recompute those accounts.
        let mut i = 0;
        let mut batch = [0u32; RECOMPUTE_BATCH];
        loop {
            let list = &self.exposure[a];
            let mut n = 0;
            while n < RECOMPUTE_BATCH {
                let Some(off) = list[i..].iter().position(|e| !e.holds(generation, &spot, &stressed)) else {
                    i = list.len();
                    break;
                };
                i += off;
                // Windows from before a batch tick are stale, not left.
                stale += (list[i].generation != generation) as usize;
                batch[n] = list[i].slot;
                n += 1;
                i += 1;
            }
            self.recompute_batch(&batch[..n], asset);
            if i >= self.exposure[a].len() {
                break;
            }
        }
        // The steady-state delta cost: ticks that recomputed stale healths would overstate it,
        // and tiny exposures measure the call's overhead, not the per-account cost.
        if stale == 0 && exposed >= 256 && self.delta_cost.record(cycles().wrapping_sub(t0), exposed as usize)
        {
            self.explore = 0;
        }
        Ok(())
    }

    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError> {
        if prices.len() != self.assets {
            return Err(EngineError::PriceVectorLength { got: prices.len(), assets: self.assets });
        }
        for (a, p) in prices.iter().enumerate() {
            self.set_price(a, *p);
        }
        self.bump_generation();
        self.full_scan();
        self.pairs.invalidate();
        Ok(())
    }

    fn prices(&self) -> &[PriceEntry] {
        &self.prices
    }

    fn breach(&self) -> &[u64] {
        &self.bits.breach
    }

    fn at_risk(&self) -> &[u64] {
        &self.bits.at_risk
    }

    fn changed_words(&mut self, out: &mut Vec<u32>) {
        self.bits.drain(out);
    }

    /// Compacts the full-scan arenas ([`compact`](SoftwareEngine::compact)) when the upserts
    /// and removes since the last compaction number at least [`COMPACT_AFTER`] of the slots;
    /// fewer cannot have moved much, and the copy costs time proportional to the book.
    fn loaded(&mut self) {
        if self.changes_since_compact * COMPACT_AFTER.1 >= self.terms.len() * COMPACT_AFTER.0 {
            self.compact();
        }
    }
}
