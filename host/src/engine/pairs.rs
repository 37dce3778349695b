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
//!   tick on x or y:  walk the B-tree from the old cut to the new, flip the bits in between
//! ```
//!
//! Each group is a B-tree (`BTreeSet`) in that exact order, and a cut is held as the prices
//! it was found at (a probe key of the same order), so upsert and remove cost O(log group)
//! and never move a cut, and a tick costs O(log group + accounts flipped).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use liqscan_hdl::abi::{Coeff, PriceEntry};

use super::bits::Bits;

/// A pair account in its group, ordered by `debt / coll`, then slot. A cut at prices
/// `(px, py)` is written as the same type: `Entry { debt: px, coll: py, slot: u32::MAX }`
/// ([`Cut`]); an account orders below it exactly when it is not breached at those prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    debt: u32,
    coll: u32,
    slot: u32,
}

impl Ord for Entry {
    /// Cross-multiplied (all values below 2^32, so u64 is exact). A total order on accounts
    /// (`coll > 0`) and on cuts with `py > 0`; [`Cut::at`] keeps `py == 0` out.
    fn cmp(&self, o: &Entry) -> Ordering {
        (self.debt as u64 * o.coll as u64)
            .cmp(&(o.debt as u64 * self.coll as u64))
            .then(self.slot.cmp(&o.slot))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Entry) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// Where a group's breached suffix starts, at one price pair: the accounts below it are not
/// breached, those above it are. Held as the prices themselves, so an insert or remove never
/// moves a cut, and a tick finds the accounts between the old and the new cut by one range
/// walk of the B-tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cut {
    /// `debt * py > coll * px` exactly for the accounts above this probe (`py > 0`).
    At(Entry),
    /// No account is breached (`py == 0`: the debt is worth nothing).
    End,
}

impl Cut {
    /// The cut at collateral price `px` and debt price `py`: account (debt, coll) is
    /// breached iff `debt * py > coll * px`, iff it orders above `(px, py, u32::MAX)`
    /// (slots are below `u32::MAX`). Proof that the breached accounts are a suffix: if
    /// `d1 / c1 <= d2 / c2` and `d1 * py > c1 * px`, then `d2 * py * c1 >= d1 * py * c2 >
    /// c1 * px * c2`, so `d2 * py > c2 * px`.
    fn at(px: u32, py: u32) -> Cut {
        if py == 0 { Cut::End } else { Cut::At(Entry { debt: px, coll: py, slot: u32::MAX }) }
    }

    fn bound(self) -> Bound<Entry> {
        match self {
            Cut::At(e) => Bound::Included(e),
            Cut::End => Bound::Unbounded,
        }
    }
}

struct Group {
    coll_asset: u16,
    debt_asset: u16,
    /// O(log n) insert, remove and range walk (std's B-tree: nodes of up to 11 entries).
    entries: BTreeSet<Entry>,
    /// The cuts at which the group's bits were last set (spot and stressed prices).
    spot_cut: Cut,
    stressed_cut: Cut,
    /// The cuts are valid when this equals the index's generation (a full scan sets every bit
    /// and only bumps the index's generation: the cuts are found again by the next tick).
    generation: u32,
}

/// The (spot, stressed) cuts of a group at collateral prices `x` and debt prices `y`.
fn cuts_of(x: &PriceEntry, y: &PriceEntry) -> (Cut, Cut) {
    (Cut::at(x.spot.asset, y.spot.liability), Cut::at(x.stressed.asset, y.stressed.liability))
}

/// Calls `flip(slot, breached)` for each account whose state differs between cuts `old` and
/// `new`, at most `budget` of them; returns how many, or `None` when there were more (the
/// first `budget` were flipped).
fn walk(
    entries: &BTreeSet<Entry>,
    old: Cut,
    new: Cut,
    budget: usize,
    mut flip: impl FnMut(usize, bool),
) -> Option<usize> {
    let (lo, hi, breached) = match old.cmp(&new) {
        Ordering::Equal => return Some(0),
        // The cut moved up: the accounts between were breached and no longer are.
        Ordering::Less => (old, new, false),
        Ordering::Greater => (new, old, true),
    };
    let Cut::At(lo) = lo else { unreachable!("End is the largest cut") };
    let mut n = 0;
    for e in entries.range((Bound::Included(lo), hi.bound())) {
        if n == budget {
            return None;
        }
        flip(e.slot as usize, breached);
        n += 1;
    }
    Some(n)
}

/// A pair account's terms: (collateral asset, coll, debt asset, debt).
pub(crate) type Pair = (u16, u32, u16, u32);

/// The terms as (collateral asset, coll, debt asset, debt) when the account is a pair: one
/// positive and one negative term in two different assets (an account holding one asset on
/// both sides is not a pair: its health is not a ratio of two prices).
pub(crate) fn as_pair(terms: &[Coeff]) -> Option<Pair> {
    match terms {
        [a, b] if a.coeff > 0 && b.coeff < 0 && a.asset != b.asset => {
            Some((a.asset, a.coeff as u32, b.asset, b.coeff.unsigned_abs()))
        }
        [b, a] if a.coeff > 0 && b.coeff < 0 && a.asset != b.asset => {
            Some((a.asset, a.coeff as u32, b.asset, b.coeff.unsigned_abs()))
        }
        _ => None,
    }
}

/// Pair accounts gathered by group for [`PairIndex::extend_bulk`].
#[derive(Default)]
pub(crate) struct PairBulk(HashMap<(u16, u16), Vec<Entry>>);

impl PairBulk {
    pub fn push(&mut self, slot: u32, (x, coll, y, debt): Pair) {
        self.0.entry((x, y)).or_default().push(Entry { debt, coll, slot });
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

    fn group(&mut self, x: u16, y: u16, prices: &[PriceEntry]) -> &mut Group {
        let g = match self.by_pair.get(&(x, y)) {
            Some(&g) => g as usize,
            None => {
                let g = self.groups.len();
                let (spot_cut, stressed_cut) = cuts_of(&prices[x as usize], &prices[y as usize]);
                self.groups.push(Group {
                    coll_asset: x,
                    debt_asset: y,
                    entries: BTreeSet::new(),
                    spot_cut,
                    stressed_cut,
                    generation: self.generation,
                });
                self.by_pair.insert((x, y), g as u32);
                self.by_asset[x as usize].push(g as u32);
                self.by_asset[y as usize].push(g as u32);
                g
            }
        };
        &mut self.groups[g]
    }

    /// Adds a pair account; its own bits are the caller's business (set at the current
    /// prices, which are the prices of its group's cuts). O(log group).
    pub fn insert(&mut self, slot: u32, pair: Pair, prices: &[PriceEntry]) {
        let (x, coll, y, debt) = pair;
        self.group(x, y, prices).entries.insert(Entry { debt, coll, slot });
    }

    /// Adds the pair accounts gathered in `bulk`: each group's new entries are sorted and
    /// merged into a B-tree built in one pass (O(n log n) for the sort, O(n) for the build),
    /// which is what a bulk load wants instead of n searches down a growing tree.
    pub fn extend_bulk(&mut self, bulk: PairBulk, prices: &[PriceEntry]) {
        for ((x, y), mut v) in bulk.0 {
            let g = self.group(x, y, prices);
            if g.entries.is_empty() {
                v.sort_unstable();
                g.entries = v.into_iter().collect();
            } else {
                g.entries.extend(v);
            }
        }
    }

    /// Removes a pair account inserted with the same terms. O(log group).
    pub fn remove(&mut self, slot: u32, pair: Pair) {
        let (x, coll, y, debt) = pair;
        let Some(&g) = self.by_pair.get(&(x, y)) else {
            debug_assert!(false, "pair group ({x}, {y}) missing");
            return;
        };
        let found = self.groups[g as usize].entries.remove(&Entry { debt, coll, slot });
        debug_assert!(found, "pair account {slot} missing");
    }

    /// Asset `asset` moved from `old` (prices already updated): flips the bits between old
    /// and new cuts, O(log group + flipped) per group. Returns the number of accounts whose
    /// state was rewritten.
    pub fn tick(&mut self, asset: u16, old: &PriceEntry, prices: &[PriceEntry], bits: &mut Bits) -> usize {
        self.tick_within(asset, old, prices, bits, usize::MAX).unwrap_or(usize::MAX)
    }

    /// [`tick`](Self::tick) that gives up after rewriting `budget` accounts: `None` then, and
    /// the index is left invalidated (some bits flipped, some not), so the caller must set
    /// every pair account's bits itself, as a full scan does. A full scan that leaves the pair
    /// accounts to this walk reads less when the walk is short; a crash that flips many of
    /// them is cheaper scanned.
    pub fn tick_within(
        &mut self,
        asset: u16,
        old: &PriceEntry,
        prices: &[PriceEntry],
        bits: &mut Bits,
        budget: usize,
    ) -> Option<usize> {
        let mut touched = 0;
        for &g in &self.by_asset[asset as usize] {
            let grp = &mut self.groups[g as usize];
            if grp.generation != self.generation {
                // A full scan set the bits since the cuts were set: they were set at the
                // prices before this tick (no other tick of x or y came since).
                let x = if grp.coll_asset == asset { old } else { &prices[grp.coll_asset as usize] };
                let y = if grp.debt_asset == asset { old } else { &prices[grp.debt_asset as usize] };
                (grp.spot_cut, grp.stressed_cut) = cuts_of(x, y);
                grp.generation = self.generation;
            }
            let (spot, stressed) =
                cuts_of(&prices[grp.coll_asset as usize], &prices[grp.debt_asset as usize]);
            let left = budget - touched;
            let walked =
                walk(&grp.entries, grp.spot_cut, spot, left, |s, v| bits.set_breach(s, v)).and_then(|n| {
                    walk(&grp.entries, grp.stressed_cut, stressed, left - n, |s, v| bits.set_at_risk(s, v))
                        .map(|m| n + m)
                });
            let Some(n) = walked else {
                self.invalidate();
                return None;
            };
            touched += n;
            grp.spot_cut = spot;
            grp.stressed_cut = stressed;
        }
        Some(touched)
    }

    /// A full scan set every bit: every group's cuts are stale and are found again by the
    /// next tick on one of its assets (O(1) here).
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
    use super::*;

    /// The walk between two cuts names exactly the accounts whose breach state differs, for
    /// every pair of small price pairs (zeros included).
    #[test]
    fn walk_flips_exactly_the_changed_accounts() {
        let mut set = BTreeSet::new();
        let mut slot = 0;
        for debt in 1..=4u32 {
            for coll in 1..=4u32 {
                set.insert(Entry { debt, coll, slot });
                slot += 1;
            }
        }
        let breached = |e: &Entry, px: u32, py: u32| e.debt as u64 * py as u64 > e.coll as u64 * px as u64;
        for (px0, py0, px1, py1) in
            (0..25u32).flat_map(|a| (0..25u32).map(move |b| (a / 5, a % 5, b / 5, b % 5)))
        {
            let mut flipped = Vec::new();
            let n = walk(&set, Cut::at(px0, py0), Cut::at(px1, py1), usize::MAX, |s, v| {
                flipped.push((s as u32, v))
            });
            assert_eq!(n, Some(flipped.len()));
            // With a budget one short of what changed, the walk gives up after that many.
            if let Some(short) = flipped.len().checked_sub(1) {
                let mut few = 0;
                let m = walk(&set, Cut::at(px0, py0), Cut::at(px1, py1), short, |_, _| few += 1);
                assert_eq!((m, few), (None, short));
            }
            flipped.sort();
            let want: Vec<(u32, bool)> = set
                .iter()
                .filter(|e| breached(e, px0, py0) != breached(e, px1, py1))
                .map(|e| (e.slot, breached(e, px1, py1)))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(flipped, want, "({px0}, {py0}) -> ({px1}, {py1})");
        }
    }
}
