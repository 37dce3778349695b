//! Setting and checking the dotted keys a sweep overrides.
//!
//! A key is accepted when the scenario with it set parses and validates, and the parsed
//! scenario, written back to TOML, still holds the key (so a key the schema would drop is
//! refused too). A refusal says which part of the path the scenario does not have.

use std::path::Path;

use crate::perp::scenario::PerpScenario;
use crate::scenario::{Scenario, ScenarioError};

/// The two kinds of scenario a sweep can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The lending venue (`[assets]`, `[liquidation]`, ...).
    Lending,
    /// The perpetual venue (`[perp]`).
    Perpetual,
}

impl Kind {
    /// The kind of a scenario table.
    pub fn of(t: &toml::Table) -> Self {
        if PerpScenario::is_perp_table(t) { Kind::Perpetual } else { Kind::Lending }
    }

    /// In words, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Lending => "lending",
            Kind::Perpetual => "perpetual",
        }
    }
}

/// A parsed scenario of either kind.
pub enum Parsed {
    /// Lending.
    Lending(Box<Scenario>),
    /// Perpetual.
    Perpetual(Box<PerpScenario>),
}

impl Parsed {
    /// Parses and validates a scenario table of `kind`; `path` is for messages.
    pub fn parse(kind: Kind, t: &toml::Table, path: &Path) -> Result<Self, ScenarioError> {
        let text = toml::to_string(t).expect("a TOML table serialises");
        Ok(match kind {
            Kind::Lending => Parsed::Lending(Box::new(Scenario::parse(&text, path)?)),
            Kind::Perpetual => Parsed::Perpetual(Box::new(PerpScenario::parse(&text, path)?)),
        })
    }

    /// The scenario written back as a table, every default filled in (None if it does not
    /// serialise to TOML).
    fn table(&self) -> Option<toml::Table> {
        match self {
            Parsed::Lending(s) => toml::Table::try_from(s.as_ref()).ok(),
            Parsed::Perpetual(s) => toml::Table::try_from(s.as_ref()).ok(),
        }
    }
}

/// Sets `field` (a dotted path) to `value`, making the tables on the way.
pub fn set_field(root: &mut toml::Table, field: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = field.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("is not a dotted path of keys (an empty part)".into());
    }
    let mut t = root;
    for p in &parts[..parts.len() - 1] {
        t = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("'{p}' is not a table"))?;
    }
    t.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Where the path leaves `t`: the first part not found, under what, and the keys there.
fn missing(t: &toml::Table, field: &str) -> Option<String> {
    let mut cur = t;
    let mut prefix = String::new();
    for p in field.split('.') {
        let there = || cur.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
        let under = if prefix.is_empty() { "the top level".to_string() } else { format!("'{prefix}'") };
        match cur.get(p) {
            None => return Some(format!("no key '{p}' under {under} (keys there: {})", there())),
            Some(toml::Value::Table(next)) => cur = next,
            Some(_) => return None, // a value: the path ends here or goes into an array/value
        }
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(p);
    }
    None
}

/// The problem of a scenario error without the file (the caller names it) and, for a TOML
/// schema error, without the line of generated text it points at.
fn problem(e: &ScenarioError) -> String {
    match e {
        ScenarioError::Parse { source, .. } => source.message().to_string(),
        ScenarioError::Invalid { field, what, .. } => format!("field '{field}': {what}"),
        ScenarioError::Read { source, .. } => source.to_string(),
    }
}

/// Checks that `t`, which has `field` set, is a valid scenario of `kind` that holds `field`;
/// `before` is the table without it (for saying which part of the path is unknown) and
/// `scenario` the base file, for messages.
pub fn check_key(
    kind: Kind,
    before: &toml::Table,
    t: &toml::Table,
    field: &str,
    scenario: &Path,
) -> Result<(), String> {
    let in_file = format!("{} scenario {}", kind.name(), scenario.display());
    match Parsed::parse(kind, t, scenario) {
        Ok(p) => match p.table().and_then(|full| missing(&full, field)) {
            Some(m) => Err(format!("not a key of the {in_file}: {m}; the value would be ignored")),
            None => Ok(()),
        },
        Err(e) => {
            let full = Parsed::parse(kind, before, scenario).ok().and_then(|p| p.table());
            match full.as_ref().and_then(|f| missing(f, field)) {
                Some(m) => Err(format!("not a key of the {in_file}: {m}: {}", problem(&e))),
                None => Err(format!("the {in_file} with it is refused: {}", problem(&e))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_fields_set_nested_values() {
        let mut t: toml::Table =
            toml::from_str("[oracle]\ndelay_secs = 1\n[assets.ETH.tiers.default]\nasset_weight = \"0.8\"")
                .unwrap();
        set_field(&mut t, "oracle.delay_secs", toml::Value::Integer(60)).unwrap();
        set_field(&mut t, "assets.ETH.tiers.default.asset_weight", toml::Value::String("0.7".into()))
            .unwrap();
        assert_eq!(t["oracle"]["delay_secs"].as_integer(), Some(60));
        assert_eq!(t["assets"]["ETH"]["tiers"]["default"]["asset_weight"].as_str(), Some("0.7"));
        assert!(set_field(&mut t, "oracle.delay_secs.x", toml::Value::Integer(1)).is_err());
        assert!(set_field(&mut t, "oracle..x", toml::Value::Integer(1)).is_err());
    }

    const PERP: &str = include_str!("../../../scenarios/perp-flash-crash.toml");

    fn check(field: &str, v: toml::Value) -> Result<(), String> {
        let base: toml::Table = toml::from_str(PERP).unwrap();
        let mut t = base.clone();
        set_field(&mut t, field, v)?;
        check_key(Kind::Perpetual, &base, &t, field, Path::new("dir/p.toml"))
    }

    #[test]
    fn perpetual_keys_are_checked_against_the_schema() {
        use toml::Value::{Boolean, Float, Integer, String as S};
        // Keys in the file, keys left to their defaults, and an optional section.
        check("perp.liquidation.chunk_ppm", Integer(500_000)).unwrap();
        check("perp.liquidation.backstop", Boolean(false)).unwrap();
        check("perp.mmr_scale", Float(2.0)).unwrap();
        check("perp.markets.BTC.tiers", S("flat:10000".into())).unwrap();
        check("perp.keeper.latency_secs", Float(1.0)).unwrap();
        // A misspelt key, a market the scenario does not list, a value out of range, a key
        // under a value.
        let e = check("perp.liquidation.chunk_pm", Integer(5)).unwrap_err();
        assert!(
            e.contains("not a key of the perpetual scenario dir/p.toml")
                && e.contains("no key 'chunk_pm' under 'perp.liquidation'")
                && e.contains("chunk_ppm"),
            "{e}"
        );
        let e = check("perp.markets.DOGE.depth_usd_per_pct", Float(1e6)).unwrap_err();
        assert!(e.contains("no key 'DOGE' under 'perp.markets' (keys there: ALT, BTC, ETH)"), "{e}");
        let e = check("perp.liquidation.chunk_ppm", Integer(2_000_000)).unwrap_err();
        assert!(
            e.contains("is refused: field 'perp.liquidation.chunk_ppm'") && e.contains("[0, 1000000]"),
            "{e}"
        );
        let e = check("perp.fund_usd.x", Integer(1)).unwrap_err();
        assert!(e.contains("'fund_usd' is not a table"), "{e}");
        let e = check("perp.liquidation.backstop", S("yes".into())).unwrap_err();
        assert!(e.contains("is refused") && e.contains("bool"), "{e}");
    }
}
