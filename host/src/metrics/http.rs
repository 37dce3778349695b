//! A Prometheus text-format metrics endpoint on loopback (`GET /metrics`).
//!
//! One plain thread on `std::net`; it reads the relaxed counters and the histograms the engine
//! thread last published, so a scrape never touches the hot path.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Counters, Published};

/// A running endpoint; dropping it stops it.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` (use `127.0.0.1:0` for any free port).
    pub fn start(addr: &str, counters: Arc<Counters>, published: Arc<Published>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::Builder::new().name("metrics".into()).spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let _ = serve(conn, &counters, &published);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })?;
        Ok(MetricsServer { addr, stop, handle: Some(handle) })
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

/// The exposition text.
pub fn render(counters: &Counters, published: &Published) -> String {
    let mut s = String::new();
    for (name, help, v) in counters.list() {
        s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"));
    }
    if let Some(h) = published.get() {
        let name = "liqscan_stage_latency_seconds";
        s.push_str(&format!(
            "# HELP {name} pipeline stage latency from the tick's intended time\n# TYPE {name} summary\n"
        ));
        for (stage, hist) in h.stages() {
            for q in [0.5, 0.9, 0.99, 0.999] {
                let v = hist.value_at_quantile(q) as f64 / 1e9;
                s.push_str(&format!("{name}{{stage=\"{stage}\",quantile=\"{q}\"}} {v:e}\n"));
            }
            let sum = hist.mean() * hist.len() as f64 / 1e9;
            s.push_str(&format!("{name}_sum{{stage=\"{stage}\"}} {sum:e}\n"));
            s.push_str(&format!("{name}_count{{stage=\"{stage}\"}} {}\n", hist.len()));
        }
    }
    s
}

fn serve(mut conn: TcpStream, counters: &Counters, published: &Published) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    let mut reader = BufReader::new(conn.try_clone()?);
    reader.read_line(&mut line)?;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
    }
    let (status, body) = if line.starts_with("GET /metrics") {
        ("200 OK", render(counters, published))
    } else {
        ("404 Not Found", "try GET /metrics\n".to_string())
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}
