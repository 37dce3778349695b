//! A recorded message stream (a workload's book and ticks), kept compact.
//!
//! A [`FeedMsg::Upsert`] carries room for the largest account the software engine takes (64
//! terms, 520 bytes), which is right for the pipeline's queue but not for a book of a million
//! accounts held until it is replayed: that took over 500 MB, and twice that while the vector
//! grew. Here an upsert's terms live in one shared array, so an account costs its terms plus
//! 32 bytes; the replay builds each `FeedMsg` as it sends it. A workload's book at the front
//! (upserts of slots 0, 1, 2, .. at one timestamp) keeps only where each account's terms end:
//! 4 bytes an account, 320 MB less at 10 M accounts.

use liqscan_hdl::abi::{Coeff, PriceEntry};

use crate::pipeline::FeedMsg;

/// Messages with their recorded timestamps (ns), in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded {
    /// The book at the front: message `i < book_ends.len()` is the upsert of slot `i` at
    /// `book_ts`, its terms ending at `book_ends[i]` in `terms`.
    book_ts: i64,
    book_ends: Vec<u32>,
    /// The messages after the book.
    items: Vec<Item>,
    terms: Vec<Coeff>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Item {
    Tick { ts: i64, asset: u16, price: PriceEntry },
    Upsert { ts: i64, slot: u32, first: u32, n: u8 },
    Remove { ts: i64, slot: u32 },
    End { ts: i64 },
}

impl Recorded {
    /// Room for a book of `book` accounts, then `messages` messages, holding `terms` terms in
    /// all.
    pub fn with_capacity(book: usize, messages: usize, terms: usize) -> Recorded {
        Recorded {
            book_ts: 0,
            book_ends: Vec::with_capacity(book),
            items: Vec::with_capacity(messages),
            terms: Vec::with_capacity(terms),
        }
    }

    fn terms_end(&self) -> u32 {
        u32::try_from(self.terms.len()).expect("a recorded stream holds under 4 G terms")
    }

    /// Appends `msg` recorded at `ts`.
    pub fn push(&mut self, ts: i64, msg: &FeedMsg) {
        if let FeedMsg::Upsert { slot, n, ref terms } = *msg {
            let b = self.book_ends.len();
            if self.items.is_empty() && slot as usize == b && (b == 0 || ts == self.book_ts) {
                self.book_ts = ts;
                self.terms.extend_from_slice(&terms[..n as usize]);
                self.book_ends.push(self.terms_end());
                return;
            }
        }
        let item = match *msg {
            FeedMsg::Tick { asset, price } => Item::Tick { ts, asset, price },
            FeedMsg::Upsert { slot, n, ref terms } => {
                let first = self.terms_end();
                self.terms.extend_from_slice(&terms[..n as usize]);
                Item::Upsert { ts, slot, first, n }
            }
            FeedMsg::Remove { slot } => Item::Remove { ts, slot },
            FeedMsg::End => Item::End { ts },
        };
        self.items.push(item);
    }

    /// Messages held.
    pub fn len(&self) -> usize {
        self.book_ends.len() + self.items.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every message.
    pub fn clear(&mut self) {
        self.book_ends.clear();
        self.items.clear();
        self.terms.clear();
    }

    /// Message `i` and its timestamp. Panics past the end.
    pub fn get(&self, i: usize) -> (i64, FeedMsg) {
        match self.book_upsert(i) {
            Some((slot, terms)) => (self.book_ts, FeedMsg::upsert(slot, terms)),
            None => self.expand(&self.items[i - self.book_ends.len()]),
        }
    }

    /// The messages from the `k`-th on (none if `k` is past the end).
    pub fn iter_from(&self, k: usize) -> impl ExactSizeIterator<Item = (i64, FeedMsg)> + '_ {
        (k.min(self.len())..self.len()).map(|i| self.get(i))
    }

    /// How many messages at the front are upserts: a workload's book, which a keeper may
    /// load in bulk before it replays the rest.
    pub fn leading_upserts(&self) -> usize {
        self.book_ends.len() + self.items.iter().take_while(|it| matches!(it, Item::Upsert { .. })).count()
    }

    /// Message `i` if it is in the book at the front.
    fn book_upsert(&self, i: usize) -> Option<(u32, &[Coeff])> {
        let end = *self.book_ends.get(i)? as usize;
        let start = if i == 0 { 0 } else { self.book_ends[i - 1] as usize };
        Some((i as u32, &self.terms[start..end]))
    }

    /// The slot and terms of message `i` if it is an upsert (borrowed: no `FeedMsg` built).
    pub fn upsert(&self, i: usize) -> Option<(u32, &[Coeff])> {
        if i < self.book_ends.len() {
            return self.book_upsert(i);
        }
        match *self.items.get(i - self.book_ends.len())? {
            Item::Upsert { slot, first, n, .. } => {
                let first = first as usize;
                Some((slot, &self.terms[first..first + n as usize]))
            }
            _ => None,
        }
    }

    /// Forgets the first `k` messages (all of them if `k` is past the end), and the terms
    /// that only they held.
    pub fn drop_front(&mut self, k: usize) {
        *self = self.iter_from(k).collect();
    }

    /// Every message, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (i64, FeedMsg)> + '_ {
        self.iter_from(0)
    }

    fn expand(&self, it: &Item) -> (i64, FeedMsg) {
        match *it {
            Item::Tick { ts, asset, price } => (ts, FeedMsg::Tick { asset, price }),
            Item::Upsert { ts, slot, first, n } => {
                let first = first as usize;
                (ts, FeedMsg::upsert(slot, &self.terms[first..first + n as usize]))
            }
            Item::Remove { ts, slot } => (ts, FeedMsg::Remove { slot }),
            Item::End { ts } => (ts, FeedMsg::End),
        }
    }
}

impl FromIterator<(i64, FeedMsg)> for Recorded {
    fn from_iter<I: IntoIterator<Item = (i64, FeedMsg)>>(iter: I) -> Recorded {
        let mut r = Recorded::default();
        for (ts, m) in iter {
            r.push(ts, &m);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqscan_hdl::abi::{MAX_SOFTWARE_TERMS, QuotedPrice};
    use proptest::prelude::*;

    fn term() -> impl Strategy<Value = Coeff> {
        (0u16..8, any::<i32>()).prop_map(|(asset, coeff)| Coeff { asset, coeff })
    }

    fn msg() -> impl Strategy<Value = (i64, FeedMsg)> {
        let term = term();
        let price = (any::<u32>(), any::<u32>()).prop_map(|(a, l)| {
            let q = QuotedPrice { asset: a, liability: l };
            PriceEntry { spot: q, stressed: q }
        });
        prop_oneof![
            (any::<i64>(), 0u16..8, price)
                .prop_map(|(ts, asset, price)| (ts, FeedMsg::Tick { asset, price })),
            (any::<i64>(), any::<u32>(), prop::collection::vec(term, 0..=MAX_SOFTWARE_TERMS))
                .prop_map(|(ts, slot, t)| (ts, FeedMsg::upsert(slot, &t))),
            (any::<i64>(), any::<u32>()).prop_map(|(ts, slot)| (ts, FeedMsg::Remove { slot })),
            any::<i64>().prop_map(|ts| (ts, FeedMsg::End)),
        ]
    }

    proptest! {
        #[test]
        fn gives_back_what_it_was_given(
            book in prop::collection::vec(prop::collection::vec(term(), 0..=MAX_SOFTWARE_TERMS), 0..12),
            book_ts in any::<i64>(),
            next_slot_later in any::<bool>(),
            rest in prop::collection::vec(msg(), 0..40),
            k in 0usize..60,
        ) {
            // A workload's book (slots 0, 1, .. at one time: kept as the compact front), the
            // next slot at another time or the one after it (not the book), then anything.
            let mut msgs: Vec<(i64, FeedMsg)> =
                book.iter().enumerate().map(|(i, t)| (book_ts, FeedMsg::upsert(i as u32, t))).collect();
            let (ts, slot) = if next_slot_later { (book_ts ^ 1, 0) } else { (book_ts, 1) };
            msgs.push((ts, FeedMsg::upsert(book.len() as u32 + slot, &[Coeff { asset: 1, coeff: 7 }])));
            msgs.extend(rest);
            let r: Recorded = msgs.iter().copied().collect();
            prop_assert_eq!(r.len(), msgs.len());
            for (i, m) in msgs.iter().enumerate() {
                prop_assert_eq!(r.get(i), *m, "message {}", i);
            }
            let tail: Vec<_> = r.iter_from(k).collect();
            prop_assert_eq!(tail.len(), msgs.len().saturating_sub(k));
            for (got, want) in tail.iter().zip(msgs.iter().skip(k)) {
                prop_assert_eq!(got, want);
            }
            // The book at the front, borrowed as the bulk load takes it.
            let lead = msgs.iter().take_while(|m| matches!(m.1, FeedMsg::Upsert { .. })).count();
            prop_assert_eq!(r.leading_upserts(), lead);
            for (i, (_, m)) in msgs.iter().enumerate() {
                let want = match m {
                    FeedMsg::Upsert { slot, n, terms } => Some((*slot, &terms[..*n as usize])),
                    _ => None,
                };
                prop_assert_eq!(r.upsert(i), want, "message {}", i);
            }
            let mut front = r.clone();
            front.drop_front(k);
            prop_assert_eq!(front.iter().collect::<Vec<_>>(), tail);
        }
    }
}
