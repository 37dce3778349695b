//! Journal overhead on the hot path, as a ratio to the same run without it.
//!
//! ```text
//!   cargo bench -p liqscan-host --bench journal            # 100,000 accounts, 400,000 ticks
//!   cargo bench -p liqscan-host --bench journal -- --smoke # seconds
//! ```
//!
//! One book (70% one collateral / one debt, 30% four assets over 16 assets) in the software
//! engine; the same pre-generated single-asset ticks are applied in alternating rounds
//!   A: engine.tick only,
//!   B: journal.append(Tick) then engine.tick, per fsync policy,
//! so drift of the machine hits both alike. Reported: mean and p50/p99 per tick (hdrhistogram)
//! and the ratio B/A of the means. Snapshots are off there.
//!
//! Then the snapshot stall: a journal holding a book of 1,000,000 accounts (50,000 with
//! `--smoke`) takes a synchronous snapshot and a background one, alternating, three times
//! each; reported: how long the writer is held by each (for the background one: the copy of
//! the state and the new segment) and how long the background thread took.

use std::time::Instant;

use hdrhistogram::Histogram;
use liqscan_hdl::abi::{Coeff, PriceEntry};
use liqscan_host::engine::{ScanEngine, SoftwareEngine};
use liqscan_host::journal::drill::random_price;
use liqscan_host::journal::{FsyncPolicy, Journal, JournalConfig, Record};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ASSETS: usize = 16;

struct Lane {
    hist: Histogram<u64>,
    total_ns: u128,
    n: u64,
}

impl Lane {
    fn new() -> Self {
        Lane { hist: Histogram::new(3).unwrap(), total_ns: 0, n: 0 }
    }
    fn add(&mut self, ns: u64) {
        self.hist.record(ns.max(1)).unwrap();
        self.total_ns += ns as u128;
        self.n += 1;
    }
    fn mean(&self) -> f64 {
        self.total_ns as f64 / self.n as f64
    }
}

fn book(rng: &mut ChaCha8Rng, accounts: usize) -> SoftwareEngine {
    let mut e = SoftwareEngine::new(accounts, ASSETS);
    for slot in 0..accounts {
        let n = if rng.gen_bool(0.7) { 2 } else { 4 };
        let mut assets: Vec<u16> = (0..ASSETS as u16).collect();
        let terms: Vec<Coeff> = (0..n)
            .map(|k| {
                let j = rng.gen_range(k..ASSETS);
                assets.swap(k, j);
                let c = rng.gen_range(1..1_000_000);
                Coeff { asset: assets[k], coeff: if k == 0 { c } else { -c / 2 } }
            })
            .collect();
        e.upsert(slot as u32, &terms).unwrap();
    }
    let prices: Vec<PriceEntry> = (0..ASSETS).map(|_| random_price(rng)).collect();
    e.batch_tick(&prices).unwrap();
    e
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (accounts, ticks, always_ticks) =
        if smoke { (10_000, 40_000, 500) } else { (100_000, 400_000, 5_000) };
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut engine = book(&mut rng, accounts);
    let feed: Vec<(u16, PriceEntry)> =
        (0..ticks).map(|_| (rng.gen_range(0..ASSETS as u16), random_price(&mut rng))).collect();
    let policies = [
        ("never", FsyncPolicy::Never, ticks),
        ("batch 256 / 10 ms", FsyncPolicy::Batch { records: 256, millis: 10 }, ticks),
        ("always", FsyncPolicy::Always, always_ticks),
    ];
    println!("journal overhead: {accounts} accounts x {ASSETS} assets, single-asset ticks");
    println!(
        "{:<20} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "run", "ticks", "mean ns", "p50 ns", "p99 ns", "ratio"
    );
    for (name, fsync, n) in policies {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = JournalConfig { fsync, segment_bytes: 64 << 20, snapshot_every: None };
        let (mut journal, _) = Journal::open(tmp.path(), accounts, ASSETS, cfg).unwrap();
        let (mut plain, mut journaled) = (Lane::new(), Lane::new());
        let mut ts = 0i64;
        for round in feed[..n].chunks(1000) {
            for &(asset, price) in round {
                let t = Instant::now();
                engine.tick(asset, price).unwrap();
                plain.add(t.elapsed().as_nanos() as u64);
            }
            for &(asset, price) in round {
                ts += 1;
                let t = Instant::now();
                journal.append(&Record::Tick { ts_ns: ts, asset, price }).unwrap();
                engine.tick(asset, price).unwrap();
                journaled.add(t.elapsed().as_nanos() as u64);
            }
        }
        let row = |label: &str, l: &Lane, ratio: String| {
            println!(
                "{:<20} {:>8} {:>10.0} {:>10} {:>10} {:>10}",
                label,
                l.n,
                l.mean(),
                l.hist.value_at_quantile(0.5),
                l.hist.value_at_quantile(0.99),
                ratio
            )
        };
        row("tick", &plain, "1.00".into());
        row(&format!("tick + journal {name}"), &journaled, format!("{:.2}", journaled.mean() / plain.mean()));
        let s = journal.stats();
        println!("  journal: {} records, {} bytes, {} msync", s.records, s.bytes, s.syncs);
    }
    snapshot_stall(if smoke { 50_000 } else { 1_000_000 }, &mut rng);
}

/// Writer time of a synchronous snapshot against a background one, on one big book.
fn snapshot_stall(accounts: usize, rng: &mut ChaCha8Rng) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = JournalConfig { fsync: FsyncPolicy::Never, segment_bytes: 256 << 20, snapshot_every: None };
    let (mut journal, _) = Journal::open(tmp.path(), accounts, ASSETS, cfg).unwrap();
    for slot in 0..accounts as u32 {
        let n = if rng.gen_bool(0.7) { 2 } else { 4 };
        let terms: Vec<Coeff> =
            (0..n).map(|k| Coeff { asset: k as u16, coeff: rng.gen_range(-1_000_000..1_000_000) }).collect();
        journal.append(&Record::Upsert { account: slot as u64, slot, terms }).unwrap();
    }
    println!("snapshot of {accounts} accounts (ms): writer held / background thread");
    for round in 0..3 {
        let t = Instant::now();
        journal.snapshot().unwrap();
        let sync = t.elapsed().as_secs_f64() * 1e3;
        journal.append(&Record::Param { name: "round".into(), value: round.to_string() }).unwrap();
        let t = Instant::now();
        journal.snapshot_in_background().unwrap();
        let held = t.elapsed().as_secs_f64() * 1e3;
        journal.flush_snapshot().unwrap();
        let total = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "  synchronous {sync:>8.1}   background {held:>8.1} / {total:>8.1}   ratio {:.3}",
            held / sync
        );
        journal.append(&Record::Param { name: "round".into(), value: round.to_string() }).unwrap();
    }
}
