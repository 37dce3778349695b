//! The dispatcher's ranking of its backlog, kept between pumps and changed only where the
//! backlog or the prices change.
//!
//! In a crash the backlog holds hundreds of thousands of accounts while at most
//! `max_in_flight` orders go out per pump, and the dispatcher pumps on every scan and every
//! answer. Ranking afresh each time made a pump O(backlog) and capped the orders sent per second;
//! taking the ranking again on every price move or scan still cost a triage per breached account
//! per tick. Now:
//! - an account enters the ranking when it breaches or its wait ends, and leaves it when it is
//!   taken, cleared or superseded (an entry carries a ticket; a slot's live ticket is
//!   kept in a map, so a stale entry is dropped when it surfaces): O(log backlog) each;
//! - a key is the account's value at risk, moved only by the prices of some assets
//!   ([`super::sizing::RankKey::moves`]);
//! - an account whose key is one term (a single debt, or a single market held) is ranked in that
//!   term's group, ordered by the term's size: one price values the whole group, so its order
//!   holds whatever that price does (while it is not 0) and a price move re-keys no one in it;
//! - the other accounts are ranked together, and a move re-keys those that hold a moved
//!   asset's bit (a tick of a collateral asset re-keys no one);
//! - each group, and the rest, is a [`Run`]: the entries ranked at once are sorted lazily in
//!   widening chunks from a cursor, those that joined since wait in a heap, and taking merges
//!   the two; a take merges the runs' heads at the prices of the day.
//!
//! A re-key, and the compaction of stale entries, rebuilds the untaken entries of the rest in
//! one pass (O(entries), sequential; a key is recomputed from the entry's own terms, and only an
//! account with more than two is read from the book). So a price move costs O(accounts with more
//! than one term), not O(backlog); a take costs O(log backlog + groups).

use std::collections::BinaryHeap;

use hashbrown::HashMap;
use liqscan_hdl::abi::PriceEntry;

use super::sizing::{KeyTerms, asset_bit};

/// A backlog entry ranked for sending.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    /// Value at risk: the debt's value at the ranking's prices, or a pre-built order's. (In a
    /// group, the term's size until the entry is taken.)
    pub key: i128,
    /// `key` at other prices, where it fits (a re-key then reads no account).
    pub terms: KeyTerms,
    pub slot: u32,
    pub account: u64,
    /// Assets whose price moves `key` (bits of [`asset_bit`]); 0 for a pre-built order's.
    pub moves: u64,
    /// The ranking's count when the entry joined: only a slot's latest entry is live. (A u32
    /// wraps after 4 G entries; a stale entry lives at most until the next compaction.)
    ticket: u32,
}

impl Candidate {
    /// A candidate keyed at the ranking's prices.
    pub fn new(key: i128, moves: u64, terms: KeyTerms, slot: u32, account: u64) -> Candidate {
        Candidate { key, terms, slot, account, moves, ticket: 0 }
    }
}

/// Entries in rank order by their `key`: those ranked at once sorted lazily in widening chunks
/// from a cursor, and those that joined since in a heap; taking merges the two.
#[derive(Debug, Default)]
struct Run {
    cands: Vec<Candidate>,
    /// `cands[..sorted]` is in rank order; `cands[next..]` not taken yet.
    sorted: usize,
    next: usize,
    chunk: usize,
    rejoined: BinaryHeap<Ranked>,
}

/// Where a run's next entry is.
enum Head {
    Sorted,
    Rejoined,
}

impl Run {
    /// Empties the run; its first sort takes `first_chunk` entries.
    fn clear(&mut self, first_chunk: usize) {
        self.cands.clear();
        self.rejoined.clear();
        self.reset(first_chunk);
    }

    /// `cands` is to be sorted again from the start.
    fn reset(&mut self, first_chunk: usize) {
        self.sorted = 0;
        self.next = 0;
        self.chunk = first_chunk;
    }

    /// Entries held, live or stale.
    fn held(&self) -> usize {
        self.cands.len() - self.next + self.rejoined.len()
    }

    /// The untaken entries, in no order, in the run's own vector (no copy of the sorted
    /// ones); the run is left empty, to be sorted from the start.
    fn untaken(&mut self, first_chunk: usize) -> Vec<Candidate> {
        let mut all = std::mem::take(&mut self.cands);
        all.drain(..self.next);
        all.extend(self.rejoined.drain().map(|r| r.0));
        self.reset(first_chunk);
        all
    }

    fn head(&mut self) -> Option<Head> {
        if self.next == self.sorted && self.sorted < self.cands.len() {
            let (start, end) = (self.sorted, (self.sorted + self.chunk).min(self.cands.len()));
            if end < self.cands.len() {
                self.cands[start..].select_nth_unstable_by(end - start - 1, by_rank);
            }
            self.cands[start..end].sort_unstable_by(by_rank);
            self.sorted = end;
            self.chunk *= 2;
        }
        let sorted = self.cands.get(self.next).filter(|_| self.next < self.sorted);
        match (sorted, self.rejoined.peek()) {
            (Some(c), Some(r)) if by_rank(&r.0, c).is_lt() => Some(Head::Rejoined),
            (Some(_), _) => Some(Head::Sorted),
            (None, Some(_)) => Some(Head::Rejoined),
            (None, None) => None,
        }
    }

    /// The first entry in rank order, left in the run.
    fn peek(&mut self) -> Option<Candidate> {
        match self.head()? {
            Head::Sorted => Some(self.cands[self.next]),
            Head::Rejoined => self.rejoined.peek().map(|r| r.0),
        }
    }

    /// The first entry in rank order, taken out.
    fn pop(&mut self) -> Option<Candidate> {
        match self.head()? {
            Head::Sorted => {
                self.next += 1;
                Some(self.cands[self.next - 1])
            }
            Head::Rejoined => self.rejoined.pop().map(|r| r.0),
        }
    }
}

/// The group of a one-term key: its asset and side (an amount owed or held).
fn group_of(terms: &KeyTerms) -> Option<(usize, u64)> {
    let (asset, owed, size) = terms.single()?;
    Some((asset as usize * 2 + usize::from(owed), size))
}

/// The quote a group's terms are valued at.
fn group_quote(prices: &[PriceEntry], group: usize) -> i128 {
    let q = prices[group / 2].spot;
    if group % 2 == 1 { q.liability } else { q.asset }.into()
}

/// The backlog in rank order: the groups of one-term keys, and the rest.
#[derive(Debug, Default)]
pub(super) struct Ranking {
    /// Entries whose key is not one term, keyed at `prices`.
    rest: Run,
    /// Entries whose key is one term, by [`group_of`], keyed by the term's size (its order at
    /// any quote but 0: a group whose quote is 0 moves to `rest`).
    groups: Vec<Run>,
    /// Groups that may hold entries.
    active: Vec<usize>,
    /// The first chunk a fresh sort takes: twice a pump's room.
    first_chunk: usize,
    /// The live entry of each slot in the ranking (its ticket).
    live: HashMap<u32, u32>,
    ticket: u32,
    /// The union of `rest`'s live entries' `moves` (a superset after entries leave).
    moves: u64,
    /// The prices the keys were taken at.
    prices: Vec<PriceEntry>,
    /// The ranking must be taken afresh (new, or a restart of the keeper).
    stale: bool,
}

/// Rank order: the larger value at risk first, then the lower slot.
fn by_rank(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.key.cmp(&a.key).then(a.slot.cmp(&b.slot))
}

/// A candidate ordered so that the heap's top is the first in rank order.
#[derive(Clone, Copy, Debug)]
struct Ranked(Candidate);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        by_rank(&other.0, &self.0)
    }
}

/// Stale entries tolerated beyond as many as the live ones before a pass drops them.
const SLACK: usize = 4096;

impl Ranking {
    /// A ranking that must be taken before use.
    pub fn new() -> Ranking {
        Ranking { stale: true, ..Ranking::default() }
    }

    /// Rank afresh at the next pump (a restart of the keeper).
    pub fn invalidate(&mut self) {
        self.stale = true;
    }

    /// What moved since the keys were taken: `None` if the ranking must be taken afresh (new,
    /// invalidated, or another number of assets), else the [`asset_bit`]s of the assets whose
    /// prices changed.
    pub fn moved(&self, prices: &[PriceEntry]) -> Option<u64> {
        if self.stale || self.prices.len() != prices.len() {
            return None;
        }
        let moved = self.prices.iter().zip(prices).enumerate().filter(|(_, (a, b))| a != b);
        Some(moved.fold(0, |m, (i, _)| m | asset_bit(i as u16)))
    }

    /// Starts a ranking at `prices`; a pump with `room` to send sorts its first chunk.
    pub fn restart(&mut self, prices: &[PriceEntry], room: usize) {
        self.first_chunk = room.max(8) * 2;
        self.rest.clear(self.first_chunk);
        self.groups.resize_with(prices.len() * 2, Run::default);
        for g in &mut self.groups {
            g.clear(self.first_chunk);
        }
        self.active.clear();
        self.live.clear();
        self.moves = 0;
        self.prices.clear();
        self.prices.extend_from_slice(prices);
        self.stale = false;
    }

    fn enter(&mut self, mut c: Candidate) -> Candidate {
        self.ticket = self.ticket.wrapping_add(1);
        c.ticket = self.ticket;
        self.live.insert(c.slot, c.ticket);
        c
    }

    /// The run an entry goes to: its group, keyed by its term's size, if it has one whose
    /// quote is not 0; else `rest`.
    fn run_for(&mut self, c: &mut Candidate) -> &mut Run {
        let group = group_of(&c.terms).filter(|&(g, _)| g < self.groups.len());
        match group.filter(|&(g, _)| group_quote(&self.prices, g) != 0) {
            Some((g, size)) => {
                c.key = size.into();
                if self.groups[g].held() == 0 && !self.active.contains(&g) {
                    self.active.push(g);
                }
                &mut self.groups[g]
            }
            None => {
                self.moves |= c.moves;
                &mut self.rest
            }
        }
    }

    /// Adds a candidate to the ranking being taken (after a restart, before the first take).
    pub fn push(&mut self, c: Candidate) {
        let mut c = self.enter(c);
        self.run_for(&mut c).cands.push(c);
    }

    /// Adds a candidate to a ranking already taken from (a breach, an account whose wait ended,
    /// a changed account). A slot's earlier entry, if any, is superseded.
    pub fn join(&mut self, c: Candidate) {
        let mut c = self.enter(c);
        self.run_for(&mut c).rejoined.push(Ranked(c));
    }

    /// Takes a slot out of the ranking (cleared by a scan).
    pub fn remove(&mut self, slot: u32) {
        self.live.remove(&slot);
    }

    /// True if the slot has a live entry.
    #[cfg(test)]
    pub fn contains(&self, slot: u32) -> bool {
        self.live.contains_key(&slot)
    }

    /// Entries held, live or stale.
    fn held(&self) -> usize {
        self.rest.held() + self.active.iter().map(|&g| self.groups[g].held()).sum::<usize>()
    }

    /// Brings the keys to `prices`, where `moved` (from [`Ranking::moved`]) says which assets'
    /// prices changed. A group keeps its order (its quote values every entry alike) unless its
    /// quote is now 0: then its entries join the rest. Each entry of the rest moved by one of
    /// them is re-keyed from its terms, or by `key` where they are not complete (`None` drops
    /// it). Without such an entry this costs nothing; otherwise one pass over the rest's untaken
    /// entries (sequential: a stale entry is re-keyed too rather than looked up), and the rest is
    /// sorted again lazily. Stale entries are dropped in a pass of their own once they
    /// outnumber the live ones, so each costs O(1) amortised.
    pub fn rekey(
        &mut self,
        prices: &[PriceEntry],
        moved: u64,
        mut key: impl FnMut(&Candidate) -> Option<i128>,
    ) {
        self.prices.clear();
        self.prices.extend_from_slice(prices);
        let compact = self.held() > 2 * self.live.len() + SLACK;
        let (mut zeroed, first_chunk) = (Vec::new(), self.first_chunk);
        let mut i = 0;
        while i < self.active.len() {
            let g = self.active[i];
            let run = &mut self.groups[g];
            if group_quote(prices, g) == 0 {
                // Every entry is worth 0 now, so the group's order is the slots': they join
                // the rest at their value.
                for mut c in run.untaken(first_chunk) {
                    c.key = c.terms.value(prices).expect("a group's entry has one term");
                    self.moves |= c.moves;
                    zeroed.push(c);
                }
            } else if compact {
                let mut kept = run.untaken(first_chunk);
                kept.retain(|c| self.live.get(&c.slot) == Some(&c.ticket));
                run.cands = kept;
            }
            if run.held() == 0 {
                self.active.swap_remove(i);
            } else {
                i += 1;
            }
        }
        if moved & self.moves == 0 && !compact && zeroed.is_empty() {
            return;
        }
        let mut all = self.rest.untaken(first_chunk);
        all.append(&mut zeroed);
        let live = &mut self.live;
        let mut moves = 0u64;
        all.retain_mut(|c| {
            if compact && live.get(&c.slot) != Some(&c.ticket) {
                return false;
            }
            if c.moves & moved != 0 {
                match c.terms.value(prices) {
                    Some(k) => c.key = k,
                    // Rare (more than two terms): the account is read, if the entry is live.
                    None if live.get(&c.slot) != Some(&c.ticket) => return false,
                    None => match key(c) {
                        Some(k) => c.key = k,
                        None => {
                            live.remove(&c.slot);
                            return false;
                        }
                    },
                }
            }
            moves |= c.moves;
            true
        });
        self.moves = moves;
        self.rest.cands = all;
    }

    /// The best live candidate not taken yet, keyed at the ranking's prices; it leaves the
    /// ranking.
    pub fn take(&mut self) -> Option<Candidate> {
        loop {
            // The runs' heads, each at its value: the best is the first in rank order.
            let mut best = self.rest.peek().map(|c| (c, None));
            let mut i = 0;
            while i < self.active.len() {
                let g = self.active[i];
                let Some(mut c) = self.groups[g].peek() else {
                    self.active.swap_remove(i);
                    continue;
                };
                c.key *= group_quote(&self.prices, g);
                if best.is_none_or(|(b, _)| by_rank(&c, &b).is_lt()) {
                    best = Some((c, Some(g)));
                }
                i += 1;
            }
            let (c, from) = best?;
            match from {
                Some(g) => self.groups[g].pop(),
                None => self.rest.pop(),
            };
            if self.live.get(&c.slot) == Some(&c.ticket) {
                self.live.remove(&c.slot);
                return Some(c);
            }
        }
    }

    /// Live candidates not taken yet.
    pub fn left(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn takes_candidates_in_rank_order(keys in prop::collection::vec(-50i128..50, 0..300), room in 0usize..40) {
            let mut r = Ranking::new();
            r.restart(&[], room);
            for (i, &key) in keys.iter().enumerate() {
                r.push(Candidate::new(key, 0, KeyTerms::default(), i as u32, i as u64));
            }
            let mut want: Vec<(i128, u32)> = keys.iter().enumerate().map(|(i, &k)| (k, i as u32)).collect();
            want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut got = Vec::new();
            while let Some(c) = r.take() {
                got.push((c.key, c.slot));
                prop_assert_eq!(r.left(), keys.len() - got.len());
            }
            prop_assert_eq!(got, want);
        }
    }

    proptest! {
        #[test]
        fn merges_rejoined_candidates_in_rank_order(
            keys in prop::collection::vec(-50i128..50, 0..200),
            late in prop::collection::vec((-50i128..50, 0usize..200), 0..40),
        ) {
            let mut r = Ranking::new();
            r.restart(&[], 4);
            for (i, &key) in keys.iter().enumerate() {
                r.push(Candidate::new(key, 0, KeyTerms::default(), i as u32, i as u64));
            }
            // Each late candidate rejoins once `at` have been taken.
            let mut late: Vec<(usize, i128, u32)> =
                late.iter().enumerate().map(|(j, &(key, at))| (at, key, (1000 + j) as u32)).collect();
            late.sort_by_key(|l| l.0);
            let mut late = late.into_iter().peekable();
            let mut avail: Vec<(i128, u32)> = keys.iter().enumerate().map(|(i, &k)| (k, i as u32)).collect();
            let mut taken = 0;
            loop {
                let due = |l: &(usize, i128, u32)| l.0 <= taken;
                while let Some((_, key, slot)) = late.next_if(due) {
                    r.join(Candidate::new(key, 0, KeyTerms::default(), slot, slot as u64));
                    avail.push((key, slot));
                }
                let Some(c) = r.take() else {
                    // Nothing left before the next one is due: it comes now.
                    let Some((_, key, slot)) = late.next() else { break };
                    r.join(Candidate::new(key, 0, KeyTerms::default(), slot, slot as u64));
                    avail.push((key, slot));
                    continue;
                };
                // What a fresh ranking of everything not taken yet would give first.
                let best = *avail.iter().min_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1))).unwrap();
                prop_assert_eq!((c.key, c.slot), best);
                avail.retain(|&x| x != best);
                taken += 1;
                prop_assert_eq!(r.left(), avail.len());
            }
            prop_assert!(avail.is_empty());
        }
    }

    fn price(x: u32) -> PriceEntry {
        let q = liqscan_hdl::abi::QuotedPrice { asset: x, liability: x };
        PriceEntry { spot: q, stressed: q }
    }

    #[test]
    fn moved_names_the_assets_whose_prices_changed() {
        let mut r = Ranking::new();
        assert_eq!(r.moved(&[price(1)]), None, "a new ranking must be taken");
        r.restart(&[price(1), price(2), price(3)], 4);
        assert_eq!(r.moved(&[price(1), price(2), price(3)]), Some(0));
        assert_eq!(r.moved(&[price(1), price(5), price(4)]), Some(0b110));
        assert_eq!(r.moved(&[price(1)]), None, "another number of assets");
        r.invalidate();
        assert_eq!(r.moved(&[price(1), price(2), price(3)]), None, "a restart of the keeper");
    }

    /// One step of a random ranking history.
    #[derive(Clone, Debug)]
    enum Op {
        Join(u32),
        Remove(u32),
        /// A new price of one asset, then a re-key.
        Move(usize, u32),
        Take(usize),
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// Joins, removals, re-keys after price moves and takes, against a model that keys
        /// every live slot afresh at each take: the same candidates in the same order, and the
        /// same count left. Each slot owes fixed amounts of three assets (often none of one),
        /// so a move re-keys only some of them.
        #[test]
        fn follows_a_model_that_keys_everything_afresh(
            owed in prop::collection::vec(prop::collection::vec(prop_oneof![Just(0i128), 0i128..20], 3), 40),
            ops in prop::collection::vec(prop_oneof![
                (0u32..40).prop_map(Op::Join),
                (0u32..40).prop_map(Op::Remove),
                (0usize..3, 0u32..9).prop_map(|(a, p)| Op::Move(a, p)),
                (1usize..6).prop_map(Op::Take),
            ], 1..120),
            room in 1usize..6,
        ) {
            let key = |slot: u32, prices: &[PriceEntry]| -> i128 {
                owed[slot as usize].iter().zip(prices).map(|(&q, p)| q * p.spot.liability as i128).sum()
            };
            let moves = |slot: u32| -> u64 {
                owed[slot as usize].iter().enumerate().filter(|(_, q)| **q != 0).fold(0, |m, (a, _)| m | asset_bit(a as u16))
            };
            // A slot owing all three assets has no complete terms: its re-key reads `key`.
            let terms = |slot: u32| -> KeyTerms {
                let mut t = KeyTerms::new();
                for (a, &q) in owed[slot as usize].iter().enumerate() {
                    t.add(a as u16, -q);
                }
                t
            };
            let mut prices = vec![price(3), price(5), price(7)];
            let mut r = Ranking::new();
            r.restart(&prices, room);
            let mut model: std::collections::BTreeSet<u32> = Default::default();
            for op in ops {
                match op {
                    Op::Join(s) => {
                        r.join(Candidate::new(key(s, &prices), moves(s), terms(s), s, s as u64));
                        model.insert(s);
                    }
                    Op::Remove(s) => {
                        r.remove(s);
                        model.remove(&s);
                    }
                    Op::Move(a, p) => {
                        prices[a] = price(p);
                        let moved = r.moved(&prices).expect("a ranking being taken");
                        let mut untouched = 0;
                        r.rekey(&prices, moved, |c| {
                            untouched += usize::from(c.moves & moved == 0);
                            Some(key(c.slot, &prices))
                        });
                        prop_assert_eq!(untouched, 0, "re-keyed an entry no move touched");
                    }
                    Op::Take(n) => {
                        for _ in 0..n {
                            let want = model.iter().map(|&s| (key(s, &prices), s)).min_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                            let got = r.take().map(|c| (c.key, c.slot));
                            prop_assert_eq!(got, want);
                            if let Some((_, s)) = want {
                                model.remove(&s);
                            }
                        }
                    }
                }
                prop_assert_eq!(r.left(), model.len());
                prop_assert_eq!(r.contains(3), model.contains(&3));
            }
        }
    }
}
