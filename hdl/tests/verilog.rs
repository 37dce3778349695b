//! The generated Verilog, three ways: Verilator lint (-Wall, waivers listed below with their
//! reasons), yosys read and synthesis check, and co-simulation in Icarus Verilog against the
//! golden model and the rust-hdl simulation on the same command vectors, bit for bit.
//! `LIQSCAN_VCD=1` makes the co-simulation write a waveform (target/cosim/cosim.vcd).
//!
//! ```text
//!  Rust: vectors ──> cmds.hex ──> iverilog tb + core.v ──> outs.txt ──┐
//!        golden model ───────────────────────────────────> expected ──┴─> compare
//! ```

mod common;
mod tools;
use common::*;
use liqscan_hdl::abi::*;
use liqscan_hdl::core::driver::*;
use liqscan_hdl::core::verilog;
use liqscan_hdl::golden::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::process::Command;
use tools::{lint, tool, work_dir, yosys};

#[test]
fn verilator_lint_is_clean_but_for_listed_waivers() {
    lint("lint", &verilog::generate(0));
}

#[test]
fn yosys_reads_and_synthesises_the_verilog() {
    yosys("yosys", &verilog::generate(0));
}

const TB: &str = r#"
`timescale 1ns/1ps
module tb;
    reg clock = 0, reset = 1;
    reg cmd_valid = 0; wire cmd_ready;
    reg [2:0] cmd_op; reg [15:0] cmd_addr; reg [7:0] cmd_sub; reg [31:0] cmd_data0, cmd_data1;
    wire out_valid, out_done, busy; reg out_ready = 0;
    wire [{gb}:0] out_group; wire [15:0] out_breach, out_at_risk;
    reg [11:0] reg_addr = 0; reg reg_write = 0; reg [31:0] reg_wdata = 0; wire [31:0] reg_rdata;
    top dut(.clock(clock), .reset(reset), .cmd_valid(cmd_valid), .cmd_ready(cmd_ready), .cmd_op(cmd_op),
        .cmd_addr(cmd_addr), .cmd_sub(cmd_sub), .cmd_data0(cmd_data0), .cmd_data1(cmd_data1),
        .out_valid(out_valid), .out_ready(out_ready), .out_done(out_done), .out_group(out_group),
        .out_breach(out_breach), .out_at_risk(out_at_risk), .reg_addr(reg_addr), .reg_write(reg_write),
        .reg_wdata(reg_wdata), .reg_rdata(reg_rdata), .busy(busy));
    // One line per cycle: {idle, stall, op, addr, sub, data0, data1} as hex fields.
    reg [111:0] vec [0:NVEC-1];
    integer i, fd, cyc, quiet;
    always #5 clock = ~clock;
    initial begin
        $readmemh("cmds.hex", vec);
        fd = $fopen("outs.txt", "w");
        if (VCD) begin $dumpfile("cosim.vcd"); $dumpvars(0, tb); end
        @(posedge clock); @(posedge clock); #1 reset = 0;
        i = 0; cyc = 0; quiet = 0;
        while (i < NVEC || quiet < 24) begin
            if (i < NVEC) begin
                cmd_valid = !vec[i][104];
                {cmd_op, cmd_addr, cmd_sub, cmd_data0, cmd_data1} = vec[i][90:0];
                out_ready = !vec[i][108];
            end else begin
                cmd_valid = 0; out_ready = 1;
            end
            #4;
            if (out_valid && out_ready) $fdisplay(fd, "%0d %0d %0h %0h", out_done, out_group, out_breach, out_at_risk);
            if (cmd_valid && cmd_ready) i = i + 1;
            else if (i < NVEC && !cmd_valid) i = i + 1; // an idle line is used up
            quiet = (busy || out_valid || i < NVEC) ? 0 : quiet + 1;
            @(posedge clock); #1;
            cyc = cyc + 1;
            if (cyc > 2000000) begin $display("TIMEOUT"); $finish; end
        end
        $fclose(fd);
        $finish;
    end
endmodule
"#;

/// Command lines with idle lines (cmd_valid low) and stall flags mixed in.
fn vector_lines(cmds: &[CoreCmd], rng: &mut ChaCha8Rng) -> Vec<String> {
    let mut lines = vec![];
    let line = |idle: bool, stall: bool, c: Option<&CoreCmd>| {
        let (op, addr, sub, d0, d1) = c.map(cmd_fields).unwrap_or_default();
        let low: u128 =
            (op as u128) << 88 | (addr as u128) << 72 | (sub as u128) << 64 | (d0 as u128) << 32 | d1 as u128;
        let v = (stall as u128) << 108 | (idle as u128) << 104 | low;
        format!("{v:028x}")
    };
    for c in cmds {
        while rng.gen_range(0..4) == 0 {
            lines.push(line(true, rng.gen_range(0..3) == 0, None));
        }
        lines.push(line(false, rng.gen_range(0..3) == 0, Some(c)));
    }
    lines
}

fn parse_outs(text: &str) -> Vec<CoreOut> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f[0] == "1" {
                CoreOut::Done
            } else {
                CoreOut::Word {
                    group: f[1].parse().unwrap(),
                    breach: u32::from_str_radix(f[2], 16).unwrap(),
                    at_risk: u32::from_str_radix(f[3], 16).unwrap(),
                }
            }
        })
        .collect()
}

#[test]
fn icarus_cosimulation_matches_model_and_rust_hdl_bit_for_bit() {
    cosimulate("cosim", false);
}

/// The `LIQSCAN_ECP5` branch of the Verilog (DP16KD and MULT18X18D instances, as placed in the
/// bitstream) in Icarus, against behavioural models of the two cells
/// (`hdl/verilog/ecp5_models/ecp5_cells.v`: our reading of the primitives, so this checks the
/// core's wiring of them).
#[test]
fn icarus_cosimulation_of_the_ecp5_cell_branch_matches_bit_for_bit() {
    cosimulate("cosim-ecp5", true);
}

/// Runs the co-simulation vectors through the golden model, the rust-hdl simulation and the
/// Verilog in Icarus (with `ecp5`: the `LIQSCAN_ECP5` branch and the cell models).
fn cosimulate(dir: &str, ecp5: bool) {
    let d = work_dir(dir);
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    // A book with extremes: full 16-term accounts, empty accounts, zero and max prices.
    let assets = 20;
    let mut prices: Vec<PriceEntry> = (0..assets).map(|_| price_entry(&mut rng)).collect();
    prices[2] = PriceEntry {
        spot: QuotedPrice { asset: u32::MAX, liability: u32::MAX },
        stressed: QuotedPrice { asset: 0, liability: u32::MAX },
    };
    let mut accounts: Vec<Vec<Coeff>> = (0..70).map(|_| account(&mut rng, assets, 16)).collect();
    accounts.push(vec![]);
    accounts.push((0..16).map(|a| Coeff { asset: a, coeff: COEFF_MAX }).collect());
    accounts.push((0..16).map(|a| Coeff { asset: a, coeff: COEFF_MIN }).collect());
    accounts.extend(edge_accounts(&prices));
    let mut cmds = load_commands(&accounts, &prices).unwrap();
    cmds.push(CoreCmd::ScanFull);
    for _ in 0..3 {
        let a = rng.gen_range(0..assets);
        prices[a] = price_entry(&mut rng);
        cmds.push(CoreCmd::SetPrice {
            asset: a as u16,
            liability: false,
            spot: prices[a].spot.asset,
            stressed: prices[a].stressed.asset,
        });
        cmds.push(CoreCmd::SetPrice {
            asset: a as u16,
            liability: true,
            spot: prices[a].spot.liability,
            stressed: prices[a].stressed.liability,
        });
        cmds.push(CoreCmd::ScanAsset { asset: a as u16 });
    }
    cmds.push(CoreCmd::SetParams { accounts: accounts.len() as u32, slots: 3 });
    cmds.push(CoreCmd::ScanFull);
    // A packed book over the same memory (groups of 1 to 4 words, group 2 empty), then a
    // group moved: its terms written elsewhere, a scan, the switch, a tick and a scan.
    let mut packed: Vec<Vec<Coeff>> =
        (0..60).map(|i| if i / LANES == 2 { vec![] } else { account(&mut rng, assets, 1 + i % 4) }).collect();
    cmds.extend(liqscan_hdl::core::driver::packed_load_commands(&packed, &prices).unwrap());
    cmds.push(CoreCmd::ScanFull);
    packed[1] = (0..6).map(|a| Coeff { asset: a, coeff: coeff(&mut rng) }).collect();
    let (mv, _) = move_group(&packed, 0, 100);
    cmds.extend_from_slice(&mv[..mv.len() - 1]);
    cmds.push(CoreCmd::ScanFull);
    cmds.push(mv[mv.len() - 1]);
    cmds.push(CoreCmd::ScanAsset { asset: 0 });
    cmds.push(CoreCmd::ScanFull);
    let mut model = CoreModel::new();
    let expected: Vec<CoreOut> = cmds.iter().flat_map(|c| model.apply(c)).collect();
    // The rust-hdl simulation on the same commands.
    let mut sim = CoreSim::new(Jitter { idle: 64, stall: 80, seed: 11 });
    let (outs, _) = sim.run(&cmds);
    let rust_hdl: Vec<CoreOut> = outs.iter().map(|o| o.value).collect();
    assert_eq!(rust_hdl, expected, "rust-hdl simulation vs golden model");
    // The Verilog in Icarus.
    let lines = vector_lines(&cmds, &mut rng);
    std::fs::write(d.join("cmds.hex"), lines.join("\n") + "\n").unwrap();
    std::fs::write(d.join("core.v"), verilog::generate(0)).unwrap();
    let vcd = std::env::var("LIQSCAN_VCD").is_ok_and(|v| v == "1");
    std::fs::write(
        d.join("tb.v"),
        TB.replace("NVEC", &lines.len().to_string())
            .replace("{gb}", &(GROUP_BITS - 1).to_string())
            .replace("VCD", if vcd { "1" } else { "0" }),
    )
    .unwrap();
    let mut args: Vec<String> =
        ["-g2005", "-o", "tb.vvp", "-s", "tb", "tb.v", "core.v"].map(String::from).into();
    if ecp5 {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("verilog/ecp5_models/ecp5_cells.v");
        args.extend(["-DLIQSCAN_ECP5".to_string(), models.display().to_string()]);
    }
    let out = Command::new(tool("iverilog")).current_dir(&d).args(&args).output().unwrap();
    assert!(out.status.success(), "iverilog failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("vvp").current_dir(&d).args(["-n", "tb.vvp"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && !stdout.contains("TIMEOUT") && !stdout.contains("model:"),
        "vvp failed:\n{stdout}"
    );
    let icarus = parse_outs(&std::fs::read_to_string(d.join("outs.txt")).unwrap());
    assert_eq!(icarus.len(), expected.len());
    assert_eq!(icarus, expected, "Icarus co-simulation vs golden model");
    // And the golden model's first full scan equals the reference.
    let first_done = expected.iter().position(|o| *o == CoreOut::Done).unwrap();
    assert_eq!(
        words_from_groups(&expected[..first_done], accounts.len()),
        reference_bitmaps(&accounts, &prices_at_first_scan(&cmds))
    );
}

/// The prices as they were at the first full scan (before the ticks changed them).
fn prices_at_first_scan(cmds: &[CoreCmd]) -> Vec<PriceEntry> {
    let mut p = vec![PriceEntry::default(); CARD_ASSETS];
    for c in cmds {
        match *c {
            CoreCmd::SetPrice { asset, liability, spot, stressed } => {
                let e = &mut p[asset as usize];
                if liability {
                    e.spot.liability = spot;
                    e.stressed.liability = stressed;
                } else {
                    e.spot.asset = spot;
                    e.stressed.asset = stressed;
                }
            }
            CoreCmd::ScanFull => break,
            _ => {}
        }
    }
    p
}
