//! Price windows of the delta accounts, indexed by their edges.
//!
//! Each nonzero term of a delta account (one that is not a pair) has two windows: one on the
//! spot price its sign uses and one on the stressed price. While every price of an account
//! stays inside its windows, the account's bits cannot change ([`Window::of`] has the
//! argument). Every window is one-sided: `[lo, MAX]` (the account loses health when the
//! price falls) or `[0, hi]` (when it rises). So for each asset and each of its four prices
//! (spot and stressed, asset and liability side) the index keeps the lower edges and the upper
//! edges in two B-trees, and a tick asks each for the edges the new price crossed:
//!
//! ```text
//!   asset a, spot asset price:  lower edges (lo, slot)  [ 80 .. 95 96 97 | 99 ... ]
//!                                                      new price 98 ^   these left: recompute
//!                               upper edges (hi, slot)  [ ... 101 | 102 110 ... ]
//! ```
//!
//! A tick therefore costs O(log n) per B-tree plus the accounts whose window the price left,
//! not a read of every exposure: on the issue-12 lending book, a tick of the asset every
//! account holds touches a few accounts out of 300,000. Insert and remove are O(log n).
//! The invariant every caller keeps: after each engine call, every indexed window holds the
//! current price of its kind.

use std::collections::BTreeSet;
use std::ops::Bound;

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
    /// Every price (a zero term's placeholder).
    pub const ALL: Window = Window { lo: 0, width: u32::MAX };

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

    #[cfg(test)]
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
    /// A zero term's placeholder (never indexed).
    pub const ALL: TermWindows = TermWindows { spot: Window::ALL, stressed: Window::ALL };

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

/// Edges of one asset's windows: `[kind]` with kind `2 * stressed + negative`, the price
/// the window is on (spot asset, spot liability, stressed asset, stressed liability).
#[derive(Default)]
struct AssetEdges {
    lower: [BTreeSet<(u32, u32)>; 4],
    upper: [BTreeSet<(u32, u32)>; 4],
}

/// One term's window as the index stores it: asset, side, slot, windows.
pub(crate) type IndexedTerm = (u16, bool, u32, TermWindows);

/// The windows of every delta account, by asset, price and edge.
pub(crate) struct WindowIndex {
    assets: Vec<AssetEdges>,
}

impl WindowIndex {
    pub fn new(assets: usize) -> Self {
        WindowIndex { assets: (0..assets).map(|_| AssetEdges::default()).collect() }
    }

    fn each(neg: bool, w: TermWindows) -> [(usize, Edge); 2] {
        [(neg as usize, w.spot.edge()), (2 + neg as usize, w.stressed.edge())]
    }

    /// Indexes the windows of `slot`'s term in `asset` (`neg`: a negative coefficient).
    /// O(log n).
    pub fn insert(&mut self, asset: u16, neg: bool, slot: u32, w: TermWindows) {
        let e = &mut self.assets[asset as usize];
        for (k, edge) in Self::each(neg, w) {
            match edge {
                Edge::Lower(lo) => e.lower[k].insert((lo, slot)),
                Edge::Upper(hi) => e.upper[k].insert((hi, slot)),
                Edge::None => true,
            };
        }
    }

    /// Takes out windows indexed with [`insert`](Self::insert). O(log n).
    pub fn remove(&mut self, asset: u16, neg: bool, slot: u32, w: TermWindows) {
        let e = &mut self.assets[asset as usize];
        for (k, edge) in Self::each(neg, w) {
            let found = match edge {
                Edge::Lower(lo) => e.lower[k].remove(&(lo, slot)),
                Edge::Upper(hi) => e.upper[k].remove(&(hi, slot)),
                Edge::None => true,
            };
            debug_assert!(found, "window of slot {slot} in asset {asset} not indexed");
        }
    }

    /// How many windows in `asset` `price` is outside of, counting at most `cap`
    /// (a slot may count more than once). O(log n + cap).
    pub fn count_left(&self, asset: u16, price: &PriceEntry, cap: usize) -> usize {
        let e = &self.assets[asset as usize];
        let p = [price.spot.asset, price.spot.liability, price.stressed.asset, price.stressed.liability];
        let mut n = 0;
        for (k, &p) in p.iter().enumerate() {
            let above = (Bound::Excluded((p, u32::MAX)), Bound::Unbounded);
            n += e.lower[k].range(above).take(cap - n.min(cap)).count();
            let below = (Bound::Unbounded, Bound::Excluded((p, 0)));
            n += e.upper[k].range(below).take(cap - n.min(cap)).count();
            if n >= cap {
                return n;
            }
        }
        n
    }

    /// Appends the slots with a window in `asset` that `price` is outside of (a slot may come
    /// more than once). O(log n + found).
    pub fn left(&self, asset: u16, price: &PriceEntry, out: &mut Vec<u32>) {
        let e = &self.assets[asset as usize];
        let p = [price.spot.asset, price.spot.liability, price.stressed.asset, price.stressed.liability];
        for (k, &p) in p.iter().enumerate() {
            // lo > p: every key at or above (p, MAX), which no key equals (slots < MAX).
            let above = (Bound::Excluded((p, u32::MAX)), Bound::Unbounded);
            out.extend(e.lower[k].range(above).map(|&(_, s)| s));
            // hi < p: every key below (p, 0).
            let below = (Bound::Unbounded, Bound::Excluded((p, 0)));
            out.extend(e.upper[k].range(below).map(|&(_, s)| s));
        }
    }

    /// Replaces everything with these windows, each B-tree built from one sort (a bulk load,
    /// a rebuild after a large move).
    pub fn rebuild(&mut self, terms: impl IntoIterator<Item = IndexedTerm>) {
        let n = self.assets.len();
        let mut lower: Vec<[Vec<(u32, u32)>; 4]> = (0..n).map(|_| Default::default()).collect();
        let mut upper: Vec<[Vec<(u32, u32)>; 4]> = (0..n).map(|_| Default::default()).collect();
        for (asset, neg, slot, w) in terms {
            for (k, edge) in Self::each(neg, w) {
                match edge {
                    Edge::Lower(lo) => lower[asset as usize][k].push((lo, slot)),
                    Edge::Upper(hi) => upper[asset as usize][k].push((hi, slot)),
                    Edge::None => {}
                }
            }
        }
        for ((e, lo), hi) in self.assets.iter_mut().zip(lower).zip(upper) {
            for (set, mut v) in e.lower.iter_mut().zip(lo).chain(e.upper.iter_mut().zip(hi)) {
                v.sort_unstable();
                *set = v.into_iter().collect();
            }
        }
    }

    /// Adds these windows, building each B-tree that is still empty from one sort.
    pub fn extend(&mut self, terms: Vec<IndexedTerm>) {
        if self.assets.iter().all(|e| e.lower.iter().chain(&e.upper).all(|s| s.is_empty())) {
            self.rebuild(terms);
        } else {
            for (asset, neg, slot, w) in terms {
                self.insert(asset, neg, slot, w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqscan_hdl::abi::QuotedPrice;

    fn entry(p: u32) -> PriceEntry {
        let q = QuotedPrice { asset: p, liability: p };
        PriceEntry { spot: q, stressed: q }
    }

    /// `left` names exactly the slots whose windows the price is outside of, at every price
    /// near the edges and at the extremes.
    #[test]
    fn left_finds_exactly_the_windows_the_price_left() {
        let mut idx = WindowIndex::new(1);
        let mut all = Vec::new();
        let mut slot = 0;
        for c in [-3i32, -1, 1, 2, 5] {
            for h in [-7i128, -1, 0, 3, 40] {
                for p in [0u32, 1, 10, u32::MAX - 1, u32::MAX] {
                    let w = TermWindows::of(c, &entry(p), (h, h), (1, 2));
                    idx.insert(0, c < 0, slot, w);
                    all.push((slot, c < 0, w));
                    slot += 1;
                }
            }
        }
        for p in [0u32, 1, 2, 5, 9, 10, 11, 20, 30, u32::MAX - 1, u32::MAX] {
            let mut got = Vec::new();
            idx.left(0, &entry(p), &mut got);
            got.sort_unstable();
            got.dedup();
            let want: Vec<u32> = all
                .iter()
                .filter(|(_, _, w)| !w.spot.holds(p) || !w.stressed.holds(p))
                .map(|a| a.0)
                .collect();
            assert_eq!(got, want, "price {p}");
        }
        for &(s, neg, w) in &all {
            idx.remove(0, neg, s, w);
        }
        let mut got = Vec::new();
        idx.left(0, &entry(0), &mut got);
        idx.left(0, &entry(u32::MAX), &mut got);
        assert!(got.is_empty());
    }
}
