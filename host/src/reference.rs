//! The reference: the plainest exact implementation of the risk formula.
//!
//! Every other engine (software, rust-hdl simulation, Verilog, emulated card) is tested for
//! bit-identical bitmaps against this. It uses 128-bit integers, where the datapath's 68-bit
//! sums cannot overflow, and no cleverness: one account at a time, one term at a time.

use liqscan_hdl::abi::{Coeff, PriceEntry};

use crate::bitmap;

/// Spot and stressed health of one account, in value quanta.
pub fn health(terms: &[Coeff], prices: &[PriceEntry]) -> (i128, i128) {
    let mut spot = 0i128;
    let mut stressed = 0i128;
    for t in terms {
        let p = prices[t.asset as usize];
        spot += t.coeff as i128 * p.spot.for_coeff(t.coeff) as i128;
        stressed += t.coeff as i128 * p.stressed.for_coeff(t.coeff) as i128;
    }
    (spot, stressed)
}

/// Bitmaps of a whole book: `accounts[i]` is slot `i` (an empty slot has no terms and health 0).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Bitmaps {
    /// Slots whose spot health is below zero.
    pub breach: Vec<u64>,
    /// Slots whose stressed health is below zero.
    pub at_risk: Vec<u64>,
}

/// Full scan of every slot.
pub fn scan(accounts: &[Vec<Coeff>], prices: &[PriceEntry]) -> Bitmaps {
    let mut out = Bitmaps {
        breach: vec![0; bitmap::words_for(accounts.len())],
        at_risk: vec![0; bitmap::words_for(accounts.len())],
    };
    for (slot, terms) in accounts.iter().enumerate() {
        let (spot, stressed) = health(terms, prices);
        bitmap::set(&mut out.breach, slot, spot < 0);
        bitmap::set(&mut out.at_risk, slot, stressed < 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqscan_hdl::abi::QuotedPrice;

    #[test]
    fn picks_price_by_sign_and_compares_strictly() {
        let p = |a, l| QuotedPrice { asset: a, liability: l };
        let prices = vec![
            PriceEntry { spot: p(100, 101), stressed: p(90, 111) },
            PriceEntry { spot: p(10, 10), stressed: p(10, 10) },
        ];
        // 1 * 100 - 10 * 10 = 0: not a breach; stressed 90 - 100 < 0: at risk.
        let a = vec![Coeff { asset: 0, coeff: 1 }, Coeff { asset: 1, coeff: -10 }];
        assert_eq!(health(&a, &prices), (0, -10));
        // Short of asset 0 uses the liability price 101.
        let b = vec![Coeff { asset: 0, coeff: -1 }, Coeff { asset: 1, coeff: 11 }];
        assert_eq!(health(&b, &prices), (110 - 101, 110 - 111));
        let r = scan(&[a, b, vec![]], &prices);
        assert_eq!(r.breach, vec![0]);
        assert_eq!(r.at_risk, vec![0b011]);
    }

    #[test]
    fn extremes_do_not_overflow() {
        let prices = vec![
            PriceEntry {
                spot: QuotedPrice { asset: u32::MAX, liability: u32::MAX },
                stressed: QuotedPrice { asset: u32::MAX, liability: u32::MAX }
            };
            16
        ];
        let terms: Vec<Coeff> = (0..16).map(|a| Coeff { asset: a, coeff: -i32::MAX }).collect();
        let (h, _) = health(&terms, &prices);
        assert_eq!(h, -16 * (i32::MAX as i128) * (u32::MAX as i128));
        assert!(h.unsigned_abs() < 1u128 << 67);
    }
}
