//! The metrics endpoint over 127.0.0.1: OpenMetrics text with every family and `# EOF`,
//! `/healthz` and `/readyz`, a non-loopback address refused (library and command line), an
//! oversized request head refused with 431, two scrapes served at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use liqscan_host::metrics::Counters;
use liqscan_host::metrics::exposition::{Exposition, families};
use liqscan_host::metrics::http::{MetricsError, MetricsOptions, MetricsServer};

fn server(opts: MetricsOptions) -> (Arc<Counters>, MetricsServer) {
    let counters = Arc::new(Counters::default());
    counters.init_assets(2);
    let x = Arc::new(Exposition::new(counters.clone(), vec!["ETH".into(), "USDC".into()]));
    (counters, MetricsServer::start("127.0.0.1:0", x, opts).unwrap())
}

/// Sends `request`, reads the whole answer: (status line, body).
fn exchange(addr: SocketAddr, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request); // an oversized head may be answered (and closed) mid-write
    let mut text = Vec::new();
    let _ = s.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

fn get(addr: SocketAddr, path: &str) -> (String, String) {
    exchange(addr, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
}

#[test]
fn scrape_is_openmetrics_with_the_keeper_families() {
    let (c, s) = server(MetricsOptions::default());
    c.stages.record(0, 2_000, 30_000, 31_000);
    c.assets().unwrap().priced(0, 1);
    let (status, text) = get(s.addr(), "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let fams = families(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    for name in [
        "liqscan_stage_latency_seconds",
        "liqscan_orders_built",
        "liqscan_orders_sent",
        "liqscan_orders_acknowledged",
        "liqscan_orders_failed",
        "liqscan_orders_timed_out",
        "liqscan_dispatch_backlog",
        "liqscan_failovers",
        "liqscan_engine_card",
        "liqscan_oracle_age_seconds",
        "liqscan_guard_refused",
        "liqscan_feed_not_journaled",
        "liqscan_journal_sync_seconds",
        "liqscan_build",
    ] {
        assert!(fams.iter().any(|(n, _)| n == name), "{name} missing:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
    assert!(text.contains("liqscan_oracle_age_seconds{asset=\"ETH\"} "), "{text}");
}

#[test]
fn health_and_readiness() {
    let (c, s) = server(MetricsOptions::default());
    assert_eq!(get(s.addr(), "/healthz").0, "HTTP/1.1 200 OK");
    let (status, body) = get(s.addr(), "/readyz");
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert!(body.starts_with("not ready: starting"), "{body}");
    c.health.set_ready(true);
    assert_eq!(get(s.addr(), "/readyz"), ("HTTP/1.1 200 OK".into(), "ready\n".into()));
    c.health.set_stopping();
    assert_eq!(
        get(s.addr(), "/readyz"),
        ("HTTP/1.1 503 Service Unavailable".into(), "not ready: stopping\n".into())
    );
    assert_eq!(get(s.addr(), "/nothing").0, "HTTP/1.1 404 Not Found");
    assert_eq!(exchange(s.addr(), b"POST /metrics HTTP/1.1\r\n\r\n").0, "HTTP/1.1 405 Method Not Allowed");
}

#[test]
fn a_non_loopback_address_is_refused_unless_allowed() {
    let x = Arc::new(Exposition::new(Arc::new(Counters::default()), vec![]));
    let e = MetricsServer::start("0.0.0.0:0", x.clone(), MetricsOptions::default()).err().expect("refused");
    assert!(matches!(e, MetricsError::NotLoopback(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with("metrics address 0.0.0.0:0 is not loopback: refused"), "{msg}");
    assert!(msg.contains("--metrics-allow-remote"), "{msg}");
    // Allowed: binds (to every address; the test only talks to it over loopback).
    let opts = MetricsOptions { allow_remote: true, ..Default::default() };
    let s = MetricsServer::start("0.0.0.0:0", x, opts).expect("allowed");
    let port = s.addr().port();
    assert_eq!(get(SocketAddr::from(([127, 0, 0, 1], port)), "/healthz").0, "HTTP/1.1 200 OK");

    // The command refuses it before loading anything, naming the address.
    let out = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["run", "--demo-accounts", "10", "--metrics", "0.0.0.0:9184"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("metrics address 0.0.0.0:9184 is not loopback: refused"), "{err}");
}

#[test]
fn an_oversized_request_head_is_refused() {
    let (_c, s) = server(MetricsOptions { max_header_bytes: 1024, ..Default::default() });
    let mut req = b"GET /metrics HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        req.extend(format!("X-Padding-{i}: {}\r\n", "a".repeat(40)).as_bytes());
    }
    req.extend(b"\r\n");
    let (status, body) = exchange(s.addr(), &req);
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large", "{body}");
    // A head within the bound is served.
    assert_eq!(get(s.addr(), "/metrics").0, "HTTP/1.1 200 OK");
}

#[test]
fn two_scrapes_at_once_are_both_answered() {
    let (_c, s) = server(MetricsOptions { read_timeout: Duration::from_secs(20), ..Default::default() });
    // A slow client: connected, half its request sent, holding its connection.
    let mut slow = TcpStream::connect(s.addr()).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // A second scrape is served while the first waits (one connection at a time would wait
    // for the slow client's 20 s read timeout).
    let t = Instant::now();
    let (status, text) = get(s.addr(), "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(text.ends_with("# EOF\n"));
    assert!(t.elapsed() < Duration::from_secs(10), "the second scrape waited {:?}", t.elapsed());
    // The slow one finishes its request and is answered too.
    slow.write_all(b"Host: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[test]
fn connections_beyond_the_limit_are_answered_busy() {
    let (_c, s) = server(MetricsOptions {
        max_connections: 1,
        read_timeout: Duration::from_secs(5),
        ..Default::default()
    });
    let mut held = TcpStream::connect(s.addr()).unwrap();
    held.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(get(s.addr(), "/metrics").0, "HTTP/1.1 503 Service Unavailable");
    held.write_all(b"\r\n").unwrap();
    let mut answer = String::new();
    held.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

/// `liqscan run --metrics 127.0.0.1:0` mid-replay: ready, orders counted by the dispatch
/// thread, stage histograms filled by the engine thread, each asset's price age; after SIGTERM
/// it exits 0.
#[test]
fn a_running_keeper_exposes_its_orders_stages_and_assets() {
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("err.txt");
    let orders = dir.path().join("orders.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["run", "--demo-accounts", "2000", "--pace", "fixed:5000", "--metrics", "127.0.0.1:0"])
        .args(["--executor", &format!("jsonl:{}", orders.display())])
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let addr: SocketAddr = loop {
        let text = std::fs::read_to_string(&err).unwrap_or_default();
        if let Some(rest) = text.split("metrics on http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(20), "no metrics address: {text}");
        std::thread::sleep(Duration::from_millis(10));
    };
    let value = |text: &str, sample: &str| -> f64 {
        let line =
            text.lines().find(|l| l.starts_with(sample)).unwrap_or_else(|| panic!("{sample}:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let mut text;
    loop {
        text = get(addr, "/metrics").1;
        if value(&text, "liqscan_orders_built_total ") > 0.0 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "no order counted:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
    families(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert_eq!(get(addr, "/readyz").0, "HTTP/1.1 200 OK");
    assert!(value(&text, "liqscan_orders_sent_total ") > 0.0);
    assert!(value(&text, "liqscan_orders_acknowledged_total{outcome=\"sent\"} ") >= 0.0);
    assert!(value(&text, "liqscan_stage_latency_seconds_count{stage=\"feed_to_dispatch\"} ") > 0.0);
    assert!(value(&text, "liqscan_stage_latency_seconds_count{stage=\"feed_to_order\"} ") > 0.0);
    assert_eq!(value(&text, "liqscan_engine_card "), 0.0);
    let age = value(&text, "liqscan_oracle_age_seconds{asset=\"ETH\"} ");
    assert!((0.0..60.0).contains(&age), "ETH price age {age}");
    assert!(child.try_wait().unwrap().is_none(), "the run ended before the checks");
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {}", std::fs::read_to_string(&err).unwrap());
}

/// Every flush of a journal lands in `liqscan_journal_sync_seconds{journal=...}`: one
/// observation per record under `FsyncPolicy::Always`, none for the journal not written.
#[test]
fn journal_flushes_are_timed() {
    use liqscan_hdl::abi::{PriceEntry, QuotedPrice};
    use liqscan_host::journal::keeper::BookJournal;
    use liqscan_host::journal::{FsyncPolicy, JournalConfig};
    use liqscan_host::pipeline::FeedMsg;

    let (c, s) = server(MetricsOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = JournalConfig { fsync: FsyncPolicy::Always, segment_bytes: 1 << 20, snapshot_every: None };
    let (mut bj, _) = BookJournal::open(dir.path(), 4, 2, cfg).unwrap();
    bj.on_sync(c.journal_sync_hook(false));
    for p in [1_000, 1_010, 990] {
        let q = QuotedPrice { asset: p, liability: p };
        bj.record(&FeedMsg::Tick { asset: 0, price: PriceEntry { spot: q, stressed: q } }, 1).unwrap();
    }
    let (_, text) = get(s.addr(), "/metrics");
    families(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert!(text.contains("liqscan_journal_sync_seconds_count{journal=\"book\"} 3\n"), "{text}");
    assert!(text.contains("liqscan_journal_sync_seconds_count{journal=\"orders\"} 0\n"), "{text}");
}
