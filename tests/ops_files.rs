//! The operator files in ops/ (Grafana dashboard, Prometheus alert rules, systemd unit) name
//! only metrics the keeper exposes, and the dashboard is valid JSON: a renamed metric fails
//! here instead of leaving an empty panel or an alert that never fires.

use std::collections::BTreeSet;
use std::sync::Arc;

use liqscan_host::metrics::Counters;
use liqscan_host::metrics::exposition::{Exposition, families};

fn ops(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ops").join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every `liqscan_...` metric name in `text`.
fn names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("liqscan_") {
        let start = i + at;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_lowercase() || b[end].is_ascii_digit() || b[end] == b'_') {
            end += 1;
        }
        let before_ok = start == 0
            || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_' || b[start - 1] == b'-');
        if before_ok {
            out.insert(text[start..end].to_string());
        }
        i = end;
    }
    out
}

/// Sample names the exposition can produce.
fn exposed() -> BTreeSet<String> {
    let c = Arc::new(Counters::default());
    c.init_assets(1);
    let text = Exposition::new(c, vec!["ETH".into()]).render();
    let mut out = BTreeSet::new();
    for (fam, ty) in families(&text).unwrap() {
        let suffixes: &[&str] = match ty.as_str() {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            _ => &[""],
        };
        for s in suffixes {
            out.insert(format!("{fam}{s}"));
        }
    }
    out
}

#[test]
fn dashboard_and_alerts_name_only_exposed_metrics() {
    let have = exposed();
    let dashboard = ops("grafana/liqscan-dashboard.json");
    let json: serde_json::Value = serde_json::from_str(&dashboard).expect("dashboard is JSON");
    assert!(json["panels"].as_array().is_some_and(|p| p.len() >= 10), "panels");
    let alerts = ops("prometheus/liqscan-alerts.yml");
    for (file, text) in [("dashboard", &dashboard), ("alerts", &alerts)] {
        let used = names(text);
        assert!(used.len() >= 10, "{file}: {used:?}");
        let unknown: Vec<_> = used.difference(&have).collect();
        assert!(unknown.is_empty(), "{file} names metrics the keeper does not expose: {unknown:?}");
    }
    // Every order, latency and health family appears in both.
    for must in ["liqscan_orders_failed_total", "liqscan_dispatch_backlog", "liqscan_oracle_age_seconds"] {
        assert!(names(&dashboard).contains(must) && names(&alerts).contains(must), "{must}");
    }
}

#[test]
fn the_systemd_unit_stops_with_sigterm_and_runs_the_keeper() {
    let unit = ops("systemd/liqscan.service");
    for line in ["KillSignal=SIGTERM", "ExecStart=/usr/local/bin/liqscan ", "StateDirectory=liqscan"] {
        assert!(unit.lines().any(|l| l.starts_with(line)), "{line} missing");
    }
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(exec.contains(" run --config "), "{exec}");
}
