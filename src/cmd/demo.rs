//! `liqscan demo`: the embedded default scenario, end to end, on the software engine.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use liqscan_host::io::breaches::{BreachEvent, BreachWriter, EventKind};
use liqscan_host::io::time::format_timestamp;
use serde::Serialize;

use crate::demo_book;
use crate::replay::{Percentiles, Replay, ReplayStats, RoutingArg};

/// Arguments of `liqscan demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Accounts in the generated book.
    #[arg(long, default_value_t = 100_000)]
    pub accounts: usize,
    /// Seed of the book and the price path.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Write every breach, recovery and at-risk event as JSONL to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How the software engine serves a one-asset tick.
    #[arg(long, value_enum, default_value = "deltas")]
    pub routing: RoutingArg,
    /// Print the summary as JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// One row of the timeline.
#[derive(Serialize)]
struct Row {
    ts: String,
    prices: Vec<(String, String)>,
    breached: usize,
    at_risk: usize,
    new_breaches: u64,
}

#[derive(Serialize)]
struct Summary {
    venue: String,
    accounts: usize,
    assets: usize,
    setup_ms: f64,
    replay_ms: f64,
    stats: ReplayStats,
    tick_latency: Percentiles,
    timeline: Vec<Row>,
    first_breaches: Vec<BreachEvent>,
}

/// Bytes a generated account takes while the demo runs (its spec with the balances map and
/// id, its compiled terms, its engine slot, bitmaps): about 1,100 measured (peak resident size
/// of `liqscan demo --accounts 500000` less that of 1,000 accounts), rounded up.
pub const DEMO_BYTES_PER_ACCOUNT: u64 = 1280;

/// Refuses a generated book of `n` accounts beyond `limits::MAX_ACCOUNTS` or beyond the
/// memory this machine has available at `bytes_each` an account (the keeper's check).
pub fn check_book_size(flag: &str, n: usize, bytes_each: u64) -> Result<()> {
    Ok(liqscan_host::keeper::workload::check_book_size(flag, n, bytes_each)?)
}

/// Runs the demo.
pub fn run(a: Args) -> Result<()> {
    check_book_size("--accounts", a.accounts, DEMO_BYTES_PER_ACCOUNT)?;
    let t0 = Instant::now();
    let table = demo_book::venue();
    let book = liqscan_host::io::accounts::book_of(&demo_book::book(&table, a.accounts, a.seed));
    let ticks = demo_book::price_path(&table, a.seed);
    let mut replay = Replay::new(&table, &book, a.routing.into())?;
    let setup_ms = t0.elapsed().as_secs_f64() * 1e3;
    if !a.json {
        println!(
            "liqscan demo: {} accounts, {} assets, {} ticks over 6 hours of a crash (set up in {setup_ms:.0} ms)",
            book.len(),
            table.len(),
            ticks.len()
        );
    }
    let mut writer = match &a.out {
        Some(p) => Some(BreachWriter::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        ))),
        None => None,
    };
    let bar = if a.json { ProgressBar::hidden() } else { ProgressBar::new(ticks.len() as u64) };
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} ticks {msg}").expect("template"));
    let shown = ["ETH", "BTC", "SOL"].map(|s| table.index_of(s).expect("demo asset"));
    let mut last = [liqscan_host::model::Decimal::ZERO; 3];
    let mut timeline = Vec::new();
    let mut first = Vec::new();
    let mut next_row = demo_book::START_NS;
    let mut breaches_at_row = 0;
    let t1 = Instant::now();
    let mut io_err = None;
    for (i, tick) in ticks.iter().enumerate() {
        replay.apply(tick, |e| {
            if e.event == EventKind::Breach && first.len() < 10 {
                first.push(e.to_event());
            }
            if let Some(w) = writer.as_mut()
                && let Err(err) = w.write_record(e)
            {
                io_err.get_or_insert(err);
            }
        })?;
        if let Some(k) = shown.iter().position(|&s| s == tick.asset) {
            last[k] = tick.price;
        }
        if replay.warm() && (tick.ts_ns >= next_row || i + 1 == ticks.len()) {
            timeline.push(Row {
                ts: format_timestamp(tick.ts_ns),
                prices: ["ETH", "BTC", "SOL"]
                    .iter()
                    .zip(last)
                    .map(|(s, p)| (s.to_string(), p.to_string()))
                    .collect(),
                breached: replay.breached_now(),
                at_risk: replay.at_risk_now(),
                new_breaches: replay.stats.breaches - breaches_at_row,
            });
            breaches_at_row = replay.stats.breaches;
            next_row += 20 * 60 * 1_000_000_000;
        }
        if i % 256 == 0 {
            bar.set_position(i as u64);
            bar.set_message(format!("{} breached", replay.breached_now()));
        }
    }
    bar.finish_and_clear();
    if let Some(e) = io_err {
        return Err(e).context("writing breach events");
    }
    if let Some(w) = writer {
        w.finish().context("writing breach events")?;
    }
    replay.check_priced()?;
    let summary = Summary {
        venue: table.venue.name.clone(),
        accounts: book.len(),
        assets: table.len(),
        setup_ms,
        replay_ms: t1.elapsed().as_secs_f64() * 1e3,
        stats: replay.stats.clone(),
        tick_latency: Percentiles::of(&replay.latency),
        timeline,
        first_breaches: first,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_tables(&summary);
        if let Some(p) = &a.out {
            println!("events written to {}", p.display());
        }
    }
    Ok(())
}

fn print_tables(s: &Summary) {
    println!("\nwhat breached when (every 20 minutes of the path):");
    println!(
        "{:<25} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8}",
        "time", "ETH", "BTC", "SOL", "breached", "at risk", "new"
    );
    for r in &s.timeline {
        println!(
            "{:<25} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8}",
            r.ts, r.prices[0].1, r.prices[1].1, r.prices[2].1, r.breached, r.at_risk, r.new_breaches
        );
    }
    println!("\nfirst breaches:");
    for e in &s.first_breaches {
        let hf = e.health_factor.map(|h| format!("{h:.4}")).unwrap_or_else(|| "-".into());
        println!(
            "  {} tick {:>5}  {}  health {} quote units, collateral/debt {}",
            e.ts, e.tick, e.account, e.health, hf
        );
    }
    let st = &s.stats;
    println!(
        "\n{} ticks: {} breach events over {} accounts, {} recoveries, {} at-risk events; replay {:.0} ms",
        st.ticks, st.breaches, st.accounts_breached, st.recoveries, st.at_risk_events, s.replay_ms
    );
    let l = &s.tick_latency;
    println!(
        "engine latency per tick (us): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us
    );
}
