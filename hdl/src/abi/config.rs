//! The card's build configuration: the one place where lanes, accounts, assets and term slots
//! are chosen. The rust-hdl core, the golden models, the Verilog and the bitstream report all
//! read these constants; the host reads them back from the card's `CONFIG*` registers and checks
//! they match (see [`crate::abi::regs`]).
//!
//! The default fits an LFE5U-85F: 16 lanes x 8 16x16 multipliers = 128 of its 156 18x18
//! multipliers, and the per-lane term and price memories fit its 208 block RAMs.

use crate::abi::widths::{ASSET_BITS, MAX_COEFFS_PER_ACCOUNT};

/// log2 of [`LANES`]: the one knob of the build. 4 (16 lanes) unless the environment variable
/// `LIQSCAN_LANE_BITS` (one digit, 1..=5) is set when the crate is compiled; the bitstream script
/// passes it (`scripts/build-bitstream.sh [board] [lane_bits]`) to place a smaller core.
pub const LANE_BITS: usize = match option_env!("LIQSCAN_LANE_BITS") {
    Some(s) => parse_lane_bits(s),
    None => 4,
};
/// Parallel multiply-accumulate lanes. Lane `l` holds accounts `g * LANES + l`; the lanes of
/// one *group* `g` are scanned in lock step. At most 32 (one bitmap word per group).
pub const LANES: usize = 1 << LANE_BITS;
/// log2 of [`GROUPS`]: the core's group table has 512 entries, so it holds up to
/// [`CORE_ACCOUNTS`] = 512 x [`LANES`] accounts when they are packed (see [`TERM_WORDS`]).
pub const GROUP_BITS: usize = 9;
/// Groups of [`LANES`] accounts the core addresses (entries of its group table).
pub const GROUPS: usize = 1 << GROUP_BITS;
/// log2 of [`CORE_ACCOUNTS`].
pub const CORE_ACCOUNT_BITS: usize = LANE_BITS + GROUP_BITS;
/// Accounts the core addresses: 8192 at 16 lanes. How many fit depends on their term counts:
/// each group takes as many of a lane's [`TERM_WORDS`] words as its longest account has terms.
pub const CORE_ACCOUNTS: usize = 1 << CORE_ACCOUNT_BITS;
/// log2 of [`TERM_WORDS`].
pub const TERM_WORD_BITS: usize = 11;
/// Term words per lane (one block RAM column per 9 bits of a word): a group of accounts with
/// at most `n` terms each takes `n` consecutive words in every lane.
pub const TERM_WORDS: usize = 1 << TERM_WORD_BITS;
/// Groups in the power-on ("unpacked") layout: group `g < UNPACKED_GROUPS` at words
/// `16 g .. 16 g + 16`, every other group empty ([`crate::golden::unpacked_extent`]).
pub const UNPACKED_GROUPS: usize = TERM_WORDS / TERM_SLOTS;
/// log2 of [`CARD_ACCOUNTS`].
pub const CARD_ACCOUNT_BITS: usize = CORE_ACCOUNT_BITS;
/// Accounts the card holds through the command ring: every account the core addresses, 8192
/// at 16 lanes, placed by the host in the packed layout (`crate::layout::PackedLayout`): the
/// ring's `SetGroup` sets a group's extent, its term writes carry (account, word). How many
/// fit depends on their term counts: the term memory has [`TERM_WORDS_PER_ACCOUNT`] words
/// per account.
pub const CARD_ACCOUNTS: usize = 1 << CARD_ACCOUNT_BITS;
/// Term words per lane per group: [`TERM_WORDS`] = this x [`GROUPS`], so a book whose accounts
/// have at most this many terms fills the card. The host derives the term memory's size from
/// the card's `CONFIG_LANES` and `CONFIG_ACCOUNTS` with it (`crate::layout::Shape::of_card`).
pub const TERM_WORDS_PER_ACCOUNT: usize = 4;
/// Assets in the card's price table (a power of two, at most [`crate::abi::MAX_ASSETS`]).
pub const CARD_ASSETS: usize = 256;
/// log2 of [`CARD_ASSETS`].
pub const CARD_ASSET_BITS: usize = 8;
/// Most terms an account (and so a group's extent) may have: the datapath's maximum.
pub const TERM_SLOTS: usize = MAX_COEFFS_PER_ACCOUNT;
/// log2 of [`TERM_SLOTS`].
pub const SLOT_BITS: usize = 4;
/// The clock the design is placed and routed for, in MHz.
pub const TARGET_MHZ: u32 = 125;

/// The configuration as one value, as reported by the card's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CardConfig {
    /// [`LANES`].
    pub lanes: u32,
    /// [`CARD_ACCOUNTS`].
    pub accounts: u32,
    /// [`CARD_ASSETS`].
    pub assets: u32,
    /// [`TERM_SLOTS`].
    pub term_slots: u32,
}

/// This build's configuration.
pub const CONFIG: CardConfig = CardConfig {
    lanes: LANES as u32,
    accounts: CARD_ACCOUNTS as u32,
    assets: CARD_ASSETS as u32,
    term_slots: TERM_SLOTS as u32,
};

const fn parse_lane_bits(s: &str) -> usize {
    let b = s.as_bytes();
    assert!(b.len() == 1 && b[0] >= b'1' && b[0] <= b'5', "LIQSCAN_LANE_BITS must be 1..=5");
    (b[0] - b'0') as usize
}

// Compile-time checks that the constants agree with each other and with the widths.
const _: () = {
    assert!(1 << LANE_BITS == LANES);
    assert!(LANES <= 32);
    assert!(1 << CARD_ACCOUNT_BITS == CARD_ACCOUNTS);
    assert!(CARD_ACCOUNTS == CORE_ACCOUNTS && CARD_ACCOUNTS == GROUPS * LANES);
    assert!(TERM_WORDS == TERM_WORDS_PER_ACCOUNT * GROUPS);
    assert!(1 << CARD_ASSET_BITS == CARD_ASSETS);
    assert!(CARD_ASSET_BITS <= ASSET_BITS as usize);
    assert!(1 << SLOT_BITS == TERM_SLOTS);
};
