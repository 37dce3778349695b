//! Liquidation orders and their outcomes: the one form every executor takes.
//!
//! Enums use serde's external tagging (`{"direct": {...}}`, `"kick"`, `{"filled": {...}}`), which
//! carries 128-bit amounts through JSON without loss.

use serde::{Deserialize, Serialize};

/// Identifies an order across retries and restarts: a retry re-sends the same id with a higher
/// `attempt`, so a downstream that saw the first attempt can recognise the duplicate. Derived
/// from the account, the breach episode and the order's ordinal in it
/// ([`OrderKey`](super::order_id::OrderKey)), so a restarted keeper builds the same id for the
/// same liquidation and never reuses one for another.
pub type OrderId = u64;

/// One repayment of debt against one collateral: repay `repay` quanta of `debt_asset` and
/// seize `debt value * (1 + bonus)` of `collateral_asset` (the venue computes the seizure).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    /// Asset index of the debt repaid.
    pub debt_asset: u16,
    /// Debt repaid, in quanta of `debt_asset`.
    pub repay: i128,
    /// Asset index of the collateral seized.
    pub collateral_asset: u16,
}

/// One reduce-only trade of a perpetual liquidation: `size` lots in `market`, signed as the
/// order's side (a long is reduced by selling: `size < 0`), filled at `limit_price` or better
/// (value quanta per lot); the venue fills no more than the position, never flips it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reduce {
    /// Asset index of the perpetual market.
    pub market: u16,
    /// Lots to trade, signed (buy > 0), opposite to the position.
    pub size: i128,
    /// Worst price accepted: the lowest for a sell, the highest for a buy.
    pub limit_price: i128,
}

/// What the order asks the venue to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// Direct liquidation (lending markets): repay part of the debt, seize collateral plus bonus.
    Direct {
        /// The legs, executed in order.
        legs: Vec<Leg>,
        /// True when the close factor did not apply (health below the full-close line or dust).
        close_all: bool,
    },
    /// Start an auction of the whole account (Dutch or batch, per the venue).
    Kick,
    /// Reduce-only orders into the book (perpetual venues): each leg reduces one position.
    ReduceOnly {
        /// The legs, executed in order.
        legs: Vec<Reduce>,
        /// True when every position is closed whole.
        close_all: bool,
    },
}

/// A liquidation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiquidationOrder {
    /// Order id, stable across retries.
    pub id: OrderId,
    /// The venue's stable account key (slots may be reused; keys are not).
    pub account: u64,
    /// The scan slot the account occupied when the order was built.
    pub slot: u32,
    /// 1 for the first send, 2 for the first retry, ...
    pub attempt: u32,
    /// The breach episode: feed sequence number of the message that made the account breach.
    #[serde(default)]
    pub episode: u64,
    /// The order's place among the orders of this episode (1, 2, ...).
    #[serde(default)]
    pub ordinal: u32,
    /// What to do.
    pub kind: OrderKind,
    /// Debt value at stake, in value quanta (the priority key).
    pub value_at_risk: i128,
    /// Caller's clock when the scan first saw the breach, in nanoseconds (latency is counted
    /// from here).
    pub created_ns: u64,
    /// True when the order was built ahead of the breach, from the at-risk list.
    #[serde(default)]
    pub prebuilt: bool,
}

/// Why an executor or venue refused an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The account is not liquidatable at the venue's price (no retry; it left the backlog).
    Healthy,
    /// The venue does not know the account (no retry).
    UnknownAccount,
    /// The venue will not trade this asset now (asset back-off).
    AssetUnavailable(u16),
    /// The account is already being liquidated (in an auction).
    InProgress,
    /// The executor is overloaded (account back-off, retry).
    Busy,
    /// The venue's oracle is stale; it halts liquidations (retry after back-off).
    Stale,
    /// The order was malformed for this venue (account back-off).
    Invalid(String),
}

/// What became of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Executed: debt repaid and collateral seized, in value quanta at the venue's prices (for
    /// a reduce-only order: the notional closed, and the liquidation fee charged).
    Filled {
        /// Value of debt repaid.
        repaid_value: i128,
        /// Value of collateral seized.
        seized_value: i128,
    },
    /// Handed over with no confirmation to come (a file or stdout sink).
    Sent,
    /// Refused.
    Rejected(RejectReason),
    /// The connection carrying the order dropped before an answer; it may or may not have run.
    /// The dispatcher retries with the same id.
    Lost,
}

/// An executor's report on one order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// The order.
    pub id: OrderId,
    /// The attempt this answers.
    pub attempt: u32,
    /// What happened.
    pub outcome: Outcome,
}
