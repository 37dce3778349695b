//! Sweeps: one base scenario, a grid of overrides, a table and heat maps of bad debt.
//!
//! A sweep file names a scenario file and up to three axes; each axis sets one field of the
//! scenario, named by its dotted path in the scenario's TOML (`oracle.delay_secs`,
//! `assets.ETH.tiers.default.asset_weight`, `liquidation.mechanism`), to each of its values.
//! Every combination is one run. The first axis runs across the heat map, the second down it,
//! and each value of a third axis gets its own heat map.
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

use crate::report::Report;
use crate::scenario::{Scenario, ScenarioError};

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
}

/// One run of the grid.
#[derive(Clone, Debug, Serialize)]
pub struct SweepRow {
    /// The axis values, as text, in axis order.
    pub values: Vec<String>,
    /// Bad debt, quote units.
    pub bad_debt_usd: f64,
    /// Of which the fund absorbed.
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

/// The result of a sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepResult {
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

fn set_field(root: &mut toml::Table, field: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = field.split('.').collect();
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
    for (k, v) in &sweep.set {
        set_field(&mut base, k, v.clone()).map_err(|what| SweepError::Field {
            path: sweep_path.to_path_buf(),
            field: k.clone(),
            what,
        })?;
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
            set_field(&mut t, &a.field, v).map_err(|what| SweepError::Field {
                path: sweep_path.to_path_buf(),
                field: a.field.clone(),
                what,
            })?;
        }
        let point = sweep
            .axis
            .iter()
            .zip(&values)
            .map(|(a, v)| format!("{}={v}", a.field))
            .collect::<Vec<_>>()
            .join(", ");
        let text = toml::to_string(&t).expect("a TOML table serialises");
        let scn = Scenario::parse(&text, &scenario_path)
            .map_err(|source| SweepError::Scenario { point: point.clone(), source: Box::new(source) })?;
        quote = scn.quote.clone();
        let report: Report = crate::run::run(scn, &scenario_dir, &mut |_, _| {})
            .map_err(|source| SweepError::Run { point: point.clone(), source: Box::new(source) })?;
        let l = &report.liquidations;
        rows.push(SweepRow {
            values,
            bad_debt_usd: report.bad_debt.total_usd,
            absorbed_usd: report.bad_debt.absorbed_usd,
            socialised_usd: report.bad_debt.socialised_usd,
            liquidations: l.direct + l.kicks,
            repaid_usd: l.repaid_usd,
            fund_final_usd: report.insurance_fund.final_usd,
            saved_by_partial: l.saved_by_partial,
        });
        progress(n + 1, total, &point);
    }
    Ok(SweepResult {
        axes: sweep.axis.iter().map(|a| a.label.clone().unwrap_or_else(|| a.field.clone())).collect(),
        values: sweep.axis.iter().map(|a| a.values.iter().map(text).collect()).collect(),
        rows,
        quote,
    })
}

impl SweepResult {
    /// The table as CSV.
    pub fn csv(&self) -> String {
        let mut s = self.axes.join(",");
        s.push_str(",bad_debt_usd,absorbed_usd,socialised_usd,liquidations,repaid_usd,fund_final_usd,saved_by_partial\n");
        for r in &self.rows {
            s.push_str(&format!(
                "{},{:.2},{:.2},{:.2},{},{:.2},{:.2},{}\n",
                r.values.join(","),
                r.bad_debt_usd,
                r.absorbed_usd,
                r.socialised_usd,
                r.liquidations,
                r.repaid_usd,
                r.fund_final_usd,
                r.saved_by_partial
            ));
        }
        s
    }

    /// The table as aligned text.
    pub fn table(&self) -> String {
        let mut head: Vec<String> = self.axes.clone();
        head.extend(["bad debt $", "fund $", "socialised $", "liquidations", "saved"].map(String::from));
        let body: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                let mut v = r.values.clone();
                v.push(format!("{:.0}", r.bad_debt_usd));
                v.push(format!("{:.0}", r.absorbed_usd));
                v.push(format!("{:.0}", r.socialised_usd));
                v.push(r.liquidations.to_string());
                v.push(r.saved_by_partial.to_string());
                v
            })
            .collect();
        let widths: Vec<usize> = (0..head.len())
            .map(|c| body.iter().map(|r| r[c].len()).chain([head[c].len()]).max().unwrap_or(0))
            .collect();
        let line = |cells: &[String]| {
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect::<Vec<_>>().join("  ") + "\n"
        };
        let mut s = line(&head);
        for r in &body {
            s.push_str(&line(r));
        }
        s
    }

    /// Heat maps of bad debt: (file name, SVG). First axis across, second down (or a single
    /// row), one map per value of the third axis.
    pub fn heat_maps(&self) -> Vec<(String, String)> {
        let nx = self.values[0].len();
        let ny = self.values.get(1).map_or(1, |v| v.len());
        let nz = self.values.get(2).map_or(1, |v| v.len());
        let mut out = Vec::new();
        for z in 0..nz {
            let cells: Vec<Vec<f64>> = (0..ny)
                .map(|y| (0..nx).map(|x| self.rows[(x * ny + y) * nz + z].bad_debt_usd).collect())
                .collect();
            let rows: Vec<String> = self.values.get(1).cloned().unwrap_or_else(|| vec![String::new()]);
            let (title, name) = match self.values.get(2) {
                Some(v) => (
                    format!("bad debt ({}), {} = {}", self.quote, self.axes[2], v[z]),
                    format!(
                        "bad_debt_heatmap_{}.svg",
                        v[z].replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "_")
                    ),
                ),
                None => (format!("bad debt ({})", self.quote), "bad_debt_heatmap.svg".to_string()),
            };
            let y_label = self.axes.get(1).cloned().unwrap_or_default();
            out.push((
                name,
                crate::plot::heat_map(&title, &self.axes[0], &y_label, &self.values[0], &rows, &cells),
            ));
        }
        out
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
    }

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
