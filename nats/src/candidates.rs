//! Candidates out: breach, recovery and at-risk events, published per venue on
//! `liqscan.<venue>.candidates` (stream `liqscan_<venue>_candidates`) for downstream executors
//! and dashboards.
//!
//! Schema `liqscan-candidate/1`, one JSON object per message:
//!
//! ```json
//! {"schema":"liqscan-candidate/1","venue":"demo","kind":"breach","seq":812,"slot":4,
//!  "account":1099511627780,"keeper":"keeper-a"}
//! ```
//!
//! - `kind`: `breach` (the account fell below its liquidation line in the scan of message
//!   `seq`), `recovery` (it is back above), `at_risk` (below the line at stressed prices, not
//!   breached);
//! - `seq`: the feed sequence number of the message whose scan found it (for a breach, the
//!   breach episode of its orders);
//! - `slot`, `account`: the scan slot and the venue's stable account key;
//! - `keeper`: the publishing keeper.
//!
//! Each message's `Nats-Msg-Id` is `<kind>:<account>:<seq>`, so the copies two keepers on the
//! same feed publish are de-duplicated by the server like orders. A later version adds fields
//! (readers ignore unknown ones) or changes the `schema` string.
//!
//! The engine thread only pushes fixed-size events into a lock-free bounded queue
//! ([`CandidateTap`]); a full queue drops the event and counts it (never blocks the scan). A
//! publisher thread drains the queue and publishes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use crossbeam::queue::ArrayQueue;
use liqscan_host::pipeline::BreachSink;
use serde::{Deserialize, Serialize};

use crate::subjects::Venue;

/// The schema string of this version.
pub const SCHEMA: &str = "liqscan-candidate/1";

/// What happened to the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateKind {
    /// Fell below its liquidation line.
    Breach,
    /// Back above its liquidation line.
    Recovery,
    /// Below the line at stressed prices (not breached).
    AtRisk,
}

impl CandidateKind {
    fn tag(self) -> &'static str {
        match self {
            CandidateKind::Breach => "breach",
            CandidateKind::Recovery => "recovery",
            CandidateKind::AtRisk => "at_risk",
        }
    }
}

/// One candidate message (schema [`SCHEMA`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// [`SCHEMA`].
    pub schema: String,
    /// The venue.
    pub venue: String,
    /// What happened.
    pub kind: CandidateKind,
    /// Feed sequence number of the message whose scan found it.
    pub seq: u64,
    /// Scan slot.
    pub slot: u32,
    /// The venue's stable account key.
    pub account: u64,
    /// The publishing keeper.
    pub keeper: String,
}

impl Candidate {
    /// The message id the server de-duplicates on.
    pub fn msg_id(&self) -> String {
        format!("{}:{}:{}", self.kind.tag(), self.account, self.seq)
    }
}

#[derive(Clone, Copy)]
struct Event {
    kind: CandidateKind,
    seq: u64,
    slot: u32,
}

struct Shared {
    queue: ArrayQueue<Event>,
    stop: AtomicBool,
    dropped: AtomicU64,
    published: AtomicU64,
    failed: AtomicU64,
}

/// The engine thread's side: a [`BreachSink`] that queues candidates without blocking.
pub struct CandidateTap {
    shared: Arc<Shared>,
}

impl CandidateTap {
    #[inline]
    fn push(&self, kind: CandidateKind, seq: u64, slots: &[u32]) {
        for &slot in slots {
            if self.shared.queue.push(Event { kind, seq, slot }).is_err() {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl BreachSink for CandidateTap {
    fn on_scan(&mut self, seq: u64, breached: &[u32], cleared: &[u32], at_risk: &[u32]) {
        self.push(CandidateKind::Breach, seq, breached);
        self.push(CandidateKind::Recovery, seq, cleared);
        self.push(CandidateKind::AtRisk, seq, at_risk);
    }
}

/// Counts of a publisher.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CandidateStats {
    /// Candidates the server acknowledged.
    pub published: u64,
    /// Candidates dropped because the queue was full.
    pub dropped: u64,
    /// Publishes that failed or were not acknowledged.
    pub failed: u64,
}

/// The publisher thread. Dropping it publishes what is queued, then stops.
pub struct CandidatePublisher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl CandidatePublisher {
    /// Starts publishing the venue's candidates to `url`, naming slots by `accounts` (slot →
    /// account key), with a queue of `capacity` events; returns the publisher and the tap for
    /// the engine thread.
    pub fn start(
        url: &str,
        venue: Venue,
        keeper: &str,
        accounts: Vec<u64>,
        capacity: usize,
    ) -> std::io::Result<(CandidatePublisher, CandidateTap)> {
        let shared = Arc::new(Shared {
            queue: ArrayQueue::new(capacity.max(1)),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            published: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        let rt = crate::runtime("liqscan-nats-cand")?;
        let (s, url, keeper) = (shared.clone(), url.to_string(), keeper.to_string());
        let thread = std::thread::Builder::new()
            .name("liqscan-candidates".into())
            .spawn(move || publish_loop(rt, url, venue, keeper, accounts, s))?;
        let tap = CandidateTap { shared: shared.clone() };
        Ok((CandidatePublisher { shared, thread: Some(thread) }, tap))
    }

    /// Counts so far.
    pub fn stats(&self) -> CandidateStats {
        CandidateStats {
            published: self.shared.published.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
        }
    }
}

impl CandidatePublisher {
    /// Publishes what is queued, waits for the server's acknowledgements, stops, and returns
    /// the final counts.
    pub fn finish(mut self) -> CandidateStats {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.stats()
    }
}

impl Drop for CandidatePublisher {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn publish_loop(
    rt: tokio::runtime::Runtime,
    url: String,
    venue: Venue,
    keeper: String,
    accounts: Vec<u64>,
    s: Arc<Shared>,
) {
    let _rt = rt.enter();
    let Ok(client) = rt.block_on(crate::connect_options(&keeper).connect(url.as_str())) else {
        s.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let js = jetstream::new(client);
    let subject = venue.candidates_subject();
    let mut ready = false;
    let mut acks: Vec<AckTask> = Vec::new();
    loop {
        let stopping = s.stop.load(Ordering::Acquire);
        if !ready {
            let cfg = stream::Config {
                name: venue.candidates_stream(),
                subjects: vec![subject.clone()],
                storage: stream::StorageType::File,
                ..Default::default()
            };
            let ensure =
                async { tokio::time::timeout(Duration::from_secs(1), js.get_or_create_stream(cfg)).await };
            ready = matches!(rt.block_on(ensure), Ok(Ok(_)));
            if !ready {
                if stopping {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        let Some(e) = s.queue.pop() else {
            if stopping {
                break;
            }
            // Idle: count the acknowledgements that came.
            let (mut finished, waiting): (Vec<AckTask>, Vec<AckTask>) =
                acks.drain(..).partition(|a: &AckTask| a.is_finished());
            acks = waiting;
            settle(&rt, &mut finished, &s);
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        let c = Candidate {
            schema: SCHEMA.into(),
            venue: venue.name().into(),
            kind: e.kind,
            seq: e.seq,
            slot: e.slot,
            account: accounts.get(e.slot as usize).copied().unwrap_or(u64::from(e.slot)),
            keeper: keeper.clone(),
        };
        let body = serde_json::to_vec(&c).expect("a candidate serialises");
        let msg = PublishMessage::build().payload(body.into()).message_id(c.msg_id());
        match rt.block_on(js.send_publish(subject.clone(), msg)) {
            Ok(ack) => acks.push(rt.spawn(ack.into_future())),
            Err(_) => {
                s.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Count acknowledgements as they come, without holding many tasks.
        if acks.len() >= 256 {
            settle(&rt, &mut acks, &s);
        }
    }
    settle(&rt, &mut acks, &s);
}

/// A publish's acknowledgement, awaited on the runtime.
type AckTask =
    tokio::task::JoinHandle<Result<jetstream::publish::PublishAck, jetstream::context::PublishError>>;

fn settle(rt: &tokio::runtime::Runtime, acks: &mut Vec<AckTask>, s: &Shared) {
    for a in acks.drain(..) {
        match rt.block_on(a) {
            Ok(Ok(_)) => s.published.fetch_add(1, Ordering::Relaxed),
            _ => s.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Every candidate the venue's stream holds, oldest first (one copy per message id): for
/// checks, tools and tests. Waits at most `timeout` for the server; a stream that does not
/// exist yet holds nothing.
pub fn read_stored(url: &str, venue: &Venue, timeout: Duration) -> std::io::Result<Vec<Candidate>> {
    use futures_util::StreamExt;
    let rt = crate::runtime("liqscan-nats-read")?;
    fn io(e: impl std::fmt::Display) -> std::io::Error {
        std::io::Error::other(e.to_string())
    }
    rt.block_on(async {
        let client = tokio::time::timeout(timeout, async_nats::connect(url))
            .await
            .map_err(|_| io(format!("NATS server {url}: no answer within {timeout:?}")))?
            .map_err(|e| io(format!("NATS server {url}: {e}")))?;
        let js = jetstream::new(client);
        let Ok(mut stream) = js.get_stream(venue.candidates_stream()).await else { return Ok(Vec::new()) };
        let stored = stream.info().await.map_err(io)?.state.messages as usize;
        let consumer =
            stream.create_consumer(jetstream::consumer::pull::Config::default()).await.map_err(io)?;
        let mut out = Vec::with_capacity(stored);
        let mut messages = consumer.messages().await.map_err(io)?;
        while out.len() < stored {
            let m = tokio::time::timeout(timeout, messages.next())
                .await
                .map_err(|_| {
                    io(format!("{} of {stored} stored candidates read before the time-out", out.len()))
                })?
                .ok_or_else(|| io("the candidates stream ended"))?
                .map_err(io)?;
            out.push(serde_json::from_slice(&m.payload).map_err(io)?);
            m.ack().await.map_err(io)?;
        }
        Ok(out)
    })
}
