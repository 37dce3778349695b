//! Driving the external-memory scan ([`ExtScan`]) from Rust: a hand-clocked simulation loop
//! with one [`MemModel`] serving each channel's native port, and random back-pressure on the
//! output port.

use crate::abi::widths::PriceEntry;
use crate::core::ext_scan::ExtScan;
use crate::extmem::{BitmapWord, IncGroups, Layout, MemModel, MemTiming, Stall};
use rust_hdl::prelude::*;

/// What a scan sent and when (the cycle model's result type, so the two compare directly).
pub type ExtRun = crate::extmem::StreamRun;

/// The block under simulation (its prefetch buffers `2^FB` words).
pub struct ExtSim<const CH: usize, const K: usize, const W: usize, const FB: usize> {
    /// The rust-hdl circuit.
    pub uut: Box<ExtScan<CH, K, W, FB>>,
}

impl<const CH: usize, const K: usize, const W: usize, const FB: usize> Default for ExtSim<CH, K, W, FB> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const CH: usize, const K: usize, const W: usize, const FB: usize> ExtSim<CH, K, W, FB> {
    /// A block after a synchronous reset.
    pub fn new() -> Self {
        let mut uut = Box::new(ExtScan::<CH, K, W, FB>::default());
        uut.connect_all();
        let mut s = Self { uut };
        s.uut.reset.next = true;
        s.edge();
        s.edge();
        s.uut.reset.next = false;
        s
    }

    fn settle(&mut self) {
        assert!(simulate(&mut *self.uut, 1000), "the block's logic did not settle");
    }

    fn low(&mut self) {
        self.uut.clock.next = Clock { clk: false };
        self.settle();
    }

    fn high(&mut self) {
        self.uut.clock.next = Clock { clk: true };
        self.settle();
    }

    fn edge(&mut self) {
        self.low();
        self.high();
    }

    /// Runs `cycles` idle cycles (no start, no memory traffic, the output ready).
    pub fn idle(&mut self, cycles: u64) {
        self.uut.start.next = false;
        self.uut.out_ready.next = true;
        for c in 0..CH {
            self.uut.cmd_ready[c].next = false;
            self.uut.rdata_valid[c].next = false;
        }
        for _ in 0..cycles {
            self.edge();
            assert!(!self.uut.out_valid.val() && !self.uut.busy.val(), "an idle block sends nothing");
        }
    }

    /// Writes the price table: both sides of every asset, one write per cycle.
    pub fn load_prices(&mut self, prices: &[PriceEntry]) {
        for (a, p) in prices.iter().enumerate() {
            for (side, spot, stressed) in
                [(0, p.spot.asset, p.stressed.asset), (1, p.spot.liability, p.stressed.liability)]
            {
                let u = &mut self.uut;
                u.price_we.next = true;
                u.price_addr.next = ((2 * a + side) as u64).into();
                u.price_spot.next = (spot as u64).into();
                u.price_stressed.next = (stressed as u64).into();
                self.edge();
            }
        }
        self.uut.price_we.next = false;
    }

    fn word_bits(words: &[u64]) -> Bits<W> {
        let mut b = Bits::<W>::default();
        for (i, &w) in words.iter().enumerate() {
            b = b | (Bits::<W>::from(w) << (64 * i as u64));
        }
        b
    }

    /// Runs a full scan of the book `img` (laid out by `lay`, at word 0 of every channel), each
    /// channel served with `timing[c]` (its seed made distinct per channel), the output consumer
    /// not ready with chance `out_stall`/256 in a cycle. Panics after `max_cycles`.
    pub fn scan(
        &mut self,
        lay: &Layout,
        img: &[Vec<u64>],
        timing: MemTiming,
        out_stall: u8,
        seed: u64,
        max_cycles: u64,
    ) -> ExtRun {
        self.run(lay, img, None, timing, out_stall, seed, max_cycles)
    }

    /// Runs an incremental scan of the groups `inc` lists, offered on the host port as
    /// [`IncGroups`] says; otherwise as [`ExtSim::scan`].
    #[allow(clippy::too_many_arguments)]
    pub fn scan_inc(
        &mut self,
        lay: &Layout,
        img: &[Vec<u64>],
        inc: IncGroups,
        timing: MemTiming,
        out_stall: u8,
        seed: u64,
        max_cycles: u64,
    ) -> ExtRun {
        self.run(lay, img, Some(inc), timing, out_stall, seed, max_cycles)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        lay: &Layout,
        img: &[Vec<u64>],
        inc: Option<IncGroups>,
        timing: MemTiming,
        out_stall: u8,
        seed: u64,
        max_cycles: u64,
    ) -> ExtRun {
        assert!(
            lay.ch == CH && lay.k == K,
            "the layout is for {} channels of {} words, the block {CH} of {K}",
            lay.ch,
            lay.k
        );
        let mut stall = Stall::new(out_stall, seed);
        let mut mem: Vec<MemModel> = (0..CH)
            .map(|c| {
                MemModel::new(MemTiming { seed: timing.seed.wrapping_add(c as u64 * 7919), ..timing }, K)
            })
            .collect();
        let mut run = ExtRun::default();
        let mut cycle = 0u64;
        let list: &[u32] = inc.map_or(&[], |i| i.groups);
        let mut host = inc.map(|i| Stall::new(i.stall, i.seed));
        let mut taken = 0usize;
        loop {
            assert!(cycle < max_cycles, "no done marker after {max_cycles} cycles");
            let offered = host.as_mut().is_some_and(|h| h.ready()) && taken < list.len();
            {
                let u = &mut self.uut;
                u.start.next = cycle == 0;
                u.inc.next = inc.is_some();
                u.base.next = 0.into();
                u.groups.next = (inc.map_or(lay.groups, |i| i.groups.len()) as u64).into();
                u.slots.next = (lay.slots as u64).into();
                u.xg_valid.next = offered;
                u.xg_group.next = (list.get(taken).copied().unwrap_or(0) as u64).into();
            }
            for (c, m) in mem.iter().enumerate() {
                self.uut.cmd_ready[c].next = m.cmd_ready();
                match m.rdata() {
                    Some(a) => {
                        self.uut.rdata_valid[c].next = true;
                        self.uut.rdata_data[c].next = Self::word_bits(m.word(&img[c], a));
                    }
                    None => self.uut.rdata_valid[c].next = false,
                }
            }
            let ready = stall.ready();
            self.uut.out_ready.next = ready;
            self.low();
            let u = &self.uut;
            if offered && u.xg_ready.val() {
                taken += 1;
            }
            let mut done = false;
            if u.out_valid.val() && ready {
                if u.out_done.val() {
                    run.done_cycle = cycle;
                    done = true;
                } else {
                    run.words.push(BitmapWord {
                        offset: u.out_offset.val().to_u32(),
                        breach: u.out_breach.val().to_u32(),
                        at_risk: u.out_at_risk.val().to_u32(),
                    });
                    run.word_cycles.push(cycle);
                }
            }
            run.max_queued = run.max_queued.max(taken.saturating_sub(run.words.len()) as u64);
            let ports: Vec<(Option<u32>, bool)> = (0..CH)
                .map(|c| {
                    let cmd = u.cmd_valid[c].val().then(|| u.cmd_addr[c].val().to_u32());
                    assert!(!u.cmd_we[c].val(), "the scan never writes");
                    (cmd, u.rdata_ready[c].val())
                })
                .collect();
            self.high();
            for (m, (cmd, rready)) in mem.iter_mut().zip(ports) {
                let had = m.rdata().is_some();
                m.step(cmd, had && rready);
            }
            cycle += 1;
            if done {
                break;
            }
        }
        self.uut.start.next = false;
        run.commands = mem.iter().map(|m| m.commands).collect();
        run
    }
}
