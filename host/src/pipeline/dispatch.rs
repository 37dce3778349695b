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
//! The engine thread pays a few stores per tick, a copy of each account delta's terms (they
//! ride with the next batch, so that dispatch sizes from the accounts as they are), and, for a
//! scan that changed a breach or at-risk bit, the hand-off of a [`ScanBatch`] (its vectors are
//! the one allocation the engine thread makes, and only then). Everything else, sizing, JSON, sockets, runs on the
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

pub use super::keeper_book::{KeeperBook, KeeperBookBuilder};
use super::{BreachSink, Clock, FeedMsg};
use crate::dispatch::{
    AccountDeltas, Completion, DispatchConfig, DispatchStats, Dispatcher, Executor, HandoffReceiver,
    HandoffSender, LiquidationOrder, Offer, ScanBatch, SubmitError, handoff,
};
use crate::metrics::{Counters, histogram};
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

/// The engine thread's end: a [`BreachSink`] that hands scans to the dispatch thread.
pub struct DispatchSink {
    tx: HandoffSender,
    board: Arc<PriceBoard>,
    times: Arc<FeedTimes>,
    last_seq: u64,
    progress: Arc<Progress>,
    /// Account deltas applied since the last batch: they ride with the next one.
    deltas: AccountDeltas,
}

/// Account deltas held back for a scan at most: past it they go in a batch of their own, so a
/// book streamed as upserts reaches dispatch as it goes.
const DELTAS_PER_BATCH: usize = 4096;

impl DispatchSink {
    fn offer(&mut self, batch: ScanBatch) {
        // Never waits: a full queue is merged into a carry and re-offered with the next batch.
        self.last_seq = batch.seq;
        if self.tx.offer(batch) == Offer::Sent {
            self.progress.queued.fetch_add(1, Ordering::Relaxed);
        }
    }
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
        match *msg {
            FeedMsg::Tick { asset, price } => self.board.store(asset, price),
            FeedMsg::Upsert { slot, n, ref terms } => self.deltas.upsert(slot, &terms[..n as usize]),
            FeedMsg::Remove { slot } => self.deltas.remove(slot),
            FeedMsg::End => {}
        }
        self.times.store(seq, t_feed);
        if self.deltas.len() >= DELTAS_PER_BATCH {
            let accounts = std::mem::take(&mut self.deltas);
            self.offer(ScanBatch { seq, accounts, ..Default::default() });
        }
    }

    fn on_scan(&mut self, seq: u64, breached: &[u32], cleared: &[u32], at_risk: &[u32]) {
        let accounts = std::mem::take(&mut self.deltas);
        self.offer(ScanBatch {
            seq,
            breached: breached.to_vec(),
            cleared: cleared.to_vec(),
            at_risk: at_risk.to_vec(),
            accounts,
            ..Default::default()
        });
    }

    fn finish(&mut self) {
        if !self.deltas.is_empty() {
            let accounts = std::mem::take(&mut self.deltas);
            self.offer(ScanBatch { seq: self.last_seq, accounts, ..Default::default() });
        }
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
                dispatch_loop(rx, book, exec.as_mut(), &opts, &b, &t, &s, &p, clock)
            })
            .expect("spawn dispatch thread");
        let sink = DispatchSink {
            tx,
            board,
            times,
            last_seq: 0,
            progress: progress.clone(),
            deltas: AccountDeltas::default(),
        };
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
    mut book: KeeperBook,
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
            // The accounts first: the batch's scan saw them so.
            for (slot, terms) in batch.accounts.iter() {
                match terms {
                    Some(t) => book.upsert(slot, t),
                    None => book.remove(slot),
                }
            }
            d.accounts_changed(batch.accounts.iter().map(|(slot, _)| slot));
            if !batch.has_news() {
                progress.taken.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            board.load(&mut prices);
            let t_feed = times.load(batch.seq);
            let mut ex = Timed { inner: exec, submitted: 0 };
            d.on_scan(clock.now(), &batch, &prices, &book, &mut ex);
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
            d.poll(now, &prices, &book, &mut ex);
            rep.later_sends += ex.submitted;
            publish(opts, &d, exec);
        }
        if stopping {
            drain(&mut d, exec, board, &mut prices, &book, &mut rep, clock);
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
    use super::*;
    use crate::dispatch::DispatchConfig;
    use crate::dispatch::executor::InMemory;
    use crate::dispatch::sizing::{AccountView, Position};

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
                Some(AccountView { account: s as u64, slot: s, positions: vec![p(0, 10), p(1, -900)].into() })
            })
            .collect();
        let sent = InMemory::new();
        let s2 = sent.clone();
        let opts = DispatchOptions {
            // Four at a time, and no second order for an account within the test.
            rules: DispatchConfig { max_in_flight: 4, settle_ns: u64::MAX / 4, ..Default::default() },
            queue: 8,
            ..Default::default()
        };
        let make = Box::new(move || Box::new(s2) as Box<dyn Executor>);
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
        let mut slots: Vec<u32> = sent.orders().iter().map(|o| o.slot).collect();
        slots.sort_unstable();
        assert_eq!(slots, all, "{:?}", rep.stats);
        assert_eq!(rep.stats.orders, n as u64);
    }

    #[test]
    fn orders_are_sized_from_the_accounts_as_live_deltas_left_them() {
        use crate::dispatch::sizing::size;
        use crate::dispatch::{AccountSource, OrderKind};
        use crate::pipeline::keeper_book::fingerprint;

        let table = crate::demo_book::venue();
        let accounts = crate::demo_book::book(&table, 200, 7);
        let mut book = KeeperBook::new(&table, accounts.iter().map(|a| &a.spec));
        book.set_read_terms(accounts.iter().map(|a| fingerprint(&a.terms)).collect());
        let rules = DispatchConfig { max_in_flight: 1000, settle_ns: u64::MAX / 4, ..Default::default() };
        // Slots 0-49 take the terms of slots 100-149, 50-59 are removed, 60-69 are upserted as
        // read; the rest keep their accounts.
        let mut expected = book.clone();
        let deltas: Vec<FeedMsg> = (0..70u32)
            .map(|s| match s {
                0..50 => FeedMsg::upsert(s, &accounts[s as usize + 100].terms),
                50..60 => FeedMsg::Remove { slot: s },
                _ => FeedMsg::upsert(s, &accounts[s as usize].terms),
            })
            .collect();
        for m in &deltas {
            match *m {
                FeedMsg::Upsert { slot, n, ref terms } => expected.upsert(slot, &terms[..n as usize]),
                FeedMsg::Remove { slot } => expected.remove(slot),
                _ => unreachable!(),
            }
        }
        let sent = InMemory::new();
        let s2 = sent.clone();
        let opts = DispatchOptions { rules, queue: 8, ..Default::default() };
        let make = Box::new(move || Box::new(s2) as Box<dyn Executor>);
        let (stage, mut sink) = DispatchStage::start(book.clone(), table.len(), make, opts, Clock::default());
        // Holdings priced at 1, debts at 10^6: every account with a debt is breached.
        let q = QuotedPrice { asset: 1, liability: 1_000_000 };
        let prices = vec![PriceEntry { spot: q, stressed: q }; table.len()];
        for asset in 0..table.len() as u16 {
            sink.on_message(0, 0, &FeedMsg::Tick { asset, price: prices[0] });
        }
        for (i, m) in deltas.iter().enumerate() {
            sink.on_message(1 + i as u64, 0, m);
        }
        let all: Vec<u32> = (0..200).collect();
        sink.on_scan(100, &all, &[], &[]);
        sink.finish();
        stage.finish();
        let orders = sent.orders();
        let legs = |v: Option<crate::dispatch::AccountView>| {
            v.and_then(|v| size(&v, &prices, &rules.sizing)).map(|p| p.legs)
        };
        let mut moved = 0;
        for s in 0..200u32 {
            let got: Vec<_> = orders.iter().filter(|o| o.slot == s).collect();
            let want = legs(expected.view(s));
            match (&want, got.as_slice()) {
                (None, []) => {}
                (Some(w), [o]) => {
                    let OrderKind::Direct { legs, .. } = &o.kind else { panic!("slot {s}: {:?}", o.kind) };
                    assert_eq!(legs, w, "slot {s}: sized from the account as it is now");
                    if s < 50 && Some(w) != legs_of_read(&book, s, &prices, &rules).as_ref() {
                        moved += 1;
                        // Its debt is one of the new terms' debts.
                        let debts = accounts[s as usize + 100].terms.iter().filter(|t| t.coeff < 0);
                        assert!(debts.map(|t| t.asset).any(|a| a == w[0].debt_asset), "slot {s}");
                    }
                }
                _ => panic!("slot {s}: wanted {want:?}, got {got:?}"),
            }
        }
        assert!((50..60).all(|s| orders.iter().all(|o| o.slot != s)), "a removed account is not ordered");
        assert!(moved > 20, "most moved accounts size differently from their old selves ({moved})");
        fn legs_of_read(
            book: &KeeperBook,
            s: u32,
            prices: &[PriceEntry],
            rules: &DispatchConfig,
        ) -> Option<Vec<crate::dispatch::order::Leg>> {
            size(&book.view(s)?, prices, &rules.sizing).map(|p| p.legs)
        }
    }
}
