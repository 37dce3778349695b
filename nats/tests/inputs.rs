//! Inputs on a stream, in one process: a keeper reading the venue's JetStream input stream
//! against the same frames given to it directly on its TCP feed listener. Skipped (with a
//! printed reason) where `nats-server` is not installed.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use liqscan_host::feed::wire::{self, Frame};
use liqscan_host::keeper::{Keeper, KeeperConfig, Workload};
use liqscan_host::metrics::{Counters, Published};
use liqscan_host::pipeline::FeedMsg;
use liqscan_nats::{InputPublisher, NatsServer, Venue};

const ACCOUNTS: usize = 1000;

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap().lines().map(str::to_string).collect()
}

/// The demo book's shape with no messages of its own (the feed brings them), and its
/// messages: each account an upsert, then the crash's ticks.
fn demo() -> (Workload, Vec<(i64, FeedMsg)>) {
    let mut w = Workload::demo(ACCOUNTS).unwrap();
    let msgs = std::mem::take(&mut w.msgs).iter().collect();
    (w, msgs)
}

/// The frames given directly: a keeper with a TCP listener and nothing to replay, frame i
/// numbered i + 1; returns its events file's lines.
fn direct(msgs: &[(i64, FeedMsg)], out: &Path) -> Vec<String> {
    let (w, _) = demo();
    let counters = Arc::new(Counters::default());
    let mut cfg = KeeperConfig { out: Some(out.into()), ..KeeperConfig::default() };
    cfg.feed.listen_ms = Some(60_000);
    let k = Keeper::builder()
        .config(cfg)
        .workload(w)
        .listen_tcp("127.0.0.1:0")
        .counters(counters.clone(), Arc::new(Published::default()))
        .start()
        .unwrap();
    let addr = k.listen_addrs()[0].1;
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    let mut buf = Vec::new();
    let mut bytes = Vec::new();
    for (i, (ts, m)) in msgs.iter().enumerate() {
        wire::encode(&Frame { seq: i as u64 + 1, ts_ns: *ts as u64, msg: *m }, &mut buf);
        bytes.extend_from_slice(&buf);
    }
    conn.write_all(&bytes).unwrap();
    let applied = || counters.ticks.load(Ordering::Relaxed) + counters.deltas.load(Ordering::Relaxed);
    let end = Instant::now() + Duration::from_secs(30);
    while applied() < msgs.len() as u64 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(applied(), msgs.len() as u64, "the listener took every frame");
    k.stop();
    k.finish().unwrap();
    lines(out)
}

/// A keeper reading `venue`'s input stream until it has been idle 500 ms; returns its events
/// file's lines and its counters.
fn from_stream(server: &NatsServer, venue: &str, out: &Path) -> (Vec<String>, Arc<Counters>) {
    let (w, _) = demo();
    let counters = Arc::new(Counters::default());
    let cfg = KeeperConfig {
        out: Some(out.into()),
        nats: Some(server.url()),
        nats_venue: Some(venue.into()),
        nats_idle_ms: Some(500),
        ..KeeperConfig::default()
    };
    let notes: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let n = notes.clone();
    let k = Keeper::builder()
        .config(cfg)
        .workload(w)
        .inputs_with(liqscan_nats::inputs::source(server.url(), Venue::new(venue).unwrap()))
        .counters(counters.clone(), Arc::new(Published::default()))
        .notes(move |s| n.lock().unwrap().push(s.to_string()))
        .start()
        .unwrap();
    let r = k.finish().unwrap();
    assert!(r.stopped_by.is_none());
    let notes = notes.lock().unwrap().join("\n");
    assert!(notes.contains("inputs nats://"), "the report names the server: {notes}");
    (lines(out), counters)
}

fn publisher(server: &NatsServer, venue: &str) -> InputPublisher {
    InputPublisher::connect(&server.url(), Venue::new(venue).unwrap(), None, Duration::from_secs(5)).unwrap()
}

#[test]
fn a_keeper_fed_from_the_stream_gives_the_events_of_the_same_feed_given_directly() {
    let Some(server) = NatsServer::start_or_skip("keeper fed from the stream") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_, msgs) = demo();
    let mut p = publisher(&server, "demo");
    for (ts, m) in &msgs {
        p.publish(m, *ts as u64).unwrap();
    }
    let want = direct(&msgs, &dir.path().join("direct.jsonl"));
    assert!(want.len() > 100, "the crash breaches accounts ({} events)", want.len());
    let (got, counters) = from_stream(&server, "demo", &dir.path().join("stream.jsonl"));
    assert_eq!(got, want, "the same events, line for line");
    let i = &counters.inputs;
    assert_eq!(i.taken.load(Ordering::Relaxed), msgs.len() as u64);
    assert_eq!(i.last_seq.load(Ordering::Relaxed), msgs.len() as u64);
}

/// Messages that are not one well-formed frame of their subject's kind, or that name what
/// the book does not have, are refused and counted by reason; the frames around them give
/// exactly the events they give without them (renumbered past the refused ones).
#[test]
fn malformed_and_misplaced_input_messages_are_refused_counted_and_never_reach_the_book() {
    let Some(server) = NatsServer::start_or_skip("malformed input messages") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (w, msgs) = demo();
    let first_tick = msgs.iter().position(|(_, m)| matches!(m, FeedMsg::Tick { .. })).unwrap();
    // The refused messages go in after the book and a third of the crash.
    let split = first_tick + (msgs.len() - first_tick) / 3;
    let mut clean = publisher(&server, "clean");
    let mut dirty = publisher(&server, "dirty");
    for (ts, m) in &msgs[..split] {
        clean.publish(m, *ts as u64).unwrap();
        dirty.publish(m, *ts as u64).unwrap();
    }
    let dv = Venue::new("dirty").unwrap();
    // A crash to a price of 1: every account holding the asset would breach if it got in.
    let FeedMsg::Tick { asset, mut price } = msgs[split].1 else { panic!("a tick") };
    price.spot.asset = 1;
    price.stressed.asset = 1;
    let crash = FeedMsg::Tick { asset, price };
    let frame = |m: FeedMsg| {
        let mut b = Vec::new();
        wire::encode(&Frame { seq: 1, ts_ns: 0, msg: m }, &mut b);
        b
    };
    let upsert = frame(msgs[0].1);
    let mut trailing = frame(crash);
    trailing.push(0);
    let mut zero = price;
    zero.spot.asset = 0;
    let bad: Vec<(String, Vec<u8>, &str)> = vec![
        (dv.ticks_subject(), b"not a frame".to_vec(), "malformed"),
        (dv.ticks_subject(), trailing, "malformed"),
        (dv.accounts_subject(), frame(crash), "wrong_subject"),
        (dv.ticks_subject(), upsert, "wrong_subject"),
        (dv.accounts_subject(), frame(FeedMsg::Remove { slot: w.ids.len() as u32 }), "unknown"),
        (dv.ticks_subject(), frame(FeedMsg::Tick { asset: w.assets as u16, price }), "unknown"),
    ];
    let mut zero_ok = w.zero_price_ok.iter().enumerate().filter(|(_, ok)| !**ok);
    let zero_asset = zero_ok.next().map(|(a, _)| a as u16).unwrap();
    let mut bad = bad;
    bad.push((dv.ticks_subject(), frame(FeedMsg::Tick { asset: zero_asset, price: zero }), "zero_price"));
    for (subject, bytes, _) in &bad {
        dirty.publish_raw(subject, bytes).unwrap();
    }
    for (ts, m) in &msgs[split..] {
        clean.publish(m, *ts as u64).unwrap();
        dirty.publish(m, *ts as u64).unwrap();
    }
    let (want, _) = from_stream(&server, "clean", &dir.path().join("clean.jsonl"));
    let (got, counters) = from_stream(&server, "dirty", &dir.path().join("dirty.jsonl"));
    // The clean stream's message n is the dirty one's n + (refused before it).
    let shift = |line: &str| {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        if seq > split as u64 {
            v["seq"] = (seq + bad.len() as u64).into();
        }
        v
    };
    let want: Vec<serde_json::Value> = want.iter().map(|l| shift(l)).collect();
    let got: Vec<serde_json::Value> = got.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(want.len() > 100, "the crash breaches accounts ({} events)", want.len());
    assert_eq!(got, want, "the refused messages changed nothing");
    let i = &counters.inputs;
    for reason in liqscan_host::feed::intake::Refusal::ALL {
        let n = bad.iter().filter(|(_, _, r)| *r == reason.label()).count() as u64;
        assert_eq!(i.refused(reason), n, "{reason}");
    }
    assert_eq!(i.taken.load(Ordering::Relaxed), msgs.len() as u64);
    assert_eq!(i.received.load(Ordering::Relaxed), (msgs.len() + bad.len()) as u64);
}

/// Without a server the publisher said only "jetstream request timed out" after 1 s; it now
/// waits its timeout for the connection and names why there is none. Needs no nats-server.
#[test]
fn a_publisher_without_a_server_names_why() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("nats://127.0.0.1:{port}");
    let t = Instant::now();
    let e = match InputPublisher::connect(&url, Venue::new("demo").unwrap(), None, Duration::from_millis(300))
    {
        Ok(_) => panic!("connected to {url} where nothing listens"),
        Err(e) => e,
    };
    assert!(e.starts_with(&format!("nats server {url}: not connected within 300ms")), "{e}");
    assert!(e.to_lowercase().contains("refused"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}
