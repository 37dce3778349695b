//! # liqscan-host: the host process
//!
//! Data flows through this crate like this:
//!
//! ```text
//!  assets + accounts (TOML/JSON/CSV)    price ticks (CSV/JSONL/bars)
//!            |                                   |
//!            v                                   v
//!   model::compile ──> terms (i32 coeffs)   model::quote ──> PriceEntry (u32 prices)
//!            \                                   /
//!             v                                 v
//!        engine::SoftwareEngine  (or the card)  ── breach / at-risk bitmaps ──> dispatch
//!                     ^
//!        reference (wide integers, the oracle for every test)
//! ```
//!
//! - [`model`]: assets, tiers, accounts, exact decimals, and the compiler from real amounts to
//!   the integer coefficients and prices the datapath takes (conservative rounding).
//! - [`reference`]: the plainest exact implementation of the risk formula.
//! - [`engine`]: the software scan engine (full scan and incremental).
//! - [`io`]: readers for accounts, assets and ticks; the breach writer.
//! - [`dispatch`]: breached accounts to liquidation orders, in-flight set, retries, executors.
//! - [`keeper`]: the keeper as a library: one configuration, a builder, a handle, a report
//!   (`liqscan run` is this plus printing; `examples/keeper.rs` embeds it).
//! - [`demo_book`]: the embedded demo venue, book and crash.
#![warn(missing_docs)]

pub mod bitmap;
pub mod book;
pub mod demo_book;
pub mod dispatch;
pub mod engine;
pub mod feed;
pub mod guard;
pub mod io;
pub mod journal;
pub mod keeper;
pub mod link;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod prefetch;
pub mod reference;
pub mod wait;
