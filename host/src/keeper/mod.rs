//! The keeper as a library: a book and a tick stream (replayed, and live from the feed
//! listeners) through the pinned pipeline on a backend, breaches out to the events log and to
//! dispatch, orders to an executor, everything journaled if asked; `liqscan run` is this
//! module plus argument parsing and printing.
//!
//! ```no_run
//! use liqscan_host::keeper::{Keeper, KeeperConfig};
//!
//! let cfg = KeeperConfig { demo_accounts: Some(500), ..KeeperConfig::default() };
//! let keeper = Keeper::builder().config(cfg).executor("jsonl:/tmp/orders.jsonl").start()?;
//! // keeper.stopper() stops intake from another thread (a signal handler's flag works too).
//! let report = keeper.finish()?;
//! println!("{} breach events, {} orders", report.breaches(), report.orders());
//! # Ok::<(), liqscan_host::keeper::KeeperError>(())
//! ```
//!
//! - [`config`]: [`KeeperConfig`], the one configuration type (flags, environment, file).
//! - [`deploy`]: a deployment file's `[[venues]]`, one [`KeeperConfig`] per venue.
//! - [`workload`]: the book and replayed ticks (files, or the embedded demo).
//! - [`engine`]: [`engine::build_backend`], the one place the scan backend is chosen and opened.
//! - [`inputs`]: [`InputPort`] and [`InputSource`], a program's input stream (NATS).
//! - [`run`]: [`KeeperBuilder`], [`KeeperHandle`] and [`KeeperReport`].
//!
//! Threads: the engine thread (pinned to `engine_core`), the dispatch thread
//! (`dispatch_core`), the events writer, the listeners and the intake thread that replays
//! the workload. The thread calling [`KeeperBuilder::start`] is pinned to `feed_core` if one
//! is given, so the listener and intake threads it spawns inherit it.

pub mod config;
pub mod deploy;
pub mod engine;
pub mod inputs;
pub mod run;
pub mod workload;

use std::sync::Arc;

pub use config::{ExecutorSpec, FeedConfig, JournalPlan, KeeperConfig, PcieConfig};
pub use deploy::VenueConfig;
pub use engine::{CardHost, CardSummary, RunningCard};
pub use inputs::{InputPort, InputSource, STREAM_SOURCE};
pub use run::{Change, Keeper, KeeperBuilder, KeeperHandle, KeeperReport, Stopper, digest};
pub use workload::Workload;

use crate::engine::EngineError;
use crate::link::LinkError;

/// Where a keeper's notes go (start-up, recovery, listener reports, fail-overs): one line
/// each. `liqscan run` prints them on standard error; the default logs them with `tracing`.
pub type Notes = Arc<dyn Fn(&str) + Send + Sync>;

/// Why a keeper did not start or did not finish cleanly.
#[derive(Debug, thiserror::Error)]
pub enum KeeperError {
    /// A configuration or input the keeper refuses, with the reason.
    #[error("{0}")]
    Config(String),
    /// An error from a reader, a journal or a thread, with what the keeper was doing.
    #[error("{context}")]
    Context {
        /// What the keeper was doing.
        context: String,
        /// The error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An error whose own message says everything (a file reader's, naming the file).
    #[error("{0}")]
    Other(Box<dyn std::error::Error + Send + Sync>),
    /// The card link.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The card engine (a link error or a fault the card reported).
    #[error(transparent)]
    Card(#[from] EngineError),
    /// A keeper thread panicked.
    #[error("{0} thread panicked")]
    Panicked(&'static str),
}

impl KeeperError {
    /// `source` while doing `context`.
    pub fn context(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> KeeperError {
        KeeperError::Context { context: context.into(), source: source.into() }
    }

    /// An error that names its input itself.
    pub fn other(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> KeeperError {
        KeeperError::Other(e.into())
    }
}

/// An error and its sources on one line, `a: b: c`.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
