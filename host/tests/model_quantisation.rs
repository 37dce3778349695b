//! Quantisation is conservative and its error is bounded.
//!
//! For random venues, accounts and prices: the integer health (in value quanta) never exceeds
//! the exact real health, and falls short of it by less than
//! `sum over terms (|b w| / q + P / r + 1)` quanta (the bound in `model`'s docs).

use std::collections::BTreeMap;

use liqscan_hdl::abi::PriceEntry;
use liqscan_host::model::{AccountSpec, AssetSpec, AssetTable, Decimal, TierWeights, VenueSpec, venues};
use liqscan_host::reference;
use proptest::prelude::*;

fn asset(i: usize, quantum_exp: i32, aw: u32, lw: u32) -> AssetSpec {
    AssetSpec {
        symbol: format!("A{i}"),
        decimals: 18,
        quantum_exp,
        stress: Decimal::new(1, 1),
        tiers: BTreeMap::from([(
            "default".to_string(),
            TierWeights {
                asset_weight: Decimal::new(aw as i128, 4),
                liability_weight: Decimal::new(10_000 + lw as i128, 4),
            },
        )]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn integer_health_is_below_real_health_within_the_bound(
        spec in prop::collection::vec(
            (-6i32..=0, 0u32..=10_000, 0u32..=5_000, -(1i64 << 38)..=(1i64 << 38), 0u32..=(u32::MAX / 2), 0u32..=4, 0u64..10_000),
            1..=6,
        ),
        value_exp in -10i32..=-6,
    ) {
        // Each case is built to fit the widths, so every one reaches the assertions: a balance
        // of m * 10^(quantum_exp - 3) is at most 2^38 / 1000 < 2^29 quanta before weighting;
        // a price of (p * 10^k + frac) * 10^(price_exp - k) is p quanta plus a fraction.
        let assets: Vec<AssetSpec> = spec.iter().enumerate().map(|(i, s)| asset(i, s.0, s.1, s.2)).collect();
        let table = AssetTable::new(VenueSpec { name: "p".into(), value_exp }, assets).unwrap();
        let mut balances = BTreeMap::new();
        let mut real_prices = BTreeMap::new();
        let mut prices = vec![PriceEntry::default(); table.len()];
        for (i, s) in spec.iter().enumerate() {
            balances.insert(format!("A{i}"), Decimal::new(s.3 as i128, (3 - s.0) as u32).into());
            let k = s.5;
            let frac = s.6 as i128 % 10i128.pow(k);
            let price_exp = value_exp - s.0;
            let m = s.4 as i128 * 10i128.pow(k) + frac;
            let p = Decimal::new(m, (k as i32 - price_exp) as u32);
            real_prices.insert(format!("A{i}"), p);
            // Stress 0.1 can push the liability side over 32 bits only above 2^32 / 1.1.
            prices[i] = table.quote(i as u16, p).unwrap();
        }
        let acct = AccountSpec { id: "x".into(), tier: "default".into(), balances };
        let terms = table.compile(&acct).unwrap();
        let (int, _) = reference::health(&terms, &prices);
        let real = venues::real_health(&table, &acct, &real_prices).unwrap();
        let int_value = table.value_of(int);
        prop_assert!(int_value <= real, "integer {} above real {}", int_value, real);
        // Bound in quanta: sum |b w| / q + P / r + 1, computed exactly then converted to value.
        let mut bound = Decimal::ZERO;
        for (i, s) in spec.iter().enumerate() {
            let w = if s.3 < 0 { Decimal::new(10_000 + s.2 as i128, 4) } else { Decimal::new(s.1 as i128, 4) };
            let bw = Decimal::new((s.3 as i128).abs(), (3 - s.0) as u32).checked_mul(w).unwrap();
            let term = bw.ceil_shifted(-s.0).unwrap()
                + real_prices[&format!("A{i}")].ceil_shifted(-(value_exp - s.0)).unwrap()
                + 1;
            bound = bound.checked_add(table.value_of(term)).unwrap();
        }
        let gap = real.checked_sub(int_value).unwrap();
        prop_assert!(gap <= bound, "gap {} over bound {}", gap, bound);
    }
}

#[test]
fn stressed_prices_bracket_spot_prices() {
    let table =
        AssetTable::new(VenueSpec::default(), vec![venues::lending_asset("ETH", -4, "0.8", "0.15")]).unwrap();
    // The stressed liability price P * 1.15 must fit 32 bits too: 373475.4169 is the largest.
    for p in ["0", "0.0001", "1818.18", "1234.56789", "373475.4169"] {
        let e = table.quote(0, p.parse().unwrap()).unwrap();
        assert!(e.stressed.asset <= e.spot.asset && e.spot.asset <= e.spot.liability);
        assert!(e.spot.liability <= e.stressed.liability);
        assert!(e.spot.liability - e.spot.asset <= 1);
    }
    assert!(table.quote(0, "373475.417".parse().unwrap()).is_err());
    assert!(table.quote(0, "429496.7296".parse().unwrap()).is_err());
}
