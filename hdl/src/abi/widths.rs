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
/// Most (asset, coefficient) pairs one account may hold.
pub const MAX_COEFFS_PER_ACCOUNT: usize = 16;
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
}
