//! The register block: identity, scratch, configuration, status, sticky errors, statistics.
//!
//! ```text
//!  reg_addr ─> decode (offsets from abi::regs) ─> sel (one-hot, registered)
//!          ─> AND-OR of the selected value ─> reg_rdata (registered): READ_LATENCY = 2 cycles
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
//! Outputs: `reg_rdata` (in cycle `t + 2`, the value of the register addressed in cycle `t`, as it
//! was in cycle `t + 1`), `soft_reset` (one-cycle pulse after a write of `CONTROL` bit 0).
//!
//! The read takes two register stages because one was too slow: a 12-bit address compare per
//! register feeding a 16-way multiplexer was the critical path of the 8-lane core (9.59 ns,
//! 7.71 ns of it routing). Now the first stage registers the compares (one-hot), the second an
//! AND-OR of the selected value.

use crate::abi::config::CONFIG;
use crate::abi::regs::{self, offset};
use rust_hdl::prelude::*;

/// Address bits of the register block (byte offsets below 4096).
pub const REG_ADDR_BITS: usize = 12;
/// Cycles from an address on `reg_addr` to its data on `reg_rdata`.
pub const READ_LATENCY: u64 = 2;
/// Readable registers with a value that can be non-zero (the read multiplexer's inputs).
const READS: usize = 16;
const _: () = assert!(READS == 16, "update() names the last OR stage by its literal index");

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
    /// Read data: [`READ_LATENCY`] cycles after the address.
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
    // Read stage 1: `sel[i]` is set when the address was `o_read[i]`.
    sel: [DFF<Bit>; READS],
    o_read: [Constant<Bits<REG_ADDR_BITS>>; READS],
    // Read stage 2: the value of read `i` (`val`), zero unless selected (`term`), their OR.
    val: [Signal<Local, Bits<32>>; READS],
    term: [Signal<Local, Bits<32>>; READS],
    or_acc: [Signal<Local, Bits<32>>; READS],
    o_scratch: Constant<Bits<REG_ADDR_BITS>>,
    o_control: Constant<Bits<REG_ADDR_BITS>>,
    o_errors: Constant<Bits<REG_ADDR_BITS>>,
    v_type: Constant<Bits<32>>,
    v_version: Constant<Bits<32>>,
    v_build: Constant<Bits<32>>,
    v_lanes: Constant<Bits<32>>,
    v_accounts: Constant<Bits<32>>,
    v_assets: Constant<Bits<32>>,
    v_slots: Constant<Bits<32>>,
}

/// The offsets of the multiplexer's inputs, in the order of `val` in [`RegBlock::update`].
const READ_OFFSETS: [u32; READS] = [
    offset::ID_TYPE,
    offset::ID_VERSION,
    offset::BUILD_ID,
    offset::SCRATCH,
    offset::CONFIG_LANES,
    offset::CONFIG_ACCOUNTS,
    offset::CONFIG_ASSETS,
    offset::CONFIG_TERM_SLOTS,
    offset::STATUS,
    offset::ERRORS,
    offset::STAT_COMMANDS,
    offset::STAT_SCANS,
    offset::STAT_WORDS,
    offset::STAT_BUSY_CYCLES,
    offset::ACTIVE_ACCOUNTS,
    offset::ACTIVE_SLOTS,
];

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
            sel: Default::default(),
            o_read: READ_OFFSETS.map(|o| c12!(o)),
            val: Default::default(),
            term: Default::default(),
            or_acc: Default::default(),
            o_scratch: c12!(offset::SCRATCH),
            o_control: c12!(offset::CONTROL),
            o_errors: c12!(offset::ERRORS),
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
        for i in 0..READS {
            self.sel[i].clock.next = self.clock.val();
            self.sel[i].d.next = self.sel[i].q.val();
        }
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
        // Reads, stage 1: one registered compare per readable register.
        for i in 0..READS {
            self.sel[i].d.next = self.reg_addr.val() == self.o_read[i].val();
        }
        // Stage 2: the selected value (at most one `sel` is set), an AND-OR, not a priority chain.
        self.val[0].next = self.v_type.val();
        self.val[1].next = self.v_version.val();
        self.val[2].next = self.v_build.val();
        self.val[3].next = self.scratch.q.val();
        self.val[4].next = self.v_lanes.val();
        self.val[5].next = self.v_accounts.val();
        self.val[6].next = self.v_assets.val();
        self.val[7].next = self.v_slots.val();
        self.val[8].next = bit_cast::<32, 1>(self.busy.val().into())
            | (bit_cast::<32, 1>(self.events_pending.val().into()) << 1);
        self.val[9].next = bit_cast::<32, 16>(self.errors.q.val());
        self.val[10].next = self.n_commands.q.val();
        self.val[11].next = self.n_scans.q.val();
        self.val[12].next = self.n_words.q.val();
        self.val[13].next = self.n_busy.q.val();
        self.val[14].next = bit_cast::<32, 16>(self.active_accounts.val());
        self.val[15].next = bit_cast::<32, 8>(self.active_slots.val());
        for i in 0..READS {
            self.term[i].next = 0.into();
            if self.sel[i].q.val() {
                self.term[i].next = self.val[i].val();
            }
        }
        self.or_acc[0].next = self.term[0].val();
        for i in 1..READS {
            self.or_acc[i].next = self.or_acc[i - 1].val() | self.term[i].val();
        }
        // rust-hdl's Verilog generator needs a literal index here (READS - 1).
        self.rdata.d.next = self.or_acc[15].val();
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
