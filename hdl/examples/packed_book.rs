//! Loads a packed book of `N` accounts (default 8,192) with `T` terms each (default 4) into the
//! rust-hdl simulation of the scan core, runs a full scan and a tick, and checks every bitmap
//! bit against the golden model and a plain i128 reference; prints the cycle counts and the
//! simulation's speed. `cargo run --release -p liqscan-hdl --example packed_book -- [N] [T]`.
//! A measurement, not a test: the load alone is about 4 cycles per term write.

use liqscan_hdl::abi::config::{CARD_ASSETS, LANES};
use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_hdl::core::driver::{CoreSim, packed_load_commands, words_from_groups};
use liqscan_hdl::golden::throughput::{FULL_WALK_START, scan_cycles};
use liqscan_hdl::golden::{CoreCmd, CoreModel, CoreOut};

// A small deterministic generator (xorshift): the book only needs to be varied, not random.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn reference(accounts: &[Vec<Coeff>], prices: &[PriceEntry], stressed: bool) -> Vec<u32> {
    let mut b = vec![0u32; accounts.len().div_ceil(32)];
    for (i, a) in accounts.iter().enumerate() {
        let h: i128 = a
            .iter()
            .map(|t| {
                let p =
                    if stressed { prices[t.asset as usize].stressed } else { prices[t.asset as usize].spot };
                t.coeff as i128 * p.for_coeff(t.coeff) as i128
            })
            .sum();
        b[i / 32] |= ((h < 0) as u32) << (i % 32);
    }
    b
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(8192);
    let terms = args.get(1).copied().unwrap_or(4);
    let assets = 64.min(CARD_ASSETS);
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let prices: Vec<PriceEntry> = (0..assets)
        .map(|_| {
            let mut q =
                || QuotedPrice { asset: next(&mut s) as u32 >> 4, liability: next(&mut s) as u32 >> 4 };
            PriceEntry { spot: q(), stressed: q() }
        })
        .collect();
    let accounts: Vec<Vec<Coeff>> = (0..n)
        .map(|i| {
            (0..terms)
                .map(|k| {
                    let c = (next(&mut s) as u32 >> 12) as i32 - (1 << 19);
                    Coeff { asset: ((i * 7 + k * 13) % assets) as u16, coeff: if c == 0 { 1 } else { c } }
                })
                .collect()
        })
        .collect();
    let cmds = packed_load_commands(&accounts, &prices).unwrap_or_else(|e| panic!("{n} x {terms}: {e}"));
    let mut model = CoreModel::new();
    let mut sim = CoreSim::default();
    let t0 = std::time::Instant::now();
    sim.run(&cmds);
    let load = sim.cycle;
    for c in &cmds {
        model.apply(c);
    }
    let (outs, acc) = sim.run(&[CoreCmd::ScanFull]);
    let values: Vec<CoreOut> = outs.iter().map(|o| o.value).collect();
    assert_eq!(values, model.apply(&CoreCmd::ScanFull), "rust-hdl vs golden model");
    let (b, r) = words_from_groups(&values, n);
    assert_eq!(b, reference(&accounts, &prices, false), "breach vs reference");
    assert_eq!(r, reference(&accounts, &prices, true), "at-risk vs reference");
    let done = outs.last().unwrap().cycle - acc[0];
    let walked: Vec<Option<u64>> =
        (0..n.div_ceil(LANES)).map(|g| Some(model.walked_len(g) as u64).filter(|&l| l > 0)).collect();
    assert_eq!(done, scan_cycles(FULL_WALK_START, &walked).1, "cycle model");
    let (touts, tacc) = sim.run(&[CoreCmd::ScanAsset { asset: 5 }]);
    let tvalues: Vec<CoreOut> = touts.iter().map(|o| o.value).collect();
    assert_eq!(tvalues, model.apply(&CoreCmd::ScanAsset { asset: 5 }), "tick vs golden model");
    let tick = touts.last().unwrap().cycle - tacc[0];
    let secs = t0.elapsed().as_secs_f64();
    let used: usize = model.groups.iter().map(|g| g.len as usize).sum();
    println!(
        "packed book: {n} accounts x {terms} terms, {} groups, {used} of 2048 words per lane",
        n.div_ceil(LANES)
    );
    println!("load: {} commands, {load} cycles", cmds.len());
    println!(
        "full scan: {} words, accept to done marker {done} cycles (= the cycle model)",
        values.len() - 1
    );
    println!("tick on asset 5: {} groups rescanned, accept to done marker {tick} cycles", tvalues.len() - 1);
    println!(
        "bitmaps equal to the golden model and the i128 reference: {} breached, {} at risk",
        b.iter().map(|w| w.count_ones()).sum::<u32>(),
        r.iter().map(|w| w.count_ones()).sum::<u32>()
    );
    println!("simulation: {} cycles in {secs:.1} s = {:.0} cycles/s", sim.cycle, sim.cycle as f64 / secs);
}
