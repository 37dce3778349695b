//! Auctions: the Dutch auction (Maker's Clipper style) and the batch auction.
//!
//! A kicked account is split into one auction per collateral asset it holds: the lot is the
//! collateral, the debt is the account's quote debt shared pro rata to the lots' oracle values
//! (largest-remainder rounding, so the parts sum to the debt exactly), and a penalty of
//! `penalty_bps` on top goes to the fund when proceeds cover it.
//!
//! - **Dutch**: the price starts at `buf` times the oracle and falls by the factor `cut` every
//!   `step_secs`. Bidders take when the auction price is at least `bidder_margin_bps` under
//!   the market price, as much as the market depth lets them resell at a profit. The auction
//!   resets (new top from the oracle) after `tail_secs` or when the price falls under `cusp`
//!   times the top. Whoever kicks or resets earns `tip_usd + chip_bps` of the debt from the fund.
//! - **Batch**: lots wait until the window closes (every `window_secs`), then each asset's lots
//!   clear together at one price: the price the depth curve reaches when all of them are sold,
//!   but never under `reserve` times the oracle; at the reserve, only what clears there is sold,
//!   pro rata, and the rest waits for the next window.
//!
//! Proceeds repay the debt first, then the penalty. The lot left when both are paid goes back to
//! the account. An auction that runs out of lot with debt left writes the debt off (fund, then
//! socialised).

use serde::{Deserialize, Serialize};

use super::{Sale, Venue};
use liqscan_host::dispatch::Outcome;
use liqscan_host::dispatch::sizing::BPS;

/// Dutch auction settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DutchConfig {
    /// Starting price over the oracle price.
    pub buf: f64,
    /// Seconds between price steps.
    pub step_secs: f64,
    /// Price factor per step.
    pub cut: f64,
    /// Reset after this many seconds.
    pub tail_secs: f64,
    /// Reset when the price falls under this fraction of the top.
    pub cusp: f64,
    /// Flat keeper incentive per kick or reset, quote units.
    pub tip_usd: f64,
    /// Proportional keeper incentive per kick or reset, basis points of the debt.
    pub chip_bps: u32,
    /// Discount under the market that bidders require, basis points.
    pub bidder_margin_bps: u32,
}

impl Default for DutchConfig {
    fn default() -> Self {
        DutchConfig {
            buf: 1.2,
            step_secs: 90.0,
            cut: 0.99,
            tail_secs: 8400.0,
            cusp: 0.4,
            tip_usd: 100.0,
            chip_bps: 10,
            bidder_margin_bps: 200,
        }
    }
}

/// Batch auction settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Seconds per window.
    pub window_secs: f64,
    /// Lowest clearing price as a fraction of the oracle.
    pub reserve: f64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { window_secs: 60.0, reserve: 0.8 }
    }
}

/// One lot under auction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Auction {
    /// Slot of the account it came from.
    pub slot: u32,
    /// That account's key.
    pub account: u64,
    /// Collateral asset.
    pub lot_asset: u16,
    /// Collateral left, quanta.
    pub lot: i128,
    /// Debt left, quote quanta.
    pub debt: i128,
    /// Penalty left, quote quanta.
    pub penalty: i128,
    /// Start (or last reset), simulated seconds.
    pub start_s: f64,
    /// Top price, quote quanta per lot quantum.
    pub top: f64,
    /// Resets so far.
    pub resets: u32,
}

/// Market prices the auctions see, by asset: quote quanta per asset quantum, and quote units
/// per asset quantum (for the depth model).
#[derive(Clone, Debug, Default)]
pub struct MarketView {
    /// Quote quanta per asset quantum.
    pub quanta_price: Vec<f64>,
    /// Quote units (USD) per asset quantum.
    pub usd_per_quantum: Vec<f64>,
}

impl Venue {
    /// Oracle price in quote quanta per quantum of `asset`.
    fn oracle_q(&self, asset: usize) -> f64 {
        self.prices[asset].spot.asset as f64 / self.prices[self.quote as usize].spot.liability.max(1) as f64
    }

    fn pay_incentive(&mut self, debt: i128) {
        let d = &self.rules.dutch;
        let want = (d.tip_usd * self.quote_per_usd()) as i128 + debt * d.chip_bps as i128 / BPS;
        let paid = want.min(self.fund.max(0));
        self.fund -= paid;
        self.ledger.incentives += paid;
    }

    fn quote_per_usd(&self) -> f64 {
        self.value_per_usd / self.prices[self.quote as usize].spot.liability.max(1) as f64
    }

    /// Passes a breached account whole to the auction house.
    pub(crate) fn kick(&mut self, slot: u32, now_s: f64) -> Outcome {
        let q = self.quote as usize;
        let s = slot as usize;
        let debt = -self.accounts[s].bal[q].min(0);
        let lots: Vec<(usize, i128, i128)> = (0..self.assets.len())
            .filter(|&a| a != q && self.accounts[s].bal[a] > 0)
            .map(|a| (a, self.accounts[s].bal[a], self.value(a, self.accounts[s].bal[a])))
            .collect();
        let total: i128 = lots.iter().map(|l| l.2).sum();
        if debt == 0 {
            return Outcome::Rejected(liqscan_host::dispatch::RejectReason::Healthy);
        }
        self.stats.kicks += 1;
        self.accounts[s].kicked = true;
        self.accounts[s].closed_out = true;
        self.accounts[s].bal[q] = 0;
        if total == 0 {
            self.accounts[s].kicked = false;
            self.accounts[s].bad_debt = true;
            self.stats.bad_debt_accounts += 1;
            self.write_off(debt);
            self.touch(slot);
            return Outcome::Filled { repaid_value: 0, seized_value: 0 };
        }
        // Debt shares: floor, then the remainder to the largest remainders.
        let mut shares: Vec<(usize, i128, i128)> =
            lots.iter().enumerate().map(|(i, l)| (i, debt * l.2 / total, debt * l.2 % total)).collect();
        let mut left = debt - shares.iter().map(|x| x.1).sum::<i128>();
        shares.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        for x in shares.iter_mut() {
            if left == 0 {
                break;
            }
            x.1 += 1;
            left -= 1;
        }
        shares.sort_by_key(|x| x.0);
        let key = self.accounts[s].key;
        for ((asset, amount, value), (_, part, _)) in lots.iter().copied().zip(shares) {
            self.accounts[s].bal[asset] = 0;
            self.stats.seized_value += value;
            self.auctions.push(Auction {
                slot,
                account: key,
                lot_asset: asset as u16,
                lot: amount,
                debt: part,
                penalty: part * self.rules.penalty_bps as i128 / BPS,
                start_s: now_s,
                top: self.oracle_q(asset) * self.rules.dutch.buf,
                resets: 0,
            });
        }
        if self.rules.mechanism == super::MechanismKind::Dutch {
            self.pay_incentive(debt);
        }
        self.touch(slot);
        Outcome::Filled { repaid_value: 0, seized_value: total }
    }

    /// Pays `pay` quote quanta of proceeds for `sold` lot quanta of auction `i`.
    fn settle_take(&mut self, i: usize, sold: i128, pay: i128) {
        let q = self.quote as usize;
        let a = &mut self.auctions[i];
        let to_debt = pay.min(a.debt);
        let to_pen = (pay - to_debt).min(a.penalty);
        a.debt -= to_debt;
        a.penalty -= to_pen;
        a.lot -= sold;
        let asset = a.lot_asset;
        self.ledger.assets[q].liq_repaid += to_debt;
        self.ledger.assets[asset as usize].sold_in_auction += sold;
        self.fund += to_pen;
        self.ledger.fund_income += to_pen;
        self.stats.repaid_value += to_debt * self.prices[q].spot.liability as i128;
        self.sales.push(Sale { asset, quanta: sold });
    }

    /// Ends finished auctions: lot left goes back to the account; debt left with no lot is
    /// written off.
    fn finish_auctions(&mut self) {
        let mut i = 0;
        while i < self.auctions.len() {
            let a = &self.auctions[i];
            let paid = a.debt == 0 && a.penalty == 0;
            if !(paid || a.lot == 0) {
                i += 1;
                continue;
            }
            let a = self.auctions.swap_remove(i);
            if a.debt > 0 {
                self.write_off(a.debt);
                let acct = &mut self.accounts[a.slot as usize];
                if !acct.bad_debt {
                    acct.bad_debt = true;
                    self.stats.bad_debt_accounts += 1;
                }
            }
            let slot = a.slot as usize;
            if a.lot > 0 && self.accounts[slot].key == a.account {
                self.accounts[slot].bal[a.lot_asset as usize] += a.lot;
            }
            if !self.auctions.iter().any(|b| b.slot == a.slot) {
                self.accounts[slot].kicked = false;
            }
            self.touch(a.slot);
        }
    }

    /// Advances the auctions to `now_s` against the market.
    pub fn step_auctions(&mut self, now_s: f64, market: &MarketView, last_batch_s: &mut f64) {
        if self.auctions.is_empty() || self.halted {
            return;
        }
        match self.rules.mechanism {
            super::MechanismKind::Dutch => self.step_dutch(now_s, market),
            super::MechanismKind::Batch => {
                if now_s - *last_batch_s >= self.rules.batch.window_secs {
                    *last_batch_s = now_s;
                    self.clear_batch(market);
                }
            }
            super::MechanismKind::Direct => {}
        }
        self.finish_auctions();
    }

    fn step_dutch(&mut self, now_s: f64, market: &MarketView) {
        let d = self.rules.dutch.clone();
        let margin = d.bidder_margin_bps as f64 / BPS as f64;
        for i in 0..self.auctions.len() {
            let (asset, elapsed) = {
                let a = &self.auctions[i];
                (a.lot_asset as usize, now_s - a.start_s)
            };
            let mut price = self.auctions[i].top * d.cut.powf((elapsed / d.step_secs).floor());
            if elapsed > d.tail_secs || price < d.cusp * self.auctions[i].top {
                let top = self.oracle_q(asset) * d.buf;
                let debt = self.auctions[i].debt;
                let a = &mut self.auctions[i];
                a.top = top;
                a.start_s = now_s;
                a.resets += 1;
                self.stats.resets += 1;
                self.pay_incentive(debt);
                price = top;
            }
            let p = market.quanta_price[asset];
            if price <= 0.0 || p <= 0.0 || price > p * (1.0 - margin) {
                continue;
            }
            // Largest resale the depth allows at a profit: V <= 200 depth (1 - margin - price/p).
            let depth = &self.assets[asset].depth;
            let v_max = 200.0 * depth.depth_usd_per_pct * (1.0 - margin - price / p);
            let usd_q = market.usd_per_quantum[asset].max(f64::MIN_POSITIVE);
            let q_depth = (v_max / usd_q).floor().max(0.0);
            let a = &self.auctions[i];
            let owed = (a.debt + a.penalty) as f64;
            let q_need = (owed / price).ceil();
            let sold = (a.lot as f64).min(q_depth).min(q_need).max(0.0) as i128;
            if sold <= 0 {
                continue;
            }
            let pay = ((sold as f64 * price).ceil() as i128).min(a.debt + a.penalty);
            self.stats.takes += 1;
            self.settle_take(i, sold, pay);
        }
    }

    fn clear_batch(&mut self, market: &MarketView) {
        let reserve = self.rules.batch.reserve;
        for asset in 0..self.assets.len() {
            let idx: Vec<usize> =
                (0..self.auctions.len()).filter(|&i| self.auctions[i].lot_asset as usize == asset).collect();
            if idx.is_empty() {
                continue;
            }
            let p = market.quanta_price[asset];
            let usd_q = market.usd_per_quantum[asset];
            if p <= 0.0 || usd_q <= 0.0 {
                continue;
            }
            // What each lot offers: no more than it needs at the oracle-reserve price.
            let floor_price = (self.oracle_q(asset) * reserve).max(f64::MIN_POSITIVE);
            let offers: Vec<i128> = idx
                .iter()
                .map(|&i| {
                    let a = &self.auctions[i];
                    let need = ((a.debt + a.penalty) as f64 / floor_price).ceil() as i128;
                    a.lot.min(need.max(1))
                })
                .collect();
            let total: i128 = offers.iter().sum();
            let depth = self.assets[asset].depth.depth_usd_per_pct;
            // Linear book: selling Q moves the price by Q usd_q / depth percent.
            let mv = |qty: f64| qty * usd_q / (100.0 * depth.max(f64::MIN_POSITIVE));
            let mut clear = p * (1.0 - mv(total as f64)).max(0.0);
            let mut scale = 1.0;
            if clear < floor_price {
                clear = floor_price;
                let fits = ((1.0 - floor_price / p).max(0.0) * 100.0 * depth / usd_q).floor();
                scale = (fits / total as f64).clamp(0.0, 1.0);
            }
            if scale <= 0.0 {
                continue;
            }
            self.stats.clearings += 1;
            for (k, &i) in idx.iter().enumerate() {
                let sold = ((offers[k] as f64 * scale).floor() as i128).min(self.auctions[i].lot);
                if sold <= 0 {
                    continue;
                }
                let a = &self.auctions[i];
                let pay = ((sold as f64 * clear).floor() as i128).min(a.debt + a.penalty);
                self.settle_take(i, sold, pay);
            }
        }
    }
}
