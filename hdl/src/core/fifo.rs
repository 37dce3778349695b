//! Output FIFO of the scan core: bitmap words and scan-done markers on their way out.
//!
//! ```text
//!  write ─> [ LUT RAM, DEPTH entries ] ─> read (first-word fall-through)
//!           count ─> almost_full (stall the sequencer while the pipeline can still fill it)
//! ```
//!
//! First-word fall-through: `out_valid` is high whenever an entry is stored, and its fields are
//! on the outputs; it leaves when `out_ready` is high in that cycle. The head entry's fields and
//! `out_valid` come from registers, not from the LUT RAM's read: every entry is written to the
//! RAM one address below its index (entry `i` at `i - 1`), so the entry after the head is read
//! at the head's index (`rd`, a flop) and loaded into the head as the head leaves; an entry
//! written while the FIFO is empty, or while the head that leaves is the only entry, goes to
//! the head straight from the inputs. The consumer (the card's packer: its Take decode and its
//! shadow RAM's read address) sees flops (card run 34's top path was the group LUT RAM's read
//! into that address). No cycle moves: an entry written at an edge is at the head after it,
//! as before. `almost_full` is high when
//! fewer than [`FIFO_MARGIN`] entries were free in the previous cycle (it comes from a
//! register, so the compare on the count is not in front of the route to the sequencer's issue
//! logic: the critical path of the 8-lane runs 33 and 35); the sequencer stops issuing then,
//! and the entries still in the pipeline fit. Golden model: a `VecDeque` ([`FifoModel`]).
//!
//! Inputs: `clock`, `reset` (synchronous, empties the FIFO), `write` (store the fields this
//! cycle), `in_done`, `in_group`, `in_breach`, `in_at_risk`, `out_ready`.
//!
//! Outputs: `out_valid`, `out_done`, `out_group`, `out_breach`, `out_at_risk`, `almost_full`,
//! `count`.

use crate::abi::config::GROUP_BITS;
use crate::core::ram::LutRam;
use rust_hdl::prelude::*;

/// log2 of the FIFO depth.
pub const FIFO_BITS: usize = 5;
/// Entries.
pub const FIFO_DEPTH: usize = 1 << FIFO_BITS;
/// Free entries below which `almost_full` is raised: at least the scan pipeline's depth plus
/// the done marker plus two cycles of reaction (the registered flag, the issue decision).
pub const FIFO_MARGIN: usize = 19;
const _: () = assert!(FIFO_MARGIN as u64 >= crate::golden::throughput::PIPELINE_DEPTH + 3);

/// Golden model of [`OutFifo`]: entries are (done, group, breach, at_risk).
pub type FifoModel = std::collections::VecDeque<(bool, u32, u32, u32)>;

/// See the module docs.
#[derive(LogicBlock)]
pub struct OutFifo<const L: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// Store the input fields.
    pub write: Signal<In, Bit>,
    /// Entry is a scan-done marker.
    pub in_done: Signal<In, Bit>,
    /// Group index.
    pub in_group: Signal<In, Bits<GROUP_BITS>>,
    /// Breach bits.
    pub in_breach: Signal<In, Bits<L>>,
    /// At-risk bits.
    pub in_at_risk: Signal<In, Bits<L>>,
    /// The consumer takes the head entry.
    pub out_ready: Signal<In, Bit>,
    /// An entry is at the head.
    pub out_valid: Signal<Out, Bit>,
    /// Head: done marker.
    pub out_done: Signal<Out, Bit>,
    /// Head: group.
    pub out_group: Signal<Out, Bits<GROUP_BITS>>,
    /// Head: breach bits.
    pub out_breach: Signal<Out, Bits<L>>,
    /// Head: at-risk bits.
    pub out_at_risk: Signal<Out, Bits<L>>,
    /// Fewer than [`FIFO_MARGIN`] entries free.
    pub almost_full: Signal<Out, Bit>,
    /// Entries stored.
    pub count: Signal<Out, Bits<6>>,
    m_done: LutRam<Bit, FIFO_BITS>,
    m_group: LutRam<Bits<GROUP_BITS>, FIFO_BITS>,
    m_breach: LutRam<Bits<L>, FIFO_BITS>,
    m_at_risk: LutRam<Bits<L>, FIFO_BITS>,
    wr: DFF<Bits<FIFO_BITS>>,
    rd: DFF<Bits<FIFO_BITS>>,
    n: DFF<Bits<6>>,
    af: DFF<Bit>,
    // The head entry (valid while `ne`).
    h_done: DFF<Bit>,
    h_group: DFF<Bits<GROUP_BITS>>,
    h_breach: DFF<Bits<L>>,
    h_at_risk: DFF<Bits<L>>,
    // `n != 0` and `n == 1`, registered from the values `n` takes at the edge.
    ne: DFF<Bit>,
    one: DFF<Bit>,
    pop: Signal<Local, Bit>,
    // The entry after the head is the one being written (the head is the only entry, or the
    // FIFO is empty): the head loads from the inputs, not from the RAM.
    bypass: Signal<Local, Bit>,
    threshold: Constant<Bits<6>>,
}

impl<const L: usize> Default for OutFifo<L> {
    fn default() -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            write: Default::default(),
            in_done: Default::default(),
            in_group: Default::default(),
            in_breach: Default::default(),
            in_at_risk: Default::default(),
            out_ready: Default::default(),
            out_valid: Default::default(),
            out_done: Default::default(),
            out_group: Default::default(),
            out_breach: Default::default(),
            out_at_risk: Default::default(),
            almost_full: Default::default(),
            count: Default::default(),
            m_done: Default::default(),
            m_group: Default::default(),
            m_breach: Default::default(),
            m_at_risk: Default::default(),
            wr: Default::default(),
            rd: Default::default(),
            n: Default::default(),
            af: Default::default(),
            h_done: Default::default(),
            h_group: Default::default(),
            h_breach: Default::default(),
            h_at_risk: Default::default(),
            ne: Default::default(),
            one: Default::default(),
            pop: Default::default(),
            bypass: Default::default(),
            threshold: Constant::new(((FIFO_DEPTH - FIFO_MARGIN) as u64).into()),
        }
    }
}

impl<const L: usize> Logic for OutFifo<L> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, wr, rd, n, af, h_done, h_group, h_breach, h_at_risk, ne, one);
        clock!(self, clock, m_done, m_group, m_breach, m_at_risk);
        // Entry `wr` at address `wr - 1`, so the entry after the head (`rd + 1`) is at `rd`.
        self.m_done.write_address.next = self.wr.q.val() - 1;
        self.m_group.write_address.next = self.wr.q.val() - 1;
        self.m_breach.write_address.next = self.wr.q.val() - 1;
        self.m_at_risk.write_address.next = self.wr.q.val() - 1;
        self.m_done.write_data.next = self.in_done.val();
        self.m_group.write_data.next = self.in_group.val();
        self.m_breach.write_data.next = self.in_breach.val();
        self.m_at_risk.write_data.next = self.in_at_risk.val();
        self.m_done.write_enable.next = self.write.val();
        self.m_group.write_enable.next = self.write.val();
        self.m_breach.write_enable.next = self.write.val();
        self.m_at_risk.write_enable.next = self.write.val();
        self.m_done.read_address.next = self.rd.q.val();
        self.m_group.read_address.next = self.rd.q.val();
        self.m_breach.read_address.next = self.rd.q.val();
        self.m_at_risk.read_address.next = self.rd.q.val();
        self.out_valid.next = self.ne.q.val();
        self.out_done.next = self.h_done.q.val();
        self.out_group.next = self.h_group.q.val();
        self.out_breach.next = self.h_breach.q.val();
        self.out_at_risk.next = self.h_at_risk.q.val();
        self.pop.next = self.out_ready.val() & self.ne.q.val();
        // The head's next value: the entry after it as it leaves, the written entry when the
        // FIFO is empty (with no write it stays invalid, whatever it holds).
        self.bypass.next = !self.ne.q.val() | self.one.q.val();
        if !self.ne.q.val() | self.pop.val() {
            if self.bypass.val() {
                self.h_done.d.next = self.in_done.val();
                self.h_group.d.next = self.in_group.val();
                self.h_breach.d.next = self.in_breach.val();
                self.h_at_risk.d.next = self.in_at_risk.val();
            } else {
                self.h_done.d.next = self.m_done.read_data.val();
                self.h_group.d.next = self.m_group.read_data.val();
                self.h_breach.d.next = self.m_breach.read_data.val();
                self.h_at_risk.d.next = self.m_at_risk.read_data.val();
            }
        }
        if self.write.val() {
            self.wr.d.next = self.wr.q.val() + 1;
        }
        if self.pop.val() {
            self.rd.d.next = self.rd.q.val() + 1;
        }
        // `n` and its flags: a write and a pop together leave them.
        if self.write.val() & !self.pop.val() {
            self.n.d.next = self.n.q.val() + 1;
            self.ne.d.next = true;
            self.one.d.next = !self.ne.q.val();
        }
        if !self.write.val() & self.pop.val() {
            self.n.d.next = self.n.q.val() - 1;
            self.ne.d.next = !self.one.q.val();
            self.one.d.next = self.n.q.val() == 2;
        }
        if self.reset.val() {
            self.wr.d.next = 0.into();
            self.rd.d.next = 0.into();
            self.n.d.next = 0.into();
            self.ne.d.next = false;
            self.one.d.next = false;
        }
        self.af.d.next = self.n.q.val() >= self.threshold.val();
        self.almost_full.next = self.af.q.val();
        self.count.next = self.n.q.val();
    }
}
