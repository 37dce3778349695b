//! The rust-hdl scan core: one block per file, each with its golden model in
//! [`crate::golden`].

pub mod col_acc;
pub mod driver;
pub mod ext_driver;
pub mod ext_scan;
pub mod fanout;
pub mod fifo;
pub mod lane_mem;
pub mod mac_lane;
pub mod mem_reader;
pub mod mul;
pub mod packer;
pub mod ram;
pub mod regs;
pub mod scan_core;
pub mod verilog;
