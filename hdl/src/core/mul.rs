//! A pipelined 16x16 unsigned multiplier: registered inputs, registered product.
//!
//! ```text
//!  a ──> [a_r] ──┐
//!                ├─> x ──> [p] ──> p        (latency 2: inputs at edge t, product after edge t+1)
//!  b ──> [b_r] ──┘
//! ```
//!
//! yosys's ECP5 flow maps a multiply to MULT18X18D but leaves the registers around it in the
//! fabric, so the multiplier's delay sits between two fabric registers. This block therefore
//! emits two bodies: with `LIQSCAN_ECP5` defined (`scripts/build-bitstream.sh` reads the
//! Verilog with `-DLIQSCAN_ECP5`) it instantiates MULT18X18D with its input A/B registers and
//! its output register clocked (`REG_INPUTA_CLK`, `REG_INPUTB_CLK`, `REG_OUTPUT_CLK` = CLK0, no
//! pipeline register), so both registers are inside the DSP block; otherwise (Verilator,
//! Icarus, the yosys check) the same two register stages in plain Verilog. The simulation model
//! below is the same pipeline. Golden model: `p(t+2) = a(t) * b(t)`.
//!
//! Inputs: `clock`; `a`, `b` (operands). Outputs: `p` (product of the operands presented two
//! clock edges earlier).

use rust_hdl::core::timing::TimingInfo;
use rust_hdl::prelude::*;

/// Pipelined 16x16 -> 32 unsigned multiplier. See the module docs.
#[derive(LogicBlock, Default)]
pub struct Mul16 {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Operand A.
    pub a: Signal<In, Bits<16>>,
    /// Operand B.
    pub b: Signal<In, Bits<16>>,
    /// Product of the operands two edges earlier.
    pub p: Signal<Out, Bits<32>>,
    // Simulation state: the input registers.
    _a_r: u64,
    _b_r: u64,
}

impl Logic for Mul16 {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            self.p.next = Bits::<32>::from(self._a_r * self._b_r);
            self._a_r = self.a.val().to_u64();
            self._b_r = self.b.val().to_u64();
        }
    }

    fn connect(&mut self) {
        self.p.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "`ifdef LIQSCAN_ECP5\n{dsp}always @(*) p = p36[31:0];\n\
             `else\n\
             reg [15:0] a_r, b_r;\n\
             initial begin a_r = 0; b_r = 0; p = 0; end\n\
             always @(posedge clock) begin\n   a_r <= a;\n   b_r <= b;\n   p <= a_r * b_r;\nend\n\
             `endif\n",
            dsp = mult18x18d(2),
        ))
    }

    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "mul16".into(),
            clock: "clock".into(),
            inputs: vec!["a".into(), "b".into()],
            outputs: vec!["p".into()],
        }]
    }
}

/// The MULT18X18D instance of [`Mul16`] and [`Mul17`]: the operands `a`, `b` zero-extended by
/// `pad` bits to 18, input registers A and B and the output register on CLK0, the product on
/// `p36`.
fn mult18x18d(pad: usize) -> String {
    let bus = |port: &str, sig: &str, n: usize| {
        (0..n).map(|i| format!(".{port}{i}({sig}[{i}])")).collect::<Vec<_>>().join(", ")
    };
    let zeros = (0..18).map(|i| format!(".C{i}(1'b0)")).collect::<Vec<_>>().join(", ");
    format!(
        "wire [17:0] a18 = {{{pad}'b0, a}};\n\
         wire [17:0] b18 = {{{pad}'b0, b}};\n\
         wire [35:0] p36;\n\
         MULT18X18D #(.REG_INPUTA_CLK(\"CLK0\"), .REG_INPUTB_CLK(\"CLK0\"), .REG_OUTPUT_CLK(\"CLK0\"),\n\
         \x20   .REG_PIPELINE_CLK(\"NONE\"), .REG_INPUTC_CLK(\"NONE\"), .GSR(\"DISABLED\"), .RESETMODE(\"SYNC\"))\n\
         dsp ({a}, {b}, {zeros},\n\
         \x20   .SIGNEDA(1'b0), .SIGNEDB(1'b0), .SOURCEA(1'b0), .SOURCEB(1'b0),\n\
         \x20   .CLK0(clock), .CE0(1'b1), .RST0(1'b0), {p});\n",
        a = bus("A", "a18", 18),
        b = bus("B", "b18", 18),
        p = bus("P", "p36", 36),
    )
}

/// Golden model of [`Mul17`] (it lives in [`golden`](crate::golden), which builds without the
/// `core` feature).
pub use crate::golden::mul17_model;

/// Pipelined 17x17 -> 34 unsigned multiplier, the product split into its low 16 and high 18
/// bits (no signal wider than 32 bits). The same pipeline and the same two bodies as
/// [`Mul16`]: with `LIQSCAN_ECP5` a MULT18X18D with its input and output registers, the
/// operands zero-extended to 18 bits; otherwise two register stages in plain Verilog. It
/// multiplies the Karatsuba sums `(a0 + a1) * (b0 + b1)` of the MAC lane. Golden model:
/// `(p_lo, p_hi)(t+2) = mul17_model(a(t), b(t))` ([`mul17_model`]).
///
/// Inputs: `clock`; `a`, `b` (17-bit operands). Outputs: `p_lo`, `p_hi` (bits 0..16 and
/// 16..34 of the product of the operands presented two clock edges earlier).
#[derive(LogicBlock, Default)]
pub struct Mul17 {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Operand A.
    pub a: Signal<In, Bits<17>>,
    /// Operand B.
    pub b: Signal<In, Bits<17>>,
    /// Bits 0..16 of the product of the operands two edges earlier.
    pub p_lo: Signal<Out, Bits<16>>,
    /// Bits 16..34 of that product.
    pub p_hi: Signal<Out, Bits<18>>,
    // Simulation state: the input registers.
    _a_r: u32,
    _b_r: u32,
}

impl Logic for Mul17 {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let (lo, hi) = mul17_model(self._a_r, self._b_r);
            self.p_lo.next = Bits::<16>::from(lo as u64);
            self.p_hi.next = Bits::<18>::from(hi as u64);
            self._a_r = self.a.val().to_u64() as u32;
            self._b_r = self.b.val().to_u64() as u32;
        }
    }

    fn connect(&mut self) {
        self.p_lo.connect();
        self.p_hi.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "`ifdef LIQSCAN_ECP5\n{dsp}always @(*) begin p_lo = p36[15:0]; p_hi = p36[33:16]; end\n\
             `else\n\
             reg [16:0] a_r, b_r;\n\
             reg [33:0] p_r;\n\
             initial begin a_r = 0; b_r = 0; p_r = 0; end\n\
             always @(posedge clock) begin\n   a_r <= a;\n   b_r <= b;\n   p_r <= a_r * b_r;\nend\n\
             always @(*) begin p_lo = p_r[15:0]; p_hi = p_r[33:16]; end\n\
             `endif\n",
            dsp = mult18x18d(1),
        ))
    }

    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "mul17".into(),
            clock: "clock".into(),
            inputs: vec!["a".into(), "b".into()],
            outputs: vec!["p_lo".into(), "p_hi".into()],
        }]
    }
}
