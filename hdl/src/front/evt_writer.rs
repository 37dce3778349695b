//! Event-ring writer: 64-byte event entries in on the event port, written to the event ring in
//! host memory by AXI write bursts, the word holding the phase bit last.
//!
//! ```text
//!  evt_valid/evt_ready, evt_data ──beat 0──> head register: word 0 | phase << 31, word 1 = seq
//!                                └─beats 1..7──> AW+W: slot + 8, 7 beats ──> B
//!                                               AW+W: slot, 1 beat (head) ──> B ──> producer + 1
//!  slot = ring_base + (producer & ring_mask) * 64;  ring full (producer - consumer > ring_mask): wait
//! ```
//!
//! The host finds new events by polling word 0 bit 31 (the phase) in its own memory
//! (docs/CARD_LINK.md). So that it never sees a partial entry, words 2..15 go out first as one
//! burst, and words 0 and 1 (kind, flags, phase, sequence number) only after that burst's
//! write response, as a second burst of one beat. The writer owns the ring position: it puts
//! the phase bit (1 on the first lap, flipping at each wrap, as `EventEntry::encode` and the
//! emulated card do) into word 0 bit 31 and the sequence number (the producer index) into word
//! 1, whatever the event source put there. It waits, taking nothing, while the ring is full.
//! The full flag is a register at the end of a short pipeline that starts at flops (the
//! consumer index registered, the distance's bits above the mask, their OR, the select for the
//! index `producer` takes), so no carry chain runs into `full` or `evt_ready`. A consumer write
//! is seen three cycles later than a combinational check would see it, which can only hold an
//! entry back for those cycles.
//!
//! Cycle behaviour: one entry at a time. Idle, with beat 0 on the port and room in the ring:
//! beat 0 is taken; then AW (1 cycle without stalls), the 7 W beats straight from the event
//! port (`wvalid = evt_valid`, `evt_ready = wready`), B, AW, the head beat, B; then `producer`
//! advances and the next entry's beat 0 can be taken. With a memory whose write response comes
//! L >= 1 cycles after a burst's last W beat, no stalls, a source always ready and room in the
//! ring, an entry takes 2L + 11 cycles (measured by `cycles_per_entry_match_the_documented_figures`).
//!
//! Inputs: `clock`, `reset` (synchronous soft reset: producer index to 0; assert it only while
//! no burst is in flight), `ring_base` (bus address of entry 0, 64-byte aligned), `ring_mask`
//! (entries - 1, entries a power of two), `consumer` (the host's free-running consumer index,
//! the `EVT_CONSUMER` register), `evt_valid`, `evt_data`, and the AXI inputs.
//!
//! Outputs: `evt_ready`, `producer` (entries written, free-running), `ring_full` (an entry is
//! waiting for room), `dma_error` (sticky: a write answered other than OKAY), and the AXI
//! outputs. Golden model: [`EvtWriterModel`].

use crate::abi::ring::{PHASE_BIT, RING_ENTRY_WORDS};
use crate::front::axi::*;
use rust_hdl::prelude::*;

/// Writer state.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum WriteState {
    /// Waiting for beat 0 and room in the ring.
    Idle,
    /// Address of the body burst (words 2..15).
    BodyAddr,
    /// Body beats.
    BodyData,
    /// Body response.
    BodyResp,
    /// Address of the head beat (words 0, 1).
    HeadAddr,
    /// Head beat.
    HeadData,
    /// Head response.
    HeadResp,
}

/// Golden model of [`EvtWriter`]: where each entry goes and what lands there.
#[derive(Clone, Debug)]
pub struct EvtWriterModel {
    /// Entries written (free-running).
    pub producer: u32,
    /// Ring entries - 1.
    pub mask: u32,
}

impl EvtWriterModel {
    /// A writer for a ring of `entries` (a power of two).
    pub fn new(entries: u32) -> Self {
        assert!(entries.is_power_of_two());
        EvtWriterModel { producer: 0, mask: entries - 1 }
    }

    /// Places the event `words`: returns the ring slot and the words as the host reads them.
    pub fn place(&mut self, words: &[u32; RING_ENTRY_WORDS]) -> (u32, [u32; RING_ENTRY_WORDS]) {
        let phase = (self.producer / (self.mask + 1)).is_multiple_of(2);
        let mut w = *words;
        w[0] = (w[0] & !PHASE_BIT) | if phase { PHASE_BIT } else { 0 };
        w[1] = self.producer;
        let slot = self.producer & self.mask;
        self.producer = self.producer.wrapping_add(1);
        (slot, w)
    }
}

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct EvtWriter {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous soft reset.
    pub reset: Signal<In, Bit>,
    /// Bus address of ring entry 0 (64-byte aligned).
    pub ring_base: Signal<In, Bits<64>>,
    /// Ring entries - 1.
    pub ring_mask: Signal<In, Bits<32>>,
    /// The host's free-running consumer index.
    pub consumer: Signal<In, Bits<32>>,
    /// An event beat is on `evt_data`.
    pub evt_valid: Signal<In, Bit>,
    /// The writer takes the beat.
    pub evt_ready: Signal<Out, Bit>,
    /// Words `2k` (bits 31:0) and `2k + 1` (bits 63:32) of the entry; beats come in order
    /// k = 0..=7, eight per entry.
    pub evt_data: Signal<In, Bits<64>>,
    /// DMA write port.
    pub axi: AxiWriteMaster,
    /// Entries written (free-running producer index).
    pub producer: Signal<Out, Bits<32>>,
    /// Beat 0 is waiting for room in the ring.
    pub ring_full: Signal<Out, Bit>,
    /// Sticky: a write came back other than OKAY.
    pub dma_error: Signal<Out, Bit>,
    state: DFF<WriteState>,
    prod: DFF<Bits<32>>,
    addr: DFF<Bits<64>>,
    head: DFF<Bits<64>>,
    beat: DFF<Bits<3>>,
    derr: DFF<Bit>,
    // `prod + 1`, ready for the cycle `prod` advances.
    prod1: DFF<Bits<32>>,
    // Ring full, registered. It is computed in a pipeline that starts at flops (the consumer is
    // taken into `cons` first, next to the subtracts): the distance for each index `prod` can
    // take (kept, advanced, reset) with its bits above the mask (`dk`, `da`, `dr`: one carry
    // chain and one AND a cycle), whether any is set (`fk`, `fa`, `fr`: an OR), then the select
    // into `full`. `used > mask` is tested as a bit of `used` above the mask: the same for a
    // mask 2^k - 1, never looser for any mask. The consumer is thus seen three cycles late,
    // which only holds an entry back (the host's consumer only grows). `prod1` and the reset's
    // index 0 stand still for many cycles before `prod` takes them, so `fa` and `fr` are
    // current then; `fk` catches up with a new `prod` two cycles later, and `hold` keeps
    // `full` (already computed for that `prod`) in those two cycles.
    cons: DFF<Bits<32>>,
    dk: DFF<Bits<32>>,
    da: DFF<Bits<32>>,
    dr: DFF<Bits<32>>,
    fk: DFF<Bit>,
    fa: DFF<Bit>,
    fr: DFF<Bit>,
    hold: DFF<Bits<2>>,
    full: DFF<Bit>,
    // `prod` is on an odd lap (the phase bit is its inverse), a register: cleared with the
    // reset's index 0 (and at power-up), set to `odd_adv` (the same for `prod1`, registered
    // every cycle; `prod1` stands still for many cycles before `prod` takes it) as `prod`
    // advances, so beat 0's head register does not see the lap decode of `prod`.
    odd_adv: DFF<Bit>,
    odd: DFF<Bit>,
    next_prod: Signal<Local, Bits<32>>,
    next_full: Signal<Local, Bit>,
    lap: Signal<Local, Bits<32>>,
    phase: Signal<Local, Bits<1>>,
}

impl Logic for EvtWriter {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, prod, addr, head, beat, derr, prod1, cons, dk, da, dr, fk, fa, fr, hold,
            full, odd_adv, odd
        );
        self.cons.d.next = self.consumer.val();
        self.dk.d.next = (self.prod.q.val() - self.cons.q.val()) & !self.ring_mask.val();
        self.da.d.next = (self.prod1.q.val() - self.cons.q.val()) & !self.ring_mask.val();
        self.dr.d.next = (bits::<32>(0) - self.cons.q.val()) & !self.ring_mask.val();
        self.fk.d.next = self.dk.q.val() != 0;
        self.fa.d.next = self.da.q.val() != 0;
        self.fr.d.next = self.dr.q.val() != 0;
        self.next_prod.next = self.prod.q.val();
        self.next_full.next = self.fk.q.val();
        if self.hold.q.val() != 0 {
            self.next_full.next = self.full.q.val();
            self.hold.d.next = self.hold.q.val() - 1;
        }
        // The lap bit of `prod1` (entries = mask + 1, a power of two: the bit just above the
        // mask, found without an adder).
        self.lap.next = self.prod1.q.val() & ((self.ring_mask.val() << 1) | 1) & !self.ring_mask.val();
        self.odd_adv.d.next = self.lap.val() != 0;
        self.phase.next = 1.into();
        if self.odd.q.val() {
            self.phase.next = 0.into();
        }
        self.evt_ready.next = false;
        self.axi.awvalid.next = false;
        self.axi.awaddr.next = self.addr.q.val();
        self.axi.awlen.next = 0.into();
        self.axi.wvalid.next = false;
        self.axi.wdata.next = self.head.q.val();
        self.axi.wlast.next = true;
        self.axi.bready.next = false;
        match self.state.q.val() {
            WriteState::Idle => {
                self.evt_ready.next = !self.full.q.val();
                if self.evt_valid.val() & !self.full.q.val() {
                    self.head.d.next = bit_cast::<64, 31>(self.evt_data.val().get_bits::<31>(0))
                        | (bit_cast::<64, 1>(self.phase.val()) << 31)
                        | (bit_cast::<64, 32>(self.prod.q.val()) << 32);
                    self.addr.d.next = self.ring_base.val()
                        + (bit_cast::<64, 32>(self.prod.q.val() & self.ring_mask.val()) << 6);
                    self.beat.d.next = 1.into();
                    self.state.d.next = WriteState::BodyAddr;
                }
            }
            WriteState::BodyAddr => {
                self.axi.awvalid.next = true;
                self.axi.awaddr.next = self.addr.q.val() | 8;
                self.axi.awlen.next = 6.into();
                if self.axi.awready.val() {
                    self.state.d.next = WriteState::BodyData;
                }
            }
            WriteState::BodyData => {
                self.axi.wvalid.next = self.evt_valid.val();
                self.axi.wdata.next = self.evt_data.val();
                self.axi.wlast.next = self.beat.q.val() == 7;
                self.evt_ready.next = self.axi.wready.val();
                if self.evt_valid.val() & self.axi.wready.val() {
                    self.beat.d.next = self.beat.q.val() + 1;
                    if self.beat.q.val() == 7 {
                        self.state.d.next = WriteState::BodyResp;
                    }
                }
            }
            WriteState::BodyResp => {
                self.axi.bready.next = true;
                if self.axi.bvalid.val() {
                    self.state.d.next = WriteState::HeadAddr;
                }
            }
            WriteState::HeadAddr => {
                self.axi.awvalid.next = true;
                if self.axi.awready.val() {
                    self.state.d.next = WriteState::HeadData;
                }
            }
            WriteState::HeadData => {
                self.axi.wvalid.next = true;
                if self.axi.wready.val() {
                    self.state.d.next = WriteState::HeadResp;
                }
            }
            WriteState::HeadResp => {
                self.axi.bready.next = true;
                if self.axi.bvalid.val() {
                    self.next_prod.next = self.prod1.q.val();
                    self.next_full.next = self.fa.q.val();
                    self.odd.d.next = self.odd_adv.q.val();
                    self.hold.d.next = 2.into();
                    self.state.d.next = WriteState::Idle;
                }
            }
        }
        if self.axi.bready.val() & self.axi.bvalid.val() & (self.axi.bresp.val() != 0) {
            self.derr.d.next = true;
        }
        self.axi.awsize.next = 3.into();
        self.axi.awburst.next = 1.into();
        self.axi.wstrb.next = 0xFF.into();
        self.producer.next = self.prod.q.val();
        self.ring_full.next =
            (self.state.q.val() == WriteState::Idle) & self.evt_valid.val() & self.full.q.val();
        self.dma_error.next = self.derr.q.val();
        if self.reset.val() {
            self.state.d.next = WriteState::Idle;
            self.next_prod.next = 0.into();
            self.next_full.next = self.fr.q.val();
            self.odd.d.next = false;
            self.hold.d.next = 2.into();
            self.derr.d.next = false;
        }
        self.prod.d.next = self.next_prod.val();
        self.prod1.d.next = self.next_prod.val() + 1;
        self.full.d.next = self.next_full.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{Event, EventEntry};

    /// The model puts phase and sequence number where the abi's encoder does, lap after lap.
    #[test]
    fn model_places_entries_as_the_abi_encodes_them() {
        let mut m = EvtWriterModel::new(4);
        for seq in 0..20u32 {
            let event = Event::FenceDone { cmd_seq: 7 * seq, token: !seq };
            let unplaced = EventEntry { phase: seq % 3 == 0, seq: 0xDEAD, event }.encode_words();
            let (slot, w) = m.place(&unplaced);
            assert_eq!(slot, seq % 4);
            let phase = (seq / 4).is_multiple_of(2);
            assert_eq!(w, EventEntry { phase, seq, event }.encode_words());
            assert_eq!(EventEntry::decode_words(&w), Ok(EventEntry { phase, seq, event }));
        }
    }
}
