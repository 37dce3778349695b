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

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Format, InputError, json_line, read_text, toml_line};
use crate::model::{AssetSpec, AssetTable, VenueSpec};

/// The contents of a venue file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VenueFile {
    /// Venue settings.
    #[serde(default)]
    pub venue: VenueSpec,
    /// Assets in price-table order.
    pub assets: Vec<AssetSpec>,
}

/// Parses venue text in the given format; `path` names it in errors.
pub fn parse_venue(path: &Path, text: &str, format: Format) -> Result<AssetTable, InputError> {
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
    AssetTable::new(file.venue, file.assets).map_err(|e| InputError::file(path, e))
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
}
