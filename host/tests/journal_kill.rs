//! kill -9 drill: a child process writes the journal (the drill workload, with orders "sent"
//! to a venue log between their pending and sent records) and is killed with SIGKILL at random
//! moments; after each kill the journal is recovered and checked, and the child restarted.
//!
//! ```text
//!   this test ──spawn──> child (this binary, test `child_writer`) ──append──> journal dir
//!       │                     │ stdout: acked record numbers          └─> venue.log (sends)
//!       │<────────────────────┘
//!       └─ sleep random, SIGKILL, Journal::open: state == drill.expected(m), m >= last ack,
//!          bitmaps == reference; at the end: no order sent twice except a pending one
//!          re-sent after a restart, none forgotten
//! ```
//!
//! `LIQSCAN_KILL_POINTS` sets the number of kills (default 20; `scripts/soak.sh` and the
//! recovery figure in docs/RELIABILITY.md use 100).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use liqscan_host::engine::ScanEngine;
use liqscan_host::journal::drill::Drill;
use liqscan_host::journal::{DurableState, FsyncPolicy, Journal, JournalConfig, OrderState, Record};
use rand::{Rng, SeedableRng};

const SLOTS: usize = 200;
const ASSETS: usize = 8;
const DIR_VAR: &str = "LIQSCAN_KILL_CHILD_DIR";
const MAX_RECORDS: u64 = 400_000;

fn drill() -> Drill {
    Drill { seed: 0x5eed_cafe, slots: SLOTS, assets: ASSETS }
}

fn config() -> JournalConfig {
    JournalConfig { fsync: FsyncPolicy::Never, segment_bytes: 64 << 10, snapshot_every: Some(3000) }
}

/// The child: recover, then write drill records until killed (or the cap).
#[test]
fn child_writer() {
    let Ok(dir) = std::env::var(DIR_VAR) else { return };
    let dir = Path::new(&dir);
    let (mut j, _) = Journal::open(&dir.join("journal"), SLOTS, ASSETS, config()).unwrap();
    let mut venue =
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join("venue.log")).unwrap();
    let mut out = std::io::stdout().lock();
    let d = drill();
    while j.state().seq < MAX_RECORDS {
        let r = d.next(j.state());
        if let Record::OrderSent { id, attempt } = &r {
            // The send: the executor takes the order before its sent record is journaled.
            venue.write_all(format!("{id} {attempt}\n").as_bytes()).unwrap();
        }
        let seq = j.append(&r).unwrap();
        if seq % 16 == 0 {
            writeln!(out, "ack {seq}").unwrap();
            out.flush().unwrap();
        }
    }
}

fn check_bitmaps(state: &DurableState, want: &DurableState) {
    let e = state.software_engine();
    let bits = want.reference_bitmaps();
    assert_eq!(e.breach(), &bits.breach[..]);
    assert_eq!(e.at_risk(), &bits.at_risk[..]);
}

#[test]
fn kill_nine_at_random_points_recovers_the_last_durable_record() {
    if std::env::var(DIR_VAR).is_ok() {
        return;
    }
    let points: usize = std::env::var("LIQSCAN_KILL_POINTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(points as u64);
    let d = drill();
    let mut expected = DurableState::new(SLOTS, ASSETS);
    // Per order id: restarts that found it pending (each may re-send it once).
    let mut pending_at_restart: BTreeMap<u64, u32> = BTreeMap::new();
    let mut tails = 0;
    for point in 0..points {
        let mut child = Command::new(&exe)
            .args(["--exact", "child_writer", "--nocapture", "--test-threads", "1"])
            .env(DIR_VAR, tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acked = 0u64;
            for line in BufReader::new(stdout).lines() {
                if let Some(n) = line.unwrap().strip_prefix("ack ") {
                    acked = n.parse().unwrap();
                }
            }
            acked
        });
        std::thread::sleep(Duration::from_micros(rng.gen_range(2_000..40_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = reader.join().unwrap();

        let (j, rec) = Journal::open(&tmp.path().join("journal"), SLOTS, ASSETS, config())
            .unwrap_or_else(|e| panic!("kill point {point}: recovery failed: {e}"));
        let m = rec.last_seq;
        assert!(m >= acked, "kill point {point}: record {acked} was acknowledged but only {m} recovered");
        assert!(
            m >= expected.seq,
            "kill point {point}: recovered {m} < previously recovered {}",
            expected.seq
        );
        tails += rec.tail.is_some() as usize;
        while expected.seq < m {
            let r = d.next(&expected);
            let seq = expected.seq + 1;
            expected.apply(seq, &r).unwrap();
        }
        assert_eq!(j.state(), &expected, "kill point {point}: state after record {m} differs");
        check_bitmaps(j.state(), &expected);
        for o in j.state().unsent_orders() {
            *pending_at_restart.entry(o.id).or_default() += 1;
        }
    }
    assert!(expected.seq > 1000, "the child wrote too little to test anything ({})", expected.seq);

    // Orders: the venue saw each sent order once, plus at most one re-send per restart that
    // found it pending (killed between the send and its sent record).
    let venue = std::fs::read_to_string(tmp.path().join("venue.log")).unwrap_or_default();
    let mut sends: BTreeMap<u64, u32> = BTreeMap::new();
    for line in venue.lines() {
        let id: u64 = line.split(' ').next().unwrap().parse().unwrap();
        *sends.entry(id).or_default() += 1;
    }
    let final_state = &expected;
    for id in 1..final_state.next_order_id {
        let n = sends.get(&id).copied().unwrap_or(0);
        let pending_now = final_state.orders.get(&id).is_some_and(|t| t.state == OrderState::Pending);
        if !pending_now {
            assert!(n >= 1, "order {id} journaled as sent but never reached the venue");
        }
        let allowed = 1 + pending_at_restart.get(&id).copied().unwrap_or(0);
        assert!(n <= allowed, "order {id} sent {n} times, allowed {allowed}");
    }
    assert!(
        sends.keys().all(|&id| id < final_state.next_order_id),
        "the venue saw an order the journal lost"
    );
    eprintln!(
        "kill drill: {points} kills, {} records, {} orders, {} torn tails cut",
        expected.seq,
        final_state.next_order_id - 1,
        tails
    );
}
