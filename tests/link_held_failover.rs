//! A card fails over to the software engine while it holds accounts the card cannot (two legs
//! of one asset, more than 16 terms) on the host: the software engine then has every account,
//! and its bitmaps equal the reference's.

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::link::{CardLink, LinkEngine, LinkMemory, LinkOptions};
use liqscan_host::pipeline::{Backend, Book, failover};

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
    let link = CardLink::open(LinkMemory::shm_open(&path).unwrap(), LinkOptions::default()).unwrap();
    let mut e = LinkEngine::new(link, 64, 30).unwrap();
    let mut b = Book::new(64, 30);
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
    b.prices = prices.clone();
    for (s, t) in accounts.iter().enumerate() {
        e.upsert(s as u32, t).unwrap();
        b.terms[s] = t.clone();
    }
    e.tick(0, p(120)).unwrap();
    b.prices[0] = p(120);
    assert!(e.host_held() > 40);
    let want = reference::scan(&accounts, &b.prices);
    assert_eq!(e.breach(), &want.breach[..]);
    assert!(want.breach.iter().any(|w| *w != 0));
    match failover(Backend::Card(Box::new(e), b)) {
        Backend::Software(sw) => {
            use liqscan_host::engine::ScanEngine;
            assert_eq!(sw.breach(), &want.breach[..]);
            assert_eq!(sw.at_risk(), &want.at_risk[..]);
        }
        _ => panic!("no fail-over"),
    }
    drop(card);
}
