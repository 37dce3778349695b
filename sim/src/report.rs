//! The report of a run: JSON for machines, a summary for people, series for the plots.

use std::fmt::Write as _;

use liqscan_host::dispatch::{DispatchStats, Dispatcher};
use serde::Serialize;

use crate::market::PricePath;
use crate::scenario::Scenario;
use crate::venue::{Ledger, Venue};

/// Upper edges of the health-factor buckets of the health distribution; the last bucket is
/// everything above the last edge. Accounts without debt are not counted.
pub const HEALTH_BUCKETS: [f64; 7] = [1.0, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0];

/// Labels of the buckets.
pub fn health_labels() -> Vec<String> {
    let mut v = vec![format!("<{}", HEALTH_BUCKETS[0])];
    for w in HEALTH_BUCKETS.windows(2) {
        v.push(format!("{}-{}", w[0], w[1]));
    }
    v.push(format!(">={}", HEALTH_BUCKETS[HEALTH_BUCKETS.len() - 1]));
    v
}

/// Sampled series.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Series {
    /// Sample times, seconds.
    pub t: Vec<f64>,
    /// Asset symbols, in the order of `price` and `oracle`.
    pub assets: Vec<String>,
    /// Market price per asset.
    pub price: Vec<Vec<f64>>,
    /// Oracle (published) price per asset.
    pub oracle: Vec<Vec<f64>>,
    /// Insurance fund, quote units.
    pub fund_usd: Vec<f64>,
    /// Breached accounts (the scan's bitmap count).
    pub breached: Vec<u64>,
    /// Bucket labels of `health`.
    pub health_buckets: Vec<String>,
    /// Accounts with debt per health-factor bucket, per sample.
    pub health: Vec<Vec<u64>>,
}

impl Series {
    /// Empty series for these assets.
    pub fn new(assets: &[String]) -> Self {
        Series {
            assets: assets.to_vec(),
            price: vec![Vec::new(); assets.len()],
            oracle: vec![Vec::new(); assets.len()],
            health_buckets: health_labels(),
            ..Default::default()
        }
    }
}

/// Figures gathered during the run that the venue does not keep.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Seconds the venue was halted by a stale oracle.
    pub halted_secs: f64,
    /// Oldest oracle age seen per asset, seconds.
    pub max_oracle_age: Vec<f64>,
    /// Oracle updates per asset.
    pub oracle_updates: Vec<u64>,
    /// Breach events (slot entering the breach bitmap).
    pub breaches: u64,
    /// Lowest fund, quote quanta.
    pub fund_min: i128,
    /// Lowest market price (path times the liquidation dent) per asset, every step.
    pub market_low: Vec<f64>,
    /// Lowest published oracle price per asset.
    pub oracle_low: Vec<f64>,
    /// What the dynamic-threshold rule did, when enabled.
    pub dynamic: Option<Vec<DynamicFigures>>,
}

/// What the dynamic-threshold rule did to one asset.
#[derive(Clone, Debug, Serialize)]
pub struct DynamicFigures {
    /// Symbol.
    pub asset: String,
    /// Rule evaluations with a measurement.
    pub updates: u64,
    /// Times its weights changed.
    pub weight_changes: u64,
    /// First weight change, simulated seconds.
    pub first_change_secs: Option<f64>,
    /// Highest realised volatility measured, per square-root day.
    pub max_vol_day: f64,
    /// Lowest multiplier applied to the base asset weights.
    pub min_multiplier: f64,
    /// Highest at-risk stress set.
    pub max_stress: f64,
}

impl DynamicFigures {
    /// Nothing done yet.
    pub fn new(asset: &str) -> Self {
        DynamicFigures {
            asset: asset.into(),
            updates: 0,
            weight_changes: 0,
            first_change_secs: None,
            max_vol_day: 0.0,
            min_multiplier: 1.0,
            max_stress: 0.0,
        }
    }
}

/// One asset's price figures.
#[derive(Clone, Debug, Serialize)]
pub struct PriceFigures {
    /// Symbol.
    pub asset: String,
    /// Start (path).
    pub start: f64,
    /// Lowest price of the exogenous path (before liquidation impact).
    pub min: f64,
    /// Lowest market price: the path times the dent liquidation sales left, every step.
    pub market_min: f64,
    /// Lowest published oracle price.
    pub oracle_min: f64,
    /// End (path).
    pub end: f64,
    /// Oracle updates.
    pub oracle_updates: u64,
    /// Oldest oracle age, seconds.
    pub max_oracle_age_secs: f64,
}

/// Liquidation figures.
#[derive(Clone, Debug, Serialize)]
pub struct LiquidationFigures {
    /// Mechanism.
    pub mechanism: String,
    /// Breach events seen by the scan.
    pub breach_events: u64,
    /// Direct liquidations executed.
    pub direct: u64,
    /// Accounts kicked into auctions.
    pub kicks: u64,
    /// Dutch auction takes.
    pub takes: u64,
    /// Dutch auction resets.
    pub resets: u64,
    /// Batch clearings.
    pub clearings: u64,
    /// Auctions still running at the end.
    pub open_auctions: usize,
    /// Debt repaid by liquidations, quote units.
    pub repaid_usd: f64,
    /// Collateral seized (direct) or put to auction, at the oracle, quote units.
    pub seized_usd: f64,
    /// Orders the venue refused.
    pub rejected: u64,
    /// Accounts liquidated at least once.
    pub accounts_liquidated: u64,
    /// Accounts only ever partially liquidated (no full close-out, no auction, no bad debt)
    /// that end healthy, still borrowing against collateral, or that their owner closed.
    pub saved_by_partial: u64,
}

/// Bad-debt figures, quote units.
#[derive(Clone, Debug, Serialize)]
pub struct BadDebtFigures {
    /// Absorbed plus socialised.
    pub total_usd: f64,
    /// Paid by the insurance fund.
    pub absorbed_usd: f64,
    /// Socialised (haircuts plus pool loss).
    pub socialised_usd: f64,
    /// Lenders' haircuts (auto-deleveraging).
    pub adl_haircut_usd: f64,
    /// Loss the lenders' deposits could not cover.
    pub pool_loss_usd: f64,
    /// Accounts that ended in bad debt.
    pub accounts: u64,
    /// Debt left on accounts with no collateral at the end (0 when the venue is right).
    pub unresolved_usd: f64,
}

/// Fund figures, quote units.
#[derive(Clone, Debug, Serialize)]
pub struct FundFigures {
    /// At the start.
    pub initial_usd: f64,
    /// At the end.
    pub final_usd: f64,
    /// Lowest.
    pub min_usd: f64,
    /// Income (bonus share, penalties, dust).
    pub income_usd: f64,
    /// Debt absorbed.
    pub paid_usd: f64,
    /// Keeper incentives paid.
    pub incentives_usd: f64,
}

/// Keeper figures.
#[derive(Clone, Debug, Serialize)]
pub struct KeeperFigures {
    /// Breach-to-answer latency percentiles, milliseconds of simulated time: p50, p90, p99, max.
    pub latency_ms: [f64; 4],
    /// Answered orders.
    pub answered: u64,
    /// Dispatcher counters.
    pub dispatch: DispatchStats,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Simulated seconds.
    pub duration_secs: f64,
    /// Seconds per step.
    pub step_secs: f64,
    /// Accounts open at the start (borrowers and lenders).
    pub accounts_start: usize,
    /// Accounts open at the end.
    pub accounts_end: usize,
    /// Prices.
    pub prices: Vec<PriceFigures>,
    /// Seconds the venue halted liquidations on a stale oracle.
    pub halted_secs: f64,
    /// Liquidations.
    pub liquidations: LiquidationFigures,
    /// Bad debt.
    pub bad_debt: BadDebtFigures,
    /// Insurance fund.
    pub insurance_fund: FundFigures,
    /// Keeper.
    pub keeper: KeeperFigures,
    /// True when every ledger identity held at the end.
    pub conservation_ok: bool,
    /// The raw ledger, in quanta.
    pub ledger: Ledger,
    /// The dynamic-threshold rule's effect per asset (absent when the rule is off).
    pub dynamic: Option<Vec<DynamicFigures>>,
    /// Sampled series.
    pub series: Series,
    /// The scenario's public figures beside the simulated values.
    pub calibration: Vec<CalibrationRow>,
}

pub use crate::perp::report::CalibrationRow;

impl Report {
    /// Assembles the report.
    pub fn build(
        s: &Scenario,
        symbols: &[String],
        venue: &Venue,
        dispatcher: &Dispatcher,
        paths: &[PricePath],
        sum: Summary,
        series: Series,
    ) -> Report {
        let q = venue.quote as usize;
        let q_usd = 10f64.powi(s.assets[&s.quote].quantum_exp);
        let v_usd = 10f64.powi(s.value_exp);
        let f = &venue.ledger.assets[q];
        let usd = |x: i128| x as f64 * q_usd;
        let lat = dispatcher.latency();
        let ms = |v: u64| v as f64 / 1e6;
        let saved = venue
            .accounts
            .iter()
            .enumerate()
            .filter(|(i, a)| {
                a.open
                    && a.liquidated > 0
                    && !a.bad_debt
                    && !a.closed_out
                    && a.bal[q] < 0
                    && a.bal.iter().enumerate().any(|(j, &b)| j != q && b > 0)
                    && venue.health(*i as u32) >= 0
            })
            .count() as u64
            + venue.stats.saved_then_closed;
        let mut r = Report {
            scenario: s.name.clone(),
            seed: s.seed,
            duration_secs: s.duration_secs,
            step_secs: s.step_secs,
            accounts_start: s.population.accounts + s.population.lenders,
            accounts_end: venue.accounts.iter().filter(|a| a.open).count(),
            prices: symbols
                .iter()
                .enumerate()
                .map(|(i, sym)| PriceFigures {
                    asset: sym.clone(),
                    start: paths[i].prices[0],
                    min: paths[i].prices.iter().cloned().fold(f64::INFINITY, f64::min),
                    market_min: sum.market_low[i],
                    oracle_min: sum.oracle_low[i],
                    end: *paths[i].prices.last().expect("non-empty"),
                    oracle_updates: sum.oracle_updates[i],
                    max_oracle_age_secs: sum.max_oracle_age[i],
                })
                .collect(),
            halted_secs: sum.halted_secs,
            liquidations: LiquidationFigures {
                mechanism: venue.rules.mechanism.to_string(),
                breach_events: sum.breaches,
                direct: venue.stats.direct,
                kicks: venue.stats.kicks,
                takes: venue.stats.takes,
                resets: venue.stats.resets,
                clearings: venue.stats.clearings,
                open_auctions: venue.auctions.len(),
                repaid_usd: venue.stats.repaid_value as f64 * v_usd,
                seized_usd: venue.stats.seized_value as f64 * v_usd,
                rejected: venue.stats.rejected,
                accounts_liquidated: venue.accounts.iter().filter(|a| a.liquidated > 0).count() as u64,
                saved_by_partial: saved,
            },
            bad_debt: BadDebtFigures {
                total_usd: usd(venue.ledger.bad_debt(q)),
                absorbed_usd: usd(f.absorbed),
                socialised_usd: usd(f.socialised),
                adl_haircut_usd: usd(f.adl_haircut),
                pool_loss_usd: usd(f.lender_loss),
                accounts: venue.stats.bad_debt_accounts,
                unresolved_usd: usd(venue.unresolved_bad_debt()),
            },
            insurance_fund: FundFigures {
                initial_usd: usd(venue.ledger.fund_initial),
                final_usd: usd(venue.fund),
                min_usd: usd(sum.fund_min),
                income_usd: usd(venue.ledger.fund_income),
                paid_usd: usd(venue.ledger.fund_paid),
                incentives_usd: usd(venue.ledger.incentives),
            },
            keeper: KeeperFigures {
                latency_ms: if lat.is_empty() {
                    [0.0; 4]
                } else {
                    [
                        ms(lat.value_at_quantile(0.5)),
                        ms(lat.value_at_quantile(0.9)),
                        ms(lat.value_at_quantile(0.99)),
                        ms(lat.max()),
                    ]
                },
                answered: lat.len(),
                dispatch: dispatcher.stats().clone(),
            },
            conservation_ok: venue.check_conservation().is_ok(),
            ledger: venue.ledger.clone(),
            dynamic: sum.dynamic,
            series,
            calibration: Vec::new(),
        };
        let rows = CalibrationRow::rows(&s.calibration, |m| r.metric(m));
        r.calibration = rows;
        r
    }

    /// A calibration metric's simulated value (names in [`crate::scenario::LENDING_METRICS`],
    /// `low:<asset>`, `low_pct:<asset>`: the market's low, with liquidation impact).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let l = &self.liquidations;
        Some(match name {
            "liquidated_usd" => l.seized_usd,
            "repaid_usd" => l.repaid_usd,
            "liquidations" => (l.direct + l.kicks) as f64,
            "bad_debt_usd" => self.bad_debt.total_usd,
            _ => {
                let (pct, asset) = match name.strip_prefix("low_pct:") {
                    Some(a) => (true, a),
                    None => (false, name.strip_prefix("low:")?),
                };
                let p = self.prices.iter().find(|p| p.asset == asset)?;
                if pct { (p.market_min / p.start - 1.0) * 100.0 } else { p.market_min }
            }
        })
    }

    /// A readable summary.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let l = &self.liquidations;
        let b = &self.bad_debt;
        let f = &self.insurance_fund;
        let _ = writeln!(
            o,
            "scenario   {} (seed {}, {:.0} s, step {} s)",
            self.scenario, self.seed, self.duration_secs, self.step_secs
        );
        let _ = writeln!(o, "accounts   {} at start, {} at end", self.accounts_start, self.accounts_end);
        for p in &self.prices {
            let _ = writeln!(
                o,
                "price      {:<6} {:>12.2} -> {:>12.2}  (path low {:.2}, {:+.1}%; market low {:.2}, {:+.1}%, with liquidation impact), oracle updates {}, max age {:.0} s",
                p.asset,
                p.start,
                p.end,
                p.min,
                (p.min / p.start - 1.0) * 100.0,
                p.market_min,
                (p.market_min / p.start - 1.0) * 100.0,
                p.oracle_updates,
                p.max_oracle_age_secs
            );
        }
        let _ = writeln!(
            o,
            "liquidate  {}: {} breach events, {} direct, {} kicks, {} takes, {} resets, {} clearings, {} refused",
            l.mechanism, l.breach_events, l.direct, l.kicks, l.takes, l.resets, l.clearings, l.rejected
        );
        let _ = writeln!(
            o,
            "           repaid ${:.0}, collateral ${:.0}; {} accounts liquidated, {} saved by partial liquidation, {} auctions open",
            l.repaid_usd, l.seized_usd, l.accounts_liquidated, l.saved_by_partial, l.open_auctions
        );
        let _ = writeln!(
            o,
            "bad debt   ${:.2} on {} accounts: fund ${:.2}, socialised ${:.2} (lenders ${:.2}, pool ${:.2}), unresolved ${:.2}",
            b.total_usd,
            b.accounts,
            b.absorbed_usd,
            b.socialised_usd,
            b.adl_haircut_usd,
            b.pool_loss_usd,
            b.unresolved_usd
        );
        let _ = writeln!(
            o,
            "fund       ${:.0} -> ${:.0} (low ${:.0}); income ${:.0}, absorbed ${:.0}, incentives ${:.0}",
            f.initial_usd, f.final_usd, f.min_usd, f.income_usd, f.paid_usd, f.incentives_usd
        );
        let k = &self.keeper;
        let _ = writeln!(
            o,
            "keeper     {} answers; breach-to-answer p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} retries, {} prebuilt",
            k.answered,
            k.latency_ms[0],
            k.latency_ms[1],
            k.latency_ms[2],
            k.latency_ms[3],
            k.dispatch.retries,
            k.dispatch.prebuilt_used
        );
        for d in self.dynamic.iter().flatten() {
            let _ = writeln!(
                o,
                "dynamic    {:<6} max vol {:.3}/sqrt(day), weights x{:.3} at least, {} changes (first at {}), stress up to {:.3}",
                d.asset,
                d.max_vol_day,
                d.min_multiplier,
                d.weight_changes,
                d.first_change_secs.map_or("never".to_string(), |t| format!("{t:.0} s")),
                d.max_stress
            );
        }
        if self.halted_secs > 0.0 {
            let _ = writeln!(o, "halted     {:.0} s on a stale oracle", self.halted_secs);
        }
        for c in &self.calibration {
            let _ = writeln!(
                o,
                "calibrate  {:<22} real {:>16.2}  simulated {:>16.2}  {} ({})",
                c.metric, c.real, c.simulated, c.fact, c.source
            );
        }
        let _ =
            writeln!(o, "ledger     {}", if self.conservation_ok { "conserved" } else { "NOT CONSERVED" });
        o
    }
}
