//! Runs `examples/keeper.rs` (the keeper built from the library) and checks its report
//! against the reference: the final breach bitmap is the reference scan of the demo book at
//! the crash's last prices, the breach events end in that bitmap, and every order line in the
//! executor's file is for an account the keeper saw breached.

#[path = "../examples/keeper.rs"]
#[allow(dead_code)]
mod example;

use liqscan_hdl::abi::PriceEntry;
use liqscan_host::{bitmap, demo_book, reference};

#[test]
fn the_example_keeper_matches_the_reference_and_sends_its_orders() {
    let dir = tempfile::tempdir().unwrap();
    let orders = dir.path().join("orders.jsonl");
    let r = example::keep(&orders).expect("the example keeper runs");

    // The reference at the end of the crash.
    let table = demo_book::venue();
    let book = demo_book::book(&table, 2000, 7);
    let mut prices = vec![PriceEntry::default(); table.len()];
    for t in demo_book::price_path(&table, 7) {
        prices[t.asset as usize] = t.entry;
    }
    let terms: Vec<_> = book.iter().map(|a| a.terms.clone()).collect();
    let want = reference::scan(&terms, &prices);
    assert_eq!(r.report.breach, want.breach, "final breach bitmap");
    assert_eq!(r.report.at_risk, want.at_risk, "final at-risk bitmap");
    let breached_at_end = (0..book.len()).filter(|&s| bitmap::get(&want.breach, s)).count();
    assert!(breached_at_end > 0 && r.breaches() > 0, "the crash breaches accounts");

    // Every event, tick by tick, is the reference's: nothing before every asset the book
    // holds has a price (an unpriced collateral reads as worth 0), then the bitmap at that
    // moment in full, then each tick's changes.
    let mut held = vec![false; table.len()];
    for t in terms.iter().flatten() {
        held[t.asset as usize] = true;
    }
    let (mut priced, mut seen) = (vec![false; table.len()], vec![0u64; want.breach.len()]);
    let mut prices = vec![PriceEntry::default(); table.len()];
    let mut expected = Vec::new();
    for (i, t) in demo_book::price_path(&table, 7).iter().enumerate() {
        prices[t.asset as usize] = t.entry;
        priced[t.asset as usize] = true;
        if held.iter().zip(&priced).any(|(h, p)| *h && !p) {
            continue;
        }
        let now = reference::scan(&terms, &prices).breach;
        for s in 0..book.len() {
            if bitmap::get(&now, s) != bitmap::get(&seen, s) {
                // Feed sequence: the book's upserts, then the ticks.
                expected.push(((book.len() + i) as u64, s as u32, bitmap::get(&now, s)));
            }
        }
        seen = now;
    }
    let mut got: Vec<(u64, u32, bool)> = r.changes.iter().map(|c| (c.seq, c.slot, c.breached)).collect();
    got.sort_unstable();
    assert_eq!(got.len(), expected.len(), "breach events against the reference's");
    assert!(
        got == expected,
        "breach events differ from the reference's (first: {:?})",
        got.iter().zip(&expected).find(|(a, b)| a != b)
    );

    // Replaying the events gives the same final set.
    let mut state = vec![false; book.len()];
    for c in &r.changes {
        assert_ne!(state[c.slot as usize], c.breached, "an event changes its slot");
        state[c.slot as usize] = c.breached;
    }
    for (s, b) in state.iter().enumerate() {
        assert_eq!(*b, bitmap::get(&want.breach, s), "slot {s} after the events");
    }

    // The orders reached the executor: one line per send, each for a breached account.
    let d = r.dispatch.as_ref().expect("a dispatch stage");
    let text = std::fs::read_to_string(&orders).expect("the orders file");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("an order line")).collect();
    assert!(!lines.is_empty(), "orders were sent");
    assert_eq!(lines.len() as u64, d.stats.sends, "lines against sends");
    assert!(d.stats.orders >= 1 && d.stats.orders == r.orders());
    let ever: std::collections::HashSet<u32> =
        r.changes.iter().filter(|c| c.breached).map(|c| c.slot).collect();
    for o in &lines {
        let slot = o["slot"].as_u64().expect("slot") as u32;
        assert!(ever.contains(&slot), "order for slot {slot}, never breached");
    }
}
