//! [`Bridge`]: the executor bridge. Consumes a venue's order stream with a durable pull
//! consumer and explicit acknowledgement, and hands each order to a downstream executor (the
//! TCP `liqscan-dispatch/3` client in `liqscan bridge`) once.
//!
//! ```text
//!  stream liqscan_<venue>_orders ─durable consumer─> pump task ─crossbeam─> bridge thread
//!                                                     (tokio)                 │ parse, check
//!      ack <── record.add(id) (fsync) <── downstream completion <── submit ──┘ record, in-flight
//! ```
//!
//! Each order once, across the bridge's own restarts:
//! - the message is acknowledged only after the downstream answered it (filled, rejected or
//!   sent) and its id is in the bridge's [record](crate::record) on disk: a bridge killed
//!   before that gets the message again and hands it over again under the same id;
//! - a message whose id is in the record is acknowledged without a hand-over (killed between
//!   the record and the acknowledgement, or a keeper that re-published the order after the
//!   stream's duplicate window);
//! - the one window left, killed after the downstream took the order and before its answer
//!   was recorded, is closed by the downstream's idempotence by order id, which
//!   `liqscan-dispatch/3` requires of every service (a re-sent order keeps its id).
//!   A local record alone cannot close it (the hand-over and the record are two systems); the
//!   downstream's idempotence alone could, but the record keeps a restarted bridge from
//!   re-sending its whole unacknowledged tail, and keeps working past the duplicate window.
//!
//! A downstream [`Outcome::Lost`] (the connection dropped before an answer) is handed over
//! again with the next attempt number. A redelivery of a message whose order is still with the
//! downstream (the consumer's `ack_wait` passed) is not handed over again. A malformed message
//! (not an order, or an order whose id differs from its `Nats-Msg-Id`) is counted, logged with
//! its subject and stream sequence, and terminated (never redelivered).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, pull},
};
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use futures_util::StreamExt;
use liqscan_host::dispatch::{Completion, Executor, LiquidationOrder, OrderId, Outcome};

use crate::record::{Record, RecordError};
use crate::subjects::Venue;

/// Longest wait, at a graceful stop, for the answers to orders the downstream holds.
const DRAIN: Duration = Duration::from_secs(2);

/// Settings of the bridge.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    /// Server URL(s).
    pub url: String,
    /// The venue whose order stream is consumed.
    pub venue: Venue,
    /// Name of the durable consumer (one per bridge deployment: two bridges with one name
    /// share the work, with different names each gets every order).
    pub durable: String,
    /// The server redelivers a message not acknowledged this long after delivery.
    pub ack_wait: Duration,
    /// Messages delivered and not yet acknowledged, at most.
    pub max_ack_pending: i64,
    /// The record of answered orders (a file); `None` keeps it in memory only.
    pub record: Option<PathBuf>,
    /// Wait before offering an order again to a busy or unavailable downstream.
    pub retry: Duration,
    /// Orders handed over and not yet answered, at most (the rest wait in the stream, where
    /// another bridge of the same consumer can take them).
    pub max_in_flight: usize,
    /// The stream's duplicate window, if this bridge creates the stream.
    pub duplicate_window: Duration,
}

impl BridgeConfig {
    /// Defaults: consumer `bridge`, ack wait 5 s, 1024 pending, record in memory, retry
    /// every 20 ms, 64 orders with the downstream, duplicate window 2 min.
    pub fn new(url: impl Into<String>, venue: Venue) -> Self {
        BridgeConfig {
            url: url.into(),
            venue,
            durable: "bridge".into(),
            ack_wait: Duration::from_secs(5),
            max_ack_pending: 1024,
            record: None,
            retry: Duration::from_millis(20),
            max_in_flight: 64,
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// Why the bridge stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// The record file failed.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The runtime or a thread could not start.
    #[error("bridge: {0}")]
    Io(#[from] std::io::Error),
    /// The server URL is malformed.
    #[error("nats server {url}: {detail}")]
    Connect {
        /// The URL.
        url: String,
        /// What failed.
        detail: String,
    },
}

/// Counts of a bridge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Orders taken from the stream (first delivery of their id to this bridge run).
    pub delivered: u64,
    /// Hand-overs to the downstream (re-sends after a lost connection included).
    pub handed: u64,
    /// Orders the downstream answered (acknowledged to the stream after recording).
    pub answered: u64,
    /// Of those, answered filled.
    pub filled: u64,
    /// Downstream answers `Lost` (handed over again).
    pub lost: u64,
    /// Messages whose order was in the record: acknowledged, not handed over.
    pub already_done: u64,
    /// Redeliveries of an order still with the downstream (not handed over again).
    pub redelivered_in_flight: u64,
    /// Malformed messages refused (terminated).
    pub malformed: u64,
    /// Acknowledgements that failed to send (the message comes again; the record catches it).
    pub ack_failures: u64,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Tells the pump to forward no more messages (set once the bridge thread has drained).
    pump_stop: AtomicBool,
    consuming: AtomicBool,
    last_error: Mutex<String>,
    stats: Mutex<BridgeStats>,
    pump_errors: AtomicU64,
}

/// A running bridge. [`Bridge::stop`] (or dropping it) stops it.
pub struct Bridge {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Result<(), BridgeError>>>,
}

impl Bridge {
    /// Opens the record, connects (in the background) and starts consuming.
    pub fn start(cfg: BridgeConfig, downstream: Box<dyn Executor + Send>) -> Result<Self, BridgeError> {
        let record = match &cfg.record {
            Some(p) => Record::open(p)?,
            None => Record::in_memory(),
        };
        let rt = crate::runtime("liqscan-nats-bridge")?;
        let guard = rt.enter();
        let client = rt
            .block_on(crate::connect_options("liqscan-bridge").connect(cfg.url.as_str()))
            .map_err(|e| BridgeError::Connect { url: cfg.url.clone(), detail: e.to_string() })?;
        let shared = Arc::new(Shared::default());
        let (tx, rx) = unbounded();
        rt.spawn(pump(jetstream::new(client.clone()), cfg.clone(), tx, shared.clone()));
        drop(guard);
        let s = shared.clone();
        let thread = std::thread::Builder::new().name("liqscan-bridge".into()).spawn(move || {
            Worker {
                rt,
                client,
                cfg,
                rx,
                downstream,
                record,
                s,
                flights: HashMap::new(),
                queue: VecDeque::new(),
            }
            .run()
        })?;
        Ok(Bridge { shared, thread: Some(thread) })
    }

    /// Counts so far.
    pub fn stats(&self) -> BridgeStats {
        *self.shared.stats.lock().expect("not poisoned")
    }

    /// True while the consumer is set up and pulling.
    pub fn is_consuming(&self) -> bool {
        self.shared.consuming.load(Ordering::Acquire)
    }

    /// The last connection or consumer error (empty if none).
    pub fn last_error(&self) -> String {
        self.shared.last_error.lock().expect("not poisoned").clone()
    }

    /// True once the bridge thread has ended (a record failure ends it).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Stops the bridge: waits up to 2 s for the answers to orders the downstream holds
    /// (recorded and acknowledged as usual), gives the orders it had not handed over back
    /// to the stream (negative acknowledgement: redelivered at once), and leaves any order
    /// still with the downstream unacknowledged (redelivered after `ack_wait`).
    pub fn stop(mut self) -> Result<BridgeStats, BridgeError> {
        self.halt()?;
        Ok(self.stats())
    }

    fn halt(&mut self) -> Result<(), BridgeError> {
        self.shared.stop.store(true, Ordering::Release);
        match self.thread.take() {
            Some(t) => t.join().expect("bridge thread does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.halt();
    }
}

/// Keeps a durable pull consumer going and forwards its messages: after a server restart or
/// a lost consumer it sets the consumer up again.
async fn pump(js: jetstream::Context, cfg: BridgeConfig, tx: Sender<jetstream::Message>, s: Arc<Shared>) {
    let fail = |why: String| {
        s.pump_errors.fetch_add(1, Ordering::Relaxed);
        *s.last_error.lock().expect("not poisoned") = why;
    };
    while !s.stop.load(Ordering::Acquire) {
        let consumer = async {
            let stream = crate::executor::ensure_orders_stream(&js, &cfg.venue, cfg.duplicate_window).await?;
            let c: jetstream::consumer::Consumer<pull::Config> = stream
                .get_or_create_consumer(
                    &cfg.durable,
                    pull::Config {
                        durable_name: Some(cfg.durable.clone()),
                        ack_policy: AckPolicy::Explicit,
                        ack_wait: cfg.ack_wait,
                        max_ack_pending: cfg.max_ack_pending,
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| format!("consumer {}: {e}", cfg.durable))?;
            c.stream()
                .heartbeat(Duration::from_millis(500))
                .expires(Duration::from_secs(2))
                .messages()
                .await
                .map_err(|e| format!("consumer {}: {e}", cfg.durable))
        };
        let mut messages = match tokio::time::timeout(Duration::from_secs(2), consumer).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => {
                fail(format!("nats server {}: {e}", cfg.url));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => {
                fail(format!("nats server {}: no answer setting up the consumer", cfg.url));
                continue;
            }
        };
        s.consuming.store(true, Ordering::Release);
        while let Some(m) = messages.next().await {
            match m {
                Ok(m) => {
                    if s.pump_stop.load(Ordering::Acquire) || tx.send(m).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // A missed heartbeat (a restarted server lost the pull request), a deleted
                    // consumer, a refused pull: set the consumer up again, pulling anew.
                    fail(format!("nats server {}: consumer {}: {e}", cfg.url, cfg.durable));
                    break;
                }
            }
        }
        s.consuming.store(false, Ordering::Release);
    }
}

struct Flight {
    order: LiquidationOrder,
    /// The latest delivery (its reply subject acknowledges the stream message).
    msg: jetstream::Message,
}

struct Worker {
    rt: tokio::runtime::Runtime,
    client: async_nats::Client,
    cfg: BridgeConfig,
    rx: Receiver<jetstream::Message>,
    downstream: Box<dyn Executor + Send>,
    record: Record,
    s: Arc<Shared>,
    flights: HashMap<OrderId, Flight>,
    /// Orders waiting for their hand-over, oldest first.
    queue: VecDeque<OrderId>,
}

impl Worker {
    fn run(mut self) -> Result<(), BridgeError> {
        let mut done = Vec::new();
        let mut blocked = false;
        while !self.s.stop.load(Ordering::Acquire) {
            // Wait briefly for a message; the downstream's answers are polled on each turn.
            let wait = if blocked {
                self.cfg.retry
            } else if self.flights.is_empty() {
                Duration::from_millis(5)
            } else {
                Duration::from_micros(200)
            };
            match self.rx.recv_timeout(wait) {
                Ok(m) => self.take(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(m) = self.rx.try_recv() {
                self.take(m);
            }
            blocked = self.hand_over();
            self.downstream.poll(&mut done);
            for c in done.drain(..) {
                self.answer(c)?;
            }
        }
        // A graceful stop waits (bounded) for the answers to orders the downstream holds, so
        // the next run does not hand them over again; any still unanswered after the wait
        // stay unacknowledged and come again after `ack_wait`.
        let end = std::time::Instant::now() + DRAIN;
        while self.flights.len() > self.queue.len() && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_micros(200));
            self.downstream.poll(&mut done);
            for c in done.drain(..) {
                if c.outcome != Outcome::Lost {
                    self.answer(c)?;
                }
            }
        }
        // Orders never handed over go back to the stream now, for the next run or another
        // bridge of the same consumer, instead of after `ack_wait`.
        for id in std::mem::take(&mut self.queue) {
            if let Some(f) = self.flights.remove(&id) {
                self.ack(&f.msg, AckKind::Nak(None));
            }
        }
        // So do the messages the pump forwarded and this thread had not taken yet. (Any the
        // client had pulled and not yielded come again after `ack_wait`.)
        self.s.pump_stop.store(true, Ordering::Release);
        while let Ok(m) = self.rx.recv_timeout(Duration::from_millis(20)) {
            self.ack(&m, AckKind::Nak(None));
        }
        // The acknowledgements are in the client's buffer: out before the connection closes.
        let client = self.client.clone();
        let _ =
            self.rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), client.flush()).await });
        self.rt.shutdown_timeout(Duration::from_millis(200));
        Ok(())
    }

    fn stat(&self, f: impl FnOnce(&mut BridgeStats)) {
        f(&mut self.s.stats.lock().expect("not poisoned"));
    }

    /// A delivery from the stream.
    fn take(&mut self, m: jetstream::Message) {
        let (seq, delivered) = m.info().map(|i| (i.stream_sequence, i.delivered)).unwrap_or((0, 0));
        let order = match parse(&m) {
            Ok(o) => o,
            Err(why) => {
                tracing::warn!(subject = %m.subject, seq, delivered, "bridge refused a message: {why}");
                self.stat(|s| s.malformed += 1);
                self.ack(&m, AckKind::Term);
                return;
            }
        };
        if self.record.contains(order.id) {
            self.stat(|s| s.already_done += 1);
            self.ack(&m, AckKind::Ack);
        } else if let Some(f) = self.flights.get_mut(&order.id) {
            f.msg = m;
            self.stat(|s| s.redelivered_in_flight += 1);
        } else {
            let id = order.id;
            // The bridge counts its own hand-overs of the order.
            self.flights.insert(id, Flight { order: LiquidationOrder { attempt: 1, ..order }, msg: m });
            self.queue.push_back(id);
            self.stat(|s| s.delivered += 1);
        }
    }

    /// Offers queued orders to the downstream; true if it refused one for now.
    fn hand_over(&mut self) -> bool {
        while let Some(&id) = self.queue.front() {
            if self.flights.len() - self.queue.len() >= self.cfg.max_in_flight {
                return false;
            }
            let Some(f) = self.flights.get(&id) else {
                self.queue.pop_front();
                continue;
            };
            match self.downstream.submit(&f.order) {
                Ok(()) => {
                    self.queue.pop_front();
                    self.stat(|s| s.handed += 1);
                }
                Err(e) => {
                    *self.s.last_error.lock().expect("not poisoned") = e.to_string();
                    return true;
                }
            }
        }
        false
    }

    /// A downstream answer: record, then acknowledge; a lost one is handed over again.
    fn answer(&mut self, c: Completion) -> Result<(), BridgeError> {
        let Some(f) = self.flights.get_mut(&c.id) else { return Ok(()) };
        if f.order.attempt != c.attempt {
            return Ok(());
        }
        if c.outcome == Outcome::Lost {
            f.order.attempt += 1;
            self.queue.push_back(c.id);
            self.stat(|s| s.lost += 1);
            return Ok(());
        }
        self.record.add(c.id)?;
        let f = self.flights.remove(&c.id).expect("present");
        self.ack(&f.msg, AckKind::Ack);
        let filled = matches!(c.outcome, Outcome::Filled { .. });
        self.stat(|s| {
            s.answered += 1;
            s.filled += u64::from(filled);
        });
        Ok(())
    }

    fn ack(&self, m: &jetstream::Message, kind: AckKind) {
        if self.rt.block_on(m.ack_with(kind)).is_err() {
            self.stat(|s| s.ack_failures += 1);
        }
    }
}

/// The order in a message, checked against its `Nats-Msg-Id`.
fn parse(m: &jetstream::Message) -> Result<LiquidationOrder, String> {
    let order: LiquidationOrder =
        serde_json::from_slice(&m.payload).map_err(|e| format!("not a liquidation order: {e}"))?;
    let msg_id = m.headers.as_ref().and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID));
    match msg_id.map(|v| v.as_str()) {
        Some(v) if v == order.id.to_string() => Ok(order),
        Some(v) => Err(format!("Nats-Msg-Id {v:?} is not the order's id {}", order.id)),
        None => Err(format!("no Nats-Msg-Id (order {})", order.id)),
    }
}
