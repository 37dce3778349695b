//! The dispatcher in a crash at a 10 M-account venue's scale: a backlog of 680,000 breached
//! accounts (what `scripts/bench-whole-job.sh 10000000` leaves), then ticks.
//!
//! ```text
//!   cargo bench -p liqscan-host --bench dispatch_crash
//!   LIQSCAN_BACKLOG=100000 LIQSCAN_TICKS=200 LIQSCAN_ROUNDS=1 LIQSCAN_RANKING=kept cargo bench -p liqscan-host --bench dispatch_crash
//! ```
//!
//! The book is the generated lending book's mix: 70 % of the accounts hold ETH against USDC,
//! 30 % ETH and BTC against USDC and USDT, all below their liquidation line. Each tick moves one
//! asset's price (ETH 65 %, BTC 22 %, a stablecoin 13 %, as in the bench's ticks), clears 1,000
//! breached accounts and breaches 1,000 others, then polls twice, 1 ms apart; the discard
//! executor (JSON lines into `io::sink`, as `liqscan run`'s default) answers every order, so
//! each account settles for 1 s and comes back. Ticks are 20 ms apart.
//!
//! Two dispatchers take the same ticks, round by round: "kept", the ranking as the keeper keeps
//! it, and "afresh", told to rank its whole backlog again before every scan
//! (`Dispatcher::resume` with no points), which is what every scan and price move cost before the
//! ranking was kept. Each tick's time (scan, then both polls) goes into a histogram, and those
//! that move a stablecoin (owed by every account) into one of their own; the machine's floor (an
//! empty loop's tick) is measured in the same run.
//!
//! A stablecoin's price flips between 1 and 2 by default: every such move reorders the accounts
//! owing both stablecoins. `LIQSCAN_STABLE_PPM=N` sets it within N ppm of its peg instead, as in
//! a calm hour (every price scaled by 10,000 so that such moves are whole quotes; the same
//! orders go out, since a common scale moves no account's health across 0).

use std::borrow::Cow;
use std::time::Instant;

use hdrhistogram::Histogram;
use liqscan_hdl::abi::{PriceEntry, QuotedPrice};
use liqscan_host::dispatch::{
    AccountSource, AccountView, DispatchConfig, Dispatcher, JsonlSink, Position, ScanBatch,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHURN: usize = 1_000;
const MS: u64 = 1_000_000;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Accounts by slot, each its own slice of positions.
struct Book {
    positions: Vec<Position>,
    starts: Vec<usize>,
}

impl AccountSource for Book {
    fn view(&self, slot: u32) -> Option<AccountView<'_>> {
        let s = slot as usize;
        let p = self.positions.get(self.starts[s]..*self.starts.get(s + 1)?)?;
        Some(AccountView { account: slot as u64, slot, positions: Cow::Borrowed(p) })
    }
}

const ETH: u16 = 0;
const BTC: u16 = 1;
const USDC: u16 = 2;
const USDT: u16 = 3;

fn quote(p: u32) -> PriceEntry {
    let q = |p| QuotedPrice { asset: p, liability: p };
    PriceEntry { spot: q(p), stressed: q((p as u64 * 9 / 10) as u32) }
}

fn book(n: usize, rng: &mut ChaCha8Rng) -> Book {
    let leg = |asset, amount: i128, w: u32| Position {
        asset,
        amount,
        asset_weight_ppm: w,
        liability_weight_ppm: 1_000_000,
    };
    let (mut positions, mut starts) = (Vec::new(), vec![0]);
    for _ in 0..n {
        // Collateral worth 1-100 k (ETH at 3,000), debt at 85-100 % of it: below the line.
        let eth = rng.gen_range(1..100) as i128;
        let value = eth * 3_000;
        positions.push(leg(ETH, eth, 825_000));
        let owed = value * rng.gen_range(85..100) / 100;
        if rng.gen_range(0..10) < 7 {
            positions.push(leg(USDC, -owed, 875_000));
        } else {
            positions.push(leg(BTC, 1, 780_000));
            let owed = owed + 60_000 * 9 / 10;
            positions.push(leg(USDC, -owed / 2, 875_000));
            positions.push(leg(USDT, -(owed - owed / 2), 800_000));
        }
        starts.push(positions.len());
    }
    Book { positions, starts }
}

/// One tick's inputs, the same for both dispatchers.
struct Tick {
    prices: Vec<PriceEntry>,
    batch: ScanBatch,
    /// The tick moves an owed asset (a stablecoin), which re-keys its debtors.
    owed: bool,
}

fn ticks(n: usize, backlog: usize, stable_ppm: Option<f64>, rng: &mut ChaCha8Rng) -> Vec<Tick> {
    let scale = if stable_ppm.is_some() { 10_000 } else { 1 };
    let mut px = [3_000u32, 60_000, 1, 1].map(|p| p * scale);
    // Breached slots are 0..backlog; the churn swaps them with those above.
    let (mut breached, mut clear): (Vec<u32>, Vec<u32>) =
        ((0..backlog as u32).collect(), (backlog as u32..(backlog + 4 * CHURN) as u32).collect());
    (0..n as u64)
        .map(|seq| {
            let a = match rng.gen_range(0..100) {
                0..65 => ETH,
                65..87 => BTC,
                87..94 => USDC,
                _ => USDT,
            } as usize;
            px[a] = match a as u16 {
                ETH | BTC => (px[a] as f64 * rng.gen_range(0.990..1.008)) as u32,
                _ => match stable_ppm {
                    None => [1, 2][rng.gen_range(0..2)],
                    Some(ppm) => (scale as f64 * (1.0 + rng.gen_range(-ppm..=ppm) / 1e6)) as u32,
                },
            };
            let mut out = |from: &mut Vec<u32>| -> Vec<u32> {
                (0..CHURN).map(|_| from.swap_remove(rng.gen_range(0..from.len()))).collect()
            };
            let cleared = out(&mut breached);
            let newly = out(&mut clear);
            breached.extend(&newly);
            clear.extend(&cleared);
            let batch = ScanBatch { seq: seq + 2, breached: newly, cleared, ..Default::default() };
            let owed = a as u16 == USDC || a as u16 == USDT;
            Tick { prices: px.iter().map(|&p| quote(p)).collect(), batch, owed }
        })
        .collect()
}

struct Run {
    first_scan_ms: f64,
    tick_us: Histogram<u64>,
    /// The ticks that move an owed asset.
    owed_us: Histogram<u64>,
    orders: u64,
    backlog: usize,
}

fn run(book: &Book, backlog: usize, ticks: &[Tick], afresh: bool) -> Run {
    let cfg = DispatchConfig::default();
    let mut d = Dispatcher::new(cfg);
    let mut exec = JsonlSink::new("discard", std::io::sink());
    let mut tick_us = Histogram::<u64>::new(3).expect("histogram");
    let mut owed_us = Histogram::<u64>::new(3).expect("histogram");
    let first = ScanBatch { seq: 1, breached: (0..backlog as u32).collect(), ..Default::default() };
    let t0 = Instant::now();
    d.on_scan(0, &first, &ticks[0].prices, book, &mut exec);
    let first_scan_ms = t0.elapsed().as_secs_f64() * 1e3;
    for (i, t) in ticks.iter().enumerate() {
        let now = (i as u64 + 1) * 20 * MS;
        let t0 = Instant::now();
        if afresh {
            d.resume(Vec::new());
        }
        d.on_scan(now, &t.batch, &t.prices, book, &mut exec);
        d.poll(now, &t.prices, book, &mut exec);
        d.poll(now + MS, &t.prices, book, &mut exec);
        let us = t0.elapsed().as_micros() as u64;
        let _ = tick_us.record(us);
        if t.owed {
            let _ = owed_us.record(us);
        }
    }
    Run { first_scan_ms, tick_us, owed_us, orders: d.stats().orders, backlog: d.backlog() }
}

fn main() {
    let backlog = env("LIQSCAN_BACKLOG", 680_000);
    let n_ticks = env("LIQSCAN_TICKS", 100);
    let rounds = env("LIQSCAN_ROUNDS", 3);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let book = book(backlog + 4 * CHURN, &mut rng);
    let stable_ppm = std::env::var("LIQSCAN_STABLE_PPM").ok().and_then(|v| v.parse::<f64>().ok());
    let ticks = ticks(n_ticks, backlog, stable_ppm, &mut rng);
    println!(
        "dispatch in a crash: {backlog} accounts breached, {n_ticks} ticks, {CHURN} cleared and {CHURN} breached a tick; \
         stablecoins {}",
        stable_ppm.map_or("flip between 1 and 2".into(), |p| format!("within {p} ppm of their peg"))
    );
    let mut floor = Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..n_ticks * rounds {
        let t0 = Instant::now();
        std::hint::black_box(&ticks);
        let _ = floor.record(t0.elapsed().as_micros() as u64);
    }
    println!(
        "{:>8} {:>5} {:>10} {:>9} {:>9} {:>9} {:>12} {:>9} {:>9}",
        "ranking", "round", "first ms", "p50 us", "p99 us", "max us", "owed p50 us", "orders", "backlog"
    );
    let which = std::env::var("LIQSCAN_RANKING").unwrap_or_default();
    let modes: Vec<bool> = [false, true]
        .into_iter()
        .filter(|&a| which.is_empty() || which == ["kept", "afresh"][a as usize])
        .collect();
    for round in 0..rounds {
        for &afresh in &modes {
            let r = run(&book, backlog, &ticks, afresh);
            println!(
                "{:>8} {:>5} {:>10.1} {:>9} {:>9} {:>9} {:>12} {:>9} {:>9}",
                if afresh { "afresh" } else { "kept" },
                round,
                r.first_scan_ms,
                r.tick_us.value_at_quantile(0.5),
                r.tick_us.value_at_quantile(0.99),
                r.tick_us.max(),
                r.owed_us.value_at_quantile(0.5),
                r.orders,
                r.backlog
            );
        }
    }
    println!("floor (an empty tick): p99 {} us, max {} us", floor.value_at_quantile(0.99), floor.max());
}
