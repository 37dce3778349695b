//! `liqscan run --listen-tcp` as a child process with LIQSCAN_FEED_SECRET: signed frames are
//! taken, an unsigned frame and an unknown asset are refused and reported; a non-loopback
//! address is refused.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use liqscan_hdl::abi::{PriceEntry, QuotedPrice};
use liqscan_host::feed::auth::HmacKey;
use liqscan_host::feed::wire;
use liqscan_host::pipeline::FeedMsg;

fn tick_frame(key: Option<&HmacKey>, seq: u64, asset: u16) -> Vec<u8> {
    let q = QuotedPrice { asset: 1000, liability: 1000 };
    let f = wire::Frame {
        seq,
        ts_ns: 0,
        msg: FeedMsg::Tick { asset, price: PriceEntry { spot: q, stressed: q } },
    };
    let mut b = Vec::new();
    match key {
        Some(k) => wire::encode_signed(&f, k, &mut b),
        None => wire::encode(&f, &mut b),
    }
    b
}

/// Starts `cmd` with its standard error read line by line on a thread.
fn spawn_with_lines(cmd: &mut Command) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines() {
            let _ = tx.send(l.unwrap());
        }
    });
    (child, rx)
}

#[test]
fn run_with_an_authenticated_tcp_feed() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_liqscan"));
    cmd.args(["run", "--demo-accounts", "50", "--listen-tcp", "127.0.0.1:0", "--listen-ms", "1500"])
        .env("LIQSCAN_FEED_SECRET", "s3cret, sixteen bytes or more");
    let (mut child, rx) = spawn_with_lines(&mut cmd);
    let mut all = vec![];
    let addr = loop {
        let l = rx.recv_timeout(Duration::from_secs(20)).expect("listening line");
        all.push(l.clone());
        if let Some(a) = l.strip_prefix("feed tcp listening on ") {
            break a.to_string();
        }
    };
    assert!(all.iter().any(|l| l.contains("authentication on")), "{all:?}");
    let key = HmacKey::new(b"s3cret, sixteen bytes or more");
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&tick_frame(Some(&key), 1, 0)).unwrap();
    s.write_all(&tick_frame(Some(&key), 2, 1)).unwrap();
    s.write_all(&tick_frame(None, 3, 0)).unwrap(); // unsigned: refused, connection closed
    std::thread::sleep(Duration::from_millis(100));
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&tick_frame(Some(&key), 3, 999)).unwrap(); // unknown asset
    drop(s);
    assert!(child.wait().unwrap().success());
    all.extend(rx.iter());
    let summary = all.iter().find(|l| l.starts_with("feed tcp:")).expect("summary").clone();
    assert!(
        summary.contains("2 connections (0 refused), 2 taken")
            && summary.contains("1 unauthenticated")
            && summary.contains("1 unknown"),
        "{summary}"
    );
}

/// Bad secrets are refused with the variable named and without a panic (before: `hex:aéb`
/// panicked on a char boundary, `hex:+1+2` was taken as a key).
#[test]
fn run_refuses_bad_secrets_without_a_panic() {
    for (secret, why) in [
        ("hex:aéb", "not a hex digit"),
        ("hex:+1+2", "not a hex digit"),
        ("hex:0011223344556677889900112233445", "even number"),
        ("short", "too short"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_liqscan"))
            .args(["run", "--demo-accounts", "10", "--listen-tcp", "127.0.0.1:0"])
            .env("LIQSCAN_FEED_SECRET", secret)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{secret}: {err}");
        assert!(err.contains("LIQSCAN_FEED_SECRET") && err.contains(why), "{secret}: {err}");
        assert!(!err.contains("panicked"), "{secret}: {err}");
    }
}

#[test]
fn run_refuses_a_non_loopback_listener() {
    let out = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["run", "--demo-accounts", "10", "--listen-udp", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not loopback"));
}

fn price_frame(seq: u64, asset: u16, price: u32) -> Vec<u8> {
    let q = QuotedPrice { asset: price, liability: price };
    let f = wire::Frame {
        seq,
        ts_ns: 0,
        msg: FeedMsg::Tick { asset, price: PriceEntry { spot: q, stressed: q } },
    };
    let mut b = Vec::new();
    wire::encode(&f, &mut b);
    b
}

/// Starts `liqscan run` with a journal and a TCP listener; returns the child, the rest of its
/// stderr lines, and those up to the listening line (the last).
fn start_journaled(
    dir: &std::path::Path,
    out: &str,
    listen_ms: &str,
) -> (std::process::Child, mpsc::Receiver<String>, Vec<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_liqscan"));
    cmd.args(["run", "--demo-accounts", "200", "--listen-tcp", "127.0.0.1:0", "--listen-ms", listen_ms])
        .args(["--journal", dir.join("journal").to_str().unwrap()])
        .args(["--out", dir.join(out).to_str().unwrap()])
        .env_remove("LIQSCAN_FEED_SECRET");
    let (child, rx) = spawn_with_lines(&mut cmd);
    let mut seen = vec![];
    loop {
        let l = rx.recv_timeout(Duration::from_secs(20)).expect("listening line");
        seen.push(l);
        if seen.last().unwrap().starts_with("feed tcp listening on ") {
            break;
        }
    }
    (child, rx, seen)
}

fn events(p: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Live frames are journaled: after a kill -9 the restarted run holds the book they changed,
/// resumes the replay after the replayed messages only, drops re-sent frames it holds, and
/// continues the same `--out` into the file a run without the kill writes (the live frame's
/// number, far above the replay's, once made the restart refuse to continue it).
#[test]
fn journaled_live_frames_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx, seen) = start_journaled(dir.path(), "out.jsonl", "30000");
    let listening = seen.last().unwrap();
    let addr = listening.strip_prefix("feed tcp listening on ").unwrap().to_string();
    // Once the replay is done (its ticks would override a live one), crash asset 0 live.
    replay_done(&rx);
    const FRAME: u64 = 1_000_000;
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&price_frame(FRAME, 0, 1)).unwrap();
    // Wait until the journal holds the frame (the write-ahead record is in the mapped segment,
    // so a reader of the file sees it), then kill.
    let wal = dir.path().join("journal/book");
    let t = std::time::Instant::now();
    while !std::fs::read_dir(&wal).unwrap().any(|f| {
        let b = std::fs::read(f.unwrap().path()).unwrap();
        b.windows(16).any(|w| w == b"\"seq\":1000000,\"r")
    }) {
        assert!(t.elapsed() < Duration::from_secs(10), "the live frame never reached the journal");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let (mut child, rx, mut all) = start_journaled(dir.path(), "out.jsonl", "1500");
    let listening = all.last().unwrap().clone();
    assert!(listening.ends_with(&format!("(frames after {FRAME})")), "{listening}");
    let addr =
        listening.strip_prefix("feed tcp listening on ").unwrap().split(' ').next().unwrap().to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(&price_frame(FRAME, 0, 1)).unwrap(); // held already: a duplicate
    s.write_all(&price_frame(FRAME + 1, 0, 1)).unwrap();
    drop(s);
    assert!(child.wait().unwrap().success());
    all.extend(rx.iter());
    let recovered = all.iter().find(|l| l.contains("messages of")).expect("recovery line");
    let (done, of) = {
        let w: Vec<&str> = recovered.split_whitespace().collect();
        let i = w.iter().position(|x| *x == "messages").unwrap();
        (w[i - 1].trim_start_matches(';').to_string(), w[i + 2].to_string())
    };
    assert_eq!(done, of, "the replay resumes after replayed messages only: {recovered}");
    let summary = all.iter().find(|l| l.starts_with("feed tcp:")).expect("summary");
    assert!(summary.contains(", 1 taken,") && summary.contains("1 duplicates"), "{summary}");
    // The restarted run started from the journaled book, live tick included: it ends as a run
    // that took the same tick without a kill, not as the replay alone.
    let again = tempfile::tempdir().unwrap();
    let (mut child, rx, seen) = start_journaled(again.path(), "out.jsonl", "3000");
    let addr = seen.last().unwrap().strip_prefix("feed tcp listening on ").unwrap().to_string();
    replay_done(&rx);
    TcpStream::connect(&addr).unwrap().write_all(&price_frame(FRAME, 0, 1)).unwrap();
    assert!(child.wait().unwrap().success());
    let ok = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["run", "--demo-accounts", "200", "--out", dir.path().join("plain.jsonl").to_str().unwrap()])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let fin = final_breached(&dir.path().join("out.jsonl"));
    assert_eq!(fin, final_breached(&again.path().join("out.jsonl")));
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
    assert!(
        read(dir.path().join("out.jsonl")) == read(again.path().join("out.jsonl")),
        "--out continued across the kill differs from the run without it"
    );
    assert_ne!(fin, final_breached(&dir.path().join("plain.jsonl")), "the live tick changed nothing");
}

fn replay_done(rx: &mpsc::Receiver<String>) {
    while !rx.recv_timeout(Duration::from_secs(30)).expect("replay done line").starts_with("replay done") {}
}

fn final_breached(p: &std::path::Path) -> std::collections::BTreeSet<u64> {
    let mut fin = std::collections::BTreeSet::new();
    for e in events(p) {
        let slot = e["slot"].as_u64().unwrap();
        if e["event"] == "breach" {
            fin.insert(slot);
        } else {
            fin.remove(&slot);
        }
    }
    fin
}
