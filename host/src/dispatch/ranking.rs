//! The dispatcher's ranking of its backlog, kept between pumps.
//!
//! Ranking the backlog costs a triage per breached account. In a crash the backlog holds tens
//! of thousands of accounts while at most `max_in_flight` orders go out per pump, and the
//! dispatcher pumps on every scan and every answer, so ranking afresh each time made a pump
//! O(backlog) and capped the orders sent per second (a 1 M-account replay left 66,000 breached
//! accounts without an order after its 5-second flush). The ranking is now taken again only
//! when what it depends on moves: the backlog (a scan), the prices, or the time at which an
//! account skipped for a back-off or a settle may be sent again. In between, a pump takes the
//! next candidates in rank order: O(orders sent + accounts skipped).

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

/// Candidates in rank order, sorted lazily in widening chunks from a cursor.
#[derive(Debug, Default)]
pub(super) struct Ranking {
    cands: Vec<Candidate>,
    /// `cands[..sorted]` is in rank order; `cands[next..]` not taken yet.
    sorted: usize,
    next: usize,
    chunk: usize,
    /// The prices ranked at.
    prices: Vec<PriceEntry>,
    /// Earliest time an account left out or skipped may be sent: rank again then.
    wake_ns: u64,
    /// The backlog changed since the ranking.
    stale: bool,
}

fn by_rank(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.key.cmp(&a.key).then(a.slot.cmp(&b.slot))
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

    /// An account may be sent again at `t` (its back-off or settle ends).
    pub fn wake_at(&mut self, t: u64) {
        self.wake_ns = self.wake_ns.min(t);
    }

    /// True if the ranking no longer holds at `now` and `prices`.
    pub fn outdated(&self, now: u64, prices: &[PriceEntry]) -> bool {
        self.stale || now >= self.wake_ns || self.prices != prices
    }

    /// Starts a ranking at `prices`; a pump with `room` to send sorts its first chunk.
    pub fn restart(&mut self, prices: &[PriceEntry], room: usize) {
        self.cands.clear();
        self.sorted = 0;
        self.next = 0;
        self.chunk = room.max(8) * 2;
        self.prices.clear();
        self.prices.extend_from_slice(prices);
        self.wake_ns = u64::MAX;
        self.stale = false;
    }

    /// Adds a candidate to the ranking being taken.
    pub fn push(&mut self, c: Candidate) {
        self.cands.push(c);
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
        let c = *self.cands.get(self.next)?;
        self.next += 1;
        Some(c)
    }

    /// Candidates not taken yet.
    pub fn left(&self) -> usize {
        self.cands.len() - self.next
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

    #[test]
    fn is_outdated_by_the_backlog_the_prices_and_the_wake_time() {
        let p = |x: u32| {
            let q = liqscan_hdl::abi::QuotedPrice { asset: x, liability: x };
            vec![PriceEntry { spot: q, stressed: q }]
        };
        let mut r = Ranking::new();
        assert!(r.outdated(0, &p(1)), "a new ranking must be taken");
        r.restart(&p(1), 4);
        assert!(!r.outdated(10, &p(1)));
        assert!(r.outdated(10, &p(2)), "other prices");
        r.wake_at(20);
        assert!(!r.outdated(19, &p(1)));
        assert!(r.outdated(20, &p(1)), "an account may be sent again");
        r.restart(&p(1), 4);
        r.invalidate();
        assert!(r.outdated(0, &p(1)), "the backlog changed");
    }
}
