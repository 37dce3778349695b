//! The risk model: assets with tiered weights, accounts with signed balances, and the compiler
//! from real amounts to the exact integers of the datapath.
//!
//! ```text
//! real:     health = sum_a  b_a * w(b_a) * P_a            (decimals, in quote currency)
//! integer:  health = sum_a  c_a * p_a(sign c_a)            (i32 * u32, exact, in value quanta)
//!           c_a = floor(b_a * w(b_a) / q_a)                 q_a = 10^quantum_exp(a)
//!           p_a = floor(P_a / r_a) if c_a >= 0 else ceil    r_a = 10^(value_exp - quantum_exp(a))
//! ```
//!
//! An asset may give an account two terms, its supply (`b > 0`) and its borrow (`b < 0`), each
//! with its own side's weight; they are never netted.
//!
//! Both roundings move every term down, so the integer health never exceeds the real health
//! (in value quanta): rounding can delay nothing and hide no breach. The gap per term is below
//! `|b w| / q + P / r + 1` quanta; `tests` check both directions on random inputs.

pub mod account;
pub mod asset;
pub mod decimal;
pub mod venues;

pub use account::{AccountSpec, CompileError, LegError, Legs, Side};
pub use asset::{AssetSpec, AssetTable, QuoteError, TierWeights, VenueSpec};
pub use decimal::{Decimal, DecimalError};
