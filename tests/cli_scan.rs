//! End-to-end tests of `liqscan scan` and `liqscan demo`: the real binary, real files.
//!
//! The scan's events are checked against an independent replay through the reference: the
//! final breach set from the events must equal `reference::scan` at the final prices.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use liqscan_hdl::abi::PriceEntry;
use liqscan_host::io::{accounts::read_accounts, ticks::read_bars, ticks::read_ticks, venue::read_venue};
use liqscan_host::{bitmap, reference};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn liqscan(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_liqscan")).args(args).current_dir(root()).output().expect("run liqscan")
}

fn bars() -> PathBuf {
    root().join("../shared/data/eth-usd-10m/2020-03-12.json")
}

/// `liqscan scan` of the example book on Black Thursday (the example venue, book and USDC ticks,
/// ETH from the shared bars), with `extra` arguments.
fn scan_black_thursday(extra: &[&str]) -> std::process::Output {
    let bars_arg = format!("ETH={}", bars().display());
    let mut args = vec![
        "scan",
        "--venue",
        "examples/venue.toml",
        "--accounts",
        "examples/accounts.csv",
        "--ticks",
        "examples/usdc.csv",
        "--bars",
        &bars_arg,
    ];
    args.extend_from_slice(extra);
    liqscan(&args)
}

#[test]
fn scan_of_black_thursday_agrees_with_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let o = scan_black_thursday(&["--out", out.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    // Replay the events into a breach set, by account: `scan` lays the book out for its full
    // scans, so slots are not file rows (each account keeps one slot throughout).
    let mut breached = BTreeSet::new();
    let mut slot_of = std::collections::HashMap::new();
    let text = std::fs::read_to_string(&out).unwrap();
    let mut breach_events = 0;
    for line in text.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let account = e["account"].as_str().unwrap().to_string();
        let slot = e["slot"].as_u64().unwrap();
        assert_eq!(*slot_of.entry(account.clone()).or_insert(slot), slot, "{account} changed slot");
        match e["event"].as_str().unwrap() {
            "breach" => {
                breach_events += 1;
                assert!(e["health"].as_str().unwrap().starts_with('-'), "breach with health {}", e["health"]);
                assert!(breached.insert(account));
            }
            "recovered" => assert!(breached.remove(&account)),
            _ => {}
        }
    }
    assert_eq!(summary["stats"]["breaches"], breach_events);
    assert_eq!(summary["breached_at_end"], breached.len());

    // The reference at the final prices.
    let table = read_venue(&root().join("examples/venue.toml")).unwrap();
    let accounts = read_accounts(&root().join("examples/accounts.csv"), &table).unwrap();
    let mut prices = vec![PriceEntry::default(); table.len()];
    let mut ticks = read_ticks(&root().join("examples/usdc.csv"), &table).unwrap();
    ticks.extend(read_bars(&bars(), &table, "ETH").unwrap());
    ticks.sort_by_key(|t| t.ts_ns);
    for t in &ticks {
        prices[t.asset as usize] = t.entry;
    }
    let terms: Vec<_> = accounts.iter().map(|a| a.terms.clone()).collect();
    let want: BTreeSet<String> =
        bitmap::ones(&reference::scan(&terms, &prices).breach).map(|k| accounts[k].spec.id.clone()).collect();
    assert_eq!(breached, want);
    // Black Thursday closed at 107.52: the ladder of liquidation prices 100..200 is mostly under water.
    assert!(want.len() > 150, "only {} breached", want.len());
}

/// `--backend card-software`: the example book's Black Thursday through the emulated card behind
/// the card link (the unchanged host driver, a fail-over engine around it) gives the very events
/// the software engine gives, byte for byte; so do the DRAM card (`card-dram`, the
/// external-memory block's cycle model) and the software engine with its full scans on two
/// threads.
#[test]
fn scan_through_the_card_gives_the_software_engines_events() {
    let dir = tempfile::tempdir().unwrap();
    let scan_with = |backend: &str, threads: &str| {
        let out = dir.path().join(format!("{backend}-{threads}.jsonl"));
        let o = scan_black_thursday(&[
            "--out",
            out.to_str().unwrap(),
            "--json",
            "--backend",
            backend,
            "--scan-threads",
            threads,
        ]);
        assert!(o.status.success(), "--backend {backend}: {}", String::from_utf8_lossy(&o.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (std::fs::read_to_string(&out).unwrap(), summary)
    };
    let scan = |backend: &str| scan_with(backend, "1");
    let (software, s) = scan("software");
    assert_eq!((s["backend"].as_str(), s["engine_at_end"].as_str()), (Some("software"), Some("software")));
    assert!(software.lines().count() > 150, "the day breaches accounts: {} events", software.lines().count());
    let (card, c) = scan("card-software");
    assert_eq!((c["engine_at_end"].as_str(), c["failovers"].as_u64()), (Some("card"), Some(0)), "{c}");
    assert!(card == software, "the card's events differ from the software engine's");
    for key in ["breached_at_end", "at_risk_at_end", "stats"] {
        assert_eq!(c[key], s[key], "{key}");
    }
    let (dram, d) = scan("card-dram");
    assert_eq!((d["engine_at_end"].as_str(), d["failovers"].as_u64()), (Some("card-dram"), Some(0)), "{d}");
    assert!(dram == software, "the DRAM card's events differ from the software engine's");
    let (two, _) = scan_with("software", "2");
    assert!(two == software, "two scan threads' events differ from one's");
    expect_error(
        &[
            "scan",
            "--venue",
            "examples/venue.toml",
            "--accounts",
            "examples/accounts.csv",
            "--scan-threads",
            "2",
            "--backend",
            "card-software",
        ],
        "--scan-threads 2 applies to the software backend only",
    );
}

#[test]
fn demo_runs_small_and_its_counts_are_consistent() {
    let o = liqscan(&["demo", "--accounts", "3000", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let st = &s["stats"];
    let last = s["timeline"].as_array().unwrap().last().unwrap();
    // Events start from the empty state, so breaches minus recoveries is the final breach count.
    assert_eq!(
        st["breaches"].as_u64().unwrap() - st["recoveries"].as_u64().unwrap(),
        last["breached"].as_u64().unwrap()
    );
    assert!(st["accounts_breached"].as_u64().unwrap() > 300, "crash breached too few: {st}");
    assert_eq!(s["tick_latency"]["count"], st["ticks"]);
}

fn expect_error(args: &[&str], want: &str) {
    let o = liqscan(args);
    assert!(!o.status.success(), "liqscan {args:?} succeeded");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(want), "liqscan {args:?}: stderr {err}\nwanted {want}");
}

#[test]
fn bad_inputs_name_the_file_line_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, text: &str| -> String {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let venue = root().join("examples/venue.toml");
    let venue = venue.to_str().unwrap();
    let good_accounts = write("a.csv", "account,asset,balance\nx,ETH,1\nx,USDC,-100\n");
    let good_ticks = write("t.csv", "timestamp,asset,price\n1,ETH,200\n2,USDC,1\n");
    let bad_accounts = write("bad.csv", "account,asset,balance\nx,ETH,1\ny,DOGE,5\n");
    expect_error(
        &["scan", "--venue", venue, "--accounts", &bad_accounts, "--ticks", &good_ticks],
        "bad.csv:3: account 'y': unknown asset 'DOGE'",
    );
    let bad_ticks = write("bt.csv", "timestamp,asset,price\n1,ETH,200\n2,ETH,-3\n");
    expect_error(
        &["scan", "--venue", venue, "--accounts", &good_accounts, "--ticks", &bad_ticks],
        "bt.csv:3: asset 'ETH' price -3 is negative",
    );
    let unpriced = write("u.csv", "timestamp,asset,price\n1,ETH,200\n");
    expect_error(
        &["scan", "--venue", venue, "--accounts", &good_accounts, "--ticks", &unpriced],
        "no tick ever priced USDC",
    );
    let missing = Path::new(d).join("nope.csv");
    expect_error(
        &["scan", "--venue", venue, "--accounts", missing.to_str().unwrap(), "--ticks", &good_ticks],
        "nope.csv: cannot read",
    );
    expect_error(
        &["scan", "--venue", venue, "--accounts", &good_accounts, "--bars", "ETH"],
        "--bars 'ETH': expected SYMBOL=PATH",
    );
}

#[test]
fn a_book_over_the_memory_limit_is_refused_with_its_size_and_the_limit() {
    let o = liqscan(&[
        "scan",
        "--venue",
        "examples/venue.toml",
        "--accounts",
        "examples/accounts.csv",
        "--ticks",
        "examples/usdc.csv",
        "--max-memory",
        "16K",
    ]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("examples/accounts.csv: a book of 0 MB (about"), "{e}");
    assert!(e.contains("the limit is 0 MB (--max-memory)"), "{e}");
    // The same book under a limit it fits passes the check.
    let o = scan_black_thursday(&["--max-memory", "1G", "--out", "/dev/null"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn gen_book_is_deterministic_and_its_book_scans() {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for d in &dirs {
        let p = d.path().to_str().unwrap();
        let o = liqscan(&["gen-book", "--accounts", "2000", "--ticks", "50", "--seed", "7", "--dir", p]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for f in ["venue.toml", "accounts.csv", "ticks.csv"] {
        let a = std::fs::read(dirs[0].path().join(f)).unwrap();
        assert_eq!(a, std::fs::read(dirs[1].path().join(f)).unwrap(), "{f} differs between two runs");
    }
    let d = dirs[0].path();
    let table = read_venue(&d.join("venue.toml")).unwrap();
    let book =
        liqscan_host::io::accounts::read_book(&d.join("accounts.csv"), &table, &mut |_, _| {}).unwrap();
    assert_eq!(book.len(), 2000);
    // 70 % pairs (2 terms), 30 % four-asset accounts, every one holding ETH (asset 0).
    assert!(book.iter().all(|(_, t)| t.iter().any(|c| c.asset == 0 && c.coeff > 0)));
    let fours = book.iter().filter(|(_, t)| t.len() == 4).count();
    assert!((450..750).contains(&fours), "{fours} four-term accounts of 2000");
    let s = |k: &str| d.join(k).to_str().unwrap().to_string();
    let o = liqscan(&[
        "scan",
        "--venue",
        &s("venue.toml"),
        "--accounts",
        &s("accounts.csv"),
        "--ticks",
        &s("ticks.csv"),
        "--out",
        "/dev/null",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["accounts"], 2000);
    assert_eq!(summary["ticks"], 54);
    assert!(summary["stats"]["breaches"].as_u64().unwrap() > 0, "the crash breaches someone: {summary}");
}

#[test]
fn gen_book_columnar_accounts_load_and_scan_as_the_csv_ones() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_str().unwrap();
    let o = liqscan(&[
        "gen-book",
        "--accounts",
        "3000",
        "--ticks",
        "40",
        "--seed",
        "3",
        "--dir",
        p,
        "--arrow",
        "--parquet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = read_venue(&d.path().join("venue.toml")).unwrap();
    let read =
        |f: &str| liqscan_host::io::accounts::read_book(&d.path().join(f), &table, &mut |_, _| {}).unwrap();
    let csv = read("accounts.csv");
    assert_eq!(csv.len(), 3000);
    assert_eq!(read("accounts.arrow"), csv);
    assert_eq!(read("accounts.parquet"), csv);
    // The same scan from each file: the same events, byte for byte (every bitmap change).
    let s = |k: &str| d.path().join(k).to_str().unwrap().to_string();
    let scan = |accounts: &str| {
        let out = s(&format!("{accounts}.events"));
        let o = liqscan(&[
            "scan",
            "--venue",
            &s("venue.toml"),
            "--accounts",
            &s(accounts),
            "--ticks",
            &s("ticks.csv"),
            "--out",
            &out,
        ]);
        assert!(o.status.success(), "{accounts}: {}", String::from_utf8_lossy(&o.stderr));
        std::fs::read(out).unwrap()
    };
    let events = scan("accounts.csv");
    assert!(!events.is_empty(), "the crash breaches someone");
    assert_eq!(scan("accounts.arrow"), events);
    assert_eq!(scan("accounts.parquet"), events);
    // A Parquet file cut short is refused, naming it, and the scan writes nothing.
    let whole = std::fs::read(s("accounts.parquet")).unwrap();
    std::fs::write(s("cut.parquet"), &whole[..whole.len() / 2]).unwrap();
    let out = s("cut.events");
    let o = liqscan(&[
        "scan",
        "--venue",
        &s("venue.toml"),
        "--accounts",
        &s("cut.parquet"),
        "--ticks",
        &s("ticks.csv"),
        "--out",
        &out,
    ]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("cut.parquet: not a Parquet file"), "{e}");
    assert!(!Path::new(&out).exists(), "a refused book wrote {out}");
}

/// `--backend routed` with a card smaller than the example book (the rest stays on software):
/// the same events as the software engine, byte for byte, with the card's part of every tick
/// forced to either side or chosen by cost, and the choices counted in the summary.
#[test]
fn scan_routed_over_a_card_smaller_than_the_book_gives_the_software_engines_events() {
    let dir = tempfile::tempdir().unwrap();
    let scan = |backend: &str, extra: &[&str]| {
        let out = dir.path().join(format!("{backend}-{}.jsonl", extra.join("-")));
        let mut args = vec!["--out", out.to_str().unwrap(), "--json", "--backend", backend];
        args.extend_from_slice(extra);
        let o = scan_black_thursday(&args);
        assert!(o.status.success(), "--backend {backend} {extra:?}: {}", String::from_utf8_lossy(&o.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (std::fs::read_to_string(&out).unwrap(), summary)
    };
    let (software, s) = scan("software", &[]);
    assert!(s.get("routes").is_none());
    for route in ["measured", "card", "software"] {
        let (routed, r) = scan("routed", &["--card-accounts", "64", "--route", route]);
        assert!(routed == software, "--route {route}: the router's events differ from the software engine's");
        let routes = &r["routes"];
        assert_eq!(routes["card_capacity"].as_u64(), Some(64), "{r}");
        assert_eq!(routes["card_accounts"].as_u64(), Some(64), "{r}");
        assert!(routes["host_accounts"].as_u64().unwrap() > 0, "{r}");
        let ticks = r["ticks"].as_u64().unwrap();
        let total = |side: &str| -> u64 {
            ["cost", "probe", "forced", "no_card"].iter().map(|k| routes[side][k].as_u64().unwrap()).sum()
        };
        assert_eq!(total("card_ticks") + total("software_ticks"), ticks, "{r}");
        match route {
            "card" => assert_eq!(routes["card_ticks"]["forced"].as_u64(), Some(ticks)),
            "software" => assert_eq!(routes["software_ticks"]["forced"].as_u64(), Some(ticks)),
            _ => assert_eq!(routes["card_ticks"]["forced"].as_u64(), Some(0)),
        }
        for key in ["breached_at_end", "at_risk_at_end", "stats"] {
            assert_eq!(r[key], s[key], "{key}");
        }
    }
    // The DRAM card as the router's card holds the whole book (its accounts have at most four
    // terms), forced or by cost.
    for route in ["card", "measured"] {
        let (routed, r) = scan("routed", &["--device", "lfe5u-85f-ddr3", "--route", route]);
        assert!(routed == software, "--device lfe5u-85f-ddr3 --route {route}: events differ");
        let routes = &r["routes"];
        assert_eq!(routes["host_accounts"].as_u64(), Some(0), "{r}");
        assert!(routes["card_accounts"].as_u64().unwrap() > 150, "{r}");
        if route == "card" {
            assert_eq!(routes["card_ticks"]["forced"].as_u64(), r["ticks"].as_u64(), "{r}");
        }
        assert_eq!(r["stats"], s["stats"]);
    }
    expect_error(
        &["scan", "--venue", "examples/venue.toml", "--accounts", "examples/accounts.csv", "--route", "card"],
        "--route and --card-accounts apply to --backend routed only",
    );
}
