//! # The card link: one host API over memmap2, two backends
//!
//! ```text
//!   host (this crate)                                   card (FPGA, or sim's emulated card)
//!   ─────────────────                                   ───────────────────────────────────
//!   CardLink::post ──16 relaxed stores──> BAR0 command ring window (CMD_RING_WINDOW + 64 i)
//!                  ──release store──────> CMD_DOORBELL (free-running producer index)
//!   CardLink::poll <─acquire load word 0── event ring in host memory (phase bit, seq)
//!                  ──release store──────> EVT_CONSUMER (free-running consumer index, every
//!                                         64 events and whenever the ring is found empty)
//! ```
//!
//! On the hot path the host only stores into the BAR (posted writes) and loads from its own
//! memory; it never reads a card register per tick. Registers are read at bring-up
//! ([`CardLink::open`], [`CardLink::scratch_test`]) and for monitoring.
//!
//! Backends ([`LinkMemory`]):
//! - **PCIe**: BAR 0 mapped from sysfs `/sys/bus/pci/devices/<bdf>/resource0` (or the XDMA user
//!   device, whose length reads 0, so the length is given), and the event ring in a pinned DMA
//!   buffer (a hugetlbfs file where available) whose bus address is written to
//!   `EVT_RING_ADDR_*`. The tests run this backend against regular files laid out the same way.
//! - **Shared memory**: one file under `/dev/shm` holding a header page, the BAR image, then
//!   the event ring, served by the emulated card (`liqscan card`, or its in-process thread
//!   form). The card holds the file under a lock; the header names it and counts generations,
//!   and the host fails over when the generation changes under it ([`shm`]).
//!
//! The same [`CardLink`] and [`LinkEngine`] code drives every backend.
//!
//! Flow control: the card learns how far the host has read the event ring from
//! [`EVT_CONSUMER`] and waits (never drops) when the ring is full; the host learns how far the
//! card has read the command ring from the `cmd_seq` every event carries, and when the ring is
//! half full it posts a fence and drains events until the fence returns. Both full rings
//! back-pressure; neither drops.

mod driver;
mod engine;
mod held;
pub mod mmio;
pub mod shm;

use std::path::Path;
use std::sync::Arc;

pub use driver::{CardLink, LinkOptions, LinkStats};
pub use engine::LinkEngine;
pub use mmio::Region;
pub use shm::{Owner, Previous, ShmFile};

use liqscan_hdl::abi::regs::CMD_RING_WINDOW;
use liqscan_hdl::abi::ring::RING_ENTRY_BYTES;

/// Command ring entries the BAR window holds (the host may configure fewer, a power of two).
pub const CMD_RING_MAX_ENTRIES: usize = 1024;
/// Bytes of the BAR 0 image: registers, then the command ring window.
pub const BAR_BYTES: usize = CMD_RING_WINDOW as usize + CMD_RING_MAX_ENTRIES * RING_ENTRY_BYTES;
/// Default event ring entries (1 MiB of host memory).
pub const DEFAULT_EVT_ENTRIES: usize = 16384;
/// The event consumer register (byte offset in BAR 0, write only): the host posts its
/// free-running event consumer index here so that the card waits instead of overwriting unread
/// events. Defined in the register map (`liqscan_hdl::abi::regs::offset::EVT_CONSUMER`).
pub const EVT_CONSUMER: u32 = liqscan_hdl::abi::regs::offset::EVT_CONSUMER;

/// Why the link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// A file could not be opened, sized or mapped.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A layout that does not fit (sizes, alignment).
    #[error("link layout: {0}")]
    Layout(String),
    /// A register access at an offset that is not a multiple of 4.
    #[error("{what}: access at offset {offset:#x} is not 4-byte aligned")]
    Misaligned {
        /// Region name.
        what: &'static str,
        /// Byte offset.
        offset: usize,
    },
    /// A register access beyond the region.
    #[error("{what}: access at offset {offset:#x} is beyond its {len:#x} bytes")]
    OutOfRange {
        /// Region name.
        what: &'static str,
        /// Byte offset.
        offset: usize,
        /// Region length.
        len: usize,
    },
    /// The card did not identify itself.
    #[error(
        "no liqscan card: ID_TYPE reads {found:#010x} (expected {expected:#010x}); is the card (or `liqscan card`) running?"
    )]
    NotACard {
        /// The value read.
        found: u32,
        /// `TYPE_LIQSCAN`.
        expected: u32,
    },
    /// The card's major version differs from the host's.
    #[error("card register map version {card:#010x}, host speaks {host:#010x}: rebuild one side")]
    Version {
        /// Card's `ID_VERSION`.
        card: u32,
        /// Host's `VERSION`.
        host: u32,
    },
    /// Bring-up scratch register test failed.
    #[error("scratch register test failed: wrote {wrote:#010x}, read {read:#010x}")]
    Scratch {
        /// Written.
        wrote: u32,
        /// Read back.
        read: u32,
    },
    /// The card stopped answering.
    #[error("card did not answer for {ms} ms (waiting for {waiting})")]
    Timeout {
        /// Milliseconds of silence.
        ms: u64,
        /// What the host was waiting for.
        waiting: &'static str,
    },
    /// The card answered wrongly.
    #[error("card answered wrongly: {0}")]
    Protocol(String),
    /// Another card holds the link file.
    #[error(
        "{path} is already served by another card ({}); stop that card first, or give this one another --shm path",
        owner.map_or("owner unknown".to_string(), |o| o.to_string())
    )]
    Busy {
        /// The link file.
        path: String,
        /// The card holding it, as its header says.
        owner: Option<Owner>,
    },
    /// No link file at the path.
    #[error("{path}: no such link file; start the card first: `liqscan card --shm {path}`")]
    NoLinkFile {
        /// The path given.
        path: String,
    },
    /// The file is not a link file (or not yet: a card is still laying it out).
    #[error("{path} is not a liqscan link file: {why}")]
    NotALinkFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// A link file that no card serves: its card stopped or was killed.
    #[error(
        "{path}: no card is serving this link file (its last card, {last}, has stopped); start one: `liqscan card --shm {path}`"
    )]
    NotServed {
        /// The file.
        path: String,
        /// The card that last held it.
        last: Owner,
    },
    /// Another card took the link file while the host was using it: the card the host was
    /// talking to is gone.
    #[error(
        "{path} was taken by another card (generation {was} -> {now}; now {owner}): the card this link was opened on is gone"
    )]
    Taken {
        /// The file.
        path: String,
        /// The generation the link was opened on.
        was: u32,
        /// The generation now.
        now: u32,
        /// The new owner.
        owner: Owner,
    },
}

/// The two memories of a link: BAR 0 (registers and the command ring window) and the DMA
/// buffer holding the event ring.
#[derive(Clone, Debug)]
pub struct LinkMemory {
    /// BAR 0.
    pub bar: Region,
    /// The event ring.
    pub dma: Region,
    /// The event ring's address as the card sees it (bus address for PCIe; the byte offset in
    /// the file for shared memory).
    pub evt_ring_addr: u64,
    /// Shared memory: the link file's header (owner, generation) and, on the card side, the
    /// lock that makes the file the card's alone. `None` for PCIe.
    shm: Option<Arc<ShmFile>>,
}

impl LinkMemory {
    /// The card side: takes the shared-memory link file at `path` (creating it; normally under
    /// `/dev/shm`) for an event ring of `evt_entries`, exclusively: see [`shm::take`]. The lock
    /// is held until the last clone of the returned memory is dropped.
    pub fn shm_create(path: &Path, evt_entries: usize) -> Result<LinkMemory, LinkError> {
        Ok(shm::take(path, evt_entries)?.0)
    }

    /// As [`shm_create`](Self::shm_create), also saying whether a stale file was reused.
    pub fn shm_take(path: &Path, evt_entries: usize) -> Result<(LinkMemory, Previous), LinkError> {
        shm::take(path, evt_entries)
    }

    /// The host side: opens a link file that a running card has taken: see [`shm::open`].
    pub fn shm_open(path: &Path) -> Result<LinkMemory, LinkError> {
        shm::open(path)
    }

    /// The shared-memory link file's header, if this is one.
    pub fn shm_file(&self) -> Option<&ShmFile> {
        self.shm.as_deref()
    }

    /// PCIe: BAR 0 from `bar` (sysfs `resource0`, or the XDMA user device with `bar_len`
    /// given), the event ring in `dma` (a hugetlbfs file; `dma_len` bytes) at bus address
    /// `dma_bus_addr`. With `create`, missing files are created and sized: that is how the
    /// tests lay out regular files as a BAR and a buffer.
    pub fn pcie(
        bar: &Path,
        bar_len: Option<usize>,
        dma: &Path,
        dma_len: usize,
        dma_bus_addr: u64,
        create: bool,
    ) -> Result<LinkMemory, LinkError> {
        let bar = mmio::map_file(bar, bar_len, create, "bar0")?;
        if bar.len() < BAR_BYTES {
            return Err(LinkError::Layout(format!(
                "BAR 0 is {:#x} bytes; the register map and command ring window need {BAR_BYTES:#x}",
                bar.len()
            )));
        }
        check_entries(dma_len / RING_ENTRY_BYTES)?;
        let dma = mmio::map_file(dma, Some(dma_len), create, "event ring")?;
        Ok(LinkMemory { bar, dma, evt_ring_addr: dma_bus_addr, shm: None })
    }

    /// Event ring entries this memory holds.
    pub fn evt_entries(&self) -> usize {
        self.dma.len() / RING_ENTRY_BYTES
    }
}

fn check_entries(n: usize) -> Result<(), LinkError> {
    if n < 128 || !n.is_power_of_two() || n > 1 << 24 {
        return Err(LinkError::Layout(format!(
            "event ring of {n} entries: need a power of two in 128..=2^24"
        )));
    }
    Ok(())
}
