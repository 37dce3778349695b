//! File replay into the pipeline, paced.
//!
//! Every message is stamped with its *intended* time: where the pace says it should be sent.
//! The feed thread spins until that time and pushes; if the pipeline has fallen behind (the
//! queue was full, or the feed thread lost its core), the latency still counts from the
//! intended time, so stalls are not hidden (coordinated-omission correction).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::metrics::Counters;
use crate::pipeline::{Clock, FeedMsg, FeedTx, Stamped};

/// How fast to replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// As recorded, divided by `speed` (1.0: real time; 1000.0: a thousand times faster).
    Recorded {
        /// Speed-up factor.
        speed: f64,
    },
    /// A fixed rate, messages per second.
    Fixed {
        /// Rate.
        per_second: f64,
    },
    /// As fast as the queue takes them (no pacing; latency counts from the push).
    Flood,
}

/// Replays `msgs` (recorded timestamp in ns, message) into `tx`, numbering them from
/// `first_seq`; returns the number sent. Does not send [`FeedMsg::End`].
pub fn replay(
    msgs: impl IntoIterator<Item = (i64, FeedMsg)>,
    pace: Pace,
    tx: &FeedTx,
    clock: &Clock,
    first_seq: u64,
) -> u64 {
    let r: Result<u64, std::convert::Infallible> =
        replay_with(msgs, pace, tx, clock, first_seq, |_, _| Ok(()));
    r.unwrap_or_else(|e| match e {})
}

/// As [`replay`], calling `before(recorded ts, message)` on the feed thread before each push
/// (the journal's write-ahead hook); an error stops the replay before that message is pushed.
pub fn replay_with<E>(
    msgs: impl IntoIterator<Item = (i64, FeedMsg)>,
    pace: Pace,
    tx: &FeedTx,
    clock: &Clock,
    first_seq: u64,
    mut before: impl FnMut(i64, &FeedMsg) -> Result<(), E>,
) -> Result<u64, E> {
    replay_through(msgs, pace, clock, first_seq, |ts, m| {
        before(ts, &m.msg)?;
        tx.push(m);
        Ok(())
    })
}

/// The pacing of [`replay`], handing each stamped message (with its recorded timestamp) to
/// `send`, which pushes it (and may journal it first under a lock it holds across both); an
/// error stops the replay.
pub fn replay_through<E>(
    msgs: impl IntoIterator<Item = (i64, FeedMsg)>,
    pace: Pace,
    clock: &Clock,
    first_seq: u64,
    send: impl FnMut(i64, Stamped) -> Result<(), E>,
) -> Result<u64, E> {
    replay_until(msgs, pace, clock, first_seq, &AtomicBool::new(false), send)
}

/// [`replay_through`] that also stops, before the next message, once `stop` is raised (a
/// shutdown signal): returns the number of messages sent. A paced wait looks at `stop` at
/// least every [`STOP_CHECK_NS`], so a slow replay stops promptly too.
pub fn replay_until<E>(
    msgs: impl IntoIterator<Item = (i64, FeedMsg)>,
    pace: Pace,
    clock: &Clock,
    first_seq: u64,
    stop: &AtomicBool,
    mut send: impl FnMut(i64, Stamped) -> Result<(), E>,
) -> Result<u64, E> {
    let start = clock.now() + 1_000_000;
    let mut msgs = msgs.into_iter().peekable();
    let t0 = msgs.peek().map_or(0, |m| m.0);
    let mut sent = 0;
    for (i, (ts, msg)) in msgs.enumerate() {
        if stop.load(Ordering::Relaxed) {
            return Ok(i as u64);
        }
        let due = match pace {
            Pace::Recorded { speed } => start + ((ts - t0).max(0) as f64 / speed) as u64,
            Pace::Fixed { per_second } => start + (i as f64 * 1e9 / per_second) as u64,
            Pace::Flood => 0,
        };
        let t_feed = if due == 0 {
            clock.now()
        } else {
            if !wait_until(clock, due, stop) {
                return Ok(i as u64);
            }
            due
        };
        send(ts, Stamped { seq: first_seq + i as u64, t_feed, msg })?;
        sent += 1;
    }
    Ok(sent)
}

/// Time left before which the pacer sleeps rather than spins: sleeping wakes up to ~100 us
/// late (timer slack and scheduling), so the last stretch is spun.
const SPIN_NS: u64 = 200_000;

/// Longest a paced wait sleeps before it looks at the stop flag again.
pub const STOP_CHECK_NS: u64 = 50_000_000;

/// Waits until `due` on `clock`: sleeps while more than [`SPIN_NS`] is left, then spins. A
/// slow pace thus costs the feed thread almost no CPU (a spinning pacer starved the engine
/// thread of a shared 2-vCPU machine, docs/lab/performance.md), and a fast one is as exact as
/// before. Returns false if `stop` was raised first.
fn wait_until(clock: &Clock, due: u64, stop: &AtomicBool) -> bool {
    loop {
        let now = clock.now();
        if now >= due {
            return true;
        }
        let left = due - now;
        if left > SPIN_NS {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let nap = (left - SPIN_NS / 2).min(STOP_CHECK_NS);
            std::thread::sleep(std::time::Duration::from_nanos(nap));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Sends the end marker.
pub fn end(tx: &FeedTx, clock: &Clock, seq: u64) {
    tx.push(Stamped { seq, t_feed: clock.now(), msg: FeedMsg::End });
}

/// Counters are shared with the queue; this re-export keeps feed users to one import.
pub type SharedCounters = Arc<Counters>;
