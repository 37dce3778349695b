//! `liqscan scan`: given a venue, accounts and ticks, report every breach as it happens.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use liqscan_host::book::Book;
use liqscan_host::io::accounts::{book_of, estimate_book, read_book};
use liqscan_host::io::breaches::BreachWriter;
use liqscan_host::io::outputs::{named_inputs, refuse_input_as_output};
use liqscan_host::io::ticks::{Tick, read_bars, read_ticks};
use liqscan_host::io::venue::read_venue_draft;
use liqscan_host::io::venue_book::{VenueAndBook, read_venue_and_book};
use serde::Serialize;

use liqscan_host::engine::router::{DEVICE_CLASSES, DeviceClass, Route, RouteStats};
use liqscan_sim::card::{BACKENDS, BackendOptions, open_backend};

use crate::replay::{Percentiles, Render, Replay, ReplayStats, RoutingArg, TickEvents};

/// Arguments of `liqscan scan`.
#[derive(clap::Args)]
pub struct Args {
    /// Venue file: settings and assets (.toml or .json).
    #[arg(long)]
    pub venue: PathBuf,
    /// Accounts (.toml, .json, .csv, Arrow IPC .arrow/.feather, or .parquet).
    #[arg(long)]
    pub accounts: PathBuf,
    /// Price ticks (.csv, .jsonl, Arrow IPC .arrow/.feather or .parquet); may be given several times.
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
    /// Scan engine: `software`, or the emulated card behind the card link (`card-software`;
    /// `card-hdl`, the rust-hdl core: at most 8192 accounts, tens of ticks a second), which
    /// fails over to software if the card stops answering; `card-dram`, the card with its book
    /// in DDR3 (the external-memory scan block's cycle model, paced to its 75 MHz: accounts of
    /// up to four terms, tens of milliseconds a full scan of 1 M); or `routed`: the emulated
    /// card holds what it can of the book (`--card-accounts`; with `--device lfe5u-85f-ddr3`,
    /// the DRAM card holds every account of up to four terms), software the rest, and each
    /// tick of the card's part goes where it costs least (`--route`). Same events either way.
    #[arg(long, default_value = "software", value_parser = clap::builder::PossibleValuesParser::new(BACKENDS))]
    pub backend: String,
    /// `--backend routed`: where the card's part of the book is computed: by the cost model
    /// (`measured`), or always on the `card` or in `software`.
    #[arg(long, value_enum, default_value = "measured")]
    pub route: RouteArg,
    /// `--backend routed`: accounts the emulated card holds (default: the card's build,
    /// `CARD_ACCOUNTS`; with `--device lfe5u-85f-ddr3`, the whole book).
    #[arg(long)]
    pub card_accounts: Option<usize>,
    /// `--backend routed`: device class whose figures (docs/CROSSOVER.md) are the cost
    /// model's prior, before measurement: lfe5u-85f, lfe5u-85f-ddr3, artix7-ddr3, kintex7-ddr3 or
    /// u55c-hbm.
    #[arg(long, default_value = "lfe5u-85f", value_parser = parse_device)]
    pub device: DeviceClass,
    /// Threads for the software engine's full scans (1 or 2): with 2, each full scan is split
    /// with a helper thread on another core. The event writer already takes a second core, so
    /// the default is one; give 2 where a third core is free.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub scan_threads: u8,
    /// Print the summary as JSON (on standard error when events go to standard output).
    #[arg(long)]
    pub json: bool,
    /// Refuse a book whose load is estimated to need more memory than this (bytes, or with
    /// a K, M or G suffix); default: the memory the system has available.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub max_memory: Option<u64>,
}

/// `--route`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum RouteArg {
    /// The side the cost model finds cheaper.
    Measured,
    /// Always the card (while it answers).
    Card,
    /// Always the software mirror.
    Software,
}

impl From<RouteArg> for Route {
    fn from(r: RouteArg) -> Route {
        match r {
            RouteArg::Measured => Route::Measured,
            RouteArg::Card => Route::Card,
            RouteArg::Software => Route::Software,
        }
    }
}

fn parse_device(s: &str) -> Result<DeviceClass, String> {
    DeviceClass::named(s).ok_or_else(|| {
        let names: Vec<&str> = DEVICE_CLASSES.iter().map(|d| d.name).collect();
        format!("unknown device class '{s}': use one of {}", names.join(", "))
    })
}

/// Parses `123`, `512M`, `2G` (powers of 1024).
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mul) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&t[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("'{s}' is not a byte count (e.g. 1500000000, 512M, 2G)"))
}

/// Engine bytes per account slot and per term, for the memory estimate. The whole scan of the
/// generated 1,000,000-account book (2.6 M terms) peaked at 229 MiB resident (docs/lab/performance.md,
/// "The compact book"); these give about 300 MB for it with the book's own estimate, a margin
/// of a quarter. The engine's layout is its own: re-measure when it changes.
const ENGINE_BYTES_PER_ACCOUNT: u64 = 100;
const ENGINE_BYTES_PER_TERM: u64 = 50;

/// Memory the system can give this process: MemAvailable, or the cgroup's limit if lower.
fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let avail = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)?;
    let cgroup =
        std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|v| v.trim().parse::<u64>().ok());
    Some(cgroup.map_or(avail, |c| c.min(avail)))
}

/// Refuses a book estimated (from its file size) to need more memory than the limit, before
/// reading it, so that the kernel does not kill the load halfway.
fn check_memory(path: &std::path::Path, limit: Option<u64>) -> Result<()> {
    let est = estimate_book(path)?;
    let need = est.load_bytes + est.accounts * ENGINE_BYTES_PER_ACCOUNT + est.terms * ENGINE_BYTES_PER_TERM;
    let (limit, what) = match limit {
        Some(l) => (l, "--max-memory"),
        None => match available_memory() {
            Some(l) => (l, "the memory available (MemAvailable or the cgroup limit)"),
            None => return Ok(()),
        },
    };
    if need > limit {
        bail!(
            "{}: a book of {} MB (about {} accounts, {} terms) needs about {} MB to load and scan; \
             the limit is {} MB ({what}); split the book or run where more memory is free",
            path.display(),
            est.file_bytes / 1_000_000,
            est.accounts,
            est.terms,
            need / 1_000_000,
            limit / 1_000_000
        );
    }
    Ok(())
}

/// A progress bar on standard error that appears only once a load has taken a second (and
/// only on a terminal: indicatif hides it otherwise).
struct LoadBar {
    bar: ProgressBar,
    t0: Instant,
    shown: bool,
}

impl LoadBar {
    fn new(what: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{what} {{bar:40}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}}"
            ))
            .expect("template"),
        );
        LoadBar { bar, t0: Instant::now(), shown: false }
    }

    fn update(&mut self, done: u64, total: u64) {
        if !self.shown && self.t0.elapsed().as_secs_f64() > 1.0 {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
        self.bar.set_length(total);
        self.bar.set_position(done);
    }
}

/// Reads the accounts into the compact book, with a progress bar on long loads.
fn load_book(a: &Args, table: &liqscan_host::model::AssetTable) -> Result<Book> {
    check_memory(&a.accounts, a.max_memory)?;
    let mut bar = LoadBar::new("accounts");
    let book = read_book(&a.accounts, table, &mut |done, total| bar.update(done, total))?;
    bar.bar.finish_and_clear();
    Ok(book)
}

#[derive(Serialize)]
struct Summary {
    /// The `--backend` asked for.
    backend: String,
    /// The engine that served the last tick (`software` after a fail-over).
    engine_at_end: &'static str,
    /// Fail-overs from the card to software.
    failovers: usize,
    accounts: usize,
    terms: usize,
    /// Reading and compiling the accounts file.
    read_ms: f64,
    /// Loading the book into the engine.
    engine_load_ms: f64,
    /// Reading the tick files.
    ticks_read_ms: f64,
    /// Applying the ticks and writing the events.
    ticks_ms: f64,
    /// Bytes the compact book holds.
    book_bytes: usize,
    assets: usize,
    ticks: usize,
    breached_at_end: usize,
    at_risk_at_end: usize,
    stats: ReplayStats,
    tick_latency: Percentiles,
    /// `--backend routed`: where the card's part of each tick went, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    routes: Option<RouteStats>,
}

/// Runs the scan.
pub fn run(a: Args) -> Result<()> {
    if a.scan_threads != 1 && a.backend != "software" {
        bail!("--scan-threads {} applies to the software backend only, not {}", a.scan_threads, a.backend);
    }
    if a.backend != "routed" && (a.card_accounts.is_some() || !matches!(a.route, RouteArg::Measured)) {
        bail!("--route and --card-accounts apply to --backend routed only, not {}", a.backend);
    }
    if a.card_accounts == Some(0) {
        bail!("--card-accounts 0: the card must hold at least one account (use --backend software)");
    }
    let inputs = named_inputs(Some(&a.venue), Some(&a.accounts), &a.ticks, &a.bars);
    refuse_input_as_output("--out", &a.out, &inputs).map_err(anyhow::Error::msg)?;
    let draft = read_venue_draft(&a.venue)?;
    let t_read = Instant::now();
    let (table, book) = if draft.needs_book() {
        // Quanta left to choose: the specs are needed, so the book is read the long way.
        let vb = read_venue_and_book(&a.venue, &a.accounts)?;
        report_quanta(&vb);
        let book = book_of(&vb.accounts);
        (vb.table, book)
    } else {
        let table = draft.provisional();
        let book = load_book(&a, &table)?;
        (table, book)
    };
    let read_ms = t_read.elapsed().as_secs_f64() * 1e3;
    // Accounts a full scan reads first, whole blocks of pairs after: the scan of a tick of an
    // asset every account holds then skips the pairs' blocks (events keep their account ids).
    // Counted in the engine's load, as the peer counts its pivot apart from `read_csv`.
    let t_layout = Instant::now();
    let book = book.in_scan_order();
    let layout_ms = t_layout.elapsed().as_secs_f64() * 1e3;
    let t_ticks = Instant::now();
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
    let ticks_read_ms = t_ticks.elapsed().as_secs_f64() * 1e3;
    let t_engine = Instant::now();
    let mut card = None;
    let mut replay = if a.backend == "software" {
        Replay::with_scan_threads(&table, &book, a.routing.into(), a.scan_threads as usize)?
    } else {
        let opts = BackendOptions {
            route: a.route.into(),
            card_accounts: a.card_accounts,
            device: Some(a.device),
            ..BackendOptions::default()
        };
        let (engine, c) = open_backend(&a.backend, book.len(), table.len(), &opts)?;
        card = c;
        Replay::with_engine(&table, &book, engine)?
    };
    let engine_load_ms = layout_ms + t_engine.elapsed().as_secs_f64() * 1e3;
    let to_stdout = a.out.as_os_str() == "-";
    let sink: Box<dyn Write + Send> = if to_stdout {
        Box::new(std::io::stdout())
    } else {
        Box::new(File::create(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?)
    };
    let writer = BreachWriter::new(BufWriter::new(sink));
    let bar = ProgressBar::new(ticks.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:40} {pos}/{len} ticks").expect("template"));
    let t0 = Instant::now();
    replay_to(&mut replay, &ticks, Render::new(&table, &book), writer, &bar)?;
    bar.finish_and_clear();
    let ticks_ms = t0.elapsed().as_secs_f64() * 1e3;
    replay.check_priced()?;
    for f in replay.engine().failovers() {
        eprintln!(
            "FAIL-OVER: card fault at a {}: {}; the rest ran on the software engine ({} us to switch)",
            f.call,
            f.why,
            f.ns / 1000
        );
    }
    drop(card);
    let s = Summary {
        backend: a.backend.clone(),
        engine_at_end: replay.engine().name(),
        failovers: replay.engine().failovers().len(),
        accounts: book.len(),
        terms: book.term_count(),
        read_ms,
        engine_load_ms,
        ticks_read_ms,
        ticks_ms,
        book_bytes: book.heap_bytes(),
        assets: table.len(),
        ticks: ticks.len(),
        breached_at_end: replay.breached_now(),
        at_risk_at_end: replay.at_risk_now(),
        stats: replay.stats.clone(),
        tick_latency: Percentiles::of(&replay.latency),
        routes: replay.engine().routes(),
    };
    let text = if a.json {
        serde_json::to_string_pretty(&s)?
    } else {
        let l = &s.tick_latency;
        let routes = s.routes.as_ref().map(route_text).unwrap_or_default();
        format!(
            "{} accounts read in {:.0} ms, loaded into the engine in {:.0} ms; {} ticks in {:.0} ms: {} breach events over {} accounts, {} recoveries, {} at-risk events; \
             {} breached and {} at risk at the end\nengine latency per tick (us): p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}{routes}",
            s.accounts,
            s.read_ms,
            s.engine_load_ms,
            s.ticks,
            s.ticks_ms,
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

/// The router's summary line: where the card's part of the ticks went, and why.
fn route_text(r: &RouteStats) -> String {
    let (c, w) = (&r.card_ticks, &r.software_ticks);
    format!(
        "\nrouter: {} accounts on the card (of {} slots), {} on software only; card's part of the ticks: \
         {} on the card ({} by cost, {} probes, {} forced), {} in software ({} by cost, {} probes, {} forced, {} after a card fault); \
         {} caught up by a batch tick; batch ticks: {} on the card, {} in software",
        r.card_accounts,
        r.card_capacity,
        r.host_accounts,
        c.total(),
        c.cost,
        c.probe,
        c.forced,
        w.total(),
        w.cost,
        w.probe,
        w.forced,
        w.no_card,
        r.catch_ups,
        r.card_batches.total(),
        r.software_batches.total()
    )
}

/// Ticks in flight between the engine thread and the event writer: enough to ride out a burst
/// of events in one tick while the engine goes on.
const EVENTS_IN_FLIGHT: usize = 4;

/// Applies `ticks` on this thread and writes their events on a second one: a crash tick's
/// thousands of events (each an account's health from its terms, its id, a JSON line) cost as
/// much as the engine's tick itself, so the two run side by side. The tick buffers go back and
/// forth between the two, so nothing is allocated once they have grown. Events are written in
/// tick order, as without the thread.
fn replay_to<W: Write + Send>(
    replay: &mut Replay<'_>,
    ticks: &[Tick],
    mut render: Render<'_>,
    mut writer: BreachWriter<W>,
    bar: &ProgressBar,
) -> Result<()> {
    std::thread::scope(|s| {
        // Made inside the scope, so that leaving it any way (a panic too) drops this side's
        // ends before the scope joins the writer, which then stops.
        let (full_tx, full_rx) = crossbeam::channel::bounded::<TickEvents>(EVENTS_IN_FLIGHT);
        let (empty_tx, empty_rx) = crossbeam::channel::bounded::<TickEvents>(EVENTS_IN_FLIGHT + 1);
        for _ in 0..=EVENTS_IN_FLIGHT {
            empty_tx.send(TickEvents::default()).expect("the channel has room");
        }
        let writing = std::thread::Builder::new().name("event-writer".into()).spawn_scoped(
            s,
            move || -> std::io::Result<()> {
                for ev in full_rx {
                    let mut err = None;
                    render.render(&ev, |e| {
                        if err.is_none()
                            && let Err(e) = writer.write_record(e)
                        {
                            err = Some(e);
                        }
                    });
                    if let Some(e) = err {
                        return Err(e); // dropping the receiver stops the engine side
                    }
                    let _ = empty_tx.send(ev);
                }
                writer.finish().map(drop)
            },
        )?;
        let mut stepped = Ok(());
        for (i, t) in ticks.iter().enumerate() {
            let Ok(mut ev) = empty_rx.recv() else { break };
            if let Err(e) = replay.step(t, &mut ev) {
                stepped = Err(e);
                break;
            }
            if full_tx.send(ev).is_err() {
                break; // the writer failed: its error is the one to report
            }
            if i % 1024 == 0 {
                bar.set_position(i as u64);
            }
        }
        drop(full_tx);
        let written = writing.join().expect("the event writer does not panic");
        stepped?;
        written.context("writing breach events")
    })
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
