//! Before and after the crates of issue 16, in one run: the journal's per-record cost
//! (CRC-32 by a byte-at-a-time table vs `crc32fast`) and the feed's per-frame authentication
//! (hand-written HMAC-SHA256 vs RustCrypto `hmac` + `sha2`).
//!
//! ```text
//!   cargo bench -p liqscan-host --bench crates             # 2,000,000 iterations a lane
//!   cargo bench -p liqscan-host --bench crates -- --smoke  # 200,000
//! ```
//!
//! Lanes alternate in rounds (before, after, before, ...) so drift of a shared machine hits
//! both alike; each reports the mean ns per operation over all its rounds. The inputs:
//! - journal: a `Record::Tick` (JSON payload, as the journal writes it) framed by
//!   `frame::encode`; "crc" lanes checksum the frame's (len, seq, payload) only, "record" lanes
//!   serialise the record and frame it (what `Journal::append` does before the write);
//! - feed: a signed tick frame from `wire::encode_signed`; the lanes verify its tag.

mod before;

use std::hint::black_box;
use std::time::Instant;

use liqscan_hdl::abi::{PriceEntry, QuotedPrice};
use liqscan_host::feed::auth::{HmacKey, TAG_BYTES};
use liqscan_host::feed::wire;
use liqscan_host::journal::Record;
use liqscan_host::journal::{crc, frame, record};
use liqscan_host::pipeline::FeedMsg;

const ROUNDS: usize = 10;

/// Runs `f` `n` times a round in `ROUNDS` rounds for each lane, alternating; mean ns per call.
fn alternate(n: usize, lanes: &mut [(&str, &mut dyn FnMut())]) -> Vec<f64> {
    let mut total = vec![0u128; lanes.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in lanes.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            total[i] += t.elapsed().as_nanos();
        }
    }
    total.iter().map(|&t| t as f64 / (n * ROUNDS) as f64).collect()
}

fn report(what: &str, names: [&str; 2], ns: &[f64]) {
    println!(
        "{what:<38} {:>10}: {:>8.1} ns   {:>10}: {:>8.1} ns   ratio {:.1}x",
        names[0],
        ns[0],
        names[1],
        ns[1],
        ns[0] / ns[1]
    );
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let n = if smoke { 20_000 } else { 200_000 };
    let q = QuotedPrice { asset: 1_950_123_456, liability: 1_950_223_456 };
    let price =
        PriceEntry { spot: q, stressed: QuotedPrice { asset: 1_755_111_110, liability: 2_145_245_801 } };

    // Journal: one tick record, as the journal frames it.
    let rec = Record::Tick { ts_ns: 1_583_971_800_123_456_789, asset: 7, price };
    let mut payload = Vec::new();
    record::encode_payload(&rec, &mut payload);
    let seq = 123_456u64;
    let mut a = Vec::new();
    let mut b = Vec::new();
    before::crc::encode(seq, &payload, &mut a);
    frame::encode(seq, &payload, &mut b);
    assert_eq!(a, b, "same frame bytes before and after");
    println!("journal tick record: payload {} bytes, frame {} bytes", payload.len(), b.len());

    let hdr: Vec<u8> = [(payload.len() as u32).to_le_bytes().as_slice(), &seq.to_le_bytes()].concat();
    let ns = alternate(
        n,
        &mut [
            ("table", &mut || {
                let mut c = before::crc::Crc32::new();
                c.update(black_box(&hdr));
                c.update(black_box(&payload));
                black_box(c.finish());
            }),
            ("crc32fast", &mut || {
                let mut c = crc::Crc32::new();
                c.update(black_box(&hdr));
                c.update(black_box(&payload));
                black_box(c.finish());
            }),
        ],
    );
    report("journal: CRC-32 of one frame", ["table", "crc32fast"], &ns);

    let mut out = Vec::with_capacity(1024);
    let mut pay = Vec::with_capacity(1024);
    let mut out2 = Vec::with_capacity(1024);
    let mut pay2 = Vec::with_capacity(1024);
    let ns = alternate(
        n,
        &mut [
            ("table", &mut || {
                pay.clear();
                out.clear();
                record::encode_payload(black_box(&rec), &mut pay);
                before::crc::encode(seq, &pay, &mut out);
                black_box(&out);
            }),
            ("crc32fast", &mut || {
                pay2.clear();
                out2.clear();
                record::encode_payload(black_box(&rec), &mut pay2);
                frame::encode(seq, &pay2, &mut out2);
                black_box(&out2);
            }),
        ],
    );
    report("journal: serialise + frame one record", ["table", "crc32fast"], &ns);

    // Feed: one signed tick frame; the listener verifies the tag over every byte before it.
    let secret = b"sixteen+ byte shared secret";
    let f = wire::Frame { seq: 42, ts_ns: 0, msg: FeedMsg::Tick { asset: 3, price } };
    let mut signed = Vec::new();
    let key = HmacKey::new(secret);
    wire::encode_signed(&f, &key, &mut signed);
    let (msg, tag) = signed.split_at(signed.len() - TAG_BYTES);
    let old = before::hmac::HmacKey::new(secret);
    assert!(old.verify(msg, tag) && key.verify(msg, tag), "same tag before and after");
    println!("feed tick frame: {} bytes signed, {} bytes with the tag", msg.len(), signed.len());
    let ns = alternate(
        n,
        &mut [
            ("hand", &mut || assert!(old.verify(black_box(msg), black_box(tag)))),
            ("RustCrypto", &mut || assert!(key.verify(black_box(msg), black_box(tag)))),
        ],
    );
    report("feed: verify one frame's HMAC-SHA256", ["hand", "RustCrypto"], &ns);
}
