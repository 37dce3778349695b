//! A throw-away `nats-server -js` for tests, scripts and benchmarks: a free loopback port, a
//! temporary store directory, stopped (SIGKILL, then reaped) when dropped.
//!
//! Tests call [`NatsServer::start_or_skip`]: with no `nats-server` on the machine they print
//! why and return `None` (CI installs it with `scripts/setup-tools.sh`, so there they run).
//! Set `LIQSCAN_REQUIRE_NATS=1` to turn the skip into a failure.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// No `nats-server` binary.
    #[error(
        "nats-server not found (looked at $LIQSCAN_NATS_SERVER, /usr/sbin, /usr/bin, $PATH); install it with scripts/setup-tools.sh"
    )]
    NotFound,
    /// Spawning or preparing failed.
    #[error("starting {binary}: {source}")]
    Io {
        /// The binary.
        binary: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server did not take connections in time.
    #[error("nats-server on {addr} did not take connections within {waited:?} (log: {log})")]
    NotReady {
        /// Its address.
        addr: SocketAddr,
        /// How long we waited.
        waited: Duration,
        /// Its log file.
        log: String,
    },
}

/// The `nats-server` binary: `$LIQSCAN_NATS_SERVER`, Debian's `/usr/sbin/nats-server`, or
/// the first on `$PATH`.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LIQSCAN_NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let mut dirs = vec![PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter().map(|d| d.join("nats-server")).find(|p| p.is_file())
}

/// A running JetStream server on 127.0.0.1 with its own store; killed on drop.
pub struct NatsServer {
    binary: PathBuf,
    addr: SocketAddr,
    store: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server on a free loopback port with a fresh store, and waits until it takes
    /// connections.
    pub fn start() -> Result<Self, ServerError> {
        let binary = binary().ok_or(ServerError::NotFound)?;
        let io = |source| ServerError::Io { binary: binary.display().to_string(), source };
        let store = tempfile::Builder::new().prefix("liqscan-nats-").tempdir().map_err(io)?;
        let addr = free_port().map_err(io)?;
        let mut s = NatsServer { binary, addr, store, child: None };
        s.spawn()?;
        Ok(s)
    }

    /// [`start`](Self::start) for a test: `None` with the reason printed when there is no
    /// `nats-server` (unless `LIQSCAN_REQUIRE_NATS` is set); any other failure panics.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        match Self::start() {
            Ok(s) => Some(s),
            Err(ServerError::NotFound) if std::env::var_os("LIQSCAN_REQUIRE_NATS").is_none() => {
                println!("skipping {test}: {}", ServerError::NotFound);
                None
            }
            Err(e) => panic!("{test}: {e}"),
        }
    }

    /// The client URL (`nats://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JetStream store directory (kept across [`restart`](Self::restart)).
    pub fn store(&self) -> &Path {
        self.store.path()
    }

    /// Kills the server (SIGKILL: no clean shutdown) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and starts it again on the same port over the same store, as a
    /// crashed server restarted by its supervisor.
    pub fn restart(&mut self) -> Result<(), ServerError> {
        self.kill();
        self.spawn()
    }

    /// True while the server process runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn spawn(&mut self) -> Result<(), ServerError> {
        let io = |source| ServerError::Io { binary: self.binary.display().to_string(), source };
        let log_path = self.store.path().join("server.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(io)?;
        let child = Command::new(&self.binary)
            .arg("-js")
            .args(["-a", "127.0.0.1", "-p", &self.addr.port().to_string()])
            .arg("-sd")
            .arg(self.store.path().join("js"))
            // A restart binds the port its killed predecessor had (Go listeners set
            // SO_REUSEADDR, so connections in TIME_WAIT do not block it).
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(io)?;
        self.child = Some(child);
        let waited = Duration::from_secs(10);
        let end = Instant::now() + waited;
        while Instant::now() < end {
            if !self.is_running() {
                // The port may have been taken between our probe and the server's bind.
                self.child = None;
                break;
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_ok() && self.js_ready() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(ServerError::NotReady { addr: self.addr, waited, log: log_path.display().to_string() })
    }

    /// JetStream is ready once the server logs it (the port opens a little earlier).
    fn js_ready(&self) -> bool {
        std::fs::read_to_string(self.store.path().join("server.log"))
            .is_ok_and(|l| l.matches("Server is ready").count() > self.restarts())
    }

    fn restarts(&self) -> usize {
        // Each earlier start logged one "Server is ready"; count the starts by the lines
        // the log holds before this one's.
        std::fs::read_to_string(self.store.path().join("server.log"))
            .map(|l| l.matches("Starting nats-server").count().saturating_sub(1))
            .unwrap_or(0)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port free now (the OS's pick; a race with another process is possible and
/// shows as a server that does not come up).
fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}
