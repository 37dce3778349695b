//! Verilog generation for the scan core.
//!
//! rust-hdl writes a named constant used inside a kernel (a state number, an opcode, a field
//! offset) as a bare identifier; [`generate`] declares each one as a `localparam` in every
//! module that uses it, with the value from this crate, so the Verilog carries the same
//! numbers as the simulation.

use crate::abi::config::{
    CARD_ACCOUNT_BITS, CARD_ASSET_BITS, CORE_ACCOUNT_BITS, GROUP_BITS, LANE_BITS, SLOT_BITS, TERM_WORD_BITS,
};
use crate::core::mac_lane::COL_BITS;
use crate::core::scan_core::{ScanCore, XWORD_BITS};
use crate::golden::{WORD_SHIFT, op};
use rust_hdl::prelude::*;

/// (identifier, declaration) of every named constant the kernels use.
fn params() -> Vec<(&'static str, String)> {
    let sized =
        |n: &'static str, w: usize, v: u64| (n, format!("localparam [{}:0] {} = {}'d{};", w - 1, n, w, v));
    let int = |n: &'static str, v: usize| (n, format!("localparam integer {n} = {v};"));
    let mut v = vec![
        sized("ST_IDLE", 4, 0),
        sized("ST_WALK", 4, 1),
        sized("ST_PROBE", 4, 2),
        sized("ST_DONE", 4, 5),
        sized("ST_DRAIN", 4, 6),
        sized("ST_PWAIT", 4, 7),
        sized("ST_PLOAD", 4, 8),
        sized("ST_XREAD", 4, 9),
        sized("ST_XWAIT", 4, 10),
        sized("ST_XWRITE", 4, 11),
        sized("op$NOP", 3, op::NOP),
        sized("op$SET_PRICE", 3, op::SET_PRICE),
        sized("op$WRITE_TERM", 3, op::WRITE_TERM),
        sized("op$SET_PARAMS", 3, op::SET_PARAMS),
        sized("op$SCAN_FULL", 3, op::SCAN_FULL),
        sized("op$SCAN_ASSET", 3, op::SCAN_ASSET),
        sized("op$SET_GROUP", 3, op::SET_GROUP),
        int("LANE_BITS", LANE_BITS),
        int("SH_ASSET", CARD_ASSET_BITS),
        int("SH_ACCOUNT", CORE_ACCOUNT_BITS),
        int("SH_SLOT", SLOT_BITS),
        int("SH_ACCOUNT_ABOVE", CORE_ACCOUNT_BITS + 1),
        int("CORE_ACCOUNT_BITS", CORE_ACCOUNT_BITS),
        int("SH_GROUP", GROUP_BITS),
        int("SH_TERM_WORD", TERM_WORD_BITS),
        int("SH_WORD_ABOVE", WORD_SHIFT as usize + TERM_WORD_BITS),
        int("WORD_SHIFT", WORD_SHIFT as usize),
        int("WORD_LSB", WORD_SHIFT as usize),
        int("LEN_LSB", TERM_WORD_BITS),
        int("ASSET_HI_LSB", CARD_ASSET_BITS),
        int("SH_SLOT_ABOVE", SLOT_BITS + 1),
        int("CARD_ACCOUNT_BITS", CARD_ACCOUNT_BITS),
        int("SLOT_BITS", SLOT_BITS),
        int("COL_BITS", COL_BITS),
        int("SH_XWORD", XWORD_BITS),
        int("XWORD_LSB", LANE_BITS + 5),
    ];
    v.extend(front_params());
    v
}

/// The front end's named constants (decoder, packer).
fn front_params() -> Vec<(&'static str, String)> {
    use crate::front::bar_regs as b;
    use crate::front::cmd_decoder::{self as d, job_kind};
    use crate::front::evt_packer as p;
    let sized =
        |n: &'static str, w: usize, v: u64| (n, format!("localparam [{}:0] {} = {}'d{};", w - 1, n, w, v));
    let int = |n: &'static str, v: u64| (n, format!("localparam integer {n} = {v};"));
    vec![
        sized("job_kind$ERROR", 2, job_kind::ERROR),
        sized("job_kind$FENCE", 2, job_kind::FENCE),
        sized("job_kind$TICK", 2, job_kind::TICK),
        sized("job_kind$FULL", 2, job_kind::FULL),
        sized("K_TICK", 8, d::K_TICK),
        sized("K_BATCH_TICK", 8, d::K_BATCH_TICK),
        sized("K_ACCOUNT_TERMS", 8, d::K_ACCOUNT_TERMS),
        sized("K_SET_GROUP", 8, d::K_SET_GROUP),
        sized("K_PARAMS", 8, d::K_PARAMS),
        sized("K_FENCE", 8, d::K_FENCE),
        sized("K_SCAN_FULL", 8, d::K_SCAN_FULL),
        sized("E_BAD_ENTRY", 32, d::E_BAD_ENTRY),
        sized("E_SEQ_GAP", 32, d::E_SEQ_GAP),
        sized("E_ASSET_RANGE", 32, d::E_ASSET_RANGE),
        sized("E_PARAMS_RANGE", 32, d::E_PARAMS_RANGE),
        sized("E_ACCOUNT_RANGE", 32, d::E_ACCOUNT_RANGE),
        sized("SLOTS", 32, d::SLOTS),
        int("TW_WORD_SHIFT", d::TW_WORD_SHIFT),
        sized("E_SLOT_RANGE", 32, d::E_SLOT_RANGE),
        sized("GROUP_LIMIT", 32, d::GROUP_LIMIT),
        sized("WORD_LIMIT", 32, d::WORD_LIMIT),
        sized("COEFF_I32_MIN", 32, d::COEFF_I32_MIN),
        sized("ASSET_LIMIT", 32, d::ASSET_LIMIT),
        sized("ACCOUNT_LIMIT", 32, d::ACCOUNT_LIMIT),
        sized("KIND_BITMAP", 64, p::KIND_BITMAP),
        sized("KIND_CHANGED", 64, p::KIND_CHANGED),
        sized("KIND_SCAN_DONE", 64, p::KIND_SCAN_DONE),
        sized("KIND_SCAN_DONE_INCR", 64, p::KIND_SCAN_DONE_INCR),
        sized("KIND_ERROR", 64, p::KIND_ERROR),
        sized("KIND_FENCE", 64, p::KIND_FENCE),
        sized("CAP_CHANGED", 3, p::CAP_CHANGED),
        sized("CAP_BITMAP", 3, p::CAP_BITMAP),
        sized("SEL_ANSWER", 6, p::SEL_ANSWER),
        sized("SEL_FINAL", 6, p::SEL_FINAL),
        sized("SEL_FINAL_TICK", 6, p::SEL_FINAL_TICK),
        sized("SEL_SLOTS", 6, p::SEL_SLOTS),
        sized("SEL_SLOTS_TICK", 6, p::SEL_SLOTS_TICK),
        sized("SEL_SHIFT", 6, p::SEL_SHIFT),
        sized("LANE_MASK", 32, p::LANE_MASK),
        sized("HALF_MASK", 8, p::HALF_MASK),
        int("HALF_BITS", p::HALF_BITS as u64),
        int("HALF_SHIFT", p::HALF_SHIFT),
        int("SHIFT_LANES", p::SHIFT_LANES),
        sized("O_CMD_ENTRIES", 32, b::O_CMD_ENTRIES),
        sized("O_CMD_ADDR_LO", 32, b::O_CMD_ADDR_LO),
        sized("O_CMD_ADDR_HI", 32, b::O_CMD_ADDR_HI),
        sized("O_DOORBELL", 32, b::O_DOORBELL),
        sized("O_EVT_ADDR_LO", 32, b::O_EVT_ADDR_LO),
        sized("O_EVT_ADDR_HI", 32, b::O_EVT_ADDR_HI),
        sized("O_EVT_ENTRIES", 32, b::O_EVT_ENTRIES),
        sized("O_EVT_CONSUMER", 32, b::O_EVT_CONSUMER),
        sized("O_CONTROL", 32, b::O_CONTROL),
        sized("O_ERRORS", 32, b::O_ERRORS),
        sized("REG_SPACE", 32, b::REG_SPACE),
    ]
}

fn uses(body: &str, ident: &str) -> bool {
    body.match_indices(ident).any(|(i, _)| {
        let before = body[..i].chars().next_back();
        let after = body[i + ident.len()..].chars().next();
        let is_id = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        !is_id(before) && !is_id(after)
    })
}

/// Declares the kernels' named constants in each module of rust-hdl's Verilog.
pub fn add_localparams(v: &str) -> String {
    let params = params();
    let mut out = String::with_capacity(v.len() + 4096);
    for (k, chunk) in v.split("\nmodule ").enumerate() {
        if k > 0 {
            out.push_str("\nmodule ");
        }
        let body_start = chunk.find(");").map(|i| i + 2);
        match body_start {
            Some(b) if k > 0 || chunk.starts_with("module ") => {
                let (head, body) = chunk.split_at(b);
                out.push_str(head);
                out.push('\n');
                for (name, decl) in &params {
                    if uses(body, name) {
                        out.push_str("    ");
                        out.push_str(decl);
                        out.push('\n');
                    }
                }
                out.push_str(body);
            }
            _ => out.push_str(chunk),
        }
    }
    out
}

/// Marks every MAC lane module (`top$lanes$<n>`; `top$core$lanes$<n>` and so on in the whole
/// card), every lane memory module (`top$lmem$<n>`) and
/// every node of the write bus tree (`top$wfan$<n>`, see [`crate::core::fanout`]), every
/// column accumulator of a lane (`top$lanes$<n>$acc_s$<k>`, `top$lanes$<n>$acc_r$<k>`, see
/// [`crate::core::col_acc`]), the command register's bus copy (`top$cb_*`, see
/// [`crate::core::scan_core`]) and, in the whole card, the event packer's entry register
/// selects (`top$packer$sel<n>`), its popcount's copies of the pending word
/// (`top$packer$pcw_b`, `top$packer$pcw_a`, see [`crate::front::evt_packer`]) and the command
/// decoder's copies of its Issue flag (`top$decoder$iss_c<n>`, `top$decoder$iss_a`, see
/// [`crate::front::cmd_decoder`]) `(* keep_hierarchy *)`.
///
/// The lanes all receive the same control bits, so once yosys flattens the design it merges
/// their identical control registers (`opt_merge`) into one copy that drives every lane's
/// accumulators across the die (the critical path of the first 8-lane build: 9.2 ns of routing
/// from one lane's control register to another lane's accumulator). Keeping each lane a module
/// keeps one control pipeline per lane, and likewise one copy per lane of the read address and
/// write bus registers of `LaneMem`; simulators ignore the attribute.
pub fn keep_lane_hierarchy(v: &str) -> String {
    let digits = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    // A lane's column accumulators: `top$lanes$<n>$acc_s$<k>`, `top$lanes$<n>$acc_r$<k>`.
    let column = |n: &str| {
        n.split_once('$').is_some_and(|(lane, rest)| {
            digits(lane)
                && (rest.strip_prefix("acc_s$").is_some_and(digits)
                    || rest.strip_prefix("acc_r$").is_some_and(digits))
        })
    };
    let mut out = String::with_capacity(v.len() + 4096);
    for line in v.split_inclusive('\n') {
        // The core is `top` on its own and `top$core` inside the whole card.
        let name = line.strip_prefix("module top$").map(|n| n.strip_prefix("core$").unwrap_or(n));
        if let Some(rest) = name.and_then(|n| {
            n.strip_prefix("lanes$").or_else(|| n.strip_prefix("lmem$")).or_else(|| n.strip_prefix("wfan$"))
        }) && let Some((n, _)) = rest.split_once('(')
            && (digits(n) || column(n))
        {
            out.push_str("(* keep_hierarchy *)\n");
        } else if name.is_some_and(|n| n.starts_with("cb_")) {
            // The command register's bus copy (see `scan_core`): kept, so not merged with the
            // decode's copy.
            out.push_str("(* keep_hierarchy *)\n");
        } else if let Some(rest) = line.strip_prefix("module top$packer$sel")
            && let Some((n, _)) = rest.split_once('(')
            && digits(n)
        {
            // The packer's entry register selects (see `evt_packer`): one per entry register,
            // kept, so not merged into one flop that drives all eight.
            out.push_str("(* keep_hierarchy *)\n");
        } else if let Some(rest) = line.strip_prefix("module top$decoder$iss_")
            && let Some((n, _)) = rest.split_once('(')
            && (n == "a" || n.strip_prefix('c').is_some_and(digits))
        {
            // The decoder's copies of its Issue flag (see `cmd_decoder`): one per term shift
            // register, kept, so not merged into one flop whose enable drives all nine.
            out.push_str("(* keep_hierarchy *)\n");
        } else if line.starts_with("module top$packer$pcw_b(") || line.starts_with("module top$packer$pcw_a(")
        {
            // The packer's copies of the pending word for its popcount: kept, so not merged
            // with the pending word's registers they copy.
            out.push_str("(* keep_hierarchy *)\n");
        }
        out.push_str(line);
    }
    out
}

/// The scan core's Verilog (top module `top`), `BUILD_ID` reading `build_id`.
pub fn generate(build_id: u32) -> String {
    let mut uut = ScanCore::new(build_id);
    uut.connect_all();
    keep_lane_hierarchy(&add_localparams(&generate_verilog(&uut)))
}

/// The whole card's Verilog (front end and core, top module `top`), `BUILD_ID` reading
/// `build_id`.
pub fn generate_card(build_id: u32) -> String {
    let mut uut = crate::front::card::Card::new(build_id);
    uut.connect_all();
    keep_lane_hierarchy(&add_localparams(&generate_verilog(&uut)))
}

/// The Verilog of any block, with the named constants declared.
pub fn generate_block<B: Block>(uut: &B) -> String {
    add_localparams(&generate_verilog(uut))
}
