//! One node of the register tree between the sequencer and the lanes: a registered copy of the
//! read address, the write bus and the lanes' control bits for a group of [`FAN_LANES`] lanes.
//!
//! ```text
//!  sequencer ─ rd_*, w_*, ctl ─┬─> [fan 0] ─> lanes 0..4   (each lane registers its copy again)
//!                              ├─> [fan 1] ─> lanes 4..8
//!                              └─> ...
//! ```
//!
//! Without it one register (the board shell's command register, or the sequencer's control
//! line) drives every lane's registered copy across the die (run 13, 8 lanes: 8.97 ns of
//! routing from `cmd_data1` to one lane's `wp_stressed`). Each node is a module emitted
//! `(* keep_hierarchy *)` ([`crate::core::verilog::keep_lane_hierarchy`]) so yosys does not
//! merge the identical copies back into one.
//!
//! Timing: the write bus arrives at the lanes' [`crate::core::lane_mem::LaneMem`] one cycle
//! later than without the tree, so a write processed in cycle `c` (taken from the command
//! register) reaches its block RAM at the clock edge ending cycle `c + 2`; the earliest read
//! that must see it, of a scan processed in cycle `c + 1`, is at the edge ending `c + 4` (see
//! [`crate::core::scan_core`]). The control
//! copy replaces one stage of the control delay line (input: stage 3, output: the value of
//! stage 4). The read address is a copy of the issue registers, which each lane registers
//! again before its term memory: one cycle more than when the lanes registered the issue's
//! source directly (pipeline depth 15 to 16; run 19's critical path was that broadcast).
//!
//! Golden model: every output is its input one clock edge earlier ([`fan_model`]).
//!
//! Inputs: `clock`; `ctl` (the lanes' control bits from the delay line); `rd_word`
//! (the read address, the issue registers' source); `w_price`,
//! `w_price_addr`, `w_spot`, `w_stressed` (price write); `w_term`, `w_term_lane` (which lane
//! the term belongs to), `w_term_addr`, `w_coeff`, `w_term_paddr` (term write).
//!
//! Outputs: the same, registered, prefixed `o_`.

use crate::abi::config::*;
use crate::core::lane_mem::{PRICE_ADDR_BITS, TERM_ADDR_BITS};
use rust_hdl::prelude::*;

/// Lanes per node. `scan_core` indexes the nodes as `l / 4` (rust-hdl's Verilog generator
/// evaluates array indices with loop variables and literals only).
pub const FAN_LANES: usize = 4;
/// Nodes of the tree.
pub const FANS: usize = LANES.div_ceil(FAN_LANES);

/// The write bus and control bits carried by one node, in port order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FanWord {
    /// Control bits.
    pub ctl: u32,
    /// Read address: term word.
    pub rd_word: u32,
    /// Price write enable.
    pub price: bool,
    /// Price address.
    pub price_addr: u32,
    /// Spot price.
    pub spot: u32,
    /// Stressed price.
    pub stressed: u32,
    /// Term write enable.
    pub term: bool,
    /// The term's lane.
    pub term_lane: u32,
    /// Term address.
    pub term_addr: u32,
    /// Coefficient (sign-magnitude).
    pub coeff: u32,
    /// Price address of the term.
    pub term_paddr: u32,
}

/// Golden model of [`WriteFan`]: the outputs after a clock edge are the inputs before it.
pub fn fan_model(inputs_before_edge: FanWord) -> FanWord {
    inputs_before_edge
}

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct WriteFan {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Control bits (from the delay line's stage 3).
    pub ctl: Signal<In, Bits<4>>,
    /// Term word to read.
    pub rd_word: Signal<In, Bits<TERM_ADDR_BITS>>,
    /// Write a price.
    pub w_price: Signal<In, Bit>,
    /// Price table address.
    pub w_price_addr: Signal<In, Bits<PRICE_ADDR_BITS>>,
    /// Spot price.
    pub w_spot: Signal<In, Bits<32>>,
    /// Stressed price.
    pub w_stressed: Signal<In, Bits<32>>,
    /// Write a term.
    pub w_term: Signal<In, Bit>,
    /// The lane of the term's account.
    pub w_term_lane: Signal<In, Bits<LANE_BITS>>,
    /// Term memory address.
    pub w_term_addr: Signal<In, Bits<TERM_ADDR_BITS>>,
    /// Coefficient, sign-magnitude.
    pub w_coeff: Signal<In, Bits<32>>,
    /// Price table address of the term.
    pub w_term_paddr: Signal<In, Bits<PRICE_ADDR_BITS>>,
    /// Registered `ctl`.
    pub o_ctl: Signal<Out, Bits<4>>,
    /// Registered `rd_word`.
    pub o_rd_word: Signal<Out, Bits<TERM_ADDR_BITS>>,
    /// Registered `w_price`.
    pub o_price: Signal<Out, Bit>,
    /// Registered `w_price_addr`.
    pub o_price_addr: Signal<Out, Bits<PRICE_ADDR_BITS>>,
    /// Registered `w_spot`.
    pub o_spot: Signal<Out, Bits<32>>,
    /// Registered `w_stressed`.
    pub o_stressed: Signal<Out, Bits<32>>,
    /// Registered `w_term`.
    pub o_term: Signal<Out, Bit>,
    /// Registered `w_term_lane`.
    pub o_term_lane: Signal<Out, Bits<LANE_BITS>>,
    /// Registered `w_term_addr`.
    pub o_term_addr: Signal<Out, Bits<TERM_ADDR_BITS>>,
    /// Registered `w_coeff`.
    pub o_coeff: Signal<Out, Bits<32>>,
    /// Registered `w_term_paddr`.
    pub o_term_paddr: Signal<Out, Bits<PRICE_ADDR_BITS>>,
    r_ctl: DFF<Bits<4>>,
    r_rd_word: DFF<Bits<TERM_ADDR_BITS>>,
    r_price: DFF<Bit>,
    r_price_addr: DFF<Bits<PRICE_ADDR_BITS>>,
    r_spot: DFF<Bits<32>>,
    r_stressed: DFF<Bits<32>>,
    r_term: DFF<Bit>,
    r_term_lane: DFF<Bits<LANE_BITS>>,
    r_term_addr: DFF<Bits<TERM_ADDR_BITS>>,
    r_coeff: DFF<Bits<32>>,
    r_term_paddr: DFF<Bits<PRICE_ADDR_BITS>>,
}

impl Logic for WriteFan {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            r_ctl,
            r_rd_word,
            r_price,
            r_price_addr,
            r_spot,
            r_stressed,
            r_term,
            r_term_lane,
            r_term_addr,
            r_coeff,
            r_term_paddr
        );
        self.r_ctl.d.next = self.ctl.val();
        self.r_rd_word.d.next = self.rd_word.val();
        self.r_price.d.next = self.w_price.val();
        self.r_price_addr.d.next = self.w_price_addr.val();
        self.r_spot.d.next = self.w_spot.val();
        self.r_stressed.d.next = self.w_stressed.val();
        self.r_term.d.next = self.w_term.val();
        self.r_term_lane.d.next = self.w_term_lane.val();
        self.r_term_addr.d.next = self.w_term_addr.val();
        self.r_coeff.d.next = self.w_coeff.val();
        self.r_term_paddr.d.next = self.w_term_paddr.val();
        self.o_ctl.next = self.r_ctl.q.val();
        self.o_rd_word.next = self.r_rd_word.q.val();
        self.o_price.next = self.r_price.q.val();
        self.o_price_addr.next = self.r_price_addr.q.val();
        self.o_spot.next = self.r_spot.q.val();
        self.o_stressed.next = self.r_stressed.q.val();
        self.o_term.next = self.r_term.q.val();
        self.o_term_lane.next = self.r_term_lane.q.val();
        self.o_term_addr.next = self.r_term_addr.q.val();
        self.o_coeff.next = self.r_coeff.q.val();
        self.o_term_paddr.next = self.r_term_paddr.q.val();
    }
}
