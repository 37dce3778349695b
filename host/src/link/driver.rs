//! The host side of the rings: post commands, poll events, bring-up.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use liqscan_hdl::abi::regs::{self, CMD_RING_WINDOW, CONTROL_SOFT_RESET, TYPE_LIQSCAN, VERSION, offset};
use liqscan_hdl::abi::ring::{PHASE_BIT, RING_ENTRY_BYTES, RING_ENTRY_WORDS};
use liqscan_hdl::abi::{CardConfig, Command, EventEntry};

use super::{CMD_RING_MAX_ENTRIES, EVT_CONSUMER, LinkError, LinkMemory};

/// Link settings.
#[derive(Clone, Copy, Debug)]
pub struct LinkOptions {
    /// Command ring entries (power of two, at most [`CMD_RING_MAX_ENTRIES`]).
    pub cmd_entries: usize,
    /// Watchdog: the card is declared dead after this long without an expected event.
    pub timeout: Duration,
    /// How long [`CardLink::open`] waits for the card to identify itself.
    pub open_timeout: Duration,
    /// Spin only briefly, then sleep between polls (shared cores, or a card as slow as the
    /// rust-hdl simulation). Off: spin without ever yielding (a dedicated core).
    pub backoff: bool,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            cmd_entries: CMD_RING_MAX_ENTRIES,
            timeout: Duration::from_millis(500),
            open_timeout: Duration::from_secs(5),
            backoff: false,
        }
    }
}

/// Counters of one link.
#[derive(Clone, Copy, Debug, Default)]
pub struct LinkStats {
    /// Commands posted.
    pub commands: u64,
    /// Events consumed.
    pub events: u64,
    /// Times the command ring was half full and the host waited on a fence.
    pub cmd_ring_waits: u64,
}

/// The host's end of a card link: command producer, event consumer.
pub struct CardLink {
    mem: LinkMemory,
    config: CardConfig,
    cmd_mask: u32,
    evt_mask: u32,
    /// Sequence number of the next command (also the free-running producer index).
    next_seq: u32,
    /// Commands the card has certainly taken (the highest `cmd_seq` seen in an event, plus 1).
    taken: u32,
    evt_head: u32,
    evt_reported: u32,
    phase: bool,
    timeout: Duration,
    backoff: bool,
    /// Shared memory: the link file's generation when the link was opened.
    generation: Option<u32>,
    /// Counters.
    pub stats: LinkStats,
}

impl CardLink {
    /// Brings the link up: waits for the card to identify itself, checks its version, programs
    /// the rings, resets the core and proves the rings with a fence round trip.
    pub fn open(mem: LinkMemory, opts: LinkOptions) -> Result<CardLink, LinkError> {
        let n = opts.cmd_entries;
        if !n.is_power_of_two() || !(2..=CMD_RING_MAX_ENTRIES).contains(&n) {
            return Err(LinkError::Layout(format!(
                "command ring of {n} entries: need a power of two in 2..={CMD_RING_MAX_ENTRIES}"
            )));
        }
        // Read before anything else: a card that takes the file from now on is noticed.
        let generation = mem.shm_file().map(|f| f.generation());
        let bar = &mem.bar;
        let start = Instant::now();
        loop {
            let id = bar.read32(offset::ID_TYPE as usize)?;
            if id == TYPE_LIQSCAN {
                break;
            }
            if start.elapsed() > opts.open_timeout {
                return Err(LinkError::NotACard { found: id, expected: TYPE_LIQSCAN });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let version = bar.read32(offset::ID_VERSION as usize)?;
        if version >> 16 != VERSION >> 16 {
            return Err(LinkError::Version { card: version, host: VERSION });
        }
        let config = CardConfig {
            lanes: bar.read32(offset::CONFIG_LANES as usize)?,
            accounts: bar.read32(offset::CONFIG_ACCOUNTS as usize)?,
            assets: bar.read32(offset::CONFIG_ASSETS as usize)?,
            term_slots: bar.read32(offset::CONFIG_TERM_SLOTS as usize)?,
        };
        if config.lanes == 0
            || config.lanes > 32
            || config.accounts == 0
            || !config.accounts.is_multiple_of(32)
        {
            return Err(LinkError::Protocol(format!("card reports an impossible configuration {config:?}")));
        }
        let evt_entries = mem.evt_entries();
        bar.check_span(CMD_RING_WINDOW as usize, n * RING_ENTRY_BYTES)?;
        mem.dma.check_span(0, evt_entries * RING_ENTRY_BYTES)?;
        bar.check_span(EVT_CONSUMER as usize, 4)?;
        // Quiesce, program, reset. The card samples CONTROL after every doorbell load, so a
        // doorbell it sees is never one from before the reset.
        mem.dma.zero();
        bar.write32(offset::CMD_DOORBELL as usize, 0)?;
        bar.write32(EVT_CONSUMER as usize, 0)?;
        bar.write32(offset::CMD_RING_ENTRIES as usize, n as u32)?;
        bar.write32(offset::EVT_RING_ENTRIES as usize, evt_entries as u32)?;
        bar.write32(offset::EVT_RING_ADDR_LO as usize, mem.evt_ring_addr as u32)?;
        bar.write32(offset::EVT_RING_ADDR_HI as usize, (mem.evt_ring_addr >> 32) as u32)?;
        bar.write32(offset::CONTROL as usize, CONTROL_SOFT_RESET)?;
        let mut link = CardLink {
            mem,
            config,
            cmd_mask: n as u32 - 1,
            evt_mask: evt_entries as u32 - 1,
            next_seq: 0,
            taken: 0,
            evt_head: 0,
            evt_reported: 0,
            phase: true,
            timeout: opts.timeout.max(opts.open_timeout),
            backoff: opts.backoff,
            generation,
            stats: LinkStats::default(),
        };
        link.fence(0x4C51_0001, |_| Ok(()))?;
        link.timeout = opts.timeout;
        Ok(link)
    }

    /// The card's configuration as its registers report it.
    pub fn config(&self) -> CardConfig {
        self.config
    }

    /// The memory this link drives.
    pub fn memory(&self) -> &LinkMemory {
        &self.mem
    }

    /// The link file's generation the link was opened on (shared memory only).
    pub fn generation(&self) -> Option<u32> {
        self.generation
    }

    /// Shared memory: fails with [`LinkError::Taken`] when another card has taken the link file
    /// since the link was opened (one load from the mapped header; nothing for PCIe).
    #[inline]
    pub fn check_owner(&self) -> Result<(), LinkError> {
        if let (Some(was), Some(f)) = (self.generation, self.mem.shm_file()) {
            let now = f.generation();
            if now != was {
                return Err(LinkError::Taken {
                    path: f.path().display().to_string(),
                    was,
                    now,
                    owner: f.owner(),
                });
            }
        }
        Ok(())
    }

    /// The watchdog time-out.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Bring-up: writes patterns to `SCRATCH` and reads them back (a register read each; not
    /// for the hot path).
    pub fn scratch_test(&self) -> Result<(), LinkError> {
        for wrote in [0xA5A5_5A5A, 0x5A5A_A5A5, 0, u32::MAX, 0x1234_5678] {
            self.mem.bar.write32(regs::offset::SCRATCH as usize, wrote)?;
            let read = self.mem.bar.read32(regs::offset::SCRATCH as usize)?;
            if read != wrote {
                return Err(LinkError::Scratch { wrote, read });
            }
        }
        Ok(())
    }

    /// Commands posted and not yet known to be taken by the card.
    pub fn in_flight(&self) -> u32 {
        self.next_seq.wrapping_sub(self.taken)
    }

    /// True when the command ring is half full: post a fence and drain before posting more.
    pub fn needs_credit(&self) -> bool {
        self.in_flight() > self.cmd_mask / 2
    }

    /// Posts one command (sixteen stores into the ring window, then the doorbell) and returns
    /// its sequence number. The caller keeps the ring at most half full ([`needs_credit`]);
    /// a full ring is refused, never overwritten.
    ///
    /// [`needs_credit`]: CardLink::needs_credit
    #[inline]
    pub fn post(&mut self, cmd: &Command) -> Result<u32, LinkError> {
        if self.in_flight() > self.cmd_mask {
            return Err(LinkError::Protocol("command ring full (caller skipped the credit check)".into()));
        }
        let seq = self.next_seq;
        let words = cmd.encode_words(seq);
        let base = CMD_RING_WINDOW as usize + (seq & self.cmd_mask) as usize * RING_ENTRY_BYTES;
        for (i, w) in words.iter().enumerate() {
            self.mem.bar.store_at(base + 4 * i, *w, Ordering::Relaxed);
        }
        self.next_seq = seq.wrapping_add(1);
        self.mem.bar.store_at(regs::offset::CMD_DOORBELL as usize, self.next_seq, Ordering::Release);
        self.stats.commands += 1;
        Ok(seq)
    }

    /// Takes the next event if the card has written one; checks its sequence number.
    #[inline]
    pub fn poll(&mut self) -> Result<Option<EventEntry>, LinkError> {
        let base = (self.evt_head & self.evt_mask) as usize * RING_ENTRY_BYTES;
        let w0 = self.mem.dma.load_at(base, Ordering::Acquire);
        if (w0 & PHASE_BIT != 0) != self.phase {
            if self.evt_reported != self.evt_head {
                self.report_consumer();
            }
            return Ok(None);
        }
        let mut w = [0u32; RING_ENTRY_WORDS];
        w[0] = w0;
        for (i, x) in w.iter_mut().enumerate().skip(1) {
            *x = self.mem.dma.load_at(base + 4 * i, Ordering::Relaxed);
        }
        // A new card on the link file clears the ring: say that rather than what it looks like.
        let e = match EventEntry::decode_words(&w) {
            Ok(e) => e,
            Err(err) => {
                self.check_owner()?;
                return Err(LinkError::Protocol(format!("event {} does not decode: {err}", self.evt_head)));
            }
        };
        if e.seq != self.evt_head {
            self.check_owner()?;
            return Err(LinkError::Protocol(format!(
                "event sequence gap: expected {}, got {}",
                self.evt_head, e.seq
            )));
        }
        self.evt_head = self.evt_head.wrapping_add(1);
        if self.evt_head & self.evt_mask == 0 {
            self.phase = !self.phase;
        }
        if self.evt_head.wrapping_sub(self.evt_reported) >= 64 {
            self.report_consumer();
        }
        self.stats.events += 1;
        let cmd_seq = event_cmd_seq(&e);
        if cmd_seq.wrapping_sub(self.taken) < self.next_seq.wrapping_sub(self.taken) {
            self.taken = cmd_seq.wrapping_add(1);
        } else if cmd_seq != self.taken.wrapping_sub(1) {
            return Err(LinkError::Protocol(format!(
                "event for command {cmd_seq}, which was never posted (next is {})",
                self.next_seq
            )));
        }
        Ok(Some(e))
    }

    fn report_consumer(&mut self) {
        self.mem.bar.store_at(EVT_CONSUMER as usize, self.evt_head, Ordering::Release);
        self.evt_reported = self.evt_head;
    }

    /// Waits for an event, spinning (with `backoff`, sleeping 20 us between polls once the wait
    /// passes 200 us); `Timeout` after the watchdog period. Where it looks at the clock it also
    /// checks that the link file still belongs to the card ([`check_owner`](Self::check_owner)).
    #[inline]
    pub fn wait(&mut self, waiting: &'static str) -> Result<EventEntry, LinkError> {
        let mut spins = 0u32;
        let mut since: Option<Instant> = None;
        loop {
            if let Some(e) = self.poll()? {
                return Ok(e);
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(4096) || (self.backoff && since.is_some()) {
                self.check_owner()?;
                let t = *since.get_or_insert_with(Instant::now);
                let waited = t.elapsed();
                if waited > self.timeout {
                    return Err(LinkError::Timeout { ms: self.timeout.as_millis() as u64, waiting });
                }
                if self.backoff && waited > Duration::from_micros(200) {
                    std::thread::sleep(Duration::from_micros(20));
                }
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Posts a fence and drains events (handing each to `on_event`) until it returns, then
    /// checks that the link file still belongs to the card the link was opened on.
    pub fn fence(
        &mut self,
        token: u32,
        mut on_event: impl FnMut(&EventEntry) -> Result<(), LinkError>,
    ) -> Result<(), LinkError> {
        let seq = self.post(&Command::Fence { token })?;
        loop {
            let e = self.wait("fence")?;
            if let liqscan_hdl::abi::Event::FenceDone { cmd_seq, token: t } = e.event {
                if cmd_seq == seq && t == token {
                    return self.check_owner();
                }
                return Err(LinkError::Protocol(format!(
                    "fence {seq}/{token:#x} answered as {cmd_seq}/{t:#x}"
                )));
            }
            on_event(&e)?;
        }
    }
}

/// The command sequence number an event refers to.
pub fn event_cmd_seq(e: &EventEntry) -> u32 {
    use liqscan_hdl::abi::Event::*;
    match e.event {
        Bitmap { cmd_seq, .. }
        | ChangedWords { cmd_seq, .. }
        | ScanDone { cmd_seq, .. }
        | Error { cmd_seq, .. }
        | Stats { cmd_seq, .. }
        | FenceDone { cmd_seq, .. } => cmd_seq,
    }
}
