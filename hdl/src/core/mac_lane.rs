//! One multiply-accumulate lane: the breach and at-risk verdicts of one account.
//!
//! ```text
//!  mag,neg ──┬─> halves, sums ─> 2x 16x16 + 17x17 (spot)  ─> reg ─> pairs ─> columns ─> +-acc[0..4] ─> carry ─> carry ─> sign ─> breach
//!  spot ─────┘                                                                        (first: 0)
//!  stressed ─┴─> halves, sums ─> 2x 16x16 + 17x17 (stress) ─> reg ─> pairs ─> columns ─> +-acc[0..4] ─> carry ─> carry ─> sign ─> at_risk
//!      stage P          stages M, A                     A2      B1       B2        stage C       D        E        F
//! ```
//!
//! The coefficient arrives in sign-magnitude (`neg`, `mag` below 2^31, which is why
//! `COEFF_MIN = -i32::MAX`), with the spot and stressed prices already selected for its sign.
//! Each 32x32 product is built from three Karatsuba partial products (stage P registers the
//! 16-bit halves `a0, a1` of the magnitude and `b0, b1` of the price and the 17-bit sums
//! `a0 + a1`, `b0 + b1`): `p0 = a0 * b0` and `p1 = a1 * b1` in pipelined 16x16 multipliers
//! ([`crate::core::mul::Mul16`]) and `p2 = (a0 + a1) * (b0 + b1)` in a 17x17 one
//! ([`crate::core::mul::Mul17`]) (input registers, stage M; product registers, stage A), so a
//! lane uses six multipliers, not eight. The products are copied into fabric registers
//! (stage A2, so the route from the DSP block is a cycle of its own) and folded into four
//! signed columns of weight 2^0, 2^16, 2^32, 2^48, `p0L`, `p0H + p2L - p0L - p1L`,
//! `p2H + p1L - p0H - p1H`, `p1H` (stage B1 adds the pairs, stage B2 subtracts them; each
//! column in `(-2^17, 2^18)`, see [`crate::golden::product_columns`]). Four signed 24-bit column
//! accumulators add or subtract them (stage C): with at most 16 terms no column leaves +-2^22,
//! so no simulated signal is wider than 32 bits. When an account's last term has been
//! accumulated, three carry stages (D, E, F) propagate the columns' high bits upward; the top
//! column's sign is the sign of the exact 68-bit health (see [`crate::golden::columns_negative`]).
//! Stages D, E and F have no clock enable: each samples its predecessor every cycle, and the
//! `done` bit beside them marks the cycle that holds an account's columns.
//! Latency: a term at the inputs in cycle t is in the accumulators after cycle t+6; the verdict of
//! a term with `last` set is on `breach`/`at_risk` with `out_valid` after the clock edge ending cycle t+9.
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
//! `out_valid`.

use crate::core::col_acc::ColumnAcc;
use crate::core::mul::{Mul16, Mul17};
use rust_hdl::prelude::*;

/// Width of the column accumulators (defined in [`golden`](crate::golden), which checks sums
/// against it and builds without the `core` feature).
pub use crate::golden::COL_BITS;

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
    // Stage P: the 16-bit halves of the magnitude (a0, a1) and of the prices (b0, b1), and the
    // Karatsuba sums a0 + a1, b0 + b1 (17 bits; the magnitude's sum is shared by both vectors).
    p_a: [DFF<Bits<16>>; 2],
    p_sa: DFF<Bits<17>>,
    p_bs: [DFF<Bits<16>>; 2],
    p_sbs: DFF<Bits<17>>,
    p_br: [DFF<Bits<16>>; 2],
    p_sbr: DFF<Bits<17>>,
    p_ctl: DFF<Bits<4>>,
    // Stages M and A: the partial products p0 = a0 b0, p1 = a1 b1 (mul_*[0], mul_*[1]) and
    // p2 = (a0 + a1)(b0 + b1) (mid_*) of spot (s) and stressed (r), in pipelined multipliers
    // (input registers = stage M, product register = stage A).
    mul_s: [Mul16; 2],
    mul_r: [Mul16; 2],
    mid_s: Mul17,
    mid_r: Mul17,
    m_ctl: DFF<Bits<4>>,
    a_ctl: DFF<Bits<4>>,
    // Stage A2: the products again, in fabric registers. A lane's multipliers sit where the
    // DSP rows are; the route from them to the column fold gets a cycle of its own (run 7's
    // critical path: 5.38 ns of routing from a MULT18X18D output before the fold's carry chain).
    a2_s: [DFF<Bits<32>>; 2],
    a2_r: [DFF<Bits<32>>; 2],
    a2_ms_lo: DFF<Bits<16>>,
    a2_ms_hi: DFF<Bits<18>>,
    a2_mr_lo: DFF<Bits<16>>,
    a2_mr_hi: DFF<Bits<18>>,
    a2_ctl: DFF<Bits<4>>,
    // Stage B1: column 0, the pair sums p0H + p2L, p0L + p1L, p2H + p1L, p0H + p1H, column 3.
    b1_s: [DFF<Bits<COL_BITS>>; 6],
    b1_r: [DFF<Bits<COL_BITS>>; 6],
    b1_ctl: DFF<Bits<4>>,
    // Stage B2: the four signed columns.
    b_s: [DFF<Bits<COL_BITS>>; 4],
    b_r: [DFF<Bits<COL_BITS>>; 4],
    // Stage C (accumulators): one kept module per column, each with its own copy of the
    // control bits (registered at stage B2).
    acc_s: [ColumnAcc; 4],
    acc_r: [ColumnAcc; 4],
    b_done: DFF<Bit>,
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
            p_a: Default::default(),
            p_sa: Default::default(),
            p_bs: Default::default(),
            p_sbs: Default::default(),
            p_br: Default::default(),
            p_sbr: Default::default(),
            p_ctl: Default::default(),
            mul_s: Default::default(),
            mul_r: Default::default(),
            mid_s: Default::default(),
            mid_r: Default::default(),
            m_ctl: Default::default(),
            a_ctl: Default::default(),
            a2_s: Default::default(),
            a2_r: Default::default(),
            a2_ms_lo: Default::default(),
            a2_ms_hi: Default::default(),
            a2_mr_lo: Default::default(),
            a2_mr_hi: Default::default(),
            a2_ctl: Default::default(),
            b1_s: Default::default(),
            b1_r: Default::default(),
            b1_ctl: Default::default(),
            b_s: Default::default(),
            b_r: Default::default(),
            acc_s: Default::default(),
            acc_r: Default::default(),
            b_done: Default::default(),
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
        for i in 0..2 {
            self.p_a[i].clock.next = self.clock.val();
            self.p_bs[i].clock.next = self.clock.val();
            self.p_br[i].clock.next = self.clock.val();
            self.mul_s[i].clock.next = self.clock.val();
            self.mul_r[i].clock.next = self.clock.val();
            self.a2_s[i].clock.next = self.clock.val();
            self.a2_s[i].d.next = self.mul_s[i].p.val();
            self.a2_r[i].clock.next = self.clock.val();
            self.a2_r[i].d.next = self.mul_r[i].p.val();
        }
        for i in 0..6 {
            self.b1_s[i].clock.next = self.clock.val();
            self.b1_r[i].clock.next = self.clock.val();
        }
        for i in 0..4 {
            self.b_s[i].clock.next = self.clock.val();
            self.b_r[i].clock.next = self.clock.val();
            self.acc_s[i].b.next = self.b_s[i].q.val();
            self.acc_r[i].b.next = self.b_r[i].q.val();
            self.acc_s[i].clock.next = self.clock.val();
            self.acc_s[i].ctl.next = self.b1_ctl.q.val();
            self.acc_r[i].clock.next = self.clock.val();
            self.acc_r[i].ctl.next = self.b1_ctl.q.val();
        }
        for i in 0..3 {
            self.d_s[i].clock.next = self.clock.val();
            self.d_r[i].clock.next = self.clock.val();
        }
        for i in 0..2 {
            self.e_s[i].clock.next = self.clock.val();
            self.e_r[i].clock.next = self.clock.val();
        }
        self.mid_s.clock.next = self.clock.val();
        self.mid_r.clock.next = self.clock.val();
        dff_setup!(
            self, clock, p_sa, p_sbs, p_sbr, p_ctl, m_ctl, a_ctl, a2_ms_lo, a2_ms_hi, a2_mr_lo, a2_mr_hi,
            a2_ctl, b1_ctl, b_done, c_done, d_done, e_done, f_breach, f_at_risk, f_done
        );
        // Stage P: halves and sums. ctl = {neg, last, first, valid}.
        self.p_a[0].d.next = self.mag.val().get_bits::<16>(0);
        self.p_a[1].d.next = self.mag.val().get_bits::<16>(16);
        self.p_sa.d.next = bit_cast::<17, 16>(self.mag.val().get_bits::<16>(0))
            + bit_cast::<17, 16>(self.mag.val().get_bits::<16>(16));
        self.p_bs[0].d.next = self.spot.val().get_bits::<16>(0);
        self.p_bs[1].d.next = self.spot.val().get_bits::<16>(16);
        self.p_sbs.d.next = bit_cast::<17, 16>(self.spot.val().get_bits::<16>(0))
            + bit_cast::<17, 16>(self.spot.val().get_bits::<16>(16));
        self.p_br[0].d.next = self.stressed.val().get_bits::<16>(0);
        self.p_br[1].d.next = self.stressed.val().get_bits::<16>(16);
        self.p_sbr.d.next = bit_cast::<17, 16>(self.stressed.val().get_bits::<16>(0))
            + bit_cast::<17, 16>(self.stressed.val().get_bits::<16>(16));
        self.p_ctl.d.next = bit_cast::<4, 1>(self.valid.val().into())
            | (bit_cast::<4, 1>(self.first.val().into()) << 1)
            | (bit_cast::<4, 1>(self.last.val().into()) << 2)
            | (bit_cast::<4, 1>(self.neg.val().into()) << 3);
        // Stages M, A: partial products (two-cycle multipliers).
        for i in 0..2 {
            self.mul_s[i].a.next = self.p_a[i].q.val();
            self.mul_s[i].b.next = self.p_bs[i].q.val();
            self.mul_r[i].a.next = self.p_a[i].q.val();
            self.mul_r[i].b.next = self.p_br[i].q.val();
        }
        self.mid_s.a.next = self.p_sa.q.val();
        self.mid_s.b.next = self.p_sbs.q.val();
        self.mid_r.a.next = self.p_sa.q.val();
        self.mid_r.b.next = self.p_sbr.q.val();
        self.m_ctl.d.next = self.p_ctl.q.val();
        self.a_ctl.d.next = self.m_ctl.q.val();
        // Stage A2: fabric copies.
        self.a2_ms_lo.d.next = self.mid_s.p_lo.val();
        self.a2_ms_hi.d.next = self.mid_s.p_hi.val();
        self.a2_mr_lo.d.next = self.mid_r.p_lo.val();
        self.a2_mr_hi.d.next = self.mid_r.p_hi.val();
        self.a2_ctl.d.next = self.a_ctl.q.val();
        // Stage B1: column 0, the pair sums, column 3.
        self.b1_s[0].d.next = bit_cast::<COL_BITS, 16>(self.a2_s[0].q.val().get_bits::<16>(0));
        self.b1_s[1].d.next = bit_cast::<COL_BITS, 16>(self.a2_s[0].q.val().get_bits::<16>(16))
            + bit_cast::<COL_BITS, 16>(self.a2_ms_lo.q.val());
        self.b1_s[2].d.next = bit_cast::<COL_BITS, 16>(self.a2_s[0].q.val().get_bits::<16>(0))
            + bit_cast::<COL_BITS, 16>(self.a2_s[1].q.val().get_bits::<16>(0));
        self.b1_s[3].d.next = bit_cast::<COL_BITS, 18>(self.a2_ms_hi.q.val())
            + bit_cast::<COL_BITS, 16>(self.a2_s[1].q.val().get_bits::<16>(0));
        self.b1_s[4].d.next = bit_cast::<COL_BITS, 16>(self.a2_s[0].q.val().get_bits::<16>(16))
            + bit_cast::<COL_BITS, 16>(self.a2_s[1].q.val().get_bits::<16>(16));
        self.b1_s[5].d.next = bit_cast::<COL_BITS, 16>(self.a2_s[1].q.val().get_bits::<16>(16));
        self.b1_r[0].d.next = bit_cast::<COL_BITS, 16>(self.a2_r[0].q.val().get_bits::<16>(0));
        self.b1_r[1].d.next = bit_cast::<COL_BITS, 16>(self.a2_r[0].q.val().get_bits::<16>(16))
            + bit_cast::<COL_BITS, 16>(self.a2_mr_lo.q.val());
        self.b1_r[2].d.next = bit_cast::<COL_BITS, 16>(self.a2_r[0].q.val().get_bits::<16>(0))
            + bit_cast::<COL_BITS, 16>(self.a2_r[1].q.val().get_bits::<16>(0));
        self.b1_r[3].d.next = bit_cast::<COL_BITS, 18>(self.a2_mr_hi.q.val())
            + bit_cast::<COL_BITS, 16>(self.a2_r[1].q.val().get_bits::<16>(0));
        self.b1_r[4].d.next = bit_cast::<COL_BITS, 16>(self.a2_r[0].q.val().get_bits::<16>(16))
            + bit_cast::<COL_BITS, 16>(self.a2_r[1].q.val().get_bits::<16>(16));
        self.b1_r[5].d.next = bit_cast::<COL_BITS, 16>(self.a2_r[1].q.val().get_bits::<16>(16));
        self.b1_ctl.d.next = self.a2_ctl.q.val();
        // Stage B2: the signed columns (two's complement in COL_BITS); stage C accumulates them
        // (first: restart from zero) in the column modules.
        self.b_s[0].d.next = self.b1_s[0].q.val();
        self.b_s[1].d.next = self.b1_s[1].q.val() - self.b1_s[2].q.val();
        self.b_s[2].d.next = self.b1_s[3].q.val() - self.b1_s[4].q.val();
        self.b_s[3].d.next = self.b1_s[5].q.val();
        self.b_r[0].d.next = self.b1_r[0].q.val();
        self.b_r[1].d.next = self.b1_r[1].q.val() - self.b1_r[2].q.val();
        self.b_r[2].d.next = self.b1_r[3].q.val() - self.b1_r[4].q.val();
        self.b_r[3].d.next = self.b1_r[5].q.val();
        self.b_done.d.next = self.b1_ctl.q.val().get_bit(0) & self.b1_ctl.q.val().get_bit(2);
        self.c_done.d.next = self.b_done.q.val();
        // Stage D: carry column 0 into column 1.
        self.sh_c0s.next = bit_cast::<COL_BITS, 8>(self.acc_s[0].acc.val().get_bits::<8>(16));
        if self.acc_s[0].acc.val().get_bit(COL_BITS - 1) {
            self.sh_c0s.next =
                bit_cast::<COL_BITS, 8>(self.acc_s[0].acc.val().get_bits::<8>(16)) | self.sext.val();
        }
        self.sh_c0r.next = bit_cast::<COL_BITS, 8>(self.acc_r[0].acc.val().get_bits::<8>(16));
        if self.acc_r[0].acc.val().get_bit(COL_BITS - 1) {
            self.sh_c0r.next =
                bit_cast::<COL_BITS, 8>(self.acc_r[0].acc.val().get_bits::<8>(16)) | self.sext.val();
        }
        // Stages D, E, F run free (no clock enable): each samples its predecessor every cycle,
        // and the `done` bit beside them says which cycle holds an account's columns (stage D
        // samples the accumulators in the cycle after the last term was added, before the next
        // account's first term replaces them).
        self.d_s[0].d.next = self.acc_s[1].acc.val() + self.sh_c0s.val();
        self.d_s[1].d.next = self.acc_s[2].acc.val();
        self.d_s[2].d.next = self.acc_s[3].acc.val();
        self.d_r[0].d.next = self.acc_r[1].acc.val() + self.sh_c0r.val();
        self.d_r[1].d.next = self.acc_r[2].acc.val();
        self.d_r[2].d.next = self.acc_r[3].acc.val();
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
