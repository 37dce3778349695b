//! [`HdlCard`]: the emulated card running the rust-hdl simulation of the actual scan core
//! (`liqscan_hdl::core::driver::CoreSim`), cycle by cycle.
//!
//! The core holds `liqscan_hdl::abi::CARD_ACCOUNTS` = 8192 accounts (as many as the packed
//! term memory fits), and its simulation is slow, so this backend is for small books (tests,
//! crash replays of a few thousand accounts); larger books use the software card. Every ring command becomes the core's own commands; the core's group words
//! (16 accounts each) are merged into 32-account card words for the event ring, and its cycle
//! counts go into `ScanDone`.
//!
//! [`HdlCard::golden`] is the same card with the core's golden model
//! (`liqscan_hdl::golden::CoreModel`) in place of its simulation: the same core commands,
//! answered at once and without cycle counts, for books too large to simulate in a test.
//!
//! The simulation runs about a thousand cycles a second, so this card wastes none:
//! - commands that produce no output (term writes, parameters, batch prices) are queued and
//!   clocked into the core together with the next scan, in order, so the drain at the end of a
//!   run (24 quiet cycles) is paid once per scan, not once per command. The core sees exactly
//!   the same command sequence; only idle cycles between commands are left out.

use liqscan_hdl::abi::config::{CARD_ACCOUNTS, CARD_ASSETS, GROUPS, LANES, TERM_SLOTS, TERM_WORDS};
use liqscan_hdl::abi::regs::error_bit;
use liqscan_hdl::abi::{Coeff, PriceEntry};
use liqscan_hdl::core::driver::CoreSim;
use liqscan_hdl::core::driver::Timed;
use liqscan_hdl::front::cmd_decoder::extent_fits;
use liqscan_hdl::golden::{CoreCmd, CoreModel, CoreOut};

use super::{CardEngine, CardRefusal, ScanInfo};

/// What answers the core commands.
enum Core {
    /// The rust-hdl simulation, cycle by cycle.
    Sim(Box<CoreSim>),
    /// The golden model.
    Golden(Box<CoreModel>),
}

/// The simulated core behind the card's rings.
pub struct HdlCard {
    core: Core,
    assets: usize,
    breach: Vec<u32>,
    at_risk: Vec<u32>,
    active: u32,
    cmds: Vec<CoreCmd>,
    touched: Vec<u32>,
    /// Core cycles simulated since reset (loading, scans, idle drain).
    pub cycles: u64,
    /// Seconds spent simulating them.
    pub seconds: f64,
    // Terms were written since the last full scan: a card word's other group may be stale.
    stale: bool,
}

impl HdlCard {
    /// A freshly reset core with a price table of `assets` (at most 256) entries.
    pub fn new(assets: usize) -> Result<HdlCard, String> {
        Self::with_core(Core::Sim(Box::default()), assets)
    }

    /// The card with the core's golden model: a fresh core, as [`HdlCard::new`].
    pub fn golden(assets: usize) -> Result<HdlCard, String> {
        Self::with_core(Core::Golden(Box::default()), assets)
    }

    fn with_core(core: Core, assets: usize) -> Result<HdlCard, String> {
        if assets > CARD_ASSETS {
            return Err(format!("the HDL card's price table has {CARD_ASSETS} entries, not {assets}"));
        }
        Ok(HdlCard {
            core,
            assets,
            breach: vec![0; CARD_ACCOUNTS / 32],
            at_risk: vec![0; CARD_ACCOUNTS / 32],
            active: 0,
            cmds: Vec::with_capacity(4096),
            touched: Vec::new(),
            cycles: 0,
            seconds: 0.0,
            stale: false,
        })
    }

    /// Clocks the queued commands (the last one a scan) into the core and collects its output.
    fn run(&mut self) -> (u64, u32) {
        let (outs, start) = match &mut self.core {
            Core::Sim(sim) => {
                let (before, t) = (sim.cycle, std::time::Instant::now());
                let (outs, accepted) = sim.run(&self.cmds);
                self.seconds += t.elapsed().as_secs_f64();
                self.cycles += sim.cycle - before;
                (outs, accepted.last().copied().unwrap_or(sim.cycle))
            }
            Core::Golden(model) => {
                let outs = self.cmds.iter().flat_map(|c| model.apply(c));
                (outs.map(|value| Timed { value, cycle: 0 }).collect(), 0)
            }
        };
        self.cmds.clear();
        let mut done = start;
        let mut groups = 0;
        self.touched.clear();
        for o in outs {
            match o.value {
                CoreOut::Word { group, breach, at_risk } => {
                    groups += 1;
                    let first = group as usize * LANES;
                    let (w, shift) = (first / 32, first % 32);
                    let mask = ((1u64 << LANES) - 1) as u32;
                    self.breach[w] = (self.breach[w] & !(mask << shift)) | (breach & mask) << shift;
                    self.at_risk[w] = (self.at_risk[w] & !(mask << shift)) | (at_risk & mask) << shift;
                    if self.touched.last() != Some(&(w as u32)) {
                        self.touched.push(w as u32);
                    }
                }
                CoreOut::Done => done = o.cycle,
            }
        }
        (done.saturating_sub(start), groups)
    }

    fn price_cmds(&mut self, asset: u16, p: PriceEntry) {
        self.cmds.push(CoreCmd::SetPrice {
            asset,
            liability: false,
            spot: p.spot.asset,
            stressed: p.stressed.asset,
        });
        self.cmds.push(CoreCmd::SetPrice {
            asset,
            liability: true,
            spot: p.spot.liability,
            stressed: p.stressed.liability,
        });
    }
}

impl CardEngine for HdlCard {
    fn name(&self) -> &'static str {
        match self.core {
            Core::Sim(_) => "hdl-sim",
            Core::Golden(_) => "golden",
        }
    }

    fn accounts(&self) -> usize {
        CARD_ACCOUNTS
    }

    fn assets(&self) -> usize {
        self.assets
    }

    fn lanes(&self) -> usize {
        LANES
    }

    fn write_terms(&mut self, account: u32, word: u16, terms: &[Coeff]) -> Result<(), CardRefusal> {
        // The decoder's checks, in its order (`liqscan_hdl::front::cmd_decoder`).
        if account as usize >= CARD_ACCOUNTS {
            return Err((error_bit::ACCOUNT_RANGE, account));
        }
        if word as usize + terms.len() > TERM_WORDS {
            return Err((error_bit::SLOT_RANGE, word as u32 | (terms.len() as u32) << 16));
        }
        if let Some(t) = terms.iter().find(|t| t.asset as usize >= self.assets) {
            return Err((error_bit::ASSET_RANGE, t.asset as u32));
        }
        for (k, &term) in terms.iter().enumerate() {
            self.cmds.push(CoreCmd::WriteTerm { account: account as u16, word: word + k as u16, term });
        }
        self.stale = true;
        Ok(())
    }

    fn set_group(&mut self, group: u32, first: u16, len: u8) -> Result<(), CardRefusal> {
        if group as usize >= GROUPS {
            return Err((error_bit::ACCOUNT_RANGE, group));
        }
        if !extent_fits(first, len) {
            return Err((error_bit::SLOT_RANGE, first as u32 | (len as u32) << 16));
        }
        self.cmds.push(CoreCmd::SetGroup { group: group as u16, first, len });
        self.stale = true;
        Ok(())
    }

    fn params(&mut self, active_accounts: u32, term_slots: u32) -> Result<(), CardRefusal> {
        if active_accounts as usize > CARD_ACCOUNTS {
            return Err((error_bit::PARAMS_RANGE, active_accounts));
        }
        if !(1..=TERM_SLOTS as u32).contains(&term_slots) {
            return Err((error_bit::PARAMS_RANGE, term_slots));
        }
        self.active = active_accounts;
        self.cmds.push(CoreCmd::SetParams { accounts: active_accounts, slots: term_slots });
        Ok(())
    }

    fn set_price(&mut self, asset: u16, price: PriceEntry) -> Result<(), CardRefusal> {
        if asset as usize >= self.assets {
            return Err((error_bit::ASSET_RANGE, asset as u32));
        }
        self.price_cmds(asset, price);
        Ok(())
    }

    fn tick(
        &mut self,
        asset: u16,
        price: PriceEntry,
        out: &mut Vec<(u32, u32, u32)>,
    ) -> Result<ScanInfo, CardRefusal> {
        if asset as usize >= self.assets {
            return Err((error_bit::ASSET_RANGE, asset as u32));
        }
        self.price_cmds(asset, price);
        self.cmds.push(CoreCmd::ScanAsset { asset });
        // A 32-account card word holds two 16-lane groups; if terms were written since the
        // last full scan, the group beside a rescanned one may be stale, so refresh them all.
        let refresh = std::mem::take(&mut self.stale);
        if refresh {
            self.cmds.push(CoreCmd::ScanFull);
        }
        let (cycles, groups) = self.run();
        if refresh {
            self.touched.clear();
            self.touched.extend(0..(self.active as usize).div_ceil(32) as u32);
        }
        let (mut b, mut a) = (0, 0);
        for &w in &self.touched {
            let (x, y) = (self.breach[w as usize], self.at_risk[w as usize]);
            b += x.count_ones();
            a += y.count_ones();
            out.push((w, x, y));
        }
        Ok(ScanInfo { groups, cycles: cycles as u32, breached: b, at_risk: a })
    }

    fn simulated(&self) -> (u64, f64) {
        (self.cycles, self.seconds)
    }

    fn scan_full(&mut self, out: &mut Vec<(u32, u32)>) -> ScanInfo {
        self.cmds.push(CoreCmd::ScanFull);
        let (cycles, groups) = self.run();
        self.stale = false;
        let words = (self.active as usize).div_ceil(32);
        out.extend((0..words).map(|w| (self.breach[w], self.at_risk[w])));
        let b = out.iter().map(|x| x.0.count_ones()).sum();
        let a = out.iter().map(|x| x.1.count_ones()).sum();
        ScanInfo { groups, cycles: cycles as u32, breached: b, at_risk: a }
    }
}
