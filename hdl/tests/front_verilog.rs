//! The front end's generated Verilog, block by block: yosys reads and checks it
//! (`hierarchy -check`, `proc`, `check -assert`: no latches, no undriven or multiply-driven
//! nets) and Verilator lints it (-Wall, waivers listed with their reasons), as
//! `tests/verilog.rs` does for the scan core; then Icarus Verilog runs it in lock step with the
//! rust-hdl simulation: the test drivers of tests/front_sim.rs record every input and every
//! settled output of each cycle, the testbench applies the same inputs to the Verilog, and the
//! outputs must agree cycle by cycle, every port, every bit. `LIQSCAN_VCD=1` writes a
//! waveform. The files are left in target/hdl-tests/front-*.
//!
//! ```text
//!  rust-hdl run (host models, AxiMemory) ──inputs.txt──> iverilog tb + block.v ──outs.txt──┐
//!                                         └──settled outputs per cycle ──────────────────┴─> equal
//! ```

mod front_common;
mod tools;
use front_common::*;
use liqscan_hdl::front::bar_regs::BarRegs;
use liqscan_hdl::front::cmd_decoder::CmdDecoder;
use liqscan_hdl::front::cmd_reader::CmdReader;
use liqscan_hdl::front::evt_packer::EvtPacker;
use liqscan_hdl::front::evt_writer::EvtWriter;
use liqscan_hdl::front::loopback::Loopback;
use rust_hdl::prelude::*;
use std::process::Command;
use tools::{lint, tool, work_dir, yosys};

fn verilog_of<B: Block>(mut uut: B) -> String {
    uut.connect_all();
    liqscan_hdl::core::verilog::generate_block(&uut)
}

#[test]
fn command_reader_verilog_passes_yosys_and_verilator_lint() {
    let v = verilog_of(CmdReader::default());
    assert!(v.contains("axi$arvalid") || v.contains("axi_arvalid"), "the AXI port is on the top module");
    yosys("front-yosys-cmd_reader", &v);
    lint("front-lint-cmd_reader", &v);
}

#[test]
fn event_writer_verilog_passes_yosys_and_verilator_lint() {
    let v = verilog_of(EvtWriter::default());
    yosys("front-yosys-evt_writer", &v);
    lint("front-lint-evt_writer", &v);
}

#[test]
fn loopback_verilog_passes_yosys_and_verilator_lint() {
    let v = verilog_of(Loopback::default());
    yosys("front-yosys-loopback", &v);
    lint("front-lint-loopback", &v);
}

#[test]
fn command_decoder_verilog_passes_yosys_and_verilator_lint() {
    let v = verilog_of(CmdDecoder::default());
    yosys("front-yosys-cmd_decoder", &v);
    lint("front-lint-cmd_decoder", &v);
}

#[test]
fn event_packer_verilog_passes_yosys_and_verilator_lint() {
    let v = verilog_of(EvtPacker::default());
    yosys("front-yosys-evt_packer", &v);
    lint("front-lint-evt_packer", &v);
}

#[test]
fn bar_registers_verilog_passes_yosys_and_verilator_lint() {
    let v = verilog_of(BarRegs::default());
    yosys("front-yosys-bar_regs", &v);
    lint("front-lint-bar_regs", &v);
}

/// The whole card (front end and core): Verilator lint of the Verilog that synthesis reads.
#[test]
fn whole_card_verilog_passes_verilator_lint() {
    // The card's blocks are built on the stack before they are boxed: more than a test
    // thread's 2 MiB.
    let v = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| liqscan_hdl::core::verilog::generate_card(0))
        .unwrap()
        .join()
        .unwrap();
    assert!(v.contains("module top"));
    lint("front-lint-card", &v);
}

/// A testbench applying `inputs.txt` (one line of hex fields per cycle) to `top` and writing
/// the settled outputs of each cycle, before its rising edge, to `outs.txt`.
fn testbench(inputs: &[(&str, usize)], outputs: &[&str]) -> String {
    let decl: String =
        inputs.iter().map(|(n, w)| format!("    reg [{}:0] i_{};\n", w - 1, n.replace('$', "_"))).collect();
    let conn: Vec<String> = inputs
        .iter()
        .map(|(n, _)| format!(".{n}(i_{})", n.replace('$', "_")))
        .chain(outputs.iter().map(|n| format!(".{n}()")))
        .collect();
    let scan_fmt = vec!["%h"; inputs.len()].join(" ");
    let scan_args: Vec<String> = inputs.iter().map(|(n, _)| format!("i_{}", n.replace('$', "_"))).collect();
    let out_fmt = vec!["%h"; outputs.len()].join(" ");
    let out_args: Vec<String> = outputs.iter().map(|n| format!("dut.{n}")).collect();
    format!(
        r#"`timescale 1ns/1ps
module tb;
    parameter VCD = 0;
    reg clock = 0;
{decl}    integer fi, fo, r;
    top dut(.clock(clock), {conn});
    initial begin
        fi = $fopen("inputs.txt", "r");
        fo = $fopen("outs.txt", "w");
        if (VCD) begin $dumpfile("cosim.vcd"); $dumpvars(0, tb); end
        r = $fscanf(fi, "{scan_fmt}\n", {scan_args});
        while (r == {n}) begin
            clock = 0;
            #5;
            $fdisplay(fo, "{out_fmt}", {out_args});
            clock = 1;
            #5;
            r = $fscanf(fi, "{scan_fmt}\n", {scan_args});
        end
        $fclose(fo);
        $finish;
    end
endmodule
"#,
        conn = conn.join(", "),
        scan_args = scan_args.join(", "),
        out_args = out_args.join(", "),
        n = inputs.len(),
    )
}

fn cosim(name: &str, v: &str, tb: &str, trace: &Trace) {
    let d = work_dir(&format!("front-cosim-{name}"));
    std::fs::write(d.join("block.v"), v).unwrap();
    std::fs::write(d.join("tb.v"), tb).unwrap();
    std::fs::write(d.join("inputs.txt"), trace.inputs.join("\n") + "\n").unwrap();
    let vcd = if std::env::var_os("LIQSCAN_VCD").is_some() { 1 } else { 0 };
    let out = Command::new(tool("iverilog"))
        .current_dir(&d)
        .args(["-g2005", "-o", "sim.vvp", &format!("-Ptb.VCD={vcd}"), "-s", "tb", "tb.v", "block.v"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{name}: iverilog failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new("vvp").current_dir(&d).args(["-n", "sim.vvp"]).output().unwrap();
    assert!(run.status.success(), "{name}: vvp failed:\n{}", String::from_utf8_lossy(&run.stderr));
    let got = std::fs::read_to_string(d.join("outs.txt")).unwrap();
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got.len(), trace.outputs.len(), "{name}: cycles simulated");
    for (c, (g, w)) in got.iter().zip(&trace.outputs).enumerate() {
        assert_eq!(g, w, "{name}: outputs at cycle {c} (inputs {})", trace.inputs[c]);
    }
}

#[test]
fn command_reader_verilog_runs_in_lock_step_with_rust_hdl() {
    let mut trace = Trace::default();
    run_reader(12, TIMINGS[1], Some(&mut trace));
    let tb = testbench(
        &[
            ("reset", 1),
            ("doorbell_write", 1),
            ("doorbell", 32),
            ("cmd_ready", 1),
            ("axi$arready", 1),
            ("axi$rvalid", 1),
            ("axi$rdata", 64),
            ("axi$rresp", 2),
            ("axi$rlast", 1),
            ("ring_base", 64),
            ("ring_mask", 32),
        ],
        &[
            "axi$arvalid",
            "axi$araddr",
            "axi$arlen",
            "axi$rready",
            "cmd_valid",
            "cmd_data",
            "cmd_beat",
            "cmd_last",
            "cmd_seq_gap",
            "cmd_expect",
            "consumer",
            "seq_gaps",
            "dma_error",
        ],
    );
    cosim("cmd_reader", &verilog_of(CmdReader::default()), &tb, &trace);
}

#[test]
fn event_writer_verilog_runs_in_lock_step_with_rust_hdl() {
    let mut trace = Trace::default();
    run_writer(23, TIMINGS[2], Some(&mut trace));
    let tb = testbench(
        &[
            ("reset", 1),
            ("ring_base", 64),
            ("ring_mask", 32),
            ("consumer", 32),
            ("evt_valid", 1),
            ("evt_data", 64),
            ("axi$awready", 1),
            ("axi$wready", 1),
            ("axi$bvalid", 1),
            ("axi$bresp", 2),
        ],
        &[
            "evt_ready",
            "axi$awvalid",
            "axi$awaddr",
            "axi$awlen",
            "axi$wvalid",
            "axi$wdata",
            "axi$wlast",
            "axi$bready",
            "producer",
            "ring_full",
            "dma_error",
        ],
    );
    cosim("evt_writer", &verilog_of(EvtWriter::default()), &tb, &trace);
}
