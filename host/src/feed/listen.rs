//! Live feed listeners on loopback: TCP (a stream of frames) and UDP (whole frames in
//! datagrams). Each decodes frames, checks sequence numbers (gaps reported and counted, the
//! frame taken; duplicates counted and dropped), and pushes the messages into the pipeline's
//! queue, stamped with their arrival time. A malformed frame is counted; on UDP its datagram
//! is dropped, on TCP the connection is closed (the stream cannot be re-framed safely) and
//! the listener waits for the sender to reconnect, with the sequence tracking kept.
//!
//! Receiving from a socket is a system call by nature; it happens on the feed thread, never
//! on the engine thread.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::wire::{self, MAX_FRAME};
use super::{SeqTracker, SeqVerdict};
use crate::metrics::Counters;
use crate::pipeline::{Clock, FeedMsg, FeedTx, Stamped};

/// What a listener saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListenReport {
    /// Sequence tracking.
    pub seq: SeqTracker,
    /// Frames that did not decode.
    pub malformed: u64,
    /// Connections accepted (TCP).
    pub connections: u64,
}

/// A running listener; [`Listener::stop`] ends it and returns its report.
pub struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<ListenReport>>,
}

impl Listener {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops listening. With `end`, the pipeline is then sent [`FeedMsg::End`].
    pub fn stop(mut self) -> ListenReport {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().map(|h| h.join().expect("listener panicked")).unwrap_or_default()
    }
}

struct Sink {
    tx: FeedTx,
    clock: Clock,
    counters: Arc<Counters>,
    rep: ListenReport,
}

impl Sink {
    fn frame(&mut self, bytes: &[u8]) -> Result<usize, wire::WireError> {
        let (f, len) = wire::decode(bytes)?;
        Counters::inc(&self.counters.frames);
        match self.rep.seq.check(f.seq) {
            SeqVerdict::Duplicate => {
                Counters::inc(&self.counters.feed_duplicates);
                eprintln!("feed: duplicate or stale frame {} dropped", f.seq);
                return Ok(len);
            }
            SeqVerdict::Gap { missing, expected } => {
                self.counters.feed_gaps.fetch_add(missing, Ordering::Relaxed);
                eprintln!("feed: gap: expected frame {expected}, got {} ({missing} missing)", f.seq);
            }
            SeqVerdict::InOrder => {}
        }
        if f.msg != FeedMsg::End {
            self.tx.push(Stamped { seq: f.seq, t_feed: self.clock.now(), msg: f.msg });
        }
        Ok(len)
    }

    fn malformed(&mut self, e: &wire::WireError) {
        self.rep.malformed += 1;
        Counters::inc(&self.counters.feed_malformed);
        eprintln!("feed: malformed frame: {e}");
    }
}

/// Listens for TCP feed connections on `addr` (e.g. `127.0.0.1:0`), one at a time.
pub fn tcp(addr: &str, tx: FeedTx, clock: Clock, counters: Arc<Counters>) -> std::io::Result<Listener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let handle = std::thread::Builder::new().name("feed-tcp".into()).spawn(move || {
        let mut sink = Sink { tx, clock, counters, rep: ListenReport::default() };
        let mut buf = vec![0u8; 64 * 1024];
        while !s.load(Ordering::Relaxed) {
            let Ok((mut conn, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            sink.rep.connections += 1;
            let _ = conn.set_nonblocking(false);
            let _ = conn.set_read_timeout(Some(Duration::from_millis(20)));
            let mut have = 0usize;
            'conn: while !s.load(Ordering::Relaxed) {
                match conn.read(&mut buf[have..]) {
                    Ok(0) => break,
                    Ok(n) => have += n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue;
                    }
                    Err(_) => break,
                }
                let mut at = 0;
                while have - at >= 6 {
                    match wire::frame_len(&buf[at..have]) {
                        Ok(len) if have - at < len => break,
                        Ok(_) => match sink.frame(&buf[at..have]) {
                            Ok(len) => at += len,
                            Err(e) => {
                                sink.malformed(&e);
                                break 'conn;
                            }
                        },
                        Err(e) => {
                            sink.malformed(&e);
                            break 'conn;
                        }
                    }
                }
                buf.copy_within(at..have, 0);
                have -= at;
                if buf.len() - have < MAX_FRAME {
                    break;
                }
            }
        }
        sink.rep
    })?;
    Ok(Listener { addr, stop, handle: Some(handle) })
}

/// Listens for UDP feed datagrams on `addr`; each datagram holds one or more whole frames.
pub fn udp(addr: &str, tx: FeedTx, clock: Clock, counters: Arc<Counters>) -> std::io::Result<Listener> {
    let sock = UdpSocket::bind(addr)?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))?;
    let addr = sock.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let handle = std::thread::Builder::new().name("feed-udp".into()).spawn(move || {
        let mut sink = Sink { tx, clock, counters, rep: ListenReport::default() };
        let mut buf = vec![0u8; 65_536];
        while !s.load(Ordering::Relaxed) {
            let Ok(n) = sock.recv(&mut buf) else { continue };
            let mut at = 0;
            while at < n {
                match sink.frame(&buf[at..n]) {
                    Ok(len) => at += len,
                    Err(e) => {
                        sink.malformed(&e);
                        break;
                    }
                }
            }
        }
        sink.rep
    })?;
    Ok(Listener { addr, stop, handle: Some(handle) })
}
