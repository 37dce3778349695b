//! The full-scan layout: the book cut into blocks of 64 slots (one bitmap word each), and in
//! each block one coefficient column per asset that enough of its accounts hold, plus a short
//! list of "sparse" terms for assets that only a few of its accounts hold.
//!
//! ```text
//!  block b (slots 64b .. 64b+63)
//!    columns  cols[start .. start+len]   asset 0: [c_0 .. c_63]  asset 3: [c_0 .. c_63] ...
//!    sparse   [(lane, asset, coeff), ...]           (assets held by < PROMOTE accounts)
//! ```
//!
//! Columns of all blocks live in one arena in block order, so a full scan reads one
//! sequential stream (no columns whose starts share a 4 KiB offset, no pointer chasing) and
//! the per-asset price is a broadcast scalar. A block whose column list outgrows its capacity
//! moves to the end of the arena with double capacity; when more than half the arena is
//! garbage it is rewritten in block order. That is the only allocation, amortised over upserts.

/// Slots per block: one bitmap word.
pub(crate) const LANES: usize = 64;

/// Sparse terms of one asset in one block at which the asset gets a column instead.
const PROMOTE: usize = 6;

/// One asset's coefficients for the 64 slots of a block (0 where the slot does not hold it).
#[repr(C, align(64))]
#[derive(Clone, Copy)]
pub(crate) struct Column(pub [i32; LANES]);

const EMPTY: Column = Column([0; LANES]);

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

/// A term kept outside the columns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sparse {
    /// Slot within the block.
    pub lane: u8,
    /// Asset index.
    pub asset: u16,
    /// Coefficient, never 0.
    pub coeff: i32,
}

#[derive(Clone, Copy, Default)]
struct Block {
    start: u32,
    len: u16,
    cap: u16,
}

/// All blocks of a book.
pub(crate) struct BlockStore {
    blocks: Vec<Block>,
    cols: Vec<Column>,
    col_asset: Vec<u16>,
    /// Signs present in each column: [`HAS_POS`] | [`HAS_NEG`]; lets the kernel skip empty
    /// columns and the price select of single-signed ones (collateral or debt only).
    col_sign: Vec<u8>,
    sparse: Vec<Vec<Sparse>>,
    garbage: usize,
}

/// What the full scan reads for one block.
pub(crate) struct BlockView<'a> {
    pub cols: &'a [Column],
    pub assets: &'a [u16],
    pub signs: &'a [u8],
    pub sparse: &'a [Sparse],
}

impl BlockStore {
    pub fn new(slots: usize) -> Self {
        let n = slots.div_ceil(LANES);
        BlockStore {
            blocks: vec![Block::default(); n],
            cols: Vec::new(),
            col_asset: Vec::new(),
            col_sign: Vec::new(),
            sparse: vec![Vec::new(); n],
            garbage: 0,
        }
    }

    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    #[inline]
    pub fn view(&self, b: usize) -> BlockView<'_> {
        let k = self.blocks[b];
        let r = k.start as usize..k.start as usize + k.len as usize;
        BlockView {
            cols: &self.cols[r.clone()],
            assets: &self.col_asset[r.clone()],
            signs: &self.col_sign[r],
            sparse: &self.sparse[b],
        }
    }

    /// Bytes a full scan reads: the columns in use and the sparse terms.
    pub fn scan_bytes(&self) -> usize {
        let cols: usize = self.blocks.iter().map(|k| k.len as usize).sum();
        let sparse: usize = self.sparse.iter().map(|s| s.len()).sum();
        cols * (size_of::<Column>() + 2) + sparse * size_of::<Sparse>()
    }

    fn column_of(&self, b: usize, asset: u16) -> Option<usize> {
        let k = self.blocks[b];
        let s = k.start as usize;
        self.col_asset[s..s + k.len as usize].iter().position(|&a| a == asset).map(|i| s + i)
    }

    /// Puts a nonzero term of `slot` in place (the slot must not already hold `asset`).
    pub fn insert(&mut self, slot: usize, asset: u16, coeff: i32) {
        debug_assert!(coeff != 0);
        let (b, lane) = (slot / LANES, slot % LANES);
        if let Some(c) = self.column_of(b, asset) {
            self.cols[c].0[lane] = coeff;
            self.col_sign[c] = signs(&self.cols[c]);
            return;
        }
        let held = self.sparse[b].iter().filter(|s| s.asset == asset).count();
        if held + 1 < PROMOTE {
            self.sparse[b].push(Sparse { lane: lane as u8, asset, coeff });
            return;
        }
        let c = self.add_column(b, asset);
        self.cols[c].0[lane] = coeff;
        let cols = &mut self.cols;
        self.sparse[b].retain(|s| {
            if s.asset == asset {
                cols[c].0[s.lane as usize] = s.coeff;
                false
            } else {
                true
            }
        });
        self.col_sign[c] = signs(&self.cols[c]);
    }

    /// Takes the term of `slot` in `asset` out (it must be there).
    pub fn remove(&mut self, slot: usize, asset: u16) {
        let (b, lane) = (slot / LANES, slot % LANES);
        if let Some(c) = self.column_of(b, asset) {
            self.cols[c].0[lane] = 0;
            self.col_sign[c] = signs(&self.cols[c]);
            return;
        }
        let sp = &mut self.sparse[b];
        let i = sp.iter().position(|s| s.asset == asset && s.lane as usize == lane);
        debug_assert!(i.is_some(), "term of slot {slot} in asset {asset} not stored");
        if let Some(i) = i {
            sp.swap_remove(i);
        }
    }

    fn add_column(&mut self, b: usize, asset: u16) -> usize {
        let k = self.blocks[b];
        if k.len == k.cap {
            let at_end = k.start as usize + k.cap as usize == self.cols.len() && k.cap > 0;
            let cap = (k.cap as usize * 2).max(2);
            if at_end {
                // The last block grows in place.
                self.cols.resize(k.start as usize + cap, EMPTY);
                self.col_asset.resize(k.start as usize + cap, u16::MAX);
                self.col_sign.resize(k.start as usize + cap, 0);
            } else {
                if self.garbage + k.cap as usize > self.cols.len() / 2 && self.cols.len() > 1024 {
                    self.compact();
                    return self.add_column(b, asset);
                }
                let start = self.cols.len();
                self.cols.extend_from_within(k.start as usize..k.start as usize + k.len as usize);
                self.col_asset.extend_from_within(k.start as usize..k.start as usize + k.len as usize);
                self.col_sign.extend_from_within(k.start as usize..k.start as usize + k.len as usize);
                self.cols.resize(start + cap, EMPTY);
                self.col_asset.resize(start + cap, u16::MAX);
                self.col_sign.resize(start + cap, 0);
                self.garbage += k.cap as usize;
                self.blocks[b].start = start as u32;
            }
            self.blocks[b].cap = cap as u16;
        }
        let k = self.blocks[b];
        let c = k.start as usize + k.len as usize;
        self.cols[c] = EMPTY;
        self.col_asset[c] = asset;
        self.col_sign[c] = 0;
        self.blocks[b].len += 1;
        c
    }

    /// Rewrites the arena in block order, each block with room for one more column.
    fn compact(&mut self) {
        let live: usize = self.blocks.iter().map(|k| k.len as usize + 1).sum();
        let mut cols = Vec::with_capacity(live + live / 4);
        let mut assets = Vec::with_capacity(live + live / 4);
        let mut sg = Vec::with_capacity(live + live / 4);
        for k in &mut self.blocks {
            let s = k.start as usize;
            let start = cols.len();
            cols.extend_from_slice(&self.cols[s..s + k.len as usize]);
            assets.extend_from_slice(&self.col_asset[s..s + k.len as usize]);
            sg.extend_from_slice(&self.col_sign[s..s + k.len as usize]);
            let cap = k.len as usize + 1;
            cols.resize(start + cap, EMPTY);
            assets.resize(start + cap, u16::MAX);
            sg.resize(start + cap, 0);
            *k = Block { start: start as u32, len: k.len, cap: cap as u16 };
        }
        self.cols = cols;
        self.col_asset = assets;
        self.col_sign = sg;
        self.garbage = 0;
    }
}
