//! # The market: price paths and the oracle
//!
//! Each asset has an exogenous price path (a [`PathSpec`]): geometric Brownian motion with
//! jumps, a replay of a file (10-minute bars or ticks), a path that follows another asset, or a
//! fixed price; scheduled shocks can be laid over any of them. The simulator multiplies the
//! path by the liquidity model's dent (liquidation sales) to get the market price, and the
//! [`oracle`] decides when the venue learns of it.
//!
//! Everything random is drawn from ChaCha8 streams seeded from the scenario's seed, so a run is
//! a pure function of its scenario file.

pub mod oracle;
pub mod path;
pub mod replay;

pub use oracle::{Oracle, OracleConfig};
pub use path::{PathSpec, PricePath, Shock};
pub use replay::{Bar, ReplayError};

use rand::Rng;

/// A standard normal draw (Box-Muller; one of the pair is discarded for simplicity).
pub fn normal<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
