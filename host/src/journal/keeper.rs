//! The journal wired into a keeper run: the feed side ([`BookJournal`]: one record per feed
//! message, written on the feed thread before the message is pushed to the engine) and the
//! dispatch side ([`JournaledExecutor`]: any executor wrapped so that each order is journaled
//! `OrderPending` before the submit, `OrderSent` after it, `OrderDone` when it finishes).
//!
//! Two directories, one writer each (the feed thread and the dispatch thread): `DIR/book` and
//! `DIR/orders`. The book journal's record count is the number of feed messages taken, so a
//! restarted replay resumes at that message. Nothing here runs on the engine thread except
//! [`ClearedSlots::push`], a mutex-guarded `Vec` append on scans that clear a breach.
//!
//! Orders and breaches: an order stays open in the journal while its account stays breached
//! (a sink's `Sent` outcome has no confirmation to wait for), and is closed with `OrderDone`
//! when the breach clears (or on `Filled` or `Rejected`). After a restart, an account that is
//! breached in the recovered book and has an open order is not ordered again: its pending
//! orders are re-sent once with the same id (they may not have reached the executor), its
//! sent orders are awaited. Open orders of accounts no longer breached are closed.
//!
//! Order ids are derived from (account, breach episode, ordinal) ([`crate::dispatch::OrderKey`]),
//! and the journal keeps each account's last (episode, ordinal). A restart hands the dispatcher
//! [`ResumePoint`]s: each breached slot's episode (from the events log, see
//! [`super::events`]) and the last ordinal used in it, so its next order continues the
//! episode; an open order is rebuilt under its own id (and not sent again).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use std::collections::BTreeMap;

use crate::dispatch::{Completion, Executor, LiquidationOrder, Outcome, ResumePoint, SubmitError};
use crate::feed::{FrameLog, FrameLogError};
use crate::guard::OracleGuard;
use crate::pipeline::FeedMsg;

use super::{DurableState, Journal, JournalConfig, JournalError, OrderRecord, OrderState, Record, Recovery};

/// The feed side: account deltas and ticks, one record per feed message.
pub struct BookJournal {
    j: Journal,
    /// Messages refused by the journal's checks (journaled as a `Param` so counts stay aligned).
    pub refused: u64,
}

impl BookJournal {
    /// Opens (or recovers) `dir/book`.
    pub fn open(
        dir: &Path,
        slots: usize,
        assets: usize,
        cfg: JournalConfig,
    ) -> Result<(BookJournal, Recovery), JournalError> {
        let (j, r) = Journal::open(&dir.join("book"), slots, assets, cfg)?;
        Ok((BookJournal { j, refused: 0 }, r))
    }

    /// The recovered (and current) state.
    pub fn state(&self) -> &DurableState {
        self.j.state()
    }

    /// Replayed feed messages journaled so far: the resume point of the replay (one record per
    /// message; live frames are counted apart).
    pub fn messages(&self) -> u64 {
        self.j.state().seq - self.j.state().live_frames
    }

    /// Replayed messages and live frames journaled so far: the position (and so the sequence
    /// number in scans and events) of the next one. Equal to [`messages`](Self::messages)
    /// when no live frame was taken.
    pub fn position(&self) -> u64 {
        self.j.state().seq
    }

    /// Last frame number journaled from live stream `source`.
    pub fn live_seq(&self, source: u8) -> Option<u64> {
        self.j.state().live_seq.get(&source).copied()
    }

    /// Journals one feed message (`ts_ns`: its oracle or recorded time). A message the state
    /// refuses (an unknown slot, say) is journaled as a `Param` naming it, so every message
    /// takes exactly one record.
    pub fn record(&mut self, msg: &FeedMsg, ts_ns: i64) -> Result<(), JournalError> {
        let Some(rec) = change(msg, ts_ns) else { return Ok(()) };
        match self.j.append(&rec) {
            Err(JournalError::Refused(_)) => {
                self.refused += 1;
                let n = self.j.state().seq + 1;
                self.j.append(&Record::Param { name: "refused_message".into(), value: n.to_string() })?;
                Ok(())
            }
            r => r.map(|_| ()),
        }
    }

    /// Journals a frame taken from live stream `source` with frame number `seq`. A frame the
    /// state refuses is not journaled (the caller must then not apply it): `Err(Refused)`.
    pub fn record_live(
        &mut self,
        source: u8,
        seq: u64,
        msg: &FeedMsg,
        ts_ns: i64,
    ) -> Result<(), JournalError> {
        let Some(rec) = change(msg, ts_ns) else { return Ok(()) };
        self.j.append(&Record::Live { source, seq, record: Box::new(rec) }).map(|_| ())
    }

    /// Reports the duration of every flush to the disk to `hook` (metrics).
    pub fn on_sync(&mut self, hook: super::SyncHook) {
        self.j.on_sync(hook);
    }

    /// Flushes per the policy's timer (call when idle) and at the end.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.j.sync()
    }

    /// The messages that rebuild the recovered book in an empty engine: every asset with a
    /// price, then every account. Prices first, so each account shows its recovered state as
    /// it arrives: accounts first would show a breach while a debt asset is priced and its
    /// collateral not yet, and the dispatcher would order it (the scans after each reload
    /// message reach the dispatcher).
    pub fn reload_messages(&self) -> Vec<FeedMsg> {
        let s = self.j.state();
        let mut v: Vec<FeedMsg> = s
            .prices
            .iter()
            .zip(&s.last_ts)
            .enumerate()
            .filter(|(_, (_, ts))| **ts != i64::MIN)
            .map(|(a, (p, _))| FeedMsg::Tick { asset: a as u16, price: *p })
            .collect();
        v.extend(
            s.accounts
                .iter()
                .enumerate()
                .filter_map(|(slot, a)| a.as_ref().map(|a| FeedMsg::upsert(slot as u32, &a.terms))),
        );
        v
    }
}

/// The journal record of a feed message (`None` for the end marker).
fn change(msg: &FeedMsg, ts_ns: i64) -> Option<Record> {
    Some(match *msg {
        FeedMsg::Tick { asset, price } => Record::Tick { ts_ns, asset, price },
        FeedMsg::Upsert { slot, n, terms } => {
            Record::Upsert { account: slot as u64, slot, terms: terms[..n as usize].to_vec() }
        }
        FeedMsg::Remove { slot } => Record::Remove { account: slot as u64, slot },
        FeedMsg::End => return None,
    })
}

/// A book journal shared by the replay (feed thread) and the live listeners. Each writer holds
/// the lock across journaling a message and pushing it to the engine queue, so the journal's
/// order is the order the engine applies them in.
#[derive(Clone)]
pub struct SharedBookJournal(pub Arc<Mutex<BookJournal>>);

impl FrameLog for SharedBookJournal {
    fn log_then_push(
        &self,
        source: u8,
        seq: u64,
        ts_ns: i64,
        msg: &FeedMsg,
        push: &mut dyn FnMut(u64),
    ) -> Result<(), FrameLogError> {
        let mut j = self.0.lock().map_err(|_| FrameLogError::Failed("book journal lock poisoned".into()))?;
        let at = j.position();
        j.record_live(source, seq, msg, ts_ns).map_err(|e| match e {
            JournalError::Refused(r) => FrameLogError::Refused(r.to_string()),
            e => FrameLogError::Failed(e.to_string()),
        })?;
        push(at);
        Ok(())
    }
}

/// Seeds a guard from the recovered prices (each asset's last journaled tick, spot asset-side
/// price, the value the feed listeners check), so the first update after a restart is checked
/// against it. Returns the assets seeded.
pub fn seed_guard(state: &DurableState, guard: &mut OracleGuard) -> usize {
    let mut n = 0;
    for (a, (p, ts)) in state.prices.iter().zip(&state.last_ts).enumerate() {
        if *ts != i64::MIN {
            guard.seed(a as u16, *ts, p.spot.asset as f64);
            n += 1;
        }
    }
    n
}

/// Slots whose breach cleared, handed from the engine thread to the journaled executor.
#[derive(Clone, Default)]
pub struct ClearedSlots(Arc<Mutex<Vec<u32>>>);

impl ClearedSlots {
    /// Called on the engine thread with a scan's cleared slots.
    pub fn push(&self, slots: &[u32]) {
        if !slots.is_empty() {
            self.0.lock().expect("cleared slots").extend_from_slice(slots);
        }
    }

    fn take(&self) -> Vec<u32> {
        std::mem::take(&mut *self.0.lock().expect("cleared slots"))
    }
}

/// What the journaled executor did at start.
#[derive(Clone, Debug, Default)]
pub struct OrderRecovery {
    /// Pending orders re-sent (id, slot).
    pub resent: Vec<(u64, u32)>,
    /// Sent orders awaited, their accounts not ordered again (id, slot).
    pub awaited: Vec<(u64, u32)>,
    /// Open orders closed because their account is no longer breached.
    pub closed: Vec<(u64, u32)>,
}

/// An executor whose orders go through the journal.
pub struct JournaledExecutor {
    inner: Box<dyn Executor>,
    j: Journal,
    name: String,
    resume: Vec<ResumePoint>,
    /// Slots with an order from before the restart: the first new order for each is not sent.
    covered: BTreeSet<u32>,
    cleared: ClearedSlots,
    fake: Vec<Completion>,
    inner_done: Vec<Completion>,
    /// Orders not sent because the restart found one open for the account.
    pub suppressed: u64,
    /// Journal write failures (the order was then refused).
    pub journal_errors: u64,
}

impl JournalError {
    fn submit(&self, executor: &str, order: u64) -> SubmitError {
        SubmitError::Io { executor: executor.into(), order, source: std::io::Error::other(self.to_string()) }
    }
}

impl JournaledExecutor {
    /// Opens (or recovers) `dir/orders`, reconciles its open orders with `breached` (the
    /// recovered book's breached slots, each with its breach episode), re-sends pending orders
    /// through `inner`.
    pub fn open(
        dir: &Path,
        slots: usize,
        assets: usize,
        cfg: JournalConfig,
        mut inner: Box<dyn Executor>,
        breached: &BTreeMap<u32, u64>,
        cleared: ClearedSlots,
    ) -> Result<(JournaledExecutor, Recovery, OrderRecovery), JournalError> {
        let (mut j, rec) = Journal::open(&dir.join("orders"), slots, assets, cfg)?;
        let mut or = OrderRecovery::default();
        let mut covered = BTreeSet::new();
        let open: Vec<(OrderRecord, OrderState)> =
            j.state().orders.values().map(|t| (t.order.clone(), t.state)).collect();
        for (o, st) in open {
            // An order of an earlier episode of the slot belongs to a breach that cleared.
            let current = breached.get(&o.slot).is_some_and(|&e| o.ordinal == 0 || e == o.episode);
            if !current {
                j.append(&Record::OrderDone {
                    id: o.id,
                    outcome: "breach cleared before the restart".into(),
                })?;
                or.closed.push((o.id, o.slot));
                continue;
            }
            covered.insert(o.slot);
            if st == OrderState::Sent {
                or.awaited.push((o.id, o.slot));
                continue;
            }
            let Ok(mut order) = o.order::<LiquidationOrder>() else {
                tracing::warn!(
                    order = o.id,
                    "journal: pending order {} has an unreadable body; reported, not re-sent",
                    o.id
                );
                continue;
            };
            order.id = o.id;
            match inner.submit(&order) {
                Ok(()) => {
                    j.append(&Record::OrderSent { id: o.id, attempt: o.attempt })?;
                    or.resent.push((o.id, o.slot));
                }
                Err(e) => {
                    tracing::warn!(order = o.id, "journal: pending order {} could not be re-sent: {e}", o.id)
                }
            }
        }
        j.sync()?;
        let resume = resume_points(j.state(), breached, &covered);
        let name = format!("{}+journal", inner.name());
        let ex = JournaledExecutor {
            inner,
            j,
            name,
            resume,
            covered,
            cleared,
            fake: Vec::new(),
            inner_done: Vec::new(),
            suppressed: 0,
            journal_errors: 0,
        };
        Ok((ex, rec, or))
    }

    /// The journal's state.
    pub fn state(&self) -> &DurableState {
        self.j.state()
    }

    fn close_cleared(&mut self) {
        let cleared = self.cleared.take();
        if cleared.is_empty() {
            return;
        }
        let set: BTreeSet<u32> = cleared.into_iter().collect();
        for s in &set {
            self.covered.remove(s);
        }
        let done: Vec<u64> = self
            .j
            .state()
            .orders
            .values()
            .filter(|t| set.contains(&t.order.slot))
            .map(|t| t.order.id)
            .collect();
        for id in done {
            if let Err(e) = self.j.append(&Record::OrderDone { id, outcome: "breach cleared".into() }) {
                self.journal_errors += 1;
                log_journal_error(self.journal_errors, &e);
            }
        }
    }

    /// Reports the duration of every flush to the disk to `hook` (metrics).
    pub fn on_sync(&mut self, hook: super::SyncHook) {
        self.j.on_sync(hook);
    }

    /// Flushes the journal.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.j.sync()
    }
}

/// Logs the `n`th journal error of the dispatch thread when `n` is a power of two (a failing
/// disk fails every poll: the log gets 1, 2, 4, 8, ... with the count, not a line a poll).
fn log_journal_error(n: u64, e: &JournalError) {
    if n.is_power_of_two() {
        tracing::error!(errors = n, "journal: {e} ({n} journal errors so far)");
    }
}

impl Executor for JournaledExecutor {
    fn name(&self) -> &str {
        &self.name
    }

    fn link_stats(&self) -> crate::dispatch::LinkStats {
        self.inner.link_stats()
    }

    fn submit(&mut self, order: &LiquidationOrder) -> Result<(), SubmitError> {
        self.close_cleared();
        if order.attempt <= 1 && self.covered.remove(&order.slot) {
            // Ordered before the restart for this same breach: do not send it again.
            self.suppressed += 1;
            self.fake.push(Completion { id: order.id, attempt: order.attempt, outcome: Outcome::Sent });
            return Ok(());
        }
        let jid = order.id;
        let rec = OrderRecord::of(jid, order.account, order.slot, order.attempt, order)
            .map_err(|e| SubmitError::Io { executor: self.name.clone(), order: order.id, source: e.into() })?
            .keyed(order.episode, order.ordinal);
        if let Err(e) = self.j.append(&Record::OrderPending(rec)) {
            self.journal_errors += 1;
            return Err(e.submit(&self.name, order.id));
        }
        self.inner.submit(order)?;
        if let Err(e) = self.j.append(&Record::OrderSent { id: jid, attempt: order.attempt }) {
            self.journal_errors += 1;
            tracing::error!(
                order = jid,
                errors = self.journal_errors,
                "journal: order {jid} sent but not journaled as sent: {e}"
            );
        }
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Completion>) {
        self.close_cleared();
        out.append(&mut self.fake);
        self.inner_done.clear();
        self.inner.poll(&mut self.inner_done);
        for c in &self.inner_done {
            let finished = matches!(c.outcome, Outcome::Filled { .. } | Outcome::Rejected(_));
            if finished && self.j.state().orders.contains_key(&c.id) {
                let outcome = serde_json::to_string(&c.outcome).unwrap_or_default();
                if let Err(e) = self.j.append(&Record::OrderDone { id: c.id, outcome }) {
                    self.journal_errors += 1;
                    log_journal_error(self.journal_errors, &e);
                }
            }
        }
        out.append(&mut self.inner_done);
        if let Err(e) = self.j.sync_due() {
            self.journal_errors += 1;
            log_journal_error(self.journal_errors, &e);
        }
    }

    fn resume_points(&self) -> Vec<ResumePoint> {
        self.resume.clone()
    }
}

/// Where each breached slot's episode stands: the last ordinal the journal holds for it (one
/// less while its order is still open, so the dispatcher rebuilds that order under its own id
/// and the covered-slot rule keeps it from being sent again).
fn resume_points(
    state: &DurableState,
    breached: &BTreeMap<u32, u64>,
    covered: &BTreeSet<u32>,
) -> Vec<ResumePoint> {
    // (slot, episode) -> last ordinal; a slot reused by another account has its own episodes.
    let mut last: HashMap<(u32, u64), u32> = HashMap::new();
    for l in state.last_order.values() {
        let n = last.entry((l.slot, l.episode)).or_default();
        *n = (*n).max(l.ordinal);
    }
    breached
        .iter()
        .map(|(&slot, &episode)| {
            let n = last.get(&(slot, episode)).copied().unwrap_or(0);
            let ordinal = if covered.contains(&slot) { n.saturating_sub(1) } else { n };
            ResumePoint { slot, episode, ordinal }
        })
        .collect()
}
