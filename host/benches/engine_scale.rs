//! The software engine at a venue's scale: a generated lending book, every per-event cost.
//!
//! ```text
//!   cargo bench -p liqscan-host --bench engine_scale                          # 1,000,000 accounts
//!   cargo bench -p liqscan-host --bench engine_scale -- --accounts 10000000   # 10 M (a few minutes)
//!   cargo bench -p liqscan-host --bench engine_scale -- --smoke               # seconds
//!   cargo bench -p liqscan-host --bench engine_scale -- --deltas-only         # stop after the deltas
//! ```
//!
//! The book (issue 12): 70 % ETH/USDC pairs, 30 % ETH + BTC against USDC + USDT, so every
//! account holds ETH; one account in a hundred (one multi-asset account in 30) also holds
//! LINK, the 1 % asset. Assets: 0 ETH, 1 BTC, 2 USDC, 3 USDT, 4 LINK. Measured, in one run:
//!
//! - bulk load: `SoftwareEngine::load` then `loaded()`, against the same accounts upserted
//!   one by one into a second engine (up to 2 M accounts, so that the peak memory at
//!   10 M is one engine's);
//! - upsert and remove p50/p99 (hdrhistogram, ns), pair and multi-asset accounts apart: a
//!   random slot is removed and upserted again with fresh terms of its kind;
//! - ticks of ETH (every account) and LINK (1 %) as a random walk of small moves, p50/p99,
//!   by deltas, by full scan and as measured, and by deltas with the full scans on two threads;
//!   then the same on the book laid out as `liqscan scan` lays it out (multi-asset accounts in
//!   the first slots, so a full scan skips the blocks of pairs); then 5,000 ETH ticks by deltas
//!   and by full scan in both layouts (their p99 is the 50th slowest, not one walk's fifth);
//! - the machine's floor beside the ticks: a fixed piece of work (about 60 us) timed as often,
//!   so a tick's tail is read against what this VM adds to any task of that length;
//! - the full scan (`batch_tick`), best of several;
//! - peak memory: VmHWM from /proc/self/status after the book is generated and at the end.

/// The allocator of the `liqscan` binary (see src/main.rs), so these figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::{Routing, ScanEngine, SoftwareEngine, WindowPolicy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ETH: u16 = 0;
const BTC: u16 = 1;
const USDC: u16 = 2;
const USDT: u16 = 3;
const LINK: u16 = 4;
const ASSETS: usize = 5;

/// Prices in value quanta per coefficient unit (ETH in 1e-6 ETH, BTC in satoshi, stablecoins
/// in cents, LINK in 1e-4 LINK; a value quantum is 1e-9 USD).
const BASE: [u32; ASSETS] = [3_000_000, 600_000, 10_000_000, 10_000_000, 1_500_000];

fn quote(p: u32) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: p, liability: p + p / 1000 },
        stressed: QuotedPrice { asset: p - p / 10, liability: p + p / 10 },
    }
}

/// One account: a pair (70 %) or ETH + BTC against USDC + USDT (30 %), plus LINK collateral
/// when `link`; debt between 30 % and 105 % of the collateral's value (weights included).
fn account(rng: &mut ChaCha8Rng, pair: bool, link: bool) -> Vec<Coeff> {
    let value: f64 = rng.gen_range(1e11..1e15); // 100 USD .. 1 M USD in quanta
    let debt = value * rng.gen_range(0.3..1.05);
    let units = |v: f64, a: u16| (v / BASE[a as usize] as f64).max(1.0) as i32;
    let c = |asset, coeff| Coeff { asset, coeff };
    if pair {
        return vec![c(ETH, units(value, ETH)), c(USDC, -units(debt, USDC))];
    }
    let s = rng.gen_range(0.2..0.8);
    let d = rng.gen_range(0.2..0.8);
    let mut t = vec![
        c(ETH, units(value * s, ETH)),
        c(BTC, units(value * (1.0 - s), BTC)),
        c(USDC, -units(debt * d, USDC)),
        c(USDT, -units(debt * (1.0 - d), USDT)),
    ];
    if link {
        t.push(c(LINK, units(value * 0.1, LINK)));
    }
    t
}

/// The accounts' terms one after the other, as the compact book holds them (a `Vec` an
/// account would cost the bench about 40 bytes an account more than a user's process holds).
struct FlatBook {
    terms: Vec<Coeff>,
    /// Where account i's terms start; one more entry for the end.
    starts: Vec<u32>,
}

impl FlatBook {
    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    fn get(&self, i: usize) -> &[Coeff] {
        &self.terms[self.starts[i] as usize..self.starts[i + 1] as usize]
    }

    fn iter(&self) -> impl Iterator<Item = &[Coeff]> + Clone {
        (0..self.len()).map(|i| self.get(i))
    }
}

fn book(n: usize, rng: &mut ChaCha8Rng) -> FlatBook {
    let mut b = FlatBook { terms: Vec::with_capacity(n * 27 / 10), starts: Vec::with_capacity(n + 1) };
    b.starts.push(0);
    for _ in 0..n {
        let pair = rng.gen_bool(0.7);
        let link = !pair && rng.gen_bool(0.01 / 0.3);
        b.terms.extend(account(rng, pair, link));
        b.starts.push(b.terms.len() as u32);
    }
    b
}

/// Peak resident memory of this process (VmHWM), in MB.
fn peak_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resident memory of this process now (VmRSS), in MB.
fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn line(what: &str, h: &Histogram<u64>) {
    println!(
        "  {what:<44} p50 {:>9.2} us  p99 {:>9.2} us  max {:>9.2} us  (n = {})",
        us(h, 0.5),
        us(h, 0.99),
        h.max() as f64 / 1000.0,
        h.len()
    );
}

fn loaded_engine(book: &FlatBook, routing: Routing, windows: WindowPolicy, threads: usize) -> SoftwareEngine {
    loaded_engine_in(book, &(0..book.len() as u32).collect::<Vec<_>>(), routing, windows, threads)
}

/// The book loaded with account `order[k]` in slot `k`.
fn loaded_engine_in(
    book: &FlatBook,
    order: &[u32],
    routing: Routing,
    windows: WindowPolicy,
    threads: usize,
) -> SoftwareEngine {
    let mut e = SoftwareEngine::new(book.len(), ASSETS)
        .with_routing(routing)
        .with_window_policy(windows)
        .with_threads(threads);
    e.batch_tick(&BASE.map(quote)).expect("price vector");
    e.load(order.iter().enumerate().map(|(s, &i)| (s as u32, book.get(i as usize)))).expect("valid book");
    e.loaded();
    e
}

/// The slots' accounts with the multi-asset accounts first and the pairs after, each in book
/// order: the layout in which a full scan can leave whole blocks to the pair index.
fn delta_accounts_first(book: &FlatBook) -> Vec<u32> {
    let n = book.len() as u32;
    let multi = (0..n).filter(|&i| book.get(i as usize).len() != 2);
    multi.chain((0..n).filter(|&i| book.get(i as usize).len() == 2)).collect()
}

/// The machine's own floor for the ticks' tails: the same fixed piece of work (about 60 us of
/// arithmetic, no memory), timed `n` times on this thread. Its p50 is the work; its p99 and
/// max are what the VM's stolen time and interrupts add to any task of that length here.
fn floor(n: usize) -> Histogram<u64> {
    let work = |k: u64| {
        let mut x = std::hint::black_box(k);
        for i in 0..400_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x)
    };
    let mut h = hist();
    for k in 0..n as u64 {
        let t = Instant::now();
        work(k);
        h.record(t.elapsed().as_nanos() as u64).expect("in range");
    }
    h
}

/// `ticks` ticks of `asset` as a random walk of moves up to 0.05 %, timed one by one.
fn ticks(e: &mut SoftwareEngine, asset: u16, ticks: usize, rng: &mut ChaCha8Rng) -> Histogram<u64> {
    let mut h = hist();
    let base = BASE[asset as usize] as f64;
    let mut p = base;
    for _ in 0..ticks {
        p = (p * (1.0 + rng.gen_range(-0.0005..0.0005))).clamp(base * 0.9, base * 1.1);
        let q = quote(p as u32);
        let t = Instant::now();
        e.tick(asset, q).expect("tick");
        h.record(t.elapsed().as_nanos() as u64).expect("in range");
    }
    // Back to the start, untimed, so the next routing starts from the same book.
    e.tick(asset, quote(BASE[asset as usize])).expect("tick");
    h
}

/// `n` removes and upserts of random slots with fresh terms of their kind, timed one by one.
fn deltas(eng: &mut SoftwareEngine, book: &FlatBook, n: usize, seed: u64, what: &str) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut up_pair, mut rm_pair, mut up_multi, mut rm_multi) = (hist(), hist(), hist(), hist());
    for _ in 0..n {
        let s = rng.gen_range(0..book.len());
        let pair = book.get(s).len() == 2;
        let link = book.get(s).len() == 5;
        let fresh = account(&mut rng, pair, link);
        let t = Instant::now();
        eng.remove(s as u32).expect("remove");
        let rm = t.elapsed();
        let t = Instant::now();
        eng.upsert(s as u32, &fresh).expect("upsert");
        let up = t.elapsed();
        let (u, r) = if pair { (&mut up_pair, &mut rm_pair) } else { (&mut up_multi, &mut rm_multi) };
        u.record(up.as_nanos() as u64).expect("in range");
        r.record(rm.as_nanos() as u64).expect("in range");
    }
    println!("account deltas ({n} remove + upsert of random slots{what}):");
    line("upsert, pair account", &up_pair);
    line("remove, pair account", &rm_pair);
    line("upsert, multi-asset account", &up_multi);
    line("remove, multi-asset account", &rm_multi);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let n: usize = args
        .iter()
        .position(|a| a == "--accounts")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 20_000 } else { 1_000_000 });
    let n_ticks = if smoke { 50 } else { 500 };
    let n_deltas = if smoke { 2_000 } else { 100_000 };
    let mut rng = ChaCha8Rng::seed_from_u64(12);

    let t = Instant::now();
    let book = book(n, &mut rng);
    let book_mb = peak_mb();
    println!(
        "lending book: {n} accounts (70 % ETH/USDC pairs, 30 % ETH+BTC vs USDC+USDT, 1 % with LINK), \
         generated in {:.1} s; VmHWM with the book alone {book_mb:.0} MB",
        t.elapsed().as_secs_f64()
    );

    // Bulk load, then the same accounts by upserts into another engine (dropped after).
    let t = Instant::now();
    let mut eng = SoftwareEngine::new(n, ASSETS);
    eng.batch_tick(&BASE.map(quote)).expect("price vector");
    eng.load(book.iter().enumerate().map(|(s, t)| (s as u32, t))).expect("valid book");
    let load = t.elapsed();
    let load_only_mb = peak_mb();
    let t = Instant::now();
    eng.loaded();
    let pack = t.elapsed();
    let load_mb = peak_mb();
    let stats = eng.stats();
    println!(
        "bulk load (load): {:.3} s, then loaded() {:.3} s; pair accounts {}, scan bytes {:.0} MB; \
         VmHWM {load_only_mb:.0} MB after load(), {load_mb:.0} MB after loaded() (+{:.0} MB over the \
         book: {:.0} B/account); resident now {:.0} MB",
        load.as_secs_f64(),
        pack.as_secs_f64(),
        stats.pair_accounts,
        stats.scan_bytes as f64 / 1e6,
        load_mb - book_mb,
        (load_mb - book_mb) * 1048576.0 / n as f64,
        rss_mb()
    );
    // The load by upserts holds a second engine: compared at up to 2 M accounts only, so the
    // peak memory at 10 M is one engine's.
    if n <= 2_000_000 {
        let t = Instant::now();
        let mut one = SoftwareEngine::new(n, ASSETS);
        one.batch_tick(&BASE.map(quote)).expect("price vector");
        for (s, terms) in book.iter().enumerate() {
            one.upsert(s as u32, terms).expect("valid account");
        }
        one.loaded();
        assert_eq!(one.breach(), eng.breach(), "load and upserts disagree");
        println!("load by upserts, one by one: {:.3} s", t.elapsed().as_secs_f64());
    }

    // Upsert and remove, pair and multi-asset accounts apart; then the same deltas on an
    // engine with every asset on lists (no edge B-trees), which shows what the edges cost.
    let seed = rng.r#gen::<u64>();
    deltas(&mut eng, &book, n_deltas, seed, "");
    drop(eng);
    if std::env::var_os("LIQSCAN_BENCH_LISTS_DELTAS").is_some() {
        let mut eng = loaded_engine(&book, Routing::Deltas, WindowPolicy::Lists, 1);
        deltas(&mut eng, &book, n_deltas, seed, ", lists only");
    }
    if args.iter().any(|a| a == "--deltas-only") {
        println!("VmHWM at the end: {:.0} MB", peak_mb());
        return;
    }

    // Full scan.
    let mut eng = loaded_engine(&book, Routing::FullScan, WindowPolicy::Measured, 1);
    let mut best = Duration::MAX;
    let r0 = eng.stats().recomputed;
    let reps = if smoke { 3 } else { 10 };
    for i in 0..reps {
        let v: Vec<PriceEntry> = BASE.iter().map(|&p| quote(p + i % 2)).collect();
        let t = Instant::now();
        eng.batch_tick(&v).expect("batch");
        best = best.min(t.elapsed());
    }
    println!(
        "full scan (batch_tick): best {:.3} ms, {:.2} GB/s of scan bytes",
        best.as_secs_f64() * 1e3,
        eng.stats().scan_bytes as f64 / best.as_secs_f64() / 1e9
    );
    println!(
        "  (each batch moves every price by one quantum; {:.1} delta accounts recomputed a batch)",
        (eng.stats().recomputed - r0) as f64 / reps as f64
    );

    drop(eng);

    // Ticks by each routing (one engine at a time).
    println!("ticks ({n_ticks} each, random walk of moves up to 0.05 %):");
    line("machine floor: fixed work, same thread", &floor(10 * n_ticks));
    // Then the ticks a full scan serves (deferred ones) split over two cores; last, the same
    // book with the multi-asset accounts in the first slots (whole blocks of pairs).
    let in_book = (0..n as u32).collect::<Vec<_>>();
    let grouped = delta_accounts_first(&book);
    for (name, routing, windows, threads, order) in [
        ("deltas", Routing::Deltas, WindowPolicy::Measured, 1, &in_book),
        ("deltas, edges only", Routing::Deltas, WindowPolicy::Edges, 1, &in_book),
        ("deltas, lists only", Routing::Deltas, WindowPolicy::Lists, 1, &in_book),
        ("full", Routing::FullScan, WindowPolicy::Measured, 1, &in_book),
        ("measured", Routing::Measured, WindowPolicy::Measured, 1, &in_book),
        ("deltas, two scan threads", Routing::Deltas, WindowPolicy::Measured, 2, &in_book),
        ("deltas, delta accounts first", Routing::Deltas, WindowPolicy::Measured, 1, &grouped),
        ("full, delta accounts first", Routing::FullScan, WindowPolicy::Measured, 1, &grouped),
        ("measured, delta accounts first", Routing::Measured, WindowPolicy::Measured, 1, &grouped),
    ] {
        let mut e = loaded_engine_in(&book, order, routing, windows, threads);
        // Every row walks the same prices, so that the rows differ by routing and layout only.
        let mut walk = rng.clone();
        for (asset, what) in [(LINK, "LINK (1 % of accounts)"), (ETH, "ETH (every account)")] {
            let r0 = e.stats().recomputed;
            let h = ticks(&mut e, asset, n_ticks, &mut walk);
            line(&format!("{what}, {name}"), &h);
            let r = (e.stats().recomputed - r0) as f64 / n_ticks as f64;
            println!("  {:<44} {r:.1} delta accounts recomputed a tick", "");
        }
    }
    // A p99 of 500 ticks is their fifth slowest: ten times as many ticks of the all-held asset
    // by the default routing, so that its tail is not one walk's few large moves.
    // By full scan too, over the same walk, so that the default's tail is judged against the
    // other way's tail of as many ticks (issue 12: within 10 % of the better of the two).
    for (layout, order) in [("", &in_book), (", delta accounts first", &grouped)] {
        for (name, routing) in [("deltas", Routing::Deltas), ("full", Routing::FullScan)] {
            if smoke {
                break;
            }
            let mut e = loaded_engine_in(&book, order, routing, WindowPolicy::Measured, 1);
            let r0 = e.stats().routed_ticks;
            let h = ticks(&mut e, ETH, 10 * n_ticks, &mut rng.clone());
            line(&format!("ETH (every account), {name}, {} ticks{layout}", 10 * n_ticks), &h);
            line("machine floor: fixed work, same thread", &floor(10 * n_ticks));
            println!(
                "  {:<44} {} served by a full scan, {} accounts in the backlog at the end",
                "",
                e.stats().routed_ticks - r0,
                e.stats().backlog
            );
        }
    }
    println!("VmHWM at the end: {:.0} MB", peak_mb());
}
