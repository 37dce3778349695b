// Board shell placing the LiteDRAM standalone core (build/litedram/orangecrab-85f/, written by
// scripts/gen-litedram.sh) alone on the OrangeCrab 85F's pins.
//
// The DDR3L, the 48 MHz oscillator, the button and the RGB LED are on their board pins
// (scripts/litedram/orangecrab-85f.lpf). The core's user side (the 64-bit native port and the
// wishbone control bus, 277 port bits) exceeds the csfBGA285's free pins, so it is reached through
// a serial chain on four header pins: `sin` shifts into a shadow register while `shift` is high,
// `load` copies the shadow into the registers driving the core's inputs and captures the core's
// outputs into a register that `shift` then moves out through `sout`. Every core user port is
// registered in the core's sys domain (user_clk), so its timing is measured register to register
// as the scan core's shell does (hdl/verilog/board_shell.v). A real card drives these ports from
// its term stream (issue 14 item 2) and its register block instead.
module orangecrab_top(
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
    localparam IN_BITS = 26 + 3 + 64 + 1 + 8 + 1 + 30 + 2 + 3 + 1 + 32 + 4 + 1; // 176
    localparam OUT_BITS = 1 + 64 + 1 + 1 + 1 + 32 + 1;                              // 101
    wire user_clk, user_rst;
    reg [IN_BITS-1:0]  shadow, in_r;
    reg [OUT_BITS-1:0] out_r;
    wire [OUT_BITS-1:0] out_w;
    always @(posedge user_clk) begin
        if (shift) shadow <= {shadow[IN_BITS-2:0], sin};
        if (load) in_r <= shadow;
        if (load) out_r <= out_w;
        else if (shift) out_r <= {out_r[OUT_BITS-2:0], 1'b0};
    end
    assign sout = out_r[OUT_BITS-1];

    wire        cmd_ready, rdata_valid, wdata_ready, wb_ack, wb_err;
    wire [63:0] rdata;
    wire [31:0] wb_dat_r;
    assign out_w = {cmd_ready, rdata, rdata_valid, wdata_ready, wb_ack, wb_dat_r, wb_err};
    litedram_core dram(
        .clk(clk48), .rst(~usr_btn),
        .ddram_a(ddram_a), .ddram_ba(ddram_ba), .ddram_ras_n(ddram_ras_n),
        .ddram_cas_n(ddram_cas_n), .ddram_we_n(ddram_we_n), .ddram_cs_n(ddram_cs_n),
        .ddram_dm(ddram_dm), .ddram_dq(ddram_dq), .ddram_dqs_p(ddram_dqs_p),
        .ddram_clk_p(ddram_clk_p), .ddram_cke(ddram_cke), .ddram_odt(ddram_odt),
        .ddram_reset_n(ddram_reset_n),
        .pll_locked(led[0]), .init_done(led[1]), .init_error(led[2]),
        .user_clk(user_clk), .user_rst(user_rst),
        .user_port_terms_cmd_addr(in_r[25:0]),
        .user_port_terms_cmd_valid(in_r[26]),
        .user_port_terms_cmd_we(in_r[27]),
        .user_port_terms_rdata_ready(in_r[28]),
        .user_port_terms_wdata_data(in_r[92:29]),
        .user_port_terms_wdata_valid(in_r[93]),
        .user_port_terms_wdata_we(in_r[101:94]),
        .user_port_terms_cmd_ready(cmd_ready),
        .user_port_terms_rdata_data(rdata),
        .user_port_terms_rdata_valid(rdata_valid),
        .user_port_terms_wdata_ready(wdata_ready),
        .wb_ctrl_cyc(in_r[102]),
        .wb_ctrl_adr(in_r[132:103]),
        .wb_ctrl_bte(in_r[134:133]),
        .wb_ctrl_cti(in_r[137:135]),
        .wb_ctrl_stb(in_r[138]),
        .wb_ctrl_dat_w(in_r[170:139]),
        .wb_ctrl_sel(in_r[174:171]),
        .wb_ctrl_we(in_r[175]),
        .wb_ctrl_ack(wb_ack), .wb_ctrl_dat_r(wb_dat_r), .wb_ctrl_err(wb_err));
endmodule
