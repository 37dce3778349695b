//! Memory read master for one channel of LiteDRAM's native port, with its prefetch buffer.
//!
//! ```text
//!  start, base, beats ─> burst issuer ── cmd_valid/cmd_ready, cmd_addr (we = 0) ──> memory
//!                        (credit: a burst is issued only when the buffer has room for it)
//!  memory ── rdata_valid/rdata_ready, rdata_data ──> block RAM (2^FB x W) ─> 2-entry output queue
//!                                                                            ─> out_valid/out_ready, out_data
//! ```
//!
//! Why LiteDRAM's native port and not AXI4: the DDR3 controller placed for the OrangeCrab 85F
//! (`bitstreams/lfe5u-85f/ddr3/`) is LiteDRAM, whose user ports are native; a native read is
//! one command and one data beat, returned in order, so the master needs no IDs, no burst
//! length fields and no reorder logic. An AXI4 read (AR/R) maps onto it one AR per burst
//! (`ARLEN = BURST - 1`, in order), which is what an HBM controller's pseudo-channel takes.
//!
//! The master reads `beats` consecutive words from `base`, in bursts of [`BURST`] commands
//! issued back to back. Back-pressure is by credit: starting a burst reserves [`BURST`] entries
//! of the buffer (`used`), a word popped at `out` frees one, and a burst starts only when
//! `used + BURST <= 2^FB`. So every word the memory returns has a place, `rdata_ready` is high
//! whenever the master is not in reset, and a consumer that stops popping stops the commands.
//! `cmd_ready` comes late in the cycle (from the controller's bank machines through its
//! crossbar), so the issuer computes its next state (burst length, credit, address, commands
//! left, segment switch) twice from registers, as if no command issues and as if one does,
//! and the handshake only selects one of the two.
//!
//! The buffer is a block RAM ([`SyncRam`], registered read) in front of a two-entry register
//! queue that gives first-word fall-through: a read of the RAM is issued when it holds a word
//! and the queue (with the read in flight, less a pop this cycle) has room, so a consumer that
//! pops every cycle gets a word every cycle. A word is read from the RAM at the earliest in
//! the cycle after it was written, so no read meets a write to its address.
//!
//! **Segments** (the incremental scan): besides `start`'s run, the reader takes further runs
//! one at a time on `seg_valid`/`seg_addr`/`seg_beats` into a one-entry register (`seg_ready`
//! while it is empty). When the current run's last command issues (or no run is left) a
//! waiting segment becomes the current run: its address and count load in that cycle and its
//! first burst starts with it (room permitting), so its first command follows the last one of
//! the run before with no gap. A burst reserves as many buffer entries as it has commands, so
//! short segments do not leak credit.
//!
//! Golden model: the reader inside [`crate::extmem::StreamModel`], which steps the same
//! registers in plain Rust; `tests/ext_scan.rs` checks the reader alone (every word once, in
//! order) and, through the scan, cycle for cycle against that model.
//!
//! Inputs: `clock`, `reset` (synchronous), `start` (a pulse: load `base` and `beats`, empty the
//! buffer, drop a waiting segment), `base`, `beats`, `seg_valid`, `seg_addr`, `seg_beats`,
//! `cmd_ready`, `rdata_valid`, `rdata_data`, `out_ready`.
//!
//! Outputs: `cmd_valid`, `cmd_we` (always 0), `cmd_addr`, `rdata_ready`, `out_valid`,
//! `out_data`, `busy` (commands left to issue in the current run), `seg_ready`.

use crate::core::ram::SyncRam;
use rust_hdl::prelude::*;

/// Commands per burst (and the buffer entries a burst reserves).
pub const BURST: u64 = 8;

/// See the module docs. `W`: data width in bits; `FB`: log2 of the buffer's words.
#[derive(LogicBlock)]
pub struct MemReader<const W: usize, const FB: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// Load `base` and `beats`, empty the buffer.
    pub start: Signal<In, Bit>,
    /// First word address.
    pub base: Signal<In, Bits<32>>,
    /// Words to read.
    pub beats: Signal<In, Bits<32>>,
    /// A further run is offered (taken when `seg_ready`).
    pub seg_valid: Signal<In, Bit>,
    /// Its first word address.
    pub seg_addr: Signal<In, Bits<32>>,
    /// Its words (at least 1).
    pub seg_beats: Signal<In, Bits<32>>,
    /// No run is waiting: a segment offered now is taken.
    pub seg_ready: Signal<Out, Bit>,
    /// Native port: a command is offered.
    pub cmd_valid: Signal<Out, Bit>,
    /// Native port: the controller takes it.
    pub cmd_ready: Signal<In, Bit>,
    /// Native port: write (never).
    pub cmd_we: Signal<Out, Bit>,
    /// Native port: word address.
    pub cmd_addr: Signal<Out, Bits<32>>,
    /// Native port: a data word is returned.
    pub rdata_valid: Signal<In, Bit>,
    /// Native port: the master takes it.
    pub rdata_ready: Signal<Out, Bit>,
    /// Native port: the data word.
    pub rdata_data: Signal<In, Bits<W>>,
    /// A word is at the head of the buffer.
    pub out_valid: Signal<Out, Bit>,
    /// The head word.
    pub out_data: Signal<Out, Bits<W>>,
    /// The consumer takes the head word.
    pub out_ready: Signal<In, Bit>,
    /// Commands are left to issue.
    pub busy: Signal<Out, Bit>,
    ram: SyncRam<Bits<W>, FB>,
    addr: DFF<Bits<32>>,
    left: DFF<Bits<32>>,
    blen: DFF<Bits<8>>,
    used: DFF<Bits<16>>,
    wr: DFF<Bits<FB>>,
    rd: DFF<Bits<FB>>,
    n_ram: DFF<Bits<16>>,
    rv: DFF<Bit>,
    occ: DFF<Bits<2>>,
    q0: DFF<Bits<W>>,
    q1: DFF<Bits<W>>,
    nv: DFF<Bit>,
    na: DFF<Bits<32>>,
    nb: DFF<Bits<32>>,
    switch: Signal<Local, Bit>,
    room: Signal<Local, Bit>,
    la1: Signal<Local, Bits<32>>,
    nbl: Signal<Local, Bits<8>>,
    sw0: Signal<Local, Bit>,
    sw1: Signal<Local, Bit>,
    bl0: Signal<Local, Bits<8>>,
    bl1: Signal<Local, Bits<8>>,
    go0: Signal<Local, Bit>,
    go1: Signal<Local, Bit>,
    um: Signal<Local, Bits<16>>,
    blen0: Signal<Local, Bits<8>>,
    blen1: Signal<Local, Bits<8>>,
    used0: Signal<Local, Bits<16>>,
    used1: Signal<Local, Bits<16>>,
    addr0: Signal<Local, Bits<32>>,
    addr1: Signal<Local, Bits<32>>,
    left0: Signal<Local, Bits<32>>,
    left1: Signal<Local, Bits<32>>,
    issue: Signal<Local, Bit>,
    push: Signal<Local, Bit>,
    pop: Signal<Local, Bit>,
    rd_go: Signal<Local, Bit>,
    depth: Constant<Bits<16>>,
    burst: Constant<Bits<8>>,
}

impl<const W: usize, const FB: usize> Default for MemReader<W, FB> {
    fn default() -> Self {
        assert!((BURST as usize) <= 1 << FB && FB < 16, "the buffer holds at least one burst");
        Self {
            clock: Default::default(),
            reset: Default::default(),
            start: Default::default(),
            base: Default::default(),
            beats: Default::default(),
            seg_valid: Default::default(),
            seg_addr: Default::default(),
            seg_beats: Default::default(),
            seg_ready: Default::default(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            cmd_we: Default::default(),
            cmd_addr: Default::default(),
            rdata_valid: Default::default(),
            rdata_ready: Default::default(),
            rdata_data: Default::default(),
            out_valid: Default::default(),
            out_data: Default::default(),
            out_ready: Default::default(),
            busy: Default::default(),
            ram: Default::default(),
            addr: Default::default(),
            left: Default::default(),
            blen: Default::default(),
            used: Default::default(),
            wr: Default::default(),
            rd: Default::default(),
            n_ram: Default::default(),
            rv: Default::default(),
            occ: Default::default(),
            q0: Default::default(),
            q1: Default::default(),
            nv: Default::default(),
            na: Default::default(),
            nb: Default::default(),
            switch: Default::default(),
            room: Default::default(),
            la1: Default::default(),
            nbl: Default::default(),
            sw0: Default::default(),
            sw1: Default::default(),
            bl0: Default::default(),
            bl1: Default::default(),
            go0: Default::default(),
            go1: Default::default(),
            um: Default::default(),
            blen0: Default::default(),
            blen1: Default::default(),
            used0: Default::default(),
            used1: Default::default(),
            addr0: Default::default(),
            addr1: Default::default(),
            left0: Default::default(),
            left1: Default::default(),
            issue: Default::default(),
            push: Default::default(),
            pop: Default::default(),
            rd_go: Default::default(),
            depth: Constant::new(((1u64 << FB) - BURST).into()),
            burst: Constant::new(BURST.into()),
        }
    }
}

impl<const W: usize, const FB: usize> Logic for MemReader<W, FB> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, addr, left, blen, used, wr, rd, n_ram, rv, occ, q0, q1, nv, na, nb);
        clock!(self, clock, ram);
        // ---- Issuer: bursts while the buffer has room for one more. ----
        self.room.next = self.used.q.val() <= self.depth.val();
        self.cmd_valid.next = self.blen.q.val() != 0;
        self.cmd_we.next = false;
        self.cmd_addr.next = self.addr.q.val();
        self.issue.next = (self.blen.q.val() != 0) & self.cmd_ready.val();
        self.busy.next = self.left.q.val() != 0;
        self.pop.next = self.out_ready.val() & (self.occ.q.val() != 0);
        // A burst starts when none is under way or in its last command, and reserves as many
        // entries as it has commands (BURST, or fewer at the end of a run). `cmd_ready` comes
        // late (from the controller's bank machines through its crossbar), so the next
        // `blen`, `used`, `addr` and `left` are computed twice from registers, as if no command
        // issues this cycle (`*0`: `left` stays) and as if one does (`*1`: `left - 1`), and
        // `issue` only selects between the two.
        self.la1.next = self.left.q.val() - 1;
        self.nbl.next = self.burst.val();
        if self.nb.q.val() < bit_cast::<32, 8>(self.burst.val()) {
            self.nbl.next = self.nb.q.val().get_bits::<8>(0);
        }
        // A waiting segment becomes the run when the run has no command left after this cycle.
        self.sw0.next = self.nv.q.val() & (self.left.q.val() == 0);
        self.sw1.next = self.nv.q.val() & (self.la1.val() == 0);
        self.bl0.next = self.burst.val();
        if self.left.q.val() < bit_cast::<32, 8>(self.burst.val()) {
            self.bl0.next = self.left.q.val().get_bits::<8>(0);
        }
        if self.sw0.val() {
            self.bl0.next = self.nbl.val();
        }
        self.bl1.next = self.burst.val();
        if self.la1.val() < bit_cast::<32, 8>(self.burst.val()) {
            self.bl1.next = self.la1.val().get_bits::<8>(0);
        }
        if self.sw1.val() {
            self.bl1.next = self.nbl.val();
        }
        // No command issues: a burst starts if none is under way; one issues: if it was the
        // burst's last.
        self.go0.next =
            (self.blen.q.val() == 0) & self.room.val() & ((self.left.q.val() != 0) | self.sw0.val());
        self.go1.next = (self.blen.q.val() == 1) & self.room.val() & ((self.la1.val() != 0) | self.sw1.val());
        self.um.next = self.used.q.val() - bit_cast::<16, 1>(self.pop.val().into());
        self.blen0.next = self.blen.q.val();
        self.used0.next = self.um.val();
        if self.go0.val() {
            self.blen0.next = self.bl0.val();
            self.used0.next = self.used.q.val() + bit_cast::<16, 8>(self.bl0.val())
                - bit_cast::<16, 1>(self.pop.val().into());
        }
        self.blen1.next = self.blen.q.val() - 1;
        self.used1.next = self.um.val();
        if self.go1.val() {
            self.blen1.next = self.bl1.val();
            self.used1.next = self.used.q.val() + bit_cast::<16, 8>(self.bl1.val())
                - bit_cast::<16, 1>(self.pop.val().into());
        }
        self.addr0.next = self.addr.q.val();
        self.left0.next = self.left.q.val();
        if self.sw0.val() {
            self.addr0.next = self.na.q.val();
            self.left0.next = self.nb.q.val();
        }
        self.addr1.next = self.addr.q.val() + 1;
        self.left1.next = self.la1.val();
        if self.sw1.val() {
            self.addr1.next = self.na.q.val();
            self.left1.next = self.nb.q.val();
        }
        self.switch.next = self.sw0.val();
        self.blen.d.next = self.blen0.val();
        self.used.d.next = self.used0.val();
        self.addr.d.next = self.addr0.val();
        self.left.d.next = self.left0.val();
        if self.issue.val() {
            self.switch.next = self.sw1.val();
            self.blen.d.next = self.blen1.val();
            self.used.d.next = self.used1.val();
            self.addr.d.next = self.addr1.val();
            self.left.d.next = self.left1.val();
        }
        // Segments: one waits in (nv, na, nb) until `switch` (above) makes it the run.
        self.seg_ready.next = !self.nv.q.val();
        if self.seg_valid.val() & !self.nv.q.val() {
            self.nv.d.next = true;
            self.na.d.next = self.seg_addr.val();
            self.nb.d.next = self.seg_beats.val();
        }
        if self.switch.val() {
            self.nv.d.next = false;
        }
        // ---- Buffer: block RAM, then the two-entry output queue. ----
        self.rdata_ready.next = !self.reset.val();
        self.push.next = self.rdata_valid.val() & !self.reset.val();
        self.ram.write_enable.next = self.push.val();
        self.ram.write_address.next = self.wr.q.val();
        self.ram.write_data.next = self.rdata_data.val();
        self.ram.read_address.next = self.rd.q.val();
        // Read the RAM when it holds a word and the queue has room for it after this cycle.
        self.rd_go.next = (self.n_ram.q.val() != 0)
            & ((bit_cast::<3, 2>(self.occ.q.val()) + bit_cast::<3, 1>(self.rv.q.val().into()))
                < (bit_cast::<3, 1>(self.pop.val().into()) + 2));
        if self.push.val() {
            self.wr.d.next = self.wr.q.val() + 1;
        }
        if self.rd_go.val() {
            self.rd.d.next = self.rd.q.val() + 1;
        }
        self.n_ram.d.next = self.n_ram.q.val() + bit_cast::<16, 1>(self.push.val().into())
            - bit_cast::<16, 1>(self.rd_go.val().into());
        self.rv.d.next = self.rd_go.val();
        // Queue: drop the head on a pop, append the word read last cycle.
        self.occ.d.next = self.occ.q.val() + bit_cast::<2, 1>(self.rv.q.val().into())
            - bit_cast::<2, 1>(self.pop.val().into());
        if self.pop.val() & (self.occ.q.val() == 2) {
            self.q0.d.next = self.q1.q.val();
        }
        if self.rv.q.val() {
            if (self.occ.q.val() == 0) | ((self.occ.q.val() == 1) & self.pop.val()) {
                self.q0.d.next = self.ram.read_data.val();
            } else {
                self.q1.d.next = self.ram.read_data.val();
            }
        }
        self.out_valid.next = self.occ.q.val() != 0;
        self.out_data.next = self.q0.q.val();
        if self.start.val() | self.reset.val() {
            self.addr.d.next = self.base.val();
            self.left.d.next = self.beats.val();
            self.blen.d.next = 0.into();
            self.used.d.next = 0.into();
            self.wr.d.next = 0.into();
            self.rd.d.next = 0.into();
            self.n_ram.d.next = 0.into();
            self.rv.d.next = false;
            self.occ.d.next = 0.into();
            self.nv.d.next = false;
        }
        if self.reset.val() {
            self.left.d.next = 0.into();
        }
    }
}
