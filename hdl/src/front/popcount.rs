//! Population count of the four bytes of a word: how many accounts of a bitmap word are set,
//! in four parts a register can hold before they are added.
//!
//! ```text
//!  word[7:0]   ──> word[0] + ... + word[7]   ──> q[3:0]
//!  word[15:8]  ──> word[8] + ... + word[15]  ──> q[7:4]
//!  word[23:16] ──> word[16] + ... + word[23] ──> q[11:8]
//!  word[31:24] ──> word[24] + ... + word[31] ──> q[15:12]
//! ```
//!
//! Combinational (a balanced adder tree per byte in synthesis). A hand-written block because
//! rust-hdl kernels have no local variables to fold a sum in (as
//! [`crate::core::packer::BitmapPacker`]). Golden model: [`u8::count_ones`] of each byte.
//!
//! Inputs: `word`.
//!
//! Outputs: `q` (four 4-bit counts, each 0..=8, byte `k`'s in bits `4k + 3 .. 4k`).

use rust_hdl::prelude::*;

/// The four byte counts of `w` packed as [`PopcountQuarters`] outputs them.
pub fn quarters(w: u32) -> u16 {
    (0..4).map(|k| (((w >> (8 * k)) & 0xFF).count_ones() as u16) << (4 * k)).sum()
}

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct PopcountQuarters {
    /// The word.
    pub word: Signal<In, Bits<32>>,
    /// Set bits of each byte of `word`, 4 bits each.
    pub q: Signal<Out, Bits<16>>,
}

impl Logic for PopcountQuarters {
    fn update(&mut self) {
        self.q.next = (quarters(self.word.val().to_u32()) as u64).into();
    }

    fn connect(&mut self) {
        self.q.connect();
    }

    fn hdl(&self) -> Verilog {
        // A balanced tree of additions (pairs, then pairs of pairs): synthesis keeps the
        // grouping, so the depth is 3 small adders rather than a chain of 7. Every operand is
        // 4 bits wide, so each sum is 4 bits wide inside the concatenation (8 fits).
        fn tree(lo: usize, n: usize) -> String {
            if n == 1 {
                format!("{{3'b0, word[{lo}]}}")
            } else {
                format!("({} + {})", tree(lo, n / 2), tree(lo + n / 2, n / 2))
            }
        }
        let bytes: Vec<String> = (0..4).rev().map(|k| tree(8 * k, 8)).collect();
        Verilog::Custom(format!("always @(*) q = {{{}}};\n", bytes.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::quarters;

    #[test]
    fn quarters_count_each_byte() {
        assert_eq!(quarters(0), 0);
        assert_eq!(quarters(u32::MAX), 0x8888);
        assert_eq!(quarters(0x0103_07FF), 0x1238);
        let w = 0xDEAD_BEEFu32;
        let q = quarters(w);
        assert_eq!((0..4).map(|k| (q >> (4 * k)) & 0xF).sum::<u16>(), w.count_ones() as u16);
    }
}
