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
use liqscan_hdl::front::skid::SkidBuffer;
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

#[test]
fn skid_buffer_verilog_passes_yosys_and_verilator_lint() {
    let v = verilog_of(SkidBuffer::default());
    yosys("front-yosys-skid", &v);
    lint("front-lint-skid", &v);
}

/// The whole card (front end and core): Verilator lint of the Verilog that synthesis reads.
#[test]
fn whole_card_verilog_passes_verilator_lint() {
    // The card's blocks are built on the stack before they are boxed: more than a test
    // thread's 2 MiB.
    let v = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| (liqscan_hdl::core::verilog::generate_card(0), liqscan_hdl::core::verilog::generate(0)))
        .unwrap()
        .join()
        .unwrap();
    let (v, core) = v;
    assert!(v.contains("module top"));
    // The core inside the card keeps the same modules as the core on its own (lanes, lane
    // memories, write tree, columns, command bus copy), so yosys does not merge their registers;
    // the card adds the packer's eight entry register selects, its popcount's two copies
    // of the pending word and the decoder's nine copies of its Issue flag.
    let kept = |v: &str| v.matches("(* keep_hierarchy *)").count();
    assert!(kept(&core) > 0);
    assert_eq!(kept(&v), kept(&core) + 19, "kept modules: the card's against the core's");
    for k in 0..8 {
        let sel = format!("(* keep_hierarchy *)\nmodule top$packer$sel{k}(");
        assert!(v.contains(&sel), "the packer's select {k} is not kept");
    }
    for w in ["pcw_b", "pcw_a"] {
        let copy = format!("(* keep_hierarchy *)\nmodule top$packer${w}(");
        assert!(v.contains(&copy), "the popcount's copy {w} is not kept");
    }
    for c in ["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "a"] {
        let copy = format!("(* keep_hierarchy *)\nmodule top$decoder$iss_{c}(");
        assert!(v.contains(&copy), "the decoder's Issue copy {c} is not kept");
    }
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

/// Runs `uut` for `cycles` cycles with inputs from `drive` (called before each cycle's
/// settling) and records, per cycle, `inputs` and `outputs` (each a list of (value, bits)).
fn record<B: Block>(
    uut: &mut B,
    cycles: usize,
    mut drive: impl FnMut(&mut B, usize),
    io: impl Fn(&B) -> (Vec<(u64, usize)>, Vec<(u64, usize)>),
    clock: impl Fn(&mut B, bool),
) -> Trace {
    let mut trace = Trace::default();
    for c in 0..cycles {
        drive(uut, c);
        clock(uut, false);
        assert!(simulate(uut, 1000));
        let (i, o) = io(uut);
        trace.inputs.push(hex_fields(&i));
        trace.outputs.push(hex_fields(&o));
        clock(uut, true);
        assert!(simulate(uut, 1000));
    }
    trace
}

#[test]
fn command_decoder_verilog_runs_in_lock_step_with_rust_hdl() {
    use liqscan_hdl::abi::Command;
    use liqscan_hdl::abi::widths::{Coeff, PriceEntry};
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(41);
    let mut uut = CmdDecoder::default();
    uut.connect_all();
    let (mut words, mut beat, mut seq) = ([0u32; 16], 8usize, 0u32);
    // Whether the beat offered in the last cycle was taken (set by the recorder).
    let taken = std::cell::Cell::new(false);
    let trace = record(
        &mut uut,
        6000,
        |u, c| {
            if taken.get() {
                beat += 1;
            }
            if beat == 8 {
                let cmd = match rng.gen_range(0..8) {
                    0 => Command::Tick { asset: rng.gen_range(0..300), price: PriceEntry::default() },
                    1 => Command::BatchTick {
                        asset: rng.gen_range(0..8),
                        price: PriceEntry::default(),
                        last: rng.r#gen(),
                    },
                    2 | 3 => {
                        let mut terms = [Coeff::default(); 8];
                        let count = rng.gen_range(0..=8u8);
                        for t in terms.iter_mut().take(count as usize) {
                            *t = Coeff {
                                asset: rng.gen_range(0..260),
                                coeff: rng.r#gen::<i32>().max(-i32::MAX),
                            };
                        }
                        Command::AccountTerms {
                            account: rng.gen_range(0..8300),
                            word: rng.gen_range(2030..2060),
                            count,
                            terms,
                        }
                    }
                    4 => Command::SetGroup {
                        group: rng.gen_range(0..520),
                        first: rng.gen_range(2030..2060),
                        len: rng.gen_range(0..18),
                    },
                    5 => Command::Params {
                        active_accounts: rng.gen_range(0..2100),
                        term_slots: rng.gen_range(0..18),
                    },
                    6 => Command::Fence { token: rng.r#gen() },
                    _ => Command::ScanFull,
                };
                words = cmd.encode_words(if rng.gen_range(0..10) == 0 { rng.r#gen() } else { seq });
                if rng.gen_range(0..10) == 0 {
                    words[rng.gen_range(0..16)] ^= 1 << rng.gen_range(0..32);
                }
                seq = words[1].wrapping_add(1);
                beat = 0;
            }
            // Resets now and then besides, anywhere in an entry or a job handshake.
            u.reset.next = c < 2 || c == 3000 || rng.gen_range(0..400) == 0;
            u.cmd_valid.next = rng.gen_range(0..10) < 7;
            u.cmd_data.next = (words[2 * beat] as u64 | (words[2 * beat + 1] as u64) << 32).into();
            u.cmd_last.next = beat == 7;
            u.core_ready.next = rng.gen_range(0..10) < 6;
            u.job_ready.next = rng.gen_range(0..10) < 6;
        },
        |u| {
            let b = |x: bool| (x as u64, 1);
            taken.set(u.cmd_valid.val() && u.cmd_ready.val());
            (
                vec![
                    b(u.reset.val()),
                    b(u.cmd_valid.val()),
                    (u.cmd_data.val().to_u64(), 64),
                    b(u.cmd_last.val()),
                    b(u.core_ready.val()),
                    b(u.job_ready.val()),
                ],
                vec![
                    b(u.cmd_ready.val()),
                    b(u.core_valid.val()),
                    (u.core_op.val().to_u64(), 3),
                    (u.core_addr.val().to_u64(), 16),
                    (u.core_sub.val().to_u64(), 8),
                    (u.core_data0.val().to_u64(), 32),
                    (u.core_data1.val().to_u64(), 32),
                    b(u.job_valid.val()),
                    (u.job_kind.val().to_u64(), 2),
                    (u.job_seq.val().to_u64(), 32),
                    (u.job_arg.val().to_u64(), 32),
                    (u.job_detail.val().to_u64(), 32),
                    b(u.job_refresh.val()),
                    b(u.scan_start.val()),
                    (u.errors.val().to_u64(), 32),
                    (u.entries.val().to_u64(), 32),
                ],
            )
        },
        |u, clk| u.clock.next = Clock { clk },
    );
    // The run issued core commands and jobs (fields 2 and 8 of the outputs).
    let high = |k: usize| trace.outputs.iter().filter(|l| l.split(' ').nth(k) == Some("1")).count();
    assert!(high(1) > 200 && high(7) > 100, "{} core command cycles, {} job cycles", high(1), high(7));
    let tb = testbench(
        &[
            ("reset", 1),
            ("cmd_valid", 1),
            ("cmd_data", 64),
            ("cmd_last", 1),
            ("core_ready", 1),
            ("job_ready", 1),
        ],
        &[
            "cmd_ready",
            "core_valid",
            "core_op",
            "core_addr",
            "core_sub",
            "core_data0",
            "core_data1",
            "job_valid",
            "job_kind",
            "job_seq",
            "job_arg",
            "job_detail",
            "job_refresh",
            "scan_start",
            "errors",
            "entries",
        ],
    );
    cosim("cmd_decoder", &verilog_of(CmdDecoder::default()), &tb, &trace);
}

#[test]
fn event_packer_verilog_runs_in_lock_step_with_rust_hdl() {
    use liqscan_hdl::abi::config::LANES;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(43);
    let mut uut = EvtPacker::default();
    uut.connect_all();
    // Any input sequence is a valid stimulus for a lock-step comparison; these keep the packer
    // busy: jobs of every kind, core words of random groups, done markers, stalls.
    let mut group = 0u64;
    let trace = record(
        &mut uut,
        8000,
        |u, c| {
            // Resets now and then besides, anywhere in a scan (a push coming, slots in use).
            u.reset.next = c < 2 || c == 4000 || rng.gen_range(0..300) == 0;
            u.job_valid.next = rng.gen_range(0..10) < 3;
            u.job_kind.next = rng.gen_range(0..4u64).into();
            u.job_seq.next = (rng.r#gen::<u32>() as u64).into();
            u.job_arg.next = (rng.r#gen::<u32>() as u64).into();
            u.job_detail.next = (rng.r#gen::<u32>() as u64).into();
            u.job_refresh.next = rng.gen_range(0..4) == 0;
            u.scan_start.next = rng.gen_range(0..20) == 0;
            u.out_valid.next = rng.gen_range(0..10) < 6;
            u.out_done.next = rng.gen_range(0..12) == 0;
            if rng.gen_range(0..3) == 0 {
                group = rng.gen_range(0..128);
            } else {
                group = (group + 1) % 128;
            }
            u.out_group.next = group.into();
            u.out_breach.next = (rng.r#gen::<u64>() & ((1 << LANES) - 1)).into();
            u.out_at_risk.next = (rng.r#gen::<u64>() & ((1 << LANES) - 1)).into();
            u.evt_ready.next = rng.gen_range(0..10) < 6;
        },
        |u| {
            let b = |x: bool| (x as u64, 1);
            (
                vec![
                    b(u.reset.val()),
                    b(u.job_valid.val()),
                    (u.job_kind.val().to_u64(), 2),
                    (u.job_seq.val().to_u64(), 32),
                    (u.job_arg.val().to_u64(), 32),
                    (u.job_detail.val().to_u64(), 32),
                    b(u.job_refresh.val()),
                    b(u.scan_start.val()),
                    b(u.out_valid.val()),
                    b(u.out_done.val()),
                    (u.out_group.val().to_u64(), 8),
                    (u.out_breach.val().to_u64(), LANES),
                    (u.out_at_risk.val().to_u64(), LANES),
                    b(u.evt_ready.val()),
                ],
                vec![
                    b(u.job_ready.val()),
                    b(u.out_ready.val()),
                    b(u.evt_valid.val()),
                    (u.evt_data.val().to_u64(), 64),
                    b(u.busy.val()),
                ],
            )
        },
        |u, clk| u.clock.next = Clock { clk },
    );
    let beats = trace.outputs.iter().filter(|l| l.split(' ').nth(2) == Some("1")).count();
    assert!(beats > 500, "{beats} event beat cycles");
    let tb = testbench(
        &[
            ("reset", 1),
            ("job_valid", 1),
            ("job_kind", 2),
            ("job_seq", 32),
            ("job_arg", 32),
            ("job_detail", 32),
            ("job_refresh", 1),
            ("scan_start", 1),
            ("out_valid", 1),
            ("out_done", 1),
            ("out_group", 8),
            ("out_breach", LANES),
            ("out_at_risk", LANES),
            ("evt_ready", 1),
        ],
        &["job_ready", "out_ready", "evt_valid", "evt_data", "busy"],
    );
    cosim("evt_packer", &verilog_of(EvtPacker::default()), &tb, &trace);
}

#[test]
fn bar_registers_verilog_run_in_lock_step_with_rust_hdl() {
    use liqscan_hdl::abi::regs::REGISTERS;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(47);
    let mut uut = BarRegs::default();
    uut.connect_all();
    let trace = record(
        &mut uut,
        5000,
        |u, c| {
            let off = |rng: &mut rand_chacha::ChaCha8Rng| match rng.gen_range(0..8) {
                0 => rng.gen_range(0..0x2_0000u64) & !3,
                _ => REGISTERS[rng.gen_range(0..REGISTERS.len())].offset as u64,
            };
            u.reset.next = c < 2 || c == 2500;
            u.awvalid.next = rng.gen_range(0..10) < 4;
            u.awaddr.next = off(&mut rng).into();
            u.wvalid.next = rng.gen_range(0..10) < 4;
            u.wdata.next = (rng.r#gen::<u32>() as u64).into();
            u.wstrb.next = if rng.gen_range(0..10) == 0 { rng.gen_range(0..16u64) } else { 0xF }.into();
            u.bready.next = rng.gen_range(0..10) < 7;
            u.arvalid.next = rng.gen_range(0..10) < 4;
            u.araddr.next = off(&mut rng).into();
            u.rready.next = rng.gen_range(0..10) < 7;
            u.core_rdata.next = (rng.r#gen::<u32>() as u64).into();
            u.front_errors.next = (rng.r#gen::<u32>() as u64 & 0x1C0).into();
        },
        |u| {
            let b = |x: bool| (x as u64, 1);
            (
                vec![
                    b(u.reset.val()),
                    b(u.awvalid.val()),
                    (u.awaddr.val().to_u64(), 32),
                    b(u.wvalid.val()),
                    (u.wdata.val().to_u64(), 32),
                    (u.wstrb.val().to_u64(), 4),
                    b(u.bready.val()),
                    b(u.arvalid.val()),
                    (u.araddr.val().to_u64(), 32),
                    b(u.rready.val()),
                    (u.core_rdata.val().to_u64(), 32),
                    (u.front_errors.val().to_u64(), 32),
                ],
                vec![
                    b(u.awready.val()),
                    b(u.wready.val()),
                    b(u.bvalid.val()),
                    (u.bresp.val().to_u64(), 2),
                    b(u.arready.val()),
                    b(u.rvalid.val()),
                    (u.rdata.val().to_u64(), 32),
                    (u.core_addr.val().to_u64(), 12),
                    b(u.core_write.val()),
                    (u.core_wdata.val().to_u64(), 32),
                    b(u.soft_reset.val()),
                    (u.cmd_ring_base.val().to_u64(), 64),
                    (u.cmd_ring_mask.val().to_u64(), 32),
                    b(u.doorbell_write.val()),
                    (u.doorbell.val().to_u64(), 32),
                    (u.evt_ring_base.val().to_u64(), 64),
                    (u.evt_ring_mask.val().to_u64(), 32),
                    (u.evt_consumer.val().to_u64(), 32),
                ],
            )
        },
        |u, clk| u.clock.next = Clock { clk },
    );
    let tb = testbench(
        &[
            ("reset", 1),
            ("awvalid", 1),
            ("awaddr", 32),
            ("wvalid", 1),
            ("wdata", 32),
            ("wstrb", 4),
            ("bready", 1),
            ("arvalid", 1),
            ("araddr", 32),
            ("rready", 1),
            ("core_rdata", 32),
            ("front_errors", 32),
        ],
        &[
            "awready",
            "wready",
            "bvalid",
            "bresp",
            "arready",
            "rvalid",
            "rdata",
            "core_addr",
            "core_write",
            "core_wdata",
            "soft_reset",
            "cmd_ring_base",
            "cmd_ring_mask",
            "doorbell_write",
            "doorbell",
            "evt_ring_base",
            "evt_ring_mask",
            "evt_consumer",
        ],
    );
    cosim("bar_regs", &verilog_of(BarRegs::default()), &tb, &trace);
}

/// The whole card (front end and core) from its generated Verilog, in lock step with rust-hdl:
/// bring-up and a short command stream through `CardSim` (every input recorded, the DMA
/// memory's answers included), replayed in Icarus; every output, every cycle, equal.
#[test]
fn whole_card_verilog_runs_in_lock_step_with_rust_hdl() {
    use liqscan_hdl::abi::Command;
    use liqscan_hdl::abi::widths::{Coeff, PriceEntry, QuotedPrice};
    use liqscan_hdl::front::axi::AxiTiming;
    use liqscan_hdl::front::card_driver::{CardSim, TRACE_INPUTS, TRACE_OUTPUTS};
    use liqscan_hdl::layout::{PackedLayout, Shape, ring_commands};
    let (trace, v) = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let mut card = CardSim::new_traced(8, 4, AxiTiming { latency: 1..=6, stall_percent: 30 }, 49);
            card.bring_up().unwrap();
            let p = |a: u32| PriceEntry {
                spot: QuotedPrice { asset: a, liability: a + 3 },
                stressed: QuotedPrice { asset: a / 2, liability: a + 9 },
            };
            let mut cmds = vec![
                Command::Params { active_accounts: 96, term_slots: 2 },
                Command::BatchTick { asset: 0, price: p(100), last: false },
                Command::BatchTick { asset: 1, price: p(50), last: true },
            ];
            let mut layout = PackedLayout::with_shape(Shape { groups: 6, ..Shape::CARD });
            let mut core = layout.clear_commands();
            for a in (0..40usize).chain(64..70) {
                let c = (a as i32 * 37) % 200 - 100;
                let terms = [Coeff { asset: 0, coeff: c }, Coeff { asset: 1, coeff: -c / 2 - 1 }];
                layout.upsert(a, &terms[..1 + a % 2], &mut core).unwrap();
            }
            ring_commands(&core, &mut cmds);
            cmds.extend([
                Command::ScanFull,
                Command::Tick { asset: 1, price: p(400) },
                Command::Tick { asset: 0, price: p(20) },
                Command::AccountTerms { account: 3, word: 0, count: 0, terms: [Coeff::default(); 8] },
                Command::SetGroup { group: 0, first: 40, len: 2 },
                Command::Tick { asset: 300, price: p(1) },
                Command::Fence { token: 9 },
            ]);
            let entries: Vec<_> = cmds.iter().enumerate().map(|(i, c)| c.encode_words(i as u32)).collect();
            let events = card.run(&entries);
            assert!(events.len() >= 10, "{} events", events.len());
            (card.trace.take().unwrap(), liqscan_hdl::core::verilog::generate_card(0x1234_5678))
        })
        .unwrap()
        .join()
        .unwrap();
    let t = Trace { inputs: trace.inputs, outputs: trace.outputs };
    let tb = testbench(TRACE_INPUTS, TRACE_OUTPUTS);
    let t0 = std::time::Instant::now();
    cosim("card", &v, &tb, &t);
    eprintln!("whole card: {} cycles in Icarus, {:.1} s", t.inputs.len(), t0.elapsed().as_secs_f64());
}
