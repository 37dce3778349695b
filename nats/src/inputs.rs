//! Inputs on a stream: a venue's ticks and account deltas on its JetStream input stream
//! (`liqscan_<venue>_inputs`, subjects `liqscan.<venue>.ticks` and `.accounts`; one feed
//! frame a message, the wire format of docs/WIRE_FORMAT.md).
//!
//! - [`InputPublisher`] (`liqscan publish`): frames out in order, each acknowledged by the
//!   server before the next is sent (so a retry after a lost acknowledgement can never land
//!   behind a later frame); a retry keeps its message id (`<run>:<frame>`), so the server
//!   stores it once.
//! - [`source`] (`liqscan run --nats`): the keeper's [`InputSource`]. An ordered consumer
//!   (ephemeral, no acknowledgements) reads the stream from the keeper's own position: the
//!   sequence after the last one its journal applied, or the stream's first message without a
//!   journal. The position lives with the book, not in a durable consumer on the server: the
//!   journal writes the frame and its stream sequence in one record, so after a kill -9 the
//!   book and the position agree, which an acknowledgement sent apart from the journal write
//!   could not promise. Each message goes through the listeners' checks
//!   ([`FrameIntake`](liqscan_host::feed::intake::FrameIntake)) numbered by its stream
//!   sequence; a refused one is counted (`liqscan_inputs_refused_total{reason}`), logged with
//!   its subject and stream sequence, and never reaches the book.
//!
//! A server that is down or unreachable: the source notes its address once, the keeper goes
//! on scanning the book it has (nothing new arrives to scan), and reading resumes after the
//! last sequence taken when the server answers again: the consumer is made again from the
//! keeper's position after any reconnection, and, as a safeguard, after a second of silence
//! while the stream holds messages past that position (a consumer that stopped delivering).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, message::PublishMessage, stream};
use futures_util::StreamExt;
use liqscan_host::feed::auth::HmacKey;
use liqscan_host::feed::intake::{FrameIntake, FrameKinds};
use liqscan_host::feed::listen::{FeedOptions, ListenReport};
use liqscan_host::feed::wire::{self, Frame};
use liqscan_host::keeper::{InputPort, InputSource, Notes};
use liqscan_host::pipeline::FeedMsg;

use crate::subjects::Venue;

/// Creates the venue's input stream if it is missing (file storage, both input subjects);
/// an existing stream is used as it is.
pub async fn ensure_inputs_stream(js: &jetstream::Context, venue: &Venue) -> Result<stream::Stream, String> {
    js.get_or_create_stream(stream::Config {
        name: venue.inputs_stream(),
        subjects: vec![venue.ticks_subject(), venue.accounts_subject()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("input stream {}: {e}", venue.inputs_stream()))
}

/// How long a publish may keep being retried (server restarting) before it is an error.
const PUBLISH_BUDGET: Duration = Duration::from_secs(10);

/// Publishes feed frames to a venue's input stream, in order.
pub struct InputPublisher {
    rt: tokio::runtime::Runtime,
    js: jetstream::Context,
    url: String,
    venue: Venue,
    /// Message ids are `<run>:<frame>`: unique to this publisher run.
    run: String,
    frames: u64,
    key: Option<HmacKey>,
    buf: Vec<u8>,
}

/// Waits up to `timeout` for `client` (connecting in the background) to be connected; if it is
/// not, asks once more without retrying, for the reason (refused, no such host) to name.
async fn connected_within(client: &async_nats::Client, url: &str, timeout: Duration) -> Result<(), String> {
    let end = tokio::time::Instant::now() + timeout;
    while client.connection_state() != async_nats::connection::State::Connected {
        if tokio::time::Instant::now() >= end {
            let why = match async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(1))
                .connect(url)
                .await
            {
                Err(e) => e.to_string(),
                Ok(_) => "it answers now; try again".into(),
            };
            return Err(format!(
                "nats server {url}: not connected within {timeout:?}: {why} (is nats-server running there, with -js?)"
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

impl InputPublisher {
    /// Connects to `url` (waiting at most `timeout` for it) and creates the venue's input
    /// stream if missing; frames are signed with `key` if given (the feed's shared secret).
    pub fn connect(url: &str, venue: Venue, key: Option<HmacKey>, timeout: Duration) -> Result<Self, String> {
        let rt = crate::runtime("liqscan-nats-pub").map_err(|e| e.to_string())?;
        let name = crate::executor::keeper_name();
        let js = rt.block_on(async {
            let client = tokio::time::timeout(timeout, crate::connect_options(&name).connect(url))
                .await
                .map_err(|_| format!("nats server {url}: no answer within {timeout:?}"))?
                .map_err(|e| format!("nats server {url}: {e}"))?;
            // The client connects in the background: without a server the stream request below
            // timed out, and said only that.
            connected_within(&client, url, timeout).await?;
            // A short acknowledgement wait: a frame sent as the server died is re-sent (same
            // id) after 1 s rather than the client's default 5 s.
            let js = jetstream::ContextBuilder::new().timeout(Duration::from_secs(1)).build(client);
            tokio::time::timeout(timeout, ensure_inputs_stream(&js, &venue))
                .await
                .map_err(|_| {
                    format!("nats server {url}: no answer within {timeout:?} (is JetStream on? -js)")
                })?
                .map_err(|e| format!("nats server {url}: {e}"))?;
            Ok::<_, String>(js)
        })?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let run = format!("{}-{}", std::process::id(), nanos.as_nanos());
        Ok(InputPublisher {
            rt,
            js,
            url: url.to_string(),
            venue,
            run,
            frames: 0,
            key,
            buf: Vec::with_capacity(wire::MAX_FRAME),
        })
    }

    /// Frames published so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Publishes one message as the next frame (ticks on `.ticks`, account deltas on
    /// `.accounts`), `ts_ns` its sender time; returns its stream sequence once stored.
    pub fn publish(&mut self, msg: &FeedMsg, ts_ns: u64) -> Result<u64, String> {
        let subject = match msg {
            FeedMsg::Tick { .. } => self.venue.ticks_subject(),
            FeedMsg::Upsert { .. } | FeedMsg::Remove { .. } => self.venue.accounts_subject(),
            FeedMsg::End => return Err("the end marker is not published".into()),
        };
        let f = Frame { seq: self.frames + 1, ts_ns, msg: *msg };
        let mut buf = std::mem::take(&mut self.buf);
        match &self.key {
            Some(k) => wire::encode_signed(&f, k, &mut buf),
            None => wire::encode(&f, &mut buf),
        }
        let r = self.publish_raw(&subject, &buf);
        self.buf = buf;
        r
    }

    /// Publishes `bytes` as they are on `subject` (tests: malformed or misplaced messages)
    /// as the next frame's message; returns its stream sequence.
    pub fn publish_raw(&mut self, subject: &str, bytes: &[u8]) -> Result<u64, String> {
        self.frames += 1;
        let id = format!("{}:{}", self.run, self.frames);
        let msg = PublishMessage::build().payload(bytes::Bytes::copy_from_slice(bytes)).message_id(id);
        let (js, subject) = (self.js.clone(), subject.to_string());
        let frame = self.frames;
        let url = self.url.clone();
        self.rt.block_on(async move {
            let end = tokio::time::Instant::now() + PUBLISH_BUDGET;
            loop {
                let r = match js.send_publish(subject.clone(), msg.clone()).await {
                    Ok(ack) => ack.await,
                    Err(e) => Err(e),
                };
                match r {
                    Ok(a) => return Ok(a.sequence),
                    Err(e) if tokio::time::Instant::now() >= end => {
                        return Err(format!("nats server {url}: frame {frame} on {subject} not stored: {e}"));
                    }
                    // The same id again: stored once even if the first one was.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
    }
}

/// The keeper's input source for `liqscan run --nats URL --nats-venue VENUE`: hand it to
/// [`KeeperBuilder::inputs_with`](liqscan_host::keeper::KeeperBuilder::inputs_with).
pub fn source(
    url: String,
    venue: Venue,
) -> impl FnOnce(InputPort) -> Result<Box<dyn InputSource>, String> + Send + 'static {
    move |port| NatsInputs::start(url, venue, port).map(|s| Box::new(s) as Box<dyn InputSource>)
}

/// The running source.
pub struct NatsInputs {
    what: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<ListenReport>>,
}

impl NatsInputs {
    /// Connects (in the background; only a malformed URL fails here) and starts reading.
    pub fn start(url: String, venue: Venue, port: InputPort) -> Result<Self, String> {
        let rt = crate::runtime("liqscan-nats-in").map_err(|e| format!("nats {url}: {e}"))?;
        let reconnects = Arc::new(AtomicU64::new(0));
        let r = reconnects.clone();
        let opts = crate::connect_options(&crate::executor::keeper_name()).event_callback(move |ev| {
            let r = r.clone();
            async move {
                if matches!(ev, async_nats::Event::Connected | async_nats::Event::Disconnected) {
                    r.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let client =
            rt.block_on(opts.connect(url.as_str())).map_err(|e| format!("nats server {url}: {e}"))?;
        let what =
            format!("{url} ({} from {})", venue.inputs_stream(), where_from(port.intake.resume_after()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = Reader {
            rt,
            client,
            url,
            venue,
            intake: port.intake,
            notes: port.notes,
            stop: stop.clone(),
            reconnects,
            log: RefusalLog::default(),
        };
        let thread = std::thread::Builder::new()
            .name("liqscan-nats-in".into())
            .spawn(move || reader.run())
            .map_err(|e| format!("nats inputs: {e}"))?;
        Ok(NatsInputs { what, stop, thread: Some(thread) })
    }
}

fn where_from(resume: Option<u64>) -> String {
    match resume {
        Some(s) => format!("sequence {} (journal)", s + 1),
        None => "its first message".into(),
    }
}

impl InputSource for NatsInputs {
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn stop(mut self: Box<Self>) -> ListenReport {
        self.stop.store(true, Ordering::Release);
        self.thread.take().map(|t| t.join().expect("nats inputs thread does not panic")).unwrap_or_default()
    }
}

impl Drop for NatsInputs {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// At most [`RefusalLog::PER_SECOND`] refusal lines a second, each with the message's subject
/// and stream sequence; the rest are summed into one line (the counters have them all).
#[derive(Default)]
struct RefusalLog {
    second: Option<Instant>,
    lines: u32,
    suppressed: u64,
}

impl RefusalLog {
    const PER_SECOND: u32 = 20;

    fn refused(&mut self, subject: &str, seq: u64, reason: &str) {
        let now = Instant::now();
        if self.second.is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1)) {
            if self.suppressed > 0 {
                tracing::warn!(suppressed = self.suppressed, "nats inputs: {} more refused", self.suppressed);
            }
            (self.second, self.lines, self.suppressed) = (Some(now), 0, 0);
        }
        if self.lines < Self::PER_SECOND {
            self.lines += 1;
            tracing::warn!(
                subject,
                stream_seq = seq,
                reason,
                "nats inputs: refused {subject} #{seq}: {reason}"
            );
        } else {
            self.suppressed += 1;
        }
    }
}

struct Reader {
    rt: tokio::runtime::Runtime,
    client: async_nats::Client,
    url: String,
    venue: Venue,
    intake: FrameIntake,
    notes: Notes,
    stop: Arc<AtomicBool>,
    /// Connection events seen: a change means a server restart may have lost the consumer.
    reconnects: Arc<AtomicU64>,
    log: RefusalLog,
}

/// How a consumer ended.
enum Ended {
    Stopped,
    /// Set it up again from the next sequence (after `why`, if anything is worth a note).
    Again(Option<String>),
}

impl Reader {
    fn run(mut self) -> ListenReport {
        let _rt = self.rt.enter();
        let js = jetstream::new(self.client.clone());
        let (ticks, accounts) = (self.venue.ticks_subject(), self.venue.accounts_subject());
        // The next stream sequence to read.
        let mut next = self.intake.resume_after().map_or(1, |s| s + 1);
        let mut down: Option<String> = None;
        // The client connects in the background: give it a moment before calling it down.
        let end = Instant::now() + Duration::from_millis(500);
        while self.client.connection_state() != async_nats::connection::State::Connected
            && Instant::now() < end
            && !self.stop.load(Ordering::Acquire)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        while !self.stop.load(Ordering::Acquire) {
            let seen = self.reconnects.load(Ordering::Relaxed);
            let ended = match self.consumer(&js, next) {
                Ok(messages) => {
                    if let Some(why) = down.take() {
                        (self.notes)(&format!(
                            "nats inputs: server {} answers again (was: {why}); reading {} from sequence {next}",
                            self.url,
                            self.venue.inputs_stream()
                        ));
                    }
                    self.read(&js, messages, &mut next, seen, (&ticks, &accounts))
                }
                Err(why) => Ended::Again(Some(why)),
            };
            match ended {
                Ended::Stopped => break,
                Ended::Again(Some(why)) if down.is_none() => {
                    (self.notes)(&format!(
                        "nats inputs: server {}: {why}; scanning the book as it stands, reading resumes after stream sequence {} when it answers",
                        self.url,
                        next - 1
                    ));
                    down = Some(why);
                }
                Ended::Again(_) => {}
            }
            if down.is_some() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_millis(200), self.client.flush()).await });
        self.intake.report()
    }

    /// An ordered consumer from stream sequence `next` (the whole stream when it is 1).
    fn consumer(&mut self, js: &jetstream::Context, next: u64) -> Result<consumer::pull::Ordered, String> {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err("not connected".into());
        }
        let fresh = next == 1;
        let venue = self.venue.clone();
        let setup = async {
            let mut s = ensure_inputs_stream(js, &venue).await?;
            let first = s.info().await.map_err(|e| e.to_string())?.state.first_sequence;
            let c = s
                .create_consumer(consumer::pull::OrderedConfig {
                    deliver_policy: if fresh {
                        consumer::DeliverPolicy::All
                    } else {
                        consumer::DeliverPolicy::ByStartSequence { start_sequence: next }
                    },
                    // Pulls expire (and heartbeats come) within seconds, so a consumer a
                    // server restart lost is noticed quickly.
                    max_expires: Duration::from_secs(2),
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            let m = c.messages().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((first, m))
        };
        let (first, messages) = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(2), setup).await })
            .map_err(|_| "no answer setting up the consumer".to_string())??;
        if fresh && first > 1 {
            // The stream's first messages were removed (limits): start at its first.
            self.intake.begin_after(first - 1);
        }
        Ok(messages)
    }

    /// Reads until stopped, or until the consumer should be set up again.
    fn read(
        &mut self,
        js: &jetstream::Context,
        mut messages: consumer::pull::Ordered,
        next: &mut u64,
        seen: u64,
        (ticks, accounts): (&str, &str),
    ) -> Ended {
        let mut quiet = Instant::now();
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Ended::Stopped;
            }
            if self.reconnects.load(Ordering::Relaxed) != seen {
                // The connection dropped since the consumer was made: the server may have
                // restarted and lost it (it lives in memory). Make it again from our position.
                return Ended::Again(None);
            }
            let m = match self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_millis(50), messages.next()).await })
            {
                Err(_) if quiet.elapsed() < STALL => continue,
                Err(_) => {
                    // Silent for a while: if the stream holds messages past our position, the
                    // consumer has stopped delivering (a safeguard: the server restart drill
                    // passes on the reconnection rule alone). Make it again.
                    quiet = Instant::now();
                    if self.stream_holds(js, *next) {
                        return Ended::Again(None);
                    }
                    continue;
                }
                Ok(None) => return Ended::Again(Some("the consumer ended".into())),
                Ok(Some(Err(e))) => return Ended::Again(Some(format!("consumer: {e}"))),
                Ok(Some(Ok(m))) => m,
            };
            quiet = Instant::now();
            let Ok(seq) = m.info().map(|i| i.stream_sequence) else {
                return Ended::Again(Some("a message without its stream sequence".into()));
            };
            if seq < *next {
                continue; // delivered again by a recreated consumer: taken or refused already
            }
            let subject = m.subject.as_str();
            let kinds = if subject == ticks {
                FrameKinds::Ticks
            } else if subject == accounts {
                FrameKinds::Accounts
            } else {
                // Another subject someone added to the stream: no feed frames belong there.
                FrameKinds::Nothing
            };
            if let Err(why) = self.intake.take(&m.payload, seq, kinds) {
                self.log.refused(subject, seq, why.label());
            }
            *next = seq + 1;
        }
    }
}

/// Silence after which the reader asks whether the stream holds messages it has not had.
const STALL: Duration = Duration::from_secs(1);

impl Reader {
    /// True if the stream's last message is at or past `next` (the server says so in time).
    fn stream_holds(&self, js: &jetstream::Context, next: u64) -> bool {
        let name = self.venue.inputs_stream();
        let ask = async {
            let mut s = js.get_stream(&name).await.ok()?;
            s.info().await.ok().map(|i| i.state.last_sequence)
        };
        let last = self.rt.block_on(async { tokio::time::timeout(Duration::from_millis(500), ask).await });
        matches!(last, Ok(Some(l)) if l >= next)
    }
}

/// The feed's shared secret (`LIQSCAN_FEED_SECRET`), as the listeners and the input stream
/// check it, for a publisher.
pub fn feed_key() -> Result<Option<HmacKey>, String> {
    Ok(FeedOptions::default().secret_from_env("LIQSCAN_FEED_SECRET")?.auth)
}
