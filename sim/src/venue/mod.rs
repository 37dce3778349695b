//! # The venue: the book, the liquidation mechanisms, the insurance fund, the ledger
//!
//! Money is exact: balances are `i128` asset quanta, prices the datapath's integer prices (value
//! quanta per asset quantum), the insurance fund `i128` quanta of the quote asset. Every change
//! is a counted flow in the [`Ledger`], so "bad debt is conserved" is an identity the venue
//! checks ([`Venue::check_conservation`]): every unit of debt is still owed, or was repaid,
//! absorbed by the fund, or socialised.
//!
//! ```text
//!   order (dispatch) ──> Direct: repay debt, seize collateral * (1 + bonus) ─┐
//!                   └──> Kick:   whole account ──> Dutch auction / batch queue ─┤
//!                                                                             v
//!              collateral sold into the market (impact) <── keepers / bidders
//!              account with debt and no collateral ──> fund absorbs ──> (empty) socialised:
//!                                                     pro-rata haircut of quote holders (ADL)
//! ```
//!
//! Conventions the venue enforces: debt is owed in the quote asset only (a lending market
//! against a stablecoin); collateral is any other asset held positive. A positive quote balance is
//! a lender's deposit, and lenders are who a socialised loss is charged to.

pub mod auction;
pub mod impact;
pub mod ledger;

use liqscan_hdl::abi::{Coeff, PriceEntry};
use liqscan_host::dispatch::sizing::{AccountView, BPS, PPM, Position};
use liqscan_host::dispatch::{Completion, Leg, LiquidationOrder, OrderKind, Outcome, RejectReason};
use serde::{Deserialize, Serialize};

pub use auction::{Auction, BatchConfig, DutchConfig};
pub use impact::DepthModel;
pub use ledger::{AssetFlows, ConservationError, Ledger};

/// Which liquidation mechanism the venue runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MechanismKind {
    /// Direct liquidation with a close factor and a fixed bonus.
    Direct,
    /// Dutch auction (decaying price, resets, keeper incentive).
    Dutch,
    /// Batch auction: one clearing price per asset per window.
    Batch,
}

impl std::fmt::Display for MechanismKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MechanismKind::Direct => "direct",
            MechanismKind::Dutch => "dutch",
            MechanismKind::Batch => "batch",
        })
    }
}

/// The venue's liquidation rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiquidationRules {
    /// The mechanism.
    pub mechanism: MechanismKind,
    /// Direct: largest share of the debt one liquidation repays, basis points.
    pub close_factor_bps: u32,
    /// Direct: below this health factor the whole debt may be repaid, basis points.
    pub full_close_hf_bps: u32,
    /// Direct: debt at or under this value (quote units) may be repaid whole; collateral left
    /// under it after a liquidation is swept to the fund.
    pub dust_usd: f64,
    /// Direct: liquidation bonus, basis points of the repaid value.
    pub bonus_bps: u32,
    /// Direct: share of the bonus that goes to the insurance fund, basis points.
    pub fund_share_bps: u32,
    /// Auctions: penalty added to the debt, basis points; proceeds beyond the debt go to the fund.
    pub penalty_bps: u32,
    /// Dutch auction settings.
    pub dutch: DutchConfig,
    /// Batch auction settings.
    pub batch: BatchConfig,
}

impl Default for LiquidationRules {
    fn default() -> Self {
        LiquidationRules {
            mechanism: MechanismKind::Direct,
            close_factor_bps: 5_000,
            full_close_hf_bps: 9_500,
            dust_usd: 10.0,
            bonus_bps: 500,
            fund_share_bps: 1_000,
            penalty_bps: 1_300,
            dutch: DutchConfig::default(),
            batch: BatchConfig::default(),
        }
    }
}

/// One asset as the venue sees it.
#[derive(Clone, Debug)]
pub struct VenueAsset {
    /// Ticker.
    pub symbol: String,
    /// Weights per tier (index = tier), parts per million: (asset weight, liability weight).
    pub weights: Vec<(u32, u32)>,
    /// Liquidity of its market.
    pub depth: DepthModel,
}

/// One account.
#[derive(Clone, Debug, Default)]
pub struct Account {
    /// Stable key (slots are reused; keys are not).
    pub key: u64,
    /// Tier index.
    pub tier: u16,
    /// Signed balances in asset quanta, by asset index.
    pub bal: Vec<i128>,
    /// False for a free slot.
    pub open: bool,
    /// Ever breached (at the venue's prices, when an order or auction found it so).
    pub liquidated: u32,
    /// Ended up in bad debt.
    pub bad_debt: bool,
    /// Passed whole to an auction.
    pub kicked: bool,
    /// A liquidation repaid all its debt or passed it to an auction (not a partial one).
    pub closed_out: bool,
}

/// Counters of liquidation activity, in value quanta where they are amounts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LiquidationStats {
    /// Direct liquidations executed (legs count once per order).
    pub direct: u64,
    /// Accounts passed to an auction.
    pub kicks: u64,
    /// Dutch auction takes.
    pub takes: u64,
    /// Dutch auction resets.
    pub resets: u64,
    /// Batch auction clearings (one per asset per window with lots).
    pub clearings: u64,
    /// Debt repaid by liquidations, value quanta.
    pub repaid_value: i128,
    /// Collateral seized or sold by liquidations, value quanta at the oracle.
    pub seized_value: i128,
    /// Accounts that went to bad debt.
    pub bad_debt_accounts: u64,
    /// Orders refused.
    pub rejected: u64,
    /// Orders refused because the oracle was stale.
    pub stale_rejects: u64,
    /// Accounts only ever partially liquidated, never in bad debt, that their owner later
    /// closed (repaid in full): saved by partial liquidation, and gone from the book.
    pub saved_then_closed: u64,
}

/// A sale of collateral into the market, for the market's impact model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sale {
    /// Asset sold.
    pub asset: u16,
    /// Quanta sold.
    pub quanta: i128,
}

/// The venue.
pub struct Venue {
    /// Assets, in price-table order.
    pub assets: Vec<VenueAsset>,
    /// Quote asset index (debt and fund currency).
    pub quote: u16,
    /// Accounts by slot.
    pub accounts: Vec<Account>,
    /// Oracle prices the venue uses (set by the simulation from the oracle).
    pub prices: Vec<PriceEntry>,
    /// Value quanta per whole quote unit (10^-value_exp), for reports.
    pub value_per_usd: f64,
    /// Rules.
    pub rules: LiquidationRules,
    /// The insurance fund, quote quanta.
    pub fund: i128,
    /// Flows.
    pub ledger: Ledger,
    /// Counters.
    pub stats: LiquidationStats,
    /// Live auctions (Dutch) or queued lots (batch).
    pub auctions: Vec<Auction>,
    /// When true the venue refuses liquidations (stale oracle).
    pub halted: bool,
    free: Vec<u32>,
    next_key: u64,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    sales: Vec<Sale>,
}

impl Venue {
    /// An empty venue.
    pub fn new(
        assets: Vec<VenueAsset>,
        quote: u16,
        rules: LiquidationRules,
        fund: i128,
        value_per_usd: f64,
    ) -> Self {
        let n = assets.len();
        Venue {
            assets,
            quote,
            accounts: Vec::new(),
            prices: vec![PriceEntry::default(); n],
            value_per_usd,
            rules,
            fund,
            ledger: Ledger::new(n, fund),
            stats: LiquidationStats::default(),
            auctions: Vec::new(),
            halted: false,
            free: Vec::new(),
            next_key: 1,
            dirty: Vec::new(),
            is_dirty: Vec::new(),
            sales: Vec::new(),
        }
    }

    fn touch(&mut self, slot: u32) {
        let s = slot as usize;
        if !self.is_dirty[s] {
            self.is_dirty[s] = true;
            self.dirty.push(slot);
        }
    }

    /// Marks a slot for re-sending to the scan engine (its weights changed).
    pub fn mark_dirty(&mut self, slot: u32) {
        self.touch(slot);
    }

    /// Slots whose terms changed since the last call (for the scan engine), in change order.
    pub fn take_dirty(&mut self, out: &mut Vec<u32>) {
        for &s in &self.dirty {
            self.is_dirty[s as usize] = false;
        }
        out.append(&mut self.dirty);
    }

    /// Collateral sold into the market since the last call.
    pub fn take_sales(&mut self, out: &mut Vec<Sale>) {
        out.append(&mut self.sales);
    }

    /// Opens an account with these balances (debt only in the quote asset); counted as
    /// deposits and borrows. Returns its slot.
    pub fn open(&mut self, tier: u16, bal: Vec<i128>, initial: bool) -> u32 {
        assert_eq!(bal.len(), self.assets.len());
        for (a, &b) in bal.iter().enumerate() {
            assert!(b >= 0 || a == self.quote as usize, "debt only in the quote asset");
            let f = &mut self.ledger.assets[a];
            match (initial, b > 0) {
                (true, true) => f.initial_pos += b,
                (true, false) => f.initial_neg -= b,
                (false, true) => f.deposited += b,
                (false, false) => f.borrowed -= b,
            }
        }
        let key = self.next_key;
        self.next_key += 1;
        let acct = Account { key, tier, bal, open: true, ..Default::default() };
        let slot = match self.free.pop() {
            Some(s) => {
                self.accounts[s as usize] = acct;
                s
            }
            None => {
                self.accounts.push(acct);
                self.is_dirty.push(false);
                (self.accounts.len() - 1) as u32
            }
        };
        self.touch(slot);
        slot
    }

    /// Closes an account: repays its debt and withdraws everything. Refused (false) for a free
    /// slot, an account not healthy at the venue's prices, or one whose collateral is still at
    /// auction (the auction returns what is left of its lot to the account, and a reused slot
    /// would have lost it).
    pub fn close(&mut self, slot: u32) -> bool {
        if !self.accounts.get(slot as usize).is_some_and(|a| a.open && !a.kicked) || self.health(slot) < 0 {
            return false;
        }
        let acct = &self.accounts[slot as usize];
        if acct.liquidated > 0 && !acct.closed_out && !acct.bad_debt {
            self.stats.saved_then_closed += 1;
        }
        let bal = std::mem::take(&mut self.accounts[slot as usize].bal);
        for (a, &b) in bal.iter().enumerate() {
            if b > 0 {
                self.ledger.assets[a].withdrawn += b;
            } else {
                self.ledger.assets[a].user_repaid -= b;
            }
        }
        let acct = &mut self.accounts[slot as usize];
        acct.bal = vec![0; bal.len()];
        acct.open = false;
        self.free.push(slot);
        self.touch(slot);
        true
    }

    /// Adds collateral (`amount > 0`) of a non-quote asset, or quote to a lender's deposit.
    pub fn deposit(&mut self, slot: u32, asset: u16, amount: i128) {
        let a = &mut self.accounts[slot as usize];
        if !a.open || amount <= 0 || (asset == self.quote && a.bal[asset as usize] < 0) {
            return;
        }
        a.bal[asset as usize] += amount;
        self.ledger.assets[asset as usize].deposited += amount;
        self.touch(slot);
    }

    /// Borrows `amount` more quote if the account stays at or above `min_hf_bps`; true if done.
    pub fn borrow(&mut self, slot: u32, amount: i128, min_hf_bps: i128) -> bool {
        let q = self.quote as usize;
        let a = &self.accounts[slot as usize];
        if !a.open || amount <= 0 || a.bal[q] > 0 {
            return false;
        }
        let mut trial = a.clone();
        trial.bal[q] -= amount;
        let (wc, wd) = self.weighted(&trial);
        if wd == 0 || wc * BPS < min_hf_bps * wd {
            return false;
        }
        self.accounts[slot as usize].bal[q] -= amount;
        self.ledger.assets[q].borrowed += amount;
        self.touch(slot);
        true
    }

    /// The account's terms for the scan engine: `c = floor(b * w)` per asset, `w` by sign and tier.
    pub fn terms(&self, slot: u32, out: &mut Vec<Coeff>) {
        out.clear();
        let a = &self.accounts[slot as usize];
        if !a.open {
            return;
        }
        for (i, &b) in a.bal.iter().enumerate() {
            if b == 0 {
                continue;
            }
            let (w, l) = self.assets[i].weights[a.tier as usize];
            let c = (b * if b < 0 { l } else { w } as i128).div_euclid(PPM);
            if c != 0 {
                out.push(Coeff {
                    asset: i as u16,
                    coeff: c.clamp(-(i32::MAX as i128), i32::MAX as i128) as i32,
                });
            }
        }
    }

    /// Exact health at the venue's prices, as the scan computes it.
    pub fn health(&self, slot: u32) -> i128 {
        let mut t = Vec::new();
        self.terms(slot, &mut t);
        liqscan_host::reference::health(&t, &self.prices).0
    }

    /// Weighted collateral and weighted debt (value quanta times ppm) at the venue's prices.
    fn weighted(&self, a: &Account) -> (i128, i128) {
        let (mut wc, mut wd) = (0, 0);
        for (i, &b) in a.bal.iter().enumerate() {
            let (w, l) = self.assets[i].weights[a.tier as usize];
            let p = self.prices[i].spot;
            if b > 0 {
                wc += b * p.asset as i128 * w as i128;
            } else if b < 0 {
                wd += -b * p.liability as i128 * l as i128;
            }
        }
        (wc, wd)
    }

    /// Health factor (weighted collateral over weighted debt) at the venue's prices;
    /// `None` without debt. Reports only.
    pub fn health_factor(&self, slot: u32) -> Option<f64> {
        let a = &self.accounts[slot as usize];
        if !a.open {
            return None;
        }
        let (wc, wd) = self.weighted(a);
        if wd == 0 { None } else { Some(wc as f64 / wd as f64) }
    }

    fn value(&self, asset: usize, quanta: i128) -> i128 {
        let p = self.prices[asset].spot;
        quanta * if quanta < 0 { p.liability } else { p.asset } as i128
    }

    fn quote_price(&self) -> i128 {
        (self.prices[self.quote as usize].spot.liability as i128).max(1)
    }

    /// Quote quanta of the fund's share of seized collateral, sold at the oracle (floor).
    fn credit_fund(&mut self, asset: usize, quanta: i128) {
        if quanta <= 0 {
            return;
        }
        self.ledger.assets[asset].seized_fund += quanta;
        let q = self.value(asset, quanta) / self.quote_price();
        self.fund += q;
        self.ledger.fund_income += q;
    }

    /// Executes an order that reached the venue; the answer for the dispatcher.
    pub fn execute(&mut self, order: &LiquidationOrder, now_s: f64) -> Completion {
        let answer = |outcome| Completion { id: order.id, attempt: order.attempt, outcome };
        let slot = order.slot;
        let ok = self.accounts.get(slot as usize).is_some_and(|a| a.open && a.key == order.account);
        if !ok {
            self.stats.rejected += 1;
            return answer(Outcome::Rejected(RejectReason::UnknownAccount));
        }
        if self.halted {
            self.stats.rejected += 1;
            self.stats.stale_rejects += 1;
            return answer(Outcome::Rejected(RejectReason::Stale));
        }
        if self.accounts[slot as usize].kicked {
            self.stats.rejected += 1;
            return answer(Outcome::Rejected(RejectReason::InProgress));
        }
        if self.health(slot) >= 0 {
            self.stats.rejected += 1;
            return answer(Outcome::Rejected(RejectReason::Healthy));
        }
        let outcome = match (&order.kind, self.rules.mechanism) {
            (OrderKind::Direct { legs, .. }, MechanismKind::Direct) => self.direct(slot, legs),
            (OrderKind::Kick, MechanismKind::Dutch | MechanismKind::Batch) => self.kick(slot, now_s),
            _ => Outcome::Rejected(RejectReason::Invalid(format!(
                "this venue runs {} liquidations",
                self.rules.mechanism
            ))),
        };
        if matches!(outcome, Outcome::Rejected(_)) {
            self.stats.rejected += 1;
        } else {
            self.accounts[slot as usize].liquidated += 1;
        }
        answer(outcome)
    }

    fn direct(&mut self, slot: u32, legs: &[Leg]) -> Outcome {
        let q = self.quote as usize;
        let s = slot as usize;
        let (wc, wd) = self.weighted(&self.accounts[s]);
        let debt0 = -self.accounts[s].bal[q].min(0);
        let debt_value = self.value(q, -debt0).abs();
        let dust = (self.rules.dust_usd * self.value_per_usd) as i128;
        let full = wc * BPS < self.rules.full_close_hf_bps as i128 * wd || debt_value <= dust;
        let mut allowance = if full { debt0 } else { debt0 * self.rules.close_factor_bps as i128 / BPS };
        let b = self.rules.bonus_bps as i128;
        let share = self.rules.fund_share_bps as i128;
        let (mut repaid_v, mut seized_v) = (0i128, 0i128);
        let p_d = self.prices[q].spot.liability as i128;
        for leg in legs {
            let (d, c) = (leg.debt_asset as usize, leg.collateral_asset as usize);
            if d != q || c == q || c >= self.assets.len() {
                return Outcome::Rejected(RejectReason::Invalid(
                    "legs repay quote debt against collateral".into(),
                ));
            }
            let held = self.accounts[s].bal[c];
            let mut x = leg.repay.min(allowance).min(-self.accounts[s].bal[q]).max(0);
            let p_c = self.prices[c].spot.asset as i128;
            if x == 0 || held <= 0 || p_c == 0 {
                continue;
            }
            // Seize value x * p_d * (1 + b), in collateral quanta, rounded down.
            let mut seize = x * p_d * (BPS + b) / (BPS * p_c);
            if seize >= held {
                // Not enough collateral: take it all, repay what it pays for.
                seize = held;
                x = (held * p_c * BPS / ((BPS + b) * p_d)).min(x);
            }
            if x == 0 {
                continue;
            }
            // The fund's cut of the bonus, in collateral quanta.
            let bonus_q = seize - (x * p_d / p_c).min(seize);
            let fund_q = bonus_q * share / BPS;
            let acct = &mut self.accounts[s];
            acct.bal[q] += x;
            acct.bal[c] -= seize;
            allowance -= x;
            let f = &mut self.ledger.assets[q];
            f.liq_repaid += x;
            self.ledger.assets[c].seized_keeper += seize - fund_q;
            self.credit_fund(c, fund_q);
            self.sales.push(Sale { asset: c as u16, quanta: seize - fund_q });
            repaid_v += x * p_d;
            seized_v += self.value(c, seize);
        }
        if repaid_v == 0 {
            return Outcome::Rejected(RejectReason::Invalid(
                "nothing to repay within the close factor".into(),
            ));
        }
        self.stats.direct += 1;
        self.stats.repaid_value += repaid_v;
        self.stats.seized_value += seized_v;
        self.sweep_dust(slot);
        self.resolve_bad_debt(slot);
        if self.accounts[s].bal[q] >= 0 {
            self.accounts[s].closed_out = true;
        }
        self.touch(slot);
        Outcome::Filled { repaid_value: repaid_v, seized_value: seized_v }
    }

    /// Collateral worth at most the dust line, left on an account that still owes, goes to the
    /// fund (sold at the oracle): nobody would liquidate it, and it would keep the debt alive.
    fn sweep_dust(&mut self, slot: u32) {
        let q = self.quote as usize;
        let s = slot as usize;
        if self.accounts[s].bal[q] >= 0 {
            return;
        }
        let dust = (self.rules.dust_usd * self.value_per_usd) as i128;
        let coll: i128 = (0..self.assets.len())
            .filter(|&a| a != q)
            .map(|a| self.value(a, self.accounts[s].bal[a].max(0)))
            .sum();
        if coll > dust {
            return;
        }
        for a in 0..self.assets.len() {
            let held = self.accounts[s].bal[a];
            if a != q && held > 0 {
                self.accounts[s].bal[a] = 0;
                self.credit_fund(a, held);
            }
        }
    }

    /// An account that owes quote and holds no collateral: the fund absorbs the debt; what the
    /// fund cannot cover is socialised.
    fn resolve_bad_debt(&mut self, slot: u32) {
        let q = self.quote as usize;
        let s = slot as usize;
        let debt = -self.accounts[s].bal[q];
        if debt <= 0 || (0..self.assets.len()).any(|a| a != q && self.accounts[s].bal[a] > 0) {
            return;
        }
        self.accounts[s].bal[q] = 0;
        self.accounts[s].bad_debt = true;
        self.stats.bad_debt_accounts += 1;
        self.write_off(debt);
        self.touch(slot);
    }

    /// Debt (quote quanta) that no collateral will repay: the fund absorbs what it can, the rest is
    /// socialised.
    pub(crate) fn write_off(&mut self, debt: i128) {
        let q = self.quote as usize;
        let absorbed = debt.min(self.fund.max(0));
        self.fund -= absorbed;
        self.ledger.assets[q].absorbed += absorbed;
        self.ledger.fund_paid += absorbed;
        let rest = debt - absorbed;
        if rest > 0 {
            // Socialised at once in the books, charged to lenders by `settle_socialised` (once
            // per step: one pass over the accounts however many write-offs the step had).
            self.ledger.assets[q].socialised += rest;
            self.ledger.pending_socialised += rest;
        }
    }

    /// Charges the debt socialised since the last call to the lenders (auto-deleveraging).
    pub fn settle_socialised(&mut self) {
        let amount = std::mem::take(&mut self.ledger.pending_socialised);
        if amount > 0 {
            self.socialise(amount);
        }
    }

    /// Auto-deleveraging: a pro-rata haircut of every lender's quote deposit (largest-remainder
    /// rounding, so the haircuts sum exactly); what the deposits cannot cover is a loss of the
    /// lending pool itself, counted apart.
    fn socialise(&mut self, amount: i128) {
        let q = self.quote as usize;
        let holders: Vec<(usize, i128)> = self
            .accounts
            .iter()
            .enumerate()
            .filter(|(_, a)| a.open && a.bal[q] > 0)
            .map(|(i, a)| (i, a.bal[q]))
            .collect();
        let total: i128 = holders.iter().map(|h| h.1).sum();
        let take = amount.min(total);
        let f = &mut self.ledger.assets[q];
        f.lender_loss += amount - take;
        if take == 0 {
            return;
        }
        // floor shares, then one more quantum to the largest remainders.
        let mut cuts: Vec<(usize, i128, i128)> =
            holders.iter().map(|&(i, b)| (i, b * take / total, b * take % total)).collect();
        let mut left = take - cuts.iter().map(|c| c.1).sum::<i128>();
        cuts.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        for c in cuts.iter_mut() {
            if left == 0 {
                break;
            }
            c.1 += 1;
            left -= 1;
        }
        for (i, cut, _) in cuts {
            if cut > 0 {
                self.accounts[i].bal[q] -= cut;
                self.ledger.assets[q].adl_haircut += cut;
                self.touch(i as u32);
            }
        }
    }

    /// Checks the ledger's identities against the book; the error names the first that fails.
    pub fn check_conservation(&self) -> Result<(), ConservationError> {
        let n = self.assets.len();
        let mut pos = vec![0i128; n];
        let mut neg = vec![0i128; n];
        for a in self.accounts.iter() {
            for (i, &b) in a.bal.iter().enumerate() {
                if b > 0 {
                    pos[i] += b;
                } else {
                    neg[i] -= b;
                }
            }
        }
        for au in &self.auctions {
            pos[au.lot_asset as usize] += au.lot;
            neg[self.quote as usize] += au.debt;
        }
        self.ledger.check(&pos, &neg, self.fund, self.quote as usize)
    }

    /// Debt still owed by accounts holding no collateral (should be zero: such debt is written
    /// off at once), quote quanta.
    pub fn unresolved_bad_debt(&self) -> i128 {
        let q = self.quote as usize;
        self.accounts
            .iter()
            .filter(|a| a.open && a.bal[q] < 0 && a.bal.iter().enumerate().all(|(i, &b)| i == q || b <= 0))
            .map(|a| -a.bal[q])
            .sum()
    }

    /// The dispatcher's view of an account.
    pub fn view(&self, slot: u32) -> Option<AccountView<'_>> {
        let a = self.accounts.get(slot as usize)?;
        if !a.open {
            return None;
        }
        let positions: Vec<Position> = a
            .bal
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != 0)
            .map(|(i, &amount)| {
                let (w, l) = self.assets[i].weights[a.tier as usize];
                Position { asset: i as u16, amount, asset_weight_ppm: w, liability_weight_ppm: l }
            })
            .collect();
        Some(AccountView { account: a.key, slot, positions: positions.into() })
    }
}

impl liqscan_host::dispatch::AccountSource for Venue {
    fn view(&self, slot: u32) -> Option<AccountView<'_>> {
        Venue::view(self, slot)
    }
}

#[cfg(test)]
mod tests;
