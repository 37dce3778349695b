//! Two legs of one asset (a supply and a borrow) compile to two terms, each with its own
//! side's weight, and are never netted.
//!
//! For random venues, accounts and prices: the compiled terms are exactly the terms of each
//! leg compiled alone; the integer health is the sum of the legs' healths; it stays below the
//! exact real health of the legs; and netting the legs would give a real health at least as
//! high (strictly higher when both legs are there and `w+ < w-`), which is why netting can hide
//! a breach. A hand-built account shows one it hides.

use std::collections::BTreeMap;

use liqscan_hdl::abi::{PriceEntry, check_terms_software};
use liqscan_host::model::{
    AccountSpec, AssetSpec, AssetTable, Decimal, Legs, TierWeights, VenueSpec, venues,
};
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

fn with_legs(id: &str, legs: &[(String, Legs)]) -> AccountSpec {
    let mut a = AccountSpec::empty(id, "default");
    a.balances.extend(legs.iter().cloned());
    a
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn each_leg_is_its_own_term_and_netting_never_lowers_health(
        // (quantum_exp, asset weight 1e-4, liability weight excess 1e-4, supply, borrow, price)
        spec in prop::collection::vec(
            (-6i32..=0, 0u32..=10_000, 0u32..=5_000, 0i64..=(1i64 << 36), 0i64..=(1i64 << 36), 1u32..=(u32::MAX / 2)),
            1..=8,
        ),
    ) {
        let assets: Vec<AssetSpec> = spec.iter().enumerate().map(|(i, s)| asset(i, s.0, s.1, s.2)).collect();
        let table = AssetTable::new(VenueSpec::default(), assets).unwrap();
        let mut legs = Vec::new();
        let mut real_prices = BTreeMap::new();
        let mut prices = vec![PriceEntry::default(); table.len()];
        for (i, s) in spec.iter().enumerate() {
            // Balances of m * 10^(quantum_exp - 3): at most 2^36 / 1000 < 2^27 quanta.
            let scale = (3 - s.0) as u32;
            let l = Legs { supply: Decimal::new(s.3 as i128, scale), borrow: Decimal::new(-(s.4 as i128), scale) };
            legs.push((format!("A{i}"), l));
            let p = Decimal::new(s.5 as i128, (-(table.price_exp(i as u16))) as u32);
            real_prices.insert(format!("A{i}"), p);
            prices[i] = table.quote(i as u16, p).unwrap();
        }
        let acct = with_legs("x", &legs);
        let terms = table.compile(&acct).unwrap();
        check_terms_software(&terms, table.len()).unwrap();

        // The terms are the supply-only account's and the borrow-only account's, merged.
        let supplies: Vec<_> = legs.iter().map(|(s, l)| (s.clone(), Legs { supply: l.supply, borrow: Decimal::ZERO })).collect();
        let borrows: Vec<_> = legs.iter().map(|(s, l)| (s.clone(), Legs { supply: Decimal::ZERO, borrow: l.borrow })).collect();
        let (ts, tb) = (table.compile(&with_legs("s", &supplies)).unwrap(), table.compile(&with_legs("b", &borrows)).unwrap());
        let mut merged = [ts.clone(), tb.clone()].concat();
        merged.sort_by_key(|t| (t.asset, t.coeff < 0));
        prop_assert_eq!(&terms, &merged);
        for w in terms.windows(2) {
            prop_assert!((w[0].asset, w[0].coeff < 0) < (w[1].asset, w[1].coeff < 0), "sorted, positive leg first");
        }

        // Integer health is the sum over both legs, each with its own weight.
        let (int, int_stressed) = reference::health(&terms, &prices);
        let (hs, ss) = reference::health(&ts, &prices);
        let (hb, sb) = reference::health(&tb, &prices);
        prop_assert_eq!((int, int_stressed), (hs + hb, ss + sb));

        // Conservative against the exact health of the legs.
        let real = venues::real_health(&table, &acct, &real_prices).unwrap();
        prop_assert!(table.value_of(int) <= real);

        // Netting overstates: never lower, strictly higher when some asset has both legs and
        // w+ < w- (the weights differ whenever lw > 0 or aw < 1).
        let netted: Vec<_> = legs
            .iter()
            .map(|(s, l)| (s.clone(), Legs::signed(l.supply.checked_add(l.borrow).unwrap())))
            .collect();
        let real_netted = venues::real_health(&table, &with_legs("n", &netted), &real_prices).unwrap();
        prop_assert!(real_netted >= real, "netted {} below legs {}", real_netted, real);
        let hides = spec.iter().any(|s| s.3 > 0 && s.4 > 0 && (s.1 < 10_000 || s.2 > 0));
        if hides {
            prop_assert!(real_netted > real, "netted {} not above legs {}", real_netted, real);
        }
    }
}

#[test]
fn netting_would_hide_this_breach_and_two_legs_do_not() {
    let table = AssetTable::new(
        VenueSpec::default(),
        vec![venues::quote_asset("USDC", -2), venues::lending_asset("ETH", -4, "0.825", "0.1")],
    )
    .unwrap();
    // Supplies 10 ETH, borrows 9 ETH and 100 USDC. At ETH 2000: legs give
    // 10 * 0.825 * 2000 - 9 * 2000 - 100 = 16500 - 18000 - 100 = -1600: a breach.
    // Netted to +1 ETH: 0.825 * 2000 - 100 = +1550: healthy.
    let legs = AccountSpec::new("lender", &[("ETH", "10"), ("ETH", "-9"), ("USDC", "-100")]);
    let netted = AccountSpec::new("netted", &[("ETH", "1"), ("USDC", "-100")]);
    let mut prices = vec![PriceEntry::default(); 2];
    prices[0] = table.quote(0, "1".parse().unwrap()).unwrap();
    prices[1] = table.quote(1, "2000".parse().unwrap()).unwrap();
    let (h_legs, _) = reference::health(&table.compile(&legs).unwrap(), &prices);
    let (h_net, _) = reference::health(&table.compile(&netted).unwrap(), &prices);
    assert_eq!(table.value_of(h_legs), "-1600".parse().unwrap());
    assert_eq!(table.value_of(h_net), "1550".parse().unwrap());
    assert!(h_legs < 0 && h_net > 0, "the legs breach; netting hides it");
}
