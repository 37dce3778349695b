//! Sizing a liquidation: how much debt to repay and which collateral to seize, in exact integers.
//!
//! Amounts are in asset quanta (`10^quantum_exp` whole units), prices are the datapath's spot
//! prices (value quanta per asset quantum: the `asset` price for holdings, the `liability`
//! price for debt), weights are in parts per million, so every product is an exact `i128`.
//!
//! With weighted collateral `WC = sum v_i w_i`, weighted debt `WD = sum d_j l_j` and the health
//! factor `HF = WC / WD`, repaying value `R` of a debt with liability weight `l` and seizing
//! `R (1 + b)` of a collateral with asset weight `w` moves the account to
//!
//! ```text
//!   HF' = (WC - w (1 + b) R) / (WD - l R)      so HF' >= T  iff  R >= (T WD - WC) / (T l - w (1 + b))
//! ```
//!
//! The rules, as lending venues apply them:
//! - repay the largest debt first; at most `close_factor` of it, unless the health factor is
//!   below `full_close_hf` or the account's debt is dust, when all of it may be repaid;
//! - seize collateral with the lowest asset weight first (the riskiest tier: seizing it costs
//!   the least health per unit of value), larger holdings first among equals;
//! - when `T l <= w (1 + b)` no partial repayment can restore the account, so it is closed.

use std::borrow::Cow;

use liqscan_hdl::abi::PriceEntry;

use super::order::Leg;

/// Parts per million: the unit of weights.
pub const PPM: i128 = 1_000_000;
/// Basis points: the unit of factors, bonuses and health-factor lines.
pub const BPS: i128 = 10_000;

/// One asset an account holds or owes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Asset index.
    pub asset: u16,
    /// Signed amount in asset quanta: positive held, negative owed.
    pub amount: i128,
    /// Weight of a positive amount (the account's tier), parts per million.
    pub asset_weight_ppm: u32,
    /// Weight of a negative amount, parts per million.
    pub liability_weight_ppm: u32,
}

/// What dispatch needs to know of an account to size its liquidation. The positions are
/// borrowed from a source that keeps them (the keeper's book: a view costs no allocation on
/// the dispatch thread's path) or owned by a source that builds them (the simulated venues).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AccountView<'a> {
    /// Stable account key.
    pub account: u64,
    /// Scan slot.
    pub slot: u32,
    /// Its positions.
    pub positions: Cow<'a, [Position]>,
}

/// The venue's liquidation rules, as the keeper applies them when sizing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizingPolicy {
    /// Largest share of one debt repaid by one liquidation, basis points (Aave: 5000).
    pub close_factor_bps: u32,
    /// Below this health factor (basis points) the whole debt may be repaid (Aave v3: 9500).
    pub full_close_hf_bps: u32,
    /// Debt value (value quanta) at or under which the whole debt may be repaid.
    pub dust_value: i128,
    /// Liquidation bonus on seized collateral, basis points.
    pub bonus_bps: u32,
    /// Health factor the repayment aims to restore, basis points (e.g. 10500).
    pub target_hf_bps: u32,
}

impl Default for SizingPolicy {
    fn default() -> Self {
        SizingPolicy {
            close_factor_bps: 5_000,
            full_close_hf_bps: 9_500,
            dust_value: 0,
            bonus_bps: 500,
            target_hf_bps: 10_500,
        }
    }
}

/// A sized liquidation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Legs: one per collateral seized, all against the same debt asset.
    pub legs: Vec<Leg>,
    /// True when the close factor did not apply.
    pub close_all: bool,
    /// Value of all the account's debt, value quanta (the priority key).
    pub debt_value: i128,
    /// Health factor before, basis points.
    pub hf_bps: i128,
}

/// `ceil(a / b)` for `a >= 0`, `b > 0`.
fn ceil_div(a: i128, b: i128) -> i128 {
    (a + b - 1) / b
}

/// Exact health of the account as the datapath computes it (coefficients floored).
pub fn health(view: &AccountView, prices: &[PriceEntry]) -> i128 {
    view.positions
        .iter()
        .map(|p| {
            let w = if p.amount < 0 { p.liability_weight_ppm } else { p.asset_weight_ppm } as i128;
            let c = (p.amount * w).div_euclid(PPM);
            let pr = prices[p.asset as usize].spot;
            c * if c < 0 { pr.liability } else { pr.asset } as i128
        })
        .sum()
}

/// The bit of an asset in a [`RankKey`]'s `moves`: assets past 64 share bits, which only makes
/// a price move re-key a few accounts more.
pub fn asset_bit(asset: u16) -> u64 {
    1u64 << (asset % 64)
}

/// An account's place in the dispatcher's ranking at some prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RankKey {
    /// The priority: the value at risk at those prices (larger first).
    pub value: i128,
    /// The assets whose prices move `value`, as [`asset_bit`]s: a price move of any other asset
    /// leaves the account's place as it is.
    pub moves: u64,
    /// `value` as a function of the prices, when it fits in two terms.
    pub terms: KeyTerms,
}

/// A ranking key's value at any prices without the account: `sum |amount| x price`, each
/// amount valued at its side's quote (an amount owed at the liability price). The ranking
/// re-keys an account after a price move from these, without reading the book. Holds at most
/// two terms of amounts that fit in 64 bits; `complete` is false when the key needs more.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyTerms {
    amounts: [i64; 2],
    assets: [u16; 2],
    complete: bool,
}

impl KeyTerms {
    /// No term yet: the value 0.
    pub fn new() -> KeyTerms {
        KeyTerms { complete: true, ..KeyTerms::default() }
    }

    /// Adds a term; past two, or an amount past 64 bits, the terms are no longer complete.
    pub fn add(&mut self, asset: u16, amount: i128) {
        let free = self.amounts.iter().position(|&a| a == 0);
        match (free, i64::try_from(amount)) {
            (Some(i), Ok(a)) if a != 0 => {
                self.amounts[i] = a;
                self.assets[i] = asset;
            }
            (_, Ok(0)) => {}
            _ => self.complete = false,
        }
    }

    /// The key's value at `prices`, or `None` when the terms are not complete.
    pub fn value(&self, prices: &[PriceEntry]) -> Option<i128> {
        self.complete.then(|| {
            let term = |(&a, &asset): (&i64, &u16)| {
                let q = prices[asset as usize].spot;
                a.unsigned_abs() as i128 * if a < 0 { q.liability } else { q.asset } as i128
            };
            self.amounts.iter().zip(&self.assets).map(term).sum()
        })
    }

    /// The one term, when there is exactly one: its asset, whether it is owed (valued at the
    /// liability quote, else the asset quote) and its size. Such keys keep their order among
    /// themselves whatever that asset's price, while it is not 0.
    pub fn single(&self) -> Option<(u16, bool, u64)> {
        let [a, b] = self.amounts;
        (self.complete && a != 0 && b == 0).then(|| (self.assets[0], a < 0, a.unsigned_abs()))
    }

    /// The two terms, when there are exactly two, each as [`single`](Self::single) gives one.
    /// Such keys change their order among themselves only with the ratio of the two quotes.
    pub fn pair(&self) -> Option<[(u16, bool, u64); 2]> {
        let [a, b] = self.amounts;
        let term = |i: usize| (self.assets[i], self.amounts[i] < 0, self.amounts[i].unsigned_abs());
        (self.complete && a != 0 && b != 0).then(|| [term(0), term(1)])
    }
}

/// The ranking key of `view` at `prices`: the value of its debt (the [`Plan::debt_value`] that
/// [`size`] returns whenever it sizes), moved only by the prices of what it owes. `None` when
/// [`size`] can never size it, whatever the prices: it owes nothing or holds nothing. Whether it
/// sizes at the prices of the day (its health) is [`size`]'s to say when its turn comes, so a
/// price move re-keys only the accounts owing the asset, not every breached account. No
/// allocation, one pass over the positions.
pub fn rank_key(view: &AccountView, prices: &[PriceEntry]) -> Option<RankKey> {
    let (mut value, mut moves, mut holds, mut terms) = (0i128, 0u64, false, KeyTerms::new());
    for p in view.positions.iter() {
        if p.amount < 0 {
            value += -p.amount * prices[p.asset as usize].spot.liability as i128;
            moves |= asset_bit(p.asset);
            terms.add(p.asset, p.amount);
        } else if p.amount > 0 {
            holds = true;
        }
    }
    (moves != 0 && holds).then_some(RankKey { value, moves, terms })
}

/// Sizes a liquidation of `view` at `prices`; `None` when it holds no debt or no collateral, or
/// is healthy both by the datapath's health and by its health factor.
pub fn size(view: &AccountView, prices: &[PriceEntry], policy: &SizingPolicy) -> Option<Plan> {
    // (asset, value, weight ppm, amount)
    let mut coll: Vec<(u16, i128, i128)> = Vec::new();
    let mut debt: Option<(u16, i128, i128, i128)> = None; // largest: asset, value, l, amount owed
    let (mut wc, mut wd, mut debt_value) = (0i128, 0i128, 0i128);
    for p in view.positions.iter() {
        let pr = prices[p.asset as usize].spot;
        if p.amount > 0 {
            let v = p.amount * pr.asset as i128;
            wc += v * p.asset_weight_ppm as i128;
            if v > 0 {
                coll.push((p.asset, v, p.asset_weight_ppm as i128));
            }
        } else if p.amount < 0 {
            let v = -p.amount * pr.liability as i128;
            let l = p.liability_weight_ppm as i128;
            wd += v * l;
            debt_value += v;
            if debt.is_none_or(|d| v > d.1) {
                debt = Some((p.asset, v, l, -p.amount));
            }
        }
    }
    let (d_asset, d_value, l, d_amount) = debt?;
    if coll.is_empty() || d_value == 0 {
        return None;
    }
    let hf_bps = wc * BPS / wd;
    if wc >= wd && health(view, prices) >= 0 {
        return None;
    }
    coll.sort_by(|a, b| a.2.cmp(&b.2).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
    let b = policy.bonus_bps as i128;
    let t = policy.target_hf_bps as i128;
    let w = coll[0].2;
    let denom = t * l - w * (BPS + b);
    let mut close_all = hf_bps < policy.full_close_hf_bps as i128 || debt_value <= policy.dust_value;
    let mut repay_value = if close_all {
        d_value
    } else if denom <= 0 {
        close_all = true;
        d_value
    } else {
        let num = t * wd - BPS * wc;
        // Breached by rounding alone: repay the least amount that moves it.
        let r = if num <= 0 { 1 } else { ceil_div(num, denom) };
        r.min(d_value * policy.close_factor_bps as i128 / BPS).max(1)
    };
    repay_value = repay_value.min(d_value);
    let d_price = prices[d_asset as usize].spot.liability as i128;
    let mut legs = Vec::new();
    for &(asset, value, _) in &coll {
        if repay_value <= 0 {
            break;
        }
        // Largest repayment this collateral can pay for, bonus included.
        let cover = value * BPS / (BPS + b);
        let r = repay_value.min(cover);
        if r <= 0 {
            continue;
        }
        let quanta = if d_price == 0 { d_amount } else { ceil_div(r, d_price).min(d_amount) };
        legs.push(Leg { debt_asset: d_asset, repay: quanta, collateral_asset: asset });
        repay_value -= r;
    }
    if legs.is_empty() {
        return None;
    }
    Some(Plan { legs, close_all, debt_value, hf_bps })
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqscan_hdl::abi::QuotedPrice;

    fn px(p: u32) -> PriceEntry {
        let q = QuotedPrice { asset: p, liability: p };
        PriceEntry { spot: q, stressed: q }
    }

    fn pos(asset: u16, amount: i128, w: u32, l: u32) -> Position {
        Position { asset, amount, asset_weight_ppm: w, liability_weight_ppm: l }
    }

    #[test]
    fn partial_restores_target_health_within_close_factor() {
        // 10 units of collateral at 100, weight 0.8; debt 830 at 1. HF = 800/830 = 0.964.
        let prices = vec![px(100), px(1)];
        let view = AccountView {
            account: 7,
            slot: 3,
            positions: vec![pos(0, 10, 800_000, PPM as u32), pos(1, -830, 1_000_000, 1_000_000)].into(),
        };
        let policy = SizingPolicy { full_close_hf_bps: 9_000, ..Default::default() };
        let plan = size(&view, &prices, &policy).unwrap();
        assert!(!plan.close_all);
        assert_eq!(plan.legs.len(), 1);
        let r = plan.legs[0].repay;
        // HF' = 0.8 (1000 - 1.05 R) / (830 - R) >= 1.05  iff  2100 R >= 715000: R = 341 (< 415).
        assert_eq!(r, 341);
        assert!(2100 * r >= 715_000 && 2100 * (r - 1) < 715_000, "smallest repayment restoring 1.05");
    }

    #[test]
    fn close_factor_caps_and_full_close_below_line() {
        let prices = vec![px(100), px(1)];
        let deep = AccountView {
            account: 1,
            slot: 0,
            positions: vec![pos(0, 10, 800_000, 1_000_000), pos(1, -900, 1_000_000, 1_000_000)].into(),
        };
        // HF = 800/900 = 0.888 < 0.95: close all, limited by collateral: 1000 / 1.05 = 952 >= 900.
        let plan = size(&deep, &prices, &SizingPolicy::default()).unwrap();
        assert!(plan.close_all);
        assert_eq!(plan.legs[0].repay, 900);
        // With the line lower, the target needs more than 50%: capped at 450.
        let policy = SizingPolicy { full_close_hf_bps: 8_000, ..Default::default() };
        let plan = size(&deep, &prices, &policy).unwrap();
        assert!(!plan.close_all);
        assert_eq!(plan.legs[0].repay, 450);
        // Dust: all of it.
        let policy = SizingPolicy { full_close_hf_bps: 8_000, dust_value: 1_000, ..Default::default() };
        assert!(size(&deep, &prices, &policy).unwrap().close_all);
    }

    #[test]
    fn seizes_lowest_weight_first_and_spills_over() {
        let prices = vec![px(10), px(10), px(1)];
        // Asset 0 weight 0.9 (value 500), asset 1 weight 0.5 (value 200); debt 700.
        let v = AccountView {
            account: 2,
            slot: 1,
            positions: vec![
                pos(0, 50, 900_000, 1_000_000),
                pos(1, 20, 500_000, 1_000_000),
                pos(2, -700, 0, 1_000_000),
            ]
            .into(),
        };
        let plan = size(&v, &prices, &SizingPolicy::default()).unwrap();
        assert!(plan.close_all); // HF = 550/700 < 0.95
        assert_eq!(plan.legs[0].collateral_asset, 1);
        assert_eq!(plan.legs[0].repay, 200 * 10_000 / 10_500);
        assert_eq!(plan.legs[1].collateral_asset, 0);
        // 700 * 1.05 > 700 of collateral: repayment limited to what the collateral pays for.
        assert_eq!(plan.legs[1].repay, 500 * 10_000 / 10_500);
    }

    #[test]
    fn healthy_or_no_debt_is_none() {
        let prices = vec![px(100), px(1)];
        let ok = AccountView {
            account: 1,
            slot: 0,
            positions: vec![pos(0, 10, 800_000, 1_000_000), pos(1, -700, 1_000_000, 1_000_000)].into(),
        };
        assert_eq!(size(&ok, &prices, &SizingPolicy::default()), None);
        let none =
            AccountView { account: 1, slot: 0, positions: vec![pos(0, 10, 800_000, 1_000_000)].into() };
        assert_eq!(size(&none, &prices, &SizingPolicy::default()), None);
    }

    #[test]
    fn key_terms_value_each_side_at_its_quote() {
        let q = |asset, liability| PriceEntry {
            spot: QuotedPrice { asset, liability },
            stressed: QuotedPrice { asset, liability },
        };
        let prices = [q(10, 11), q(100, 103), q(7, 9)];
        let mut t = KeyTerms::new();
        assert_eq!(t.value(&prices), Some(0));
        assert_eq!(t.single(), None, "no term");
        t.add(0, -5);
        t.add(2, 0);
        assert_eq!(t.single(), Some((0, true, 5)), "one term, owed");
        assert_eq!(t.pair(), None, "one term");
        t.add(1, 3);
        assert_eq!(t.single(), None, "two terms");
        assert_eq!(t.pair(), Some([(0, true, 5), (1, false, 3)]), "two terms, in the order added");
        assert_eq!(
            t.value(&prices),
            Some(5 * 11 + 3 * 100),
            "owed at the liability quote, held at the asset quote"
        );
        t.add(2, -1);
        assert_eq!(t.value(&prices), None, "a third term");
        assert_eq!(t.pair(), None, "a third term");
        let mut big = KeyTerms::new();
        big.add(0, i64::MAX as i128 + 1);
        assert_eq!(big.value(&prices), None, "past 64 bits");
        assert_eq!(big.single(), None, "past 64 bits");
        let mut held = KeyTerms::new();
        held.add(2, 4);
        assert_eq!(held.single(), Some((2, false, 4)), "one term, held");
        assert_eq!(KeyTerms::default().value(&prices), None, "no terms taken");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2000, ..Default::default() })]

        /// `rank_key` keys every account `size` sizes with its debt value, moved by the assets
        /// it owes; it drops only accounts `size` sizes at no prices.
        #[test]
        fn rank_key_agrees_with_size(
            positions in proptest::collection::vec(
                // Small amounts and prices reach the edges (a collateral worth one quantum).
                (0u16..4, proptest::prop_oneof![-3i128..=3, -2_000i128..2_000], 0u32..=1_200_000, 1u32..=1_500_000),
                0..5,
            ),
            prices in proptest::collection::vec(proptest::prop_oneof![0u32..3, 0u32..300], 4),
            bonus in 0u32..2_000,
            line in 8_000u32..12_000,
        ) {
            let view = AccountView {
                account: 1,
                slot: 0,
                positions: positions.iter().map(|&(a, amt, w, l)| pos(a, amt, w, l)).collect(),
            };
            let prices: Vec<PriceEntry> = prices.into_iter().map(px).collect();
            let policy = SizingPolicy { bonus_bps: bonus, full_close_hf_bps: line, ..Default::default() };
            let plan = size(&view, &prices, &policy);
            let key = rank_key(&view, &prices);
            if let Some(p) = &plan {
                proptest::prop_assert_eq!(key.map(|k| k.value), Some(p.debt_value));
            }
            let owes: u64 = view.positions.iter().filter(|p| p.amount < 0).map(|p| asset_bit(p.asset)).fold(0, |a, b| a | b);
            let holds = view.positions.iter().any(|p| p.amount > 0);
            proptest::prop_assert_eq!(key.is_some(), owes != 0 && holds);
            if let Some(k) = key {
                proptest::prop_assert_eq!(k.moves, owes);
                // Its terms, where they fit, give its value without the account.
                let debts = view.positions.iter().filter(|p| p.amount < 0).count();
                proptest::prop_assert_eq!(k.terms.value(&prices).is_some(), debts <= 2);
                if let Some(v) = k.terms.value(&prices) {
                    proptest::prop_assert_eq!(v, k.value);
                }
                // A move of an asset it does not owe leaves the key as it is.
                for a in 0..prices.len() {
                    if k.moves & asset_bit(a as u16) == 0 {
                        let mut moved = prices.clone();
                        moved[a] = px(prices[a].spot.asset.wrapping_mul(3).wrapping_add(7) % 300);
                        proptest::prop_assert_eq!(rank_key(&view, &moved), key);
                    }
                }
            }
        }
    }
}
