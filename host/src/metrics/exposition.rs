//! The OpenMetrics exposition of a keeper's metrics, encoded by `prometheus-client`.
//!
//! Nothing here runs on a hot thread: a scrape reads the atomics the hot threads update
//! ([`Counters`], [`super::live`]) through a [`Collector`] and encodes them. Families:
//!
//! | family | type | what |
//! |---|---|---|
//! | `liqscan_*_total` (ticks, deltas, breaches, fail-overs, `feed_*`) | counter | [`Counters::list`] |
//! | `liqscan_stage_latency_seconds{stage}` | histogram | per pipeline stage, from the tick's feed time |
//! | `liqscan_inputs_received_total`, `_taken_total` | counter | input stream (`liqscan run --nats`) |
//! | `liqscan_inputs_refused_total{reason}` | counter | input messages refused (`feed::intake::Refusal` labels) |
//! | `liqscan_inputs_last_sequence` | gauge | stream sequence of the last input frame taken |
//! | `liqscan_orders_built_total`, `_sent_total`, `_retried_total` | counter | dispatcher |
//! | `liqscan_orders_acknowledged_total{outcome="filled"\|"sent"}` | counter | answers taken as done |
//! | `liqscan_orders_failed_total{reason}` | counter | rejected, lost, given_up, submit_error |
//! | `liqscan_orders_timed_out_total`, `liqscan_orders_unsizable_total` | counter | |
//! | `liqscan_dispatch_backlog`, `liqscan_orders_in_flight` | gauge | accounts waiting, orders awaiting an answer |
//! | `liqscan_engine_card` | gauge | 1 while the card serves, 0 on the software engine |
//! | `liqscan_oracle_age_seconds{asset}` | gauge | since the asset's price was last applied |
//! | `liqscan_guard_refused_total{asset}`, `liqscan_guard_held_total{asset}` | counter | live ticks the oracle guard stopped |
//! | `liqscan_ready` | gauge | 1 while serving intake (as `/readyz`) |
//! | `liqscan_build_info{version,profile}` | info | |

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::Counters;
use super::live::LatencyBuckets;

/// The OpenMetrics content type `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A keeper's metrics, ready to encode at each scrape.
pub struct Exposition {
    registry: Registry,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposition").finish_non_exhaustive()
    }
}

impl Exposition {
    /// The metrics of `counters`, per-asset families labelled with `assets` (the asset table's
    /// symbols by index; assets beyond the list are labelled by index).
    pub fn new(counters: Arc<Counters>, assets: Vec<String>) -> Exposition {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(KeeperCollector { counters: counters.clone(), assets }));
        Exposition { registry, counters }
    }

    /// The counters read.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// The exposition text, ending in `# EOF`.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut s, &self.registry);
        s
    }
}

/// The exposition of `counters` alone (no asset names).
pub fn render(counters: &Arc<Counters>) -> String {
    Exposition::new(counters.clone(), Vec::new()).render()
}

#[derive(Debug)]
struct KeeperCollector {
    counters: Arc<Counters>,
    assets: Vec<String>,
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn labelled_counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    rows: &[(&str, u64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, v) in rows {
        let labels = [(label, *value)];
        ConstCounter::new(*v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

impl KeeperCollector {
    fn asset_name(&self, i: usize) -> String {
        self.assets.get(i).cloned().unwrap_or_else(|| i.to_string())
    }

    fn histogram(&self, e: &mut DescriptorEncoder) -> std::fmt::Result {
        let mut m = e.encode_descriptor(
            "liqscan_stage_latency_seconds",
            "pipeline stage latency from the tick's feed time (intended time in a paced replay)",
            None,
            MetricType::Histogram,
        )?;
        for (stage, h) in self.counters.stages.stages() {
            let (sum, count, buckets) = LatencyBuckets::snapshot(h);
            let labels = [("stage", stage)];
            m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        let mut m = e.encode_descriptor(
            "liqscan_journal_sync_seconds",
            "time to flush appended journal records to the disk (msync), per journal",
            None,
            MetricType::Histogram,
        )?;
        for (journal, h) in
            [("book", &self.counters.journal_sync_book), ("orders", &self.counters.journal_sync_orders)]
        {
            let (sum, count, buckets) = LatencyBuckets::snapshot(h);
            let labels = [("journal", journal)];
            m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

impl Collector for KeeperCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let c = &self.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        for (name, help, v) in c.list() {
            // OpenMetrics: the family has no `_total`; the encoder adds it to the sample.
            counter(&mut e, name.strip_suffix("_total").unwrap_or(name), help, v)?;
        }
        self.histogram(&mut e)?;

        let i = &c.inputs;
        counter(
            &mut e,
            "liqscan_inputs_received",
            "messages from the input stream (liqscan run --nats), taken or not",
            load(&i.received),
        )?;
        counter(&mut e, "liqscan_inputs_taken", "input stream frames handed to the engine", load(&i.taken))?;
        let reasons: Vec<(&str, u64)> =
            crate::feed::intake::Refusal::ALL.iter().map(|r| (r.label(), i.refused(*r))).collect();
        labelled_counters(
            &mut e,
            "liqscan_inputs_refused",
            "input stream messages refused (never applied to the book), by reason",
            "reason",
            &reasons,
        )?;
        gauge(
            &mut e,
            "liqscan_inputs_last_sequence",
            "stream sequence of the last input frame taken",
            load(&i.last_seq).min(i64::MAX as u64) as i64,
        )?;

        let o = &c.orders;
        counter(
            &mut e,
            "liqscan_orders_built",
            "liquidation orders built (retries not counted)",
            load(&o.built),
        )?;
        counter(
            &mut e,
            "liqscan_orders_sent",
            "orders handed to the executor (first sends and retries)",
            load(&o.sent),
        )?;
        counter(
            &mut e,
            "liqscan_orders_retried",
            "orders sent again after a time-out or a lost connection",
            load(&o.retried),
        )?;
        labelled_counters(
            &mut e,
            "liqscan_orders_acknowledged",
            "orders answered as done: filled by the venue, or taken by a sink that confirms nothing more",
            "outcome",
            &[("filled", load(&o.filled)), ("sent", load(&o.sent_unconfirmed))],
        )?;
        labelled_counters(
            &mut e,
            "liqscan_orders_failed",
            "orders that failed: rejected, lost with their connection, given up, refused at submission",
            "reason",
            &[
                ("rejected", load(&o.rejected)),
                ("lost", load(&o.lost)),
                ("given_up", load(&o.given_up)),
                ("submit_error", load(&o.submit_errors)),
            ],
        )?;
        counter(
            &mut e,
            "liqscan_orders_timed_out",
            "orders whose answer did not come in time",
            load(&o.timed_out),
        )?;
        counter(
            &mut e,
            "liqscan_orders_unsizable",
            "breached accounts with nothing to size (no debt or no collateral left)",
            load(&o.unsizable),
        )?;
        counter(
            &mut e,
            "liqscan_executor_connects",
            "connections the executor made to the venue side",
            load(&o.executor_connects),
        )?;
        labelled_counters(
            &mut e,
            "liqscan_executor_refused_lines",
            "answer lines from the venue side refused (each too-long or unauthenticated line closed its connection)",
            "reason",
            &[
                ("unparsable", load(&o.executor_bad_lines)),
                ("too_long", load(&o.executor_long_lines)),
                ("unauthenticated", load(&o.executor_auth_failures)),
            ],
        )?;
        gauge(
            &mut e,
            "liqscan_dispatch_backlog",
            "breached accounts waiting for an order",
            load(&o.backlog) as i64,
        )?;
        gauge(&mut e, "liqscan_orders_in_flight", "orders awaiting an answer", load(&o.in_flight) as i64)?;
        let card = c.engine_card.load(std::sync::atomic::Ordering::Relaxed);
        gauge(
            &mut e,
            "liqscan_engine_card",
            "1 while the card serves the scans, 0 on the software engine",
            card as i64,
        )?;
        gauge(
            &mut e,
            "liqscan_ready",
            "1 while the keeper serves intake (as /readyz)",
            c.health.readiness().is_ok() as i64,
        )?;

        if let Some(a) = c.assets() {
            let now = c.clock.now();
            let mut m = e.encode_descriptor(
                "liqscan_oracle_age_seconds",
                "seconds since the asset's price was last applied by the engine (absent: never priced)",
                None,
                MetricType::Gauge,
            )?;
            for i in 0..a.len() {
                if let Some(t) = a.priced_at(i) {
                    let name = self.asset_name(i);
                    let labels = [("asset", name.as_str())];
                    let age = now.saturating_sub(t) as f64 / 1e9;
                    ConstGauge::new(age).encode(m.encode_family(&labels)?)?;
                }
            }
            for (family, help, refused) in [
                ("liqscan_guard_refused", "live ticks the oracle guard refused", true),
                ("liqscan_guard_held", "live ticks the oracle guard held for confirmation", false),
            ] {
                let mut m = e.encode_descriptor(family, help, None, MetricType::Counter)?;
                for i in 0..a.len() {
                    let (r, h) = a.guard_counts(i);
                    let name = self.asset_name(i);
                    let labels = [("asset", name.as_str())];
                    ConstCounter::new(if refused { r } else { h }).encode(m.encode_family(&labels)?)?;
                }
            }
        }

        let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
        let info = [("version", env!("CARGO_PKG_VERSION")), ("profile", profile)];
        e.encode_descriptor("liqscan_build", "the build serving these metrics", None, MetricType::Info)?
            .encode_info(&info)?;
        Ok(())
    }
}

/// Checks that `text` is OpenMetrics as this module writes it: every sample belongs to a
/// declared family, and it ends with `# EOF`. Returns the families' (name, type). For tests
/// and scrapers' smoke checks; not a full OpenMetrics parser.
pub fn families(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut fams: Vec<(String, String)> = Vec::new();
    let mut lines = text.lines().peekable();
    let mut eof = false;
    while let Some(l) = lines.next() {
        if l == "# EOF" {
            eof = true;
            if lines.peek().is_some() {
                return Err("text after # EOF".into());
            }
            break;
        }
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').ok_or_else(|| format!("bad TYPE line: {l}"))?;
            fams.push((name.to_string(), ty.to_string()));
            continue;
        }
        if l.starts_with("# HELP ") || l.starts_with("# UNIT ") {
            continue;
        }
        let name = l.split(['{', ' ']).next().unwrap_or_default();
        let Some((fam, ty)) = fams.last() else { return Err(format!("sample before any TYPE: {l}")) };
        let suffixes: &[&str] = match ty.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        if !suffixes.iter().any(|s| name == format!("{fam}{s}")) {
            return Err(format!("sample {name} outside its family {fam} ({ty})"));
        }
        let value = l.rsplit(' ').next().unwrap_or_default();
        if value.parse::<f64>().is_err() && !matches!(value, "+Inf" | "-Inf" | "NaN") {
            return Err(format!("bad value in: {l}"));
        }
    }
    if !eof {
        return Err("no # EOF".into());
    }
    Ok(fams)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_is_openmetrics_with_every_family() {
        let c = Arc::new(Counters::default());
        c.init_assets(2);
        c.stages.record(0, 1_000, 3_000, 4_000);
        c.stages.feed_to_order.observe(9_000);
        c.assets().unwrap().priced(1, 1);
        c.assets().unwrap().guard(0, true);
        Counters::inc(&c.ticks);
        Counters::inc(&c.inputs.refused[crate::feed::intake::Refusal::WrongSubject.index()]);
        c.orders.publish_link(&crate::dispatch::LinkStats {
            connects: 3,
            bad_lines: 0,
            long_lines: 1,
            auth_failures: 2,
        });
        let x = Exposition::new(c, vec!["ETH".into(), "USDC".into()]);
        let text = x.render();
        let fams = families(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        for (name, ty) in [
            ("liqscan_ticks", "counter"),
            ("liqscan_stage_latency_seconds", "histogram"),
            ("liqscan_orders_built", "counter"),
            ("liqscan_orders_acknowledged", "counter"),
            ("liqscan_orders_failed", "counter"),
            ("liqscan_orders_timed_out", "counter"),
            ("liqscan_dispatch_backlog", "gauge"),
            ("liqscan_engine_card", "gauge"),
            ("liqscan_oracle_age_seconds", "gauge"),
            ("liqscan_guard_refused", "counter"),
            ("liqscan_feed_not_journaled", "counter"),
            ("liqscan_inputs_taken", "counter"),
            ("liqscan_inputs_refused", "counter"),
            ("liqscan_inputs_last_sequence", "gauge"),
            ("liqscan_executor_connects", "counter"),
            ("liqscan_executor_refused_lines", "counter"),
            ("liqscan_build", "info"),
        ] {
            assert!(fams.contains(&(name.to_string(), ty.to_string())), "{name} {ty} missing:\n{text}");
        }
        assert!(text.contains("liqscan_ticks_total 1\n"), "{text}");
        assert!(text.contains("liqscan_executor_connects_total 3\n"), "{text}");
        assert!(text.contains("liqscan_inputs_refused_total{reason=\"wrong_subject\"} 1\n"), "{text}");
        assert!(text.contains("liqscan_inputs_refused_total{reason=\"malformed\"} 0\n"), "{text}");
        assert!(
            text.contains("liqscan_executor_refused_lines_total{reason=\"unauthenticated\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("liqscan_executor_refused_lines_total{reason=\"too_long\"} 1\n"), "{text}");
        // Cumulative buckets: the 2 us engine time is in le=2us and every bucket above.
        assert!(
            text.contains("liqscan_stage_latency_seconds_bucket{le=\"0.000001\",stage=\"engine\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("liqscan_stage_latency_seconds_bucket{le=\"0.000002\",stage=\"engine\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("liqscan_stage_latency_seconds_bucket{le=\"+Inf\",stage=\"engine\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("liqscan_stage_latency_seconds_count{stage=\"feed_to_order\"} 1\n"), "{text}");
        assert!(text.contains("liqscan_oracle_age_seconds{asset=\"USDC\"} "), "{text}");
        assert!(!text.contains("liqscan_oracle_age_seconds{asset=\"ETH\"}"), "never priced: {text}");
        assert!(text.contains("liqscan_guard_refused_total{asset=\"ETH\"} 1\n"), "{text}");
        assert!(text.contains("liqscan_build_info{version="), "{text}");
    }

    #[test]
    fn the_checker_refuses_what_is_not_openmetrics() {
        assert!(families("# TYPE a counter\na_total 1\n").is_err(), "no EOF");
        assert!(families("# TYPE a counter\nb_total 1\n# EOF\n").is_err(), "stray sample");
        assert!(families("# TYPE a gauge\na x\n# EOF\n").is_err(), "bad value");
        assert!(families("# TYPE a gauge\na 1\n# EOF\n").is_ok());
    }
}
