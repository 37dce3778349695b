//! The emulated card running the rust-hdl simulation of the core (`card-hdl`) against the
//! software engine over a replayed crash: the real ETH/USD bars of 2020-03-12 (Black Thursday),
//! the example venue and the first accounts of the example book.
//!
//! ```text
//!  LinkEngine ──CardLink──> /dev/shm <── CardThread (HdlCard: rust-hdl ScanCore, cycle by cycle)
//!  SoftwareEngine (same messages)
//!       └── breach and at-risk bitmaps compared after every message, and with the reference
//! ```
//!
//! The simulation runs about a thousand core cycles a second, so the test takes 64 accounts
//! and every fifth ETH tick of the day (the whole crash and rebound, 117 ticks); `liqscan run
//! --backend card-hdl` replays the full day and book (see docs/lab/performance.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use liqscan_host::engine::{ScanEngine, SoftwareEngine};
use liqscan_host::io::accounts::read_accounts;
use liqscan_host::io::ticks::{read_bars, read_ticks};
use liqscan_host::io::venue::read_venue;
use liqscan_host::link::{CardLink, LinkEngine, LinkMemory, LinkOptions};
use liqscan_host::reference;
use liqscan_sim::card::{CardThread, HdlCard, ServeOptions};

const ACCOUNTS: usize = 64;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn hdl_card_matches_the_software_engine_over_black_thursday() {
    let table = read_venue(&root().join("examples/venue.toml")).unwrap();
    let accounts = read_accounts(&root().join("examples/accounts.csv"), &table).unwrap();
    let book: Vec<_> = accounts.iter().take(ACCOUNTS).map(|a| a.terms.clone()).collect();
    let mut ticks = read_ticks(&root().join("examples/usdc.csv"), &table).unwrap();
    let bars = root().join("../shared/data/eth-usd-10m/2020-03-12.json");
    let eth = read_bars(Path::new(&bars), &table, "ETH").unwrap();
    ticks.extend(eth.iter().step_by(5).copied());
    ticks.sort_by_key(|t| t.ts_ns);
    assert!(ticks.len() > 100, "{} ticks", ticks.len());

    let dir = tempfile::tempdir().unwrap();
    let path = if Path::new("/dev/shm").is_dir() {
        PathBuf::from(format!("/dev/shm/liqscan-test-hdl-{}", std::process::id()))
    } else {
        dir.path().join("shm")
    };
    let card = CardThread::spawn(
        LinkMemory::shm_create(&path, 1024).unwrap(),
        Box::new(HdlCard::new(table.len()).unwrap()),
        ServeOptions::default(),
        None,
    );
    let opts = LinkOptions { timeout: Duration::from_secs(60), backoff: true, ..Default::default() };
    let link = CardLink::open(LinkMemory::shm_open(&path).unwrap(), opts).unwrap();
    let mut hdl = LinkEngine::new(link, book.len(), table.len()).unwrap();
    let mut sw = SoftwareEngine::new(book.len(), table.len());
    for (slot, t) in book.iter().enumerate() {
        hdl.upsert(slot as u32, t).unwrap();
        sw.upsert(slot as u32, t).unwrap();
    }
    let t0 = Instant::now();
    let mut prices = vec![Default::default(); table.len()];
    let (mut breached, mut at_risk, mut flips) = (0, 0, 0);
    let mut last = sw.breach().to_vec();
    for (i, t) in ticks.iter().enumerate() {
        hdl.tick(t.asset, t.entry).unwrap();
        sw.tick(t.asset, t.entry).unwrap();
        prices[t.asset as usize] = t.entry;
        assert_eq!(hdl.breach(), sw.breach(), "breach bitmap after tick {i}");
        assert_eq!(hdl.at_risk(), sw.at_risk(), "at-risk bitmap after tick {i}");
        flips += hdl.breach().iter().zip(&last).map(|(a, b)| (a ^ b).count_ones()).sum::<u32>();
        last = hdl.breach().to_vec();
        breached = breached.max(last.iter().map(|w| w.count_ones()).sum::<u32>());
        at_risk = at_risk.max(hdl.at_risk().iter().map(|w| w.count_ones()).sum::<u32>());
    }
    let secs = t0.elapsed().as_secs_f64();
    let want = reference::scan(&book, &prices);
    assert_eq!(hdl.breach(), &want.breach[..]);
    assert_eq!(hdl.at_risk(), &want.at_risk[..]);
    // The crash must exercise the comparison: accounts breach and recover.
    assert!(breached > 5 && at_risk >= breached && flips > 10, "{breached} {at_risk} {flips}");
    let rep = card.stop();
    let _ = std::fs::remove_file(&path);
    // One scan per tick, and the full scan that clears the card when the engine starts.
    assert_eq!(rep.scans, ticks.len() as u64 + 1);
    assert!(rep.cycles > 0);
    eprintln!(
        "card-hdl: {} ticks in {secs:.2} s ({:.0} ticks/s); {} core cycles in {:.2} s simulated ({:.0} cycles/s); \
         {} term words a lane; at most {breached} breached, {at_risk} at risk; {flips} flips",
        ticks.len(),
        ticks.len() as f64 / secs,
        rep.cycles,
        rep.sim_seconds,
        rep.cycles as f64 / rep.sim_seconds,
        hdl.layout().words_used(),
    );
}
