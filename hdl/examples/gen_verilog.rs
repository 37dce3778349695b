//! Writes the scan core's Verilog: `cargo run -p liqscan-hdl --example gen_verilog -- OUT.v`.
//! `LIQSCAN_BUILD_ID` (hex) sets the `BUILD_ID` register. Also writes `OUT.v.config`: the
//! configuration compiled in (`LIQSCAN_LANE_BITS` at build time picks the lane count).
//! `--card` (before OUT.v) writes the whole card instead: front end and core, top `top`.

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let card = args.first().is_some_and(|a| a == "--card");
    if card {
        args.remove(0);
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
