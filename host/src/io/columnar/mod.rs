//! Columnar inputs: Apache Arrow IPC files (`.arrow`, `.feather`, `.ipc`: the file format, as
//! pyarrow's `feather.write_feather` and polars' `write_ipc` write it) for accounts in long form
//! (`account`, `asset`, `balance`, optional `tier`) and for ticks (`timestamp` or `ts`, `asset`,
//! `price`).
//!
//! The rows go through the same checks as CSV rows ([`BookBuilder`], the tick compiler), and
//! every problem names the file, the row (1-based over the whole file) and the column. Strings
//! may be `utf8`, `large_utf8` or `utf8_view`; numbers `int32`/`int64` (exact), `decimal128`
//! (exact) or `float64` (taken as the shortest decimal that reads back as the same float, which
//! is what was typed for any value written from a decimal literal); a balance or price may also
//! be a string holding a decimal. Timestamps are `int64` nanoseconds, `timestamp[unit]`, or
//! RFC 3339 strings. Nulls are refused.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_ipc::reader::FileReader;
use arrow_schema::{DataType, TimeUnit};

use super::InputError;
use super::ticks::Tick;
use super::time::parse_timestamp;
use crate::book::{Book, BookBuilder};
use crate::model::{AssetTable, Decimal};

fn open(path: &Path) -> Result<FileReader<BufReader<File>>, InputError> {
    let f = File::open(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
    FileReader::try_new(BufReader::with_capacity(1 << 20, f), None)
        .map_err(|e| InputError::file(path, format!("not an Arrow IPC file: {e}")))
}

/// An error at a row and column.
fn at(path: &Path, row: usize, column: &str, problem: impl std::fmt::Display) -> InputError {
    InputError::file(path, format!("row {row}, column '{column}': {problem}"))
}

/// The position of a named column (case-insensitive), or an error naming what is expected.
fn column(path: &Path, batch: &RecordBatch, names: &[&str], expect: &str) -> Result<usize, InputError> {
    let schema = batch.schema();
    names
        .iter()
        .find_map(|n| schema.fields().iter().position(|f| f.name().eq_ignore_ascii_case(n)))
        .ok_or_else(|| {
            InputError::file(path, format!("no column '{}': the columns must be {expect}", names[0]))
        })
}

/// Reads the string at `i` of a string column.
fn string(a: &ArrayRef, i: usize) -> Result<&str, String> {
    if a.is_null(i) {
        return Err("null".into());
    }
    match a.data_type() {
        DataType::Utf8 => Ok(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Ok(a.as_string::<i64>().value(i)),
        DataType::Utf8View => Ok(a.as_string_view().value(i)),
        t => Err(format!("type {t}, expected a string column (utf8, large_utf8, utf8_view)")),
    }
}

/// Reads the exact decimal at `i` of a numeric or string column.
fn decimal(a: &ArrayRef, i: usize) -> Result<Decimal, String> {
    if a.is_null(i) {
        return Err("null".into());
    }
    let parse = |s: &str| s.parse::<Decimal>().map_err(|e| e.to_string());
    match a.data_type() {
        DataType::Int64 => Ok(Decimal::new(a.as_primitive::<Int64Type>().value(i) as i128, 0)),
        DataType::Int32 => Ok(Decimal::new(a.as_primitive::<Int32Type>().value(i) as i128, 0)),
        DataType::Decimal128(_, s) if *s >= 0 => {
            Ok(Decimal::new(a.as_primitive::<Decimal128Type>().value(i), *s as u32).normalized())
        }
        DataType::Float64 => {
            let v = a.as_primitive::<arrow_array::types::Float64Type>().value(i);
            parse(&format!("{v}"))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => parse(string(a, i)?),
        t => Err(format!("type {t}, expected int64, int32, decimal128, float64 or a decimal string")),
    }
}

/// Reads the timestamp at `i` in nanoseconds since the epoch.
fn timestamp(a: &ArrayRef, i: usize) -> Result<i64, String> {
    if a.is_null(i) {
        return Err("null".into());
    }
    let scaled = |v: i64, by: i64| v.checked_mul(by).ok_or_else(|| format!("timestamp {v} is out of range"));
    match a.data_type() {
        DataType::Int64 => Ok(a.as_primitive::<Int64Type>().value(i)),
        DataType::Timestamp(unit, _) => {
            use arrow_array::types::*;
            match unit {
                TimeUnit::Nanosecond => Ok(a.as_primitive::<TimestampNanosecondType>().value(i)),
                TimeUnit::Microsecond => scaled(a.as_primitive::<TimestampMicrosecondType>().value(i), 1_000),
                TimeUnit::Millisecond => {
                    scaled(a.as_primitive::<TimestampMillisecondType>().value(i), 1_000_000)
                }
                TimeUnit::Second => scaled(a.as_primitive::<TimestampSecondType>().value(i), 1_000_000_000),
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => parse_timestamp(string(a, i)?),
        t => Err(format!("type {t}, expected int64 nanoseconds, a timestamp or an RFC 3339 string")),
    }
}

/// Reads an Arrow IPC account file (long form) into the compact book.
pub fn read_book(
    path: &Path,
    table: &AssetTable,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Book, InputError> {
    let reader = open(path)?;
    let batches = reader.num_batches() as u64;
    let mut b = BookBuilder::new(table);
    let mut row = 0usize;
    for (n, batch) in reader.enumerate() {
        let batch = batch.map_err(|e| InputError::file(path, format!("batch {}: {e}", n + 1)))?;
        let expect = "account, asset, balance (and optionally tier)";
        let ia = column(path, &batch, &["account"], expect)?;
        let is = column(path, &batch, &["asset"], expect)?;
        let ib = column(path, &batch, &["balance"], expect)?;
        let it = column(path, &batch, &["tier"], expect).ok();
        let (ca, cs, cb) = (batch.column(ia), batch.column(is), batch.column(ib));
        let ct = it.map(|i| batch.column(i));
        for i in 0..batch.num_rows() {
            row += 1;
            let id = string(ca, i).map_err(|e| at(path, row, "account", e))?;
            let asset = string(cs, i).map_err(|e| at(path, row, "asset", e))?;
            let balance = decimal(cb, i).map_err(|e| at(path, row, "balance", e))?;
            let tier = match ct {
                Some(c) if !c.is_null(i) => Some(string(c, i).map_err(|e| at(path, row, "tier", e))?),
                _ => None,
            };
            b.push(id, asset, balance, tier)
                .map_err(|e| InputError::file(path, format!("row {row}: {e}")))?;
        }
        progress(n as u64 + 1, batches);
    }
    Ok(b.finish())
}

/// Reads an Arrow IPC tick file; ticks must not go back in time.
pub fn read_ticks(path: &Path, table: &AssetTable) -> Result<Vec<Tick>, InputError> {
    let reader = open(path)?;
    let mut out: Vec<Tick> = Vec::new();
    let mut row = 0usize;
    for (n, batch) in reader.enumerate() {
        let batch = batch.map_err(|e| InputError::file(path, format!("batch {}: {e}", n + 1)))?;
        let expect = "timestamp, asset, price";
        let its = column(path, &batch, &["timestamp", "ts"], expect)?;
        let ia = column(path, &batch, &["asset"], expect)?;
        let ip = column(path, &batch, &["price"], expect)?;
        let (cts, ca, cp) = (batch.column(its), batch.column(ia), batch.column(ip));
        let ts_name = batch.schema().field(its).name().clone();
        for i in 0..batch.num_rows() {
            row += 1;
            let ts = timestamp(cts, i).map_err(|e| at(path, row, &ts_name, e))?;
            let asset = string(ca, i).map_err(|e| at(path, row, "asset", e))?;
            let price = decimal(cp, i).map_err(|e| at(path, row, "price", e))?;
            let t = super::ticks::make_tick(table, ts, asset, price)
                .map_err(|e| InputError::file(path, format!("row {row}: {e}")))?;
            if let Some(prev) = out.last()
                && t.ts_ns < prev.ts_ns
            {
                return Err(InputError::file(
                    path,
                    format!("row {row}: timestamp {} is before the previous tick's {}", t.ts_ns, prev.ts_ns),
                ));
            }
            out.push(t);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Decimal128Array, Float64Array, Int64Array, StringArray, TimestampMillisecondArray};
    use arrow_ipc::writer::FileWriter;
    use arrow_schema::{Field, Schema};

    use super::*;
    use crate::io::Format;
    use crate::io::accounts::parse_book;
    use crate::io::test_venue as table;

    fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
        let schema = Arc::new(Schema::new(
            columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>(),
        ));
        let batch =
            RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
        let mut w = FileWriter::try_new(File::create(path).unwrap(), &schema).unwrap();
        // Two batches, so rows are counted across them.
        let half = batch.num_rows() / 2;
        w.write(&batch.slice(0, half)).unwrap();
        w.write(&batch.slice(half, batch.num_rows() - half)).unwrap();
        w.finish().unwrap();
    }

    fn strs(v: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    #[test]
    fn an_arrow_book_equals_the_csv_book() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.arrow");
        let ids = strs(&[Some("alice"), Some("alice"), Some("bob"), Some("bob")]);
        let assets = strs(&[Some("ETH"), Some("USDC"), Some("USDC"), Some("ETH")]);
        // Exact decimals (decimal128 with scale 2) and floats both read as the decimals written.
        let bal: ArrayRef = Arc::new(
            Decimal128Array::from(vec![1000, -1_500_000, 500, -25]).with_precision_and_scale(20, 2).unwrap(),
        );
        write(&p, vec![("account", ids.clone()), ("asset", assets.clone()), ("balance", bal)]);
        let csv = "account,asset,balance\nalice,ETH,10\nalice,USDC,-15000\nbob,USDC,5\nbob,ETH,-0.25\n";
        let want = parse_book(Path::new("a.csv"), csv, Format::Csv, &table()).unwrap();
        assert_eq!(read_book(&p, &table(), &mut |_, _| {}).unwrap(), want);
        let f: ArrayRef = Arc::new(Float64Array::from(vec![10.0, -15000.0, 5.0, -0.25]));
        write(&p, vec![("account", ids), ("asset", assets), ("balance", f)]);
        assert_eq!(read_book(&p, &table(), &mut |_, _| {}).unwrap(), want);
    }

    #[test]
    fn bad_arrow_books_name_the_file_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.arrow");
        let ids = || strs(&[Some("a"), Some("a"), Some("b"), Some("c")]);
        let cases: Vec<(Vec<(&str, ArrayRef)>, &str)> = vec![
            (
                vec![
                    ("account", ids()),
                    ("asset", strs(&[Some("ETH"), Some("USDC"), Some("ETH"), Some("ETH")])),
                    ("balance", Arc::new(Float64Array::from(vec![Some(1.0), Some(-1.0), None, Some(1.0)]))),
                ],
                "row 3, column 'balance': null",
            ),
            (
                vec![
                    ("account", ids()),
                    ("asset", strs(&[Some("ETH"), Some("USDC"), Some("DOGE"), Some("ETH")])),
                    ("balance", Arc::new(Int64Array::from(vec![1, -1, 1, 1]))),
                ],
                "row 3: account 'b': unknown asset 'DOGE'",
            ),
            (
                vec![
                    ("account", ids()),
                    ("asset", strs(&[Some("ETH"), Some("ETH"), Some("ETH"), Some("ETH")])),
                    ("balance", Arc::new(Int64Array::from(vec![1, 2, 1, 1]))),
                ],
                "row 2: account 'a' has a supply (positive balance) of 'ETH' already",
            ),
            (
                vec![
                    ("account", ids()),
                    ("asset", strs(&[Some("ETH"), Some("ETH"), Some("ETH"), Some("ETH")])),
                    ("balance", Arc::new(Float64Array::from(vec![1.0, -1.0, 1.0, f64::NAN]))),
                ],
                "row 4, column 'balance': 'NaN' is not a decimal",
            ),
            (
                vec![
                    ("account", ids()),
                    ("asset", ids()),
                    ("amount", Arc::new(Int64Array::from(vec![1, 1, 1, 1]))),
                ],
                "no column 'balance'",
            ),
            (
                vec![
                    ("account", Arc::new(Int64Array::from(vec![1, 1, 1, 1]))),
                    ("asset", ids()),
                    ("balance", Arc::new(Int64Array::from(vec![1, 1, 1, 1]))),
                ],
                "row 1, column 'account': type Int64, expected a string column",
            ),
        ];
        for (columns, want) in cases {
            write(&p, columns);
            let e = read_book(&p, &table(), &mut |_, _| {}).unwrap_err();
            assert_eq!(e.file, p);
            assert!(e.problem.starts_with(want), "got {e}\nwant {want}");
        }
        std::fs::write(&p, "account,asset,balance\n").unwrap();
        let e = read_book(&p, &table(), &mut |_, _| {}).unwrap_err().to_string();
        assert!(e.contains("not an Arrow IPC file"), "{e}");
    }

    #[test]
    fn arrow_ticks_equal_csv_ticks_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.feather");
        let ts: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![1_584_000_000_000, 1_584_000_000_001]));
        let assets = strs(&[Some("ETH"), Some("USDC")]);
        let prices: ArrayRef = Arc::new(Float64Array::from(vec![195.21, 1.0]));
        write(&p, vec![("timestamp", ts), ("asset", assets.clone()), ("price", prices.clone())]);
        let csv = "timestamp,asset,price\n1584000000000000000,ETH,195.21\n1584000000001000000,USDC,1\n";
        let want = crate::io::ticks::parse_ticks(Path::new("t.csv"), csv, Format::Csv, &table()).unwrap();
        assert_eq!(read_ticks(&p, &table()).unwrap(), want);
        let back: ArrayRef = Arc::new(Int64Array::from(vec![5, 4]));
        write(&p, vec![("ts", back), ("asset", assets.clone()), ("price", prices)]);
        let e = read_ticks(&p, &table()).unwrap_err().to_string();
        assert!(e.ends_with("row 2: timestamp 4 is before the previous tick's 5"), "{e}");
        let neg: ArrayRef = Arc::new(Int64Array::from(vec![-1, 1]));
        write(
            &p,
            vec![
                ("ts", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
                ("asset", assets),
                ("price", neg),
            ],
        );
        let e = read_ticks(&p, &table()).unwrap_err().to_string();
        assert!(e.contains("row 1: asset 'ETH' price -1 is negative"), "{e}");
    }
}
