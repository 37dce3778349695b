//! Choosing an asset's coefficient quantum from the book and a stated price range, and the
//! worst-case rounding error that results for each account.
//!
//! The quantum `q = 10^e` of an asset splits the 64 bits of a product between the coefficient
//! (`c = b w / q`, 31 bits of magnitude) and the price (`p = P / r`, `r = 10^(value_exp - e)`,
//! 32 bits). With the book's largest weighted leg `M = max |b w|` and the venue's price range
//! `[low, high]`:
//!
//! ```text
//!   coefficients fit:  ceil(M / 10^e) <= 2^31 - 1                      e >= e_coeff
//!   prices fit:        ceil(high (1 + stress) / r) <= 2^32 - 1          e <= e_price
//!   chosen:            the e in [e_coeff, e_price] with the smallest  r / low + q / b_min
//! ```
//!
//! where `b_min` is the smallest non-zero leg `|b|` of the asset in the book. `r / low + q / b`
//! is the relative rounding error of one term of `b` units at price `low` (price rounding plus
//! coefficient rounding), so the choice minimises the worst relative error over the book's legs
//! and the price range. No choice is a decision: rounding stays conservative whatever `e` is.
//!
//! The bound per account ([`AssetTable::error_bound`]): every leg's term falls short of its
//! exact value by less than `|b w| / q + P / r + 1` value quanta (`model`'s docs), so for every
//! price vector inside the range the integer health is below the exact health by less than
//! `sum over legs (|b w| / q + high / r + 1)` quanta; relative to the account's collateral value
//! (its supply legs at the same prices) the bound is [`AssetTable::error_bound`]'s.

use std::ops::RangeInclusive;

use liqscan_hdl::abi::{COEFF_MAX, PRICE_MAX};

use super::account::AccountSpec;
use super::asset::{AssetSpec, AssetTable};
use super::decimal::Decimal;

/// Quantum exponents searched.
const EXPONENTS: RangeInclusive<i32> = -30..=30;

/// Why no quantum could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantumError {
    /// A quantum is to be chosen but the venue states no price range.
    #[error(
        "asset '{asset}' has no quantum_exp and no price_range (its own or the venue's); give one of them (e.g. price_range = [\"0.01\", \"100000\"])"
    )]
    NoPriceRange {
        /// Asset symbol.
        asset: String,
    },
    /// The book's positions and the price range need more than 63 bits together.
    #[error(
        "asset '{asset}': no quantum fits both the book's largest weighted balance {largest} (needs quantum_exp >= {coeff_min}) and prices up to {high} (needs quantum_exp <= {price_max}); lower the top of price_range, raise the venue's value_exp, or set quantum_exp and split the largest accounts"
    )]
    NoFit {
        /// Asset symbol.
        asset: String,
        /// Largest `|b w|` in the book.
        largest: Decimal,
        /// Top of the price range.
        high: Decimal,
        /// Smallest exponent the coefficients allow.
        coeff_min: i32,
        /// Largest exponent the prices allow.
        price_max: i32,
    },
}

/// What the book holds of one asset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Largest weighted leg `|b w|`, whole units.
    pub largest: Decimal,
    /// Smallest non-zero leg `|b|`, whole units (`None`: no account holds the asset).
    pub smallest: Option<Decimal>,
}

/// The exposure of each asset (by price-table index) over a book. Legs naming an asset or
/// tier the table lacks are skipped: compiling the account reports them.
pub fn exposures(table: &AssetTable, accounts: &[AccountSpec]) -> Vec<Exposure> {
    let mut out = vec![Exposure::default(); table.len()];
    for a in accounts {
        for (symbol, b) in a.legs() {
            let Ok(i) = table.index_of(symbol) else { continue };
            let Some(w) = table.get(i).and_then(|s| s.tiers.get(&a.tier)) else { continue };
            let w = if b.is_negative() { w.liability_weight } else { w.asset_weight };
            let mag = if b.is_negative() { Decimal::ZERO.checked_sub(b).unwrap_or(b) } else { b };
            let e = &mut out[i as usize];
            if let Ok(bw) = mag.checked_mul(w) {
                e.largest = e.largest.max(bw);
            }
            e.smallest = Some(e.smallest.map_or(mag, |s| s.min(mag)));
        }
    }
    out
}

/// Chooses the quantum exponent of `asset` for a book with exposure `x`, prices in
/// `[low, high]` and the venue's `value_exp` (see the module docs).
pub fn choose(
    value_exp: i32,
    asset: &AssetSpec,
    x: &Exposure,
    (low, high): (Decimal, Decimal),
) -> Result<i32, QuantumError> {
    let coeff_fits = |e: i32| x.largest.ceil_shifted(-e).is_ok_and(|c| c <= COEFF_MAX as i128);
    let top = Decimal::ONE.checked_add(asset.stress).ok().and_then(|f| high.checked_mul(f).ok());
    let price_fits =
        |e: i32| top.is_some_and(|t| t.ceil_shifted(e - value_exp).is_ok_and(|p| p <= PRICE_MAX as i128));
    let coeff_min = EXPONENTS.clone().find(|&e| coeff_fits(e)).unwrap_or(*EXPONENTS.end());
    let price_max = EXPONENTS.clone().rev().find(|&e| price_fits(e)).unwrap_or(*EXPONENTS.start());
    if coeff_min > price_max || !coeff_fits(coeff_min) || !price_fits(price_max) {
        return Err(QuantumError::NoFit {
            asset: asset.symbol.clone(),
            largest: x.largest,
            high,
            coeff_min,
            price_max,
        });
    }
    // The relative error r / low + q / b_min, in floating point: it only picks among quanta
    // that all fit, and rounding stays conservative whichever is picked.
    let low = low.to_f64_lossy();
    let cost = |e: i32| {
        let price = 10f64.powi(value_exp - e) / low;
        let coeff = x.smallest.map_or(0.0, |b| 10f64.powi(e) / b.to_f64_lossy());
        price + coeff
    };
    let mut best = coeff_min;
    for e in coeff_min..=price_max {
        if cost(e) < cost(best) {
            best = e;
        }
    }
    Ok(best)
}

/// An account's worst-case rounding error for prices inside its assets' ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorBound {
    /// Bound on exact health minus integer health, quote units.
    pub health: Decimal,
    /// The account's collateral value (supply legs, unweighted) at the bottoms of the ranges.
    pub collateral_at_low: Decimal,
    /// Bound on that gap over the collateral value at the same prices, for display (`None`
    /// without collateral).
    pub relative: Option<f64>,
}

impl AssetTable {
    /// The worst-case rounding error of `account` for every price vector whose prices lie in
    /// their assets' price ranges ([`AssetTable::price_range`]; see the module docs); `None`
    /// if an asset it holds has no range, it names an asset or tier the table lacks, or the
    /// sum overflows.
    ///
    /// In quote units the gap is below `N(P) = C + sum_a n_a P_a` with `C = sum over legs
    /// v (|b w| / q + 1)` (`v` the value quantum) and `n_a = q_a` per leg of `a`; the
    /// collateral is `D(P) = sum_a s_a P_a` (`s_a` the supply). For `P` in the ranges,
    /// `N / D <= (C + sum_{s_a = 0} n_a high_a) / D(low) + sum_{s_a > 0} n_a / s_a`, the
    /// relative bound given.
    pub fn error_bound(&self, account: &AccountSpec) -> Option<ErrorBound> {
        let v = self.value_of(1);
        let mut health = Decimal::ZERO;
        let mut collateral = Decimal::ZERO;
        let mut fixed = Decimal::ZERO; // C, plus n_a high_a of assets without supply
        let mut per_supply = 0f64; // sum of n_a / s_a over assets with supply
        for (symbol, legs) in &account.balances {
            let i = self.index_of(symbol).ok()?;
            let spec = self.get(i)?;
            let (low, high) = self.price_range(i)?;
            let w = spec.tiers.get(&account.tier)?;
            let q = shift(Decimal::ONE, spec.quantum_exp)?;
            let mut n = Decimal::ZERO;
            for b in legs.iter() {
                let (w, mag) = if b.is_negative() {
                    (w.liability_weight, Decimal::ZERO.checked_sub(b).ok()?)
                } else {
                    (w.asset_weight, b)
                };
                // |b w| / q + high / r + 1 value quanta (q = 10^e, r = 10^(value_exp - e)).
                let coeff = shift(mag.checked_mul(w).ok()?, -spec.quantum_exp)?;
                let c = coeff.checked_add(Decimal::ONE).ok()?.checked_mul(v).ok()?;
                let price = shift(high, -self.price_exp(i))?.checked_mul(v).ok()?;
                health = health.checked_add(c).ok()?.checked_add(price).ok()?;
                fixed = fixed.checked_add(c).ok()?;
                n = n.checked_add(q).ok()?;
            }
            if legs.supply.is_zero() {
                fixed = fixed.checked_add(n.checked_mul(high).ok()?).ok()?;
            } else {
                collateral = collateral.checked_add(legs.supply.checked_mul(low).ok()?).ok()?;
                per_supply += n.to_f64_lossy() / legs.supply.to_f64_lossy();
            }
        }
        let relative =
            (!collateral.is_zero()).then(|| fixed.to_f64_lossy() / collateral.to_f64_lossy() + per_supply);
        Some(ErrorBound { health: health.normalized(), collateral_at_low: collateral.normalized(), relative })
    }
}

/// `d * 10^exp`, exactly.
fn shift(d: Decimal, exp: i32) -> Option<Decimal> {
    if exp >= 0 {
        d.checked_mul(Decimal::new(10i128.checked_pow(exp as u32)?, 0)).ok()
    } else {
        d.checked_mul(Decimal::new(1, (-exp) as u32)).ok()
    }
}
