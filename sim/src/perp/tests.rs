//! Venue-level tests: each mechanism on a hand-built case, the risk-formula mapping against the
//! host's model, and the zero-sum property on random scenarios.

use std::collections::BTreeMap;

use liqscan_host::model::account::{AccountSpec, DEFAULT_TIER, Legs};
use liqscan_host::model::asset::{AssetTable, VenueSpec};
use liqscan_host::model::decimal::Decimal;
use liqscan_host::model::venues::{perp_market, quote_asset, real_health};
use proptest::prelude::*;

use super::*;
use crate::venue::DepthModel;

const USD: i128 = QUANTA_PER_UNIT;
/// BTC at 60 000 USD with lots of 0.001 BTC: 60 USD per lot.
const BTC: i128 = 60 * USD;

fn btc(tiers: MarginTiers, depth_usd_per_pct: f64) -> MarketParams {
    MarketParams {
        symbol: "BTC-PERP".into(),
        tiers,
        funding: FundingParams::hyperliquid(),
        depth: DepthModel::new(depth_usd_per_pct, 300.0),
        mark_ema_ppm: 1_000_000,
    }
}

fn config(partial: Option<PartialConfig>, backstop: bool, insurance: bool, adl: bool) -> LiquidationConfig {
    LiquidationConfig { partial, backstop, insurance, adl, ..LiquidationConfig::default() }
}

/// A venue with one BTC market at 5% flat maintenance and a long/short pair of `lots` each.
fn pair(cfg: LiquidationConfig, fund: i128, long_margin: i128, lots: i128) -> (PerpVenue, usize, usize) {
    let mut v =
        PerpVenue::new(vec![(btc(MarginTiers::flat(50_000), 10_000_000.0), BTC)], fund, 1_000_000 * USD, cfg)
            .unwrap();
    let long = v.open_account(long_margin);
    let short = v.open_account(lots * BTC);
    v.trade(long, short, 0, lots, BTC, 0).unwrap();
    (v, long, short)
}

#[test]
fn partial_liquidation_sends_chunks_then_waits_out_the_cooldown() {
    // 5 000 lots = 300 k USD: over the 100 k line, so it goes in chunks.
    let chunks = PartialConfig { then_whole: false, ..PartialConfig::hyperliquid() };
    let (mut v, long, _) = pair(config(Some(chunks), true, true, true), 0, 30_000 * USD, 5_000);
    // -6%: equity 30 k - 18 k = 12 k < 5% of 282 k = 14.1 k, above 2/3 of it (9.4 k): the book.
    let p = BTC * 94 / 100;
    v.step(1, &[p]).unwrap();
    let fills: Vec<_> =
        v.events.iter().filter(|e| matches!(e, PerpEvent::BookFill { .. })).cloned().collect();
    assert_eq!(fills.len(), 1, "{:?}", v.events);
    let PerpEvent::BookFill { size, price, .. } = fills[0] else { unreachable!() };
    assert_eq!(size, -1_000, "20% of 5 000 lots");
    assert!(price < p, "a sale fills under the mark");
    assert_eq!(v.accounts[long].positions[0].size, 4_000);
    // The chunk restored the account; a further -1% breaches it again. Within the
    // 30 s cooldown nothing happens, after it the next chunk goes.
    let p2 = BTC * 93 / 100;
    v.step(10, &[p2]).unwrap();
    assert!(v.is_liquidatable(long));
    assert!(v.events.iter().all(|e| !matches!(e, PerpEvent::BookFill { .. })), "{:?}", v.events);
    v.step(25, &[p2]).unwrap();
    assert!(matches!(v.events[..], [PerpEvent::BookFill { size: -800, .. }]), "20% of 4 000: {:?}", v.events);
    assert_eq!(v.accounts[long].positions[0].size, 3_200);
    v.check_conservation().unwrap();
    // Hyperliquid's rule: after the first chunk and the cooldown, the whole rest goes.
    let (mut v, long, _) =
        pair(config(Some(PartialConfig::hyperliquid()), true, true, true), 0, 30_000 * USD, 5_000);
    v.step(1, &[p]).unwrap();
    v.step(10, &[p2]).unwrap();
    v.step(25, &[p2]).unwrap();
    assert!(matches!(v.events[..], [PerpEvent::BookFill { size: -4_000, .. }]), "{:?}", v.events);
    assert!(!v.accounts[long].has_position());
    v.check_conservation().unwrap();
}

#[test]
fn orders_limited_at_the_bankruptcy_price_leave_the_shortfall_to_adl() {
    // A 10x long of 1 000 lots (60 k USD) in a book of 3 000 USD per 1%: sold whole at the
    // market it moves the book 18.9% and fills 9.45% under the mark, far past its bankruptcy
    // price. No backstop, no fund, ADL on.
    let run = |limit: bool| {
        let mut cfg = config(None, false, false, true);
        cfg.max_book_move_ppm = 500_000;
        cfg.bankruptcy_limit = limit;
        let mut v = PerpVenue::new(vec![(btc(MarginTiers::flat(50_000), 3_000.0), BTC)], 0, 0, cfg).unwrap();
        let long = v.open_account(6_000 * USD);
        let short = v.open_account(1_000 * BTC);
        v.trade(long, short, 0, 1_000, BTC, 0).unwrap();
        // -5.5%: equity 2 700 < 5% of 56 700.
        for _ in 0..5 {
            v.step(1, &[BTC * 945 / 1000]).unwrap();
            v.check_conservation().unwrap();
            if limit {
                // A fill never takes the account under zero at the fill's own price.
                for e in &v.events {
                    if let PerpEvent::BookFill { account, .. } = *e {
                        assert!(
                            v.accounts[account].quote >= 0 || v.accounts[account].has_position(),
                            "{e:?}"
                        );
                    }
                }
            }
        }
        assert!(!v.accounts[long].has_position(), "resolved");
        (v.ledger.unpaid_bad_debt, v.ledger.adl_events, v.ledger.book_fills)
    };
    let (unpaid, adl, fills) = run(false);
    assert!(unpaid > 0 && adl == 0 && fills == 1, "market order: the fill leaves it short, unpaid {unpaid}");
    let (unpaid, adl, fills) = run(true);
    assert!(unpaid == 0 && adl > 0 && fills >= 1, "limit: the rest goes to ADL ({unpaid}, {adl}, {fills})");
}

#[test]
fn backstop_vault_takes_over_at_the_bankruptcy_price() {
    let (mut v, long, _) = pair(config(None, true, true, true), 0, 3_000 * USD, 1_000);
    // -2.5%: equity 3 000 - 1 500 = 1 500 < 2/3 of 5% of 58 500 (1 950): the vault takes over.
    let p = BTC * 975 / 1000;
    v.step(1, &[p]).unwrap();
    assert!(matches!(v.events[..], [PerpEvent::Backstop { size: 1_000, .. }]), "{:?}", v.events);
    let PerpEvent::Backstop { price, .. } = v.events[0] else { unreachable!() };
    // The bankruptcy price leaves the trader nothing but rounding dust under one quantum per lot.
    assert_eq!(price, p - 1_500 * USD / 1_000);
    assert!(!v.accounts[long].has_position());
    assert!((0..1_000).contains(&v.accounts[long].quote));
    let z = v.check_conservation().unwrap();
    assert_eq!(z.vault_pnl, 1_500 * USD, "the vault holds the margin that was left");
}

#[test]
fn a_bounded_vault_takes_over_only_what_its_capital_covers() {
    let run = |vault: i128| {
        let mut cfg = config(None, true, true, true);
        cfg.backstop_bounded = true;
        let mut v =
            PerpVenue::new(vec![(btc(MarginTiers::flat(50_000), 10_000_000.0), BTC)], 0, vault, cfg).unwrap();
        let long = v.open_account(3_000 * USD);
        let short = v.open_account(1_000 * BTC);
        v.trade(long, short, 0, 1_000, BTC, 0).unwrap();
        v.step(1, &[BTC * 975 / 1000]).unwrap();
        v.check_conservation().unwrap();
        assert!(!v.accounts[long].has_position());
        v.events.clone()
    };
    // Under the line with 1 500 of margin left, which the vault would gain; its maintenance on
    // the position is 5% of 58 500 = 2 925: 1 425 of capital carries it, 1 424 does not, and
    // the position goes into the book instead.
    assert!(matches!(run(1_425 * USD)[..], [PerpEvent::Backstop { size: 1_000, .. }]));
    assert!(
        matches!(run(1_424 * USD)[..], [PerpEvent::BookFill { size: -1_000, .. }]),
        "{:?}",
        run(1_424 * USD)
    );
}

#[test]
fn fund_pays_the_shortfall_then_adl_haircuts_the_most_profitable_leveraged_first() {
    let mut v = PerpVenue::new(
        vec![(btc(MarginTiers::flat(50_000), 10_000_000.0), BTC)],
        500 * USD,
        0,
        config(None, true, true, true),
    )
    .unwrap();
    let long = v.open_account(3_000 * USD);
    // Two shorts of 500 lots each: the one with less margin has more leverage, ranks first.
    let lean = v.open_account(10_000 * USD);
    let fat = v.open_account(40_000 * USD);
    v.trade(long, lean, 0, 500, BTC, 0).unwrap();
    v.trade(long, fat, 0, 500, BTC, 0).unwrap();
    // -10%: the long's equity is 3 000 - 6 000 = -3 000. The fund pays 500; ADL the rest.
    let p = BTC * 90 / 100;
    v.step(1, &[p]).unwrap();
    assert_eq!(v.fund, 0);
    assert_eq!(v.accounts[long].fund_cover, 500 * USD);
    let adl: Vec<_> = v
        .events
        .iter()
        .filter_map(|e| match e {
            PerpEvent::Adl { counterparty, size, haircut, .. } => Some((*counterparty, *size, *haircut)),
            _ => None,
        })
        .collect();
    assert_eq!(adl, vec![(lean, 500, 1_250 * USD), (fat, 500, 1_250 * USD)]);
    assert_eq!(v.accounts[long].quote, 0, "2 500 over 1 000 lots divides exactly");
    assert_eq!(v.ledger.adl_events, 2);
    assert_eq!(v.ledger.unpaid_bad_debt, 0);
    let z = v.check_conservation().unwrap();
    assert_eq!(z.traders_unrealised, 0);
}

#[test]
fn adl_ranking_decides_who_bears_the_loss() {
    let mut v = PerpVenue::new(
        vec![(btc(MarginTiers::flat(50_000), 10_000_000.0), BTC)],
        0,
        0,
        config(None, true, true, true),
    )
    .unwrap();
    let long = v.open_account(3_000 * USD);
    let early = v.open_account(20_000 * USD); // shorted 10% higher: more profit, ranks first
    let late = v.open_account(20_000 * USD);
    let buyer = v.open_account(1_000_000 * USD);
    v.trade(buyer, early, 0, 600, BTC * 110 / 100, 0).unwrap();
    v.trade(buyer, late, 0, 600, BTC, 0).unwrap();
    v.trade(long, buyer, 0, 600, BTC, 0).unwrap();
    v.step(1, &[BTC * 90 / 100]).unwrap();
    // The long's deficit: 3 000 - 3 600 = -600 USD over 600 lots: 1 USD per lot, all on `early`.
    let hit: Vec<(usize, i128, i128)> = v
        .events
        .iter()
        .filter_map(|e| match *e {
            PerpEvent::Adl { counterparty, size, haircut, .. } => Some((counterparty, size, haircut)),
            _ => None,
        })
        .collect();
    assert_eq!(hit, vec![(early, 600, 600 * USD)]);
    assert_eq!(v.accounts[late].adl_paid, 0);
    assert_eq!(v.accounts[long].quote, 0);
    v.check_conservation().unwrap();
}

#[test]
fn an_isolated_position_falls_alone() {
    let eth = MarketParams { symbol: "ETH-PERP".into(), ..btc(MarginTiers::flat(50_000), 10_000_000.0) };
    let mut v = PerpVenue::new(
        vec![(btc(MarginTiers::flat(50_000), 10_000_000.0), BTC), (eth, 3 * USD)],
        0,
        0,
        config(None, true, true, true),
    )
    .unwrap();
    let owner = v.open_account(20_000 * USD);
    let other = v.open_account(1_000_000 * USD);
    v.trade(owner, other, 0, 100, BTC, 0).unwrap();
    // 1 000 USD of margin for a 30 k USD ETH long, isolated.
    let iso = v.open_isolated(owner, 1, 1_000 * USD).unwrap();
    assert_eq!(
        v.trade(iso, other, 0, 1, BTC, 0),
        Err(PerpError::IsolatedMarket { account: iso, isolated: 1, market: 0 })
    );
    v.trade(iso, other, 1, 10_000, 3 * USD, 0).unwrap();
    let cross_before = (v.accounts[owner].quote, v.accounts[owner].positions.clone());
    // ETH -10%: the isolated account is 2 000 USD under water; BTC unchanged.
    v.step(1, &[BTC, 3 * USD * 90 / 100]).unwrap();
    assert!(!v.accounts[iso].has_position());
    assert!(v.events.iter().any(|e| matches!(*e, PerpEvent::Adl { bankrupt, .. } if bankrupt == iso)));
    assert_eq!((v.accounts[owner].quote, v.accounts[owner].positions.clone()), cross_before);
    // Moving more margin than the cross account can spare is refused.
    let err = v.transfer_margin(owner, iso, 19_000 * USD).unwrap_err();
    assert!(matches!(err, PerpError::Margin { amount, .. } if amount == 19_000 * USD), "{err}");
    v.check_conservation().unwrap();
}

#[test]
fn without_fund_adl_or_backstop_the_shortfall_stays_as_bad_debt() {
    let (mut v, long, _) = pair(config(None, false, false, false), 0, 3_000 * USD, 1_000);
    v.step(1, &[BTC * 90 / 100]).unwrap();
    assert!(!v.accounts[long].has_position());
    assert!(v.ledger.unpaid_bad_debt > 3_000 * USD, "6 000 of loss plus the book's impact");
    assert_eq!(v.accounts[long].quote, -v.ledger.unpaid_bad_debt);
    v.check_conservation().unwrap();
}

#[test]
fn a_full_book_sends_the_account_to_the_backstop() {
    // A book of 1 USD per 1% with a 0.01% cap per order absorbs less than one lot (60 USD).
    let mut cfg = config(None, true, true, true);
    cfg.max_book_move_ppm = 100;
    let mut v = PerpVenue::new(vec![(btc(MarginTiers::flat(50_000), 1.0), BTC)], 0, 0, cfg).unwrap();
    let long = v.open_account(5_000 * USD);
    let short = v.open_account(100_000 * USD);
    v.trade(long, short, 0, 1_000, BTC, 0).unwrap();
    v.step(1, &[BTC * 96 / 100]).unwrap(); // equity 2 600 < 2 880, above 1 920: the book first.
    assert!(matches!(v.events[..], [PerpEvent::Backstop { .. }]), "{:?}", v.events);
    v.check_conservation().unwrap();
}

#[test]
fn funding_flows_from_longs_to_shorts_when_the_book_is_rich() {
    let (mut v, long, short) = pair(config(None, true, true, true), 0, 30_000 * USD, 100);
    v.markets[0].params.depth.factor = 1.01; // the book 1% over the oracle, for the whole hour
    v.markets[0].params.depth.half_life_secs = 0.0;
    v.step(3_600, &[BTC]).unwrap();
    // half_life 0 heals the book at once: the premium is 0 and the rate the interest, 12 ppm.
    assert!(v.events.contains(&PerpEvent::Funding { market: 0, rate_ppm: 12 }));
    assert_eq!(v.accounts[long].funding, -adl::div_ceil(100 * BTC * 12, PPM));
    assert_eq!(v.accounts[short].funding, 100 * BTC * 12 / PPM);
    v.check_conservation().unwrap();
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let cfg = LiquidationConfig::default();
    let err = PerpVenue::new(vec![(btc(MarginTiers::flat(1), -1.0), BTC)], 0, 0, cfg.clone()).unwrap_err();
    assert_eq!(err.to_string(), "market 0 (BTC-PERP): depth_usd_per_pct -1 is not a positive finite number");
    let err = PerpVenue::new(vec![(btc(MarginTiers::flat(1), 1.0), 0)], 0, 0, cfg.clone()).unwrap_err();
    assert!(matches!(err, PerpError::Price { market: 0, price: 0, .. }));
    let mut params = btc(MarginTiers::flat(1), 1.0);
    params.funding.interval_secs = 0;
    assert!(matches!(
        PerpVenue::new(vec![(params, BTC)], 0, 0, cfg).unwrap_err(),
        PerpError::FundingInterval { .. }
    ));
    let (mut v, long, _) = pair(LiquidationConfig::default(), 0, 3_000 * USD, 1_000);
    let before = (v.now, v.markets[0].mark, v.accounts[long].quote);
    assert_eq!(v.step(1, &[]), Err(PerpError::OracleCount { expected: 1, got: 0 }));
    assert!(matches!(v.step(1, &[-5]), Err(PerpError::Price { price: -5, .. })));
    assert_eq!((v.now, v.markets[0].mark, v.accounts[long].quote), before);
}

/// Liquidation fills dent a thin book, the mark follows, and more accounts fall: the cascade.
/// The same exogenous -6% liquidates more accounts over a thin book than over a deep one.
#[test]
fn liquidations_into_a_thin_book_cascade() {
    let run = |depth: f64| {
        let mut cfg = config(None, true, true, true);
        cfg.max_book_move_ppm = 1_000_000;
        let mut v = PerpVenue::new(vec![(btc(MarginTiers::flat(50_000), depth), BTC)], 0, 0, cfg).unwrap();
        let maker = v.open_account(10_000_000 * USD);
        // 40 longs of 1 000 lots (60 k USD) with margins from 4 k to 11.8 k USD.
        for n in 0..40 {
            let a = v.open_account((4_000 + 200 * n) * USD);
            v.trade(a, maker, 0, 1_000, BTC, 0).unwrap();
        }
        let mut fallen = 0;
        for _ in 0..20 {
            v.step(1, &[BTC * 94 / 100]).unwrap();
            fallen += v
                .events
                .iter()
                .filter(|e| matches!(e, PerpEvent::BookFill { .. } | PerpEvent::Backstop { .. }))
                .count();
            v.check_conservation().unwrap();
        }
        (fallen, v.markets[0].mark)
    };
    let (deep, deep_mark) = run(1e9);
    let (thin, thin_mark) = run(200_000.0);
    // -6%: equity m - 3 600 < 5% of 56 400 = 2 820 for margins m under 6 420: the first 13.
    assert_eq!(deep, 13);
    assert!(thin > deep, "thin {thin} deep {deep}");
    assert!(thin_mark < deep_mark, "the dent reaches the mark: {thin_mark} vs {deep_mark}");
}

/// The host model's real-valued health for the terms of account `i`, in quote quanta * 10^6.
fn host_health_scaled(v: &PerpVenue, i: usize) -> Decimal {
    let terms = risk::risk_terms(v, i);
    let mut assets = vec![quote_asset("USD", -6)];
    let mut balances = BTreeMap::from([("USD".to_string(), Decimal::new(terms.quote_scaled, 12))]);
    let mut prices = BTreeMap::from([("USD".to_string(), Decimal::ONE)]);
    for &(k, s, m) in &terms.legs {
        let sym = format!("P{k}");
        assets.push(perp_market(&sym, -3, &Decimal::new(m as i128, 6).to_string(), "0.1"));
        balances.insert(sym.clone(), Decimal::new(s, 3));
        // quote quanta per lot -> USD per whole unit: p * 10^-6 / 10^-3.
        prices.insert(sym, Decimal::new(v.markets[k].mark, 3));
    }
    let table = AssetTable::new(VenueSpec::default(), assets).unwrap();
    let balances = balances.into_iter().map(|(k, b)| (k, Legs::signed(b))).collect();
    let account = AccountSpec { id: "a".into(), tier: DEFAULT_TIER.into(), balances };
    let h = real_health(&table, &account, &prices).unwrap();
    h.checked_mul(Decimal::new(1_000_000_000_000, 0)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The mapping onto the one formula gives exactly `equity - MM` (scaled), its sign is the
    /// venue's own liquidation test, and the host's model computes the same value.
    #[test]
    fn risk_formula_agrees_with_the_venues_liquidation_test(
        legs in prop::collection::vec((-200_000i128..200_000, 1i128..200_000_000), 1..4),
        deposit in 0i128..5_000_000,
        crash_ppm in 0i128..2_000_000,
    ) {
        let markets = legs
            .iter()
            .map(|&(_, p)| (btc(MarginTiers::binance_btc_2022(USD), 1e9), p))
            .collect();
        let mut v = PerpVenue::new(markets, 0, 0, LiquidationConfig::default()).unwrap();
        let a = v.open_account(deposit * USD);
        let b = v.open_account(0);
        for (k, &(s, p)) in legs.iter().enumerate() {
            v.trade(a, b, k, s, p, 0).unwrap();
        }
        // Move every price, mark included (the EMA weight is 1 and the book is deep).
        let moved: Vec<i128> = legs.iter().map(|&(_, p)| p * crash_ppm / PPM).collect();
        for (m, &p) in v.markets.iter_mut().zip(&moved) {
            m.tick(p, 0.0);
        }
        let equity = v.accounts[a].equity(&v.marks());
        let terms = risk::risk_terms(&v, a);
        let h = terms.health_scaled(&v.marks());
        prop_assert_eq!(h, equity * PPM - v.maintenance_scaled(a));
        prop_assert_eq!(h < 0, v.is_liquidatable(a));
        let host = host_health_scaled(&v, a);
        prop_assert!(host.checked_sub(Decimal::new(h, 0)).unwrap().is_zero(), "host {} venue {}", host, h);
    }
}

/// A random scenario: markets, accounts and trades, then a price path with crashes.
#[derive(Debug, Clone)]
struct Scenario {
    markets: Vec<(i128, f64, u32, u64)>, // (price, depth USD per 1%, flat mmr or 0 = Binance, funding secs)
    deposits: Vec<i128>,
    isolated: Vec<(usize, usize, i128)>, // owner, market, margin moved
    trades: Vec<(usize, usize, usize, i128, u32)>, // buyer, seller, market, lots, fee ppm
    path: Vec<(u64, Vec<i128>)>,         // (dt, per-market move in ppm of the price)
    config: LiquidationConfig,
    fund: i128,
    vault: i128,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let config = (
        prop::option::of((1u32..1_000_000, 0u64..60)),
        1u32..1_000_000,
        any::<bool>(),
        100_000u32..1_000_000,
        any::<bool>(),
        any::<bool>(),
        0u32..20_000,
        (any::<bool>(), any::<bool>()),
    )
        .prop_map(|(partial, cap, backstop, line, insurance, adl, fee, (bounded, limit))| {
            LiquidationConfig {
                partial: partial.map(|(chunk_ppm, cooldown_secs)| PartialConfig {
                    chunk_ppm,
                    cooldown_secs,
                    min_notional: 1_000 * USD,
                    then_whole: chunk_ppm % 2 == 0,
                }),
                max_book_move_ppm: cap,
                backstop,
                backstop_below_ppm: line,
                backstop_bounded: bounded,
                insurance,
                adl,
                fee_ppm: fee,
                keeper: false,
                bankruptcy_limit: limit,
            }
        });
    (1usize..4, 2usize..17)
        .prop_flat_map(move |(nm, na)| {
            let market = (
                1_000i128..100_000_000,
                1_000.0f64..1e8,
                prop_oneof![Just(0u32), 1_000u32..200_000],
                1u64..600,
            );
            let mv = prop_oneof![
                8 => -30_000i128..30_000,       // calm
                1 => -900_000i128..-100_000,    // crash
                1 => 100_000i128..1_000_000,    // squeeze
            ];
            (
                prop::collection::vec(market, nm),
                prop::collection::vec(0i128..100_000 * USD, na),
                prop::collection::vec((0..na, 0..nm, 0i128..50_000 * USD), 0..3),
                prop::collection::vec((0..32usize, 0..32usize, 0..nm, 1i128..20_000, 0u32..2_000), 0..40),
                prop::collection::vec((1u64..120, prop::collection::vec(mv, nm)), 1..80),
                config.clone(),
                0i128..50_000 * USD,
                0i128..1_000_000 * USD,
            )
        })
        .prop_map(|(markets, deposits, isolated, trades, path, config, fund, vault)| Scenario {
            markets,
            deposits,
            isolated,
            trades,
            path,
            config,
            fund,
            vault,
        })
}

proptest! {
    /// Zero-sum after every trade and every step, on random accounts, price paths with crashes
    /// and squeezes, and random mechanism choices.
    #[test]
    fn the_venue_is_zero_sum_after_every_step(sc in scenario()) {
        let markets = sc
            .markets
            .iter()
            .map(|&(p, depth, mmr, secs)| {
                let tiers = if mmr == 0 { MarginTiers::binance_btc_2022(USD) } else { MarginTiers::flat(mmr) };
                let mut params = btc(tiers, depth);
                params.funding.interval_secs = secs;
                params.mark_ema_ppm = 300_000;
                (params, p)
            })
            .collect();
        let mut v = PerpVenue::new(markets, sc.fund, sc.vault, sc.config.clone()).unwrap();
        let mut ids: Vec<usize> = sc.deposits.iter().map(|&d| v.open_account(d)).collect();
        for &(owner, m, amount) in &sc.isolated {
            // Refused when the owner cannot afford it (then nothing changed).
            if let Ok(i) = v.open_isolated(ids[owner], m, amount) {
                ids.push(i);
            }
        }
        for &(b, s, m, lots, fee) in &sc.trades {
            let (b, s) = (ids[b % ids.len()], ids[s % ids.len()]);
            if b != s {
                let price = v.markets[m].mark;
                match v.trade(b, s, m, lots, price, fee) {
                    Ok(()) | Err(PerpError::IsolatedMarket { .. }) => {}
                    Err(e) => prop_assert!(false, "{}", e),
                }
                prop_assert!(v.check_conservation().is_ok(), "{:?}", v.check_conservation());
            }
        }
        let mut prices: Vec<i128> = v.markets.iter().map(|m| m.oracle).collect();
        for (dt, moves) in &sc.path {
            for (p, mv) in prices.iter_mut().zip(moves) {
                *p = (*p + *p * mv / PPM).max(1);
            }
            v.step(*dt, &prices).unwrap();
            let z = v.check_conservation();
            prop_assert!(z.is_ok(), "{:?}", z);
            // A resolved bankruptcy leaves no position, and no debt unless recorded as bad debt.
            for e in &v.events {
                let resolved = match *e {
                    PerpEvent::Backstop { account, .. } => account,
                    PerpEvent::Adl { bankrupt, haircut, .. } => {
                        prop_assert!(haircut >= 0);
                        bankrupt
                    }
                    _ => continue,
                };
                let a = &v.accounts[resolved];
                prop_assert!(!a.has_position(), "{:?}", v.events);
                let bad = v.events.iter().any(|e| matches!(*e, PerpEvent::BadDebt { account, .. } if account == resolved));
                prop_assert!(a.quote >= 0 || bad, "{:?} {:?}", a, v.events);
            }
        }
    }
}

/// The venue of a random scenario after its accounts and trades, checking every account each
/// step or only those its margin watch names.
fn venue_of(sc: &Scenario, check_every_account: bool) -> PerpVenue {
    let markets = sc
        .markets
        .iter()
        .map(|&(p, depth, mmr, secs)| {
            let tiers = if mmr == 0 { MarginTiers::binance_btc_2022(USD) } else { MarginTiers::flat(mmr) };
            let mut params = btc(tiers, depth);
            params.funding.interval_secs = secs;
            params.mark_ema_ppm = 300_000;
            (params, p)
        })
        .collect();
    let mut v = PerpVenue::new(markets, sc.fund, sc.vault, sc.config.clone()).unwrap();
    v.check_every_account = check_every_account;
    let mut ids: Vec<usize> = sc.deposits.iter().map(|&d| v.open_account(d)).collect();
    for &(owner, m, amount) in &sc.isolated {
        if let Ok(i) = v.open_isolated(ids[owner], m, amount) {
            ids.push(i);
        }
    }
    for &(b, s, m, lots, fee) in &sc.trades {
        let (b, s) = (ids[b % ids.len()], ids[s % ids.len()]);
        if b != s {
            let price = v.markets[m].mark;
            let _ = v.trade(b, s, m, lots, price, fee);
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The margin watch skips only accounts that cannot be under maintenance: a venue that
    /// checks the accounts it names does exactly what one checking every account does, event
    /// for event and quantum for quantum, after every step.
    #[test]
    fn the_margin_watch_changes_nothing(sc in scenario()) {
        let mut watched = venue_of(&sc, false);
        let mut every = venue_of(&sc, true);
        let mut prices: Vec<i128> = watched.markets.iter().map(|m| m.oracle).collect();
        for (dt, moves) in &sc.path {
            for (p, mv) in prices.iter_mut().zip(moves) {
                *p = (*p + *p * mv / PPM).max(1);
            }
            watched.step(*dt, &prices).unwrap();
            every.step(*dt, &prices).unwrap();
            prop_assert_eq!(&watched.events, &every.events);
            prop_assert_eq!(format!("{:?}", watched.accounts), format!("{:?}", every.accounts));
            prop_assert_eq!((watched.fund, &watched.ledger), (every.fund, &every.ledger));
        }
    }
}
