//! Driving the rust-hdl scan core from Rust: a hand-clocked simulation loop (about ten times
//! faster than rust-hdl's threaded testbench) with optional random idle cycles on the command
//! port and random back-pressure on the output port.
//!
//! ```no_run
//! use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
//! use liqscan_hdl::core::driver::scan;
//! let prices = vec![PriceEntry { spot: QuotedPrice { asset: 10, liability: 11 }, ..Default::default() }];
//! let accounts = vec![vec![Coeff { asset: 0, coeff: -5 }]];
//! let run = scan(&accounts, &prices).unwrap();
//! assert_eq!(run.breach[0] & 1, 1);
//! println!("{} cycles", run.scan_cycles);
//! ```

use crate::abi::config::*;
use crate::abi::widths::{Coeff, PriceEntry, TermError, check_terms};
use crate::core::regs::READ_LATENCY;
use crate::core::scan_core::ScanCore;
use crate::golden::{CoreCmd, CoreOut, Extent, cmd_fields, unpacked_word};
use rust_hdl::prelude::*;

/// Random idle cycles and back-pressure: probabilities in 1/256.
#[derive(Clone, Copy, Debug, Default)]
pub struct Jitter {
    /// Chance that the command port is idle in a cycle where a command is waiting.
    pub idle: u8,
    /// Chance that the output consumer is not ready in a cycle.
    pub stall: u8,
    /// Seed of the generator.
    pub seed: u64,
}

/// The core under simulation.
pub struct CoreSim {
    /// The rust-hdl circuit.
    pub uut: Box<ScanCore>,
    /// Cycles run since construction.
    pub cycle: u64,
    jitter: Jitter,
    rng: u64,
}

/// One output with the cycle it left the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timed<T> {
    /// The value.
    pub value: T,
    /// Cycle (counted by [`CoreSim::cycle`]).
    pub cycle: u64,
}

impl Default for CoreSim {
    fn default() -> Self {
        Self::new(Jitter::default())
    }
}

impl CoreSim {
    /// A core after a synchronous reset, with the given jitter.
    pub fn new(jitter: Jitter) -> Self {
        let mut uut = Box::new(ScanCore::new(0));
        uut.connect_all();
        let mut s = Self { uut, cycle: 0, jitter, rng: jitter.seed | 1 };
        s.uut.reset.next = true;
        s.tick();
        s.tick();
        s.uut.reset.next = false;
        s
    }

    fn chance(&mut self, p: u8) -> bool {
        // xorshift64
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ((self.rng >> 24) & 0xFF) < p as u64
    }

    fn settle(&mut self) {
        assert!(simulate(&mut *self.uut, 1000), "the core's logic did not settle");
    }

    /// Presents the inputs already set, settles, then clocks one rising edge.
    fn tick(&mut self) {
        self.uut.clock.next = Clock { clk: false };
        self.settle();
        self.uut.clock.next = Clock { clk: true };
        self.settle();
        self.cycle += 1;
    }

    fn set_cmd(&mut self, cmd: Option<&CoreCmd>) {
        let u = &mut self.uut;
        match cmd {
            Some(c) => {
                let (op, addr, sub, d0, d1) = cmd_fields(c);
                u.cmd_valid.next = true;
                u.cmd_op.next = op.into();
                u.cmd_addr.next = addr.into();
                u.cmd_sub.next = sub.into();
                u.cmd_data0.next = d0.into();
                u.cmd_data1.next = d1.into();
            }
            None => u.cmd_valid.next = false,
        }
    }

    fn take_output(&mut self, out: &mut Vec<Timed<CoreOut>>) {
        let u = &self.uut;
        if u.out_valid.val() && u.out_ready.val() {
            let value = if u.out_done.val() {
                CoreOut::Done
            } else {
                CoreOut::Word {
                    group: u.out_group.val().to_u32(),
                    breach: u.out_breach.val().to_u32(),
                    at_risk: u.out_at_risk.val().to_u32(),
                }
            };
            out.push(Timed { value, cycle: self.cycle });
        }
    }

    /// Runs `cmds` through the command port (in order, one per accepted cycle) and collects
    /// every output until the core is idle and empty. Returns the outputs and each command's
    /// acceptance cycle.
    pub fn run(&mut self, cmds: &[CoreCmd]) -> (Vec<Timed<CoreOut>>, Vec<u64>) {
        let mut out = vec![];
        let mut accepted = Vec::with_capacity(cmds.len());
        let mut next = 0;
        let mut quiet = 0;
        let limit = self.cycle + 1_000_000 + 64 * cmds.len() as u64 * TERM_SLOTS as u64 * GROUPS as u64;
        while next < cmds.len() || quiet < 24 {
            assert!(self.cycle < limit, "the core stopped making progress");
            let idle = self.chance(self.jitter.idle);
            let offer = if next < cmds.len() && !idle { Some(&cmds[next]) } else { None };
            self.set_cmd(offer);
            let ready = !self.chance(self.jitter.stall);
            self.uut.out_ready.next = ready;
            self.uut.clock.next = Clock { clk: false };
            self.settle();
            if offer.is_some() && self.uut.cmd_ready.val() {
                accepted.push(self.cycle);
                next += 1;
            }
            self.take_output(&mut out);
            let active = self.uut.busy.val() || self.uut.out_valid.val();
            self.uut.clock.next = Clock { clk: true };
            self.settle();
            self.cycle += 1;
            quiet = if active || next < cmds.len() { 0 } else { quiet + 1 };
        }
        self.set_cmd(None);
        (out, accepted)
    }

    /// Reads a register: the address, then [`READ_LATENCY`] clock edges to the data.
    pub fn read_reg(&mut self, offset: u32) -> u32 {
        self.uut.reg_addr.next = (offset as u64).into();
        self.uut.reg_write.next = false;
        for _ in 0..READ_LATENCY {
            self.tick();
        }
        self.uut.reg_rdata.val().to_u32()
    }

    /// Writes a register (one cycle).
    pub fn write_reg(&mut self, offset: u32, value: u32) {
        self.uut.reg_addr.next = (offset as u64).into();
        self.uut.reg_wdata.next = (value as u64).into();
        self.uut.reg_write.next = true;
        self.tick();
        self.uut.reg_write.next = false;
    }
}

/// The commands that load `accounts` (at most `UNPACKED_GROUPS * LANES`) and `prices` into a core in
/// the power-on layout ([`unpacked_word`]) and set the parameters: two price writes per asset,
/// one term write per slot in use (plus zeros up to `slots`).
pub fn load_commands(accounts: &[Vec<Coeff>], prices: &[PriceEntry]) -> Result<Vec<CoreCmd>, TermError> {
    let slots = accounts.iter().map(|a| a.len()).max().unwrap_or(1).max(1);
    let mut cmds = price_commands(prices);
    for (i, terms) in accounts.iter().enumerate() {
        check_terms(terms, prices.len().min(CARD_ASSETS))?;
        for s in 0..slots {
            let term = terms.get(s).copied().unwrap_or_default();
            cmds.push(CoreCmd::WriteTerm { account: i as u16, word: unpacked_word(i, s), term });
        }
    }
    cmds.push(CoreCmd::SetParams { accounts: accounts.len() as u32, slots: slots as u32 });
    Ok(cmds)
}

/// A book the packed layout cannot hold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PackError {
    /// More accounts than the core addresses.
    #[error("{0} accounts: the core addresses at most {max}", max = CORE_ACCOUNTS)]
    TooManyAccounts(usize),
    /// The groups' term words do not fit one lane's term memory.
    #[error("the book needs {0} term words per lane: the term memory has {max}", max = TERM_WORDS)]
    TooManyWords(usize),
    /// An account's terms are out of range.
    #[error("account {0}: {1}")]
    Term(usize, TermError),
}

/// The packed layout of accounts with `term_counts[i]` terms each: group `g` (accounts
/// `g*LANES ..`) takes as many words as its longest account has terms, the groups one after
/// the other from word 0. Groups past the book are empty.
pub fn packed_extents(term_counts: &[usize]) -> Result<Vec<Extent>, PackError> {
    if term_counts.len() > CORE_ACCOUNTS {
        return Err(PackError::TooManyAccounts(term_counts.len()));
    }
    let mut extents = vec![Extent::default(); GROUPS];
    let mut next = 0usize;
    for (g, counts) in term_counts.chunks(LANES).enumerate() {
        let len = counts.iter().copied().max().unwrap_or(0);
        extents[g] = Extent { first: (next % TERM_WORDS) as u16, len: len as u8 };
        next += len;
    }
    if next > TERM_WORDS {
        return Err(PackError::TooManyWords(next));
    }
    Ok(extents)
}

/// The commands that load `accounts` (at most [`CORE_ACCOUNTS`], packed by
/// [`packed_extents`]) and `prices`: two price writes per asset, each group's term words (zeros
/// where an account has fewer terms than its group's length), every group's extent, and the
/// parameters (all active accounts, up to 16 words per group).
pub fn packed_load_commands(
    accounts: &[Vec<Coeff>],
    prices: &[PriceEntry],
) -> Result<Vec<CoreCmd>, PackError> {
    for (i, terms) in accounts.iter().enumerate() {
        check_terms(terms, prices.len().min(CARD_ASSETS)).map_err(|e| PackError::Term(i, e))?;
    }
    let counts: Vec<usize> = accounts.iter().map(|a| a.len()).collect();
    let extents = packed_extents(&counts)?;
    let mut cmds = price_commands(prices);
    for (i, terms) in accounts.iter().enumerate() {
        let e = extents[i / LANES];
        for s in 0..e.len as usize {
            let word = ((e.first as usize + s) % TERM_WORDS) as u16;
            cmds.push(CoreCmd::WriteTerm {
                account: i as u16,
                word,
                term: terms.get(s).copied().unwrap_or_default(),
            });
        }
    }
    for (g, e) in extents.iter().enumerate() {
        cmds.push(CoreCmd::SetGroup { group: g as u16, first: e.first, len: e.len });
    }
    cmds.push(CoreCmd::SetParams { accounts: accounts.len() as u32, slots: TERM_SLOTS as u32 });
    Ok(cmds)
}

/// Two price writes per asset (asset side, liability side).
pub fn price_commands(prices: &[PriceEntry]) -> Vec<CoreCmd> {
    let mut cmds = vec![];
    for (a, p) in prices.iter().enumerate() {
        let asset = a as u16;
        cmds.push(CoreCmd::SetPrice {
            asset,
            liability: false,
            spot: p.spot.asset,
            stressed: p.stressed.asset,
        });
        cmds.push(CoreCmd::SetPrice {
            asset,
            liability: true,
            spot: p.spot.liability,
            stressed: p.stressed.liability,
        });
    }
    cmds
}

/// The result of one full scan on the simulated core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanRun {
    /// Breach bitmap, 32 accounts per word (bit `i` of word `w` is account `32 w + i`).
    pub breach: Vec<u32>,
    /// At-risk bitmap, same layout.
    pub at_risk: Vec<u32>,
    /// Cycles from the scan command's acceptance to the done marker.
    pub scan_cycles: u64,
    /// Cycles the whole run took (loading included).
    pub total_cycles: u64,
}

/// Turns group words into 32-bit bitmap words (the event ring's layout).
pub fn words_from_groups(outs: &[CoreOut], accounts: usize) -> (Vec<u32>, Vec<u32>) {
    let n = accounts.div_ceil(32);
    let (mut b, mut r) = (vec![0u32; n], vec![0u32; n]);
    for o in outs {
        if let CoreOut::Word { group, breach, at_risk } = *o {
            for l in 0..LANES {
                let acct = group as usize * LANES + l;
                if acct < accounts {
                    b[acct / 32] |= ((breach >> l) & 1) << (acct % 32);
                    r[acct / 32] |= ((at_risk >> l) & 1) << (acct % 32);
                }
            }
        }
    }
    (b, r)
}

/// Loads `accounts` (at most `UNPACKED_GROUPS * LANES` = 2048 at 16 lanes, each at most 16 terms on assets below
/// `prices.len()` and [`CARD_ASSETS`]) and `prices` into a fresh simulated core, runs one full
/// scan, and returns the bitmaps and cycle counts. This is what the emulated card calls.
pub fn scan(accounts: &[Vec<Coeff>], prices: &[PriceEntry]) -> Result<ScanRun, TermError> {
    assert!(
        accounts.len() <= UNPACKED_GROUPS * LANES,
        "the power-on layout holds {} accounts",
        UNPACKED_GROUPS * LANES
    );
    let mut sim = CoreSim::default();
    let start = sim.cycle;
    let mut cmds = load_commands(accounts, prices)?;
    cmds.push(CoreCmd::ScanFull);
    let (outs, accepted) = sim.run(&cmds);
    let done = outs.iter().rfind(|o| o.value == CoreOut::Done).map(|o| o.cycle).unwrap_or(sim.cycle);
    let values: Vec<CoreOut> = outs.iter().map(|o| o.value).collect();
    let (breach, at_risk) = words_from_groups(&values, accounts.len());
    Ok(ScanRun {
        breach,
        at_risk,
        scan_cycles: done - accepted[accepted.len() - 1],
        total_cycles: sim.cycle - start,
    })
}
