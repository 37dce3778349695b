//! # liqscan-sim: the world around the scanner
//!
//! The emulated card, market price paths and replays, and the venue (liquidation mechanisms,
//! insurance fund). It may use both the card crate and the host crate; neither uses it.
#![warn(missing_docs)]

pub mod card;
