//! Sizing a perpetual liquidation: reduce-only orders that bring an account back to its
//! maintenance requirement, in exact integers.
//!
//! A perpetual account maps onto the one risk formula (docs/RISK_MODEL.md) as a quote balance
//! `q` (the policy's `quote_asset`, weights 1) and signed sizes `s` in markets whose weights are
//! `1 - m` long and `1 + m` short, `m` the maintenance rate. With prices `p` (value quanta per
//! lot), everything scaled by 10^6 so nothing is rounded:
//!
//! ```text
//!   equity E = q + sum s p            maintenance MM = sum |s| p m        health = E - MM
//! ```
//!
//! Closing `r` lots of position `k` at its limit price moves equity by `-r slip_k` (`slip_k` the
//! distance from the price to the limit, what the keeper is ready to give up to the book) less
//! the venue's liquidation fee (at most `r x_k f`, `x_k` the worse of price and limit, `f` the fee
//! rate), and the requirement by `-r p_k m_k`. Against a target `T` (basis points of the requirement,
//! 10 000 = exactly maintenance) the margin condition `E BPS >= T MM` is restored when
//!
//! ```text
//!   sum r_k g_k >= T MM - BPS E,      g_k = T p_k m_k - BPS (10^6 slip_k + x_k f)   (gain per lot)
//! ```
//!
//! The rules:
//! - positions are reduced in order of maintenance rate, highest first (each dollar closed frees
//!   the most margin), then larger notional, then market index; each takes the least whole
//!   number of lots that covers what is still needed, `ceil(need / g_k)`;
//! - at most `max_chunk_ppm` of a position per order (the venue's partial-liquidation fraction),
//!   except positions at or under `dust_notional`, which go whole;
//! - the whole account is closed (`close_all`) when its margin ratio is under
//!   `full_close_margin_bps`, or when closing every position with `g_k > 0` whole could still not
//!   restore it (slippage eats what the margin frees: no partial order can help);
//! - every leg carries a limit price, `p (1 - slippage)` rounded down for a sell and
//!   `p (1 + slippage)` rounded up for a buy: the venue never fills it worse, so a leg filled
//!   in full moves the account exactly as sized or better.
//!
//! The maintenance rate is the view's weight, so the linear model is exact for one bracket. With
//! brackets (maintenance growing with notional, convex) the source should give the rate of the
//! chord `MM(n) / n` rounded up: the chord lies above the bracket curve below the current
//! notional, so an order that restores the chord's requirement restores the venue's.

use liqscan_hdl::abi::PriceEntry;
use serde::{Deserialize, Serialize};

use super::order::Reduce;
use super::sizing::{AccountView, BPS, KeyTerms, PPM, RankKey, asset_bit};

/// The venue's rules for reduce-only liquidation orders, as the keeper applies them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReducePolicy {
    /// Asset index of the quote balance (every other asset is a perpetual market).
    pub quote_asset: u16,
    /// Margin ratio (equity over maintenance) the order aims to restore, basis points;
    /// 10 000 restores exactly the maintenance requirement.
    pub target_margin_bps: u32,
    /// How far from the price the limit is set, basis points: the worst fill the sizing
    /// assumes.
    pub slippage_bps: u32,
    /// Largest share of one position one order may close, ppm (the venue's partial
    /// fraction; 1 000 000: whole positions allowed).
    pub max_chunk_ppm: u32,
    /// Under this margin ratio (basis points) the whole account is closed; 0: never.
    pub full_close_margin_bps: u32,
    /// Positions at or under this notional (value quanta) are closed whole.
    pub dust_notional: i128,
    /// The venue's liquidation fee, ppm of the notional closed (paid out of the equity).
    pub fee_ppm: u32,
}

impl Default for ReducePolicy {
    fn default() -> Self {
        ReducePolicy {
            quote_asset: 0,
            target_margin_bps: 10_500,
            slippage_bps: 50,
            max_chunk_ppm: PPM as u32,
            full_close_margin_bps: 0,
            dust_notional: 0,
            fee_ppm: 0,
        }
    }
}

/// A sized reduce-only liquidation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReducePlan {
    /// One leg per position reduced, in the order they were chosen.
    pub legs: Vec<Reduce>,
    /// True when every position is closed whole.
    pub close_all: bool,
    /// Notional of all the account's positions, value quanta (the priority key).
    pub notional: i128,
    /// Margin ratio before, basis points (`i128::MAX` with no requirement).
    pub margin_bps: i128,
}

/// One perpetual position as the sizing sees it.
#[derive(Clone, Copy, Debug)]
struct Leg {
    market: u16,
    size: i128,
    price: i128,
    /// Maintenance rate, ppm.
    m: i128,
}

/// Equity and requirement (both scaled by 10^6) and the total notional, from `view` at
/// `prices`; the perpetual positions go to `legs` if given.
fn measure(
    view: &AccountView,
    prices: &[PriceEntry],
    policy: &ReducePolicy,
    mut legs: Option<&mut Vec<Leg>>,
) -> (i128, i128, i128) {
    let (mut equity, mut mm, mut notional) = (0i128, 0i128, 0i128);
    for p in view.positions.iter() {
        let q = prices[p.asset as usize].spot;
        let price = if p.amount < 0 { q.liability } else { q.asset } as i128;
        equity += p.amount * price * PPM;
        if p.asset == policy.quote_asset || p.amount == 0 {
            continue;
        }
        // The side's weight is 1 -+ m; a weight on the wrong side of 1 frees nothing.
        let m = if p.amount > 0 {
            PPM - p.asset_weight_ppm as i128
        } else {
            p.liability_weight_ppm as i128 - PPM
        }
        .max(0);
        let n = p.amount.abs() * price;
        mm += n * m;
        notional += n;
        if let Some(l) = legs.as_deref_mut() {
            l.push(Leg { market: p.asset, size: p.amount, price, m });
        }
    }
    (equity, mm, notional)
}

/// The limit price of a leg reducing a position of `size` at `price`: a sell (reducing a long)
/// at `price (1 - slippage)` rounded down, a buy at `price (1 + slippage)` rounded up.
pub fn limit_price(size: i128, price: i128, slippage_bps: u32) -> i128 {
    let s = slippage_bps as i128;
    if size > 0 {
        (price * (BPS - s)).div_euclid(BPS).max(0)
    } else {
        (price * (BPS + s) + BPS - 1).div_euclid(BPS)
    }
}

/// The ranking key of `view` at `prices` for reduce-only orders: its notional (the
/// [`ReducePlan::notional`] of every plan [`size_reduce`] makes), moved by the prices of the
/// markets it holds positions in. `None` when it holds no perpetual position, so that
/// [`size_reduce`] sizes it at no prices; its margin at the prices of the day is
/// [`size_reduce`]'s to judge when its turn comes.
pub fn rank_key_reduce(view: &AccountView, prices: &[PriceEntry], policy: &ReducePolicy) -> Option<RankKey> {
    let (_, _, value) = measure(view, prices, policy, None);
    let (mut moves, mut terms) = (0u64, KeyTerms::new());
    for p in view.positions.iter().filter(|p| p.asset != policy.quote_asset && p.amount != 0) {
        moves |= asset_bit(p.asset);
        terms.add(p.asset, p.amount);
    }
    (moves != 0).then_some(RankKey { value, moves, terms })
}

/// Sizes reduce-only orders for `view` at `prices`; `None` when it holds no perpetual position
/// or meets its maintenance requirement (exact health `E - MM >= 0`).
pub fn size_reduce(view: &AccountView, prices: &[PriceEntry], policy: &ReducePolicy) -> Option<ReducePlan> {
    let mut legs = Vec::new();
    let (equity, mm, notional) = measure(view, prices, policy, Some(&mut legs));
    if legs.is_empty() || equity >= mm {
        return None;
    }
    let t = policy.target_margin_bps as i128;
    let margin_bps = if mm > 0 { equity * BPS / mm } else { i128::MAX };
    let f = policy.fee_ppm as i128;
    let gain = |l: &Leg| {
        let limit = limit_price(l.size, l.price, policy.slippage_bps);
        t * l.price * l.m - BPS * (PPM * (limit - l.price).abs() + limit.max(l.price) * f)
    };
    legs.sort_by(|a, b| {
        b.m.cmp(&a.m)
            .then((b.size.abs() * b.price).cmp(&(a.size.abs() * a.price)))
            .then(a.market.cmp(&b.market))
    });
    let need = t * mm - BPS * equity;
    let reachable: i128 = legs.iter().map(|l| l.size.abs() * gain(l).max(0)).sum();
    let close_all = margin_bps < policy.full_close_margin_bps as i128 || reachable < need;
    let order_leg = |l: &Leg, lots: i128| Reduce {
        market: l.market,
        size: -l.size.signum() * lots,
        limit_price: limit_price(l.size, l.price, policy.slippage_bps),
    };
    if close_all {
        let legs = legs.iter().map(|l| order_leg(l, l.size.abs())).collect();
        return Some(ReducePlan { legs, close_all, notional, margin_bps });
    }
    let mut left = need;
    let mut out = Vec::new();
    for l in &legs {
        if left <= 0 {
            break;
        }
        let g = gain(l);
        if g <= 0 {
            continue;
        }
        let whole = l.size.abs();
        let cap = if whole * l.price <= policy.dust_notional {
            whole
        } else {
            // At least one lot: an order that closes nothing would never end the breach.
            (whole * policy.max_chunk_ppm as i128 / PPM).max(1)
        };
        let lots = ((left + g - 1) / g).min(cap);
        out.push(order_leg(l, lots));
        left -= lots * g;
    }
    Some(ReducePlan { legs: out, close_all, notional, margin_bps })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::sizing::Position;
    use liqscan_hdl::abi::QuotedPrice;

    fn px(p: u32) -> PriceEntry {
        let q = QuotedPrice { asset: p, liability: p };
        PriceEntry { spot: q, stressed: q }
    }

    fn quote(amount: i128) -> Position {
        Position { asset: 0, amount, asset_weight_ppm: 1_000_000, liability_weight_ppm: 1_000_000 }
    }

    /// A position of `size` lots in `market` with maintenance rate `m` ppm.
    fn perp(market: u16, size: i128, m: u32) -> Position {
        Position {
            asset: market,
            amount: size,
            asset_weight_ppm: 1_000_000 - m,
            liability_weight_ppm: 1_000_000 + m,
        }
    }

    fn view(positions: Vec<Position>) -> AccountView<'static> {
        AccountView { account: 9, slot: 4, positions: positions.into() }
    }

    #[test]
    fn a_long_is_sold_down_to_the_target_exactly() {
        // 100 lots at 1 000 bought with 95 000 borrowed: cash -95 000. Price 1 000, m = 10%:
        // E = 5 000, MM = 10 000. No slippage, target 1.0: r * 1 000 * 0.1 >= 5 000: r = 50.
        let v = view(vec![quote(-95_000), perp(1, 100, 100_000)]);
        let prices = [px(1), px(1_000)];
        let policy = ReducePolicy { target_margin_bps: 10_000, slippage_bps: 0, ..Default::default() };
        let plan = size_reduce(&v, &prices, &policy).unwrap();
        assert!(!plan.close_all);
        assert_eq!(plan.legs, vec![Reduce { market: 1, size: -50, limit_price: 1_000 }]);
        assert_eq!(plan.margin_bps, 5_000);
        assert_eq!(plan.notional, 100_000);
        // With 1% slippage each lot also costs 10 of equity: r (100 - 10) >= 5 000: r = 56.
        let policy = ReducePolicy { slippage_bps: 100, ..policy };
        let plan = size_reduce(&v, &prices, &policy).unwrap();
        assert_eq!(plan.legs, vec![Reduce { market: 1, size: -56, limit_price: 990 }]);
    }

    #[test]
    fn a_short_is_bought_back_with_the_limit_rounded_against_it() {
        // Short 30 lots at 333, cash 10 500: E = 10 500 - 9 990 = 510, MM = 9 990 * 0.1 = 999.
        let v = view(vec![quote(10_500), perp(2, -30, 100_000)]);
        let prices = [px(1), px(1), px(333)];
        let policy = ReducePolicy { target_margin_bps: 10_000, slippage_bps: 10, ..Default::default() };
        let plan = size_reduce(&v, &prices, &policy).unwrap();
        // Limit ceil(333 * 1.001) = 334: slip 1 a lot. Gain 10 000 * 333 * 100 000 - 10^10 = 323 * 10^9
        // per lot; need 10 000 * 999 * 10^6 - 10 000 * 510 * 10^6 = 4 890 * 10^9: 16 lots.
        assert_eq!(plan.legs, vec![Reduce { market: 2, size: 16, limit_price: 334 }]);
    }

    #[test]
    fn highest_rate_first_chunks_dust_and_close_all() {
        // Two longs: market 1 at 5% and market 2 at 20%; the 20% one is reduced first.
        let v = view(vec![quote(-18_900), perp(1, 100, 50_000), perp(2, 10, 200_000)]);
        let prices = [px(1), px(100), px(1_000)];
        let policy = ReducePolicy { target_margin_bps: 10_000, slippage_bps: 0, ..Default::default() };
        // E = 1 100, MM = 500 + 2 000 = 2 500: need 1 400 at 200 a lot of market 2: 7 lots.
        let plan = size_reduce(&v, &prices, &policy).unwrap();
        assert_eq!(plan.legs, vec![Reduce { market: 2, size: -7, limit_price: 1_000 }]);
        // Capped at 50% of a position per order: 5 lots of market 2 (1 000), then 80 of market 1.
        let capped = ReducePolicy { max_chunk_ppm: 500_000, ..policy };
        let plan = size_reduce(&v, &prices, &capped).unwrap();
        assert_eq!(
            plan.legs,
            vec![
                Reduce { market: 2, size: -5, limit_price: 1_000 },
                Reduce { market: 1, size: -50, limit_price: 100 }
            ]
        );
        // Market 2 is dust: whole despite the cap.
        let dust = ReducePolicy { dust_notional: 10_000, ..capped };
        let plan = size_reduce(&v, &prices, &dust).unwrap();
        assert_eq!(plan.legs, vec![Reduce { market: 2, size: -7, limit_price: 1_000 }]);
        // Under the full-close line (1 100 / 2 500 = 44%): everything.
        let full = ReducePolicy { full_close_margin_bps: 5_000, ..policy };
        let plan = size_reduce(&v, &prices, &full).unwrap();
        assert!(plan.close_all);
        assert_eq!(plan.legs.len(), 2);
        // Slippage of 20% frees nothing at market 1's 5% and all of market 2 is not enough.
        let slip = ReducePolicy { slippage_bps: 2_000, ..policy };
        let plan = size_reduce(&v, &prices, &slip).unwrap();
        assert!(plan.close_all);
    }

    #[test]
    fn healthy_or_flat_is_none() {
        let prices = [px(1), px(1_000)];
        let ok = view(vec![quote(-90_000), perp(1, 100, 100_000)]);
        assert_eq!(size_reduce(&ok, &prices, &ReducePolicy::default()), None);
        assert_eq!(rank_key_reduce(&ok, &prices, &ReducePolicy::default()).map(|k| k.moves), Some(1 << 1));
        let flat = view(vec![quote(-5)]);
        assert_eq!(size_reduce(&flat, &prices, &ReducePolicy::default()), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

        /// On random accounts (longs and shorts in up to four markets): `rank_key_reduce` keys
        /// every plan of `size_reduce` by its notional; the legs only reduce; a plan that is not capped or closing all
        /// restores the target when every leg fills at its limit, and one lot less of its last
        /// leg would not.
        #[test]
        fn sized_orders_restore_the_target_at_their_limits(
            cash in -2_000_000i128..2_000_000,
            positions in proptest::collection::vec((1u16..5, -400i128..400, 0u32..300_000), 1..5),
            prices in proptest::collection::vec(1u32..5_000, 5),
            target in 10_000u32..13_000,
            slippage in 0u32..300,
            chunk in proptest::prop_oneof![proptest::strategy::Just(1_000_000u32), 1u32..1_000_000],
            fee in proptest::prop_oneof![proptest::strategy::Just(0u32), 0u32..20_000],
        ) {
            let mut ps = vec![quote(cash)];
            for (mkt, size, m) in positions {
                if size != 0 && !ps.iter().any(|p| p.asset == mkt) {
                    ps.push(perp(mkt, size, m));
                }
            }
            let v = view(ps);
            let mut prices: Vec<PriceEntry> = prices.into_iter().map(px).collect();
            prices[0] = px(1);
            let policy = ReducePolicy {
                target_margin_bps: target,
                slippage_bps: slippage,
                max_chunk_ppm: chunk,
                fee_ppm: fee,
                ..Default::default()
            };
            let plan = size_reduce(&v, &prices, &policy);
            let key = rank_key_reduce(&v, &prices, &policy);
            proptest::prop_assert_eq!(key.is_some(), v.positions.iter().any(|p| p.asset != 0 && p.amount != 0));
            let Some(plan) = plan else { return Ok(()) };
            proptest::prop_assert_eq!(key.map(|k| k.value), Some(plan.notional));
            let key = key.expect("keyed");
            if let Some(v) = key.terms.value(&prices) {
                proptest::prop_assert_eq!(v, key.value);
            }
            // Apply the legs at their limits, each charged the fee on the worse of price and
            // limit (equity scaled by 10^6, so the fee is not rounded).
            let apply = |legs: &[Reduce]| -> Result<(i128, i128), proptest::test_runner::TestCaseError> {
                let mut after = v.clone();
                let mut fees = 0i128;
                for l in legs {
                    let pos = after.positions.to_mut().iter_mut().find(|p| p.asset == l.market).unwrap();
                    proptest::prop_assert!(l.size != 0 && l.size.signum() == -pos.amount.signum());
                    proptest::prop_assert!(l.size.abs() <= pos.amount.abs());
                    let p = prices[l.market as usize].spot.asset as i128;
                    fees += l.size.abs() * l.limit_price.max(p) * fee as i128;
                    pos.amount += l.size;
                    after.positions.to_mut()[0].amount -= l.size * l.limit_price;
                }
                let (e, mm, _) = measure(&after, &prices, &policy, None);
                Ok((e - fees, mm))
            };
            let (e, mm) = apply(&plan.legs)?;
            let capped = plan.legs.iter().any(|l| {
                let pos = v.positions.iter().find(|p| p.asset == l.market).unwrap();
                l.size.abs() == (pos.amount.abs() * chunk as i128 / PPM).max(1) && l.size.abs() < pos.amount.abs()
            });
            if plan.close_all {
                proptest::prop_assert_eq!(mm, 0, "closing all leaves no requirement");
            } else if !capped {
                proptest::prop_assert!(e * BPS >= target as i128 * mm, "target restored");
                let mut less = plan.legs.clone();
                let last = less.last_mut().unwrap();
                last.size -= last.size.signum();
                if last.size == 0 {
                    less.pop();
                }
                let (e1, mm1) = apply(&less)?;
                proptest::prop_assert!(e1 * BPS < target as i128 * mm1, "the least that restores it");
            }
        }
    }
}
