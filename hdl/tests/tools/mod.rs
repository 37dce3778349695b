//! The external tools the Verilog tests run (yosys, Verilator, Icarus), shared by the core's
//! and the front end's tests: where they work, the Verilator waivers and the two checks every
//! generated design passes.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Verilator warnings waived for rust-hdl's generated Verilog, with the reason.
pub const WAIVED: &[(&str, &str)] = &[
    ("WIDTH", "rust-hdl writes every literal and index as 32 bits; the widths are checked by the Rust types"),
    (
        "UNUSEDSIGNAL",
        "bits of words a block does not read (a DFF whose high bits are constant, a ring entry's unused bits)",
    ),
    ("DECLFILENAME", "all modules are in one generated file"),
    ("UNUSEDPARAM", "rust-hdl declares constants (and each state enum's values) a module may not read"),
    ("PINCONNECTEMPTY", "rust-hdl leaves unused output ports unconnected"),
];

/// The tool's name, after checking that it is installed (says how to install it if not).
pub fn tool(name: &str) -> String {
    let ok = Command::new(name).arg(if name == "iverilog" { "-V" } else { "--version" }).output().is_ok();
    assert!(
        ok,
        "`{name}` is not installed: run scripts/setup-tools.sh (Debian packages verilator, iverilog, yosys)"
    );
    name.to_string()
}

/// A fresh working folder under target/hdl-tests.
pub fn work_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/hdl-tests").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Verilator `--lint-only -Wall` of design `v` (top module `top`), clean but for [`WAIVED`];
/// works in `target/hdl-tests/<dir>`.
pub fn lint(dir: &str, v: &str) {
    let d = work_dir(dir);
    std::fs::write(d.join("design.v"), v).unwrap();
    let mut cmd = Command::new(tool("verilator"));
    cmd.current_dir(&d).args(["--lint-only", "-Wall", "--top-module", "top", "design.v"]);
    for (w, _) in WAIVED {
        cmd.arg(format!("-Wno-{w}"));
    }
    let out = cmd.output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{dir}: verilator lint failed:\n{}", &log[..log.len().min(4000)]);
}

/// yosys reads, elaborates and checks design `v` (top module `top`): no latch, no undriven or
/// implicitly declared wire; works in `target/hdl-tests/<dir>`.
pub fn yosys(dir: &str, v: &str) {
    let d = work_dir(dir);
    std::fs::write(d.join("design.v"), v).unwrap();
    let out = Command::new(tool("yosys"))
        .current_dir(&d)
        .args([
            "-q",
            "-l",
            "yosys.log",
            "-p",
            "read_verilog design.v; hierarchy -check -top top; proc; check -assert; opt -fast; stat",
        ])
        .output()
        .unwrap();
    let log = std::fs::read_to_string(d.join("yosys.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{dir}: yosys failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        &log[log.len().saturating_sub(3000)..]
    );
    for bad in ["Latch inferred", "is used but has no driver", "implicitly declared"] {
        assert!(!log.contains(bad), "{dir}: yosys: {bad}");
    }
}
