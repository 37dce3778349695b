//! The hand-off from the scan thread to the dispatch thread: bounded and non-blocking.
//!
//! The scan thread calls [`HandoffSender::offer`], which never waits. When the queue is full the
//! batch is merged into a carry that rides along with the next offer, and the event is counted
//! as back-pressure. Nothing is dropped: a slot's latest state (breached or cleared) always
//! reaches the dispatcher, at worst one offer later. The carry holds sets, so its size is
//! bounded by the number of slots, however long the dispatcher stalls; and the account deltas
//! of the carried batches, in order (bounded by the messages of the stall).

use std::collections::BTreeMap;

use crossbeam::channel::{Receiver, Sender, TrySendError, bounded};
use liqscan_hdl::abi::Coeff;

/// What one scan tells dispatch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanBatch {
    /// Sequence number of the (last) scan this batch covers.
    pub seq: u64,
    /// Slots that became breached.
    pub breached: Vec<u32>,
    /// The scan (feed sequence number) at which each of `breached` became breached, when the
    /// batch merges several scans (a carry); empty means every one at `seq`. The breach episode
    /// of the slot, hence part of its order id.
    pub breached_seq: Vec<u64>,
    /// Slots that are no longer breached.
    pub cleared: Vec<u32>,
    /// Slots at risk (stressed health below zero) but not breached: orders are pre-built.
    pub at_risk: Vec<u32>,
    /// Account deltas the engine applied before this batch's scan (and after the previous
    /// batch's), in feed order: dispatch sizes orders from the accounts as they are now.
    pub accounts: AccountDeltas,
}

impl ScanBatch {
    /// True if the batch reports a breach, a clear or an account at risk.
    pub fn has_news(&self) -> bool {
        !(self.breached.is_empty() && self.cleared.is_empty() && self.at_risk.is_empty())
    }
}

/// Account upserts and removes, in feed order, as the engine applied them (terms flat).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountDeltas {
    /// (slot, first term, term count or [`REMOVED`]).
    slots: Vec<(u32, u32, u32)>,
    terms: Vec<Coeff>,
}

/// An [`AccountDeltas`] entry's term count for a remove.
const REMOVED: u32 = u32::MAX;

impl AccountDeltas {
    /// `slot` now holds an account of these terms.
    pub fn upsert(&mut self, slot: u32, terms: &[Coeff]) {
        self.slots.push((slot, self.terms.len() as u32, terms.len() as u32));
        self.terms.extend_from_slice(terms);
    }

    /// `slot` is now empty.
    pub fn remove(&mut self, slot: u32) {
        self.slots.push((slot, 0, REMOVED));
    }

    /// Deltas held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if there is none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Each delta in order: the slot and its terms (`None`: removed).
    pub fn iter(&self) -> impl Iterator<Item = (u32, Option<&[Coeff]>)> + '_ {
        self.slots.iter().map(|&(slot, first, n)| {
            (slot, (n != REMOVED).then(|| &self.terms[first as usize..(first + n) as usize]))
        })
    }

    /// Appends `later`'s deltas after these.
    fn append(&mut self, later: AccountDeltas) {
        if self.is_empty() {
            *self = later;
            return;
        }
        for (slot, terms) in later.iter() {
            match terms {
                Some(t) => self.upsert(slot, t),
                None => self.remove(slot),
            }
        }
    }
}

/// Result of an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offer {
    /// Queued.
    Sent,
    /// The queue was full; the batch is carried into the next offer.
    BackPressure,
    /// The dispatch side is gone.
    Closed,
}

/// The scan side.
pub struct HandoffSender {
    tx: Sender<ScanBatch>,
    carry: Option<Carry>,
    /// Offers that met a full queue.
    pub backpressure: u64,
    /// Batches delivered.
    pub sent: u64,
}

#[derive(Default)]
struct Carry {
    seq: u64,
    // slot -> breached (with the scan it breached at) or cleared (None); the latest wins.
    state: BTreeMap<u32, Option<u64>>,
    at_risk: BTreeMap<u32, ()>,
    accounts: AccountDeltas,
}

impl Carry {
    fn merge(&mut self, b: ScanBatch) {
        self.seq = b.seq;
        self.accounts.append(b.accounts);
        for (i, s) in b.breached.into_iter().enumerate() {
            self.state.insert(s, Some(b.breached_seq.get(i).copied().unwrap_or(b.seq)));
        }
        for s in b.cleared {
            self.state.insert(s, None);
            self.at_risk.remove(&s);
        }
        for s in b.at_risk {
            self.at_risk.insert(s, ());
        }
    }

    fn into_batch(self) -> ScanBatch {
        let mut b = ScanBatch { seq: self.seq, accounts: self.accounts, ..Default::default() };
        for (s, breached_at) in self.state {
            match breached_at {
                Some(at) => {
                    b.breached.push(s);
                    b.breached_seq.push(at);
                }
                None => b.cleared.push(s),
            }
        }
        b.at_risk = self.at_risk.into_keys().collect();
        b
    }
}

/// The dispatch side.
pub struct HandoffReceiver {
    rx: Receiver<ScanBatch>,
}

/// A hand-off queue holding at most `capacity` batches.
pub fn handoff(capacity: usize) -> (HandoffSender, HandoffReceiver) {
    let (tx, rx) = bounded(capacity.max(1));
    (HandoffSender { tx, carry: None, backpressure: 0, sent: 0 }, HandoffReceiver { rx })
}

impl ScanBatch {
    /// The scan at which `breached[i]` became breached (its breach episode).
    pub fn breached_at(&self, i: usize) -> u64 {
        self.breached_seq.get(i).copied().unwrap_or(self.seq)
    }
}

impl HandoffSender {
    /// Offers a batch without blocking.
    pub fn offer(&mut self, batch: ScanBatch) -> Offer {
        let batch = match self.carry.take() {
            Some(mut c) => {
                c.merge(batch);
                c.into_batch()
            }
            None => batch,
        };
        match self.tx.try_send(batch) {
            Ok(()) => {
                self.sent += 1;
                Offer::Sent
            }
            Err(TrySendError::Full(b)) => {
                self.backpressure += 1;
                let mut c = Carry::default();
                c.merge(b);
                self.carry = Some(c);
                Offer::BackPressure
            }
            Err(TrySendError::Disconnected(_)) => Offer::Closed,
        }
    }

    /// True while a batch waits in the carry.
    pub fn has_carry(&self) -> bool {
        self.carry.is_some()
    }
}

impl HandoffReceiver {
    /// The next batch, if any, without waiting.
    pub fn try_recv(&self) -> Option<ScanBatch> {
        self.rx.try_recv().ok()
    }

    /// The next batch, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<ScanBatch> {
        self.rx.recv_timeout(timeout).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_counts_back_pressure_and_loses_nothing() {
        let (mut tx, rx) = handoff(1);
        let b = |seq, breached: &[u32], cleared: &[u32]| ScanBatch {
            seq,
            breached: breached.to_vec(),
            cleared: cleared.to_vec(),
            ..Default::default()
        };
        assert_eq!(tx.offer(b(1, &[1], &[])), Offer::Sent);
        assert_eq!(tx.offer(b(2, &[2, 3], &[])), Offer::BackPressure);
        assert_eq!(tx.offer(b(3, &[4], &[3])), Offer::BackPressure);
        assert_eq!(tx.backpressure, 2);
        assert!(tx.has_carry());
        assert_eq!(rx.try_recv().unwrap(), b(1, &[1], &[]));
        assert_eq!(tx.offer(b(4, &[], &[1])), Offer::Sent);
        // The carried batches and the new one arrive merged, latest state per slot.
        // Each breached slot keeps the scan it breached at: its breach episode.
        let got = rx.try_recv().unwrap();
        assert_eq!(got, ScanBatch { breached_seq: vec![2, 3], ..b(4, &[2, 4], &[1, 3]) });
        assert_eq!((got.breached_at(0), got.breached_at(1)), (2, 3));
        assert!(rx.try_recv().is_none());
    }

    #[test]
    fn carried_account_deltas_arrive_in_feed_order() {
        let (mut tx, rx) = handoff(1);
        let c = |asset, coeff| Coeff { asset, coeff };
        let with = |seq, deltas: &[(u32, Option<Vec<Coeff>>)]| {
            let mut b = ScanBatch { seq, ..Default::default() };
            for (slot, terms) in deltas {
                match terms {
                    Some(t) => b.accounts.upsert(*slot, t),
                    None => b.accounts.remove(*slot),
                }
            }
            b
        };
        assert_eq!(tx.offer(with(1, &[])), Offer::Sent);
        assert_eq!(tx.offer(with(2, &[(5, Some(vec![c(0, 10), c(1, -3)])), (6, None)])), Offer::BackPressure);
        assert_eq!(tx.offer(with(3, &[(5, None), (7, Some(vec![]))])), Offer::BackPressure);
        rx.try_recv().unwrap();
        assert_eq!(tx.offer(with(4, &[(5, Some(vec![c(2, 4)]))])), Offer::Sent);
        let got = rx.try_recv().unwrap();
        assert!(!got.has_news());
        let deltas: Vec<(u32, Option<Vec<Coeff>>)> =
            got.accounts.iter().map(|(s, t)| (s, t.map(|t| t.to_vec()))).collect();
        let want: Vec<(u32, Option<Vec<Coeff>>)> = vec![
            (5, Some(vec![c(0, 10), c(1, -3)])),
            (6, None),
            (5, None),
            (7, Some(vec![])),
            (5, Some(vec![c(2, 4)])),
        ];
        assert_eq!(deltas, want);
    }
}
