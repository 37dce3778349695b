//! A client of a downstream liquidation service over TCP (liquidation-as-a-service set-ups).
//!
//! Protocol `liqscan-dispatch/3`: newline-delimited JSON, one message per line, UTF-8, each
//! line at most [`MAX_LINE`] bytes and, with a shared secret, tagged with HMAC-SHA256 (the line
//! format and the tag are in [`super::line`]).
//!
//! ```text
//!  keeper (client)                                        service (server)
//!  {"hello":{"protocol":"liqscan-dispatch/3","auth":"hmac-sha256"}}   ──>
//!  {"order":{"id":7,"account":..,"attempt":1,..}} ──>
//!                                                 <──  {"ack":{"id":7,"attempt":1}}           (optional)
//!                                                 <──  {"completion":{"id":7,"attempt":1,
//!                                                        "outcome":{"filled":{..}}}}
//! ```
//!
//! - A re-sent order keeps its `id` and has a higher `attempt`: the service must treat the id as
//!   an idempotency key (execute at most once, answer every attempt).
//! - Outcomes: `{"filled":{"repaid_value":R,"seized_value":S}}`, `"sent"`,
//!   `{"rejected":"healthy"}` (or `unknown_account`, `in_progress`, `busy`, `stale`,
//!   `{"asset_unavailable":A}`, `{"invalid":"why"}`). Amounts are JSON integers of up to 128 bits.
//! - Lines the client cannot parse are counted and skipped, up to
//!   [`TcpConfig::max_bad_lines`] a connection. A line over the length limit, or (with a
//!   secret) without a valid tag, is counted and closes the connection: what was sent on it
//!   and not answered is reported lost and re-sent under the same id.
//! - Version 1 had no tags and no limits; a version-1 service refuses the version-2 hello.
//!
//! Threads: [`TcpExecutor::submit`] never touches the socket; it puts the order in a bounded
//! queue (full: [`SubmitError::Busy`]) or refuses at once while the connection is down
//! ([`SubmitError::Unavailable`]). An I/O thread connects (and reconnects after
//! `reconnect_backoff`), writes queued orders, and a reader thread turns answers into
//! completions. When the connection drops, every order written on it and not yet answered is
//! reported [`Outcome::Lost`], and the dispatcher re-sends it under the same id.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use serde::{Deserialize, Serialize};

use super::executor::{Executor, SubmitError};
use super::line::{Direction, LineError, LineReader, LineWriter};
pub use super::line::{MAX_LINE, PROTOCOL};
use super::order::{Completion, LiquidationOrder, OrderId, Outcome, RejectReason};
use crate::feed::auth::{HmacKey, parse_secret};

/// The `auth` of a hello whose lines carry HMAC-SHA256 tags.
pub const AUTH_HMAC: &str = "hmac-sha256";

/// A line from the keeper to the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientLine {
    /// First line on every connection.
    Hello {
        /// [`PROTOCOL`].
        protocol: String,
        /// [`AUTH_HMAC`] when the lines are tagged, absent when not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<String>,
    },
    /// An order (or a re-send of one).
    Order(LiquidationOrder),
}

/// An order's id and attempt, as acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Order id.
    pub id: OrderId,
    /// Attempt.
    pub attempt: u32,
}

/// A line from the service to the keeper.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerLine {
    /// The order was received (optional).
    Ack(Ack),
    /// What became of the order.
    Completion(Completion),
}

/// Settings of the TCP executor.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// The service's address.
    pub addr: SocketAddr,
    /// Orders queued for the I/O thread at most.
    pub queue: usize,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Wait between connection attempts.
    pub reconnect_backoff: Duration,
    /// Longest blocking write (a service that stops reading counts as a dropped connection).
    pub write_timeout: Duration,
    /// Shared secret: every line both ways carries an HMAC-SHA256 tag ([`super::line`]).
    pub auth: Option<HmacKey>,
    /// Longest line taken or sent, in bytes ([`MAX_LINE`]).
    pub max_line: usize,
    /// Unparseable service lines taken on one connection before it is closed.
    pub max_bad_lines: u64,
}

impl TcpConfig {
    /// Defaults for an address: queue 1024, connect 1 s, reconnect every 200 ms, write 1 s,
    /// no secret, lines up to [`MAX_LINE`], 100 bad lines a connection.
    pub fn new(addr: SocketAddr) -> Self {
        TcpConfig {
            addr,
            queue: 1024,
            connect_timeout: Duration::from_secs(1),
            reconnect_backoff: Duration::from_millis(200),
            write_timeout: Duration::from_secs(1),
            auth: None,
            max_line: MAX_LINE,
            max_bad_lines: 100,
        }
    }

    /// Sets [`auth`](Self::auth) from the environment variable `var` if set, as the feed reads
    /// its secret ([`parse_secret`]: raw text or `hex:`, at least 16 bytes). A bad secret is
    /// an error naming `var`.
    pub fn secret_from_env(mut self, var: &str) -> Result<Self, String> {
        match std::env::var(var) {
            Ok(v) => self.auth = Some(HmacKey::new(&parse_secret(&v).map_err(|e| format!("{var}: {e}"))?)),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("{var}: the secret is not UTF-8 text (give bytes as hex:...)"));
            }
            Err(std::env::VarError::NotPresent) => {}
        }
        Ok(self)
    }
}

#[derive(Default)]
struct Shared {
    up: AtomicBool,
    stop: AtomicBool,
    last_error: Mutex<String>,
    connects: AtomicU64,
    bad_lines: AtomicU64,
    long_lines: AtomicU64,
    auth_failures: AtomicU64,
    acks: AtomicU64,
}

/// The TCP executor. Dropping it stops its threads.
pub struct TcpExecutor {
    name: String,
    tx: Option<Sender<LiquidationOrder>>,
    done: Receiver<Completion>,
    shared: Arc<Shared>,
    io: Option<JoinHandle<()>>,
}

impl TcpExecutor {
    /// Starts the I/O thread; it connects in the background.
    pub fn start(cfg: TcpConfig) -> Self {
        let (tx, rx) = bounded(cfg.queue.max(1));
        let (done_tx, done) = unbounded();
        let shared = Arc::new(Shared::default());
        let name = format!("tcp://{}", cfg.addr);
        let s = shared.clone();
        let io = std::thread::Builder::new()
            .name("liqscan-dispatch-tcp".into())
            .spawn(move || io_thread(cfg, rx, done_tx, s))
            .expect("spawn the TCP executor thread");
        TcpExecutor { name, tx: Some(tx), done, shared, io: Some(io) }
    }

    /// True while connected.
    pub fn is_up(&self) -> bool {
        self.shared.up.load(Ordering::Acquire)
    }

    /// Waits until connected, at most `timeout`.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.is_up() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.is_up()
    }

    /// Connections made so far.
    pub fn connects(&self) -> u64 {
        self.shared.connects.load(Ordering::Relaxed)
    }

    /// Server lines that could not be parsed.
    pub fn bad_lines(&self) -> u64 {
        self.shared.bad_lines.load(Ordering::Relaxed)
    }

    /// Server lines over the length limit (each closed its connection).
    pub fn long_lines(&self) -> u64 {
        self.shared.long_lines.load(Ordering::Relaxed)
    }

    /// Server lines without a valid tag while a secret is set, or tagged while none is (each
    /// closed its connection).
    pub fn auth_failures(&self) -> u64 {
        self.shared.auth_failures.load(Ordering::Relaxed)
    }

    /// Why the connection last failed (empty if it never did).
    pub fn last_error(&self) -> String {
        self.shared.last_error.lock().expect("not poisoned").clone()
    }
}

impl Drop for TcpExecutor {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.tx = None;
        if let Some(h) = self.io.take() {
            let _ = h.join();
        }
    }
}

impl Executor for TcpExecutor {
    fn name(&self) -> &str {
        &self.name
    }

    fn submit(&mut self, order: &LiquidationOrder) -> Result<(), SubmitError> {
        if !self.is_up() {
            let detail = self.shared.last_error.lock().expect("not poisoned").clone();
            return Err(SubmitError::Unavailable { executor: self.name.clone(), detail });
        }
        super::executor::hand_to_io_thread(&self.name, self.tx.as_ref().expect("running"), order)
    }

    fn poll(&mut self, out: &mut Vec<Completion>) {
        out.extend(self.done.try_iter());
    }

    fn link_stats(&self) -> super::executor::LinkStats {
        super::executor::LinkStats {
            connects: self.connects(),
            bad_lines: self.bad_lines(),
            long_lines: self.long_lines(),
            auth_failures: self.auth_failures(),
        }
    }
}

type Outstanding = Arc<Mutex<HashMap<OrderId, u32>>>;

fn io_thread(cfg: TcpConfig, rx: Receiver<LiquidationOrder>, done: Sender<Completion>, s: Arc<Shared>) {
    let nap = |d: Duration, s: &Shared| {
        let end = Instant::now() + d;
        while Instant::now() < end && !s.stop.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5).min(d));
        }
    };
    while !s.stop.load(Ordering::Acquire) {
        let stream = match TcpStream::connect_timeout(&cfg.addr, cfg.connect_timeout) {
            Ok(st) => st,
            Err(e) => {
                *s.last_error.lock().expect("not poisoned") = format!("connect to {}: {e}", cfg.addr);
                nap(cfg.reconnect_backoff, &s);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(cfg.write_timeout));
        let (Ok(read_half), Ok(mut write_half)) = (stream.try_clone(), stream.try_clone()) else {
            nap(cfg.reconnect_backoff, &s);
            continue;
        };
        let mut lines = LineWriter::new(cfg.auth.clone(), Direction::ToService);
        let auth = cfg.auth.as_ref().map(|_| AUTH_HMAC.to_string());
        let hello = ClientLine::Hello { protocol: PROTOCOL.into(), auth };
        if write_line(&mut write_half, &mut lines, &hello).is_err() {
            nap(cfg.reconnect_backoff, &s);
            continue;
        }
        s.connects.fetch_add(1, Ordering::Relaxed);
        let outstanding: Outstanding = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let reader = {
            let (outstanding, dead, done, s) = (outstanding.clone(), dead.clone(), done.clone(), s.clone());
            let r = LineReader::new(
                BufReader::new(read_half),
                cfg.auth.clone(),
                Direction::ToKeeper,
                cfg.max_line,
            );
            let max_bad = cfg.max_bad_lines;
            std::thread::spawn(move || read_loop(r, max_bad, outstanding, dead, done, s))
        };
        s.up.store(true, Ordering::Release);
        loop {
            if dead.load(Ordering::Acquire) || s.stop.load(Ordering::Acquire) {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(order) => {
                    let mut buf = Vec::new();
                    // The line numbers its tag: sealed once, written once.
                    let mut next = lines.clone();
                    let ok = next.seal_json(&ClientLine::Order(order.clone()), &mut buf).is_ok();
                    if !ok || buf.len() > cfg.max_line + 1 {
                        // A service would refuse it and close; say so at once instead.
                        let why = format!(
                            "order line of {} bytes exceeds the {}-byte limit",
                            buf.len(),
                            cfg.max_line
                        );
                        let outcome = Outcome::Rejected(RejectReason::Invalid(why));
                        let _ = done.send(Completion { id: order.id, attempt: order.attempt, outcome });
                        continue;
                    }
                    lines = next;
                    outstanding.lock().expect("not poisoned").insert(order.id, order.attempt);
                    if let Err(e) = write_half.write_all(&buf) {
                        *s.last_error.lock().expect("not poisoned") = format!("write to {}: {e}", cfg.addr);
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        s.up.store(false, Ordering::Release);
        let _ = stream.shutdown(Shutdown::Both);
        let _ = reader.join();
        // Whatever was written and not answered may or may not have run: the dispatcher decides.
        for (id, attempt) in outstanding.lock().expect("not poisoned").drain() {
            let _ = done.send(Completion { id, attempt, outcome: Outcome::Lost });
        }
        if !s.stop.load(Ordering::Acquire) {
            nap(cfg.reconnect_backoff, &s);
        }
    }
}

fn write_line(w: &mut TcpStream, lines: &mut LineWriter, line: &ClientLine) -> std::io::Result<()> {
    let mut buf = Vec::new();
    lines.seal_json(line, &mut buf).map_err(std::io::Error::other)?;
    w.write_all(&buf)
}

fn read_loop(
    mut r: LineReader<BufReader<TcpStream>>,
    max_bad: u64,
    outstanding: Outstanding,
    dead: Arc<AtomicBool>,
    done: Sender<Completion>,
    s: Arc<Shared>,
) {
    let mut bad = 0u64;
    let why = loop {
        let line = match r.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break "connection closed by the service".to_string(),
            Err(e @ LineError::TooLong { .. }) => {
                s.long_lines.fetch_add(1, Ordering::Relaxed);
                break format!("service {e}");
            }
            Err(
                e @ (LineError::Unsigned { .. } | LineError::BadTag { .. } | LineError::UnexpectedTag { .. }),
            ) => {
                s.auth_failures.fetch_add(1, Ordering::Relaxed);
                break format!("service {e}");
            }
            Err(LineError::NotUtf8 { .. }) => {
                s.bad_lines.fetch_add(1, Ordering::Relaxed);
                bad += 1;
                if bad > max_bad {
                    break format!("more than {max_bad} unreadable lines from the service");
                }
                continue;
            }
            Err(e) => break format!("service connection: {e}"),
        };
        match serde_json::from_str::<ServerLine>(line) {
            Ok(ServerLine::Ack(_)) => {
                s.acks.fetch_add(1, Ordering::Relaxed);
            }
            Ok(ServerLine::Completion(c)) => {
                let mut out = outstanding.lock().expect("not poisoned");
                if out.get(&c.id) == Some(&c.attempt) {
                    out.remove(&c.id);
                }
                drop(out);
                let _ = done.send(c);
            }
            Err(_) => {
                s.bad_lines.fetch_add(1, Ordering::Relaxed);
                bad += 1;
                if bad > max_bad {
                    break format!("more than {max_bad} unreadable lines from the service");
                }
            }
        }
    };
    *s.last_error.lock().expect("not poisoned") = why;
    dead.store(true, Ordering::Release);
}

#[cfg(test)]
mod tests {
    //! Each test runs a real service on 127.0.0.1 in a thread, started and stopped by the test.
    use super::*;
    use crate::dispatch::dispatcher::{AccountSource, DispatchConfig, Dispatcher};
    use crate::dispatch::handoff::ScanBatch;
    use crate::dispatch::sizing::{AccountView, Position};
    use liqscan_hdl::abi::{PriceEntry, QuotedPrice};
    use std::net::TcpListener;

    const MS: u64 = 1_000_000;

    struct Book;
    impl AccountSource for Book {
        fn view(&self, slot: u32) -> Option<AccountView<'_>> {
            let positions = vec![
                Position { asset: 0, amount: 10, asset_weight_ppm: 800_000, liability_weight_ppm: 1_000_000 },
                Position {
                    asset: 1,
                    amount: -900,
                    asset_weight_ppm: 1_000_000,
                    liability_weight_ppm: 1_000_000,
                },
            ];
            Some(AccountView { account: 500 + slot as u64, slot, positions: positions.into() })
        }
    }

    fn prices() -> Vec<PriceEntry> {
        let q = |p| QuotedPrice { asset: p, liability: p };
        vec![PriceEntry { spot: q(100), stressed: q(90) }, PriceEntry { spot: q(1), stressed: q(1) }]
    }

    /// What the service does with each order line it reads, by the count of orders so far.
    #[derive(Clone, Copy)]
    enum Behaviour {
        Fill,
        /// Answer after this long.
        Slow(Duration),
        /// Close the connection on the first order (without answering), then fill.
        DropFirst,
    }

    /// What a test service saw: the orders it took, and why it refused lines (each refusal
    /// closed that connection).
    #[derive(Default)]
    struct Served {
        orders: Vec<LiquidationOrder>,
        refused: Vec<String>,
    }

    /// A service without a secret: accepts connections until `stop`, records every order.
    fn serve(
        listener: TcpListener,
        b: Behaviour,
        stop: Arc<AtomicBool>,
    ) -> JoinHandle<Vec<LiquidationOrder>> {
        let h = serve_with(listener, b, stop, None);
        std::thread::spawn(move || h.join().unwrap().orders)
    }

    /// A service as the protocol asks one to be: bounded lines, tags checked with `key`, the
    /// hello first; a refused line is recorded and closes the connection.
    fn serve_with(
        listener: TcpListener,
        b: Behaviour,
        stop: Arc<AtomicBool>,
        key: Option<HmacKey>,
    ) -> JoinHandle<Served> {
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let mut served = Served::default();
            let mut dropped = false;
            while !stop.load(Ordering::Acquire) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                let mut w = conn.try_clone().unwrap();
                let mut out = LineWriter::new(key.clone(), Direction::ToKeeper);
                let mut r =
                    LineReader::new(BufReader::new(conn), key.clone(), Direction::ToService, MAX_LINE);
                'conn: while !stop.load(Ordering::Acquire) {
                    let first = r.lines() == 0;
                    let text = match r.next_line() {
                        Ok(Some(t)) => t.to_string(),
                        Ok(None) => break,
                        // A read time-out keeps the partial line; go on with it.
                        Err(e) if e.is_timeout() => continue,
                        Err(e) => {
                            served.refused.push(e.to_string());
                            break;
                        }
                    };
                    let o = match serde_json::from_str::<ClientLine>(&text) {
                        Ok(ClientLine::Hello { protocol, .. }) if first && protocol == PROTOCOL => continue,
                        Ok(ClientLine::Order(o)) if !first => o,
                        _ => {
                            served.refused.push(format!("unexpected line: {text}"));
                            break;
                        }
                    };
                    served.orders.push(o.clone());
                    let mut answer = |w: &mut TcpStream| {
                        let c = Completion {
                            id: o.id,
                            attempt: o.attempt,
                            outcome: Outcome::Filled { repaid_value: 450, seized_value: 472 },
                        };
                        let mut buf = Vec::new();
                        out.seal_json(&ServerLine::Completion(c), &mut buf).unwrap();
                        let _ = w.write_all(&buf);
                    };
                    match b {
                        Behaviour::Fill => answer(&mut w),
                        Behaviour::Slow(d) => {
                            std::thread::sleep(d);
                            answer(&mut w)
                        }
                        Behaviour::DropFirst if !dropped => {
                            dropped = true;
                            let _ = w.shutdown(Shutdown::Both);
                            break 'conn;
                        }
                        Behaviour::DropFirst => answer(&mut w),
                    }
                }
            }
            served
        })
    }

    fn exec_for(addr: SocketAddr) -> TcpExecutor {
        exec_with(addr, None)
    }

    fn exec_with(addr: SocketAddr, auth: Option<HmacKey>) -> TcpExecutor {
        TcpExecutor::start(TcpConfig {
            reconnect_backoff: Duration::from_millis(20),
            connect_timeout: Duration::from_millis(200),
            auth,
            ..TcpConfig::new(addr)
        })
    }

    const SECRET: &[u8] = b"dispatch secret, 32 bytes long..";

    fn key() -> Option<HmacKey> {
        Some(HmacKey::new(SECRET))
    }

    /// Connects to `addr` as a keeper would, writes `lines` (already framed) and waits for the
    /// service to close the connection (or 2 s).
    fn send_raw(addr: SocketAddr, lines: &[Vec<u8>]) {
        let mut c = TcpStream::connect(addr).unwrap();
        for l in lines {
            // A service that refused may have closed already.
            if c.write_all(l).is_err() {
                return;
            }
        }
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = std::io::Read::read(&mut c, &mut [0u8; 1024]);
    }

    fn sealed(w: &mut LineWriter, line: &ClientLine) -> Vec<u8> {
        let mut b = Vec::new();
        w.seal_json(line, &mut b).unwrap();
        b
    }

    fn an_order(account: u64) -> LiquidationOrder {
        LiquidationOrder {
            id: 77,
            account,
            slot: 1,
            attempt: 1,
            episode: 9,
            ordinal: 0,
            kind: crate::dispatch::OrderKind::Direct {
                legs: vec![crate::dispatch::Leg { debt_asset: 1, repay: 450, collateral_asset: 0 }],
                close_all: false,
            },
            value_at_risk: 900,
            created_ns: 0,
            prebuilt: false,
        }
    }

    /// Drives the dispatcher on a real clock until `until` holds or 5 s pass.
    fn drive(d: &mut Dispatcher, x: &mut TcpExecutor, until: impl Fn(&Dispatcher) -> bool) {
        let start = Instant::now();
        while !until(d) && start.elapsed() < Duration::from_secs(5) {
            d.poll(start.elapsed().as_nanos() as u64, &prices(), &Book, x);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(until(d), "condition not reached in 5 s: {:?}", d.stats());
    }

    fn cfg() -> DispatchConfig {
        DispatchConfig {
            timeout_ns: 150 * MS,
            backoff_base_ns: 20 * MS,
            max_attempts: 5,
            ..Default::default()
        }
    }

    #[test]
    fn orders_fill_over_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve(listener, Behaviour::Fill, stop.clone());
        let mut x = exec_for(addr);
        assert!(x.wait_connected(Duration::from_secs(2)));
        let mut d = Dispatcher::new(cfg());
        let batch = ScanBatch { breached: vec![1, 2, 3], ..Default::default() };
        d.on_scan(0, &batch, &prices(), &Book, &mut x);
        drive(&mut d, &mut x, |d| d.stats().filled == 3);
        assert_eq!(d.stats().retries, 0);
        drop(x);
        stop.store(true, Ordering::Release);
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 3);
        let mut accounts: Vec<u64> = seen.iter().map(|o| o.account).collect();
        accounts.sort();
        assert_eq!(accounts, vec![501, 502, 503]);
    }

    #[test]
    fn slow_service_times_out_and_retries_under_the_same_id() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve(listener, Behaviour::Slow(Duration::from_millis(250)), stop.clone());
        let mut x = exec_for(addr);
        assert!(x.wait_connected(Duration::from_secs(2)));
        let mut d = Dispatcher::new(cfg());
        d.on_scan(0, &ScanBatch { breached: vec![7], ..Default::default() }, &prices(), &Book, &mut x);
        drive(&mut d, &mut x, |d| d.stats().filled == 1 && d.stats().late_completions >= 1);
        assert!(d.stats().timeouts >= 1 && d.stats().retries >= 1);
        assert_eq!(d.stats().orders, 1);
        drop(x);
        stop.store(true, Ordering::Release);
        let seen = server.join().unwrap();
        assert!(seen.len() >= 2);
        assert!(seen.iter().all(|o| o.id == seen[0].id), "re-sends keep the id");
        assert_eq!(seen[1].attempt, 2);
    }

    #[test]
    fn refused_connection_is_unavailable_then_recovers() {
        // A port with nothing listening: bind, note the port, close.
        let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut x = exec_for(addr);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!x.is_up());
        let mut d = Dispatcher::new(cfg());
        d.on_scan(0, &ScanBatch { breached: vec![1], ..Default::default() }, &prices(), &Book, &mut x);
        assert_eq!(d.stats().submit_errors, 1);
        assert_eq!(d.in_flight(), 0);
        // The service comes up on that port: the executor connects and the backlog drains.
        let listener = TcpListener::bind(addr).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve(listener, Behaviour::Fill, stop.clone());
        drive(&mut d, &mut x, |d| d.stats().filled == 1);
        drop(x);
        stop.store(true, Ordering::Release);
        assert_eq!(server.join().unwrap().len(), 1);
    }

    #[test]
    fn disconnect_reports_lost_and_the_order_is_resent_after_reconnect() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve(listener, Behaviour::DropFirst, stop.clone());
        let mut x = exec_for(addr);
        assert!(x.wait_connected(Duration::from_secs(2)));
        let mut d = Dispatcher::new(cfg());
        d.on_scan(0, &ScanBatch { breached: vec![4], ..Default::default() }, &prices(), &Book, &mut x);
        drive(&mut d, &mut x, |d| d.stats().filled == 1);
        assert!(d.stats().lost >= 1 || d.stats().timeouts >= 1, "{:?}", d.stats());
        assert!(x.connects() >= 2);
        drop(x);
        stop.store(true, Ordering::Release);
        let seen = server.join().unwrap();
        assert!(seen.len() >= 2);
        assert!(seen.iter().all(|o| o.id == seen[0].id));
    }

    fn hello(auth: bool) -> ClientLine {
        ClientLine::Hello { protocol: PROTOCOL.into(), auth: auth.then(|| AUTH_HMAC.into()) }
    }

    #[test]
    fn authenticated_orders_fill_over_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve_with(listener, Behaviour::Fill, stop.clone(), key());
        let mut x = exec_with(addr, key());
        assert!(x.wait_connected(Duration::from_secs(2)));
        let mut d = Dispatcher::new(cfg());
        d.on_scan(0, &ScanBatch { breached: vec![1, 2], ..Default::default() }, &prices(), &Book, &mut x);
        drive(&mut d, &mut x, |d| d.stats().filled == 2);
        assert_eq!((x.auth_failures(), x.long_lines(), x.bad_lines(), x.connects()), (0, 0, 0, 1));
        drop(x);
        stop.store(true, Ordering::Release);
        let served = server.join().unwrap();
        assert_eq!(served.orders.len(), 2);
        assert!(served.refused.is_empty(), "{:?}", served.refused);
    }

    #[test]
    fn unauthenticated_wrong_key_or_tampered_orders_are_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve_with(listener, Behaviour::Fill, stop.clone(), key());
        // 1. No secret at all: the hello is refused.
        let mut plain = LineWriter::new(None, Direction::ToService);
        send_raw(
            addr,
            &[sealed(&mut plain, &hello(false)), sealed(&mut plain, &ClientLine::Order(an_order(501)))],
        );
        // 2. Another secret.
        let mut other =
            LineWriter::new(Some(HmacKey::new(b"another secret of 32 bytes......")), Direction::ToService);
        send_raw(
            addr,
            &[sealed(&mut other, &hello(true)), sealed(&mut other, &ClientLine::Order(an_order(502)))],
        );
        // 3. The right secret, the order altered after signing (the account 503 became 593).
        let mut good = LineWriter::new(key(), Direction::ToService);
        let h = sealed(&mut good, &hello(true));
        let mut order = sealed(&mut good, &ClientLine::Order(an_order(503)));
        let at = order.windows(3).position(|w| w == b"503").unwrap();
        order[at + 1] = b'9';
        send_raw(addr, &[h, order]);
        // 4. A keeper with the wrong secret, through the executor: its order never fills.
        let mut x = exec_with(addr, Some(HmacKey::new(b"another secret of 32 bytes......")));
        let mut d = Dispatcher::new(cfg());
        std::thread::sleep(Duration::from_millis(100));
        d.on_scan(0, &ScanBatch { breached: vec![4], ..Default::default() }, &prices(), &Book, &mut x);
        std::thread::sleep(Duration::from_millis(300));
        d.poll(300 * MS, &prices(), &Book, &mut x);
        assert_eq!(d.stats().filled, 0);
        drop(x);
        stop.store(true, Ordering::Release);
        let served = server.join().unwrap();
        assert!(served.orders.is_empty(), "no order taken: {:?}", served.orders);
        let r = &served.refused;
        assert!(r.len() >= 4, "{r:?}");
        assert!(r[0].contains("line 0") && r[0].contains("no HMAC tag"), "{r:?}");
        assert!(r[1].contains("line 0") && r[1].contains("does not verify"), "{r:?}");
        assert!(r[2].contains("line 1") && r[2].contains("does not verify"), "{r:?}");
        assert!(r[3..].iter().all(|e| e.contains("line 0") && e.contains("does not verify")), "{r:?}");
    }

    #[test]
    fn over_long_lines_are_refused_both_ways() {
        // Keeper -> service: a line without end is refused at the limit, not read forever.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve_with(listener, Behaviour::Fill, stop.clone(), None);
        let mut w = LineWriter::new(None, Direction::ToService);
        send_raw(addr, &[sealed(&mut w, &hello(false)), vec![b' '; MAX_LINE + 10]]);
        stop.store(true, Ordering::Release);
        let served = server.join().unwrap();
        assert!(
            matches!(&served.refused[..], [e] if e.contains("line 1") && e.contains("longer than 65536")),
            "{:?}",
            served.refused
        );

        // Service -> keeper: the executor counts the line, closes and reconnects.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let talker = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut long = vec![b'x'; MAX_LINE + 1];
            long.push(b'\n');
            let _ = c.write_all(&long);
            // The keeper reconnects after closing.
            listener.set_nonblocking(true).unwrap();
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                if let Ok((again, _)) = listener.accept() {
                    // Held open, so the keeper's last error stays the long line.
                    return Some(again);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            None
        });
        let x = exec_for(addr);
        let again = talker.join().unwrap();
        assert!(again.is_some(), "the keeper reconnected");
        assert_eq!(x.long_lines(), 1);
        assert!(x.last_error().contains("longer than 65536"), "{}", x.last_error());
        // The listener's accept can come before the keeper's I/O thread, back from its
        // connect, counts the connection: wait for the count, bounded.
        let end = Instant::now() + Duration::from_secs(5);
        let mut link = Executor::link_stats(&x);
        while link.connects < 2 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
            link = Executor::link_stats(&x);
        }
        assert_eq!((link.long_lines, link.auth_failures, link.bad_lines), (1, 0, 0));
        assert!(link.connects >= 2, "{link:?}");
    }

    #[test]
    fn a_service_answer_with_a_bad_tag_closes_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let talker = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            // A forged completion: signed with another key.
            let mut w =
                LineWriter::new(Some(HmacKey::new(b"forger's secret, 32 bytes long..")), Direction::ToKeeper);
            let fill = Completion {
                id: 1,
                attempt: 1,
                outcome: Outcome::Filled { repaid_value: 1, seized_value: 1 },
            };
            let mut b = Vec::new();
            w.seal_json(&ServerLine::Completion(fill), &mut b).unwrap();
            c.write_all(&b).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = std::io::Read::read(&mut c, &mut [0u8; 4096]);
        });
        let mut x = exec_with(addr, key());
        let end = Instant::now() + Duration::from_secs(3);
        while x.auth_failures() == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(x.auth_failures(), 1);
        let mut got = Vec::new();
        x.poll(&mut got);
        assert!(
            got.iter().all(|c| c.outcome != Outcome::Filled { repaid_value: 1, seized_value: 1 }),
            "{got:?}"
        );
        drop(x);
        talker.join().unwrap();
    }
}
