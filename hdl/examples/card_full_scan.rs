//! Loads a packed book of `N` accounts (default 8,192) with `T` terms each (default 4) into the
//! rust-hdl simulation of the whole card (front end and core, through the command ring), runs a
//! full scan and prints its `ScanDone` cycles (from the core taking the scan command to the
//! packer taking its last word) and the cycles of the scan's entry and a fence behind it, from
//! posting to the `FenceDone` read (with `CardSim`'s host: doorbells and polls now and then).
//! `cargo run --release -p liqscan-hdl --example card_full_scan -- [N] [T]`. A measurement, not
//! a test: the load is one ring entry per account, a few hundred thousand card cycles.

use liqscan_hdl::abi::config::{CARD_ASSETS, LANES, TERM_SLOTS};
use liqscan_hdl::abi::ring::{TERMS_PER_ENTRY, evt_kind};
use liqscan_hdl::abi::{Coeff, Command, Event, EventEntry, PriceEntry, QuotedPrice};
use liqscan_hdl::core::driver::packed_extents;
use liqscan_hdl::front::axi::AxiTiming;
use liqscan_hdl::front::card_driver::CardSim;

// A small deterministic generator (xorshift): the book only needs to be varied, not random.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(8192);
    let terms = args.get(1).copied().unwrap_or(4);
    assert!(terms <= TERMS_PER_ENTRY, "at most {TERMS_PER_ENTRY} terms (one entry per account)");
    let assets = 64.min(CARD_ASSETS);
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut q = || QuotedPrice { asset: next(&mut s) as u32 >> 4, liability: next(&mut s) as u32 >> 4 };
    let prices: Vec<PriceEntry> = (0..assets).map(|_| PriceEntry { spot: q(), stressed: q() }).collect();
    let extents = packed_extents(&vec![terms; n]).unwrap_or_else(|e| panic!("{n} x {terms}: {e}"));
    let mut cmds = vec![];
    for (a, &price) in prices.iter().enumerate() {
        cmds.push(Command::BatchTick { asset: a as u16, price, last: false });
    }
    for i in 0..n {
        let mut t = [Coeff::default(); TERMS_PER_ENTRY];
        for (k, c) in t.iter_mut().take(terms).enumerate() {
            let v = (next(&mut s) as u32 >> 12) as i32 - (1 << 19);
            *c = Coeff { asset: ((i * 7 + k * 13) % assets) as u16, coeff: if v == 0 { 1 } else { v } };
        }
        let e = extents[i / LANES];
        cmds.push(Command::AccountTerms { account: i as u32, word: e.first, count: terms as u8, terms: t });
    }
    for (g, e) in extents.iter().enumerate() {
        cmds.push(Command::SetGroup { group: g as u32, first: e.first, len: e.len });
    }
    cmds.push(Command::Params { active_accounts: n as u32, term_slots: TERM_SLOTS as u32 });
    cmds.push(Command::Fence { token: 1 });
    let entries: Vec<_> = cmds.iter().enumerate().map(|(i, c)| c.encode_words(i as u32)).collect();
    let mut card = CardSim::new(64, 64, AxiTiming { latency: 1..=1, stall_percent: 0 }, 1);
    card.bring_up().expect("bring-up");
    let t = std::time::Instant::now();
    let events = card.run(&entries);
    let load_cycles = card.cycle;
    let errors = events.iter().filter(|w| w[0] & 0xFF == evt_kind::ERROR as u32).count();
    assert_eq!(errors, 0, "the load was refused: {errors} Error events");
    // The full scan, then a fence: from the scan's entry posted to its ScanDone read.
    let seq = entries.len() as u32;
    let scan = [Command::ScanFull.encode_words(seq), Command::Fence { token: 2 }.encode_words(seq + 1)];
    let c0 = card.cycle;
    let events = card.run(&scan);
    let mut done = None;
    for w in &events {
        if let Ok(EventEntry { event: Event::ScanDone { cycles, groups, .. }, .. }) =
            EventEntry::decode_words(w)
        {
            done = Some((cycles, groups));
        }
    }
    let (cycles, groups) = done.expect("a ScanDone");
    println!(
        "{n} x {terms}: load {} entries in {load_cycles} cycles; full scan: ScanDone.cycles {cycles} \
         ({groups} groups, {} events), ScanFull + fence {} cycles in all; {:.1} s of simulation",
        entries.len(),
        events.len(),
        card.cycle - c0,
        t.elapsed().as_secs_f64()
    );
}
