//! The account's health in the project's one risk formula (docs/RISK_MODEL.md).
//!
//! A perpetual with quote balance `q`, size `s` and maintenance fraction `m` has
//! `health = q + s p (1 - m)` long, `q + s p (1 + m)` short. The venue's own test is
//! `equity < MM`, with `equity = quote + sum (s p - e)` and, per position in bracket `t`,
//! `MM = |s| p rate_t - deduction_t` ([`super::tiers`]). They agree exactly when
//!
//! ```text
//!   q = quote - sum e  +  sum deduction_t        (cash, plus the brackets' deductions)
//!   m = rate_t of each position's bracket        (the formula's tier = the venue's bracket)
//! ```
//!
//! since `s p - |s| p m = s p (1 -+ m)`. Amounts are scaled by 10^6 so nothing is rounded.

use super::PerpVenue;
use super::tiers::PPM;

/// One account's terms in the risk formula.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskTerms {
    /// The quote balance `q`, quote quanta scaled by 10^6.
    pub quote_scaled: i128,
    /// (market, size `s` in lots, maintenance fraction `m` in ppm) per open position.
    pub legs: Vec<(usize, i128, u32)>,
}

impl RiskTerms {
    /// `q + sum s p (1 -+ m)` at `prices`, quote quanta scaled by 10^6; < 0 iff liquidatable.
    pub fn health_scaled(&self, prices: &[i128]) -> i128 {
        self.quote_scaled
            + self
                .legs
                .iter()
                .map(|&(k, s, m)| {
                    let w = if s >= 0 { PPM - m as i128 } else { PPM + m as i128 };
                    s * prices[k] * w
                })
                .sum::<i128>()
    }
}

/// The terms of account `i` with its positions in the brackets of the current marks.
pub fn risk_terms(v: &PerpVenue, i: usize) -> RiskTerms {
    let a = &v.accounts[i];
    let mut quote_scaled = a.quote * PPM;
    let mut legs = Vec::new();
    for (k, p) in a.positions.iter() {
        let m = &v.markets[k];
        quote_scaled -= p.entry_value * PPM;
        let t = m.params.tiers.bracket(p.size.abs() * m.mark);
        quote_scaled += m.params.tiers.deduction(t);
        legs.push((k, p.size, m.params.tiers.tiers()[t].mmr_ppm));
    }
    RiskTerms { quote_scaled, legs }
}
