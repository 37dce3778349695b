//! Venue files: settings and assets, in TOML or JSON.
//!
//! ```toml
//! [venue]
//! name = "lending"
//! value_exp = -8
//!
//! [[assets]]
//! symbol = "ETH"
//! decimals = 18
//! quantum_exp = -4
//! stress = "0.15"
//! tiers.default = { asset_weight = "0.825", liability_weight = "1" }
//! # allow_zero_price = true   # let a tick price it at 0 (refused otherwise)
//! ```
//!
//! Refused: unknown fields, an asset listed twice, a tier or field given twice (JSON keeps the
//! last of two equal keys unless told otherwise; TOML refuses them in its grammar), weights and
//! stress out of range, `value_exp` and `quantum_exp` outside [-36, 36].
//! An asset may leave out `quantum_exp` when the venue states a `price_range`: the quantum is
//! then chosen from the book ([`VenueDraft::resolve`], `model::quantum`), so such a venue is
//! read with its accounts (`io::venue_book::read_venue_and_book`); [`read_venue`] alone refuses it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Format, InputError, json_line, read_text, toml_line};
use crate::model::asset::default_decimals;
use crate::model::quantum::{self, QuantumError};
use crate::model::{AccountSpec, AssetSpec, AssetTable, Decimal, TierWeights, VenueSpec};

/// The contents of a venue file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueFile {
    /// Venue settings.
    #[serde(default)]
    pub venue: VenueSpec,
    /// Assets in price-table order.
    pub assets: Vec<AssetEntry>,
}

/// One asset as a venue file writes it: an [`AssetSpec`] whose `quantum_exp` may be left out.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetEntry {
    /// See [`AssetSpec::symbol`].
    pub symbol: String,
    /// See [`AssetSpec::decimals`].
    #[serde(default = "default_decimals")]
    pub decimals: u32,
    /// See [`AssetSpec::quantum_exp`]; `None`: chosen from the book.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantum_exp: Option<i32>,
    /// See [`AssetSpec::stress`].
    #[serde(default)]
    pub stress: Decimal,
    /// See [`AssetSpec::tiers`] (a tier named twice is refused).
    #[serde(deserialize_with = "crate::io::unique::map")]
    pub tiers: BTreeMap<String, TierWeights>,
    /// See [`AssetSpec::allow_zero_price`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_zero_price: bool,
    /// See [`AssetSpec::price_range`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_range: Option<[Decimal; 2]>,
}

/// Quantum of an asset whose quantum is still to be chosen, while the book is read: so coarse
/// that no balance overflows a coefficient, so the readers check everything else.
const PROVISIONAL_QUANTUM_EXP: i32 = 30;

/// A venue as read, before the quanta it leaves out are chosen.
#[derive(Clone, Debug)]
pub struct VenueDraft {
    /// Venue settings.
    pub venue: VenueSpec,
    /// Assets in price-table order (a provisional quantum where `auto`).
    pub assets: Vec<AssetSpec>,
    /// Which assets left `quantum_exp` out.
    pub auto: Vec<bool>,
}

impl VenueDraft {
    /// True when some asset's quantum is to be chosen from the book.
    pub fn needs_book(&self) -> bool {
        self.auto.iter().any(|&a| a)
    }

    /// A table to read the book against: checks everything but coefficient widths of the
    /// assets whose quanta are still to be chosen.
    pub fn provisional(&self) -> AssetTable {
        AssetTable::new(self.venue.clone(), self.assets.clone()).expect("checked when read")
    }

    /// Chooses the missing quanta from the book; returns the table and each chosen
    /// (symbol, quantum_exp).
    pub fn resolve(&self, book: &[AccountSpec]) -> Result<(AssetTable, Vec<(String, i32)>), QuantumError> {
        let provisional = self.provisional();
        let exposure = quantum::exposures(&provisional, book);
        let mut assets = self.assets.clone();
        let mut chosen = Vec::new();
        for (i, a) in assets.iter_mut().enumerate().filter(|(i, _)| self.auto[*i]) {
            let range = provisional
                .price_range(i as u16)
                .ok_or_else(|| QuantumError::NoPriceRange { asset: a.symbol.clone() })?;
            a.quantum_exp = quantum::choose(self.venue.value_exp, a, &exposure[i], range)?;
            chosen.push((a.symbol.clone(), a.quantum_exp));
        }
        Ok((AssetTable::new(self.venue.clone(), assets).expect("checked when read"), chosen))
    }
}

/// Parses venue text in the given format; `path` names it in errors. Every asset must give
/// its `quantum_exp` ([`parse_venue_draft`] takes venues that leave some out).
pub fn parse_venue(path: &Path, text: &str, format: Format) -> Result<AssetTable, InputError> {
    let draft = parse_venue_draft(path, text, format)?;
    if let Some(i) = draft.auto.iter().position(|&a| a) {
        return Err(InputError::file(
            path,
            format!(
                "asset '{}' has no quantum_exp; give one, or read the venue with its accounts (liqscan scan), which chooses it from the book and the venue's price_range",
                draft.assets[i].symbol
            ),
        ));
    }
    Ok(draft.provisional())
}

/// Parses venue text whose assets may leave `quantum_exp` out; `path` names it in errors.
pub fn parse_venue_draft(path: &Path, text: &str, format: Format) -> Result<VenueDraft, InputError> {
    let file: VenueFile = match format {
        Format::Toml => toml::from_str(text).map_err(|e| InputError {
            file: path.into(),
            line: toml_line(text, &e),
            problem: e.message().to_string(),
        })?,
        Format::Json => serde_json::from_str(text).map_err(|e| InputError::at(path, json_line(&e), e))?,
        _ => return Err(InputError::file(path, "a venue file must be .toml or .json")),
    };
    if file.assets.is_empty() {
        return Err(InputError::file(path, "no assets listed"));
    }
    let auto: Vec<bool> = file.assets.iter().map(|a| a.quantum_exp.is_none()).collect();
    let assets: Vec<AssetSpec> = file
        .assets
        .into_iter()
        .map(|a| AssetSpec {
            symbol: a.symbol,
            decimals: a.decimals,
            quantum_exp: a.quantum_exp.unwrap_or(PROVISIONAL_QUANTUM_EXP),
            stress: a.stress,
            tiers: a.tiers,
            allow_zero_price: a.allow_zero_price,
            price_range: a.price_range,
        })
        .collect();
    AssetTable::new(file.venue.clone(), assets.clone()).map_err(|e| InputError::file(path, e))?;
    Ok(VenueDraft { venue: file.venue, assets, auto })
}

/// Reads a venue file whose assets may leave `quantum_exp` out.
pub fn read_venue_draft(path: &Path) -> Result<VenueDraft, InputError> {
    let text = read_text(path)?;
    parse_venue_draft(path, &text, Format::of(path)?)
}

/// Reads a venue file (.toml or .json).
pub fn read_venue(path: &Path) -> Result<AssetTable, InputError> {
    let text = read_text(path)?;
    parse_venue(path, &text, Format::of(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[venue]
value_exp = -8
[[assets]]
symbol = "ETH"
quantum_exp = -4
stress = "0.1"
tiers.default = { asset_weight = "0.825", liability_weight = "1" }
[[assets]]
symbol = "USDC"
quantum_exp = -2
tiers.default = { asset_weight = "0.9", liability_weight = "1" }
"#;

    #[test]
    fn reads_toml_and_json() {
        let p = Path::new("v.toml");
        let t = parse_venue(p, GOOD, Format::Toml).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.index_of("USDC").unwrap(), 1);
        let json = r#"{"assets":[{"symbol":"BTC","quantum_exp":-6,"tiers":{"default":{"asset_weight":0.8,"liability_weight":1.05}}}]}"#;
        let t = parse_venue(Path::new("v.json"), json, Format::Json).unwrap();
        assert_eq!(t.assets()[0].tiers["default"].liability_weight, "1.05".parse().unwrap());
    }

    #[test]
    fn refuses_bad_venues_naming_the_problem() {
        let p = Path::new("v.toml");
        let e = parse_venue(p, &GOOD.replace("0.825", "1.2"), Format::Toml).unwrap_err();
        assert!(e.to_string().contains("asset_weight is 1.2, must be in [0, 1]"), "{e}");
        let e = parse_venue(p, &GOOD.replace("USDC", "ETH"), Format::Toml).unwrap_err();
        assert!(e.to_string().contains("'ETH' is listed twice"), "{e}");
        let e = parse_venue(p, &GOOD.replace("quantum_exp = -2", "quantum_exp = \"x\""), Format::Toml)
            .unwrap_err();
        assert_eq!(e.line, Some(11), "{e}");
        let e = parse_venue(p, &GOOD.replace("stress", "stres"), Format::Toml).unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = parse_venue(p, &GOOD.replace("value_exp = -8", "value_exp = 40"), Format::Toml).unwrap_err();
        assert!(e.to_string().contains("value_exp is 40; it must be in [-36, 36]"), "{e}");
        let e = parse_venue(p, &GOOD.replace("quantum_exp = -2", "quantum_exp = -2147483648"), Format::Toml)
            .unwrap_err();
        assert!(e.to_string().contains("'USDC' quantum_exp is -2147483648; it must be in"), "{e}");
    }

    #[test]
    fn refuses_a_tier_given_twice() {
        // On main the JSON venue kept the last tier: weight 1 instead of 0.825, a hidden breach.
        let json = "{\"assets\":[{\"symbol\":\"ETH\",\"quantum_exp\":-4,\"tiers\":{\n\
            \"default\":{\"asset_weight\":\"0.825\",\"liability_weight\":1},\n\
            \"default\":{\"asset_weight\":1,\"liability_weight\":1}}}]}";
        let e = parse_venue(Path::new("v.json"), json, Format::Json).unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().starts_with("v.json:3: key 'default' is given twice"), "{e}");
        // The same asset twice, and a field twice, are refused too.
        let twice = json.replace("\"default\":{\"asset_weight\":1", "\"other\":{\"asset_weight\":1");
        assert!(parse_venue(Path::new("v.json"), &twice, Format::Json).is_ok());
        let e = parse_venue(
            Path::new("v.json"),
            &twice.replace("\"quantum_exp\":-4", "\"quantum_exp\":-4,\"quantum_exp\":-2"),
            Format::Json,
        )
        .unwrap_err();
        assert!(e.to_string().contains("duplicate field `quantum_exp`"), "{e}");
        // TOML refuses it in its grammar, naming the line.
        let toml = GOOD.replace(
            "tiers.default = { asset_weight = \"0.825\", liability_weight = \"1\" }",
            "tiers.default = { asset_weight = \"0.825\", liability_weight = \"1\" }\ntiers.default = { asset_weight = \"1\", liability_weight = \"1\" }",
        );
        let e = parse_venue(p_toml(), &toml, Format::Toml).unwrap_err();
        assert_eq!(e.line, Some(9), "{e}");
        assert!(e.problem.contains("duplicate key"), "{e}");
    }

    fn p_toml() -> &'static Path {
        Path::new("v.toml")
    }

    #[test]
    fn a_venue_with_ranges_and_a_missing_quantum_round_trips() {
        let text = GOOD
            .replace("value_exp = -8", "value_exp = -8\nprice_range = [\"0.01\", \"100000\"]")
            .replace("quantum_exp = -4\n", "");
        let p = Path::new("v.toml");
        let file: VenueFile = toml::from_str(&text).unwrap();
        assert_eq!(file.assets[0].quantum_exp, None);
        assert_eq!(file.venue.price_range, Some(["0.01".parse().unwrap(), "100000".parse().unwrap()]));
        for (again, format) in [
            (toml::to_string(&file).unwrap(), Format::Toml),
            (serde_json::to_string(&file).unwrap(), Format::Json),
        ] {
            let d = parse_venue_draft(p, &again, format).unwrap();
            assert_eq!(d.auto, vec![true, false]);
            assert_eq!(d.venue, file.venue);
            assert_eq!(d.assets[1].quantum_exp, -2);
        }
    }
}
