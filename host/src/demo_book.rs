//! The embedded default scenario of `liqscan demo`: a generated cross-margin venue with seven
//! assets and three tiers, a book of borrowers, shorts, multi-collateral and perpetual-style
//! accounts, and a crash-shaped price path. Deterministic from a seed.

use std::collections::BTreeMap;

use crate::io::accounts::LoadedAccount;
use crate::io::ticks::Tick;
use crate::model::{AccountSpec, AssetSpec, AssetTable, Decimal, Legs, TierWeights, VenueSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One asset of the demo venue: symbol, coefficient quantum, start price, stress, crash depth,
/// and its weights in the default tier.
struct DemoAsset {
    symbol: &'static str,
    quantum_exp: i32,
    start: f64,
    stress: &'static str,
    crash: f64,
    weight: &'static str,
}

const ASSETS: [DemoAsset; 7] = [
    DemoAsset { symbol: "USDC", quantum_exp: -2, start: 1.0, stress: "0.02", crash: 0.0, weight: "0.9" },
    DemoAsset { symbol: "ETH", quantum_exp: -4, start: 3000.0, stress: "0.15", crash: 0.45, weight: "0.825" },
    DemoAsset { symbol: "BTC", quantum_exp: -6, start: 60000.0, stress: "0.12", crash: 0.35, weight: "0.8" },
    DemoAsset { symbol: "SOL", quantum_exp: -3, start: 150.0, stress: "0.2", crash: 0.55, weight: "0.7" },
    DemoAsset { symbol: "LINK", quantum_exp: -3, start: 15.0, stress: "0.2", crash: 0.5, weight: "0.65" },
    DemoAsset { symbol: "AVAX", quantum_exp: -3, start: 35.0, stress: "0.2", crash: 0.55, weight: "0.6" },
    DemoAsset { symbol: "ARB", quantum_exp: -2, start: 1.2, stress: "0.25", crash: 0.6, weight: "0.55" },
];

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal literal")
}

/// A decimal from a float rounded to `digits` fractional digits (input generation only).
fn fixed(x: f64, digits: u32) -> Decimal {
    Decimal::new((x * 10f64.powi(digits as i32)).round() as i128, digits).normalized()
}

/// The demo venue: tiers `default` (lending-style), `isolated` (weights 0.1 lower, liabilities
/// at 1.1) and `perp` (5% maintenance both ways).
pub fn venue() -> AssetTable {
    let assets = ASSETS
        .iter()
        .map(|a| {
            let w = dec(a.weight);
            let tiers = BTreeMap::from([
                ("default".to_string(), TierWeights { asset_weight: w, liability_weight: Decimal::ONE }),
                (
                    "isolated".to_string(),
                    TierWeights {
                        asset_weight: w.checked_sub(dec("0.1")).unwrap(),
                        liability_weight: dec("1.1"),
                    },
                ),
                (
                    "perp".to_string(),
                    TierWeights { asset_weight: dec("0.95"), liability_weight: dec("1.05") },
                ),
            ]);
            AssetSpec {
                symbol: a.symbol.into(),
                decimals: 18,
                quantum_exp: a.quantum_exp,
                stress: dec(a.stress),
                tiers,
                allow_zero_price: false,
                price_range: None,
            }
        })
        .collect();
    AssetTable::new(
        VenueSpec { name: "demo cross-margin venue".into(), value_exp: -8, price_range: None },
        assets,
    )
    .expect("valid demo venue")
}

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    // Box-Muller: enough for generating a population.
    let (u1, u2): (f64, f64) = (rng.r#gen::<f64>().max(1e-12), rng.r#gen());
    median * (sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()).exp()
}

fn amount(value_usd: f64, asset: usize) -> Decimal {
    let a = &ASSETS[asset];
    fixed(value_usd / a.start, (-a.quantum_exp) as u32 + 2)
}

/// One signed balance as an asset's legs.
fn leg(value_usd: f64, asset: usize) -> Legs {
    Legs::signed(amount(value_usd, asset))
}

/// Picks a volatile asset: ETH and BTC most often.
fn volatile(rng: &mut ChaCha8Rng) -> usize {
    match rng.gen_range(0..100) {
        0..=39 => 1,
        40..=64 => 2,
        65..=79 => 3,
        80..=86 => 4,
        87..=93 => 5,
        _ => 6,
    }
}

/// A book of `n` accounts: 55% single-collateral USDC borrowers, 10% stablecoin-collateral
/// borrowers of a volatile asset (shorts), 25% multi-collateral accounts, 10% perpetual-style
/// accounts with a USDC quote balance and one to three positions. Health factors start
/// between 1.05 and about 3, denser near 1, as on real lending markets.
pub fn book(table: &AssetTable, n: usize, seed: u64) -> Vec<LoadedAccount> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let size = lognormal(&mut rng, 20_000.0, 1.3).clamp(100.0, 5_000_000.0);
        let hf = 1.05 + lognormal(&mut rng, 0.3, 0.8).min(2.0);
        let mut balances: BTreeMap<String, Legs> = BTreeMap::new();
        let tier;
        let kind = rng.gen_range(0..100);
        let lt = |a: usize| ASSETS[a].weight.parse::<f64>().unwrap();
        if kind < 55 {
            let c = volatile(&mut rng);
            tier = if rng.gen_bool(0.15) { "isolated" } else { "default" };
            let t = if tier == "isolated" { lt(c) - 0.1 } else { lt(c) };
            balances.insert(ASSETS[c].symbol.into(), leg(size, c));
            balances.insert("USDC".into(), leg(-size * t / hf, 0));
        } else if kind < 65 {
            let d = volatile(&mut rng);
            tier = "default";
            balances.insert("USDC".into(), leg(size, 0));
            balances.insert(ASSETS[d].symbol.into(), leg(-size * lt(0) / hf, d));
        } else if kind < 90 {
            tier = "default";
            let k = rng.gen_range(2..=4);
            let mut weighted = 0.0;
            for _ in 0..k {
                let c = volatile(&mut rng);
                if balances.contains_key(ASSETS[c].symbol) {
                    continue;
                }
                let part = size / k as f64;
                weighted += part * lt(c);
                balances.insert(ASSETS[c].symbol.into(), leg(part, c));
            }
            balances.insert("USDC".into(), leg(-weighted / hf, 0));
        } else {
            tier = "perp";
            let margin = size / 5.0;
            let mut quote = margin;
            let leverage = 1.0 + lognormal(&mut rng, 3.0, 0.5).min(8.0);
            let k = rng.gen_range(1..=3);
            for _ in 0..k {
                let p = volatile(&mut rng);
                if balances.contains_key(ASSETS[p].symbol) {
                    continue;
                }
                let notional = margin * leverage / k as f64;
                let long = rng.gen_bool(0.6);
                quote -= if long { notional } else { -notional };
                balances.insert(ASSETS[p].symbol.into(), leg(if long { notional } else { -notional }, p));
            }
            balances.insert("USDC".into(), leg(quote, 0));
        }
        let spec = AccountSpec { id: format!("acct-{i:06}"), tier: tier.into(), balances };
        let terms = table.compile(&spec).expect("demo accounts fit the datapath");
        out.push(LoadedAccount { spec, terms });
    }
    out
}

/// Start of the demo's price path (an arbitrary fixed date).
pub const START_NS: i64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

/// A six-hour crash: an hour of calm, a slide over ninety minutes to each asset's crash depth
/// with a ten-minute wick below it, then a partial recovery. A volatile asset ticks every ten
/// seconds, USDC every minute. Moves share a market factor.
pub fn price_path(table: &AssetTable, seed: u64) -> Vec<Tick> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let step_s = 10i64;
    let steps = 6 * 3600 / step_s;
    let mut noise = vec![0.0f64; ASSETS.len()];
    let mut out = Vec::new();
    for s in 0..=steps {
        let t_h = (s * step_s) as f64 / 3600.0;
        let market: f64 = rng.gen_range(-1.0..1.0);
        for (i, a) in ASSETS.iter().enumerate() {
            if i == 0 && s % 6 != 0 {
                continue;
            }
            let shape = if t_h < 1.0 {
                0.0
            } else if t_h < 2.5 {
                let x = (t_h - 1.0) / 1.5;
                x * x
            } else if t_h < 2.67 {
                1.2
            } else {
                1.0 - 0.4 * ((t_h - 2.67) / 3.33).min(1.0)
            };
            let vol = if i == 0 { 0.0002 } else { 0.002 };
            noise[i] = 0.98 * noise[i] + vol * (0.6 * market + 0.4 * rng.gen_range(-1.0..1.0));
            let price = a.start * (1.0 - a.crash * shape).max(0.01) * (1.0 + noise[i]);
            let p = fixed(price, 4);
            let asset = table.index_of(a.symbol).expect("demo asset");
            let entry = table.quote(asset, p).expect("demo prices fit");
            out.push(Tick {
                ts_ns: START_NS + s * step_s * 1_000_000_000 + i as i64,
                asset,
                price: p,
                entry,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_book_and_path_are_deterministic_and_valid() {
        let t = venue();
        let a = book(&t, 2000, 7);
        assert_eq!(a, book(&t, 2000, 7));
        assert_ne!(a, book(&t, 2000, 8));
        assert!(a.iter().all(|x| !x.terms.is_empty() && x.terms.len() <= 5));
        let p = price_path(&t, 7);
        assert!(p.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns));
        let eth = t.index_of("ETH").unwrap();
        let low = p.iter().filter(|x| x.asset == eth).map(|x| x.price).min().unwrap();
        assert!(low < dec("1700") && low > dec("1200"), "ETH low {low}");
    }
}
