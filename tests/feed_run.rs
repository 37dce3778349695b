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

#[test]
fn run_with_an_authenticated_tcp_feed() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["run", "--demo-accounts", "50", "--listen-tcp", "127.0.0.1:0", "--listen-ms", "1500"])
        .env("LIQSCAN_FEED_SECRET", "s3cret")
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
        if let Some(a) = l.strip_prefix("feed tcp listening on ") {
            break a.to_string();
        }
    };
    assert!(all.iter().any(|l| l.contains("authentication on")), "{all:?}");
    let key = HmacKey::new(b"s3cret");
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

#[test]
fn run_refuses_a_non_loopback_listener() {
    let out = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["run", "--demo-accounts", "10", "--listen-udp", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not loopback"));
}
