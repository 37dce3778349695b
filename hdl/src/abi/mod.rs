//! The contract between the card and the host: datapath widths, register map, ring formats.

pub mod widths;

pub use widths::*;
