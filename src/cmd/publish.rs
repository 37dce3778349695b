//! `liqscan publish`: a venue's ticks and account deltas onto its JetStream input stream, for
//! keepers that read it with `liqscan run --nats` (docs/OPERATOR.md, "Inputs on a stream").
//!
//! It takes the book and ticks `liqscan run` takes (venue, accounts and tick files, or the
//! embedded demo), as the same messages a keeper would replay (each account an upsert, then
//! the ticks by time), at the same `--pace`, one feed frame a message (docs/WIRE_FORMAT.md),
//! signed with `LIQSCAN_FEED_SECRET` if it is set. Each frame is stored before the next is
//! sent, so the stream holds them in order.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use liqscan_host::feed::replay;
use liqscan_host::keeper::{KeeperConfig, Workload};
use liqscan_host::pipeline::Clock;
use liqscan_nats::{InputPublisher, Venue};

/// Arguments of `liqscan publish`.
#[derive(clap::Args)]
pub struct Args {
    /// TOML config file (`liqscan run`'s: venue, accounts, ticks, demo_accounts, pace, nats,
    /// nats_venue are read).
    #[arg(long, env = "LIQSCAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "LIQSCAN_NATS")]
    pub nats: Option<String>,
    /// The venue name on NATS (stream liqscan_<venue>_inputs).
    #[arg(long, env = "LIQSCAN_NATS_VENUE")]
    pub nats_venue: Option<String>,
    /// Venue file; without it, the embedded demo venue, book and crash.
    #[arg(long)]
    pub venue: Option<PathBuf>,
    /// Accounts file.
    #[arg(long)]
    pub accounts: Option<PathBuf>,
    /// Tick files (.csv/.jsonl).
    #[arg(long)]
    pub ticks: Vec<PathBuf>,
    /// OHLC bars as SYMBOL=PATH.
    #[arg(long)]
    pub bars: Vec<String>,
    /// Accounts in the embedded demo book.
    #[arg(long)]
    pub demo_accounts: Option<usize>,
    /// flood | recorded:SPEED | fixed:PER_SECOND.
    #[arg(long)]
    pub pace: Option<String>,
}

/// Publishes the workload; SIGTERM or SIGINT stops it between two frames.
pub fn run(a: Args) -> Result<()> {
    crate::shutdown::install().context("installing the SIGTERM/SIGINT handlers")?;
    let cfg = KeeperConfig {
        venue: a.venue,
        accounts: a.accounts,
        ticks: a.ticks,
        bars: a.bars,
        demo_accounts: a.demo_accounts,
        pace: a.pace,
        nats: a.nats,
        nats_venue: a.nats_venue,
        ..KeeperConfig::default()
    }
    .merged(a.config.as_deref())?;
    let Some(url) = cfg.nats.clone() else { bail!("publish: give the server with --nats URL") };
    let Some(name) = cfg.nats_venue.as_deref() else {
        bail!("publish: give the venue with --nats-venue NAME")
    };
    let venue = Venue::new(name)?;
    let pace = cfg.pace()?;
    let w = Workload::load(&KeeperConfig { nats: None, ..cfg })?;
    let key = liqscan_nats::inputs::feed_key().map_err(anyhow::Error::msg)?;
    let signed = key.is_some();
    let mut p = InputPublisher::connect(&url, venue.clone(), key, Duration::from_secs(5))
        .map_err(anyhow::Error::msg)?;
    let clock = Clock::default();
    let t = std::time::Instant::now();
    let mut last = 0;
    let sent = replay::replay_until(w.msgs.iter(), pace, &clock, 0, crate::shutdown::flag(), |ts, m| {
        last = p.publish(&m.msg, ts.max(0) as u64)?;
        Ok::<(), String>(())
    })
    .map_err(anyhow::Error::msg)?;
    eprintln!(
        "publish: {sent} of {} frames to {url} ({}{}) in {:.2} s; last stream sequence {last}",
        w.msgs.len(),
        venue.inputs_stream(),
        if signed { ", signed" } else { "" },
        t.elapsed().as_secs_f64()
    );
    if let Some(sig) = crate::shutdown::signal_name() {
        eprintln!("{sig}: stopped after {sent} frames");
    }
    Ok(())
}
