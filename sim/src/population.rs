//! The population generator and account activity.
//!
//! **Borrowers.** Each draws a tier (by the tier shares), a first collateral asset (by the
//! collateral shares), with probability `second_collateral` a second one (a 70/30 split of value),
//! a collateral value from a log-normal (`size_median_usd`, `size_sigma`), and a loan-to-value
//! ratio from a logit-normal scaled to the borrow limit:
//!
//! ```text
//!   ltv = max_ltv / (1 + exp(-(ltv_mu + ltv_sigma * z)))      z ~ N(0, 1)
//!   capped so that the health factor at the start is at least min_hf
//! ```
//!
//! With the defaults (`ltv_mu` 1.0, `ltv_sigma` 1.2) the median borrower uses 73% of its limit
//! and about one in five uses more than 90%, the shape lending-market dashboards show: a mass of
//! conservative accounts and a tail packed against the limit. Debt is in the quote asset.
//!
//! **Lenders** hold quote deposits only (log-normal sizes around `lender_median_usd`); they are
//! who a socialised loss is charged to.
//!
//! **Activity** (rates per hour, Poisson): opens (a new borrower), closes (a random healthy
//! account repays and leaves), deposits (a random borrower adds 10-50% collateral), borrows (a
//! random borrower borrows 5-20% more if it stays at a health factor of 1.25 or more).

use std::collections::BTreeMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::market::normal;

/// The initial population.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopulationConfig {
    /// Borrowers.
    pub accounts: usize,
    /// Lenders (quote deposits only).
    pub lenders: usize,
    /// Tier shares by tier name.
    pub tiers: BTreeMap<String, f64>,
    /// Shares of the first collateral asset by symbol.
    pub collateral: BTreeMap<String, f64>,
    /// Probability of a second collateral asset.
    pub second_collateral: f64,
    /// Median collateral value, quote units.
    pub size_median_usd: f64,
    /// Log-normal sigma of the collateral value.
    pub size_sigma: f64,
    /// Largest collateral value, quote units (keeps coefficients within 32 bits).
    pub size_max_usd: f64,
    /// Borrow limit as a fraction of collateral value.
    pub max_ltv: f64,
    /// Logit-normal location of the share of the limit used.
    pub ltv_mu: f64,
    /// Logit-normal scale.
    pub ltv_sigma: f64,
    /// Lowest health factor at the start.
    pub min_hf: f64,
    /// Median lender deposit, quote units.
    pub lender_median_usd: f64,
}

impl Default for PopulationConfig {
    fn default() -> Self {
        PopulationConfig {
            accounts: 1_000,
            lenders: 100,
            tiers: BTreeMap::from([("default".to_string(), 1.0)]),
            collateral: BTreeMap::new(),
            second_collateral: 0.3,
            size_median_usd: 20_000.0,
            size_sigma: 1.5,
            size_max_usd: 5_000_000.0,
            max_ltv: 0.75,
            ltv_mu: 1.0,
            ltv_sigma: 1.2,
            min_hf: 1.02,
            lender_median_usd: 200_000.0,
        }
    }
}

/// Account activity during the run (events per hour).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActivityConfig {
    /// New borrowers per hour.
    pub opens_per_hour: f64,
    /// Accounts closed per hour.
    pub closes_per_hour: f64,
    /// Collateral top-ups per hour.
    pub deposits_per_hour: f64,
    /// Extra borrows per hour.
    pub borrows_per_hour: f64,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        ActivityConfig {
            opens_per_hour: 0.0,
            closes_per_hour: 0.0,
            deposits_per_hour: 0.0,
            borrows_per_hour: 0.0,
        }
    }
}

/// A borrower to open: tier, and the USD value per collateral asset, and the debt in USD.
#[derive(Clone, Debug, PartialEq)]
pub struct Borrower {
    /// Tier name.
    pub tier: String,
    /// (collateral symbol, value in quote units).
    pub collateral: Vec<(String, f64)>,
    /// Debt, quote units.
    pub debt_usd: f64,
}

fn pick<'a, R: Rng>(rng: &mut R, shares: &'a BTreeMap<String, f64>) -> &'a String {
    let total: f64 = shares.values().sum();
    let mut x = rng.r#gen::<f64>() * total;
    for (k, &v) in shares {
        if x < v {
            return k;
        }
        x -= v;
    }
    shares.keys().next_back().expect("non-empty shares")
}

impl PopulationConfig {
    /// Draws one borrower. `weight(symbol, tier)` is the collateral's asset weight.
    pub fn borrower<R: Rng>(&self, rng: &mut R, weight: &dyn Fn(&str, &str) -> f64) -> Borrower {
        let tier = pick(rng, &self.tiers).clone();
        let first = pick(rng, &self.collateral).clone();
        let size = (self.size_median_usd * (self.size_sigma * normal(rng)).exp()).min(self.size_max_usd);
        let mut collateral = vec![(first.clone(), size)];
        if self.collateral.len() > 1 && rng.r#gen::<f64>() < self.second_collateral {
            let mut second = pick(rng, &self.collateral).clone();
            if second == first {
                second = self.collateral.keys().find(|k| **k != first).expect("two assets").clone();
            }
            collateral = vec![(first, size * 0.7), (second, size * 0.3)];
        }
        let used = 1.0 / (1.0 + (-(self.ltv_mu + self.ltv_sigma * normal(rng))).exp());
        let total: f64 = collateral.iter().map(|c| c.1).sum();
        let weighted: f64 = collateral.iter().map(|(s, v)| v * weight(s, &tier)).sum();
        let ltv = (self.max_ltv * used).min(weighted / total / self.min_hf);
        Borrower { tier, collateral, debt_usd: total * ltv }
    }

    /// Draws one lender's deposit, quote units.
    pub fn lender<R: Rng>(&self, rng: &mut R) -> f64 {
        (self.lender_median_usd * normal(rng).exp()).min(self.size_max_usd * 4.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn borrowers_respect_limits_and_shares() {
        let cfg = PopulationConfig {
            collateral: BTreeMap::from([("ETH".into(), 0.75), ("BTC".into(), 0.25)]),
            tiers: BTreeMap::from([("default".into(), 0.8), ("isolated".into(), 0.2)]),
            ..Default::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let w = |_: &str, t: &str| if t == "default" { 0.825 } else { 0.7 };
        let bs: Vec<Borrower> = (0..20_000).map(|_| cfg.borrower(&mut rng, &w)).collect();
        let mut eth = 0;
        let mut near = 0;
        for b in &bs {
            let total: f64 = b.collateral.iter().map(|c| c.1).sum();
            let weighted: f64 = b.collateral.iter().map(|(s, v)| v * w(s, &b.tier)).sum();
            assert!(weighted / b.debt_usd >= cfg.min_hf - 1e-9);
            assert!(b.debt_usd <= total * cfg.max_ltv + 1e-6 && total <= cfg.size_max_usd + 1e-6);
            eth += (b.collateral[0].0 == "ETH") as usize;
            near += (b.debt_usd / total > 0.9 * cfg.max_ltv) as usize;
        }
        let eth = eth as f64 / bs.len() as f64;
        assert!((eth - 0.75).abs() < 0.02, "{eth}");
        let near = near as f64 / bs.len() as f64;
        assert!(near > 0.1 && near < 0.4, "{near}");
    }
}
