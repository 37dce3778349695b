//! Scenario files: everything a run needs, in TOML. See `docs/SIMULATOR.md` for the reference
//! and `scenarios/` for examples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use liqscan_hdl::abi::MAX_ASSETS;
use liqscan_host::model::asset::MAX_EXP;
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
    /// Public figures of the real day the report prints beside the simulated ones, as the
    /// perpetual scenarios' `[[perp.calibration]]` (metrics in [`LENDING_METRICS`]).
    #[serde(default)]
    pub calibration: Vec<Calibration>,
}

pub use crate::perp::scenario::Calibration;

/// Metric names a lending `[[calibration]]` row may take, besides `low:<asset>` (the market's
/// low, quote units) and `low_pct:<asset>` (the same, % from the start): collateral seized by
/// liquidations, debt they repaid, liquidations (direct orders or auction kicks), bad debt.
pub const LENDING_METRICS: [&str; 4] = ["liquidated_usd", "repaid_usd", "liquidations", "bad_debt_usd"];

fn one() -> f64 {
    1.0
}
fn value_exp() -> i32 {
    -8
}

/// A number for messages: plain where short, with an exponent where huge or tiny.
struct Num(f64);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = self.0.abs();
        if a.is_finite() && a != 0.0 && !(1e-6..1e16).contains(&a) {
            write!(f, "{:e}", self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// The error for field `field` of the scenario file `path`.
/// Reads a scenario file of either kind: TOML into `T`, then `validate`; errors name `path`.
pub(crate) fn load_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    validate: impl FnOnce(&T, &Path) -> Result<(), ScenarioError>,
) -> Result<T, ScenarioError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ScenarioError::Read { path: path.to_path_buf(), source })?;
    parse_toml(&text, path, validate)
}

/// Parses scenario text of either kind into `T`, then `validate`; `path` is for messages.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    validate: impl FnOnce(&T, &Path) -> Result<(), ScenarioError>,
) -> Result<T, ScenarioError> {
    let s: T =
        toml::from_str(text).map_err(|source| ScenarioError::Parse { path: path.to_path_buf(), source })?;
    validate(&s, path)?;
    Ok(s)
}

pub(crate) fn invalid(path: &Path, field: &str, what: String) -> ScenarioError {
    ScenarioError::Invalid { path: path.to_path_buf(), field: field.to_string(), what }
}

/// A finite number in [lo, hi] (`open`: lo itself excluded), or an error naming the field.
pub(crate) fn check_num(
    path: &Path,
    field: &str,
    v: f64,
    lo: f64,
    hi: f64,
    open: bool,
) -> Result<(), ScenarioError> {
    let ok = v.is_finite() && v <= hi && if open { v > lo } else { v >= lo };
    if ok {
        return Ok(());
    }
    let l = if open { "(" } else { "[" };
    Err(invalid(
        path,
        field,
        format!("is {}; must be a finite number in {l}{}, {}]", Num(v), Num(lo), Num(hi)),
    ))
}

/// An integer in [lo, hi], or an error naming the field.
pub(crate) fn check_int(path: &Path, field: &str, v: u64, lo: u64, hi: u64) -> Result<(), ScenarioError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(invalid(path, field, format!("is {v}; must be in [{lo}, {hi}]")))
    }
}

/// Checks that a field's value is a finite number in a range: (field, value, low, high, low
/// excluded).
pub(crate) type RangeCheck<'a> = &'a dyn Fn(&str, f64, f64, f64, bool) -> Result<(), ScenarioError>;

/// Range checks of a price path's numbers (gbm, follow, fixed, shocks), each error naming the
/// key `f(field)`: the same for a lending asset's path and a perpetual market's.
pub(crate) fn check_path_numbers(
    p: &PathSpec,
    f: &dyn Fn(&str) -> String,
    num: RangeCheck<'_>,
    bad: &dyn Fn(&str, String) -> ScenarioError,
) -> Result<(), ScenarioError> {
    if let Some(g) = &p.gbm {
        num(&f("gbm.start"), g.start, 0.0, limits::MAX_PRICE, true)?;
        num(&f("gbm.drift_day"), g.drift_day, -limits::MAX_VOL_DAY, limits::MAX_VOL_DAY, false)?;
        num(&f("gbm.vol_day"), g.vol_day, 0.0, limits::MAX_VOL_DAY, false)?;
        num(&f("gbm.jumps_per_day"), g.jumps_per_day, 0.0, limits::MAX_JUMPS_PER_DAY, false)?;
        num(&f("gbm.jump_mean"), g.jump_mean, -limits::MAX_SIGMA, limits::MAX_SIGMA, false)?;
        num(&f("gbm.jump_std"), g.jump_std, 0.0, limits::MAX_SIGMA, false)?;
    }
    if let Some(x) = &p.follow {
        num(&f("follow.start"), x.start, 0.0, limits::MAX_PRICE, true)?;
        num(&f("follow.beta"), x.beta, -limits::MAX_BETA, limits::MAX_BETA, false)?;
        num(&f("follow.vol_day"), x.vol_day, 0.0, limits::MAX_VOL_DAY, false)?;
    }
    if let Some(x) = p.fixed {
        num(&f("fixed"), x, 0.0, limits::MAX_PRICE, true)?;
    }
    if p.shocks.len() > limits::MAX_SHOCKS {
        return Err(bad(
            &f("shocks"),
            format!("{} shocks; at most {} a path", p.shocks.len(), limits::MAX_SHOCKS),
        ));
    }
    for (i, s) in p.shocks.iter().enumerate() {
        let g = |x: &str| f(&format!("shocks[{i}].{x}"));
        num(&g("at_secs"), s.at_secs, 0.0, limits::MAX_DURATION_SECS, false)?;
        num(&g("drop"), s.drop, 0.0, 1.0, false)?;
        num(&g("fall_secs"), s.fall_secs, 0.0, limits::MAX_DURATION_SECS, false)?;
        num(&g("recover"), s.recover, 0.0, 1.0, false)?;
        num(&g("recover_secs"), s.recover_secs, 0.0, limits::MAX_DURATION_SECS, false)?;
    }
    Ok(())
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
        parse_toml(text, path, Self::validate)
    }

    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        load_toml(path, Self::validate)
    }

    /// Checks every number against its range and the cross-field rules, and that the run's
    /// memory (account slots and price paths) fits this machine, before anything is allocated.
    pub fn validate(&self, path: &Path) -> Result<(), ScenarioError> {
        let bad = |field: &str, what: String| invalid(path, field, what);
        let num = |field: &str, v: f64, lo: f64, hi: f64, open: bool| check_num(path, field, v, lo, hi, open);
        let int = |field: &str, v: u64, lo: u64, hi: u64| check_int(path, field, v, lo, hi);
        num("duration_secs", self.duration_secs, 0.0, limits::MAX_DURATION_SECS, true)?;
        num("step_secs", self.step_secs, limits::MIN_STEP_SECS, self.duration_secs, false)?;
        let steps = (self.duration_secs / self.step_secs).ceil();
        if steps > limits::MAX_STEPS as f64 {
            return Err(bad(
                "step_secs",
                format!(
                    "duration_secs / step_secs is {steps} steps; at most {} are allowed (make step_secs larger)",
                    limits::MAX_STEPS
                ),
            ));
        }
        if self.value_exp.unsigned_abs() > MAX_EXP as u32 {
            return Err(bad(
                "value_exp",
                format!("is {}; must be in [-{MAX_EXP}, {MAX_EXP}]", self.value_exp),
            ));
        }
        if self.assets.is_empty() || self.assets.len() > MAX_ASSETS {
            return Err(bad(
                "assets",
                format!("{} assets listed; give 1 to {MAX_ASSETS}", self.assets.len()),
            ));
        }
        if !self.assets.contains_key(&self.quote) {
            return Err(bad("quote", format!("'{}' is not among the assets", self.quote)));
        }
        let tiers: Vec<&String> = self.population.tiers.keys().collect();
        for (sym, a) in &self.assets {
            let f = |x: &str| format!("assets.{sym}.{x}");
            if a.quantum_exp.unsigned_abs() > MAX_EXP as u32 {
                return Err(bad(
                    &f("quantum_exp"),
                    format!("is {}; must be in [-{MAX_EXP}, {MAX_EXP}]", a.quantum_exp),
                ));
            }
            for t in &tiers {
                if !a.tiers.contains_key(*t) {
                    return Err(bad(&f("tiers"), format!("no weights for tier '{t}'")));
                }
            }
            self.validate_path(sym, &a.price, &num, &bad)?;
            if let Some(d) = &a.depth {
                num(&f("depth.depth_usd_per_pct"), d.depth_usd_per_pct, 0.0, limits::MAX_USD, true)?;
                num(&f("depth.half_life_secs"), d.half_life_secs, 0.0, limits::MAX_DURATION_SECS, true)?;
            }
        }
        let o = &self.oracle;
        num("oracle.heartbeat_secs", o.heartbeat_secs, 0.0, limits::MAX_DURATION_SECS, true)?;
        num("oracle.deviation", o.deviation, 0.0, 1.0, false)?;
        num("oracle.delay_secs", o.delay_secs, 0.0, self.duration_secs, false)?;
        num("oracle.max_staleness_secs", o.max_staleness_secs, 0.0, limits::MAX_DURATION_SECS, false)?;
        let p = &self.population;
        self.validate_shares("population.tiers", &p.tiers, &bad)?;
        for sym in p.collateral.keys() {
            if sym == &self.quote || !self.assets.contains_key(sym) {
                return Err(bad(
                    "population.collateral",
                    format!("'{sym}' must be a listed asset other than the quote asset"),
                ));
            }
        }
        if p.collateral.is_empty() {
            return Err(bad("population.collateral", "name at least one collateral asset".into()));
        }
        self.validate_shares("population.collateral", &p.collateral, &bad)?;
        int("population.accounts", p.accounts as u64, 0, limits::MAX_ACCOUNTS)?;
        int("population.lenders", p.lenders as u64, 0, limits::MAX_ACCOUNTS)?;
        num("population.second_collateral", p.second_collateral, 0.0, 1.0, false)?;
        num("population.size_max_usd", p.size_max_usd, 0.0, limits::MAX_USD, true)?;
        num("population.size_median_usd", p.size_median_usd, 0.0, p.size_max_usd, true)?;
        num("population.size_sigma", p.size_sigma, 0.0, limits::MAX_SIGMA, false)?;
        if !(p.max_ltv > 0.0 && p.max_ltv < 1.0) {
            return Err(bad("population.max_ltv", "must be in (0, 1)".into()));
        }
        num("population.ltv_mu", p.ltv_mu, -limits::MAX_SIGMA, limits::MAX_SIGMA, false)?;
        num("population.ltv_sigma", p.ltv_sigma, 0.0, limits::MAX_SIGMA, false)?;
        num("population.min_hf", p.min_hf, 1.0, limits::MAX_HF, false)?;
        num("population.lender_median_usd", p.lender_median_usd, 0.0, limits::MAX_USD, true)?;
        let act = &self.activity;
        for (field, v) in [
            ("activity.opens_per_hour", act.opens_per_hour),
            ("activity.closes_per_hour", act.closes_per_hour),
            ("activity.deposits_per_hour", act.deposits_per_hour),
            ("activity.borrows_per_hour", act.borrows_per_hour),
        ] {
            num(field, v, 0.0, limits::MAX_PER_HOUR, false)?;
        }
        let slots = self.account_slots();
        if slots > limits::MAX_ACCOUNTS as f64 {
            return Err(bad(
                "population",
                format!(
                    "accounts + lenders + the accounts opened during the run come to {slots} slots; at most {} are allowed",
                    limits::MAX_ACCOUNTS
                ),
            ));
        }
        let l = &self.liquidation;
        for (field, v) in [
            ("liquidation.close_factor_bps", l.close_factor_bps),
            ("liquidation.bonus_bps", l.bonus_bps),
            ("liquidation.fund_share_bps", l.fund_share_bps),
            ("liquidation.penalty_bps", l.penalty_bps),
            ("liquidation.dutch.chip_bps", l.dutch.chip_bps),
            ("liquidation.dutch.bidder_margin_bps", l.dutch.bidder_margin_bps),
        ] {
            int(field, v as u64, 0, 10_000)?;
        }
        int("liquidation.full_close_hf_bps", l.full_close_hf_bps as u64, 0, 10_000 * limits::MAX_HF as u64)?;
        num("liquidation.dust_usd", l.dust_usd, 0.0, limits::MAX_USD, false)?;
        num("liquidation.dutch.buf", l.dutch.buf, 0.0, 100.0, true)?;
        num("liquidation.dutch.step_secs", l.dutch.step_secs, 0.0, limits::MAX_DURATION_SECS, true)?;
        num("liquidation.dutch.cut", l.dutch.cut, 0.0, 1.0, true)?;
        num("liquidation.dutch.tail_secs", l.dutch.tail_secs, 0.0, limits::MAX_DURATION_SECS, true)?;
        num("liquidation.dutch.cusp", l.dutch.cusp, 0.0, 1.0, false)?;
        num("liquidation.dutch.tip_usd", l.dutch.tip_usd, 0.0, limits::MAX_USD, false)?;
        num("liquidation.batch.window_secs", l.batch.window_secs, 0.0, limits::MAX_DURATION_SECS, true)?;
        num("liquidation.batch.reserve", l.batch.reserve, 0.0, 1.0, false)?;
        let k = &self.keeper;
        num("keeper.latency_ms", k.latency_ms, 0.0, limits::MAX_DURATION_SECS * 1e3, false)?;
        num("keeper.jitter_ms", k.jitter_ms, 0.0, limits::MAX_DURATION_SECS * 1e3, false)?;
        num("keeper.prebuilt_saving_ms", k.prebuilt_saving_ms, 0.0, limits::MAX_DURATION_SECS * 1e3, false)?;
        int("keeper.max_in_flight", k.max_in_flight as u64, 1, limits::MAX_ACCOUNTS)?;
        num("keeper.timeout_secs", k.timeout_secs, 0.0, limits::MAX_DURATION_SECS, true)?;
        int("keeper.max_attempts", k.max_attempts as u64, 1, 1_000)?;
        num("keeper.target_hf", k.target_hf, 1.0, limits::MAX_HF, false)?;
        num("insurance.initial_usd", self.insurance.initial_usd, 0.0, limits::MAX_USD, false)?;
        let d = &self.dynamic;
        if d.enabled {
            num("dynamic.return_secs", d.return_secs, 0.0, self.duration_secs, true)?;
            num(
                "dynamic.window_secs",
                d.window_secs,
                d.return_secs,
                self.duration_secs.max(d.return_secs),
                false,
            )
            .map_err(|_| {
                bad(
                    "dynamic",
                    "return_secs and update_secs must be positive and window_secs at least return_secs \
                         (and at most duration_secs)"
                        .into(),
                )
            })?;
            num("dynamic.update_secs", d.update_secs, 0.0, limits::MAX_DURATION_SECS, true)?;
            num("dynamic.ref_vol_day", d.ref_vol_day, 0.0, limits::MAX_VOL_DAY, true)?;
            num("dynamic.floor", d.floor, 0.0, 1.0, true)?;
            num("dynamic.stress_z", d.stress_z, 0.0, 100.0, false)?;
            num("dynamic.horizon_secs", d.horizon_secs, 0.0, limits::MAX_DURATION_SECS, false)?;
        }
        num("report.sample_secs", self.report.sample_secs, 0.0, limits::MAX_DURATION_SECS, true)?;
        for (i, c) in self.calibration.iter().enumerate() {
            let known = LENDING_METRICS.contains(&c.metric.as_str())
                || ["low:", "low_pct:"]
                    .iter()
                    .any(|p| c.metric.strip_prefix(p).is_some_and(|a| self.assets.contains_key(a)));
            if !known {
                return Err(bad(
                    &format!("calibration[{i}].metric"),
                    format!(
                        "'{}' is not one of {LENDING_METRICS:?}, low:<asset listed> or low_pct:<asset listed>",
                        c.metric
                    ),
                ));
            }
            num(&format!("calibration[{i}].real"), c.real, -1e18, 1e18, false)?;
        }
        let needed = self.memory_estimate();
        liqscan_host::io::limits::fits_memory(
            &format!(
                "scenario {}: {slots} account slots at about {} bytes each and {steps} steps of {} price paths",
                path.display(),
                limits::BYTES_PER_SLOT,
                self.assets.len()
            ),
            needed,
        )
        .map_err(|e| bad("population", e.to_string()))?;
        Ok(())
    }

    /// Account slots the run allocates: borrowers, lenders, and room for the accounts the
    /// activity opens (half again the expected number).
    pub fn account_slots(&self) -> f64 {
        let p = &self.population;
        p.accounts as f64
            + p.lenders as f64
            + self.activity.opens_per_hour * self.duration_secs / 3600.0 * 1.5
            + 64.0
    }

    /// Estimated bytes of a run: account slots (venue, engine, dispatcher) and two series of
    /// one price per step per asset (the path and the oracle's history).
    pub fn memory_estimate(&self) -> u64 {
        let steps = (self.duration_secs / self.step_secs).ceil() + 1.0;
        let bytes =
            self.account_slots() * limits::BYTES_PER_SLOT as f64 + steps * self.assets.len() as f64 * 16.0;
        if bytes.is_finite() && bytes < u64::MAX as f64 { bytes as u64 } else { u64::MAX }
    }

    fn validate_path(
        &self,
        sym: &str,
        p: &PathSpec,
        num: RangeCheck<'_>,
        bad: &dyn Fn(&str, String) -> ScenarioError,
    ) -> Result<(), ScenarioError> {
        check_path_numbers(p, &|x| format!("assets.{sym}.price.{x}"), num, bad)
    }

    fn validate_shares(
        &self,
        field: &str,
        shares: &BTreeMap<String, f64>,
        bad: &dyn Fn(&str, String) -> ScenarioError,
    ) -> Result<(), ScenarioError> {
        for (k, &v) in shares {
            if !(v.is_finite() && (0.0..=1e6).contains(&v)) {
                return Err(bad(
                    &format!("{field}.{k}"),
                    format!("share is {v}; must be a finite number in [0, 1000000]"),
                ));
            }
        }
        if shares.values().sum::<f64>() <= 0.0 {
            return Err(bad(field, "the shares must add up to more than 0".into()));
        }
        Ok(())
    }
}

/// The bounds a scenario's numbers are checked against (docs/SIMULATOR.md, "Limits").
pub mod limits {
    /// Most account slots (borrowers, lenders and those opened during the run).
    pub const MAX_ACCOUNTS: u64 = 10_000_000;
    /// Longest simulated time: ten years.
    pub const MAX_DURATION_SECS: f64 = 3653.0 * 86_400.0;
    /// Shortest step.
    pub const MIN_STEP_SECS: f64 = 1e-3;
    /// Most steps (`duration_secs / step_secs`): four months at one second.
    pub const MAX_STEPS: u64 = 10_000_000;
    /// Largest volatility (and drift) per square-root day: e^10 in a day is no market.
    pub const MAX_VOL_DAY: f64 = 10.0;
    /// Largest log-normal sigma, jump size, logit parameter.
    pub const MAX_SIGMA: f64 = 10.0;
    /// Most jumps a day.
    pub const MAX_JUMPS_PER_DAY: f64 = 86_400.0;
    /// Largest beta of a follower.
    pub const MAX_BETA: f64 = 100.0;
    /// Largest starting or fixed price.
    pub const MAX_PRICE: f64 = 1e12;
    /// Largest value in quote units (sizes, fund, depth).
    pub const MAX_USD: f64 = 1e15;
    /// Largest health factor target.
    pub const MAX_HF: f64 = 100.0;
    /// Most events an hour of one kind of activity.
    pub const MAX_PER_HOUR: f64 = 1e6;
    /// Most shocks on one asset.
    pub const MAX_SHOCKS: usize = 100;
    /// Bytes an account slot takes in a run (venue account, engine slot, dispatcher): about
    /// 280 measured (peak resident size of the calm day cut to 600 s with 200,000 accounts
    /// less that with 1,000), rounded up.
    pub const BYTES_PER_SLOT: u64 = 512;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BASE: &str = include_str!("../../scenarios/calm-day.toml");

    /// The calm day with one dotted field set to `v` (tables made as needed).
    fn with(field: &str, v: toml::Value) -> String {
        let mut t: toml::Table = toml::from_str(BASE).unwrap();
        let parts: Vec<&str> = field.split('.').collect();
        let mut cur = &mut t;
        for p in &parts[..parts.len() - 1] {
            cur = cur
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap();
        }
        cur.insert(parts[parts.len() - 1].to_string(), v);
        toml::to_string(&t).unwrap()
    }

    fn refused(text: &str) -> ScenarioError {
        Scenario::parse(text, Path::new("s.toml")).expect_err("refused")
    }

    #[test]
    fn every_example_scenario_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let perp = crate::perp::scenario::PerpScenario::is_perp(
                &std::fs::read_to_string(&p).unwrap_or_default(),
            );
            if name.ends_with(".toml") && !name.starts_with("sweep") && !perp {
                Scenario::load(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
                n += 1;
            }
        }
        assert!(n >= 5, "{n} scenarios");
    }

    #[test]
    fn limits_from_the_issue_are_refused_naming_the_field_and_limit() {
        use toml::Value::{Float, Integer};
        // On main: 10^12 accounts panicked (slots are u32), 4e9 accounts and duration_secs = 1e14
        // tried to allocate terabytes, vol_day = 1e300 ran.
        let cases = [
            ("population.accounts", Integer(1_000_000_000_000), "population.accounts", "[0, 10000000]"),
            ("population.accounts", Integer(4_000_000_000), "population.accounts", "[0, 10000000]"),
            ("duration_secs", Float(1e14), "duration_secs", "(0, 315619200]"),
            ("step_secs", Float(1e-6), "step_secs", "[0.001, 86400]"),
            ("assets.ETH.price.gbm.vol_day", Float(1e300), "assets.ETH.price.gbm.vol_day", "[0, 10]"),
            ("assets.ETH.price.gbm.vol_day", Float(f64::NAN), "assets.ETH.price.gbm.vol_day", "is NaN"),
            ("activity.opens_per_hour", Float(1e12), "activity.opens_per_hour", "[0, 1000000]"),
            ("oracle.delay_secs", Float(1e9), "oracle.delay_secs", "[0, 86400]"),
            ("insurance.initial_usd", Float(f64::INFINITY), "insurance.initial_usd", "is inf"),
            ("value_exp", Integer(-40), "value_exp", "[-36, 36]"),
        ];
        for (field, v, want_field, want) in cases {
            match refused(&with(field, v.clone())) {
                ScenarioError::Invalid { field: f, what, .. } => {
                    assert_eq!(f, want_field, "{field} = {v}: {what}");
                    assert!(what.contains(want), "{field} = {v}: {what}");
                }
                e => panic!("{field} = {v}: {e}"),
            }
        }
        // 1e6 accounts opened an hour for a day: 36 million slots.
        let e = refused(&with("activity.opens_per_hour", Float(1e6))).to_string();
        assert!(e.contains("slots; at most 10000000 are allowed"), "{e}");
        // 86,400 s at 1 ms: 86.4 million steps.
        let e = refused(&with("step_secs", Float(0.001))).to_string();
        assert!(e.contains("86400000 steps; at most 10000000"), "{e}");
    }

    #[test]
    fn calibration_rows_name_metrics_the_report_has() {
        let row = |metric: &str| {
            format!(
                "{BASE}\n[[calibration]]\nmetric = \"{metric}\"\nreal = 1.0\nfact = \"f\"\nsource = \"s\"\n"
            )
        };
        for ok in ["liquidated_usd", "bad_debt_usd", "low:ETH", "low_pct:ETH"] {
            Scenario::parse(&row(ok), Path::new("s.toml")).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["low:DOGE", "adl_events", "low_pct:"] {
            match refused(&row(bad)) {
                ScenarioError::Invalid { field, what, .. } => {
                    assert_eq!(field, "calibration[0].metric", "{bad}");
                    assert!(what.contains(&format!("'{bad}' is not one of")), "{what}");
                }
                e => panic!("{bad}: {e}"),
            }
        }
    }

    #[test]
    fn memory_estimate_counts_slots_and_steps() {
        let s = Scenario::parse(BASE, Path::new("s.toml")).unwrap();
        // 10,000 + 500 + 20/h * 24 h * 1.5 + 64 = 11,284 slots; 86,401 steps of 3 assets.
        assert_eq!(s.account_slots(), 11_284.0);
        assert_eq!(s.memory_estimate(), 11_284 * limits::BYTES_PER_SLOT + 86_401 * 3 * 16);
    }

    /// A field and a value outside its range.
    fn bad_field() -> impl Strategy<Value = (&'static str, toml::Value)> {
        use toml::Value::{Float, Integer};
        let non_finite = prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)];
        let huge = prop_oneof![Just(1e300), Just(f64::MAX), 1e16..1e300f64];
        let negative = prop_oneof![Just(-1e300), -1e9..-1e-9f64];
        let nonneg = [
            "oracle.deviation",
            "oracle.max_staleness_secs",
            "population.size_sigma",
            "population.ltv_sigma",
            "population.second_collateral",
            "activity.opens_per_hour",
            "activity.closes_per_hour",
            "activity.deposits_per_hour",
            "activity.borrows_per_hour",
            "liquidation.dust_usd",
            "liquidation.dutch.tip_usd",
            "liquidation.batch.reserve",
            "keeper.latency_ms",
            "keeper.jitter_ms",
            "keeper.prebuilt_saving_ms",
            "insurance.initial_usd",
            "assets.ETH.price.gbm.vol_day",
            "assets.ETH.price.gbm.jumps_per_day",
            "assets.ETH.price.gbm.jump_std",
            "assets.BTC.price.follow.vol_day",
        ];
        let positive = [
            "duration_secs",
            "step_secs",
            "oracle.heartbeat_secs",
            "population.size_median_usd",
            "population.size_max_usd",
            "population.lender_median_usd",
            "liquidation.dutch.step_secs",
            "liquidation.dutch.cut",
            "liquidation.dutch.buf",
            "liquidation.batch.window_secs",
            "keeper.timeout_secs",
            "report.sample_secs",
            "assets.ETH.price.gbm.start",
            "assets.BTC.price.follow.start",
            "assets.USDC.price.fixed",
            "assets.ETH.depth.depth_usd_per_pct",
            "assets.ETH.depth.half_life_secs",
        ];
        let any = prop_oneof![
            Just("assets.ETH.price.gbm.drift_day"),
            Just("assets.BTC.price.follow.beta"),
            Just("population.ltv_mu"),
            Just("population.min_hf"),
            Just("keeper.target_hf"),
        ];
        let counts = prop_oneof![
            Just("population.accounts"),
            Just("population.lenders"),
            Just("keeper.max_in_flight"),
            Just("keeper.max_attempts"),
            Just("liquidation.close_factor_bps"),
            Just("liquidation.bonus_bps"),
        ];
        prop_oneof![
            (
                prop::sample::select(nonneg.to_vec()),
                prop_oneof![non_finite.clone(), huge.clone(), negative.clone()]
            )
                .prop_map(|(f, v)| (f, Float(v))),
            (
                prop::sample::select(positive.to_vec()),
                prop_oneof![non_finite.clone(), huge.clone(), negative, Just(0.0)]
            )
                .prop_map(|(f, v)| (f, Float(v))),
            (any, prop_oneof![non_finite, huge]).prop_map(|(f, v)| (f, Float(v))),
            (counts, prop_oneof![Just(i64::MAX), Just(-1i64), 20_000_000i64..i64::MAX])
                .prop_map(|(f, v)| (f, Integer(v))),
            Just(("assets.ETH.quantum_exp", Integer(i64::from(i32::MIN)))),
            Just(("assets.ETH.stress", toml::Value::String("0e-2147483648".into()))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Every scenario with one number out of its range is refused, without a panic, by an
        /// error that names the field (or, for a value TOML or the schema cannot take, the line).
        #[test]
        fn every_bad_scenario_is_refused((field, v) in bad_field()) {
            let text = with(field, v.clone());
            let r = std::panic::catch_unwind(|| Scenario::parse(&text, Path::new("s.toml")));
            let r = r.map_err(|_| TestCaseError::fail(format!("{field} = {v} panicked")))?;
            match r {
                Ok(_) => prop_assert!(false, "{field} = {v} accepted"),
                Err(ScenarioError::Invalid { field: f, .. }) => {
                    let leaf = field.rsplit('.').next().unwrap();
                    prop_assert!(
                        f.ends_with(leaf) || f == "population" || f == "dynamic" || f == "step_secs",
                        "{field} = {v} refused as field {f}"
                    );
                }
                Err(ScenarioError::Parse { source, .. }) => {
                    prop_assert!(source.span().is_some(), "{field} = {v}: {source}");
                }
                Err(e) => prop_assert!(false, "{field} = {v}: {e}"),
            }
        }

        /// Any value in any of these fields: accepted scenarios stay within the limits.
        #[test]
        fn accepted_scenarios_are_within_limits(
            (field, _) in bad_field(),
            v in prop_oneof![any::<f64>(), -1e3..1e3f64, 0.0..1.0f64],
        ) {
            let text = with(field, toml::Value::Float(v));
            let r = std::panic::catch_unwind(|| Scenario::parse(&text, Path::new("s.toml")));
            let r = r.map_err(|_| TestCaseError::fail(format!("{field} = {v} panicked")))?;
            if let Ok(s) = r {
                prop_assert!(s.account_slots() <= limits::MAX_ACCOUNTS as f64);
                prop_assert!((s.duration_secs / s.step_secs).ceil() <= limits::MAX_STEPS as f64);
                let avail = liqscan_host::io::limits::mem_available().unwrap_or(u64::MAX);
                prop_assert!(s.memory_estimate() <= avail);
            }
        }
    }
}
