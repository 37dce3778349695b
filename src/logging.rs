//! Logs: `tracing` events from every crate, written to standard error by a non-blocking writer
//! (a thread of its own does the `write(2)`s, so a thread that logs, such as the engine thread
//! on a fail-over, never waits on a slow or full stderr; past 128k queued lines, lines are
//! dropped rather than block).
//!
//! `--log-format text|json` (JSON: one object a line, for log pipelines) and `--log-level`
//! (an `EnvFilter` directive such as `info` or `liqscan_host=debug,warn`; without it
//! `RUST_LOG`, else [`DEFAULT_FILTER`]). Reports and progress a command prints for a person stay plain
//! stderr lines.

use anyhow::{Context, Result};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

/// The filter without `--log-level` or `RUST_LOG`: `info`, but the NATS client's own lines
/// only from `warn` (it logs every reconnect attempt at `info`, many a second while a server is
/// down; liqscan reports the unreachable address itself).
pub const DEFAULT_FILTER: &str = "info,async_nats=warn";

/// Installs the subscriber; keep the guard until exit (dropping it flushes queued lines).
pub fn init(format: LogFormat, level: Option<&str>) -> Result<WorkerGuard> {
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).with_context(|| format!("--log-level '{l}'"))?,
        None => match std::env::var("RUST_LOG") {
            Ok(v) if !v.is_empty() => EnvFilter::try_new(&v).with_context(|| format!("RUST_LOG '{v}'"))?,
            _ => EnvFilter::new(DEFAULT_FILTER),
        },
    };
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let r = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    r.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    Ok(guard)
}
