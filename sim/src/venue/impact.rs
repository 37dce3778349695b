//! Market impact from a liquidity-depth model.
//!
//! The order book of an asset is linear: selling value `V` (quote units) moves the price down by
//! `V / depth` percent, where `depth` is the value that moves it one percent. A sale of `V`
//! fills on average at `p (1 - V / (200 depth))` and leaves the price at `p (1 - V / (100 depth))`
//! (capped at a 50% move per sale). The dent heals exponentially with half-life
//! `half_life_secs` (liquidity providers refill the book). The simulator multiplies the
//! exogenous price path by the current factor, so liquidation sales feed back into prices the
//! oracle then reports: the cascade.

use serde::{Deserialize, Serialize};

/// Liquidity of one asset's market.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthModel {
    /// Value (quote units) that moves the price by 1%.
    pub depth_usd_per_pct: f64,
    /// Half-life of the price dent, seconds.
    #[serde(default = "default_half_life")]
    pub half_life_secs: f64,
    /// Current multiplicative dent on the exogenous price, in (0, 1].
    #[serde(skip, default = "one")]
    pub factor: f64,
}

fn default_half_life() -> f64 {
    300.0
}
fn one() -> f64 {
    1.0
}

impl DepthModel {
    /// A market with this depth and half-life.
    pub fn new(depth_usd_per_pct: f64, half_life_secs: f64) -> Self {
        DepthModel { depth_usd_per_pct, half_life_secs, factor: 1.0 }
    }

    /// Fraction the price moves for a sale of `value_usd`.
    pub fn move_for(&self, value_usd: f64) -> f64 {
        if self.depth_usd_per_pct <= 0.0 || !self.depth_usd_per_pct.is_finite() {
            return 0.0;
        }
        (value_usd / (100.0 * self.depth_usd_per_pct)).clamp(0.0, 0.5)
    }

    /// Average fill fraction of the pre-sale price for a sale of `value_usd`.
    pub fn avg_fill(&self, value_usd: f64) -> f64 {
        1.0 - self.move_for(value_usd) / 2.0
    }

    /// Records a sale: the price dent deepens.
    pub fn sell(&mut self, value_usd: f64) {
        self.factor *= 1.0 - self.move_for(value_usd);
    }

    /// Heals the dent over `dt` seconds.
    pub fn recover(&mut self, dt: f64) {
        if self.half_life_secs > 0.0 {
            self.factor = self.factor.powf((-dt * std::f64::consts::LN_2 / self.half_life_secs).exp());
        } else {
            self.factor = 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sale_dents_then_heals_by_half_life() {
        let mut m = DepthModel::new(1_000_000.0, 60.0);
        assert!((m.move_for(2_000_000.0) - 0.02).abs() < 1e-12);
        assert!((m.avg_fill(2_000_000.0) - 0.99).abs() < 1e-12);
        m.sell(2_000_000.0);
        assert!((m.factor - 0.98).abs() < 1e-12);
        m.recover(60.0);
        // ln f halves each half-life.
        assert!((m.factor.ln() - 0.98f64.ln() / 2.0).abs() < 1e-12);
        assert_eq!(DepthModel::new(0.0, 1.0).move_for(1e9), 0.0);
        assert_eq!(DepthModel::new(1.0, 1.0).move_for(1e9), 0.5);
    }
}
