//! `liqscan journal-drill` (hidden): the journal's crash drill, for `scripts/soak.sh`.
//!
//! `run` writes the deterministic drill workload (book changes, ticks, orders) into a journal
//! at a paced rate, "sending" each order to `venue.log` between its pending and sent records,
//! and samples its anonymous resident memory (RssAnon: the mapped journal segments are file
//! pages and are left out) to `rss.log` once a second, until killed or done.
//! `check` recovers the journal (as a restart would), compares the state and its bitmaps with
//! a run that never stopped, notes the orders found pending (each may be re-sent once), and
//! with `--final` checks that the venue saw every sent order exactly once (plus those re-sends)
//! and that memory stayed flat.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use liqscan_host::engine::ScanEngine;
use liqscan_host::journal::drill::Drill;
use liqscan_host::journal::{FsyncPolicy, Journal, JournalConfig, OrderState, Record};

/// Arguments of `liqscan journal-drill`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Write the drill workload until killed or `--records` are journaled.
    Run {
        /// Journal directory (the venue and RSS logs go beside it).
        #[arg(long)]
        dir: PathBuf,
        /// Records per second (0: as fast as possible).
        #[arg(long, default_value_t = 20_000)]
        rate: u64,
        /// Stop after this many records in the journal.
        #[arg(long, default_value_t = u64::MAX)]
        records: u64,
    },
    /// Recover and check the journal; `--final` also checks the order sends and memory.
    Check {
        /// Journal directory.
        #[arg(long)]
        dir: PathBuf,
        /// Check the venue log and the RSS samples too.
        #[arg(long)]
        r#final: bool,
    },
}

const SLOTS: usize = 4096;
const ASSETS: usize = 16;

fn drill() -> Drill {
    Drill { seed: 0x50a4, slots: SLOTS, assets: ASSETS }
}

fn config() -> JournalConfig {
    JournalConfig {
        fsync: FsyncPolicy::Batch { records: 256, millis: 10 },
        segment_bytes: 8 << 20,
        snapshot_every: Some(200_000),
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("RssAnon:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(line.as_bytes())?;
    Ok(())
}

/// Runs `liqscan journal-drill`.
pub fn run(a: Args) -> Result<()> {
    match a.cmd {
        Cmd::Run { dir, rate, records } => write(&dir, rate, records),
        Cmd::Check { dir, r#final } => check(&dir, r#final),
    }
}

fn write(dir: &Path, rate: u64, records: u64) -> Result<()> {
    let (mut j, rec) = Journal::open(&dir.join("journal"), SLOTS, ASSETS, config())?;
    eprintln!("journal-drill run: {rec}");
    let d = drill();
    let venue = dir.join("venue.log");
    let run_id = std::process::id();
    let start = Instant::now();
    let first = j.state().seq;
    let mut next_sample = Instant::now();
    while j.state().seq < records {
        let r = d.next(j.state());
        if let Record::OrderSent { id, attempt } = &r {
            append_line(&venue, &format!("{id} {attempt}\n"))?;
        }
        j.append(&r)?;
        if Instant::now() >= next_sample {
            append_line(
                &dir.join("rss.log"),
                &format!("{run_id} {} {}\n", start.elapsed().as_secs(), rss_kib()),
            )?;
            next_sample += Duration::from_secs(1);
        }
        if rate > 0 {
            let due = start + Duration::from_secs_f64((j.state().seq - first) as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                j.sync_due()?;
                std::thread::sleep(due - now);
            }
        }
    }
    Ok(())
}

fn check(dir: &Path, fin: bool) -> Result<()> {
    let (j, rec) = Journal::open(&dir.join("journal"), SLOTS, ASSETS, config())
        .with_context(|| format!("recovering {}", dir.display()))?;
    let state = j.state().clone();
    drop(j);
    let want = drill().expected(state.seq);
    ensure!(state == want, "state after record {} differs from a run that never stopped", state.seq);
    let e = state.software_engine();
    let bits = want.reference_bitmaps();
    ensure!(e.breach() == &bits.breach[..] && e.at_risk() == &bits.at_risk[..], "bitmaps differ");
    for o in state.unsent_orders() {
        append_line(&dir.join("pending_at_restart.log"), &format!("{}\n", o.id))?;
    }
    println!("check: {rec}; state and bitmaps equal the uninterrupted run");
    if !fin {
        return Ok(());
    }
    let count = |file: &str| -> Result<BTreeMap<u64, u32>> {
        let mut m = BTreeMap::new();
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        for l in text.lines() {
            let id: u64 = l.split(' ').next().unwrap_or_default().parse().context("venue log line")?;
            *m.entry(id).or_default() += 1;
        }
        Ok(m)
    };
    let sends = count("venue.log")?;
    let pending = count("pending_at_restart.log")?;
    let mut resent = 0;
    for id in 1..state.next_order_id {
        let n = sends.get(&id).copied().unwrap_or(0);
        let pending_now = state.orders.get(&id).is_some_and(|t| t.state == OrderState::Pending);
        if !pending_now && n == 0 {
            bail!("order {id} is journaled as sent but the venue never saw it");
        }
        let allowed = 1 + pending.get(&id).copied().unwrap_or(0);
        if n > allowed {
            bail!("order {id} reached the venue {n} times (allowed {allowed})");
        }
        resent += n.saturating_sub(1) as u64;
    }
    if let Some(id) = sends.keys().find(|&&id| id >= state.next_order_id) {
        bail!("the venue saw order {id}, which the journal lost");
    }
    println!(
        "orders: {} dispatched, each seen by the venue once ({} re-sends of orders found pending after a kill, deduplicated by id)",
        state.next_order_id - 1,
        resent
    );
    // Memory: within each run, the last RSS sample against the one at 10 s.
    let text = std::fs::read_to_string(dir.join("rss.log")).unwrap_or_default();
    let mut runs: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for l in text.lines() {
        let v: Vec<u64> = l.split(' ').filter_map(|x| x.parse().ok()).collect();
        if let [pid, t, kib] = v[..] {
            runs.entry(pid).or_default().push((t, kib));
        }
    }
    // Flat: no run grew more than 25% (and more than 4 MiB, allocator noise on a small base)
    // between its sample at 10 s and its last.
    let mut worst = (0f64, 0u64);
    for s in runs.values() {
        let base = s.iter().find(|(t, _)| *t >= 10).map(|x| x.1);
        if let (Some(b), Some(&(_, last))) = (base, s.last()) {
            let grew = last.saturating_sub(b);
            if grew > worst.1 {
                worst = (last as f64 / b as f64, grew);
            }
        }
    }
    let peak = runs.values().flatten().map(|x| x.1).max().unwrap_or(0);
    println!(
        "memory: {} runs sampled, peak RssAnon {peak} KiB, largest growth after 10 s {} KiB ({:.2}x)",
        runs.len(),
        worst.1,
        worst.0
    );
    ensure!(
        worst.1 <= 4096 || worst.0 <= 1.25,
        "RssAnon grew by {} KiB ({:.2}x) within one run",
        worst.1,
        worst.0
    );
    Ok(())
}
