//! Runs a perpetual scenario: price paths, a population, the venue's own liquidation engine
//! step by step, and the report.
//!
//! ```text
//!  PerpScenario ──> paths (market::path) ──> PerpVenue + population (makers take the net side)
//!   each step: oracle quanta ──> PerpVenue::step ──> events tallied per step
//!   each sample: series, the risk-formula scan of every account, the ledger check
//!   end: ledger check, PerpReport
//! ```
//!
//! The venue's own engine liquidates (as the derivative venues do), or with `[perp.keeper]` the
//! host's dispatcher does, by reduce-only orders ([`super::keeper`]); the scan at each sample
//! maps every account onto the risk formula ([`super::risk`]) and counts those the formula
//! finds in breach beside those the venue's test finds.

use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::keeper::{Keeper, margin_bps};
use super::report::{Bearers, KeeperFigures, PerpReport, PerpSeries, Timing};
use super::scenario::{PerpScenario, usd};
use super::tiers::PPM;
use super::{MarketParams, PerpError, PerpEvent, PerpVenue, QUANTA_PER_UNIT, VAULT, risk};
use crate::market::normal;
use crate::market::path::{PathError, build_paths};
use crate::scenario::ScenarioError;
use crate::venue::DepthModel;

/// Why a perpetual run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PerpRunError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// A price path could not be built (e.g. a replay file is missing).
    #[error("price paths: {0}")]
    Path(#[from] PathError),
    /// The venue refused its set-up or a step.
    #[error("venue: {0}")]
    Venue(#[from] PerpError),
    /// The keeper cannot price a market (`[perp.keeper]`).
    #[error("keeper: {0}")]
    Keeper(#[from] super::keeper::PriceRange),
}

/// Quote quanta per lot for a price in quote units per whole unit.
fn lot_price(price: f64, lot: f64) -> i128 {
    let q = (price * lot * QUANTA_PER_UNIT as f64).round();
    if q.is_finite() && q >= 1.0 { q.min(1e24) as i128 } else { 1 }
}

/// A venue ready to run, with what the loop needs beside it.
pub struct Built {
    /// The venue with its population.
    pub venue: PerpVenue,
    /// Base units per lot, per market.
    pub lots: Vec<f64>,
    /// Oracle paths, quote units per whole unit, one price per step (and the start).
    pub paths: Vec<Vec<f64>>,
    /// Market symbols.
    pub symbols: Vec<String>,
}

/// Builds the venue with its population and the price paths.
pub fn build(s: &PerpScenario, base: &Path) -> Result<Built, PerpRunError> {
    let path = base.join("scenario");
    let markets = s.markets(&path)?;
    let steps = (s.duration_secs / s.step_secs).ceil() as usize;
    let specs: Vec<(String, crate::market::PathSpec)> = markets
        .iter()
        .map(|m| {
            let mut p = m.section.price.clone().expect("validated: every market has a path");
            // A copy follows its family's leader by the leader's own name.
            if let Some(f) = &mut p.follow
                && !markets.iter().any(|x| x.symbol == f.asset)
            {
                f.asset = format!("{}-1", f.asset);
            }
            (m.symbol.clone(), p)
        })
        .collect();
    let paths = build_paths(&specs, steps, s.step_secs, s.seed, base)?;
    let lots: Vec<f64> = markets.iter().map(|m| m.section.lot).collect();
    let params = markets
        .iter()
        .zip(&paths)
        .map(|(m, p)| {
            let params = MarketParams {
                symbol: m.symbol.clone(),
                tiers: m.tiers.clone(),
                funding: m.funding.clone(),
                depth: DepthModel::new(m.section.depth_usd_per_pct, m.section.half_life_secs),
                mark_ema_ppm: m.section.mark_ema_ppm,
            };
            (params, lot_price(p.prices[0], m.section.lot))
        })
        .collect();
    let p = &s.perp;
    let mut config = p.liquidation.config();
    config.keeper = p.keeper.is_some();
    let mut v = PerpVenue::new(params, usd(p.fund_usd), usd(p.vault_usd), config)?;
    populate(s, &mut v, &markets.iter().map(|m| m.section.weight).collect::<Vec<_>>())?;
    let symbols = markets.iter().map(|m| m.symbol.clone()).collect();
    Ok(Built { venue: v, lots, paths: paths.into_iter().map(|p| p.prices).collect(), symbols })
}

/// Opens the traders (stream 0 of the seed) and a maker per market who takes the net side.
fn populate(s: &PerpScenario, v: &mut PerpVenue, weights: &[f64]) -> Result<(), PerpRunError> {
    let pop = &s.perp.population;
    let n = v.markets.len();
    let makers: Vec<usize> = (0..n).map(|_| v.open_account(0)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let total: f64 = weights.iter().sum();
    let cum: Vec<f64> = weights
        .iter()
        .scan(0.0, |c, w| {
            *c += w / total;
            Some(*c)
        })
        .collect();
    let pick = |rng: &mut ChaCha8Rng| {
        let u: f64 = rng.r#gen();
        cum.iter().position(|&c| u < c).unwrap_or(n - 1)
    };
    let mut chosen: Vec<usize> = Vec::with_capacity(pop.markets_per_account as usize);
    let mut legs: Vec<(usize, i128, i128)> = Vec::with_capacity(pop.markets_per_account as usize);
    for _ in 0..pop.accounts {
        let isolated = rng.r#gen::<f64>() < pop.isolated_share;
        let k = if isolated { 1 } else { rng.gen_range(1..=pop.markets_per_account as usize) };
        chosen.clear();
        for _ in 0..k * 4 {
            let m = pick(&mut rng);
            if !chosen.contains(&m) {
                chosen.push(m);
            }
            if chosen.len() == k {
                break;
            }
        }
        legs.clear();
        let mut margin = 0i128;
        for &m in &chosen {
            let notional =
                (pop.size_median_usd * (pop.size_sigma * normal(&mut rng)).exp()).min(pop.size_max_usd);
            let price = v.markets[m].mark;
            let lots = (usd(notional) / price).max(1);
            let side = if rng.r#gen::<f64>() < pop.long_share { 1 } else { -1 };
            let lev = (pop.leverage_median * (pop.leverage_sigma * normal(&mut rng)).exp())
                .clamp(1.0, pop.leverage_max);
            let value = lots * price;
            let mm = v.markets[m].params.tiers.maintenance_scaled(value);
            let cover = (mm as f64 / PPM as f64 * pop.min_margin_cover).ceil() as i128;
            margin += ((value as f64 / lev).ceil() as i128).max(cover);
            legs.push((m, side * lots, price));
        }
        let owner = v.open_account(margin);
        let acct = if isolated { v.open_isolated(owner, legs[0].0, margin)? } else { owner };
        for &(m, size, price) in &legs {
            v.trade(acct, makers[m], m, size, price, 0)?;
        }
    }
    for (m, &mk) in makers.iter().enumerate() {
        let value = v.accounts[mk].positions[m].size.abs() * v.markets[m].mark;
        let deposit = ((value as f64 * pop.maker_margin).ceil() as i128).max(QUANTA_PER_UNIT);
        let a = &mut v.accounts[mk];
        a.quote += deposit;
        a.deposits += deposit;
    }
    Ok(())
}

/// Runs a scenario; `progress(k, n)` is called now and then.
pub fn run_perp(
    s: &PerpScenario,
    base: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<PerpReport, PerpRunError> {
    let started = Instant::now();
    let Built { venue: mut v, lots, paths, symbols } = build(s, base)?;
    let setup_secs = started.elapsed().as_secs_f64();
    let traders = v.accounts.len() - 2 - v.markets.len();
    let n = v.markets.len();
    let steps = (s.duration_secs / s.step_secs).ceil() as usize;
    let dt = s.step_secs as u64;
    let sample_every = ((s.perp.sample_secs / s.step_secs).round() as usize).max(1);
    let mut series = PerpSeries::new(&symbols);
    let mut per_step_liq = Vec::with_capacity(steps);
    let mut per_step_adl = Vec::with_capacity(steps);
    let mut bearers = Bearers::default();
    let mut liquidated = 0i128;
    let mut oracles = vec![0i128; n];
    let mut low = vec![f64::INFINITY; n];
    let mut checks = 0u64;
    let mut conservation_error = None;
    let mut timing = Timing { setup_secs, ..Default::default() };
    let makers_end = 2 + n;
    let mut keeper = s.perp.keeper.as_ref().map(|k| {
        let latency_ns = (k.latency_secs * 1e9).round() as u64;
        Keeper::new(
            &v.config,
            margin_bps(k.target_margin),
            k.slippage_bps,
            k.max_in_flight as usize,
            latency_ns,
        )
    });
    sample(&v, &lots, 0.0, &mut series, &bearers);
    let loop_start = Instant::now();
    for step in 1..=steps {
        for ((o, p), lot) in oracles.iter_mut().zip(&paths).zip(&lots) {
            *o = lot_price(p[step], *lot);
        }
        let t0 = Instant::now();
        v.step(dt, &oracles)?;
        if let Some(k) = &mut keeper {
            k.after_step(&mut v)?;
        }
        let step_wall = t0.elapsed().as_secs_f64();
        let (mut liq, mut adl) = (0u32, 0u32);
        for e in &v.events {
            match *e {
                PerpEvent::BookFill { size, price, .. } => {
                    liq += 1;
                    liquidated += size.abs() * price;
                }
                PerpEvent::Backstop { size, price, market, .. } => {
                    liq += 1;
                    liquidated += size.abs() * price;
                    // What the vault paid over the mark: a shortfall it bore (or margin it kept).
                    let mark = v.markets[market].mark;
                    let x = size * (mark - price);
                    if x < 0 {
                        bearers.vault += -x;
                    } else {
                        bearers.vault_kept += x;
                    }
                }
                PerpEvent::Adl { counterparty, haircut, .. } => {
                    adl += 1;
                    if counterparty < makers_end {
                        bearers.adl_makers += haircut;
                    } else {
                        bearers.adl_traders += haircut;
                    }
                }
                PerpEvent::FundCover { amount, .. } => bearers.fund += amount,
                PerpEvent::BadDebt { amount, .. } => bearers.unpaid += amount,
                PerpEvent::Funding { .. } => {}
            }
        }
        let events = (liq + adl) as f64;
        // The cascade's peak: the busiest step, and its events per second of wall time.
        if liq + adl > timing.peak_step_events {
            timing.peak_events_per_wall_sec = events / step_wall.max(1e-9);
            timing.peak_step_events = liq + adl;
            timing.peak_step_wall_secs = step_wall;
        }
        per_step_liq.push(liq);
        per_step_adl.push(adl);
        for (k, m) in v.markets.iter().enumerate() {
            low[k] = low[k].min(m.mark as f64 / lots[k] / QUANTA_PER_UNIT as f64);
        }
        if step % sample_every == 0 || step == steps {
            sample(&v, &lots, v.now as f64, &mut series, &bearers);
            checks += 1;
            if conservation_error.is_none()
                && let Err(e) = v.check_conservation()
            {
                conservation_error = Some(format!("at {} s: {e}", v.now));
            }
            progress(step as u64, steps as u64);
        }
    }
    timing.loop_secs = loop_start.elapsed().as_secs_f64();
    let z = v.check_conservation();
    if let (None, Err(e)) = (&conservation_error, &z) {
        conservation_error = Some(format!("at the end: {e}"));
    }
    let (scan_breached, venue_breached) = scan(&v);
    let mut report = PerpReport::build(
        s,
        &v,
        traders,
        &symbols,
        &paths,
        &low,
        series,
        per_step_liq,
        per_step_adl,
        bearers,
        liquidated,
        checks + 1,
        conservation_error,
        z.ok(),
        (scan_breached, venue_breached),
        timing,
    );
    report.keeper = keeper.map(|k| KeeperFigures::of(k.dispatcher()));
    Ok(report)
}

/// The keeper's view: accounts the risk formula finds in breach, and those the venue's own
/// test does (they must agree: the mapping is exact).
pub fn scan(v: &PerpVenue) -> (u64, u64) {
    let marks = v.marks();
    let (mut formula, mut venue) = (0, 0);
    for i in 2..v.accounts.len() {
        if i == VAULT || !v.accounts[i].has_position() {
            continue;
        }
        formula += (risk::risk_terms(v, i).health_scaled(&marks) < 0) as u64;
        venue += v.is_liquidatable(i) as u64;
    }
    (formula, venue)
}

fn sample(v: &PerpVenue, lots: &[f64], t: f64, se: &mut PerpSeries, b: &Bearers) {
    let u = |q: i128| q as f64 / QUANTA_PER_UNIT as f64;
    se.t.push(t);
    for (k, m) in v.markets.iter().enumerate() {
        se.mark[k].push(m.mark as f64 / lots[k] / QUANTA_PER_UNIT as f64);
        se.oracle[k].push(m.oracle as f64 / lots[k] / QUANTA_PER_UNIT as f64);
    }
    se.fund_usd.push(u(v.fund));
    let marks = v.marks();
    let pnl = |i: usize| {
        let a = &v.accounts[i];
        u(a.realised + a.unrealised(&marks) + a.funding - a.fees)
    };
    se.vault_pnl_usd.push(pnl(VAULT));
    se.book_pnl_usd.push(pnl(super::BOOK));
    let oi: i128 =
        v.accounts.iter().flat_map(|a| a.positions.iter()).map(|(k, p)| p.size.max(0) * marks[k]).sum();
    se.open_interest_usd.push(u(oi));
    se.bad_debt_usd.push(u(b.total()));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::market::PathSpec;
    use crate::market::path::{Follow, Gbm, Shock};
    use crate::perp::scenario::{
        FundingSpec, KeeperSection, LiquidationSection, MarketSection, PerpPopulation, PerpSection, TiersSpec,
    };

    fn market(price: PathSpec, depth: f64, tiers: &str, copies: u32) -> MarketSection {
        MarketSection {
            price: Some(price),
            lot: 0.01,
            depth_usd_per_pct: depth,
            half_life_secs: 60.0,
            tiers: TiersSpec::Preset(tiers.into()),
            funding: FundingSpec::Preset("hyperliquid".into()),
            mark_ema_ppm: 200_000,
            weight: 1.0,
            copies,
            drop_range: (copies > 1).then_some([0.2, 0.7]),
        }
    }

    /// A random small scenario: a leader, a follower family, random shocks, random mechanism.
    fn scenario() -> impl Strategy<Value = PerpScenario> {
        let liq = (
            0u32..1_000_000,
            0u64..40,
            1u32..1_000_000,
            any::<bool>(),
            100_000u32..1_000_000,
            any::<bool>(),
            any::<bool>(),
            0u32..10_000,
            (any::<bool>(), any::<bool>(), any::<bool>()),
        )
            .prop_map(
                |(
                    chunk_ppm,
                    cooldown_secs,
                    max_book_move_ppm,
                    backstop,
                    backstop_below_ppm,
                    insurance,
                    adl,
                    fee_ppm,
                    (then_whole, backstop_bounded, bankruptcy_limit),
                )| {
                    LiquidationSection {
                        chunk_ppm,
                        cooldown_secs,
                        min_chunk_notional_usd: 5_000.0,
                        then_whole,
                        max_book_move_ppm,
                        backstop,
                        backstop_below_ppm,
                        backstop_bounded,
                        insurance,
                        adl,
                        fee_ppm,
                        bankruptcy_limit,
                    }
                },
            );
        (
            any::<u64>(),
            (0.05f64..0.6, 10u64..200, 1u64..60),
            (1e4f64..1e7, 1e3f64..1e6),
            1u32..4,
            (5u64..60, 0.0f64..1.0, 0.0f64..1.0, 1u32..4),
            (0.0f64..1e6, 0.0f64..1e7, prop_oneof![Just(1.0), 0.5f64..2.0]),
            liq,
            prop_oneof![Just("binance_btc_2022"), Just("flat:20000"), Just("flat:100000")],
            prop::option::of((0u32..3, 1.0f64..1.2, 10u32..300, 1u32..64)),
        )
            .prop_map(
                |(
                    seed,
                    (drop, at, fall),
                    (d0, d1),
                    copies,
                    (accounts, iso, long, mpa),
                    (fund, vault, mmr_scale),
                    liquidation,
                    tiers,
                    keeper,
                )| {
                    let shock = Shock {
                        at_secs: at as f64,
                        drop,
                        fall_secs: fall as f64,
                        recover: 0.5,
                        recover_secs: 60.0,
                    };
                    let lead = PathSpec {
                        gbm: Some(Gbm {
                            start: 2_000.0,
                            drift_day: 0.0,
                            vol_day: 0.05,
                            jumps_per_day: 0.0,
                            jump_mean: 0.0,
                            jump_std: 0.0,
                        }),
                        shocks: vec![shock.clone()],
                        ..Default::default()
                    };
                    let alt = PathSpec {
                        follow: Some(Follow { asset: "A".into(), start: 10.0, beta: 1.5, vol_day: 0.1 }),
                        shocks: vec![shock],
                        ..Default::default()
                    };
                    let markets = BTreeMap::from([
                        ("A".to_string(), market(lead, d0, tiers, 1)),
                        ("B".to_string(), market(alt, d1, "flat:50000", copies)),
                    ]);
                    let population = PerpPopulation {
                        accounts,
                        isolated_share: iso,
                        long_share: long,
                        markets_per_account: mpa.min(1 + copies),
                        size_median_usd: 5_000.0,
                        size_sigma: 1.0,
                        size_max_usd: 1e6,
                        leverage_median: 10.0,
                        leverage_sigma: 0.7,
                        leverage_max: 50.0,
                        min_margin_cover: 1.1,
                        maker_margin: 0.3,
                    };
                    PerpScenario {
                        name: "random".into(),
                        description: String::new(),
                        seed,
                        duration_secs: 300.0,
                        step_secs: 1.0,
                        perp: PerpSection {
                            markets,
                            population,
                            liquidation,
                            fund_usd: fund,
                            vault_usd: vault,
                            sample_secs: 1.0,
                            mmr_scale,
                            calibration: Vec::new(),
                            keeper: keeper.map(|(latency, target_margin, slippage_bps, max_in_flight)| {
                                KeeperSection {
                                    latency_secs: latency as f64,
                                    target_margin,
                                    slippage_bps,
                                    max_in_flight,
                                }
                            }),
                        },
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// The wired venue (population with isolated accounts and makers, every mechanism
        /// switch from the scenario, copies with their own falls, the venue's own engine or
        /// the keeper's reduce-only orders) is zero-sum after every step,
        /// and the report's bearers of bad debt match the venue's ledger.
        #[test]
        fn a_scenario_run_is_zero_sum_after_every_step(s in scenario()) {
            let path = Path::new("random.toml");
            prop_assume!(s.validate(path).is_ok());
            let r = run_perp(&s, Path::new("."), &mut |_, _| {}).unwrap();
            prop_assert!(r.conservation_ok, "{:?}", r.conservation_error);
            prop_assert_eq!(r.ledger_checks, 301, "a check after every step and at the end");
            let z = r.zero_sum.clone().unwrap();
            prop_assert_eq!(z.total(), 0);
            // The events tallied per step and by bearer agree with the venue's own ledger.
            let l = &r.ledger;
            prop_assert_eq!(r.bad_debt.fund, l.fund_paid);
            prop_assert_eq!(r.bad_debt.unpaid, l.unpaid_bad_debt);
            prop_assert!(r.bad_debt.adl_traders >= 0 && r.bad_debt.adl_makers >= 0 && r.bad_debt.vault >= 0);
            prop_assert_eq!(r.liquidations_per_step.iter().map(|&x| x as u64).sum::<u64>(), l.book_fills + l.backstop_takeovers);
            prop_assert_eq!(r.adl_per_step.iter().map(|&x| x as u64).sum::<u64>(), l.adl_events);
            let (f, venue) = r.scan_breached;
            prop_assert_eq!(f, venue, "the risk formula and the venue's test agree");
        }
    }
}
