//! Stop signals on the real binary: `liqscan card` stops on SIGINT and removes its link file;
//! a second SIGTERM while `liqscan run` is still stopping ends it at once. (SIGTERM mid-replay
//! with a drained dispatch and a final report: `tests/journal_run.rs`.)

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn liqscan() -> Command {
    Command::new(env!("CARGO_BIN_EXE_liqscan"))
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills the child if the test fails before it ends (a card-hdl run left behind would go on
/// for many minutes).
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn shm_dir() -> PathBuf {
    if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() }
}

#[test]
fn sigint_stops_the_card_and_removes_its_link_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = shm_dir().join(format!("liqscan-sigint-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let log = dir.path().join("card.log");
    let mut reap = Reap(
        liqscan()
            .args(["card", "--shm", path.to_str().unwrap(), "--accounts", "64", "--assets", "4"])
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let card = &mut reap.0;
    let serving = || std::fs::read_to_string(&log).unwrap_or_default().contains("serving");
    wait_for("the card to serve", Duration::from_secs(20), serving);
    assert!(path.exists());
    signal(card.id(), "-INT");
    let status = card.wait().unwrap();
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "exit status {status:?}: {err}");
    assert!(!path.exists(), "the link file is still there: {err}");
    assert!(err.contains(&format!("SIGINT: removed link file {}", path.display())), "{err}");
    assert!(err.contains("emulated card stopped: "), "{err}");
}

/// The rust-hdl card is slow (milliseconds a message), so after the first SIGTERM the run is
/// still applying its full queue; the second ends it at once, as an unhandled SIGTERM would.
#[test]
fn a_second_sigterm_ends_a_stopping_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let err = dir.path().join("err.txt");
    let mut reap = Reap(
        liqscan()
            .args(["run", "--backend", "card-hdl", "--demo-accounts", "2000"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    );
    let run = &mut reap.0;
    std::thread::sleep(Duration::from_millis(1500));
    assert!(run.try_wait().unwrap().is_none(), "the run ended before the signal");
    signal(run.id(), "-TERM");
    // Handled: the run goes on stopping (its feed waits on the full queue of the slow card).
    std::thread::sleep(Duration::from_millis(300));
    assert!(run.try_wait().unwrap().is_none(), "the first SIGTERM ended the run");
    let t = Instant::now();
    signal(run.id(), "-TERM");
    let status = run.wait().unwrap();
    let text = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.signal(), Some(15), "not ended by the second SIGTERM: {status:?}: {text}");
    assert!(t.elapsed() < Duration::from_secs(2), "took {:?} after the second signal", t.elapsed());
    assert!(!text.contains("stopped cleanly"), "{text}");
    let _ = std::fs::remove_file(format!("/dev/shm/liqscan-run-{}", run.id()));
}
