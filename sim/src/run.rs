//! One simulation run: market -> oracle -> venue -> scan engine -> dispatch -> venue, per step.
//!
//! ```text
//!  paths ──x dent──> market ──> oracle ──tick──> ScanEngine ──bitmaps──> Dispatcher
//!    ^                                   ^                                      │ orders
//!    │ sales (impact)                    │ upserts (dirty slots)                v (latency)
//!    └──────────────────────────────── Venue <──────────────── KeeperQueue ─────┘
//! ```
//!
//! Each step of `step_secs`: the dent heals and the market price is the path times the dent;
//! each oracle may publish (the venue's prices and the engine's price table move); accounts act;
//! orders whose latency has elapsed reach the venue; auctions advance; sales dent the market;
//! changed accounts are re-sent to the engine; the engine's changed bitmap words become the
//! dispatcher's news; the dispatcher polls and sends.

use std::collections::VecDeque;
use std::path::Path;

use liqscan_hdl::abi::{Coeff, PriceEntry};
use liqscan_host::dispatch::sizing::{BPS, SizingPolicy};
use liqscan_host::dispatch::{
    Completion, DispatchConfig, Dispatcher, Executor, LiquidationOrder, Mechanism, ScanBatch, SubmitError,
};
use liqscan_host::engine::{ScanEngine, SoftwareEngine, Step};
use liqscan_host::model::{AssetSpec, AssetTable, Decimal, VenueSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::market::{Oracle, PricePath, path::build_paths};
use crate::report::{Report, Series, Summary};
use crate::scenario::Scenario;
use crate::venue::auction::MarketView;
use crate::venue::{DepthModel, MechanismKind, Sale, Venue, VenueAsset};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A price path could not be built.
    #[error(transparent)]
    Path(#[from] crate::market::path::PathError),
    /// The assets do not form a valid table.
    #[error("assets: {0}")]
    Assets(#[from] liqscan_host::model::QuoteError),
    /// A weight with more than 6 decimals (the venue keeps weights in parts per million).
    #[error("asset '{asset}' tier '{tier}': weight {weight} has more than 6 decimals")]
    Weight {
        /// Asset.
        asset: String,
        /// Tier.
        tier: String,
        /// The weight.
        weight: Decimal,
    },
    /// A price the integer model cannot hold.
    #[error("asset '{asset}' price {price} at t={t}s: {detail}")]
    Price {
        /// Asset.
        asset: String,
        /// Price.
        price: f64,
        /// Time.
        t: f64,
        /// Why.
        detail: String,
    },
    /// The engine refused an account (its balances do not fit 32-bit coefficients).
    #[error("scan engine: {0}")]
    Engine(#[from] liqscan_host::engine::EngineError),
    /// The engine asked for could not be opened (the emulated card, its link).
    #[error(transparent)]
    Backend(#[from] crate::card::BackendError),
    /// The ledger identities failed: a bug in the venue.
    #[error("conservation check failed at t={t}s: {source}")]
    Conservation {
        /// Time.
        t: f64,
        /// The failing identity.
        source: crate::venue::ConservationError,
    },
}

fn ppm(asset: &str, tier: &str, w: Decimal) -> Result<u32, SimError> {
    let bad = || SimError::Weight { asset: asset.into(), tier: tier.into(), weight: w };
    let v = w.floor_shifted(6).map_err(|_| bad())?;
    if Decimal::new(v, 6).normalized() != w.normalized() || !(0..=u32::MAX as i128).contains(&v) {
        return Err(bad());
    }
    Ok(v as u32)
}

/// Orders in transit from the keeper to the venue (the executor the dispatcher sees).
pub struct KeeperQueue {
    pending: VecDeque<(f64, LiquidationOrder)>,
    done: Vec<Completion>,
    now_s: f64,
    latency_s: f64,
    jitter_s: f64,
    saving_s: f64,
    rng: ChaCha8Rng,
}

impl Executor for KeeperQueue {
    fn name(&self) -> &str {
        "simulated venue"
    }

    fn submit(&mut self, order: &LiquidationOrder) -> Result<(), SubmitError> {
        let u: f64 = self.rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
        let mut d = self.latency_s - self.jitter_s * u.ln();
        if order.prebuilt {
            d = (d - self.saving_s).max(0.0);
        }
        let at = self.now_s + d;
        let pos = self.pending.partition_point(|(t, _)| *t <= at);
        self.pending.insert(pos, (at, order.clone()));
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.done);
    }
}

/// A prepared run.
pub struct Sim {
    /// The scenario.
    pub scenario: Scenario,
    table: AssetTable,
    symbols: Vec<String>,
    paths: Vec<PricePath>,
    /// The venue.
    pub venue: Venue,
    engine: Box<dyn ScanEngine>,
    dispatcher: Dispatcher,
    queue: KeeperQueue,
    oracles: Vec<Oracle>,
    base_weights: Vec<Vec<(u32, u32)>>,
    base_stress: Vec<Decimal>,
    activity_rng: ChaCha8Rng,
    slots: usize,
    /// Published oracle price per asset at every step (the dynamic rule's input).
    oracle_hist: Vec<Vec<f64>>,
    dyn_figs: Vec<crate::report::DynamicFigures>,
}

fn quote_price(table: &AssetTable, sym: &str, i: usize, p: f64, t: f64) -> Result<PriceEntry, SimError> {
    // Ten significant digits: the integer price has at most ten anyway.
    let text = format!("{:.*}", (9 - p.abs().log10().floor() as i32).clamp(0, 18) as usize, p);
    let d: Decimal = text.parse().map_err(|e: liqscan_host::model::DecimalError| SimError::Price {
        asset: sym.into(),
        price: p,
        t,
        detail: e.to_string(),
    })?;
    table.quote(i as u16, d).map_err(|e| SimError::Price {
        asset: sym.into(),
        price: p,
        t,
        detail: e.to_string(),
    })
}

impl Sim {
    /// Builds the world: paths, assets, population, engine, dispatcher. `base` resolves file
    /// names in the scenario. The engine is the software engine.
    pub fn new(scenario: Scenario, base: &Path) -> Result<Self, SimError> {
        Sim::with_engine(scenario, base, &mut |slots, assets| {
            Ok(Box::new(SoftwareEngine::new(slots, assets)) as Box<dyn ScanEngine>)
        })
    }

    /// [`Sim::new`] with the engine `make_engine(slots, assets)` builds (the card behind its
    /// link, wrapped in a fail-over engine, as `liqscan sim --backend` does): any engine gives
    /// the same run, bit for bit.
    pub fn with_engine(
        scenario: Scenario,
        base: &Path,
        make_engine: &mut dyn FnMut(usize, usize) -> Result<Box<dyn ScanEngine>, SimError>,
    ) -> Result<Self, SimError> {
        let s = &scenario;
        let steps = (s.duration_secs / s.step_secs).ceil() as usize;
        let symbols: Vec<String> = s.assets.keys().cloned().collect();
        let specs: Vec<(String, crate::market::PathSpec)> =
            s.assets.iter().map(|(k, a)| (k.clone(), a.price.clone())).collect();
        let paths = build_paths(&specs, steps, s.step_secs, s.seed, base)?;
        let asset_specs: Vec<AssetSpec> = s
            .assets
            .iter()
            .map(|(k, a)| AssetSpec {
                symbol: k.clone(),
                decimals: 18,
                quantum_exp: a.quantum_exp,
                stress: a.stress,
                tiers: a.tiers.clone(),
                allow_zero_price: false,
                price_range: None,
            })
            .collect();
        let table = AssetTable::new(
            VenueSpec { name: s.name.clone(), value_exp: s.value_exp, price_range: None },
            asset_specs,
        )?;
        let tiers: Vec<String> = s.population.tiers.keys().cloned().collect();
        let mut assets = Vec::new();
        for (sym, a) in &s.assets {
            let mut weights = Vec::new();
            for t in &tiers {
                let w = a.tiers[t];
                weights.push((ppm(sym, t, w.asset_weight)?, ppm(sym, t, w.liability_weight)?));
            }
            let depth = a.depth.clone().unwrap_or(DepthModel::new(f64::INFINITY, 0.0));
            assets.push(VenueAsset { symbol: sym.clone(), weights, depth });
        }
        let quote = symbols.iter().position(|x| *x == s.quote).expect("validated") as u16;
        let value_per_usd = 10f64.powi(-s.value_exp);
        let q_exp = s.assets[&s.quote].quantum_exp;
        let fund = (s.insurance.initial_usd * 10f64.powi(-q_exp)) as i128;
        let mut venue = Venue::new(assets, quote, s.liquidation.clone(), fund, value_per_usd);
        // Prices at t = 0.
        let mut oracles = Vec::new();
        for (i, sym) in symbols.iter().enumerate() {
            let p0 = paths[i].prices[0];
            venue.prices[i] = quote_price(&table, sym, i, p0, 0.0)?;
            oracles.push(Oracle::new(s.oracle.clone(), 0.0, p0));
        }
        // Population.
        let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
        rng.set_stream(1_000);
        let slots = s.population.accounts
            + s.population.lenders
            + (s.activity.opens_per_hour * s.duration_secs / 3600.0 * 1.5) as usize
            + 64;
        let oracle_hist: Vec<Vec<f64>> = paths.iter().map(|p| vec![p.prices[0]]).collect();
        let dyn_figs = symbols.iter().map(|x| crate::report::DynamicFigures::new(x)).collect();
        let mut sim = Sim {
            base_weights: venue.assets.iter().map(|a| a.weights.clone()).collect(),
            base_stress: s.assets.values().map(|a| a.stress).collect(),
            table,
            symbols,
            paths,
            venue,
            engine: make_engine(slots, s.assets.len())?,
            dispatcher: Dispatcher::new(dispatch_config(s)),
            queue: KeeperQueue {
                pending: VecDeque::new(),
                done: Vec::new(),
                now_s: 0.0,
                latency_s: s.keeper.latency_ms / 1e3,
                jitter_s: s.keeper.jitter_ms / 1e3,
                saving_s: s.keeper.prebuilt_saving_ms / 1e3,
                rng: {
                    let mut r = ChaCha8Rng::seed_from_u64(s.seed);
                    r.set_stream(2_000);
                    r
                },
            },
            oracles,
            activity_rng: {
                let mut r = ChaCha8Rng::seed_from_u64(s.seed);
                r.set_stream(3_000);
                r
            },
            slots,
            oracle_hist,
            dyn_figs,
            scenario: scenario.clone(),
        };
        for _ in 0..sim.scenario.population.lenders {
            let usd = sim.scenario.population.lender(&mut rng);
            sim.open_lender(usd, true);
        }
        for _ in 0..sim.scenario.population.accounts {
            sim.open_borrower(&mut rng, true);
        }
        for (i, e) in sim.venue.prices.clone().into_iter().enumerate() {
            sim.engine.tick(i as u16, e)?;
        }
        sim.sync_engine()?;
        sim.engine.loaded();
        Ok(sim)
    }

    fn quanta(&self, asset: usize, usd: f64) -> i128 {
        let price = self.paths[asset].prices[0];
        let q_exp = self.table.assets()[asset].quantum_exp;
        (usd / price * 10f64.powi(-q_exp)).floor() as i128
    }

    fn open_lender(&mut self, usd: f64, initial: bool) {
        let q = self.venue.quote as usize;
        let mut bal = vec![0i128; self.symbols.len()];
        bal[q] = self.quanta(q, usd).max(1);
        self.venue.open(0, bal, initial);
    }

    fn open_borrower(&mut self, rng: &mut ChaCha8Rng, initial: bool) {
        let s = &self.scenario;
        let tiers: Vec<&String> = s.population.tiers.keys().collect();
        let weight = |sym: &str, tier: &str| s.assets[sym].tiers[tier].asset_weight.to_f64_lossy();
        let b = s.population.borrower(rng, &weight);
        let tier = tiers.iter().position(|t| **t == b.tier).expect("drawn from tiers") as u16;
        let q = self.venue.quote as usize;
        let mut bal = vec![0i128; self.symbols.len()];
        for (sym, usd) in &b.collateral {
            let i = self.symbols.iter().position(|x| x == sym).expect("validated");
            // Valued at the current market, not the start: opens happen all day.
            let q_exp = self.table.assets()[i].quantum_exp;
            let price = self.venue.prices[i].spot.asset as f64 * 10f64.powi(s.value_exp - q_exp);
            bal[i] += (usd / price.max(1e-12) * 10f64.powi(-q_exp)).floor() as i128;
        }
        bal[q] = -(self.quanta(q, b.debt_usd).max(1));
        if self.venue.accounts.iter().filter(|a| a.open).count() + 1 < self.slots {
            self.venue.open(tier, bal, initial);
        }
    }

    /// Sends changed accounts to the engine.
    fn sync_engine(&mut self) -> Result<(), SimError> {
        let mut dirty = Vec::new();
        self.venue.take_dirty(&mut dirty);
        let mut terms: Vec<Coeff> = Vec::new();
        for slot in dirty {
            self.venue.terms(slot, &mut terms);
            if terms.is_empty() {
                self.engine.remove(slot)?;
            } else {
                self.engine.upsert(slot, &terms)?;
            }
        }
        Ok(())
    }

    fn activity(&mut self, dt: f64) {
        let a = self.scenario.activity.clone();
        let mut rng = self.activity_rng.clone();
        let draws = |rate: f64, rng: &mut ChaCha8Rng| -> u32 {
            // Poisson by inversion; rates per step are small.
            let lambda = rate * dt / 3600.0;
            if lambda <= 0.0 {
                return 0;
            }
            let (mut k, mut p, l) = (0, 1.0, (-lambda).exp());
            loop {
                p *= rng.r#gen::<f64>();
                if p <= l {
                    return k;
                }
                k += 1;
            }
        };
        let n = self.venue.accounts.len();
        for _ in 0..draws(a.opens_per_hour, &mut rng) {
            self.open_borrower(&mut rng, false);
        }
        for _ in 0..draws(a.closes_per_hour, &mut rng) {
            if n > 0 {
                let slot = rng.gen_range(0..n) as u32;
                if self.venue.accounts[slot as usize].bal[self.venue.quote as usize] < 0 {
                    self.venue.close(slot);
                }
            }
        }
        for _ in 0..draws(a.deposits_per_hour, &mut rng) {
            if n > 0 {
                let slot = rng.gen_range(0..n);
                let acct = &self.venue.accounts[slot];
                if let Some(asset) =
                    (0..acct.bal.len()).find(|&i| i != self.venue.quote as usize && acct.bal[i] > 0)
                {
                    let add = acct.bal[asset] * rng.gen_range(10..=50) / 100;
                    self.venue.deposit(slot as u32, asset as u16, add);
                }
            }
        }
        for _ in 0..draws(a.borrows_per_hour, &mut rng) {
            if n > 0 {
                let slot = rng.gen_range(0..n);
                let debt = -self.venue.accounts[slot].bal[self.venue.quote as usize];
                if debt > 0 {
                    let more = debt * rng.gen_range(5..=20) / 100;
                    self.venue.borrow(slot as u32, more, 12_500);
                }
            }
        }
        self.activity_rng = rng;
    }

    /// Volatility-dependent weights and stress (see `DynamicConfig` and the rule in
    /// `docs/SIMULATOR.md`): measured on the oracle's published prices, the only prices a venue
    /// has, at `return_secs` returns.
    #[allow(clippy::needless_range_loop)]
    fn dynamic(&mut self, k: usize) -> Result<(), SimError> {
        let d = self.scenario.dynamic.clone();
        let dt = self.scenario.step_secs;
        let lag = ((d.return_secs / dt).round() as usize).max(1);
        let returns = ((d.window_secs / d.return_secs).floor() as usize).max(1);
        let mut specs: Vec<AssetSpec> = self.table.assets().to_vec();
        let mut changed = false;
        for a in 0..self.symbols.len() {
            if a == self.venue.quote as usize {
                continue;
            }
            let Some(vol_day) = realised_vol_day(&self.oracle_hist[a], k, lag, returns, dt) else {
                continue;
            };
            let m = weight_multiplier(vol_day, &d);
            let fig = &mut self.dyn_figs[a];
            fig.updates += 1;
            fig.max_vol_day = fig.max_vol_day.max(vol_day);
            fig.min_multiplier = fig.min_multiplier.min(m);
            let new: Vec<(u32, u32)> =
                self.base_weights[a].iter().map(|&(w, l)| (((w as f64) * m).floor() as u32, l)).collect();
            if new != self.venue.assets[a].weights {
                fig.weight_changes += 1;
                if fig.first_change_secs.is_none() {
                    fig.first_change_secs = Some(k as f64 * dt);
                }
                self.venue.assets[a].weights = new;
                for slot in 0..self.venue.accounts.len() {
                    if self.venue.accounts[slot].open && self.venue.accounts[slot].bal[a] != 0 {
                        self.venue.mark_dirty(slot as u32);
                    }
                }
            }
            let stress = (d.stress_z * vol_day * (d.horizon_secs / 86_400.0).sqrt()).min(0.9);
            let base = self.base_stress[a].to_f64_lossy();
            let s = Decimal::new((stress.max(base) * 1e4).round() as i128, 4);
            fig.max_stress = fig.max_stress.max(s.to_f64_lossy());
            if s != specs[a].stress {
                specs[a].stress = s;
                changed = true;
            }
        }
        if changed {
            self.table = AssetTable::new(self.table.venue.clone(), specs)?;
            for a in 0..self.symbols.len() {
                let e =
                    quote_price(&self.table, &self.symbols[a], a, self.oracles[a].published, k as f64 * dt)?;
                self.venue.prices[a] = e;
                self.engine.tick(a as u16, e)?;
            }
        }
        Ok(())
    }

    /// Runs to the end; `progress(step, steps)` is called every 1% or so.
    #[allow(clippy::needless_range_loop)]
    pub fn run(mut self, progress: &mut dyn FnMut(u64, u64)) -> Result<Report, SimError> {
        let s = self.scenario.clone();
        let dt = s.step_secs;
        let steps = self.paths[0].prices.len() - 1;
        let n_assets = self.symbols.len();
        let q_exp = s.assets[&s.quote].quantum_exp;
        let usd_per_quote_quantum = 10f64.powi(q_exp);
        let mut series = Series::new(&self.symbols);
        let mut step = Step::starting_at(&mut self.engine);
        let mut market = vec![0.0; n_assets];
        let mut last_batch = 0.0;
        let mut halted_secs = 0.0;
        let mut max_age = vec![0.0f64; n_assets];
        let mut market_low = vec![f64::INFINITY; n_assets];
        let mut oracle_low = vec![f64::INFINITY; n_assets];
        let mut sales: Vec<Sale> = Vec::new();
        let mut ever_breached = 0u64;
        let mut fund_min = self.venue.fund;
        let sample_every = ((s.report.sample_secs / dt).round() as usize).max(1);
        let dyn_every = ((s.dynamic.update_secs / dt).round() as usize).max(1);
        let tick_every = (steps / 100).max(1);
        let mut batch = ScanBatch::default();
        self.sample(&mut series, 0.0, &market_from_paths(&self.paths, 0), usd_per_quote_quantum);
        for k in 1..=steps {
            let t = k as f64 * dt;
            let now_ns = (t * 1e9) as u64;
            for a in 0..n_assets {
                self.venue.assets[a].depth.recover(dt);
                market[a] = self.paths[a].prices[k] * self.venue.assets[a].depth.factor;
            }
            for a in 0..n_assets {
                if let Some(p) = self.oracles[a].observe(t, market[a]) {
                    let e = quote_price(&self.table, &self.symbols[a], a, p, t)?;
                    self.venue.prices[a] = e;
                    self.engine.tick(a as u16, e)?;
                }
                max_age[a] = max_age[a].max(self.oracles[a].age(t));
                self.oracle_hist[a].push(self.oracles[a].published);
                market_low[a] = market_low[a].min(market[a]);
                oracle_low[a] = oracle_low[a].min(self.oracles[a].published);
            }
            self.venue.halted = self.oracles.iter().any(|o| o.stale(t));
            if self.venue.halted {
                halted_secs += dt;
            }
            if s.dynamic.enabled && k % dyn_every == 0 {
                self.dynamic(k)?;
            }
            self.activity(dt);
            // Orders that have landed.
            self.queue.now_s = t;
            while self.queue.pending.front().is_some_and(|(at, _)| *at <= t) {
                let (_, order) = self.queue.pending.pop_front().expect("checked");
                let c = self.venue.execute(&order, t);
                self.queue.done.push(c);
            }
            let view = self.market_view(&market);
            self.venue.step_auctions(t, &view, &mut last_batch);
            self.venue.take_sales(&mut sales);
            for sale in sales.drain(..) {
                let a = sale.asset as usize;
                let usd = sale.quanta as f64 * view.usd_per_quantum[a];
                self.venue.assets[a].depth.sell(usd);
            }
            self.venue.settle_socialised();
            self.sync_engine()?;
            // News for the dispatcher: what changed in the bitmaps since the last step.
            batch.breached.clear();
            batch.cleared.clear();
            batch.at_risk.clear();
            batch.seq = k as u64;
            step.collect(&mut self.engine);
            step.diff_into(&self.engine, [&mut batch.breached, &mut batch.cleared, &mut batch.at_risk]);
            if !s.keeper.predictive {
                batch.at_risk.clear();
            }
            ever_breached += batch.breached.len() as u64;
            let prices = self.engine.prices().to_vec();
            if !batch.breached.is_empty() || !batch.cleared.is_empty() || !batch.at_risk.is_empty() {
                self.dispatcher.on_scan(now_ns, &batch, &prices, &self.venue, &mut self.queue);
            }
            self.dispatcher.poll(now_ns, &prices, &self.venue, &mut self.queue);
            fund_min = fund_min.min(self.venue.fund);
            if k % sample_every == 0 || k == steps {
                self.sample(&mut series, t, &market, usd_per_quote_quantum);
            }
            if k % tick_every == 0 || k == steps {
                progress(k as u64, steps as u64);
            }
        }
        self.venue
            .check_conservation()
            .map_err(|source| SimError::Conservation { t: steps as f64 * dt, source })?;
        let summary = Summary {
            halted_secs,
            max_oracle_age: max_age,
            oracle_updates: self.oracles.iter().map(|o| o.updates).collect(),
            breaches: ever_breached,
            fund_min,
            market_low,
            oracle_low,
            dynamic: s.dynamic.enabled.then(|| {
                let q = self.venue.quote as usize;
                self.dyn_figs.iter().enumerate().filter(|(a, _)| *a != q).map(|(_, f)| f.clone()).collect()
            }),
        };
        Ok(Report::build(
            &self.scenario,
            &self.symbols,
            &self.venue,
            &self.dispatcher,
            &self.paths,
            summary,
            series,
        ))
    }

    fn market_view(&self, market: &[f64]) -> MarketView {
        let q = self.venue.quote as usize;
        let qe = self.table.assets()[q].quantum_exp;
        let mut v = MarketView::default();
        for (a, &m) in market.iter().enumerate() {
            let e = self.table.assets()[a].quantum_exp;
            v.usd_per_quantum.push(m * 10f64.powi(e));
            v.quanta_price.push(m * 10f64.powi(e - qe) / market[q].max(1e-12));
        }
        v
    }

    fn sample(&self, series: &mut Series, t: f64, market: &[f64], usd_per_quote_quantum: f64) {
        series.t.push(t);
        for (a, m) in market.iter().enumerate() {
            series.price[a].push(*m);
            series.oracle[a].push(self.oracles[a].published);
        }
        series.fund_usd.push(self.venue.fund as f64 * usd_per_quote_quantum);
        series.breached.push(liqscan_host::bitmap::count(self.engine.breach()) as u64);
        let mut counts = vec![0u64; crate::report::HEALTH_BUCKETS.len() + 1];
        for slot in 0..self.venue.accounts.len() {
            if let Some(hf) = self.venue.health_factor(slot as u32) {
                let i =
                    crate::report::HEALTH_BUCKETS.iter().position(|&b| hf < b).unwrap_or(counts.len() - 1);
                counts[i] += 1;
            }
        }
        series.health.push(counts);
    }
}

/// Realised volatility scaled to one day, from the last `returns` non-overlapping log returns
/// over `lag` steps of `dt` seconds ending at step `k` of `hist` (one price per step); `None`
/// before one whole return is available.
pub fn realised_vol_day(hist: &[f64], k: usize, lag: usize, returns: usize, dt: f64) -> Option<f64> {
    let lag = lag.max(1);
    let k = k.min(hist.len().checked_sub(1)?);
    let mut var = 0.0;
    let mut n = 0usize;
    let mut j = k;
    while n < returns && j >= lag {
        let (p1, p0) = (hist[j], hist[j - lag]);
        if p1 > 0.0 && p0 > 0.0 {
            var += (p1 / p0).ln().powi(2);
            n += 1;
        }
        j -= lag;
    }
    if n == 0 {
        return None;
    }
    Some((var / n as f64 * 86_400.0 / (lag as f64 * dt)).sqrt())
}

/// The rule's multiplier of the base asset weights: `max(floor, min(1, ref_vol_day / vol_day))`.
pub fn weight_multiplier(vol_day: f64, d: &crate::scenario::DynamicConfig) -> f64 {
    if vol_day <= d.ref_vol_day { 1.0 } else { (d.ref_vol_day / vol_day).max(d.floor) }
}

fn market_from_paths(paths: &[PricePath], k: usize) -> Vec<f64> {
    paths.iter().map(|p| p.prices[k]).collect()
}

/// The keeper's dispatch rules for a scenario: the venue's rules plus the keeper's settings.
pub fn dispatch_config(s: &Scenario) -> DispatchConfig {
    let r = &s.liquidation;
    let dust_value = (r.dust_usd * 10f64.powi(-s.value_exp)) as i128;
    DispatchConfig {
        mechanism: if r.mechanism == MechanismKind::Direct { Mechanism::Direct } else { Mechanism::Kick },
        sizing: SizingPolicy {
            close_factor_bps: r.close_factor_bps,
            full_close_hf_bps: r.full_close_hf_bps,
            dust_value,
            bonus_bps: r.bonus_bps,
            target_hf_bps: (s.keeper.target_hf * BPS as f64).round() as u32,
        },
        reduce: Default::default(),
        max_in_flight: s.keeper.max_in_flight,
        timeout_ns: (s.keeper.timeout_secs * 1e9) as u64,
        max_attempts: s.keeper.max_attempts,
        backoff_base_ns: 1_000_000_000,
        backoff_cap_ns: 60_000_000_000,
        asset_backoff_ns: 10_000_000_000,
        settle_ns: (s.step_secs * 1e9) as u64,
    }
}

/// Runs a scenario file's scenario.
pub fn run(scenario: Scenario, base: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<Report, SimError> {
    Sim::new(scenario, base)?.run(progress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::DynamicConfig;

    #[test]
    fn realised_vol_recovers_a_known_volatility() {
        // A zig-zag of +-s per 300 s return: vol per sqrt day = s * sqrt(86400 / 300).
        let s = 0.01f64;
        let hist: Vec<f64> = (0..=3600).map(|t| 100.0 * (s * ((t / 300) % 2) as f64).exp()).collect();
        let v = realised_vol_day(&hist, 3600, 300, 12, 1.0).unwrap();
        assert!((v - s * (86_400.0f64 / 300.0).sqrt()).abs() < 1e-9, "{v}");
        assert_eq!(realised_vol_day(&hist, 299, 300, 12, 1.0), None, "no whole return yet");
    }

    #[test]
    fn one_step_returns_of_an_interpolated_path_hide_its_volatility() {
        // Bars of 600 s moving +-2%, joined linearly in log price (as bar replays are): measured
        // on 1 s returns the volatility is sqrt(600) times too small, which is why the rule
        // measures on `return_secs` returns (the cause of the identical-bad-debt report).
        let hist: Vec<f64> = (0..=7200)
            .map(|t| {
                let (bar, f) = (t / 600, (t % 600) as f64 / 600.0);
                let lv = |b: usize| if b.is_multiple_of(2) { 0.0 } else { 0.02 };
                100.0 * (lv(bar) + (lv(bar + 1) - lv(bar)) * f).exp()
            })
            .collect();
        let bar = realised_vol_day(&hist, 7200, 600, 12, 1.0).unwrap();
        let step = realised_vol_day(&hist, 7200, 1, 3600, 1.0).unwrap();
        assert!((bar - 0.02 * 12.0).abs() < 1e-9, "{bar}");
        assert!((bar / step - 600f64.sqrt()).abs() < 1e-6, "{bar} vs {step}");
    }

    #[test]
    fn weight_multiplier_follows_the_rule() {
        let d = DynamicConfig { ref_vol_day: 0.05, floor: 0.6, ..Default::default() };
        assert_eq!(weight_multiplier(0.01, &d), 1.0);
        assert_eq!(weight_multiplier(0.05, &d), 1.0);
        assert!((weight_multiplier(0.0625, &d) - 0.8).abs() < 1e-12);
        assert_eq!(weight_multiplier(1.0, &d), 0.6);
    }

    fn scenario(vol_day: f64, dynamic: bool) -> Scenario {
        let text = format!(
            r#"
name = "dyn"
seed = 5
duration_secs = 14400
quote = "USDC"
[assets.ETH]
quantum_exp = -4
stress = "0.05"
price = {{ gbm = {{ start = 2000.0, vol_day = {vol_day} }}, shocks = [{{ at_secs = 10800, drop = 0.3, fall_secs = 600 }}] }}
depth = {{ depth_usd_per_pct = 2000000.0 }}
[assets.ETH.tiers.default]
asset_weight = "0.825"
liability_weight = "1"
[assets.USDC]
quantum_exp = -2
price = {{ fixed = 1.0 }}
[assets.USDC.tiers.default]
asset_weight = "1"
liability_weight = "1"
[population]
accounts = 400
lenders = 20
tiers = {{ default = 1.0 }}
collateral = {{ ETH = 1.0 }}
[dynamic]
enabled = {dynamic}
window_secs = 3600
update_secs = 300
return_secs = 300
ref_vol_day = 0.05
floor = 0.8
"#
        );
        Scenario::parse(&text, Path::new("dyn.toml")).unwrap()
    }

    fn go(s: Scenario) -> Report {
        run(s, Path::new("."), &mut |_, _| {}).unwrap()
    }

    /// The rule moves weights and stress when the oracle's volatility is over the reference,
    /// and then changes the run's liquidations; under the reference it changes nothing.
    #[test]
    fn dynamic_thresholds_change_what_they_should() {
        // Volatile: 0.4 per sqrt day, 8 times the reference -> the floor (0.8).
        let (off, on) = (go(scenario(0.4, false)), go(scenario(0.4, true)));
        assert!(off.dynamic.is_none());
        let d = &on.dynamic.as_ref().unwrap()[0];
        assert_eq!(d.asset, "ETH");
        assert!(d.max_vol_day > 0.2, "{d:?}");
        assert_eq!(d.min_multiplier, 0.8);
        assert!(d.weight_changes >= 1 && d.first_change_secs.is_some_and(|t| t < 10_800.0), "{d:?}");
        assert!(d.max_stress > 0.05, "stress raised over the base: {d:?}");
        // Lower weights: accounts breach earlier, before the crash at 3 h.
        assert!(on.liquidations.breach_events > off.liquidations.breach_events, "more breaches");
        let before = |r: &Report| {
            let k = r.series.t.iter().position(|&t| t >= 10_700.0).unwrap();
            r.series.fund_usd[k]
        };
        assert!(before(&on) > before(&off), "liquidations (fund income) before the crash");
        assert!(on.conservation_ok && off.conservation_ok);
        // Calm: 0.01 per sqrt day, under the reference until the crash itself. Up to the crash
        // the rule must leave everything as it was.
        let calm = go(scenario(0.01, true));
        let calm_off = go(scenario(0.01, false));
        let d = &calm.dynamic.as_ref().unwrap()[0];
        assert!(d.first_change_secs.is_none_or(|t| t >= 10_800.0), "{d:?}");
        let k = calm.series.t.iter().position(|&t| t >= 10_800.0).unwrap();
        assert_eq!(calm.series.fund_usd[..k], calm_off.series.fund_usd[..k]);
        assert_eq!(calm.series.health[..k], calm_off.series.health[..k]);
    }
}
