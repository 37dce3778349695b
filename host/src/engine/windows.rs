//! Price windows of the delta accounts, indexed by their edges.
//!
//! Each nonzero term of a delta account (one that is not a pair) has two windows: one on the
//! spot price its sign uses and one on the stressed price. While every price of an account
//! stays inside its windows, the account's bits cannot change ([`Window::of`] has the
//! argument). Every window is one-sided: `[lo, MAX]` (the account loses health when the
//! price falls) or `[0, hi]` (when it rises). So for each asset and each of its four prices
//! (spot and stressed, asset and liability side) the index keeps the lower edges and the upper
//! edges, each in price buckets (log-linear: 1,024 a power of two, so 0.05-0.1 % of the price
//! wide), and a tick asks each for the edges the new price crossed:
//!
//! ```text
//!   asset a, spot asset price:  lower edges by bucket  [ 80..87 | 88..95 | 96..103 ]
//!                                                            new price 98 ^  (97 99 96)
//!                               the price's bucket entry by entry (99 left), the buckets
//!                               above it whole: these left, recompute them
//! ```
//!
//! A bucket's entries are unsorted and each list entry keeps its place in its buckets, so an
//! insert, a remove and a renewal are O(1) (a push or a swap-remove: a few cache misses, where
//! a B-tree's were a dozen). A tick costs the occupied buckets past its price (found through
//! two levels of occupancy bits: a few word reads), the entries sharing the price's bucket
//! (**not** bounded by O(log n): the windows that end within 0.1 % of the price) and the
//! accounts whose window the price left; not a read of every exposure. The invariant every
//! caller keeps: after each engine call, every indexed window holds the current price of its
//! kind.

use liqscan_hdl::abi::PriceEntry;

/// Prices of one term within which its account keeps its sign: `p` is inside when
/// `p - lo <= width` (wrapping: one compare).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Window {
    lo: u32,
    width: u32,
}

/// The room between a health and zero: the health, or `-1 - h` for a negative one (it must
/// stay below zero).
pub(crate) fn room(h: i128) -> i128 {
    if h >= 0 { h } else { -1 - h }
}

/// Where a window ends: what the index keeps of it.
enum Edge {
    /// `[lo, MAX]` with `lo > 0`: left when the price falls below `lo`.
    Lower(u32),
    /// `[0, hi]` with `hi < MAX`: left when the price rises above `hi`.
    Upper(u32),
    /// Every price: never left (not indexed).
    None,
}

impl Window {
    /// The window of a term with coefficient `c` (nonzero) at price `p` (the price its sign
    /// uses), in an account of health `h`, given the term's share `num / den` of the room to
    /// zero (`h`, or `-1 - h` for a negative health). The shares of an account's terms add up
    /// to at most 1, so while every term's price stays in its window the health moves towards
    /// zero by at most the sum of `floor(room * num / den)` over the terms, at most the room:
    /// its sign cannot change. Moves away from zero are not limited.
    pub fn of(c: i32, p: u32, h: i128, (num, den): (u32, u32)) -> Window {
        Self::with_room(c, p, h, room(h) * num as i128 / den.max(1) as i128)
    }

    /// The window of a term with coefficient `c` (nonzero) at price `p` in an account of
    /// health `h`, within which the term moves the health towards zero by at most `room`
    /// (at least 0).
    pub fn with_room(c: i32, p: u32, h: i128, room: i128) -> Window {
        let room = room.max(0);
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

    /// How far the health (of sign `h`) can move towards zero while this term's price moves
    /// from `p` anywhere inside the window: `|c|` times the distance from `p` to the window's
    /// end on the side that costs health (the window holds `p`).
    pub fn reach(self, c: i32, p: u32, h: i128) -> i128 {
        let d = if (c > 0) == (h >= 0) {
            p as i128 - self.lo as i128
        } else {
            self.lo as i128 + self.width as i128 - p as i128
        };
        c.unsigned_abs() as i128 * d.max(0)
    }

    /// Whether `p` is inside.
    #[inline(always)]
    pub fn holds(self, p: u32) -> bool {
        p.wrapping_sub(self.lo) <= self.width
    }

    fn edge(self) -> Edge {
        if self.lo > 0 {
            Edge::Lower(self.lo)
        } else if self.width < u32::MAX {
            Edge::Upper(self.width)
        } else {
            Edge::None
        }
    }
}

/// The two windows of one term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct TermWindows {
    pub spot: Window,
    pub stressed: Window,
}

impl TermWindows {
    /// The windows with the given (spot, stressed) rooms ([`Window::with_room`]).
    pub fn with_room(c: i32, price: &PriceEntry, (h, hs): (i128, i128), (r, rs): (i128, i128)) -> Self {
        TermWindows {
            spot: Window::with_room(c, price.spot.for_coeff(c), h, r),
            stressed: Window::with_room(c, price.stressed.for_coeff(c), hs, rs),
        }
    }

    /// The (spot, stressed) [`reach`](Window::reach) of these windows at `price`.
    pub fn reach(self, c: i32, price: &PriceEntry, (h, hs): (i128, i128)) -> (i128, i128) {
        (
            self.spot.reach(c, price.spot.for_coeff(c), h),
            self.stressed.reach(c, price.stressed.for_coeff(c), hs),
        )
    }

    /// The windows of a term with coefficient `c` (nonzero) in an asset at `price`, in an
    /// account of spot and stressed healths `h`, `hs`, with `share` of the room.
    pub fn of(c: i32, price: &PriceEntry, (h, hs): (i128, i128), share: (u32, u32)) -> Self {
        TermWindows {
            spot: Window::of(c, price.spot.for_coeff(c), h, share),
            stressed: Window::of(c, price.stressed.for_coeff(c), hs, share),
        }
    }
}

/// One nonzero term of a delta account as its asset's list holds it: the slot, the term's index
/// in the account, its sign, and its windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exposure {
    pub slot: u32,
    /// The term's index in the account's terms.
    pub term: u16,
    /// A negative coefficient: the windows are on the liability prices.
    pub neg: bool,
    pub w: TermWindows,
}

impl Exposure {
    /// A place a remove left in its list, until a push fills it: windows over every price
    /// (never left, in no bucket), so list scans and edge builds pass over it.
    const VACANT: Exposure = Exposure {
        slot: u32::MAX,
        term: 0,
        neg: false,
        w: TermWindows {
            spot: Window { lo: 0, width: u32::MAX },
            stressed: Window { lo: 0, width: u32::MAX },
        },
    };

    /// Whether both windows hold this asset's new prices (`[asset, liability]` each).
    #[inline(always)]
    fn holds(&self, spot: &[u32; 2], stressed: &[u32; 2]) -> bool {
        let n = self.neg as usize;
        self.w.spot.holds(spot[n]) & self.w.stressed.holds(stressed[n])
    }
}

/// Buckets of prices, log-linear: one per price below 2^`MANTISSA`, then 2^`MANTISSA` per
/// power of two, so a bucket spans 1/1024 to 1/2048 of its prices (0.05-0.1 %).
const MANTISSA: u32 = 10;
const BUCKETS: usize = ((32 - MANTISSA + 1) << MANTISSA) as usize;

/// The bucket of price `p`; monotonic in `p`.
#[inline]
fn bucket(p: u32) -> usize {
    if p < 1 << MANTISSA {
        return p as usize;
    }
    let e = 31 - p.leading_zeros();
    (((e - MANTISSA + 1) << MANTISSA) | ((p >> (e - MANTISSA)) & ((1 << MANTISSA) - 1))) as usize
}

/// Which buckets hold entries: a bit per bucket and a bit per word of those, so a tick finds
/// the occupied buckets past its price in a few word reads.
struct Occupied {
    words: Vec<u64>,
    top: Vec<u64>,
}

impl Occupied {
    fn new() -> Self {
        let words = BUCKETS.div_ceil(64);
        Occupied { words: vec![0; words], top: vec![0; words.div_ceil(64)] }
    }

    fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
        self.top[i / 4096] |= 1 << (i / 64 % 64);
    }

    fn clear(&mut self, i: usize) {
        let w = &mut self.words[i / 64];
        *w &= !(1 << (i % 64));
        if *w == 0 {
            self.top[i / 4096] &= !(1 << (i / 64 % 64));
        }
    }

    /// The occupied buckets in `lo..=hi`, in order.
    fn range(&self, lo: usize, hi: usize) -> impl Iterator<Item = usize> + '_ {
        let (w0, w1) = (lo / 64, hi / 64);
        // Occupied words in w0..=w1, by the top bits.
        let words = (w0 / 64..=w1 / 64).flat_map(move |t| {
            let mut bits = self.top[t];
            if t == w0 / 64 {
                bits &= !0 << (w0 % 64);
            }
            if t == w1 / 64 {
                bits &= !0 >> (63 - w1 % 64);
            }
            ones(bits).map(move |b| t * 64 + b)
        });
        words.flat_map(move |w| {
            let mut bits = self.words[w];
            if w == w0 {
                bits &= !0 << (lo % 64);
            }
            if w == w1 {
                bits &= !0 >> (63 - hi % 64);
            }
            ones(bits).map(move |b| w * 64 + b)
        })
    }
}

/// The set bits of `bits`, lowest first.
fn ones(mut bits: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (bits != 0).then(|| {
            let b = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            b
        })
    })
}

/// One kind's edges, bucketed by price: a bucket's entries (`edge << 32 | place in the list`)
/// are unsorted, so an insert is a push and a remove a swap-remove at the place the list entry
/// keeps ([`AssetEdges::places`]): O(1) either way. A tick reads the buckets past its price
/// (the one holding the price entry by entry, the others whole).
struct Buckets {
    b: Box<[Vec<u64>]>,
    occupied: Occupied,
}

impl Buckets {
    fn new() -> Self {
        Buckets { b: (0..BUCKETS).map(|_| Vec::new()).collect(), occupied: Occupied::new() }
    }

    /// Adds an edge of the list entry at `pos`; returns its place in its bucket.
    fn push(&mut self, edge: u32, pos: u32) -> u32 {
        let i = bucket(edge);
        let v = &mut self.b[i];
        if v.is_empty() {
            self.occupied.set(i);
        }
        v.push(key(edge, pos));
        (v.len() - 1) as u32
    }

    /// Takes out the edge at `place` of `edge`'s bucket; when another entry moved into its
    /// place, returns that entry's list place.
    fn take(&mut self, edge: u32, place: u32) -> Option<u32> {
        let i = bucket(edge);
        let v = &mut self.b[i];
        debug_assert_eq!(v[place as usize] >> 32, edge as u64, "edge not at its place");
        v.swap_remove(place as usize);
        if v.is_empty() {
            self.occupied.clear(i);
        }
        v.get(place as usize).map(|&x| x as u32)
    }

    /// List places of the edges above `p` (lower edges `p` crossed).
    fn above(&self, p: u32) -> impl Iterator<Item = u32> + '_ {
        let f = bucket(p);
        self.occupied.range(f, BUCKETS - 1).flat_map(move |i| {
            let whole = i != f;
            self.b[i].iter().filter(move |&&x| whole || (x >> 32) as u32 > p).map(|&x| x as u32)
        })
    }

    /// How many edges lie above `p` (as [`above`](Self::above) yields), counting at most
    /// about `cap`: whole buckets by their length, so a count costs the occupied buckets, not
    /// the entries (a deferred crash tick counts tens of thousands).
    fn count_above(&self, p: u32, cap: usize) -> usize {
        let f = bucket(p);
        let mut n = 0;
        for i in self.occupied.range(f, BUCKETS - 1) {
            n += if i == f {
                self.b[i].iter().filter(|&&x| (x >> 32) as u32 > p).count()
            } else {
                self.b[i].len()
            };
            if n >= cap {
                break;
            }
        }
        n
    }

    /// How many edges lie below `p` (as [`below`](Self::below) yields), counting at most
    /// about `cap` (as [`count_above`](Self::count_above)).
    fn count_below(&self, p: u32, cap: usize) -> usize {
        let f = bucket(p);
        let mut n = 0;
        for i in self.occupied.range(0, f) {
            n += if i == f {
                self.b[i].iter().filter(|&&x| ((x >> 32) as u32) < p).count()
            } else {
                self.b[i].len()
            };
            if n >= cap {
                break;
            }
        }
        n
    }

    /// List places of the edges below `p` (upper edges `p` crossed).
    fn below(&self, p: u32) -> impl Iterator<Item = u32> + '_ {
        let f = bucket(p);
        self.occupied.range(0, f).flat_map(move |i| {
            let whole = i != f;
            self.b[i].iter().filter(move |&&x| whole || ((x >> 32) as u32) < p).map(|&x| x as u32)
        })
    }
}

/// Edges of one asset's windows: `[kind]` with kind `2 * stressed + negative`, the price
/// the window is on (spot asset, spot liability, stressed asset, stressed liability).
struct AssetEdges {
    lower: [Buckets; 4],
    upper: [Buckets; 4],
    /// Per list entry, where its spot and its stressed edge are in their buckets.
    places: Vec<[u32; 2]>,
}

/// A bucket entry: `edge << 32 | place in the list`.
#[inline]
fn key(edge: u32, pos: u32) -> u64 {
    (edge as u64) << 32 | pos as u64
}

impl AssetEdges {
    fn new(capacity: usize) -> Self {
        AssetEdges {
            lower: std::array::from_fn(|_| Buckets::new()),
            upper: std::array::from_fn(|_| Buckets::new()),
            places: Vec::with_capacity(capacity),
        }
    }

    /// The kind and edge of each of the two windows (`kind / 2`: 0 spot, 1 stressed).
    fn each(neg: bool, w: TermWindows) -> [(usize, Edge); 2] {
        [(neg as usize, w.spot.edge()), (2 + neg as usize, w.stressed.edge())]
    }

    fn side(&mut self, k: usize, edge: Edge) -> Option<(&mut Buckets, u32)> {
        match edge {
            Edge::Lower(lo) => Some((&mut self.lower[k], lo)),
            Edge::Upper(hi) => Some((&mut self.upper[k], hi)),
            Edge::None => None,
        }
    }

    /// The buckets holding `e`'s edges, with their kinds.
    fn buckets_of<'a>(&'a self, e: &Exposure) -> impl Iterator<Item = (usize, &'a Vec<u64>)> + 'a {
        Self::each(e.neg, e.w).into_iter().filter_map(move |(k, edge)| match edge {
            Edge::Lower(lo) => Some((k, &self.lower[k].b[bucket(lo)])),
            Edge::Upper(hi) => Some((k, &self.upper[k].b[bucket(hi)])),
            Edge::None => None,
        })
    }

    /// Indexes the windows of the list entry at `pos` (the list's next place, or one whose
    /// edges were just [`remove`](Self::remove)d).
    fn insert(&mut self, e: &Exposure, pos: u32) {
        if pos as usize == self.places.len() {
            self.places.push([0; 2]);
        }
        for (k, edge) in Self::each(e.neg, e.w) {
            if let Some((set, edge)) = self.side(k, edge) {
                let place = set.push(edge, pos);
                self.places[pos as usize][k / 2] = place;
            }
        }
    }

    /// Takes out the edges of the list entry `e` at `pos`; its place record is left as is.
    fn remove(&mut self, e: &Exposure, pos: u32) {
        for (k, edge) in Self::each(e.neg, e.w) {
            let place = self.places[pos as usize][k / 2];
            if let Some((set, edge)) = self.side(k, edge)
                && let Some(moved) = set.take(edge, place)
            {
                self.places[moved as usize][k / 2] = place;
            }
        }
    }

    /// The edges of these exposures, each bucket reserved to its size and a quarter more first
    /// (the room later inserts take before a bucket doubles: a doubling copies the bucket).
    /// O(n).
    fn build(list: &[Exposure]) -> Self {
        let mut edges = AssetEdges::new(list.len());
        let mut sizes = vec![[0u32; 8]; BUCKETS];
        for e in list {
            for (k, edge) in Self::each(e.neg, e.w) {
                match edge {
                    Edge::Lower(lo) => sizes[bucket(lo)][k] += 1,
                    Edge::Upper(hi) => sizes[bucket(hi)][4 + k] += 1,
                    Edge::None => {}
                }
            }
        }
        for (i, n) in sizes.iter().enumerate() {
            for k in 0..4 {
                let room = |n: u32| if n == 0 { 0 } else { n as usize + n as usize / 4 + 4 };
                edges.lower[k].b[i].reserve_exact(room(n[k]));
                edges.upper[k].b[i].reserve_exact(room(n[4 + k]));
            }
        }
        for (pos, e) in list.iter().enumerate() {
            edges.insert(e, pos as u32);
        }
        edges
    }

    /// List places of the edges `p` crossed, per kind: lower edges above it, upper edges below
    /// it.
    fn crossed(&self, p: [u32; 4]) -> impl Iterator<Item = u32> + '_ {
        (0..4).flat_map(move |k| self.lower[k].above(p[k]).chain(self.upper[k].below(p[k])))
    }

    /// `crossed(p).count()`, at most `cap`.
    fn count_crossed(&self, p: [u32; 4], cap: usize) -> usize {
        let mut n = 0;
        for ((lower, upper), p) in self.lower.iter().zip(&self.upper).zip(p) {
            n += lower.count_above(p, cap - n.min(cap));
            if n < cap {
                n += upper.count_below(p, cap - n);
            }
            if n >= cap {
                return cap;
            }
        }
        n
    }
}

/// An asset's exposures: the list (always), and the edge buckets when they pay.
#[derive(Default)]
struct AssetWindows {
    /// Exposures by place; a removed one leaves a [`Exposure::VACANT`] place (in `vacant`), so
    /// a remove moves no other entry: a swap-remove's move cost cache misses in the moved
    /// entry's buckets and in its account's places, after the remove's own.
    list: Vec<Exposure>,
    /// Vacant places of `list`, filled by the next pushes (last vacated first).
    vacant: Vec<u32>,
    /// The list's windows by edge ([`WindowIndex`] has when).
    edges: Option<Box<AssetEdges>>,
    /// Running average (weight 1/8) of the windows a tick of this asset left, in 1/16.
    found: u64,
}

impl AssetWindows {
    /// Exposures in the list (vacant places not counted).
    fn live(&self) -> usize {
        self.list.len() - self.vacant.len()
    }
}

/// A list shorter than this is always scanned: a scan of it costs a few microseconds.
const INDEX_MIN: usize = 4096;

/// Renewing one term's window in the edge index costs about as much as scanning this many list
/// entries. Measured with B-trees (two removes and two inserts; docs/lab/performance.md, "Window
/// index: lists, and edges where they pay"); the buckets renew for less, so this now errs
/// towards the list scan.
const SCAN_PER_UPDATE: u64 = 512;

/// How [`WindowIndex`] finds the windows a tick leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WindowPolicy {
    /// Per asset, by what its ticks cost: a list scan, or edges where they pay (the default).
    #[default]
    Measured,
    /// Every asset by edge, always (the engine before the lists; benchmarks and tests).
    Edges,
    /// Every asset by list scan, always (benchmarks and tests).
    Lists,
}

/// The windows of every delta account, by asset: a flat list of exposures an asset (O(1)
/// push and swap-remove, windows renewed in place), and for an asset whose ticks leave few of
/// its windows, the same windows by edge in price buckets (O(1) per renewal, the price's bucket
/// plus what was found per tick). A tick of a list-indexed asset scans its list (sequential,
/// about 1 ns an entry); of an edge-indexed one it asks the buckets. Which one an asset uses
/// follows what its ticks cost: edges when the windows a tick leaves, each costing a renewal,
/// are fewer than 1 in `2 * SCAN_PER_UPDATE` of the list (and the list is at least
/// `INDEX_MIN`), the list again
/// when they are more than 2 in `SCAN_PER_UPDATE`. So a list scan costs at most about what
/// the recomputes it finds cost on the edge index, and the edges are kept only where they save.
///
/// Positions: `push` returns the entry's place in its asset's list, which stays the entry's
/// until `remove` (the place is then vacant, and filled by a later push); no other entry moves.
pub(crate) struct WindowIndex {
    assets: Vec<AssetWindows>,
    policy: WindowPolicy,
}

impl WindowIndex {
    pub fn new(assets: usize) -> Self {
        WindowIndex {
            assets: (0..assets).map(|_| AssetWindows::default()).collect(),
            policy: WindowPolicy::Measured,
        }
    }

    /// Chooses how assets are indexed: `Edges` and `Lists` apply at once, `Measured` from each
    /// asset's next tick.
    pub fn set_policy(&mut self, policy: WindowPolicy) {
        self.policy = policy;
        for a in &mut self.assets {
            match policy {
                WindowPolicy::Edges if a.edges.is_none() => {
                    a.edges = Some(Box::new(AssetEdges::build(&a.list)))
                }
                WindowPolicy::Lists => a.edges = None,
                _ => {}
            }
        }
    }

    /// Delta-account terms in `asset` (a two-legged account counts once per leg).
    pub fn exposure(&self, asset: u16) -> usize {
        self.assets[asset as usize].live()
    }

    /// Whether `asset`'s windows are indexed by edge (benchmarks, tests).
    pub fn edge_indexed(&self, asset: u16) -> bool {
        self.assets[asset as usize].edges.is_some()
    }

    /// Makes room for `extra` more windows in `asset`'s list at once (a bulk load), on huge
    /// pages where granted.
    pub fn reserve(&mut self, asset: u16, extra: usize) {
        let list = &mut self.assets[asset as usize].list;
        if list.capacity() - list.len() < extra {
            let mut new = Vec::with_capacity(list.len() + extra);
            super::advise_huge(&new);
            new.extend_from_slice(list);
            *list = new;
        }
    }

    /// Adds a term's windows; returns its place in the asset's list (a vacant one if there is
    /// one). O(1) amortised, in the list and in the buckets.
    pub fn push(&mut self, asset: u16, e: Exposure) -> u32 {
        let a = &mut self.assets[asset as usize];
        let pos = match a.vacant.pop() {
            Some(pos) => {
                a.list[pos as usize] = e;
                pos
            }
            None => {
                a.list.push(e);
                (a.list.len() - 1) as u32
            }
        };
        if let Some(edges) = &mut a.edges {
            edges.insert(&e, pos);
        }
        pos
    }

    /// Takes out the entry at `pos` of `asset`'s list, leaving its place vacant (no other
    /// entry moves). O(1), in the list and in the buckets.
    pub fn remove(&mut self, asset: u16, pos: u32) {
        let a = &mut self.assets[asset as usize];
        let e = std::mem::replace(&mut a.list[pos as usize], Exposure::VACANT);
        debug_assert_ne!(e.slot, u32::MAX, "place already vacant");
        if let Some(edges) = &mut a.edges {
            edges.remove(&e, pos);
        }
        a.vacant.push(pos);
    }

    /// Hints the lines a [`remove`](Self::remove) of the entry at `pos` reads first: the entry
    /// and its bucket places. An account's terms are in different lists and buckets; hinted
    /// together, their misses overlap.
    pub fn prefetch_remove(&self, asset: u16, pos: u32) {
        let a = &self.assets[asset as usize];
        crate::prefetch::prefetch(&a.list, pos as usize);
        if let Some(edges) = &a.edges {
            crate::prefetch::prefetch(&edges.places, pos as usize);
        }
    }

    /// Hints the places of the bucket entries that a [`remove`](Self::remove) of the entry at
    /// `pos` moves into its own bucket places (after [`prefetch_edges`](Self::prefetch_edges):
    /// this reads the buckets' last entries).
    pub fn prefetch_moved(&self, asset: u16, pos: u32) {
        let a = &self.assets[asset as usize];
        if let (Some(edges), Some(e)) = (&a.edges, a.list.get(pos as usize)) {
            for (_, b) in edges.buckets_of(e) {
                if let Some(&last) = b.last() {
                    crate::prefetch::prefetch(&edges.places, last as u32 as usize);
                }
            }
        }
    }

    /// Hints the bucket entries a [`remove`](Self::remove) of the entry at `pos` takes out
    /// (after [`prefetch_remove`](Self::prefetch_remove): this reads the entry).
    pub fn prefetch_edges(&self, asset: u16, pos: u32) {
        let a = &self.assets[asset as usize];
        if let (Some(edges), Some(e)) = (&a.edges, a.list.get(pos as usize)) {
            for (k, b) in edges.buckets_of(e) {
                crate::prefetch::prefetch(b, edges.places[pos as usize][k / 2] as usize);
                crate::prefetch::prefetch(b, b.len().wrapping_sub(1));
            }
        }
    }

    /// The windows at `pos` of `asset`'s list.
    pub fn get(&self, asset: u16, pos: u32) -> TermWindows {
        self.assets[asset as usize].list[pos as usize].w
    }

    /// Renews the windows at `pos` of `asset`'s list. O(1), in the list and in the buckets.
    pub fn set(&mut self, asset: u16, pos: u32, w: TermWindows) {
        let a = &mut self.assets[asset as usize];
        let e = &mut a.list[pos as usize];
        if e.w == w {
            return;
        }
        if let Some(edges) = &mut a.edges {
            edges.remove(e, pos);
            e.w = w;
            edges.insert(e, pos);
        } else {
            e.w = w;
        }
    }

    /// Renews windows without touching the edge buckets: every such call must be followed by
    /// [`rebuild_edges`](Self::rebuild_edges) before the index is asked anything.
    pub fn set_unindexed(&mut self, asset: u16, pos: u32, w: TermWindows) {
        self.assets[asset as usize].list[pos as usize].w = w;
    }

    /// Rebuilds every edge-indexed asset's buckets from its list (O(n) each).
    pub fn rebuild_edges(&mut self) {
        for a in &mut self.assets {
            if a.edges.is_some() {
                a.edges = Some(Box::new(AssetEdges::build(&a.list)));
            }
        }
    }

    /// Gives each list-scanned asset whose list is long enough, and whose ticks so far left few
    /// windows, its edges (after a bulk load: each built in one pass).
    pub fn index_long_lists(&mut self) {
        let policy = self.policy;
        for a in &mut self.assets {
            if a.edges.is_none() && wants_edges(a, policy) {
                a.edges = Some(Box::new(AssetEdges::build(&a.list)));
            }
        }
    }

    /// Records that a tick of `asset` left `found` of its windows, and switches the asset
    /// between the list scan and the edge index when the running average says the other way is
    /// cheaper (see the type's doc). A switch to edges builds them in one pass (O(e),
    /// on this tick); a switch to the list drops them.
    pub fn record(&mut self, asset: u16, found: usize) {
        let a = &mut self.assets[asset as usize];
        a.found = (a.found * 7 + found as u64 * 16) / 8;
        let many = match self.policy {
            WindowPolicy::Measured => a.found * SCAN_PER_UPDATE > 2 * 16 * a.live() as u64,
            WindowPolicy::Edges => false,
            WindowPolicy::Lists => true,
        };
        match a.edges {
            Some(_) if many => a.edges = None,
            None if wants_edges(a, self.policy) => a.edges = Some(Box::new(AssetEdges::build(&a.list))),
            _ => {}
        }
    }

    /// How many windows in `asset` `price` is outside of, counting at most `cap`
    /// (a slot may count more than once). O(price's bucket + cap) when edge-indexed, O(list)
    /// otherwise.
    pub fn count_left(&self, asset: u16, price: &PriceEntry, cap: usize) -> usize {
        let a = &self.assets[asset as usize];
        match &a.edges {
            Some(edges) => edges.count_crossed(kinds(price), cap),
            None => {
                let (spot, stressed) = sides(price);
                a.list.iter().filter(|e| !e.holds(&spot, &stressed)).take(cap).count()
            }
        }
    }

    /// Appends the slots with a window in `asset` that `price` is outside of (a slot may come
    /// more than once); returns how many it appended. O(price's bucket + found) when edge-indexed,
    /// O(list) otherwise.
    pub fn left(&self, asset: u16, price: &PriceEntry, out: &mut Vec<u32>) -> usize {
        let a = &self.assets[asset as usize];
        let before = out.len();
        match &a.edges {
            Some(edges) => out.extend(edges.crossed(kinds(price)).map(|pos| a.list[pos as usize].slot)),
            None => {
                let (spot, stressed) = sides(price);
                out.extend(a.list.iter().filter(|e| !e.holds(&spot, &stressed)).map(|e| e.slot));
            }
        }
        out.len() - before
    }
}

/// Whether a list-scanned asset's ticks leave few enough windows for edges to pay.
fn wants_edges(a: &AssetWindows, policy: WindowPolicy) -> bool {
    match policy {
        WindowPolicy::Measured => {
            a.live() >= INDEX_MIN && a.found * 2 * SCAN_PER_UPDATE < 16 * a.live() as u64
        }
        WindowPolicy::Edges => true,
        WindowPolicy::Lists => false,
    }
}

/// An asset's four prices by kind (`2 * stressed + negative`).
fn kinds(p: &PriceEntry) -> [u32; 4] {
    [p.spot.asset, p.spot.liability, p.stressed.asset, p.stressed.liability]
}

/// An asset's (spot, stressed) prices, each `[asset, liability]`.
fn sides(p: &PriceEntry) -> ([u32; 2], [u32; 2]) {
    ([p.spot.asset, p.spot.liability], [p.stressed.asset, p.stressed.liability])
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqscan_hdl::abi::QuotedPrice;

    fn entry(p: u32) -> PriceEntry {
        let q = QuotedPrice { asset: p, liability: p };
        PriceEntry { spot: q, stressed: q }
    }

    /// The slots `left` names at `p`, sorted, without repeats.
    fn left_at(idx: &WindowIndex, p: u32) -> Vec<u32> {
        let mut got = Vec::new();
        let n = idx.left(0, &entry(p), &mut got);
        assert_eq!(n, got.len());
        assert_eq!(idx.count_left(0, &entry(p), usize::MAX), n, "price {p}");
        got.sort_unstable();
        got.dedup();
        got
    }

    /// `left` names exactly the slots whose windows the price is outside of, at every price
    /// near the edges and at the extremes, by list scan and by edges alike, and after removes
    /// that move entries and renewals.
    #[test]
    fn left_finds_exactly_the_windows_the_price_left() {
        for edges in [false, true] {
            let mut idx = WindowIndex::new(1);
            // (slot, neg, windows, place in the list)
            let mut all = Vec::new();
            let mut slot = 0;
            for c in [-3i32, -1, 1, 2, 5] {
                for h in [-7i128, -1, 0, 3, 40] {
                    for p in [0u32, 1, 10, u32::MAX - 1, u32::MAX] {
                        let w = TermWindows::of(c, &entry(p), (h, h), (1, 2));
                        let e = Exposure { slot, term: 0, neg: c < 0, w };
                        let pos = idx.push(0, e);
                        all.push((slot, c < 0, w, pos));
                        slot += 1;
                    }
                }
            }
            if edges {
                idx.assets[0].edges = Some(Box::new(AssetEdges::build(&idx.assets[0].list)));
            }
            let check = |idx: &WindowIndex, all: &[(u32, bool, TermWindows, u32)]| {
                for p in [0u32, 1, 2, 5, 9, 10, 11, 20, 30, u32::MAX - 1, u32::MAX] {
                    let want: Vec<u32> = all
                        .iter()
                        .filter(|(_, _, w, _)| !w.spot.holds(p) || !w.stressed.holds(p))
                        .map(|a| a.0)
                        .collect();
                    assert_eq!(left_at(idx, p), want, "price {p}, edges {edges}");
                }
            };
            check(&idx, &all);
            // Renew every third window, remove every fourth entry (moving others).
            for (i, a) in all.iter_mut().enumerate() {
                if i % 3 == 0 {
                    a.2 = TermWindows::of(if a.1 { -2 } else { 2 }, &entry(20), (5, 5), (1, 1));
                    idx.set(0, a.3, a.2);
                }
            }
            let mut i = 0;
            while i < all.len() {
                let (s, _, _, pos) = all[i];
                if s % 4 == 0 {
                    idx.remove(0, pos);
                    all.remove(i);
                } else {
                    i += 1;
                }
            }
            all.sort_unstable_by_key(|a| a.0);
            check(&idx, &all);
            for &(_, _, w, pos) in &all {
                assert_eq!(idx.get(0, pos), w);
            }
            // New entries fill the vacant places, and the others keep theirs.
            let places = idx.assets[0].list.len() as u32;
            for c in [-2i32, 3, 7] {
                let w = TermWindows::of(c, &entry(9), (4, 4), (1, 1));
                let pos = idx.push(0, Exposure { slot, term: 0, neg: c < 0, w });
                assert!(pos < places, "a vacant place is filled first");
                all.push((slot, c < 0, w, pos));
                slot += 1;
            }
            check(&idx, &all);
            for &(_, _, w, pos) in &all {
                assert_eq!(idx.get(0, pos), w);
            }
            assert_eq!(idx.exposure(0), all.len());
            while !all.is_empty() {
                idx.remove(0, all.pop().unwrap().3);
            }
            assert!(left_at(&idx, 0).is_empty() && left_at(&idx, u32::MAX).is_empty());
            assert_eq!(idx.edge_indexed(0), edges);
        }
    }

    /// Log-linear buckets are monotonic in the price and stay in range.
    #[test]
    fn buckets_follow_the_price() {
        let mut prev = 0;
        for p in (0..4096u32).chain((12..32).flat_map(|e| [(1u32 << e) - 1, 1 << e, (1 << e) + 1])) {
            let b = bucket(p);
            assert!(b >= prev && b < BUCKETS, "price {p}");
            prev = b;
        }
        assert_eq!(bucket(u32::MAX), BUCKETS - 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// The bucketed edges name the same windows as the list scan, at random and extreme
        /// prices, after random pushes, renewals and removes (which vacate list places that
        /// pushes fill again, and move bucket places). Prices are drawn near a few centres so windows share buckets.
        #[test]
        fn bucketed_edges_agree_with_the_list_scan(
            seed in proptest::prelude::any::<u64>(),
            ops in 50usize..400,
        ) {
            use rand::{Rng, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let centre = [1u32, 1000, 3_000_000, u32::MAX - 5][rng.gen_range(0..4)];
            let price = |rng: &mut rand_chacha::ChaCha8Rng| match rng.gen_range(0..8) {
                0 => 0,
                1 => u32::MAX,
                _ => centre.saturating_add_signed(rng.gen_range(-3000..3000)),
            };
            let (mut lists, mut edges) = (WindowIndex::new(1), WindowIndex::new(1));
            edges.set_policy(WindowPolicy::Edges);
            lists.set_policy(WindowPolicy::Lists);
            let mut places: Vec<u32> = Vec::new(); // slot -> place (same in both)
            let mut next = 0u32;
            for _ in 0..ops {
                let window = |rng: &mut rand_chacha::ChaCha8Rng, p: u32| {
                    let c = [-9i32, -1, 1, 7][rng.gen_range(0..4)];
                    let h = rng.gen_range(-50_000i128..50_000);
                    let q = QuotedPrice { asset: p, liability: p.saturating_add(rng.gen_range(0..9)) };
                    (c, TermWindows::of(c, &PriceEntry { spot: q, stressed: q }, (h, h / 2), (1, rng.gen_range(1..4))))
                };
                match rng.gen_range(0..4) {
                    0 | 1 => {
                        let p = price(&mut rng);
                        let (c, w) = window(&mut rng, p);
                        let e = Exposure { slot: next, term: 0, neg: c < 0, w };
                        let (a, b) = (lists.push(0, e), edges.push(0, e));
                        proptest::prop_assert_eq!(a, b);
                        places.push(a);
                        next += 1;
                    }
                    2 if !places.is_empty() => {
                        let slot = rng.gen_range(0..places.len());
                        let pos = places[slot];
                        if pos != u32::MAX {
                            let p = price(&mut rng);
                            let (_, w) = window(&mut rng, p);
                            lists.set(0, pos, w);
                            edges.set(0, pos, w);
                        }
                    }
                    _ if !places.is_empty() => {
                        let slot = rng.gen_range(0..places.len());
                        let pos = places[slot];
                        if pos != u32::MAX {
                            lists.remove(0, pos);
                            edges.remove(0, pos);
                            places[slot] = u32::MAX;
                        }
                    }
                    _ => {}
                }
                let p = price(&mut rng);
                proptest::prop_assert_eq!(left_at(&lists, p), left_at(&edges, p), "price {}", p);
                // The count by bucket lengths is the number of crossed edges `left` finds,
                // capped.
                let found = edges.left(0, &entry(p), &mut Vec::new());
                let cap = rng.gen_range(0..found + 3);
                proptest::prop_assert_eq!(edges.count_left(0, &entry(p), cap), found.min(cap), "price {}", p);
            }
            proptest::prop_assert!(edges.edge_indexed(0) && !lists.edge_indexed(0));
        }
    }

    /// An asset switches to edges when its ticks leave few windows of a long list, and back to
    /// the list scan when they leave many; `left` agrees across the switches.
    #[test]
    fn switches_by_what_ticks_leave() {
        let mut idx = WindowIndex::new(1);
        for slot in 0..INDEX_MIN as u32 {
            let w = TermWindows::of(1, &entry(1000 + slot), (slot as i128, slot as i128), (1, 1));
            idx.push(0, Exposure { slot, term: 0, neg: false, w });
        }
        let before = left_at(&idx, 1500);
        assert!(!idx.edge_indexed(0));
        idx.record(0, 0);
        assert!(idx.edge_indexed(0));
        assert_eq!(left_at(&idx, 1500), before);
        for _ in 0..8 {
            idx.record(0, INDEX_MIN / 8);
        }
        assert!(!idx.edge_indexed(0));
        assert_eq!(left_at(&idx, 1500), before);
    }
}
