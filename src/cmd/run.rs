//! `liqscan run`: the keeper's main command. A book and a tick stream go through the pinned
//! pipeline on the chosen backend; breaches come out, with per-stage latency.
//!
//! Backends: `software` (the software engine on the engine thread), `card-software`,
//! `card-hdl` and `card-verilog` (an emulated card on a thread of this process, serving a
//! /dev/shm link with the software engine, the rust-hdl simulation of the core, or the whole
//! card's generated Verilog under Verilator), `shm` (a `liqscan card` process
//! already serving `--shm PATH`), `pcie` (a real card: BAR and DMA buffer files in the config).
//! All but `software` go through the same card link code, with fail-over to the software
//! engine.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use liqscan_host::dispatch::tcp::{TcpConfig, TcpExecutor};
use liqscan_host::dispatch::{DispatchConfig, Executor, JsonlSink};
use liqscan_host::engine::SoftwareEngine;
use liqscan_host::feed::listen::{self, FeedOptions, RateLimit};
use liqscan_host::feed::replay::{self, Pace};
use liqscan_host::guard::{GuardConfig, OracleGuard};
use liqscan_host::io::accounts::read_accounts;
use liqscan_host::io::ticks::{Tick, read_bars, read_ticks};
use liqscan_host::io::venue::read_venue;
use liqscan_host::journal::events::{self, BreachChange, EventTap, EventWriter, EventsOut};
use liqscan_host::journal::keeper::{
    BookJournal, ClearedSlots, JournaledExecutor, SharedBookJournal, seed_guard,
};
use liqscan_host::journal::{FsyncPolicy, JournalConfig, JournalError};
use liqscan_host::link::{
    BAR_BYTES, CardLink, DEFAULT_EVT_ENTRIES, LinkEngine, LinkError, LinkFault, LinkMemory, LinkOptions,
};
use liqscan_host::metrics::exposition::Exposition;
use liqscan_host::metrics::http::{MetricsOptions, MetricsServer};
use liqscan_host::metrics::percentile_table;
use liqscan_host::metrics::{Counters, Published};
use liqscan_host::pipeline::dispatch::{
    DRAIN_LIMIT_NS, DispatchOptions, DispatchReport, DispatchSink, DispatchStage, KeeperBook,
};
use liqscan_host::pipeline::{
    self, Backend, Book, BreachSink, Clock, FeedMsg, PipelineConfig, PipelineReport,
};
use liqscan_sim::card::{CardReport, CardThread, ServeOptions};
use serde::Deserialize;

/// Arguments of `liqscan run` (each overrides the same key of `--config`).
#[derive(clap::Args, Default)]
pub struct Args {
    /// TOML config file (keys as the long options, with underscores).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// software | card-software | card-hdl | card-verilog | shm | pcie.
    #[arg(long)]
    pub backend: Option<String>,
    /// Venue file; without it, the embedded demo venue, book and crash.
    #[arg(long)]
    pub venue: Option<PathBuf>,
    /// Accounts file.
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// Tick files (.csv/.jsonl).
    #[arg(long)]
    pub ticks: Vec<PathBuf>,
    /// OHLC bars as SYMBOL=PATH.
    #[arg(long)]
    pub bars: Vec<String>,
    /// Accounts in the embedded demo book.
    #[arg(long)]
    pub demo_accounts: Option<usize>,
    /// flood | recorded:SPEED | fixed:PER_SECOND.
    #[arg(long)]
    pub pace: Option<String>,
    /// Breach events as JSONL ("-" for standard output), written as the scans happen; with
    /// `--journal` a restart continues the file (the journal keeps DIR/events.jsonl otherwise).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Serve metrics (OpenMetrics on /metrics, /healthz, /readyz) on this address (e.g.
    /// 127.0.0.1:9184): loopback only unless --metrics-allow-remote.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Allow --metrics on a non-loopback address (reachable from the network).
    #[arg(long)]
    pub metrics_allow_remote: bool,
    /// Save the stage histograms in HdrHistogram interval-log format.
    #[arg(long)]
    pub hlog: Option<PathBuf>,
    /// Link file of a running `liqscan card` (backend shm).
    #[arg(long)]
    pub shm: Option<PathBuf>,
    /// Core for the engine thread.
    #[arg(long)]
    pub engine_core: Option<usize>,
    /// Core for the feed (this) thread.
    #[arg(long)]
    pub feed_core: Option<usize>,
    /// Core for an in-process emulated card.
    #[arg(long)]
    pub card_core: Option<usize>,
    /// Busy-poll everywhere, never yield (dedicated cores only).
    #[arg(long)]
    pub spin: bool,
    /// Watchdog: a card silent this long is failed over (milliseconds).
    #[arg(long)]
    pub watchdog_ms: Option<u64>,
    /// Where liquidation orders go: discard (built and counted, not written), stdout,
    /// jsonl:PATH, or tcp:HOST:PORT (a downstream service, line protocol liqscan-dispatch/2;
    /// shared secret from LIQSCAN_DISPATCH_SECRET if set).
    #[arg(long)]
    pub executor: Option<String>,
    /// Core for the dispatch thread.
    #[arg(long)]
    pub dispatch_core: Option<usize>,
    /// Write-ahead journal directory: account deltas and ticks (DIR/book, on the feed thread)
    /// and orders (DIR/orders, on the dispatch thread); a run over an existing journal
    /// recovers it and resumes the replay after the last journaled message.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Journal fsync policy: always | never | batch:RECORDS:MILLIS (default batch:256:10).
    #[arg(long)]
    pub journal_fsync: Option<String>,
    /// Also take live feed frames on this TCP address (loopback unless `[feed] allow_remote`);
    /// shared secret from LIQSCAN_FEED_SECRET if set.
    #[arg(long)]
    pub listen_tcp: Option<String>,
    /// Also take live feed datagrams on this UDP address.
    #[arg(long)]
    pub listen_udp: Option<String>,
    /// Keep listening this long after the replay ends (milliseconds).
    #[arg(long)]
    pub listen_ms: Option<u64>,
}

/// `[feed]` section: live listener hardening (docs/WIRE_FORMAT.md).
#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FeedSection {
    tcp: Option<String>,
    udp: Option<String>,
    listen_ms: Option<u64>,
    #[serde(default)]
    allow_remote: bool,
    max_connections: Option<usize>,
    /// Admission (docs/WIRE_FORMAT.md): slots per peer address, connections waiting for a
    /// first frame, its deadline, the idle timeout, the largest sequence jump adopted.
    max_per_address: Option<usize>,
    max_waiting: Option<usize>,
    first_frame_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_seq_jump: Option<u64>,
    /// Token bucket per connection / peer: frames per second and burst.
    rate_per_second: Option<f64>,
    rate_burst: Option<f64>,
    /// Oracle guard on live ticks: jump bound (basis points) and maximum age (ms).
    max_jump_bps: Option<u32>,
    max_age_ms: Option<i64>,
}

/// Live listeners of a run.
pub struct ListenPlan {
    tcp: Option<String>,
    udp: Option<String>,
    listen_ms: u64,
    opts: FeedOptions,
    /// Guard (max age ns, max jump bps), sized to the table when the run starts.
    guard: Option<(Option<i64>, u32)>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    backend: Option<String>,
    venue: Option<PathBuf>,
    accounts: Option<PathBuf>,
    #[serde(default)]
    ticks: Vec<PathBuf>,
    #[serde(default)]
    bars: Vec<String>,
    demo_accounts: Option<usize>,
    pace: Option<String>,
    out: Option<PathBuf>,
    metrics: Option<String>,
    #[serde(default)]
    metrics_allow_remote: bool,
    hlog: Option<PathBuf>,
    shm: Option<PathBuf>,
    engine_core: Option<usize>,
    feed_core: Option<usize>,
    card_core: Option<usize>,
    #[serde(default)]
    spin: bool,
    watchdog_ms: Option<u64>,
    executor: Option<String>,
    dispatch_core: Option<usize>,
    journal: Option<PathBuf>,
    journal_fsync: Option<String>,
    feed: Option<FeedSection>,
    /// `[dispatch]` section: the dispatcher's rules (DispatchConfig).
    dispatch: Option<DispatchConfig>,
    pcie: Option<PcieConfig>,
}

/// `[pcie]` section.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct PcieConfig {
    /// BAR 0 file: /sys/bus/pci/devices/<bdf>/resource0, or the XDMA user device.
    bar: PathBuf,
    /// BAR length (required for devices whose file length reads 0).
    bar_len: Option<usize>,
    /// DMA buffer file (hugetlbfs).
    dma: PathBuf,
    /// DMA buffer bytes.
    dma_len: usize,
    /// Its bus address as the card sees it.
    dma_bus_addr: u64,
}

/// Parses a pace (range-checked: `fixed:0` or `recorded:NaN` are refused, not run as flood).
pub fn parse_pace(s: &str) -> Result<Pace> {
    liqscan_host::io::options::parse_pace(s).map_err(anyhow::Error::msg)
}

/// Live stream number of the TCP listener (in the journal and the guard).
const LIVE_TCP: u8 = 1;
/// Live stream number of the UDP listener.
const LIVE_UDP: u8 = 2;

/// Parses `--journal-fsync`.
pub fn parse_fsync(s: &str) -> Result<FsyncPolicy> {
    Ok(match s.split(':').collect::<Vec<_>>()[..] {
        ["always"] => FsyncPolicy::Always,
        ["never"] => FsyncPolicy::Never,
        ["batch", r, m] => FsyncPolicy::Batch {
            records: r.parse().context("batch:RECORDS:MILLIS")?,
            millis: m.parse().context("batch:RECORDS:MILLIS")?,
        },
        _ => bail!("journal fsync '{s}': use always, never or batch:RECORDS:MILLIS"),
    })
}

/// A run's journal: where, and with what settings.
#[derive(Clone, Debug)]
pub struct JournalPlan {
    /// Directory (DIR/book and DIR/orders).
    pub dir: PathBuf,
    /// Settings of both journals.
    pub cfg: JournalConfig,
}

/// Where the dispatcher hands orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutorSpec {
    /// A JSONL sink into nothing: orders are built, sized and counted.
    Discard,
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines in a file.
    Jsonl(PathBuf),
    /// A downstream liquidation service over TCP.
    Tcp(std::net::SocketAddr),
}

/// Parses `--executor`.
pub fn parse_executor(s: &str) -> Result<ExecutorSpec> {
    Ok(match s.split_once(':') {
        None if s == "discard" => ExecutorSpec::Discard,
        None if s == "stdout" => ExecutorSpec::Stdout,
        Some(("jsonl", "-")) => ExecutorSpec::Stdout,
        Some(("jsonl", p)) => ExecutorSpec::Jsonl(PathBuf::from(p)),
        Some(("tcp", a)) => ExecutorSpec::Tcp(
            std::net::ToSocketAddrs::to_socket_addrs(a)
                .with_context(|| format!("executor address '{a}'"))?
                .next()
                .with_context(|| format!("executor address '{a}' resolves to nothing"))?,
        ),
        _ => bail!("executor '{s}': use discard, stdout, jsonl:PATH or tcp:HOST:PORT"),
    })
}

impl ExecutorSpec {
    /// Refuses, before the run starts, a JSONL path that cannot take orders (a directory, a
    /// missing folder, no write permission): on the dispatch thread it could only discard them.
    /// A regular file is opened for appending, so nothing in it changes; a new one is created and
    /// removed; a FIFO or a device is left alone (opening it now could block, or end a
    /// reader's stream).
    pub fn check_writable(&self) -> Result<()> {
        if let ExecutorSpec::Jsonl(p) = self {
            if p.is_dir() {
                bail!("executor jsonl:{}: is a directory, not a writable file", p.display());
            }
            let existed = match std::fs::metadata(p) {
                Ok(m) if !m.is_file() => return Ok(()),
                Ok(_) => true,
                Err(_) => false,
            };
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .with_context(|| format!("executor jsonl:{}: not a writable file", p.display()))?;
            // A refused run leaves nothing behind: the dispatch thread creates it again.
            if !existed {
                let _ = std::fs::remove_file(p);
            }
        }
        Ok(())
    }

    /// Makes the executor (called on the dispatch thread); `resume` (a run restarted over its
    /// journal) appends to a JSONL file instead of truncating it, so the orders sent before the
    /// restart stay; `durable` (a journal fsyncing every record) fsyncs each JSONL line too.
    pub fn make_for(&self, resume: bool, durable: bool) -> Result<Box<dyn Executor>> {
        Ok(match self {
            ExecutorSpec::Discard => Box::new(JsonlSink::new("discard", std::io::sink())),
            ExecutorSpec::Stdout => Box::new(JsonlSink::stdout()),
            ExecutorSpec::Jsonl(p) => {
                let sink = if resume {
                    JsonlSink::append(p).with_context(|| format!("appending to {}", p.display()))?
                } else {
                    JsonlSink::create(p).with_context(|| format!("creating {}", p.display()))?
                };
                if durable { Box::new(sink.sync_each_line()?) } else { Box::new(sink) }
            }
            ExecutorSpec::Tcp(a) => {
                let cfg = TcpConfig::new(*a)
                    .secret_from_env("LIQSCAN_DISPATCH_SECRET")
                    .map_err(anyhow::Error::msg)?;
                let t = TcpExecutor::start(cfg);
                if !t.wait_connected(Duration::from_secs(2)) {
                    eprintln!("note: executor tcp://{a} not connected yet; orders back off until it is");
                }
                Box::new(t)
            }
        })
    }
}

/// The dispatch stage of a run: the keeper's book for sizing, the executor, the rules.
pub struct DispatchPlan {
    /// Accounts as dispatch sizes them.
    pub book: KeeperBook,
    /// Where orders go.
    pub exec: ExecutorSpec,
    /// Thread and dispatcher settings.
    pub opts: DispatchOptions,
}

/// A loaded book and tick stream, as pipeline messages.
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

fn load(a: &Args) -> Result<Workload> {
    let (table, accounts, ticks): (_, _, Vec<Tick>) = match &a.venue {
        None => {
            let table = crate::demo_book::venue();
            let n = a.demo_accounts.unwrap_or(2000);
            crate::cmd::demo::check_book_size("--demo-accounts", n, crate::cmd::demo::RUN_BYTES_PER_ACCOUNT)?;
            let book = crate::demo_book::book(&table, n, 7);
            let path = crate::demo_book::price_path(&table, 7);
            (table, book, path)
        }
        Some(v) => {
            let table = read_venue(v)?;
            let acc = a.accounts.as_ref().context("--accounts is required with --venue")?;
            let accounts = read_accounts(acc, &table)?;
            let mut ticks = vec![];
            for t in &a.ticks {
                ticks.extend(read_ticks(t, &table)?);
            }
            for b in &a.bars {
                let (sym, p) = b.split_once('=').context("--bars takes SYMBOL=PATH")?;
                ticks.extend(read_bars(Path::new(p), &table, sym)?);
            }
            ticks.sort_by_key(|t| t.ts_ns);
            refuse_unpriced(&table, &accounts, &ticks, a.listen_tcp.is_some() || a.listen_udp.is_some())?;
            (table, accounts, ticks)
        }
    };
    let t0 = ticks.first().map_or(0, |t| t.ts_ns);
    let mut msgs: Vec<(i64, FeedMsg)> =
        accounts.iter().enumerate().map(|(i, acc)| (t0, FeedMsg::upsert(i as u32, &acc.terms))).collect();
    msgs.extend(ticks.iter().map(|t| (t.ts_ns, FeedMsg::Tick { asset: t.asset, price: t.entry })));
    let specs: Vec<_> = accounts.iter().map(|a| a.spec.clone()).collect();
    Ok(Workload {
        ids: accounts.iter().map(|a| a.spec.id.clone()).collect(),
        keeper: KeeperBook::new(&table, &specs),
        assets: table.len(),
        symbols: table.assets().iter().map(|a| a.symbol.clone()).collect(),
        msgs,
        zero_price_ok: table.assets().iter().map(|a| a.allow_zero_price).collect(),
    })
}

/// Refuses a replay that never prices an asset some account holds, as `liqscan scan` does: the
/// engine would read it as worth 0 and report breaches that are not there. With a live feed
/// the price may come from it, so the run goes on.
fn refuse_unpriced(
    table: &liqscan_host::model::AssetTable,
    accounts: &[liqscan_host::io::accounts::LoadedAccount],
    ticks: &[Tick],
    live: bool,
) -> Result<()> {
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
        bail!(
            "no tick ever priced {}: accounts hold them, so their health is unknown; add ticks for them \
             (or take them from a live feed: --listen-tcp / --listen-udp)",
            names.join(", ")
        );
    }
    Ok(())
}

/// A breach event as the run reports it (and writes to `--out`).
pub type Change = BreachChange;

/// Everything one run produced.
pub struct RunResult {
    /// The pipeline's report.
    pub report: PipelineReport,
    /// Breach changes in order.
    pub changes: Vec<Change>,
    /// Wall time of the replay, seconds.
    pub seconds: f64,
    /// The in-process card's engine name, if any.
    pub card: Option<&'static str>,
    /// What the in-process card did (commands, scans, simulated cycles), if any.
    pub card_report: Option<CardReport>,
    /// What the dispatch stage did, if there was one.
    pub dispatch: Option<DispatchReport>,
}

/// Opens a card link with the run's watchdog; `spin`: never sleep while waiting for the card.
fn open_link(mem: LinkMemory, watchdog_ms: u64, spin: bool) -> Result<CardLink> {
    Ok(CardLink::open(
        mem,
        LinkOptions { timeout: Duration::from_millis(watchdog_ms), backoff: !spin, ..Default::default() },
    )?)
}

/// Runs a workload through a backend, with an optional journal and live listeners, writing
/// the breach events to `out` as they happen (a file, or "-" for standard output; with a
/// journal, a restart continues the file). `counters`/`published` feed the metrics endpoint.
#[allow(clippy::too_many_arguments)]
pub fn run_workload_out(
    w: &Workload,
    backend: &str,
    pace: Pace,
    cfg: &PipelineConfig,
    feed_core: Option<usize>,
    card_core: Option<usize>,
    shm: Option<&Path>,
    watchdog_ms: u64,
    dispatch: Option<DispatchPlan>,
    counters: Arc<Counters>,
    published: Arc<Published>,
    journal: Option<&JournalPlan>,
    live: Option<&ListenPlan>,
    out: Option<&Path>,
) -> Result<RunResult> {
    let slots = w.ids.len();
    let mut startup = None;
    let mut card_thread = None;
    let mut card_name = None;
    let mut shm_file = None;
    let be = match backend {
        "software" => Backend::Software(Box::new(SoftwareEngine::new(slots, w.assets))),
        "card-software" | "card-hdl" | "card-verilog" | "shm" => {
            let path = match (backend, shm) {
                ("shm", Some(p)) => p.to_path_buf(),
                ("shm", None) => bail!("backend shm needs --shm PATH of a running `liqscan card`"),
                _ => {
                    let p = PathBuf::from(format!("/dev/shm/liqscan-run-{}", std::process::id()));
                    let idle = if cfg.spin {
                        liqscan_sim::card::Idle::Spin
                    } else {
                        liqscan_sim::card::Idle::Backoff
                    };
                    let opts = ServeOptions { idle, ..Default::default() };
                    if backend == "card-verilog" {
                        let mem = LinkMemory::shm_create(&p, DEFAULT_EVT_ENTRIES)?;
                        let card = crate::cmd::card::verilated_card(&mem)?;
                        card_name = Some("verilog");
                        card_thread = Some(CardThread::spawn_verilated(mem, card, opts, card_core));
                    } else {
                        let engine = if backend == "card-hdl" { "hdl" } else { "software" };
                        let e = crate::cmd::card::make_engine(engine, slots, w.assets)?;
                        card_name = Some(e.name());
                        let mem = LinkMemory::shm_create(&p, DEFAULT_EVT_ENTRIES)?;
                        card_thread = Some(CardThread::spawn(mem, e, opts, card_core));
                    }
                    shm_file = Some(p.clone());
                    p
                }
            };
            let mem = LinkMemory::shm_open(&path)?;
            let open = || Ok(LinkEngine::new(open_link(mem, watchdog_ms, cfg.spin)?, slots, w.assets)?);
            card_or_failover(open, slots, w.assets, &counters, &mut startup)?
        }
        other => {
            bail!("unknown backend '{other}': software, card-software, card-hdl, card-verilog, shm or pcie")
        }
    };
    let r = drive_with(w, be, pace, cfg, feed_core, dispatch, counters, published, journal, live, out);
    let card_report = card_thread.map(CardThread::stop);
    if let Some(p) = shm_file {
        let _ = std::fs::remove_file(p);
    }
    let mut r = r?;
    r.card = card_name;
    r.card_report = card_report;
    record_startup_failover(&mut r, startup);
    Ok(r)
}

/// A fail-over before the first message: (why, nanoseconds the card was waited for).
type StartupFailover = Option<(String, u64)>;

/// Opens the card engine; if the card is there but does not answer in time (the first
/// fence's watchdog), runs on the software engine instead, as a stall during the run would,
/// and says so in `startup`. Any other error (no card at the path, a wrong version, a book
/// too large for the card) stops the run: those are configuration, not a stalled card.
fn card_or_failover(
    open: impl FnOnce() -> Result<LinkEngine>,
    slots: usize,
    assets: usize,
    counters: &Counters,
    startup: &mut StartupFailover,
) -> Result<Backend> {
    let t0 = std::time::Instant::now();
    match open() {
        Ok(engine) => Ok(Backend::Card(Box::new(engine), Book::new(slots, assets))),
        Err(e) if is_stall(&e) => {
            eprintln!(
                "FAIL-OVER: the card did not answer at start-up ({e:#}); running on the software engine"
            );
            Counters::inc(&counters.failovers);
            *startup = Some((format!("start-up: {e:#}"), t0.elapsed().as_nanos() as u64));
            Ok(Backend::Software(Box::new(SoftwareEngine::new(slots, assets))))
        }
        Err(e) => Err(e),
    }
}

/// A card that stopped answering (the link's watchdog), as opposed to a wrong configuration.
fn is_stall(e: &anyhow::Error) -> bool {
    let timeout = |l: &LinkError| matches!(l, LinkError::Timeout { .. });
    e.downcast_ref::<LinkError>().is_some_and(timeout)
        || e.downcast_ref::<LinkFault>().is_some_and(|f| matches!(f, LinkFault::Card(l) if timeout(l)))
}

/// Puts a start-up fail-over first in the run's report.
fn record_startup_failover(r: &mut RunResult, startup: StartupFailover) {
    if let Some((why, ns)) = startup {
        r.report.failovers.insert(0, why);
        r.report.failover_ns.insert(0, ns);
    }
}

/// Records breach changes (for `--out` and the digest) and hands scans to dispatch.
struct RunSink {
    events: EventTap,
    dispatch: Option<DispatchSink>,
    /// With a journal: cleared slots for the journaled executor (closes their orders).
    cleared: Option<ClearedSlots>,
}

impl BreachSink for RunSink {
    #[inline]
    fn on_message(&mut self, seq: u64, t_feed: u64, msg: &FeedMsg) {
        self.events.on_message();
        if let Some(d) = &mut self.dispatch {
            d.on_message(seq, t_feed, msg);
        }
    }

    fn on_scan(&mut self, seq: u64, breached: &[u32], cleared: &[u32], at_risk: &[u32]) {
        if let Some(c) = &self.cleared {
            c.push(cleared);
        }
        if let Some(d) = &mut self.dispatch {
            d.on_scan(seq, breached, cleared, at_risk);
        }
        self.events.on_scan(seq, breached, cleared);
    }

    fn finish(&mut self) {
        if let Some(d) = &mut self.dispatch {
            d.finish();
        }
    }
}

/// Feeds a workload through a ready backend, with a dispatch stage if `dispatch` is given,
/// and an optional journal: the book journal is recovered (its book pushed into
/// the engine first, the replay resumed after its last message) and written on this (feed)
/// thread before each push; orders go through a [`JournaledExecutor`] on the dispatch thread.
#[allow(clippy::too_many_arguments)]
pub fn drive_with(
    w: &Workload,
    be: Backend,
    pace: Pace,
    cfg: &PipelineConfig,
    feed_core: Option<usize>,
    dispatch: Option<DispatchPlan>,
    counters: Arc<Counters>,
    published: Arc<Published>,
    journal: Option<&JournalPlan>,
    live: Option<&ListenPlan>,
    out: Option<&Path>,
) -> Result<RunResult> {
    // The counters' clock: per-asset price ages are read on it at each scrape.
    let clock: Clock = counters.clock;
    let (tx, rx) = pipeline::feed_queue(4096, counters.clone());
    let mut book_journal = None;
    // Slots breached in the recovered book, each with its breach episode.
    let mut breached_at_start = std::collections::BTreeMap::new();
    let mut reload = Vec::new();
    let stdout_out = out.is_some_and(|p| p.as_os_str() == "-");
    let mut event_outs = Vec::new();
    let cleared = journal.map(|_| ClearedSlots::default());
    if let Some(jp) = journal {
        let (bj, rec) = BookJournal::open(&jp.dir, w.ids.len(), w.assets, jp.cfg.clone())
            .with_context(|| format!("journal {}", jp.dir.join("book").display()))?;
        eprintln!(
            "journal {}: book {rec}; {} messages of {} done",
            jp.dir.display(),
            bj.messages(),
            w.msgs.len()
        );
        if bj.messages() > w.msgs.len() as u64 {
            bail!(
                "journal {} holds more messages than this workload: another workload's journal?",
                jp.dir.display()
            );
        }
        // The events log: `--out` if it is a file, else one in the journal. A restart cuts a
        // torn line and rebuilds the events the killed run had not written.
        let log = match out {
            Some(p) if !stdout_out => p.to_path_buf(),
            _ => jp.dir.join("events.jsonl"),
        };
        if bj.state().seq > 0 {
            let r = events::recover(&log, &jp.dir.join("book"), bj.position(), &w.ids)
                .with_context(|| format!("continuing the events file {}", log.display()))?;
            eprintln!("events {}: {r}", log.display());
            breached_at_start = r.episodes;
            reload = bj.reload_messages();
            event_outs.push(events::append(&log)?);
        } else {
            event_outs.push(events::create(&log)?);
        }
        book_journal = Some(SharedBookJournal(Arc::new(Mutex::new(bj))));
    } else if let Some(p) = out.filter(|_| !stdout_out) {
        event_outs.push(events::create(p)?);
    }
    if stdout_out {
        event_outs.push(EventsOut::Stdout);
    }
    // The reload's scan reports the recovered breaches again: the events log has them.
    let (event_writer, tap) = EventWriter::start(event_outs, w.ids.clone(), reload.len() as u64);
    // A restart over a journal appends to the order file rather than truncating it.
    let resume = book_journal.as_ref().is_some_and(|b| b.0.lock().expect("book journal").state().seq > 0);
    let durable = journal.is_some_and(|j| j.cfg.fsync == FsyncPolicy::Always);
    let (stage, dsink) = match dispatch {
        Some(plan) => {
            let exec = plan.exec.clone();
            let jctx = journal.map(|jp| {
                (
                    jp.clone(),
                    w.ids.len(),
                    w.assets,
                    breached_at_start.clone(),
                    cleared.clone().expect("cleared"),
                )
            });
            let make = Box::new(move || {
                let inner = match exec.make_for(resume, durable) {
                    Ok(e) => e,
                    Err(err) => {
                        eprintln!("executor: {err:#}; orders are discarded");
                        Box::new(JsonlSink::new("discard", std::io::sink())) as Box<dyn Executor>
                    }
                };
                let Some((jp, slots, assets, breached, cleared)) = jctx else { return inner };
                match JournaledExecutor::open(&jp.dir, slots, assets, jp.cfg, inner, &breached, cleared) {
                    Ok((ex, rec, or)) => {
                        eprintln!(
                            "journal {}: orders {rec}; {} pending re-sent, {} sent awaited (not ordered again), {} closed (breach cleared)",
                            jp.dir.display(),
                            or.resent.len(),
                            or.awaited.len(),
                            or.closed.len()
                        );
                        for (id, slot) in &or.resent {
                            eprintln!("journal: re-sent pending order {id} (slot {slot})");
                        }
                        Box::new(ex) as Box<dyn Executor>
                    }
                    Err(e) => {
                        eprintln!("error: journal {}: {e}", jp.dir.join("orders").display());
                        std::process::exit(2);
                    }
                }
            });
            let (stage, sink) = DispatchStage::start(plan.book, w.assets, make, plan.opts, clock);
            (Some(stage), Some(sink))
        }
        None => (None, None),
    };
    let sink = RunSink { events: tap, dispatch: dsink, cleared };
    let handle = pipeline::spawn(be, rx, Box::new(sink), cfg.clone(), clock, counters.clone(), published);
    if let Some(c) = feed_core {
        pipeline::pin("feed thread", c);
    }
    let t = std::time::Instant::now();
    // The recovered book goes to the engine before any live frame can.
    if let Some(bj) = &book_journal {
        let k = bj.0.lock().expect("book journal").position();
        for m in reload {
            tx.push(pipeline::Stamped { seq: k, t_feed: clock.now(), msg: m });
        }
    }
    let mut listeners = vec![];
    if let Some(lp) = live {
        let mut opts = lp.opts.clone();
        opts.slots = Some(w.ids.len());
        opts.assets = Some(w.assets);
        opts.zero_price_ok = w.zero_price_ok.as_slice().into();
        if let Some((age, bps)) = lp.guard {
            let mut g = OracleGuard::new(GuardConfig::uniform(w.assets, age, bps));
            if let Some(bj) = &book_journal {
                let n = seed_guard(bj.0.lock().expect("book journal").state(), &mut g);
                eprintln!("feed guard seeded with the journal's last prices of {n} assets");
            }
            opts.guard = Some(Arc::new(Mutex::new(g)));
        }
        // Each listener is its own stream: journaled frames carry (stream, frame number), and
        // after a restart a stream's frames up to its last journaled number are duplicates.
        for (kind, source, addr) in [("tcp", LIVE_TCP, &lp.tcp), ("udp", LIVE_UDP, &lp.udp)] {
            let Some(a) = addr else { continue };
            let mut o = opts.clone();
            o.source = source;
            if let Some(bj) = &book_journal {
                o.resume_after = bj.0.lock().expect("book journal").live_seq(source);
                o.log = Some(Arc::new(bj.clone()));
            }
            let resumed = o.resume_after;
            let l = match kind {
                "tcp" => listen::tcp_with(a, tx.clone(), clock, counters.clone(), o),
                _ => listen::udp_with(a, tx.clone(), clock, counters.clone(), o),
            }
            .with_context(|| format!("feed {kind} {a}"))?;
            match resumed {
                Some(last) => eprintln!("feed {kind} listening on {} (frames after {last})", l.addr()),
                None => eprintln!("feed {kind} listening on {}", l.addr()),
            }
            listeners.push((kind, l));
        }
    }
    // A stop signal ends the replay before its next message (crate::shutdown).
    let stop = crate::shutdown::flag();
    counters.health.set_ready(true);
    let n = match &book_journal {
        None => {
            let r = replay::replay_until(&w.msgs, pace, &clock, 0, stop, |_, m| {
                tx.push(m);
                Ok::<(), std::convert::Infallible>(())
            });
            r.unwrap_or_else(|e| match e {})
        }
        Some(bj) => {
            let k = bj.0.lock().expect("book journal").messages();
            // Journal and push under one lock: the listeners journal and push under it too.
            let r = replay::replay_until(&w.msgs[k as usize..], pace, &clock, k, stop, |ts, m| {
                let mut j = bj.0.lock().expect("book journal");
                // The journal position, not the replay's message number: live frames
                // journaled between replay messages take positions too.
                let at = j.position();
                j.record(&m.msg, ts)?;
                tx.push(pipeline::Stamped { seq: at, ..m });
                Ok::<(), JournalError>(())
            });
            let r = r.and_then(|n| bj.0.lock().expect("book journal").sync().map(|_| n));
            match r {
                Ok(n) => k + n,
                Err(e) => {
                    replay::end(&tx, &clock, u64::MAX);
                    let _ = handle.join();
                    let _ = event_writer.finish();
                    return Err(anyhow::anyhow!(e).context("journal"));
                }
            }
        }
    };
    if let Some(lp) = live
        && !crate::shutdown::requested()
    {
        eprintln!("replay done ({n} messages); live feeds open for {} ms more", lp.listen_ms);
        let until = std::time::Instant::now() + Duration::from_millis(lp.listen_ms);
        while !crate::shutdown::requested() && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    counters.health.set_ready(false);
    if let Some(sig) = crate::shutdown::signal_name() {
        counters.health.set_stopping();
        eprintln!(
            "{sig}: intake stopped after {n} of {} messages; draining dispatch (at most {} s) and flushing the journal",
            w.msgs.len(),
            DRAIN_LIMIT_NS / 1_000_000_000
        );
    }
    for (kind, l) in listeners {
        let r = l.stop();
        eprintln!(
            "feed {kind}: {} connections ({} refused), {} taken, {} gaps ({} missing), {} duplicates, \
             {} sequence jumps refused, {} closed before a first frame, {} closed idle, \
             {} malformed, {} unauthenticated, {} rate-limited, {} unknown, {} priced 0, guard {} refused / {} held, \
             {} not journaled",
            r.connections,
            r.conn_refused,
            r.pushed,
            r.seq.gaps,
            r.seq.missing,
            r.seq.duplicates,
            r.seq.too_far,
            r.unadmitted,
            r.idle_closed,
            r.malformed,
            r.auth_failed,
            r.rate_limited,
            r.unknown,
            r.zero_price,
            r.guard_refused,
            r.guard_held,
            r.log_failed
        );
    }
    replay::end(&tx, &clock, n);
    let report = handle.join().map_err(|_| anyhow::anyhow!("engine thread panicked"))?;
    let dispatch = stage.map(DispatchStage::finish);
    // Every frame the listeners journaled is on disk before the report says it was taken.
    if let Some(bj) = &book_journal {
        bj.0.lock().expect("book journal").sync().context("journal: final sync")?;
    }
    let seconds = t.elapsed().as_secs_f64();
    let changes = event_writer.finish().map_err(anyhow::Error::msg)?;
    Ok(RunResult { report, changes, seconds, card: None, card_report: None, dispatch })
}

/// FNV-1a digest of the change list: equal digests, equal breaches.
pub fn digest(changes: &[Change]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for c in changes {
        for b in c.seq.to_le_bytes().into_iter().chain(c.slot.to_le_bytes()).chain([c.breached as u8]) {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// Runs `liqscan run`. SIGTERM or SIGINT stops it cleanly (crate::shutdown): intake ends,
/// dispatch drains, the journal is flushed, the report printed, and the exit status is 0.
pub fn run(mut a: Args) -> Result<()> {
    crate::shutdown::install().context("installing the SIGTERM/SIGINT handlers")?;
    let cfg: Config = match &a.config {
        Some(p) => {
            toml::from_str(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
                .with_context(|| format!("config {}", p.display()))?
        }
        None => Config::default(),
    };
    a.backend = a.backend.or(cfg.backend);
    a.venue = a.venue.or(cfg.venue);
    a.accounts = a.accounts.or(cfg.accounts);
    if a.ticks.is_empty() {
        a.ticks = cfg.ticks;
    }
    if a.bars.is_empty() {
        a.bars = cfg.bars;
    }
    a.demo_accounts = a.demo_accounts.or(cfg.demo_accounts);
    a.pace = a.pace.or(cfg.pace);
    a.out = a.out.or(cfg.out);
    a.metrics = a.metrics.or(cfg.metrics);
    a.metrics_allow_remote |= cfg.metrics_allow_remote;
    a.hlog = a.hlog.or(cfg.hlog);
    a.shm = a.shm.or(cfg.shm);
    a.engine_core = a.engine_core.or(cfg.engine_core);
    a.feed_core = a.feed_core.or(cfg.feed_core);
    a.card_core = a.card_core.or(cfg.card_core);
    a.spin |= cfg.spin;
    a.watchdog_ms = a.watchdog_ms.or(cfg.watchdog_ms);
    a.executor = a.executor.or(cfg.executor);
    a.dispatch_core = a.dispatch_core.or(cfg.dispatch_core);
    a.journal = a.journal.or(cfg.journal);
    // A core that is not there is a configuration error, not a silently unpinned thread.
    for (key, core) in [
        ("engine_core", a.engine_core),
        ("feed_core", a.feed_core),
        ("card_core", a.card_core),
        ("dispatch_core", a.dispatch_core),
    ] {
        if let Some(c) = core {
            pipeline::affinity::check_core(c)
                .with_context(|| format!("--{} / {key}", key.replace('_', "-")))?;
        }
    }
    a.journal_fsync = a.journal_fsync.or(cfg.journal_fsync);
    let journal = match &a.journal {
        Some(dir) => Some(JournalPlan {
            dir: dir.clone(),
            cfg: JournalConfig {
                fsync: match &a.journal_fsync {
                    Some(f) => parse_fsync(f)?,
                    None => JournalConfig::default().fsync,
                },
                ..JournalConfig::default()
            },
        }),
        None => None,
    };
    let fs = cfg.feed.clone().unwrap_or_default();
    a.listen_tcp = a.listen_tcp.or(fs.tcp.clone());
    a.listen_udp = a.listen_udp.or(fs.udp.clone());
    let live = if a.listen_tcp.is_some() || a.listen_udp.is_some() {
        let opts = FeedOptions {
            allow_remote: fs.allow_remote,
            max_connections: fs.max_connections.unwrap_or(16),
            max_per_address: fs.max_per_address,
            max_waiting: fs.max_waiting.unwrap_or(FeedOptions::default().max_waiting),
            first_frame_timeout: fs
                .first_frame_timeout_ms
                .map_or(FeedOptions::default().first_frame_timeout, Duration::from_millis),
            idle_timeout: fs
                .idle_timeout_ms
                .map_or(FeedOptions::default().idle_timeout, Duration::from_millis),
            max_seq_jump: fs.max_seq_jump.unwrap_or(FeedOptions::default().max_seq_jump),
            rate: fs.rate_per_second.map(|r| RateLimit { per_second: r, burst: fs.rate_burst.unwrap_or(r) }),
            ..FeedOptions::default()
        }
        .secret_from_env("LIQSCAN_FEED_SECRET")
        .map_err(anyhow::Error::msg)?;
        eprintln!(
            "feed listeners: authentication {}",
            if opts.auth.is_some() { "on (LIQSCAN_FEED_SECRET)" } else { "off" }
        );
        let guard = (fs.max_jump_bps.is_some() || fs.max_age_ms.is_some())
            .then(|| (fs.max_age_ms.map(|m| m * 1_000_000), fs.max_jump_bps.unwrap_or(u32::MAX)));
        Some(ListenPlan {
            tcp: a.listen_tcp.clone(),
            udp: a.listen_udp.clone(),
            listen_ms: a.listen_ms.or(fs.listen_ms).unwrap_or(0),
            opts,
            guard,
        })
    } else {
        None
    };
    let exec = parse_executor(a.executor.as_deref().unwrap_or("discard"))?;
    exec.check_writable()?;
    let backend = a.backend.clone().unwrap_or_else(|| "software".into());
    let pace = parse_pace(a.pace.as_deref().unwrap_or("flood"))?;
    let w = load(&a)?;
    let counters = Arc::new(Counters::default());
    counters.init_assets(w.assets);
    let published = Arc::new(Published::default());
    let _server = match &a.metrics {
        Some(addr) => {
            let x = Arc::new(Exposition::new(counters.clone(), w.symbols.clone()));
            let opts = MetricsOptions { allow_remote: a.metrics_allow_remote, ..Default::default() };
            let s = MetricsServer::start(addr, x, opts)?;
            eprintln!("metrics on http://{}/metrics (also /healthz, /readyz)", s.addr());
            Some(s)
        }
        None => None,
    };
    let pcfg = PipelineConfig { engine_core: a.engine_core, spin: a.spin };
    let plan = DispatchPlan {
        book: w.keeper.clone(),
        exec,
        opts: DispatchOptions {
            rules: cfg.dispatch.unwrap_or_default(),
            core: a.dispatch_core,
            spin: a.spin,
            queue: 1024,
            counters: Some(counters.clone()),
        },
    };
    // The rust-hdl simulation runs thousands of times slower than the card: give it time.
    let watchdog = a.watchdog_ms.unwrap_or(match backend.as_str() {
        "card-hdl" => 60_000,
        "card-verilog" => 5_000,
        _ => 500,
    });
    let r = if backend == "pcie" {
        let p = cfg
            .pcie
            .context("backend pcie needs a [pcie] section in the config (bar, dma, dma_len, dma_bus_addr)")?;
        let mem = LinkMemory::pcie(
            &p.bar,
            p.bar_len.or(Some(BAR_BYTES)),
            &p.dma,
            p.dma_len,
            p.dma_bus_addr,
            false,
        )?;
        let open = || {
            let link = open_link(mem, watchdog, a.spin)?;
            link.scratch_test()?;
            Ok(LinkEngine::new(link, w.ids.len(), w.assets)?)
        };
        let mut startup = None;
        let be = card_or_failover(open, w.ids.len(), w.assets, &counters, &mut startup)?;
        let mut r = drive_with(
            &w,
            be,
            pace,
            &pcfg,
            a.feed_core,
            Some(plan),
            counters.clone(),
            published.clone(),
            journal.as_ref(),
            live.as_ref(),
            a.out.as_deref(),
        )?;
        record_startup_failover(&mut r, startup);
        r
    } else {
        run_workload_out(
            &w,
            &backend,
            pace,
            &pcfg,
            a.feed_core,
            a.card_core,
            a.shm.as_deref(),
            watchdog,
            Some(plan),
            counters.clone(),
            published.clone(),
            journal.as_ref(),
            live.as_ref(),
            a.out.as_deref(),
        )?
    };
    let rep = &r.report;
    let breaches = r.changes.iter().filter(|c| c.breached).count();
    eprintln!(
        "backend {backend}{} -> {} at the end; {} messages ({} refused) in {:.2} s; {} breach events, {} recoveries; \
         {} fail-overs; digest {:016x}",
        r.card.map(|c| format!(" ({c} card)")).unwrap_or_default(),
        rep.backend,
        rep.messages,
        rep.refused,
        r.seconds,
        breaches,
        r.changes.len() - breaches,
        rep.failovers.len(),
        digest(&r.changes)
    );
    let ticks = rep.hist.engine.len();
    eprintln!(
        "{ticks} ticks in {:.2} s: {:.0} ticks/s (book load included)",
        r.seconds,
        ticks as f64 / r.seconds
    );
    if let Some(c) = &r.card_report {
        eprintln!(
            "card: {} commands, {} scans, {} events; {} core cycles simulated in {:.2} s ({:.0} cycles/s)",
            c.commands,
            c.scans,
            c.events,
            c.cycles,
            c.sim_seconds,
            c.cycles as f64 / c.sim_seconds.max(1e-9)
        );
    }
    for f in &rep.failovers {
        eprintln!("  fail-over: {f}");
    }
    if let Some(e) = &rep.last_refusal {
        eprintln!("  last refusal: {e}");
    }
    eprint!("{}", rep.hist.table());
    if let Some(d) = &r.dispatch {
        eprint!(
            "{}",
            percentile_table(&[("feed_to_order", &d.feed_to_order)])
                .lines()
                .nth(1)
                .map(|l| format!("{l}\n"))
                .unwrap_or_default()
        );
        eprintln!(
            "dispatch ({}): {} scan batches, {} orders built, {} sends ({} later: retries or waits), {} unsizable, {} backed off",
            d.executor,
            d.batches,
            d.stats.orders,
            d.stats.sends,
            d.later_sends,
            d.stats.unsizable,
            d.stats.backoff_skips
        );
    }
    if let Some(p) = &a.hlog {
        rep.hist.save_hlog(p).with_context(|| format!("writing {}", p.display()))?;
    }
    // `--out` was written as the scans happened (journal/events.rs).
    if let Some(sig) = crate::shutdown::signal_name() {
        eprintln!("{sig}: stopped cleanly");
    }
    Ok(())
}
