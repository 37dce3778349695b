//! Funding: longs and shorts pay each other on a schedule.
//!
//! The rate is Binance's formula, in parts per million per interval:
//! `F = P + clamp(I - P, -clamp, +clamp)`, then `clamp(F, -cap, +cap)`, where `P` is the
//! average premium of the book over the oracle during the interval (sampled each step) and `I`
//! the interest component. Binance: 8 h, `I` = 0.01%, clamp 0.05%; Hyperliquid: hourly, `I` =
//! 0.00125% (0.01% per 8 h), cap 4% per hour.
//!
//! Settlement at the mark price, exactly: each payer pays `ceil(|s| mark |F| / 10^6)`, each
//! receiver gets `floor(...)`; since the sizes sum to zero, payers' notional equals receivers',
//! and the few quanta of rounding left over go to the insurance fund (its `funding_dust`).

use serde::{Deserialize, Serialize};

use super::account::PerpAccount;
use super::tiers::PPM;

/// A market's funding schedule and formula.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundingParams {
    /// Seconds between settlements.
    pub interval_secs: u64,
    /// Interest component per interval, ppm.
    pub interest_ppm: i64,
    /// Clamp on `I - P`, ppm.
    pub clamp_ppm: i64,
    /// Cap on the rate, ppm per interval.
    pub cap_ppm: i64,
}

impl FundingParams {
    /// Binance USDⓈ-M: every 8 h, interest 0.01%, clamp 0.05%, cap 0.75%.
    pub fn binance() -> Self {
        FundingParams { interval_secs: 8 * 3600, interest_ppm: 100, clamp_ppm: 500, cap_ppm: 7_500 }
    }

    /// Hyperliquid: hourly, interest 0.00125% (0.01% per 8 h), cap 4% per hour.
    pub fn hyperliquid() -> Self {
        FundingParams { interval_secs: 3600, interest_ppm: 12, clamp_ppm: 500, cap_ppm: 40_000 }
    }

    /// The rate for an average premium `premium_ppm`.
    pub fn rate_ppm(&self, premium_ppm: i128) -> i128 {
        let (i, c, cap) = (self.interest_ppm as i128, self.clamp_ppm as i128, self.cap_ppm as i128);
        (premium_ppm + (i - premium_ppm).clamp(-c, c)).clamp(-cap, cap)
    }
}

/// Settles funding of market `m` at `rate_ppm` and `mark` over `accounts`; returns the rounding
/// dust (>= 0) that the caller credits to the insurance fund.
pub fn settle(accounts: &mut [PerpAccount], m: usize, mark: i128, rate_ppm: i128) -> i128 {
    let mut dust = 0;
    for a in accounts.iter_mut() {
        let s = a.positions[m].size;
        if s == 0 || rate_ppm == 0 {
            continue;
        }
        let gross = s.abs() * mark * rate_ppm.abs();
        // Positive rate: longs pay. Payers round up, receivers down.
        let pays = (s > 0) == (rate_ppm > 0);
        let amount = if pays { -((gross + PPM - 1) / PPM) } else { gross / PPM };
        dust -= amount;
        a.quote += amount;
        a.funding += amount;
    }
    dust
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perp::account::Role;

    #[test]
    fn rate_follows_binance_formula() {
        let b = FundingParams::binance();
        assert_eq!(b.rate_ppm(0), 100); // I inside the clamp: F = I.
        assert_eq!(b.rate_ppm(300), 100); // |I - P| < clamp: F = P + (I - P) = I.
        assert_eq!(b.rate_ppm(1_000), 1_000 - 500);
        assert_eq!(b.rate_ppm(100_000), 7_500);
        assert_eq!(b.rate_ppm(-100_000), -7_500);
    }

    #[test]
    fn settlement_moves_money_from_payers_and_leaves_dust_to_the_fund() {
        let mut a = vec![PerpAccount::new(Role::Trader, 0), PerpAccount::new(Role::Trader, 0)];
        a[0].fill(0, 3, 7);
        a[1].fill(0, -3, 7);
        // 3 * 333 * 1000 / 10^6 = 0.999: the long pays 1, the short gets 0.
        let dust = settle(&mut a, 0, 333, 1_000);
        assert_eq!((a[0].funding, a[1].funding, dust), (-1, 0, 1));
        let dust = settle(&mut a, 0, 1_000_000, -250);
        assert_eq!((a[0].funding, a[1].funding, dust), (-1 + 750, -750, 0));
    }
}
