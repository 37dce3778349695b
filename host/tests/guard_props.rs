//! Oracle guard invariants on hostile update streams: nothing insane or backwards is ever
//! accepted, no jump is accepted on one update alone, and every update is counted once.

use liqscan_host::guard::{Confirm, GuardConfig, OracleGuard, Verdict};
use proptest::prelude::*;

const ASSETS: usize = 3;

fn price() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => 50.0..150.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(0.0),
        1 => -100.0..0.0f64,
        2 => 1.0..10_000.0f64,
    ]
}

fn update() -> impl Strategy<Value = (u16, i64, f64, u8, i64)> {
    // asset (sometimes unknown), timestamp step (sometimes backwards), price, source, clock lag
    (0u16..4, -3i64..10, price(), 0u8..3, 0i64..20)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn hostile_streams_keep_the_guard_invariants(
        updates in prop::collection::vec(update(), 1..200),
        second_source in any::<bool>(),
    ) {
        let mut cfg = GuardConfig::uniform(ASSETS, Some(15), 1000);
        cfg.confirm = if second_source { Confirm::SecondSource } else { Confirm::SecondUpdate };
        cfg.log_capacity = 64;
        let n_updates = updates.len();
        let mut g = OracleGuard::new(cfg);
        let mut ts = 100i64;
        let mut last_ok: Vec<Option<(i64, f64)>> = vec![None; ASSETS];
        let mut pending_jump: Vec<bool> = vec![false; ASSETS];
        for (asset, step, p, source, lag) in updates {
            ts += step;
            let now = ts + lag;
            let v = g.check(asset, ts, p, source, now);
            if let Verdict::Accept(x) = v {
                let a = asset as usize;
                prop_assert!(a < ASSETS);
                prop_assert!(x.is_finite() && x > 0.0);
                prop_assert!(now - ts <= 15, "stale update accepted");
                if let Some((t, last)) = last_ok[a] {
                    prop_assert!(ts > t, "timestamp did not advance");
                    // A move beyond the bound needs a held update before it.
                    if (x - last).abs() / last * 1e4 > 1000.0 {
                        prop_assert!(pending_jump[a], "jump {last} -> {x} accepted on one update");
                    }
                }
                last_ok[a] = Some((ts, x));
                pending_jump[a] = false;
                prop_assert_eq!(g.last(asset), Some((ts, x)));
            }
            if let Verdict::Held(_) = v {
                pending_jump[asset as usize] = true;
            }
        }
        let c = g.counters();
        prop_assert_eq!(c.checked(), n_updates as u64, "every update counted once");
        let n_logged = g.drain_log().count() as u64;
        prop_assert_eq!(n_logged + c.log_dropped, c.checked() - c.accepted - c.confirmed + c.dropped_jump);
    }
}
