//! One lane's memories: its term memory, its copy of the price table, and the registers between
//! them and the MAC lane.
//!
//! ```text
//!  rd_word ─> ra (registered copy) ─> term memory (coeff, price address) ─> [out reg] ─┐
//!                                                                                               │
//!            ┌──────────────────────────────────────────────────────────────────────────────────┘
//!            └─> price table (spot, stressed; address = asset*2 + sign) ─> [out reg] ─> spot, stressed
//!               (coefficient: term memory's out reg ─> p3 ─> p4 ─> neg, mag, alongside)
//!  w_* (write bus from the sequencer) ─> registered copy ─> write ports
//! ```
//!
//! Each lane is its own module, emitted `(* keep_hierarchy *)` (see
//! [`crate::core::verilog::keep_lane_hierarchy`]), so the registers at its inputs stay one copy
//! per lane: without that, yosys merges the identical copies into one register that drives
//! every lane's block RAMs across the die. With it, the wide nets from the sequencer end at
//! registers, and each block RAM is driven from its own lane's registers.
//!
//! Every memory is a [`SyncRamReg`]: on the ECP5 the register after each read is the block
//! RAM's own output register, so no block RAM's slow clock-to-out (5.83 ns) starts a path
//! through fabric routing (the critical paths of runs 24 and 26: the term memory into the
//! price table's address register, the price table into the lane's price register).
//!
//! Timing, with the read address `rd_word` (the register tree's copy of the issue
//! registers, [`crate::core::fanout`]) in cycle `t`: the term memory reads at the clock edge
//! ending cycle `t + 1`, the price table at the edge ending `t + 3`, and `neg`, `mag`, `spot`,
//! `stressed` are valid in cycle `t + 5`. A write on `w_*` in cycle `t` reaches the memory at the
//! clock edge ending cycle `t + 1` (one cycle later than a direct write; the sequencer's
//! command timing leaves room for it, see [`crate::core::scan_core`]).
//!
//! Inputs: `clock`; `rd_word`; `w_price`, `w_price_addr`, `w_spot`, `w_stressed`
//! (price write); `w_term`, `w_term_addr`, `w_coeff` (sign-magnitude), `w_term_paddr` (term write).
//!
//! Outputs: `neg`, `mag`, `spot`, `stressed` (the MAC lane's term inputs).

use crate::abi::config::*;
use crate::core::ram::SyncRamReg;
use rust_hdl::prelude::*;

/// Term memory address bits: a flat word address (the group table says which words are whose).
pub const TERM_ADDR_BITS: usize = TERM_WORD_BITS;
/// Price table address bits: asset and sign.
pub const PRICE_ADDR_BITS: usize = CARD_ASSET_BITS + 1;

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct LaneMem {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Term word to read (registered here).
    pub rd_word: Signal<In, Bits<TERM_ADDR_BITS>>,
    /// Write a price.
    pub w_price: Signal<In, Bit>,
    /// Price table address (asset*2 + sign).
    pub w_price_addr: Signal<In, Bits<PRICE_ADDR_BITS>>,
    /// Spot price to write.
    pub w_spot: Signal<In, Bits<32>>,
    /// Stressed price to write.
    pub w_stressed: Signal<In, Bits<32>>,
    /// Write a term.
    pub w_term: Signal<In, Bit>,
    /// Term memory address (word).
    pub w_term_addr: Signal<In, Bits<TERM_ADDR_BITS>>,
    /// Coefficient to write, sign-magnitude (bit 31 sign).
    pub w_coeff: Signal<In, Bits<32>>,
    /// Price table address of the term (asset*2 + sign).
    pub w_term_paddr: Signal<In, Bits<PRICE_ADDR_BITS>>,
    /// The coefficient is negative.
    pub neg: Signal<Out, Bit>,
    /// Coefficient magnitude.
    pub mag: Signal<Out, Bits<32>>,
    /// Spot price for the term's sign.
    pub spot: Signal<Out, Bits<32>>,
    /// Stressed price for the term's sign.
    pub stressed: Signal<Out, Bits<32>>,
    term_coeff: SyncRamReg<Bits<32>, TERM_ADDR_BITS>,
    term_paddr: SyncRamReg<Bits<PRICE_ADDR_BITS>, TERM_ADDR_BITS>,
    price_spot: SyncRamReg<Bits<32>, PRICE_ADDR_BITS>,
    price_stress: SyncRamReg<Bits<32>, PRICE_ADDR_BITS>,
    ra_word: DFF<Bits<TERM_ADDR_BITS>>,
    wp_en: DFF<Bit>,
    wp_addr: DFF<Bits<PRICE_ADDR_BITS>>,
    wp_spot: DFF<Bits<32>>,
    wp_stressed: DFF<Bits<32>>,
    wt_en: DFF<Bit>,
    wt_addr: DFF<Bits<TERM_ADDR_BITS>>,
    wt_coeff: DFF<Bits<32>>,
    wt_paddr: DFF<Bits<PRICE_ADDR_BITS>>,
    p3_coeff: DFF<Bits<32>>,
    p4_coeff: DFF<Bits<32>>,
}

impl LaneMem {
    /// Reads a term memory word directly (test access): (sign-magnitude coefficient, price
    /// address).
    pub fn peek_term(&self, word: usize) -> (u32, u32) {
        (self.term_coeff.peek(word).to_u32(), self.term_paddr.peek(word).to_u32())
    }
}

impl Logic for LaneMem {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            ra_word,
            wp_en,
            wp_addr,
            wp_spot,
            wp_stressed,
            wt_en,
            wt_addr,
            wt_coeff,
            wt_paddr,
            p3_coeff,
            p4_coeff
        );
        clock!(self, clock, term_coeff, term_paddr, price_spot, price_stress);
        // Registered copies of the sequencer's buses, one set per lane.
        self.ra_word.d.next = self.rd_word.val();
        self.wp_en.d.next = self.w_price.val();
        self.wp_addr.d.next = self.w_price_addr.val();
        self.wp_spot.d.next = self.w_spot.val();
        self.wp_stressed.d.next = self.w_stressed.val();
        self.wt_en.d.next = self.w_term.val();
        self.wt_addr.d.next = self.w_term_addr.val();
        self.wt_coeff.d.next = self.w_coeff.val();
        self.wt_paddr.d.next = self.w_term_paddr.val();
        // Writes.
        self.price_spot.write_enable.next = self.wp_en.q.val();
        self.price_stress.write_enable.next = self.wp_en.q.val();
        self.price_spot.write_address.next = self.wp_addr.q.val();
        self.price_stress.write_address.next = self.wp_addr.q.val();
        self.price_spot.write_data.next = self.wp_spot.q.val();
        self.price_stress.write_data.next = self.wp_stressed.q.val();
        self.term_coeff.write_enable.next = self.wt_en.q.val();
        self.term_paddr.write_enable.next = self.wt_en.q.val();
        self.term_coeff.write_address.next = self.wt_addr.q.val();
        self.term_paddr.write_address.next = self.wt_addr.q.val();
        self.term_coeff.write_data.next = self.wt_coeff.q.val();
        self.term_paddr.write_data.next = self.wt_paddr.q.val();
        // Reads: term, then its price; each memory's output register feeds the next step.
        self.term_coeff.read_address.next = self.ra_word.q.val();
        self.term_paddr.read_address.next = self.ra_word.q.val();
        self.price_spot.read_address.next = self.term_paddr.read_data.val();
        self.price_stress.read_address.next = self.term_paddr.read_data.val();
        self.p3_coeff.d.next = self.term_coeff.read_data.val();
        self.p4_coeff.d.next = self.p3_coeff.q.val();
        self.neg.next = self.p4_coeff.q.val().get_bit(31);
        self.mag.next = bit_cast::<32, 31>(self.p4_coeff.q.val().get_bits::<31>(0));
        self.spot.next = self.price_spot.read_data.val();
        self.stressed.next = self.price_stress.read_data.val();
    }
}
