//! Inputs users already have, and the breach output.
//!
//! - [`venue`]: assets and venue settings from TOML or JSON.
//! - [`accounts`]: accounts from TOML, JSON, CSV, Arrow IPC or Parquet ([`columnar`]).
//! - [`ticks`]: price ticks from CSV, JSONL, Arrow IPC or Parquet, and the 10-minute OHLC bar
//!   files.
//! - [`breaches`]: breach events as JSONL.
//! - [`limits`]: bounds on what a file or flag may ask for, and the memory check.
//! - [`options`]: command options that carry numbers (`--pace`), range-checked.
//! - [`outputs`]: an output path refused when it is one of the inputs.
//! - [`unique`]: maps that refuse a key given twice (JSON keeps the last otherwise).
//!
//! Every reader refuses bad input with an [`InputError`] naming the file, the line (where there
//! is one) and the problem; nothing is skipped silently.

pub mod accounts;
pub mod breaches;
pub mod columnar;
mod csv_rows;
pub mod limits;
pub mod options;
pub mod outputs;
pub mod ticks;
pub mod time;
pub mod unique;
pub mod venue;
pub mod venue_book;

use std::fmt;
use std::path::{Path, PathBuf};

/// Bad input: which file, which line, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file (or a label such as `<stdin>`).
    pub file: PathBuf,
    /// 1-based line, where the format has lines.
    pub line: Option<usize>,
    /// What is wrong, and where possible what to do.
    pub problem: String,
}

impl InputError {
    /// An error at a line of a file.
    pub fn at(file: &Path, line: usize, problem: impl fmt::Display) -> Self {
        InputError { file: file.to_path_buf(), line: Some(line), problem: problem.to_string() }
    }

    /// An error about a whole file.
    pub fn file(file: &Path, problem: impl fmt::Display) -> Self {
        InputError { file: file.to_path_buf(), line: None, problem: problem.to_string() }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file.display(), l, self.problem),
            None => write!(f, "{}: {}", self.file.display(), self.problem),
        }
    }
}

impl std::error::Error for InputError {}

/// Reads a whole file, naming it in the error.
pub(crate) fn read_text(path: &Path) -> Result<String, InputError> {
    let mut text =
        std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
    if text.starts_with(BOM) {
        text.drain(..BOM.len());
    }
    Ok(text)
}

/// The UTF-8 byte-order mark a file may start with; the readers skip it.
pub(crate) const BOM: &str = "\u{feff}";

/// The format a file's extension names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.toml`
    Toml,
    /// `.json`
    Json,
    /// `.jsonl` / `.ndjson`
    Jsonl,
    /// `.csv`
    Csv,
    /// `.arrow` / `.feather` / `.ipc`: Apache Arrow IPC file
    Arrow,
    /// `.parquet` / `.pq`: Apache Parquet file
    Parquet,
}

impl Format {
    /// The format of a path by its extension.
    pub fn of(path: &Path) -> Result<Format, InputError> {
        match path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("toml") => Ok(Format::Toml),
            Some("json") => Ok(Format::Json),
            Some("jsonl") | Some("ndjson") => Ok(Format::Jsonl),
            Some("csv") => Ok(Format::Csv),
            Some("arrow") | Some("feather") | Some("ipc") => Ok(Format::Arrow),
            Some("parquet") | Some("pq") => Ok(Format::Parquet),
            _ => Err(InputError::file(
                path,
                "unknown file type: expected .toml, .json, .jsonl, .csv, .arrow/.feather (Arrow IPC) \
                 or .parquet",
            )),
        }
    }
}

/// The position of the column a header names by any of `names` (ASCII case and surrounding
/// spaces ignored), if any. A column named twice, or by two of `names` (`timestamp` and `ts`),
/// is refused: which copy to read would be a guess.
pub(crate) fn header_column<H: AsRef<[u8]>>(
    header: impl Iterator<Item = H>,
    names: &[&str],
) -> Result<Option<usize>, String> {
    let mut found: Option<(usize, String)> = None;
    for (i, h) in header.enumerate() {
        let h = h.as_ref().trim_ascii();
        if !names.iter().any(|n| h.eq_ignore_ascii_case(n.as_bytes())) {
            continue;
        }
        let h = String::from_utf8_lossy(h).into_owned();
        if let Some((j, first)) = found {
            let (j, i) = (j + 1, i + 1);
            return Err(if first == h {
                format!("column '{h}' is given twice (columns {j} and {i}): keep one")
            } else {
                format!(
                    "columns '{first}' and '{h}' (columns {j} and {i}) both name column '{}': keep one",
                    names[0]
                )
            });
        }
        found = Some((i, h));
    }
    Ok(found.map(|(i, _)| i))
}

/// Line of a serde_json error (1-based), for messages.
pub(crate) fn json_line(e: &serde_json::Error) -> usize {
    e.line().max(1)
}

/// Line of a TOML error, computed from its byte span.
pub(crate) fn toml_line(text: &str, e: &toml::de::Error) -> Option<usize> {
    e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
}

/// The two-asset lending venue the readers' tests share: ETH (LT 0.825, stress 0.1) and USDC.
#[cfg(test)]
pub(crate) fn test_venue() -> crate::model::AssetTable {
    use crate::model::venues::{lending_asset, quote_asset};
    crate::model::AssetTable::new(
        crate::model::VenueSpec::default(),
        vec![lending_asset("ETH", -4, "0.825", "0.1"), quote_asset("USDC", -2)],
    )
    .expect("valid test venue")
}
