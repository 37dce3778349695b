//! Replays of recorded prices: 10-minute bars and tick files.
//!
//! **Bars** (a JSON array of objects with `price_open`, `price_high`, `price_low`,
//! `price_close`, as in `../shared/data/eth-usd-10m/`): bar `k` covers `[600k, 600(k+1))`
//! seconds from the start. Inside a bar the path visits four anchors, joined linearly in log
//! price: the open at the bar's start, the first extreme a third of the way in, the second
//! extreme at two thirds, the close at the bar's end. A bar that closes at or above its open
//! visits its low first (down, then up); one that closes below its open visits its high first.
//! So the path touches every bar's high and low, keeps its open and close, and its moves inside
//! a bar are as gentle as the bar allows. The next bar's open is not an anchor: the gap between
//! one close and the next open (cents on these days) is absorbed by the line to the next
//! extreme. After the last bar the close holds.
//!
//! **Ticks**: CSV with a header holding `t` (seconds from the start) and `price`, or JSON lines
//! `{"t": .., "price": ..}`, in time order. Between ticks the path is linear in log price; before
//! the first tick it holds the first price, after the last the last.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One bar.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Bar {
    /// Open.
    pub price_open: f64,
    /// High.
    pub price_high: f64,
    /// Low.
    pub price_low: f64,
    /// Close.
    pub price_close: f64,
}

/// Seconds per bar.
pub const BAR_SECS: f64 = 600.0;

/// Why a replay file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error(
        "cannot read price file {path}: {source} (paths in a scenario are relative to the scenario file's directory, or the current directory)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The bars are not a JSON array of bars.
    #[error("{path}: not a JSON array of bars with price_open/high/low/close: {source}")]
    Bars {
        /// The file.
        path: PathBuf,
        /// The parse error (with line and column).
        source: serde_json::Error,
    },
    /// A tick line or field is wrong.
    #[error("{path}:{line}: {what}")]
    Tick {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// A bar or tick that makes no sense.
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

fn read(path: &Path) -> Result<String, ReplayError> {
    std::fs::read_to_string(path).map_err(|source| ReplayError::Read { path: path.to_path_buf(), source })
}

/// Reads a JSON file of bars.
pub fn read_bars(path: &Path) -> Result<Vec<Bar>, ReplayError> {
    let text = read(path)?;
    let bars: Vec<Bar> = serde_json::from_str(&text)
        .map_err(|source| ReplayError::Bars { path: path.to_path_buf(), source })?;
    if bars.is_empty() {
        return Err(ReplayError::Invalid { path: path.to_path_buf(), what: "no bars".into() });
    }
    for (i, b) in bars.iter().enumerate() {
        let ok = b.price_low > 0.0
            && b.price_low <= b.price_open.min(b.price_close)
            && b.price_high >= b.price_open.max(b.price_close);
        if !ok {
            return Err(ReplayError::Invalid {
                path: path.to_path_buf(),
                what: format!("bar {i}: needs 0 < low <= open, close <= high, got {b:?}"),
            });
        }
    }
    Ok(bars)
}

/// The anchors (seconds, price) of a run of bars.
pub fn bar_anchors(bars: &[Bar]) -> Vec<(f64, f64)> {
    let mut a = Vec::with_capacity(bars.len() * 3 + 1);
    for (k, b) in bars.iter().enumerate() {
        let t0 = k as f64 * BAR_SECS;
        let (first, second) = if b.price_close >= b.price_open {
            (b.price_low, b.price_high)
        } else {
            (b.price_high, b.price_low)
        };
        if k == 0 {
            a.push((t0, b.price_open));
        }
        a.push((t0 + BAR_SECS / 3.0, first));
        a.push((t0 + 2.0 * BAR_SECS / 3.0, second));
        a.push((t0 + BAR_SECS, b.price_close));
    }
    a
}

/// Samples anchors (time order) linearly in log price at `k * dt`, holding outside.
pub fn sample(anchors: &[(f64, f64)], steps: usize, dt: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(steps + 1);
    let mut j = 0;
    for k in 0..=steps {
        let t = k as f64 * dt;
        while j + 1 < anchors.len() && anchors[j + 1].0 <= t {
            j += 1;
        }
        let (t0, p0) = anchors[j];
        let p = if t <= t0 || j + 1 == anchors.len() {
            p0
        } else {
            let (t1, p1) = anchors[j + 1];
            let f = (t - t0) / (t1 - t0);
            (p0.ln() + f * (p1.ln() - p0.ln())).exp()
        };
        out.push(p);
    }
    out
}

/// The path of a run of bars.
pub fn bars_path(bars: &[Bar], steps: usize, dt: f64) -> Vec<f64> {
    sample(&bar_anchors(bars), steps, dt)
}

#[derive(Deserialize)]
struct Tick {
    t: f64,
    price: f64,
}

/// Reads a tick file: `.jsonl`/`.json` as JSON lines, anything else as CSV with a header.
pub fn read_ticks(path: &Path) -> Result<Vec<(f64, f64)>, ReplayError> {
    let text = read(path)?;
    let err = |line: usize, what: String| ReplayError::Tick { path: path.to_path_buf(), line, what };
    let mut ticks = Vec::new();
    let jsonl = matches!(path.extension().and_then(|e| e.to_str()), Some("jsonl" | "json"));
    if jsonl {
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            let t: Tick = serde_json::from_str(l)
                .map_err(|e| err(i + 1, format!("expected {{\"t\":..,\"price\":..}}: {e}")))?;
            ticks.push((i + 1, t.t, t.price));
        }
    } else {
        read_csv_ticks(&text, &err, &mut ticks)?;
    }
    if ticks.is_empty() {
        return Err(ReplayError::Invalid { path: path.to_path_buf(), what: "no ticks".into() });
    }
    let mut last = f64::NEG_INFINITY;
    for &(line, t, p) in &ticks {
        if p.is_nan() || p <= 0.0 || !t.is_finite() {
            return Err(err(line, format!("price must be positive and t finite, got t={t} price={p}")));
        }
        if t < last {
            return Err(err(
                line,
                format!("t={t} is before the previous tick's {last}; ticks must be in time order"),
            ));
        }
        last = t;
    }
    Ok(ticks.into_iter().map(|(_, t, p)| (t, p)).collect())
}

/// Reads CSV ticks (a header naming `t` and `price`, or `timestamp` in milliseconds and
/// `USD_price`; any order, other columns ignored; quoted fields and blank lines allowed) into
/// `(line, t, price)`, `t` in seconds.
fn read_csv_ticks(
    text: &str,
    err: &dyn Fn(usize, String) -> ReplayError,
    ticks: &mut Vec<(usize, f64, f64)>,
) -> Result<(), ReplayError> {
    let line_of = |e: &csv::Error| e.position().map_or(1, |p| p.line() as usize);
    let mut r = csv::ReaderBuilder::new().trim(csv::Trim::All).flexible(true).from_reader(text.as_bytes());
    let header = r.headers().map_err(|e| err(line_of(&e), format!("bad CSV header: {e}")))?;
    if header.is_empty() {
        return Err(err(1, "empty file; expected a header with t,price".into()));
    }
    let col = |name: &str| {
        header.iter().position(|c| c == name).ok_or_else(|| err(1, format!("header has no column '{name}'")))
    };
    // `t,price`, or the hourly files' `timestamp` (Unix milliseconds) and `USD_price`.
    let hourly = header.iter().any(|c| c == "timestamp") && header.iter().any(|c| c == "USD_price");
    let (tn, pn) = if hourly { ("timestamp", "USD_price") } else { ("t", "price") };
    let (ti, pi) = (col(tn)?, col(pn)?);
    let scale = if hourly { 1e-3 } else { 1.0 };
    for rec in r.records() {
        let rec = rec.map_err(|e| err(line_of(&e), format!("bad CSV: {e}")))?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let num = |j: usize, name: &str| -> Result<f64, ReplayError> {
            rec.get(j)
                .ok_or_else(|| err(line, format!("missing field '{name}'")))?
                .parse::<f64>()
                .map_err(|e| err(line, format!("field '{name}': {e}")))
        };
        ticks.push((line, num(ti, tn)? * scale, num(pi, pn)?));
    }
    Ok(())
}

/// The path of a tick file.
pub fn ticks_path(ticks: &[(f64, f64)], steps: usize, dt: f64) -> Vec<f64> {
    sample(ticks, steps, dt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(o: f64, h: f64, l: f64, c: f64) -> Bar {
        Bar { price_open: o, price_high: h, price_low: l, price_close: c }
    }

    #[test]
    fn bars_touch_open_extremes_close_in_documented_order() {
        let bars = vec![bar(100.0, 110.0, 90.0, 95.0), bar(95.0, 99.0, 80.0, 98.0)];
        let p = bars_path(&bars, 1300, 1.0);
        assert_eq!(p[0], 100.0);
        assert!((p[200] - 110.0).abs() < 1e-9, "down bar: high first");
        assert!((p[400] - 90.0).abs() < 1e-9);
        assert!((p[600] - 95.0).abs() < 1e-9);
        assert!((p[800] - 80.0).abs() < 1e-9, "up bar: low first");
        assert!((p[1000] - 99.0).abs() < 1e-9);
        assert!((p[1200] - 98.0).abs() < 1e-9);
        assert_eq!(p[1300], 98.0);
        let max = p.iter().cloned().fold(0.0, f64::max);
        let min = p.iter().cloned().fold(f64::MAX, f64::min);
        assert!((max - 110.0).abs() < 1e-9 && (min - 80.0).abs() < 1e-9);
        // Halfway between anchors: the geometric mean.
        assert!((p[100] - (100.0f64 * 110.0).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn tick_files_parse_and_errors_name_file_and_line() {
        let dir = std::env::temp_dir().join(format!("liqscan-ticks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("a.csv");
        std::fs::write(&csv, "price,t\n100,0\n121,20\n").unwrap();
        let t = read_ticks(&csv).unwrap();
        assert_eq!(t, vec![(0.0, 100.0), (20.0, 121.0)]);
        let p = ticks_path(&t, 30, 1.0);
        assert!((p[10] - 110.0).abs() < 1e-9 && p[30] == 121.0);
        let jl = dir.join("b.jsonl");
        std::fs::write(&jl, "{\"t\":0,\"price\":5}\n{\"t\":1,\"price\":-1}\n").unwrap();
        let e = read_ticks(&jl).unwrap_err().to_string();
        assert!(e.contains("b.jsonl:2") && e.contains("positive"), "{e}");
        std::fs::write(&csv, "t,price\n0,1\nx,2\n").unwrap();
        let e = read_ticks(&csv).unwrap_err().to_string();
        assert!(e.contains("a.csv:3") && e.contains("'t'"), "{e}");
        let e = read_bars(&dir.join("missing.json")).unwrap_err().to_string();
        assert!(e.contains("missing.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hourly_usd_price_files_read_as_unix_seconds() {
        let dir = std::env::temp_dir().join(format!("liqscan-ticks-hourly-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("UST.csv");
        std::fs::write(&csv, "symbol,timestamp,USD_price\nUST,1652000000000,0.99\nUST,1652003600500,0.5\n")
            .unwrap();
        assert_eq!(read_ticks(&csv).unwrap(), vec![(1_652_000_000.0, 0.99), (1_652_003_600.5, 0.5)]);
        std::fs::write(&csv, "symbol,timestamp,USD_price\nUST,1652000000000,x\n").unwrap();
        let e = read_ticks(&csv).unwrap_err().to_string();
        assert!(e.contains("UST.csv:2") && e.contains("USD_price"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn csv_ticks_take_quotes_and_name_the_line() {
        let dir = std::env::temp_dir().join(format!("liqscan-ticks-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("q.csv");
        // A quoted column holding a comma: splitting on commas shifted 'price' to the wrong field.
        std::fs::write(&csv, "venue,t,price\n\"Kraken, spot\",0,100\n\n\"x\",\"10\", 110 \n").unwrap();
        assert_eq!(read_ticks(&csv).unwrap(), vec![(0.0, 100.0), (10.0, 110.0)]);
        std::fs::write(&csv, "t,price\n0,1\n1\n").unwrap();
        let e = read_ticks(&csv).unwrap_err().to_string();
        assert!(e.contains("q.csv:3") && e.contains("missing field 'price'"), "{e}");
        std::fs::write(&csv, "t,price\n0,1\n\"1,2\n").unwrap();
        let e = read_ticks(&csv).unwrap_err().to_string();
        assert!(e.contains("q.csv:3"), "{e}");
        std::fs::write(&csv, "time,price\n0,1\n").unwrap();
        let e = read_ticks(&csv).unwrap_err().to_string();
        assert!(e.contains("q.csv:1") && e.contains("no column 't'"), "{e}");
        std::fs::write(&csv, "").unwrap();
        let e = read_ticks(&csv).unwrap_err().to_string();
        assert!(e.contains("q.csv:1") && e.contains("header"), "{e}");
        std::fs::write(&csv, b"t,price\n0,\xff\n").unwrap();
        let e = read_ticks(&csv).unwrap_err().to_string();
        assert!(e.contains("q.csv"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
