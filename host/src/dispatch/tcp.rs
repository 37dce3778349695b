//! A client of a downstream liquidation service over TCP (liquidation-as-a-service set-ups).
//!
//! Protocol `liqscan-dispatch/1`: newline-delimited JSON, one message per line, UTF-8.
//!
//! ```text
//!  keeper (client)                                        service (server)
//!  {"hello":{"protocol":"liqscan-dispatch/1"}}   ──>
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
//! - Lines the client cannot parse are counted and skipped; they do not drop the connection.
//!
//! Threads: [`TcpExecutor::submit`] never touches the socket; it puts the order in a bounded
//! queue (full: [`SubmitError::Busy`]) or refuses at once while the connection is down
//! ([`SubmitError::Unavailable`]). An I/O thread connects (and reconnects after
//! `reconnect_backoff`), writes queued orders, and a reader thread turns answers into
//! completions. When the connection drops, every order written on it and not yet answered is
//! reported [`Outcome::Lost`], and the dispatcher re-sends it under the same id.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded, unbounded};
use serde::{Deserialize, Serialize};

use super::executor::{Executor, SubmitError};
use super::order::{Completion, LiquidationOrder, OrderId, Outcome};

/// The protocol name sent in the hello line.
pub const PROTOCOL: &str = "liqscan-dispatch/1";

/// A line from the keeper to the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientLine {
    /// First line on every connection.
    Hello {
        /// [`PROTOCOL`].
        protocol: String,
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
}

impl TcpConfig {
    /// Defaults for an address: queue 1024, connect 1 s, reconnect every 200 ms, write 1 s.
    pub fn new(addr: SocketAddr) -> Self {
        TcpConfig {
            addr,
            queue: 1024,
            connect_timeout: Duration::from_secs(1),
            reconnect_backoff: Duration::from_millis(200),
            write_timeout: Duration::from_secs(1),
        }
    }
}

#[derive(Default)]
struct Shared {
    up: AtomicBool,
    stop: AtomicBool,
    last_error: Mutex<String>,
    connects: AtomicU64,
    bad_lines: AtomicU64,
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
        match self.tx.as_ref().expect("running").try_send(order.clone()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(SubmitError::Busy(self.name.clone())),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Unavailable {
                executor: self.name.clone(),
                detail: "I/O thread stopped".into(),
            }),
        }
    }

    fn poll(&mut self, out: &mut Vec<Completion>) {
        out.extend(self.done.try_iter());
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
        let hello = ClientLine::Hello { protocol: PROTOCOL.into() };
        if write_line(&mut write_half, &hello).is_err() {
            nap(cfg.reconnect_backoff, &s);
            continue;
        }
        s.connects.fetch_add(1, Ordering::Relaxed);
        let outstanding: Outstanding = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        let reader = {
            let (outstanding, dead, done, s) = (outstanding.clone(), dead.clone(), done.clone(), s.clone());
            std::thread::spawn(move || read_loop(read_half, outstanding, dead, done, s))
        };
        s.up.store(true, Ordering::Release);
        loop {
            if dead.load(Ordering::Acquire) || s.stop.load(Ordering::Acquire) {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok(order) => {
                    outstanding.lock().expect("not poisoned").insert(order.id, order.attempt);
                    if let Err(e) = write_line(&mut write_half, &ClientLine::Order(order.clone())) {
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

fn write_line(w: &mut TcpStream, line: &ClientLine) -> std::io::Result<()> {
    let mut buf = serde_json::to_vec(line).map_err(std::io::Error::other)?;
    buf.push(b'\n');
    w.write_all(&buf)
}

fn read_loop(
    stream: TcpStream,
    outstanding: Outstanding,
    dead: Arc<AtomicBool>,
    done: Sender<Completion>,
    s: Arc<Shared>,
) {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<ServerLine>(line.trim()) {
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
            }
        }
    }
    *s.last_error.lock().expect("not poisoned") = "connection closed by the service".into();
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
        fn view(&self, slot: u32) -> Option<AccountView> {
            let positions = vec![
                Position { asset: 0, amount: 10, asset_weight_ppm: 800_000, liability_weight_ppm: 1_000_000 },
                Position {
                    asset: 1,
                    amount: -900,
                    asset_weight_ppm: 1_000_000,
                    liability_weight_ppm: 1_000_000,
                },
            ];
            Some(AccountView { account: 500 + slot as u64, slot, positions })
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

    /// A service: accepts connections until `stop`, records every order line it reads.
    fn serve(
        listener: TcpListener,
        b: Behaviour,
        stop: Arc<AtomicBool>,
    ) -> JoinHandle<Vec<LiquidationOrder>> {
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut dropped = false;
            while !stop.load(Ordering::Acquire) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                let mut line = String::new();
                'conn: while !stop.load(Ordering::Acquire) {
                    // A read time-out keeps the partial line in `line`; take it only when whole.
                    match r.read_line(&mut line) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(_) => continue,
                    }
                    let text = std::mem::take(&mut line);
                    let Ok(ClientLine::Order(o)) = serde_json::from_str::<ClientLine>(text.trim()) else {
                        continue;
                    };
                    seen.push(o.clone());
                    let answer = |w: &mut TcpStream| {
                        let c = Completion {
                            id: o.id,
                            attempt: o.attempt,
                            outcome: Outcome::Filled { repaid_value: 450, seized_value: 472 },
                        };
                        let mut s = serde_json::to_string(&ServerLine::Completion(c)).unwrap();
                        s.push('\n');
                        let _ = w.write_all(s.as_bytes());
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
            seen
        })
    }

    fn exec_for(addr: SocketAddr) -> TcpExecutor {
        TcpExecutor::start(TcpConfig {
            reconnect_backoff: Duration::from_millis(20),
            connect_timeout: Duration::from_millis(200),
            ..TcpConfig::new(addr)
        })
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
}
