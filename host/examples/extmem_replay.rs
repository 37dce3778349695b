//! The Black Thursday replay through the external-memory scan's cycle model
//! (`liqscan_hdl::extmem::StreamModel`, checked cycle for cycle against the rust-hdl block in
//! `hdl/tests/ext_scan.rs`): the example venue and book, the USDC ticks and every ETH/USD bar of
//! 2020-03-12; after every tick a full scan of the book streamed from one 64-bit DDR3-like
//! channel, its bitmaps against the software engine's.
//!
//! ```text
//! cargo run --release -p liqscan-host --example extmem_replay
//! ```

use liqscan_hdl::abi::config::LANES;
use liqscan_hdl::extmem::{BitmapWord, Layout, MemTiming, StreamModel};
use liqscan_host::engine::{ScanEngine, SoftwareEngine};
use liqscan_host::io::accounts::read_accounts;
use liqscan_host::io::ticks::{read_bars, read_ticks};
use liqscan_host::io::venue::read_venue;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let table = read_venue(&root.join("examples/venue.toml")).expect("examples/venue.toml");
    let accounts = read_accounts(&root.join("examples/accounts.csv"), &table).expect("examples/accounts.csv");
    let book: Vec<_> = accounts.iter().map(|a| a.terms.clone()).collect();
    let mut ticks = read_ticks(&root.join("examples/usdc.csv"), &table).expect("examples/usdc.csv");
    let bars = root.join("../shared/data/eth-usd-10m/2020-03-12.json");
    ticks.extend(read_bars(&bars, &table, "ETH").expect("the ETH/USD bars of 2020-03-12").iter().copied());
    ticks.sort_by_key(|t| t.ts_ns);

    let slots = book.iter().map(|a| a.len()).max().unwrap_or(1).max(1);
    let lay = Layout::new(1, 1, slots, book.len()).expect("layout");
    let img = lay.image(&book).expect("the book fits the layout");
    let model = StreamModel::new(lay, 512);
    let mut sw = SoftwareEngine::new(book.len(), table.len());
    for (slot, t) in book.iter().enumerate() {
        sw.upsert(slot as u32, t).expect("the software engine takes the book");
    }
    let mut prices = vec![Default::default(); table.len()];
    let (mut cycles, mut max_breached) = (0u64, 0u32);
    for (i, t) in ticks.iter().enumerate() {
        sw.tick(t.asset, t.entry).expect("tick");
        prices[t.asset as usize] = t.entry;
        let (mut b, mut r) = (vec![0u64; sw.breach().len()], vec![0u64; sw.at_risk().len()]);
        let mut sink = |w: BitmapWord| {
            for l in 0..LANES {
                let a = w.offset as usize + l;
                if a < book.len() {
                    b[a / 64] |= ((w.breach >> l & 1) as u64) << (a % 64);
                    r[a / 64] |= ((w.at_risk >> l & 1) as u64) << (a % 64);
                }
            }
        };
        let run = model.run(&img, &prices, MemTiming::fixed(24, 1, 1), 0, 1, Some(&mut sink));
        assert_eq!(b, sw.breach(), "breach bitmap after tick {i}");
        assert_eq!(r, sw.at_risk(), "at-risk bitmap after tick {i}");
        cycles = run.done_cycle + 1;
        max_breached = max_breached.max(b.iter().map(|w| w.count_ones()).sum());
    }
    println!(
        "Black Thursday: {} accounts x {slots} slots, {} ticks, a full external-memory scan after each: \
         bitmaps identical to the software engine after every tick; at most {max_breached} accounts breached; \
         {cycles} cycles a scan (one 64-bit channel, a word a cycle, latency 24): {:.1} us at 75 MHz",
        book.len(),
        ticks.len(),
        cycles as f64 / 75.0
    );
}
