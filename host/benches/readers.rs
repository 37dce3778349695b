//! Load time of the account readers on a generated book (scripts/bench-whole-job.sh writes one;
//! `liqscan gen-book --accounts 1000000 --dir DIR` too):
//!
//!     LIQSCAN_BOOK_DIR=DIR cargo bench -p liqscan-host --bench readers
//!
//! Reads DIR/accounts.csv (and DIR/accounts.arrow, DIR/accounts.parquet when present: `gen-book
//! --arrow --parquet` writes them) into the
//! compact book `LIQSCAN_READS` times each (default 5) and prints the best and median wall
//! time and the book's bytes per account. Without the folder it says how to run and exits.

use std::path::PathBuf;
use std::time::Instant;

use liqscan_host::io::accounts::read_book;
use liqscan_host::io::venue::read_venue;

// The allocator `liqscan` itself uses (src/main.rs), so that the reads here are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let Some(dir) = std::env::var_os("LIQSCAN_BOOK_DIR").map(PathBuf::from) else {
        eprintln!("readers bench: set LIQSCAN_BOOK_DIR to a folder written by `liqscan gen-book`");
        return;
    };
    let table = read_venue(&dir.join("venue.toml")).expect("venue");
    for name in ["accounts.csv", "accounts.arrow", "accounts.parquet"] {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        let mut times = Vec::new();
        let mut last = None;
        let reads: usize =
            std::env::var("LIQSCAN_READS").ok().and_then(|v| v.parse().ok()).unwrap_or(5).max(1);
        for _ in 0..reads {
            let t0 = Instant::now();
            let book = read_book(&path, &table, &mut |_, _| {}).expect("book");
            times.push(t0.elapsed().as_secs_f64());
            last = Some(book);
        }
        times.sort_by(f64::total_cmp);
        let book = last.expect("at least one read");
        println!(
            "{name}: {} accounts, {} terms: best {:.3} s, median {:.3} s; book {} bytes ({:.1} an account)",
            book.len(),
            book.term_count(),
            times[0],
            times[times.len() / 2],
            book.heap_bytes(),
            book.heap_bytes() as f64 / book.len().max(1) as f64
        );
    }
}
