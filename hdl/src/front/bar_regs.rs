//! BAR register block: the host's register reads and writes (an AXI4-Lite slave, as the PCIe
//! DMA blocks' BAR/user ports are) onto the ring registers held here and the scan core's own
//! register port.
//!
//! ```text
//!  AW+W ──> CMD_RING_ENTRIES, CMD_RING_ADDR_*, CMD_DOORBELL (pulse), EVT_RING_ADDR_*,
//!           EVT_RING_ENTRIES, EVT_CONSUMER: held here, driving the reader and the writer
//!        └> every other offset below 0x1000: forwarded to the core (reg_write), CONTROL bit 0
//!           also pulses `soft_reset` for the front end ──> B (OKAY)
//!  AR ──> core reg_addr, READ_LATENCY cycles ──> R: a ring register's value, or ERRORS |
//!         front_errors, or the core's reg_rdata
//! ```
//!
//! Offsets are [`crate::abi::regs::offset`]'s. The core's register block keeps the identity,
//! scratch, configuration, status, sticky errors and statistics; this block keeps what only
//! the ring engines use. `ERRORS` reads the core's sticky bits OR the decoder's
//! (`front_errors`: BAD_ENTRY, SEQ_GAP, range errors), which clear on a soft reset only
//! (a write of 1s clears the core's). Writes at or above 0x1000 (the emulated card's command
//! ring window) are acknowledged and dropped: the RTL card fetches its command ring from host
//! memory at `CMD_RING_ADDR_*`. A write needs all four byte strobes (a partial one is
//! acknowledged with SLVERR and changes nothing).
//!
//! Cycle behaviour: one access at a time. A write is taken when AW and W are both valid (both
//! ready in the same cycle) into registers, decoded in the next cycle (Write: the registers
//! written load at its end), and its response follows (AW/W to B: 2 cycles). A read is taken from AR,
//! the core's register port is addressed, its data taken [`READ_LATENCY`] cycles later, then R
//! (AR to R: 4 cycles). The read's address is decoded while the core answers, in two register
//! stages: in Read1 into one flag per offset (`rh_*`), in Read2 into the ring register's value
//! (`rpre`, 0 for any other offset) and whether the core's data and the decoder's errors are
//! ORed in, so no 32-bit compare sits before a select in one cycle. A write decodes its offset
//! as it is taken (its low 12 bits against each offset, all in parallel, the upper bits against
//! 0, the strobes) into one flag register per register it writes (`wk_*`), set for the Write
//! cycle only, so in Write each register's enable is a flop.
//!
//! Inputs: `clock`, `reset` (synchronous: every register here to 0), the slave port
//! (`awvalid`, `awaddr`, `wvalid`, `wdata`, `wstrb`, `bready`, `arvalid`, `araddr`, `rready`),
//! `core_rdata` (the core's `reg_rdata`), `front_errors`.
//!
//! Outputs: `awready`, `wready`, `bvalid`, `bresp`, `arready`, `rvalid`, `rdata`, `rresp`; to
//! the core `core_addr`, `core_write`, `core_wdata`; `soft_reset` (pulse); to the reader
//! `cmd_ring_base`, `cmd_ring_mask`, `doorbell_write`, `doorbell`; to the writer
//! `evt_ring_base`, `evt_ring_mask`, `evt_consumer`. Golden model: [`BarModel`].

use crate::abi::regs::{CONTROL_SOFT_RESET, offset};
use crate::core::regs::{READ_LATENCY, REG_ADDR_BITS};
use rust_hdl::prelude::*;

pub(crate) const O_CMD_ENTRIES: u64 = offset::CMD_RING_ENTRIES as u64;
pub(crate) const O_CMD_ADDR_LO: u64 = offset::CMD_RING_ADDR_LO as u64;
pub(crate) const O_CMD_ADDR_HI: u64 = offset::CMD_RING_ADDR_HI as u64;
pub(crate) const O_DOORBELL: u64 = offset::CMD_DOORBELL as u64;
pub(crate) const O_EVT_ADDR_LO: u64 = offset::EVT_RING_ADDR_LO as u64;
pub(crate) const O_EVT_ADDR_HI: u64 = offset::EVT_RING_ADDR_HI as u64;
pub(crate) const O_EVT_ENTRIES: u64 = offset::EVT_RING_ENTRIES as u64;
pub(crate) const O_EVT_CONSUMER: u64 = offset::EVT_CONSUMER as u64;
pub(crate) const O_CONTROL: u64 = offset::CONTROL as u64;
pub(crate) const O_ERRORS: u64 = offset::ERRORS as u64;
pub(crate) const REG_SPACE: u64 = 1 << REG_ADDR_BITS;
const _: () = assert!(READ_LATENCY == 2, "the read addresses the core in Read1, takes its data in Read3");
const _: () = assert!(REG_ADDR_BITS == 12, "the decode splits offsets into bits 11:0 and 31:12");
const _: () = assert!(CONTROL_SOFT_RESET == 1, "the write decode takes the soft reset from bit 0");

/// Golden model of [`BarRegs`]: the ring registers and what a read returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BarModel {
    /// CMD_RING_ENTRIES.
    pub cmd_entries: u32,
    /// CMD_RING_ADDR_HI:LO.
    pub cmd_addr: u64,
    /// Last CMD_DOORBELL written.
    pub doorbell: u32,
    /// EVT_RING_ADDR_HI:LO.
    pub evt_addr: u64,
    /// EVT_RING_ENTRIES.
    pub evt_entries: u32,
    /// EVT_CONSUMER.
    pub evt_consumer: u32,
}

/// Where a write goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarWrite {
    /// A ring register held here (a doorbell also pulses `doorbell_write`).
    Ring,
    /// Forwarded to the core's register port; `true`: also a soft reset.
    Core(bool),
    /// Dropped (beyond the register space, or a partial write).
    Dropped,
}

impl BarModel {
    /// A full-word write of `v` at `off`.
    pub fn write(&mut self, off: u32, v: u32) -> BarWrite {
        let lo = |x: u64| (x & !0xFFFF_FFFF) | v as u64;
        let hi = |x: u64| (x & 0xFFFF_FFFF) | (v as u64) << 32;
        match off {
            offset::CMD_RING_ENTRIES => self.cmd_entries = v,
            offset::CMD_RING_ADDR_LO => self.cmd_addr = lo(self.cmd_addr),
            offset::CMD_RING_ADDR_HI => self.cmd_addr = hi(self.cmd_addr),
            offset::CMD_DOORBELL => self.doorbell = v,
            offset::EVT_RING_ADDR_LO => self.evt_addr = lo(self.evt_addr),
            offset::EVT_RING_ADDR_HI => self.evt_addr = hi(self.evt_addr),
            offset::EVT_RING_ENTRIES => self.evt_entries = v,
            offset::EVT_CONSUMER => self.evt_consumer = v,
            o if (o as u64) < REG_SPACE => {
                return BarWrite::Core(o == offset::CONTROL && v & CONTROL_SOFT_RESET != 0);
            }
            _ => return BarWrite::Dropped,
        }
        BarWrite::Ring
    }

    /// A read of `off`, given what the core's register port returns for it and the decoder's
    /// sticky errors.
    pub fn read(&self, off: u32, core: u32, front_errors: u32) -> u32 {
        match off {
            offset::CMD_RING_ENTRIES => self.cmd_entries,
            offset::CMD_RING_ADDR_LO => self.cmd_addr as u32,
            offset::CMD_RING_ADDR_HI => (self.cmd_addr >> 32) as u32,
            offset::EVT_RING_ADDR_LO => self.evt_addr as u32,
            offset::EVT_RING_ADDR_HI => (self.evt_addr >> 32) as u32,
            offset::EVT_RING_ENTRIES => self.evt_entries,
            offset::CMD_DOORBELL | offset::EVT_CONSUMER => 0,
            offset::ERRORS => core | front_errors,
            o if (o as u64) < REG_SPACE => core,
            _ => 0,
        }
    }
}

/// Register block state.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum BarState {
    /// Waiting for a write (AW and W) or a read (AR).
    Idle,
    /// Write taken into `wa`, `wd`, `wfull`: decoded this cycle, the registers load at its end.
    Write,
    /// Write response.
    Resp,
    /// Read: the core's register port addressed, first cycle.
    Read1,
    /// Read: second cycle.
    Read2,
    /// Read: third cycle, the core's data is there.
    Read3,
    /// Read data.
    Data,
}

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct BarRegs {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// Write address valid.
    pub awvalid: Signal<In, Bit>,
    /// Write address taken.
    pub awready: Signal<Out, Bit>,
    /// Byte offset in BAR 0.
    pub awaddr: Signal<In, Bits<32>>,
    /// Write data valid.
    pub wvalid: Signal<In, Bit>,
    /// Write data taken.
    pub wready: Signal<Out, Bit>,
    /// Write data.
    pub wdata: Signal<In, Bits<32>>,
    /// Byte strobes (all four needed).
    pub wstrb: Signal<In, Bits<4>>,
    /// Write response valid.
    pub bvalid: Signal<Out, Bit>,
    /// Write response taken.
    pub bready: Signal<In, Bit>,
    /// Write response: 0 OKAY, 2 SLVERR (partial write).
    pub bresp: Signal<Out, Bits<2>>,
    /// Read address valid.
    pub arvalid: Signal<In, Bit>,
    /// Read address taken.
    pub arready: Signal<Out, Bit>,
    /// Byte offset in BAR 0.
    pub araddr: Signal<In, Bits<32>>,
    /// Read data valid.
    pub rvalid: Signal<Out, Bit>,
    /// Read data taken.
    pub rready: Signal<In, Bit>,
    /// Read data.
    pub rdata: Signal<Out, Bits<32>>,
    /// Read response (always OKAY).
    pub rresp: Signal<Out, Bits<2>>,
    /// The core's register read data.
    pub core_rdata: Signal<In, Bits<32>>,
    /// The command decoder's sticky error bits.
    pub front_errors: Signal<In, Bits<32>>,
    /// The core's register address.
    pub core_addr: Signal<Out, Bits<REG_ADDR_BITS>>,
    /// The core's register write strobe.
    pub core_write: Signal<Out, Bit>,
    /// The core's register write data.
    pub core_wdata: Signal<Out, Bits<32>>,
    /// CONTROL bit 0 was written: soft reset of the front end (the core resets itself).
    pub soft_reset: Signal<Out, Bit>,
    /// Command ring base (host memory).
    pub cmd_ring_base: Signal<Out, Bits<64>>,
    /// Command ring entries - 1.
    pub cmd_ring_mask: Signal<Out, Bits<32>>,
    /// CMD_DOORBELL was written.
    pub doorbell_write: Signal<Out, Bit>,
    /// The value written.
    pub doorbell: Signal<Out, Bits<32>>,
    /// Event ring base (host memory).
    pub evt_ring_base: Signal<Out, Bits<64>>,
    /// Event ring entries - 1.
    pub evt_ring_mask: Signal<Out, Bits<32>>,
    /// EVT_CONSUMER.
    pub evt_consumer: Signal<Out, Bits<32>>,
    state: DFF<BarState>,
    cmd_entries: DFF<Bits<32>>,
    cmd_lo: DFF<Bits<32>>,
    cmd_hi: DFF<Bits<32>>,
    evt_entries: DFF<Bits<32>>,
    // !(entries - 1) of each ring, registered with the write (no decrement in the engines'
    // paths); kept inverted so that 0, the power-on and reset value, stands for entries = 0.
    cmd_nmask: DFF<Bits<32>>,
    evt_nmask: DFF<Bits<32>>,
    evt_lo: DFF<Bits<32>>,
    evt_hi: DFF<Bits<32>>,
    consumer: DFF<Bits<32>>,
    bell: DFF<Bits<32>>,
    bell_w: DFF<Bit>,
    soft_pulse: DFF<Bit>,
    resp: DFF<Bits<2>>,
    raddr: DFF<Bits<32>>,
    rval: DFF<Bits<32>>,
    // The read's decode, registered from `raddr` every cycle (it holds from Read1 to Read3, and
    // no write is taken meanwhile, so the ring registers hold too): the ring register's value
    // or 0, and whether the core's data and the decoder's errors go into the read data.
    rpre: DFF<Bits<32>>,
    r_core: DFF<Bit>,
    r_err: DFF<Bit>,
    // Its first stage: `raddr` is each offset (`rh_quiet`: CMD_DOORBELL or EVT_CONSUMER, which
    // read 0), or below REG_SPACE (`rh_space`); each offset's flag includes `rh_space`.
    rh_cmd_entries: DFF<Bit>,
    rh_cmd_lo: DFF<Bit>,
    rh_cmd_hi: DFF<Bit>,
    rh_evt_lo: DFF<Bit>,
    rh_evt_hi: DFF<Bit>,
    rh_evt_entries: DFF<Bit>,
    rh_quiet: DFF<Bit>,
    rh_errors: DFF<Bit>,
    rh_space: DFF<Bit>,
    // The write taken (the offset's low 12 bits, data, all four strobes set); the registers it
    // writes load at the end of Write, the next cycle, from `wd`. Forwarded to the core, `wa`
    // and `wd` are the core's address and data in the cycle after Write (they hold until the
    // next write is taken, in Idle).
    wa: DFF<Bits<REG_ADDR_BITS>>,
    wd: DFF<Bits<32>>,
    wfull: DFF<Bit>,
    // The write's decode, registered as AW and W are taken (one flag per register written,
    // `wk_fw` for a forwarded write, `wk_soft` for one that is also a soft reset): each is set
    // only in the cycle after a take, Write, so each register's enable is its flag's flop.
    wk_cmd_entries: DFF<Bit>,
    wk_cmd_lo: DFF<Bit>,
    wk_cmd_hi: DFF<Bit>,
    wk_bell: DFF<Bit>,
    wk_evt_lo: DFF<Bit>,
    wk_evt_hi: DFF<Bit>,
    wk_evt_entries: DFF<Bit>,
    wk_consumer: DFF<Bit>,
    wk_fw: DFF<Bit>,
    wk_soft: DFF<Bit>,
    // Forwarded write, registered (its address and data are `wa`, `wd`).
    fw: DFF<Bit>,
    take_w: Signal<Local, Bit>,
    // The write being taken: all four strobes set at an offset below REG_SPACE, its low 12
    // bits, and whether they are a ring register's.
    w_ok: Signal<Local, Bit>,
    w_off: Signal<Local, Bits<REG_ADDR_BITS>>,
    w_ring: Signal<Local, Bit>,
    r_off: Signal<Local, Bits<REG_ADDR_BITS>>,
    r_space: Signal<Local, Bit>,
    // The selected ring register, one term per register (0 unless its offset was read), ORed.
    v_cmd_entries: Signal<Local, Bits<32>>,
    v_cmd_lo: Signal<Local, Bits<32>>,
    v_cmd_hi: Signal<Local, Bits<32>>,
    v_evt_lo: Signal<Local, Bits<32>>,
    v_evt_hi: Signal<Local, Bits<32>>,
    v_evt_entries: Signal<Local, Bits<32>>,
}

impl Logic for BarRegs {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            cmd_entries,
            cmd_lo,
            cmd_hi,
            evt_entries,
            cmd_nmask,
            evt_nmask,
            evt_lo,
            evt_hi,
            consumer,
            bell,
            bell_w,
            soft_pulse,
            resp,
            raddr,
            rval,
            rpre,
            r_core,
            r_err,
            rh_cmd_entries,
            rh_cmd_lo,
            rh_cmd_hi,
            rh_evt_lo,
            rh_evt_hi,
            rh_evt_entries,
            rh_quiet,
            rh_errors,
            rh_space,
            fw,
            wa,
            wd,
            wfull,
            wk_cmd_entries,
            wk_cmd_lo,
            wk_cmd_hi,
            wk_bell,
            wk_evt_lo,
            wk_evt_hi,
            wk_evt_entries,
            wk_consumer,
            wk_fw,
            wk_soft
        );
        // The write's decode, taken into the `wk_*` flags with AW and W (in Idle): each offset a
        // compare of the low 12 bits, in parallel (the offsets are distinct), gated by `w_ok`;
        // any other offset below REG_SPACE goes to the core. The flags hold for Write only, and the
        // registers they enable load at its end (below).
        self.w_off.next = self.awaddr.val().get_bits::<REG_ADDR_BITS>(0);
        self.w_ok.next = (self.wstrb.val() == 0xF) & (self.awaddr.val().get_bits::<20>(12) == 0);
        self.w_ring.next = (self.w_off.val() == O_CMD_ENTRIES)
            | (self.w_off.val() == O_CMD_ADDR_LO)
            | (self.w_off.val() == O_CMD_ADDR_HI)
            | (self.w_off.val() == O_DOORBELL)
            | (self.w_off.val() == O_EVT_ADDR_LO)
            | (self.w_off.val() == O_EVT_ADDR_HI)
            | (self.w_off.val() == O_EVT_ENTRIES)
            | (self.w_off.val() == O_EVT_CONSUMER);
        self.take_w.next = (self.state.q.val() == BarState::Idle) & self.awvalid.val() & self.wvalid.val();
        self.awready.next = self.take_w.val();
        self.wready.next = self.take_w.val();
        self.arready.next = (self.state.q.val() == BarState::Idle) & !self.take_w.val();
        self.bvalid.next = self.state.q.val() == BarState::Resp;
        self.bresp.next = self.resp.q.val();
        self.rvalid.next = self.state.q.val() == BarState::Data;
        self.rdata.next = self.rval.q.val();
        self.rresp.next = 0.into();
        self.bell_w.d.next = false;
        self.soft_pulse.d.next = false;
        self.fw.d.next = false;
        self.wk_cmd_entries.d.next = false;
        self.wk_cmd_lo.d.next = false;
        self.wk_cmd_hi.d.next = false;
        self.wk_bell.d.next = false;
        self.wk_evt_lo.d.next = false;
        self.wk_evt_hi.d.next = false;
        self.wk_evt_entries.d.next = false;
        self.wk_consumer.d.next = false;
        self.wk_fw.d.next = false;
        self.wk_soft.d.next = false;
        match self.state.q.val() {
            BarState::Idle => {
                if self.take_w.val() {
                    self.wa.d.next = self.w_off.val();
                    self.wd.d.next = self.wdata.val();
                    self.wfull.d.next = self.wstrb.val() == 0xF;
                    self.wk_cmd_entries.d.next = self.w_ok.val() & (self.w_off.val() == O_CMD_ENTRIES);
                    self.wk_cmd_lo.d.next = self.w_ok.val() & (self.w_off.val() == O_CMD_ADDR_LO);
                    self.wk_cmd_hi.d.next = self.w_ok.val() & (self.w_off.val() == O_CMD_ADDR_HI);
                    self.wk_bell.d.next = self.w_ok.val() & (self.w_off.val() == O_DOORBELL);
                    self.wk_evt_lo.d.next = self.w_ok.val() & (self.w_off.val() == O_EVT_ADDR_LO);
                    self.wk_evt_hi.d.next = self.w_ok.val() & (self.w_off.val() == O_EVT_ADDR_HI);
                    self.wk_evt_entries.d.next = self.w_ok.val() & (self.w_off.val() == O_EVT_ENTRIES);
                    self.wk_consumer.d.next = self.w_ok.val() & (self.w_off.val() == O_EVT_CONSUMER);
                    self.wk_fw.d.next = self.w_ok.val() & !self.w_ring.val();
                    self.wk_soft.d.next =
                        self.w_ok.val() & (self.w_off.val() == O_CONTROL) & self.wdata.val().get_bit(0);
                    self.state.d.next = BarState::Write;
                } else if self.arvalid.val() {
                    self.raddr.d.next = self.araddr.val();
                    self.state.d.next = BarState::Read1;
                }
            }
            BarState::Write => {
                self.resp.d.next = 0.into();
                if !self.wfull.q.val() {
                    self.resp.d.next = 2.into();
                }
                self.state.d.next = BarState::Resp;
            }
            BarState::Resp => {
                if self.bready.val() {
                    self.state.d.next = BarState::Idle;
                }
            }
            BarState::Read1 => {
                self.state.d.next = BarState::Read2;
            }
            BarState::Read2 => {
                self.state.d.next = BarState::Read3;
            }
            BarState::Read3 => {
                // The core's data for the address presented in Read1, with the decode of
                // Read2 (see `rpre`).
                self.rval.d.next = self.rpre.q.val();
                if self.r_core.q.val() {
                    self.rval.d.next = self.rpre.q.val() | self.core_rdata.val();
                }
                if self.r_err.q.val() {
                    self.rval.d.next = self.core_rdata.val() | self.front_errors.val();
                }
                self.state.d.next = BarState::Data;
            }
            BarState::Data => {
                if self.rready.val() {
                    self.state.d.next = BarState::Idle;
                }
            }
        }
        if self.wk_cmd_entries.q.val() {
            self.cmd_entries.d.next = self.wd.q.val();
            self.cmd_nmask.d.next = !(self.wd.q.val() - 1);
        }
        if self.wk_cmd_lo.q.val() {
            self.cmd_lo.d.next = self.wd.q.val();
        }
        if self.wk_cmd_hi.q.val() {
            self.cmd_hi.d.next = self.wd.q.val();
        }
        if self.wk_bell.q.val() {
            self.bell.d.next = self.wd.q.val();
            self.bell_w.d.next = true;
        }
        if self.wk_evt_lo.q.val() {
            self.evt_lo.d.next = self.wd.q.val();
        }
        if self.wk_evt_hi.q.val() {
            self.evt_hi.d.next = self.wd.q.val();
        }
        if self.wk_evt_entries.q.val() {
            self.evt_entries.d.next = self.wd.q.val();
            self.evt_nmask.d.next = !(self.wd.q.val() - 1);
        }
        if self.wk_consumer.q.val() {
            self.consumer.d.next = self.wd.q.val();
        }
        if self.wk_fw.q.val() {
            self.fw.d.next = true;
        }
        if self.wk_soft.q.val() {
            self.soft_pulse.d.next = true;
        }
        // The read's decode, first stage (Read1: `raddr` holds from Read1 to Read3).
        self.r_off.next = self.raddr.q.val().get_bits::<REG_ADDR_BITS>(0);
        self.r_space.next = self.raddr.q.val().get_bits::<20>(12) == 0;
        self.rh_space.d.next = self.r_space.val();
        self.rh_cmd_entries.d.next = self.r_space.val() & (self.r_off.val() == O_CMD_ENTRIES);
        self.rh_cmd_lo.d.next = self.r_space.val() & (self.r_off.val() == O_CMD_ADDR_LO);
        self.rh_cmd_hi.d.next = self.r_space.val() & (self.r_off.val() == O_CMD_ADDR_HI);
        self.rh_evt_lo.d.next = self.r_space.val() & (self.r_off.val() == O_EVT_ADDR_LO);
        self.rh_evt_hi.d.next = self.r_space.val() & (self.r_off.val() == O_EVT_ADDR_HI);
        self.rh_evt_entries.d.next = self.r_space.val() & (self.r_off.val() == O_EVT_ENTRIES);
        self.rh_quiet.d.next =
            self.r_space.val() & ((self.r_off.val() == O_DOORBELL) | (self.r_off.val() == O_EVT_CONSUMER));
        self.rh_errors.d.next = self.r_space.val() & (self.r_off.val() == O_ERRORS);
        // Second stage (Read2): the flags are one-hot, so the ring value is an AND-OR.
        self.v_cmd_entries.next = 0.into();
        if self.rh_cmd_entries.q.val() {
            self.v_cmd_entries.next = self.cmd_entries.q.val();
        }
        self.v_cmd_lo.next = 0.into();
        if self.rh_cmd_lo.q.val() {
            self.v_cmd_lo.next = self.cmd_lo.q.val();
        }
        self.v_cmd_hi.next = 0.into();
        if self.rh_cmd_hi.q.val() {
            self.v_cmd_hi.next = self.cmd_hi.q.val();
        }
        self.v_evt_lo.next = 0.into();
        if self.rh_evt_lo.q.val() {
            self.v_evt_lo.next = self.evt_lo.q.val();
        }
        self.v_evt_hi.next = 0.into();
        if self.rh_evt_hi.q.val() {
            self.v_evt_hi.next = self.evt_hi.q.val();
        }
        self.v_evt_entries.next = 0.into();
        if self.rh_evt_entries.q.val() {
            self.v_evt_entries.next = self.evt_entries.q.val();
        }
        self.rpre.d.next = self.v_cmd_entries.val()
            | self.v_cmd_lo.val()
            | self.v_cmd_hi.val()
            | self.v_evt_lo.val()
            | self.v_evt_hi.val()
            | self.v_evt_entries.val();
        self.r_core.d.next = self.rh_space.q.val()
            & !(self.rh_cmd_entries.q.val()
                | self.rh_cmd_lo.q.val()
                | self.rh_cmd_hi.q.val()
                | self.rh_evt_lo.q.val()
                | self.rh_evt_hi.q.val()
                | self.rh_evt_entries.q.val()
                | self.rh_quiet.q.val());
        self.r_err.d.next = self.rh_errors.q.val();
        // The core's port: the forwarded write for one cycle, else the read address.
        self.core_addr.next = self.raddr.q.val().get_bits::<REG_ADDR_BITS>(0);
        self.core_write.next = self.fw.q.val();
        self.core_wdata.next = self.wd.q.val();
        if self.fw.q.val() {
            self.core_addr.next = self.wa.q.val();
        }
        self.soft_reset.next = self.soft_pulse.q.val();
        self.cmd_ring_base.next =
            bit_cast::<64, 32>(self.cmd_lo.q.val()) | (bit_cast::<64, 32>(self.cmd_hi.q.val()) << 32);
        self.cmd_ring_mask.next = !self.cmd_nmask.q.val();
        self.doorbell_write.next = self.bell_w.q.val();
        self.doorbell.next = self.bell.q.val();
        self.evt_ring_base.next =
            bit_cast::<64, 32>(self.evt_lo.q.val()) | (bit_cast::<64, 32>(self.evt_hi.q.val()) << 32);
        self.evt_ring_mask.next = !self.evt_nmask.q.val();
        self.evt_consumer.next = self.consumer.q.val();
        if self.reset.val() {
            self.state.d.next = BarState::Idle;
            self.cmd_entries.d.next = 0.into();
            self.cmd_nmask.d.next = 0.into();
            self.cmd_lo.d.next = 0.into();
            self.cmd_hi.d.next = 0.into();
            self.evt_entries.d.next = 0.into();
            self.evt_nmask.d.next = 0.into();
            self.evt_lo.d.next = 0.into();
            self.evt_hi.d.next = 0.into();
            self.consumer.d.next = 0.into();
            self.bell.d.next = 0.into();
            self.wk_cmd_entries.d.next = false;
            self.wk_cmd_lo.d.next = false;
            self.wk_cmd_hi.d.next = false;
            self.wk_bell.d.next = false;
            self.wk_evt_lo.d.next = false;
            self.wk_evt_hi.d.next = false;
            self.wk_evt_entries.d.next = false;
            self.wk_consumer.d.next = false;
            self.wk_fw.d.next = false;
            self.wk_soft.d.next = false;
        }
    }
}
