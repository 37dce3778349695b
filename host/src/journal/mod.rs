//! # Durable state: the write-ahead journal and snapshots
//!
//! Everything the keeper must not lose in a crash goes through here before it takes effect
//! outside the process: account changes (upsert with terms, remove), parameter changes, the
//! prices applied, and orders (journaled as pending before the send, as sent after it, as done
//! when finished).
//!
//! ```text
//!   feed / dispatcher ── Record ──> Journal::append ──> check against DurableState
//!                                        │                   │ (refused: nothing written)
//!                                        v                   v
//!                    frame (magic, len, seq, CRC-32, JSON) ─> mmap'd segment wal-<seq>.log
//!                                        │
//!                 every N records ──> snapshot snap-<seq>.snap (temp, fsync, rename, fsync dir)
//!
//!   restart:  Journal::open ─> newest valid snapshot ─> replay later segments
//!             ─> torn tail cut and reported │ damage in the middle: error naming the offset
//!             ─> DurableState: load it into the engine (same bitmaps as before the crash);
//!                re-send or report the pending orders, await the sent ones
//! ```
//!
//! - [`crc`]: CRC-32, table-driven.
//! - [`frame`]: the frame format and the scan that tells a torn tail from damage.
//! - [`record`]: the records, and [`OrderRecord`], the journal's form of a dispatcher order.
//! - [`state`]: [`DurableState`], what the records build.
//! - [`store`]: [`Journal`]: segments, fsync policy, snapshots, recovery.
//! - [`keeper`]: the journal wired into a run: feed-side book journal, journaled executor.
//! - [`events`]: the breach events log (`--out`), written per scan batch and continued across
//!   restarts from the book journal.
//! - [`drill`]: a deterministic workload for tests, the kill -9 drill, soak and bench.
//!
//! The policy and the recovery guarantees are written down in `docs/RELIABILITY.md`.

pub mod crc;
pub mod drill;
pub mod events;
pub mod frame;
pub mod keeper;
pub mod record;
pub mod state;
pub mod store;

pub use record::{OrderRecord, OrderState, Record};
pub use state::{ApplyError, DurableState, LastOrder, SlotAccount, TrackedOrder};
pub use store::{
    FsyncPolicy, Journal, JournalConfig, JournalError, JournalStats, Recovery, SyncHook, TailCut,
};
