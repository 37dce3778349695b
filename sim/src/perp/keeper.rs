//! The keeper on the perpetual venue: the venue as the dispatcher's account source and as the
//! executor of its reduce-only orders.
//!
//! ```text
//!  PerpVenue::step ── pass: bankrupt / under the backstop line -> fund, ADL, vault
//!                          in breach otherwise -> awaiting ──> ScanBatch ──> Dispatcher
//!  Dispatcher ── view (AccountSource) + marks ──> size_reduce ──> ReduceOnly order
//!  order ──> PerpVenue::execute: each leg into the book at its limit or better ──> Completion
//! ```
//!
//! Assets as the keeper sees them: 0 is the quote balance, `k + 1` is market `k`. An account's
//! slot and key are its index. The view's maintenance rate of a position is the chord of the
//! venue's brackets, `MM(n) / n` rounded up to a ppm: the brackets are convex in notional, so
//! the chord lies above them below the current notional, and a reduction sized on it restores
//! the venue's own requirement (docs/SIMULATOR.md, "The keeper on perpetuals"). The view's
//! health is the venue's (`equity - MM`) less under a millionth of each position's notional,
//! never more.

use std::collections::VecDeque;

use liqscan_hdl::abi::{PriceEntry, QuotedPrice};
use liqscan_host::dispatch::sizing::{AccountView, BPS, Position};
use liqscan_host::dispatch::{
    AccountSource, Completion, DispatchConfig, Dispatcher, Executor, LiquidationOrder, Mechanism, OrderKind,
    Outcome, ReducePolicy, RejectReason, ScanBatch, SubmitError,
};

use super::liquidation::{LiquidationConfig, book_fill, resolve_bankruptcy};
use super::tiers::PPM;
use super::{PerpVenue, Role};

/// The keeper's asset index of the quote balance.
pub const QUOTE_ASSET: u16 = 0;

/// A mark that does not fit the keeper's 32-bit price table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "market {market} ({symbol}): mark {mark} quanta per lot does not fit the keeper's 32-bit prices (use a smaller lot)"
)]
pub struct PriceRange {
    /// Market index.
    pub market: usize,
    /// Ticker.
    pub symbol: String,
    /// The mark.
    pub mark: i128,
}

/// The keeper's price table: the quote at 1, each market at its mark (quote quanta per lot).
pub fn keeper_prices(v: &PerpVenue, out: &mut Vec<PriceEntry>) -> Result<(), PriceRange> {
    out.clear();
    let one = QuotedPrice { asset: 1, liability: 1 };
    out.push(PriceEntry { spot: one, stressed: one });
    for (market, m) in v.markets.iter().enumerate() {
        let p = u32::try_from(m.mark).map_err(|_| PriceRange {
            market,
            symbol: m.params.symbol.clone(),
            mark: m.mark,
        })?;
        let q = QuotedPrice { asset: p, liability: p };
        out.push(PriceEntry { spot: q, stressed: q });
    }
    Ok(())
}

/// The venue's rules as the keeper's reduce-only sizing applies them: orders capped at the
/// venue's partial fraction (positions at or under its minimum go whole), limits `slippage_bps`
/// from the mark, aiming at `target_margin_bps` of the requirement.
pub fn reduce_policy(c: &LiquidationConfig, target_margin_bps: u32, slippage_bps: u32) -> ReducePolicy {
    let (max_chunk_ppm, dust_notional) = match &c.partial {
        Some(p) => (p.chunk_ppm, p.min_notional),
        None => (PPM as u32, 0),
    };
    ReducePolicy {
        quote_asset: QUOTE_ASSET,
        target_margin_bps,
        slippage_bps,
        max_chunk_ppm,
        full_close_margin_bps: 0,
        dust_notional,
        fee_ppm: c.fee_ppm,
    }
}

impl PerpVenue {
    /// The keeper's view of account `i`: its cash and, per position, the size with the weights
    /// `1 -+ m` of the chord rate `m`.
    pub fn keeper_view(&self, i: usize) -> Option<AccountView<'_>> {
        let a = self.accounts.get(i)?;
        if a.role != Role::Trader {
            return None;
        }
        let mut cash = a.quote;
        let mut positions = Vec::with_capacity(a.positions.len() + 1);
        for (k, p) in a.positions.iter() {
            let m = &self.markets[k];
            cash -= p.entry_value;
            let n = p.size.abs() * m.mark;
            let mm = m.params.tiers.maintenance_scaled(n);
            let rate = if n > 0 { ((mm + n - 1) / n).clamp(0, PPM) } else { 0 } as u32;
            positions.push(Position {
                asset: k as u16 + 1,
                amount: p.size,
                asset_weight_ppm: PPM as u32 - rate,
                liability_weight_ppm: PPM as u32 + rate,
            });
        }
        positions.insert(
            0,
            Position {
                asset: QUOTE_ASSET,
                amount: cash,
                asset_weight_ppm: PPM as u32,
                liability_weight_ppm: PPM as u32,
            },
        );
        Some(AccountView { account: i as u64, slot: i as u32, positions: positions.into() })
    }

    /// Executes a keeper's order: each reduce-only leg goes into its market's book at its limit
    /// or better (clamped to the position: never increased or flipped), with the venue's
    /// liquidation fee; an account left underwater is resolved as the venue resolves
    /// bankruptcies. The answer for the dispatcher: `filled` with the notional closed and the
    /// fees, `healthy` if the account meets its requirement, `busy` if the book filled nothing
    /// within the limits.
    pub fn execute(&mut self, order: &LiquidationOrder) -> Completion {
        let answer = |outcome| Completion { id: order.id, attempt: order.attempt, outcome };
        let i = order.slot as usize;
        let known = self.accounts.get(i).is_some_and(|a| a.role == Role::Trader) && order.account == i as u64;
        if !known {
            return answer(Outcome::Rejected(RejectReason::UnknownAccount));
        }
        let OrderKind::ReduceOnly { legs, .. } = &order.kind else {
            return answer(Outcome::Rejected(RejectReason::Invalid(
                "this venue takes reduce_only orders".into(),
            )));
        };
        if let Some(l) =
            legs.iter().find(|l| l.market == QUOTE_ASSET || l.market as usize > self.markets.len())
        {
            return answer(Outcome::Rejected(RejectReason::Invalid(format!("no market {}", l.market))));
        }
        if !self.is_liquidatable(i) {
            return answer(Outcome::Rejected(RejectReason::Healthy));
        }
        let (mut notional, mut fees) = (0i128, 0i128);
        for l in legs {
            let k = l.market as usize - 1;
            let s = self.accounts[i].positions[k].size;
            if s == 0 || l.size == 0 || l.size.signum() == s.signum() {
                continue; // reduce-only: nothing of this position to reduce
            }
            let d = l.size.signum() * l.size.abs().min(s.abs());
            let (filled, price) = self.markets[k].take_limit(d, l.limit_price, self.config.max_book_move_ppm);
            if filled == 0 {
                continue;
            }
            fees += book_fill(self, i, k, filled, price);
            notional += filled.abs() * price;
        }
        if notional == 0 {
            return answer(Outcome::Rejected(RejectReason::Busy));
        }
        if self.equity(i) < 0 {
            resolve_bankruptcy(self, i);
        }
        answer(Outcome::Filled { repaid_value: notional, seized_value: fees })
    }
}

/// Orders on their way from the keeper to the venue (the executor the dispatcher sees).
#[derive(Default)]
struct Transit {
    /// (landing time ns, order), in landing order.
    pending: VecDeque<(u64, LiquidationOrder)>,
    done: Vec<Completion>,
    now_ns: u64,
    latency_ns: u64,
}

impl Executor for Transit {
    fn name(&self) -> &str {
        "simulated perpetual venue"
    }

    fn submit(&mut self, order: &LiquidationOrder) -> Result<(), SubmitError> {
        // One latency for all: landing order is sending order.
        self.pending.push_back((self.now_ns + self.latency_ns, order.clone()));
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.done);
    }
}

/// The keeper beside a perpetual run: the host's dispatcher, its orders in transit and the
/// breach set it was last told.
pub struct Keeper {
    dispatcher: Dispatcher,
    transit: Transit,
    breached: Vec<u32>,
    prices: Vec<PriceEntry>,
    batch: ScanBatch,
}

impl Keeper {
    /// A keeper for a venue with rules `c`: reduce-only orders aiming at `target_margin_bps`,
    /// limits `slippage_bps` from the mark, `max_in_flight` pending, landing `latency_ns` after
    /// they are sent.
    pub fn new(
        c: &LiquidationConfig,
        target_margin_bps: u32,
        slippage_bps: u32,
        max_in_flight: usize,
        latency_ns: u64,
    ) -> Self {
        let cfg = DispatchConfig {
            mechanism: Mechanism::ReduceOnly,
            reduce: reduce_policy(c, target_margin_bps, slippage_bps),
            max_in_flight,
            ..Default::default()
        };
        Keeper {
            dispatcher: Dispatcher::new(cfg),
            transit: Transit { latency_ns, ..Default::default() },
            breached: Vec::new(),
            prices: Vec::new(),
            batch: ScanBatch::default(),
        }
    }

    /// The dispatcher (its counters and latency).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// After a venue step: the orders that have landed are executed, then the dispatcher hears
    /// which accounts breached or cleared in the step's pass and sends what its rules allow.
    pub fn after_step(&mut self, v: &mut PerpVenue) -> Result<(), PriceRange> {
        let now = v.now.saturating_mul(1_000_000_000);
        self.transit.now_ns = now;
        while self.transit.pending.front().is_some_and(|(at, _)| *at <= now) {
            let (_, order) = self.transit.pending.pop_front().expect("checked");
            let c = v.execute(&order);
            self.transit.done.push(c);
        }
        keeper_prices(v, &mut self.prices)?;
        // `awaiting` and `breached` are both in index order.
        let b = &mut self.batch;
        b.seq = v.now;
        b.breached.clear();
        b.cleared.clear();
        b.breached.extend(v.awaiting.iter().filter(|s| self.breached.binary_search(s).is_err()));
        b.cleared.extend(self.breached.iter().filter(|s| v.awaiting.binary_search(s).is_err()));
        self.breached.clone_from(&v.awaiting);
        if !b.breached.is_empty() || !b.cleared.is_empty() {
            self.dispatcher.on_scan(now, b, &self.prices, &*v, &mut self.transit);
        }
        self.dispatcher.poll(now, &self.prices, &*v, &mut self.transit);
        Ok(())
    }
}

/// Margin ratio as basis points for the keeper (1.05 -> 10 500).
pub fn margin_bps(ratio: f64) -> u32 {
    (ratio * BPS as f64).round() as u32
}

impl AccountSource for PerpVenue {
    fn view(&self, slot: u32) -> Option<AccountView<'_>> {
        self.keeper_view(slot as usize)
    }
}

#[cfg(test)]
mod tests;
