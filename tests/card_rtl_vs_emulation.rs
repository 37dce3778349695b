//! The RTL card (front end and scan core in rust-hdl, `liqscan_hdl::front::card`) against the
//! emulated card (`sim/src/card/serve.rs` with the rust-hdl core behind it, `HdlCard`) on one
//! random command stream: every event must be the same, in the same order, with the same
//! sequence numbers (`ScanDone.cycles` aside: the RTL's includes its own DMA and packing
//! back-pressure).
//!
//! ```text
//!  command stream ──BAR window, doorbell──> serve() + HdlCard ──event ring (shm)──┐
//!                 ──host memory, doorbell──> Card (rust-hdl) ──AXI──> AxiMemory ──┴─> equal
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use liqscan_hdl::abi::config::CARD_ASSETS;
use liqscan_hdl::abi::regs::{CMD_RING_WINDOW, CONTROL_SOFT_RESET, TYPE_LIQSCAN, offset};
use liqscan_hdl::abi::ring::{PHASE_BIT, RING_ENTRY_BYTES, RING_ENTRY_WORDS};
use liqscan_hdl::abi::{Event, EventEntry};
use liqscan_hdl::front::axi::AxiTiming;
use liqscan_hdl::front::card_driver::CardSim;
use liqscan_hdl::front::stimulus::{StreamShape, command_stream};
use liqscan_host::link::LinkMemory;
use liqscan_sim::card::{CardThread, HdlCard, ServeOptions};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The emulated card's events for `entries` (posted at once; the rings hold them all).
fn emulated(entries: &[[u32; RING_ENTRY_WORDS]]) -> Vec<[u32; RING_ENTRY_WORDS]> {
    let dir = tempfile::tempdir().unwrap();
    let path = if Path::new("/dev/shm").is_dir() {
        PathBuf::from(format!("/dev/shm/liqscan-test-rtl-vs-emu-{}", std::process::id()))
    } else {
        dir.path().join("shm")
    };
    const EVT: usize = 1024;
    assert!(entries.len() <= 256);
    let card = CardThread::spawn(
        LinkMemory::shm_create(&path, EVT).unwrap(),
        Box::new(HdlCard::new(CARD_ASSETS).unwrap()),
        ServeOptions::default(),
        None,
    );
    let mem = LinkMemory::shm_open(&path).unwrap();
    let (bar, dma) = (&mem.bar, &mem.dma);
    let t0 = Instant::now();
    while bar.load_at(offset::ID_TYPE as usize, Ordering::Acquire) != TYPE_LIQSCAN {
        assert!(t0.elapsed() < Duration::from_secs(10), "the emulated card did not come up");
        std::thread::sleep(Duration::from_millis(1));
    }
    bar.store_at(offset::CMD_RING_ENTRIES as usize, 256, Ordering::Relaxed);
    bar.store_at(offset::EVT_RING_ENTRIES as usize, EVT as u32, Ordering::Relaxed);
    bar.store_at(offset::CONTROL as usize, CONTROL_SOFT_RESET, Ordering::Release);
    while bar.load_at(offset::CONTROL as usize, Ordering::Acquire) != 0 {
        assert!(t0.elapsed() < Duration::from_secs(10), "the emulated card did not reset");
        std::thread::sleep(Duration::from_millis(1));
    }
    for (i, w) in entries.iter().enumerate() {
        for (k, x) in w.iter().enumerate() {
            bar.store_at(CMD_RING_WINDOW as usize + i * RING_ENTRY_BYTES + 4 * k, *x, Ordering::Relaxed);
        }
    }
    bar.store_at(offset::CMD_DOORBELL as usize, entries.len() as u32, Ordering::Release);
    let last_seq = entries.last().unwrap()[1];
    let mut got = vec![];
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the emulated card stopped after {} events",
            got.len()
        );
        let base = got.len() * RING_ENTRY_BYTES;
        if dma.load_at(base, Ordering::Acquire) & PHASE_BIT == 0 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        let w: [u32; RING_ENTRY_WORDS] =
            std::array::from_fn(|k| dma.load_at(base + 4 * k, Ordering::Relaxed));
        got.push(w);
        if matches!(EventEntry::decode_words(&w).unwrap().event, Event::FenceDone { cmd_seq, .. } if cmd_seq == last_seq)
        {
            break;
        }
    }
    drop(card);
    let _ = std::fs::remove_file(&path);
    got
}

/// The event, with the cycle count (which the two cards count differently) taken out.
fn comparable(w: &[u32; RING_ENTRY_WORDS]) -> (u32, Event) {
    let e = EventEntry::decode_words(w).expect("a well-formed event");
    let event = match e.event {
        Event::ScanDone { cmd_seq, incremental, asset, groups, breached, at_risk, .. } => {
            Event::ScanDone { cmd_seq, incremental, asset, groups, cycles: 0, breached, at_risk }
        }
        x => x,
    };
    (e.seq, event)
}

#[test]
fn rtl_card_answers_as_the_emulated_card_does() {
    // The card's blocks are built on the stack before they are boxed: more than a test
    // thread's 2 MiB.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let mut rng = ChaCha8Rng::seed_from_u64(13);
            let entries = command_stream(
                &mut rng,
                StreamShape { accounts: 40, assets: 6, commands: 120, refused: true, fence_last: true },
            );
            let emu = emulated(&entries);
            let mut card = CardSim::new(8, 4, AxiTiming { latency: 1..=8, stall_percent: 25 }, 13);
            card.bring_up().unwrap();
            let rtl = card.run(&entries);
            let kinds: std::collections::BTreeSet<u8> = emu.iter().map(|w| w[0] as u8).collect();
            assert!(kinds.len() == 6 - 1, "every event kind but Stats: {kinds:x?}");
            for (i, (r, e)) in rtl.iter().zip(&emu).enumerate() {
                assert_eq!(comparable(r), comparable(e), "event {i}");
            }
            assert_eq!(rtl.len(), emu.len());
            eprintln!(
                "{} entries, {} events equal; RTL card {} cycles",
                entries.len(),
                emu.len(),
                card.cycle
            );
        })
        .unwrap()
        .join()
        .unwrap();
}
