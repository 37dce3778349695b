//! The full-scan layout: the book cut into blocks of 64 slots (one bitmap word each), each block
//! stored in one of two layouts, chosen per block by its density.
//!
//! ```text
//!  block b (slots 64b .. 64b+63), column layout: one column per asset the block holds
//!    asset 0: [c_0 .. c_63]  asset 3: [c_0 .. c_63] ...      price: one broadcast per column
//!
//!  block b, row (term-major) layout: row k holds each slot's k-th term
//!    row 0: coeff [c_0 .. c_63]  pidx [2a_0+s_0 .. ]        price: one 16-byte load per lane
//!    row 1: ...                    (rows = most terms any slot of the block holds)
//! ```
//!
//! A column costs the scan 64 multiply-adds however few slots hold the asset; a row costs 64
//! multiply-adds plus gathers of each lane's price from the (small, cache-resident) price
//! table. A block of 64 four-asset accounts on the same 4 assets is 4 full columns; a block of
//! a 64-asset book with a long tail holds 20-40 assets, most in one or two slots, but only 4
//! rows. The rule (measured in `host/benches/engine.rs`): a block takes the row layout when it
//! holds more than [`ROW_COST`] x rows distinct assets and goes back to columns when it holds
//! at most `ROW_COST - 1` x rows (hysteresis, so alternating upserts do not flap).
//!
//! Columns and rows of all blocks live in two arenas in block order, so a full scan reads one
//! sequential stream per layout (no columns whose starts share a 4 KiB offset, no pointer
//! chasing) and the per-asset price of a column is a broadcast scalar. A block whose list
//! outgrows its capacity moves to the end of its arena with double capacity; when more than half
//! an arena is garbage it is rewritten in block order. That is the only allocation, amortised
//! over upserts; the scan never allocates.

use liqscan_hdl::abi::{Coeff, MAX_COEFFS_PER_ACCOUNT};

use super::terms::in_order;

/// 1 when term `k` is the negative leg of an asset the account also holds as a positive
/// term (its own column, [`Held`]), else 0.
fn leg(terms: &[Coeff], k: usize) -> u8 {
    let t = terms[k];
    (t.coeff < 0 && terms.iter().any(|u| u.asset == t.asset && u.coeff > 0)) as u8
}

/// Slots per block: one bitmap word.
pub(crate) const LANES: usize = 64;

/// A block holding more than `ROW_COST * rows` distinct assets is stored as rows: a gathered
/// term costs about this many broadcast column lanes (measured, docs/lab/performance.md).
pub(crate) const ROW_COST: usize = 3;

/// How blocks choose their layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Layout {
    /// Per block by density (the default): columns for dense blocks, rows for sparse ones.
    #[default]
    Auto,
    /// Every block in columns (the layout before rows existed; for comparison and tests).
    Columns,
    /// Every block in rows (for comparison and tests).
    Rows,
}

/// One asset's coefficients for the 64 slots of a block (0 where the slot does not hold it).
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(crate) struct Column(pub [i32; LANES]);

const EMPTY_COL: Column = Column([0; LANES]);

/// The k-th term of each of the 64 slots of a block: coefficient (0: none) and price index
/// `2 * asset + (coeff < 0)` (0 for none), which picks the (spot, stressed) price pair the
/// term's sign needs.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(crate) struct Row {
    pub coeff: [i32; LANES],
    pub pidx: [u16; LANES],
}

const EMPTY_ROW: Row = Row { coeff: [0; LANES], pidx: [0; LANES] };

/// Most assets for which blocks may take the row layout (the price index is 16 bits); the card
/// takes 1024 ([`MAX_ASSETS`](liqscan_hdl::abi::MAX_ASSETS)). Beyond it every block is columns.
pub(crate) const ROW_MAX_ASSETS: usize = 1 << 15;

/// A column holds a positive coefficient.
pub(crate) const HAS_POS: u8 = 1;
/// A column holds a negative coefficient.
pub(crate) const HAS_NEG: u8 = 2;

fn signs(c: &Column) -> u8 {
    c.0.iter().fold(0, |m, &x| {
        m | if x > 0 {
            HAS_POS
        } else if x < 0 {
            HAS_NEG
        } else {
            0
        }
    })
}

/// An asset a block holds: in the column layout, entry i describes column i.
///
/// A slot holding one asset on both sides (a supply and a borrow) puts its positive leg in
/// the asset's column of leg 0 and its negative leg in the column of leg 1; every other term
/// goes to leg 0 whatever its sign. So a block needs a second column of an asset only when one
/// of its slots holds that asset twice.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Held {
    pub asset: u16,
    /// 1 for the column of negative legs of two-legged slots, else 0.
    pub leg: u8,
    /// Signs present in the column ([`HAS_POS`] | [`HAS_NEG`]); lets the kernel skip the price
    /// select of single-signed columns (collateral or debt only). Column layout only.
    pub signs: u8,
    /// Slots of the block holding the asset.
    lanes: u8,
}

#[derive(Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u16,
    cap: u16,
}

/// Per-block lists of `T` in one vector, in block order.
struct Arena<T: Copy> {
    spans: Vec<Span>,
    data: Vec<T>,
    empty: T,
    garbage: usize,
}

impl<T: Copy> Arena<T> {
    fn new(blocks: usize, empty: T) -> Self {
        Arena { spans: vec![Span::default(); blocks], data: Vec::new(), empty, garbage: 0 }
    }

    /// Hints the first line of block `b`'s list.
    #[inline]
    fn prefetch(&self, b: usize) {
        if let Some(k) = self.spans.get(b) {
            crate::prefetch::prefetch(&self.data, k.start as usize);
        }
    }

    #[inline]
    fn get(&self, b: usize) -> &[T] {
        let k = self.spans[b];
        &self.data[k.start as usize..k.start as usize + k.len as usize]
    }

    #[inline]
    fn get_mut(&mut self, b: usize) -> &mut [T] {
        let k = self.spans[b];
        &mut self.data[k.start as usize..k.start as usize + k.len as usize]
    }

    fn len(&self, b: usize) -> usize {
        self.spans[b].len as usize
    }

    fn live(&self) -> usize {
        self.spans.iter().map(|k| k.len as usize).sum()
    }

    /// Appends an empty entry to block `b`'s list.
    fn push(&mut self, b: usize) {
        let k = self.spans[b];
        if k.len == k.cap {
            let (s, cap) = (k.start as usize, k.cap as usize);
            let new_cap = (cap * 2).max(2);
            if s + cap == self.data.len() && cap > 0 {
                // The last block grows in place.
                self.data.resize(s + new_cap, self.empty);
            } else {
                if self.garbage + cap > self.data.len() / 2 && self.data.len() > 1024 {
                    // Room for one more entry per list: upserts are still coming.
                    self.compact(1);
                    return self.push(b);
                }
                let start = self.data.len();
                self.data.extend_from_within(s..s + k.len as usize);
                self.data.resize(start + new_cap, self.empty);
                self.garbage += cap;
                self.spans[b].start = start as u32;
            }
            self.spans[b].cap = new_cap as u16;
        }
        let k = self.spans[b];
        self.data[k.start as usize + k.len as usize] = self.empty;
        self.spans[b].len += 1;
    }

    /// Moves the last entry of block `b` to position `i` and shortens the list by one.
    fn swap_remove(&mut self, b: usize, i: usize) {
        let l = self.get_mut(b);
        let last = l.len() - 1;
        l[i] = l[last];
        self.spans[b].len -= 1;
    }

    fn truncate(&mut self, b: usize, len: usize) {
        self.spans[b].len = self.spans[b].len.min(len as u16);
    }

    /// Drops block `b`'s list and its capacity.
    fn release(&mut self, b: usize) {
        self.garbage += self.spans[b].cap as usize;
        self.spans[b] = Span::default();
    }

    /// Rewrites the arena in block order, each nonempty list with room for `spare` more
    /// entries (0 packs them: spare room between lists is read by the hardware prefetcher
    /// during the scan as if it were data).
    ///
    /// When the lists lie in block order (after a bulk load), the old vector's pages are given
    /// back as the copy passes them, so the two are not held whole side by side (at 10 M
    /// accounts, 200 MB less at the load's peak).
    fn compact(&mut self, spare: usize) {
        let live: usize = self.spans.iter().map(|k| k.len as usize + spare).sum();
        let mut data = Vec::with_capacity(live + live / 4);
        advise_huge(&data);
        let mut old = std::mem::take(&mut self.data);
        let ordered = in_order(self.spans.iter().map(|k| (k.start as usize, k.cap as usize)));
        let mut given_back = 0;
        for k in &mut self.spans {
            let s = k.start as usize;
            let start = data.len();
            data.extend_from_slice(&old[s..s + k.len as usize]);
            let cap = if k.len == 0 { 0 } else { k.len as usize + spare };
            data.resize(start + cap, self.empty);
            *k = Span { start: start as u32, len: k.len, cap: cap as u16 };
            if ordered && s > given_back + GIVE_BACK_EVERY / size_of::<T>().max(1) {
                give_back(&mut old, given_back..s);
                given_back = s;
            }
        }
        self.data = data;
        self.garbage = 0;
    }
}

/// Bytes of an old arena copied between two hand-backs of its pages.
const GIVE_BACK_EVERY: usize = 8 << 20;

/// Hands the whole pages of `v[range]` back to the kernel (their contents read as zeros
/// after): for a vector about to be dropped whose front has been copied out.
fn give_back<T: Copy>(v: &mut [T], range: std::ops::Range<usize>) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let bytes = &mut v[range];
        let (start, end) = (bytes.as_mut_ptr() as usize, bytes.as_mut_ptr() as usize + size_of_val(bytes));
        let (first, last) = (start.next_multiple_of(PAGE), end / PAGE * PAGE);
        if last > first {
            // SAFETY: [first, last) lies inside the borrowed slice; MADV_DONTNEED on private
            // anonymous memory leaves it mapped (reading as zeros). The caller reads those
            // elements no more, and dropping them reads nothing (T: Copy).
            unsafe {
                libc::madvise(first as *mut libc::c_void, last - first, libc::MADV_DONTNEED);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (v, range);
}

/// Asks the kernel to back `v`'s allocation with transparent huge pages where it can (before
/// it is first written): a scan of the arenas then takes one TLB entry per 2 MiB instead of
/// per 4 KiB. A hint; nothing happens where the kernel or the platform says no.
pub fn advise_huge<T>(v: &Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let (start, bytes) = (v.as_ptr() as usize, v.capacity() * std::mem::size_of::<T>());
        let first = start.next_multiple_of(HUGE);
        if bytes >= 2 * HUGE {
            // SAFETY: the range lies inside `v`'s allocation (first >= start, first + len <=
            // start + bytes); MADV_HUGEPAGE changes no contents.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    (start + bytes - first) / HUGE * HUGE,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
}

/// All blocks of a book.
pub(crate) struct BlockStore {
    layout: Layout,
    rows_mode: Vec<bool>,
    cols: Arena<Column>,
    rows: Arena<Row>,
    held: Vec<Vec<Held>>,
    /// Copy of `held` for column blocks, contiguous in block order: what the kernel reads.
    meta: Arena<Held>,
    /// Terms each slot holds, per block.
    nterms: Vec<[u8; LANES]>,
    /// Whether some slot of the block holds more than [`MAX_COEFFS_PER_ACCOUNT`] terms.
    wide: Vec<bool>,
}

/// What the full scan reads for one block.
pub(crate) enum BlockView<'a> {
    /// Column layout: `cols[i]` holds asset `held[i].asset`.
    Cols {
        cols: &'a [Column],
        held: &'a [Held],
        /// Some slot of the block holds more than [`MAX_COEFFS_PER_ACCOUNT`] terms: the
        /// filters' error bounds for up to
        /// [`MAX_SOFTWARE_TERMS`](liqscan_hdl::abi::MAX_SOFTWARE_TERMS) terms apply.
        wide: bool,
    },
    /// Row layout.
    Rows { rows: &'a [Row], wide: bool },
}

impl BlockStore {
    pub fn new(slots: usize, assets: usize) -> Self {
        let n = slots.div_ceil(LANES);
        BlockStore {
            layout: if assets > ROW_MAX_ASSETS { Layout::Columns } else { Layout::Auto },
            rows_mode: vec![false; n],
            cols: Arena::new(n, EMPTY_COL),
            rows: Arena::new(n, EMPTY_ROW),
            held: vec![Vec::new(); n],
            meta: Arena::new(n, Held { asset: 0, leg: 0, signs: 0, lanes: 0 }),
            nterms: vec![[0; LANES]; n],
            wide: vec![false; n],
        }
    }

    /// Sets the layout policy; only on an empty store.
    pub fn set_layout(&mut self, layout: Layout) {
        assert!(self.held.iter().all(|h| h.is_empty()), "set the layout before any upsert");
        if self.layout == Layout::Columns && layout != Layout::Columns {
            return; // too many assets for rows (ROW_MAX_ASSETS)
        }
        self.layout = layout;
        self.rows_mode.fill(layout == Layout::Rows);
    }

    pub fn blocks(&self) -> usize {
        self.held.len()
    }

    #[inline]
    pub fn view(&self, b: usize) -> BlockView<'_> {
        let wide = self.wide[b];
        if self.rows_mode[b] {
            BlockView::Rows { rows: self.rows.get(b), wide }
        } else {
            BlockView::Cols { cols: self.cols.get(b), held: self.meta.get(b), wide }
        }
    }

    /// Bytes a full scan reads: the columns in use with their asset ids and signs, the rows.
    pub fn scan_bytes(&self) -> usize {
        self.cols.live() * (size_of::<Column>() + size_of::<Held>()) + self.rows.live() * size_of::<Row>()
    }

    /// Rewrites every arena in block order, packed (allocates; for after a bulk load).
    pub fn compact(&mut self) {
        self.cols.compact(0);
        self.rows.compact(0);
        self.meta.compact(0);
    }

    /// Bytes the arenas hold: what a scan reads plus spare capacity and garbage.
    pub fn arena_bytes(&self) -> usize {
        self.cols.data.len() * size_of::<Column>()
            + self.meta.data.len() * size_of::<Held>()
            + self.rows.data.len() * size_of::<Row>()
    }

    /// Blocks stored as rows.
    pub fn row_blocks(&self) -> usize {
        self.rows_mode.iter().filter(|&&r| r).count()
    }

    /// Puts the account's nonzero terms in `slot` (empty before), then lets the block choose
    /// its layout: the layout changes only between whole accounts, so a lane's legs are
    /// always those of one account ([`Held`]).
    pub fn insert_account(&mut self, slot: usize, terms: &[Coeff]) {
        self.insert_terms(slot, terms);
        self.rebalance(slot / LANES);
    }

    /// Puts the account's nonzero terms in `slot` without letting its block choose its layout:
    /// a bulk load inserts every account, then calls [`rebalance_all`](Self::rebalance_all)
    /// once instead of once an account. The store is not scannable in between.
    pub fn insert_terms(&mut self, slot: usize, terms: &[Coeff]) {
        for (k, t) in terms.iter().enumerate().filter(|(_, t)| t.coeff != 0) {
            self.insert(slot, t.asset, t.coeff, leg(terms, k));
        }
    }

    /// Lets every block choose its layout (after [`insert_terms`](Self::insert_terms)).
    pub fn rebalance_all(&mut self) {
        for b in 0..self.blocks() {
            self.rebalance(b);
        }
    }

    /// Hints what [`remove_account`](Self::remove_account) reads first for `slot`'s block: its
    /// list of held assets and the places of its arenas.
    pub fn prefetch_block(&self, slot: usize) {
        let b = slot / LANES;
        crate::prefetch::prefetch(&self.held, b);
        crate::prefetch::prefetch(&self.nterms, b);
        crate::prefetch::prefetch(&self.rows_mode, b);
        crate::prefetch::prefetch(&self.cols.spans, b);
        crate::prefetch::prefetch(&self.rows.spans, b);
    }

    /// Hints the lists [`prefetch_block`](Self::prefetch_block) leads to: the held assets and
    /// the block's first columns or rows.
    pub fn prefetch_lists(&self, slot: usize) {
        let b = slot / LANES;
        if let Some(h) = self.held.get(b) {
            crate::prefetch::prefetch(h, 0);
        }
        if self.rows_mode.get(b) == Some(&true) {
            self.rows.prefetch(b);
        } else {
            self.cols.prefetch(b);
        }
    }

    /// Takes the account's nonzero terms out of `slot` (they must be there), then lets the
    /// block choose its layout.
    pub fn remove_account(&mut self, slot: usize, terms: &[Coeff]) {
        for (k, t) in terms.iter().enumerate().filter(|(_, t)| t.coeff != 0) {
            self.remove(slot, t.asset, t.coeff, leg(terms, k));
        }
        self.rebalance(slot / LANES);
    }

    /// Puts a nonzero term of `slot` in place: `leg` is 1 for the negative leg of an asset the
    /// slot also holds as a positive term, else 0 ([`Held`]); the slot must not already hold
    /// this (asset, leg).
    fn insert(&mut self, slot: usize, asset: u16, coeff: i32, leg: u8) {
        debug_assert!(coeff != 0);
        let (b, lane) = (slot / LANES, slot % LANES);
        self.nterms[b][lane] += 1;
        let h = &mut self.held[b];
        let i = match h.iter().position(|x| x.asset == asset && x.leg == leg) {
            Some(i) => {
                h[i].lanes += 1;
                i
            }
            None => {
                h.push(Held { asset, leg, signs: 0, lanes: 1 });
                if !self.rows_mode[b] {
                    self.cols.push(b);
                }
                h.len() - 1
            }
        };
        if self.rows_mode[b] {
            self.row_put(b, lane, asset, coeff);
        } else {
            let col = &mut self.cols.get_mut(b)[i];
            col.0[lane] = coeff;
            self.held[b][i].signs = signs(col);
        }
    }

    /// Takes the term of `slot` in `asset` with this sign and leg out (it must be there).
    fn remove(&mut self, slot: usize, asset: u16, coeff: i32, leg: u8) {
        let (b, lane) = (slot / LANES, slot % LANES);
        let Some(i) = self.held[b].iter().position(|x| x.asset == asset && x.leg == leg) else {
            debug_assert!(false, "term of slot {slot} in asset {asset} not stored");
            return;
        };
        self.nterms[b][lane] -= 1;
        self.held[b][i].lanes -= 1;
        let gone = self.held[b][i].lanes == 0;
        if self.rows_mode[b] {
            let rows = self.rows.get_mut(b);
            let pidx = asset * 2 + (coeff < 0) as u16;
            if let Some(r) = rows.iter_mut().find(|r| r.coeff[lane] != 0 && r.pidx[lane] == pidx) {
                r.coeff[lane] = 0;
                r.pidx[lane] = 0;
            }
            let keep = rows.iter().rposition(|r| r.coeff.iter().any(|&c| c != 0)).map_or(0, |k| k + 1);
            self.rows.truncate(b, keep);
            if gone {
                self.held[b].swap_remove(i);
            }
        } else if gone {
            self.held[b].swap_remove(i);
            self.cols.swap_remove(b, i);
        } else {
            let col = &mut self.cols.get_mut(b)[i];
            col.0[lane] = 0;
            self.held[b][i].signs = signs(col);
        }
    }

    fn row_put(&mut self, b: usize, lane: usize, asset: u16, coeff: i32) {
        let free = self.rows.get(b).iter().position(|r| r.coeff[lane] == 0);
        let k = match free {
            Some(k) => k,
            None => {
                self.rows.push(b);
                self.rows.len(b) - 1
            }
        };
        let r = &mut self.rows.get_mut(b)[k];
        r.coeff[lane] = coeff;
        r.pidx[lane] = asset * 2 + (coeff < 0) as u16;
    }

    /// Switches block `b`'s layout when the policy says so.
    fn rebalance(&mut self, b: usize) {
        let k = *self.nterms[b].iter().max().unwrap_or(&0) as usize;
        self.wide[b] = k > MAX_COEFFS_PER_ACCOUNT;
        let assets = self.held[b].len();
        let rows = match self.layout {
            Layout::Columns => false,
            Layout::Rows => true,
            Layout::Auto if self.rows_mode[b] => assets > (ROW_COST - 1) * k,
            Layout::Auto => assets > ROW_COST * k,
        };
        if rows != self.rows_mode[b] {
            self.switch(b, rows);
        }
        if self.rows_mode[b] {
            self.meta.release(b);
        } else {
            let n = self.held[b].len();
            while self.meta.len(b) < n {
                self.meta.push(b);
            }
            self.meta.truncate(b, n);
            self.meta.get_mut(b).copy_from_slice(&self.held[b]);
        }
    }

    fn switch(&mut self, b: usize, rows: bool) {
        if rows {
            for i in 0..self.held[b].len() {
                let asset = self.held[b][i].asset;
                let col = self.cols.get(b)[i];
                for (lane, &c) in col.0.iter().enumerate() {
                    if c != 0 {
                        self.row_put(b, lane, asset, c);
                    }
                }
            }
            self.cols.release(b);
        } else {
            for _ in 0..self.held[b].len() {
                self.cols.push(b);
            }
            let (rows, cols, held) = (self.rows.get(b), self.cols.get_mut(b), &mut self.held[b]);
            for r in rows {
                for lane in 0..LANES {
                    if r.coeff[lane] != 0 {
                        let (asset, neg) = (r.pidx[lane] >> 1, r.pidx[lane] & 1);
                        // The negative leg of a two-legged slot: the lane also holds the
                        // asset's positive leg in another row.
                        let leg = (neg == 1
                            && rows.iter().any(|o| o.coeff[lane] != 0 && o.pidx[lane] == asset * 2))
                            as u8;
                        let i =
                            held.iter().position(|h| h.asset == asset && h.leg == leg).expect("held asset");
                        cols[i].0[lane] = r.coeff[lane];
                    }
                }
            }
            for (h, c) in held.iter_mut().zip(cols.iter()) {
                h.signs = signs(c);
            }
            self.rows.release(b);
        }
        self.rows_mode[b] = rows;
    }
}
