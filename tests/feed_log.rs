//! Refused feed frames are counted, and logged at most once a second per listener with the
//! counts (never a line a frame): `liqscan run --listen-udp` with `--log-format json`, sprayed
//! with malformed datagrams over loopback.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn refused_frames_are_logged_once_a_second_with_their_count() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["--log-format", "json", "run", "--demo-accounts", "50"])
        .args(["--listen-udp", "127.0.0.1:0", "--listen-ms", "3000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines() {
            let _ = tx.send(l.unwrap());
        }
    });
    let mut all = vec![];
    let addr = loop {
        let l = rx.recv_timeout(Duration::from_secs(20)).expect("listening line");
        all.push(l.clone());
        if let Some(a) = l.strip_prefix("feed udp listening on ") {
            break a.to_string();
        }
    };
    // Wait for the replay to end so the spray falls inside the listening window.
    while !all.last().unwrap().starts_with("replay done") {
        all.push(rx.recv_timeout(Duration::from_secs(20)).expect("replay done line"));
    }
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = 1500u64;
    let t = Instant::now();
    for i in 0..sent {
        s.send_to(b"not a frame at all", &addr).unwrap();
        if i % 100 == 99 {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let spray = t.elapsed();
    assert!(child.wait().unwrap().success());
    all.extend(rx.iter());
    let logs: Vec<serde_json::Value> = all
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON log line"))
        .collect();
    let refusals: Vec<&serde_json::Value> = logs
        .iter()
        .filter(|v| v["message"].as_str().is_some_and(|m| m.contains("refused since the last report")))
        .collect();
    let malformed: u64 = refusals.iter().map(|v| v["malformed"].as_u64().unwrap()).sum();
    assert_eq!(malformed, sent, "every refusal is in the log's counts: {refusals:?}");
    // One a second while it lasts, and one when the listener stops.
    let bound = spray.as_secs() + 3;
    assert!((refusals.len() as u64) <= bound, "{} lines for {spray:?}: {refusals:?}", refusals.len());
    assert!(refusals.iter().all(|v| v["level"] == "WARN" && v["listener"] == "udp"), "{refusals:?}");
    let summary = all.iter().find(|l| l.starts_with("feed udp:")).expect("summary");
    assert!(summary.contains(&format!("{sent} malformed")), "{summary}");
}
