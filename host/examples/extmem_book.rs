//! The external-memory scan's cycle model (`liqscan_hdl::extmem::StreamModel`, checked cycle for
//! cycle against the rust-hdl block in `hdl/tests/ext_scan.rs`) on a big book: its bitmaps
//! against the software engine's, and its cycle count for several memory configurations.
//!
//! ```text
//! cargo run --release -p liqscan-host --example extmem_book -- [ACCOUNTS] [SEED]
//! ```
//!
//! The book: `ACCOUNTS` (default 1,000,000) accounts of 1 to 4 terms on 64 assets, each slot
//! of the layout 4 words; coefficients and prices random with extremes (`i32::MAX`,
//! `-i32::MAX`, `u32::MAX`, 0 and 1 prices) mixed in. Prints one markdown row per
//! configuration: channels, bits per memory word, bandwidth, latency, prefetch buffer, cycles from the
//! start pulse to the done marker, and those cycles at the DDR3 controller's 75 MHz and at an
//! HBM-like 300 MHz (an estimate: this core has not been placed on such a part).

use liqscan_hdl::abi::{COEFF_MAX, COEFF_MIN, Coeff, PriceEntry, QuotedPrice};
use liqscan_hdl::extmem::{BitmapWord, Layout, MemTiming, StreamModel};
use liqscan_host::engine::ScanEngine;
use liqscan_host::engine::SoftwareEngine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

const ASSETS: usize = 64;
const SLOTS: usize = 4;

fn price(rng: &mut ChaCha8Rng) -> u32 {
    match rng.gen_range(0..20) {
        0 => u32::MAX,
        1 => 1,
        2 => 0,
        _ => rng.gen_range(1..1_000_000_000),
    }
}

fn coeff(rng: &mut ChaCha8Rng) -> i32 {
    let c = match rng.gen_range(0..20) {
        0 => COEFF_MAX,
        1 => COEFF_MIN,
        _ => rng.gen_range(1..2_000_000) * if rng.r#gen() { 1 } else { -1 },
    };
    if c == 0 { 1 } else { c }
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
    let accounts: Vec<Vec<Coeff>> = (0..n)
        .map(|_| {
            let k = rng.gen_range(1..=SLOTS);
            let mut assets: Vec<u16> = vec![];
            while assets.len() < k {
                let a = rng.gen_range(0..ASSETS as u16);
                if !assets.contains(&a) {
                    assets.push(a);
                }
            }
            assets.into_iter().map(|asset| Coeff { asset, coeff: coeff(&mut rng) }).collect()
        })
        .collect();

    let mut sw = SoftwareEngine::new(n, ASSETS);
    sw.load(accounts.iter().enumerate().map(|(i, a)| (i as u32, a.as_slice()))).expect("the book loads");
    sw.loaded();
    let t = Instant::now();
    sw.batch_tick(&prices).expect("the prices are taken");
    let sw_time = t.elapsed();
    let (want_b, want_r) = (sw.breach().to_vec(), sw.at_risk().to_vec());
    println!(
        "book: {n} accounts x {SLOTS} slots on {ASSETS} assets (seed {seed}); software engine batch tick {:.2} ms; \
         breached {}, at risk {}",
        sw_time.as_secs_f64() * 1e3,
        want_b.iter().map(|w| w.count_ones()).sum::<u32>(),
        want_r.iter().map(|w| w.count_ones()).sum::<u32>()
    );
    println!();
    println!(
        "| channels | bits/word | words/cycle/channel | latency | buffer words | cycles | at 75 MHz (DDR3 sys) | at 300 MHz (HBM-like, est.) | bitmaps = software | model run |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // (channels, term words per memory word, rate num, rate den, latency, buffer words): the
    // buffer is 512 words (a 64-bit block RAM of two DP16KD) but in the rows that show what a
    // buffer smaller than the memory's bandwidth x latency costs.
    let configs = [
        (1, 1, 1, 2, 24, 512),
        (1, 1, 3, 4, 24, 512),
        (1, 1, 1, 1, 24, 512),
        (1, 1, 1, 1, 24, 32),
        (2, 1, 1, 1, 24, 512),
        (4, 1, 1, 1, 24, 512),
        (8, 1, 1, 1, 24, 512),
        (16, 1, 1, 1, 24, 512),
        (4, 4, 1, 1, 64, 512),
        (4, 4, 1, 1, 64, 32),
    ];
    for (ch, k, num, den, lat, buffer) in configs {
        let lay = Layout::new(ch, k, SLOTS, n).expect("layout");
        let img = lay.image(&accounts).expect("the book fits the layout");
        let (mut b, mut r) = (vec![0u64; want_b.len()], vec![0u64; want_r.len()]);
        let mut sink = |w: BitmapWord| {
            for l in 0..32 {
                let a = w.offset as usize + l;
                if a < n && l < liqscan_hdl::abi::config::LANES {
                    b[a / 64] |= ((w.breach >> l & 1) as u64) << (a % 64);
                    r[a / 64] |= ((w.at_risk >> l & 1) as u64) << (a % 64);
                }
            }
        };
        let t = Instant::now();
        let run = StreamModel::new(lay, buffer).run(
            &img,
            &prices,
            MemTiming::fixed(lat, num, den),
            0,
            1,
            Some(&mut sink),
        );
        let took = t.elapsed();
        let same = b == want_b && r == want_r;
        let cycles = run.done_cycle + 1;
        println!(
            "| {ch} | {} | {num}/{den} | {lat} | {buffer} | {cycles} | {:.2} ms | {:.3} ms | {} | {:.2} s |",
            64 * k,
            cycles as f64 / 75e6 * 1e3,
            cycles as f64 / 300e6 * 1e3,
            if same { "yes" } else { "NO" },
            took.as_secs_f64()
        );
        assert!(same, "bitmaps differ from the software engine's");
    }
}
