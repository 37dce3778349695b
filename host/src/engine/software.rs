//! The software engine: exact, bit-identical to the reference, and fast in both scan modes.
//!
//! ```text
//!            upsert / remove                   tick(asset)                  batch_tick
//!                  |                               |                            |
//!    terms by slot + three indexes:        +-------+--------+                   v
//!     - BlockStore (columns, full scan)    v                v           BlockStore, block
//!     - PairIndex  (1 coll + 1 debt)    PairIndex:     WindowIndex:      by block through
//!     - WindowIndex (other accounts)    walk from the   the edges the     the kernels; then
//!                                       old cut to the  price crossed:    the next tick
//!                                       new one         recompute those   renews the windows
//! ```
//!
//! Accounts with exactly one positive and one negative term in two assets live in the
//! [`PairIndex`]; all others ("delta accounts") have price windows on each term (spot and
//! stressed, for the term's sign) computed from the account's exact health when it was last
//! recomputed: the room between the health and zero is shared by the account's terms, so
//! while every one of its prices stays inside its window the account's signs cannot change
//! ([`Window::of`](super::windows::Window::of) has the argument). The windows are indexed by
//! their edges in price buckets ([`WindowIndex`]), so a tick finds the accounts whose window
//! the new price left by reading the price's bucket and those past it, and recomputes only
//! them (exactly, from the terms). Those accounts go to a backlog: a tick recomputes the bits
//! of every account in it and gives new windows to the oldest few (at least 128 and 1/8 of
//! it), so a move that leaves a thousand windows at once costs a bits-only recompute each
//! (hundreds of ns), not a thousand renewals (1-3 us each) in one tick. A batch tick only
//! scans every block; the next single-asset tick puts the accounts whose windows the batch
//! moves left into the backlog (or, after a large move, renews or rebuilds them all at once),
//! so a batch tick costs the scan alone.
//!
//! Every structure an upsert or remove touches costs O(log n) or O(1) per term: the pair
//! groups are B-trees, the window edges buckets, the blocks per-64-slot lists. A bulk load
//! ([`SoftwareEngine::load`]) builds the pair B-trees from one sort each, the buckets in one
//! pass.
//!
//! Allocation: `tick` never allocates in the steady state (its scratch list only grows).
//! `upsert` rewrites each slot's terms and windows in place in two flat stores
//! ([`SlotStore`]) when they fit the slot's room; the pair B-trees allocate and free nodes as
//! they split and merge (std's `BTreeSet`, about one node of 11 keys per 6-11 inserts), an edge
//! bucket grows by doubling and keeps its room, and a block's list may move to the end of its
//! arena (amortised doubling).

use liqscan_hdl::abi::{Coeff, PriceEntry, TermError, check_terms, check_terms_software};

use super::bits::Bits;
use super::blocks::{BlockStore, Layout};
use super::kernel::{PriceTables, Words};
use super::pairs::{PairBulk, PairIndex, as_pair};
use super::pool::Pool;
use super::terms::SlotStore;
use super::windows::{Exposure, TermWindows, WindowIndex, WindowPolicy, room};
use super::{AccountHealth, EngineError, Kernel, ScanEngine};

/// How [`tick`](ScanEngine::tick) serves an asset that many accounts hold.
///
/// By deltas a tick costs O(log n) per pair group and per price of the asset, plus the pair
/// accounts it flips and the delta accounts whose window it leaves. A full scan costs every
/// slot and must still renew the windows the move left (the same recomputes), so it is never
/// the cheaper way to serve one asset's tick: [`Routing::Measured`] takes deltas. It was a
/// measured choice while a tick read every exposure of the asset (a 1,000,000-account book's
/// all-held asset cost 1.0 ms by deltas against 0.76 ms by a scan); with the edge index the
/// same tick measured 0.27 ms by deltas against 1.6 ms by a scan (docs/lab/performance.md, "The
/// engine at scale").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Routing {
    /// The cheaper path; now always deltas (see the type's doc). Kept so configurations that
    /// name it keep working.
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
/// Assumed delta cost per exposed account (cycles) before one is measured
/// ([`SoftwareEngine::routing_costs`], informational).
pub const PRIOR_DELTA_PER_ACCOUNT: u32 = 16;

/// A tick that leaves more than `slots / DEFER_PER_SLOTS` windows (at least [`DEFER_MIN`]),
/// counting the backlog and plus that many for each full scan already paid while deferring, is
/// served by a full scan and its window renewals are deferred. A tick by deltas recomputes the
/// bits of every account in the backlog (a few hundred ns each) and renews a bounded number
/// ([`RENEWALS_PER_TICK`]; a renewal costs 1-3 us), so about 4,000 in the backlog cost what a
/// full scan of a 1,000,000-account book does (0.5-2 ms). In a crash most ticks leave
/// thousands: renewing them tick by tick measured 25 ms p50 (227 ms p99) a tick on the
/// generated 1 M lending book. Only windows in edge-indexed assets count: renewing a
/// list-scanned asset's window is a recompute and a write in place, and counting them would
/// cost a scan of the list.
const DEFER_PER_SLOTS: usize = 256;
/// A deferred full scan of `slots` slots costs about what `slots / SCAN_RENEWALS_PER_SLOTS`
/// renewals do (a renewal 1-3 us, a scan of 1,000,000 accounts 0.5-2 ms): each one the
/// deferral pays for raises by that many (at most the threshold) the windows a later tick may
/// renew at once (rent or buy). Larger credit per scan made the buys after a crash's run of
/// scans four times as large (tens of thousands of renewals, 40 ms ticks).
const SCAN_RENEWALS_PER_SLOTS: usize = 1024;
/// Least number of left windows that defers their renewal.
const DEFER_MIN: usize = 64;

/// Accounts of the backlog whose windows a tick renews; the rest of the backlog only has its
/// bits recomputed ([`SoftwareEngine::with_renewals_per_tick`]). A renewal (recompute and new
/// windows in each term's edge buckets) measured 1-3 us, a bits-only recompute a few hundred
/// ns, so 128 renewals keep a tick's renewals under about 0.4 ms however many windows a move
/// leaves at once.
pub const RENEWALS_PER_TICK: usize = 128;
/// A tick renews at least 1/`BACKLOG_DRAIN` of the backlog, so that a long one (whose bits
/// every tick recomputes) drains in a few ticks.
const BACKLOG_DRAIN: usize = 8;

/// A move that leaves the windows of more than 1/`REBUILD_AFTER` of the delta accounts
/// rebuilds them all in one pass instead of updating the buckets account by account.
const REBUILD_AFTER: usize = 8;

/// The share (numerator, denominator) of an account's room that a recompute gives the terms
/// of the asset whose move triggered it; the other terms share the rest. Each recompute of an
/// account that a price walks towards its line shrinks that asset's window by this fraction of
/// the distance, so a larger share means fewer recomputes on the way (about
/// `log(distance) / log(1 / (1 - share))`); the other assets' windows get smaller for it.
const MOVED_SHARE: (u32, u32) = (7, 8);

/// What a bulk load indexes together at the end: the pair accounts (the windows go to their
/// lists at once; the edges are built at the end, [`WindowIndex::rebuild_edges`]).
#[derive(Default)]
struct Deferred {
    pairs: PairBulk,
}

/// A full scan of a tick leaves the pair accounts to the pair index when its walk flips at
/// most one in this many slots. Estimated, not tuned: a flip (a B-tree step and a scattered
/// bit write, 10-20 ns) costs about 16 slots' share of a block scan (1.1 ns a slot at 1 M), so
/// at the limit the walk costs about what scanning the pairs' blocks (70 % of a lending book)
/// would have.
const PAIR_FLIPS_PER_SLOTS: usize = 16;

/// [`ScanEngine::loaded`] compacts after upserts and removes of at least this fraction
/// (numerator, denominator) of the slots.
pub const COMPACT_AFTER: (usize, usize) = (1, 16);

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
    /// Assets whose windows are indexed by edge now (the others' ticks scan their lists).
    pub edge_indexed_assets: usize,
    /// Delta accounts whose windows a tick left and that wait for their renewal (each tick by
    /// deltas recomputes their bits).
    pub backlog: usize,
}

/// The software scan engine. See the module docs for its structures.
pub struct SoftwareEngine {
    kernel: Kernel,
    assets: usize,
    terms: SlotStore<Coeff>,
    /// For delta accounts, `windows[slot][k]` is the place of term k's windows in its asset's
    /// list in `index` (`u32::MAX` for a zero coefficient); empty for pair accounts and empty
    /// slots.
    windows: SlotStore<u32>,
    /// An account's new places before they are stored (reused).
    fresh: Vec<u32>,
    /// The windows by asset: lists, and edges where they pay.
    index: WindowIndex,
    /// Delta accounts in the book.
    delta_accounts: usize,
    /// Delta accounts in each block of 64 slots: a full scan of a tick whose pair accounts the
    /// pair index serves skips the blocks that hold none.
    delta_in_block: Vec<u8>,
    /// Slots whose windows a move left, reused by every tick (grows, never shrinks).
    left: Vec<u32>,
    /// Assets batch ticks (or ticks served by a full scan) moved since the windows were last
    /// renewed (their windows may be left: the next tick by deltas renews them first), and the
    /// same as flags by asset.
    moved: Vec<u16>,
    /// A tick whose move (with the moves not yet renewed) leaves more windows than this is
    /// served by a full scan, and the windows are renewed later, once a tick leaves at most
    /// this many ([`SoftwareEngine::with_defer_after`]).
    defer_after: usize,
    /// What the full scans since the renewal was first deferred cost, in windows' worth
    /// (`defer_after` a scan): once the windows left are no more than this, they are renewed
    /// (rent or buy: a drift that never comes back costs at most twice the cheaper way).
    deferred_scans: usize,
    stale: Vec<bool>,
    /// Delta accounts whose windows a tick left and that are not renewed yet, oldest first
    /// (may hold a slot whose flag in `pending` was cleared since: skipped). Every tick by
    /// deltas recomputes their bits exactly and renews the oldest `renew_per_tick`.
    backlog: Vec<u32>,
    /// One bit a slot: in `backlog` and not renewed since.
    pending: Vec<u64>,
    renew_per_tick: usize,
    prices: Vec<PriceEntry>,
    tables: PriceTables,
    bits: Bits,
    blocks: BlockStore,
    pairs: PairIndex,
    pool: Option<Pool>,
    routing: Routing,
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
            terms: SlotStore::new(slots),
            windows: SlotStore::new(slots),
            fresh: Vec::new(),
            index: WindowIndex::new(assets),
            delta_accounts: 0,
            delta_in_block: vec![0; slots.div_ceil(64)],
            left: Vec::new(),
            moved: Vec::new(),
            defer_after: (slots / DEFER_PER_SLOTS).max(DEFER_MIN),
            deferred_scans: 0,
            stale: vec![false; assets],
            backlog: Vec::new(),
            pending: vec![0; slots.div_ceil(64)],
            renew_per_tick: RENEWALS_PER_TICK,
            prices: vec![PriceEntry::default(); assets],
            tables: PriceTables::new(assets),
            bits: Bits::new(slots),
            blocks: BlockStore::new(slots, assets),
            pairs: PairIndex::new(assets),
            pool: None,
            routing: Routing::Deltas,
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
    /// (`pool.rs`). Off by default (docs/lab/performance.md has what it gains).
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

    /// A tick whose move leaves the windows of more than `n` accounts (counting the backlog and
    /// the moves whose renewal is still deferred) is served by a full scan, and the renewal is
    /// deferred until a tick leaves at most `n` (default: slots / 256, at least 64, as
    /// [`with_deferred_renewal`](Self::with_deferred_renewal); `usize::MAX`: never defer). Both
    /// paths give the same exact bitmaps; `0` defers every renewal that has something to renew
    /// (tests).
    pub fn with_defer_after(mut self, n: usize) -> Self {
        self.defer_after = n;
        self
    }

    /// A tick renews the windows of `n` accounts of the backlog (the accounts whose windows
    /// the moves left, oldest first; at least 1/8 of it when `n > 0`) and, by deltas,
    /// recomputes only the bits of the others ([`RENEWALS_PER_TICK`] by default). Any `n`
    /// gives the same exact bitmaps; `0` never renews a window a tick left (tests).
    pub fn with_renewals_per_tick(mut self, n: usize) -> Self {
        self.renew_per_tick = n;
        self
    }

    /// Defers the renewal of windows a large move leaves (more than slots / 256, at least
    /// 64), serving such ticks by full scans ([`with_defer_after`](Self::with_defer_after)).
    /// The default; `with_defer_after(usize::MAX)` renews on every tick.
    pub fn with_deferred_renewal(self) -> Self {
        let n = (self.terms.slots() / DEFER_PER_SLOTS).max(DEFER_MIN);
        self.with_defer_after(n)
    }

    /// How the delta accounts' windows are found on a tick ([`WindowPolicy::Measured`] by
    /// default: per asset, a list scan or the edge index, whichever its ticks make cheaper).
    /// Every policy gives the same bitmaps. Switches each asset at its next tick or load.
    pub fn with_window_policy(mut self, policy: WindowPolicy) -> Self {
        self.index.set_policy(policy);
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
        if slot as usize >= self.terms.slots() {
            return None;
        }
        let terms = self.terms.get(slot as usize);
        Some(account_health(terms, &self.prices))
    }

    /// [`health`](Self::health) of many slots at once: `out` is cleared, then holds one entry a
    /// slot, in order. Event reporting reads accounts spread over the whole book, a cache miss
    /// each; here the reads of the next accounts are hinted ahead so that the misses overlap.
    pub fn healths(&self, slots: &[u32], out: &mut Vec<Option<AccountHealth>>) {
        // Two reads an account (its span, then its terms): hint the span twice as far ahead.
        const AHEAD: usize = 8;
        out.clear();
        for (i, &slot) in slots.iter().enumerate() {
            if let Some(&s) = slots.get(i + 2 * AHEAD) {
                self.terms.prefetch_span(s as usize);
            }
            if let Some(&s) = slots.get(i + AHEAD) {
                self.terms.prefetch_list(s as usize);
            }
            out.push(self.health(slot));
        }
    }

    /// The terms of the account in `slot`, in the order given (empty when the slot is empty
    /// or out of range).
    pub fn terms(&self, slot: u32) -> &[Coeff] {
        self.terms.get(slot as usize)
    }

    /// Rewrites the full-scan layout's arenas in block order, packed, dropping the garbage
    /// that upserts leave (allocates: call it after a bulk load, not on the hot path). A book
    /// B full scan (1,000,000 accounts, 64 assets) measured 2.1 ms after it against 3.2 ms
    /// straight after loading (docs/lab/performance.md). [`ScanEngine::loaded`] calls it.
    pub fn compact(&mut self) {
        self.blocks.compact();
        self.terms.compact();
        self.changes_since_compact = 0;
    }

    /// Loads many accounts at once, as if each were [upserted](ScanEngine::upsert) in turn (a
    /// later entry for a slot replaces an earlier one), but fills the pair index by sorting
    /// each pair group once and building its B-tree in one pass instead of one search per
    /// account (and the window index likewise when it is empty). Every entry is validated first: on an error nothing has changed. Allocates
    /// (the slot list and the sort): for a bulk load off the hot path; then call
    /// [`loaded`](ScanEngine::loaded) to pack the full-scan arenas.
    pub fn load<'a, I>(&mut self, accounts: I) -> Result<(), EngineError>
    where
        I: IntoIterator<Item = (u32, &'a [Coeff])>,
        I::IntoIter: Clone,
    {
        let accounts = accounts.into_iter();
        // What the load adds to the flat stores, so that each is allocated once.
        let (mut room, mut places) = (0, 0);
        let mut exposures = vec![0usize; self.assets];
        for (slot, terms) in accounts.clone() {
            self.check_slot(slot)?;
            check_account(terms, self.assets).map_err(|source| EngineError::BadTerms { slot, source })?;
            let cap = terms.len().next_power_of_two();
            room += cap;
            if as_pair(terms).is_none() && !terms.is_empty() {
                places += cap;
                terms.iter().filter(|t| t.coeff != 0).for_each(|t| exposures[t.asset as usize] += 1);
            }
        }
        self.terms.reserve(room);
        self.windows.reserve(places);
        for (a, &n) in exposures.iter().enumerate() {
            self.index.reserve(a as u16, n);
        }
        let mut pending = vec![false; self.terms.slots()];
        let mut order = Vec::new();
        for (slot, terms) in accounts {
            let s = slot as usize;
            if !pending[s] {
                pending[s] = true;
                order.push(slot);
                self.unindex(s);
            }
            self.terms.set(s, terms);
        }
        let mut d = Deferred::default();
        for &slot in &order {
            self.index(slot as usize, Some(&mut d));
        }
        self.blocks.rebalance_all();
        self.changes_since_compact += order.len();
        // Freed before the pair groups and edges are built: at 10 M accounts the load's peak.
        drop(pending);
        drop(order);
        self.pairs.extend_bulk(d.pairs, &self.prices);
        self.index.index_long_lists();
        Ok(())
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
            edge_indexed_assets: (0..self.assets as u16).filter(|&a| self.index.edge_indexed(a)).count(),
            backlog: self.backlog.iter().filter(|&&s| self.is_pending(s as usize)).count(),
        }
    }

    /// Accounts that a tick of `asset` updates by delta (the pair accounts are not counted).
    pub fn delta_exposure(&self, asset: u16) -> usize {
        if (asset as usize) < self.assets { self.index.exposure(asset) } else { 0 }
    }

    fn check_slot(&self, slot: u32) -> Result<(), EngineError> {
        if (slot as usize) < self.terms.slots() {
            Ok(())
        } else {
            Err(EngineError::SlotOutOfRange { slot, slots: self.terms.slots() })
        }
    }

    /// Takes the account in `slot` out of every index (its terms stay in `self.terms`).
    /// O(terms).
    fn unindex(&mut self, slot: usize) {
        // Every read below is a cache miss on a large book, and most depend on an earlier one
        // (span, then list; entry, then buckets). The chains that do not depend on each other
        // (the terms, the windows' places, the block) are hinted first so that they overlap.
        self.windows.prefetch_span(slot);
        self.blocks.prefetch_block(slot);
        let terms = self.terms.get(slot);
        if terms.is_empty() {
            return; // in no index (a bulk load's new slots: nothing to rebalance either)
        }
        let pair = as_pair(terms);
        if pair.is_none() {
            self.windows.prefetch_list(slot);
        }
        self.blocks.prefetch_lists(slot);
        if let Some(pair) = pair {
            self.blocks.remove_account(slot, terms);
            self.pairs.remove(slot as u32, pair);
            return;
        }
        // The terms' entries are in different lists and buckets: hint them all first so that
        // their cache misses overlap instead of coming one after another.
        let places = self.windows.get(slot);
        for (t, &pos) in terms.iter().zip(places) {
            if t.coeff != 0 {
                self.index.prefetch_remove(t.asset, pos);
            }
        }
        self.blocks.remove_account(slot, terms);
        for (t, &pos) in terms.iter().zip(places) {
            if t.coeff != 0 {
                self.index.prefetch_edges(t.asset, pos);
            }
        }
        for (t, &pos) in terms.iter().zip(places) {
            if t.coeff != 0 {
                self.index.prefetch_moved(t.asset, pos);
            }
        }
        for (t, &pos) in terms.iter().zip(places) {
            if t.coeff != 0 {
                self.index.remove(t.asset, pos);
            }
        }
        self.windows.clear(slot);
        self.delta_accounts -= 1;
        self.delta_in_block[slot / 64] -= 1;
        self.set_pending(slot, false); // re-indexed with fresh windows, or emptied
    }

    /// Puts the account in `slot` (terms already in `self.terms`) into every index and sets its
    /// bits. A pair account goes to `defer.pairs` when given (a bulk load builds the pair
    /// groups together).
    fn index(&mut self, slot: usize, defer: Option<&mut Deferred>) {
        let terms = self.terms.get(slot);
        match defer {
            // A bulk load: the blocks choose their layouts once, at its end.
            Some(_) => self.blocks.insert_terms(slot, terms),
            None => self.blocks.insert_account(slot, terms),
        }
        let (spot, stressed) = reference::health(terms, &self.prices);
        self.bits.set(slot, spot < 0, stressed < 0);
        if let Some(pair) = as_pair(terms) {
            match defer {
                Some(d) => d.pairs.push(slot as u32, pair),
                None => self.pairs.insert(slot as u32, pair, &self.prices),
            }
            return;
        }
        if terms.is_empty() {
            return;
        }
        self.delta_accounts += 1;
        self.delta_in_block[slot / 64] += 1;
        let k = terms.iter().filter(|t| t.coeff != 0).count() as u32;
        let places = &mut self.fresh;
        places.clear();
        for (i, t) in terms.iter().enumerate() {
            if t.coeff == 0 {
                places.push(u32::MAX);
                continue;
            }
            // Equal shares: no asset has moved this account yet.
            let w = TermWindows::of(t.coeff, &self.prices[t.asset as usize], (spot, stressed), (1, k));
            let e = Exposure { slot: slot as u32, term: i as u16, neg: t.coeff < 0, w };
            places.push(self.index.push(t.asset, e));
        }
        self.windows.set(slot, &self.fresh);
    }

    /// Recomputes the delta account in `slot` exactly at the current prices, sets its bits and
    /// gives its terms new windows around the current prices. O(terms).
    ///
    /// When the other terms' windows leave at least a quarter of the room, they are kept and
    /// the moved terms get what is left (below). Otherwise every window is renewed: the terms
    /// in `moved` (the asset whose tick left the window: one term, or two when the
    /// account holds it on both sides) share [`MOVED_SHARE`] of the room, the others share
    /// the rest equally: the asset that moved is the likeliest to move again. The shares add
    /// up to at most 1, as [`Window::of`](super::windows::Window::of) needs.
    fn recompute(&mut self, slot: usize, moved: u16) {
        self.set_pending(slot, false);
        let terms = self.terms.get(slot);
        let (h, hs) = reference::health(terms, &self.prices);
        self.bits.set(slot, h < 0, hs < 0);
        self.recomputed += 1;
        let k = terms.iter().filter(|t| t.coeff != 0).count() as u32;
        let m = terms.iter().filter(|t| t.coeff != 0 && t.asset == moved).count() as u32;
        if m > 0 && m < k {
            // Keep the other terms' windows (their prices have not moved, so they still hold)
            // and give the moved terms what they leave of the room: every term's price inside
            // its window moves the health towards zero by at most its reach, and the reaches
            // add up to at most the room. Two edge updates instead of a new window per term,
            // when at least a quarter of the room is left for the moved asset.
            let (mut r, mut rs) = (room(h), room(hs));
            for (t, &pos) in terms.iter().zip(self.windows.get(slot)) {
                if t.coeff != 0 && t.asset != moved {
                    let w = self.index.get(t.asset, pos);
                    let (a, b) = w.reach(t.coeff, &self.prices[t.asset as usize], (h, hs));
                    r -= a;
                    rs -= b;
                }
            }
            if r * 4 >= room(h) && rs * 4 >= room(hs) {
                let share = (r / m as i128, rs / m as i128);
                for (t, &pos) in terms.iter().zip(self.windows.get(slot)) {
                    if t.coeff != 0 && t.asset == moved {
                        let new =
                            TermWindows::with_room(t.coeff, &self.prices[t.asset as usize], (h, hs), share);
                        self.index.set(t.asset, pos, new);
                    }
                }
                return;
            }
        }
        for (t, &pos) in terms.iter().zip(self.windows.get(slot)) {
            if t.coeff == 0 {
                continue;
            }
            let share = match (m == 0 || m == k, t.asset == moved) {
                (true, _) => (1, k),
                (false, true) => (MOVED_SHARE.0, MOVED_SHARE.1 * m),
                (false, false) => (MOVED_SHARE.1 - MOVED_SHARE.0, MOVED_SHARE.1 * (k - m)),
            };
            let new = TermWindows::of(t.coeff, &self.prices[t.asset as usize], (h, hs), share);
            self.index.set(t.asset, pos, new);
        }
    }

    /// How many windows the current prices leave in the assets whose renewal is deferred,
    /// counting at most `n + 1` (an upper bound: an account may count once per edge).
    /// O(the prices' buckets + n).
    fn deferred_left(&self, n: usize) -> usize {
        let mut total = 0;
        for &a in &self.moved {
            if !self.index.edge_indexed(a) {
                continue; // a list-scanned asset's renewals are cheap: they never defer a tick
            }
            total += self.index.count_left(a, &self.prices[a as usize], (n - total).saturating_add(1));
            if total > n {
                break;
            }
        }
        total
    }

    /// The slots with a window the current prices leave in the assets whose renewal was
    /// deferred (a slot may come more than once); those assets are deferred no longer.
    fn take_stale_left(&mut self) -> Vec<u32> {
        let mut left = std::mem::take(&mut self.left);
        left.clear();
        for &a in &self.moved {
            self.index.left(a, &self.prices[a as usize], &mut left);
            self.stale[a as usize] = false;
        }
        self.moved.clear();
        left
    }

    /// Renews the windows that batch ticks and deferred ticks left (the bits are right: the
    /// scans set them), restoring the invariant every tick relies on: each indexed window holds
    /// the current price of its kind. When they belong to more than 1/[`REBUILD_AFTER`] of the
    /// delta accounts (a large move), rebuilds every window at once instead (one pass, cheaper
    /// than that many bucket updates).
    fn renew_stale(&mut self) {
        let mut left = self.take_stale_left();
        left.sort_unstable();
        left.dedup();
        if left.len() > 64 && left.len() * REBUILD_AFTER > self.delta_accounts {
            self.rebuild_windows();
        } else {
            for &s in &left {
                self.recompute(s as usize, u16::MAX);
            }
        }
        self.left = left;
    }

    /// Puts the accounts with a window the current prices leave in the assets whose renewal
    /// was deferred into the backlog (their bits are right: the scans set them at these prices),
    /// so their renewal is spread over the next ticks instead of paid by one.
    fn defer_stale(&mut self) {
        let left = self.take_stale_left();
        for &s in &left {
            self.defer_renewal(s);
        }
        self.left = left;
    }

    fn set_pending(&mut self, slot: usize, on: bool) {
        let (w, b) = (slot / 64, 1u64 << (slot % 64));
        if on { self.pending[w] |= b } else { self.pending[w] &= !b }
    }

    fn is_pending(&self, slot: usize) -> bool {
        self.pending[slot / 64] >> (slot % 64) & 1 == 1
    }

    /// Adds `slot` to the backlog unless it is there; true if it was not.
    fn defer_renewal(&mut self, slot: u32) -> bool {
        let new = !self.is_pending(slot as usize);
        if new {
            self.set_pending(slot as usize, true);
            self.backlog.push(slot);
        }
        new
    }

    /// Works the backlog at the current prices: renews the oldest `renew` accounts (new
    /// windows, [`recompute`](Self::recompute)), and when `rent`, recomputes the bits of the
    /// others exactly (without it the caller has just set every bit by a full scan). O(backlog).
    fn work_backlog(&mut self, moved: u16, rent: bool) {
        // A long backlog drains faster: its rent costs every tick.
        let mut renew = match self.renew_per_tick {
            0 => 0,
            n => n.max(self.backlog.len() / BACKLOG_DRAIN),
        };
        // Two reads an account (its span, then its terms): hinted ahead so the misses overlap.
        const AHEAD: usize = 8;
        let mut backlog = std::mem::take(&mut self.backlog);
        let mut keep = 0;
        for i in 0..backlog.len() {
            if let Some(&s) = backlog.get(i + 2 * AHEAD) {
                self.terms.prefetch_span(s as usize);
            }
            if let Some(&s) = backlog.get(i + AHEAD) {
                self.terms.prefetch_list(s as usize);
            }
            let s = backlog[i] as usize;
            if !self.is_pending(s) {
                continue; // renewed or re-indexed since it was left
            }
            // A slot that stopped being a delta account was unindexed, which cleared its flag.
            debug_assert!(!self.windows.get(s).is_empty(), "slot {s} in the backlog has no windows");
            if renew > 0 {
                renew -= 1;
                self.recompute(s, moved);
                continue;
            }
            if rent {
                self.rent(s);
            }
            backlog[keep] = s as u32;
            keep += 1;
        }
        backlog.truncate(keep);
        self.backlog = backlog;
    }

    /// Sets the bits of `slot` from its exact health at the current prices; its windows stay
    /// as they are.
    fn rent(&mut self, slot: usize) {
        let (h, hs) = reference::health(self.terms.get(slot), &self.prices);
        self.bits.set(slot, h < 0, hs < 0);
    }

    /// Recomputes every delta account and rebuilds the edges in one pass. O(n); allocates.
    fn rebuild_windows(&mut self) {
        for slot in 0..self.terms.slots() {
            let terms = self.terms.get(slot);
            if self.windows.get(slot).is_empty() {
                continue; // a pair or an empty slot
            }
            let (h, hs) = reference::health(terms, &self.prices);
            self.bits.set(slot, h < 0, hs < 0);
            let k = terms.iter().filter(|t| t.coeff != 0).count() as u32;
            for (t, &pos) in terms.iter().zip(self.windows.get(slot)) {
                if t.coeff != 0 {
                    let w = TermWindows::of(t.coeff, &self.prices[t.asset as usize], (h, hs), (1, k));
                    self.index.set_unindexed(t.asset, pos, w);
                }
            }
            self.recomputed += 1;
        }
        self.index.rebuild_edges();
        for &s in &self.backlog {
            self.pending[s as usize / 64] = 0; // every window is new
        }
        self.backlog.clear();
    }

    /// Scans every block at the current prices into the bitmaps.
    fn full_scan(&mut self) {
        let t0 = cycles();
        self.full_scan_untimed();
        let slots = self.terms.slots();
        let _ = self.scan_cost.record(cycles().wrapping_sub(t0), slots);
    }

    /// The full scan of a tick of `asset` (from `old`; the new price already set): the pair
    /// index moves its cuts first, within a budget, and the scan then skips the blocks that
    /// hold no delta account. When the walk would flip more than the budget (a crash moving
    /// many pair accounts at once), every block is scanned and the pair index is invalidated.
    fn full_scan_tick(&mut self, asset: u16, old: &PriceEntry) {
        let t0 = cycles();
        let budget = self.terms.slots() / PAIR_FLIPS_PER_SLOTS;
        let walked = self.pool.is_none()
            && self.pairs.tick_within(asset, old, &self.prices, &mut self.bits, budget).is_some();
        if walked {
            self.delta_scan();
        } else {
            self.full_scan_untimed();
            self.pairs.invalidate();
        }
        let _ = self.scan_cost.record(cycles().wrapping_sub(t0), self.terms.slots());
    }

    /// Scans the blocks that hold a delta account (the pair accounts' bits are the pair
    /// index's).
    fn delta_scan(&mut self) {
        let k = self.kernel;
        let (blocks, tables) = (&self.blocks, &self.tables);
        let (bits, terms, prices) = (&mut self.bits, &self.terms, &self.prices[..]);
        let mut rechecks = 0;
        for (b, _) in self.delta_in_block.iter().enumerate().filter(|(_, n)| **n > 0) {
            rechecks += apply(bits, terms, prices, b, k.scan_block(&blocks.view(b), tables));
        }
        self.rechecks += rechecks;
    }

    fn full_scan_untimed(&mut self) {
        let n = self.blocks.blocks();
        let k = self.kernel;
        let (blocks, tables) = (&self.blocks, &self.tables);
        let (bits, terms, prices) = (&mut self.bits, &self.terms, &self.prices[..]);
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
fn apply(bits: &mut Bits, terms: &SlotStore<Coeff>, prices: &[PriceEntry], b: usize, w: Words) -> u64 {
    let (mut breach, mut at_risk, mut open) = (w.breach, w.at_risk, w.recheck);
    let n = open.count_ones() as u64;
    while open != 0 {
        let l = open.trailing_zeros() as usize;
        open &= open - 1;
        // A lane past the last slot is empty: health 0.
        let (spot, stressed) = reference::health(terms.get(b * 64 + l), prices);
        breach = (breach & !(1 << l)) | (((spot < 0) as u64) << l);
        at_risk = (at_risk & !(1 << l)) | (((stressed < 0) as u64) << l);
    }
    bits.set_words(b, breach, at_risk);
    n
}

/// Validates an account's terms: what the card takes ([`check_terms`], zero coefficients
/// allowed and ignored) or what the software engine takes besides
/// ([`check_terms_software`]: up to 64 terms, an asset once on each side). On refusal the
/// software check's reason is given, since it is the wider contract.
fn check_account(terms: &[Coeff], assets: usize) -> Result<(), TermError> {
    check_terms(terms, assets).or_else(|_| check_terms_software(terms, assets))
}

/// Exact health and display ratio of one account (what [`SoftwareEngine::health`] gives for it).
pub fn account_health(terms: &[Coeff], prices: &[PriceEntry]) -> AccountHealth {
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
        self.terms.slots()
    }

    fn assets(&self) -> usize {
        self.assets
    }

    fn upsert(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        self.check_slot(slot)?;
        check_account(terms, self.assets).map_err(|source| EngineError::BadTerms { slot, source })?;
        let s = slot as usize;
        self.changes_since_compact += 1;
        self.unindex(s);
        self.terms.set(s, terms);
        self.index(s, None);
        Ok(())
    }

    fn remove(&mut self, slot: u32) -> Result<(), EngineError> {
        self.check_slot(slot)?;
        let s = slot as usize;
        self.changes_since_compact += 1;
        self.unindex(s);
        self.terms.clear(s);
        self.bits.set(s, false, false);
        Ok(())
    }

    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError> {
        let a = asset as usize;
        if a >= self.assets {
            return Err(EngineError::AssetOutOfRange { asset, assets: self.assets });
        }
        let old = self.prices[a];
        // Windows the deferred moves left (at the prices of the last full scan, which set their
        // bits), then those this move leaves in its asset.
        let limit = self.defer_after.saturating_add(self.deferred_scans);
        let stale_left = self.deferred_left(limit);
        self.set_price(a, price);
        // The backlog counts too: every account in it is recomputed by a tick by deltas.
        let mut left = stale_left.saturating_add(self.backlog.len());
        if left <= limit && self.index.edge_indexed(asset) {
            left += self.index.count_left(asset, &price, (limit - left).saturating_add(1));
        }
        if self.routing == Routing::FullScan || left > limit {
            // Served as a batch tick: the scan sets every bit; the windows this move and the
            // deferred ones left are renewed by the first tick that leaves few, or fewer than
            // the deferred scans have cost.
            self.routed_ticks += 1;
            self.full_scan_tick(asset, &old);
            let credit = self.defer_after.min((self.terms.slots() / SCAN_RENEWALS_PER_SLOTS).max(DEFER_MIN));
            self.deferred_scans = self.deferred_scans.saturating_add(credit.max(1));
            if !self.stale[a] {
                self.stale[a] = true;
                self.moved.push(asset);
            }
            // The scan set every bit; a run of scans still drains the backlog.
            self.work_backlog(asset, false);
            return Ok(());
        }
        if !self.moved.is_empty() {
            // Taken at the prices the deferred scans set the bits at: an account whose window
            // this move re-enters after the scans left it has the scans' bit, not its window's.
            // Few go to the backlog; many (the deferral has paid for them) are renewed at once.
            self.set_price(a, old);
            if stale_left.saturating_add(self.backlog.len()) <= self.defer_after {
                self.defer_stale();
            } else {
                self.renew_stale();
            }
            self.set_price(a, price);
        }
        self.deferred_scans = 0;
        let t0 = cycles();
        self.pairs.tick(asset, &old, &self.prices, &mut self.bits);
        let mut left = std::mem::take(&mut self.left);
        left.clear();
        let mut found = self.index.left(asset, &price, &mut left);
        if found > 64 && found * REBUILD_AFTER > self.delta_accounts {
            self.rebuild_windows(); // a large move: every window at once (empties the backlog)
        } else {
            // Windows of the backlog's accounts are found again while they stay left: only the
            // new ones tell what this asset's ticks leave (the edges-or-list choice).
            found = 0;
            for &s in &left {
                found += self.defer_renewal(s) as usize;
            }
        }
        self.left = left;
        self.work_backlog(asset, true);
        self.index.record(asset, found);
        let exposed = self.index.exposure(asset);
        // Informational (routing_costs): tiny exposures measure the call's overhead.
        if exposed >= 256 {
            let _ = self.delta_cost.record(cycles().wrapping_sub(t0), exposed);
        }
        Ok(())
    }

    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError> {
        if prices.len() != self.assets {
            return Err(EngineError::PriceVectorLength { got: prices.len(), assets: self.assets });
        }
        for (a, p) in prices.iter().enumerate() {
            if self.prices[a] != *p && !self.stale[a] {
                self.stale[a] = true;
                self.moved.push(a as u16);
            }
            self.set_price(a, *p);
        }
        self.full_scan();
        self.pairs.invalidate();
        // The scan set every bit; the windows the moves left are renewed by the next tick
        // (`renew_stale`), so a batch tick costs the scan alone.
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
        if self.changes_since_compact * COMPACT_AFTER.1 >= self.terms.slots() * COMPACT_AFTER.0 {
            self.compact();
        }
    }
}
