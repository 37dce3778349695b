// The Verilated card's top (model.rs): the whole card (`top`, the generated Verilog unchanged)
// with its hard reset driven from a flop here, as a testbench drives it. Verilator re-runs all
// logic that depends on a top-level input (its "input combinational" region) on every eval(),
// two a cycle, and `reset` reaches every front-end block's next-state logic: from a flop, that
// logic runs once a cycle, at the edge, instead of three times (10 % of a cycle's instructions).
// `reset_next` is the reset the card sees in the next cycle; the card starts in reset.
module vcard_top(clock,reset_next,bar_awvalid,bar_awready,bar_awaddr,bar_wvalid,bar_wready,bar_wdata,bar_wstrb,bar_bvalid,bar_bready,bar_bresp,bar_arvalid,bar_arready,bar_araddr,bar_rvalid,bar_rready,bar_rdata,bar_rresp,axi_rd$arvalid,axi_rd$arready,axi_rd$araddr,axi_rd$arlen,axi_rd$arsize,axi_rd$arburst,axi_rd$rvalid,axi_rd$rready,axi_rd$rdata,axi_rd$rresp,axi_rd$rlast,axi_wr$awvalid,axi_wr$awready,axi_wr$awaddr,axi_wr$awlen,axi_wr$awsize,axi_wr$awburst,axi_wr$wvalid,axi_wr$wready,axi_wr$wdata,axi_wr$wstrb,axi_wr$wlast,axi_wr$bvalid,axi_wr$bready,axi_wr$bresp,dma_error,cmd_consumer,evt_producer);
    input wire  clock;
    input wire  reset_next;
    input wire  bar_awvalid;
    output wire  bar_awready;
    input wire  [31:0] bar_awaddr;
    input wire  bar_wvalid;
    output wire  bar_wready;
    input wire  [31:0] bar_wdata;
    input wire  [3:0] bar_wstrb;
    output wire  bar_bvalid;
    input wire  bar_bready;
    output wire  [1:0] bar_bresp;
    input wire  bar_arvalid;
    output wire  bar_arready;
    input wire  [31:0] bar_araddr;
    output wire  bar_rvalid;
    input wire  bar_rready;
    output wire  [31:0] bar_rdata;
    output wire  [1:0] bar_rresp;
    output wire  axi_rd$arvalid;
    input wire  axi_rd$arready;
    output wire  [63:0] axi_rd$araddr;
    output wire  [7:0] axi_rd$arlen;
    output wire  [2:0] axi_rd$arsize;
    output wire  [1:0] axi_rd$arburst;
    input wire  axi_rd$rvalid;
    output wire  axi_rd$rready;
    input wire  [63:0] axi_rd$rdata;
    input wire  [1:0] axi_rd$rresp;
    input wire  axi_rd$rlast;
    output wire  axi_wr$awvalid;
    input wire  axi_wr$awready;
    output wire  [63:0] axi_wr$awaddr;
    output wire  [7:0] axi_wr$awlen;
    output wire  [2:0] axi_wr$awsize;
    output wire  [1:0] axi_wr$awburst;
    output wire  axi_wr$wvalid;
    input wire  axi_wr$wready;
    output wire  [63:0] axi_wr$wdata;
    output wire  [7:0] axi_wr$wstrb;
    output wire  axi_wr$wlast;
    input wire  axi_wr$bvalid;
    output wire  axi_wr$bready;
    input wire  [1:0] axi_wr$bresp;
    output wire  dma_error;
    output wire  [31:0] cmd_consumer;
    output wire  [31:0] evt_producer;

    reg reset_q = 1'b1;
    always @(posedge clock) reset_q <= reset_next;

    top card(.clock(clock), .reset(reset_q),
        .bar_awvalid(bar_awvalid), .bar_awready(bar_awready), .bar_awaddr(bar_awaddr),
        .bar_wvalid(bar_wvalid), .bar_wready(bar_wready), .bar_wdata(bar_wdata),
        .bar_wstrb(bar_wstrb), .bar_bvalid(bar_bvalid), .bar_bready(bar_bready),
        .bar_bresp(bar_bresp), .bar_arvalid(bar_arvalid), .bar_arready(bar_arready),
        .bar_araddr(bar_araddr), .bar_rvalid(bar_rvalid), .bar_rready(bar_rready),
        .bar_rdata(bar_rdata), .bar_rresp(bar_rresp),
        .axi_rd$arvalid(axi_rd$arvalid), .axi_rd$arready(axi_rd$arready),
        .axi_rd$araddr(axi_rd$araddr), .axi_rd$arlen(axi_rd$arlen),
        .axi_rd$arsize(axi_rd$arsize), .axi_rd$arburst(axi_rd$arburst),
        .axi_rd$rvalid(axi_rd$rvalid), .axi_rd$rready(axi_rd$rready),
        .axi_rd$rdata(axi_rd$rdata), .axi_rd$rresp(axi_rd$rresp), .axi_rd$rlast(axi_rd$rlast),
        .axi_wr$awvalid(axi_wr$awvalid), .axi_wr$awready(axi_wr$awready),
        .axi_wr$awaddr(axi_wr$awaddr), .axi_wr$awlen(axi_wr$awlen),
        .axi_wr$awsize(axi_wr$awsize), .axi_wr$awburst(axi_wr$awburst),
        .axi_wr$wvalid(axi_wr$wvalid), .axi_wr$wready(axi_wr$wready),
        .axi_wr$wdata(axi_wr$wdata), .axi_wr$wstrb(axi_wr$wstrb), .axi_wr$wlast(axi_wr$wlast),
        .axi_wr$bvalid(axi_wr$bvalid), .axi_wr$bready(axi_wr$bready),
        .axi_wr$bresp(axi_wr$bresp),
        .dma_error(dma_error), .cmd_consumer(cmd_consumer), .evt_producer(evt_producer));
endmodule
