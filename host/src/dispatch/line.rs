//! Lines of the `liqscan-dispatch/3` protocol, both sides: bounded in length and, with a shared
//! secret, each carrying an HMAC-SHA256 tag (the feed's keys, [`crate::feed::auth`]).
//!
//! ```text
//!  line  = json [ TAB tag ] LF     json: one compact JSON message, no LF in it
//!                                  tag:  64 lowercase hex digits, present iff a secret is set
//!  tag   = HMAC-SHA256(secret, label || n || json)
//!  label = "liqscan-dispatch/3 keeper>service\0" | "liqscan-dispatch/3 service>keeper\0"
//!  n     = the line's number on its connection in its direction, u64 little-endian,
//!          0 for the first (the keeper's hello); blank lines take no number
//! ```
//!
//! The label stops a line from being reflected back to its sender; the number stops lines from
//! being dropped, repeated or reordered within a connection (a bad tag closes the connection).
//! A whole connection replayed from its start is not detected here: the order id is the
//! idempotency key, so a replayed order runs at most once. Against an eavesdropper the lines
//! are not secret (use a tunnel or TLS where the order flow itself must not be read).
//!
//! Every line, the tag included, is at most [`MAX_LINE`] bytes before its LF; a longer one is
//! refused ([`LineError::TooLong`]) and the connection is closed, so no reader waits forever on
//! a line without end.

use std::io::{BufRead, Read};

use crate::feed::auth::{HmacKey, TAG_BYTES};

/// The protocol name sent in the hello line.
pub const PROTOCOL: &str = "liqscan-dispatch/3";

/// Longest line taken, in bytes, tag included, LF excluded. An order of 64 legs is under 8 KiB.
pub const MAX_LINE: usize = 64 * 1024;

/// Hex digits of a tag.
const TAG_HEX: usize = 2 * TAG_BYTES;

/// Which way a line goes; each direction has its own tag label and line count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the keeper to the liquidation service (hello, orders).
    ToService,
    /// From the service to the keeper (acks, completions).
    ToKeeper,
}

impl Direction {
    fn label(self) -> &'static [u8] {
        match self {
            Direction::ToService => b"liqscan-dispatch/3 keeper>service\0",
            Direction::ToKeeper => b"liqscan-dispatch/3 service>keeper\0",
        }
    }
}

/// Why a line was refused. All but [`Io`](LineError::Io) name the line's number on the
/// connection (0 is the first line).
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// No LF within [`MAX_LINE`] (or the configured limit) bytes.
    #[error("line {line}: longer than {limit} bytes; refused and the connection closed")]
    TooLong {
        /// Line number on the connection.
        line: u64,
        /// The limit in force.
        limit: usize,
    },
    /// A secret is set and the line has no tag.
    #[error("line {line}: no HMAC tag, but a shared secret is set (give both sides the same secret)")]
    Unsigned {
        /// Line number on the connection.
        line: u64,
    },
    /// The tag does not verify.
    #[error(
        "line {line}: HMAC tag does not verify (a different secret, or the line was altered, dropped, repeated or reordered)"
    )]
    BadTag {
        /// Line number on the connection.
        line: u64,
    },
    /// A tagged line where no secret is set.
    #[error("line {line}: the peer tags its lines but no shared secret is set here")]
    UnexpectedTag {
        /// Line number on the connection.
        line: u64,
    },
    /// The line is not UTF-8.
    #[error("line {line}: not UTF-8")]
    NotUtf8 {
        /// Line number on the connection.
        line: u64,
    },
    /// Reading failed.
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
}

impl LineError {
    /// True for a read that timed out or would block: the partial line is kept, call again.
    pub fn is_timeout(&self) -> bool {
        matches!(self, LineError::Io(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
    }
}

/// Writes lines in one direction of one connection.
#[derive(Clone, Debug)]
pub struct LineWriter {
    key: Option<HmacKey>,
    dir: Direction,
    next: u64,
}

impl LineWriter {
    /// A writer for a new connection (numbers from 0).
    pub fn new(key: Option<HmacKey>, dir: Direction) -> Self {
        LineWriter { key, dir, next: 0 }
    }

    /// Appends `json` (compact, without LF), its tag when a secret is set, and the LF to `out`.
    pub fn seal(&mut self, json: &[u8], out: &mut Vec<u8>) {
        debug_assert!(!json.contains(&b'\n'), "one line per message");
        out.extend_from_slice(json);
        if let Some(k) = &self.key {
            let tag = k.tag_parts(&[self.dir.label(), &self.next.to_le_bytes(), json]);
            let mut hex = [0u8; TAG_HEX];
            hex::encode_to_slice(tag, &mut hex).expect("64 hex digits for 32 bytes");
            out.push(b'\t');
            out.extend_from_slice(&hex);
        }
        out.push(b'\n');
        self.next += 1;
    }

    /// [`seal`](Self::seal) of a serde value.
    pub fn seal_json<T: serde::Serialize>(&mut self, msg: &T, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let json = serde_json::to_vec(msg)?;
        self.seal(&json, out);
        Ok(())
    }
}

/// Reads lines in one direction of one connection, bounded and checked.
pub struct LineReader<R> {
    inner: R,
    key: Option<HmacKey>,
    dir: Direction,
    max: usize,
    next: u64,
    buf: Vec<u8>,
    /// `buf` holds a line already returned.
    taken: bool,
}

impl<R: BufRead> LineReader<R> {
    /// A reader for a new connection, taking lines up to `max` bytes.
    pub fn new(inner: R, key: Option<HmacKey>, dir: Direction, max: usize) -> Self {
        LineReader { inner, key, dir, max, next: 0, buf: Vec::new(), taken: false }
    }

    /// Lines taken so far (the next line's number).
    pub fn lines(&self) -> u64 {
        self.next
    }

    /// The next line's JSON text, checked; `Ok(None)` at the end of the stream (a line cut
    /// short by the close is dropped). After a time-out ([`LineError::is_timeout`]) the
    /// partial line is kept and the next call goes on with it; after any other error the
    /// connection should be closed.
    pub fn next_line(&mut self) -> Result<Option<&str>, LineError> {
        loop {
            if self.taken {
                self.buf.clear();
                self.taken = false;
            }
            // At most one byte past the limit: enough to know the line is too long.
            let budget = (self.max + 1).saturating_sub(self.buf.len()) as u64;
            let n = (&mut self.inner).take(budget).read_until(b'\n', &mut self.buf)?;
            if self.buf.last() != Some(&b'\n') {
                if self.buf.len() > self.max {
                    return Err(LineError::TooLong { line: self.next, limit: self.max });
                }
                debug_assert!(n == 0 || self.buf.len() <= self.max);
                return Ok(None);
            }
            self.taken = true;
            let mut end = self.buf.len() - 1;
            if end > 0 && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
            if self.buf[..end].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = self.next;
            self.next += 1;
            let (json, tag) = split_tag(&self.buf[..end]);
            match (&self.key, tag) {
                (Some(_), None) => return Err(LineError::Unsigned { line }),
                (None, Some(_)) => return Err(LineError::UnexpectedTag { line }),
                (Some(k), Some(hex_tag)) => {
                    let mut tag = [0u8; TAG_BYTES];
                    let ok = hex::decode_to_slice(hex_tag, &mut tag).is_ok()
                        && k.verify_parts(&[self.dir.label(), &line.to_le_bytes(), json], &tag);
                    if !ok {
                        return Err(LineError::BadTag { line });
                    }
                }
                (None, None) => {}
            }
            return std::str::from_utf8(json).map(Some).map_err(|_| LineError::NotUtf8 { line });
        }
    }
}

/// Splits `json TAB tag` into its parts; a line without a trailing tab and 64 hex digits is all
/// JSON.
fn split_tag(line: &[u8]) -> (&[u8], Option<&[u8]>) {
    if line.len() > TAG_HEX && line[line.len() - TAG_HEX - 1] == b'\t' {
        let (json, tag) = line.split_at(line.len() - TAG_HEX - 1);
        let tag = &tag[1..];
        if tag.iter().all(u8::is_ascii_hexdigit) {
            return (json, Some(tag));
        }
    }
    (line, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &[u8]) -> Option<HmacKey> {
        Some(HmacKey::new(s))
    }

    fn read_all(bytes: &[u8], k: Option<HmacKey>, dir: Direction, max: usize) -> Vec<Result<String, String>> {
        let mut r = LineReader::new(bytes, k, dir, max);
        let mut out = Vec::new();
        loop {
            match r.next_line() {
                Ok(Some(l)) => out.push(Ok(l.to_string())),
                Ok(None) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[test]
    fn sealed_lines_open_on_the_same_key_and_direction_only() {
        let mut w = LineWriter::new(key(b"0123456789abcdef"), Direction::ToService);
        let mut bytes = Vec::new();
        w.seal(br#"{"hello":1}"#, &mut bytes);
        w.seal(br#"{"order":2}"#, &mut bytes);
        let ok = read_all(&bytes, key(b"0123456789abcdef"), Direction::ToService, MAX_LINE);
        assert_eq!(ok, vec![Ok(r#"{"hello":1}"#.into()), Ok(r#"{"order":2}"#.into())]);
        // Another key, the other direction, no key at all: refused at line 0.
        for (k, d) in [
            (key(b"0123456789abcdeF"), Direction::ToService),
            (key(b"0123456789abcdef"), Direction::ToKeeper),
        ] {
            let e = read_all(&bytes, k, d, MAX_LINE);
            assert!(
                matches!(&e[..], [Err(e)] if e.contains("line 0") && e.contains("does not verify")),
                "{e:?}"
            );
        }
        let e = read_all(&bytes, None, Direction::ToService, MAX_LINE);
        assert!(matches!(&e[..], [Err(e)] if e.contains("no shared secret")), "{e:?}");
        // Unsigned lines where a key is set.
        let e = read_all(b"{\"order\":2}\n", key(b"0123456789abcdef"), Direction::ToService, MAX_LINE);
        assert!(matches!(&e[..], [Err(e)] if e.contains("no HMAC tag")), "{e:?}");
    }

    #[test]
    fn dropped_repeated_or_altered_lines_are_refused() {
        let k = key(b"0123456789abcdef");
        let mut w = LineWriter::new(k.clone(), Direction::ToService);
        let lines: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                let mut b = Vec::new();
                w.seal(format!("{{\"n\":{i}}}").as_bytes(), &mut b);
                b
            })
            .collect();
        // Line 1 dropped: line 2 arrives as number 1.
        let e = read_all(
            &[lines[0].clone(), lines[2].clone()].concat(),
            k.clone(),
            Direction::ToService,
            MAX_LINE,
        );
        assert!(matches!(&e[..], [Ok(_), Err(e)] if e.contains("line 1")), "{e:?}");
        // Line 0 repeated.
        let e = read_all(
            &[lines[0].clone(), lines[0].clone()].concat(),
            k.clone(),
            Direction::ToService,
            MAX_LINE,
        );
        assert!(matches!(&e[..], [Ok(_), Err(_)]), "{e:?}");
        // Any one byte of the JSON or the tag altered.
        for at in 0..lines[0].len() - 1 {
            let mut bad = lines[0].clone();
            bad[at] ^= 0x01;
            let got = read_all(&bad, k.clone(), Direction::ToService, MAX_LINE);
            assert!(got.iter().all(|r| r.is_err()), "byte {at}: {got:?}");
        }
    }

    #[test]
    fn over_long_lines_are_refused_without_reading_on() {
        let long = format!("{}\n{{}}\n", "x".repeat(100));
        let e = read_all(long.as_bytes(), None, Direction::ToKeeper, 99);
        assert!(matches!(&e[..], [Err(e)] if e.contains("longer than 99 bytes")), "{e:?}");
        assert_eq!(read_all(long.as_bytes(), None, Direction::ToKeeper, 100).len(), 2);
        // A line without end: the reader stops one byte past the limit.
        let mut endless = std::io::BufReader::new(std::io::repeat(b'x'));
        let mut r = LineReader::new(&mut endless, None, Direction::ToKeeper, 1000);
        assert!(matches!(r.next_line(), Err(LineError::TooLong { line: 0, limit: 1000 })));
        // Blank lines are skipped and take no number; CRLF is taken.
        let got = read_all(b"\n  \r\n{}\r\n", None, Direction::ToKeeper, 10);
        assert_eq!(got, vec![Ok("{}".into())]);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_a_line_or_an_error_never_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), signed: bool) {
            let k = if signed { key(b"0123456789abcdef") } else { None };
            let _ = read_all(&bytes, k, Direction::ToKeeper, 64);
        }
    }
}
