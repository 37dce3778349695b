//! The contract between the card and the host: datapath widths, the card's build
//! configuration, the register map and the ring entry formats. Builds without rust-hdl.

pub mod config;
pub mod regs;
pub mod ring;
pub mod shm;
pub mod widths;

pub use config::*;
pub use ring::{Command, Event, EventEntry, RingError};
pub use widths::*;
