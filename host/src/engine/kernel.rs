//! Full-scan kernels: one block of 64 slots in, its breach and at-risk words out.
//!
//! # Exactness
//!
//! The scan computes `sum c * p` in `f64`, but never rounds, so its signs are exact:
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
//! So the error bound that matters, the one on the sign, is zero: no account needs a recheck
//! in integers. The tests still compare every bit with the reference, near-ties of full
//! magnitude included.

use liqscan_hdl::abi::PriceEntry;

use super::blocks::{BlockView, LANES};

/// The full-scan kernel an engine uses. Both give the same, exact, bitmaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512F (x86-64 only, chosen at run time): 16 lanes per step.
    Avx512,
    /// AVX2 + FMA (x86-64 only, chosen at run time when the CPU has them).
    Avx2Fma,
    /// Plain Rust, any CPU.
    Portable,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            // AVX-512 is no faster on this project's machine (AMD Zen 4 splits 512-bit ops in
            // two; docs/PERFORMANCE.md), so AVX2 comes first and AVX-512 is opt-in.
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                return Kernel::Avx2Fma;
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
        }
        Kernel::Portable
    }

    /// Scans one block: (breach word, at-risk word).
    #[inline]
    pub(crate) fn scan_block(self, v: &BlockView<'_>, split: &[SplitPrice]) -> (u64, u64) {
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Avx2Fma` is only constructed by `detect` after checking the CPU, or by
            // a caller who asked for it; `SoftwareEngine::with_kernel` downgrades it otherwise.
            Kernel::Avx2Fma => unsafe { avx2::scan_block(v, split) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, for avx512f.
            Kernel::Avx512 => unsafe { avx512::scan_block(v, split) },
            _ => portable_scan_block(v, split),
        }
    }

    /// This kernel if the CPU runs it, else the portable one.
    pub(crate) fn supported(self) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            let ok = match self {
                Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
                Kernel::Avx2Fma => {
                    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
                }
                Kernel::Portable => true,
            };
            if ok { self } else { Kernel::Portable }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Kernel::Portable
    }

    /// Every kernel this CPU runs, the default first.
    pub fn available() -> Vec<Kernel> {
        [Kernel::Avx2Fma, Kernel::Avx512, Kernel::Portable]
            .into_iter()
            .filter(|k| k.supported() == *k)
            .collect()
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

const SCALE: f64 = 65536.0;

/// Adds the sparse terms into the per-lane sums and turns the sums into bitmap words.
#[inline(always)]
fn finish(acc: &mut [[f64; LANES]; 4], v: &BlockView<'_>, split: &[SplitPrice]) -> (u64, u64) {
    for s in v.sparse {
        let p = &split[s.asset as usize].v;
        let c = s.coeff as f64;
        let neg = (s.coeff < 0) as usize;
        let l = s.lane as usize;
        for (k, a) in acc.iter_mut().enumerate() {
            a[l] += c * p[2 * k + neg];
        }
    }
    let (mut breach, mut at_risk) = (0u64, 0u64);
    #[allow(clippy::needless_range_loop)] // the lane index is also the bit index
    for l in 0..LANES {
        breach |= (((acc[0][l] * SCALE + acc[1][l]) < 0.0) as u64) << l;
        at_risk |= (((acc[2][l] * SCALE + acc[3][l]) < 0.0) as u64) << l;
    }
    (breach, at_risk)
}

fn portable_scan_block(v: &BlockView<'_>, split: &[SplitPrice]) -> (u64, u64) {
    let mut acc = [[0f64; LANES]; 4];
    for (col, &asset) in v.cols.iter().zip(v.assets) {
        let p = &split[asset as usize].v;
        for l in 0..LANES {
            let c = col.0[l];
            let neg = (c < 0) as usize;
            let c = c as f64;
            for (k, a) in acc.iter_mut().enumerate() {
                a[l] += c * p[2 * k + neg];
            }
        }
    }
    finish(&mut acc, v, split)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::super::blocks::{Column, HAS_NEG, HAS_POS};
    use super::{BlockView, LANES, SCALE, SplitPrice, finish};

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

    /// Eight lanes at a time with all sums in registers across the block's columns.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn scan_block(v: &BlockView<'_>, split: &[SplitPrice]) -> (u64, u64) {
        // Two copies: without sparse terms the sums never leave registers (no 2 KiB zeroing).
        if v.sparse.is_empty() { scan::<false>(v, split) } else { scan::<true>(v, split) }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn scan<const SPARSE: bool>(v: &BlockView<'_>, split: &[SplitPrice]) -> (u64, u64) {
        let mut acc = [[0f64; LANES]; 4];
        let (mut breach, mut at_risk) = (0u64, 0u64);
        let scale = _mm256_set1_pd(SCALE);
        let zero = _mm256_setzero_pd();
        for chunk in 0..LANES / 8 {
            let mut s = [_mm256_setzero_pd(); 8];
            for ((col, &asset), &signs) in v.cols.iter().zip(v.assets).zip(v.signs) {
                let p = &split[asset as usize];
                match signs {
                    0 => {}
                    HAS_POS => column::<HAS_POS>(col, p, chunk, &mut s),
                    HAS_NEG => column::<HAS_NEG>(col, p, chunk, &mut s),
                    _ => column::<{ HAS_POS | HAS_NEG }>(col, p, chunk, &mut s),
                }
            }
            if !SPARSE {
                // Finish in registers: health = hi * 2^16 + lo, one rounding, exact sign.
                for half in 0..2 {
                    let spot = _mm256_fmadd_pd(s[half], scale, s[2 + half]);
                    let stressed = _mm256_fmadd_pd(s[4 + half], scale, s[6 + half]);
                    let shift = chunk * 8 + half * 4;
                    let b = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(spot, zero)) as u64;
                    let a = _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(stressed, zero)) as u64;
                    breach |= b << shift;
                    at_risk |= a << shift;
                }
            } else {
                for k in 0..4 {
                    // SAFETY: chunk * 8 + 8 <= LANES.
                    unsafe {
                        _mm256_storeu_pd(acc[k].as_mut_ptr().add(chunk * 8), s[2 * k]);
                        _mm256_storeu_pd(acc[k].as_mut_ptr().add(chunk * 8 + 4), s[2 * k + 1]);
                    }
                }
            }
        }
        if !SPARSE { (breach, at_risk) } else { finish(&mut acc, v, split) }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::super::blocks::{Column, HAS_NEG, HAS_POS};
    use super::{BlockView, LANES, SCALE, SplitPrice, finish};

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
    pub(super) fn scan_block(v: &BlockView<'_>, split: &[SplitPrice]) -> (u64, u64) {
        // Two copies: without sparse terms the sums never leave registers (no 2 KiB zeroing).
        if v.sparse.is_empty() { scan::<false>(v, split) } else { scan::<true>(v, split) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn scan<const SPARSE: bool>(v: &BlockView<'_>, split: &[SplitPrice]) -> (u64, u64) {
        let mut acc = [[0f64; LANES]; 4];
        let (mut breach, mut at_risk) = (0u64, 0u64);
        let scale = _mm512_set1_pd(SCALE);
        let zero = _mm512_setzero_pd();
        for chunk in 0..LANES / 16 {
            let mut s = [_mm512_setzero_pd(); 8];
            for ((col, &asset), &signs) in v.cols.iter().zip(v.assets).zip(v.signs) {
                let p = &split[asset as usize];
                match signs {
                    0 => {}
                    HAS_POS => column::<HAS_POS>(col, p, chunk, &mut s),
                    HAS_NEG => column::<HAS_NEG>(col, p, chunk, &mut s),
                    _ => column::<{ HAS_POS | HAS_NEG }>(col, p, chunk, &mut s),
                }
            }
            if !SPARSE {
                for half in 0..2 {
                    let spot = _mm512_fmadd_pd(s[half], scale, s[2 + half]);
                    let stressed = _mm512_fmadd_pd(s[4 + half], scale, s[6 + half]);
                    let shift = chunk * 16 + half * 8;
                    breach |= (_mm512_cmp_pd_mask::<_CMP_LT_OQ>(spot, zero) as u64) << shift;
                    at_risk |= (_mm512_cmp_pd_mask::<_CMP_LT_OQ>(stressed, zero) as u64) << shift;
                }
            } else {
                for k in 0..4 {
                    // SAFETY: chunk * 16 + 16 <= LANES.
                    unsafe {
                        _mm512_storeu_pd(acc[k].as_mut_ptr().add(chunk * 16), s[2 * k]);
                        _mm512_storeu_pd(acc[k].as_mut_ptr().add(chunk * 16 + 8), s[2 * k + 1]);
                    }
                }
            }
        }
        if !SPARSE { (breach, at_risk) } else { finish(&mut acc, v, split) }
    }
}
