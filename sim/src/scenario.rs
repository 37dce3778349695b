//! Scenario files: everything a run needs, in TOML. See `docs/SIMULATOR.md` for the reference
//! and `scenarios/` for examples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use liqscan_host::model::{Decimal, TierWeights};
use serde::{Deserialize, Serialize};

use crate::market::{OracleConfig, PathSpec};
use crate::population::{ActivityConfig, PopulationConfig};
use crate::venue::{DepthModel, LiquidationRules};

/// One asset of the scenario (its symbol is the table key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetSection {
    /// Coefficient quantum `10^quantum_exp` whole units (see the risk model).
    pub quantum_exp: i32,
    /// Stress fraction for the at-risk list.
    #[serde(default)]
    pub stress: Decimal,
    /// Weights by tier (asset_weight is the liquidation threshold of a collateral).
    pub tiers: BTreeMap<String, TierWeights>,
    /// Price path.
    pub price: PathSpec,
    /// Market liquidity (omit for a market no liquidation moves, e.g. the quote asset).
    pub depth: Option<DepthModel>,
}

/// The keeper: latency and dispatch rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeeperConfig {
    /// Fixed part of the time from the scan's breach to the order landing at the venue, ms.
    pub latency_ms: f64,
    /// Mean of an exponential extra delay, ms.
    pub jitter_ms: f64,
    /// Time saved by an order pre-built from the at-risk list, ms.
    pub prebuilt_saving_ms: f64,
    /// Use the at-risk list to pre-build orders.
    pub predictive: bool,
    /// Most orders pending.
    pub max_in_flight: usize,
    /// Time-out of an order, seconds.
    pub timeout_secs: f64,
    /// Most sends of one order.
    pub max_attempts: u32,
    /// Health factor the keeper's partial liquidations aim for.
    pub target_hf: f64,
}

impl Default for KeeperConfig {
    fn default() -> Self {
        KeeperConfig {
            latency_ms: 2_000.0,
            jitter_ms: 1_000.0,
            prebuilt_saving_ms: 1_000.0,
            predictive: true,
            max_in_flight: 256,
            timeout_secs: 30.0,
            max_attempts: 3,
            target_hf: 1.05,
        }
    }
}

/// The insurance fund.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InsuranceConfig {
    /// Starting balance, quote units.
    pub initial_usd: f64,
}

impl Default for InsuranceConfig {
    fn default() -> Self {
        InsuranceConfig { initial_usd: 1_000_000.0 }
    }
}

/// Thresholds that move with realised volatility (the documented rule in `docs/SIMULATOR.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamicConfig {
    /// Off by default.
    pub enabled: bool,
    /// Window of the realised volatility, seconds.
    pub window_secs: f64,
    /// Seconds between updates.
    pub update_secs: f64,
    /// Length of the returns the volatility is measured on, seconds (non-overlapping, on the
    /// oracle's published price). Not the step: a path interpolated between bars has almost no
    /// variance at one step.
    pub return_secs: f64,
    /// Volatility per square-root day at and under which the base weights hold.
    pub ref_vol_day: f64,
    /// Lowest multiplier of a base asset weight.
    pub floor: f64,
    /// At-risk stress = max(base stress, z * vol_day * sqrt(horizon / 1 day)).
    pub stress_z: f64,
    /// Horizon of the at-risk stress, seconds.
    pub horizon_secs: f64,
}

impl Default for DynamicConfig {
    fn default() -> Self {
        DynamicConfig {
            enabled: false,
            window_secs: 3_600.0,
            update_secs: 600.0,
            return_secs: 300.0,
            ref_vol_day: 0.05,
            floor: 0.85,
            stress_z: 3.0,
            horizon_secs: 900.0,
        }
    }
}

/// What to record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Seconds between samples of the series (prices, fund, health distribution).
    pub sample_secs: f64,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig { sample_secs: 300.0 }
    }
}

/// A scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name shown in reports.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every random stream.
    pub seed: u64,
    /// Simulated time, seconds.
    pub duration_secs: f64,
    /// Seconds per step (market tick, oracle check, scan).
    #[serde(default = "one")]
    pub step_secs: f64,
    /// The quote asset (debt and fund currency; its price should be fixed at 1).
    pub quote: String,
    /// Value quantum exponent of the integer model.
    #[serde(default = "value_exp")]
    pub value_exp: i32,
    /// Assets by symbol.
    pub assets: BTreeMap<String, AssetSection>,
    /// Oracle.
    #[serde(default)]
    pub oracle: OracleConfig,
    /// Accounts at the start.
    pub population: PopulationConfig,
    /// Accounts' activity during the run.
    #[serde(default)]
    pub activity: ActivityConfig,
    /// Venue rules.
    #[serde(default)]
    pub liquidation: LiquidationRules,
    /// Keeper.
    #[serde(default)]
    pub keeper: KeeperConfig,
    /// Insurance fund.
    #[serde(default)]
    pub insurance: InsuranceConfig,
    /// Volatility-dependent thresholds.
    #[serde(default)]
    pub dynamic: DynamicConfig,
    /// Recording.
    #[serde(default)]
    pub report: ReportConfig,
}

fn one() -> f64 {
    1.0
}
fn value_exp() -> i32 {
    -8
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// TOML syntax or schema error (the message gives line, column and field).
    #[error("scenario {path}: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Error.
        source: toml::de::Error,
    },
    /// A value that parses but makes no sense.
    #[error("scenario {path}: field '{field}': {what}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Dotted field name.
        field: String,
        /// What is wrong.
        what: String,
    },
}

impl Scenario {
    /// Parses scenario text; `path` is for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ScenarioError> {
        let s: Scenario = toml::from_str(text)
            .map_err(|source| ScenarioError::Parse { path: path.to_path_buf(), source })?;
        s.validate(path)?;
        Ok(s)
    }

    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Checks the cross-field rules.
    pub fn validate(&self, path: &Path) -> Result<(), ScenarioError> {
        let bad = |field: &str, what: String| ScenarioError::Invalid {
            path: path.to_path_buf(),
            field: field.to_string(),
            what,
        };
        if !(self.duration_secs > 0.0 && self.step_secs > 0.0) {
            return Err(bad("duration_secs", "duration_secs and step_secs must be positive".into()));
        }
        if !self.assets.contains_key(&self.quote) {
            return Err(bad("quote", format!("'{}' is not among the assets", self.quote)));
        }
        let tiers: Vec<&String> = self.population.tiers.keys().collect();
        for (sym, a) in &self.assets {
            for t in &tiers {
                if !a.tiers.contains_key(*t) {
                    return Err(bad(&format!("assets.{sym}.tiers"), format!("no weights for tier '{t}'")));
                }
            }
        }
        for sym in self.population.collateral.keys() {
            if sym == &self.quote || !self.assets.contains_key(sym) {
                return Err(bad(
                    "population.collateral",
                    format!("'{sym}' must be a listed asset other than the quote asset"),
                ));
            }
        }
        if self.population.collateral.is_empty() {
            return Err(bad("population.collateral", "name at least one collateral asset".into()));
        }
        if !(self.population.max_ltv > 0.0 && self.population.max_ltv < 1.0) {
            return Err(bad("population.max_ltv", "must be in (0, 1)".into()));
        }
        if self.keeper.target_hf < 1.0 {
            return Err(bad("keeper.target_hf", "must be at least 1".into()));
        }
        let d = &self.dynamic;
        if d.enabled && !(d.return_secs > 0.0 && d.window_secs >= d.return_secs && d.update_secs > 0.0) {
            return Err(bad(
                "dynamic",
                "return_secs and update_secs must be positive and window_secs at least return_secs".into(),
            ));
        }
        if self.liquidation.batch.window_secs <= 0.0 || self.liquidation.dutch.step_secs <= 0.0 {
            return Err(bad("liquidation", "batch.window_secs and dutch.step_secs must be positive".into()));
        }
        Ok(())
    }
}
