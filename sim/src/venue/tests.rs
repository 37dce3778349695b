//! Venue tests: exact arithmetic of each mechanism, and the conservation property on random
//! sequences of prices, orders, auctions and account activity.

use super::*;
use crate::venue::auction::MarketView;
use liqscan_hdl::abi::QuotedPrice;
use liqscan_host::dispatch::sizing::{SizingPolicy, size};
use proptest::prelude::*;

// Assets: 0 = ETH (quantum 1e-4), 1 = BTC (1e-6), 2 = USDC (1e-2, the quote). Value 1e-8 USD.
fn venue(mech: MechanismKind, fund_usd: i128) -> Venue {
    let depth = |d| DepthModel::new(d, 300.0);
    let assets = vec![
        VenueAsset { symbol: "ETH".into(), weights: vec![(825_000, 1_000_000)], depth: depth(1e6) },
        VenueAsset { symbol: "BTC".into(), weights: vec![(700_000, 1_000_000)], depth: depth(2e6) },
        VenueAsset {
            symbol: "USDC".into(),
            weights: vec![(1_000_000, 1_000_000)],
            depth: DepthModel::new(f64::INFINITY, 0.0),
        },
    ];
    let rules = LiquidationRules { mechanism: mech, ..Default::default() };
    let mut v = Venue::new(assets, 2, rules, fund_usd * 100, 1e8);
    set_price(&mut v, 0, 2000.0);
    set_price(&mut v, 1, 60000.0);
    set_price(&mut v, 2, 1.0);
    v
}

/// Price in USD -> value quanta per asset quantum.
fn set_price(v: &mut Venue, asset: usize, usd: f64) {
    let q_exp = [-4, -6, -2][asset];
    let p = (usd * 10f64.powi(8 + q_exp)).round().max(1.0) as u32;
    let q = QuotedPrice { asset: p, liability: p };
    v.prices[asset] = PriceEntry { spot: q, stressed: q };
}

fn market(v: &Venue) -> MarketView {
    let q = v.prices[2].spot.liability as f64;
    MarketView {
        quanta_price: v.prices.iter().map(|p| p.spot.asset as f64 / q).collect(),
        usd_per_quantum: v.prices.iter().map(|p| p.spot.asset as f64 / 1e8).collect(),
    }
}

fn order(v: &Venue, slot: u32, id: u64) -> Option<LiquidationOrder> {
    let policy = SizingPolicy { dust_value: 10 * 100_000_000, ..Default::default() };
    let view = v.view(slot)?;
    let plan = size(&view, &v.prices, &policy)?;
    let kind = match v.rules.mechanism {
        MechanismKind::Direct => OrderKind::Direct { legs: plan.legs, close_all: plan.close_all },
        _ => OrderKind::Kick,
    };
    Some(LiquidationOrder {
        id,
        account: view.account,
        slot,
        attempt: 1,
        episode: 0,
        ordinal: 1,
        kind,
        value_at_risk: plan.debt_value,
        created_ns: 0,
        prebuilt: false,
    })
}

#[test]
fn direct_liquidation_pays_bonus_and_fund_share_exactly() {
    let mut v = venue(MechanismKind::Direct, 1_000);
    // 10 ETH, 15,000 USDC debt: HF 16500/15000. At 1800: 14850/15000 = 0.99 -> breached.
    let s = v.open(0, vec![100_000, 0, -1_500_000], true);
    v.open(0, vec![0, 0, 10_000_000], true); // a lender
    assert!(v.health(s) > 0);
    set_price(&mut v, 0, 1800.0);
    assert!(v.health(s) < 0);
    let o = order(&v, s, 1).unwrap();
    let c = v.execute(&o, 0.0);
    let Outcome::Filled { repaid_value, seized_value } = c.outcome else { panic!("{c:?}") };
    // Close factor 50%: repays at most 7,500; sizing asks for what restores HF 1.05.
    let repaid = v.ledger.assets[2].liq_repaid;
    assert!(repaid > 0 && repaid <= 750_000);
    assert_eq!(repaid_value, repaid * 1_000_000);
    // Seized = repaid * 1.05 / 1800 in ETH quanta (1e-4), floored; fund gets 10% of the bonus.
    let seized = v.ledger.assets[0].seized_keeper + v.ledger.assets[0].seized_fund;
    assert_eq!(seized, repaid * 1_000_000 * 10_500 / (10_000 * 18_000_000));
    assert_eq!(seized_value, seized * 18_000_000);
    let bonus = seized - repaid * 1_000_000 / 18_000_000;
    assert_eq!(v.ledger.assets[0].seized_fund, bonus * 1_000 / 10_000);
    assert!(v.health(s) >= 0, "partial liquidation restored the account");
    assert!(!v.accounts[s as usize].closed_out && v.accounts[s as usize].liquidated == 1);
    v.check_conservation().unwrap();
    // A second order is refused: healthy now.
    let o2 = LiquidationOrder { id: 2, ..o };
    assert_eq!(v.execute(&o2, 0.0).outcome, Outcome::Rejected(RejectReason::Healthy));
}

#[test]
fn underwater_account_goes_to_fund_then_lenders() {
    let mut v = venue(MechanismKind::Direct, 100);
    let s = v.open(0, vec![100_000, 0, -1_500_000], true);
    let l1 = v.open(0, vec![0, 0, 3_000_000], true);
    let l2 = v.open(0, vec![0, 0, 1_000_000], true);
    // ETH 1000: collateral 10,000 against 15,000 debt. Close all: seize everything.
    set_price(&mut v, 0, 1000.0);
    let o = order(&v, s, 1).unwrap();
    assert!(matches!(o.kind, OrderKind::Direct { close_all: true, .. }));
    assert!(matches!(v.execute(&o, 0.0).outcome, Outcome::Filled { .. }));
    assert_eq!(v.accounts[s as usize].bal, vec![0, 0, 0]);
    assert!(v.accounts[s as usize].closed_out, "a full close-out is not a partial liquidation");
    v.check_conservation().unwrap();
    v.settle_socialised();
    let f = &v.ledger.assets[2];
    // Repaid 10,000 / 1.05 = 9523.80; the rest is bad debt: the fund empties, the rest is socialised.
    assert_eq!(f.liq_repaid, 952_380);
    // The fund held 100 plus its share of the bonus on this very liquidation.
    assert!(v.ledger.fund_income > 0);
    assert_eq!(f.absorbed, 10_000 + v.ledger.fund_income);
    assert_eq!(f.socialised, 1_500_000 - 952_380 - f.absorbed);
    assert_eq!(v.fund, 0);
    // Lenders lose pro rata 3:1, to the cent, summing exactly.
    let cut1 = 3_000_000 - v.accounts[l1 as usize].bal[2];
    let cut2 = 1_000_000 - v.accounts[l2 as usize].bal[2];
    assert_eq!(cut1 + cut2, f.socialised);
    assert!((cut1 - 3 * cut2).abs() <= 3);
    v.check_conservation().unwrap();
    assert_eq!(v.unresolved_bad_debt(), 0);
}

#[test]
fn dutch_auction_decays_until_bidders_take_and_returns_leftover() {
    let mut v = venue(MechanismKind::Dutch, 10_000);
    let s = v.open(0, vec![100_000, 0, -1_500_000], true);
    set_price(&mut v, 0, 1800.0);
    let o = order(&v, s, 1).unwrap();
    assert!(matches!(v.execute(&o, 0.0).outcome, Outcome::Filled { .. }));
    assert_eq!(v.auctions.len(), 1);
    assert_eq!(v.accounts[s as usize].bal, vec![0, 0, 0]);
    assert_eq!(
        v.execute(&LiquidationOrder { id: 2, ..o }, 1.0).outcome,
        Outcome::Rejected(RejectReason::InProgress)
    );
    let m = market(&v);
    let mut last = 0.0;
    let mut t = 0.0;
    while !v.auctions.is_empty() && t < 20_000.0 {
        t += 1.0;
        v.step_auctions(t, &m, &mut last);
        v.check_conservation().unwrap();
    }
    assert!(v.auctions.is_empty());
    // Price starts at 1.2 x oracle and must fall below 0.98 x market: 21 steps of 1% -> 90 s each.
    assert!(t >= 21.0 * 90.0, "no take before the price fell under the bidders' limit, t={t}");
    let f = &v.ledger.assets[2];
    assert_eq!(f.liq_repaid, 1_500_000);
    assert_eq!(v.ledger.fund_income, 1_500_000 * 1_300 / 10_000);
    assert!(v.accounts[s as usize].bal[0] > 0, "leftover collateral returned");
    assert!(!v.accounts[s as usize].kicked);
    assert!(v.ledger.incentives > 0);
}

#[test]
fn an_account_at_auction_cannot_close_until_its_lots_come_back() {
    // Closing it would free the slot for a new account, and the leftover lot the auction
    // returns would have nowhere to go (found by bad_debt_is_conserved).
    let mut v = venue(MechanismKind::Dutch, 10_000);
    let s = v.open(0, vec![100_000, 0, -1_500_000], true);
    set_price(&mut v, 0, 1800.0);
    let o = order(&v, s, 1).unwrap();
    assert!(matches!(v.execute(&o, 0.0).outcome, Outcome::Filled { .. }));
    assert!(v.accounts[s as usize].kicked);
    assert!(!v.close(s), "closed while its collateral is at auction");
    let m = market(&v);
    let (mut t, mut last) = (0.0, 0.0);
    while !v.auctions.is_empty() && t < 20_000.0 {
        t += 60.0;
        v.step_auctions(t, &m, &mut last);
    }
    assert!(v.auctions.is_empty());
    assert!(v.accounts[s as usize].bal[0] > 0, "the leftover lot came back");
    assert!(v.close(s));
    v.check_conservation().unwrap();
}

#[test]
fn batch_auction_clears_at_one_price_within_reserve() {
    let mut v = venue(MechanismKind::Batch, 10_000);
    let a = v.open(0, vec![100_000, 0, -1_500_000], true);
    let b = v.open(0, vec![200_000, 0, -3_000_000], true);
    set_price(&mut v, 0, 1800.0);
    for (i, s) in [a, b].into_iter().enumerate() {
        let o = order(&v, s, i as u64 + 1).unwrap();
        assert!(matches!(v.execute(&o, 0.0).outcome, Outcome::Filled { .. }));
    }
    let m = market(&v);
    let mut last = 0.0;
    v.step_auctions(30.0, &m, &mut last);
    assert_eq!(v.stats.clearings, 0, "window not closed");
    v.step_auctions(60.0, &m, &mut last);
    assert_eq!(v.stats.clearings, 1);
    // One price: proceeds per ETH quantum equal for both lots (up to flooring).
    let sold = v.ledger.assets[0].sold_in_auction;
    let paid = v.ledger.assets[2].liq_repaid + v.ledger.fund_income;
    let price = paid as f64 / sold as f64;
    assert!((18.0 * 0.8 - 1e-9..=18.0).contains(&price), "{price} quote quanta per quantum");
    v.check_conservation().unwrap();
}

#[derive(Clone, Debug)]
enum Op {
    Price(usize, f64),
    Liquidate(usize),
    Step(f64),
    Deposit(usize, i128),
    Borrow(usize, i128),
    Close(usize),
    Open(i128, i128, i128),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 0.3f64..1.3).prop_map(|(a, f)| Op::Price(a, f)),
        4 => (0..40usize).prop_map(Op::Liquidate),
        2 => (1.0f64..400.0).prop_map(Op::Step),
        1 => (0..40usize, 1..100_000i128).prop_map(|(s, x)| Op::Deposit(s, x)),
        1 => (0..40usize, 1..1_000_000i128).prop_map(|(s, x)| Op::Borrow(s, x)),
        1 => (0..40usize).prop_map(Op::Close),
        1 => (0..300_000i128, 0..3_000_000i128, 1..50_000_000i128).prop_map(|(e, b, d)| Op::Open(e, b, d)),
    ]
}

fn mech() -> impl Strategy<Value = MechanismKind> {
    prop_oneof![Just(MechanismKind::Direct), Just(MechanismKind::Dutch), Just(MechanismKind::Batch)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every unit of debt ends repaid, absorbed by the fund, socialised, or still owed by an
    /// account that holds collateral (or sits in an auction), on random books and paths.
    #[test]
    fn bad_debt_is_conserved(
        m in mech(),
        fund in 0..50_000i128,
        accounts in prop::collection::vec((0..300_000i128, 0..3_000_000i128, 0.2f64..0.95), 1..25),
        lenders in prop::collection::vec(0..5_000_000i128, 0..4),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let mut v = venue(m, fund);
        for (eth, btc, ltv) in accounts {
            let value = eth as f64 * 0.2 + btc as f64 * 0.6; // USD
            let debt = ((value * ltv * 0.8) * 100.0) as i128;
            if debt > 0 {
                v.open(0, vec![eth, btc, -debt], true);
            }
        }
        for l in lenders {
            v.open(0, vec![0, 0, l + 1], true);
        }
        let mut prices = [2000.0, 60000.0];
        let (mut t, mut last, mut id) = (0.0, 0.0, 0);
        for o in ops {
            match o {
                Op::Price(a, f) => {
                    prices[a] = (prices[a] * f).clamp(1.0, 400_000.0);
                    set_price(&mut v, a, prices[a]);
                }
                Op::Liquidate(s) => {
                    if s < v.accounts.len() {
                        id += 1;
                        if let Some(o) = order(&v, s as u32, id) {
                            let c = v.execute(&o, t);
                            prop_assert_eq!(c.id, id);
                        }
                    }
                }
                Op::Step(dt) => {
                    t += dt;
                    v.settle_socialised();
                    let mk = market(&v);
                    v.step_auctions(t, &mk, &mut last);
                }
                Op::Deposit(s, x) => if s < v.accounts.len() { v.deposit(s as u32, 0, x) },
                Op::Borrow(s, x) => if s < v.accounts.len() { v.borrow(s as u32, x, 11_000); },
                Op::Close(s) => if s < v.accounts.len() { v.close(s as u32); },
                Op::Open(e, b, d) => if e + b > 0 { v.open(0, vec![e, b, -d], false); },
            }
            if let Err(e) = v.check_conservation() {
                return Err(TestCaseError::fail(e.to_string()));
            }
            prop_assert!(v.fund >= 0);
            prop_assert_eq!(v.unresolved_bad_debt(), 0);
        }
        // Drain auctions at a price far under the lots' value so every one ends.
        let mk = market(&v);
        for _ in 0..2_000 {
            if v.auctions.is_empty() { break; }
            t += 600.0;
            v.step_auctions(t, &mk, &mut last);
        }
        v.settle_socialised();
        v.check_conservation().map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(v.ledger.pending_socialised, 0);
        let q = &v.ledger.assets[2];
        let owed: i128 = v.accounts.iter().map(|a| (-a.bal[2]).max(0)).sum::<i128>()
            + v.auctions.iter().map(|a| a.debt).sum::<i128>();
        prop_assert_eq!(
            q.initial_neg + q.borrowed,
            owed + q.user_repaid + q.liq_repaid + q.absorbed + q.socialised
        );
    }
}
