//! A keeper embedded in another program: the library's builder runs the embedded demo book
//! and crash on the software engine and writes the liquidation orders as JSON lines.
//!
//! `cargo run --example keeper [ORDERS.jsonl]` (tests/keeper_example.rs runs it too).

use std::path::{Path, PathBuf};

use liqscan_host::keeper::{Keeper, KeeperError, KeeperReport};

/// Runs a keeper over 2,000 demo accounts, orders to the file `orders`.
pub fn keep(orders: &Path) -> Result<KeeperReport, KeeperError> {
    Keeper::builder()
        .demo(2000)
        .backend("software")
        .executor(&format!("jsonl:{}", orders.display()))
        .start()?
        .finish()
}

fn main() -> Result<(), KeeperError> {
    let orders: PathBuf = std::env::args()
        .nth(1)
        .map_or_else(|| std::env::temp_dir().join("liqscan-keeper-orders.jsonl"), Into::into);
    let r = keep(&orders)?;
    println!("{} breach events, {} orders built, written to {}", r.breaches(), r.orders(), orders.display());
    Ok(())
}
