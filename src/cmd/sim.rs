//! `liqscan sim` and `liqscan sweep`: venue scenarios (owned by the venue-simulator work).

use anyhow::bail;

/// Arguments of `liqscan sim`.
#[derive(clap::Args)]
pub struct Args {
    /// Scenario file (TOML).
    pub scenario: std::path::PathBuf,
}

/// Arguments of `liqscan sweep`.
#[derive(clap::Args)]
pub struct SweepArgs {
    /// Sweep file (TOML).
    pub sweep: std::path::PathBuf,
}

/// Runs one scenario.
pub fn run(_a: Args) -> anyhow::Result<()> {
    bail!("liqscan sim is not built yet")
}

/// Runs a sweep.
pub fn sweep(_a: SweepArgs) -> anyhow::Result<()> {
    bail!("liqscan sweep is not built yet")
}
