//! Record framing: how records sit in a segment or snapshot file.
//!
//! ```text
//!  offset 0        4        8                16       20
//!         +--------+--------+----------------+--------+----------------------+
//!         | magic  | len    | seq            | crc    | payload (len bytes)  |
//!         | u32 LE | u32 LE | u64 LE         | u32 LE | JSON of the record   |
//!         +--------+--------+----------------+--------+----------------------+
//!  crc = CRC-32 of (len, seq, payload) bytes; magic = "LQJR"
//! ```
//!
//! A segment is preallocated and zero-filled, so its end is the first offset where only zero
//! bytes follow. [`scan`] walks the frames and sorts what it finds into: valid records; a clean
//! end; a torn tail (a bad frame after which no valid frame follows: the writer died inside
//! it); or corruption in the middle (a bad frame followed by a valid one), which is an error
//! naming the offset, never skipped.

use super::crc::Crc32;

/// Frame marker, "LQJR" in file order.
pub const MAGIC: u32 = u32::from_le_bytes(*b"LQJR");
/// Header bytes before the payload.
pub const HEADER: usize = 20;
/// Largest journal record payload accepted (a batch tick of 65,536 assets is about 5 MiB).
pub const MAX_RECORD: usize = 16 << 20;

/// Appends one frame to `out`.
pub fn encode(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("payload under 4 GiB");
    let mut crc = Crc32::new();
    crc.update(&len.to_le_bytes());
    crc.update(&seq.to_le_bytes());
    crc.update(payload);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&crc.finish().to_le_bytes());
    out.extend_from_slice(payload);
}

/// Length of the frame for a payload of `len` bytes.
pub fn frame_len(len: usize) -> usize {
    HEADER + len
}

/// Why the bytes at an offset are not a valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadFrame {
    /// Fewer than [`HEADER`] bytes left.
    ShortHeader,
    /// The first four bytes are not the marker.
    Magic(u32),
    /// The length field exceeds the limit.
    Length(u32),
    /// The payload runs past the end of the bytes.
    ShortPayload {
        /// Payload length the header claims.
        len: u32,
        /// Bytes actually left after the header.
        have: usize,
    },
    /// The checksum does not match.
    Crc {
        /// Stored checksum.
        stored: u32,
        /// Computed checksum.
        computed: u32,
    },
}

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadFrame::ShortHeader => write!(f, "header cut short"),
            BadFrame::Magic(m) => write!(f, "bad frame marker 0x{m:08x}"),
            BadFrame::Length(l) => write!(f, "frame length {l} exceeds the limit"),
            BadFrame::ShortPayload { len, have } => {
                write!(f, "payload of {len} bytes cut short at {have} bytes")
            }
            BadFrame::Crc { stored, computed } => {
                write!(f, "checksum mismatch (stored 0x{stored:08x}, computed 0x{computed:08x})")
            }
        }
    }
}

/// One valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Byte offset of the frame.
    pub offset: usize,
    /// Record sequence number.
    pub seq: u64,
    /// Payload bytes.
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// Offset just past this frame.
    pub fn end(&self) -> usize {
        self.offset + HEADER + self.payload.len()
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Decodes the frame at `offset` of `buf`, with payloads up to `max` bytes.
pub fn decode_at(buf: &[u8], offset: usize, max: usize) -> Result<Frame<'_>, BadFrame> {
    let rest = buf.get(offset..).unwrap_or(&[]);
    if rest.len() < HEADER {
        return Err(BadFrame::ShortHeader);
    }
    let magic = u32_at(rest, 0);
    if magic != MAGIC {
        return Err(BadFrame::Magic(magic));
    }
    let len = u32_at(rest, 4);
    if len as usize > max {
        return Err(BadFrame::Length(len));
    }
    let have = rest.len() - HEADER;
    if have < len as usize {
        return Err(BadFrame::ShortPayload { len, have });
    }
    let seq = u64::from_le_bytes(rest[8..16].try_into().unwrap());
    let stored = u32_at(rest, 16);
    let payload = &rest[HEADER..HEADER + len as usize];
    let mut crc = Crc32::new();
    crc.update(&rest[4..16]);
    crc.update(payload);
    let computed = crc.finish();
    if stored != computed {
        return Err(BadFrame::Crc { stored, computed });
    }
    Ok(Frame { offset, seq, payload })
}

/// How a scanned buffer ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// After the last frame only zero bytes (or nothing) follow.
    Clean,
    /// A bad frame at `offset` with no valid frame after it: the writer died mid-record.
    Torn {
        /// Where the bad frame starts (the valid data ends here).
        offset: usize,
        /// Why it is bad.
        why: BadFrame,
    },
}

/// Corruption with valid records after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiddleCorruption {
    /// Where the bad frame starts.
    pub offset: usize,
    /// Why it is bad.
    pub why: BadFrame,
    /// Offset of the next valid frame found after it.
    pub next_valid: usize,
}

/// Result of scanning a buffer: the valid frames in order, the end of the valid data, and how
/// the buffer ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan<'a> {
    /// Valid frames, in file order.
    pub frames: Vec<Frame<'a>>,
    /// Offset just past the last valid frame.
    pub valid_end: usize,
    /// Clean or torn.
    pub end: End,
}

/// Walks every frame of `buf`. A bad frame is the torn tail if no valid frame starts anywhere
/// after it, and corruption in the middle (an error) if one does.
pub fn scan(buf: &[u8], max: usize) -> Result<Scan<'_>, MiddleCorruption> {
    let mut frames = Vec::new();
    let mut off = 0;
    loop {
        match decode_at(buf, off, max) {
            Ok(f) => {
                off = f.end();
                frames.push(f);
            }
            // Zeros (or nothing) from here on: the preallocated, never written end.
            Err(_) if buf[off..].iter().all(|&b| b == 0) => {
                return Ok(Scan { frames, valid_end: off, end: End::Clean });
            }
            Err(why) => {
                return match next_valid(buf, off + 1, max) {
                    Some(next_valid) => Err(MiddleCorruption { offset: off, why, next_valid }),
                    None => Ok(Scan { frames, valid_end: off, end: End::Torn { offset: off, why } }),
                };
            }
        }
    }
}

/// The first offset at or after `from` where a valid frame starts.
fn next_valid(buf: &[u8], from: usize, max: usize) -> Option<usize> {
    let marker = MAGIC.to_le_bytes();
    let mut at = from;
    while at + HEADER <= buf.len() {
        let i = buf[at..].windows(4).position(|w| w == marker)?;
        at += i;
        if decode_at(buf, at, max).is_ok() {
            return Some(at);
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> (Vec<u8>, Vec<usize>) {
        let mut buf = Vec::new();
        let mut starts = Vec::new();
        for (i, p) in [&b"alpha"[..], b"be", b"gamma ray"].iter().enumerate() {
            starts.push(buf.len());
            encode(i as u64 + 1, p, &mut buf);
        }
        (buf, starts)
    }

    #[test]
    fn round_trip_and_zero_tail_is_clean() {
        let (mut buf, starts) = three();
        buf.extend_from_slice(&[0; 100]);
        let s = scan(&buf, MAX_RECORD).unwrap();
        assert_eq!(s.end, End::Clean);
        assert_eq!(s.frames.iter().map(|f| f.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(s.frames[2].payload, b"gamma ray");
        assert_eq!(s.frames[1].offset, starts[1]);
    }

    #[test]
    fn every_cut_of_the_last_frame_is_a_torn_tail() {
        let (buf, starts) = three();
        for cut in starts[2] + 1..buf.len() {
            let s = scan(&buf[..cut], MAX_RECORD).unwrap();
            assert_eq!(s.frames.len(), 2, "cut {cut}");
            assert!(matches!(s.end, End::Torn { offset, .. } if offset == starts[2]));
        }
    }

    #[test]
    fn a_flipped_bit_in_the_middle_is_an_error_naming_the_offset() {
        let (buf, starts) = three();
        for at in starts[1]..starts[2] {
            let mut b = buf.clone();
            b[at] ^= 0x10;
            let e = scan(&b, MAX_RECORD).unwrap_err();
            assert_eq!(e.offset, starts[1]);
            assert_eq!(e.next_valid, starts[2]);
        }
    }

    #[test]
    fn a_frame_written_before_crc32fast_still_reads() {
        // Frame bytes as the byte-at-a-time CRC code wrote them (seq 7, a 75-byte payload);
        // the CRC 0xc39c1329 is also what zlib.crc32 gives for (len, seq, payload).
        let hex = "4c514a524b000000070000000000000029139cc37b227469636b223a7b226173736574223a332c\
                   227072696365223a7b2273706f74223a7b226173736574223a313935303030302c226c696162\
                   696c697479223a313935303030307d7d7d7d";
        let bytes = ::hex::decode(hex.replace(' ', "")).unwrap();
        let f = decode_at(&bytes, 0, MAX_RECORD).unwrap();
        assert_eq!(f.seq, 7);
        assert!(f.payload.starts_with(b"{\"tick\""));
        let mut again = Vec::new();
        encode(7, f.payload, &mut again);
        assert_eq!(again, bytes, "the encoder writes the same bytes as before");
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        assert!(matches!(decode_at(&bad, 0, MAX_RECORD), Err(BadFrame::Crc { stored: 0xc39c_1329, .. })));
    }
}
