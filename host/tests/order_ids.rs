//! Order ids across breaches, answers and a keeper restart over its orders journal: no id ever
//! names two accounts (or two liquidations of one account), before or after the restart.
//!
//! A random script breaches and clears slots (each breach is a new episode, at its scan's
//! sequence number), moves a slot to a new account, and answers orders (filled, refused, or
//! not at all). Half-way the keeper "dies": the dispatcher and the journaled executor are
//! dropped without a word; a new pair is opened over the same journal, given the breached
//! slots with their episodes (as the events log gives them), and the script carries on.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;

use liqscan_hdl::abi::{PriceEntry, QuotedPrice};
use liqscan_host::dispatch::{
    AccountSource, AccountView, Completion, DispatchConfig, Dispatcher, Executor, LiquidationOrder, OrderId,
    OrderKey, Outcome, Position, RejectReason, ScanBatch, SubmitError,
};
use liqscan_host::journal::keeper::{ClearedSlots, JournaledExecutor};
use liqscan_host::journal::{FsyncPolicy, JournalConfig};
use proptest::prelude::*;

const SLOTS: u32 = 6;
const MS: u64 = 1_000_000;

struct Book(HashMap<u32, AccountView<'static>>);

impl AccountSource for Book {
    fn view(&self, slot: u32) -> Option<AccountView<'_>> {
        self.0.get(&slot).cloned()
    }
}

fn view(account: u64, slot: u32) -> AccountView<'static> {
    let p =
        |asset, amount, w| Position { asset, amount, asset_weight_ppm: w, liability_weight_ppm: 1_000_000 };
    AccountView { account, slot, positions: vec![p(0, 10, 800_000), p(1, -900, 1_000_000)].into() }
}

fn prices() -> Vec<PriceEntry> {
    let q = |p| QuotedPrice { asset: p, liability: p };
    vec![PriceEntry { spot: q(100), stressed: q(80) }, PriceEntry { spot: q(1), stressed: q(1) }]
}

/// Records every order it takes; answers what the script says.
#[derive(Clone, Default)]
struct Venue(std::rc::Rc<std::cell::RefCell<VenueState>>);

#[derive(Default)]
struct VenueState {
    taken: Vec<LiquidationOrder>,
    answers: VecDeque<Completion>,
}

impl Executor for Venue {
    fn name(&self) -> &str {
        "venue"
    }
    fn submit(&mut self, o: &LiquidationOrder) -> Result<(), SubmitError> {
        self.0.borrow_mut().taken.push(o.clone());
        Ok(())
    }
    fn poll(&mut self, out: &mut Vec<Completion>) {
        out.extend(self.0.borrow_mut().answers.drain(..));
    }
}

#[derive(Clone, Debug)]
enum Step {
    Breach(u32),
    Clear(u32),
    /// The slot's account leaves and a new one takes the slot.
    NewAccount(u32),
    /// Answer the latest order taken: 0 filled, 1 refused (busy), 2 sent.
    Answer(u8),
    Wait,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..SLOTS).prop_map(Step::Breach),
        2 => (0..SLOTS).prop_map(Step::Clear),
        1 => (0..SLOTS).prop_map(Step::NewAccount),
        3 => (0u8..3).prop_map(Step::Answer),
        2 => Just(Step::Wait),
    ]
}

struct Keeper {
    d: Dispatcher,
    x: JournaledExecutor,
    cleared: ClearedSlots,
}

fn open(dir: &Path, venue: &Venue, breached: &BTreeMap<u32, u64>) -> Keeper {
    let cfg = JournalConfig { fsync: FsyncPolicy::Never, segment_bytes: 1 << 16, snapshot_every: Some(25) };
    let cleared = ClearedSlots::default();
    let (x, _, _) = JournaledExecutor::open(
        dir,
        SLOTS as usize,
        2,
        cfg,
        Box::new(venue.clone()),
        breached,
        cleared.clone(),
    )
    .unwrap();
    let rules = DispatchConfig {
        timeout_ns: 50 * MS,
        settle_ns: 5 * MS,
        backoff_base_ns: 5 * MS,
        ..Default::default()
    };
    let mut d = Dispatcher::new(rules);
    d.resume(x.resume_points());
    Keeper { d, x, cleared }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_id_names_two_accounts_or_two_liquidations_across_a_restart(
        first in (0..SLOTS).prop_map(Step::Breach),
        rest in proptest::collection::vec(step(), 10..120),
        crash_at in 0.0f64..1.0,
    ) {
        // Every script opens with a breach, so it always has an order to check.
        let steps: Vec<Step> = std::iter::once(first).chain(rest).collect();
        let dir = tempfile::tempdir().unwrap();
        let venue = Venue::default();
        let mut book = Book((0..SLOTS).map(|s| (s, view(1000 + s as u64, s))).collect());
        let mut next_account = 2000u64;
        // Breached slots, with the scan they breached at (what the events log keeps).
        let mut breached: BTreeMap<u32, u64> = BTreeMap::new();
        let mut k = open(dir.path(), &venue, &breached);
        let crash = (steps.len() as f64 * crash_at) as usize;
        let mut now = 0u64;
        for (i, st) in steps.iter().enumerate() {
            let seq = i as u64 + 1;
            now += MS;
            if i == crash {
                drop(k);
                k = open(dir.path(), &venue, &breached);
                // The recovered book's scan reports every breached slot again, at this scan.
                let all: Vec<u32> = breached.keys().copied().collect();
                k.d.on_scan(now, &ScanBatch { seq, breached: all, ..Default::default() }, &prices(), &book, &mut k.x);
            }
            match *st {
                Step::Breach(s) if !breached.contains_key(&s) => {
                    breached.insert(s, seq);
                    k.d.on_scan(now, &ScanBatch { seq, breached: vec![s], ..Default::default() }, &prices(), &book, &mut k.x);
                }
                Step::Clear(s) if breached.contains_key(&s) => {
                    breached.remove(&s);
                    k.cleared.push(&[s]);
                    k.d.on_scan(now, &ScanBatch { seq, cleared: vec![s], ..Default::default() }, &prices(), &book, &mut k.x);
                }
                Step::NewAccount(s) if !breached.contains_key(&s) => {
                    book.0.insert(s, view(next_account, s));
                    next_account += 1;
                }
                Step::Answer(a) => {
                    let last = venue.0.borrow().taken.last().cloned();
                    if let Some(o) = last {
                        let outcome = match a {
                            0 => Outcome::Filled { repaid_value: 1, seized_value: 1 },
                            1 => Outcome::Rejected(RejectReason::Busy),
                            _ => Outcome::Sent,
                        };
                        venue.0.borrow_mut().answers.push_back(Completion { id: o.id, attempt: o.attempt, outcome });
                    }
                    k.d.poll(now, &prices(), &book, &mut k.x);
                }
                _ => k.d.poll(now, &prices(), &book, &mut k.x),
            }
        }
        let taken = venue.0.borrow().taken.clone();
        prop_assert!(!taken.is_empty());
        let mut by_id: HashMap<OrderId, OrderKey> = HashMap::new();
        for o in &taken {
            let key = OrderKey { account: o.account, episode: o.episode, ordinal: o.ordinal };
            prop_assert_eq!(o.id, key.id(), "the id is the key's");
            prop_assert!(o.ordinal >= 1);
            if let Some(old) = by_id.insert(o.id, key) {
                prop_assert_eq!(old, key, "id {} names two liquidations", o.id);
            }
        }
        // Each order is first sent once: the restarted keeper rebuilds an order the journal
        // holds as sent under its own id and does not send it again.
        let mut first: HashMap<OrderId, usize> = HashMap::new();
        for o in taken.iter().filter(|o| o.attempt == 1) {
            *first.entry(o.id).or_default() += 1;
        }
        for (id, n) in first {
            prop_assert_eq!(n, 1, "order {} first sent {} times", id, n);
        }
    }
}
