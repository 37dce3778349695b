//! [`RouterEngine`]: the card where it wins, the software engine everywhere else.
//!
//! ```text
//!   upsert ──> fits the card (terms, room)? ──yes──> card partition: the card (FailoverEngine)
//!                 │                                   AND its software mirror (card slots)
//!                 └──no──> rest: a software engine (book slots)
//!
//!   tick / batch tick ──> rest (always)
//!                     └─> the card partition on ONE side, chosen by the cost model:
//!                         card or mirror; the other side falls behind on prices and is
//!                         caught up by a batch tick the next time it is chosen
//!
//!   bitmaps (book slots) = rest's words OR the partition's bits (from the side that is current)
//! ```
//!
//! **The partition.** An account goes to the card when its terms fit the card (at most the
//! card's `term_slots`, no asset twice: [`card_holds`]) and a card slot is free; otherwise to the
//! rest. Card slots are handed out lowest first, so a bulk load in file order fills the card
//! with the book's first card-shaped accounts (in `liqscan scan`'s scan order: the accounts a
//! full scan reads, pairs after). Why first come rather than, say, the accounts holding the most
//! widely held assets: upserts arrive one by one with no look-ahead, an account keeps its card
//! slot while it stays card-shaped (nothing moves on the hot path), the choice is reproducible
//! from the message order alone, and where the card wins (docs/CROSSOVER.md: a tick of an asset
//! nearly every account holds) any large enough subset is exposed to it. An account that grows
//! past the card's terms moves to the rest; a rest account moves onto the card when an upsert
//! finds a free card slot.
//!
//! **The choice.** Per tick and per batch tick, [`CostModel`] estimates what each side would
//! cost for the card partition: the card's tick of that asset or the mirror's, or a batch tick
//! when that side has fallen behind on other assets (the catch-up). Its priors are a device
//! class's figures ([`DeviceClass`], from docs/CROSSOVER.md and docs/CORE.md) and the software
//! engine's measured figures; every call's measured time then updates a running average per
//! asset and side, so the choice follows measurement. One tick in [`PROBE_EVERY`] of an asset
//! goes to the side not chosen, so its estimate stays measured too. [`Route`] can force a side.
//!
//! **Agreement.** Both sides hold the same accounts and compute exact bitmaps of their prices,
//! so whichever side is current gives the partition's bits; the router's bitmaps are bit for
//! bit the software engine's alone over the whole book. **Faults.** The card is wrapped in a
//! [`FailoverEngine`]: a card fault mid-call is finished on its software mirror (nothing lost);
//! the router then serves the partition from its own mirror and stops calling the card.

use std::time::Instant;

use liqscan_hdl::abi::config::CardConfig;
use liqscan_hdl::abi::{Coeff, PriceEntry, card_holds, check_terms, check_terms_software};

use super::failover::{Failover, FailoverEngine};
use super::{COMPACT_AFTER, EngineError, ScanEngine, SoftwareEngine};
use crate::bitmap;

/// Where the card partition's ticks go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum Route {
    /// The side the cost model says is cheaper (the default).
    #[default]
    Measured,
    /// Always the card (while it answers).
    Card,
    /// Always the software mirror.
    Software,
}

/// What the card holds, as its registers report it ([`CardConfig`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardLimits {
    /// Accounts the card holds.
    pub accounts: usize,
    /// Most terms an account on the card may have.
    pub term_slots: usize,
    /// Lanes, for the cost model's prior.
    pub lanes: usize,
}

impl CardLimits {
    /// The limits a card's configuration registers give.
    pub fn of(cfg: &CardConfig) -> CardLimits {
        CardLimits {
            accounts: cfg.accounts as usize,
            term_slots: cfg.term_slots as usize,
            lanes: cfg.lanes.max(1) as usize,
        }
    }

    /// Whether an account with these terms fits the card (terms already validated).
    pub fn holds(&self, terms: &[Coeff]) -> bool {
        !terms.is_empty() && terms.len() <= self.term_slots && card_holds(terms)
    }
}

/// A class of card, for the cost model's prior: docs/CROSSOVER.md's table. A scan of `g` groups
/// of lanes at `s` term slots takes `g * s + 20` core cycles (docs/CORE.md, the full-scan
/// formula), at most memory-bound by the term bytes over the memory's bandwidth; a tick adds the
/// host link's round trip.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeviceClass {
    /// Name (docs/CROSSOVER.md's row).
    pub name: &'static str,
    /// Lanes.
    pub lanes: u32,
    /// Core clock, MHz.
    pub mhz: f64,
    /// Host-to-card-and-back round trip of one tick, ns (PCIe: docs/CROSSOVER.md, 1-2 us).
    pub round_trip_ns: f64,
    /// Term memory bandwidth in bytes per ns (GB/s); `None`: block RAM, the lanes read it.
    pub memory_gb_s: Option<f64>,
}

/// Bytes a term slot takes in external memory (docs/CROSSOVER.md: `b`).
const TERM_BYTES: f64 = 8.0;
/// Fixed cycles of a scan (docs/CORE.md).
const SCAN_OVERHEAD_CYCLES: f64 = 20.0;

/// The device classes of docs/CROSSOVER.md's table. Only the LFE5U-85F's clocks are placed:
/// the core at 136.84 MHz, and LiteDRAM's DDR3 controller at 90-95 MHz for its 75 MHz sys
/// clock. The DDR3 row's 0.497 GB/s is LiteDRAM's controller simulated behind a 128-bit user
/// port (0.414 words a cycle at 75 MHz: refresh and bank changes below the DDR3L's 0.6 GB/s
/// peak), the design placed as `with-extscan128`; the 64-bit port is up-converted and keeps one
/// read in flight, about 0.07 words a cycle at a 24-cycle latency
/// (bitstreams/lfe5u-85f/ddr3/STATUS.md). The other rows are that document's estimates. The
/// LFE5U-85F has no PCIe block: its round trip is the PCIe figure every other row uses.
pub const DEVICE_CLASSES: [DeviceClass; 5] = [
    DeviceClass { name: "lfe5u-85f", lanes: 16, mhz: 136.84, round_trip_ns: 1500.0, memory_gb_s: None },
    DeviceClass {
        name: "lfe5u-85f-ddr3",
        lanes: 16,
        mhz: 75.0,
        round_trip_ns: 1500.0,
        memory_gb_s: Some(0.414 * 16.0 * 75e6 / 1e9),
    },
    DeviceClass { name: "artix7-ddr3", lanes: 32, mhz: 150.0, round_trip_ns: 1500.0, memory_gb_s: Some(2.7) },
    DeviceClass {
        name: "kintex7-ddr3",
        lanes: 128,
        mhz: 200.0,
        round_trip_ns: 1500.0,
        memory_gb_s: Some(12.8),
    },
    DeviceClass { name: "u55c-hbm", lanes: 256, mhz: 300.0, round_trip_ns: 1500.0, memory_gb_s: Some(460.0) },
];

impl DeviceClass {
    /// The class named `name` (one of [`DEVICE_CLASSES`]).
    pub fn named(name: &str) -> Option<DeviceClass> {
        DEVICE_CLASSES.iter().copied().find(|d| d.name == name)
    }

    /// Estimated ns for the card to scan `accounts` accounts of `term_slots` slots and answer.
    pub fn scan_ns(&self, accounts: usize, term_slots: usize) -> f64 {
        let groups = accounts.div_ceil(self.lanes as usize) as f64;
        let compute = (groups * term_slots as f64 + SCAN_OVERHEAD_CYCLES) * 1000.0 / self.mhz;
        let memory = self.memory_gb_s.map_or(0.0, |b| accounts as f64 * term_slots as f64 * TERM_BYTES / b);
        self.round_trip_ns + compute.max(memory)
    }
}

/// Software engine priors, ns (docs/CROSSOVER.md's measured row): a tick costs about 1 us plus
/// 0.07 ns per exposed account (an all-held asset of 1 M accounts at p50 57-89 us); a full scan
/// 0.55 ns per account (1 M x 4 in 0.50-0.6 ms).
const SOFT_TICK_NS: f64 = 1000.0;
const SOFT_TICK_NS_PER_ACCOUNT: f64 = 0.07;
const SOFT_SCAN_NS_PER_ACCOUNT: f64 = 0.55;

/// One tick in this many of an asset goes to the side the model did not choose, so the
/// estimate of that side keeps being measured.
pub const PROBE_EVERY: u32 = 64;

/// Running average of a cost in ns (weight 1/8); `None` until measured. A sample above 4x the
/// average counts as 4x (a preemption must not swing the choice), as the software engine's own
/// routing costs do.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Ewma(Option<f64>);

impl Ewma {
    /// Adds a sample.
    pub fn record(&mut self, ns: f64) {
        self.0 = Some(match self.0 {
            None => ns,
            Some(m) => (m * 7.0 + ns.min(m.max(1.0) * 4.0)) / 8.0,
        });
    }

    /// The average, or `prior` before the first sample.
    pub fn or(&self, prior: f64) -> f64 {
        self.0.unwrap_or(prior)
    }
}

/// The two sides of the card partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The card.
    Card,
    /// The software mirror.
    Software,
}

/// Estimates of what a tick of each asset (and a batch tick) costs on each side: priors from
/// the device class and the software engine's figures, then measured running averages.
#[derive(Clone, Debug)]
pub struct CostModel {
    device: DeviceClass,
    card_tick: Vec<Ewma>,
    soft_tick: Vec<Ewma>,
    card_batch: Ewma,
    soft_batch: Ewma,
}

impl CostModel {
    /// No measurement yet, over `assets` assets, with `device`'s figures as the card's prior.
    pub fn new(device: DeviceClass, assets: usize) -> CostModel {
        CostModel {
            device,
            card_tick: vec![Ewma::default(); assets],
            soft_tick: vec![Ewma::default(); assets],
            card_batch: Ewma::default(),
            soft_batch: Ewma::default(),
        }
    }

    /// Estimated ns of a tick of `asset` on `side`, `exposed` accounts of the partition of
    /// `accounts` holding it, at most `term_slots` terms each.
    pub fn tick_ns(&self, side: Side, asset: u16, exposed: usize, accounts: usize, term_slots: usize) -> f64 {
        match side {
            // The card scans the exposed groups: at most one a exposed account, at most all.
            Side::Card => self.card_tick[asset as usize]
                .or(self.device.scan_ns((exposed * self.device.lanes as usize).min(accounts), term_slots)),
            Side::Software => {
                self.soft_tick[asset as usize].or(SOFT_TICK_NS + SOFT_TICK_NS_PER_ACCOUNT * exposed as f64)
            }
        }
    }

    /// Estimated ns of a batch tick (a full scan) of the partition on `side`.
    pub fn batch_ns(&self, side: Side, accounts: usize, term_slots: usize) -> f64 {
        match side {
            Side::Card => self.card_batch.or(self.device.scan_ns(accounts, term_slots)),
            Side::Software => self.soft_batch.or(SOFT_SCAN_NS_PER_ACCOUNT * accounts as f64),
        }
    }

    /// Records a measured tick of `asset` on `side`.
    pub fn record_tick(&mut self, side: Side, asset: u16, ns: f64) {
        match side {
            Side::Card => self.card_tick[asset as usize].record(ns),
            Side::Software => self.soft_tick[asset as usize].record(ns),
        }
    }

    /// Records a measured batch tick on `side`.
    pub fn record_batch(&mut self, side: Side, ns: f64) {
        match side {
            Side::Card => self.card_batch.record(ns),
            Side::Software => self.soft_batch.record(ns),
        }
    }
}

/// Why a tick went where it went: counts per side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RouteCounts {
    /// The cost model found this side cheaper.
    pub cost: u64,
    /// A probe: the side the model did not choose, to keep measuring it.
    pub probe: u64,
    /// Forced by [`Route::Card`] or [`Route::Software`].
    pub forced: u64,
    /// The card had failed over (software side only).
    pub no_card: u64,
}

impl RouteCounts {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.cost + self.probe + self.forced + self.no_card
    }
}

/// The router's counts, for the summary and the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RouteStats {
    /// Ticks of the card partition served by the card, by reason.
    pub card_ticks: RouteCounts,
    /// Ticks of the card partition served by the software mirror, by reason.
    pub software_ticks: RouteCounts,
    /// Batch ticks of the card partition served by the card, by reason.
    pub card_batches: RouteCounts,
    /// Batch ticks served by the software mirror, by reason.
    pub software_batches: RouteCounts,
    /// Ticks served as a batch tick on their side because it had fallen behind on other
    /// assets (counted in the ticks above too).
    pub catch_ups: u64,
    /// Accounts on the card (and its mirror) now.
    pub card_accounts: usize,
    /// Accounts only on software now (no room on the card, or terms it cannot hold).
    pub host_accounts: usize,
    /// Card slots.
    pub card_capacity: usize,
}

const NONE: u32 = u32::MAX;

/// The router; see the [module](self) doc.
pub struct RouterEngine {
    slots: usize,
    limits: CardLimits,
    route: Route,
    /// The card, behind its fail-over engine (card slots). Not called once it has failed over.
    card: FailoverEngine,
    card_alive: bool,
    /// The card partition's software mirror (card slots).
    mirror: SoftwareEngine,
    /// Every account the card does not hold (book slots).
    rest: SoftwareEngine,
    /// Upserts and removes of the rest since it was last built by a bulk load.
    rest_changes: usize,
    /// Which side's bitmaps the partition's bits come from: the one not behind on any price.
    current: Side,
    /// The side whose bits the book bitmaps show (`current` after every call).
    shown: Side,
    /// Assets whose price the side not current has not been given.
    behind: usize,
    book_to_card: Vec<u32>,
    card_to_book: Vec<u32>,
    /// Free card slots, highest first (popped lowest first).
    free: Vec<u32>,
    /// Card partition accounts holding each asset.
    exposure: Vec<u32>,
    /// Most terms of any account put on the card (the card scans that many slots).
    card_terms: usize,
    prices: Vec<PriceEntry>,
    /// The partition's bits in book slots.
    part_breach: Vec<u64>,
    part_at_risk: Vec<u64>,
    breach: Vec<u64>,
    at_risk: Vec<u64>,
    /// Book words to recompute (bit set and list).
    touched: Vec<u64>,
    touched_list: Vec<u32>,
    /// Book words changed since the last `changed_words`.
    dirty: Vec<u64>,
    dirty_list: Vec<u32>,
    scratch: Vec<u32>,
    model: CostModel,
    since_probe: Vec<u32>,
    stats: RouteStats,
}

impl RouterEngine {
    /// A router over `slots` book slots and `assets` assets, the card partition on `card` (an
    /// engine as new, such as [`LinkEngine`](crate::link::LinkEngine), whose slots are the card
    /// slots used; at most `limits.accounts`), with `device`'s figures as the cost model's prior.
    pub fn new(
        card: Box<dyn ScanEngine>,
        limits: CardLimits,
        device: DeviceClass,
        slots: usize,
        assets: usize,
    ) -> Result<RouterEngine, EngineError> {
        let cap = card.slots().min(limits.accounts);
        if card.assets() != assets {
            return Err(EngineError::PriceVectorLength { got: card.assets(), assets });
        }
        let words = bitmap::words_for(slots);
        Ok(RouterEngine {
            slots,
            limits,
            route: Route::Measured,
            card: FailoverEngine::new(card),
            card_alive: true,
            mirror: SoftwareEngine::new(cap, assets),
            rest: SoftwareEngine::new(slots, assets),
            rest_changes: 0,
            current: Side::Card,
            shown: Side::Card,
            behind: 0,
            book_to_card: vec![NONE; slots],
            card_to_book: vec![NONE; cap],
            free: (0..cap as u32).rev().collect(),
            exposure: vec![0; assets],
            card_terms: 1,
            prices: vec![PriceEntry::default(); assets],
            part_breach: vec![0; words],
            part_at_risk: vec![0; words],
            breach: vec![0; words],
            at_risk: vec![0; words],
            touched: vec![0; bitmap::words_for(words)],
            touched_list: Vec::with_capacity(words),
            dirty: vec![0; bitmap::words_for(words)],
            dirty_list: Vec::with_capacity(words),
            scratch: Vec::new(),
            model: CostModel::new(device, assets),
            since_probe: vec![0; assets],
            stats: RouteStats { card_capacity: cap, ..RouteStats::default() },
        })
    }

    /// Forces a side, or lets the cost model choose ([`Route::Measured`], the default).
    pub fn with_route(mut self, route: Route) -> Self {
        self.route = route;
        self
    }

    /// The cost model (its estimates, for reports and tests).
    pub fn cost_model(&self) -> &CostModel {
        &self.model
    }

    /// The card slot of the account in book `slot`, if it is on the card.
    pub fn card_slot(&self, slot: u32) -> Option<u32> {
        self.book_to_card.get(slot as usize).copied().filter(|&c| c != NONE)
    }

    /// The fail-over engine around the card.
    pub fn card(&self) -> &FailoverEngine {
        &self.card
    }

    fn check_slot(&self, slot: u32) -> Result<(), EngineError> {
        if (slot as usize) < self.slots {
            Ok(())
        } else {
            Err(EngineError::SlotOutOfRange { slot, slots: self.slots })
        }
    }

    fn side(&mut self, s: Side) -> &mut dyn ScanEngine {
        match s {
            Side::Card => &mut self.card,
            Side::Software => &mut self.mirror,
        }
    }

    fn other(s: Side) -> Side {
        match s {
            Side::Card => Side::Software,
            Side::Software => Side::Card,
        }
    }

    /// Notices a card that failed over (inside a call; its fail-over engine finished the call
    /// exactly): from then on the mirror serves, caught up to the prices first.
    fn check_card(&mut self) -> Result<(), EngineError> {
        if self.card_alive && !self.card.is_card() {
            self.card_alive = false;
            if self.current == Side::Card {
                if self.mirror.prices() != &self.prices[..] {
                    self.mirror.batch_tick(&self.prices)?;
                }
                self.current = Side::Software;
            }
            self.behind = 0;
        }
        Ok(())
    }

    /// Puts `terms` on the card partition in card slot `cs` (both sides; the card while alive).
    fn part_upsert(&mut self, cs: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        self.mirror.upsert(cs, terms)?;
        if self.card_alive {
            self.card.upsert(cs, terms)?;
            self.check_card()?;
        }
        Ok(())
    }

    fn part_remove(&mut self, cs: u32) -> Result<(), EngineError> {
        self.mirror.remove(cs)?;
        if self.card_alive {
            self.card.remove(cs)?;
            self.check_card()?;
        }
        Ok(())
    }

    /// Takes the account in book `slot` off the card partition: its card slot is freed and its
    /// partition bits cleared.
    fn unassign(&mut self, slot: u32) -> Result<(), EngineError> {
        let cs = self.book_to_card[slot as usize];
        for t in self.mirror.terms(cs) {
            self.exposure[t.asset as usize] -= 1;
        }
        self.part_remove(cs)?;
        self.book_to_card[slot as usize] = NONE;
        self.card_to_book[cs as usize] = NONE;
        self.free.push(cs);
        self.stats.card_accounts -= 1;
        let (w, b) = (slot as usize / 64, slot % 64);
        self.part_breach[w] &= !(1 << b);
        self.part_at_risk[w] &= !(1 << b);
        self.touch(w);
        Ok(())
    }

    fn touch(&mut self, w: usize) {
        if !bitmap::get(&self.touched, w) {
            bitmap::set(&mut self.touched, w, true);
            self.touched_list.push(w as u32);
        }
    }

    /// Copies card word `cw` of `side`'s bitmaps into the partition's book bits.
    fn scatter(&mut self, side: Side, cw: usize) {
        let (b, a) = match side {
            Side::Card => (self.card.breach()[cw], self.card.at_risk()[cw]),
            Side::Software => (self.mirror.breach()[cw], self.mirror.at_risk()[cw]),
        };
        let base = cw * 64;
        let end = (base + 64).min(self.card_to_book.len());
        for cs in base..end {
            let slot = self.card_to_book[cs];
            if slot == NONE {
                continue;
            }
            let (w, bit) = (slot as usize / 64, 1u64 << (slot % 64));
            let nb = if b >> (cs - base) & 1 == 1 {
                self.part_breach[w] | bit
            } else {
                self.part_breach[w] & !bit
            };
            let na = if a >> (cs - base) & 1 == 1 {
                self.part_at_risk[w] | bit
            } else {
                self.part_at_risk[w] & !bit
            };
            if nb != self.part_breach[w] || na != self.part_at_risk[w] {
                self.part_breach[w] = nb;
                self.part_at_risk[w] = na;
                self.touch(w);
            }
        }
    }

    /// Brings the book bitmaps up to date after a call: the rest's changed words, and the
    /// current side's changed card words. When the current side is not the one the book showed
    /// (a switch), the card words where the book may be wrong are rescattered: those either
    /// side changed since the last call, and those where the two sides differ (the book showed
    /// the old side's). The other side's changes are forgotten otherwise.
    fn sync_bits(&mut self) {
        let mut words = std::mem::take(&mut self.scratch);
        words.clear();
        self.rest.changed_words(&mut words);
        for &w in &words {
            self.touch(w as usize);
        }
        words.clear();
        let (cur, shown) = (self.current, self.shown);
        self.side(cur).changed_words(&mut words);
        let keep = words.len();
        self.side(Self::other(cur)).changed_words(&mut words);
        if cur == shown {
            words.truncate(keep);
        } else {
            for cw in 0..self.mirror.breach().len() {
                let (c, m) = (&self.card, &self.mirror);
                if c.breach()[cw] != m.breach()[cw] || c.at_risk()[cw] != m.at_risk()[cw] {
                    words.push(cw as u32);
                }
            }
            self.shown = cur;
        }
        for &cw in &words {
            self.scatter(cur, cw as usize);
        }
        words.clear();
        self.scratch = words;
        for i in 0..self.touched_list.len() {
            let w = self.touched_list[i] as usize;
            bitmap::set(&mut self.touched, w, false);
            let nb = self.rest.breach()[w] | self.part_breach[w];
            let na = self.rest.at_risk()[w] | self.part_at_risk[w];
            if nb != self.breach[w] || na != self.at_risk[w] {
                self.breach[w] = nb;
                self.at_risk[w] = na;
                if !bitmap::get(&self.dirty, w) {
                    bitmap::set(&mut self.dirty, w, true);
                    self.dirty_list.push(w as u32);
                }
            }
        }
        self.touched_list.clear();
    }

    /// The side a tick (`asset` Some) or batch tick of the partition goes to, and why.
    fn choose(&mut self, asset: Option<u16>) -> (Side, Why) {
        if !self.card_alive {
            return (Side::Software, Why::NoCard);
        }
        match self.route {
            Route::Card => return (Side::Card, Why::Forced),
            Route::Software => return (Side::Software, Why::Forced),
            Route::Measured => {}
        }
        let (c, s) = (self.estimate(Side::Card, asset), self.estimate(Side::Software, asset));
        // Ties go to software: the CPU is there anyway.
        let best = if c < s { Side::Card } else { Side::Software };
        if let Some(a) = asset {
            let k = &mut self.since_probe[a as usize];
            *k += 1;
            if *k >= PROBE_EVERY {
                *k = 0;
                return (Self::other(best), Why::Probe);
            }
        }
        (best, Why::Cost)
    }

    /// Estimated ns of serving the partition's tick of `asset` (a batch tick: `None`) on
    /// `side`, counting the catch-up when that side is behind on other assets.
    pub fn estimate(&self, side: Side, asset: Option<u16>) -> f64 {
        let (n, t) = (self.stats.card_accounts, self.card_terms);
        match asset {
            Some(a) if self.behind_only(side, a) => {
                self.model.tick_ns(side, a, self.exposure[a as usize] as usize, n, t)
            }
            _ => self.model.batch_ns(side, n, t),
        }
    }

    /// True when `side` is behind on at most `asset` (a tick of it catches it up).
    fn behind_only(&self, side: Side, asset: u16) -> bool {
        if self.current == side || self.behind == 0 {
            return true;
        }
        let p = match side {
            Side::Card => self.card.prices()[asset as usize],
            Side::Software => self.mirror.prices()[asset as usize],
        };
        self.behind == usize::from(p != self.prices[asset as usize])
    }

    fn count(&mut self, side: Side, why: Why, batch: bool) {
        let c = match (side, batch) {
            (Side::Card, false) => &mut self.stats.card_ticks,
            (Side::Software, false) => &mut self.stats.software_ticks,
            (Side::Card, true) => &mut self.stats.card_batches,
            (Side::Software, true) => &mut self.stats.software_batches,
        };
        match why {
            Why::Cost => c.cost += 1,
            Why::Probe => c.probe += 1,
            Why::Forced => c.forced += 1,
            Why::NoCard => c.no_card += 1,
        }
    }

    /// The other side's price of asset `a` (`None`: the card, gone).
    fn other_price(&self, side: Side, a: usize) -> Option<PriceEntry> {
        match Self::other(side) {
            Side::Card if !self.card_alive => None,
            Side::Card => Some(self.card.prices()[a]),
            Side::Software => Some(self.mirror.prices()[a]),
        }
    }

    /// Assets where the side not current has a price other than the router's.
    fn count_behind(&self) -> usize {
        let other = match Self::other(self.current) {
            Side::Card if !self.card_alive => return 0,
            Side::Card => self.card.prices(),
            Side::Software => self.mirror.prices(),
        };
        other.iter().zip(&self.prices).filter(|(a, b)| a != b).count()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    Cost,
    Probe,
    Forced,
    NoCard,
}

impl ScanEngine for RouterEngine {
    fn name(&self) -> &'static str {
        "router"
    }

    fn slots(&self) -> usize {
        self.slots
    }

    fn assets(&self) -> usize {
        self.prices.len()
    }

    fn upsert(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        self.check_slot(slot)?;
        let assets = self.prices.len();
        check_terms(terms, assets)
            .or_else(|_| check_terms_software(terms, assets))
            .map_err(|source| EngineError::BadTerms { slot, source })?;
        let fits = self.limits.holds(terms);
        let on_card = self.book_to_card[slot as usize] != NONE;
        if on_card && !fits {
            self.unassign(slot)?;
        }
        if fits && (on_card || !self.free.is_empty()) {
            let cs = if on_card {
                let cs = self.book_to_card[slot as usize];
                for t in self.mirror.terms(cs) {
                    self.exposure[t.asset as usize] -= 1;
                }
                cs
            } else {
                if !self.rest.terms(slot).is_empty() {
                    self.rest.remove(slot)?;
                    self.rest_changes += 1;
                    self.stats.host_accounts -= 1;
                }
                let cs = self.free.pop().expect("a free card slot");
                self.book_to_card[slot as usize] = cs;
                self.card_to_book[cs as usize] = slot;
                self.stats.card_accounts += 1;
                cs
            };
            for t in terms {
                self.exposure[t.asset as usize] += 1;
            }
            self.card_terms = self.card_terms.max(terms.len());
            self.part_upsert(cs, terms)?;
        } else {
            if self.rest.terms(slot).is_empty() && !terms.is_empty() {
                self.stats.host_accounts += 1;
            }
            if terms.is_empty() && !self.rest.terms(slot).is_empty() {
                self.stats.host_accounts -= 1;
            }
            self.rest.upsert(slot, terms)?;
            self.rest_changes += 1;
        }
        self.sync_bits();
        Ok(())
    }

    fn remove(&mut self, slot: u32) -> Result<(), EngineError> {
        self.check_slot(slot)?;
        if self.book_to_card[slot as usize] != NONE {
            self.unassign(slot)?;
        } else {
            if !self.rest.terms(slot).is_empty() {
                self.stats.host_accounts -= 1;
            }
            self.rest.remove(slot)?;
            self.rest_changes += 1;
        }
        self.sync_bits();
        Ok(())
    }

    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError> {
        let a = asset as usize;
        if a >= self.prices.len() {
            return Err(EngineError::AssetOutOfRange { asset, assets: self.prices.len() });
        }
        self.rest.tick(asset, price)?;
        let (side, why) = self.choose(Some(asset));
        self.count(side, why, false);
        let catch_up = !self.behind_only(side, asset);
        let old = self.prices[a];
        self.prices[a] = price;
        let t0 = Instant::now();
        if catch_up {
            self.stats.catch_ups += 1;
            let RouterEngine { card, mirror, prices, .. } = self;
            match side {
                Side::Card => card.batch_tick(prices)?,
                Side::Software => mirror.batch_tick(prices)?,
            }
            self.model.record_batch(side, t0.elapsed().as_nanos() as f64);
        } else {
            self.side(side).tick(asset, price)?;
            self.model.record_tick(side, asset, t0.elapsed().as_nanos() as f64);
        }
        let other_was = self.other_price(side, a);
        let switched = side != self.current;
        self.current = side;
        self.behind = match other_was {
            // Only this asset's price can have changed for the other side.
            Some(p) if !switched && !catch_up => {
                self.behind + usize::from(p != price) - usize::from(p != old)
            }
            _ => self.count_behind(),
        };
        self.check_card()?;
        self.sync_bits();
        Ok(())
    }

    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError> {
        if prices.len() != self.prices.len() {
            return Err(EngineError::PriceVectorLength { got: prices.len(), assets: self.prices.len() });
        }
        self.rest.batch_tick(prices)?;
        let (side, why) = self.choose(None);
        self.count(side, why, true);
        self.prices.copy_from_slice(prices);
        let t0 = Instant::now();
        self.side(side).batch_tick(prices)?;
        self.model.record_batch(side, t0.elapsed().as_nanos() as f64);
        self.current = side;
        self.behind = self.count_behind();
        self.check_card()?;
        self.sync_bits();
        Ok(())
    }

    fn prices(&self) -> &[PriceEntry] {
        &self.prices
    }

    #[inline]
    fn breach(&self) -> &[u64] {
        &self.breach
    }

    #[inline]
    fn at_risk(&self) -> &[u64] {
        &self.at_risk
    }

    fn changed_words(&mut self, out: &mut Vec<u32>) {
        for &w in &self.dirty_list {
            bitmap::set(&mut self.dirty, w as usize, false);
        }
        out.extend_from_slice(&self.dirty_list);
        self.dirty_list.clear();
    }

    /// After many upserts (at least [`COMPACT_AFTER`] of the slots), rebuilds the rest by the
    /// software engine's bulk load ([`SoftwareEngine::load`]: each index built in one pass),
    /// the structure its ticks are measured on, rather than what account-by-account upserts
    /// left; then compacts. Allocates: off the hot path, as the trait says. Same bits.
    fn loaded(&mut self) {
        if self.rest_changes * COMPACT_AFTER.1 >= self.slots * COMPACT_AFTER.0 {
            let mut rest = SoftwareEngine::new(self.slots, self.prices.len());
            let old = &self.rest;
            let accounts = (0..self.slots as u32).map(|s| (s, old.terms(s))).filter(|(_, t)| !t.is_empty());
            if rest.batch_tick(&self.prices).and_then(|_| rest.load(accounts)).is_ok() {
                // Exact bits at the same prices: the book's bitmaps do not change.
                debug_assert!(rest.breach() == self.rest.breach() && rest.at_risk() == self.rest.at_risk());
                let mut words = std::mem::take(&mut self.scratch);
                rest.changed_words(&mut words);
                words.clear();
                self.scratch = words;
                self.rest = rest;
            }
            self.rest_changes = 0;
        }
        self.rest.loaded();
        self.mirror.loaded();
        if self.card_alive {
            self.card.loaded();
        }
    }

    fn is_card(&self) -> bool {
        self.card_alive && self.card.is_card()
    }

    fn failovers(&self) -> &[Failover] {
        self.card.failovers()
    }

    fn routes(&self) -> Option<RouteStats> {
        Some(self.stats)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use liqscan_hdl::abi::QuotedPrice;
    use proptest::prelude::*;

    use super::*;
    use crate::engine::Step;
    use crate::engine::test_card::TestCard;

    const SLOTS: usize = 300;
    const CAP: usize = 128;
    const ASSETS: usize = 12;

    fn limits() -> CardLimits {
        CardLimits { accounts: CAP, term_slots: 16, lanes: 16 }
    }

    fn router(card: TestCard, route: Route) -> RouterEngine {
        RouterEngine::new(Box::new(card), limits(), DEVICE_CLASSES[0], SLOTS, ASSETS)
            .unwrap()
            .with_route(route)
    }

    fn price(p: u32) -> PriceEntry {
        PriceEntry {
            spot: QuotedPrice { asset: p, liability: p + p / 50 },
            stressed: QuotedPrice { asset: p - p / 10, liability: p + p / 8 },
        }
    }

    #[derive(Clone, Debug)]
    enum Call {
        Upsert(u32, Vec<Coeff>),
        Remove(u32),
        Tick(u16, u32),
        Batch(Vec<u32>),
        /// Forces a side from here on (or back to the cost model): switches mid-run.
        SetRoute(Route),
    }

    /// Accounts of every shape: a pair, a few terms, both legs of one asset (the card cannot
    /// hold it), and 17-20 terms (more than the card's 16).
    fn account() -> impl Strategy<Value = Vec<Coeff>> {
        (0..ASSETS as u16, 1..ASSETS as u16, 100..10_000i32, 30..120i32, 0..10u8).prop_map(
            |(c, step, coll, pct, kind)| {
                let debt = -(coll / 100 * pct).max(1);
                let d = (c + step) % ASSETS as u16;
                match kind {
                    0 => vec![Coeff { asset: c, coeff: coll }, Coeff { asset: c, coeff: debt }],
                    1 => (0..ASSETS as u16)
                        .map(|a| Coeff { asset: a, coeff: coll / ASSETS as i32 + 1 })
                        .chain((0..5 + c % 4).map(|a| Coeff { asset: a, coeff: debt / 5 - 1 }))
                        .collect(),
                    2..=4 => vec![
                        Coeff { asset: c, coeff: coll },
                        Coeff { asset: (c + 1) % ASSETS as u16, coeff: coll / 3 },
                        Coeff { asset: d, coeff: debt },
                    ]
                    .into_iter()
                    .fold(Vec::new(), |mut v: Vec<Coeff>, t| {
                        if !v.iter().any(|u| u.asset == t.asset) {
                            v.push(t);
                        }
                        v
                    }),
                    _ => vec![Coeff { asset: c, coeff: coll }, Coeff { asset: d, coeff: debt }],
                }
            },
        )
    }

    fn call() -> impl Strategy<Value = Call> {
        prop_oneof![
            4 => (0..SLOTS as u32, account()).prop_map(|(s, t)| Call::Upsert(s, t)),
            1 => (0..SLOTS as u32).prop_map(Call::Remove),
            6 => (0..ASSETS as u16, 500..1500u32).prop_map(|(a, p)| Call::Tick(a, p)),
            1 => proptest::collection::vec(500..1500u32, ASSETS).prop_map(Call::Batch),
            1 => prop_oneof![Just(Route::Card), Just(Route::Software), Just(Route::Measured)].prop_map(Call::SetRoute),
        ]
    }

    /// Runs `calls` through the router and the software engine alone; the bitmaps must be equal
    /// after every call, and a step over the router must have seen every change.
    /// `switches`: obey the calls that change the route.
    fn differential(
        mut r: RouterEngine,
        calls: &[Call],
        switches: bool,
    ) -> Result<RouterEngine, TestCaseError> {
        let mut sw = SoftwareEngine::new(SLOTS, ASSETS);
        let mut step = Step::new(&mut r);
        for (i, c) in calls.iter().enumerate() {
            match c {
                Call::Upsert(s, t) => {
                    r.upsert(*s, t).unwrap();
                    sw.upsert(*s, t).unwrap();
                }
                Call::Remove(s) => {
                    r.remove(*s).unwrap();
                    sw.remove(*s).unwrap();
                }
                Call::Tick(a, p) => {
                    r.tick(*a, price(*p)).unwrap();
                    sw.tick(*a, price(*p)).unwrap();
                }
                Call::Batch(ps) => {
                    let v: Vec<PriceEntry> = ps.iter().map(|&p| price(p)).collect();
                    r.batch_tick(&v).unwrap();
                    sw.batch_tick(&v).unwrap();
                }
                Call::SetRoute(route) if switches => r.route = *route,
                Call::SetRoute(_) => {}
            }
            prop_assert_eq!(r.breach(), sw.breach(), "breach after call {} ({:?})", i, c);
            prop_assert_eq!(r.at_risk(), sw.at_risk(), "at risk after call {}", i);
            prop_assert_eq!(r.prices(), sw.prices());
            step.scan(&mut r);
            prop_assert_eq!(step.seen(), (sw.breach(), sw.at_risk()), "news lost after call {}", i);
        }
        // The partition: at most the card's room, only accounts it can hold, the rest on software.
        let (mut on_card, mut on_rest) = (0, 0);
        for s in 0..SLOTS as u32 {
            let t = sw.terms(s);
            match r.card_slot(s) {
                Some(cs) => {
                    on_card += 1;
                    prop_assert!(limits().holds(t), "slot {} on the card: {:?}", s, t);
                    prop_assert_eq!(r.mirror.terms(cs), t);
                }
                None => {
                    on_rest += usize::from(!t.is_empty());
                    prop_assert_eq!(r.rest.terms(s), t);
                }
            }
        }
        let st = r.routes().unwrap();
        prop_assert!(on_card <= CAP);
        prop_assert_eq!((st.card_accounts, st.host_accounts), (on_card, on_rest));
        Ok(r)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Books larger than the card, every account shape, random deltas and ticks: the
        /// router's bitmaps equal the software engine's alone after every call, whichever
        /// side serves the card's partition.
        #[test]
        fn router_equals_the_software_engine_after_every_call_on_either_side(
            route in prop_oneof![Just(Route::Card), Just(Route::Software), Just(Route::Measured)],
            calls in proptest::collection::vec(call(), 50..400),
        ) {
            let r = differential(router(TestCard::new(CAP, ASSETS), route), &calls, false)?;
            let st = r.routes().unwrap();
            let ticks = calls.iter().filter(|c| matches!(c, Call::Tick(..))).count() as u64;
            prop_assert_eq!(st.card_ticks.total() + st.software_ticks.total(), ticks);
            match route {
                Route::Card => prop_assert_eq!(st.card_ticks.forced, ticks),
                Route::Software => prop_assert_eq!(st.software_ticks.forced, ticks),
                Route::Measured => prop_assert_eq!(st.card_ticks.forced + st.software_ticks.forced, 0),
            }
        }

        /// The route switches mid-run (each switch catches the side up), and the card faults on
        /// a random call (half done) or never: nothing is lost, and after a fault the partition
        /// stays on the software mirror.
        #[test]
        fn router_equals_the_software_engine_when_the_card_faults(
            route in prop_oneof![Just(Route::Card), Just(Route::Measured)],
            fault_at in 1usize..600,
            calls in proptest::collection::vec(call(), 50..300),
        ) {
            let card = TestCard::new(CAP, ASSETS).faulting_at(fault_at);
            let r = differential(router(card, route), &calls, true)?;
            prop_assert!(r.failovers().len() <= 1);
            prop_assert_eq!(r.is_card(), r.failovers().is_empty());
        }
    }

    /// The priors give docs/CROSSOVER.md's scan figures for 1 M x 4: the DDR3 board memory-bound
    /// at 64.4 ms (as the external-memory scan's cycle model simulated it at LiteDRAM's rate on a
    /// 128-bit port, 75 MHz), the HBM
    /// class 70-90 us, the block-RAM part compute-bound.
    #[test]
    fn device_priors_give_the_crossover_tables_scans() {
        let ms = |name: &str| DeviceClass::named(name).unwrap().scan_ns(1_000_000, 4) / 1e6;
        assert!((ms("lfe5u-85f-ddr3") - 64.4).abs() < 0.1, "{}", ms("lfe5u-85f-ddr3"));
        assert!((0.07..0.09).contains(&ms("u55c-hbm")), "{}", ms("u55c-hbm"));
        // 62,500 groups x 4 slots at 136.84 MHz: 1.83 ms of lanes, no memory term.
        assert!((ms("lfe5u-85f") - 1.829).abs() < 0.01, "{}", ms("lfe5u-85f"));
        let mut names: Vec<_> = DEVICE_CLASSES.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DEVICE_CLASSES.len(), "device class names are unique");
    }

    /// The model picks the side whose measured cost is lower, both ways round.
    #[test]
    fn the_cost_model_picks_the_cheaper_measured_side() {
        for (card_ns, soft_ns, want) in [(500.0, 50_000.0, Side::Card), (50_000.0, 500.0, Side::Software)] {
            let mut r = router(TestCard::new(CAP, ASSETS), Route::Measured);
            r.upsert(0, &[Coeff { asset: 0, coeff: 100 }, Coeff { asset: 1, coeff: -50 }]).unwrap();
            for _ in 0..16 {
                r.model.record_tick(Side::Card, 0, card_ns);
                r.model.record_tick(Side::Software, 0, soft_ns);
            }
            assert_eq!(r.choose(Some(0)).0, want, "card {card_ns} ns, software {soft_ns} ns");
            for i in 0..8 {
                r.tick(0, price(1000 + i)).unwrap();
            }
            let st = r.routes().unwrap();
            let got = if want == Side::Card { st.card_ticks.cost } else { st.software_ticks.cost };
            assert_eq!(got, 8, "{st:?}");
        }
    }

    /// A card measured slower than its prior said loses the ticks to software, and probes keep
    /// measuring it.
    #[test]
    fn the_choice_follows_the_measured_card() {
        let card = TestCard::new(CAP, ASSETS).slow(Duration::from_micros(300));
        let mut r = router(card, Route::Measured);
        for s in 0..100 {
            r.upsert(s, &[Coeff { asset: 0, coeff: 100 }, Coeff { asset: 1, coeff: -60 - s as i32 }])
                .unwrap();
        }
        // As if measured fast once: the first ticks go to the card.
        r.model.record_tick(Side::Card, 0, 10.0);
        r.tick(0, price(1000)).unwrap();
        assert_eq!(r.routes().unwrap().card_ticks.cost, 1);
        for i in 0..(2 * PROBE_EVERY) {
            r.tick(0, price(1000 + i)).unwrap();
        }
        let st = r.routes().unwrap();
        assert!(st.software_ticks.cost > PROBE_EVERY as u64, "{st:?}");
        assert!(st.card_ticks.probe >= 1, "{st:?}");
        let m = r.cost_model();
        assert!(m.tick_ns(Side::Card, 0, 100, 100, 2) > m.tick_ns(Side::Software, 0, 100, 100, 2));
    }

    /// The card's partition: lowest card slots first, the card's room and term limit kept, an
    /// account that grows past the card's terms moved to software, a freed slot reused.
    #[test]
    fn the_partition_is_first_come_within_the_cards_limits() {
        let mut r = router(TestCard::new(CAP, ASSETS), Route::Card);
        let pair = [Coeff { asset: 0, coeff: 100 }, Coeff { asset: 1, coeff: -50 }];
        let two_legs = [Coeff { asset: 2, coeff: 100 }, Coeff { asset: 2, coeff: -50 }];
        r.upsert(5, &two_legs).unwrap();
        for s in 10..10 + CAP as u32 + 3 {
            r.upsert(s, &pair).unwrap();
        }
        assert_eq!(r.card_slot(5), None, "an asset twice stays on software");
        assert_eq!(r.card_slot(10), Some(0));
        assert_eq!(r.card_slot(10 + CAP as u32 - 1), Some(CAP as u32 - 1));
        assert_eq!(r.card_slot(10 + CAP as u32), None, "the card is full");
        let st = r.routes().unwrap();
        assert_eq!((st.card_accounts, st.host_accounts, st.card_capacity), (CAP, 4, CAP));
        r.remove(12).unwrap();
        r.upsert(10 + CAP as u32, &pair).unwrap();
        assert_eq!(r.card_slot(10 + CAP as u32), Some(2), "a freed slot is reused");
        let big: Vec<Coeff> = (0..ASSETS as u16)
            .map(|a| Coeff { asset: a, coeff: 10 })
            .chain((0..6).map(|a| Coeff { asset: a, coeff: -1 }))
            .collect();
        r.upsert(11, &big).unwrap();
        assert_eq!(r.card_slot(11), None, "18 terms move to software");
        assert_eq!(r.routes().unwrap().host_accounts, 4);
    }
}
