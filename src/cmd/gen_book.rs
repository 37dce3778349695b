//! `liqscan gen-book`: the lending book of issue 12 and a crash of 500 ticks, as files, for
//! the whole-job benchmark (scripts/bench-whole-job.sh) and its peer script.
//!
//! The book: N accounts, 70 % ETH collateral against USDC debt, 30 % ETH + BTC collateral
//! against USDC + USDT debt, so every account holds ETH. Health factors start between 1.03 and
//! about 4, denser near 1.4. The ticks price the four assets first, then ETH falls about 25 %
//! and partly recovers, BTC follows more mildly and the stablecoins wobble. Deterministic by
//! seed: the same arguments write the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use liqscan_host::io::limits;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Arguments of `liqscan gen-book`.
#[derive(clap::Args)]
pub struct Args {
    /// Accounts in the book.
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: usize,
    /// Ticks after the four opening prices.
    #[arg(long, default_value_t = 496)]
    pub ticks: usize,
    /// Seed of the book and the ticks.
    #[arg(long, default_value_t = 12)]
    pub seed: u64,
    /// Folder to write venue.toml, accounts.csv and ticks.csv into (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Also write the accounts as an Arrow IPC file, accounts.arrow (account and asset as
    /// utf8, balance as decimal128(38, 6)), for `liqscan scan`'s columnar reader.
    #[arg(long)]
    pub arrow: bool,
    /// Also write the accounts as a Parquet file, accounts.parquet (the same columns and
    /// types, snappy-compressed, as pyarrow writes by default).
    #[arg(long)]
    pub parquet: bool,
}

/// The venue: Aave-like weights, one tier. Quanta as docs/RISK_MODEL.md suggests.
pub const VENUE: &str = r#"# The generated lending venue of liqscan gen-book (issue 12's book).
[venue]
name = "generated lending book"
value_exp = -8

[[assets]]
symbol = "ETH"
quantum_exp = -4
stress = "0.1"
tiers.default = { asset_weight = "0.825", liability_weight = "1" }

[[assets]]
symbol = "BTC"
quantum_exp = -6
stress = "0.1"
tiers.default = { asset_weight = "0.78", liability_weight = "1" }

[[assets]]
symbol = "USDC"
decimals = 6
quantum_exp = -2
stress = "0.01"
tiers.default = { asset_weight = "0.875", liability_weight = "1" }

[[assets]]
symbol = "USDT"
decimals = 6
quantum_exp = -2
stress = "0.01"
tiers.default = { asset_weight = "0.8", liability_weight = "1" }
"#;

const ETH_START: f64 = 3000.0;
const BTC_START: f64 = 60000.0;
const ETH_LT: f64 = 0.825;
const BTC_LT: f64 = 0.78;
/// Start of the ticks: 2025-10-10T21:00:00Z.
const START_NS: i64 = 1_760_130_000_000_000_000;

fn lognormal(rng: &mut ChaCha8Rng, median: f64, sigma: f64) -> f64 {
    let (u1, u2): (f64, f64) = (rng.r#gen::<f64>().max(1e-12), rng.r#gen());
    median * (sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()).exp()
}

/// `x` with `digits` fractional digits, written as a decimal (`-` only for negatives).
fn write_amount(w: &mut impl Write, x: f64, digits: u32) -> std::io::Result<()> {
    let scaled = (x * 10f64.powi(digits as i32)).round() as i64;
    let (sign, m) = if scaled < 0 { ("-", scaled.unsigned_abs()) } else { ("", scaled as u64) };
    let p = 10u64.pow(digits);
    write!(w, "{sign}{}.{:0width$}", m / p, m % p, width = digits as usize)
}

/// Writes the book's CSV rows.
fn write_accounts(w: &mut impl Write, n: usize, rng: &mut ChaCha8Rng) -> std::io::Result<()> {
    writeln!(w, "account,asset,balance")?;
    for i in 0..n {
        let size = lognormal(rng, 20_000.0, 1.3).clamp(100.0, 5_000_000.0);
        let hf = 1.03 + lognormal(rng, 0.45, 0.8).min(3.0);
        if rng.gen_range(0..100) < 70 {
            let eth = size / ETH_START;
            let debt = size * ETH_LT / hf;
            write!(w, "a{i:07},ETH,")?;
            write_amount(w, eth, 6)?;
            write!(w, "\na{i:07},USDC,")?;
            write_amount(w, -debt, 2)?;
            writeln!(w)?;
        } else {
            let share = rng.gen_range(0.3..0.8);
            let (eth_usd, btc_usd) = (size * share, size * (1.0 - share));
            let weighted = eth_usd * ETH_LT + btc_usd * BTC_LT;
            let debt = weighted / hf;
            let usdc = debt * rng.gen_range(0.2..0.8);
            write!(w, "a{i:07},ETH,")?;
            write_amount(w, eth_usd / ETH_START, 6)?;
            write!(w, "\na{i:07},BTC,")?;
            write_amount(w, btc_usd / BTC_START, 6)?;
            write!(w, "\na{i:07},USDC,")?;
            write_amount(w, -usdc, 2)?;
            write!(w, "\na{i:07},USDT,")?;
            write_amount(w, -(debt - usdc), 2)?;
            writeln!(w)?;
        }
    }
    Ok(())
}

/// Writes the ticks: the four opening prices, then `n` ticks of a crash and partial recovery
/// (60 % ETH, 25 % BTC, the rest a stablecoin), one a second.
fn write_ticks(w: &mut impl Write, n: usize, rng: &mut ChaCha8Rng) -> std::io::Result<()> {
    writeln!(w, "timestamp,asset,price")?;
    let mut ts = START_NS;
    for (sym, p) in [("ETH", ETH_START), ("BTC", BTC_START), ("USDC", 1.0), ("USDT", 1.0)] {
        writeln!(w, "{ts},{sym},{p}")?;
        ts += 1_000_000_000;
    }
    for k in 0..n {
        // The path's trend: down to -25 % at 60 % of the ticks, then back up to -15 %.
        let x = k as f64 / n.max(1) as f64;
        let trend = if x < 0.6 { 1.0 - 0.25 * x / 0.6 } else { 0.75 + 0.1 * (x - 0.6) / 0.4 };
        let noise = 1.0 + 0.004 * (rng.r#gen::<f64>() - 0.5);
        let pick = rng.gen_range(0..100);
        let (sym, price, digits) = if pick < 60 {
            ("ETH", ETH_START * trend * noise, 2)
        } else if pick < 85 {
            ("BTC", BTC_START * (1.0 - (1.0 - trend) * 0.6) * noise, 2)
        } else {
            let p = 1.0 + 0.002 * (rng.r#gen::<f64>() - 0.5);
            (if pick < 93 { "USDC" } else { "USDT" }, p, 4)
        };
        write!(w, "{ts},{sym},")?;
        write_amount(w, price, digits)?;
        writeln!(w)?;
        ts += 1_000_000_000;
    }
    Ok(())
}

/// Bytes an account takes in each file, rounded up from the generated 1 M-account book
/// (accounts.csv 59.3 MB, accounts.arrow about 92 MB, accounts.parquet about 25 MB).
const CSV_BYTES: u64 = 64;
const ARROW_BYTES: u64 = 96;
const PARQUET_BYTES: u64 = 32;

/// Space free for an unprivileged writer on the file system of `dir`, if it can be read.
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data (zero is a valid value); the call gets a NUL-terminated
    // path and a statvfs to fill.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Writes the three files.
pub fn run(a: Args) -> Result<()> {
    // Refused before a byte is written: a book the limit or the disk cannot take would fill the
    // disk and leave a partial accounts.csv behind.
    limits::at_most("--accounts", a.accounts as u64, limits::MAX_ACCOUNTS)?;
    std::fs::create_dir_all(&a.dir).with_context(|| format!("cannot create {}", a.dir.display()))?;
    let per_account = CSV_BYTES + u64::from(a.arrow) * ARROW_BYTES + u64::from(a.parquet) * PARQUET_BYTES;
    let need = (a.accounts as u64).saturating_mul(per_account);
    if let Some(free) = free_bytes(&a.dir).filter(|&f| f < need) {
        bail!(
            "{}: {} accounts need about {} MB at about {per_account} bytes an account, and the disk has {} MB free",
            a.dir.display(),
            a.accounts,
            need.div_ceil(1 << 20),
            free >> 20
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let create = |name: &str| -> Result<BufWriter<File>> {
        let p = a.dir.join(name);
        Ok(BufWriter::with_capacity(
            1 << 20,
            File::create(&p).with_context(|| format!("cannot create {}", p.display()))?,
        ))
    };
    std::fs::write(a.dir.join("venue.toml"), VENUE).context("writing venue.toml")?;
    let mut w = create("accounts.csv")?;
    write_accounts(&mut w, a.accounts, &mut rng).context("writing accounts.csv")?;
    w.flush().context("writing accounts.csv")?;
    let mut w = create("ticks.csv")?;
    write_ticks(&mut w, a.ticks, &mut rng).context("writing ticks.csv")?;
    w.flush().context("writing ticks.csv")?;
    for (wanted, name) in [(a.arrow, "accounts.arrow"), (a.parquet, "accounts.parquet")] {
        if wanted {
            let (csv, out) = (a.dir.join("accounts.csv"), a.dir.join(name));
            write_columnar_accounts(&csv, &out).with_context(|| format!("writing {}", out.display()))?;
            println!("{}: {name} (the accounts of accounts.csv)", a.dir.display());
        }
    }
    println!(
        "{}: venue.toml, accounts.csv ({} accounts), ticks.csv ({} ticks)",
        a.dir.display(),
        a.accounts,
        a.ticks + 4
    );
    Ok(())
}

/// Rows an Arrow record batch holds.
const ARROW_BATCH_ROWS: usize = 1 << 16;

/// A columnar file being written: Arrow IPC or Parquet, by the path's extension.
enum ColumnarWriter {
    Ipc(arrow_ipc::writer::FileWriter<BufWriter<File>>),
    Parquet(parquet::arrow::ArrowWriter<BufWriter<File>>),
}

impl ColumnarWriter {
    fn create(path: &std::path::Path, schema: &arrow_schema::SchemaRef) -> Result<Self> {
        let f = BufWriter::with_capacity(1 << 20, File::create(path)?);
        Ok(if path.extension().is_some_and(|e| e == "parquet") {
            use parquet::basic::Compression;
            use parquet::file::properties::WriterProperties;
            let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
            ColumnarWriter::Parquet(parquet::arrow::ArrowWriter::try_new(f, schema.clone(), Some(props))?)
        } else {
            ColumnarWriter::Ipc(arrow_ipc::writer::FileWriter::try_new(f, schema)?)
        })
    }

    fn write(&mut self, batch: &arrow_array::RecordBatch) -> Result<()> {
        match self {
            ColumnarWriter::Ipc(w) => w.write(batch)?,
            ColumnarWriter::Parquet(w) => w.write(batch)?,
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        match self {
            ColumnarWriter::Ipc(mut w) => w.finish()?,
            ColumnarWriter::Parquet(w) => {
                w.close()?;
            }
        }
        Ok(())
    }
}

/// Writes the rows of the generated `csv` (account, asset, balance; at most 6 decimals, as
/// written above) to an Arrow IPC or Parquet file (by `out`'s extension) in batches, the
/// balances as exact decimal128(38, 6).
fn write_columnar_accounts(csv: &std::path::Path, out: &std::path::Path) -> Result<()> {
    use std::io::BufRead;
    use std::sync::Arc;

    use arrow_array::{Decimal128Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use liqscan_host::model::Decimal;

    const SCALE: i8 = 6;
    let schema = Arc::new(Schema::new(vec![
        Field::new("account", DataType::Utf8, false),
        Field::new("asset", DataType::Utf8, false),
        Field::new("balance", DataType::Decimal128(38, SCALE), false),
    ]));
    let mut w = ColumnarWriter::create(out, &schema)?;
    let (mut ids, mut assets, mut balances) = (Vec::new(), Vec::new(), Vec::new());
    let flush =
        |w: &mut ColumnarWriter, ids: &mut Vec<String>, assets: &mut Vec<String>, b: &mut Vec<i128>| {
            let columns: Vec<arrow_array::ArrayRef> = vec![
                Arc::new(StringArray::from(std::mem::take(ids))),
                Arc::new(StringArray::from(std::mem::take(assets))),
                Arc::new(Decimal128Array::from(std::mem::take(b)).with_precision_and_scale(38, SCALE)?),
            ];
            w.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
            anyhow::Ok(())
        };
    for (i, line) in std::io::BufReader::new(File::open(csv)?).lines().enumerate().skip(1) {
        let line = line?;
        let mut f = line.split(',');
        let (Some(id), Some(asset), Some(balance)) = (f.next(), f.next(), f.next()) else {
            anyhow::bail!("{} line {}: expected account,asset,balance", csv.display(), i + 1);
        };
        let d: Decimal = balance.parse()?;
        let (lo, hi) = (d.floor_shifted(SCALE as i32)?, d.ceil_shifted(SCALE as i32)?);
        anyhow::ensure!(
            lo == hi,
            "{} line {}: {balance} has more than {SCALE} decimals",
            csv.display(),
            i + 1
        );
        ids.push(id.to_string());
        assets.push(asset.to_string());
        balances.push(lo);
        if ids.len() == ARROW_BATCH_ROWS {
            flush(&mut w, &mut ids, &mut assets, &mut balances)?;
        }
    }
    if !ids.is_empty() {
        flush(&mut w, &mut ids, &mut assets, &mut balances)?;
    }
    w.finish()?;
    Ok(())
}
