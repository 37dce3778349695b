// Behavioural models of the two ECP5 primitives the core instantiates when `LIQSCAN_ECP5` is
// defined (DP16KD: hdl/src/core/ram.rs, SyncRamReg; MULT18X18D: hdl/src/core/mul.rs), for the
// Icarus co-simulation of that branch (hdl/tests/verilog.rs). yosys ships both cells as
// blackboxes, so there is no model from the tools to run against. Each model covers only the
// configuration the core uses and stops the simulation on any other. They encode our reading
// of the primitives (port layout as in yosys's own techmap of these cells, the ECP5 sysMEM and
// sysDSP usage guides), so the co-simulation checks the core's wiring of the blocks (address
// and data layout, byte enables, latency), not the silicon.

`timescale 1ns/1ps

// DP16KD as the core uses it: port A writes, port B reads, both the same width (36: the
// pseudo-dual-port mode, word {DIB, DIA} in and {DOB, DOA} out, byte enables on ADA[3:0];
// 18: byte enables on ADA[1:0]; 9 and narrower: WEA), the word address in the top bits of the
// 14-bit address, no chip-select decode, no reset, clock enables high. A read of the word
// written at the same edge gives X (the core never uses one). Contents start at zero.
module DP16KD(
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
  input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input CEA, OCEA, CLKA, WEA, RSTA, CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
  input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
  input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input CEB, OCEB, CLKB, WEB, RSTB, CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
  parameter DATA_WIDTH_A = 18;
  parameter DATA_WIDTH_B = 18;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "NOREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter CLKAMUX = "CLKA";
  parameter CLKBMUX = "CLKB";
  parameter GSR = "ENABLED";
  localparam W = DATA_WIDTH_B;
  localparam SHIFT = W == 36 ? 5 : W == 18 ? 4 : W == 9 ? 3 : W == 4 ? 2 : W == 2 ? 1 : 0;
  localparam DEPTH = 1 << (14 - SHIFT);
  wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
  wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
  wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
  wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
  wire [35:0] wdata = W == 36 ? {dib, dia} : {18'b0, dia};
  wire [13:0] wa = ada >> SHIFT;
  wire [13:0] ra = adb >> SHIFT;
  // Which 9-bit bytes a write stores (36 and 18 bits: the byte enables; narrower: the word).
  wire [3:0] be = W == 36 ? ada[3:0] : W == 18 ? {2'b00, ada[1:0]} : 4'b1111;
  reg [35:0] mem [0:DEPTH-1];
  reg [35:0] mask;
  reg [35:0] latch, oreg;
  integer i;
  initial begin
    if (DATA_WIDTH_A != DATA_WIDTH_B || !(W == 36 || W == 18 || W == 9 || W == 4 || W == 2 || W == 1)
        || !(REGMODE_B == "NOREG" || REGMODE_B == "OUTREG") || (W == 36 && REGMODE_A != REGMODE_B)
        || CSDECODE_A != "0b000" || CSDECODE_B != "0b000" || RESETMODE != "SYNC") begin
      $display("DP16KD model: unsupported configuration (width %0d/%0d, REGMODE %0s/%0s)",
               DATA_WIDTH_A, DATA_WIDTH_B, REGMODE_A, REGMODE_B);
      $finish;
    end
    for (i = 0; i < DEPTH; i = i + 1) mem[i] = 0;
    latch = 0;
    oreg = 0;
  end
  always @(*) begin
    mask = {{9{be[3]}}, {9{be[2]}}, {9{be[1]}}, {9{be[0]}}};
    if (W < 18) mask = mask & ((36'd1 << W) - 1);
  end
  always @(posedge CLKA) begin
    if (RSTA || WEB || CSA0 || CSA1 || CSA2 || (W == 36 && !CEA)) begin
      $display("DP16KD model: unsupported use of port A/B controls");
      $finish;
    end
    if (CEA && WEA && |be) mem[wa] <= (mem[wa] & ~mask) | (wdata & mask);
  end
  always @(posedge CLKB) begin
    if (RSTB || CSB0 || CSB1 || CSB2 || !CEB || !OCEB) begin
      $display("DP16KD model: unsupported use of port B controls");
      $finish;
    end
    latch <= (CEA && WEA && |be && wa == ra) ? 36'bx : mem[ra];
    oreg <= latch;
  end
  wire [35:0] rdata = REGMODE_B == "OUTREG" ? oreg : latch;
  assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = W == 36 ? rdata[17:0] : 18'b0;
  assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = W == 36 ? rdata[35:18] : rdata[17:0];
endmodule

// MULT18X18D as the core uses it: unsigned 18x18, input registers A and B and the output
// register on CLK0, no pipeline register, C unused: P(t+2) = A(t) * B(t).
module MULT18X18D(
  input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
  input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
  input C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
  input CLK0, CLK1, CLK2, CLK3, CE0, CE1, CE2, CE3, RST0, RST1, RST2, RST3,
  output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0
);
  parameter REG_INPUTA_CLK = "NONE";
  parameter REG_INPUTB_CLK = "NONE";
  parameter REG_INPUTC_CLK = "NONE";
  parameter REG_PIPELINE_CLK = "NONE";
  parameter REG_OUTPUT_CLK = "NONE";
  parameter GSR = "ENABLED";
  parameter RESETMODE = "SYNC";
  wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
  wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
  reg [17:0] a_r, b_r;
  reg [35:0] p_r;
  initial begin
    if (REG_INPUTA_CLK != "CLK0" || REG_INPUTB_CLK != "CLK0" || REG_OUTPUT_CLK != "CLK0"
        || REG_PIPELINE_CLK != "NONE") begin
      $display("MULT18X18D model: unsupported register configuration");
      $finish;
    end
    a_r = 0;
    b_r = 0;
    p_r = 0;
  end
  always @(posedge CLK0) begin
    if (SIGNEDA || SIGNEDB || SOURCEA || SOURCEB || RST0 || !CE0) begin
      $display("MULT18X18D model: unsupported control inputs");
      $finish;
    end
    a_r <= a;
    b_r <= b;
    p_r <= a_r * b_r;
  end
  assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p_r;
endmodule
