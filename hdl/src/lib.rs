//! # liqscan-hdl: the card
//!
//! Everything that defines the scan card lives here, and nothing here knows about the host or
//! the simulator:
//!
//! - [`abi`]: the fixed integer widths of the risk datapath, the register map and the ring entry
//!   formats. This is the one source both sides use; the host depends on this crate with default
//!   features off and gets only `abi`.
//! - the rust-hdl scan core, its blocks and their golden models, and Verilog generation (behind
//!   the default `core` feature).
#![warn(missing_docs)]

pub mod abi;
#[cfg(feature = "core")]
pub mod core;
pub mod extmem;
#[cfg(feature = "core")]
pub mod front;
pub mod golden;
pub mod layout;
