//! `liqscan run`'s options come from one type: each flag is also a `LIQSCAN_` environment
//! variable and a config key, and the flag wins over the environment, which wins over the file.

use std::process::Command;

fn run(env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .arg("run")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run liqscan");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_option_comes_from_the_environment_and_a_flag_overrides_it() {
    let (ok, err) = run(&[("LIQSCAN_DEMO_ACCOUNTS", "0")], &[]);
    assert!(!ok && err.contains("--demo-accounts is 0"), "the environment's value is used: {err}");
    let (ok, err) = run(&[("LIQSCAN_DEMO_ACCOUNTS", "0")], &["--demo-accounts", "40"]);
    assert!(ok, "the flag wins: {err}");
    assert!(err.contains("breach events"), "the run reports: {err}");
}

#[test]
fn the_environment_wins_over_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, "demo_accounts = 0\n").unwrap();
    let (ok, err) = run(&[], &["--config", cfg.to_str().unwrap()]);
    assert!(!ok && err.contains("--demo-accounts is 0"), "the file's value is used: {err}");
    let (ok, err) = run(&[("LIQSCAN_DEMO_ACCOUNTS", "30")], &["--config", cfg.to_str().unwrap()]);
    assert!(ok, "the environment wins over the file: {err}");
}
