//! Live feeds on loopback into the pipeline (TCP and UDP: gaps, duplicates, malformed frames)
//! and a scrape of the Prometheus endpoint.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::SoftwareEngine;
use liqscan_host::feed::{listen, replay, wire};
use liqscan_host::metrics::exposition::{Exposition, families};
use liqscan_host::metrics::http::{MetricsOptions, MetricsServer};
use liqscan_host::metrics::{Counters, Published};
use liqscan_host::pipeline::{self, Clock, FeedMsg, PipelineConfig};

fn price(p: u32) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: p, liability: p },
        stressed: QuotedPrice { asset: p, liability: p },
    }
}

fn frame(seq: u64, msg: FeedMsg) -> Vec<u8> {
    let mut b = Vec::new();
    wire::encode(&wire::Frame { seq, ts_ns: 0, msg }, &mut b);
    b
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A pipeline over a 2-asset book: slot 0 is long asset 0, short asset 1.
fn pipeline_with(
    counters: Arc<Counters>,
    published: Arc<Published>,
) -> (pipeline::FeedTx, std::thread::JoinHandle<pipeline::PipelineReport>, Arc<Mutex<Vec<u32>>>, Clock) {
    let clock = Clock::default();
    let (tx, rx) = pipeline::feed_queue(64, counters.clone());
    let breached = Arc::new(Mutex::new(vec![]));
    let b = breached.clone();
    let sink = move |_: u64, x: &[u32], _: &[u32], _: &[u32]| b.lock().unwrap().extend_from_slice(x);
    let be = Box::new(SoftwareEngine::new(8, 2));
    let h = pipeline::spawn(be, rx, Box::new(sink), PipelineConfig::default(), clock, counters, published);
    (tx, h, breached, clock)
}

fn script() -> Vec<FeedMsg> {
    vec![
        FeedMsg::Tick { asset: 0, price: price(100) },
        FeedMsg::Tick { asset: 1, price: price(100) },
        FeedMsg::upsert(0, &[Coeff { asset: 0, coeff: 10 }, Coeff { asset: 1, coeff: -9 }]),
        FeedMsg::Tick { asset: 0, price: price(80) }, // 800 - 900 < 0: breach
    ]
}

#[test]
fn tcp_feed_detects_gaps_duplicates_and_malformed_frames() {
    let counters = Arc::new(Counters::default());
    let (tx, h, breached, clock) = pipeline_with(counters.clone(), Arc::default());
    let l = listen::tcp("127.0.0.1:0", tx.clone(), clock, counters.clone()).unwrap();
    let mut s = TcpStream::connect(l.addr()).unwrap();
    let m = script();
    // seq 1, 2, 2 again (duplicate), 5 (gap of 2), 6; written in odd-sized pieces.
    let mut bytes = vec![];
    for (seq, msg) in [(1, m[0]), (2, m[1]), (2, m[1]), (5, m[2]), (6, m[3])] {
        bytes.extend(frame(seq, msg));
    }
    for chunk in bytes.chunks(37) {
        s.write_all(chunk).unwrap();
    }
    wait_for("four messages applied", || counters.ticks.load(Ordering::Relaxed) == 3);
    assert_eq!(counters.feed_duplicates.load(Ordering::Relaxed), 1);
    assert_eq!(counters.feed_gaps.load(Ordering::Relaxed), 2);
    // A malformed frame closes the connection; the sender reconnects and carries on.
    s.write_all(b"GARBAGE-NOT-A-FRAME-AT-ALL-24B").unwrap();
    wait_for("malformed counted", || counters.feed_malformed.load(Ordering::Relaxed) == 1);
    let mut buf = [0u8; 1];
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "connection closed after a malformed frame");
    let mut s2 = TcpStream::connect(l.addr()).unwrap();
    s2.write_all(&frame(7, FeedMsg::Tick { asset: 0, price: price(120) })).unwrap();
    wait_for("tick after reconnect", || counters.ticks.load(Ordering::Relaxed) == 4);
    let rep = l.stop();
    assert_eq!(
        (rep.seq.taken, rep.seq.gaps, rep.seq.duplicates, rep.malformed, rep.connections),
        (5, 1, 1, 1, 2)
    );
    replay::end(&tx, &clock, 99);
    let r = h.join().unwrap();
    assert_eq!(*breached.lock().unwrap(), vec![0], "slot 0 breached once");
    assert_eq!(r.breach[0] & 1, 0, "and recovered at 120");
}

#[test]
fn udp_feed_detects_gaps_duplicates_and_malformed_datagrams() {
    let counters = Arc::new(Counters::default());
    let (tx, h, breached, clock) = pipeline_with(counters.clone(), Arc::default());
    let l = listen::udp("127.0.0.1:0", tx.clone(), clock, counters.clone()).unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let m = script();
    // Two frames in one datagram, then a duplicate, a malformed datagram, a gap.
    let mut two = frame(10, m[0]);
    two.extend(frame(11, m[1]));
    s.send_to(&two, l.addr()).unwrap();
    s.send_to(&frame(11, m[1]), l.addr()).unwrap();
    let mut bad = frame(12, m[2]);
    bad.truncate(bad.len() - 3);
    s.send_to(&bad, l.addr()).unwrap();
    s.send_to(&frame(12, m[2]), l.addr()).unwrap();
    s.send_to(&frame(20, m[3]), l.addr()).unwrap();
    wait_for("messages applied", || counters.ticks.load(Ordering::Relaxed) == 3);
    let rep = l.stop();
    assert_eq!((rep.seq.duplicates, rep.seq.gaps, rep.seq.missing, rep.malformed), (1, 1, 7, 1));
    replay::end(&tx, &clock, 99);
    h.join().unwrap();
    assert_eq!(*breached.lock().unwrap(), vec![0]);
}

/// A GET over loopback: (status line, body).
fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

#[test]
fn metrics_endpoint_serves_openmetrics_counters_and_stage_histograms() {
    let counters = Arc::new(Counters::default());
    let x = Arc::new(Exposition::new(counters.clone(), vec!["A".into(), "B".into()]));
    let server = MetricsServer::start("127.0.0.1:0", x, MetricsOptions::default()).unwrap();
    let (tx, h, _b, clock) = pipeline_with(counters.clone(), Arc::default());
    let msgs: Vec<(i64, FeedMsg)> = script().into_iter().map(|m| (0, m)).collect();
    replay::replay(msgs.iter().copied(), replay::Pace::Flood, &tx, &clock, 0);
    replay::end(&tx, &clock, 4);
    h.join().unwrap();
    let (status, text) = get(server.addr(), "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let fams = families(&text).unwrap_or_else(|e| panic!("not OpenMetrics: {e}\n{text}"));
    assert!(fams.contains(&("liqscan_stage_latency_seconds".into(), "histogram".into())), "{text}");
    assert!(text.contains("liqscan_ticks_total 3\n"), "{text}");
    assert!(text.contains("liqscan_breaches_total 1\n"), "{text}");
    assert!(text.contains("liqscan_stage_latency_seconds_count{stage=\"feed_to_dispatch\"} 3\n"), "{text}");
    assert!(
        text.contains("liqscan_stage_latency_seconds_bucket{le=\"+Inf\",stage=\"engine\"} 3\n"),
        "{text}"
    );
    assert!(text.contains("liqscan_engine_card 0\n"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}
