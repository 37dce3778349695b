//! Assembling and running a keeper: [`KeeperBuilder`] takes the configuration and the parts a
//! program brings (a workload, an executor, an in-process card, counters, a stop flag),
//! [`KeeperBuilder::start`] opens the journal, starts the events writer, dispatch, the engine,
//! the listeners and the intake (replay) thread, and [`KeeperHandle::finish`] waits for the
//! intake to end (or a stop), drains everything in order and returns the [`KeeperReport`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::config::{ExecutorSpec, JournalPlan, KeeperConfig};
use super::engine::{CardHost, CardLease, CardSummary, build_backend, preloaded_software};
use super::inputs::{InputPort, InputSource, MakeInputs, STREAM_SOURCE};
use super::workload::Workload;
use super::{KeeperError, Notes};
use crate::dispatch::{Completion, Executor, JsonlSink, LiquidationOrder, SubmitError};
use crate::feed::intake::FrameIntake;
use crate::feed::listen::{self, FeedOptions, Listener};
use crate::feed::recorded::Recorded;
use crate::feed::replay::{self, Pace};
use crate::guard::{GuardConfig, OracleGuard};
use crate::journal::events::{self, BreachChange, EventTap, EventWriter, EventsOut};
use crate::journal::keeper::{BookJournal, ClearedSlots, JournaledExecutor, SharedBookJournal, seed_guard};
use crate::journal::{FsyncPolicy, JournalError};
use crate::metrics::exposition::Exposition;
use crate::metrics::http::{MetricsOptions, MetricsServer};
use crate::metrics::{Counters, Published};
use crate::pipeline::dispatch::{
    DRAIN_LIMIT_NS, DispatchOptions, DispatchReport, DispatchSink, DispatchStage,
};
use crate::pipeline::{self, BreachSink, Clock, FeedMsg, FeedTx, PipelineConfig, PipelineReport};

/// Live stream number of the TCP listener (in the journal and the guard).
const LIVE_TCP: u8 = 1;
/// Live stream number of the UDP listener.
const LIVE_UDP: u8 = 2;

/// A breach event as the keeper reports it (and writes to `out`).
pub type Change = BreachChange;

/// Makes the executor on the dispatch thread (so it need not be `Send`).
pub type MakeExecutor = Box<dyn FnOnce() -> Box<dyn Executor> + Send>;

/// Entry point: `Keeper::builder()`.
pub struct Keeper;

impl Keeper {
    /// A builder over the default configuration (the demo book on the software engine,
    /// orders discarded).
    pub fn builder() -> KeeperBuilder {
        KeeperBuilder {
            cfg: KeeperConfig::default(),
            workload: None,
            engine: None,
            cards: None,
            executor: None,
            inputs: None,
            extra_sink: None,
            dispatch: true,
            counters: None,
            published: None,
            notes: Arc::new(|s: &str| tracing::info!("{s}")),
            stop: Stopper::new(),
        }
    }
}

/// Puts a keeper together; [`KeeperBuilder::start`] runs it.
pub struct KeeperBuilder {
    cfg: KeeperConfig,
    workload: Option<Workload>,
    engine: Option<pipeline::Backend>,
    cards: Option<Box<dyn CardHost>>,
    executor: Option<MakeExecutor>,
    inputs: Option<MakeInputs>,
    extra_sink: Option<Box<dyn BreachSink>>,
    dispatch: bool,
    counters: Option<Arc<Counters>>,
    published: Option<Arc<Published>>,
    notes: Notes,
    stop: Stopper,
}

impl KeeperBuilder {
    /// The whole configuration (replaces what the other setters set before).
    pub fn config(mut self, cfg: KeeperConfig) -> Self {
        self.cfg = cfg;
        self
    }

    /// The backend: software, card-software, card-hdl, card-verilog, routed, shm or pcie.
    pub fn backend(mut self, name: &str) -> Self {
        self.cfg.backend = Some(name.into());
        self
    }

    /// The embedded demo book with `accounts` accounts (when no venue is configured).
    pub fn demo(mut self, accounts: usize) -> Self {
        self.cfg.demo_accounts = Some(accounts);
        self
    }

    /// A book and ticks the program loaded itself (instead of the configured files).
    pub fn workload(mut self, w: Workload) -> Self {
        self.workload = Some(w);
        self
    }

    /// A backend the program opened itself (a card link with its own options), used instead
    /// of the configured one.
    pub fn engine(mut self, backend: pipeline::Backend) -> Self {
        self.engine = Some(backend);
        self
    }

    /// The write-ahead journal directory.
    pub fn journal(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cfg.journal = Some(dir.into());
        self
    }

    /// A live TCP feed listener on `addr`.
    pub fn listen_tcp(mut self, addr: &str) -> Self {
        self.cfg.feed.tcp = Some(addr.into());
        self
    }

    /// A live UDP feed listener on `addr`.
    pub fn listen_udp(mut self, addr: &str) -> Self {
        self.cfg.feed.udp = Some(addr.into());
        self
    }

    /// Where orders go: discard, stdout, jsonl:PATH or tcp:HOST:PORT.
    pub fn executor(mut self, spec: &str) -> Self {
        self.cfg.executor = Some(spec.into());
        self
    }

    /// An executor of the program's own, made on the dispatch thread (replaces the
    /// configured one; with a journal it is wrapped in the journaled executor as usual).
    pub fn executor_with(mut self, make: impl FnOnce() -> Box<dyn Executor> + Send + 'static) -> Self {
        self.executor = Some(Box::new(make));
        self
    }

    /// The keeper's input source, made from its port when the keeper starts (e.g.
    /// `liqscan_nats::inputs::source`, which reads the venue's JetStream input stream): it
    /// replaces the replay (the workload gives the book's shape, the source its ticks and
    /// account deltas) and runs until the keeper is stopped, or idle for `nats_idle_ms`.
    pub fn inputs_with(
        mut self,
        make: impl FnOnce(InputPort) -> Result<Box<dyn InputSource>, String> + Send + 'static,
    ) -> Self {
        self.inputs = Some(Box::new(make));
        self
    }

    /// Another consumer of every scan and message, on the engine thread beside the events log
    /// and dispatch (e.g. `liqscan_nats::CandidateTap`, which publishes candidates). It must
    /// not block; after a restart it also sees the reload's scans (the recovered breaches).
    pub fn sink_with(mut self, sink: Box<dyn BreachSink>) -> Self {
        self.extra_sink = Some(sink);
        self
    }

    /// No dispatch stage: breaches are recorded, no order is built (benchmarks of the scan).
    pub fn without_dispatch(mut self) -> Self {
        self.dispatch = false;
        self
    }

    /// Serve metrics on `addr` (loopback unless the configuration allows remote).
    pub fn metrics(mut self, addr: &str) -> Self {
        self.cfg.metrics = Some(addr.into());
        self
    }

    /// The counters the metrics read (shared with a program's own endpoint).
    pub fn counters(mut self, counters: Arc<Counters>, published: Arc<Published>) -> Self {
        self.counters = Some(counters);
        self.published = Some(published);
        self
    }

    /// Cores for the engine, feed and dispatch threads.
    pub fn cores(mut self, engine: Option<usize>, feed: Option<usize>, dispatch: Option<usize>) -> Self {
        (self.cfg.engine_core, self.cfg.feed_core, self.cfg.dispatch_core) = (engine, feed, dispatch);
        self
    }

    /// Breach events as JSONL to `path` ("-": standard output).
    pub fn events(mut self, path: impl Into<PathBuf>) -> Self {
        self.cfg.out = Some(path.into());
        self
    }

    /// The emulated card for the card-software and card-hdl backends.
    pub fn card_host(mut self, cards: impl CardHost + 'static) -> Self {
        self.cards = Some(Box::new(cards));
        self
    }

    /// Where notes go (default: `tracing` at info level).
    pub fn notes(mut self, notes: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.notes = Arc::new(notes);
        self
    }

    /// Stop when `flag` is raised (a signal handler's flag); `reason` names what raised it.
    pub fn stop_on(mut self, flag: &'static AtomicBool, reason: fn() -> Option<&'static str>) -> Self {
        self.stop = Stopper { flag: StopFlag::Static(flag), reason: Some(reason) };
        self
    }

    /// The configuration as it stands.
    pub fn config_ref(&self) -> &KeeperConfig {
        &self.cfg
    }

    /// Checks the configuration, loads the workload, builds the backend and starts every
    /// thread. Errors leave nothing running.
    pub fn start(self) -> Result<KeeperHandle, KeeperError> {
        let KeeperBuilder {
            mut cfg,
            workload,
            engine,
            cards,
            executor,
            inputs,
            extra_sink,
            dispatch,
            counters,
            published,
            notes,
            stop,
        } = self;
        cfg.check_cores()?;
        let journal = cfg.journal_plan()?;
        if let Some(url) = &cfg.nats {
            if inputs.is_none() {
                return Err(KeeperError::Config(format!(
                    "nats {url}: the input stream is read by the liqscan-nats crate; build the keeper \
                     with inputs_with(liqscan_nats::inputs::source(..))"
                )));
            }
            if !cfg.ticks.is_empty() || !cfg.bars.is_empty() {
                // The publisher's configuration may be the keeper's too: say it, read nothing.
                notes(&format!(
                    "nats {url}: the input stream brings the ticks; {} tick files and {} bars \
                     of the configuration are not read",
                    cfg.ticks.len(),
                    cfg.bars.len()
                ));
                cfg.ticks.clear();
                cfg.bars.clear();
            }
        }
        let live = if cfg.feed.listens() || inputs.is_some() {
            let opts = cfg.feed.options()?;
            let what = if cfg.feed.listens() { "feed listeners" } else { "input stream" };
            notes(&format!(
                "{what}: authentication {}",
                if opts.auth.is_some() { "on (LIQSCAN_FEED_SECRET)" } else { "off" }
            ));
            Some(opts)
        } else {
            None
        };
        let exec = cfg.executor_spec()?;
        cfg.refuse_inputs_as_outputs(&exec)?;
        if executor.is_none() {
            exec.check_writable()?;
        }
        if let Some(p) = &cfg.hlog {
            super::config::check_writable_file(&format!("--hlog {}", p.display()), p)?;
        }
        let pace = cfg.pace()?;
        let mut w = match workload {
            Some(w) => w,
            None => {
                let t = Instant::now();
                let w = Workload::load(&cfg)?;
                if cfg.venue.is_some() {
                    notes(&format!(
                        "workload: {} accounts and {} messages read in {:.2} s",
                        w.ids.len(),
                        w.msgs.len(),
                        t.elapsed().as_secs_f64()
                    ));
                }
                w
            }
        };
        let counters = counters.unwrap_or_default();
        counters.init_assets(w.assets);
        let published = published.unwrap_or_default();
        let server = match &cfg.metrics {
            Some(addr) => {
                let x = Arc::new(Exposition::new(counters.clone(), w.symbols.clone()));
                let opts = MetricsOptions {
                    allow_remote: cfg.metrics_allow_remote.unwrap_or(false),
                    ..Default::default()
                };
                let s = MetricsServer::start(addr, x, opts).map_err(KeeperError::other)?;
                notes(&format!("metrics on http://{}/metrics (also /healthz, /readyz)", s.addr()));
                Some(s)
            }
            None => None,
        };
        // Without a journal or an input stream the book at the front of the workload goes into
        // the software engine in one bulk load, and the replay starts after it. (A journal
        // records the book message by message, and an input stream brings its own.)
        let (backend, mut lease, first_seq) = match engine {
            Some(b) => (b, CardLease::default(), 0),
            None if cfg.backend_name() == "software" && journal.is_none() && inputs.is_none() => {
                let t = Instant::now();
                let (engine, n) = preloaded_software(&w.msgs, w.ids.len(), w.assets);
                if n > 0 {
                    notes(&format!(
                        "book: {n} accounts bulk-loaded into the software engine in {:.2} s",
                        t.elapsed().as_secs_f64()
                    ));
                    // Dispatch's book takes them too: a leading upsert that is not the book
                    // file's account (a workload a program built) would otherwise reach the
                    // engine only. The file's own keep the positions read.
                    for i in 0..n {
                        let (slot, terms) = w.msgs.upsert(i).expect("a leading upsert");
                        w.keeper.upsert(slot, terms);
                    }
                    w.msgs.drop_front(n);
                }
                (engine, CardLease::default(), n as u64)
            }
            None => {
                let (b, lease) =
                    build_backend(&cfg, w.ids.len(), w.assets, cards.as_deref(), &counters, &notes)?;
                (b, lease, 0)
            }
        };
        let parts = Parts {
            cfg: &cfg,
            journal,
            live,
            exec,
            executor,
            inputs,
            extra_sink,
            dispatch,
            pace,
            first_seq,
            counters,
            published,
            notes,
            stop,
        };
        match start_with(w, backend, parts) {
            Ok(mut h) => {
                h.lease = lease;
                h.server = server;
                Ok(KeeperHandle { running: Some(h) })
            }
            Err(e) => {
                lease.teardown();
                Err(e)
            }
        }
    }
}

/// Raises a keeper's stop: intake ends before its next message, the live window closes, and
/// [`KeeperHandle::finish`] drains and reports. Clone it into a signal handler or a thread.
#[derive(Clone)]
pub struct Stopper {
    flag: StopFlag,
    reason: Option<fn() -> Option<&'static str>>,
}

#[derive(Clone)]
enum StopFlag {
    Owned(Arc<AtomicBool>),
    Static(&'static AtomicBool),
}

impl Stopper {
    fn new() -> Stopper {
        Stopper { flag: StopFlag::Owned(Arc::new(AtomicBool::new(false))), reason: None }
    }

    fn flag(&self) -> &AtomicBool {
        match &self.flag {
            StopFlag::Owned(f) => f,
            StopFlag::Static(f) => f,
        }
    }

    /// Asks the keeper to stop.
    pub fn stop(&self) {
        self.flag().store(true, Ordering::Relaxed);
    }

    /// True once a stop was asked for.
    pub fn requested(&self) -> bool {
        self.flag().load(Ordering::Relaxed)
    }

    /// What asked for the stop (a signal's name), if one was asked for.
    fn reason(&self) -> Option<&'static str> {
        match self.reason {
            Some(f) => f(),
            None => self.requested().then_some("stop requested"),
        }
    }
}

/// What `start` hands on to the thread set-up.
struct Parts<'a> {
    cfg: &'a KeeperConfig,
    journal: Option<JournalPlan>,
    live: Option<FeedOptions>,
    exec: ExecutorSpec,
    executor: Option<MakeExecutor>,
    inputs: Option<MakeInputs>,
    extra_sink: Option<Box<dyn BreachSink>>,
    dispatch: bool,
    pace: Pace,
    /// Messages at the front of the workload that the engine already holds (the bulk-loaded
    /// book): the replay's first message has this sequence number.
    first_seq: u64,
    counters: Arc<Counters>,
    published: Arc<Published>,
    notes: Notes,
    stop: Stopper,
}

/// A running keeper. [`KeeperHandle::finish`] ends the threads and returns the report; a
/// handle dropped without it stops the keeper the same way and drops the report.
pub struct KeeperHandle {
    running: Option<Running>,
}

/// The threads and state of a running keeper.
struct Running {
    tx: FeedTx,
    clock: Clock,
    engine: JoinHandle<PipelineReport>,
    stage: Option<DispatchStage>,
    event_writer: EventWriter,
    book_journal: Option<SharedBookJournal>,
    listeners: Vec<(&'static str, Listener)>,
    /// The program's input source and what it reads.
    inputs: Option<(String, Box<dyn InputSource>)>,
    intake: JoinHandle<Result<u64, JournalError>>,
    /// The workload's messages, the bulk-loaded book included.
    messages: u64,
    /// Messages the engine took in the bulk load, before the pipeline started.
    preloaded: u64,
    started: Instant,
    lease: CardLease,
    server: Option<MetricsServer>,
    counters: Arc<Counters>,
    notes: Notes,
    stop: Stopper,
    /// Set by the dispatch thread if the orders journal could not be opened.
    orders_failed: Arc<Mutex<Option<KeeperError>>>,
}

/// Everything one keeper run produced.
pub struct KeeperReport {
    /// The pipeline's report.
    pub report: PipelineReport,
    /// Breach changes in order.
    pub changes: Vec<Change>,
    /// Wall time from the start of the intake, seconds.
    pub seconds: f64,
    /// The in-process card's engine name, if any.
    pub card: Option<&'static str>,
    /// What the in-process card did, if any.
    pub card_report: Option<CardSummary>,
    /// What the dispatch stage did, if there was one.
    pub dispatch: Option<DispatchReport>,
    /// Replayed (and journaled) messages taken before the intake ended.
    pub replayed: u64,
    /// The signal or request that stopped the keeper early, if one did.
    pub stopped_by: Option<&'static str>,
}

impl KeeperReport {
    /// Breach events (accounts newly breached).
    pub fn breaches(&self) -> usize {
        self.changes.iter().filter(|c| c.breached).count()
    }

    /// Orders dispatch built (0 without a dispatch stage).
    pub fn orders(&self) -> u64 {
        self.dispatch.as_ref().map_or(0, |d| d.stats.orders)
    }
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

/// Records breach changes (for the events log and the digest) and hands scans to dispatch.
struct KeeperSink {
    events: EventTap,
    dispatch: Option<DispatchSink>,
    /// With a journal: cleared slots for the journaled executor (closes their orders).
    cleared: Option<ClearedSlots>,
    /// The program's own consumer ([`KeeperBuilder::sink_with`]).
    extra: Option<Box<dyn BreachSink>>,
}

impl BreachSink for KeeperSink {
    #[inline]
    fn on_message(&mut self, seq: u64, t_feed: u64, msg: &FeedMsg) {
        self.events.on_message();
        if let Some(d) = &mut self.dispatch {
            d.on_message(seq, t_feed, msg);
        }
        if let Some(x) = &mut self.extra {
            x.on_message(seq, t_feed, msg);
        }
    }

    #[inline]
    fn on_refused(&mut self, seq: u64, t_feed: u64, msg: &FeedMsg) {
        // The events log counts every message (a restart's reload skips by count).
        self.events.on_message();
        if let Some(x) = &mut self.extra {
            x.on_refused(seq, t_feed, msg);
        }
    }

    fn on_scan(&mut self, seq: u64, breached: &[u32], cleared: &[u32], at_risk: &[u32]) {
        if let Some(c) = &self.cleared {
            c.push(cleared);
        }
        if let Some(d) = &mut self.dispatch {
            d.on_scan(seq, breached, cleared, at_risk);
        }
        if let Some(x) = &mut self.extra {
            x.on_scan(seq, breached, cleared, at_risk);
        }
        self.events.on_scan(seq, breached, cleared);
    }

    fn finish(&mut self) {
        if let Some(x) = &mut self.extra {
            x.finish();
        }
        if let Some(d) = &mut self.dispatch {
            d.finish();
        }
    }
}

/// An executor that takes nothing: what dispatch gets when the orders journal cannot be
/// opened (the keeper is stopping; sending unjournaled orders would break exactly-once).
struct Refuse(String);

impl Executor for Refuse {
    fn name(&self) -> &str {
        "refused"
    }

    fn submit(&mut self, _: &LiquidationOrder) -> Result<(), SubmitError> {
        Err(SubmitError::Unavailable { executor: "refused".into(), detail: self.0.clone() })
    }

    fn poll(&mut self, _: &mut Vec<Completion>) {}
}

/// Opens the journal (recovering the book and the events log), starts the events writer,
/// dispatch, the engine, the listeners and the intake thread. The book journal is written on
/// the intake thread before each push; orders go through a [`JournaledExecutor`] on the
/// dispatch thread.
fn start_with(mut w: Workload, backend: pipeline::Backend, p: Parts<'_>) -> Result<Running, KeeperError> {
    let Parts {
        cfg,
        journal,
        live,
        exec,
        executor,
        inputs,
        extra_sink,
        dispatch,
        pace,
        first_seq,
        counters,
        published,
        notes,
        stop,
    } = p;
    let slots = w.ids.len();
    // An input source replaces the replay: the stream brings the book and the ticks.
    if inputs.is_some() {
        w.msgs.clear();
    }
    // The counters' clock: per-asset price ages are read on it at each scrape.
    let clock: Clock = counters.clock;
    let (tx, rx) = pipeline::feed_queue(4096, counters.clone());
    let mut book_journal = None;
    // Slots breached in the recovered book, each with its breach episode.
    let mut breached_at_start = BTreeMap::new();
    let mut reload = Vec::new();
    let out = cfg.out.as_deref();
    let stdout_out = out.is_some_and(|p| p.as_os_str() == "-");
    let mut event_outs = Vec::new();
    let cleared = journal.as_ref().map(|_| ClearedSlots::default());
    let ev = |e: events::EventsError| KeeperError::other(e);
    if let Some(jp) = &journal {
        let (mut bj, rec) = BookJournal::open(&jp.dir, w.ids.len(), w.assets, jp.cfg.clone())
            .map_err(|e| KeeperError::context(format!("journal {}", jp.dir.join("book").display()), e))?;
        bj.on_sync(counters.journal_sync_hook(false));
        notes(&format!(
            "journal {}: book {rec}; {} messages of {} done",
            jp.dir.display(),
            bj.messages(),
            w.msgs.len()
        ));
        if bj.messages() > w.msgs.len() as u64 {
            return Err(KeeperError::Config(format!(
                "journal {} holds more messages than this workload: another workload's journal?",
                jp.dir.display()
            )));
        }
        // The events log: `out` if it is a file, else one in the journal. A restart cuts a
        // torn line and rebuilds the events the killed run had not written.
        let log = match out {
            Some(p) if !stdout_out => p.to_path_buf(),
            _ => jp.dir.join("events.jsonl"),
        };
        if bj.state().seq > 0 {
            let r =
                events::recover(&log, &jp.dir.join("book"), bj.position(), &w.ids, &w.held).map_err(|e| {
                    KeeperError::context(format!("continuing the events file {}", log.display()), e)
                })?;
            notes(&format!("events {}: {r}", log.display()));
            breached_at_start = r.episodes;
            reload = bj.reload_messages();
            event_outs.push(events::append(&log).map_err(ev)?);
        } else {
            event_outs.push(events::create(&log).map_err(ev)?);
        }
        book_journal = Some(SharedBookJournal(Arc::new(Mutex::new(bj))));
    } else if let Some(p) = out.filter(|_| !stdout_out) {
        event_outs.push(events::create(p).map_err(ev)?);
    }
    if stdout_out {
        event_outs.push(EventsOut::Stdout);
    }
    // The reload's scan reports the recovered breaches again: the events log has them.
    // The ids and dispatch's views move to their threads: at 10 M accounts each copy is
    // hundreds of MB at the run's peak.
    let (event_writer, tap) = EventWriter::start(event_outs, std::mem::take(&mut w.ids), reload.len() as u64);
    // A restart over a journal appends to the order file rather than truncating it.
    let resume = book_journal.as_ref().is_some_and(|b| b.0.lock().expect("book journal").state().seq > 0);
    let durable = journal.as_ref().is_some_and(|j| j.cfg.fsync == FsyncPolicy::Always);
    let orders_failed = Arc::new(Mutex::new(None));
    let (stage, dsink) = if dispatch {
        let jctx = journal
            .clone()
            .map(|jp| (jp, slots, w.assets, breached_at_start, cleared.clone().expect("cleared")));
        let (notes, failed, stop) = (notes.clone(), orders_failed.clone(), stop.clone());
        let sync_hook = counters.journal_sync_hook(true);
        let make = Box::new(move || {
            let inner = match executor {
                Some(make) => make(),
                None => exec.make_for(resume, durable, &*notes).unwrap_or_else(|err| {
                    notes(&format!("executor: {}; orders are discarded", super::chain(&err)));
                    Box::new(JsonlSink::new("discard", std::io::sink()))
                }),
            };
            let Some((jp, slots, assets, breached, cleared)) = jctx else { return inner };
            match JournaledExecutor::open(&jp.dir, slots, assets, jp.cfg, inner, &breached, cleared) {
                Ok((mut ex, rec, or)) => {
                    ex.on_sync(sync_hook);
                    notes(&format!(
                        "journal {}: orders {rec}; {} pending re-sent, {} sent awaited (not ordered again), {} closed (breach cleared)",
                        jp.dir.display(),
                        or.resent.len(),
                        or.awaited.len(),
                        or.closed.len()
                    ));
                    for (id, slot) in &or.resent {
                        notes(&format!("journal: re-sent pending order {id} (slot {slot})"));
                    }
                    Box::new(ex) as Box<dyn Executor>
                }
                Err(e) => {
                    // No order may leave unjournaled: refuse them all and stop the keeper.
                    let what = format!("journal {}", jp.dir.join("orders").display());
                    let detail = format!("{what}: {e}");
                    *failed.lock().expect("orders failure") = Some(KeeperError::context(what, e));
                    stop.stop();
                    Box::new(Refuse(detail))
                }
            }
        });
        let opts = DispatchOptions {
            rules: cfg.dispatch.unwrap_or_default(),
            core: cfg.dispatch_core,
            spin: cfg.spins(),
            queue: 1024,
            counters: Some(counters.clone()),
        };
        let (stage, sink) = DispatchStage::start(std::mem::take(&mut w.keeper), w.assets, make, opts, clock);
        (Some(stage), Some(sink))
    } else {
        (None, None)
    };
    let sink = KeeperSink { events: tap, dispatch: dsink, cleared, extra: extra_sink };
    let pcfg = PipelineConfig { engine_core: cfg.engine_core, spin: cfg.spins(), warm_up: w.held.clone() };
    let engine = pipeline::spawn(backend, rx, Box::new(sink), pcfg, clock, counters.clone(), published);
    if let Some(c) = cfg.feed_core {
        pipeline::pin("feed thread", c);
    }
    let started = Instant::now();
    // The recovered book goes to the engine before any live frame can.
    if let Some(bj) = &book_journal {
        let k = bj.0.lock().expect("book journal").position();
        for m in reload {
            tx.push(pipeline::Stamped { seq: k, t_feed: clock.now(), msg: m });
        }
    }
    let mut listeners = vec![];
    let mut source = None;
    if let Some(base) = live {
        let opts = live_options(&w, slots, base, cfg, &book_journal, &notes);
        let mut started = Ok(());
        if cfg.feed.listens() {
            started =
                start_listeners(&mut listeners, &opts, cfg, &book_journal, (&tx, clock, &counters, &notes));
        }
        if let (Ok(()), Some(make)) = (&started, inputs) {
            started = start_inputs(make, opts, &book_journal, (&tx, clock, &counters, &notes))
                .map(|s| source = Some(s));
        }
        if let Err(e) = started {
            for (_, l) in listeners {
                l.stop();
            }
            if let Some((_, s)) = source {
                s.stop();
            }
            replay::end(&tx, &clock, u64::MAX);
            let _ = engine.join();
            if let Some(s) = stage {
                s.finish();
            }
            let _ = event_writer.finish();
            return Err(e);
        }
    }
    // A stop ends the replay before its next message.
    counters.health.set_ready(true);
    let messages = first_seq + w.msgs.len() as u64;
    let msgs = std::mem::take(&mut w.msgs);
    let window = LiveWindow {
        listen_ms: cfg.feed.listens().then(|| cfg.feed.listen_ms.unwrap_or(0)),
        inputs: source.as_ref().map(|_| (cfg.nats_idle_ms, counters.clone())),
    };
    let (itx, ibj, istop, inotes) = (tx.clone(), book_journal.clone(), stop.clone(), notes.clone());
    let intake = std::thread::Builder::new()
        .name("liqscan-intake".into())
        .spawn(move || intake(&msgs, first_seq, pace, clock, &itx, ibj.as_ref(), &istop, window, &inotes))
        .map_err(|e| KeeperError::context("spawning the intake thread", e))?;
    Ok(Running {
        tx,
        clock,
        engine,
        stage,
        event_writer,
        book_journal,
        listeners,
        inputs: source,
        intake,
        messages,
        preloaded: first_seq,
        started,
        lease: CardLease::default(),
        server: None,
        counters,
        notes,
        stop,
        orders_failed,
    })
}

/// The options every live stream shares: the book's bounds and zero-price assets, and one
/// oracle guard (seeded from the journal) for all of them.
fn live_options(
    w: &Workload,
    slots: usize,
    base: FeedOptions,
    cfg: &KeeperConfig,
    book_journal: &Option<SharedBookJournal>,
    notes: &Notes,
) -> FeedOptions {
    let mut opts = base;
    opts.slots = Some(slots);
    opts.assets = Some(w.assets);
    opts.zero_price_ok = w.zero_price_ok.as_slice().into();
    if let Some((age, bps)) = cfg.feed.guard() {
        let mut g = OracleGuard::new(GuardConfig::uniform(w.assets, age, bps));
        if let Some(bj) = book_journal {
            let n = seed_guard(bj.0.lock().expect("book journal").state(), &mut g);
            notes(&format!("feed guard seeded with the journal's last prices of {n} assets"));
        }
        opts.guard = Some(Arc::new(Mutex::new(g)));
    }
    opts
}

/// Makes the program's input source on its port: the live options on stream
/// [`STREAM_SOURCE`], journaled, resuming after the journal's last sequence of it.
fn start_inputs(
    make: MakeInputs,
    mut opts: FeedOptions,
    book_journal: &Option<SharedBookJournal>,
    (tx, clock, counters, notes): (&FeedTx, Clock, &Arc<Counters>, &Notes),
) -> Result<(String, Box<dyn InputSource>), KeeperError> {
    opts.source = STREAM_SOURCE;
    if let Some(bj) = book_journal {
        opts.resume_after = bj.0.lock().expect("book journal").live_seq(STREAM_SOURCE);
        opts.log = Some(Arc::new(bj.clone()));
    }
    let intake = FrameIntake::new(tx.clone(), clock, counters.clone(), opts);
    let port = InputPort { intake, notes: notes.clone() };
    let s = make(port).map_err(KeeperError::Config)?;
    Ok((s.describe(), s))
}

/// Starts the live listeners, each its own stream: journaled frames carry (stream, frame
/// number), and after a restart a stream's frames up to its last journaled number are
/// duplicates.
fn start_listeners(
    listeners: &mut Vec<(&'static str, Listener)>,
    opts: &FeedOptions,
    cfg: &KeeperConfig,
    book_journal: &Option<SharedBookJournal>,
    (tx, clock, counters, notes): (&FeedTx, Clock, &Arc<Counters>, &Notes),
) -> Result<(), KeeperError> {
    for (kind, source, addr) in [("tcp", LIVE_TCP, &cfg.feed.tcp), ("udp", LIVE_UDP, &cfg.feed.udp)] {
        let Some(a) = addr else { continue };
        let mut o = opts.clone();
        o.source = source;
        if let Some(bj) = book_journal {
            o.resume_after = bj.0.lock().expect("book journal").live_seq(source);
            o.log = Some(Arc::new(bj.clone()));
        }
        let resumed = o.resume_after;
        let l = match kind {
            "tcp" => listen::tcp_with(a, tx.clone(), clock, counters.clone(), o),
            _ => listen::udp_with(a, tx.clone(), clock, counters.clone(), o),
        }
        .map_err(|e| KeeperError::context(format!("feed {kind} {a}"), e))?;
        match resumed {
            Some(last) => notes(&format!("feed {kind} listening on {} (frames after {last})", l.addr())),
            None => notes(&format!("feed {kind} listening on {}", l.addr())),
        }
        listeners.push((kind, l));
    }
    Ok(())
}

/// How long live intake stays open after the replay.
struct LiveWindow {
    /// The listeners' window (`listen_ms`), if there are listeners.
    listen_ms: Option<u64>,
    /// With an input source: its idle bound (`nats_idle_ms`; none: until stopped) and the
    /// counters whose `inputs.received` tells when a message last came.
    inputs: Option<(Option<u64>, Arc<Counters>)>,
}

/// The intake thread: replays the workload (journaling each message first if there is a
/// journal), then keeps the live feeds open for `listen_ms`, and an input source until it
/// has been idle `nats_idle_ms` (or, without that bound, until stopped), unless stopped.
#[allow(clippy::too_many_arguments)]
fn intake(
    msgs: &Recorded,
    first_seq: u64,
    pace: Pace,
    clock: Clock,
    tx: &FeedTx,
    book_journal: Option<&SharedBookJournal>,
    stop: &Stopper,
    window: LiveWindow,
    notes: &Notes,
) -> Result<u64, JournalError> {
    let n = match book_journal {
        None => {
            let r = replay::replay_until(msgs.iter(), pace, &clock, first_seq, stop.flag(), |_, m| {
                tx.push(m);
                Ok::<(), std::convert::Infallible>(())
            });
            first_seq + r.unwrap_or_else(|e| match e {})
        }
        Some(bj) => {
            let k = bj.0.lock().expect("book journal").messages();
            // Journal and push under one lock: the listeners journal and push under it too.
            let n =
                replay::replay_until(msgs.iter_from(k as usize), pace, &clock, k, stop.flag(), |ts, m| {
                    let mut j = bj.0.lock().expect("book journal");
                    // The journal position, not the replay's message number: live frames
                    // journaled between replay messages take positions too.
                    let at = j.position();
                    j.record(&m.msg, ts)?;
                    tx.push(pipeline::Stamped { seq: at, ..m });
                    Ok::<(), JournalError>(())
                })?;
            bj.0.lock().expect("book journal").sync()?;
            k + n
        }
    };
    if let Some(ms) = window.listen_ms
        && !stop.requested()
    {
        notes(&format!("replay done ({n} messages); live feeds open for {ms} ms more"));
        let until = Instant::now() + Duration::from_millis(ms);
        while !stop.requested() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    if let Some((idle_ms, counters)) = window.inputs {
        let received = || counters.inputs.received.load(Ordering::Relaxed);
        let (mut last, mut since) = (received(), Instant::now());
        let idle = idle_ms.map(Duration::from_millis);
        while !stop.requested() && idle.is_none_or(|d| since.elapsed() < d) {
            std::thread::sleep(Duration::from_millis(10));
            let now = received();
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        if !stop.requested()
            && let Some(ms) = idle_ms
        {
            notes(&format!("inputs: no message for {ms} ms; stopping ({last} received)"));
        }
    }
    Ok(n)
}

impl KeeperHandle {
    /// The keeper (there until `finish` or drop take it).
    fn running(&self) -> &Running {
        self.running.as_ref().expect("a handle holds its keeper until finish")
    }

    /// A handle that stops this keeper's intake from another thread.
    pub fn stopper(&self) -> Stopper {
        self.running().stop.clone()
    }

    /// Asks the keeper to stop (intake ends before its next message).
    pub fn stop(&self) {
        self.running().stop.stop();
    }

    /// The live listeners' addresses (to learn the port of a `:0` listener).
    pub fn listen_addrs(&self) -> Vec<(&'static str, std::net::SocketAddr)> {
        self.running().listeners.iter().map(|(k, l)| (*k, l.addr())).collect()
    }

    /// The metrics endpoint's address, if one is served.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.running().server.as_ref().map(|s| s.addr())
    }

    /// Waits for the intake to end (the replay and the live window, or a stop), then stops
    /// the listeners, drains the engine and dispatch (dispatch within its bound), syncs the
    /// journal, finishes the events log, stops an in-process card and returns the report.
    pub fn finish(mut self) -> Result<KeeperReport, KeeperError> {
        self.running.take().expect("a handle holds its keeper until finish").finish()
    }
}

impl Drop for KeeperHandle {
    /// A keeper dropped unfinished (an early return in the embedding program) is stopped and
    /// drained, not left running.
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.stop.stop();
            let _ = r.finish();
        }
    }
}

impl Running {
    fn finish(self) -> Result<KeeperReport, KeeperError> {
        let mut lease = self.lease;
        let r = self.intake.join().map_err(|_| KeeperError::Panicked("intake"));
        let n = match r.and_then(|r| r.map_err(|e| KeeperError::context("journal", e))) {
            Ok(n) => n,
            Err(e) => {
                for (_, l) in self.listeners {
                    l.stop();
                }
                if let Some((_, s)) = self.inputs {
                    s.stop();
                }
                replay::end(&self.tx, &self.clock, u64::MAX);
                let _ = self.engine.join();
                let _ = self.event_writer.finish();
                lease.teardown();
                return Err(e);
            }
        };
        let notes = &self.notes;
        self.counters.health.set_ready(false);
        let stopped_by = self.stop.reason();
        if let Some(sig) = stopped_by {
            self.counters.health.set_stopping();
            notes(&format!(
                "{sig}: intake stopped after {n} of {} messages; draining dispatch (at most {} s) and flushing the journal",
                self.messages,
                DRAIN_LIMIT_NS / 1_000_000_000
            ));
        }
        for (kind, l) in self.listeners {
            let r = l.stop();
            notes(&format!(
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
            ));
        }
        if let Some((what, s)) = self.inputs {
            let r = s.stop();
            notes(&super::inputs::report_line(&what, &r, &self.counters));
        }
        replay::end(&self.tx, &self.clock, n);
        let engine = self.engine.join().map_err(|_| KeeperError::Panicked("engine"));
        let dispatch = self.stage.map(DispatchStage::finish);
        let card = lease.card.as_ref().map(|c| c.name());
        let card_report = lease.teardown();
        let mut report = engine?;
        // The bulk-loaded book counts as applied, as its upserts did when they were streamed.
        report.messages += self.preloaded;
        // Every frame the listeners journaled is on disk before the report says it was taken.
        if let Some(bj) = &self.book_journal {
            bj.0.lock()
                .expect("book journal")
                .sync()
                .map_err(|e| KeeperError::context("journal: final sync", e))?;
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let changes = self.event_writer.finish().map_err(KeeperError::Config)?;
        if let Some(e) = self.orders_failed.lock().expect("orders failure").take() {
            return Err(e);
        }
        // A fail-over before the first message comes first in the report.
        if let Some((why, ns)) = lease.startup_failover.take() {
            report.failovers.insert(0, why);
            report.failover_ns.insert(0, ns);
        }
        Ok(KeeperReport { report, changes, seconds, card, card_report, dispatch, replayed: n, stopped_by })
    }
}
