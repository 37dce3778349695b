//! Hand-made cases for the software engine: near-ties at the largest magnitudes, extremes of
//! every width, bad input, and a larger random book through both kernels.

use liqscan_hdl::abi::{COEFF_MAX, COEFF_MIN, Coeff, PriceEntry, QuotedPrice, TermError};
use liqscan_host::engine::{EngineError, Kernel, Layout, Routing, ScanEngine, SoftwareEngine};
use liqscan_host::{bitmap, reference};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn flat(p: u32) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: p, liability: p },
        stressed: QuotedPrice { asset: p, liability: p },
    }
}

fn kernels() -> Vec<Kernel> {
    Kernel::available()
}

const LAYOUTS: [Layout; 3] = [Layout::Auto, Layout::Columns, Layout::Rows];

/// Every kernel in every layout, with one and two scan threads, ticks routed or not.
fn setups() -> Vec<(Kernel, Layout, usize, Routing)> {
    let mut v = Vec::new();
    for k in kernels() {
        for l in LAYOUTS {
            for (threads, r) in [(1, Routing::Deltas), (1, Routing::FullScan), (2, Routing::Measured)] {
                v.push((k, l, threads, r));
            }
        }
    }
    v
}

fn engine(
    slots: usize,
    assets: usize,
    (k, l, threads, routing): (Kernel, Layout, usize, Routing),
) -> SoftwareEngine {
    SoftwareEngine::with_kernel(slots, assets, k).with_layout(l).with_threads(threads).with_routing(routing)
}

fn c(asset: u16, coeff: i32) -> Coeff {
    Coeff { asset, coeff }
}

/// Checks the engine against the reference for `book` at `prices`, loading it both ways:
/// upserts then a batch tick, and a batch tick then upserts then single ticks.
fn check_book(book: &[Vec<Coeff>], prices: &[PriceEntry]) {
    let want = reference::scan(book, prices);
    for setup in setups() {
        let k = setup;
        let mut a = engine(book.len(), prices.len(), setup);
        for (s, t) in book.iter().enumerate() {
            a.upsert(s as u32, t).unwrap();
        }
        a.batch_tick(prices).unwrap();
        assert_eq!(a.breach(), &want.breach[..], "{k:?} batch breach");
        assert_eq!(a.at_risk(), &want.at_risk[..], "{k:?} batch at_risk");

        let mut b = engine(book.len(), prices.len(), setup);
        for (s, t) in book.iter().enumerate() {
            b.upsert(s as u32, t).unwrap();
        }
        for (i, p) in prices.iter().enumerate() {
            b.tick(i as u16, *p).unwrap();
        }
        assert_eq!(b.breach(), &want.breach[..], "{k:?} tick breach");
        assert_eq!(b.at_risk(), &want.at_risk[..], "{k:?} tick at_risk");
        for (s, t) in book.iter().enumerate() {
            let h = b.health(s as u32).unwrap();
            assert_eq!((h.spot, h.stressed), reference::health(t, prices));
        }
    }
}

/// Health exactly 0, +1 and -1 where the terms are as large as the widths allow: any rounding
/// in a floating-point scan would show here.
#[test]
fn near_ties_at_full_magnitude() {
    let max = u32::MAX;
    let mut prices = vec![flat(max); 16];
    prices[15] = flat(1);
    let mut book = Vec::new();
    for delta in [-2i32, -1, 0, 1, 2] {
        // 7 * MAX * pmax - 7 * MAX * pmax + delta * 1, with 16 terms.
        let mut t: Vec<Coeff> = (0..7).map(|a| c(a, COEFF_MAX)).collect();
        t.extend((7..14).map(|a| c(a, COEFF_MIN)));
        t.push(c(14, 0));
        t.push(c(15, delta));
        book.push(t);
    }
    // Unequal big terms: MAX * pmax - MAX * (pmax - 1) - (MAX - 2) * 1 + (delta - 2) * 1 = delta.
    let mut uneven = vec![flat(1); 4];
    uneven[0] = flat(max);
    uneven[1] = flat(max - 1);
    let mut book2 = Vec::new();
    for delta in [-2i32, -1, 0, 1, 2] {
        book2.push(vec![c(0, COEFF_MAX), c(1, COEFF_MIN), c(2, -(COEFF_MAX - 2)), c(3, delta - 2)]);
        book2.push(vec![c(1, COEFF_MIN), c(0, COEFF_MAX)]);
    }
    check_book(&book2, &uneven);
    let sums: Vec<i128> = book2.iter().map(|t| reference::health(t, &uneven).0).collect();
    assert_eq!(&sums[..4], &[-2, COEFF_MAX as i128, -1, COEFF_MAX as i128]);
    // Ties that rest on the choice between asset and liability price.
    let mut p2 = prices.clone();
    p2[3] = PriceEntry {
        spot: QuotedPrice { asset: max, liability: max - 1 },
        stressed: QuotedPrice { asset: max - 1, liability: max },
    };
    book.push(vec![c(3, -COEFF_MAX), c(0, COEFF_MAX), c(15, 0)]);
    book.push(vec![c(3, COEFF_MAX), c(0, COEFF_MIN)]);
    check_book(&book, &prices);
    check_book(&book, &p2);
    let sums: Vec<i128> = book.iter().map(|t| reference::health(t, &prices).0).collect();
    for want in [-1i128, 0, 1] {
        assert!(sums.contains(&want), "the book must hold a health of exactly {want}: {sums:?}");
    }
}

/// Largest coefficients at zero and maximal prices, 16-term accounts, empty accounts.
#[test]
fn extremes() {
    let mut book = vec![Vec::new()];
    for sign in [1, -1] {
        book.push((0..16).map(|a| c(a, sign * COEFF_MAX)).collect());
        book.push((0..16).map(|a| c(a, if a % 2 == 0 { COEFF_MAX } else { COEFF_MIN } * sign)).collect());
    }
    book.push(vec![c(0, 0)]);
    book.push(vec![c(5, -1)]);
    for p in [0, 1, u32::MAX] {
        check_book(&book, &vec![flat(p); 16]);
    }
    let mixed: Vec<PriceEntry> = (0..16).map(|a| flat(if a % 3 == 0 { 0 } else { u32::MAX })).collect();
    check_book(&book, &mixed);
}

/// Accounts the card cannot hold: one asset on both sides (each leg at its own side's price,
/// never netted) and up to 64 terms at full magnitude with healths of exactly -2..=2, so the
/// wide blocks' filter bounds and the two-legged columns are both exercised.
#[test]
fn two_legged_and_wide_accounts_at_full_magnitude() {
    let max = u32::MAX;
    let mut prices = vec![flat(max); 32];
    prices[31] = flat(1);
    // Asset 30: asset price above the liability price, so netting the legs changes the health.
    prices[30] = PriceEntry {
        spot: QuotedPrice { asset: max, liability: max - 1 },
        stressed: QuotedPrice { asset: max - 1, liability: max },
    };
    let mut book = Vec::new();
    for delta in [-2i32, -1, 0, 1, 2] {
        // 30 assets on both sides at full magnitude cancel exactly; two legs of asset 31 at
        // price 1 leave `delta`: 64 terms.
        let mut t: Vec<Coeff> = (0..30).flat_map(|a| [c(a, COEFF_MAX), c(a, COEFF_MIN)]).collect();
        t.push(c(30, COEFF_MAX));
        t.push(c(30, COEFF_MIN));
        t.push(c(31, delta + 5));
        t.push(c(31, -5));
        assert_eq!(t.len(), 64);
        // Spot: asset 30 adds MAX * (max - (max - 1)) = MAX; offset it with a third asset
        // would need a 65th term, so the spot health is delta + MAX and the stressed one
        // delta - MAX.
        book.push(t.clone());
        // The same without asset 30: healths of exactly delta, spot and stressed.
        t.retain(|x| x.asset != 30);
        book.push(t.clone());
        // Reversed order (negative legs first) and 17 terms.
        t.reverse();
        book.push(t);
        let mut w: Vec<Coeff> = (0..8).flat_map(|a| [c(a, -COEFF_MAX), c(a, COEFF_MAX)]).collect();
        if delta != 0 {
            w.push(c(31, delta));
        }
        book.push(w);
    }
    // Small two-legged accounts: supply 3, borrow 4 of asset 0 at asset price 4 and
    // liability price 3 (health 0, netting says -4); and a pair of one asset, never a pair.
    let mut small = vec![flat(7); 3];
    small[0] = PriceEntry {
        spot: QuotedPrice { asset: 4, liability: 3 },
        stressed: QuotedPrice { asset: 3, liability: 4 },
    };
    let book2 = vec![
        vec![c(0, 3), c(0, -4)],
        vec![c(0, -4), c(0, 3)],
        vec![c(0, 3), c(0, -4), c(1, -1), c(1, 1)],
        vec![c(0, 1), c(0, -1)],
        vec![c(2, 1), c(0, -2)],
    ];
    check_book(&book2, &small);
    let sums: Vec<(i128, i128)> = book2.iter().map(|t| reference::health(t, &small)).collect();
    assert_eq!(sums[0], (0, 9 - 16));
    check_book(&book, &prices);
    let sums: Vec<i128> = book.iter().map(|t| reference::health(t, &prices).0).collect();
    for want in [-2i128, -1, 0, 1, 2] {
        assert!(sums.contains(&want), "the book must hold a health of exactly {want}: {sums:?}");
    }
    // Every price at its extremes.
    for p in [0, 1, max] {
        check_book(&book, &vec![flat(p); 32]);
    }
}

/// Every refusal names its input and changes nothing.
#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut e = SoftwareEngine::new(100, 4);
    e.batch_tick(&[flat(10); 4]).unwrap();
    e.upsert(7, &[c(0, 1), c(1, -2)]).unwrap();
    let mut sink = Vec::new();
    e.changed_words(&mut sink);
    let (b, a, p) = (e.breach().to_vec(), e.at_risk().to_vec(), e.prices().to_vec());
    let terms = e.terms(7).to_vec();

    let err = e.upsert(100, &[c(0, 1)]).unwrap_err();
    assert!(matches!(err, EngineError::SlotOutOfRange { slot: 100, slots: 100 }), "{err:?}");
    assert!(err.to_string().contains("slot 100"), "{err}");
    assert!(matches!(e.remove(1000), Err(EngineError::SlotOutOfRange { slot: 1000, .. })));
    let cases: [(Vec<Coeff>, TermError); 6] = [
        (vec![c(0, i32::MIN)], TermError::CoeffOutOfRange(i32::MIN)),
        (vec![c(1, 5), c(1, 6)], TermError::DuplicateLeg(1)),
        (vec![c(1, -5), c(2, 1), c(1, -6)], TermError::DuplicateLeg(1)),
        (vec![c(1, 5), c(1, -5), c(2, 0)], TermError::ZeroCoeff(2)),
        (vec![c(4, 1)], TermError::UnknownAsset(4)),
        ((0..65).map(|i| c(i % 4, 1)).collect(), TermError::TooManySoftwareTerms(65)),
    ];
    for (t, why) in cases {
        let err = e.upsert(7, &t).unwrap_err();
        assert!(matches!(&err, EngineError::BadTerms { slot: 7, source } if *source == why), "{err:?}");
        assert!(err.to_string().contains("slot 7"), "{err}");
    }
    let err = e.tick(4, flat(1)).unwrap_err();
    assert!(err.to_string().contains("asset 4"), "{err}");
    assert!(matches!(e.batch_tick(&[flat(1); 3]), Err(EngineError::PriceVectorLength { got: 3, assets: 4 })));

    assert_eq!((e.breach(), e.at_risk(), e.prices()), (&b[..], &a[..], &p[..]));
    assert_eq!(e.terms(7), &terms[..]);
    assert_eq!(sink, vec![0], "the valid upsert breached slot 7 in word 0");
    sink.clear();
    e.changed_words(&mut sink);
    assert!(sink.is_empty(), "refused calls reported changes: {sink:?}");
}

/// A 20,000-account random book (pairs, multi-asset accounts, few and many assets per block)
/// through random ticks, batch ticks, upserts and removes, compared after every step.
#[test]
fn larger_random_book() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (slots, assets) = (20_000usize, 40usize);
    let popular = |rng: &mut ChaCha8Rng| -> u16 {
        if rng.gen_bool(0.8) { rng.gen_range(0..4) } else { rng.gen_range(0..assets as u16) }
    };
    let account = |rng: &mut ChaCha8Rng| -> Vec<Coeff> {
        let n = match rng.gen_range(0..10) {
            0 => 0,
            1..=6 => 2,
            7 => 1,
            _ => rng.gen_range(3..=16),
        };
        let mut t: Vec<Coeff> = Vec::new();
        while t.len() < n {
            let a = popular(rng);
            if t.iter().all(|x| x.asset != a) {
                let v = rng.gen_range(1..=1_000_000);
                t.push(c(a, if t.len().is_multiple_of(2) { v } else { -v }));
            }
        }
        t
    };
    let price = |rng: &mut ChaCha8Rng| -> PriceEntry {
        let p = rng.gen_range(900_000..1_100_000u32);
        PriceEntry {
            spot: QuotedPrice { asset: p, liability: p + rng.gen_range(0..3) },
            stressed: QuotedPrice { asset: p - p / 10, liability: p + p / 10 },
        }
    };
    let def = Kernel::detect();
    let mut runs: Vec<(Kernel, Layout, usize, Routing)> =
        kernels().into_iter().map(|k| (k, Layout::Auto, 1, Routing::Measured)).collect();
    runs.extend([
        (def, Layout::Columns, 1, Routing::Measured),
        (def, Layout::Rows, 1, Routing::Deltas),
        (def, Layout::Auto, 2, Routing::Measured),
    ]);
    runs.push((def, Layout::Auto, 1, Routing::FullScan));
    for setup in runs {
        let k = setup;
        let mut rng = ChaCha8Rng::seed_from_u64(rng.r#gen());
        let mut book: Vec<Vec<Coeff>> = (0..slots).map(|_| account(&mut rng)).collect();
        let mut prices: Vec<PriceEntry> = (0..assets).map(|_| price(&mut rng)).collect();
        let mut e = engine(slots, assets, setup);
        e.batch_tick(&prices).unwrap();
        for (s, t) in book.iter().enumerate() {
            e.upsert(s as u32, t).unwrap();
        }
        let mut words = Vec::new();
        for step in 0..300 {
            let before = reference::scan(&book, &prices);
            words.clear();
            e.changed_words(&mut words);
            match rng.gen_range(0..10) {
                0 => {
                    prices = (0..assets).map(|_| price(&mut rng)).collect();
                    e.batch_tick(&prices).unwrap();
                }
                1..=2 => {
                    let s = rng.gen_range(0..slots);
                    book[s] = account(&mut rng);
                    e.upsert(s as u32, &book[s]).unwrap();
                }
                3 => {
                    let s = rng.gen_range(0..slots);
                    book[s].clear();
                    e.remove(s as u32).unwrap();
                }
                _ => {
                    let a = popular(&mut rng);
                    prices[a as usize] = price(&mut rng);
                    e.tick(a, prices[a as usize]).unwrap();
                }
            }
            let want = reference::scan(&book, &prices);
            assert_eq!(e.breach(), &want.breach[..], "{k:?} step {step}");
            assert_eq!(e.at_risk(), &want.at_risk[..], "{k:?} step {step}");
            words.clear();
            e.changed_words(&mut words);
            words.sort_unstable();
            let diff: Vec<u32> = (0..want.breach.len())
                .filter(|&w| want.breach[w] != before.breach[w] || want.at_risk[w] != before.at_risk[w])
                .map(|w| w as u32)
                .collect();
            assert_eq!(words, diff, "{k:?} step {step}: changed words");
        }
        assert!(bitmap::count(e.breach()) > 0 && bitmap::count(e.breach()) < slots / 2);
    }
}

/// The floating-point filter's recheck band: healths -1, 0, +1 and just inside and outside
/// +-2^19 built from full-magnitude terms, in columns and in rows. The filter must leave the
/// near-ties open (and the engine recheck them) and decide the rest itself, exactly.
#[test]
fn filter_rechecks_near_ties_only() {
    let max = u32::MAX;
    let mut prices = vec![flat(max); 16];
    prices[15] = flat(1);
    let mut book = Vec::new();
    let deltas = [-1i32, 0, 1, (1 << 19) - 1, 1 << 19, (1 << 19) + 1, -(1 << 19), -(1 << 19) - 1, 1 << 20];
    for &delta in &deltas {
        let mut t: Vec<Coeff> = (0..7).map(|a| c(a, COEFF_MAX)).collect();
        t.extend((7..14).map(|a| c(a, COEFF_MIN)));
        t.push(c(15, delta));
        book.push(t);
    }
    // Far from zero: decided without a recheck.
    for sign in [1, -1] {
        book.push(vec![c(0, sign * COEFF_MAX)]);
        book.push(vec![c(15, sign * (1 << 21))]);
    }
    let want = reference::scan(&book, &prices);
    for k in kernels() {
        for l in LAYOUTS {
            let mut e = SoftwareEngine::with_kernel(book.len(), prices.len(), k).with_layout(l);
            for (s, t) in book.iter().enumerate() {
                e.upsert(s as u32, t).unwrap();
            }
            e.batch_tick(&prices).unwrap();
            assert_eq!(e.breach(), &want.breach[..], "{k:?} {l:?}");
            assert_eq!(e.at_risk(), &want.at_risk[..], "{k:?} {l:?}");
            let filtered = matches!(
                k,
                Kernel::Avx2Filter | Kernel::Avx512Filter | Kernel::Avx512Single | Kernel::Avx2Single
            ) || (l == Layout::Rows && k != Kernel::Portable);
            let rows = e.stats().row_blocks > 0;
            let rechecks = e.stats().rechecks;
            if filtered {
                // The three ties at least, and the empty slots of the block (health 0, cheap)
                // except under the single-precision column filter, whose relative margin decides
                // an all-zero lane; never the four accounts far from zero.
                let single = matches!(k, Kernel::Avx512Single | Kernel::Avx2Single);
                let empty = if single && !rows { 0 } else { (64 - book.len()) as u64 };
                let band = 3 + empty..=deltas.len() as u64 + empty;
                assert!(band.contains(&rechecks), "{k:?} {l:?}: {rechecks} rechecks");
            } else {
                assert_eq!(rechecks, 0, "{k:?} {l:?}: exact kernels never recheck");
            }
        }
    }
}

/// Blocks change layout as they fill and empty, and stay exact through it.
#[test]
fn blocks_switch_layout_by_density() {
    let assets = 64usize;
    let slots = 256usize;
    let mut prices: Vec<PriceEntry> = (0..assets).map(|a| flat(1000 + a as u32)).collect();
    prices[1] = flat(999);
    let mut e = SoftwareEngine::new(slots, assets);
    let mut book = vec![Vec::new(); slots];
    // Dense: every slot on assets 0 and 1.
    for (s, t) in book.iter_mut().enumerate() {
        *t = vec![c(0, 1000 + s as i32), c(1, -1000)];
        e.upsert(s as u32, t).unwrap();
    }
    assert_eq!(e.stats().row_blocks, 0, "dense blocks are columns");
    // Sparse: one block's slots each on a different pair of the 64 assets.
    for (s, t) in book.iter_mut().enumerate().take(64) {
        *t = vec![c(s as u16, 10), c(((s + 1) % assets) as u16, -10)];
        e.upsert(s as u32, t).unwrap();
    }
    assert_eq!(e.stats().row_blocks, 1, "the sparse block is rows");
    e.batch_tick(&prices).unwrap();
    let want = reference::scan(&book, &prices);
    assert_eq!((e.breach(), e.at_risk()), (&want.breach[..], &want.at_risk[..]));
    // Back to two assets: columns again.
    for (s, t) in book.iter_mut().enumerate().take(64) {
        *t = vec![c(0, 999), c(1, -1000)];
        e.upsert(s as u32, t).unwrap();
    }
    assert_eq!(e.stats().row_blocks, 0, "the block is dense again");
    prices[0] = flat(1001);
    e.tick(0, prices[0]).unwrap();
    let want = reference::scan(&book, &prices);
    assert_eq!((e.breach(), e.at_risk()), (&want.breach[..], &want.at_risk[..]));
}

/// Delta accounts' price windows at their edges: accounts of health -3..=3 and +-30, +-31
/// (spot and stressed) with 3 and 4 terms of small and full-magnitude coefficients, each asset moved
/// step by step up to a few units past where its window ends, both ways. The bits must equal
/// the reference after every tick, and a tick that keeps every price inside every window
/// must recompute nobody.
///
/// Run with the default deferral and with every large move's window renewal deferred to a
/// later tick (served by full scans meanwhile): an account whose window a later move re-enters
/// must still be renewed at the prices the full scan set its bit at.
#[test]
fn windows_at_their_edges() {
    for defer_after in [None, Some(0), Some(3)] {
        windows_at_their_edges_with(defer_after);
    }
}

fn windows_at_their_edges_with(defer_after: Option<usize>) {
    let mut book: Vec<Vec<Coeff>> = Vec::new();
    for h in (-3i64..=3).chain([-31, -30, 30, 31]) {
        for c0 in [1, 3, COEFF_MAX / 2] {
            // The terms on assets 0-2 cancel at equal prices; h sits in asset 3's coefficient,
            // priced at 1 (below), so the health is exactly h.
            book.push(vec![c(0, c0), c(1, -c0), c(3, h as i32)]);
            book.push(vec![c(0, c0), c(1, c0), c(2, -2 * c0), c(3, h as i32)]);
        }
    }
    // Asset 3 at price 1 carries the health; zero coefficients are not terms: replace them.
    for t in &mut book {
        if t[t.len() - 1].coeff == 0 {
            t.pop();
        }
    }
    let mut prices = vec![flat(1000); 4];
    prices[3] = flat(1);
    let mut e = SoftwareEngine::new(book.len(), 4).with_routing(Routing::Deltas);
    if let Some(n) = defer_after {
        e = e.with_defer_after(n);
    }
    e.batch_tick(&prices).unwrap();
    for (s, t) in book.iter().enumerate() {
        e.upsert(s as u32, t).unwrap();
    }
    let check = |e: &SoftwareEngine, prices: &[PriceEntry], what: &str| {
        let want = reference::scan(&book, prices);
        assert_eq!(e.breach(), &want.breach[..], "{what}");
        assert_eq!(e.at_risk(), &want.at_risk[..], "{what}");
    };
    check(&e, &prices, "loaded");
    // A tick to the same prices is inside every window.
    let before = e.stats().recomputed;
    for a in 0..4u16 {
        e.tick(a, prices[a as usize]).unwrap();
    }
    assert_eq!(e.stats().recomputed, before, "unmoved prices recomputed an account");
    for a in 0..4u16 {
        for dir in [-1i64, 1] {
            for step in 0..16i64 {
                let p = (prices[a as usize].spot.asset as i64 + dir * step).max(0) as u32;
                let mut q = flat(p);
                // The stressed side moves the other way: both windows are tried at once.
                q.stressed =
                    flat((prices[a as usize].stressed.asset as i64 - dir * step).max(0) as u32).stressed;
                e.tick(a, q).unwrap();
                let mut now = prices.clone();
                now[a as usize] = q;
                check(&e, &now, &format!("asset {a} moved {} to {q:?}", dir * step));
            }
            e.tick(a, prices[a as usize]).unwrap();
            check(&e, &prices, &format!("asset {a} back"));
        }
    }
    // Several prices away from their anchors at once: small random walks on every asset, so
    // the room of several terms is used together.
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut now = prices.clone();
    for step in 0..4000 {
        let a = rng.gen_range(0..4usize);
        let m = |x: u32, rng: &mut ChaCha8Rng| (x as i64 + rng.gen_range(-3..=3)).clamp(0, 2000) as u32;
        let p = &mut now[a];
        *p = PriceEntry {
            spot: QuotedPrice { asset: m(p.spot.asset, &mut rng), liability: m(p.spot.liability, &mut rng) },
            stressed: QuotedPrice {
                asset: m(p.stressed.asset, &mut rng),
                liability: m(p.stressed.liability, &mut rng),
            },
        };
        e.tick(a as u16, now[a]).unwrap();
        check(&e, &now, &format!("walk step {step}"));
        if step % 500 == 499 {
            // Back to the start now and then, so the walk keeps crossing the healths' zeros.
            now.clone_from(&prices);
            for (a, p) in now.iter().enumerate() {
                e.tick(a as u16, *p).unwrap();
            }
        }
    }
}

/// Healths at the single-precision filter's band: accounts made of pairs of large terms that
/// nearly cancel (`c p_a - c' p_b` with `c'` close to `c p_a / p_b`), so healths lie between
/// about 2^-30 and 2^-10 of the account's gross exposure, on both sides of the single-precision
/// filter's relative margin (2^-18 of the larger side). Spot and stressed vectors differ, columns mix signs. Every kernel and layout must
/// match the reference; the single-precision kernel must leave some lanes to the recheck and
/// decide the rest.
#[test]
fn relative_band_near_cancelling_terms() {
    let mut rng = ChaCha8Rng::seed_from_u64(19);
    let assets = 16;
    let price = |rng: &mut ChaCha8Rng| rng.gen_range(1u32 << 31..=u32::MAX);
    let prices: Vec<PriceEntry> = (0..assets)
        .map(|_| {
            let (a, l) = (price(&mut rng), price(&mut rng));
            PriceEntry {
                spot: QuotedPrice { asset: a.min(l), liability: a.max(l) },
                stressed: QuotedPrice { asset: a.min(l) - (1 << 20), liability: a.max(l) },
            }
        })
        .collect();
    let book: Vec<Vec<Coeff>> = (0..4096)
        .map(|_| {
            let pairs = rng.gen_range(1..=8);
            let mut order: Vec<u16> = (0..assets as u16).collect();
            for i in 0..order.len() {
                let j = rng.gen_range(i..order.len());
                order.swap(i, j);
            }
            let mut t = Vec::new();
            for k in 0..pairs {
                let (a, b) = (order[2 * k], order[2 * k + 1]);
                let c: i32 = rng.gen_range(1 << 29..1 << 30);
                let sign = if rng.gen_bool(0.5) { 1 } else { -1 };
                // The prices each term's sign selects: a's for `sign * c`, b's for the other.
                let (pa, pb) = (prices[a as usize].spot, prices[b as usize].spot);
                let (pa, pb) = if sign > 0 { (pa.asset, pb.liability) } else { (pa.liability, pb.asset) };
                let even = (c as f64 * pa as f64 / pb as f64).round() as i64;
                // Off by up to 2^20 quanta of b, log-uniformly: relative healths from about
                // 2^-30 to 2^-10, the margin (about 2^-19 of the gross) in between.
                let bits = rng.gen_range(0..=20);
                let off = rng.gen_range(0i64..1 << bits) * if rng.gen_bool(0.5) { 1 } else { -1 };
                let c2 = (even + off).clamp(1, COEFF_MAX as i64) as i32;
                t.push(Coeff { asset: a, coeff: sign * c });
                t.push(Coeff { asset: b, coeff: -sign * c2 });
            }
            t
        })
        .collect();
    let want = reference::scan(&book, &prices);
    let breached = bitmap::count(&want.breach);
    assert!(breached > 500 && breached < 3600, "{breached} breached: the book should straddle zero");
    for k in kernels() {
        for l in LAYOUTS {
            let mut e = SoftwareEngine::with_kernel(book.len(), assets, k).with_layout(l);
            for (s, t) in book.iter().enumerate() {
                e.upsert(s as u32, t).unwrap();
            }
            e.batch_tick(&prices).unwrap();
            assert_eq!(e.breach(), &want.breach[..], "{k:?} {l:?}");
            assert_eq!(e.at_risk(), &want.at_risk[..], "{k:?} {l:?}");
            if matches!(k, Kernel::Avx512Single | Kernel::Avx2Single) && e.stats().row_blocks == 0 {
                let r = e.stats().rechecks;
                assert!(
                    r > book.len() as u64 / 10 && r < book.len() as u64 * 3 / 4,
                    "{l:?}: {r} rechecks of {}",
                    book.len()
                );
            }
        }
    }
}

/// A caller pinned to one core gets a scan helper on another one (a helper inheriting the
/// caller's one-core mask shared its core and made two-thread scans 10x slower).
#[test]
fn scan_helper_avoids_the_pinned_callers_core() {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    for &pin in &cores {
        let got = std::thread::spawn(move || {
            assert!(core_affinity::set_for_current(pin));
            liqscan_host::engine::helper_core()
        })
        .join()
        .unwrap()
        .expect("a core for the helper");
        if cores.len() >= 2 {
            assert_ne!(got.id, pin.id, "helper on the caller's core {}", pin.id);
        }
    }
}

/// A book large enough that the default window policy indexes assets by edge (lists of at
/// least 4,096 windows) switches them to list scans when ticks leave many windows and back
/// when they leave few, with bulk loads, upserts and removes between: the bitmaps equal the
/// reference after every call, and equal those of an engine held on edges and one held on
/// lists.
#[test]
fn window_policy_switches_keep_the_bitmaps() {
    use liqscan_host::engine::WindowPolicy;
    let assets = 3usize;
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let account = |rng: &mut ChaCha8Rng| -> Vec<Coeff> {
        // Collateral in assets 0 and 1, debt in 2: every account a delta account.
        let coll = rng.gen_range(1_000..100_000);
        let debt = -(coll as f64 * rng.gen_range(0.3..1.2)) as i32;
        vec![c(0, coll / 2), c(1, coll - coll / 2), c(2, debt)]
    };
    let n = 6_000;
    let mut book: Vec<Vec<Coeff>> = (0..n).map(|_| account(&mut rng)).collect();
    let mut prices = vec![flat(1000); assets];
    let mut engines: Vec<SoftwareEngine> = [WindowPolicy::Measured, WindowPolicy::Edges, WindowPolicy::Lists]
        .into_iter()
        .map(|p| SoftwareEngine::new(n, assets).with_window_policy(p).with_defer_after(usize::MAX))
        .collect();
    for e in &mut engines {
        e.batch_tick(&prices).unwrap();
        e.load(book.iter().enumerate().map(|(s, t)| (s as u32, &t[..]))).unwrap();
        e.loaded();
    }
    let mut switched = [false; 2];
    for step in 0..600 {
        let a = rng.gen_range(0..assets);
        // Calm stretches of small moves (few windows left: edges) and rough ones (many: lists).
        let rough = (step / 100) % 2 == 1;
        let span = if rough { 60 } else { 1 };
        let p = (prices[a].spot.asset as i64 + rng.gen_range(-span..=span)).clamp(500, 2000) as u32;
        prices[a] = flat(p);
        for e in &mut engines {
            e.tick(a as u16, prices[a]).unwrap();
        }
        if step % 50 == 25 {
            let s = rng.gen_range(0..n);
            book[s] = account(&mut rng);
            for e in &mut engines {
                e.remove(s as u32).unwrap();
                e.upsert(s as u32, &book[s]).unwrap();
            }
        }
        let want = reference::scan(&book, &prices);
        for (i, e) in engines.iter().enumerate() {
            assert_eq!(e.breach(), &want.breach[..], "engine {i}, step {step}");
            assert_eq!(e.at_risk(), &want.at_risk[..], "engine {i}, step {step}");
        }
        let indexed = engines[0].stats().edge_indexed_assets;
        switched[0] |= indexed < assets;
        switched[1] |= indexed > 0;
        assert_eq!(engines[1].stats().edge_indexed_assets, assets);
        assert_eq!(engines[2].stats().edge_indexed_assets, 0);
    }
    assert!(switched[0] && switched[1], "the default policy never used both ways: {switched:?}");
}
