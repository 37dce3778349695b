//! Prints the register table carried in docs/REGISTERS.md:
//! `cargo run -p liqscan-hdl --no-default-features --example register_table`.

fn main() {
    print!("{}", liqscan_hdl::abi::regs::markdown_table());
}
