//! The perpetual venue's ledger and its identities, zero-sum among them.
//!
//! ```text
//! every account:  quote = deposits + transfers + realised + funding - fees + fund_cover
//!                         + adl_received - adl_paid
//! transfers:      sum over accounts = 0 (margin moved between cross and isolated accounts)
//! the fund:       fund  = fund_initial + liquidation_fees + funding_dust - fund_paid  >= 0
//! every market:   sum of sizes = 0 (every long has a short: traders, the book, the vault)
//! zero-sum:       sum over accounts of (realised + unrealised + funding - fees + fund_cover)
//!                 + adl_received - adl_paid + (fund - fund_initial) + fee_pool = 0
//! ```
//!
//! The last is not implied by the others: it holds only if every trade moves both sides' cash
//! by exactly the same amount and funding pays out no more than it collects.

use serde::Serialize;

use super::PerpVenue;
use super::account::Role;

/// Flows and event counts beyond the accounts' own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PerpLedger {
    /// The fund at the start.
    pub fund_initial: i128,
    /// Liquidation fees paid into the fund.
    pub liquidation_fees: i128,
    /// Funding rounding paid into the fund.
    pub funding_dust: i128,
    /// Shortfalls the fund paid.
    pub fund_paid: i128,
    /// Shortfalls nobody paid (left as negative balances).
    pub unpaid_bad_debt: i128,
    /// Liquidation orders filled in the book.
    pub book_fills: u64,
    /// Positions the backstop vault took over.
    pub backstop_takeovers: u64,
    /// Auto-deleveraging closes.
    pub adl_events: u64,
}

/// The zero-sum decomposition, quote quanta; its terms sum to zero.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ZeroSum {
    /// Traders' realised P&L (after ADL haircuts are taken out, see `adl_haircuts`).
    pub traders_realised: i128,
    /// Traders' unrealised P&L at the marks.
    pub traders_unrealised: i128,
    /// Funding received by everyone (traders, book, vault): minus the dust.
    pub funding: i128,
    /// Fees paid by everyone, negative.
    pub fees: i128,
    /// Shortfalls paid by the fund, received by bankrupt accounts.
    pub fund_cover: i128,
    /// Haircuts received minus paid (zero by construction; kept as a check).
    pub adl_haircuts: i128,
    /// The fund's change.
    pub fund: i128,
    /// Trading fees kept by the venue.
    pub fee_pool: i128,
    /// The backstop vault's P&L (realised + unrealised).
    pub vault_pnl: i128,
    /// The book's (liquidity providers') P&L.
    pub book_pnl: i128,
}

impl ZeroSum {
    /// Sum of the terms: zero on a conserved venue.
    pub fn total(&self) -> i128 {
        self.traders_realised
            + self.traders_unrealised
            + self.funding
            + self.fees
            + self.fund_cover
            + self.adl_haircuts
            + self.fund
            + self.fee_pool
            + self.vault_pnl
            + self.book_pnl
    }
}

/// An identity that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PerpConservationError {
    /// An account's quote balance does not match its flows.
    #[error("account {account}: quote {quote}, flows say {flows}")]
    Account {
        /// Account index.
        account: usize,
        /// Its balance.
        quote: i128,
        /// By its flows.
        flows: i128,
    },
    /// The fund does not match its flows, or went negative.
    #[error("insurance fund is {fund}, flows say {flows}")]
    Fund {
        /// The fund.
        fund: i128,
        /// By the flows.
        flows: i128,
    },
    /// Margin transfers do not net to zero.
    #[error("margin transfers sum to {net}")]
    Transfers {
        /// Net of all transfers.
        net: i128,
    },
    /// A market's sizes do not net to zero.
    #[error("market {market}: sizes sum to {net}")]
    OpenInterest {
        /// Market index.
        market: usize,
        /// Net size.
        net: i128,
    },
    /// The venue is not zero-sum.
    #[error("not zero-sum: the terms sum to {total}: {terms:?}")]
    NotZeroSum {
        /// The sum.
        total: i128,
        /// The terms.
        terms: Box<ZeroSum>,
    },
}

/// Checks every identity; returns the zero-sum decomposition.
pub fn check(v: &PerpVenue) -> Result<ZeroSum, PerpConservationError> {
    let marks = v.marks();
    let mut z = ZeroSum::default();
    for (i, a) in v.accounts.iter().enumerate() {
        let flows =
            a.deposits + a.transfers + a.realised + a.funding - a.fees + a.fund_cover + a.adl_received
                - a.adl_paid;
        if flows != a.quote {
            return Err(PerpConservationError::Account { account: i, quote: a.quote, flows });
        }
        let pnl = a.realised + a.unrealised(&marks);
        match a.role {
            Role::Trader => {
                z.traders_realised += a.realised;
                z.traders_unrealised += a.unrealised(&marks);
            }
            Role::Vault => z.vault_pnl += pnl,
            Role::Book => z.book_pnl += pnl,
        }
        z.funding += a.funding;
        z.fees -= a.fees;
        z.fund_cover += a.fund_cover;
        z.adl_haircuts += a.adl_received - a.adl_paid;
    }
    let l = &v.ledger;
    let flows = l.fund_initial + l.liquidation_fees + l.funding_dust - l.fund_paid;
    if flows != v.fund || v.fund < 0 {
        return Err(PerpConservationError::Fund { fund: v.fund, flows });
    }
    let net: i128 = v.accounts.iter().map(|a| a.transfers).sum();
    if net != 0 {
        return Err(PerpConservationError::Transfers { net });
    }
    let mut nets = vec![0i128; v.markets.len()];
    for a in &v.accounts {
        for (k, p) in a.positions.iter() {
            nets[k] += p.size;
        }
    }
    if let Some((market, &net)) = nets.iter().enumerate().find(|(_, n)| **n != 0) {
        return Err(PerpConservationError::OpenInterest { market, net });
    }
    z.fund = v.fund - l.fund_initial;
    z.fee_pool = v.fee_pool;
    let total = z.total();
    if total != 0 {
        return Err(PerpConservationError::NotZeroSum { total, terms: Box::new(z) });
    }
    Ok(z)
}
