//! A keeper's book and replayed tick stream, loaded from files or generated (the embedded
//! demo venue, book and crash), as pipeline messages.

use std::path::Path;

use super::KeeperError;
use super::config::KeeperConfig;
use crate::book::{AccountIds, Book};
use crate::feed::recorded::Recorded;
use crate::io::accounts::{LoadedAccount, estimate_book, read_accounts, read_csv_book};
use crate::io::limits;
use crate::io::ticks::{Tick, read_bars, read_ticks};
use crate::io::venue::read_venue;
use crate::io::{Format, InputError};
use crate::model::AssetTable;
use crate::pipeline::FeedMsg;
use crate::pipeline::dispatch::{KeeperBook, KeeperBookBuilder};
use crate::pipeline::keeper_book::fingerprint;
use liqscan_hdl::abi::Coeff;

/// Bytes a demo account takes in a keeper (the book is also held as feed messages and as
/// dispatch's keeper book): about 2,600 measured (peak resident size of `liqscan run
/// --demo-accounts 200000` less that of 1,000 accounts), rounded up.
pub const RUN_BYTES_PER_ACCOUNT: u64 = 3072;

/// Bytes a keeper takes per account and per term of a CSV book (compact book, upserts,
/// dispatch's views, engine): the 1 M-account generated book (2.6 terms an account) peaked at
/// 601 MB for the whole `liqscan run`, about 600 bytes an account; these bound it at 845.
pub const KEEPER_BYTES_PER_ACCOUNT: u64 = 512;
/// See [`KEEPER_BYTES_PER_ACCOUNT`].
pub const KEEPER_BYTES_PER_TERM: u64 = 128;

/// Accounts in the demo book unless `demo_accounts` says otherwise.
pub const DEFAULT_DEMO_ACCOUNTS: usize = 2000;

/// A loaded book and tick stream, as pipeline messages.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Account ids by slot.
    pub ids: AccountIds,
    /// The accounts as dispatch sizes them.
    pub keeper: KeeperBook,
    /// Assets.
    pub assets: usize,
    /// Asset symbols by index (metrics labels).
    pub symbols: Vec<String>,
    /// Upserts then ticks, with recorded timestamps.
    pub msgs: Recorded,
    /// Assets a live tick may price at 0 (the venue's `allow_zero_price`), by asset index.
    pub zero_price_ok: Vec<bool>,
    /// Assets some account of the book holds: the engine reports nothing until each has a
    /// price (the pipeline's warm-up).
    pub held: Vec<u16>,
}

impl Workload {
    /// A book and its ticks: each account an upsert at the first tick's time, then the ticks.
    pub fn new(table: &AssetTable, accounts: &[LoadedAccount], ticks: &[Tick]) -> Workload {
        let ids = accounts.iter().map(|a| a.spec.id.as_str()).collect();
        let terms = accounts.iter().map(|a| a.terms.len()).sum();
        let keeper = KeeperBook::new(table, accounts.iter().map(|a| &a.spec));
        Workload::of(table, accounts.iter().map(|a| a.terms.as_slice()), terms, ids, keeper, ticks)
    }

    /// [`Workload::new`] of a compact book, with the keeper's book read beside it; the book's
    /// ids move into the workload.
    pub fn from_book(table: &AssetTable, book: Book, keeper: KeeperBook, ticks: &[Tick]) -> Workload {
        let terms = book.term_count();
        let mut w =
            Workload::of(table, book.iter().map(|(_, t)| t), terms, AccountIds::default(), keeper, ticks);
        w.ids = book.into_ids();
        w
    }

    fn of<'a>(
        table: &AssetTable,
        accounts: impl ExactSizeIterator<Item = &'a [Coeff]>,
        terms: usize,
        ids: AccountIds,
        mut keeper: KeeperBook,
        ticks: &[Tick],
    ) -> Workload {
        let t0 = ticks.first().map_or(0, |t| t.ts_ns);
        let mut msgs = Recorded::with_capacity(accounts.len(), ticks.len(), terms);
        // Dispatch keeps the positions read for an account whose upsert carries these terms.
        let mut read = Vec::with_capacity(accounts.len());
        let mut held = vec![false; table.len()];
        for (i, terms) in accounts.enumerate() {
            msgs.push(t0, &FeedMsg::upsert(i as u32, terms));
            read.push(fingerprint(terms));
            for t in terms {
                held[t.asset as usize] = true;
            }
        }
        keeper.set_read_terms(read);
        for t in ticks {
            msgs.push(t.ts_ns, &FeedMsg::Tick { asset: t.asset, price: t.entry });
        }
        Workload {
            ids,
            keeper,
            assets: table.len(),
            symbols: table.assets().iter().map(|a| a.symbol.clone()).collect(),
            msgs,
            zero_price_ok: table.assets().iter().map(|a| a.allow_zero_price).collect(),
            held: (0..table.len() as u16).filter(|&a| held[a as usize]).collect(),
        }
    }

    /// The embedded demo venue with a generated book of `accounts` accounts and its crash
    /// (deterministic from the seed 7).
    pub fn demo(accounts: usize) -> Result<Workload, KeeperError> {
        check_book_size("--demo-accounts", accounts, RUN_BYTES_PER_ACCOUNT)?;
        let table = crate::demo_book::venue();
        let book = crate::demo_book::book(&table, accounts, 7);
        let path = crate::demo_book::price_path(&table, 7);
        Ok(Workload::new(&table, &book, &path))
    }

    /// The workload `cfg` names: its venue, accounts, ticks and bars, or the demo.
    pub fn load(cfg: &KeeperConfig) -> Result<Workload, KeeperError> {
        let Some(v) = &cfg.venue else {
            // Files given without a venue were ignored and the demo ran in their place.
            let given: Vec<&str> = [
                ("--accounts", cfg.accounts.is_some()),
                ("--ticks", !cfg.ticks.is_empty()),
                ("--bars", !cfg.bars.is_empty()),
            ]
            .into_iter()
            .filter_map(|(flag, set)| set.then_some(flag))
            .collect();
            if !given.is_empty() {
                return Err(KeeperError::Config(format!(
                    "{} given without --venue: name the venue file they are read against (without \
                     --venue the embedded demo runs, and takes no files)",
                    given.join(", ")
                )));
            }
            return Workload::demo(cfg.demo_accounts.unwrap_or(DEFAULT_DEMO_ACCOUNTS));
        };
        let table = read_venue(v).map_err(KeeperError::other)?;
        let acc = cfg
            .accounts
            .as_ref()
            .ok_or_else(|| KeeperError::Config("--accounts is required with --venue".into()))?;
        let accounts = read_keeper_accounts(acc, &table).map_err(KeeperError::other)?;
        let mut ticks = vec![];
        for t in &cfg.ticks {
            ticks.extend(read_ticks(t, &table).map_err(KeeperError::other)?);
        }
        for b in &cfg.bars {
            let (sym, p) =
                b.split_once('=').ok_or_else(|| KeeperError::Config("--bars takes SYMBOL=PATH".into()))?;
            ticks.extend(read_bars(Path::new(p), &table, sym).map_err(KeeperError::other)?);
        }
        ticks.sort_by_key(|t| t.ts_ns);
        let live = cfg.feed.listens() || cfg.nats.is_some();
        match accounts {
            KeeperAccounts::Compact(c) => {
                let (book, keeper) = *c;
                refuse_unpriced(&table, book.iter().map(|(_, t)| t), &ticks, live)?;
                Ok(Workload::from_book(&table, book, keeper, &ticks))
            }
            KeeperAccounts::Specs(accounts) => {
                refuse_unpriced(&table, accounts.iter().map(|a| a.terms.as_slice()), &ticks, live)?;
                Ok(Workload::new(&table, &accounts, &ticks))
            }
        }
    }
}

/// A keeper's accounts as read: CSV into the compact book (with what dispatch sizes orders
/// from beside it), the other formats as specs.
enum KeeperAccounts {
    Compact(Box<(Book, KeeperBook)>),
    Specs(Vec<LoadedAccount>),
}

/// Reads a keeper's accounts file. CSV goes through the compact reader, keeping no
/// `AccountSpec` per account (a million of them took over a gigabyte, and four times as long
/// to read); the workload is the same as from the specs.
fn read_keeper_accounts(path: &Path, table: &AssetTable) -> Result<KeeperAccounts, InputError> {
    if Format::of(path)? != Format::Csv {
        return read_accounts(path, table).map(KeeperAccounts::Specs);
    }
    // Refused before it is read, rather than killed by the kernel part way.
    let est = estimate_book(path)?;
    let need = est.accounts.saturating_mul(KEEPER_BYTES_PER_ACCOUNT)
        + est.terms.saturating_mul(KEEPER_BYTES_PER_TERM);
    let what = format!(
        "a book of about {} accounts and {} terms, at about {KEEPER_BYTES_PER_ACCOUNT} bytes an account and \
         {KEEPER_BYTES_PER_TERM} a term in a keeper",
        est.accounts, est.terms
    );
    limits::fits_memory(&what, need).map_err(|e| InputError::file(path, e.to_string()))?;
    let mut keeper = KeeperBookBuilder::new(table);
    // A little over the estimate: it is taken from the file's first rows.
    let margin = |n: u64| (n + n / 16 + 64) as usize;
    keeper.reserve(margin(est.accounts), margin(est.terms));
    let book = read_csv_book(path, table, &mut |_, _| {}, &mut |k, asset, balance, tier| {
        keeper.row(k, asset, balance, tier)
    })?;
    let keeper = keeper.finish(book.len());
    Ok(KeeperAccounts::Compact(Box::new((book, keeper))))
}

/// Refuses a generated book of `n` accounts beyond [`limits::MAX_ACCOUNTS`] or beyond the
/// memory this machine has available at `bytes_each` an account, before anything is
/// allocated; `flag` names the option.
pub fn check_book_size(flag: &str, n: usize, bytes_each: u64) -> Result<(), KeeperError> {
    if n == 0 {
        return Err(KeeperError::Config(format!("{flag} is 0; give at least 1 account")));
    }
    limits::at_most(flag, n as u64, limits::MAX_ACCOUNTS).map_err(KeeperError::other)?;
    limits::fits_memory(
        &format!("{flag} {n}: a book of {n} accounts at about {bytes_each} bytes each"),
        (n as u64).saturating_mul(bytes_each),
    )
    .map_err(KeeperError::other)?;
    Ok(())
}

/// Refuses a replay that never prices an asset some account holds, as `liqscan scan` does: the
/// engine would read it as worth 0 and report breaches that are not there. With a live feed
/// the price may come from it, so the keeper goes on.
fn refuse_unpriced<'a>(
    table: &AssetTable,
    accounts: impl Iterator<Item = &'a [Coeff]>,
    ticks: &[Tick],
    live: bool,
) -> Result<(), KeeperError> {
    let mut unpriced = vec![false; table.len()];
    for t in accounts.flatten() {
        unpriced[t.asset as usize] = true;
    }
    for t in ticks {
        unpriced[t.asset as usize] = false;
    }
    let names: Vec<&str> =
        table.assets().iter().zip(&unpriced).filter(|(_, u)| **u).map(|(a, _)| a.symbol.as_str()).collect();
    if !names.is_empty() && !live {
        return Err(KeeperError::Config(format!(
            "no tick ever priced {}: accounts hold them, so their health is unknown; add ticks for them \
             (or take them from a live feed: --listen-tcp / --listen-udp / --nats)",
            names.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Decimal;
    use proptest::prelude::*;

    /// One CSV row: account, asset, balance (mantissa, scale), tier.
    fn row() -> impl Strategy<Value = (u32, usize, i64, u32, usize)> {
        (0u32..25, 0usize..6, prop_oneof![Just(0i64), -3_000_000i64..3_000_000], 0u32..7, 0usize..13)
    }

    proptest! {
        /// A CSV book read by the compact reader gives the keeper the workload the specs give:
        /// the same ids, upserts and dispatch views (positions, weights, slots), or the same
        /// refusal.
        #[test]
        fn the_compact_load_gives_the_workload_the_specs_give(
            rows in prop::collection::vec(row(), 1..60),
        ) {
            let table = crate::demo_book::venue();
            let symbols: Vec<&str> = table.assets().iter().map(|a| a.symbol.as_str()).collect();
            let tiers = ["default", "isolated", "perp", ""];
            let mut text = String::from("account,asset,balance,tier\n");
            for (id, a, m, scale, t) in rows {
                let asset = symbols[a % symbols.len()];
                // Rarely a tier the venue does not have, to compare the refusals too.
                let tier = if t == 12 { "gold" } else { tiers[t % tiers.len()] };
                text.push_str(&format!("u{id},{asset},{},{tier}\n", Decimal::new(m as i128, scale)));
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("book.csv");
            std::fs::write(&path, &text).unwrap();
            let specs = read_accounts(&path, &table).map(|a| Workload::new(&table, &a, &[]));
            let compact = read_keeper_accounts(&path, &table).map(|k| match k {
                KeeperAccounts::Compact(c) => {
                    let (book, keeper) = *c;
                    Workload::from_book(&table, book, keeper, &[])
                }
                KeeperAccounts::Specs(_) => unreachable!("a CSV file reads compact"),
            });
            match (specs, compact) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "specs {:?} but compact {:?}", a.map(|w| w.ids.len()), b.map(|w| w.ids.len())),
            }
        }
    }
}
