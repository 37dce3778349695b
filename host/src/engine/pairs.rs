//! Accounts with one collateral and one debt asset, kept in exact liquidation-price order.
//!
//! Such an account holds `coll > 0` of asset x and owes `debt > 0` of asset y (coefficient
//! `-debt`). Its health is `coll * Px - debt * Py` (x's asset price, y's liability price), so
//!
//! ```text
//!   breach  <=>  debt * Py > coll * Px  <=>  debt / coll > Px / Py
//! ```
//!
//! The ratio `debt / coll` depends only on the coefficients, so each (x, y) group is sorted
//! by it once (exactly, by cross-multiplication) and the breached accounts are always a
//! suffix of the group, at any prices: if `r1 <= r2` and `r1 * Py > Px` then `r2 * Py > Px`.
//! A tick moving x or y moves the cut; only the accounts between the old and the new cut
//! change state. Spot and stressed prices give two cuts in the same order.
//!
//! ```text
//!   group (x, y), ascending debt/coll:  [ a  b  c  d | e  f  g | h  i ]
//!                                               spot cut ^   ^ stressed cut
//!   tick on x or y:  search the new cuts outwards from the old, flip the bits in between
//! ```

use std::cmp::Ordering;
use std::collections::HashMap;

use liqscan_hdl::abi::{Coeff, PriceEntry};

use super::bits::Bits;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    debt: u32,
    coll: u32,
    slot: u32,
}

impl Entry {
    /// Order by debt/coll, then slot (cross-multiplied; both below 2^31, so u64 is exact).
    fn cmp_key(&self, o: &Entry) -> Ordering {
        (self.debt as u64 * o.coll as u64)
            .cmp(&(o.debt as u64 * self.coll as u64))
            .then(self.slot.cmp(&o.slot))
    }

    /// `debt * py > coll * px`: both products below 2^63.
    #[inline]
    fn breached(&self, px: u32, py: u32) -> bool {
        self.debt as u64 * py as u64 > self.coll as u64 * px as u64
    }
}

struct Group {
    coll_asset: u16,
    debt_asset: u16,
    entries: Vec<Entry>,
    spot_cut: usize,
    stressed_cut: usize,
    /// The cuts are valid when this equals the index's generation (a full scan sets every bit
    /// and only bumps the index's generation: the cuts are found again by the next tick).
    generation: u32,
}

impl Group {
    fn cuts(&self, prices: &[PriceEntry]) -> (usize, usize) {
        self.cuts_of(&prices[self.coll_asset as usize], &prices[self.debt_asset as usize])
    }

    fn cuts_of(&self, x: &PriceEntry, y: &PriceEntry) -> (usize, usize) {
        let (sx, sy) = (x.spot.asset, y.spot.liability);
        let (tx, ty) = (x.stressed.asset, y.stressed.liability);
        (
            self.entries.partition_point(|e| !e.breached(sx, sy)),
            self.entries.partition_point(|e| !e.breached(tx, ty)),
        )
    }

    /// The cuts at prices `x`, `y`, searched outwards from the current cuts (a tick moves a
    /// price a little, so a cut moves by a few entries: two or three compares instead of a
    /// binary search's log2(group) unpredictable ones).
    fn cuts_near(&self, x: &PriceEntry, y: &PriceEntry) -> (usize, usize) {
        let (sx, sy) = (x.spot.asset, y.spot.liability);
        let (tx, ty) = (x.stressed.asset, y.stressed.liability);
        (
            seek(&self.entries, self.spot_cut, |e| !e.breached(sx, sy)),
            seek(&self.entries, self.stressed_cut, |e| !e.breached(tx, ty)),
        )
    }

    fn recut(&mut self, prices: &[PriceEntry]) {
        (self.spot_cut, self.stressed_cut) = self.cuts(prices);
    }
}

/// `v.partition_point(ok)` (`ok` holds on a prefix of `v`), found by galloping outwards from
/// `from` (any index up to `v.len()`): exponential steps to bracket the point, then a binary
/// search inside the bracket.
fn seek<T>(v: &[T], from: usize, ok: impl Fn(&T) -> bool) -> usize {
    let from = from.min(v.len());
    if from < v.len() && ok(&v[from]) {
        // The point is right of `from`.
        let (mut lo, mut step) = (from + 1, 1);
        loop {
            let probe = lo + step - 1;
            if probe >= v.len() {
                return lo + v[lo..].partition_point(&ok);
            }
            if !ok(&v[probe]) {
                return lo + v[lo..probe].partition_point(&ok);
            }
            lo = probe + 1;
            step *= 2;
        }
    } else if from > 0 && !ok(&v[from - 1]) {
        // The point is left of `from`.
        let (mut hi, mut step) = (from - 1, 1);
        loop {
            if step > hi {
                return v[..hi].partition_point(&ok);
            }
            let probe = hi - step;
            if ok(&v[probe]) {
                return probe + 1 + v[probe + 1..hi].partition_point(&ok);
            }
            hi = probe;
            step *= 2;
        }
    } else {
        from
    }
}

/// The terms as (collateral asset, coll, debt asset, debt) when the account is a pair.
pub(crate) fn as_pair(terms: &[Coeff]) -> Option<(u16, u32, u16, u32)> {
    match terms {
        [a, b] if a.coeff > 0 && b.coeff < 0 => {
            Some((a.asset, a.coeff as u32, b.asset, b.coeff.unsigned_abs()))
        }
        [b, a] if a.coeff > 0 && b.coeff < 0 => {
            Some((a.asset, a.coeff as u32, b.asset, b.coeff.unsigned_abs()))
        }
        _ => None,
    }
}

/// All pair groups of a book.
pub(crate) struct PairIndex {
    groups: Vec<Group>,
    by_pair: HashMap<(u16, u16), u32>,
    by_asset: Vec<Vec<u32>>,
    generation: u32,
}

impl PairIndex {
    pub fn new(assets: usize) -> Self {
        PairIndex {
            groups: Vec::new(),
            by_pair: HashMap::new(),
            by_asset: vec![Vec::new(); assets],
            generation: 0,
        }
    }

    /// Accounts held, for statistics.
    pub fn len(&self) -> usize {
        self.groups.iter().map(|g| g.entries.len()).sum()
    }

    /// Adds a pair account; its own bits are the caller's business. O(group size) (a move).
    pub fn insert(&mut self, slot: u32, pair: (u16, u32, u16, u32), prices: &[PriceEntry]) {
        let (x, coll, y, debt) = pair;
        let g = match self.by_pair.get(&(x, y)) {
            Some(&g) => g as usize,
            None => {
                let g = self.groups.len();
                self.groups.push(Group {
                    coll_asset: x,
                    debt_asset: y,
                    entries: Vec::new(),
                    spot_cut: 0,
                    stressed_cut: 0,
                    generation: self.generation,
                });
                self.by_pair.insert((x, y), g as u32);
                self.by_asset[x as usize].push(g as u32);
                self.by_asset[y as usize].push(g as u32);
                g
            }
        };
        let e = Entry { debt, coll, slot };
        let grp = &mut self.groups[g];
        let i = grp.entries.partition_point(|o| o.cmp_key(&e) == Ordering::Less);
        grp.entries.insert(i, e);
        grp.recut(prices);
        grp.generation = self.generation;
    }

    /// Removes a pair account inserted with the same terms.
    pub fn remove(&mut self, slot: u32, pair: (u16, u32, u16, u32), prices: &[PriceEntry]) {
        let (x, coll, y, debt) = pair;
        let Some(&g) = self.by_pair.get(&(x, y)) else {
            debug_assert!(false, "pair group ({x}, {y}) missing");
            return;
        };
        let e = Entry { debt, coll, slot };
        let grp = &mut self.groups[g as usize];
        let i = grp.entries.partition_point(|o| o.cmp_key(&e) == Ordering::Less);
        debug_assert_eq!(grp.entries.get(i), Some(&e));
        if grp.entries.get(i) == Some(&e) {
            grp.entries.remove(i);
        }
        grp.recut(prices);
        grp.generation = self.generation;
    }

    /// Asset `asset` moved from `old` (prices already updated): flips the bits between old
    /// and new cuts. Returns the number of accounts whose state was rewritten.
    pub fn tick(&mut self, asset: u16, old: &PriceEntry, prices: &[PriceEntry], bits: &mut Bits) -> usize {
        let mut touched = 0;
        for &g in &self.by_asset[asset as usize] {
            let grp = &mut self.groups[g as usize];
            if grp.generation != self.generation {
                // A full scan set the bits since the cuts were found: find them at the prices
                // before this tick (two binary searches, once per group per full scan).
                let x = if grp.coll_asset == asset { old } else { &prices[grp.coll_asset as usize] };
                let y = if grp.debt_asset == asset { old } else { &prices[grp.debt_asset as usize] };
                (grp.spot_cut, grp.stressed_cut) = grp.cuts_of(x, y);
                grp.generation = self.generation;
            }
            let (spot, stressed) =
                grp.cuts_near(&prices[grp.coll_asset as usize], &prices[grp.debt_asset as usize]);
            let (lo, hi) = (spot.min(grp.spot_cut), spot.max(grp.spot_cut));
            for (i, e) in grp.entries[lo..hi].iter().enumerate() {
                bits.set_breach(e.slot as usize, lo + i >= spot);
            }
            let (lo2, hi2) = (stressed.min(grp.stressed_cut), stressed.max(grp.stressed_cut));
            for (i, e) in grp.entries[lo2..hi2].iter().enumerate() {
                bits.set_at_risk(e.slot as usize, lo2 + i >= stressed);
            }
            touched += (hi - lo) + (hi2 - lo2);
            grp.spot_cut = spot;
            grp.stressed_cut = stressed;
        }
        touched
    }

    /// A full scan set every bit: every group's cuts are stale and are found again by the
    /// next tick on one of its assets (O(1) here: a full scan must not pay a binary search per
    /// group, which on a 64-asset book costs as much as the scan).
    pub fn invalidate(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Once in 2^32 scans: no group may look valid by wrap-around.
            for g in &mut self.groups {
                g.generation = u32::MAX;
            }
            self.generation = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::seek;

    #[test]
    fn seek_is_partition_point_from_anywhere() {
        for len in 0..40usize {
            for point in 0..=len {
                let v: Vec<usize> = (0..len).collect();
                for from in 0..=len + 2 {
                    assert_eq!(seek(&v, from, |&x| x < point), point, "len {len} point {point} from {from}");
                }
            }
        }
    }
}
