//! The tables in docs/REGISTERS.md are the ones the register map and the link file header print.

#[test]
fn registers_doc_carries_the_generated_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/REGISTERS.md");
    let doc = std::fs::read_to_string(path).expect("docs/REGISTERS.md");
    for (what, table) in [
        ("register map", liqscan_hdl::abi::regs::markdown_table()),
        ("link file header", liqscan_hdl::abi::shm::markdown_table()),
    ] {
        assert!(
            doc.contains(&table),
            "docs/REGISTERS.md is out of date ({what}): paste the output of \
             `cargo run -p liqscan-hdl --no-default-features --example register_table`"
        );
    }
}
