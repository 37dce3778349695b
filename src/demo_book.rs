//! The embedded demo scenario now lives in the library (`liqscan_host::demo_book`), so an
//! embedded keeper can run it too.

pub use liqscan_host::demo_book::*;
