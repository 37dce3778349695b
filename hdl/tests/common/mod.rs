//! Shared test helpers: the plain wide-integer reference and vector generators.
#![allow(dead_code)]

use liqscan_hdl::abi::*;
use rand::Rng;

/// The reference: `sum c * p` in i128, obviously right.
pub fn reference_health(terms: &[Coeff], prices: &[QuotedPrice]) -> i128 {
    terms.iter().map(|t| t.coeff as i128 * prices[t.asset as usize].for_coeff(t.coeff) as i128).sum()
}

/// Reference bitmaps (32 accounts per word) for a book.
pub fn reference_bitmaps(accounts: &[Vec<Coeff>], prices: &[PriceEntry]) -> (Vec<u32>, Vec<u32>) {
    let spot: Vec<QuotedPrice> = prices.iter().map(|p| p.spot).collect();
    let stress: Vec<QuotedPrice> = prices.iter().map(|p| p.stressed).collect();
    let n = accounts.len().div_ceil(32);
    let (mut b, mut r) = (vec![0u32; n], vec![0u32; n]);
    for (i, a) in accounts.iter().enumerate() {
        b[i / 32] |= ((reference_health(a, &spot) < 0) as u32) << (i % 32);
        r[i / 32] |= ((reference_health(a, &stress) < 0) as u32) << (i % 32);
    }
    (b, r)
}

/// A coefficient: extremes often, otherwise random of random magnitude.
pub fn coeff(rng: &mut impl Rng) -> i32 {
    match rng.gen_range(0..10) {
        0 => COEFF_MAX,
        1 => COEFF_MIN,
        2 => 0,
        3 => rng.gen_range(-3..=3),
        _ => {
            let bits = rng.gen_range(1..=31);
            let m = rng.r#gen::<u32>() >> (32 - bits);
            let m = m.min(COEFF_MAX as u32) as i32;
            if rng.r#gen() { m } else { -m }
        }
    }
}

/// A price: extremes often, otherwise random of random magnitude.
pub fn price(rng: &mut impl Rng) -> u32 {
    match rng.gen_range(0..8) {
        0 => 0,
        1 => u32::MAX,
        2 => 1,
        _ => rng.r#gen::<u32>() >> rng.gen_range(0..32),
    }
}

/// A price entry.
pub fn price_entry(rng: &mut impl Rng) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: price(rng), liability: price(rng) },
        stressed: QuotedPrice { asset: price(rng), liability: price(rng) },
    }
}

/// An account of up to `max_terms` distinct assets below `assets` (empty and full accounts
/// included). With `balanced`, coefficients are chosen so the health is often near zero.
pub fn account(rng: &mut impl Rng, assets: usize, max_terms: usize) -> Vec<Coeff> {
    let n = match rng.gen_range(0..6) {
        0 => 0,
        1 => max_terms.min(assets),
        _ => rng.gen_range(0..=max_terms.min(assets)),
    };
    let mut picked: Vec<u16> = vec![];
    while picked.len() < n {
        let a = rng.gen_range(0..assets) as u16;
        if !picked.contains(&a) {
            picked.push(a);
        }
    }
    picked.into_iter().map(|asset| Coeff { asset, coeff: coeff(rng) }).collect()
}

/// Accounts whose health is exactly zero, one below, one above (edge of the compare).
pub fn edge_accounts(prices: &[PriceEntry]) -> Vec<Vec<Coeff>> {
    let p0 = prices[0].spot;
    let p1 = prices[1].spot;
    // c0 * p0.asset - c1 * p1.liability with c0 = p1.liability, c1 = p0.asset: zero if both fit.
    let mut v = vec![];
    if p0.asset > 0 && p1.liability > 0 && p1.liability <= COEFF_MAX as u32 && p0.asset <= COEFF_MAX as u32 {
        let (c0, c1) = (p1.liability as i32, p0.asset as i32);
        v.push(vec![Coeff { asset: 0, coeff: c0 }, Coeff { asset: 1, coeff: -c1 }]);
        v.push(vec![Coeff { asset: 0, coeff: c0 - 1 }, Coeff { asset: 1, coeff: -c1 }]);
        v.push(vec![Coeff { asset: 0, coeff: c0 }, Coeff { asset: 1, coeff: -(c1 - 1) }]);
    }
    v
}

/// The commands that (re)write group `g` of `accounts` at words `first ..` (the group's length
/// is its longest account's term count) and then switch its table entry there: a move, as the
/// host makes one to grow an account. Returns the commands and the group's new length.
pub fn move_group(
    accounts: &[Vec<Coeff>],
    g: usize,
    first: usize,
) -> (Vec<liqscan_hdl::golden::CoreCmd>, usize) {
    use liqscan_hdl::golden::CoreCmd;
    let members = g * LANES..((g + 1) * LANES).min(accounts.len());
    let len = members.clone().map(|i| accounts[i].len()).max().unwrap_or(0);
    let mut cmds = vec![];
    for i in members {
        for s in 0..len {
            let word = ((first + s) % TERM_WORDS) as u16;
            cmds.push(CoreCmd::WriteTerm {
                account: i as u16,
                word,
                term: accounts[i].get(s).copied().unwrap_or_default(),
            });
        }
    }
    cmds.push(CoreCmd::SetGroup { group: g as u16, first: first as u16, len: len as u8 });
    (cmds, len)
}
