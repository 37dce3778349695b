//! Cycles of the external-memory scan against the memory's bandwidth and channels, measured on
//! the rust-hdl block (`core::ext_scan`) and on its cycle model (`extmem::StreamModel`), with
//! the bitmaps checked against the golden model.
//!
//! ```text
//! cargo run --release -p liqscan-hdl --example ext_scan_cycles -- [ACCOUNTS]
//! ```
//!
//! Prefetch buffers of 512 words (a block RAM). Book: `ACCOUNTS` (default 256) random accounts of up to 4 terms on 8 assets, 4 slots.
//! Prints a markdown row per configuration: channels, bits per word, words per cycle per
//! channel, latency, the block's cycles (start pulse to done marker), the model's, and the
//! compute bound `groups * slots` (one row of 16 lanes a cycle).

use liqscan_hdl::abi::{Coeff, PriceEntry};
use liqscan_hdl::core::ext_driver::ExtSim;
use liqscan_hdl::extmem::{Layout, MemTiming, StreamModel, scan_model};

mod common;

fn row<const CH: usize, const K: usize, const W: usize>(
    accounts: &[Vec<Coeff>],
    prices: &[PriceEntry],
    num: u32,
    den: u32,
    lat: u32,
) {
    let lay = Layout::new(CH, K, 4, accounts.len()).unwrap();
    let img = lay.image(accounts).unwrap();
    let timing = MemTiming::fixed(lat, num, den);
    let mut sim = ExtSim::<CH, K, W, 9>::new();
    sim.load_prices(prices);
    let t = std::time::Instant::now();
    let run = sim.scan(&lay, &img, timing, 0, 1, 10_000_000);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(run.words, scan_model(&lay, &img, prices), "block vs golden");
    let model = StreamModel::new(lay, 512).run(&img, prices, timing, 0, 1, None);
    assert_eq!(model, run, "model vs block");
    println!(
        "| {CH} | {} | {num}/{den} | {lat} | {} | {} | {} | {:.0} |",
        64 * K,
        run.done_cycle + 1,
        model.done_cycle + 1,
        lay.groups * lay.slots,
        (run.done_cycle + 1) as f64 / secs
    );
}

fn main() {
    let n: usize = std::env::args().nth(1).map(|s| s.parse().expect("ACCOUNTS: a number")).unwrap_or(256);
    let (prices, accounts) = common::random_book(n);
    println!("book: {n} accounts x 4 slots; latency in cycles; sim rate in block cycles per second");
    println!();
    println!(
        "| channels | bits/word | words/cycle/channel | latency | block cycles | model cycles | compute bound | sim cycles/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    row::<1, 1, 64>(&accounts, &prices, 1, 4, 20);
    row::<1, 1, 64>(&accounts, &prices, 1, 2, 20);
    row::<1, 1, 64>(&accounts, &prices, 1, 1, 20);
    row::<2, 1, 64>(&accounts, &prices, 1, 1, 20);
    row::<4, 1, 64>(&accounts, &prices, 1, 1, 20);
    row::<4, 1, 64>(&accounts, &prices, 1, 2, 20);
    row::<16, 1, 64>(&accounts, &prices, 1, 1, 20);
    row::<4, 4, 256>(&accounts, &prices, 1, 1, 20);
    row::<4, 4, 256>(&accounts, &prices, 1, 1, 60);
}
