//! Event packer: the scan core's bitmap words and the decoder's jobs in, 64-byte event entries
//! out on the [`crate::front::evt_writer::EvtWriter`]'s event port.
//!
//! ```text
//!  job (decoder) ──> Error / FenceDone entry
//!                └─> Tick | Full: core words ──> card word RMW in the bitmap shadow (32 accounts
//!                                  (group, bits)  per word: LANES-bit group at its place)
//!                                        └─> reported words: 4 per ChangedWords (tick),
//!                                            6 per Bitmap (full); popcounts
//!                    core done marker ──> last partial entry, ScanDone (groups, cycles, counts)
//!  entries ──> 8 beats (words 2k, 2k+1) ──> evt_valid/evt_ready (the writer adds phase, seq)
//! ```
//!
//! The event ring carries 32-account card words (`Event::ChangedWords`, `Event::Bitmap`); the
//! core sends one `LANES`-bit word per group. So the packer keeps the card's bitmap (a block
//! RAM of `CARD_ACCOUNTS / 32` words, breach in bits 31:0, at-risk in 63:32, zero at
//! configuration): each group word replaces its lanes' bits in its card word, and the card word
//! as it then stands is what is reported, the other group's bits included. A tick reports each
//! card word its scan touched once, in order; a full scan reports the card words it touched in
//! `Bitmap` entries of consecutive words, at most six: the core skips empty groups (len 0 in
//! the packed layout), so a gap in the words closes the entry and the next word starts one.
//! A word the full scan skipped is unchanged since it was last reported (every change of the
//! shadow is reported by the job that made it), so the host's bitmap ends as the emulated
//! card's (`sim/src/card/hdl.rs`, which reports every word from 0). A `refresh` tick (terms
//! written since the last full scan) runs the incremental scan and then a full one; only the
//! full one's words are reported (so none is left stale). `ScanDone` carries the groups scanned (both scans), the cycles from
//! the core taking the last scan command (`scan_start`) to its done marker, and the set bits
//! of the reported words.
//!
//! Cycle behaviour: a job is taken only when the previous one's entries are all out
//! (`job_ready` is high in Idle only). Three cycles per core word (take and read, the read
//! through the shadow's output register, merge and write back: no read of a word in the cycle
//! it is written), plus 8 per entry sent (more under back-pressure). `out_ready` is low while an entry is being sent.
//!
//! Inputs: `clock`, `reset` (synchronous: state to Idle, the report slots emptied in the cycle
//! after, so a scan cut in the middle leaves nothing in the next job's entries; the bitmap
//! shadow is kept, as the core keeps its memories), the job port (`job_valid`, `job_kind`, `job_seq`, `job_arg`,
//! `job_detail`, `job_refresh`), `scan_start`, the core's output port (`out_valid`,
//! `out_done`, `out_group`, `out_breach`, `out_at_risk`), `evt_ready`.
//!
//! Outputs: `job_ready`, `out_ready`, `evt_valid`, `evt_data`, `busy` (not idle). Golden model:
//! [`PackerModel`].

use crate::abi::Event;
use crate::abi::config::{CARD_ACCOUNT_BITS, CARD_ACCOUNTS, GROUP_BITS, LANE_BITS, LANES};
use crate::abi::ring::{BITMAP_WORDS_PER_ENTRY, CHANGED_PER_ENTRY, evt_kind};
use crate::core::ram::SyncRamReg;
use crate::front::cmd_decoder::{Job, job_kind};
use crate::front::popcount::PopcountQuarters;
use crate::golden::CoreOut;
use rust_hdl::prelude::*;

/// Address bits of the card's bitmap: one word per 32 accounts.
pub const CARD_WORD_BITS: usize = CARD_ACCOUNT_BITS - 5;
const _: () = assert!(CARD_ACCOUNT_BITS == GROUP_BITS + LANE_BITS);
// Group bits above the card word index: the group's place in its card word.
pub(crate) const HALF_BITS: usize = 5 - LANE_BITS;
pub(crate) const LANE_MASK: u64 = (1u64 << LANES) - 1;
pub(crate) const SHIFT_LANES: u64 = LANE_BITS as u64;
pub(crate) const HALF_SHIFT: u64 = HALF_BITS as u64;
pub(crate) const HALF_MASK: u64 = (1u64 << HALF_BITS) - 1;
// The pending card word plus one, with the carry out of the last word.
const NEXT_BITS: usize = CARD_WORD_BITS + 1;
pub(crate) const KIND_BITMAP: u64 = evt_kind::BITMAP as u64;
pub(crate) const KIND_CHANGED: u64 = evt_kind::CHANGED_WORDS as u64;
pub(crate) const KIND_SCAN_DONE: u64 = evt_kind::SCAN_DONE as u64;
// ScanDone with flags bit 0 (incremental).
pub(crate) const KIND_SCAN_DONE_INCR: u64 = KIND_SCAN_DONE | 0x100;
pub(crate) const KIND_ERROR: u64 = evt_kind::ERROR as u64;
pub(crate) const KIND_FENCE: u64 = evt_kind::FENCE_DONE as u64;
pub(crate) const CAP_CHANGED: u64 = CHANGED_PER_ENTRY as u64;
pub(crate) const CAP_BITMAP: u64 = BITMAP_WORDS_PER_ENTRY as u64;
const _: () = assert!(CHANGED_PER_ENTRY == 4 && BITMAP_WORDS_PER_ENTRY == 6);
// An entry register's select (`EvtPacker::sel0`): bit 0 load, bit 1 shift, bits 5:2 the
// loaded source, one-hot (none: the answer), with the job's kind in it: bit 2 ScanDone of a
// full scan, bit 3 the slots as a Bitmap entry, bit 4 the slots as a ChangedWords entry (a
// tick), bit 5 ScanDone of a tick.
pub(crate) const SEL_ANSWER: u64 = 0b00_0001;
pub(crate) const SEL_FINAL: u64 = 0b00_0101;
pub(crate) const SEL_FINAL_TICK: u64 = 0b10_0001;
pub(crate) const SEL_SLOTS: u64 = 0b00_1001;
pub(crate) const SEL_SLOTS_TICK: u64 = 0b01_0001;
pub(crate) const SEL_SHIFT: u64 = 0b00_0010;

/// Golden model of [`EvtPacker`]: the card's bitmap and the events for each job.
#[derive(Clone, Debug)]
pub struct PackerModel {
    /// Breach bits, 32 accounts per word.
    pub breach: Vec<u32>,
    /// At-risk bits.
    pub at_risk: Vec<u32>,
}

impl Default for PackerModel {
    fn default() -> Self {
        PackerModel { breach: vec![0; CARD_ACCOUNTS / 32], at_risk: vec![0; CARD_ACCOUNTS / 32] }
    }
}

impl PackerModel {
    /// The events for `job`, given what the core sent for it (`outs`: its words and done
    /// markers, two for a refresh) and the cycles the `ScanDone` reports.
    pub fn job(&mut self, job: &Job, outs: &[CoreOut], cycles: u32) -> Vec<Event> {
        let seq = job.seq;
        match job.kind {
            job_kind::ERROR => {
                return vec![Event::Error { cmd_seq: seq, errors: job.arg, detail: job.detail }];
            }
            job_kind::FENCE => return vec![Event::FenceDone { cmd_seq: seq, token: job.arg }],
            _ => {}
        }
        let mut scans_left = if job.refresh { 2 } else { 1 };
        let (mut groups, mut touched) = (0u32, Vec::<u32>::new());
        for o in outs {
            match *o {
                CoreOut::Done => {
                    scans_left -= 1;
                    if scans_left == 0 {
                        break;
                    }
                }
                CoreOut::Word { group, breach, at_risk } => {
                    groups += 1;
                    let first = group as usize * LANES;
                    let (w, shift) = (first / 32, first % 32);
                    let mask = LANE_MASK as u32;
                    self.breach[w] = (self.breach[w] & !(mask << shift)) | (breach & mask) << shift;
                    self.at_risk[w] = (self.at_risk[w] & !(mask << shift)) | (at_risk & mask) << shift;
                    if scans_left == 1 && touched.last() != Some(&(w as u32)) {
                        touched.push(w as u32);
                    }
                }
            }
        }
        let words: Vec<(u32, u32, u32)> =
            touched.iter().map(|&w| (w, self.breach[w as usize], self.at_risk[w as usize])).collect();
        let breached = words.iter().map(|x| x.1.count_ones()).sum();
        let at_risk = words.iter().map(|x| x.2.count_ones()).sum();
        let mut ev = vec![];
        let incremental = job.kind == job_kind::TICK;
        if incremental {
            for chunk in words.chunks(CHANGED_PER_ENTRY) {
                let mut w = [(0, 0, 0); CHANGED_PER_ENTRY];
                w[..chunk.len()].copy_from_slice(chunk);
                ev.push(Event::ChangedWords { cmd_seq: seq, count: chunk.len() as u8, words: w });
            }
        } else {
            // Runs of consecutive words (the core skips empty groups), six to an entry.
            let runs = words.chunk_by(|a, b| b.0 == a.0 + 1);
            for chunk in runs.flat_map(|r| r.chunks(BITMAP_WORDS_PER_ENTRY)) {
                let (mut breach, mut at_risk) = ([0; BITMAP_WORDS_PER_ENTRY], [0; BITMAP_WORDS_PER_ENTRY]);
                for (i, x) in chunk.iter().enumerate() {
                    breach[i] = x.1;
                    at_risk[i] = x.2;
                }
                ev.push(Event::Bitmap {
                    cmd_seq: seq,
                    base_word: chunk[0].0,
                    count: chunk.len() as u8,
                    breach,
                    at_risk,
                });
            }
        }
        ev.push(Event::ScanDone {
            cmd_seq: seq,
            incremental,
            asset: if incremental { job.arg as u16 } else { 0 },
            groups,
            cycles,
            breached,
            at_risk,
        });
        ev
    }
}

/// Packer state.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum PackState {
    /// Waiting for a job.
    Idle,
    /// Loading an Error or FenceDone entry.
    Answer,
    /// Taking a core word (its card word is read from the shadow).
    Take,
    /// The read passing the shadow's output register.
    Read,
    /// Merging it into its card word, writing it back, reporting the previous card word.
    Merge,
    /// After the done marker: the pending word, then the last partial entry.
    Flush,
    /// Loading the ScanDone entry.
    Final,
    /// Sending the loaded entry, then back to `ret`.
    Send,
}

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct EvtPacker {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// A job is on the job port.
    pub job_valid: Signal<In, Bit>,
    /// The packer takes it (only when idle).
    pub job_ready: Signal<Out, Bit>,
    /// [`job_kind`].
    pub job_kind: Signal<In, Bits<2>>,
    /// The command's sequence number.
    pub job_seq: Signal<In, Bits<32>>,
    /// Error bits, token or asset.
    pub job_arg: Signal<In, Bits<32>>,
    /// Error detail.
    pub job_detail: Signal<In, Bits<32>>,
    /// Tick followed by a full scan: report the full scan's words.
    pub job_refresh: Signal<In, Bit>,
    /// The core took the job's last scan command in this cycle.
    pub scan_start: Signal<In, Bit>,
    /// A word or done marker is on the core's output port.
    pub out_valid: Signal<In, Bit>,
    /// The packer takes it.
    pub out_ready: Signal<Out, Bit>,
    /// Done marker.
    pub out_done: Signal<In, Bit>,
    /// Group of the word.
    pub out_group: Signal<In, Bits<GROUP_BITS>>,
    /// Breach bits of the group.
    pub out_breach: Signal<In, Bits<LANES>>,
    /// At-risk bits of the group.
    pub out_at_risk: Signal<In, Bits<LANES>>,
    /// An event beat is on `evt_data`.
    pub evt_valid: Signal<Out, Bit>,
    /// The writer takes it.
    pub evt_ready: Signal<In, Bit>,
    /// Entry words `2k`, `2k + 1` in beat `k` (words 0 bit 31 and 1 are the writer's).
    pub evt_data: Signal<Out, Bits<64>>,
    /// Not idle.
    pub busy: Signal<Out, Bit>,
    // With the block RAM's output register: its clock-to-out without one (5.83 ns) left the
    // merge and the write back about 2 ns of routing (card run 19's top path). A core word
    // takes a cycle more for it (Take, Read, Merge).
    shadow: SyncRamReg<Bits<64>, CARD_WORD_BITS>,
    pc_b: PopcountQuarters,
    pc_a: PopcountQuarters,
    state: DFF<PackState>,
    ret: DFF<PackState>,
    kind: DFF<Bits<2>>,
    seq: DFF<Bits<32>>,
    arg: DFF<Bits<32>>,
    detail: DFF<Bits<32>>,
    second: DFF<Bit>,
    g: DFF<Bits<GROUP_BITS>>,
    gb: DFF<Bits<LANES>>,
    ga: DFF<Bits<LANES>>,
    cnt: DFF<Bits<3>>,
    pend_v: DFF<Bit>,
    pend_w: DFF<Bits<CARD_WORD_BITS>>,
    pend_b: DFF<Bits<32>>,
    pend_a: DFF<Bits<32>>,
    // `pend_w + 1`, written with it (from `g`), and whether the pending word does not follow
    // the slots' last word (a Bitmap entry's gap), set at each push from `nxt` and the new
    // word: `full` sees a flop, not the slots' base plus count and a 32-bit compare.
    nxt: DFF<Bits<NEXT_BITS>>,
    brk: DFF<Bit>,
    // Merge's two compares, registered every cycle: in Read (the cycle before Merge) `g`,
    // `pend_w` and `nxt` already hold the values Merge sees (`g` moves in Take, the other two
    // in Merge), so Merge's push and `brk` start at flops.
    neq_w: DFF<Bit>,
    neq_nxt: DFF<Bit>,
    // The push into the slots, one cycle ahead (`pq`), and the slot it writes, one-hot (`ws`,
    // bit `k` for slot `k`): decoded from the current state and flops at the end of `update`,
    // so a slot register's enable is a flop of its own (and the slots' load), not the state's
    // push decode and `cnt` (card run 39's top path, `state` into `sb5`'s clock enable).
    pq: DFF<Bit>,
    ws: DFF<Bits<6>>,
    si0: DFF<Bits<CARD_WORD_BITS>>,
    si1: DFF<Bits<CARD_WORD_BITS>>,
    si2: DFF<Bits<CARD_WORD_BITS>>,
    si3: DFF<Bits<CARD_WORD_BITS>>,
    sb0: DFF<Bits<32>>,
    sb1: DFF<Bits<32>>,
    sb2: DFF<Bits<32>>,
    sb3: DFF<Bits<32>>,
    sb4: DFF<Bits<32>>,
    sb5: DFF<Bits<32>>,
    sa0: DFF<Bits<32>>,
    sa1: DFF<Bits<32>>,
    sa2: DFF<Bits<32>>,
    sa3: DFF<Bits<32>>,
    sa4: DFF<Bits<32>>,
    sa5: DFF<Bits<32>>,
    groups: DFF<Bits<32>>,
    brc: DFF<Bits<32>>,
    arc: DFF<Bits<32>>,
    // `scan_start` registered: in the card it is the core's command ready (its state and
    // command decode) through the command slice (card run 37's top path, into the set/reset
    // of `cyc`). `cyc` counts from the edge after: 2 as `ss` is seen, so from then on it holds
    // what it held when loaded with 1 at `scan_start`; in the one cycle between (`ss` set) its
    // value is 1, which a done marker taken then reads from `ss`. No cycle moves.
    ss: DFF<Bit>,
    cyc: DFF<Bits<32>>,
    cyc_done: DFF<Bits<32>>,
    b0: DFF<Bits<64>>,
    b1: DFF<Bits<64>>,
    b2: DFF<Bits<64>>,
    b3: DFF<Bits<64>>,
    b4: DFF<Bits<64>>,
    b5: DFF<Bits<64>>,
    b6: DFF<Bits<64>>,
    b7: DFF<Bits<64>>,
    beat: DFF<Bits<3>>,
    // `kind` is a tick, and the slots hold a whole entry: registered, computed from the values
    // `kind` and `cnt` take at the edge, so the entry registers' load logic starts at flops.
    tick: DFF<Bit>,
    full: DFF<Bit>,
    // The reported word's set bits, in a pipeline that ends in `brc`/`arc` two cycles after
    // the push. Per byte (`qb`, `qa`), registered every cycle from the pending word's copy
    // (`pcw_b`, `pcw_a`, below): a push
    // comes two cycles after the Merge that wrote the word at the earliest (Merge, Take, then
    // Flush; a push in Merge comes after Take and Read), so at the push they are the pushed
    // word's. Per half (`hb`, `ha`), registered every cycle from the bytes, so the cycle
    // after a push they hold the pushed word's; then the sum (`pcb`, `pca`, loaded when `pc1`
    // says so), then the 32-bit sums (`pc_add`): the byte trees, the half sums, the word sum
    // and the running sum in four cycles. `ScanDone` is loaded after an entry's eight beats
    // at least since the last push, so the sums are complete.
    qb: DFF<Bits<16>>,
    qa: DFF<Bits<16>>,
    // The pending word's copy for the popcount alone, loaded with `pend_b`/`pend_a` in Merge:
    // those also feed the twelve slot registers, and the byte trees behind them sat a long hop
    // away (card run 35's top path, `pend_a` to `qa`). Kept modules in the card
    // (`verilog::keep_lane_hierarchy`), so that yosys does not merge each with its original.
    pcw_b: DFF<Bits<32>>,
    pcw_a: DFF<Bits<32>>,
    hb: DFF<Bits<10>>,
    ha: DFF<Bits<10>>,
    pc1: DFF<Bit>,
    pcb: DFF<Bits<6>>,
    pca: DFF<Bits<6>>,
    pc_add: DFF<Bit>,
    // The slots' load (a full or last partial entry), one cycle ahead (see `nsel` at the end
    // of `update`): it empties the slots.
    ld_slots: DFF<Bit>,
    // Each entry register's select, one cycle ahead (the same), one register per
    // entry register (kept modules in the card, `verilog::keep_lane_hierarchy`, so that yosys
    // does not merge the eight into one flop driving all 512 entry flops: card runs 30 and
    // 31's top path, `ld_slots` and `sending` through a long net and two LUTs into `b6`).
    // Bit 0: the register loads, from the source bits 5:2 name (one-hot, see `SEL_ANSWER`:
    // ScanDone or the slots, each in its full-scan and its tick layout; none, the answer); bit
    // 1: sending, it takes the next register's word when the writer side is ready. So each
    // register's enable is bit 0, or bit 1 and the ready, and its data a select on flops of its
    // own. The job's kind is in the select (decoded a cycle ahead from `tick`, which does not
    // move while a select loads), not in the sources: `tick` in the data select of each of the
    // 512 entry flops put a shared decode LUT of the select and `tick` on a 64-load net ahead
    // of the per-bit mux (card run 46's top path, `sel5` through three LUTs into `b5`).
    sel0: DFF<Bits<6>>,
    sel1: DFF<Bits<6>>,
    sel2: DFF<Bits<6>>,
    sel3: DFF<Bits<6>>,
    sel4: DFF<Bits<6>>,
    sel5: DFF<Bits<6>>,
    sel6: DFF<Bits<6>>,
    sel7: DFF<Bits<6>>,
    // Combinational.
    push: Signal<Local, Bit>,
    load_slots: Signal<Local, Bit>,
    // The next cycle's entry register select (see `sel0`).
    nsel: Signal<Local, Bits<6>>,
    // The slots' and ScanDone's selects for the job's kind (`tick`).
    nsel_slots: Signal<Local, Bits<6>>,
    nsel_final: Signal<Local, Bits<6>>,
    // `full`'s next value outside Idle, from `tick` (only Idle moves `kind`): the job port
    // does not reach the selects through it.
    full_nx: Signal<Local, Bit>,
    // The entry registers' sources (the kind words are constants): an answer (`a*`), ScanDone
    // (`f*`, `fi1` a tick's), the slots as a ChangedWords (`c*`) or Bitmap (`m*`) entry.
    a0: Signal<Local, Bits<64>>,
    a1: Signal<Local, Bits<64>>,
    a2: Signal<Local, Bits<64>>,
    f1: Signal<Local, Bits<64>>,
    fi1: Signal<Local, Bits<64>>,
    f2: Signal<Local, Bits<64>>,
    f3: Signal<Local, Bits<64>>,
    c1: Signal<Local, Bits<64>>,
    c2: Signal<Local, Bits<64>>,
    c3: Signal<Local, Bits<64>>,
    c4: Signal<Local, Bits<64>>,
    c5: Signal<Local, Bits<64>>,
    c6: Signal<Local, Bits<64>>,
    c7: Signal<Local, Bits<64>>,
    m1: Signal<Local, Bits<64>>,
    m2: Signal<Local, Bits<64>>,
    m3: Signal<Local, Bits<64>>,
    m4: Signal<Local, Bits<64>>,
    m5: Signal<Local, Bits<64>>,
    m6: Signal<Local, Bits<64>>,
    m7: Signal<Local, Bits<64>>,
    shift: Signal<Local, Bits<32>>,
    mask: Signal<Local, Bits<32>>,
    card_w: Signal<Local, Bits<CARD_WORD_BITS>>,
    nb: Signal<Local, Bits<32>>,
    na: Signal<Local, Bits<32>>,
}

impl Logic for EvtPacker {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self, clock, state, ret, kind, seq, arg, detail, second, g, gb, ga, cnt, pend_v, pend_w, pend_b,
            pend_a, nxt, brk, neq_w, neq_nxt, pq, ws, si0, si1, si2, si3, sb0, sb1, sb2, sb3, sb4, sb5, sa0,
            sa1, sa2, sa3, sa4, sa5, groups, brc, arc, ss, cyc, cyc_done, b0, b1, b2, b3, b4, b5, b6, b7,
            beat, tick, full, qb, qa, pcw_b, pcw_a, hb, ha, pc1, pcb, pca, pc_add, ld_slots, sel0, sel1,
            sel2, sel3, sel4, sel5, sel6, sel7
        );
        clock!(self, clock, shadow);
        // The taken group's place in its card word, and the merge with the word read.
        self.shift.next = bit_cast::<32, GROUP_BITS>(self.g.q.val() & HALF_MASK) << SHIFT_LANES;
        self.mask.next = bits::<32>(LANE_MASK) << self.shift.val();
        self.card_w.next = self.g.q.val().get_bits::<CARD_WORD_BITS>(HALF_BITS);
        self.neq_w.d.next = self.pend_w.q.val() != self.card_w.val();
        self.neq_nxt.d.next = bit_cast::<NEXT_BITS, CARD_WORD_BITS>(self.card_w.val()) != self.nxt.q.val();
        self.nb.next = (self.shadow.read_data.val().get_bits::<32>(0) & !self.mask.val())
            | (bit_cast::<32, LANES>(self.gb.q.val()) << self.shift.val());
        self.na.next = (self.shadow.read_data.val().get_bits::<32>(32) & !self.mask.val())
            | (bit_cast::<32, LANES>(self.ga.q.val()) << self.shift.val());
        self.shadow.read_address.next = self.out_group.val().get_bits::<CARD_WORD_BITS>(HALF_BITS);
        self.shadow.write_enable.next = false;
        self.shadow.write_address.next = self.card_w.val();
        self.shadow.write_data.next =
            bit_cast::<64, 32>(self.nb.val()) | (bit_cast::<64, 32>(self.na.val()) << 32);
        self.pc_b.word.next = self.pcw_b.q.val();
        self.pc_a.word.next = self.pcw_a.q.val();
        self.qb.d.next = self.pc_b.q.val();
        self.qa.d.next = self.pc_a.q.val();
        self.hb.d.next = bit_cast::<10, 5>(
            bit_cast::<5, 4>(self.qb.q.val().get_bits::<4>(0))
                + bit_cast::<5, 4>(self.qb.q.val().get_bits::<4>(4)),
        ) | (bit_cast::<10, 5>(
            bit_cast::<5, 4>(self.qb.q.val().get_bits::<4>(8))
                + bit_cast::<5, 4>(self.qb.q.val().get_bits::<4>(12)),
        ) << 5);
        self.ha.d.next = bit_cast::<10, 5>(
            bit_cast::<5, 4>(self.qa.q.val().get_bits::<4>(0))
                + bit_cast::<5, 4>(self.qa.q.val().get_bits::<4>(4)),
        ) | (bit_cast::<10, 5>(
            bit_cast::<5, 4>(self.qa.q.val().get_bits::<4>(8))
                + bit_cast::<5, 4>(self.qa.q.val().get_bits::<4>(12)),
        ) << 5);
        self.ss.d.next = self.scan_start.val();
        self.cyc.d.next = self.cyc.q.val() + 1;
        if self.ss.q.val() {
            self.cyc.d.next = 2.into();
        }

        // The cycle after a push: the pushed word's halves are in `hb`/`ha`.
        self.pc1.d.next = false;
        self.pc_add.d.next = false;
        if self.pc1.q.val() {
            self.pcb.d.next = bit_cast::<6, 5>(self.hb.q.val().get_bits::<5>(0))
                + bit_cast::<6, 5>(self.hb.q.val().get_bits::<5>(5));
            self.pca.d.next = bit_cast::<6, 5>(self.ha.q.val().get_bits::<5>(0))
                + bit_cast::<6, 5>(self.ha.q.val().get_bits::<5>(5));
            self.pc_add.d.next = true;
        }
        if self.pc_add.q.val() {
            self.brc.d.next = self.brc.q.val() + bit_cast::<32, 6>(self.pcb.q.val());
            self.arc.d.next = self.arc.q.val() + bit_cast::<32, 6>(self.pca.q.val());
        }
        self.job_ready.next = false;
        self.out_ready.next = false;
        self.evt_valid.next = false;
        self.push.next = self.pq.q.val();
        self.load_slots.next = self.ld_slots.q.val();
        match self.state.q.val() {
            PackState::Idle => {
                self.job_ready.next = true;
                if self.job_valid.val() {
                    self.kind.d.next = self.job_kind.val();
                    self.seq.d.next = self.job_seq.val();
                    self.arg.d.next = self.job_arg.val();
                    self.detail.d.next = self.job_detail.val();
                    self.second.d.next = !self.job_refresh.val();
                    self.groups.d.next = 0.into();
                    self.brc.d.next = 0.into();
                    self.arc.d.next = 0.into();
                    self.cnt.d.next = 0.into();
                    self.pend_v.d.next = false;
                    self.state.d.next = PackState::Take;
                    if (self.job_kind.val() == job_kind::ERROR) | (self.job_kind.val() == job_kind::FENCE) {
                        self.state.d.next = PackState::Answer;
                    }
                }
            }
            PackState::Answer => {
                self.ret.d.next = PackState::Idle;
                self.state.d.next = PackState::Send;
            }
            PackState::Take => {
                if self.full.q.val() {
                    self.ret.d.next = PackState::Take;
                    self.state.d.next = PackState::Send;
                } else {
                    self.out_ready.next = true;
                    if self.out_valid.val() {
                        if self.out_done.val() {
                            if self.second.q.val() {
                                self.cyc_done.d.next = self.cyc.q.val();
                                if self.ss.q.val() {
                                    self.cyc_done.d.next = 1.into();
                                }
                                self.state.d.next = PackState::Flush;
                            } else {
                                self.second.d.next = true;
                            }
                        } else {
                            self.g.d.next = self.out_group.val();
                            self.gb.d.next = self.out_breach.val();
                            self.ga.d.next = self.out_at_risk.val();
                            self.state.d.next = PackState::Read;
                        }
                    }
                }
            }
            PackState::Read => {
                self.state.d.next = PackState::Merge;
            }
            PackState::Merge => {
                self.shadow.write_enable.next = true;
                self.groups.d.next = self.groups.q.val() + 1;
                if self.second.q.val() {
                    // Pushes (`pq`) when a word is pending and this one is another.
                    self.pend_v.d.next = true;
                    self.pend_w.d.next = self.card_w.val();
                    self.nxt.d.next = bit_cast::<NEXT_BITS, CARD_WORD_BITS>(self.card_w.val()) + 1;
                    // The pushed word is the slots' last, and `nxt` its successor.
                    if self.push.val() {
                        self.brk.d.next = self.neq_nxt.q.val();
                    }
                    self.pend_b.d.next = self.nb.val();
                    self.pend_a.d.next = self.na.val();
                    self.pcw_b.d.next = self.nb.val();
                    self.pcw_a.d.next = self.na.val();
                }
                self.state.d.next = PackState::Take;
            }
            PackState::Flush => {
                if self.full.q.val() {
                    self.ret.d.next = PackState::Flush;
                    self.state.d.next = PackState::Send;
                } else if self.pend_v.q.val() {
                    // Pushes the pending word (`pq`).
                    self.pend_v.d.next = false;
                } else if self.cnt.q.val() != 0 {
                    self.ret.d.next = PackState::Final;
                    self.state.d.next = PackState::Send;
                } else {
                    self.state.d.next = PackState::Final;
                }
            }
            PackState::Final => {
                self.ret.d.next = PackState::Idle;
                self.state.d.next = PackState::Send;
            }
            PackState::Send => {
                self.evt_valid.next = true;
                if self.evt_ready.val() {
                    self.beat.d.next = self.beat.q.val() + 1;
                    if self.beat.q.val() == 7 {
                        self.state.d.next = self.ret.q.val();
                    }
                }
            }
        }
        // Report the pending card word into the next slot (`ws`: the slot `cnt` names).
        if self.push.val() {
            self.cnt.d.next = self.cnt.q.val() + 1;
            self.pc1.d.next = true;
        }
        if self.ws.q.val().get_bit(0) {
            self.si0.d.next = self.pend_w.q.val();
            self.sb0.d.next = self.pend_b.q.val();
            self.sa0.d.next = self.pend_a.q.val();
        }
        if self.ws.q.val().get_bit(1) {
            self.si1.d.next = self.pend_w.q.val();
            self.sb1.d.next = self.pend_b.q.val();
            self.sa1.d.next = self.pend_a.q.val();
        }
        if self.ws.q.val().get_bit(2) {
            self.si2.d.next = self.pend_w.q.val();
            self.sb2.d.next = self.pend_b.q.val();
            self.sa2.d.next = self.pend_a.q.val();
        }
        if self.ws.q.val().get_bit(3) {
            self.si3.d.next = self.pend_w.q.val();
            self.sb3.d.next = self.pend_b.q.val();
            self.sa3.d.next = self.pend_a.q.val();
        }
        if self.ws.q.val().get_bit(4) {
            self.sb4.d.next = self.pend_b.q.val();
            self.sa4.d.next = self.pend_a.q.val();
        }
        if self.ws.q.val().get_bit(5) {
            self.sb5.d.next = self.pend_b.q.val();
            self.sa5.d.next = self.pend_a.q.val();
        }
        // The entry registers' sources: an answer (`a*`), ScanDone (`f*`, `fi1`), the slots as
        // ChangedWords (`c*`, a tick) or Bitmap (`m*`). The kind words are constants.
        self.a0.next = KIND_FENCE.into();
        if self.kind.q.val() == job_kind::ERROR {
            self.a0.next = KIND_ERROR.into();
        }
        self.a1.next = bit_cast::<64, 32>(self.seq.q.val()) | (bit_cast::<64, 32>(self.arg.q.val()) << 32);
        self.a2.next = bit_cast::<64, 32>(self.detail.q.val());
        self.f1.next = bit_cast::<64, 32>(self.seq.q.val());
        self.fi1.next = bit_cast::<64, 32>(self.seq.q.val())
            | (bit_cast::<64, 16>(self.arg.q.val().get_bits::<16>(0)) << 32);
        self.f2.next =
            bit_cast::<64, 32>(self.groups.q.val()) | (bit_cast::<64, 32>(self.cyc_done.q.val()) << 32);
        self.f3.next = bit_cast::<64, 32>(self.brc.q.val()) | (bit_cast::<64, 32>(self.arc.q.val()) << 32);
        self.c1.next = bit_cast::<64, 32>(self.seq.q.val()) | (bit_cast::<64, 3>(self.cnt.q.val()) << 32);
        self.c2.next =
            bit_cast::<64, CARD_WORD_BITS>(self.si0.q.val()) | (bit_cast::<64, 32>(self.sb0.q.val()) << 32);
        self.c3.next =
            bit_cast::<64, 32>(self.sa0.q.val()) | (bit_cast::<64, CARD_WORD_BITS>(self.si1.q.val()) << 32);
        self.c4.next = bit_cast::<64, 32>(self.sb1.q.val()) | (bit_cast::<64, 32>(self.sa1.q.val()) << 32);
        self.c5.next =
            bit_cast::<64, CARD_WORD_BITS>(self.si2.q.val()) | (bit_cast::<64, 32>(self.sb2.q.val()) << 32);
        self.c6.next =
            bit_cast::<64, 32>(self.sa2.q.val()) | (bit_cast::<64, CARD_WORD_BITS>(self.si3.q.val()) << 32);
        self.c7.next = bit_cast::<64, 32>(self.sb3.q.val()) | (bit_cast::<64, 32>(self.sa3.q.val()) << 32);
        self.m1.next = bit_cast::<64, 32>(self.seq.q.val())
            | (bit_cast::<64, CARD_WORD_BITS>(self.si0.q.val()) << 32)
            | (bit_cast::<64, 3>(self.cnt.q.val()) << 56);
        self.m2.next = bit_cast::<64, 32>(self.sb0.q.val()) | (bit_cast::<64, 32>(self.sb1.q.val()) << 32);
        self.m3.next = bit_cast::<64, 32>(self.sb2.q.val()) | (bit_cast::<64, 32>(self.sb3.q.val()) << 32);
        self.m4.next = bit_cast::<64, 32>(self.sb4.q.val()) | (bit_cast::<64, 32>(self.sb5.q.val()) << 32);
        self.m5.next = bit_cast::<64, 32>(self.sa0.q.val()) | (bit_cast::<64, 32>(self.sa1.q.val()) << 32);
        self.m6.next = bit_cast::<64, 32>(self.sa2.q.val()) | (bit_cast::<64, 32>(self.sa3.q.val()) << 32);
        self.m7.next = bit_cast::<64, 32>(self.sa4.q.val()) | (bit_cast::<64, 32>(self.sa5.q.val()) << 32);
        // Each entry register loads or shifts as its select (`sel*`, see there) says. A load
        // (bit 0) picks its source by the one-hot bits 5:2 and comes first; a shift (bit 1)
        // only when the writer side is ready. So the ready reaches only the register's enable
        // (one LUT: load, or shift and ready), and the zeros a load writes (the sources a
        // register lacks: an answer and ScanDone fill words 0..=2 and 0..=3, and the constant
        // bits of the kind words) are a synchronous reset from the select's flops alone. `b7`
        // takes no shift (what the registers hold after an entry's eight beats is never sent:
        // every Send follows a load of all eight), so it sees no ready.
        if self.sel0.q.val().get_bit(0) {
            if self.sel0.q.val().get_bit(4) {
                self.b0.d.next = KIND_CHANGED.into();
            } else if self.sel0.q.val().get_bit(3) {
                self.b0.d.next = KIND_BITMAP.into();
            } else if self.sel0.q.val().get_bit(5) {
                self.b0.d.next = KIND_SCAN_DONE_INCR.into();
            } else if self.sel0.q.val().get_bit(2) {
                self.b0.d.next = KIND_SCAN_DONE.into();
            } else {
                self.b0.d.next = self.a0.val();
            }
        } else if self.sel0.q.val().get_bit(1) & self.evt_ready.val() {
            self.b0.d.next = self.b1.q.val();
        }
        if self.sel1.q.val().get_bit(0) {
            if self.sel1.q.val().get_bit(4) {
                self.b1.d.next = self.c1.val();
            } else if self.sel1.q.val().get_bit(3) {
                self.b1.d.next = self.m1.val();
            } else if self.sel1.q.val().get_bit(5) {
                self.b1.d.next = self.fi1.val();
            } else if self.sel1.q.val().get_bit(2) {
                self.b1.d.next = self.f1.val();
            } else {
                self.b1.d.next = self.a1.val();
            }
        } else if self.sel1.q.val().get_bit(1) & self.evt_ready.val() {
            self.b1.d.next = self.b2.q.val();
        }
        if self.sel2.q.val().get_bit(0) {
            if self.sel2.q.val().get_bit(4) {
                self.b2.d.next = self.c2.val();
            } else if self.sel2.q.val().get_bit(3) {
                self.b2.d.next = self.m2.val();
            } else if self.sel2.q.val().get_bit(5) | self.sel2.q.val().get_bit(2) {
                self.b2.d.next = self.f2.val();
            } else {
                self.b2.d.next = self.a2.val();
            }
        } else if self.sel2.q.val().get_bit(1) & self.evt_ready.val() {
            self.b2.d.next = self.b3.q.val();
        }
        if self.sel3.q.val().get_bit(0) {
            if self.sel3.q.val().get_bit(4) {
                self.b3.d.next = self.c3.val();
            } else if self.sel3.q.val().get_bit(3) {
                self.b3.d.next = self.m3.val();
            } else if self.sel3.q.val().get_bit(5) | self.sel3.q.val().get_bit(2) {
                self.b3.d.next = self.f3.val();
            } else {
                self.b3.d.next = 0.into();
            }
        } else if self.sel3.q.val().get_bit(1) & self.evt_ready.val() {
            self.b3.d.next = self.b4.q.val();
        }
        if self.sel4.q.val().get_bit(0) {
            if self.sel4.q.val().get_bit(4) {
                self.b4.d.next = self.c4.val();
            } else if self.sel4.q.val().get_bit(3) {
                self.b4.d.next = self.m4.val();
            } else {
                self.b4.d.next = 0.into();
            }
        } else if self.sel4.q.val().get_bit(1) & self.evt_ready.val() {
            self.b4.d.next = self.b5.q.val();
        }
        if self.sel5.q.val().get_bit(0) {
            if self.sel5.q.val().get_bit(4) {
                self.b5.d.next = self.c5.val();
            } else if self.sel5.q.val().get_bit(3) {
                self.b5.d.next = self.m5.val();
            } else {
                self.b5.d.next = 0.into();
            }
        } else if self.sel5.q.val().get_bit(1) & self.evt_ready.val() {
            self.b5.d.next = self.b6.q.val();
        }
        if self.sel6.q.val().get_bit(0) {
            if self.sel6.q.val().get_bit(4) {
                self.b6.d.next = self.c6.val();
            } else if self.sel6.q.val().get_bit(3) {
                self.b6.d.next = self.m6.val();
            } else {
                self.b6.d.next = 0.into();
            }
        } else if self.sel6.q.val().get_bit(1) & self.evt_ready.val() {
            self.b6.d.next = self.b7.q.val();
        }
        if self.sel7.q.val().get_bit(0) {
            if self.sel7.q.val().get_bit(4) {
                self.b7.d.next = self.c7.val();
            } else if self.sel7.q.val().get_bit(3) {
                self.b7.d.next = self.m7.val();
            } else {
                self.b7.d.next = 0.into();
            }
        }
        // Loading the slots empties them.
        if self.load_slots.val() {
            self.cnt.d.next = 0.into();
            self.si0.d.next = 0.into();
            self.si1.d.next = 0.into();
            self.si2.d.next = 0.into();
            self.si3.d.next = 0.into();
            self.sb0.d.next = 0.into();
            self.sb1.d.next = 0.into();
            self.sb2.d.next = 0.into();
            self.sb3.d.next = 0.into();
            self.sb4.d.next = 0.into();
            self.sb5.d.next = 0.into();
            self.sa0.d.next = 0.into();
            self.sa1.d.next = 0.into();
            self.sa2.d.next = 0.into();
            self.sa3.d.next = 0.into();
            self.sa4.d.next = 0.into();
            self.sa5.d.next = 0.into();
        }
        self.evt_data.next = self.b0.q.val();
        self.busy.next = self.state.q.val() != PackState::Idle;
        if self.reset.val() {
            self.state.d.next = PackState::Idle;
            self.beat.d.next = 0.into();
            self.pc1.d.next = false;
            self.pc_add.d.next = false;
        }
        // After every assignment of `kind` and `cnt` above: their values at the edge.
        self.tick.d.next = self.kind.d.val() == job_kind::TICK;
        // The next cycle's push, from the current state and flops:
        // - Merge pushes when the second scan's word is another than the pending one. Merge
        //   comes only after Read, which moves none of `second`, `pend_v`, `pend_w` and `g`,
        //   so in Read those are Merge's and `neq_w`'s next value is the one Merge sees.
        // - Flush pushes the pending word when not full. It is entered from Take (not full,
        //   the second done marker), where neither the slots nor `pend_v` move, so `full` is
        //   still clear in its first cycle, which pushes a pending word at once; after that
        //   no word is pending (Flush returns from Send or stays in Flush only after it).
        // No reset reaches Merge or Flush in the next cycle.
        self.pq.d.next = false;
        match self.state.q.val() {
            PackState::Read => {
                self.pq.d.next = self.second.q.val() & self.pend_v.q.val() & self.neq_w.d.val();
            }
            PackState::Take => {
                self.pq.d.next = !self.full.q.val()
                    & self.out_valid.val()
                    & self.out_done.val()
                    & self.second.q.val()
                    & self.pend_v.q.val();
            }
            _ => {}
        }
        if self.reset.val() {
            self.pq.d.next = false;
        }
        // The slot it writes: `cnt` as it then stands, which is `cnt` now. Neither Read nor
        // Take pushes; the slots load in Read only after a slots select in Take, which Take
        // never makes (see `nsel`), and in Take only after Merge or Send found the slots full,
        // so with `full` set, when Take does not go to Flush.
        self.ws.d.next = 0.into();
        if self.pq.d.val() {
            self.ws.d.next = bits::<6>(1) << bit_cast::<6, 3>(self.cnt.q.val());
        }
        // A Bitmap entry carries consecutive words from its base: a pending word that does not
        // follow the slots' last one (a skipped empty group's word between) closes the entry.
        // `brk` is that test (`pend_w != si0 + cnt`) wherever it counts (slots used, a word
        // pending): set at each push in Merge; a push is taken only while `full` is clear, so
        // the slots are consecutive up to the pushed word, and `pend_w` moves only in Merge.
        self.full.d.next = (self.tick.d.val() & (self.cnt.d.val() == CAP_CHANGED))
            | (!self.tick.d.val()
                & ((self.cnt.d.val() == CAP_BITMAP)
                    | ((self.cnt.d.val() != 0) & self.pend_v.d.val() & self.brk.d.val())));
        // The next cycle's entry load or shift: what the state machine above does in the next
        // cycle (Answer and Final load their entry, Take and Flush load the slots when they
        // are full, Flush also the last partial entry: no word pending, some slots used; Send
        // shifts), decoded from the current state and flops rather than from the next state,
        // so the core's output port (its FIFO's read into Take's next state, card run 33's top
        // path) does not reach it. The cases that are not plain decodes:
        // - Idle to Take: the slots start empty (`cnt` 0), so not full.
        // - Take, not full, to Take, Read or Flush: Take pushes and loads nothing, so `full`
        //   stays clear, and Flush's first cycle pushes rather than loads (slots are used only
        //   after a push in Merge, which leaves a word pending): no load whatever the core
        //   sends.
        // - Flush pushing the pending word: `cnt` becomes at least 1 and no word is pending,
        //   so the next Flush loads the slots (full or the last partial entry).
        // - Send's last beat: back to `ret`, decoded from the values at the edge as before.
        self.full_nx.next = (self.tick.q.val() & (self.cnt.d.val() == CAP_CHANGED))
            | (!self.tick.q.val()
                & ((self.cnt.d.val() == CAP_BITMAP)
                    | ((self.cnt.d.val() != 0) & self.pend_v.d.val() & self.brk.d.val())));
        // The slots' and ScanDone's selects carry the job's kind: `tick` moves only at the edge
        // where Idle takes a job (with `kind`), and Idle selects only an answer, so `tick` now
        // is `tick` in the cycle the select loads.
        self.nsel_slots.next = SEL_SLOTS.into();
        self.nsel_final.next = SEL_FINAL.into();
        if self.tick.q.val() {
            self.nsel_slots.next = SEL_SLOTS_TICK.into();
            self.nsel_final.next = SEL_FINAL_TICK.into();
        }
        self.nsel.next = 0.into();
        match self.state.q.val() {
            PackState::Idle => {
                if self.job_valid.val()
                    & ((self.job_kind.val() == job_kind::ERROR) | (self.job_kind.val() == job_kind::FENCE))
                {
                    self.nsel.next = SEL_ANSWER.into();
                }
            }
            PackState::Answer => {
                self.nsel.next = SEL_SHIFT.into();
            }
            PackState::Take => {
                if self.full.q.val() {
                    self.nsel.next = SEL_SHIFT.into();
                }
            }
            PackState::Read => {}
            PackState::Merge => {
                if self.full_nx.val() {
                    self.nsel.next = self.nsel_slots.val();
                }
            }
            PackState::Flush => {
                if self.full.q.val() {
                    self.nsel.next = SEL_SHIFT.into();
                } else if self.pend_v.q.val() {
                    self.nsel.next = self.nsel_slots.val();
                } else if self.cnt.q.val() != 0 {
                    self.nsel.next = SEL_SHIFT.into();
                } else {
                    self.nsel.next = self.nsel_final.val();
                }
            }
            PackState::Final => {
                self.nsel.next = SEL_SHIFT.into();
            }
            PackState::Send => {
                self.nsel.next = SEL_SHIFT.into();
                if self.evt_ready.val() & (self.beat.q.val() == 7) {
                    self.nsel.next = 0.into();
                    if self.ret.q.val() == PackState::Final {
                        self.nsel.next = self.nsel_final.val();
                    }
                    if (self.ret.q.val() == PackState::Take) & self.full_nx.val() {
                        self.nsel.next = self.nsel_slots.val();
                    }
                    if (self.ret.q.val() == PackState::Flush)
                        & (self.full_nx.val() | (!self.pend_v.d.val() & (self.cnt.d.val() != 0)))
                    {
                        self.nsel.next = self.nsel_slots.val();
                    }
                }
            }
        }
        if self.reset.val() {
            self.nsel.next = 0.into();
        }
        // A reset also empties the slots (and `cnt`) in the next cycle: a scan cut in Take or
        // Read leaves words in them that the next job's first entry would otherwise carry
        // beyond its count (Idle's job take clears `cnt` only).
        self.ld_slots.d.next = self.nsel.val().get_bit(3) | self.nsel.val().get_bit(4) | self.reset.val();
        self.sel0.d.next = self.nsel.val();
        self.sel1.d.next = self.nsel.val();
        self.sel2.d.next = self.nsel.val();
        self.sel3.d.next = self.nsel.val();
        self.sel4.d.next = self.nsel.val();
        self.sel5.d.next = self.nsel.val();
        self.sel6.d.next = self.nsel.val();
        self.sel7.d.next = self.nsel.val();
    }
}
