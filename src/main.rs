//! The `liqscan` command.
fn main() {}
