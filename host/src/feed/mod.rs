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
//! - [`intake`]: the listeners' checks for frames another transport brings (a program's
//!   input source, e.g. the NATS stream), numbered by that transport.
//! - [`admit`]: which TCP connections hold a listener's slots (first frame, per-address
//!   share, waiting room).
//! - [`recorded`]: a recorded message stream (a workload's book and ticks), kept compact.
//! - [`replay`]: file replay at the recorded pace (optionally sped up), at a fixed rate, or as
//!   fast as the pipeline takes it; every message carries its intended time.

pub mod admit;
pub mod auth;
pub mod intake;
pub mod listen;
pub mod recorded;
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
    /// More than the tracker's bound ahead of the next one: refused and not adopted (one
    /// frame numbered near 2^64 would otherwise make every later real frame a duplicate).
    TooFar {
        /// How far ahead of `expected` it was.
        jump: u64,
        /// The sequence number that was expected.
        expected: u64,
    },
}

/// Default bound on a sequence jump ([`SeqTracker::with_max_jump`]): 2^24 frames, more than
/// an hour of a feed at a few thousand frames a second lost in one gap.
pub const DEFAULT_MAX_SEQ_JUMP: u64 = 1 << 24;

/// Where a listener makes an accepted frame durable before the engine sees it (the book
/// journal: `journal::keeper::SharedBookJournal`).
pub trait FrameLog: Send + Sync {
    /// Records `msg` (frame `seq` of stream `source`, oracle time `ts_ns`), then calls `push`
    /// with the frame's position in the log (the messages and frames recorded before it: the
    /// sequence number its scan and events carry, one order across the replay and every live
    /// stream), both under one lock, so the log's order is the engine's. An error means the
    /// frame was neither recorded nor pushed.
    fn log_then_push(
        &self,
        source: u8,
        seq: u64,
        ts_ns: i64,
        msg: &FeedMsg,
        push: &mut dyn FnMut(u64),
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
#[derive(Clone, Copy, Debug)]
pub struct SeqTracker {
    /// The next number expected; a fresh stream expects 1 (a first frame numbered 0 is
    /// taken as in order too).
    next: Option<u64>,
    /// Largest jump adopted: a frame more than this ahead of the next one is refused.
    max_jump: u64,
    /// Frames taken.
    pub taken: u64,
    /// Frames missing in gaps.
    pub missing: u64,
    /// Gaps seen.
    pub gaps: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Frames refused as too far ahead ([`SeqVerdict::TooFar`]).
    pub too_far: u64,
}

impl Default for SeqTracker {
    fn default() -> Self {
        SeqTracker {
            next: None,
            max_jump: DEFAULT_MAX_SEQ_JUMP,
            taken: 0,
            missing: 0,
            gaps: 0,
            duplicates: 0,
            too_far: 0,
        }
    }
}

impl SeqTracker {
    /// A tracker that has taken every frame up to `last` (a restart over a journal holding
    /// them): frames numbered `last` or less are duplicates.
    pub fn after(last: u64) -> Self {
        SeqTracker { next: Some(last.saturating_add(1)), ..Default::default() }
    }

    /// The same tracker with another jump bound (at least 1).
    pub fn with_max_jump(mut self, max_jump: u64) -> Self {
        self.max_jump = max_jump.max(1);
        self
    }

    /// Judges `seq`; a frame judged `Duplicate` or `TooFar` must be dropped.
    pub fn check(&mut self, seq: u64) -> SeqVerdict {
        // A fresh stream counts from 1: its first frame is bounded like any other.
        let expected = self.next.unwrap_or(1);
        let v = match self.next {
            // The last number is never taken: the one after it would not exist.
            _ if seq == u64::MAX => SeqVerdict::TooFar { jump: seq - expected, expected },
            None if seq <= 1 => SeqVerdict::InOrder,
            Some(n) if seq == n => SeqVerdict::InOrder,
            Some(n) if seq < n => SeqVerdict::Duplicate,
            _ if seq - expected > self.max_jump => SeqVerdict::TooFar { jump: seq - expected, expected },
            None => SeqVerdict::InOrder,
            Some(n) => SeqVerdict::Gap { missing: seq - n, expected: n },
        };
        match v {
            SeqVerdict::Duplicate => self.duplicates += 1,
            SeqVerdict::TooFar { .. } => self.too_far += 1,
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

    #[test]
    fn a_jump_beyond_the_bound_is_refused_not_adopted() {
        let mut t = SeqTracker::default();
        assert_eq!(t.check(1), SeqVerdict::InOrder);
        assert_eq!(t.check(u64::MAX - 1), SeqVerdict::TooFar { jump: u64::MAX - 3, expected: 2 });
        assert_eq!(t.check(u64::MAX), SeqVerdict::TooFar { jump: u64::MAX - 2, expected: 2 });
        assert_eq!(t.check(2), SeqVerdict::InOrder, "later real frames are taken");
        assert_eq!(
            t.check(3 + DEFAULT_MAX_SEQ_JUMP + 1),
            SeqVerdict::TooFar { jump: DEFAULT_MAX_SEQ_JUMP + 1, expected: 3 }
        );
        assert_eq!(
            t.check(3 + DEFAULT_MAX_SEQ_JUMP),
            SeqVerdict::Gap { missing: DEFAULT_MAX_SEQ_JUMP, expected: 3 }
        );
        assert_eq!((t.taken, t.too_far), (3, 3));
        // A fresh stream's first frame is bounded from 1.
        let mut f = SeqTracker::default().with_max_jump(10);
        assert_eq!(f.check(u64::MAX - 1), SeqVerdict::TooFar { jump: u64::MAX - 2, expected: 1 });
        assert_eq!(f.check(12), SeqVerdict::TooFar { jump: 11, expected: 1 });
        assert_eq!(f.check(11), SeqVerdict::InOrder);
        assert_eq!(f.check(12), SeqVerdict::InOrder);
        // Resumed near the top: the last number is never taken, and nothing overflows.
        let mut r = SeqTracker::after(u64::MAX - 2);
        assert_eq!(r.check(u64::MAX - 1), SeqVerdict::InOrder);
        assert!(matches!(r.check(u64::MAX), SeqVerdict::TooFar { .. }));
        assert_eq!(SeqTracker::after(u64::MAX).check(5), SeqVerdict::Duplicate);
    }
}
