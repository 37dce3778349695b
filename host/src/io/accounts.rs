//! Account files: TOML (`[[accounts]]`), JSON (an array, or `{"accounts": [...]}`), or CSV in
//! long form, one balance a row:
//!
//! ```text
//! account,asset,balance,tier
//! alice,ETH,10,default
//! alice,USDC,-15000,default
//! ```
//!
//! The tier column is optional. Every account is compiled against the venue while reading, so
//! an unknown asset or tier, an over-precise balance or a coefficient overflow is reported with
//! the file and line (CSV) or the account's position (TOML/JSON).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use liqscan_hdl::abi::Coeff;
use serde::Deserialize;

use super::csv_rows::{for_each_csv_row, for_each_prepared_csv_row};
use super::{Format, InputError, json_line, read_text, toml_line};
use crate::book::{BOOK_BYTES_PER_TERM, Book, BookBuilder};
use crate::model::{AccountSpec, AssetTable, Decimal};

/// An account as read and compiled: its spec and its datapath terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedAccount {
    /// The account as written.
    pub spec: AccountSpec,
    /// Its compiled terms.
    pub terms: Vec<Coeff>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsDoc {
    accounts: Vec<AccountSpec>,
}

/// Parses account text; `path` names it in errors.
pub fn parse_accounts(
    path: &Path,
    text: &str,
    format: Format,
    table: &AssetTable,
) -> Result<Vec<LoadedAccount>, InputError> {
    let specs: Vec<(AccountSpec, Option<usize>)> = match format {
        Format::Toml => {
            let doc: AccountsDoc = toml::from_str(text).map_err(|e| InputError {
                file: path.into(),
                line: toml_line(text, &e),
                problem: e.message().to_string(),
            })?;
            doc.accounts.into_iter().map(|a| (a, None)).collect()
        }
        Format::Json => {
            // A list, or a document with an `accounts` list: told apart by the first character
            // rather than an untagged enum, which would hide the real error (an asset given
            // twice, a bad number) behind "did not match any variant".
            let err = |e: serde_json::Error| InputError::at(path, json_line(&e), e);
            let list: Vec<AccountSpec> = if text.trim_start().starts_with('[') {
                serde_json::from_str(text).map_err(err)?
            } else {
                serde_json::from_str::<AccountsDoc>(text).map_err(err)?.accounts
            };
            list.into_iter().map(|a| (a, None)).collect()
        }
        Format::Csv => parse_csv(path, text.as_bytes(), table)?,
        _ => return Err(InputError::file(path, "accounts must be .toml, .json, .csv, .arrow or .parquet")),
    };
    compile_specs(path, specs, table)
}

/// Checks ids are unique and compiles each account; `line` (CSV) or the account's position
/// names it in errors.
fn compile_specs(
    path: &Path,
    specs: Vec<(AccountSpec, Option<usize>)>,
    table: &AssetTable,
) -> Result<Vec<LoadedAccount>, InputError> {
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(specs.len());
    for (n, (spec, line)) in specs.into_iter().enumerate() {
        let place = |problem: String| match line {
            Some(l) => InputError::at(path, l, problem),
            None => InputError::file(path, format!("account #{} ('{}'): {problem}", n + 1, spec.id)),
        };
        // As the CSV reader refuses it (where a blank field trims to empty): an account
        // nobody can name in an event or an order.
        if spec.id.trim().is_empty() {
            return Err(place("empty account id".into()));
        }
        if let Some(first) = seen.insert(spec.id.clone(), n + 1) {
            return Err(place(format!("duplicate account '{}' (first as account #{first})", spec.id)));
        }
        let terms = table.compile(&spec).map_err(|e| place(e.to_string()))?;
        out.push(LoadedAccount { spec, terms });
    }
    Ok(out)
}

fn parse_csv(
    path: &Path,
    input: impl Read + Send,
    table: &AssetTable,
) -> Result<Vec<(AccountSpec, Option<usize>)>, InputError> {
    specs_of_rows(table, |row| for_each_csv_row(path, input, &mut |_| {}, row))
}

/// What a long-form reader hands each row: (account, asset, balance, tier).
type RowFn<'a> = dyn FnMut(&str, &str, Decimal, Option<&str>) -> Result<(), String> + 'a;

/// The accounts of a long-form file (CSV, Arrow IPC, Parquet) as specs, in order of first
/// appearance; `read` hands each row to the function it is given.
fn specs_of_rows(
    table: &AssetTable,
    read: impl FnOnce(&mut RowFn<'_>) -> Result<(), InputError>,
) -> Result<Vec<(AccountSpec, Option<usize>)>, InputError> {
    // The compact builder checks the rows (the same checks as the book's); the specs are
    // kept beside it for callers that want them.
    let mut checks = BookBuilder::new(table);
    let mut order: Vec<(AccountSpec, Option<usize>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    read(&mut |id, asset, balance, tier| {
        checks.push(id, asset, balance, tier)?;
        let tier = tier.filter(|t| !t.is_empty()).unwrap_or(crate::model::account::DEFAULT_TIER);
        let k = *index.entry(id.to_string()).or_insert_with(|| {
            order.push((AccountSpec::empty(id, tier), None));
            order.len() - 1
        });
        order[k].0.add_balance(asset, balance).map_err(|e| e.to_string())
    })?;
    Ok(order)
}

/// Reads an account file (.toml, .json, .csv, .arrow or .parquet) and compiles every account
/// against the venue (for big books [`read_book`] takes less memory: no spec an account).
pub fn read_accounts(path: &Path, table: &AssetTable) -> Result<Vec<LoadedAccount>, InputError> {
    match Format::of(path)? {
        Format::Arrow | Format::Parquet => {
            let specs = specs_of_rows(table, |row| super::columnar::for_each_row(path, &mut |_, _| {}, row))?;
            compile_specs(path, specs, table)
        }
        Format::Csv => {
            let specs = parse_csv(path, open(path)?, table)?;
            compile_specs(path, specs, table)
        }
        f => parse_accounts(path, &read_text(path)?, f, table),
    }
}

/// Opens a file for streaming, naming it in the error, past a leading UTF-8 byte-order mark
/// (spreadsheets write one at the start of a "CSV UTF-8" file).
pub(crate) fn open(path: &Path) -> Result<BufReader<File>, InputError> {
    let cannot = |e: std::io::Error| InputError::file(path, format!("cannot read: {e}"));
    let mut r = File::open(path).map(|f| BufReader::with_capacity(1 << 20, f)).map_err(cannot)?;
    if r.fill_buf().map_err(cannot)?.starts_with(super::BOM.as_bytes()) {
        r.consume(super::BOM.len());
    }
    Ok(r)
}

/// Reads an account file into the compact [`Book`], streaming CSV and the columnar formats;
/// `progress(done, total)` hears of the bytes read now and then (for a progress bar).
pub fn read_book(
    path: &Path,
    table: &AssetTable,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Book, InputError> {
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    match Format::of(path)? {
        Format::Csv => read_csv_book(path, table, progress, &mut |_, _, _, _| {}),
        Format::Arrow | Format::Parquet => super::columnar::read_book(path, table, progress),
        f => {
            let loaded = parse_accounts(path, &read_text(path)?, f, table)?;
            progress(total, total);
            Ok(book_of(&loaded))
        }
    }
}

/// What [`read_csv_book`] hands each row the book takes: (account, asset, balance, tier).
pub type RowHook<'a> = dyn FnMut(usize, u16, Decimal, Option<&str>) + 'a;

/// [`read_book`] of a CSV file, handing each row the book takes to `row(account, asset,
/// balance, tier)` as it goes (account: its slot in the book; the keeper keeps the balances
/// to size orders from).
pub fn read_csv_book(
    path: &Path,
    table: &AssetTable,
    progress: &mut dyn FnMut(u64, u64),
    row: &mut RowHook<'_>,
) -> Result<Book, InputError> {
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut b = BookBuilder::new(table);
    let est = estimate_book(path)?;
    b.reserve(est.accounts as usize, est.terms as usize);
    // Rows compile on the reader thread; this one only groups them into accounts.
    let compiler = b.compiler().clone();
    for_each_prepared_csv_row(
        path,
        open(path)?,
        &mut |done| progress(done, total),
        |id, asset, balance, tier| compiler.compile(id, asset, balance, tier),
        |id, asset, balance, tier, r| {
            let a = r.asset();
            row(b.push_compiled(id, asset, r, tier)?, a, balance, tier);
            Ok(())
        },
    )?;
    Ok(b.finish())
}

/// Parses account text into the compact [`Book`] (CSV as [`read_book`] reads it; TOML and JSON
/// through [`parse_accounts`]).
pub fn parse_book(path: &Path, text: &str, format: Format, table: &AssetTable) -> Result<Book, InputError> {
    match format {
        Format::Csv => {
            let mut b = BookBuilder::new(table);
            for_each_csv_row(path, text.as_bytes(), &mut |_| {}, |id, asset, balance, tier| {
                b.push(id, asset, balance, tier)
            })?;
            Ok(b.finish())
        }
        f => Ok(book_of(&parse_accounts(path, text, f, table)?)),
    }
}

/// The compact book of accounts already loaded (slot = position).
pub fn book_of(accounts: &[LoadedAccount]) -> Book {
    let mut book = Book::default();
    for a in accounts {
        book.push(&a.spec.id, &a.terms);
    }
    book
}

/// What a book file will take, estimated from its size before reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookEstimate {
    /// The file's size in bytes.
    pub file_bytes: u64,
    /// Accounts, estimated.
    pub accounts: u64,
    /// Rows (terms), estimated.
    pub terms: u64,
    /// Bytes the compact book and its load take at their peak, estimated.
    pub load_bytes: u64,
}

/// Estimates a book file's accounts, terms and load memory from its size and, for CSV, its
/// first rows (their mean length and how many rows an account takes there).
pub fn estimate_book(path: &Path) -> Result<BookEstimate, InputError> {
    let file_bytes =
        std::fs::metadata(path).map_err(|e| InputError::file(path, format!("cannot read: {e}")))?.len();
    let (rows, accounts, id_bytes) = match Format::of(path)? {
        Format::Csv => {
            let mut head = Vec::with_capacity(SAMPLE_BYTES);
            open(path)?
                .take(SAMPLE_BYTES as u64)
                .read_to_end(&mut head)
                .map_err(|e| InputError::file(path, format!("cannot read: {e}")))?;
            let lines: Vec<&[u8]> = head.split(|&b| b == b'\n').skip(1).filter(|l| !l.is_empty()).collect();
            // The last line may be cut off by the sample; leave it out unless it is the file's.
            let whole = if head.len() < SAMPLE_BYTES { lines.len() } else { lines.len().saturating_sub(1) };
            let lines = &lines[..whole];
            if lines.is_empty() {
                (0, 0, 0)
            } else {
                let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
                let id = |l: &&[u8]| l.split(|&b| b == b',').next().unwrap_or(b"").to_vec();
                let mut ids: Vec<Vec<u8>> = lines.iter().map(id).collect();
                ids.dedup();
                let per_row = bytes as f64 / lines.len() as f64;
                let rows = (file_bytes as f64 / per_row).ceil() as u64;
                let accounts = (rows as f64 * ids.len() as f64 / lines.len() as f64).ceil() as u64;
                let id_len = ids.iter().map(|i| i.len()).sum::<usize>() as f64 / ids.len() as f64;
                (rows, accounts, (accounts as f64 * id_len) as u64)
            }
        }
        // Parquet: the rows its footer counts, one account per row (an over-estimate), and
        // the decoded size of the account column for the ids.
        Format::Parquet => {
            let (rows, id_bytes) = super::columnar::parquet_size(path, "account")?;
            (rows, rows, id_bytes)
        }
        // Other formats: one row per 16 bytes of file, the densest a row can be, and one
        // account per row (an over-estimate).
        _ => (file_bytes / 16, file_bytes / 16, file_bytes / 4),
    };
    // At the load's peak the builder holds its legs and the finished terms side by side, the
    // id arena, 16 bytes of offsets and tiers and the id index (about 10 bytes) an account.
    let load_bytes = rows * 2 * BOOK_BYTES_PER_TERM as u64 + id_bytes + accounts * 26;
    Ok(BookEstimate { file_bytes, accounts, terms: rows, load_bytes })
}

const SAMPLE_BYTES: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::csv_rows::BATCH_ROWS;
    use crate::io::test_venue as table;
    use crate::model::Decimal;

    #[test]
    fn reads_all_three_formats_alike() {
        let t = table();
        let csv = "account,asset,balance\nalice,ETH,10\nalice,USDC,-15000\nbob,USDC,5\n";
        let toml = "[[accounts]]\nid = \"alice\"\nbalances = { ETH = \"10\", USDC = \"-15000\" }\n[[accounts]]\nid = \"bob\"\nbalances = { USDC = 5 }\n";
        let json =
            r#"[{"id":"alice","balances":{"ETH":10,"USDC":"-15000"}},{"id":"bob","balances":{"USDC":5}}]"#;
        let a = parse_accounts(Path::new("a.csv"), csv, Format::Csv, &t).unwrap();
        let b = parse_accounts(Path::new("a.toml"), toml, Format::Toml, &t).unwrap();
        let c = parse_accounts(Path::new("a.json"), json, Format::Json, &t).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(
            a[0].terms,
            vec![Coeff { asset: 0, coeff: 82_500 }, Coeff { asset: 1, coeff: -1_500_000 }]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(24))]
        /// The two stages of the CSV reader report the first problem in file order, whichever
        /// stage finds it and wherever the batches split: a row the book refuses (an unknown
        /// asset, found by the consuming stage) and a row the reader refuses (a bad balance or
        /// a malformed record), anywhere in a file of several batches.
        #[test]
        fn the_first_bad_row_in_file_order_is_reported(
            rows in 1usize..3 * BATCH_ROWS,
            a in 0usize..3 * BATCH_ROWS,
            b in 0usize..3 * BATCH_ROWS,
            reader_problem in proptest::prop_oneof![proptest::strategy::Just("zz"), proptest::strategy::Just("1,extra")],
        ) {
            let t = table();
            let (a, b) = (a % rows, b % rows);
            let mut text = String::from("account,asset,balance\n");
            for i in 0..rows {
                let (asset, balance) = match i {
                    _ if i == b => ("ETH", reader_problem),
                    _ if i == a => ("DOGE", "1"),
                    _ => ("ETH", "1"),
                };
                text.push_str(&format!("acct{i:06},{asset},{balance}\n"));
            }
            let e = parse_book(Path::new("big.csv"), &text, Format::Csv, &t).unwrap_err();
            // Line 1 is the header.
            proptest::prop_assert_eq!(e.line, Some(a.min(b) + 2), "{}", e);
            let want = if a < b { "unknown asset 'DOGE'" } else if reader_problem == "zz" { "'zz' is not a decimal" } else { "malformed row" };
            proptest::prop_assert!(e.to_string().contains(want), "{}", e);
        }
    }

    /// A problem near the start of a file many batches long stops the read there: the reader
    /// thread, batches ahead, is stopped too (the read returns instead of waiting for it).
    #[test]
    fn an_early_problem_in_a_long_file_stops_both_stages() {
        let t = table();
        let mut text = String::from("account,asset,balance\na,DOGE,1\n");
        for i in 0..20 * BATCH_ROWS {
            text.push_str(&format!("acct{i:06},ETH,1\n"));
        }
        let e = parse_book(Path::new("long.csv"), &text, Format::Csv, &t).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    /// Fields that are not UTF-8 are refused with the field and line, a row's problems in the
    /// order account, asset, balance, tier, and a row before them that the book refuses first.
    #[test]
    fn refuses_fields_that_are_not_utf8_in_order() {
        let t = table();
        let dir = tempfile::tempdir().unwrap();
        let head = b"account,asset,balance,tier\na,ETH,1,default\n".to_vec();
        let cases: [(&[u8], &str); 5] = [
            (b"b\xff,ETH,1,default\n", "x.csv:3: malformed row: account is not UTF-8"),
            (b"b,ETH,1,\xffdefault\n", "x.csv:3: malformed row: tier is not UTF-8"),
            (b"b,ETH,zz,\xff\n", "x.csv:3: balance: 'zz' is not a decimal"),
            (b"b,ETH,1\xff,\xff\n", "x.csv:3: malformed row: balance is not UTF-8"),
            (b"b,DOGE,1,default\nc,ETH,1,\xff\n", "x.csv:3: account 'b': unknown asset 'DOGE'"),
        ];
        for (rows, want) in cases {
            let p = dir.path().join("x.csv");
            std::fs::write(&p, [&head[..], rows].concat()).unwrap();
            let e = read_book(&p, &t, &mut |_, _| {}).unwrap_err().to_string();
            assert!(e.contains(want), "got {e}\nwant {want}");
        }
    }

    #[test]
    fn refuses_bad_rows_with_file_and_line() {
        let t = table();
        let p = Path::new("acc.csv");
        let cases = [
            ("account,asset,balance\na,ETH,1\na,DOGE,1\n", "acc.csv:3: account 'a': unknown asset 'DOGE'"),
            ("account,asset,balance\na,ETH,1\nb,ETH,zz\n", "acc.csv:3: balance: 'zz' is not a decimal"),
            (
                "account,asset,balance\na,ETH,1\na,ETH,2\n",
                "acc.csv:3: account 'a' has a supply (positive balance) of 'ETH' already",
            ),
            ("acct,asset,balance\n", "acc.csv:1: header must name"),
            ("account,asset,balance\na,ETH,1,extra\n", "acc.csv:2: malformed row"),
            ("account,asset,balance\na,ETH,1000000\n", "acc.csv:2: account 'a': weighted balance of 'ETH'"),
            (
                "account,asset,balance,tier\na,ETH,1,vip\n",
                "acc.csv:2: account 'a': tier 'vip' has no weights",
            ),
        ];
        for (text, want) in cases {
            let e = parse_accounts(p, text, Format::Csv, &t).unwrap_err().to_string();
            assert!(e.starts_with(want), "got {e}\nwant {want}");
        }
        let dup = r#"[{"id":"a","balances":{}},{"id":"a","balances":{}}]"#;
        let e = parse_accounts(Path::new("a.json"), dup, Format::Json, &t).unwrap_err().to_string();
        assert!(e.contains("account #2 ('a'): duplicate account 'a'"), "{e}");
        let e = parse_accounts(
            Path::new("a.json"),
            "[{\"id\":\"a\",\n\"balances\":{\"ETH\":NaN}}]",
            Format::Json,
            &t,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    /// An empty (or blank) account id is refused in every format, with the file and the line
    /// (CSV) or the account's position (TOML, JSON), for the specs and the book alike.
    #[test]
    fn an_empty_account_id_is_refused_in_every_format() {
        let t = table();
        let cases = [
            (
                "a.csv",
                Format::Csv,
                "account,asset,balance\nx,ETH,1\n\"\",ETH,10\n",
                "a.csv:3: empty account id",
            ),
            ("a.csv", Format::Csv, "account,asset,balance\n  ,ETH,10\n", "a.csv:2: empty account id"),
            (
                "a.json",
                Format::Json,
                r#"[{"id":"x","balances":{"ETH":"1"}},{"id":"","balances":{"ETH":"10","USDC":"-15000"}}]"#,
                "a.json: account #2 (''): empty account id",
            ),
            (
                "a.json",
                Format::Json,
                r#"{"accounts":[{"id":" ","balances":{"ETH":"10"}}]}"#,
                "a.json: account #1 (' '): empty account id",
            ),
            (
                "a.toml",
                Format::Toml,
                "[[accounts]]\nid = \"\"\nbalances = { ETH = \"10\", USDC = \"-15000\" }\n",
                "a.toml: account #1 (''): empty account id",
            ),
        ];
        for (name, format, text, want) in cases {
            let e = parse_accounts(Path::new(name), text, format, &t).unwrap_err().to_string();
            assert_eq!(e, want);
            let e = parse_book(Path::new(name), text, format, &t).unwrap_err().to_string();
            assert_eq!(e, want);
        }
    }

    /// A header that names a column twice is refused at line 1, naming the column: the reader
    /// would otherwise read the first copy and ignore the other.
    #[test]
    fn a_column_named_twice_is_refused() {
        let t = table();
        let cases = [
            (
                "account,asset,balance,balance\na,ETH,10,99\n",
                "column 'balance' is given twice (columns 3 and 4)",
            ),
            (
                "account,account,asset,balance\na,b,ETH,10\n",
                "column 'account' is given twice (columns 1 and 2)",
            ),
            ("account,asset,balance,Tier,tier\na,ETH,10,,\n", "columns 'Tier' and 'tier' (columns 4 and 5)"),
            (
                "Asset,account, asset ,balance\nETH,a,ETH,10\n",
                "columns 'Asset' and 'asset' (columns 1 and 3)",
            ),
        ];
        for (text, want) in cases {
            let e = parse_accounts(Path::new("a.csv"), text, Format::Csv, &t).unwrap_err().to_string();
            assert!(e.starts_with(&format!("a.csv:1: {want}")), "got {e}\nwant {want}");
            let e = parse_book(Path::new("a.csv"), text, Format::Csv, &t).unwrap_err().to_string();
            assert!(e.starts_with(&format!("a.csv:1: {want}")), "got {e}\nwant {want}");
        }
        // Other columns, read by no one, may repeat.
        let text = "account,note,asset,note,balance\na,x,ETH,y,10\n";
        assert_eq!(parse_accounts(Path::new("a.csv"), text, Format::Csv, &t).unwrap().len(), 1);
    }

    #[test]
    fn the_book_holds_what_the_specs_compile_to() {
        let t = table();
        let csv =
            "account,asset,balance,tier\nalice,ETH,10,\nalice,USDC,-15000,default\nbob,USDC,5,default\n";
        let book = parse_book(Path::new("a.csv"), csv, Format::Csv, &t).unwrap();
        let specs = parse_accounts(Path::new("a.csv"), csv, Format::Csv, &t).unwrap();
        assert_eq!(book, book_of(&specs));
        assert_eq!(book.len(), 2);
        assert_eq!(book.id(1), "bob");
        assert_eq!(
            book.terms(0),
            &[Coeff { asset: 0, coeff: 82_500 }, Coeff { asset: 1, coeff: -1_500_000 }]
        );
    }

    #[test]
    fn a_supply_and_a_borrow_of_one_asset_are_two_terms() {
        let t = table();
        let csv = "account,asset,balance\na,ETH,10\na,USDC,-5\na,ETH,-2\n";
        let book = parse_book(Path::new("a.csv"), csv, Format::Csv, &t).unwrap();
        // Each leg takes its own side's weight: 10 * 0.825 and -2 * 1, supply first.
        assert_eq!(
            book.terms(0),
            &[
                Coeff { asset: 0, coeff: 82_500 },
                Coeff { asset: 0, coeff: -20_000 },
                Coeff { asset: 1, coeff: -500 }
            ]
        );
        // A zero row sets no leg.
        let zero =
            parse_book(Path::new("x.csv"), "account,asset,balance\na,ETH,0\na,ETH,2\n", Format::Csv, &t);
        assert_eq!(zero.unwrap().terms(0), &[Coeff { asset: 0, coeff: 16_500 }]);
        let cases = [
            (
                "account,asset,balance\na,ETH,10\na,ETH,-2\na,ETH,3\n",
                "x.csv:4: account 'a' has a supply (positive balance) of 'ETH' already",
            ),
            (
                "account,asset,balance\na,ETH,-1\nb,ETH,1\na,ETH,-2\n",
                "x.csv:4: account 'a' has a borrow (negative balance) of 'ETH' already",
            ),
            // A positive balance that rounds away still takes its side.
            ("account,asset,balance\na,ETH,0.00001\na,ETH,2\n", "x.csv:3: account 'a' has a supply"),
        ];
        for (text, want) in cases {
            let e = parse_book(Path::new("x.csv"), text, Format::Csv, &t).unwrap_err().to_string();
            assert!(e.starts_with(want), "got {e}\nwant {want}");
        }
    }

    #[test]
    fn rows_of_one_account_may_be_apart_and_ids_in_any_order() {
        let t = table();
        let csv = "account,asset,balance\nz,ETH,1\nb,ETH,2\nz,USDC,-1\na,USDC,7\nb,USDC,-3\n";
        let book = parse_book(Path::new("a.csv"), csv, Format::Csv, &t).unwrap();
        let ids: Vec<&str> = book.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["z", "b", "a"]);
        assert_eq!(book.terms(0), &[Coeff { asset: 0, coeff: 8_250 }, Coeff { asset: 1, coeff: -100 }]);
        assert_eq!(book.terms(1), &[Coeff { asset: 0, coeff: 16_500 }, Coeff { asset: 1, coeff: -300 }]);
        let text = "account,asset,balance,tier\na,ETH,1,\nb,ETH,1,\na,USDC,1,isolated\n";
        let e = parse_book(Path::new("a.csv"), text, Format::Csv, &isolated(&t)).unwrap_err().to_string();
        assert!(e.starts_with("a.csv:4: account 'a' is in tier 'default' above, 'isolated' here"), "{e}");
    }

    #[test]
    fn the_book_refuses_what_the_specs_refuse_at_the_same_line() {
        let t = table();
        let p = Path::new("acc.csv");
        for text in [
            "account,asset,balance\na,ETH,1\na,DOGE,1\n",
            "account,asset,balance\na,ETH,1\nb,ETH,zz\n",
            "account,asset,balance\na,ETH,1\na,ETH,2\n",
            "acct,asset,balance\n",
            "account,asset,balance\na,ETH,1,extra\n",
            "account,asset,balance\na,ETH,1000000\n",
            "account,asset,balance,tier\na,ETH,1,vip\n",
            "account,asset,balance\n,ETH,1\n",
            "account,asset,balance\na,ETH,0.00000000000000000001\n",
        ] {
            let a = parse_accounts(p, text, Format::Csv, &t).unwrap_err();
            let b = parse_book(p, text, Format::Csv, &t).unwrap_err();
            assert_eq!((&a.file, a.line), (&b.file, b.line), "{text}");
            assert!(b.problem.starts_with(&a.problem) || a.problem.starts_with(&b.problem), "{a} / {b}");
        }
    }

    #[test]
    fn the_estimate_is_near_the_truth() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let mut text = String::from("account,asset,balance\n");
        for i in 0..50_000 {
            text.push_str(&format!("acct{i},ETH,1.5\nacct{i},USDC,-{}\n", i % 1000 + 1));
        }
        std::fs::write(&path, &text).unwrap();
        let est = estimate_book(&path).unwrap();
        // The sample's ids are shorter than the file's average: within 10 %.
        assert!((90_000..=110_000).contains(&est.terms), "{est:?}");
        assert!((45_000..=55_000).contains(&est.accounts), "{est:?}");
        let book = read_book(&path, &table(), &mut |_, _| {}).unwrap();
        assert_eq!((book.len(), book.term_count()), (50_000, 100_000));
        assert!(est.load_bytes as usize >= book.heap_bytes(), "{est:?} {}", book.heap_bytes());
    }

    proptest::proptest! {
        /// Any text: a book or an error naming the file, never a panic.
        #[test]
        fn the_book_reader_never_panics(rows in proptest::collection::vec(
            ("[a-c\"]{0,3}", "(ETH|USDC|DOGE|)", "-?[0-9]{0,12}(\\.[0-9]{0,20})?", "(default|vip|)"), 0..20)
        ) {
            let mut text = String::from("account,asset,balance,tier\n");
            for (a, s, b, t) in rows {
                text.push_str(&format!("{a},{s},{b},{t}\n"));
            }
            if let Err(e) = parse_book(Path::new("f.csv"), &text, Format::Csv, &table()) {
                proptest::prop_assert_eq!(e.file, std::path::PathBuf::from("f.csv"));
            }
        }
    }

    proptest::proptest! {
        /// Random books in random row order: the compact book equals the compiled specs.
        #[test]
        fn csv_book_agrees_with_compiled_specs(
            accounts in proptest::collection::vec(
                (0u32..40, proptest::option::of(-5_000_000i64..5_000_000), proptest::option::of(-9_000_000i64..9_000_000), proptest::bool::ANY),
                1..30,
            ),
            seed in 0u64..1000,
        ) {
            use rand::{SeedableRng, seq::SliceRandom};
            let t = table();
            let mut rows = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (id, eth, usdc, iso) in accounts {
                if !seen.insert(id) {
                    continue;
                }
                let tier = if iso { "isolated" } else { "default" };
                if let Some(e) = eth {
                    rows.push(format!("u{id},ETH,{},{tier}", Decimal::new(e as i128, 4)));
                }
                if let Some(u) = usdc {
                    rows.push(format!("u{id},USDC,{},{tier}", Decimal::new(u as i128, 2)));
                }
            }
            rows.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
            let text = format!("account,asset,balance,tier\n{}\n", rows.join("\n"));
            let p = Path::new("r.csv");
            let want = parse_accounts(p, &text, Format::Csv, &isolated(&t)).map(|l| book_of(&l));
            let got = parse_book(p, &text, Format::Csv, &isolated(&t));
            proptest::prop_assert_eq!(want, got);
        }
    }

    /// The test venue with an `isolated` tier too.
    fn isolated(t: &AssetTable) -> AssetTable {
        let mut assets = t.assets().to_vec();
        for a in &mut assets {
            let w = a.tiers["default"];
            a.tiers.insert(
                "isolated".into(),
                crate::model::TierWeights {
                    asset_weight: w.asset_weight.checked_sub("0.1".parse().unwrap()).unwrap(),
                    liability_weight: "1.1".parse().unwrap(),
                },
            );
        }
        AssetTable::new(t.venue.clone(), assets).unwrap()
    }

    #[test]
    fn reads_two_legs_of_one_asset_in_every_format() {
        let t = table();
        let csv = "account,asset,balance\nalice,ETH,10\nalice,ETH,-4\nalice,USDC,-100\n";
        let toml = "[[accounts]]\nid = \"alice\"\nbalances = { ETH = { supply = \"10\", borrow = \"-4\" }, USDC = \"-100\" }\n";
        let json =
            r#"{"accounts":[{"id":"alice","balances":{"ETH":{"supply":10,"borrow":"-4"},"USDC":-100}}]}"#;
        let a = parse_accounts(Path::new("a.csv"), csv, Format::Csv, &t).unwrap();
        let b = parse_accounts(Path::new("a.toml"), toml, Format::Toml, &t).unwrap();
        let c = parse_accounts(Path::new("a.json"), json, Format::Json, &t).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        // ETH 10 * 0.825 and 4 * 1, each its own term, positive first; never netted to 6 ETH.
        assert_eq!(
            a[0].terms,
            vec![
                Coeff { asset: 0, coeff: 82_500 },
                Coeff { asset: 0, coeff: -40_000 },
                Coeff { asset: 1, coeff: -10_000 }
            ]
        );
    }

    #[test]
    fn refuses_an_asset_twice_in_a_json_account_naming_file_line_account_and_asset() {
        let t = table();
        let p = Path::new("book.json");
        let text = "[{\"id\":\"a1\",\"balances\":{\"ETH\":\"1\"}},\n {\"id\":\"a2\",\"balances\":{\"ETH\":\"10\",\"ETH\":\"-5\"}}]";
        let e = parse_accounts(p, text, Format::Json, &t).unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
        let e = e.to_string();
        assert!(e.starts_with("book.json:2: account 'a2' lists asset 'ETH' twice"), "{e}");
        let doc = format!("{{\"accounts\": {text}}}");
        let e = parse_accounts(p, &doc, Format::Json, &t).unwrap_err().to_string();
        assert!(e.contains("account 'a2' lists asset 'ETH' twice"), "{e}");
        let e = parse_accounts(
            Path::new("b.toml"),
            "[[accounts]]\nid = \"a\"\nbalances = { ETH = \"1\", ETH = \"-1\" }\n",
            Format::Toml,
            &t,
        )
        .unwrap_err();
        assert_eq!(e.line, Some(3), "{e}");
        assert!(e.to_string().contains("duplicate key"), "{e}");
    }
}
