//! The breach events log (`liqscan run --out`): written as the scans happen, and continued
//! across restarts so that the file after any number of kills equals an uninterrupted run's.
//!
//! ```text
//!  engine thread                     events thread                       file (JSON lines)
//!  ─────────────                     ─────────────                       ─────────────────
//!  EventTap::on_scan ─ append under ─> every ms: swap the batch out, ───> one write(2) per
//!  (a Vec append, no syscall)  lock    format it, write, flush           batch, appended
//!
//!  restart (with --journal):  recover(): cut a torn last line; keep the lines of the messages
//!  before c = min(last line's seq, records journaled); rebuild the events of records c..k
//!  from the book journal (snapshot at or before c, then its records, on a software engine);
//!  the recovered book's own scan (the reload) is not written again.
//! ```
//!
//! With a journal, a line's `seq` is its message's position in the book journal (replayed
//! messages and live frames before it), one order over the replay and every live stream; with
//! no live frame it is the replay's message number, as without a journal.
//!
//! A line's events are a pure function of the records before it (each message's scan is the
//! difference of two breach bitmaps of exact states), so rebuilding them gives the same lines
//! an uninterrupted run wrote. Live feed frames are journaled in the order the engine took
//! them, and are rebuilt too, under their journal positions.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::record::Record;
use super::state::DurableState;
use super::store::{JournalError, read_records};
use crate::book::AccountIds;
use crate::engine::{ScanEngine, SoftwareEngine, Step};

/// One breach change: a slot became breached, or stopped being.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BreachChange {
    /// Feed sequence number of the message whose scan saw it.
    pub seq: u64,
    /// Account slot.
    pub slot: u32,
    /// true: breached; false: no longer breached.
    pub breached: bool,
}

/// A line of the events file.
#[derive(Serialize)]
struct Line<'a> {
    account: &'a str,
    event: &'a str,
    seq: u64,
    slot: u32,
}

/// A line read back (the account name is not needed: the slot says it).
#[derive(Deserialize)]
struct LineIn {
    event: String,
    seq: u64,
    slot: u32,
}

fn write_line(out: &mut Vec<u8>, ids: &AccountIds, c: &BreachChange) {
    let line = Line {
        account: ids.get(c.slot as usize).unwrap_or(""),
        event: if c.breached { "breach" } else { "recovered" },
        seq: c.seq,
        slot: c.slot,
    };
    serde_json::to_writer(&mut *out, &line).expect("an event line serialises");
    out.push(b'\n');
}

/// Why an events file cannot be continued.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// Reading or writing the file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A complete line that is not an event of this book.
    #[error(
        "{path} line {line}: {why}; not an events file of this journal (move it away to start a new one)"
    )]
    BadLine {
        /// The file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// The file's breaches disagree with the journal's book at the point the file ends.
    #[error(
        "{path}: after message {messages} its events leave slot {slot} {file}, the book journal says {journal}; \
         the file belongs to another run (move it away to start a new one)"
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Messages covered.
        messages: u64,
        /// First slot that differs.
        slot: u32,
        /// The file's state of the slot.
        file: &'static str,
        /// The journal's.
        journal: &'static str,
    },
    /// The book journal could not be read back.
    #[error("rebuilding the events the last run did not write: {0}")]
    Journal(#[from] JournalError),
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> EventsError + 'a {
    move |source| EventsError::Io { op, path: path.to_path_buf(), source }
}

/// What [`recover`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventsRecovery {
    /// Lines kept.
    pub kept: u64,
    /// Bytes cut from the end (a torn line, or lines of messages rebuilt).
    pub cut_bytes: u64,
    /// Lines rebuilt from the journal and appended.
    pub rebuilt: u64,
    /// Slots breached after the journaled messages, each with the `seq` of its breach (its
    /// breach episode).
    pub episodes: BTreeMap<u32, u64>,
}

impl std::fmt::Display for EventsRecovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events kept, {} bytes cut, {} rebuilt from the journal; {} slots breached",
            self.kept,
            self.cut_bytes,
            self.rebuilt,
            self.episodes.len()
        )
    }
}

/// Breached slots and the seq each breached at, folded from events.
#[derive(Default)]
struct Fold(BTreeMap<u32, u64>);

impl Fold {
    fn add(&mut self, c: &BreachChange) {
        if c.breached {
            self.0.insert(c.slot, c.seq);
        } else {
            self.0.remove(&c.slot);
        }
    }
}

/// Continues the events file `path` of a run whose book journal `book_dir` holds `messages`
/// replayed messages and live frames (`BookJournal::position`), for a book of `ids.len()`
/// slots; `ids` names
/// the account of each slot. A missing file is started. Returns what it
/// did, and the breach episode of every slot breached at the end (for the dispatcher).
/// `held` is the pipeline's warm-up ([`crate::pipeline::PipelineConfig::warm_up`]): while one
/// of those assets has no price the run reported nothing, and at the message that priced the
/// last of them it reported the state in full; the rebuilt events follow the same rule.
pub fn recover(
    path: &Path,
    book_dir: &Path,
    messages: u64,
    ids: &AccountIds,
    held: &[u16],
) -> Result<EventsRecovery, EventsError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io("open", path))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(io("read", path))?;
    // Complete lines: (offset past the line, change).
    let mut lines: Vec<(usize, BreachChange)> = Vec::new();
    let mut off = 0;
    while let Some(n) = buf[off..].iter().position(|&b| b == b'\n') {
        let end = off + n + 1;
        let bad = |why: String| EventsError::BadLine { path: path.to_path_buf(), line: lines.len() + 1, why };
        let l: LineIn = serde_json::from_slice(&buf[off..end - 1]).map_err(|e| bad(e.to_string()))?;
        if l.slot as usize >= ids.len() {
            return Err(bad(format!("slot {} beyond the book's {} slots", l.slot, ids.len())));
        }
        let breached = match l.event.as_str() {
            "breach" => true,
            "recovered" => false,
            other => return Err(bad(format!("unknown event '{other}'"))),
        };
        lines.push((end, BreachChange { seq: l.seq, slot: l.slot, breached }));
        off = end;
    }
    // The messages whose events the file holds for certain: all before the last line's (it is
    // appended in order, a message's events in one write), and none the journal lacks.
    let c = lines.last().map_or(0, |(_, l)| l.seq).min(messages);
    let keep = lines.iter().position(|(_, l)| l.seq >= c).unwrap_or(lines.len());
    let cut_at = if keep == 0 { 0 } else { lines[keep - 1].0 };
    let mut fold = Fold::default();
    for (_, l) in &lines[..keep] {
        fold.add(l);
    }
    let mut rec =
        EventsRecovery { kept: keep as u64, cut_bytes: (buf.len() - cut_at) as u64, ..Default::default() };

    // Rebuild the events of the messages c.. from the book journal.
    let slots = ids.len();
    let mut engine: Option<(SoftwareEngine, Step)> = None;
    let mut out = Vec::new();
    let mismatch = |fold: &Fold, breach: &[u64]| -> Result<(), EventsError> {
        for s in 0..slots as u32 {
            let journal = breach[s as usize / 64] >> (s % 64) & 1 == 1;
            let file = fold.0.contains_key(&s);
            if journal != file {
                let word = |b: bool| if b { "breached" } else { "not breached" };
                return Err(EventsError::Mismatch {
                    path: path.to_path_buf(),
                    messages: c,
                    slot: s,
                    file: word(file),
                    journal: word(journal),
                });
            }
        }
        Ok(())
    };
    let build = |state: &DurableState| -> (SoftwareEngine, Step) {
        let mut e = state.software_engine();
        // Before the warm-up ends nothing was reported: the run's state is all clear.
        let step = if crate::pipeline::warm(e.prices(), held) {
            Step::starting_at(&mut e)
        } else {
            Step::new(&mut e)
        };
        (e, step)
    };
    let mut first_err = None;
    let last = read_records(book_dir, c, |before, _seq, r| {
        // The record's position: the seq the run gave its scan.
        let seq = before.seq;
        if engine.is_none() {
            if seq < c {
                return Ok(());
            }
            let (e, d) = build(before);
            if let Err(err) = mismatch(&fold, d.seen().0) {
                first_err.get_or_insert(err);
                return Err("the events file disagrees with the journal".into());
            }
            engine = Some((e, d));
        }
        let (e, step) = engine.as_mut().expect("built");
        let change = match r {
            Record::Live { record, .. } => &**record,
            r => r,
        };
        // A message the engine refuses changes nothing, as in the pipeline.
        let _ = match change {
            Record::Upsert { slot, terms, .. } => e.upsert(*slot, terms),
            Record::Remove { slot, .. } => e.remove(*slot),
            Record::Tick { asset, price, .. } => e.tick(*asset, *price),
            Record::BatchTick { prices, .. } => e.batch_tick(prices),
            _ => Ok(()),
        };
        if !crate::pipeline::warm(e.prices(), held) {
            step.skip(e);
            return Ok(());
        }
        let news = step.scan(e);
        // As the run wrote them: a scan's breaches, then its recoveries.
        let lists = [(true, &news.breached), (false, &news.cleared)];
        for n in lists
            .iter()
            .flat_map(|(breached, l)| l.iter().map(|&slot| BreachChange { seq, slot, breached: *breached }))
        {
            fold.add(&n);
            write_line(&mut out, ids, &n);
            rec.rebuilt += 1;
        }
        Ok(())
    });
    if let Some(e) = first_err {
        return Err(e);
    }
    let last = last?;
    if engine.is_none() {
        // No record after the point the file ends: the journal's last state is that point.
        let (_, d) = build(&last);
        mismatch(&fold, d.seen().0)?;
    }
    file.set_len(cut_at as u64).map_err(io("truncate", path))?;
    file.seek(SeekFrom::End(0)).map_err(io("seek", path))?;
    file.write_all(&out).map_err(io("write", path))?;
    file.sync_data().map_err(io("sync", path))?;
    rec.episodes = fold.0;
    Ok(rec)
}

/// Where a run's events go.
pub enum EventsOut {
    /// A file, appended to (created or recovered first by the caller).
    File(File, PathBuf),
    /// Standard output.
    Stdout,
}

/// The engine thread's end of the events log: appends each scan's changes to a shared batch
/// (a `Vec` append under an uncontended lock, no system call). The first `skip` messages (a
/// restart's reload of the recovered book) are not logged: their events are in the file
/// already.
pub struct EventTap {
    batch: Arc<Mutex<Vec<BreachChange>>>,
    skip: u64,
    skipping: bool,
}

impl EventTap {
    /// Called for every message, before its scan.
    #[inline]
    pub fn on_message(&mut self) {
        self.skipping = self.skip > 0;
        self.skip = self.skip.saturating_sub(1);
    }

    /// A scan's changes (slots newly breached, slots cleared).
    pub fn on_scan(&mut self, seq: u64, breached: &[u32], cleared: &[u32]) {
        if self.skipping {
            return;
        }
        let mut c = self.batch.lock().expect("events batch");
        c.extend(breached.iter().map(|&slot| BreachChange { seq, slot, breached: true }));
        c.extend(cleared.iter().map(|&slot| BreachChange { seq, slot, breached: false }));
    }
}

/// The events thread: writes what the engine thread logged, a batch at a time, and keeps it
/// (for the run's summary and digest).
pub struct EventWriter {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(Vec<BreachChange>, Result<(), String>)>,
}

/// How long the events thread sleeps when it finds nothing to write.
const IDLE: Duration = Duration::from_millis(1);

impl EventWriter {
    /// Starts the events thread writing to `outs` (none: only kept), naming slots by `ids`,
    /// and returns it with the engine thread's tap, which skips the first `skip` messages.
    pub fn start(outs: Vec<EventsOut>, ids: AccountIds, skip: u64) -> (EventWriter, EventTap) {
        let batch = Arc::new(Mutex::new(Vec::with_capacity(1 << 12)));
        let stop = Arc::new(AtomicBool::new(false));
        let (b, s) = (batch.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("events".into())
            .spawn(move || write_loop(&b, &s, outs, &ids))
            .expect("spawn events thread");
        (EventWriter { stop, thread }, EventTap { batch, skip, skipping: false })
    }

    /// Writes what is left (call after the engine thread ended) and returns every change
    /// logged, or the first write error.
    pub fn finish(self) -> Result<Vec<BreachChange>, String> {
        self.stop.store(true, Ordering::Release);
        let (all, r) = self.thread.join().map_err(|_| "events thread panicked".to_string())?;
        r.map(|_| all)
    }
}

fn write_loop(
    batch: &Mutex<Vec<BreachChange>>,
    stop: &AtomicBool,
    mut outs: Vec<EventsOut>,
    ids: &AccountIds,
) -> (Vec<BreachChange>, Result<(), String>) {
    let mut all = Vec::new();
    let mut mine = Vec::with_capacity(1 << 12);
    let mut text = Vec::with_capacity(1 << 16);
    let mut err = Ok(());
    loop {
        // Read the flag first: once it is up, the engine has logged its last change.
        let stopping = stop.load(Ordering::Acquire);
        std::mem::swap(&mut *batch.lock().expect("events batch"), &mut mine);
        if mine.is_empty() {
            if stopping {
                break;
            }
            std::thread::sleep(IDLE);
            continue;
        }
        text.clear();
        for c in &mine {
            write_line(&mut text, ids, c);
        }
        if err.is_ok() {
            for o in &mut outs {
                let r = match o {
                    EventsOut::File(f, p) => {
                        f.write_all(&text).map_err(|e| format!("writing {}: {e}", p.display()))
                    }
                    EventsOut::Stdout => {
                        let mut s = std::io::stdout().lock();
                        s.write_all(&text)
                            .and_then(|_| s.flush())
                            .map_err(|e| format!("writing events to stdout: {e}"))
                    }
                };
                if let Err(e) = r {
                    err = Err(e);
                    break;
                }
            }
        }
        all.append(&mut mine);
    }
    (all, err)
}

/// Opens `path` for a run without a journal to continue: created empty (truncated).
pub fn create(path: &Path) -> Result<EventsOut, EventsError> {
    let f = File::create(path).map_err(io("create", path))?;
    Ok(EventsOut::File(f, path.to_path_buf()))
}

/// Opens `path`, recovered by [`recover`], to append to.
pub fn append(path: &Path) -> Result<EventsOut, EventsError> {
    let f = OpenOptions::new().append(true).open(path).map_err(io("open", path))?;
    Ok(EventsOut::File(f, path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::drill::random_price;
    use crate::journal::{FsyncPolicy, Journal, JournalConfig};
    use liqscan_hdl::abi::Coeff;
    use rand::{Rng, SeedableRng};

    const SLOTS: usize = 12;
    const ASSETS: usize = 2;

    /// A snapshot every 40 records: books of fewer than 80 keep the first one too (older
    /// snapshots are deleted once two newer exist), so every cut can be rebuilt.
    fn cfg() -> JournalConfig {
        JournalConfig { fsync: FsyncPolicy::Never, segment_bytes: 1 << 16, snapshot_every: Some(40) }
    }

    /// Writes a random book journal (upserts, removes, ticks, some as live frames) of `n`
    /// records into `dir/book` and returns the events file an uninterrupted run writes for it,
    /// computed with the reference scan of each state.
    fn journal_and_events(dir: &Path, seed: u64, n: u64, ids: &AccountIds) -> Vec<u8> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let (mut j, _) = Journal::open(&dir.join("book"), SLOTS, ASSETS, cfg()).unwrap();
        let mut prev = j.state().reference_bitmaps().breach;
        let mut file = Vec::new();
        for i in 0..n {
            let slot = rng.gen_range(0..SLOTS) as u32;
            let held = j.state().accounts[slot as usize].is_some();
            let r: f64 = rng.r#gen();
            let rec = if r < 0.1 && held {
                Record::Remove { account: slot as u64, slot }
            } else if r < 0.45 {
                let terms = vec![
                    Coeff { asset: 0, coeff: rng.gen_range(1..1000) },
                    Coeff { asset: 1, coeff: -rng.gen_range(1..1000) },
                ];
                Record::Upsert { account: slot as u64, slot, terms }
            } else {
                Record::Tick {
                    ts_ns: i as i64,
                    asset: rng.gen_range(0..ASSETS) as u16,
                    price: random_price(&mut rng),
                }
            };
            // A third arrive as live frames, numbered by their own (far larger) stream: their
            // events still carry the record's position.
            let rec = if rng.gen_bool(0.3) {
                Record::Live { source: 1, seq: 1_000_000 + 7 * i, record: Box::new(rec) }
            } else {
                rec
            };
            j.append(&rec).unwrap();
            let now = j.state().reference_bitmaps().breach;
            for breached in [true, false] {
                for s in 0..SLOTS as u32 {
                    let (w, b) = (s as usize / 64, s % 64);
                    let (was, is) = (prev[w] >> b & 1 == 1, now[w] >> b & 1 == 1);
                    if was != is && is == breached {
                        write_line(&mut file, ids, &BreachChange { seq: i, slot: s, breached });
                    }
                }
            }
            prev = now;
        }
        j.sync().unwrap();
        file
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

        /// Whatever a kill left of the events file (any prefix, a torn last line included),
        /// recovery makes it the uninterrupted run's file, and returns each breached slot's
        /// breach episode.
        #[test]
        fn any_cut_of_the_events_file_recovers_to_the_whole(seed in 0u64..1_000, n in 1u64..80, cut in 0.0f64..=1.0) {
            let dir = tempfile::tempdir().unwrap();
            let ids: AccountIds = (0..SLOTS).map(|s| format!("acct-{s}")).collect();
            let whole = journal_and_events(dir.path(), seed, n, &ids);
            let path = dir.path().join("events.jsonl");
            let at = (whole.len() as f64 * cut) as usize;
            std::fs::write(&path, &whole[..at]).unwrap();
            let r = recover(&path, &dir.path().join("book"), n, &ids, &[]).unwrap();
            let got = std::fs::read(&path).unwrap();
            proptest::prop_assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&whole));
            let mut fold = Fold::default();
            for l in whole.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let l: LineIn = serde_json::from_slice(l).unwrap();
                fold.add(&BreachChange { seq: l.seq, slot: l.slot, breached: l.event == "breach" });
            }
            proptest::prop_assert_eq!(r.episodes, fold.0);
            // Recovering again changes nothing.
            let again = recover(&path, &dir.path().join("book"), n, &ids, &[]).unwrap();
            proptest::prop_assert_eq!(again.rebuilt + again.kept, r.rebuilt + r.kept);
            proptest::prop_assert_eq!(std::fs::read(&path).unwrap(), whole);
        }
    }

    #[test]
    fn an_events_file_of_another_book_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ids: AccountIds = (0..SLOTS).map(|s| format!("acct-{s}")).collect();
        let whole = journal_and_events(dir.path(), 3, 200, &ids);
        assert!(!whole.is_empty());
        let path = dir.path().join("events.jsonl");
        // The same events, one slot off: the file's breaches disagree with the journal's book.
        let text = String::from_utf8(whole).unwrap();
        let l = text.lines().next().unwrap();
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let other = (v["slot"].as_u64().unwrap() + 1) % SLOTS as u64;
        let moved = l.replace(&format!("\"slot\":{}", v["slot"]), &format!("\"slot\":{other}"));
        std::fs::write(&path, format!("{moved}\n{}\n", text.lines().last().unwrap())).unwrap();
        let e = recover(&path, &dir.path().join("book"), 200, &ids, &[]).unwrap_err();
        assert!(e.to_string().contains("belongs to another run"), "{e}");
        // A line that is not an event names its line.
        std::fs::write(&path, "{\"seq\":1}\nnot json\n").unwrap();
        let e = recover(&path, &dir.path().join("book"), 200, &ids, &[]).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }
}
