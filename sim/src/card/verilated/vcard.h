// The C ABI's structs of the Verilated card (`vcard.cpp`, ABI version 2): one definition for
// the wrapper and for scripts/vcard-rate.c. The field layouts match `VcardIn` / `VcardOut` in
// sim/src/card/verilated/model.rs. `reset` is the card's reset in the next cycle (version 2).
#ifndef LIQSCAN_VCARD_H
#define LIQSCAN_VCARD_H
#include <stdint.h>

typedef struct VcardIn {
    uint64_t rd_rdata;
    uint32_t bar_awaddr, bar_wdata, bar_araddr;
    uint8_t reset, bar_awvalid, bar_wvalid, bar_wstrb, bar_bready, bar_arvalid, bar_rready;
    uint8_t rd_arready, rd_rvalid, rd_rresp, rd_rlast;
    uint8_t wr_awready, wr_wready, wr_bvalid, wr_bresp;
} VcardIn;

typedef struct VcardOut {
    uint64_t rd_araddr, wr_awaddr, wr_wdata;
    uint32_t bar_rdata, cmd_consumer, evt_producer;
    uint8_t bar_awready, bar_wready, bar_bvalid, bar_bresp, bar_arready, bar_rvalid, bar_rresp;
    uint8_t rd_arvalid, rd_arlen, rd_rready;
    uint8_t wr_awvalid, wr_awlen, wr_wvalid, wr_wstrb, wr_wlast, wr_bready;
    uint8_t dma_error;
} VcardOut;

#endif
