//! Fuzz bodies, one per decoder. Each takes arbitrary bytes, must never panic, and checks what
//! the decoder promises (ring entries: decode then encode gives the same bytes; journal frames:
//! every frame scan accepts has a valid checksum and is re-encoded to the same bytes). One
//! more, `engine_scan`, is differential, and `scenario`, `sweep` and `options` check that
//! whatever a scenario file, a sweep file or a command option holds is refused or stays within
//! the documented limits. One: every scan kernel in every layout against the
//! reference, on books built from the bytes with healths steered near zero.

use std::path::Path;
use std::sync::OnceLock;

use liqscan_hdl::abi::ring::EntryBytes;
use liqscan_hdl::abi::{COEFF_MAX, COEFF_MIN, Coeff, Command, EventEntry, PriceEntry, QuotedPrice};
use liqscan_host::engine::{Kernel, Layout, ScanEngine, SoftwareEngine};
use liqscan_host::feed::auth::HmacKey;
use liqscan_host::feed::wire;
use liqscan_host::io::{Format, accounts, options, ticks, time, venue};
use liqscan_host::journal::frame::{self, MAX_RECORD};
use liqscan_host::journal::record::decode_payload;
use liqscan_host::journal::{DurableState, Record};
use liqscan_host::model::{AssetTable, Decimal};
use liqscan_host::reference;

/// The venue the account and tick readers resolve against (the example venue).
pub fn table() -> &'static AssetTable {
    static T: OnceLock<AssetTable> = OnceLock::new();
    T.get_or_init(|| {
        venue::parse_venue(Path::new("venue.toml"), include_str!("../../examples/venue.toml"), Format::Toml)
            .expect("example venue parses")
    })
}

fn entry(data: &[u8]) -> Option<EntryBytes> {
    data.get(..64).map(|b| b.try_into().unwrap())
}

/// Ring command decode; a decoded command re-encodes to the same bytes.
pub fn ring_command(data: &[u8]) {
    let Some(b) = entry(data) else { return };
    if let Ok((seq, cmd)) = Command::decode(&b) {
        assert_eq!(cmd.encode(seq), b, "command {cmd:?} does not re-encode to its bytes");
    }
}

/// Ring event decode; a decoded event re-encodes to the same bytes.
pub fn ring_event(data: &[u8]) {
    let Some(b) = entry(data) else { return };
    if let Ok(e) = EventEntry::decode(&b) {
        assert_eq!(e.encode(), b, "event {e:?} does not re-encode to its bytes");
    }
}

/// Journal segment bytes: scan, decode and apply every record; snapshot body decode.
pub fn journal_records(data: &[u8]) {
    if let Ok(scan) = frame::scan(data, MAX_RECORD) {
        let mut state = DurableState::new(16, 4);
        for f in &scan.frames {
            let mut again = Vec::new();
            frame::encode(f.seq, f.payload, &mut again);
            assert_eq!(&data[f.offset..f.end()], &again[..]);
            if let Ok(rec) = decode_payload(f.payload) {
                let _ = state.apply(f.seq, &rec);
                let back: Record = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
                assert_eq!(back, rec);
            }
        }
        assert!(scan.valid_end <= data.len());
    }
    let _ = serde_json::from_slice::<DurableState>(data);
}

fn text(data: &[u8]) -> Option<(u8, &str)> {
    let (&sel, rest) = data.split_first()?;
    Some((sel, std::str::from_utf8(rest).ok()?))
}

/// Venue reader, TOML or JSON.
pub fn io_venue(data: &[u8]) {
    let Some((sel, t)) = text(data) else { return };
    let fmt = if sel & 1 == 0 { Format::Toml } else { Format::Json };
    let _ = venue::parse_venue(Path::new("fuzz"), t, fmt);
}

/// Account reader, CSV, JSON or TOML.
pub fn io_accounts(data: &[u8]) {
    let Some((sel, t)) = text(data) else { return };
    let fmt = [Format::Csv, Format::Json, Format::Toml][sel as usize % 3];
    let _ = accounts::parse_accounts(Path::new("fuzz"), t, fmt, table());
}

/// Tick reader, CSV or JSONL.
pub fn io_ticks(data: &[u8]) {
    let Some((sel, t)) = text(data) else { return };
    let fmt = if sel & 1 == 0 { Format::Csv } else { Format::Jsonl };
    let _ = ticks::parse_ticks(Path::new("fuzz"), t, fmt, table());
}

/// Bar-file reader.
pub fn io_bars(data: &[u8]) {
    let Some((_, t)) = text(data) else { return };
    let _ = ticks::parse_bars(Path::new("fuzz"), t, table(), "ETH");
}

/// Feed wire frames (the live listeners' decoder): a decoded frame encodes to bytes that
/// decode to the same frame; signed with a key, it verifies with that key and not another.
pub fn wire_frame(data: &[u8]) {
    let Ok((f, len, _)) = wire::decode_tagged(data) else { return };
    assert!(len <= data.len(), "frame length {len} beyond the {} bytes given", data.len());
    let mut b = Vec::new();
    wire::encode(&f, &mut b);
    let (g, glen, gtag) = wire::decode_tagged(&b).expect("an encoded frame decodes");
    assert_eq!((g, glen, gtag.is_none()), (f, b.len(), true), "unsigned round trip of {f:?}");
    let key = HmacKey::new(b"fuzz");
    wire::encode_signed(&f, &key, &mut b);
    let (h, hlen, tag) = wire::decode_tagged(&b).expect("a signed frame decodes");
    assert_eq!((h, hlen), (f, b.len()), "signed round trip of {f:?}");
    let tag = tag.expect("a signed frame has its tag");
    let covered = &b[..hlen - tag.len()];
    assert!(key.verify(covered, tag), "the signing key does not verify {f:?}");
    assert!(!HmacKey::new(b"other").verify(covered, tag), "another key verifies {f:?}");
}

/// Reads bytes as a stream; past the end it yields zeros (so every input builds a book).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A value of the width, extremes and small values favoured.
    fn coeff(&mut self) -> i32 {
        match self.u8() % 8 {
            0 => COEFF_MAX,
            1 => COEFF_MIN,
            2 => (self.u8() as i32) - 128,
            _ => (self.u32() as i32).clamp(COEFF_MIN, COEFF_MAX),
        }
    }

    fn price(&mut self) -> u32 {
        match self.u8() % 6 {
            0 => u32::MAX,
            1 => self.u8() as u32,
            _ => self.u32(),
        }
    }
}

/// Differential scan: a book of up to 64 accounts over up to 16 assets, built from the bytes
/// (coefficients and prices favour the extremes; an account may end with a term that brings
/// its spot health to within a few units of its last asset's price of zero), scanned by every
/// kernel this CPU runs in the column and the row layout; the bitmaps must equal the
/// reference's.
pub fn engine_scan(data: &[u8]) {
    let mut b = Bytes(data);
    let accounts = 1 + (b.u8() % 64) as usize;
    let assets = 1 + (b.u8() % 16) as usize;
    let prices: Vec<PriceEntry> = (0..assets)
        .map(|_| PriceEntry {
            spot: QuotedPrice { asset: b.price(), liability: b.price() },
            stressed: QuotedPrice { asset: b.price(), liability: b.price() },
        })
        .collect();
    let book: Vec<Vec<Coeff>> = (0..accounts)
        .map(|_| {
            let n = (b.u8() % 17) as usize;
            let mut t: Vec<Coeff> = Vec::with_capacity(n);
            for _ in 0..n {
                let asset = (b.u8() as usize % assets) as u16;
                if t.iter().all(|x| x.asset != asset) {
                    t.push(Coeff { asset, coeff: b.coeff() });
                }
            }
            // Steer: the last term cancels the others' spot health as far as it can.
            if b.u8() % 2 == 0
                && let Some((last, rest)) = t.split_last_mut()
            {
                let h: i128 = rest
                    .iter()
                    .map(|c| c.coeff as i128 * prices[c.asset as usize].spot.for_coeff(c.coeff) as i128)
                    .sum();
                let p = prices[last.asset as usize].spot;
                let mid = if h > 0 { p.liability } else { p.asset }.max(1) as i128;
                let c = -h / mid + (b.u8() as i128 - 128);
                last.coeff = c.clamp(COEFF_MIN as i128, COEFF_MAX as i128) as i32;
            }
            t.retain(|c| c.coeff != 0 || b.u8() % 2 == 0);
            t
        })
        .collect();
    let want = reference::scan(&book, &prices);
    for k in Kernel::available() {
        for layout in [Layout::Columns, Layout::Rows] {
            let mut e = SoftwareEngine::with_kernel(accounts, assets, k).with_layout(layout);
            for (s, t) in book.iter().enumerate() {
                e.upsert(s as u32, t).expect("terms built within the widths");
            }
            e.batch_tick(&prices).expect("one price per asset");
            assert_eq!(e.breach(), &want.breach[..], "{k:?} {layout:?}: breach bitmap");
            assert_eq!(e.at_risk(), &want.at_risk[..], "{k:?} {layout:?}: at-risk bitmap");
        }
    }
}

/// The calm-day scenario, the base the structured scenario target mutates.
const SCENARIO: &str = include_str!("../../scenarios/calm-day.toml");

/// Fields of a scenario with numbers, as dotted paths.
const SCENARIO_FIELDS: &[&str] = &[
    "duration_secs",
    "step_secs",
    "value_exp",
    "seed",
    "assets.ETH.quantum_exp",
    "assets.ETH.stress",
    "assets.ETH.price.gbm.start",
    "assets.ETH.price.gbm.vol_day",
    "assets.ETH.price.gbm.drift_day",
    "assets.ETH.price.gbm.jumps_per_day",
    "assets.ETH.price.gbm.jump_std",
    "assets.ETH.depth.depth_usd_per_pct",
    "assets.BTC.price.follow.beta",
    "assets.USDC.price.fixed",
    "oracle.heartbeat_secs",
    "oracle.delay_secs",
    "oracle.deviation",
    "population.accounts",
    "population.lenders",
    "population.size_median_usd",
    "population.size_max_usd",
    "population.size_sigma",
    "population.min_hf",
    "population.tiers.default",
    "population.collateral.ETH",
    "activity.opens_per_hour",
    "liquidation.close_factor_bps",
    "liquidation.dutch.step_secs",
    "liquidation.batch.window_secs",
    "keeper.max_in_flight",
    "keeper.max_attempts",
    "keeper.target_hf",
    "insurance.initial_usd",
    "dynamic.enabled",
    "dynamic.window_secs",
    "dynamic.return_secs",
    "report.sample_secs",
];

/// A TOML value from the bytes: extremes, special floats, and numbers of every size.
fn toml_value(b: &mut Bytes) -> toml::Value {
    use toml::Value::{Boolean, Float, Integer, String as Text};
    match b.u8() % 10 {
        0 => Float([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, f64::MIN_POSITIVE, 0.0, -0.0][b.u8() as usize % 7]),
        1 => Integer([i64::MAX, i64::MIN, 0, -1, 1, u32::MAX as i64 + 1, i64::from(b.u32()) << 31][b.u8() as usize % 7]),
        2 => Float(f64::from_bits(u64::from(b.u32()) << 32 | u64::from(b.u32()))),
        3 => Float(10f64.powi((b.u8() as i32) - 128)),
        4 => Integer(10i64.pow(u32::from(b.u8() % 19))),
        5 => Text(format!("{}e{}", b.u8() % 10, b.u32() as i32)),
        6 => Boolean(b.u8() % 2 == 0),
        _ => Float((b.u32() as f64) / f64::from(1 + b.u8())),
    }
}

/// Scenario files: the bytes as a whole file, then as up to eight (field, value) changes to the
/// calm-day scenario. Nothing panics, and an accepted scenario is within the limits.
pub fn scenario(data: &[u8]) {
    use liqscan_sim::scenario::limits;
    let check = |s: &liqscan_sim::Scenario| {
        assert!(s.account_slots() <= limits::MAX_ACCOUNTS as f64, "slots {}", s.account_slots());
        let steps = (s.duration_secs / s.step_secs).ceil();
        assert!(steps <= limits::MAX_STEPS as f64, "{steps} steps accepted");
        let avail = liqscan_host::io::limits::mem_available().unwrap_or(u64::MAX);
        assert!(s.memory_estimate() <= avail, "{} bytes accepted", s.memory_estimate());
    };
    if let Some((_, t)) = text(data)
        && let Ok(s) = liqscan_sim::Scenario::parse(t, Path::new("fuzz.toml"))
    {
        check(&s);
    }
    let mut b = Bytes(data);
    let mut table: toml::Table = toml::from_str(SCENARIO).expect("calm day parses");
    for _ in 0..1 + b.u8() % 8 {
        let field = SCENARIO_FIELDS[b.u8() as usize % SCENARIO_FIELDS.len()];
        let parts: Vec<&str> = field.split('.').collect();
        let mut t = &mut table;
        for p in &parts[..parts.len() - 1] {
            t = t.entry(*p).or_insert_with(|| toml::Value::Table(toml::Table::new())).as_table_mut().expect("table");
        }
        t.insert(parts[parts.len() - 1].to_string(), toml_value(&mut b));
    }
    let text = toml::to_string(&table).expect("a table serialises");
    if let Ok(s) = liqscan_sim::Scenario::parse(&text, Path::new("fuzz.toml")) {
        check(&s);
    }
}

/// Sweep files: nothing panics; an accepted sweep has one to three axes and at most
/// [`liqscan_sim::sweep::MAX_POINTS`] runs.
pub fn sweep(data: &[u8]) {
    let Some((_, t)) = text(data) else { return };
    if let Ok(s) = liqscan_sim::sweep::SweepFile::parse(t, Path::new("fuzz.toml")) {
        let n: usize = s.axis.iter().map(|a| a.values.len()).product();
        assert!((1..=3).contains(&s.axis.len()) && n <= liqscan_sim::sweep::MAX_POINTS, "{n} runs");
    }
}

/// Command options with numbers, and the decimals and timestamps every file holds: the text
/// as `--pace`, a decimal and a timestamp; then numbers from the bytes as `fixed:X` and
/// `recorded:X`. An accepted pace is within its range; an accepted decimal round-trips.
pub fn options(data: &[u8]) {
    use liqscan_host::feed::replay::Pace;
    let in_range = |p: &Pace| match *p {
        Pace::Flood => true,
        Pace::Recorded { speed: x } | Pace::Fixed { per_second: x } => {
            (options::PACE_MIN..=options::PACE_MAX).contains(&x)
        }
    };
    let Some((sel, t)) = text(data) else { return };
    if let Ok(p) = options::parse_pace(t) {
        assert!(in_range(&p), "{t}: {p:?}");
    }
    if let Ok(d) = t.parse::<Decimal>() {
        assert_eq!(d.to_string().parse::<Decimal>().expect("display parses"), d, "{t}");
    }
    if let Ok(ns) = time::parse_timestamp(t) {
        let again = time::parse_timestamp(&time::format_timestamp(ns)).expect("formatted time parses");
        assert_eq!(again, ns - ns.rem_euclid(1_000_000), "{t}");
    }
    let mut b = Bytes(data);
    let x = f64::from_bits(u64::from(b.u32()) << 32 | u64::from(b.u32()));
    let kind = if sel % 2 == 0 { "fixed" } else { "recorded" };
    if let Ok(p) = options::parse_pace(&format!("{kind}:{x}")) {
        assert!(in_range(&p), "{kind}:{x}: {p:?}");
    }
}

/// Every body by target name.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("ring_command", ring_command),
    ("ring_event", ring_event),
    ("journal_records", journal_records),
    ("io_venue", io_venue),
    ("io_accounts", io_accounts),
    ("io_ticks", io_ticks),
    ("io_bars", io_bars),
    ("wire_frame", wire_frame),
    ("engine_scan", engine_scan),
    ("scenario", scenario),
    ("sweep", sweep),
    ("options", options),
];
