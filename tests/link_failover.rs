//! End to end: the emulated card as its own process (`liqscan card`) serves the pipeline over
//! /dev/shm; the test kills it mid-replay. The watchdog fails over to the software engine,
//! which is rebuilt from the host's copy of the book and replays the tick in flight: the
//! breaches dispatched are exactly those of a software-only run.
//!
//! ```text
//!  replay ──> pipeline ──CardLink──> /dev/shm <── liqscan card (child process)   kill -9
//!                 └─ watchdog ─> SoftwareEngine (rebuilt) ─> same breaches
//! ```
//!
//! One card per link file (issue 17): a second card on a held file is refused, a file left by
//! a killed card is named as such by the host and taken over by the next card, and a host
//! whose link file is taken by a new card fails over on the generation change.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::SoftwareEngine;
use liqscan_host::engine::failover::FailoverEngine;
use liqscan_host::keeper::{Keeper, KeeperConfig, Workload};
use liqscan_host::link::{CardLink, LinkEngine, LinkMemory, LinkOptions};
use liqscan_host::metrics::Counters;
use liqscan_host::pipeline::dispatch::KeeperBook;
use liqscan_host::pipeline::{Backend, FeedMsg, PipelineReport};
use liqscan_sim::card::{CardThread, ServeOptions, SoftwareCard};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SLOTS: usize = 300;
const ASSETS: usize = 6;

fn workload() -> Vec<(i64, FeedMsg)> {
    let mut rng = ChaCha8Rng::seed_from_u64(44);
    let mut msgs = vec![];
    let q = |p: u32| PriceEntry {
        spot: QuotedPrice { asset: p, liability: p },
        stressed: QuotedPrice { asset: p * 9 / 10, liability: p * 11 / 10 },
    };
    for a in 0..ASSETS {
        msgs.push((0, FeedMsg::Tick { asset: a as u16, price: q(1000) }));
    }
    for s in 0..SLOTS {
        let (c, d) = (rng.gen_range(0..ASSETS as u16), rng.gen_range(0..ASSETS as u16));
        let coll = rng.gen_range(100..10_000);
        let mut t = Vec::with_capacity(2);
        t.push(Coeff { asset: c, coeff: coll });
        if d != c {
            t.push(Coeff { asset: d, coeff: -(coll as f64 * rng.gen_range(0.6..0.95)) as i32 });
        }
        msgs.push((0, FeedMsg::upsert(s as u32, &t)));
    }
    let mut p = [1000i64; ASSETS];
    for i in 0..3000 {
        let a = rng.gen_range(0..ASSETS);
        p[a] = (p[a] + rng.gen_range(-40..=40)).clamp(200, 5000);
        msgs.push((i, FeedMsg::Tick { asset: a as u16, price: q(p[a] as u32) }));
        if i % 97 == 0 {
            let s = rng.gen_range(0..SLOTS as u32);
            msgs.push((i, FeedMsg::Remove { slot: s }));
        }
    }
    msgs
}

type Changes = Arc<Mutex<Vec<(u64, u32, bool)>>>;

/// Runs `msgs` through a keeper on `be` at `pace` (no dispatch): its report and breach changes.
fn run(
    be: Backend,
    msgs: &[(i64, FeedMsg)],
    counters: Arc<Counters>,
    pace: &str,
) -> (PipelineReport, Changes) {
    let w = Workload {
        ids: (0..SLOTS).map(|s| format!("acct-{s}")).collect(),
        keeper: KeeperBook::default(),
        assets: ASSETS,
        symbols: (0..ASSETS).map(|a| format!("A{a}")).collect(),
        msgs: msgs.iter().copied().collect(),
        zero_price_ok: vec![false; ASSETS],
        // No warm-up: the backends are compared from the first message on.
        held: Vec::new(),
    };
    let r = Keeper::builder()
        .config(KeeperConfig { pace: Some(pace.into()), ..Default::default() })
        .workload(w)
        .engine(be)
        .without_dispatch()
        .counters(counters, Arc::default())
        .start()
        .expect("keeper starts")
        .finish()
        .expect("keeper finishes");
    let changes = r.changes.iter().map(|c| (c.seq, c.slot, c.breached)).collect();
    (r.report, Arc::new(Mutex::new(changes)))
}

#[test]
fn killing_the_card_process_mid_replay_loses_no_breach() {
    let msgs = workload();
    let (sw, sw_changes) = run(Box::new(SoftwareEngine::new(SLOTS, ASSETS)), &msgs, Arc::default(), "flood");
    let sw_changes = sw_changes.lock().unwrap().clone();
    assert!(sw_changes.len() > 50, "the workload should breach accounts: {}", sw_changes.len());

    let shm = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let path = shm.join(format!("liqscan-failover-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut child = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["card", "--shm", path.to_str().unwrap(), "--accounts", "320", "--assets", "6"])
        .args(["--evt-entries", "1024"])
        .stderr(Stdio::null())
        .spawn()
        .expect("start liqscan card");
    let start = Instant::now();
    let mem = loop {
        match LinkMemory::shm_open(&path) {
            Ok(m) => break m,
            Err(e) if start.elapsed() > Duration::from_secs(20) => panic!("card never came up: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let opts = LinkOptions {
        timeout: Duration::from_millis(300),
        open_timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let link = CardLink::open(mem, opts).expect("link to the card process");
    let engine = LinkEngine::new(link, SLOTS, ASSETS).expect("card engine");
    let counters = Arc::new(Counters::default());
    let watch = counters.clone();
    let killer = std::thread::spawn(move || {
        while watch.ticks.load(Ordering::Relaxed) < 1200 {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().expect("kill card");
        child.wait().unwrap();
        watch.ticks.load(Ordering::Relaxed)
    });
    let (card, card_changes) =
        run(Box::new(FailoverEngine::new(Box::new(engine))), &msgs, counters.clone(), "fixed:8000");
    let killed_at = killer.join().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(killed_at < 3000 + ASSETS as u64, "the card was killed mid-replay (at tick {killed_at})");
    assert_eq!(card.failovers.len(), 1, "one fail-over: {:?}", card.failovers);
    assert_eq!(counters.failovers.load(Ordering::Relaxed), 1);
    assert_eq!(card.backend, "software");
    assert_eq!(card.messages, sw.messages, "no message lost");
    assert_eq!(
        *card_changes.lock().unwrap(),
        sw_changes,
        "same breaches, in the same order, as software alone"
    );
    assert_eq!((card.breach, card.at_risk), (sw.breach, sw.at_risk));
}

/// The digest and fail-over count from `liqscan run`'s summary line.
fn summary(out: &std::process::Output) -> (String, String) {
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let line =
        text.lines().find(|l| l.contains("; digest ")).unwrap_or_else(|| panic!("no summary in:\n{text}"));
    let digest = line.rsplit("digest ").next().unwrap().trim().to_string();
    let failovers = line.split("; ").find(|p| p.ends_with("fail-overs")).unwrap().to_string();
    (digest, failovers)
}

/// A card that is there but never answers (fault injection: silent from its first command)
/// does not stop a keeper at start-up: after the first fence's watchdog the run goes on on
/// the software engine, says so, counts the fail-over, and ends with the breaches of a
/// software-only run.
#[test]
fn a_card_silent_from_the_start_fails_over_at_start_up() {
    let path = std::env::temp_dir().join(format!("liqscan-silent-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut card = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["card", "--shm", path.to_str().unwrap(), "--accounts", "256", "--assets", "16"])
        .args(["--silent-after", "0"])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start liqscan card");
    let start = Instant::now();
    while LinkMemory::shm_open(&path).is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "card never came up");
        std::thread::sleep(Duration::from_millis(10));
    }
    let run = |backend: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_liqscan"))
            .args(["run", "--demo-accounts", "200"])
            .args(backend)
            .output()
            .expect("liqscan run")
    };
    let on_card = run(&["--backend", "shm", "--shm", path.to_str().unwrap()]);
    let _ = card.kill();
    let _ = card.wait();
    let _ = std::fs::remove_file(&path);
    let reference = run(&["--backend", "software"]);
    assert!(on_card.status.success(), "run failed: {}", String::from_utf8_lossy(&on_card.stderr));
    let err = String::from_utf8_lossy(&on_card.stderr);
    assert!(err.contains("FAIL-OVER: the card did not answer at start-up"), "{err}");
    let (digest, failovers) = summary(&on_card);
    let (want, none) = summary(&reference);
    assert_eq!(failovers, "1 fail-overs");
    assert_eq!(none, "0 fail-overs");
    assert_eq!(digest, want, "the same breaches as a software-only run");
}

/// A directory for link files: /dev/shm where there is one.
fn shm_dir() -> PathBuf {
    if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() }
}

/// Starts `liqscan card` on `path`, its stderr into `log` (read while it runs).
fn start_card(path: &std::path::Path, log: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["card", "--shm", path.to_str().unwrap(), "--accounts", "256", "--assets", "16"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start liqscan card")
}

/// Waits until a card serves `path`; returns the generation the host sees.
fn wait_served(path: &std::path::Path) -> u32 {
    let start = Instant::now();
    loop {
        match LinkMemory::shm_open(path) {
            Ok(m) => return m.shm_file().expect("a link file").generation(),
            Err(e) if start.elapsed() > Duration::from_secs(20) => panic!("card never came up: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn run_demo(backend: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["run", "--demo-accounts", "200"])
        .args(backend)
        .output()
        .expect("liqscan run")
}

/// The defect as found: two `liqscan card --shm F` at once, then a keeper on F. Before the
/// link was exclusive the second card served too, both answered the host, and 3 runs of 5 ended
/// with a wrong digest and no fail-over. Now the second card refuses, naming the file and the
/// first card, and the keeper's breaches are a software-only run's.
#[test]
fn a_second_card_on_the_same_link_file_is_refused_and_the_keeper_stays_right() {
    let dir = tempfile::tempdir().unwrap();
    let path = shm_dir().join(format!("liqscan-two-cards-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut first = start_card(&path, &dir.path().join("first.log"));
    assert_eq!(wait_served(&path), 1);
    let second_log = dir.path().join("second.log");
    let mut second = start_card(&path, &second_log);
    let start = Instant::now();
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(15) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let keeper = status.is_some().then(|| run_demo(&["--backend", "shm", "--shm", path.to_str().unwrap()]));
    let _ = second.kill();
    let _ = second.wait();
    let first_pid = first.id();
    let _ = first.kill();
    let _ = first.wait();
    let _ = std::fs::remove_file(&path);
    let status = status.expect("the second card is still serving the first card's link file after 15 s");
    assert!(!status.success(), "the second card must refuse");
    let err = std::fs::read_to_string(&second_log).unwrap();
    let want = format!("{} is already served by another card (pid {first_pid}, ", path.display());
    assert!(err.contains(&want), "the refusal names the file and the owner: {err}");
    let keeper = keeper.unwrap();
    assert!(keeper.status.success(), "run failed: {}", String::from_utf8_lossy(&keeper.stderr));
    let (digest, failovers) = summary(&keeper);
    let (want, _) = summary(&run_demo(&["--backend", "software"]));
    assert_eq!(failovers, "0 fail-overs");
    assert_eq!(digest, want, "the same breaches as a software-only run");
}

/// A card killed (here by SIGKILL; SIGTERM leaves the same) leaves its link file behind with its
/// lock free. The host says no card serves it and how to start one; the next card takes it
/// over with the next generation, says so, and serves a keeper correctly.
#[test]
fn a_killed_cards_stale_file_is_named_by_the_host_and_reused_by_the_next_card() {
    let dir = tempfile::tempdir().unwrap();
    let path = shm_dir().join(format!("liqscan-stale-{}", std::process::id()));
    let p = path.to_str().unwrap();
    let _ = std::fs::remove_file(&path);
    let mut first = start_card(&path, &dir.path().join("first.log"));
    assert_eq!(wait_served(&path), 1);
    let first_pid = first.id();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(path.exists(), "a killed card leaves its file");
    let e = LinkMemory::shm_open(&path).expect_err("the host opened a file no card serves").to_string();
    assert!(e.contains("no card is serving this link file"), "{e}");
    assert!(e.contains(&format!("pid {first_pid}, ")), "{e}");
    assert!(e.ends_with(&format!("start one: `liqscan card --shm {p}`")), "{e}");
    let refused = run_demo(&["--backend", "shm", "--shm", p]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains(&format!("`liqscan card --shm {p}`")));

    let log = dir.path().join("second.log");
    let mut second = start_card(&path, &log);
    let generation = wait_served(&path);
    let owner = LinkMemory::shm_open(&path).unwrap().shm_file().unwrap().owner();
    let keeper = run_demo(&["--backend", "shm", "--shm", p]);
    let second_pid = second.id();
    let _ = second.kill();
    let _ = second.wait();
    let _ = std::fs::remove_file(&path);
    assert_eq!((generation, owner.pid), (2, second_pid));
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(err.contains(&format!("reusing stale link file {p} (its last card, pid {first_pid}, ")), "{err}");
    assert!(keeper.status.success(), "run failed: {}", String::from_utf8_lossy(&keeper.stderr));
    let (digest, failovers) = summary(&keeper);
    let (want, _) = summary(&run_demo(&["--backend", "software"]));
    assert_eq!((digest, failovers), (want, "0 fail-overs".to_string()));
}

/// `liqscan run --backend shm` on a path where no card was ever started says how to start one.
#[test]
fn a_missing_link_file_says_how_to_start_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("no-card-here");
    let p = p.to_str().unwrap();
    let out = run_demo(&["--backend", "shm", "--shm", p]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{p}: no such link file; start the card first: `liqscan card --shm {p}`")),
        "{err}"
    );
}

/// Mid-replay the card stops and a new card takes its link file (stale now, so allowed). The
/// host notices the generation change, not the watchdog (a minute here), and fails over: the
/// breaches are a software-only run's.
#[test]
fn the_host_fails_over_when_a_new_card_takes_the_link_file() {
    let msgs = workload();
    let (sw, sw_changes) = run(Box::new(SoftwareEngine::new(SLOTS, ASSETS)), &msgs, Arc::default(), "flood");
    let sw_changes = sw_changes.lock().unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("link");
    let card =
        |mem| CardThread::spawn(mem, Box::new(SoftwareCard::new(320, ASSETS)), ServeOptions::default(), None);
    let first = card(LinkMemory::shm_create(&path, 1024).unwrap());
    let watchdog = Duration::from_secs(60);
    let opts = LinkOptions { timeout: watchdog, ..Default::default() };
    let link = CardLink::open(LinkMemory::shm_open(&path).unwrap(), opts).expect("link to the card");
    assert_eq!(link.generation(), Some(1));
    let engine = LinkEngine::new(link, SLOTS, ASSETS).expect("card engine");
    let counters = Arc::new(Counters::default());
    let watch = counters.clone();
    let p = path.clone();
    let taker = std::thread::spawn(move || {
        while watch.ticks.load(Ordering::Relaxed) < 1200 {
            std::thread::sleep(Duration::from_millis(1));
        }
        first.stop();
        let (mem, previous) = LinkMemory::shm_take(&p, 1024).expect("the stopped card's file is taken over");
        assert!(matches!(previous, liqscan_host::link::Previous::Stale(o) if o.generation == 1));
        card(mem)
    });
    let t = Instant::now();
    let (rep, changes) =
        run(Box::new(FailoverEngine::new(Box::new(engine))), &msgs, counters.clone(), "fixed:8000");
    let took = t.elapsed();
    drop(taker.join().unwrap());
    assert!(took < watchdog / 2, "the replay took {took:?}: the watchdog, not the generation, ended it");
    assert_eq!(rep.failovers.len(), 1, "one fail-over: {:?}", rep.failovers);
    assert!(
        rep.failovers[0]
            .contains(&format!("{} was taken by another card (generation 1 -> 2; ", path.display())),
        "{:?}",
        rep.failovers
    );
    assert_eq!(rep.backend, "software");
    assert_eq!(rep.messages, sw.messages, "no message lost");
    assert_eq!(*changes.lock().unwrap(), sw_changes, "same breaches, in the same order, as software alone");
    assert_eq!((rep.breach, rep.at_risk), (sw.breach, sw.at_risk));
}
