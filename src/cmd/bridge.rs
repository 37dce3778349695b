//! `liqscan bridge`: the executor bridge. Consumes a venue's JetStream order stream (where
//! one or more keepers publish with `--executor nats:VENUE@URL`) and hands each order to the
//! downstream liquidation service over TCP (`liqscan-dispatch/3`) once, recording each
//! answered order before acknowledging it (docs/OPERATOR.md, "Redundant keepers on NATS").

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use liqscan_host::dispatch::tcp::{TcpConfig, TcpExecutor};
use liqscan_nats::{Bridge, BridgeConfig, Venue};

/// Arguments of `liqscan bridge`.
#[derive(clap::Args)]
pub struct Args {
    /// NATS server URL(s), comma-separated.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// The venue whose orders to carry (stream liqscan_<venue>_orders).
    #[arg(long)]
    pub venue: String,
    /// The downstream: tcp:HOST:PORT (shared secret from LIQSCAN_DISPATCH_SECRET if set).
    #[arg(long)]
    pub executor: String,
    /// The record of answered orders (one id a line, fsynced before each acknowledgement).
    #[arg(long)]
    pub record: PathBuf,
    /// Durable consumer name (bridges with one name share the orders).
    #[arg(long, default_value = "bridge")]
    pub durable: String,
    /// Redelivery of an order not acknowledged this long after delivery (milliseconds).
    #[arg(long, default_value_t = 5_000)]
    pub ack_wait_ms: u64,
    /// Stop after this long (milliseconds); by default run until SIGTERM or SIGINT.
    #[arg(long)]
    pub for_ms: Option<u64>,
}

/// Runs the bridge until stopped; prints its counts at the end.
pub fn run(a: Args) -> Result<()> {
    crate::shutdown::install().context("installing signal handlers")?;
    let venue = Venue::new(&a.venue)?;
    let Some(addr) = a.executor.strip_prefix("tcp:") else {
        bail!("bridge --executor '{}': use tcp:HOST:PORT", a.executor);
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .with_context(|| format!("executor address '{addr}'"))?
        .next()
        .with_context(|| format!("executor address '{addr}' resolves to nothing"))?;
    let tcp = TcpConfig::new(addr).secret_from_env("LIQSCAN_DISPATCH_SECRET").map_err(anyhow::Error::msg)?;
    let cfg = BridgeConfig {
        durable: a.durable,
        ack_wait: Duration::from_millis(a.ack_wait_ms),
        record: Some(a.record.clone()),
        ..BridgeConfig::new(a.nats.clone(), venue.clone())
    };
    let bridge = Bridge::start(cfg, Box::new(TcpExecutor::start(tcp)))?;
    eprintln!(
        "bridge: {} ({}) -> tcp://{addr}, record {}",
        a.nats,
        venue.orders_stream(),
        a.record.display()
    );
    let end = a.for_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
    while !crate::shutdown::requested() && end.is_none_or(|e| Instant::now() < e) && !bridge.is_finished() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = bridge.last_error();
    let st = bridge.stop()?;
    eprintln!(
        "bridge: {} orders taken, {} handed over, {} answered ({} filled), {} lost and re-sent, {} already done, {} redelivered in flight, {} malformed refused{}",
        st.delivered,
        st.handed,
        st.answered,
        st.filled,
        st.lost,
        st.already_done,
        st.redelivered_in_flight,
        st.malformed,
        if err.is_empty() { String::new() } else { format!("; last error: {err}") }
    );
    Ok(())
}
