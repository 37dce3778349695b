//! Hostile input for every decoder, fast, in the default suite: random and mutated bytes into
//! the journal frame scan and record decode, the ring entry decoders, and the venue, account,
//! tick and bar readers. None may panic; decoded ring entries re-encode to their bytes. Crashes
//! found by the long fuzz runs (scripts/fuzz.sh) are added here as named cases.

use std::path::Path;

use liqscan_hdl::abi::ring::EntryBytes;
use liqscan_hdl::abi::{Command, EventEntry};
use liqscan_host::io::{Format, accounts, ticks, venue};
use liqscan_host::journal::drill::Drill;
use liqscan_host::journal::frame::{self, MAX_RECORD};
use liqscan_host::journal::record::{decode_payload, encode_payload};
use liqscan_host::journal::{DurableState, Record};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VENUE: &str = include_str!("../../examples/venue.toml");
const ACCOUNTS: &str = include_str!("../../examples/accounts.csv");
const TICKS: &str = include_str!("../../examples/usdc.csv");

fn mutate(rng: &mut ChaCha8Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..rng.gen_range(1..8) {
        match rng.gen_range(0..4) {
            0 if !b.is_empty() => {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.r#gen();
            }
            1 if !b.is_empty() => {
                let i = rng.gen_range(0..b.len());
                b.truncate(i);
            }
            2 => {
                let i = rng.gen_range(0..=b.len());
                let extra: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.r#gen()).collect();
                b.splice(i..i, extra);
            }
            _ if b.len() > 2 => {
                let i = rng.gen_range(0..b.len() - 1);
                let j = rng.gen_range(i..b.len());
                let to = rng.gen_range(0..b.len() - (j - i));
                b.copy_within(i..j, to);
            }
            _ => {}
        }
    }
    b
}

fn journal_bytes() -> Vec<u8> {
    let d = Drill { seed: 3, slots: 32, assets: 4 };
    let mut s = DurableState::new(32, 4);
    let (mut buf, mut payload) = (Vec::new(), Vec::new());
    for _ in 0..60 {
        let r = d.next(&s);
        let seq = s.seq + 1;
        s.apply(seq, &r).unwrap();
        encode_payload(&r, &mut payload);
        frame::encode(seq, &payload, &mut buf);
    }
    buf
}

#[test]
fn journal_frames_survive_random_and_mutated_bytes() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let base = journal_bytes();
    for i in 0..3000 {
        let b = if i % 3 == 0 {
            (0..rng.gen_range(0..400)).map(|_| rng.r#gen()).collect()
        } else {
            mutate(&mut rng, &base)
        };
        if let Ok(scan) = frame::scan(&b, MAX_RECORD) {
            let mut s = DurableState::new(32, 4);
            for f in &scan.frames {
                if let Ok(r) = decode_payload(f.payload) {
                    let _ = s.apply(f.seq, &r);
                }
            }
        }
        let _ = serde_json::from_slice::<DurableState>(&b);
        let _ = serde_json::from_slice::<Record>(&b);
    }
}

#[test]
fn ring_entries_decode_or_refuse_and_round_trip() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut decoded = 0;
    for _ in 0..200_000 {
        let mut b: EntryBytes = [0; 64];
        // Mostly-zero entries with a known kind reach the payload checks; pure noise does not.
        let words = rng.gen_range(0..16);
        for _ in 0..words {
            let i = rng.gen_range(0..64);
            b[i] = rng.r#gen();
        }
        b[0] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, rng.r#gen()]
            [rng.gen_range(0..14)];
        if let Ok((seq, c)) = Command::decode(&b) {
            assert_eq!(c.encode(seq), b, "{c:?}");
            decoded += 1;
        }
        if let Ok(e) = EventEntry::decode(&b) {
            assert_eq!(e.encode(), b, "{e:?}");
            decoded += 1;
        }
    }
    assert!(decoded > 100, "the generator reaches valid entries ({decoded})");
}

#[test]
fn readers_refuse_mutated_files_without_panicking() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let p = Path::new("hostile");
    let table = venue::parse_venue(p, VENUE, Format::Toml).unwrap();
    let bars = r#"[{"time_period_start":"2020-03-12T00:00:00Z","time_period_end":"2020-03-12T00:10:00Z",
        "price_open":100,"price_high":101,"price_low":99,"price_close":100.5}]"#;
    for _ in 0..1500 {
        let v = mutate(&mut rng, VENUE.as_bytes());
        if let Ok(t) = std::str::from_utf8(&v) {
            let _ = venue::parse_venue(p, t, Format::Toml);
            let _ = venue::parse_venue(p, t, Format::Json);
        }
        let a = mutate(&mut rng, ACCOUNTS.as_bytes());
        if let Ok(t) = std::str::from_utf8(&a) {
            for f in [Format::Csv, Format::Json, Format::Toml] {
                let _ = accounts::parse_accounts(p, t, f, &table);
            }
        }
        let k = mutate(&mut rng, TICKS.as_bytes());
        if let Ok(t) = std::str::from_utf8(&k) {
            let _ = ticks::parse_ticks(p, t, Format::Csv, &table);
            let _ = ticks::parse_ticks(p, t, Format::Jsonl, &table);
        }
        let b = mutate(&mut rng, bars.as_bytes());
        if let Ok(t) = std::str::from_utf8(&b) {
            let _ = ticks::parse_bars(p, t, &table, "ETH");
        }
    }
}
