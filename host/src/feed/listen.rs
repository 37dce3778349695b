//! Live feed listeners: TCP (a stream of frames) and UDP (whole frames in datagrams).
//!
//! Every frame goes through the same checks, in order, before anything reaches the pipeline:
//!
//! 1. decoding (bad magic or version, unknown kind or flags, a length outside the kind's
//!    bounds: oversized, truncated or garbled): `malformed`; on UDP the rest of the datagram is
//!    dropped, on TCP the connection is closed (a stream cannot be re-framed safely);
//! 2. the connection's (or UDP peer's) token bucket, frames per second: `rate_limited`, dropped;
//! 3. with a shared secret, the frame's HMAC-SHA256 tag (missing or wrong): `auth_failed`;
//!    handled like a malformed frame (the peer is not trusted with the rest of its bytes);
//! 4. the sequence number (one stream across connections): a gap is counted and the frame
//!    taken, a duplicate or replay is counted and dropped;
//! 5. the book's bounds: an asset or slot outside the book: `unknown`, dropped;
//! 6. ticks only, with a guard: the oracle guard on the tick's spot asset-side price and the
//!    sender timestamp: refused or held ticks are counted and dropped.
//!
//! Listeners bind to loopback unless [`FeedOptions::allow_remote`] is set (then a warning is
//! logged). TCP admission (`admit.rs`): a connection holds one of the
//! [`FeedOptions::max_connections`] slots only after its first complete frame (authenticated
//! when a secret is set), at most [`FeedOptions::max_per_address`] per peer address; until then
//! it waits in a bounded room (the oldest pushed out when it is full) and is closed at
//! [`FeedOptions::first_frame_timeout`]; a connection holding a slot that sends no complete
//! frame within [`FeedOptions::idle_timeout`] is closed. A sequence number more than
//! [`FeedOptions::max_seq_jump`] ahead is refused and counted, not adopted. Every refusal is a
//! counter (the report and the metrics); the log gets at most one summary line a second per
//! listener (`feed tcp ADDR: refused since the last report: malformed 3, ...`), written with
//! no listener lock held: a hostile peer cannot flood the log or stall the listeners on it. Receiving is a system call by nature; it happens on the feed
//! threads, never on the engine thread.

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::admit::Admission;
use super::auth::HmacKey;
use super::intake::{FrameKinds, Refusal};
use super::wire::{self, MAX_FRAME};
use super::{DEFAULT_MAX_SEQ_JUMP, FrameLog, FrameLogError, SeqTracker, SeqVerdict};
use crate::guard::{OracleGuard, Verdict};
use crate::metrics::Counters;
use crate::pipeline::{Clock, FeedMsg, FeedTx, Stamped};

/// A token bucket: `per_second` frames on average, bursts of up to `burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained frames per second.
    pub per_second: f64,
    /// Largest burst (bucket size), frames.
    pub burst: f64,
}

/// Hardening settings of a listener. [`Default`]: loopback only, no authentication, 16
/// connection slots (8 per address, 16 more waiting for a first frame for at most 2 s, 30 s
/// idle timeout), a sequence jump of at most 2^24, no rate limit, no bounds, no guard.
#[derive(Clone)]
pub struct FeedOptions {
    /// Allow binding to a non-loopback address (a warning is logged).
    pub allow_remote: bool,
    /// Shared secret: every frame must carry a valid HMAC-SHA256 tag.
    pub auth: Option<HmacKey>,
    /// TCP connection slots: connections that have sent a first complete (authenticated)
    /// frame, served at once.
    pub max_connections: usize,
    /// Slots one peer address may hold (`None`: half of `max_connections`, at least 1).
    pub max_per_address: Option<usize>,
    /// TCP connections that may wait for their first frame at once; a new one pushes the
    /// oldest out when the room is full.
    pub max_waiting: usize,
    /// A TCP connection that has not sent a complete (with a secret: authenticated) frame
    /// this long after it was accepted is closed, never having held a slot.
    pub first_frame_timeout: Duration,
    /// A TCP connection holding a slot that sends no complete frame for this long is closed.
    pub idle_timeout: Duration,
    /// A frame numbered more than this ahead of its stream's next number is refused (counted
    /// in `seq.too_far`), not adopted; a fresh stream counts from 1.
    pub max_seq_jump: u64,
    /// Per-connection (TCP) or per-peer (UDP) rate limit.
    pub rate: Option<RateLimit>,
    /// Account slots in the book: an upsert or remove of a slot at or above it is refused.
    pub slots: Option<usize>,
    /// Assets in the table: a tick or term naming an asset at or above it is refused.
    pub assets: Option<usize>,
    /// Assets a tick may price at 0 (the venue's `allow_zero_price`), by asset index. A tick
    /// whose collateral-side spot price is 0 for any other asset is refused and counted
    /// (`zero_price`): it would breach every account that holds the asset.
    pub zero_price_ok: Arc<[bool]>,
    /// The oracle guard every tick passes (shared by all listeners of one book).
    pub guard: Option<Arc<Mutex<OracleGuard>>>,
    /// Source number the guard is told for this listener's ticks, and the stream the frame
    /// log records them under.
    pub source: u8,
    /// Journal every accepted frame before it is pushed. A frame the log refuses as not
    /// fitting the book is dropped and counted as unknown; one it fails to write is dropped,
    /// counted in `log_failed`, and ends its connection or datagram.
    pub log: Option<Arc<dyn FrameLog>>,
    /// Frames numbered up to this were taken before a restart: they are duplicates.
    pub resume_after: Option<u64>,
}

impl std::fmt::Debug for FeedOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedOptions")
            .field("allow_remote", &self.allow_remote)
            .field("auth", &self.auth.is_some())
            .field("max_connections", &self.max_connections)
            .field("max_per_address", &self.max_per_address)
            .field("max_waiting", &self.max_waiting)
            .field("first_frame_timeout", &self.first_frame_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_seq_jump", &self.max_seq_jump)
            .field("source", &self.source)
            .field("log", &self.log.is_some())
            .field("resume_after", &self.resume_after)
            .finish_non_exhaustive()
    }
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            allow_remote: false,
            auth: None,
            max_connections: 16,
            max_per_address: None,
            max_waiting: 16,
            first_frame_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            max_seq_jump: DEFAULT_MAX_SEQ_JUMP,
            rate: None,
            slots: None,
            assets: None,
            zero_price_ok: Arc::from([]),
            guard: None,
            source: 0,
            log: None,
            resume_after: None,
        }
    }
}

impl FeedOptions {
    /// Sets [`auth`](Self::auth) from the environment variable `var` (default name:
    /// `LIQSCAN_FEED_SECRET`), if set: the raw text, or `hex:` followed by hex digits
    /// ([`parse_secret`](super::auth::parse_secret): at least 16 bytes). A bad secret is an
    /// error naming `var`.
    pub fn secret_from_env(mut self, var: &str) -> Result<Self, String> {
        match std::env::var(var) {
            Ok(v) => {
                let k = super::auth::parse_secret(&v).map_err(|e| format!("{var}: {e}"))?;
                self.auth = Some(HmacKey::new(&k));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("{var}: the secret is not UTF-8 text (give bytes as hex:...)"));
            }
            Err(std::env::VarError::NotPresent) => {}
        }
        Ok(self)
    }

    /// Slots one address may hold ([`max_per_address`](Self::max_per_address) or its default).
    pub fn per_address(&self) -> usize {
        self.max_per_address.unwrap_or(self.max_connections / 2).clamp(1, self.max_connections.max(1))
    }
}

/// What a listener saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListenReport {
    /// Sequence tracking.
    pub seq: SeqTracker,
    /// Frames that did not decode (oversized, truncated, garbled).
    pub malformed: u64,
    /// Connections accepted (TCP).
    pub connections: u64,
    /// Connections refused a slot: every slot held, or their address's share (TCP).
    pub conn_refused: u64,
    /// Connections closed before holding a slot: no complete (authenticated) first frame by
    /// the deadline, or pushed out of a full waiting room (TCP).
    pub unadmitted: u64,
    /// Connections closed for sending no complete frame within the idle timeout (TCP).
    pub idle_closed: u64,
    /// Frames with a missing or wrong authentication tag.
    pub auth_failed: u64,
    /// Frames dropped by the rate limit.
    pub rate_limited: u64,
    /// Frames naming an asset or slot outside the book.
    pub unknown: u64,
    /// Ticks refused for a price of 0 on an asset that does not allow it.
    pub zero_price: u64,
    /// Ticks refused by the guard.
    pub guard_refused: u64,
    /// Ticks held by the guard.
    pub guard_held: u64,
    /// Frames the frame log refused or failed to write (not pushed).
    pub log_failed: u64,
    /// Messages handed to the pipeline.
    pub pushed: u64,
}

/// A running listener; [`Listener::stop`] ends it and returns its report.
pub struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    sink: Arc<Mutex<Sink>>,
    admission: Option<Arc<Mutex<Admission<TcpStream>>>>,
}

impl Listener {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the listener has seen so far.
    pub fn report(&self) -> ListenReport {
        self.sink.lock().expect("feed sink").rep
    }

    /// TCP connection slots held now (connections past their first frame; 0 for UDP).
    pub fn slots_held(&self) -> usize {
        self.admission.as_ref().map_or(0, |a| a.lock().expect("feed admission").held())
    }

    /// Stops listening (and every connection) and returns the report.
    pub fn stop(mut self) -> ListenReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("listener panicked");
        }
        self.report()
    }
}

pub(super) struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(super) fn new(r: &RateLimit) -> Self {
        Bucket { tokens: r.burst, last: Instant::now() }
    }

    fn take(&mut self, r: &RateLimit) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * r.per_second).min(r.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A frame that ends its datagram or connection (malformed, or failing authentication).
#[derive(Debug)]
struct Fatal;

impl From<Refusal> for Fatal {
    fn from(_: Refusal) -> Fatal {
        Fatal
    }
}

pub(super) struct Sink {
    tx: FeedTx,
    clock: Clock,
    counters: Arc<Counters>,
    opts: FeedOptions,
    rep: ListenReport,
}

fn now_unix_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

impl Sink {
    /// Takes the frame at the start of `bytes` (a listener's frame: numbered by its header).
    fn frame(&mut self, bytes: &[u8], bucket: &mut Option<Bucket>) -> Result<usize, Fatal> {
        Ok(self.check(bytes, bucket, None, FrameKinds::Any)?.0)
    }

    /// Takes the frame at the start of `bytes`, numbered `number` if given (a transport that
    /// numbers its messages itself), else by its header, and only if it is of `kinds`.
    /// Returns its length and, if it was dropped, why; `Err`: the rest of the input must be
    /// dropped too (malformed, unauthenticated, not journaled). Every refusal is counted here.
    pub(super) fn check(
        &mut self,
        bytes: &[u8],
        bucket: &mut Option<Bucket>,
        number: Option<u64>,
        kinds: FrameKinds,
    ) -> Result<(usize, Option<Refusal>), Refusal> {
        let (f, len, tag) = match wire::decode_tagged(bytes) {
            Ok(x) if kinds.admits(&x.0.msg) => x,
            Ok(_) => {
                self.rep.malformed += 1;
                Counters::inc(&self.counters.feed_malformed);
                return Err(Refusal::WrongSubject);
            }
            Err(_) => {
                self.rep.malformed += 1;
                Counters::inc(&self.counters.feed_malformed);
                return Err(Refusal::Malformed);
            }
        };
        let seq = number.unwrap_or(f.seq);
        Counters::inc(&self.counters.frames);
        if let (Some(r), Some(b)) = (&self.opts.rate, bucket.as_mut())
            && !b.take(r)
        {
            self.rep.rate_limited += 1;
            Counters::inc(&self.counters.feed_rate_limited);
            return Ok((len, Some(Refusal::RateLimited)));
        }
        if let Some(key) = &self.opts.auth {
            let ok = tag.is_some_and(|t| key.verify(&bytes[..len - t.len()], t));
            if !ok {
                self.rep.auth_failed += 1;
                Counters::inc(&self.counters.feed_auth_failed);
                return Err(Refusal::Unauthenticated);
            }
        }
        // Restored if the frame log fails: a frame not journaled was not taken.
        let seq_before = self.rep.seq;
        match self.rep.seq.check(seq) {
            SeqVerdict::Duplicate => {
                Counters::inc(&self.counters.feed_duplicates);
                return Ok((len, Some(Refusal::Duplicate)));
            }
            SeqVerdict::TooFar { .. } => {
                Counters::inc(&self.counters.feed_seq_refused);
                return Ok((len, Some(Refusal::SeqRefused)));
            }
            SeqVerdict::Gap { missing, .. } => {
                self.counters.feed_gaps.fetch_add(missing, Ordering::Relaxed);
            }
            SeqVerdict::InOrder => {}
        }
        if self.unknown(&f.msg) {
            self.rep.unknown += 1;
            Counters::inc(&self.counters.feed_unknown);
            return Ok((len, Some(Refusal::Unknown)));
        }
        if let FeedMsg::Tick { asset, price } = f.msg
            && price.spot.asset == 0
            && !self.opts.zero_price_ok.get(asset as usize).copied().unwrap_or(false)
        {
            self.rep.zero_price += 1;
            Counters::inc(&self.counters.feed_zero_price);
            return Ok((len, Some(Refusal::ZeroPrice)));
        }
        if let (FeedMsg::Tick { asset, price }, Some(g)) = (f.msg, &self.opts.guard) {
            let v = g.lock().expect("guard").check(
                asset,
                f.ts_ns.min(i64::MAX as u64) as i64,
                price.spot.asset as f64,
                self.opts.source,
                now_unix_ns(),
            );
            match v {
                Verdict::Accept(_) => {}
                Verdict::Held(_) => {
                    self.rep.guard_held += 1;
                    Counters::inc(&self.counters.feed_guard_held);
                    if let Some(a) = self.counters.assets() {
                        a.guard(asset, false);
                    }
                    return Ok((len, Some(Refusal::GuardHeld)));
                }
                Verdict::Refused(_) => {
                    self.rep.guard_refused += 1;
                    Counters::inc(&self.counters.feed_guard_refused);
                    if let Some(a) = self.counters.assets() {
                        a.guard(asset, true);
                    }
                    return Ok((len, Some(Refusal::GuardRefused)));
                }
            }
        }
        let stamped = Stamped { seq, t_feed: self.clock.now(), msg: f.msg };
        match &self.opts.log {
            None => self.tx.push(stamped),
            Some(log) => {
                let tx = &self.tx;
                let ts = f.ts_ns.min(i64::MAX as u64) as i64;
                // Journaled: the frame's scan and events carry its journal position, so a
                // restart finds where the events file ends among replay and live alike.
                let mut push = |at: u64| tx.push(Stamped { seq: at, ..stamped });
                match log.log_then_push(self.opts.source, seq, ts, &f.msg, &mut push) {
                    Ok(()) => {}
                    Err(FrameLogError::Refused(_)) => {
                        self.rep.unknown += 1;
                        Counters::inc(&self.counters.feed_unknown);
                        return Ok((len, Some(Refusal::Unknown)));
                    }
                    Err(_) => {
                        // Not taken: a re-send of this frame number must be taken then.
                        self.rep.seq = seq_before;
                        self.rep.log_failed += 1;
                        Counters::inc(&self.counters.feed_not_journaled);
                        return Err(Refusal::NotJournaled);
                    }
                }
            }
        }
        self.rep.pushed += 1;
        Ok((len, None))
    }

    /// True when the message names an asset or slot outside the book.
    fn unknown(&self, m: &FeedMsg) -> bool {
        let asset_ok = |a: u16| self.opts.assets.is_none_or(|n| (a as usize) < n);
        let slot_ok = |s: u32| self.opts.slots.is_none_or(|n| (s as usize) < n);
        match *m {
            FeedMsg::Tick { asset, .. } => !asset_ok(asset),
            FeedMsg::Upsert { slot, .. } | FeedMsg::Remove { slot } if !slot_ok(slot) => true,
            FeedMsg::Upsert { n, terms, .. } => terms[..n as usize].iter().any(|t| !asset_ok(t.asset)),
            _ => false,
        }
    }

    /// Whether the frame at the start of `bytes` may earn its connection a slot: it decodes
    /// and, with a secret, its tag verifies. A frame that may not is counted (malformed or
    /// unauthenticated) here; nothing is pushed either way.
    fn first_frame_ok(&mut self, bytes: &[u8]) -> bool {
        let Ok((_, len, tag)) = wire::decode_tagged(bytes) else {
            self.rep.malformed += 1;
            Counters::inc(&self.counters.feed_malformed);
            return false;
        };
        if let Some(key) = &self.opts.auth
            && !tag.is_some_and(|t| key.verify(&bytes[..len - t.len()], t))
        {
            self.rep.auth_failed += 1;
            Counters::inc(&self.counters.feed_auth_failed);
            return false;
        }
        true
    }
}

/// At most one log line a second per listener for refused frames and connections, with the
/// counts since the last line: the counters (and the metrics) have every refusal, the log a
/// summary a hostile peer cannot flood. Called from the accept or receive loop with no lock
/// held; it takes the sink's lock only to copy the report, and logs after releasing it.
struct RefusalLog {
    kind: &'static str,
    addr: SocketAddr,
    last: ListenReport,
    at: Instant,
}

/// Least time between two refusal lines of one listener.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);

impl RefusalLog {
    fn new(kind: &'static str, addr: SocketAddr, sink: &Mutex<Sink>) -> Self {
        let last = sink.lock().expect("feed sink").rep;
        RefusalLog { kind, addr, last, at: Instant::now() }
    }

    /// Logs what was refused since the last line, if a second has passed (or `last`: the
    /// listener stops).
    fn tick(&mut self, sink: &Mutex<Sink>, last: bool) {
        if !last && self.at.elapsed() < REFUSAL_LOG_EVERY {
            return;
        }
        self.at = Instant::now();
        let now = sink.lock().expect("feed sink").rep;
        let (a, b) = (&self.last, &now);
        let d = |f: fn(&ListenReport) -> u64| f(b).saturating_sub(f(a));
        let counts = [
            ("malformed", d(|r| r.malformed)),
            ("unauthenticated", d(|r| r.auth_failed)),
            ("rate_limited", d(|r| r.rate_limited)),
            ("unknown", d(|r| r.unknown)),
            ("duplicates", d(|r| r.seq.duplicates)),
            ("seq_refused", d(|r| r.seq.too_far)),
            ("guard_refused", d(|r| r.guard_refused)),
            ("guard_held", d(|r| r.guard_held)),
            ("not_journaled", d(|r| r.log_failed)),
            ("conn_refused", d(|r| r.conn_refused)),
            ("unadmitted", d(|r| r.unadmitted)),
            ("idle_closed", d(|r| r.idle_closed)),
            ("zero_price", d(|r| r.zero_price)),
        ];
        self.last = now;
        if counts.iter().all(|(_, n)| *n == 0) {
            return;
        }
        let what: Vec<String> =
            counts.iter().filter(|(_, n)| *n > 0).map(|(k, n)| format!("{k} {n}")).collect();
        tracing::warn!(
            listener = self.kind,
            addr = %self.addr,
            malformed = counts[0].1,
            unauthenticated = counts[1].1,
            rate_limited = counts[2].1,
            unknown = counts[3].1,
            duplicates = counts[4].1,
            seq_refused = counts[5].1,
            guard_refused = counts[6].1,
            guard_held = counts[7].1,
            not_journaled = counts[8].1,
            conn_refused = counts[9].1,
            unadmitted = counts[10].1,
            idle_closed = counts[11].1,
            zero_price = counts[12].1,
            "feed {} {}: refused since the last report: {}",
            self.kind,
            self.addr,
            what.join(", ")
        );
    }
}

/// Resolves `addr` and refuses a non-loopback address unless allowed (then warns).
fn check_bind(addr: &str, opts: &FeedOptions) -> std::io::Result<()> {
    for a in addr.to_socket_addrs()? {
        if !a.ip().is_loopback() {
            if !opts.allow_remote {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "feed address {a} is not loopback: refused (set allow_remote to listen \
                         beyond this host)"
                    ),
                ));
            }
            tracing::warn!(addr = %a, "feed listener on non-loopback address {a}: reachable from the network");
        }
    }
    Ok(())
}

fn new_sink(tx: FeedTx, clock: Clock, counters: Arc<Counters>, opts: FeedOptions) -> Arc<Mutex<Sink>> {
    Arc::new(Mutex::new(Sink::new(tx, clock, counters, opts)))
}

impl Sink {
    pub(super) fn new(tx: FeedTx, clock: Clock, counters: Arc<Counters>, opts: FeedOptions) -> Sink {
        let seq = match opts.resume_after {
            Some(last) => SeqTracker::after(last),
            None => SeqTracker::default(),
        }
        .with_max_jump(opts.max_seq_jump);
        let rep = ListenReport { seq, ..Default::default() };
        Sink { tx, clock, counters, opts, rep }
    }

    pub(super) fn report(&self) -> ListenReport {
        self.rep
    }

    pub(super) fn resume_after(&self) -> Option<u64> {
        self.opts.resume_after
    }

    pub(super) fn rate(&self) -> Option<RateLimit> {
        self.opts.rate
    }

    /// Counts a frame refused before decoding (the caller found it malformed).
    pub(super) fn count_malformed(&mut self) {
        self.rep.malformed += 1;
        Counters::inc(&self.counters.feed_malformed);
    }

    /// Frames numbered up to `last` are duplicates from now on (a fresh intake adopting its
    /// transport's first number); only before any frame was taken.
    pub(super) fn begin_after(&mut self, last: u64) {
        if self.rep.seq.taken == 0 {
            self.rep.seq = SeqTracker::after(last).with_max_jump(self.opts.max_seq_jump);
        }
    }
}

/// Listens for TCP feed connections on `addr` (e.g. `127.0.0.1:0`) with default options.
pub fn tcp(addr: &str, tx: FeedTx, clock: Clock, counters: Arc<Counters>) -> std::io::Result<Listener> {
    tcp_with(addr, tx, clock, counters, FeedOptions::default())
}

/// Listens for UDP feed datagrams on `addr` with default options.
pub fn udp(addr: &str, tx: FeedTx, clock: Clock, counters: Arc<Counters>) -> std::io::Result<Listener> {
    udp_with(addr, tx, clock, counters, FeedOptions::default())
}

/// What one TCP connection's thread shares with the listener.
struct ConnCtx {
    sink: Arc<Mutex<Sink>>,
    admission: Arc<Mutex<Admission<TcpStream>>>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    rate: Option<RateLimit>,
    first_frame: Duration,
    idle: Duration,
}

/// Why a connection's thread ended.
enum Close {
    /// The peer closed (or the socket failed) with `have` bytes of a frame unread.
    Peer { have: usize },
    /// A frame ended it (malformed, unauthenticated, not journaled): counted already.
    Frame,
    /// No slot for it: counted already.
    Refused,
    /// No complete first frame by the deadline.
    FirstFrameLate,
    /// No complete frame within the idle timeout.
    Idle,
    /// The listener stops.
    Stop,
}

/// Serves connection `id` until it closes, then frees its place.
fn serve_conn(conn: TcpStream, id: u64, arrived: Instant, cx: ConnCtx) {
    let why = read_frames(conn, id, arrived, &cx);
    // Pushed out of the waiting room: closed from outside and counted there.
    let pushed_out = cx.admission.lock().expect("feed admission").leave(id);
    let mut s = cx.sink.lock().expect("feed sink");
    match why {
        Close::Peer { have } if have > 0 && !pushed_out => {
            // The peer closed inside a frame: a truncated frame.
            s.rep.malformed += 1;
            Counters::inc(&cx.counters.feed_malformed);
        }
        Close::FirstFrameLate => {
            s.rep.unadmitted += 1;
            Counters::inc(&cx.counters.feed_unadmitted);
        }
        Close::Idle => {
            s.rep.idle_closed += 1;
            Counters::inc(&cx.counters.feed_idle_closed);
        }
        Close::Peer { .. } | Close::Frame | Close::Refused | Close::Stop => {}
    }
}

fn read_frames(mut conn: TcpStream, id: u64, arrived: Instant, cx: &ConnCtx) -> Close {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(20)));
    let mut bucket = cx.rate.as_ref().map(Bucket::new);
    let mut buf = vec![0u8; 16 * MAX_FRAME];
    let mut have = 0usize;
    let mut admitted = false;
    let mut last_frame = arrived;
    loop {
        if cx.stop.load(Ordering::Relaxed) {
            return Close::Stop;
        }
        // Deadlines count complete frames only: bytes trickled one at a time keep nothing open.
        if !admitted && arrived.elapsed() > cx.first_frame {
            return Close::FirstFrameLate;
        }
        if admitted && last_frame.elapsed() > cx.idle {
            return Close::Idle;
        }
        match conn.read(&mut buf[have..]) {
            Ok(0) => return Close::Peer { have },
            Ok(n) => have += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue;
            }
            Err(_) => return Close::Peer { have },
        }
        let mut at = 0;
        while have - at >= 8 {
            let ready = match wire::frame_len(&buf[at..have]) {
                Ok(len) => have - at >= len,
                Err(_) => true, // decoding reports and counts it
            };
            if !ready {
                break;
            }
            if !admitted {
                // The first frame earns the slot: complete, and authentic with a secret.
                if !cx.sink.lock().expect("feed sink").first_frame_ok(&buf[at..have]) {
                    return Close::Frame;
                }
                if cx.admission.lock().expect("feed admission").admit(id).is_err() {
                    let mut s = cx.sink.lock().expect("feed sink");
                    s.rep.conn_refused += 1;
                    Counters::inc(&cx.counters.feed_conn_refused);
                    return Close::Refused;
                }
                admitted = true;
            }
            match cx.sink.lock().expect("feed sink").frame(&buf[at..have], &mut bucket) {
                Ok(len) => at += len,
                Err(_) => return Close::Frame,
            }
            last_frame = Instant::now();
        }
        buf.copy_within(at..have, 0);
        have -= at;
    }
}

/// Listens for TCP feed connections on `addr` with `opts`; connections are served on their own
/// threads, one sequence stream across all of them. Admission: see the module doc.
pub fn tcp_with(
    addr: &str,
    tx: FeedTx,
    clock: Clock,
    counters: Arc<Counters>,
    opts: FeedOptions,
) -> std::io::Result<Listener> {
    check_bind(addr, &opts)?;
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let admission =
        Arc::new(Mutex::new(Admission::new(opts.max_connections, opts.per_address(), opts.max_waiting)));
    let (rate, first_frame, idle) = (opts.rate, opts.first_frame_timeout, opts.idle_timeout);
    let sink = new_sink(tx, clock, counters.clone(), opts);
    let (s, sk, adm) = (stop.clone(), sink.clone(), admission.clone());
    let handle = std::thread::Builder::new().name("feed-tcp".into()).spawn(move || {
        let admission = adm;
        let mut conns: Vec<JoinHandle<()>> = Vec::new();
        let mut refusals = RefusalLog::new("tcp", addr, &sk);
        while !s.load(Ordering::Relaxed) {
            refusals.tick(&sk, false);
            conns.retain(|h| !h.is_finished());
            let Ok((conn, peer)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            sk.lock().expect("feed sink").rep.connections += 1;
            let Ok(closer) = conn.try_clone() else { continue };
            let (id, out) =
                admission.lock().expect("feed admission").arrive(peer.ip(), closer, Instant::now());
            if let Some(old) = out {
                let _ = old.shutdown(std::net::Shutdown::Both);
                sk.lock().expect("feed sink").rep.unadmitted += 1;
                Counters::inc(&counters.feed_unadmitted);
            }
            let cx = ConnCtx {
                sink: sk.clone(),
                admission: admission.clone(),
                stop: s.clone(),
                counters: counters.clone(),
                rate,
                first_frame,
                idle,
            };
            let arrived = Instant::now();
            match std::thread::Builder::new()
                .name("feed-conn".into())
                .spawn(move || serve_conn(conn, id, arrived, cx))
            {
                Ok(h) => conns.push(h),
                Err(_) => {
                    admission.lock().expect("feed admission").leave(id);
                }
            }
        }
        for h in conns {
            let _ = h.join();
        }
        refusals.tick(&sk, true);
    })?;
    Ok(Listener { addr, stop, handle: Some(handle), sink, admission: Some(admission) })
}

/// Listens for UDP feed datagrams on `addr` with `opts`; each datagram holds one or more whole
/// frames; the rate limit applies per peer address.
pub fn udp_with(
    addr: &str,
    tx: FeedTx,
    clock: Clock,
    counters: Arc<Counters>,
    opts: FeedOptions,
) -> std::io::Result<Listener> {
    check_bind(addr, &opts)?;
    let sock = UdpSocket::bind(addr)?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let addr = sock.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let rate = opts.rate;
    let sink = new_sink(tx, clock, counters, opts);
    let (s, sk) = (stop.clone(), sink.clone());
    let handle = std::thread::Builder::new().name("feed-udp".into()).spawn(move || {
        let mut buf = vec![0u8; 65_536];
        let mut buckets: HashMap<SocketAddr, Option<Bucket>> = HashMap::new();
        let mut refusals = RefusalLog::new("udp", addr, &sk);
        while !s.load(Ordering::Relaxed) {
            refusals.tick(&sk, false);
            let Ok((n, peer)) = sock.recv_from(&mut buf) else { continue };
            if buckets.len() > 4096 {
                buckets.clear(); // bounded memory under address spraying
            }
            let bucket = buckets.entry(peer).or_insert_with(|| rate.as_ref().map(Bucket::new));
            let mut at = 0;
            let mut sink = sk.lock().expect("feed sink");
            while at < n {
                match sink.frame(&buf[at..n], bucket) {
                    Ok(len) => at += len,
                    Err(_) => break,
                }
            }
        }
        refusals.tick(&sk, true);
    })?;
    Ok(Listener { addr, stop, handle: Some(handle), sink, admission: None })
}
