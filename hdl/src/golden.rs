//! Golden models in plain Rust: what every block of the core computes, cycle counts aside.
//!
//! - [`lane_health_negative`]: one MAC lane. It computes `sum c * p` the way the hardware does
//!   (sign-magnitude coefficient, three Karatsuba partial products, four signed column
//!   accumulators, a carry-normalising pass that yields only the sign) and must equal the plain
//!   wide-integer reference on every input.
//! - [`CoreModel`]: the whole scan core at the level of its command and output ports: price
//!   table, packed term memory and its group table, exposure index, parameters, both scan
//!   modes, bitmap words, errors and statistics. The rust-hdl simulation and the Verilog must produce exactly its outputs.
//! - [`throughput`]: the cycle model (full scan and incremental tick) the simulation confirms.

use crate::abi::config::*;
use crate::abi::regs::error_bit;
use crate::abi::widths::{COEFF_MIN, Coeff, PriceEntry, QuotedPrice};

/// Width of the MAC lane's column accumulators (`core::mac_lane` uses this one).
pub const COL_BITS: usize = 24;

/// Golden model of the `Mul17` block: the 34-bit product of two 17-bit operands as its low 16
/// bits and its high 18 bits, `(lo, hi)` with `a * b = lo + hi * 2^16`.
pub fn mul17_model(a: u32, b: u32) -> (u32, u32) {
    let p = (a as u64 & 0x1_FFFF) * (b as u64 & 0x1_FFFF);
    ((p & 0xFFFF) as u32, (p >> 16) as u32)
}

/// Column contributions of one product `mag * price` (both below 2^32), as the MAC lane folds
/// its three Karatsuba partial products `p0 = a0 * b0`, `p1 = a1 * b1` (16x16) and
/// `p2 = (a0 + a1) * (b0 + b1)` (17x17, below 2^34), where `a0, a1` and `b0, b1` are the 16-bit
/// halves of `mag` and `price`: `mag * price = p0 + (p2 - p0 - p1) * 2^16 + p1 * 2^32`, so with
/// `x = xL + xH * 2^16` the columns of weight 2^0, 2^16, 2^32, 2^48 are
/// `p0L`, `p0H + p2L - p0L - p1L`, `p2H + p1L - p0H - p1H`, `p1H`: signed, each in
/// `(-2^17, 2^18)`, and `sum col[k] * 2^(16 k) = mag * price` exactly.
pub fn product_columns(mag: u32, price: u32) -> [i64; 4] {
    let (a0, a1) = (mag as u64 & 0xFFFF, mag as u64 >> 16);
    let (b0, b1) = (price as u64 & 0xFFFF, price as u64 >> 16);
    let p0 = a0 * b0;
    let p1 = a1 * b1;
    let (p2l, p2h) = mul17_model((a0 + a1) as u32, (b0 + b1) as u32);
    let lo = |x: u64| (x & 0xFFFF) as i64;
    let hi = |x: u64| (x >> 16) as i64;
    [lo(p0), hi(p0) + p2l as i64 - lo(p0) - lo(p1), p2h as i64 + lo(p1) - hi(p0) - hi(p1), hi(p1)]
}

/// Signed column accumulators of an account: `sum` over terms of `+-columns`.
pub fn lane_columns(terms: &[(i32, u32)]) -> [i64; 4] {
    let mut acc = [0i64; 4];
    for &(c, p) in terms {
        let cols = product_columns(c.unsigned_abs(), p);
        for k in 0..4 {
            if c < 0 {
                acc[k] -= cols[k];
            } else {
                acc[k] += cols[k];
            }
            // The hardware's accumulators are COL_BITS-bit two's complement: the exact sum
            // must stay inside them (16 terms: |acc| < 16 * 2^18 = 2^22).
            let lim = 1i64 << (COL_BITS - 1);
            assert!((-lim..lim).contains(&acc[k]), "column {k} leaves {} bits", COL_BITS);
        }
    }
    acc
}

/// The carry-normalising pass: `value = r0 + r1*2^16 + r2*2^32 + t3*2^48` with `r*` in
/// `0..2^16`, so `value < 0` iff `t3 < 0`.
pub fn columns_negative(acc: [i64; 4]) -> bool {
    let t1 = acc[1] + (acc[0] >> 16);
    let t2 = acc[2] + (t1 >> 16);
    let t3 = acc[3] + (t2 >> 16);
    t3 < 0
}

/// One lane's verdict for one account: `sum c * p < 0`, computed as the hardware does.
/// `terms` pairs each coefficient with the price already selected for its sign.
pub fn lane_health_negative(terms: &[(i32, u32)]) -> bool {
    columns_negative(lane_columns(terms))
}

/// A command at the core's command port (one per accepted cycle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreCmd {
    /// Write one side of an asset's prices (`liability`: the side used by negative
    /// coefficients).
    SetPrice {
        /// Asset index.
        asset: u16,
        /// Which side.
        liability: bool,
        /// Spot price of that side.
        spot: u32,
        /// Stressed price of that side.
        stressed: u32,
    },
    /// Write one term word in the lane of an account (`account % LANES`); the account's group
    /// (`account / LANES`) gains the term's exposure bit. Which words an account's terms are is
    /// its group's extent ([`CoreCmd::SetGroup`]); [`unpacked_word`] gives them in the
    /// power-on layout.
    WriteTerm {
        /// Account index (below [`CORE_ACCOUNTS`]).
        account: u16,
        /// Term word in the account's lane (below [`TERM_WORDS`]).
        word: u16,
        /// The term.
        term: Coeff,
    },
    /// Point a group at its term words: a scan walks words `first .. first + len` (modulo
    /// [`TERM_WORDS`]) of every lane for the group; `len` 0 is an empty group (no word). One
    /// command switches the whole entry, so a group is moved by writing its terms elsewhere
    /// first and then this.
    SetGroup {
        /// Group index (below [`GROUPS`]).
        group: u16,
        /// First term word.
        first: u16,
        /// Term words per account, at most [`TERM_SLOTS`].
        len: u8,
    },
    /// Set the scan parameters.
    SetParams {
        /// Accounts scanned.
        accounts: u32,
        /// Most term words scanned per group (a cap on each group's `len`).
        slots: u32,
    },
    /// Scan every active group.
    ScanFull,
    /// Scan the groups exposed to one asset.
    ScanAsset {
        /// The moved asset.
        asset: u16,
    },
}

/// Opcodes on the core's `cmd_op` port.
pub mod op {
    /// No operation.
    pub const NOP: u64 = 0;
    /// [`super::CoreCmd::SetPrice`].
    pub const SET_PRICE: u64 = 1;
    /// [`super::CoreCmd::WriteTerm`].
    pub const WRITE_TERM: u64 = 2;
    /// [`super::CoreCmd::SetParams`].
    pub const SET_PARAMS: u64 = 3;
    /// [`super::CoreCmd::ScanFull`].
    pub const SCAN_FULL: u64 = 4;
    /// [`super::CoreCmd::ScanAsset`].
    pub const SCAN_ASSET: u64 = 5;
    /// [`super::CoreCmd::SetGroup`].
    pub const SET_GROUP: u64 = 6;
}

/// Bit of `cmd_data1` where a term write's word address starts (the asset is in bits 15:0).
pub const WORD_SHIFT: u32 = 16;

/// One group's entry in the group table: its first term word and its length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    /// First term word.
    pub first: u16,
    /// Words per account (0: empty).
    pub len: u8,
}

/// The group table's power-on contents (the block RAM starts at zero and holds each entry
/// XOR this, so zero reads as it): group `g < UNPACKED_GROUPS` at words `16 g ..= 16 g + 15`,
/// every other group empty. So a host that writes `unpacked_word(account, slot)` and never
/// sets a group sees the fixed 16-slot layout of its first `UNPACKED_GROUPS * LANES` accounts.
pub fn unpacked_extent(group: usize) -> Extent {
    let first = ((group * TERM_SLOTS) % TERM_WORDS) as u16;
    Extent { first, len: if group < UNPACKED_GROUPS { TERM_SLOTS as u8 } else { 0 } }
}

/// The term word of slot `slot` of `account` in the power-on layout ([`unpacked_extent`]);
/// `account` below `UNPACKED_GROUPS * LANES`, `slot` below [`TERM_SLOTS`].
pub fn unpacked_word(account: usize, slot: usize) -> u16 {
    debug_assert!(account < UNPACKED_GROUPS * LANES && slot < TERM_SLOTS);
    ((account / LANES) * TERM_SLOTS + slot) as u16
}

/// The core's command port fields for a command: (op, addr, sub, data0, data1).
pub fn cmd_fields(cmd: &CoreCmd) -> (u64, u64, u64, u64, u64) {
    match *cmd {
        CoreCmd::SetPrice { asset, liability, spot, stressed } => {
            (op::SET_PRICE, asset as u64, liability as u64, spot as u64, stressed as u64)
        }
        CoreCmd::WriteTerm { account, word, term } => (
            op::WRITE_TERM,
            account as u64,
            0,
            term.coeff as u32 as u64,
            term.asset as u64 | (word as u64) << WORD_SHIFT,
        ),
        CoreCmd::SetGroup { group, first, len } => (op::SET_GROUP, group as u64, len as u64, first as u64, 0),
        CoreCmd::SetParams { accounts, slots } => (op::SET_PARAMS, 0, 0, accounts as u64, slots as u64),
        CoreCmd::ScanFull => (op::SCAN_FULL, 0, 0, 0, 0),
        CoreCmd::ScanAsset { asset } => (op::SCAN_ASSET, asset as u64, 0, 0, 0),
    }
}

/// An entry at the core's output port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoreOut {
    /// One group's bitmap bits: bit `l` is account `group * LANES + l`.
    Word {
        /// Group index.
        group: u32,
        /// Breach bits.
        breach: u32,
        /// At-risk bits.
        at_risk: u32,
    },
    /// The scan is finished (after its last word).
    Done,
}

/// The scan core's golden model.
#[derive(Clone, Debug)]
pub struct CoreModel {
    /// Per asset: the spot and stressed price vectors.
    pub prices: Vec<PriceEntry>,
    /// Per lane: its term words.
    pub term_words: Vec<Vec<Coeff>>,
    /// Per group: its extent.
    pub groups: Vec<Extent>,
    /// Per asset, per group: some account of the group has held a non-zero term on the asset
    /// since the last reset (a superset of the true exposure: stale bits cost cycles only).
    pub exposure: Vec<Vec<bool>>,
    /// Active accounts.
    pub active_accounts: u32,
    /// Most term words scanned per group.
    pub active_slots: u32,
    /// Sticky error bits.
    pub errors: u32,
    /// Commands accepted.
    pub commands: u32,
    /// Scans completed.
    pub scans: u32,
    /// Words sent.
    pub words: u32,
}

impl Default for CoreModel {
    fn default() -> Self {
        Self::new()
    }
}

impl CoreModel {
    /// A core after power-on: zero prices and terms, the unpacked group layout
    /// ([`unpacked_extent`]), no active accounts, 16 slots.
    pub fn new() -> Self {
        Self {
            prices: vec![PriceEntry::default(); CARD_ASSETS],
            term_words: vec![vec![Coeff::default(); TERM_WORDS]; LANES],
            groups: (0..GROUPS).map(unpacked_extent).collect(),
            exposure: vec![vec![false; GROUPS]; CARD_ASSETS],
            active_accounts: 0,
            active_slots: TERM_SLOTS as u32,
            errors: 0,
            commands: 0,
            scans: 0,
            words: 0,
        }
    }

    /// Active groups: `ceil(active_accounts / LANES)`.
    pub fn active_groups(&self) -> u32 {
        self.active_accounts.div_ceil(LANES as u32)
    }

    fn price(&self, asset: u16) -> PriceEntry {
        self.prices[asset as usize]
    }

    /// Words a scan walks for group `g`: its length, capped by the active slots.
    pub fn walked_len(&self, g: usize) -> usize {
        (self.groups[g].len as usize).min(self.active_slots as usize)
    }

    /// The term words a scan reads for `account` (its group's walked extent in its lane).
    pub fn account_terms(&self, account: usize) -> Vec<Coeff> {
        let (g, l) = (account / LANES, account % LANES);
        let first = self.groups[g].first as usize;
        (0..self.walked_len(g)).map(|i| self.term_words[l][(first + i) % TERM_WORDS]).collect()
    }

    /// One group's bitmap word.
    pub fn group_word(&self, g: usize) -> CoreOut {
        let (mut breach, mut at_risk) = (0u32, 0u32);
        for l in 0..LANES {
            let terms = &self.account_terms(g * LANES + l);
            let pick = |q: fn(&PriceEntry) -> QuotedPrice| {
                terms
                    .iter()
                    .map(|t| (t.coeff, q(&self.price(t.asset)).for_coeff(t.coeff)))
                    .collect::<Vec<_>>()
            };
            breach |= (lane_health_negative(&pick(|p| p.spot)) as u32) << l;
            at_risk |= (lane_health_negative(&pick(|p| p.stressed)) as u32) << l;
        }
        CoreOut::Word { group: g as u32, breach, at_risk }
    }

    /// Applies one command; returns what the core sends for it.
    pub fn apply(&mut self, cmd: &CoreCmd) -> Vec<CoreOut> {
        self.commands = self.commands.wrapping_add(1);
        let mut out = vec![];
        match *cmd {
            CoreCmd::SetPrice { asset, liability, spot, stressed } => {
                if asset as usize >= CARD_ASSETS {
                    self.errors |= error_bit::ASSET_RANGE;
                } else {
                    let e = &mut self.prices[asset as usize];
                    if liability {
                        e.spot.liability = spot;
                        e.stressed.liability = stressed;
                    } else {
                        e.spot.asset = spot;
                        e.stressed.asset = stressed;
                    }
                }
            }
            CoreCmd::WriteTerm { account, word, term } => {
                if account as usize >= CORE_ACCOUNTS {
                    self.errors |= error_bit::ACCOUNT_RANGE;
                } else if word as usize >= TERM_WORDS {
                    self.errors |= error_bit::SLOT_RANGE;
                } else if term.asset as usize >= CARD_ASSETS {
                    self.errors |= error_bit::ASSET_RANGE;
                } else if term.coeff < COEFF_MIN {
                    self.errors |= error_bit::COEFF_RANGE;
                } else {
                    self.term_words[account as usize % LANES][word as usize] = term;
                    if term.coeff != 0 {
                        self.exposure[term.asset as usize][account as usize / LANES] = true;
                    }
                }
            }
            CoreCmd::SetGroup { group, first, len } => {
                if group as usize >= GROUPS {
                    self.errors |= error_bit::ACCOUNT_RANGE;
                } else if first as usize >= TERM_WORDS || len as usize > TERM_SLOTS {
                    self.errors |= error_bit::SLOT_RANGE;
                } else {
                    self.groups[group as usize] = Extent { first, len };
                }
            }
            CoreCmd::SetParams { accounts, slots } => {
                if accounts as usize > CORE_ACCOUNTS || slots == 0 || slots as usize > TERM_SLOTS {
                    self.errors |= error_bit::PARAMS_RANGE;
                } else {
                    self.active_accounts = accounts;
                    self.active_slots = slots;
                }
            }
            CoreCmd::ScanFull => {
                for g in 0..self.active_groups() as usize {
                    if self.walked_len(g) > 0 {
                        out.push(self.group_word(g));
                    }
                }
                out.push(CoreOut::Done);
            }
            CoreCmd::ScanAsset { asset } => {
                if asset as usize >= CARD_ASSETS {
                    self.errors |= error_bit::ASSET_RANGE;
                } else {
                    for g in 0..self.active_groups() as usize {
                        if self.exposure[asset as usize][g] && self.walked_len(g) > 0 {
                            out.push(self.group_word(g));
                        }
                    }
                    out.push(CoreOut::Done);
                }
            }
        }
        let words = out.iter().filter(|o| matches!(o, CoreOut::Word { .. })).count() as u32;
        self.words = self.words.wrapping_add(words);
        if !out.is_empty() {
            self.scans = self.scans.wrapping_add(1);
        }
        out
    }
}

/// The cycle model of the core, confirmed by the rust-hdl simulation (see `docs/CORE.md`).
/// Cycle `c` is the one in which the core accepts the scan command; a result "at `c + n`" is
/// on the output port (with `out_valid`) `n` cycles later.
///
/// A scan is two stages running side by side: the *loader* takes the group table's entries
/// one group per cycle from a prefetch queue that the table's reads keep filled from the
/// walk's first cycle on (skipping a group not exposed to the tick's asset, or empty, in that
/// cycle) into a one-entry buffer, and the *issuer* takes the buffered extent and issues its words, one
/// per cycle, taking the next extent in the cycle of a group's last word. [`walk`] steps the
/// two exactly as the sequencer does; with every group scanned and at least one word long,
/// a scan of `G` groups of `S` words issues for `G*S` cycles without a gap.
pub mod throughput {
    /// Cycles from a term's issue register to its group's word on the output port: the lane's
    /// copy of the read address (1), term memory
    /// read (1), term register (1), price read (1), price register (1), operand halves and
    /// Karatsuba sums (1), multiplier input registers (1), partial products (1), their fabric
    /// copy (1), pair sums (1), columns (1), accumulate (1), three carry stages (3), FIFO
    /// write (1).
    pub const PIPELINE_DEPTH: u64 = 16;
    /// Cycles from acceptance to the walk's first cycle (the loader's first look at group 0's
    /// entry) in a full scan: the command register (1), the decode (1; group 0's table word
    /// is read at that cycle's end), the block RAM's output register (1), the prefetch queue
    /// (1).
    pub const FULL_WALK_START: u64 = 4;
    /// The same for an incremental scan: 3 more cycles read the asset's first exposure word
    /// (32 groups) into a register (the block RAM's output is registered before any logic
    /// uses it).
    pub const INCR_WALK_START: u64 = 7;
    /// Cycles the core stays busy (not accepting commands) after the done marker's issue, so
    /// that a following price write cannot overtake a pending price read.
    pub const DRAIN_CYCLES: u64 = 4;
    /// Cycles from a term write with a non-zero coefficient to the next command the port
    /// takes: the exposure index's read-modify-write.
    pub const TERM_WRITE_CYCLES: u64 = 4;
    /// Cycles from a SET_PARAMS to the next command the port takes: the decode, then the
    /// cycle in which the parameter registers take the checked values.
    pub const PARAMS_CYCLES: u64 = 2;
    /// Cycles from a SET_GROUP to the next command the port takes: the decode, then the cycle
    /// in which the table is written (so a scan accepted next reads the new entry).
    pub const GROUP_CYCLES: u64 = 2;

    /// One scan's schedule, in cycles from the walk's first cycle.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Walk {
        /// Per scanned group, the cycle its last word is issued.
        pub last_issue: Vec<u64>,
        /// The cycle the sequencer finds the walk over (the done marker is issued in the next).
        pub end: u64,
    }

    /// Steps the loader and the issuer over the active groups: `groups[g]` is the number of
    /// words the scan walks for group `g` (its length capped by the active slots), or `None`
    /// for a group it skips (not exposed, or empty). No output back-pressure.
    pub fn walk(groups: &[Option<u64>]) -> Walk {
        let (mut ga, mut buf, mut left, mut t) = (0usize, None::<u64>, 0u64, 0u64);
        let mut last_issue = vec![];
        loop {
            if ga == groups.len() && buf.is_none() && left == 0 {
                return Walk { last_issue, end: t };
            }
            // Issuer: one word per cycle; the buffered extent is taken when idle or at a last word.
            let mut take = false;
            if left > 0 {
                if left == 1 {
                    last_issue.push(t);
                    take = buf.is_some();
                }
                left -= 1;
            } else {
                take = buf.is_some();
            }
            let taken = if take { buf.take() } else { None };
            // Loader: one group per cycle, into the buffer when it is free (or being taken).
            if ga < groups.len() {
                match groups[ga] {
                    None => ga += 1,
                    Some(len) if buf.is_none() => {
                        buf = Some(len);
                        ga += 1;
                    }
                    Some(_) => {}
                }
            }
            if let Some(len) = taken {
                left = len;
            }
            t += 1;
        }
    }

    /// Cycles from a scan's acceptance to its bitmap words and its done marker on the output
    /// port, for a walk starting `start` cycles after acceptance ([`FULL_WALK_START`] or
    /// [`INCR_WALK_START`]): a word leaves the issue register a cycle after its issue and
    /// takes [`PIPELINE_DEPTH`] more; the done marker is issued a cycle after the walk's end.
    pub fn scan_cycles(start: u64, groups: &[Option<u64>]) -> (Vec<u64>, u64) {
        let w = walk(groups);
        let words = w.last_issue.iter().map(|t| start + t + 1 + PIPELINE_DEPTH).collect();
        (words, start + w.end + 2 + PIPELINE_DEPTH)
    }

    /// Cycles from acceptance to the done marker of a full scan of `groups` groups of `slots`
    /// words each: `G*S + 24`.
    pub fn full_scan_cycles(groups: u64, slots: u64) -> u64 {
        scan_cycles(FULL_WALK_START, &vec![Some(slots); groups as usize]).1
    }

    /// Latency from the acceptance of a full scan to the first bitmap word, `S + 22`: the first
    /// group's extent is read and buffered, then its `S` words, then the pipeline.
    pub fn first_word_latency(slots: u64) -> u64 {
        scan_cycles(FULL_WALK_START, &[Some(slots)]).0[0]
    }
}
