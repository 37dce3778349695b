//! A downstream liquidation service on loopback speaking `liqscan-dispatch/3` (no secret), for
//! tests, scripts and the latency benchmark: it records every order line it reads and
//! answers each with a fill, idempotent by order id as the protocol asks (an id seen before is
//! answered again, not executed again).

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use liqscan_host::dispatch::line::{Direction, LineReader, LineWriter};
use liqscan_host::dispatch::tcp::{ClientLine, MAX_LINE, PROTOCOL, ServerLine};
use liqscan_host::dispatch::{Completion, LiquidationOrder, OrderId, Outcome};

/// One order line the service read.
#[derive(Clone, Debug)]
pub struct Received {
    /// The order.
    pub order: LiquidationOrder,
    /// When it was read.
    pub at: Instant,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    executed: HashMap<OrderId, usize>,
}

/// The service; stops when dropped.
pub struct DispatchService {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
    thread: Option<JoinHandle<()>>,
}

impl DispatchService {
    /// Listens on a free loopback port.
    pub fn start() -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0", Duration::ZERO)
    }

    /// Listens on `addr` (a restarted service on the port it had), answering each order
    /// `delay` after reading it (a slow venue).
    pub fn start_on(addr: &str, delay: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(State::default()));
        let (s, st) = (stop.clone(), state.clone());
        let thread = std::thread::Builder::new().name("dispatch-service".into()).spawn(move || {
            let mut conns = Vec::new();
            while !s.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((c, _)) => {
                        let (s, st) = (s.clone(), st.clone());
                        conns.push(std::thread::spawn(move || serve(c, s, st, delay)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        })?;
        Ok(DispatchService { addr, stop, state, thread: Some(thread) })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every order line read, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("not poisoned").received.clone()
    }

    /// How many times each order id was received.
    pub fn receipts(&self) -> HashMap<OrderId, usize> {
        self.state.lock().expect("not poisoned").executed.clone()
    }
}

impl Drop for DispatchService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: TcpStream, stop: Arc<AtomicBool>, state: Arc<Mutex<State>>, delay: Duration) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_millis(20)));
    let Ok(mut w) = conn.try_clone() else { return };
    let mut out = LineWriter::new(None, Direction::ToKeeper);
    let mut r = LineReader::new(BufReader::new(conn), None, Direction::ToService, MAX_LINE);
    let mut buf = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let first = r.lines() == 0;
        let text = match r.next_line() {
            Ok(Some(t)) => t.to_string(),
            Ok(None) => return,
            Err(e) if e.is_timeout() => continue,
            Err(_) => return,
        };
        let order = match serde_json::from_str::<ClientLine>(&text) {
            Ok(ClientLine::Hello { protocol, .. }) if first && protocol == PROTOCOL => continue,
            Ok(ClientLine::Order(o)) if !first => o,
            _ => return,
        };
        let at = Instant::now();
        let c = Completion {
            id: order.id,
            attempt: order.attempt,
            outcome: Outcome::Filled { repaid_value: order.value_at_risk, seized_value: order.value_at_risk },
        };
        {
            let mut st = state.lock().expect("not poisoned");
            *st.executed.entry(order.id).or_default() += 1;
            st.received.push(Received { order, at });
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        buf.clear();
        if out.seal_json(&ServerLine::Completion(c), &mut buf).is_err() || w.write_all(&buf).is_err() {
            return;
        }
    }
}
