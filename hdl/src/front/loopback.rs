//! DMA loopback: the command-ring reader's entries go straight into the event-ring writer, so
//! every command the host posts comes back as an event carrying the same words 2..15 (word 0's
//! bits 30:0 too), with the event ring's phase and sequence number. The bring-up test of the
//! front end on new hardware, before the scan core is attached: it proves the doorbell, both
//! DMA directions, both rings' wrap and the phase protocol with nothing else in the way.
//!
//! ```text
//!  doorbell ─> CmdReader ──cmd port (8 beats)──> EvtWriter ─> event ring
//!              │ AR/R                            │ AW/W/B
//!              axi_rd                            axi_wr
//! ```
//!
//! Inputs: `clock`, `reset`, `cmd_ring_base`, `cmd_ring_mask`, `doorbell_write`, `doorbell`,
//! `evt_ring_base`, `evt_ring_mask`, `evt_consumer`, and the AXI inputs of both halves.
//!
//! Outputs: `cmd_consumer`, `evt_producer`, `seq_gaps`, `dma_error` (either block's), and the
//! AXI outputs. Golden model: [`loopback_model`].

use crate::abi::ring::RING_ENTRY_WORDS;
use crate::front::axi::*;
use crate::front::cmd_reader::CmdReader;
use crate::front::evt_writer::{EvtWriter, EvtWriterModel};
use rust_hdl::prelude::*;

/// Golden model of [`Loopback`]: the event ring entries the host reads for the posted command
/// entries `cmds`, in order, with an event ring of `evt_entries`.
pub fn loopback_model(cmds: &[[u32; RING_ENTRY_WORDS]], evt_entries: u32) -> Vec<[u32; RING_ENTRY_WORDS]> {
    let mut w = EvtWriterModel::new(evt_entries);
    cmds.iter().map(|c| w.place(c).1).collect()
}

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct Loopback {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous soft reset of both blocks.
    pub reset: Signal<In, Bit>,
    /// Command ring: bus address of entry 0.
    pub cmd_ring_base: Signal<In, Bits<64>>,
    /// Command ring entries - 1.
    pub cmd_ring_mask: Signal<In, Bits<32>>,
    /// The host wrote the doorbell.
    pub doorbell_write: Signal<In, Bit>,
    /// The host's command producer index.
    pub doorbell: Signal<In, Bits<32>>,
    /// Event ring: bus address of entry 0.
    pub evt_ring_base: Signal<In, Bits<64>>,
    /// Event ring entries - 1.
    pub evt_ring_mask: Signal<In, Bits<32>>,
    /// The host's event consumer index.
    pub evt_consumer: Signal<In, Bits<32>>,
    /// DMA read half.
    pub axi_rd: AxiReadMaster,
    /// DMA write half.
    pub axi_wr: AxiWriteMaster,
    /// Command entries fetched.
    pub cmd_consumer: Signal<Out, Bits<32>>,
    /// Event entries written.
    pub evt_producer: Signal<Out, Bits<32>>,
    /// Command entries with an unexpected sequence number.
    pub seq_gaps: Signal<Out, Bits<32>>,
    /// Sticky: a DMA access answered other than OKAY.
    pub dma_error: Signal<Out, Bit>,
    reader: CmdReader,
    writer: EvtWriter,
}

impl Logic for Loopback {
    #[hdl_gen]
    fn update(&mut self) {
        clock!(self, clock, reader, writer);
        self.reader.reset.next = self.reset.val();
        self.writer.reset.next = self.reset.val();
        self.reader.ring_base.next = self.cmd_ring_base.val();
        self.reader.ring_mask.next = self.cmd_ring_mask.val();
        self.reader.doorbell_write.next = self.doorbell_write.val();
        self.reader.doorbell.next = self.doorbell.val();
        self.writer.ring_base.next = self.evt_ring_base.val();
        self.writer.ring_mask.next = self.evt_ring_mask.val();
        self.writer.consumer.next = self.evt_consumer.val();
        AxiReadMaster::link(&mut self.axi_rd, &mut self.reader.axi);
        AxiWriteMaster::link(&mut self.axi_wr, &mut self.writer.axi);
        self.writer.evt_valid.next = self.reader.cmd_valid.val();
        self.writer.evt_data.next = self.reader.cmd_data.val();
        self.reader.cmd_ready.next = self.writer.evt_ready.val();
        self.cmd_consumer.next = self.reader.consumer.val();
        self.evt_producer.next = self.writer.producer.val();
        self.seq_gaps.next = self.reader.seq_gaps.val();
        self.dma_error.next = self.reader.dma_error.val() | self.writer.dma_error.val();
    }
}
