//! Perpetual scenario files: a `[perp]` section instead of the lending venue's assets.
//!
//! ```toml
//! name = "..."; seed = 1; duration_secs = 3600; step_secs = 1
//! [perp]            fund_usd, vault_usd, sample_secs, mmr_scale
//! [perp.markets.BTC] price (a path, as the lending assets'), lot, depth_usd_per_pct,
//!                   half_life_secs, tiers ("binance_btc_2022" or brackets), funding
//!                   ("binance", "hyperliquid" or the four numbers), mark_ema_ppm, weight, copies
//! [perp.population] accounts, isolated_share, long_share, markets_per_account, sizes, leverage
//! [perp.liquidation] chunk_ppm, cooldown_secs, ..., backstop, insurance, adl, fee_ppm
//! [[perp.calibration]] metric, real, fact, source
//! ```
//!
//! Every number is checked before anything is allocated; a refusal names the file, the dotted
//! key and the problem (docs/SIMULATOR.md, "Perpetual scenarios").

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::QUANTA_PER_UNIT;
use super::funding::FundingParams;
use super::liquidation::{LiquidationConfig, PartialConfig};
use super::tiers::{MarginTiers, PPM, Tier};
use crate::market::PathSpec;
use crate::scenario::{RangeCheck, ScenarioError, check_int, check_num, check_path_numbers, invalid, limits};

/// A perpetual scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerpScenario {
    /// Name shown in reports.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Seed of every random stream.
    pub seed: u64,
    /// Simulated time, seconds.
    pub duration_secs: f64,
    /// Seconds per step.
    #[serde(default = "one")]
    pub step_secs: f64,
    /// The venue.
    pub perp: PerpSection,
}

/// The `[perp]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerpSection {
    /// Markets by symbol.
    pub markets: BTreeMap<String, MarketSection>,
    /// Traders at the start.
    pub population: PerpPopulation,
    /// Liquidation mechanism switches.
    #[serde(default)]
    pub liquidation: LiquidationSection,
    /// Insurance fund at the start, quote units.
    #[serde(default)]
    pub fund_usd: f64,
    /// Backstop vault's capital, quote units.
    #[serde(default)]
    pub vault_usd: f64,
    /// Seconds between samples of the series (and ledger checks).
    #[serde(default = "sixty")]
    pub sample_secs: f64,
    /// Every market's maintenance rates times this (1: as listed); the population's leverage
    /// cap and starting margin follow the scaled brackets. For sweeps of margin strictness.
    #[serde(default = "one")]
    pub mmr_scale: f64,
    /// Public figures the report prints beside the simulated ones.
    #[serde(default)]
    pub calibration: Vec<Calibration>,
    /// Book liquidations by the keeper's reduce-only orders instead of the venue's own engine.
    #[serde(default)]
    pub keeper: Option<KeeperSection>,
}

/// The `[perp.keeper]` section: the host's dispatcher sizes reduce-only orders for accounts in
/// breach and the venue executes them ([`super::keeper`]); the venue itself still resolves
/// bankrupt accounts and those under the backstop line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeeperSection {
    /// Seconds from an order's dispatch to its execution (it lands at the first step at or
    /// after that time).
    #[serde(default)]
    pub latency_secs: f64,
    /// Margin ratio (equity over maintenance) the orders aim to restore; 1 is exactly the
    /// maintenance requirement.
    #[serde(default = "target_margin")]
    pub target_margin: f64,
    /// Distance of each leg's limit price from the mark, basis points.
    #[serde(default = "slippage_bps")]
    pub slippage_bps: u32,
    /// Orders pending at once.
    #[serde(default = "max_in_flight")]
    pub max_in_flight: u32,
}

/// One market (or, with `copies`, a family of alike markets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketSection {
    /// Oracle price path in quote units per whole base unit (required; optional only so that
    /// its absence is refused with the key rather than a schema message).
    pub price: Option<PathSpec>,
    /// Base units per lot (0.001 BTC): prices are kept in quote quanta per lot.
    pub lot: f64,
    /// Quote units that move the book 1%.
    pub depth_usd_per_pct: f64,
    /// Half-life of the book's dent, seconds.
    #[serde(default = "half_life")]
    pub half_life_secs: f64,
    /// Maintenance brackets.
    pub tiers: TiersSpec,
    /// Funding schedule.
    pub funding: FundingSpec,
    /// Weight of the newest premium in the mark's EMA per step, ppm.
    #[serde(default = "ema")]
    pub mark_ema_ppm: u32,
    /// Share of the population's positions in this market (each copy gets this share).
    #[serde(default = "one")]
    pub weight: f64,
    /// Number of markets made from this section (`SYM-1` .. `SYM-n`, each path with its own
    /// random stream); 1 is the section itself.
    #[serde(default = "one_u32")]
    pub copies: u32,
    /// For a family of copies: copy `i` of `n` gets each of its shocks' `drop` set to
    /// `lo + (hi - lo) i / (n - 1)` (thin markets that fall by different amounts).
    pub drop_range: Option<[f64; 2]>,
}

/// Margin brackets: a preset name or a list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TiersSpec {
    /// `"binance_btc_2022"` or `"flat:<mmr_ppm>"`.
    Preset(String),
    /// Brackets in quote units.
    List(Vec<TierUsd>),
}

/// One bracket in quote units.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierUsd {
    /// Upper notional bound, quote units (omit on the last bracket: no bound).
    pub up_to_usd: Option<f64>,
    /// Maintenance rate, ppm.
    pub mmr_ppm: u32,
}

/// Funding: a preset name or the parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FundingSpec {
    /// `"binance"` or `"hyperliquid"`.
    Preset(String),
    /// The parameters.
    Params(FundingParams),
}

/// Traders at the start: sizes log-normal, leverage log-normal capped by the brackets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerpPopulation {
    /// Traders.
    pub accounts: u64,
    /// Share of traders on isolated margin (one position each).
    #[serde(default)]
    pub isolated_share: f64,
    /// Share of positions that are long.
    #[serde(default = "half")]
    pub long_share: f64,
    /// Most markets a cross-margin trader holds (1 to this many, uniform).
    #[serde(default = "one_u32")]
    pub markets_per_account: u32,
    /// Median position notional, quote units.
    pub size_median_usd: f64,
    /// Log-normal sigma of the notional.
    #[serde(default = "one")]
    pub size_sigma: f64,
    /// Largest notional.
    pub size_max_usd: f64,
    /// Median leverage (notional / margin).
    pub leverage_median: f64,
    /// Log-normal sigma of the leverage.
    #[serde(default = "half")]
    pub leverage_sigma: f64,
    /// Largest leverage.
    pub leverage_max: f64,
    /// Every account starts with at least this many times its maintenance margin.
    #[serde(default = "min_cover")]
    pub min_margin_cover: f64,
    /// Counterparty capital: each market's maker (who takes the population's net side) holds
    /// this many times its notional as margin.
    #[serde(default = "one")]
    pub maker_margin: f64,
}

/// The liquidation switches (docs/SIMULATOR.md, "Liquidation").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiquidationSection {
    /// Share of a position sent per order, ppm; 0 sends whole positions.
    pub chunk_ppm: u32,
    /// Seconds between orders for one account.
    pub cooldown_secs: u64,
    /// Positions at or under this notional go whole, quote units.
    pub min_chunk_notional_usd: f64,
    /// After the first chunk, the rest goes whole (Hyperliquid).
    pub then_whole: bool,
    /// Largest price move one order may cause, ppm.
    pub max_book_move_ppm: u32,
    /// Backstop vault on.
    pub backstop: bool,
    /// Backstop line, ppm of maintenance.
    pub backstop_below_ppm: u32,
    /// The vault takes over only while its capital covers its margin (`vault_usd` bounds it).
    #[serde(default)]
    pub backstop_bounded: bool,
    /// Insurance fund pays shortfalls.
    pub insurance: bool,
    /// Auto-deleveraging on.
    pub adl: bool,
    /// Liquidation fee, ppm of the notional.
    pub fee_ppm: u32,
    /// Liquidation orders are limits at the bankruptcy price: a fill never leaves an account
    /// short; the rest waits for the backstop or goes to the fund and ADL at bankruptcy.
    pub bankruptcy_limit: bool,
}

impl Default for LiquidationSection {
    fn default() -> Self {
        let d = LiquidationConfig::default();
        let p = PartialConfig::hyperliquid();
        LiquidationSection {
            chunk_ppm: p.chunk_ppm,
            cooldown_secs: p.cooldown_secs,
            min_chunk_notional_usd: (p.min_notional / QUANTA_PER_UNIT) as f64,
            then_whole: p.then_whole,
            max_book_move_ppm: d.max_book_move_ppm,
            backstop: d.backstop,
            backstop_below_ppm: d.backstop_below_ppm,
            backstop_bounded: d.backstop_bounded,
            insurance: d.insurance,
            adl: d.adl,
            fee_ppm: d.fee_ppm,
            bankruptcy_limit: d.bankruptcy_limit,
        }
    }
}

impl LiquidationSection {
    /// The venue's configuration.
    pub fn config(&self) -> LiquidationConfig {
        LiquidationConfig {
            partial: (self.chunk_ppm > 0).then(|| PartialConfig {
                chunk_ppm: self.chunk_ppm,
                cooldown_secs: self.cooldown_secs,
                min_notional: usd(self.min_chunk_notional_usd),
                then_whole: self.then_whole,
            }),
            max_book_move_ppm: self.max_book_move_ppm,
            backstop: self.backstop,
            backstop_below_ppm: self.backstop_below_ppm,
            backstop_bounded: self.backstop_bounded,
            insurance: self.insurance,
            adl: self.adl,
            fee_ppm: self.fee_ppm,
            keeper: false,
            bankruptcy_limit: self.bankruptcy_limit,
        }
    }
}

/// A public figure a run is compared with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// What the run reports: `liquidated_usd`, `liquidations`, `adl_events`,
    /// `peak_events_per_sec`, `bad_debt_usd` or `low_pct:<market>` (the mark's low, % from start).
    pub metric: String,
    /// The public value.
    pub real: f64,
    /// The stylised fact, in words.
    pub fact: String,
    /// Where it comes from.
    pub source: String,
}

/// Metric names [`Calibration::metric`] may take (besides `low_pct:<market>`).
pub const METRICS: [&str; 5] =
    ["liquidated_usd", "liquidations", "adl_events", "peak_events_per_sec", "bad_debt_usd"];

/// Bytes one account takes besides its positions (struct, vectors' headers, run bookkeeping).
pub const BYTES_PER_ACCOUNT: u64 = 256;
/// Bytes of one open position: its entry in the account's list (market, size and entry value),
/// its place in the market's holder list and the margin watch's bounds (stale ones included).
pub const BYTES_PER_POSITION: u64 = 128;
/// Most markets a scenario may list (copies counted).
pub const MAX_MARKETS: u64 = 1_000;

fn one() -> f64 {
    1.0
}
fn one_u32() -> u32 {
    1
}
fn half() -> f64 {
    0.5
}
fn sixty() -> f64 {
    60.0
}
fn half_life() -> f64 {
    300.0
}
fn ema() -> u32 {
    100_000
}
fn min_cover() -> f64 {
    1.25
}
fn target_margin() -> f64 {
    1.05
}
fn slippage_bps() -> u32 {
    100
}
fn max_in_flight() -> u32 {
    256
}

/// Quote units to quanta (rounded; callers check the range first).
pub fn usd(v: f64) -> i128 {
    (v * QUANTA_PER_UNIT as f64).round() as i128
}

/// One market after copies are expanded: symbol and section.
#[derive(Clone, Debug)]
pub struct ExpandedMarket {
    /// Symbol (`SYM` or `SYM-i`).
    pub symbol: String,
    /// The section it comes from.
    pub section: MarketSection,
    /// Brackets in quote quanta.
    pub tiers: MarginTiers,
    /// Funding.
    pub funding: FundingParams,
}

impl PerpScenario {
    /// True if TOML text is a perpetual scenario (it has a top-level `[perp]` table).
    pub fn is_perp(text: &str) -> bool {
        toml::from_str::<toml::Table>(text).is_ok_and(|t| Self::is_perp_table(&t))
    }

    /// True if a parsed scenario table is a perpetual scenario (the rule of [`is_perp`](Self::is_perp)).
    pub fn is_perp_table(t: &toml::Table) -> bool {
        t.contains_key("perp")
    }

    /// Parses and checks scenario text; `path` is for messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ScenarioError> {
        crate::scenario::parse_toml(text, path, Self::validate)
    }

    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        crate::scenario::load_toml(path, Self::validate)
    }

    /// Markets with copies expanded, brackets and funding resolved.
    pub fn markets(&self, path: &Path) -> Result<Vec<ExpandedMarket>, ScenarioError> {
        let bad =
            |field: String, what: String| ScenarioError::Invalid { path: path.to_path_buf(), field, what };
        let mut out = Vec::new();
        for (sym, m) in &self.perp.markets {
            let tiers = resolve_tiers(&m.tiers).map_err(|w| bad(format!("perp.markets.{sym}.tiers"), w))?;
            let tiers = if self.perp.mmr_scale == 1.0 {
                tiers
            } else {
                tiers.scale_rates(self.perp.mmr_scale).map_err(|e| {
                    bad(
                        "perp.mmr_scale".into(),
                        format!("is {}: perp.markets.{sym}.tiers scaled: {e}", self.perp.mmr_scale),
                    )
                })?
            };
            let funding = match &m.funding {
                FundingSpec::Preset(p) if p == "binance" => FundingParams::binance(),
                FundingSpec::Preset(p) if p == "hyperliquid" => FundingParams::hyperliquid(),
                FundingSpec::Preset(p) => {
                    return Err(bad(
                        format!("perp.markets.{sym}.funding"),
                        format!(
                            "unknown preset '{p}'; use \"binance\", \"hyperliquid\" or the four parameters"
                        ),
                    ));
                }
                FundingSpec::Params(f) => f.clone(),
            };
            let names: Vec<String> = if m.copies <= 1 {
                vec![sym.clone()]
            } else {
                (1..=m.copies).map(|i| format!("{sym}-{i}")).collect()
            };
            let n = names.len();
            for (i, symbol) in names.into_iter().enumerate() {
                let mut section = m.clone();
                if let (Some([lo, hi]), Some(p)) = (m.drop_range, section.price.as_mut()) {
                    let drop = if n > 1 { lo + (hi - lo) * i as f64 / (n - 1) as f64 } else { lo };
                    for sh in &mut p.shocks {
                        sh.drop = drop;
                    }
                }
                out.push(ExpandedMarket { symbol, section, tiers: tiers.clone(), funding: funding.clone() });
            }
        }
        Ok(out)
    }

    /// Accounts the venue holds: the book, the vault, a maker per market, and per trader one
    /// account (two when isolated: the owner and the isolated account).
    pub fn account_slots(&self) -> u64 {
        let p = &self.perp.population;
        let markets = self.market_count();
        let iso = (p.accounts as f64 * p.isolated_share.clamp(0.0, 1.0)).ceil() as u64;
        2 + markets + p.accounts.saturating_add(iso)
    }

    /// Markets with copies counted.
    pub fn market_count(&self) -> u64 {
        self.perp.markets.values().map(|m| m.copies.max(1) as u64).sum()
    }

    /// Estimated bytes of a run: every account holds at most `markets_per_account` open
    /// positions; the price paths hold one price per step per market (the path and its quanta).
    pub fn memory_estimate(&self) -> u64 {
        let steps = (self.duration_secs / self.step_secs).ceil() + 1.0;
        let m = self.market_count() as f64;
        let held = self.perp.population.markets_per_account as f64;
        let bytes = self.account_slots() as f64
            * (BYTES_PER_ACCOUNT as f64 + held * BYTES_PER_POSITION as f64)
            + steps * m * 16.0;
        if bytes.is_finite() && bytes < u64::MAX as f64 { bytes as u64 } else { u64::MAX }
    }

    /// Checks every number and cross-field rule, and that the run fits in memory.
    pub fn validate(&self, path: &Path) -> Result<(), ScenarioError> {
        let bad = |field: &str, what: String| invalid(path, field, what);
        let num = |field: &str, v: f64, lo: f64, hi: f64, open: bool| check_num(path, field, v, lo, hi, open);
        let int = |field: &str, v: u64, lo: u64, hi: u64| check_int(path, field, v, lo, hi);
        num("duration_secs", self.duration_secs, 0.0, limits::MAX_DURATION_SECS, true)?;
        num("step_secs", self.step_secs, limits::MIN_STEP_SECS, self.duration_secs, false)?;
        if self.step_secs.fract() != 0.0 {
            return Err(bad(
                "step_secs",
                format!("is {}; the perpetual venue steps in whole seconds", self.step_secs),
            ));
        }
        let steps = (self.duration_secs / self.step_secs).ceil();
        if steps > limits::MAX_STEPS as f64 {
            return Err(bad(
                "step_secs",
                format!(
                    "duration_secs / step_secs is {steps} steps; at most {} are allowed",
                    limits::MAX_STEPS
                ),
            ));
        }
        let p = &self.perp;
        if p.markets.is_empty() {
            return Err(bad("perp.markets", "no market listed; give at least one".into()));
        }
        let n = self.market_count();
        if n > MAX_MARKETS {
            return Err(bad("perp.markets", format!("{n} markets with copies; at most {MAX_MARKETS}")));
        }
        // Every market has a path before any path is checked (a follower names its leader's).
        if let Some(sym) = p.markets.iter().find(|m| m.1.price.is_none()).map(|m| m.0) {
            return Err(bad(
                &format!("perp.markets.{sym}.price"),
                "market without a price path (give gbm, bars, ticks, follow or fixed)".into(),
            ));
        }
        for (sym, m) in &p.markets {
            let f = |x: &str| format!("perp.markets.{sym}.{x}");
            let Some(price) = &m.price else { continue };
            self.validate_path(sym, price, &num, &bad)?;
            num(&f("lot"), m.lot, 0.0, limits::MAX_PRICE, true)?;
            if m.depth_usd_per_pct < 0.0 {
                return Err(bad(
                    &f("depth_usd_per_pct"),
                    format!("is {}: depth cannot be negative", m.depth_usd_per_pct),
                ));
            }
            num(&f("depth_usd_per_pct"), m.depth_usd_per_pct, 0.0, limits::MAX_USD, true)?;
            num(&f("half_life_secs"), m.half_life_secs, 0.0, limits::MAX_DURATION_SECS, false)?;
            int(&f("mark_ema_ppm"), m.mark_ema_ppm as u64, 0, PPM as u64)?;
            num(&f("weight"), m.weight, 0.0, 1e6, false)?;
            int(&f("copies"), m.copies as u64, 1, MAX_MARKETS)?;
            if let Some([lo, hi]) = m.drop_range {
                num(&f("drop_range[0]"), lo, 0.0, 1.0, false)?;
                num(&f("drop_range[1]"), hi, 0.0, 1.0, false)?;
            }
            if let Some(fp) = match &m.funding {
                FundingSpec::Params(fp) => Some(fp),
                _ => None,
            } {
                int(&f("funding.interval_secs"), fp.interval_secs, 1, limits::MAX_DURATION_SECS as u64)?;
                for (k, v) in
                    [("interest_ppm", fp.interest_ppm), ("clamp_ppm", fp.clamp_ppm), ("cap_ppm", fp.cap_ppm)]
                {
                    if v.unsigned_abs() > PPM as u64 {
                        return Err(bad(
                            &f(&format!("funding.{k}")),
                            format!("is {v}; must be in [-1000000, 1000000]"),
                        ));
                    }
                }
            }
            // A price of a lot must be representable in quanta with some resolution: a lot
            // worth under a thousandth of a quote unit rounds prices to nothing.
            let start = price
                .gbm
                .as_ref()
                .map(|g| g.start)
                .or(price.follow.as_ref().map(|x| x.start))
                .or(price.fixed);
            if let Some(s) = start
                && s * m.lot * (QUANTA_PER_UNIT as f64) < 1_000.0
            {
                return Err(bad(
                    &f("lot"),
                    format!("a lot is worth {} quote units at the start; make it at least 0.001", s * m.lot),
                ));
            }
        }
        if p.markets.values().map(|m| m.weight * m.copies.max(1) as f64).sum::<f64>() <= 0.0 {
            return Err(bad("perp.markets", "the markets' weights must add up to more than 0".into()));
        }
        num("perp.mmr_scale", p.mmr_scale, 0.0, 100.0, true)?;
        // Brackets and funding presets (their own messages).
        self.markets(path)?;
        let pop = &p.population;
        int("perp.population.accounts", pop.accounts, 0, limits::MAX_ACCOUNTS)?;
        num("perp.population.isolated_share", pop.isolated_share, 0.0, 1.0, false)?;
        num("perp.population.long_share", pop.long_share, 0.0, 1.0, false)?;
        int("perp.population.markets_per_account", pop.markets_per_account as u64, 1, n.min(64))?;
        num("perp.population.size_max_usd", pop.size_max_usd, 0.0, limits::MAX_USD, true)?;
        num("perp.population.size_median_usd", pop.size_median_usd, 0.0, pop.size_max_usd, true)?;
        num("perp.population.size_sigma", pop.size_sigma, 0.0, limits::MAX_SIGMA, false)?;
        num("perp.population.leverage_max", pop.leverage_max, 1.0, 1_000.0, false)?;
        num("perp.population.leverage_median", pop.leverage_median, 1.0, pop.leverage_max, false)?;
        num("perp.population.leverage_sigma", pop.leverage_sigma, 0.0, limits::MAX_SIGMA, false)?;
        num("perp.population.min_margin_cover", pop.min_margin_cover, 1.0, 100.0, false)?;
        num("perp.population.maker_margin", pop.maker_margin, 0.0, 100.0, true)?;
        let l = &p.liquidation;
        for (k, v) in [
            ("chunk_ppm", l.chunk_ppm),
            ("max_book_move_ppm", l.max_book_move_ppm),
            ("backstop_below_ppm", l.backstop_below_ppm),
            ("fee_ppm", l.fee_ppm),
        ] {
            int(&format!("perp.liquidation.{k}"), v as u64, 0, PPM as u64)?;
        }
        if l.max_book_move_ppm == 0 {
            return Err(bad(
                "perp.liquidation.max_book_move_ppm",
                "is 0: the book would absorb nothing".into(),
            ));
        }
        int("perp.liquidation.cooldown_secs", l.cooldown_secs, 0, limits::MAX_DURATION_SECS as u64)?;
        num(
            "perp.liquidation.min_chunk_notional_usd",
            l.min_chunk_notional_usd,
            0.0,
            limits::MAX_USD,
            false,
        )?;
        num("perp.fund_usd", p.fund_usd, 0.0, limits::MAX_USD, false)?;
        num("perp.vault_usd", p.vault_usd, 0.0, limits::MAX_USD, false)?;
        num("perp.sample_secs", p.sample_secs, self.step_secs, limits::MAX_DURATION_SECS, false)?;
        if let Some(k) = &p.keeper {
            num("perp.keeper.latency_secs", k.latency_secs, 0.0, limits::MAX_DURATION_SECS, false)?;
            num("perp.keeper.target_margin", k.target_margin, 1.0, 100.0, false)?;
            int("perp.keeper.slippage_bps", k.slippage_bps as u64, 1, 9_999)?;
            int("perp.keeper.max_in_flight", k.max_in_flight as u64, 1, 1_000_000)?;
        }
        for (i, c) in p.calibration.iter().enumerate() {
            let f = format!("perp.calibration[{i}].metric");
            let known = METRICS.contains(&c.metric.as_str())
                || c.metric
                    .strip_prefix("low_pct:")
                    .is_some_and(|m| self.markets(path).is_ok_and(|ms| ms.iter().any(|x| x.symbol == m)));
            if !known {
                return Err(bad(
                    &f,
                    format!("'{}' is not one of {METRICS:?} or low_pct:<market listed>", c.metric),
                ));
            }
            num(&format!("perp.calibration[{i}].real"), c.real, -1e18, 1e18, false)?;
        }
        let slots = self.account_slots();
        if slots > limits::MAX_ACCOUNTS {
            return Err(bad(
                "perp.population.accounts",
                format!(
                    "{slots} account slots (isolated traders take two); at most {} are allowed",
                    limits::MAX_ACCOUNTS
                ),
            ));
        }
        liqscan_host::io::limits::fits_memory(
            &format!(
                "scenario {}: {slots} accounts of up to {} positions ({} bytes each with {BYTES_PER_ACCOUNT} of overhead)",
                path.display(),
                pop.markets_per_account,
                pop.markets_per_account as u64 * BYTES_PER_POSITION
            ),
            self.memory_estimate(),
        )
        .map_err(|e| bad("perp.population.accounts", e.to_string()))?;
        Ok(())
    }

    fn validate_path(
        &self,
        sym: &str,
        p: &PathSpec,
        num: RangeCheck<'_>,
        bad: &dyn Fn(&str, String) -> ScenarioError,
    ) -> Result<(), ScenarioError> {
        let f = |x: &str| format!("perp.markets.{sym}.price.{x}");
        let found =
            [p.gbm.is_some(), p.bars.is_some(), p.ticks.is_some(), p.follow.is_some(), p.fixed.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
        if found != 1 {
            return Err(bad(
                &format!("perp.markets.{sym}.price"),
                format!("needs exactly one of gbm, bars, ticks, follow, fixed (found {found})"),
            ));
        }
        if let Some(x) = &p.follow {
            // The leader must be a market with its own path (a copied family is led by name).
            let leader = self.perp.markets.get(&x.asset);
            if leader.is_none_or(|l| l.copies > 1 || l.price.as_ref().is_none_or(|p| p.follow.is_some())) {
                return Err(bad(
                    &f("follow.asset"),
                    format!("'{}' is not a single market with its own path", x.asset),
                ));
            }
        }
        check_path_numbers(p, &f, num, bad)
    }
}

/// Brackets from a preset name or a list in quote units; the error says what is wrong.
fn resolve_tiers(t: &TiersSpec) -> Result<MarginTiers, String> {
    match t {
        TiersSpec::Preset(p) if p == "binance_btc_2022" => Ok(MarginTiers::binance_btc_2022(QUANTA_PER_UNIT)),
        TiersSpec::Preset(p) => match p.strip_prefix("flat:").map(str::parse::<u32>) {
            Some(Ok(r)) if (r as i128) <= PPM => Ok(MarginTiers::flat(r)),
            _ => Err(format!("unknown preset '{p}'; use \"binance_btc_2022\", \"flat:<mmr_ppm>\" or a list")),
        },
        TiersSpec::List(list) => {
            if list.is_empty() {
                return Err("no bracket given".into());
            }
            let mut tiers = Vec::with_capacity(list.len());
            let (mut prev, mut prev_rate) = (0.0f64, 0u32);
            for (i, t) in list.iter().enumerate() {
                let up = match t.up_to_usd {
                    None if i + 1 == list.len() => f64::INFINITY,
                    None => {
                        return Err(format!("tier {i}: up_to_usd is required on every bracket but the last"));
                    }
                    Some(u) if !(u.is_finite() && u > prev && u <= limits::MAX_USD) => {
                        return Err(format!(
                            "tiers out of order: tier {i} up_to_usd {u} is not above the previous bound {prev} (or over {})",
                            limits::MAX_USD
                        ));
                    }
                    Some(u) => u,
                };
                if t.mmr_ppm < prev_rate || t.mmr_ppm as i128 > PPM {
                    return Err(format!(
                        "tiers out of order: tier {i} mmr_ppm {} is below the previous tier's {prev_rate} or above 1000000",
                        t.mmr_ppm
                    ));
                }
                let up_to = if up.is_infinite() { i128::MAX / (PPM * PPM) } else { usd(up) };
                tiers.push(Tier { up_to, mmr_ppm: t.mmr_ppm });
                (prev, prev_rate) = (up, t.mmr_ppm);
            }
            MarginTiers::new(tiers).map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const BASE: &str = include_str!("../../../scenarios/perp-flash-crash.toml");

    fn with(field: &str, v: Option<toml::Value>) -> String {
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
        match v {
            Some(v) => cur.insert(parts[parts.len() - 1].to_string(), v),
            None => cur.remove(parts[parts.len() - 1]),
        };
        toml::to_string(&t).unwrap()
    }

    fn refused(text: &str) -> (String, String) {
        match PerpScenario::parse(text, Path::new("dir/p.toml")) {
            Err(ScenarioError::Invalid { path, field, what }) => {
                assert_eq!(path, PathBuf::from("dir/p.toml"));
                (field, what)
            }
            Err(e) => panic!("not an Invalid error: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn every_perp_example_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            if p.extension().is_some_and(|x| x == "toml") && PerpScenario::is_perp(&text) {
                PerpScenario::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                n += 1;
            }
        }
        assert!(n >= 3, "{n} perpetual scenarios");
    }

    #[test]
    fn each_bad_input_is_refused_naming_file_key_and_problem() {
        use toml::Value::{Array, Float, Integer, String as S, Table};
        let tier = |up: f64, mmr: i64| {
            let mut t = toml::Table::new();
            t.insert("up_to_usd".into(), Float(up));
            t.insert("mmr_ppm".into(), Integer(mmr));
            Table(t)
        };
        let cases: Vec<(&str, Option<toml::Value>, &str, &str)> = vec![
            ("perp.markets.BTC.price", None, "perp.markets.BTC.price", "market without a price path"),
            (
                "perp.markets.BTC.depth_usd_per_pct",
                Some(Float(-5.0)),
                "perp.markets.BTC.depth_usd_per_pct",
                "cannot be negative",
            ),
            (
                "perp.markets.BTC.tiers",
                Some(Array(vec![tier(50_000.0, 4_000), tier(40_000.0, 5_000)])),
                "perp.markets.BTC.tiers",
                "tiers out of order: tier 1 up_to_usd 40000",
            ),
            (
                "perp.markets.BTC.tiers",
                Some(Array(vec![tier(50_000.0, 5_000), tier(90_000.0, 4_000)])),
                "perp.markets.BTC.tiers",
                "tier 1 mmr_ppm 4000 is below",
            ),
            (
                "perp.markets.BTC.tiers",
                Some(S("nonsense".into())),
                "perp.markets.BTC.tiers",
                "unknown preset",
            ),
            (
                "perp.markets.BTC.funding",
                Some(S("ftx".into())),
                "perp.markets.BTC.funding",
                "unknown preset 'ftx'",
            ),
            ("perp.markets.BTC.lot", Some(Float(1e-12)), "perp.markets.BTC.lot", "a lot is worth"),
            ("perp.markets.BTC.copies", Some(Integer(0)), "perp.markets.BTC.copies", "[1, 1000]"),
            ("perp.population.isolated_share", Some(Float(1.5)), "perp.population.isolated_share", "[0, 1]"),
            ("perp.population.leverage_median", Some(Float(0.5)), "perp.population.leverage_median", "[1, "),
            (
                "perp.liquidation.chunk_ppm",
                Some(Integer(2_000_000)),
                "perp.liquidation.chunk_ppm",
                "[0, 1000000]",
            ),
            (
                "perp.liquidation.max_book_move_ppm",
                Some(Integer(0)),
                "perp.liquidation.max_book_move_ppm",
                "absorb nothing",
            ),
            ("perp.mmr_scale", Some(Float(0.0)), "perp.mmr_scale", "(0, 100]"),
            // Binance's top bracket (50%) times 2.5 passes 100%.
            ("perp.mmr_scale", Some(Float(2.5)), "perp.mmr_scale", "perp.markets.BTC.tiers scaled"),
            ("perp.fund_usd", Some(Float(-1.0)), "perp.fund_usd", "[0, "),
            ("perp.fund_usd", Some(Float(f64::NAN)), "perp.fund_usd", "is NaN"),
            ("step_secs", Some(Float(0.5)), "step_secs", "whole seconds"),
            // More accounts than the project's limit, then more than memory allows.
            (
                "perp.population.accounts",
                Some(Integer(20_000_000)),
                "perp.population.accounts",
                "[0, 10000000]",
            ),
        ];
        for (key, v, want_field, want) in cases {
            let (field, what) = refused(&with(key, v.clone()));
            assert_eq!(field, want_field, "{key} = {v:?}: {what}");
            assert!(what.contains(want), "{key} = {v:?}: {what}");
        }
        // 9.9 M traders holding up to 64 of 1 000 markets: 8.4 kB each, ~83 GB: more than this
        // machine has.
        let t = with("perp.population.accounts", Some(Integer(9_900_000)));
        let mut t: toml::Table = toml::from_str(&t).unwrap();
        t["perp"]["markets"]["ALT"].as_table_mut().unwrap().insert("copies".into(), Integer(990));
        let pop = t["perp"]["population"].as_table_mut().unwrap();
        pop.insert("isolated_share".into(), Float(0.0));
        pop.insert("markets_per_account".into(), Integer(64));
        let (field, what) = refused(&toml::to_string(&t).unwrap());
        assert_eq!(field, "perp.population.accounts");
        assert!(what.contains("dir/p.toml") && what.contains("bytes"), "{what}");
        // A follower of an unknown market; an unknown calibration metric; the whole message.
        let (field, _) = refused(&with("perp.markets.ALT.price.follow.asset", Some(S("DOGE".into()))));
        assert_eq!(field, "perp.markets.ALT.price.follow.asset");
        let e = PerpScenario::parse(
            &with("perp.markets.BTC.depth_usd_per_pct", Some(Float(-5.0))),
            Path::new("p.toml"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "scenario p.toml: field 'perp.markets.BTC.depth_usd_per_pct': is -5: depth cannot be negative"
        );
        // A key the schema does not know: the TOML error gives its line.
        let e = PerpScenario::parse(&with("perp.markets.BTC.dpeth", Some(Float(1.0))), Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.toml") && e.contains("dpeth"), "{e}");
    }

    #[test]
    fn copies_expand_and_tiers_resolve() {
        let s = PerpScenario::parse(BASE, Path::new("p.toml")).unwrap();
        let m = s.markets(Path::new("p.toml")).unwrap();
        assert_eq!(m.len() as u64, s.market_count());
        assert!(m.iter().any(|x| x.symbol == "ALT-1"));
        let t = resolve_tiers(&TiersSpec::List(vec![
            TierUsd { up_to_usd: Some(50_000.0), mmr_ppm: 4_000 },
            TierUsd { up_to_usd: None, mmr_ppm: 5_000 },
        ]))
        .unwrap();
        assert_eq!(t.maintenance_scaled(usd(100_000.0)), usd(50_000.0) * 4_000 + usd(50_000.0) * 5_000);
        // `perp.mmr_scale` multiplies every market's rates, bounds kept.
        let mut s2 = s.clone();
        s2.perp.mmr_scale = 1.5;
        for (a, b) in m.iter().zip(s2.markets(Path::new("p.toml")).unwrap()) {
            let rates = |t: &MarginTiers| t.tiers().iter().map(|x| (x.up_to, x.mmr_ppm)).collect::<Vec<_>>();
            let want: Vec<_> =
                rates(&a.tiers).iter().map(|&(u, r)| (u, (r as f64 * 1.5).round() as u32)).collect();
            assert_eq!(rates(&b.tiers), want, "{}", a.symbol);
        }
    }
}
