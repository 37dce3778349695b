//! Prints the tables carried in docs/REGISTERS.md, the register map then the shared-memory link
//! file header: `cargo run -p liqscan-hdl --no-default-features --example register_table`.

fn main() {
    print!("{}", liqscan_hdl::abi::regs::markdown_table());
    println!();
    print!("{}", liqscan_hdl::abi::shm::markdown_table());
}
