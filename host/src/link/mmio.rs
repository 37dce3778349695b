//! Mapped memory regions and the one place where 32-bit register and ring words are accessed.
//!
//! A [`Region`] is a window into a shared memory map (a PCIe BAR from sysfs, a DMA buffer, a
//! file under `/dev/shm`, or a regular file laid out like one). Every access is a single aligned
//! 32-bit load or store. The checked accessors ([`Region::read32`], [`Region::write32`]) refuse
//! misaligned or out-of-range offsets with a [`LinkError`]; the hot path uses the `_at` forms on
//! offsets that were checked once when the ring was set up (ring indices are masked).
//!
//! Accesses go through `AtomicU32` on the mapped address: on x86-64 each is one aligned `mov`
//! (what a volatile access compiles to, so correct for MMIO), and unlike plain volatile it is
//! also well-defined between two processes or threads sharing the memory, which is what the
//! emulated card does. Ordering is explicit at each call: stores of a ring entry are relaxed
//! and the word that publishes it (a doorbell, an event's word 0) is a release store; the
//! poller's load of that word is an acquire load.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use super::LinkError;

/// A window of `len` bytes into a shared mapping. Cloning shares the mapping.
#[derive(Clone)]
pub struct Region {
    map: Arc<MmapRaw>,
    offset: usize,
    len: usize,
    what: &'static str,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Region({}, {:#x}+{:#x})", self.what, self.offset, self.len)
    }
}

impl Region {
    /// The whole of a mapping.
    pub fn whole(map: MmapRaw, what: &'static str) -> Region {
        let len = map.len();
        Region { map: Arc::new(map), offset: 0, len, what }
    }

    /// A sub-window `offset..offset + len` of this region (offsets multiples of 64).
    pub fn slice(&self, offset: usize, len: usize, what: &'static str) -> Result<Region, LinkError> {
        if !offset.is_multiple_of(64) || offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(LinkError::Layout(format!(
                "{what}: window {offset:#x}+{len:#x} does not fit {} of {:#x} bytes (or is not 64-byte aligned)",
                self.what, self.len
            )));
        }
        Ok(Region { map: self.map.clone(), offset: self.offset + offset, len, what })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What this region is (for messages).
    pub fn what(&self) -> &'static str {
        self.what
    }

    fn check(&self, offset: usize) -> Result<(), LinkError> {
        if !offset.is_multiple_of(4) {
            return Err(LinkError::Misaligned { what: self.what, offset });
        }
        if offset.checked_add(4).is_none_or(|end| end > self.len) {
            return Err(LinkError::OutOfRange { what: self.what, offset, len: self.len });
        }
        Ok(())
    }

    #[inline(always)]
    fn word(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset.is_multiple_of(4) && offset + 4 <= self.len);
        // SAFETY: `offset` was checked (by `check`, or by the ring set-up that bounds every
        // masked index) to be 4-byte aligned and inside the mapping, which lives as long as
        // `self.map`; the mapping is page-aligned so the address is 4-byte aligned.
        unsafe { AtomicU32::from_ptr(self.map.as_mut_ptr().add(self.offset + offset) as *mut u32) }
    }

    /// Bounds- and alignment-checked 32-bit read (acquire).
    pub fn read32(&self, offset: usize) -> Result<u32, LinkError> {
        self.check(offset)?;
        Ok(self.word(offset).load(Ordering::Acquire))
    }

    /// Bounds- and alignment-checked 32-bit write (release).
    pub fn write32(&self, offset: usize, value: u32) -> Result<(), LinkError> {
        self.check(offset)?;
        self.word(offset).store(value, Ordering::Release);
        Ok(())
    }

    /// Checks that `offset..offset + bytes` is inside the region and 4-byte aligned; the `_at`
    /// accessors may then be used anywhere in it.
    pub fn check_span(&self, offset: usize, bytes: usize) -> Result<(), LinkError> {
        self.check(offset)?;
        if bytes > 0 {
            self.check(offset + bytes - 4)?;
        }
        Ok(())
    }

    /// Hot-path load of a word inside a span checked with [`check_span`](Self::check_span).
    #[inline(always)]
    pub fn load_at(&self, offset: usize, order: Ordering) -> u32 {
        self.word(offset).load(order)
    }

    /// Hot-path store of a word inside a span checked with [`check_span`](Self::check_span).
    #[inline(always)]
    pub fn store_at(&self, offset: usize, value: u32, order: Ordering) {
        self.word(offset).store(value, order)
    }

    /// Zeroes the region (set-up only).
    pub fn zero(&self) {
        for off in (0..self.len).step_by(4) {
            self.word(off).store(0, Ordering::Relaxed);
        }
        std::sync::atomic::fence(Ordering::Release);
    }
}

/// Opens (or with `create`, creates and sizes) a file and maps `len` bytes of it shared.
/// `len` of `None` maps the file's length; give it for devices whose length reads 0 (XDMA's
/// user device).
pub fn map_file(
    path: &Path,
    len: Option<usize>,
    create: bool,
    what: &'static str,
) -> Result<Region, LinkError> {
    let io = |e: std::io::Error| LinkError::Io { path: path.display().to_string(), source: e };
    let file: File =
        OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len() as usize;
    let len = match len {
        Some(l) => {
            if create && file_len < l {
                file.set_len(l as u64).map_err(io)?;
            }
            l
        }
        None => file_len,
    };
    if len == 0 {
        return Err(LinkError::Layout(format!(
            "{}: length is 0; give the {what} length explicitly (device files such as XDMA's report 0)",
            path.display()
        )));
    }
    let map = MmapOptions::new().len(len).map_raw(&file).map_err(io)?;
    Ok(Region::whole(map, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_bounds_and_alignment() {
        let dir = tempfile::tempdir().unwrap();
        let r = map_file(&dir.path().join("bar"), Some(4096), true, "bar").unwrap();
        r.write32(0, 7).unwrap();
        r.write32(4092, 9).unwrap();
        assert_eq!(r.read32(0).unwrap(), 7);
        assert_eq!(r.read32(4092).unwrap(), 9);
        assert!(matches!(r.read32(4096), Err(LinkError::OutOfRange { .. })));
        assert!(matches!(r.write32(4094, 1), Err(LinkError::Misaligned { .. })));
        assert!(matches!(r.read32(2), Err(LinkError::Misaligned { .. })));
        assert!(matches!(r.read32(usize::MAX - 3), Err(LinkError::OutOfRange { .. })));
        let s = r.slice(1024, 1024, "win").unwrap();
        assert_eq!(s.read32(1024 - 4).unwrap(), 0);
        assert!(s.read32(1024).is_err());
        assert!(r.slice(4032, 128, "x").is_err());
        assert!(r.check_span(0, 4096).is_ok() && r.check_span(64, 4096).is_err());
    }

    #[test]
    fn zero_length_device_needs_a_length() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dev");
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(map_file(&p, None, false, "bar"), Err(LinkError::Layout(_))));
        assert!(map_file(&p, Some(4096), true, "bar").is_ok());
    }
}
