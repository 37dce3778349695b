//! Replays ticks through the software engine and turns bitmap changes into breach events.
//!
//! Shared by `liqscan demo` and `liqscan scan`. The timed region per tick is exactly the
//! engine's work (apply the tick, collect changed bitmap words); turning changes into events
//! and writing them happens outside it.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use liqscan_host::bitmap;
use liqscan_host::book::Book;
use liqscan_host::engine::{AccountHealth, EngineError, Routing, ScanEngine, SoftwareEngine};
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

/// A book loaded into the software engine, ready for ticks.
pub struct Replay<'a> {
    table: &'a AssetTable,
    book: &'a Book,
    engine: SoftwareEngine,
    prev_breach: Vec<u64>,
    prev_at_risk: Vec<u64>,
    ever_breached: Vec<u64>,
    changed: Vec<u32>,
    /// This tick's events, in report order: slot, kind and health.
    event_slots: Vec<u32>,
    event_kinds: Vec<EventKind>,
    event_healths: Vec<Option<AccountHealth>>,
    health_text: String,
    unpriced_held: Vec<u16>,
    /// Nanoseconds per tick spent in the engine.
    pub latency: Histogram<u64>,
    /// Counters.
    pub stats: ReplayStats,
}

impl<'a> Replay<'a> {
    /// Loads every account into a fresh engine (slot = position in `book`) that routes each
    /// tick as `routing` says.
    pub fn new(table: &'a AssetTable, book: &'a Book, routing: Routing) -> Result<Self> {
        let mut engine = SoftwareEngine::new(book.len(), table.len()).with_routing(routing);
        // One bulk load: every structure built once (sort, then build), not account by account.
        if let Err(e) = engine.load((0..book.len()).map(|slot| (slot as u32, book.terms(slot)))) {
            let id = match &e {
                EngineError::BadTerms { slot, .. } | EngineError::SlotOutOfRange { slot, .. } => {
                    ((*slot as usize) < book.len()).then(|| book.id(*slot as usize).to_string())
                }
                _ => None,
            };
            return Err(match id {
                Some(id) => anyhow::Error::new(e).context(format!("loading account '{id}'")),
                None => anyhow::Error::new(e).context("loading the book"),
            });
        }
        engine.loaded();
        let held = book.held_assets(table.len());
        let words = bitmap::words_for(book.len());
        let mut changed = Vec::with_capacity(words);
        engine.changed_words(&mut changed);
        changed.clear();
        Ok(Replay {
            table,
            book,
            engine,
            prev_breach: vec![0; words],
            prev_at_risk: vec![0; words],
            ever_breached: vec![0; words],
            changed,
            event_slots: Vec::new(),
            event_kinds: Vec::new(),
            event_healths: Vec::new(),
            health_text: String::new(),
            unpriced_held: (0..table.len() as u16).filter(|&a| held[a as usize]).collect(),
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            stats: ReplayStats::default(),
        })
    }

    /// Assets held by some account that no tick has priced yet.
    pub fn unpriced(&self) -> Vec<&str> {
        self.unpriced_held.iter().map(|&a| self.table.assets()[a as usize].symbol.as_str()).collect()
    }

    /// Applies one tick and hands each resulting event to `emit`. Until every held asset has a
    /// price the book is warming up: ticks apply, but no events are reported, since an unpriced
    /// collateral would read as worthless.
    pub fn apply(&mut self, tick: &Tick, mut emit: impl FnMut(&BreachRecord<'_>)) -> Result<()> {
        let t0 = Instant::now();
        self.engine.tick(tick.asset, tick.entry)?;
        self.engine.changed_words(&mut self.changed);
        let dt = t0.elapsed().as_nanos() as u64;
        self.latency.saturating_record(dt.max(1));
        let index = self.stats.ticks;
        self.stats.ticks += 1;
        if !self.unpriced_held.is_empty() {
            self.unpriced_held.retain(|&a| a != tick.asset);
            self.stats.warmup_ticks += 1;
            if !self.unpriced_held.is_empty() {
                self.changed.clear();
                return Ok(());
            }
            // Warm-up just ended: report every word against the empty state.
            self.changed.clear();
            self.changed.extend(0..self.prev_breach.len() as u32);
        }
        let ts = format_timestamp(tick.ts_ns);
        // First every event's slot and kind (the bitmaps are sequential reads), then the
        // healths and ids in batches that overlap their cache misses (each event's account is
        // anywhere in the book), then the events themselves, in the same order.
        self.event_slots.clear();
        self.event_kinds.clear();
        for &w in &self.changed {
            let w = w as usize;
            let (nb, na) = (self.engine.breach()[w], self.engine.at_risk()[w]);
            let (db, da) = (nb ^ self.prev_breach[w], na ^ self.prev_at_risk[w]);
            for (diff, now, up, down) in [
                (db, nb, EventKind::Breach, EventKind::Recovered),
                (da, na, EventKind::AtRisk, EventKind::Safe),
            ] {
                for bit in bitmap::ones(&[diff]) {
                    let kind = if now >> bit & 1 == 1 { up } else { down };
                    match kind {
                        EventKind::Breach => {
                            self.stats.breaches += 1;
                            if self.ever_breached[w] >> bit & 1 == 0 {
                                self.ever_breached[w] |= 1 << bit;
                                self.stats.accounts_breached += 1;
                            }
                        }
                        EventKind::Recovered => self.stats.recoveries += 1,
                        EventKind::AtRisk => self.stats.at_risk_events += 1,
                        EventKind::Safe => {}
                    }
                    self.event_slots.push((w * 64 + bit) as u32);
                    self.event_kinds.push(kind);
                }
            }
            self.prev_breach[w] = nb;
            self.prev_at_risk[w] = na;
        }
        self.engine.healths(&self.event_slots, &mut self.event_healths);
        // Two reads an id (its offsets, then its bytes): hint the offsets twice as far ahead.
        const AHEAD: usize = 8;
        let slots = &self.event_slots;
        for (i, (&slot, (&kind, h))) in
            slots.iter().zip(self.event_kinds.iter().zip(&self.event_healths)).enumerate()
        {
            if let Some(&s) = slots.get(i + 2 * AHEAD) {
                self.book.prefetch_id_offsets(s as usize);
            }
            if let Some(&s) = slots.get(i + AHEAD) {
                self.book.prefetch_id(s as usize);
            }
            let h = h.expect("slot in range");
            self.health_text.clear();
            write!(self.health_text, "{}", self.table.value_of(h.spot)).expect("writing to a String");
            emit(&BreachRecord {
                tick: index,
                ts: &ts,
                account: self.book.id(slot as usize),
                slot,
                event: kind,
                health: &self.health_text,
                health_factor: h.ratio.is_finite().then_some(h.ratio),
            });
        }
        self.changed.clear();
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
