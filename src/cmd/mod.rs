//! Subcommands of `liqscan`, one module each.

pub mod demo;
pub mod scan;
pub mod sim;
