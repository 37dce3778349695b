//! `liqscan publish` and `liqscan run --nats`: a venue's ticks and account deltas on its
//! JetStream input stream (docs/OPERATOR.md, "Inputs on a stream").
//!
//! - a journaled keeper killed with SIGKILL while the stream is being published, and
//!   restarted, resumes after the last stream sequence its journal applied: its events file
//!   and its journal's final state equal those of a keeper that read the whole stream at
//!   once, and the restart took every later message once (no duplicate, no gap);
//! - the server killed and restarted while the crash is published and read: the same;
//! - refused messages (malformed, unauthenticated with a feed secret set) are counted and
//!   logged with their subject and stream sequence;
//! - a server that does not answer is reported with its address, and the keeper goes on.
//!
//! Skipped (with a printed reason) where `nats-server` is not installed; scripts/test installs
//! it and makes the skip a failure.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use liqscan_host::feed::auth::HmacKey;
use liqscan_host::journal::JournalConfig;
use liqscan_host::journal::keeper::BookJournal;
use liqscan_host::keeper::Workload;
use liqscan_nats::{InputPublisher, NatsServer, Venue};
use rand::{Rng, SeedableRng};

fn liqscan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_liqscan"))
}

fn text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The keeper's command line: the demo book's shape, the stream's contents. It ends when the
/// stream is idle for 3 s: under a loaded test run the paced publisher has paused for over
/// 1.5 s, and a keeper that ended then read only part of the stream.
fn keeper(url: &str, journal: &Path, err: &Path) -> std::process::Child {
    keeper_idle(url, journal, err, 3000)
}

fn keeper_idle(url: &str, journal: &Path, err: &Path, idle_ms: u64) -> std::process::Child {
    liqscan()
        .args(["run", "--demo-accounts", "2000", "--nats", url, "--nats-venue", "demo"])
        .args(["--nats-idle-ms", &idle_ms.to_string(), "--journal"])
        .arg(journal)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(err).unwrap())
        .spawn()
        .unwrap()
}

/// The number after `key` in `s` (e.g. "from sequence 812").
fn number_after(s: &str, key: &str) -> Option<u64> {
    let i = s.find(key)? + key.len();
    s[i..].trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The drill's random choices: `LIQSCAN_SEED` (scripts/soak-nats.sh), else 18.
fn seeded_rng() -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(
        std::env::var("LIQSCAN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(18),
    )
}

/// `liqscan publish` pacing the demo crash (2000 accounts, about 3 s) onto venue `demo`;
/// its stderr in `d/publish.err`.
fn publish_demo_crash(url: &str, d: &Path) -> std::process::Child {
    liqscan()
        .args(["publish", "--nats", url, "--nats-venue", "demo", "--demo-accounts", "2000"])
        .args(["--pace", "fixed:5000"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("publish.err")).unwrap())
        .spawn()
        .unwrap()
}

/// Keeper A (in `d/a`) ended with the events file and journaled book of the reference keeper
/// (in `d/r`) that read the finished stream once; the crash breaches accounts.
fn same_events_and_book(d: &Path) {
    let (ea, er) = (text(&d.join("a/events.jsonl")), text(&d.join("r/events.jsonl")));
    assert!(er.lines().count() > 100, "the crash breaches accounts");
    assert!(ea == er, "events differ: {} lines against {}", ea.lines().count(), er.lines().count());
    let w = Workload::demo(2000).unwrap();
    let state = |j: &str| {
        let (b, _) = BookJournal::open(&d.join(j), w.ids.len(), w.assets, JournalConfig::default()).unwrap();
        b.state().clone()
    };
    assert!(state("a") == state("r"), "the two journals hold different books");
}

#[test]
fn a_keeper_killed_mid_stream_resumes_after_its_last_applied_sequence() {
    let Some(server) = NatsServer::start_or_skip("keeper killed mid-stream") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = server.url();
    let mut rng = seeded_rng();
    // The publisher paces the demo crash (about 3 s); keeper A reads as it comes.
    let mut publish = publish_demo_crash(&url, d);
    // Keeper A is killed, never left to idle out: a long idle limit keeps it alive when a
    // loaded machine stalls the paced publisher (it once idled out after 956 messages, at load
    // average 8, before it had written an event).
    let mut a = keeper_idle(&url, &d.join("a"), &d.join("a1.err"), 30_000);
    let kill_at = Duration::from_millis(rng.gen_range(300..2200));
    // Killed once it has applied messages (its events file has lines; the journal's segment
    // is allocated whole, so its size says nothing): on a loaded machine keeper A can still
    // be starting at `kill_at`, and its restart would then read from the start.
    let t = Instant::now();
    while t.elapsed() < kill_at
        || (std::fs::metadata(d.join("a/events.jsonl")).map_or(0, |m| m.len()) == 0
            && t.elapsed() < Duration::from_secs(30))
    {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(a.try_wait().unwrap().is_none(), "keeper A ended early: {}", text(&d.join("a1.err")));
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    // The restart reads once the stream is complete: a restart during the publish ended at
    // the keeper's idle limit when a loaded machine stalled the paced publisher (twice in
    // full runs, at load averages 5.6 and 8), and read only part of the stream.
    assert!(publish.wait().unwrap().success(), "publish: {}", text(&d.join("publish.err")));
    let a2 = keeper(&url, &d.join("a"), &d.join("a2.err")).wait().unwrap();
    let a2_err = text(&d.join("a2.err"));
    assert!(a2.success(), "restarted keeper A: {a2_err}");
    let total = Workload::demo(2000).unwrap().msgs.len() as u64;
    assert!(
        text(&d.join("publish.err")).contains(&format!("last stream sequence {total}")),
        "{}",
        text(&d.join("publish.err"))
    );
    // The reference: a keeper that reads the whole stream in one go.
    let r = keeper(&url, &d.join("r"), &d.join("r.err")).wait().unwrap();
    assert!(r.success(), "reference keeper: {}", text(&d.join("r.err")));

    // The restart read on from its journal's position, each later message once.
    let report = a2_err
        .lines()
        .find(|l| l.starts_with("inputs nats://"))
        .unwrap_or_else(|| panic!("no inputs report line: {a2_err}"));
    let from = number_after(report, "from sequence")
        .unwrap_or_else(|| panic!("the restart resumed from its journal: {report}"));
    assert!(from > 1 && from <= total, "killed at {kill_at:?} mid-stream: resumed from {from} of {total}");
    let taken = number_after(report, "(journal)):").unwrap_or_else(|| panic!("{report}"));
    assert_eq!(taken, total + 1 - from, "every message after the journal's last, once: {report}");
    assert!(
        report.ends_with(&format!("last stream sequence {total}, 0 gaps (0 missing); refused: none")),
        "{report}"
    );

    same_events_and_book(d);
    println!("keeper A killed at {kill_at:?}; its restart read from stream sequence {from} of {total}");
}

/// The server killed and restarted over its store while the crash is published and read: the
/// publisher re-sends the frame it was waiting on (same message id), the keeper sets its
/// consumer up again from its own position, and ends with the events and book of a keeper
/// that read the finished stream once.
#[test]
fn a_keeper_reads_on_across_a_server_restart() {
    let Some(mut server) = NatsServer::start_or_skip("keeper across a server restart") else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = server.url();
    let mut rng = seeded_rng();
    let mut publish = publish_demo_crash(&url, d);
    // Idle long enough not to stop while the server is away.
    let mut a = keeper_idle(&url, &d.join("a"), &d.join("a.err"), 4000);
    let restart_at = Duration::from_millis(rng.gen_range(500..2200));
    std::thread::sleep(restart_at);
    server.restart().unwrap();
    assert!(publish.wait().unwrap().success(), "publish: {}", text(&d.join("publish.err")));
    let a_st = a.wait().unwrap();
    let a_err = text(&d.join("a.err"));
    assert!(a_st.success(), "keeper A: {a_err}");
    let total = Workload::demo(2000).unwrap().msgs.len() as u64;
    assert!(
        text(&d.join("publish.err")).contains(&format!("last stream sequence {total}")),
        "{}",
        text(&d.join("publish.err"))
    );
    let r = keeper(&url, &d.join("r"), &d.join("r.err")).wait().unwrap();
    assert!(r.success(), "reference keeper: {}", text(&d.join("r.err")));
    let report = a_err.lines().find(|l| l.starts_with("inputs nats://")).unwrap_or_else(|| panic!("{a_err}"));
    assert!(
        report.ends_with(&format!(
            "{total} taken, last stream sequence {total}, 0 gaps (0 missing); refused: none"
        )) || report.contains(&format!(
            ": {total} taken, last stream sequence {total}, 0 gaps (0 missing); refused: none"
        )),
        "{report}\n{a_err}"
    );
    same_events_and_book(d);
    println!("server restarted at {restart_at:?}");
}

#[test]
fn refused_input_messages_are_logged_with_subject_and_sequence() {
    let Some(server) = NatsServer::start_or_skip("refused input messages are logged") else { return };
    let secret = "liqscan-test-secret-0123456789";
    let venue = Venue::new("demo").unwrap();
    let key = HmacKey::new(secret.as_bytes());
    let mut p =
        InputPublisher::connect(&server.url(), venue.clone(), Some(key), Duration::from_secs(5)).unwrap();
    let w = Workload::demo(300).unwrap();
    for (ts, m) in w.msgs.iter() {
        p.publish(&m, ts as u64).unwrap();
    }
    let garbage = p.publish_raw(&venue.ticks_subject(), b"\x4c\x51garbage").unwrap();
    let mut wrong = InputPublisher::connect(
        &server.url(),
        venue.clone(),
        Some(HmacKey::new(b"another-secret-0123456789")),
        Duration::from_secs(5),
    )
    .unwrap();
    let forged = wrong.publish(&w.msgs.get(0).1, 0).unwrap();
    let mut unsigned = InputPublisher::connect(&server.url(), venue, None, Duration::from_secs(5)).unwrap();
    let plain = unsigned.publish(&w.msgs.get(1).1, 0).unwrap();
    let out = liqscan()
        .args(["run", "--demo-accounts", "300", "--nats", &server.url(), "--nats-venue", "demo"])
        .args(["--nats-idle-ms", "800", "--ticks", "never-read.csv"])
        .env("LIQSCAN_FEED_SECRET", secret)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("input stream: authentication on"), "{err}");
    assert!(err.contains("1 tick files and 0 bars of the configuration are not read"), "{err}");
    assert!(err.contains(&format!("refused liqscan.demo.ticks #{garbage}: malformed")), "{err}");
    assert!(err.contains(&format!("refused liqscan.demo.accounts #{forged}: unauthenticated")), "{err}");
    assert!(err.contains(&format!("refused liqscan.demo.accounts #{plain}: unauthenticated")), "{err}");
    assert!(err.contains(&format!("{} taken", w.msgs.len())), "{err}");
    assert!(err.contains("refused: malformed 1, unauthenticated 2"), "{err}");
}

#[test]
fn a_server_that_does_not_answer_is_reported_with_its_address() {
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("nats://127.0.0.1:{port}");
    let out = liqscan()
        .args(["run", "--demo-accounts", "300", "--nats", &url, "--nats-venue", "demo"])
        .args(["--nats-idle-ms", "1500"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("nats inputs: server {url}: not connected; scanning the book as it stands")),
        "{err}"
    );
    assert!(err.contains("0 taken"), "{err}");
}

#[test]
fn nats_options_that_cannot_work_are_refused_naming_them() {
    let run = |args: &[&str]| {
        let out = liqscan().args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["run", "--nats", "nats://127.0.0.1:1"]);
    assert!(e.contains("--nats-venue NAME"), "{e}");
    let e = run(&["run", "--nats", "nats://127.0.0.1:1", "--nats-venue", "a.b"]);
    assert!(e.contains("venue name \"a.b\""), "{e}");
    let e = run(&["publish", "--nats-venue", "demo"]);
    assert!(e.contains("--nats URL"), "{e}");
}
