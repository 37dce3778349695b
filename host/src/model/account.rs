//! Accounts and the coefficient compiler.

use std::collections::BTreeMap;

use liqscan_hdl::abi::{COEFF_MAX, COEFF_MIN, Coeff, MAX_COEFFS_PER_ACCOUNT};
use serde::{Deserialize, Serialize};

use super::asset::{AssetTable, QuoteError};
use super::decimal::Decimal;

/// The tier an account is in when it names none.
pub const DEFAULT_TIER: &str = "default";

/// One account of a venue: signed balances by asset symbol, and its tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// The venue's account identifier (an address, a sub-account number).
    pub id: String,
    /// Tier whose weights apply (defaults to "default").
    #[serde(default = "default_tier")]
    pub tier: String,
    /// Signed balances in whole units of each asset: positive for collateral or a long,
    /// negative for debt or a short.
    pub balances: BTreeMap<String, Decimal>,
}

fn default_tier() -> String {
    DEFAULT_TIER.to_string()
}

/// Why an account could not be compiled into datapath terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// Unknown asset symbol (or other asset-level problem).
    #[error("account '{account}': {source}")]
    Asset {
        /// Account id.
        account: String,
        /// The asset problem.
        source: Box<QuoteError>,
    },
    /// The account's tier is not defined for one of its assets.
    #[error("account '{account}': tier '{tier}' has no weights for asset '{asset}'")]
    UnknownTier {
        /// Account id.
        account: String,
        /// Tier name.
        tier: String,
        /// Asset symbol.
        asset: String,
    },
    /// A balance with more fractional digits than the asset has.
    #[error("account '{account}': balance {balance} of '{asset}' has more than {decimals} decimals")]
    TooPrecise {
        /// Account id.
        account: String,
        /// Asset symbol.
        asset: String,
        /// The balance.
        balance: Decimal,
        /// The asset's decimals.
        decimals: u32,
    },
    /// The weighted balance does not fit a 32-bit coefficient.
    #[error(
        "account '{account}': weighted balance of '{asset}' is {quanta} quanta, outside the 32-bit coefficient range; make the asset's quantum_exp larger"
    )]
    CoeffOverflow {
        /// Account id.
        account: String,
        /// Asset symbol.
        asset: String,
        /// Quantised value (saturated at the i128 range).
        quanta: i128,
    },
    /// More non-zero balances than the datapath takes.
    #[error("account '{account}' holds {count} assets; at most {MAX_COEFFS_PER_ACCOUNT} fit")]
    TooManyAssets {
        /// Account id.
        account: String,
        /// Number of assets held.
        count: usize,
    },
}

impl AccountSpec {
    /// An account in the default tier.
    pub fn new(id: impl Into<String>, balances: &[(&str, &str)]) -> Self {
        AccountSpec {
            id: id.into(),
            tier: default_tier(),
            balances: balances
                .iter()
                .map(|(s, v)| (s.to_string(), v.parse().expect("decimal literal")))
                .collect(),
        }
    }
}

impl AssetTable {
    /// Compiles an account into datapath terms `c = floor(b * w / q)`, sorted by asset index.
    /// Zero balances, and positive ones that round to zero, are left out.
    pub fn compile(&self, account: &AccountSpec) -> Result<Vec<Coeff>, CompileError> {
        let mut terms = Vec::with_capacity(account.balances.len());
        for (symbol, &balance) in &account.balances {
            let asset_err =
                |source| CompileError::Asset { account: account.id.clone(), source: Box::new(source) };
            let index = self.index_of(symbol).map_err(asset_err)?;
            let spec = self.get(index).expect("indexed");
            if balance.normalized().scale() > spec.decimals {
                return Err(CompileError::TooPrecise {
                    account: account.id.clone(),
                    asset: symbol.clone(),
                    balance,
                    decimals: spec.decimals,
                });
            }
            if balance.is_zero() {
                continue;
            }
            let weights = spec.tiers.get(&account.tier).ok_or_else(|| CompileError::UnknownTier {
                account: account.id.clone(),
                tier: account.tier.clone(),
                asset: symbol.clone(),
            })?;
            let w = if balance.is_negative() { weights.liability_weight } else { weights.asset_weight };
            let overflow = |quanta| CompileError::CoeffOverflow {
                account: account.id.clone(),
                asset: symbol.clone(),
                quanta,
            };
            let weighted = balance.checked_mul(w).map_err(|_| overflow(i128::MAX))?;
            let c = weighted.floor_shifted(-spec.quantum_exp).map_err(|_| overflow(i128::MAX))?;
            if c < COEFF_MIN as i128 || c > COEFF_MAX as i128 {
                return Err(overflow(c));
            }
            if c != 0 {
                terms.push(Coeff { asset: index, coeff: c as i32 });
            }
        }
        if terms.len() > MAX_COEFFS_PER_ACCOUNT {
            return Err(CompileError::TooManyAssets { account: account.id.clone(), count: terms.len() });
        }
        terms.sort_by_key(|t| t.asset);
        Ok(terms)
    }

    /// Compiles one balance (one leg) of an account in `tier`, as [`compile`](Self::compile)
    /// compiles each of its balances: `None` for a zero balance or a positive one that rounds
    /// to zero. Readers of long-form files use it to check and compile a row on its own,
    /// without building an [`AccountSpec`]; `index` is the asset's price-table index (from
    /// [`index_of`](AssetTable::index_of)). Panics when `index` is not in the table.
    pub fn compile_leg(
        &self,
        account: &str,
        tier: &str,
        index: u16,
        balance: Decimal,
    ) -> Result<Option<Coeff>, CompileError> {
        let spec = self.get(index).expect("an index from index_of");
        let symbol = spec.symbol.as_str();
        if balance.normalized().scale() > spec.decimals {
            return Err(CompileError::TooPrecise {
                account: account.to_string(),
                asset: symbol.to_string(),
                balance,
                decimals: spec.decimals,
            });
        }
        if balance.is_zero() {
            return Ok(None);
        }
        let weights = spec.tiers.get(tier).ok_or_else(|| CompileError::UnknownTier {
            account: account.to_string(),
            tier: tier.to_string(),
            asset: symbol.to_string(),
        })?;
        let w = if balance.is_negative() { weights.liability_weight } else { weights.asset_weight };
        let overflow = |quanta| CompileError::CoeffOverflow {
            account: account.to_string(),
            asset: symbol.to_string(),
            quanta,
        };
        let weighted = balance.checked_mul(w).map_err(|_| overflow(i128::MAX))?;
        let c = weighted.floor_shifted(-spec.quantum_exp).map_err(|_| overflow(i128::MAX))?;
        if c < COEFF_MIN as i128 || c > COEFF_MAX as i128 {
            return Err(overflow(c));
        }
        Ok((c != 0).then_some(Coeff { asset: index, coeff: c as i32 }))
    }
}
