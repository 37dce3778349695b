//! Fixed widths of the exact risk datapath.
//!
//! Every engine (reference, software, rust-hdl core, Verilog, emulated card) computes
//!
//! ```text
//! health  = sum_j c_j * (c_j >= 0 ? price[a_j].asset    : price[a_j].liability)
//! stressed = sum_j c_j * (c_j >= 0 ? stress[a_j].asset  : stress[a_j].liability)
//! breach   = health   < 0
//! at_risk  = stressed < 0
//! ```
//!
//! with the widths below. An account's coefficients are signed 32-bit, prices unsigned 32-bit,
//! so one product fits 63 bits plus sign, and a sum of [`MAX_COEFFS_PER_ACCOUNT`] products fits
//! [`ACC_BITS`] bits signed. Nothing wraps: values that would not fit are refused where they
//! enter (the host's coefficient compiler).
//!
//! Each asset carries two prices per vector: the `asset` price (applied to positive
//! coefficients, rounded down when quantised) and the `liability` price (applied to negative
//! coefficients, rounded up). That keeps quantisation conservative on both sides, and it is the
//! same select the stressed vector needs anyway.

/// Bits of a signed coefficient `c = balance * weight` in coefficient quanta.
pub const COEFF_BITS: u32 = 32;
/// Largest coefficient magnitude. `i32::MIN` is excluded so that negation (sign-magnitude in
/// the card's multipliers) never overflows.
pub const COEFF_MAX: i32 = i32::MAX;
/// Smallest coefficient: `-COEFF_MAX`.
pub const COEFF_MIN: i32 = -i32::MAX;
/// Bits of an unsigned quantised price.
pub const PRICE_BITS: u32 = 32;
/// Largest quantised price.
pub const PRICE_MAX: u32 = u32::MAX;
/// Most (asset, coefficient) pairs one account may hold on the card.
pub const MAX_COEFFS_PER_ACCOUNT: usize = 16;
/// Most terms one account may hold on the software engine (and the reference). Accounts with
/// more than [`MAX_COEFFS_PER_ACCOUNT`] terms, or with one asset as both collateral and debt,
/// are kept on the software engine by the host.
pub const MAX_SOFTWARE_TERMS: usize = 64;
/// Bits of the signed health accumulator: |c*p| < 2^63, times 16 terms < 2^67, plus sign.
pub const ACC_BITS: u32 = 68;
/// Bits of an asset index (the card's price table has `1 << ASSET_BITS` entries).
pub const ASSET_BITS: u32 = 10;
/// Most assets a venue may list.
pub const MAX_ASSETS: usize = 1 << ASSET_BITS;

/// One term of an account's health: an asset index and a signed coefficient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Coeff {
    /// Asset index into the price table, below [`MAX_ASSETS`].
    pub asset: u16,
    /// Signed coefficient in the asset's coefficient quanta, within [`COEFF_MIN`]..=[`COEFF_MAX`].
    pub coeff: i32,
}

/// The two quantised prices of one asset in one price vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct QuotedPrice {
    /// Applied to positive coefficients (collateral, longs); quantised rounding down.
    pub asset: u32,
    /// Applied to negative coefficients (debt, shorts); quantised rounding up.
    pub liability: u32,
}

impl QuotedPrice {
    /// The price that applies to a coefficient of this sign.
    #[inline]
    pub fn for_coeff(self, coeff: i32) -> u32 {
        if coeff >= 0 { self.asset } else { self.liability }
    }
}

/// One asset's entry in the card's price table: the spot vector and the stressed vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct PriceEntry {
    /// Prices for the breach check.
    pub spot: QuotedPrice,
    /// Stressed prices for the at-risk check (asset side moved down, liability side up).
    pub stressed: QuotedPrice,
}

/// Checks that an account's terms respect the widths: at most [`MAX_COEFFS_PER_ACCOUNT`]
/// terms, asset indices below `assets`, no `i32::MIN`, no asset twice.
pub fn check_terms(terms: &[Coeff], assets: usize) -> Result<(), TermError> {
    if terms.len() > MAX_COEFFS_PER_ACCOUNT {
        return Err(TermError::TooManyTerms(terms.len()));
    }
    for (i, t) in terms.iter().enumerate() {
        if t.asset as usize >= assets {
            return Err(TermError::UnknownAsset(t.asset));
        }
        if t.coeff < COEFF_MIN {
            return Err(TermError::CoeffOutOfRange(t.coeff));
        }
        if terms[..i].iter().any(|u| u.asset == t.asset) {
            return Err(TermError::DuplicateAsset(t.asset));
        }
    }
    Ok(())
}

/// Checks terms for the software engine and the reference: at most [`MAX_SOFTWARE_TERMS`]
/// terms, asset indices below `assets`, no `i32::MIN`, no zero coefficient, and each asset at
/// most twice: once as a positive leg (collateral, a long) and once as a negative leg (debt, a
/// short), which lending markets allow and which must not be netted (each leg takes its own
/// side's weight). Every term list that passes [`check_terms`] and holds no zero also passes
/// this one.
pub fn check_terms_software(terms: &[Coeff], assets: usize) -> Result<(), TermError> {
    if terms.len() > MAX_SOFTWARE_TERMS {
        return Err(TermError::TooManySoftwareTerms(terms.len()));
    }
    for (i, t) in terms.iter().enumerate() {
        if t.asset as usize >= assets {
            return Err(TermError::UnknownAsset(t.asset));
        }
        if t.coeff < COEFF_MIN {
            return Err(TermError::CoeffOutOfRange(t.coeff));
        }
        if t.coeff == 0 {
            return Err(TermError::ZeroCoeff(t.asset));
        }
        if terms[..i].iter().any(|u| u.asset == t.asset && (u.coeff > 0) == (t.coeff > 0)) {
            return Err(TermError::DuplicateLeg(t.asset));
        }
    }
    Ok(())
}

/// Whether the card can hold these terms (they must already pass [`check_terms_software`]):
/// at most [`MAX_COEFFS_PER_ACCOUNT`] terms and no asset twice.
pub fn card_holds(terms: &[Coeff]) -> bool {
    terms.len() <= MAX_COEFFS_PER_ACCOUNT
        && terms.iter().enumerate().all(|(i, t)| terms[..i].iter().all(|u| u.asset != t.asset))
}

/// Why an account's terms do not fit the datapath.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermError {
    /// More terms than [`MAX_COEFFS_PER_ACCOUNT`].
    #[error("account has {0} assets; the datapath takes at most {MAX_COEFFS_PER_ACCOUNT}")]
    TooManyTerms(usize),
    /// Asset index beyond the price table.
    #[error("asset index {0} is not in the price table")]
    UnknownAsset(u16),
    /// Coefficient equal to `i32::MIN`.
    #[error("coefficient {0} is outside {COEFF_MIN}..={COEFF_MAX}")]
    CoeffOutOfRange(i32),
    /// The same asset appears twice in one account.
    #[error("asset index {0} appears twice in one account")]
    DuplicateAsset(u16),
    /// More terms than [`MAX_SOFTWARE_TERMS`].
    #[error("account has {0} terms; the software engine takes at most {MAX_SOFTWARE_TERMS}")]
    TooManySoftwareTerms(usize),
    /// The same asset twice on the same side (two collateral legs or two debt legs).
    #[error("asset index {0} appears twice on the same side of one account (merge the two legs)")]
    DuplicateLeg(u16),
    /// A zero coefficient (leave the term out instead).
    #[error("asset index {0} has a zero coefficient (leave the term out)")]
    ZeroCoeff(u16),
}

#[cfg(test)]
mod software_terms_tests {
    use super::*;

    fn c(asset: u16, coeff: i32) -> Coeff {
        Coeff { asset, coeff }
    }

    #[test]
    fn two_legs_of_one_asset_pass_the_software_check_but_not_the_card() {
        let legs = [c(1, 5), c(1, -7), c(2, -3)];
        assert_eq!(check_terms_software(&legs, 3), Ok(()));
        assert!(!card_holds(&legs));
        assert_eq!(check_terms(&legs, 3), Err(TermError::DuplicateAsset(1)));
    }

    #[test]
    fn software_check_refuses_what_it_must() {
        assert_eq!(check_terms_software(&[c(1, 5), c(1, 6)], 3), Err(TermError::DuplicateLeg(1)));
        assert_eq!(check_terms_software(&[c(1, -5), c(1, -6)], 3), Err(TermError::DuplicateLeg(1)));
        assert_eq!(check_terms_software(&[c(1, 0)], 3), Err(TermError::ZeroCoeff(1)));
        assert_eq!(check_terms_software(&[c(3, 1)], 3), Err(TermError::UnknownAsset(3)));
        assert_eq!(check_terms_software(&[c(0, i32::MIN)], 3), Err(TermError::CoeffOutOfRange(i32::MIN)));
        let many: Vec<Coeff> = (0..=MAX_SOFTWARE_TERMS as u16).map(|a| c(a, 1)).collect();
        assert_eq!(check_terms_software(&many, 1024), Err(TermError::TooManySoftwareTerms(65)));
        assert_eq!(check_terms_software(&many[..64], 1024), Ok(()));
        assert!(!card_holds(&many[..17]));
        assert!(card_holds(&many[..16]));
    }
}
