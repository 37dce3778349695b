//! `liqscan scan`: given a venue, accounts and ticks, report every breach as it happens.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use liqscan_host::io::breaches::BreachWriter;
use liqscan_host::io::ticks::{Tick, read_bars, read_ticks};
use liqscan_host::io::venue_book::{VenueAndBook, read_venue_and_book};
use serde::Serialize;

use crate::replay::{Percentiles, Replay, ReplayStats, RoutingArg};

/// Arguments of `liqscan scan`.
#[derive(clap::Args)]
pub struct Args {
    /// Venue file: settings and assets (.toml or .json).
    #[arg(long)]
    pub venue: PathBuf,
    /// Accounts (.toml, .json or .csv).
    #[arg(long)]
    pub accounts: PathBuf,
    /// Price ticks (.csv or .jsonl); may be given several times.
    #[arg(long)]
    pub ticks: Vec<PathBuf>,
    /// OHLC bar files (JSON) as SYMBOL=PATH, e.g. ETH=../shared/data/eth-usd-10m/2020-03-12.json.
    #[arg(long, value_name = "SYMBOL=PATH")]
    pub bars: Vec<String>,
    /// Where to write breach events as JSONL ("-" for standard output).
    #[arg(long, default_value = "-")]
    pub out: PathBuf,
    /// How the software engine serves a one-asset tick.
    #[arg(long, value_enum, default_value = "deltas")]
    pub routing: RoutingArg,
    /// Print the summary as JSON (on standard error when events go to standard output).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Summary {
    accounts: usize,
    assets: usize,
    ticks: usize,
    breached_at_end: usize,
    at_risk_at_end: usize,
    stats: ReplayStats,
    tick_latency: Percentiles,
}

/// Runs the scan.
pub fn run(a: Args) -> Result<()> {
    let book = read_venue_and_book(&a.venue, &a.accounts)?;
    report_quanta(&book);
    let VenueAndBook { table, accounts, .. } = book;
    let mut ticks: Vec<Tick> = Vec::new();
    for p in &a.ticks {
        ticks.extend(read_ticks(p, &table)?);
    }
    for spec in &a.bars {
        let Some((sym, path)) = spec.split_once('=') else {
            bail!("--bars '{spec}': expected SYMBOL=PATH");
        };
        ticks.extend(read_bars(path.as_ref(), &table, sym)?);
    }
    if ticks.is_empty() {
        bail!("no ticks: give --ticks FILE or --bars SYMBOL=PATH");
    }
    // Several files interleave by time; the sort is stable, so equal times keep file order.
    ticks.sort_by_key(|t| t.ts_ns);
    let mut replay = Replay::new(&table, &accounts, a.routing.into())?;
    let to_stdout = a.out.as_os_str() == "-";
    let sink: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(File::create(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?)
    };
    let mut writer = BreachWriter::new(BufWriter::new(sink));
    let bar = ProgressBar::new(ticks.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} ticks").expect("template"));
    let t0 = Instant::now();
    let mut io_err = None;
    for (i, t) in ticks.iter().enumerate() {
        replay.apply(t, |e| {
            if let Err(err) = writer.write(&e) {
                io_err.get_or_insert(err);
            }
        })?;
        if i % 1024 == 0 {
            bar.set_position(i as u64);
        }
    }
    bar.finish_and_clear();
    if let Some(e) = io_err {
        return Err(e).context("writing breach events");
    }
    writer.finish().context("writing breach events")?;
    replay.check_priced()?;
    let s = Summary {
        accounts: accounts.len(),
        assets: table.len(),
        ticks: ticks.len(),
        breached_at_end: replay.breached_now(),
        at_risk_at_end: replay.at_risk_now(),
        stats: replay.stats.clone(),
        tick_latency: Percentiles::of(&replay.latency),
    };
    let text = if a.json {
        serde_json::to_string_pretty(&s)?
    } else {
        let l = &s.tick_latency;
        format!(
            "{} accounts, {} ticks in {:.0} ms: {} breach events over {} accounts, {} recoveries, {} at-risk events; \
             {} breached and {} at risk at the end\nengine latency per tick (us): p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}",
            s.accounts,
            s.ticks,
            t0.elapsed().as_secs_f64() * 1e3,
            s.stats.breaches,
            s.stats.accounts_breached,
            s.stats.recoveries,
            s.stats.at_risk_events,
            s.breached_at_end,
            s.at_risk_at_end,
            l.p50_us,
            l.p99_us,
            l.p999_us,
            l.max_us
        )
    };
    if to_stdout {
        eprintln!("{text}")
    } else {
        println!("{text}")
    }
    Ok(())
}

/// Says which quanta were chosen from the book, and the worst-case rounding error per account
/// inside the venue's price range (every account when there are few, else the largest).
fn report_quanta(book: &VenueAndBook) {
    for (symbol, e) in &book.chosen {
        eprintln!("quantum_exp of {symbol} chosen from the book and price_range: {e}");
    }
    if book.error_bounds.is_empty() {
        return;
    }
    let mut rows: Vec<(usize, f64)> = book
        .error_bounds
        .iter()
        .enumerate()
        .map(|(i, b)| (i, b.as_ref().and_then(|b| b.relative).unwrap_or(f64::INFINITY)))
        .collect();
    rows.sort_by(|x, y| y.1.total_cmp(&x.1));
    const SHOWN: usize = 10;
    eprintln!(
        "worst-case rounding error for prices inside the price ranges (health, and relative to collateral at the ranges' lows){}:",
        if rows.len() > SHOWN { format!(", the {SHOWN} largest of {}", rows.len()) } else { String::new() }
    );
    for &(i, rel) in rows.iter().take(SHOWN) {
        let id = &book.accounts[i].spec.id;
        match &book.error_bounds[i] {
            Some(b) if rel.is_finite() => eprintln!("  {id}: {} ({:.3e} of collateral)", b.health, rel),
            Some(b) => eprintln!("  {id}: {} (no collateral)", b.health),
            None => eprintln!("  {id}: too large to bound"),
        }
    }
}
