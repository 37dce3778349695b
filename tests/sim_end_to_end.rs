//! `liqscan sim` and `liqscan sweep` end to end, through the built binary, on small scenarios:
//! the report's figures must agree with each other, runs must be deterministic, plots written,
//! and a missing data file named in the error.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bars(day: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/eth-usd-10m").join(format!("{day}.json"))
}

/// Black Thursday's first 8 hours (the first leg down), 1,000 borrowers, from the example file.
fn small_scenario(dir: &Path, mechanism: &str) -> PathBuf {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/black-thursday.toml"))
            .unwrap()
            .replace("../shared/data/eth-usd-10m/2020-03-12.json", &bars("2020-03-12").display().to_string())
            .replace("duration_secs = 86400", "duration_secs = 28800")
            .replace("accounts = 1400", "accounts = 1000")
            .replace("lenders = 500", "lenders = 50")
            .replace("mechanism = \"direct\"", &format!("mechanism = \"{mechanism}\""));
    let p = dir.join(format!("bt-{mechanism}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn liqscan(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_liqscan")).args(args).output().expect("run liqscan")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 0.011 + 1e-9 * a.abs().max(b.abs())
}

#[test]
fn sim_report_is_consistent_deterministic_and_plotted() {
    if !bars("2020-03-12").exists() {
        panic!("real data missing at {}", bars("2020-03-12").display());
    }
    let dir = tempfile::tempdir().unwrap();
    for mechanism in ["direct", "dutch", "batch"] {
        let scn = small_scenario(dir.path(), mechanism);
        let out_a = dir.path().join(format!("a-{mechanism}"));
        let out_b = dir.path().join(format!("b-{mechanism}"));
        for out in [&out_a, &out_b] {
            let o = liqscan(&["sim", scn.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert!(String::from_utf8_lossy(&o.stdout).contains("ledger     conserved"));
        }
        let a = std::fs::read_to_string(out_a.join("report.json")).unwrap();
        assert_eq!(
            a,
            std::fs::read_to_string(out_b.join("report.json")).unwrap(),
            "{mechanism}: deterministic"
        );
        let r: serde_json::Value = serde_json::from_str(&a).unwrap();
        let f = |p: &str| r.pointer(p).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("{p} in report"));
        assert_eq!(r["conservation_ok"], true);
        assert_eq!(r["liquidations"]["mechanism"], mechanism);
        // Bad debt splits exactly into fund and socialised; socialised into haircuts and pool loss.
        assert!(close(f("/bad_debt/total_usd"), f("/bad_debt/absorbed_usd") + f("/bad_debt/socialised_usd")));
        assert!(close(
            f("/bad_debt/socialised_usd"),
            f("/bad_debt/adl_haircut_usd") + f("/bad_debt/pool_loss_usd")
        ));
        assert_eq!(f("/bad_debt/unresolved_usd"), 0.0);
        // The fund: what the fund paid is what it absorbed; its end follows from its flows.
        assert!(close(f("/insurance_fund/paid_usd"), f("/bad_debt/absorbed_usd")));
        let fund_flows = f("/insurance_fund/initial_usd") + f("/insurance_fund/income_usd")
            - f("/insurance_fund/paid_usd")
            - f("/insurance_fund/incentives_usd");
        assert!(close(f("/insurance_fund/final_usd"), fund_flows));
        assert!(f("/insurance_fund/min_usd") <= f("/insurance_fund/final_usd") + 0.01);
        let fund_path = r["series"]["fund_usd"].as_array().unwrap();
        assert!(close(fund_path.last().unwrap().as_f64().unwrap(), f("/insurance_fund/final_usd")));
        // The crash liquidates, and the price figures are the replayed bars'.
        assert!(f("/liquidations/repaid_usd") > 0.0, "{mechanism}: liquidations happened");
        let eth = r["prices"].as_array().unwrap().iter().find(|p| p["asset"] == "ETH").unwrap();
        assert!(close(eth["start"].as_f64().unwrap(), 195.21));
        // The scenario's calibration rows carry the run's own figures beside the public ones.
        let cal = r["calibration"].as_array().unwrap();
        let row = |m: &str| cal.iter().find(|c| c["metric"] == m).unwrap_or_else(|| panic!("{m} row"));
        let sim = |m: &str| row(m)["simulated"].as_f64().unwrap();
        assert_eq!(row("low:ETH")["real"].as_f64(), Some(101.01));
        assert_eq!(sim("low:ETH"), eth["market_min"].as_f64().unwrap());
        assert!(close(sim("low_pct:ETH"), (eth["market_min"].as_f64().unwrap() / 195.21 - 1.0) * 100.0));
        assert_eq!(sim("liquidated_usd"), f("/liquidations/seized_usd"));
        assert_eq!(sim("bad_debt_usd"), f("/bad_debt/total_usd"));
        // Health distribution: every sample counts the same kind of thing, once per account.
        let accounts = f("/accounts_start") + 1000.0;
        for row in r["series"]["health"].as_array().unwrap() {
            let n: f64 = row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).sum();
            assert!(n <= accounts);
        }
        for plot in ["price.svg", "health.svg", "fund.svg"] {
            let svg = std::fs::read_to_string(out_a.join(plot)).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{plot}");
        }
    }
}

#[test]
fn missing_data_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/black-thursday.toml"))
            .unwrap()
            .replace("../shared/data/eth-usd-10m/2020-03-12.json", "no-such-day.json");
    let p = dir.path().join("broken.toml");
    std::fs::write(&p, text).unwrap();
    let o = liqscan(&["sim", p.to_str().unwrap(), "-q", "--out", dir.path().join("o").to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no-such-day.json"), "{err}");
    std::fs::write(
        &p,
        "name = \"x\"\nseed = 1\nduration_secs = 10\nquote = \"USD\"\n[assets.USD]\nquantum_exp = -2\n",
    )
    .unwrap();
    let o = liqscan(&["sim", p.to_str().unwrap(), "-q"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("broken.toml") && err.contains("missing field"), "{err}");
}

#[test]
fn sweep_writes_table_and_heat_map() {
    let dir = tempfile::tempdir().unwrap();
    let scn = small_scenario(dir.path(), "direct");
    let sweep = dir.path().join("sweep.toml");
    std::fs::write(
        &sweep,
        format!(
            "scenario = {:?}\n[set]\n\"population.accounts\" = 300\n\"duration_secs\" = 14400\n\
             [[axis]]\nfield = \"assets.ETH.tiers.default.asset_weight\"\nvalues = [\"0.7\", \"0.9\"]\n\
             [[axis]]\nfield = \"oracle.delay_secs\"\nvalues = [0, 600]\n",
            scn.file_name().unwrap().to_str().unwrap()
        ),
    )
    .unwrap();
    let out = dir.path().join("sw");
    let o = liqscan(&["sweep", sweep.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("0.7,0,"));
    let svg = std::fs::read_to_string(out.join("bad_debt_heatmap.svg")).unwrap();
    assert_eq!(svg.matches("<rect x=").count(), 4);
}

/// `liqscan sim --backend card-software`: the simulator's scans through the emulated card behind
/// the card link give the very report the software engine gives.
#[test]
fn sim_through_the_card_gives_the_software_engines_report() {
    let dir = tempfile::tempdir().unwrap();
    let scn = small_scenario(dir.path(), "direct");
    let report = |backend: &str| {
        let out = dir.path().join(backend);
        let o = liqscan(&[
            "sim",
            scn.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
            "--backend",
            backend,
        ]);
        assert!(o.status.success(), "--backend {backend}: {}", String::from_utf8_lossy(&o.stderr));
        std::fs::read_to_string(out.join("report.json")).unwrap()
    };
    let software = report("software");
    let r: serde_json::Value = serde_json::from_str(&software).unwrap();
    assert!(r["liquidations"]["repaid_usd"].as_f64().unwrap() > 0.0, "the crash liquidates");
    assert!(report("card-software") == software, "the card's report differs from the software engine's");
}
