//! The metrics endpoint: `GET /metrics` (OpenMetrics text, [`super::exposition`]),
//! `GET /healthz` (the process answers) and `GET /readyz` (the keeper serves intake).
//!
//! Plain `std::net`, off the hot path: an accept thread and one short-lived thread per
//! connection, at most [`MetricsOptions::max_connections`] at once (one more is answered 503
//! and closed), so concurrent scrapes are served side by side and a stuck client holds one
//! place for at most the read timeout. Request heads are read up to
//! [`MetricsOptions::max_header_bytes`] (431 past it). Binds loopback only unless
//! [`MetricsOptions::allow_remote`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::exposition::{CONTENT_TYPE, Exposition};

/// Endpoint settings. [`Default`]: loopback only, 4 connections at once, 8 KiB request heads,
/// 2 s to send the request.
#[derive(Clone, Debug)]
pub struct MetricsOptions {
    /// Allow binding beyond loopback (the metrics are then reachable from the network).
    pub allow_remote: bool,
    /// Connections served at once.
    pub max_connections: usize,
    /// Longest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// Time a client has to send its request head.
    pub read_timeout: Duration,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            allow_remote: false,
            max_connections: 4,
            max_header_bytes: 8192,
            read_timeout: Duration::from_secs(2),
        }
    }
}

/// Why the endpoint did not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address is not loopback and remote access was not allowed.
    #[error(
        "metrics address {0} is not loopback: refused (pass --metrics-allow-remote, or set \
         metrics_allow_remote = true, to serve metrics beyond this host)"
    )]
    NotLoopback(SocketAddr),
    /// The address does not resolve.
    #[error("metrics address '{addr}': {source}")]
    Resolve {
        /// As given.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// Binding failed (in use, no permission).
    #[error("metrics address {addr}: cannot listen: {source}")]
    Bind {
        /// As given.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A running endpoint; dropping it stops it.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// Checks `addr` resolves and, unless `allow_remote`, only to loopback addresses.
pub fn check_addr(addr: &str, allow_remote: bool) -> Result<Vec<SocketAddr>, MetricsError> {
    let all: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|source| MetricsError::Resolve { addr: addr.to_string(), source })?
        .collect();
    if !allow_remote && let Some(a) = all.iter().find(|a| !a.ip().is_loopback()) {
        return Err(MetricsError::NotLoopback(*a));
    }
    Ok(all)
}

impl MetricsServer {
    /// Listens on `addr` (`127.0.0.1:0` for any free port) and serves `exposition`.
    pub fn start(
        addr: &str,
        exposition: Arc<Exposition>,
        opts: MetricsOptions,
    ) -> Result<Self, MetricsError> {
        let addrs = check_addr(addr, opts.allow_remote)?;
        let bind = |source| MetricsError::Bind { addr: addr.to_string(), source };
        let listener = TcpListener::bind(&addrs[..]).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        if opts.allow_remote && !local.ip().is_loopback() {
            tracing::warn!(addr = %local, "metrics endpoint reachable from the network");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || accept_loop(listener, exposition, opts, s))
            .map_err(bind)?;
        Ok(MetricsServer { addr: local, stop, handle: Some(handle) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Frees a connection's place when its thread ends, however it ends.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn accept_loop(listener: TcpListener, x: Arc<Exposition>, opts: MetricsOptions, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut conn, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if active.fetch_add(1, Ordering::AcqRel) >= opts.max_connections {
            active.fetch_sub(1, Ordering::AcqRel);
            let _ = conn.set_nonblocking(false);
            let _ = conn.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = respond(
                &mut conn,
                "503 Service Unavailable",
                "text/plain",
                "busy: too many scrapes at once\n",
            );
            continue;
        }
        let place = Place(active.clone());
        let (x, o) = (x.clone(), opts.clone());
        let spawned = std::thread::Builder::new().name("metrics-conn".into()).spawn(move || {
            let _place = place;
            let _ = serve(conn, &x, &o);
        });
        // On a failed spawn the closure (and its place) is dropped, freeing the place.
        drop(spawned);
    }
}

/// Reads a request head of at most `limit` bytes: `Ok(Some(head))`, or `Ok(None)` if it is
/// longer.
fn read_head(conn: &mut TcpStream, limit: usize) -> std::io::Result<Option<String>> {
    let mut buf = vec![0u8; limit + 1];
    let mut have = 0;
    loop {
        if let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(String::from_utf8_lossy(&buf[..end]).into_owned()));
        }
        if have > limit {
            return Ok(None);
        }
        let n = conn.read(&mut buf[have..])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
    }
}

fn respond(conn: &mut TcpStream, status: &str, ctype: &str, body: &str) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

fn serve(mut conn: TcpStream, x: &Exposition, opts: &MetricsOptions) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(opts.read_timeout))?;
    conn.set_write_timeout(Some(opts.read_timeout))?;
    let Some(head) = read_head(&mut conn, opts.max_header_bytes)? else {
        let why = format!("request head over {} bytes\n", opts.max_header_bytes);
        return respond(&mut conn, "431 Request Header Fields Too Large", "text/plain", &why);
    };
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if method != "GET" {
        return respond(&mut conn, "405 Method Not Allowed", "text/plain", "GET only\n");
    }
    match path.split('?').next().unwrap_or_default() {
        "/metrics" => respond(&mut conn, "200 OK", CONTENT_TYPE, &x.render()),
        "/healthz" => respond(&mut conn, "200 OK", "text/plain", "ok\n"),
        "/readyz" => match x.counters().health.readiness() {
            Ok(()) => respond(&mut conn, "200 OK", "text/plain", "ready\n"),
            Err(why) => {
                respond(&mut conn, "503 Service Unavailable", "text/plain", &format!("not ready: {why}\n"))
            }
        },
        _ => respond(&mut conn, "404 Not Found", "text/plain", "try /metrics, /healthz or /readyz\n"),
    }
}
