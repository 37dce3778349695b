//! # Keeper dispatch: from breached accounts to liquidation orders
//!
//! The scan finds accounts below their liquidation line; this module turns them into orders and
//! hands them to an executor, without ever holding up the scan.
//!
//! ```text
//!  scan thread                      dispatch thread                         executor
//!  ───────────                      ───────────────                         ────────
//!  bitmaps ─> HandoffSender ══bounded══> HandoffReceiver
//!             (try_send; when full the                │
//!              batch is merged into a carry            v
//!              and re-offered, back-pressure      Dispatcher ── size ──> LiquidationOrder ──> submit
//!              counted, nothing dropped)           backlog, in-flight,              <── completions
//!                                                  time-outs, retries, back-off
//! ```
//!
//! - [`handoff`]: the non-blocking, bounded hand-off from the scan to the dispatch thread.
//! - [`sizing`]: how much to repay and which collateral to seize (close factor, dust, bonus,
//!   target health, seizure order across tiers), in exact integers.
//! - [`reduce`]: reduce-only orders for perpetual positions, longs and shorts (the least that
//!   restores the target margin, capped by the venue's partial fraction, or the whole account),
//!   in exact integers.
//! - [`order`]: orders, their outcomes, and the wire form (serde) shared by every executor.
//! - [`order_id`]: order ids derived from the account, the breach episode and the ordinal.
//! - [`dispatcher`]: the backlog of breached accounts, priority by value at risk, the
//!   in-flight set keyed by account, time-outs and retries, per-account and per-asset back-off,
//!   pre-built orders for at-risk accounts.
//! - [`executor`]: the executor trait and the JSONL sink (file or stdout).
//! - [`tcp`]: the client of a downstream liquidation service over a TCP line protocol
//!   (documented in `docs/SIMULATOR.md`, section "Dispatch line protocol").
//!
//! The simulated venue (crate `liqscan-sim`) is the third executor.
//!
//! Time is passed in as nanoseconds by the caller (a monotonic clock in the keeper, simulated
//! time in the simulator), so the rules are deterministic and testable without sleeping.

pub mod dispatcher;
pub mod executor;
pub mod handoff;
pub mod line;
pub mod order;
pub mod order_id;
mod ranking;
pub mod reduce;
pub mod sizing;
pub mod tcp;

pub use dispatcher::{AccountSource, DispatchConfig, DispatchStats, Dispatcher, Mechanism, ResumePoint};
pub use executor::{Executor, JsonlSink, LinkStats, SubmitError, hand_to_io_thread};
pub use handoff::{AccountDeltas, HandoffReceiver, HandoffSender, Offer, ScanBatch, handoff};
pub use order::{Completion, Leg, LiquidationOrder, OrderId, OrderKind, Outcome, Reduce, RejectReason};
pub use order_id::OrderKey;
pub use reduce::{ReducePlan, ReducePolicy, rank_key_reduce, size_reduce};
pub use sizing::{AccountView, KeyTerms, Plan, Position, RankKey, SizingPolicy, rank_key, size};
