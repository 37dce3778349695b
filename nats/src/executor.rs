//! [`NatsExecutor`]: orders out to a venue's JetStream order stream, de-duplicated by the
//! server.
//!
//! Each order is published to `liqscan.<venue>.orders` as its JSON form (the same object a
//! JSONL sink writes, `docs/SIMULATOR.md`'s order) with the header `Nats-Msg-Id` set to the
//! order id in decimal, and `Liqscan-Keeper` set to the publishing keeper's name. Order ids are
//! derived from the account, the breach episode and the ordinal only
//! ([`OrderKey`](liqscan_host::dispatch::OrderKey)), so two keepers on the same feed build the
//! same id for the same liquidation and the stream keeps the first one published within its
//! duplicate window ([`NatsConfig::duplicate_window`]); retries keep the id and are dropped the
//! same way.
//!
//! An order counts as [`Outcome::Sent`] once the server acknowledged it (stored, or recognised
//! as a duplicate): from there the bridge owns it. No acknowledgement within
//! [`NatsConfig::ack_timeout`] is [`Outcome::Lost`]; the dispatcher re-sends under the same id
//! and the server's de-duplication makes that safe.
//!
//! Threads: [`NatsExecutor::submit`] only puts the order in a bounded crossbeam queue (full:
//! [`SubmitError::Busy`]; server unreachable or stream missing: [`SubmitError::Unavailable`]
//! naming the server, and the dispatcher backs the account off). An I/O thread publishes;
//! a one-worker tokio runtime carries the connection and turns acknowledgements into
//! completions.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use liqscan_host::dispatch::{Completion, Executor, LiquidationOrder, Outcome, SubmitError};

use crate::subjects::Venue;

/// Header naming the keeper that published an order (the kept copy's publisher).
pub const KEEPER_HEADER: &str = "Liqscan-Keeper";

/// Settings of the NATS executor.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated (`nats://127.0.0.1:4222`).
    pub url: String,
    /// The venue whose order stream takes the orders.
    pub venue: Venue,
    /// This keeper's name (header [`KEEPER_HEADER`], the connection's name).
    pub keeper: String,
    /// Orders queued for the I/O thread at most.
    pub queue: usize,
    /// Longest wait for the server's acknowledgement of a publish.
    pub ack_timeout: Duration,
    /// The stream's de-duplication window, used when this executor creates the stream: two
    /// publications of one id further apart than this are both kept (the bridge's record
    /// still hands the order over once).
    pub duplicate_window: Duration,
}

impl NatsConfig {
    /// Defaults: queue 1024, acknowledgement within 2 s, duplicate window 2 min.
    pub fn new(url: impl Into<String>, venue: Venue, keeper: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            venue,
            keeper: keeper.into(),
            queue: 1024,
            ack_timeout: Duration::from_secs(2),
            duplicate_window: Duration::from_secs(120),
        }
    }
}

/// Creates the venue's order stream if it is missing (file storage, the given duplicate
/// window); an existing stream is used as it is.
pub(crate) async fn ensure_orders_stream(
    js: &jetstream::Context,
    venue: &Venue,
    duplicate_window: Duration,
) -> Result<stream::Stream, String> {
    js.get_or_create_stream(stream::Config {
        name: venue.orders_stream(),
        subjects: vec![venue.orders_subject()],
        storage: stream::StorageType::File,
        duplicate_window,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("order stream {}: {e}", venue.orders_stream()))
}

#[derive(Default)]
struct Shared {
    up: AtomicBool,
    stop: AtomicBool,
    last_error: Mutex<String>,
    published: AtomicU64,
    duplicates: AtomicU64,
    lost: AtomicU64,
}

impl Shared {
    fn fail(&self, why: String) {
        *self.last_error.lock().expect("not poisoned") = why;
    }
}

/// Counts of a [`NatsExecutor`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatsStats {
    /// Orders the server stored (first publication of their id).
    pub published: u64,
    /// Orders the server recognised as duplicates and dropped.
    pub duplicates: u64,
    /// Publishes with no acknowledgement (reported [`Outcome::Lost`]).
    pub lost: u64,
}

/// The NATS JetStream executor. Dropping it stops its threads.
pub struct NatsExecutor {
    name: String,
    tx: Option<Sender<LiquidationOrder>>,
    done: Receiver<Completion>,
    shared: Arc<Shared>,
    io: Option<JoinHandle<()>>,
}

impl NatsExecutor {
    /// Starts the I/O thread; it connects and creates the stream in the background.
    pub fn start(cfg: NatsConfig) -> std::io::Result<Self> {
        let rt = crate::runtime("liqscan-nats-exec")?;
        let (tx, rx) = bounded(cfg.queue.max(1));
        let (done_tx, done) = unbounded();
        let shared = Arc::new(Shared::default());
        let name = format!("{} ({})", cfg.url, cfg.venue.orders_subject());
        let s = shared.clone();
        let io = std::thread::Builder::new()
            .name("liqscan-nats-exec".into())
            .spawn(move || io_thread(rt, cfg, rx, done_tx, s))?;
        Ok(NatsExecutor { name, tx: Some(tx), done, shared, io: Some(io) })
    }

    /// True while connected with the stream in place.
    pub fn is_up(&self) -> bool {
        self.shared.up.load(Ordering::Acquire)
    }

    /// Waits until [`is_up`](Self::is_up), at most `timeout`.
    pub fn wait_up(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while !self.is_up() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.is_up()
    }

    /// Why the connection or the stream last failed (empty if never).
    pub fn last_error(&self) -> String {
        self.shared.last_error.lock().expect("not poisoned").clone()
    }

    /// Counts so far.
    pub fn stats(&self) -> NatsStats {
        NatsStats {
            published: self.shared.published.load(Ordering::Relaxed),
            duplicates: self.shared.duplicates.load(Ordering::Relaxed),
            lost: self.shared.lost.load(Ordering::Relaxed),
        }
    }
}

impl Drop for NatsExecutor {
    /// Publishes the orders still queued (for at most [`NatsConfig::ack_timeout`]), then
    /// stops.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.tx = None;
        if let Some(h) = self.io.take() {
            let _ = h.join();
        }
    }
}

impl Executor for NatsExecutor {
    fn name(&self) -> &str {
        &self.name
    }

    fn submit(&mut self, order: &LiquidationOrder) -> Result<(), SubmitError> {
        if !self.is_up() {
            return Err(SubmitError::Unavailable { executor: self.name.clone(), detail: self.last_error() });
        }
        liqscan_host::dispatch::hand_to_io_thread(&self.name, self.tx.as_ref().expect("running"), order)
    }

    fn poll(&mut self, out: &mut Vec<Completion>) {
        out.extend(self.done.try_iter());
    }
}

fn io_thread(
    rt: tokio::runtime::Runtime,
    cfg: NatsConfig,
    rx: Receiver<LiquidationOrder>,
    done: Sender<Completion>,
    s: Arc<Shared>,
) {
    // The client and the JetStream context spawn their tasks on this runtime.
    let _rt = rt.enter();
    let client = match rt.block_on(crate::connect_options(&cfg.keeper).connect(cfg.url.as_str())) {
        Ok(c) => c,
        Err(e) => {
            // Only a malformed URL fails here (connecting is retried in the background).
            s.fail(format!("nats server {}: {e}", cfg.url));
            return;
        }
    };
    let js = jetstream::ContextBuilder::new().timeout(cfg.ack_timeout).build(client.clone());
    let subject = cfg.venue.orders_subject();
    let mut stream_ready = false;
    let mut line = Vec::with_capacity(512);
    // After the keeper drops the executor, the orders still queued are published for at
    // most one acknowledgement time-out more.
    let mut deadline = None;
    loop {
        if s.stop.load(Ordering::Acquire) {
            let end = *deadline.get_or_insert_with(|| Instant::now() + cfg.ack_timeout);
            if Instant::now() >= end {
                break;
            }
        }
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        if !connected {
            s.fail(format!("nats server {}: not connected", cfg.url));
        } else if !stream_ready {
            let ensure = ensure_orders_stream(&js, &cfg.venue, cfg.duplicate_window);
            match rt.block_on(async { tokio::time::timeout(Duration::from_secs(1), ensure).await }) {
                Ok(Ok(_)) => stream_ready = true,
                Ok(Err(e)) => s.fail(format!("nats server {}: {e}", cfg.url)),
                Err(_) => s.fail(format!("nats server {}: no answer creating the order stream", cfg.url)),
            }
        }
        s.up.store(connected && stream_ready, Ordering::Release);
        let order = match rx.recv_timeout(Duration::from_millis(5)) {
            Ok(o) => o,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        line.clear();
        serde_json::to_writer(&mut line, &order).expect("an order serialises");
        let msg = PublishMessage::build()
            .payload(bytes::Bytes::copy_from_slice(&line))
            .message_id(order.id.to_string())
            .header(KEEPER_HEADER, cfg.keeper.as_str());
        let (id, attempt) = (order.id, order.attempt);
        // The first publish here keeps the orders' sequence; its acknowledgement, and any
        // re-publish, on the runtime.
        let first = rt.block_on(js.send_publish(subject.clone(), msg.clone()));
        let (js, subject, s, done, url) =
            (js.clone(), subject.clone(), s.clone(), done.clone(), cfg.url.clone());
        let budget = cfg.ack_timeout;
        rt.spawn(async move {
            let outcome = match confirm(first, &js, &subject, msg, budget).await {
                Ok(a) => {
                    let n = if a.duplicate { &s.duplicates } else { &s.published };
                    n.fetch_add(1, Ordering::Relaxed);
                    Outcome::Sent
                }
                Err(e) => {
                    s.lost.fetch_add(1, Ordering::Relaxed);
                    s.fail(format!("nats server {url}: order {id}: {e}"));
                    Outcome::Lost
                }
            };
            let _ = done.send(Completion { id, attempt, outcome });
        });
    }
    s.up.store(false, Ordering::Release);
    // Out of the client's buffer before the connection closes; then the acknowledgements
    // still in flight complete or time out on the runtime's worker.
    let _ = rt.block_on(async { tokio::time::timeout(cfg.ack_timeout, client.flush()).await });
    rt.shutdown_timeout(cfg.ack_timeout);
}

/// Waits for the acknowledgement of a publish, publishing the same message (same id) again
/// after a quick refusal (no responders while a restarted server recovers its streams, a
/// connection that dropped), until `budget` has passed since the first publish: only then
/// does the dispatcher hear of it ([`Outcome::Lost`]), so a short outage neither costs an
/// attempt nor makes the dispatcher give the order up and build another.
async fn confirm(
    first: Result<jetstream::context::PublishAckFuture, jetstream::context::PublishError>,
    js: &jetstream::Context,
    subject: &str,
    msg: PublishMessage,
    budget: Duration,
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    let end = tokio::time::Instant::now() + budget;
    let mut next = first;
    loop {
        let r = match next {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match r {
            Ok(a) => return Ok(a),
            Err(e) if e.kind() == PublishErrorKind::TimedOut || tokio::time::Instant::now() >= end => {
                return Err(e);
            }
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                next = js.send_publish(subject.to_string(), msg.clone()).await;
            }
        }
    }
}

/// The keeper's name for [`KEEPER_HEADER`]: `$LIQSCAN_KEEPER`, else `keeper-<pid>`.
pub fn keeper_name() -> String {
    std::env::var("LIQSCAN_KEEPER").unwrap_or_else(|_| format!("keeper-{}", std::process::id()))
}

/// Parses the `VENUE@URL` of `--executor nats:VENUE@URL` (e.g. `demo@nats://127.0.0.1:4222`).
pub fn parse_spec(spec: &str) -> Result<(Venue, String), String> {
    let (venue, url) = spec.split_once('@').ok_or_else(|| {
        format!("executor nats:{spec}: use nats:VENUE@URL (e.g. nats:demo@nats://127.0.0.1:4222)")
    })?;
    let venue = Venue::new(venue).map_err(|e| format!("executor nats:{spec}: {e}"))?;
    if url.is_empty() {
        return Err(format!("executor nats:{spec}: no server URL after '@'"));
    }
    Ok((venue, url.to_string()))
}

/// The executor of `--executor nats:VENUE@URL`, named by [`keeper_name`]; waits up to 2 s for
/// the server (orders back off until it answers).
pub fn from_spec(spec: &str) -> Result<Box<dyn Executor>, String> {
    let (venue, url) = parse_spec(spec)?;
    let e = NatsExecutor::start(NatsConfig::new(url.clone(), venue, keeper_name()))
        .map_err(|e| format!("executor nats:{spec}: {e}"))?;
    if !e.wait_up(Duration::from_secs(2)) {
        tracing::warn!(server = %url, "NATS executor not up yet ({}); orders back off until it is", e.last_error());
    }
    Ok(Box::new(e))
}
