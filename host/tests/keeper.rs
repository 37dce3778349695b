//! The keeper library: its configuration merge (flags over environment over file, switches
//! both ways) and its builder's stop and error paths.

use std::time::Duration;

use clap::Parser;
use liqscan_host::keeper::{Keeper, KeeperConfig, KeeperError};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    keeper: KeeperConfig,
}

fn flags(args: &[&str]) -> KeeperConfig {
    Cli::try_parse_from(std::iter::once("keeper").chain(args.iter().copied())).expect("flags parse").keeper
}

fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("keeper.toml");
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

#[test]
fn a_flag_turns_a_files_switch_off_and_on() {
    let (_d, on) = file("spin = true\nmetrics_allow_remote = true\n");
    let c = flags(&["--spin=false", "--metrics-allow-remote=false"]).merged(Some(&on)).unwrap();
    assert_eq!((c.spin, c.metrics_allow_remote), (Some(false), Some(false)));
    assert!(!c.spins());
    let c = flags(&[]).merged(Some(&on)).unwrap();
    assert!(c.spins(), "the file's switch stands when no flag is given");
    let (_d, off) = file("spin = false\n");
    assert!(flags(&["--spin"]).merged(Some(&off)).unwrap().spins(), "--spin alone is on");
    // The value needs `=`: `--spin false` would read `false` as a stray argument.
    assert!(Cli::try_parse_from(["k", "--spin", "false"]).is_err());
}

#[test]
fn flags_win_the_file_fills_the_rest_sections_included() {
    let (_d, p) = file(
        "backend = \"shm\"\npace = \"fixed:10\"\nticks = [\"a.csv\", \"b.csv\"]\n\
         [feed]\ntcp = \"127.0.0.1:0\"\nmax_jump_bps = 500\n\
         [dispatch]\nmax_in_flight = 7\n",
    );
    let c = flags(&["--backend", "software", "--listen-ms", "250", "--feed-max-jump-bps", "900"])
        .merged(Some(&p))
        .unwrap();
    assert_eq!(c.backend_name(), "software");
    assert_eq!(c.pace.as_deref(), Some("fixed:10"));
    assert_eq!(c.ticks.len(), 2, "no --ticks: the file's list");
    assert_eq!(c.feed.tcp.as_deref(), Some("127.0.0.1:0"));
    assert_eq!((c.feed.listen_ms, c.feed.max_jump_bps), (Some(250), Some(900)));
    assert_eq!(c.dispatch.expect("[dispatch] kept").max_in_flight, 7);
    let c = flags(&["--ticks", "c.csv"]).merged(Some(&p)).unwrap();
    assert_eq!(c.ticks, vec![std::path::PathBuf::from("c.csv")], "--ticks replaces the file's list");
}

#[test]
fn a_bad_config_file_names_itself() {
    let (_d, p) = file("spinn = true\n");
    let e = flags(&[]).merged(Some(&p)).unwrap_err();
    assert!(liqscan_host::keeper::chain(&e).contains("keeper.toml"), "{e}");
    let e = flags(&["--journal", "j", "--journal-fsync", "sometimes"]).journal_plan().unwrap_err();
    assert!(e.to_string().contains("sometimes"), "{e}");
}

#[test]
fn a_stop_ends_intake_early_and_finish_still_reports() {
    // 300 demo accounts and their crash at 2,000 messages a second: seconds of replay.
    let keeper = Keeper::builder()
        .config(KeeperConfig { pace: Some("fixed:2000".into()), ..Default::default() })
        .demo(300)
        .start()
        .expect("start");
    std::thread::sleep(Duration::from_millis(200));
    keeper.stopper().stop();
    let r = keeper.finish().expect("finish");
    assert_eq!(r.stopped_by, Some("stop requested"));
    // The whole replay is 13,627 messages (about 7 s at this pace).
    assert!(r.replayed > 0 && r.replayed < 5000, "stopped early: {} messages", r.replayed);
    assert_eq!(r.report.messages, r.replayed, "every replayed message was applied");
}

#[test]
fn an_orders_journal_that_cannot_open_is_an_error_from_finish_not_an_exit() {
    let dir = tempfile::tempdir().unwrap();
    // DIR/orders is a file, not the journal's directory.
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(dir.path().join("orders"), b"not a journal").unwrap();
    let keeper = Keeper::builder().demo(200).journal(dir.path()).start().expect("start");
    let Err(e) = keeper.finish() else { panic!("the orders journal cannot open, yet finish succeeded") };
    let msg = liqscan_host::keeper::chain(&e);
    assert!(msg.contains("orders"), "{msg}");
    assert!(matches!(e, KeeperError::Context { .. }), "{e:?}");
}

#[test]
fn an_unknown_backend_or_a_card_without_a_host_is_refused_at_start() {
    let e = Keeper::builder().demo(10).backend("quantum").start().err().expect("refused");
    assert!(e.to_string().contains("unknown backend 'quantum'"), "{e}");
    let e = Keeper::builder().demo(10).backend("card-software").start().err().expect("refused");
    assert!(e.to_string().contains("card host"), "{e}");
}

#[test]
fn a_dropped_handle_stops_its_keeper_and_writes_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let keeper = Keeper::builder()
        .config(KeeperConfig { pace: Some("fixed:2000".into()), ..Default::default() })
        .demo(300)
        .events(&out)
        .start()
        .expect("start");
    let t = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    drop(keeper);
    // Without the drop's stop the paced replay would run for seconds.
    assert!(t.elapsed() < Duration::from_secs(3), "dropped in {:?}", t.elapsed());
    assert!(out.exists(), "the events writer finished its file");
}

/// Counts the messages the engine thread applied (the bulk-loaded book is not among them).
struct CountMessages(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl liqscan_host::pipeline::BreachSink for CountMessages {
    fn on_scan(&mut self, _: u64, _: &[u32], _: &[u32], _: &[u32]) {}
    fn on_message(&mut self, _: u64, _: u64, _: &liqscan_host::pipeline::FeedMsg) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_bulk_loaded_book_gives_what_the_streamed_book_gives() {
    use liqscan_host::engine::SoftwareEngine;
    use liqscan_host::feed::recorded::Recorded;
    use liqscan_host::keeper::{KeeperReport, Workload, digest};
    use liqscan_host::pipeline::FeedMsg;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    let demo = Workload::demo(1500).unwrap();
    let book = demo.msgs.leading_upserts();
    for seed in 0..3u64 {
        // The demo's book with later copies of some accounts (the last one stands), some
        // accounts emptied, then its crash with account deltas among the ticks.
        let mut rng = StdRng::seed_from_u64(seed);
        let mut msgs = Recorded::default();
        let copy = |rng: &mut StdRng| demo.msgs.get(rng.gen_range(0..book)).1;
        for i in 0..book {
            msgs.push(0, &demo.msgs.get(i).1);
            if rng.gen_bool(0.05) {
                let FeedMsg::Upsert { n, terms, .. } = copy(&mut rng) else { unreachable!() };
                let slot = rng.gen_range(0..book as u32);
                let n = if rng.gen_bool(0.2) { 0 } else { n as usize };
                msgs.push(0, &FeedMsg::upsert(slot, &terms[..n]));
            }
        }
        for (ts, m) in demo.msgs.iter_from(book) {
            msgs.push(ts, &m);
            if rng.gen_bool(0.02) {
                let slot = rng.gen_range(0..book as u32);
                let FeedMsg::Upsert { n, terms, .. } = copy(&mut rng) else { unreachable!() };
                let delta = if rng.gen_bool(0.3) {
                    FeedMsg::Remove { slot }
                } else {
                    FeedMsg::upsert(slot, &terms[..n as usize])
                };
                msgs.push(ts, &delta);
            }
        }
        let w = Workload { msgs, ..demo.clone() };
        let lead = w.msgs.leading_upserts();
        let run = |streamed: bool| -> (KeeperReport, u64) {
            let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let mut k =
                Keeper::builder().workload(w.clone()).sink_with(Box::new(CountMessages(seen.clone())));
            if streamed {
                k = k.engine(Box::new(SoftwareEngine::new(w.ids.len(), w.assets)));
            }
            let r = k.start().expect("start").finish().expect("finish");
            (r, seen.load(std::sync::atomic::Ordering::Relaxed))
        };
        let ((bulk, bulk_seen), (streamed, streamed_seen)) = (run(false), run(true));
        assert_eq!(streamed_seen, w.msgs.len() as u64, "seed {seed}: the streamed run applies every message");
        assert_eq!(bulk_seen, (w.msgs.len() - lead) as u64, "seed {seed}: the book was bulk-loaded");
        assert!(bulk.changes.len() > 1000, "seed {seed}: a crash with breaches ({})", bulk.changes.len());
        assert_eq!(bulk.changes, streamed.changes, "seed {seed}: same breach changes, same sequence numbers");
        assert_eq!(digest(&bulk.changes), digest(&streamed.changes));
        assert_eq!(
            (bulk.report.breach, bulk.report.at_risk),
            (streamed.report.breach, streamed.report.at_risk)
        );
        assert_eq!((bulk.report.messages, bulk.replayed), (streamed.report.messages, streamed.replayed));
        assert_eq!(bulk.report.refused, streamed.report.refused);
    }
}

#[test]
fn the_keeper_sizes_orders_from_the_accounts_live_deltas_left() {
    use liqscan_hdl::abi::Coeff;
    use liqscan_host::dispatch::executor::InMemory;
    use liqscan_host::dispatch::order::OrderKind;
    use liqscan_host::dispatch::{Executor, LiquidationOrder};
    use liqscan_host::feed::recorded::Recorded;
    use liqscan_host::keeper::Workload;
    use liqscan_host::pipeline::FeedMsg;
    use std::collections::BTreeSet;

    let demo = Workload::demo(1000).unwrap();
    let book = demo.msgs.leading_upserts();
    let run = |w: Workload| -> Vec<LiquidationOrder> {
        let got = InMemory::new();
        let g = got.clone();
        let k = Keeper::builder().workload(w).executor_with(move || Box::new(g) as Box<dyn Executor>);
        k.start().expect("start").finish().expect("finish");
        got.orders()
    };
    let ordered: BTreeSet<u32> = run(demo.clone()).iter().map(|o| o.slot).collect();
    // Twenty accounts the crash never orders take, by live upserts after the first tick, the
    // terms of twenty it does; ten of them then get an upsert the engine refuses (a holding
    // given twice, no debt), which must change nothing.
    let sources: Vec<u32> = ordered.iter().copied().take(20).collect();
    let targets: Vec<u32> = (0..book as u32).filter(|s| !ordered.contains(s)).take(20).collect();
    assert_eq!((sources.len(), targets.len()), (20, 20));
    let mut msgs = Recorded::default();
    for i in 0..=book {
        let (ts, m) = demo.msgs.get(i);
        msgs.push(ts, &m);
    }
    let ts = demo.msgs.get(book).0;
    let terms_of = |s: u32| demo.msgs.upsert(s as usize).unwrap().1.to_vec();
    for (k, (&t, &s)) in targets.iter().zip(&sources).enumerate() {
        msgs.push(ts, &FeedMsg::upsert(t, &terms_of(s)));
        if k < 10 {
            let refused = [Coeff { asset: 0, coeff: 5 }, Coeff { asset: 0, coeff: 7 }];
            msgs.push(ts, &FeedMsg::upsert(t, &refused));
        }
    }
    for (ts, m) in demo.msgs.iter_from(book + 1) {
        msgs.push(ts, &m);
    }
    let orders = run(Workload { msgs, ..demo.clone() });
    let mut hit = BTreeSet::new();
    for o in orders.iter().filter(|o| targets.contains(&o.slot)) {
        let k = targets.iter().position(|&t| t == o.slot).unwrap();
        let terms = terms_of(sources[k]);
        let held = |a: u16| terms.iter().any(|t| t.asset == a && t.coeff > 0);
        let owed = |a: u16| terms.iter().any(|t| t.asset == a && t.coeff < 0);
        let OrderKind::Direct { legs, .. } = &o.kind else { panic!("slot {}: {:?}", o.slot, o.kind) };
        for l in legs {
            assert!(
                owed(l.debt_asset) && held(l.collateral_asset),
                "slot {}: {l:?} against {terms:?}",
                o.slot
            );
        }
        hit.insert(k);
    }
    assert!(hit.len() >= 15, "the moved accounts are ordered as they are now: {hit:?}");
    assert!(
        hit.iter().filter(|&&k| k < 10).count() >= 7,
        "a refused upsert changed dispatch's account: {hit:?}"
    );
}
