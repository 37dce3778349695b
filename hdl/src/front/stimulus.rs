//! Random command streams for the card's tests: the one generator the whole-card simulation
//! (`hdl/tests/card_sim.rs`) and the RTL-versus-emulation test (`tests/card_rtl_vs_emulation.rs`)
//! share, so both drive the card with the same mix of commands.

use rand::Rng;

use crate::abi::Command;
use crate::abi::config::{CARD_ACCOUNTS, GROUPS, LANES, TERM_WORDS};
use crate::abi::ring::RING_ENTRY_WORDS;
use crate::abi::widths::{Coeff, PriceEntry, QuotedPrice};
use crate::layout::{PackedLayout, Shape, ring_commands};

/// What a stream holds.
#[derive(Clone, Copy, Debug)]
pub struct StreamShape {
    /// Accounts in the book (the parameters' active accounts).
    pub accounts: u32,
    /// Assets priced.
    pub assets: u16,
    /// Commands at least (upserts take several entries).
    pub commands: usize,
    /// Also commands the card must refuse in range checks (an account or group beyond the
    /// card's, a term write or extent beyond the term memory, too many term slots), beside the
    /// unknown asset every stream has.
    pub refused: bool,
    /// End with a fence (never mangled), so the host knows when the card is done.
    pub fence_last: bool,
}

/// A random price with `asset <= liability`, as quantisation gives.
pub fn random_price(rng: &mut impl Rng) -> PriceEntry {
    let mut q = || {
        let a = rng.gen_range(1..2000u32);
        QuotedPrice { asset: a, liability: a + rng.gen_range(0..200) }
    };
    PriceEntry { spot: q(), stressed: q() }
}

/// Parameters, prices (a batch ending in a full scan), the book's groups emptied, a book placed
/// by the host's packed layout ([`PackedLayout`]: term writes and `SetGroup`s), then ticks,
/// upserts (growing groups move), removes, fences, full scans and ticks of an unknown asset;
/// about one entry in forty gets a bad kind or a sequence jump. Encoded as ring entries,
/// numbered from 0.
pub fn command_stream(rng: &mut impl Rng, shape: StreamShape) -> Vec<[u32; RING_ENTRY_WORDS]> {
    let StreamShape { accounts, assets, commands, refused, fence_last } = shape;
    let mut cmds: Vec<Command> = vec![Command::Params { active_accounts: accounts, term_slots: 4 }];
    for a in 0..assets {
        cmds.push(Command::BatchTick { asset: a, price: random_price(rng), last: a + 1 == assets });
    }
    let terms = |rng: &mut dyn rand::RngCore| -> Vec<Coeff> {
        (0..rng.gen_range(0..=4))
            .map(|_| Coeff { asset: rng.gen_range(0..assets), coeff: rng.gen_range(-1000..1000) })
            .collect()
    };
    let shape = Shape { groups: (accounts as usize).div_ceil(LANES), ..Shape::CARD };
    let mut layout = PackedLayout::with_shape(shape);
    ring_commands(&layout.clear_commands(), &mut cmds);
    let mut core = vec![];
    let mut place = |layout: &mut PackedLayout, cmds: &mut Vec<Command>, a: u32, t: &[Coeff]| {
        core.clear();
        // A group that finds no room is left as it was (books here are far below the memory).
        if layout.upsert(a as usize, t, &mut core).is_ok() {
            ring_commands(&core, cmds);
        }
    };
    for acct in 0..accounts {
        let t = terms(rng);
        place(&mut layout, &mut cmds, acct, &t);
    }
    cmds.push(Command::ScanFull);
    let kinds = if refused { 15 } else { 10 };
    let junk = |n: usize| {
        let mut t = [Coeff::default(); 8];
        t[..n].fill(Coeff { asset: 1, coeff: 5 });
        t
    };
    while cmds.len() < commands {
        match rng.gen_range(0..kinds) {
            0..=4 => cmds.push(Command::Tick { asset: rng.gen_range(0..assets), price: random_price(rng) }),
            5 => {
                let t = terms(rng);
                place(&mut layout, &mut cmds, rng.gen_range(0..accounts), &t);
            }
            6 => place(&mut layout, &mut cmds, rng.gen_range(0..accounts), &[]),
            7 => cmds.push(Command::Fence { token: rng.r#gen() }),
            8 => cmds.push(Command::ScanFull),
            9 if refused => {
                let account = CARD_ACCOUNTS as u32 + rng.gen_range(0..3);
                cmds.push(Command::AccountTerms { account, word: 0, count: 1, terms: junk(1) });
            }
            10 if refused => cmds.push(Command::Params { active_accounts: accounts, term_slots: 20 }),
            11 if refused => {
                let word = TERM_WORDS as u16 - rng.gen_range(0..4);
                cmds.push(Command::AccountTerms { account: 0, word, count: 5, terms: junk(5) });
            }
            12 if refused => {
                let group = GROUPS as u32 + rng.gen_range(0..3);
                cmds.push(Command::SetGroup { group, first: 0, len: 1 });
            }
            13 if refused => {
                let (first, len) =
                    [(TERM_WORDS as u16 - 2, 3), (0, 17), (TERM_WORDS as u16, 0)][rng.gen_range(0..3)];
                cmds.push(Command::SetGroup { group: 0, first, len });
            }
            _ => cmds.push(Command::Tick { asset: 300, price: random_price(rng) }),
        }
    }
    if fence_last {
        cmds.push(Command::Fence { token: 0xF1A1 });
    }
    let mangled = if fence_last { cmds.len() - 1 } else { cmds.len() };
    let mut seq = 0u32;
    cmds.iter()
        .enumerate()
        .map(|(i, c)| {
            let mut w = c.encode_words(seq);
            seq = seq.wrapping_add(1);
            if i < mangled {
                match rng.gen_range(0..40) {
                    0 => w[0] = 0x7F,
                    1 => {
                        w[1] = w[1].wrapping_add(5);
                        seq = w[1].wrapping_add(1);
                    }
                    _ => {}
                }
            }
            w
        })
        .collect()
}
