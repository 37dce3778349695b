//! The dispatcher's ranking of its backlog, kept between pumps.
//!
//! Ranking the backlog costs a triage per breached account. In a crash the backlog holds tens
//! of thousands of accounts while at most `max_in_flight` orders go out per pump, and the
//! dispatcher pumps on every scan and every answer, so ranking afresh each time made a pump
//! O(backlog) and capped the orders sent per second (a 1 M-account replay left 66,000 breached
//! accounts without an order after its 5-second flush). The ranking is now taken again only
//! when what it depends on moves: the backlog (a scan) or the prices. An account left out for a
//! back-off or a settle waits in the dispatcher's time queue and rejoins the ranking alone when
//! its time comes (O(log backlog)). In between, a pump takes the next candidates in rank
//! order: O(orders sent + accounts skipped), each O(log backlog).

use std::collections::BinaryHeap;

use liqscan_hdl::abi::PriceEntry;

/// A backlog entry ranked for sending.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    /// Value at risk: the debt's value at the ranking's prices, or a pre-built order's.
    pub key: i128,
    pub slot: u32,
    pub account: u64,
    pub first_seen: u64,
}

/// Candidates in rank order, sorted lazily in widening chunks from a cursor, and those that
/// rejoined since in a heap; taking merges the two.
#[derive(Debug, Default)]
pub(super) struct Ranking {
    cands: Vec<Candidate>,
    /// `cands[..sorted]` is in rank order; `cands[next..]` not taken yet.
    sorted: usize,
    next: usize,
    chunk: usize,
    rejoined: BinaryHeap<Ranked>,
    /// The prices ranked at.
    prices: Vec<PriceEntry>,
    /// The backlog changed since the ranking.
    stale: bool,
}

/// Rank order: the larger value at risk first, then the lower slot.
fn by_rank(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.key.cmp(&a.key).then(a.slot.cmp(&b.slot))
}

/// A candidate ordered so that the heap's top is the first in rank order.
#[derive(Clone, Copy, Debug)]
struct Ranked(Candidate);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        by_rank(&other.0, &self.0)
    }
}

impl Ranking {
    /// A ranking that must be taken before use.
    pub fn new() -> Ranking {
        Ranking { stale: true, ..Ranking::default() }
    }

    /// The backlog changed (a scan, a restart): rank again at the next pump.
    pub fn invalidate(&mut self) {
        self.stale = true;
    }

    /// True if the ranking no longer holds at `prices`.
    pub fn outdated(&self, prices: &[PriceEntry]) -> bool {
        self.stale || self.prices != prices
    }

    /// Starts a ranking at `prices`; a pump with `room` to send sorts its first chunk.
    pub fn restart(&mut self, prices: &[PriceEntry], room: usize) {
        self.cands.clear();
        self.sorted = 0;
        self.next = 0;
        self.chunk = room.max(8) * 2;
        self.rejoined.clear();
        self.prices.clear();
        self.prices.extend_from_slice(prices);
        self.stale = false;
    }

    /// Adds a candidate to the ranking being taken.
    pub fn push(&mut self, c: Candidate) {
        self.cands.push(c);
    }

    /// Adds a candidate to a ranking already being taken from (an account whose wait ended).
    pub fn rejoin(&mut self, c: Candidate) {
        self.rejoined.push(Ranked(c));
    }

    /// The best candidate not taken yet.
    pub fn take(&mut self) -> Option<Candidate> {
        if self.next == self.sorted && self.sorted < self.cands.len() {
            let (start, end) = (self.sorted, (self.sorted + self.chunk).min(self.cands.len()));
            if end < self.cands.len() {
                self.cands[start..].select_nth_unstable_by(end - start - 1, by_rank);
            }
            self.cands[start..end].sort_unstable_by(by_rank);
            self.sorted = end;
            self.chunk *= 2;
        }
        let sorted = self.cands.get(self.next).filter(|_| self.next < self.sorted);
        match (sorted, self.rejoined.peek()) {
            (Some(c), Some(r)) if by_rank(&r.0, c).is_lt() => self.rejoined.pop().map(|r| r.0),
            (Some(&c), _) => {
                self.next += 1;
                Some(c)
            }
            (None, _) => self.rejoined.pop().map(|r| r.0),
        }
    }

    /// Candidates not taken yet.
    pub fn left(&self) -> usize {
        self.cands.len() - self.next + self.rejoined.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn takes_candidates_in_rank_order(keys in prop::collection::vec(-50i128..50, 0..300), room in 0usize..40) {
            let mut r = Ranking::new();
            r.restart(&[], room);
            for (i, &key) in keys.iter().enumerate() {
                r.push(Candidate { key, slot: i as u32, account: i as u64, first_seen: 0 });
            }
            let mut want: Vec<(i128, u32)> = keys.iter().enumerate().map(|(i, &k)| (k, i as u32)).collect();
            want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut got = Vec::new();
            while let Some(c) = r.take() {
                got.push((c.key, c.slot));
                prop_assert_eq!(r.left(), keys.len() - got.len());
            }
            prop_assert_eq!(got, want);
        }
    }

    proptest! {
        #[test]
        fn merges_rejoined_candidates_in_rank_order(
            keys in prop::collection::vec(-50i128..50, 0..200),
            late in prop::collection::vec((-50i128..50, 0usize..200), 0..40),
        ) {
            let mut r = Ranking::new();
            r.restart(&[], 4);
            for (i, &key) in keys.iter().enumerate() {
                r.push(Candidate { key, slot: i as u32, account: i as u64, first_seen: 0 });
            }
            // Each late candidate rejoins once `at` have been taken.
            let mut late: Vec<(usize, i128, u32)> =
                late.iter().enumerate().map(|(j, &(key, at))| (at, key, (1000 + j) as u32)).collect();
            late.sort_by_key(|l| l.0);
            let mut late = late.into_iter().peekable();
            let mut avail: Vec<(i128, u32)> = keys.iter().enumerate().map(|(i, &k)| (k, i as u32)).collect();
            let mut taken = 0;
            loop {
                let due = |l: &(usize, i128, u32)| l.0 <= taken;
                while let Some((_, key, slot)) = late.next_if(due) {
                    r.rejoin(Candidate { key, slot, account: slot as u64, first_seen: 0 });
                    avail.push((key, slot));
                }
                let Some(c) = r.take() else {
                    // Nothing left before the next one is due: it comes now.
                    let Some((_, key, slot)) = late.next() else { break };
                    r.rejoin(Candidate { key, slot, account: slot as u64, first_seen: 0 });
                    avail.push((key, slot));
                    continue;
                };
                // What a fresh ranking of everything not taken yet would give first.
                let best = *avail.iter().min_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1))).unwrap();
                prop_assert_eq!((c.key, c.slot), best);
                avail.retain(|&x| x != best);
                taken += 1;
                prop_assert_eq!(r.left(), avail.len());
            }
            prop_assert!(avail.is_empty());
        }
    }

    #[test]
    fn is_outdated_by_the_backlog_and_the_prices() {
        let p = |x: u32| {
            let q = liqscan_hdl::abi::QuotedPrice { asset: x, liability: x };
            vec![PriceEntry { spot: q, stressed: q }]
        };
        let mut r = Ranking::new();
        assert!(r.outdated(&p(1)), "a new ranking must be taken");
        r.restart(&p(1), 4);
        assert!(!r.outdated(&p(1)));
        assert!(r.outdated(&p(2)), "other prices");
        r.invalidate();
        assert!(r.outdated(&p(1)), "the backlog changed");
    }
}
