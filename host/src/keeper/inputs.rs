//! A keeper's input source brought by the program (`liqscan run --nats`: `liqscan-nats` reads
//! the venue's JetStream input stream; the library leaves the NATS client out, as it does for
//! the NATS executor). The source replaces the replay: the workload's files give the book's
//! shape (slots, assets, sizing), the source its contents.
//!
//! The keeper hands the source an [`InputPort`]: a [`FrameIntake`] with the live listeners'
//! checks and options (book bounds, zero prices, the oracle guard, authentication from
//! `LIQSCAN_FEED_SECRET`, the journal) on live stream [`STREAM_SOURCE`]. With a journal each
//! taken frame is journaled with its stream sequence before the engine sees it, so the book
//! and the position in the stream are one record and cannot disagree after a crash: a
//! restarted keeper's port says [`FrameIntake::resume_after`], the last sequence applied, and
//! the source reads on from the next one. Without a journal nothing is kept: the source reads
//! the stream from its first message and rebuilds the book.

use crate::feed::intake::{FrameIntake, Refusal};
use crate::feed::listen::ListenReport;
use crate::metrics::Counters;

use super::Notes;

/// Live stream number of the input source (in the journal's `Live` records and the guard).
pub const STREAM_SOURCE: u8 = 3;

/// What the keeper gives its input source.
pub struct InputPort {
    /// The checks and the queue into the engine, numbered by the source (stream sequence).
    pub intake: FrameIntake,
    /// Where the source's notes go (server unreachable, resumed, refusals).
    pub notes: Notes,
}

/// A running input source.
pub trait InputSource: Send {
    /// What it reads (server and stream), for the report.
    fn describe(&self) -> String;

    /// Stops reading (no frame is taken once it returns) and returns what the checks saw.
    fn stop(self: Box<Self>) -> ListenReport;
}

/// Makes the input source from its port (called once, at start, on the starting thread); an
/// error (a malformed server URL) stops the start. A server that is down is not an error:
/// the source reports it and keeps trying.
pub type MakeInputs = Box<dyn FnOnce(InputPort) -> Result<Box<dyn InputSource>, String> + Send>;

/// The report line of a stopped source.
pub fn report_line(what: &str, r: &ListenReport, counters: &Counters) -> String {
    let i = &counters.inputs;
    let refused: Vec<String> = Refusal::ALL
        .iter()
        .filter(|x| i.refused(**x) > 0)
        .map(|x| format!("{} {}", x.label(), i.refused(*x)))
        .collect();
    format!(
        "inputs {what}: {} taken, last stream sequence {}, {} gaps ({} missing); refused: {}",
        r.pushed,
        i.last_seq.load(std::sync::atomic::Ordering::Relaxed),
        r.seq.gaps,
        r.seq.missing,
        if refused.is_empty() { "none".to_string() } else { refused.join(", ") }
    )
}
