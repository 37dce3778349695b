//! A card fails over to the software engine while it holds accounts the card cannot (two legs
//! of one asset, more than 16 terms) on the host: the software engine then has every account,
//! and its bitmaps equal the reference's.

use std::time::Duration;

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::ScanEngine;
use liqscan_host::engine::failover::FailoverEngine;
use liqscan_host::link::{CardLink, LinkEngine, LinkMemory, LinkOptions};

use liqscan_host::reference;
use liqscan_sim::card::{CardThread, ServeOptions, SoftwareCard};

#[test]
fn failover_keeps_the_accounts_held_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shm");
    let card = CardThread::spawn(
        LinkMemory::shm_create(&path, 512).unwrap(),
        Box::new(SoftwareCard::new(64, 30)),
        ServeOptions::default(),
        None,
    );
    let opts = LinkOptions { timeout: Duration::from_millis(200), ..Default::default() };
    let link = CardLink::open(LinkMemory::shm_open(&path).unwrap(), opts).unwrap();
    let e = LinkEngine::new(link, 64, 30).unwrap();
    let mut e = FailoverEngine::new(Box::new(e));
    let p = |s: u32| PriceEntry {
        spot: QuotedPrice { asset: s, liability: s + 1 },
        stressed: QuotedPrice { asset: s - 5, liability: s + 6 },
    };
    let c = |a: u16, k: i32| Coeff { asset: a, coeff: k };
    let accounts: Vec<Vec<Coeff>> = (0..64)
        .map(|s| match s % 3 {
            0 => vec![c(0, 10), c(0, -9 - (s % 5)), c(1, 3)],
            1 => (0..20).map(|a| c(a, if a % 2 == 0 { 5 } else { -5 - (s % 3) })).collect(),
            _ => vec![c(2, 7), c(3, -6)],
        })
        .collect();
    let prices: Vec<PriceEntry> = (0..30).map(|a| p(100 + a)).collect();
    e.batch_tick(&prices).unwrap();
    for (s, t) in accounts.iter().enumerate() {
        e.upsert(s as u32, t).unwrap();
    }
    let held = accounts.iter().filter(|t| !liqscan_hdl::abi::card_holds(t)).count();
    assert!(held > 40, "{held} accounts the card cannot hold");
    let mut want_prices = prices.clone();
    e.tick(0, p(120)).unwrap();
    want_prices[0] = p(120);
    assert!(e.is_card());
    let want = reference::scan(&accounts, &want_prices);
    assert_eq!(e.breach(), &want.breach[..]);
    assert!(want.breach.iter().any(|w| *w != 0));
    // The card stops: the next tick faults on the watchdog and runs on the software mirror.
    drop(card);
    e.tick(1, p(90)).unwrap();
    want_prices[1] = p(90);
    assert!(!e.is_card());
    assert_eq!(e.name(), "software");
    assert_eq!(e.failovers().len(), 1, "{:?}", e.failovers());
    assert_eq!(e.failovers()[0].call, "tick");
    assert!(e.failovers()[0].why.contains("did not answer"), "{}", e.failovers()[0].why);
    let want = reference::scan(&accounts, &want_prices);
    assert_eq!(e.breach(), &want.breach[..]);
    assert_eq!(e.at_risk(), &want.at_risk[..]);
}
