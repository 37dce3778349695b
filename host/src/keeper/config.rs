//! The keeper's one configuration type: every option is a command-line flag (clap), an
//! environment variable (`LIQSCAN_` and the flag's name) and a key of the TOML config file
//! (serde), spelled once here. [`KeeperConfig::merged`] lays the flags (and the environment,
//! which clap reads into them) over the file in one pass: flags > environment > file >
//! defaults. A flag's value replaces the file's, booleans included (`--spin=false` turns off a
//! file's `spin = true`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::KeeperError;
use crate::dispatch::DispatchConfig;
use crate::dispatch::tcp::{TcpConfig, TcpExecutor};
use crate::dispatch::{Executor, JsonlSink};
use crate::feed::listen::{FeedOptions, RateLimit};
use crate::feed::replay::Pace;
use crate::journal::{FsyncPolicy, JournalConfig};

/// The keeper's configuration (the options of `liqscan run`; docs/OPERATOR.md).
#[derive(clap::Args, Serialize, Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct KeeperConfig {
    /// software | card-software | card-hdl | card-verilog | routed | shm | pcie.
    #[arg(long, env = "LIQSCAN_BACKEND")]
    pub backend: Option<String>,
    /// Venue file; without it, the embedded demo venue, book and crash.
    #[arg(long, env = "LIQSCAN_VENUE")]
    pub venue: Option<PathBuf>,
    /// Accounts file.
    #[arg(long, env = "LIQSCAN_ACCOUNTS")]
    pub accounts: Option<PathBuf>,
    /// Tick files (.csv/.jsonl).
    #[arg(long)]
    #[serde(default)]
    pub ticks: Vec<PathBuf>,
    /// OHLC bars as SYMBOL=PATH.
    #[arg(long)]
    #[serde(default)]
    pub bars: Vec<String>,
    /// Accounts in the embedded demo book.
    #[arg(long, env = "LIQSCAN_DEMO_ACCOUNTS")]
    pub demo_accounts: Option<usize>,
    /// flood | recorded:SPEED | fixed:PER_SECOND.
    #[arg(long, env = "LIQSCAN_PACE")]
    pub pace: Option<String>,
    /// Breach events as JSONL ("-" for standard output), written as the scans happen; with
    /// `--journal` a restart continues the file (the journal keeps DIR/events.jsonl otherwise).
    #[arg(long, env = "LIQSCAN_OUT")]
    pub out: Option<PathBuf>,
    /// Serve metrics (OpenMetrics on /metrics, /healthz, /readyz) on this address (e.g.
    /// 127.0.0.1:9184): loopback only unless --metrics-allow-remote.
    #[arg(long, env = "LIQSCAN_METRICS")]
    pub metrics: Option<String>,
    /// Allow --metrics on a non-loopback address (reachable from the network).
    #[arg(long, env = "LIQSCAN_METRICS_ALLOW_REMOTE", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub metrics_allow_remote: Option<bool>,
    /// Save the stage histograms in HdrHistogram interval-log format.
    #[arg(long, env = "LIQSCAN_HLOG")]
    pub hlog: Option<PathBuf>,
    /// Link file of a running `liqscan card` (backend shm).
    #[arg(long, env = "LIQSCAN_SHM")]
    pub shm: Option<PathBuf>,
    /// Core for the engine thread.
    #[arg(long, env = "LIQSCAN_ENGINE_CORE")]
    pub engine_core: Option<usize>,
    /// Core for the feed thread (the thread that starts the keeper, and those it spawns).
    #[arg(long, env = "LIQSCAN_FEED_CORE")]
    pub feed_core: Option<usize>,
    /// Core for an in-process emulated card.
    #[arg(long, env = "LIQSCAN_CARD_CORE")]
    pub card_core: Option<usize>,
    /// Busy-poll everywhere, never yield (dedicated cores only); `--spin=false` turns a
    /// config file's `spin = true` off.
    #[arg(long, env = "LIQSCAN_SPIN", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub spin: Option<bool>,
    /// Watchdog: a card silent this long is failed over (milliseconds).
    #[arg(long, env = "LIQSCAN_WATCHDOG_MS")]
    pub watchdog_ms: Option<u64>,
    /// Where liquidation orders go: discard (built and counted, not written), stdout,
    /// jsonl:PATH, tcp:HOST:PORT (a downstream service, line protocol liqscan-dispatch/3;
    /// shared secret from LIQSCAN_DISPATCH_SECRET if set), or nats:VENUE@URL (the venue's
    /// JetStream order stream, de-duplicated by order id; docs/OPERATOR.md).
    #[arg(long, env = "LIQSCAN_EXECUTOR")]
    pub executor: Option<String>,
    /// Publish breach, recovery and at-risk candidates to nats:VENUE@URL (the venue's
    /// JetStream candidates stream, schema liqscan-candidate/1; docs/OPERATOR.md). Made by the
    /// program (`liqscan run` does it); the library leaves the NATS client out.
    #[arg(long, env = "LIQSCAN_CANDIDATES")]
    pub candidates: Option<String>,
    /// Read ticks and account deltas from the venue's JetStream input stream on this NATS
    /// server (stream liqscan_<venue>_inputs, venue --nats-venue) instead of replaying files;
    /// the venue and accounts files (or the demo) give the book's shape, the stream its
    /// contents (docs/OPERATOR.md). Made by the program (`liqscan run` does it).
    #[arg(long, env = "LIQSCAN_NATS")]
    pub nats: Option<String>,
    /// The venue name of --nats (its subjects and stream).
    #[arg(long, env = "LIQSCAN_NATS_VENUE")]
    pub nats_venue: Option<String>,
    /// With --nats: stop once no input message came for this long (milliseconds); by
    /// default the keeper reads the stream until stopped (SIGTERM).
    #[arg(long, env = "LIQSCAN_NATS_IDLE_MS")]
    pub nats_idle_ms: Option<u64>,
    /// Core for the dispatch thread.
    #[arg(long, env = "LIQSCAN_DISPATCH_CORE")]
    pub dispatch_core: Option<usize>,
    /// Write-ahead journal directory: account deltas and ticks (DIR/book, on the feed thread)
    /// and orders (DIR/orders, on the dispatch thread); a run over an existing journal
    /// recovers it and resumes the replay after the last journaled message.
    #[arg(long, env = "LIQSCAN_JOURNAL")]
    pub journal: Option<PathBuf>,
    /// Journal fsync policy: always | never | batch:RECORDS:MILLIS (default batch:256:10).
    #[arg(long, env = "LIQSCAN_JOURNAL_FSYNC")]
    pub journal_fsync: Option<String>,
    /// `[feed]`: live listeners and their hardening (docs/WIRE_FORMAT.md).
    #[command(flatten)]
    #[serde(default)]
    pub feed: FeedConfig,
    /// `[dispatch]` (config file only): the dispatcher's rules.
    #[arg(skip)]
    #[serde(skip_serializing)]
    pub dispatch: Option<DispatchConfig>,
    /// `[pcie]` (config file only): the card's BAR and DMA buffer (backend pcie).
    #[arg(skip)]
    #[serde(skip_serializing)]
    pub pcie: Option<PcieConfig>,
}

/// `[feed]` section: live listener hardening (docs/WIRE_FORMAT.md); each key is also a flag.
#[derive(clap::Args, Serialize, Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Also take live feed frames on this TCP address (loopback unless `[feed] allow_remote`);
    /// shared secret from LIQSCAN_FEED_SECRET if set.
    #[arg(long = "listen-tcp", env = "LIQSCAN_LISTEN_TCP")]
    pub tcp: Option<String>,
    /// Also take live feed datagrams on this UDP address.
    #[arg(long = "listen-udp", env = "LIQSCAN_LISTEN_UDP")]
    pub udp: Option<String>,
    /// Keep listening this long after the replay ends (milliseconds).
    #[arg(long = "listen-ms", env = "LIQSCAN_LISTEN_MS")]
    pub listen_ms: Option<u64>,
    /// Let the listeners bind beyond loopback.
    #[arg(long = "feed-allow-remote", env = "LIQSCAN_FEED_ALLOW_REMOTE", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub allow_remote: Option<bool>,
    /// Live TCP connections at once (default 16).
    #[arg(long = "feed-max-connections", env = "LIQSCAN_FEED_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Connection slots per peer address.
    #[arg(long = "feed-max-per-address", env = "LIQSCAN_FEED_MAX_PER_ADDRESS")]
    pub max_per_address: Option<usize>,
    /// Connections waiting for a first frame.
    #[arg(long = "feed-max-waiting", env = "LIQSCAN_FEED_MAX_WAITING")]
    pub max_waiting: Option<usize>,
    /// Deadline for a connection's first frame (milliseconds).
    #[arg(long = "feed-first-frame-timeout-ms", env = "LIQSCAN_FEED_FIRST_FRAME_TIMEOUT_MS")]
    pub first_frame_timeout_ms: Option<u64>,
    /// A connection silent this long is closed (milliseconds).
    #[arg(long = "feed-idle-timeout-ms", env = "LIQSCAN_FEED_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Largest sequence jump adopted.
    #[arg(long = "feed-max-seq-jump", env = "LIQSCAN_FEED_MAX_SEQ_JUMP")]
    pub max_seq_jump: Option<u64>,
    /// Token bucket per connection / peer: frames per second.
    #[arg(long = "feed-rate-per-second", env = "LIQSCAN_FEED_RATE_PER_SECOND")]
    pub rate_per_second: Option<f64>,
    /// Token bucket burst (default: the rate).
    #[arg(long = "feed-rate-burst", env = "LIQSCAN_FEED_RATE_BURST")]
    pub rate_burst: Option<f64>,
    /// Oracle guard on live ticks: jump bound (basis points).
    #[arg(long = "feed-max-jump-bps", env = "LIQSCAN_FEED_MAX_JUMP_BPS")]
    pub max_jump_bps: Option<u32>,
    /// Oracle guard on live ticks: maximum price age (milliseconds).
    #[arg(long = "feed-max-age-ms", env = "LIQSCAN_FEED_MAX_AGE_MS")]
    pub max_age_ms: Option<i64>,
}

/// `[pcie]` section.
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct PcieConfig {
    /// BAR 0 file: /sys/bus/pci/devices/<bdf>/resource0, or the XDMA user device.
    pub bar: PathBuf,
    /// BAR length (required for devices whose file length reads 0).
    pub bar_len: Option<usize>,
    /// DMA buffer file (hugetlbfs).
    pub dma: PathBuf,
    /// DMA buffer bytes.
    pub dma_len: usize,
    /// Its bus address as the card sees it.
    pub dma_bus_addr: u64,
}

impl KeeperConfig {
    /// Reads a TOML config file (keys as the long options, with underscores).
    pub fn from_file(path: &Path) -> Result<KeeperConfig, KeeperError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeeperError::context(format!("reading {}", path.display()), e))?;
        toml::from_str(&text).map_err(|e| KeeperError::context(format!("config {}", path.display()), e))
    }

    /// `self` (flags and environment) laid over the file at `file`, if any: each option set
    /// here wins, the file fills the rest. One generic pass over the serialized tables, so a
    /// new option needs no merge code.
    pub fn merged(self, file: Option<&Path>) -> Result<KeeperConfig, KeeperError> {
        let Some(path) = file else { return Ok(self) };
        let base = Self::from_file(path)?;
        self.over(base, &format!("config {}", path.display()))
    }

    /// `self` laid over `base` as [`KeeperConfig::merged`] does; `origin` names `base` in
    /// errors.
    pub fn over(self, base: KeeperConfig, origin: &str) -> Result<KeeperConfig, KeeperError> {
        let bad = |e: &dyn std::fmt::Display| KeeperError::Config(format!("{origin}: {e}"));
        let mut merged = toml::Table::try_from(&base).map_err(|e| bad(&e))?;
        let over = toml::Table::try_from(&self).map_err(|e| bad(&e))?;
        overlay(&mut merged, over);
        let mut out: KeeperConfig = merged.try_into().map_err(|e: toml::de::Error| bad(&e))?;
        // File-only sections do not serialize: take them from the file.
        out.dispatch = self.dispatch.or(base.dispatch);
        out.pcie = self.pcie.or(base.pcie);
        Ok(out)
    }

    /// The backend, `software` unless set.
    pub fn backend_name(&self) -> &str {
        self.backend.as_deref().unwrap_or("software")
    }

    /// Busy-polling on (`spin`).
    pub fn spins(&self) -> bool {
        self.spin.unwrap_or(false)
    }

    /// The card watchdog in milliseconds: the rust-hdl simulation runs thousands of times
    /// slower than the card, so `card-hdl` gets a minute by default, the Verilated card
    /// (hundreds of times slower) 5 s.
    pub fn watchdog(&self) -> u64 {
        self.watchdog_ms.unwrap_or(match self.backend_name() {
            "card-hdl" => 60_000,
            "card-verilog" => 5_000,
            _ => 500,
        })
    }

    /// The replay pace (range-checked: `fixed:0` or `recorded:NaN` are refused).
    pub fn pace(&self) -> Result<Pace, KeeperError> {
        crate::io::options::parse_pace(self.pace.as_deref().unwrap_or("flood")).map_err(KeeperError::Config)
    }

    /// The executor, `discard` unless set.
    pub fn executor_spec(&self) -> Result<ExecutorSpec, KeeperError> {
        parse_executor(self.executor.as_deref().unwrap_or("discard"))
    }

    /// The journal, if one is configured.
    pub fn journal_plan(&self) -> Result<Option<JournalPlan>, KeeperError> {
        let Some(dir) = &self.journal else { return Ok(None) };
        let fsync = match &self.journal_fsync {
            Some(f) => parse_fsync(f)?,
            None => JournalConfig::default().fsync,
        };
        Ok(Some(JournalPlan { dir: dir.clone(), cfg: JournalConfig { fsync, ..JournalConfig::default() } }))
    }

    /// Refuses a core that is not there: a configuration error, not a silently unpinned thread.
    pub fn check_cores(&self) -> Result<(), KeeperError> {
        for (key, core) in [
            ("engine_core", self.engine_core),
            ("feed_core", self.feed_core),
            ("card_core", self.card_core),
            ("dispatch_core", self.dispatch_core),
        ] {
            if let Some(c) = core {
                crate::pipeline::affinity::check_core(c)
                    .map_err(|e| KeeperError::context(format!("--{} / {key}", key.replace('_', "-")), e))?;
            }
        }
        Ok(())
    }
}

/// Lays `over` on `base`: tables merge key by key; an empty list (a repeatable flag not given)
/// leaves the file's.
pub(crate) fn overlay(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (_, toml::Value::Array(a)) if a.is_empty() => {}
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => overlay(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

impl FeedConfig {
    /// A live listener is configured.
    pub fn listens(&self) -> bool {
        self.tcp.is_some() || self.udp.is_some()
    }

    /// The listeners' options (the feed secret from LIQSCAN_FEED_SECRET if set).
    pub fn options(&self) -> Result<FeedOptions, KeeperError> {
        let d = FeedOptions::default();
        FeedOptions {
            allow_remote: self.allow_remote.unwrap_or(false),
            max_connections: self.max_connections.unwrap_or(16),
            max_per_address: self.max_per_address,
            max_waiting: self.max_waiting.unwrap_or(d.max_waiting),
            first_frame_timeout: self
                .first_frame_timeout_ms
                .map_or(d.first_frame_timeout, Duration::from_millis),
            idle_timeout: self.idle_timeout_ms.map_or(d.idle_timeout, Duration::from_millis),
            max_seq_jump: self.max_seq_jump.unwrap_or(d.max_seq_jump),
            rate: self
                .rate_per_second
                .map(|r| RateLimit { per_second: r, burst: self.rate_burst.unwrap_or(r) }),
            ..FeedOptions::default()
        }
        .secret_from_env("LIQSCAN_FEED_SECRET")
        .map_err(KeeperError::Config)
    }

    /// The oracle guard on live ticks (max age ns, max jump bps), if one is configured.
    pub fn guard(&self) -> Option<(Option<i64>, u32)> {
        (self.max_jump_bps.is_some() || self.max_age_ms.is_some())
            .then(|| (self.max_age_ms.map(|m| m * 1_000_000), self.max_jump_bps.unwrap_or(u32::MAX)))
    }
}

/// Parses a journal fsync policy: always | never | batch:RECORDS:MILLIS.
pub fn parse_fsync(s: &str) -> Result<FsyncPolicy, KeeperError> {
    let bad =
        || KeeperError::Config(format!("journal fsync '{s}': use always, never or batch:RECORDS:MILLIS"));
    Ok(match s.split(':').collect::<Vec<_>>()[..] {
        ["always"] => FsyncPolicy::Always,
        ["never"] => FsyncPolicy::Never,
        ["batch", r, m] => FsyncPolicy::Batch {
            records: r.parse().map_err(|e| KeeperError::context("batch:RECORDS:MILLIS", e))?,
            millis: m.parse().map_err(|e| KeeperError::context("batch:RECORDS:MILLIS", e))?,
        },
        _ => return Err(bad()),
    })
}

/// A keeper's journal: where, and with what settings.
#[derive(Clone, Debug)]
pub struct JournalPlan {
    /// Directory (DIR/book and DIR/orders).
    pub dir: PathBuf,
    /// Settings of both journals.
    pub cfg: JournalConfig,
}

/// Where the dispatcher hands orders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecutorSpec {
    /// A JSONL sink into nothing: orders are built, sized and counted.
    Discard,
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines in a file.
    Jsonl(PathBuf),
    /// A downstream liquidation service over TCP.
    Tcp(std::net::SocketAddr),
    /// A venue's JetStream order stream (`VENUE@URL`). The `liqscan-nats` crate makes it
    /// (it brings tokio and the NATS client, which this library leaves out): a program hands
    /// it over with [`KeeperBuilder::executor_with`](super::KeeperBuilder::executor_with), as
    /// `liqscan run` does.
    Nats(String),
}

/// Parses an executor: discard, stdout, jsonl:PATH, tcp:HOST:PORT or nats:VENUE@URL.
pub fn parse_executor(s: &str) -> Result<ExecutorSpec, KeeperError> {
    Ok(match s.split_once(':') {
        None if s == "discard" => ExecutorSpec::Discard,
        None if s == "stdout" => ExecutorSpec::Stdout,
        Some(("jsonl", "-")) => ExecutorSpec::Stdout,
        Some(("jsonl", p)) => ExecutorSpec::Jsonl(PathBuf::from(p)),
        Some(("tcp", a)) => ExecutorSpec::Tcp(
            std::net::ToSocketAddrs::to_socket_addrs(a)
                .map_err(|e| KeeperError::context(format!("executor address '{a}'"), e))?
                .next()
                .ok_or_else(|| KeeperError::Config(format!("executor address '{a}' resolves to nothing")))?,
        ),
        Some(("nats", v)) => ExecutorSpec::Nats(v.into()),
        _ => {
            return Err(KeeperError::Config(format!(
                "executor '{s}': use discard, stdout, jsonl:PATH, tcp:HOST:PORT or nats:VENUE@URL"
            )));
        }
    })
}

/// Refuses, before a run, an output path that cannot be written (a directory, a missing
/// folder, no write permission), so that nothing is found out after hours of running. `what`
/// names it. A regular file is opened for appending, so nothing in it changes; a new one is
/// created and removed; a FIFO or a device is left alone (opening it now could block, or end a
/// reader's stream).
pub fn check_writable_file(what: &str, p: &Path) -> Result<(), KeeperError> {
    if p.is_dir() {
        return Err(KeeperError::Config(format!("{what}: is a directory, not a writable file")));
    }
    let existed = match std::fs::metadata(p) {
        Ok(m) if !m.is_file() => return Ok(()),
        Ok(_) => true,
        Err(_) => false,
    };
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p)
        .map_err(|e| KeeperError::context(format!("{what}: not a writable file"), e))?;
    // A refused run leaves nothing behind: the writer creates it again.
    if !existed {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

impl KeeperConfig {
    /// Refuses an output (`--out`, `--hlog`, a JSONL executor) that is one of the input files
    /// (the venue, accounts, ticks, bars): opening it would truncate what the keeper reads.
    pub fn refuse_inputs_as_outputs(&self, exec: &ExecutorSpec) -> Result<(), KeeperError> {
        let inputs = crate::io::outputs::named_inputs(
            self.venue.as_deref(),
            self.accounts.as_deref(),
            &self.ticks,
            &self.bars,
        );
        let mut outputs: Vec<(String, &Path)> = Vec::new();
        outputs.extend(self.out.as_deref().map(|p| ("--out".to_string(), p)));
        outputs.extend(self.hlog.as_deref().map(|p| ("--hlog".to_string(), p)));
        if let ExecutorSpec::Jsonl(p) = exec {
            outputs.push(("--executor jsonl:".to_string(), p.as_path()));
        }
        for (flag, out) in outputs {
            crate::io::outputs::refuse_input_as_output(&flag, out, &inputs).map_err(KeeperError::Config)?;
        }
        Ok(())
    }
}

impl ExecutorSpec {
    /// Refuses, before the keeper starts, a JSONL path that cannot take orders: on the dispatch
    /// thread it could only discard them ([`check_writable_file`]).
    pub fn check_writable(&self) -> Result<(), KeeperError> {
        match self {
            ExecutorSpec::Jsonl(p) => check_writable_file(&format!("executor jsonl:{}", p.display()), p),
            _ => Ok(()),
        }
    }

    /// Makes the executor (called on the dispatch thread); `resume` (a keeper restarted over
    /// its journal) appends to a JSONL file instead of truncating it, so the orders sent before
    /// the restart stay; `durable` (a journal fsyncing every record) fsyncs each JSONL line too.
    /// `note` hears a TCP executor that is not connected yet.
    pub fn make_for(
        &self,
        resume: bool,
        durable: bool,
        note: &dyn Fn(&str),
    ) -> Result<Box<dyn Executor>, KeeperError> {
        Ok(match self {
            ExecutorSpec::Discard => Box::new(JsonlSink::new("discard", std::io::sink())),
            ExecutorSpec::Stdout => Box::new(JsonlSink::stdout()),
            ExecutorSpec::Jsonl(p) => {
                let sink = if resume {
                    JsonlSink::append(p)
                        .map_err(|e| KeeperError::context(format!("appending to {}", p.display()), e))?
                } else {
                    JsonlSink::create(p)
                        .map_err(|e| KeeperError::context(format!("creating {}", p.display()), e))?
                };
                if durable {
                    Box::new(
                        sink.sync_each_line()
                            .map_err(|e| KeeperError::context(p.display().to_string(), e))?,
                    )
                } else {
                    Box::new(sink)
                }
            }
            ExecutorSpec::Tcp(a) => {
                let cfg = TcpConfig::new(*a)
                    .secret_from_env("LIQSCAN_DISPATCH_SECRET")
                    .map_err(KeeperError::Config)?;
                let t = TcpExecutor::start(cfg);
                if !t.wait_connected(Duration::from_secs(2)) {
                    note(&format!("note: executor tcp://{a} not connected yet; orders back off until it is"));
                }
                Box::new(t)
            }
            ExecutorSpec::Nats(v) => {
                return Err(KeeperError::Config(format!(
                    "executor nats:{v}: made by the liqscan-nats crate; build the keeper with \
                     executor_with(liqscan_nats::executor::from_spec)"
                )));
            }
        })
    }
}
