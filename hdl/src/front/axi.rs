//! The card's DMA master port: the AXI4 memory-mapped subset a ring engine needs, and a host
//! memory model that serves it in tests.
//!
//! ```text
//!  card (master)                         PCIe DMA block (slave: XDMA/QDMA AXI-MM bridge,
//!  AxiReadMaster  ──AR──> <──R──         LitePCIe's AXI frontend) ──> host memory
//!  AxiWriteMaster ──AW──> ──W──> <──B──
//! ```
//!
//! The subset: one ID (0, so every response comes back in request order), INCR bursts of
//! [`AXI_DATA_BYTES`]-byte beats (`xsize` = 3), at most one 64-byte ring entry per burst (so a
//! burst never crosses a 4 KiB page when the ring base is 64-byte aligned), 64-bit addresses,
//! and `xcache`/`xprot` left to the shell (constant 0 in the DMA blocks named above). Every
//! channel is valid/ready: a transfer happens on a rising edge where both are high, and a
//! master never drops `valid` or changes the payload before that edge.
//!
//! [`AxiMemory`] is the golden host memory: a byte array that serves both bundles cycle by
//! cycle with a configurable latency and random back-pressure (ready low at random), and checks
//! the master keeps the protocol rules above ([`AxiMemory::violations`]).

use std::collections::VecDeque;

/// Bytes per data beat (64-bit data bus).
pub const AXI_DATA_BYTES: usize = 8;
/// Beats per 64-byte ring entry.
pub const BEATS_PER_ENTRY: usize = crate::abi::ring::RING_ENTRY_BYTES / AXI_DATA_BYTES;
/// `xburst` INCR.
pub const BURST_INCR: u64 = 1;
/// `xsize` for 8-byte beats.
pub const SIZE_8: u64 = 3;
/// `xresp` OKAY.
pub const RESP_OKAY: u64 = 0;
/// `xresp` SLVERR.
pub const RESP_SLVERR: u64 = 2;

pub use bundles::*;

// The derive writes undocumented `join` and `link` methods for each bundle.
#[allow(missing_docs)]
mod bundles {
    use rust_hdl::prelude::*;

    /// Read half of the master port (AR and R channels), as the card sees it.
    #[derive(LogicInterface, Default)]
    #[join = "AxiReadSlave"]
    pub struct AxiReadMaster {
        /// AR: address valid.
        pub arvalid: Signal<Out, Bit>,
        /// AR: the slave takes the address.
        pub arready: Signal<In, Bit>,
        /// AR: byte address of the first beat.
        pub araddr: Signal<Out, Bits<64>>,
        /// AR: beats - 1.
        pub arlen: Signal<Out, Bits<8>>,
        /// AR: log2 bytes per beat.
        pub arsize: Signal<Out, Bits<3>>,
        /// AR: burst type (1 = INCR).
        pub arburst: Signal<Out, Bits<2>>,
        /// R: data valid.
        pub rvalid: Signal<In, Bit>,
        /// R: the card takes the beat.
        pub rready: Signal<Out, Bit>,
        /// R: data (little-endian: byte `k` of the beat is bits `8k+7..8k`).
        pub rdata: Signal<In, Bits<64>>,
        /// R: response (0 OKAY).
        pub rresp: Signal<In, Bits<2>>,
        /// R: last beat of the burst.
        pub rlast: Signal<In, Bit>,
    }

    /// Read half as the DMA block sees it (the mate of [`AxiReadMaster`]).
    #[derive(LogicInterface, Default)]
    #[join = "AxiReadMaster"]
    pub struct AxiReadSlave {
        /// AR: address valid.
        pub arvalid: Signal<In, Bit>,
        /// AR: the slave takes the address.
        pub arready: Signal<Out, Bit>,
        /// AR: byte address.
        pub araddr: Signal<In, Bits<64>>,
        /// AR: beats - 1.
        pub arlen: Signal<In, Bits<8>>,
        /// AR: log2 bytes per beat.
        pub arsize: Signal<In, Bits<3>>,
        /// AR: burst type.
        pub arburst: Signal<In, Bits<2>>,
        /// R: data valid.
        pub rvalid: Signal<Out, Bit>,
        /// R: the card takes the beat.
        pub rready: Signal<In, Bit>,
        /// R: data.
        pub rdata: Signal<Out, Bits<64>>,
        /// R: response.
        pub rresp: Signal<Out, Bits<2>>,
        /// R: last beat.
        pub rlast: Signal<Out, Bit>,
    }

    /// Write half of the master port (AW, W and B channels), as the card sees it.
    #[derive(LogicInterface, Default)]
    #[join = "AxiWriteSlave"]
    pub struct AxiWriteMaster {
        /// AW: address valid.
        pub awvalid: Signal<Out, Bit>,
        /// AW: the slave takes the address.
        pub awready: Signal<In, Bit>,
        /// AW: byte address of the first beat.
        pub awaddr: Signal<Out, Bits<64>>,
        /// AW: beats - 1.
        pub awlen: Signal<Out, Bits<8>>,
        /// AW: log2 bytes per beat.
        pub awsize: Signal<Out, Bits<3>>,
        /// AW: burst type (1 = INCR).
        pub awburst: Signal<Out, Bits<2>>,
        /// W: data valid.
        pub wvalid: Signal<Out, Bit>,
        /// W: the slave takes the beat.
        pub wready: Signal<In, Bit>,
        /// W: data (little-endian).
        pub wdata: Signal<Out, Bits<64>>,
        /// W: byte enables (all ones here).
        pub wstrb: Signal<Out, Bits<8>>,
        /// W: last beat of the burst.
        pub wlast: Signal<Out, Bit>,
        /// B: response valid.
        pub bvalid: Signal<In, Bit>,
        /// B: the card takes the response.
        pub bready: Signal<Out, Bit>,
        /// B: response (0 OKAY).
        pub bresp: Signal<In, Bits<2>>,
    }

    /// Write half as the DMA block sees it (the mate of [`AxiWriteMaster`]).
    #[derive(LogicInterface, Default)]
    #[join = "AxiWriteMaster"]
    pub struct AxiWriteSlave {
        /// AW: address valid.
        pub awvalid: Signal<In, Bit>,
        /// AW: the slave takes the address.
        pub awready: Signal<Out, Bit>,
        /// AW: byte address.
        pub awaddr: Signal<In, Bits<64>>,
        /// AW: beats - 1.
        pub awlen: Signal<In, Bits<8>>,
        /// AW: log2 bytes per beat.
        pub awsize: Signal<In, Bits<3>>,
        /// AW: burst type.
        pub awburst: Signal<In, Bits<2>>,
        /// W: data valid.
        pub wvalid: Signal<In, Bit>,
        /// W: the slave takes the beat.
        pub wready: Signal<Out, Bit>,
        /// W: data.
        pub wdata: Signal<In, Bits<64>>,
        /// W: byte enables.
        pub wstrb: Signal<In, Bits<8>>,
        /// W: last beat.
        pub wlast: Signal<In, Bit>,
        /// B: response valid.
        pub bvalid: Signal<Out, Bit>,
        /// B: the card takes the response.
        pub bready: Signal<In, Bit>,
        /// B: response.
        pub bresp: Signal<Out, Bits<2>>,
    }
}

/// Timing of [`AxiMemory`]: cycles from the AR transfer to the first R beat, or from a burst's
/// last W transfer to its B response, drawn uniformly from `latency` (0 acts as 1: the earliest
/// answer is in the cycle after the transfer); each ready/valid the memory drives is low at
/// random with probability `stall_percent`/100.
#[derive(Clone, Debug)]
pub struct AxiTiming {
    /// Cycles from AR to the first R beat, or from the last W beat to B.
    pub latency: std::ops::RangeInclusive<u64>,
    /// Percent of cycles each of arready, rvalid, awready, wready, bvalid is held low.
    pub stall_percent: u32,
}

#[derive(Clone, Debug)]
struct Burst {
    addr: u64,
    beats: u64,
    done: u64,
    due: u64,
}

/// What the master drove last cycle on one address or data channel, to check it held still.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Held {
    valid: bool,
    taken: bool,
    payload: (u64, u64, u64),
}

/// Host memory serving an [`AxiReadMaster`] and an [`AxiWriteMaster`] (see the module docs).
///
/// Each cycle of a hand-clocked simulation: [`AxiMemory::drive_read`]/[`AxiMemory::drive_write`]
/// set the slave's outputs, the design settles, [`AxiMemory::sample_read`]/
/// [`AxiMemory::sample_write`] take the transfers of the coming edge, then the clock rises.
pub struct AxiMemory {
    /// The bytes; address `a` is `mem[a - base]`.
    pub mem: Vec<u8>,
    /// Bus address of `mem[0]`.
    pub base: u64,
    timing: AxiTiming,
    rng: u64,
    cycle: u64,
    reads: VecDeque<Burst>,
    writes: VecDeque<Burst>,
    responses: VecDeque<u64>,
    drove: [bool; 5],
    ar: Held,
    aw: Held,
    w: Held,
    /// Bytes written, in order: (address, beat) of each W transfer.
    pub write_log: Vec<(u64, u64)>,
    /// Protocol rules the master broke (empty when it kept them all).
    pub violations: Vec<String>,
    /// Answer every read beat and write response with SLVERR (a failing DMA path).
    pub fail: bool,
}

impl AxiMemory {
    /// `len` zero bytes at bus address `base`, served with `timing`; `seed` drives the stalls.
    pub fn new(base: u64, len: usize, timing: AxiTiming, seed: u64) -> Self {
        AxiMemory {
            mem: vec![0; len],
            base,
            timing,
            rng: seed | 1,
            cycle: 0,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
            responses: VecDeque::new(),
            drove: [false; 5],
            ar: Held::default(),
            aw: Held::default(),
            w: Held::default(),
            write_log: vec![],
            violations: vec![],
            fail: false,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64: cheap and reproducible from the seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn go(&mut self) -> bool {
        self.next() % 100 >= self.timing.stall_percent as u64
    }

    fn latency(&mut self) -> u64 {
        let (lo, hi) = (*self.timing.latency.start(), *self.timing.latency.end());
        lo + self.next() % (hi - lo + 1)
    }

    /// Reads the little-endian 64-bit word at bus address `addr`.
    pub fn word(&self, addr: u64) -> u64 {
        let i = (addr - self.base) as usize;
        u64::from_le_bytes(self.mem[i..i + 8].try_into().unwrap())
    }

    /// Whether nothing is in flight (every burst answered).
    pub fn idle(&self) -> bool {
        self.reads.is_empty() && self.writes.is_empty() && self.responses.is_empty()
    }

    fn check_burst(&mut self, ch: &str, addr: u64, len: u64, size: u64, burst: u64) {
        let bytes = (len + 1) * AXI_DATA_BYTES as u64;
        let end = self.base + self.mem.len() as u64;
        let mut bad = vec![];
        if size != SIZE_8 || burst != BURST_INCR {
            bad.push(format!("size {size} burst {burst}"));
        }
        if !addr.is_multiple_of(AXI_DATA_BYTES as u64) || len as usize >= BEATS_PER_ENTRY {
            bad.push(format!("addr {addr:#x} len {len}"));
        }
        if addr / 4096 != (addr + bytes - 1) / 4096 {
            bad.push(format!("burst at {addr:#x} of {bytes} bytes crosses 4 KiB"));
        }
        if addr < self.base || addr + bytes > end {
            bad.push(format!("burst at {addr:#x} of {bytes} bytes outside memory"));
        }
        for b in bad {
            self.violations.push(format!("cycle {}: {ch}: {b}", self.cycle));
        }
    }

    fn check_held(&mut self, ch: &str, prev: Held, now: Held) {
        if prev.valid && !prev.taken && (!now.valid || now.payload != prev.payload) {
            self.violations.push(format!("cycle {}: {ch} dropped or changed before ready", self.cycle));
        }
    }

    /// Sets the read slave's outputs for this cycle.
    pub fn drive_read(&mut self, p: &mut AxiReadMaster) {
        let ar = self.go();
        let head = self.reads.front().filter(|b| b.due <= self.cycle).map(|b| (b.addr, b.done, b.beats));
        let r = head.is_some() && self.go();
        p.arready.next = ar;
        p.rvalid.next = r;
        let (addr, done, beats) = head.unwrap_or((self.base, 0, 1));
        p.rdata.next = self.word(addr + 8 * done).into();
        p.rlast.next = r && done + 1 == beats;
        p.rresp.next = if self.fail { RESP_SLVERR } else { RESP_OKAY }.into();
        self.drove[0] = ar;
        self.drove[1] = r;
    }

    /// Takes the read transfers of the coming edge (call after the design settled).
    pub fn sample_read(&mut self, p: &AxiReadMaster) {
        let (valid, addr) = (p.arvalid.val(), p.araddr.val().to_u64());
        let (len, size, burst) = (p.arlen.val().to_u64(), p.arsize.val().to_u64(), p.arburst.val().to_u64());
        let now = Held { valid, taken: valid && self.drove[0], payload: (addr, len, size << 8 | burst) };
        self.check_held("AR", self.ar, now);
        self.ar = now;
        if now.taken {
            self.check_burst("AR", addr, len, size, burst);
            let due = self.cycle + self.latency();
            self.reads.push_back(Burst { addr, beats: len + 1, done: 0, due });
        }
        if self.drove[1] && p.rready.val() {
            let b = self.reads.front_mut().unwrap();
            b.done += 1;
            if b.done == b.beats {
                self.reads.pop_front();
            }
        }
    }

    /// Sets the write slave's outputs for this cycle.
    pub fn drive_write(&mut self, p: &mut AxiWriteMaster) {
        let aw = self.go();
        // Data only for an address already taken (a slave may wait for AW before W).
        let w = !self.writes.is_empty() && self.go();
        let b = self.responses.front().is_some_and(|&due| due <= self.cycle) && self.go();
        p.awready.next = aw;
        p.wready.next = w;
        p.bvalid.next = b;
        p.bresp.next = if self.fail { RESP_SLVERR } else { RESP_OKAY }.into();
        self.drove[2] = aw;
        self.drove[3] = w;
        self.drove[4] = b;
    }

    /// Takes the write transfers of the coming edge; W beats land in memory at once (the
    /// harshest case for a host that polls).
    pub fn sample_write(&mut self, p: &AxiWriteMaster) {
        let (valid, addr) = (p.awvalid.val(), p.awaddr.val().to_u64());
        let (len, size, burst) = (p.awlen.val().to_u64(), p.awsize.val().to_u64(), p.awburst.val().to_u64());
        let now = Held { valid, taken: valid && self.drove[2], payload: (addr, len, size << 8 | burst) };
        self.check_held("AW", self.aw, now);
        self.aw = now;
        let (wv, data) = (p.wvalid.val(), p.wdata.val().to_u64());
        let (strb, last) = (p.wstrb.val().to_u64(), p.wlast.val());
        let wnow = Held { valid: wv, taken: wv && self.drove[3], payload: (data, strb, last as u64) };
        self.check_held("W", self.w, wnow);
        self.w = wnow;
        if wnow.taken {
            let b = self.writes.front_mut().expect("wready only with an address queued");
            let a = b.addr + 8 * b.done;
            b.done += 1;
            let end = b.done == b.beats;
            if last != end || strb != 0xFF {
                self.violations
                    .push(format!("cycle {}: W beat {} wlast {last} strb {strb:#x}", self.cycle, b.done));
            }
            if end {
                self.writes.pop_front();
                let due = self.cycle + self.latency();
                self.responses.push_back(due);
            }
            let i = (a - self.base) as usize;
            self.mem[i..i + 8].copy_from_slice(&data.to_le_bytes());
            self.write_log.push((a, data));
        }
        if now.taken {
            self.check_burst("AW", addr, len, size, burst);
            self.writes.push_back(Burst { addr, beats: len + 1, done: 0, due: 0 });
        }
        if self.drove[4] && p.bready.val() {
            self.responses.pop_front();
        }
    }

    /// Ends the cycle (call at the rising edge).
    pub fn clock(&mut self) {
        self.cycle += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_hdl::prelude::*;

    fn timing(stall_percent: u32) -> AxiTiming {
        AxiTiming { latency: 1..=1, stall_percent }
    }

    /// One cycle of a master that drives AR as given, seen by `mem`.
    fn ar_cycle(mem: &mut AxiMemory, p: &mut AxiReadMaster, valid: bool, addr: u64, len: u64) {
        mem.drive_read(p);
        p.arvalid.next = valid;
        p.araddr.next = addr.into();
        p.arlen.next = len.into();
        p.arsize.next = SIZE_8.into();
        p.arburst.next = BURST_INCR.into();
        p.update_all();
        mem.sample_read(p);
        mem.clock();
    }

    #[test]
    fn memory_model_reports_a_master_breaking_the_rules() {
        // Never ready: an address dropped before it was taken is a violation.
        let mut mem = AxiMemory::new(0x1000, 8192, timing(100), 7);
        let mut p = AxiReadMaster::default();
        ar_cycle(&mut mem, &mut p, true, 0x1000, 7);
        assert!(mem.violations.is_empty());
        ar_cycle(&mut mem, &mut p, false, 0x1000, 7);
        assert_eq!(mem.violations.len(), 1, "{:?}", mem.violations);
        // Always ready: a burst over a 4 KiB boundary, a misaligned one, one outside memory.
        let mut mem = AxiMemory::new(0x1000, 8192, timing(0), 7);
        ar_cycle(&mut mem, &mut p, true, 0x1FF8, 1);
        ar_cycle(&mut mem, &mut p, true, 0x1004, 0);
        ar_cycle(&mut mem, &mut p, true, 0x0FC0, 0);
        assert_eq!(mem.violations.len(), 3, "{:?}", mem.violations);
    }

    #[test]
    fn memory_model_serves_a_read_burst_in_order_after_its_latency() {
        let mut mem = AxiMemory::new(0x1000, 128, AxiTiming { latency: 3..=3, stall_percent: 0 }, 7);
        for (i, b) in mem.mem.iter_mut().enumerate() {
            *b = i as u8;
        }
        let mut p = AxiReadMaster::default();
        p.rready.next = true;
        let mut beats = vec![];
        for c in 0..16 {
            mem.drive_read(&mut p);
            p.arvalid.next = c == 0;
            p.araddr.next = 0x1040u64.into();
            p.arlen.next = 7u64.into();
            p.arsize.next = SIZE_8.into();
            p.arburst.next = BURST_INCR.into();
            p.update_all();
            if p.rvalid.val() {
                beats.push((c, p.rdata.val().to_u64(), p.rlast.val()));
            }
            mem.sample_read(&p);
            mem.clock();
        }
        let want: Vec<_> = (0..8u64)
            .map(|k| {
                let first = 0x40 + 8 * k;
                let word = u64::from_le_bytes(std::array::from_fn(|i| (first + i as u64) as u8));
                (3 + k as i32, word, k == 7)
            })
            .collect();
        assert_eq!(beats, want);
        assert!(mem.idle() && mem.violations.is_empty());
    }
}
