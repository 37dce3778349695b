//! liqscan on a real `nats-server -js` on loopback (started and stopped by each test; skipped
//! with a printed reason where the server is not installed).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use liqscan_host::dispatch::tcp::{TcpConfig, TcpExecutor};
use liqscan_host::dispatch::{Completion, Executor, LiquidationOrder, OrderKey, OrderKind, Outcome};
use liqscan_nats::service::DispatchService;
use liqscan_nats::{Bridge, BridgeConfig, NatsConfig, NatsExecutor, NatsServer, Venue};

fn venue() -> Venue {
    Venue::new("demo").unwrap()
}

/// The order a keeper builds for the first liquidation of `account` in breach episode
/// `episode`: its id from the key alone.
fn order(account: u64, episode: u64) -> LiquidationOrder {
    let key = OrderKey { account, episode, ordinal: 1 };
    LiquidationOrder {
        id: key.id(),
        account,
        slot: account as u32,
        attempt: 1,
        episode,
        ordinal: 1,
        kind: OrderKind::Kick,
        value_at_risk: 1000 + account as i128,
        created_ns: 0,
        prebuilt: false,
    }
}

fn keeper(s: &NatsServer, name: &str) -> NatsExecutor {
    let e = NatsExecutor::start(NatsConfig::new(s.url(), venue(), name)).unwrap();
    assert!(e.wait_up(Duration::from_secs(10)), "{name} not up: {}", e.last_error());
    e
}

/// Submits every order (retrying while the executor is busy) and waits for a completion of
/// each; returns the completions.
fn publish_all(e: &mut NatsExecutor, orders: &[LiquidationOrder]) -> Vec<Completion> {
    let mut out = Vec::new();
    for o in orders {
        let end = Instant::now() + Duration::from_secs(10);
        while let Err(err) = e.submit(o) {
            assert!(Instant::now() < end, "submit: {err}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let end = Instant::now() + Duration::from_secs(10);
    while out.len() < orders.len() && Instant::now() < end {
        e.poll(&mut out);
        std::thread::sleep(Duration::from_millis(1));
    }
    out
}

fn tcp_to(service: &DispatchService) -> Box<dyn Executor + Send> {
    Box::new(TcpExecutor::start(TcpConfig {
        reconnect_backoff: Duration::from_millis(20),
        connect_timeout: Duration::from_millis(200),
        ..TcpConfig::new(service.addr())
    }))
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Messages in the venue's order stream, read with a plain client.
fn stream_messages(s: &NatsServer) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = async_nats::connect(s.url()).await.unwrap();
        let js = async_nats::jetstream::new(c);
        let mut st = js.get_stream(venue().orders_stream()).await.unwrap();
        st.info().await.unwrap().state.messages
    })
}

#[test]
fn harness_starts_restarts_and_stops_a_server() {
    let Some(mut s) = NatsServer::start_or_skip("harness_starts_restarts_and_stops_a_server") else { return };
    let addr = s.addr();
    assert!(addr.ip().is_loopback());
    assert!(std::net::TcpStream::connect(addr).is_ok());
    assert!(s.store().exists());
    s.restart().unwrap();
    assert_eq!(s.addr(), addr, "a restart keeps the port");
    assert!(std::net::TcpStream::connect(addr).is_ok());
    let store = s.store().to_path_buf();
    drop(s);
    assert!(std::net::TcpStream::connect(addr).is_err(), "stopped on drop");
    assert!(!store.exists(), "the store is removed");
}

#[test]
fn two_keepers_publishing_the_same_orders_leave_one_of_each_in_the_stream() {
    let Some(s) = NatsServer::start_or_skip("two_keepers_publishing_the_same_orders") else { return };
    let orders: Vec<_> = (0..200).map(|a| order(a, 40 + a % 7)).collect();
    let (mut a, mut b) = (keeper(&s, "keeper-a"), keeper(&s, "keeper-b"));
    let ca = publish_all(&mut a, &orders);
    let cb = publish_all(&mut b, &orders);
    for c in [&ca, &cb] {
        assert_eq!(c.len(), orders.len());
        assert!(c.iter().all(|c| c.outcome == Outcome::Sent), "every order acknowledged");
    }
    // A retry (same id, higher attempt) is a duplicate too.
    let retry = LiquidationOrder { attempt: 2, ..orders[3].clone() };
    assert_eq!(publish_all(&mut a, &[retry])[0].outcome, Outcome::Sent);
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.published + sb.published, 200, "{sa:?} {sb:?}");
    assert_eq!(sa.duplicates + sb.duplicates, 201, "{sa:?} {sb:?}");
    assert_eq!(stream_messages(&s), 200);
}

#[test]
fn an_unreachable_server_is_refused_with_its_address_and_orders_back_off() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("nats://127.0.0.1:{port}");
    let mut e = NatsExecutor::start(NatsConfig::new(url.clone(), venue(), "k")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let err = e.submit(&order(1, 1)).unwrap_err();
    assert!(matches!(err, liqscan_host::dispatch::SubmitError::Unavailable { .. }));
    assert!(err.to_string().contains(&url), "{err}");
}

#[test]
fn bridge_hands_each_order_to_the_service_once_across_its_restarts() {
    let Some(s) = NatsServer::start_or_skip("bridge_hands_each_order_once") else { return };
    let dir = tempfile::tempdir().unwrap();
    // A slow venue (1 ms an order), so each stop below finds orders with the service.
    let service = DispatchService::start_on("127.0.0.1:0", Duration::from_millis(1)).unwrap();
    let orders: Vec<_> = (0..300).map(|a| order(a, 9)).collect();
    let (mut a, mut b) = (keeper(&s, "keeper-a"), keeper(&s, "keeper-b"));
    publish_all(&mut a, &orders[..200]);
    publish_all(&mut b, &orders[100..]);
    // Messages the client had pulled when a run stopped come again after ack_wait.
    let cfg = BridgeConfig {
        record: Some(dir.path().join("bridge.record")),
        ack_wait: Duration::from_secs(1),
        ..BridgeConfig::new(s.url(), venue())
    };
    let mut answered = 0;
    // Three runs of the bridge, each stopped part-way (the last one runs to the end).
    for stop_at in [60, 170, 300] {
        let bridge = Bridge::start(cfg.clone(), tcp_to(&service)).unwrap();
        wait_until("bridge progress", Duration::from_secs(20), || {
            bridge.stats().answered + answered >= stop_at
        });
        let st = bridge.stop().unwrap();
        println!("bridge run stopped at {stop_at}: {st:?}");
        assert_eq!(st.malformed, 0);
        answered += st.answered;
    }
    assert_eq!(answered, 300);
    let receipts = service.receipts();
    assert_eq!(receipts.len(), 300, "every order reached the service");
    let twice: Vec<_> = receipts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "orders handed over twice: {twice:?}");
    // A new consumer name redelivers the whole stream: the record keeps the service clear.
    let again = Bridge::start(BridgeConfig { durable: "other".into(), ..cfg }, tcp_to(&service)).unwrap();
    wait_until("redelivery", Duration::from_secs(20), || again.stats().already_done == 300);
    let st = again.stop().unwrap();
    assert_eq!((st.handed, st.delivered), (0, 0), "{st:?}");
    assert_eq!(service.received().len(), 300);
}

#[test]
fn bridge_refuses_malformed_messages_and_goes_on() {
    let Some(s) = NatsServer::start_or_skip("bridge_refuses_malformed_messages") else { return };
    let service = DispatchService::start().unwrap();
    let mut k = keeper(&s, "k");
    publish_all(&mut k, &[order(1, 1)]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(s.url()).await.unwrap());
        let subject = venue().orders_subject();
        let bad = |id: &str, body: &str| {
            async_nats::jetstream::message::PublishMessage::build()
                .payload(body.to_string().into())
                .message_id(id)
        };
        // Not JSON; an order under another order's id; no message id at all.
        js.send_publish(subject.clone(), bad("x1", "{not json")).await.unwrap().await.unwrap();
        let other = serde_json::to_string(&order(2, 1)).unwrap();
        js.send_publish(subject.clone(), bad("12345", &other)).await.unwrap().await.unwrap();
        js.publish(subject.clone(), other.clone().into()).await.unwrap().await.unwrap();
    });
    publish_all(&mut k, &[order(3, 1)]);
    let bridge = Bridge::start(BridgeConfig::new(s.url(), venue()), tcp_to(&service)).unwrap();
    wait_until("bridge", Duration::from_secs(20), || {
        let st = bridge.stats();
        st.answered == 2 && st.malformed == 3
    });
    let st = bridge.stop().unwrap();
    assert_eq!(st.handed, 2, "{st:?}");
    let ids: HashMap<_, _> = service.receipts();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains_key(&order(1, 1).id) && ids.contains_key(&order(3, 1).id));
}

#[test]
fn candidates_go_out_per_venue_once_per_event_in_the_documented_schema() {
    use liqscan_host::pipeline::BreachSink;
    use liqscan_nats::{Candidate, CandidateKind, CandidatePublisher};
    let Some(s) = NatsServer::start_or_skip("candidates_go_out_per_venue") else { return };
    let accounts: Vec<u64> = (0..8).map(|slot| 1000 + slot).collect();
    // Two keepers see the same scans; the server keeps one copy of each event.
    for keeper in ["keeper-a", "keeper-b"] {
        let (publisher, mut tap) =
            CandidatePublisher::start(&s.url(), venue(), keeper, accounts.clone(), 64).unwrap();
        tap.on_scan(5, &[1, 2], &[], &[3]);
        tap.on_scan(9, &[], &[2], &[]);
        let end = Instant::now() + Duration::from_secs(10);
        while publisher.stats().published + publisher.stats().failed < 4 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        let st = publisher.stats();
        assert_eq!((st.published, st.dropped, st.failed), (4, 0, 0), "{keeper}: {st:?}");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let got: Vec<(Candidate, serde_json::Value)> = rt.block_on(async {
        use futures_util::StreamExt;
        let js = async_nats::jetstream::new(async_nats::connect(s.url()).await.unwrap());
        let stream = js.get_stream(venue().candidates_stream()).await.unwrap();
        let c =
            stream.create_consumer(async_nats::jetstream::consumer::pull::Config::default()).await.unwrap();
        let mut batch = c.fetch().max_messages(100).messages().await.unwrap();
        let mut out = Vec::new();
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            out.push((
                serde_json::from_slice(&m.payload).unwrap(),
                serde_json::from_slice(&m.payload).unwrap(),
            ));
        }
        out
    });
    let kinds: Vec<_> = got.iter().map(|(c, _)| (c.kind, c.seq, c.slot, c.account)).collect();
    assert_eq!(
        kinds,
        [
            (CandidateKind::Breach, 5, 1, 1001),
            (CandidateKind::Breach, 5, 2, 1002),
            (CandidateKind::AtRisk, 5, 3, 1003),
            (CandidateKind::Recovery, 9, 2, 1002),
        ]
    );
    let (first, json) = &got[0];
    assert_eq!(first.keeper, "keeper-a", "the first publication is kept");
    assert_eq!(json["schema"], "liqscan-candidate/1");
    assert_eq!(json["venue"], "demo");
    assert_eq!(json["kind"], "breach");
    assert_eq!(got[2].1["kind"], "at_risk");
    assert_eq!(got[3].1["kind"], "recovery");
}
