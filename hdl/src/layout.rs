//! The host's side of the packed term memory: where each group's terms live, and the core
//! commands that put an account's terms there ([`PackedLayout`]).
//!
//! The core walks, for each group of [`LANES`] accounts, `len` consecutive words of every lane
//! from the group's `first` word (the group table, [`CoreCmd::SetGroup`]); `len` is the longest
//! account's term count. This layout keeps a copy of every account's terms and of the table:
//!
//! - an upsert that fits the group's length rewrites the account's words in place (its terms,
//!   then zeros up to the length), as the unpacked card always did;
//! - an upsert that makes the account longer than its group moves the group: every member's
//!   terms are written (padded to the new length) into free words first, then one `SetGroup`
//!   switches the table entry, so a scan between any two of these commands sees the whole group
//!   either at its old words or at its new ones; the old words are free after the switch;
//! - a removal zeroes the account's words in place (the group keeps its length).
//!
//! Free words are found first-fit in a map of the words live groups use. There is no
//! compaction: when no run of free words is long enough, the upsert is refused
//! ([`LayoutError::NoRoom`]) and nothing is sent.

use crate::abi::config::{CORE_ACCOUNTS, GROUPS, LANES, TERM_SLOTS, TERM_WORDS};
use crate::abi::widths::Coeff;
use crate::golden::{CoreCmd, Extent};

/// An upsert the layout cannot make.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The account index is past the core's accounts.
    #[error("account {0}: the core addresses accounts below {max}", max = CORE_ACCOUNTS)]
    Account(usize),
    /// More terms than an account may have.
    #[error("account {0}: {1} terms, at most {max}", max = TERM_SLOTS)]
    TooManyTerms(usize, usize),
    /// No run of free words is long enough for the account's group.
    #[error("account {account}: its group needs {len} consecutive free term words; none left")]
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
    terms: Vec<Vec<Coeff>>,
    groups: Vec<Extent>,
    used: Vec<bool>,
}

impl Default for PackedLayout {
    fn default() -> Self {
        Self::new()
    }
}

impl PackedLayout {
    /// Every group empty and every word free. The core's table must match: send
    /// [`PackedLayout::clear_table`] first (the core powers on in the unpacked layout).
    pub fn new() -> Self {
        Self {
            terms: vec![vec![]; CORE_ACCOUNTS],
            groups: vec![Extent::default(); GROUPS],
            used: vec![false; TERM_WORDS],
        }
    }

    /// The commands that set every group of the core's table empty.
    pub fn clear_table() -> Vec<CoreCmd> {
        (0..GROUPS).map(|g| CoreCmd::SetGroup { group: g as u16, first: 0, len: 0 }).collect()
    }

    /// A group's extent.
    pub fn extent(&self, group: usize) -> Extent {
        self.groups[group]
    }

    /// Term words in use (the groups' lengths added up).
    pub fn words_used(&self) -> usize {
        self.used.iter().filter(|u| **u).count()
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
        if account >= CORE_ACCOUNTS {
            return Err(LayoutError::Account(account));
        }
        if terms.len() > TERM_SLOTS {
            return Err(LayoutError::TooManyTerms(account, terms.len()));
        }
        let g = account / LANES;
        let e = self.groups[g];
        if terms.len() <= e.len as usize {
            self.terms[account] = terms.to_vec();
            self.write_account(account, e, out);
            return Ok(());
        }
        // Grow: the group moves to free words, the old ones stay live until the switch.
        let len = terms.len();
        let first = self.free_run(len).ok_or(LayoutError::NoRoom { account, len })?;
        self.terms[account] = terms.to_vec();
        let to = Extent { first: first as u16, len: len as u8 };
        for a in g * LANES..(g + 1) * LANES {
            self.write_account(a, to, out);
        }
        out.push(CoreCmd::SetGroup { group: g as u16, first: to.first, len: to.len });
        self.mark(e, false);
        self.mark(to, true);
        self.groups[g] = to;
        Ok(())
    }

    /// Removes `account`: its words become zeros (commands appended to `out`).
    pub fn remove(&mut self, account: usize, out: &mut Vec<CoreCmd>) -> Result<(), LayoutError> {
        self.upsert(account, &[], out)
    }

    fn write_account(&self, account: usize, e: Extent, out: &mut Vec<CoreCmd>) {
        let terms = &self.terms[account];
        for s in 0..e.len as usize {
            let word = ((e.first as usize + s) % TERM_WORDS) as u16;
            let term = terms.get(s).copied().unwrap_or_default();
            out.push(CoreCmd::WriteTerm { account: account as u16, word, term });
        }
    }

    fn mark(&mut self, e: Extent, used: bool) {
        for s in 0..e.len as usize {
            self.used[(e.first as usize + s) % TERM_WORDS] = used;
        }
    }

    fn free_run(&self, len: usize) -> Option<usize> {
        let mut run = 0;
        for (w, u) in self.used.iter().enumerate() {
            run = if *u { 0 } else { run + 1 };
            if run == len {
                return Some(w + 1 - len);
            }
        }
        None
    }
}
