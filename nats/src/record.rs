//! The bridge's record of orders it has handed over and seen answered: one order id per line
//! (decimal), appended and made durable (`fdatasync`) before the order's message is
//! acknowledged to the stream.
//!
//! A bridge killed after the downstream answered and before its acknowledgement reached the
//! server gets the message again when it restarts; the record turns that redelivery into an
//! acknowledgement without a second hand-over. A line cut by a crash is removed at the next open (its order was
//! not acknowledged, so it comes again and is handed over under the same id; the downstream's
//! idempotence by order id, which `liqscan-dispatch/3` requires, covers that window).

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use liqscan_host::dispatch::OrderId;

/// Why the record could not be used.
#[derive(Debug, thiserror::Error)]
#[error("bridge record {path}: {source}")]
pub struct RecordError {
    /// The file.
    pub path: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

/// Order ids already handed over and answered.
pub struct Record {
    path: PathBuf,
    file: Option<File>,
    done: HashSet<OrderId>,
}

impl Record {
    /// Opens (or creates) the record at `path` and loads its ids.
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let err = |source| RecordError { path: path.to_path_buf(), source };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(err(e)),
        };
        // Only whole lines count: the last one may be cut.
        let done = text.split_inclusive('\n').filter_map(|l| l.strip_suffix('\n')?.parse().ok()).collect();
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(err)?;
        if !text.is_empty() && !text.ends_with('\n') {
            // Cut the torn line off: ended with a newline it would read as an id later.
            let whole = text.rfind('\n').map_or(0, |i| i + 1);
            file.set_len(whole as u64).map_err(err)?;
        }
        Ok(Record { path: path.to_path_buf(), file: Some(file), done })
    }

    /// A record kept in memory only (tests; a bridge that relies on the downstream's
    /// idempotence alone).
    pub fn in_memory() -> Self {
        Record { path: PathBuf::new(), file: None, done: HashSet::new() }
    }

    /// True if the order was handed over and answered already.
    pub fn contains(&self, id: OrderId) -> bool {
        self.done.contains(&id)
    }

    /// Ids recorded.
    pub fn len(&self) -> usize {
        self.done.len()
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.done.is_empty()
    }

    /// Records an order as done, durably, before its message is acknowledged.
    pub fn add(&mut self, id: OrderId) -> Result<(), RecordError> {
        if let Some(f) = &mut self.file {
            let err = |source| RecordError { path: self.path.clone(), source };
            f.write_all(format!("{id}\n").as_bytes()).map_err(err)?;
            f.sync_data().map_err(err)?;
        }
        self.done.insert(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_survive_a_reopen_and_a_cut_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bridge.record");
        let mut r = Record::open(&p).unwrap();
        r.add(7).unwrap();
        r.add(u64::MAX).unwrap();
        drop(r);
        std::fs::OpenOptions::new().append(true).open(&p).unwrap().write_all(b"123").unwrap();
        let mut r = Record::open(&p).unwrap();
        assert!(r.contains(7) && r.contains(u64::MAX));
        assert!(!r.contains(123), "a cut line is not a record");
        r.add(9).unwrap();
        drop(r);
        let r = Record::open(&p).unwrap();
        assert_eq!(r.len(), 3);
        assert!(r.contains(9));
    }
}
