//! The keeper's reduce-only orders, sized by the host's dispatcher and executed by the venue.

use std::collections::VecDeque;

use liqscan_host::dispatch::sizing::BPS;
use liqscan_host::dispatch::{
    DispatchConfig, Dispatcher, Executor, Mechanism, Reduce, ScanBatch, SubmitError, size_reduce,
};
use proptest::prelude::*;

use super::*;
use crate::perp::{FundingParams, MarginTiers, MarketParams, PartialConfig, QUANTA_PER_UNIT};
use crate::venue::DepthModel;

const USD: i128 = QUANTA_PER_UNIT;

/// Orders wait here until the test hands them to the venue.
#[derive(Default)]
struct Inbox {
    orders: VecDeque<LiquidationOrder>,
    done: Vec<Completion>,
}

impl Executor for Inbox {
    fn name(&self) -> &str {
        "perp venue"
    }
    fn submit(&mut self, o: &LiquidationOrder) -> Result<(), SubmitError> {
        self.orders.push_back(o.clone());
        Ok(())
    }
    fn poll(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.done);
    }
}

fn market(symbol: &str, tiers: MarginTiers, depth_usd_per_pct: f64) -> MarketParams {
    MarketParams {
        symbol: symbol.into(),
        tiers,
        funding: FundingParams::hyperliquid(),
        depth: DepthModel::new(depth_usd_per_pct, 30.0),
        mark_ema_ppm: 500_000,
    }
}

fn keeper_config(c: &LiquidationConfig, target: u32, slippage: u32, room: usize) -> DispatchConfig {
    DispatchConfig {
        mechanism: Mechanism::ReduceOnly,
        reduce: reduce_policy(c, target, slippage),
        max_in_flight: room,
        timeout_ns: 5_000_000_000,
        backoff_base_ns: 1_000_000_000,
        backoff_cap_ns: 4_000_000_000,
        settle_ns: 1_000_000_000,
        ..Default::default()
    }
}

/// Margin ratio check at the venue's own (tiered) requirement: `equity BPS >= T MM`.
fn meets(v: &PerpVenue, i: usize, target_bps: u32) -> bool {
    v.equity(i) * PPM * BPS >= target_bps as i128 * v.maintenance_scaled(i)
}

/// What one keeper order did.
#[derive(Debug, Default)]
struct Tally {
    orders: u64,
    filled_whole: u64,
    restored: u64,
    longs: u64,
    shorts: u64,
}

/// Steps the venue along `oracles(round)` for `rounds` rounds, the keeper ordering after each step and
/// the venue executing at once; every order whose legs all filled in full and that the venue's
/// partial fraction did not cap leaves its account flat or at the target. Returns the tally
/// and whether the keeper ran out of work (nothing in breach, nothing pending).
fn drive(
    v: &mut PerpVenue,
    d: &mut Dispatcher,
    oracles: &dyn Fn(usize) -> Vec<i128>,
    rounds: usize,
) -> (Tally, bool) {
    let mut x = Inbox::default();
    let mut prices = Vec::new();
    let mut prev: Vec<u32> = Vec::new();
    let mut tally = Tally::default();
    let uncapped = d.config().reduce.max_chunk_ppm as i128 == PPM;
    let target = d.config().reduce.target_margin_bps;
    for r in 1..=rounds {
        v.step(1, &oracles(r)).unwrap();
        keeper_prices(v, &mut prices).unwrap();
        let now = v.now * 1_000_000_000;
        let batch = ScanBatch {
            seq: v.now,
            breached: v.awaiting.iter().copied().filter(|s| prev.binary_search(s).is_err()).collect(),
            cleared: prev.iter().copied().filter(|s| v.awaiting.binary_search(s).is_err()).collect(),
            ..Default::default()
        };
        prev = v.awaiting.clone();
        d.on_scan(now, &batch, &prices, &*v, &mut x);
        d.poll(now, &prices, &*v, &mut x);
        while let Some(o) = x.orders.pop_front() {
            let i = o.slot as usize;
            let OrderKind::ReduceOnly { legs, close_all } = &o.kind else { panic!("{o:?}") };
            let before: Vec<i128> =
                legs.iter().map(|l| v.accounts[i].positions[l.market as usize - 1].size).collect();
            let c = v.execute(&o);
            tally.orders += 1;
            if let Outcome::Filled { .. } = c.outcome {
                let whole = legs.iter().zip(&before).all(|(l, &s)| {
                    let after = v.accounts[i].positions[l.market as usize - 1].size;
                    after - s == l.size.signum() * l.size.abs().min(s.abs())
                });
                for &s in &before {
                    tally.longs += (s > 0) as u64;
                    tally.shorts += (s < 0) as u64;
                }
                if whole && (uncapped || *close_all) {
                    tally.filled_whole += 1;
                    let ok = !v.accounts[i].has_position() || meets(v, i, target);
                    assert!(ok, "order {o:?} filled in full but left account {i} under its target");
                    tally.restored += 1;
                }
            }
            x.done.push(c);
        }
        v.check_conservation().unwrap();
    }
    let idle = v.awaiting.is_empty() && d.backlog() == 0 && d.in_flight() == 0;
    (tally, idle)
}

#[test]
fn a_long_and_a_short_are_reduced_back_above_maintenance() {
    // One market at 100 USD a lot, 5% flat maintenance, deep book.
    let cfg = LiquidationConfig { partial: None, backstop: false, keeper: true, ..Default::default() };
    let p0 = 100 * USD;
    let mut v =
        PerpVenue::new(vec![(market("X", MarginTiers::flat(50_000), 1e8), p0)], 0, 0, cfg.clone()).unwrap();
    let maker = v.open_account(1_000_000 * USD);
    let long = v.open_account(1_000 * USD);
    let short = v.open_account(1_000 * USD);
    v.trade(long, maker, 0, 100, p0, 0).unwrap();
    v.trade(maker, short, 0, 100, p0, 0).unwrap();
    // -5.5%: the long's equity 450 < 5% of 9 450; the short is fine. Then +11% of the start:
    // the short is under too.
    let mut d = Dispatcher::new(keeper_config(&cfg, 10_000, 50, 8));
    let (t, idle) = drive(&mut v, &mut d, &|_| vec![p0 * 945 / 1000], 5);
    assert!(idle && t.orders >= 1 && t.longs >= 1, "{t:?}");
    assert!(v.accounts[long].has_position() && !v.is_liquidatable(long), "reduced, not closed");
    assert!(v.accounts[long].positions[0].size < 100);
    let (t, idle) = drive(&mut v, &mut d, &|_| vec![p0 * 1_055 / 1000], 5);
    assert!(idle && t.shorts >= 1, "{t:?}");
    assert!(v.accounts[short].has_position() && !v.is_liquidatable(short));
    assert!(v.accounts[short].positions[0].size > -100);
    v.check_conservation().unwrap();
}

#[test]
fn the_view_is_the_venue_s_health_from_below_and_sizes_exactly() {
    // Binance brackets: a 1 M USD long (lots of 1 000 USD) sits in the 1% bracket with a
    // deduction; the chord rate is 8 700 / 1 000 000 = 0.87%.
    let cfg = LiquidationConfig { partial: None, keeper: true, ..Default::default() };
    let p0 = 1_000 * USD;
    let tiers = MarginTiers::binance_btc_2022(USD);
    let mut v = PerpVenue::new(vec![(market("BTC", tiers, 1e9), p0)], 0, 0, cfg.clone()).unwrap();
    let maker = v.open_account(10_000_000 * USD);
    let long = v.open_account(10_000 * USD);
    v.trade(long, maker, 0, 1_000, p0, 0).unwrap();
    let view = v.keeper_view(long).unwrap();
    assert_eq!(view.positions[1].asset_weight_ppm, 1_000_000 - 8_700);
    let mut prices = Vec::new();
    keeper_prices(&v, &mut prices).unwrap();
    // -0.2%: equity 8 000 < 8 700 - ... : in breach by the venue and by the view alike.
    v.step(1, &[p0 * 998 / 1000]).unwrap();
    assert_eq!(v.awaiting, vec![long as u32]);
    keeper_prices(&v, &mut prices).unwrap();
    let view = v.keeper_view(long).unwrap();
    let policy = reduce_policy(&cfg, 10_000, 20);
    let plan = size_reduce(&view, &prices, &policy).unwrap();
    let [Reduce { market: 1, size, limit_price }] = plan.legs[..] else { panic!("{plan:?}") };
    assert!(size < 0 && limit_price < v.markets[0].mark);
    let o = LiquidationOrder {
        id: 1,
        account: long as u64,
        slot: long as u32,
        attempt: 1,
        episode: 1,
        ordinal: 1,
        kind: OrderKind::ReduceOnly { legs: plan.legs.clone(), close_all: false },
        value_at_risk: plan.notional,
        created_ns: 0,
        prebuilt: false,
    };
    let c = v.execute(&o);
    assert!(matches!(c.outcome, Outcome::Filled { .. }), "{c:?}");
    assert_eq!(v.accounts[long].positions[0].size, 1_000 + size, "filled in full");
    assert!(!v.is_liquidatable(long));
    // Sent again, the venue answers that the account is healthy.
    assert_eq!(v.execute(&o).outcome, Outcome::Rejected(RejectReason::Healthy));
    v.check_conservation().unwrap();
}

#[test]
fn orders_the_venue_cannot_take_are_refused() {
    let cfg = LiquidationConfig { keeper: true, ..Default::default() };
    let mut v = PerpVenue::new(vec![(market("X", MarginTiers::flat(50_000), 1e8), USD)], 0, 0, cfg).unwrap();
    let a = v.open_account(USD);
    let order = |slot: u32, kind: OrderKind| LiquidationOrder {
        id: 1,
        account: slot as u64,
        slot,
        attempt: 1,
        episode: 0,
        ordinal: 1,
        kind,
        value_at_risk: 0,
        created_ns: 0,
        prebuilt: false,
    };
    let reduce = |market| OrderKind::ReduceOnly {
        legs: vec![Reduce { market, size: -1, limit_price: 1 }],
        close_all: false,
    };
    assert_eq!(v.execute(&order(1, reduce(1))).outcome, Outcome::Rejected(RejectReason::UnknownAccount));
    assert_eq!(v.execute(&order(99, reduce(1))).outcome, Outcome::Rejected(RejectReason::UnknownAccount));
    assert!(matches!(
        v.execute(&order(a as u32, OrderKind::Kick)).outcome,
        Outcome::Rejected(RejectReason::Invalid(_))
    ));
    assert!(matches!(
        v.execute(&order(a as u32, reduce(2))).outcome,
        Outcome::Rejected(RejectReason::Invalid(_))
    ));
    assert_eq!(v.execute(&order(a as u32, reduce(1))).outcome, Outcome::Rejected(RejectReason::Healthy));
}

/// A random book: up to three markets (flat or Binance brackets), traders long and short in
/// one to three of them at random leverage against a well-funded maker per market.
#[derive(Debug, Clone)]
struct Book {
    markets: Vec<(i128, u32, f64)>, // (price per lot in quanta, flat rate ppm or 0 = Binance, depth)
    traders: Vec<(f64, Vec<(usize, i128)>)>, // (leverage, [(market, signed lots)])
    moves: Vec<i128>,               // per market, ppm of the price, reached linearly
    ramp: usize,                    // over this many seconds
    partial: Option<u32>,
    backstop: bool,
    fee_ppm: u32,
    target: u32,
    slippage: u32,
    room: usize,
}

fn book() -> impl Strategy<Value = Book> {
    (1usize..4).prop_flat_map(|n| {
        let market = (1i128..2_000, prop_oneof![Just(0u32), 5_000u32..150_000], 2e6f64..1e8);
        let position = (0..n, prop_oneof![-3_000i128..-1, 1i128..3_000]);
        let trader = (1.0f64..60.0, prop::collection::vec(position, 1..4));
        (
            prop::collection::vec(market, n),
            prop::collection::vec(trader, 1..30),
            prop::collection::vec(-300_000i128..300_000, n),
            20usize..300,
            prop::option::of(50_000u32..1_000_000),
            any::<bool>(),
            prop_oneof![Just(0u32), 0u32..5_000],
            10_000u32..12_000,
            20u32..300,
            1usize..16,
        )
            .prop_map(
                |(markets, traders, moves, ramp, partial, backstop, fee_ppm, target, slippage, room)| Book {
                    markets: markets.into_iter().map(|(usd, r, d)| (usd * USD / 10, r, d)).collect(),
                    traders,
                    moves,
                    ramp,
                    partial,
                    backstop,
                    fee_ppm,
                    target,
                    slippage,
                    room,
                },
            )
    })
}

fn build(b: &Book) -> (PerpVenue, LiquidationConfig) {
    let cfg = LiquidationConfig {
        partial: b.partial.map(|chunk_ppm| PartialConfig {
            chunk_ppm,
            cooldown_secs: 0,
            min_notional: 100 * USD,
            then_whole: false,
        }),
        backstop: b.backstop,
        fee_ppm: b.fee_ppm,
        keeper: true,
        ..Default::default()
    };
    let markets = b
        .markets
        .iter()
        .enumerate()
        .map(|(k, &(p, r, depth))| {
            let tiers = if r == 0 { MarginTiers::binance_btc_2022(USD) } else { MarginTiers::flat(r) };
            (market(&format!("M{k}"), tiers, depth), p)
        })
        .collect();
    let mut v = PerpVenue::new(markets, 1_000 * USD, 1_000_000 * USD, cfg.clone()).unwrap();
    let makers: Vec<usize> = (0..b.markets.len()).map(|_| v.open_account(1_000_000_000 * USD)).collect();
    for (lev, legs) in &b.traders {
        let mut seen = Vec::new();
        let legs: Vec<_> = legs
            .iter()
            .filter(|(k, _)| {
                !seen.contains(k) && {
                    seen.push(*k);
                    true
                }
            })
            .collect();
        let notional: i128 = legs.iter().map(|&&(k, s)| s.abs() * b.markets[k].0).sum();
        let mm: i128 = legs
            .iter()
            .map(|&&(k, s)| v.markets[k].params.tiers.maintenance_scaled(s.abs() * b.markets[k].0))
            .sum();
        let margin = ((notional as f64 / lev) as i128).max(mm / PPM + 1);
        let t = v.open_account(margin);
        for &&(k, s) in &legs {
            let (buyer, seller) = if s > 0 { (t, makers[k]) } else { (makers[k], t) };
            v.trade(buyer, seller, k, s.abs(), b.markets[k].0, 0).unwrap();
        }
    }
    (v, cfg)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// On random books, longs and shorts, the keeper's reduce-only orders executed by the
    /// venue: every order filled in full (and not capped by the venue's partial fraction)
    /// leaves its account flat or at the target margin; after the keeper runs out of work every
    /// trader is flat or above maintenance; the venue stays zero-sum after every step.
    #[test]
    fn keeper_orders_bring_accounts_back_above_maintenance_or_close_them(b in book()) {
        let (mut v, cfg) = build(&b);
        let mut d = Dispatcher::new(keeper_config(&cfg, b.target, b.slippage, b.room));
        let oracles = |r: usize| -> Vec<i128> {
            let f = r.min(b.ramp) as i128;
            b.markets.iter().zip(&b.moves).map(|(m, mv)| (m.0 * (PPM + mv * f / b.ramp as i128) / PPM).max(1)).collect()
        };
        let (t, idle) = drive(&mut v, &mut d, &oracles, 900);
        prop_assert!(idle, "the keeper still had work after 900 s: {t:?}, backlog {}", d.backlog());
        for i in 2..v.accounts.len() {
            let ok = !v.accounts[i].has_position() || !v.is_liquidatable(i);
            prop_assert!(ok, "account {i} left in breach: equity {} MM {} positions {:?} config {:?}", v.equity(i), v.maintenance_scaled(i) / PPM, v.accounts[i].positions, v.config);
        }
        prop_assert_eq!(t.restored, t.filled_whole);
    }
}
