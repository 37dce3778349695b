//! Two keepers on NATS JetStream, measured (scripts/bench-nats.sh runs it; needs nats-server):
//!
//! - `death`: two `liqscan run` keepers read one venue's input stream (`liqscan publish`
//!   paces the demo crash into it) and publish their orders to the venue's order stream; a
//!   bridge carries them to a loopback service. Keeper A is killed with SIGKILL at a random
//!   moment of the crash; the figure is the time from the kill to the next order the service
//!   reads (necessarily the survivor's), beside the same time measured from random moments of
//!   the second before the kill (both alive: the feed's own spacing of orders).
//! - `throughput`: the two keepers read the crash of a bigger book as fast as they can and
//!   publish their orders with the bridge stopped; then the bridge drains the stream. Figures:
//!   orders the keepers published, the duplicates the server removed, orders per second
//!   through the bridge (record fsynced per order, and in memory).
//!
//! `cargo bench --bench nats_keepers --profile test -- [death RUNS] [throughput ACCOUNTS]`

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use liqscan_host::dispatch::tcp::{TcpConfig, TcpExecutor};
use liqscan_nats::service::DispatchService;
use liqscan_nats::{Bridge, BridgeConfig, NatsServer, Venue};
use rand::{Rng, SeedableRng};

fn liqscan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_liqscan"))
}

fn config(d: &Path) -> String {
    let p = d.join("keeper.toml");
    // One order per breach episode, never given up (docs/OPERATOR.md, NATS).
    std::fs::write(&p, "[dispatch]\nsettle_ns = 3600000000000\nmax_attempts = 1000000\n").unwrap();
    p.display().to_string()
}

fn publish(url: &str, venue: &str, accounts: usize, pace: &str, err: &Path) -> Child {
    liqscan()
        .args(["publish", "--nats", url, "--nats-venue", venue, "--pace", pace])
        .args(["--demo-accounts", &accounts.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(err).unwrap())
        .spawn()
        .unwrap()
}

fn keeper(url: &str, venue: &str, accounts: usize, cfg: &str, name: &str, err: &Path) -> Child {
    liqscan()
        .args(["run", "--config", cfg, "--nats", url, "--nats-venue", venue, "--nats-idle-ms", "1000"])
        .args(["--demo-accounts", &accounts.to_string()])
        .args(["--executor", &format!("nats:{venue}@{url}")])
        .env("LIQSCAN_KEEPER", name)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(err).unwrap())
        .spawn()
        .unwrap()
}

fn bridge(url: &str, venue: &str, service: &DispatchService, record: Option<&Path>) -> Bridge {
    let tcp = TcpExecutor::start(TcpConfig {
        reconnect_backoff: Duration::from_millis(20),
        ..TcpConfig::new(service.addr())
    });
    Bridge::start(
        BridgeConfig {
            record: record.map(Path::to_path_buf),
            ack_wait: Duration::from_secs(2),
            max_ack_pending: 10_000,
            ..BridgeConfig::new(url, Venue::new(venue).unwrap())
        },
        Box::new(tcp),
    )
    .unwrap()
}

/// Waits until the bridge has answered nothing new for `quiet`.
fn settle(b: &Bridge, quiet: Duration) {
    let (mut last, mut since) = (u64::MAX, Instant::now());
    while since.elapsed() < quiet {
        let n = b.stats().answered;
        if n != last {
            (last, since) = (n, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// One run: the crash paced into a fresh venue, two keepers, keeper A killed `at` after the
/// publisher started; returns the time from the kill to the next order the service read, the
/// same from 50 moments of the second before the kill (the feed's own spacing of orders,
/// both keepers alive), and the orders read after the kill.
fn death_run(
    server: &NatsServer,
    d: &Path,
    venue: &str,
    at: Duration,
    rng: &mut impl Rng,
) -> (Duration, Vec<Duration>, usize) {
    let url = server.url();
    let cfg = config(d);
    let service = DispatchService::start().unwrap();
    let b = bridge(&url, venue, &service, None);
    let mut a = keeper(&url, venue, 2000, &cfg, "keeper-a", &d.join(format!("{venue}-a.err")));
    let mut k = keeper(&url, venue, 2000, &cfg, "keeper-b", &d.join(format!("{venue}-b.err")));
    // Both keepers up and reading before the feed starts.
    std::thread::sleep(Duration::from_millis(400));
    let mut p = publish(&url, venue, 2000, "fixed:5000", &d.join(format!("{venue}-p.err")));
    let t0 = Instant::now();
    while t0.elapsed() < at {
        std::thread::sleep(Duration::from_micros(200));
    }
    a.kill().unwrap(); // SIGKILL
    let mark = Instant::now();
    a.wait().unwrap();
    assert!(p.wait().unwrap().success());
    assert!(k.wait().unwrap().success());
    settle(&b, Duration::from_millis(500));
    drop(b);
    let got = service.received();
    let next = |from: Instant| got.iter().filter(|r| r.at >= from).map(|r| r.at.duration_since(from)).min();
    let gap = next(mark).expect("an order after the kill");
    let base =
        (0..50).filter_map(|_| next(mark - Duration::from_micros(rng.gen_range(1_000..1_000_000)))).collect();
    (gap, base, got.iter().filter(|r| r.at >= mark).count())
}

fn death(runs: usize) {
    let Some(server) = NatsServer::start_or_skip("nats death benchmark") else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(18);
    let (mut killed, mut base) = (Vec::new(), Vec::new());
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for i in 0..runs {
        let at = Duration::from_millis(rng.gen_range(1200..2600));
        let (k, b, after) = death_run(&server, dir.path(), &format!("death{i}"), at, &mut rng);
        let mut bm: Vec<f64> = b.iter().map(|d| ms(*d)).collect();
        println!(
            "run {i}: kill {at:?} into the feed: next order after {:.2} ms, {after} orders after the kill; \
             before it, next order p50 {:.2} ms, max {:.2} ms",
            ms(k),
            pct(&mut bm, 0.5),
            pct(&mut bm, 1.0)
        );
        killed.push(ms(k));
        base.extend(bm);
    }
    println!(
        "time to the next order at the service, milliseconds ({runs} kills; {} moments before them):",
        base.len()
    );
    println!("| from | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for (name, v) in [("keeper A's SIGKILL", &mut killed), ("a moment of the second before it", &mut base)] {
        println!("| {name} | {:.2} | {:.2} | {:.2} |", pct(v, 0.5), pct(v, 0.99), pct(v, 1.0));
    }
}

fn orders_line(err: &str) -> (u64, u64) {
    // "dispatch (...): N scan batches, M orders built, S sends (...)"
    let l = err.lines().find(|l| l.starts_with("dispatch (")).unwrap_or_else(|| panic!("{err}"));
    let num = |key: &str| {
        let i = l.find(key).unwrap();
        l[..i].trim_end().rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    (num(" orders built"), num(" sends"))
}

fn throughput(accounts: usize) {
    let Some(server) = NatsServer::start_or_skip("nats throughput benchmark") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = server.url();
    let cfg = config(d);
    for (venue, record) in [("tput_fsync", true), ("tput_memory", false)] {
        let mut p = publish(&url, venue, accounts, "flood", &d.join(format!("{venue}-p.err")));
        assert!(
            p.wait().unwrap().success(),
            "{}",
            std::fs::read_to_string(d.join(format!("{venue}-p.err"))).unwrap()
        );
        let t = Instant::now();
        let mut a = keeper(&url, venue, accounts, &cfg, "keeper-a", &d.join(format!("{venue}-a.err")));
        let mut b = keeper(&url, venue, accounts, &cfg, "keeper-b", &d.join(format!("{venue}-b.err")));
        assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
        let keepers_s = t.elapsed().as_secs_f64() - 1.0; // less the idle second
        let ea = std::fs::read_to_string(d.join(format!("{venue}-a.err"))).unwrap();
        let eb = std::fs::read_to_string(d.join(format!("{venue}-b.err"))).unwrap();
        let ((built_a, sends_a), (built_b, sends_b)) = (orders_line(&ea), orders_line(&eb));
        let service = DispatchService::start().unwrap();
        let rec = d.join(format!("{venue}.record"));
        let t = Instant::now();
        let br = bridge(&url, venue, &service, record.then_some(rec.as_path()));
        settle(&br, Duration::from_millis(1500));
        let st = br.stop().unwrap();
        let got = service.received();
        let span = got.last().unwrap().at.duration_since(got[0].at).as_secs_f64();
        println!(
            "{venue}: {accounts} accounts; keepers built {built_a} + {built_b} orders, sent {sends_a} + {sends_b} in {keepers_s:.2} s; \
             stream kept {} (duplicates removed: {}); bridge: {} orders to the service in {span:.2} s = {:.0} orders/s \
             (first within {:.0} ms of its start); record {}",
            st.delivered,
            (sends_a + sends_b).saturating_sub(st.delivered),
            got.len(),
            got.len() as f64 / span,
            got[0].at.duration_since(t).as_secs_f64() * 1e3,
            if record { "fsynced per order" } else { "in memory" }
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(default))
    };
    let (d, t) = (arg("death", 10), arg("throughput", 20_000));
    let all = d.is_none() && t.is_none();
    if let Some(runs) = d.or(all.then_some(10)) {
        death(runs);
    }
    if let Some(accounts) = t.or(all.then_some(20_000)) {
        throughput(accounts);
    }
}
