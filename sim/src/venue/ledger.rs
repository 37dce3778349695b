//! The venue's ledger: every flow of every asset, in exact quanta, and the identities they obey.

use serde::Serialize;

/// Flows of one asset, in its quanta. Positive balances are collateral (or a lender's deposit),
/// negative balances are debt.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AssetFlows {
    /// Positive balances of the initial population.
    pub initial_pos: i128,
    /// Debt of the initial population.
    pub initial_neg: i128,
    /// Deposits since (new accounts included).
    pub deposited: i128,
    /// Withdrawals (closed accounts).
    pub withdrawn: i128,
    /// Borrows since (new accounts included).
    pub borrowed: i128,
    /// Debt repaid by its owners (closed accounts).
    pub user_repaid: i128,
    /// Debt repaid by liquidations (keepers, auction bidders).
    pub liq_repaid: i128,
    /// Debt absorbed by the insurance fund.
    pub absorbed: i128,
    /// Debt socialised (`adl_haircut + lender_loss` for the quote asset).
    pub socialised: i128,
    /// Lenders' deposits cut by auto-deleveraging.
    pub adl_haircut: i128,
    /// Socialised debt no deposit was left to cover: a loss of the pool itself.
    pub lender_loss: i128,
    /// Collateral seized by keepers.
    pub seized_keeper: i128,
    /// Collateral taken by the insurance fund (its share of the bonus, swept dust).
    pub seized_fund: i128,
    /// Collateral sold to auction bidders.
    pub sold_in_auction: i128,
}

/// All flows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Ledger {
    /// By asset index.
    pub assets: Vec<AssetFlows>,
    /// The fund's starting balance, quote quanta.
    pub fund_initial: i128,
    /// Fund income (bonus share, auction penalties, swept dust), quote quanta.
    pub fund_income: i128,
    /// Debt the fund paid off, quote quanta.
    pub fund_paid: i128,
    /// Keeper incentives the fund paid (auction kicks and resets), quote quanta.
    pub incentives: i128,
    /// Socialised quote debt not yet charged to lenders (charged once per step).
    pub pending_socialised: i128,
}

/// A ledger identity that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConservationError {
    /// Collateral in the book does not match the flows.
    #[error("asset {asset}: positive balances {book} in the book, {flows} by the ledger")]
    Collateral {
        /// Asset index.
        asset: usize,
        /// Sum in the book (and auctions).
        book: i128,
        /// Sum by the flows.
        flows: i128,
    },
    /// Debt in the book does not match the flows.
    #[error("asset {asset}: debt {book} in the book, {flows} by the ledger")]
    Debt {
        /// Asset index.
        asset: usize,
        /// Sum in the book (and auctions).
        book: i128,
        /// Sum by the flows.
        flows: i128,
    },
    /// Socialised debt is not the haircuts plus the pool's loss.
    #[error("asset {asset}: socialised {socialised} != haircuts {haircut} + pool loss {loss}")]
    Socialised {
        /// Asset index.
        asset: usize,
        /// Socialised.
        socialised: i128,
        /// Haircuts.
        haircut: i128,
        /// Pool loss.
        loss: i128,
    },
    /// The fund does not match its flows, or went negative.
    #[error("insurance fund is {fund}, flows say {flows}")]
    Fund {
        /// The fund.
        fund: i128,
        /// By the flows.
        flows: i128,
    },
}

impl Ledger {
    /// A ledger for `assets` assets and a starting fund.
    pub fn new(assets: usize, fund: i128) -> Self {
        Ledger { assets: vec![AssetFlows::default(); assets], fund_initial: fund, ..Default::default() }
    }

    /// Checks, per asset, the book's positive and negative sums against the flows, and the fund.
    ///
    /// ```text
    /// positive = initial_pos + deposited - withdrawn - seized_keeper - seized_fund
    ///            - sold_in_auction - adl_haircut
    /// debt     = initial_neg + borrowed - user_repaid - liq_repaid - absorbed - socialised
    /// fund     = fund_initial + fund_income - fund_paid - incentives >= 0
    /// socialised = adl_haircut + lender_loss (+ pending_socialised for the quote asset)
    /// ```
    pub fn check(
        &self,
        pos: &[i128],
        neg: &[i128],
        fund: i128,
        quote: usize,
    ) -> Result<(), ConservationError> {
        for (asset, f) in self.assets.iter().enumerate() {
            let flows = f.initial_pos + f.deposited
                - f.withdrawn
                - f.seized_keeper
                - f.seized_fund
                - f.sold_in_auction
                - f.adl_haircut;
            if flows != pos[asset] {
                return Err(ConservationError::Collateral { asset, book: pos[asset], flows });
            }
            let flows = f.initial_neg + f.borrowed - f.user_repaid - f.liq_repaid - f.absorbed - f.socialised;
            if flows != neg[asset] {
                return Err(ConservationError::Debt { asset, book: neg[asset], flows });
            }
            let pending = if asset == quote { self.pending_socialised } else { 0 };
            if f.socialised != f.adl_haircut + f.lender_loss + pending {
                return Err(ConservationError::Socialised {
                    asset,
                    socialised: f.socialised,
                    haircut: f.adl_haircut,
                    loss: f.lender_loss,
                });
            }
        }
        let flows = self.fund_initial + self.fund_income - self.fund_paid - self.incentives;
        if flows != fund || fund < 0 {
            return Err(ConservationError::Fund { fund, flows });
        }
        Ok(())
    }

    /// Debt that ended as bad debt so far: absorbed plus socialised, quote quanta of `asset`.
    pub fn bad_debt(&self, asset: usize) -> i128 {
        self.assets[asset].absorbed + self.assets[asset].socialised
    }
}
