//! Maintenance margin that grows with position notional, in brackets.
//!
//! Each bracket has an upper notional bound and a maintenance rate; the rate applies to the
//! notional inside the bracket only (marginal, like income-tax brackets), so the requirement is
//! continuous in notional. Written per bracket it is the venue's usual
//! `MM = notional * rate_t - amount_t`, with `amount_t` the cumulative deduction
//! ([`MarginTiers::deduction`]). Amounts are kept scaled by 10^6 (quote quanta times parts per
//! million) so nothing is rounded.

use serde::{Deserialize, Serialize};

/// Parts per million.
pub const PPM: i128 = 1_000_000;

/// One bracket: notional up to `up_to` (quote quanta; the last bracket extends beyond it) at
/// `mmr_ppm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Upper notional bound of the bracket, quote quanta.
    pub up_to: i128,
    /// Maintenance margin rate inside the bracket, parts per million.
    pub mmr_ppm: u32,
}

/// Brackets in increasing order of notional and rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Tier>", into = "Vec<Tier>")]
pub struct MarginTiers {
    tiers: Vec<Tier>,
}

/// Brackets that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TierError {
    /// No bracket at all.
    #[error("margin tiers: at least one tier is needed")]
    Empty,
    /// Bounds not strictly increasing, or not positive.
    #[error("margin tiers: tier {index} bound {up_to} is not above the previous bound {prev}")]
    BoundOrder {
        /// Tier index.
        index: usize,
        /// Its bound.
        up_to: i128,
        /// The previous bound (0 for the first).
        prev: i128,
    },
    /// A rate below the previous bracket's, or above 100%.
    #[error("margin tiers: tier {index} rate {mmr_ppm} ppm is below the previous tier's or above 1000000")]
    RateOrder {
        /// Tier index.
        index: usize,
        /// Its rate.
        mmr_ppm: u32,
    },
}

impl TryFrom<Vec<Tier>> for MarginTiers {
    type Error = TierError;
    fn try_from(tiers: Vec<Tier>) -> Result<Self, TierError> {
        MarginTiers::new(tiers)
    }
}

impl From<MarginTiers> for Vec<Tier> {
    fn from(t: MarginTiers) -> Self {
        t.tiers
    }
}

impl MarginTiers {
    /// Checks the order of bounds and rates.
    pub fn new(tiers: Vec<Tier>) -> Result<Self, TierError> {
        if tiers.is_empty() {
            return Err(TierError::Empty);
        }
        let (mut prev, mut prev_rate) = (0i128, 0u32);
        for (index, t) in tiers.iter().enumerate() {
            if t.up_to <= prev {
                return Err(TierError::BoundOrder { index, up_to: t.up_to, prev });
            }
            if t.mmr_ppm < prev_rate || t.mmr_ppm as i128 > PPM {
                return Err(TierError::RateOrder { index, mmr_ppm: t.mmr_ppm });
            }
            (prev, prev_rate) = (t.up_to, t.mmr_ppm);
        }
        Ok(MarginTiers { tiers })
    }

    /// One flat rate for every notional.
    pub fn flat(mmr_ppm: u32) -> Self {
        MarginTiers::new(vec![Tier { up_to: i128::MAX, mmr_ppm }]).expect("one tier")
    }

    /// Binance's USDⓈ-M BTCUSDT leverage brackets as published in 2021-2022 (notional in USDT,
    /// maintenance rate): 50 k 0.4%, 250 k 0.5%, 3 M 1%, 15 M 2.5%, 30 M 5%, 80 M 10%,
    /// 100 M 12.5%, 200 M 15%, 300 M 25%, 500 M 50%. Their published cumulative
    /// "maintenance amounts" (0, 50, 1 300, 46 300, 421 300, ...) are what
    /// [`MarginTiers::deduction`] computes. `quanta_per_usd` converts to quote quanta.
    pub fn binance_btc_2022(quanta_per_usd: i128) -> Self {
        const T: [(i128, u32); 10] = [
            (50_000, 4_000),
            (250_000, 5_000),
            (3_000_000, 10_000),
            (15_000_000, 25_000),
            (30_000_000, 50_000),
            (80_000_000, 100_000),
            (100_000_000, 125_000),
            (200_000_000, 150_000),
            (300_000_000, 250_000),
            (500_000_000, 500_000),
        ];
        let tiers = T.iter().map(|&(usd, mmr_ppm)| Tier { up_to: usd * quanta_per_usd, mmr_ppm }).collect();
        MarginTiers::new(tiers).expect("published brackets are ordered")
    }

    /// The same bounds with every rate times `factor` (rounded to the nearest ppm; rounding
    /// keeps the order). Refused if a rate would pass 100%.
    pub fn scale_rates(&self, factor: f64) -> Result<Self, TierError> {
        let tiers = self
            .tiers
            .iter()
            .map(|t| {
                let r = (t.mmr_ppm as f64 * factor).round();
                let mmr_ppm =
                    if r.is_finite() && r >= 0.0 && r <= u32::MAX as f64 { r as u32 } else { u32::MAX };
                Tier { up_to: t.up_to, mmr_ppm }
            })
            .collect();
        MarginTiers::new(tiers)
    }

    /// The brackets.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// Index of the bracket a notional falls in: the first whose bound is at or above it.
    pub fn bracket(&self, notional: i128) -> usize {
        self.tiers.iter().position(|t| notional <= t.up_to).unwrap_or(self.tiers.len() - 1)
    }

    /// Maintenance margin for `notional` (>= 0) quote quanta, scaled by 10^6: exact.
    pub fn maintenance_scaled(&self, notional: i128) -> i128 {
        let t = self.bracket(notional);
        notional * self.tiers[t].mmr_ppm as i128 - self.deduction(t)
    }

    /// Cumulative deduction of bracket `t`, scaled by 10^6: `sum_{j<t} up_to_j (rate_{j+1} - rate_j)`,
    /// so `notional * rate_t - deduction_t` is the marginal sum.
    pub fn deduction(&self, t: usize) -> i128 {
        (0..t)
            .map(|j| self.tiers[j].up_to * (self.tiers[j + 1].mmr_ppm - self.tiers[j].mmr_ppm) as i128)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_brackets_reproduce_the_published_maintenance_amounts() {
        let t = MarginTiers::binance_btc_2022(1);
        let amounts: Vec<i128> = (0..10).map(|i| t.deduction(i) / PPM).collect();
        assert_eq!(
            amounts,
            [0, 50, 1_300, 46_300, 421_300, 1_921_300, 3_921_300, 6_421_300, 26_421_300, 101_421_300]
        );
        // Continuous at every bound: both neighbouring formulas agree there.
        for i in 0..9 {
            let n = t.tiers()[i].up_to;
            assert_eq!(n * t.tiers()[i + 1].mmr_ppm as i128 - t.deduction(i + 1), t.maintenance_scaled(n));
        }
        // 1 M USDT: 50 k at 0.4% + 200 k at 0.5% + 750 k at 1% = 200 + 1 000 + 7 500.
        assert_eq!(t.maintenance_scaled(1_000_000), 8_700 * PPM);
    }

    #[test]
    fn scaled_rates_keep_bounds_and_order() {
        let t = MarginTiers::binance_btc_2022(1);
        let d = t.scale_rates(2.0).unwrap();
        for (a, b) in t.tiers().iter().zip(d.tiers()) {
            assert_eq!((a.up_to, 2 * a.mmr_ppm), (b.up_to, b.mmr_ppm));
        }
        // Marginal brackets: twice every rate is twice the requirement at any notional.
        assert_eq!(d.maintenance_scaled(1_000_000), 2 * t.maintenance_scaled(1_000_000));
        assert_eq!(t.scale_rates(0.5).unwrap().tiers()[0].mmr_ppm, 2_000);
        // The top bracket (50%) times 2.5 passes 100%.
        assert_eq!(t.scale_rates(2.5), Err(TierError::RateOrder { index: 9, mmr_ppm: 1_250_000 }));
    }

    #[test]
    fn out_of_order_tiers_are_refused() {
        let bad = vec![Tier { up_to: 10, mmr_ppm: 5 }, Tier { up_to: 10, mmr_ppm: 6 }];
        assert_eq!(MarginTiers::new(bad), Err(TierError::BoundOrder { index: 1, up_to: 10, prev: 10 }));
        let bad = vec![Tier { up_to: 10, mmr_ppm: 5 }, Tier { up_to: 20, mmr_ppm: 4 }];
        assert_eq!(MarginTiers::new(bad), Err(TierError::RateOrder { index: 1, mmr_ppm: 4 }));
        assert_eq!(MarginTiers::new(vec![]), Err(TierError::Empty));
        assert!(
            serde_json::from_str::<MarginTiers>(r#"[{"up_to":5,"mmr_ppm":9},{"up_to":4,"mmr_ppm":9}]"#)
                .is_err()
        );
    }
}
