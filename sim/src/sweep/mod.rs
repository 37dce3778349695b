//! Sweeps: one base scenario, a grid of overrides, a table and heat maps of bad debt.
//!
//! A sweep file names a scenario file and up to three axes; each axis sets one field of the
//! scenario, named by its dotted path in the scenario's TOML (`oracle.delay_secs`,
//! `assets.ETH.tiers.default.asset_weight`, `liquidation.mechanism`), to each of its values.
//! Every combination is one run. The first axis runs across the heat map, the second down it,
//! and each value of a third axis gets its own heat map.
//!
//! The base may be a lending or a perpetual scenario (`[perp]`: axes such as
//! `perp.liquidation.chunk_ppm`, `perp.liquidation.backstop`, `perp.fund_usd`, `perp.mmr_scale`);
//! for perpetuals bad debt is the shortfall nobody paid, beside the shortfall, fund, ADL and
//! vault columns ([`PerpFigures`]). Every key is checked against the base before any run
//! (`keys.rs`).
//!
//! ```toml
//! scenario = "black-thursday.toml"
//! [set]                      # applied to every run
//! "population.accounts" = 2000
//! [[axis]]
//! field = "assets.ETH.tiers.default.asset_weight"
//! values = ["0.75", "0.8", "0.85"]
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::perp::report::PerpReport;
use crate::report::Report;
use crate::scenario::ScenarioError;

mod keys;
mod output;

pub use keys::Kind;
use keys::{Parsed, check_key, set_field};

/// Most runs a sweep may ask for (each is a whole simulation).
pub const MAX_POINTS: usize = 10_000;

/// One axis of the grid.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// Dotted path of the field.
    pub field: String,
    /// Label for tables and plots (defaults to the field).
    pub label: Option<String>,
    /// Values, as they would be written in the scenario.
    pub values: Vec<toml::Value>,
}

/// A sweep file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// The base scenario, relative to the sweep file.
    pub scenario: PathBuf,
    /// Overrides for every run.
    #[serde(default)]
    pub set: toml::Table,
    /// Axes (one to three).
    pub axis: Vec<Axis>,
}

/// Why a sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Reading or parsing the sweep file.
    #[error("sweep {path}: {what}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: String,
    },
    /// An override names a field that is not a table path in the scenario.
    #[error("sweep {path}: field '{field}': {what}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The field.
        field: String,
        /// What went wrong.
        what: String,
    },
    /// The scenario with a grid point's overrides is invalid.
    #[error("sweep point {point}: {source}")]
    Scenario {
        /// The overrides, as text.
        point: String,
        /// The scenario error.
        source: Box<ScenarioError>,
    },
    /// A run failed.
    #[error("sweep point {point}: {source}")]
    Run {
        /// The overrides, as text.
        point: String,
        /// The run error.
        source: Box<crate::run::SimError>,
    },
    /// A perpetual run failed.
    #[error("sweep point {point}: {source}")]
    PerpRun {
        /// The overrides, as text.
        point: String,
        /// The run error.
        source: Box<crate::perp::run::PerpRunError>,
    },
    /// A perpetual run's ledger was not conserved (a bug in the venue, never a result).
    #[error("sweep point {point}: ledger not conserved {what}")]
    NotConserved {
        /// The overrides, as text.
        point: String,
        /// The first failed check.
        what: String,
    },
}

/// One run of the grid.
#[derive(Clone, Debug, Serialize)]
pub struct SweepRow {
    /// The axis values, as text, in axis order.
    pub values: Vec<String>,
    /// Bad debt, quote units: for lending the whole of it (fund and socialised); for
    /// perpetuals the shortfall nobody paid (left as negative balances).
    pub bad_debt_usd: f64,
    /// The run's other figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// A run's figures besides bad debt, by kind of scenario.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Figures {
    /// A lending run.
    Lending(LendingFigures),
    /// A perpetual run.
    Perpetual(PerpFigures),
}

/// A lending run's figures.
#[derive(Clone, Debug, Serialize)]
pub struct LendingFigures {
    /// Of the bad debt, what the fund absorbed.
    pub absorbed_usd: f64,
    /// Of which was socialised.
    pub socialised_usd: f64,
    /// Liquidations (direct orders or kicks).
    pub liquidations: u64,
    /// Debt repaid by liquidations, quote units.
    pub repaid_usd: f64,
    /// Fund at the end, quote units.
    pub fund_final_usd: f64,
    /// Accounts saved by partial liquidation.
    pub saved_by_partial: u64,
}

/// A perpetual run's figures (the report's own values, [`crate::perp::report::PerpReport`]).
#[derive(Clone, Debug, Serialize)]
pub struct PerpFigures {
    /// Every bankrupt account's shortfall, whoever bore it (fund, ADL, vault, unpaid).
    pub shortfall_usd: f64,
    /// Of which the insurance fund paid.
    pub fund_paid_usd: f64,
    /// Auto-deleveraging events.
    pub adl_events: u64,
    /// Of the shortfall, ADL haircuts (traders and makers).
    pub adl_haircuts_usd: f64,
    /// The backstop vault's P&L at the end.
    pub vault_pnl_usd: f64,
    /// Liquidations: book orders plus backstop takeovers.
    pub liquidations: u64,
    /// Of which backstop takeovers.
    pub backstop_takeovers: u64,
    /// Notional liquidated, quote units.
    pub liquidated_usd: f64,
    /// Fund at the end.
    pub fund_final_usd: f64,
    /// Liquidations plus ADL events in the busiest simulated second.
    pub peak_events_per_sec: f64,
}

/// The result of a sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepResult {
    /// Lending or perpetual.
    pub kind: Kind,
    /// Axis labels.
    pub axes: Vec<String>,
    /// Axis values as text.
    pub values: Vec<Vec<String>>,
    /// Runs, in grid order (last axis fastest).
    pub rows: Vec<SweepRow>,
    /// The scenario's quote asset.
    pub quote: String,
}

fn text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl SweepFile {
    /// Reads a sweep file.
    pub fn load(path: &Path) -> Result<Self, SweepError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SweepError::File { path: path.to_path_buf(), what: format!("cannot read: {e}") })?;
        Self::parse(&text, path)
    }

    /// Parses and checks sweep text; `path` is for messages. A key given twice is refused
    /// (by the TOML grammar), as is a field set twice, or more than [`MAX_POINTS`] runs.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SweepError> {
        let file = |what: String| SweepError::File { path: path.to_path_buf(), what };
        let s: SweepFile = toml::from_str(text).map_err(|e| file(e.to_string()))?;
        if s.axis.is_empty() || s.axis.len() > 3 {
            return Err(file(format!("needs one to three [[axis]] tables, found {}", s.axis.len())));
        }
        if let Some(a) = s.axis.iter().find(|a| a.values.is_empty()) {
            return Err(file(format!("axis '{}' has no values", a.field)));
        }
        let points = s.axis.iter().try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
        match points {
            Some(n) if n <= MAX_POINTS => {}
            _ => {
                let sizes: Vec<String> = s.axis.iter().map(|a| a.values.len().to_string()).collect();
                return Err(file(format!(
                    "the axes ({} values) make more than {MAX_POINTS} runs; give fewer values",
                    sizes.join(" x ")
                )));
            }
        }
        // One field set twice would keep whichever comes last: refuse it, as a repeated key.
        for (i, a) in s.axis.iter().enumerate() {
            if s.axis[..i].iter().any(|b| b.field == a.field) {
                return Err(file(format!("field '{}' is on two axes", a.field)));
            }
            if s.set.contains_key(&a.field) {
                return Err(file(format!("field '{}' is both in [set] and on an axis", a.field)));
            }
        }
        Ok(s)
    }
}

/// Runs every point of the grid. `progress(done, total)` is called after each run.
///
/// Before any run, every `[set]` key and every axis value is checked against the base
/// scenario (the scenario with it must parse, validate and still hold the key), so a bad sweep
/// file is refused at once, naming the file, the key and the problem.
pub fn run_sweep(
    sweep: &SweepFile,
    sweep_path: &Path,
    progress: &mut dyn FnMut(usize, usize, &str),
) -> Result<SweepResult, SweepError> {
    let dir = sweep_path.parent().unwrap_or(Path::new("."));
    let scenario_path = crate::market::path::resolve(dir, &sweep.scenario);
    let base_text = std::fs::read_to_string(&scenario_path).map_err(|e| SweepError::File {
        path: sweep_path.to_path_buf(),
        what: format!("cannot read scenario {}: {e}", scenario_path.display()),
    })?;
    let mut base: toml::Table = toml::from_str(&base_text)
        .map_err(|e| SweepError::File { path: scenario_path.clone(), what: e.to_string() })?;
    let kind = Kind::of(&base);
    let field_error = |field: &str, what: String| SweepError::Field {
        path: sweep_path.to_path_buf(),
        field: field.into(),
        what,
    };
    for (k, v) in &sweep.set {
        let before = base.clone();
        set_field(&mut base, k, v.clone()).map_err(|what| field_error(k, what))?;
        check_key(kind, &before, &base, k, &scenario_path).map_err(|what| field_error(k, what))?;
    }
    for a in &sweep.axis {
        for v in &a.values {
            let mut t = base.clone();
            set_field(&mut t, &a.field, v.clone()).map_err(|what| field_error(&a.field, what))?;
            check_key(kind, &base, &t, &a.field, &scenario_path)
                .map_err(|what| field_error(&a.field, format!("value {v}: {what}")))?;
        }
    }
    let scenario_dir = scenario_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let dims: Vec<usize> = sweep.axis.iter().map(|a| a.values.len()).collect();
    let total: usize = dims.iter().product();
    let mut rows = Vec::with_capacity(total);
    let mut quote = String::new();
    for n in 0..total {
        let mut idx = vec![0; dims.len()];
        let mut r = n;
        for d in (0..dims.len()).rev() {
            idx[d] = r % dims[d];
            r /= dims[d];
        }
        let mut t = base.clone();
        let mut values = Vec::new();
        for (a, &i) in sweep.axis.iter().zip(&idx) {
            let v = a.values[i].clone();
            values.push(text(&v));
            set_field(&mut t, &a.field, v).map_err(|what| field_error(&a.field, what))?;
        }
        let point = sweep
            .axis
            .iter()
            .zip(&values)
            .map(|(a, v)| format!("{}={v}", a.field))
            .collect::<Vec<_>>()
            .join(", ");
        let parsed = Parsed::parse(kind, &t, &scenario_path)
            .map_err(|source| SweepError::Scenario { point: point.clone(), source: Box::new(source) })?;
        let row = match parsed {
            Parsed::Lending(scn) => {
                quote = scn.quote.clone();
                let report = crate::run::run(*scn, &scenario_dir, &mut |_, _| {})
                    .map_err(|source| SweepError::Run { point: point.clone(), source: Box::new(source) })?;
                lending_row(values, &report)
            }
            Parsed::Perpetual(scn) => {
                quote = "USD".into();
                let report =
                    crate::perp::run::run_perp(&scn, &scenario_dir, &mut |_, _| {}).map_err(|source| {
                        SweepError::PerpRun { point: point.clone(), source: Box::new(source) }
                    })?;
                if let Some(what) = &report.conservation_error {
                    return Err(SweepError::NotConserved { point, what: what.clone() });
                }
                perp_row(values, &report)
            }
        };
        rows.push(row);
        progress(n + 1, total, &point);
    }
    Ok(SweepResult {
        kind,
        axes: sweep.axis.iter().map(|a| a.label.clone().unwrap_or_else(|| a.field.clone())).collect(),
        values: sweep.axis.iter().map(|a| a.values.iter().map(text).collect()).collect(),
        rows,
        quote,
    })
}

fn lending_row(values: Vec<String>, report: &Report) -> SweepRow {
    let l = &report.liquidations;
    SweepRow {
        values,
        bad_debt_usd: report.bad_debt.total_usd,
        figures: Figures::Lending(LendingFigures {
            absorbed_usd: report.bad_debt.absorbed_usd,
            socialised_usd: report.bad_debt.socialised_usd,
            liquidations: l.direct + l.kicks,
            repaid_usd: l.repaid_usd,
            fund_final_usd: report.insurance_fund.final_usd,
            saved_by_partial: l.saved_by_partial,
        }),
    }
}

/// A perpetual run's row: every figure is the report's own.
pub fn perp_row(values: Vec<String>, r: &PerpReport) -> SweepRow {
    let usd = |q: i128| q as f64 / crate::perp::QUANTA_PER_UNIT as f64;
    let b = &r.bad_debt;
    SweepRow {
        values,
        bad_debt_usd: usd(b.unpaid),
        figures: Figures::Perpetual(PerpFigures {
            shortfall_usd: usd(b.total()),
            fund_paid_usd: usd(b.fund),
            adl_events: r.adl_events,
            adl_haircuts_usd: usd(b.adl_traders + b.adl_makers),
            vault_pnl_usd: r.vault_pnl_usd,
            liquidations: r.book_fills + r.backstop_takeovers,
            backstop_takeovers: r.backstop_takeovers,
            liquidated_usd: r.liquidated_usd,
            fund_final_usd: r.fund_end_usd,
            peak_events_per_sec: r.peak_events_per_sec,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_fields_set_twice_and_huge_grids() {
        let p = Path::new("s.toml");
        let ok = "scenario = \"b.toml\"\n[[axis]]\nfield = \"oracle.delay_secs\"\nvalues = [0, 60]\n";
        assert!(SweepFile::parse(ok, p).is_ok());
        let twice = format!("{ok}[[axis]]\nfield = \"oracle.delay_secs\"\nvalues = [1]\n");
        let e = SweepFile::parse(&twice, p).unwrap_err().to_string();
        assert!(e.contains("field 'oracle.delay_secs' is on two axes"), "{e}");
        let set = format!("{ok}[set]\n\"oracle.delay_secs\" = 5\n");
        let e = SweepFile::parse(&set, p).unwrap_err().to_string();
        assert!(e.contains("both in [set] and on an axis"), "{e}");
        let dup = format!("{ok}[set]\n\"population.accounts\" = 5\n\"population.accounts\" = 6\n");
        let e = SweepFile::parse(&dup, p).unwrap_err().to_string();
        assert!(e.contains("duplicate key"), "{e}");
        let values = vec!["1"; 101].join(",");
        let huge = format!(
            "scenario = \"b.toml\"\n{}",
            ["a", "b", "c"].map(|f| format!("[[axis]]\nfield = \"{f}\"\nvalues = [{values}]\n")).concat()
        );
        let e = SweepFile::parse(&huge, p).unwrap_err().to_string();
        assert!(e.contains("(101 x 101 x 101 values) make more than 10000 runs"), "{e}");
    }
}
