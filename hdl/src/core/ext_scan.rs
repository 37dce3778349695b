//! External-memory scan: a full scan of a book that lives in DRAM behind `CH` memory channels,
//! streamed through the core's MAC lanes.
//!
//! ```text
//!  channel c: MemReader (native port, bursts, block RAM prefetch buffer) ─┐   (x CH)
//!                                                                       ├─ step: one word from every channel
//!  sequencer (phase, slot, group) ── fire when every buffer has a word ───┘   and the output FIFO has room
//!     │ per lane l: the K-term word of its channel, its term, when the phase is the lane's
//!     v
//!  term register ─> price table[l] (512 x spot, 512 x stressed; address = asset*2 + sign)
//!     ─> MAC lane[l] (mac_lane.rs, the core's) ─> sticky verdict bits ─> bitmap word
//!  group's last step ── delay line (the lane path's depth) ─> word into the output FIFO
//!  output FIFO (fifo.rs) ─> out port (+ account offset counter)
//! ```
//!
//! **Layout in external memory** ([`crate::extmem::Layout`], the one definition): a term word is
//! 64 bits, bits 30:0 the coefficient's magnitude, bit 31 its sign, bits 39:32 the asset, the
//! rest zero. Accounts are in groups of `LANES` (lane `l` holds account `16 g + l`, as in the
//! core); every group has the same `slots` term words per account (an account with fewer terms
//! has zero words). The book is a stream of *rows*, row `(g, s)` the term words of slot `s` of
//! group `g` for lanes `0..LANES`, rows in order `g`, then `s`. A memory word carries `K` term
//! words (`W = 64 K` bits) and the stream's word `j` lives in channel `j % CH` at address
//! `base + j / CH`. So a channel's burst of 8 words is consecutive term words of a group for
//! `8 K` lanes, and one step (a word from every channel) is `K * CH` lanes of one row; a row
//! takes `LANES / (K * CH)` steps (the *phases*).
//!
//! The lanes are the core's (`MacLane`, golden model [`crate::golden::lane_health_negative`]);
//! each lane takes a term in the steps of its phase only (its `valid` is low otherwise), so a
//! lane's account accumulates over `slots` of its phase's steps. Every lane of the last phase
//! gets a group's last term in the group's last step and all lanes have the same depth, so the
//! group's verdicts are all in when a delay line from that step ends: the word is written then.
//!
//! With one 64-bit DDR3 channel (`K = 1`, `CH = 1`) a row takes 16 steps: the lanes wait for
//! the memory. With `K * CH = LANES` (e.g. an HBM card's wide pseudo-channels) a row is one
//! step and the scan runs at the core's rate, a term per lane per cycle.
//!
//! **Incremental scan** (`inc` with `start`): only the groups the host lists are read and
//! scanned. `groups` is then the number of listed groups `E`, and the host gives them on
//! `xg_valid`/`xg_group`/`xg_ready` (any order; the host's exposure index of the ticked asset,
//! ascending): each one is written into a group queue (`2^`[`GQ_BITS`] entries of LUT RAM) as
//! its word address in the channels (`base + (group * slots) << log2(phases)`, every channel
//! the same) and its number. A distributor hands the queue's next address to every reader at
//! once as a segment of `slots * phases` words (`MemReader`'s segment port) when all of them
//! have room for one; the lane sequencer runs `E` groups as a full scan runs `groups`; the
//! output takes each word's offset from the queue (`16 * group`) and frees the entry when the
//! word leaves. So the words out are those of the listed groups, in their order, each the
//! full scan's word of that group. The queue bounds the groups between the host port and the
//! output port (a full queue holds the host port, never a word).
//!
//! Cycle model: [`crate::extmem::StreamModel`] steps the same registers (checked cycle for
//! cycle against this block in `tests/ext_scan.rs`).
//!
//! Inputs: `clock`, `reset`; `start` (a pulse, while idle), `inc`, `base`, `groups`, `slots`
//! (1..=16) (`base` and `slots` held during the scan); `xg_valid`, `xg_group`; the price
//! write port `price_we`, `price_addr` (asset*2 + sign), `price_spot`,
//! `price_stressed`; per channel the native port's `cmd_ready`, `rdata_valid`, `rdata_data`;
//! `out_ready`.
//!
//! Outputs: per channel `cmd_valid`, `cmd_we`, `cmd_addr`, `rdata_ready`; `out_valid`,
//! `out_done`, `out_offset` (the first account of the word), `out_breach`, `out_at_risk`;
//! `busy`; `xg_ready`.

use crate::abi::config::LANES;
use crate::core::fifo::OutFifo;
use crate::core::mac_lane::MacLane;
use crate::core::mem_reader::MemReader;
use crate::core::packer::BitmapPacker;
use crate::core::ram::{LutRam, SyncRam};
use rust_hdl::prelude::*;

/// Cycles from a step to its terms' verdicts at the lanes' outputs: the term register (1), the
/// price table's read (1), the MAC lane (10).
pub const LANE_PATH: usize = 12;

/// log2 of the incremental scan's group queue entries.
pub const GQ_BITS: usize = 6;
// The kernel slices the queue pointers and shifts by log2(LANES) as literals.
const _: () = assert!(GQ_BITS == 6 && LANES == 16);
const _: () = assert!(1 << GQ_BITS == crate::extmem::consts::GROUP_QUEUE as usize);

// States (named XS_*: the core's ST_* names are declared with other values in its Verilog).
const XS_IDLE: u64 = 0;
const XS_RUN: u64 = 1;
const XS_DRAIN: u64 = 2;
// The kernel indexes the delay line's last stage as a literal.
const _: () = assert!(LANE_PATH == 12);

/// See the module docs. `CH` channels of `W = 64 K` bits, buffers of `2^FB` words.
#[derive(LogicBlock)]
pub struct ExtScan<const CH: usize, const K: usize, const W: usize, const FB: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// Start a scan (while idle).
    pub start: Signal<In, Bit>,
    /// With `start`: an incremental scan of the groups given on `xg_*` (`groups` of them).
    pub inc: Signal<In, Bit>,
    /// Incremental scan: a group is offered.
    pub xg_valid: Signal<In, Bit>,
    /// Incremental scan: the group's number.
    pub xg_group: Signal<In, Bits<32>>,
    /// Incremental scan: the block takes the group offered.
    pub xg_ready: Signal<Out, Bit>,
    /// The book's first word address in every channel.
    pub base: Signal<In, Bits<32>>,
    /// Groups of `LANES` accounts in the book.
    pub groups: Signal<In, Bits<32>>,
    /// Term words per account (1..=16).
    pub slots: Signal<In, Bits<5>>,
    /// Write a price (every lane's table).
    pub price_we: Signal<In, Bit>,
    /// Price table address: asset*2 + sign.
    pub price_addr: Signal<In, Bits<9>>,
    /// Spot price.
    pub price_spot: Signal<In, Bits<32>>,
    /// Stressed price.
    pub price_stressed: Signal<In, Bits<32>>,
    /// Native port, per channel: command offered.
    pub cmd_valid: [Signal<Out, Bit>; CH],
    /// Native port, per channel: command taken.
    pub cmd_ready: [Signal<In, Bit>; CH],
    /// Native port, per channel: write (never).
    pub cmd_we: [Signal<Out, Bit>; CH],
    /// Native port, per channel: word address.
    pub cmd_addr: [Signal<Out, Bits<32>>; CH],
    /// Native port, per channel: data returned.
    pub rdata_valid: [Signal<In, Bit>; CH],
    /// Native port, per channel: data taken.
    pub rdata_ready: [Signal<Out, Bit>; CH],
    /// Native port, per channel: data word.
    pub rdata_data: [Signal<In, Bits<W>>; CH],
    /// An output entry is at the head.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it.
    pub out_ready: Signal<In, Bit>,
    /// Head: the scan's done marker.
    pub out_done: Signal<Out, Bit>,
    /// Head: first account of the word.
    pub out_offset: Signal<Out, Bits<32>>,
    /// Head: breach bits (bit `l`: account `out_offset + l`).
    pub out_breach: Signal<Out, Bits<LANES>>,
    /// Head: at-risk bits.
    pub out_at_risk: Signal<Out, Bits<LANES>>,
    /// A scan is under way.
    pub busy: Signal<Out, Bit>,
    rd: [MemReader<W, FB>; CH],
    lanes: [MacLane; LANES],
    p_spot: [SyncRam<Bits<32>, 9>; LANES],
    p_stress: [SyncRam<Bits<32>, 9>; LANES],
    // Per lane: the term taken in a step (ctl = {last, first, valid}), then its copy beside the
    // price read.
    t_ctl: [DFF<Bits<3>>; LANES],
    t_neg: [DFF<Bit>; LANES],
    t_mag: [DFF<Bits<32>>; LANES],
    t_paddr: [DFF<Bits<9>>; LANES],
    u_ctl: [DFF<Bits<3>>; LANES],
    u_neg: [DFF<Bit>; LANES],
    u_mag: [DFF<Bits<32>>; LANES],
    // Per lane, which term word of the step (one-hot, `c * K + k`: channel c, term k of its
    // word) and which phase feed it: constants, so synthesis folds the selection into wires.
    split: WordSplit<CH, K, W>,
    sel: [Constant<Bits<LANES>>; LANES],
    lane_ph: [Constant<Bits<8>>; LANES],
    ph_last: Constant<Bits<8>>,
    ph_bits: Constant<Bits<5>>,
    drain_init: Constant<Bits<5>>,
    lanes_c: Constant<Bits<32>>,
    // Verdicts of the group so far, then the packed word.
    v_b: [DFF<Bit>; LANES],
    v_r: [DFF<Bit>; LANES],
    pack_b: BitmapPacker<LANES>,
    pack_r: BitmapPacker<LANES>,
    gdone: [DFF<Bit>; LANE_PATH],
    fifo: OutFifo<LANES>,
    offset: DFF<Bits<32>>,
    // Sequencer.
    state: DFF<Bits<2>>,
    ph: DFF<Bits<8>>,
    s: DFF<Bits<5>>,
    g: DFF<Bits<32>>,
    g_last: DFF<Bits<32>>,
    s_last: DFF<Bits<5>>,
    drain: DFF<Bits<5>>,
    // Words per channel, groups * slots << ph_bits, by shift and add over 5 cycles.
    m_n: DFF<Bits<3>>,
    m_g: DFF<Bits<32>>,
    m_s: DFF<Bits<5>>,
    m_acc: DFF<Bits<32>>,
    // Incremental scan: the group queue (word address for the readers, number for the output),
    // its pointers (write, to the readers, to the output; GQ_BITS + 1 bits), groups taken.
    incm: DFF<Bit>,
    x_sl: DFF<Bits<5>>,
    x_e: DFF<Bits<32>>,
    xn: DFF<Bits<32>>,
    wq: DFF<Bits<7>>,
    rq: DFF<Bits<7>>,
    oq: DFF<Bits<7>>,
    q_addr: LutRam<Bits<32>, GQ_BITS>,
    q_grp: LutRam<Bits<32>, GQ_BITS>,
    x_pp: [Signal<Local, Bits<32>>; 5],
    x_take: Signal<Local, Bit>,
    seg_go: Signal<Local, Bit>,
    gq_depth: Constant<Bits<7>>,
    lane_bits: Constant<Bits<5>>,
    fire: Signal<Local, Bit>,
    row_end: Signal<Local, Bit>,
    grp_end: Signal<Local, Bit>,
}

impl<const CH: usize, const K: usize, const W: usize, const FB: usize> Default for ExtScan<CH, K, W, FB> {
    fn default() -> Self {
        assert!(W == 64 * K, "a memory word is K term words of 64 bits");
        assert!(CH.is_power_of_two() && K.is_power_of_two() && CH * K <= LANES && CH <= 16);
        let ph = LANES / (K * CH);
        Self {
            clock: Default::default(),
            reset: Default::default(),
            start: Default::default(),
            inc: Default::default(),
            xg_valid: Default::default(),
            xg_group: Default::default(),
            xg_ready: Default::default(),
            base: Default::default(),
            groups: Default::default(),
            slots: Default::default(),
            price_we: Default::default(),
            price_addr: Default::default(),
            price_spot: Default::default(),
            price_stressed: Default::default(),
            cmd_valid: std::array::from_fn(|_| Default::default()),
            cmd_ready: std::array::from_fn(|_| Default::default()),
            cmd_we: std::array::from_fn(|_| Default::default()),
            cmd_addr: std::array::from_fn(|_| Default::default()),
            rdata_valid: std::array::from_fn(|_| Default::default()),
            rdata_ready: std::array::from_fn(|_| Default::default()),
            rdata_data: std::array::from_fn(|_| Default::default()),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_done: Default::default(),
            out_offset: Default::default(),
            out_breach: Default::default(),
            out_at_risk: Default::default(),
            busy: Default::default(),
            rd: std::array::from_fn(|_| Default::default()),
            lanes: std::array::from_fn(|_| Default::default()),
            p_spot: std::array::from_fn(|_| Default::default()),
            p_stress: std::array::from_fn(|_| Default::default()),
            t_ctl: std::array::from_fn(|_| Default::default()),
            t_neg: std::array::from_fn(|_| Default::default()),
            t_mag: std::array::from_fn(|_| Default::default()),
            t_paddr: std::array::from_fn(|_| Default::default()),
            u_ctl: std::array::from_fn(|_| Default::default()),
            u_neg: std::array::from_fn(|_| Default::default()),
            u_mag: std::array::from_fn(|_| Default::default()),
            split: Default::default(),
            sel: std::array::from_fn(|l| Constant::new((1u64 << ((l / K) % CH * K + l % K)).into())),
            lane_ph: std::array::from_fn(|l| Constant::new((((l / K) / CH) as u64).into())),
            ph_last: Constant::new((ph as u64 - 1).into()),
            ph_bits: Constant::new((ph.trailing_zeros() as u64).into()),
            drain_init: Constant::new((LANE_PATH as u64).into()),
            lanes_c: Constant::new((LANES as u64).into()),
            v_b: std::array::from_fn(|_| Default::default()),
            v_r: std::array::from_fn(|_| Default::default()),
            pack_b: Default::default(),
            pack_r: Default::default(),
            gdone: std::array::from_fn(|_| Default::default()),
            fifo: Default::default(),
            offset: Default::default(),
            state: Default::default(),
            ph: Default::default(),
            s: Default::default(),
            g: Default::default(),
            g_last: Default::default(),
            s_last: Default::default(),
            drain: Default::default(),
            m_n: Default::default(),
            m_g: Default::default(),
            m_s: Default::default(),
            m_acc: Default::default(),
            incm: Default::default(),
            x_sl: Default::default(),
            x_e: Default::default(),
            xn: Default::default(),
            wq: Default::default(),
            rq: Default::default(),
            oq: Default::default(),
            q_addr: Default::default(),
            q_grp: Default::default(),
            x_pp: std::array::from_fn(|_| Default::default()),
            x_take: Default::default(),
            seg_go: Default::default(),
            gq_depth: Constant::new((1u64 << GQ_BITS).into()),
            lane_bits: Constant::new((LANES.trailing_zeros() as u64).into()),
            fire: Default::default(),
            row_end: Default::default(),
            grp_end: Default::default(),
        }
    }
}

impl<const CH: usize, const K: usize, const W: usize, const FB: usize> Logic for ExtScan<CH, K, W, FB> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, offset, state, ph, s, g, g_last, s_last, drain, m_n, m_g, m_s, m_acc, incm, x_sl,
            x_e, xn, wq, rq, oq
        );
        clock!(self, clock, fifo, q_addr, q_grp);
        // ---- Channels: readers on the native ports; a step pops every buffer at once. ----
        // `fire`: every channel has a word, the scan runs, the output FIFO has room.
        self.fire.next = (self.state.q.val() == XS_RUN) & !self.fifo.almost_full.val();
        for c in 0..CH {
            self.rd[c].clock.next = self.clock.val();
            self.rd[c].reset.next = self.reset.val();
            self.rd[c].start.next = self.m_n.q.val() == 1;
            self.rd[c].base.next = self.base.val();
            self.rd[c].beats.next = self.m_acc.q.val() << self.ph_bits.val();
            if self.incm.q.val() {
                self.rd[c].beats.next = 0.into();
            }
            self.cmd_valid[c].next = self.rd[c].cmd_valid.val();
            self.cmd_we[c].next = self.rd[c].cmd_we.val();
            self.cmd_addr[c].next = self.rd[c].cmd_addr.val();
            self.rd[c].cmd_ready.next = self.cmd_ready[c].val();
            self.rd[c].rdata_valid.next = self.rdata_valid[c].val();
            self.rd[c].rdata_data.next = self.rdata_data[c].val();
            self.split.words[c].next = self.rd[c].out_data.val();
            self.rdata_ready[c].next = self.rd[c].rdata_ready.val();
            if !self.rd[c].out_valid.val() {
                self.fire.next = false;
            }
        }
        for c in 0..CH {
            self.rd[c].out_ready.next = self.fire.val();
        }
        // ---- Incremental scan: the group queue. ----
        // Take a group while fewer than `groups` were taken and the queue has room.
        self.xg_ready.next = (self.state.q.val() == XS_RUN)
            & self.incm.q.val()
            & (self.xn.q.val() != self.x_e.q.val())
            & ((self.wq.q.val() - self.oq.q.val()) < self.gq_depth.val());
        self.x_take.next = self.xg_valid.val() & self.xg_ready.val();
        // Its word address: base + (group * slots) << log2(phases), slots by shift and add.
        for i in 0..5 {
            self.x_pp[i].next = 0.into();
        }
        if self.x_sl.q.val().get_bit(0) {
            self.x_pp[0].next = self.xg_group.val();
        }
        if self.x_sl.q.val().get_bit(1) {
            self.x_pp[1].next = self.xg_group.val() << 1;
        }
        if self.x_sl.q.val().get_bit(2) {
            self.x_pp[2].next = self.xg_group.val() << 2;
        }
        if self.x_sl.q.val().get_bit(3) {
            self.x_pp[3].next = self.xg_group.val() << 3;
        }
        if self.x_sl.q.val().get_bit(4) {
            self.x_pp[4].next = self.xg_group.val() << 4;
        }
        self.q_addr.write_enable.next = self.x_take.val();
        self.q_addr.write_address.next = self.wq.q.val().get_bits::<6>(0);
        self.q_addr.write_data.next = self.base.val()
            + ((self.x_pp[0].val()
                + self.x_pp[1].val()
                + self.x_pp[2].val()
                + self.x_pp[3].val()
                + self.x_pp[4].val())
                << self.ph_bits.val());
        self.q_grp.write_enable.next = self.x_take.val();
        self.q_grp.write_address.next = self.wq.q.val().get_bits::<6>(0);
        self.q_grp.write_data.next = self.xg_group.val();
        if self.x_take.val() {
            self.wq.d.next = self.wq.q.val() + 1;
            self.xn.d.next = self.xn.q.val() + 1;
        }
        // The next queued group to every reader at once, when all have room for a segment
        // (after the readers' start).
        self.q_addr.read_address.next = self.rq.q.val().get_bits::<6>(0);
        self.seg_go.next = (self.state.q.val() == XS_RUN)
            & self.incm.q.val()
            & (self.m_n.q.val() == 0)
            & (self.rq.q.val() != self.wq.q.val());
        for c in 0..CH {
            if !self.rd[c].seg_ready.val() {
                self.seg_go.next = false;
            }
        }
        for c in 0..CH {
            self.rd[c].seg_valid.next = self.seg_go.val();
            self.rd[c].seg_addr.next = self.q_addr.read_data.val();
            self.rd[c].seg_beats.next = bit_cast::<32, 5>(self.x_sl.q.val()) << self.ph_bits.val();
        }
        if self.seg_go.val() {
            self.rq.d.next = self.rq.q.val() + 1;
        }
        // ---- Sequencer: phase, slot, group. ----
        self.row_end.next = self.ph.q.val() == self.ph_last.val();
        self.grp_end.next = self.row_end.val() & (self.s.q.val() == self.s_last.q.val());
        if self.fire.val() {
            self.ph.d.next = self.ph.q.val() + 1;
            if self.row_end.val() {
                self.ph.d.next = 0.into();
                self.s.d.next = self.s.q.val() + 1;
                if self.grp_end.val() {
                    self.s.d.next = 0.into();
                    self.g.d.next = self.g.q.val() + 1;
                    if self.g.q.val() == self.g_last.q.val() {
                        self.state.d.next = XS_DRAIN.into();
                        self.drain.d.next = self.drain_init.val();
                    }
                }
            }
        }
        // Words per channel: groups * slots by shift and add (m_n counts 6 down to 1; the
        // readers start when it is 1).
        if self.m_n.q.val() != 0 {
            self.m_n.d.next = self.m_n.q.val() - 1;
            self.m_g.d.next = self.m_g.q.val() << 1;
            self.m_s.d.next = self.m_s.q.val() >> 1;
            if self.m_s.q.val().get_bit(0) {
                self.m_acc.d.next = self.m_acc.q.val() + self.m_g.q.val();
            }
        }
        self.fifo.write.next = false;
        self.fifo.in_done.next = false;
        if self.state.q.val() == XS_DRAIN {
            self.drain.d.next = self.drain.q.val() - 1;
            if self.drain.q.val() == 0 {
                self.fifo.write.next = true;
                self.fifo.in_done.next = true;
                self.state.d.next = XS_IDLE.into();
            }
        }
        if (self.state.q.val() == XS_IDLE) & self.start.val() {
            self.state.d.next = XS_RUN.into();
            self.ph.d.next = 0.into();
            self.s.d.next = 0.into();
            self.g.d.next = 0.into();
            self.g_last.d.next = self.groups.val() - 1;
            self.s_last.d.next = self.slots.val() - 1;
            self.m_n.d.next = 6.into();
            self.m_g.d.next = self.groups.val();
            self.m_s.d.next = self.slots.val();
            self.m_acc.d.next = 0.into();
            self.incm.d.next = self.inc.val();
            self.x_sl.d.next = self.slots.val();
            self.x_e.d.next = self.groups.val();
            self.xn.d.next = 0.into();
            self.wq.d.next = 0.into();
            self.rq.d.next = 0.into();
            self.oq.d.next = 0.into();
            if self.groups.val() == 0 {
                self.state.d.next = XS_DRAIN.into();
                self.drain.d.next = 0.into();
            }
        }
        self.busy.next = self.state.q.val() != XS_IDLE;
        // ---- Lanes: term register, price read, MAC. ----
        for l in 0..LANES {
            self.lanes[l].clock.next = self.clock.val();
            self.p_spot[l].clock.next = self.clock.val();
            self.p_stress[l].clock.next = self.clock.val();
            self.t_ctl[l].clock.next = self.clock.val();
            self.t_neg[l].clock.next = self.clock.val();
            self.t_mag[l].clock.next = self.clock.val();
            self.t_paddr[l].clock.next = self.clock.val();
            self.u_ctl[l].clock.next = self.clock.val();
            self.u_neg[l].clock.next = self.clock.val();
            self.u_mag[l].clock.next = self.clock.val();
            self.v_b[l].clock.next = self.clock.val();
            self.v_r[l].clock.next = self.clock.val();
            // Price writes go to every lane's copy.
            self.p_spot[l].write_enable.next = self.price_we.val();
            self.p_spot[l].write_address.next = self.price_addr.val();
            self.p_spot[l].write_data.next = self.price_spot.val();
            self.p_stress[l].write_enable.next = self.price_we.val();
            self.p_stress[l].write_address.next = self.price_addr.val();
            self.p_stress[l].write_data.next = self.price_stressed.val();
            // The lane's term word: from its channel's head word, its K-slice.
            self.t_neg[l].d.next = false;
            self.t_mag[l].d.next = 0.into();
            self.t_paddr[l].d.next = 0.into();
            for j in 0..LANES {
                if self.sel[l].val().get_bit(j) {
                    self.t_neg[l].d.next = self.split.neg[j].val();
                    self.t_mag[l].d.next = self.split.mag[j].val();
                    self.t_paddr[l].d.next = self.split.paddr[j].val();
                }
            }
            self.t_ctl[l].d.next = 0.into();
            if self.fire.val() & (self.ph.q.val() == self.lane_ph[l].val()) {
                self.t_ctl[l].d.next = bit_cast::<3, 1>(self.fire.val().into())
                    | (bit_cast::<3, 1>((self.s.q.val() == 0).into()) << 1)
                    | (bit_cast::<3, 1>((self.s.q.val() == self.s_last.q.val()).into()) << 2);
            }
            self.p_spot[l].read_address.next = self.t_paddr[l].q.val();
            self.p_stress[l].read_address.next = self.t_paddr[l].q.val();
            self.u_ctl[l].d.next = self.t_ctl[l].q.val();
            self.u_neg[l].d.next = self.t_neg[l].q.val();
            self.u_mag[l].d.next = self.t_mag[l].q.val();
            self.lanes[l].valid.next = self.u_ctl[l].q.val().get_bit(0);
            self.lanes[l].first.next = self.u_ctl[l].q.val().get_bit(1);
            self.lanes[l].last.next = self.u_ctl[l].q.val().get_bit(2);
            self.lanes[l].neg.next = self.u_neg[l].q.val();
            self.lanes[l].mag.next = self.u_mag[l].q.val();
            self.lanes[l].spot.next = self.p_spot[l].read_data.val();
            self.lanes[l].stressed.next = self.p_stress[l].read_data.val();
            // Verdicts: kept until the group's word is written.
            self.pack_b.bits[l].next =
                self.v_b[l].q.val() | (self.lanes[l].out_valid.val() & self.lanes[l].breach.val());
            self.pack_r.bits[l].next =
                self.v_r[l].q.val() | (self.lanes[l].out_valid.val() & self.lanes[l].at_risk.val());
            self.v_b[l].d.next = self.pack_b.bits[l].val();
            self.v_r[l].d.next = self.pack_r.bits[l].val();
            if self.gdone[11].q.val() {
                self.v_b[l].d.next = false;
                self.v_r[l].d.next = false;
            }
        }
        // The group's last step, delayed by the lane path: its word is complete then.
        for i in 0..LANE_PATH {
            self.gdone[i].clock.next = self.clock.val();
        }
        self.gdone[0].d.next = self.fire.val() & self.grp_end.val();
        for i in 1..LANE_PATH {
            self.gdone[i].d.next = self.gdone[i - 1].q.val();
        }
        if self.gdone[11].q.val() {
            self.fifo.write.next = true;
        }
        self.fifo.reset.next = self.reset.val();
        self.fifo.in_group.next = 0.into();
        self.fifo.in_breach.next = self.pack_b.word.val();
        self.fifo.in_at_risk.next = self.pack_r.word.val();
        // ---- Output: the FIFO's head, with the account offset of the words taken so far. ----
        self.out_valid.next = self.fifo.out_valid.val();
        self.out_done.next = self.fifo.out_done.val();
        self.out_breach.next = self.fifo.out_breach.val();
        self.out_at_risk.next = self.fifo.out_at_risk.val();
        self.out_offset.next = self.offset.q.val();
        // Incremental: the offset of the queue's oldest group, freed when its word leaves.
        self.q_grp.read_address.next = self.oq.q.val().get_bits::<6>(0);
        if self.incm.q.val() {
            self.out_offset.next = self.q_grp.read_data.val() << self.lane_bits.val();
        }
        self.fifo.out_ready.next = self.out_ready.val();
        if self.out_ready.val() & self.fifo.out_valid.val() {
            self.offset.d.next = self.offset.q.val() + self.lanes_c.val();
            if self.fifo.out_done.val() {
                self.offset.d.next = 0.into();
            } else {
                self.oq.d.next = self.oq.q.val() + 1;
            }
        }
        if self.reset.val() {
            self.state.d.next = XS_IDLE.into();
            self.offset.d.next = 0.into();
            self.m_n.d.next = 0.into();
            self.incm.d.next = false;
        }
    }
}

/// The block's Verilog (top module `top`), with its state names declared.
pub fn generate<const CH: usize, const K: usize, const W: usize, const FB: usize>() -> String {
    let mut uut = ExtScan::<CH, K, W, FB>::default();
    uut.connect_all();
    let v = crate::core::verilog::generate_block(&uut);
    let decls = format!(
        "\n    localparam [1:0] XS_IDLE = 2'd{XS_IDLE};\n    localparam [1:0] XS_RUN = 2'd{XS_RUN};\n    localparam [1:0] XS_DRAIN = 2'd{XS_DRAIN};\n"
    );
    // The states are used in `top` only: declare them after its port list.
    let top = v.find("module top(").expect("a top module");
    let end = top + v[top..].find(");").expect("the port list's end") + 2;
    format!("{}{}{}", &v[..end], decls, &v[end..])
}

/// Splits each channel's memory word into its `K` term words and decodes them: term word
/// `j = c * K + k` is bits `64 k + 63 .. 64 k` of `words[c]`; `neg[j]` is its bit 31, `mag[j]`
/// bits 30:0, `paddr[j]` the price table address `asset * 2 + sign` (entries from `CH * K` on
/// are zero). Pure wiring, written by hand because a kernel cannot slice at an offset computed
/// from a loop index.
#[derive(LogicBlock)]
pub struct WordSplit<const CH: usize, const K: usize, const W: usize> {
    /// Each channel's head word.
    pub words: [Signal<In, Bits<W>>; CH],
    /// Sign of term word `j`.
    pub neg: [Signal<Out, Bit>; LANES],
    /// Magnitude of term word `j`.
    pub mag: [Signal<Out, Bits<32>>; LANES],
    /// Price table address of term word `j`.
    pub paddr: [Signal<Out, Bits<9>>; LANES],
}

impl<const CH: usize, const K: usize, const W: usize> Default for WordSplit<CH, K, W> {
    fn default() -> Self {
        Self {
            words: std::array::from_fn(|_| Default::default()),
            neg: std::array::from_fn(|_| Default::default()),
            mag: std::array::from_fn(|_| Default::default()),
            paddr: std::array::from_fn(|_| Default::default()),
        }
    }
}

impl<const CH: usize, const K: usize, const W: usize> Logic for WordSplit<CH, K, W> {
    fn update(&mut self) {
        for j in 0..LANES {
            let t =
                if j < CH * K { self.words[j / K].val().get_bits::<64>(64 * (j % K)).to_u64() } else { 0 };
            let neg = (t >> 31) & 1;
            self.neg[j].next = neg == 1;
            self.mag[j].next = (t & 0x7FFF_FFFF).into();
            self.paddr[j].next = ((((t >> 32) & 0xFF) << 1) | neg).into();
        }
    }

    fn connect(&mut self) {
        for j in 0..LANES {
            self.neg[j].connect();
            self.mag[j].connect();
            self.paddr[j].connect();
        }
    }

    fn hdl(&self) -> Verilog {
        let mut v = String::from("always @(*) begin\n");
        for j in 0..LANES {
            if j < CH * K {
                let (c, o) = (j / K, 64 * (j % K));
                v.push_str(&format!("    neg${j} = words${c}[{}];\n", o + 31));
                v.push_str(&format!("    mag${j} = {{1'b0, words${c}[{}:{}]}};\n", o + 30, o));
                v.push_str(&format!(
                    "    paddr${j} = {{words${c}[{}:{}], words${c}[{}]}};\n",
                    o + 39,
                    o + 32,
                    o + 31
                ));
            } else {
                v.push_str(&format!("    neg${j} = 1'b0;\n    mag${j} = 32'd0;\n    paddr${j} = 9'd0;\n"));
            }
        }
        v.push_str("end\n");
        Verilog::Custom(v)
    }
}
