//! One column of a MAC lane's accumulators (stage C), with its own copy of the control bits.
//!
//! ```text
//!  b ──────────────> [c = first ? +-b : c +- b  (when valid)] ─> acc
//!  ctl ─> [b_ctl] ──────┘   (neg: subtract; first: restart; valid: enable)
//! ```
//!
//! A MAC lane has eight of them (four columns, spot and stressed). Each registers the control
//! bits itself and is emitted as a kept module (`(* keep_hierarchy *)`, see
//! [`crate::core::verilog::keep_lane_hierarchy`]), so yosys keeps eight copies of the control
//! register per lane and each drives one 24-bit column: with one copy per lane, the control
//! nets (`valid` as the clock enable, `first` and `neg` into every accumulator bit, 192 sinks
//! each) were the most congested nets of the 16-lane routing (run 16's congestion map), and
//! run 9's critical path was such a lane-wide enable net.
//!
//! Golden model: [`ColumnAccModel`]. All arithmetic is two's complement in
//! [`COL_BITS`] bits.
//!
//! The column's contribution `b` is registered by the lane (stage B2), outside the module, so
//! yosys can still trim its constant bits; the control bits arrive one stage earlier (`ctl` of
//! stage B1) and are registered here, alongside `b`.
//!
//! Inputs: `clock`; `ctl` (`{neg, last, first, valid}` of the term whose contribution will be on
//! `b` in the next cycle); `b` (the column's contribution, registered by the lane).
//!
//! Outputs: `acc` (the accumulator: after the edge that takes a term with `first`, that term's
//! signed contribution; after the edge that takes a valid term without `first`, the previous
//! value plus or minus the contribution). A term whose `ctl` is on the input in cycle `t` (and
//! its `b` in cycle `t + 1`) is in `acc` after the edge ending cycle `t + 1`.

use crate::core::mac_lane::COL_BITS;
use rust_hdl::prelude::*;

const MASK: u32 = (1 << COL_BITS) - 1;

/// Golden model of [`ColumnAcc`], clocked by [`ColumnAccModel::clock`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ColumnAccModel {
    b_ctl: u32,
    c: u32,
}

impl ColumnAccModel {
    /// One clock edge with `ctl`, `b` on the inputs; returns `acc` after the edge.
    pub fn clock(&mut self, ctl: u32, b: u32) -> u32 {
        let (valid, first, neg) = (self.b_ctl & 1 != 0, self.b_ctl & 2 != 0, self.b_ctl & 8 != 0);
        let b = b & MASK;
        if valid {
            let base = if first { 0 } else { self.c };
            self.c = if neg { base.wrapping_sub(b) } else { base.wrapping_add(b) } & MASK;
        }
        self.b_ctl = ctl & 0xF;
        self.c
    }
}

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct ColumnAcc {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// `{neg, last, first, valid}` of the term whose contribution is on `b` in the next cycle.
    pub ctl: Signal<In, Bits<4>>,
    /// The column's contribution (the lane's stage B2 register).
    pub b: Signal<In, Bits<COL_BITS>>,
    /// The accumulator.
    pub acc: Signal<Out, Bits<COL_BITS>>,
    // This column's copy of the control bits (stage B2).
    b_ctl: DFF<Bits<4>>,
    // Stage C: the accumulator.
    c: DFF<Bits<COL_BITS>>,
    // The adder's operands.
    base: Signal<Local, Bits<COL_BITS>>,
    addend: Signal<Local, Bits<COL_BITS>>,
}

impl Logic for ColumnAcc {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, b_ctl, c);
        self.b_ctl.d.next = self.ctl.val();
        // One adder: c' = base + (b XOR neg) + neg, base = first ? 0 : c (subtraction as the
        // two's complement), so a column is one carry chain, not three and a multiplexer.
        self.base.next = self.c.q.val();
        if self.b_ctl.q.val().get_bit(1) {
            self.base.next = 0.into();
        }
        self.addend.next = self.b.val();
        if self.b_ctl.q.val().get_bit(3) {
            self.addend.next = !self.b.val();
        }
        if self.b_ctl.q.val().get_bit(0) {
            self.c.d.next = self.base.val()
                + self.addend.val()
                + bit_cast::<COL_BITS, 1>(self.b_ctl.q.val().get_bits::<1>(3));
        }
        self.acc.next = self.c.q.val();
    }
}
