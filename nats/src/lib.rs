//! # liqscan on NATS JetStream
//!
//! Redundant keepers and liquidation-as-a-service: keepers publish their orders to a JetStream
//! stream with the order id as the message id, so when two keepers build the same order the
//! server keeps one; an executor bridge consumes that stream and hands each order to the
//! downstream executor once; candidates (breach, recovery, at-risk) go out per venue.
//!
//! ```text
//!  keeper A ─┐  liqscan.<venue>.orders     ┌──────────────┐  durable pull consumer,
//!            ├─ Nats-Msg-Id = order id ──> │ stream        │  explicit ack ──> bridge ──> TCP
//!  keeper B ─┘  (the server drops repeats  │ liqscan_<v>_  │                  (record)   executor
//!               within the dedup window)   │ orders        │
//!                                          └──────────────┘
//! ```
//!
//! Why a crate of its own: async-nats brings tokio and rustls; keeping them out of
//! `liqscan-host` leaves the core library (engines, pipeline, journal) and its tests compiling
//! as before, and keeps tokio off the pinned pipeline threads by construction: the keeper side
//! talks to this crate through [`Executor`](liqscan_host::dispatch::Executor) and crossbeam
//! channels only; a one-worker tokio runtime on its own threads does the network I/O.
//!
//! - [`subjects`]: the subject and stream layout (docs/OPERATOR.md).
//! - [`executor`]: [`NatsExecutor`], orders out with de-duplication.
//! - [`bridge`]: [`Bridge`], the order stream to a downstream executor, each order once.
//! - [`candidates`]: breach / recovery / at-risk events out, JSON schema `liqscan-candidate/1`.
//! - [`inputs`]: ticks and account deltas in: [`InputPublisher`] and the keeper's
//!   [`inputs::source`] (`liqscan run --nats`).
//! - [`server`]: a throw-away `nats-server -js` for tests and scripts.

pub mod bridge;
pub mod candidates;
pub mod executor;
pub mod inputs;
pub mod record;
pub mod server;
pub mod service;
pub mod subjects;

pub use bridge::{Bridge, BridgeConfig, BridgeStats};
pub use candidates::{Candidate, CandidateKind, CandidatePublisher, CandidateTap, read_stored};

pub use executor::{NatsConfig, NatsExecutor};
pub use inputs::InputPublisher;
pub use server::NatsServer;
pub use subjects::Venue;

/// A one-worker tokio runtime for the NATS I/O of one component. Its worker runs the client's
/// connection task; the component's own (non-pipeline) thread drives requests with
/// `block_on`.
pub(crate) fn runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name(name).enable_all().build()
}

/// Connect options shared by every component: connect in the background and keep
/// reconnecting forever (a server restart is a pause, not an end).
pub(crate) fn connect_options(name: &str) -> async_nats::ConnectOptions {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(std::time::Duration::from_secs(1))
        .max_reconnects(None)
        .reconnect_delay_callback(|n| std::time::Duration::from_millis((25 * (n as u64 + 1)).min(250)))
}
