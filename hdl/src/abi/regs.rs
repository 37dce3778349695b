//! The card's register map, as data.
//!
//! [`REGISTERS`] is the one list: the rust-hdl register block decodes it (see
//! `core::regs`), the host's card link reads it, and `docs/REGISTERS.md` carries the table that
//! [`markdown_table`] prints (a test checks they agree). Registers are 32 bits, little-endian,
//! at byte offsets in BAR 0. Like a Corundum register block, the map starts with a type, a
//! version and a pointer to the next block (0: none), then the build's id.
//!
//! On the hot path the host never reads these: commands go through the command ring window
//! ([`CMD_RING_WINDOW`]) as posted writes and events come back through the event ring in host
//! memory. Registers are for bring-up (the scratch test), configuration checks and monitoring.

use crate::abi::config::CONFIG;

/// How software may access a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Access {
    /// Read only.
    Ro,
    /// Read and write.
    Rw,
    /// Read; writing a 1 clears that bit (sticky bits).
    Rw1c,
    /// Write only; reads return 0.
    Wo,
}

impl Access {
    /// Short name used in the register table.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Ro => "RO",
            Access::Rw => "RW",
            Access::Rw1c => "RW1C",
            Access::Wo => "WO",
        }
    }
}

/// One register: where it is, how it is accessed, its value after reset, what it means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RegDef {
    /// Name, as used in docs and code.
    pub name: &'static str,
    /// Byte offset in BAR 0 (a multiple of 4).
    pub offset: u32,
    /// Access rule.
    pub access: Access,
    /// Value after reset (for RO identity registers: the fixed value).
    pub reset: u32,
    /// One-line meaning.
    pub doc: &'static str,
}

/// `ID_TYPE` value: ASCII "LQSC".
pub const TYPE_LIQSCAN: u32 = 0x4C51_5343;
/// `ID_VERSION` value: major in bits 31:16, minor in bits 15:0.
pub const VERSION: u32 = 0x0002_0000;

/// Byte offsets of the registers.
pub mod offset {
    /// Block type.
    pub const ID_TYPE: u32 = 0x000;
    /// Block version.
    pub const ID_VERSION: u32 = 0x004;
    /// Offset of the next register block, 0 for none.
    pub const ID_NEXT: u32 = 0x008;
    /// Build id (low 32 bits of the git commit the Verilog was generated from, 0 if unknown).
    pub const BUILD_ID: u32 = 0x00C;
    /// Scratch register for bring-up.
    pub const SCRATCH: u32 = 0x010;
    /// Lanes.
    pub const CONFIG_LANES: u32 = 0x014;
    /// Accounts the card holds.
    pub const CONFIG_ACCOUNTS: u32 = 0x018;
    /// Price table entries.
    pub const CONFIG_ASSETS: u32 = 0x01C;
    /// Term slots per account.
    pub const CONFIG_TERM_SLOTS: u32 = 0x020;
    /// Control.
    pub const CONTROL: u32 = 0x024;
    /// Status.
    pub const STATUS: u32 = 0x028;
    /// Sticky error bits.
    pub const ERRORS: u32 = 0x02C;
    /// Commands accepted.
    pub const STAT_COMMANDS: u32 = 0x030;
    /// Scans completed.
    pub const STAT_SCANS: u32 = 0x034;
    /// Bitmap words (one per group scanned) sent.
    pub const STAT_WORDS: u32 = 0x038;
    /// Cycles the scan sequencer was busy.
    pub const STAT_BUSY_CYCLES: u32 = 0x03C;
    /// Active accounts (set by the parameters command).
    pub const ACTIVE_ACCOUNTS: u32 = 0x040;
    /// Active term slots per account (set by the parameters command).
    pub const ACTIVE_SLOTS: u32 = 0x044;
    /// Command ring entries (a power of two).
    pub const CMD_RING_ENTRIES: u32 = 0x080;
    /// Command ring doorbell: the host posts its producer index here.
    pub const CMD_DOORBELL: u32 = 0x084;
    /// Event ring base in host memory, low 32 bits.
    pub const EVT_RING_ADDR_LO: u32 = 0x088;
    /// Event ring base in host memory, high 32 bits.
    pub const EVT_RING_ADDR_HI: u32 = 0x08C;
    /// Event ring entries (a power of two).
    pub const EVT_RING_ENTRIES: u32 = 0x090;
    /// Event ring consumer index: the host posts how far it has read the event ring, so the
    /// card waits instead of overwriting unread events.
    pub const EVT_CONSUMER: u32 = 0x094;
    /// Command ring base in host memory, low 32 bits (the RTL card's command reader fetches
    /// the ring from there by DMA; the emulated card reads the BAR window instead).
    pub const CMD_RING_ADDR_LO: u32 = 0x098;
    /// Command ring base in host memory, high 32 bits.
    pub const CMD_RING_ADDR_HI: u32 = 0x09C;
}

/// Start of the command ring window in BAR 0: entry `i` is at
/// `CMD_RING_WINDOW + i * RING_ENTRY_BYTES`.
pub const CMD_RING_WINDOW: u32 = 0x1_0000;

/// `CONTROL` bit 0: synchronous soft reset of the scan core (self-clearing). Clears the
/// statistics, the sticky errors, the scratch register, the parameters and the output FIFO;
/// keeps the memories (prices, terms, exposure index).
pub const CONTROL_SOFT_RESET: u32 = 1 << 0;
/// `STATUS` bit 0: the scan sequencer is busy.
pub const STATUS_BUSY: u32 = 1 << 0;
/// `STATUS` bit 1: bitmap words are waiting in the output FIFO.
pub const STATUS_EVENTS_PENDING: u32 = 1 << 1;

/// Sticky error bits of the `ERRORS` register (also sent in error events).
pub mod error_bit {
    /// A command with an unknown opcode.
    pub const BAD_OPCODE: u32 = 1 << 0;
    /// An account index at or beyond the card's accounts.
    pub const ACCOUNT_RANGE: u32 = 1 << 1;
    /// A term word, or a group extent, beyond the term memory (or longer than the term slots).
    pub const SLOT_RANGE: u32 = 1 << 2;
    /// An asset index at or beyond the price table.
    pub const ASSET_RANGE: u32 = 1 << 3;
    /// Parameters out of range (no accounts beyond the card's, 1..=16 slots).
    pub const PARAMS_RANGE: u32 = 1 << 4;
    /// A coefficient equal to `i32::MIN`.
    pub const COEFF_RANGE: u32 = 1 << 5;
    /// A command ring entry whose sequence number is not the one expected.
    pub const SEQ_GAP: u32 = 1 << 6;
    /// The event ring was full and an event was dropped.
    pub const EVENT_OVERFLOW: u32 = 1 << 7;
    /// A command ring entry that does not decode.
    pub const BAD_ENTRY: u32 = 1 << 8;
}

use offset::*;

/// The register map.
pub const REGISTERS: &[RegDef] = &[
    RegDef {
        name: "ID_TYPE",
        offset: ID_TYPE,
        access: Access::Ro,
        reset: TYPE_LIQSCAN,
        doc: "block type, ASCII \"LQSC\"",
    },
    RegDef {
        name: "ID_VERSION",
        offset: ID_VERSION,
        access: Access::Ro,
        reset: VERSION,
        doc: "block version, major.minor in 31:16 and 15:0",
    },
    RegDef {
        name: "ID_NEXT",
        offset: ID_NEXT,
        access: Access::Ro,
        reset: 0,
        doc: "offset of the next register block, 0 for none",
    },
    RegDef {
        name: "BUILD_ID",
        offset: BUILD_ID,
        access: Access::Ro,
        reset: 0,
        doc: "low 32 bits of the git commit the Verilog was generated from (0 if unknown)",
    },
    RegDef {
        name: "SCRATCH",
        offset: SCRATCH,
        access: Access::Rw,
        reset: 0,
        doc: "scratch register: bring-up read/write test",
    },
    RegDef {
        name: "CONFIG_LANES",
        offset: CONFIG_LANES,
        access: Access::Ro,
        reset: CONFIG.lanes,
        doc: "parallel MAC lanes (accounts per bitmap group)",
    },
    RegDef {
        name: "CONFIG_ACCOUNTS",
        offset: CONFIG_ACCOUNTS,
        access: Access::Ro,
        reset: CONFIG.accounts,
        doc: "accounts the card holds",
    },
    RegDef {
        name: "CONFIG_ASSETS",
        offset: CONFIG_ASSETS,
        access: Access::Ro,
        reset: CONFIG.assets,
        doc: "price table entries",
    },
    RegDef {
        name: "CONFIG_TERM_SLOTS",
        offset: CONFIG_TERM_SLOTS,
        access: Access::Ro,
        reset: CONFIG.term_slots,
        doc: "term slots stored per account",
    },
    RegDef {
        name: "CONTROL",
        offset: CONTROL,
        access: Access::Wo,
        reset: 0,
        doc: "bit 0: soft reset of the scan core (self-clearing; memories are kept)",
    },
    RegDef {
        name: "STATUS",
        offset: STATUS,
        access: Access::Ro,
        reset: 0,
        doc: "bit 0 busy, bit 1 bitmap words pending",
    },
    RegDef {
        name: "ERRORS",
        offset: ERRORS,
        access: Access::Rw1c,
        reset: 0,
        doc: "sticky error bits (see error_bit), write 1 to clear",
    },
    RegDef {
        name: "STAT_COMMANDS",
        offset: STAT_COMMANDS,
        access: Access::Ro,
        reset: 0,
        doc: "commands accepted by the core (wraps)",
    },
    RegDef {
        name: "STAT_SCANS",
        offset: STAT_SCANS,
        access: Access::Ro,
        reset: 0,
        doc: "scans completed (wraps)",
    },
    RegDef {
        name: "STAT_WORDS",
        offset: STAT_WORDS,
        access: Access::Ro,
        reset: 0,
        doc: "bitmap group words sent (wraps)",
    },
    RegDef {
        name: "STAT_BUSY_CYCLES",
        offset: STAT_BUSY_CYCLES,
        access: Access::Ro,
        reset: 0,
        doc: "cycles the scan sequencer was busy (wraps)",
    },
    RegDef {
        name: "ACTIVE_ACCOUNTS",
        offset: ACTIVE_ACCOUNTS,
        access: Access::Ro,
        reset: 0,
        doc: "active accounts, set by the parameters command",
    },
    RegDef {
        name: "ACTIVE_SLOTS",
        offset: ACTIVE_SLOTS,
        access: Access::Ro,
        reset: 0,
        doc: "term slots scanned per account, set by the parameters command",
    },
    RegDef {
        name: "CMD_RING_ENTRIES",
        offset: CMD_RING_ENTRIES,
        access: Access::Rw,
        reset: 0,
        doc: "command ring entries (power of two; ring engine, see docs)",
    },
    RegDef {
        name: "CMD_DOORBELL",
        offset: CMD_DOORBELL,
        access: Access::Wo,
        reset: 0,
        doc: "host posts its command producer index here",
    },
    RegDef {
        name: "EVT_RING_ADDR_LO",
        offset: EVT_RING_ADDR_LO,
        access: Access::Rw,
        reset: 0,
        doc: "event ring base in host memory, bits 31:0",
    },
    RegDef {
        name: "EVT_RING_ADDR_HI",
        offset: EVT_RING_ADDR_HI,
        access: Access::Rw,
        reset: 0,
        doc: "event ring base in host memory, bits 63:32",
    },
    RegDef {
        name: "EVT_RING_ENTRIES",
        offset: EVT_RING_ENTRIES,
        access: Access::Rw,
        reset: 0,
        doc: "event ring entries (power of two)",
    },
    RegDef {
        name: "EVT_CONSUMER",
        offset: EVT_CONSUMER,
        access: Access::Wo,
        reset: 0,
        doc: "host posts its event consumer index here; the card waits rather than overwrite unread events",
    },
    RegDef {
        name: "CMD_RING_ADDR_LO",
        offset: CMD_RING_ADDR_LO,
        access: Access::Rw,
        reset: 0,
        doc: "command ring base in host memory, bits 31:0 (RTL card: the ring is fetched by DMA)",
    },
    RegDef {
        name: "CMD_RING_ADDR_HI",
        offset: CMD_RING_ADDR_HI,
        access: Access::Rw,
        reset: 0,
        doc: "command ring base in host memory, bits 63:32",
    },
];

/// Finds a register by name.
pub fn by_name(name: &str) -> Option<&'static RegDef> {
    REGISTERS.iter().find(|r| r.name == name)
}

/// Finds a register by byte offset.
pub fn by_offset(offset: u32) -> Option<&'static RegDef> {
    REGISTERS.iter().find(|r| r.offset == offset)
}

/// The register table in Markdown, as carried in `docs/REGISTERS.md`.
pub fn markdown_table() -> String {
    markdown_table_of(REGISTERS)
}

/// A Markdown table of `defs` (the register map, or the link file header of [`crate::abi::shm`]).
pub fn markdown_table_of(defs: &[RegDef]) -> String {
    let mut s = String::from("| offset | name | access | reset | meaning |\n|---|---|---|---|---|\n");
    for r in defs {
        s.push_str(&format!(
            "| 0x{:03X} | {} | {} | 0x{:08X} | {} |\n",
            r.offset,
            r.name,
            r.access.as_str(),
            r.reset,
            r.doc
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_aligned_unique_and_sorted() {
        for w in REGISTERS.windows(2) {
            assert!(w[0].offset < w[1].offset, "{} before {}", w[0].name, w[1].name);
        }
        for r in REGISTERS {
            assert_eq!(r.offset % 4, 0, "{} misaligned", r.name);
            assert!(r.offset < CMD_RING_WINDOW);
            assert_eq!(by_name(r.name), Some(r));
            assert_eq!(by_offset(r.offset), Some(r));
        }
        assert_eq!(REGISTERS[0].offset, 0);
        assert_eq!(REGISTERS[0].reset, TYPE_LIQSCAN);
        assert_eq!(&TYPE_LIQSCAN.to_be_bytes(), b"LQSC");
    }
}
