//! `liqscan bench-link`: the card link and pipeline figures of docs/lab/performance.md ("Card link
//! and pipeline"), every ratio measured in the same run.
//!
//! 1. The machine's floor: a pinned thread reads the clock back to back; the histogram of gaps
//!    is the tail the machine (a VM whose cores are sometimes taken away) adds to anything.
//! 2. Shared-memory link round trip: the host posts a fence, the emulated card (its own pinned,
//!    spinning thread) echoes `FenceDone`.
//! 3. Tick-to-dispatch through the whole pipeline with the software engine on a generated book
//!    (70% two-asset accounts, 30% four-asset), incremental ticks paced at `--load` (default
//!    50%) of the bare engine's capacity (from its mean tick time), ending in orders handed to
//!    an executor by the dispatch thread; against the engine's bare tick time on the same book
//!    and ticks, and the machine's floor on the engine's core, all in the same run.
//! 4. The emulated card with the rust-hdl simulation against the software engine over the Black
//!    Thursday day (example venue and accounts, ETH/USD bars of 2020-03-12; `--hdl-demo`: the
//!    demo crash, hours on the HDL card): same breaches, same final bitmaps; its speed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::dispatch::sizing::{AccountView, Position};
use liqscan_host::dispatch::{Executor, JsonlSink};
use liqscan_host::engine::{ScanEngine, SoftwareEngine, WindowPolicy};
use liqscan_host::feed::replay::Pace;
use liqscan_host::link::{CardLink, LinkMemory, LinkOptions};
use liqscan_host::metrics::{Counters, Published, histogram, percentile_table};
use liqscan_host::pipeline::dispatch::{DispatchOptions, DispatchStage, KeeperBook};
use liqscan_host::pipeline::{self, Backend, FeedMsg, PipelineConfig};
use liqscan_sim::card::{CardThread, Idle, ServeOptions, SoftwareCard};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use liqscan_host::keeper::{Keeper, KeeperConfig, Workload, digest};

/// Arguments of `liqscan bench-link`.
#[derive(clap::Args)]
pub struct Args {
    /// Host (and engine thread) core.
    #[arg(long, default_value_t = 0)]
    pub host_core: usize,
    /// Emulated card (and feed thread) core.
    #[arg(long, default_value_t = 1)]
    pub card_core: usize,
    /// Round trips to measure.
    #[arg(long, default_value_t = 1_000_000)]
    pub round_trips: u64,
    /// Accounts in the pipeline book.
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: usize,
    /// Ticks through the pipeline.
    #[arg(long, default_value_t = 5_000)]
    pub ticks: usize,
    /// Pipeline tick rate per second (0: `--load` times the rate the bare engine sustains,
    /// from its mean tick time).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Leave the dispatch stage out (the sink drops the news): the pipeline up to the hand-off.
    #[arg(long)]
    pub no_dispatch: bool,
    /// Offered load as a fraction of the bare engine's capacity (1 / mean tick time).
    #[arg(long, default_value_t = 0.5)]
    pub load: f64,
    /// Ticks replayed through the HDL card, at most (0: skip).
    #[arg(long, default_value_t = 3_000)]
    pub hdl_ticks: usize,
    /// HDL part: replay the generated demo crash instead of the Black Thursday day (hours on
    /// the HDL card).
    #[arg(long)]
    pub hdl_demo: bool,
    /// HDL part: venue file.
    #[arg(long, default_value = "examples/venue.toml")]
    pub hdl_venue: String,
    /// HDL part: accounts file.
    #[arg(long, default_value = "examples/accounts.csv")]
    pub hdl_accounts: String,
    /// HDL part: ticks file (stablecoin prices).
    #[arg(long, default_value = "examples/usdc.csv")]
    pub hdl_ticks_file: String,
    /// HDL part: ETH bars of the day.
    #[arg(long, default_value = "../shared/data/eth-usd-10m/2020-03-12.json")]
    pub hdl_bars: String,
    /// The engine thread busy-polls while idle (a dedicated core) instead of spinning briefly
    /// and then sleeping between looks (a shared core; see pipeline::IDLE_SPINS).
    #[arg(long)]
    pub spin: bool,
    /// The feed thread spins until each tick's time instead of sleeping until shortly before.
    #[arg(long)]
    pub feed_spin: bool,
    /// Write every paced tick's clock readings (intended, pushed, popped, bitmap, handed off;
    /// ns) to this CSV file.
    #[arg(long)]
    pub trace: Option<std::path::PathBuf>,
    /// Which parts to run: any of floor, link, pipeline, hdl, verilog (comma separated).
    /// `verilog` (the card's generated Verilog under Verilator: its clock rate, a fence's
    /// cycles, the link round trip through it) needs verilator; `hdl` includes the Verilated
    /// card beside the rust-hdl one when `verilog` is also named.
    #[arg(long, default_value = "floor,link,pipeline,hdl")]
    pub parts: String,
    /// Round trips through the Verilated card (part verilog).
    #[arg(long, default_value_t = 20_000)]
    pub verilog_round_trips: u64,
}

/// The paced feed spins for the last this many nanoseconds before a tick's time.
const FEED_SPIN_NS: u64 = 200_000;

fn floor(core: usize, dur: Duration) -> Histogram<u64> {
    pipeline::pin("floor thread", core);
    let mut h = histogram();
    let start = Instant::now();
    let mut last = start.elapsed().as_nanos() as u64;
    while start.elapsed() < dur {
        let now = start.elapsed().as_nanos() as u64;
        h.saturating_record((now - last).max(1));
        last = now;
    }
    h
}

fn book(n: usize, assets: usize, seed: u64) -> Vec<Vec<Coeff>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let k = if rng.gen_bool(0.7) { 2 } else { 4 };
            let mut a: Vec<u16> = Vec::with_capacity(k);
            while a.len() < k {
                let x = rng.gen_range(0..assets as u16);
                if !a.contains(&x) {
                    a.push(x);
                }
            }
            // One debt, the rest collateral; health starts positive at price 1000.
            let coll: i32 = rng.gen_range(1_000..100_000);
            let mut t: Vec<Coeff> =
                a[1..].iter().map(|&asset| Coeff { asset, coeff: coll / (k as i32 - 1) }).collect();
            t.push(Coeff { asset: a[0], coeff: -(coll as f64 * rng.gen_range(0.5..0.95)) as i32 });
            t
        })
        .collect()
}

fn quote(p: u32) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: p, liability: p },
        stressed: QuotedPrice { asset: p * 9 / 10, liability: p * 11 / 10 },
    }
}

/// Runs the benchmark.
pub fn run(a: Args) -> Result<()> {
    let parts: Vec<&str> = a.parts.split(',').collect();
    // Before anything is pinned: a core that is not there is an error, not a silent unpinned run.
    for (flag, core) in [("--host-core", a.host_core), ("--card-core", a.card_core)] {
        pipeline::affinity::check_core(core).with_context(|| flag.to_string())?;
    }
    let cores = core_affinity_count();
    println!("# liqscan bench-link ({} cores visible)\n", cores);
    let mut floor_h = None;
    if parts.contains(&"floor") || parts.contains(&"link") {
        // On its own thread: pinning narrows the affinity mask that later threads inherit.
        let core = a.host_core;
        let f = std::thread::spawn(move || floor(core, Duration::from_secs(3))).join().expect("floor thread");
        println!("## Machine floor: gaps between consecutive clock reads, pinned spinning thread, 3 s\n");
        println!("```\n{}```\n", percentile_table(&[("clock gap", &f)]));
        floor_h = Some(f);
    }
    if parts.contains(&"link") {
        let path = std::path::PathBuf::from(format!("/dev/shm/liqscan-bench-{}", std::process::id()));
        let mem = LinkMemory::shm_create(&path, 4096)?;
        let card = CardThread::spawn(
            mem,
            Box::new(SoftwareCard::new(64, 4)),
            ServeOptions { idle: Idle::Spin, ..Default::default() },
            Some(a.card_core),
        );
        pipeline::pin("host thread", a.host_core);
        let mut link = CardLink::open(LinkMemory::shm_open(&path)?, LinkOptions::default())?;
        let mut h = histogram();
        let t = Instant::now();
        for i in 0..a.round_trips {
            let t0 = Instant::now();
            link.fence(i as u32, |_| Ok(()))?;
            h.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        let secs = t.elapsed().as_secs_f64();
        drop(card);
        let _ = std::fs::remove_file(&path);
        println!(
            "## Shared-memory link round trip: post Fence -> emulated card -> FenceDone seen ({} round trips, {:.0}/s)\n",
            a.round_trips,
            a.round_trips as f64 / secs
        );
        let f = floor_h.as_ref().expect("floor measured");
        println!("```\n{}```\n", percentile_table(&[("round trip", &h), ("machine floor", f)]));
    }
    if parts.contains(&"pipeline") {
        bench_pipeline(&a)?;
    }
    if parts.contains(&"verilog") {
        bench_verilog(&a, floor_h.as_ref())?;
    }
    if parts.contains(&"hdl") && a.hdl_ticks > 0 {
        bench_hdl(&a, parts.contains(&"verilog"))?;
    }
    Ok(())
}

/// The Verilated card: the model's clock rate on its own, the cycles a fence takes from the
/// doorbell's BAR write to its event's head word in host memory, and the shared-memory round
/// trip through it from the unchanged host driver.
fn bench_verilog(a: &Args, floor_h: Option<&Histogram<u64>>) -> Result<()> {
    let path = std::path::PathBuf::from(format!("/dev/shm/liqscan-bench-vl-{}", std::process::id()));
    let mem = LinkMemory::shm_create(&path, 4096)?;
    let mut card = crate::cmd::card::verilated_card(&mem)?;
    // Clock rate: the card idle after reset, nothing but the model's evaluation.
    let (c0, t, s0) = (card.cycles, Instant::now(), pipeline::thread_sched());
    while t.elapsed() < Duration::from_secs(2) {
        for _ in 0..10_000 {
            card.cycle();
        }
    }
    let rate = (card.cycles - c0) as f64 / t.elapsed().as_secs_f64();
    // On a shared machine the thread is off the CPU part of the time: the rate per CPU second too.
    let on_cpu = match (s0, pipeline::thread_sched()) {
        (Some(a), Some(b)) => b.since(&a).run_ns as f64 / 1e9,
        _ => 0.0,
    };
    let cpu_rate = if on_cpu > 0.0 {
        format!("{:.0} cycles per CPU second ({on_cpu:.2} s on a CPU)", (card.cycles - c0) as f64 / on_cpu)
    } else {
        "CPU time not available".to_string()
    };
    // A fence's cycles: rings programmed as the shell does, one entry in the window, doorbell.
    let fence_cycles = card.fence_cycles(&mem, 8).map_err(anyhow::Error::msg)?;
    drop(card);
    let _ = std::fs::remove_file(&path);
    println!("## The Verilated card (the whole card's generated Verilog under Verilator)\n");
    println!(
        "- clock: {rate:.0} cycles/s of wall time, {cpu_rate} (the idle card clocked back to back, 2 s)"
    );
    println!(
        "- a fence, doorbell BAR write to its event's head word in host memory: {fence_cycles:?} cycles \
         (one-cycle DMA memory, no stalls)"
    );
    // Round trips through the shell, host on its own core.
    let mem = LinkMemory::shm_create(&path, 4096)?;
    let card = crate::cmd::card::verilated_card(&mem)?;
    let card = CardThread::spawn_verilated(
        mem,
        card,
        ServeOptions { idle: Idle::Spin, ..Default::default() },
        Some(a.card_core),
    );
    let r = std::thread::scope(|s| {
        s.spawn(|| -> Result<(Histogram<u64>, f64)> {
            pipeline::pin("host thread", a.host_core);
            // Generous: the card's thread shares this machine's cores with everything else.
            let opts = LinkOptions { timeout: Duration::from_secs(5), ..Default::default() };
            let mut link = CardLink::open(LinkMemory::shm_open(&path)?, opts)?;
            let mut h = histogram();
            let t = Instant::now();
            for i in 0..a.verilog_round_trips {
                let t0 = Instant::now();
                link.fence(i as u32, |_| Ok(()))?;
                h.saturating_record(t0.elapsed().as_nanos() as u64);
                if i % 5_000 == 4_999 {
                    eprintln!("verilog round trips: {} of {}", i + 1, a.verilog_round_trips);
                }
            }
            Ok((h, t.elapsed().as_secs_f64()))
        })
        .join()
        .expect("host thread")
    });
    let rep = card.stop();
    let _ = std::fs::remove_file(&path);
    let (h, secs) = r?;
    println!(
        "- shared-memory round trip, post Fence -> shell -> RTL -> FenceDone seen: {} round trips, {:.0}/s; \
         the shell clocked {} cycles in {:.2} s ({:.0} cycles/s)\n",
        a.verilog_round_trips,
        a.verilog_round_trips as f64 / secs,
        rep.cycles,
        rep.sim_seconds,
        rep.cycles as f64 / rep.sim_seconds.max(1e-9)
    );
    let mut rows = vec![("round trip", &h)];
    if let Some(f) = floor_h {
        rows.push(("machine floor", f));
    }
    println!("```\n{}```\n", percentile_table(&rows));
    Ok(())
}

fn core_affinity_count() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn bench_pipeline(a: &Args) -> Result<()> {
    let assets = 64;
    let t = Instant::now();
    let accounts = book(a.accounts, assets, 11);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut prices: Vec<u32> = vec![1000; assets];
    let ticks: Vec<(u16, PriceEntry)> = (0..a.ticks)
        .map(|_| {
            let asset = rng.gen_range(0..assets);
            prices[asset] = (prices[asset] as i64 + rng.gen_range(-30..=25)).clamp(300, 3000) as u32;
            (asset as u16, quote(prices[asset]))
        })
        .collect();
    // Bare engine: the same ticks, timed around the engine call alone.
    let mut e = SoftwareEngine::new(a.accounts, assets);
    e.batch_tick(&vec![quote(1000); assets])?;
    for (s, t) in accounts.iter().enumerate() {
        e.upsert(s as u32, t)?;
    }
    let mut changed = Vec::new();
    e.changed_words(&mut changed);
    println!(
        "## Pipeline, software engine, {} accounts (70% 2-asset, 30% 4-asset), {} incremental ticks\n",
        a.accounts, a.ticks
    );
    println!("book built and loaded in {:.1} s\n", t.elapsed().as_secs_f64());
    let core = a.host_core;
    let ticks2 = ticks.clone();
    let (bare, bare_sum, bare_sched) = std::thread::spawn(move || {
        pipeline::pin("bench thread", core);
        let s0 = pipeline::thread_sched();
        let mut bare = histogram();
        let mut sum = 0u64;
        for &(asset, p) in &ticks2 {
            let t0 = Instant::now();
            e.tick(asset, p).expect("tick");
            changed.clear();
            e.changed_words(&mut changed);
            let dt = t0.elapsed().as_nanos() as u64;
            sum += dt;
            bare.saturating_record(dt);
        }
        let st = e.stats();
        println!(
            "bare engine: {:.1} delta accounts recomputed a tick, {} of {} ticks by full scan, {} assets on edges\n",
            st.recomputed as f64 / ticks2.len().max(1) as f64,
            st.routed_ticks,
            ticks2.len(),
            st.edge_indexed_assets
        );
        (bare, sum, pipeline::thread_sched().zip(s0).map(|(b, a)| b.since(&a)))
    })
    .join()
    .expect("bare engine thread");
    let mean_ns = bare_sum as f64 / ticks.len().max(1) as f64;
    // The same book and ticks with every asset's windows indexed by edge (the engine before the
    // window lists), in the same run: the ratio of the two bare rows is the lists' gain.
    let mut e = SoftwareEngine::new(a.accounts, assets).with_window_policy(WindowPolicy::Edges);
    e.batch_tick(&vec![quote(1000); assets])?;
    for (s, t) in accounts.iter().enumerate() {
        e.upsert(s as u32, t)?;
    }
    let ticks2 = ticks.clone();
    let bare_edges = std::thread::spawn(move || {
        pipeline::pin("bench thread", core);
        let mut h = histogram();
        let mut changed = Vec::new();
        for &(asset, p) in &ticks2 {
            let t0 = Instant::now();
            e.tick(asset, p).expect("tick");
            changed.clear();
            e.changed_words(&mut changed);
            h.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        let st = e.stats();
        println!(
            "bare engine, edges only: {:.1} delta accounts recomputed a tick, {} of {} ticks by full scan\n",
            st.recomputed as f64 / ticks2.len().max(1) as f64,
            st.routed_ticks,
            ticks2.len()
        );
        h
    })
    .join()
    .expect("bare engine thread");
    let rate = if a.rate > 0.0 { a.rate } else { a.load * 1e9 / mean_ns };
    // The machine's floor on the engine's core, in this run, just before the pipeline.
    let core = a.host_core;
    let fl = std::thread::spawn(move || floor(core, Duration::from_secs(3))).join().expect("floor thread");
    // Pipeline: prices and upserts flooded, then the ticks paced at `rate`.
    let mut msgs: Vec<(i64, FeedMsg)> = vec![(0, FeedMsg::Tick { asset: 0, price: quote(1000) })];
    for asset in 1..assets {
        msgs.push((0, FeedMsg::Tick { asset: asset as u16, price: quote(1000) }));
    }
    msgs.extend(accounts.iter().enumerate().map(|(s, t)| (0, FeedMsg::upsert(s as u32, t))));
    // Dispatch sizes the generated accounts as they are: each term a position of that many
    // quanta at weight 1.
    let views = accounts
        .iter()
        .enumerate()
        .map(|(slot, t)| {
            let positions: Vec<Position> = t
                .iter()
                .map(|c| Position {
                    asset: c.asset,
                    amount: c.coeff as i128,
                    asset_weight_ppm: 1_000_000,
                    liability_weight_ppm: 1_000_000,
                })
                .collect();
            Some(AccountView { account: slot as u64, slot: slot as u32, positions: positions.into() })
        })
        .collect();
    drop(accounts);
    let loaded = msgs.len();
    let ticks_msgs: Vec<(i64, FeedMsg)> = ticks
        .iter()
        .enumerate()
        .map(|(i, &(asset, price))| ((i as f64 * 1e9 / rate) as i64, FeedMsg::Tick { asset, price }))
        .collect();
    let counters = Arc::new(Counters::default());
    let published = Arc::new(Published::default());
    let cfg = PipelineConfig { engine_core: Some(a.host_core), spin: a.spin, ..PipelineConfig::default() };
    let clock = pipeline::Clock::default();
    let (tx, rx) = pipeline::feed_queue(4096, counters.clone());
    let (stage, sink) = DispatchStage::start(
        KeeperBook::from_views(views),
        assets,
        Box::new(|| Box::new(JsonlSink::new("discard", std::io::sink())) as Box<dyn Executor>),
        // A queue that holds the load's news (one batch per upsert that breaches or is at
        // risk), so no carry builds up behind a dispatcher busy pre-building orders.
        DispatchOptions { core: Some(a.card_core), queue: a.accounts + 1024, ..Default::default() },
        clock,
    );
    let be: Backend = Box::new(SoftwareEngine::new(a.accounts, assets));
    let sink: Box<dyn pipeline::BreachSink> =
        if a.no_dispatch { Box::new(|_: u64, _: &[u32], _: &[u32], _: &[u32]| {}) } else { Box::new(sink) };
    let h = pipeline::spawn_traced(be, rx, sink, cfg, clock, counters.clone(), published, assets + a.ticks);
    pipeline::pin("feed thread", a.card_core);
    liqscan_host::feed::replay::replay(msgs.iter().copied(), Pace::Flood, &tx, &clock, 0);
    // Wait for the load to drain before pacing (so the ticks' latency is not the load's).
    while counters.deltas.load(std::sync::atomic::Ordering::Relaxed) + (assets as u64) < loaded as u64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    while counters.ticks.load(std::sync::atomic::Ordering::Relaxed) < assets as u64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    // And for dispatch to take in the load's news (at-risk accounts get pre-built orders).
    while stage.pending() > 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(msgs);
    // Paced here rather than by feed::replay, to record when each tick was really pushed.
    let mut pushed = Vec::with_capacity(ticks_msgs.len());
    let tasks0 = pipeline::affinity::tasks();
    let wall0 = Instant::now();
    let f0 = pipeline::thread_sched();
    let start = clock.now() + 1_000_000;
    for (i, &(ts, msg)) in ticks_msgs.iter().enumerate() {
        let due = start + ts as u64;
        // Sleep until shortly before the tick's time, then spin: a pacer spinning for
        // milliseconds takes a core the machine's other work then crowds onto the engine's.
        // A late wake-up is counted: latency runs from `due`.
        let now = clock.now();
        if !a.feed_spin && due > now + FEED_SPIN_NS {
            std::thread::sleep(Duration::from_nanos(due - now - FEED_SPIN_NS));
        }
        while clock.now() < due {
            std::hint::spin_loop();
        }
        tx.push(pipeline::Stamped { seq: loaded as u64 + i as u64, t_feed: due, msg });
        pushed.push(clock.now());
    }
    let feed_sched = pipeline::thread_sched().zip(f0).map(|(b, a)| b.since(&a));
    // Every thread's share of the paced phase, read once the engine and dispatch have taken
    // the last tick (outside the hot path: /proc reads).
    let all = (assets + a.ticks) as u64;
    while counters.ticks.load(std::sync::atomic::Ordering::Relaxed) < all || stage.pending() > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let threads = thread_shares(&tasks0, &pipeline::affinity::tasks(), wall0.elapsed());
    liqscan_host::feed::replay::end(&tx, &clock, 0);
    let rep = h.join().map_err(|_| anyhow::anyhow!("engine thread panicked"))?;
    if let Some(path) = &a.trace {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(f, "seq,t_feed,t_pushed,t_cmd,t_bitmap,t_dispatch")?;
        for t in rep.trace.iter().filter(|t| t.seq >= loaded as u64) {
            let p = pushed[(t.seq - loaded as u64) as usize];
            writeln!(f, "{},{},{},{},{},{}", t.seq, t.t_feed, p, t.t_cmd, t.t_bitmap, t.t_dispatch)?;
        }
    }
    let d = stage.finish();
    println!(
        "paced at {rate:.0} ticks/s: {:.0}% of the rate the bare engine sustains (mean tick {:.2} us){}\n",
        100.0 * rate * mean_ns / 1e9,
        mean_ns / 1e3,
        if a.rate > 0.0 { ", set by --rate" } else { "" }
    );
    println!(
        "```\n{}```\n",
        percentile_table(&[
            ("bare engine tick", &bare),
            ("bare, edges only", &bare_edges),
            ("machine floor", &fl),
            ("pipeline engine", &rep.hist.engine),
            ("feed->command", &rep.hist.feed_to_command),
            ("feed->bitmap", &rep.hist.feed_to_bitmap),
            ("feed->handoff", &rep.hist.feed_to_dispatch),
            ("feed->order", &d.feed_to_order),
        ])
    );
    println!(
        "CPU share (/proc/thread-self/schedstat: on a CPU / waiting for one): bare engine loop {}; \
         engine thread (load and ticks) {}; feed thread (paced phase) {}\n",
        share(bare_sched),
        share(rep.sched),
        share(feed_sched)
    );
    println!("{threads}");
    println!(
        "engine thread idle: {}; feed: {}\n",
        if a.spin { "busy-polls (--spin)" } else { "spins, then sleeps between looks" },
        if a.feed_spin {
            "spins to each tick's time (--feed-spin)"
        } else {
            "sleeps until 200 us before each tick's time, then spins"
        }
    );
    let q = |h: &Histogram<u64>, x: f64| h.value_at_quantile(x) as f64;
    let r = |h: &Histogram<u64>, x: f64| q(h, x) / q(&bare, x);
    println!(
        "feed->handoff (every tick) / bare engine: p50 {:.2}x, p99 {:.2}x, p99.9 {:.2}x; feed->order ({} orders) / bare: p50 {:.2}x, p99 {:.2}x, p99.9 {:.2}x\n",
        r(&rep.hist.feed_to_dispatch, 0.5),
        r(&rep.hist.feed_to_dispatch, 0.99),
        r(&rep.hist.feed_to_dispatch, 0.999),
        d.feed_to_order.len(),
        r(&d.feed_to_order, 0.5),
        r(&d.feed_to_order, 0.99),
        r(&d.feed_to_order, 0.999),
    );
    println!(
        "dispatch: {} scan batches, {} orders built, {} sends, {} sent later (retries, waits), {} unsizable; feed back-pressure {}; the {assets} load-time price ticks are in the feed histograms\n",
        d.batches,
        d.stats.orders,
        d.stats.sends,
        d.later_sends,
        d.stats.unsizable,
        counters.backpressure.load(std::sync::atomic::Ordering::Relaxed),
    );
    Ok(())
}

/// A table of every thread that ran in the paced phase: its mask, the CPU it last ran on, and
/// its time on a CPU and waiting for one, as shares of the phase's wall time.
fn thread_shares(
    before: &[pipeline::affinity::TaskStat],
    after: &[pipeline::affinity::TaskStat],
    wall: Duration,
) -> String {
    let w = wall.as_nanos().max(1) as f64;
    let mut out = format!(
        "threads over the paced phase ({:.2} s; /proc/self/task: affinity, last CPU, time on a CPU and waiting for one):\n\n\
         | thread | tid | cores | last CPU | on a CPU | waiting |\n|---|---|---|---|---|---|\n",
        wall.as_secs_f64()
    );
    for t in after {
        let b = before.iter().find(|b| b.tid == t.tid);
        let run = t.run_ns - b.map_or(0, |b| b.run_ns.min(t.run_ns));
        let wait = t.wait_ns - b.map_or(0, |b| b.wait_ns.min(t.wait_ns));
        if run < 1_000_000 && wait < 1_000_000 {
            continue; // idle in the phase (the floor and bare-engine threads are gone)
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} s ({:.0}%) | {:.2} s ({:.0}%) |\n",
            t.name,
            t.tid,
            pipeline::affinity::list(&t.cores),
            t.last_cpu.map_or("?".into(), |c| c.to_string()),
            run as f64 / 1e9,
            100.0 * run as f64 / w,
            wait as f64 / 1e9,
            100.0 * wait as f64 / w,
        ));
    }
    out
}

fn share(s: Option<pipeline::SchedStat>) -> String {
    match s {
        Some(s) => format!(
            "{:.2} s / {:.2} s ({:.0}%)",
            s.run_ns as f64 / 1e9,
            s.wait_ns as f64 / 1e9,
            100.0 * s.run_ns as f64 / (s.run_ns + s.wait_ns).max(1) as f64
        ),
        None => "n/a".into(),
    }
}

fn bench_hdl(a: &Args, verilog: bool) -> Result<()> {
    use liqscan_host::io::{accounts::read_accounts, ticks::read_bars, ticks::read_ticks, venue::read_venue};
    // Default: the Black Thursday day (real ETH/USD 10-minute bars of 2020-03-12, the example
    // venue and its accounts; a minute or less on the HDL card). `--hdl-demo`: the generated
    // demo crash (2000 accounts; hours on the HDL card at the simulation's speed).
    let (table, accounts, ticks, what) = if a.hdl_demo {
        let table = crate::demo_book::venue();
        let book = crate::demo_book::book(&table, 2000, 7);
        let path = crate::demo_book::price_path(&table, 7);
        (table, book, path, "Demo crash (2000 accounts".to_string())
    } else {
        let table = read_venue(std::path::Path::new(&a.hdl_venue))?;
        let accounts = read_accounts(std::path::Path::new(&a.hdl_accounts), &table)?;
        let mut ticks = read_ticks(std::path::Path::new(&a.hdl_ticks_file), &table)?;
        ticks.extend(read_bars(std::path::Path::new(&a.hdl_bars), &table, "ETH")?);
        ticks.sort_by_key(|t| t.ts_ns);
        let what = format!("Black Thursday, {} ({} accounts", a.hdl_bars, accounts.len());
        (table, accounts, ticks, what)
    };
    let w = Workload::new(&table, &accounts, &ticks[..a.hdl_ticks.min(ticks.len())]);
    let path = ticks;
    let mut out = vec![];
    let mut backends = vec!["software", "card-software", "card-hdl"];
    if verilog {
        backends.push("card-verilog");
    }
    for backend in backends {
        eprintln!("hdl part: {backend} ...");
        let cfg =
            KeeperConfig { backend: Some(backend.into()), watchdog_ms: Some(60_000), ..Default::default() };
        let keeper = Keeper::builder()
            .config(cfg)
            .workload(w.clone())
            .without_dispatch()
            .card_host(super::card::InProcess)
            .notes(|s| eprintln!("{s}"))
            .start()?;
        let r = keeper.finish()?;
        if !r.report.failovers.is_empty() {
            bail!("{backend}: unexpected fail-over: {:?}", r.report.failovers);
        }
        out.push((backend, r));
    }
    println!(
        "## {what}, {} assets, first {} ticks) through each backend\n",
        table.len(),
        a.hdl_ticks.min(path.len())
    );
    println!(
        "| backend | breach events | digest | final bitmaps equal software | wall s | ticks/s | tick p50 us | tick p99 us |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let sw_b = out[0].1.report.breach.clone();
    let sw_a = out[0].1.report.at_risk.clone();
    let ticks = a.hdl_ticks.min(path.len()) as f64;
    for (name, r) in &out {
        let eq = r.report.breach == sw_b && r.report.at_risk == sw_a;
        let h = &r.report.hist.engine;
        println!(
            "| {name} | {} | {:016x} | {} | {:.2} | {:.0} | {:.1} | {:.1} |",
            r.changes.iter().filter(|c| c.breached).count(),
            digest(&r.changes),
            eq,
            r.seconds,
            ticks / r.seconds,
            h.value_at_quantile(0.5) as f64 / 1e3,
            h.value_at_quantile(0.99) as f64 / 1e3,
        );
    }
    println!();
    for (name, r) in &out {
        if let Some(c) = r.card_report.as_ref().filter(|c| c.cycles > 0) {
            println!(
                "- {name}: {} core cycles in {:.2} s simulated ({:.0} cycles/s)",
                c.cycles,
                c.sim_seconds,
                c.cycles as f64 / c.sim_seconds.max(1e-9)
            );
        }
    }
    println!();
    Ok(())
}
