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
