//! The card's ring engine: doorbell -> command -> [`CardEngine`] -> events.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use liqscan_hdl::abi::regs::{
    CMD_RING_WINDOW, CONTROL_SOFT_RESET, STATUS_BUSY, TYPE_LIQSCAN, VERSION, error_bit, offset,
};
use liqscan_hdl::abi::ring::{
    BITMAP_WORDS_PER_ENTRY, CHANGED_PER_ENTRY, PHASE_BIT, RING_ENTRY_BYTES, RING_ENTRY_WORDS,
};
use liqscan_hdl::abi::{Command, Event, EventEntry, MAX_COEFFS_PER_ACCOUNT};
use liqscan_host::link::{CMD_RING_MAX_ENTRIES, LinkMemory};

use super::CardEngine;

/// How the card waits when there is nothing to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idle {
    /// Spin forever (a dedicated, pinned core: the benchmark setting).
    Spin,
    /// Spin a while, then sleep 50 us between looks (shared cores: tests, laptops).
    Backoff,
}

/// Faults to inject, for fail-over tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// None.
    None,
    /// Stop answering (keep running, read nothing) after this many commands.
    SilentAfter(u64),
    /// After this many commands, answer every scan with a wrong bitmap word.
    WrongAfter(u64),
}

/// Settings of one card.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Raised to stop the card.
    pub stop: Arc<AtomicBool>,
    /// Idle strategy.
    pub idle: Idle,
    /// Injected fault.
    pub fault: Fault,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { stop: Arc::new(AtomicBool::new(false)), idle: Idle::Backoff, fault: Fault::None }
    }
}

/// What a card did before it stopped.
#[derive(Clone, Copy, Debug, Default)]
pub struct CardReport {
    /// Commands executed.
    pub commands: u64,
    /// Events written.
    pub events: u64,
    /// Scans.
    pub scans: u64,
    /// Soft resets seen.
    pub resets: u64,
    /// Times the card waited for room in the event ring.
    pub evt_ring_waits: u64,
    /// Core cycles the engine simulated (the rust-hdl card; 0 for the software card).
    pub cycles: u64,
    /// Seconds the engine spent simulating them.
    pub sim_seconds: f64,
}

struct Rings {
    mem: LinkMemory,
    cmd_mask: u32,
    consumer: u32,
    evt_mask: u32,
    evt_prod: u32,
    expect_seq: u32,
    errors: u32,
    configured: bool,
}

impl Rings {
    fn reg(&self, off: u32, v: u32) {
        self.mem.bar.store_at(off as usize, v, Ordering::Relaxed);
    }

    fn emit(&mut self, event: Event, stop: &AtomicBool, report: &mut CardReport) -> bool {
        let mut waited = false;
        while self
            .evt_prod
            .wrapping_sub(self.mem.bar.load_at(offset::EVT_CONSUMER as usize, Ordering::Acquire))
            > self.evt_mask
        {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            // A new host is resetting the link: this event was for the old one, which will
            // never read it. Drop it rather than wait for room forever.
            if self.mem.bar.load_at(offset::CONTROL as usize, Ordering::Acquire) & CONTROL_SOFT_RESET != 0 {
                return true;
            }
            if !waited {
                report.evt_ring_waits += 1;
                waited = true;
            }
            std::hint::spin_loop();
        }
        let phase = (self.evt_prod / (self.evt_mask + 1)).is_multiple_of(2);
        let w = EventEntry { phase, seq: self.evt_prod, event }.encode_words();
        let base = (self.evt_prod & self.evt_mask) as usize * RING_ENTRY_BYTES;
        for (i, x) in w.iter().enumerate().skip(1) {
            self.mem.dma.store_at(base + 4 * i, *x, Ordering::Relaxed);
        }
        debug_assert_eq!(w[0] & PHASE_BIT != 0, phase);
        self.mem.dma.store_at(base, w[0], Ordering::Release);
        self.evt_prod = self.evt_prod.wrapping_add(1);
        report.events += 1;
        true
    }

    fn reset(&mut self) -> Result<(), String> {
        let bar = &self.mem.bar;
        let cmd_entries = bar.load_at(offset::CMD_RING_ENTRIES as usize, Ordering::Acquire);
        let evt_entries = bar.load_at(offset::EVT_RING_ENTRIES as usize, Ordering::Acquire);
        if !cmd_entries.is_power_of_two() || cmd_entries as usize > CMD_RING_MAX_ENTRIES {
            return Err(format!("command ring of {cmd_entries} entries"));
        }
        if !evt_entries.is_power_of_two() || evt_entries as usize > self.mem.evt_entries() {
            return Err(format!("event ring of {evt_entries} entries in {} bytes", self.mem.dma.len()));
        }
        self.cmd_mask = cmd_entries - 1;
        self.evt_mask = evt_entries - 1;
        self.consumer = 0;
        self.evt_prod = 0;
        self.expect_seq = 0;
        self.errors = 0;
        self.configured = true;
        for off in [offset::STAT_COMMANDS, offset::STAT_SCANS, offset::STAT_WORDS, offset::ERRORS] {
            self.reg(off, 0);
        }
        Ok(())
    }
}

/// Serves the link in `mem` with `engine` until `opts.stop` is raised.
pub fn serve(mem: LinkMemory, engine: &mut dyn CardEngine, opts: &ServeOptions) -> CardReport {
    let mut report = CardReport::default();
    let bar = mem.bar.clone();
    bar.check_span(0, CMD_RING_WINDOW as usize + CMD_RING_MAX_ENTRIES * RING_ENTRY_BYTES)
        .expect("BAR image holds the register map and the command ring window");
    mem.dma.check_span(0, mem.dma.len()).expect("event ring is word aligned");
    let mut r = Rings {
        mem,
        cmd_mask: 0,
        consumer: 0,
        evt_mask: 0,
        evt_prod: 0,
        expect_seq: 0,
        errors: 0,
        configured: false,
    };
    // Identity last: the host waits for ID_TYPE.
    r.reg(offset::ID_VERSION, VERSION);
    r.reg(offset::ID_NEXT, 0);
    r.reg(offset::BUILD_ID, 0);
    r.reg(offset::CONFIG_LANES, engine.lanes() as u32);
    r.reg(offset::CONFIG_ACCOUNTS, engine.accounts() as u32);
    r.reg(offset::CONFIG_ASSETS, engine.assets() as u32);
    r.reg(offset::CONFIG_TERM_SLOTS, MAX_COEFFS_PER_ACCOUNT as u32);
    bar.store_at(offset::ID_TYPE as usize, TYPE_LIQSCAN, Ordering::Release);

    let mut changed = Vec::new();
    let mut full = Vec::new();
    let mut idle = 0u32;
    let mut silent = false;
    while !opts.stop.load(Ordering::Relaxed) {
        // Doorbell first, then CONTROL: a doorbell seen after a reset was requested always
        // comes with the reset visible, so no stale index is ever used.
        let doorbell = bar.load_at(offset::CMD_DOORBELL as usize, Ordering::Acquire);
        if bar.load_at(offset::CONTROL as usize, Ordering::Acquire) & CONTROL_SOFT_RESET != 0 {
            if let Err(e) = r.reset() {
                tracing::error!("emulated card: bad ring configuration at reset: {e}");
            }
            report.resets += 1;
            silent = false;
            bar.store_at(offset::CONTROL as usize, 0, Ordering::Release);
            continue;
        }
        // A doorbell behind the consumer index (or more than a ring ahead) is a new host
        // quiescing the link before its reset: never execute stale ring entries for it.
        let ahead = doorbell.wrapping_sub(r.consumer);
        if silent || !r.configured || ahead == 0 || ahead > r.cmd_mask + 1 {
            idle = idle.saturating_add(1);
            if opts.idle == Idle::Backoff && idle > 20_000 {
                std::thread::sleep(Duration::from_micros(50));
            } else {
                std::hint::spin_loop();
            }
            continue;
        }
        idle = 0;
        if let Fault::SilentAfter(n) = opts.fault
            && report.commands >= n
        {
            silent = true;
            continue;
        }
        let base = CMD_RING_WINDOW as usize + (r.consumer & r.cmd_mask) as usize * RING_ENTRY_BYTES;
        let mut w = [0u32; RING_ENTRY_WORDS];
        for (i, x) in w.iter_mut().enumerate() {
            *x = bar.load_at(base + 4 * i, Ordering::Relaxed);
        }
        r.consumer = r.consumer.wrapping_add(1);
        report.commands += 1;
        r.reg(offset::STATUS, STATUS_BUSY);
        let wrong = matches!(opts.fault, Fault::WrongAfter(n) if report.commands > n);
        let ok = execute(&mut r, engine, &w, &mut changed, &mut full, wrong, opts, &mut report);
        r.reg(offset::STAT_COMMANDS, report.commands as u32);
        r.reg(offset::STAT_SCANS, report.scans as u32);
        r.reg(offset::ERRORS, r.errors);
        r.reg(offset::STATUS, 0);
        if !ok {
            break;
        }
    }
    (report.cycles, report.sim_seconds) = engine.simulated();
    report
}

#[allow(clippy::too_many_arguments)]
fn execute(
    r: &mut Rings,
    engine: &mut dyn CardEngine,
    w: &[u32; RING_ENTRY_WORDS],
    changed: &mut Vec<(u32, u32, u32)>,
    full: &mut Vec<(u32, u32)>,
    wrong: bool,
    opts: &ServeOptions,
    report: &mut CardReport,
) -> bool {
    let stop = &opts.stop;
    let (seq, cmd) = match Command::decode_words(w) {
        Ok(x) => x,
        Err(_) => {
            r.errors |= error_bit::BAD_ENTRY;
            let e = Event::Error { cmd_seq: w[1], errors: error_bit::BAD_ENTRY, detail: w[0] };
            return r.emit(e, stop, report);
        }
    };
    if seq != r.expect_seq {
        r.errors |= error_bit::SEQ_GAP;
        let e = Event::Error { cmd_seq: seq, errors: error_bit::SEQ_GAP, detail: r.expect_seq };
        r.expect_seq = seq.wrapping_add(1);
        return r.emit(e, stop, report);
    }
    r.expect_seq = seq.wrapping_add(1);
    let refused = |r: &mut Rings, report: &mut CardReport, (bits, detail): (u32, u32)| {
        r.errors |= bits;
        r.emit(Event::Error { cmd_seq: seq, errors: bits, detail }, stop, report)
    };
    match cmd {
        Command::Tick { asset, price } => {
            changed.clear();
            match engine.tick(asset, price, changed) {
                Ok(info) => {
                    report.scans += 1;
                    if wrong {
                        changed.push((0, !0, !0));
                    }
                    for chunk in changed.chunks(CHANGED_PER_ENTRY) {
                        let mut words = [(0, 0, 0); CHANGED_PER_ENTRY];
                        words[..chunk.len()].copy_from_slice(chunk);
                        let e = Event::ChangedWords { cmd_seq: seq, count: chunk.len() as u8, words };
                        if !r.emit(e, stop, report) {
                            return false;
                        }
                    }
                    let done = Event::ScanDone {
                        cmd_seq: seq,
                        incremental: true,
                        asset,
                        groups: info.groups,
                        cycles: info.cycles,
                        breached: info.breached,
                        at_risk: info.at_risk,
                    };
                    r.emit(done, stop, report)
                }
                Err(x) => refused(r, report, x),
            }
        }
        Command::BatchTick { asset, price, last } => {
            if let Err(x) = engine.set_price(asset, price) {
                return refused(r, report, x);
            }
            if last { full_scan(r, engine, seq, full, wrong, opts, report) } else { true }
        }
        Command::ScanFull => full_scan(r, engine, seq, full, wrong, opts, report),
        Command::AccountTerms { account, word, count, terms } => {
            match engine.write_terms(account, word, &terms[..count as usize]) {
                Ok(()) => true,
                Err(x) => refused(r, report, x),
            }
        }
        Command::SetGroup { group, first, len } => match engine.set_group(group, first, len) {
            Ok(()) => true,
            Err(x) => refused(r, report, x),
        },
        Command::Params { active_accounts, term_slots } => match engine.params(active_accounts, term_slots) {
            Ok(()) => {
                r.reg(offset::ACTIVE_ACCOUNTS, active_accounts);
                r.reg(offset::ACTIVE_SLOTS, term_slots);
                true
            }
            Err(x) => refused(r, report, x),
        },
        Command::Fence { token } => r.emit(Event::FenceDone { cmd_seq: seq, token }, stop, report),
    }
}

fn full_scan(
    r: &mut Rings,
    engine: &mut dyn CardEngine,
    seq: u32,
    full: &mut Vec<(u32, u32)>,
    wrong: bool,
    opts: &ServeOptions,
    report: &mut CardReport,
) -> bool {
    full.clear();
    let info = engine.scan_full(full);
    report.scans += 1;
    if wrong && !full.is_empty() {
        full[0].0 ^= 1;
    }
    for (k, chunk) in full.chunks(BITMAP_WORDS_PER_ENTRY).enumerate() {
        let mut breach = [0; BITMAP_WORDS_PER_ENTRY];
        let mut at_risk = [0; BITMAP_WORDS_PER_ENTRY];
        for (i, &(b, a)) in chunk.iter().enumerate() {
            breach[i] = b;
            at_risk[i] = a;
        }
        let e = Event::Bitmap {
            cmd_seq: seq,
            base_word: (k * BITMAP_WORDS_PER_ENTRY) as u32,
            count: chunk.len() as u8,
            breach,
            at_risk,
        };
        if !r.emit(e, &opts.stop, report) {
            return false;
        }
    }
    r.reg(offset::STAT_WORDS, full.len() as u32);
    let done = Event::ScanDone {
        cmd_seq: seq,
        incremental: false,
        asset: 0,
        groups: info.groups,
        cycles: info.cycles,
        breached: info.breached,
        at_risk: info.at_risk,
    };
    r.emit(done, &opts.stop, report)
}

/// The emulated card on a thread of this process. Dropping it stops the card.
pub struct CardThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<CardReport>>,
}

impl CardThread {
    /// Starts serving `mem` with `engine`; pins to `core` when given (a message if refused).
    pub fn spawn(
        mem: LinkMemory,
        mut engine: Box<dyn CardEngine>,
        opts: ServeOptions,
        core: Option<usize>,
    ) -> CardThread {
        let stop = opts.stop.clone();
        let handle = std::thread::Builder::new()
            .name("emulated-card".into())
            .spawn(move || {
                if let Some(c) = core {
                    liqscan_host::pipeline::pin("emulated card", c);
                }
                serve(mem, engine.as_mut(), &opts)
            })
            .expect("spawn emulated card thread");
        CardThread { stop, handle: Some(handle) }
    }

    /// A card serving on `handle`, stopped by raising `stop` (the other card forms).
    #[cfg_attr(not(feature = "hdl"), allow(dead_code))]
    pub(super) fn from_parts(stop: Arc<AtomicBool>, handle: JoinHandle<CardReport>) -> CardThread {
        CardThread { stop, handle: Some(handle) }
    }

    /// Stops the card and returns its report.
    pub fn stop(mut self) -> CardReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().map(|h| h.join().expect("card thread panicked")).unwrap_or_default()
    }
}

impl Drop for CardThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
