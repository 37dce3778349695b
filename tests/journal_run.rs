//! `liqscan run --journal` killed with SIGKILL mid-replay and restarted (three times, at
//! random moments), against an uninterrupted run of the same workload: the final breached set
//! is the same. That no account is ordered more often than it breached (an order re-sent after
//! a restart only when the restart reported it pending) is checked by an ignored test: it has
//! been seen failing (a known gap, docs/RELIABILITY.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

fn liqscan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_liqscan"))
}

fn lines(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok()) // a SIGKILL may cut the last line
        .collect()
}

/// Final breached slots, folding a run's breach/recovered events.
fn fold(events: &[serde_json::Value], into: &mut BTreeSet<u64>) {
    for e in events {
        let slot = e["slot"].as_u64().unwrap();
        if e["event"] == "breach" {
            into.insert(slot);
        } else {
            into.remove(&slot);
        }
    }
}

fn count_by_slot(orders: &[serde_json::Value], into: &mut BTreeMap<u64, u64>) {
    for o in orders {
        *into.entry(o["slot"].as_u64().unwrap()).or_default() += 1;
    }
}

/// What a killed-and-restarted journaled run produced, beside an uninterrupted run.
struct Drill {
    /// Final breached slots of the uninterrupted run.
    ref_final: BTreeSet<u64>,
    /// Final breached slots of the last (uninterrupted) restart.
    fin: BTreeSet<u64>,
    /// Breach episodes per slot in the uninterrupted run.
    episodes: BTreeMap<u64, u64>,
    /// Orders written per slot, over all runs.
    orders: BTreeMap<u64, u64>,
    /// Pending orders each restart reported re-sending, per slot.
    resent: BTreeMap<u64, u64>,
}

#[test]
fn killed_and_restarted_run_ends_with_the_same_breaches() {
    let d = drill();
    assert_eq!(d.fin, d.ref_final, "final breached set differs from the uninterrupted run");
    assert!(d.orders.values().sum::<u64>() > 100, "orders were dispatched");
}

/// Known gap (docs/RELIABILITY.md): seen failing under load with "slot 1925: 3 orders for 2
/// breaches (+re-sends)": a kill can land where an order has reached the executor but the
/// restart does not know it, so the account is ordered again. Run with `--ignored`.
#[test]
#[ignore = "known at-least-once window across restarts; see docs/RELIABILITY.md"]
fn killed_and_restarted_run_orders_no_account_twice() {
    let d = drill();
    for (slot, n) in &d.orders {
        let allowed = d.episodes.get(slot).copied().unwrap_or(0) + d.resent.get(slot).copied().unwrap_or(0);
        assert!(*n <= allowed, "slot {slot}: {n} orders for {allowed} breaches (+re-sends)");
    }
}

fn drill() -> Drill {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = ["run", "--demo-accounts", "2000"];
    // Uninterrupted, no journal.
    let ok = liqscan()
        .args(args)
        .args(["--out", d.join("ref-out.jsonl").to_str().unwrap()])
        .args(["--executor", &format!("jsonl:{}", d.join("ref-orders.jsonl").display())])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let ref_events = lines(&d.join("ref-out.jsonl"));
    let mut ref_final = BTreeSet::new();
    fold(&ref_events, &mut ref_final);
    let mut episodes: BTreeMap<u64, u64> = BTreeMap::new();
    for e in ref_events.iter().filter(|e| e["event"] == "breach") {
        *episodes.entry(e["slot"].as_u64().unwrap()).or_default() += 1;
    }
    assert!(!ref_final.is_empty());

    // Journaled, paced (about 1.5 s), killed three times at random moments (100-450 ms after
    // each start, so all land mid-replay), then run to the end.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
        std::env::var("LIQSCAN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(6),
    );
    let journal = d.join("journal");
    let mut orders: BTreeMap<u64, u64> = BTreeMap::new();
    let mut resent: BTreeMap<u64, u64> = BTreeMap::new();
    let mut last_out = None;
    let mut kills = 0;
    for run in 0..4 {
        let out = d.join(format!("out-{run}.jsonl"));
        let ord = d.join(format!("orders-{run}.jsonl"));
        let err = d.join(format!("err-{run}.txt"));
        let mut child = liqscan()
            .args(args)
            .args(["--pace", "fixed:10000", "--journal", journal.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap(), "--executor", &format!("jsonl:{}", ord.display())])
            .stderr(std::fs::File::create(&err).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        if run < 3 {
            let at = Duration::from_millis(rng.gen_range(100..450));
            let t = Instant::now();
            while t.elapsed() < at && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
            // SIGKILL (Child::kill sends SIGKILL on Unix).
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                kills += 1;
            }
            child.wait().unwrap();
        } else {
            assert!(child.wait().unwrap().success(), "{}", std::fs::read_to_string(&err).unwrap());
            last_out = Some(out);
        }
        count_by_slot(&lines(&ord), &mut orders);
        let e = std::fs::read_to_string(&err).unwrap();
        for l in e.lines().filter(|l| l.starts_with("journal: re-sent pending order")) {
            let slot: u64 = l.rsplit("slot ").next().unwrap().trim_end_matches(')').parse().unwrap();
            *resent.entry(slot).or_default() += 1;
        }
        if run > 0 {
            assert!(
                e.contains("journal") && e.contains("recovered to record"),
                "run {run} did not recover:\n{e}"
            );
        }
    }
    assert!(kills >= 2, "only {kills} kills landed mid-replay");
    // The last run starts from the recovered book: its events fold to the final set.
    let mut fin = BTreeSet::new();
    fold(&lines(&last_out.unwrap()), &mut fin);
    Drill { ref_final, fin, episodes, orders, resent }
}
