//! # Perpetual futures venue: positions, mark price, funding, tiered margin, liquidation
//!
//! A venue of perpetual markets with cross-margined accounts, as the large derivative venues
//! run them. Money is exact: quote balances and notionals are `i128` quote quanta
//! ([`QUANTA_PER_UNIT`] per quote unit, micro-dollars), sizes are `i128` base lots, prices are
//! integer quote quanta per lot, so `size * price` is exact.
//!
//! ```text
//!  oracle path ──> Market::tick: book heals, mark = oracle + EMA(book - oracle), premium sampled
//!              ──> funding (every interval): longs <-> shorts, dust to the fund
//!              ──> each trader with equity < maintenance (tiered):
//!                   equity above the backstop line: chunk into the book (cooldown, impact cap)
//!                   below it, or the book full:     fund pays the shortfall
//!                                                   ──> ADL at bankruptcy prices (fund empty)
//!                                                   ──> else the backstop vault takes over
//!  PerpVenue::check_conservation: every account's flows, the fund, sizes net zero, zero-sum
//! ```
//!
//! Accounts are cross-margined; an isolated position is an account of its own restricted to
//! one market, funded by a counted margin transfer ([`PerpVenue::open_isolated`]).
//! Holders are traders, the book (the liquidity providers every book fill trades with; their
//! P&L is reported, their balance may go negative: outside capital) and the backstop vault.
//! The account's health maps onto the one risk formula ([`risk`]).

pub mod account;
pub mod adl;
pub mod funding;
pub mod keeper;
pub mod ledger;
pub mod liquidation;
pub mod market;
pub mod report;
pub mod risk;
pub mod run;
pub mod scenario;
#[cfg(test)]
mod tests;
pub mod tiers;
pub mod watch;

pub use account::{PerpAccount, Position, Positions, Role};
pub use funding::FundingParams;
pub use ledger::{PerpConservationError, PerpLedger, ZeroSum};
pub use liquidation::{LiquidationConfig, PartialConfig};
pub use market::{Market, MarketParams};
pub use tiers::{MarginTiers, PPM, Tier, TierError};

/// Quote quanta per quote unit (micro-dollars): the depth model is given in quote units.
pub const QUANTA_PER_UNIT: i128 = 1_000_000;

/// Index of the book's account in [`PerpVenue::accounts`].
pub const BOOK: usize = 0;
/// Index of the backstop vault's account in [`PerpVenue::accounts`].
pub const VAULT: usize = 1;

/// Input the venue refuses; a refused call changes nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PerpError {
    /// A market's depth is not a positive finite number.
    #[error("market {market} ({symbol}): depth_usd_per_pct {depth} is not a positive finite number")]
    Depth {
        /// Market index.
        market: usize,
        /// Ticker.
        symbol: String,
        /// The depth given.
        depth: f64,
    },
    /// A price that is not positive.
    #[error("market {market} ({symbol}): price {price} is not positive")]
    Price {
        /// Market index.
        market: usize,
        /// Ticker.
        symbol: String,
        /// The price given.
        price: i128,
    },
    /// A funding interval of zero.
    #[error("market {market} ({symbol}): funding interval_secs is 0")]
    FundingInterval {
        /// Market index.
        market: usize,
        /// Ticker.
        symbol: String,
    },
    /// An isolated-margin account asked to trade another market.
    #[error("account {account} is isolated to market {isolated}, not market {market}")]
    IsolatedMarket {
        /// Account.
        account: usize,
        /// Its market.
        isolated: usize,
        /// The market asked for.
        market: usize,
    },
    /// A margin transfer the source cannot afford (it would fall under maintenance) or that is
    /// not positive.
    #[error("account {account}: cannot move {amount} of margin (equity {equity}, maintenance {maintenance})")]
    Margin {
        /// The source account.
        account: usize,
        /// The amount.
        amount: i128,
        /// Its equity.
        equity: i128,
        /// Its maintenance margin (rounded up).
        maintenance: i128,
    },
    /// Not one oracle price per market.
    #[error("{got} oracle prices for {expected} markets")]
    OracleCount {
        /// Markets.
        expected: usize,
        /// Prices given.
        got: usize,
    },
}

/// Something the venue did in a step.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PerpEvent {
    /// A liquidation order filled in the book.
    BookFill {
        /// Account.
        account: usize,
        /// Market.
        market: usize,
        /// Lots (signed, the account's side).
        size: i128,
        /// Fill price.
        price: i128,
        /// Liquidation fee to the fund.
        fee: i128,
    },
    /// The backstop vault took a position over.
    Backstop {
        /// Account.
        account: usize,
        /// Market.
        market: usize,
        /// Lots the vault received (signed).
        size: i128,
        /// Bankruptcy price.
        price: i128,
    },
    /// The insurance fund paid a shortfall.
    FundCover {
        /// Account.
        account: usize,
        /// Amount.
        amount: i128,
    },
    /// A counterparty auto-deleveraged.
    Adl {
        /// The bankrupt account.
        bankrupt: usize,
        /// The counterparty closed.
        counterparty: usize,
        /// Market.
        market: usize,
        /// Lots closed (the counterparty's side, signed).
        size: i128,
        /// Bankruptcy price.
        price: i128,
        /// Haircut against the mark, quote quanta.
        haircut: i128,
    },
    /// A shortfall nobody paid: stays as the account's negative balance.
    BadDebt {
        /// Account.
        account: usize,
        /// Amount.
        amount: i128,
    },
    /// Funding settled.
    Funding {
        /// Market.
        market: usize,
        /// Rate, ppm.
        rate_ppm: i128,
    },
}

/// The venue.
#[derive(Clone, Debug)]
pub struct PerpVenue {
    /// Markets.
    pub markets: Vec<Market>,
    /// Accounts: [`BOOK`], [`VAULT`], then traders.
    pub accounts: Vec<PerpAccount>,
    /// Insurance fund, quote quanta.
    pub fund: i128,
    /// Trading fees collected by the venue.
    pub fee_pool: i128,
    /// Liquidation rules.
    pub config: LiquidationConfig,
    /// Flows and counts.
    pub ledger: PerpLedger,
    /// Events of the last step.
    pub events: Vec<PerpEvent>,
    /// Seconds since the start.
    pub now: u64,
    /// Which accounts a step checks ([`watch`]).
    pub watch: watch::MarginWatch,
    /// Check every account every step instead (the reference the watch is tested against).
    pub check_every_account: bool,
    /// Per market, accounts that opened a position there (with repeats and closed ones; the
    /// ADL queue's candidates, compacted when it is built).
    pub holders: Vec<Vec<u32>>,
    /// Per market and side (long, short), the ADL queue ranked this step.
    pub adl_queues: Vec<[adl::AdlQueue; 2]>,
    /// With a keeper ([`LiquidationConfig::keeper`]): the accounts the last step's pass left in
    /// breach for it, in index order.
    pub awaiting: Vec<u32>,
}

impl PerpVenue {
    /// A venue with these markets (at their oracle prices), an insurance fund and a vault.
    pub fn new(
        markets: Vec<(MarketParams, i128)>,
        fund: i128,
        vault: i128,
        config: LiquidationConfig,
    ) -> Result<Self, PerpError> {
        for (market, (p, price)) in markets.iter().enumerate() {
            let symbol = || p.symbol.clone();
            let depth = p.depth.depth_usd_per_pct;
            if !(depth.is_finite() && depth > 0.0) {
                return Err(PerpError::Depth { market, symbol: symbol(), depth });
            }
            if *price <= 0 {
                return Err(PerpError::Price { market, symbol: symbol(), price: *price });
            }
            if p.funding.interval_secs == 0 {
                return Err(PerpError::FundingInterval { market, symbol: symbol() });
            }
        }
        let n = markets.len();
        let markets = markets.into_iter().map(|(p, oracle)| Market::new(p, oracle)).collect();
        let accounts = vec![PerpAccount::new(Role::Book, 0), PerpAccount::new(Role::Vault, vault)];
        Ok(PerpVenue {
            markets,
            accounts,
            fund,
            fee_pool: 0,
            config,
            ledger: PerpLedger { fund_initial: fund, ..Default::default() },
            events: Vec::new(),
            now: 0,
            watch: watch::MarginWatch::new(n),
            check_every_account: false,
            holders: vec![Vec::new(); n],
            adl_queues: vec![Default::default(); n],
            awaiting: Vec::new(),
        })
    }

    /// Opens a trader account with `deposit`; returns its index.
    pub fn open_account(&mut self, deposit: i128) -> usize {
        self.accounts.push(PerpAccount::new(Role::Trader, deposit));
        let i = self.accounts.len() - 1;
        self.watch.open(i);
        i
    }

    /// A fill of `d` lots at `price` in market `k` on account `i` (see [`PerpAccount::fill`]),
    /// noting a new holder and telling the watch; returns the P&L realised.
    pub fn fill(&mut self, i: usize, k: usize, d: i128, price: i128) -> i128 {
        let a = &mut self.accounts[i];
        let was = a.positions[k].size;
        let realised = a.fill(k, d, price);
        if was == 0 && a.positions[k].size != 0 {
            self.holders[k].push(i as u32);
        }
        self.watch.touch(i);
        realised
    }

    /// Mark prices.
    pub fn marks(&self) -> Vec<i128> {
        self.markets.iter().map(|m| m.mark).collect()
    }

    /// Maintenance margin of account `i`, scaled by 10^6 (sum over its positions' brackets).
    pub fn maintenance_scaled(&self, i: usize) -> i128 {
        let a = &self.accounts[i];
        a.positions
            .iter()
            .map(|(k, p)| {
                let m = &self.markets[k];
                m.params.tiers.maintenance_scaled(p.size.abs() * m.mark)
            })
            .sum()
    }

    /// Equity of account `i` at the marks (without allocating: the per-account check).
    pub fn equity(&self, i: usize) -> i128 {
        let a = &self.accounts[i];
        a.quote + a.positions.iter().map(|(k, p)| p.unrealised(self.markets[k].mark)).sum::<i128>()
    }

    /// The venue's own liquidation test: equity below maintenance margin.
    pub fn is_liquidatable(&self, i: usize) -> bool {
        self.equity(i) * PPM < self.maintenance_scaled(i)
    }

    /// A trade between accounts `buyer` and `seller` of `size` lots at `price` in market `m`,
    /// each paying `fee_ppm` of the notional to the venue's fee pool. Refused (nothing changed)
    /// if either is isolated to another market.
    pub fn trade(
        &mut self,
        buyer: usize,
        seller: usize,
        m: usize,
        size: i128,
        price: i128,
        fee_ppm: u32,
    ) -> Result<(), PerpError> {
        for account in [buyer, seller] {
            if let Some(isolated) = self.accounts[account].isolated
                && isolated != m
            {
                return Err(PerpError::IsolatedMarket { account, isolated, market: m });
            }
        }
        let fee = size.abs() * price * fee_ppm as i128 / PPM;
        for (i, d) in [(buyer, size), (seller, -size)] {
            self.fill(i, m, d, price);
            let a = &mut self.accounts[i];
            a.quote -= fee;
            a.fees += fee;
            self.fee_pool += fee;
        }
        Ok(())
    }

    /// Moves `amount` of margin from account `from` to account `to`; refused (nothing changed)
    /// if it is not positive or would leave `from` under its maintenance margin.
    pub fn transfer_margin(&mut self, from: usize, to: usize, amount: i128) -> Result<(), PerpError> {
        let equity = self.equity(from);
        let mm = self.maintenance_scaled(from);
        if amount <= 0 || (equity - amount) * PPM < mm {
            let maintenance = adl::div_ceil(mm, PPM);
            return Err(PerpError::Margin { account: from, amount, equity, maintenance });
        }
        self.accounts[from].quote -= amount;
        self.accounts[from].transfers -= amount;
        self.accounts[to].quote += amount;
        self.accounts[to].transfers += amount;
        self.watch.touch(from);
        self.watch.touch(to);
        Ok(())
    }

    /// Opens an isolated-margin account for market `m` funded with `amount` from `owner`'s
    /// (cross) account; returns its index.
    pub fn open_isolated(&mut self, owner: usize, m: usize, amount: i128) -> Result<usize, PerpError> {
        let i = self.open_account(0);
        self.accounts[i].isolated = Some(m);
        if let Err(e) = self.transfer_margin(owner, i, amount) {
            self.accounts.pop();
            return Err(e);
        }
        Ok(i)
    }

    /// One step of `dt` seconds to new oracle prices (one per market, positive): marks,
    /// funding, liquidations.
    pub fn step(&mut self, dt: u64, oracles: &[i128]) -> Result<(), PerpError> {
        if oracles.len() != self.markets.len() {
            return Err(PerpError::OracleCount { expected: self.markets.len(), got: oracles.len() });
        }
        if let Some(market) = oracles.iter().position(|&p| p <= 0) {
            let symbol = self.markets[market].params.symbol.clone();
            return Err(PerpError::Price { market, symbol, price: oracles[market] });
        }
        self.events.clear();
        self.awaiting.clear();
        self.now += dt;
        for (k, (m, &o)) in self.markets.iter_mut().zip(oracles).enumerate() {
            let old = m.mark;
            m.tick(o, dt as f64);
            self.watch.variation[k] += (m.mark - old).abs();
        }
        for k in 0..self.markets.len() {
            let m = &mut self.markets[k];
            if self.now < m.next_funding {
                continue;
            }
            let premium = if m.premium_samples > 0 { m.premium_sum_ppm / m.premium_samples } else { 0 };
            let rate = m.params.funding.rate_ppm(premium);
            (m.premium_sum_ppm, m.premium_samples) = (0, 0);
            while m.next_funding <= self.now {
                m.next_funding += m.params.funding.interval_secs.max(1);
            }
            let mark = m.mark;
            let dust = funding::settle(&mut self.accounts, k, mark, rate);
            self.fund += dust;
            self.ledger.funding_dust += dust;
            self.events.push(PerpEvent::Funding { market: k, rate_ppm: rate });
            self.watch.full = true; // funding moved balances: every account is checked
        }
        watch::pass(self);
        Ok(())
    }

    /// Checks every ledger identity and the zero-sum property.
    pub fn check_conservation(&self) -> Result<ZeroSum, PerpConservationError> {
        ledger::check(self)
    }
}
