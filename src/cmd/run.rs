//! `liqscan run`: the keeper's main command. A book and a tick stream go through the pinned
//! pipeline on the chosen backend; breaches come out, with per-stage latency.
//!
//! Backends: `software` (the software engine on the engine thread), `card-software` and
//! `card-hdl` (an emulated card on a thread of this process, serving a /dev/shm link with the
//! software engine or the rust-hdl simulation of the core), `shm` (a `liqscan card` process
//! already serving `--shm PATH`), `pcie` (a real card: BAR and DMA buffer files in the config).
//! All but `software` go through the same card link code, with fail-over to the software
//! engine.
//!
//! The keeper itself is `liqscan_host::keeper`; this command parses its options and prints
//! its report.

use std::path::PathBuf;

use anyhow::{Context, Result};
use liqscan_host::dispatch::{Executor, JsonlSink};
use std::fmt::Write;

use liqscan_host::keeper::{Keeper, KeeperConfig, KeeperHandle, KeeperReport, VenueConfig, Workload, digest};
use liqscan_host::metrics::percentile_table;
use liqscan_nats::{CandidatePublisher, CandidateTap, Venue};

/// Arguments of `liqscan run`: the keeper's configuration (each flag, or its `LIQSCAN_`
/// environment variable, overrides the same key of `--config`).
#[derive(clap::Args, Default)]
pub struct Args {
    /// TOML config file (keys as the long options, with underscores; `[feed]`, `[dispatch]`,
    /// `[pcie]` sections).
    #[arg(long, env = "LIQSCAN_CONFIG")]
    pub config: Option<PathBuf>,
    /// The keeper's options.
    #[command(flatten)]
    pub keeper: KeeperConfig,
}

/// Runs `liqscan run`. SIGTERM or SIGINT stops it cleanly (crate::shutdown): intake ends,
/// dispatch drains, the journal is flushed, the report printed, and the exit status is 0.
/// A config file with `[[venues]]` tables runs one keeper per venue (keeper::deploy).
pub fn run(a: Args) -> Result<()> {
    crate::shutdown::install().context("installing the SIGTERM/SIGINT handlers")?;
    if let Some(path) = &a.config
        && let Some(venues) = liqscan_host::keeper::deploy::venues_in(path, &a.keeper)?
    {
        return run_venues(venues);
    }
    let cfg = a.keeper.merged(a.config.as_deref())?;
    let (keeper, candidates) = start(cfg.clone(), |s| eprintln!("{s}"))?;
    finish(&cfg, keeper, candidates, "")
}

/// One keeper per venue, each started on its own thread (so each venue's `feed_core` pins
/// only its own feed threads), all stopped by the one SIGTERM; each prints its own report,
/// its lines prefixed with the venue's name. A venue that fails to start stops the others.
fn run_venues(venues: Vec<VenueConfig>) -> Result<()> {
    let names: Vec<String> = venues.iter().map(|v| v.name.clone()).collect();
    eprintln!("{} venues: {}", names.len(), names.join(", "));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let threads: Vec<_> = venues
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let started = started_tx.clone();
            std::thread::Builder::new().name(format!("venue-{}", v.name)).spawn(move || -> Result<()> {
                let tag = format!("[{}] ", v.name);
                let notes_tag = tag.clone();
                let (keeper, candidates) = match start(v.config.clone(), move |s| eprintln!("{notes_tag}{s}"))
                {
                    Ok(k) => {
                        let _ = started.send((i, None));
                        k
                    }
                    Err(e) => {
                        let _ = started.send((i, Some(format!("{e:#}"))));
                        return Ok(());
                    }
                };
                finish(&v.config, keeper, candidates, &tag)
            })
        })
        .collect::<std::io::Result<_>>()
        .context("spawning the venue threads")?;
    drop(started_tx);
    let mut failed = None;
    for (i, e) in started_rx.iter() {
        if let (Some(e), None) = (e, &failed) {
            // The others drain and report as on SIGTERM; the process then fails.
            crate::shutdown::flag().store(true, std::sync::atomic::Ordering::Relaxed);
            failed = Some(anyhow::anyhow!("venue {}: {e}", names[i]));
        }
    }
    let mut errors = vec![];
    for (t, name) in threads.into_iter().zip(&names) {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(format!("venue {name}: {e:#}")),
            Err(_) => errors.push(format!("venue {name}: its thread panicked")),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("; "));
    }
    Ok(())
}

/// Starts the keeper of `cfg` with its NATS parts (executor, inputs, candidates publisher).
fn start(
    cfg: KeeperConfig,
    notes: impl Fn(&str) + Send + Sync + 'static,
) -> Result<(KeeperHandle, Option<CandidatePublisher>)> {
    let nats = nats_executor(cfg.executor.as_deref())?;
    let mut builder = Keeper::builder();
    if let Some(make) = nats {
        builder = builder.executor_with(make);
    }
    if let Some(url) = &cfg.nats {
        let Some(name) = cfg.nats_venue.as_deref() else {
            anyhow::bail!("--nats {url}: name the venue's stream with --nats-venue NAME");
        };
        let venue = Venue::new(name).map_err(|e| anyhow::anyhow!("--nats-venue: {e}"))?;
        builder = builder.inputs_with(liqscan_nats::inputs::source(url.clone(), venue));
    }
    let mut candidates = None;
    if let Some(spec) = cfg.candidates.as_deref() {
        // The publisher names accounts by slot (the keeper's account key): load the book now.
        // With --nats the stream brings the ticks: tick files are not read (the keeper says so).
        let w = if cfg.nats.is_some() {
            Workload::load(&KeeperConfig { ticks: vec![], bars: vec![], ..cfg.clone() })?
        } else {
            Workload::load(&cfg)?
        };
        let (publisher, tap) = candidates_publisher(spec, w.ids.len())?;
        builder = builder.workload(w).sink_with(Box::new(tap));
        candidates = Some(publisher);
    }
    let keeper = builder
        .config(cfg)
        .card_host(crate::cmd::card::InProcess)
        .notes(notes)
        .stop_on(crate::shutdown::flag(), crate::shutdown::signal_name)
        .start()?;
    Ok((keeper, candidates))
}

/// Waits for the keeper of `cfg` to end and prints its report in one piece (each line after
/// `tag`, so that venues' reports do not interleave), then saves its histograms.
fn finish(
    cfg: &KeeperConfig,
    keeper: KeeperHandle,
    candidates: Option<CandidatePublisher>,
    tag: &str,
) -> Result<()> {
    let r = keeper.finish()?;
    let mut out = report_text(cfg.backend_name(), &r);
    if let Some(p) = candidates {
        let s = p.finish();
        let _ = writeln!(
            out,
            "candidates: {} published, {} dropped (queue full), {} failed",
            s.published, s.dropped, s.failed
        );
    }
    // `--out` was written as the scans happened (journal/events.rs).
    if let Some(sig) = r.stopped_by {
        let _ = writeln!(out, "{sig}: stopped cleanly");
    }
    eprint!("{}", out.lines().map(|l| format!("{tag}{l}\n")).collect::<String>());
    if let Some(p) = &cfg.hlog {
        r.report.hist.save_hlog(p).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// `--executor nats:VENUE@URL`: the venue's JetStream order stream (liqscan-nats), checked
/// now, made on the dispatch thread; an executor that cannot start discards the orders, as the
/// library's do.
fn nats_executor(spec: Option<&str>) -> Result<Option<impl FnOnce() -> Box<dyn Executor> + Send + 'static>> {
    let Some(v) = spec.and_then(|s| s.strip_prefix("nats:")) else { return Ok(None) };
    liqscan_nats::executor::parse_spec(v).map_err(anyhow::Error::msg)?;
    let v = v.to_string();
    Ok(Some(move || {
        liqscan_nats::executor::from_spec(&v).unwrap_or_else(|e| {
            eprintln!("executor: {e}; orders are discarded");
            Box::new(JsonlSink::new("discard", std::io::sink())) as Box<dyn Executor>
        })
    }))
}

/// `--candidates nats:VENUE@URL`: the publisher of the venue's candidates and the tap the
/// engine thread feeds (a bounded queue; a full queue drops and counts).
fn candidates_publisher(spec: &str, slots: usize) -> Result<(CandidatePublisher, CandidateTap)> {
    let bad =
        || anyhow::anyhow!("candidates '{spec}': use nats:VENUE@URL (e.g. nats:demo@nats://127.0.0.1:4222)");
    let (venue, url) = spec.strip_prefix("nats:").and_then(|v| v.split_once('@')).ok_or_else(bad)?;
    let venue = Venue::new(venue).map_err(|e| anyhow::anyhow!("candidates '{spec}': {e}"))?;
    if url.is_empty() {
        return Err(bad());
    }
    let accounts = (0..slots as u64).collect();
    CandidatePublisher::start(url, venue, &liqscan_nats::executor::keeper_name(), accounts, 1 << 16)
        .with_context(|| format!("candidates '{spec}'"))
}

/// A keeper's report, as lines of text.
fn report_text(backend: &str, r: &KeeperReport) -> String {
    let mut o = String::new();
    let rep = &r.report;
    let breaches = r.breaches();
    let _ = writeln!(
        o,
        "backend {backend}{} -> {} at the end; {} messages ({} refused) in {:.2} s; {} breach events, {} recoveries; \
         {} fail-overs; digest {:016x}",
        r.card.map(|c| format!(" ({c} card)")).unwrap_or_default(),
        rep.backend,
        rep.messages,
        rep.refused,
        r.seconds,
        breaches,
        r.changes.len() - breaches,
        rep.failovers.len(),
        digest(&r.changes)
    );
    let ticks = rep.hist.engine.len();
    let _ = writeln!(
        o,
        "{ticks} ticks in {:.2} s: {:.0} ticks/s (book load included)",
        r.seconds,
        ticks as f64 / r.seconds
    );
    if let Some(c) = &r.card_report {
        let _ = writeln!(
            o,
            "card: {} commands, {} scans, {} events; {} core cycles simulated in {:.2} s ({:.0} cycles/s)",
            c.commands,
            c.scans,
            c.events,
            c.cycles,
            c.sim_seconds,
            c.cycles as f64 / c.sim_seconds.max(1e-9)
        );
    }
    for f in &rep.failovers {
        let _ = writeln!(o, "  fail-over: {f}");
    }
    if let Some(e) = &rep.last_refusal {
        let _ = writeln!(o, "  last refusal: {e}");
    }
    let _ = write!(o, "{}", rep.hist.table());
    if let Some(d) = &r.dispatch {
        let _ = write!(
            o,
            "{}",
            percentile_table(&[("feed_to_order", &d.feed_to_order)])
                .lines()
                .nth(1)
                .map(|l| format!("{l}\n"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "dispatch ({}): {} scan batches, {} orders built, {} sends ({} later: retries or waits), {} refused by the executor, {} unsizable, {} backed off, {} orders pre-built and sent, {} dropped, {} at-risk accounts not pre-built (over a scan's budget)",
            d.executor,
            d.batches,
            d.stats.orders,
            d.stats.sends,
            d.later_sends,
            d.stats.submit_errors,
            d.stats.unsizable,
            d.stats.backoff_skips,
            d.stats.prebuilt_used,
            d.stats.prebuilt_dropped,
            d.stats.prebuild_skipped
        );
    }
    o
}
