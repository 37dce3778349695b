//! Accounts and the coefficient compiler.
//!
//! An account holds, per asset, up to two legs: a supply (collateral, a long; `>= 0`) and a
//! borrow (debt, a short; `<= 0`). Lending markets let one account supply and borrow the same
//! asset; each leg takes its own side's weight, so the two are never netted (netting overstates
//! health whenever `w+ < 1`). Every non-zero leg becomes one datapath term.

use std::collections::BTreeMap;
use std::fmt;

use liqscan_hdl::abi::{COEFF_MAX, COEFF_MIN, Coeff, MAX_COEFFS_PER_ACCOUNT, MAX_SOFTWARE_TERMS};
use serde::{Deserialize, Serialize};

use super::asset::{AssetTable, QuoteError};
use super::decimal::Decimal;

/// The tier an account is in when it names none.
pub const DEFAULT_TIER: &str = "default";

/// One account of a venue: its balances by asset symbol, and its tier.
///
/// In TOML and JSON an asset's value is either one signed decimal (`"ETH": "10"`, `"USDC":
/// "-15000"`) or its two legs (`"ETH": {"supply": "10", "borrow": "-4"}`); the same asset twice
/// in one `balances` map is refused (a JSON reader would otherwise keep the last one silently).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AccountDoc")]
pub struct AccountSpec {
    /// The venue's account identifier (an address, a sub-account number).
    pub id: String,
    /// Tier whose weights apply (defaults to "default").
    pub tier: String,
    /// Balances in whole units of each asset, by symbol.
    pub balances: BTreeMap<String, Legs>,
}

/// One asset's balance in an account: a supply (collateral, a long; `>= 0`) and a borrow (debt,
/// a short; `<= 0`), either of which may be zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Legs {
    /// Collateral or a long, in whole units; never negative.
    pub supply: Decimal,
    /// Debt or a short, in whole units; never positive.
    pub borrow: Decimal,
}

/// Which leg of an asset a balance is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// A positive balance: collateral or a long.
    Supply,
    /// A negative balance: debt or a short.
    Borrow,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Supply => "supply (positive balance)",
            Side::Borrow => "borrow (negative balance)",
        })
    }
}

/// A balance that cannot be added to an account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegError {
    /// That side of that asset is already set.
    #[error("account '{account}' has a {side} of '{asset}' already; merge the two into one")]
    Duplicate {
        /// Account id.
        account: String,
        /// Asset symbol.
        asset: String,
        /// The side given twice.
        side: Side,
    },
    /// A supply below zero or a borrow above zero in the two-leg form.
    #[error("account '{account}': {side} of '{asset}' is {value}; a supply is >= 0, a borrow <= 0")]
    WrongSign {
        /// Account id.
        account: String,
        /// Asset symbol.
        asset: String,
        /// The side.
        side: Side,
        /// The value written.
        value: Decimal,
    },
}

impl Legs {
    /// One signed balance as legs: positive to the supply, negative to the borrow.
    pub fn signed(amount: Decimal) -> Legs {
        if amount.is_negative() {
            Legs { supply: Decimal::ZERO, borrow: amount }
        } else {
            Legs { supply: amount, borrow: Decimal::ZERO }
        }
    }

    /// Both legs zero.
    pub fn is_zero(&self) -> bool {
        self.supply.is_zero() && self.borrow.is_zero()
    }

    /// The leg on a side.
    pub fn get(&self, side: Side) -> Decimal {
        match side {
            Side::Supply => self.supply,
            Side::Borrow => self.borrow,
        }
    }

    /// The non-zero legs as signed balances, the supply first.
    pub fn iter(&self) -> impl Iterator<Item = Decimal> + '_ {
        [self.supply, self.borrow].into_iter().filter(|b| !b.is_zero())
    }

    /// Sign check: a supply `>= 0`, a borrow `<= 0`; names the offending side.
    fn check_signs(&self) -> Result<(), (Side, Decimal)> {
        if self.supply.is_negative() {
            return Err((Side::Supply, self.supply));
        }
        if self.borrow > Decimal::ZERO {
            return Err((Side::Borrow, self.borrow));
        }
        Ok(())
    }
}

impl From<Decimal> for Legs {
    fn from(amount: Decimal) -> Legs {
        Legs::signed(amount)
    }
}

impl Serialize for Legs {
    /// One signed decimal when at most one leg is set (the format's common case), else
    /// `{supply, borrow}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        if self.supply.is_zero() {
            self.borrow.serialize(s)
        } else if self.borrow.is_zero() {
            self.supply.serialize(s)
        } else {
            let mut st = s.serialize_struct("Legs", 2)?;
            st.serialize_field("supply", &self.supply)?;
            st.serialize_field("borrow", &self.borrow)?;
            st.end()
        }
    }
}

/// The key serde_json (with `arbitrary_precision`) wraps a number's exact text in.
const JSON_NUMBER_KEY: &str = "$serde_json::private::Number";

impl<'de> Deserialize<'de> for Legs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, IntoDeserializer, MapAccess, Visitor};
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Legs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a signed decimal balance, or {supply, borrow} legs")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Legs, E> {
                Decimal::deserialize(v.into_deserializer()).map(Legs::signed)
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Legs, E> {
                Ok(Legs::signed(Decimal::from_int(v)))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Legs, E> {
                Ok(Legs::signed(Decimal::new(v as i128, 0)))
            }
            fn visit_f64<E: Error>(self, v: f64) -> Result<Legs, E> {
                Decimal::from_f64_text(v).map(Legs::signed).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Legs, A::Error> {
                let (mut supply, mut borrow) = (None, None);
                while let Some(key) = map.next_key::<String>()? {
                    let slot = match key.as_str() {
                        JSON_NUMBER_KEY => {
                            let text: String = map.next_value()?;
                            return text.parse().map(Legs::signed).map_err(A::Error::custom);
                        }
                        "supply" => &mut supply,
                        "borrow" => &mut borrow,
                        other => return Err(A::Error::unknown_field(other, &["supply", "borrow"])),
                    };
                    if slot.is_some() {
                        return Err(A::Error::custom(format!("'{key}' is given twice")));
                    }
                    *slot = Some(map.next_value::<Decimal>()?);
                }
                let legs = Legs { supply: supply.unwrap_or_default(), borrow: borrow.unwrap_or_default() };
                legs.check_signs().map_err(|(side, value)| {
                    A::Error::custom(format!("{side} is {value}; a supply is >= 0, a borrow <= 0"))
                })?;
                Ok(legs)
            }
        }
        d.deserialize_any(V)
    }
}

/// An account as written, before its balances are checked for an asset given twice.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountDoc {
    id: String,
    #[serde(default = "default_tier")]
    tier: String,
    #[serde(deserialize_with = "crate::io::unique::entries")]
    balances: Vec<(String, Legs)>,
}

impl TryFrom<AccountDoc> for AccountSpec {
    type Error = String;

    fn try_from(doc: AccountDoc) -> Result<Self, String> {
        let mut balances = BTreeMap::new();
        for (asset, legs) in doc.balances {
            if balances.insert(asset.clone(), legs).is_some() {
                return Err(format!(
                    "account '{}' lists asset '{asset}' twice in its balances (write one value, or {{supply, borrow}} for both legs)",
                    doc.id
                ));
            }
        }
        Ok(AccountSpec { id: doc.id, tier: doc.tier, balances })
    }
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
    /// A supply below zero or a borrow above zero.
    #[error("account '{account}': {side} of '{asset}' is {value}; a supply is >= 0, a borrow <= 0")]
    WrongSign {
        /// Account id.
        account: String,
        /// Asset symbol.
        asset: String,
        /// The side.
        side: Side,
        /// The value.
        value: Decimal,
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
    /// More non-zero legs than the software engine takes.
    #[error(
        "account '{account}' has {count} non-zero balance legs; at most {MAX_SOFTWARE_TERMS} fit the software engine ({MAX_COEFFS_PER_ACCOUNT} the card); split the account"
    )]
    TooManyTerms {
        /// Account id.
        account: String,
        /// Number of terms.
        count: usize,
    },
}

impl AccountSpec {
    /// An account in the default tier from signed balances (`("ETH", "10")`); an asset may
    /// appear twice with opposite signs (its supply and its borrow). Panics on a malformed
    /// literal or a side given twice: for tests and examples.
    pub fn new(id: impl Into<String>, balances: &[(&str, &str)]) -> Self {
        let mut a = AccountSpec::empty(id, DEFAULT_TIER);
        for (s, v) in balances {
            a.add_balance(s, v.parse().expect("decimal literal")).expect("each side of an asset once");
        }
        a
    }

    /// An account with no balances.
    pub fn empty(id: impl Into<String>, tier: impl Into<String>) -> Self {
        AccountSpec { id: id.into(), tier: tier.into(), balances: BTreeMap::new() }
    }

    /// Adds one signed balance row: positive to the asset's supply, negative to its borrow;
    /// zero is accepted and ignored. Refused (and nothing changed) if that side of that asset
    /// is already set.
    pub fn add_balance(&mut self, asset: &str, amount: Decimal) -> Result<(), LegError> {
        if amount.is_zero() {
            return Ok(());
        }
        let side = if amount.is_negative() { Side::Borrow } else { Side::Supply };
        let legs = self.balances.entry(asset.to_string()).or_default();
        let slot = match side {
            Side::Supply => &mut legs.supply,
            Side::Borrow => &mut legs.borrow,
        };
        if !slot.is_zero() {
            return Err(LegError::Duplicate { account: self.id.clone(), asset: asset.to_string(), side });
        }
        *slot = amount;
        Ok(())
    }

    /// Checks every asset's legs have the right signs (a supply `>= 0`, a borrow `<= 0`), for
    /// specs built in code rather than read.
    pub fn check_signs(&self) -> Result<(), LegError> {
        for (asset, legs) in &self.balances {
            legs.check_signs().map_err(|(side, value)| LegError::WrongSign {
                account: self.id.clone(),
                asset: asset.clone(),
                side,
                value,
            })?;
        }
        Ok(())
    }

    /// The non-zero legs as (symbol, signed balance), by symbol, the supply first.
    pub fn legs(&self) -> impl Iterator<Item = (&str, Decimal)> + '_ {
        self.balances.iter().flat_map(|(s, l)| l.iter().map(move |b| (s.as_str(), b)))
    }
}

impl AssetTable {
    /// Compiles an account into datapath terms `c = floor(b * w / q)`, one per non-zero leg
    /// (each weighted by its own side's weight), sorted by asset index with an asset's positive
    /// leg before its negative one. Zero legs, and positive ones that round to zero, are left
    /// out. At most [`MAX_SOFTWARE_TERMS`] terms; the host keeps terms the card cannot hold
    /// (see `liqscan_hdl::abi::card_holds`) on the software engine.
    pub fn compile(&self, account: &AccountSpec) -> Result<Vec<Coeff>, CompileError> {
        let mut terms = Vec::with_capacity(account.balances.len());
        for (symbol, legs) in &account.balances {
            let asset_err =
                |source| CompileError::Asset { account: account.id.clone(), source: Box::new(source) };
            let index = self.index_of(symbol).map_err(asset_err)?;
            let spec = self.get(index).expect("indexed");
            if let Err((side, value)) = legs.check_signs() {
                return Err(CompileError::WrongSign {
                    account: account.id.clone(),
                    asset: symbol.clone(),
                    side,
                    value,
                });
            }
            for balance in [legs.supply, legs.borrow] {
                if balance.normalized().scale() > spec.decimals {
                    return Err(CompileError::TooPrecise {
                        account: account.id.clone(),
                        asset: symbol.clone(),
                        balance,
                        decimals: spec.decimals,
                    });
                }
            }
            if legs.is_zero() {
                continue;
            }
            for balance in legs.iter() {
                terms.extend(self.compile_leg(&account.id, &account.tier, index, balance)?);
            }
        }
        if terms.len() > MAX_SOFTWARE_TERMS {
            return Err(CompileError::TooManyTerms { account: account.id.clone(), count: terms.len() });
        }
        terms.sort_by_key(|t| (t.asset, t.coeff < 0));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::venues::{lending_asset, quote_asset};
    use crate::model::{AssetTable, VenueSpec};

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn table() -> AssetTable {
        AssetTable::new(
            VenueSpec::default(),
            vec![quote_asset("USDC", -2), lending_asset("ETH", -4, "0.825", "0.1")],
        )
        .unwrap()
    }

    #[test]
    fn add_balance_fills_each_side_once() {
        let mut a = AccountSpec::empty("a", DEFAULT_TIER);
        a.add_balance("ETH", d("10")).unwrap();
        a.add_balance("ETH", d("0")).unwrap();
        a.add_balance("ETH", d("-4")).unwrap();
        assert_eq!(a.balances["ETH"], Legs { supply: d("10"), borrow: d("-4") });
        let e = a.add_balance("ETH", d("1")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "account 'a' has a supply (positive balance) of 'ETH' already; merge the two into one"
        );
        let e = a.add_balance("ETH", d("-1")).unwrap_err();
        assert!(e.to_string().contains("borrow (negative balance) of 'ETH'"), "{e}");
        assert_eq!(
            a.balances["ETH"],
            Legs { supply: d("10"), borrow: d("-4") },
            "a refused row changes nothing"
        );
        a.add_balance("BTC", d("0")).unwrap();
        assert!(!a.balances.contains_key("BTC"), "a zero row adds no asset");
    }

    #[test]
    fn compiles_each_leg_with_its_own_weight_positive_first() {
        let t = table();
        let a = AccountSpec::new("a", &[("ETH", "-4"), ("USDC", "-100"), ("ETH", "10"), ("USDC", "5")]);
        // ETH supply 10 * 0.825 = 8.25 -> 82,500 quanta of 1e-4; borrow 4 * 1 -> -40,000.
        assert_eq!(
            t.compile(&a).unwrap(),
            vec![
                Coeff { asset: 0, coeff: 500 },
                Coeff { asset: 0, coeff: -10_000 },
                Coeff { asset: 1, coeff: 82_500 },
                Coeff { asset: 1, coeff: -40_000 },
            ]
        );
        let terms = t.compile(&a).unwrap();
        liqscan_hdl::abi::check_terms_software(&terms, t.len()).unwrap();
        assert!(!liqscan_hdl::abi::card_holds(&terms));
    }

    #[test]
    fn compile_refuses_wrong_signs_and_more_than_64_terms() {
        let t = table();
        let mut a = AccountSpec::empty("a", DEFAULT_TIER);
        a.balances.insert("ETH".into(), Legs { supply: d("-1"), borrow: Decimal::ZERO });
        let e = t.compile(&a).unwrap_err().to_string();
        assert!(e.contains("supply (positive balance) of 'ETH' is -1"), "{e}");
        assert!(a.check_signs().is_err());

        let assets: Vec<_> = (0..40).map(|i| lending_asset(&format!("A{i}"), -4, "0.9", "0")).collect();
        let t = AssetTable::new(VenueSpec::default(), assets).unwrap();
        let mut a = AccountSpec::empty("big", DEFAULT_TIER);
        for i in 0..32 {
            a.add_balance(&format!("A{i}"), d("1")).unwrap();
            a.add_balance(&format!("A{i}"), d("-1")).unwrap();
        }
        assert_eq!(t.compile(&a).unwrap().len(), 64);
        a.add_balance("A39", d("1")).unwrap();
        let e = t.compile(&a).unwrap_err();
        assert_eq!(e, CompileError::TooManyTerms { account: "big".into(), count: 65 });
        assert!(e.to_string().contains("at most 64 fit the software engine (16 the card)"), "{e}");
    }

    #[test]
    fn reads_and_writes_both_forms_in_json_and_toml() {
        let json = r#"{"id":"a","balances":{"ETH":{"supply":"10","borrow":"-4"},"USDC":-100,"BTC":"0.5"}}"#;
        let a: AccountSpec = serde_json::from_str(json).unwrap();
        assert_eq!(a.tier, DEFAULT_TIER);
        assert_eq!(a.balances["ETH"], Legs { supply: d("10"), borrow: d("-4") });
        assert_eq!(a.balances["USDC"], Legs { supply: Decimal::ZERO, borrow: d("-100") });
        assert_eq!(a.balances["BTC"], Legs { supply: d("0.5"), borrow: Decimal::ZERO });
        let back: AccountSpec = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
        let toml_text = toml::to_string(&a).unwrap();
        assert_eq!(toml::from_str::<AccountSpec>(&toml_text).unwrap(), a);
        let written: AccountSpec = toml::from_str(
            "id = \"a\"\nbalances = { ETH = { supply = \"10\", borrow = -4 }, USDC = -100, BTC = 0.5 }\n",
        )
        .unwrap();
        assert_eq!(written, a);
        // A one-leg asset is written as one signed decimal, as before.
        assert!(serde_json::to_string(&a).unwrap().contains(r#""USDC":"-100""#));
    }

    #[test]
    fn refuses_an_asset_twice_and_legs_with_the_wrong_sign() {
        let e = serde_json::from_str::<AccountSpec>(r#"{"id":"a7","balances":{"ETH":"10","ETH":"-5"}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("account 'a7' lists asset 'ETH' twice"), "{e}");
        for (legs, want) in [
            (r#"{"supply":"-1"}"#, "supply (positive balance) is -1"),
            (r#"{"borrow":"2"}"#, "borrow (negative balance) is 2"),
            (r#"{"supply":"1","supply":"2"}"#, "'supply' is given twice"),
            (r#"{"lend":"1"}"#, "unknown field `lend`"),
            (r#"["1","-2"]"#, "a signed decimal balance, or {supply, borrow} legs"),
        ] {
            let text = format!(r#"{{"id":"a","balances":{{"ETH":{legs}}}}}"#);
            let e = serde_json::from_str::<AccountSpec>(&text).unwrap_err().to_string();
            assert!(e.contains(want), "{legs}: {e}");
        }
        let e = toml::from_str::<AccountSpec>("id = \"a\"\nbalances = { ETH = 1, ETH = 2 }").unwrap_err();
        assert!(e.to_string().contains("duplicate key"), "{e}");
    }
}
