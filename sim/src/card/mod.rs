//! # The emulated card
//!
//! Serves the card link ([`liqscan_host::link`]) from shared memory exactly as the FPGA serves
//! it over PCIe: it reads commands from the command ring window of the BAR image when the
//! doorbell moves, executes them on a [`CardEngine`], and writes events into the event ring
//! with the phase bit, waiting (never dropping) when the host has not read far enough.
//!
//! ```text
//!   /dev/shm/<name>  (or a BAR file + a buffer file)
//!   ┌──────────────────────────────┬──────────────────────┐
//!   │ BAR 0: registers | cmd ring  │ event ring (host mem) │
//!   └──────────────────────────────┴──────────────────────┘
//!        ^ doorbell, commands            | events (phase bit)
//!        │                               v
//!   serve() loop ── CardEngine: SoftwareCard (software engine) | HdlCard (rust-hdl core)
//!   serve_verilated() ── VerilatedCard: the whole card's generated Verilog (front end and
//!                        core) under Verilator, its DMA served from the same file
//! ```
//!
//! Two forms: [`CardThread`] (in-process, for tests and `liqscan run`), and the `liqscan card`
//! process (the root crate's `card` command calls [`serve`]). The host code cannot tell them
//! apart from a real card. [`open_backend`] opens an engine by its `--backend` name, the
//! in-process card behind a fail-over engine for the card backends.

mod backend;
#[cfg(feature = "hdl")]
mod hdl;
mod serve;
mod software;
#[cfg(feature = "hdl")]
pub mod verilated;

#[cfg(feature = "hdl")]
pub use hdl::HdlCard;
#[cfg(feature = "hdl")]
pub use verilated::{VerilatedCard, VerilatedError, serve_verilated};

pub use backend::{BACKENDS, BackendError, BackendOptions, EmulatedCard, make_card_engine, open_backend};
pub use serve::{CardReport, CardThread, Fault, Idle, ServeOptions, serve};
pub use software::SoftwareCard;

use liqscan_hdl::abi::{Coeff, PriceEntry};

/// What one scan reports in its `ScanDone` event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanInfo {
    /// Groups of lanes scanned.
    pub groups: u32,
    /// Core cycles (0 where the engine has no clock, e.g. the software card).
    pub cycles: u32,
    /// Breached accounts among those scanned.
    pub breached: u32,
    /// At-risk accounts among those scanned.
    pub at_risk: u32,
}

/// A refusal: error bits (`liqscan_hdl::abi::regs::error_bit`) and the offending value.
pub type CardRefusal = (u32, u32);

/// What the emulated card runs: the software engine or the rust-hdl simulation of the core.
/// Bitmap words here are the card's: 32 accounts a word, bit `i` of word `w` is account
/// `32 w + i`.
pub trait CardEngine: Send {
    /// Name for logs.
    fn name(&self) -> &'static str;
    /// Accounts held (reported in `CONFIG_ACCOUNTS`; a multiple of 32).
    fn accounts(&self) -> usize;
    /// Price table entries (reported in `CONFIG_ASSETS`).
    fn assets(&self) -> usize;
    /// Lanes (reported in `CONFIG_LANES`).
    fn lanes(&self) -> usize;
    /// Writes `terms` into consecutive term words of the account's lane from `word` (the
    /// packed layout the host places: `liqscan_hdl::layout::PackedLayout`).
    fn write_terms(&mut self, account: u32, word: u16, terms: &[Coeff]) -> Result<(), CardRefusal>;
    /// Points group `group` (accounts `group * lanes ..`) at words `first .. first + len` of
    /// every lane.
    fn set_group(&mut self, group: u32, first: u16, len: u8) -> Result<(), CardRefusal>;
    /// Scan parameters.
    fn params(&mut self, active_accounts: u32, term_slots: u32) -> Result<(), CardRefusal>;
    /// Writes one asset's prices without scanning (a batch tick's entries).
    fn set_price(&mut self, asset: u16, price: PriceEntry) -> Result<(), CardRefusal>;
    /// Writes one asset's prices and rescans the accounts exposed to it, appending
    /// `(word, breach, at_risk)` for every word rescanned (at least every word that changed).
    fn tick(
        &mut self,
        asset: u16,
        price: PriceEntry,
        out: &mut Vec<(u32, u32, u32)>,
    ) -> Result<ScanInfo, CardRefusal>;
    /// Scans every active account; appends `(breach, at_risk)` for words `0..` in order.
    fn scan_full(&mut self, out: &mut Vec<(u32, u32)>) -> ScanInfo;
    /// Core cycles simulated so far and the seconds the simulation took ((0, 0) where the
    /// engine has no clock).
    fn simulated(&self) -> (u64, f64) {
        (0, 0.0)
    }
}
