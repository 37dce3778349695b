//! [`Step`]: after a message, what changed in an engine's bitmaps since the last step.
//!
//! ```text
//!   engine.tick / upsert / remove ──> Step::collect (changed words, sorted)
//!                                 ──> Step::diff (bitmap::Diff against the last step)
//!                                 ──> newly breached / cleared / at risk ──> the caller's sink
//! ```
//!
//! The one old-versus-new comparison behind the pipeline, the simulator, `liqscan scan` and
//! journal recovery, for any engine. Buffers are sized at creation: a step allocates nothing
//! (beyond a breach list longer than its starting room), takes no lock and makes no system
//! call.

use super::ScanEngine;
use crate::bitmap::{Changes, Diff};

/// The previous step's bitmaps and the buffers of the next; see the [module](self) doc.
#[derive(Clone, Debug)]
pub struct Step {
    diff: Diff,
    changed: Vec<u32>,
    news: Changes,
    /// The next collect reports every word (the start; the end of a warm-up).
    all_words: bool,
}

impl Step {
    /// For bitmaps the caller has not seen yet: the first step reports everything the engine
    /// holds against all clear.
    pub fn new<E: ScanEngine + ?Sized>(engine: &mut E) -> Step {
        let words = engine.breach().len();
        let mut s = Step::sized(words, Diff::new(words));
        engine.changed_words(&mut s.changed);
        s.changed.clear();
        s.all_words = true;
        s
    }

    /// Starting from the engine's bitmaps as they are: what they hold now is not news.
    pub fn starting_at<E: ScanEngine + ?Sized>(engine: &mut E) -> Step {
        let words = engine.breach().len();
        let mut s = Step::sized(words, Diff::starting_at(engine.breach(), engine.at_risk()));
        engine.changed_words(&mut s.changed);
        s.changed.clear();
        s
    }

    fn sized(words: usize, diff: Diff) -> Step {
        Step {
            diff,
            changed: Vec::with_capacity(words),
            news: Changes {
                breached: Vec::with_capacity((words * 64).min(1 << 20)),
                cleared: Vec::with_capacity(1024),
                at_risk: Vec::with_capacity(1024),
            },
            all_words: false,
        }
    }

    /// The next step compares every word, not only those the engine says changed.
    pub fn report_all(&mut self) {
        self.all_words = true;
    }

    /// Takes the words the engine changed since the last collect, ascending (so the news
    /// lists are ascending whatever engine made them). Call it right after the message.
    #[inline]
    pub fn collect<E: ScanEngine + ?Sized>(&mut self, engine: &mut E) {
        self.changed.clear();
        engine.changed_words(&mut self.changed);
        if self.all_words {
            self.all_words = false;
            self.changed.clear();
            self.changed.extend(0..engine.breach().len() as u32);
        }
        // In place, no allocation.
        self.changed.sort_unstable();
    }

    /// Forgets the words the engine changed (a warm-up whose changes are not news; follow it
    /// with [`report_all`](Step::report_all) when the news starts).
    pub fn skip<E: ScanEngine + ?Sized>(&mut self, engine: &mut E) {
        self.changed.clear();
        engine.changed_words(&mut self.changed);
        self.changed.clear();
    }

    /// Compares the collected words with the last step: the slots newly breached, cleared and
    /// newly at risk (not breached), each list ascending.
    #[inline]
    pub fn diff<E: ScanEngine + ?Sized>(&mut self, engine: &E) -> &Changes {
        self.news.clear();
        self.diff.step(&self.changed, engine.breach(), engine.at_risk(), &mut self.news);
        &self.news
    }

    /// [`diff`](Step::diff) into the caller's three lists (breached, cleared, at risk), which
    /// it appends to.
    #[inline]
    pub fn diff_into<E: ScanEngine + ?Sized>(&mut self, engine: &E, out: [&mut Vec<u32>; 3]) {
        self.diff.step_into(&self.changed, engine.breach(), engine.at_risk(), out);
    }

    /// [`diff`](Step::diff) word by word: `f(word, [old breach, old at-risk], [new breach, new
    /// at-risk])` for every collected word that differs, ascending.
    #[inline]
    pub fn diff_words<E: ScanEngine + ?Sized>(
        &mut self,
        engine: &E,
        f: impl FnMut(usize, [u64; 2], [u64; 2]),
    ) {
        self.diff.step_words(&self.changed, engine.breach(), engine.at_risk(), f);
    }

    /// [`collect`](Step::collect) then [`diff`](Step::diff).
    #[inline]
    pub fn scan<E: ScanEngine + ?Sized>(&mut self, engine: &mut E) -> &Changes {
        self.collect(engine);
        self.diff(engine)
    }

    /// The bitmaps as of the last step: breach, at risk.
    pub fn seen(&self) -> (&[u64], &[u64]) {
        (self.diff.breach(), self.diff.at_risk())
    }
}

#[cfg(test)]
mod tests {
    use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};

    use super::*;
    use crate::engine::SoftwareEngine;

    fn price(p: u32) -> PriceEntry {
        PriceEntry {
            spot: QuotedPrice { asset: p, liability: p },
            stressed: QuotedPrice { asset: p * 9 / 10, liability: p * 11 / 10 },
        }
    }

    #[test]
    fn a_new_step_reports_what_the_engine_already_holds_and_then_only_news() {
        let mut e = SoftwareEngine::new(130, 2);
        e.tick(0, price(100)).unwrap();
        e.tick(1, price(100)).unwrap();
        for slot in [3u32, 70, 129] {
            e.upsert(slot, &[Coeff { asset: 0, coeff: 10 }, Coeff { asset: 1, coeff: -12 }]).unwrap();
        }
        let mut s = Step::new(&mut e);
        let n = s.scan(&mut e).clone();
        assert_eq!(n.breached, vec![3, 70, 129]);
        assert!(s.scan(&mut e).is_empty(), "nothing new without a message");
        e.tick(1, price(50)).unwrap();
        let n = s.scan(&mut e);
        assert_eq!((n.cleared.as_slice(), n.breached.as_slice()), (&[3, 70, 129][..], &[][..]));
        // A warm-up: changes skipped, then everything compared at once.
        e.tick(1, price(100)).unwrap();
        s.skip(&mut e);
        assert!(s.scan(&mut e).is_empty(), "skipped changes are not news by themselves");
        s.report_all();
        assert_eq!(s.scan(&mut e).breached, vec![3, 70, 129]);
        let (b, _) = s.seen();
        assert_eq!(b, e.breach());
    }

    #[test]
    fn starting_at_takes_the_current_bitmaps_as_seen() {
        let mut e = SoftwareEngine::new(64, 2);
        e.tick(0, price(100)).unwrap();
        e.tick(1, price(100)).unwrap();
        e.upsert(5, &[Coeff { asset: 0, coeff: 10 }, Coeff { asset: 1, coeff: -12 }]).unwrap();
        let mut s = Step::starting_at(&mut e);
        assert!(s.scan(&mut e).is_empty());
        e.remove(5).unwrap();
        assert_eq!(s.scan(&mut e).cleared, vec![5]);
    }
}
