//! # The card emulated from its own Verilog
//!
//! [`VerilatedCard`] is the whole card (`liqscan_hdl::front::card::Card`: front end and scan
//! core), from the Verilog synthesis reads, compiled by Verilator ([`model`]) and clocked by
//! hand from Rust. [`serve_verilated`] stands where the PCIe block stands: it serves the card's
//! DMA master from the shared-memory link file the host maps, and turns the host's register
//! stores into BAR writes, so the unchanged host driver (`liqscan_host::link`) talks to the RTL.
//!
//! ```text
//!   host (CardLink)               link file                  this shell            RTL (Verilator)
//!   post ──stores──> BAR image: cmd ring window  <──AR/R (bus CMD_WINDOW_BUS_ADDR)── CmdReader
//!        ──release─> CMD_DOORBELL, EVT_CONSUMER,  ──polled, sent as BAR writes──>  BarRegs
//!                    CONTROL, ring registers
//!   poll <─acquire── event ring (EVT_RING_ADDR)   <──AW/W/B, head word release───── EvtWriter
//! ```
//!
//! The shell does what a board's PCIe block and shell do, nothing of the card's protocol:
//! - the command ring window is block RAM in the BAR on a real board; here the card reads it
//!   by DMA at [`CMD_WINDOW_BUS_ADDR`], which the shell programs into `CMD_RING_ADDR_*` (a
//!   host driver that keeps its command ring in host memory would program it itself);
//! - a host store to `CMD_DOORBELL`, `EVT_CONSUMER` or `CONTROL` becomes a BAR write, in that
//!   register's latest value (stores between two looks coalesce, as posted writes may); the
//!   ring registers are sent with `CONTROL.SOFT_RESET`, and `CONTROL` is cleared once the card
//!   took the reset (what `serve.rs` does);
//! - a doorbell behind the card's consumer index or more than a ring ahead (a new host
//!   quiescing) is not sent, as `serve.rs` ignores it;
//! - the identity and configuration registers are read from the RTL once and written into the
//!   BAR image (`ID_TYPE` last); statistics and errors are copied there whenever the card
//!   goes quiet.
//!
//! The DMA memory answers in one cycle and never stalls: the figures are the RTL's own cycle
//! counts, with no PCIe latency added. The clock stops after [`QUIET_CYCLES`] cycles without
//! any sign of work (no DMA, no BAR access, nothing new from the host) and starts again at the
//! next host store; a full scan of the card's 8192 accounts is far shorter.

pub mod model;
pub mod share;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use liqscan_hdl::abi::regs::{CMD_RING_WINDOW, CONTROL_SOFT_RESET, TYPE_LIQSCAN, offset};
use liqscan_hdl::abi::ring::RING_ENTRY_BYTES;
use liqscan_host::link::Region;
use liqscan_host::link::{CMD_RING_MAX_ENTRIES, LinkMemory};

pub use model::{Built, Model, VcardIn, VcardOut, VerilatedError};

use super::{CardReport, Fault, Idle, ServeOptions};

/// Bus address at which the card's DMA reads the BAR's command ring window.
pub const CMD_WINDOW_BUS_ADDR: u64 = 1 << 48;
/// Cycles without any sign of work after which the clock stops (a full scan of 8192 accounts
/// of 4 terms on 16 lanes walks 512 groups of 4 words, about 2,100 cycles).
pub const QUIET_CYCLES: u32 = 1 << 16;
/// How often a serving card logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// AXI response codes.
const OKAY: u8 = 0;
const SLVERR: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BarOp {
    Write(u32, u32),
    Read(u32),
}

#[derive(Default)]
struct Bar {
    op: Option<BarOp>,
    aw_done: bool,
    w_done: bool,
    ar_done: bool,
    read: Option<u32>,
}

#[derive(Default)]
struct Burst {
    active: bool,
    addr: u64,
    beats: u32,
    error: bool,
}

/// The Verilated card, its DMA port served from a link file's memory.
pub struct VerilatedCard {
    model: Model,
    inp: VcardIn,
    out: VcardOut,
    bar_regs: Region,
    dma: Region,
    dma_bus: u64,
    window_bytes: u64,
    bar: Bar,
    rd: Burst,
    wr: Burst,
    b_pending: bool,
    /// Clock cycles run since the hard reset.
    pub cycles: u64,
}

impl VerilatedCard {
    /// Builds (or finds in the cache) the Verilated card and loads one, after a hard reset,
    /// serving its DMA from `mem`: the command window of its BAR image and its event buffer
    /// (at bus address `mem.evt_ring_addr`).
    pub fn new(mem: &LinkMemory) -> Result<(VerilatedCard, Built), VerilatedError> {
        let built = model::build(model::card_verilog())?;
        let model = Model::load(&built.library)?;
        let window = (CMD_RING_MAX_ENTRIES * RING_ENTRY_BYTES) as u64;
        mem.bar
            .check_span(0, CMD_RING_WINDOW as usize + window as usize)
            .map_err(|e| VerilatedError::Io("link BAR image".into(), std::io::Error::other(e.to_string())))?;
        let mut card = VerilatedCard {
            model,
            inp: VcardIn { bar_wstrb: 0xF, bar_bready: 1, bar_rready: 1, ..Default::default() },
            out: VcardOut::default(),
            bar_regs: mem.bar.clone(),
            dma: mem.dma.clone(),
            dma_bus: mem.evt_ring_addr,
            window_bytes: window,
            bar: Bar::default(),
            rd: Burst::default(),
            wr: Burst::default(),
            b_pending: false,
            cycles: 0,
        };
        // `inp.reset` is the next cycle's (the model starts in reset): in reset for two cycles,
        // then one out of it.
        card.inp.reset = 1;
        card.cycle();
        card.inp.reset = 0;
        card.cycle();
        card.cycle();
        Ok((card, built))
    }

    /// Where a DMA access of 8 bytes at `addr` lands: (region, offset) or `None` (SLVERR).
    fn locate(&self, addr: u64) -> Option<(&Region, usize)> {
        if !addr.is_multiple_of(8) {
            return None;
        }
        if let Some(o) = addr.checked_sub(CMD_WINDOW_BUS_ADDR)
            && o + 8 <= self.window_bytes
        {
            return Some((&self.bar_regs, CMD_RING_WINDOW as usize + o as usize));
        }
        match addr.checked_sub(self.dma_bus) {
            Some(o) if o + 8 <= self.dma.len() as u64 => Some((&self.dma, o as usize)),
            _ => None,
        }
    }

    /// One clock cycle; returns whether anything happened on the DMA or BAR ports.
    pub fn cycle(&mut self) -> bool {
        // Drive: the memory's side of the DMA (from its state only), the BAR master's request.
        self.inp.rd_arready = !self.rd.active as u8;
        self.inp.rd_rvalid = self.rd.active as u8;
        self.inp.rd_rlast = (self.rd.active && self.rd.beats == 1) as u8;
        if self.rd.active {
            let (data, resp) = match (self.rd.error, self.locate(self.rd.addr)) {
                (false, Some((r, o))) => {
                    let lo = r.load_at(o, Ordering::Relaxed) as u64;
                    (lo | (r.load_at(o + 4, Ordering::Relaxed) as u64) << 32, OKAY)
                }
                _ => (0, SLVERR),
            };
            self.inp.rd_rdata = data;
            self.inp.rd_rresp = resp;
        }
        self.inp.wr_awready = (!self.wr.active && !self.b_pending) as u8;
        self.inp.wr_wready = self.wr.active as u8;
        self.inp.wr_bvalid = self.b_pending as u8;
        self.inp.wr_bresp = if self.wr.error { SLVERR } else { OKAY };
        let (aw, w, ar) = match self.bar.op {
            Some(BarOp::Write(off, v)) => {
                self.inp.bar_awaddr = off;
                self.inp.bar_wdata = v;
                (!self.bar.aw_done, !self.bar.w_done, false)
            }
            Some(BarOp::Read(off)) => {
                self.inp.bar_araddr = off;
                (false, false, !self.bar.ar_done)
            }
            None => (false, false, false),
        };
        (self.inp.bar_awvalid, self.inp.bar_wvalid, self.inp.bar_arvalid) = (aw as u8, w as u8, ar as u8);

        self.model.cycle(&self.inp, &mut self.out);
        self.cycles += 1;
        let o = self.out;
        let mut busy = self.bar.op.is_some() || self.rd.active || self.wr.active || self.b_pending;
        let aw_ready = self.inp.wr_awready != 0;

        // DMA read: AR, then one beat a cycle while the card takes them.
        if self.rd.active && o.rd_rready != 0 {
            self.rd.addr += 8;
            self.rd.beats -= 1;
            self.rd.active = self.rd.beats > 0;
        } else if !self.rd.active && o.rd_arvalid != 0 {
            let beats = o.rd_arlen as u32 + 1;
            let error = (0..beats as u64).any(|k| self.locate(o.rd_araddr + 8 * k).is_none());
            self.rd = Burst { active: true, addr: o.rd_araddr, beats, error };
            busy = true;
        }
        // DMA write: AW, the beats, B. Each beat's low word (an event's word 0, the one the
        // host polls, in a head beat) is stored last, with release.
        if self.b_pending && o.wr_bready != 0 {
            self.b_pending = false;
        }
        if self.wr.active && o.wr_wvalid != 0 {
            if !self.wr.error
                && o.wr_wstrb == 0xFF
                && let Some((r, off)) = self.locate(self.wr.addr)
            {
                r.store_at(off + 4, (o.wr_wdata >> 32) as u32, Ordering::Relaxed);
                r.store_at(off, o.wr_wdata as u32, Ordering::Release);
            } else {
                self.wr.error = true;
            }
            self.wr.addr += 8;
            self.wr.beats = self.wr.beats.saturating_sub(1);
            if o.wr_wlast != 0 || self.wr.beats == 0 {
                self.wr.active = false;
                self.b_pending = true;
            }
        } else if aw_ready && o.wr_awvalid != 0 {
            let beats = o.wr_awlen as u32 + 1;
            let error = (0..beats as u64).any(|k| self.locate(o.wr_awaddr + 8 * k).is_none());
            self.wr = Burst { active: true, addr: o.wr_awaddr, beats, error };
            busy = true;
        }
        // BAR master: one access at a time.
        if self.bar.op.is_some() {
            self.bar.aw_done |= aw && o.bar_awready != 0;
            self.bar.w_done |= w && o.bar_wready != 0;
            self.bar.ar_done |= ar && o.bar_arready != 0;
            if o.bar_bvalid != 0 || o.bar_rvalid != 0 {
                if o.bar_rvalid != 0 {
                    self.bar.read = Some(o.bar_rdata);
                }
                self.bar.op = None;
                (self.bar.aw_done, self.bar.w_done, self.bar.ar_done) = (false, false, false);
            }
        }
        busy
    }

    /// Whether the BAR master is free for another access.
    pub fn bar_idle(&self) -> bool {
        self.bar.op.is_none()
    }

    /// Starts a BAR write (the BAR master must be idle).
    pub fn post_write(&mut self, off: u32, value: u32) {
        debug_assert!(self.bar_idle());
        self.bar.op = Some(BarOp::Write(off, value));
    }

    /// Writes a register, clocking until the card answers.
    pub fn write_reg(&mut self, off: u32, value: u32) {
        while !self.bar_idle() {
            self.cycle();
        }
        self.post_write(off, value);
        while !self.bar_idle() {
            self.cycle();
        }
    }

    /// Reads a register, clocking until the card answers.
    pub fn read_reg(&mut self, off: u32) -> u32 {
        while !self.bar_idle() {
            self.cycle();
        }
        self.bar.op = Some(BarOp::Read(off));
        self.bar.read = None;
        while !self.bar_idle() {
            self.cycle();
        }
        self.bar.read.take().unwrap_or(0)
    }

    /// Command entries the card has fetched since its last reset (free-running).
    pub fn cmd_consumer(&self) -> u32 {
        self.out.cmd_consumer
    }

    /// Events the card has written since its last reset (free-running).
    pub fn evt_producer(&self) -> u32 {
        self.out.evt_producer
    }

    /// A DMA access was answered other than OKAY since the last reset.
    pub fn dma_error(&self) -> bool {
        self.out.dma_error != 0
    }

    /// Programs the rings as the shell does, then times `n` fences, one entry in the window
    /// each: the cycles from the doorbell's BAR write to the event's head word in host memory
    /// (one-cycle DMA memory, no stalls). An error names a fence not answered in 10,000 cycles.
    pub fn fence_cycles(&mut self, mem: &LinkMemory, n: u32) -> Result<Vec<u64>, String> {
        use liqscan_hdl::abi::Command;
        for (off, v) in [
            (offset::CMD_RING_ENTRIES, 16),
            (offset::CMD_RING_ADDR_LO, CMD_WINDOW_BUS_ADDR as u32),
            (offset::CMD_RING_ADDR_HI, (CMD_WINDOW_BUS_ADDR >> 32) as u32),
            (offset::EVT_RING_ENTRIES, 16),
            (offset::EVT_RING_ADDR_LO, mem.evt_ring_addr as u32),
            (offset::EVT_RING_ADDR_HI, (mem.evt_ring_addr >> 32) as u32),
            (offset::CONTROL, CONTROL_SOFT_RESET),
        ] {
            self.write_reg(off, v);
        }
        let mut cycles = Vec::with_capacity(n as usize);
        for seq in 0..n {
            let words = Command::Fence { token: seq }.encode_words(seq);
            let base = CMD_RING_WINDOW as usize + (seq as usize % 16) * 64;
            for (i, w) in words.iter().enumerate() {
                mem.bar.write32(base + 4 * i, *w).map_err(|e| e.to_string())?;
            }
            self.write_reg(offset::EVT_CONSUMER, seq);
            let (before, c) = (self.evt_producer(), self.cycles);
            self.write_reg(offset::CMD_DOORBELL, seq + 1);
            while self.evt_producer() == before {
                self.cycle();
                if self.cycles - c > 10_000 {
                    return Err(format!("the Verilated card did not answer fence {seq}"));
                }
            }
            cycles.push(self.cycles - c);
        }
        Ok(cycles)
    }
}

/// The ring registers a host programmed, checked as `serve.rs` checks them.
fn ring_setup(mem: &LinkMemory) -> Result<[(u32, u32); 6], String> {
    let bar = &mem.bar;
    let cmd = bar.load_at(offset::CMD_RING_ENTRIES as usize, Ordering::Acquire);
    let evt = bar.load_at(offset::EVT_RING_ENTRIES as usize, Ordering::Acquire);
    if !cmd.is_power_of_two() || cmd as usize > CMD_RING_MAX_ENTRIES {
        return Err(format!("command ring of {cmd} entries"));
    }
    if !evt.is_power_of_two() || evt as usize > mem.evt_entries() {
        return Err(format!("event ring of {evt} entries in {} bytes", mem.dma.len()));
    }
    Ok([
        (offset::CMD_RING_ENTRIES, cmd),
        (offset::CMD_RING_ADDR_LO, CMD_WINDOW_BUS_ADDR as u32),
        (offset::CMD_RING_ADDR_HI, (CMD_WINDOW_BUS_ADDR >> 32) as u32),
        (offset::EVT_RING_ENTRIES, evt),
        (offset::EVT_RING_ADDR_LO, bar.load_at(offset::EVT_RING_ADDR_LO as usize, Ordering::Acquire)),
        (offset::EVT_RING_ADDR_HI, bar.load_at(offset::EVT_RING_ADDR_HI as usize, Ordering::Acquire)),
    ])
}

/// Copies the card's statistics and errors into the BAR image (read by people and tools; the
/// host's hot path reads no register).
fn mirror_stats(card: &mut VerilatedCard, mem: &LinkMemory) {
    for off in [
        offset::ERRORS,
        offset::STAT_COMMANDS,
        offset::STAT_SCANS,
        offset::STAT_WORDS,
        offset::ACTIVE_ACCOUNTS,
        offset::ACTIVE_SLOTS,
    ] {
        let v = card.read_reg(off);
        mem.bar.store_at(off as usize, v, Ordering::Relaxed);
    }
}

/// Serves the link in `mem` with the Verilated `card` until `opts.stop` is raised (see the
/// module docs). Of the injected faults, [`Fault::SilentAfter`] is served as the Rust card
/// serves it (the card takes that many commands in all, then reads nothing more, so the
/// host's timeout and fail-over meet the RTL too); [`Fault::WrongAfter`] is not, and is
/// refused with a log line.
pub fn serve_verilated(mem: LinkMemory, card: &mut VerilatedCard, opts: &ServeOptions) -> CardReport {
    let mut report = CardReport::default();
    let silent_after = match opts.fault {
        Fault::None => None,
        Fault::SilentAfter(n) => Some(n),
        Fault::WrongAfter(_) => {
            tracing::error!(
                "Verilated card: wrong-answer fault injection is not supported; serving without it"
            );
            None
        }
    };
    let bar = mem.bar.clone();
    // Identity from the RTL's own registers; ID_TYPE last: the host waits for it.
    for off in [
        offset::ID_VERSION,
        offset::BUILD_ID,
        offset::CONFIG_LANES,
        offset::CONFIG_ACCOUNTS,
        offset::CONFIG_ASSETS,
        offset::CONFIG_TERM_SLOTS,
    ] {
        let v = card.read_reg(off);
        bar.store_at(off as usize, v, Ordering::Relaxed);
    }
    let id = card.read_reg(offset::ID_TYPE);
    if id != TYPE_LIQSCAN {
        tracing::error!("Verilated card: ID_TYPE reads 0x{id:08x}");
    }
    bar.store_at(offset::ID_TYPE as usize, id, Ordering::Release);

    let (mut configured, mut cmd_entries) = (false, 0u32);
    let (mut sent_doorbell, mut sent_consumer) = (0u32, 0u32);
    let (mut quiet, mut idle_polls) = (0u32, 0u32);
    let (mut base_commands, mut base_events) = (0u64, 0u64);
    let mut busy_since = Instant::now();
    let mut clocked = 0.0f64;
    let mut running = true;
    let (mut looks, mut last_progress) = (0u32, Instant::now());
    while !opts.stop.load(Ordering::Relaxed) {
        // While the card works, the host's stores are looked at every eighth cycle only: the
        // shared lines stay with the host in between.
        if quiet == 0 && !card.cycles.is_multiple_of(8) {
            quiet = if card.cycle() { 0 } else { 1 };
            continue;
        }
        // Doorbell first, then CONTROL, as serve.rs: a doorbell seen after a reset was
        // requested always comes with the reset visible.
        let doorbell = bar.load_at(offset::CMD_DOORBELL as usize, Ordering::Acquire);
        if bar.load_at(offset::CONTROL as usize, Ordering::Acquire) & CONTROL_SOFT_RESET != 0 {
            // Counters restart with the reset: keep what the card did before it.
            base_commands += card.cmd_consumer() as u64;
            base_events += card.evt_producer() as u64;
            match ring_setup(&mem) {
                Ok(regs) => {
                    for (off, v) in regs {
                        card.write_reg(off, v);
                    }
                    sent_consumer = bar.load_at(offset::EVT_CONSUMER as usize, Ordering::Acquire);
                    card.write_reg(offset::EVT_CONSUMER, sent_consumer);
                    card.write_reg(offset::CONTROL, CONTROL_SOFT_RESET);
                    // A burst cut by the reset is forgotten on both sides.
                    (card.rd, card.wr, card.b_pending) = (Burst::default(), Burst::default(), false);
                    card.cycle();
                    cmd_entries = regs[0].1;
                    configured = true;
                }
                Err(e) => {
                    tracing::error!("Verilated card: bad ring configuration at reset: {e}");
                    configured = false;
                }
            }
            sent_doorbell = 0;
            report.resets += 1;
            bar.store_at(offset::CONTROL as usize, 0, Ordering::Release);
            quiet = 0;
            continue;
        }
        let mut news = false;
        if configured && card.bar_idle() {
            let ahead = doorbell.wrapping_sub(card.cmd_consumer());
            let consumer = bar.load_at(offset::EVT_CONSUMER as usize, Ordering::Acquire);
            // A silent card is sent no doorbell past its last command: its consumer index
            // stops there, as the Rust card's does.
            let doorbell = match silent_after {
                Some(n) => {
                    let cap = n.saturating_sub(base_commands) as u32;
                    let room = cap.wrapping_sub(card.cmd_consumer());
                    if ahead > room { cap } else { doorbell }
                }
                None => doorbell,
            };
            let ahead = doorbell.wrapping_sub(card.cmd_consumer());
            if doorbell != sent_doorbell && (1..=cmd_entries).contains(&ahead) {
                card.post_write(offset::CMD_DOORBELL, doorbell);
                sent_doorbell = doorbell;
                news = true;
            } else if consumer != sent_consumer {
                card.post_write(offset::EVT_CONSUMER, consumer);
                sent_consumer = consumer;
                news = true;
            }
        }
        looks = looks.wrapping_add(1);
        if looks.is_multiple_of(8192) && last_progress.elapsed() >= PROGRESS_EVERY {
            // Long emulations say how far they are (a few lines a minute, off the cycle path).
            let secs = clocked + if running { busy_since.elapsed().as_secs_f64() } else { 0.0 };
            tracing::info!(
                "Verilated card: {} commands, {} events, {} cycles clocked ({:.0} cycles/s)",
                base_commands + card.cmd_consumer() as u64,
                base_events + card.evt_producer() as u64,
                card.cycles,
                card.cycles as f64 / secs.max(1e-9)
            );
            last_progress = Instant::now();
        }
        if news || quiet < QUIET_CYCLES {
            if !running {
                running = true;
                busy_since = Instant::now();
            }
            quiet = if card.cycle() || news { 0 } else { quiet + 1 };
            idle_polls = 0;
            continue;
        }
        if running {
            running = false;
            clocked += busy_since.elapsed().as_secs_f64();
            mirror_stats(card, &mem);
        }
        idle_polls = idle_polls.saturating_add(1);
        if opts.idle == Idle::Backoff && idle_polls > 20_000 {
            std::thread::sleep(Duration::from_micros(50));
        } else {
            std::hint::spin_loop();
        }
    }
    if running {
        clocked += busy_since.elapsed().as_secs_f64();
    }
    report.commands = base_commands + card.cmd_consumer() as u64;
    report.events = base_events + card.evt_producer() as u64;
    report.scans = card.read_reg(offset::STAT_SCANS) as u64;
    report.cycles = card.cycles;
    report.sim_seconds = clocked;
    report
}

impl super::CardThread {
    /// The Verilated card on a thread of this process, serving `mem` until stopped; pins to
    /// `core` when given.
    pub fn spawn_verilated(
        mem: LinkMemory,
        mut card: VerilatedCard,
        opts: ServeOptions,
        core: Option<usize>,
    ) -> super::CardThread {
        let stop = opts.stop.clone();
        let handle = std::thread::Builder::new()
            .name("verilated-card".into())
            .spawn(move || {
                if let Some(c) = core {
                    liqscan_host::pipeline::pin("Verilated card", c);
                }
                serve_verilated(mem, &mut card, &opts)
            })
            .expect("spawn the Verilated card thread");
        super::CardThread::from_parts(stop, handle)
    }
}
