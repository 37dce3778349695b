//! The register block: identity, scratch, configuration, status, sticky errors, statistics.
//!
//! ```text
//!  reg_addr ─> decode (offsets from abi::regs) ─> reg_rdata (registered, one cycle later)
//!  reg_write + reg_wdata ─> SCRATCH, ERRORS (write 1 to clear), CONTROL (soft reset pulse)
//!  err_set, inc_* pulses from the core ─> sticky ERRORS, STAT_* counters
//! ```
//!
//! Offsets and identity values come from [`crate::abi::regs`]; the counters wrap at 2^32.
//! Golden model: [`RegModel`].
//!
//! Inputs: `clock`; `reset` (synchronous: clears scratch, errors and counters); `reg_addr`
//! (byte offset); `reg_write`, `reg_wdata`; `err_set` (error bits to make sticky);
//! `inc_commands`, `inc_scans`, `inc_words`, `busy` (count pulses); `active_accounts`,
//! `active_slots`, `events_pending` (status values).
//!
//! Outputs: `reg_rdata` (value at the address of the previous cycle), `soft_reset` (one-cycle
//! pulse after a write of `CONTROL` bit 0).

use crate::abi::config::CONFIG;
use crate::abi::regs::{self, offset};
use rust_hdl::prelude::*;

/// Address bits of the register block (byte offsets below 4096).
pub const REG_ADDR_BITS: usize = 12;

/// Golden model of the register block's software-visible behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegModel {
    /// Scratch register.
    pub scratch: u32,
    /// Sticky errors.
    pub errors: u32,
    /// Build id.
    pub build_id: u32,
}

impl RegModel {
    /// A read of `offset` (counters and status excluded: they come from the core model).
    pub fn read(&self, off: u32) -> Option<u32> {
        match off {
            offset::SCRATCH => Some(self.scratch),
            offset::ERRORS => Some(self.errors),
            offset::BUILD_ID => Some(self.build_id),
            offset::CONTROL => Some(0),
            _ => regs::by_offset(off)
                .filter(|r| {
                    r.access == regs::Access::Ro && r.name.starts_with("ID") || r.name.starts_with("CONFIG")
                })
                .map(|r| r.reset),
        }
    }
    /// A write.
    pub fn write(&mut self, off: u32, v: u32) {
        match off {
            offset::SCRATCH => self.scratch = v,
            offset::ERRORS => self.errors &= !v,
            _ => {}
        }
    }
}

macro_rules! c12 {
    ($v:expr) => {
        Constant::new(($v as u64).into())
    };
}

/// See the module docs.
#[derive(LogicBlock)]
pub struct RegBlock {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// Byte offset.
    pub reg_addr: Signal<In, Bits<REG_ADDR_BITS>>,
    /// Write strobe.
    pub reg_write: Signal<In, Bit>,
    /// Write data.
    pub reg_wdata: Signal<In, Bits<32>>,
    /// Read data (registered).
    pub reg_rdata: Signal<Out, Bits<32>>,
    /// Error bits to set.
    pub err_set: Signal<In, Bits<16>>,
    /// A command was accepted.
    pub inc_commands: Signal<In, Bit>,
    /// A scan completed.
    pub inc_scans: Signal<In, Bit>,
    /// A bitmap word was produced.
    pub inc_words: Signal<In, Bit>,
    /// The sequencer is busy.
    pub busy: Signal<In, Bit>,
    /// Active accounts.
    pub active_accounts: Signal<In, Bits<16>>,
    /// Active slots.
    pub active_slots: Signal<In, Bits<8>>,
    /// Bitmap words pending.
    pub events_pending: Signal<In, Bit>,
    /// Soft reset pulse.
    pub soft_reset: Signal<Out, Bit>,
    scratch: DFF<Bits<32>>,
    errors: DFF<Bits<16>>,
    n_commands: DFF<Bits<32>>,
    n_scans: DFF<Bits<32>>,
    n_words: DFF<Bits<32>>,
    n_busy: DFF<Bits<32>>,
    rdata: DFF<Bits<32>>,
    pulse: DFF<Bit>,
    o_type: Constant<Bits<REG_ADDR_BITS>>,
    o_version: Constant<Bits<REG_ADDR_BITS>>,
    o_build: Constant<Bits<REG_ADDR_BITS>>,
    o_scratch: Constant<Bits<REG_ADDR_BITS>>,
    o_lanes: Constant<Bits<REG_ADDR_BITS>>,
    o_accounts: Constant<Bits<REG_ADDR_BITS>>,
    o_assets: Constant<Bits<REG_ADDR_BITS>>,
    o_slots: Constant<Bits<REG_ADDR_BITS>>,
    o_control: Constant<Bits<REG_ADDR_BITS>>,
    o_status: Constant<Bits<REG_ADDR_BITS>>,
    o_errors: Constant<Bits<REG_ADDR_BITS>>,
    o_commands: Constant<Bits<REG_ADDR_BITS>>,
    o_scans: Constant<Bits<REG_ADDR_BITS>>,
    o_words: Constant<Bits<REG_ADDR_BITS>>,
    o_busy: Constant<Bits<REG_ADDR_BITS>>,
    o_active_accounts: Constant<Bits<REG_ADDR_BITS>>,
    o_active_slots: Constant<Bits<REG_ADDR_BITS>>,
    v_type: Constant<Bits<32>>,
    v_version: Constant<Bits<32>>,
    v_build: Constant<Bits<32>>,
    v_lanes: Constant<Bits<32>>,
    v_accounts: Constant<Bits<32>>,
    v_assets: Constant<Bits<32>>,
    v_slots: Constant<Bits<32>>,
}

impl RegBlock {
    /// A register block reporting `build_id`.
    pub fn new(build_id: u32) -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            reg_addr: Default::default(),
            reg_write: Default::default(),
            reg_wdata: Default::default(),
            reg_rdata: Default::default(),
            err_set: Default::default(),
            inc_commands: Default::default(),
            inc_scans: Default::default(),
            inc_words: Default::default(),
            busy: Default::default(),
            active_accounts: Default::default(),
            active_slots: Default::default(),
            events_pending: Default::default(),
            soft_reset: Default::default(),
            scratch: Default::default(),
            errors: Default::default(),
            n_commands: Default::default(),
            n_scans: Default::default(),
            n_words: Default::default(),
            n_busy: Default::default(),
            rdata: Default::default(),
            pulse: Default::default(),
            o_type: c12!(offset::ID_TYPE),
            o_version: c12!(offset::ID_VERSION),
            o_build: c12!(offset::BUILD_ID),
            o_scratch: c12!(offset::SCRATCH),
            o_lanes: c12!(offset::CONFIG_LANES),
            o_accounts: c12!(offset::CONFIG_ACCOUNTS),
            o_assets: c12!(offset::CONFIG_ASSETS),
            o_slots: c12!(offset::CONFIG_TERM_SLOTS),
            o_control: c12!(offset::CONTROL),
            o_status: c12!(offset::STATUS),
            o_errors: c12!(offset::ERRORS),
            o_commands: c12!(offset::STAT_COMMANDS),
            o_scans: c12!(offset::STAT_SCANS),
            o_words: c12!(offset::STAT_WORDS),
            o_busy: c12!(offset::STAT_BUSY_CYCLES),
            o_active_accounts: c12!(offset::ACTIVE_ACCOUNTS),
            o_active_slots: c12!(offset::ACTIVE_SLOTS),
            v_type: c12!(regs::TYPE_LIQSCAN),
            v_version: c12!(regs::VERSION),
            v_build: c12!(build_id),
            v_lanes: c12!(CONFIG.lanes),
            v_accounts: c12!(CONFIG.accounts),
            v_assets: c12!(CONFIG.assets),
            v_slots: c12!(CONFIG.term_slots),
        }
    }
}

impl Logic for RegBlock {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, scratch, errors, n_commands, n_scans, n_words, n_busy, rdata, pulse);
        // Counters and sticky errors.
        if self.inc_commands.val() {
            self.n_commands.d.next = self.n_commands.q.val() + 1;
        }
        if self.inc_scans.val() {
            self.n_scans.d.next = self.n_scans.q.val() + 1;
        }
        if self.inc_words.val() {
            self.n_words.d.next = self.n_words.q.val() + 1;
        }
        if self.busy.val() {
            self.n_busy.d.next = self.n_busy.q.val() + 1;
        }
        self.errors.d.next = self.errors.q.val() | self.err_set.val();
        // Writes.
        self.pulse.d.next = false;
        if self.reg_write.val() {
            if self.reg_addr.val() == self.o_scratch.val() {
                self.scratch.d.next = self.reg_wdata.val();
            }
            if self.reg_addr.val() == self.o_errors.val() {
                self.errors.d.next =
                    (self.errors.q.val() & !self.reg_wdata.val().get_bits::<16>(0)) | self.err_set.val();
            }
            if self.reg_addr.val() == self.o_control.val() {
                self.pulse.d.next = self.reg_wdata.val().get_bit(0);
            }
        }
        // Reads.
        self.rdata.d.next = 0.into();
        if self.reg_addr.val() == self.o_type.val() {
            self.rdata.d.next = self.v_type.val();
        }
        if self.reg_addr.val() == self.o_version.val() {
            self.rdata.d.next = self.v_version.val();
        }
        if self.reg_addr.val() == self.o_build.val() {
            self.rdata.d.next = self.v_build.val();
        }
        if self.reg_addr.val() == self.o_scratch.val() {
            self.rdata.d.next = self.scratch.q.val();
        }
        if self.reg_addr.val() == self.o_lanes.val() {
            self.rdata.d.next = self.v_lanes.val();
        }
        if self.reg_addr.val() == self.o_accounts.val() {
            self.rdata.d.next = self.v_accounts.val();
        }
        if self.reg_addr.val() == self.o_assets.val() {
            self.rdata.d.next = self.v_assets.val();
        }
        if self.reg_addr.val() == self.o_slots.val() {
            self.rdata.d.next = self.v_slots.val();
        }
        if self.reg_addr.val() == self.o_status.val() {
            self.rdata.d.next = bit_cast::<32, 1>(self.busy.val().into())
                | (bit_cast::<32, 1>(self.events_pending.val().into()) << 1);
        }
        if self.reg_addr.val() == self.o_errors.val() {
            self.rdata.d.next = bit_cast::<32, 16>(self.errors.q.val());
        }
        if self.reg_addr.val() == self.o_commands.val() {
            self.rdata.d.next = self.n_commands.q.val();
        }
        if self.reg_addr.val() == self.o_scans.val() {
            self.rdata.d.next = self.n_scans.q.val();
        }
        if self.reg_addr.val() == self.o_words.val() {
            self.rdata.d.next = self.n_words.q.val();
        }
        if self.reg_addr.val() == self.o_busy.val() {
            self.rdata.d.next = self.n_busy.q.val();
        }
        if self.reg_addr.val() == self.o_active_accounts.val() {
            self.rdata.d.next = bit_cast::<32, 16>(self.active_accounts.val());
        }
        if self.reg_addr.val() == self.o_active_slots.val() {
            self.rdata.d.next = bit_cast::<32, 8>(self.active_slots.val());
        }
        if self.reset.val() {
            self.scratch.d.next = 0.into();
            self.errors.d.next = 0.into();
            self.n_commands.d.next = 0.into();
            self.n_scans.d.next = 0.into();
            self.n_words.d.next = 0.into();
            self.n_busy.d.next = 0.into();
            self.pulse.d.next = false;
        }
        self.reg_rdata.next = self.rdata.q.val();
        self.soft_reset.next = self.pulse.q.val();
    }
}
