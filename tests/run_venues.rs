//! Several venues in one `liqscan run` (a config file with `[[venues]]` tables): each venue's
//! keeper gives exactly the events a keeper of that venue alone gives on the same inputs; one
//! SIGTERM stops them all; a duplicate name, a shared journal or a venue that cannot start is
//! refused, naming the venue; two venues on one NATS server read only their own streams.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["run", "--config", config.to_str().unwrap()])
        .env_remove("LIQSCAN_CONFIG")
        .output()
        .expect("run liqscan")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The demo venue (300 accounts) and the example venue on Black Thursday (venue, book, USDC
/// ticks and the shared ETH bars): two different books, assets and tick streams.
fn venue_tables(dir: &Path) -> [(&'static str, String); 2] {
    let r = root();
    let d = |f: &str| dir.join(f).display().to_string();
    [
        (
            "demo",
            format!(
                "demo_accounts = 300\nout = \"{}\"\nexecutor = \"jsonl:{}\"\njournal = \"{}\"\n",
                d("demo.jsonl"),
                d("demo-orders.jsonl"),
                d("demo-journal")
            ),
        ),
        (
            "thursday",
            format!(
                "venue = \"{}\"\naccounts = \"{}\"\nticks = [\"{}\"]\nbars = [\"ETH={}\"]\nout = \"{}\"\n\
                 executor = \"jsonl:{}\"\njournal = \"{}\"\n",
                r.join("examples/venue.toml").display(),
                r.join("examples/accounts.csv").display(),
                r.join("examples/usdc.csv").display(),
                r.join("../shared/data/eth-usd-10m/2020-03-12.json").display(),
                d("thursday.jsonl"),
                d("thursday-orders.jsonl"),
                d("thursday-journal")
            ),
        ),
    ]
}

/// The `digest` of the report line of `venue` (`[venue] ` prefix, or none for a lone keeper).
fn digest(err: &str, prefix: &str) -> String {
    let line = err
        .lines()
        .find(|l| l.starts_with(&format!("{prefix}backend ")))
        .unwrap_or_else(|| panic!("no report line for '{prefix}': {err}"));
    line.rsplit("digest ").next().unwrap().to_string()
}

#[test]
fn each_venue_of_one_process_gives_the_events_of_its_own_keeper() {
    let many = tempfile::tempdir().unwrap();
    let tables = venue_tables(many.path());
    let mut deploy = String::from("pace = \"flood\"\n");
    for (name, t) in &tables {
        deploy.push_str(&format!("[[venues]]\nname = \"{name}\"\n{t}"));
    }
    let file = many.path().join("deploy.toml");
    std::fs::write(&file, deploy).unwrap();
    let o = run(&file);
    let err = stderr(&o);
    assert!(o.status.success(), "two venues in one process: {err}");

    for (name, t) in &tables {
        let alone = tempfile::tempdir().unwrap();
        let own = venue_tables(alone.path()).into_iter().find(|(n, _)| n == name).unwrap().1;
        let file = alone.path().join("keeper.toml");
        std::fs::write(&file, format!("pace = \"flood\"\n{own}")).unwrap();
        let o = run(&file);
        let lone = stderr(&o);
        assert!(o.status.success(), "venue {name} alone: {lone}");
        let shared = std::fs::read(many.path().join(format!("{name}.jsonl"))).unwrap();
        let single = std::fs::read(alone.path().join(format!("{name}.jsonl"))).unwrap();
        let breaches =
            single.split(|&b| b == b'\n').filter(|l| l.windows(8).any(|w| w == b"\"breach\"")).count();
        assert!(breaches > 0, "venue {name}: no breach events to compare ({t})");
        assert!(shared == single, "venue {name}: its events in one process differ from its own keeper's");
        assert_eq!(digest(&err, &format!("[{name}] ")), digest(&lone, ""), "venue {name}: report digests");
        for dir in ["journal/book", "journal/orders"] {
            let d = many.path().join(format!("{name}-{dir}"));
            assert!(d.is_dir(), "venue {name}: its own journal {}", d.display());
        }
        let orders = std::fs::read_to_string(many.path().join(format!("{name}-orders.jsonl"))).unwrap();
        assert!(orders.lines().count() > 0, "venue {name}: orders reach its own executor");
    }
}

#[test]
fn a_duplicate_venue_name_or_journal_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let [(_, a), (_, b)] = venue_tables(dir.path());
    let file = dir.path().join("deploy.toml");
    std::fs::write(&file, format!("[[venues]]\nname = \"eth\"\n{a}[[venues]]\nname = \"eth\"\n{b}")).unwrap();
    let o = run(&file);
    let err = stderr(&o);
    assert!(!o.status.success(), "a duplicate name is accepted: {err}");
    assert!(err.contains(&file.display().to_string()) && err.contains("named 'eth'"), "{err}");
    assert!(!dir.path().join("demo.jsonl").exists(), "a venue started: {err}");

    let journal = format!("journal = \"{}\"\n", dir.path().join("j").display());
    std::fs::write(&file, format!("{journal}[[venues]]\nname = \"a\"\n[[venues]]\nname = \"b\"\n")).unwrap();
    let err = stderr(&run(&file));
    assert!(err.contains("venues 'a' and 'b' have the same journal"), "{err}");
}

#[test]
fn a_venue_that_cannot_start_is_named_and_the_others_stop() {
    let dir = tempfile::tempdir().unwrap();
    let [(_, a), _] = venue_tables(dir.path());
    let missing = dir.path().join("missing.csv");
    let file = dir.path().join("deploy.toml");
    std::fs::write(
        &file,
        format!(
            "[[venues]]\nname = \"demo\"\npace = \"fixed:1000\"\n{a}\
             [[venues]]\nname = \"broken\"\nvenue = \"{}\"\naccounts = \"{}\"\n",
            root().join("examples/venue.toml").display(),
            missing.display()
        ),
    )
    .unwrap();
    let t = Instant::now();
    let o = run(&file);
    let err = stderr(&o);
    assert!(!o.status.success(), "a venue that cannot start is ignored: {err}");
    assert!(err.contains("venue broken:") && err.contains("missing.csv"), "{err}");
    // The demo alone would pace its 13,627 messages over 13 s.
    assert!(t.elapsed() < Duration::from_secs(8), "the other venue ran on: {err}");
}

#[test]
fn one_sigterm_stops_every_venue_and_each_reports() {
    let dir = tempfile::tempdir().unwrap();
    let tables = venue_tables(dir.path());
    // Paced to take over 4 s each (13,627 and 797 messages).
    let mut deploy = String::new();
    for ((name, t), pace) in tables.iter().zip(["fixed:1000", "fixed:150"]) {
        deploy.push_str(&format!("[[venues]]\nname = \"{name}\"\npace = \"{pace}\"\n{t}"));
    }
    let file = dir.path().join("deploy.toml");
    std::fs::write(&file, deploy).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["run", "--config", file.to_str().unwrap()])
        .env_remove("LIQSCAN_CONFIG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let ok = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "SIGTERM: {err}");
    for (name, _) in &tables {
        assert!(err.contains(&format!("[{name}] SIGTERM: stopped cleanly")), "venue {name}: {err}");
        assert!(err.contains(&format!("[{name}] backend ")), "venue {name} reports: {err}");
    }
}

/// Two venues on one NATS server, each with its own input stream: one process reading both
/// (`nats_venue` taken from each table's name) gives each venue the events a lone keeper of
/// that venue gives, so neither reads the other's subjects.
#[test]
fn two_venues_on_nats_in_one_process_read_their_own_streams() {
    let Some(server) = liqscan_nats::NatsServer::start_or_skip("two venues on nats") else { return };
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let venues = [("va", "300"), ("vb", "700")];
    let publishers: Vec<_> = venues
        .iter()
        .map(|(name, accounts)| {
            Command::new(env!("CARGO_BIN_EXE_liqscan"))
                .args(["publish", "--nats", &url, "--nats-venue", name, "--demo-accounts", accounts])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in publishers {
        let o = p.wait_with_output().unwrap();
        assert!(o.status.success(), "publish: {}", stderr(&o));
    }
    let mut deploy = format!("nats = \"{url}\"\nnats_idle_ms = 1000\n");
    for (name, accounts) in venues {
        let out = d.join(format!("{name}.jsonl"));
        deploy.push_str(&format!(
            "[[venues]]\nname = \"{name}\"\ndemo_accounts = {accounts}\nout = \"{}\"\n",
            out.display()
        ));
    }
    let file = d.join("deploy.toml");
    std::fs::write(&file, deploy).unwrap();
    let o = run(&file);
    assert!(o.status.success(), "two venues on nats: {}", stderr(&o));
    for (name, accounts) in venues {
        let out = d.join(format!("{name}-alone.jsonl"));
        let o = Command::new(env!("CARGO_BIN_EXE_liqscan"))
            .args(["run", "--nats", &url, "--nats-venue", name, "--nats-idle-ms", "1000"])
            .args(["--demo-accounts", accounts, "--out", out.to_str().unwrap()])
            .env_remove("LIQSCAN_CONFIG")
            .output()
            .unwrap();
        assert!(o.status.success(), "venue {name} alone: {}", stderr(&o));
        let (shared, alone) = (
            std::fs::read_to_string(d.join(format!("{name}.jsonl"))).unwrap(),
            std::fs::read_to_string(&out).unwrap(),
        );
        assert!(alone.lines().count() > 100, "venue {name}: the crash breaches accounts");
        assert!(
            shared == alone,
            "venue {name}: {} events in one process, {} alone",
            shared.lines().count(),
            alone.lines().count()
        );
    }
}
