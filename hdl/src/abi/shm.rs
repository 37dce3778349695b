//! The header of a shared-memory link file: who owns the file, and which incarnation of it
//! the host is talking to.
//!
//! ```text
//!   /dev/shm/<name>
//!   ┌──────────────────┬──────────────────────────────┬─────────────────────┐
//!   │ header (4 KiB)   │ BAR 0: registers | cmd ring  │ event ring           │
//!   └──────────────────┴──────────────────────────────┴─────────────────────┘
//!     ^ MAGIC .. EVT_ENTRIES (this table)
//! ```
//!
//! A PCIe card has no such header: the card is a device, not a file two processes can both
//! claim. A link file can be claimed by any process, so the emulated card takes it under an
//! advisory lock (`flock`) that it holds for as long as it serves, and writes itself into the
//! header: its pid, a random id and the file's new generation (one more than the last card's).
//! A host reads the generation when it opens the link and checks it at every fence and
//! whenever it waits long for the card: a new card on the file means the card it was talking
//! to is gone, so it fails over.
//!
//! [`SHM_HEADER`] is the one list of fields; `docs/REGISTERS.md` carries the table that
//! [`markdown_table`] prints (a test checks they agree). Fields are 32-bit little-endian words
//! at byte offsets from the start of the file, written by the card and read by the host.

use crate::abi::regs::{Access, RegDef, markdown_table_of};

/// `MAGIC` value: ASCII "LQSL" (liqscan shared-memory link).
pub const SHM_MAGIC: u32 = 0x4C51_534C;
/// `VERSION` value: major in bits 31:16, minor in bits 15:0.
pub const SHM_VERSION: u32 = 0x0001_0000;
/// Bytes of the header; BAR 0 starts here (one page, so the BAR image stays page-aligned).
pub const SHM_HEADER_BYTES: u32 = 0x1000;

/// Byte offsets of the header fields.
pub mod field {
    /// "LQSL"; written last by a card taking the file.
    pub const MAGIC: u32 = 0x00;
    /// Header version.
    pub const VERSION: u32 = 0x04;
    /// Incremented by every card that takes the file (1 for the first; 0: never taken).
    pub const GENERATION: u32 = 0x08;
    /// Process id of the card that holds the file.
    pub const OWNER_PID: u32 = 0x0C;
    /// Random id the owning card drew when it took the file, bits 31:0.
    pub const OWNER_ID_LO: u32 = 0x10;
    /// Random id, bits 63:32.
    pub const OWNER_ID_HI: u32 = 0x14;
    /// When the file was taken, seconds since the Unix epoch, bits 31:0.
    pub const TAKEN_AT_LO: u32 = 0x18;
    /// When the file was taken, bits 63:32.
    pub const TAKEN_AT_HI: u32 = 0x1C;
    /// Byte offset of BAR 0 in the file.
    pub const BAR_OFFSET: u32 = 0x20;
    /// Byte offset of the event ring in the file (also the card's `EVT_RING_ADDR`).
    pub const EVT_OFFSET: u32 = 0x24;
    /// Event ring entries (a power of two).
    pub const EVT_ENTRIES: u32 = 0x28;
}

use field::*;

/// The header fields.
pub const SHM_HEADER: &[RegDef] = &[
    RegDef {
        name: "MAGIC",
        offset: MAGIC,
        access: Access::Ro,
        reset: SHM_MAGIC,
        doc: "ASCII \"LQSL\"; written last by a card taking the file",
    },
    RegDef {
        name: "VERSION",
        offset: VERSION,
        access: Access::Ro,
        reset: SHM_VERSION,
        doc: "header version, major.minor in 31:16 and 15:0",
    },
    RegDef {
        name: "GENERATION",
        offset: GENERATION,
        access: Access::Ro,
        reset: 0,
        doc: "one more than the last card's, written by each card that takes the file; a change means a new card",
    },
    RegDef {
        name: "OWNER_PID",
        offset: OWNER_PID,
        access: Access::Ro,
        reset: 0,
        doc: "process id of the card holding the file's lock",
    },
    RegDef {
        name: "OWNER_ID_LO",
        offset: OWNER_ID_LO,
        access: Access::Ro,
        reset: 0,
        doc: "random id the owner drew when it took the file, bits 31:0",
    },
    RegDef {
        name: "OWNER_ID_HI",
        offset: OWNER_ID_HI,
        access: Access::Ro,
        reset: 0,
        doc: "owner's random id, bits 63:32",
    },
    RegDef {
        name: "TAKEN_AT_LO",
        offset: TAKEN_AT_LO,
        access: Access::Ro,
        reset: 0,
        doc: "when the file was taken, Unix seconds, bits 31:0",
    },
    RegDef {
        name: "TAKEN_AT_HI",
        offset: TAKEN_AT_HI,
        access: Access::Ro,
        reset: 0,
        doc: "when the file was taken, Unix seconds, bits 63:32",
    },
    RegDef {
        name: "BAR_OFFSET",
        offset: BAR_OFFSET,
        access: Access::Ro,
        reset: SHM_HEADER_BYTES,
        doc: "byte offset of BAR 0 in the file",
    },
    RegDef {
        name: "EVT_OFFSET",
        offset: EVT_OFFSET,
        access: Access::Ro,
        reset: 0,
        doc: "byte offset of the event ring in the file (the card's EVT_RING_ADDR)",
    },
    RegDef {
        name: "EVT_ENTRIES",
        offset: EVT_ENTRIES,
        access: Access::Ro,
        reset: 0,
        doc: "event ring entries (a power of two)",
    },
];

/// The header table in Markdown, as carried in `docs/REGISTERS.md`.
pub fn markdown_table() -> String {
    markdown_table_of(SHM_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_aligned_unique_sorted_and_inside_the_header() {
        for w in SHM_HEADER.windows(2) {
            assert!(w[0].offset < w[1].offset, "{} before {}", w[0].name, w[1].name);
        }
        for f in SHM_HEADER {
            assert_eq!(f.offset % 4, 0, "{} misaligned", f.name);
            assert!(f.offset + 4 <= SHM_HEADER_BYTES);
        }
        assert_eq!(&SHM_MAGIC.to_be_bytes(), b"LQSL");
        assert_ne!(SHM_MAGIC, crate::abi::regs::TYPE_LIQSCAN);
    }
}
