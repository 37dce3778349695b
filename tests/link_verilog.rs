//! The card emulated from its own Verilog (`card-verilog`): the whole card's generated Verilog
//! (front end and core) under Verilator, driven by the unchanged host driver through the
//! shared-memory link, against the software engine over a replayed crash: the real ETH/USD
//! bars of 2020-03-12 (Black Thursday), the example venue and the example book, with account changes during the replay.
//!
//! ```text
//!  LinkEngine ──CardLink──> /dev/shm <── CardThread::spawn_verilated (shell: BAR writes, DMA)
//!                                              └── Vtop: BarRegs, CmdReader, CmdDecoder,
//!                                                  ScanCore, EvtPacker, EvtWriter (the RTL)
//!  SoftwareEngine (same messages)
//!       └── breach and at-risk bitmaps compared after every message, and with the reference
//! ```
//!
//! The first run builds the model (about a minute here); later runs load it from
//! `target/verilated/`. Without Verilator the test says so and passes, except under CI
//! (`CI` or `LIQSCAN_REQUIRE_VERILATOR` set, as scripts/test sets it), where Verilator is installed by scripts/setup-tools.sh and its absence fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use liqscan_host::engine::{ScanEngine, SoftwareEngine};
use liqscan_host::io::accounts::read_accounts;
use liqscan_host::io::ticks::{read_bars, read_ticks};
use liqscan_host::io::venue::read_venue;
use liqscan_host::link::{CardLink, LinkEngine, LinkMemory, LinkOptions};
use liqscan_host::reference;
use liqscan_sim::card::{CardThread, ServeOptions, VerilatedCard};

mod common;
use common::verilator_present;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn verilated_card_matches_the_software_engine_over_black_thursday() {
    if !verilator_present() {
        return;
    }
    let table = read_venue(&root().join("examples/venue.toml")).unwrap();
    let accounts = read_accounts(&root().join("examples/accounts.csv"), &table).unwrap();
    // The whole example book (220 accounts).
    let mut book: Vec<_> = accounts.iter().map(|a| a.terms.clone()).collect();
    let n = book.len();
    assert!(n >= 200, "{n} accounts");
    let mut ticks = read_ticks(&root().join("examples/usdc.csv"), &table).unwrap();
    let bars = root().join("../shared/data/eth-usd-10m/2020-03-12.json");
    ticks.extend(read_bars(Path::new(&bars), &table, "ETH").unwrap());
    ticks.sort_by_key(|t| t.ts_ns);
    assert!(ticks.len() > 500, "{} ticks", ticks.len());

    let dir = tempfile::tempdir().unwrap();
    let path = if Path::new("/dev/shm").is_dir() {
        PathBuf::from(format!("/dev/shm/liqscan-test-verilog-{}", std::process::id()))
    } else {
        dir.path().join("shm")
    };
    let mem = LinkMemory::shm_create(&path, 1024).unwrap();
    let t_build = Instant::now();
    let (card, built) = VerilatedCard::new(&mem).unwrap();
    eprintln!(
        "Verilated card: {} ({}, {:.1} s)",
        built.library.display(),
        if built.fresh { "built now" } else { "cached" },
        t_build.elapsed().as_secs_f64()
    );
    let card = CardThread::spawn_verilated(mem, card, ServeOptions::default(), None);
    let opts = LinkOptions { timeout: Duration::from_secs(10), backoff: true, ..Default::default() };
    let link = CardLink::open(LinkMemory::shm_open(&path).unwrap(), opts).unwrap();
    let mut rtl = LinkEngine::new(link, book.len(), table.len()).unwrap();
    let mut sw = SoftwareEngine::new(book.len(), table.len());
    for (slot, t) in book.iter().enumerate() {
        rtl.upsert(slot as u32, t).unwrap();
        sw.upsert(slot as u32, t).unwrap();
    }
    let t0 = Instant::now();
    let mut prices = vec![Default::default(); table.len()];
    let (mut breached, mut at_risk, mut flips, mut changes) = (0, 0, 0, 0);
    let mut last = sw.breach().to_vec();
    for (i, t) in ticks.iter().enumerate() {
        // Account changes between ticks: one account takes another's terms, one is removed.
        if i % 23 == 11 {
            let (slot, from) = ((i * 31) % n, (i * 17 + 5) % n);
            book[slot] = book[from].clone();
            rtl.upsert(slot as u32, &book[slot]).unwrap();
            sw.upsert(slot as u32, &book[slot]).unwrap();
            let gone = (i * 13 + 3) % n;
            book[gone].clear();
            rtl.remove(gone as u32).unwrap();
            sw.remove(gone as u32).unwrap();
            changes += 2;
            assert_eq!(rtl.breach(), sw.breach(), "breach bitmap after the changes before tick {i}");
        }
        rtl.tick(t.asset, t.entry).unwrap();
        sw.tick(t.asset, t.entry).unwrap();
        prices[t.asset as usize] = t.entry;
        assert_eq!(rtl.breach(), sw.breach(), "breach bitmap after tick {i}");
        assert_eq!(rtl.at_risk(), sw.at_risk(), "at-risk bitmap after tick {i}");
        flips += rtl.breach().iter().zip(&last).map(|(a, b)| (a ^ b).count_ones()).sum::<u32>();
        last = rtl.breach().to_vec();
        breached = breached.max(last.iter().map(|w| w.count_ones()).sum::<u32>());
        at_risk = at_risk.max(rtl.at_risk().iter().map(|w| w.count_ones()).sum::<u32>());
    }
    let secs = t0.elapsed().as_secs_f64();
    let want = reference::scan(&book, &prices);
    assert_eq!(rtl.breach(), &want.breach[..]);
    assert_eq!(rtl.at_risk(), &want.at_risk[..]);
    // The crash must exercise the comparison: accounts breach and recover.
    assert!(breached > 20 && at_risk >= breached && flips > 20, "{breached} {at_risk} {flips}");
    let rep = card.stop();
    let _ = std::fs::remove_file(&path);
    // The RTL's own STAT_SCANS: one scan per tick and the full scan that clears the card when
    // the engine starts (a tick after account changes scans twice: the refresh).
    assert!(rep.scans > ticks.len() as u64, "{rep:?}");
    assert!(rep.cycles > 0 && rep.commands > ticks.len() as u64, "{rep:?}");
    eprintln!(
        "card-verilog: {n} accounts, {} ticks and {changes} account changes in {secs:.2} s ({:.0} ticks/s); {} core cycles in \
         {:.2} s clocked ({:.0} cycles/s); {} commands, {} events, {} scans; at most {breached} breached, \
         {at_risk} at risk; {flips} flips",
        ticks.len(),
        ticks.len() as f64 / secs,
        rep.cycles,
        rep.sim_seconds,
        rep.cycles as f64 / rep.sim_seconds,
        rep.commands,
        rep.events,
        rep.scans,
    );
}

/// Without Verilator on the PATH, `liqscan card --engine verilog` says how to get it and
/// fails, rather than serving anything.
#[test]
fn without_verilator_the_verilog_card_says_how_to_get_it() {
    let path = PathBuf::from(format!("/dev/shm/liqscan-test-noverilator-{}", std::process::id()));
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_liqscan"))
        .args(["card", "--engine", "verilog", "--shm"])
        .arg(&path)
        .env("PATH", dir.path())
        .env("LIQSCAN_VERILATED_DIR", dir.path())
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("verilator not found: run scripts/setup-tools.sh"), "{err}");
}

/// The shell's DMA memory answers only inside the link file: a card told to write its events
/// elsewhere gets SLVERR (its sticky `dma_error`) and nothing in the file changes.
#[test]
fn dma_outside_the_link_file_is_refused_and_writes_nothing() {
    use liqscan_hdl::abi::Command;
    use liqscan_hdl::abi::regs::{CMD_RING_WINDOW, CONTROL_SOFT_RESET, offset};
    use liqscan_sim::card::verilated::CMD_WINDOW_BUS_ADDR;
    if !verilator_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mem = LinkMemory::shm_create(&dir.path().join("shm"), 128).unwrap();
    let (mut card, _) = VerilatedCard::new(&mem).unwrap();
    let elsewhere = mem.evt_ring_addr + mem.dma.len() as u64;
    for (off, v) in [
        (offset::CMD_RING_ENTRIES, 4),
        (offset::CMD_RING_ADDR_LO, CMD_WINDOW_BUS_ADDR as u32),
        (offset::CMD_RING_ADDR_HI, (CMD_WINDOW_BUS_ADDR >> 32) as u32),
        (offset::EVT_RING_ENTRIES, 4),
        (offset::EVT_RING_ADDR_LO, elsewhere as u32),
        (offset::EVT_RING_ADDR_HI, (elsewhere >> 32) as u32),
        (offset::CONTROL, CONTROL_SOFT_RESET),
    ] {
        card.write_reg(off, v);
    }
    let fence = Command::Fence { token: 9 }.encode_words(0);
    for (i, w) in fence.iter().enumerate() {
        mem.bar.write32(CMD_RING_WINDOW as usize + 4 * i, *w).unwrap();
    }
    card.write_reg(offset::CMD_DOORBELL, 1);
    for _ in 0..200 {
        card.cycle();
    }
    assert_eq!(card.cmd_consumer(), 1, "the fence was fetched");
    assert!(card.dma_error(), "a write outside the file is answered SLVERR");
    assert!(
        (0..mem.dma.len()).step_by(4).all(|o| mem.dma.read32(o).unwrap() == 0),
        "the event ring is untouched"
    );
}

/// A fence's cycles through the Verilated card, from the doorbell's BAR write to its event's
/// head word in host memory (one-cycle DMA memory, no stalls), as `liqscan bench-link --parts
/// verilog` measures them: 33 (docs/FRONT_END.md), the same for every fence. Timing changes
/// inside the card that claim no cycle moves are held to it.
#[test]
fn a_fence_takes_33_cycles_through_the_verilated_card() {
    if !verilator_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mem = LinkMemory::shm_create(&dir.path().join("shm"), 4096).unwrap();
    let (mut card, _) = VerilatedCard::new(&mem).unwrap();
    let cycles = card.fence_cycles(&mem, 8).unwrap();
    assert_eq!(cycles, vec![33; 8], "a fence's cycles, doorbell to event");
}
