//! `liqscan sim` on a perpetual scenario, end to end through the built binary: the flash-crash
//! example cut to 600 traders and 70 minutes (the crash and its first recovery).

use std::path::{Path, PathBuf};
use std::process::Command;

fn small(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/perp-flash-crash.toml"),
    )
    .unwrap()
    .replace("duration_secs = 7200", "duration_secs = 4200")
    .replace("accounts = 3000", "accounts = 600");
    let p = dir.join("perp-small.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn liqscan(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_liqscan")).args(args).output().expect("run liqscan")
}

#[test]
fn perp_sim_conserves_the_ledger_liquidates_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let scn = small(dir.path());
    let mut reports = Vec::new();
    for run in ["a", "b"] {
        let out = dir.path().join(run);
        let o = liqscan(&["sim", scn.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains("ledger     conserved: zero-sum exactly"), "{stdout}");
        for svg in ["price.svg", "events.svg", "fund.svg"] {
            let s = std::fs::read_to_string(out.join(svg)).unwrap();
            assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"), "{svg}");
            let png = std::fs::read(out.join(svg.replace(".svg", ".png"))).unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{svg} beside its PNG");
        }
        reports.push(std::fs::read_to_string(out.join("report.json")).unwrap());
    }
    assert_eq!(reports[0], reports[1], "deterministic from the seed");
    let r: serde_json::Value = serde_json::from_str(&reports[0]).unwrap();
    assert_eq!(r["conservation_ok"], true);
    assert_eq!(r["zero_sum"].as_object().unwrap().len(), 10);
    let n = |p: &str| r.pointer(p).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("{p}"));
    let liquidations = n("/book_fills") + n("/backstop_takeovers");
    assert!(liquidations > 0.0, "the crash liquidates");
    assert!(n("/liquidated_usd") > 0.0);
    // The per-step tallies add up to the venue's counts.
    let sum = |p: &str| r[p].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).sum::<f64>();
    assert_eq!(sum("liquidations_per_step"), liquidations);
    assert_eq!(sum("adl_per_step"), n("/adl_events"));
    assert_eq!(r["liquidations_per_step"].as_array().unwrap().len(), 4200);
    // Nobody liquidated before the crash at 3 600 s (the first hour is calm GBM).
    let first = r["liquidations_per_step"].as_array().unwrap().iter().position(|x| x.as_u64() != Some(0));
    assert!(first.is_some_and(|i| i >= 3_500), "first liquidation at step {first:?}");
    // The fund's payments are the ledger's.
    assert_eq!(r["bad_debt"]["fund"], r["ledger"]["fund_paid"]);
    assert_eq!(r["scan_breached"][0], r["scan_breached"][1]);
}

#[test]
fn bad_perp_scenarios_are_refused_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/perp-flash-crash.toml"),
    )
    .unwrap()
    .replace("depth_usd_per_pct = 2000000.0", "depth_usd_per_pct = -2000000.0");
    let p = dir.path().join("neg.toml");
    std::fs::write(&p, text).unwrap();
    let out = dir.path().join("out");
    let o = liqscan(&["sim", p.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("neg.toml") && e.contains("perp.markets.ETH.depth_usd_per_pct") && e.contains("negative"),
        "{e}"
    );
    assert!(!out.exists(), "a refused scenario writes nothing");
}

/// The three replays of real multi-asset paths (LUNA/UST May 2022, stETH June 2022, FTX
/// November 2022) from the hourly prices of ../shared/data (skipped with a note when that data
/// is not present), each cut to 500 traders: they run end to end, the ledger is conserved,
/// every minute is a step, and the crash liquidates.
#[test]
fn perp_replays_of_real_paths_run_end_to_end_when_the_data_is_present() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join("../shared/data/usd-hourly/UST.csv").exists() {
        eprintln!("skipped: ../shared/data/usd-hourly is not present");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, steps, market) in [
        ("perp-luna-ust-2022-05", 10_080, "UST"),
        ("perp-steth-2022-06", 17_280, "STETH"),
        ("perp-ftx-2022-11", 8_640, "ETH"),
    ] {
        let text = std::fs::read_to_string(root.join(format!("scenarios/{name}.toml")))
            .unwrap()
            .replace("accounts = 5000", "accounts = 500");
        // Beside the others (the data's path is relative to the root the binary runs in).
        let scn = root.join(format!("target/{name}-{}.toml", std::process::id()));
        std::fs::write(&scn, text).unwrap();
        let out = dir.path().join(name);
        let o = Command::new(env!("CARGO_BIN_EXE_liqscan"))
            .current_dir(root)
            .args(["sim", scn.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"])
            .output()
            .unwrap();
        std::fs::remove_file(&scn).ok();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{name}: {stdout}{}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains("ledger     conserved: zero-sum exactly"), "{name}: {stdout}");
        assert!(stdout.contains(&format!("low_pct:{market}")), "{name}: {stdout}");
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
        assert_eq!(r["conservation_ok"], true, "{name}");
        assert_eq!(r["liquidations_per_step"].as_array().unwrap().len(), steps, "{name}: one step a minute");
        let liquidations = r["book_fills"].as_f64().unwrap() + r["backstop_takeovers"].as_f64().unwrap();
        assert!(liquidations > 0.0, "{name}: {stdout}");
    }
}

#[test]
fn perp_sim_with_the_keeper_s_reduce_only_orders() {
    // The same cut of the flash crash, book liquidations made by the host's dispatcher: its
    // reduce-only orders land a second after they are sent.
    let dir = tempfile::tempdir().unwrap();
    let scn = small(dir.path());
    let text = std::fs::read_to_string(&scn).unwrap() + "\n[perp.keeper]\nlatency_secs = 1.0\n";
    std::fs::write(&scn, text).unwrap();
    let out = dir.path().join("k");
    let o = liqscan(&["sim", scn.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("ledger     conserved: zero-sum exactly"), "{stdout}");
    assert!(stdout.contains("keeper     reduce-only orders:"), "{stdout}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["mechanism"]["keeper"], true);
    let d = &r["keeper"]["dispatch"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap();
    assert!(n(&d["filled"]) > 0, "the keeper's orders filled: {d}");
    // Every book fill is a keeper order's leg (the venue's own engine sent none).
    assert!(n(&r["book_fills"]) >= n(&d["filled"]), "{d}");
    assert_eq!(r["scan_breached"][0], r["scan_breached"][1]);
}

/// `liqscan sweep` over a perpetual scenario: the grid's shape, each row the run's own report
/// (grid points rerun as standalone `liqscan sim` runs give the same figures), mechanisms
/// switched off do nothing, and a sweep naming a key the scenario does not have is refused
/// before any run.
#[test]
fn perp_sweep_rows_are_the_runs_own_reports() {
    let dir = tempfile::tempdir().unwrap();
    let scn = small(dir.path());
    let base = "scenario = \"perp-small.toml\"\n[set]\n\"perp.fund_usd\" = 0\n\
                [[axis]]\nfield = \"perp.liquidation.chunk_ppm\"\nvalues = [0, 200000]\n\
                [[axis]]\nfield = \"perp.liquidation.backstop\"\nvalues = [true, false]\n";
    let sweep = dir.path().join("sweep.toml");
    std::fs::write(
        &sweep,
        format!("{base}[[axis]]\nfield = \"perp.liquidation.adl\"\nvalues = [true, false]\n"),
    )
    .unwrap();
    let out = dir.path().join("sw");
    let o = liqscan(&["sweep", sweep.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        stdout.contains("unpaid $") && stdout.contains("ADL") && stdout.contains("vault P&L $"),
        "{stdout}"
    );
    // 2 x 2 x 2 runs, last axis fastest; a heat map of each kind per value of the third axis.
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 9, "{csv}");
    assert!(csv.starts_with(
        "perp.liquidation.chunk_ppm,perp.liquidation.backstop,perp.liquidation.adl,bad_debt_usd,"
    ));
    for map in ["bad_debt_heatmap", "shortfall_heatmap"] {
        for adl in ["true", "false"] {
            let svg = std::fs::read_to_string(out.join(format!("{map}_{adl}.svg"))).unwrap();
            assert_eq!(svg.matches("<rect x=").count(), 4, "{map}_{adl}");
            assert!(out.join(format!("{map}_{adl}.png")).exists());
        }
    }
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(j["kind"], "perpetual");
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    let f = |r: &serde_json::Value, k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    let point = |r: &serde_json::Value| {
        r["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    for (n, r) in rows.iter().enumerate() {
        let want = [["0", "200000"][n / 4], ["true", "false"][n / 2 % 2], ["true", "false"][n % 2]];
        assert_eq!(point(r), want, "grid order");
        if want[2] == "false" {
            assert_eq!(f(r, "adl_events"), 0.0, "ADL off: {r}");
        }
        if want[1] == "false" {
            assert_eq!(f(r, "backstop_takeovers"), 0.0, "backstop off: {r}");
            assert_eq!(f(r, "vault_pnl_usd"), 0.0, "backstop off: {r}");
        }
        // No fund: it pays only from the funding dust it collects.
        assert!(f(r, "fund_paid_usd") < 0.01, "no fund: {r}");
    }
    // Rerun two points alone: 20% chunks, no backstop, with and without ADL.
    for (n, adl) in [(6, "true"), (7, "false")] {
        let text = std::fs::read_to_string(&scn)
            .unwrap()
            .replace("fund_usd = 1000000.0", "fund_usd = 0.0")
            .replace("backstop = true\n", "backstop = false\n")
            .replace("adl = true", &format!("adl = {adl}"));
        let p = dir.path().join(format!("point-{n}.toml"));
        std::fs::write(&p, text).unwrap();
        let o_dir = dir.path().join(format!("point-{n}"));
        let o = liqscan(&["sim", p.to_str().unwrap(), "--out", o_dir.to_str().unwrap(), "-q"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(o_dir.join("report.json")).unwrap()).unwrap();
        let q = |p: &str| r.pointer(p).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("{p}")) / 1e6;
        let row = &rows[n];
        let shortfall = q("/bad_debt/fund")
            + q("/bad_debt/adl_traders")
            + q("/bad_debt/adl_makers")
            + q("/bad_debt/vault")
            + q("/bad_debt/unpaid");
        for (k, v) in [
            ("bad_debt_usd", q("/bad_debt/unpaid")),
            ("shortfall_usd", shortfall),
            ("fund_paid_usd", q("/bad_debt/fund")),
            ("adl_haircuts_usd", q("/bad_debt/adl_traders") + q("/bad_debt/adl_makers")),
            ("adl_events", r["adl_events"].as_f64().unwrap()),
            ("vault_pnl_usd", r["vault_pnl_usd"].as_f64().unwrap()),
            ("liquidations", r["book_fills"].as_f64().unwrap() + r["backstop_takeovers"].as_f64().unwrap()),
            ("liquidated_usd", r["liquidated_usd"].as_f64().unwrap()),
        ] {
            assert!(
                (f(row, k) - v).abs() <= 1e-6 * v.abs().max(1.0),
                "point {n} {k}: sweep {} sim {v}",
                f(row, k)
            );
        }
        // The figures compared are not all zero: with ADL the shortfall goes to counterparties,
        // without it nobody pays.
        if adl == "true" {
            assert!(f(row, "adl_events") > 0.0 && f(row, "bad_debt_usd") == 0.0, "{row}");
        } else {
            assert!(f(row, "bad_debt_usd") > 0.0, "{row}");
        }
    }
    // A misspelt key on an axis: refused with the file, the key and the problem, before any run.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, base.replace("perp.liquidation.chunk_ppm", "perp.liquidation.chunk_pm")).unwrap();
    let bad_out = dir.path().join("bad-out");
    let o = liqscan(&["sweep", bad.to_str().unwrap(), "--out", bad_out.to_str().unwrap(), "-q"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        e.contains("bad.toml")
            && e.contains("field 'perp.liquidation.chunk_pm'")
            && e.contains("not a key of the perpetual scenario")
            && e.contains("no key 'chunk_pm' under 'perp.liquidation'"),
        "{e}"
    );
    assert!(!bad_out.join("sweep.csv").exists());
    // A market the scenario does not list.
    std::fs::write(&bad, base.replace("perp.fund_usd", "perp.markets.DOGE.depth_usd_per_pct")).unwrap();
    let o = liqscan(&["sweep", bad.to_str().unwrap(), "--out", bad_out.to_str().unwrap(), "-q"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("no key 'DOGE' under 'perp.markets'"), "{e}");
}
