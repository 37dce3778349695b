//! Command-ring reader: doorbell in, 64-byte command entries fetched from the ring by AXI read
//! bursts, sequence numbers checked, entries out on the command port.
//!
//! ```text
//!  doorbell_write/doorbell ─> producer ─┐
//!                       consumer ──(!=)─┴─> AR: ring_base + (consumer & ring_mask) * 64,
//!                                             8 beats of 8 bytes
//!  R beats ─> [ beat register ] ─> cmd_valid/cmd_ready: cmd_data (words 2k, 2k+1), cmd_beat k,
//!             beat 0: seq = word 1         cmd_last, cmd_seq_gap, cmd_expect
//!             seq != expect: gap, seq_gaps + 1; expect <- seq + 1
//! ```
//!
//! The sequence rule is the emulated card's (`sim/src/card/serve.rs`): the first entry after a
//! reset must carry sequence number 0, each next one the previous one's plus one; an entry
//! that does not is passed on with `cmd_seq_gap` high and `cmd_expect` the number that was
//! expected (the command decoder answers it with an `Error` event, `SEQ_GAP`, detail
//! `cmd_expect`, instead of executing it), and the count restarts from its number. Decoding the
//! entry (kinds, reserved words) is the decoder's job, not this block's.
//!
//! Cycle behaviour: one burst in flight at a time. An Idle cycle with `consumer != producer`
//! computes the address; the next cycle drives AR; from the AR transfer the R channel is taken
//! through a one-beat register (`rready = !cmd_valid | cmd_ready`), so the command port's
//! back-pressure holds the R channel; the transfer of beat 7 advances `consumer` and returns to
//! Idle. With a memory whose first R beat comes L >= 1 cycles after the AR transfer, no stalls
//! and a ring kept full, an entry takes L + 9 cycles (measured by the test
//! `cycles_per_entry_match_the_documented_figures`). Indices are free-running 32-bit counters,
//! as the host's.
//!
//! Inputs: `clock`, `reset` (synchronous soft reset: indices, expected sequence number and
//! counters to 0; assert it only while no burst is in flight), `ring_base` (bus address of
//! entry 0, 64-byte aligned), `ring_mask` (entries - 1, entries a power of two),
//! `doorbell_write`, `doorbell` (the host's producer index), `cmd_ready`, and the AXI inputs.
//!
//! Outputs: `cmd_valid`, `cmd_data`, `cmd_beat`, `cmd_last`, `cmd_seq_gap`, `cmd_expect`,
//! `consumer` (entries fetched), `seq_gaps` (entries with an unexpected sequence number),
//! `dma_error` (sticky: a read beat answered other than OKAY), and the AXI outputs.
//! Golden model: [`CmdReaderModel`].

use crate::abi::ring::RING_ENTRY_WORDS;
use crate::front::axi::*;
use rust_hdl::prelude::*;

/// Reader state.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum ReadState {
    /// Waiting for `consumer != producer`.
    Idle,
    /// Driving AR.
    Addr,
    /// Taking R beats.
    Data,
}

/// An entry as the command port delivers it (the golden model's output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchedEntry {
    /// The 16 words.
    pub words: [u32; RING_ENTRY_WORDS],
    /// Its sequence number was not the expected one.
    pub seq_gap: bool,
    /// The expected sequence number.
    pub expect: u32,
}

/// Golden model of [`CmdReader`]: the order and content of the entries it delivers.
#[derive(Clone, Debug, Default)]
pub struct CmdReaderModel {
    /// Next expected sequence number.
    pub expect: u32,
    /// Entries with an unexpected sequence number.
    pub seq_gaps: u32,
    /// Entries fetched.
    pub consumer: u32,
}

impl CmdReaderModel {
    /// The entry the reader delivers for ring entry `words` (read at index `consumer`).
    pub fn fetch(&mut self, words: &[u32; RING_ENTRY_WORDS]) -> FetchedEntry {
        let seq = words[1];
        let out = FetchedEntry { words: *words, seq_gap: seq != self.expect, expect: self.expect };
        if out.seq_gap {
            self.seq_gaps = self.seq_gaps.wrapping_add(1);
        }
        self.expect = seq.wrapping_add(1);
        self.consumer = self.consumer.wrapping_add(1);
        out
    }
}

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct CmdReader {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous soft reset.
    pub reset: Signal<In, Bit>,
    /// Bus address of ring entry 0 (64-byte aligned).
    pub ring_base: Signal<In, Bits<64>>,
    /// Ring entries - 1.
    pub ring_mask: Signal<In, Bits<32>>,
    /// The host wrote the doorbell register this cycle.
    pub doorbell_write: Signal<In, Bit>,
    /// The doorbell value: the host's free-running producer index.
    pub doorbell: Signal<In, Bits<32>>,
    /// DMA read port.
    pub axi: AxiReadMaster,
    /// A command beat is on `cmd_data`.
    pub cmd_valid: Signal<Out, Bit>,
    /// The decoder takes the beat.
    pub cmd_ready: Signal<In, Bit>,
    /// Words `2k` (bits 31:0) and `2k + 1` (bits 63:32) of the entry, `k` = `cmd_beat`.
    pub cmd_data: Signal<Out, Bits<64>>,
    /// Beat index `k` (0..=7).
    pub cmd_beat: Signal<Out, Bits<3>>,
    /// Last beat of the entry.
    pub cmd_last: Signal<Out, Bit>,
    /// The entry's sequence number is not the expected one (held for all its beats).
    pub cmd_seq_gap: Signal<Out, Bit>,
    /// The expected sequence number (held for all its beats).
    pub cmd_expect: Signal<Out, Bits<32>>,
    /// Entries fetched (free-running consumer index).
    pub consumer: Signal<Out, Bits<32>>,
    /// Entries with an unexpected sequence number (wraps).
    pub seq_gaps: Signal<Out, Bits<32>>,
    /// Sticky: a read beat came back other than OKAY.
    pub dma_error: Signal<Out, Bit>,
    state: DFF<ReadState>,
    producer: DFF<Bits<32>>,
    cons: DFF<Bits<32>>,
    exp_seq: DFF<Bits<32>>,
    gaps: DFF<Bits<32>>,
    araddr: DFF<Bits<64>>,
    beat: DFF<Bits<3>>,
    o_valid: DFF<Bit>,
    o_data: DFF<Bits<64>>,
    o_beat: DFF<Bits<3>>,
    o_last: DFF<Bit>,
    o_gap: DFF<Bit>,
    o_expect: DFF<Bits<32>>,
    derr: DFF<Bit>,
    take: Signal<Local, Bit>,
    seq: Signal<Local, Bits<32>>,
    slot: Signal<Local, Bits<32>>,
}

impl Logic for CmdReader {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, producer, cons, exp_seq, gaps, araddr, beat, o_valid, o_data, o_beat, o_last,
            o_gap, o_expect, derr
        );
        // The beat register takes an R beat when it is empty or being emptied.
        self.axi.rready.next =
            (self.state.q.val() == ReadState::Data) & (!self.o_valid.q.val() | self.cmd_ready.val());
        self.take.next = self.axi.rready.val() & self.axi.rvalid.val();
        self.seq.next = self.axi.rdata.val().get_bits::<32>(32);
        self.slot.next = self.cons.q.val() & self.ring_mask.val();
        if self.cmd_ready.val() {
            self.o_valid.d.next = false;
        }
        if self.take.val() {
            self.o_valid.d.next = true;
            self.o_data.d.next = self.axi.rdata.val();
            self.o_beat.d.next = self.beat.q.val();
            self.o_last.d.next = self.beat.q.val() == 7;
            self.beat.d.next = self.beat.q.val() + 1;
            if self.beat.q.val() == 0 {
                self.o_gap.d.next = self.seq.val() != self.exp_seq.q.val();
                self.o_expect.d.next = self.exp_seq.q.val();
                self.exp_seq.d.next = self.seq.val() + 1;
                if self.seq.val() != self.exp_seq.q.val() {
                    self.gaps.d.next = self.gaps.q.val() + 1;
                }
            }
            if self.axi.rresp.val() != 0 {
                self.derr.d.next = true;
            }
            if self.beat.q.val() == 7 {
                self.cons.d.next = self.cons.q.val() + 1;
                self.state.d.next = ReadState::Idle;
            }
        }
        match self.state.q.val() {
            ReadState::Idle => {
                if self.cons.q.val() != self.producer.q.val() {
                    self.araddr.d.next = self.ring_base.val() + (bit_cast::<64, 32>(self.slot.val()) << 6);
                    self.state.d.next = ReadState::Addr;
                }
            }
            ReadState::Addr => {
                if self.axi.arready.val() {
                    self.beat.d.next = 0.into();
                    self.state.d.next = ReadState::Data;
                }
            }
            ReadState::Data => {}
        }
        if self.doorbell_write.val() {
            self.producer.d.next = self.doorbell.val();
        }
        self.axi.arvalid.next = self.state.q.val() == ReadState::Addr;
        self.axi.araddr.next = self.araddr.q.val();
        self.axi.arlen.next = 7.into();
        self.axi.arsize.next = 3.into();
        self.axi.arburst.next = 1.into();
        self.cmd_valid.next = self.o_valid.q.val();
        self.cmd_data.next = self.o_data.q.val();
        self.cmd_beat.next = self.o_beat.q.val();
        self.cmd_last.next = self.o_last.q.val();
        self.cmd_seq_gap.next = self.o_gap.q.val();
        self.cmd_expect.next = self.o_expect.q.val();
        self.consumer.next = self.cons.q.val();
        self.seq_gaps.next = self.gaps.q.val();
        self.dma_error.next = self.derr.q.val();
        if self.reset.val() {
            self.state.d.next = ReadState::Idle;
            self.producer.d.next = 0.into();
            self.cons.d.next = 0.into();
            self.exp_seq.d.next = 0.into();
            self.gaps.d.next = 0.into();
            self.o_valid.d.next = false;
            self.derr.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::Command;

    /// Consecutive numbers pass; a jump is flagged once, with the number that was expected,
    /// and counting restarts from the jumped-to number (as the emulated card does).
    #[test]
    fn model_flags_a_gap_once_and_resynchronises() {
        let mut m = CmdReaderModel::default();
        let seqs = [0u32, 1, 2, 9, 10, 10, u32::MAX, 0];
        let gaps: Vec<(bool, u32)> = seqs
            .iter()
            .map(|&s| {
                let e = m.fetch(&Command::Fence { token: s }.encode_words(s));
                (e.seq_gap, e.expect)
            })
            .collect();
        assert_eq!(
            gaps,
            [(false, 0), (false, 1), (false, 2), (true, 3), (false, 10), (true, 11), (true, 11), (false, 0)]
        );
        assert_eq!((m.seq_gaps, m.consumer, m.expect), (3, 8, 1));
    }
}
