//! The durable state: what the journal and the snapshots rebuild after a crash.

use std::collections::BTreeMap;

use liqscan_hdl::abi::{Coeff, PriceEntry, check_terms_software};
use serde::{Deserialize, Serialize};

use super::record::{OrderRecord, OrderState, Record};
use crate::engine::{EngineError, ScanEngine, SoftwareEngine};
use crate::reference;

/// The account in one slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotAccount {
    /// The venue's stable account key.
    pub account: u64,
    /// Its compiled terms.
    pub terms: Vec<Coeff>,
}

/// An order the state still tracks (pending or sent; done orders leave).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedOrder {
    /// The order, as last journaled (latest attempt).
    pub order: OrderRecord,
    /// Pending (maybe not sent) or sent.
    pub state: OrderState,
}

/// Book, prices, parameters and open orders, as of record `seq`.
///
/// Every change goes through [`apply`](DurableState::apply), which refuses a record that does
/// not fit (and then changes nothing), so replaying a journal reproduces exactly the state the
/// writer had.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableState {
    /// Sequence number of the last record applied (0: none).
    pub seq: u64,
    /// The account in each slot.
    pub accounts: Vec<Option<SlotAccount>>,
    /// The price vector.
    pub prices: Vec<PriceEntry>,
    /// Timestamp of the last price applied per asset (`i64::MIN`: none yet).
    pub last_ts: Vec<i64>,
    /// Parameters by name.
    pub params: BTreeMap<String, String>,
    /// Open orders by id.
    pub orders: BTreeMap<u64, TrackedOrder>,
    /// One past the highest order id ever journaled.
    pub next_order_id: u64,
    /// Orders finished so far.
    pub orders_done: u64,
    /// Records that are live feed frames ([`Record::Live`]).
    #[serde(default)]
    pub live_frames: u64,
    /// Last frame number taken per live stream.
    #[serde(default)]
    pub live_seq: BTreeMap<u8, u64>,
}

/// Why a record does not fit the state. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Slot beyond the book.
    #[error("slot {slot} is out of range: the book has {slots} slots")]
    Slot {
        /// The slot asked for.
        slot: u32,
        /// Book size.
        slots: usize,
    },
    /// Asset beyond the price table.
    #[error("asset {asset} is out of range: the price table has {assets} assets")]
    Asset {
        /// The asset asked for.
        asset: u16,
        /// Table size.
        assets: usize,
    },
    /// A batch tick of the wrong length.
    #[error("price vector has {got} entries; the table has {assets}")]
    VectorLength {
        /// Entries given.
        got: usize,
        /// Table size.
        assets: usize,
    },
    /// Terms the datapath cannot take.
    #[error("account {account} in slot {slot}: {reason}")]
    Terms {
        /// Account key.
        account: u64,
        /// Slot.
        slot: u32,
        /// What is wrong.
        reason: String,
    },
    /// The slot holds another account (remove it first), or none where one was expected.
    #[error("slot {slot} holds {held:?}, not account {account}")]
    SlotHolder {
        /// Slot.
        slot: u32,
        /// The account the record names.
        account: u64,
        /// The account the slot holds.
        held: Option<u64>,
    },
    /// A live frame record that does not fit (a nested kind it cannot carry, a frame number
    /// not above the stream's last).
    #[error("live stream {stream}: {reason}")]
    Live {
        /// Stream.
        stream: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// An order record that does not follow the order's life (pending, sent, done).
    #[error("order {id}: {reason}")]
    Order {
        /// Order id.
        id: u64,
        /// What is out of place.
        reason: &'static str,
    },
}

impl DurableState {
    /// An empty book: `slots` empty slots, `assets` zero prices.
    pub fn new(slots: usize, assets: usize) -> Self {
        DurableState {
            seq: 0,
            accounts: vec![None; slots],
            prices: vec![PriceEntry::default(); assets],
            last_ts: vec![i64::MIN; assets],
            params: BTreeMap::new(),
            orders: BTreeMap::new(),
            next_order_id: 1,
            orders_done: 0,
            live_frames: 0,
            live_seq: BTreeMap::new(),
        }
    }

    /// Account slots.
    pub fn slots(&self) -> usize {
        self.accounts.len()
    }

    /// Assets in the price table.
    pub fn assets(&self) -> usize {
        self.prices.len()
    }

    fn slot(&self, slot: u32) -> Result<usize, ApplyError> {
        let s = slot as usize;
        if s < self.accounts.len() { Ok(s) } else { Err(ApplyError::Slot { slot, slots: self.slots() }) }
    }

    /// Checks that `rec` fits without changing anything.
    pub fn check(&self, rec: &Record) -> Result<(), ApplyError> {
        match rec {
            Record::Upsert { account, slot, terms } => {
                let s = self.slot(*slot)?;
                // As the software engine takes them: up to 64 terms, an asset's two legs (the card
                // backend keeps accounts the card cannot hold on the host).
                check_terms_software(terms, self.assets()).map_err(|e| ApplyError::Terms {
                    account: *account,
                    slot: *slot,
                    reason: e.to_string(),
                })?;
                match &self.accounts[s] {
                    Some(a) if a.account != *account => {
                        Err(ApplyError::SlotHolder { slot: *slot, account: *account, held: Some(a.account) })
                    }
                    _ => Ok(()),
                }
            }
            Record::Remove { account, slot } => {
                let s = self.slot(*slot)?;
                match &self.accounts[s] {
                    Some(a) if a.account == *account => Ok(()),
                    held => Err(ApplyError::SlotHolder {
                        slot: *slot,
                        account: *account,
                        held: held.as_ref().map(|a| a.account),
                    }),
                }
            }
            Record::Param { .. } => Ok(()),
            Record::Tick { asset, .. } => {
                if (*asset as usize) < self.assets() {
                    Ok(())
                } else {
                    Err(ApplyError::Asset { asset: *asset, assets: self.assets() })
                }
            }
            Record::BatchTick { prices, .. } => {
                if prices.len() == self.assets() {
                    Ok(())
                } else {
                    Err(ApplyError::VectorLength { got: prices.len(), assets: self.assets() })
                }
            }
            Record::OrderPending(o) => match self.orders.get(&o.id) {
                None if o.id < self.next_order_id => {
                    Err(ApplyError::Order { id: o.id, reason: "id already used by a finished order" })
                }
                None => Ok(()),
                Some(t) if o.attempt <= t.order.attempt => {
                    Err(ApplyError::Order { id: o.id, reason: "retry must have a higher attempt" })
                }
                Some(t) if t.order.account != o.account => {
                    Err(ApplyError::Order { id: o.id, reason: "retry names another account" })
                }
                Some(_) => Ok(()),
            },
            Record::OrderSent { id, attempt } => match self.orders.get(id) {
                Some(t) if t.state == OrderState::Pending && t.order.attempt == *attempt => Ok(()),
                Some(_) => Err(ApplyError::Order { id: *id, reason: "sent twice or for another attempt" }),
                None => Err(ApplyError::Order { id: *id, reason: "sent but never journaled as pending" }),
            },
            Record::OrderDone { id, .. } => match self.orders.get(id) {
                Some(_) => Ok(()),
                None => Err(ApplyError::Order { id: *id, reason: "finished but not open" }),
            },
            Record::Live { source, seq, record } => match **record {
                Record::Upsert { .. } | Record::Remove { .. } | Record::Tick { .. } => {
                    match self.live_seq.get(source) {
                        Some(&last) if *seq <= last => Err(ApplyError::Live {
                            stream: *source,
                            reason: "frame number not above the last",
                        }),
                        _ => self.check(record),
                    }
                }
                _ => Err(ApplyError::Live { stream: *source, reason: "only upserts, removes and ticks" }),
            },
        }
    }

    /// Applies `rec` as record number `seq`; on error nothing changes.
    pub fn apply(&mut self, seq: u64, rec: &Record) -> Result<(), ApplyError> {
        self.check(rec)?;
        self.apply_checked(seq, rec);
        Ok(())
    }

    /// Applies a record that [`check`](Self::check) accepted.
    pub(crate) fn apply_checked(&mut self, seq: u64, rec: &Record) {
        match rec {
            Record::Upsert { account, slot, terms } => {
                let s = *slot as usize;
                match &mut self.accounts[s] {
                    Some(a) => {
                        a.terms.clear();
                        a.terms.extend_from_slice(terms);
                    }
                    none => *none = Some(SlotAccount { account: *account, terms: terms.clone() }),
                }
            }
            Record::Remove { slot, .. } => self.accounts[*slot as usize] = None,
            Record::Param { name, value } => {
                self.params.insert(name.clone(), value.clone());
            }
            Record::Tick { ts_ns, asset, price } => {
                self.prices[*asset as usize] = *price;
                self.last_ts[*asset as usize] = *ts_ns;
            }
            Record::BatchTick { ts_ns, prices } => {
                self.prices.copy_from_slice(prices);
                self.last_ts.iter_mut().for_each(|t| *t = *ts_ns);
            }
            Record::OrderPending(o) => {
                self.next_order_id = self.next_order_id.max(o.id + 1);
                self.orders.insert(o.id, TrackedOrder { order: o.clone(), state: OrderState::Pending });
            }
            Record::OrderSent { id, .. } => {
                if let Some(t) = self.orders.get_mut(id) {
                    t.state = OrderState::Sent;
                }
            }
            Record::OrderDone { id, .. } => {
                self.orders.remove(id);
                self.orders_done += 1;
            }
            Record::Live { source, seq: frame, record } => {
                self.apply_checked(seq, record);
                self.live_frames += 1;
                self.live_seq.insert(*source, *frame);
            }
        }
        self.seq = seq;
    }

    /// Terms by slot (an empty slot has none), as [`reference::scan`] takes them.
    pub fn terms_by_slot(&self) -> Vec<Vec<Coeff>> {
        self.accounts.iter().map(|a| a.as_ref().map(|a| a.terms.clone()).unwrap_or_default()).collect()
    }

    /// The reference bitmaps of this state.
    pub fn reference_bitmaps(&self) -> reference::Bitmaps {
        reference::scan(&self.terms_by_slot(), &self.prices)
    }

    /// Loads this state into an engine (which must be empty and of the same shape): every
    /// account, then the whole price vector.
    pub fn load_into(&self, engine: &mut dyn ScanEngine) -> Result<(), EngineError> {
        for (slot, a) in self.accounts.iter().enumerate() {
            if let Some(a) = a {
                engine.upsert(slot as u32, &a.terms)?;
            }
        }
        engine.loaded();
        engine.batch_tick(&self.prices)
    }

    /// A software engine holding this state.
    pub fn software_engine(&self) -> SoftwareEngine {
        let mut e = SoftwareEngine::new(self.slots(), self.assets());
        self.load_into(&mut e).expect("a checked state always loads");
        e
    }

    /// Orders journaled as pending: maybe sent, maybe not. Re-send them with the same id (the
    /// downstream recognises a duplicate by id) or report them.
    pub fn unsent_orders(&self) -> impl Iterator<Item = &OrderRecord> {
        self.orders.values().filter(|t| t.state == OrderState::Pending).map(|t| &t.order)
    }

    /// Orders the executor took and that are not finished: await them, never re-send.
    pub fn in_flight_orders(&self) -> impl Iterator<Item = &OrderRecord> {
        self.orders.values().filter(|t| t.state == OrderState::Sent).map(|t| &t.order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(asset: u16) -> Box<Record> {
        Box::new(Record::Tick { ts_ns: 1, asset, price: PriceEntry::default() })
    }

    #[test]
    fn live_frames_apply_their_change_and_keep_the_stream_position() {
        let mut s = DurableState::new(4, 2);
        s.apply(1, &Record::Live { source: 1, seq: 7, record: tick(1) }).unwrap();
        s.apply(2, &Record::Tick { ts_ns: 2, asset: 0, price: PriceEntry::default() }).unwrap();
        s.apply(3, &Record::Live { source: 2, seq: 3, record: tick(0) }).unwrap();
        assert_eq!((s.seq, s.live_frames), (3, 2));
        assert_eq!(s.live_seq, BTreeMap::from([(1, 7), (2, 3)]));
        assert_eq!(s.last_ts[1], 1);
        // A frame number not above the stream's last, a nested kind it cannot carry, or a
        // change that does not fit: refused, nothing changed.
        let before = s.clone();
        for bad in [
            Record::Live { source: 1, seq: 7, record: tick(0) },
            Record::Live {
                source: 1,
                seq: 8,
                record: Box::new(Record::Param { name: "x".into(), value: "1".into() }),
            },
            Record::Live {
                source: 1,
                seq: 8,
                record: Box::new(Record::Live { source: 1, seq: 9, record: tick(0) }),
            },
            Record::Live { source: 1, seq: 8, record: tick(5) },
        ] {
            assert!(s.apply(4, &bad).is_err(), "{bad:?}");
            assert_eq!(s, before);
        }
    }

    #[test]
    fn a_snapshot_without_the_live_fields_still_loads() {
        let mut v = serde_json::to_value(DurableState::new(2, 1)).unwrap();
        let m = v.as_object_mut().unwrap();
        m.remove("live_frames");
        m.remove("live_seq");
        let s: DurableState = serde_json::from_value(v).unwrap();
        assert_eq!(s, DurableState::new(2, 1));
    }

    #[test]
    fn accepts_what_the_software_engine_takes_and_refuses_more() {
        let c = |asset: u16, coeff: i32| Coeff { asset, coeff };
        let mut s = DurableState::new(2, 64);
        let legs = vec![c(0, 10), c(0, -12), c(3, 4)];
        s.apply(1, &Record::Upsert { account: 1, slot: 0, terms: legs.clone() }).unwrap();
        let wide: Vec<Coeff> = (0..64).map(|a| c(a, 1)).collect();
        s.apply(2, &Record::Upsert { account: 2, slot: 1, terms: wide.clone() }).unwrap();
        assert_eq!(s.terms_by_slot(), vec![legs, wide]);
        let before = s.clone();
        let too_many: Vec<Coeff> = (0..32).flat_map(|a| [c(a, 1), c(a, -1)]).chain([c(40, 1)]).collect();
        for bad in [too_many, vec![c(1, 5), c(1, 6)], vec![c(1, 0)]] {
            let rec = Record::Upsert { account: 1, slot: 0, terms: bad };
            assert!(matches!(s.apply(3, &rec), Err(ApplyError::Terms { .. })), "{rec:?}");
            assert_eq!(s, before);
        }
    }
}
