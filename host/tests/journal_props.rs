//! Journal replay invariants on random workloads with random damage.
//!
//! ```text
//!   drill (seeded) ──append n──> journal dir ──damage──> Journal::open
//!         │                                                  │
//!         └── expected(m) in memory ──── equal? ─────────── state, bitmaps (vs reference)
//! ```
//!
//! m is the last record that survives the damage: a cut or a flipped byte in the tail loses
//! the records from the damaged one on (reported as a torn tail), a flipped byte with valid
//! records after it is an error naming the damaged frame's offset.

use std::fs;
use std::path::{Path, PathBuf};

use liqscan_host::engine::ScanEngine;
use liqscan_host::journal::drill::Drill;
use liqscan_host::journal::frame::{self, MAX_RECORD};
use liqscan_host::journal::{DurableState, FsyncPolicy, Journal, JournalConfig, JournalError, Record};
use proptest::prelude::*;

const SLOTS: usize = 96;
const ASSETS: usize = 6;

fn config(segment_bytes: usize, snapshot_every: Option<u64>, fsync: u8) -> JournalConfig {
    let fsync = match fsync % 3 {
        0 => FsyncPolicy::Never,
        1 => FsyncPolicy::Batch { records: 16, millis: 5 },
        _ => FsyncPolicy::Always,
    };
    JournalConfig { fsync, segment_bytes, snapshot_every }
}

fn write(dir: &Path, drill: &Drill, n: u64, cfg: &JournalConfig) {
    let (mut j, _) = Journal::open(dir, SLOTS, ASSETS, cfg.clone()).unwrap();
    while j.state().seq < n {
        let r = drill.next(j.state());
        j.append(&r).unwrap();
    }
}

fn last_segment(dir: &Path) -> (u64, PathBuf) {
    fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let n = p.file_name()?.to_str()?.strip_prefix("wal-")?.strip_suffix(".log")?.parse().ok()?;
            Some((n, p))
        })
        .max()
        .unwrap()
}

/// Frame (offset, end, seq) of a segment.
fn frames(path: &Path) -> Vec<(usize, usize, u64)> {
    let buf = fs::read(path).unwrap();
    let s = frame::scan(&buf, MAX_RECORD).unwrap();
    s.frames.iter().map(|f| (f.offset, f.end(), f.seq)).collect()
}

fn assert_state(state: &DurableState, drill: &Drill, m: u64) {
    let want = drill.expected(m);
    assert_eq!(state, &want, "recovered state differs from the state after record {m}");
    let engine = state.software_engine();
    let bits = want.reference_bitmaps();
    assert_eq!(engine.breach(), &bits.breach[..], "breach bitmap after record {m}");
    assert_eq!(engine.at_risk(), &bits.at_risk[..], "at-risk bitmap after record {m}");
}

#[derive(Clone, Debug)]
enum Damage {
    None,
    /// Zero the last segment from a point between its first frame and its end (a torn write in
    /// the mapped file).
    ZeroFrom(f64),
    /// Truncate the file there (a torn write through write(2), or a copy cut short).
    TruncateAt(f64),
    /// Flip one byte of the last frame.
    FlipLast(f64),
    /// Flip one byte of a frame that has valid frames after it.
    FlipMiddle(f64, f64),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::None),
        (0.0..1.0f64).prop_map(Damage::ZeroFrom),
        (0.0..1.0f64).prop_map(Damage::TruncateAt),
        (0.0..1.0f64).prop_map(Damage::FlipLast),
        ((0.0..1.0f64), (0.0..1.0f64)).prop_map(|(a, b)| Damage::FlipMiddle(a, b)),
    ]
}

fn pick(lo: usize, hi: usize, x: f64) -> usize {
    (lo + ((hi - lo) as f64 * x) as usize).min(hi.saturating_sub(1)).max(lo)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn recovery_restores_the_last_durable_record(
        seed in any::<u64>(),
        n in 1u64..300,
        seg_kib in 2usize..24,
        snapshot_every in prop::option::of(20u64..200),
        fsync in any::<u8>(),
        dmg in damage(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let drill = Drill { seed, slots: SLOTS, assets: ASSETS };
        let cfg = config(seg_kib << 10, snapshot_every, fsync);
        write(dir, &drill, n, &cfg);
        let (start, seg) = last_segment(dir);
        let fr = frames(&seg);
        // What survives: (last record, torn tail expected, error offset expected).
        let mut expect = (n, false, None);
        match dmg {
            Damage::None => {}
            _ if fr.is_empty() => {}
            Damage::ZeroFrom(x) | Damage::TruncateAt(x) => {
                let end = fr.last().unwrap().1;
                let cut = pick(fr[0].0, end, x);
                if matches!(dmg, Damage::ZeroFrom(_)) {
                    let mut buf = fs::read(&seg).unwrap();
                    buf[cut..].iter_mut().for_each(|b| *b = 0);
                    fs::write(&seg, buf).unwrap();
                } else {
                    fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut as u64).unwrap();
                }
                let kept = fr.iter().filter(|f| f.1 <= cut).map(|f| f.2).max().unwrap_or(start - 1);
                let torn = !fr.iter().any(|f| f.0 == cut);
                expect = (kept, torn, None);
            }
            Damage::FlipLast(x) => {
                let &(o, e, s) = fr.last().unwrap();
                let mut buf = fs::read(&seg).unwrap();
                buf[pick(o, e, x)] ^= 0x41;
                fs::write(&seg, buf).unwrap();
                expect = (s - 1, true, None);
            }
            Damage::FlipMiddle(a, b) => {
                if fr.len() >= 2 {
                    let k = pick(0, fr.len() - 1, a);
                    let (o, e, _) = fr[k];
                    let mut buf = fs::read(&seg).unwrap();
                    buf[pick(o, e, b)] ^= 0x41;
                    fs::write(&seg, buf).unwrap();
                    expect = (0, false, Some(o as u64));
                }
            }
        }
        let (m, torn, err_at) = expect;
        match Journal::open(dir, SLOTS, ASSETS, cfg.clone()) {
            Ok((j, rec)) => {
                prop_assert!(err_at.is_none(), "damage in the middle was not reported: {rec}");
                prop_assert_eq!(rec.last_seq, m);
                prop_assert_eq!(rec.tail.is_some(), torn, "{}", rec);
                assert_state(j.state(), &drill, m);
                // The journal goes on after the cut, and a second recovery sees the new records.
                let mut j = j;
                for _ in 0..25 {
                    let r = drill.next(j.state());
                    j.append(&r).unwrap();
                }
                drop(j);
                let (j, rec) = Journal::open(dir, SLOTS, ASSETS, cfg).unwrap();
                prop_assert!(rec.tail.is_none());
                assert_state(j.state(), &drill, m + 25);
            }
            Err(JournalError::Corrupt { offset, next_valid, .. }) => {
                prop_assert_eq!(Some(offset), err_at);
                prop_assert!(next_valid > offset);
            }
            Err(e) => prop_assert!(false, "unexpected error: {e}"),
        }
    }
}

#[test]
fn a_refused_record_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(1 << 14, None, 0);
    let (mut j, _) = Journal::open(tmp.path(), SLOTS, ASSETS, cfg.clone()).unwrap();
    let up = Record::Upsert { account: 7, slot: 3, terms: vec![] };
    j.append(&up).unwrap();
    for bad in [
        Record::Upsert { account: 8, slot: 3, terms: vec![] },
        Record::Remove { account: 8, slot: 3 },
        Record::Upsert { account: 9, slot: SLOTS as u32, terms: vec![] },
        Record::Tick { ts_ns: 0, asset: ASSETS as u16, price: Default::default() },
        Record::BatchTick { ts_ns: 0, prices: vec![] },
        Record::OrderSent { id: 1, attempt: 1 },
        Record::OrderDone { id: 1, outcome: String::new() },
    ] {
        assert!(matches!(j.append(&bad), Err(JournalError::Refused(_))), "{bad:?} was taken");
    }
    assert_eq!(j.state().seq, 1);
    drop(j);
    let (j, rec) = Journal::open(tmp.path(), SLOTS, ASSETS, cfg).unwrap();
    assert_eq!(rec.last_seq, 1);
    assert_eq!(j.state().accounts[3].as_ref().unwrap().account, 7);
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_previous_one() {
    let tmp = tempfile::tempdir().unwrap();
    let drill = Drill { seed: 11, slots: SLOTS, assets: ASSETS };
    let cfg = config(1 << 13, Some(100), 0);
    write(tmp.path(), &drill, 450, &cfg);
    let mut snaps: Vec<PathBuf> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    snaps.sort();
    assert_eq!(snaps.len(), 2, "the newest two snapshots are kept");
    let mut buf = fs::read(snaps.last().unwrap()).unwrap();
    let mid = buf.len() / 2;
    buf[mid] ^= 1;
    fs::write(snaps.last().unwrap(), buf).unwrap();
    let (j, rec) = Journal::open(tmp.path(), SLOTS, ASSETS, cfg).unwrap();
    assert_eq!(rec.bad_snapshots.len(), 1);
    assert_eq!(rec.last_seq, 450);
    assert_state(j.state(), &drill, 450);
}

#[test]
fn wrong_shape_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(Journal::open(tmp.path(), SLOTS, ASSETS, JournalConfig::default()).unwrap());
    let e = Journal::open(tmp.path(), SLOTS + 1, ASSETS, JournalConfig::default()).err().unwrap();
    assert!(matches!(e, JournalError::Shape { .. }), "{e}");
}

#[test]
fn orders_pending_are_reported_unsent_and_sent_ones_in_flight() {
    use liqscan_host::journal::OrderRecord;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(1 << 14, None, 2);
    let (mut j, _) = Journal::open(tmp.path(), SLOTS, ASSETS, cfg.clone()).unwrap();
    j.append(&Record::Upsert { account: 5, slot: 0, terms: vec![] }).unwrap();
    let order =
        |id, attempt| OrderRecord::of(id, 5, 0, attempt, &("repay", "12345678901234567890123")).unwrap();
    j.append(&Record::OrderPending(order(1, 1))).unwrap();
    j.append(&Record::OrderSent { id: 1, attempt: 1 }).unwrap();
    j.append(&Record::OrderPending(order(2, 1))).unwrap();
    j.append(&Record::OrderPending(order(3, 1))).unwrap();
    j.append(&Record::OrderSent { id: 3, attempt: 1 }).unwrap();
    j.append(&Record::OrderDone { id: 3, outcome: "filled".into() }).unwrap();
    drop(j);
    let (j, _) = Journal::open(tmp.path(), SLOTS, ASSETS, cfg).unwrap();
    let ids = |it: &mut dyn Iterator<Item = &OrderRecord>| it.map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(ids(&mut j.state().in_flight_orders()), vec![1]);
    assert_eq!(ids(&mut j.state().unsent_orders()), vec![2]);
    assert_eq!(j.state().orders_done, 1);
    let back: (String, String) = j.state().orders[&2].order.order().unwrap();
    assert_eq!(back.1, "12345678901234567890123");
}
