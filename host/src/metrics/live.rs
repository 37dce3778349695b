//! The keeper's live metrics as plain atomics: what the hot threads update (relaxed stores, no
//! lock, no allocation) and the scrape thread reads ([`super::exposition`]).
//!
//! - [`LatencyBuckets`]: a Prometheus histogram (cumulative bucket counts, so Prometheus
//!   windows it with `rate()`), written by one thread: the engine thread for the pipeline
//!   stages, the dispatch thread for `feed_to_order`.
//! - [`OrderCounters`]: the dispatcher's counters and gauges, copied after each step of the
//!   dispatch thread.
//! - [`AssetMetrics`]: per asset, when its price was last applied and the guard's refusals.
//! - [`Health`]: ready (serving intake) or not, for `/readyz`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::dispatch::DispatchStats;

/// Upper bounds of the latency buckets, nanoseconds (1 us to 5 s, 1-2-5 steps; `+Inf` after).
pub const BUCKET_BOUNDS_NS: [u64; 19] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
    5_000_000_000,
];

/// Adds `n` to a counter that only one thread writes: a load and a store, no locked
/// read-modify-write on the hot path. A second writer would lose counts, never corrupt.
#[inline(always)]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// A latency histogram with fixed buckets ([`BUCKET_BOUNDS_NS`]), one writer.
#[derive(Debug)]
pub struct LatencyBuckets {
    counts: [AtomicU64; BUCKET_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl Default for LatencyBuckets {
    fn default() -> Self {
        LatencyBuckets { counts: std::array::from_fn(|_| AtomicU64::new(0)), sum_ns: AtomicU64::new(0) }
    }
}

impl LatencyBuckets {
    /// Records one observation (one writer thread).
    #[inline]
    pub fn observe(&self, ns: u64) {
        let i = BUCKET_BOUNDS_NS.partition_point(|&b| b < ns);
        bump(&self.counts[i], 1);
        bump(&self.sum_ns, ns);
    }

    /// Records `n` observations of `ns`.
    #[inline]
    pub fn observe_n(&self, ns: u64, n: u64) {
        let i = BUCKET_BOUNDS_NS.partition_point(|&b| b < ns);
        bump(&self.counts[i], n);
        bump(&self.sum_ns, ns.saturating_mul(n));
    }

    /// (sum in seconds, count, per-bucket (upper bound in seconds, count)), `+Inf` last.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets = Vec::with_capacity(self.counts.len());
        let mut count = 0;
        for (i, c) in self.counts.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            count += n;
            let le = BUCKET_BOUNDS_NS.get(i).map_or(f64::INFINITY, |&b| b as f64 / 1e9);
            buckets.push((le, n));
        }
        (self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9, count, buckets)
    }
}

/// One histogram per pipeline stage (the names of [`super::STAGES`]), written by the engine
/// thread, and `feed_to_order`, written by the dispatch thread.
#[derive(Debug, Default)]
pub struct StageBuckets {
    /// Feed time -> command written.
    pub feed_to_command: LatencyBuckets,
    /// Feed time -> bitmap seen.
    pub feed_to_bitmap: LatencyBuckets,
    /// Feed time -> handed to dispatch.
    pub feed_to_dispatch: LatencyBuckets,
    /// Command written -> bitmap seen.
    pub engine: LatencyBuckets,
    /// Feed time -> order taken by the executor (dispatch thread).
    pub feed_to_order: LatencyBuckets,
}

impl StageBuckets {
    /// Records one tick's stage times, as [`super::StageHistograms::record`] does.
    #[inline]
    pub fn record(&self, t_feed: u64, t_cmd: u64, t_bitmap: u64, t_dispatch: u64) {
        self.feed_to_command.observe(t_cmd.saturating_sub(t_feed));
        self.feed_to_bitmap.observe(t_bitmap.saturating_sub(t_feed));
        self.feed_to_dispatch.observe(t_dispatch.saturating_sub(t_feed));
        self.engine.observe(t_bitmap.saturating_sub(t_cmd));
    }

    /// Stage name and histogram, in pipeline order.
    pub fn stages(&self) -> [(&'static str, &LatencyBuckets); 5] {
        [
            ("feed_to_command", &self.feed_to_command),
            ("feed_to_bitmap", &self.feed_to_bitmap),
            ("feed_to_dispatch", &self.feed_to_dispatch),
            ("engine", &self.engine),
            ("feed_to_order", &self.feed_to_order),
        ]
    }
}

/// The dispatcher's counters (totals) and gauges, as the dispatch thread last copied them.
#[derive(Debug, Default)]
pub struct OrderCounters {
    /// Orders built (retries not counted).
    pub built: AtomicU64,
    /// Sends (first sends and retries).
    pub sent: AtomicU64,
    /// Re-sends.
    pub retried: AtomicU64,
    /// Acknowledged: filled by the venue.
    pub filled: AtomicU64,
    /// Acknowledged: taken by a sink that confirms nothing more.
    pub sent_unconfirmed: AtomicU64,
    /// Failed: refused by the venue or executor.
    pub rejected: AtomicU64,
    /// Failed: connection dropped before an answer.
    pub lost: AtomicU64,
    /// Failed: given up after the last attempt.
    pub given_up: AtomicU64,
    /// Failed: the executor refused the submission (busy or unavailable).
    pub submit_errors: AtomicU64,
    /// Timed out waiting for an answer.
    pub timed_out: AtomicU64,
    /// Breached accounts waiting for an order (gauge).
    pub backlog: AtomicU64,
    /// Orders awaiting an answer (gauge).
    pub in_flight: AtomicU64,
    /// Breached accounts that could not be sized (no debt or no collateral left).
    pub unsizable: AtomicU64,
    /// The executor's connections made (TCP executor).
    pub executor_connects: AtomicU64,
    /// Executor answer lines refused: unparsable.
    pub executor_bad_lines: AtomicU64,
    /// Executor answer lines refused: over the length limit.
    pub executor_long_lines: AtomicU64,
    /// Executor answer lines refused: failing authentication.
    pub executor_auth_failures: AtomicU64,
}

impl OrderCounters {
    /// Copies the dispatcher's state (dispatch thread; relaxed stores).
    pub fn publish(&self, s: &DispatchStats, backlog: usize, in_flight: usize) {
        let set = |c: &AtomicU64, v: u64| c.store(v, Ordering::Relaxed);
        set(&self.built, s.orders);
        set(&self.sent, s.sends);
        set(&self.retried, s.retries);
        set(&self.filled, s.filled);
        set(&self.sent_unconfirmed, s.sent_unconfirmed);
        set(&self.rejected, s.rejected);
        set(&self.lost, s.lost);
        set(&self.given_up, s.given_up);
        set(&self.submit_errors, s.submit_errors);
        set(&self.timed_out, s.timeouts);
        set(&self.unsizable, s.unsizable);
        set(&self.backlog, backlog as u64);
        set(&self.in_flight, in_flight as u64);
    }

    /// Copies the executor's connection totals (dispatch thread; relaxed stores).
    pub fn publish_link(&self, s: &crate::dispatch::LinkStats) {
        let set = |c: &AtomicU64, v: u64| c.store(v, Ordering::Relaxed);
        set(&self.executor_connects, s.connects);
        set(&self.executor_bad_lines, s.bad_lines);
        set(&self.executor_long_lines, s.long_lines);
        set(&self.executor_auth_failures, s.auth_failures);
    }
}

/// Per-asset state: when its price was last applied (pipeline clock, ns; 0: never) and the
/// oracle guard's refusals and holds of its live ticks.
#[derive(Debug)]
pub struct AssetMetrics {
    priced_at: Box<[AtomicU64]>,
    guard_refused: Box<[AtomicU64]>,
    guard_held: Box<[AtomicU64]>,
}

impl AssetMetrics {
    /// Room for `assets` assets.
    pub fn new(assets: usize) -> Self {
        let v = || (0..assets).map(|_| AtomicU64::new(0)).collect();
        AssetMetrics { priced_at: v(), guard_refused: v(), guard_held: v() }
    }

    /// Assets held.
    pub fn len(&self) -> usize {
        self.priced_at.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.priced_at.is_empty()
    }

    /// The asset's price was applied at `t` (engine thread; pipeline clock ns, at least 1).
    #[inline]
    pub fn priced(&self, asset: u16, t: u64) {
        if let Some(a) = self.priced_at.get(asset as usize) {
            a.store(t.max(1), Ordering::Relaxed);
        }
    }

    /// The guard refused (`refused`) or held a live tick of `asset` (feed threads).
    pub fn guard(&self, asset: u16, refused: bool) {
        let c = if refused { &self.guard_refused } else { &self.guard_held };
        if let Some(a) = c.get(asset as usize) {
            a.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// When the asset was last priced (pipeline clock ns), if it has been.
    pub fn priced_at(&self, asset: usize) -> Option<u64> {
        self.priced_at.get(asset).map(|a| a.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }

    /// (refused, held) so far.
    pub fn guard_counts(&self, asset: usize) -> (u64, u64) {
        let g = |c: &[AtomicU64]| c.get(asset).map_or(0, |a| a.load(Ordering::Relaxed));
        (g(&self.guard_refused), g(&self.guard_held))
    }
}

/// Readiness for `/readyz`: serving intake, not starting and not stopping.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    stopping: AtomicBool,
}

impl Health {
    /// The keeper takes input now (set when the replay and listeners start, cleared at the end).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// A stop was asked for: no longer ready, for good.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// `Ok` when ready, else why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if self.stopping.load(Ordering::Relaxed) {
            Err("stopping")
        } else if !self.ready.load(Ordering::Relaxed) {
            Err("starting (loading the book, recovering the journal) or finished")
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_take_values_at_their_upper_bound_and_sum() {
        let b = LatencyBuckets::default();
        b.observe(1_000); // le 1 us
        b.observe(1_001); // le 2 us
        b.observe(7_000_000_000); // +Inf
        b.observe_n(3_000, 2); // le 5 us
        let (sum, count, buckets) = b.snapshot();
        assert_eq!(count, 5);
        assert_eq!(buckets.len(), BUCKET_BOUNDS_NS.len() + 1);
        assert_eq!((buckets[0].1, buckets[1].1, buckets[2].1), (1, 1, 2));
        assert_eq!(*buckets.last().unwrap(), (f64::INFINITY, 1));
        assert!((sum - (1_000.0 + 1_001.0 + 7e9 + 6_000.0) / 1e9).abs() < 1e-12);
    }

    #[test]
    fn asset_metrics_ignore_assets_outside_the_table() {
        let a = AssetMetrics::new(2);
        a.priced(1, 5);
        a.priced(9, 5);
        a.guard(0, true);
        a.guard(0, false);
        a.guard(7, true);
        assert_eq!((a.priced_at(0), a.priced_at(1)), (None, Some(5)));
        assert_eq!(a.guard_counts(0), (1, 1));
    }
}
