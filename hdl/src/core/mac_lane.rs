//! One multiply-accumulate lane: the breach and at-risk verdicts of one account.
//!
//! ```text
//!  mag,neg ──┬─> 4x 16x16 (spot)  ─> reg ─> columns ─> +-acc[0..4] ─> carry 1 ─> carry 2 ─> sign ─> breach
//!  spot ─────┘                                          (first: 0)
//!  stressed ─┴─> 4x 16x16 (stress) ─> reg ─> columns ─> +-acc[0..4] ─> carry 1 ─> carry 2 ─> sign ─> at_risk
//!      stages M, A              A2      stage B          stage C       D          E         F
//! ```
//!
//! The coefficient arrives in sign-magnitude (`neg`, `mag` below 2^31, which is why
//! `COEFF_MIN = -i32::MAX`), with the spot and stressed prices already selected for its sign.
//! Each 32x32 product is four 16x16 partial products in pipelined multipliers
//! ([`crate::core::mul::Mul16`]: input registers, stage M; product registers, stage A), copied
//! into fabric registers (stage A2, so the route from the DSP block is a cycle of its own),
//! folded into four 16-bit columns (stage B, each below 3 * 2^16). Four signed
//! 24-bit column accumulators add or subtract them (stage C): with at most 16 terms no column
//! leaves +-2^22, so no simulated signal is wider than 32 bits. When an account's last term has
//! been accumulated, three carry stages (D, E, F) propagate the columns' high bits upward; the
//! top column's sign is the sign of the exact 68-bit health (see [`crate::golden::columns_negative`]).
//! Latency: a term at the inputs in cycle t is in the accumulators after cycle t+4; the verdict of
//! a term with `last` set is on `breach`/`at_risk` with `out_valid` after the clock edge ending cycle t+7.
//!
//! Golden model: [`crate::golden::lane_health_negative`].
//!
//! Inputs: `clock`; `valid` (a term is on the inputs); `first` (first term of an account: the
//! accumulators restart); `last` (last term of an account: produce a verdict); `neg`
//! (coefficient is negative); `mag` (coefficient magnitude, bit 31 zero); `spot` and `stressed`
//! (the prices for this term's sign).
//!
//! Outputs: `out_valid` (a verdict is on the outputs this cycle), `breach` (health < 0),
//! `at_risk` (stressed health < 0); `breach` and `at_risk` mean something only in a cycle with
//! `out_valid` (stages D to F have no clock enable).

use crate::core::mul::Mul16;
use rust_hdl::prelude::*;

/// Width of the column accumulators.
pub const COL_BITS: usize = 24;

/// One MAC lane. See the module docs.
#[derive(LogicBlock)]
pub struct MacLane {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// A term is on the inputs.
    pub valid: Signal<In, Bit>,
    /// First term of an account.
    pub first: Signal<In, Bit>,
    /// Last term of an account.
    pub last: Signal<In, Bit>,
    /// The coefficient is negative.
    pub neg: Signal<In, Bit>,
    /// Coefficient magnitude (below 2^31).
    pub mag: Signal<In, Bits<32>>,
    /// Spot price for this term's sign.
    pub spot: Signal<In, Bits<32>>,
    /// Stressed price for this term's sign.
    pub stressed: Signal<In, Bits<32>>,
    /// A verdict is on the outputs.
    pub out_valid: Signal<Out, Bit>,
    /// Spot health < 0.
    pub breach: Signal<Out, Bit>,
    /// Stressed health < 0.
    pub at_risk: Signal<Out, Bit>,
    // Stages M and A: partial products ll, lh, hl, hh of spot (s) and stressed (r), in
    // pipelined multipliers (input registers = stage M, product register = stage A).
    mul_s: [Mul16; 4],
    mul_r: [Mul16; 4],
    m_ctl: DFF<Bits<4>>,
    a_ctl: DFF<Bits<4>>,
    // Stage A2: the products again, in fabric registers. A lane's multipliers sit where the
    // DSP rows are; the route from them to the column fold gets a cycle of its own (run 7's
    // critical path: 5.38 ns of routing from a MULT18X18D output before the fold's carry chain).
    a2_s: [DFF<Bits<32>>; 4],
    a2_r: [DFF<Bits<32>>; 4],
    a2_ctl: DFF<Bits<4>>,
    // Stage B: columns.
    b_s: [DFF<Bits<COL_BITS>>; 4],
    b_r: [DFF<Bits<COL_BITS>>; 4],
    b_ctl: DFF<Bits<4>>,
    // Stage C: accumulators.
    c_s: [DFF<Bits<COL_BITS>>; 4],
    c_r: [DFF<Bits<COL_BITS>>; 4],
    c_done: DFF<Bit>,
    // Stage D: t1, a2, a3 per vector.
    d_s: [DFF<Bits<COL_BITS>>; 3],
    d_r: [DFF<Bits<COL_BITS>>; 3],
    d_done: DFF<Bit>,
    // Stage E: t2, a3.
    e_s: [DFF<Bits<COL_BITS>>; 2],
    e_r: [DFF<Bits<COL_BITS>>; 2],
    e_done: DFF<Bit>,
    // Stage F: verdicts.
    f_breach: DFF<Bit>,
    f_at_risk: DFF<Bit>,
    f_done: DFF<Bit>,
    // Arithmetic shifts right by 16 of the carry sources.
    sh_c0s: Signal<Local, Bits<COL_BITS>>,
    sh_c0r: Signal<Local, Bits<COL_BITS>>,
    sh_d0s: Signal<Local, Bits<COL_BITS>>,
    sh_d0r: Signal<Local, Bits<COL_BITS>>,
    sh_e0s: Signal<Local, Bits<COL_BITS>>,
    sh_e0r: Signal<Local, Bits<COL_BITS>>,
    top_s: Signal<Local, Bits<COL_BITS>>,
    top_r: Signal<Local, Bits<COL_BITS>>,
    sext: Constant<Bits<COL_BITS>>,
}

impl Default for MacLane {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            valid: Default::default(),
            first: Default::default(),
            last: Default::default(),
            neg: Default::default(),
            mag: Default::default(),
            spot: Default::default(),
            stressed: Default::default(),
            out_valid: Default::default(),
            breach: Default::default(),
            at_risk: Default::default(),
            mul_s: Default::default(),
            mul_r: Default::default(),
            m_ctl: Default::default(),
            a_ctl: Default::default(),
            a2_s: Default::default(),
            a2_r: Default::default(),
            a2_ctl: Default::default(),
            b_s: Default::default(),
            b_r: Default::default(),
            b_ctl: Default::default(),
            c_s: Default::default(),
            c_r: Default::default(),
            c_done: Default::default(),
            d_s: Default::default(),
            d_r: Default::default(),
            d_done: Default::default(),
            e_s: Default::default(),
            e_r: Default::default(),
            e_done: Default::default(),
            f_breach: Default::default(),
            f_at_risk: Default::default(),
            f_done: Default::default(),
            sh_c0s: Default::default(),
            sh_c0r: Default::default(),
            sh_d0s: Default::default(),
            sh_d0r: Default::default(),
            sh_e0s: Default::default(),
            sh_e0r: Default::default(),
            top_s: Default::default(),
            top_r: Default::default(),
            // Sign extension of an 8-bit field into 24 bits.
            sext: Constant::new(0xFF_FF00u64.into()),
        }
    }
}

impl Logic for MacLane {
    #[hdl_gen]
    fn update(&mut self) {
        for i in 0..4 {
            self.mul_s[i].clock.next = self.clock.val();
            self.mul_r[i].clock.next = self.clock.val();
            self.a2_s[i].clock.next = self.clock.val();
            self.a2_s[i].d.next = self.mul_s[i].p.val();
            self.a2_r[i].clock.next = self.clock.val();
            self.a2_r[i].d.next = self.mul_r[i].p.val();
            self.b_s[i].clock.next = self.clock.val();
            self.b_s[i].d.next = self.b_s[i].q.val();
            self.b_r[i].clock.next = self.clock.val();
            self.b_r[i].d.next = self.b_r[i].q.val();
            self.c_s[i].clock.next = self.clock.val();
            self.c_s[i].d.next = self.c_s[i].q.val();
            self.c_r[i].clock.next = self.clock.val();
            self.c_r[i].d.next = self.c_r[i].q.val();
        }
        for i in 0..3 {
            self.d_s[i].clock.next = self.clock.val();
            self.d_r[i].clock.next = self.clock.val();
        }
        for i in 0..2 {
            self.e_s[i].clock.next = self.clock.val();
            self.e_r[i].clock.next = self.clock.val();
        }
        dff_setup!(
            self, clock, m_ctl, a_ctl, a2_ctl, b_ctl, c_done, d_done, e_done, f_breach, f_at_risk, f_done
        );
        // Stages M, A: partial products (two-cycle multipliers). ctl = {neg, last, first, valid}.
        self.mul_s[0].a.next = self.mag.val().get_bits::<16>(0);
        self.mul_s[0].b.next = self.spot.val().get_bits::<16>(0);
        self.mul_r[0].a.next = self.mag.val().get_bits::<16>(0);
        self.mul_r[0].b.next = self.stressed.val().get_bits::<16>(0);
        self.mul_s[1].a.next = self.mag.val().get_bits::<16>(0);
        self.mul_s[1].b.next = self.spot.val().get_bits::<16>(16);
        self.mul_r[1].a.next = self.mag.val().get_bits::<16>(0);
        self.mul_r[1].b.next = self.stressed.val().get_bits::<16>(16);
        self.mul_s[2].a.next = self.mag.val().get_bits::<16>(16);
        self.mul_s[2].b.next = self.spot.val().get_bits::<16>(0);
        self.mul_r[2].a.next = self.mag.val().get_bits::<16>(16);
        self.mul_r[2].b.next = self.stressed.val().get_bits::<16>(0);
        self.mul_s[3].a.next = self.mag.val().get_bits::<16>(16);
        self.mul_s[3].b.next = self.spot.val().get_bits::<16>(16);
        self.mul_r[3].a.next = self.mag.val().get_bits::<16>(16);
        self.mul_r[3].b.next = self.stressed.val().get_bits::<16>(16);
        self.m_ctl.d.next = bit_cast::<4, 1>(self.valid.val().into())
            | (bit_cast::<4, 1>(self.first.val().into()) << 1)
            | (bit_cast::<4, 1>(self.last.val().into()) << 2)
            | (bit_cast::<4, 1>(self.neg.val().into()) << 3);
        self.a_ctl.d.next = self.m_ctl.q.val();
        self.a2_ctl.d.next = self.a_ctl.q.val();
        // Stage B: fold the partial products into 16-bit columns.
        self.b_s[0].d.next = bit_cast::<COL_BITS, 16>(self.a2_s[0].q.val().get_bits::<16>(0));
        self.b_s[1].d.next = bit_cast::<COL_BITS, 16>(self.a2_s[0].q.val().get_bits::<16>(16))
            + bit_cast::<COL_BITS, 16>(self.a2_s[1].q.val().get_bits::<16>(0))
            + bit_cast::<COL_BITS, 16>(self.a2_s[2].q.val().get_bits::<16>(0));
        self.b_s[2].d.next = bit_cast::<COL_BITS, 16>(self.a2_s[1].q.val().get_bits::<16>(16))
            + bit_cast::<COL_BITS, 16>(self.a2_s[2].q.val().get_bits::<16>(16))
            + bit_cast::<COL_BITS, 16>(self.a2_s[3].q.val().get_bits::<16>(0));
        self.b_s[3].d.next = bit_cast::<COL_BITS, 16>(self.a2_s[3].q.val().get_bits::<16>(16));
        self.b_r[0].d.next = bit_cast::<COL_BITS, 16>(self.a2_r[0].q.val().get_bits::<16>(0));
        self.b_r[1].d.next = bit_cast::<COL_BITS, 16>(self.a2_r[0].q.val().get_bits::<16>(16))
            + bit_cast::<COL_BITS, 16>(self.a2_r[1].q.val().get_bits::<16>(0))
            + bit_cast::<COL_BITS, 16>(self.a2_r[2].q.val().get_bits::<16>(0));
        self.b_r[2].d.next = bit_cast::<COL_BITS, 16>(self.a2_r[1].q.val().get_bits::<16>(16))
            + bit_cast::<COL_BITS, 16>(self.a2_r[2].q.val().get_bits::<16>(16))
            + bit_cast::<COL_BITS, 16>(self.a2_r[3].q.val().get_bits::<16>(0));
        self.b_r[3].d.next = bit_cast::<COL_BITS, 16>(self.a2_r[3].q.val().get_bits::<16>(16));
        self.b_ctl.d.next = self.a2_ctl.q.val();
        // Stage C: signed accumulate (first: restart from zero).
        if self.b_ctl.q.val().get_bit(0) {
            for i in 0..4 {
                if self.b_ctl.q.val().get_bit(1) {
                    if self.b_ctl.q.val().get_bit(3) {
                        self.c_s[i].d.next = bits::<COL_BITS>(0) - self.b_s[i].q.val();
                        self.c_r[i].d.next = bits::<COL_BITS>(0) - self.b_r[i].q.val();
                    } else {
                        self.c_s[i].d.next = self.b_s[i].q.val();
                        self.c_r[i].d.next = self.b_r[i].q.val();
                    }
                } else if self.b_ctl.q.val().get_bit(3) {
                    self.c_s[i].d.next = self.c_s[i].q.val() - self.b_s[i].q.val();
                    self.c_r[i].d.next = self.c_r[i].q.val() - self.b_r[i].q.val();
                } else {
                    self.c_s[i].d.next = self.c_s[i].q.val() + self.b_s[i].q.val();
                    self.c_r[i].d.next = self.c_r[i].q.val() + self.b_r[i].q.val();
                }
            }
        }
        self.c_done.d.next = self.b_ctl.q.val().get_bit(0) & self.b_ctl.q.val().get_bit(2);
        // Stage D: carry column 0 into column 1.
        self.sh_c0s.next = bit_cast::<COL_BITS, 8>(self.c_s[0].q.val().get_bits::<8>(16));
        if self.c_s[0].q.val().get_bit(COL_BITS - 1) {
            self.sh_c0s.next =
                bit_cast::<COL_BITS, 8>(self.c_s[0].q.val().get_bits::<8>(16)) | self.sext.val();
        }
        self.sh_c0r.next = bit_cast::<COL_BITS, 8>(self.c_r[0].q.val().get_bits::<8>(16));
        if self.c_r[0].q.val().get_bit(COL_BITS - 1) {
            self.sh_c0r.next =
                bit_cast::<COL_BITS, 8>(self.c_r[0].q.val().get_bits::<8>(16)) | self.sext.val();
        }
        // Stages D, E, F run free (no clock enable): each samples its predecessor every cycle,
        // and the `done` bit beside them says which cycle holds an account's columns (stage D
        // samples the accumulators in the cycle after the last term was added, before the next
        // account's first term replaces them).
        self.d_s[0].d.next = self.c_s[1].q.val() + self.sh_c0s.val();
        self.d_s[1].d.next = self.c_s[2].q.val();
        self.d_s[2].d.next = self.c_s[3].q.val();
        self.d_r[0].d.next = self.c_r[1].q.val() + self.sh_c0r.val();
        self.d_r[1].d.next = self.c_r[2].q.val();
        self.d_r[2].d.next = self.c_r[3].q.val();
        self.d_done.d.next = self.c_done.q.val();
        // Stage E: carry into column 2.
        self.sh_d0s.next = bit_cast::<COL_BITS, 8>(self.d_s[0].q.val().get_bits::<8>(16));
        if self.d_s[0].q.val().get_bit(COL_BITS - 1) {
            self.sh_d0s.next =
                bit_cast::<COL_BITS, 8>(self.d_s[0].q.val().get_bits::<8>(16)) | self.sext.val();
        }
        self.sh_d0r.next = bit_cast::<COL_BITS, 8>(self.d_r[0].q.val().get_bits::<8>(16));
        if self.d_r[0].q.val().get_bit(COL_BITS - 1) {
            self.sh_d0r.next =
                bit_cast::<COL_BITS, 8>(self.d_r[0].q.val().get_bits::<8>(16)) | self.sext.val();
        }
        self.e_s[0].d.next = self.d_s[1].q.val() + self.sh_d0s.val();
        self.e_s[1].d.next = self.d_s[2].q.val();
        self.e_r[0].d.next = self.d_r[1].q.val() + self.sh_d0r.val();
        self.e_r[1].d.next = self.d_r[2].q.val();
        self.e_done.d.next = self.d_done.q.val();
        // Stage F: carry into column 3; its sign is the verdict.
        self.sh_e0s.next = bit_cast::<COL_BITS, 8>(self.e_s[0].q.val().get_bits::<8>(16));
        if self.e_s[0].q.val().get_bit(COL_BITS - 1) {
            self.sh_e0s.next =
                bit_cast::<COL_BITS, 8>(self.e_s[0].q.val().get_bits::<8>(16)) | self.sext.val();
        }
        self.sh_e0r.next = bit_cast::<COL_BITS, 8>(self.e_r[0].q.val().get_bits::<8>(16));
        if self.e_r[0].q.val().get_bit(COL_BITS - 1) {
            self.sh_e0r.next =
                bit_cast::<COL_BITS, 8>(self.e_r[0].q.val().get_bits::<8>(16)) | self.sext.val();
        }
        self.top_s.next = self.e_s[1].q.val() + self.sh_e0s.val();
        self.top_r.next = self.e_r[1].q.val() + self.sh_e0r.val();
        self.f_breach.d.next = self.top_s.val().get_bit(COL_BITS - 1);
        self.f_at_risk.d.next = self.top_r.val().get_bit(COL_BITS - 1);
        self.f_done.d.next = self.e_done.q.val();
        self.out_valid.next = self.f_done.q.val();
        self.breach.next = self.f_breach.q.val();
        self.at_risk.next = self.f_at_risk.q.val();
    }
}
