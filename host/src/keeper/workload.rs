//! A keeper's book and replayed tick stream, loaded from files or generated (the embedded
//! demo venue, book and crash), as pipeline messages.

use std::path::Path;

use super::KeeperError;
use super::config::KeeperConfig;
use crate::io::accounts::{LoadedAccount, read_accounts};
use crate::io::limits;
use crate::io::ticks::{Tick, read_bars, read_ticks};
use crate::io::venue::read_venue;
use crate::model::AssetTable;
use crate::pipeline::FeedMsg;
use crate::pipeline::dispatch::KeeperBook;

/// Bytes a demo account takes in a keeper (the book is also held as feed messages and as
/// dispatch's keeper book): about 2,600 measured (peak resident size of `liqscan run
/// --demo-accounts 200000` less that of 1,000 accounts), rounded up.
pub const RUN_BYTES_PER_ACCOUNT: u64 = 3072;

/// Accounts in the demo book unless `demo_accounts` says otherwise.
pub const DEFAULT_DEMO_ACCOUNTS: usize = 2000;

/// A loaded book and tick stream, as pipeline messages.
#[derive(Clone)]
pub struct Workload {
    /// Account ids by slot.
    pub ids: Vec<String>,
    /// The accounts as dispatch sizes them.
    pub keeper: KeeperBook,
    /// Assets.
    pub assets: usize,
    /// Asset symbols by index (metrics labels).
    pub symbols: Vec<String>,
    /// Upserts then ticks, with recorded timestamps.
    pub msgs: Vec<(i64, FeedMsg)>,
    /// Assets a live tick may price at 0 (the venue's `allow_zero_price`), by asset index.
    pub zero_price_ok: Vec<bool>,
}

impl Workload {
    /// A book and its ticks: each account an upsert at the first tick's time, then the ticks.
    pub fn new(table: &AssetTable, accounts: &[LoadedAccount], ticks: &[Tick]) -> Workload {
        let t0 = ticks.first().map_or(0, |t| t.ts_ns);
        let mut msgs: Vec<(i64, FeedMsg)> =
            accounts.iter().enumerate().map(|(i, acc)| (t0, FeedMsg::upsert(i as u32, &acc.terms))).collect();
        msgs.extend(ticks.iter().map(|t| (t.ts_ns, FeedMsg::Tick { asset: t.asset, price: t.entry })));
        let specs: Vec<_> = accounts.iter().map(|a| a.spec.clone()).collect();
        Workload {
            ids: accounts.iter().map(|a| a.spec.id.clone()).collect(),
            keeper: KeeperBook::new(table, &specs),
            assets: table.len(),
            symbols: table.assets().iter().map(|a| a.symbol.clone()).collect(),
            msgs,
            zero_price_ok: table.assets().iter().map(|a| a.allow_zero_price).collect(),
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
        let accounts = read_accounts(acc, &table).map_err(KeeperError::other)?;
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
        refuse_unpriced(&table, &accounts, &ticks, cfg.feed.listens() || cfg.nats.is_some())?;
        Ok(Workload::new(&table, &accounts, &ticks))
    }
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
fn refuse_unpriced(
    table: &AssetTable,
    accounts: &[LoadedAccount],
    ticks: &[Tick],
    live: bool,
) -> Result<(), KeeperError> {
    let mut unpriced = vec![false; table.len()];
    for t in accounts.iter().flat_map(|a| &a.terms) {
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
