//! The fault matrix of inputs and limits (docs/RELIABILITY.md, "Fault matrix: inputs and
//! limits"), end to end: the real binary is given each bad input of issue 17 (items 3 and 4)
//! and must refuse it with a message naming the input and the limit, exit 1 (an error, not a
//! panic's 101, not a kill), and write nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn liqscan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_liqscan")).args(args).current_dir(root()).output().expect("run liqscan")
}

/// Asserts a refusal: exit code 1 and every `want` in standard error.
fn refused(o: &Output, want: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "want an error exit\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in want {
        assert!(err.contains(w), "want '{w}' in:\n{err}");
    }
    err
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn run_refuses_a_held_asset_never_priced_as_scan_does() {
    // examples/usdc.csv prices only USDC; the accounts hold ETH too. On main `run` replayed it
    // (200 breach events at ETH = 0) while `scan` refused.
    let args = [
        "--venue",
        "examples/venue.toml",
        "--accounts",
        "examples/accounts.csv",
        "--ticks",
        "examples/usdc.csv",
    ];
    let scan = liqscan(&[&["scan"][..], &args, &["--out", "/dev/null"]].concat());
    refused(&scan, &["no tick ever priced ETH"]);
    let run = liqscan(&[&["run"][..], &args].concat());
    refused(&run, &["no tick ever priced ETH: accounts hold them"]);
}

#[test]
fn run_refuses_an_executor_file_it_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    // On main a directory discarded every order and the run exited 0.
    let exec = format!("jsonl:{}", dir.path().display());
    let o = liqscan(&["run", "--demo-accounts", "10", "--executor", &exec]);
    refused(&o, &["is a directory, not a writable file"]);
    // The check leaves no file behind when the run is refused later (here: its pace).
    let new = dir.path().join("new.jsonl");
    let o = liqscan(&[
        "run",
        "--demo-accounts",
        "10",
        "--executor",
        &format!("jsonl:{}", new.display()),
        "--pace",
        "fixed:0",
    ]);
    refused(&o, &["fixed:PER_SECOND"]);
    assert!(!new.exists());
    let missing = format!("jsonl:{}", dir.path().join("no/such/dir/orders.jsonl").display());
    let o = liqscan(&["run", "--demo-accounts", "10", "--executor", &missing]);
    refused(&o, &["not a writable file", "No such file or directory"]);
    // A device is left alone (a FIFO or /dev/stdout must not be opened twice).
    let o = liqscan(&["run", "--demo-accounts", "10", "--executor", "jsonl:/dev/null"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A writable path still works.
    let ok = format!("jsonl:{}", dir.path().join("orders.jsonl").display());
    let o = liqscan(&["run", "--demo-accounts", "10", "--executor", &ok]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `--hlog` at a directory was found out only after the run, its histograms lost.
#[test]
fn run_refuses_an_hlog_path_it_cannot_write_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = liqscan(&["run", "--demo-accounts", "10", "--hlog", d]);
    let err = refused(&o, &[&format!("--hlog {d}: is a directory, not a writable file")]);
    assert!(!err.contains("ticks in"), "refused before the run:\n{err}");
    let missing = dir.path().join("no/such/dir/run.hlog");
    let o = liqscan(&["run", "--demo-accounts", "10", "--hlog", missing.to_str().unwrap()]);
    refused(&o, &["not a writable file", "No such file or directory"]);
    let ok = dir.path().join("run.hlog");
    let o = liqscan(&["run", "--demo-accounts", "10", "--hlog", ok.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::metadata(&ok).unwrap().len() > 0, "the histograms are written at the end");
}

#[test]
fn run_refuses_a_key_given_twice_in_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "keeper.toml", "demo_accounts = 10\npace = \"flood\"\npace = \"fixed:10\"\n");
    let o = liqscan(&["run", "--config", &cfg]);
    refused(&o, &["keeper.toml", "duplicate key", "line 3"]);
}

#[test]
fn run_refuses_a_pace_out_of_range() {
    // On main each ran as flood.
    for pace in ["fixed:0", "recorded:-5", "fixed:NaN", "recorded:inf"] {
        let o = liqscan(&["run", "--demo-accounts", "10", "--pace", pace]);
        refused(&o, &[&format!("pace '{pace}'"), "must be a number from 0.001 to 1e9"]);
    }
}

/// `run --accounts A --ticks T` without `--venue` ran the embedded demo and ignored both files.
#[test]
fn run_refuses_files_without_a_venue() {
    let o = liqscan(&["run", "--accounts", "examples/accounts.csv", "--ticks", "examples/usdc.csv"]);
    refused(&o, &["--accounts, --ticks given without --venue"]);
    let o = liqscan(&["run", "--bars", "ETH=x.json"]);
    refused(&o, &["--bars given without --venue"]);
}

#[test]
fn book_sizes_are_refused_before_allocation() {
    // On main `demo --accounts 10^12` tried to allocate tens of terabytes and aborted.
    let o = liqscan(&["demo", "--accounts", "1000000000000"]);
    refused(&o, &["--accounts is 1000000000000; at most 100000000 is allowed"]);
    let o = liqscan(&["run", "--demo-accounts", "4000000000"]);
    refused(&o, &["--demo-accounts is 4000000000; at most 100000000 is allowed"]);
    // Within the bound but beyond this machine's memory: refused with both figures.
    let want = 90_000_000u64 * 1280;
    if liqscan_host::io::limits::mem_available().is_some_and(|m| m < want) {
        let o = liqscan(&["demo", "--accounts", "90000000"]);
        refused(
            &o,
            &["a book of 90000000 accounts at about 1280 bytes each needs about 107.3 GiB", "available"],
        );
    }
}

/// A keeper's accounts file larger than this machine's memory is refused before it is read
/// (it was read until the kernel killed the keeper); a sparse file stands in for a large one.
#[test]
fn run_refuses_a_book_larger_than_memory_before_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let head = std::fs::read_to_string(root().join("examples/accounts.csv")).unwrap();
    let big = dir.path().join("big.csv");
    std::fs::write(&big, &head).unwrap();
    // 1 TB of rows like the example's, by their size: a few hundred bytes on disk.
    std::fs::File::options().write(true).open(&big).unwrap().set_len(1 << 40).unwrap();
    let o = liqscan(&[
        "run",
        "--venue",
        "examples/venue.toml",
        "--accounts",
        big.to_str().unwrap(),
        "--ticks",
        "examples/usdc.csv",
    ]);
    refused(&o, &["big.csv: a book of about", "in a keeper needs about", "available"]);
}

#[test]
fn sim_and_sweep_refuse_numbers_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(root().join("scenarios/calm-day.toml")).unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    // On main: 10^12 accounts panicked (slots are u32); 4e9 accounts and 1e14 s tried to
    // allocate terabytes; vol_day = 1e300 ran.
    let o = liqscan(&["sim", "scenarios/calm-day.toml", "--accounts", "1000000000000", "--out", out, "-q"]);
    refused(&o, &["--accounts", "field 'population.accounts': is 1000000000000; must be in [0, 10000000]"]);
    for (from, to, want) in [
        ("accounts = 10000", "accounts = 4000000000", "field 'population.accounts': is 4000000000"),
        ("duration_secs = 86400", "duration_secs = 1e14", "field 'duration_secs': is 100000000000000"),
        ("vol_day = 0.03", "vol_day = 1e300", "field 'assets.ETH.price.gbm.vol_day': is 1e300"),
        ("stress = \"0.1\"", "stress = \"0e-2147483648\"", "exponent out of range"),
    ] {
        assert!(base.contains(from), "{from}");
        let p = write(dir.path(), "s.toml", &base.replacen(from, to, 1));
        let o = liqscan(&["sim", &p, "--out", out, "-q"]);
        refused(&o, &[want]);
    }
    // A key given twice in a scenario or a sweep: the TOML grammar refuses it, naming the line.
    let p = write(dir.path(), "s.toml", &base.replacen("seed = 7", "seed = 7\nseed = 8", 1));
    refused(&liqscan(&["sim", &p, "--out", out, "-q"]), &["duplicate key", "line 7"]);
    let scn = write(dir.path(), "base.toml", &base);
    let sweep = format!(
        "scenario = \"{scn}\"\n[[axis]]\nfield = \"oracle.delay_secs\"\nvalues = [0]\n[[axis]]\nfield = \"oracle.delay_secs\"\nvalues = [60]\n"
    );
    let p = write(dir.path(), "sweep.toml", &sweep);
    refused(&liqscan(&["sweep", &p, "--out", out, "-q"]), &["field 'oracle.delay_secs' is on two axes"]);
    assert!(!Path::new(out).join("report.json").exists());
}

#[test]
fn scan_refuses_misread_inputs_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let venue_toml = std::fs::read_to_string(root().join("examples/venue.toml")).unwrap();
    let scan = |venue: &str, ticks: &str| {
        liqscan(&[
            "scan",
            "--venue",
            venue,
            "--accounts",
            "examples/accounts.csv",
            "--ticks",
            ticks,
            "--out",
            "/dev/null",
        ])
    };
    let ticks = |name: &str, rows: &str| write(dir.path(), name, &format!("timestamp,asset,price\n{rows}"));
    let good = "2020-03-12T00:00:00Z,USDC,1\n2020-03-12T00:00:00Z,ETH,195\n";
    assert!(scan("examples/venue.toml", &ticks("good.csv", good)).status.success());
    // A tick priced 0 breached every borrower on main.
    let zero = ticks("zero.csv", &format!("{good}2020-03-12T00:01:00Z,ETH,0\n"));
    refused(
        &scan("examples/venue.toml", &zero),
        &["zero.csv:4: asset 'ETH' price is 0: refused", "allow_zero_price"],
    );
    // ... unless the venue allows it for that asset.
    let allowing = venue_toml.replacen("stress = \"0.15\"", "stress = \"0.15\"\nallow_zero_price = true", 1);
    let v = write(dir.path(), "zero-ok.toml", &allowing);
    let o = scan(&v, &zero);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A positive price under one price quantum (0.0001 USD per ETH here) quoted the collateral
    // at 0 as a 0 does, and breached every borrower; the live feed refused it already.
    let tiny = ticks("tiny.csv", &format!("{good}2020-03-12T00:01:00Z,ETH,0.00009\n"));
    refused(
        &scan("examples/venue.toml", &tiny),
        &[
            "tiny.csv:4: asset 'ETH' price 0.00009 is below the venue's price resolution for it (0.0001)",
            "allow_zero_price",
        ],
    );
    let o = scan(&v, &tiny);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let one = ticks("one.csv", &format!("{good}2020-03-12T00:01:00Z,ETH,0.0001\n"));
    assert!(scan("examples/venue.toml", &one).status.success(), "one quantum is a price");
    // Time going back names both times as text.
    let back = ticks("back.csv", &format!("{good}2020-03-11T23:59:59.5Z,ETH,190\n"));
    refused(
        &scan("examples/venue.toml", &back),
        &[
            "back.csv:4: timestamp 2020-03-11T23:59:59.500Z",
            "before the previous tick's 2020-03-12T00:00:00.000Z",
        ],
    );
    // Calendar dates, offsets, years.
    let feb31 = ticks("feb31.csv", "2020-02-31T00:00:00Z,USDC,1\n");
    refused(
        &scan("examples/venue.toml", &feb31),
        &["feb31.csv:2: timestamp '2020-02-31T00:00:00Z'", "RFC 3339"],
    );
    let y9999 = ticks("y9999.csv", "9999-12-31T23:59:59Z,USDC,1\n");
    refused(&scan("examples/venue.toml", &y9999), &["y9999.csv:2:", "out of range", "2262-04-11T23:47:16"]);
    let offset = ticks("offset.csv", "2020-03-12T01:00:00+01:00,USDC,1\n2020-03-12T01:00:00+01:00,ETH,195\n");
    assert!(scan("examples/venue.toml", &offset).status.success(), "an offset is converted, not refused");
    // A tier given twice in a JSON venue kept the last on main (weight 1 instead of 0.825).
    let json = r#"{"assets": [
  {"symbol": "ETH", "quantum_exp": -4, "stress": "0.15", "tiers": {
    "default": {"asset_weight": "0.825", "liability_weight": "1"},
    "isolated": {"asset_weight": "0.7", "liability_weight": "1.1"},
    "default": {"asset_weight": "1", "liability_weight": "1"}}},
  {"symbol": "USDC", "quantum_exp": -2, "tiers": {
    "default": {"asset_weight": "0.875", "liability_weight": "1"},
    "isolated": {"asset_weight": "0.8", "liability_weight": "1"}}}
]}"#;
    let v = write(dir.path(), "venue.json", json);
    refused(&scan(&v, &ticks("g.csv", good)), &["venue.json:5: key 'default' is given twice"]);
    let v = write(
        dir.path(),
        "venue.json",
        &json.replacen(
            r#",
    "default": {"asset_weight": "1", "liability_weight": "1"}"#,
            "",
            1,
        ),
    );
    assert!(scan(&v, &ticks("g.csv", good)).status.success());
}

/// Spreadsheets save "CSV UTF-8" with a byte-order mark first; on main it made the header
/// unreadable ("header must name the columns ..."). Every input read with one gives the same
/// events as without.
#[test]
fn scan_reads_files_that_start_with_a_byte_order_mark() {
    let dir = tempfile::tempdir().unwrap();
    let ticks = "timestamp,asset,price\n2020-03-12T00:00:00Z,USDC,1\n2020-03-12T00:00:00Z,ETH,150\n";
    let plain = write(dir.path(), "ticks.csv", ticks);
    let marked = |name: &str, text: &str| write(dir.path(), name, &format!("\u{feff}{text}"));
    let text = |p: &str| std::fs::read_to_string(root().join(p)).unwrap();
    let venue = marked("venue.toml", &text("examples/venue.toml"));
    let accounts = marked("accounts.csv", &text("examples/accounts.csv"));
    let bom_ticks = marked("bom-ticks.csv", ticks);
    let events = |venue: &str, accounts: &str, ticks: &str| {
        let out = dir.path().join("events.jsonl");
        let o = liqscan(&[
            "scan",
            "--venue",
            venue,
            "--accounts",
            accounts,
            "--ticks",
            ticks,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let want = events("examples/venue.toml", "examples/accounts.csv", &plain);
    assert!(want.lines().count() > 100, "the ticks breach most of the book");
    assert_eq!(events(&venue, &accounts, &bom_ticks), want);
}

/// An output named as an input is refused before anything is opened, the input unchanged: on
/// main `--out a.csv` truncated the book and exited 0 with the events in its place.
#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let book = std::fs::read_to_string(root().join("examples/accounts.csv")).unwrap();
    let acc = write(dir.path(), "a.csv", &book);
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&acc, &link).unwrap();
    let link = link.to_str().unwrap();
    let ticks = write(
        dir.path(),
        "t.csv",
        "timestamp,asset,price\n2020-03-12T00:00:00Z,USDC,1\n2020-03-12T00:00:01Z,ETH,100\n",
    );
    let args = ["--venue", "examples/venue.toml", "--accounts", &acc, "--ticks", &ticks];
    for out in [acc.as_str(), link] {
        let o = liqscan(&[&["scan"][..], &args, &["--out", out]].concat());
        refused(&o, &["is the --accounts file"]);
        let o = liqscan(&[&["run"][..], &args, &["--out", out, "--executor", "discard"]].concat());
        refused(&o, &["is the --accounts file"]);
        let exec = format!("jsonl:{out}");
        let o = liqscan(&[&["run"][..], &args, &["--executor", &exec]].concat());
        refused(&o, &["is the --accounts file"]);
    }
    let o = liqscan(&[&["scan"][..], &args, &["--out", "examples/venue.toml"]].concat());
    refused(&o, &["is the --venue file"]);
    assert_eq!(std::fs::read_to_string(&acc).unwrap(), book, "the book is unchanged");
}

/// A batch command whose reader has gone ends as `head`'s writers do (SIGPIPE), not with a
/// panic (exit 101) in its prints.
#[test]
fn a_closed_pipe_ends_a_batch_command_without_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    for args in [&["demo", "--accounts", "200"][..], &["gen-book", "--accounts", "10", "--dir"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_liqscan"));
        cmd.args(args).current_dir(root());
        if args[0] == "gen-book" {
            cmd.arg(dir.path());
        }
        // Both ends of the pipe closed before the first print.
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run liqscan");
        drop(child.stdout.take());
        let mut err = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
        let status = child.wait().unwrap();
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(status.code(), Some(101), "{args:?}: {err}");
        assert!(status.success() || status.signal() == Some(libc::SIGPIPE), "{args:?}: {status:?} {err}");
    }
}

/// An account holding one asset on both sides, on a card that holds each asset once an account:
/// refused naming the account, the asset and the backend that serves it (on main: "asset index
/// 0 appears twice in one account"), and the routed DRAM card serves it with software's events.
#[test]
fn a_two_legged_account_on_the_dram_card_is_refused_with_what_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let acc = write(dir.path(), "a.csv", "account,asset,balance\nb,ETH,10\nb,ETH,-9\nb,USDC,-100\n");
    let ticks = write(
        dir.path(),
        "t.csv",
        "timestamp,asset,price\n2020-03-12T00:00:00Z,USDC,1\n2020-03-12T00:00:00Z,ETH,2000\n2020-03-12T00:01:00Z,ETH,1500\n",
    );
    let args = ["scan", "--venue", "examples/venue.toml", "--accounts", &acc, "--ticks", &ticks];
    let o = liqscan(&[&args[..], &["--backend", "card-dram"]].concat());
    refused(&o, &["loading account 'b': it holds ETH on both sides", "--backend routed"]);
    let soft = liqscan(&args);
    let routed = liqscan(&[&args[..], &["--backend", "routed", "--device", "lfe5u-85f-ddr3"]].concat());
    assert!(soft.status.success() && routed.status.success(), "{}", String::from_utf8_lossy(&routed.stderr));
    assert!(!soft.stdout.is_empty());
    assert_eq!(soft.stdout, routed.stdout, "the routed DRAM card's events are software's");
}

/// `gen-book` refuses a book beyond the accounts limit before writing a byte: on main
/// `--accounts 99999999999` wrote gigabytes towards about 6 TB. (Its check of the disk's free
/// space is not tested here: the outcome would depend on the disk.)
#[test]
fn gen_book_refuses_a_book_beyond_the_limit_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big");
    let o = liqscan(&["gen-book", "--accounts", "99999999999", "--dir", out.to_str().unwrap()]);
    refused(&o, &["--accounts", "99999999999"]);
    assert!(!out.join("accounts.csv").exists(), "nothing written");
}
