//! Helpers shared by the root tests (`mod common;` in each file that uses them).

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_sim::card::verilated::model::verilator_version;

/// Whether Verilator is on the PATH. Under CI or `scripts/test` (which install it) its absence
/// fails the test; elsewhere the test says it is skipped and why.
#[allow(dead_code)] // not every file that takes `mod common;` runs Verilator
pub fn verilator_present() -> bool {
    if verilator_version().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none() && std::env::var_os("LIQSCAN_REQUIRE_VERILATOR").is_none(),
        "verilator not found under CI or scripts/test: scripts/setup-tools.sh installs it"
    );
    eprintln!("SKIPPED: verilator not found: run scripts/setup-tools.sh");
    false
}

/// A message of an engine replay: an account set or removed, a tick, a batch tick.
#[allow(dead_code)] // not every file that takes `mod common;` replays messages
#[derive(Clone, Debug)]
pub enum Msg {
    Upsert(u32, Vec<Coeff>),
    Remove(u32),
    Tick(u16, u32),
    Batch(Vec<u32>),
}

/// The price entry the replays use for `p`: liability above asset, stressed wider than spot.
#[allow(dead_code)]
pub fn price(p: u32) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: p, liability: p + p / 50 },
        stressed: QuotedPrice { asset: p - p / 10, liability: p + p / 8 },
    }
}
