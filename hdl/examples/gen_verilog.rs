//! Writes the scan core's Verilog: `cargo run -p liqscan-hdl --example gen_verilog -- OUT.v`.
//! `LIQSCAN_BUILD_ID` (hex) sets the `BUILD_ID` register.

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| "liqscan_core.v".into());
    let build_id = std::env::var("LIQSCAN_BUILD_ID")
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim(), 16).ok())
        .unwrap_or(0);
    let v = liqscan_hdl::core::verilog::generate(build_id);
    std::fs::write(&out, v).expect("write the Verilog file");
    eprintln!("wrote {out} (BUILD_ID 0x{build_id:08x})");
}
