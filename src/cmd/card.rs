//! `liqscan card`: the emulated card as its own process, serving a shared-memory link.
//!
//! It takes the link file (header, BAR image, event ring) under an exclusive lock, refusing a
//! file another card holds and reusing one a stopped card left behind, identifies itself in
//! `ID_TYPE`, and serves commands until it is killed (the kernel then drops the lock) or stopped by SIGTERM or
//! SIGINT (it then removes the file). `liqscan run --backend shm --shm PATH` (or any host
//! code opening [`LinkMemory::shm_open`]) drives it exactly as it drives a real card.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use liqscan_host::link::{DEFAULT_EVT_ENTRIES, LinkMemory, Previous};
use liqscan_sim::card::{CardEngine, Fault, Idle, ServeOptions, VerilatedCard, serve, serve_verilated};

/// Arguments of `liqscan card`.
#[derive(clap::Args)]
pub struct Args {
    /// Link file to take (normally under /dev/shm): created if missing; refused if another card
    /// holds it; reused if the card that made it has stopped.
    #[arg(long, default_value = "/dev/shm/liqscan-card")]
    pub shm: PathBuf,
    /// Engine: `software` (any book size), `hdl` (the rust-hdl simulation of the core; at
    /// most 8192 accounts) or `verilog` (the whole card's generated Verilog, front end and
    /// core, under Verilator; at most 8192 accounts; needs verilator, scripts/setup-tools.sh).
    #[arg(long, default_value = "software")]
    pub engine: String,
    /// Accounts the card holds (software engine; the HDL card always holds 8192).
    #[arg(long, default_value_t = 2048)]
    pub accounts: usize,
    /// Assets in the price table.
    #[arg(long, default_value_t = 256)]
    pub assets: usize,
    /// Event ring entries (a power of two).
    #[arg(long, default_value_t = DEFAULT_EVT_ENTRIES)]
    pub evt_entries: usize,
    /// Pin the card to this core.
    #[arg(long)]
    pub core: Option<usize>,
    /// Busy-poll without ever sleeping (give the card a core of its own).
    #[arg(long)]
    pub spin: bool,
    /// Fault injection: stop answering after this many commands (fail-over drills).
    #[arg(long)]
    pub silent_after: Option<u64>,
}

/// Builds the card engine named `engine` (`software` or `hdl`).
pub fn make_engine(engine: &str, accounts: usize, assets: usize) -> Result<Box<dyn CardEngine>> {
    liqscan_sim::card::make_card_engine(engine, accounts, assets).map_err(anyhow::Error::msg)
}

/// What serves the link: an engine behind the Rust ring engine, or the RTL's own front end.
enum Card {
    Engine(Box<dyn CardEngine>),
    Verilated(Box<VerilatedCard>),
}

/// The Verilated card serving `mem`'s DMA, built or found in the cache, saying which.
pub fn verilated_card(mem: &LinkMemory) -> Result<VerilatedCard> {
    eprintln!(
        "Verilated card: generating the card's Verilog and looking for its model (a first build takes a minute)"
    );
    let t = std::time::Instant::now();
    let (card, built) = VerilatedCard::new(mem)?;
    eprintln!(
        "Verilated card: {} {} ({:.1} s)",
        if built.fresh { "built" } else { "cached" },
        built.library.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(card)
}

/// Runs the card until killed, or until SIGTERM or SIGINT (crate::shutdown): then it stops
/// serving, removes its link file (a keeper still attached sees a silent card and fails over)
/// and exits 0.
pub fn run(a: Args) -> Result<()> {
    crate::shutdown::install().context("installing the SIGTERM/SIGINT handlers")?;
    let verilog = a.engine == "verilog";
    let engine = if verilog { None } else { Some(make_engine(&a.engine, a.accounts, a.assets)?) };
    let (mem, previous) = LinkMemory::shm_take(&a.shm, a.evt_entries)?;
    let mut card = match engine {
        Some(e) => Card::Engine(e),
        None => Card::Verilated(Box::new(verilated_card(&mem)?)),
    };
    if let Previous::Stale(last) = previous {
        eprintln!(
            "reusing stale link file {} (its last card, {last}, has stopped; its lock was free)",
            a.shm.display()
        );
    }
    let generation = mem.shm_file().map_or(0, |f| f.generation());
    if let Some(c) = a.core {
        liqscan_host::pipeline::pin("emulated card", c);
    }
    let what = match &card {
        Card::Engine(e) => format!("{} engine, {} accounts, {} assets", e.name(), e.accounts(), e.assets()),
        Card::Verilated(_) => "Verilated RTL: front end and core".to_string(),
    };
    eprintln!(
        "emulated card ({what}) serving {} (pid {}, generation {generation})",
        a.shm.display(),
        std::process::id()
    );
    let opts = ServeOptions {
        stop: Arc::new(AtomicBool::new(false)),
        idle: if a.spin { Idle::Spin } else { Idle::Backoff },
        fault: a.silent_after.map_or(Fault::None, Fault::SilentAfter),
    };
    // The serve loop looks at its own flag; a watcher thread raises it on a stop signal, after
    // removing the link file while the serving card still holds its lock (so the file it
    // removes is its own, not one a next card has taken).
    let stop = opts.stop.clone();
    let path = a.shm.clone();
    std::thread::Builder::new().name("card-signals".into()).spawn(move || {
        while !crate::shutdown::requested() && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(sig) = crate::shutdown::signal_name() {
            match std::fs::remove_file(&path) {
                Ok(()) => eprintln!("{sig}: removed link file {}", path.display()),
                Err(e) => eprintln!("{sig}: could not remove link file {}: {e}", path.display()),
            }
        }
        stop.store(true, Ordering::Relaxed);
    })?;
    let rep = match &mut card {
        Card::Engine(e) => serve(mem, e.as_mut(), &opts),
        Card::Verilated(c) => serve_verilated(mem, c, &opts),
    };
    opts.stop.store(true, Ordering::Relaxed);
    eprintln!("emulated card stopped: {rep:?}");
    Ok(())
}

/// The emulated card in this process: the keeper's `card-software` and `card-hdl` backends
/// (`liqscan run`, `liqscan bench-link`).
pub struct InProcess;

impl liqscan_host::keeper::CardHost for InProcess {
    fn spawn(
        &self,
        engine: &str,
        mem: LinkMemory,
        slots: usize,
        assets: usize,
        spin: bool,
        core: Option<usize>,
    ) -> Result<Box<dyn liqscan_host::keeper::RunningCard>, liqscan_host::keeper::KeeperError> {
        let config = |e: anyhow::Error| liqscan_host::keeper::KeeperError::Config(format!("{e:#}"));
        let idle = if spin { Idle::Spin } else { Idle::Backoff };
        let opts = ServeOptions { idle, ..Default::default() };
        if engine == "verilog" {
            // The RTL's own front end serves the link: no ring engine in Rust.
            let card = verilated_card(&mem).map_err(config)?;
            let t = liqscan_sim::card::CardThread::spawn_verilated(mem, card, opts, core);
            return Ok(Box::new(Running(t, "verilog")));
        }
        let e = make_engine(engine, slots, assets).map_err(config)?;
        let name = e.name();
        let t = liqscan_sim::card::CardThread::spawn(mem, e, opts, core);
        Ok(Box::new(Running(t, name)))
    }
}

/// An in-process card serving.
struct Running(liqscan_sim::card::CardThread, &'static str);

impl liqscan_host::keeper::RunningCard for Running {
    fn name(&self) -> &'static str {
        self.1
    }

    fn stop(self: Box<Self>) -> liqscan_host::keeper::CardSummary {
        let c = self.0.stop();
        liqscan_host::keeper::CardSummary {
            commands: c.commands,
            scans: c.scans,
            events: c.events,
            cycles: c.cycles,
            sim_seconds: c.sim_seconds,
        }
    }
}
