//! Full-scan cycles of the external-memory scan on the OrangeCrab 85F's DDR3 ports, from the
//! cycle model (`extmem::StreamModel`, checked cycle for cycle against the rust-hdl block in
//! `tests/ext_scan.rs`), with its bitmap words checked against the golden model
//! (`extmem::scan_model`).
//!
//! ```text
//! cargo run --release -p liqscan-hdl --example ddr3_port_scan -- [ACCOUNTS] [LATENCY] [QUEUE] [RATE]
//! ```
//!
//! Book: `ACCOUNTS` (default 1,000,000) random accounts of up to 4 terms on 8 assets, 4 slots
//! (4 M term words). The memory answers each read `LATENCY` cycles after taking it (default 23:
//! LiteDRAM's first read on this board's settings, `scripts/litedram/port128-rate.py`), holds
//! at most `QUEUE` reads (default 16: the most that script saw in flight) and gives at most
//! `RATE` words a cycle (`N/D`, default 1/2: one burst every 2 cycles, the DDR3L's peak; the
//! script's steady rate with refreshes is a little lower); prefetch buffer 512 words. The
//! bound rows hold 64 reads. Prints a markdown row per port: bits per memory word, words per
//! cycle the memory gives, reads held, cycles from the start pulse to the done marker, and
//! those cycles at the controller's 75 MHz sys clock.

use liqscan_hdl::extmem::{Layout, MemTiming, StreamModel, scan_model};

mod common;

fn arg(i: usize, name: &str, default: u64) -> u64 {
    std::env::args().nth(i).map_or(default, |s| {
        s.parse().unwrap_or_else(|_| {
            eprintln!("ddr3_port_scan: {name} must be a whole number; got '{s}'");
            std::process::exit(2)
        })
    })
}

fn rate() -> (u32, u32) {
    let Some(s) = std::env::args().nth(4) else { return (1, 2) };
    let parsed = s.split_once('/').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    match parsed {
        Some((a, b)) if a >= 1 && a <= b => (a, b),
        _ => {
            eprintln!("ddr3_port_scan: RATE must be N/D with 1 <= N <= D (words a cycle); got '{s}'");
            std::process::exit(2)
        }
    }
}

fn main() {
    let n = arg(1, "ACCOUNTS", 1_000_000) as usize;
    let lat = arg(2, "LATENCY", 23) as u32;
    let queue = arg(3, "QUEUE", 16) as usize;
    let (rn, rd) = rate();
    if lat == 0 || queue == 0 {
        eprintln!("ddr3_port_scan: LATENCY and QUEUE must be at least 1");
        std::process::exit(2);
    }
    let (prices, accounts) = common::random_book(n);
    println!(
        "book: {n} accounts x 4 slots; latency {lat} cycles, at most {queue} reads held; buffer 512 words"
    );
    println!();
    println!("| port | bits/word | words/cycle | reads held | cycles | at 75 MHz | words = golden |");
    println!("|---|---|---|---|---|---|---|");
    // (what, term words per memory word, rate num, rate den, reads held).
    let ports = [
        ("64-bit, a word a cycle (run 2's configuration)", 1, 1, 1, 64),
        ("64-bit through the up-converter, 2/(LAT+5) (est.)", 1, 2, lat + 5, queue),
        ("128-bit, a word a cycle (the block's bound)", 2, 1, 1, 64),
        ("128-bit, a word a cycle", 2, 1, 1, queue),
        ("128-bit, at RATE", 2, rn, rd, queue),
    ];
    for (what, k, num, den, queue) in ports {
        let lay = Layout::new(1, k, 4, n).expect("layout");
        let img = lay.image(&accounts).expect("the book fits the layout");
        let timing = MemTiming { queue, ..MemTiming::fixed(lat, num, den) };
        let run = StreamModel::new(lay, 512).run(&img, &prices, timing, 0, 1, None);
        let same = run.words == scan_model(&lay, &img, &prices);
        let cycles = run.done_cycle + 1;
        println!(
            "| {what} | {} | {num}/{den} | {queue} | {cycles} | {:.2} ms | {} |",
            64 * k,
            cycles as f64 / 75e6 * 1e3,
            if same { "yes" } else { "NO" }
        );
        assert!(same, "cycle model's words differ from the golden model's");
    }
}
