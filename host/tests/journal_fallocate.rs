//! Journal segments are preallocated (real blocks, not a sparse file), so a full disk is an
//! error at segment creation rather than a SIGBUS on a write into the mapping.

use std::os::unix::fs::MetadataExt;

use liqscan_host::journal::{FsyncPolicy, Journal, JournalConfig};

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

#[test]
fn segments_are_preallocated() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = 4 << 20;
    let cfg = JournalConfig { fsync: FsyncPolicy::Never, segment_bytes: bytes, snapshot_every: None };
    let (j, _) = Journal::open(dir.path(), 4, 2, cfg.clone()).unwrap();
    drop(j);
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 1);
    let m = std::fs::metadata(&segs[0]).unwrap();
    assert_eq!(m.len(), bytes as u64);
    assert!(m.blocks() * 512 >= bytes as u64, "sparse segment: {} bytes allocated", m.blocks() * 512);
    // A sparse segment (as an older version wrote them) gets its blocks when reopened.
    let f = std::fs::OpenOptions::new().write(true).open(&segs[0]).unwrap();
    f.set_len(0).unwrap();
    f.set_len(bytes as u64).unwrap();
    drop(f);
    assert!(std::fs::metadata(&segs[0]).unwrap().blocks() * 512 < bytes as u64);
    let (j, _) = Journal::open(dir.path(), 4, 2, cfg).unwrap();
    drop(j);
    assert!(std::fs::metadata(&segs[0]).unwrap().blocks() * 512 >= bytes as u64);
}
