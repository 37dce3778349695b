//! Helpers shared by the root tests (`mod common;` in each file that uses them).

use liqscan_sim::card::verilated::model::verilator_version;

/// Whether Verilator is on the PATH. Under CI or `scripts/test` (which install it) its absence
/// fails the test; elsewhere the test says it is skipped and why.
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
