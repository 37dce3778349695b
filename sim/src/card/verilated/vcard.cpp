// C ABI around the Verilated card (`top`, hdl/src/front/card.rs, under vcard_top.v): one call
// per clock cycle. The input and output structs are in vcard.h.
#include <cstdint>
#include "Vtop.h"
#include "verilated.h"
#include "vcard.h"

extern "C" {

struct Vcard {
    VerilatedContext ctx;
    Vtop* top;
};

uint32_t vcard_abi_version() { return 2; }

// Verilator registers and erases a model's public scopes in the calling thread's context
// (`Verilated::threadContextp()`), not the model's: set it to the model's own around the model's
// construction and destruction, or a model freed on another thread (the card thread) erases
// them from whatever context that thread last saw, perhaps another model's or a freed one.
void* vcard_new() {
    Vcard* c = new Vcard;
    Verilated::threadContextp(&c->ctx);
    c->top = new Vtop(&c->ctx, "top");
    c->top->clock = 1;
    c->top->eval();
    return c;
}

void vcard_free(void* p) {
    Vcard* c = static_cast<Vcard*>(p);
    Verilated::threadContextp(&c->ctx);
    c->top->final();
    delete c->top;
    delete c;
    Verilated::threadContextp(nullptr);
}

// Applies `in`, settles the logic with the clock low, copies the outputs (as they stand just
// before the rising edge) into `out`, then clocks the rising edge. `in->reset` is taken by
// vcard_top.v's reset flop at that edge: the card's reset in the next cycle.
void vcard_cycle(void* p, const VcardIn* in, VcardOut* out) {
    Vtop* t = static_cast<Vcard*>(p)->top;
    t->reset_next = in->reset;
    t->bar_awvalid = in->bar_awvalid;
    t->bar_awaddr = in->bar_awaddr;
    t->bar_wvalid = in->bar_wvalid;
    t->bar_wdata = in->bar_wdata;
    t->bar_wstrb = in->bar_wstrb;
    t->bar_bready = in->bar_bready;
    t->bar_arvalid = in->bar_arvalid;
    t->bar_araddr = in->bar_araddr;
    t->bar_rready = in->bar_rready;
    t->axi_rd__024arready = in->rd_arready;
    t->axi_rd__024rvalid = in->rd_rvalid;
    t->axi_rd__024rdata = in->rd_rdata;
    t->axi_rd__024rresp = in->rd_rresp;
    t->axi_rd__024rlast = in->rd_rlast;
    t->axi_wr__024awready = in->wr_awready;
    t->axi_wr__024wready = in->wr_wready;
    t->axi_wr__024bvalid = in->wr_bvalid;
    t->axi_wr__024bresp = in->wr_bresp;
    t->clock = 0;
    t->eval();
    out->bar_awready = t->bar_awready;
    out->bar_wready = t->bar_wready;
    out->bar_bvalid = t->bar_bvalid;
    out->bar_bresp = t->bar_bresp;
    out->bar_arready = t->bar_arready;
    out->bar_rvalid = t->bar_rvalid;
    out->bar_rdata = t->bar_rdata;
    out->bar_rresp = t->bar_rresp;
    out->rd_arvalid = t->axi_rd__024arvalid;
    out->rd_araddr = t->axi_rd__024araddr;
    out->rd_arlen = t->axi_rd__024arlen;
    out->rd_rready = t->axi_rd__024rready;
    out->wr_awvalid = t->axi_wr__024awvalid;
    out->wr_awaddr = t->axi_wr__024awaddr;
    out->wr_awlen = t->axi_wr__024awlen;
    out->wr_wvalid = t->axi_wr__024wvalid;
    out->wr_wdata = t->axi_wr__024wdata;
    out->wr_wstrb = t->axi_wr__024wstrb;
    out->wr_wlast = t->axi_wr__024wlast;
    out->wr_bready = t->axi_wr__024bready;
    out->dma_error = t->dma_error;
    out->cmd_consumer = t->cmd_consumer;
    out->evt_producer = t->evt_producer;
    t->clock = 1;
    t->eval();
}

}
