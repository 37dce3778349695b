//! The feed wire format: little-endian frames, each self-delimiting.
//!
//! ```text
//!  offset size field
//!  0      2    magic 0x514C ("LQ" as bytes 4C 51)
//!  2      1    version (1, or 2 for an upsert of more than 16 terms)
//!  3      1    kind: 1 tick, 2 account upsert, 3 account remove
//!  4      2    frame length in bytes, header included
//!  6      2    flags: bit 0 = a 32-byte HMAC-SHA256 tag ends the frame; other bits 0
//!  8      8    sequence number (per stream, +1 per frame)
//!  16     8    sender timestamp, ns since the Unix epoch (informational)
//!  24          payload:
//!    tick    (20 B): asset u16, reserved u16, spot.asset u32, spot.liability u32,
//!                    stressed.asset u32, stressed.liability u32
//!    upsert  (8 + 8n B): slot u32, n u8 (0..=16 in version 1, 0..=64 in version 2),
//!                    reserved 3 B, then n x
//!                    (asset u16, reserved u16, coefficient i32)
//!    remove  (8 B):  slot u32, reserved u32
//!  then, with flag bit 0: HMAC-SHA256(secret, every frame byte before the tag), 32 B
//! ```
//!
//! Version 2 differs from version 1 only in the upsert's term count: up to
//! [`MAX_SOFTWARE_TERMS`] (accounts the card cannot hold, served by the software engine). A
//! sender writes version 1 for every frame version 1 can carry, so listeners that know only
//! version 1 keep working; listeners take both.
//!
//! Prices and coefficients are already quantised (the venue's integer units), so the host
//! does no parsing of decimals on the hot path. The full description, with a worked example,
//! is `docs/WIRE_FORMAT.md`.

use liqscan_hdl::abi::{
    COEFF_MIN, Coeff, MAX_COEFFS_PER_ACCOUNT, MAX_SOFTWARE_TERMS, PriceEntry, QuotedPrice,
};

use super::auth::{HmacKey, TAG_BYTES};
use crate::pipeline::FeedMsg;

/// Frame magic.
pub const MAGIC: u16 = 0x514C;
/// The newest format version (written only for upserts of more than 16 terms).
pub const VERSION: u8 = 2;
/// The first format version: upserts of at most [`MAX_COEFFS_PER_ACCOUNT`] terms.
pub const VERSION_1: u8 = 1;
/// Header bytes.
pub const HEADER: usize = 24;
/// Largest frame without a tag (a version-2 upsert of 64 terms).
pub const MAX_PLAIN: usize = HEADER + 8 + 8 * MAX_SOFTWARE_TERMS;
/// Largest frame (a version-2 upsert of 64 terms with its authentication tag).
pub const MAX_FRAME: usize = MAX_PLAIN + TAG_BYTES;
/// Largest version-1 frame without a tag (an upsert of 16 terms).
pub const MAX_PLAIN_V1: usize = HEADER + 8 + 8 * MAX_COEFFS_PER_ACCOUNT;

/// Most upsert terms a version carries.
fn max_terms(version: u8) -> usize {
    if version == VERSION_1 { MAX_COEFFS_PER_ACCOUNT } else { MAX_SOFTWARE_TERMS }
}
/// Header flag: the frame ends in a [`TAG_BYTES`]-byte HMAC-SHA256 tag.
pub const FLAG_TAG: u16 = 1;
/// Kind byte of a tick.
pub const KIND_TICK: u8 = 1;
/// Kind byte of an upsert.
pub const KIND_UPSERT: u8 = 2;
/// Kind byte of a remove.
pub const KIND_REMOVE: u8 = 3;

/// A decoded frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Sequence number.
    pub seq: u64,
    /// Sender timestamp.
    pub ts_ns: u64,
    /// The message.
    pub msg: FeedMsg,
}

/// Why a frame does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Fewer bytes than the header or the stated length.
    #[error("truncated frame: {have} bytes, need {need}")]
    Truncated {
        /// Bytes present.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
    /// Wrong magic or version.
    #[error("not a liqscan feed frame (magic {magic:#06x}, version {version})")]
    BadMagic {
        /// Magic read.
        magic: u16,
        /// Version read.
        version: u8,
    },
    /// Unknown kind, wrong length for the kind, or a field out of range.
    #[error("bad frame: {0}")]
    Bad(String),
}

/// Encodes a frame into `out` (cleared first), in version 1 unless it is an upsert of more
/// terms than version 1 carries.
pub fn encode(f: &Frame, out: &mut Vec<u8>) {
    out.clear();
    let version = match f.msg {
        FeedMsg::Upsert { n, .. } if n as usize > MAX_COEFFS_PER_ACCOUNT => VERSION,
        _ => VERSION_1,
    };
    let (kind, len) = match f.msg {
        FeedMsg::Tick { .. } => (KIND_TICK, HEADER + 20),
        FeedMsg::Upsert { n, .. } => (KIND_UPSERT, HEADER + 8 + 8 * n as usize),
        FeedMsg::Remove { .. } => (KIND_REMOVE, HEADER + 8),
        FeedMsg::End => panic!("End is not sent on the wire"),
    };
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.push(version);
    out.push(kind);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&f.seq.to_le_bytes());
    out.extend_from_slice(&f.ts_ns.to_le_bytes());
    match f.msg {
        FeedMsg::Tick { asset, price } => {
            out.extend_from_slice(&asset.to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            for v in [price.spot.asset, price.spot.liability, price.stressed.asset, price.stressed.liability]
            {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        FeedMsg::Upsert { slot, n, terms } => {
            out.extend_from_slice(&slot.to_le_bytes());
            out.extend_from_slice(&[n, 0, 0, 0]);
            for t in &terms[..n as usize] {
                out.extend_from_slice(&t.asset.to_le_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&t.coeff.to_le_bytes());
            }
        }
        FeedMsg::Remove { slot } => {
            out.extend_from_slice(&slot.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
        }
        FeedMsg::End => unreachable!(),
    }
    debug_assert_eq!(out.len(), len);
}

/// Encodes a frame with its HMAC-SHA256 tag (flag bit 0 set, length including the tag).
pub fn encode_signed(f: &Frame, key: &HmacKey, out: &mut Vec<u8>) {
    encode(f, out);
    let len = (out.len() + TAG_BYTES) as u16;
    out[4..6].copy_from_slice(&len.to_le_bytes());
    out[6..8].copy_from_slice(&FLAG_TAG.to_le_bytes());
    let tag = key.tag(out);
    out.extend_from_slice(&tag);
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}

/// The length of the frame at the start of `b`, from its header (checks magic and bounds).
pub fn frame_len(b: &[u8]) -> Result<usize, WireError> {
    if b.len() < 6 {
        return Err(WireError::Truncated { have: b.len(), need: HEADER });
    }
    let (magic, version) = (u16_at(b, 0), b[2]);
    if magic != MAGIC || !(VERSION_1..=VERSION).contains(&version) {
        return Err(WireError::BadMagic { magic, version });
    }
    let len = u16_at(b, 4) as usize;
    let plain = HEADER + 8 + 8 * max_terms(version);
    let (lo, hi) = if b.len() >= 8 && u16_at(b, 6) & FLAG_TAG != 0 {
        (HEADER + TAG_BYTES, plain + TAG_BYTES)
    } else {
        (HEADER, plain)
    };
    if !(lo..=hi).contains(&len) {
        return Err(WireError::Bad(format!("frame length {len} outside {lo}..={hi}")));
    }
    Ok(len)
}

/// Decodes the frame at the start of `b`; returns it and its length (a tag, if any, is not
/// checked: see [`decode_tagged`]).
pub fn decode(b: &[u8]) -> Result<(Frame, usize), WireError> {
    decode_tagged(b).map(|(f, len, _)| (f, len))
}

/// Decodes the frame at the start of `b`; returns it, its length, and its authentication tag
/// if it has one (the bytes it covers are `b[..len - TAG_BYTES]`).
pub fn decode_tagged(b: &[u8]) -> Result<(Frame, usize, Option<&[u8]>), WireError> {
    let len = frame_len(b)?;
    if b.len() < len {
        return Err(WireError::Truncated { have: b.len(), need: len });
    }
    let b = &b[..len];
    let (version, kind) = (b[2], b[3]);
    let flags = u16_at(b, 6);
    if flags & !FLAG_TAG != 0 {
        return Err(WireError::Bad(format!("unknown header flags {flags:#06x}")));
    }
    let (body, tag) = if flags & FLAG_TAG != 0 {
        let (body, tag) = b.split_at(len - TAG_BYTES);
        (body, Some(tag))
    } else {
        (b, None)
    };
    let (seq, ts_ns) = (u64_at(b, 8), u64_at(b, 16));
    let p = &body[HEADER..];
    let msg = match kind {
        KIND_TICK => {
            if p.len() != 20 || u16_at(p, 2) != 0 {
                return Err(WireError::Bad(format!("tick payload of {} bytes (want 20)", p.len())));
            }
            FeedMsg::Tick {
                asset: u16_at(p, 0),
                price: PriceEntry {
                    spot: QuotedPrice { asset: u32_at(p, 4), liability: u32_at(p, 8) },
                    stressed: QuotedPrice { asset: u32_at(p, 12), liability: u32_at(p, 16) },
                },
            }
        }
        KIND_UPSERT => {
            if p.len() < 8 {
                return Err(WireError::Bad("upsert payload shorter than 8 bytes".into()));
            }
            let n = p[4] as usize;
            if n > max_terms(version) {
                return Err(WireError::Bad(format!(
                    "upsert of {n} terms; version {version} carries at most {}",
                    max_terms(version)
                )));
            }
            if p.len() != 8 + 8 * n || p[5..8] != [0, 0, 0] {
                return Err(WireError::Bad(format!("upsert of {n} terms in {} payload bytes", p.len())));
            }
            let mut terms = [Coeff::default(); MAX_SOFTWARE_TERMS];
            for (k, t) in terms[..n].iter_mut().enumerate() {
                let o = 8 + 8 * k;
                let coeff = u32_at(p, o + 4) as i32;
                if coeff < COEFF_MIN || u16_at(p, o + 2) != 0 {
                    return Err(WireError::Bad(format!("upsert term {k}: coefficient {coeff} out of range")));
                }
                *t = Coeff { asset: u16_at(p, o), coeff };
            }
            FeedMsg::Upsert { slot: u32_at(p, 0), n: n as u8, terms }
        }
        KIND_REMOVE => {
            if p.len() != 8 || u32_at(p, 4) != 0 {
                return Err(WireError::Bad("remove payload is not 8 bytes".into()));
            }
            FeedMsg::Remove { slot: u32_at(p, 0) }
        }
        k => return Err(WireError::Bad(format!("unknown kind {k}"))),
    };
    Ok((Frame { seq, ts_ns, msg }, len, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let p = PriceEntry {
            spot: QuotedPrice { asset: 1, liability: 2 },
            stressed: QuotedPrice { asset: 3, liability: u32::MAX },
        };
        let msgs = [
            FeedMsg::Tick { asset: 7, price: p },
            FeedMsg::upsert(9, &[Coeff { asset: 1, coeff: -5 }, Coeff { asset: 2, coeff: 77 }]),
            FeedMsg::upsert(3, &[]),
            FeedMsg::Remove { slot: 42 },
        ];
        let mut buf = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let f = Frame { seq: 100 + i as u64, ts_ns: 5, msg: *m };
            encode(&f, &mut buf);
            assert_eq!(decode(&buf), Ok((f, buf.len())));
            assert!(matches!(decode(&buf[..buf.len() - 1]), Err(WireError::Truncated { .. })));
            let mut bad = buf.clone();
            bad[0] ^= 1;
            assert!(matches!(decode(&bad), Err(WireError::BadMagic { .. })));
            let mut bad = buf.clone();
            bad[3] = 9;
            assert!(matches!(decode(&bad), Err(WireError::Bad(_))));
        }
        // The worked example of docs/WIRE_FORMAT.md.
        encode(&Frame { seq: 1, ts_ns: 0, msg: FeedMsg::Remove { slot: 5 } }, &mut buf);
        assert_eq!(&buf[..8], &[0x4C, 0x51, 1, 3, 32, 0, 0, 0]);
    }

    #[test]
    fn signed_frames() {
        let key = HmacKey::new(b"secret");
        let mut buf = Vec::new();
        let f = Frame { seq: 1, ts_ns: 0, msg: FeedMsg::Remove { slot: 5 } };
        encode_signed(&f, &key, &mut buf);
        assert_eq!(&buf[..8], &[0x4C, 0x51, 1, 3, 64, 0, 1, 0]);
        let (g, len, tag) = decode_tagged(&buf).unwrap();
        assert_eq!((g, len), (f, 64));
        assert!(key.verify(&buf[..32], tag.unwrap()));
        let big = FeedMsg::upsert(1, &[Coeff { asset: 1, coeff: 1 }; MAX_SOFTWARE_TERMS]);
        encode_signed(&Frame { seq: 2, ts_ns: 0, msg: big }, &key, &mut buf);
        assert_eq!(buf.len(), MAX_FRAME);
        assert!(decode_tagged(&buf).is_ok());
        buf[6] = 2;
        assert!(matches!(decode(&buf), Err(WireError::Bad(_))));
    }

    fn terms(n: usize) -> Vec<Coeff> {
        (0..n).map(|i| Coeff { asset: (i / 2) as u16, coeff: if i % 2 == 0 { 7 } else { -3 } }).collect()
    }

    #[test]
    fn upserts_of_up_to_16_terms_stay_version_1_and_more_are_version_2() {
        let mut buf = Vec::new();
        for n in [0, 1, 16, 17, 63, 64] {
            let f = Frame { seq: 9, ts_ns: 1, msg: FeedMsg::upsert(4, &terms(n)) };
            encode(&f, &mut buf);
            assert_eq!(buf[2], if n <= 16 { VERSION_1 } else { VERSION }, "{n} terms");
            assert_eq!(buf.len(), HEADER + 8 + 8 * n);
            assert_eq!(decode(&buf), Ok((f, buf.len())), "{n} terms");
            let FeedMsg::Upsert { n: got, terms: t, .. } = decode(&buf).unwrap().0.msg else { panic!() };
            assert_eq!(&t[..got as usize], &terms(n)[..]);
        }
    }

    #[test]
    fn old_version_1_frames_decode_and_may_not_claim_more_than_16_terms() {
        // A version-1 upsert of two terms, written byte by byte as a version-1 sender does.
        let mut v1 = vec![0x4C, 0x51, 1, 2, 24 + 8 + 16, 0, 0, 0];
        v1.extend_from_slice(&5u64.to_le_bytes());
        v1.extend_from_slice(&0u64.to_le_bytes());
        v1.extend_from_slice(&[3, 0, 0, 0, 2, 0, 0, 0]);
        v1.extend_from_slice(&[1, 0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 0xF6, 0xFF, 0xFF, 0xFF]);
        let (f, len) = decode(&v1).unwrap();
        assert_eq!(len, v1.len());
        assert_eq!(
            f.msg,
            FeedMsg::upsert(3, &[Coeff { asset: 1, coeff: 10 }, Coeff { asset: 2, coeff: -10 }])
        );
        // 17 terms labelled version 1: refused, by its length, naming the bound.
        let mut buf = Vec::new();
        encode(&Frame { seq: 1, ts_ns: 0, msg: FeedMsg::upsert(0, &terms(17)) }, &mut buf);
        buf[2] = VERSION_1;
        let e = decode(&buf).unwrap_err();
        assert!(e.to_string().contains("outside 24..=160"), "{e}");
        // 65 terms are more than any version carries.
        buf[2] = VERSION;
        buf[HEADER + 4] = 65;
        assert!(decode(&buf).is_err());
        // An unknown version is refused.
        buf[2] = 3;
        assert!(matches!(decode(&buf), Err(WireError::BadMagic { version: 3, .. })));
    }
}
