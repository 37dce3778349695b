//! Accounts (cross margin) and signed positions with entry value.
//!
//! A position is a signed size `s` (base lots; long > 0) and an entry value `e` (quote quanta
//! paid for it, signed like `s`). Its unrealised P&L at price `p` is `s p - e`. Every trade of
//! `d` lots at price `x` changes the account's cash `quote - e` by exactly `-d x`; closing part
//! of a position realises the pro-rata share of its P&L into `quote` (the rounding of that share
//! only moves value between `quote` and `e`, never creates any).

use serde::Serialize;

/// One market's position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Position {
    /// Signed size in base lots (long > 0).
    pub size: i128,
    /// Signed entry value, quote quanta (`size * average entry price`).
    pub entry_value: i128,
}

impl Position {
    /// Unrealised P&L at `price` (quote quanta per lot).
    pub fn unrealised(&self, price: i128) -> i128 {
        self.size * price - self.entry_value
    }
}

/// No position: what [`Positions`] gives for a market the account does not hold.
static FLAT: Position = Position { size: 0, entry_value: 0 };

/// An account's open positions, by market: a short list (most traders hold one to three of a
/// hundred markets), so an account's equity and margin cost its open positions, not the
/// venue's market count. `positions[k]` reads market `k` (flat if not held); closed positions
/// leave the list, which stays sorted by market.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Positions(Vec<(u32, Position)>);

impl Positions {
    /// (market, position) of every open position, in market order (as the dense layout was).
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Position)> + '_ {
        self.0.iter().map(|(k, p)| (*k as usize, p))
    }

    /// Number of open positions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if no position is open.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Index of market `k` in the list, inserted flat in market order if absent.
    fn slot(&mut self, k: usize) -> usize {
        match self.0.binary_search_by_key(&(k as u32), |&(m, _)| m) {
            Ok(n) => n,
            Err(n) => {
                self.0.insert(n, (k as u32, Position::default()));
                n
            }
        }
    }
}

impl std::ops::Index<usize> for Positions {
    type Output = Position;
    fn index(&self, k: usize) -> &Position {
        self.0.iter().find(|&&(m, _)| m as usize == k).map_or(&FLAT, |(_, p)| p)
    }
}

/// Who holds an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A trader: can be liquidated.
    Trader,
    /// The order book's liquidity providers, counterparty of every fill into the book.
    Book,
    /// The backstop liquidation vault.
    Vault,
}

/// One account: a quote balance shared by all its positions (cross margin) and its flows.
///
/// Identity (checked by [`super::ledger`]):
/// `quote = deposits + transfers + realised + funding - fees + fund_cover + adl_received - adl_paid`.
///
/// An isolated position is an account of its own, restricted to one market, whose margin was
/// moved from its owner's cross account: it is liquidated alone, and its loss never reaches the
/// cross account (as on Binance and Hyperliquid).
#[derive(Clone, Debug, Serialize)]
pub struct PerpAccount {
    /// Role.
    pub role: Role,
    /// Quote balance, quanta (may go negative: an underwater account).
    pub quote: i128,
    /// Open positions by market index.
    pub positions: Positions,
    /// Deposits, quote quanta.
    pub deposits: i128,
    /// Realised trading P&L.
    pub realised: i128,
    /// Net funding received (negative: paid).
    pub funding: i128,
    /// Fees paid (trading and liquidation).
    pub fees: i128,
    /// Shortfall the insurance fund paid this account.
    pub fund_cover: i128,
    /// Haircuts received from auto-deleveraged counterparties (as a bankrupt account).
    pub adl_received: i128,
    /// Haircuts paid when auto-deleveraged (as a counterparty).
    pub adl_paid: i128,
    /// Time of the last partial liquidation, seconds (cooldown).
    pub last_liquidation: Option<u64>,
    /// Margin moved in from other accounts (negative: out).
    pub transfers: i128,
    /// The one market an isolated-margin account may trade; None for cross margin.
    pub isolated: Option<usize>,
}

impl PerpAccount {
    /// An account with `deposit` quote quanta and no position.
    pub fn new(role: Role, deposit: i128) -> Self {
        PerpAccount {
            role,
            quote: deposit,
            positions: Positions::default(),
            deposits: deposit,
            realised: 0,
            funding: 0,
            fees: 0,
            fund_cover: 0,
            adl_received: 0,
            adl_paid: 0,
            last_liquidation: None,
            transfers: 0,
            isolated: None,
        }
    }

    /// Unrealised P&L at `marks`.
    pub fn unrealised(&self, marks: &[i128]) -> i128 {
        self.positions.iter().map(|(k, p)| p.unrealised(marks[k])).sum()
    }

    /// Equity at `marks`: quote plus unrealised P&L.
    pub fn equity(&self, marks: &[i128]) -> i128 {
        self.quote + self.unrealised(marks)
    }

    /// Total notional `sum |s| p` at `marks`.
    pub fn notional(&self, marks: &[i128]) -> i128 {
        self.positions.iter().map(|(k, p)| p.size.abs() * marks[k]).sum()
    }

    /// True if any position is open.
    pub fn has_position(&self) -> bool {
        !self.positions.is_empty()
    }

    /// Applies a fill of `d` lots (signed: buy > 0) at `price` in market `m`; returns the P&L
    /// realised. Cash `quote - entry_value` moves by exactly `-d * price`.
    pub fn fill(&mut self, m: usize, d: i128, price: i128) -> i128 {
        if d == 0 {
            return 0;
        }
        let n = self.positions.slot(m);
        let pos = &mut self.positions.0[n].1;
        let mut realised = 0;
        let mut open = d;
        if pos.size != 0 && pos.size.signum() != d.signum() {
            // Closing `close` lots (sign of d) of the existing position first.
            let close = d.signum() * d.abs().min(pos.size.abs());
            let e_closed =
                if close == -pos.size { pos.entry_value } else { pos.entry_value * -close / pos.size };
            realised = -close * price - e_closed;
            pos.entry_value -= e_closed;
            pos.size += close;
            open = d - close;
        }
        pos.entry_value += open * price;
        pos.size += open;
        if pos.size == 0 {
            // A whole close takes the whole entry value: nothing is left behind.
            debug_assert_eq!(pos.entry_value, 0);
            self.positions.0.remove(n);
        }
        self.quote += realised;
        self.realised += realised;
        realised
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_realises_pro_rata_and_flips() {
        let mut a = PerpAccount::new(Role::Trader, 1_000);
        a.fill(0, 2, 2_000);
        assert_eq!(a.positions[0], Position { size: 2, entry_value: 4_000 });
        assert_eq!(a.fill(0, -1, 2_100), 100);
        assert_eq!(a.positions[0], Position { size: 1, entry_value: 2_000 });
        // Sell 3 at 1 900: close 1 (realise -100), open a short of 2 at 1 900.
        assert_eq!(a.fill(0, -3, 1_900), -100);
        assert_eq!(a.positions[0], Position { size: -2, entry_value: -3_800 });
        assert_eq!(a.quote, 1_000);
        assert_eq!(a.equity(&[1_800]), 1_000 + 200);
        // Uneven closes keep cash exact: 4 lots, entry 13, close 1 at 4 (13/4 is not whole).
        let mut b = PerpAccount::new(Role::Trader, 0);
        b.fill(0, 3, 3);
        b.fill(0, 1, 4);
        let cash = b.quote - b.positions[0].entry_value;
        b.fill(0, -1, 4);
        assert_eq!(b.quote - b.positions[0].entry_value, cash + 4);
    }
}
