// Board shell placing the LiteDRAM standalone core (build/litedram/orangecrab-85f/, written by
// scripts/gen-litedram.sh) with the external-memory scan block (rust-hdl `core::ext_scan`,
// ExtScan<1, 1, 64, 9>, top `top`, written by `gen_verilog --ext-scan 9`) on the OrangeCrab
// 85F's pins. scripts/place-litedram.sh uses it with LIQSCAN_DRAM_WITH=extscan.
// With LIQSCAN_PORT128 defined (LIQSCAN_DRAM_WITH=extscan128) the port and the block's channel
// are 128 bits wide instead (ExtScan<1, 2, 128, 9>, `gen_verilog --ext-scan-128 9`, a core
// generated with a 128-bit port): the controller's own width, so no up-converter between them.
// With LIQSCAN_INC also defined (LIQSCAN_DRAM_WITH=extscan128inc) the block's incremental scan
// is wired too: `inc` and its group port (`xg_valid`, `xg_group`, `xg_ready`) are on the serial
// chain like the rest of the host side, so synthesis keeps the group queue and the readers'
// segment path. Without it the group port is tied off (full scans only) and synthesis removes
// the incremental logic.
//
// The scan block's one memory channel is wired to the controller's native user port `terms`
// directly, both in the controller's sys domain (user_clk, 75 MHz): one clock, no crossing.
// The two speak the same protocol, so the wiring is the whole adapter:
// - addresses: both count port words (64 bits: LiteDRAM's up-converter maps them onto the
//   128-bit controller; 128 bits: the controller's words); the port has 26 or 25 address bits
//   (512 MB), the block 32, so the top 6 or 7 are dropped (a book must lie below 512 MB).
//   Through the 64-bit port's converter a read ending in the low half of a 128-bit word waits
//   for a next address, so a book must start at an even word there
//   (bitstreams/lfe5u-85f/ddr3/STATUS.md, "With the scan block");
// - cmd_valid/cmd_ready and rdata_valid/rdata_ready are valid/ready handshakes on both sides;
//   the block's cmd_valid is a register (it does not wait for cmd_ready) and its rdata_ready is
//   high out of reset (its buffer reserves room for every word it asks for);
// - the block only reads: cmd_we is its constant 0 and the write-data stream is tied off
//   (wdata_valid 0, no byte enables), as LiteDRAM expects of a port that never writes.
//
// Everything else is reached through the same four-pin serial chain as
// scripts/litedram/orangecrab-85f-top.v (`sin`, `shift`, `load`, `sout`): the scan block's
// host-side inputs (start, base, groups, slots, the price write port, out_ready, a reset) and
// the controller's wishbone control bus (calibration) in; the block's output head (valid,
// done, offset, breach and at-risk bits), busy, and the wishbone replies out. `start`,
// `price_we` and `out_ready` act once per `load` (a one-cycle strobe on its rising edge), so a
// load pops at most one output entry, the one the same load captured.
// With LIQSCAN_INC: `inc` is a level (read with `start`), and `xg_valid` is a strobe too, so a
// load offers at most one group. The host offers one when the last load captured `xg_ready`
// high: the block holds `xg_ready` until it takes a group (during an incremental scan it drops
// only when the queue is full, and the queue is emptied only by the output, so room once seen
// stays until the host's next group), so the group a load offers is taken in the strobe's cycle.
module orangecrab_extscan_top(
    input  wire        clk48,
    input  wire        usr_btn,      // active low, as litex-boards' target uses it
    output wire [14:0] ddram_a,
    output wire [2:0]  ddram_ba,
    output wire        ddram_ras_n,
    output wire        ddram_cas_n,
    output wire        ddram_we_n,
    output wire        ddram_cs_n,
    output wire [1:0]  ddram_dm,
    inout  wire [15:0] ddram_dq,
    inout  wire [1:0]  ddram_dqs_p,
    output wire        ddram_clk_p,
    output wire        ddram_cke,
    output wire        ddram_odt,
    output wire        ddram_reset_n,
    output wire [2:0]  led,          // pll_locked, init_done, init_error
    input  wire        sin,
    input  wire        shift,
    input  wire        load,
    output wire        sout
);
    // In: scan reset, start, base, groups, slots, price we/addr/spot/stressed, out_ready;
    // with LIQSCAN_INC inc, xg_valid, xg_group; then the wishbone bus.
    localparam FULL_IN = 1 + 1 + 32 + 32 + 5 + 1 + 9 + 32 + 32 + 1;         // 146
`ifdef LIQSCAN_INC
    localparam SCAN_IN = FULL_IN + 1 + 1 + 32;                                // 180
`else
    localparam SCAN_IN = FULL_IN;
`endif
    localparam WB_IN = 1 + 30 + 2 + 3 + 1 + 32 + 4 + 1;                      // 74
    localparam IN_BITS = SCAN_IN + WB_IN;                                     // 220 (254)
    // Out: busy, out_valid, out_done, out_offset, out_breach, out_at_risk; wishbone replies;
    // with LIQSCAN_INC xg_ready last.
`ifdef LIQSCAN_INC
    localparam OUT_BITS = 1 + 1 + 1 + 32 + 16 + 16 + 1 + 32 + 1 + 1;          // 102
`else
    localparam OUT_BITS = 1 + 1 + 1 + 32 + 16 + 16 + 1 + 32 + 1;              // 101
`endif
    // The native port: word bits and address bits (512 MB).
`ifdef LIQSCAN_PORT128
    localparam WORD = 128, ADDR = 25;
`else
    localparam WORD = 64, ADDR = 26;
`endif
    wire user_clk, user_rst;
    reg [IN_BITS-1:0]  shadow, in_r;
    reg [OUT_BITS-1:0] out_r;
    wire [OUT_BITS-1:0] out_w;
    reg load_d, strobe;
    always @(posedge user_clk) begin
        if (shift) shadow <= {shadow[IN_BITS-2:0], sin};
        if (load) in_r <= shadow;
        if (load) out_r <= out_w;
        else if (shift) out_r <= {out_r[OUT_BITS-2:0], 1'b0};
        load_d <= load;
        strobe <= load & ~load_d;
    end
    assign sout = out_r[OUT_BITS-1];

    // The scan block's host side.
    wire        scan_rst   = user_rst | in_r[0];
    wire        start      = in_r[1] & strobe;
    wire [31:0] base       = in_r[33:2];
    wire [31:0] groups     = in_r[65:34];
    wire [4:0]  slots      = in_r[70:66];
    wire        price_we   = in_r[71] & strobe;
    wire [8:0]  price_addr = in_r[80:72];
    wire [31:0] price_spot = in_r[112:81];
    wire [31:0] price_str  = in_r[144:113];
    wire        out_ready  = in_r[145] & strobe;
`ifdef LIQSCAN_INC
    wire        inc        = in_r[146];
    wire        xg_valid   = in_r[147] & strobe;
    wire [31:0] xg_group   = in_r[179:148];
    wire        xg_ready;
`endif
    wire        busy, out_valid, out_done;
    wire [31:0] out_offset;
    wire [15:0] out_breach, out_at_risk;

    // The native port between them.
    wire        cmd_valid, cmd_ready, cmd_we, rdata_valid, rdata_ready;
    wire [31:0] cmd_addr;
    wire [WORD-1:0] rdata;

    wire        wb_ack, wb_err;
    wire [31:0] wb_dat_r;
`ifdef LIQSCAN_INC
    assign out_w = {busy, out_valid, out_done, out_offset, out_breach, out_at_risk, wb_ack, wb_dat_r, wb_err,
                    xg_ready};
`else
    assign out_w = {busy, out_valid, out_done, out_offset, out_breach, out_at_risk, wb_ack, wb_dat_r, wb_err};
`endif

    top scan(
        .clock(user_clk), .reset(scan_rst),
        .start(start), .base(base), .groups(groups), .slots(slots),
`ifdef LIQSCAN_INC
        .inc(inc), .xg_valid(xg_valid), .xg_group(xg_group), .xg_ready(xg_ready),
`else
        // Full scans only: the incremental scan's group port is not wired to the host here.
        .inc(1'b0), .xg_valid(1'b0), .xg_group(32'd0), .xg_ready(),
`endif
        .price_we(price_we), .price_addr(price_addr), .price_spot(price_spot),
        .price_stressed(price_str),
        .cmd_valid$0(cmd_valid), .cmd_ready$0(cmd_ready), .cmd_we$0(cmd_we),
        .cmd_addr$0(cmd_addr), .rdata_valid$0(rdata_valid), .rdata_ready$0(rdata_ready),
        .rdata_data$0(rdata),
        .out_valid(out_valid), .out_ready(out_ready), .out_done(out_done),
        .out_offset(out_offset), .out_breach(out_breach), .out_at_risk(out_at_risk),
        .busy(busy));

    litedram_core dram(
        .clk(clk48), .rst(~usr_btn),
        .ddram_a(ddram_a), .ddram_ba(ddram_ba), .ddram_ras_n(ddram_ras_n),
        .ddram_cas_n(ddram_cas_n), .ddram_we_n(ddram_we_n), .ddram_cs_n(ddram_cs_n),
        .ddram_dm(ddram_dm), .ddram_dq(ddram_dq), .ddram_dqs_p(ddram_dqs_p),
        .ddram_clk_p(ddram_clk_p), .ddram_cke(ddram_cke), .ddram_odt(ddram_odt),
        .ddram_reset_n(ddram_reset_n),
        .pll_locked(led[0]), .init_done(led[1]), .init_error(led[2]),
        .user_clk(user_clk), .user_rst(user_rst),
        .user_port_terms_cmd_addr(cmd_addr[ADDR-1:0]),
        .user_port_terms_cmd_valid(cmd_valid),
        .user_port_terms_cmd_we(cmd_we),
        .user_port_terms_cmd_ready(cmd_ready),
        .user_port_terms_rdata_ready(rdata_ready),
        .user_port_terms_rdata_data(rdata),
        .user_port_terms_rdata_valid(rdata_valid),
        .user_port_terms_wdata_data({WORD{1'b0}}),
        .user_port_terms_wdata_valid(1'b0),
        .user_port_terms_wdata_we({WORD/8{1'b0}}),
        .user_port_terms_wdata_ready(),
        .wb_ctrl_cyc(in_r[SCAN_IN]),
        .wb_ctrl_adr(in_r[SCAN_IN+30:SCAN_IN+1]),
        .wb_ctrl_bte(in_r[SCAN_IN+32:SCAN_IN+31]),
        .wb_ctrl_cti(in_r[SCAN_IN+35:SCAN_IN+33]),
        .wb_ctrl_stb(in_r[SCAN_IN+36]),
        .wb_ctrl_dat_w(in_r[SCAN_IN+68:SCAN_IN+37]),
        .wb_ctrl_sel(in_r[SCAN_IN+72:SCAN_IN+69]),
        .wb_ctrl_we(in_r[SCAN_IN+73]),
        .wb_ctrl_ack(wb_ack), .wb_ctrl_dat_r(wb_dat_r), .wb_ctrl_err(wb_err));
endmodule
