//! Bitmap packer: gathers the lanes' verdict bits into one word per group.
//!
//! ```text
//!  lane 0 ─ bit ─┐
//!  lane 1 ─ bit ─┼─> { bit[L-1], ..., bit[1], bit[0] } ─> word
//!  ...           │
//!  lane L-1 ─────┘
//! ```
//!
//! Pure wiring (no logic, no delay). It is a hand-written block because rust-hdl kernels have
//! no local variables to fold a word together in, and a chain of local signals would cost the
//! simulator one settling pass per lane. Golden model: `word = sum bits[l] << l`
//! ([`pack_model`]).
//!
//! Inputs: `bits` (one verdict per lane).
//!
//! Outputs: `word` (bit `l` = lane `l`).

use rust_hdl::prelude::*;

/// Golden model of [`BitmapPacker`].
pub fn pack_model(bits: &[bool]) -> u64 {
    bits.iter().enumerate().map(|(l, &b)| (b as u64) << l).sum()
}

/// Packs `L` bits into a word. See the module docs.
#[derive(LogicBlock)]
pub struct BitmapPacker<const L: usize> {
    /// One verdict per lane.
    pub bits: [Signal<In, Bit>; L],
    /// Bit `l` is lane `l`.
    pub word: Signal<Out, Bits<L>>,
}

impl<const L: usize> Default for BitmapPacker<L> {
    fn default() -> Self {
        Self { bits: std::array::from_fn(|_| Default::default()), word: Default::default() }
    }
}

impl<const L: usize> Logic for BitmapPacker<L> {
    fn update(&mut self) {
        let mut w = 0u64;
        for (l, b) in self.bits.iter().enumerate() {
            w |= (b.val() as u64) << l;
        }
        self.word.next = w.into();
    }

    fn connect(&mut self) {
        self.word.connect();
    }

    fn hdl(&self) -> Verilog {
        let parts: Vec<String> = (0..L).rev().map(|l| format!("bits${l}")).collect();
        Verilog::Custom(format!("always @(*) word = {{{}}};\n", parts.join(", ")))
    }
}
