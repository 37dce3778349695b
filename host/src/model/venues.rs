//! How each kind of venue maps onto the one risk formula.
//!
//! - Lending (Aave-style): collateral weight = liquidation threshold `LT`, debt weight 1, so
//!   `HF = sum(coll * P * LT) / sum(debt * P) < 1` exactly when `health < 0`.
//! - Perpetuals: a quote balance `q` (weight 1 both ways) and signed sizes `s` in perpetual
//!   markets with maintenance fraction `m`: weights `1 - m` for a long, `1 + m` for a short, so
//!   `health = q + s * P * (1 -+ m)`.
//! - Cross-margin: any mix of the above with per-asset weights; tiers are other weight sets.

use std::collections::BTreeMap;

use super::AccountSpec;
use super::account::DEFAULT_TIER;
use super::asset::{AssetSpec, AssetTable, TierWeights};
use super::decimal::{Decimal, DecimalError};

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

fn one_tier(w: TierWeights) -> BTreeMap<String, TierWeights> {
    BTreeMap::from([(DEFAULT_TIER.to_string(), w)])
}

/// A lending-market collateral/borrow asset with liquidation threshold `lt` (e.g. "0.825").
pub fn lending_asset(symbol: &str, quantum_exp: i32, lt: &str, stress: &str) -> AssetSpec {
    AssetSpec {
        symbol: symbol.into(),
        decimals: 18,
        quantum_exp,
        stress: dec(stress),
        tiers: one_tier(TierWeights { asset_weight: dec(lt), liability_weight: Decimal::ONE }),
    }
}

/// A perpetual market with maintenance margin fraction `m` (e.g. "0.05").
pub fn perp_market(symbol: &str, quantum_exp: i32, m: &str, stress: &str) -> AssetSpec {
    let m = dec(m);
    AssetSpec {
        symbol: symbol.into(),
        decimals: 18,
        quantum_exp,
        stress: dec(stress),
        tiers: one_tier(TierWeights {
            asset_weight: Decimal::ONE.checked_sub(m).expect("small"),
            liability_weight: Decimal::ONE.checked_add(m).expect("small"),
        }),
    }
}

/// The quote currency (weights 1 both ways).
pub fn quote_asset(symbol: &str, quantum_exp: i32) -> AssetSpec {
    AssetSpec {
        symbol: symbol.into(),
        decimals: 18,
        quantum_exp,
        stress: Decimal::ZERO,
        tiers: one_tier(TierWeights { asset_weight: Decimal::ONE, liability_weight: Decimal::ONE }),
    }
}

/// The account's exact real-valued health `sum b * w(b) * P` in quote units (no quantisation),
/// over every leg (an asset's supply and borrow each with its own weight), the value the
/// integer datapath approximates from below.
pub fn real_health(
    table: &AssetTable,
    account: &AccountSpec,
    prices: &BTreeMap<String, Decimal>,
) -> Result<Decimal, DecimalError> {
    let mut h = Decimal::ZERO;
    for (symbol, b) in account.legs() {
        let spec = &table.assets()[table.index_of(symbol).expect("known asset") as usize];
        let w = spec.tiers[&account.tier];
        let w = if b.is_negative() { w.liability_weight } else { w.asset_weight };
        h = h.checked_add(b.checked_mul(w)?.checked_mul(prices[symbol])?)?;
    }
    Ok(h)
}

/// Aave's health factor `sum(coll * P * LT) / sum(debt * P)` as an exact fraction
/// (numerator, denominator); `None` for an account with no debt (infinite HF).
pub fn aave_health_factor(
    table: &AssetTable,
    account: &AccountSpec,
    prices: &BTreeMap<String, Decimal>,
) -> Result<Option<(Decimal, Decimal)>, DecimalError> {
    let (mut num, mut den) = (Decimal::ZERO, Decimal::ZERO);
    for (symbol, b) in account.legs() {
        let spec = &table.assets()[table.index_of(symbol).expect("known asset") as usize];
        let lt = spec.tiers[&account.tier].asset_weight;
        if b.is_negative() {
            den = den.checked_sub(b.checked_mul(prices[symbol])?)?;
        } else {
            num = num.checked_add(b.checked_mul(lt)?.checked_mul(prices[symbol])?)?;
        }
    }
    Ok(if den.is_zero() { None } else { Some((num, den)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::VenueSpec;
    use crate::reference;
    use liqscan_hdl::abi::PriceEntry;

    fn prices(table: &AssetTable, p: &[(&str, &str)]) -> (Vec<PriceEntry>, BTreeMap<String, Decimal>) {
        let real: BTreeMap<String, Decimal> = p.iter().map(|(s, v)| (s.to_string(), dec(v))).collect();
        let mut q = vec![PriceEntry::default(); table.len()];
        for (s, v) in &real {
            let (i, e) = table.quote_symbol(s, *v).unwrap();
            q[i as usize] = e;
        }
        (q, real)
    }

    fn int_health(table: &AssetTable, a: &AccountSpec, q: &[PriceEntry]) -> i128 {
        reference::health(&table.compile(a).unwrap(), q).0
    }

    #[test]
    fn aave_health_factor_matches_sign_of_health() {
        // 10 ETH collateral at LT 0.825, 15,000 USDC debt.
        let t = AssetTable::new(
            VenueSpec::default(),
            vec![lending_asset("ETH", -4, "0.825", "0.1"), lending_asset("USDC", -2, "0.875", "0")],
        )
        .unwrap();
        let acct = AccountSpec::new("alice", &[("ETH", "10"), ("USDC", "-15000")]);
        assert_eq!(
            t.compile(&acct).unwrap(),
            vec![
                liqscan_hdl::abi::Coeff { asset: 0, coeff: 82_500 },
                liqscan_hdl::abi::Coeff { asset: 1, coeff: -1_500_000 }
            ]
        );
        // ETH 2000: HF = 16500 / 15000 = 1.1, health = +1500 USD = 1.5e11 quanta of 1e-8.
        let (q, real) = prices(&t, &[("ETH", "2000"), ("USDC", "1")]);
        assert_eq!(aave_health_factor(&t, &acct, &real).unwrap(), Some((dec("16500"), dec("15000"))));
        assert_eq!(int_health(&t, &acct, &q), 150_000_000_000);
        // Liquidation price 15000 / 8.25 = 1818.1818...: 1818.18 breaches, 1818.19 does not.
        let (q, real) = prices(&t, &[("ETH", "1818.18"), ("USDC", "1")]);
        let (n, d) = aave_health_factor(&t, &acct, &real).unwrap().unwrap();
        assert!(n < d);
        assert_eq!(int_health(&t, &acct, &q), -1_500_000); // -0.015 USD
        let (q, real) = prices(&t, &[("ETH", "1818.19"), ("USDC", "1")]);
        let (n, d) = aave_health_factor(&t, &acct, &real).unwrap().unwrap();
        assert!(n > d);
        assert_eq!(int_health(&t, &acct, &q), 6_750_000); // +0.0675 USD
        // Stressed at 10%: ETH 1800 -> 1620 * 8.25 = 13365 < 15000: at risk.
        let (q, _) = prices(&t, &[("ETH", "1800"), ("USDC", "1")]);
        let (spot, stressed) = reference::health(&t.compile(&acct).unwrap(), &q);
        assert_eq!(spot, (14_850 - 15_000) * 100_000_000);
        assert_eq!(stressed, (13_365 - 15_000) * 100_000_000);
    }

    #[test]
    fn perpetual_long_and_short() {
        let t = AssetTable::new(
            VenueSpec::default(),
            vec![quote_asset("USD", -2), perp_market("ETH-PERP", -4, "0.05", "0.2")],
        )
        .unwrap();
        // Deposit 1000, buy 2 ETH at 2000: q = -3000, s = 2. health = -3000 + 1.9 P.
        let long = AccountSpec::new("long", &[("USD", "-3000"), ("ETH-PERP", "2")]);
        // Deposit 1000, sell 2 at 2000: q = 5000, s = -2. health = 5000 - 2.1 P.
        let short = AccountSpec::new("short", &[("USD", "5000"), ("ETH-PERP", "-2")]);
        let (q, _) = prices(&t, &[("USD", "1"), ("ETH-PERP", "2000")]);
        assert_eq!(int_health(&t, &long, &q), 800 * 100_000_000);
        assert_eq!(int_health(&t, &short, &q), 800 * 100_000_000);
        // Long liquidates below 3000 / 1.9 = 1578.947...; short above 5000 / 2.1 = 2380.952...
        let (q, _) = prices(&t, &[("USD", "1"), ("ETH-PERP", "1578.94")]);
        assert!(int_health(&t, &long, &q) < 0);
        let (q, _) = prices(&t, &[("USD", "1"), ("ETH-PERP", "1578.95")]);
        assert!(int_health(&t, &long, &q) > 0);
        let (q, _) = prices(&t, &[("USD", "1"), ("ETH-PERP", "2380.96")]);
        assert!(int_health(&t, &short, &q) < 0);
        let (q, _) = prices(&t, &[("USD", "1"), ("ETH-PERP", "2380.95")]);
        assert!(int_health(&t, &short, &q) > 0);
    }

    #[test]
    fn cross_margin_with_tiers() {
        let mut sol = lending_asset("SOL", -5, "0.9", "0.3");
        sol.tiers.get_mut(DEFAULT_TIER).unwrap().liability_weight = dec("1.1");
        sol.tiers.insert(
            "isolated".into(),
            TierWeights { asset_weight: dec("0.8"), liability_weight: dec("1.2") },
        );
        let mut btc = lending_asset("BTC", -6, "0.95", "0.2");
        btc.tiers.get_mut(DEFAULT_TIER).unwrap().liability_weight = dec("1.05");
        btc.tiers.insert(
            "isolated".into(),
            TierWeights { asset_weight: dec("0.9"), liability_weight: dec("1.1") },
        );
        let mut usdc = quote_asset("USDC", -2);
        usdc.tiers.insert(
            "isolated".into(),
            TierWeights { asset_weight: Decimal::ONE, liability_weight: Decimal::ONE },
        );
        let t = AssetTable::new(VenueSpec::default(), vec![sol, btc, usdc]).unwrap();
        // 100 SOL at 150 long, 0.5 BTC short at 60000, 20000 USDC:
        // default: 100*150*0.9 - 0.5*60000*1.05 + 20000 = 13500 - 31500 + 20000 = 2000
        // isolated: 100*150*0.8 - 0.5*60000*1.1 + 20000 = 12000 - 33000 + 20000 = -1000
        let mut a = AccountSpec::new("x", &[("SOL", "100"), ("BTC", "-0.5"), ("USDC", "20000")]);
        let (q, real) = prices(&t, &[("SOL", "150"), ("BTC", "60000"), ("USDC", "1")]);
        assert_eq!(int_health(&t, &a, &q), 2000 * 100_000_000);
        assert_eq!(real_health(&t, &a, &real).unwrap(), dec("2000"));
        a.tier = "isolated".into();
        assert_eq!(int_health(&t, &a, &q), -1000 * 100_000_000);
        a.tier = "vip".into();
        assert!(matches!(t.compile(&a), Err(crate::model::CompileError::UnknownTier { .. })));
    }
}
