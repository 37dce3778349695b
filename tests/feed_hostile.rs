//! Hostile feeds on real loopback sockets: binding, oversized, truncated and garbled frames,
//! unknown assets and slots, gaps and replays, HMAC authentication, connection and rate
//! limits, and the oracle guard on feed ticks. Each case checks the counter and that the book
//! (the engine's messages and breaches) saw only the good frames.

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::SoftwareEngine;
use liqscan_host::feed::auth::HmacKey;
use liqscan_host::feed::listen::{self, FeedOptions, RateLimit};
use liqscan_host::feed::{replay, wire};
use liqscan_host::guard::{GuardConfig, OracleGuard};
use liqscan_host::metrics::Counters;
use liqscan_host::metrics::exposition::render;
use liqscan_host::pipeline::{self, Clock, FeedMsg, FeedTx, PipelineConfig, PipelineReport};

fn price(p: u32) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: p, liability: p },
        stressed: QuotedPrice { asset: p, liability: p },
    }
}

fn tick(asset: u16, p: u32) -> FeedMsg {
    FeedMsg::Tick { asset, price: price(p) }
}

fn frame_ts(seq: u64, ts_ns: u64, msg: FeedMsg) -> Vec<u8> {
    let mut b = Vec::new();
    wire::encode(&wire::Frame { seq, ts_ns, msg }, &mut b);
    b
}

fn frame(seq: u64, msg: FeedMsg) -> Vec<u8> {
    frame_ts(seq, 0, msg)
}

fn signed(key: &HmacKey, seq: u64, msg: FeedMsg) -> Vec<u8> {
    let mut b = Vec::new();
    wire::encode_signed(&wire::Frame { seq, ts_ns: 0, msg }, key, &mut b);
    b
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

struct Rig {
    counters: Arc<Counters>,
    tx: FeedTx,
    clock: Clock,
    h: std::thread::JoinHandle<PipelineReport>,
    breached: Arc<Mutex<Vec<u32>>>,
}

/// A pipeline over an 8-slot, 2-asset book.
fn rig() -> Rig {
    let counters = Arc::new(Counters::default());
    let clock = Clock::default();
    let (tx, rx) = pipeline::feed_queue(64, counters.clone());
    let breached = Arc::new(Mutex::new(vec![]));
    let b = breached.clone();
    let sink = move |_: u64, x: &[u32], _: &[u32], _: &[u32]| b.lock().unwrap().extend_from_slice(x);
    let be = Box::new(SoftwareEngine::new(8, 2));
    let h = pipeline::spawn(
        be,
        rx,
        Box::new(sink),
        PipelineConfig::default(),
        clock,
        counters.clone(),
        Arc::default(),
    );
    Rig { counters, tx, clock, h, breached }
}

impl Rig {
    fn opts(&self) -> FeedOptions {
        FeedOptions { slots: Some(8), assets: Some(2), ..Default::default() }
    }
    fn applied(&self) -> u64 {
        self.counters.ticks.load(Ordering::Relaxed) + self.counters.deltas.load(Ordering::Relaxed)
    }
    fn finish(self) -> (PipelineReport, Vec<u32>) {
        replay::end(&self.tx, &self.clock, u64::MAX);
        let r = self.h.join().unwrap();
        (r, self.breached.lock().unwrap().clone())
    }
}

/// The book of every test: slot 0 long asset 0, short asset 1; breached when asset 0 < 90.
fn book() -> [FeedMsg; 3] {
    [
        tick(0, 100),
        tick(1, 100),
        FeedMsg::upsert(0, &[Coeff { asset: 0, coeff: 10 }, Coeff { asset: 1, coeff: -9 }]),
    ]
}

fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn binds_to_loopback_unless_allowed() {
    let r = rig();
    let e = listen::tcp_with("0.0.0.0:0", r.tx.clone(), r.clock, r.counters.clone(), r.opts()).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    let e = listen::udp_with("0.0.0.0:0", r.tx.clone(), r.clock, r.counters.clone(), r.opts()).err().unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let l = listen::udp_with(
        "0.0.0.0:0",
        r.tx.clone(),
        r.clock,
        r.counters.clone(),
        FeedOptions { allow_remote: true, ..r.opts() },
    )
    .unwrap();
    l.stop();
    r.finish();
}

#[test]
fn tcp_rejects_oversized_truncated_and_garbled_frames_without_touching_the_book() {
    let r = rig();
    let l = listen::tcp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), r.opts()).unwrap();
    let mut s = TcpStream::connect(l.addr()).unwrap();
    for (i, m) in book().into_iter().enumerate() {
        s.write_all(&frame(i as u64 + 1, m)).unwrap();
    }
    wait_for("book", || r.applied() == 3);
    // Oversized: a length field beyond the largest frame.
    let mut big = frame(4, tick(0, 50));
    big[4..6].copy_from_slice(&4000u16.to_le_bytes());
    s.write_all(&big).unwrap();
    wait_for("oversized counted", || r.counters.feed_malformed.load(Ordering::Relaxed) == 1);
    assert!(closed(&mut s));
    // Garbled: a valid header whose tick payload has a non-zero reserved field.
    let mut s = TcpStream::connect(l.addr()).unwrap();
    let mut bad = frame(4, tick(0, 50));
    bad[wire::HEADER + 2] = 7;
    s.write_all(&bad).unwrap();
    wait_for("garbled counted", || r.counters.feed_malformed.load(Ordering::Relaxed) == 2);
    assert!(closed(&mut s));
    // Truncated: the sender goes away in the middle of a frame.
    let mut s = TcpStream::connect(l.addr()).unwrap();
    let f = frame(4, tick(0, 50));
    s.write_all(&f[..f.len() - 5]).unwrap();
    drop(s);
    wait_for("truncated counted", || r.counters.feed_malformed.load(Ordering::Relaxed) == 3);
    // The book never saw price 50: a good frame at 95 does not breach; 80 does.
    let mut s = TcpStream::connect(l.addr()).unwrap();
    s.write_all(&frame(4, tick(0, 95))).unwrap();
    s.write_all(&frame(5, tick(0, 80))).unwrap();
    wait_for("good frames", || r.applied() == 5);
    let rep = l.stop();
    assert_eq!((rep.malformed, rep.connections, rep.pushed), (3, 4, 5));
    let (rep, breached) = r.finish();
    assert_eq!(rep.messages, 5);
    assert_eq!(breached, vec![0]);
}

#[test]
fn unknown_assets_and_slots_gaps_and_replays_are_counted_and_kept_out() {
    let r = rig();
    let l = listen::udp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), r.opts()).unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for (i, m) in book().into_iter().enumerate() {
        s.send_to(&frame(i as u64 + 1, m), l.addr()).unwrap();
    }
    s.send_to(&frame(4, tick(2, 50)), l.addr()).unwrap(); // unknown asset
    s.send_to(&frame(5, FeedMsg::Remove { slot: 8 }), l.addr()).unwrap(); // unknown slot
    s.send_to(&frame(6, FeedMsg::upsert(1, &[Coeff { asset: 9, coeff: 1 }])), l.addr()).unwrap(); // unknown term asset
    s.send_to(&frame(3, FeedMsg::Remove { slot: 0 }), l.addr()).unwrap(); // replay of an old number
    s.send_to(&frame(6, tick(0, 10)), l.addr()).unwrap(); // replay of the last number
    s.send_to(&frame(10, tick(0, 80)), l.addr()).unwrap(); // gap of 3, taken
    wait_for("gap frame applied", || r.applied() == 4);
    wait_for("all counted", || r.counters.feed_unknown.load(Ordering::Relaxed) == 3);
    let rep = l.stop();
    assert_eq!((rep.unknown, rep.seq.duplicates, rep.seq.gaps, rep.seq.missing), (3, 2, 1, 3));
    assert_eq!(r.counters.feed_duplicates.load(Ordering::Relaxed), 2);
    let text = render(&r.counters);
    assert!(text.contains("liqscan_feed_unknown_total 3"), "{text}");
    let (rep, breached) = r.finish();
    assert_eq!(rep.messages, 4, "only the book and the gap frame reached the engine");
    assert_eq!(breached, vec![0], "slot 0 still held: the replayed remove was dropped");
}

#[test]
fn hmac_authentication_accepts_signed_frames_and_refuses_the_rest() {
    let key = HmacKey::new(b"feed secret");
    let r = rig();
    let opts = FeedOptions { auth: Some(key.clone()), ..r.opts() };
    let l = listen::tcp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), opts.clone()).unwrap();
    let u = listen::udp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), opts).unwrap();
    let mut s = TcpStream::connect(l.addr()).unwrap();
    for (i, m) in book().into_iter().enumerate() {
        s.write_all(&signed(&key, i as u64 + 1, m)).unwrap();
    }
    wait_for("signed book", || r.applied() == 3);
    // Unsigned: refused, connection closed.
    s.write_all(&frame(4, tick(0, 50))).unwrap();
    wait_for("unsigned refused", || r.counters.feed_auth_failed.load(Ordering::Relaxed) == 1);
    assert!(closed(&mut s));
    // Signed with another key, and a signed frame with its price altered.
    let mut s = TcpStream::connect(l.addr()).unwrap();
    s.write_all(&signed(&HmacKey::new(b"guess"), 4, tick(0, 50))).unwrap();
    wait_for("wrong key refused", || r.counters.feed_auth_failed.load(Ordering::Relaxed) == 2);
    assert!(closed(&mut s));
    let d = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut forged = signed(&key, 4, tick(0, 95));
    forged[wire::HEADER + 4] = 50;
    d.send_to(&forged, u.addr()).unwrap();
    wait_for("altered refused", || r.counters.feed_auth_failed.load(Ordering::Relaxed) == 3);
    d.send_to(&signed(&key, 1, tick(0, 80)), u.addr()).unwrap();
    wait_for("udp signed frame", || r.applied() == 4);
    let (lr, ur) = (l.stop(), u.stop());
    assert_eq!((lr.auth_failed, lr.pushed, ur.auth_failed, ur.pushed), (2, 3, 1, 1));
    let (_, breached) = r.finish();
    assert_eq!(breached, vec![0]);
}

/// True when the peer has closed `s` (end of stream or reset) within `within`; false if it is
/// still open then (unlike [`closed`], a read timeout is not taken for a close).
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

#[test]
fn connection_limit() {
    let r = rig();
    // Loopback peers share one address: give it every slot here.
    let opts = FeedOptions { max_connections: 2, max_per_address: Some(2), ..r.opts() };
    let l = listen::tcp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), opts).unwrap();
    // A slot is held from the first complete frame on.
    let mut a = TcpStream::connect(l.addr()).unwrap();
    a.write_all(&frame(1, tick(0, 100))).unwrap();
    // One at a time: two connections' first frames could be taken in either order.
    wait_for("first holds a slot", || l.report().pushed == 1);
    let mut b = TcpStream::connect(l.addr()).unwrap();
    b.write_all(&frame(2, tick(1, 100))).unwrap();
    wait_for("two hold slots", || l.report().pushed == 2);
    let mut c = TcpStream::connect(l.addr()).unwrap();
    c.write_all(&frame(3, tick(0, 101))).unwrap();
    wait_for("third refused", || r.counters.feed_conn_refused.load(Ordering::Relaxed) == 1);
    assert!(closed_within(&mut c, Duration::from_secs(5)));
    assert_eq!(l.report().pushed, 2, "the refused connection's frame was not taken");
    // A closed connection frees its place.
    assert_eq!(l.slots_held(), 2);
    drop(a);
    wait_for("place freed", || l.slots_held() == 1);
    let mut d = TcpStream::connect(l.addr()).unwrap();
    d.write_all(&frame(3, tick(0, 102))).unwrap();
    wait_for("the new connection served", || l.report().pushed == 3);
    drop(b);
    let rep = l.stop();
    assert_eq!((rep.connections, rep.conn_refused), (4, 1));
    r.finish();
}

#[test]
fn rate_limit() {
    let r = rig();
    let opts = FeedOptions { rate: Some(RateLimit { per_second: 20.0, burst: 5.0 }), ..r.opts() };
    let l = listen::tcp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), opts).unwrap();
    let mut a = TcpStream::connect(l.addr()).unwrap();
    // 30 frames at once on one connection: the burst of 5 goes through, the rest is dropped
    // (refill at 20/s over the few ms of the write adds at most a frame or two).
    let mut bytes = vec![];
    for seq in 1..=30 {
        bytes.extend(frame(seq, tick(0, 100 + seq as u32)));
    }
    a.write_all(&bytes).unwrap();
    wait_for("all 30 judged", || {
        let rep = l.report();
        rep.pushed + rep.rate_limited == 30
    });
    let rep = l.report();
    assert!((5..=7).contains(&rep.pushed), "pushed {}", rep.pushed);
    assert_eq!(r.counters.feed_rate_limited.load(Ordering::Relaxed), rep.rate_limited);
    // After a pause the bucket refills.
    std::thread::sleep(Duration::from_millis(120));
    a.write_all(&frame(31, tick(0, 200))).unwrap();
    wait_for("refilled", || l.report().pushed == rep.pushed + 1);
    l.stop();
    r.finish();
}

/// Idle connections (with or without a secret) fill no slot: more of them than there are
/// slots, and a real feeder still connects and delivers.
#[test]
fn idle_connections_do_not_keep_a_real_feeder_out() {
    let key = HmacKey::new(b"a feed secret of 32 bytes, ok...");
    for secret in [false, true] {
        let r = rig();
        // A long first-frame deadline: only the waiting room's bound closes idle ones here.
        let opts = FeedOptions {
            auth: secret.then(|| key.clone()),
            first_frame_timeout: Duration::from_secs(60),
            ..r.opts()
        };
        let l = listen::tcp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), opts).unwrap();
        let idle: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(l.addr()).unwrap()).collect();
        wait_for("idle connections accepted", || l.report().connections == 20);
        let mut s = TcpStream::connect(l.addr()).unwrap();
        for (i, m) in book().into_iter().enumerate() {
            let seq = i as u64 + 1;
            s.write_all(&if secret { signed(&key, seq, m) } else { frame(seq, m) }).unwrap();
        }
        wait_for("the real feeder's book", || r.applied() == 3);
        let rep = l.stop();
        assert_eq!((rep.pushed, rep.conn_refused), (3, 0), "secret {secret}");
        // 21 arrivals, a waiting room of 16: the 5 oldest idle ones were pushed out.
        assert_eq!(rep.unadmitted, 5, "secret {secret}");
        drop(idle);
        r.finish();
    }
}

/// A slow-loris trickling bytes that never make a frame is closed at the first-frame
/// deadline; a connection holding a slot that stops sending whole frames, at the idle timeout.
#[test]
fn slow_loris_connections_are_closed_at_their_deadlines() {
    let r = rig();
    let opts = FeedOptions {
        first_frame_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(400),
        ..r.opts()
    };
    let l = listen::tcp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), opts).unwrap();
    let trickle = |s: &mut TcpStream, bytes: &[u8]| -> Option<Duration> {
        s.set_nonblocking(true).unwrap();
        let t = Instant::now();
        for &b in bytes.iter().cycle().take(60) {
            let _ = s.write(&[b]);
            std::thread::sleep(Duration::from_millis(50));
            let mut x = [0u8; 1];
            match s.read(&mut x) {
                Ok(0) => return Some(t.elapsed()),
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return Some(t.elapsed()),
                _ => {}
            }
        }
        None
    };
    // Never a whole frame: one byte every 50 ms of a 44-byte frame.
    let mut loris = TcpStream::connect(l.addr()).unwrap();
    let took = trickle(&mut loris, &frame(1, tick(0, 100))[..40]).expect("slow-loris still open after 3 s");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert_eq!(r.counters.feed_unadmitted.load(Ordering::Relaxed), 1);
    // One whole frame (a slot), then a trickle.
    let mut s = TcpStream::connect(l.addr()).unwrap();
    s.write_all(&frame(1, tick(0, 100))).unwrap();
    wait_for("first frame", || r.applied() == 1);
    let took = trickle(&mut s, &frame(2, tick(1, 100))[..40]).expect("idle connection still open after 3 s");
    assert!(took >= Duration::from_millis(300), "closed after {took:?}");
    let rep = l.stop();
    assert_eq!((rep.unadmitted, rep.idle_closed, rep.pushed), (1, 1, 1));
    assert_eq!(r.counters.feed_idle_closed.load(Ordering::Relaxed), 1);
    let text = render(&r.counters);
    assert!(text.contains("liqscan_feed_idle_closed_total 1"), "{text}");
    r.finish();
}

/// With a secret, a connection holds a slot only after an authenticated frame: idle,
/// unsigned, wrongly signed and half-sent connections leave the one slot to the real feeder.
#[test]
fn unauthenticated_connections_hold_no_slot() {
    let key = HmacKey::new(b"a feed secret of 32 bytes, ok...");
    let r = rig();
    let opts = FeedOptions { auth: Some(key.clone()), max_connections: 1, ..r.opts() };
    let l = listen::tcp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), opts).unwrap();
    let _idle = TcpStream::connect(l.addr()).unwrap();
    let mut unsigned = TcpStream::connect(l.addr()).unwrap();
    unsigned.write_all(&frame(1, tick(0, 10))).unwrap();
    let mut forged = TcpStream::connect(l.addr()).unwrap();
    forged.write_all(&signed(&HmacKey::new(b"a guessed secret of 32 bytes...."), 1, tick(0, 10))).unwrap();
    let mut half = TcpStream::connect(l.addr()).unwrap();
    let f = signed(&key, 1, tick(0, 10));
    half.write_all(&f[..f.len() - 1]).unwrap();
    wait_for("both refused", || r.counters.feed_auth_failed.load(Ordering::Relaxed) == 2);
    assert!(closed_within(&mut unsigned, Duration::from_secs(5)));
    assert!(closed_within(&mut forged, Duration::from_secs(5)));
    let mut s = TcpStream::connect(l.addr()).unwrap();
    for (i, m) in book().into_iter().enumerate() {
        s.write_all(&signed(&key, i as u64 + 1, m)).unwrap();
    }
    wait_for("the real feeder's book", || r.applied() == 3);
    let rep = l.stop();
    assert_eq!((rep.pushed, rep.conn_refused, rep.auth_failed), (3, 0, 2));
    let (_, breached) = r.finish();
    assert!(breached.is_empty(), "no forged price reached the book");
}

/// A peer address holds at most its share of the slots.
#[test]
fn one_address_holds_at_most_its_share() {
    let r = rig();
    let opts = FeedOptions { max_connections: 4, max_per_address: Some(1), ..r.opts() };
    let l = listen::tcp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), opts).unwrap();
    let mut a = TcpStream::connect(l.addr()).unwrap();
    a.write_all(&frame(1, tick(0, 100))).unwrap();
    wait_for("first holds a slot", || l.report().pushed == 1);
    let mut b = TcpStream::connect(l.addr()).unwrap();
    b.write_all(&frame(2, tick(0, 100))).unwrap();
    wait_for("second refused", || l.report().conn_refused == 1);
    assert!(closed_within(&mut b, Duration::from_secs(5)));
    a.write_all(&frame(2, tick(1, 100))).unwrap();
    wait_for("first still served", || l.report().pushed == 2);
    l.stop();
    r.finish();
}

/// One frame numbered 2^64 - 2, first or after real frames, is refused and counted, and
/// later real frames are applied (before: adopted, and every later frame a "duplicate").
#[test]
fn a_sequence_jump_beyond_the_bound_is_refused_not_adopted() {
    let r = rig();
    let l = listen::tcp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), r.opts()).unwrap();
    let u = listen::udp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), r.opts()).unwrap();
    let mut s = TcpStream::connect(l.addr()).unwrap();
    for (i, m) in book().into_iter().enumerate() {
        s.write_all(&frame(i as u64 + 1, m)).unwrap();
    }
    wait_for("book", || r.applied() == 3);
    s.write_all(&frame(u64::MAX - 1, tick(0, 10))).unwrap();
    s.write_all(&frame(4, tick(0, 95))).unwrap();
    s.write_all(&frame(5, tick(0, 96))).unwrap();
    wait_for("later frames applied", || r.applied() == 5);
    // A fresh stream (UDP) whose first frame is the far one.
    let d = UdpSocket::bind("127.0.0.1:0").unwrap();
    d.send_to(&frame(u64::MAX - 1, tick(1, 1000)), u.addr()).unwrap();
    d.send_to(&frame(1, tick(0, 97)), u.addr()).unwrap();
    wait_for("udp frame applied", || r.applied() == 6);
    let (lr, ur) = (l.stop(), u.stop());
    assert_eq!((lr.seq.too_far, lr.seq.duplicates, lr.pushed), (1, 0, 5));
    assert_eq!((ur.seq.too_far, ur.pushed), (1, 1));
    assert_eq!(r.counters.feed_seq_refused.load(Ordering::Relaxed), 2);
    let (_, breached) = r.finish();
    assert!(breached.is_empty(), "the refused frames' prices never reached the book");
}

#[test]
fn guard_refuses_and_holds_feed_ticks() {
    let r = rig();
    let guard = Arc::new(Mutex::new(OracleGuard::new(GuardConfig::uniform(2, None, 1_000))));
    let opts = FeedOptions { guard: Some(guard.clone()), ..r.opts() };
    let l = listen::udp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), opts).unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |seq: u64, ts: u64, m: FeedMsg| s.send_to(&frame_ts(seq, ts, m), l.addr()).unwrap();
    let [t0, t1, up] = book();
    send(1, 1_000, t0);
    send(2, 1_000, t1);
    send(3, 1_000, up);
    wait_for("book", || r.applied() == 3);
    send(4, 2_000, tick(0, 0)); // zero price: refused before the guard sees it
    send(5, 500, tick(0, 95)); // before the last accepted: refused
    send(6, 3_000, tick(0, 10)); // a 90% drop: held
    send(7, 4_000, tick(0, 98)); // back near 100: accepted, the held jump dropped
    wait_for("judged", || r.applied() == 4);
    send(8, 5_000, tick(0, 80)); // an 18% drop (bound 10%): held...
    send(9, 6_000, tick(0, 81)); // ... confirmed by the next update
    wait_for("confirmed", || r.applied() == 5);
    let rep = l.stop();
    assert_eq!((rep.zero_price, rep.guard_refused, rep.guard_held, rep.pushed), (1, 1, 2, 5));
    assert_eq!(r.counters.feed_guard_held.load(Ordering::Relaxed), 2);
    let c = guard.lock().unwrap().counters();
    assert_eq!((c.non_positive, c.out_of_order, c.held_jump), (0, 1, 2));
    let (_, breached) = r.finish();
    assert_eq!(breached, vec![0], "breached once, at the confirmed 81, never at 10");
}

/// Issue 17: a tick priced 0 breaches every account holding the asset. Refused without a
/// guard too, unless the venue lets the asset be priced 0.
#[test]
fn a_zero_price_is_refused_unless_the_asset_allows_it() {
    for allow in [false, true] {
        let r = rig();
        let opts = FeedOptions { zero_price_ok: vec![allow, false].into(), ..r.opts() };
        let l = listen::udp_with("127.0.0.1:0", r.tx.clone(), r.clock, r.counters.clone(), opts).unwrap();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        for (i, m) in book().into_iter().enumerate() {
            s.send_to(&frame(i as u64 + 1, m), l.addr()).unwrap();
        }
        wait_for("book", || r.applied() == 3);
        s.send_to(&frame(4, tick(1, 0)), l.addr()).unwrap(); // never allowed
        s.send_to(&frame(5, tick(0, 0)), l.addr()).unwrap();
        s.send_to(&frame(6, tick(1, 100)), l.addr()).unwrap();
        let (refused, taken) = if allow { (1, 5) } else { (2, 4) };
        wait_for("the ticks taken", || r.applied() == taken);
        let rep = l.stop();
        assert_eq!((rep.zero_price, rep.pushed), (refused, taken), "allow {allow}");
        assert_eq!(r.counters.feed_zero_price.load(Ordering::Relaxed), rep.zero_price);
        let (_, breached) = r.finish();
        assert_eq!(breached.is_empty(), !allow, "allow {allow}: only an allowed 0 reaches the book");
    }
}

#[test]
fn secret_from_the_environment() {
    const VAR: &str = "LIQSCAN_TEST_FEED_SECRET";
    let from = |v: &str| {
        // SAFETY: no other test of this binary reads or writes this variable.
        unsafe { std::env::set_var(VAR, v) };
        FeedOptions::default().secret_from_env(VAR)
    };
    let o = from("hex:00ff10aB00ff10aB00ff10aB00ff10aB").unwrap();
    let msg = frame(1, tick(0, 1));
    let k = [0, 0xff, 0x10, 0xab].repeat(4);
    assert_eq!(o.auth.unwrap().tag(&msg), HmacKey::new(&k).tag(&msg));
    // Refused with the variable named, never a panic.
    for (bad, why) in [
        ("", "empty"),
        ("hex:aéb", "'é' at position 2 is not a hex digit"),
        ("hex:+1+2", "'+' at position 1 is not a hex digit"),
        ("hex:00ff10aB00ff10aB00ff10aB00ff10a", "even number"),
        ("hex:00ff10", "3 bytes is too short"),
        ("s3cret", "6 bytes is too short"),
    ] {
        let e = from(bad).unwrap_err();
        assert!(e.starts_with(VAR) && e.contains(why), "{bad}: {e}");
    }
    assert!(FeedOptions::default().secret_from_env("LIQSCAN_TEST_FEED_SECRET_UNSET").unwrap().auth.is_none());
}

#[test]
fn random_and_mutated_bytes_never_panic_the_decoder() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(61);
    let key = HmacKey::new(b"k");
    let seeds: Vec<Vec<u8>> = vec![
        frame(1, tick(0, 5)),
        signed(&key, 2, FeedMsg::upsert(3, &[Coeff { asset: 1, coeff: -4 }; 16])),
        frame(3, FeedMsg::Remove { slot: 1 }),
    ];
    let mut decoded = 0;
    for i in 0..200_000 {
        let mut b = if i % 4 == 0 {
            (0..rng.gen_range(0..wire::MAX_FRAME + 8)).map(|_| rng.r#gen()).collect()
        } else {
            seeds[i % 3].clone()
        };
        if !b.is_empty() {
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..b.len());
                b[at] = rng.r#gen();
            }
            if rng.gen_bool(0.2) {
                b.truncate(rng.gen_range(0..b.len()));
            }
        }
        if let Ok((f, len, tag)) = wire::decode_tagged(&b) {
            decoded += 1;
            // A decoded frame re-encodes to the bytes it came from.
            let mut again = Vec::new();
            wire::encode(&f, &mut again);
            let body = &b[..len - tag.map_or(0, |t| t.len())];
            assert_eq!(&again[8..], &body[8..], "frame {f:?}");
        }
    }
    assert!(decoded > 1000, "only {decoded} mutated frames decoded");
}
