//! The host's side of the packed term memory: where each group's terms live, and the core
//! commands that put an account's terms there ([`PackedLayout`]).
//!
//! The core walks, for each group of lanes, `len` consecutive words of every lane from the
//! group's `first` word (the group table, [`CoreCmd::SetGroup`]); `len` is the longest
//! account's term count. This layout keeps a copy of every account's terms and of the table.
//! A group owns a run of whole *blocks* of [`BLOCK_WORDS`] words (its capacity), at least its
//! length, so a book of accounts of up to four terms takes one block a group and never
//! fragments the memory:
//!
//! - an upsert that fits the group's length rewrites the account's words in place (its terms,
//!   then zeros up to the length);
//! - an upsert beyond the group's blocks moves the group: every member's terms are written,
//!   padded with zeros to the whole of the new blocks, into free blocks first, then one
//!   `SetGroup` switches the table entry, so a scan between any two of these commands sees the
//!   whole group either at its old words or at its new ones; the old blocks are free after
//!   the switch;
//! - an upsert that makes the account longer than its group but not than the group's blocks
//!   writes the account's words, then one `SetGroup` with the same first word and the new
//!   length: the other members' words past the old length are zero already (written so when
//!   the blocks were taken, and no write goes past a group's length);
//! - a removal zeroes the account's words in place (the group keeps its length).
//!
//! The core takes no command while it scans, so a scan sees an upsert's commands either all
//! or up to one of them; the host posts no scan between them.
//!
//! Free blocks are found next-fit (from where the last run was taken, wrapping once), so
//! loading a book in account order costs no search. There is no compaction: when no run of
//! free blocks is long enough, the upsert is refused ([`LayoutError::NoRoom`]) and nothing is
//! sent; the host keeps such an account in software.

use crate::abi::config::{CARD_ACCOUNTS, LANES, TERM_SLOTS, TERM_WORDS, TERM_WORDS_PER_ACCOUNT};
use crate::abi::ring::{Command, TERMS_PER_ENTRY};
use crate::abi::widths::Coeff;
use crate::golden::{CoreCmd, Extent};

/// Words of a block, the unit in which groups take term memory.
pub const BLOCK_WORDS: usize = 4;

/// The size of a card's term memory as the host sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Lanes: a group is `lanes` consecutive accounts.
    pub lanes: usize,
    /// Groups (the group table's entries used).
    pub groups: usize,
    /// Term words per lane (a multiple of [`BLOCK_WORDS`]).
    pub term_words: usize,
}

impl Shape {
    /// This build's card: [`CARD_ACCOUNTS`] accounts on [`LANES`] lanes, [`TERM_WORDS`] words.
    pub const CARD: Shape = Shape { lanes: LANES, groups: CARD_ACCOUNTS / LANES, term_words: TERM_WORDS };

    /// The shape of a card that reports `lanes` and `accounts` in its configuration registers:
    /// [`TERM_WORDS_PER_ACCOUNT`] words per account slot (`4 * accounts / lanes` a lane).
    pub fn of_card(lanes: usize, accounts: usize) -> Shape {
        let groups = accounts.div_ceil(lanes.max(1));
        Shape { lanes, groups, term_words: TERM_WORDS_PER_ACCOUNT * groups }
    }

    /// Accounts the group table covers.
    pub fn accounts(&self) -> usize {
        self.groups * self.lanes
    }
}

/// An upsert the layout cannot make.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The account index is past the layout's accounts.
    #[error("account {0}: the card's group table holds accounts below {1}")]
    Account(usize, usize),
    /// More terms than an account may have.
    #[error("account {0}: {1} terms, at most {max}", max = TERM_SLOTS)]
    TooManyTerms(usize, usize),
    /// No run of free blocks is long enough for the account's group.
    #[error(
        "account {account}: its group needs {len} consecutive free term words and the card's term memory has no such run left"
    )]
    NoRoom {
        /// The account.
        account: usize,
        /// Words its group needs.
        len: usize,
    },
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct PackedLayout {
    shape: Shape,
    terms: Vec<Vec<Coeff>>,
    groups: Vec<Extent>,
    /// Per group: blocks owned (from the extent's first word).
    blocks: Vec<u8>,
    used: Vec<bool>,
    rover: usize,
}

impl Default for PackedLayout {
    fn default() -> Self {
        Self::new()
    }
}

impl PackedLayout {
    /// This build's card ([`Shape::CARD`]), every group empty and every word free. The core's
    /// table must match: send [`PackedLayout::clear_table`] first (the core powers on in the
    /// unpacked layout).
    pub fn new() -> Self {
        Self::with_shape(Shape::CARD)
    }

    /// A layout of `shape`, every group empty.
    pub fn with_shape(shape: Shape) -> Self {
        assert!(shape.term_words.is_multiple_of(BLOCK_WORDS) && shape.lanes > 0);
        Self {
            shape,
            terms: vec![vec![]; shape.accounts()],
            groups: vec![Extent::default(); shape.groups],
            blocks: vec![0; shape.groups],
            used: vec![false; shape.term_words / BLOCK_WORDS],
            rover: 0,
        }
    }

    /// The layout's shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The commands that set every group of this build's core table empty.
    pub fn clear_table() -> Vec<CoreCmd> {
        Self::new().clear_commands()
    }

    /// The commands that set every group of this layout empty.
    pub fn clear_commands(&self) -> Vec<CoreCmd> {
        (0..self.shape.groups).map(|g| CoreCmd::SetGroup { group: g as u16, first: 0, len: 0 }).collect()
    }

    /// A group's extent.
    pub fn extent(&self, group: usize) -> Extent {
        self.groups[group]
    }

    /// Term words scanned (the groups' lengths added up).
    pub fn words_used(&self) -> usize {
        self.groups.iter().map(|e| e.len as usize).sum()
    }

    /// Term words owned by groups (whole blocks).
    pub fn words_reserved(&self) -> usize {
        self.used.iter().filter(|u| **u).count() * BLOCK_WORDS
    }

    /// The account's terms as last upserted.
    pub fn terms(&self, account: usize) -> &[Coeff] {
        &self.terms[account]
    }

    /// Sets `account`'s terms and appends to `out` the core commands that make the card agree
    /// (see the module docs). On an error nothing is appended and nothing changes.
    pub fn upsert(
        &mut self,
        account: usize,
        terms: &[Coeff],
        out: &mut Vec<CoreCmd>,
    ) -> Result<(), LayoutError> {
        if account >= self.shape.accounts() {
            return Err(LayoutError::Account(account, self.shape.accounts()));
        }
        if terms.len() > TERM_SLOTS {
            return Err(LayoutError::TooManyTerms(account, terms.len()));
        }
        let lanes = self.shape.lanes;
        let g = account / lanes;
        let e = self.groups[g];
        let len = terms.len();
        if len <= e.len as usize {
            self.terms[account] = terms.to_vec();
            self.write_account(account, e.first as usize, 0..e.len as usize, out);
            return Ok(());
        }
        if len <= self.blocks[g] as usize * BLOCK_WORDS {
            // Grow within the group's blocks (the others' words there are zero): the account's
            // words, then the longer extent.
            self.terms[account] = terms.to_vec();
            self.write_account(account, e.first as usize, 0..len, out);
            let to = Extent { first: e.first, len: len as u8 };
            out.push(CoreCmd::SetGroup { group: g as u16, first: to.first, len: to.len });
            self.groups[g] = to;
            return Ok(());
        }
        // Move: the group's terms go to free blocks, the old ones stay live until the switch.
        let need = len.div_ceil(BLOCK_WORDS);
        let b = self.free_run(need).ok_or(LayoutError::NoRoom { account, len })?;
        self.terms[account] = terms.to_vec();
        let to = Extent { first: (b * BLOCK_WORDS) as u16, len: len as u8 };
        for a in g * lanes..(g + 1) * lanes {
            self.write_account(a, to.first as usize, 0..need * BLOCK_WORDS, out);
        }
        out.push(CoreCmd::SetGroup { group: g as u16, first: to.first, len: to.len });
        let old = e.first as usize / BLOCK_WORDS;
        self.used[old..old + self.blocks[g] as usize].fill(false);
        self.used[b..b + need].fill(true);
        self.blocks[g] = need as u8;
        self.rover = (b + need) % self.used.len();
        self.groups[g] = to;
        Ok(())
    }

    /// Removes `account`: its words become zeros (commands appended to `out`).
    pub fn remove(&mut self, account: usize, out: &mut Vec<CoreCmd>) -> Result<(), LayoutError> {
        self.upsert(account, &[], out)
    }

    /// Writes slots `slots` of `account`'s terms (zeros past them) at `first + slot`.
    fn write_account(
        &self,
        account: usize,
        first: usize,
        slots: std::ops::Range<usize>,
        out: &mut Vec<CoreCmd>,
    ) {
        let terms = &self.terms[account];
        for s in slots {
            let term = terms.get(s).copied().unwrap_or_default();
            out.push(CoreCmd::WriteTerm { account: account as u16, word: (first + s) as u16, term });
        }
    }

    /// First of `n` free blocks in a row, next-fit from the rover (runs do not wrap).
    fn free_run(&self, n: usize) -> Option<usize> {
        let total = self.used.len();
        let mut run = 0;
        for i in 0..total + n {
            let b = (self.rover + i) % total;
            if b == 0 {
                run = 0;
            }
            run = if self.used[b] { 0 } else { run + 1 };
            if run == n {
                return Some(b + 1 - n);
            }
        }
        None
    }
}

/// The ring commands that carry `cmds` (a layout's output): each run of term writes to one
/// account's consecutive words becomes [`Command::AccountTerms`] entries of up to
/// [`TERMS_PER_ENTRY`] terms, each `SetGroup` a [`Command::SetGroup`]. Other core commands are
/// not the layout's and are refused by a panic.
pub fn ring_commands(cmds: &[CoreCmd], out: &mut Vec<Command>) {
    let mut i = 0;
    while i < cmds.len() {
        match cmds[i] {
            CoreCmd::WriteTerm { account, word, .. } => {
                let mut terms = [Coeff::default(); TERMS_PER_ENTRY];
                let mut count = 0;
                while count < TERMS_PER_ENTRY {
                    match cmds.get(i) {
                        Some(&CoreCmd::WriteTerm { account: a, word: w, term })
                            if a == account && w as usize == word as usize + count =>
                        {
                            terms[count] = term;
                            count += 1;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(Command::AccountTerms { account: account as u32, word, count: count as u8, terms });
            }
            CoreCmd::SetGroup { group, first, len } => {
                out.push(Command::SetGroup { group: group as u32, first, len });
                i += 1;
            }
            other => panic!("not a layout command: {other:?}"),
        }
    }
}
