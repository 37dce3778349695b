// Board shell for place and route: stands in for the PCIe/DMA front end of a real card.
// The scan core's ports (about 220 signals) exceed the package's pins, so the shell loads
// them 16 bits at a time into registers and reads the outputs back through a 16-bit mux.
// Every core port is registered here, so the core's timing is measured register to register.
//
//   din[15:0], dsel, dstb ──> input slice registers ──> top (scan core) ──> output registers
//                                                                      └──> dout[15:0] (osel)
module board_top(
    input  wire        clk,
    input  wire        rst,
    input  wire [15:0] din,
    input  wire [3:0]  dsel,
    input  wire        dstb,
    input  wire        go,
    input  wire [3:0]  osel,
    output reg  [15:0] dout,
    output wire        cmd_ready_pin,
    output wire        out_valid_pin
);
    reg [159:0] inreg;
    reg         go_r;
    always @(posedge clk) begin
        if (dstb) inreg[dsel*16 +: 16] <= din;
        go_r <= go;
    end
    // inreg layout: [2:0] op, [18:3] addr, [26:19] sub, [58:27] data0, [90:59] data1,
    // [102:91] reg_addr, [134:103] reg_wdata, [135] reg_write, [136] out_ready.
    wire        cmd_ready, out_valid, out_done, busy;
    wire [8:0]  out_group;
    wire [15:0] out_breach, out_at_risk;
    wire [31:0] reg_rdata;
    top core(
        .clock(clk), .reset(rst),
        .cmd_valid(go_r), .cmd_ready(cmd_ready),
        .cmd_op(inreg[2:0]), .cmd_addr(inreg[18:3]), .cmd_sub(inreg[26:19]),
        .cmd_data0(inreg[58:27]), .cmd_data1(inreg[90:59]),
        .out_valid(out_valid), .out_ready(inreg[136]), .out_done(out_done),
        .out_group(out_group), .out_breach(out_breach), .out_at_risk(out_at_risk),
        .reg_addr(inreg[102:91]), .reg_write(inreg[135]), .reg_wdata(inreg[134:103]),
        .reg_rdata(reg_rdata), .busy(busy));
    reg [95:0] outreg;
    always @(posedge clk) begin
        outreg <= {reg_rdata, out_at_risk, out_breach, out_group, 4'd0, out_done, busy, out_valid, 16'd0};
        dout <= outreg[osel[2:0]*16 +: 16];
    end
    assign cmd_ready_pin = cmd_ready;
    assign out_valid_pin = out_valid;
endmodule
