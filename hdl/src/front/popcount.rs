//! Population count of a 32-bit word: how many accounts of a bitmap word are set.
//!
//! ```text
//!  word[31:0] ──> word[0] + word[1] + ... + word[31] ──> count[5:0]
//! ```
//!
//! Combinational (an adder tree in synthesis). A hand-written block because rust-hdl kernels
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
        // In a 6-bit assignment every operand is widened to 6 bits before the additions.
        let bits: Vec<String> = (0..32).map(|i| format!("{{5'b0, word[{i}]}}")).collect();
        Verilog::Custom(format!("always @(*) count = {};\n", bits.join(" + ")))
    }
}
