//! Driving the whole card ([`Card`], rust-hdl, hand-clocked) from Rust as a host driver does:
//! register accesses over the BAR port, command entries in host memory ([`AxiMemory`], which
//! also holds the event ring), doorbells, events found by their phase bit, `EVT_CONSUMER`
//! published. Used by the tests that compare the card with the golden models and with the
//! emulated card (`sim/src/card`).
//!
//! ```no_run
//! use liqscan_hdl::abi::Command;
//! use liqscan_hdl::front::axi::AxiTiming;
//! use liqscan_hdl::front::card_driver::CardSim;
//! let mut card = CardSim::new(8, 4, AxiTiming { latency: 1..=4, stall_percent: 20 }, 1);
//! card.bring_up().unwrap();
//! let events = card.run(&[Command::Fence { token: 7 }.encode_words(0)]);
//! assert_eq!(events.len(), 1);
//! ```

use std::collections::VecDeque;

use crate::abi::regs::{CONTROL_SOFT_RESET, TYPE_LIQSCAN, offset};
use crate::abi::ring::{PHASE_BIT, RING_ENTRY_BYTES, RING_ENTRY_WORDS, evt_kind};
use crate::front::axi::{AxiMemory, AxiTiming};
use crate::front::card::Card;
use rust_hdl::prelude::*;

/// Bus address of the command ring in the simulated host memory (the event ring follows it);
/// high enough that the upper address word matters.
pub const HOST_BASE: u64 = 0x7_FFFF_F000;

#[derive(Clone, Copy, Debug)]
enum Bar {
    Write(u32, u32),
    Read(u32),
}

/// Per cycle: the card's inputs and its settled outputs just before the rising edge, as
/// space-separated hex fields (the ports and widths of [`TRACE_INPUTS`], [`TRACE_OUTPUTS`]), for
/// replaying the run on the generated Verilog.
#[derive(Clone, Debug, Default)]
pub struct CardTrace {
    /// Input lines.
    pub inputs: Vec<String>,
    /// Output lines.
    pub outputs: Vec<String>,
}

/// The card's input ports (Verilog names) and widths, in [`CardTrace`] order.
pub const TRACE_INPUTS: &[(&str, usize)] = &[
    ("reset", 1),
    ("bar_awvalid", 1),
    ("bar_awaddr", 32),
    ("bar_wvalid", 1),
    ("bar_wdata", 32),
    ("bar_wstrb", 4),
    ("bar_bready", 1),
    ("bar_arvalid", 1),
    ("bar_araddr", 32),
    ("bar_rready", 1),
    ("axi_rd$arready", 1),
    ("axi_rd$rvalid", 1),
    ("axi_rd$rdata", 64),
    ("axi_rd$rresp", 2),
    ("axi_rd$rlast", 1),
    ("axi_wr$awready", 1),
    ("axi_wr$wready", 1),
    ("axi_wr$bvalid", 1),
    ("axi_wr$bresp", 2),
];

/// The card's output ports (Verilog names), in [`CardTrace`] order.
pub const TRACE_OUTPUTS: &[&str] = &[
    "bar_awready",
    "bar_wready",
    "bar_bvalid",
    "bar_bresp",
    "bar_arready",
    "bar_rvalid",
    "bar_rdata",
    "bar_rresp",
    "axi_rd$arvalid",
    "axi_rd$araddr",
    "axi_rd$arlen",
    "axi_rd$rready",
    "axi_wr$awvalid",
    "axi_wr$awaddr",
    "axi_wr$awlen",
    "axi_wr$wvalid",
    "axi_wr$wdata",
    "axi_wr$wlast",
    "axi_wr$bready",
    "dma_error",
    "cmd_consumer",
    "evt_producer",
];

fn hex(fields: &[(u64, usize)]) -> String {
    fields.iter().map(|&(v, b)| format!("{v:0w$x}", w = b.div_ceil(4))).collect::<Vec<_>>().join(" ")
}

fn trace_line(u: &Card) -> (String, String) {
    let b = |x: bool| (x as u64, 1);
    let (r, w) = (&u.axi_rd, &u.axi_wr);
    let i = hex(&[
        b(u.reset.val()),
        b(u.bar_awvalid.val()),
        (u.bar_awaddr.val().to_u64(), 32),
        b(u.bar_wvalid.val()),
        (u.bar_wdata.val().to_u64(), 32),
        (u.bar_wstrb.val().to_u64(), 4),
        b(u.bar_bready.val()),
        b(u.bar_arvalid.val()),
        (u.bar_araddr.val().to_u64(), 32),
        b(u.bar_rready.val()),
        b(r.arready.val()),
        b(r.rvalid.val()),
        (r.rdata.val().to_u64(), 64),
        (r.rresp.val().to_u64(), 2),
        b(r.rlast.val()),
        b(w.awready.val()),
        b(w.wready.val()),
        b(w.bvalid.val()),
        (w.bresp.val().to_u64(), 2),
    ]);
    let o = hex(&[
        b(u.bar_awready.val()),
        b(u.bar_wready.val()),
        b(u.bar_bvalid.val()),
        (u.bar_bresp.val().to_u64(), 2),
        b(u.bar_arready.val()),
        b(u.bar_rvalid.val()),
        (u.bar_rdata.val().to_u64(), 32),
        (u.bar_rresp.val().to_u64(), 2),
        b(r.arvalid.val()),
        (r.araddr.val().to_u64(), 64),
        (r.arlen.val().to_u64(), 8),
        b(r.rready.val()),
        b(w.awvalid.val()),
        (w.awaddr.val().to_u64(), 64),
        (w.awlen.val().to_u64(), 8),
        b(w.wvalid.val()),
        (w.wdata.val().to_u64(), 64),
        b(w.wlast.val()),
        b(w.bready.val()),
        b(u.dma_error.val()),
        (u.cmd_consumer.val().to_u64(), 32),
        (u.evt_producer.val().to_u64(), 32),
    ]);
    (i, o)
}

/// The simulated card and the host memory it serves.
pub struct CardSim {
    /// The card.
    pub uut: Box<Card>,
    /// Host memory: the command ring at [`HOST_BASE`], then the event ring.
    pub mem: AxiMemory,
    cmd_entries: u32,
    evt_entries: u32,
    rng: u64,
    bar: VecDeque<Bar>,
    bar_state: (bool, bool, bool),
    reads: Vec<(u32, u32)>,
    /// Cycles run.
    pub cycle: u64,
    /// When set, every cycle's inputs and outputs are recorded here.
    pub trace: Option<CardTrace>,
    posted: u32,
    rung: u32,
    seen: u32,
    published: u32,
    busy_until: u64,
}

impl CardSim {
    /// A card after a hard reset, with rings of `cmd_entries` and `evt_entries` (powers of two)
    /// in host memory served with `timing`; `seed` drives the host's and the memory's timing.
    pub fn new(cmd_entries: u32, evt_entries: u32, timing: AxiTiming, seed: u64) -> Self {
        Self::build(cmd_entries, evt_entries, timing, seed, false)
    }

    /// As [`new`](Self::new), recording every cycle from the first one in [`CardSim::trace`].
    pub fn new_traced(cmd_entries: u32, evt_entries: u32, timing: AxiTiming, seed: u64) -> Self {
        Self::build(cmd_entries, evt_entries, timing, seed, true)
    }

    fn build(cmd_entries: u32, evt_entries: u32, timing: AxiTiming, seed: u64, traced: bool) -> Self {
        assert!(cmd_entries.is_power_of_two() && evt_entries.is_power_of_two());
        let len = (cmd_entries + evt_entries) as usize * RING_ENTRY_BYTES;
        let mut uut = Box::new(Card::new(0x1234_5678));
        uut.connect_all();
        let mut s = CardSim {
            uut,
            mem: AxiMemory::new(HOST_BASE, len, timing, seed ^ 0x5EED),
            cmd_entries,
            evt_entries,
            rng: seed | 1,
            bar: VecDeque::new(),
            bar_state: (false, false, false),
            reads: vec![],
            cycle: 0,
            trace: traced.then(CardTrace::default),
            posted: 0,
            rung: 0,
            seen: 0,
            published: 0,
            busy_until: 0,
        };
        s.uut.reset.next = true;
        s.step();
        s.step();
        s.uut.reset.next = false;
        s
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 24) % 100 < percent
    }

    /// Bus address of the event ring.
    pub fn evt_base(&self) -> u64 {
        HOST_BASE + self.cmd_entries as u64 * RING_ENTRY_BYTES as u64
    }

    /// One clock cycle: the BAR access at the head of the queue, the memory's half of the DMA.
    pub fn step(&mut self) {
        let (mut awv, mut wv, mut arv) = (false, false, false);
        let (aw_done, w_done, ar_done) = self.bar_state;
        let head = self.bar.front().copied();
        match head {
            Some(Bar::Write(off, v)) => {
                awv = !aw_done && self.chance(75);
                wv = !w_done && self.chance(75);
                self.uut.bar_awaddr.next = (off as u64).into();
                self.uut.bar_wdata.next = (v as u64).into();
                self.uut.bar_wstrb.next = 0xF.into();
            }
            Some(Bar::Read(off)) => {
                arv = !ar_done;
                self.uut.bar_araddr.next = (off as u64).into();
            }
            None => {}
        }
        let u = &mut self.uut;
        u.bar_awvalid.next = awv;
        u.bar_wvalid.next = wv;
        u.bar_arvalid.next = arv;
        u.bar_bready.next = true;
        u.bar_rready.next = true;
        u.clock.next = Clock { clk: false };
        self.mem.drive_read(&mut u.axi_rd);
        self.mem.drive_write(&mut u.axi_wr);
        assert!(simulate(&mut **u, 2000), "the card's logic did not settle");
        if let Some(t) = self.trace.as_mut() {
            let (i, o) = trace_line(u);
            t.inputs.push(i);
            t.outputs.push(o);
        }
        self.mem.sample_read(&u.axi_rd);
        self.mem.sample_write(&u.axi_wr);
        let mut st = (aw_done || (awv && u.bar_awready.val()), w_done || (wv && u.bar_wready.val()), ar_done);
        st.2 |= arv && u.bar_arready.val();
        if u.bar_bvalid.val() {
            assert_eq!(u.bar_bresp.val().to_u64(), 0, "a full-word BAR write is answered OKAY");
            self.bar.pop_front();
            st = (false, false, false);
        }
        if u.bar_rvalid.val() {
            let Some(Bar::Read(off)) = self.bar.pop_front() else { panic!("R without a read") };
            self.reads.push((off, u.bar_rdata.val().to_u32()));
            st = (false, false, false);
        }
        self.bar_state = st;
        u.clock.next = Clock { clk: true };
        assert!(simulate(&mut **u, 2000), "the card's logic did not settle");
        self.mem.clock();
        self.cycle += 1;
    }

    fn settle_bar(&mut self) {
        let limit = self.cycle + 10_000;
        while !self.bar.is_empty() {
            assert!(self.cycle < limit, "a BAR access was not answered");
            self.step();
        }
    }

    /// Writes a register (and waits for the response).
    pub fn write_reg(&mut self, off: u32, value: u32) {
        self.bar.push_back(Bar::Write(off, value));
        self.settle_bar();
    }

    /// Reads a register.
    pub fn read_reg(&mut self, off: u32) -> u32 {
        self.bar.push_back(Bar::Read(off));
        self.settle_bar();
        self.reads.pop().expect("the read's data").1
    }

    /// Bring-up as `CardLink::open` does it: identity, a scratch test, ring set-up, soft reset.
    pub fn bring_up(&mut self) -> Result<(), String> {
        let id = self.read_reg(offset::ID_TYPE);
        if id != TYPE_LIQSCAN {
            return Err(format!("ID_TYPE reads 0x{id:08x}"));
        }
        for pattern in [0xA5A5_0F0F, 0x5A5A_F0F0, 0] {
            self.write_reg(offset::SCRATCH, pattern);
            let back = self.read_reg(offset::SCRATCH);
            if back != pattern {
                return Err(format!("SCRATCH: wrote 0x{pattern:08x}, read 0x{back:08x}"));
            }
        }
        let evt = self.evt_base();
        for (off, v) in [
            (offset::CMD_RING_ENTRIES, self.cmd_entries),
            (offset::CMD_RING_ADDR_LO, HOST_BASE as u32),
            (offset::CMD_RING_ADDR_HI, (HOST_BASE >> 32) as u32),
            (offset::EVT_RING_ENTRIES, self.evt_entries),
            (offset::EVT_RING_ADDR_LO, evt as u32),
            (offset::EVT_RING_ADDR_HI, (evt >> 32) as u32),
            (offset::CONTROL, CONTROL_SOFT_RESET),
        ] {
            self.write_reg(off, v);
        }
        for _ in 0..4 {
            self.step();
        }
        Ok(())
    }

    fn words_at(&self, addr: u64) -> [u32; RING_ENTRY_WORDS] {
        let o = (addr - HOST_BASE) as usize;
        std::array::from_fn(|i| {
            u32::from_le_bytes(self.mem.mem[o + 4 * i..o + 4 * i + 4].try_into().unwrap())
        })
    }

    /// Posts `entries` (the ring kept at most full by the card's consumer index), rings the
    /// doorbell now and then, publishes `EVT_CONSUMER` late, and collects events until every
    /// entry is posted and `until` says the events read are complete. Returns them as the host
    /// read them (phase and sequence number included).
    pub fn run_until(
        &mut self,
        entries: &[[u32; RING_ENTRY_WORDS]],
        until: impl Fn(&[[u32; RING_ENTRY_WORDS]]) -> bool,
        max_cycles: u64,
    ) -> Vec<[u32; RING_ENTRY_WORDS]> {
        let mut got = vec![];
        let start = self.posted;
        let limit = self.cycle + max_cycles;
        while ((self.posted - start) as usize) < entries.len() || !until(&got) {
            assert!(
                self.cycle < limit,
                "the card stopped: {} events, {} entries posted",
                got.len(),
                self.posted
            );
            let consumer = self.uut.cmd_consumer.val().to_u32();
            let next = (self.posted - start) as usize;
            if next < entries.len() && self.posted.wrapping_sub(consumer) < self.cmd_entries {
                let o = (self.posted % self.cmd_entries) as usize * RING_ENTRY_BYTES;
                for (i, x) in entries[next].iter().enumerate() {
                    self.mem.mem[o + 4 * i..o + 4 * i + 4].copy_from_slice(&x.to_le_bytes());
                }
                self.posted += 1;
            }
            if self.bar.is_empty() && self.rung != self.posted && self.chance(33) {
                self.bar.push_back(Bar::Write(offset::CMD_DOORBELL, self.posted));
                self.rung = self.posted;
            }
            // Poll the next event slot by its phase bit; now and then the host is busy.
            if self.cycle >= self.busy_until {
                let slot = self.evt_base() + (self.seen % self.evt_entries) as u64 * RING_ENTRY_BYTES as u64;
                let w = self.words_at(slot);
                let phase = (self.seen / self.evt_entries).is_multiple_of(2);
                if (w[0] & PHASE_BIT != 0) == phase {
                    got.push(w);
                    self.seen += 1;
                }
                if self.chance(2) {
                    self.busy_until = self.cycle + (self.rng >> 40) % 200;
                }
            }
            if self.bar.is_empty() && self.published != self.seen && self.chance(25) {
                self.bar.push_back(Bar::Write(offset::EVT_CONSUMER, self.seen));
                self.published = self.seen;
            }
            self.step();
        }
        got
    }

    /// As [`run_until`](Self::run_until), the entries' last one a fence: until its
    /// `FenceDone` is read.
    pub fn run(&mut self, entries: &[[u32; RING_ENTRY_WORDS]]) -> Vec<[u32; RING_ENTRY_WORDS]> {
        let last_seq = entries.last().map(|w| w[1]);
        self.run_until(
            entries,
            |got| {
                got.last()
                    .is_some_and(|w| w[0] & 0xFF == evt_kind::FENCE_DONE as u32 && Some(w[2]) == last_seq)
            },
            1_000_000,
        )
    }
}
