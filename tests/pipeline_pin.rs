//! Pinning: the pipeline's threads land on the cores they are given whatever was pinned
//! before them (a thread inherits its creator's one-core mask), and a core the process may
//! not use is refused at start with the option named.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use liqscan_host::dispatch::{Executor, JsonlSink};
use liqscan_host::engine::SoftwareEngine;
use liqscan_host::feed::replay;
use liqscan_host::metrics::Counters;
use liqscan_host::pipeline::affinity::{self, tasks};
use liqscan_host::pipeline::dispatch::{DispatchOptions, DispatchStage, KeeperBook};
use liqscan_host::pipeline::{self, Clock, PipelineConfig};

#[test]
fn pipeline_threads_spawned_after_a_pin_land_on_their_own_cores() {
    let allowed = affinity::allowed_cores().to_vec();
    if allowed.len() < 2 {
        eprintln!("skipped: this process may run on {} core(s), the test needs 2", allowed.len());
        return;
    }
    let (feed, other) = (allowed[0], *allowed.last().unwrap());
    std::thread::spawn(move || {
        // The feed thread is pinned first; the dispatch and engine threads it spawns start
        // with its one-core mask and must still reach the other core.
        assert!(pipeline::pin("feed thread", feed));
        let clock = Clock::default();
        let counters = Arc::new(Counters::default());
        let (tx, rx) = pipeline::feed_queue(64, counters.clone());
        let (stage, sink) = DispatchStage::start(
            KeeperBook::from_views(vec![None; 8]),
            2,
            Box::new(|| Box::new(JsonlSink::new("discard", std::io::sink())) as Box<dyn Executor>),
            DispatchOptions { core: Some(other), ..Default::default() },
            clock,
        );
        let h = pipeline::spawn(
            Box::new(SoftwareEngine::new(8, 2)),
            rx,
            Box::new(sink),
            PipelineConfig { engine_core: Some(other), spin: false, ..PipelineConfig::default() },
            clock,
            counters,
            Arc::default(),
        );
        let t = Instant::now();
        let on = |name: &str| tasks().into_iter().find(|t| t.name == name).map(|t| t.cores);
        while on("engine") != Some(vec![other]) || on("dispatch") != Some(vec![other]) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "engine on {:?}, dispatch on {:?}, wanted [{other}]",
                on("engine"),
                on("dispatch")
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(affinity::current_cores(), Some(vec![feed]), "the feed thread stays where it was");
        replay::end(&tx, &clock, 0);
        h.join().unwrap();
        stage.finish();
    })
    .join()
    .unwrap();
}

#[test]
fn run_refuses_a_core_the_process_may_not_use() {
    let beyond = affinity::allowed_cores().last().unwrap() + 1;
    for flag in ["--engine-core", "--dispatch-core", "--feed-core"] {
        let out = Command::new(env!("CARGO_BIN_EXE_liqscan"))
            .args(["run", "--demo-accounts", "10", flag, &beyond.to_string()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flag}: {err}");
        assert!(err.contains(flag) && err.contains(&format!("core {beyond} is not one")), "{flag}: {err}");
    }
}
