//! The front end's generated Verilog, block by block: yosys reads and checks it
//! (`hierarchy -check`, `proc`, `check -assert`: no latches, no undriven or multiply-driven
//! nets) and Verilator lints it (-Wall, waivers listed with their reasons), as
//! `tests/verilog.rs` does for the scan core. The files are left in target/hdl-tests/front-*.

use liqscan_hdl::front::cmd_reader::CmdReader;
use liqscan_hdl::front::evt_writer::EvtWriter;
use rust_hdl::prelude::*;
use std::path::PathBuf;
use std::process::Command;

/// Verilator warnings waived for rust-hdl's generated Verilog, with the reason (the same as
/// for the core, tests/verilog.rs).
const WAIVED: &[(&str, &str)] = &[
    ("WIDTH", "rust-hdl writes every literal and index as 32 bits; the widths are checked by the Rust types"),
    ("UNUSEDSIGNAL", "bits of words a block does not read (e.g. evt_data bit 31 and bits 63:32 of beat 0)"),
    ("DECLFILENAME", "all modules are in one generated file"),
    ("UNUSEDPARAM", "rust-hdl declares the state enum's values in each module"),
    ("PINCONNECTEMPTY", "rust-hdl leaves unused output ports unconnected"),
];

fn tool(name: &str) -> String {
    let ok = Command::new(name).arg("--version").output().is_ok();
    assert!(ok, "`{name}` is not installed: run scripts/setup-tools.sh (Debian packages verilator, yosys)");
    name.to_string()
}

fn work_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/hdl-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn verilog_of<B: Block>(mut uut: B) -> String {
    uut.connect_all();
    generate_verilog(&uut)
}

fn lint(name: &str, v: &str) {
    let d = work_dir(&format!("front-lint-{name}"));
    std::fs::write(d.join("block.v"), v).unwrap();
    let mut cmd = Command::new(tool("verilator"));
    cmd.current_dir(&d).args(["--lint-only", "-Wall", "--top-module", "top", "block.v"]);
    for (w, _) in WAIVED {
        cmd.arg(format!("-Wno-{w}"));
    }
    let out = cmd.output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name}: verilator lint failed:\n{}", &log[..log.len().min(4000)]);
}

fn yosys(name: &str, v: &str) {
    let d = work_dir(&format!("front-yosys-{name}"));
    std::fs::write(d.join("block.v"), v).unwrap();
    let out = Command::new(tool("yosys"))
        .current_dir(&d)
        .args([
            "-q",
            "-l",
            "yosys.log",
            "-p",
            "read_verilog block.v; hierarchy -check -top top; proc; check -assert; opt -fast; stat",
        ])
        .output()
        .unwrap();
    let log = std::fs::read_to_string(d.join("yosys.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{name}: yosys failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        &log[log.len().saturating_sub(3000)..]
    );
    for bad in ["Latch inferred", "is used but has no driver", "implicitly declared"] {
        assert!(!log.contains(bad), "{name}: yosys: {bad}");
    }
}

#[test]
fn command_reader_verilog_passes_yosys_and_verilator_lint() {
    let v = verilog_of(CmdReader::default());
    assert!(v.contains("axi$arvalid") || v.contains("axi_arvalid"), "the AXI port is on the top module");
    yosys("cmd_reader", &v);
    lint("cmd_reader", &v);
}

#[test]
fn event_writer_verilog_passes_yosys_and_verilator_lint() {
    let v = verilog_of(EvtWriter::default());
    yosys("evt_writer", &v);
    lint("evt_writer", &v);
}
