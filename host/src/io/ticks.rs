//! Price ticks: CSV, JSONL, and 10-minute OHLC bar files.
//!
//! CSV has a header naming `timestamp`, `asset`, `price`; JSONL has one object a line with
//! `ts` (or `timestamp`), `asset`, `price`. Timestamps are integer nanoseconds since the epoch
//! or RFC 3339 text (any offset, converted to UTC); prices are decimal numbers or strings
//! holding one, parsed exactly. Ticks must not go back in time. A price of 0 is refused unless
//! the venue sets `allow_zero_price` on the asset; a key given twice on a JSONL line is refused.
//!
//! Bar files (a JSON array of bars with `time_period_start`, `time_period_end`, `price_open`,
//! `price_high`, `price_low`, `price_close`) become four ticks a bar, since a bar says where the
//! price went but not when: open at the bar's start, then the two extremes at one and two thirds
//! of the bar, then the close one nanosecond before the bar's end. The extreme nearer the open
//! in the direction the bar closed against comes first: a bar that closed up is taken to have
//! dipped first (O, L, H, C), one that closed down to have spiked first (O, H, L, C). That keeps
//! every bar's low in the path, which is what a crash replay needs.

use std::io::BufRead;
use std::path::Path;

use liqscan_hdl::abi::PriceEntry;
use serde::Deserialize;

use super::time::{format_timestamp, parse_timestamp};
use super::{Format, InputError, read_text};
use crate::model::{AssetTable, Decimal};

/// One oracle price update, resolved and quantised against the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Price-table index of the asset.
    pub asset: u16,
    /// The price as given, in quote units per whole asset.
    pub price: Decimal,
    /// The quantised price-table entry.
    pub entry: PriceEntry,
}

pub(crate) fn make_tick(
    table: &AssetTable,
    ts_ns: i64,
    symbol: &str,
    price: Decimal,
) -> Result<Tick, String> {
    let asset = table.index_of(symbol).map_err(|e| e.to_string())?;
    let entry = table.quote(asset, price).map_err(|e| e.to_string())?;
    // By the quoted price, as the live feed refuses it: a positive price below one price
    // quantum quotes the collateral side at 0 just as a 0 does.
    if entry.spot.asset == 0 && !table.assets()[asset as usize].allow_zero_price {
        if price.is_zero() {
            return Err(format!(
                "asset '{symbol}' price is 0: refused, since it would breach every borrower of it; if \
                 '{symbol}' can really be worth nothing, set allow_zero_price = true on it in the venue file"
            ));
        }
        let e = table.price_exp(asset);
        let one = if e <= 0 { Decimal::new(1, (-e) as u32) } else { Decimal::new(10i128.pow(e as u32), 0) };
        return Err(format!(
            "asset '{symbol}' price {price} is below the venue's price resolution for it ({one}): it would \
             count as 0 and breach every borrower of it; make its quantum_exp larger or value_exp \
             smaller, or set allow_zero_price = true on it in the venue file"
        ));
    }
    Ok(Tick { ts_ns, asset, price, entry })
}

/// The problem of a tick that goes back in time: both times as text and in nanoseconds (the text
/// has milliseconds only).
pub(crate) fn went_back(ts_ns: i64, prev_ns: i64) -> String {
    format!(
        "timestamp {} ({ts_ns} ns) is before the previous tick's {} ({prev_ns} ns)",
        format_timestamp(ts_ns),
        format_timestamp(prev_ns)
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTick {
    #[serde(alias = "timestamp")]
    ts: serde_json::Value,
    asset: String,
    price: Decimal,
}

fn ts_of(v: &serde_json::Value) -> Result<i64, String> {
    match v {
        serde_json::Value::String(s) => parse_timestamp(s),
        serde_json::Value::Number(n) => parse_timestamp(&n.to_string()),
        other => Err(format!("timestamp must be a number or a string, not {other}")),
    }
}

/// Parses tick text (CSV or JSONL); `path` names it in errors.
pub fn parse_ticks(
    path: &Path,
    text: &str,
    format: Format,
    table: &AssetTable,
) -> Result<Vec<Tick>, InputError> {
    parse_ticks_from(path, text.as_bytes(), format, table)
}

/// Reads ticks (CSV or JSONL) from a stream; `path` names it in errors.
fn parse_ticks_from(
    path: &Path,
    input: impl BufRead,
    format: Format,
    table: &AssetTable,
) -> Result<Vec<Tick>, InputError> {
    let mut out: Vec<Tick> = Vec::new();
    let mut push = |line: usize, t: Result<Tick, String>| -> Result<(), InputError> {
        let t = t.map_err(|e| InputError::at(path, line, e))?;
        if let Some(prev) = out.last()
            && t.ts_ns < prev.ts_ns
        {
            return Err(InputError::at(path, line, went_back(t.ts_ns, prev.ts_ns)));
        }
        out.push(t);
        Ok(())
    };
    match format {
        Format::Csv => {
            // Flexible: the field count is checked below, against the header, in the accounts'
            // words.
            let mut rdr = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_reader(input);
            let h = rdr.headers().map_err(|e| InputError::at(path, 1, e))?.clone();
            let col = |n: &[&str]| super::header_column(h.iter(), n).map_err(|e| InputError::at(path, 1, e));
            let (Some(its), Some(ia), Some(ip)) =
                (col(&["timestamp", "ts"])?, col(&["asset"])?, col(&["price"])?)
            else {
                return Err(InputError::at(path, 1, "header must name the columns timestamp, asset, price"));
            };
            for rec in rdr.records() {
                let rec = rec.map_err(|e| {
                    InputError::at(
                        path,
                        e.position().map(|p| p.line() as usize).unwrap_or(0),
                        format!("malformed row: {e}"),
                    )
                })?;
                let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
                if rec.len() != h.len() {
                    let problem =
                        format!("malformed row: {} fields where the header has {}", rec.len(), h.len());
                    return Err(InputError::at(path, line, problem));
                }
                let f = |i| rec.get(i).unwrap_or("");
                let t = parse_timestamp(f(its)).and_then(|ts| {
                    let price: Decimal = f(ip).parse().map_err(|e| format!("price: {e}"))?;
                    make_tick(table, ts, f(ia), price)
                });
                push(line, t)?;
            }
        }
        Format::Jsonl => {
            for (i, raw) in input.lines().enumerate() {
                let raw = raw.map_err(|e| InputError::at(path, i + 1, format!("cannot read: {e}")))?;
                if raw.trim().is_empty() {
                    continue;
                }
                let t = serde_json::from_str::<JsonTick>(&raw)
                    .map_err(|e| format!("malformed tick: {e}"))
                    .and_then(|j| make_tick(table, ts_of(&j.ts)?, &j.asset, j.price));
                push(i + 1, t)?;
            }
        }
        _ => return Err(InputError::file(path, "ticks must be .csv or .jsonl (bar files: use read_bars)")),
    }
    Ok(out)
}

/// Reads a tick file (.csv or .jsonl, streamed; or Arrow IPC or Parquet, see
/// [`columnar`](super::columnar)).
pub fn read_ticks(path: &Path, table: &AssetTable) -> Result<Vec<Tick>, InputError> {
    match Format::of(path)? {
        Format::Arrow | Format::Parquet => super::columnar::read_ticks(path, table),
        format => parse_ticks_from(path, super::accounts::open(path)?, format, table),
    }
}

/// One OHLC bar of the bar files.
#[derive(Clone, Debug, Deserialize)]
pub struct Bar {
    /// Start of the bar (RFC 3339).
    pub time_period_start: String,
    /// End of the bar (RFC 3339).
    pub time_period_end: String,
    /// First trade price.
    pub price_open: Decimal,
    /// Highest price.
    pub price_high: Decimal,
    /// Lowest price.
    pub price_low: Decimal,
    /// Last trade price.
    pub price_close: Decimal,
}

/// Parses bar-file text into ticks for `symbol`; `path` names it in errors.
pub fn parse_bars(
    path: &Path,
    text: &str,
    table: &AssetTable,
    symbol: &str,
) -> Result<Vec<Tick>, InputError> {
    let bars: Vec<Bar> = serde_json::from_str(text)
        .map_err(|e| InputError::at(path, super::json_line(&e), format!("malformed bar file: {e}")))?;
    if bars.is_empty() {
        return Err(InputError::file(path, "no bars"));
    }
    let mut out = Vec::with_capacity(bars.len() * 4);
    let mut prev_end = i64::MIN;
    for (n, b) in bars.iter().enumerate() {
        let err =
            |p: String| InputError::file(path, format!("bar #{} ({}): {p}", n + 1, b.time_period_start));
        let start = parse_timestamp(&b.time_period_start).map_err(err)?;
        let end = parse_timestamp(&b.time_period_end).map_err(err)?;
        // In i128: bars at the ends of the i64 range must not overflow.
        let len = end as i128 - start as i128;
        if len <= 3 || start < prev_end {
            return Err(err("bar does not follow the previous one or has no length".into()));
        }
        prev_end = end;
        let (o, h, l, c) = (b.price_open, b.price_high, b.price_low, b.price_close);
        if l > o.min(c) || h < o.max(c) || l.is_negative() {
            return Err(err(format!("inconsistent bar: open {o} high {h} low {l} close {c}")));
        }
        let (x1, x2) = if c >= o { (l, h) } else { (h, l) };
        // Between start and end, so each fits an i64.
        let at = |k: i128| (start as i128 + k * len / 3) as i64;
        for (ts, p) in [(start, o), (at(1), x1), (at(2), x2), (end - 1, c)] {
            out.push(make_tick(table, ts, symbol, p).map_err(err)?);
        }
    }
    Ok(out)
}

/// Reads a bar file into ticks for `symbol`.
pub fn read_bars(path: &Path, table: &AssetTable, symbol: &str) -> Result<Vec<Tick>, InputError> {
    let text = read_text(path)?;
    parse_bars(path, &text, table, symbol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::test_venue as table;

    #[test]
    fn csv_and_jsonl_agree() {
        let t = table();
        let csv = "timestamp,asset,price\n2020-03-12T00:00:00Z,ETH,195.21\n1584000000000000001,USDC,1\n";
        let jsonl = "{\"ts\":\"2020-03-12T00:00:00Z\",\"asset\":\"ETH\",\"price\":195.21}\n\n{\"ts\":1584000000000000001,\"asset\":\"USDC\",\"price\":\"1\"}\n";
        let a = parse_ticks(Path::new("t.csv"), csv, Format::Csv, &t).unwrap();
        let b = parse_ticks(Path::new("t.jsonl"), jsonl, Format::Jsonl, &t).unwrap();
        assert_eq!(a, b);
        assert_eq!(a[0].entry.spot.asset, 1_952_100);
        assert_eq!(a[0].entry.stressed.asset, 1_756_890); // 195.21 * 0.9
    }

    /// A CSV header naming a column twice, or the time as both `timestamp` and `ts`, is
    /// refused at line 1: the first copy would be read and the other ignored.
    #[test]
    fn a_column_named_twice_is_refused() {
        let t = table();
        let cases = [
            ("timestamp,asset,price,ts\n1,ETH,2020,2\n", "columns 'timestamp' and 'ts' (columns 1 and 4)"),
            ("ts,asset,price,price\n1,ETH,2020,2030\n", "column 'price' is given twice (columns 3 and 4)"),
            ("ts,ASSET,price,asset\n1,ETH,2020,USDC\n", "columns 'ASSET' and 'asset' (columns 2 and 4)"),
        ];
        for (text, want) in cases {
            let e = parse_ticks(Path::new("t.csv"), text, Format::Csv, &t).unwrap_err().to_string();
            assert!(e.starts_with(&format!("t.csv:1: {want}")), "got {e}\nwant {want}");
        }
    }

    #[test]
    fn files_stream_as_text_parses() {
        let t = table();
        let dir = tempfile::tempdir().unwrap();
        let csv = "timestamp,asset,price\n2020-03-12T00:00:00Z,ETH,195.21\n1584000000000000001,USDC,1\n";
        let jsonl =
            "{\"ts\":1,\"asset\":\"ETH\",\"price\":2}\n\n{\"ts\":2,\"asset\":\"ETH\",\"price\":\"x\"}\n";
        let (c, j) = (dir.path().join("t.csv"), dir.path().join("t.jsonl"));
        std::fs::write(&c, csv).unwrap();
        std::fs::write(&j, jsonl).unwrap();
        assert_eq!(read_ticks(&c, &t).unwrap(), parse_ticks(&c, csv, Format::Csv, &t).unwrap());
        let e = read_ticks(&j, &t).unwrap_err();
        assert_eq!(e, parse_ticks(&j, jsonl, Format::Jsonl, &t).unwrap_err());
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn refuses_bad_ticks() {
        let t = table();
        let p = Path::new("t.csv");
        let cases = [
            ("timestamp,asset,price\n1,DOGE,1\n", "t.csv:2: unknown asset 'DOGE'"),
            ("timestamp,asset,price\n1,ETH,-1\n", "t.csv:2: asset 'ETH' price -1 is negative"),
            ("timestamp,asset,price\n1,ETH,NaN\n", "t.csv:2: price: 'NaN' is not a decimal"),
            ("timestamp,asset,price\n1,ETH,inf\n", "t.csv:2: price: 'inf' is not a decimal"),
            (
                "timestamp,asset,price\n5,ETH,1\n4,ETH,1\n",
                "t.csv:3: timestamp 1970-01-01T00:00:00.000Z (4 ns) is before the previous tick's \
                 1970-01-01T00:00:00.000Z (5 ns)",
            ),
            ("timestamp,asset,price\n1,ETH\n", "t.csv:2: malformed row: 2 fields where the header has 3"),
            ("timestamp,asset,price\n1,ETH,1,2\n", "t.csv:2: malformed row: 4 fields where the header has 3"),
            (
                "timestamp,asset,price\n1,ETH,0.00009\n",
                "t.csv:2: asset 'ETH' price 0.00009 is below the venue's price resolution for it (0.0001)",
            ),
            ("timestamp,asset,price\nyesterday,ETH,1\n", "t.csv:2: timestamp 'yesterday'"),
            ("timestamp,asset,price\n1,ETH,1e9\n", "t.csv:2: asset 'ETH' price 1000000000 is"),
            ("timestamp,asset,price\n1,ETH,0\n", "t.csv:2: asset 'ETH' price is 0: refused"),
            ("timestamp,asset,price\n1,ETH,0.000\n", "t.csv:2: asset 'ETH' price is 0: refused"),
            (
                "timestamp,asset,price\n2020-02-31T00:00:00Z,ETH,1\n",
                "t.csv:2: timestamp '2020-02-31T00:00:00Z'",
            ),
            (
                "timestamp,asset,price\n9999-12-31T23:59:59Z,ETH,1\n",
                "t.csv:2: timestamp '9999-12-31T23:59:59Z' is out of range",
            ),
            (
                "timestamp,asset,price\n1,ETH,0e-2147483648\n",
                "t.csv:2: price: '0e-2147483648': exponent out of range",
            ),
        ];
        for (text, want) in cases {
            let e = parse_ticks(p, text, Format::Csv, &t).unwrap_err().to_string();
            assert!(e.starts_with(want), "got {e}\nwant {want}");
        }
        let e = parse_ticks(
            Path::new("t.jsonl"),
            "{\"ts\":1,\"asset\":\"ETH\",\"price\":1}\n{oops\n",
            Format::Jsonl,
            &t,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("t.jsonl:2: malformed tick"), "{e}");
        // A repeated key on a line: the derived struct refuses it rather than keep the last.
        let e = parse_ticks(
            Path::new("t.jsonl"),
            "{\"ts\":1,\"asset\":\"ETH\",\"price\":1}\n{\"ts\":2,\"asset\":\"ETH\",\"price\":100,\"price\":0.5}\n",
            Format::Jsonl,
            &t,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("t.jsonl:2: malformed tick") && e.contains("duplicate field `price`"), "{e}");
        let e = parse_ticks(
            Path::new("t.jsonl"),
            "{\"ts\":1,\"timestamp\":2,\"asset\":\"ETH\",\"price\":1}\n",
            Format::Jsonl,
            &t,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("duplicate field `ts`"), "{e}");
    }

    #[test]
    fn offsets_convert_and_zero_prices_need_the_venue() {
        let t = table();
        let p = Path::new("t.csv");
        let a = parse_ticks(p, "timestamp,asset,price\n2020-03-12T01:00:00+01:00,ETH,1\n", Format::Csv, &t)
            .unwrap();
        let b =
            parse_ticks(p, "timestamp,asset,price\n2020-03-12T00:00:00Z,ETH,1\n", Format::Csv, &t).unwrap();
        assert_eq!(a[0].ts_ns, b[0].ts_ns);
        let mut assets = t.assets().to_vec();
        assets[0].allow_zero_price = true;
        let zero_ok = AssetTable::new(t.venue.clone(), assets).unwrap();
        let z = parse_ticks(p, "timestamp,asset,price\n1,ETH,0\n", Format::Csv, &zero_ok).unwrap();
        assert!(z[0].price.is_zero() && z[0].entry.spot.asset == 0);
        let e = parse_ticks(p, "timestamp,asset,price\n1,USDC,0\n", Format::Csv, &zero_ok).unwrap_err();
        assert!(e.to_string().contains("allow_zero_price"), "{e}");
        // A bar whose low is 0 is refused the same way.
        let bar = r#"[{"time_period_start":"2020-03-12T00:00:00Z","time_period_end":"2020-03-12T00:10:00Z","price_open":1,"price_high":1,"price_low":0,"price_close":1}]"#;
        let e = parse_bars(Path::new("b.json"), bar, &t, "ETH").unwrap_err();
        assert!(e.to_string().contains("price is 0"), "{e}");
        // Bars at the ends of the supported range: no overflow.
        let edge = r#"[{"time_period_start":"1677-09-21T00:12:43.145224192Z","time_period_end":"2262-04-11T23:47:16.854775807Z","price_open":1,"price_high":1,"price_low":1,"price_close":1}]"#;
        let ticks = parse_bars(Path::new("b.json"), edge, &t, "ETH").unwrap();
        assert!(ticks.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns) && ticks[3].ts_ns == i64::MAX - 1);
        // A bar field given twice is refused, not the last kept.
        let twice = bar.replace("\"price_low\":0", "\"price_low\":0.5,\n\"price_low\":1");
        let e = parse_bars(Path::new("b.json"), &twice, &t, "ETH").unwrap_err();
        assert!(
            e.to_string().starts_with("b.json:2: malformed bar file: duplicate field `price_low`"),
            "{e}"
        );
    }

    #[test]
    fn bars_keep_the_low() {
        let t = table();
        let text = r#"[{"time_period_start":"2020-03-12T00:00:00Z","time_period_end":"2020-03-12T00:10:00Z","price_open":195,"price_high":196,"price_low":101.01,"price_close":107.5}]"#;
        let ticks = parse_bars(Path::new("b.json"), text, &t, "ETH").unwrap();
        let prices: Vec<String> = ticks.iter().map(|t| t.price.to_string()).collect();
        assert_eq!(prices, ["195", "196", "101.01", "107.5"]);
        assert!(ticks.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns));
        let bad = text.replace("101.01", "200");
        assert!(
            parse_bars(Path::new("b.json"), &bad, &t, "ETH")
                .unwrap_err()
                .to_string()
                .contains("inconsistent bar")
        );
    }

    #[test]
    fn reads_the_real_black_thursday_bars() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/eth-usd-10m/2020-03-12.json");
        let ticks = read_bars(&path, &table(), "ETH").unwrap();
        assert_eq!(ticks.len(), 144 * 4);
        let low = ticks.iter().map(|t| t.price).min().unwrap();
        assert_eq!(low, "101.01".parse().unwrap());
        assert_eq!(ticks[0].price, "195.21".parse().unwrap());
    }
}
