//! Replays ticks through an engine (the software engine, or any other: the card behind its
//! link) and turns bitmap changes into breach events.
//!
//! Shared by `liqscan demo` and `liqscan scan`. The timed region per tick is exactly the
//! engine's work (apply the tick, collect changed bitmap words); turning changes into events
//! and writing them happens outside it.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use liqscan_hdl::abi::{PriceEntry, TermError};
use liqscan_host::bitmap;
use liqscan_host::book::Book;
use liqscan_host::engine::{
    AccountHealth, EngineError, Routing, ScanEngine, SoftwareEngine, Step, account_health,
};
use liqscan_host::io::breaches::{BreachRecord, EventKind};
use liqscan_host::io::ticks::Tick;
use liqscan_host::io::time::format_timestamp;
use liqscan_host::model::AssetTable;

/// Counters of a replay so far.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReplayStats {
    /// Ticks applied.
    pub ticks: u64,
    /// Ticks applied before every held asset had a price (no events during warm-up).
    pub warmup_ticks: u64,
    /// Breach events (an account's health fell below zero).
    pub breaches: u64,
    /// Recoveries (health back to zero or above).
    pub recoveries: u64,
    /// At-risk events.
    pub at_risk_events: u64,
    /// Distinct accounts that breached at least once.
    pub accounts_breached: u64,
}

/// One tick's events as the engine found them: which slots changed how, and the prices their
/// healths are computed at. [`Replay::step`] fills it, a [`Render`] turns it into records; it
/// is reused tick after tick (and passed between threads), so its buffers stop growing.
#[derive(Clone, Debug, Default)]
pub struct TickEvents {
    /// Index of the tick (0-based).
    pub tick: u64,
    /// The tick's time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// The price table after the tick (set when there are events).
    prices: Vec<PriceEntry>,
    /// The events in report order: slot and kind.
    slots: Vec<u32>,
    kinds: Vec<EventKind>,
}

impl TickEvents {
    fn clear(&mut self) {
        self.slots.clear();
        self.kinds.clear();
    }
}

/// Turns a tick's events into breach records: each account's exact health from the book's
/// terms at the tick's prices (any engine's, the card's too), its id, the tick's time.
pub struct Render<'a> {
    table: &'a AssetTable,
    book: &'a Book,
    healths: Vec<AccountHealth>,
    health_text: String,
}

impl<'a> Render<'a> {
    /// A renderer of events of `book`'s accounts.
    pub fn new(table: &'a AssetTable, book: &'a Book) -> Self {
        Render { table, book, healths: Vec::new(), health_text: String::new() }
    }

    /// Hands each event of `ev` to `emit`, in order.
    pub fn render(&mut self, ev: &TickEvents, mut emit: impl FnMut(&BreachRecord<'_>)) {
        if ev.slots.is_empty() {
            return;
        }
        let ts = format_timestamp(ev.ts_ns);
        let Render { table, book, healths, health_text } = self;
        // The healths, then the ids, in batches that overlap their cache misses (each event's
        // account is anywhere in the book). Two reads an account (its offsets, then its terms
        // or id bytes): the offsets are hinted twice as far ahead.
        const AHEAD: usize = 8;
        let slots = &ev.slots;
        healths.clear();
        for (i, &slot) in slots.iter().enumerate() {
            if let Some(&s) = slots.get(i + 2 * AHEAD) {
                book.prefetch_term_offsets(s as usize);
            }
            if let Some(&s) = slots.get(i + AHEAD) {
                book.prefetch_terms(s as usize);
            }
            healths.push(account_health(book.terms(slot as usize), &ev.prices));
        }
        for (i, (&slot, (&kind, h))) in slots.iter().zip(ev.kinds.iter().zip(healths.iter())).enumerate() {
            if let Some(&s) = slots.get(i + 2 * AHEAD) {
                book.prefetch_id_offsets(s as usize);
            }
            if let Some(&s) = slots.get(i + AHEAD) {
                book.prefetch_id(s as usize);
            }
            health_text.clear();
            write!(health_text, "{}", table.value_of(h.spot)).expect("writing to a String");
            emit(&BreachRecord {
                tick: ev.tick,
                ts: &ts,
                account: book.id(slot as usize),
                slot,
                event: kind,
                health: health_text,
                health_factor: h.ratio.is_finite().then_some(h.ratio),
            });
        }
    }
}

/// A book loaded into an engine, ready for ticks.
pub struct Replay<'a> {
    table: &'a AssetTable,
    engine: Box<dyn ScanEngine>,
    step: Step,
    ever_breached: Vec<u64>,
    /// This tick's events (for [`apply`](Replay::apply)) and their renderer.
    events: TickEvents,
    render: Render<'a>,
    unpriced_held: Vec<u16>,
    /// Nanoseconds per tick spent in the engine.
    pub latency: Histogram<u64>,
    /// Counters.
    pub stats: ReplayStats,
}

/// The refusal of the account in `slot`, named by its id; an engine that holds each asset once
/// an account (the cards) says which asset and what serves such an account.
fn load_error(table: &AssetTable, book: &Book, engine: &str, e: EngineError) -> anyhow::Error {
    let id = match &e {
        EngineError::BadTerms { slot, .. } | EngineError::SlotOutOfRange { slot, .. } => {
            ((*slot as usize) < book.len()).then(|| book.id(*slot as usize).to_string())
        }
        _ => None,
    };
    let both_sides = match &e {
        EngineError::BadTerms { source: TermError::DuplicateAsset(a), .. } => {
            table.assets().get(*a as usize).map(|x| x.symbol.clone())
        }
        _ => None,
    };
    match (id, both_sides) {
        (Some(id), Some(sym)) => anyhow::Error::new(e).context(format!(
            "loading account '{id}': it holds {sym} on both sides (a supply and a borrow), and the {engine} \
             engine holds each asset once an account; `--backend routed` keeps such accounts on software \
             (`--device lfe5u-85f-ddr3` for the DRAM card)"
        )),
        (Some(id), None) => anyhow::Error::new(e).context(format!("loading account '{id}'")),
        _ => anyhow::Error::new(e).context("loading the book"),
    }
}

impl<'a> Replay<'a> {
    /// Loads every account into a fresh software engine (slot = position in `book`) that
    /// routes each tick as `routing` says, its full scans on one thread.
    pub fn new(table: &'a AssetTable, book: &'a Book, routing: Routing) -> Result<Self> {
        Replay::with_scan_threads(table, book, routing, 1)
    }

    /// As [`new`](Replay::new), with the full scans split over `threads` (1 or 2) threads.
    pub fn with_scan_threads(
        table: &'a AssetTable,
        book: &'a Book,
        routing: Routing,
        threads: usize,
    ) -> Result<Self> {
        let mut engine =
            SoftwareEngine::new(book.len(), table.len()).with_routing(routing).with_threads(threads);
        // One bulk load: every structure built once (sort, then build), not account by account.
        engine
            .load((0..book.len()).map(|slot| (slot as u32, book.terms(slot))))
            .map_err(|e| load_error(table, book, "software", e))?;
        Ok(Replay::loaded(table, book, Box::new(engine)))
    }

    /// Loads every account into `engine` (as new: `book.len()` slots, `table.len()` assets,
    /// nothing held), account by account: the card behind its link, or any other engine.
    pub fn with_engine(
        table: &'a AssetTable,
        book: &'a Book,
        mut engine: Box<dyn ScanEngine>,
    ) -> Result<Self> {
        if engine.slots() < book.len() || engine.assets() != table.len() {
            bail!(
                "the {} engine has {} slots and {} assets; the book needs {} and {}",
                engine.name(),
                engine.slots(),
                engine.assets(),
                book.len(),
                table.len()
            );
        }
        for slot in 0..book.len() {
            let terms = book.terms(slot);
            if !terms.is_empty() {
                engine.upsert(slot as u32, terms).map_err(|e| load_error(table, book, engine.name(), e))?;
            }
        }
        Ok(Replay::loaded(table, book, engine))
    }

    fn loaded(table: &'a AssetTable, book: &'a Book, mut engine: Box<dyn ScanEngine>) -> Self {
        engine.loaded();
        let held = book.held_assets(table.len());
        let words = bitmap::words_for(book.len());
        // The load's bits are not news: events start once every held asset is priced.
        let step = Step::starting_at(&mut engine);
        Replay {
            table,
            engine,
            step,
            ever_breached: vec![0; words],
            events: TickEvents::default(),
            render: Render::new(table, book),
            unpriced_held: (0..table.len() as u16).filter(|&a| held[a as usize]).collect(),
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            stats: ReplayStats::default(),
        }
    }

    /// The engine (its name, its fail-overs).
    pub fn engine(&self) -> &dyn ScanEngine {
        &*self.engine
    }

    /// Assets held by some account that no tick has priced yet.
    pub fn unpriced(&self) -> Vec<&str> {
        self.unpriced_held.iter().map(|&a| self.table.assets()[a as usize].symbol.as_str()).collect()
    }

    /// Applies one tick and hands each resulting event to `emit`. Until every held asset has a
    /// price the book is warming up: ticks apply, but no events are reported, since an unpriced
    /// collateral would read as worthless.
    pub fn apply(&mut self, tick: &Tick, emit: impl FnMut(&BreachRecord<'_>)) -> Result<()> {
        let mut events = std::mem::take(&mut self.events);
        let r = self.step(tick, &mut events);
        if r.is_ok() {
            self.render.render(&events, emit);
        }
        self.events = events;
        r
    }

    /// Applies one tick and puts the events it caused into `out` (cleared first), to be turned
    /// into records by a [`Render`], here or on another thread. During warm-up `out` stays
    /// empty.
    pub fn step(&mut self, tick: &Tick, out: &mut TickEvents) -> Result<()> {
        out.clear();
        let t0 = Instant::now();
        self.engine.tick(tick.asset, tick.entry)?;
        self.step.collect(&mut self.engine);
        let dt = t0.elapsed().as_nanos() as u64;
        self.latency.saturating_record(dt.max(1));
        out.tick = self.stats.ticks;
        out.ts_ns = tick.ts_ns;
        self.stats.ticks += 1;
        if !self.unpriced_held.is_empty() {
            self.unpriced_held.retain(|&a| a != tick.asset);
            self.stats.warmup_ticks += 1;
            if !self.unpriced_held.is_empty() {
                // Collected words not diffed: the step still holds the bitmaps as loaded.
                return Ok(());
            }
            // Warm-up just ended: report every word against the bitmaps as loaded.
            self.step.report_all();
            self.step.collect(&mut self.engine);
        }
        // Every event's slot and kind (the bitmaps are sequential reads); the healths and ids
        // are the renderer's.
        let Replay { engine, step, ever_breached, stats, .. } = self;
        let TickEvents { slots, kinds, .. } = out;
        step.diff_words(&**engine, |w, [ob, oa], [nb, na]| {
            let (db, da) = (nb ^ ob, na ^ oa);
            for (diff, now, up, down) in [
                (db, nb, EventKind::Breach, EventKind::Recovered),
                (da, na, EventKind::AtRisk, EventKind::Safe),
            ] {
                for bit in bitmap::ones(&[diff]) {
                    let kind = if now >> bit & 1 == 1 { up } else { down };
                    match kind {
                        EventKind::Breach => {
                            stats.breaches += 1;
                            if ever_breached[w] >> bit & 1 == 0 {
                                ever_breached[w] |= 1 << bit;
                                stats.accounts_breached += 1;
                            }
                        }
                        EventKind::Recovered => stats.recoveries += 1,
                        EventKind::AtRisk => stats.at_risk_events += 1,
                        EventKind::Safe => {}
                    }
                    slots.push((w * 64 + bit) as u32);
                    kinds.push(kind);
                }
            }
        });
        if !out.slots.is_empty() {
            out.prices.clear();
            out.prices.extend_from_slice(self.engine.prices());
        }
        Ok(())
    }

    /// True once every held asset has a price and events are reported.
    pub fn warm(&self) -> bool {
        self.unpriced_held.is_empty()
    }

    /// Accounts breached now.
    pub fn breached_now(&self) -> usize {
        bitmap::count(self.engine.breach())
    }

    /// Accounts at risk now.
    pub fn at_risk_now(&self) -> usize {
        bitmap::count(self.engine.at_risk())
    }

    /// Fails if some held asset was never priced.
    pub fn check_priced(&self) -> Result<()> {
        if !self.unpriced_held.is_empty() {
            bail!(
                "no tick ever priced {}: accounts hold them, so their health is unknown; add ticks for them",
                self.unpriced().join(", ")
            );
        }
        Ok(())
    }
}

/// Latency percentiles in microseconds, for tables and JSON.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Percentiles {
    /// From a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        let us = |v: u64| v as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_us: us(h.value_at_quantile(0.5)),
            p90_us: us(h.value_at_quantile(0.9)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// How the software engine serves a one-asset tick, as a command-line choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoutingArg {
    /// Update the exposed accounts by deltas (the default).
    Deltas,
    /// The cheaper of deltas and a full scan; with the engine's window index that is always
    /// deltas (kept so scripts that name it keep working).
    Measured,
    /// Rescan every account on every tick.
    Full,
}

impl From<RoutingArg> for Routing {
    fn from(r: RoutingArg) -> Routing {
        match r {
            RoutingArg::Deltas => Routing::Deltas,
            RoutingArg::Measured => Routing::Measured,
            RoutingArg::Full => Routing::FullScan,
        }
    }
}
