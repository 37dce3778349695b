//! # The host pipeline: feed -> engine or card -> bitmap -> dispatch, on pinned threads
//!
//! ```text
//!  feed thread (replay pacer,        engine thread (pinned, busy-polling)
//!  TCP/UDP listener)                 ─────────────────────────────────────────────────────
//!  Stamped{seq, t_feed, msg} ──SPSC──> pop ─> FeedMsg::apply_to ─> Step: changed words ─> diff
//!   (bounded ArrayQueue; full:        (any ScanEngine: software,     vs. what dispatch was told
//!    the feed spins and counts         or the card in a fail-over     ─> BreachSink (dispatch)
//!    back-pressure, never drops)       engine with its mirror)        ─> stage histograms
//! ```
//!
//! The engine thread allocates nothing, takes no lock and makes no system call per message:
//! messages are `Copy`, every buffer is sized at start, histograms are pre-sized, the clock is
//! the vDSO monotonic clock. The card runs inside a
//! [`FailoverEngine`](crate::engine::failover::FailoverEngine): when it stops answering or
//! answers wrongly, that engine rebuilds a software engine from the host's copy of the book
//! (terms and prices of every command the card was given) and replays the message that was in
//! flight on it; the thread sees the new entry in [`ScanEngine::failovers`], logs it and
//! counts it, and the dispatch side sees exactly the breaches a software-only run gives (see
//! `tests/link_failover.rs`). Fail-over is the one place that allocates, once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam::queue::ArrayQueue;
use liqscan_hdl::abi::{Coeff, MAX_SOFTWARE_TERMS, PriceEntry};

use crate::bitmap;
use crate::engine::{EngineError, ScanEngine, Step};
use crate::metrics::{Counters, Published, StageHistograms};
use crate::wait::WaitStrategy;

pub mod affinity;
pub mod dispatch;
pub mod keeper_book;

pub use affinity::pin;

/// This thread's scheduler accounting from `/proc/thread-self/schedstat`: nanoseconds on a
/// CPU, nanoseconds runnable but waiting for one, and timeslices. `None` where the kernel has
/// no such file. A system call: read it before and after a run, never per message.
pub fn thread_sched() -> Option<SchedStat> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some(SchedStat { run_ns: it.next()??, wait_ns: it.next()??, slices: it.next()?? })
}

/// See [`thread_sched`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedStat {
    /// Time on a CPU.
    pub run_ns: u64,
    /// Time runnable, waiting for a CPU (taken by other threads or processes).
    pub wait_ns: u64,
    /// Timeslices run.
    pub slices: u64,
}

impl SchedStat {
    /// `self - earlier`.
    pub fn since(&self, earlier: &SchedStat) -> SchedStat {
        SchedStat {
            run_ns: self.run_ns.saturating_sub(earlier.run_ns),
            wait_ns: self.wait_ns.saturating_sub(earlier.wait_ns),
            slices: self.slices.saturating_sub(earlier.slices),
        }
    }
}

/// A monotonic nanosecond clock shared by the threads of one pipeline.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    base: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { base: Instant::now() }
    }
}

impl Clock {
    /// Nanoseconds since the clock was made.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

/// One message into the pipeline. `Copy`, fixed size: nothing to allocate or free. An upsert
/// carries room for [`MAX_SOFTWARE_TERMS`] terms inline (520 bytes), so every message is that
/// size: boxing the terms would allocate per upsert on the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedMsg {
    /// One asset's prices.
    Tick {
        /// Asset index.
        asset: u16,
        /// Quantised prices.
        price: PriceEntry,
    },
    /// Insert or replace an account.
    Upsert {
        /// Slot.
        slot: u32,
        /// Terms used.
        n: u8,
        /// Terms (first `n`); up to [`MAX_SOFTWARE_TERMS`], as the software engine takes them
        /// (the card backend keeps accounts the card cannot hold on the host).
        terms: [Coeff; MAX_SOFTWARE_TERMS],
    },
    /// Empty a slot.
    Remove {
        /// Slot.
        slot: u32,
    },
    /// No more messages: the engine thread finishes.
    End,
}

// The size the queue and every message copy pay for the inline terms (see [`FeedMsg`]).
const _: () = assert!(std::mem::size_of::<FeedMsg>() == 520);

impl FeedMsg {
    /// An upsert from a slice of terms (at most [`MAX_SOFTWARE_TERMS`]; panics beyond).
    pub fn upsert(slot: u32, t: &[Coeff]) -> FeedMsg {
        let mut terms = [Coeff::default(); MAX_SOFTWARE_TERMS];
        terms[..t.len()].copy_from_slice(t);
        FeedMsg::Upsert { slot, n: t.len() as u8, terms }
    }
}

/// A message with its feed sequence number and its feed time (the intended time for a paced
/// replay; the arrival time for a live feed), on the pipeline's [`Clock`].
#[derive(Clone, Copy, Debug)]
pub struct Stamped {
    /// Feed sequence number.
    pub seq: u64,
    /// Feed time, nanoseconds on the pipeline clock.
    pub t_feed: u64,
    /// The message.
    pub msg: FeedMsg,
}

/// The producer end of the feed queue (one producer).
#[derive(Clone)]
pub struct FeedTx {
    q: Arc<ArrayQueue<Stamped>>,
    counters: Arc<Counters>,
}

impl FeedTx {
    /// Pushes, waiting while the queue is full (back-pressure, counted once per wait): it
    /// spins, and after 4096 tries sleeps 20 us between tries, so that a feed far ahead of a
    /// slow engine (the rust-hdl card) does not take the engine's core.
    #[inline]
    pub fn push(&self, mut m: Stamped) {
        let mut wait = WaitStrategy::SHARED_CORE.waiter();
        while let Err(back) = self.q.push(m) {
            m = back;
            if wait.idle_polls() == 0 {
                Counters::inc(&self.counters.backpressure);
            }
            wait.idle();
        }
    }
}

/// The consumer end.
pub struct FeedRx {
    q: Arc<ArrayQueue<Stamped>>,
}

/// A bounded single-producer queue into the engine thread.
pub fn feed_queue(capacity: usize, counters: Arc<Counters>) -> (FeedTx, FeedRx) {
    let q = Arc::new(ArrayQueue::new(capacity));
    (FeedTx { q: q.clone(), counters }, FeedRx { q })
}

/// Where breached accounts go: the dispatcher plugs in here ([`dispatch::DispatchSink`]; a
/// closure works too).
pub trait BreachSink: Send {
    /// One scan's result: slots newly breached, slots no longer breached, slots newly at risk
    /// (and not breached). Called on the engine thread; must not block.
    fn on_scan(&mut self, seq: u64, breached: &[u32], cleared: &[u32], at_risk: &[u32]);
    /// Every message the engine applied, before its `on_scan` (prices for sizing, feed times
    /// for latency). Called on the engine thread; must not block.
    #[inline]
    fn on_message(&mut self, _seq: u64, _t_feed: u64, _msg: &FeedMsg) {}
    /// A message the engine refused (it changed nothing), in place of its `on_message`.
    #[inline]
    fn on_refused(&mut self, _seq: u64, _t_feed: u64, _msg: &FeedMsg) {}
    /// The feed ended: last chance to hand anything on (may wait).
    fn finish(&mut self) {}
}

impl<F: FnMut(u64, &[u32], &[u32], &[u32]) + Send> BreachSink for F {
    fn on_scan(&mut self, seq: u64, breached: &[u32], cleared: &[u32], at_risk: &[u32]) {
        self(seq, breached, cleared, at_risk)
    }
}

/// The engine behind the pipeline: any engine (the software engine; a card wrapped in a
/// [`FailoverEngine`](crate::engine::failover::FailoverEngine) with its software mirror).
pub type Backend = Box<dyn ScanEngine>;

impl FeedMsg {
    /// Applies the message to `engine` ([`FeedMsg::End`] does nothing).
    #[inline]
    pub fn apply_to<E: ScanEngine + ?Sized>(&self, engine: &mut E) -> Result<(), EngineError> {
        match *self {
            FeedMsg::Tick { asset, price } => engine.tick(asset, price),
            FeedMsg::Upsert { slot, n, ref terms } => engine.upsert(slot, &terms[..n as usize]),
            FeedMsg::Remove { slot } => engine.remove(slot),
            FeedMsg::End => Ok(()),
        }
    }
}

/// Empty polls before an engine thread that does not own its core ([`PipelineConfig::spin`]
/// false) starts sleeping between looks at the queue (a few hundred microseconds of spinning).
///
/// Why sleep at all: on a machine whose cores are shared (this project's 2-vCPU VM with other
/// engineers' builds), the scheduler shares a core between the runnable threads on it, and a
/// thread that busy-polls is always runnable: its share is spent on spinning, and what is left
/// for the work can be less than the work needs. `liqscan bench-link` measured it: with the
/// machine's load average at 7, a spinning engine thread got 22% of its core (3.5 s on the
/// CPU, 12.3 s waiting for it) against 49% for the bare engine loop, fell behind a pace of half
/// the bare engine's capacity, and queued ticks for seconds. A thread that sleeps while idle is
/// not charged for the idle time and is run promptly when it wakes.
pub const IDLE_SPINS: u32 = 4096;
/// Sleep between looks at an idle queue when not spinning (the wake-up adds the timer's slack,
/// ~50 us by default, to a tick that arrives while the thread sleeps).
pub const IDLE_SLEEP_US: u64 = 20;

/// Pipeline settings.
#[derive(Clone, Debug, Default)]
pub struct PipelineConfig {
    /// Core for the engine thread (None: unpinned).
    pub engine_core: Option<usize>,
    /// Busy-poll without ever sleeping (a dedicated core); otherwise spin [`IDLE_SPINS`] empty
    /// polls, then sleep [`IDLE_SLEEP_US`] between looks until a message comes.
    pub spin: bool,
    /// Assets the book holds (by index). Until the engine has a price for each of them it
    /// reports nothing (the warm-up, as `liqscan scan`'s; [`warm`]): an unpriced asset reads
    /// as worth 0, so every account holding it as collateral would read as breached. Then the
    /// state at that moment is reported in full. A restart's events recovery follows the same
    /// rule (`journal::events::recover`).
    pub warm_up: Vec<u16>,
}

impl PipelineConfig {
    /// How the engine thread waits for messages.
    pub fn wait(&self) -> WaitStrategy {
        WaitStrategy::spin_or(
            self.spin,
            WaitStrategy::SpinThenSleep {
                spins: IDLE_SPINS,
                sleep: std::time::Duration::from_micros(IDLE_SLEEP_US),
            },
        )
    }
}

/// One tick's clock readings on the engine thread (nanoseconds on the pipeline [`Clock`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct TickTrace {
    /// Feed sequence number.
    pub seq: u64,
    /// Feed (intended) time.
    pub t_feed: u64,
    /// Popped from the queue, command about to be written.
    pub t_cmd: u64,
    /// Bitmap seen.
    pub t_bitmap: u64,
    /// Handed to dispatch.
    pub t_dispatch: u64,
}

/// What a finished pipeline reports.
pub struct PipelineReport {
    /// Stage histograms.
    pub hist: StageHistograms,
    /// Messages applied.
    pub messages: u64,
    /// Messages refused (bad slot, terms or asset), with the last reason.
    pub refused: u64,
    /// The last refusal.
    pub last_refusal: Option<String>,
    /// Fail-overs, with their reasons.
    pub failovers: Vec<String>,
    /// Nanoseconds each fail-over took (rebuild plus replay).
    pub failover_ns: Vec<u64>,
    /// The backend in use at the end.
    pub backend: &'static str,
    /// Final breach bitmap.
    pub breach: Vec<u64>,
    /// Final at-risk bitmap.
    pub at_risk: Vec<u64>,
    /// Stage times of the first ticks ([`spawn_traced`]; empty from [`spawn`]).
    pub trace: Vec<TickTrace>,
    /// The engine thread's scheduler accounting over its run ([`thread_sched`]).
    pub sched: Option<SchedStat>,
}

/// Starts the engine thread. It runs until it pops [`FeedMsg::End`].
pub fn spawn(
    backend: Backend,
    rx: FeedRx,
    sink: Box<dyn BreachSink>,
    cfg: PipelineConfig,
    clock: Clock,
    counters: Arc<Counters>,
    published: Arc<Published>,
) -> std::thread::JoinHandle<PipelineReport> {
    spawn_traced(backend, rx, sink, cfg, clock, counters, published, 0)
}

/// [`spawn`], keeping the clock readings of the first `trace` ticks in the report (a buffer
/// sized at start), to see where a tick's time went.
#[allow(clippy::too_many_arguments)]
pub fn spawn_traced(
    mut backend: Backend,
    rx: FeedRx,
    mut sink: Box<dyn BreachSink>,
    cfg: PipelineConfig,
    clock: Clock,
    counters: Arc<Counters>,
    published: Arc<Published>,
    trace: usize,
) -> std::thread::JoinHandle<PipelineReport> {
    std::thread::Builder::new()
        .name("engine".into())
        .spawn(move || {
            if let Some(c) = cfg.engine_core {
                pin("engine thread", c);
            }
            let mut step = Step::new(&mut backend);
            let mut hist = StageHistograms::default();
            let mut rep = PipelineReport {
                hist: StageHistograms::default(),
                messages: 0,
                refused: 0,
                last_refusal: None,
                failovers: Vec::new(),
                failover_ns: Vec::new(),
                backend: backend.name(),
                breach: Vec::new(),
                at_risk: Vec::new(),
                trace: Vec::with_capacity(trace),
                sched: None,
            };
            let sched0 = thread_sched();
            counters.engine_card.store(backend.is_card(), Ordering::Relaxed);
            let mut failovers_seen = backend.failovers().len();
            let mut wait = cfg.wait().waiter();
            let mut last_publish = 0u64;
            let mut unpriced = cfg.warm_up.clone();
            loop {
                let Some(m) = rx.q.pop() else {
                    wait.idle();
                    if wait.idle_polls().is_multiple_of(IDLE_SPINS) {
                        let now = clock.now();
                        if now - last_publish > 100_000_000 {
                            published.publish(&hist);
                            last_publish = now;
                        }
                    }
                    continue;
                };
                wait.reset();
                if m.msg == FeedMsg::End {
                    break;
                }
                let t_cmd = clock.now();
                // A card fault comes back only from an engine that cannot fail over: the
                // message is lost, which is counted and reported like a refusal.
                let applied = match m.msg.apply_to(&mut backend) {
                    Ok(()) => true,
                    Err(e) => {
                        rep.refused += 1;
                        rep.last_refusal = Some(format!("message {}: {e}", m.seq));
                        false
                    }
                };
                if backend.failovers().len() != failovers_seen {
                    for f in &backend.failovers()[failovers_seen..] {
                        let why = format!("message {} ({}): {}", m.seq, f.call, f.why);
                        tracing::error!("FAIL-OVER: card fault at {why}; switched to the software engine");
                        Counters::inc(&counters.failovers);
                        Counters::inc(&counters.replayed);
                        rep.failovers.push(why);
                        rep.failover_ns.push(f.ns);
                    }
                    failovers_seen = backend.failovers().len();
                    counters.engine_card.store(backend.is_card(), Ordering::Relaxed);
                }
                let t_bitmap = clock.now();
                if unpriced.is_empty() {
                    step.collect(&mut backend);
                } else {
                    // By the engine's prices, as the journal's recovery sees them (a tick, a
                    // batch tick, a restart's reload).
                    let prices = backend.prices();
                    unpriced.retain(|&a| !warm(prices, &[a]));
                    if unpriced.is_empty() {
                        // Warm: the bitmaps now are news against the ones as loaded.
                        step.report_all();
                        step.collect(&mut backend);
                    } else {
                        step.skip(&mut backend);
                    }
                }
                let news = step.diff(&backend);
                // A refused message changed nothing: dispatch keeps its prices and accounts.
                if applied {
                    sink.on_message(m.seq, m.t_feed, &m.msg);
                } else {
                    sink.on_refused(m.seq, m.t_feed, &m.msg);
                }
                if !news.is_empty() {
                    sink.on_scan(m.seq, &news.breached, &news.cleared, &news.at_risk);
                }
                let t_dispatch = clock.now();
                rep.messages += 1;
                match m.msg {
                    FeedMsg::Tick { asset, .. } => {
                        Counters::inc(&counters.ticks);
                        if let Some(r) = backend.routes() {
                            counters.routed_card.store(r.card_ticks.total(), Ordering::Relaxed);
                            counters.routed_software.store(r.software_ticks.total(), Ordering::Relaxed);
                        }
                        hist.record(m.t_feed, t_cmd, t_bitmap, t_dispatch);
                        counters.stages.record(m.t_feed, t_cmd, t_bitmap, t_dispatch);
                        if let Some(a) = counters.assets() {
                            a.priced(asset, t_dispatch);
                        }
                        if rep.trace.len() < trace {
                            rep.trace.push(TickTrace {
                                seq: m.seq,
                                t_feed: m.t_feed,
                                t_cmd,
                                t_bitmap,
                                t_dispatch,
                            });
                        }
                    }
                    _ => Counters::inc(&counters.deltas),
                }
                if !news.breached.is_empty() {
                    counters.breaches.fetch_add(news.breached.len() as u64, Ordering::Relaxed);
                }
                if !news.cleared.is_empty() {
                    counters.cleared.fetch_add(news.cleared.len() as u64, Ordering::Relaxed);
                }
            }
            rep.sched = thread_sched().zip(sched0).map(|(b, a)| b.since(&a));
            sink.finish();
            published.publish(&hist);
            rep.hist = hist;
            rep.backend = backend.name();
            rep.breach = backend.breach().to_vec();
            rep.at_risk = backend.at_risk().to_vec();
            rep
        })
        .expect("spawn engine thread")
}

/// True when each asset of `held` has a price in `prices`, the end of the warm-up
/// ([`PipelineConfig::warm_up`]). A price entry left as it starts (all zero) is no price: an
/// asset that may be priced 0 and is priced 0 from its first tick keeps the warm-up going
/// until its first price above 0.
pub fn warm(prices: &[PriceEntry], held: &[u16]) -> bool {
    held.iter().all(|&a| prices.get(a as usize).is_some_and(|p| *p != PriceEntry::default()))
}

/// Which slots of a bitmap are set (for tests and reports).
pub fn slots_of(words: &[u64]) -> Vec<usize> {
    bitmap::ones(words).collect()
}
