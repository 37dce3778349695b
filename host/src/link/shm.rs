//! The shared-memory link file: exclusive to one card, with an owner and a generation.
//!
//! ```text
//!   card: open(create) ─ flock(LOCK_EX|LOCK_NB) ─┬─ held by another card: refuse (Busy: path, owner)
//!                                                └─ taken: owner, GENERATION + 1, zero BAR and
//!                                                   ring, layout, MAGIC last; lock held until exit
//!   host: open ─ flock(LOCK_SH|LOCK_NB), dropped at once ─┬─ free: no card serves the file
//!                                                        │  (NotServed, or how to start one)
//!                                                        └─ held: wait for MAGIC (up to 2 s),
//!                                                           remember GENERATION
//! ```
//!
//! The pid in the header is for people (messages); the lock decides. A card in another pid
//! namespace shows a pid that means nothing here, and is still detected correctly.
//!
//! The lock is an advisory `flock` on the open file (rustix): the kernel drops it when the card
//! exits however it exits, so a file left behind by a killed card is recognised as stale (lock
//! free) and the next card takes it over. The header fields are defined once in
//! `liqscan_hdl::abi::shm`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use liqscan_hdl::abi::regs::TYPE_LIQSCAN;
use liqscan_hdl::abi::ring::RING_ENTRY_BYTES;
use liqscan_hdl::abi::shm::{SHM_HEADER_BYTES, SHM_MAGIC, SHM_VERSION, field};
use memmap2::MmapOptions;
use rustix::fs::{FlockOperation, flock};

use super::mmio::Region;
use super::{BAR_BYTES, LinkError, LinkMemory};

/// How long a card keeps trying for a lock that is held, before it refuses: a host's probe
/// (below) holds the lock for a few microseconds, and must not make a starting card give up.
const LOCK_PATIENCE: Duration = Duration::from_millis(200);
/// How long a host waits for a card that holds the file to write its header.
pub const LAYOUT_PATIENCE: Duration = Duration::from_secs(2);

/// The card that owns (or last owned) a link file, as its header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Random id the card drew when it took the file.
    pub id: u64,
    /// The file's generation under this card.
    pub generation: u32,
    /// When the card took the file, Unix seconds.
    pub taken_at: u64,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}, id {:016x}, generation {}", self.pid, self.id, self.generation)?;
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if self.taken_at != 0 && now >= self.taken_at {
            write!(f, ", taken {} s ago", now - self.taken_at)?;
        }
        Ok(())
    }
}

/// A card's claim on a link file: dropping it (closing the file) releases the lock.
#[derive(Debug)]
struct Claim {
    _file: File,
}

/// The header of one mapped link file; shared by the clones of a [`LinkMemory`].
#[derive(Debug)]
pub struct ShmFile {
    path: PathBuf,
    header: Region,
    _claim: Option<Claim>,
}

impl ShmFile {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's generation now (one aligned load from the mapped header; no syscall).
    #[inline]
    pub fn generation(&self) -> u32 {
        self.header.load_at(field::GENERATION as usize, std::sync::atomic::Ordering::Acquire)
    }

    /// The owner the header names now.
    pub fn owner(&self) -> Owner {
        read_owner(&self.header)
    }
}

/// What [`take`] found in the file before it took it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Previous {
    /// A new (empty) file.
    New,
    /// A file left by a card that no longer holds it (killed, or stopped without removing it).
    Stale(Owner),
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> LinkError + '_ {
    move |source| LinkError::Io { path: path.display().to_string(), source }
}

fn read_owner(h: &Region) -> Owner {
    let r = |off: u32| h.load_at(off as usize, std::sync::atomic::Ordering::Acquire);
    Owner {
        pid: r(field::OWNER_PID),
        id: r(field::OWNER_ID_LO) as u64 | (r(field::OWNER_ID_HI) as u64) << 32,
        generation: r(field::GENERATION),
        taken_at: r(field::TAKEN_AT_LO) as u64 | (r(field::TAKEN_AT_HI) as u64) << 32,
    }
}

/// Maps `len` bytes of `file` shared.
fn map(file: &File, len: usize, path: &Path) -> Result<Region, LinkError> {
    let map = MmapOptions::new().len(len).map_raw(file).map_err(io_err(path))?;
    Ok(Region::whole(map, "shm"))
}

/// Reads the owner from the first page of a file that may or may not be a link file (for the
/// refusal message; `None` when it is not one or is too short).
fn peek_owner(file: &File, path: &Path) -> Option<Owner> {
    let len = file.metadata().ok()?.len() as usize;
    if len < SHM_HEADER_BYTES as usize {
        return None;
    }
    let h = map(file, SHM_HEADER_BYTES as usize, path).ok()?;
    (h.read32(field::MAGIC as usize).ok()? == SHM_MAGIC).then(|| read_owner(&h))
}

/// The card side: takes `path` (creating it if missing) for a card with an event ring of
/// `evt_entries`, exclusively, and lays it out. Refuses with [`LinkError::Busy`] when another
/// card holds it; reuses a stale file (its previous owner is returned).
pub fn take(path: &Path, evt_entries: usize) -> Result<(LinkMemory, Previous), LinkError> {
    super::check_entries(evt_entries)?;
    let io = io_err(path);
    let file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(&io)?;
    let start = Instant::now();
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => break,
            Err(rustix::io::Errno::WOULDBLOCK) if start.elapsed() < LOCK_PATIENCE => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(LinkError::Busy {
                    path: path.display().to_string(),
                    owner: peek_owner(&file, path),
                });
            }
            Err(e) => return Err(io(e.into())),
        }
    }
    // Ours now. Nothing was written before this point.
    let evt_offset = SHM_HEADER_BYTES as usize + BAR_BYTES;
    let need = evt_offset + evt_entries * RING_ENTRY_BYTES;
    let old_len = file.metadata().map_err(&io)?.len() as usize;
    let mut previous = Previous::New;
    if old_len >= 4 {
        let first = map(&file, old_len.min(SHM_HEADER_BYTES as usize), path)?;
        match first.read32(0)? {
            // A link file (left by a card that has gone: we hold the lock).
            SHM_MAGIC if old_len >= SHM_HEADER_BYTES as usize => {
                let o = read_owner(&first);
                if o.generation != 0 {
                    previous = Previous::Stale(o);
                }
            }
            // Half-written by a card that died taking it, or the header-less layout of
            // earlier versions.
            0 | TYPE_LIQSCAN => {}
            other => {
                return Err(LinkError::NotALinkFile {
                    path: path.display().to_string(),
                    why: format!("it holds other data (first word {other:#010x}); refusing to overwrite it"),
                });
            }
        }
    }
    // Never shrink: a host may still map the old length, and would fault beyond a new end.
    if old_len < need {
        file.set_len(need as u64).map_err(&io)?;
    }
    let whole = map(&file, need, path)?;
    let header = whole.slice(0, SHM_HEADER_BYTES as usize, "shm header")?;
    let generation = match previous {
        Previous::Stale(o) => o.generation.wrapping_add(1).max(1),
        Previous::New => 1,
    };
    let id: u64 = rand::random();
    let taken_at = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    // Owner first, then the generation (a host still attached to the file sees the change and
    // fails over), then the BAR and ring are cleared, the layout written, and MAGIC last.
    header.write32(field::OWNER_PID as usize, std::process::id())?;
    header.write32(field::OWNER_ID_LO as usize, id as u32)?;
    header.write32(field::OWNER_ID_HI as usize, (id >> 32) as u32)?;
    header.write32(field::TAKEN_AT_LO as usize, taken_at as u32)?;
    header.write32(field::TAKEN_AT_HI as usize, (taken_at >> 32) as u32)?;
    header.write32(field::GENERATION as usize, generation)?;
    whole.slice(SHM_HEADER_BYTES as usize, need - SHM_HEADER_BYTES as usize, "shm body")?.zero();
    header.write32(field::BAR_OFFSET as usize, SHM_HEADER_BYTES)?;
    header.write32(field::EVT_OFFSET as usize, evt_offset as u32)?;
    header.write32(field::EVT_ENTRIES as usize, evt_entries as u32)?;
    header.write32(field::VERSION as usize, SHM_VERSION)?;
    header.write32(field::MAGIC as usize, SHM_MAGIC)?;
    let shm = ShmFile { path: path.to_path_buf(), header, _claim: Some(Claim { _file: file }) };
    Ok((layout(whole, shm)?, previous))
}

/// The host side: opens a link file a card has taken and is serving. A card that holds the
/// file but is still laying it out is waited for (up to [`LAYOUT_PATIENCE`]).
pub fn open(path: &Path) -> Result<LinkMemory, LinkError> {
    let p = || path.display().to_string();
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LinkError::NoLinkFile { path: p() });
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let held = held_by_a_card(&file, path)?;
    let start = Instant::now();
    loop {
        let len = file.metadata().map_err(io_err(path))?.len() as usize;
        let mut magic = 0;
        if len >= SHM_HEADER_BYTES as usize {
            let whole = map(&file, len, path)?;
            let header = whole.slice(0, SHM_HEADER_BYTES as usize, "shm header")?;
            magic = header.read32(field::MAGIC as usize)?;
            if magic == SHM_MAGIC {
                let version = header.read32(field::VERSION as usize)?;
                if version >> 16 != SHM_VERSION >> 16 {
                    return Err(LinkError::NotALinkFile {
                        path: p(),
                        why: format!("header version {version:#010x}, this host reads {SHM_VERSION:#010x}"),
                    });
                }
                if !held {
                    return Err(LinkError::NotServed { path: p(), last: read_owner(&header) });
                }
                let shm = ShmFile { path: path.to_path_buf(), header, _claim: None };
                return layout(whole, shm);
            }
        }
        let why = if !held {
            format!(
                "no card holds it and it has no link header ({len} bytes, first word {magic:#010x}); \
                 start a card: `liqscan card --shm {}`",
                p()
            )
        } else if start.elapsed() > LAYOUT_PATIENCE {
            format!("a card holds it but has not written its header in {LAYOUT_PATIENCE:?}")
        } else {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        };
        return Err(LinkError::NotALinkFile { path: p(), why });
    }
}

/// Whether a card holds the file's lock: a shared lock is free only when no card holds the
/// exclusive one. (Taken and dropped at once: a card starting meanwhile waits it out.)
fn held_by_a_card(file: &File, path: &Path) -> Result<bool, LinkError> {
    match flock(file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = flock(file, FlockOperation::Unlock);
            Ok(false)
        }
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(true),
        Err(e) => Err(io_err(path)(e.into())),
    }
}

/// Splits a mapped link file by its header's layout.
fn layout(whole: Region, shm: ShmFile) -> Result<LinkMemory, LinkError> {
    let h = &shm.header;
    let bar_offset = h.read32(field::BAR_OFFSET as usize)? as usize;
    let evt_offset = h.read32(field::EVT_OFFSET as usize)? as usize;
    let entries = h.read32(field::EVT_ENTRIES as usize)? as usize;
    super::check_entries(entries)?;
    let evt_bytes = entries * RING_ENTRY_BYTES;
    if bar_offset < SHM_HEADER_BYTES as usize
        || evt_offset < bar_offset + BAR_BYTES
        || evt_offset + evt_bytes > whole.len()
    {
        return Err(LinkError::NotALinkFile {
            path: shm.path.display().to_string(),
            why: format!(
                "header layout (BAR at {bar_offset:#x}, {entries} events at {evt_offset:#x}) does not fit its {:#x} bytes",
                whole.len()
            ),
        });
    }
    Ok(LinkMemory {
        bar: whole.slice(bar_offset, BAR_BYTES, "bar0")?,
        dma: whole.slice(evt_offset, evt_bytes, "event ring")?,
        evt_ring_addr: evt_offset as u64,
        shm: Some(std::sync::Arc::new(shm)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("link");
        (dir, p)
    }

    #[test]
    fn a_second_card_on_a_held_file_is_refused_naming_the_file_and_the_owner() {
        let (_d, p) = file();
        let (first, prev) = take(&p, 128).unwrap();
        assert_eq!(prev, Previous::New);
        let owner = first.shm_file().unwrap().owner();
        assert_eq!((owner.pid, owner.generation), (std::process::id(), 1));
        first.bar.write32(0x10, 0xABCD).unwrap();
        let t = Instant::now();
        match take(&p, 256) {
            Err(e @ LinkError::Busy { .. }) => {
                let LinkError::Busy { owner: got, .. } = &e else { unreachable!() };
                assert_eq!(*got, Some(owner));
                let msg = e.to_string();
                assert!(msg.contains(&p.display().to_string()), "{msg}");
                assert!(msg.contains(&format!("pid {}", owner.pid)), "{msg}");
                assert!(msg.contains("generation 1"), "{msg}");
            }
            other => panic!("a second card took a held file: {other:?}"),
        }
        assert!(t.elapsed() >= LOCK_PATIENCE, "it waited out a host's probe first");
        // The refusal changed nothing: same owner, same layout, same BAR contents.
        assert_eq!(first.shm_file().unwrap().owner(), owner);
        assert_eq!(first.bar.read32(0x10).unwrap(), 0xABCD);
        assert_eq!(std::fs::metadata(&p).unwrap().len() as usize, 0x1000 + BAR_BYTES + 128 * 64);
        // A host opens it: a card holds it.
        let host = open(&p).unwrap();
        assert_eq!(host.evt_entries(), 128);
        assert_eq!(host.shm_file().unwrap().generation(), 1);
    }

    #[test]
    fn a_stale_file_is_named_by_the_host_and_reused_by_the_next_card() {
        let (_d, p) = file();
        let (first, _) = take(&p, 256).unwrap();
        let last = first.shm_file().unwrap().owner();
        drop(first); // the card stops: its lock goes, its file stays
        let msg = match open(&p) {
            Err(e @ LinkError::NotServed { .. }) => e.to_string(),
            other => panic!("the host opened a file nobody serves: {other:?}"),
        };
        let path = p.display().to_string();
        assert!(msg.contains(&format!("`liqscan card --shm {path}`")), "{msg}");
        assert!(msg.contains(&format!("pid {}", last.pid)), "{msg}");
        // The next card takes it over, with a smaller ring: the file never shrinks, the header
        // says what is used.
        let (second, prev) = take(&p, 128).unwrap();
        assert_eq!(prev, Previous::Stale(last));
        let now = second.shm_file().unwrap().owner();
        assert_eq!(now.generation, 2);
        assert_ne!(now.id, last.id, "a new random id");
        assert_eq!(std::fs::metadata(&p).unwrap().len() as usize, 0x1000 + BAR_BYTES + 256 * 64);
        let host = open(&p).unwrap();
        assert_eq!(host.evt_entries(), 128);
        assert_eq!(host.shm_file().unwrap().generation(), 2);
    }

    #[test]
    fn a_missing_file_says_how_to_start_the_card() {
        let (_d, p) = file();
        let e = open(&p).unwrap_err();
        assert!(matches!(e, LinkError::NoLinkFile { .. }), "{e:?}");
        let path = p.display().to_string();
        assert_eq!(
            e.to_string(),
            format!("{path}: no such link file; start the card first: `liqscan card --shm {path}`")
        );
        assert!(!p.exists(), "the host created nothing");
    }

    #[test]
    fn the_host_waits_for_a_card_that_holds_the_file_to_lay_it_out() {
        let (_d, p) = file();
        // A card that has the lock and the length but not yet the header.
        let f = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&p).unwrap();
        flock(&f, FlockOperation::NonBlockingLockExclusive).unwrap();
        f.set_len((0x1000 + BAR_BYTES + 128 * 64) as u64).unwrap();
        let e = open(&p).unwrap_err();
        assert!(e.to_string().contains("has not written its header"), "{e}");
        // It finishes while the host waits.
        let q = p.clone();
        let host = std::thread::spawn(move || open(&q).map(|m| m.evt_entries()));
        std::thread::sleep(Duration::from_millis(50));
        drop(f);
        let (card, _) = take(&p, 128).unwrap();
        assert_eq!(host.join().unwrap().unwrap(), 128);
        drop(card);
    }

    #[test]
    fn a_file_that_is_not_a_link_file_is_refused_and_left_alone() {
        let (_d, p) = file();
        std::fs::write(&p, b"important notes, not a card").unwrap();
        let e = take(&p, 128).unwrap_err();
        assert!(matches!(e, LinkError::NotALinkFile { .. }), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"important notes, not a card");
        assert!(matches!(open(&p), Err(LinkError::NotALinkFile { .. })));
        // Half-written (a card killed while taking it) is a link file to reuse.
        std::fs::write(&p, [0u8; 100]).unwrap();
        let (m, prev) = take(&p, 128).unwrap();
        assert_eq!((prev, m.shm_file().unwrap().generation()), (Previous::New, 1));
    }
}
