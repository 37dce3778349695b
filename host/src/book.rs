//! The compiled account book: what the engines load, kept compact.
//!
//! ```text
//!   ids:       "alicebobcarol..."            one string arena
//!   id_ends:   [5, 8, 13, ...]               account i's id is ids[id_ends[i-1]..id_ends[i]]
//!   terms:     [ETH +82500, USDC -1500000, ...]   one flat Vec<Coeff>
//!   term_ends: [2, 3, 5, ...]                account i's terms are terms[term_ends[i-1]..term_ends[i]]
//! ```
//!
//! An account costs its id's bytes, 8 bytes of offsets and 8 bytes a term (docs/lab/performance.md,
//! "The compact book"); there is no per-account allocation, no decimal map and no id map once
//! the book is built. Readers build it with [`BookBuilder`], which checks every row as the
//! readers did before: an account in one tier only, one asset at most once per side (a supply
//! leg and a borrow leg may coexist, and a zero row sets no leg, as `AccountSpec::add_balance`
//! has it), every leg compiled against the venue.

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use liqscan_hdl::abi::{Coeff, MAX_SOFTWARE_TERMS};

use crate::model::account::DEFAULT_TIER;
use crate::model::{AssetTable, CompileError, Decimal, LegError, Side};

/// Accounts by slot: interned ids and compiled terms in flat arrays.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Book {
    ids: AccountIds,
    terms: Vec<Coeff>,
    term_ends: Vec<u32>,
}

impl Book {
    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the book holds no account.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn span(ends: &[u32], i: usize) -> std::ops::Range<usize> {
        let start = if i == 0 { 0 } else { ends[i - 1] as usize };
        start..ends[i] as usize
    }

    /// The id of the account in `slot`. Panics when `slot >= len()`.
    pub fn id(&self, slot: usize) -> &str {
        &self.ids.text[Self::span(&self.ids.ends, slot)]
    }

    /// Hints the CPU to load what [`id`](Self::id) reads first for `slot` (its offsets), for
    /// callers that look up ids at slots spread over the book; no effect out of range.
    #[inline]
    pub fn prefetch_id_offsets(&self, slot: usize) {
        crate::prefetch::prefetch(&self.ids.ends, slot);
    }

    /// Hints the CPU to load the bytes of `slot`'s id (reads its offsets: hint those a little
    /// earlier with [`prefetch_id_offsets`](Self::prefetch_id_offsets)).
    #[inline]
    pub fn prefetch_id(&self, slot: usize) {
        if let Some(&end) = self.ids.ends.get(slot) {
            crate::prefetch::prefetch(self.ids.text.as_bytes(), (end as usize).saturating_sub(1));
        }
    }

    /// Hints the CPU to load where `slot`'s terms end (hint [`prefetch_terms`](Self::prefetch_terms)
    /// after it).
    #[inline]
    pub fn prefetch_term_offsets(&self, slot: usize) {
        crate::prefetch::prefetch(&self.term_ends, slot);
    }

    /// Hints the CPU to load `slot`'s terms (reads its offsets).
    #[inline]
    pub fn prefetch_terms(&self, slot: usize) {
        if let Some(&end) = self.term_ends.get(slot) {
            crate::prefetch::prefetch(&self.terms, (end as usize).saturating_sub(1));
        }
    }

    /// The compiled terms of the account in `slot`, sorted by asset (a supply leg before a
    /// borrow leg of one asset). Panics when `slot >= len()`.
    pub fn terms(&self, slot: usize) -> &[Coeff] {
        &self.terms[Self::span(&self.term_ends, slot)]
    }

    /// Every account as (id, terms), in slot order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &[Coeff])> + '_ {
        (0..self.len()).map(|i| (self.id(i), self.terms(i)))
    }

    /// Terms over all accounts.
    pub fn term_count(&self) -> usize {
        self.terms.len()
    }

    /// Appends an account whose terms are already compiled (sorted as [`AssetTable::compile`]
    /// sorts them). Ids are not checked for uniqueness here: [`BookBuilder`] does that.
    pub fn push(&mut self, id: &str, terms: &[Coeff]) {
        self.ids.push(id);
        self.terms.extend_from_slice(terms);
        self.term_ends.push(offset(self.terms.len()));
    }

    /// Heap bytes the book holds (capacity, not length: what the allocator gave it).
    pub fn heap_bytes(&self) -> usize {
        self.ids.text.capacity()
            + (self.ids.ends.capacity() + self.term_ends.capacity()) * 4
            + self.terms.capacity() * std::mem::size_of::<Coeff>()
    }

    /// Which assets some account holds, by price-table index.
    pub fn held_assets(&self, assets: usize) -> Vec<bool> {
        let mut held = vec![false; assets];
        for t in &self.terms {
            if let Some(h) = held.get_mut(t.asset as usize) {
                *h = true;
            }
        }
        held
    }

    /// The same accounts with those a full scan must read (neither a pair nor empty) in the
    /// first slots, then the others, each in their order here. The software engine leaves
    /// pair accounts to its pair index and skips the blocks of 64 slots that hold only them,
    /// so this layout makes a full scan read about a third of the book on a lending venue
    /// (70 % pairs) instead of all of it: the scan of a tick of the all-held asset is its
    /// costliest step. Only for a caller whose every per-slot structure comes from this book
    /// (`liqscan scan`): slots change. A copy of the book while it runs; none when the book
    /// is already in this order.
    pub fn in_scan_order(self) -> Book {
        let scanned = |k: usize| crate::engine::is_scanned(self.terms(k));
        let n = self.len();
        let first_other = (0..n).position(|k| !scanned(k)).unwrap_or(n);
        if (first_other..n).all(|k| !scanned(k)) {
            return self;
        }
        let mut out = Book {
            ids: AccountIds { text: String::with_capacity(self.ids.text.len()), ends: Vec::with_capacity(n) },
            terms: Vec::with_capacity(self.terms.len()),
            term_ends: Vec::with_capacity(n),
        };
        for pass in [true, false] {
            for k in (0..n).filter(|&k| scanned(k) == pass) {
                out.push(self.id(k), self.terms(k));
            }
        }
        out
    }

    /// The book's ids, moved out without a copy (the terms are dropped).
    pub fn into_ids(self) -> AccountIds {
        self.ids
    }

    fn shrink(&mut self) {
        self.ids.text.shrink_to_fit();
        self.ids.ends.shrink_to_fit();
        self.terms.shrink_to_fit();
        self.term_ends.shrink_to_fit();
    }
}

/// Account ids by slot in one string arena, as the book keeps them: what the events name a
/// slot by. A `Vec<String>` of 10 M ids was 10 M allocations and about 400 MB.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountIds {
    text: String,
    ends: Vec<u32>,
}

impl AccountIds {
    /// Number of slots named.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when no slot is named.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The id of `slot`, if the book has that slot.
    pub fn get(&self, slot: usize) -> Option<&str> {
        (slot < self.len()).then(|| &self.text[Book::span(&self.ends, slot)])
    }

    /// Names the next slot.
    pub fn push(&mut self, id: &str) {
        self.text.push_str(id);
        self.ends.push(offset(self.text.len()));
    }
}

impl<'a> FromIterator<&'a str> for AccountIds {
    fn from_iter<I: IntoIterator<Item = &'a str>>(iter: I) -> Self {
        let mut ids = AccountIds::default();
        for id in iter {
            ids.push(id);
        }
        ids
    }
}

impl FromIterator<String> for AccountIds {
    fn from_iter<I: IntoIterator<Item = String>>(iter: I) -> Self {
        let mut ids = AccountIds::default();
        for id in iter {
            ids.push(&id);
        }
        ids
    }
}

/// Offsets are u32: 4 GiB of ids or 4 G terms, far beyond what the memory check lets in.
fn offset(n: usize) -> u32 {
    u32::try_from(n).expect("book offsets fit u32 (the load's memory check refuses larger books)")
}

/// Distinct tier names a book may use.
const MAX_TIER_NAMES: usize = 1024;

/// Bytes the compact book takes per account: 8 of offsets, 8 a term, plus the id.
pub const BOOK_BYTES_PER_ACCOUNT: usize = 8;
/// Bytes a term takes in the book.
pub const BOOK_BYTES_PER_TERM: usize = std::mem::size_of::<Coeff>();

/// One leg while loading: its side (also for a positive balance that rounds away, which
/// still takes its side, as `AccountSpec::add_balance` has it) and its coefficient (0 when it
/// compiles to nothing).
#[derive(Clone, Copy, Debug)]
struct Leg {
    asset: u16,
    side: Side,
    coeff: i32,
}

/// A row as [`RowCompiler::compile`] leaves it for [`BookBuilder::push_compiled`].
#[derive(Clone, Copy, Debug)]
pub struct CompiledRow {
    leg: Leg,
    /// The balance was zero: the row names its account but sets no leg.
    zero: bool,
}

impl CompiledRow {
    /// The row's asset index.
    pub fn asset(&self) -> u16 {
        self.leg.asset
    }
}

/// Compiles rows against the venue: what a row is, checked without the rest of the book
/// (its id is not empty, its asset and tier are the venue's, its weighted balance fits), so
/// that a reader can do it on its own thread while the book is built on another.
#[derive(Clone, Debug)]
pub struct RowCompiler<'t> {
    table: &'t AssetTable,
    /// The venue's symbols when few (a scan beats hashing), else none, as [`symbol_key`]s.
    symbols: Vec<u128>,
}

impl<'t> RowCompiler<'t> {
    /// A compiler for `table`'s venue.
    pub fn new(table: &'t AssetTable) -> Self {
        let keys: Option<Vec<u128>> = table.assets().iter().map(|a| symbol_key(&a.symbol)).collect();
        RowCompiler { table, symbols: keys.filter(|k| k.len() <= 16).unwrap_or_default() }
    }

    /// The row's leg, or the problem alone (the reader adds the file and line).
    pub fn compile(
        &self,
        id: &str,
        asset: &str,
        balance: Decimal,
        tier: Option<&str>,
    ) -> Result<CompiledRow, String> {
        if id.is_empty() {
            return Err("empty account id".into());
        }
        let tier = tier.filter(|t| !t.is_empty()).unwrap_or(DEFAULT_TIER);
        let key = symbol_key(asset);
        let asset_ix = match self.symbols.iter().position(|&s| Some(s) == key) {
            Some(i) => i as u16,
            None => self.table.index_of(asset).map_err(|e| {
                CompileError::Asset { account: id.to_string(), source: Box::new(e) }.to_string()
            })?,
        };
        let coeff = self.table.compile_leg(id, tier, asset_ix, balance).map_err(|e| e.to_string())?;
        let side = if balance.is_negative() { Side::Borrow } else { Side::Supply };
        let leg = Leg { asset: asset_ix, side, coeff: coeff.map_or(0, |c| c.coeff) };
        Ok(CompiledRow { leg, zero: balance.is_zero() })
    }
}

/// Builds a [`Book`] row by row (long form: account, asset, balance, tier), checking each row
/// as it comes so that the first problem in file order is the one reported. Rows of one
/// account usually follow each other; an account that comes back after others is merged at
/// [`finish`](BookBuilder::finish).
pub struct BookBuilder<'t> {
    ids: String,
    id_ends: Vec<u32>,
    legs: Vec<Leg>,
    leg_ends: Vec<u32>,
    /// Tier of each account, as an index into `tier_names` (load time only).
    tiers: Vec<u16>,
    tier_names: Vec<String>,
    /// Account by id, hashed from the arena (load time only).
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    /// Rows of accounts that came back after another account, by account.
    late: HashMap<u32, Vec<Leg>>,
    compiler: RowCompiler<'t>,
    /// True while every new id has been greater than the one before (then `index` is empty).
    ascending: bool,
}

impl<'t> BookBuilder<'t> {
    /// An empty builder compiling against `table`.
    pub fn new(table: &'t AssetTable) -> Self {
        BookBuilder {
            ids: String::new(),
            id_ends: Vec::new(),
            legs: Vec::new(),
            leg_ends: Vec::new(),
            tiers: Vec::new(),
            tier_names: Vec::new(),
            index: HashTable::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            late: HashMap::new(),
            ascending: true,
            compiler: RowCompiler::new(table),
        }
    }

    /// Reserves room for about `accounts` accounts and `rows` rows.
    pub fn reserve(&mut self, accounts: usize, rows: usize) {
        self.id_ends.reserve(accounts);
        self.leg_ends.reserve(accounts);
        self.tiers.reserve(accounts);
        self.legs.reserve(rows);
        self.ids.reserve(accounts * 12);
    }

    /// Accounts so far.
    pub fn accounts(&self) -> usize {
        self.id_ends.len()
    }

    fn id(&self, k: usize) -> &str {
        &self.ids[Book::span(&self.id_ends, k)]
    }

    fn tier_index(&mut self, tier: &str) -> Result<u16, String> {
        match self.tier_names.iter().position(|t| t == tier) {
            Some(i) => Ok(i as u16),
            // Real tiers are the venue's few; only zero rows can name others.
            None if self.tier_names.len() >= MAX_TIER_NAMES => {
                Err(format!("more than {MAX_TIER_NAMES} different tier names; '{tier}' is one too many"))
            }
            None => {
                self.tier_names.push(tier.to_string());
                Ok((self.tier_names.len() - 1) as u16)
            }
        }
    }

    /// Adds one row. The error is the problem alone; the reader adds the file and line or row.
    /// A refused row leaves the builder as it was.
    pub fn push(
        &mut self,
        id: &str,
        asset: &str,
        balance: Decimal,
        tier: Option<&str>,
    ) -> Result<(), String> {
        let row = self.compiler.compile(id, asset, balance, tier)?;
        self.push_compiled(id, asset, row, tier).map(|_| ())
    }

    /// What compiles the rows for this builder (it may run on another thread:
    /// [`BookBuilder::push_compiled`] takes its result).
    pub fn compiler(&self) -> &RowCompiler<'t> {
        &self.compiler
    }

    /// [`BookBuilder::push`] for a row [`RowCompiler::compile`] already took; the same checks
    /// in the same order, those of the row alone done there. Returns the account's index
    /// (its slot in the finished book).
    pub fn push_compiled(
        &mut self,
        id: &str,
        asset: &str,
        row: CompiledRow,
        tier: Option<&str>,
    ) -> Result<usize, String> {
        if self.ids.len() + id.len() > u32::MAX as usize || self.legs.len() >= u32::MAX as usize {
            return Err(
                "the book passes 4 GiB of ids or 4 G rows, more than a book may hold; split it".into()
            );
        }
        let tier = tier.filter(|t| !t.is_empty()).unwrap_or(DEFAULT_TIER);
        let CompiledRow { leg, zero } = row;
        let side = leg.side;
        let tier_ix = self.tier_index(tier)?;
        let n = self.accounts();
        // The common case: another row of the account being written.
        let k = if n > 0 && self.id(n - 1) == id {
            n - 1
        } else if self.ascending && (n == 0 || self.id(n - 1) < id) {
            // Ids in ascending order (as exports sorted by account are) cannot repeat an
            // earlier one: no lookup needed.
            self.new_account(id, tier_ix, None);
            n
        } else {
            if self.ascending {
                self.index_all();
            }
            let hash = self.hasher.hash_one(id);
            let (ids, ends) = (&self.ids, &self.id_ends);
            match self.index.find(hash, |&k| &ids[Book::span(ends, k as usize)] == id) {
                Some(&k) => k as usize,
                None => {
                    self.new_account(id, tier_ix, Some(hash));
                    n
                }
            }
        };
        let known = self.tiers[k];
        if known != tier_ix {
            return Err(format!(
                "account '{id}' is in tier '{}' above, '{tier}' here",
                self.tier_names[known as usize]
            ));
        }
        // The last account's legs end the flat list, so its rows append there wherever they
        // come from; an earlier account's later rows wait in `late`.
        let last = k + 1 == self.accounts();
        let own = &self.legs[Book::span(&self.leg_ends, k)];
        let late: &[Leg] =
            if self.late.is_empty() { &[] } else { self.late.get(&(k as u32)).map_or(&[], |v| v.as_slice()) };
        if zero {
            // A zero row names the account (and its tier) but sets no leg, as add_balance.
            return Ok(k);
        }
        if own.iter().chain(late).any(|l| l.asset == leg.asset && l.side == leg.side) {
            let e = LegError::Duplicate { account: id.to_string(), asset: asset.to_string(), side };
            return Err(e.to_string());
        }
        let count = own.iter().chain(late).filter(|l| l.coeff != 0).count() + usize::from(leg.coeff != 0);
        if count > MAX_SOFTWARE_TERMS {
            return Err(CompileError::TooManyTerms { account: id.to_string(), count }.to_string());
        }
        if last {
            self.legs.push(leg);
            *self.leg_ends.last_mut().expect("an account") = offset(self.legs.len());
        } else {
            self.late.entry(k as u32).or_default().push(leg);
        }
        Ok(k)
    }

    fn new_account(&mut self, id: &str, tier_ix: u16, hash: Option<u64>) {
        let k = self.accounts() as u32;
        self.ids.push_str(id);
        self.id_ends.push(offset(self.ids.len()));
        self.leg_ends.push(offset(self.legs.len()));
        self.tiers.push(tier_ix);
        if let Some(hash) = hash {
            let (ids, ends, hasher) = (&self.ids, &self.id_ends, &self.hasher);
            self.index.insert_unique(hash, k, |&k| hasher.hash_one(&ids[Book::span(ends, k as usize)]));
        }
    }

    /// Ids stopped coming in ascending order: index every account so far, once.
    fn index_all(&mut self) {
        self.ascending = false;
        let (ids, ends, hasher) = (&self.ids, &self.id_ends, &self.hasher);
        let hash = |k: u32| hasher.hash_one(&ids[Book::span(ends, k as usize)]);
        self.index.reserve(ends.len(), |&k| hash(k));
        for k in 0..ends.len() as u32 {
            self.index.insert_unique(hash(k), k, |&k| hash(k));
        }
    }

    /// The book: legs sorted by asset (supply before borrow), zero legs dropped.
    pub fn finish(self) -> Book {
        let BookBuilder { ids, id_ends, legs, leg_ends, late, .. } = self;
        let mut terms = Vec::with_capacity(
            legs.iter().filter(|l| l.coeff != 0).count()
                + late.values().flatten().filter(|l| l.coeff != 0).count(),
        );
        let mut term_ends = Vec::with_capacity(id_ends.len());
        let mut scratch: Vec<Leg> = Vec::new();
        for k in 0..id_ends.len() {
            scratch.clear();
            scratch.extend_from_slice(&legs[Book::span(&leg_ends, k)]);
            if let Some(more) = late.get(&(k as u32)) {
                scratch.extend_from_slice(more);
            }
            scratch.retain(|l| l.coeff != 0);
            scratch.sort_by_key(|l| (l.asset, l.coeff < 0));
            terms.extend(scratch.iter().map(|l| Coeff { asset: l.asset, coeff: l.coeff }));
            term_ends.push(offset(terms.len()));
        }
        drop(legs);
        let mut book = Book { ids: AccountIds { text: ids, ends: id_ends }, terms, term_ends };
        book.shrink();
        book
    }
}

/// A symbol of at most 15 bytes as one number (its bytes, then its length), so that the
/// builder's asset lookup, once a row, compares numbers instead of calling `memcmp` on strings
/// of three or four bytes; `None` for longer symbols.
fn symbol_key(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    (b.len() < 16).then(|| b.iter().rev().fold(b.len() as u128, |k, &c| (k << 8) | c as u128))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::is_scanned;
    use proptest::prelude::*;

    /// Terms of one of the kinds a book holds: none, a pair, a two-term account that is not a
    /// pair, or several terms.
    fn terms() -> impl Strategy<Value = Vec<Coeff>> {
        let c = |asset, coeff| Coeff { asset, coeff };
        prop_oneof![
            Just(vec![]),
            (1..1000i32, 1..1000i32).prop_map(move |(a, b)| vec![c(0, a), c(2, -b)]),
            (1..1000i32, 1..1000i32).prop_map(move |(a, b)| vec![c(0, a), c(1, b)]),
            proptest::collection::vec(-1000..1000i32, 3..8).prop_map(move |v| v
                .iter()
                .enumerate()
                .map(|(k, &x)| c(k as u16, x))
                .collect()),
        ]
    }

    proptest! {
        /// The scan order keeps every account with its own terms, puts the accounts a full scan
        /// reads first, keeps file order within each kind, and is its own fixed point.
        #[test]
        fn scan_order_permutes_whole_accounts(accounts in proptest::collection::vec(terms(), 0..200)) {
            let mut book = Book::default();
            for (k, t) in accounts.iter().enumerate() {
                book.push(&format!("a{k}"), t);
            }
            let ordered = book.clone().in_scan_order();
            let expect: Vec<(String, Vec<Coeff>)> = [true, false]
                .iter()
                .flat_map(|&pass| {
                    accounts.iter().enumerate().filter(move |(_, t)| is_scanned(t) == pass)
                })
                .map(|(k, t)| (format!("a{k}"), t.clone()))
                .collect();
            let got: Vec<(String, Vec<Coeff>)> =
                ordered.iter().map(|(id, t)| (id.to_string(), t.to_vec())).collect();
            prop_assert_eq!(got, expect);
            prop_assert_eq!(ordered.clone().in_scan_order(), ordered);
        }
    }
}
