//! The router over the emulated card: a book larger than the card (a `SoftwareCard` of 128
//! accounts behind the shared-memory link and the unchanged `LinkEngine`), accounts of every
//! shape (some the card cannot hold), random deltas and ticks: after every message the router's
//! bitmaps equal the software engine's alone, with the card's part forced to the card, forced
//! to software, or chosen by the cost model; and when the card goes silent mid-run.
//!
//! ```text
//!  random messages ──> RouterEngine ── rest ──> SoftwareEngine (book slots)
//!                          └─ card part ──> FailoverEngine(LinkEngine ──link file──> CardThread(SoftwareCard, 128))
//!                                       └─> software mirror                     after every message:
//!                                                                               bitmaps == SoftwareEngine alone
//! ```

use std::path::Path;
use std::time::Duration;

use liqscan_hdl::abi::{Coeff, PriceEntry};
use liqscan_host::engine::router::{CardLimits, DEVICE_CLASSES, Route, RouterEngine};
use liqscan_host::engine::{ScanEngine, SoftwareEngine, Step};
use liqscan_host::link::{CardLink, LinkEngine, LinkMemory, LinkOptions};
use liqscan_sim::card::{CardThread, Fault, ServeOptions, SoftwareCard};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod common;

use common::{Msg, price};

const SLOTS: usize = 400;
const CARD: usize = 128;
const ASSETS: usize = 10;

/// A pair (most), three terms, both legs of one asset, or 14-17 terms (every asset as
/// collateral, some as debt too): the last two shapes the card cannot always hold.
fn account() -> impl Strategy<Value = Vec<Coeff>> {
    (0..ASSETS as u16, 1..ASSETS as u16, 100..10_000i32, 40..120i32, 0..12u8).prop_map(
        |(c, step, coll, pct, kind)| {
            let debt = -(coll / 100 * pct).max(1);
            let d = (c + step) % ASSETS as u16;
            let e = (d + 1) % ASSETS as u16;
            match kind {
                0 => vec![Coeff { asset: c, coeff: coll }, Coeff { asset: c, coeff: debt }],
                1 => (0..ASSETS as u16)
                    .map(|a| Coeff { asset: a, coeff: coll / ASSETS as i32 + 1 })
                    .chain((0..4 + c % 4).map(|a| Coeff { asset: a, coeff: debt / 6 - 1 }))
                    .collect(),
                2 | 3 if e != c => vec![
                    Coeff { asset: c, coeff: coll },
                    Coeff { asset: e, coeff: coll / 2 },
                    Coeff { asset: d, coeff: debt },
                ],
                _ => vec![Coeff { asset: c, coeff: coll }, Coeff { asset: d, coeff: debt }],
            }
        },
    )
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        4 => (0..SLOTS as u32, account()).prop_map(|(s, t)| Msg::Upsert(s, t)),
        1 => (0..SLOTS as u32).prop_map(Msg::Remove),
        6 => (0..ASSETS as u16, 500..1500u32).prop_map(|(a, p)| Msg::Tick(a, p)),
        1 => proptest::collection::vec(500..1500u32, ASSETS).prop_map(Msg::Batch),
    ]
}

fn route() -> impl Strategy<Value = Route> {
    prop_oneof![Just(Route::Card), Just(Route::Software), Just(Route::Measured)]
}

/// A book filled past the card's room first, so every case has both partitions.
fn load() -> Vec<Msg> {
    (0..SLOTS as u32 / 2)
        .map(|s| {
            let (c, d) = ((s % ASSETS as u32) as u16, ((s + 3) % ASSETS as u32) as u16);
            Msg::Upsert(s * 2, vec![Coeff { asset: c, coeff: 1000 }, Coeff { asset: d, coeff: -900 }])
        })
        .collect()
}

/// Replays `msgs` through a router over the card serving `path` and through the software
/// engine alone; returns the router.
fn replay(path: &Path, route: Route, msgs: &[Msg], timeout: Duration) -> Result<RouterEngine, TestCaseError> {
    let link =
        CardLink::open(LinkMemory::shm_open(path).unwrap(), LinkOptions { timeout, ..Default::default() })
            .unwrap();
    let limits = CardLimits::of(&link.config());
    prop_assert_eq!(limits.accounts, CARD);
    let card = LinkEngine::new(link, CARD, ASSETS).expect("the card answers through start-up");
    let mut r = RouterEngine::new(Box::new(card), limits, DEVICE_CLASSES[0], SLOTS, ASSETS)
        .unwrap()
        .with_route(route);
    let mut sw = SoftwareEngine::new(SLOTS, ASSETS);
    let mut step = Step::new(&mut r);
    for (i, m) in load().iter().chain(msgs).enumerate() {
        match m {
            Msg::Upsert(s, t) => {
                r.upsert(*s, t).unwrap();
                sw.upsert(*s, t).unwrap();
            }
            Msg::Remove(s) => {
                r.remove(*s).unwrap();
                sw.remove(*s).unwrap();
            }
            Msg::Tick(a, p) => {
                r.tick(*a, price(*p)).unwrap();
                sw.tick(*a, price(*p)).unwrap();
            }
            Msg::Batch(ps) => {
                let v: Vec<PriceEntry> = ps.iter().map(|&p| price(p)).collect();
                r.batch_tick(&v).unwrap();
                sw.batch_tick(&v).unwrap();
            }
        }
        prop_assert_eq!(r.breach(), sw.breach(), "breach after message {} ({:?})", i, m);
        prop_assert_eq!(r.at_risk(), sw.at_risk(), "at risk after message {}", i);
        step.scan(&mut r);
        prop_assert_eq!(step.seen(), (sw.breach(), sw.at_risk()), "news lost after message {}", i);
    }
    let st = r.routes().unwrap();
    prop_assert_eq!(st.card_capacity, CARD);
    prop_assert!(st.card_accounts <= CARD && st.host_accounts > 0, "{:?}", st);
    let ticks = msgs.iter().filter(|m| matches!(m, Msg::Tick(..))).count() as u64;
    prop_assert_eq!(st.card_ticks.total() + st.software_ticks.total(), ticks);
    Ok(r)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// A card that answers: the router equals the software engine alone whichever side serves.
    #[test]
    fn router_over_the_emulated_card_equals_the_software_engine(
        route in route(),
        msgs in proptest::collection::vec(msg(), 30..150),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("link");
        let card = CardThread::spawn(
            LinkMemory::shm_create(&path, 256).unwrap(),
            Box::new(SoftwareCard::new(CARD, ASSETS)),
            ServeOptions::default(),
            None,
        );
        let r = replay(&path, route, &msgs, Duration::from_secs(5))?;
        prop_assert!(r.is_card() && r.failovers().is_empty());
        let st = r.routes().unwrap();
        if route == Route::Card {
            prop_assert_eq!(st.software_ticks.total(), 0);
        }
        drop(card);
    }

    /// The card goes silent after a random number of commands (start-up takes about 150):
    /// nothing is lost, and the card's part moves to software.
    #[test]
    fn router_over_a_card_that_goes_silent_equals_the_software_engine(
        route in prop_oneof![Just(Route::Card), Just(Route::Measured)],
        silent_after in 150u64..700,
        msgs in proptest::collection::vec(msg(), 30..150),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("link");
        let opts = ServeOptions { fault: Fault::SilentAfter(silent_after), ..Default::default() };
        let card = CardThread::spawn(
            LinkMemory::shm_create(&path, 256).unwrap(),
            Box::new(SoftwareCard::new(CARD, ASSETS)),
            opts,
            None,
        );
        let r = replay(&path, route, &msgs, Duration::from_millis(100))?;
        prop_assert!(r.failovers().len() <= 1);
        prop_assert_eq!(r.is_card(), r.failovers().is_empty());
        if !r.is_card() {
            prop_assert!(r.failovers()[0].why.contains("did not answer"), "{}", r.failovers()[0].why);
        }
        drop(card);
    }
}
