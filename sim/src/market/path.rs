//! Exogenous price paths, sampled once per simulation step.

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::normal;
use super::replay::{self, ReplayError};

/// Geometric Brownian motion with Poisson jumps (all rates per day).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gbm {
    /// Starting price.
    pub start: f64,
    /// Drift per day (of the log price, before the Ito correction).
    #[serde(default)]
    pub drift_day: f64,
    /// Volatility per square-root day (0.04: about 76% a year).
    pub vol_day: f64,
    /// Expected jumps per day.
    #[serde(default)]
    pub jumps_per_day: f64,
    /// Mean log jump.
    #[serde(default)]
    pub jump_mean: f64,
    /// Standard deviation of the log jump.
    #[serde(default)]
    pub jump_std: f64,
}

/// A path that moves with another asset: `log S = log start + beta * (log L - log L0) + noise`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Follow {
    /// The leading asset's symbol (listed before this one is fine too: order does not matter).
    pub asset: String,
    /// Starting price.
    pub start: f64,
    /// Sensitivity to the leader's log returns.
    #[serde(default = "one")]
    pub beta: f64,
    /// Own (idiosyncratic) volatility per square-root day.
    #[serde(default)]
    pub vol_day: f64,
}

fn one() -> f64 {
    1.0
}

/// A scheduled move laid over a path: the price falls by `drop` (a fraction) linearly in log
/// over `fall_secs` from `at_secs`, then wins back `recover` of the fall over `recover_secs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shock {
    /// Start, seconds from the beginning.
    pub at_secs: f64,
    /// Fraction lost at the bottom (0.3: down 30%).
    pub drop: f64,
    /// Duration of the fall.
    pub fall_secs: f64,
    /// Fraction of the fall won back (0: none, 1: all).
    #[serde(default)]
    pub recover: f64,
    /// Duration of the recovery.
    #[serde(default)]
    pub recover_secs: f64,
}

impl Shock {
    /// The log factor at time `t`.
    pub fn log_factor(&self, t: f64) -> f64 {
        let bottom = (1.0 - self.drop).max(1e-9).ln();
        if t <= self.at_secs {
            return 0.0;
        }
        let e = t - self.at_secs;
        if e < self.fall_secs {
            return bottom * e / self.fall_secs;
        }
        let e = e - self.fall_secs;
        let end = bottom * (1.0 - self.recover);
        if self.recover_secs <= 0.0 || e >= self.recover_secs {
            return end;
        }
        bottom + (end - bottom) * e / self.recover_secs
    }
}

/// Where one asset's price comes from: exactly one of `gbm`, `bars`, `ticks`, `follow`, `fixed`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSpec {
    /// Geometric Brownian motion with jumps.
    pub gbm: Option<Gbm>,
    /// A JSON file of 10-minute bars (see [`replay`]), relative to the scenario file.
    pub bars: Option<PathBuf>,
    /// A CSV (`t,price`) or JSONL (`{"t":..,"price":..}`) tick file, relative to the scenario file.
    pub ticks: Option<PathBuf>,
    /// With `ticks`: the file's times are Unix seconds (a `timestamp` column in milliseconds
    /// is read as such, e.g. the hourly `symbol,timestamp,USD_price` files of
    /// `../shared/data/usd-hourly/`) and the run starts at this one; earlier ticks are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_unix: Option<f64>,
    /// Moves with another asset.
    pub follow: Option<Follow>,
    /// A constant price (a stablecoin).
    pub fixed: Option<f64>,
    /// Scheduled shocks laid over the path.
    #[serde(default)]
    pub shocks: Vec<Shock>,
}

/// A path sampled at every step: `prices[k]` is the price at `k * dt` seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct PricePath {
    /// Prices, one per step (plus the start).
    pub prices: Vec<f64>,
}

/// Why a path could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// Not exactly one source.
    #[error("asset '{asset}': price needs exactly one of gbm, bars, ticks, follow, fixed (found {found})")]
    Source {
        /// Asset.
        asset: String,
        /// How many were given.
        found: usize,
    },
    /// A follow of an unknown or following asset.
    #[error("asset '{asset}': follows '{leader}', which is not an asset with its own path")]
    Leader {
        /// Asset.
        asset: String,
        /// The leader named.
        leader: String,
    },
    /// A bad parameter.
    #[error("asset '{asset}': {what}")]
    Param {
        /// Asset.
        asset: String,
        /// What is wrong.
        what: String,
    },
    /// A replay file problem.
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// Builds every asset's path for `steps` steps of `dt` seconds. `base` resolves relative file
/// names (see [`resolve`]). Stream `i` of the seed drives asset `i`.
pub fn build_paths(
    specs: &[(String, PathSpec)],
    steps: usize,
    dt: f64,
    seed: u64,
    base: &Path,
) -> Result<Vec<PricePath>, PathError> {
    let mut out: Vec<Option<PricePath>> = vec![None; specs.len()];
    let own = |i: usize| -> Result<Option<PricePath>, PathError> {
        let (asset, s) = &specs[i];
        let found =
            [s.gbm.is_some(), s.bars.is_some(), s.ticks.is_some(), s.follow.is_some(), s.fixed.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
        if found != 1 {
            return Err(PathError::Source { asset: asset.clone(), found });
        }
        let param = |what: String| PathError::Param { asset: asset.clone(), what };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1 + i as u64);
        let prices = if let Some(g) = &s.gbm {
            if !(g.start > 0.0 && g.vol_day >= 0.0 && g.jumps_per_day >= 0.0 && g.jump_std >= 0.0) {
                return Err(param(
                    "gbm needs start > 0 and non-negative vol_day, jumps_per_day, jump_std".into(),
                ));
            }
            let h = dt / 86_400.0;
            let mut x = g.start.ln();
            let mut v = Vec::with_capacity(steps + 1);
            v.push(g.start);
            for _ in 0..steps {
                x +=
                    (g.drift_day - g.vol_day * g.vol_day / 2.0) * h + g.vol_day * h.sqrt() * normal(&mut rng);
                if g.jumps_per_day > 0.0 && rand::Rng::r#gen::<f64>(&mut rng) < g.jumps_per_day * h {
                    x += g.jump_mean + g.jump_std * normal(&mut rng);
                }
                v.push(x.exp());
            }
            v
        } else if let Some(f) = &s.bars {
            let path = resolve(base, f);
            let bars = replay::read_bars(&path)?;
            replay::bars_path(&bars, steps, dt)
        } else if let Some(f) = &s.ticks {
            let path = resolve(base, f);
            let mut ticks = replay::read_ticks(&path)?;
            if let Some(start) = s.start_unix {
                for t in &mut ticks {
                    t.0 -= start;
                }
            }
            replay::ticks_path(&ticks, steps, dt)
        } else if let Some(p) = s.fixed {
            if p <= 0.0 {
                return Err(param(format!("fixed price {p} must be positive")));
            }
            vec![p; steps + 1]
        } else {
            return Ok(None);
        };
        Ok(Some(PricePath { prices }))
    };
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = own(i)?.map(|p| shocked(p, &specs[i].1.shocks, dt));
    }
    for (i, (asset, s)) in specs.iter().enumerate() {
        let Some(f) = &s.follow else { continue };
        let leader = specs
            .iter()
            .position(|(a, _)| a == &f.asset)
            .and_then(|j| out[j].as_ref())
            .ok_or_else(|| PathError::Leader { asset: asset.clone(), leader: f.asset.clone() })?;
        if f.start <= 0.0 {
            return Err(PathError::Param {
                asset: asset.clone(),
                what: "follow.start must be positive".into(),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(1 + i as u64);
        let h = dt / 86_400.0;
        let l0 = leader.prices[0].ln();
        let mut noise = 0.0;
        let prices = leader
            .prices
            .iter()
            .enumerate()
            .map(|(k, &l)| {
                if k > 0 {
                    noise += f.vol_day * h.sqrt() * normal(&mut rng) - f.vol_day * f.vol_day * h / 2.0;
                }
                (f.start.ln() + f.beta * (l.ln() - l0) + noise).exp()
            })
            .collect();
        // A follower moves with the leader's shocks too, then its own.
        out[i] = Some(shocked(PricePath { prices }, &s.shocks, dt));
    }
    let paths: Vec<PricePath> = out.into_iter().map(|p| p.expect("every asset has a path")).collect();
    Ok(paths)
}

fn shocked(mut p: PricePath, shocks: &[Shock], dt: f64) -> PricePath {
    for (k, v) in p.prices.iter_mut().enumerate() {
        let t = k as f64 * dt;
        *v *= shocks.iter().map(|sh| sh.log_factor(t)).sum::<f64>().exp();
    }
    p
}

/// Resolves a file named in a scenario: absolute names as they are; relative names against the
/// scenario file's directory first, then the current directory. If neither exists, the
/// scenario-relative name is returned (so the error names where it was looked for).
pub fn resolve(base: &Path, name: &Path) -> PathBuf {
    if name.is_absolute() {
        return name.to_path_buf();
    }
    let by_file = base.join(name);
    if by_file.exists() {
        return by_file;
    }
    if name.exists() {
        return name.to_path_buf();
    }
    by_file
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbm(vol: f64) -> PathSpec {
        PathSpec {
            gbm: Some(Gbm {
                start: 100.0,
                drift_day: 0.0,
                vol_day: vol,
                jumps_per_day: 0.0,
                jump_mean: 0.0,
                jump_std: 0.0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn deterministic_and_volatility_matches() {
        let specs = vec![("A".to_string(), gbm(0.05))];
        let a = build_paths(&specs, 86_400, 1.0, 7, Path::new(".")).unwrap();
        let b = build_paths(&specs, 86_400, 1.0, 7, Path::new(".")).unwrap();
        assert_eq!(a, b);
        let r: Vec<f64> = a[0].prices.windows(2).map(|w| (w[1] / w[0]).ln()).collect();
        let var = r.iter().map(|x| x * x).sum::<f64>();
        let vol_day = var.sqrt();
        assert!((vol_day - 0.05).abs() < 0.002, "realised {vol_day}");
    }

    #[test]
    fn follow_shock_fixed_and_one_source_rule() {
        let specs = vec![
            ("A".to_string(), gbm(0.05)),
            (
                "B".to_string(),
                PathSpec {
                    follow: Some(Follow { asset: "A".into(), start: 10.0, beta: 2.0, vol_day: 0.0 }),
                    shocks: vec![Shock {
                        at_secs: 100.0,
                        drop: 0.5,
                        fall_secs: 100.0,
                        recover: 0.5,
                        recover_secs: 100.0,
                    }],
                    ..Default::default()
                },
            ),
            ("U".to_string(), PathSpec { fixed: Some(1.0), ..Default::default() }),
        ];
        let p = build_paths(&specs, 400, 1.0, 1, Path::new(".")).unwrap();
        let (a, b) = (&p[0].prices, &p[1].prices);
        let shock = |t: f64| specs[1].1.shocks[0].log_factor(t);
        for k in [0usize, 50, 150, 250, 400] {
            let want = 10f64.ln() + 2.0 * (a[k] / a[0]).ln() + shock(k as f64);
            assert!((b[k].ln() - want).abs() < 1e-9);
        }
        assert!((shock(200.0) - 0.5f64.ln()).abs() < 1e-12);
        assert!((shock(400.0) - 0.5f64.ln() / 2.0).abs() < 1e-12);
        assert!(p[2].prices.iter().all(|&x| x == 1.0));
        let bad = vec![("X".to_string(), PathSpec::default())];
        assert!(matches!(
            build_paths(&bad, 1, 1.0, 1, Path::new(".")),
            Err(PathError::Source { found: 0, .. })
        ));
    }
}
