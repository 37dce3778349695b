//! The card's front end in rust-hdl: the DMA master port and the ring engines that connect the
//! host's rings (docs/CARD_LINK.md) to the scan core. One block per file, each with its golden
//! model beside it; see docs/FRONT_END.md.

pub mod axi;
pub mod bar_regs;
pub mod card;
pub mod card_driver;
pub mod cmd_decoder;
pub mod cmd_reader;
pub mod evt_packer;
pub mod evt_writer;
pub mod loopback;
pub mod popcount;
pub mod skid;
pub mod stimulus;
