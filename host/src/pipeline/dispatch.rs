//! The pipeline's dispatch stage: breached slots from the engine thread to liquidation orders
//! handed to an executor, on a thread of their own.
//!
//! ```text
//!  engine thread                            dispatch thread
//!  ─────────────                            ───────────────
//!  DispatchSink::on_message  (tick prices -> PriceBoard, feed time -> FeedTimes)
//!  DispatchSink::on_scan ── HandoffSender::offer (never waits; a full queue is carried)
//!                                  ══> HandoffReceiver ─> Dispatcher::on_scan ─> Executor::submit
//!                                                          (sizing at the board's prices,
//!                                                           in-flight set, retries, back-off)
//! ```
//!
//! The engine thread pays a few stores per tick and, for a scan that changed a breach or
//! at-risk bit, the hand-off of a [`ScanBatch`] (its vectors are the one allocation the
//! engine thread makes, and only then). Everything else, sizing, JSON, sockets, runs on the
//! dispatch thread, which polls the hand-off (spinning, or sleeping 20 us between looks on
//! shared cores) so the engine thread never makes a system call to wake it.
//!
//! `feed_to_order` is the true tick-to-dispatch: from the tick's feed time to the return of
//! `Executor::submit` for each order that tick's scan sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use liqscan_hdl::abi::{PriceEntry, QuotedPrice};

use super::{BreachSink, Clock, FeedMsg};
use crate::dispatch::sizing::{AccountView, Position, SizingPolicy, triage};
use crate::dispatch::{
    AccountSource, Completion, DispatchConfig, DispatchStats, Dispatcher, Executor, HandoffReceiver,
    HandoffSender, LiquidationOrder, Offer, ScanBatch, SubmitError, handoff,
};
use crate::metrics::{Counters, histogram};
use crate::model::{AccountSpec, AssetTable, Decimal};
use crate::wait::WaitStrategy;

/// The latest price of every asset, written by the engine thread, read by the dispatch thread
/// (a sequence lock per asset: a reader never sees half an update).
pub struct PriceBoard {
    slots: Vec<(AtomicU32, [AtomicU32; 4])>,
}

impl PriceBoard {
    /// A board of `assets` zero prices.
    pub fn new(assets: usize) -> PriceBoard {
        PriceBoard { slots: (0..assets).map(|_| (AtomicU32::new(0), Default::default())).collect() }
    }

    /// Stores one asset's prices (one writer).
    #[inline]
    pub fn store(&self, asset: u16, p: PriceEntry) {
        let Some((seq, w)) = self.slots.get(asset as usize) else { return };
        let s = seq.load(Ordering::Relaxed);
        seq.store(s.wrapping_add(1), Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        for (x, v) in w.iter().zip([p.spot.asset, p.spot.liability, p.stressed.asset, p.stressed.liability]) {
            x.store(v, Ordering::Relaxed);
        }
        seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// Reads every asset's prices into `out` (resized to the board).
    pub fn load(&self, out: &mut Vec<PriceEntry>) {
        out.resize(self.slots.len(), PriceEntry::default());
        for ((seq, w), o) in self.slots.iter().zip(out.iter_mut()) {
            loop {
                let s0 = seq.load(Ordering::Acquire);
                let v: [u32; 4] = std::array::from_fn(|i| w[i].load(Ordering::Relaxed));
                std::sync::atomic::fence(Ordering::Acquire);
                if s0 % 2 == 0 && seq.load(Ordering::Relaxed) == s0 {
                    *o = PriceEntry {
                        spot: QuotedPrice { asset: v[0], liability: v[1] },
                        stressed: QuotedPrice { asset: v[2], liability: v[3] },
                    };
                    break;
                }
                std::hint::spin_loop();
            }
        }
    }
}

/// Feed times of recent messages by sequence number (a ring of 4096), so the dispatch thread
/// can time an order from the tick that caused it.
pub struct FeedTimes {
    t: Vec<AtomicU64>,
}

const FEED_TIMES: usize = 4096;

impl Default for FeedTimes {
    fn default() -> Self {
        FeedTimes { t: (0..FEED_TIMES).map(|_| AtomicU64::new(0)).collect() }
    }
}

impl FeedTimes {
    #[inline]
    fn store(&self, seq: u64, t: u64) {
        self.t[seq as usize % FEED_TIMES].store(t, Ordering::Release);
    }

    fn load(&self, seq: u64) -> u64 {
        self.t[seq as usize % FEED_TIMES].load(Ordering::Acquire)
    }
}

/// The keeper's book as dispatch sees it: each slot's positions in asset quanta with its
/// tier's weights (what sizing needs; the scan needs only the compiled terms).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeeperBook {
    views: Vec<Option<AccountView>>,
}

/// One leg as a position: `None` if the account cannot be sized (an unknown asset or tier, a
/// weight or amount out of range), `Some(None)` for a leg under one quantum.
fn position(table: &AssetTable, asset: u16, tier: &str, balance: Decimal) -> Option<Option<Position>> {
    let spec = table.get(asset)?;
    let w = spec.tiers.get(tier)?;
    let amount = balance.floor_shifted(-spec.quantum_exp).ok()?;
    if amount == 0 {
        return Some(None);
    }
    let ppm =
        |d: Decimal, up: bool| if up { d.ceil_shifted(6) } else { d.floor_shifted(6) }.ok().map(|x| x as u32);
    Some(Some(Position {
        asset,
        amount,
        asset_weight_ppm: ppm(w.asset_weight, false)?,
        liability_weight_ppm: ppm(w.liability_weight, true)?,
    }))
}

impl KeeperBook {
    /// Slot `i` holds `accounts[i]`; its key is the slot. Balances are turned into quanta
    /// conservatively (holdings down, debts up) and weights into parts per million
    /// (asset weights down, liability weights up), as the coefficient compiler rounds.
    pub fn new<'a>(table: &AssetTable, accounts: impl IntoIterator<Item = &'a AccountSpec>) -> KeeperBook {
        let views = accounts
            .into_iter()
            .enumerate()
            .map(|(slot, a)| {
                let mut positions = Vec::new();
                for (symbol, b) in a.legs() {
                    let asset = table.index_of(symbol).ok()?;
                    positions.extend(position(table, asset, &a.tier, b)?);
                }
                Some(AccountView { account: slot as u64, slot: slot as u32, positions })
            })
            .collect();
        KeeperBook { views }
    }
}

/// Builds a [`KeeperBook`] from rows as the compact book's reader takes them (account slot,
/// asset, balance, tier), so that a keeper loading a large book keeps no [`AccountSpec`]: the
/// same views as [`KeeperBook::new`] of the accounts' specs, positions in the order a spec
/// lists its legs (by symbol, the supply first).
pub struct KeeperBookBuilder<'t> {
    table: &'t AssetTable,
    /// Each asset's place in symbol order.
    rank: Vec<u32>,
    /// Tier names seen (the venue's few), each kept once.
    tiers: Vec<String>,
    /// Legs: (account, symbol rank, borrow, position).
    legs: Vec<(u32, u32, bool, Position)>,
    /// Accounts that cannot be sized (their view is `None`).
    bad: Vec<u32>,
    accounts: usize,
}

impl<'t> KeeperBookBuilder<'t> {
    /// An empty builder for `table`'s venue.
    pub fn new(table: &'t AssetTable) -> Self {
        let mut order: Vec<u16> = (0..table.len() as u16).collect();
        order.sort_by(|&a, &b| table.assets()[a as usize].symbol.cmp(&table.assets()[b as usize].symbol));
        let mut rank = vec![0; table.len()];
        for (r, &a) in order.iter().enumerate() {
            rank[a as usize] = r as u32;
        }
        KeeperBookBuilder { table, rank, tiers: Vec::new(), legs: Vec::new(), bad: Vec::new(), accounts: 0 }
    }

    /// One row the book took: account `k`'s balance of `asset` in `tier` (`None`: the default).
    pub fn row(&mut self, k: usize, asset: u16, balance: Decimal, tier: Option<&str>) {
        self.accounts = self.accounts.max(k + 1);
        if balance.is_zero() {
            return;
        }
        let tier = tier.filter(|t| !t.is_empty()).unwrap_or(crate::model::account::DEFAULT_TIER);
        // Tier names repeat on every row: keep one copy of each.
        let t = match self.tiers.iter().position(|x| x == tier) {
            Some(t) => t,
            None => {
                self.tiers.push(tier.to_string());
                self.tiers.len() - 1
            }
        };
        match position(self.table, asset, &self.tiers[t], balance) {
            None => self.bad.push(k as u32),
            Some(None) => {}
            Some(Some(p)) => self.legs.push((k as u32, self.rank[asset as usize], balance.is_negative(), p)),
        }
    }

    /// The keeper's book of `accounts` slots (at least every account a row named).
    pub fn finish(self, accounts: usize) -> KeeperBook {
        let KeeperBookBuilder { mut legs, bad, accounts: named, .. } = self;
        let n = accounts.max(named);
        // Rows of one account may be apart: a stable sort keeps each account's legs together.
        legs.sort_by_key(|&(k, rank, borrow, _)| (k, rank, borrow));
        let mut views: Vec<Option<AccountView>> = (0..n)
            .map(|k| Some(AccountView { account: k as u64, slot: k as u32, positions: Vec::new() }))
            .collect();
        let mut i = 0;
        while i < legs.len() {
            let k = legs[i].0;
            let j = i + legs[i..].iter().take_while(|l| l.0 == k).count();
            if let Some(v) = views[k as usize].as_mut() {
                v.positions = legs[i..j].iter().map(|l| l.3).collect();
            }
            i = j;
        }
        for k in bad {
            views[k as usize] = None;
        }
        KeeperBook { views }
    }
}

impl KeeperBook {
    /// A book of ready views (slot `i` is `views[i]`).
    pub fn from_views(views: Vec<Option<AccountView>>) -> KeeperBook {
        KeeperBook { views }
    }
}

impl AccountSource for KeeperBook {
    fn view(&self, slot: u32) -> Option<AccountView> {
        self.views.get(slot as usize).cloned().flatten()
    }

    fn triage(&self, slot: u32, prices: &[PriceEntry], policy: &SizingPolicy) -> Option<(u64, Option<i128>)> {
        let v = self.views.get(slot as usize)?.as_ref()?;
        Some((v.account, triage(v, prices, policy)))
    }
}

/// The engine thread's end: a [`BreachSink`] that hands scans to the dispatch thread.
pub struct DispatchSink {
    tx: HandoffSender,
    board: Arc<PriceBoard>,
    times: Arc<FeedTimes>,
    last_seq: u64,
    progress: Arc<Progress>,
}

/// Batches queued and taken, so a caller can wait for dispatch to catch up.
#[derive(Default)]
struct Progress {
    queued: AtomicU64,
    taken: AtomicU64,
}

impl BreachSink for DispatchSink {
    #[inline]
    fn on_message(&mut self, seq: u64, t_feed: u64, msg: &FeedMsg) {
        if let FeedMsg::Tick { asset, price } = *msg {
            self.board.store(asset, price);
        }
        self.times.store(seq, t_feed);
    }

    fn on_scan(&mut self, seq: u64, breached: &[u32], cleared: &[u32], at_risk: &[u32]) {
        let batch = ScanBatch {
            seq,
            breached: breached.to_vec(),
            cleared: cleared.to_vec(),
            at_risk: at_risk.to_vec(),
            ..Default::default()
        };
        // Never waits: a full queue is merged into a carry and re-offered with the next scan.
        self.last_seq = seq;
        if self.tx.offer(batch) == Offer::Sent {
            self.progress.queued.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn finish(&mut self) {
        // A carry left by a full queue goes out now (waiting is fine: the feed has ended).
        while self.tx.has_carry() {
            match self.tx.offer(ScanBatch { seq: self.last_seq, ..Default::default() }) {
                Offer::Closed => break,
                Offer::Sent => {
                    self.progress.queued.fetch_add(1, Ordering::Relaxed);
                }
                Offer::BackPressure => {}
            }
            if self.tx.has_carry() {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
    }
}

/// Counts and times the orders an executor takes.
struct Timed<'a> {
    inner: &'a mut dyn Executor,
    submitted: u64,
}

impl Executor for Timed<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn submit(&mut self, order: &LiquidationOrder) -> Result<(), SubmitError> {
        self.inner.submit(order)?;
        self.submitted += 1;
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Completion>) {
        self.inner.poll(out)
    }

    fn link_stats(&self) -> crate::dispatch::LinkStats {
        self.inner.link_stats()
    }
}

/// What the dispatch thread did.
pub struct DispatchReport {
    /// The dispatcher's counters.
    pub stats: DispatchStats,
    /// Tick feed time -> order handed to the executor, for orders sent by the scan of that tick.
    pub feed_to_order: Histogram<u64>,
    /// Orders sent later (retries, orders that waited for room or back-off).
    pub later_sends: u64,
    /// Scan batches received.
    pub batches: u64,
    /// The executor's name.
    pub executor: String,
}

/// The dispatch stage: the sink for the engine thread and the dispatch thread.
pub struct DispatchStage {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<DispatchReport>,
    progress: Arc<Progress>,
}

/// Settings of the dispatch thread.
#[derive(Clone, Debug, Default)]
pub struct DispatchOptions {
    /// The dispatcher's rules.
    pub rules: DispatchConfig,
    /// Core to pin the dispatch thread to.
    pub core: Option<usize>,
    /// Spin while idle (a dedicated core) instead of sleeping 20 us between looks.
    pub spin: bool,
    /// Hand-off queue capacity (scan batches).
    pub queue: usize,
    /// Where the dispatch thread publishes its order counters and `feed_to_order` latency
    /// for the metrics endpoint.
    pub counters: Option<Arc<Counters>>,
}

impl DispatchStage {
    /// Starts the dispatch thread with `exec` (made on that thread by `make_exec`, so it
    /// need not be `Send`) and returns the stage and the sink to give the pipeline.
    pub fn start(
        book: KeeperBook,
        assets: usize,
        make_exec: Box<dyn FnOnce() -> Box<dyn Executor> + Send>,
        opts: DispatchOptions,
        clock: Clock,
    ) -> (DispatchStage, DispatchSink) {
        let (tx, rx) = handoff(opts.queue.max(1));
        let board = Arc::new(PriceBoard::new(assets));
        let times = Arc::new(FeedTimes::default());
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let (b, t, s, p) = (board.clone(), times.clone(), stop.clone(), progress.clone());
        let handle = std::thread::Builder::new()
            .name("dispatch".into())
            .spawn(move || {
                if let Some(c) = opts.core {
                    super::pin("dispatch thread", c);
                }
                let mut exec = make_exec();
                dispatch_loop(rx, &book, exec.as_mut(), &opts, &b, &t, &s, &p, clock)
            })
            .expect("spawn dispatch thread");
        let sink = DispatchSink { tx, board, times, last_seq: 0, progress: progress.clone() };
        (DispatchStage { stop, handle, progress }, sink)
    }

    /// Batches queued by the sink and not yet taken by the dispatch thread (a batch carried
    /// by a full queue is not counted until it is queued).
    pub fn pending(&self) -> u64 {
        let q = self.progress.queued.load(Ordering::Relaxed);
        q.saturating_sub(self.progress.taken.load(Ordering::Relaxed))
    }

    /// Stops the thread once the hand-off is drained and the backlog flushed of what can be
    /// sent now (call after the engine thread ended) and returns its report.
    pub fn finish(self) -> DispatchReport {
        self.stop.store(true, Ordering::Release);
        self.handle.join().expect("dispatch thread panicked")
    }
}

#[allow(clippy::too_many_arguments)]
fn dispatch_loop(
    rx: HandoffReceiver,
    book: &KeeperBook,
    exec: &mut dyn Executor,
    opts: &DispatchOptions,
    board: &PriceBoard,
    times: &FeedTimes,
    stop: &AtomicBool,
    progress: &Progress,
    clock: Clock,
) -> DispatchReport {
    let mut d = Dispatcher::new(opts.rules);
    // A restarted keeper continues the breach episodes and order ids its journal holds.
    d.resume(exec.resume_points());
    let mut prices = Vec::new();
    let mut rep = DispatchReport {
        stats: DispatchStats::default(),
        feed_to_order: histogram(),
        later_sends: 0,
        batches: 0,
        executor: exec.name().to_string(),
    };
    let mut wait = WaitStrategy::spin_or(
        opts.spin,
        WaitStrategy::SpinThenSleep { spins: 1000, sleep: Duration::from_micros(20) },
    )
    .waiter();
    let mut last_poll = 0u64;
    loop {
        // `stop` is raised after the engine thread ended, so once it is seen an empty queue
        // stays empty.
        let stopping = stop.load(Ordering::Acquire);
        if let Some(batch) = rx.try_recv() {
            wait.reset();
            rep.batches += 1;
            board.load(&mut prices);
            let t_feed = times.load(batch.seq);
            let mut ex = Timed { inner: exec, submitted: 0 };
            d.on_scan(clock.now(), &batch, &prices, book, &mut ex);
            progress.taken.fetch_add(1, Ordering::Relaxed);
            if ex.submitted > 0 {
                let dt = clock.now().saturating_sub(t_feed).max(1);
                rep.feed_to_order.saturating_record_n(dt, ex.submitted);
                if let Some(c) = &opts.counters {
                    c.stages.feed_to_order.observe_n(dt, ex.submitted);
                }
            }
            publish(opts, &d, exec);
            continue;
        }
        let now = clock.now();
        if stopping || now.saturating_sub(last_poll) > 1_000_000 {
            last_poll = now;
            board.load(&mut prices);
            let mut ex = Timed { inner: exec, submitted: 0 };
            d.poll(now, &prices, book, &mut ex);
            rep.later_sends += ex.submitted;
            publish(opts, &d, exec);
        }
        if stopping {
            drain(&mut d, exec, board, &mut prices, book, &mut rep, clock);
            publish(opts, &d, exec);
            break;
        }
        wait.idle();
    }
    rep.stats = d.stats().clone();
    rep
}

/// Copies the dispatcher's counters for the metrics endpoint (a few relaxed stores).
fn publish(opts: &DispatchOptions, d: &Dispatcher, exec: &dyn Executor) {
    if let Some(c) = &opts.counters {
        c.orders.publish(d.stats(), d.backlog(), d.in_flight());
        c.orders.publish_link(&exec.link_stats());
    }
}

/// Longest the dispatch thread keeps flushing after the feed ended (or a stop signal).
pub const DRAIN_LIMIT_NS: u64 = 5_000_000_000;

/// At the end of the feed, sends what the rules allow now instead of dropping the backlog:
/// accounts still breached when a replay ends were found and must be ordered, even if the
/// dispatch thread was behind (a full hand-off merges scans, and each pump sends at most
/// `max_in_flight`). Polls until a poll sends nothing and no order waits for its answer:
/// what is left waits for a back-off or the settle time, or cannot be sized. Bounded by
/// [`DRAIN_LIMIT_NS`].
fn drain(
    d: &mut Dispatcher,
    exec: &mut dyn Executor,
    board: &PriceBoard,
    prices: &mut Vec<PriceEntry>,
    book: &KeeperBook,
    rep: &mut DispatchReport,
    clock: Clock,
) {
    let t0 = clock.now();
    loop {
        let now = clock.now();
        board.load(prices);
        let mut ex = Timed { inner: exec, submitted: 0 };
        d.poll(now, prices, book, &mut ex);
        rep.later_sends += ex.submitted;
        if ex.submitted == 0 {
            // Orders in flight may still be answered lost (a connection or server that died
            // with them) and re-sent, or free a slot for an account waiting for one: an
            // executor that confirms later (TCP, NATS) is waited for.
            if d.in_flight() == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        if now.saturating_sub(t0) > DRAIN_LIMIT_NS {
            tracing::warn!(
                "dispatch: stopped flushing after {} s: {} accounts still breached, {} of them never sent an order",
                DRAIN_LIMIT_NS / 1_000_000_000,
                d.backlog(),
                d.never_sent(book)
            );
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::dispatch::{DispatchConfig, Outcome};

    /// Takes every order, answers `Sent` at the next poll, remembers the slots.
    struct Record(Arc<Mutex<Vec<u32>>>, Vec<Completion>);

    impl Executor for Record {
        fn name(&self) -> &str {
            "record"
        }
        fn submit(&mut self, o: &LiquidationOrder) -> Result<(), SubmitError> {
            self.0.lock().unwrap().push(o.slot);
            self.1.push(Completion { id: o.id, attempt: o.attempt, outcome: Outcome::Sent });
            Ok(())
        }
        fn poll(&mut self, out: &mut Vec<Completion>) {
            out.append(&mut self.1);
        }
    }

    #[test]
    fn finish_flushes_a_backlog_larger_than_the_in_flight_limit() {
        let n = 200u32;
        let views = (0..n)
            .map(|s| {
                let p = |asset, amount| Position {
                    asset,
                    amount,
                    asset_weight_ppm: 800_000,
                    liability_weight_ppm: 1_000_000,
                };
                Some(AccountView { account: s as u64, slot: s, positions: vec![p(0, 10), p(1, -900)] })
            })
            .collect();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let s2 = sent.clone();
        let opts = DispatchOptions {
            // Four at a time, and no second order for an account within the test.
            rules: DispatchConfig { max_in_flight: 4, settle_ns: u64::MAX / 4, ..Default::default() },
            queue: 8,
            ..Default::default()
        };
        let make = Box::new(move || Box::new(Record(s2, Vec::new())) as Box<dyn Executor>);
        let (stage, mut sink) =
            DispatchStage::start(KeeperBook::from_views(views), 2, make, opts, Clock::default());
        let q = |p| QuotedPrice { asset: p, liability: p };
        for (asset, p) in [(0u16, 100u32), (1, 1)] {
            sink.on_message(0, 0, &FeedMsg::Tick { asset, price: PriceEntry { spot: q(p), stressed: q(p) } });
        }
        let all: Vec<u32> = (0..n).collect();
        sink.on_scan(1, &all, &[], &[]);
        sink.finish();
        // The feed ends at once: every breached account is still ordered, each once.
        let rep = stage.finish();
        let mut slots = sent.lock().unwrap().clone();
        slots.sort_unstable();
        assert_eq!(slots, all, "{:?}", rep.stats);
        assert_eq!(rep.stats.orders, n as u64);
    }
}
