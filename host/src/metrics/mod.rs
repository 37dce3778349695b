//! # Latency accounting and counters
//!
//! - [`StageHistograms`]: one hdrhistogram per pipeline stage, in nanoseconds from the tick's
//!   *intended* time: feed -> command written, -> bitmap seen, -> dispatched; and the engine's
//!   own time (command written -> bitmap seen). Measuring from the intended send time of a
//!   paced replay, not from when the feed thread got round to sending it, is the
//!   coordinated-omission correction: a stall delays every tick queued behind it, and each of
//!   those delays is counted.
//! - [`Counters`]: relaxed atomic counters shared with the feed listeners and the metrics
//!   endpoint.
//! - [`Published`]: the hdrhistograms as last published by the engine thread (copied only
//!   when it is idle, never on the hot path), for a caller that wants percentiles mid-run; the
//!   endpoint serves the bucket histograms of [`live`] instead.
//! - [`live`]: what the exposition reads besides the counters: windowable stage histograms
//!   (atomic buckets), the dispatcher's order counters, per-asset price age and guard
//!   refusals, readiness.
//! - [`exposition`]: OpenMetrics text (prometheus-client) of all of it; [`http`]: the endpoint
//!   serving it (`/metrics`, `/healthz`, `/readyz`), loopback unless allowed.

pub mod exposition;
pub mod http;
pub mod live;

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

/// Highest latency tracked: 60 s in nanoseconds.
pub const MAX_NS: u64 = 60_000_000_000;

/// A fresh nanosecond histogram (3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

/// Stage names, in pipeline order (also the tags in the interval log).
pub const STAGES: [&str; 4] = ["feed_to_command", "feed_to_bitmap", "feed_to_dispatch", "engine"];

/// One histogram per stage.
#[derive(Clone)]
pub struct StageHistograms {
    /// Tick's intended time -> command written to the engine or card.
    pub feed_to_command: Histogram<u64>,
    /// -> bitmap words seen by the host.
    pub feed_to_bitmap: Histogram<u64>,
    /// -> breached accounts handed to dispatch.
    pub feed_to_dispatch: Histogram<u64>,
    /// Command written -> bitmap seen (the engine or card round trip alone).
    pub engine: Histogram<u64>,
}

impl Default for StageHistograms {
    fn default() -> Self {
        StageHistograms {
            feed_to_command: histogram(),
            feed_to_bitmap: histogram(),
            feed_to_dispatch: histogram(),
            engine: histogram(),
        }
    }
}

impl StageHistograms {
    /// The histograms with their names.
    pub fn stages(&self) -> [(&'static str, &Histogram<u64>); 4] {
        [
            (STAGES[0], &self.feed_to_command),
            (STAGES[1], &self.feed_to_bitmap),
            (STAGES[2], &self.feed_to_dispatch),
            (STAGES[3], &self.engine),
        ]
    }

    /// Records one tick's stage times (nanosecond clock readings; saturating).
    #[inline]
    pub fn record(&mut self, t_feed: u64, t_cmd: u64, t_bitmap: u64, t_dispatch: u64) {
        let r = |h: &mut Histogram<u64>, v: u64| h.saturating_record(v.clamp(1, MAX_NS));
        r(&mut self.feed_to_command, t_cmd.saturating_sub(t_feed));
        r(&mut self.feed_to_bitmap, t_bitmap.saturating_sub(t_feed));
        r(&mut self.feed_to_dispatch, t_dispatch.saturating_sub(t_feed));
        r(&mut self.engine, t_bitmap.saturating_sub(t_cmd));
    }

    /// A percentile table in microseconds, one row per stage.
    pub fn table(&self) -> String {
        percentile_table(&self.stages())
    }

    /// Saves every stage in HdrHistogram's interval log format (the interchange format read by
    /// HdrHistogram's `HistogramLogProcessor` and plotters), one tagged entry per stage.
    pub fn save_hlog(&self, path: &Path) -> std::io::Result<()> {
        save_hlog(path, &self.stages())
    }
}

/// A percentile table (microseconds) of named histograms.
pub fn percentile_table(rows: &[(&str, &Histogram<u64>)]) -> String {
    let mut s = format!(
        "{:<18} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "stage (us)", "count", "min", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, h) in rows {
        let us = |v: u64| v as f64 / 1000.0;
        s.push_str(&format!(
            "{:<18} {:>10} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
            name,
            h.len(),
            us(h.min()),
            us(h.value_at_quantile(0.5)),
            us(h.value_at_quantile(0.9)),
            us(h.value_at_quantile(0.99)),
            us(h.value_at_quantile(0.999)),
            us(h.max())
        ));
    }
    s
}

/// Writes named histograms to an HdrHistogram interval log (`.hlog`).
pub fn save_hlog(path: &Path, rows: &[(&str, &Histogram<u64>)]) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut ser = V2DeflateSerializer::new();
    let now = std::time::SystemTime::now();
    let mut log = IntervalLogWriterBuilder::new()
        .add_comment("liqscan pipeline stage latencies, nanoseconds")
        .with_start_time(now)
        .with_base_time(now)
        .with_max_value_divisor(1_000.0)
        .begin_log_with(&mut file, &mut ser)
        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    for (name, h) in rows {
        let tag = Tag::new(name).ok_or_else(|| std::io::Error::other("bad tag"))?;
        log.write_histogram(h, std::time::Duration::ZERO, std::time::Duration::from_secs(1), Some(tag))
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    }
    drop(log);
    file.flush()
}

/// Counters shared across threads (relaxed; for monitoring).
#[derive(Default, Debug)]
pub struct Counters {
    /// Ticks applied.
    pub ticks: AtomicU64,
    /// Account deltas (upserts and removes) applied.
    pub deltas: AtomicU64,
    /// Accounts handed to dispatch as newly breached.
    pub breaches: AtomicU64,
    /// Accounts no longer breached.
    pub cleared: AtomicU64,
    /// Switches from the card to the software engine.
    pub failovers: AtomicU64,
    /// Ticks replayed on the software engine after a fail-over.
    pub replayed: AtomicU64,
    /// Times the feed found the pipeline's queue full and waited.
    pub backpressure: AtomicU64,
    /// Feed frames received.
    pub frames: AtomicU64,
    /// Sequence gaps seen on feeds (frames missing).
    pub feed_gaps: AtomicU64,
    /// Duplicate or stale frames dropped.
    pub feed_duplicates: AtomicU64,
    /// Frames that did not decode.
    pub feed_malformed: AtomicU64,
    /// Feed frames naming an asset or account slot outside the book.
    pub feed_unknown: AtomicU64,
    /// Feed frames refused by authentication (missing or wrong HMAC tag).
    pub feed_auth_failed: AtomicU64,
    /// Feed frames dropped by the per-connection rate limit.
    pub feed_rate_limited: AtomicU64,
    /// Feed connections refused (over the connection limit).
    pub feed_conn_refused: AtomicU64,
    /// Feed ticks refused for a price of 0 on an asset that does not allow it.
    pub feed_zero_price: AtomicU64,
    /// Feed ticks refused by the oracle guard.
    pub feed_guard_refused: AtomicU64,
    /// Feed ticks held by the oracle guard (a jump awaiting confirmation).
    pub feed_guard_held: AtomicU64,
    /// Feed frames refused for a sequence number too far ahead of the stream (not adopted).
    pub feed_seq_refused: AtomicU64,
    /// Feed connections closed before holding a slot (no complete, authenticated first frame
    /// by the handshake deadline, or pushed out of a full waiting room).
    pub feed_unadmitted: AtomicU64,
    /// Feed connections closed for sending no complete frame within the idle timeout.
    pub feed_idle_closed: AtomicU64,
    /// Feed frames dropped because the journal failed to write them (not taken).
    pub feed_not_journaled: AtomicU64,
    /// Frames from a program's input source (the NATS input stream), by outcome.
    pub inputs: crate::feed::intake::InputCounters,
    /// Stage latency histograms for the exposition (engine and dispatch threads).
    pub stages: live::StageBuckets,
    /// The dispatcher's order counters and gauges.
    pub orders: live::OrderCounters,
    /// Flush (msync) latency of the book journal (feed threads, under the listeners' lock).
    pub journal_sync_book: live::LatencyBuckets,
    /// Flush (msync) latency of the order journal (dispatch thread).
    pub journal_sync_orders: live::LatencyBuckets,
    /// Readiness.
    pub health: live::Health,
    /// True while the card (not the software engine) serves the scans.
    pub engine_card: AtomicBool,
    /// Ticks a router engine sent to the card (its partition of the book), all reasons.
    pub routed_card: AtomicU64,
    /// Ticks a router engine served from the software mirror of the card's partition.
    pub routed_software: AtomicU64,
    /// The clock the pipeline of these counters runs on (per-asset price age is read on it).
    pub clock: crate::pipeline::Clock,
    assets: OnceLock<live::AssetMetrics>,
}

impl Counters {
    /// Sizes the per-asset metrics (once, before the threads start; later calls do nothing).
    pub fn init_assets(&self, assets: usize) {
        let _ = self.assets.set(live::AssetMetrics::new(assets));
    }

    /// Per-asset metrics, if sized.
    #[inline]
    pub fn assets(&self) -> Option<&live::AssetMetrics> {
        self.assets.get()
    }

    /// A journal hook recording each flush's duration in `journal_sync_book` (`orders`
    /// false) or `journal_sync_orders`. Each journal has one writer at a time, as the
    /// histograms need.
    pub fn journal_sync_hook(self: &Arc<Self>, orders: bool) -> crate::journal::SyncHook {
        let c = self.clone();
        Arc::new(
            move |ns| {
                if orders { c.journal_sync_orders.observe(ns) } else { c.journal_sync_book.observe(ns) }
            },
        )
    }

    /// Adds one.
    #[inline]
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Name, help and value of every counter.
    pub fn list(&self) -> Vec<(&'static str, &'static str, u64)> {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        vec![
            ("liqscan_ticks_total", "ticks applied", g(&self.ticks)),
            ("liqscan_deltas_total", "account upserts and removes applied", g(&self.deltas)),
            ("liqscan_breaches_total", "accounts handed to dispatch as breached", g(&self.breaches)),
            ("liqscan_cleared_total", "accounts no longer breached", g(&self.cleared)),
            ("liqscan_failovers_total", "switches from the card to the software engine", g(&self.failovers)),
            ("liqscan_replayed_total", "commands replayed after a fail-over", g(&self.replayed)),
            (
                "liqscan_routed_card_ticks_total",
                "ticks whose card partition the router sent to the card",
                g(&self.routed_card),
            ),
            (
                "liqscan_routed_software_ticks_total",
                "ticks whose card partition the router served in software",
                g(&self.routed_software),
            ),
            ("liqscan_backpressure_total", "times the feed waited on a full queue", g(&self.backpressure)),
            ("liqscan_feed_frames_total", "feed frames received", g(&self.frames)),
            ("liqscan_feed_gaps_total", "feed frames missing (sequence gaps)", g(&self.feed_gaps)),
            (
                "liqscan_feed_duplicates_total",
                "duplicate or stale feed frames dropped",
                g(&self.feed_duplicates),
            ),
            ("liqscan_feed_malformed_total", "feed frames that did not decode", g(&self.feed_malformed)),
            (
                "liqscan_feed_unknown_total",
                "feed frames naming an unknown asset or slot",
                g(&self.feed_unknown),
            ),
            (
                "liqscan_feed_auth_failed_total",
                "feed frames failing authentication",
                g(&self.feed_auth_failed),
            ),
            (
                "liqscan_feed_rate_limited_total",
                "feed frames over the rate limit",
                g(&self.feed_rate_limited),
            ),
            (
                "liqscan_feed_conn_refused_total",
                "feed connections over the limit",
                g(&self.feed_conn_refused),
            ),
            (
                "liqscan_feed_zero_price_total",
                "feed ticks priced 0 on an asset that does not allow it",
                g(&self.feed_zero_price),
            ),
            (
                "liqscan_feed_guard_refused_total",
                "feed ticks refused by the guard",
                g(&self.feed_guard_refused),
            ),
            ("liqscan_feed_guard_held_total", "feed ticks held by the guard", g(&self.feed_guard_held)),
            (
                "liqscan_feed_seq_refused_total",
                "feed frames refused for a sequence jump beyond the bound",
                g(&self.feed_seq_refused),
            ),
            (
                "liqscan_feed_unadmitted_total",
                "feed connections closed before their first complete (authenticated) frame",
                g(&self.feed_unadmitted),
            ),
            (
                "liqscan_feed_idle_closed_total",
                "feed connections closed for idleness",
                g(&self.feed_idle_closed),
            ),
            (
                "liqscan_feed_not_journaled_total",
                "feed frames dropped because the journal could not write them",
                g(&self.feed_not_journaled),
            ),
        ]
    }
}

/// The latest histograms the engine thread published.
#[derive(Default)]
pub struct Published {
    inner: Mutex<Option<StageHistograms>>,
}

impl Published {
    /// Publishes a copy (engine thread, when idle; skipped if the endpoint holds the lock).
    pub fn publish(&self, h: &StageHistograms) {
        if let Ok(mut g) = self.inner.try_lock() {
            match g.as_mut() {
                Some(x) => {
                    for ((_, src), dst) in h.stages().iter().zip([
                        &mut x.feed_to_command,
                        &mut x.feed_to_bitmap,
                        &mut x.feed_to_dispatch,
                        &mut x.engine,
                    ]) {
                        dst.reset();
                        let _ = dst.add(*src);
                    }
                }
                None => *g = Some(h.clone()),
            }
        }
    }

    /// The latest copy.
    pub fn get(&self) -> Option<StageHistograms> {
        self.inner.lock().ok().and_then(|g| g.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_from_intended_time_and_saves_a_log() {
        let mut h = StageHistograms::default();
        h.record(1_000, 1_500, 3_000, 4_000);
        h.record(0, 100_000, 101_000, 102_000);
        assert_eq!(h.feed_to_command.len(), 2);
        assert!(h.feed_to_dispatch.max() >= 101_000);
        assert!(h.engine.max() < 2_000);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.hlog");
        h.save_hlog(&p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("Tag=feed_to_dispatch,"), "{text}");
        assert!(h.table().contains("feed_to_bitmap"));
    }
}
