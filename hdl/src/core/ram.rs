//! Memories: a block RAM with a registered read port ([`SyncRam`]), the same with the block
//! RAM's output register as well ([`SyncRamReg`]), and a small distributed RAM with an
//! asynchronous read port ([`LutRam`]).
//!
//! All keep their contents in a plain `Vec` while simulating (fast random access); contents
//! start at zero in simulation, in the Verilog (an `initial` loop) and hence in the bitstream.
//! One write port, one read port, one clock. Golden model: an array.
//!
//! A block RAM read of the address written in the same cycle is undefined: the memories are
//! declared `(* no_rw_check *)`, because without it yosys builds logic after every block RAM
//! to return the old word (a LUT between the block RAM and its register on the critical
//! paths of runs 24 and 26). The simulation models return the *new* word in that case, so a
//! test whose result depended on such a read would disagree with the golden model; the core
//! never uses one (the sequencer's drain state keeps price writes behind the last price read).
//! [`LutRam`] reads asynchronously and has no such case.
//!
//! Inputs: `clock`; `read_address`; `write_enable`, `write_address`, `write_data`.
//!
//! Outputs: `read_data` ([`SyncRam`]: contents at the address presented one cycle earlier;
//! [`SyncRamReg`]: two cycles earlier; [`LutRam`]: contents at the address presented now).

use rust_hdl::core::timing::TimingInfo;
use rust_hdl::prelude::*;

fn init_loop(depth: usize, mem: &str) -> String {
    // Simulators start from zero like the golden model; synthesis leaves the loop out (the
    // ECP5's block RAMs come up zero after configuration) since unrolling it is slow.
    format!(
        "`ifndef SYNTHESIS\ninteger i_{mem};\ninitial begin\n   for (i_{mem} = 0; i_{mem} < {depth}; i_{mem} = i_{mem} + 1) {mem}[i_{mem}] = 0;\nend\n`endif\n"
    )
}

/// Block RAM, `2^N` words of `D`, registered read; with `OUT_REG` the block RAM's own output
/// register follows. Use it as [`SyncRam`] or [`SyncRamReg`].
#[derive(LogicBlock)]
pub struct BlockRam<D: Synth, const N: usize, const OUT_REG: bool> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Read address (sampled at the clock edge).
    pub read_address: Signal<In, Bits<N>>,
    /// Contents at the read address of one cycle earlier ([`SyncRam`]) or two ([`SyncRamReg`]).
    pub read_data: Signal<Out, D>,
    /// Write strobe.
    pub write_enable: Signal<In, Bit>,
    /// Write address.
    pub write_address: Signal<In, Bits<N>>,
    /// Write data.
    pub write_data: Signal<In, D>,
    _mem: Vec<D>,
    // Simulation state with `OUT_REG`: the word read at the last edge, in the output register
    // at the next.
    _q: D,
}

/// Block RAM with a registered read: a word is on `read_data` one clock edge after its address.
/// One memory per slice of the word as wide as an ECP5 DP16KD is at this depth, so yosys maps
/// it onto block RAMs side by side with no output multiplexer. Golden model:
/// `read_data(t+1) = mem[read_address(t)]`, with the collision rule of the module docs.
pub type SyncRam<D, const N: usize> = BlockRam<D, N, false>;

/// Block RAM, registered read followed by the block RAM's own output register: a word is on
/// `read_data` two clock edges after its address.
///
/// On the ECP5 a block RAM's clock-to-out without its output register is 5.83 ns of the
/// 8 ns clock period (runs 24 and 26), so whatever follows it gets about 2 ns of routing. With
/// the output register (`REGMODE = "OUTREG"`) the word leaves the block from a register. yosys
/// does not map a fabric register into a DP16KD, so with `LIQSCAN_ECP5` defined this block
/// instantiates DP16KD directly, one per slice of the word as wide as a block is at this depth
/// (36-bit pseudo-dual-port up to 512 words, then 18, 9, 4, 2, 1 bits), writes on port A, reads
/// on port B; the address and data layout follow yosys's own mapping of these blocks
/// (`brams_map_16kd.v` in its Lattice techlib). Otherwise (Verilator, Icarus, the yosys check,
/// and on the ECP5 a memory deeper than one block) it is the inference template with a second
/// register after the read. Golden model: `read_data(t+2) = mem[read_address(t)]`, with the
/// collision rule of the module docs.
pub type SyncRamReg<D, const N: usize> = BlockRam<D, N, true>;

impl<D: Synth, const N: usize, const OUT_REG: bool> Default for BlockRam<D, N, OUT_REG> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            read_address: Default::default(),
            read_data: Default::default(),
            write_enable: Default::default(),
            write_address: Default::default(),
            write_data: Default::default(),
            _mem: vec![D::default(); 1 << N],
            _q: D::default(),
        }
    }
}

impl<D: Synth, const N: usize, const OUT_REG: bool> BlockRam<D, N, OUT_REG> {
    /// Reads a word directly (test and debug access, not hardware).
    pub fn peek(&self, addr: usize) -> D {
        self._mem[addr]
    }
}

/// The word a block RAM read gives at a clock edge: the stored one, or the new one when the
/// same address is written at the same edge (undefined in hardware, see the module docs).
fn bram_read<D: Synth, const N: usize>(
    mem: &[D],
    read_address: Bits<N>,
    write_enable: bool,
    write_address: Bits<N>,
    write_data: D,
) -> D {
    if write_enable && write_address == read_address { write_data } else { mem[read_address.index()] }
}

/// The inference template of a [`SyncRam`] of `w`-bit words and `n` address bits.
fn sync_ram_template(w: usize, n: usize) -> String {
    // One memory per slice of the word, each slice as wide as an ECP5 DP16KD is at this
    // depth (36 bits at 512 words, 18 at 1K, 9 at 2K, ...). A deep, wide memory then maps
    // onto block RAMs side by side, each read straight into `read_data`, instead of block
    // RAMs stacked by address with an output multiplexer selected by a registered address
    // (which yosys shares between all lanes: the critical path of an 8-lane build).
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
            "(* no_rw_check *)\nreg [{sw}:0] mem{k} [0:{d}];\n{init}\
             always @(posedge clock) begin\n   read_data[{hi}:{lo}] <= mem{k}[read_address];\n   \
             if (write_enable) mem{k}[write_address] <= write_data[{hi}:{lo}];\nend\n",
            sw = hi - lo,
            d = (1usize << n) - 1,
            init = init_loop(1 << n, &format!("mem{k}")),
        ));
        lo = hi + 1;
        k += 1;
    }
    v
}

/// The inference template of a [`SyncRamReg`]: one memory, read into `q`, then into
/// `read_data`.
fn sync_ram_reg_template(w: usize, n: usize) -> String {
    format!(
        "(* no_rw_check *)\nreg [{w1}:0] mem [0:{d}];\nreg [{w1}:0] q;\n{init}\
         initial begin q = 0; read_data = 0; end\n\
         always @(posedge clock) begin\n   q <= mem[read_address];\n   read_data <= q;\n   \
         if (write_enable) mem[write_address] <= write_data;\nend\n",
        w1 = w - 1,
        d = (1usize << n) - 1,
        init = init_loop(1 << n, "mem"),
    )
}

impl<D: Synth, const N: usize, const OUT_REG: bool> Logic for BlockRam<D, N, OUT_REG> {
    fn update(&mut self) {
        if self.clock.pos_edge() {
            let word = bram_read(
                &self._mem,
                self.read_address.val(),
                self.write_enable.val(),
                self.write_address.val(),
                self.write_data.val(),
            );
            if OUT_REG {
                self.read_data.next = self._q;
                self._q = word;
            } else {
                self.read_data.next = word;
            }
            if self.write_enable.val() {
                self._mem[self.write_address.val().index()] = self.write_data.val();
            }
        }
    }

    fn connect(&mut self) {
        self.read_data.connect();
    }

    fn hdl(&self) -> Verilog {
        let (w, n) = (D::BITS, N);
        if !OUT_REG {
            return Verilog::Custom(sync_ram_template(w, n));
        }
        match ecp5_outreg_blocks(w, n) {
            Some(blocks) => Verilog::Custom(format!(
                "`ifdef LIQSCAN_ECP5\n{blocks}`else\n{}`endif\n",
                sync_ram_reg_template(w, n)
            )),
            None => Verilog::Custom(sync_ram_reg_template(w, n)),
        }
    }

    fn timing(&self) -> Vec<TimingInfo> {
        vec![TimingInfo {
            name: "block_ram".into(),
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

/// The DP16KD instances of a [`SyncRamReg`] of `w`-bit words and `n` address bits, or `None`
/// when the memory is deeper than one block (16K bits deep at 1 bit).
fn ecp5_outreg_blocks(w: usize, n: usize) -> Option<String> {
    // Block width at this depth, and how far the word address sits up the 14-bit address bus.
    let (bw, shift) = match n {
        0..=9 => (36, 5),
        10 => (18, 4),
        11 => (9, 3),
        12 => (4, 2),
        13 => (2, 1),
        14 => (1, 0),
        _ => return None,
    };
    // The word address, zero-extended to the block's address bits, then the low bits: zeros
    // for a read; for a write at 36 bits one zero and the four byte enables (ADA[3:0]), at 18
    // bits two zeros and the two byte enables (ADA[1:0]). WEA is high at 36 bits (the byte
    // enables gate the write), the write strobe otherwise.
    let abits = 14 - shift;
    let ext = |a: &str| if abits > n { format!("{}'b0, {a}", abits - n) } else { a.to_string() };
    let low = |we: bool| match (bw, we) {
        (36, true) => ", 1'b0, {4{write_enable}}".to_string(),
        (18, true) => ", 2'b0, {2{write_enable}}".to_string(),
        (_, _) if shift > 0 => format!(", {shift}'b0"),
        _ => String::new(),
    };
    let wa = format!("{{{}{}}}", ext("write_address"), low(true));
    let ra = format!("{{{}{}}}", ext("read_address"), low(false));
    let wea = if bw == 36 { "1'b1" } else { "write_enable" };
    let mut v = format!("wire [13:0] bram_wa = {wa};\nwire [13:0] bram_ra = {ra};\n");
    let pins = |port: &str, sig: &str, off: usize, width: usize| {
        (0..width).map(|i| format!(".{port}{i}({sig}[{}])", off + i)).collect::<Vec<_>>().join(", ")
    };
    let mut outs = vec![];
    let mut lo = 0;
    let mut k = 0;
    while lo < w {
        let hi = (lo + bw).min(w) - 1;
        let sw = hi - lo + 1;
        let di = if sw < 36 {
            format!("{{{}'b0, write_data[{hi}:{lo}]}}", 36 - sw)
        } else {
            format!("write_data[{hi}:{lo}]")
        };
        // 36 bits: the word is {DIB, DIA} and {DOB, DOA}; otherwise DIA in, DOB out.
        let (dib, doa, dob) = if bw == 36 {
            (
                pins("DIB", &format!("di{k}"), 18, 18),
                format!(", {}", pins("DOA", &format!("do{k}"), 0, 18)),
                pins("DOB", &format!("do{k}"), 18, 18),
            )
        } else {
            (
                (0..18).map(|i| format!(".DIB{i}(1'b0)")).collect::<Vec<_>>().join(", "),
                String::new(),
                pins("DOB", &format!("do{k}"), 0, 18),
            )
        };
        v.push_str(&format!(
            "wire [35:0] di{k} = {di};\nwire [35:0] do{k};\n\
             DP16KD #(.DATA_WIDTH_A({bw}), .DATA_WIDTH_B({bw}), .REGMODE_A(\"{rma}\"), .REGMODE_B(\"OUTREG\"),\n\
             \x20   .RESETMODE(\"SYNC\"), .CSDECODE_A(\"0b000\"), .CSDECODE_B(\"0b000\"), .WRITEMODE_A(\"NORMAL\"),\n\
             \x20   .WRITEMODE_B(\"NORMAL\"), .CLKAMUX(\"CLKA\"), .CLKBMUX(\"CLKB\"), .GSR(\"DISABLED\"))\n\
             bram{k} (.CLKA(clock), .CEA(1'b1), .OCEA(1'b1), .WEA({wea}), .RSTA(1'b0), .CSA0(1'b0), .CSA1(1'b0), .CSA2(1'b0),\n\
             \x20   {ada}, {dia}{doa},\n\
             \x20   .CLKB(clock), .CEB(1'b1), .OCEB(1'b1), .WEB(1'b0), .RSTB(1'b0), .CSB0(1'b0), .CSB1(1'b0), .CSB2(1'b0),\n\
             \x20   {adb}, {dib}, {dob});\n",
            rma = if bw == 36 { "OUTREG" } else { "NOREG" },
            ada = pins("ADA", "bram_wa", 0, 14),
            adb = pins("ADB", "bram_ra", 0, 14),
            dia = pins("DIA", &format!("di{k}"), 0, 18),
        ));
        outs.push(format!("do{k}[{}:0]", sw - 1));
        lo = hi + 1;
        k += 1;
    }
    outs.reverse();
    v.push_str(&format!("always @(*) read_data = {{{}}};\n", outs.join(", ")));
    Some(v)
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
