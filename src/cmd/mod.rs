//! Subcommands of `liqscan`, one module each.

pub mod bench_link;
pub mod bridge;
pub mod card;
pub mod demo;
pub mod gen_book;
pub mod journal;
pub mod publish;
pub mod run;
pub mod scan;
pub mod sim;
