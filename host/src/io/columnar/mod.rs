//! Columnar inputs: Apache Arrow IPC files (`.arrow`, `.feather`, `.ipc`: the file format, as
//! pyarrow's `feather.write_feather` and polars' `write_ipc` write it) and Parquet files
//! (`.parquet`, `.pq`: uncompressed, snappy or zstd, as pyarrow, pandas, polars and Spark write
//! them) for accounts in long form (`account`, `asset`, `balance`, optional `tier`) and for
//! ticks (`timestamp` or `ts`, `asset`, `price`). Both come through the Arrow reader as record
//! batches ([`source`]), and the same code reads their rows.
//!
//! The rows go through the same checks as CSV rows ([`BookBuilder`], the tick compiler), and
//! every problem names the file, the row (1-based over the whole file) and the column. Strings
//! may be `utf8`, `large_utf8`, `utf8_view` or a dictionary of them; numbers any integer type
//! (exact), `decimal32/64/128` (exact) or `float64`/`float32` (taken as the shortest decimal
//! that reads back as the same float, which is what was typed for any value written from a
//! decimal literal); a balance or price may also be a string holding a decimal. Timestamps are
//! `int64` nanoseconds, `timestamp[unit]`, or RFC 3339 strings. Nulls are refused.

mod source;

pub(crate) use source::parquet_size;

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};

use super::InputError;
use super::ticks::Tick;
use super::time::parse_timestamp;
use crate::book::{Book, BookBuilder};
use crate::model::{AssetTable, Decimal};

/// An error at a row and column.
fn at(path: &Path, row: usize, column: &str, problem: impl std::fmt::Display) -> InputError {
    InputError::file(path, format!("row {row}, column '{column}': {problem}"))
}

/// The position of the column any of `names` names (case-insensitive), if there is one; a
/// column named twice is refused (see [`header_column`](super::header_column)).
fn find(path: &Path, schema: &Schema, names: &[&str]) -> Result<Option<usize>, InputError> {
    super::header_column(schema.fields().iter().map(|f| f.name()), names)
        .map_err(|e| InputError::file(path, format!("schema: {e}")))
}

/// The position of a named column (case-insensitive), or an error naming what is expected.
fn column(path: &Path, schema: &Schema, names: &[&str], expect: &str) -> Result<usize, InputError> {
    find(path, schema, names)?.ok_or_else(|| {
        InputError::file(path, format!("no column '{}': the columns must be {expect}", names[0]))
    })
}

/// A batch's column with a dictionary (pandas' categoricals, Parquet's dictionary pages when
/// the writer kept the Arrow type) spelled out as the plain column of its values.
fn plain(path: &Path, batch: &RecordBatch, i: usize) -> Result<ArrayRef, InputError> {
    let a = batch.column(i);
    match a.as_any_dictionary_opt() {
        Some(d) => arrow_select::take::take(d.values().as_ref(), d.keys(), None)
            .map_err(|e| InputError::file(path, format!("column '{}': {e}", batch.schema().field(i).name()))),
        None => Ok(a.clone()),
    }
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
    let int = |v: i128| Ok(Decimal::new(v, 0));
    let scaled = |v: i128, s: i8| {
        if s >= 0 {
            Ok(Decimal::new(v, s as u32).normalized())
        } else {
            Err(format!("decimal scale {s} (negative scales are not read)"))
        }
    };
    match a.data_type() {
        DataType::Int64 => int(a.as_primitive::<Int64Type>().value(i) as i128),
        DataType::Int32 => int(a.as_primitive::<Int32Type>().value(i) as i128),
        DataType::Int16 => int(a.as_primitive::<Int16Type>().value(i) as i128),
        DataType::Int8 => int(a.as_primitive::<Int8Type>().value(i) as i128),
        DataType::UInt64 => int(a.as_primitive::<UInt64Type>().value(i) as i128),
        DataType::UInt32 => int(a.as_primitive::<UInt32Type>().value(i) as i128),
        DataType::UInt16 => int(a.as_primitive::<UInt16Type>().value(i) as i128),
        DataType::UInt8 => int(a.as_primitive::<UInt8Type>().value(i) as i128),
        DataType::Decimal128(_, s) => scaled(a.as_primitive::<Decimal128Type>().value(i), *s),
        DataType::Decimal64(_, s) => scaled(a.as_primitive::<Decimal64Type>().value(i) as i128, *s),
        DataType::Decimal32(_, s) => scaled(a.as_primitive::<Decimal32Type>().value(i) as i128, *s),
        DataType::Float64 => parse(&format!("{}", a.as_primitive::<Float64Type>().value(i))),
        DataType::Float32 => parse(&format!("{}", a.as_primitive::<Float32Type>().value(i))),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => parse(string(a, i)?),
        t => Err(format!("type {t}, expected an integer, decimal128/64/32, float64/32 or a decimal string")),
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
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Nanosecond => Ok(a.as_primitive::<TimestampNanosecondType>().value(i)),
            TimeUnit::Microsecond => scaled(a.as_primitive::<TimestampMicrosecondType>().value(i), 1_000),
            TimeUnit::Millisecond => scaled(a.as_primitive::<TimestampMillisecondType>().value(i), 1_000_000),
            TimeUnit::Second => scaled(a.as_primitive::<TimestampSecondType>().value(i), 1_000_000_000),
        },
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => parse_timestamp(string(a, i)?),
        t => Err(format!("type {t}, expected int64 nanoseconds, a timestamp or an RFC 3339 string")),
    }
}

/// Reads an Arrow IPC or Parquet account file (long form) into the compact book;
/// `progress(done, total)` hears of each batch, in bytes of the file (estimated from the
/// batches or rows read).
pub fn read_book(
    path: &Path,
    table: &AssetTable,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Book, InputError> {
    let mut b = BookBuilder::new(table);
    for_each_row(path, progress, |id, asset, balance, tier| b.push(id, asset, balance, tier))?;
    Ok(b.finish())
}

/// Reads an Arrow IPC or Parquet account file (long form), handing each row to `row(account,
/// asset, balance, tier)`; a problem it returns is reported at the row. `progress` as in
/// [`read_book`].
pub(crate) fn for_each_row(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
    mut push: impl FnMut(&str, &str, Decimal, Option<&str>) -> Result<(), String>,
) -> Result<(), InputError> {
    let expect = "account, asset, balance (and optionally tier)";
    let mut src = source::open(path, &["account", "asset", "balance", "tier"])?;
    for names in [["account"], ["asset"], ["balance"]] {
        column(path, &src.schema, &names, expect)?;
    }
    find(path, &src.schema, &["tier"])?;
    let file_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut row = 0usize;
    let mut n = 0;
    while let Some(batch) = src.next_batch(path, n, row) {
        let batch = batch?;
        let s = batch.schema();
        let col = |names: &[&str]| column(path, &s, names, expect).and_then(|i| plain(path, &batch, i));
        let (ca, cs, cb) = (col(&["account"])?, col(&["asset"])?, col(&["balance"])?);
        let ct = find(path, &s, &["tier"])?.map(|i| plain(path, &batch, i)).transpose()?;
        for i in 0..batch.num_rows() {
            row += 1;
            let id = string(&ca, i).map_err(|e| at(path, row, "account", e))?;
            let asset = string(&cs, i).map_err(|e| at(path, row, "asset", e))?;
            let balance = decimal(&cb, i).map_err(|e| at(path, row, "balance", e))?;
            let tier = match &ct {
                Some(c) if !c.is_null(i) => Some(string(c, i).map_err(|e| at(path, row, "tier", e))?),
                _ => None,
            };
            push(id, asset, balance, tier).map_err(|e| InputError::file(path, format!("row {row}: {e}")))?;
        }
        n += 1;
        progress(file_bytes * src.done() / src.total.max(1), file_bytes);
    }
    Ok(())
}

/// Reads an Arrow IPC or Parquet tick file; ticks must not go back in time.
pub fn read_ticks(path: &Path, table: &AssetTable) -> Result<Vec<Tick>, InputError> {
    let expect = "timestamp, asset, price";
    let mut src = source::open(path, &["timestamp", "ts", "asset", "price"])?;
    for names in [&["timestamp", "ts"][..], &["asset"], &["price"]] {
        column(path, &src.schema, names, expect)?;
    }
    let mut out: Vec<Tick> = Vec::new();
    let mut row = 0usize;
    let mut n = 0;
    while let Some(batch) = src.next_batch(path, n, row) {
        let batch = batch?;
        let s = batch.schema();
        let its = column(path, &s, &["timestamp", "ts"], expect)?;
        let col = |names: &[&str]| column(path, &s, names, expect).and_then(|i| plain(path, &batch, i));
        let (cts, ca, cp) = (plain(path, &batch, its)?, col(&["asset"])?, col(&["price"])?);
        let ts_name = s.field(its).name().clone();
        for i in 0..batch.num_rows() {
            row += 1;
            let ts = timestamp(&cts, i).map_err(|e| at(path, row, &ts_name, e))?;
            let asset = string(&ca, i).map_err(|e| at(path, row, "asset", e))?;
            let price = decimal(&cp, i).map_err(|e| at(path, row, "price", e))?;
            let t = super::ticks::make_tick(table, ts, asset, price)
                .map_err(|e| InputError::file(path, format!("row {row}: {e}")))?;
            if let Some(prev) = out.last()
                && t.ts_ns < prev.ts_ns
            {
                return Err(InputError::file(
                    path,
                    format!("row {row}: {}", super::ticks::went_back(t.ts_ns, prev.ts_ns)),
                ));
            }
            out.push(t);
        }
        n += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::sync::Arc;

    use arrow_array::{
        Decimal128Array, DictionaryArray, Float64Array, Int32Array, Int64Array, StringArray,
        TimestampMillisecondArray,
    };
    use arrow_ipc::writer::FileWriter;
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;
    use crate::io::Format;
    use crate::io::accounts::parse_book;
    use crate::io::test_venue as table;

    /// Writes the columns to an Arrow IPC or a Parquet file (by extension) in two batches (and,
    /// for Parquet, row groups of at most 2 rows), so rows are counted across them.
    fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
        let schema = Arc::new(Schema::new(
            columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>(),
        ));
        let batch =
            RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
        let half = batch.num_rows() / 2;
        let parts = [batch.slice(0, half), batch.slice(half, batch.num_rows() - half)];
        let f = File::create(path).unwrap();
        if path.extension().is_some_and(|e| e == "parquet") {
            let props = WriterProperties::builder().set_max_row_group_row_count(Some(2)).build();
            let mut w = ArrowWriter::try_new(f, schema, Some(props)).unwrap();
            parts.iter().for_each(|b| w.write(b).unwrap());
            w.close().unwrap();
        } else {
            let mut w = FileWriter::try_new(f, &schema).unwrap();
            parts.iter().for_each(|b| w.write(b).unwrap());
            w.finish().unwrap();
        }
    }

    /// The columnar files each test writes: one of each format.
    const FILES: [&str; 2] = ["a.arrow", "a.parquet"];

    fn strs(v: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    #[test]
    fn a_columnar_book_equals_the_csv_book() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "account,asset,balance\nalice,ETH,10\nalice,USDC,-15000\nbob,USDC,5\nbob,ETH,-0.25\n";
        let want = parse_book(Path::new("a.csv"), csv, Format::Csv, &table()).unwrap();
        for name in FILES {
            let p = dir.path().join(name);
            let ids = strs(&[Some("alice"), Some("alice"), Some("bob"), Some("bob")]);
            let assets = strs(&[Some("ETH"), Some("USDC"), Some("USDC"), Some("ETH")]);
            // Exact decimals (decimal128 with scale 2) and floats both read as the decimals written.
            let bal: ArrayRef = Arc::new(
                Decimal128Array::from(vec![1000, -1_500_000, 500, -25])
                    .with_precision_and_scale(20, 2)
                    .unwrap(),
            );
            write(&p, vec![("account", ids.clone()), ("asset", assets.clone()), ("balance", bal)]);
            assert_eq!(read_book(&p, &table(), &mut |_, _| {}).unwrap(), want, "{name}");
            let f: ArrayRef = Arc::new(Float64Array::from(vec![10.0, -15000.0, 5.0, -0.25]));
            write(&p, vec![("account", ids.clone()), ("asset", assets), ("balance", f.clone())]);
            assert_eq!(read_book(&p, &table(), &mut |_, _| {}).unwrap(), want, "{name}");
            // Assets as a dictionary (pandas' categoricals), columns in another order, an extra
            // column that is not read.
            let dict: ArrayRef = Arc::new(DictionaryArray::new(
                Int32Array::from(vec![0, 1, 1, 0]),
                strs(&[Some("ETH"), Some("USDC")]),
            ));
            let extra: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 4]));
            write(&p, vec![("Balance", f), ("note", extra), ("ASSET", dict), ("account", ids)]);
            assert_eq!(read_book(&p, &table(), &mut |_, _| {}).unwrap(), want, "{name}");
        }
    }

    #[test]
    fn bad_columnar_books_name_the_file_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
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
                    ("asset", strs(&[Some("ETH"), Some("USDC"), Some("ETH"), Some("ETH")])),
                    ("balance", strs(&[Some("1"), Some("-1"), Some("1.5"), Some("x")])),
                ],
                "row 4, column 'balance': 'x' is not a decimal",
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
            (
                vec![
                    ("account", ids()),
                    ("asset", strs(&[Some("ETH"), Some("USDC"), Some("ETH"), Some("ETH")])),
                    ("balance", Arc::new(TimestampMillisecondArray::from(vec![1, 1, 1, 1]))),
                ],
                "row 1, column 'balance': type Timestamp(ms), expected an integer",
            ),
        ];
        for name in FILES {
            let p = dir.path().join(name);
            for (columns, want) in cases.clone() {
                write(&p, columns);
                let e = read_book(&p, &table(), &mut |_, _| {}).unwrap_err();
                assert_eq!(e.file, p);
                assert!(e.problem.starts_with(want), "{name}: got {e}\nwant {want}");
            }
            std::fs::write(&p, "account,asset,balance\n").unwrap();
            let e = read_book(&p, &table(), &mut |_, _| {}).unwrap_err().to_string();
            let want = if name.ends_with("parquet") { "not a Parquet file" } else { "not an Arrow IPC file" };
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn columnar_ticks_equal_csv_ticks_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "timestamp,asset,price\n1584000000000000000,ETH,195.21\n1584000000001000000,USDC,1\n";
        let want = crate::io::ticks::parse_ticks(Path::new("t.csv"), csv, Format::Csv, &table()).unwrap();
        for name in ["t.feather", "t.parquet"] {
            let p = dir.path().join(name);
            let ts: ArrayRef =
                Arc::new(TimestampMillisecondArray::from(vec![1_584_000_000_000, 1_584_000_000_001]));
            let assets = strs(&[Some("ETH"), Some("USDC")]);
            let prices: ArrayRef = Arc::new(Float64Array::from(vec![195.21, 1.0]));
            write(&p, vec![("timestamp", ts), ("asset", assets.clone()), ("price", prices.clone())]);
            assert_eq!(read_ticks(&p, &table()).unwrap(), want, "{name}");
            let back: ArrayRef = Arc::new(Int64Array::from(vec![5, 4]));
            write(&p, vec![("ts", back), ("asset", assets.clone()), ("price", prices.clone())]);
            let e = read_ticks(&p, &table()).unwrap_err().to_string();
            assert!(
                e.ends_with(
                    "row 2: timestamp 1970-01-01T00:00:00.000Z (4 ns) is before the previous tick's \
                     1970-01-01T00:00:00.000Z (5 ns)"
                ),
                "{e}"
            );
            let neg: ArrayRef = Arc::new(Int64Array::from(vec![-1, 1]));
            let ts2 = || Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef;
            write(&p, vec![("ts", ts2()), ("asset", assets.clone()), ("price", neg)]);
            let e = read_ticks(&p, &table()).unwrap_err().to_string();
            assert!(e.contains("row 1: asset 'ETH' price -1 is negative"), "{e}");
            write(&p, vec![("ts", ts2()), ("asset", assets.clone()), ("cost", prices.clone())]);
            let e = read_ticks(&p, &table()).unwrap_err().to_string();
            assert!(e.contains("no column 'price': the columns must be timestamp, asset, price"), "{e}");
            let text = strs(&[Some("2020-03-12T00:00:00Z"), Some("yesterday")]);
            write(&p, vec![("timestamp", text), ("asset", assets), ("price", prices)]);
            let e = read_ticks(&p, &table()).unwrap_err().to_string();
            assert!(e.contains("row 2, column 'timestamp': "), "{e}");
        }
    }

    /// A schema naming a column twice (up to case), or the time as both `timestamp` and `ts`,
    /// is refused, naming the column: the first copy would be read and the other ignored.
    #[test]
    fn a_column_named_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ids = || strs(&[Some("a"), Some("a")]);
        let assets = || strs(&[Some("ETH"), Some("USDC")]);
        let num = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
        for name in FILES {
            let p = dir.path().join(name);
            let cases: Vec<(Vec<(&str, ArrayRef)>, &str)> = vec![
                (
                    vec![
                        ("account", ids()),
                        ("asset", assets()),
                        ("balance", num(vec![10, -1])),
                        ("Balance", num(vec![99, -1])),
                    ],
                    "schema: columns 'balance' and 'Balance' (columns 3 and 4) both name column 'balance'",
                ),
                (
                    vec![
                        ("account", ids()),
                        ("ACCOUNT", ids()),
                        ("asset", assets()),
                        ("balance", num(vec![10, -1])),
                    ],
                    "schema: columns 'account' and 'ACCOUNT' (columns 1 and 2)",
                ),
                (
                    vec![
                        ("account", ids()),
                        ("asset", assets()),
                        ("balance", num(vec![10, -1])),
                        ("tier", ids()),
                        ("Tier", ids()),
                    ],
                    "schema: columns 'tier' and 'Tier' (columns 4 and 5)",
                ),
            ];
            for (columns, want) in cases {
                write(&p, columns);
                let e = read_book(&p, &table(), &mut |_, _| {}).unwrap_err();
                assert_eq!(e.file, p);
                assert!(e.problem.starts_with(want), "{name}: got {e}\nwant {want}");
            }
            let prices = || Arc::new(Float64Array::from(vec![2000.0, 1.0])) as ArrayRef;
            write(
                &p,
                vec![
                    ("timestamp", num(vec![1, 2])),
                    ("asset", assets()),
                    ("price", prices()),
                    ("ts", num(vec![3, 4])),
                ],
            );
            let e = read_ticks(&p, &table()).unwrap_err();
            let want = "schema: columns 'timestamp' and 'ts' (columns 1 and 4) both name column 'timestamp'";
            assert!(e.problem.starts_with(want), "{name}: got {e}\nwant {want}");
        }
    }

    /// The accounts as specs (`liqscan run`; `liqscan scan` when the venue leaves a quantum to
    /// the book) read from Arrow IPC and Parquet as from CSV, with the same refusals.
    #[test]
    fn columnar_accounts_read_as_specs_like_csv() {
        use crate::io::accounts::read_accounts;
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("a.csv");
        std::fs::write(
            &csv,
            "account,asset,balance\nalice,ETH,10\nbob,USDC,5\nalice,USDC,-15000\nbob,ETH,-0.25\n",
        )
        .unwrap();
        let want = read_accounts(&csv, &table()).unwrap();
        let ids = || strs(&[Some("alice"), Some("bob"), Some("alice"), Some("bob")]);
        let bal = || Arc::new(Float64Array::from(vec![10.0, 5.0, -15000.0, -0.25])) as ArrayRef;
        // A venue without ETH's quantum_exp: chosen from the book, read as specs.
        let venue = dir.path().join("v.toml");
        std::fs::write(
            &venue,
            "[venue]\nprice_range = [\"10\", \"100000\"]\n[[assets]]\nsymbol = \"ETH\"\n\
             tiers.default = { asset_weight = \"0.825\", liability_weight = \"1\" }\n[[assets]]\n\
             symbol = \"USDC\"\nquantum_exp = -2\nprice_range = [\"0.5\", \"2\"]\n\
             tiers.default = { asset_weight = \"1\", liability_weight = \"1\" }\n",
        )
        .unwrap();
        let ranged = crate::io::venue_book::read_venue_and_book(&venue, &csv).unwrap();
        for name in FILES {
            let p = dir.path().join(name);
            let assets = strs(&[Some("ETH"), Some("USDC"), Some("USDC"), Some("ETH")]);
            write(&p, vec![("account", ids()), ("asset", assets), ("balance", bal())]);
            assert_eq!(read_accounts(&p, &table()).unwrap(), want, "{name}");
            let got = crate::io::venue_book::read_venue_and_book(&venue, &p).unwrap();
            assert_eq!(
                (got.accounts, got.chosen),
                (ranged.accounts.clone(), ranged.chosen.clone()),
                "{name}"
            );
            let assets = strs(&[Some("ETH"), Some("USDC"), Some("DOGE"), Some("ETH")]);
            write(&p, vec![("account", ids()), ("asset", assets), ("balance", bal())]);
            let e = read_accounts(&p, &table()).unwrap_err().to_string();
            assert_eq!(e, format!("{}: row 3: account 'alice': unknown asset 'DOGE'", p.display()));
        }
    }

    /// One byte changed anywhere in a valid file (accounts and ticks, Arrow IPC and Parquet, a
    /// three values a byte) gives the book or ticks, or an error naming the file: never a panic.
    /// The crates panic on some of these (a buffer offset past the body, a zero divisor), which
    /// the reader reports as "cannot decode".
    #[test]
    fn a_damaged_columnar_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = || {
            vec![
                ("account", strs(&[Some("a"), Some("a"), Some("b"), Some("c")])),
                ("asset", strs(&[Some("ETH"), Some("USDC"), Some("ETH"), Some("USDC")])),
                ("balance", Arc::new(Float64Array::from(vec![10.0, -15000.0, 1.5, 7.0])) as ArrayRef),
            ]
        };
        let ticks = || {
            vec![
                ("timestamp", Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as ArrayRef),
                ("asset", strs(&[Some("ETH"), Some("USDC"), Some("ETH"), Some("ETH")])),
                ("price", Arc::new(Float64Array::from(vec![2000.0, 1.0, 1990.5, 1980.0])) as ArrayRef),
            ]
        };
        let mut undecodable = 0;
        for (name, is_book) in
            [("a.arrow", true), ("a.parquet", true), ("t.arrow", false), ("t.parquet", false)]
        {
            let good = dir.path().join(format!("good-{name}"));
            write(&good, if is_book { accounts() } else { ticks() });
            let bytes = std::fs::read(&good).unwrap();
            let p = dir.path().join(name);
            // Every third byte, two values each: the whole sweep took about two minutes of
            // the default tests' time, and a third of it still reaches the crates' panics.
            for at in (0..bytes.len()).step_by(3) {
                for v in [0xff, bytes[at] ^ 0x80] {
                    let mut bad = bytes.clone();
                    bad[at] = v;
                    std::fs::write(&p, &bad).unwrap();
                    let got = std::panic::catch_unwind(|| match is_book {
                        true => read_book(&p, &table(), &mut |_, _| {}).err(),
                        false => read_ticks(&p, &table()).err(),
                    });
                    let e = got.unwrap_or_else(|_| panic!("{name}: byte {at} set to {v:#04x} panicked"));
                    if let Some(e) = e {
                        assert_eq!(e.file, p, "{name}: byte {at} = {v:#04x}: {e}");
                        undecodable += e.problem.starts_with("cannot decode the ") as usize;
                    }
                }
            }
        }
        // The sweep does reach the crates' panics (else it tests nothing).
        assert!(undecodable > 0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Random rows, good and bad, as CSV, Arrow IPC and Parquet: the same book, or the same
        /// problem at the same row (the CSV's line is the row plus the header).
        #[test]
        fn csv_arrow_and_parquet_read_alike(
            rows in proptest::collection::vec(
                ("[a-d]", "(ETH|USDC|DOGE)", -9_000_000i64..9_000_000, 0u32..7), 0..24),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut text = String::from("account,asset,balance\n");
            let mut dec = Vec::new();
            for (a, s, b, scale) in &rows {
                let d = Decimal::new(*b as i128, *scale);
                text.push_str(&format!("{a},{s},{d}\n"));
                dec.push(*b as i128 * 10i128.pow(6 - scale));
            }
            let want = parse_book(Path::new("r.csv"), &text, Format::Csv, &table());
            let col = |f: fn(&(String, String, i64, u32)) -> &str| -> ArrayRef {
                Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
            };
            let bal: ArrayRef =
                Arc::new(Decimal128Array::from(dec).with_precision_and_scale(38, 6).unwrap());
            for name in FILES {
                let p = dir.path().join(name);
                write(&p, vec![("account", col(|r| &r.0)), ("asset", col(|r| &r.1)), ("balance", bal.clone())]);
                let got = read_book(&p, &table(), &mut |_, _| {});
                match (&want, got) {
                    (Ok(w), Ok(g)) => proptest::prop_assert_eq!(w, &g),
                    (Err(w), Err(g)) => {
                        let row = w.line.unwrap() - 1;
                        proptest::prop_assert_eq!(&g.problem, &format!("row {row}: {}", w.problem));
                    }
                    (w, g) => proptest::prop_assert!(false, "{name}: csv {w:?}, columnar {g:?}"),
                }
            }
        }
    }
}
