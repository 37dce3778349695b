//! The Verilated card (`VerilatedCard`, the whole card's Verilog under Verilator) after a
//! group elsewhere was placed: account 64 (group 4) must leave the at-risk set at the second
//! batch tick when account 27 (group 1) was placed between the two. The full scan skips the
//! empty groups 2, 3 and 5, so the card words it reports (0 and 2) are not consecutive; the
//! event packer once sent them as one `Bitmap` entry from word 0, word 2's bits landing on
//! word 1 and word 2 left stale on the host.

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::ScanEngine;
use liqscan_host::link::{CardLink, LinkEngine, LinkMemory, LinkOptions};
use liqscan_host::reference;
use liqscan_sim::card::{CardThread, ServeOptions, VerilatedCard};
use std::time::Duration;

fn price(p: u32) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: p, liability: p + p / 50 },
        stressed: QuotedPrice { asset: p - p / 10, liability: p + p / 8 },
    }
}

#[test]
fn verilated_card_rescans_a_group_after_another_group_moved() {
    if !std::path::Path::new("/usr/bin/verilator").exists()
        && std::process::Command::new("verilator").arg("--version").output().is_err()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("link");
    let mem = LinkMemory::shm_create(&path, 256).unwrap();
    let (rtl, _) = VerilatedCard::new(&mem).unwrap();
    let _card = CardThread::spawn_verilated(mem, rtl, ServeOptions::default(), None);
    let link = CardLink::open(
        LinkMemory::shm_open(&path).unwrap(),
        LinkOptions { timeout: Duration::from_secs(5), ..Default::default() },
    )
    .unwrap();
    let mut e = LinkEngine::new(link, 96, 5).unwrap();
    let mut terms = vec![vec![]; 96];
    let t64 = vec![Coeff { asset: 3, coeff: 3363 }, Coeff { asset: 4, coeff: -2706 }];
    let t27 = vec![Coeff { asset: 4, coeff: 2660 }, Coeff { asset: 2, coeff: -2392 }];
    e.upsert(64, &t64).unwrap();
    terms[64] = t64;
    let b1: Vec<PriceEntry> = [590, 1385, 1259, 1103, 1336].iter().map(|&p| price(p)).collect();
    e.batch_tick(&b1).unwrap();
    let w = reference::scan(&terms, &b1);
    assert_eq!(e.at_risk(), &w.at_risk[..], "after the first batch tick");
    e.upsert(27, &t27).unwrap();
    terms[27] = t27;
    let b2: Vec<PriceEntry> = [990, 1314, 691, 1002, 918].iter().map(|&p| price(p)).collect();
    e.batch_tick(&b2).unwrap();
    let w = reference::scan(&terms, &b2);
    assert_eq!(e.breach(), &w.breach[..], "after the second batch tick");
    assert_eq!(e.at_risk(), &w.at_risk[..], "after the second batch tick");
}
