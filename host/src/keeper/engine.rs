//! Building the scan backend of a keeper: the software engine, or the card behind its link
//! (an in-process emulated card, a `liqscan card` process over /dev/shm, a PCIe card), with
//! fail-over to the software engine when the card does not answer at start-up.
//!
//! [`build_backend`] is the one place a keeper chooses and opens its engine.

use std::path::PathBuf;
use std::time::Duration;

use super::config::KeeperConfig;
use super::{KeeperError, Notes};
use crate::engine::EngineError;
use crate::engine::failover::FailoverEngine;
use crate::engine::router::{CardLimits, DEVICE_CLASSES, RouterEngine};
use crate::engine::{Relabelled, SoftwareEngine};
use crate::link::{BAR_BYTES, CardLink, DEFAULT_EVT_ENTRIES, LinkEngine, LinkError, LinkMemory, LinkOptions};
use crate::metrics::Counters;
use crate::pipeline::Backend;

/// What an in-process emulated card did, for the report.
#[derive(Clone, Debug, Default)]
pub struct CardSummary {
    /// Commands executed.
    pub commands: u64,
    /// Scans.
    pub scans: u64,
    /// Events written.
    pub events: u64,
    /// Core cycles simulated (the rust-hdl card; 0 for the software card).
    pub cycles: u64,
    /// Seconds spent simulating them.
    pub sim_seconds: f64,
}

/// An emulated card serving a link in this process (the `card-software` and `card-hdl`
/// backends). The simulator crate has the emulation, and it depends on this one: the program
/// that embeds the keeper hands one in ([`super::KeeperBuilder::card_host`]).
pub trait CardHost {
    /// Starts a card with `engine` ("software" or "hdl") for `slots` accounts and `assets`
    /// assets serving `mem`; `spin`: busy-poll; `core`: pin its thread.
    fn spawn(
        &self,
        engine: &str,
        mem: LinkMemory,
        slots: usize,
        assets: usize,
        spin: bool,
        core: Option<usize>,
    ) -> Result<Box<dyn RunningCard>, KeeperError>;
}

/// A running in-process card.
pub trait RunningCard: Send {
    /// Its engine's name.
    fn name(&self) -> &'static str;
    /// Stops serving and says what it did.
    fn stop(self: Box<Self>) -> CardSummary;
}

/// What a card backend leaves to tear down after the run, and its start-up fail-over.
#[derive(Default)]
pub struct CardLease {
    /// The in-process card serving the link, if any.
    pub card: Option<Box<dyn RunningCard>>,
    /// The link file this keeper created (removed after the run).
    pub shm_file: Option<PathBuf>,
    /// A fail-over before the first message: (why, nanoseconds the card was waited for).
    pub startup_failover: Option<(String, u64)>,
}

/// Builds the backend `cfg` names for a book of `slots` accounts over `assets` assets; `cards`
/// runs the emulated card of the card-software and card-hdl backends.
pub fn build_backend(
    cfg: &KeeperConfig,
    slots: usize,
    assets: usize,
    cards: Option<&dyn CardHost>,
    counters: &Counters,
    notes: &Notes,
) -> Result<(Backend, CardLease), KeeperError> {
    let (watchdog, spin) = (cfg.watchdog(), cfg.spins());
    let mut built = CardLease::default();
    let routed = cfg.backend_name() == "routed";
    // The router's emulated card is the size of this build's card; the rest stays on software.
    let card_slots = if routed { slots.min(liqscan_hdl::abi::CONFIG.accounts as usize) } else { slots };
    let mem = match cfg.backend_name() {
        "software" => return Ok((Box::new(SoftwareEngine::new(slots, assets)), built)),
        "pcie" => {
            let p = cfg.pcie.as_ref().ok_or_else(|| {
                KeeperError::Config(
                    "backend pcie needs a [pcie] section in the config (bar, dma, dma_len, dma_bus_addr)"
                        .into(),
                )
            })?;
            let mem = LinkMemory::pcie(
                &p.bar,
                p.bar_len.or(Some(BAR_BYTES)),
                &p.dma,
                p.dma_len,
                p.dma_bus_addr,
                false,
            )?;
            let open = || {
                let link = open_link(mem, watchdog, spin)?;
                link.scratch_test()?;
                Ok(LinkEngine::new(link, slots, assets)?)
            };
            let backend =
                card_or_failover(open, slots, assets, counters, &mut built.startup_failover, notes)?;
            return Ok((backend, built));
        }
        "shm" => {
            let p = cfg.shm.as_ref().ok_or_else(|| {
                KeeperError::Config("backend shm needs --shm PATH of a running `liqscan card`".into())
            })?;
            LinkMemory::shm_open(p)?
        }
        b @ ("card-software" | "card-hdl" | "card-verilog" | "routed") => {
            let cards = cards.ok_or_else(|| {
                KeeperError::Config(format!(
                    "backend {b} needs an in-process card host (KeeperBuilder::card_host)"
                ))
            })?;
            let p = PathBuf::from(format!("/dev/shm/liqscan-run-{}", std::process::id()));
            let engine = match b {
                "card-hdl" => "hdl",
                "card-verilog" => "verilog",
                _ => "software",
            };
            let mem = LinkMemory::shm_create(&p, DEFAULT_EVT_ENTRIES)?;
            let card =
                cards.spawn(engine, mem, card_slots, assets, spin, cfg.card_core).inspect_err(|_| {
                    let _ = std::fs::remove_file(&p);
                })?;
            built.card = Some(card);
            built.shm_file = Some(p.clone());
            LinkMemory::shm_open(&p)?
        }
        other => {
            return Err(KeeperError::Config(format!(
                "unknown backend '{other}': software, card-software, card-hdl, card-verilog, routed, shm or pcie"
            )));
        }
    };
    if routed {
        let router = || -> Result<Backend, KeeperError> {
            let link = open_link(mem, watchdog, spin)?;
            let limits = CardLimits::of(&link.config());
            let card = LinkEngine::new(link, card_slots, assets)?;
            Ok(Box::new(RouterEngine::new(Box::new(card), limits, DEVICE_CLASSES[0], slots, assets)?))
        };
        return match router() {
            Ok(backend) => Ok((backend, built)),
            Err(e) => {
                built.teardown();
                Err(e)
            }
        };
    }
    let open = || Ok(LinkEngine::new(open_link(mem, watchdog, spin)?, slots, assets)?);
    match card_or_failover(open, slots, assets, counters, &mut built.startup_failover, notes) {
        Ok(backend) => Ok((backend, built)),
        Err(e) => {
            built.teardown();
            Err(e)
        }
    }
}

impl CardLease {
    /// Stops the in-process card and removes the link file this keeper created.
    pub fn teardown(&mut self) -> Option<CardSummary> {
        let summary = self.card.take().map(|c| c.stop());
        if let Some(p) = self.shm_file.take() {
            let _ = std::fs::remove_file(p);
        }
        summary
    }
}

/// Opens a card link with the keeper's watchdog; `spin`: never sleep while waiting for the card.
fn open_link(mem: LinkMemory, watchdog_ms: u64, spin: bool) -> Result<CardLink, LinkError> {
    CardLink::open(
        mem,
        LinkOptions { timeout: Duration::from_millis(watchdog_ms), backoff: !spin, ..Default::default() },
    )
}

/// Opens the card engine; if the card is there but does not answer in time (the first
/// fence's watchdog), runs on the software engine instead, as a stall during the run would,
/// and says so in `startup`. Any other error (no card at the path, a wrong version, a book
/// too large for the card) stops the keeper: those are configuration, not a stalled card.
fn card_or_failover(
    open: impl FnOnce() -> Result<LinkEngine, KeeperError>,
    slots: usize,
    assets: usize,
    counters: &Counters,
    startup: &mut Option<(String, u64)>,
    notes: &Notes,
) -> Result<Backend, KeeperError> {
    let t0 = std::time::Instant::now();
    match open() {
        Ok(engine) => Ok(Box::new(FailoverEngine::new(Box::new(engine)))),
        Err(e) if is_stall(&e) => {
            let e = super::chain(&e);
            notes(&format!(
                "FAIL-OVER: the card did not answer at start-up ({e}); running on the software engine"
            ));
            Counters::inc(&counters.failovers);
            *startup = Some((format!("start-up: {e}"), t0.elapsed().as_nanos() as u64));
            Ok(Box::new(SoftwareEngine::new(slots, assets)))
        }
        Err(e) => Err(e),
    }
}

/// A card that stopped answering (the link's watchdog), as opposed to a wrong configuration.
fn is_stall(e: &KeeperError) -> bool {
    let timeout = |l: &LinkError| matches!(l, LinkError::Timeout { .. });
    match e {
        KeeperError::Link(l) => timeout(l),
        KeeperError::Card(EngineError::Card(l)) => timeout(l),
        _ => false,
    }
}

/// A software engine holding the book at the front of `msgs` (its leading upserts), loaded
/// in one bulk load: every index sorted and built once, the full-scan arenas packed, where
/// the same upserts sent one by one through the feed queue took most of a 1 M-account
/// keeper's start. Inside, the accounts sit as `liqscan scan` lays its book out (those a full
/// scan reads first, [`Relabelled`]); outside, every slot is the book file's, as the feeds,
/// journals and orders name it. Returns the engine and how many messages it took (0, with
/// the engine empty, when the book has no upsert or one that the engine refuses: the replay
/// then sends them as before, and the refusal is counted and reported as for any message).
pub fn preloaded_software(
    msgs: &crate::feed::recorded::Recorded,
    slots: usize,
    assets: usize,
) -> (Backend, usize) {
    let n = msgs.leading_upserts();
    let book = (0..n).map(|i| msgs.upsert(i).expect("a leading upsert"));
    if n > 0
        && let Ok(mut engine) = Relabelled::load_in_scan_order(SoftwareEngine::new(slots, assets), book)
    {
        crate::engine::ScanEngine::loaded(&mut engine);
        return (Box::new(engine), n);
    }
    // `load` changes nothing when it refuses an entry.
    (Box::new(SoftwareEngine::new(slots, assets)), 0)
}
