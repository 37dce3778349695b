//! Writes the scan core's Verilog: `cargo run -p liqscan-hdl --example gen_verilog -- OUT.v`.
//! `LIQSCAN_BUILD_ID` (hex) sets the `BUILD_ID` register. Also writes `OUT.v.config`: the
//! configuration compiled in (`LIQSCAN_LANE_BITS` at build time picks the lane count).
//! `--card` (before OUT.v) writes the whole card instead: front end and core, top `top`.
//! `--ext-scan FB` (before OUT.v) writes the external-memory scan block instead
//! (`core::ext_scan`, top `top`): one 64-bit channel of LiteDRAM's native port, a prefetch
//! buffer of `2^FB` words (FB 5 or 9), the MAC lanes kept as modules as in the core.
//! `--ext-scan-128 FB` writes the same block for a 128-bit port: one channel of two term words a
//! memory word (`ExtScan<1, 2, 128, FB>`), for a LiteDRAM port as wide as its controller.

use liqscan_hdl::core::{ext_scan, verilog::keep_lane_hierarchy};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let card = args.first().is_some_and(|a| a == "--card");
    if card {
        args.remove(0);
    }
    let ext = args.first().map(String::as_str);
    if let Some(flag @ ("--ext-scan" | "--ext-scan-128")) = ext {
        let wide = flag == "--ext-scan-128";
        let fb = args.get(1).map(String::as_str).unwrap_or("");
        let v = match (wide, fb) {
            (false, "5") => ext_scan::generate::<1, 1, 64, 5>(),
            (false, "9") => ext_scan::generate::<1, 1, 64, 9>(),
            (true, "5") => ext_scan::generate::<1, 2, 128, 5>(),
            (true, "9") => ext_scan::generate::<1, 2, 128, 9>(),
            _ => {
                eprintln!("gen_verilog: {flag} takes the buffer's log2 size in words, 5 or 9; got '{fb}'");
                std::process::exit(2);
            }
        };
        let (k, w) = if wide { (2, 128) } else { (1, 64) };
        let out = args.get(2).cloned().unwrap_or_else(|| "ext_scan.v".into());
        std::fs::write(&out, keep_lane_hierarchy(&v)).expect("write the Verilog file");
        let lanes = liqscan_hdl::abi::config::LANES;
        let conf = format!(
            "BLOCK=ExtScan\nLANES={lanes}\nCHANNELS=1\nTERMS_PER_WORD={k}\nWORD_BITS={w}\nBUFFER_WORDS={}\n",
            1u32 << fb.parse::<u32>().expect("5 or 9")
        );
        std::fs::write(format!("{out}.config"), conf).expect("write the configuration file");
        eprintln!("wrote {out} (ExtScan<1, {k}, {w}, {fb}>)");
        return;
    }
    let out = args.first().cloned().unwrap_or_else(|| "liqscan_core.v".into());
    let build_id = std::env::var("LIQSCAN_BUILD_ID")
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim(), 16).ok())
        .unwrap_or(0);
    let v = if card {
        liqscan_hdl::core::verilog::generate_card(build_id)
    } else {
        liqscan_hdl::core::verilog::generate(build_id)
    };
    std::fs::write(&out, v).expect("write the Verilog file");
    // The configuration compiled in (LIQSCAN_LANE_BITS), for the bitstream report.
    use liqscan_hdl::abi::config::*;
    let conf = format!(
        "LANES={LANES}\nCARD_ACCOUNTS={CARD_ACCOUNTS}\nCARD_ASSETS={CARD_ASSETS}\nTERM_SLOTS={TERM_SLOTS}\nTARGET_MHZ={TARGET_MHZ}\n"
    );
    std::fs::write(format!("{out}.config"), conf).expect("write the configuration file");
    eprintln!("wrote {out} (BUILD_ID 0x{build_id:08x})");
}
