//! Memories: a block RAM with a registered read port ([`SyncRam`]) and a small distributed RAM
//! with an asynchronous read port ([`LutRam`]).
//!
//! Both keep their contents in a plain `Vec` while simulating (fast random access) and emit
//! the standard inference template for yosys; contents start at zero in simulation, in the
//! Verilog (an `initial` loop) and hence in the bitstream. One write port, one read port, one
//! clock. Golden model: an array, read before write (a read and a write of the same address in
//! the same cycle return the old contents).
//!
//! Inputs: `clock`; `read_address`; `write_enable`, `write_address`, `write_data`.
//!
//! Outputs: `read_data` ([`SyncRam`]: contents at the address presented in the previous cycle;
//! [`LutRam`]: contents at the address presented now).

use rust_hdl::core::timing::TimingInfo;
use rust_hdl::prelude::*;

fn init_loop(depth: usize, mem: &str) -> String {
    // Simulators start from zero like the golden model; synthesis leaves the loop out (the
    // ECP5's block RAMs come up zero after configuration) since unrolling it is slow.
    format!(
        "`ifndef SYNTHESIS\ninteger i_{mem};\ninitial begin\n   for (i_{mem} = 0; i_{mem} < {depth}; i_{mem} = i_{mem} + 1) {mem}[i_{mem}] = 0;\nend\n`endif\n"
    )
}

/// Block RAM, `2^N` words of `D`, registered read.
#[derive(LogicBlock)]
pub struct SyncRam<D: Synth, const N: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Read address (sampled at the clock edge).
    pub read_address: Signal<In, Bits<N>>,
    /// Contents at the read address of the previous cycle.
    pub read_data: Signal<Out, D>,
    /// Write strobe.
    pub write_enable: Signal<In, Bit>,
    /// Write address.
    pub write_address: Signal<In, Bits<N>>,
    /// Write data.
    pub write_data: Signal<In, D>,
    _mem: Vec<D>,
}

impl<D: Synth, const N: usize> Default for SyncRam<D, N> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            read_address: Default::default(),
            read_data: Default::default(),
            write_enable: Default::default(),
            write_address: Default::default(),
            write_data: Default::default(),
            _mem: vec![D::default(); 1 << N],
        }
    }
}

impl<D: Synth, const N: usize> SyncRam<D, N> {
    /// Reads a word directly (test and debug access, not hardware).
    pub fn peek(&self, addr: usize) -> D {
        self._mem[addr]
    }
}

impl<D: Synth, const N: usize> Logic for SyncRam<D, N> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            self.read_data.next = self._mem[self.read_address.val().index()];
            if self.write_enable.val() {
                self._mem[self.write_address.val().index()] = self.write_data.val();
            }
        }
    }

    fn connect(&mut self) {
        self.read_data.connect();
    }

    fn hdl(&self) -> Verilog {
        // One memory per slice of the word, each slice as wide as an ECP5 DP16KD is at this
        // depth (36 bits at 512 words, 18 at 1K, 9 at 2K, ...). A deep, wide memory then maps
        // onto block RAMs side by side, each read straight into `read_data`, instead of block
        // RAMs stacked by address with an output multiplexer selected by a registered address
        // (which yosys shares between all lanes: the critical path of an 8-lane build).
        let (w, n) = (D::BITS, N);
        let slice = match n {
            0..=9 => 36,
            10 => 18,
            11 => 9,
            12 => 4,
            13 => 2,
            _ => 1,
        }
        .min(w);
        let mut v = String::from("initial read_data = 0;\n");
        let mut lo = 0;
        let mut k = 0;
        while lo < w {
            let hi = (lo + slice).min(w) - 1;
            v.push_str(&format!(
                "reg [{sw}:0] mem{k} [0:{d}];\n{init}\
                 always @(posedge clock) begin\n   read_data[{hi}:{lo}] <= mem{k}[read_address];\n   \
                 if (write_enable) mem{k}[write_address] <= write_data[{hi}:{lo}];\nend\n",
                sw = hi - lo,
                d = (1usize << n) - 1,
                init = init_loop(1 << n, &format!("mem{k}")),
            ));
            lo = hi + 1;
            k += 1;
        }
        Verilog::Custom(v)
    }

    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "sync_ram".into(),
            clock: "clock".into(),
            inputs: vec![
                "read_address".into(),
                "write_enable".into(),
                "write_address".into(),
                "write_data".into(),
            ],
            outputs: vec!["read_data".into()],
        }]
    }
}

/// Distributed RAM, `2^N` words of `D`, asynchronous read, synchronous write.
#[derive(LogicBlock)]
pub struct LutRam<D: Synth, const N: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Read address.
    pub read_address: Signal<In, Bits<N>>,
    /// Contents at the read address now.
    pub read_data: Signal<Out, D>,
    /// Write strobe.
    pub write_enable: Signal<In, Bit>,
    /// Write address.
    pub write_address: Signal<In, Bits<N>>,
    /// Write data.
    pub write_data: Signal<In, D>,
    _mem: Vec<D>,
}

impl<D: Synth, const N: usize> Default for LutRam<D, N> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            read_address: Default::default(),
            read_data: Default::default(),
            write_enable: Default::default(),
            write_address: Default::default(),
            write_data: Default::default(),
            _mem: vec![D::default(); 1 << N],
        }
    }
}

impl<D: Synth, const N: usize> Logic for LutRam<D, N> {
    fn update(&mut self) {
        if self.clock.pos_edge() && self.write_enable.val() {
            self._mem[self.write_address.val().index()] = self.write_data.val();
        }
        self.read_data.next = self._mem[self.read_address.val().index()];
    }

    fn connect(&mut self) {
        self.read_data.connect();
    }

    fn hdl(&self) -> Verilog {
        Verilog::Custom(format!(
            "reg [{w}:0] mem [0:{d}];\n{init}\nalways @(*) read_data = mem[read_address];\n\
             always @(posedge clock) begin\n   if (write_enable) mem[write_address] <= write_data;\nend\n",
            w = D::BITS - 1,
            d = (1usize << N) - 1,
            init = init_loop(1 << N, "mem")
        ))
    }

    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "lut_ram_write".into(),
            clock: "clock".into(),
            inputs: vec!["write_enable".into(), "write_address".into(), "write_data".into()],
            outputs: vec![],
        }]
    }
}
