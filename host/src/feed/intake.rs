//! Frames that come by a transport other than the listeners' sockets (a program's input
//! source: `liqscan-nats` reads a venue's JetStream input stream), through the listeners'
//! checks ([`super::listen`]: decoding, rate limit, authentication, sequence, the book's
//! bounds, zero prices, the oracle guard, the journal) in the same order, with the same
//! counters, and into the same queue.
//!
//! Two differences, both the transport's: a message holds exactly one frame, and it is
//! numbered by the transport (the stream sequence, which orders ticks against account deltas
//! across subjects) instead of by the frame header's sequence number. A refusal returns its
//! [`Refusal`], so the transport can log it with its own coordinates (subject, sequence).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::listen::{Bucket, FeedOptions, ListenReport, Sink};
use super::wire;
use crate::metrics::Counters;
use crate::pipeline::{Clock, FeedMsg, FeedTx};

/// Why a frame was not taken: the `reason` label of `liqscan_inputs_refused_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// It does not decode, or the message holds more than one frame.
    Malformed,
    /// Its kind does not belong on the subject it came on (a tick among account deltas).
    WrongSubject,
    /// Over the rate limit.
    RateLimited,
    /// Missing or wrong HMAC-SHA256 tag (a shared secret is set).
    Unauthenticated,
    /// Numbered at or below the last frame taken.
    Duplicate,
    /// Numbered too far ahead to adopt.
    SeqRefused,
    /// An asset or account slot outside the book.
    Unknown,
    /// A price of 0 on an asset that does not allow it.
    ZeroPrice,
    /// Refused by the oracle guard.
    GuardRefused,
    /// Held by the oracle guard (a jump awaiting confirmation).
    GuardHeld,
    /// The journal could not write it.
    NotJournaled,
}

impl Refusal {
    /// Every reason, in the order of [`Refusal::index`].
    pub const ALL: [Refusal; 11] = [
        Refusal::Malformed,
        Refusal::WrongSubject,
        Refusal::RateLimited,
        Refusal::Unauthenticated,
        Refusal::Duplicate,
        Refusal::SeqRefused,
        Refusal::Unknown,
        Refusal::ZeroPrice,
        Refusal::GuardRefused,
        Refusal::GuardHeld,
        Refusal::NotJournaled,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::WrongSubject => "wrong_subject",
            Refusal::RateLimited => "rate_limited",
            Refusal::Unauthenticated => "unauthenticated",
            Refusal::Duplicate => "duplicate",
            Refusal::SeqRefused => "seq_refused",
            Refusal::Unknown => "unknown",
            Refusal::ZeroPrice => "zero_price",
            Refusal::GuardRefused => "guard_refused",
            Refusal::GuardHeld => "guard_held",
            Refusal::NotJournaled => "not_journaled",
        }
    }

    /// Position in [`Refusal::ALL`].
    pub fn index(self) -> usize {
        Refusal::ALL.iter().position(|r| *r == self).expect("listed")
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Which frame kinds a message may hold (the subject it came on says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKinds {
    /// Any (a socket feed).
    Any,
    /// Ticks only.
    Ticks,
    /// Account upserts and removes only.
    Accounts,
    /// None (a subject that carries no feed frames).
    Nothing,
}

impl FrameKinds {
    pub(super) fn admits(self, m: &FeedMsg) -> bool {
        match self {
            FrameKinds::Any => true,
            FrameKinds::Ticks => matches!(m, FeedMsg::Tick { .. }),
            FrameKinds::Accounts => matches!(m, FeedMsg::Upsert { .. } | FeedMsg::Remove { .. }),
            FrameKinds::Nothing => false,
        }
    }
}

/// Counts of a [`FrameIntake`] by outcome (the keeper's `liqscan_inputs_*` metrics).
#[derive(Debug, Default)]
pub struct InputCounters {
    /// Messages received (taken or not).
    pub received: AtomicU64,
    /// Frames taken (pushed to the engine).
    pub taken: AtomicU64,
    /// The transport number of the last frame taken.
    pub last_seq: AtomicU64,
    /// Refused, by [`Refusal::index`].
    pub refused: [AtomicU64; Refusal::ALL.len()],
}

impl InputCounters {
    /// Refusals of `r` so far.
    pub fn refused(&self, r: Refusal) -> u64 {
        self.refused[r.index()].load(Ordering::Relaxed)
    }
}

/// The listeners' checks for one transport-numbered stream of one-frame messages. Owned by
/// the transport's thread; `take` may wait on a full engine queue (back-pressure) and on the
/// journal's lock, as a listener does.
pub struct FrameIntake {
    sink: Sink,
    bucket: Option<Bucket>,
    counters: Arc<Counters>,
}

impl FrameIntake {
    /// An intake pushing into `tx` with `opts` (its `resume_after`: the last number taken
    /// before a restart), counting into `counters` (the feed counters and
    /// [`Counters::inputs`]).
    pub fn new(tx: FeedTx, clock: Clock, counters: Arc<Counters>, opts: FeedOptions) -> FrameIntake {
        let sink = Sink::new(tx, clock, counters.clone(), opts);
        let bucket = sink.rate().as_ref().map(Bucket::new);
        FrameIntake { sink, bucket, counters }
    }

    /// Takes the one frame `bytes` holds, numbered `seq` by the transport, if it is of
    /// `kinds` and passes every check; else counts and returns why not. Nothing refused
    /// reaches the engine or the journal.
    pub fn take(&mut self, bytes: &[u8], seq: u64, kinds: FrameKinds) -> Result<(), Refusal> {
        let c = &self.counters.inputs;
        c.received.fetch_add(1, Ordering::Relaxed);
        let r = match wire::frame_len(bytes) {
            // One frame a message: trailing bytes make the whole message suspect.
            Ok(len) if len != bytes.len() => {
                self.sink.count_malformed();
                Err(Refusal::Malformed)
            }
            _ => match self.sink.check(bytes, &mut self.bucket, Some(seq), kinds) {
                Ok((_, None)) => Ok(()),
                Ok((_, Some(why))) | Err(why) => Err(why),
            },
        };
        match r {
            Ok(()) => {
                c.taken.fetch_add(1, Ordering::Relaxed);
                c.last_seq.store(seq, Ordering::Relaxed);
            }
            Err(why) => {
                c.refused[why.index()].fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    /// The last number taken before this run (from the journal), if any: the transport
    /// resumes after it.
    pub fn resume_after(&self) -> Option<u64> {
        self.sink.resume_after()
    }

    /// A fresh intake (nothing taken, nothing to resume) whose transport starts after `last`
    /// (a stream whose first messages were removed): numbers up to `last` are duplicates and
    /// `last + 1` is in order, however far from 1 it is.
    pub fn begin_after(&mut self, last: u64) {
        if self.resume_after().is_none() {
            self.sink.begin_after(last);
        }
    }

    /// What the checks saw so far.
    pub fn report(&self) -> ListenReport {
        self.sink.report()
    }

    /// The counters by outcome.
    pub fn counters(&self) -> &InputCounters {
        &self.counters.inputs
    }
}
