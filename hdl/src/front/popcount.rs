//! Population count of a 32-bit word: how many accounts of a bitmap word are set.
//!
//! ```text
//!  word[31:0] ──> word[0] + word[1] + ... + word[31] ──> count[5:0]
//! ```
//!
//! Combinational (a balanced adder tree in synthesis). A hand-written block because rust-hdl kernels
//! have no local variables to fold a sum in (as [`crate::core::packer::BitmapPacker`]).
//! Golden model: [`u32::count_ones`].
//!
//! Inputs: `word`.
//!
//! Outputs: `count` (0..=32).

use rust_hdl::prelude::*;

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct Popcount32 {
    /// The word.
    pub word: Signal<In, Bits<32>>,
    /// Its set bits.
    pub count: Signal<Out, Bits<6>>,
}

impl Logic for Popcount32 {
    fn update(&mut self) {
        self.count.next = (self.word.val().to_u32().count_ones() as u64).into();
    }

    fn connect(&mut self) {
        self.count.connect();
    }

    fn hdl(&self) -> Verilog {
        // A balanced tree of additions (pairs, then pairs of pairs): synthesis keeps the
        // grouping, so the depth is 5 small adders rather than a chain of 31. In a 6-bit
        // assignment every operand is widened to 6 bits before the additions.
        fn tree(lo: usize, n: usize) -> String {
            if n == 1 {
                format!("{{5'b0, word[{lo}]}}")
            } else {
                format!("({} + {})", tree(lo, n / 2), tree(lo + n / 2, n / 2))
            }
        }
        Verilog::Custom(format!("always @(*) count = {};\n", tree(0, 32)))
    }
}
