//! # liqscan-sim: the world around the scanner
//!
//! The emulated card ([`card`]), the market (price paths, replays of real crash days, the
//! oracle), the venue (accounts, liquidation mechanisms, insurance fund, auto-deleveraging, an
//! exact ledger), the population and its activity, and the run loop that wires them to the host's scan engine and dispatcher:
//!
//! ```text
//!  scenario.toml ──> Sim::new ──> run: market -> oracle -> engine -> dispatch -> venue -> ...
//!                                     └──> Report (JSON, summary, series) ──> plot (SVG)
//! ```
//!
//! It may use both the card crate and the host crate; neither uses it.
#![warn(missing_docs)]

pub mod card;
pub mod market;
pub mod perp;
pub mod plot;
pub mod population;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sweep;
pub mod venue;

pub use report::Report;
pub use run::{Sim, SimError, run};
pub use scenario::{Scenario, ScenarioError};
