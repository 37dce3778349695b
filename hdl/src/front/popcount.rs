//! Population count of the two 16-bit halves of a word: how many accounts of a bitmap word
//! are set, in two parts a register can hold before they are added.
//!
//! ```text
//!  word[15:0]  ──> word[0] + ... + word[15]  ──> lo[4:0]
//!  word[31:16] ──> word[16] + ... + word[31] ──> hi[4:0]
//! ```
//!
//! Combinational (a balanced adder tree per half in synthesis). A hand-written block because
//! rust-hdl kernels have no local variables to fold a sum in (as
//! [`crate::core::packer::BitmapPacker`]). Golden model: [`u32::count_ones`] of each half.
//!
//! Inputs: `word`.
//!
//! Outputs: `lo`, `hi` (each 0..=16).

use rust_hdl::prelude::*;

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct PopcountHalves {
    /// The word.
    pub word: Signal<In, Bits<32>>,
    /// Set bits of `word[15:0]`.
    pub lo: Signal<Out, Bits<5>>,
    /// Set bits of `word[31:16]`.
    pub hi: Signal<Out, Bits<5>>,
}

impl Logic for PopcountHalves {
    fn update(&mut self) {
        let w = self.word.val().to_u32();
        self.lo.next = ((w & 0xFFFF).count_ones() as u64).into();
        self.hi.next = ((w >> 16).count_ones() as u64).into();
    }

    fn connect(&mut self) {
        self.lo.connect();
        self.hi.connect();
    }

    fn hdl(&self) -> Verilog {
        // A balanced tree of additions (pairs, then pairs of pairs): synthesis keeps the
        // grouping, so the depth is 4 small adders rather than a chain of 15. In a 5-bit
        // assignment every operand is widened to 5 bits before the additions.
        fn tree(lo: usize, n: usize) -> String {
            if n == 1 {
                format!("{{4'b0, word[{lo}]}}")
            } else {
                format!("({} + {})", tree(lo, n / 2), tree(lo + n / 2, n / 2))
            }
        }
        Verilog::Custom(format!("always @(*) lo = {};\nalways @(*) hi = {};\n", tree(0, 16), tree(16, 16)))
    }
}
