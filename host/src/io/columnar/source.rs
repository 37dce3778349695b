//! Where a columnar file's record batches come from: an Arrow IPC file (read batch by batch
//! from its footer) or a Parquet file (decoded by the parquet crate's Arrow reader, only the
//! columns asked for, 65,536 rows a batch).
//!
//! The arrow and parquet crates trust the offsets and lengths a file states and panic on some
//! that do not hold (one byte changed can do it), so every call that decodes the file runs
//! under [`decoding`], which turns such a panic into an error naming the file.

use std::cell::Cell;
use std::fs::File;
use std::io::BufReader;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_ipc::reader::FileReader;
use arrow_schema::{ArrowError, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::io::{Format, InputError};

/// Rows a Parquet batch holds: large enough that a batch's fixed costs vanish, small enough
/// that a batch of strings stays in the cache's reach.
const PARQUET_BATCH_ROWS: usize = 1 << 16;

/// A columnar file opened for reading: its schema, and its batches in order.
pub(super) struct Batches {
    pub schema: SchemaRef,
    iter: Box<dyn Iterator<Item = Result<RecordBatch, ArrowError>>>,
    /// Progress units: rows for Parquet (the footer says how many), batches for IPC.
    by_rows: bool,
    /// What the file is, for the message when decoding it fails.
    format: &'static str,
    pub total: u64,
    done: u64,
}

impl Batches {
    /// The next batch; an error names the batch and the row it starts at.
    pub fn next_batch(
        &mut self,
        path: &Path,
        n: usize,
        row: usize,
    ) -> Option<Result<RecordBatch, InputError>> {
        let b = match decoding(path, self.format, || self.iter.next()) {
            Ok(b) => b?,
            Err(e) => {
                // The reader is in an unknown state after a panic: nothing more comes from it.
                self.iter = Box::new(std::iter::empty());
                return Some(Err(e));
            }
        };
        Some(
            b.map_err(|e| InputError::file(path, format!("batch {} (from row {}): {e}", n + 1, row + 1)))
                .inspect(|b| self.done += if self.by_rows { b.num_rows() as u64 } else { 1 }),
        )
    }

    /// Progress so far, in the file's units (rows or batches).
    pub fn done(&self) -> u64 {
        self.done
    }
}

/// Opens an Arrow IPC or Parquet file. For Parquet only the top-level columns named in
/// `wanted` (case-insensitive) are decoded.
pub(super) fn open(path: &Path, wanted: &[&str]) -> Result<Batches, InputError> {
    let f = File::open(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
    match Format::of(path)? {
        Format::Parquet => {
            let b = decoding(path, PARQUET, || ParquetRecordBatchReaderBuilder::try_new(f))?
                .map_err(|e| InputError::file(path, format!("not a Parquet file: {e}")))?;
            let total = b.metadata().file_metadata().num_rows().max(0) as u64;
            let keep: Vec<usize> = b
                .schema()
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| wanted.iter().any(|w| f.name().eq_ignore_ascii_case(w)))
                .map(|(i, _)| i)
                .collect();
            let mask = ProjectionMask::roots(b.parquet_schema(), keep);
            let r = decoding(path, PARQUET, || {
                b.with_batch_size(PARQUET_BATCH_ROWS).with_projection(mask).build()
            })?
            .map_err(|e| InputError::file(path, format!("cannot read the Parquet file: {e}")))?;
            Ok(Batches {
                schema: r.schema(),
                iter: Box::new(r),
                by_rows: true,
                format: PARQUET,
                total,
                done: 0,
            })
        }
        _ => {
            let r =
                decoding(path, ARROW, || FileReader::try_new(BufReader::with_capacity(1 << 20, f), None))?
                    .map_err(|e| InputError::file(path, format!("not an Arrow IPC file: {e}")))?;
            let total = r.num_batches() as u64;
            Ok(Batches {
                schema: r.schema(),
                iter: Box::new(r),
                by_rows: false,
                format: ARROW,
                total,
                done: 0,
            })
        }
    }
}

/// Rows of a Parquet file and the decoded bytes of its column `name` (case-insensitive), from
/// the footer alone (for the memory estimate before a load).
pub(crate) fn parquet_size(path: &Path, name: &str) -> Result<(u64, u64), InputError> {
    let f = File::open(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
    let b = decoding(path, PARQUET, || ParquetRecordBatchReaderBuilder::try_new(f))?
        .map_err(|e| InputError::file(path, format!("not a Parquet file: {e}")))?;
    let meta = b.metadata();
    let rows = meta.file_metadata().num_rows().max(0) as u64;
    let bytes = meta
        .row_groups()
        .iter()
        .flat_map(|g| g.columns())
        .filter(|c| c.column_path().parts().first().is_some_and(|p| p.eq_ignore_ascii_case(name)))
        .map(|c| c.uncompressed_size().max(0) as u64)
        .sum();
    Ok((rows, bytes))
}

const ARROW: &str = "Arrow IPC";
const PARQUET: &str = "Parquet";

thread_local! {
    /// Set while this thread decodes a columnar file: its panics are reported as errors, so the
    /// panic hook keeps quiet about them.
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, a call into the arrow or parquet crate that decodes `path`, turning a panic in it
/// into an error naming the file. The panic hook in place is kept for every other panic; for
/// these it prints nothing (the error says it all, and a backtrace would only alarm).
fn decoding<T>(path: &Path, format: &str, f: impl FnOnce() -> T) -> Result<T, InputError> {
    static QUIET_HOOK: Once = Once::new();
    QUIET_HOOK.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !DECODING.with(Cell::get) {
                hook(info)
            }
        }));
    });
    let was = DECODING.with(|d| d.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    DECODING.with(|d| d.set(was));
    r.map_err(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("the decoder failed");
        InputError::file(path, format!("cannot decode the {format} file: {why}"))
    })
}
