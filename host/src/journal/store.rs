//! The journal directory: segments, snapshots, the writer and recovery.
//!
//! ```text
//!  dir/
//!    snap-00000000000000000000.snap   state as of record 0 (written when the journal is made)
//!    snap-00000000000000041000.snap   state as of record 41000 (newest)
//!    wal-00000000000000040001.log     records 40001.. (preallocated, memory-mapped)
//!    wal-00000000000000041001.log     records 41001..
//! ```
//!
//! Appending copies a frame into a memory-mapped, preallocated segment: no system call, and the
//! record is in the kernel's page cache the moment the copy ends, so it survives a kill -9 of
//! the process whatever the fsync policy. The policy only decides when `msync` pushes the pages
//! to the disk, which is what survives a power cut or a kernel crash.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use memmap2::MmapMut;

use super::frame::{self, End, MAX_RECORD};
use super::record::{Record, decode_payload, encode_payload};
use super::state::{ApplyError, DurableState};

/// When appended records are forced to the disk (`msync`).
///
/// Every policy survives a kill -9 of the keeper (the pages are in the kernel already); they
/// differ in what a power cut or kernel crash may take: nothing ([`Always`](Self::Always)), up
/// to `records` records or `millis` ms ([`Batch`](Self::Batch)), or whatever the kernel had not
/// yet written back, usually up to 30 s ([`Never`](Self::Never)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `msync` after every record (slow: one disk flush per record).
    Always,
    /// `msync` once `records` records or `millis` ms have gathered since the last one
    /// (checked on append and by [`Journal::sync_due`]).
    Batch {
        /// Records per flush.
        records: u32,
        /// Longest time between flushes while records arrive.
        millis: u64,
    },
    /// Never flush explicitly; the kernel writes back in its own time.
    Never,
}

/// Journal settings.
#[derive(Clone, Debug)]
pub struct JournalConfig {
    /// When to flush to disk.
    pub fsync: FsyncPolicy,
    /// Bytes preallocated per segment file.
    pub segment_bytes: usize,
    /// Take a snapshot every this many records (`None`: only when asked).
    pub snapshot_every: Option<u64>,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            fsync: FsyncPolicy::Batch { records: 256, millis: 10 },
            segment_bytes: 64 << 20,
            snapshot_every: Some(1_000_000),
        }
    }
}

/// What went wrong with the journal. Corruption errors name the file and the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A bad frame with valid records after it: not a torn tail, so it is not cut.
    #[error(
        "journal {path} is corrupt at byte {offset} ({why}) and valid records follow at byte \
         {next_valid}: this is damage, not a torn write; restore the file from a copy, or move \
         it and every later segment aside to recover up to the record before it"
    )]
    Corrupt {
        /// Segment file.
        path: PathBuf,
        /// Offset of the bad frame.
        offset: u64,
        /// Why the frame is bad.
        why: String,
        /// Offset of the next valid frame.
        next_valid: u64,
    },
    /// A segment that is not the last ends in a torn frame: later records exist, so the gap
    /// cannot be a crash's torn tail.
    #[error("journal {path} ends in a bad frame at byte {offset} ({why}) but later segments exist")]
    TornBeforeLast {
        /// Segment file.
        path: PathBuf,
        /// Offset of the bad frame.
        offset: u64,
        /// Why it is bad.
        why: String,
    },
    /// A frame with a valid checksum whose record does not decode or does not apply.
    #[error("journal {path}: record {seq} at byte {offset} is unusable: {why}")]
    BadRecord {
        /// Segment file.
        path: PathBuf,
        /// Offset of the frame.
        offset: u64,
        /// Its sequence number.
        seq: u64,
        /// What is wrong.
        why: String,
    },
    /// Sequence numbers do not follow on.
    #[error("journal {path}: expected record {expected} at byte {offset}, found {found}")]
    Gap {
        /// Segment file.
        path: PathBuf,
        /// Offset.
        offset: u64,
        /// The sequence number due.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// No snapshot could be loaded.
    #[error("no valid snapshot in {dir} ({tried}); the journal cannot be replayed without one")]
    NoSnapshot {
        /// The journal directory.
        dir: PathBuf,
        /// The snapshots tried and why each failed.
        tried: String,
    },
    /// The journal was written for another book shape.
    #[error(
        "journal holds {found_slots} slots x {found_assets} assets, asked for {slots} x {assets}: \
         use the same venue and slot count, or another journal directory"
    )]
    Shape {
        /// Slots asked for.
        slots: usize,
        /// Assets asked for.
        assets: usize,
        /// Slots in the journal.
        found_slots: usize,
        /// Assets in the journal.
        found_assets: usize,
    },
    /// An append was refused: the record does not fit the state; nothing was written.
    #[error("record refused: {0}")]
    Refused(#[from] ApplyError),
    /// A record larger than [`MAX_RECORD`].
    #[error("record of {0} bytes exceeds the {MAX_RECORD}-byte limit")]
    TooLarge(usize),
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io { op, path: path.to_path_buf(), source }
}

/// A torn tail that recovery cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailCut {
    /// Segment file.
    pub path: PathBuf,
    /// Where the valid data ends (the torn frame started here).
    pub offset: u64,
    /// Bytes zeroed.
    pub bytes: u64,
    /// Why the frame was bad.
    pub why: String,
}

/// What [`Journal::open`] found and did.
#[derive(Clone, Debug, Default)]
pub struct Recovery {
    /// True when the directory held no journal and a new one was made.
    pub fresh: bool,
    /// Sequence number of the snapshot loaded.
    pub snapshot_seq: u64,
    /// Records replayed after it.
    pub replayed: u64,
    /// Sequence number of the last record recovered.
    pub last_seq: u64,
    /// The torn tail cut, if any.
    pub tail: Option<TailCut>,
    /// Snapshots that could not be loaded (a newer one was damaged), and why.
    pub bad_snapshots: Vec<(PathBuf, String)>,
    /// Leftover temporary files removed.
    pub removed_temp: Vec<PathBuf>,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.fresh {
            return write!(f, "new journal");
        }
        write!(
            f,
            "recovered to record {} (snapshot {} + {} replayed)",
            self.last_seq, self.snapshot_seq, self.replayed
        )?;
        if let Some(t) = &self.tail {
            write!(
                f,
                "; torn tail cut in {} at byte {} ({} bytes: {})",
                t.path.display(),
                t.offset,
                t.bytes,
                t.why
            )?;
        }
        for (p, why) in &self.bad_snapshots {
            write!(f, "; skipped damaged snapshot {} ({why})", p.display())?;
        }
        Ok(())
    }
}

/// Counters of the writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records appended.
    pub records: u64,
    /// Frame bytes appended.
    pub bytes: u64,
    /// `msync` calls.
    pub syncs: u64,
    /// Snapshots written.
    pub snapshots: u64,
    /// Segments started.
    pub segments: u64,
}

struct Segment {
    path: PathBuf,
    map: MmapMut,
    /// Write offset.
    off: usize,
    /// Bytes already flushed.
    synced: usize,
}

/// The write-ahead journal: appends records, mirrors the state they build, takes snapshots.
///
/// One writer per directory. A record is validated against the state before it is written
/// ([`JournalError::Refused`] otherwise), so the journal never holds a record that replay would
/// refuse.
pub struct Journal {
    dir: PathBuf,
    cfg: JournalConfig,
    state: DurableState,
    seg: Segment,
    payload: Vec<u8>,
    frame: Vec<u8>,
    unsynced: u32,
    last_sync: Instant,
    since_snapshot: u64,
    stats: JournalStats,
    /// The automatic snapshot being written on its own thread, if any.
    background: Option<std::thread::JoinHandle<Result<(), JournalError>>>,
    /// Told how long each flush to the disk took (nanoseconds), for the metrics.
    on_sync: Option<SyncHook>,
}

/// Called with the duration of each flush of appended records to the disk, in nanoseconds
/// (the keeper feeds it to the `liqscan_journal_sync_seconds` histogram).
pub type SyncHook = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

fn seg_name(start: u64) -> String {
    format!("wal-{start:020}.log")
}

fn snap_name(seq: u64) -> String {
    format!("snap-{seq:020}.snap")
}

fn parse_num(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()
}

struct Listing {
    snaps: Vec<(u64, PathBuf)>,
    segs: Vec<(u64, PathBuf)>,
    temps: Vec<PathBuf>,
}

fn list(dir: &Path) -> Result<Listing, JournalError> {
    let mut l = Listing { snaps: Vec::new(), segs: Vec::new(), temps: Vec::new() };
    for e in fs::read_dir(dir).map_err(io("read directory", dir))? {
        let e = e.map_err(io("read directory", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(n) = parse_num(&name, "snap-", ".snap") {
            l.snaps.push((n, e.path()));
        } else if let Some(n) = parse_num(&name, "wal-", ".log") {
            l.segs.push((n, e.path()));
        } else if name.ends_with(".tmp") {
            l.temps.push(e.path());
        }
    }
    l.snaps.sort();
    l.segs.sort();
    Ok(l)
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("sync directory", dir))
}

fn load_snapshot(path: &Path) -> Result<DurableState, String> {
    let buf = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let f = frame::decode_at(&buf, 0, usize::MAX).map_err(|e| e.to_string())?;
    if f.end() != buf.len() {
        return Err(format!("{} bytes after the snapshot frame", buf.len() - f.end()));
    }
    let state: DurableState =
        serde_json::from_slice(f.payload).map_err(|e| format!("snapshot does not decode: {e}"))?;
    if state.seq != f.seq || state.last_ts.len() != state.prices.len() {
        return Err("snapshot header and body disagree".into());
    }
    Ok(state)
}

fn write_snapshot(dir: &Path, state: &DurableState) -> Result<PathBuf, JournalError> {
    let payload = serde_json::to_vec(state).expect("state serialises");
    let mut buf = Vec::with_capacity(payload.len() + frame::HEADER);
    frame::encode(state.seq, &payload, &mut buf);
    let tmp = dir.join(format!("{}.tmp", snap_name(state.seq)));
    let path = dir.join(snap_name(state.seq));
    {
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&buf).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("sync", &tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
    sync_dir(dir)?;
    Ok(path)
}

fn create_segment(dir: &Path, start: u64, bytes: usize) -> Result<Segment, JournalError> {
    let path = dir.join(seg_name(start));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(io("create", &path))?;
    preallocate(&file, bytes as u64).map_err(io("preallocate", &path))?;
    file.sync_all().map_err(io("sync", &path))?;
    sync_dir(dir)?;
    map_segment(path, file, 0)
}

/// Gives the file `len` bytes of allocated (zeroed) blocks with `posix_fallocate`, so a full
/// disk is an error here, at segment creation, instead of a SIGBUS on a later write into the
/// mapping. Extends the file if shorter; never shrinks it.
fn preallocate(file: &File, len: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(len).map_err(|_| std::io::Error::other("segment too large"))?;
    // SAFETY: a valid open file descriptor; posix_fallocate touches no memory of ours.
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        e => Err(std::io::Error::from_raw_os_error(e)),
    }
}

fn map_segment(path: PathBuf, file: File, off: usize) -> Result<Segment, JournalError> {
    // SAFETY: the journal directory has one writer (this process); nothing else truncates or
    // writes the file while it is mapped.
    let map = unsafe { MmapMut::map_mut(&file) }.map_err(io("map", &path))?;
    Ok(Segment { path, map, off, synced: off })
}

impl Journal {
    /// Opens the journal in `dir` for a book of `slots` slots and `assets` assets, recovering
    /// the state of the last durable record, or makes a new one if `dir` holds none.
    ///
    /// Recovery loads the newest snapshot that checks out, replays the segments after it,
    /// cuts a torn tail (and reports it), and refuses damage in the middle with the offset.
    pub fn open(
        dir: &Path,
        slots: usize,
        assets: usize,
        cfg: JournalConfig,
    ) -> Result<(Journal, Recovery), JournalError> {
        fs::create_dir_all(dir).map_err(io("create directory", dir))?;
        let l = list(dir)?;
        let mut rec = Recovery::default();
        for t in &l.temps {
            fs::remove_file(t).map_err(io("remove", t))?;
            rec.removed_temp.push(t.clone());
        }
        if l.snaps.is_empty() && l.segs.is_empty() {
            let state = DurableState::new(slots, assets);
            write_snapshot(dir, &state)?;
            let seg = create_segment(dir, 1, cfg.segment_bytes)?;
            rec.fresh = true;
            let stats = JournalStats { segments: 1, ..Default::default() };
            return Ok((Journal::assemble(dir, cfg, state, seg, stats), rec));
        }
        let mut state = None;
        let mut tried = Vec::new();
        for (_, path) in l.snaps.iter().rev() {
            match load_snapshot(path) {
                Ok(s) => {
                    state = Some(s);
                    break;
                }
                Err(why) => tried.push((path.clone(), why)),
            }
        }
        let Some(mut state) = state else {
            let tried = if tried.is_empty() {
                "none found".to_string()
            } else {
                tried.iter().map(|(p, w)| format!("{}: {w}", p.display())).collect::<Vec<_>>().join("; ")
            };
            return Err(JournalError::NoSnapshot { dir: dir.to_path_buf(), tried });
        };
        rec.bad_snapshots = tried;
        if state.slots() != slots || state.assets() != assets {
            return Err(JournalError::Shape {
                slots,
                assets,
                found_slots: state.slots(),
                found_assets: state.assets(),
            });
        }
        rec.snapshot_seq = state.seq;
        let mut append_at = None;
        let n = l.segs.len();
        for (i, (start, path)) in l.segs.iter().enumerate() {
            let last = i + 1 == n;
            // Segments wholly covered by the snapshot are kept only for falling back to an
            // older snapshot; they are not read.
            if !last && l.segs[i + 1].0 <= state.seq + 1 {
                continue;
            }
            let (valid_end, next, replayed) = replay_segment(path, *start, last, &mut state, &mut rec)?;
            rec.replayed += replayed;
            // Append to the last segment only if its next record is the one due (it may end
            // before a snapshot taken after it).
            if last && next == state.seq + 1 {
                append_at = Some((path.clone(), valid_end));
            }
        }
        rec.last_seq = state.seq;
        let mut stats = JournalStats::default();
        let seg = match append_at {
            Some((path, off)) => {
                let file =
                    OpenOptions::new().read(true).write(true).open(&path).map_err(io("open", &path))?;
                let len = file.metadata().map_err(io("stat", &path))?.len();
                // A segment cut short (copied, or truncated by hand) is extended with zeros; a
                // sparse one (copied, or written before preallocation) gets its blocks now.
                preallocate(&file, len.max(cfg.segment_bytes as u64)).map_err(io("preallocate", &path))?;
                map_segment(path, file, off)?
            }
            None => {
                stats.segments = 1;
                create_segment(dir, state.seq + 1, cfg.segment_bytes)?
            }
        };
        Ok((Journal::assemble(dir, cfg, state, seg, stats), rec))
    }

    fn assemble(
        dir: &Path,
        cfg: JournalConfig,
        state: DurableState,
        seg: Segment,
        stats: JournalStats,
    ) -> Self {
        Journal {
            dir: dir.to_path_buf(),
            cfg,
            state,
            seg,
            payload: Vec::with_capacity(4096),
            frame: Vec::with_capacity(4096),
            unsynced: 0,
            last_sync: Instant::now(),
            since_snapshot: 0,
            stats,
            background: None,
            on_sync: None,
        }
    }

    /// The state as of the last record appended.
    pub fn state(&self) -> &DurableState {
        &self.state
    }

    /// Writer counters.
    pub fn stats(&self) -> JournalStats {
        self.stats
    }

    /// The journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `rec` as the next record and applies it to the state; returns its sequence
    /// number. Refused records ([`JournalError::Refused`]) change nothing.
    pub fn append(&mut self, rec: &Record) -> Result<u64, JournalError> {
        self.state.check(rec)?;
        encode_payload(rec, &mut self.payload);
        if self.payload.len() > MAX_RECORD {
            return Err(JournalError::TooLarge(self.payload.len()));
        }
        let seq = self.state.seq + 1;
        self.frame.clear();
        frame::encode(seq, &self.payload, &mut self.frame);
        let len = self.frame.len();
        if self.seg.off + len > self.seg.map.len() {
            self.roll(seq, len)?;
        }
        let off = self.seg.off;
        self.seg.map[off..off + len].copy_from_slice(&self.frame);
        self.seg.off += len;
        self.state.apply_checked(seq, rec);
        self.stats.records += 1;
        self.stats.bytes += len as u64;
        self.unsynced += 1;
        match self.cfg.fsync {
            FsyncPolicy::Always => self.sync()?,
            FsyncPolicy::Batch { records, millis } => {
                if self.unsynced >= records || self.last_sync.elapsed() >= Duration::from_millis(millis) {
                    self.sync()?;
                }
            }
            FsyncPolicy::Never => {}
        }
        self.since_snapshot += 1;
        if self.cfg.snapshot_every.is_some_and(|n| self.since_snapshot >= n) {
            self.snapshot_in_background()?;
        }
        Ok(seq)
    }

    /// Flushes appended records to the disk now.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.seg.off > self.seg.synced {
            let (from, to) = (self.seg.synced, self.seg.off);
            let t = Instant::now();
            self.seg.map.flush_range(from, to - from).map_err(io("msync", &self.seg.path))?;
            if let Some(hook) = &self.on_sync {
                hook(t.elapsed().as_nanos() as u64);
            }
            self.seg.synced = to;
            self.stats.syncs += 1;
        }
        self.unsynced = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Reports the duration of every later flush to `hook`.
    pub fn on_sync(&mut self, hook: SyncHook) {
        self.on_sync = Some(hook);
    }

    /// For an idle loop under [`FsyncPolicy::Batch`]: flushes if the time bound has passed.
    pub fn sync_due(&mut self) -> Result<(), JournalError> {
        if let FsyncPolicy::Batch { millis, .. } = self.cfg.fsync
            && self.unsynced > 0
            && self.last_sync.elapsed() >= Duration::from_millis(millis)
        {
            self.sync()?;
        }
        Ok(())
    }

    fn roll(&mut self, start: u64, need: usize) -> Result<(), JournalError> {
        self.sync()?;
        self.seg = create_segment(&self.dir, start, self.cfg.segment_bytes.max(need))?;
        self.stats.segments += 1;
        Ok(())
    }

    /// Writes a snapshot of the state (temp file, fsync, rename, fsync of the directory),
    /// starts a new segment, and deletes what no longer serves recovery: snapshots older than
    /// the previous one and segments that only the deleted snapshots needed.
    ///
    /// Synchronous (it first waits for a background snapshot to finish): a big book takes a
    /// while (JSON of every slot). The automatic snapshots (`snapshot_every`) are taken with
    /// [`Journal::snapshot_in_background`] instead.
    pub fn snapshot(&mut self) -> Result<(), JournalError> {
        self.finish_background()?;
        self.sync()?;
        write_snapshot(&self.dir, &self.state)?;
        self.stats.snapshots += 1;
        self.since_snapshot = 0;
        if self.seg.off > 0 {
            self.roll(self.state.seq + 1, 0)?;
        }
        prune(&self.dir)
    }

    /// Starts a snapshot on its own thread: the writer pays for a copy of the state and a new
    /// segment (so the snapshot ends where a segment starts), the thread for the encoding, the
    /// writes, the fsyncs and the pruning. One at a time: while one is being written, the next
    /// waits (the records since the last snapshot keep counting). Until it is renamed into place
    /// recovery uses the previous snapshot and the segments after it, which are kept; a kill
    /// leaves at most a temp file, removed at the next open. An error of the thread comes back
    /// from the next call that checks it (an append, a snapshot, or [`Journal::flush_snapshot`]).
    pub fn snapshot_in_background(&mut self) -> Result<(), JournalError> {
        if let Some(h) = &self.background {
            if !h.is_finished() {
                return Ok(());
            }
            self.finish_background()?;
        }
        self.sync()?;
        let state = self.state.clone();
        self.since_snapshot = 0;
        if self.seg.off > 0 {
            self.roll(self.state.seq + 1, 0)?;
        }
        let dir = self.dir.clone();
        let h = std::thread::Builder::new()
            .name("journal snapshot".into())
            .spawn(move || {
                write_snapshot(&dir, &state)?;
                prune(&dir)
            })
            .map_err(io("spawn snapshot thread", &self.dir))?;
        self.background = Some(h);
        Ok(())
    }

    /// Waits for a background snapshot, if one is being written, and returns its result.
    pub fn flush_snapshot(&mut self) -> Result<(), JournalError> {
        self.finish_background()
    }

    fn finish_background(&mut self) -> Result<(), JournalError> {
        let Some(h) = self.background.take() else { return Ok(()) };
        match h.join() {
            Ok(r) => {
                r?;
                self.stats.snapshots += 1;
                Ok(())
            }
            Err(_) => Err(JournalError::Io {
                op: "write snapshot",
                path: self.dir.clone(),
                source: std::io::Error::other("the snapshot thread panicked"),
            }),
        }
    }
}

/// Deletes snapshots older than the previous one, and the segments only they needed.
fn prune(dir: &Path) -> Result<(), JournalError> {
    let l = list(dir)?;
    if l.snaps.len() >= 2 {
        let keep_from = l.snaps[l.snaps.len() - 2].0;
        for (seq, path) in &l.snaps[..l.snaps.len() - 2] {
            debug_assert!(*seq < keep_from);
            fs::remove_file(path).map_err(io("remove", path))?;
        }
        for i in 0..l.segs.len().saturating_sub(1) {
            if l.segs[i + 1].0 <= keep_from + 1 {
                fs::remove_file(&l.segs[i].1).map_err(io("remove", &l.segs[i].1))?;
            }
        }
    }
    Ok(())
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Best effort; a crash instead of a drop loses nothing a kill -9 would not.
        let _ = self.sync();
        if let Err(e) = self.finish_background() {
            tracing::error!(dir = %self.dir.display(), "journal {}: background snapshot failed: {e}", self.dir.display());
        }
    }
}

/// Replays one segment into `state`; returns the end of its valid data, the sequence number
/// its next record would have, and the records applied.
/// Reads a journal without changing it: the newest valid snapshot taken at or before record
/// `at_most`, then every record after it, in order, to the end of the journal (a torn tail
/// ends the reading, as recovery would cut it). `each` gets the state before the record and
/// the record; it applies it (or not) as it needs. Returns the state after the last record.
///
/// For rebuilding what a run derived from the records after some point (the breach events a
/// kill cut short): recovery itself is [`Journal::open`].
pub fn read_records(
    dir: &Path,
    at_most: u64,
    mut each: impl FnMut(&DurableState, u64, &Record) -> Result<(), String>,
) -> Result<DurableState, JournalError> {
    let l = list(dir)?;
    let mut state = None;
    let mut tried = Vec::new();
    for (_, path) in l.snaps.iter().rev().filter(|(n, _)| *n <= at_most) {
        match load_snapshot(path) {
            Ok(s) => {
                state = Some(s);
                break;
            }
            Err(why) => tried.push(format!("{}: {why}", path.display())),
        }
    }
    let Some(mut state) = state else {
        let oldest = l.snaps.first().map_or("none".to_string(), |(n, _)| format!("record {n}"));
        tried.push(format!("none at or before record {at_most} (oldest kept: {oldest})"));
        return Err(JournalError::NoSnapshot { dir: dir.to_path_buf(), tried: tried.join("; ") });
    };
    for (i, (_, path)) in l.segs.iter().enumerate() {
        if i + 1 < l.segs.len() && l.segs[i + 1].0 <= state.seq + 1 {
            continue;
        }
        let buf = fs::read(path).map_err(io("read", path))?;
        let scan = frame::scan(&buf, MAX_RECORD).map_err(|m| JournalError::Corrupt {
            path: path.to_path_buf(),
            offset: m.offset as u64,
            why: m.why.to_string(),
            next_valid: m.next_valid as u64,
        })?;
        for f in &scan.frames {
            if f.seq <= state.seq {
                continue;
            }
            let bad = |why: String| JournalError::BadRecord {
                path: path.to_path_buf(),
                offset: f.offset as u64,
                seq: f.seq,
                why,
            };
            if f.seq != state.seq + 1 {
                return Err(JournalError::Gap {
                    path: path.to_path_buf(),
                    offset: f.offset as u64,
                    expected: state.seq + 1,
                    found: f.seq,
                });
            }
            let record = decode_payload(f.payload).map_err(|e| bad(format!("does not decode: {e}")))?;
            each(&state, f.seq, &record).map_err(bad)?;
            state.apply(f.seq, &record).map_err(|e| bad(e.to_string()))?;
        }
        if matches!(scan.end, End::Torn { .. }) {
            break;
        }
    }
    Ok(state)
}

fn replay_segment(
    path: &Path,
    start: u64,
    last: bool,
    state: &mut DurableState,
    rec: &mut Recovery,
) -> Result<(usize, u64, u64), JournalError> {
    let buf = fs::read(path).map_err(io("read", path))?;
    let scan = frame::scan(&buf, MAX_RECORD).map_err(|m| JournalError::Corrupt {
        path: path.to_path_buf(),
        offset: m.offset as u64,
        why: m.why.to_string(),
        next_valid: m.next_valid as u64,
    })?;
    let mut expected_in_file = start;
    let mut applied = 0;
    for f in &scan.frames {
        if f.seq != expected_in_file {
            return Err(JournalError::Gap {
                path: path.to_path_buf(),
                offset: f.offset as u64,
                expected: expected_in_file,
                found: f.seq,
            });
        }
        expected_in_file += 1;
        if f.seq <= state.seq {
            continue;
        }
        if f.seq != state.seq + 1 {
            return Err(JournalError::Gap {
                path: path.to_path_buf(),
                offset: f.offset as u64,
                expected: state.seq + 1,
                found: f.seq,
            });
        }
        let bad = |why: String| JournalError::BadRecord {
            path: path.to_path_buf(),
            offset: f.offset as u64,
            seq: f.seq,
            why,
        };
        let record = decode_payload(f.payload).map_err(|e| bad(format!("does not decode: {e}")))?;
        state.apply(f.seq, &record).map_err(|e| bad(e.to_string()))?;
        applied += 1;
    }
    if scan.frames.is_empty() && start > state.seq + 1 {
        return Err(JournalError::Gap {
            path: path.to_path_buf(),
            offset: 0,
            expected: state.seq + 1,
            found: start,
        });
    }
    if let End::Torn { offset, why } = scan.end {
        if !last {
            return Err(JournalError::TornBeforeLast {
                path: path.to_path_buf(),
                offset: offset as u64,
                why: why.to_string(),
            });
        }
        let dirty_end = buf.iter().rposition(|&b| b != 0).map_or(offset, |p| p + 1);
        let mut f = OpenOptions::new().write(true).open(path).map_err(io("open", path))?;
        f.seek(SeekFrom::Start(offset as u64)).map_err(io("seek", path))?;
        f.write_all(&vec![0u8; dirty_end - offset]).map_err(io("cut torn tail of", path))?;
        f.sync_all().map_err(io("sync", path))?;
        rec.tail = Some(TailCut {
            path: path.to_path_buf(),
            offset: offset as u64,
            bytes: (dirty_end - offset) as u64,
            why: why.to_string(),
        });
    }
    Ok((scan.valid_end, expected_in_file, applied))
}
