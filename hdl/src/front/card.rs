//! The whole card: the front end around the scan core, with a BAR slave port for the host's
//! register accesses and one AXI4 DMA master (read and write halves) for its memory.
//!
//! ```text
//!  BAR (AXI4-Lite) ──> BarRegs ──ring registers, doorbell──> CmdReader ──AR/R──> host memory
//!                        │  └──core register port──┐              │ 8 beats / entry
//!                        │                         v              v
//!                        │                      ScanCore <── CmdDecoder (decode, seq, ranges)
//!                        │                         │ words       │ jobs, scan_start
//!                        │                         v             v
//!                        └──EVT_CONSUMER──> EvtWriter <── SkidBuffer <── EvtPacker
//!                                              └──> AW/W/B ──> host memory
//! ```
//!
//! A register slice (`SkidQueue`, the two-entry form of `Skid`) also sits between CmdDecoder
//! and ScanCore's command port.
//!
//! The host programs `CMD_RING_ENTRIES`, `CMD_RING_ADDR_*`, `EVT_RING_ENTRIES`,
//! `EVT_RING_ADDR_*`, writes `CONTROL.SOFT_RESET`, then posts command entries into its own
//! memory and their count into `CMD_DOORBELL`; events appear in the event ring with the phase
//! bit last (docs/CARD_LINK.md, docs/FRONT_END.md). The soft reset clears the front end's
//! indices and state (the ring registers stay) and, forwarded as the `CONTROL` write, the
//! core's registers; memories (prices, terms, the packer's bitmap) are kept. It assumes no DMA
//! burst is in flight (the host has quiesced the link first).
//!
//! What the card answers equals the golden models chained: [`crate::front::cmd_decoder::DecoderModel`],
//! [`crate::golden::CoreModel`], [`crate::front::evt_packer::PackerModel`],
//! [`crate::front::evt_writer::EvtWriterModel`] (the test `card_sim`).
//!
//! Inputs: `clock`, `reset` (synchronous hard reset of everything), the BAR slave port
//! (`bar_*`, see [`BarRegs`]), the DMA halves' inputs.
//!
//! Outputs: the BAR port's outputs, the DMA halves' outputs, `dma_error` (sticky, either
//! half), `cmd_consumer` (command entries fetched), `evt_producer` (events written).

use crate::abi::config::LANES;
use crate::core::regs::REG_ADDR_BITS;
use crate::core::scan_core::ScanCore;
use crate::front::axi::*;
use crate::front::bar_regs::BarRegs;
use crate::front::cmd_decoder::CmdDecoder;
use crate::front::cmd_reader::CmdReader;
use crate::front::evt_packer::EvtPacker;
use crate::front::evt_writer::EvtWriter;
use crate::front::skid::{SkidBuffer, SkidQueue};
use rust_hdl::prelude::*;

const _: () = assert!(REG_ADDR_BITS == 12 && LANES <= 32);

/// A core command in the decoder-to-core slice, fields from bit 0 up: data0 31:0, data1 63:32,
/// op 66:64, addr 82:67, sub 90:83, and at 91 the decoder's `scan_start` (this is the last
/// scan command). Set field by field, the Verilog writes part-selects: packed with shifts, the
/// 92-bit value took five wide shifts, which Verilator runs as library loops on every
/// evaluation (half its clock rate); data0 and data1 on word boundaries are read as words.
#[derive(Clone, Copy, Debug, Default, PartialEq, LogicStruct)]
struct CmdBeat {
    data0: Bits<32>,
    data1: Bits<32>,
    op: Bits<3>,
    addr: Bits<16>,
    sub: Bits<8>,
    scan: Bit,
}

const CMD_BEAT: usize = CmdBeat::BITS;

/// See the module docs.
#[derive(LogicBlock)]
pub struct Card {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous hard reset.
    pub reset: Signal<In, Bit>,
    /// BAR write address valid.
    pub bar_awvalid: Signal<In, Bit>,
    /// BAR write address taken.
    pub bar_awready: Signal<Out, Bit>,
    /// BAR write byte offset.
    pub bar_awaddr: Signal<In, Bits<32>>,
    /// BAR write data valid.
    pub bar_wvalid: Signal<In, Bit>,
    /// BAR write data taken.
    pub bar_wready: Signal<Out, Bit>,
    /// BAR write data.
    pub bar_wdata: Signal<In, Bits<32>>,
    /// BAR write strobes.
    pub bar_wstrb: Signal<In, Bits<4>>,
    /// BAR write response valid.
    pub bar_bvalid: Signal<Out, Bit>,
    /// BAR write response taken.
    pub bar_bready: Signal<In, Bit>,
    /// BAR write response.
    pub bar_bresp: Signal<Out, Bits<2>>,
    /// BAR read address valid.
    pub bar_arvalid: Signal<In, Bit>,
    /// BAR read address taken.
    pub bar_arready: Signal<Out, Bit>,
    /// BAR read byte offset.
    pub bar_araddr: Signal<In, Bits<32>>,
    /// BAR read data valid.
    pub bar_rvalid: Signal<Out, Bit>,
    /// BAR read data taken.
    pub bar_rready: Signal<In, Bit>,
    /// BAR read data.
    pub bar_rdata: Signal<Out, Bits<32>>,
    /// BAR read response.
    pub bar_rresp: Signal<Out, Bits<2>>,
    /// DMA read half (command ring).
    pub axi_rd: AxiReadMaster,
    /// DMA write half (event ring).
    pub axi_wr: AxiWriteMaster,
    /// Sticky: a DMA access was answered other than OKAY.
    pub dma_error: Signal<Out, Bit>,
    /// Command entries fetched (free-running).
    pub cmd_consumer: Signal<Out, Bits<32>>,
    /// Events written (free-running).
    pub evt_producer: Signal<Out, Bits<32>>,
    regs: BarRegs,
    reader: CmdReader,
    decoder: CmdDecoder,
    core: ScanCore,
    packer: EvtPacker,
    // Register slice between packer and writer: `wready` reaches no packer register.
    slice: SkidBuffer,
    // Register slice between decoder and core: the core's `cmd_ready` reaches no decoder
    // register (the term shift registers' enables start at the slice's flops), and in the
    // two-entry form no data register's enable either (card run 38's path).
    cmd_slice: SkidQueue<CMD_BEAT>,
    writer: EvtWriter,
    front_reset: Signal<Local, Bit>,
    cmd_beat: Signal<Local, CmdBeat>,
}

impl Card {
    /// A card whose `BUILD_ID` register reads `build_id`.
    pub fn new(build_id: u32) -> Self {
        Card {
            clock: Default::default(),
            reset: Default::default(),
            bar_awvalid: Default::default(),
            bar_awready: Default::default(),
            bar_awaddr: Default::default(),
            bar_wvalid: Default::default(),
            bar_wready: Default::default(),
            bar_wdata: Default::default(),
            bar_wstrb: Default::default(),
            bar_bvalid: Default::default(),
            bar_bready: Default::default(),
            bar_bresp: Default::default(),
            bar_arvalid: Default::default(),
            bar_arready: Default::default(),
            bar_araddr: Default::default(),
            bar_rvalid: Default::default(),
            bar_rready: Default::default(),
            bar_rdata: Default::default(),
            bar_rresp: Default::default(),
            axi_rd: Default::default(),
            axi_wr: Default::default(),
            dma_error: Default::default(),
            cmd_consumer: Default::default(),
            evt_producer: Default::default(),
            regs: Default::default(),
            reader: Default::default(),
            decoder: Default::default(),
            core: ScanCore::new(build_id),
            packer: Default::default(),
            slice: Default::default(),
            cmd_slice: Default::default(),
            writer: Default::default(),
            front_reset: Default::default(),
            cmd_beat: Default::default(),
        }
    }
}

impl Default for Card {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Logic for Card {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, regs, reader, decoder, core, packer, slice, cmd_slice, writer);
        self.front_reset.next = self.reset.val() | self.regs.soft_reset.val();
        self.regs.reset.next = self.reset.val();
        self.core.reset.next = self.reset.val();
        self.reader.reset.next = self.front_reset.val();
        self.decoder.reset.next = self.front_reset.val();
        self.packer.reset.next = self.front_reset.val();
        self.slice.reset.next = self.front_reset.val();
        self.cmd_slice.reset.next = self.front_reset.val();
        self.writer.reset.next = self.front_reset.val();
        // BAR port.
        self.regs.awvalid.next = self.bar_awvalid.val();
        self.bar_awready.next = self.regs.awready.val();
        self.regs.awaddr.next = self.bar_awaddr.val();
        self.regs.wvalid.next = self.bar_wvalid.val();
        self.bar_wready.next = self.regs.wready.val();
        self.regs.wdata.next = self.bar_wdata.val();
        self.regs.wstrb.next = self.bar_wstrb.val();
        self.bar_bvalid.next = self.regs.bvalid.val();
        self.regs.bready.next = self.bar_bready.val();
        self.bar_bresp.next = self.regs.bresp.val();
        self.regs.arvalid.next = self.bar_arvalid.val();
        self.bar_arready.next = self.regs.arready.val();
        self.regs.araddr.next = self.bar_araddr.val();
        self.bar_rvalid.next = self.regs.rvalid.val();
        self.regs.rready.next = self.bar_rready.val();
        self.bar_rdata.next = self.regs.rdata.val();
        self.bar_rresp.next = self.regs.rresp.val();
        // Registers.
        self.core.reg_addr.next = self.regs.core_addr.val();
        self.core.reg_write.next = self.regs.core_write.val();
        self.core.reg_wdata.next = self.regs.core_wdata.val();
        self.regs.core_rdata.next = self.core.reg_rdata.val();
        self.regs.front_errors.next = self.decoder.errors.val();
        self.reader.ring_base.next = self.regs.cmd_ring_base.val();
        self.reader.ring_mask.next = self.regs.cmd_ring_mask.val();
        self.reader.doorbell_write.next = self.regs.doorbell_write.val();
        self.reader.doorbell.next = self.regs.doorbell.val();
        self.writer.ring_base.next = self.regs.evt_ring_base.val();
        self.writer.ring_mask.next = self.regs.evt_ring_mask.val();
        self.writer.consumer.next = self.regs.evt_consumer.val();
        // DMA.
        AxiReadMaster::link(&mut self.axi_rd, &mut self.reader.axi);
        AxiWriteMaster::link(&mut self.axi_wr, &mut self.writer.axi);
        // Reader -> decoder.
        self.decoder.cmd_valid.next = self.reader.cmd_valid.val();
        self.decoder.cmd_data.next = self.reader.cmd_data.val();
        self.decoder.cmd_last.next = self.reader.cmd_last.val();
        self.reader.cmd_ready.next = self.decoder.cmd_ready.val();
        // Decoder -> slice -> core. The decoder's `scan_start` is high only as the slice takes
        // the last scan command; it rides with that command, and the packer sees it as the
        // core takes it (the packer's scan cycles count from there, as without the slice).
        self.cmd_beat.next.data0 = self.decoder.core_data0.val();
        self.cmd_beat.next.data1 = self.decoder.core_data1.val();
        self.cmd_beat.next.op = self.decoder.core_op.val();
        self.cmd_beat.next.addr = self.decoder.core_addr.val();
        self.cmd_beat.next.sub = self.decoder.core_sub.val();
        self.cmd_beat.next.scan = self.decoder.scan_start.val();
        self.cmd_slice.in_valid.next = self.decoder.core_valid.val();
        self.cmd_slice.in_data.next = self.cmd_beat.val().into();
        self.decoder.core_ready.next = self.cmd_slice.in_ready.val();
        self.core.cmd_valid.next = self.cmd_slice.out_valid.val();
        // The offsets of `CmdBeat`'s fields.
        self.core.cmd_data0.next = self.cmd_slice.out_data.val().get_bits::<32>(0);
        self.core.cmd_data1.next = self.cmd_slice.out_data.val().get_bits::<32>(32);
        self.core.cmd_op.next = self.cmd_slice.out_data.val().get_bits::<3>(64);
        self.core.cmd_addr.next = self.cmd_slice.out_data.val().get_bits::<16>(67);
        self.core.cmd_sub.next = self.cmd_slice.out_data.val().get_bits::<8>(83);
        self.cmd_slice.out_ready.next = self.core.cmd_ready.val();
        // Decoder -> packer.
        self.packer.job_valid.next = self.decoder.job_valid.val();
        self.packer.job_kind.next = self.decoder.job_kind.val();
        self.packer.job_seq.next = self.decoder.job_seq.val();
        self.packer.job_arg.next = self.decoder.job_arg.val();
        self.packer.job_detail.next = self.decoder.job_detail.val();
        self.packer.job_refresh.next = self.decoder.job_refresh.val();
        self.decoder.job_ready.next = self.packer.job_ready.val();
        self.packer.scan_start.next = self.cmd_slice.out_valid.val()
            & self.core.cmd_ready.val()
            & self.cmd_slice.out_data.val().get_bit(91);
        // Core -> packer.
        self.packer.out_valid.next = self.core.out_valid.val();
        self.packer.out_done.next = self.core.out_done.val();
        self.packer.out_group.next = self.core.out_group.val();
        self.packer.out_breach.next = self.core.out_breach.val();
        self.packer.out_at_risk.next = self.core.out_at_risk.val();
        self.core.out_ready.next = self.packer.out_ready.val();
        // Packer -> slice -> writer.
        self.slice.in_valid.next = self.packer.evt_valid.val();
        self.slice.in_data.next = self.packer.evt_data.val();
        self.packer.evt_ready.next = self.slice.in_ready.val();
        self.writer.evt_valid.next = self.slice.out_valid.val();
        self.writer.evt_data.next = self.slice.out_data.val();
        self.slice.out_ready.next = self.writer.evt_ready.val();
        self.dma_error.next = self.reader.dma_error.val() | self.writer.dma_error.val();
        self.cmd_consumer.next = self.reader.consumer.val();
        self.evt_producer.next = self.writer.producer.val();
    }
}
