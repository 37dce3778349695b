//! The keeper's book as dispatch sees it: each slot's positions in asset quanta with its tier's
//! weights (what sizing needs; the scan needs only the compiled terms), kept up to date by the
//! account deltas the engine applies.
//!
//! The book as read sits in one flat array (a slot's positions between two offsets), so a view
//! borrows it and costs no allocation, and 10 M accounts take one allocation, not 10 M. A live
//! upsert or remove puts the slot's new positions in a small map beside it. A live upsert carries
//! only the engine's terms (weighted coefficients), so its positions are derived from them with
//! the slot's tier weights, rounded so that dispatch never sees an account healthier than the
//! engine does (collateral down, debt up): a slot the engine reports breached is always sized.
//! An upsert whose terms are the ones read (the book streamed as upserts by a journaled keeper or
//! an input stream) keeps the positions read, which are exact.

use std::borrow::Cow;

use hashbrown::{HashMap, HashSet};
use liqscan_hdl::abi::Coeff;

use crate::dispatch::AccountSource;
use crate::dispatch::sizing::{AccountView, PPM, Position};
use crate::model::account::DEFAULT_TIER;
use crate::model::{AccountSpec, AssetTable, Decimal};

/// The keeper's book as dispatch sees it (see the module's comment).
#[derive(Clone, Debug, Default)]
pub struct KeeperBook {
    /// `starts[k]..starts[k + 1]`: slot `k`'s positions in `positions`, as read.
    starts: Vec<u32>,
    positions: Vec<Position>,
    /// Account keys by slot, when they are not the slots (books made of views).
    keys: Option<Vec<u64>>,
    /// Slots read with an account that cannot be sized (an unknown asset or tier, a weight or
    /// amount out of range): no view.
    unsizable: HashSet<u32>,
    /// Each slot's tier (an index into `weights`), for live upserts.
    tier_of: Vec<u16>,
    /// `weights[tier][asset]`: (asset weight, liability weight) in ppm; `None` where the asset
    /// has no such tier.
    weights: Vec<Vec<Option<(u32, u32)>>>,
    /// [`fingerprint`] of each slot's terms as read; empty when not known.
    read_terms: Vec<u64>,
    /// Slots a live delta changed: their positions now (`None`: removed or not sizable).
    live: HashMap<u32, Option<Vec<Position>>>,
}

/// One leg as a position, with its tier's weights of the asset (from [`TierTable`]): `None` if
/// the account cannot be sized (an unknown asset or tier, a weight or amount out of range),
/// `Some(None)` for a leg under one quantum.
fn position(
    table: &AssetTable,
    asset: u16,
    weights: Option<(u32, u32)>,
    balance: Decimal,
) -> Option<Option<Position>> {
    let (asset_weight_ppm, liability_weight_ppm) = weights?;
    let amount = balance.floor_shifted(-table.get(asset)?.quantum_exp).ok()?;
    if amount == 0 {
        return Some(None);
    }
    Some(Some(Position { asset, amount, asset_weight_ppm, liability_weight_ppm }))
}

/// A tier's weights of an asset in ppm, rounded as the coefficient compiler rounds (asset
/// weights down, liability weights up).
fn tier_weights(table: &AssetTable, asset: u16, tier: &str) -> Option<(u32, u32)> {
    let w = table.get(asset)?.tiers.get(tier)?;
    let ppm = |d: Decimal, up: bool| if up { d.ceil_shifted(6) } else { d.floor_shifted(6) }.ok();
    let aw = u32::try_from(ppm(w.asset_weight, false)?).ok()?;
    let lw = u32::try_from(ppm(w.liability_weight, true)?).ok()?;
    Some((aw, lw))
}

/// A 64-bit fingerprint of an account's terms, in their order: an upsert whose fingerprint is
/// the one read carries the account as read.
pub fn fingerprint(terms: &[Coeff]) -> u64 {
    // splitmix64's finaliser over each term's 48 bits: a changed coefficient or asset changes
    // about half the bits.
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    terms.iter().fold(mix(terms.len() as u64 ^ 0x9e37_79b9_7f4a_7c15), |h, t| {
        mix(h.rotate_left(17) ^ ((t.asset as u64) << 32 | t.coeff as u32 as u64))
    })
}

/// The venue's tiers by name, each with its weights by asset.
#[derive(Default)]
struct TierTable {
    names: Vec<String>,
    weights: Vec<Vec<Option<(u32, u32)>>>,
}

impl TierTable {
    /// Tier `t`'s weights of `asset` (`None`: an asset outside the table or without the tier).
    fn of(&self, t: u16, asset: u16) -> Option<(u32, u32)> {
        *self.weights[t as usize].get(asset as usize)?
    }

    /// The index of `tier`, added the first time it is named (a venue has a few).
    fn index(&mut self, table: &AssetTable, tier: &str) -> u16 {
        if let Some(t) = self.names.iter().position(|x| x == tier) {
            return t as u16;
        }
        self.names.push(tier.to_string());
        self.weights.push((0..table.len() as u16).map(|a| tier_weights(table, a, tier)).collect());
        (self.names.len() - 1) as u16
    }
}

impl KeeperBook {
    /// Slot `i` holds `accounts[i]`; its key is the slot. Balances are turned into quanta
    /// conservatively (holdings down, debts up) and weights into parts per million
    /// (asset weights down, liability weights up), as the coefficient compiler rounds.
    pub fn new<'a>(table: &AssetTable, accounts: impl IntoIterator<Item = &'a AccountSpec>) -> KeeperBook {
        let mut b = KeeperBook { starts: vec![0], ..KeeperBook::default() };
        let mut tiers = TierTable::default();
        for (slot, a) in accounts.into_iter().enumerate() {
            let t = tiers.index(table, &a.tier);
            b.tier_of.push(t);
            let start = b.positions.len();
            let ok = a.legs().all(|(symbol, balance)| {
                let Some(p) = table
                    .index_of(symbol)
                    .ok()
                    .and_then(|asset| position(table, asset, tiers.of(t, asset), balance))
                else {
                    return false;
                };
                b.positions.extend(p);
                true
            });
            if !ok {
                b.positions.truncate(start);
                b.unsizable.insert(slot as u32);
            }
            b.starts.push(b.positions.len() as u32);
        }
        b.weights = tiers.weights;
        b
    }

    /// A book of ready views (slot `i` is `views[i]`). It knows no tiers, so a live upsert of one
    /// of its slots leaves the slot without a view.
    pub fn from_views(views: Vec<Option<AccountView>>) -> KeeperBook {
        let mut b = KeeperBook { starts: vec![0], ..KeeperBook::default() };
        let mut keys = Vec::with_capacity(views.len());
        for (slot, v) in views.into_iter().enumerate() {
            match v {
                Some(v) => {
                    keys.push(v.account);
                    b.positions.extend_from_slice(&v.positions);
                }
                None => {
                    keys.push(slot as u64);
                    b.unsizable.insert(slot as u32);
                }
            }
            b.starts.push(b.positions.len() as u32);
        }
        b.keys = Some(keys);
        b
    }

    /// Slots in the book.
    pub fn len(&self) -> usize {
        self.starts.len().saturating_sub(1)
    }

    /// True if the book has no slot.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records the [`fingerprint`] of each slot's terms as read (slot `i`'s at `i`), so that
    /// an upsert carrying them keeps the positions read.
    pub fn set_read_terms(&mut self, fingerprints: Vec<u64>) {
        self.read_terms = fingerprints;
    }

    /// A live upsert of `slot` the engine applied: the slot's positions from now on.
    pub fn upsert(&mut self, slot: u32, terms: &[Coeff]) {
        if slot as usize >= self.len() {
            return;
        }
        if self.read_terms.get(slot as usize) == Some(&fingerprint(terms)) {
            self.live.remove(&slot);
            return;
        }
        let derived = self.derive(slot, terms);
        self.live.insert(slot, derived);
    }

    /// A live remove of `slot` the engine applied: the slot has no account.
    pub fn remove(&mut self, slot: u32) {
        if (slot as usize) < self.len() {
            self.live.insert(slot, None);
        }
    }

    /// Positions from the engine's terms with the slot's tier weights: a holding
    /// `floor(c / w)`, a debt `ceil(|c| / l)`, so that the positions' health (coefficients
    /// floored, [`crate::dispatch::sizing::health`]) is at most the terms'. `None` if a term's
    /// asset has no weights in the slot's tier (as a book row in an unknown tier).
    fn derive(&self, slot: u32, terms: &[Coeff]) -> Option<Vec<Position>> {
        let tier = self.weights.get(*self.tier_of.get(slot as usize)? as usize)?;
        let mut out = Vec::with_capacity(terms.len());
        for t in terms {
            let (aw, lw) = (*tier.get(t.asset as usize)?)?;
            let c = t.coeff as i128;
            let amount = if c > 0 {
                if aw == 0 {
                    return None;
                }
                (c * PPM).div_euclid(aw as i128)
            } else {
                if lw == 0 {
                    return None;
                }
                -(-c * PPM + lw as i128 - 1).div_euclid(lw as i128)
            };
            if amount != 0 {
                out.push(Position { asset: t.asset, amount, asset_weight_ppm: aw, liability_weight_ppm: lw });
            }
        }
        Some(out)
    }

    fn key(&self, slot: u32) -> u64 {
        self.keys.as_ref().map_or(slot as u64, |k| k[slot as usize])
    }

    /// The weights a live upsert of `slot` is read with, by asset.
    fn slot_weights(&self, slot: u32) -> Option<&[Option<(u32, u32)>]> {
        Some(self.weights.get(*self.tier_of.get(slot as usize)? as usize)?.as_slice())
    }
}

/// Books are equal when every slot shows the same view and would take a live upsert alike (the
/// same weights, the same terms read), however they are laid out inside.
impl PartialEq for KeeperBook {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.read_terms == other.read_terms
            && (0..self.len() as u32)
                .all(|s| self.view(s) == other.view(s) && self.slot_weights(s) == other.slot_weights(s))
    }
}

impl AccountSource for KeeperBook {
    fn view(&self, slot: u32) -> Option<AccountView<'_>> {
        let k = slot as usize;
        if k >= self.len() {
            return None;
        }
        let positions: &[Position] = match self.live.get(&slot) {
            Some(live) => live.as_deref()?,
            None if self.unsizable.contains(&slot) => return None,
            None => &self.positions[self.starts[k] as usize..self.starts[k + 1] as usize],
        };
        Some(AccountView { account: self.key(slot), slot, positions: Cow::Borrowed(positions) })
    }
}

/// Builds a [`KeeperBook`] from rows as the compact book's reader takes them (account slot,
/// asset, balance, tier), so that a keeper loading a large book keeps no [`AccountSpec`]: the
/// same book as [`KeeperBook::new`] of the accounts' specs, positions in the order a spec
/// lists its legs (by symbol, the supply first).
pub struct KeeperBookBuilder<'t> {
    table: &'t AssetTable,
    /// Each asset's place in symbol order.
    rank: Vec<u32>,
    tiers: TierTable,
    /// Each account's tier (its last row's).
    tier_of: Vec<u16>,
    /// Each leg's order key (account, symbol rank, borrow), beside its position.
    keys: Vec<u64>,
    positions: Vec<Position>,
    /// Accounts that cannot be sized (they get no view).
    bad: Vec<u32>,
    accounts: usize,
}

impl<'t> KeeperBookBuilder<'t> {
    /// An empty builder for `table`'s venue.
    pub fn new(table: &'t AssetTable) -> Self {
        let mut order: Vec<u16> = (0..table.len() as u16).collect();
        order.sort_by(|&a, &b| table.assets()[a as usize].symbol.cmp(&table.assets()[b as usize].symbol));
        let mut rank = vec![0; table.len()];
        for (r, &a) in order.iter().enumerate() {
            rank[a as usize] = r as u32;
        }
        KeeperBookBuilder {
            table,
            rank,
            tiers: TierTable::default(),
            tier_of: Vec::new(),
            keys: Vec::new(),
            positions: Vec::new(),
            bad: Vec::new(),
            accounts: 0,
        }
    }

    /// Reserves room for about `accounts` accounts and `rows` rows (a reader's estimate), so a
    /// large book's legs are not copied each time their arrays double: at 10 M accounts the
    /// copies and the fresh pages they touch took seconds of the keeper's load.
    pub fn reserve(&mut self, accounts: usize, rows: usize) {
        self.tier_of.reserve(accounts);
        self.keys.reserve(rows);
        self.positions.reserve(rows);
    }

    /// One row the book took: account `k`'s balance of `asset` in `tier` (`None`: the default).
    pub fn row(&mut self, k: usize, asset: u16, balance: Decimal, tier: Option<&str>) {
        self.accounts = self.accounts.max(k + 1);
        let tier = tier.filter(|t| !t.is_empty()).unwrap_or(DEFAULT_TIER);
        let t = self.tiers.index(self.table, tier);
        if self.tier_of.len() <= k {
            let default = self.tiers.index(self.table, DEFAULT_TIER);
            self.tier_of.resize(k + 1, default);
        }
        self.tier_of[k] = t;
        if balance.is_zero() {
            return;
        }
        match position(self.table, asset, self.tiers.of(t, asset), balance) {
            None => self.bad.push(k as u32),
            Some(None) => {}
            Some(Some(p)) => {
                self.keys.push(
                    (k as u64) << 32 | (self.rank[asset as usize] as u64) << 1 | balance.is_negative() as u64,
                );
                self.positions.push(p);
            }
        }
    }

    /// The keeper's book of `accounts` slots (at least every account a row named).
    pub fn finish(mut self, accounts: usize) -> KeeperBook {
        // Slots no row named are in the default tier.
        let default = self.tiers.index(self.table, DEFAULT_TIER);
        let KeeperBookBuilder { tiers, mut tier_of, mut keys, mut positions, bad, accounts: named, .. } =
            self;
        let n = accounts.max(named);
        // Rows of one account may be apart; a book's rows usually come in account order, and
        // then only each account's few legs may need ordering (by symbol), in place.
        if keys.windows(2).all(|w| w[0] >> 32 <= w[1] >> 32) {
            sort_each_account(&mut keys, &mut positions);
        } else {
            let mut order: Vec<u32> = (0..keys.len() as u32).collect();
            order.sort_by_key(|&i| keys[i as usize]);
            positions = order.iter().map(|&i| positions[i as usize]).collect();
            keys.sort_unstable();
        }
        let mut starts = Vec::with_capacity(n + 1);
        starts.push(0u32);
        let mut i = 0;
        for k in 0..n as u64 {
            while i < keys.len() && keys[i] >> 32 == k {
                i += 1;
            }
            starts.push(i as u32);
        }
        tier_of.resize(n, default);
        KeeperBook {
            starts,
            positions,
            keys: None,
            unsizable: bad.into_iter().collect(),
            tier_of,
            weights: tiers.weights,
            read_terms: Vec::new(),
            live: HashMap::new(),
        }
    }
}

/// Orders each account's run of legs by key, moving the positions with them; `keys` holds the
/// accounts' runs in account order (each key's upper half is its account).
fn sort_each_account(keys: &mut [u64], positions: &mut [Position]) {
    let mut start = 0;
    while start < keys.len() {
        let account = keys[start] >> 32;
        let end = start + keys[start..].iter().take_while(|&&k| k >> 32 == account).count();
        let (k, p) = (&mut keys[start..end], &mut positions[start..end]);
        // Insertion sort: an account has a few legs, usually in order already.
        for i in 1..k.len() {
            let mut j = i;
            while j > 0 && k[j - 1] > k[j] {
                k.swap(j - 1, j);
                p.swap(j - 1, j);
                j -= 1;
            }
        }
        start = end;
    }
}

#[cfg(test)]
mod tests {
    use liqscan_hdl::abi::{PriceEntry, QuotedPrice};
    use proptest::prelude::*;

    use super::*;
    use crate::dispatch::sizing::health;

    fn demo(n: usize) -> (AssetTable, Vec<crate::io::accounts::LoadedAccount>, KeeperBook) {
        let table = crate::demo_book::venue();
        let accounts = crate::demo_book::book(&table, n, 7);
        let mut book = KeeperBook::new(&table, accounts.iter().map(|a| &a.spec));
        book.set_read_terms(accounts.iter().map(|a| fingerprint(&a.terms)).collect());
        (table, accounts, book)
    }

    /// The engine's health of terms: each coefficient at its side's price.
    fn terms_health(terms: &[Coeff], prices: &[PriceEntry]) -> i128 {
        let px = |t: &Coeff| prices[t.asset as usize].spot;
        terms
            .iter()
            .map(|t| t.coeff as i128 * if t.coeff < 0 { px(t).liability } else { px(t).asset } as i128)
            .sum()
    }

    #[test]
    fn the_builder_and_the_specs_give_the_same_views() {
        let (table, accounts, book) = demo(300);
        let mut rows = Vec::new();
        for (k, a) in accounts.iter().enumerate() {
            for (symbol, balance) in a.spec.legs() {
                rows.push((k, table.index_of(symbol).unwrap(), balance, a.spec.tier.clone()));
            }
        }
        // Rows as a file may give them: in symbol order, each account's legs in reverse (so
        // the per-account ordering runs), and one account's rows apart (the whole-book sort).
        let legs_reversed: Vec<_> =
            rows.chunk_by(|a, b| a.0 == b.0).flat_map(|run| run.iter().rev().cloned()).collect();
        assert!(accounts.iter().any(|a| a.spec.legs().count() > 1), "some account has several legs");
        let apart: Vec<_> = rows.iter().rev().cloned().collect();
        for (what, rows) in [("in order", rows.clone()), ("legs reversed", legs_reversed), ("apart", apart)] {
            let mut b = KeeperBookBuilder::new(&table);
            if what == "legs reversed" {
                b.reserve(accounts.len(), rows.len());
            }
            for (k, asset, balance, tier) in rows {
                b.row(k, asset, balance, Some(&tier));
            }
            let built = b.finish(accounts.len());
            assert_eq!(built.len(), book.len(), "{what}");
            for s in 0..book.len() as u32 {
                assert_eq!(built.view(s), book.view(s), "{what}: slot {s}");
            }
        }
        assert!(book.view(book.len() as u32).is_none(), "past the book: no view");
    }

    #[test]
    fn a_live_upsert_or_remove_changes_the_view_and_the_read_terms_bring_it_back() {
        let (_, accounts, mut book) = demo(50);
        let read = book.view(3).unwrap().positions.into_owned();
        // Slot 3 takes slot 4's terms: positions derived in slot 3's tier.
        book.upsert(3, &accounts[4].terms);
        let live = book.view(3).unwrap();
        assert_ne!(live.positions.as_ref(), read.as_slice());
        let assets: Vec<u16> = live.positions.iter().map(|p| p.asset).collect();
        assert_eq!(assets, accounts[4].terms.iter().map(|t| t.asset).collect::<Vec<_>>());
        assert_eq!(live.account, 3, "the slot's key stays");
        book.remove(3);
        assert!(book.view(3).is_none(), "a removed account has no view");
        book.upsert(3, &accounts[3].terms);
        assert_eq!(book.view(3).unwrap().positions.as_ref(), read.as_slice(), "the read terms: as read");
        // An upsert of a slot outside the book changes nothing.
        book.upsert(50, &accounts[4].terms);
        assert!(book.view(50).is_none());
    }

    proptest! {
        /// Dispatch never sees a live account healthier than the engine does, coefficient by
        /// coefficient, so a slot the engine reports breached is always sized; and the positions
        /// hold the terms' assets and signs.
        #[test]
        fn derived_positions_are_never_healthier_than_their_terms(
            raw in prop::collection::vec((0u16..7, -2_000_000_000i32..2_000_000_000, any::<bool>()), 1..12),
            slot in 0u32..40,
            px in prop::collection::vec((1u32..4_000_000, 1u32..4_000_000), 7),
        ) {
            let (_, _, mut book) = demo(40);
            let terms: Vec<Coeff> = raw
                .iter()
                .filter(|&&(_, c, _)| c != 0)
                .map(|&(asset, c, _)| Coeff { asset, coeff: c })
                .collect();
            book.upsert(slot, &terms);
            let prices: Vec<PriceEntry> = px
                .iter()
                .map(|&(a, l)| {
                    let q = QuotedPrice { asset: a.min(l), liability: a.max(l) };
                    PriceEntry { spot: q, stressed: q }
                })
                .collect();
            let v = book.view(slot).expect("every demo asset has weights in every tier");
            prop_assert!(health(&v, &prices) <= terms_health(&terms, &prices));
            for (p, t) in v.positions.iter().zip(terms.iter().filter(|t| t.coeff != 0)) {
                prop_assert_eq!(p.asset, t.asset);
                prop_assert_eq!(p.amount < 0, t.coeff < 0);
            }
        }
    }
}
