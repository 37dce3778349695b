//! Software engine benchmark: every figure in one run, as ratios.
//!
//! ```text
//!   cargo bench -p liqscan-host --bench engine            # full size (1,000,000 accounts)
//!   cargo bench -p liqscan-host --bench engine -- --smoke # seconds, small books
//! ```
//!
//! Measures, side by side: a plain sequential-read loop (this core's read bandwidth), the
//! full scan (`batch_tick`) of 1,000,000 accounts x 4 assets (book A) with every kernel and
//! with two threads, the reference's scan of the same book; the full scan of a mixed book
//! (book B: 70% one collateral / one debt, 30% four assets, 64 assets) in every layout; and
//! single-asset ticks on book B with per-tick p50/p99 from hdrhistogram, by deltas and as
//! routed (full scan for widely held assets). The
//! full-scan rows are taken twice: with the book resident in the last-level cache (it is
//! 16 MB here) against a read loop over a buffer of the same size, and after evicting the
//! caches against a read loop over a 512 MB buffer (DRAM).

use std::hint::black_box;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::{Kernel, Layout, Routing, ScanEngine, SoftwareEngine};
use liqscan_host::{bitmap, reference};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Sizes {
    accounts: usize,
    reps: usize,
    ticks: usize,
    dram_bytes: usize,
}

fn quote(p: u32) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: p, liability: p + p / 1000 },
        stressed: QuotedPrice { asset: p - p / 10, liability: p + p / 10 },
    }
}

/// Sums `buf` as fast as the core reads it; several independent lanes so the adds never limit.
fn read_loop(buf: &[u64]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: checked just above.
        return unsafe { read_loop_avx2(buf) };
    }
    read_loop_plain(buf)
}

#[inline(always)]
fn read_loop_plain(buf: &[u64]) -> u64 {
    let mut acc = [0u64; 16];
    for ch in buf.chunks_exact(16) {
        for i in 0..16 {
            acc[i] = acc[i].wrapping_add(ch[i]);
        }
    }
    acc.iter().fold(0, |a, &b| a.wrapping_add(b))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn read_loop_avx2(buf: &[u64]) -> u64 {
    read_loop_plain(buf)
}

/// A buffer of `n` ones on transparent huge pages where the kernel grants them (as the
/// engine's compacted arenas are), for the read loop's figure on the same kind of pages.
fn huge_buffer(n: usize) -> Vec<u64> {
    let mut v: Vec<u64> = Vec::with_capacity(n);
    liqscan_host::engine::advise_huge(&v);
    v.resize(n, 1);
    v
}

fn gbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e9
}

/// Fastest time of `f` over `reps` runs, each after `before` (not timed). The machine is
/// shared (other engineers compile on both vCPUs), so the fastest run is the least disturbed
/// one; medians moved by 2x between identical configurations in the same run.
fn time(reps: usize, mut before: impl FnMut(), mut f: impl FnMut()) -> Duration {
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        before();
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    v.into_iter().min().unwrap_or_default()
}

/// Book A: every account holds 4 assets, two collateral and two debt, health near zero.
fn book_four(n: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<Coeff>> {
    (0..n)
        .map(|_| {
            let coll: i32 = rng.gen_range(1_000..1_000_000);
            let lev = rng.gen_range(0.3..1.02);
            let debt = (coll as f64 * lev) as i32;
            let split = rng.gen_range(0.0..1.0);
            let c0 = (coll as f64 * split) as i32;
            let d0 = (debt as f64 * rng.gen_range(0.0..1.0)) as i32;
            vec![
                Coeff { asset: 0, coeff: c0 },
                Coeff { asset: 1, coeff: coll - c0 },
                Coeff { asset: 2, coeff: -d0 },
                Coeff { asset: 3, coeff: -(debt - d0) },
            ]
        })
        .collect()
}

/// Book B: 70% one collateral / one debt, 30% four assets, 64 assets with Zipf popularity.
fn book_mixed(n: usize, assets: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<Coeff>> {
    let w: Vec<f64> = (0..assets).map(|i| 1.0 / (i + 1) as f64).collect();
    let total: f64 = w.iter().sum();
    let pick = |rng: &mut ChaCha8Rng, not: &[Coeff]| -> u16 {
        loop {
            let mut x = rng.gen_range(0.0..total);
            let mut a = 0;
            while x >= w[a] && a + 1 < assets {
                x -= w[a];
                a += 1;
            }
            if not.iter().all(|t| t.asset != a as u16) {
                return a as u16;
            }
        }
    };
    (0..n)
        .map(|_| {
            let mut t = Vec::with_capacity(4);
            let k = if rng.gen_bool(0.7) { 2 } else { 4 };
            let coll: i32 = rng.gen_range(1_000..1_000_000);
            let debt = (coll as f64 * rng.gen_range(0.3..1.02)) as i32;
            for i in 0..k {
                let a = pick(rng, &t);
                let half = i < k / 2;
                let v = if half { coll / (k / 2) } else { -(debt / (k / 2)) };
                t.push(Coeff { asset: a, coeff: v });
            }
            t
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke") || !args.iter().any(|a| a == "--bench");
    let sz = if smoke {
        Sizes { accounts: 20_000, reps: 5, ticks: 200, dram_bytes: 64 << 20 }
    } else {
        Sizes { accounts: 1_000_000, reps: 31, ticks: 20_000, dram_bytes: 512 << 20 }
    };
    if let Some(core) = core_affinity::get_core_ids().and_then(|c| c.last().copied()) {
        core_affinity::set_for_current(core);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    println!(
        "liqscan-host engine bench ({}), kernel {:?}",
        if smoke { "smoke" } else { "full" },
        Kernel::detect()
    );

    // ---- Full scan, book A ----
    let n = sz.accounts;
    let book = book_four(n, &mut rng);
    let base = 1_000_000u32;
    let vectors: Vec<Vec<PriceEntry>> = (0..8)
        .map(|_| (0..4).map(|_| quote(rng.gen_range(base - base / 20..base + base / 20))).collect())
        .collect();
    if args.iter().any(|a| a == "--tick") {
        // Book B only (the same book: the generator has consumed book A's draws).
        drop(book);
        return tick_only(&sz, base, &mut rng);
    }
    if args.iter().any(|a| a == "--scan") {
        return scan_only(&sz, &book, &vectors);
    }
    let mut setups: Vec<(Kernel, usize)> = Kernel::available().into_iter().map(|k| (k, 1)).collect();
    setups.insert(1, (Kernel::detect(), 2));
    let mut engines: Vec<SoftwareEngine> = setups
        .iter()
        .map(|&(k, threads)| {
            let mut e = SoftwareEngine::with_kernel(n, 4, k).with_threads(threads);
            for (s, t) in book.iter().enumerate() {
                e.upsert(s as u32, t).unwrap();
            }
            // As `liqscan` loads a book: upserts, then `loaded()` (which compacts).
            e.loaded();
            e
        })
        .collect();
    let bytes = engines[0].stats().scan_bytes;
    let same: Vec<u64> = vec![1; bytes / 8];
    let dram: Vec<u64> = vec![1; sz.dram_bytes / 8];
    let evict = |d: &[u64]| {
        black_box(read_loop(&d[d.len() / 2..]));
    };
    // Check exactness once, then time.
    for e in &mut engines {
        e.batch_tick(&vectors[0]).unwrap();
        let want = reference::scan(&book, &vectors[0]);
        assert!(e.breach() == want.breach && e.at_risk() == want.at_risk, "scan differs from the reference");
    }
    println!(
        "book A: {n} accounts x 4 assets, scan reads {:.1} MB; breached {} at-risk {}",
        bytes as f64 / 1e6,
        bitmap::count(engines[0].breach()),
        bitmap::count(engines[0].at_risk())
    );

    let mut i = 0;
    let mut rows = Vec::new();
    let t_read_warm = time(
        sz.reps,
        || {},
        || {
            black_box(read_loop(black_box(&same)));
        },
    );
    let t_read_dram = time(
        sz.reps,
        || {},
        || {
            black_box(read_loop(black_box(&dram)));
        },
    );
    let mut t_scan = Vec::new();
    for e in &mut engines {
        let warm = time(
            sz.reps,
            || {},
            || {
                i += 1;
                e.batch_tick(&vectors[i % vectors.len()]).unwrap();
            },
        );
        let cold = time(
            sz.reps,
            || evict(&dram),
            || {
                i += 1;
                e.batch_tick(&vectors[i % vectors.len()]).unwrap();
            },
        );
        t_scan.push((e.kernel(), warm, cold));
    }
    let t_scan: Vec<_> =
        t_scan.into_iter().zip(&setups).map(|((k, w, c), (_, threads))| (k, *threads, w, c)).collect();
    let reps_ref = if smoke { 3 } else { 5 };
    let t_ref = time(reps_ref, || {}, || drop(black_box(reference::scan(&book, &vectors[1]))));
    println!();
    println!("{:<44} {:>12} {:>10} {:>12}", "full scan, book A", "time", "GB/s", "vs read loop");
    rows.push(("sequential read, same size as scan (warm)".to_string(), t_read_warm, bytes, t_read_warm));
    rows.push(("sequential read, 512 MB (DRAM)".to_string(), t_read_dram, sz.dram_bytes, t_read_dram));
    for (k, threads, warm, cold) in &t_scan {
        let th = if *threads == 2 { " x2 threads" } else { "" };
        rows.push((format!("batch_tick {k:?}{th}, cache-resident"), *warm, bytes, t_read_warm));
        rows.push((format!("batch_tick {k:?}{th}, caches evicted"), *cold, bytes, t_read_dram));
    }
    rows.push(("reference::scan".to_string(), t_ref, bytes, t_read_warm));
    let read_gbps = |t: Duration, b| gbps(b, t);
    for (name, t, b, against) in &rows {
        let against_bytes = if *against == t_read_dram { sz.dram_bytes } else { bytes };
        println!(
            "{:<44} {:>10.3}ms {:>10.2} {:>11.0}%",
            name,
            t.as_secs_f64() * 1e3,
            gbps(*b, *t),
            100.0 * gbps(*b, *t) / read_gbps(*against, against_bytes)
        );
    }
    for e in &engines {
        println!("{:?}: {} exact rechecks over all its scans", e.kernel(), e.stats().rechecks);
    }
    for (k, threads, warm, cold) in &t_scan {
        println!(
            "speed-up of {k:?} x{threads} over the reference: {:.1}x (cache-resident), {:.1}x (evicted)",
            t_ref.as_secs_f64() / warm.as_secs_f64(),
            t_ref.as_secs_f64() / cold.as_secs_f64()
        );
    }
    drop(engines);

    // ---- Incremental ticks, book B ----
    let assets = 64;
    let book = book_mixed(n, assets, &mut rng);
    let mut prices: Vec<PriceEntry> = (0..assets).map(|_| quote(base)).collect();
    /// Book B loaded by upserts, then `loaded()` (which compacts) when `loaded` says so.
    fn load_b(
        book: &[Vec<Coeff>],
        prices: &[PriceEntry],
        layout: Layout,
        kernel: Kernel,
        loaded: bool,
    ) -> SoftwareEngine {
        let mut e = SoftwareEngine::with_kernel(book.len(), prices.len(), kernel).with_layout(layout);
        e.batch_tick(prices).unwrap();
        for (s, t) in book.iter().enumerate() {
            e.upsert(s as u32, t).unwrap();
        }
        if loaded {
            e.loaded();
        }
        e
    }
    // The full scan of book B in every layout, side by side (checked against the reference).
    let want_b = reference::scan(&book, &prices);
    let mut full_b = Vec::new();
    for (layout, kernel) in [
        (Layout::Columns, Kernel::Avx2Fma),
        (Layout::Columns, Kernel::detect()),
        (Layout::Rows, Kernel::detect()),
        (Layout::Auto, Kernel::Avx2Fma),
        (Layout::Auto, Kernel::detect()),
        (Layout::Auto, Kernel::detect()),
    ] {
        // The last: as `liqscan` loads a book (the pipeline's and the journal's loaders call
        // `loaded()`); the others as the upserts left them.
        let compacted = full_b.len() == 5;
        let mut e = load_b(&book, &prices, layout, kernel, compacted);
        e.batch_tick(&prices).unwrap();
        assert!(e.breach() == want_b.breach && e.at_risk() == want_b.at_risk, "book B scan differs");
        let st = e.stats();
        let t = time(sz.reps, || {}, || e.batch_tick(&prices).unwrap());
        let c = if compacted { " after loaded()" } else { "" };
        full_b.push((format!("batch_tick {layout:?} {:?}{c}", e.kernel()), st, t));
        if compacted {
            // The same engine with the scan split over two threads (helper on the other core).
            let mut e = e.with_threads(2);
            e.batch_tick(&prices).unwrap();
            assert!(e.breach() == want_b.breach && e.at_risk() == want_b.at_risk, "book B scan differs");
            let t = time(sz.reps, || {}, || e.batch_tick(&prices).unwrap());
            full_b.push((format!("batch_tick {layout:?} {:?}{c} x2 threads", e.kernel()), st, t));
        }
    }
    let mut e = load_b(&book, &prices, Layout::Auto, Kernel::detect(), true).with_routing(Routing::Measured);
    let mut exposure = vec![0usize; assets];
    for t in &book {
        for c in t {
            exposure[c.asset as usize] += 1;
        }
    }
    let moved = (0..assets).min_by_key(|&a| exposure[a].abs_diff(n / 100)).unwrap() as u16;
    let pairs = e.stats().pair_accounts;
    println!();
    println!(
        "book B: {n} accounts ({pairs} one-collateral/one-debt), {assets} assets, scan reads {:.1} MB",
        e.stats().scan_bytes as f64 / 1e6
    );
    let t_full_b = time(sz.reps, || {}, || e.batch_tick(&prices).unwrap());
    let t_ref_b = time(reps_ref, || {}, || drop(black_box(reference::scan(&book, &prices))));
    println!(
        "{:<56} {:>12} {:>9} {:>11} {:>14}",
        "full scan, book B", "time", "MB read", "row blocks", "vs reference"
    );
    for (name, st, t) in &full_b {
        println!(
            "{:<56} {:>10.3}ms {:>9.1} {:>11} {:>13.1}x",
            name,
            t.as_secs_f64() * 1e3,
            st.scan_bytes as f64 / 1e6,
            format!("{}/{}", st.row_blocks, st.blocks),
            t_ref_b.as_secs_f64() / t.as_secs_f64()
        );
    }
    let mut words = Vec::with_capacity(n / 64 + 1);
    let mut tick_run = |e: &mut SoftwareEngine, asset: u16, ticks: usize, rng: &mut ChaCha8Rng| {
        let mut h = Histogram::<u64>::new(3).unwrap();
        let mut p = base as f64;
        let mut flips = 0usize;
        e.batch_tick(&prices).unwrap();
        for _ in 0..ticks {
            // A random walk of 0.2% steps around the base price, so accounts cross both ways.
            p = (p * (1.0 + rng.gen_range(-0.002..0.002))).clamp(base as f64 * 0.9, base as f64 * 1.1);
            let q = quote(p as u32);
            let t = Instant::now();
            e.tick(asset, q).unwrap();
            h.record(t.elapsed().as_nanos() as u64).unwrap();
            words.clear();
            e.changed_words(&mut words);
            flips += words.len();
        }
        prices[asset as usize] = *e.prices().get(asset as usize).unwrap();
        let want = reference::scan(&book, e.prices());
        assert!(e.breach() == want.breach && e.at_risk() == want.at_risk, "ticks differ from the reference");
        (h, flips)
    };
    let (h, flips) = tick_run(&mut e, moved, sz.ticks, &mut rng);
    let busiest = (0..assets).max_by_key(|&a| exposure[a]).unwrap() as u16;
    let (hb, _) = tick_run(&mut e, busiest, sz.ticks / 10, &mut rng);
    // Routing: ticks by deltas against ticks by full scan, for assets of falling exposure.
    let mut by_exposure: Vec<u16> = (0..assets as u16).collect();
    by_exposure.sort_by_key(|&a| std::cmp::Reverse(e.delta_exposure(a)));
    let mut e_delta =
        load_b(&book, e.prices(), Layout::Auto, Kernel::detect(), true).with_routing(Routing::Deltas);
    let mut e_scan =
        load_b(&book, e.prices(), Layout::Auto, Kernel::detect(), true).with_routing(Routing::FullScan);
    let mut route_rows = Vec::new();
    for &a in by_exposure.iter().take(12).step_by(2) {
        let (hd, _) = tick_run(&mut e_delta, a, sz.ticks / 20, &mut rng);
        let (hs, _) = tick_run(&mut e_scan, a, sz.ticks / 50, &mut rng);
        let routed_before = e.stats().routed_ticks;
        let (hr, _) = tick_run(&mut e, a, sz.ticks / 20, &mut rng);
        let routed = e.stats().routed_ticks - routed_before;
        let q = |h: &Histogram<u64>| h.value_at_quantile(0.5);
        route_rows.push((a, e.delta_exposure(a), q(&hd), q(&hs), q(&hr), routed, e.routing_costs()));
    }
    drop((e_delta, e_scan));
    println!(
        "{:<44} {:>10.3}ms  ({:.0}x the reference's {:.3}ms)",
        "batch_tick, book B",
        t_full_b.as_secs_f64() * 1e3,
        t_ref_b.as_secs_f64() / t_full_b.as_secs_f64(),
        t_ref_b.as_secs_f64() * 1e3
    );
    let full_ns = t_full_b.as_nanos() as f64;
    let ref_ns = t_ref_b.as_nanos() as f64;
    for (name, h, exp, delta) in [
        ("tick, asset held by ~1%", &h, exposure[moved as usize], e.delta_exposure(moved)),
        ("tick, most-held asset", &hb, exposure[busiest as usize], e.delta_exposure(busiest)),
    ] {
        let (p50, p99) = (h.value_at_quantile(0.5) as f64, h.value_at_quantile(0.99) as f64);
        println!(
            "{:<28} exposed {:>7} ({:>6} by delta) p50 {:>9.1}us p99 {:>9.1}us  full scan / p50 {:>6.0}x  / p99 {:>6.0}x  reference / p50 {:>7.0}x",
            name,
            exp,
            delta,
            p50 / 1e3,
            p99 / 1e3,
            full_ns / p50,
            full_ns / p99,
            ref_ns / p50
        );
    }
    println!("ticks on the ~1% asset: {} ({} changed words drained)", sz.ticks, flips);
    println!();
    println!("routing (book B): tick p50 by deltas, by full scan, and as Routing::Measured routes it");
    for (a, delta, pd, ps, pr, routed, (cs, cd)) in route_rows {
        println!(
            "  asset {a:>2}: {delta:>7} delta accounts ({:>5.1}%)  deltas p50 {:>8.1}us  full scan p50 {:>8.1}us  measured p50 {:>8.1}us ({routed:>4}/{} routed; costs {cs:.1} cyc/slot, {cd:.1} cyc/delta)",
            100.0 * delta as f64 / n as f64,
            pd as f64 / 1e3,
            ps as f64 / 1e3,
            pr as f64 / 1e3,
            sz.ticks / 20
        );
    }
}

/// `--scan`: book A's full scan with every kernel against the read loops, alternating in
/// rounds (DRAM loop, each kernel evicted, same-size loop, each kernel warm), each round's
/// ratios; seconds instead of minutes, for iterating on a kernel.
fn scan_only(sz: &Sizes, book: &[Vec<Coeff>], vectors: &[Vec<PriceEntry>]) {
    let n = book.len();
    // `--kernel=Name` keeps one kernel (for profiling it alone); `--threads=2` scans with two.
    let only = std::env::args().find_map(|a| a.strip_prefix("--kernel=").map(str::to_string));
    let threads = if std::env::args().any(|a| a == "--threads=2") { 2 } else { 1 };
    let mut engines: Vec<SoftwareEngine> = Kernel::available()
        .into_iter()
        .filter(|k| only.as_ref().is_none_or(|o| *o == format!("{k:?}")))
        .map(|k| {
            let mut e = SoftwareEngine::with_kernel(n, 4, k).with_threads(threads);
            for (s, t) in book.iter().enumerate() {
                e.upsert(s as u32, t).unwrap();
            }
            e.loaded();
            e
        })
        .collect();
    let want = reference::scan(book, &vectors[0]);
    for e in &mut engines {
        e.batch_tick(&vectors[0]).unwrap();
        assert!(
            e.breach() == want.breach && e.at_risk() == want.at_risk,
            "{:?} differs from the reference",
            e.kernel()
        );
    }
    let bytes = engines[0].stats().scan_bytes;
    println!(
        "book A: {n} accounts, scan reads {:.1} MB; breached {} at-risk {}",
        bytes as f64 / 1e6,
        bitmap::count(&want.breach),
        bitmap::count(&want.at_risk)
    );
    let same: Vec<u64> = vec![1; bytes / 8];
    let dram: Vec<u64> = vec![1; sz.dram_bytes / 8];
    let dram_huge = huge_buffer(sz.dram_bytes / 8);
    let evict = || {
        black_box(read_loop(&dram[dram.len() / 2..]));
    };
    let mut i = 0;
    for round in 0..5 {
        let loop_dram = time(
            sz.reps,
            || {},
            || {
                black_box(read_loop(black_box(&dram)));
            },
        );
        let loop_huge = time(
            sz.reps,
            || {},
            || {
                black_box(read_loop(black_box(&dram_huge)));
            },
        );
        let cold: Vec<Duration> = engines
            .iter_mut()
            .map(|e| {
                time(sz.reps, evict, || {
                    i += 1;
                    e.batch_tick(&vectors[i % vectors.len()]).unwrap();
                })
            })
            .collect();
        let loop_warm = time(
            sz.reps,
            || {},
            || {
                black_box(read_loop(black_box(&same)));
            },
        );
        let warm: Vec<Duration> = engines
            .iter_mut()
            .map(|e| {
                time(
                    sz.reps,
                    || {},
                    || {
                        i += 1;
                        e.batch_tick(&vectors[i % vectors.len()]).unwrap();
                    },
                )
            })
            .collect();
        let (dram_gbps, warm_gbps) = (gbps(sz.dram_bytes, loop_dram), gbps(bytes, loop_warm));
        let huge_gbps = gbps(sz.dram_bytes, loop_huge);
        println!(
            "round {round}: DRAM loop {dram_gbps:.1} GB/s ({huge_gbps:.1} GB/s on huge pages), same-size loop {warm_gbps:.1} GB/s"
        );
        for ((e, c), w) in engines.iter().zip(&cold).zip(&warm) {
            println!(
                "  {:<14} evicted {:.3}ms = {:>3.0}% of DRAM loop ({:>3.0}% of its huge-page run); warm {:.3}ms = {:>3.0}% of same-size loop, {:.1} ns per block",
                format!("{:?}", e.kernel()),
                c.as_secs_f64() * 1e3,
                100.0 * gbps(bytes, *c) / dram_gbps,
                100.0 * gbps(bytes, *c) / huge_gbps,
                w.as_secs_f64() * 1e3,
                100.0 * gbps(bytes, *w) / warm_gbps,
                w.as_nanos() as f64 / n.div_ceil(64) as f64
            );
        }
    }
    for e in &engines {
        let want = reference::scan(book, e.prices());
        assert!(
            e.breach() == want.breach && e.at_risk() == want.at_risk,
            "{:?} differs from the reference",
            e.kernel()
        );
        println!("{:?}: {} exact rechecks over all its scans", e.kernel(), e.stats().rechecks);
    }
}

/// `--tick`: book B's 1 %-asset tick against book B's full scan, alternating in rounds, so
/// the ratio is measured side by side several times in one run (seconds instead of minutes).
fn tick_only(sz: &Sizes, base: u32, rng: &mut ChaCha8Rng) {
    let (n, assets) = (sz.accounts, 64);
    let book = book_mixed(n, assets, rng);
    let mut prices: Vec<PriceEntry> = (0..assets).map(|_| quote(base)).collect();
    let mut e = SoftwareEngine::new(n, assets);
    e.batch_tick(&prices).unwrap();
    for (s, t) in book.iter().enumerate() {
        e.upsert(s as u32, t).unwrap();
    }
    let mut exposure = vec![0usize; assets];
    for t in &book {
        for c in t {
            exposure[c.asset as usize] += 1;
        }
    }
    let moved = (0..assets).min_by_key(|&a| exposure[a].abs_diff(n / 100)).unwrap() as u16;
    println!(
        "book B: {n} accounts, tick asset {moved}: exposed {} ({} by delta)",
        exposure[moved as usize],
        e.delta_exposure(moved)
    );
    let st = e.stats();
    let t0 = time(sz.reps, || {}, || e.batch_tick(&prices).unwrap());
    let c = Instant::now();
    e.loaded();
    let c = c.elapsed();
    let t1 = time(sz.reps, || {}, || e.batch_tick(&prices).unwrap());
    println!(
        "arenas {:.1} MB for {:.1} MB scanned; full scan {:.3}ms as loaded, {:.3}ms after loaded() ({:.1} MB, took {:.1}ms)",
        st.arena_bytes as f64 / 1e6,
        st.scan_bytes as f64 / 1e6,
        t0.as_secs_f64() * 1e3,
        t1.as_secs_f64() * 1e3,
        e.stats().arena_bytes as f64 / 1e6,
        c.as_secs_f64() * 1e3
    );
    let mut words = Vec::with_capacity(n / 64 + 1);
    let mut p = base as f64;
    for round in 0..5 {
        let t_full = time(sz.reps, || {}, || e.batch_tick(&prices).unwrap());
        let mut h = Histogram::<u64>::new(3).unwrap();
        let r0 = e.stats().recomputed;
        let mut first = 0;
        for k in 0..sz.ticks {
            p = (p * (1.0 + rng.gen_range(-0.002..0.002))).clamp(base as f64 * 0.9, base as f64 * 1.1);
            let q = quote(p as u32);
            let t = Instant::now();
            e.tick(moved, q).unwrap();
            let ns = t.elapsed().as_nanos() as u64;
            h.record(ns).unwrap();
            if k == 0 {
                first = ns;
            }
            words.clear();
            e.changed_words(&mut words);
        }
        let recomputed = (e.stats().recomputed - r0) as f64 / sz.ticks as f64;
        prices[moved as usize] = e.prices()[moved as usize];
        let (p50, p99) = (h.value_at_quantile(0.5) as f64, h.value_at_quantile(0.99) as f64);
        let full = t_full.as_nanos() as f64;
        println!(
            "round {round}: full scan {:.3}ms  tick p50 {:.1}us p99 {:.1}us  full scan / p50 {:.0}x  / p99 {:.0}x  ({recomputed:.1} delta accounts recomputed a tick; first tick after the scans {:.0}us)",
            full / 1e6,
            p50 / 1e3,
            p99 / 1e3,
            full / p50,
            full / p99,
            first as f64 / 1e3
        );
    }
    // Ticks rotating over the 8 assets nearest 1 % exposure (windows left by one asset's
    // moves are then shared with the others').
    let mut near: Vec<usize> = (0..assets).collect();
    near.sort_by_key(|&a| exposure[a].abs_diff(n / 100));
    let mut ps: Vec<f64> = vec![base as f64; assets];
    let r0 = e.stats().recomputed;
    let mut h = Histogram::<u64>::new(3).unwrap();
    for k in 0..sz.ticks * 2 {
        let a = near[k % 8];
        ps[a] = (ps[a] * (1.0 + rng.gen_range(-0.002..0.002))).clamp(base as f64 * 0.9, base as f64 * 1.1);
        let t = Instant::now();
        e.tick(a as u16, quote(ps[a] as u32)).unwrap();
        h.record(t.elapsed().as_nanos() as u64).unwrap();
        words.clear();
        e.changed_words(&mut words);
    }
    println!(
        "ticks rotating over 8 assets: p50 {:.1}us p99 {:.1}us ({:.1} delta accounts recomputed a tick)",
        h.value_at_quantile(0.5) as f64 / 1e3,
        h.value_at_quantile(0.99) as f64 / 1e3,
        (e.stats().recomputed - r0) as f64 / (2 * sz.ticks) as f64
    );
    let want = reference::scan(&book, e.prices());
    assert!(e.breach() == want.breach && e.at_risk() == want.at_risk, "ticks differ from the reference");
}
