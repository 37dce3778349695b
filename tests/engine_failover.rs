//! The fail-over engine around the card: the card (in-process, over a shared-memory link; the
//! Rust emulation, and the card's own RTL through Verilator) goes silent after a random number
//! of commands; the engine fails over to its software mirror, and after every message its
//! bitmaps equal `reference::scan` of every message so far, and a `Step` over it has seen every
//! change (nothing lost).
//!
//! ```text
//!  random messages ──> FailoverEngine( LinkEngine ──link file──> CardThread(SoftwareCard | VerilatedCard, silent after n) )
//!                         │                                         after every message:
//!                         └── software mirror on the fault ──> bitmaps == reference::scan
//! ```

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use liqscan_hdl::abi::{Coeff, PriceEntry};
use liqscan_host::engine::failover::FailoverEngine;
use liqscan_host::engine::{ScanEngine, Step};
use liqscan_host::link::{CardLink, LinkEngine, LinkMemory, LinkOptions};
use liqscan_host::reference;
use liqscan_sim::card::{CardThread, Fault, ServeOptions, SoftwareCard, VerilatedCard};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

mod common;

use common::{Msg, price};

const SLOTS: usize = 96;
const ASSETS: usize = 5;

/// An account: one collateral and one debt asset, or (one in five) both legs of one asset,
/// which the card cannot hold and the link keeps on the host.
fn account() -> impl Strategy<Value = Vec<Coeff>> {
    (0..ASSETS as u16, 0..ASSETS as u16, 100..10_000i32, 50..110i32, 0..5u8).prop_map(
        |(c, d, coll, pct, kind)| {
            let debt = -(coll / 100 * pct).max(1);
            if kind == 0 || c == d {
                vec![Coeff { asset: c, coeff: coll }, Coeff { asset: c, coeff: debt }]
            } else {
                vec![Coeff { asset: c, coeff: coll }, Coeff { asset: d, coeff: debt }]
            }
        },
    )
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        3 => (0..SLOTS as u32, account()).prop_map(|(s, t)| Msg::Upsert(s, t)),
        1 => (0..SLOTS as u32).prop_map(Msg::Remove),
        5 => (0..ASSETS as u16, 500..1500u32).prop_map(|(a, p)| Msg::Tick(a, p)),
        1 => proptest::collection::vec(500..1500u32, ASSETS).prop_map(Msg::Batch),
    ]
}

/// Opening the link takes a fence; the engine's start-up a parameter command, a `SetGroup`
/// emptying each group of `lanes` slots, a batch tick entry per asset and a fence; the card
/// goes silent a random number of commands later. (Without the link's fence,
/// `after_start = 0` silenced the card inside the start-up.)
const fn start_up(lanes: usize) -> u64 {
    1 + 1 + SLOTS.div_ceil(lanes) as u64 + ASSETS as u64 + 1
}

fn silent_after(lanes: usize, after_start: u64) -> ServeOptions {
    ServeOptions { fault: Fault::SilentAfter(start_up(lanes) + after_start), ..Default::default() }
}

/// Replays `msgs` through a fail-over engine over the card serving `path`, checking the
/// bitmaps against the reference and the news a `Step` saw after every message. `timeout`
/// must outlast a scheduler stall of the card thread; a silent card costs it once a case.
/// Returns whether the engine failed over.
fn replay(path: &Path, msgs: &[Msg], timeout: Duration) -> Result<bool, TestCaseError> {
    let link_opts = LinkOptions { timeout, ..Default::default() };
    let link = CardLink::open(LinkMemory::shm_open(path).unwrap(), link_opts).unwrap();
    let mut e = FailoverEngine::new(match LinkEngine::new(link, SLOTS, ASSETS) {
        Ok(l) => Box::new(l),
        Err(err) => panic!("the card answers through start-up: {err}"),
    });
    let mut step = Step::new(&mut e);
    let mut terms: Vec<Vec<Coeff>> = vec![Vec::new(); SLOTS];
    let mut prices = vec![PriceEntry::default(); ASSETS];
    for (i, m) in msgs.iter().enumerate() {
        match m {
            Msg::Upsert(s, t) => {
                e.upsert(*s, t).unwrap();
                terms[*s as usize] = t.clone();
            }
            Msg::Remove(s) => {
                e.remove(*s).unwrap();
                terms[*s as usize].clear();
            }
            Msg::Tick(a, p) => {
                e.tick(*a, price(*p)).unwrap();
                prices[*a as usize] = price(*p);
            }
            Msg::Batch(ps) => {
                let v: Vec<PriceEntry> = ps.iter().map(|&p| price(p)).collect();
                e.batch_tick(&v).unwrap();
                prices = v;
            }
        }
        let want = reference::scan(&terms, &prices);
        prop_assert_eq!(e.breach(), &want.breach[..], "breach after message {} ({:?}) on {}", i, m, e.name());
        prop_assert_eq!(e.at_risk(), &want.at_risk[..], "at risk after message {}", i);
        prop_assert_eq!(e.prices(), &prices[..]);
        step.scan(&mut e);
        let (b, a) = step.seen();
        prop_assert_eq!((b, a), (&want.breach[..], &want.at_risk[..]), "news lost after message {}", i);
    }
    prop_assert!(e.failovers().len() <= 1);
    prop_assert_eq!(e.is_card(), e.failovers().is_empty());
    prop_assert_eq!(e.name(), if e.is_card() { "card" } else { "software" });
    if let Some(f) = e.failovers().first() {
        prop_assert!(["upsert", "remove", "tick", "batch tick"].contains(&f.call), "{}", f.call);
        prop_assert!(f.why.contains("did not answer"), "{}", f.why);
    }
    Ok(!e.is_card())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn failover_engine_equals_the_reference_after_every_message_when_the_card_goes_silent(
        after_start in 0u64..160,
        msgs in proptest::collection::vec(msg(), 20..80),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("link");
        let card = CardThread::spawn(
            LinkMemory::shm_create(&path, 256).unwrap(),
            Box::new(SoftwareCard::new(SLOTS, ASSETS)),
            silent_after(32, after_start),
            None,
        );
        replay(&path, &msgs, Duration::from_millis(100))?;
        drop(card);
    }
}

/// The same with the card's RTL through Verilator. The RTL is clocked from Rust (under a
/// million cycles a second): fewer, shorter cases, and the run must see both ends (a card that
/// went silent mid-replay and one that answered to the end), or it proved nothing.
#[test]
fn failover_engine_equals_the_reference_when_the_verilated_card_goes_silent() {
    if !common::verilator_present() {
        return;
    }
    let (silenced, answered, case) = (Cell::new(0), Cell::new(0), Cell::new(0u64));
    let mut runner = TestRunner::new(ProptestConfig { cases: 8, ..ProptestConfig::default() });
    let cases = (0u64..60, proptest::collection::vec(msg(), 10..40));
    runner
        .run(&cases, |(after_start, msgs)| {
            // Every other case the card may answer every command, so that both ends are seen
            // whatever the draw (a packed upsert takes several commands, so a card silenced
            // within 60 of them rarely lasts a whole replay).
            case.set(case.get() + 1);
            let after_start = if case.get() % 2 == 0 { 1 << 20 } else { after_start };
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("link");
            let mem = LinkMemory::shm_create(&path, 256).unwrap();
            let (rtl, _) = VerilatedCard::new(&mem).unwrap();
            let card = CardThread::spawn_verilated(mem, rtl, silent_after(16, after_start), None);
            let failed_over = replay(&path, &msgs, Duration::from_millis(500))?;
            let report = card.stop();
            // The RTL's own count: it took the commands it was allowed and no more.
            prop_assert!(report.commands <= start_up(16) + after_start, "{:?}", report);
            prop_assert!(!failed_over || report.commands == start_up(16) + after_start, "{:?}", report);
            let count = if failed_over { &silenced } else { &answered };
            count.set(count.get() + 1);
            Ok(())
        })
        .unwrap();
    let (silenced, answered) = (silenced.get(), answered.get());
    assert!(silenced > 0 && answered > 0, "{silenced} cases failed over, {answered} stayed on the card");
}
