//! Cycles of an incremental (one-asset) tick of the external-memory scan on a big book, from
//! the cycle model (`extmem::StreamModel::run_inc`, checked cycle for cycle against the rust-hdl
//! block in `tests/ext_scan.rs`), beside a full scan of the same book on the same port. Every
//! incremental run's words are checked against the golden model (`extmem::inc_scan_model`) and
//! against the full scan's words of the exposed groups.
//!
//! ```text
//! cargo run --release -p liqscan-hdl --example ext_inc_cycles -- [ACCOUNTS] [SEED]
//! ```
//!
//! Book: `ACCOUNTS` (default 1,000,000) accounts of 4 terms (4 slots), seed `SEED` (default
//! 14). Term 1 of every account is asset 0 (held by every account); asset 1 is held by 1 % of
//! the accounts chosen at random (spread); asset 2 by 1 % of the accounts in one run from the
//! middle of the book (clustered); the other terms are random assets 3..64. Coefficients random
//! with `i32::MAX` and `-i32::MAX` mixed in; prices random with `u32::MAX`, 0 and 1 mixed in.
//!
//! Ports (memory latency 23 cycles, prefetch buffer 512 words, the host offers a group every
//! cycle): one channel of 64-bit words and the 128-bit port (two term words a memory word, the
//! configuration placed with the controller), each at 29/70 words a cycle with at most 16
//! reads held (LiteDRAM's controller as simulated for the 128-bit port: 0.414 words a cycle,
//! 16 reads in flight) and at a word a cycle with 64 held (the port's bound). Prints one
//! markdown row per port and tick: exposed groups, cycles from the start pulse to the done
//! marker, and those cycles at the controller's 75 MHz.

use liqscan_hdl::abi::{COEFF_MAX, COEFF_MIN, Coeff, PriceEntry, QuotedPrice};
use liqscan_hdl::extmem::{
    BitmapWord, IncGroups, Layout, MemTiming, StreamModel, exposed_groups, inc_scan_model, scan_model,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

const ASSETS: u16 = 64;

fn price(rng: &mut ChaCha8Rng) -> u32 {
    match rng.gen_range(0..20) {
        0 => u32::MAX,
        1 => 1,
        2 => 0,
        _ => rng.gen_range(1..1_000_000_000),
    }
}

fn coeff(rng: &mut ChaCha8Rng) -> i32 {
    match rng.gen_range(0..20) {
        0 => COEFF_MAX,
        1 => COEFF_MIN,
        _ => rng.gen_range(1..2_000_000) * if rng.r#gen() { 1 } else { -1 },
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map(|s| s.parse().expect("ACCOUNTS: a number")).unwrap_or(1_000_000);
    let seed: u64 = args.get(2).map(|s| s.parse().expect("SEED: a number")).unwrap_or(14);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let prices: Vec<PriceEntry> = (0..ASSETS)
        .map(|_| PriceEntry {
            spot: QuotedPrice { asset: price(&mut rng), liability: price(&mut rng) },
            stressed: QuotedPrice { asset: price(&mut rng), liability: price(&mut rng) },
        })
        .collect();
    let one_pct = n.div_ceil(100);
    let mut spread = vec![false; n];
    let mut k = 0;
    while k < one_pct {
        let a = rng.gen_range(0..n);
        if !spread[a] {
            spread[a] = true;
            k += 1;
        }
    }
    let cluster = n / 2..n / 2 + one_pct;
    let accounts: Vec<Vec<Coeff>> = (0..n)
        .map(|i| {
            let mut t = vec![Coeff { asset: 0, coeff: coeff(&mut rng) }];
            t.push(Coeff {
                asset: if spread[i] { 1 } else { rng.gen_range(3..ASSETS) },
                coeff: coeff(&mut rng),
            });
            t.push(Coeff {
                asset: if cluster.contains(&i) { 2 } else { rng.gen_range(3..ASSETS) },
                coeff: coeff(&mut rng),
            });
            t.push(Coeff { asset: rng.gen_range(3..ASSETS), coeff: coeff(&mut rng) });
            t
        })
        .collect();
    println!(
        "book: {n} accounts x 4 terms (seed {seed}); asset 1 held by {one_pct} accounts at random, \
         asset 2 by accounts {}..{}, asset 0 by all",
        cluster.start, cluster.end
    );
    println!();
    println!(
        "| port | words/cycle | reads held | tick | exposed groups | cycles | at 75 MHz | words = golden = full scan's | model run |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    // (what, term words per memory word, rate num, rate den, reads held).
    let ports = [
        ("64-bit", 1, 29, 70, 16),
        ("64-bit", 1, 1, 1, 64),
        ("128-bit", 2, 29, 70, 16),
        ("128-bit", 2, 1, 1, 64),
    ];
    for (what, k, num, den, queue) in ports {
        let lay = Layout::new(1, k, 4, n).expect("layout");
        let img = lay.image(&accounts).expect("the book fits the layout");
        let timing = MemTiming { queue, ..MemTiming::fixed(23, num, den) };
        let model = StreamModel::new(lay, 512);
        let mut full: Vec<BitmapWord> = Vec::with_capacity(lay.groups);
        let t = Instant::now();
        let run = model.run(&img, &prices, timing, 0, 1, Some(&mut |w| full.push(w)));
        let took = t.elapsed();
        let same = full == scan_model(&lay, &img, &prices);
        let cycles = run.done_cycle + 1;
        println!(
            "| {what} | {num}/{den} | {queue} | full scan | {} (all) | {cycles} | {:.3} ms | {} | {:.2} s |",
            lay.groups,
            cycles as f64 / 75e6 * 1e3,
            if same { "yes" } else { "NO" },
            took.as_secs_f64()
        );
        assert!(same, "full scan's words differ from the golden model's");
        for (asset, tick) in [
            (1u16, "asset held by 1 %, spread"),
            (2, "asset held by 1 %, clustered"),
            (0, "asset held by all"),
        ] {
            let groups = exposed_groups(&lay, &img, asset);
            let inc = IncGroups { groups: &groups, stall: 0, seed: 1 };
            let t = Instant::now();
            let run = model.run_inc(&img, &prices, inc, timing, 0, 1, None);
            let took = t.elapsed();
            let restricted: Vec<BitmapWord> = groups.iter().map(|&g| full[g as usize]).collect();
            let same = run.words == inc_scan_model(&lay, &img, &prices, &groups) && run.words == restricted;
            let cycles = run.done_cycle + 1;
            println!(
                "| {what} | {num}/{den} | {queue} | {tick} | {} | {cycles} | {:.3} ms | {} | {:.2} s |",
                groups.len(),
                cycles as f64 / 75e6 * 1e3,
                if same { "yes" } else { "NO" },
                took.as_secs_f64()
            );
            assert!(same, "incremental words differ from the golden model's or the full scan's");
        }
    }
}
