//! Liquidation as derivative venues run it, each mechanism selectable.
//!
//! An account whose equity is under its maintenance margin is liquidated:
//!
//! 1. **Into the book**, while its equity is above the backstop line: the largest position is
//!    closed by a market order, whole, or (with [`PartialConfig`]) a fixed fraction per step
//!    followed by a cooldown (Hyperliquid: positions over 100 k USDC are sent 20% at a time,
//!    then 30 s of cooldown). The order walks the [`crate::venue::DepthModel`]: it fills at the
//!    average price of the walk and dents the book, which the mark follows. The book absorbs at
//!    most `max_book_move_ppm` of price move per order; the rest waits for the next step (or
//!    goes to the backstop). A liquidation fee (a share of the notional, at most the equity left)
//!    goes to the insurance fund (Binance's clearance fee).
//! 2. **Bankruptcy** (equity <= 0), the backstop line crossed (Hyperliquid: equity under 2/3 of
//!    maintenance margin), or a book that absorbs nothing:
//!    - the insurance fund pays the shortfall, as far as it holds;
//!    - what it cannot pay is recovered by auto-deleveraging ([`super::adl`]) when enabled;
//!    - the backstop vault then takes the positions over at the bankruptcy prices (the prices
//!      that leave the account at zero equity: the vault gains the margin left, or bears what no
//!      one paid), its P&L reported; with `backstop_bounded` only while its own equity covers
//!      its maintenance margin after the takeover (its capital is finite), else the book;
//!    - with neither, the positions go into the book whole, and what the fund cannot pay stays
//!      on the account as unpaid bad debt.

use serde::{Deserialize, Serialize};

use super::adl;
use super::tiers::PPM;
use super::{BOOK, PerpEvent, PerpVenue, VAULT};

/// Partial liquidation: a fixed fraction per step, then a cooldown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialConfig {
    /// Share of the position sent per order, ppm.
    pub chunk_ppm: u32,
    /// Seconds before the same account is liquidated again.
    pub cooldown_secs: u64,
    /// Positions at or under this notional (quote quanta) go whole.
    pub min_notional: i128,
    /// After the first chunk and its cooldown, the next order is for the whole position
    /// (Hyperliquid); false: chunk after chunk.
    pub then_whole: bool,
}

impl PartialConfig {
    /// Hyperliquid: 20% of positions over 100 k USDC, 30 s cooldown, then the whole position.
    pub fn hyperliquid() -> Self {
        PartialConfig {
            chunk_ppm: 200_000,
            cooldown_secs: 30,
            min_notional: 100_000 * super::QUANTA_PER_UNIT,
            then_whole: true,
        }
    }
}

/// The venue's liquidation rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiquidationConfig {
    /// Partial liquidation (None: whole positions).
    pub partial: Option<PartialConfig>,
    /// Largest price move one liquidation order may cause in the book, ppm.
    pub max_book_move_ppm: u32,
    /// The backstop vault takes over accounts under the backstop line.
    pub backstop: bool,
    /// The backstop line, ppm of the maintenance margin (Hyperliquid: 2/3).
    pub backstop_below_ppm: u32,
    /// The vault's capital bounds it: it takes an account over only if afterwards its own
    /// equity still covers its maintenance margin (false: it takes everything, its P&L may go
    /// without limit below zero).
    #[serde(default)]
    pub backstop_bounded: bool,
    /// The insurance fund pays shortfalls.
    pub insurance: bool,
    /// Auto-deleveraging recovers what the fund cannot pay.
    pub adl: bool,
    /// Liquidation fee to the fund, ppm of the notional closed in the book.
    pub fee_ppm: u32,
    /// Book liquidations come from an outside keeper's reduce-only orders
    /// ([`PerpVenue::execute`](super::PerpVenue::execute)); the venue itself resolves only
    /// bankrupt accounts and those under the backstop line, and lists the others it finds in
    /// breach ([`PerpVenue::awaiting`](super::PerpVenue::awaiting)).
    #[serde(default)]
    pub keeper: bool,
    /// Liquidation orders are limits at the account's bankruptcy price (Binance's rule): the
    /// book fills only what it gives at that price or better, so a fill never leaves the
    /// account short; what it cannot fill waits for the backstop, or for the account's
    /// bankruptcy, which goes to the fund and ADL with the positions still open. False: market
    /// orders, and an account a fill leaves short, having no position left, is settled by the
    /// fund or left unpaid.
    #[serde(default)]
    pub bankruptcy_limit: bool,
}

impl Default for LiquidationConfig {
    /// Hyperliquid-shaped: partial chunks, backstop at 2/3 of maintenance, no clearance fee
    /// (Binance charges one: set `fee_ppm`); fund and ADL on.
    fn default() -> Self {
        LiquidationConfig {
            partial: Some(PartialConfig::hyperliquid()),
            max_book_move_ppm: 20_000,
            backstop: true,
            backstop_below_ppm: 666_667,
            backstop_bounded: false,
            insurance: true,
            adl: true,
            fee_ppm: 0,
            keeper: false,
            bankruptcy_limit: false,
        }
    }
}

/// Liquidates trader `i` if it is under maintenance: one order or one bankruptcy resolution.
pub fn liquidate(v: &mut PerpVenue, i: usize) {
    if !v.accounts[i].has_position() {
        return;
    }
    let equity = v.equity(i);
    let mm = v.maintenance_scaled(i);
    if equity * PPM >= mm {
        v.accounts[i].last_liquidation = None; // healthy again: a later breach starts afresh
        return;
    }
    let under_line = v.config.backstop && equity * PPM * PPM < mm * v.config.backstop_below_ppm as i128;
    if equity <= 0 || under_line {
        resolve_bankruptcy(v, i);
        return;
    }
    if v.config.keeper {
        v.awaiting.push(i as u32);
        return;
    }
    if let Some(p) = &v.config.partial
        && v.accounts[i].last_liquidation.is_some_and(|t| v.now < t + p.cooldown_secs)
    {
        return;
    }
    // A book that takes nothing sends the account to the backstop; a fill that left it
    // underwater (impact, fee) resolves its bankruptcy at once.
    let filled = book_order(v, i);
    if (!filled && v.config.backstop) || v.equity(i) < 0 {
        resolve_bankruptcy(v, i);
    }
}

/// Sends one liquidation order for the largest position into the book; false if the book took
/// nothing.
fn book_order(v: &mut PerpVenue, i: usize) -> bool {
    let a = &v.accounts[i];
    let Some((k, s)) =
        a.positions.iter().map(|(k, p)| (k, p.size)).max_by_key(|&(k, s)| s.abs() * v.markets[k].mark)
    else {
        return false;
    };
    let qty = match &v.config.partial {
        Some(p)
            if s.abs() * v.markets[k].mark > p.min_notional
                && !(p.then_whole && a.last_liquidation.is_some()) =>
        {
            adl::div_ceil(s.abs() * p.chunk_ppm as i128, PPM).max(1)
        }
        _ => s.abs(),
    };
    let (filled, price) = if v.config.bankruptcy_limit {
        // The price that leaves the account at zero equity, its equity shared by notional.
        let marks = v.marks();
        let equity = v.equity(i);
        let limit = adl::bankruptcy_prices(&v.accounts[i], &marks, -equity)
            .into_iter()
            .find(|&(m, _)| m == k)
            .map_or(v.markets[k].mark, |(_, pb)| pb);
        v.markets[k].take_limit(-s.signum() * qty, limit, v.config.max_book_move_ppm)
    } else {
        v.markets[k].take(-s.signum() * qty, v.config.max_book_move_ppm)
    };
    if filled == 0 {
        return false;
    }
    book_fill(v, i, k, filled, price);
    true
}

/// Account `i` trades `filled` lots at `price` with the book in market `k` as a liquidation:
/// the fee (a share of the notional, at most the equity left) to the fund, the cooldown
/// started, the fill recorded. Returns the fee.
pub fn book_fill(v: &mut PerpVenue, i: usize, k: usize, filled: i128, price: i128) -> i128 {
    v.fill(i, k, filled, price);
    v.fill(BOOK, k, -filled, price);
    let left = v.equity(i).max(0);
    let fee = (filled.abs() * price * v.config.fee_ppm as i128 / PPM).min(left);
    let a = &mut v.accounts[i];
    a.quote -= fee;
    a.fees += fee;
    a.last_liquidation = Some(v.now);
    v.fund += fee;
    v.ledger.liquidation_fees += fee;
    v.ledger.book_fills += 1;
    v.events.push(PerpEvent::BookFill { account: i, market: k, size: filled, price, fee });
    fee
}

/// Fund, then ADL, then the backstop vault (or the book); records what nobody paid.
pub fn resolve_bankruptcy(v: &mut PerpVenue, i: usize) {
    let mut deficit = -v.equity(i);
    if deficit > 0 && v.config.insurance {
        deficit -= fund_pays(v, i, deficit);
    }
    if v.accounts[i].has_position() {
        if deficit > 0 && v.config.adl {
            adl::deleverage(v, i, deficit);
        } else if v.config.backstop && vault_can_take(v, i, deficit) {
            backstop(v, i, deficit);
        } else {
            while v.accounts[i].has_position() {
                if !book_order_uncapped(v, i) {
                    break;
                }
            }
        }
    }
    // Whatever is still owed: the fund once more, then it stays as bad debt.
    let owed = -v.accounts[i].quote;
    if !v.accounts[i].has_position() && owed > 0 {
        let paid = if v.config.insurance { fund_pays(v, i, owed) } else { 0 };
        if owed > paid {
            v.ledger.unpaid_bad_debt += owed - paid;
            v.events.push(PerpEvent::BadDebt { account: i, amount: owed - paid });
        }
    }
}

/// The fund pays up to `amount` to account `i`; returns what it paid.
fn fund_pays(v: &mut PerpVenue, i: usize, amount: i128) -> i128 {
    let pay = amount.min(v.fund).max(0);
    if pay > 0 {
        v.fund -= pay;
        v.ledger.fund_paid += pay;
        let a = &mut v.accounts[i];
        a.quote += pay;
        a.fund_cover += pay;
        v.events.push(PerpEvent::FundCover { account: i, amount: pay });
    }
    pay
}

/// Whether the vault may take account `i` over for `deficit`: always when unbounded, else only
/// if its equity afterwards covers its maintenance margin (tried on a copy of the vault).
fn vault_can_take(v: &PerpVenue, i: usize, deficit: i128) -> bool {
    if !v.config.backstop_bounded {
        return true;
    }
    let marks = v.marks();
    let mut vault = v.accounts[VAULT].clone();
    for (k, pb) in adl::bankruptcy_prices(&v.accounts[i], &marks, deficit) {
        vault.fill(k, v.accounts[i].positions[k].size, pb);
    }
    let mm: i128 = vault
        .positions
        .iter()
        .map(|(k, p)| v.markets[k].params.tiers.maintenance_scaled(p.size.abs() * marks[k]))
        .sum();
    vault.equity(&marks) * PPM >= mm
}

/// The vault takes every position of `i` over at the bankruptcy prices for `deficit`.
fn backstop(v: &mut PerpVenue, i: usize, deficit: i128) {
    let marks = v.marks();
    for (k, pb) in adl::bankruptcy_prices(&v.accounts[i], &marks, deficit) {
        let s = v.accounts[i].positions[k].size;
        v.fill(i, k, -s, pb);
        v.fill(VAULT, k, s, pb);
        v.ledger.backstop_takeovers += 1;
        v.events.push(PerpEvent::Backstop { account: i, market: k, size: s, price: pb });
    }
}

/// A whole-position order into the book with no impact cap (the book's 50% limit still holds).
fn book_order_uncapped(v: &mut PerpVenue, i: usize) -> bool {
    let saved = v.config.max_book_move_ppm;
    v.config.max_book_move_ppm = PPM as u32;
    let saved_partial = v.config.partial.take();
    let done = book_order(v, i);
    v.config.max_book_move_ppm = saved;
    v.config.partial = saved_partial;
    done
}
