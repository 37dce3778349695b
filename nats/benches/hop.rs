//! The JetStream hop's added latency: from an order handed to the executor (`submit`, right
//! after the dispatcher built it) to the order read by the downstream service, on loopback,
//! for the direct TCP executor and for NATS (keeper executor → nats-server → bridge → TCP),
//! in one run, orders one at a time at a steady pace.
//!
//! `cargo bench -p liqscan-nats --bench hop` (needs nats-server; LIQSCAN_HOP_ORDERS sets the
//! count, default 5000; the pace is one order a millisecond).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use liqscan_host::dispatch::tcp::{TcpConfig, TcpExecutor};
use liqscan_host::dispatch::{Executor, LiquidationOrder, OrderId, OrderKey, OrderKind};
use liqscan_nats::service::DispatchService;
use liqscan_nats::{Bridge, BridgeConfig, NatsConfig, NatsExecutor, NatsServer, Venue};

fn order(n: u64, episode: u64) -> LiquidationOrder {
    let key = OrderKey { account: n, episode, ordinal: 1 };
    LiquidationOrder {
        id: key.id(),
        account: n,
        slot: n as u32,
        attempt: 1,
        episode,
        ordinal: 1,
        kind: OrderKind::Kick,
        value_at_risk: 1,
        created_ns: 0,
        prebuilt: false,
    }
}

/// Sends `n` orders one a millisecond through `exec`; returns submit-to-service latencies (µs).
fn drive(exec: &mut dyn Executor, service: &DispatchService, n: u64, episode: u64) -> Vec<f64> {
    let mut sent: HashMap<OrderId, Instant> = HashMap::new();
    let mut done = Vec::new();
    for i in 0..n {
        let o = order(i, episode);
        let t = Instant::now();
        while exec.submit(&o).is_err() {
            std::thread::sleep(Duration::from_micros(50));
        }
        sent.insert(o.id, t);
        exec.poll(&mut done);
        let next = t + Duration::from_millis(1);
        while Instant::now() < next {
            std::hint::spin_loop();
        }
    }
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end
        && service.received().iter().filter(|r| r.order.episode == episode).count() < n as usize
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut lat: Vec<f64> = service
        .received()
        .iter()
        .filter(|r| r.order.episode == episode)
        .filter_map(|r| sent.get(&r.order.id).map(|t| r.at.duration_since(*t).as_secs_f64() * 1e6))
        .collect();
    lat.sort_by(f64::total_cmp);
    lat
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let Some(server) = NatsServer::start_or_skip("hop benchmark") else { return };
    let n: u64 = std::env::var("LIQSCAN_HOP_ORDERS").ok().and_then(|s| s.parse().ok()).unwrap_or(5000);
    let service = DispatchService::start().unwrap();
    let tcp = || {
        let t = TcpExecutor::start(TcpConfig::new(service.addr()));
        assert!(t.wait_connected(Duration::from_secs(5)));
        t
    };
    let venue = Venue::new("bench").unwrap();
    let mut direct = tcp();
    let mut keeper = NatsExecutor::start(NatsConfig::new(server.url(), venue.clone(), "bench")).unwrap();
    assert!(keeper.wait_up(Duration::from_secs(10)), "{}", keeper.last_error());
    let bridge = Bridge::start(BridgeConfig::new(server.url(), venue), Box::new(tcp())).unwrap();
    // Warm-up of both paths (connections, stream, consumer).
    drive(&mut direct, &service, 200, 1);
    drive(&mut keeper, &service, 200, 2);
    let d = drive(&mut direct, &service, n, 3);
    let j = drive(&mut keeper, &service, n, 4);
    let st = bridge.stop().unwrap();
    println!("orders: {n} a path, one a millisecond, loopback; submit to service read, microseconds");
    println!("| path | orders | p50 | p90 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for (name, v) in [("direct TCP executor", &d), ("NATS JetStream + bridge", &j)] {
        println!(
            "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            v.len(),
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99),
            v[v.len() - 1]
        );
    }
    println!("bridge: {st:?}");
}
