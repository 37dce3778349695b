//! The dispatcher: backlog of breached accounts, in-flight set, time-outs, retries, back-off.
//!
//! Rules (each has a test below):
//! - A breached slot enters the backlog and stays there until a scan reports it cleared, the
//!   venue answers that it is healthy or unknown, or sizing finds nothing to liquidate.
//! - At most one order per account is in flight. A new order for the account is built only after
//!   the last one completed, failed or was given up.
//! - Orders go out by value at risk, largest first, while fewer than `max_in_flight` are pending.
//! - An order not answered within `timeout_ns` is re-sent with the same id and `attempt + 1`,
//!   up to `max_attempts` sends; then it is given up and the account backs off.
//! - A failure (refusal, busy executor, give-up) backs the account off for
//!   `backoff_base_ns * 2^(failures - 1)`, capped at `backoff_cap_ns`. A success resets the count.
//! - A venue refusing an asset ([`RejectReason::AssetUnavailable`]) backs off every order that
//!   touches the asset for `asset_backoff_ns`.
//! - After a fill the account waits `settle_ns` before another order, so the fill reaches the
//!   book (and the scan) before the account is sized again.
//! - At-risk slots get an order pre-built at the stressed prices; if the slot then breaches while
//!   it is cached, that order is sent at once (flagged `prebuilt`); the venue clamps it to its rules.
//!   At most `PREBUILD_PER_SCAN` a scan, and `max_in_flight` while breached accounts wait for
//!   room: an order built for an account that has not breached delays those that have, and is
//!   dropped unsent should its account breach and rank behind them.
//! - Order ids are derived ([`OrderKey`]): the account, the breach episode (the scan at which the
//!   slot breached; a clear ends it) and the order's ordinal in the episode, assigned when the
//!   order is sent. A restarted keeper gets the episodes and ordinals its journal holds through
//!   [`Dispatcher::resume`], so it never builds an id it used for another liquidation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

// foldhash (hashbrown's default), not SipHash: a pump looks up every backlog slot, and DoS
// resistance buys nothing for keys that are slots and account numbers.
use hashbrown::HashMap;

use hdrhistogram::Histogram;
use liqscan_hdl::abi::PriceEntry;
use serde::{Deserialize, Serialize};

use super::executor::{Executor, SubmitError};
use super::handoff::ScanBatch;
use super::order::{Completion, LiquidationOrder, OrderId, OrderKind, Outcome, RejectReason};
use super::order_id::OrderKey;
use super::ranking::{Candidate, Ranking};
use super::reduce::{ReducePolicy, rank_key_reduce, size_reduce};
use super::sizing::{AccountView, KeyTerms, RankKey, SizingPolicy, rank_key, size};

/// How the venue liquidates, hence what orders look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// Direct partial liquidation with legs (lending markets).
    Direct,
    /// Kick the account into the venue's auction (Dutch or batch).
    Kick,
    /// Reduce-only orders for perpetual positions, sized by [`DispatchConfig::reduce`].
    ReduceOnly,
}

/// The dispatcher's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// Order form.
    pub mechanism: Mechanism,
    /// Sizing rules (direct and kick).
    pub sizing: SizingPolicy,
    /// Sizing rules of reduce-only orders (perpetual venues).
    pub reduce: ReducePolicy,
    /// Most orders pending at once.
    pub max_in_flight: usize,
    /// Time after which an unanswered order is re-sent.
    pub timeout_ns: u64,
    /// Most sends of one order (first send included).
    pub max_attempts: u32,
    /// First back-off of an account after a failure.
    pub backoff_base_ns: u64,
    /// Longest back-off of an account.
    pub backoff_cap_ns: u64,
    /// Back-off of an asset the venue refused.
    pub asset_backoff_ns: u64,
    /// Wait after a fill before the account may be sized again.
    pub settle_ns: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            mechanism: Mechanism::Direct,
            sizing: SizingPolicy::default(),
            reduce: ReducePolicy::default(),
            max_in_flight: 64,
            timeout_ns: 2_000_000_000,
            max_attempts: 3,
            backoff_base_ns: 500_000_000,
            backoff_cap_ns: 30_000_000_000,
            asset_backoff_ns: 10_000_000_000,
            settle_ns: 1_000_000_000,
        }
    }
}

/// Where the dispatcher reads accounts from (the keeper's book, or the simulated venue).
pub trait AccountSource {
    /// The account in a slot, or `None` for an empty slot.
    fn view(&self, slot: u32) -> Option<AccountView<'_>>;

    /// The account in a slot and its place in the ranking at `prices` for `mechanism`:
    /// [`rank_key`], or [`rank_key_reduce`] for reduce-only orders, of its view. `None` for an
    /// empty slot. Sources that hold their views may override it to avoid building one.
    fn rank_key(
        &self,
        slot: u32,
        prices: &[PriceEntry],
        mechanism: Mechanism,
        reduce: &ReducePolicy,
    ) -> Option<(u64, Option<RankKey>)> {
        self.view(slot).map(|v| {
            let key = match mechanism {
                Mechanism::ReduceOnly => rank_key_reduce(&v, prices, reduce),
                Mechanism::Direct | Mechanism::Kick => rank_key(&v, prices),
            };
            (v.account, key)
        })
    }
}

/// Where a slot's breach stood when a keeper stopped, for the restarted dispatcher: the orders
/// it builds for the slot continue this episode after `ordinal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumePoint {
    /// The slot, breached when the keeper restarted.
    pub slot: u32,
    /// The breach episode (feed sequence number of the message that made it breach).
    pub episode: u64,
    /// The last ordinal used in the episode (0: none); the next order takes `ordinal + 1`.
    pub ordinal: u32,
}

/// A slot's current breach episode and the last ordinal used in it.
#[derive(Clone, Copy, Debug)]
struct Episode {
    seq: u64,
    ordinal: u32,
}

/// Counters of what the dispatcher did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DispatchStats {
    /// Orders built (retries not counted).
    pub orders: u64,
    /// Sends (first sends and retries).
    pub sends: u64,
    /// Re-sends after a time-out or a lost connection.
    pub retries: u64,
    /// Orders that timed out (each re-send or give-up follows one).
    pub timeouts: u64,
    /// Orders given up after `max_attempts` sends.
    pub given_up: u64,
    /// Orders filled.
    pub filled: u64,
    /// Orders handed to a sink with no confirmation.
    pub sent_unconfirmed: u64,
    /// Orders refused by the venue or executor.
    pub rejected: u64,
    /// Orders whose connection dropped before an answer.
    pub lost: u64,
    /// Submissions the executor refused (busy or unavailable).
    pub submit_errors: u64,
    /// Answers to orders no longer in flight (late, or for an earlier attempt).
    pub late_completions: u64,
    /// Backlog entries skipped because the account or an asset was backing off.
    pub backoff_skips: u64,
    /// Backlog entries left waiting because `max_in_flight` orders were pending (a pump with
    /// no room at all counts once).
    pub deferred: u64,
    /// Pre-built orders sent on breach.
    pub prebuilt_used: u64,
    /// Pre-built orders dropped unused when a batch found the cache full ([`PREBUILT_CAP`]).
    pub prebuilt_dropped: u64,
    /// At-risk slots not pre-built: past the scan's budget (`max_in_flight` while breached
    /// accounts waited for room, [`PREBUILD_PER_SCAN`] otherwise) or the cache's cap.
    pub prebuild_skipped: u64,
    /// Breached slots with nothing to size (no debt or no collateral left).
    pub unsizable: u64,
}

#[derive(Clone, Debug)]
struct Flight {
    order: LiquidationOrder,
    sent_ns: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct AccountBackoff {
    failures: u32,
    not_before_ns: u64,
}

/// Pre-built orders kept at most. Scans report accounts newly at risk but not those that stop
/// being at risk, so an account at risk once that never breaches would keep its order for the
/// whole run: a 10 M-account crash has millions. Past the cap the cache starts again (a
/// dropped order is only a head start: its account is sized when its breach is ranked).
pub const PREBUILT_CAP: usize = 1 << 16;

/// Pre-built orders one scan builds at most while no breached account waits: a book's first
/// scan reports every account at risk at once, and sizing 65,536 of them would hold a breach
/// in the next scan for about half a second.
pub const PREBUILD_PER_SCAN: usize = 4096;

/// The dispatcher. Single-threaded: the keeper runs it on its dispatch thread, fed by a
/// [`super::HandoffReceiver`]; the simulator calls it inline.
pub struct Dispatcher {
    cfg: DispatchConfig,
    // breached slot -> time first seen. A hash map, not a B-tree: at 10 M accounts a crash
    // leaves 680,000 here, and each lookup on the pump's path was a chain of cache misses
    // down the tree; nothing needs slot order (the ranking breaks ties by slot).
    backlog: HashMap<u32, u64>,
    in_flight: HashMap<u64, Flight>,
    by_id: HashMap<OrderId, u64>,
    accounts: HashMap<u64, AccountBackoff>,
    assets: HashMap<u16, u64>,
    prebuilt: HashMap<u32, LiquidationOrder>,
    /// Breach episode of each backlog slot.
    episodes: HashMap<u32, Episode>,
    /// Episodes handed over by a restart, taken when the slot is first reported breached.
    resumed: HashMap<u32, Episode>,
    stats: DispatchStats,
    latency: Histogram<u64>,
    done: Vec<Completion>,
    /// The backlog in rank order, kept between pumps.
    ranking: Ranking,
    /// Slots to (re)enter the ranking at the next pump: new breaches and changed accounts.
    pending: Vec<u32>,
    /// Pre-built orders of the ranked accounts, used when their turn comes (dropped, to be
    /// built again at the prices of the day, when the ranking is taken again).
    ranked_pre: HashMap<u32, LiquidationOrder>,
    /// The last pump left breached accounts waiting for room.
    behind: bool,
    /// Slots left out of the ranking until a time (a back-off, a settle): they rejoin it then.
    waiting: BinaryHeap<Reverse<(u64, u32)>>,
    /// The time each waiting slot waits for (its latest entry in `waiting`).
    waits: HashMap<u32, u64>,
    /// Scratch for [`Dispatcher::rank`], kept to reuse its allocation.
    rank_slots: Vec<u32>,
    /// Scratch for [`Dispatcher::on_scan`]: the stressed prices pre-built orders are sized at.
    stressed: Vec<PriceEntry>,
}

impl Dispatcher {
    /// A dispatcher with these rules.
    pub fn new(cfg: DispatchConfig) -> Self {
        Dispatcher {
            cfg,
            backlog: HashMap::new(),
            in_flight: HashMap::new(),
            by_id: HashMap::new(),
            accounts: HashMap::new(),
            assets: HashMap::new(),
            prebuilt: HashMap::new(),
            episodes: HashMap::new(),
            resumed: HashMap::new(),
            stats: DispatchStats::default(),
            latency: Histogram::new(3).expect("3 significant figures"),
            done: Vec::new(),
            ranking: Ranking::new(),
            pending: Vec::new(),
            ranked_pre: HashMap::new(),
            behind: false,
            waiting: BinaryHeap::new(),
            waits: HashMap::new(),
            rank_slots: Vec::new(),
            stressed: Vec::new(),
        }
    }

    /// Continues the breach episodes of a restarted keeper: when a slot of `points` is first
    /// reported breached (the recovered book's scan), its orders continue that episode instead
    /// of starting one at the restart's scan. A point whose slot clears first is dropped.
    pub fn resume(&mut self, points: Vec<ResumePoint>) {
        for p in points {
            self.resumed.insert(p.slot, Episode { seq: p.episode, ordinal: p.ordinal });
        }
        self.ranking.invalidate();
    }

    /// The rules.
    pub fn config(&self) -> &DispatchConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &DispatchStats {
        &self.stats
    }

    /// Breach-to-answer latency (nanoseconds) of answered orders: from the scan that first saw
    /// the breach to the fill or refusal.
    pub fn latency(&self) -> &Histogram<u64> {
        &self.latency
    }

    /// Orders pending.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// True if an order for this account is pending.
    pub fn is_in_flight(&self, account: u64) -> bool {
        self.in_flight.contains_key(&account)
    }

    /// Breached slots waiting for (or having) an order.
    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }

    /// Backlog slots whose account has not been sent an order by this dispatcher (none in
    /// flight, none answered or failed): the ones a stop would leave unordered.
    pub fn never_sent(&self, src: &dyn AccountSource) -> usize {
        self.backlog
            .keys()
            .filter_map(|&s| src.view(s))
            .filter(|v| !self.in_flight.contains_key(&v.account) && !self.accounts.contains_key(&v.account))
            .count()
    }

    /// Slots whose account a live delta changed: orders pre-built from the old account are
    /// dropped, and those in the backlog are ranked again as they are now.
    pub fn accounts_changed(&mut self, slots: impl Iterator<Item = u32>) {
        for s in slots {
            self.prebuilt.remove(&s);
            self.ranked_pre.remove(&s);
            if self.backlog.contains_key(&s) {
                self.pending.push(s);
            }
        }
    }

    /// Takes in one scan's news and sends what the rules allow.
    pub fn on_scan(
        &mut self,
        now: u64,
        batch: &ScanBatch,
        prices: &[PriceEntry],
        src: &dyn AccountSource,
        exec: &mut dyn Executor,
    ) {
        for &s in &batch.cleared {
            self.ranking.remove(s);
            self.backlog.remove(&s);
            self.prebuilt.remove(&s);
            self.episodes.remove(&s);
            self.resumed.remove(&s);
        }
        for (i, &s) in batch.breached.iter().enumerate() {
            if let hashbrown::hash_map::Entry::Vacant(v) = self.backlog.entry(s) {
                v.insert(now);
                self.pending.push(s);
            }
            let at = batch.breached_at(i);
            match self.resumed.remove(&s) {
                Some(e) => {
                    self.episodes.insert(s, e);
                }
                // A carry may merge a clear and a new breach: a new scan is a new episode.
                None => {
                    if self.episodes.get(&s).is_none_or(|e| e.seq != at) {
                        self.episodes.insert(s, Episode { seq: at, ordinal: 0 });
                    }
                }
            }
        }
        self.pump(now, prices, src, exec);
        if !batch.at_risk.is_empty() {
            self.prebuild(now, &batch.at_risk, prices, src);
        }
    }

    /// Pre-builds orders for at-risk slots at the stressed prices. With breached accounts left
    /// waiting for room, a batch builds at most `max_in_flight` (one pump's sizing work), so the
    /// accounts that have breached are not delayed by ones that may not; otherwise at most
    /// [`PREBUILD_PER_SCAN`].
    fn prebuild(&mut self, now: u64, at_risk: &[u32], prices: &[PriceEntry], src: &dyn AccountSource) {
        let mut stressed = std::mem::take(&mut self.stressed);
        stressed.clear();
        stressed.extend(prices.iter().map(|p| PriceEntry { spot: p.stressed, stressed: p.stressed }));
        // A full cache holds accounts that may no longer be at risk: start again, once per
        // batch, so one large batch builds at most the cap.
        if self.prebuilt.len() >= PREBUILT_CAP {
            self.stats.prebuilt_dropped += self.prebuilt.len() as u64;
            self.prebuilt.clear();
        }
        let mut budget = if self.behind { self.cfg.max_in_flight } else { PREBUILD_PER_SCAN };
        for (i, &s) in at_risk.iter().enumerate() {
            if budget == 0 || self.prebuilt.len() >= PREBUILT_CAP {
                self.stats.prebuild_skipped += (at_risk.len() - i) as u64;
                break;
            }
            if self.backlog.contains_key(&s) || self.prebuilt.contains_key(&s) {
                continue;
            }
            budget -= 1;
            if let Some(o) = src.view(s).and_then(|v| self.build(now, &v, &stressed)) {
                self.prebuilt.insert(s, o);
            }
        }
        self.stressed = stressed;
    }

    /// Collects answers, handles time-outs and retries, and sends what the rules allow.
    pub fn poll(
        &mut self,
        now: u64,
        prices: &[PriceEntry],
        src: &dyn AccountSource,
        exec: &mut dyn Executor,
    ) {
        exec.poll(&mut self.done);
        let done = std::mem::take(&mut self.done);
        for c in &done {
            self.complete(now, c, exec);
        }
        self.done = done;
        self.done.clear();
        let mut expired: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| now.saturating_sub(f.sent_ns) >= self.cfg.timeout_ns)
            .map(|(&a, _)| a)
            .collect();
        expired.sort_unstable();
        for account in expired {
            self.stats.timeouts += 1;
            self.resend_or_give_up(now, account, exec);
        }
        self.pump(now, prices, src, exec);
    }

    fn build(&mut self, now: u64, v: &AccountView, prices: &[PriceEntry]) -> Option<LiquidationOrder> {
        let (kind, value_at_risk) = match self.cfg.mechanism {
            Mechanism::Direct => {
                let plan = size(v, prices, &self.cfg.sizing)?;
                (OrderKind::Direct { legs: plan.legs, close_all: plan.close_all }, plan.debt_value)
            }
            Mechanism::Kick => (OrderKind::Kick, size(v, prices, &self.cfg.sizing)?.debt_value),
            Mechanism::ReduceOnly => {
                let plan = size_reduce(v, prices, &self.cfg.reduce)?;
                (OrderKind::ReduceOnly { legs: plan.legs, close_all: plan.close_all }, plan.notional)
            }
        };
        // The id is given when the order is sent (`assign_id`): a pre-built order has no
        // episode yet.
        Some(LiquidationOrder {
            id: 0,
            account: v.account,
            slot: v.slot,
            attempt: 1,
            episode: 0,
            ordinal: 0,
            kind,
            value_at_risk,
            created_ns: now,
            prebuilt: false,
        })
    }

    /// Gives an order about to be sent its id: the next ordinal of its slot's episode.
    fn assign_id(&mut self, o: &mut LiquidationOrder) {
        // A backlog slot always has an episode (set when it was reported breached).
        let e = self.episodes.entry(o.slot).or_insert(Episode { seq: 0, ordinal: 0 });
        e.ordinal += 1;
        o.episode = e.seq;
        o.ordinal = e.ordinal;
        o.id = OrderKey { account: o.account, episode: e.seq, ordinal: e.ordinal }.id();
    }

    /// Gives back the ordinal of an order the executor refused.
    fn unassign_id(&mut self, o: &LiquidationOrder) {
        if let Some(e) = self.episodes.get_mut(&o.slot)
            && e.seq == o.episode
            && e.ordinal == o.ordinal
        {
            e.ordinal -= 1;
        }
    }

    fn backoff(&mut self, now: u64, account: u64, slot: u32) {
        let b = self.accounts.entry(account).or_default();
        b.failures += 1;
        let shift = (b.failures - 1).min(32);
        let wait = self.cfg.backoff_base_ns.saturating_mul(1u64 << shift).min(self.cfg.backoff_cap_ns);
        b.not_before_ns = now.saturating_add(wait);
        let t = b.not_before_ns;
        self.wait(t, slot);
    }

    fn settle(&mut self, now: u64, account: u64, slot: u32) {
        let b = self.accounts.entry(account).or_default();
        b.failures = 0;
        b.not_before_ns = now.saturating_add(self.cfg.settle_ns);
        let t = b.not_before_ns;
        self.wait(t, slot);
    }

    /// The slot may be sent again at `t`: it rejoins the ranking then.
    fn wait(&mut self, t: u64, slot: u32) {
        self.waits.insert(slot, t);
        self.waiting.push(Reverse((t, slot)));
    }

    /// When the order may go, if it touches an asset that is backing off.
    fn backed_off_asset(&self, now: u64, o: &LiquidationOrder) -> Option<u64> {
        let until = |a: &u16| self.assets.get(a).copied().filter(|&t| now < t);
        match &o.kind {
            OrderKind::Direct { legs, .. } => {
                legs.iter().flat_map(|l| [l.debt_asset, l.collateral_asset]).filter_map(|a| until(&a)).max()
            }
            OrderKind::Kick => None,
            OrderKind::ReduceOnly { legs, .. } => legs.iter().filter_map(|l| until(&l.market)).max(),
        }
    }

    fn complete(&mut self, now: u64, c: &Completion, exec: &mut dyn Executor) {
        let Some(&account) = self.by_id.get(&c.id) else {
            self.stats.late_completions += 1;
            return;
        };
        let Some(flight) = self.in_flight.get(&account) else {
            self.stats.late_completions += 1;
            return;
        };
        if flight.order.attempt != c.attempt && c.outcome == Outcome::Lost {
            // A lost earlier attempt: the current one is still pending.
            self.stats.late_completions += 1;
            return;
        }
        if c.outcome == Outcome::Lost {
            self.stats.lost += 1;
            self.resend_or_give_up(now, account, exec);
            return;
        }
        let flight = self.in_flight.remove(&account).expect("present");
        self.by_id.remove(&c.id);
        let slot = flight.order.slot;
        let first_seen = flight.order.created_ns;
        let _ = self.latency.record(now.saturating_sub(first_seen));
        match &c.outcome {
            Outcome::Filled { .. } => {
                self.stats.filled += 1;
                self.settle(now, account, slot);
            }
            Outcome::Sent => {
                self.stats.sent_unconfirmed += 1;
                self.settle(now, account, slot);
            }
            Outcome::Rejected(r) => {
                self.stats.rejected += 1;
                match r {
                    RejectReason::Healthy | RejectReason::UnknownAccount => {
                        self.backlog.remove(&slot);
                        self.accounts.remove(&account);
                    }
                    RejectReason::InProgress => self.settle(now, account, slot),
                    RejectReason::AssetUnavailable(a) => {
                        self.assets.insert(*a, now.saturating_add(self.cfg.asset_backoff_ns));
                        self.backoff(now, account, slot);
                    }
                    RejectReason::Busy | RejectReason::Stale | RejectReason::Invalid(_) => {
                        self.backoff(now, account, slot)
                    }
                }
            }
            Outcome::Lost => unreachable!("handled above"),
        }
    }

    fn resend_or_give_up(&mut self, now: u64, account: u64, exec: &mut dyn Executor) {
        let Some(f) = self.in_flight.get_mut(&account) else { return };
        if f.order.attempt >= self.cfg.max_attempts {
            let f = self.in_flight.remove(&account).expect("present");
            self.by_id.remove(&f.order.id);
            self.stats.given_up += 1;
            self.backoff(now, account, f.order.slot);
            return;
        }
        f.order.attempt += 1;
        f.sent_ns = now;
        self.stats.retries += 1;
        self.stats.sends += 1;
        let order = f.order.clone();
        if let Err(e) = exec.submit(&order) {
            // Counted; the time-out will come round again and retry or give up.
            self.refused(&e);
        }
    }

    /// Counts a submission the executor refused, and says so at the first refusal and then at
    /// each power of two: an executor that cannot take orders (a full disk, a closed pipe) is
    /// not silent, and a busy one does not flood the log.
    fn refused(&mut self, e: &SubmitError) {
        self.stats.submit_errors += 1;
        if self.stats.submit_errors.is_power_of_two() {
            tracing::warn!(
                "the executor refused an order ({} refusals so far; the account backs off and is tried again): {e}",
                self.stats.submit_errors
            );
        }
    }

    /// Sends what the rules allow, largest value at risk first. The ranking (see
    /// [`super::ranking`]) takes in the new breaches and changed accounts, re-keys the accounts
    /// whose debt a price move changed and takes back those whose wait ended; only the accounts
    /// taken, in rank order, are sized and built, so a pump costs `max_in_flight` sizings plus
    /// the accounts it skips. An account taken that no longer sizes at the prices of the day
    /// (healthy again before a scan says so) leaves the backlog.
    fn pump(&mut self, now: u64, prices: &[PriceEntry], src: &dyn AccountSource, exec: &mut dyn Executor) {
        // Nothing to send, or no room: the backlog waits (its size is reported, not scanned).
        if self.backlog.is_empty() || self.in_flight.len() >= self.cfg.max_in_flight {
            if !self.backlog.is_empty() {
                self.stats.deferred += 1;
            }
            // Without a ranking, a backlog beyond the accounts in flight is taken as waiting.
            self.behind = self.backlog.len() > self.in_flight.len();
            return;
        }
        let room = self.cfg.max_in_flight.saturating_sub(self.in_flight.len());
        // More new entries than the ranking holds (a crash's first scan): ranking the backlog
        // afresh sorts them in one go, where joining them one by one would heap each.
        let flood = self.pending.len() > self.ranking.left() + self.cfg.max_in_flight;
        match self.ranking.moved(prices).filter(|_| !flood) {
            None => self.rank(now, prices, src, room),
            Some(moved) => {
                self.rekey(prices, moved, src);
                self.admit(now, prices, src);
            }
        }
        self.rejoin(now, prices, src);
        let mut taken = 0usize;
        while taken < room {
            let Some(c) = self.ranking.take() else { break };
            // What changed since the ranking: a slot dropped, an account sent or backing off.
            let Some(&first_seen) = self.backlog.get(&c.slot) else { continue };
            if self.in_flight.contains_key(&c.account) {
                continue;
            }
            if let Some(t) = self.accounts.get(&c.account).map(|b| b.not_before_ns).filter(|&t| now < t) {
                self.stats.backoff_skips += 1;
                self.wait(t, c.slot);
                continue;
            }
            let order = match self.ranked_pre.remove(&c.slot) {
                // `ranked_pre` holds a slot's order only if it matched the slot's account.
                Some(mut o) => {
                    o.prebuilt = true;
                    o.created_ns = first_seen;
                    Some(o)
                }
                None => src.view(c.slot).and_then(|v| self.build(first_seen, &v, prices)),
            };
            let Some(mut order) = order else {
                // Healthy at the prices of the day, or nothing to seize.
                self.stats.unsizable += 1;
                self.backlog.remove(&c.slot);
                continue;
            };
            if let Some(until) = self.backed_off_asset(now, &order) {
                self.stats.backoff_skips += 1;
                self.wait(until, c.slot);
                continue;
            }
            taken += 1;
            self.assign_id(&mut order);
            match exec.submit(&order) {
                Ok(()) => {
                    self.stats.orders += 1;
                    self.stats.sends += 1;
                    if order.prebuilt {
                        self.stats.prebuilt_used += 1;
                    }
                    self.by_id.insert(order.id, order.account);
                    self.in_flight.insert(order.account, Flight { order, sent_ns: now });
                }
                Err(e) => {
                    self.refused(&e);
                    // Not sent: the next try is the same order and keeps its id, as another
                    // keeper's copy of it has (a new ordinal would be a new id that the
                    // order stream does not de-duplicate).
                    self.unassign_id(&order);
                    self.backoff(now, order.account, order.slot);
                    if matches!(e, SubmitError::Unavailable { .. }) {
                        // Everything else would fail the same way.
                        break;
                    }
                }
            }
        }
        self.behind = taken == room && self.ranking.left() > 0;
        if self.behind {
            self.stats.deferred += self.ranking.left() as u64;
        }
        // Pre-built orders not sent now are dropped, and their accounts ranked again by their
        // debt at the prices of the day (pre-built orders are rare: a breach of an account
        // found at risk just before). One skipped for an asset's back-off waits as it is.
        let dropped = self.ranked_pre.drain().map(|(s, _)| s);
        self.pending.extend(dropped);
    }

    /// Ranks the backlog afresh at `prices` (a new dispatcher, a restart, a flood of breaches):
    /// keys every slot that is not waiting, drops those that can never be sized, and leaves out
    /// (until they may be sent) accounts in flight or backing off.
    fn rank(&mut self, now: u64, prices: &[PriceEntry], src: &dyn AccountSource, room: usize) {
        self.ranking.restart(prices, room);
        self.ranked_pre.clear();
        self.pending.clear();
        let mut slots = std::mem::take(&mut self.rank_slots);
        slots.clear();
        slots.extend(self.backlog.keys().filter(|s| !self.waits.contains_key(*s)));
        for &slot in &slots {
            if let Some(c) = self.candidate(now, slot, prices, src) {
                self.ranking.push(c);
            }
        }
        self.rank_slots = slots;
    }

    /// Brings the ranking's keys to `prices`: the accounts moved by an asset whose price
    /// changed are keyed again (an empty slot or one that can never be sized leaves the
    /// backlog, as in [`Dispatcher::rank`]).
    fn rekey(&mut self, prices: &[PriceEntry], moved: u64, src: &dyn AccountSource) {
        let (cfg, backlog, stats) = (&self.cfg, &mut self.backlog, &mut self.stats);
        self.ranking.rekey(prices, moved, |c| {
            match src.rank_key(c.slot, prices, cfg.mechanism, &cfg.reduce) {
                Some((_, Some(k))) => Some(k.value),
                keyed => {
                    stats.unsizable += u64::from(keyed.is_some());
                    backlog.remove(&c.slot);
                    None
                }
            }
        });
    }

    /// New breaches and changed accounts enter the ranking at `prices` (a slot already in it
    /// is superseded; a waiting slot enters when its wait ends).
    fn admit(&mut self, now: u64, prices: &[PriceEntry], src: &dyn AccountSource) {
        let mut pending = std::mem::take(&mut self.pending);
        for &slot in &pending {
            // A slot listed twice that took its pre-built order keeps that order's entry.
            if !self.backlog.contains_key(&slot)
                || self.waits.contains_key(&slot)
                || self.ranked_pre.contains_key(&slot)
            {
                continue;
            }
            if let Some(c) = self.candidate(now, slot, prices, src) {
                self.ranking.join(c);
            }
        }
        pending.clear();
        self.pending = pending;
    }

    /// Slots whose wait has ended rejoin the ranking, keyed at `prices`.
    fn rejoin(&mut self, now: u64, prices: &[PriceEntry], src: &dyn AccountSource) {
        while let Some(&Reverse((t, slot))) = self.waiting.peek() {
            if t > now {
                break;
            }
            self.waiting.pop();
            // A slot that waited again since holds its latest time.
            if self.waits.get(&slot) != Some(&t) {
                continue;
            }
            self.waits.remove(&slot);
            if !self.backlog.contains_key(&slot) {
                continue;
            }
            if let Some(c) = self.candidate(now, slot, prices, src) {
                self.ranking.join(c);
            }
        }
    }

    /// A backlog slot as a candidate: `None` if it has nothing to size (then it leaves the
    /// backlog), is in flight (its answer settles or backs it off, which queues it), or is
    /// backing off (queued until then).
    fn candidate(
        &mut self,
        now: u64,
        slot: u32,
        prices: &[PriceEntry],
        src: &dyn AccountSource,
    ) -> Option<Candidate> {
        let keyed = src.rank_key(slot, prices, self.cfg.mechanism, &self.cfg.reduce);
        let Some((account, rank_key)) = keyed else {
            self.backlog.remove(&slot);
            return None;
        };
        if self.in_flight.contains_key(&account) {
            return None;
        }
        if let Some(t) = self.accounts.get(&account).map(|b| b.not_before_ns).filter(|&t| now < t) {
            self.stats.backoff_skips += 1;
            self.wait(t, slot);
            return None;
        }
        // Pre-built orders of the accounts ranked are used at their turn or dropped.
        let Some(rank_key) = rank_key else {
            self.stats.unsizable += 1;
            self.backlog.remove(&slot);
            return None;
        };
        // A pre-built order's value is fixed: no price move re-keys it.
        let c = match self.prebuilt.remove(&slot) {
            Some(o) if o.account == account => {
                let k = o.value_at_risk;
                self.ranked_pre.insert(slot, o);
                Candidate::new(k, 0, KeyTerms::default(), slot, account)
            }
            _ => Candidate::new(rank_key.value, rank_key.moves, rank_key.terms, slot, account),
        };
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::sizing::Position;
    use liqscan_hdl::abi::QuotedPrice;
    use std::collections::VecDeque;

    const MS: u64 = 1_000_000;

    struct Book(HashMap<u32, AccountView<'static>>);
    impl AccountSource for Book {
        fn view(&self, slot: u32) -> Option<AccountView<'_>> {
            self.0.get(&slot).cloned()
        }
    }

    /// Records submissions; answers only what the test scripts.
    #[derive(Default)]
    struct Script {
        sent: Vec<LiquidationOrder>,
        answers: VecDeque<Completion>,
        refuse: bool,
    }
    impl Executor for Script {
        fn name(&self) -> &str {
            "script"
        }
        fn submit(&mut self, o: &LiquidationOrder) -> Result<(), SubmitError> {
            if self.refuse {
                return Err(SubmitError::Busy("script".into()));
            }
            self.sent.push(o.clone());
            Ok(())
        }
        fn poll(&mut self, out: &mut Vec<Completion>) {
            out.extend(self.answers.drain(..));
        }
    }

    fn prices() -> Vec<PriceEntry> {
        let q = |p| QuotedPrice { asset: p, liability: p };
        vec![PriceEntry { spot: q(100), stressed: q(80) }, PriceEntry { spot: q(1), stressed: q(1) }]
    }

    /// Slot s holds account 1000+s: 10 collateral (w 0.8) against `debt`.
    fn book(debts: &[(u32, i128)]) -> Book {
        Book(
            debts
                .iter()
                .map(|&(s, d)| {
                    let positions = vec![
                        Position {
                            asset: 0,
                            amount: 10,
                            asset_weight_ppm: 800_000,
                            liability_weight_ppm: 1_000_000,
                        },
                        Position {
                            asset: 1,
                            amount: -d,
                            asset_weight_ppm: 1_000_000,
                            liability_weight_ppm: 1_000_000,
                        },
                    ];
                    (s, AccountView { account: 1000 + s as u64, slot: s, positions: positions.into() })
                })
                .collect(),
        )
    }

    fn breached(slots: &[u32]) -> ScanBatch {
        ScanBatch { seq: 1, breached: slots.to_vec(), ..Default::default() }
    }

    fn cfg() -> DispatchConfig {
        DispatchConfig {
            timeout_ns: 100 * MS,
            backoff_base_ns: 50 * MS,
            settle_ns: 10 * MS,
            ..Default::default()
        }
    }

    #[test]
    fn one_order_per_account_while_in_flight_by_value_at_risk() {
        let b = book(&[(0, 810), (1, 900), (2, 850)]);
        let mut d = Dispatcher::new(DispatchConfig { max_in_flight: 2, ..cfg() });
        let mut x = Script::default();
        d.on_scan(0, &breached(&[0, 1, 2]), &prices(), &b, &mut x);
        assert_eq!(x.sent.iter().map(|o| o.slot).collect::<Vec<_>>(), vec![1, 2], "largest debt first");
        assert_eq!(d.stats().deferred, 1);
        // Same breach reported again: nothing new while in flight.
        d.on_scan(MS, &breached(&[0, 1, 2]), &prices(), &b, &mut x);
        d.poll(2 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 2);
        // Slot 1 fills: its room goes to slot 0; slot 1 waits out the settle time.
        let id = x.sent[0].id;
        x.answers.push_back(Completion {
            id,
            attempt: 1,
            outcome: Outcome::Filled { repaid_value: 1, seized_value: 1 },
        });
        d.poll(3 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 3);
        assert_eq!(x.sent[2].slot, 0);
        assert!(d.is_in_flight(1000) && !d.is_in_flight(1001));
    }

    #[test]
    fn a_refused_submit_keeps_the_order_id_for_the_next_try() {
        let b = book(&[(5, 900)]);
        let mut d = Dispatcher::new(cfg());
        let mut x = Script { refuse: true, ..Default::default() };
        d.on_scan(0, &breached(&[5]), &prices(), &b, &mut x);
        assert!(x.sent.is_empty());
        assert_eq!(d.stats().submit_errors, 1);
        x.refuse = false;
        d.poll(200 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 1, "sent after the back-off");
        let o = &x.sent[0];
        assert_eq!((o.episode, o.ordinal), (1, 1), "the refused try used no ordinal");
        assert_eq!(o.id, OrderKey { account: 1005, episode: 1, ordinal: 1 }.id());
    }

    #[test]
    fn timeout_retries_same_id_then_gives_up_and_backs_off() {
        let b = book(&[(5, 900)]);
        let mut d = Dispatcher::new(cfg());
        let mut x = Script::default();
        d.on_scan(0, &breached(&[5]), &prices(), &b, &mut x);
        d.poll(99 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 1);
        d.poll(100 * MS, &prices(), &b, &mut x);
        d.poll(200 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 3);
        assert!(x.sent.iter().all(|o| o.id == x.sent[0].id));
        assert_eq!(x.sent.iter().map(|o| o.attempt).collect::<Vec<_>>(), vec![1, 2, 3]);
        // Third time-out: given up, account backs off 50 ms.
        d.poll(300 * MS, &prices(), &b, &mut x);
        assert_eq!(d.stats().given_up, 1);
        assert_eq!(x.sent.len(), 3);
        d.poll(349 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 3);
        d.poll(350 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 4, "a new order after the back-off");
        assert_ne!(x.sent[3].id, x.sent[0].id);
        // A late fill of the given-up order is counted, not mistaken for the new one.
        x.answers.push_back(Completion { id: x.sent[0].id, attempt: 3, outcome: Outcome::Sent });
        d.poll(351 * MS, &prices(), &b, &mut x);
        assert_eq!(d.stats().late_completions, 1);
        assert!(d.is_in_flight(1005));
    }

    #[test]
    fn failures_back_off_exponentially_and_success_resets() {
        let b = book(&[(0, 900)]);
        let mut d = Dispatcher::new(cfg());
        let mut x = Script::default();
        let mut t = 0;
        let mut gaps = Vec::new();
        d.on_scan(t, &breached(&[0]), &prices(), &b, &mut x);
        for _ in 0..4 {
            let o = x.sent.last().unwrap().clone();
            x.answers.push_back(Completion {
                id: o.id,
                attempt: 1,
                outcome: Outcome::Rejected(RejectReason::Busy),
            });
            let before = x.sent.len();
            let start = t;
            while x.sent.len() == before {
                t += MS;
                d.poll(t, &prices(), &b, &mut x);
            }
            gaps.push((t - start) / MS);
        }
        assert_eq!(gaps, vec![51, 101, 201, 401]);
        let o = x.sent.last().unwrap().clone();
        x.answers.push_back(Completion { id: o.id, attempt: 1, outcome: Outcome::Sent });
        d.poll(t, &prices(), &b, &mut x);
        t += 10 * MS;
        d.poll(t, &prices(), &b, &mut x);
        let o = x.sent.last().unwrap().clone();
        assert_eq!(x.sent.len(), 6, "settled after 10 ms");
        x.answers.push_back(Completion {
            id: o.id,
            attempt: 1,
            outcome: Outcome::Rejected(RejectReason::Busy),
        });
        d.poll(t, &prices(), &b, &mut x);
        d.poll(t + 50 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 7, "back to the base back-off");
    }

    #[test]
    fn asset_backoff_holds_every_account_touching_it() {
        let b = book(&[(0, 900), (1, 850)]);
        let mut d = Dispatcher::new(DispatchConfig { asset_backoff_ns: 1_000 * MS, ..cfg() });
        let mut x = Script::default();
        d.on_scan(0, &breached(&[0]), &prices(), &b, &mut x);
        x.answers.push_back(Completion {
            id: x.sent[0].id,
            attempt: 1,
            outcome: Outcome::Rejected(RejectReason::AssetUnavailable(0)),
        });
        d.poll(MS, &prices(), &b, &mut x);
        d.on_scan(2 * MS, &breached(&[1]), &prices(), &b, &mut x);
        d.poll(999 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 1);
        assert!(d.stats().backoff_skips > 0);
        d.poll(1001 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 3);
    }

    #[test]
    fn healthy_answer_and_cleared_scan_leave_the_backlog() {
        let b = book(&[(0, 900), (1, 900)]);
        let mut d = Dispatcher::new(cfg());
        let mut x = Script::default();
        d.on_scan(0, &breached(&[0, 1]), &prices(), &b, &mut x);
        assert_eq!(d.backlog(), 2);
        let id0 = x.sent.iter().find(|o| o.slot == 0).unwrap().id;
        x.answers.push_back(Completion {
            id: id0,
            attempt: 1,
            outcome: Outcome::Rejected(RejectReason::Healthy),
        });
        d.poll(MS, &prices(), &b, &mut x);
        assert_eq!(d.backlog(), 1);
        d.on_scan(2 * MS, &ScanBatch { cleared: vec![1], ..Default::default() }, &prices(), &b, &mut x);
        assert_eq!(d.backlog(), 0);
    }

    #[test]
    fn busy_executor_is_counted_and_retried_later() {
        let b = book(&[(0, 900)]);
        let mut d = Dispatcher::new(cfg());
        let mut x = Script { refuse: true, ..Default::default() };
        d.on_scan(0, &breached(&[0]), &prices(), &b, &mut x);
        assert_eq!(d.stats().submit_errors, 1);
        x.refuse = false;
        d.poll(10 * MS, &prices(), &b, &mut x);
        assert!(x.sent.is_empty(), "backing off");
        d.poll(50 * MS, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 1);
    }

    #[test]
    fn at_risk_prebuilds_and_breach_sends_prebuilt() {
        // Debt 700: healthy at 100 (HF 800/700), at risk at stressed 80 (640/700).
        let b = book(&[(3, 700)]);
        let mut d = Dispatcher::new(cfg());
        let mut x = Script::default();
        d.on_scan(0, &ScanBatch { at_risk: vec![3], ..Default::default() }, &prices(), &b, &mut x);
        assert!(x.sent.is_empty());
        d.on_scan(5 * MS, &breached(&[3]), &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 1);
        assert!(x.sent[0].prebuilt);
        assert_eq!(d.stats().prebuilt_used, 1);
    }

    #[test]
    fn pre_builds_are_budgeted_while_breached_accounts_wait_for_room() {
        // Slots 0-2 owe more than their collateral (breached); slots 10-14 are at risk only.
        let at_risk: Vec<(u32, i128)> = (10..15).map(|s| (s, 700)).collect();
        let b = book(&[&[(0, 810), (1, 900), (2, 850)], &at_risk[..]].concat());
        let mut d = Dispatcher::new(DispatchConfig { max_in_flight: 2, ..cfg() });
        let mut x = Script::default();
        let batch =
            ScanBatch { seq: 1, breached: vec![0, 1, 2], at_risk: vec![10, 11, 12], ..Default::default() };
        d.on_scan(0, &batch, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 2);
        // Slot 2 waits for room: one pump's worth (2) is pre-built, the third skipped.
        assert_eq!(d.prebuilt.len(), 2);
        assert!(d.prebuilt.contains_key(&10) && d.prebuilt.contains_key(&11));
        assert_eq!(d.stats().prebuild_skipped, 1);
        // The venue fills both and the scan clears them; slot 2 goes out and nobody waits.
        let (a, b0) = (x.sent[0].id, x.sent[1].id);
        x.answers.extend([a, b0].map(|id| Completion {
            id,
            attempt: 1,
            outcome: Outcome::Filled { repaid_value: 1, seized_value: 1 },
        }));
        d.poll(MS, &prices(), &b, &mut x);
        let cleared =
            ScanBatch { seq: 2, cleared: vec![0, 1], at_risk: vec![12, 13, 14], ..Default::default() };
        d.on_scan(2 * MS, &cleared, &prices(), &b, &mut x);
        assert_eq!(x.sent.len(), 3);
        assert_eq!(d.prebuilt.len(), 5, "with room to spare, every at-risk account is pre-built");
        assert_eq!(d.stats().prebuild_skipped, 1);
    }

    #[test]
    fn pre_built_orders_are_capped_and_the_newest_still_serve() {
        // Every account at risk once and none breaching: a scan builds at most
        // PREBUILD_PER_SCAN, the cache fills to its cap, and the next scan starts it again.
        let n = PREBUILT_CAP as u32 + 10;
        // Slot 0 owes 900, beyond its collateral at spot (800), so it can be sized unaided.
        let b = book(&(0..n).map(|s| (s, if s == 0 { 900 } else { 700 })).collect::<Vec<_>>());
        let mut d = Dispatcher::new(cfg());
        let mut x = Script::default();
        let per = PREBUILD_PER_SCAN as u32;
        d.on_scan(
            0,
            &ScanBatch { at_risk: (0..per + 10).collect(), ..Default::default() },
            &prices(),
            &b,
            &mut x,
        );
        assert_eq!(d.prebuilt.len(), PREBUILD_PER_SCAN);
        assert_eq!(d.stats().prebuild_skipped, 10);
        for start in (per..PREBUILT_CAP as u32).step_by(PREBUILD_PER_SCAN) {
            let at_risk = (start..start + per).collect();
            d.on_scan(0, &ScanBatch { at_risk, ..Default::default() }, &prices(), &b, &mut x);
        }
        assert_eq!(d.prebuilt.len(), PREBUILT_CAP);
        assert!(!d.prebuilt.contains_key(&(n - 1)));
        d.on_scan(MS, &ScanBatch { at_risk: vec![n - 1], ..Default::default() }, &prices(), &b, &mut x);
        assert_eq!(d.prebuilt.len(), 1);
        assert_eq!(d.stats().prebuilt_dropped, PREBUILT_CAP as u64);
        // A dropped account is sized at its breach; a kept one sends its pre-built order.
        d.on_scan(5 * MS, &breached(&[0, n - 1]), &prices(), &b, &mut x);
        let sent: Vec<_> = x.sent.iter().map(|o| (o.slot, o.prebuilt)).collect();
        assert_eq!(sent.len(), 2, "{sent:?} {:?}", d.stats());
        assert!(sent.contains(&(0, false)) && sent.contains(&(n - 1, true)), "{sent:?}");
    }

    #[test]
    fn reduce_only_orders_for_longs_and_shorts_under_the_same_rules() {
        use crate::dispatch::order::Reduce;
        // Asset 0 the quote, asset 1 a perpetual at 100 with 10% maintenance.
        let perp = |size: i128| Position {
            asset: 1,
            amount: size,
            asset_weight_ppm: 900_000,
            liability_weight_ppm: 1_100_000,
        };
        let quote = |amount: i128| Position {
            asset: 0,
            amount,
            asset_weight_ppm: 1_000_000,
            liability_weight_ppm: 1_000_000,
        };
        let view = |s: u32, cash: i128, size: i128| {
            (
                s,
                AccountView {
                    account: 1000 + s as u64,
                    slot: s,
                    positions: vec![quote(cash), perp(size)].into(),
                },
            )
        };
        // Long 100 (E 500 < MM 1 000), short 200 (E 1 000 < MM 2 000), long 10 healthy.
        let b = Book(HashMap::from([view(0, -9_500, 100), view(1, 21_000, -200), view(2, -500, 10)]));
        let q = |p| QuotedPrice { asset: p, liability: p };
        let prices =
            vec![PriceEntry { spot: q(1), stressed: q(1) }, PriceEntry { spot: q(100), stressed: q(100) }];
        let rules = DispatchConfig {
            mechanism: Mechanism::ReduceOnly,
            reduce: ReducePolicy { target_margin_bps: 10_000, slippage_bps: 0, ..Default::default() },
            ..cfg()
        };
        let mut d = Dispatcher::new(rules);
        let mut x = Script::default();
        d.on_scan(0, &breached(&[0, 1, 2]), &prices, &b, &mut x);
        let kinds: Vec<_> = x.sent.iter().map(|o| (o.slot, o.kind.clone(), o.value_at_risk)).collect();
        // Largest notional first; the least that restores maintenance: 50 and 100 lots.
        let reduce = |size| OrderKind::ReduceOnly {
            legs: vec![Reduce { market: 1, size, limit_price: 100 }],
            close_all: false,
        };
        assert_eq!(kinds, vec![(1, reduce(100), 20_000), (0, reduce(-50), 10_000)]);
        assert_eq!(d.stats().unsizable, 1, "the healthy account leaves the backlog");
        // One order per account in flight; the market refused: every order on it backs off.
        d.on_scan(MS, &breached(&[0, 1]), &prices, &b, &mut x);
        assert_eq!(x.sent.len(), 2);
        x.answers.push_back(Completion {
            id: x.sent[0].id,
            attempt: 1,
            outcome: Outcome::Rejected(RejectReason::AssetUnavailable(1)),
        });
        x.answers.push_back(Completion {
            id: x.sent[1].id,
            attempt: 1,
            outcome: Outcome::Rejected(RejectReason::Busy),
        });
        d.poll(2 * MS, &prices, &b, &mut x);
        d.poll(5_000 * MS, &prices, &b, &mut x);
        assert_eq!(x.sent.len(), 2, "market 1 backing off");
        assert!(d.stats().backoff_skips > 0);
        d.poll(10_003 * MS, &prices, &b, &mut x);
        assert_eq!(x.sent.len(), 4, "both again after the asset back-off");
        // Time-out: the same id re-sent.
        d.poll(10_003 * MS + cfg().timeout_ns, &prices, &b, &mut x);
        assert_eq!(x.sent.len(), 6);
        let ids = |r: std::ops::Range<usize>| {
            let mut v: Vec<_> = x.sent[r].iter().map(|o| (o.id, o.kind.clone())).collect();
            v.sort_by_key(|o| o.0);
            v
        };
        assert_eq!(ids(4..6), ids(2..4), "re-sent under the same ids");
        assert!(x.sent[4..].iter().all(|o| o.attempt == 2));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

        /// One pump sends exactly the `max_in_flight` sizable accounts of largest value at risk
        /// (ties by slot), as sizing every breached account and sorting would.
        #[test]
        fn a_pump_sends_the_top_sizable_accounts(
            debts in proptest::collection::vec(0i128..1_200, 1..150),
            room in 1usize..40,
        ) {
            let b = book(&debts.iter().enumerate().map(|(s, &d)| (s as u32, d)).collect::<Vec<_>>());
            let mut d = Dispatcher::new(DispatchConfig { max_in_flight: room, ..cfg() });
            let mut x = Script::default();
            let all: Vec<u32> = (0..debts.len() as u32).collect();
            d.on_scan(0, &breached(&all), &prices(), &b, &mut x);
            let mut want: Vec<(i128, u32)> = all
                .iter()
                .filter_map(|&s| size(&b.0[&s], &prices(), &SizingPolicy::default()).map(|p| (p.debt_value, s)))
                .collect();
            want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let want: Vec<u32> = want.iter().take(room).map(|w| w.1).collect();
            let got: Vec<u32> = x.sent.iter().map(|o| o.slot).collect();
            proptest::prop_assert_eq!(got, want);
            // Built only what it sent, each under its own id.
            proptest::prop_assert_eq!(d.stats().orders, x.sent.len() as u64);
            let ids: std::collections::HashSet<OrderId> = x.sent.iter().map(|o| o.id).collect();
            proptest::prop_assert_eq!(ids.len(), x.sent.len());
        }
    }

    /// One step of a random dispatch history.
    #[derive(Clone, Debug)]
    enum Step {
        Scan {
            seq: u64,
            breached: Vec<u32>,
            cleared: Vec<u32>,
            at_risk: Vec<u32>,
        },
        Poll {
            dt_ms: u64,
            prices: usize,
        },
        /// Answers the `n` oldest orders still pending at the executor with `outcome`.
        Answer {
            n: usize,
            outcome: u8,
        },
        Refuse(bool),
        /// A live delta: the slot's account now owes these amounts of assets 1 and 2.
        Change {
            slot: u32,
            debt: i128,
            short: i128,
        },
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        let slots = || prop::collection::vec(0u32..14, 0..6);
        prop_oneof![
            (1u64..4, slots(), slots(), slots()).prop_map(|(seq, breached, cleared, at_risk)| Step::Scan {
                seq,
                breached,
                cleared,
                at_risk
            }),
            (prop_oneof![Just(0u64), Just(1), Just(4), Just(12), Just(60)], 0usize..18)
                .prop_map(|(dt_ms, prices)| Step::Poll { dt_ms, prices }),
            (1usize..5, 0u8..7).prop_map(|(n, outcome)| Step::Answer { n, outcome }),
            any::<bool>().prop_map(Step::Refuse),
            (0u32..14, 0i128..1200, prop_oneof![Just(0i128), -30i128..30])
                .prop_map(|(slot, debt, short)| Step::Change { slot, debt, short }),
        ]
    }

    fn outcome(k: u8) -> Outcome {
        match k {
            0 => Outcome::Filled { repaid_value: 1, seized_value: 1 },
            1 => Outcome::Sent,
            2 => Outcome::Rejected(RejectReason::Busy),
            3 => Outcome::Rejected(RejectReason::Healthy),
            4 => Outcome::Rejected(RejectReason::AssetUnavailable(1)),
            5 => Outcome::Rejected(RejectReason::InProgress),
            _ => Outcome::Lost,
        }
    }

    /// Eighteen price sets: asset 0 (every account's collateral) at three prices, asset 1 at
    /// three (one of them 0: worth nothing), asset 2 at two, so a move re-keys the accounts
    /// owing the asset and no one else.
    fn price_set(i: usize) -> Vec<PriceEntry> {
        // Each side at its own quote, so a key valued at the wrong one shows.
        let q = |p| QuotedPrice { asset: p, liability: if p == 0 { 0 } else { p + 1 } };
        let e = |p: u32| PriceEntry { spot: q(p), stressed: q(p * 4 / 5) };
        vec![e([100, 90, 120][i % 3]), e([1, 2, 0][i / 3 % 3]), e([50, 40][i / 9])]
    }

    /// Slot s holds account 1000+s: 10 of asset 0 (w 0.8) against `debt` of asset 1 and
    /// `short` of asset 2 (a long where negative).
    fn account(s: u32, debt: i128, short: i128) -> AccountView<'static> {
        let pos = |asset, amount| Position {
            asset,
            amount,
            asset_weight_ppm: 800_000,
            liability_weight_ppm: 1_000_000,
        };
        let mut positions = vec![pos(0, 10), pos(1, -debt)];
        if short != 0 {
            positions.push(pos(2, -short));
        }
        AccountView { account: 1000 + s as u64, slot: s, positions: positions.into() }
    }

    proptest::proptest! {
        /// The ranking kept between pumps sends what ranking the whole backlog at every pump
        /// sends: the same orders, in the same order, with the same ids, and leaves the same
        /// backlog and orders in flight. Accounts owe one asset or two (or hold a long), under
        /// liquidations or reduce-only orders, and a price may fall to 0.
        #[test]
        fn the_kept_ranking_sends_what_a_fresh_ranking_sends(
            debts in proptest::collection::vec((0i128..1200, proptest::prop_oneof![proptest::strategy::Just(0i128), -30i128..30]), 14),
            steps in proptest::collection::vec(step(), 1..60),
            max_in_flight in 1usize..5,
            reduce_only: bool,
        ) {
            let mut b = Book(debts.iter().enumerate().map(|(s, &(d, x))| (s as u32, account(s as u32, d, x))).collect());
            let mechanism = if reduce_only { Mechanism::ReduceOnly } else { Mechanism::Direct };
            let cfg = DispatchConfig { max_in_flight, asset_backoff_ns: 30 * MS, mechanism, ..cfg() };
            let (mut kept, mut fresh) = (Dispatcher::new(cfg), Dispatcher::new(cfg));
            let (mut xk, mut xf) = (Script::default(), Script::default());
            let (mut answered, mut now, mut prices) = (0usize, 0u64, price_set(0));
            for st in steps {
                fresh.ranking.invalidate();
                match st {
                    Step::Scan { seq, breached, cleared, at_risk } => {
                        let batch = ScanBatch { seq, breached, cleared, at_risk, ..Default::default() };
                        kept.on_scan(now, &batch, &prices, &b, &mut xk);
                        fresh.on_scan(now, &batch, &prices, &b, &mut xf);
                    }
                    Step::Poll { dt_ms, prices: p } => {
                        now += dt_ms * MS;
                        prices = price_set(p);
                        kept.poll(now, &prices, &b, &mut xk);
                        fresh.poll(now, &prices, &b, &mut xf);
                    }
                    Step::Answer { n, outcome: k } => {
                        for o in xk.sent.iter().skip(answered).take(n) {
                            let c = Completion { id: o.id, attempt: o.attempt, outcome: outcome(k) };
                            xk.answers.push_back(c.clone());
                            xf.answers.push_back(c);
                        }
                        answered = (answered + n).min(xk.sent.len());
                    }
                    Step::Refuse(r) => {
                        xk.refuse = r;
                        xf.refuse = r;
                    }
                    Step::Change { slot, debt, short } => {
                        b.0.insert(slot, account(slot, debt, short));
                        kept.accounts_changed(std::iter::once(slot));
                        fresh.accounts_changed(std::iter::once(slot));
                    }
                }
                proptest::prop_assert_eq!(&xk.sent, &xf.sent);
                proptest::prop_assert_eq!(&kept.backlog, &fresh.backlog);
                let mut fk: Vec<u64> = kept.in_flight.keys().copied().collect();
                let mut ff: Vec<u64> = fresh.in_flight.keys().copied().collect();
                fk.sort_unstable();
                ff.sort_unstable();
                proptest::prop_assert_eq!(fk, ff);
                let (sk, sf) = (kept.stats(), fresh.stats());
                proptest::prop_assert_eq!((sk.orders, sk.sends, sk.unsizable, sk.prebuilt_used), (sf.orders, sf.sends, sf.unsizable, sf.prebuilt_used));
            }
        }
    }
}
