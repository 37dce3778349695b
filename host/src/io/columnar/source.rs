//! Where a columnar file's record batches come from: an Arrow IPC file (read batch by batch
//! from its footer) or a Parquet file (decoded by the parquet crate's Arrow reader, only the
//! columns asked for, 65,536 rows a batch).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

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
        let b = self.iter.next()?;
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
            let b = ParquetRecordBatchReaderBuilder::try_new(f)
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
            let r = b
                .with_batch_size(PARQUET_BATCH_ROWS)
                .with_projection(mask)
                .build()
                .map_err(|e| InputError::file(path, format!("cannot read the Parquet file: {e}")))?;
            Ok(Batches { schema: r.schema(), iter: Box::new(r), by_rows: true, total, done: 0 })
        }
        _ => {
            let r = FileReader::try_new(BufReader::with_capacity(1 << 20, f), None)
                .map_err(|e| InputError::file(path, format!("not an Arrow IPC file: {e}")))?;
            let total = r.num_batches() as u64;
            Ok(Batches { schema: r.schema(), iter: Box::new(r), by_rows: false, total, done: 0 })
        }
    }
}

/// Rows of a Parquet file and the decoded bytes of its column `name` (case-insensitive), from
/// the footer alone (for the memory estimate before a load).
pub(crate) fn parquet_size(path: &Path, name: &str) -> Result<(u64, u64), InputError> {
    let f = File::open(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f)
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
