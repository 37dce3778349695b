//! The register table in docs/REGISTERS.md is the one the register map prints.

#[test]
fn registers_doc_carries_the_generated_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/REGISTERS.md");
    let doc = std::fs::read_to_string(path).expect("docs/REGISTERS.md");
    let table = liqscan_hdl::abi::regs::markdown_table();
    assert!(
        doc.contains(&table),
        "docs/REGISTERS.md is out of date: paste the output of \
         `cargo run -p liqscan-hdl --no-default-features --example register_table`"
    );
}
