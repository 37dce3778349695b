//! The scan core: command port in, bitmap words out, registers on the side.
//!
//! ```text
//!            cmd_* ──> sequencer ──(group, slot)──> term memory[l] ──(asset, sign)──> price table[l]
//!                        │  │                         (per lane)                      (spot, stressed)
//!                        │  └─ exposure index (asset x group bits, incremental mode)        │
//!                        │                                                                  v
//!                        │                              MAC lane[l]: 6 multipliers (Karatsuba), columns, +-acc, carry, sign
//!                        │                                                                  │
//!                        └─ done marker ── control delay line ──> packer ──> out FIFO ──> out_*
//!  reg_* <──> register block (identity, scratch, errors, statistics, soft reset)
//! ```
//!
//! Lane `l` holds accounts `g * LANES + l`; every issue cycle reads slot `s` of group `g` in all
//! lanes at once. Term memory word: bit 31 sign, bits 30:0 magnitude (the coefficient is turned
//! into sign-magnitude when written); a separate memory holds the asset index. The price table
//! is replicated per lane (each lane reads a different asset), addressed by (asset, sign).
//!
//! Each lane's memories and the registers around them are a [`LaneMem`] module, which registers
//! the write bus before writing; between the sequencer and the lanes the write bus passes two
//! more registers: the `wb_*` registers right after the decode, then a node of a tree with one
//! node per four lanes ([`WriteFan`]), which also carries the read address and the lanes'
//! control bits. So a price or term write accepted in cycle `c` (into the command register)
//! reaches its block RAM at the clock edge ending cycle `c + 4`. That is safe: the earliest
//! read after it, of a scan accepted in cycle `c + 1`, reads the term memory after the edge
//! ending `c + 5` (the walk starts 4 cycles after acceptance, see [`crate::golden::throughput`],
//! then the buffer, the issuer, the tree's and the lane's registers of the read address) and
//! the price table two cycles later; and a write never
//! comes before an earlier scan's last read (the drain state). The memories' models return the
//! new word on a read of the address written in the same cycle ([`crate::core::ram`]), so the
//! tests would see a read that relied on either order.
//!
//! Commands are taken into a command register (`cmd_ready`: the sequencer will be idle in the
//! next cycle) and decoded from it in the next cycle.
//!
//! Commands (one per cycle while `cmd_ready`; see [`crate::golden::CoreCmd`] and
//! [`crate::golden::cmd_fields`] for the port encoding): set price, write term, set params,
//! full scan, incremental scan. A scan issues `slots` cycles per group; an incremental scan
//! probes the exposure index one group per cycle and scans only the groups exposed to the
//! asset. Each scanned group yields one output word (`out_done` low), and each scan ends with
//! one done marker (`out_done` high). Throughput and latency: [`crate::golden::throughput`].
//! Golden model: [`crate::golden::CoreModel`].
//!
//! Inputs: `clock`; `reset` (synchronous, registered: it acts at the clock edge after the one that samples it, and `cmd_ready` is low meanwhile); `cmd_valid`, `cmd_op`, `cmd_addr`, `cmd_sub`,
//! `cmd_data0`, `cmd_data1` (command); `out_ready` (consumer takes the head word); `reg_addr`,
//! `reg_write`, `reg_wdata` (register access).
//!
//! Outputs: `cmd_ready`; `out_valid`, `out_done`, `out_group`, `out_breach`, `out_at_risk`
//! (head of the output FIFO); `reg_rdata`; `busy`.

use crate::abi::config::*;
use crate::abi::regs::error_bit;
use crate::core::fanout::{FAN_LANES, FANS, WriteFan};
use crate::core::fifo::OutFifo;
use crate::core::lane_mem::LaneMem;
use crate::core::mac_lane::MacLane;
use crate::core::packer::BitmapPacker;
use crate::core::ram::{SyncRam, SyncRamReg};
use crate::core::regs::{REG_ADDR_BITS, RegBlock};
use crate::golden::{WORD_SHIFT, op};
use rust_hdl::prelude::*;

pub use crate::core::lane_mem::{PRICE_ADDR_BITS, TERM_ADDR_BITS};
/// Exposure index words per asset: 32 groups per word.
pub const XWORD_BITS: usize = GROUP_BITS - 5;
/// Exposure index address bits: asset and word.
pub const EXPO_ADDR_BITS: usize = CARD_ASSET_BITS + XWORD_BITS;
/// Stages of the control delay line: issue -> packer (the kernel names the last one, 14).
pub const CTL_STAGES: usize = 15;
const _: () = assert!(CTL_STAGES == 15);
const SH_ASSET: u64 = CARD_ASSET_BITS as u64;
const SH_ACCOUNT: u64 = CORE_ACCOUNT_BITS as u64;
const SH_ACCOUNT_ABOVE: u64 = CORE_ACCOUNT_BITS as u64 + 1;
const SH_SLOT_ABOVE: u64 = SLOT_BITS as u64 + 1;
const SH_GROUP: u64 = GROUP_BITS as u64;
const SH_TERM_WORD: u64 = TERM_WORD_BITS as u64;
/// Above a term write's word address in `cmd_data1` (bits 26:16).
const SH_WORD_ABOVE: u64 = WORD_SHIFT as u64 + TERM_WORD_BITS as u64;
const WORD_LSB: usize = WORD_SHIFT as usize;
const LEN_LSB: usize = TERM_WORD_BITS;
const ASSET_HI_LSB: usize = CARD_ASSET_BITS;
/// Bits of the loader's group counter: one more than a group index, so it reaches `GROUPS`.
pub const GA_BITS: usize = GROUP_BITS + 1;
/// A group table entry: first word in bits 10:0, length in bits 15:11.
pub const EXTENT_BITS: usize = 16;
const _: () = assert!(TERM_WORD_BITS == 11 && SLOT_BITS == 4 && UNPACKED_GROUPS == 128 && GROUP_BITS == 9);
const _: () = assert!(CARD_ASSET_BITS == 8, "a term write's asset is bits 7:0 of data1, 15:8 zero");

const _: () = assert!(GROUP_BITS >= 5, "the exposure index packs 32 groups per word");
// The range checks test the bits above these widths.
const _: () = assert!(CARD_ASSETS == 1 << CARD_ASSET_BITS && CORE_ACCOUNTS == 1 << CORE_ACCOUNT_BITS);
const _: () = assert!(TERM_SLOTS == 1 << SLOT_BITS);
const SH_XWORD: u64 = XWORD_BITS as u64;
// The lanes index their register tree node as `l / 4` (a literal, see `fanout`).
const _: () = assert!(FAN_LANES == 4);
const XWORD_LSB: usize = LANE_BITS + 5;

const ST_IDLE: u64 = 0;
const ST_WALK: u64 = 1;
const ST_PROBE: u64 = 2;
const ST_DONE: u64 = 5;
const ST_DRAIN: u64 = 6;
const ST_PWAIT: u64 = 7;
const ST_PLOAD: u64 = 8;
const ST_XREAD: u64 = 9;
const ST_XWAIT: u64 = 10;
const ST_XWRITE: u64 = 11;

/// See the module docs.
#[derive(LogicBlock)]
pub struct ScanCore {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// A command is on the command port.
    pub cmd_valid: Signal<In, Bit>,
    /// The core takes the command this cycle.
    pub cmd_ready: Signal<Out, Bit>,
    /// Opcode ([`crate::golden::op`]).
    pub cmd_op: Signal<In, Bits<3>>,
    /// Asset or account index.
    pub cmd_addr: Signal<In, Bits<16>>,
    /// Slot or price side.
    pub cmd_sub: Signal<In, Bits<8>>,
    /// Price (spot) / coefficient / active accounts.
    pub cmd_data0: Signal<In, Bits<32>>,
    /// Price (stressed) / asset / active slots.
    pub cmd_data1: Signal<In, Bits<32>>,
    /// A word or done marker is on the output port.
    pub out_valid: Signal<Out, Bit>,
    /// The consumer takes it.
    pub out_ready: Signal<In, Bit>,
    /// Done marker.
    pub out_done: Signal<Out, Bit>,
    /// Group of the word.
    pub out_group: Signal<Out, Bits<GROUP_BITS>>,
    /// Breach bits of the group.
    pub out_breach: Signal<Out, Bits<LANES>>,
    /// At-risk bits of the group.
    pub out_at_risk: Signal<Out, Bits<LANES>>,
    /// Register byte offset.
    pub reg_addr: Signal<In, Bits<REG_ADDR_BITS>>,
    /// Register write strobe.
    pub reg_write: Signal<In, Bit>,
    /// Register write data.
    pub reg_wdata: Signal<In, Bits<32>>,
    /// Register read data ([`crate::core::regs::READ_LATENCY`] cycles after the address).
    pub reg_rdata: Signal<Out, Bits<32>>,
    /// The sequencer is busy.
    pub busy: Signal<Out, Bit>,
    // Blocks.
    lanes: [MacLane; LANES],
    lmem: [LaneMem; LANES],
    // The register tree between the sequencer and the lanes (write bus, lane control).
    wfan: [WriteFan; FANS],
    exposure: SyncRam<Bits<32>, EXPO_ADDR_BITS>,
    // The group table: per group its extent XOR the power-on layout's
    // (`golden::unpacked_extent`), so the block RAM's zeros read as that layout. Read with
    // the block RAM's output register, from a registered address (`pa`).
    gtab: SyncRamReg<Bits<EXTENT_BITS>, GROUP_BITS>,
    pack_breach: BitmapPacker<LANES>,
    pack_at_risk: BitmapPacker<LANES>,
    fifo: OutFifo<LANES>,
    regs: RegBlock,
    // The core's reset (the `reset` input or the register block's soft reset), registered: one
    // flip-flop drives every reset and clock enable it takes part in (runs 27 and 28's critical
    // paths: the soft reset pulse -> the OR with `reset` -> two more LUTs across the die -> the
    // enable of the parameter registers, and -> the sticky error bits; 7.76 to 8.94 ns of
    // routing).
    rst: DFF<Bit>,
    // The decode's error bits, registered before the register block's sticky bits.
    err_r: DFF<Bits<16>>,
    // Sequencer state.
    state: DFF<Bits<4>>,
    // Exposure walker: current word (shifted as groups pass), the next word, word index, bit.
    xw: DFF<Bits<32>>,
    xw_buf: DFF<Bits<32>>,
    x_word: DFF<Bits<XWORD_BITS>>,
    x_bit: DFF<Bits<5>>,
    asset: DFF<Bits<CARD_ASSET_BITS>>,
    drain: DFF<Bits<3>>,
    p_accounts: DFF<Bits<16>>,
    p_slots: DFF<Bits<8>>,
    // `p_groups - 1` and `p_groups == 0`, so the loader's end test `ga == p_groups` is kept in
    // a register (`ga_end`) updated as `ga` steps (run 4's critical path was a compare through
    // a carry chain into the issue logic).
    p_groups_m1: DFF<Bits<GA_BITS>>,
    groups_zero: DFF<Bit>,
    // The loader: the group whose table entry is at the head of the prefetch queue (`ga`),
    // whether the walk has passed the last active group, and a one-entry buffer of the next
    // group to scan (`nx_*`: group, first word, words to walk, that count is 1).
    ga: DFF<Bits<GA_BITS>>,
    ga_end: DFF<Bit>,
    // The table's prefetch (run P1's critical path was the table's output -> the loader's
    // decision -> the table's next read address): `pa` the next group to read, a read's valid
    // bit and group one and two cycles on (`rd*`, `rg*`; the entry is on the table's output
    // in the second), and a three-entry queue of entries read (`f*`: valid, first word,
    // words to walk, that count is not zero), whose head is group `ga`'s entry.
    pa: DFF<Bits<GROUP_BITS>>,
    rd1: DFF<Bit>,
    rd2: DFF<Bit>,
    rg1: DFF<Bits<GROUP_BITS>>,
    rg2: DFF<Bits<GROUP_BITS>>,
    f0_v: DFF<Bit>,
    f0_first: DFF<Bits<TERM_ADDR_BITS>>,
    f0_len: DFF<Bits<5>>,
    f0_nz: DFF<Bit>,
    f1_v: DFF<Bit>,
    f1_first: DFF<Bits<TERM_ADDR_BITS>>,
    f1_len: DFF<Bits<5>>,
    f1_nz: DFF<Bit>,
    f2_v: DFF<Bit>,
    f2_first: DFF<Bits<TERM_ADDR_BITS>>,
    f2_len: DFF<Bits<5>>,
    f2_nz: DFF<Bit>,
    full: DFF<Bit>,
    nx_valid: DFF<Bit>,
    nx_group: DFF<Bits<GROUP_BITS>>,
    nx_first: DFF<Bits<TERM_ADDR_BITS>>,
    nx_len: DFF<Bits<5>>,
    nx_one: DFF<Bit>,
    // The issuer: the group being issued, its next word, the words left, first/last flags.
    cur_active: DFF<Bit>,
    cur_group: DFF<Bits<GROUP_BITS>>,
    cur_word: DFF<Bits<TERM_ADDR_BITS>>,
    cur_left: DFF<Bits<5>>,
    cur_first: DFF<Bit>,
    cur_last: DFF<Bit>,
    // A group table write, registered after the decode.
    gt_we: DFF<Bit>,
    gt_addr: DFF<Bits<GROUP_BITS>>,
    gt_data: DFF<Bits<EXTENT_BITS>>,
    // The command register: the port's command is taken into it (when the sequencer will be
    // idle in the next cycle) and decoded from it in the next cycle, so no decode logic
    // sits behind the long route from the command port (runs 16 and 20: the checks of a term
    // write or of the parameters, from the board shell's command register).
    c_valid: DFF<Bit>,
    c_op: DFF<Bits<3>>,
    c_addr: DFF<Bits<16>>,
    c_sub: DFF<Bits<8>>,
    c_data0: DFF<Bits<32>>,
    c_data1: DFF<Bits<32>>,
    // The command register's copy for the write bus: the same fields, loaded in the same
    // cycles; emitted as kept modules (`verilog::keep_lane_hierarchy`) so that yosys does not
    // merge them with the decode's copy (`c_*`).
    cb_addr: DFF<Bits<16>>,
    cb_sub: DFF<Bits<8>>,
    cb_data0: DFF<Bits<32>>,
    cb_data1: DFF<Bits<32>>,
    // The range checks' wide parts, registered from the port's fields with the command register
    // (`cf_*`, loaded in the same cycles as `c_*`): the decode sees one flag per check, not
    // the OR or compare of up to 32 bits in front of the state's and the error's selects.
    // `cf_d0_sign`: data0 is i32::MIN; `cf_d0_any`: data0 is not 0; `cf_d0_tw`: data0 above a
    // term word address; `cf_d0_acct`: data0 above CORE_ACCOUNTS; `cf_d1_word`: data1 above a
    // term write's word address; `cf_d1_asset`: data1's bits 15:8 not 0; `cf_d1_params`: data1
    // 0 or above TERM_SLOTS; `cf_sub_slot`: sub above TERM_SLOTS; `cf_addr_*`: addr at or above
    // CARD_ASSETS, CORE_ACCOUNTS, GROUPS.
    cf_d0_sign: DFF<Bit>,
    cf_d0_any: DFF<Bit>,
    cf_d0_tw: DFF<Bit>,
    cf_d0_acct: DFF<Bit>,
    cf_d1_word: DFF<Bit>,
    cf_d1_asset: DFF<Bit>,
    cf_d1_params: DFF<Bit>,
    cf_sub_slot: DFF<Bit>,
    cf_addr_asset: DFF<Bit>,
    cf_addr_acct: DFF<Bit>,
    cf_addr_group: DFF<Bit>,
    // The write bus, registered after the decode (see `update`).
    wb_price: DFF<Bit>,
    wb_price_addr: DFF<Bits<PRICE_ADDR_BITS>>,
    wb_spot: DFF<Bits<32>>,
    wb_stressed: DFF<Bits<32>>,
    wb_term: DFF<Bit>,
    wb_term_lane: DFF<Bits<LANE_BITS>>,
    wb_term_addr: DFF<Bits<TERM_ADDR_BITS>>,
    wb_coeff: DFF<Bits<32>>,
    wb_term_paddr: DFF<Bits<PRICE_ADDR_BITS>>,
    // Candidate parameters and their commit strobe (see `update`).
    np_accounts: DFF<Bits<16>>,
    np_slots: DFF<Bits<8>>,
    np_groups_m1: DFF<Bits<GA_BITS>>,
    np_groups_zero: DFF<Bit>,
    params_commit: DFF<Bit>,
    // Issue registers: ctl = {done, last, first, valid}.
    iss_ctl: DFF<Bits<4>>,
    iss_group: DFF<Bits<GROUP_BITS>>,
    // Control delay line.
    ctl: [DFF<Bits<4>>; CTL_STAGES],
    grp: [DFF<Bits<GROUP_BITS>>; CTL_STAGES],
    // Combinational helpers.
    core_reset: Signal<Local, Bit>,
    accept: Signal<Local, Bit>,
    ready: Signal<Local, Bit>,
    busy_op: Signal<Local, Bit>,
    stall: Signal<Local, Bit>,
    issue: Signal<Local, Bit>,
    take: Signal<Local, Bit>,
    ga_next: Signal<Local, Bits<GA_BITS>>,
    adv: Signal<Local, Bit>,
    ext: Signal<Local, Bits<EXTENT_BITS>>,
    ext_len: Signal<Local, Bits<5>>,
    len_eff: Signal<Local, Bits<5>>,
    gt_default: Signal<Local, Bits<EXTENT_BITS>>,
    rg_default: Signal<Local, Bits<EXTENT_BITS>>,
    sv0: Signal<Local, Bit>,
    sv1: Signal<Local, Bit>,
    occ: Signal<Local, Bits<3>>,
    prefetch: Signal<Local, Bit>,
    errs: Signal<Local, Bits<16>>,
    neg_coeff: Signal<Local, Bits<32>>,
    groups_sum: Signal<Local, Bits<32>>,
    k_slots: Constant<Bits<8>>,
    k_sign: Constant<Bits<32>>,
    k_round: Constant<Bits<32>>,
    e_opcode: Constant<Bits<16>>,
    e_account: Constant<Bits<16>>,
    e_slot: Constant<Bits<16>>,
    e_asset: Constant<Bits<16>>,
    e_params: Constant<Bits<16>>,
    e_coeff: Constant<Bits<16>>,
}

fn k<T: Synth + From<u64>>(v: u64) -> Constant<T> {
    Constant::new(T::from(v))
}

impl ScanCore {
    /// A core whose `BUILD_ID` register reads `build_id`.
    pub fn new(build_id: u32) -> Self {
        Self {
            clock: Default::default(),
            reset: Default::default(),
            cmd_valid: Default::default(),
            cmd_ready: Default::default(),
            cmd_op: Default::default(),
            cmd_addr: Default::default(),
            cmd_sub: Default::default(),
            cmd_data0: Default::default(),
            cmd_data1: Default::default(),
            out_valid: Default::default(),
            out_ready: Default::default(),
            out_done: Default::default(),
            out_group: Default::default(),
            out_breach: Default::default(),
            out_at_risk: Default::default(),
            reg_addr: Default::default(),
            reg_write: Default::default(),
            reg_wdata: Default::default(),
            reg_rdata: Default::default(),
            busy: Default::default(),
            lanes: std::array::from_fn(|_| Default::default()),
            lmem: std::array::from_fn(|_| Default::default()),
            wfan: std::array::from_fn(|_| Default::default()),
            exposure: Default::default(),
            gtab: Default::default(),
            pack_breach: Default::default(),
            pack_at_risk: Default::default(),
            fifo: Default::default(),
            regs: RegBlock::new(build_id),
            rst: Default::default(),
            err_r: Default::default(),
            state: Default::default(),
            xw: Default::default(),
            xw_buf: Default::default(),
            x_word: Default::default(),
            x_bit: Default::default(),
            asset: Default::default(),
            drain: Default::default(),
            p_accounts: Default::default(),
            p_slots: DFF::default(),
            ga: Default::default(),
            ga_end: Default::default(),
            pa: Default::default(),
            rd1: Default::default(),
            rd2: Default::default(),
            rg1: Default::default(),
            rg2: Default::default(),
            f0_v: Default::default(),
            f0_first: Default::default(),
            f0_len: Default::default(),
            f0_nz: Default::default(),
            f1_v: Default::default(),
            f1_first: Default::default(),
            f1_len: Default::default(),
            f1_nz: Default::default(),
            f2_v: Default::default(),
            f2_first: Default::default(),
            f2_len: Default::default(),
            f2_nz: Default::default(),
            full: Default::default(),
            nx_valid: Default::default(),
            nx_group: Default::default(),
            nx_first: Default::default(),
            nx_len: Default::default(),
            nx_one: Default::default(),
            cur_active: Default::default(),
            cur_group: Default::default(),
            cur_word: Default::default(),
            cur_left: Default::default(),
            cur_first: Default::default(),
            cur_last: Default::default(),
            gt_we: Default::default(),
            gt_addr: Default::default(),
            gt_data: Default::default(),
            p_groups_m1: Default::default(),
            groups_zero: Default::default(),
            c_valid: Default::default(),
            c_op: Default::default(),
            c_addr: Default::default(),
            c_sub: Default::default(),
            c_data0: Default::default(),
            c_data1: Default::default(),
            cb_addr: Default::default(),
            cb_sub: Default::default(),
            cb_data0: Default::default(),
            cb_data1: Default::default(),
            cf_d0_sign: Default::default(),
            cf_d0_any: Default::default(),
            cf_d0_tw: Default::default(),
            cf_d0_acct: Default::default(),
            cf_d1_word: Default::default(),
            cf_d1_asset: Default::default(),
            cf_d1_params: Default::default(),
            cf_sub_slot: Default::default(),
            cf_addr_asset: Default::default(),
            cf_addr_acct: Default::default(),
            cf_addr_group: Default::default(),
            wb_price: Default::default(),
            wb_price_addr: Default::default(),
            wb_spot: Default::default(),
            wb_stressed: Default::default(),
            wb_term: Default::default(),
            wb_term_lane: Default::default(),
            wb_term_addr: Default::default(),
            wb_coeff: Default::default(),
            wb_term_paddr: Default::default(),
            np_accounts: Default::default(),
            np_slots: Default::default(),
            np_groups_m1: Default::default(),
            np_groups_zero: Default::default(),
            params_commit: Default::default(),
            iss_ctl: Default::default(),
            iss_group: Default::default(),
            ctl: std::array::from_fn(|_| Default::default()),
            grp: std::array::from_fn(|_| Default::default()),
            core_reset: Default::default(),
            accept: Default::default(),
            ready: Default::default(),
            busy_op: Default::default(),
            stall: Default::default(),
            issue: Default::default(),
            take: Default::default(),
            ga_next: Default::default(),
            adv: Default::default(),
            ext: Default::default(),
            ext_len: Default::default(),
            len_eff: Default::default(),
            gt_default: Default::default(),
            rg_default: Default::default(),
            sv0: Default::default(),
            sv1: Default::default(),
            occ: Default::default(),
            prefetch: Default::default(),
            errs: Default::default(),
            neg_coeff: Default::default(),
            groups_sum: Default::default(),
            k_slots: k(TERM_SLOTS as u64),
            k_sign: k(1 << 31),
            k_round: k(LANES as u64 - 1),
            e_opcode: k(error_bit::BAD_OPCODE as u64),
            e_account: k(error_bit::ACCOUNT_RANGE as u64),
            e_slot: k(error_bit::SLOT_RANGE as u64),
            e_asset: k(error_bit::ASSET_RANGE as u64),
            e_params: k(error_bit::PARAMS_RANGE as u64),
            e_coeff: k(error_bit::COEFF_RANGE as u64),
        }
    }

    /// Reads a term memory word directly (test access): (sign-magnitude coefficient, price
    /// address) of word `word` in the lane of `account`.
    pub fn peek_term(&self, account: usize, word: usize) -> (u32, u32) {
        self.lmem[account % LANES].peek_term(word)
    }
}

impl Default for ScanCore {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Logic for ScanCore {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(
            self,
            clock,
            rst,
            err_r,
            state,
            xw,
            xw_buf,
            x_word,
            x_bit,
            asset,
            drain,
            p_accounts,
            p_slots,
            p_groups_m1,
            groups_zero,
            ga,
            ga_end,
            pa,
            rd1,
            rd2,
            rg1,
            rg2,
            f0_v,
            f0_first,
            f0_len,
            f0_nz,
            f1_v,
            f1_first,
            f1_len,
            f1_nz,
            f2_v,
            f2_first,
            f2_len,
            f2_nz,
            full,
            nx_valid,
            nx_group,
            nx_first,
            nx_len,
            nx_one,
            cur_active,
            cur_group,
            cur_word,
            cur_left,
            cur_first,
            cur_last,
            gt_we,
            gt_addr,
            gt_data,
            iss_ctl,
            iss_group,
            c_valid,
            c_op,
            c_addr,
            c_sub,
            c_data0,
            c_data1,
            cb_addr,
            cb_sub,
            cb_data0,
            cb_data1,
            cf_d0_sign,
            cf_d0_any,
            cf_d0_tw,
            cf_d0_acct,
            cf_d1_word,
            cf_d1_asset,
            cf_d1_params,
            cf_sub_slot,
            cf_addr_asset,
            cf_addr_acct,
            cf_addr_group,
            wb_price,
            wb_price_addr,
            wb_spot,
            wb_stressed,
            wb_term,
            wb_term_lane,
            wb_term_addr,
            wb_coeff,
            wb_term_paddr,
            np_accounts,
            np_slots,
            np_groups_m1,
            np_groups_zero,
            params_commit
        );
        clock!(self, clock, exposure, gtab, fifo, regs);
        for l in 0..LANES {
            self.lanes[l].clock.next = self.clock.val();
            self.lmem[l].clock.next = self.clock.val();
        }
        for f in 0..FANS {
            self.wfan[f].clock.next = self.clock.val();
        }
        for i in 0..CTL_STAGES {
            self.ctl[i].clock.next = self.clock.val();
            self.grp[i].clock.next = self.clock.val();
        }
        self.rst.d.next = self.reset.val() | self.regs.soft_reset.val();
        self.core_reset.next = self.rst.q.val();

        // ---- Command acceptance and writes ----
        // `accept`: the command register's command is processed (the sequencer is idle, which it
        // always is when the register holds a command). The port is ready when the sequencer
        // is idle in the next cycle: it is idle now and the command being processed cannot make
        // it busy (a term write, which may start the exposure update, or a scan), or it is in
        // the last cycle of the exposure update or of the drain. So the command register never
        // holds a command back and loads the port's fields in every cycle, with no clock
        // enable (run 22's critical path: the state register -> ready -> the command register's
        // enable, 9.88 ns).
        self.busy_op.next = (self.c_op.q.val() == op::WRITE_TERM)
            | (self.c_op.q.val() == op::SET_PARAMS)
            | (self.c_op.q.val() == op::SET_GROUP)
            | (self.c_op.q.val() == op::SCAN_FULL)
            | (self.c_op.q.val() == op::SCAN_ASSET);
        self.ready.next = ((self.state.q.val() == ST_IDLE) & !(self.c_valid.q.val() & self.busy_op.val()))
            | (self.state.q.val() == ST_XWRITE)
            | ((self.state.q.val() == ST_DRAIN) & (self.drain.q.val() == 1));
        self.cmd_ready.next = self.ready.val() & !self.core_reset.val();
        self.busy.next = (self.state.q.val() != ST_IDLE) | self.c_valid.q.val();
        self.accept.next = self.c_valid.q.val() & (self.state.q.val() == ST_IDLE) & !self.core_reset.val();
        self.c_valid.d.next = self.cmd_valid.val() & self.ready.val() & !self.core_reset.val();
        self.c_op.d.next = self.cmd_op.val();
        self.c_addr.d.next = self.cmd_addr.val();
        self.c_sub.d.next = self.cmd_sub.val();
        self.c_data0.d.next = self.cmd_data0.val();
        self.c_data1.d.next = self.cmd_data1.val();
        self.cb_addr.d.next = self.cmd_addr.val();
        self.cb_sub.d.next = self.cmd_sub.val();
        self.cb_data0.d.next = self.cmd_data0.val();
        self.cb_data1.d.next = self.cmd_data1.val();
        self.cf_d0_sign.d.next = self.cmd_data0.val() == self.k_sign.val();
        self.cf_d0_any.d.next = self.cmd_data0.val().any();
        self.cf_d0_tw.d.next = (self.cmd_data0.val() >> SH_TERM_WORD).any();
        // `x > 2^n` as `x >> (n + 1) != 0 or (bit n and any bit below n)`.
        self.cf_d0_acct.d.next = (self.cmd_data0.val() >> SH_ACCOUNT_ABOVE).any()
            | (self.cmd_data0.val().get_bit(CORE_ACCOUNT_BITS)
                & self.cmd_data0.val().get_bits::<CORE_ACCOUNT_BITS>(0).any());
        self.cf_d1_word.d.next = (self.cmd_data1.val() >> SH_WORD_ABOVE).any();
        self.cf_d1_asset.d.next = self.cmd_data1.val().get_bits::<8>(ASSET_HI_LSB).any();
        self.cf_d1_params.d.next = !self.cmd_data1.val().any()
            | (self.cmd_data1.val() >> SH_SLOT_ABOVE).any()
            | (self.cmd_data1.val().get_bit(SLOT_BITS) & self.cmd_data1.val().get_bits::<SLOT_BITS>(0).any());
        self.cf_sub_slot.d.next = (self.cmd_sub.val() >> SH_SLOT_ABOVE).any()
            | (self.cmd_sub.val().get_bit(SLOT_BITS) & self.cmd_sub.val().get_bits::<SLOT_BITS>(0).any());
        self.cf_addr_asset.d.next = (self.cmd_addr.val() >> SH_ASSET).any();
        self.cf_addr_acct.d.next = (self.cmd_addr.val() >> SH_ACCOUNT).any();
        self.cf_addr_group.d.next = (self.cmd_addr.val() >> SH_GROUP).any();
        self.errs.next = 0.into();
        self.neg_coeff.next = bits::<32>(0) - self.cb_data0.q.val();
        self.groups_sum.next = self.c_data0.q.val() + self.k_round.val();
        // The write bus: its fields come from the command register's bus copy (`cb_*`), its
        // strobes from the decode, into the `wb_*` registers; then a node of the register tree
        // (`fanout`) per FAN_LANES lanes registers it, then every lane again (LaneMem) before
        // its memories. So no decode logic sits in front of the long routes to the tree's
        // nodes, and the decode's copy of the command register is not pulled towards them (run
        // 38's critical path: `c_data1`, placed by the bus, -> 4.87 ns of routing -> the
        // parameter checks -> `params_commit`).
        self.wb_price.d.next = false;
        self.wb_price_addr.d.next =
            bit_cast::<PRICE_ADDR_BITS, CARD_ASSET_BITS>(self.cb_addr.q.val().get_bits::<CARD_ASSET_BITS>(0))
                << 1
                | bit_cast::<PRICE_ADDR_BITS, 1>(self.cb_sub.q.val().get_bits::<1>(0));
        self.wb_spot.d.next = self.cb_data0.q.val();
        self.wb_stressed.d.next = self.cb_data1.q.val();
        self.wb_term.d.next = false;
        self.wb_term_lane.d.next = self.cb_addr.q.val().get_bits::<LANE_BITS>(0);
        self.wb_term_addr.d.next = self.cb_data1.q.val().get_bits::<TERM_ADDR_BITS>(WORD_LSB);
        self.wb_coeff.d.next = self.cb_data0.q.val();
        if self.cb_data0.q.val().get_bit(31) {
            self.wb_coeff.d.next = self.neg_coeff.val() | self.k_sign.val();
        }
        self.wb_term_paddr.d.next = bit_cast::<PRICE_ADDR_BITS, CARD_ASSET_BITS>(
            self.cb_data1.q.val().get_bits::<CARD_ASSET_BITS>(0),
        ) << 1
            | bit_cast::<PRICE_ADDR_BITS, 1>(self.cb_data0.q.val().get_bits::<1>(31));
        for f in 0..FANS {
            self.wfan[f].w_price.next = self.wb_price.q.val();
            self.wfan[f].w_price_addr.next = self.wb_price_addr.q.val();
            self.wfan[f].ctl.next = self.ctl[3].q.val();
            // The read address: the issue's source (the issuer's word), so the node holds a
            // copy of what an issue register would.
            self.wfan[f].rd_word.next = self.cur_word.q.val();
            self.wfan[f].w_spot.next = self.wb_spot.q.val();
            self.wfan[f].w_stressed.next = self.wb_stressed.q.val();
            self.wfan[f].w_term.next = self.wb_term.q.val();
            self.wfan[f].w_term_lane.next = self.wb_term_lane.q.val();
            self.wfan[f].w_term_addr.next = self.wb_term_addr.q.val();
            self.wfan[f].w_coeff.next = self.wb_coeff.q.val();
            self.wfan[f].w_term_paddr.next = self.wb_term_paddr.q.val();
        }
        // Parameters: the candidate values load from the command register in every cycle
        // (`np_*`); a valid SET_PARAMS sets `params_commit`, and the parameter registers take
        // the candidates in the next cycle, so the range checks drive one flip-flop, not the
        // enables of every parameter register (runs 20, 25 and 27's critical paths). The
        // port takes no command in that cycle (SET_PARAMS is one of `busy_op`).
        self.np_accounts.d.next = self.c_data0.q.val().get_bits::<16>(0);
        self.np_slots.d.next = self.c_data1.q.val().get_bits::<8>(0);
        self.np_groups_m1.d.next = self.groups_sum.val().get_bits::<GA_BITS>(LANE_BITS) - 1;
        // Accounts 0 is 0 groups (a committed value passed the range check).
        self.np_groups_zero.d.next = self.c_data0.q.val() == 0;
        self.params_commit.d.next = false;
        if self.params_commit.q.val() {
            self.p_accounts.d.next = self.np_accounts.q.val();
            self.p_slots.d.next = self.np_slots.q.val();
            self.p_groups_m1.d.next = self.np_groups_m1.q.val();
            self.groups_zero.d.next = self.np_groups_zero.q.val();
        }
        // The exposure index: address {asset, word} from registers only; the block RAM's output
        // goes straight into a register (its clock-to-out is too slow to feed logic).
        self.exposure.write_enable.next = false;
        self.exposure.read_address.next = bit_cast::<EXPO_ADDR_BITS, CARD_ASSET_BITS>(self.asset.q.val())
            << SH_XWORD
            | bit_cast::<EXPO_ADDR_BITS, XWORD_BITS>(self.x_word.q.val());
        self.exposure.write_address.next = bit_cast::<EXPO_ADDR_BITS, CARD_ASSET_BITS>(self.asset.q.val())
            << SH_XWORD
            | bit_cast::<EXPO_ADDR_BITS, XWORD_BITS>(self.x_word.q.val());
        self.exposure.write_data.next = self.xw_buf.q.val() | (bits::<32>(1) << self.x_bit.q.val());
        self.xw_buf.d.next = self.exposure.read_data.val();

        // The group table. The power-on layout's entry of a group `g` (`golden::unpacked_extent`):
        // first word `16 g` (mod 2048), length 16 for `g < 128`, else 0; an entry is stored
        // XOR it, so the block RAM's zeros read as that layout. A write is registered after
        // the decode (`gt_*`) and lands while the port is held for SET_GROUP's second cycle.
        self.gt_default.next = (bit_cast::<EXTENT_BITS, 7>(self.c_addr.q.val().get_bits::<7>(0)) << 4)
            | (bit_cast::<EXTENT_BITS, 1>((!self.c_addr.q.val().get_bits::<2>(7).any()).into()) << 15);
        self.rg_default.next = (bit_cast::<EXTENT_BITS, 7>(self.rg2.q.val().get_bits::<7>(0)) << 4)
            | (bit_cast::<EXTENT_BITS, 1>((!self.rg2.q.val().get_bits::<2>(7).any()).into()) << 15);
        self.gt_we.d.next = false;
        self.gt_addr.d.next = self.c_addr.q.val().get_bits::<GROUP_BITS>(0);
        self.gt_data.d.next = ((bit_cast::<EXTENT_BITS, 5>(self.c_sub.q.val().get_bits::<5>(0))
            << SH_TERM_WORD)
            | bit_cast::<EXTENT_BITS, TERM_ADDR_BITS>(self.c_data0.q.val().get_bits::<TERM_ADDR_BITS>(0)))
            ^ self.gt_default.val();
        self.gtab.write_enable.next = self.gt_we.q.val();
        self.gtab.write_address.next = self.gt_addr.q.val();
        self.gtab.write_data.next = self.gt_data.q.val();
        // The entry on the table's output (group `rg2`, read from the registered address `pa`
        // two cycles earlier; the block RAM's output register holds it), its length capped by
        // the active slots: what goes into the prefetch queue.
        self.gtab.read_address.next = self.pa.q.val();
        self.ext.next = self.gtab.read_data.val() ^ self.rg_default.val();
        self.ext_len.next = self.ext.val().get_bits::<5>(LEN_LSB);
        self.len_eff.next = self.ext_len.val();
        if self.ext_len.val() > self.p_slots.q.val().get_bits::<5>(0) {
            self.len_eff.next = self.p_slots.q.val().get_bits::<5>(0);
        }

        // ---- Sequencer ----
        // A scan is two stages side by side (`golden::throughput::walk`): the loader steps `ga`
        // through the active groups, one per cycle, skipping a group that is empty or not
        // exposed and putting the next group to scan into the buffer `nx_*` when it is free
        // (or being taken); the issuer issues the current group's words, one per cycle, and
        // takes the buffered group in the cycle of its last word (or when idle).
        self.stall.next = self.fifo.almost_full.val();
        // Outside a walk the prefetch rests at group 0 with an empty queue; a scan's start
        // issues the read of group 0 (`pa` is 0) and moves `pa` on.
        self.prefetch.next = false;
        self.occ.next = 0.into();
        self.sv0.next = false;
        self.sv1.next = false;
        if self.state.q.val() != ST_WALK {
            self.pa.d.next = 0.into();
            self.rd1.d.next = false;
            self.rd2.d.next = false;
            self.f0_v.d.next = false;
            self.f1_v.d.next = false;
            self.f2_v.d.next = false;
        }
        self.issue.next = false;
        self.take.next = false;
        self.ga_next.next = self.ga.q.val();
        self.adv.next = false;
        self.iss_ctl.d.next = 0.into();
        self.iss_group.d.next = self.cur_group.q.val();
        // Range checks against powers of two test the bits above the range (an OR of wires), not
        // a compare through a carry chain (run 11's critical path: a 32-bit compare of
        // cmd_data1 into the state register's enable).
        if self.state.q.val() == ST_IDLE {
            // The exposure index's address registers load from the command port in every idle
            // cycle, for whichever of a term write or an incremental scan the command may be;
            // only the state register waits for the checks. Nothing reads them in the idle
            // state (run 16's critical path: the checks of a term write into `x_word`).
            self.x_bit.d.next = self.c_addr.q.val().get_bits::<5>(LANE_BITS);
            if self.c_op.q.val() == op::SCAN_ASSET {
                self.asset.d.next = self.c_addr.q.val().get_bits::<CARD_ASSET_BITS>(0);
                self.x_word.d.next = 0.into();
            } else {
                self.asset.d.next = self.c_data1.q.val().get_bits::<CARD_ASSET_BITS>(0);
                self.x_word.d.next = self.c_addr.q.val().get_bits::<XWORD_BITS>(XWORD_LSB);
            }
            if self.accept.val() {
                if self.c_op.q.val() == op::SET_PRICE {
                    if self.cf_addr_asset.q.val() {
                        self.errs.next = self.e_asset.val();
                    } else {
                        self.wb_price.d.next = true;
                    }
                } else if self.c_op.q.val() == op::WRITE_TERM {
                    if self.cf_addr_acct.q.val() {
                        self.errs.next = self.e_account.val();
                    } else if self.cf_d1_word.q.val() {
                        self.errs.next = self.e_slot.val();
                    } else if self.cf_d1_asset.q.val() {
                        self.errs.next = self.e_asset.val();
                    } else if self.cf_d0_sign.q.val() {
                        self.errs.next = self.e_coeff.val();
                    } else {
                        self.wb_term.d.next = true;
                        if self.cf_d0_any.q.val() {
                            // Set the exposure bit: read, modify, write (3 busy cycles); the
                            // address registers were loaded above.
                            self.state.d.next = ST_XREAD.into();
                        }
                    }
                } else if self.c_op.q.val() == op::SET_GROUP {
                    if self.cf_addr_group.q.val() {
                        self.errs.next = self.e_account.val();
                    } else if self.cf_d0_tw.q.val() | self.cf_sub_slot.q.val() {
                        self.errs.next = self.e_slot.val();
                    } else {
                        self.gt_we.d.next = true;
                    }
                } else if self.c_op.q.val() == op::SET_PARAMS {
                    if self.cf_d0_acct.q.val() | self.cf_d1_params.q.val() {
                        self.errs.next = self.e_params.val();
                    } else {
                        self.params_commit.d.next = true;
                    }
                } else if self.c_op.q.val() == op::SCAN_FULL {
                    self.pa.d.next = 1.into();
                    self.rd1.d.next = true;
                    self.rg1.d.next = 0.into();
                    self.ga_next.next = 0.into();
                    self.ga_end.d.next = self.groups_zero.q.val();
                    self.nx_valid.d.next = false;
                    self.cur_active.d.next = false;
                    self.full.d.next = true;
                    self.state.d.next = ST_WALK.into();
                } else if self.c_op.q.val() == op::SCAN_ASSET {
                    if self.cf_addr_asset.q.val() {
                        self.errs.next = self.e_asset.val();
                    } else {
                        // `asset` and `x_word` were loaded above.
                        self.state.d.next = ST_PROBE.into();
                    }
                } else if self.c_op.q.val() != op::NOP {
                    self.errs.next = self.e_opcode.val();
                }
            }
        } else if self.state.q.val() == ST_WALK {
            // (The queue's head is valid from the walk's third cycle on, and stays so: a walk of
            // no groups ends there too, as the cycle model has it.)
            if self.ga_end.q.val() & !self.nx_valid.q.val() & !self.cur_active.q.val() & self.f0_v.q.val() {
                self.state.d.next = ST_DONE.into();
            }
            // Issuer.
            if self.cur_active.q.val() {
                if !self.stall.val() {
                    self.issue.next = true;
                    if self.cur_last.q.val() {
                        self.take.next = self.nx_valid.q.val();
                        self.cur_active.d.next = false;
                    } else {
                        self.cur_word.d.next = self.cur_word.q.val() + 1;
                        self.cur_left.d.next = self.cur_left.q.val() - 1;
                        self.cur_last.d.next = self.cur_left.q.val() == 2;
                        self.cur_first.d.next = false;
                    }
                }
            } else {
                self.take.next = self.nx_valid.q.val();
            }
            if self.take.val() {
                self.cur_active.d.next = true;
                self.cur_group.d.next = self.nx_group.q.val();
                self.cur_word.d.next = self.nx_first.q.val();
                self.cur_left.d.next = self.nx_len.q.val();
                self.cur_last.d.next = self.nx_one.q.val();
                self.cur_first.d.next = true;
                self.nx_valid.d.next = false;
            }
            // Loader.
            // Loader: the queue's head is group `ga`'s entry.
            if !self.ga_end.q.val() & self.f0_v.q.val() {
                if !(self.full.q.val() | self.xw.q.val().get_bit(0)) | !self.f0_nz.q.val() {
                    self.adv.next = true;
                } else if !self.nx_valid.q.val() | self.take.val() {
                    self.adv.next = true;
                    self.nx_valid.d.next = true;
                    self.nx_group.d.next = self.ga.q.val().get_bits::<GROUP_BITS>(0);
                    self.nx_first.d.next = self.f0_first.q.val();
                    self.nx_len.d.next = self.f0_len.q.val();
                    self.nx_one.d.next = self.f0_len.q.val() == 1;
                }
            }
            // Prefetch: a read is issued while the queue's entries after this cycle's pop and
            // the reads under way fit it (so the head never runs dry once filled: three
            // entries cover the two cycles of a read); the entry read two cycles ago joins
            // the queue behind those left after the pop.
            self.occ.next = bit_cast::<3, 1>(self.f0_v.q.val().into())
                + bit_cast::<3, 1>(self.f1_v.q.val().into())
                + bit_cast::<3, 1>(self.f2_v.q.val().into())
                + bit_cast::<3, 1>(self.rd1.q.val().into())
                + bit_cast::<3, 1>(self.rd2.q.val().into());
            self.prefetch.next = (self.occ.val() < 3) | ((self.occ.val() == 3) & self.adv.val());
            self.rd1.d.next = self.prefetch.val();
            self.rd2.d.next = self.rd1.q.val();
            self.rg2.d.next = self.rg1.q.val();
            if self.prefetch.val() {
                self.pa.d.next = self.pa.q.val() + 1;
                self.rg1.d.next = self.pa.q.val();
            }
            self.sv0.next = self.f0_v.q.val();
            self.sv1.next = self.f1_v.q.val();
            if self.adv.val() {
                self.sv0.next = self.f1_v.q.val();
                self.sv1.next = self.f2_v.q.val();
                self.f0_v.d.next = self.f1_v.q.val();
                self.f0_first.d.next = self.f1_first.q.val();
                self.f0_len.d.next = self.f1_len.q.val();
                self.f0_nz.d.next = self.f1_nz.q.val();
                self.f1_v.d.next = self.f2_v.q.val();
                self.f1_first.d.next = self.f2_first.q.val();
                self.f1_len.d.next = self.f2_len.q.val();
                self.f1_nz.d.next = self.f2_nz.q.val();
                self.f2_v.d.next = false;
            }
            if self.rd2.q.val() {
                if !self.sv0.val() {
                    self.f0_v.d.next = true;
                    self.f0_first.d.next = self.ext.val().get_bits::<TERM_ADDR_BITS>(0);
                    self.f0_len.d.next = self.len_eff.val();
                    self.f0_nz.d.next = self.len_eff.val().any();
                } else if !self.sv1.val() {
                    self.f1_v.d.next = true;
                    self.f1_first.d.next = self.ext.val().get_bits::<TERM_ADDR_BITS>(0);
                    self.f1_len.d.next = self.len_eff.val();
                    self.f1_nz.d.next = self.len_eff.val().any();
                } else {
                    self.f2_v.d.next = true;
                    self.f2_first.d.next = self.ext.val().get_bits::<TERM_ADDR_BITS>(0);
                    self.f2_len.d.next = self.len_eff.val();
                    self.f2_nz.d.next = self.len_eff.val().any();
                }
            }
        } else if self.state.q.val() == ST_PROBE {
            // Word 0 is being read; ask for word 1 next.
            self.x_word.d.next = 1.into();
            self.state.d.next = ST_PWAIT.into();
        } else if self.state.q.val() == ST_PWAIT {
            self.state.d.next = ST_PLOAD.into();
        } else if self.state.q.val() == ST_PLOAD {
            // Word 0 is in xw_buf; word 1 follows it there.
            self.xw.d.next = self.xw_buf.q.val();
            self.pa.d.next = 1.into();
            self.rd1.d.next = true;
            self.rg1.d.next = 0.into();
            self.ga_next.next = 0.into();
            self.ga_end.d.next = self.groups_zero.q.val();
            self.nx_valid.d.next = false;
            self.cur_active.d.next = false;
            self.full.d.next = false;
            self.state.d.next = ST_WALK.into();
        } else if self.state.q.val() == ST_XREAD {
            self.state.d.next = ST_XWAIT.into();
        } else if self.state.q.val() == ST_XWAIT {
            self.state.d.next = ST_XWRITE.into();
        } else if self.state.q.val() == ST_XWRITE {
            self.exposure.write_enable.next = true;
            self.state.d.next = ST_IDLE.into();
        } else if self.state.q.val() == ST_DONE {
            self.iss_ctl.d.next = 8.into();
            self.drain.d.next = 4.into();
            self.state.d.next = ST_DRAIN.into();
        } else {
            // ST_DRAIN: let the last price reads pass before the next command can write prices.
            self.drain.d.next = self.drain.q.val() - 1;
            if self.drain.q.val() == 1 {
                self.state.d.next = ST_IDLE.into();
            }
        }
        if self.issue.val() {
            self.iss_ctl.d.next = bits::<4>(1)
                | (bit_cast::<4, 1>(self.cur_first.q.val().into()) << 1)
                | (bit_cast::<4, 1>(self.cur_last.q.val().into()) << 2);
        }
        // The loader's step: the next group, its end test, and the exposure word as groups
        // pass (at a word's end the next one, prefetched).
        if self.adv.val() {
            self.ga_next.next = self.ga.q.val() + 1;
            self.ga_end.d.next = self.ga.q.val() == self.p_groups_m1.q.val();
            if self.ga.q.val().get_bits::<5>(0) == 31 {
                self.xw.d.next = self.xw_buf.q.val();
                self.x_word.d.next = self.x_word.q.val() + 1;
            } else {
                self.xw.d.next = self.xw.q.val() >> 1;
            }
        }
        self.ga.d.next = self.ga_next.val();

        // ---- Datapath: term read, price read, lanes ----
        self.ctl[0].d.next = self.iss_ctl.q.val();
        self.grp[0].d.next = self.iss_group.q.val();
        for i in 1..CTL_STAGES {
            self.ctl[i].d.next = self.ctl[i - 1].q.val();
            self.grp[i].d.next = self.grp[i - 1].q.val();
        }
        for l in 0..LANES {
            // The read address, the lanes' control bits and the write bus come from the lane's
            // node of the register tree (node `l / FAN_LANES`): its read address is a copy of
            // the issuer's word (what an issue register of it would hold), which each lane
            // registers again, and
            // its control copy is the value of `ctl[4]`. So no one register drives every
            // lane's memories (run 19's critical path: the slot counter `s` -> 10.58 ns of
            // routing -> one lane's read address copy).
            self.lmem[l].rd_word.next = self.wfan[l / 4].o_rd_word.val();
            self.lanes[l].valid.next = self.wfan[l / 4].o_ctl.val().get_bit(0);
            self.lanes[l].first.next = self.wfan[l / 4].o_ctl.val().get_bit(1);
            self.lanes[l].last.next = self.wfan[l / 4].o_ctl.val().get_bit(2);
            self.lmem[l].w_price.next = self.wfan[l / 4].o_price.val();
            self.lmem[l].w_price_addr.next = self.wfan[l / 4].o_price_addr.val();
            self.lmem[l].w_spot.next = self.wfan[l / 4].o_spot.val();
            self.lmem[l].w_stressed.next = self.wfan[l / 4].o_stressed.val();
            self.lmem[l].w_term.next = false;
            if self.wfan[l / 4].o_term_lane.val().index() == l {
                self.lmem[l].w_term.next = self.wfan[l / 4].o_term.val();
            }
            self.lmem[l].w_term_addr.next = self.wfan[l / 4].o_term_addr.val();
            self.lmem[l].w_coeff.next = self.wfan[l / 4].o_coeff.val();
            self.lmem[l].w_term_paddr.next = self.wfan[l / 4].o_term_paddr.val();
            self.lanes[l].neg.next = self.lmem[l].neg.val();
            self.lanes[l].mag.next = self.lmem[l].mag.val();
            self.lanes[l].spot.next = self.lmem[l].spot.val();
            self.lanes[l].stressed.next = self.lmem[l].stressed.val();
            self.pack_breach.bits[l].next = self.lanes[l].breach.val();
            self.pack_at_risk.bits[l].next = self.lanes[l].at_risk.val();
        }

        // ---- Output: packer into the FIFO ----
        // A word when the control line says a last term's verdict is out; a marker for done.
        self.fifo.write.next = (self.ctl[14].q.val().get_bit(0) & self.ctl[14].q.val().get_bit(2))
            | self.ctl[14].q.val().get_bit(3);
        self.fifo.in_done.next = self.ctl[14].q.val().get_bit(3);
        self.fifo.in_group.next = self.grp[14].q.val();
        self.fifo.in_breach.next = self.pack_breach.word.val();
        self.fifo.in_at_risk.next = self.pack_at_risk.word.val();
        self.fifo.reset.next = self.core_reset.val();
        self.fifo.out_ready.next = self.out_ready.val();
        self.out_valid.next = self.fifo.out_valid.val();
        self.out_done.next = self.fifo.out_done.val();
        self.out_group.next = self.fifo.out_group.val();
        self.out_breach.next = self.fifo.out_breach.val();
        self.out_at_risk.next = self.fifo.out_at_risk.val();

        // ---- Registers ----
        self.regs.reset.next = self.core_reset.val();
        self.regs.reg_addr.next = self.reg_addr.val();
        self.regs.reg_write.next = self.reg_write.val();
        self.regs.reg_wdata.next = self.reg_wdata.val();
        self.reg_rdata.next = self.regs.reg_rdata.val();
        self.err_r.d.next = self.errs.val();
        self.regs.err_set.next = self.err_r.q.val();
        self.regs.inc_commands.next = self.accept.val();
        self.regs.inc_scans.next = self.iss_ctl.q.val().get_bit(3);
        self.regs.inc_words.next = self.ctl[14].q.val().get_bit(0) & self.ctl[14].q.val().get_bit(2);
        self.regs.busy.next = (self.state.q.val() != ST_IDLE) | self.c_valid.q.val();
        self.regs.active_accounts.next = self.p_accounts.q.val();
        self.regs.active_slots.next = self.p_slots.q.val();
        self.regs.events_pending.next = self.fifo.out_valid.val();

        // ---- Synchronous reset ----
        if self.core_reset.val() {
            self.c_valid.d.next = false;
            self.state.d.next = ST_IDLE.into();
            self.iss_ctl.d.next = 0.into();
            self.wb_price.d.next = false;
            self.wb_term.d.next = false;
            self.params_commit.d.next = false;
            self.p_accounts.d.next = 0.into();
            self.p_slots.d.next = self.k_slots.val();
            self.gt_we.d.next = false;
            self.nx_valid.d.next = false;
            self.cur_active.d.next = false;
            self.p_groups_m1.d.next = bits::<GA_BITS>(0x3FF);
            self.groups_zero.d.next = true;
            for i in 0..CTL_STAGES {
                self.ctl[i].d.next = 0.into();
            }
            for f in 0..FANS {
                self.wfan[f].ctl.next = 0.into();
            }
        }
    }
}
