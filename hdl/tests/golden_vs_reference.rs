//! The golden models against the plain i128 reference: the MAC lane's column arithmetic and
//! the whole core model, on random and extreme vectors. Pure Rust, so many cases.

mod common;
use common::*;
use liqscan_hdl::abi::*;
use liqscan_hdl::core::driver::{load_commands, words_from_groups};
use liqscan_hdl::golden::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn lane_model_equals_reference_on_random_and_extreme_terms() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let extremes =
        [(COEFF_MAX, u32::MAX), (COEFF_MIN, u32::MAX), (COEFF_MAX, 0), (COEFF_MIN, 0), (1, 1), (-1, 1)];
    // All-extreme 16-term accounts: the widest sums the accumulator must hold.
    for &(c, p) in &extremes {
        let terms = vec![(c, p); 16];
        let r: i128 = terms.iter().map(|&(c, p)| c as i128 * p as i128).sum();
        assert_eq!(lane_health_negative(&terms), r < 0, "{c} x {p} x16");
    }
    for _ in 0..200_000 {
        let n = rng.gen_range(0..=16);
        let terms: Vec<(i32, u32)> = (0..n).map(|_| (coeff(&mut rng), price(&mut rng))).collect();
        let r: i128 = terms.iter().map(|&(c, p)| c as i128 * p as i128).sum();
        assert_eq!(lane_health_negative(&terms), r < 0, "{terms:?}");
    }
    // Near-zero sums: a positive term cancelled by a negative one, then +-1.
    for _ in 0..50_000 {
        let p = rng.r#gen::<u32>() | 1;
        let c = rng.gen_range(1..=COEFF_MAX);
        for d in [-1i64, 0, 1] {
            let terms = [(c, p), (-c, p), (d as i32, 1)];
            assert_eq!(lane_health_negative(&terms), d < 0);
        }
    }
}

#[test]
fn karatsuba_columns_recombine_to_the_product() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let edges = [0u32, 1, 0xFFFF, 0x1_0000, 0x7FFF_FFFF, 0x8000_0000, u32::MAX];
    let mut pairs: Vec<(u32, u32)> = edges.iter().flat_map(|&a| edges.iter().map(move |&b| (a, b))).collect();
    pairs.extend((0..200_000).map(|_| (rng.r#gen::<u32>(), rng.r#gen::<u32>())));
    for (mag, price) in pairs {
        let cols = product_columns(mag, price);
        let v: i128 = (0..4).map(|k| (cols[k] as i128) << (16 * k)).sum();
        assert_eq!(v, mag as i128 * price as i128, "{mag:#x} x {price:#x}");
        assert!((0..1 << 16).contains(&cols[0]) && (0..1 << 16).contains(&cols[3]));
        assert!(
            cols[1..3].iter().all(|c| (-(1 << 17)..1 << 18).contains(c)),
            "{mag:#x} x {price:#x}: {cols:?}"
        );
    }
    // The 17x17 multiplier's model: the product split at bit 16, the high part 18 bits.
    for &(a, b) in &[(0x1_FFFFu32, 0x1_FFFFu32), (0x1_FFFF, 1), (0, 0x1_FFFF), (0x1_0000, 0x1_0000)] {
        let (lo, hi) = liqscan_hdl::core::mul::mul17_model(a, b);
        assert_eq!(lo as u64 + ((hi as u64) << 16), a as u64 * b as u64);
        assert!(lo < 1 << 16 && hi < 1 << 18);
    }
}

#[test]
fn core_model_equals_reference_on_random_books() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for round in 0..20 {
        let assets = rng.gen_range(2..=CARD_ASSETS.min(40));
        let mut prices: Vec<PriceEntry> = (0..assets).map(|_| price_entry(&mut rng)).collect();
        let n = rng.gen_range(1..=300);
        let mut accounts: Vec<Vec<Coeff>> = (0..n).map(|_| account(&mut rng, assets, 16)).collect();
        accounts.extend(edge_accounts(&prices));
        let mut model = CoreModel::new();
        let mut outs = vec![];
        for c in load_commands(&accounts, &prices).unwrap() {
            outs.extend(model.apply(&c));
        }
        outs.extend(model.apply(&CoreCmd::ScanFull));
        assert_eq!(
            words_from_groups(&outs, accounts.len()),
            reference_bitmaps(&accounts, &prices),
            "round {round}"
        );
        // A tick: move one asset, scan incrementally; every rescanned group must match the
        // reference, and every group exposed to the asset must be rescanned.
        let a = rng.gen_range(0..assets);
        prices[a] = price_entry(&mut rng);
        model.apply(&CoreCmd::SetPrice {
            asset: a as u16,
            liability: false,
            spot: prices[a].spot.asset,
            stressed: prices[a].stressed.asset,
        });
        model.apply(&CoreCmd::SetPrice {
            asset: a as u16,
            liability: true,
            spot: prices[a].spot.liability,
            stressed: prices[a].stressed.liability,
        });
        let outs = model.apply(&CoreCmd::ScanAsset { asset: a as u16 });
        let (rb, rr) = reference_bitmaps(&accounts, &prices);
        for o in &outs {
            if let CoreOut::Word { group, breach, at_risk } = *o {
                for l in 0..LANES {
                    let i = group as usize * LANES + l;
                    if i < accounts.len() {
                        assert_eq!((breach >> l) & 1, (rb[i / 32] >> (i % 32)) & 1);
                        assert_eq!((at_risk >> l) & 1, (rr[i / 32] >> (i % 32)) & 1);
                    }
                }
            }
        }
        let scanned: Vec<u32> = outs
            .iter()
            .filter_map(|o| if let CoreOut::Word { group, .. } = o { Some(*group) } else { None })
            .collect();
        for (i, acc) in accounts.iter().enumerate() {
            if acc.iter().any(|t| t.asset as usize == a && t.coeff != 0) {
                assert!(scanned.contains(&((i / LANES) as u32)), "exposed account {i} not rescanned");
            }
        }
    }
}

/// Packed books (1 to 16 terms per account, groups as long as their longest account) give the
/// reference's bitmaps; so do they after accounts grow and their groups move to free words
/// (terms written first, the table entry switched last), with a full scan between the writes
/// and the switch that still sees the group's old terms.
#[test]
fn packed_books_and_group_moves_equal_the_reference() {
    use liqscan_hdl::core::driver::{packed_extents, packed_load_commands};
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let (mut books, mut moves, mut most) = (0, 0, 0);
    for round in 0..40 {
        let assets = rng.gen_range(2..=40);
        let prices: Vec<PriceEntry> = (0..assets).map(|_| price_entry(&mut rng)).collect();
        let max_terms = [16, 4, 2, 1][round % 4].min(assets);
        let n = rng.gen_range(1..=[300, 2000, 4000, 8192][round % 4]);
        let mut accounts: Vec<Vec<Coeff>> =
            (0..n).map(|_| account(&mut rng, assets, max_terms)).filter(|a| !a.is_empty()).collect();
        if accounts.is_empty() {
            continue;
        }
        let counts: Vec<usize> = accounts.iter().map(|a| a.len()).collect();
        let Ok(extents) = packed_extents(&counts) else {
            // Too many words for the memory: the packing says so, and the loader refuses.
            assert!(packed_load_commands(&accounts, &prices).is_err());
            continue;
        };
        let mut live = extents.clone();
        let mut model = CoreModel::new();
        for c in packed_load_commands(&accounts, &prices).unwrap() {
            assert!(model.apply(&c).is_empty());
        }
        assert_eq!(model.errors, 0, "round {round}");
        books += 1;
        most = most.max(accounts.len());
        let outs = model.apply(&CoreCmd::ScanFull);
        assert_eq!(
            words_from_groups(&outs, accounts.len()),
            reference_bitmaps(&accounts, &prices),
            "round {round}"
        );
        // Grow accounts and move their groups while room is left.
        for _ in 0..5 {
            let i = rng.gen_range(0..accounts.len());
            let old = accounts.clone();
            accounts[i] = account(&mut rng, assets, 16.min(assets));
            if accounts[i].is_empty() {
                accounts[i].push(Coeff { asset: 0, coeff: 1 });
            }
            let g = i / LANES;
            let len =
                (g * LANES..((g + 1) * LANES).min(accounts.len())).map(|k| accounts[k].len()).max().unwrap();
            // First fit among the words no live group uses (the group's old words stay live
            // until the switch).
            let mut used = vec![false; TERM_WORDS];
            for e in &live {
                for k in 0..e.len as usize {
                    used[(e.first as usize + k) % TERM_WORDS] = true;
                }
            }
            let Some(first) = (0..=TERM_WORDS - len).find(|&f| used[f..f + len].iter().all(|u| !u)) else {
                accounts = old;
                break;
            };
            let (cmds, _) = move_group(&accounts, g, first);
            live[g] = Extent { first: first as u16, len: len as u8 };
            let (writes, switch) = cmds.split_at(cmds.len() - 1);
            for c in writes {
                model.apply(c);
            }
            // Before the switch the scan reads the old terms, wherever they were.
            let outs = model.apply(&CoreCmd::ScanFull);
            assert_eq!(words_from_groups(&outs, old.len()), reference_bitmaps(&old, &prices));
            model.apply(&switch[0]);
            let outs = model.apply(&CoreCmd::ScanFull);
            assert_eq!(words_from_groups(&outs, accounts.len()), reference_bitmaps(&accounts, &prices));
            assert_eq!(model.account_terms(i), {
                let mut t = accounts[i].clone();
                t.resize(len, Coeff::default());
                t
            });
            moves += 1;
        }
        assert_eq!(model.errors, 0);
    }
    assert!(
        books >= 30 && moves >= 100 && most > UNPACKED_GROUPS * LANES,
        "{books} books, {moves} moves, {most} accounts"
    );
}

/// The host's packed layout (`liqscan_hdl::layout::PackedLayout`) driving the core model
/// through random upserts (1 to 16 terms, growing and shrinking) and removals: after every
/// upsert the group's bitmap word equals the reference; while a group moves to other words,
/// every command before the switch leaves its word as it was; full scans agree with the
/// reference; and a book the memory cannot hold is refused with nothing sent.
#[test]
fn packed_layout_upserts_and_moves_equal_the_reference() {
    use liqscan_hdl::layout::{LayoutError, PackedLayout};
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let (mut moves, mut refused) = (0, 0);
    for round in 0..6 {
        let assets = rng.gen_range(2..=40);
        let prices: Vec<PriceEntry> = (0..assets).map(|_| price_entry(&mut rng)).collect();
        let spot: Vec<QuotedPrice> = prices.iter().map(|p| p.spot).collect();
        let stress: Vec<QuotedPrice> = prices.iter().map(|p| p.stressed).collect();
        let n = [600, 8192, 3000][round % 3];
        let mut layout = PackedLayout::new();
        let mut model = CoreModel::new();
        let mut book: Vec<Vec<Coeff>> = vec![vec![]; n];
        let mut setup = PackedLayout::clear_table();
        setup.extend(liqscan_hdl::core::driver::price_commands(&prices));
        setup.push(CoreCmd::SetParams { accounts: n as u32, slots: TERM_SLOTS as u32 });
        for c in &setup {
            model.apply(c);
        }
        let group_ref = |book: &Vec<Vec<Coeff>>, g: usize| {
            let (mut b, mut r) = (0u32, 0u32);
            for l in 0..LANES {
                if let Some(a) = book.get(g * LANES + l) {
                    b |= ((reference_health(a, &spot) < 0) as u32) << l;
                    r |= ((reference_health(a, &stress) < 0) as u32) << l;
                }
            }
            (b, r)
        };
        let word = |model: &CoreModel, g: usize| match model.group_word(g) {
            CoreOut::Word { breach, at_risk, .. } if model.walked_len(g) > 0 => (breach, at_risk),
            _ => (0, 0),
        };
        for step in 0..2500 {
            let a = rng.gen_range(0..n);
            let g = a / LANES;
            let max = if rng.gen_range(0..8) == 0 { 16 } else { 4 };
            let terms = if rng.gen_range(0..10) == 0 { vec![] } else { account(&mut rng, assets, max) };
            let mut cmds = vec![];
            match layout.upsert(a, &terms, &mut cmds) {
                Err(LayoutError::NoRoom { .. }) => {
                    assert!(cmds.is_empty());
                    refused += 1;
                    continue;
                }
                r => r.unwrap(),
            }
            let before = word(&model, g);
            assert_eq!(before, group_ref(&book, g), "round {round} step {step}: group {g} before");
            // A move switches the group to other words (growing inside its blocks keeps them).
            let switched = matches!(cmds.last(), Some(CoreCmd::SetGroup { .. }));
            let moved = matches!(cmds.last(), Some(CoreCmd::SetGroup { first, .. }) if *first != model.groups[g].first);
            for c in &cmds {
                model.apply(c);
                if moved && !matches!(c, CoreCmd::SetGroup { .. }) {
                    assert_eq!(word(&model, g), before, "round {round} step {step}: a scan saw half a move");
                }
            }
            moves += switched as usize;
            book[a] = terms;
            assert_eq!(model.account_terms(a)[..book[a].len()], book[a][..]);
            assert_eq!(word(&model, g), group_ref(&book, g), "round {round} step {step}: group {g} after");
            if step % 500 == 499 {
                let outs = model.apply(&CoreCmd::ScanFull);
                assert_eq!(
                    words_from_groups(&outs, n),
                    reference_bitmaps(&book, &prices),
                    "round {round} step {step}"
                );
            }
        }
        assert_eq!(model.errors, 0);
        assert!(layout.words_used() <= TERM_WORDS);
    }
    assert!(moves > 1000 && refused > 0, "{moves} moves, {refused} refused");
}
