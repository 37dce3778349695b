//! Fuzz bodies, one per decoder. Each takes arbitrary bytes, must never panic, and checks what
//! the decoder promises (ring entries: decode then encode gives the same bytes; journal frames:
//! every frame scan accepts has a valid checksum and is re-encoded to the same bytes).

use std::path::Path;
use std::sync::OnceLock;

use liqscan_hdl::abi::ring::EntryBytes;
use liqscan_hdl::abi::{Command, EventEntry};
use liqscan_host::feed::auth::HmacKey;
use liqscan_host::feed::wire;
use liqscan_host::io::{Format, accounts, ticks, venue};
use liqscan_host::journal::frame::{self, MAX_RECORD};
use liqscan_host::journal::record::decode_payload;
use liqscan_host::journal::{DurableState, Record};
use liqscan_host::model::AssetTable;

/// The venue the account and tick readers resolve against (the example venue).
pub fn table() -> &'static AssetTable {
    static T: OnceLock<AssetTable> = OnceLock::new();
    T.get_or_init(|| {
        venue::parse_venue(Path::new("venue.toml"), include_str!("../../examples/venue.toml"), Format::Toml)
            .expect("example venue parses")
    })
}

fn entry(data: &[u8]) -> Option<EntryBytes> {
    data.get(..64).map(|b| b.try_into().unwrap())
}

/// Ring command decode; a decoded command re-encodes to the same bytes.
pub fn ring_command(data: &[u8]) {
    let Some(b) = entry(data) else { return };
    if let Ok((seq, cmd)) = Command::decode(&b) {
        assert_eq!(cmd.encode(seq), b, "command {cmd:?} does not re-encode to its bytes");
    }
}

/// Ring event decode; a decoded event re-encodes to the same bytes.
pub fn ring_event(data: &[u8]) {
    let Some(b) = entry(data) else { return };
    if let Ok(e) = EventEntry::decode(&b) {
        assert_eq!(e.encode(), b, "event {e:?} does not re-encode to its bytes");
    }
}

/// Journal segment bytes: scan, decode and apply every record; snapshot body decode.
pub fn journal_records(data: &[u8]) {
    if let Ok(scan) = frame::scan(data, MAX_RECORD) {
        let mut state = DurableState::new(16, 4);
        for f in &scan.frames {
            let mut again = Vec::new();
            frame::encode(f.seq, f.payload, &mut again);
            assert_eq!(&data[f.offset..f.end()], &again[..]);
            if let Ok(rec) = decode_payload(f.payload) {
                let _ = state.apply(f.seq, &rec);
                let back: Record = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
                assert_eq!(back, rec);
            }
        }
        assert!(scan.valid_end <= data.len());
    }
    let _ = serde_json::from_slice::<DurableState>(data);
}

fn text(data: &[u8]) -> Option<(u8, &str)> {
    let (&sel, rest) = data.split_first()?;
    Some((sel, std::str::from_utf8(rest).ok()?))
}

/// Venue reader, TOML or JSON.
pub fn io_venue(data: &[u8]) {
    let Some((sel, t)) = text(data) else { return };
    let fmt = if sel & 1 == 0 { Format::Toml } else { Format::Json };
    let _ = venue::parse_venue(Path::new("fuzz"), t, fmt);
}

/// Account reader, CSV, JSON or TOML.
pub fn io_accounts(data: &[u8]) {
    let Some((sel, t)) = text(data) else { return };
    let fmt = [Format::Csv, Format::Json, Format::Toml][sel as usize % 3];
    let _ = accounts::parse_accounts(Path::new("fuzz"), t, fmt, table());
}

/// Tick reader, CSV or JSONL.
pub fn io_ticks(data: &[u8]) {
    let Some((sel, t)) = text(data) else { return };
    let fmt = if sel & 1 == 0 { Format::Csv } else { Format::Jsonl };
    let _ = ticks::parse_ticks(Path::new("fuzz"), t, fmt, table());
}

/// Bar-file reader.
pub fn io_bars(data: &[u8]) {
    let Some((_, t)) = text(data) else { return };
    let _ = ticks::parse_bars(Path::new("fuzz"), t, table(), "ETH");
}

/// Feed wire frames (the live listeners' decoder): a decoded frame encodes to bytes that
/// decode to the same frame; signed with a key, it verifies with that key and not another.
pub fn wire_frame(data: &[u8]) {
    let Ok((f, len, _)) = wire::decode_tagged(data) else { return };
    assert!(len <= data.len(), "frame length {len} beyond the {} bytes given", data.len());
    let mut b = Vec::new();
    wire::encode(&f, &mut b);
    let (g, glen, gtag) = wire::decode_tagged(&b).expect("an encoded frame decodes");
    assert_eq!((g, glen, gtag.is_none()), (f, b.len(), true), "unsigned round trip of {f:?}");
    let key = HmacKey::new(b"fuzz");
    wire::encode_signed(&f, &key, &mut b);
    let (h, hlen, tag) = wire::decode_tagged(&b).expect("a signed frame decodes");
    assert_eq!((h, hlen), (f, b.len()), "signed round trip of {f:?}");
    let tag = tag.expect("a signed frame has its tag");
    let covered = &b[..hlen - tag.len()];
    assert!(key.verify(covered, tag), "the signing key does not verify {f:?}");
    assert!(!HmacKey::new(b"other").verify(covered, tag), "another key verifies {f:?}");
}

/// Every body by target name.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("ring_command", ring_command),
    ("ring_event", ring_event),
    ("journal_records", journal_records),
    ("io_venue", io_venue),
    ("io_accounts", io_accounts),
    ("io_ticks", io_ticks),
    ("io_bars", io_bars),
    ("wire_frame", wire_frame),
];
