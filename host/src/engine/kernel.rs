//! Full-scan kernels: one block of 64 slots in, its breach and at-risk words out, plus the
//! lanes whose sign the floating-point filter could not decide (rechecked exactly by the
//! engine in integers).
//!
//! Two kinds of arithmetic, both giving bitmaps bit-identical to the reference:
//!
//! # Exact split (`Avx2Fma`, `Avx512`, `Portable` on column blocks): no recheck
//!
//! - every price is split as `p = p_hi * 2^16 + p_lo` with `p_hi, p_lo < 2^16`;
//! - a coefficient is an integer with `|c| <= 2^31 - 1`, exact in `f64`; so each product
//!   `|c * p_hi|, |c * p_lo| < 2^31 * 2^16 = 2^47` is an integer below 2^53: exact;
//! - an account has at most 16 nonzero terms (zero coefficients add an exact 0), so each of
//!   the two partial sums `H = sum c * p_hi` and `L = sum c * p_lo` stays below
//!   `16 * 2^47 = 2^51` in magnitude at every step: every addition (or FMA) is exact;
//! - `H * 2^16` is exact (a power-of-two scale, far from overflow), and the one rounded
//!   operation, `fl(H * 2^16 + L)`, rounds a real number to the nearest `f64` with ties to
//!   even. Rounding is monotonic and 0 is representable, so the rounded value is negative if
//!   and only if `H * 2^16 + L = health` is negative.
//!
//! With up to 64 terms (the software engine's limit, [`MAX_SOFTWARE_TERMS`](liqscan_hdl::abi::MAX_SOFTWARE_TERMS)) the argument
//! holds unchanged: `64 * (2^31 - 1) * (2^16 - 1) < 2^53`, so every partial sum is still an
//! integer of magnitude below 2^53, exact in `f64`. No bound depends on the term count here.
//!
//! Cost: 4 FMAs per coefficient (spot and stressed, two halves each).
//!
//! # Floating-point filter (`Avx2Filter` and `Avx512Filter`; every x86 kernel on row blocks)
//!
//! One FMA chain per health, on whole prices: `s_k = fl(c_k * p_k + s_{k-1})`, `s_0 = 0`.
//! Claim: `|s_n - h| < 2^18 + 1` where `h = sum c_k p_k` is the exact health. Proof:
//!
//! - `c_k` (`|c_k| < 2^31`) and `p_k` (`< 2^32`) are exact in `f64`; their product is a real
//!   `x_k` with `|x_k| < 2^63`; an FMA rounds `s_{k-1} + x_k` once, to nearest:
//!   `s_k = (s_{k-1} + x_k)(1 + d_k)` with `|d_k| <= u = 2^-53` (no overflow or underflow:
//!   all magnitudes are integers below 2^68).
//! - Let `e_k = s_k - (x_1 + .. + x_k)` and `S = sum |x_k|`. Then
//!   `e_k = e_{k-1} + d_k (x_1 + .. + x_k + e_{k-1})`, so
//!   `|e_k| <= (1 + u) |e_{k-1}| + u S`, and by induction `|e_n| <= S ((1 + u)^n - 1)`.
//! - A zero coefficient (an empty lane of a column or row) is an exact step:
//!   `fl(0 * p + s) = s`. So `n` counts nonzero terms only: `n <= 16`, and
//!   `S < 16 * 2^31 * 2^32 = 2^67`. `(1 + u)^16 - 1 < 16u (1 + 2^-48)`, hence
//!   `|e_n| < 2^67 * 2^4 * 2^-53 * (1 + 2^-48) = 2^18 (1 + 2^-48) < 2^18 + 1`.
//!
//! The order of the terms does not matter to the bound. So with [`FILTER_BOUND`]` = 2^19`:
//! `s_n < -2^19` implies `h < 0` (breach), `s_n > 2^19` implies `h > 0` (no breach), and only
//! lanes with `|s_n| <= 2^19` (spot or stressed) are rechecked exactly by the engine
//! (`reference::health` of that slot's terms). In a real book healths of a few hundred
//! thousand value quanta are rare, so the recheck almost never runs; `engine_edges.rs` builds
//! books of health exactly -1, 0, +1 from terms of full magnitude to make it run.
//!
//! Cost: 2 FMAs per coefficient.
//!
//! # Single-precision filter (`Avx512Single`, `Avx2Single` on column blocks)
//!
//! The same idea in `f32`, 16 lanes per vector, with a margin relative to the terms' size
//! instead of a fixed band. Positive terms and the magnitudes of negative ones go to separate
//! FMA chains (`fmadd` and `fnmadd`): `P = sum over c_k > 0 of c_k p_k` and `M = sum over
//! c_k < 0 of |c_k| p_k`, so `h = P - M`, and no chain ever cancels. A column of one sign
//! feeds one chain; a mixed column feeds both under a mask (a masked-off lane keeps its sum
//! exactly; AVX2, which has no masks, splits `c` into `max(c, 0)` and `min(c, 0)`, and the
//! zero half adds an exact 0). With `K = 1 + 2^-18` ([`RATIO_MARGIN`]) the filter decides
//! `h >= 0` when `P^ >= fl(K M^)`, `h < 0` when `M^ > fl(K P^)`, and leaves the lane to the
//! exact recheck otherwise. Proof, with `u = 2^-24`:
//!
//! - `c_k` and `p_k` are rounded to nearest when converted: `c_k (1 + a_k)`, `p_k (1 + b_k)`,
//!   `|a_k|, |b_k| <= u`. Each FMA rounds once: `s_j = (s_{j-1} + x^_j)(1 + d_j)`. A zero term
//!   is exact (`fl(0 * p + s) = s`), so at most 16 roundings touch a term in its chain, 18 with
//!   the two conversions. Nothing overflows (magnitudes below 2^69) or underflows (integers).
//! - Every value a chain adds is nonnegative, so `P (1 - u)^18 <= P^ <= P (1 + u)^18`, and
//!   the same for `M`. Write `r = ((1 + u) / (1 - u))^18 / (1 - u) < 1 + 38u` (it is
//!   `1 + 37u` plus terms in `u^2`); `K = 1 + 64u`.
//! - Case `P^ >= fl(K M^) >= K M^ (1 - u)`. If `M^ = 0` then `M = 0` and `h = P >= 0`.
//!   Otherwise `h = P - M >= P^ / (1 + u)^18 - M^ / (1 - u)^18 >= M^ (K (1 - u) - (1 + u)^18
//!   / (1 - u)^18) / (1 + u)^18`, positive since `K > r`.
//! - Case `M^ > fl(K P^) >= K P^ (1 - u)`: symmetrically `M > P`, so `h < 0` (if `P^ = 0`,
//!   `P = 0` and `M >= M^ / (1 + u)^18 > 0`).
//! - Both cases cannot hold at once (`P^ >= fl(K M^) >= M^ > fl(K P^) >= P^`), and the
//!   multiplications and compares are done as stated, in `f32`, so the proof covers them.
//!
//! So the filter leaves open only healths within about 2^-18 of the larger of the two sides
//! (two millionths of the account's gross exposure), rechecked exactly as for the other
//! filters; an empty lane (`P^ = M^ = 0`) is decided, `h = 0`. The conversions rely on the
//! default round-to-nearest mode of MXCSR, which Rust code never changes.
//!
//! # More than 16 terms
//!
//! The software engine holds accounts of up to 64 terms ([`MAX_SOFTWARE_TERMS`](liqscan_hdl::abi::MAX_SOFTWARE_TERMS)); the card's
//! 16 is what the two filter bounds above assume. A block with a slot of more than 16 terms is
//! marked wide and its filters use the bounds for `n <= 64`:
//!
//! - double filter: `S < 64 * 2^63 = 2^69` and `(1 + u)^64 - 1 < 64u (1 + 2^-46)`, so
//!   `|e_n| < 2^69 * 2^6 * 2^-53 * (1 + 2^-46) < 2^22 + 1`; the band is
//!   [`FILTER_BOUND_WIDE`]` = 2^23`;
//! - single filter: at most 64 roundings in a chain plus the two conversions, so
//!   `r = ((1 + u) / (1 - u))^66 / (1 - u) < 1 + 134u`, and with
//!   [`RATIO_MARGIN_WIDE`]` = 1 + 2^-16 = 1 + 256u`, `K (1 - u) > r` as the proof needs;
//!   magnitudes stay below 2^70, far from overflow.
//!
//! Blocks without such a slot keep the tighter bounds, so books of card-sized accounts
//! recheck exactly as before.
//!
//! Cost: 2 FMAs per coefficient, 16 lanes per vector where the double filters have 8, and
//! one conversion per 16 coefficients (measured: 1.7x the speed of `Avx512Filter` on book A,
//! docs/lab/performance.md).

use liqscan_hdl::abi::PriceEntry;

use super::blocks::{BlockView, Column, HAS_NEG, HAS_POS, Held, LANES, Row};

/// Half-width of the band around 0 in which the floating-point filter rechecks (module doc).
pub(crate) const FILTER_BOUND: f64 = (1u64 << 19) as f64;

/// [`FILTER_BOUND`] for blocks holding an account of more than 16 (up to 64) terms (module
/// doc, "More than 16 terms").
pub(crate) const FILTER_BOUND_WIDE: f64 = (1u64 << 23) as f64;

/// The single-precision filter's margin: one side's sum must exceed the other's times
/// `1 + 2^-18` for the filter to decide (module doc).
pub(crate) const RATIO_MARGIN: f32 = 1.0 + 1.0 / (1u32 << 18) as f32;

/// [`RATIO_MARGIN`] for blocks holding an account of more than 16 (up to 64) terms (module
/// doc, "More than 16 terms").
pub(crate) const RATIO_MARGIN_WIDE: f32 = 1.0 + 1.0 / (1u32 << 16) as f32;

/// The full-scan kernel an engine uses. All give the same, exact, bitmaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// AVX2 + FMA floating-point filter: one FMA chain per health, exact integer recheck of
    /// near-ties (module doc).
    Avx2Filter,
    /// AVX2 + FMA exact split arithmetic (x86-64 only, chosen at run time when the CPU has
    /// them); row blocks use the filter.
    Avx2Fma,
    /// AVX-512F exact split arithmetic, 16 lanes per step; row blocks use the AVX2 filter.
    Avx512,
    /// AVX-512F floating-point filter on column blocks (the same FMA chain per health as
    /// `Avx2Filter`, 8 lanes per vector, so the same bound holds); row blocks use the AVX2
    /// filter.
    Avx512Filter,
    /// AVX-512F single-precision filter on column blocks, 16 lanes per vector: positive and
    /// negative terms summed apart and compared with a relative margin (module doc); row
    /// blocks use the AVX2 filter.
    Avx512Single,
    /// AVX2 + FMA single-precision filter on column blocks (the `Avx512Single` arithmetic, 8
    /// lanes per vector); row blocks use the AVX2 filter.
    Avx2Single,
    /// Plain Rust, any CPU: exact split on columns, exact integers on rows.
    Portable,
}

/// One block's result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Words {
    pub breach: u64,
    pub at_risk: u64,
    /// Lanes the filter could not decide: the engine recomputes them exactly.
    pub recheck: u64,
}

impl Kernel {
    /// The fastest kernel this CPU runs (by measurement on the project's machine,
    /// docs/lab/performance.md).
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // AVX-512 single-precision filter: 1.7x the AVX-512 double filter's speed on
                // book A's columns, 2.2x the AVX2 filter's (docs/lab/performance.md, run 7).
                if std::arch::is_x86_feature_detected!("avx512f") {
                    return Kernel::Avx512Single;
                }
                // AVX2 single-precision filter: 1.55x the AVX2 double filter on book A.
                return Kernel::Avx2Single;
            }
        }
        Kernel::Portable
    }

    /// Scans one block.
    #[inline]
    pub(crate) fn scan_block(self, v: &BlockView<'_>, prices: &PriceTables) -> Words {
        let (split, flat) = (&prices.split[..], &prices.flat[..]);
        match (self, v) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY (all arms below): these kernels are only constructed by `detect` after
            // checking the CPU, or downgraded by `supported` otherwise (`SoftwareEngine`
            // calls it). `Avx512` implies avx2 and fma on every CPU that has it and is
            // checked for them in `supported`.
            (
                Kernel::Avx2Fma
                | Kernel::Avx2Filter
                | Kernel::Avx512
                | Kernel::Avx512Filter
                | Kernel::Avx512Single
                | Kernel::Avx2Single,
                BlockView::Rows { rows, wide },
            ) => unsafe { avx2::scan_rows(rows, flat, bound(*wide)) },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512Single, BlockView::Cols { cols, held, wide }) => unsafe {
                avx512::single_cols(cols, held, &prices.single, margin(*wide))
            },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2Single, BlockView::Cols { cols, held, wide }) => unsafe {
                avx2::single_cols(cols, held, &prices.single, margin(*wide))
            },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512Filter, BlockView::Cols { cols, held, wide }) => unsafe {
                avx512::filter_cols(cols, held, flat, bound(*wide))
            },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2Filter, BlockView::Cols { cols, held, wide }) => unsafe {
                avx2::filter_cols(cols, held, flat, bound(*wide))
            },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx2Fma, BlockView::Cols { cols, held, .. }) => unsafe {
                avx2::scan_cols(cols, held, split)
            },
            #[cfg(target_arch = "x86_64")]
            (Kernel::Avx512, BlockView::Cols { cols, held, .. }) => unsafe {
                avx512::scan_cols(cols, held, split)
            },
            (_, BlockView::Rows { rows, .. }) => portable_rows(rows, flat),
            (_, BlockView::Cols { cols, held, .. }) => portable_cols(cols, held, split),
        }
    }

    /// This kernel if the CPU runs it, else the portable one.
    pub(crate) fn supported(self) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 =
                std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
            let ok = match self {
                Kernel::Avx512 | Kernel::Avx512Filter | Kernel::Avx512Single => {
                    std::arch::is_x86_feature_detected!("avx512f") && avx2
                }
                Kernel::Avx2Fma | Kernel::Avx2Filter | Kernel::Avx2Single => avx2,
                Kernel::Portable => true,
            };
            if ok { self } else { Kernel::Portable }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Kernel::Portable
    }

    /// Every kernel this CPU runs, the default first.
    pub fn available() -> Vec<Kernel> {
        let d = Kernel::detect();
        let others = [
            Kernel::Avx2Filter,
            Kernel::Avx2Fma,
            Kernel::Avx512,
            Kernel::Avx512Filter,
            Kernel::Avx512Single,
            Kernel::Avx2Single,
            Kernel::Portable,
        ]
        .into_iter()
        .filter(|k| k.supported() == *k && *k != d);
        std::iter::once(d).chain(others).collect()
    }
}

/// One asset's prices split for the exact `f64` scan. `v[2k]` applies to positive
/// coefficients and `v[2k + 1]` to negative ones, for k = spot hi, spot lo, stressed hi,
/// stressed lo.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
pub(crate) struct SplitPrice {
    pub v: [f64; 8],
}

impl SplitPrice {
    pub fn of(p: &PriceEntry) -> Self {
        let hi = |x: u32| (x >> 16) as f64;
        let lo = |x: u32| (x & 0xffff) as f64;
        SplitPrice {
            v: [
                hi(p.spot.asset),
                hi(p.spot.liability),
                lo(p.spot.asset),
                lo(p.spot.liability),
                hi(p.stressed.asset),
                hi(p.stressed.liability),
                lo(p.stressed.asset),
                lo(p.stressed.liability),
            ],
        }
    }
}

/// One asset's whole prices for the filter: (spot, stressed) for positive coefficients, then
/// (spot, stressed) for negative ones. So the 16-byte pair at `2 * asset + (c < 0)` is what a
/// term needs (a row's `pidx`).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(32))]
pub(crate) struct FlatPrice(pub [f64; 4]);

impl FlatPrice {
    pub fn of(p: &PriceEntry) -> Self {
        FlatPrice([
            p.spot.asset as f64,
            p.stressed.asset as f64,
            p.spot.liability as f64,
            p.stressed.liability as f64,
        ])
    }
}

/// One asset's prices in `f32` for the single-precision filter: spot and stressed for
/// positive coefficients, then spot and stressed for negative ones (as [`FlatPrice`]).
/// Rounded to nearest; the module doc's bound covers that rounding.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(16))]
pub(crate) struct SinglePrice(pub [f32; 4]);

impl SinglePrice {
    pub fn of(p: &PriceEntry) -> Self {
        SinglePrice([
            p.spot.asset as f32,
            p.stressed.asset as f32,
            p.spot.liability as f32,
            p.stressed.liability as f32,
        ])
    }
}

/// The current prices in every form a kernel reads, updated together.
#[derive(Clone, Debug)]
pub(crate) struct PriceTables {
    pub split: Vec<SplitPrice>,
    pub flat: Vec<FlatPrice>,
    pub single: Vec<SinglePrice>,
}

impl PriceTables {
    /// Tables for `assets` assets, every price zero.
    pub fn new(assets: usize) -> Self {
        PriceTables {
            split: vec![SplitPrice::default(); assets],
            flat: vec![FlatPrice::default(); assets],
            single: vec![SinglePrice::default(); assets],
        }
    }

    /// Sets asset `a`'s prices in every table.
    pub fn set(&mut self, a: usize, p: &PriceEntry) {
        self.split[a] = SplitPrice::of(p);
        self.flat[a] = FlatPrice::of(p);
        self.single[a] = SinglePrice::of(p);
    }
}

const SCALE: f64 = 65536.0;

/// The double filters' band for a block (wide: some slot holds more than 16 terms).
#[inline]
fn bound(wide: bool) -> f64 {
    if wide { FILTER_BOUND_WIDE } else { FILTER_BOUND }
}

/// The single filters' margin for a block.
#[inline]
fn margin(wide: bool) -> f32 {
    if wide { RATIO_MARGIN_WIDE } else { RATIO_MARGIN }
}

fn portable_cols(cols: &[Column], held: &[Held], split: &[SplitPrice]) -> Words {
    let mut acc = [[0f64; LANES]; 4];
    for (col, h) in cols.iter().zip(held) {
        let p = &split[h.asset as usize].v;
        for l in 0..LANES {
            let c = col.0[l];
            let neg = (c < 0) as usize;
            let c = c as f64;
            for (k, a) in acc.iter_mut().enumerate() {
                a[l] += c * p[2 * k + neg];
            }
        }
    }
    let mut w = Words::default();
    #[allow(clippy::needless_range_loop)] // the lane index is also the bit index
    for l in 0..LANES {
        w.breach |= (((acc[0][l] * SCALE + acc[1][l]) < 0.0) as u64) << l;
        w.at_risk |= (((acc[2][l] * SCALE + acc[3][l]) < 0.0) as u64) << l;
    }
    w
}

/// Exact integers (the reference's arithmetic, lane by lane).
fn portable_rows(rows: &[Row], flat: &[FlatPrice]) -> Words {
    let mut acc = [[0i128; 2]; LANES];
    for r in rows {
        for ((a, &c), &i) in acc.iter_mut().zip(&r.coeff).zip(&r.pidx) {
            if c != 0 {
                let i = i as usize;
                let p = &flat[i / 2].0[2 * (i % 2)..];
                a[0] += c as i128 * p[0] as i128;
                a[1] += c as i128 * p[1] as i128;
            }
        }
    }
    let mut w = Words::default();
    for (l, a) in acc.iter().enumerate() {
        w.breach |= ((a[0] < 0) as u64) << l;
        w.at_risk |= ((a[1] < 0) as u64) << l;
    }
    w
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{
        Column, FlatPrice, HAS_NEG, HAS_POS, Held, LANES, Row, SCALE, SinglePrice, SplitPrice, Words,
    };

    /// Adds one column's 8 lanes at `chunk` into the 8 sums (spot hi/lo, stressed hi/lo, two
    /// registers of 4 lanes each). `SIGNS` says which prices the column needs: only the asset
    /// price, only the liability price, or a per-lane select by the coefficient's sign bit.
    #[inline(always)]
    fn column<const SIGNS: u8>(col: &Column, p: &SplitPrice, chunk: usize, s: &mut [__m256d; 8]) {
        // SAFETY: the column is 64-byte aligned and holds 64 i32; chunk < 8. The caller
        // enables avx2 and fma.
        unsafe {
            let ci = _mm256_load_si256(col.0.as_ptr().add(chunk * 8) as *const __m256i);
            let c0 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(ci));
            let c1 = _mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(ci));
            for k in 0..4 {
                let (p0, p1) = match SIGNS {
                    HAS_POS => {
                        let pa = _mm256_set1_pd(p.v[2 * k]);
                        (pa, pa)
                    }
                    HAS_NEG => {
                        let pl = _mm256_set1_pd(p.v[2 * k + 1]);
                        (pl, pl)
                    }
                    _ => {
                        let pa = _mm256_set1_pd(p.v[2 * k]);
                        let pl = _mm256_set1_pd(p.v[2 * k + 1]);
                        // blendv picks by the sign bit: negative coefficients take the
                        // liability price.
                        (_mm256_blendv_pd(pa, pl, c0), _mm256_blendv_pd(pa, pl, c1))
                    }
                };
                s[2 * k] = _mm256_fmadd_pd(c0, p0, s[2 * k]);
                s[2 * k + 1] = _mm256_fmadd_pd(c1, p1, s[2 * k + 1]);
            }
        }
    }

    /// Exact split arithmetic, eight lanes at a time with all sums in registers across the
    /// block's columns.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn scan_cols(cols: &[Column], held: &[Held], split: &[SplitPrice]) -> Words {
        let mut w = Words::default();
        let scale = _mm256_set1_pd(SCALE);
        let zero = _mm256_setzero_pd();
        for chunk in 0..LANES / 8 {
            let mut s = [_mm256_setzero_pd(); 8];
            for (col, h) in cols.iter().zip(held) {
                let p = &split[h.asset as usize];
                match h.signs {
                    0 => {}
                    HAS_POS => column::<HAS_POS>(col, p, chunk, &mut s),
                    HAS_NEG => column::<HAS_NEG>(col, p, chunk, &mut s),
                    _ => column::<{ HAS_POS | HAS_NEG }>(col, p, chunk, &mut s),
                }
            }
            // health = hi * 2^16 + lo, one rounding, exact sign.
            for half in 0..2 {
                let spot = _mm256_fmadd_pd(s[half], scale, s[2 + half]);
                let stressed = _mm256_fmadd_pd(s[4 + half], scale, s[6 + half]);
                let shift = chunk * 8 + half * 4;
                let b = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(spot, zero)) as u64;
                let a = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(stressed, zero)) as u64;
                w.breach |= b << shift;
                w.at_risk |= a << shift;
            }
        }
        w
    }

    /// Sign bits of `spot < 0` and `stressed < 0`, and of `|spot| <= B or |stressed| <= B`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn decide(spot: __m256d, stressed: __m256d, bound: f64) -> (u64, u64, u64) {
        let zero = _mm256_setzero_pd();
        let abs = _mm256_castsi256_pd(_mm256_set1_epi64x(i64::MAX));
        let bound = _mm256_set1_pd(bound);
        let b = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(spot, zero)) as u64;
        let a = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(stressed, zero)) as u64;
        let near = _mm256_or_pd(
            _mm256_cmp_pd::<_CMP_LE_OQ>(_mm256_and_pd(spot, abs), bound),
            _mm256_cmp_pd::<_CMP_LE_OQ>(_mm256_and_pd(stressed, abs), bound),
        );
        (b, a, _mm256_movemask_pd(near) as u64)
    }

    #[inline(always)]
    fn filter_column<const SIGNS: u8>(col: &Column, p: &FlatPrice, chunk: usize, s: &mut [__m256d; 4]) {
        // SAFETY: as `column`.
        unsafe {
            let ci = _mm256_load_si256(col.0.as_ptr().add(chunk * 8) as *const __m256i);
            let c0 = _mm256_cvtepi32_pd(_mm256_castsi256_si128(ci));
            let c1 = _mm256_cvtepi32_pd(_mm256_extracti128_si256::<1>(ci));
            for k in 0..2 {
                let (p0, p1) = match SIGNS {
                    HAS_POS => {
                        let pa = _mm256_set1_pd(p.0[k]);
                        (pa, pa)
                    }
                    HAS_NEG => {
                        let pl = _mm256_set1_pd(p.0[2 + k]);
                        (pl, pl)
                    }
                    _ => {
                        let pa = _mm256_set1_pd(p.0[k]);
                        let pl = _mm256_set1_pd(p.0[2 + k]);
                        (_mm256_blendv_pd(pa, pl, c0), _mm256_blendv_pd(pa, pl, c1))
                    }
                };
                s[2 * k] = _mm256_fmadd_pd(c0, p0, s[2 * k]);
                s[2 * k + 1] = _mm256_fmadd_pd(c1, p1, s[2 * k + 1]);
            }
        }
    }

    /// Floating-point filter on columns: sums s[0], s[1] spot (lanes 0..4, 4..8 of the chunk),
    /// s[2], s[3] stressed.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn filter_cols(cols: &[Column], held: &[Held], flat: &[FlatPrice], bound: f64) -> Words {
        let mut w = Words::default();
        for chunk in 0..LANES / 8 {
            let mut s = [_mm256_setzero_pd(); 4];
            for (col, h) in cols.iter().zip(held) {
                let p = &flat[h.asset as usize];
                match h.signs {
                    0 => {}
                    HAS_POS => filter_column::<HAS_POS>(col, p, chunk, &mut s),
                    HAS_NEG => filter_column::<HAS_NEG>(col, p, chunk, &mut s),
                    _ => filter_column::<{ HAS_POS | HAS_NEG }>(col, p, chunk, &mut s),
                }
            }
            for half in 0..2 {
                let (b, a, r) = decide(s[half], s[2 + half], bound);
                let shift = chunk * 8 + half * 4;
                w.breach |= b << shift;
                w.at_risk |= a << shift;
                w.recheck |= r << shift;
            }
        }
        w
    }

    /// Adds one column's 16 lanes at `chunk` to the single-precision sums: s[k] for lanes
    /// 0..8 and s[4 + k] for 8..16, k = 0 spot positive terms, 1 spot negative terms'
    /// magnitudes, 2 and 3 the same for stressed (as the AVX-512 `single_column`). A mixed
    /// column splits each coefficient into `max(c, 0)` and `min(c, 0)`: exact, and the zero
    /// half adds an exact 0 to its chain.
    #[inline(always)]
    fn single_column<const SIGNS: u8>(col: &Column, p: &SinglePrice, chunk: usize, s: &mut [__m256; 8]) {
        // SAFETY: the column is 64-byte aligned and holds 64 i32; chunk < 4. The caller
        // enables avx2 and fma.
        unsafe {
            let zero = _mm256_setzero_ps();
            for half in 0..2 {
                let ci = _mm256_load_si256(col.0.as_ptr().add(chunk * 16 + half * 8) as *const __m256i);
                let c = _mm256_cvtepi32_ps(ci);
                let s = &mut s[4 * half..4 * half + 4];
                match SIGNS {
                    HAS_POS => {
                        s[0] = _mm256_fmadd_ps(c, _mm256_set1_ps(p.0[0]), s[0]);
                        s[2] = _mm256_fmadd_ps(c, _mm256_set1_ps(p.0[1]), s[2]);
                    }
                    HAS_NEG => {
                        s[1] = _mm256_fnmadd_ps(c, _mm256_set1_ps(p.0[2]), s[1]);
                        s[3] = _mm256_fnmadd_ps(c, _mm256_set1_ps(p.0[3]), s[3]);
                    }
                    _ => {
                        let (pos, neg) = (_mm256_max_ps(c, zero), _mm256_min_ps(c, zero));
                        s[0] = _mm256_fmadd_ps(pos, _mm256_set1_ps(p.0[0]), s[0]);
                        s[1] = _mm256_fnmadd_ps(neg, _mm256_set1_ps(p.0[2]), s[1]);
                        s[2] = _mm256_fmadd_ps(pos, _mm256_set1_ps(p.0[1]), s[2]);
                        s[3] = _mm256_fnmadd_ps(neg, _mm256_set1_ps(p.0[3]), s[3]);
                    }
                }
            }
        }
    }

    /// Single-precision filter on columns, 8 lanes per vector (module doc, "Single-precision
    /// filter"; the same chains and margin as `Avx512Single`).
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn single_cols(cols: &[Column], held: &[Held], single: &[SinglePrice], margin: f32) -> Words {
        let k = _mm256_set1_ps(margin);
        // (certainly negative, undecided) lane bits from the two sides' sums.
        let decide = |pos: __m256, neg: __m256| -> (u64, u64) {
            let not_neg = _mm256_cmp_ps::<_CMP_GE_OQ>(pos, _mm256_mul_ps(neg, k));
            let is_neg = _mm256_cmp_ps::<_CMP_GT_OQ>(neg, _mm256_mul_ps(pos, k));
            let open =
                _mm256_andnot_ps(_mm256_or_ps(not_neg, is_neg), _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
            (_mm256_movemask_ps(is_neg) as u64, _mm256_movemask_ps(open) as u64)
        };
        let mut w = Words::default();
        for chunk in 0..LANES / 16 {
            let mut s = [_mm256_setzero_ps(); 8];
            for (col, h) in cols.iter().zip(held) {
                let p = &single[h.asset as usize];
                match h.signs {
                    0 => {}
                    HAS_POS => single_column::<HAS_POS>(col, p, chunk, &mut s),
                    HAS_NEG => single_column::<HAS_NEG>(col, p, chunk, &mut s),
                    _ => single_column::<{ HAS_POS | HAS_NEG }>(col, p, chunk, &mut s),
                }
            }
            for half in 0..2 {
                let s = &s[4 * half..4 * half + 4];
                let (breach, open_spot) = decide(s[0], s[1]);
                let (at_risk, open_stressed) = decide(s[2], s[3]);
                let shift = chunk * 16 + half * 8;
                w.breach |= breach << shift;
                w.at_risk |= at_risk << shift;
                w.recheck |= (open_spot | open_stressed) << shift;
            }
        }
        w
    }

    /// Floating-point filter on rows. Each lane's (spot, stressed) price pair is one 16-byte
    /// load at its `pidx` (scalar loads: much cheaper than vector gathers on this machine);
    /// four pairs are transposed into a spot and a stressed vector in lane order (0, 2, 1, 3),
    /// the coefficients permuted to match, and the bit order fixed once per block.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn scan_rows(rows: &[Row], flat: &[FlatPrice], bound: f64) -> Words {
        let mut w = Words::default();
        let base = flat.as_ptr() as *const f64;
        for chunk in 0..LANES / 8 {
            let mut s = [_mm256_setzero_pd(); 4];
            for r in rows {
                for q in 0..2 {
                    let l = chunk * 8 + q * 4;
                    // SAFETY: every pidx is below 2 * flat.len(): a nonzero term's asset is in
                    // range (checked at upsert), an empty lane has pidx 0 and there is a price
                    // table entry whenever a row exists. The table is 32-byte aligned, so each
                    // pair is 16-byte aligned. Rows are 64-byte aligned and l % 4 == 0, so the
                    // coefficient load is 16-byte aligned.
                    unsafe {
                        let ld = |i: usize| _mm_load_pd(base.add(r.pidx[l + i] as usize * 2));
                        let a = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(ld(0)), ld(1));
                        let b = _mm256_insertf128_pd::<1>(_mm256_castpd128_pd256(ld(2)), ld(3));
                        let spot = _mm256_unpacklo_pd(a, b);
                        let stressed = _mm256_unpackhi_pd(a, b);
                        let ci = _mm_load_si128(r.coeff.as_ptr().add(l) as *const __m128i);
                        let c = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_cvtepi32_pd(ci));
                        s[q] = _mm256_fmadd_pd(c, spot, s[q]);
                        s[2 + q] = _mm256_fmadd_pd(c, stressed, s[2 + q]);
                    }
                }
            }
            for half in 0..2 {
                let (b, a, r) = decide(s[half], s[2 + half], bound);
                let shift = chunk * 8 + half * 4;
                w.breach |= b << shift;
                w.at_risk |= a << shift;
                w.recheck |= r << shift;
            }
        }
        // Lanes came in order (0, 2, 1, 3) within each group of four: swap bits 1 and 2.
        let fix = |x: u64| {
            (x & 0x9999_9999_9999_9999)
                | ((x & 0x2222_2222_2222_2222) << 1)
                | ((x & 0x4444_4444_4444_4444) >> 1)
        };
        Words { breach: fix(w.breach), at_risk: fix(w.at_risk), recheck: fix(w.recheck) }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Column, FlatPrice, HAS_NEG, HAS_POS, Held, LANES, SCALE, SinglePrice, SplitPrice, Words};

    /// As the AVX2 kernel's `column`, 16 lanes per step: sums s[2k], s[2k+1] are kind k
    /// (spot hi, spot lo, stressed hi, stressed lo) for lanes 0..8 and 8..16 of the chunk.
    #[inline(always)]
    fn column<const SIGNS: u8>(col: &Column, p: &SplitPrice, chunk: usize, s: &mut [__m512d; 8]) {
        // SAFETY: the column is 64-byte aligned and holds 64 i32; chunk < 4. The caller
        // enables avx512f.
        unsafe {
            let ci = _mm512_load_si512(col.0.as_ptr().add(chunk * 16) as *const __m512i);
            let c0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(ci));
            let c1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64::<1>(ci));
            let zero = _mm512_setzero_pd();
            let (m0, m1) = if SIGNS == HAS_POS | HAS_NEG {
                (_mm512_cmp_pd_mask::<_CMP_LT_OQ>(c0, zero), _mm512_cmp_pd_mask::<_CMP_LT_OQ>(c1, zero))
            } else {
                (0, 0)
            };
            for k in 0..4 {
                let (p0, p1) = match SIGNS {
                    HAS_POS => {
                        let pa = _mm512_set1_pd(p.v[2 * k]);
                        (pa, pa)
                    }
                    HAS_NEG => {
                        let pl = _mm512_set1_pd(p.v[2 * k + 1]);
                        (pl, pl)
                    }
                    _ => {
                        let pa = _mm512_set1_pd(p.v[2 * k]);
                        let pl = _mm512_set1_pd(p.v[2 * k + 1]);
                        (_mm512_mask_blend_pd(m0, pa, pl), _mm512_mask_blend_pd(m1, pa, pl))
                    }
                };
                s[2 * k] = _mm512_fmadd_pd(c0, p0, s[2 * k]);
                s[2 * k + 1] = _mm512_fmadd_pd(c1, p1, s[2 * k + 1]);
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn scan_cols(cols: &[Column], held: &[Held], split: &[SplitPrice]) -> Words {
        let mut w = Words::default();
        let scale = _mm512_set1_pd(SCALE);
        let zero = _mm512_setzero_pd();
        for chunk in 0..LANES / 16 {
            let mut s = [_mm512_setzero_pd(); 8];
            for (col, h) in cols.iter().zip(held) {
                let p = &split[h.asset as usize];
                match h.signs {
                    0 => {}
                    HAS_POS => column::<HAS_POS>(col, p, chunk, &mut s),
                    HAS_NEG => column::<HAS_NEG>(col, p, chunk, &mut s),
                    _ => column::<{ HAS_POS | HAS_NEG }>(col, p, chunk, &mut s),
                }
            }
            for half in 0..2 {
                let spot = _mm512_fmadd_pd(s[half], scale, s[2 + half]);
                let stressed = _mm512_fmadd_pd(s[4 + half], scale, s[6 + half]);
                let shift = chunk * 16 + half * 8;
                w.breach |= (_mm512_cmp_pd_mask::<_CMP_LT_OQ>(spot, zero) as u64) << shift;
                w.at_risk |= (_mm512_cmp_pd_mask::<_CMP_LT_OQ>(stressed, zero) as u64) << shift;
            }
        }
        w
    }

    /// As the AVX2 filter's `filter_column`, 16 lanes per step: sums s[0], s[1] spot (lanes
    /// 0..8, 8..16 of the chunk), s[2], s[3] stressed; one FMA chain per health in column
    /// order, so the module doc's bound applies unchanged.
    #[inline(always)]
    fn filter_column<const SIGNS: u8>(col: &Column, p: &FlatPrice, chunk: usize, s: &mut [__m512d; 4]) {
        // SAFETY: as `column`.
        unsafe {
            let ci = _mm512_load_si512(col.0.as_ptr().add(chunk * 16) as *const __m512i);
            let c0 = _mm512_cvtepi32_pd(_mm512_castsi512_si256(ci));
            let c1 = _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64::<1>(ci));
            let zero = _mm512_setzero_pd();
            // Negative coefficients take the liability price (a zero one adds an exact 0).
            let (m0, m1) = if SIGNS == HAS_POS | HAS_NEG {
                (_mm512_cmp_pd_mask::<_CMP_LT_OQ>(c0, zero), _mm512_cmp_pd_mask::<_CMP_LT_OQ>(c1, zero))
            } else {
                (0, 0)
            };
            for k in 0..2 {
                let (p0, p1) = match SIGNS {
                    HAS_POS => {
                        let pa = _mm512_set1_pd(p.0[k]);
                        (pa, pa)
                    }
                    HAS_NEG => {
                        let pl = _mm512_set1_pd(p.0[2 + k]);
                        (pl, pl)
                    }
                    _ => {
                        let pa = _mm512_set1_pd(p.0[k]);
                        let pl = _mm512_set1_pd(p.0[2 + k]);
                        (_mm512_mask_blend_pd(m0, pa, pl), _mm512_mask_blend_pd(m1, pa, pl))
                    }
                };
                s[2 * k] = _mm512_fmadd_pd(c0, p0, s[2 * k]);
                s[2 * k + 1] = _mm512_fmadd_pd(c1, p1, s[2 * k + 1]);
            }
        }
    }

    /// Floating-point filter on columns, 16 lanes per step (see the AVX2 `filter_cols`).
    #[target_feature(enable = "avx512f")]
    pub(super) fn filter_cols(cols: &[Column], held: &[Held], flat: &[FlatPrice], bound: f64) -> Words {
        let mut w = Words::default();
        let zero = _mm512_setzero_pd();
        let bound = _mm512_set1_pd(bound);
        for chunk in 0..LANES / 16 {
            let mut s = [_mm512_setzero_pd(); 4];
            for (col, h) in cols.iter().zip(held) {
                let p = &flat[h.asset as usize];
                match h.signs {
                    0 => {}
                    HAS_POS => filter_column::<HAS_POS>(col, p, chunk, &mut s),
                    HAS_NEG => filter_column::<HAS_NEG>(col, p, chunk, &mut s),
                    _ => filter_column::<{ HAS_POS | HAS_NEG }>(col, p, chunk, &mut s),
                }
            }
            for half in 0..2 {
                let (spot, stressed) = (s[half], s[2 + half]);
                let shift = chunk * 16 + half * 8;
                let near = _mm512_cmp_pd_mask::<_CMP_LE_OQ>(_mm512_abs_pd(spot), bound)
                    | _mm512_cmp_pd_mask::<_CMP_LE_OQ>(_mm512_abs_pd(stressed), bound);
                w.breach |= (_mm512_cmp_pd_mask::<_CMP_LT_OQ>(spot, zero) as u64) << shift;
                w.at_risk |= (_mm512_cmp_pd_mask::<_CMP_LT_OQ>(stressed, zero) as u64) << shift;
                w.recheck |= (near as u64) << shift;
            }
        }
        w
    }

    /// Adds one column to the single-precision sums of all 64 lanes: `s[4 * ch + k]` holds,
    /// for the 16 lanes of chunk `ch`, k = 0 spot positive terms, 1 spot negative terms'
    /// magnitudes, 2 and 3 the same for stressed. Each sum only ever adds nonnegative values.
    #[inline(always)]
    fn single_column<const SIGNS: u8>(col: &Column, p: &SinglePrice, s: &mut [__m512; 16]) {
        // SAFETY: the column is 64-byte aligned and holds 64 i32. The caller enables avx512f.
        unsafe {
            let (spot, stressed) = match SIGNS {
                HAS_NEG => (_mm512_set1_ps(p.0[2]), _mm512_set1_ps(p.0[3])),
                _ => (_mm512_set1_ps(p.0[0]), _mm512_set1_ps(p.0[1])),
            };
            let (spot_neg, stressed_neg) = (_mm512_set1_ps(p.0[2]), _mm512_set1_ps(p.0[3]));
            for ch in 0..LANES / 16 {
                let ci = _mm512_load_si512(col.0.as_ptr().add(ch * 16) as *const __m512i);
                let c = _mm512_cvtepi32_ps(ci);
                let s = &mut s[4 * ch..4 * ch + 4];
                match SIGNS {
                    HAS_POS => {
                        s[0] = _mm512_fmadd_ps(c, spot, s[0]);
                        s[2] = _mm512_fmadd_ps(c, stressed, s[2]);
                    }
                    HAS_NEG => {
                        // -(c p) + s: the magnitude of a negative term, added.
                        s[1] = _mm512_fnmadd_ps(c, spot, s[1]);
                        s[3] = _mm512_fnmadd_ps(c, stressed, s[3]);
                    }
                    _ => {
                        // A masked-off lane keeps its sum exactly; zero goes with the positives.
                        let neg = _mm512_cmplt_epi32_mask(ci, _mm512_setzero_si512());
                        s[0] = _mm512_mask3_fmadd_ps(c, spot, s[0], !neg);
                        s[1] = _mm512_mask3_fnmadd_ps(c, spot_neg, s[1], neg);
                        s[2] = _mm512_mask3_fmadd_ps(c, stressed, s[2], !neg);
                        s[3] = _mm512_mask3_fnmadd_ps(c, stressed_neg, s[3], neg);
                    }
                }
            }
        }
    }

    /// Single-precision filter on columns (module doc, "Single-precision filter"): 16 lanes
    /// per vector, a column at a time into 16 sums.
    #[target_feature(enable = "avx512f")]
    pub(super) fn single_cols(cols: &[Column], held: &[Held], single: &[SinglePrice], margin: f32) -> Words {
        let mut s = [_mm512_setzero_ps(); 16];
        for (col, h) in cols.iter().zip(held) {
            let p = &single[h.asset as usize];
            match h.signs {
                0 => {}
                HAS_POS => single_column::<HAS_POS>(col, p, &mut s),
                HAS_NEG => single_column::<HAS_NEG>(col, p, &mut s),
                _ => single_column::<{ HAS_POS | HAS_NEG }>(col, p, &mut s),
            }
        }
        let k = _mm512_set1_ps(margin);
        // (health certainly negative, neither sign certain) from the positive terms' sum and
        // the negative terms' magnitude.
        let decide = |pos: __m512, neg: __m512| -> (u16, u16) {
            let not_neg = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(pos, _mm512_mul_ps(neg, k));
            let neg = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(neg, _mm512_mul_ps(pos, k));
            (neg, !(neg | not_neg))
        };
        let mut w = Words::default();
        for ch in 0..LANES / 16 {
            let (breach, open_spot) = decide(s[4 * ch], s[4 * ch + 1]);
            let (at_risk, open_stressed) = decide(s[4 * ch + 2], s[4 * ch + 3]);
            let shift = ch * 16;
            w.breach |= (breach as u64) << shift;
            w.at_risk |= (at_risk as u64) << shift;
            w.recheck |= ((open_spot | open_stressed) as u64) << shift;
        }
        w
    }
}
