//! Output FIFO of the scan core: bitmap words and scan-done markers on their way out.
//!
//! ```text
//!  write ─> [ LUT RAM, DEPTH entries ] ─> read (first-word fall-through)
//!           count ─> almost_full (stall the sequencer while the pipeline can still fill it)
//! ```
//!
//! First-word fall-through: `out_valid` is high whenever an entry is stored, and its fields are
//! on the outputs; it leaves when `out_ready` is high in that cycle. `almost_full` is high when
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
    pop: Signal<Local, Bit>,
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
            pop: Default::default(),
            threshold: Constant::new(((FIFO_DEPTH - FIFO_MARGIN) as u64).into()),
        }
    }
}

impl<const L: usize> Logic for OutFifo<L> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, wr, rd, n, af);
        clock!(self, clock, m_done, m_group, m_breach, m_at_risk);
        self.m_done.write_address.next = self.wr.q.val();
        self.m_group.write_address.next = self.wr.q.val();
        self.m_breach.write_address.next = self.wr.q.val();
        self.m_at_risk.write_address.next = self.wr.q.val();
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
        self.out_valid.next = self.n.q.val() != 0;
        self.out_done.next = self.m_done.read_data.val();
        self.out_group.next = self.m_group.read_data.val();
        self.out_breach.next = self.m_breach.read_data.val();
        self.out_at_risk.next = self.m_at_risk.read_data.val();
        self.pop.next = self.out_ready.val() & (self.n.q.val() != 0);
        if self.write.val() {
            self.wr.d.next = self.wr.q.val() + 1;
        }
        if self.pop.val() {
            self.rd.d.next = self.rd.q.val() + 1;
        }
        if self.write.val() & !self.pop.val() {
            self.n.d.next = self.n.q.val() + 1;
        }
        if !self.write.val() & self.pop.val() {
            self.n.d.next = self.n.q.val() - 1;
        }
        if self.reset.val() {
            self.wr.d.next = 0.into();
            self.rd.d.next = 0.into();
            self.n.d.next = 0.into();
        }
        self.af.d.next = self.n.q.val() >= self.threshold.val();
        self.almost_full.next = self.af.q.val();
        self.count.next = self.n.q.val();
    }
}
