//! One perpetual market: its parameters, the oracle (index) price, the book and the mark price.
//!
//! Prices are integers: quote quanta per base lot, so a notional `size * price` is exact.
//!
//! - The oracle price comes from the scenario's path (an index of spot venues).
//! - The book trades at `oracle * factor`: liquidation fills dent it through the
//!   [`DepthModel`] (sells down, buys up), and the dent heals with the model's half-life.
//! - The mark price is `oracle + EMA(book - oracle)`: the oracle plus a smoothed premium, as
//!   Binance's "index + moving average of the basis" and Hyperliquid's "oracle + EMA of
//!   (mid - oracle)" components. Smoothing weight `mark_ema_ppm` per step (10^6: the mark is the
//!   book price; 0: the mark is the oracle).

use serde::{Deserialize, Serialize};

use super::funding::FundingParams;
use super::tiers::{MarginTiers, PPM};
use crate::venue::DepthModel;

/// A market's fixed parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketParams {
    /// Ticker, e.g. "BTC-PERP".
    pub symbol: String,
    /// Maintenance margin brackets.
    pub tiers: MarginTiers,
    /// Funding schedule and formula.
    pub funding: FundingParams,
    /// Depth of the book the liquidations trade into.
    pub depth: DepthModel,
    /// Weight of the newest premium in the mark's EMA per step, parts per million.
    pub mark_ema_ppm: u32,
}

/// A market's state.
#[derive(Clone, Debug, Serialize)]
pub struct Market {
    /// Parameters.
    pub params: MarketParams,
    /// Oracle (index) price.
    pub oracle: i128,
    /// Smoothed premium `EMA(book - oracle)`, quote quanta per lot.
    pub premium_ema: i128,
    /// Mark price.
    pub mark: i128,
    /// Sum of premium samples (ppm of the oracle) since the last funding, and their count.
    pub premium_sum_ppm: i128,
    /// Number of samples in `premium_sum_ppm`.
    pub premium_samples: i128,
    /// Time of the next funding settlement, seconds.
    pub next_funding: u64,
}

impl Market {
    /// A market at oracle price `oracle`, mark equal to it.
    pub fn new(params: MarketParams, oracle: i128) -> Self {
        let next_funding = params.funding.interval_secs;
        Market {
            params,
            oracle,
            premium_ema: 0,
            mark: oracle,
            premium_sum_ppm: 0,
            premium_samples: 0,
            next_funding,
        }
    }

    /// The book's price now: the oracle dented by liquidation flow.
    pub fn book_price(&self) -> i128 {
        ((self.oracle as f64) * self.params.depth.factor).round() as i128
    }

    /// New oracle price after `dt` seconds: heal the book, update the premium EMA and the mark,
    /// and sample the premium for funding.
    pub fn tick(&mut self, oracle: i128, dt: f64) {
        self.oracle = oracle;
        self.params.depth.recover(dt);
        let premium = self.book_price() - oracle;
        let w = self.params.mark_ema_ppm as i128;
        self.premium_ema += (premium - self.premium_ema) * w / PPM;
        self.mark = (oracle + self.premium_ema).max(0);
        if oracle > 0 {
            self.premium_sum_ppm += premium * PPM / oracle;
            self.premium_samples += 1;
        }
    }

    /// As [`Market::take`] for a limit order: the move is also capped so that the average fill
    /// (half the move from the mark) is no worse than `limit`, and the price is held at the
    /// limit (the walk's floating-point rounding never fills it worse). A limit the mark has
    /// already passed fills nothing.
    pub fn take_limit(&mut self, d: i128, limit: i128, max_move_ppm: u32) -> (i128, i128) {
        let room = if d > 0 { limit - self.mark } else { self.mark - limit };
        if d == 0 || room < 0 || self.mark <= 0 {
            return (0, limit);
        }
        let cap = (2 * room * PPM / self.mark).min(max_move_ppm as i128) as u32;
        let (filled, price) = self.take(d, cap);
        (filled, if d > 0 { price.min(limit) } else { price.max(limit) })
    }

    /// Fill price for a market order of `d` lots (buy > 0) against the book at `mark`, rounded
    /// against the taker, with the book dented by the order; `max_move_ppm` caps the move: the
    /// order is cut to what the book absorbs. Returns (lots filled, price).
    pub fn take(&mut self, d: i128, max_move_ppm: u32) -> (i128, i128) {
        let depth = &mut self.params.depth;
        let mut d = d;
        let cap = max_move_ppm as f64 / PPM as f64;
        let value = (d.abs() * self.mark) as f64 / super::QUANTA_PER_UNIT as f64; // depth is in quote units
        let mv = depth.move_for(value);
        if mv > cap && mv > 0.0 {
            d = ((d as f64) * cap / mv).trunc() as i128;
        }
        let value = (d.abs() * self.mark) as f64 / super::QUANTA_PER_UNIT as f64;
        let mv = depth.move_for(value);
        let price = if d > 0 {
            depth.factor *= 1.0 + mv;
            ((self.mark as f64) * (1.0 + mv / 2.0)).ceil() as i128
        } else {
            depth.factor *= 1.0 - mv;
            ((self.mark as f64) * (1.0 - mv / 2.0)).floor() as i128
        };
        (d, price.max(0))
    }
}
