//! The report of a perpetual run: JSON, a summary, and the plots (the lending report's SVG
//! charts, [`crate::plot`]).

use std::fmt::Write as _;

use serde::Serialize;

use liqscan_host::dispatch::{DispatchStats, Dispatcher};

use super::ledger::ZeroSum;
use super::scenario::PerpScenario;
use super::{PerpVenue, QUANTA_PER_UNIT};
use crate::plot::{Line, line_chart};

/// Who bore the bankrupt accounts' shortfalls, quote quanta.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bearers {
    /// The insurance fund.
    pub fund: i128,
    /// Traders auto-deleveraged (their haircuts).
    pub adl_traders: i128,
    /// Makers (the population's counterparties) auto-deleveraged.
    pub adl_makers: i128,
    /// The backstop vault: bankruptcy prices worse than the mark when it took positions over.
    pub vault: i128,
    /// Margin the vault kept (bankruptcy prices better than the mark): not bad debt.
    pub vault_kept: i128,
    /// Nobody: left as negative balances.
    pub unpaid: i128,
}

impl Bearers {
    /// The bad debt: every shortfall, whoever bore it.
    pub fn total(&self) -> i128 {
        self.fund + self.adl_traders + self.adl_makers + self.vault + self.unpaid
    }
}

/// Wall-clock figures (not in the JSON: they differ run to run).
#[derive(Clone, Debug, Default)]
pub struct Timing {
    /// Building the paths and the population, seconds.
    pub setup_secs: f64,
    /// The step loop, seconds.
    pub loop_secs: f64,
    /// Liquidations plus ADL events per second of wall time in the step with the most events.
    pub peak_events_per_wall_sec: f64,
    /// Events in that step.
    pub peak_step_events: u32,
    /// Its wall time, seconds.
    pub peak_step_wall_secs: f64,
}

/// Sampled series.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PerpSeries {
    /// Sample times, seconds.
    pub t: Vec<f64>,
    /// Markets, in the order of `mark` and `oracle`.
    pub markets: Vec<String>,
    /// Mark price per market, quote units per whole unit.
    pub mark: Vec<Vec<f64>>,
    /// Oracle price per market.
    pub oracle: Vec<Vec<f64>>,
    /// Insurance fund.
    pub fund_usd: Vec<f64>,
    /// Backstop vault's P&L.
    pub vault_pnl_usd: Vec<f64>,
    /// The book's (liquidity providers') P&L.
    pub book_pnl_usd: Vec<f64>,
    /// Long open interest at the marks.
    pub open_interest_usd: Vec<f64>,
    /// Bad debt so far (every bearer).
    pub bad_debt_usd: Vec<f64>,
}

impl PerpSeries {
    /// Empty series for these markets.
    pub fn new(markets: &[String]) -> Self {
        PerpSeries {
            markets: markets.to_vec(),
            mark: vec![Vec::new(); markets.len()],
            oracle: vec![Vec::new(); markets.len()],
            ..Default::default()
        }
    }
}

/// One market's prices.
#[derive(Clone, Debug, Serialize)]
pub struct MarketFigures {
    /// Symbol.
    pub market: String,
    /// Oracle path at the start and its low.
    pub start: f64,
    /// Oracle path's low (exogenous).
    pub path_low: f64,
    /// Mark's low (with the liquidations' impact).
    pub mark_low: f64,
    /// Mark at the end.
    pub end: f64,
}

/// A public figure beside the simulated one.
#[derive(Clone, Debug, Serialize)]
pub struct CalibrationRow {
    /// Metric.
    pub metric: String,
    /// Public value.
    pub real: f64,
    /// Simulated value.
    pub simulated: f64,
    /// The fact.
    pub fact: String,
    /// Its source.
    pub source: String,
}

impl CalibrationRow {
    /// The scenario's calibration rows with their simulated values from `metric` (NaN where
    /// the report has none).
    pub fn rows(spec: &[super::scenario::Calibration], metric: impl Fn(&str) -> Option<f64>) -> Vec<Self> {
        spec.iter()
            .map(|c| CalibrationRow {
                metric: c.metric.clone(),
                real: c.real,
                simulated: metric(&c.metric).unwrap_or(f64::NAN),
                fact: c.fact.clone(),
                source: c.source.clone(),
            })
            .collect()
    }
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct PerpReport {
    /// Scenario name.
    pub scenario: String,
    /// Seed.
    pub seed: u64,
    /// Simulated seconds and step.
    pub duration_secs: f64,
    /// Step.
    pub step_secs: f64,
    /// Traders' accounts (isolated ones counted with their owners').
    pub traders: usize,
    /// All accounts (book, vault, makers, traders).
    pub accounts: usize,
    /// The mechanism switches as run.
    pub mechanism: super::LiquidationConfig,
    /// Per market.
    pub markets: Vec<MarketFigures>,
    /// Liquidation orders filled in the book.
    pub book_fills: u64,
    /// Positions the backstop vault took over.
    pub backstop_takeovers: u64,
    /// ADL events.
    pub adl_events: u64,
    /// Liquidated notional (book fills and takeovers), quote units.
    pub liquidated_usd: f64,
    /// Liquidations (book fills and takeovers) per step.
    pub liquidations_per_step: Vec<u32>,
    /// ADL events per step.
    pub adl_per_step: Vec<u32>,
    /// Most liquidations plus ADL events in one simulated second, and when.
    pub peak_events_per_sec: f64,
    /// Time of the peak, seconds.
    pub peak_at_secs: f64,
    /// Bad debt by bearer, quote quanta.
    pub bad_debt: Bearers,
    /// Fund at the start and end, quote units.
    pub fund_start_usd: f64,
    /// Fund at the end.
    pub fund_end_usd: f64,
    /// Vault P&L at the end.
    pub vault_pnl_usd: f64,
    /// The venue's ledger at the end (flows and counts, quote quanta).
    pub ledger: super::PerpLedger,
    /// Ledger checks made.
    pub ledger_checks: u64,
    /// True if every check held.
    pub conservation_ok: bool,
    /// The first failure, if any.
    pub conservation_error: Option<String>,
    /// The zero-sum decomposition at the end, quote quanta.
    pub zero_sum: Option<ZeroSum>,
    /// At the end: accounts the risk formula finds in breach, and the venue's own test.
    pub scan_breached: (u64, u64),
    /// Public figures beside simulated ones.
    pub calibration: Vec<CalibrationRow>,
    /// The keeper's figures, when its reduce-only orders made the book liquidations.
    pub keeper: Option<KeeperFigures>,
    /// Series.
    pub series: PerpSeries,
    /// Wall-clock figures.
    #[serde(skip)]
    pub timing: Timing,
}

fn usd(q: i128) -> f64 {
    q as f64 / QUANTA_PER_UNIT as f64
}

/// What the keeper did (`[perp.keeper]`).
#[derive(Clone, Debug, Serialize)]
pub struct KeeperFigures {
    /// The dispatcher's counters.
    pub dispatch: DispatchStats,
    /// Breach-to-answer latency of answered orders, seconds: median, 99th percentile, most.
    pub latency_secs: [f64; 3],
}

impl KeeperFigures {
    /// The figures of a dispatcher.
    pub fn of(d: &Dispatcher) -> Self {
        let h = d.latency();
        let s = |ns: u64| ns as f64 / 1e9;
        KeeperFigures {
            dispatch: d.stats().clone(),
            latency_secs: [s(h.value_at_quantile(0.5)), s(h.value_at_quantile(0.99)), s(h.max())],
        }
    }
}

impl PerpReport {
    /// Assembles the report at the end of a run.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        s: &PerpScenario,
        v: &PerpVenue,
        traders: usize,
        symbols: &[String],
        paths: &[Vec<f64>],
        mark_low: &[f64],
        series: PerpSeries,
        liquidations_per_step: Vec<u32>,
        adl_per_step: Vec<u32>,
        bad_debt: Bearers,
        liquidated: i128,
        ledger_checks: u64,
        conservation_error: Option<String>,
        zero_sum: Option<ZeroSum>,
        scan_breached: (u64, u64),
        timing: Timing,
    ) -> Self {
        let markets: Vec<MarketFigures> = symbols
            .iter()
            .enumerate()
            .map(|(k, sym)| MarketFigures {
                market: sym.clone(),
                start: paths[k][0],
                path_low: paths[k].iter().copied().fold(f64::INFINITY, f64::min),
                mark_low: mark_low[k].min(paths[k][0]),
                end: series.mark[k].last().copied().unwrap_or(paths[k][0]),
            })
            .collect();
        let (mut peak, mut peak_at) = (0.0, 0.0);
        for (i, (l, a)) in liquidations_per_step.iter().zip(&adl_per_step).enumerate() {
            let r = (l + a) as f64 / s.step_secs;
            if r > peak {
                (peak, peak_at) = (r, (i + 1) as f64 * s.step_secs);
            }
        }
        let mut r = PerpReport {
            scenario: s.name.clone(),
            seed: s.seed,
            duration_secs: s.duration_secs,
            step_secs: s.step_secs,
            traders,
            accounts: v.accounts.len(),
            mechanism: v.config.clone(),
            markets,
            book_fills: v.ledger.book_fills,
            backstop_takeovers: v.ledger.backstop_takeovers,
            adl_events: v.ledger.adl_events,
            liquidated_usd: usd(liquidated),
            liquidations_per_step,
            adl_per_step,
            peak_events_per_sec: peak,
            peak_at_secs: peak_at,
            bad_debt,
            fund_start_usd: usd(v.ledger.fund_initial),
            fund_end_usd: usd(v.fund),
            vault_pnl_usd: series.vault_pnl_usd.last().copied().unwrap_or(0.0),
            ledger: v.ledger.clone(),
            ledger_checks,
            conservation_ok: conservation_error.is_none(),
            conservation_error,
            zero_sum,
            scan_breached,
            calibration: Vec::new(),
            keeper: None,
            series,
            timing,
        };
        let rows = CalibrationRow::rows(&s.perp.calibration, |m| r.metric(m));
        r.calibration = rows;
        r
    }

    /// A calibration metric's simulated value (names in [`super::scenario::METRICS`]).
    pub fn metric(&self, name: &str) -> Option<f64> {
        Some(match name {
            "liquidated_usd" => self.liquidated_usd,
            "liquidations" => (self.book_fills + self.backstop_takeovers) as f64,
            "adl_events" => self.adl_events as f64,
            "peak_events_per_sec" => self.peak_events_per_sec,
            "bad_debt_usd" => usd(self.bad_debt.total()),
            _ => {
                let m = name.strip_prefix("low_pct:")?;
                let f = self.markets.iter().find(|x| x.market == m)?;
                (f.mark_low / f.start - 1.0) * 100.0
            }
        })
    }

    /// The summary for people.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "scenario   {} (seed {}, {:.0} s, step {} s), perpetuals",
            self.scenario, self.seed, self.duration_secs, self.step_secs
        );
        let _ = writeln!(
            o,
            "venue      {} markets, {} traders, {} accounts (book, vault, a maker per market, traders, isolated)",
            self.markets.len(),
            self.traders,
            self.accounts
        );
        let c = &self.mechanism;
        let chunks = match &c.partial {
            Some(p) => format!(
                "chunks of {:.1}% over {:.0} (cooldown {} s{})",
                p.chunk_ppm as f64 / 1e4,
                usd(p.min_notional),
                p.cooldown_secs,
                if p.then_whole { ", then whole" } else { "" }
            ),
            None => "whole positions".into(),
        };
        let on = |b: bool| if b { "on" } else { "off" };
        let _ = writeln!(
            o,
            "mechanism  {chunks}{}; book move cap {:.2}%; backstop {} (line {:.1}% of MM{}); fund {}; ADL {}; fee {} ppm",
            if c.bankruptcy_limit { ", limit at the bankruptcy price" } else { "" },
            c.max_book_move_ppm as f64 / 1e4,
            on(c.backstop),
            c.backstop_below_ppm as f64 / 1e4,
            if c.backstop_bounded { ", bounded by its capital" } else { ", unbounded" },
            on(c.insurance),
            on(c.adl),
            c.fee_ppm
        );
        if let Some(k) = &self.keeper {
            let d = &k.dispatch;
            let _ = writeln!(
                o,
                "keeper     reduce-only orders: {} sent, {} filled, {} refused, {} retries; breach to answer p50 {:.1} s, p99 {:.1} s",
                d.orders, d.filled, d.rejected, d.retries, k.latency_secs[0], k.latency_secs[1]
            );
        }
        // Single markets first, then the copies of a family (SYM-1, SYM-2, ...).
        let copy =
            |m: &MarketFigures| m.market.rsplit_once('-').is_some_and(|(_, n)| n.parse::<u32>().is_ok());
        let mut order: Vec<&MarketFigures> = self.markets.iter().filter(|m| !copy(m)).collect();
        order.extend(self.markets.iter().filter(|m| copy(m)));
        let shown = 8;
        for m in order.into_iter().take(shown) {
            let _ = writeln!(
                o,
                "price      {:<8} {:>12.4} -> {:>12.4}  (path low {:+.1}%, mark low {:+.1}% with liquidation impact)",
                m.market,
                m.start,
                m.end,
                (m.path_low / m.start - 1.0) * 100.0,
                (m.mark_low / m.start - 1.0) * 100.0
            );
        }
        if self.markets.len() > shown {
            let worst = self.markets.iter().map(|m| m.mark_low / m.start - 1.0).fold(f64::INFINITY, f64::min);
            let _ = writeln!(
                o,
                "price      ... and {} more markets (worst mark low {:+.1}%)",
                self.markets.len() - shown,
                worst * 100.0
            );
        }
        let liq = self.book_fills + self.backstop_takeovers;
        let _ = writeln!(
            o,
            "liquidate  {liq} liquidations ({} book orders, {} backstop takeovers), {:.0} notional; peak {:.1} liquidations+ADL per second at {:.0} s",
            self.book_fills,
            self.backstop_takeovers,
            self.liquidated_usd,
            self.peak_events_per_sec,
            self.peak_at_secs
        );
        let adl_peak = self.adl_per_step.iter().copied().max().unwrap_or(0) as f64 / self.step_secs;
        let _ = writeln!(o, "adl        {} events, peak {adl_peak:.1} per second", self.adl_events);
        let b = &self.bad_debt;
        let _ = writeln!(
            o,
            "bad debt   {:.2}: fund {:.2}, ADL haircuts {:.2} (traders) + {:.2} (makers), backstop vault {:.2}, unpaid {:.2}",
            usd(b.total()),
            usd(b.fund),
            usd(b.adl_traders),
            usd(b.adl_makers),
            usd(b.vault),
            usd(b.unpaid)
        );
        let min_fund = self.series.fund_usd.iter().copied().fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            o,
            "fund       {:.2} -> {:.2} (low {:.2})",
            self.fund_start_usd, self.fund_end_usd, min_fund
        );
        let vmin = self.series.vault_pnl_usd.iter().copied().fold(f64::INFINITY, f64::min);
        let _ = writeln!(
            o,
            "vault      P&L {:.2} at the end (low {:.2}); margin kept at takeovers {:.2}",
            self.vault_pnl_usd,
            vmin,
            usd(b.vault_kept)
        );
        let _ = writeln!(
            o,
            "book       liquidity providers' P&L {:.2}",
            self.series.book_pnl_usd.last().copied().unwrap_or(0.0)
        );
        let (f, v) = self.scan_breached;
        let _ = writeln!(
            o,
            "scan       at the end: risk formula {f} accounts in breach, venue's test {v} ({})",
            if f == v { "agree" } else { "DISAGREE" }
        );
        for c in &self.calibration {
            let _ = writeln!(
                o,
                "calibrate  {:<22} real {:>16.2}  simulated {:>16.2}  {} ({})",
                c.metric, c.real, c.simulated, c.fact, c.source
            );
        }
        match &self.conservation_error {
            None => {
                let _ = writeln!(o, "ledger     conserved: zero-sum exactly, {} checks", self.ledger_checks);
            }
            Some(e) => {
                let _ = writeln!(o, "ledger     NOT CONSERVED {e}");
            }
        }
        o
    }

    /// Timing lines (wall clock), for the console only.
    pub fn timing_summary(&self) -> String {
        let t = &self.timing;
        format!(
            "timing     set-up {:.2} s, loop {:.2} s; peak step {} events in {:.4} s: {:.0} liquidations+ADL per wall second\n",
            t.setup_secs, t.loop_secs, t.peak_step_events, t.peak_step_wall_secs, t.peak_events_per_wall_sec
        )
    }

    /// The plots: (file name, SVG).
    pub fn plots(&self) -> Vec<(String, String)> {
        const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
        let se = &self.series;
        let mut out = Vec::new();
        // Marks normalised to 100 at the start: the first market of each family shown, at most 6.
        let mut shown: Vec<usize> = Vec::new();
        for (k, m) in se.markets.iter().enumerate() {
            let fam = m.rsplit_once('-').map(|x| x.0).unwrap_or(m);
            if shown.len() < 6 && !shown.iter().any(|&j| se.markets[j].starts_with(fam)) {
                shown.push(k);
            }
        }
        let norm: Vec<(usize, Vec<f64>, Vec<f64>)> = shown
            .iter()
            .map(|&k| {
                let p0 = se.oracle[k].first().copied().unwrap_or(1.0).max(1e-12);
                let n = |v: &Vec<f64>| v.iter().map(|x| x / p0 * 100.0).collect::<Vec<f64>>();
                (k, n(&se.mark[k]), n(&se.oracle[k]))
            })
            .collect();
        let mut lines = Vec::new();
        for (c, (k, m, o)) in norm.iter().enumerate() {
            let color = COLORS[c % COLORS.len()];
            lines.push(Line { label: format!("{} mark", se.markets[*k]), color, y: m, dashed: false });
            lines.push(Line { label: format!("{} oracle", se.markets[*k]), color, y: o, dashed: true });
        }
        out.push((
            "price.svg".into(),
            line_chart(
                &format!("{}: marks and oracles", self.scenario),
                "price (start = 100)",
                &se.t,
                &lines,
            ),
        ));
        // Events per second, as the most in any step of each of at most 720 buckets.
        let n = self.liquidations_per_step.len();
        let per = n.div_ceil(720).max(1);
        let bucket = |v: &[u32]| -> Vec<f64> {
            v.chunks(per).map(|c| *c.iter().max().unwrap_or(&0) as f64 / self.step_secs).collect()
        };
        let liq = bucket(&self.liquidations_per_step);
        let adl = bucket(&self.adl_per_step);
        let t: Vec<f64> = (0..liq.len()).map(|i| (i * per) as f64 * self.step_secs).collect();
        out.push((
            "events.svg".into(),
            line_chart(
                &format!(
                    "{}: liquidations and ADL per second (peak of each {} s)",
                    self.scenario,
                    per as f64 * self.step_secs
                ),
                "events per second",
                &t,
                &[
                    Line { label: "liquidations".into(), color: COLORS[1], y: &liq, dashed: false },
                    Line { label: "ADL events".into(), color: COLORS[3], y: &adl, dashed: false },
                ],
            ),
        ));
        out.push((
            "fund.svg".into(),
            line_chart(
                &format!("{}: fund, backstop vault, bad debt", self.scenario),
                "quote units",
                &se.t,
                &[
                    Line { label: "insurance fund".into(), color: COLORS[0], y: &se.fund_usd, dashed: false },
                    Line { label: "vault P&L".into(), color: COLORS[2], y: &se.vault_pnl_usd, dashed: false },
                    Line {
                        label: "bad debt so far".into(),
                        color: COLORS[1],
                        y: &se.bad_debt_usd,
                        dashed: true,
                    },
                ],
            ),
        ));
        out
    }
}
