//! Property tests: the software engine against the reference over random books and random
//! sequences of upserts, removes, ticks and batch ticks, extremes and near-ties included.
//!
//! ```text
//!   random ops ──> SoftwareEngine ──> bitmaps, changed_words, health
//!        \                                   ||  (equal after every op)
//!         └──> model (terms by slot, prices) ──> reference::scan / reference::health
//! ```

use std::collections::BTreeSet;

use liqscan_hdl::abi::{COEFF_MAX, COEFF_MIN, Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::{
    AccountHealth, EngineError, Kernel, Layout, Relabelled, Routing, ScanEngine, SoftwareEngine, WindowPolicy,
};
use liqscan_host::reference;
use proptest::prelude::*;

/// A coefficient: extremes, tiny values (ties are likely) and anything in range.
fn coeff() -> impl Strategy<Value = i32> {
    prop_oneof![
        2 => -3i32..=3,
        1 => Just(COEFF_MAX),
        1 => Just(COEFF_MIN),
        1 => prop_oneof![Just(COEFF_MAX - 1), Just(COEFF_MIN + 1), Just(1 << 16), Just(-(1 << 16))],
        2 => COEFF_MIN..=COEFF_MAX,
    ]
}

/// A price: zero, one, the maximum, tiny values and anything.
fn price(small: bool) -> impl Strategy<Value = u32> {
    if small {
        (0u32..=4).boxed()
    } else {
        prop_oneof![
            1 => Just(0u32),
            1 => Just(u32::MAX),
            1 => prop_oneof![Just(1u32), Just(65535), Just(65536), Just(u32::MAX - 1)],
            2 => 0u32..=4,
            3 => any::<u32>(),
        ]
        .boxed()
    }
}

/// How far a nudge moves one price.
fn nudge() -> impl Strategy<Value = i64> {
    prop_oneof![3 => -2i64..=2, 1 => -(1i64 << 20)..=(1 << 20)]
}

fn nudged(p: &PriceEntry, d: &[i64; 4]) -> PriceEntry {
    let m = |x: u32, d: i64| (x as i64 + d).clamp(0, u32::MAX as i64) as u32;
    PriceEntry {
        spot: QuotedPrice { asset: m(p.spot.asset, d[0]), liability: m(p.spot.liability, d[1]) },
        stressed: QuotedPrice { asset: m(p.stressed.asset, d[2]), liability: m(p.stressed.liability, d[3]) },
    }
}

fn entry(small: bool) -> impl Strategy<Value = PriceEntry> {
    (price(small), price(small), price(small), price(small)).prop_map(|(a, l, sa, sl)| PriceEntry {
        spot: QuotedPrice { asset: a, liability: l },
        stressed: QuotedPrice { asset: sa, liability: sl },
    })
}

/// Valid terms: 0..=64 of them, often one collateral and one debt, sometimes an asset held on
/// both sides (two legs, which must not be netted), in any order.
fn terms(assets: u16) -> impl Strategy<Value = Vec<Coeff>> {
    let n = prop_oneof![
        1 => Just(0usize),
        2 => 1usize..=2,
        3 => Just(2usize),
        2 => 3usize..=16,
        1 => 17usize..=64,
    ];
    // How many assets get a second leg on the other side.
    let legs = prop_oneof![3 => Just(0usize), 1 => 1usize..=2, 1 => 3usize..=32];
    (
        n,
        legs,
        proptest::collection::vec(coeff(), 64),
        proptest::collection::vec(coeff(), 32),
        Just((0..assets).collect::<Vec<u16>>()).prop_shuffle(),
    )
        .prop_map(|(n, legs, cs, second, ids)| {
            let n = n.min(ids.len());
            let mut t: Vec<Coeff> =
                ids[..n].iter().zip(&cs).map(|(&asset, &coeff)| Coeff { asset, coeff }).collect();
            // Make two-term accounts one collateral and one debt most of the time: the pair path.
            if t.len() == 2 && cs[15] % 4 != 0 {
                t[0].coeff = t[0].coeff.saturating_abs().max(1);
                t[1].coeff = -t[1].coeff.saturating_abs().max(1);
            }
            let legs = legs.min(n).min(64 - n);
            if legs > 0 || n > 16 {
                // Accounts the card cannot hold take no zero coefficient (the software
                // contract, `check_terms_software`).
                for x in &mut t {
                    if x.coeff == 0 {
                        x.coeff = 1;
                    }
                }
            }
            if legs > 0 {
                for k in 0..legs {
                    let m = second[k].saturating_abs().max(1);
                    let coeff = if t[k].coeff > 0 { -m } else { m };
                    t.push(Coeff { asset: t[k].asset, coeff });
                }
            }
            t
        })
        .prop_flat_map(|t| Just(t).prop_shuffle())
}

/// Invalid terms for `assets` assets.
fn bad_terms(assets: u16) -> impl Strategy<Value = Vec<Coeff>> {
    prop_oneof![
        Just(vec![Coeff { asset: 0, coeff: i32::MIN }]),
        Just(vec![Coeff { asset: 0, coeff: 1 }, Coeff { asset: 0, coeff: 2 }]),
        Just(vec![Coeff { asset: 0, coeff: -1 }, Coeff { asset: 0, coeff: -1 }]),
        Just(vec![Coeff { asset: 0, coeff: 3 }, Coeff { asset: 0, coeff: -1 }, Coeff { asset: 0, coeff: 0 }]),
        Just(vec![Coeff { asset: assets, coeff: 1 }]),
        Just((0..65).map(|a| Coeff { asset: a % assets.max(1), coeff: 1 }).collect()),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Upsert(u32, Vec<Coeff>),
    Remove(u32),
    Tick(u16, PriceEntry),
    /// A tick moving each of the asset's four prices by a small amount (saturating): most
    /// accounts stay inside their windows, a few leave them.
    Nudge(u16, [i64; 4]),
    Batch(Vec<PriceEntry>),
    BadUpsert(u32, Vec<Coeff>),
    BadTick(u16, PriceEntry),
    BadBatch(Vec<PriceEntry>),
    /// Call changed_words here.
    Drain,
    /// Call loaded() here (may compact the arenas; later upserts grow packed lists).
    Loaded,
    /// A bulk load of several accounts (a slot may come twice: the later one wins).
    Load(Vec<(u32, Vec<Coeff>)>),
    /// A bulk load with one bad entry somewhere: refused whole.
    BadLoad(Vec<(u32, Vec<Coeff>)>),
}

fn op(slots: u32, assets: u16, small: bool) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..slots, terms(assets)).prop_map(|(s, t)| Op::Upsert(s, t)),
        2 => (0..slots).prop_map(Op::Remove),
        5 => (0..assets, entry(small)).prop_map(|(a, p)| Op::Tick(a, p)),
        4 => (0..assets, proptest::array::uniform4(nudge())).prop_map(|(a, d)| Op::Nudge(a, d)),
        2 => proptest::collection::vec(entry(small), assets as usize).prop_map(Op::Batch),
        1 => prop_oneof![
            (0..slots, bad_terms(assets)).prop_map(|(s, t)| Op::BadUpsert(s, t)),
            (slots..slots + 3, terms(assets)).prop_map(|(s, t)| Op::BadUpsert(s, t)),
        ],
        1 => (assets..assets + 3, entry(small)).prop_map(|(a, p)| Op::BadTick(a, p)),
        1 => (0..assets as usize + 3)
            .prop_filter("wrong length", move |n| *n != assets as usize)
            .prop_flat_map(move |n| proptest::collection::vec(entry(small), n))
            .prop_map(Op::BadBatch),
        3 => Just(Op::Drain),
        1 => Just(Op::Loaded),
        2 => proptest::collection::vec((0..slots, terms(assets)), 0..40).prop_map(Op::Load),
        1 => (
            proptest::collection::vec((0..slots, terms(assets)), 0..10),
            prop_oneof![
                (0..slots, bad_terms(assets)),
                (slots..slots + 3, terms(assets)),
            ],
            any::<prop::sample::Index>(),
        )
            .prop_map(|(mut v, bad, at)| {
                v.insert(at.index(v.len() + 1), bad);
                Op::BadLoad(v)
            }),
    ]
}

/// How the engine under test is built: kernel, layout, scan threads, tick routing.
#[derive(Clone, Copy, Debug)]
struct Setup {
    kernel: Kernel,
    layout: Layout,
    threads: usize,
    routing: Routing,
    /// Windows left by a tick beyond which it is served by a full scan and their renewal
    /// deferred (`None`: the engine's default, which these small books never reach).
    defer_after: Option<usize>,
    /// Renewals a tick makes from the backlog (`None`: the default; `Some(0)`: never, so every
    /// left window stays left and its account is recomputed by every tick).
    renewals: Option<usize>,
    /// How a tick finds the windows it left (these small books stay under the list length
    /// that `Measured` indexes by edge, so it scans lists; `Edges` covers the edge index).
    windows: WindowPolicy,
}

impl Setup {
    fn engine(self, slots: usize, assets: usize) -> SoftwareEngine {
        let e = SoftwareEngine::with_kernel(slots, assets, self.kernel)
            .with_layout(self.layout)
            .with_threads(self.threads)
            .with_routing(self.routing)
            .with_window_policy(self.windows);
        let e = match self.renewals {
            Some(n) => e.with_renewals_per_tick(n),
            None => e,
        };
        match self.defer_after {
            Some(n) => e.with_defer_after(n),
            None => e,
        }
    }
}

fn setup() -> impl Strategy<Value = Setup> {
    let ks = Kernel::available();
    (
        proptest::sample::select(ks),
        prop_oneof![Just(Layout::Auto), Just(Layout::Columns), Just(Layout::Rows)],
        prop_oneof![4 => Just(1usize), 1 => Just(2usize)],
        prop_oneof![Just(Routing::Measured), Just(Routing::Deltas), Just(Routing::FullScan)],
        prop_oneof![2 => Just(None), 1 => Just(Some(0usize)), 1 => Just(Some(3usize))],
        prop_oneof![Just(WindowPolicy::Measured), Just(WindowPolicy::Edges), Just(WindowPolicy::Lists)],
        prop_oneof![2 => Just(None), 1 => Just(Some(0usize)), 1 => Just(Some(1usize))],
    )
        .prop_map(|(kernel, layout, threads, routing, defer_after, windows, renewals)| Setup {
            renewals,
            kernel,
            layout,
            threads,
            routing,
            defer_after,
            windows,
        })
}

fn case() -> impl Strategy<Value = (u32, u16, Setup, Vec<Op>)> {
    let assets = prop_oneof![3 => 1u16..=20, 1 => 33u16..=70];
    (1u32..=200, assets, any::<bool>(), setup()).prop_flat_map(|(slots, assets, small, setup)| {
        (Just(slots), Just(assets), Just(setup), proptest::collection::vec(op(slots, assets, small), 1..80))
    })
}

fn word_diff(a: &reference::Bitmaps, b: &reference::Bitmaps) -> BTreeSet<u32> {
    (0..a.breach.len())
        .filter(|&w| a.breach[w] != b.breach[w] || a.at_risk[w] != b.at_risk[w])
        .map(|w| w as u32)
        .collect()
}

/// What the checks need beyond [`ScanEngine`]: the software engine, and the same relabelled.
trait UnderTest: ScanEngine {
    fn load_all(&mut self, v: &[(u32, Vec<Coeff>)]) -> Result<(), EngineError>;
    fn terms_of(&self, slot: u32) -> &[Coeff];
    fn health_of(&self, slot: u32) -> Option<AccountHealth>;
    fn healths_of(&self, slots: &[u32], out: &mut Vec<Option<AccountHealth>>);
}

/// The two have the same inherent methods; the trait only names them.
macro_rules! under_test {
    ($($t:ty),*) => {$(
        impl UnderTest for $t {
            fn load_all(&mut self, v: &[(u32, Vec<Coeff>)]) -> Result<(), EngineError> {
                self.load(v.iter().map(|(s, t)| (*s, &t[..])))
            }
            fn terms_of(&self, slot: u32) -> &[Coeff] {
                self.terms(slot)
            }
            fn health_of(&self, slot: u32) -> Option<AccountHealth> {
                self.health(slot)
            }
            fn healths_of(&self, slots: &[u32], out: &mut Vec<Option<AccountHealth>>) {
                self.healths(slots, out)
            }
        }
    )*};
}
under_test!(SoftwareEngine, Relabelled<SoftwareEngine>);

/// Runs `ops` on a fresh engine and a plain model, checking everything after every op.
fn run(slots: u32, assets: u16, setup: Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    run_on(setup.engine(slots as usize, assets as usize), slots, assets, &[], ops)
}

/// [`run`] on `eng` (`slots` slots over `assets` assets, all prices zero), which holds
/// `start` (a later entry for a slot replacing an earlier one).
fn run_on(
    mut eng: impl UnderTest,
    slots: u32,
    assets: u16,
    start: &[(u32, Vec<Coeff>)],
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let mut book: Vec<Vec<Coeff>> = vec![Vec::new(); slots as usize];
    for (s, t) in start {
        book[*s as usize].clone_from(t);
    }
    let mut prices = vec![PriceEntry::default(); assets as usize];
    let mut snapshot = reference::scan(&book, &prices);
    let mut touched = BTreeSet::new();
    let mut prev = snapshot.clone();
    let mut out = Vec::new();
    for op in ops {
        let before_prices = eng.prices().to_vec();
        let res = match op {
            Op::Upsert(s, t) => {
                book[*s as usize] = t.clone();
                eng.upsert(*s, t)
            }
            Op::Remove(s) => {
                book[*s as usize].clear();
                eng.remove(*s)
            }
            Op::Tick(a, p) => {
                prices[*a as usize] = *p;
                eng.tick(*a, *p)
            }
            Op::Nudge(a, d) => {
                let p = nudged(&prices[*a as usize], d);
                prices[*a as usize] = p;
                eng.tick(*a, p)
            }
            Op::Batch(v) => {
                prices.clone_from(v);
                eng.batch_tick(v)
            }
            Op::BadUpsert(s, t) => {
                let e = eng.upsert(*s, t);
                prop_assert!(e.is_err(), "bad upsert accepted: slot {s} {t:?}");
                Ok(())
            }
            Op::BadTick(a, p) => {
                let e = eng.tick(*a, *p);
                prop_assert!(matches!(e, Err(EngineError::AssetOutOfRange { .. })), "{:?}", e);
                Ok(())
            }
            Op::BadBatch(v) => {
                let e = eng.batch_tick(v);
                prop_assert!(matches!(e, Err(EngineError::PriceVectorLength { .. })), "{:?}", e);
                Ok(())
            }
            Op::Loaded => {
                eng.loaded();
                Ok(())
            }
            Op::Load(v) => {
                for (s, t) in v {
                    book[*s as usize].clone_from(t);
                }
                eng.load_all(v)
            }
            Op::BadLoad(v) => {
                let e = eng.load_all(v);
                prop_assert!(e.is_err(), "bad load accepted: {v:?}");
                Ok(())
            }
            Op::Drain => {
                out.clear();
                eng.changed_words(&mut out);
                let got: BTreeSet<u32> = out.iter().copied().collect();
                prop_assert_eq!(got.len(), out.len(), "changed_words repeated a word");
                let now = reference::scan(&book, &prices);
                let must = word_diff(&snapshot, &now);
                prop_assert!(must.is_subset(&got), "changed_words missed words: {:?} vs {:?}", must, got);
                prop_assert!(got.is_subset(&touched), "changed_words named untouched words");
                snapshot = now;
                touched.clear();
                Ok(())
            }
        };
        prop_assert!(res.is_ok(), "valid op refused: {op:?}: {res:?}");
        let want = reference::scan(&book, &prices);
        prop_assert_eq!(eng.breach(), &want.breach[..], "breach after {:?}", op);
        prop_assert_eq!(eng.at_risk(), &want.at_risk[..], "at_risk after {:?}", op);
        prop_assert_eq!(eng.prices(), &prices[..]);
        if !matches!(op, Op::Drain) {
            touched.extend(word_diff(&prev, &want));
        }
        if matches!(op, Op::BadUpsert(..) | Op::BadTick(..) | Op::BadBatch(..) | Op::BadLoad(..)) {
            prop_assert_eq!(eng.prices(), &before_prices[..]);
        }
        prev = want;
    }
    for s in 0..slots {
        prop_assert_eq!(eng.terms_of(s), &book[s as usize][..]);
        let h = eng.health_of(s).unwrap();
        prop_assert_eq!((h.spot, h.stressed), reference::health(&book[s as usize], &prices));
    }
    prop_assert!(eng.health_of(slots).is_none());
    // The batch lookup event reporting uses: every slot (more than its prefetch distance,
    // repeated, out of order) and one past the end, each as the single lookup gives it.
    let asked: Vec<u32> = (0..slots).rev().chain(0..slots).chain([slots, 0]).collect();
    let mut got = vec![None; 3];
    eng.healths_of(&asked, &mut got);
    prop_assert_eq!(got.len(), asked.len());
    for (&s, g) in asked.iter().zip(&got) {
        prop_assert_eq!(*g, eng.health_of(s), "healths at slot {}", s);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_reference((slots, assets, setup, ops) in case()) {
        run(slots, assets, setup, &ops)?;
    }
}

/// A case with the slots relabelled by a random permutation.
fn relabelled_case() -> impl Strategy<Value = (u32, u16, Setup, Vec<u32>, Vec<Op>)> {
    case().prop_flat_map(|(slots, assets, setup, ops)| {
        let perm = Just((0..slots).collect::<Vec<u32>>()).prop_shuffle();
        (Just(slots), Just(assets), Just(setup), perm, Just(ops))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    /// The engine with every account in another slot inside: the caller's bitmaps, changed
    /// words, terms and healths are the reference's in the caller's slots.
    #[test]
    fn relabelled_engine_matches_reference((slots, assets, setup, perm, ops) in relabelled_case()) {
        let eng = Relabelled::new(setup.engine(slots as usize, assets as usize), perm);
        run_on(eng, slots, assets, &[], &ops)?;
    }

    /// The bulk load in the scan's layout, then the same checks.
    #[test]
    fn engine_loaded_in_scan_order_matches_reference(
        (slots, assets, setup, ops) in case(),
        book in proptest::collection::vec((0u32..200, terms(20)), 0..120),
    ) {
        let book: Vec<(u32, Vec<Coeff>)> =
            book.into_iter().filter(|(s, t)| *s < slots && t.iter().all(|c| c.asset < assets)).collect();
        let eng = Relabelled::load_in_scan_order(
            setup.engine(slots as usize, assets as usize),
            book.iter().map(|(s, t)| (*s, &t[..])),
        )
        .unwrap();
        run_on(eng, slots, assets, &book, &ops)?;
    }
}
