//! Quanta chosen from the book and a price range: every coefficient and price fits, and the
//! printed worst-case error bounds the real rounding error for every price in the range.

use std::collections::BTreeMap;

use liqscan_hdl::abi::PriceEntry;
use liqscan_host::io::Format;
use liqscan_host::io::venue::{parse_venue, parse_venue_draft};
use liqscan_host::model::{AccountSpec, Decimal, QuantumError, venues};
use liqscan_host::reference;
use proptest::prelude::*;

const VENUE: &str = r#"
[venue]
value_exp = -8
price_range = ["0.01", "100000"]
[[assets]]
symbol = "ETH"
stress = "0.1"
tiers.default = { asset_weight = "0.825", liability_weight = "1" }
[[assets]]
symbol = "USDC"
quantum_exp = -2
price_range = ["0.01", "1000"]
tiers.default = { asset_weight = "0.9", liability_weight = "1" }
"#;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn chooses_the_quantum_that_fits_the_book_and_the_price_range() {
    let p = std::path::Path::new("v.toml");
    let e = parse_venue(p, VENUE, Format::Toml).unwrap_err().to_string();
    assert!(e.contains("asset 'ETH' has no quantum_exp"), "{e}");
    let draft = parse_venue_draft(p, VENUE, Format::Toml).unwrap();
    assert_eq!(draft.auto, vec![true, false]);
    // 100,000 ETH at weight 0.825: 82,500 / 10^e <= 2^31 - 1 needs e >= -4; 100,000 * 1.1
    // * 10^(e + 8) <= 2^32 - 1 needs e <= -4.
    let book = vec![
        AccountSpec::new("whale", &[("ETH", "100000"), ("USDC", "-1000000")]),
        AccountSpec::new("small", &[("ETH", "0.5"), ("ETH", "-0.1")]),
    ];
    let (table, chosen) = draft.resolve(&book).unwrap();
    assert_eq!(chosen, vec![("ETH".to_string(), -4)]);
    assert_eq!(table.assets()[0].quantum_exp, -4);
    for a in &book {
        table.compile(a).unwrap();
    }
    table.quote(0, d("100000")).unwrap();
    // A book ten times larger does not fit with that range: refused, naming what to change.
    let big = vec![AccountSpec::new("whale", &[("ETH", "1000000")])];
    let e = draft.resolve(&big).unwrap_err();
    assert!(matches!(e, QuantumError::NoFit { coeff_min: -3, price_max: -4, .. }), "{e:?}");
    assert!(e.to_string().contains("lower the top of price_range"), "{e}");
    // A small book with a low price range gets a finer quantum.
    let low = VENUE.replace("\"100000\"]", "\"10\"]");
    let draft = parse_venue_draft(p, &low, Format::Toml).unwrap();
    let (_, chosen) = draft.resolve(&[AccountSpec::new("a", &[("ETH", "0.001")])]).unwrap();
    assert!(chosen[0].1 < -4, "{chosen:?}");
    // No range, or an empty one.
    let none = VENUE.replace("price_range = [\"0.01\", \"100000\"]\n", "");
    let draft = parse_venue_draft(p, &none, Format::Toml).unwrap();
    assert!(matches!(draft.resolve(&book), Err(QuantumError::NoPriceRange { .. })));
    let e = parse_venue_draft(p, &VENUE.replacen("\"0.01\"", "\"0\"", 1), Format::Toml).unwrap_err();
    assert!(e.to_string().contains("price_range low is 0, must be above 0 and at most the high end"), "{e}");
    let e = parse_venue_draft(p, &VENUE.replace("\"1000\"]", "\"0.001\"]"), Format::Toml).unwrap_err();
    assert!(e.to_string().contains("asset 'USDC' price_range low is 0.01"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// For a random book and random prices inside the range: the integer health is below the
    /// exact health by at most the account's bound, and that gap over the collateral value at
    /// those prices is at most the relative bound.
    #[test]
    fn the_printed_bound_holds_for_every_price_in_the_range(
        book in prop::collection::vec(
            (1u64..=1_000_000_000_000, 0u64..=1_000_000_000_000, 0u64..=1_000_000_000, 0u64..=1_000_000_000),
            1..=6,
        ),
        prices in prop::collection::vec((1u64..=10_000_000, 1u64..=100_000), 1..=4),
        scale in 1u32..=8,
    ) {
        let draft = parse_venue_draft(std::path::Path::new("v.toml"), VENUE, Format::Toml).unwrap();
        // Balances of up to 10^12 units of 10^-(scale + 3): at most 10^8 ETH, both legs of ETH,
        // and USDC. Books over about 2.6 * 10^5 ETH do not fit this range and are refused.
        let specs: Vec<AccountSpec> = book
            .iter()
            .enumerate()
            .map(|(i, &(es, eb, us, ub))| {
                let mut a = AccountSpec::empty(format!("a{i}"), "default");
                a.add_balance("ETH", Decimal::new(es as i128, scale + 3)).unwrap();
                a.add_balance("ETH", Decimal::new(-(eb as i128), scale + 3)).unwrap();
                a.add_balance("USDC", Decimal::new(us as i128, 2)).unwrap();
                a.add_balance("USDC", Decimal::new(-(ub as i128), 2)).unwrap();
                a
            })
            .collect();
        let largest = book.iter().map(|b| b.0.max(b.1)).max().unwrap() as f64 / 10f64.powi(scale as i32 + 3);
        let (table, _) = match draft.resolve(&specs) {
            Ok(r) => r,
            Err(QuantumError::NoFit { .. }) if largest > 200_000.0 => return Ok(()),
            Err(e) => panic!("largest leg {largest} ETH: {e}"),
        };
        for &(eth, usdc) in &prices {
            // ETH in [0.01, 100000] (1e-2 steps), USDC in [0.01, 1000].
            let real = BTreeMap::from([
                ("ETH".to_string(), Decimal::new(eth as i128, 2)),
                ("USDC".to_string(), Decimal::new(usdc as i128, 2)),
            ]);
            let mut quoted = vec![PriceEntry::default(); 2];
            for (s, p) in &real {
                let (i, e) = table.quote_symbol(s, *p).unwrap();
                quoted[i as usize] = e;
            }
            for a in &specs {
                let terms = table.compile(a).unwrap();
                let int = table.value_of(reference::health(&terms, &quoted).0);
                let exact = venues::real_health(&table, a, &real).unwrap();
                let gap = exact.checked_sub(int).unwrap();
                let bound = table.error_bound(a).unwrap();
                prop_assert!(gap >= Decimal::ZERO);
                prop_assert!(gap <= bound.health, "gap {} over bound {}", gap, bound.health);
                let mut collateral = Decimal::ZERO;
                for (s, b) in a.legs().filter(|(_, b)| !b.is_negative()) {
                    collateral = collateral.checked_add(b.checked_mul(real[s]).unwrap()).unwrap();
                }
                prop_assert!(collateral >= bound.collateral_at_low);
                // gap / collateral at these prices <= the relative bound (display precision).
                let rel = gap.to_f64_lossy() / collateral.to_f64_lossy();
                if let Some(r) = bound.relative {
                    prop_assert!(rel <= r * (1.0 + 1e-9), "relative gap {} over bound {}", rel, r);
                } else {
                    prop_assert!(collateral.is_zero());
                }
            }
        }
    }
}

#[test]
fn the_relative_bound_holds_where_coefficient_rounding_dominates() {
    // 0.00019999 ETH at weight 0.825 is 1.649 quanta of 1e-4 ETH: the coefficient keeps 1, and
    // a third of the collateral's value is rounded away at any price.
    let venue = VENUE.replace("\"0.01\", \"100000\"]", "\"10\", \"100000\"]");
    let draft = parse_venue_draft(std::path::Path::new("v.toml"), &venue, Format::Toml).unwrap();
    let book = vec![
        AccountSpec::new("tiny", &[("ETH", "0.00019999")]),
        AccountSpec::new("big", &[("ETH", "200000")]),
    ];
    let (table, chosen) = draft.resolve(&book).unwrap();
    assert_eq!(chosen, vec![("ETH".to_string(), -4)]);
    let bound = table.error_bound(&book[0]).unwrap();
    let rel_bound = bound.relative.unwrap();
    for price in ["10", "12345.67", "100000"] {
        let p = d(price);
        let quoted = vec![table.quote(0, p).unwrap(), PriceEntry::default()];
        let int = table.value_of(reference::health(&table.compile(&book[0]).unwrap(), &quoted).0);
        let exact = venues::real_health(&table, &book[0], &BTreeMap::from([("ETH".to_string(), p)])).unwrap();
        let gap = exact.checked_sub(int).unwrap();
        assert!(gap <= bound.health);
        let rel = gap.to_f64_lossy() / d("0.00019999").checked_mul(p).unwrap().to_f64_lossy();
        assert!(rel > 0.3 && rel <= rel_bound, "{price}: {rel} against {rel_bound}");
    }
}
