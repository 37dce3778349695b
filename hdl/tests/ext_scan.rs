//! The external-memory scan (`core::ext_scan`, `core::mem_reader`) against its golden model
//! (`extmem::scan_model`) and the i128 reference, under random memory latency, bandwidth,
//! controller back-pressure and output back-pressure; the cycle model
//! (`extmem::StreamModel`) against the block cycle for cycle; the Verilog through Verilator's
//! lint.

mod common;
mod tools;
use common::*;
use liqscan_hdl::abi::*;
use liqscan_hdl::core::ext_driver::ExtSim;
use liqscan_hdl::extmem::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const GROUP_QUEUE_ENTRIES: u64 = liqscan_hdl::extmem::consts::GROUP_QUEUE;

/// A random book of `n` accounts of up to `slots` terms on `assets` assets, extreme values and
/// balanced accounts included, and its prices.
fn book(rng: &mut ChaCha8Rng, n: usize, slots: usize, assets: usize) -> (Vec<Vec<Coeff>>, Vec<PriceEntry>) {
    let prices: Vec<PriceEntry> = (0..assets).map(|_| price_entry(rng)).collect();
    let mut accounts: Vec<Vec<Coeff>> = (0..n).map(|_| account(rng, assets, slots)).collect();
    for (i, e) in edge_accounts(&prices).into_iter().enumerate() {
        if i < n && e.len() <= slots {
            accounts[i] = e;
        }
    }
    (accounts, prices)
}

/// Bitmap words (32 accounts each) from the block's words.
fn to_bitmaps(words: &[BitmapWord], n: usize) -> (Vec<u32>, Vec<u32>) {
    let m = n.div_ceil(32);
    let (mut b, mut r) = (vec![0u32; m], vec![0u32; m]);
    for w in words {
        for l in 0..LANES {
            let a = w.offset as usize + l;
            if a < n {
                b[a / 32] |= (w.breach >> l & 1) << (a % 32);
                r[a / 32] |= (w.at_risk >> l & 1) << (a % 32);
            }
        }
    }
    (b, r)
}

fn random_timing(rng: &mut ChaCha8Rng) -> MemTiming {
    let lo = rng.gen_range(1..20);
    let den = rng.gen_range(1..4);
    MemTiming {
        latency_min: lo,
        latency_max: lo + rng.gen_range(0..30),
        rate_num: rng.gen_range(1..=den),
        rate_den: den,
        stall: rng.gen_range(0..80),
        queue: rng.gen_range(2..40),
        seed: rng.r#gen(),
    }
}

fn check_block<const CH: usize, const K: usize, const W: usize, const FB: usize>(seed: u64, books: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sim = ExtSim::<CH, K, W, FB>::new();
    for _ in 0..books {
        let slots = rng.gen_range(1..=6);
        let n = rng.gen_range(1..=48);
        let (accounts, prices) = book(&mut rng, n, slots, 6);
        let lay = Layout::new(CH, K, slots, n).unwrap();
        let img = lay.image(&accounts).unwrap();
        sim.idle(rng.gen_range(0..20));
        sim.load_prices(&prices);
        sim.idle(rng.gen_range(0..20));
        let timing = random_timing(&mut rng);
        let stall = rng.gen_range(0..120);
        let seed_out = rng.r#gen();
        let run = sim.scan(&lay, &img, timing, stall, seed_out, 30_000);
        let golden = scan_model(&lay, &img, &prices);
        assert_eq!(run.words, golden, "block vs golden: {CH} ch x {K}, {n} accounts x {slots}, {timing:?}");
        assert_eq!(
            to_bitmaps(&run.words, n),
            reference_bitmaps(&accounts, &prices),
            "block vs i128 reference"
        );
        assert!(run.commands.iter().all(|&c| c as usize == lay.words_per_channel()), "each word read once");
        // The cycle model: the same words at the same cycles, the done marker at the same cycle.
        let model = StreamModel::new(lay, 1 << FB).run(&img, &prices, timing, stall, seed_out, None);
        assert_eq!(model, run, "cycle model vs block: {CH} ch x {K}, {n} accounts x {slots}, {timing:?}");
    }
}

#[test]
fn one_channel_of_64_bits_matches_golden_and_reference() {
    check_block::<1, 1, 64, 5>(1, 12);
}

#[test]
fn two_channels_of_64_bits_match_golden_and_reference() {
    check_block::<2, 1, 64, 4>(2, 12);
}

/// The OrangeCrab's 128-bit LiteDRAM port: one channel of two term words a memory word.
#[test]
fn one_channel_of_128_bits_matches_golden_and_reference() {
    check_block::<1, 2, 128, 5>(5, 10);
}

#[test]
fn two_channels_of_128_bits_match_golden_and_reference() {
    check_block::<2, 2, 128, 4>(3, 8);
}

#[test]
fn four_channels_of_256_bits_one_step_per_row_match_golden_and_reference() {
    check_block::<4, 4, 256, 4>(4, 8);
}

/// The incremental scan: on each random book, one asset's exposed groups (or, one time in
/// four, any groups in any order) scanned by the block with the host port stalling at random;
/// the words equal the golden model's, the full scan's words of those groups (and the i128
/// reference's bits there), each listed group's words read once, and the cycle model's run
/// equal cycle for cycle. A full scan follows on the same block, to show the incremental one
/// leaves nothing behind.
fn check_inc<const CH: usize, const K: usize, const W: usize, const FB: usize>(seed: u64, books: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sim = ExtSim::<CH, K, W, FB>::new();
    let mut exposed_seen = 0;
    for round in 0..books {
        let slots = rng.gen_range(1..=5);
        let n = rng.gen_range(1..=120);
        let (mut accounts, prices) = book(&mut rng, n, slots, 5);
        let asset = rng.gen_range(0..6u16);
        // A zero-coefficient term of the asset exposes nothing: put one in the last account.
        let last = accounts.last_mut().unwrap();
        if round % 2 == 1 && last.len() < slots && last.iter().all(|t| t.asset != asset) && asset < 5 {
            last.push(Coeff { asset, coeff: 0 });
        }
        let lay = Layout::new(CH, K, slots, n).unwrap();
        let img = lay.image(&accounts).unwrap();
        sim.idle(rng.gen_range(0..10));
        sim.load_prices(&prices);
        // The host's list from the book itself: groups with a non-zero term of the asset.
        let from_book: Vec<u32> = (0..lay.groups as u32)
            .filter(|&g| {
                accounts
                    .iter()
                    .skip(g as usize * LANES)
                    .take(LANES)
                    .any(|a| a.iter().any(|t| t.asset == asset && t.coeff != 0))
            })
            .collect();
        assert_eq!(exposed_groups(&lay, &img, asset), from_book, "exposure from the image vs the book");
        let groups: Vec<u32> = if round % 4 == 3 {
            let mut all: Vec<u32> = (0..lay.groups as u32).collect();
            for i in (1..all.len()).rev() {
                all.swap(i, rng.gen_range(0..=i));
            }
            all.truncate(rng.gen_range(0..=lay.groups));
            all
        } else {
            exposed_groups(&lay, &img, asset)
        };
        exposed_seen += groups.len();
        let inc = IncGroups { groups: &groups, stall: rng.gen_range(0..200), seed: rng.r#gen() };
        let timing = random_timing(&mut rng);
        let (stall, seed_out) = (rng.gen_range(0..120), rng.r#gen());
        let what = format!("{CH} ch x {K}, {n} accounts x {slots}, groups {groups:?}, {timing:?}");
        let run = sim.scan_inc(&lay, &img, inc, timing, stall, seed_out, 60_000);
        assert_eq!(run.words, inc_scan_model(&lay, &img, &prices, &groups), "block vs golden: {what}");
        let full = scan_model(&lay, &img, &prices);
        let restricted: Vec<BitmapWord> = groups.iter().map(|&g| full[g as usize]).collect();
        assert_eq!(run.words, restricted, "incremental vs the full scan's words of those groups: {what}");
        let (want_b, want_r) = reference_bitmaps(&accounts, &prices);
        for w in &run.words {
            for l in 0..LANES {
                let a = w.offset as usize + l;
                let (rb, rr) = if a < n {
                    (want_b[a / 32] >> (a % 32) & 1, want_r[a / 32] >> (a % 32) & 1)
                } else {
                    (0, 0)
                };
                assert_eq!(
                    (w.breach >> l & 1, w.at_risk >> l & 1),
                    (rb, rr),
                    "account {a} vs reference: {what}"
                );
            }
        }
        let per_group = (slots * lay.phases()) as u64;
        assert!(
            run.commands.iter().all(|&c| c == groups.len() as u64 * per_group),
            "listed groups read once: {what}"
        );
        let model = StreamModel::new(lay, 1 << FB).run_inc(&img, &prices, inc, timing, stall, seed_out, None);
        assert_eq!(model, run, "cycle model vs block: {what}");
        // A full scan after it.
        let run = sim.scan(&lay, &img, timing, stall, seed_out, 60_000);
        assert_eq!(run.words, full, "full scan after an incremental one: {what}");
    }
    assert!(exposed_seen > books, "the books expose groups ({exposed_seen})");
}

#[test]
fn incremental_one_channel_of_64_bits_matches_golden_full_scan_and_model() {
    check_inc::<1, 1, 64, 5>(21, 10);
}

#[test]
fn incremental_one_channel_of_128_bits_matches_golden_full_scan_and_model() {
    check_inc::<1, 2, 128, 5>(22, 10);
}

#[test]
fn incremental_two_and_four_channels_match_golden_full_scan_and_model() {
    check_inc::<2, 1, 64, 4>(23, 8);
    check_inc::<4, 4, 256, 4>(24, 8);
}

/// A long list of single-word groups against an output that is mostly not ready: the group
/// queue fills (the host port is held, asserted through the most groups queued) and nothing
/// is lost; block, golden model and cycle model agree.
#[test]
fn incremental_scan_with_a_full_group_queue_holds_the_host_port() {
    let mut rng = ChaCha8Rng::seed_from_u64(25);
    let mut sim = ExtSim::<4, 4, 256, 9>::new();
    let n = 16 * 300;
    let (accounts, prices) = book(&mut rng, n, 1, 3);
    let lay = Layout::new(4, 4, 1, n).unwrap();
    let img = lay.image(&accounts).unwrap();
    sim.load_prices(&prices);
    let groups: Vec<u32> = (0..300).filter(|g| g % 7 != 3).collect();
    let inc = IncGroups { groups: &groups, stall: 30, seed: 5 };
    let timing = MemTiming::fixed(20, 1, 1);
    let run = sim.scan_inc(&lay, &img, inc, timing, 230, 9, 200_000);
    assert_eq!(run.words, inc_scan_model(&lay, &img, &prices, &groups));
    assert_eq!(run.max_queued, GROUP_QUEUE_ENTRIES, "the queue filled");
    let model = StreamModel::new(lay, 512).run_inc(&img, &prices, inc, timing, 230, 9, None);
    assert_eq!(model, run);
}

/// Runs one reader over `beats` words from `base` of `img`; returns the words popped (with the
/// consumer not ready with chance `stall`/256) and the command addresses in order.
fn run_reader(
    img: &[u64],
    base: u32,
    beats: u32,
    timing: MemTiming,
    stall: u8,
    rng: &mut ChaCha8Rng,
    trace: bool,
) -> (Vec<u64>, Vec<u32>) {
    use liqscan_hdl::core::mem_reader::MemReader;
    use rust_hdl::prelude::*;
    let mut uut = MemReader::<64, 4>::default();
    uut.connect_all();
    let edge = |u: &mut MemReader<64, 4>| {
        u.clock.next = Clock { clk: false };
        assert!(simulate(u, 100));
        u.clock.next = Clock { clk: true };
        assert!(simulate(u, 100));
    };
    uut.reset.next = true;
    edge(&mut uut);
    uut.reset.next = false;
    let mut mem = MemModel::new(timing, 1);
    let (mut out, mut cmds) = (vec![], vec![]);
    let mut cycle = 0;
    while out.len() < beats as usize {
        assert!(cycle < 20_000, "reader stuck after {} of {beats} words", out.len());
        uut.start.next = cycle == 0;
        uut.base.next = (base as u64).into();
        uut.beats.next = (beats as u64).into();
        uut.cmd_ready.next = mem.cmd_ready();
        let rd = mem.rdata();
        uut.rdata_valid.next = rd.is_some();
        uut.rdata_data.next = rd.map(|a| mem.word(img, a).first().copied().unwrap_or(0)).unwrap_or(0).into();
        let ready = rng.gen_range(0..256) >= stall as u32;
        uut.out_ready.next = ready;
        uut.clock.next = Clock { clk: false };
        assert!(simulate(&mut uut, 100));
        if trace {
            println!(
                "{cycle}: cmd {} {} addr {} rdata {} {} out {} {}",
                uut.cmd_valid.val(),
                uut.cmd_ready.val(),
                uut.cmd_addr.val().to_u32(),
                uut.rdata_valid.val(),
                uut.rdata_ready.val(),
                uut.out_valid.val(),
                ready
            );
        }
        if uut.out_valid.val() && ready {
            out.push(uut.out_data.val().to_u64());
        }
        let cmd = uut.cmd_valid.val().then(|| uut.cmd_addr.val().to_u32());
        if let Some(a) = cmd
            && mem.cmd_ready()
        {
            cmds.push(a);
        }
        assert!(rd.is_none() || uut.rdata_ready.val(), "the reader refuses data it reserved room for");
        let taken = rd.is_some() && uut.rdata_ready.val();
        uut.clock.next = Clock { clk: true };
        assert!(simulate(&mut uut, 100));
        mem.step(cmd, taken);
        cycle += 1;
    }
    (out, cmds)
}

#[test]
fn reader_streams_every_word_once_in_order_under_random_latency_and_backpressure() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let img: Vec<u64> = (0..400).map(|_| rng.r#gen()).collect();
    for round in 0..12 {
        let base = rng.gen_range(0..100);
        let beats = rng.gen_range(1..300);
        let timing = if round == 0 { MemTiming::fixed(3, 1, 1) } else { random_timing(&mut rng) };
        let stall = if round == 0 { 0 } else { rng.gen_range(0..200) };
        let (out, cmds) = run_reader(
            &img,
            base,
            beats,
            timing,
            stall,
            &mut rng,
            std::env::var("TRACE").is_ok_and(|t| t == round.to_string()),
        );
        let want: Vec<u64> = img[base as usize..(base + beats) as usize].to_vec();
        assert_eq!(out, want, "round {round}: words out");
        let addrs: Vec<u32> = (base..base + beats).collect();
        assert_eq!(cmds, addrs, "round {round}: commands");
    }
}

#[test]
fn verilog_of_one_and_two_channels_passes_verilator_lint() {
    use liqscan_hdl::core::ext_scan::generate;
    tools::lint("ext-lint-1ch", &generate::<1, 1, 64, 5>());
    tools::lint("ext-lint-2ch", &generate::<2, 2, 128, 4>());
}

/// No latch, no undriven or implicit wire. About 70 s (yosys elaborates 16 lanes), so not in
/// the default run: `cargo test -p liqscan-hdl --test ext_scan -- --ignored`.
#[test]
#[ignore = "about 70 s of yosys"]
fn yosys_reads_and_checks_the_verilog() {
    tools::yosys("ext-yosys-2ch", &liqscan_hdl::core::ext_scan::generate::<2, 2, 128, 4>());
}

#[test]
fn layout_refuses_bad_books_naming_the_account_and_the_problem() {
    let t = |asset, coeff| Coeff { asset, coeff };
    let lay = Layout::new(1, 1, 2, 3).unwrap();
    let e = lay.image(&[vec![], vec![t(0, 1), t(1, 1), t(2, 1)]]).unwrap_err();
    assert_eq!(e, LayoutError::TooManyTerms { account: 1, terms: 3, slots: 2 });
    assert!(e.to_string().contains("account 1 has 3 terms"), "{e}");
    assert_eq!(lay.image(&[vec![t(300, 1)]]).unwrap_err(), LayoutError::Asset { account: 0, asset: 300 });
    assert_eq!(
        lay.image(&[vec![t(0, i32::MIN)]]).unwrap_err(),
        LayoutError::Coeff { account: 0, coeff: i32::MIN }
    );
    assert!(Layout::new(3, 1, 4, 10).is_err(), "3 channels");
    assert!(Layout::new(4, 8, 4, 10).is_err(), "32 term words a step, more than the lanes");
    assert!(Layout::new(1, 1, 0, 10).is_err() && Layout::new(1, 1, 17, 10).is_err(), "slots");
    // Every term word has one place, and the image holds the book's terms there.
    let lay = Layout::new(2, 2, 3, 40).unwrap();
    let mut seen = std::collections::HashSet::new();
    for a in 0..lay.groups * LANES {
        for s in 0..3 {
            assert!(seen.insert(lay.place(a, s)));
        }
    }
    assert_eq!(seen.len(), lay.words_per_channel() * lay.ch * lay.k);
}
