//! Golden models in plain Rust: what every block of the core computes, cycle counts aside.
//!
//! - [`lane_health_negative`]: one MAC lane. It computes `sum c * p` the way the hardware does
//!   (sign-magnitude coefficient, three Karatsuba partial products, four signed column
//!   accumulators, a carry-normalising pass that yields only the sign) and must equal the plain
//!   wide-integer reference on every input.
//! - [`CoreModel`]: the whole scan core at the level of its command and output ports: price
//!   table, term memory, exposure index, parameters, both scan modes, bitmap words, errors and
//!   statistics. The rust-hdl simulation and the Verilog must produce exactly its outputs.
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
    /// Write one term slot of one account.
    WriteTerm {
        /// Account index.
        account: u16,
        /// Slot index.
        slot: u8,
        /// The term.
        term: Coeff,
    },
    /// Set the scan parameters.
    SetParams {
        /// Accounts scanned.
        accounts: u32,
        /// Term slots scanned per account.
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
}

/// The core's command port fields for a command: (op, addr, sub, data0, data1).
pub fn cmd_fields(cmd: &CoreCmd) -> (u64, u64, u64, u64, u64) {
    match *cmd {
        CoreCmd::SetPrice { asset, liability, spot, stressed } => {
            (op::SET_PRICE, asset as u64, liability as u64, spot as u64, stressed as u64)
        }
        CoreCmd::WriteTerm { account, slot, term } => {
            (op::WRITE_TERM, account as u64, slot as u64, term.coeff as u32 as u64, term.asset as u64)
        }
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
    /// Per account: its term slots.
    pub terms: Vec<[Coeff; TERM_SLOTS]>,
    /// Per asset, per group: some account of the group has held a non-zero term on the asset
    /// since the last reset (a superset of the true exposure: stale bits cost cycles only).
    pub exposure: Vec<Vec<bool>>,
    /// Active accounts.
    pub active_accounts: u32,
    /// Term slots scanned.
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
    /// A core after reset: zero prices and terms, no active accounts, 16 slots.
    pub fn new() -> Self {
        Self {
            prices: vec![PriceEntry::default(); CARD_ASSETS],
            terms: vec![[Coeff::default(); TERM_SLOTS]; CARD_ACCOUNTS],
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

    /// One group's bitmap word.
    pub fn group_word(&self, g: usize) -> CoreOut {
        let (mut breach, mut at_risk) = (0u32, 0u32);
        for l in 0..LANES {
            let terms = &self.terms[g * LANES + l][..self.active_slots as usize];
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
            CoreCmd::WriteTerm { account, slot, term } => {
                if account as usize >= CARD_ACCOUNTS {
                    self.errors |= error_bit::ACCOUNT_RANGE;
                } else if slot as usize >= TERM_SLOTS {
                    self.errors |= error_bit::SLOT_RANGE;
                } else if term.asset as usize >= CARD_ASSETS {
                    self.errors |= error_bit::ASSET_RANGE;
                } else if term.coeff < COEFF_MIN {
                    self.errors |= error_bit::COEFF_RANGE;
                } else {
                    self.terms[account as usize][slot as usize] = term;
                    if term.coeff != 0 {
                        self.exposure[term.asset as usize][account as usize / LANES] = true;
                    }
                }
            }
            CoreCmd::SetParams { accounts, slots } => {
                if accounts as usize > CARD_ACCOUNTS || slots == 0 || slots as usize > TERM_SLOTS {
                    self.errors |= error_bit::PARAMS_RANGE;
                } else {
                    self.active_accounts = accounts;
                    self.active_slots = slots;
                }
            }
            CoreCmd::ScanFull => {
                for g in 0..self.active_groups() as usize {
                    out.push(self.group_word(g));
                }
                out.push(CoreOut::Done);
            }
            CoreCmd::ScanAsset { asset } => {
                if asset as usize >= CARD_ASSETS {
                    self.errors |= error_bit::ASSET_RANGE;
                } else {
                    for g in 0..self.active_groups() as usize {
                        if self.exposure[asset as usize][g] {
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
pub mod throughput {
    /// Cycles from a term's issue register to its group's word on the output port: the lane's
    /// copy of the read address (1), term memory
    /// read (1), term register (1), price read (1), price register (1), operand halves and
    /// Karatsuba sums (1), multiplier input registers (1), partial products (1), their fabric
    /// copy (1), pair sums (1), columns (1), accumulate (1), three carry stages (3), FIFO
    /// write (1).
    pub const PIPELINE_DEPTH: u64 = 16;
    /// Cycles from acceptance to the first issued term: the command register (1), the
    /// sequencer leaves idle (1), the issue register (1).
    pub const START_CYCLES: u64 = 3;
    /// Cycles between the last issued term and the done marker's issue: the end-of-groups
    /// check. The marker then follows the terms down the pipeline.
    pub const END_CYCLES: u64 = 1;
    /// Extra start-up cycles of an incremental scan: reading the first exposure word (32
    /// groups) into a register (the block RAM's output is registered before any logic uses it).
    pub const PROBE_CYCLES: u64 = 3;
    /// Latency from the acceptance of a full scan to the first bitmap word: the first group's
    /// `slots` terms, then the pipeline. Fixed: it does not depend on the book.
    pub fn first_word_latency(slots: u64) -> u64 {
        START_CYCLES + (slots - 1) + PIPELINE_DEPTH
    }
    /// Issue cycles of a full scan of `groups` groups with `slots` slots each: one term per
    /// lane per cycle, so `LANES` multiply-accumulates (spot and stressed each) per cycle.
    pub fn full_scan_issue_cycles(groups: u64, slots: u64) -> u64 {
        groups * slots
    }
    /// Cycles from acceptance to the done marker of a full scan (no output back-pressure).
    pub fn full_scan_cycles(groups: u64, slots: u64) -> u64 {
        START_CYCLES + full_scan_issue_cycles(groups, slots) + END_CYCLES + PIPELINE_DEPTH
    }
    /// Cycles from acceptance to the done marker of an incremental scan over `groups` active
    /// groups of which `exposed` are exposed to the asset: one cycle per skipped group,
    /// `slots` per scanned group.
    pub fn incremental_cycles(groups: u64, exposed: u64, slots: u64) -> u64 {
        START_CYCLES + PROBE_CYCLES + (groups - exposed) + exposed * slots + END_CYCLES + PIPELINE_DEPTH
    }
    /// Cycles the core stays busy (not accepting commands) after the done marker's issue, so
    /// that a following price write cannot overtake a pending price read.
    pub const DRAIN_CYCLES: u64 = 4;
    /// Cycles from a term write with a non-zero coefficient to the next command the port
    /// takes: the exposure index's read-modify-write.
    pub const TERM_WRITE_CYCLES: u64 = 4;
    /// Cycles from a SET_PARAMS to the next command the port takes: the decode, then the
    /// cycle in which the parameter registers take the checked values.
    pub const PARAMS_CYCLES: u64 = 2;
}
