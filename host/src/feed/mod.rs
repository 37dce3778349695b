//! # Feeds into the pipeline
//!
//! - [`wire`]: the compact binary wire format for ticks and account deltas (documented in
//!   `docs/WIRE_FORMAT.md`), with a per-stream sequence number.
//! - [`SeqTracker`]: gap and duplicate detection on those sequence numbers.
//! - [`FrameLog`]: the hook that journals a listener's accepted frames before the engine
//!   sees them.
//! - [`auth`]: HMAC-SHA256 frame authentication.
//! - [`listen`]: live listeners on loopback, TCP (a stream of frames) and UDP (frames in
//!   datagrams), that decode frames into the pipeline's queue.
//! - [`replay`]: file replay at the recorded pace (optionally sped up), at a fixed rate, or as
//!   fast as the pipeline takes it; every message carries its intended time.

pub mod auth;
pub mod listen;
pub mod replay;
pub mod wire;

use crate::pipeline::FeedMsg;

/// What a sequence number says about a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqVerdict {
    /// The next one (or the first).
    InOrder,
    /// Ahead of the next one: `missing` frames were skipped. The frame itself is taken.
    Gap {
        /// Frames missing.
        missing: u64,
        /// The sequence number that was expected.
        expected: u64,
    },
    /// Already seen (or older than the last): dropped.
    Duplicate,
}

/// Where a listener makes an accepted frame durable before the engine sees it (the book
/// journal: `journal::keeper::SharedBookJournal`).
pub trait FrameLog: Send + Sync {
    /// Records `msg` (frame `seq` of stream `source`, oracle time `ts_ns`), then calls `push`
    /// (which hands it to the engine), both under one lock, so the log's order is the
    /// engine's. An error means the frame was neither recorded nor pushed.
    fn log_then_push(
        &self,
        source: u8,
        seq: u64,
        ts_ns: i64,
        msg: &FeedMsg,
        push: &mut dyn FnMut(),
    ) -> Result<(), FrameLogError>;
}

/// Why a [`FrameLog`] did not take a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameLogError {
    /// The frame does not fit the book (the engine would refuse it too): drop it, go on.
    #[error("refused: {0}")]
    Refused(String),
    /// The log could not be written (disk full, I/O error): nothing more can be taken safely.
    #[error("journal write failed: {0}")]
    Failed(String),
}

/// Tracks one stream's sequence numbers.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeqTracker {
    next: Option<u64>,
    /// Frames taken.
    pub taken: u64,
    /// Frames missing in gaps.
    pub missing: u64,
    /// Gaps seen.
    pub gaps: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
}

impl SeqTracker {
    /// A tracker that has taken every frame up to `last` (a restart over a journal holding
    /// them): frames numbered `last` or less are duplicates.
    pub fn after(last: u64) -> Self {
        SeqTracker { next: Some(last + 1), ..Default::default() }
    }

    /// Judges `seq`; a frame judged `Duplicate` must be dropped.
    pub fn check(&mut self, seq: u64) -> SeqVerdict {
        let v = match self.next {
            None => SeqVerdict::InOrder,
            Some(n) if seq == n => SeqVerdict::InOrder,
            Some(n) if seq > n => SeqVerdict::Gap { missing: seq - n, expected: n },
            Some(_) => SeqVerdict::Duplicate,
        };
        match v {
            SeqVerdict::Duplicate => self.duplicates += 1,
            SeqVerdict::Gap { missing, .. } => {
                self.gaps += 1;
                self.missing += missing;
                self.taken += 1;
                self.next = Some(seq + 1);
            }
            SeqVerdict::InOrder => {
                self.taken += 1;
                self.next = Some(seq + 1);
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_duplicates() {
        let mut t = SeqTracker::default();
        assert_eq!(t.check(10), SeqVerdict::InOrder);
        assert_eq!(t.check(11), SeqVerdict::InOrder);
        assert_eq!(t.check(11), SeqVerdict::Duplicate);
        assert_eq!(t.check(14), SeqVerdict::Gap { missing: 2, expected: 12 });
        assert_eq!(t.check(12), SeqVerdict::Duplicate);
        assert_eq!(t.check(15), SeqVerdict::InOrder);
        assert_eq!((t.taken, t.gaps, t.missing, t.duplicates), (4, 1, 2, 2));
    }
}
