//! Subcommands of `liqscan`, one module each.

pub mod demo;
pub mod journal;
pub mod scan;
pub mod sim;
pub mod bench_link;
pub mod card;
pub mod run;
