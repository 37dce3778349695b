//! What the external-memory examples share: their random book.

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Random prices for 8 assets and `n` accounts of up to 4 terms on the even assets (seed 5,
/// so every example scans the same book).
pub fn random_book(n: usize) -> (Vec<PriceEntry>, Vec<Vec<Coeff>>) {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let prices: Vec<PriceEntry> = (0..8)
        .map(|_| PriceEntry {
            spot: QuotedPrice { asset: rng.r#gen(), liability: rng.r#gen() },
            stressed: QuotedPrice { asset: rng.r#gen(), liability: rng.r#gen() },
        })
        .collect();
    let accounts: Vec<Vec<Coeff>> = (0..n)
        .map(|_| {
            (0..rng.gen_range(0..=4u16))
                .map(|a| Coeff { asset: a * 2, coeff: rng.gen_range(-1_000_000..1_000_000) })
                .collect()
        })
        .collect();
    (prices, accounts)
}
