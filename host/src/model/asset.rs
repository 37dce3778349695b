//! Assets, their tiers of weights, and the quantisation of prices.

use std::collections::{BTreeMap, HashMap};

use liqscan_hdl::abi::{MAX_ASSETS, PRICE_MAX, PriceEntry, QuotedPrice};
use serde::{Deserialize, Serialize};

use super::decimal::Decimal;

/// Venue-wide settings of the integer model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueSpec {
    /// Name shown in reports.
    #[serde(default = "default_venue_name")]
    pub name: String,
    /// Health is counted in quanta of `10^value_exp` units of the quote currency. With -8 and
    /// the 68-bit accumulator an account's health spans about +-1.4e12 quote units.
    #[serde(default = "default_value_exp")]
    pub value_exp: i32,
    /// The range `[low, high]` every asset's price is expected to stay in, quote units per
    /// whole unit. Needed where an asset omits `quantum_exp` (the compiler then chooses it so
    /// that prices up to `high` fit), and it is the range the printed worst-case rounding
    /// error holds for (`model::quantum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_range: Option<[Decimal; 2]>,
}

fn default_venue_name() -> String {
    "venue".into()
}
fn default_value_exp() -> i32 {
    -8
}

impl Default for VenueSpec {
    fn default() -> Self {
        VenueSpec { name: default_venue_name(), value_exp: default_value_exp(), price_range: None }
    }
}

/// The weights one tier applies to an asset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierWeights {
    /// Weight of a positive balance (collateral, long), in [0, 1].
    pub asset_weight: Decimal,
    /// Weight of a negative balance (debt, short), at least 1.
    pub liability_weight: Decimal,
}

/// One asset of a venue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetSpec {
    /// Ticker, unique within the venue (e.g. "ETH").
    pub symbol: String,
    /// Fractional digits of the asset's native amount; balances with more digits are refused.
    #[serde(default = "default_decimals")]
    pub decimals: u32,
    /// Coefficient quantum `10^quantum_exp` whole units. It splits the 64 bits of a product
    /// between position range (31 bits of quanta) and price resolution (32 bits): for ETH,
    /// -4 allows 214,748 ETH per account and prices up to 429,496 at 1e-4 resolution when
    /// `value_exp` is -8.
    pub quantum_exp: i32,
    /// Stress fraction for the at-risk check: assets priced at `P*(1-s)`, liabilities `P*(1+s)`.
    #[serde(default)]
    pub stress: Decimal,
    /// Weights by tier name; every account's tier must be present. A tier named twice is
    /// refused (JSON would keep the last).
    #[serde(deserialize_with = "crate::io::unique::map")]
    pub tiers: BTreeMap<String, TierWeights>,
    /// Whether a tick may price this asset at 0 (an asset that can really go to nothing). Off
    /// by default: a 0 is far more often a broken feed, and it breaches every borrower.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_zero_price: bool,
    /// The range `[low, high]` this asset's price is expected to stay in (quote units per whole
    /// unit), overriding the venue's `price_range` (`model::quantum`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_range: Option<[Decimal; 2]>,
}

pub(crate) fn default_decimals() -> u32 {
    18
}

/// Why an asset or a price was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// No asset with that symbol.
    #[error("unknown asset '{0}'")]
    UnknownAsset(String),
    /// Two assets share a symbol.
    #[error("asset '{0}' is listed twice")]
    DuplicateAsset(String),
    /// A decimal exponent outside the range the model computes with.
    #[error("{what} is {value}; it must be in [{}, {}]", -MAX_EXP, MAX_EXP)]
    Exponent {
        /// Which exponent (`value_exp`, or an asset's `quantum_exp`).
        what: String,
        /// Its value.
        value: i32,
    },
    /// More assets than the card's price table holds.
    #[error("{0} assets listed; at most {MAX_ASSETS} fit the price table")]
    TooManyAssets(usize),
    /// A weight or stress fraction outside its range.
    #[error("asset '{asset}' {what} is {value}, must be {range}")]
    BadParameter {
        /// Asset symbol.
        asset: String,
        /// Which parameter.
        what: String,
        /// Its value.
        value: Decimal,
        /// The allowed range.
        range: &'static str,
    },
    /// A negative price.
    #[error("asset '{asset}' price {price} is negative")]
    NegativePrice {
        /// Asset symbol.
        asset: String,
        /// The price.
        price: Decimal,
    },
    /// A price whose quantised value exceeds 32 bits.
    #[error(
        "asset '{asset}' price {price} is {quanta} quanta, over the 32-bit price range; raise quantum_exp's price resolution (make quantum_exp smaller) or value_exp"
    )]
    PriceOverflow {
        /// Asset symbol.
        asset: String,
        /// The price.
        price: Decimal,
        /// Its quantised value.
        quanta: i128,
    },
}

/// Largest magnitude of `value_exp` and `quantum_exp`: `10^36` still fits the 128-bit
/// arithmetic every quantisation goes through.
pub const MAX_EXP: i32 = 36;

/// The venue's assets, indexed for the datapath (index = position in the price table).
#[derive(Clone, Debug, Default)]
pub struct AssetTable {
    /// Venue settings.
    pub venue: VenueSpec,
    assets: Vec<AssetSpec>,
    by_symbol: HashMap<String, u16>,
}

impl AssetTable {
    /// Validates and indexes a venue's assets.
    pub fn new(venue: VenueSpec, assets: Vec<AssetSpec>) -> Result<Self, QuoteError> {
        if assets.len() > MAX_ASSETS {
            return Err(QuoteError::TooManyAssets(assets.len()));
        }
        if venue.value_exp.unsigned_abs() > MAX_EXP as u32 {
            return Err(QuoteError::Exponent { what: "value_exp".into(), value: venue.value_exp });
        }
        let mut by_symbol = HashMap::new();
        for (i, a) in assets.iter().enumerate() {
            if a.quantum_exp.unsigned_abs() > MAX_EXP as u32 {
                return Err(QuoteError::Exponent {
                    what: format!("asset '{}' quantum_exp", a.symbol),
                    value: a.quantum_exp,
                });
            }
            if by_symbol.insert(a.symbol.clone(), i as u16).is_some() {
                return Err(QuoteError::DuplicateAsset(a.symbol.clone()));
            }
            let bad = |what: &str, value: Decimal, range| QuoteError::BadParameter {
                asset: a.symbol.clone(),
                what: what.into(),
                value,
                range,
            };
            if a.stress < Decimal::ZERO || a.stress > Decimal::ONE {
                return Err(bad("stress", a.stress, "in [0, 1]"));
            }
            for [low, high] in a.price_range.iter().chain(venue.price_range.iter()).copied() {
                if low <= Decimal::ZERO || low > high {
                    return Err(bad("price_range low", low, "above 0 and at most the high end"));
                }
            }
            for (tier, w) in &a.tiers {
                if w.asset_weight < Decimal::ZERO || w.asset_weight > Decimal::ONE {
                    return Err(bad(&format!("tier '{tier}' asset_weight"), w.asset_weight, "in [0, 1]"));
                }
                if w.liability_weight < Decimal::ONE {
                    return Err(bad(
                        &format!("tier '{tier}' liability_weight"),
                        w.liability_weight,
                        "at least 1",
                    ));
                }
            }
        }
        Ok(AssetTable { venue, assets, by_symbol })
    }

    /// Number of assets.
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    /// True when no asset is listed.
    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    /// All assets in price-table order.
    pub fn assets(&self) -> &[AssetSpec] {
        &self.assets
    }

    /// The asset at a price-table index.
    pub fn get(&self, index: u16) -> Option<&AssetSpec> {
        self.assets.get(index as usize)
    }

    /// The price-table index of a symbol.
    pub fn index_of(&self, symbol: &str) -> Result<u16, QuoteError> {
        self.by_symbol.get(symbol).copied().ok_or_else(|| QuoteError::UnknownAsset(symbol.to_string()))
    }

    /// The price range of an asset: its own, else the venue's (`None`: neither states one).
    pub fn price_range(&self, index: u16) -> Option<(Decimal, Decimal)> {
        let a = self.assets.get(index as usize)?;
        a.price_range.or(self.venue.price_range).map(|[low, high]| (low, high))
    }

    /// Decimal exponent of one price quantum of an asset, in quote units per whole asset.
    pub fn price_exp(&self, index: u16) -> i32 {
        self.venue.value_exp - self.assets[index as usize].quantum_exp
    }

    /// A health in value quanta as an exact decimal in quote units.
    pub fn value_of(&self, quanta: i128) -> Decimal {
        let e = self.venue.value_exp;
        if e <= 0 {
            Decimal::new(quanta, (-e) as u32).normalized()
        } else {
            Decimal::new(quanta.saturating_mul(10i128.pow(e as u32)), 0)
        }
    }

    /// Quantises a real price into the asset's price-table entry: spot and stressed, each with
    /// the asset side rounded down and the liability side rounded up.
    pub fn quote(&self, index: u16, price: Decimal) -> Result<PriceEntry, QuoteError> {
        let a = &self.assets[index as usize];
        if price.is_negative() {
            return Err(QuoteError::NegativePrice { asset: a.symbol.clone(), price });
        }
        let shift = -self.price_exp(index);
        let overflow = |quanta| QuoteError::PriceOverflow { asset: a.symbol.clone(), price, quanta };
        let fit = |v: Result<i128, _>| -> Result<u32, QuoteError> {
            let v = v.map_err(|_| overflow(i128::MAX))?;
            if v > PRICE_MAX as i128 { Err(overflow(v)) } else { Ok(v as u32) }
        };
        let down = price.checked_mul(Decimal::ONE.checked_sub(a.stress).expect("stress in [0,1]"));
        let up = price.checked_mul(Decimal::ONE.checked_add(a.stress).expect("stress in [0,1]"));
        Ok(PriceEntry {
            spot: QuotedPrice {
                asset: fit(price.floor_shifted(shift))?,
                liability: fit(price.ceil_shifted(shift))?,
            },
            stressed: QuotedPrice {
                asset: fit(down.map_err(|_| overflow(i128::MAX))?.floor_shifted(shift))?,
                liability: fit(up.map_err(|_| overflow(i128::MAX))?.ceil_shifted(shift))?,
            },
        })
    }

    /// Quotes a symbol's price.
    pub fn quote_symbol(&self, symbol: &str, price: Decimal) -> Result<(u16, PriceEntry), QuoteError> {
        let i = self.index_of(symbol)?;
        Ok((i, self.quote(i, price)?))
    }
}
