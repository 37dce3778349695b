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
//! logged). TCP takes at most [`FeedOptions::max_connections`] connections at once; more are
//! closed at once and counted. Receiving is a system call by nature; it happens on the feed
//! threads, never on the engine thread.

use std::collections::HashMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::auth::HmacKey;
use super::wire::{self, MAX_FRAME};
use super::{FrameLog, FrameLogError, SeqTracker, SeqVerdict};
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
/// connections, no rate limit, no bounds, no guard (what the loopback tests and tools use).
#[derive(Clone)]
pub struct FeedOptions {
    /// Allow binding to a non-loopback address (a warning is logged).
    pub allow_remote: bool,
    /// Shared secret: every frame must carry a valid HMAC-SHA256 tag.
    pub auth: Option<HmacKey>,
    /// Most TCP connections served at once.
    pub max_connections: usize,
    /// Per-connection (TCP) or per-peer (UDP) rate limit.
    pub rate: Option<RateLimit>,
    /// Account slots in the book: an upsert or remove of a slot at or above it is refused.
    pub slots: Option<usize>,
    /// Assets in the table: a tick or term naming an asset at or above it is refused.
    pub assets: Option<usize>,
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
            rate: None,
            slots: None,
            assets: None,
            guard: None,
            source: 0,
            log: None,
            resume_after: None,
        }
    }
}

impl FeedOptions {
    /// Sets [`auth`](Self::auth) from the environment variable `var` (default name:
    /// `LIQSCAN_FEED_SECRET`), if set: the raw text, or `hex:` followed by hex bytes. An empty
    /// secret is refused.
    pub fn secret_from_env(mut self, var: &str) -> Result<Self, String> {
        if let Ok(v) = std::env::var(var) {
            let k = super::auth::parse_secret(&v).map_err(|e| format!("{var}: {e}"))?;
            if k.is_empty() {
                return Err(format!("{var} is set but empty"));
            }
            self.auth = Some(HmacKey::new(&k));
        }
        Ok(self)
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
    /// Connections refused over the limit (TCP).
    pub conn_refused: u64,
    /// Frames with a missing or wrong authentication tag.
    pub auth_failed: u64,
    /// Frames dropped by the rate limit.
    pub rate_limited: u64,
    /// Frames naming an asset or slot outside the book.
    pub unknown: u64,
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

    /// Stops listening (and every connection) and returns the report.
    pub fn stop(mut self) -> ListenReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("listener panicked");
        }
        self.report()
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(r: &RateLimit) -> Self {
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

struct Sink {
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
    /// Takes the frame at the start of `bytes`; returns its length, or why the rest of the
    /// input must be dropped.
    fn frame(&mut self, bytes: &[u8], bucket: &mut Option<Bucket>) -> Result<usize, Fatal> {
        let (f, len, tag) = match wire::decode_tagged(bytes) {
            Ok(x) => x,
            Err(e) => {
                self.rep.malformed += 1;
                Counters::inc(&self.counters.feed_malformed);
                eprintln!("feed: malformed frame: {e}");
                return Err(Fatal);
            }
        };
        Counters::inc(&self.counters.frames);
        if let (Some(r), Some(b)) = (&self.opts.rate, bucket.as_mut())
            && !b.take(r)
        {
            self.rep.rate_limited += 1;
            Counters::inc(&self.counters.feed_rate_limited);
            return Ok(len);
        }
        if let Some(key) = &self.opts.auth {
            let ok = tag.is_some_and(|t| key.verify(&bytes[..len - t.len()], t));
            if !ok {
                self.rep.auth_failed += 1;
                Counters::inc(&self.counters.feed_auth_failed);
                eprintln!(
                    "feed: frame {} {} authentication",
                    f.seq,
                    if tag.is_some() { "fails" } else { "lacks" }
                );
                return Err(Fatal);
            }
        }
        // Restored if the frame log fails: a frame not journaled was not taken.
        let seq_before = self.rep.seq;
        match self.rep.seq.check(f.seq) {
            SeqVerdict::Duplicate => {
                Counters::inc(&self.counters.feed_duplicates);
                eprintln!("feed: duplicate or replayed frame {} dropped", f.seq);
                return Ok(len);
            }
            SeqVerdict::Gap { missing, expected } => {
                self.counters.feed_gaps.fetch_add(missing, Ordering::Relaxed);
                eprintln!("feed: gap: expected frame {expected}, got {} ({missing} missing)", f.seq);
            }
            SeqVerdict::InOrder => {}
        }
        if let Some(why) = self.unknown(&f.msg) {
            self.rep.unknown += 1;
            Counters::inc(&self.counters.feed_unknown);
            eprintln!("feed: frame {} refused: {why}", f.seq);
            return Ok(len);
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
                Verdict::Held(r) => {
                    self.rep.guard_held += 1;
                    Counters::inc(&self.counters.feed_guard_held);
                    eprintln!("feed: tick {} of asset {asset} held: {r}", f.seq);
                    return Ok(len);
                }
                Verdict::Refused(r) => {
                    self.rep.guard_refused += 1;
                    Counters::inc(&self.counters.feed_guard_refused);
                    eprintln!("feed: tick {} of asset {asset} refused: {r}", f.seq);
                    return Ok(len);
                }
            }
        }
        let stamped = Stamped { seq: f.seq, t_feed: self.clock.now(), msg: f.msg };
        match &self.opts.log {
            None => self.tx.push(stamped),
            Some(log) => {
                let tx = &self.tx;
                let ts = f.ts_ns.min(i64::MAX as u64) as i64;
                match log.log_then_push(self.opts.source, f.seq, ts, &f.msg, &mut || tx.push(stamped)) {
                    Ok(()) => {}
                    Err(FrameLogError::Refused(why)) => {
                        self.rep.unknown += 1;
                        Counters::inc(&self.counters.feed_unknown);
                        eprintln!("feed: frame {} refused by the journal: {why}", f.seq);
                        return Ok(len);
                    }
                    Err(e) => {
                        // Not taken: a re-send of this frame number must be taken then.
                        self.rep.seq = seq_before;
                        self.rep.log_failed += 1;
                        eprintln!("feed: frame {} not journaled, dropped: {e}", f.seq);
                        return Err(Fatal);
                    }
                }
            }
        }
        self.rep.pushed += 1;
        Ok(len)
    }

    fn unknown(&self, m: &FeedMsg) -> Option<String> {
        let asset_ok = |a: u16| self.opts.assets.is_none_or(|n| (a as usize) < n);
        let slot_ok = |s: u32| self.opts.slots.is_none_or(|n| (s as usize) < n);
        match *m {
            FeedMsg::Tick { asset, .. } if !asset_ok(asset) => Some(format!("unknown asset {asset}")),
            FeedMsg::Upsert { slot, .. } | FeedMsg::Remove { slot } if !slot_ok(slot) => {
                Some(format!("unknown account slot {slot}"))
            }
            FeedMsg::Upsert { n, terms, .. } => terms[..n as usize]
                .iter()
                .find(|t| !asset_ok(t.asset))
                .map(|t| format!("term of unknown asset {}", t.asset)),
            _ => None,
        }
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
            eprintln!("warning: feed listener on non-loopback address {a}: reachable from the network");
        }
    }
    Ok(())
}

fn new_sink(tx: FeedTx, clock: Clock, counters: Arc<Counters>, opts: FeedOptions) -> Arc<Mutex<Sink>> {
    let mut rep = ListenReport::default();
    if let Some(last) = opts.resume_after {
        rep.seq = SeqTracker::after(last);
    }
    Arc::new(Mutex::new(Sink { tx, clock, counters, opts, rep }))
}

/// Listens for TCP feed connections on `addr` (e.g. `127.0.0.1:0`) with default options.
pub fn tcp(addr: &str, tx: FeedTx, clock: Clock, counters: Arc<Counters>) -> std::io::Result<Listener> {
    tcp_with(addr, tx, clock, counters, FeedOptions::default())
}

/// Listens for UDP feed datagrams on `addr` with default options.
pub fn udp(addr: &str, tx: FeedTx, clock: Clock, counters: Arc<Counters>) -> std::io::Result<Listener> {
    udp_with(addr, tx, clock, counters, FeedOptions::default())
}

fn serve_conn(mut conn: TcpStream, sink: Arc<Mutex<Sink>>, stop: Arc<AtomicBool>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(20)));
    let rate = sink.lock().expect("feed sink").opts.rate;
    let mut bucket = rate.as_ref().map(Bucket::new);
    let mut buf = vec![0u8; 16 * MAX_FRAME];
    let mut have = 0usize;
    while !stop.load(Ordering::Relaxed) {
        match conn.read(&mut buf[have..]) {
            Ok(0) => {
                if have > 0 {
                    // The peer closed inside a frame: a truncated frame.
                    let mut s = sink.lock().expect("feed sink");
                    let need = wire::frame_len(&buf[..have]).unwrap_or(wire::HEADER);
                    s.rep.malformed += 1;
                    Counters::inc(&s.counters.feed_malformed);
                    eprintln!("feed: truncated frame at connection close: {have} bytes, need {need}");
                }
                return;
            }
            Ok(n) => have += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue;
            }
            Err(_) => return,
        }
        let mut at = 0;
        let mut s = sink.lock().expect("feed sink");
        while have - at >= 8 {
            let ready = match wire::frame_len(&buf[at..have]) {
                Ok(len) => have - at >= len,
                Err(_) => true, // decoding reports and counts it
            };
            if !ready {
                break;
            }
            match s.frame(&buf[at..have], &mut bucket) {
                Ok(len) => at += len,
                Err(_) => return, // closes the connection
            }
        }
        drop(s);
        buf.copy_within(at..have, 0);
        have -= at;
    }
}

/// Listens for TCP feed connections on `addr` with `opts`; connections are served on their own
/// threads, at most `opts.max_connections` at once, one sequence stream across all of them.
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
    let max = opts.max_connections;
    let sink = new_sink(tx, clock, counters.clone(), opts);
    let (s, sk) = (stop.clone(), sink.clone());
    let handle = std::thread::Builder::new().name("feed-tcp".into()).spawn(move || {
        let active = Arc::new(AtomicUsize::new(0));
        let mut conns: Vec<JoinHandle<()>> = Vec::new();
        while !s.load(Ordering::Relaxed) {
            conns.retain(|h| !h.is_finished());
            let Ok((conn, peer)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            if active.load(Ordering::Acquire) >= max {
                sk.lock().expect("feed sink").rep.conn_refused += 1;
                Counters::inc(&counters.feed_conn_refused);
                eprintln!("feed: connection from {peer} refused: {max} connections already open");
                drop(conn);
                continue;
            }
            sk.lock().expect("feed sink").rep.connections += 1;
            active.fetch_add(1, Ordering::AcqRel);
            let (sink, stop, active) = (sk.clone(), s.clone(), active.clone());
            let h = std::thread::Builder::new().name("feed-conn".into()).spawn(move || {
                serve_conn(conn, sink, stop);
                active.fetch_sub(1, Ordering::AcqRel);
            });
            match h {
                Ok(h) => conns.push(h),
                Err(e) => eprintln!("feed: cannot serve {peer}: {e}"),
            }
        }
        for h in conns {
            let _ = h.join();
        }
    })?;
    Ok(Listener { addr, stop, handle: Some(handle), sink })
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
        while !s.load(Ordering::Relaxed) {
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
    })?;
    Ok(Listener { addr, stop, handle: Some(handle), sink })
}
