//! A restart rebuilds the recovered book in an empty engine from the book journal's reload
//! messages, and the dispatcher sees the engine's scan after each one. Every scan on the way
//! must show only breaches the recovered book has: a breach that shows and clears again during
//! the reload is a liquidation ordered for an account that is not breached (the kill drill
//! found one when a debt asset was priced before its collateral).

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::{ScanEngine, SoftwareEngine};
use liqscan_host::journal::keeper::BookJournal;
use liqscan_host::journal::{FsyncPolicy, JournalConfig};
use liqscan_host::pipeline::FeedMsg;
use proptest::prelude::*;

const ASSETS: usize = 4;
const SLOTS: usize = 24;

fn tick(asset: u16, p: u32) -> FeedMsg {
    let spot = QuotedPrice { asset: p, liability: p };
    let stressed = QuotedPrice { asset: p * 9 / 10, liability: p };
    FeedMsg::Tick { asset, price: PriceEntry { spot, stressed } }
}

fn account() -> impl Strategy<Value = Vec<Coeff>> {
    // Distinct assets, each with a signed coefficient: collateral and debt mixed.
    proptest::sample::subsequence((0..ASSETS as u16).collect::<Vec<_>>(), 1..=ASSETS).prop_flat_map(
        |assets| {
            let n = assets.len();
            (Just(assets), proptest::collection::vec(-1_000_000i32..1_000_000, n)).prop_map(|(a, c)| {
                a.into_iter().zip(c).map(|(asset, coeff)| Coeff { asset, coeff }).collect()
            })
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn reload_scans_show_no_breach_the_recovered_book_lacks(
        book in proptest::collection::vec(proptest::option::of(account()), SLOTS),
        prices in proptest::collection::vec(1u32..100_000, ASSETS),
        first_ticks_first in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = JournalConfig { fsync: FsyncPolicy::Never, segment_bytes: 1 << 20, snapshot_every: None };
        {
            let (mut bj, _) = BookJournal::open(dir.path(), SLOTS, ASSETS, cfg.clone()).unwrap();
            let ticks = prices.iter().enumerate().map(|(a, &p)| tick(a as u16, p));
            let upserts = book.iter().enumerate().filter_map(|(s, t)| t.as_ref().map(|t| FeedMsg::upsert(s as u32, t)));
            let msgs: Vec<FeedMsg> =
                if first_ticks_first { ticks.chain(upserts).collect() } else { upserts.chain(ticks).collect() };
            for (i, m) in msgs.iter().enumerate() {
                bj.record(m, i as i64).unwrap();
            }
        }
        let (bj, _) = BookJournal::open(dir.path(), SLOTS, ASSETS, cfg).unwrap();
        let reload = bj.reload_messages();
        let mut e = SoftwareEngine::new(SLOTS, ASSETS);
        let mut seen = vec![0u64; e.breach().len()];
        for m in &reload {
            match *m {
                FeedMsg::Tick { asset, price } => e.tick(asset, price).unwrap(),
                FeedMsg::Upsert { slot, n, terms } => e.upsert(slot, &terms[..n as usize]).unwrap(),
                FeedMsg::Remove { slot } => e.remove(slot).unwrap(),
                FeedMsg::End => {}
            }
            for (s, b) in seen.iter_mut().zip(e.breach()) {
                *s |= b;
            }
        }
        // The recovered book, loaded whole, breaches exactly what the reload ends with.
        let mut whole = SoftwareEngine::new(SLOTS, ASSETS);
        for (a, &p) in prices.iter().enumerate() {
            let FeedMsg::Tick { asset, price } = tick(a as u16, p) else { unreachable!() };
            whole.tick(asset, price).unwrap();
        }
        for (s, t) in book.iter().enumerate() {
            if let Some(t) = t {
                whole.upsert(s as u32, t).unwrap();
            }
        }
        prop_assert_eq!(e.breach(), whole.breach());
        prop_assert_eq!(&seen[..], whole.breach(), "a breach showed during the reload that the book lacks");
    }
}
