//! Command decoder: 64-byte command entries from the [`crate::front::cmd_reader::CmdReader`]
//! in, the scan core's commands out, and one job per event-producing entry for the
//! [`crate::front::evt_packer::EvtPacker`].
//!
//! ```text
//!  cmd_* beats ──> entry register (8 beats) ──> check: decodes? sequence? ranges?
//!                                                 │ bad ──> job Error (BAD_ENTRY, SEQ_GAP, *_RANGE)
//!                                                 │ fence ─> job Fence
//!                                                 │ tick / batch last / scan full ─> job Tick|Full, then
//!                                                 └─> core commands, one per core_ready:
//!  Tick:        SET_PRICE asset side, SET_PRICE liability side, SCAN_ASSET [, SCAN_FULL if stale]
//!  BatchTick:   SET_PRICE x 2 [, SCAN_FULL if last]       ScanFull: SCAN_FULL
//!  AccountTerms: WRITE_TERM word .. word + count          SetGroup: SET_GROUP
//!  Params: SET_PARAMS
//! ```
//!
//! It does what the emulated card's `execute` does (`sim/src/card/serve.rs` with the rust-hdl
//! core behind it, `sim/src/card/hdl.rs`), in the same order: an entry that does not decode
//! (exactly [`crate::abi::Command::decode_words`]'s rules) is answered with an `Error` event,
//! `BAD_ENTRY`, detail word 0, and leaves the expected sequence number alone; then an entry
//! whose sequence number is not the expected one gets `SEQ_GAP` with the expected number as
//! detail, is not executed, and the count restarts after it; then the card's own limits
//! (account below [`CARD_ACCOUNTS`], group below [`GROUPS`], term words and a group's extent
//! inside the [`TERM_WORDS`] words of a lane and at most [`TERM_SLOTS`] long, assets below
//! [`CARD_ASSETS`], parameters in range) give `ACCOUNT_RANGE`, `SLOT_RANGE` (detail: word 3),
//! `ASSET_RANGE` or `PARAMS_RANGE` with the offending value. So the decoder
//! keeps its own expected sequence number (the reader's `cmd_seq_gap` is taken before decoding
//! and is only a diagnostic here). The core never sees a command out of its range.
//!
//! `stale`: once terms were written or a group set, the bitmap words the packer keeps may mix a rescanned
//! group with one whose terms changed since, so the next tick also runs a full scan (the job's
//! `refresh`), as the emulated card does; a full scan clears it.
//!
//! Ordering: a scan's job is handed over before its first core command, and the packer takes a
//! job only when the previous one's events are all out, so events leave in command order; a
//! fence's `FenceDone` follows every earlier event.
//!
//! Cycle behaviour: 8 cycles to take an entry (one beat each, `cmd_ready` high while
//! collecting), one to combine its checks (Flags), one to check it, one for the job handshake (when there is a job), then one core
//! command per `core_ready` cycle.
//!
//! Inputs: `clock`, `reset` (synchronous: state, expected sequence number and sticky errors to
//! 0; `stale` is kept, as the emulated card keeps its engine across a soft reset), the command
//! port (`cmd_valid`, `cmd_data`, `cmd_last`), `core_ready`, `job_ready`.
//!
//! Outputs: `cmd_ready`, the core's command port (`core_valid`, `core_op`, `core_addr`,
//! `core_sub`, `core_data0`, `core_data1`, see [`crate::golden::cmd_fields`]), the job port
//! (`job_valid`, `job_kind`, `job_seq`, `job_arg`, `job_detail`, `job_refresh`), `scan_start`
//! (the core took the job's last scan command this cycle), `errors` (sticky error bits),
//! `entries` (entries taken, free-running). Golden model: [`DecoderModel`].

use crate::abi::config::{CARD_ACCOUNTS, CARD_ASSETS, GROUPS, LANES, TERM_SLOTS, TERM_WORDS};
use crate::abi::regs::error_bit;
use crate::abi::ring::{RING_ENTRY_WORDS, cmd_kind};
use crate::abi::{Command, PriceEntry};
use crate::golden::{CoreCmd, op};
use rust_hdl::prelude::*;

/// Job kinds on `job_kind`.
pub mod job_kind {
    /// An `Error` event: `job_arg` the error bits, `job_detail` the offending value.
    pub const ERROR: u64 = 0;
    /// A `FenceDone` event: `job_arg` the token.
    pub const FENCE: u64 = 1;
    /// An incremental scan's `ChangedWords` and `ScanDone`: `job_arg` the asset.
    pub const TICK: u64 = 2;
    /// A full scan's `Bitmap` events and `ScanDone`.
    pub const FULL: u64 = 3;
}

/// A job for the event packer: what to answer the entry with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    /// [`job_kind`].
    pub kind: u64,
    /// The entry's sequence number (word 1).
    pub seq: u32,
    /// Error bits, fence token or asset.
    pub arg: u32,
    /// Error detail.
    pub detail: u32,
    /// Tick: a full scan follows the incremental one, and every bitmap word is reported.
    pub refresh: bool,
}

/// Golden model of [`CmdDecoder`].
#[derive(Clone, Debug, Default)]
pub struct DecoderModel {
    /// Expected sequence number.
    pub expect: u32,
    /// Terms written since the last full scan.
    pub stale: bool,
    /// Sticky error bits.
    pub errors: u32,
}

impl DecoderModel {
    fn error(&mut self, seq: u32, bits: u32, detail: u32) -> (Vec<CoreCmd>, Option<Job>) {
        self.errors |= bits;
        (vec![], Some(Job { kind: job_kind::ERROR, seq, arg: bits, detail, refresh: false }))
    }

    fn prices(asset: u16, p: PriceEntry) -> [CoreCmd; 2] {
        [
            CoreCmd::SetPrice { asset, liability: false, spot: p.spot.asset, stressed: p.stressed.asset },
            CoreCmd::SetPrice {
                asset,
                liability: true,
                spot: p.spot.liability,
                stressed: p.stressed.liability,
            },
        ]
    }

    /// Takes one entry: the core commands it becomes and its job, if any.
    pub fn entry(&mut self, w: &[u32; RING_ENTRY_WORDS]) -> (Vec<CoreCmd>, Option<Job>) {
        let (seq, cmd) = match Command::decode_words(w) {
            Ok(x) => x,
            Err(_) => return self.error(w[1], error_bit::BAD_ENTRY, w[0]),
        };
        if seq != self.expect {
            let expect = self.expect;
            self.expect = seq.wrapping_add(1);
            return self.error(seq, error_bit::SEQ_GAP, expect);
        }
        self.expect = seq.wrapping_add(1);
        let job = |kind, arg, refresh| Some(Job { kind, seq, arg, detail: 0, refresh });
        match cmd {
            Command::Tick { asset, price } => {
                if asset as usize >= CARD_ASSETS {
                    return self.error(seq, error_bit::ASSET_RANGE, asset as u32);
                }
                let refresh = std::mem::take(&mut self.stale);
                let mut c = Self::prices(asset, price).to_vec();
                c.push(CoreCmd::ScanAsset { asset });
                if refresh {
                    c.push(CoreCmd::ScanFull);
                }
                (c, job(job_kind::TICK, asset as u32, refresh))
            }
            Command::BatchTick { asset, price, last } => {
                if asset as usize >= CARD_ASSETS {
                    return self.error(seq, error_bit::ASSET_RANGE, asset as u32);
                }
                let mut c = Self::prices(asset, price).to_vec();
                if last {
                    self.stale = false;
                    c.push(CoreCmd::ScanFull);
                    return (c, job(job_kind::FULL, 0, false));
                }
                (c, None)
            }
            Command::ScanFull => {
                self.stale = false;
                (vec![CoreCmd::ScanFull], job(job_kind::FULL, 0, false))
            }
            Command::AccountTerms { account, word, count, terms } => {
                if account as usize >= CARD_ACCOUNTS {
                    return self.error(seq, error_bit::ACCOUNT_RANGE, account);
                }
                if word as usize + count as usize > TERM_WORDS {
                    return self.error(seq, error_bit::SLOT_RANGE, w[3]);
                }
                let used = &terms[..count as usize];
                if let Some(t) = used.iter().find(|t| t.asset as usize >= CARD_ASSETS) {
                    return self.error(seq, error_bit::ASSET_RANGE, t.asset as u32);
                }
                self.stale = true;
                let c = used
                    .iter()
                    .enumerate()
                    .map(|(k, &term)| CoreCmd::WriteTerm {
                        account: account as u16,
                        word: word + k as u16,
                        term,
                    })
                    .collect();
                (c, None)
            }
            Command::SetGroup { group, first, len } => {
                if group as usize >= GROUPS {
                    return self.error(seq, error_bit::ACCOUNT_RANGE, group);
                }
                if !extent_fits(first, len) {
                    return self.error(seq, error_bit::SLOT_RANGE, w[3]);
                }
                self.stale = true;
                (vec![CoreCmd::SetGroup { group: group as u16, first, len }], None)
            }
            Command::Params { active_accounts, term_slots } => {
                if active_accounts as usize > CARD_ACCOUNTS {
                    return self.error(seq, error_bit::PARAMS_RANGE, active_accounts);
                }
                if !(1..=TERM_SLOTS as u32).contains(&term_slots) {
                    return self.error(seq, error_bit::PARAMS_RANGE, term_slots);
                }
                (vec![CoreCmd::SetParams { accounts: active_accounts, slots: term_slots }], None)
            }
            Command::Fence { token } => (vec![], job(job_kind::FENCE, token, false)),
        }
    }
}

/// A group extent inside a lane's term words and at most [`TERM_SLOTS`] long: what the card
/// takes in a `SetGroup` (it never wraps round the end of the memory).
pub fn extent_fits(first: u16, len: u8) -> bool {
    (first as usize) < TERM_WORDS && len as usize <= TERM_SLOTS && first as usize + len as usize <= TERM_WORDS
}

/// Decoder state.
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum DecodeState {
    /// Taking the entry's beats.
    Collect,
    /// Combining the checks registered with the last beat into the flags Check uses.
    Flags,
    /// Checking the entry.
    Check,
    /// Handing the job to the packer.
    Job,
    /// Sending core commands.
    Issue,
}

/// Program run in [`DecodeState::Issue`].
#[derive(Copy, Clone, PartialEq, Eq, Debug, LogicState)]
pub enum Program {
    /// Nothing.
    None,
    /// Two price writes, then the scan(s) or nothing.
    Prices,
    /// Term writes, `slot` up to `slot_end`.
    Terms,
    /// One SET_GROUP.
    Group,
    /// One SET_PARAMS.
    Params,
    /// One SCAN_FULL.
    Full,
}

pub(crate) const ASSET_LIMIT: u64 = CARD_ASSETS as u64;
pub(crate) const ACCOUNT_LIMIT: u64 = CARD_ACCOUNTS as u64;
pub(crate) const GROUP_LIMIT: u64 = (CARD_ACCOUNTS / LANES) as u64;
pub(crate) const SLOTS: u64 = TERM_SLOTS as u64;
pub(crate) const WORD_LIMIT: u64 = TERM_WORDS as u64;
// A term write's word address in `core_data1` (`golden::WORD_SHIFT`): the entry's word plus
// the term's index, 11 bits.
pub(crate) const TW_WORD_SHIFT: u64 = crate::golden::WORD_SHIFT as u64;
const _: () = assert!(TERM_WORDS == 1 << 11 && GROUPS == CARD_ACCOUNTS / LANES);
// The bit pattern of i32::MIN, the one coefficient the ring format refuses.
pub(crate) const COEFF_I32_MIN: u64 = 0x8000_0000;
pub(crate) const K_TICK: u64 = cmd_kind::TICK as u64;
pub(crate) const K_BATCH_TICK: u64 = cmd_kind::BATCH_TICK as u64;
pub(crate) const K_ACCOUNT_TERMS: u64 = cmd_kind::ACCOUNT_TERMS as u64;
pub(crate) const K_SET_GROUP: u64 = cmd_kind::SET_GROUP as u64;
pub(crate) const K_PARAMS: u64 = cmd_kind::PARAMS as u64;
pub(crate) const K_FENCE: u64 = cmd_kind::FENCE as u64;
pub(crate) const K_SCAN_FULL: u64 = cmd_kind::SCAN_FULL as u64;
pub(crate) const E_BAD_ENTRY: u64 = error_bit::BAD_ENTRY as u64;
pub(crate) const E_SEQ_GAP: u64 = error_bit::SEQ_GAP as u64;
pub(crate) const E_ASSET_RANGE: u64 = error_bit::ASSET_RANGE as u64;
pub(crate) const E_PARAMS_RANGE: u64 = error_bit::PARAMS_RANGE as u64;
pub(crate) const E_ACCOUNT_RANGE: u64 = error_bit::ACCOUNT_RANGE as u64;
pub(crate) const E_SLOT_RANGE: u64 = error_bit::SLOT_RANGE as u64;

/// See the module docs.
#[derive(LogicBlock, Default)]
pub struct CmdDecoder {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// A command beat is on `cmd_data`.
    pub cmd_valid: Signal<In, Bit>,
    /// The decoder takes it.
    pub cmd_ready: Signal<Out, Bit>,
    /// Entry words `2k` (bits 31:0) and `2k + 1` (bits 63:32) in beat `k`.
    pub cmd_data: Signal<In, Bits<64>>,
    /// Beat 7.
    pub cmd_last: Signal<In, Bit>,
    /// A command is on the core's port.
    pub core_valid: Signal<Out, Bit>,
    /// The core takes it.
    pub core_ready: Signal<In, Bit>,
    /// Opcode ([`op`]).
    pub core_op: Signal<Out, Bits<3>>,
    /// Asset or account.
    pub core_addr: Signal<Out, Bits<16>>,
    /// Price side or group length.
    pub core_sub: Signal<Out, Bits<8>>,
    /// Spot price, coefficient or active accounts.
    pub core_data0: Signal<Out, Bits<32>>,
    /// Stressed price, term asset or active slots.
    pub core_data1: Signal<Out, Bits<32>>,
    /// A job is on the job port.
    pub job_valid: Signal<Out, Bit>,
    /// The packer takes it.
    pub job_ready: Signal<In, Bit>,
    /// [`job_kind`].
    pub job_kind: Signal<Out, Bits<2>>,
    /// The entry's sequence number.
    pub job_seq: Signal<Out, Bits<32>>,
    /// Error bits, token or asset.
    pub job_arg: Signal<Out, Bits<32>>,
    /// Error detail.
    pub job_detail: Signal<Out, Bits<32>>,
    /// Tick with a full scan after the incremental one.
    pub job_refresh: Signal<Out, Bit>,
    /// The core took the job's last scan command.
    pub scan_start: Signal<Out, Bit>,
    /// Sticky error bits.
    pub errors: Signal<Out, Bits<32>>,
    /// Entries taken (free-running).
    pub entries: Signal<Out, Bits<32>>,
    state: DFF<DecodeState>,
    prog: DFF<Program>,
    // The entry, beat 0 in e0 once collected (a shift register: beats come in order).
    e0: DFF<Bits<64>>,
    e1: DFF<Bits<64>>,
    e2: DFF<Bits<64>>,
    e3: DFF<Bits<64>>,
    e4: DFF<Bits<64>>,
    e5: DFF<Bits<64>>,
    e6: DFF<Bits<64>>,
    e7: DFF<Bits<64>>,
    exp_seq: DFF<Bits<32>>,
    stale: DFF<Bit>,
    errs: DFF<Bits<32>>,
    // The packer took an Error job in the last cycle: `errs` takes its bits (`j_arg`, which
    // moves only in Check, ten cycles after the handshake at the earliest) at the end of this
    // one, and `errors` already shows them (`errs | j_arg`), so the sticky bits appear in the
    // cycle after the handshake, as when `errs` took them at the handshake. `errs`' enable is this
    // flop rather than the packer's `job_ready` through the job handshake's decode (card run
    // 42's top path, the packer's state into `errs`' clock enable); `job_ready` reaches only
    // this flop's and the state's data.
    err_take: DFF<Bit>,
    count: DFF<Bits<32>>,
    // Job register.
    j_kind: DFF<Bits<2>>,
    j_seq: DFF<Bits<32>>,
    j_arg: DFF<Bits<32>>,
    j_detail: DFF<Bits<32>>,
    j_refresh: DFF<Bit>,
    // Issue program state: step of the price program, term index and count of the term
    // program, the scans after the prices.
    step: DFF<Bits<2>>,
    scan_asset: DFF<Bit>,
    scan_full: DFF<Bit>,
    slot: DFF<Bits<5>>,
    slot_end: DFF<Bits<5>>,
    // The term program's current command is its last (`slot + 1 == slot_end`), registered with
    // `slot`: set in Check from the count, and as `slot` steps from `slot + 2 == slot_end`, so
    // the last-command test in Issue is a flop, not an add and a compare.
    t_last: DFF<Bit>,
    // The terms, shifted down one per term written (zero once past `count`).
    tc0: DFF<Bits<32>>,
    tc1: DFF<Bits<32>>,
    tc2: DFF<Bits<32>>,
    tc3: DFF<Bits<32>>,
    tc4: DFF<Bits<32>>,
    tc5: DFF<Bits<32>>,
    tc6: DFF<Bits<32>>,
    tc7: DFF<Bits<32>>,
    ta: DFF<Bits<128>>,
    // The state is Issue (set with it), one copy per term shift register (`iss_c0` for `tc0`
    // and so on, `iss_a` for `ta`): that register's enable (with the core's ready) and select.
    // Kept modules in the card (`verilog::keep_lane_hierarchy`), so that yosys does not merge
    // the nine into one flop whose enable LUT drives all 384 flops' clock enables across the
    // decoder: card runs 45, 47 and 49 put that one net on top (the command slice's `v0`/`v1`
    // or `in_issue` through the one LUT into `ta`'s, `tc0`'s or `tc4`'s clock enable, 9.4 to
    // 11.5 ns of routing). With a copy each, each register has a LUT of its own next to it.
    iss_c0: DFF<Bit>,
    iss_c1: DFF<Bit>,
    iss_c2: DFF<Bit>,
    iss_c3: DFF<Bit>,
    iss_c4: DFF<Bit>,
    iss_c5: DFF<Bit>,
    iss_c6: DFF<Bit>,
    iss_c7: DFF<Bit>,
    iss_a: DFF<Bit>,
    // The checks of the entry in two register stages. With its last beat (computed on
    // `n0..n7`, the entry as it stands once that beat is in): sequence gap, the range checks of
    // words 2 and 3, the kind (one-hot), an AccountTerms entry with nothing to write, and the
    // parts of the decode rule (`r_*`: zero words, flags, per term a used-slot junk bit, a
    // coefficient i32::MIN, an asset out of range; the extent's end beyond the term words).
    // In Flags, the next cycle, those parts are combined into `c_bad`, `c_asset` and the
    // outcome `p_*`, so no compare and its decode share a cycle.
    c_bad: DFF<Bit>,
    c_seq_gap: DFF<Bit>,
    c_w2_asset: DFF<Bit>,
    c_w2_acct_ge: DFF<Bit>,
    c_w2_acct_gt: DFF<Bit>,
    c_w2_group_ge: DFF<Bit>,
    c_w3_bad: DFF<Bit>,
    c_extent_bad: DFF<Bit>,
    c_asset: DFF<Bits<16>>,
    c_tick: DFF<Bit>,
    c_batch: DFF<Bit>,
    c_terms: DFF<Bit>,
    c_group: DFF<Bit>,
    c_fence: DFF<Bit>,
    c_params: DFF<Bit>,
    c_full: DFF<Bit>,
    c_nothing: DFF<Bit>,
    r_hi0: DFF<Bit>,
    r_fl0: DFF<Bit>,
    r_fl1: DFF<Bit>,
    r_z3hi: DFF<Bit>,
    r_z4: DFF<Bit>,
    r_z5: DFF<Bit>,
    r_z6: DFF<Bit>,
    r_z7: DFF<Bit>,
    r_z2: DFF<Bit>,
    r_z3lo: DFF<Bit>,
    r_zw2: DFF<Bit>,
    r_zw3: DFF<Bit>,
    r_w2hi0: DFF<Bit>,
    r_w3top0: DFF<Bit>,
    r_cnt_le8: DFF<Bit>,
    r_junk: DFF<Bits<8>>,
    r_min: DFF<Bits<8>>,
    r_abad: DFF<Bits<8>>,
    // Some term's asset is beyond the price table (`r_abad != 0`), registered with `r_abad` so
    // that stage two's outcome select sees one flop, not the OR of eight (card run 44's top
    // path was `r_abad` through its OR into the kind-by-kind select of `p_arg`).
    r_asset_bad: DFF<Bit>,
    // The extent end (`word + count`: bits 15:0 plus bits 23:16) of the upper half of `e2`,
    // loaded with `e2` at every beat shifted in, from the half that moves into `e2` (`e3`'s).
    // In the cycle of the last beat `e2` holds beat 1, so this is word 3's end (`dw3`'s), added
    // a beat early: stage one only compares it with the term words (card run 43's top path was
    // the add and the compare, two carry chains, into `r_det_w3`).
    t_end: DFF<Bits<17>>,
    // The extent's end beyond a lane's term words (`word + count > TERM_WORDS`), compared in
    // stage one (card run 26's top path was this compare on a registered end, feeding
    // stage two's `p_detail` select in the same cycle).
    r_end_bad: DFF<Bit>,
    // The error detail's source, decided in stage one so that stage two's `p_detail` is one
    // LUT per bit (`w2[i]`, `w3[i]` and these two flops): `r_det_w2`, the entry's word 2 is the
    // detail (its kind's first check, on word 2, fails); `r_det_w3`, word 3 is, unless word 2
    // is (its kind's check on word 3 or the extent fails). Both are 0 unless the entry's
    // outcome is a range error with a word's detail. Card runs 26's and 27's top path was the
    // kind-by-kind priority of selects into `p_detail` from the stage-one flags.
    r_det_w2: DFF<Bit>,
    r_det_w3: DFF<Bit>,
    // Stage two's outcome of an entry that decodes and is in sequence (see Check).
    p_arg: DFF<Bits<32>>,
    p_detail: DFF<Bits<32>>,
    p_det_asset: DFF<Bit>,
    p_kind: DFF<Bits<2>>,
    p_prog: DFF<Program>,
    p_state: DFF<DecodeState>,
    p_refresh: DFF<Bit>,
    p_scan_asset: DFF<Bit>,
    p_scan_full: DFF<Bit>,
    p_stale_set: DFF<Bit>,
    p_stale_clr: DFF<Bit>,
    end_bad: Signal<Local, Bit>,
    asset_bad: Signal<Local, Bit>,
    n0: Signal<Local, Bits<64>>,
    n1: Signal<Local, Bits<64>>,
    n2: Signal<Local, Bits<64>>,
    n3: Signal<Local, Bits<64>>,
    n4: Signal<Local, Bits<64>>,
    n5: Signal<Local, Bits<64>>,
    n6: Signal<Local, Bits<64>>,
    n7: Signal<Local, Bits<64>>,
    dw0: Signal<Local, Bits<32>>,
    dw1: Signal<Local, Bits<32>>,
    dw2: Signal<Local, Bits<32>>,
    dw3: Signal<Local, Bits<32>>,
    dkind: Signal<Local, Bits<8>>,
    dflags: Signal<Local, Bits<8>>,
    dt_word: Signal<Local, Bits<16>>,
    dt_count: Signal<Local, Bits<8>>,
    dabad: Signal<Local, Bits<8>>,
    // Stage one's kind decode and range checks (registered as `c_*`, and combined into the
    // detail's source `r_det_*`).
    dk_tick: Signal<Local, Bit>,
    dk_batch: Signal<Local, Bit>,
    dk_terms: Signal<Local, Bit>,
    dk_group: Signal<Local, Bit>,
    dk_params: Signal<Local, Bit>,
    dw2_asset: Signal<Local, Bit>,
    dw2_acct_ge: Signal<Local, Bit>,
    dw2_acct_gt: Signal<Local, Bit>,
    dw2_group_ge: Signal<Local, Bit>,
    dw3_bad: Signal<Local, Bit>,
    dext_bad: Signal<Local, Bit>,
    dend_bad: Signal<Local, Bit>,
    // Fields of the collected entry (e0, e1) as Check and the programs use them.
    w0: Signal<Local, Bits<32>>,
    w1: Signal<Local, Bits<32>>,
    w2: Signal<Local, Bits<32>>,
    w3: Signal<Local, Bits<32>>,
    flags: Signal<Local, Bits<8>>,
    zero7: Signal<Local, Bit>,
    zero4: Signal<Local, Bit>,
    zero3: Signal<Local, Bit>,
    zero2: Signal<Local, Bit>,
    t_asset: Signal<Local, Bits<16>>,
    ok_prices: Signal<Local, Bit>,
    ok_terms: Signal<Local, Bit>,
    ok_other: Signal<Local, Bit>,
    last_cmd: Signal<Local, Bit>,
    is_scan: Signal<Local, Bit>,
    // The term program's word: 11 bits, so rust-hdl and the Verilog wrap alike.
    tw_word: Signal<Local, Bits<11>>,
    // The state's next value is Issue (into the `iss_*` copies).
    to_issue: Signal<Local, Bit>,
}

impl Logic for CmdDecoder {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            state,
            prog,
            e0,
            e1,
            e2,
            e3,
            e4,
            e5,
            e6,
            e7,
            exp_seq,
            stale,
            errs,
            err_take,
            count,
            j_kind,
            j_seq,
            j_arg,
            j_detail,
            j_refresh,
            step,
            scan_asset,
            scan_full,
            slot,
            slot_end,
            t_last,
            tc0,
            tc1,
            tc2,
            tc3,
            tc4,
            tc5,
            tc6,
            tc7,
            ta,
            iss_c0,
            iss_c1,
            iss_c2,
            iss_c3,
            iss_c4,
            iss_c5,
            iss_c6,
            iss_c7,
            iss_a,
            c_bad,
            c_seq_gap,
            c_w2_asset,
            c_w2_acct_ge,
            c_w2_acct_gt,
            c_w2_group_ge,
            c_w3_bad,
            c_extent_bad,
            c_asset,
            c_tick,
            c_batch,
            c_terms,
            c_group,
            c_fence,
            c_params,
            c_full,
            c_nothing,
            r_hi0,
            r_fl0,
            r_fl1,
            r_z3hi,
            r_z4,
            r_z5,
            r_z6,
            r_z7,
            r_z2,
            r_z3lo,
            r_zw2,
            r_zw3,
            r_w2hi0,
            r_w3top0,
            r_cnt_le8,
            r_junk,
            r_min,
            r_abad,
            r_asset_bad,
            t_end,
            r_end_bad,
            r_det_w2,
            r_det_w3,
            p_arg,
            p_detail,
            p_det_asset,
            p_kind,
            p_prog,
            p_state,
            p_refresh,
            p_scan_asset,
            p_scan_full,
            p_stale_set,
            p_stale_clr
        );
        // The entry's fields as stage two, Check and the programs use them.
        self.w0.next = self.e0.q.val().get_bits::<32>(0);
        self.w1.next = self.e0.q.val().get_bits::<32>(32);
        self.w2.next = self.e1.q.val().get_bits::<32>(0);
        self.w3.next = self.e1.q.val().get_bits::<32>(32);
        self.flags.next = self.w0.val().get_bits::<8>(8);
        // The checks, one cycle early: computed on the entry as it stands once the beat on
        // `cmd_data` is shifted in (`n0..n7`), registered when that beat is the last, and used in
        // Check; the e registers do not move in Check, so these equal the checks of e0..e7.
        self.n0.next = self.e1.q.val();
        self.n1.next = self.e2.q.val();
        self.n2.next = self.e3.q.val();
        self.n3.next = self.e4.q.val();
        self.n4.next = self.e5.q.val();
        self.n5.next = self.e6.q.val();
        self.n6.next = self.e7.q.val();
        self.n7.next = self.cmd_data.val();
        self.dw0.next = self.n0.val().get_bits::<32>(0);
        self.dw1.next = self.n0.val().get_bits::<32>(32);
        self.dw2.next = self.n1.val().get_bits::<32>(0);
        self.dw3.next = self.n1.val().get_bits::<32>(32);
        self.dkind.next = self.dw0.val().get_bits::<8>(0);
        self.dflags.next = self.dw0.val().get_bits::<8>(8);
        // AccountTerms and SetGroup fields: word (first), count (len); their end is `t_end`,
        // added a beat earlier.
        self.dt_word.next = self.dw3.val().get_bits::<16>(0);
        self.dt_count.next = self.dw3.val().get_bits::<8>(16);
        self.dk_tick.next = self.dkind.val() == K_TICK;
        self.dk_batch.next = self.dkind.val() == K_BATCH_TICK;
        self.dk_terms.next = self.dkind.val() == K_ACCOUNT_TERMS;
        self.dk_group.next = self.dkind.val() == K_SET_GROUP;
        self.dk_params.next = self.dkind.val() == K_PARAMS;
        self.dw2_asset.next = self.dw2.val() >= ASSET_LIMIT;
        self.dw2_acct_ge.next = self.dw2.val() >= ACCOUNT_LIMIT;
        self.dw2_acct_gt.next = self.dw2.val() > ACCOUNT_LIMIT;
        self.dw2_group_ge.next = self.dw2.val() >= GROUP_LIMIT;
        self.dw3_bad.next = (self.dw3.val() == 0) | (self.dw3.val() > SLOTS);
        self.dext_bad.next = (self.dt_word.val() >= WORD_LIMIT) | (self.dt_count.val() > SLOTS);
        self.dend_bad.next = self.t_end.q.val() > WORD_LIMIT;
        // Per term, its asset beyond the price table (`r_abad`, and their OR `r_asset_bad`).
        self.dabad.next = bit_cast::<8, 1>((self.n6.val().get_bits::<16>(0) >= ASSET_LIMIT).into())
            | (bit_cast::<8, 1>((self.n6.val().get_bits::<16>(16) >= ASSET_LIMIT).into()) << 1)
            | (bit_cast::<8, 1>((self.n6.val().get_bits::<16>(32) >= ASSET_LIMIT).into()) << 2)
            | (bit_cast::<8, 1>((self.n6.val().get_bits::<16>(48) >= ASSET_LIMIT).into()) << 3)
            | (bit_cast::<8, 1>((self.n7.val().get_bits::<16>(0) >= ASSET_LIMIT).into()) << 4)
            | (bit_cast::<8, 1>((self.n7.val().get_bits::<16>(16) >= ASSET_LIMIT).into()) << 5)
            | (bit_cast::<8, 1>((self.n7.val().get_bits::<16>(32) >= ASSET_LIMIT).into()) << 6)
            | (bit_cast::<8, 1>((self.n7.val().get_bits::<16>(48) >= ASSET_LIMIT).into()) << 7);
        // Stage one, registered with the last beat.
        if (self.state.q.val() == DecodeState::Collect) & self.cmd_valid.val() & self.cmd_last.val() {
            self.c_seq_gap.d.next = self.dw1.val() != self.exp_seq.q.val();
            self.c_w2_asset.d.next = self.dw2_asset.val();
            self.c_w2_acct_ge.d.next = self.dw2_acct_ge.val();
            self.c_w2_acct_gt.d.next = self.dw2_acct_gt.val();
            self.c_w2_group_ge.d.next = self.dw2_group_ge.val();
            self.c_w3_bad.d.next = self.dw3_bad.val();
            self.c_extent_bad.d.next = self.dext_bad.val();
            self.c_tick.d.next = self.dk_tick.val();
            self.c_batch.d.next = self.dk_batch.val();
            self.c_terms.d.next = self.dk_terms.val();
            self.c_group.d.next = self.dk_group.val();
            self.c_fence.d.next = self.dkind.val() == K_FENCE;
            self.c_params.d.next = self.dk_params.val();
            self.c_full.d.next = self.dkind.val() == K_SCAN_FULL;
            self.c_nothing.d.next = self.dt_count.val() == 0;
            self.r_hi0.d.next = self.dw0.val().get_bits::<16>(16) == 0;
            self.r_fl0.d.next = self.dflags.val() == 0;
            self.r_fl1.d.next = self.dflags.val() == 1;
            self.r_z3hi.d.next = self.n3.val().get_bits::<32>(32) == 0;
            self.r_z4.d.next = self.n4.val() == 0;
            self.r_z5.d.next = self.n5.val() == 0;
            self.r_z6.d.next = self.n6.val() == 0;
            self.r_z7.d.next = self.n7.val() == 0;
            self.r_z2.d.next = self.n2.val() == 0;
            self.r_z3lo.d.next = self.n3.val().get_bits::<32>(0) == 0;
            self.r_zw2.d.next = self.dw2.val() == 0;
            self.r_zw3.d.next = self.dw3.val() == 0;
            self.r_w2hi0.d.next = self.dw2.val().get_bits::<16>(16) == 0;
            self.r_w3top0.d.next = self.dw3.val().get_bits::<8>(24) == 0;
            self.r_cnt_le8.d.next = self.dt_count.val() <= 8;
            self.r_end_bad.d.next = self.dend_bad.val();
            // The detail's source (stage two's checks, kind by kind, in their order): word 2
            // when a kind's first check, on word 2, fails; word 3 when its check on word 3 or the
            // extent fails (word 2 wins when both do, as in stage two).
            self.r_det_w2.d.next = ((self.dk_tick.val() | self.dk_batch.val()) & self.dw2_asset.val())
                | (self.dk_params.val() & self.dw2_acct_gt.val())
                | (self.dk_terms.val() & self.dw2_acct_ge.val())
                | (self.dk_group.val() & self.dw2_group_ge.val());
            self.r_det_w3.d.next = (self.dk_params.val() & self.dw3_bad.val())
                | (self.dk_terms.val() & self.dend_bad.val())
                | (self.dk_group.val() & (self.dend_bad.val() | self.dext_bad.val()));
            // Term k (coefficient in words 4..11, asset in the halves of words 12..15): set at
            // or beyond `count` (junk), coefficient i32::MIN, asset beyond the price table.
            self.r_junk.d.next = bit_cast::<8, 1>(
                ((self.dt_count.val() <= 0)
                    & ((self.n2.val().get_bits::<32>(0) != 0) | (self.n6.val().get_bits::<16>(0) != 0)))
                    .into(),
            ) | (bit_cast::<8, 1>(
                ((self.dt_count.val() <= 1)
                    & ((self.n2.val().get_bits::<32>(32) != 0) | (self.n6.val().get_bits::<16>(16) != 0)))
                    .into(),
            ) << 1)
                | (bit_cast::<8, 1>(
                    ((self.dt_count.val() <= 2)
                        & ((self.n3.val().get_bits::<32>(0) != 0) | (self.n6.val().get_bits::<16>(32) != 0)))
                        .into(),
                ) << 2)
                | (bit_cast::<8, 1>(
                    ((self.dt_count.val() <= 3)
                        & ((self.n3.val().get_bits::<32>(32) != 0)
                            | (self.n6.val().get_bits::<16>(48) != 0)))
                        .into(),
                ) << 3)
                | (bit_cast::<8, 1>(
                    ((self.dt_count.val() <= 4)
                        & ((self.n4.val().get_bits::<32>(0) != 0) | (self.n7.val().get_bits::<16>(0) != 0)))
                        .into(),
                ) << 4)
                | (bit_cast::<8, 1>(
                    ((self.dt_count.val() <= 5)
                        & ((self.n4.val().get_bits::<32>(32) != 0)
                            | (self.n7.val().get_bits::<16>(16) != 0)))
                        .into(),
                ) << 5)
                | (bit_cast::<8, 1>(
                    ((self.dt_count.val() <= 6)
                        & ((self.n5.val().get_bits::<32>(0) != 0) | (self.n7.val().get_bits::<16>(32) != 0)))
                        .into(),
                ) << 6)
                | (bit_cast::<8, 1>(
                    ((self.dt_count.val() <= 7)
                        & ((self.n5.val().get_bits::<32>(32) != 0)
                            | (self.n7.val().get_bits::<16>(48) != 0)))
                        .into(),
                ) << 7);
            self.r_min.d.next = bit_cast::<8, 1>((self.n2.val().get_bits::<32>(0) == COEFF_I32_MIN).into())
                | (bit_cast::<8, 1>((self.n2.val().get_bits::<32>(32) == COEFF_I32_MIN).into()) << 1)
                | (bit_cast::<8, 1>((self.n3.val().get_bits::<32>(0) == COEFF_I32_MIN).into()) << 2)
                | (bit_cast::<8, 1>((self.n3.val().get_bits::<32>(32) == COEFF_I32_MIN).into()) << 3)
                | (bit_cast::<8, 1>((self.n4.val().get_bits::<32>(0) == COEFF_I32_MIN).into()) << 4)
                | (bit_cast::<8, 1>((self.n4.val().get_bits::<32>(32) == COEFF_I32_MIN).into()) << 5)
                | (bit_cast::<8, 1>((self.n5.val().get_bits::<32>(0) == COEFF_I32_MIN).into()) << 6)
                | (bit_cast::<8, 1>((self.n5.val().get_bits::<32>(32) == COEFF_I32_MIN).into()) << 7);
            self.r_abad.d.next = self.dabad.val();
            self.r_asset_bad.d.next = self.dabad.val() != 0;
        }
        // Stage two, every cycle from stage one's registers (which move only with a last beat,
        // so these are current from Flags on): does the entry decode? (Command::decode_words's
        // rules, kind by kind: each kind's rule ANDed with its kind, the rules ORed.) The words
        // from 7 (4, 3, 2) on all zero; unused terms are zero (the junk bits), so the first
        // asset out of range among all eight is the first among the used ones.
        self.zero7.next = self.r_z3hi.q.val()
            & self.r_z4.q.val()
            & self.r_z5.q.val()
            & self.r_z6.q.val()
            & self.r_z7.q.val();
        self.zero4.next = self.zero7.val() & self.r_z2.q.val() & self.r_z3lo.q.val();
        self.zero3.next = self.zero4.val() & self.r_zw3.q.val();
        self.zero2.next = self.zero3.val() & self.r_zw2.q.val();
        self.ok_prices.next = (self.c_tick.q.val() | self.c_batch.q.val())
            & (self.r_fl0.q.val() | (self.r_fl1.q.val() & self.c_batch.q.val()))
            & self.zero7.val()
            & self.r_w2hi0.q.val();
        self.ok_terms.next = self.c_terms.q.val()
            & self.r_w3top0.q.val()
            & self.r_cnt_le8.q.val()
            & (self.r_junk.q.val() == 0)
            & (self.r_min.q.val() == 0);
        self.ok_other.next = (self.c_fence.q.val() & self.zero3.val())
            | ((self.c_params.q.val() | (self.c_group.q.val() & self.r_w3top0.q.val())) & self.zero4.val())
            | (self.c_full.q.val() & self.zero2.val());
        self.c_bad.d.next = !(self.r_hi0.q.val()
            & (self.ok_prices.val() | (self.r_fl0.q.val() & (self.ok_terms.val() | self.ok_other.val()))));
        // Last to first, so the first one wins (the entry is in e6, e7 from Flags on).
        self.t_asset.next = 0.into();
        if self.r_abad.q.val().get_bit(7) {
            self.t_asset.next = self.e7.q.val().get_bits::<16>(48);
        }
        if self.r_abad.q.val().get_bit(6) {
            self.t_asset.next = self.e7.q.val().get_bits::<16>(32);
        }
        if self.r_abad.q.val().get_bit(5) {
            self.t_asset.next = self.e7.q.val().get_bits::<16>(16);
        }
        if self.r_abad.q.val().get_bit(4) {
            self.t_asset.next = self.e7.q.val().get_bits::<16>(0);
        }
        if self.r_abad.q.val().get_bit(3) {
            self.t_asset.next = self.e6.q.val().get_bits::<16>(48);
        }
        if self.r_abad.q.val().get_bit(2) {
            self.t_asset.next = self.e6.q.val().get_bits::<16>(32);
        }
        if self.r_abad.q.val().get_bit(1) {
            self.t_asset.next = self.e6.q.val().get_bits::<16>(16);
        }
        if self.r_abad.q.val().get_bit(0) {
            self.t_asset.next = self.e6.q.val().get_bits::<16>(0);
        }
        self.c_asset.d.next = self.t_asset.val();
        // The entry's outcome when it decodes and its sequence number is the expected one (the
        // kinds are one-hot), registered here so that Check only chooses between it and the two
        // errors that come first (does not decode, sequence gap).
        self.end_bad.next = self.r_end_bad.q.val();
        self.asset_bad.next = self.r_asset_bad.q.val();
        // The detail: word 2, word 3 or 0, one LUT per bit from registers (the kinds' checks
        // that pick it are stage one's `r_det_*`); 0 for an outcome that is not an error.
        self.p_detail.d.next = 0.into();
        if self.r_det_w3.q.val() {
            self.p_detail.d.next = self.w3.val();
        }
        if self.r_det_w2.q.val() {
            self.p_detail.d.next = self.w2.val();
        }
        self.p_arg.d.next = 0.into();
        self.p_det_asset.d.next = false;
        self.p_kind.d.next = job_kind::ERROR.into();
        self.p_prog.d.next = Program::None;
        self.p_state.d.next = DecodeState::Job;
        self.p_refresh.d.next = false;
        self.p_scan_asset.d.next = false;
        self.p_scan_full.d.next = false;
        self.p_stale_set.d.next = false;
        self.p_stale_clr.d.next = false;
        if self.c_tick.q.val() | self.c_batch.q.val() {
            if self.c_w2_asset.q.val() {
                self.p_arg.d.next = E_ASSET_RANGE.into();
            } else {
                self.p_prog.d.next = Program::Prices;
                self.p_arg.d.next = self.w2.val();
                if self.c_tick.q.val() {
                    self.p_kind.d.next = job_kind::TICK.into();
                    self.p_scan_asset.d.next = true;
                    self.p_scan_full.d.next = self.stale.q.val();
                    self.p_refresh.d.next = self.stale.q.val();
                    self.p_stale_clr.d.next = true;
                } else if self.flags.val().get_bit(0) {
                    self.p_kind.d.next = job_kind::FULL.into();
                    self.p_arg.d.next = 0.into();
                    self.p_scan_full.d.next = true;
                    self.p_stale_clr.d.next = true;
                } else {
                    self.p_state.d.next = DecodeState::Issue;
                }
            }
        }
        if self.c_full.q.val() {
            self.p_prog.d.next = Program::Full;
            self.p_kind.d.next = job_kind::FULL.into();
            self.p_stale_clr.d.next = true;
        }
        if self.c_fence.q.val() {
            self.p_kind.d.next = job_kind::FENCE.into();
            self.p_arg.d.next = self.w2.val();
        }
        if self.c_params.q.val() {
            if self.c_w2_acct_gt.q.val() | self.c_w3_bad.q.val() {
                self.p_arg.d.next = E_PARAMS_RANGE.into();
            } else {
                self.p_prog.d.next = Program::Params;
                self.p_state.d.next = DecodeState::Issue;
            }
        }
        if self.c_terms.q.val() {
            if self.c_w2_acct_ge.q.val() {
                self.p_arg.d.next = E_ACCOUNT_RANGE.into();
            } else if self.end_bad.val() {
                self.p_arg.d.next = E_SLOT_RANGE.into();
            } else if self.asset_bad.val() {
                self.p_arg.d.next = E_ASSET_RANGE.into();
                self.p_det_asset.d.next = true;
            } else {
                self.p_stale_set.d.next = true;
                self.p_prog.d.next = Program::Terms;
                self.p_state.d.next = DecodeState::Issue;
                if self.c_nothing.q.val() {
                    // Nothing to write.
                    self.p_prog.d.next = Program::None;
                    self.p_state.d.next = DecodeState::Collect;
                }
            }
        }
        if self.c_group.q.val() {
            if self.c_w2_group_ge.q.val() {
                self.p_arg.d.next = E_ACCOUNT_RANGE.into();
            } else if self.end_bad.val() | self.c_extent_bad.q.val() {
                self.p_arg.d.next = E_SLOT_RANGE.into();
            } else {
                self.p_stale_set.d.next = true;
                self.p_prog.d.next = Program::Group;
                self.p_state.d.next = DecodeState::Issue;
            }
        }

        self.tw_word.next = self.w3.val().get_bits::<11>(0) + bit_cast::<11, 5>(self.slot.q.val());
        // Core command of the current program step.
        self.core_valid.next = false;
        self.core_op.next = op::NOP.into();
        self.core_addr.next = 0.into();
        self.core_sub.next = 0.into();
        self.core_data0.next = 0.into();
        self.core_data1.next = 0.into();
        self.last_cmd.next = true;
        self.is_scan.next = false;
        match self.prog.q.val() {
            Program::None => {}
            Program::Prices => {
                self.core_addr.next = self.w2.val().get_bits::<16>(0);
                if self.step.q.val() == 0 {
                    self.core_op.next = op::SET_PRICE.into();
                    self.core_data0.next = self.w3.val();
                    self.core_data1.next = self.e2.q.val().get_bits::<32>(32);
                    self.last_cmd.next = false;
                }
                if self.step.q.val() == 1 {
                    self.core_op.next = op::SET_PRICE.into();
                    self.core_sub.next = 1.into();
                    self.core_data0.next = self.e2.q.val().get_bits::<32>(0);
                    self.core_data1.next = self.e3.q.val().get_bits::<32>(0);
                    self.last_cmd.next = !self.scan_asset.q.val() & !self.scan_full.q.val();
                }
                if self.step.q.val() == 2 {
                    self.is_scan.next = true;
                    if self.scan_asset.q.val() {
                        self.core_op.next = op::SCAN_ASSET.into();
                        self.last_cmd.next = !self.scan_full.q.val();
                    } else {
                        self.core_op.next = op::SCAN_FULL.into();
                        self.core_addr.next = 0.into();
                    }
                }
                if self.step.q.val() == 3 {
                    self.is_scan.next = true;
                    self.core_op.next = op::SCAN_FULL.into();
                    self.core_addr.next = 0.into();
                }
            }
            Program::Terms => {
                self.core_op.next = op::WRITE_TERM.into();
                self.core_addr.next = self.w2.val().get_bits::<16>(0);
                self.core_sub.next = 0.into();
                self.core_data0.next = self.tc0.q.val();
                self.core_data1.next = bit_cast::<32, 16>(self.ta.q.val().get_bits::<16>(0))
                    | (bit_cast::<32, 11>(self.tw_word.val()) << TW_WORD_SHIFT);
                self.last_cmd.next = self.t_last.q.val();
            }
            Program::Group => {
                self.core_op.next = op::SET_GROUP.into();
                self.core_addr.next = self.w2.val().get_bits::<16>(0);
                self.core_sub.next = self.w3.val().get_bits::<8>(16);
                self.core_data0.next = bit_cast::<32, 16>(self.w3.val().get_bits::<16>(0));
            }
            Program::Params => {
                self.core_op.next = op::SET_PARAMS.into();
                self.core_data0.next = self.w2.val();
                self.core_data1.next = self.w3.val();
            }
            Program::Full => {
                self.core_op.next = op::SCAN_FULL.into();
                self.is_scan.next = true;
            }
        }
        self.scan_start.next = false;
        self.cmd_ready.next = false;
        self.job_valid.next = false;
        self.err_take.d.next = false;
        if self.err_take.q.val() {
            self.errs.d.next = self.errs.q.val() | self.j_arg.q.val();
        }

        match self.state.q.val() {
            DecodeState::Collect => {
                self.cmd_ready.next = true;
                if self.cmd_valid.val() {
                    self.e7.d.next = self.cmd_data.val();
                    self.e6.d.next = self.e7.q.val();
                    self.e5.d.next = self.e6.q.val();
                    self.e4.d.next = self.e5.q.val();
                    self.e3.d.next = self.e4.q.val();
                    self.e2.d.next = self.e3.q.val();
                    self.t_end.d.next = bit_cast::<17, 16>(self.e3.q.val().get_bits::<16>(32))
                        + bit_cast::<17, 8>(self.e3.q.val().get_bits::<8>(48));
                    self.e1.d.next = self.e2.q.val();
                    self.e0.d.next = self.e1.q.val();
                    if self.cmd_last.val() {
                        self.count.d.next = self.count.q.val() + 1;
                        self.state.d.next = DecodeState::Flags;
                    }
                }
            }
            DecodeState::Flags => {
                self.state.d.next = DecodeState::Check;
            }
            DecodeState::Check => {
                self.j_seq.d.next = self.w1.val();
                self.step.d.next = 0.into();
                self.slot.d.next = 0.into();
                self.slot_end.d.next = self.w3.val().get_bits::<5>(16);
                self.t_last.d.next = self.w3.val().get_bits::<5>(16) == 1;
                self.j_kind.d.next = job_kind::ERROR.into();
                self.j_refresh.d.next = false;
                self.prog.d.next = Program::None;
                self.scan_asset.d.next = false;
                self.scan_full.d.next = false;
                self.state.d.next = DecodeState::Job;
                if self.c_bad.q.val() {
                    self.j_arg.d.next = E_BAD_ENTRY.into();
                    self.j_detail.d.next = self.w0.val();
                } else if self.c_seq_gap.q.val() {
                    self.j_arg.d.next = E_SEQ_GAP.into();
                    self.j_detail.d.next = self.exp_seq.q.val();
                    self.exp_seq.d.next = self.w1.val() + 1;
                } else {
                    self.exp_seq.d.next = self.w1.val() + 1;
                    self.j_arg.d.next = self.p_arg.q.val();
                    self.j_detail.d.next = self.p_detail.q.val();
                    if self.p_det_asset.q.val() {
                        self.j_detail.d.next = bit_cast::<32, 16>(self.c_asset.q.val());
                    }
                    self.j_kind.d.next = self.p_kind.q.val();
                    self.j_refresh.d.next = self.p_refresh.q.val();
                    self.prog.d.next = self.p_prog.q.val();
                    self.scan_asset.d.next = self.p_scan_asset.q.val();
                    self.scan_full.d.next = self.p_scan_full.q.val();
                    self.state.d.next = self.p_state.q.val();
                    if self.p_stale_set.q.val() {
                        self.stale.d.next = true;
                    }
                    if self.p_stale_clr.q.val() {
                        self.stale.d.next = false;
                    }
                }
            }
            DecodeState::Job => {
                self.job_valid.next = true;
                if self.job_ready.val() {
                    // Error bits into `errs` in the next cycle (`err_take`).
                    self.err_take.d.next = self.j_kind.q.val() == job_kind::ERROR;
                    self.state.d.next = DecodeState::Collect;
                    if self.prog.q.val() != Program::None {
                        self.state.d.next = DecodeState::Issue;
                    }
                }
            }
            DecodeState::Issue => {
                self.core_valid.next = true;
                if self.core_ready.val() {
                    self.step.d.next = self.step.q.val() + 1;
                    if (self.step.q.val() == 2) & !self.scan_asset.q.val() {
                        self.step.d.next = 3.into();
                    }
                    self.slot.d.next = self.slot.q.val() + 1;
                    self.t_last.d.next = (self.slot.q.val() + 2) == self.slot_end.q.val();
                    if self.last_cmd.val() {
                        self.scan_start.next = self.is_scan.val();
                        self.state.d.next = DecodeState::Collect;
                    }
                }
            }
        }
        // The term program's shift registers: loaded from the entry in every state but Issue
        // (the entry stands still from its last beat until Issue, so they hold it when Issue
        // starts), shifted in Issue as the core takes a command. Each register's enable and
        // select see its own flop (`iss_*`, the state is Issue) and the core's ready, not the
        // state decode.
        if self.iss_c0.q.val() {
            if self.core_ready.val() {
                self.tc0.d.next = self.tc1.q.val();
            }
        } else {
            self.tc0.d.next = self.e2.q.val().get_bits::<32>(0);
        }
        if self.iss_c1.q.val() {
            if self.core_ready.val() {
                self.tc1.d.next = self.tc2.q.val();
            }
        } else {
            self.tc1.d.next = self.e2.q.val().get_bits::<32>(32);
        }
        if self.iss_c2.q.val() {
            if self.core_ready.val() {
                self.tc2.d.next = self.tc3.q.val();
            }
        } else {
            self.tc2.d.next = self.e3.q.val().get_bits::<32>(0);
        }
        if self.iss_c3.q.val() {
            if self.core_ready.val() {
                self.tc3.d.next = self.tc4.q.val();
            }
        } else {
            self.tc3.d.next = self.e3.q.val().get_bits::<32>(32);
        }
        if self.iss_c4.q.val() {
            if self.core_ready.val() {
                self.tc4.d.next = self.tc5.q.val();
            }
        } else {
            self.tc4.d.next = self.e4.q.val().get_bits::<32>(0);
        }
        if self.iss_c5.q.val() {
            if self.core_ready.val() {
                self.tc5.d.next = self.tc6.q.val();
            }
        } else {
            self.tc5.d.next = self.e4.q.val().get_bits::<32>(32);
        }
        if self.iss_c6.q.val() {
            if self.core_ready.val() {
                self.tc6.d.next = self.tc7.q.val();
            }
        } else {
            self.tc6.d.next = self.e5.q.val().get_bits::<32>(0);
        }
        if self.iss_c7.q.val() {
            if self.core_ready.val() {
                self.tc7.d.next = 0.into();
            }
        } else {
            self.tc7.d.next = self.e5.q.val().get_bits::<32>(32);
        }
        if self.iss_a.q.val() {
            if self.core_ready.val() {
                self.ta.d.next = self.ta.q.val() >> 16;
            }
        } else {
            self.ta.d.next =
                bit_cast::<128, 64>(self.e6.q.val()) | (bit_cast::<128, 64>(self.e7.q.val()) << 64);
        }
        self.job_kind.next = self.j_kind.q.val();
        self.job_seq.next = self.j_seq.q.val();
        self.job_arg.next = self.j_arg.q.val();
        self.job_detail.next = self.j_detail.q.val();
        self.job_refresh.next = self.j_refresh.q.val();
        self.errors.next = self.errs.q.val();
        if self.err_take.q.val() {
            self.errors.next = self.errs.q.val() | self.j_arg.q.val();
        }
        self.entries.next = self.count.q.val();
        if self.reset.val() {
            self.state.d.next = DecodeState::Collect;
            self.exp_seq.d.next = 0.into();
            self.errs.d.next = 0.into();
            self.err_take.d.next = false;
            self.count.d.next = 0.into();
        }
        // After every assignment of `state` above: its value at the edge, into each copy.
        self.to_issue.next = self.state.d.val() == DecodeState::Issue;
        self.iss_c0.d.next = self.to_issue.val();
        self.iss_c1.d.next = self.to_issue.val();
        self.iss_c2.d.next = self.to_issue.val();
        self.iss_c3.d.next = self.to_issue.val();
        self.iss_c4.d.next = self.to_issue.val();
        self.iss_c5.d.next = self.to_issue.val();
        self.iss_c6.d.next = self.to_issue.val();
        self.iss_c7.d.next = self.to_issue.val();
        self.iss_a.d.next = self.to_issue.val();
    }
}
