//! What the journal holds: one [`Record`] per change to the durable state.
//!
//! Records are serde values (JSON payload inside a checksummed frame, see [`frame`](super::frame)),
//! so a journal can be read with ordinary tools after the frame header is stripped, and a new
//! field can be added with `#[serde(default)]` without breaking old journals.

use liqscan_hdl::abi::{Coeff, PriceEntry};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// One durable change. Applied in sequence order, records rebuild the book, the prices, the
/// parameters and the orders (see [`DurableState::apply`](super::DurableState::apply)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// Account `account` now has `terms` in `slot` (inserted, or replacing its own terms).
    Upsert {
        /// The venue's stable account key.
        account: u64,
        /// The scan slot.
        slot: u32,
        /// Compiled terms (coefficients), as the engine takes them.
        terms: Vec<Coeff>,
    },
    /// Account `account` leaves `slot`.
    Remove {
        /// The venue's stable account key.
        account: u64,
        /// The slot it held.
        slot: u32,
    },
    /// A named parameter (venue setting, stress fraction, ...) takes a value.
    Param {
        /// Parameter name.
        name: String,
        /// New value, as text (exact decimals stay exact).
        value: String,
    },
    /// One asset's price entry was applied to the engine.
    Tick {
        /// Oracle timestamp, nanoseconds since the Unix epoch.
        ts_ns: i64,
        /// Asset index.
        asset: u16,
        /// The quantised entry.
        price: PriceEntry,
    },
    /// The whole price vector was applied (one entry per asset).
    BatchTick {
        /// Oracle timestamp, nanoseconds since the Unix epoch.
        ts_ns: i64,
        /// One entry per asset.
        prices: Vec<PriceEntry>,
    },
    /// An order is about to be handed to the executor (written, and made durable per the fsync
    /// policy, before the send).
    OrderPending(OrderRecord),
    /// The executor took the order (`submit` returned): it must not be sent again.
    OrderSent {
        /// Order id.
        id: u64,
        /// The attempt the executor took.
        attempt: u32,
    },
    /// The order is finished (filled, rejected for good, or given up); it leaves the state.
    OrderDone {
        /// Order id.
        id: u64,
        /// What became of it, free text for the operator (e.g. the outcome's JSON).
        outcome: String,
    },
    /// A frame taken from a live feed listener: its book change (an `Upsert`, `Remove` or
    /// `Tick`), and the stream and frame number it came with, so a restart knows which frames
    /// it holds (a sender's re-sends of them are dropped as duplicates) and which records are
    /// not the replayed file's.
    Live {
        /// Feed stream (one per listener).
        source: u8,
        /// The frame's sequence number in its stream.
        seq: u64,
        /// The change itself.
        record: Box<Record>,
    },
}

/// An order as the journal keeps it: the keys recovery needs, plus the dispatcher's own order
/// (any serde type, such as `dispatch::LiquidationOrder`) as JSON text, so amounts of any width
/// (i128 quanta) survive exactly and the journal does not depend on the order's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Order id, stable across retries.
    pub id: u64,
    /// The venue's stable account key.
    pub account: u64,
    /// The scan slot when the order was built.
    pub slot: u32,
    /// 1 for the first send, 2 for the first retry, ...
    pub attempt: u32,
    /// The breach episode of a derived id ([`OrderKey`](crate::dispatch::OrderKey)); 0 with
    /// `ordinal` 0 for an id taken from a counter (older journals, the drill).
    #[serde(default)]
    pub episode: u64,
    /// The order's ordinal in its episode (0: a counter id).
    #[serde(default)]
    pub ordinal: u32,
    /// The dispatcher's order, serialised as JSON.
    pub body: String,
}

impl OrderRecord {
    /// Wraps a dispatcher order.
    pub fn of<T: Serialize>(
        id: u64,
        account: u64,
        slot: u32,
        attempt: u32,
        order: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(OrderRecord {
            id,
            account,
            slot,
            attempt,
            episode: 0,
            ordinal: 0,
            body: serde_json::to_string(order)?,
        })
    }

    /// The same record for an id derived from (account, `episode`, `ordinal`).
    pub fn keyed(self, episode: u64, ordinal: u32) -> Self {
        OrderRecord { episode, ordinal, ..self }
    }

    /// The dispatcher order back.
    pub fn order<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.body)
    }
}

/// Where an order stands in the durable state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Journaled, maybe not sent: after a crash it is re-sent (same id) or reported.
    Pending,
    /// The executor took it: after a crash it is awaited, never re-sent.
    Sent,
}

/// Serialises a record's payload into `out` (cleared first).
pub fn encode_payload(rec: &Record, out: &mut Vec<u8>) {
    out.clear();
    // Writing into a Vec cannot fail, and every field serialises.
    serde_json::to_writer(out, rec).expect("record serialises");
}

/// Parses a record's payload.
pub fn decode_payload(bytes: &[u8]) -> Result<Record, serde_json::Error> {
    serde_json::from_slice(bytes)
}
