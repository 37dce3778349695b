//! An engine by the name `--backend` gives it: the software engine, or the emulated card served
//! in this process over a shared-memory link, behind a fail-over engine.
//!
//! ```text
//!   "software"       ──> SoftwareEngine
//!   "card-software"  ──> FailoverEngine( LinkEngine ──/dev/shm──> CardThread(SoftwareCard) )
//!   "card-hdl"       ──> FailoverEngine( LinkEngine ──/dev/shm──> CardThread(HdlCard) )
//!   "card-dram"      ──> FailoverEngine( DramCard )   (in process: no link)
//!   "routed"         ──> RouterEngine( rest: SoftwareEngine,
//!                                      card partition: FailoverEngine( LinkEngine ──> CardThread(SoftwareCard
//!                                      of the card's size) ) and its software mirror )
//!   "routed", --device lfe5u-85f-ddr3
//!                    ──> RouterEngine( the same, with a DramCard of the book's size as the card )
//! ```
//!
//! The DRAM card (`liqscan_host::engine::dram`) is the external-memory scan block's cycle model
//! with the DDR3 controller's simulated timing, paced to its 75 MHz clock. It is not behind the
//! link: the ring's term writes address 16-bit words of a lane, which a book in DRAM outgrows.
//!
//! The host side is the unchanged card driver a keeper uses with a real card, so anything that
//! takes an engine (`liqscan scan`, `liqscan sim`) replays through the card as through software;
//! a card that stops answering fails over to the software mirror with nothing lost.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use liqscan_hdl::abi::config::{CONFIG, LANES};
use liqscan_host::engine::dram::{DramCard, DramConfig};
use liqscan_host::engine::failover::FailoverEngine;
use liqscan_host::engine::router::{CardLimits, DEVICE_CLASSES, DeviceClass, Route, RouterEngine};
use liqscan_host::engine::{EngineError, ScanEngine, SoftwareEngine};
use liqscan_host::link::{CardLink, DEFAULT_EVT_ENTRIES, LinkEngine, LinkError, LinkMemory, LinkOptions};

use super::{CardEngine, CardThread, Idle, ServeOptions, SoftwareCard};

/// The names [`open_backend`] takes.
pub const BACKENDS: [&str; 5] = ["software", "card-software", "card-hdl", "card-dram", "routed"];

/// Why an engine could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A name not in [`BACKENDS`].
    #[error("unknown backend '{0}': use software, card-software, card-hdl, card-dram or routed")]
    Unknown(String),
    /// The emulated card cannot hold the book.
    #[error("backend {backend}: {detail}")]
    Card {
        /// The backend asked for.
        backend: String,
        /// Why.
        detail: String,
    },
    /// The link to the emulated card failed.
    #[error("backend {backend}")]
    Link {
        /// The backend asked for.
        backend: String,
        /// The link's error.
        #[source]
        source: LinkError,
    },
    /// The card engine refused the book's shape or did not answer.
    #[error("backend {backend}")]
    Engine {
        /// The backend asked for.
        backend: String,
        /// The engine's error.
        #[source]
        source: EngineError,
    },
}

/// How to run the emulated card.
#[derive(Clone, Debug, Default)]
pub struct BackendOptions {
    /// Card and host busy-poll without sleeping (each on a core of its own).
    pub spin: bool,
    /// Pin the card thread to this core.
    pub card_core: Option<usize>,
    /// The link's watchdog (default: 500 ms; 60 s for the rust-hdl card, which simulates the
    /// core cycle by cycle).
    pub watchdog: Option<Duration>,
    /// `routed`: where the card's partition of the book is computed (default: by cost).
    pub route: Route,
    /// `routed`: accounts the emulated card holds (default: this build's `CARD_ACCOUNTS`).
    pub card_accounts: Option<usize>,
    /// `routed`: the device class whose figures are the cost model's prior (default: the
    /// first of [`DEVICE_CLASSES`], the LFE5U-85F).
    pub device: Option<DeviceClass>,
}

/// The emulated card behind an opened engine: stops its thread and removes its link file when
/// dropped (after the engine, which it must outlive).
pub struct EmulatedCard {
    thread: Option<CardThread>,
    path: PathBuf,
    /// The card engine's name (`software` or `hdl`).
    pub engine: &'static str,
}

impl EmulatedCard {
    /// Core cycles the card simulated and the seconds that took ((0, 0) without a clock).
    pub fn stop(mut self) -> super::CardReport {
        self.thread.take().map(CardThread::stop).unwrap_or_default()
    }
}

impl Drop for EmulatedCard {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            t.stop();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Builds the card engine named `engine` (`software`, any book size; `hdl`, the rust-hdl
/// simulation of the core, 8192 accounts).
pub fn make_card_engine(engine: &str, accounts: usize, assets: usize) -> Result<Box<dyn CardEngine>, String> {
    Ok(match engine {
        "software" => Box::new(SoftwareCard::new(accounts, assets)),
        #[cfg(feature = "hdl")]
        "hdl" => Box::new(super::HdlCard::new(assets)?),
        #[cfg(not(feature = "hdl"))]
        "hdl" => return Err("this build has no HDL card (build liqscan-sim with the hdl feature)".into()),
        other => return Err(format!("unknown card engine '{other}': use software or hdl")),
    })
}

/// Opens the engine named `name` (one of [`BACKENDS`]) for `slots` accounts over `assets`
/// assets; a card comes with the [`EmulatedCard`] serving it, to keep until the engine is done.
pub fn open_backend(
    name: &str,
    slots: usize,
    assets: usize,
    opts: &BackendOptions,
) -> Result<(Box<dyn ScanEngine>, Option<EmulatedCard>), BackendError> {
    let dram = |slots| {
        DramCard::new(slots, assets, DramConfig::ddr3())
            .map_err(|detail| BackendError::Card { backend: name.to_string(), detail })
    };
    let card_engine = match name {
        "software" => return Ok((Box::new(SoftwareEngine::new(slots, assets)), None)),
        "card-dram" => return Ok((Box::new(FailoverEngine::new(Box::new(dram(slots)?))), None)),
        "routed" if opts.device.is_some_and(|d| d.name == "lfe5u-85f-ddr3") => {
            // A book in DRAM: the card holds every account it can, unless told fewer.
            let card_slots = opts.card_accounts.unwrap_or(slots).min(slots);
            let card = dram(card_slots)?;
            let cfg = DramConfig::ddr3();
            let limits = CardLimits { accounts: card_slots, term_slots: cfg.term_slots, lanes: LANES };
            let device = opts.device.unwrap_or(DEVICE_CLASSES[1]);
            let router = RouterEngine::new(Box::new(card), limits, device, slots, assets)
                .map_err(|source| BackendError::Engine { backend: name.to_string(), source })?
                .with_route(opts.route);
            return Ok((Box::new(router), None));
        }
        "card-software" => "software",
        "card-hdl" => "hdl",
        "routed" => "software",
        other => return Err(BackendError::Unknown(other.to_string())),
    };
    let routed = name == "routed";
    // The router's card is the size of a real card; the book's other accounts stay on software.
    let card_slots =
        if routed { slots.min(opts.card_accounts.unwrap_or(CONFIG.accounts as usize)) } else { slots };
    let backend = || name.to_string();
    let engine = make_card_engine(card_engine, card_slots, assets)
        .map_err(|detail| BackendError::Card { backend: backend(), detail })?;
    let engine_name = engine.name();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path =
        dir.join(format!("liqscan-{name}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let link_err = |source| BackendError::Link { backend: backend(), source };
    let mem = LinkMemory::shm_create(&path, DEFAULT_EVT_ENTRIES).map_err(link_err)?;
    let idle = if opts.spin { Idle::Spin } else { Idle::Backoff };
    let card = EmulatedCard {
        thread: Some(CardThread::spawn(
            mem,
            engine,
            ServeOptions { idle, ..Default::default() },
            opts.card_core,
        )),
        path,
        engine: engine_name,
    };
    let watchdog =
        opts.watchdog.unwrap_or(Duration::from_millis(if card_engine == "hdl" { 60_000 } else { 500 }));
    let mem = LinkMemory::shm_open(&card.path).map_err(link_err)?;
    let link =
        CardLink::open(mem, LinkOptions { timeout: watchdog, backoff: !opts.spin, ..Default::default() })
            .map_err(link_err)?;
    let limits = CardLimits::of(&link.config());
    let engine = LinkEngine::new(link, card_slots, assets)
        .map_err(|source| BackendError::Engine { backend: backend(), source })?;
    if routed {
        let device = opts.device.unwrap_or(DEVICE_CLASSES[0]);
        let router = RouterEngine::new(Box::new(engine), limits, device, slots, assets)
            .map_err(|source| BackendError::Engine { backend: backend(), source })?
            .with_route(opts.route);
        return Ok((Box::new(router), Some(card)));
    }
    Ok((Box::new(FailoverEngine::new(Box::new(engine))), Some(card)))
}
