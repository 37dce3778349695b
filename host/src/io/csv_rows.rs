//! Long-form CSV account rows (`account,asset,balance[,tier]`), read in two stages on two
//! threads, the first problem in file order reported with its line.
//!
//! The reader thread reads the input in chunks of about [`CHUNK_BYTES`], each cut after a line's
//! end. A chunk that is valid UTF-8 and holds no quote and no carriage return, which is what
//! every exporter writes for a book of ids, symbols and numbers, is split where it lies: a row
//! is a few spans of the chunk, nothing copied (the csv crate copies every record into its own
//! buffer, and that copy and its per-field checks were most of the read: docs/lab/performance.md,
//! "Reading a book at polars' pace"). The first chunk that is not plain hands the rest of the
//! input to the csv crate, which reads quoting and line ends; its fields are checked one by one
//! and copied into the batch. Both give the same rows, lines and problems (a property test).
//!
//! Plain chunks are split on two threads: the reader hands a chunk to a splitter thread when
//! that one waits for work and splits it itself otherwise, so the split (most of a read) takes
//! both cores while the input lasts. The reader counts a handed-off chunk's lines (one `memchr`
//! pass) so that each row keeps its line; every batch carries its place in the file, and the
//! consuming thread takes them in that order.
//!
//! The consuming thread hands the rows to the caller (for the book: look up, compile, group)
//! in file order while the reader goes on. The first problem in file order ends the read with
//! the rows before it handed over; when the consumer stops first, the channels it drops stop
//! the reader and the splitter.

use std::io::{Cursor, Read};
use std::path::Path;

use super::InputError;
use crate::model::Decimal;

/// Bytes the reader takes from the input at a time (a chunk grows past it only to finish a line
/// longer than that). Small under test, so that tests cross many chunk ends.
const CHUNK_BYTES: usize = if cfg!(test) { 1 << 12 } else { 1 << 20 };
/// Rows a batch holds when the csv crate reads (a chunk's rows make one batch otherwise).
pub(crate) const BATCH_ROWS: usize = 4096;
/// Batches between the two stages.
const BATCHES_IN_FLIGHT: usize = 4;

/// Reads long-form CSV rows from `input`, trimming fields, and hands each to `row` with its
/// line; `progress` gets the bytes read so far after each batch. The first problem, the
/// reader's or `row`'s, stops the read with the file and line.
pub(crate) fn for_each_csv_row(
    path: &Path,
    input: impl Read + Send,
    progress: &mut dyn FnMut(u64),
    mut row: impl FnMut(&str, &str, Decimal, Option<&str>) -> Result<(), String>,
) -> Result<(), InputError> {
    let nothing = |_: &str, _: &str, _: Decimal, _: Option<&str>| Ok(());
    read_rows(path, input, Split::Plain, progress, nothing, |id, asset, balance, tier, ()| {
        row(id, asset, balance, tier)
    })
}

/// [`for_each_csv_row`] with a first step on the reader thread: `prepare` (say, compiling the
/// row against the venue, which needs nothing but the row) runs there, and `row` gets its
/// result; a problem `prepare` finds is reported at its row, in file order as any other.
pub(crate) fn for_each_prepared_csv_row<T: Send>(
    path: &Path,
    input: impl Read + Send,
    progress: &mut dyn FnMut(u64),
    prepare: impl Fn(&str, &str, Decimal, Option<&str>) -> Result<T, String> + Sync,
    row: impl FnMut(&str, &str, Decimal, Option<&str>, T) -> Result<(), String>,
) -> Result<(), InputError> {
    read_rows(path, input, Split::Plain, progress, prepare, row)
}

/// How the reader splits chunks: in place where they are plain, or always by the csv crate
/// (tests compare the two).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Split {
    Plain,
    Csv,
}

fn read_rows<T: Send>(
    path: &Path,
    input: impl Read + Send,
    split: Split,
    progress: &mut dyn FnMut(u64),
    prepare: impl Fn(&str, &str, Decimal, Option<&str>) -> Result<T, String> + Sync,
    mut row: impl FnMut(&str, &str, Decimal, Option<&str>, T) -> Result<(), String>,
) -> Result<(), InputError> {
    std::thread::scope(|s| {
        // Made inside the scope, so that a return from it drops this side's ends before the
        // scope joins the reader (which would otherwise wait for a batch forever).
        let (full_tx, full_rx) = crossbeam::channel::bounded::<Batch<T>>(BATCHES_IN_FLIGHT);
        let (empty_tx, empty_rx) = crossbeam::channel::bounded::<Batch<T>>(BATCHES_IN_FLIGHT + 1);
        for _ in 0..=BATCHES_IN_FLIGHT {
            empty_tx.send(Batch::with_room()).expect("the channel has room");
        }
        // A rendezvous: the reader hands a chunk over only to a splitter that waits for one.
        let (work_tx, work_rx) = crossbeam::channel::bounded::<Work<T>>(0);
        let prepare = &prepare;
        let reader = Reader {
            path,
            input,
            prepare,
            carry: Vec::new(),
            eof: false,
            line: 1,
            bytes: 0,
            cols: None,
            seq: 0,
            work: work_tx,
        };
        let split_full = full_tx.clone();
        std::thread::Builder::new()
            .name("csv-split".into())
            .spawn_scoped(s, move || {
                for Work { mut batch, mut line, cols } in work_rx.iter() {
                    split_plain_text(path, prepare, &mut Some(cols), &mut line, &mut batch);
                    if split_full.send(batch).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| InputError::file(path, format!("cannot start the splitter thread: {e}")))?;
        std::thread::Builder::new()
            .name("csv-reader".into())
            .spawn_scoped(s, move || reader.run(split, empty_rx, full_tx))
            .map_err(|e| InputError::file(path, format!("cannot start the reader thread: {e}")))?;
        // Batches arrive in the order their splits end; they are taken in file order.
        let (mut next, mut arrived) = (0u64, Vec::<Batch<T>>::with_capacity(BATCHES_IN_FLIGHT + 1));
        for batch in full_rx.iter() {
            arrived.push(batch);
            while let Some(i) = arrived.iter().position(|b| b.seq == next) {
                let mut batch = arrived.swap_remove(i);
                next += 1;
                let text = &batch.text;
                // SAFETY: the reader checked every span as UTF-8 (a plain chunk as a whole; its
                // spans start and end at ASCII bytes, so on character boundaries); the text does
                // not change after.
                let field = |s: Span| unsafe {
                    std::str::from_utf8_unchecked(&text[s.start as usize..s.end as usize])
                };
                for (r, p) in batch.rows.iter().zip(batch.prepared.drain(..)) {
                    let tier = batch.has_tier.then(|| field(r.tier));
                    row(field(r.account), field(r.asset), r.balance, tier, p)
                        .map_err(|e| InputError::at(path, r.line, e))?;
                }
                if let Some(e) = batch.end.take() {
                    return Err(e);
                }
                progress(batch.bytes);
                let _ = empty_tx.send(batch);
            }
        }
        debug_assert!(arrived.is_empty(), "a batch's place was never filled");
        Ok(())
    })
}

/// A plain chunk handed to the splitter: its batch, the line it starts at, the columns.
struct Work<T> {
    batch: Batch<T>,
    line: usize,
    cols: Columns,
}

/// A field's bytes in its batch's text, trimmed.
#[derive(Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Default)]
struct Row {
    account: Span,
    asset: Span,
    tier: Span,
    balance: Decimal,
    line: usize,
}

/// Rows the reader parsed and what `prepare` made of each, the text their spans point into, the
/// bytes read after them, and the problem that ended the read, if one did; `seq` is its place
/// in the file. Batches go back and forth, so their buffers are reused.
struct Batch<T> {
    seq: u64,
    text: Vec<u8>,
    rows: Vec<Row>,
    prepared: Vec<T>,
    has_tier: bool,
    bytes: u64,
    end: Option<InputError>,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Batch {
            seq: 0,
            text: Vec::new(),
            rows: Vec::new(),
            prepared: Vec::new(),
            has_tier: false,
            bytes: 0,
            end: None,
        }
    }
}

impl<T> Batch<T> {
    /// A batch with room for a chunk's rows (rows are rarely shorter than 16 bytes), so that
    /// it does not grow by doubling, a fresh allocation and copy each time.
    fn with_room() -> Self {
        let rows = CHUNK_BYTES / 16;
        Batch {
            text: Vec::with_capacity(CHUNK_BYTES + (1 << 12)),
            rows: Vec::with_capacity(rows),
            prepared: Vec::with_capacity(rows),
            ..Batch::default()
        }
    }

    /// Adds a row, its spans pointing into `text` (the batch's own, or the chunk being split),
    /// once `prepare` took it; its problem otherwise.
    fn push<F>(&mut self, text: &[u8], path: &Path, prepare: &F, row: Row) -> Result<(), InputError>
    where
        F: Fn(&str, &str, Decimal, Option<&str>) -> Result<T, String>,
    {
        let p = prepare_row(text, self.has_tier, path, prepare, &row)?;
        self.rows.push(row);
        self.prepared.push(p);
        Ok(())
    }

    fn clear(&mut self) {
        self.text.clear();
        self.rows.clear();
        self.prepared.clear();
        self.bytes = 0;
        self.end = None;
    }
}

/// The columns a CSV account file's header names, and how many it has (every row must have
/// as many).
#[derive(Clone, Copy)]
struct Columns {
    account: usize,
    asset: usize,
    balance: usize,
    tier: Option<usize>,
    count: usize,
}

impl Columns {
    fn of<'h>(path: &Path, header: impl Iterator<Item = &'h [u8]> + Clone) -> Result<Columns, InputError> {
        let col = |name: &str| {
            super::header_column(header.clone(), &[name]).map_err(|e| InputError::at(path, 1, e))
        };
        let (Some(account), Some(asset), Some(balance)) = (col("account")?, col("asset")?, col("balance")?)
        else {
            return Err(InputError::at(
                path,
                1,
                "header must name the columns account, asset, balance (and optionally tier)",
            ));
        };
        Ok(Columns { account, asset, balance, tier: col("tier")?, count: header.count() })
    }

    fn check_count(&self, path: &Path, line: usize, fields: usize) -> Result<(), InputError> {
        if fields == self.count {
            return Ok(());
        }
        Err(InputError::at(
            path,
            line,
            format!("malformed row: {fields} fields where the header has {}", self.count),
        ))
    }
}

/// The reader stage: the input, the part of a line a chunk left over, the line, byte and batch
/// number the next chunk starts at, the columns once the header is read, and the splitter's
/// end of the hand-off.
struct Reader<'p, R, F, T> {
    path: &'p Path,
    input: R,
    prepare: &'p F,
    carry: Vec<u8>,
    eof: bool,
    line: usize,
    bytes: u64,
    cols: Option<Columns>,
    seq: u64,
    work: crossbeam::channel::Sender<Work<T>>,
}

/// Hands a plain chunk to the splitter when the splitter waits for one; gives it back otherwise.
/// Under test every other chunk is handed over, waiting for the splitter if need be, so that
/// the tests see batches finish out of order whatever the threads' timing.
fn hand_off<T>(work: &crossbeam::channel::Sender<Work<T>>, w: Work<T>) -> Option<Work<T>> {
    if cfg!(test) {
        if w.batch.seq % 2 == 1 { work.send(w).err().map(|e| e.into_inner()) } else { Some(w) }
    } else {
        work.try_send(w).err().map(|e| e.into_inner())
    }
}

/// Lines in a chunk as [`split_plain_text`] counts them (a last line without its end too).
fn lines_in(text: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', text).count() + usize::from(text.last().is_some_and(|&c| c != b'\n'))
}

impl<R: Read, F, T> Reader<'_, R, F, T> {
    fn run(
        mut self,
        split: Split,
        empty: crossbeam::channel::Receiver<Batch<T>>,
        full: crossbeam::channel::Sender<Batch<T>>,
    ) where
        F: Fn(&str, &str, Decimal, Option<&str>) -> Result<T, String>,
    {
        loop {
            let Ok(mut b) = empty.recv() else { return };
            b.clear();
            b.seq = self.seq;
            self.seq += 1;
            let more = match self.next_chunk(&mut b.text) {
                Ok(more) => more,
                Err(e) => {
                    b.end = Some(e);
                    let _ = full.send(b);
                    return;
                }
            };
            if !more {
                if self.cols.is_none() {
                    b.end = Columns::of(self.path, std::iter::empty()).err();
                    let _ = full.send(b);
                }
                return;
            }
            if split == Split::Csv || !is_plain(&b.text) {
                return self.read_rest_with_csv(b, empty, full);
            }
            b.bytes = self.bytes;
            if let Some(cols) = self.cols {
                let lines = lines_in(&b.text);
                match hand_off(&self.work, Work { batch: b, line: self.line, cols }) {
                    None => {
                        self.line += lines;
                        continue;
                    }
                    Some(w) => b = w.batch,
                }
            }
            let ended = split_plain_text(self.path, self.prepare, &mut self.cols, &mut self.line, &mut b);
            if full.send(b).is_err() || ended {
                return; // the consumer stopped at a problem of its own, or this side did
            }
        }
    }

    /// Fills `buf` with the carried-over bytes and the input's next ones up to a line's end
    /// (or the input's); false when nothing is left.
    fn next_chunk(&mut self, buf: &mut Vec<u8>) -> Result<bool, InputError> {
        buf.clear();
        buf.append(&mut self.carry);
        let mut want = CHUNK_BYTES;
        loop {
            if !self.eof && buf.len() < want {
                let ask = (want - buf.len()) as u64;
                let got = (&mut self.input)
                    .take(ask)
                    .read_to_end(buf)
                    .map_err(|e| InputError::file(self.path, format!("cannot read: {e}")))?;
                self.eof = (got as u64) < ask;
            }
            if self.eof {
                break;
            }
            match memchr::memrchr(b'\n', buf) {
                Some(i) => {
                    self.carry.extend_from_slice(&buf[i + 1..]);
                    buf.truncate(i + 1);
                    break;
                }
                None => want = buf.len() + CHUNK_BYTES, // a line longer than a chunk
            }
        }
        if buf.len() > u32::MAX as usize {
            let line = self.line;
            return Err(InputError::at(self.path, line, "malformed row: a line longer than 4 GiB"));
        }
        self.bytes += buf.len() as u64;
        Ok(!buf.is_empty())
    }

    /// Reads what is left, this chunk first, with the csv crate (quotes, carriage returns, or
    /// bytes that are not UTF-8 somewhere in it), copying each row's checked fields into its
    /// batch.
    fn read_rest_with_csv(
        self,
        mut b: Batch<T>,
        empty: crossbeam::channel::Receiver<Batch<T>>,
        full: crossbeam::channel::Sender<Batch<T>>,
    ) where
        F: Fn(&str, &str, Decimal, Option<&str>) -> Result<T, String>,
    {
        let before = self.bytes - b.text.len() as u64;
        let Reader { path, input, prepare, carry, line: first_line, cols, mut seq, .. } = self;
        let rest = Cursor::new(std::mem::take(&mut b.text)).chain(Cursor::new(carry)).chain(input);
        // Flexible: the field count is checked here, against the header, as in the plain split.
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 20)
            .from_reader(rest);
        let mut rec = csv::ByteRecord::new();
        let line_of =
            |rec: &csv::ByteRecord| first_line - 1 + rec.position().map_or(1, |p| p.line() as usize);
        let cols = match cols {
            Some(c) => c,
            None => {
                let header = match rdr.read_byte_record(&mut rec) {
                    Ok(_) => Columns::of(path, rec.iter()),
                    Err(e) => Err(InputError::at(path, 1, format!("malformed row: {e}"))),
                };
                match header {
                    Ok(c) => c,
                    Err(e) => {
                        b.end = Some(e);
                        let _ = full.send(b);
                        return;
                    }
                }
            }
        };
        b.has_tier = cols.tier.is_some();
        loop {
            let mut ended = false;
            while b.rows.len() < BATCH_ROWS {
                match rdr.read_byte_record(&mut rec) {
                    Ok(true) => {}
                    Ok(false) => {
                        ended = true;
                        break;
                    }
                    Err(e) => {
                        let line = first_line - 1 + e.position().map_or(1, |p| p.line() as usize);
                        b.end = Some(InputError::at(path, line, format!("malformed row: {e}")));
                        ended = true;
                        break;
                    }
                }
                if let Err(e) = copy_row(path, &rec, line_of(&rec), cols, &mut b).and_then(|r| {
                    let text = std::mem::take(&mut b.text);
                    let pushed = b.push(&text, path, prepare, r);
                    b.text = text;
                    pushed
                }) {
                    b.end = Some(e);
                    ended = true;
                    break;
                }
            }
            b.bytes = before + rdr.position().byte();
            if full.send(b).is_err() || ended {
                return;
            }
            let Ok(next) = empty.recv() else { return };
            b = next;
            b.clear();
            (b.seq, seq) = (seq, seq + 1);
            b.has_tier = cols.tier.is_some();
        }
    }
}

/// Splits a plain chunk's lines (the batch's text) into rows from line `line` on, the header
/// first if `cols` is not known yet; true when a problem ended the read (it ends the batch).
fn split_plain_text<T, F>(
    path: &Path,
    prepare: &F,
    cols: &mut Option<Columns>,
    line: &mut usize,
    b: &mut Batch<T>,
) -> bool
where
    F: Fn(&str, &str, Decimal, Option<&str>) -> Result<T, String>,
{
    let text = std::mem::take(&mut b.text);
    let ended = split_lines(path, prepare, cols, line, &text, b);
    b.text = text;
    ended
}

/// [`split_plain_text`] on `text`, the batch's text taken out of it.
fn split_lines<T, F>(
    path: &Path,
    prepare: &F,
    cols: &mut Option<Columns>,
    line_no: &mut usize,
    text: &[u8],
    b: &mut Batch<T>,
) -> bool
where
    F: Fn(&str, &str, Decimal, Option<&str>) -> Result<T, String>,
{
    // Every batch says whether its rows have a tier, not only the one the header was in.
    b.has_tier = cols.is_some_and(|c| c.tier.is_some());
    let mut pos = 0;
    let mut fields: Vec<Span> = Vec::new();
    while pos < text.len() {
        // One pass over the line's bytes for its commas and its end: rows are a few dozen
        // bytes, shorter than a vectorised search needs to pay for its setup.
        fields.clear();
        let (start, mut f, mut end) = (pos, pos, pos);
        while end < text.len() && text[end] != b'\n' {
            if text[end] == b',' {
                fields.push(Span { start: f as u32, end: end as u32 });
                f = end + 1;
            }
            end += 1;
        }
        let line = *line_no;
        *line_no += 1;
        pos = end + 1;
        if start == end {
            continue; // an empty line, skipped as the csv crate skips it
        }
        fields.push(Span { start: f as u32, end: end as u32 });
        let cols = match *cols {
            Some(c) => c,
            None => {
                let header = fields.iter().map(|s| &text[s.start as usize..s.end as usize]);
                match Columns::of(path, header) {
                    Ok(c) => {
                        *cols = Some(c);
                        b.has_tier = c.tier.is_some();
                    }
                    Err(e) => {
                        b.end = Some(e);
                        return true;
                    }
                }
                continue;
            }
        };
        if let Err(e) = cols.check_count(path, line, fields.len()) {
            b.end = Some(e);
            return true;
        }
        let span = |i: usize| trim(text, fields[i]);
        let balance = span(cols.balance);
        // SAFETY: the chunk is UTF-8 (`is_plain`) and the span's ends are ASCII bytes.
        let balance_text =
            unsafe { std::str::from_utf8_unchecked(&text[balance.start as usize..balance.end as usize]) };
        let balance = match balance_text.parse::<Decimal>() {
            Ok(d) => d,
            Err(e) => {
                b.end = Some(InputError::at(path, line, format!("balance: {e}")));
                return true;
            }
        };
        let row = Row {
            account: span(cols.account),
            asset: span(cols.asset),
            tier: cols.tier.map_or_else(Span::default, span),
            balance,
            line,
        };
        if let Err(e) = b.push(text, path, prepare, row) {
            b.end = Some(e);
            return true;
        }
    }
    false
}

/// Checks a record's fields as UTF-8 and parses its balance, in the order the fields are used
/// (account, asset, balance, tier), and copies them into `b`'s text.
fn copy_row<T>(
    path: &Path,
    rec: &csv::ByteRecord,
    line: usize,
    cols: Columns,
    b: &mut Batch<T>,
) -> Result<Row, InputError> {
    cols.check_count(path, line, rec.len())?;
    let text = &mut b.text;
    let account = copy_field(path, line, rec, cols.account, "account", text)?;
    let asset = copy_field(path, line, rec, cols.asset, "asset", text)?;
    let balance = copy_field(path, line, rec, cols.balance, "balance", text)?;
    // SAFETY: `copy_field` checked the span as UTF-8.
    let balance =
        unsafe { std::str::from_utf8_unchecked(&text[balance.start as usize..balance.end as usize]) }
            .parse::<Decimal>()
            .map_err(|e| InputError::at(path, line, format!("balance: {e}")))?;
    let tier = match cols.tier {
        Some(i) => copy_field(path, line, rec, i, "tier", text)?,
        None => Span::default(),
    };
    Ok(Row { account, asset, tier, balance, line })
}

/// Appends field `i` of `rec`, trimmed, to `text` once it is checked as UTF-8.
fn copy_field(
    path: &Path,
    line: usize,
    rec: &csv::ByteRecord,
    i: usize,
    name: &str,
    text: &mut Vec<u8>,
) -> Result<Span, InputError> {
    let f = rec.get(i).unwrap_or(b"").trim_ascii();
    std::str::from_utf8(f)
        .map_err(|_| InputError::at(path, line, format!("malformed row: {name} is not UTF-8")))?;
    let start = text.len() as u32;
    text.extend_from_slice(f);
    Ok(Span { start, end: text.len() as u32 })
}

/// What `prepare` makes of a row whose spans point into `text`, or its problem at the row's line.
fn prepare_row<T, F>(
    text: &[u8],
    has_tier: bool,
    path: &Path,
    prepare: &F,
    row: &Row,
) -> Result<T, InputError>
where
    F: Fn(&str, &str, Decimal, Option<&str>) -> Result<T, String>,
{
    // SAFETY: as in `read_rows`: the spans are checked UTF-8.
    let field = |s: Span| unsafe { std::str::from_utf8_unchecked(&text[s.start as usize..s.end as usize]) };
    let tier = has_tier.then(|| field(row.tier));
    prepare(field(row.account), field(row.asset), row.balance, tier)
        .map_err(|e| InputError::at(path, row.line, e))
}

/// True when `chunk` can be split in place: UTF-8, and no quote or carriage return (whose
/// meaning the csv crate knows).
fn is_plain(chunk: &[u8]) -> bool {
    memchr::memchr2(b'"', b'\r', chunk).is_none() && std::str::from_utf8(chunk).is_ok()
}

/// `s` without the ASCII whitespace at its ends.
fn trim(text: &[u8], s: Span) -> Span {
    let f = &text[s.start as usize..s.end as usize];
    let lead = f.iter().take_while(|b| b.is_ascii_whitespace()).count();
    let kept = f[lead..].trim_ascii_end().len();
    Span { start: s.start + lead as u32, end: s.start + (lead + kept) as u32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Everything a read hands over: each row (its number, fields, balance) and the problem
    /// that ended it.
    type Read = (Vec<(usize, String, String, String, Option<String>)>, Option<String>);

    fn read(text: &[u8], split: Split) -> Read {
        let mut rows = Vec::new();
        let nothing = |_: &str, _: &str, _: Decimal, _: Option<&str>| Ok(());
        let mut n = 0;
        let end = read_rows(
            Path::new("t.csv"),
            text,
            split,
            &mut |_| {},
            nothing,
            |id, asset, balance, tier, ()| {
                n += 1;
                rows.push((
                    n,
                    id.to_string(),
                    asset.to_string(),
                    balance.to_string(),
                    tier.map(str::to_string),
                ));
                Ok(())
            },
        );
        (rows, end.err().map(|e| e.to_string()))
    }

    /// A row: no blank lines (after one, the csv crate numbers the next record by the blank
    /// line: `blank_lines_are_counted`), fields with spaces around them now and then, a balance
    /// that is not a number about one time in `bad_in`, a field count that is wrong and what
    /// only the csv crate reads (a quoted field, a carriage return, a byte that is not UTF-8)
    /// about one time in `odd_in` each.
    fn row_with(bad_in: u32, odd_in: u32) -> impl Strategy<Value = Vec<u8>> {
        let id = "[a-c][0-9]{0,3}";
        let good = "-?[0-9]{1,6}(\\.[0-9]{1,4})?";
        let balance = prop_oneof![
            bad_in => good,
            1 => prop_oneof!["[0-9.e-]{1,4}", Just(String::new())]
        ];
        let pad = prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\t")];
        let tier = prop_oneof![Just("t1"), Just("t2"), Just("default")];
        (id, prop_oneof![Just("ETH"), Just("USDC")], balance, pad, 0..odd_in, tier).prop_map(
            |(id, asset, balance, pad, odd, tier)| {
                let id = if odd == 0 { format!("\"{id},q\"") } else { id };
                let mut r = format!("{pad}{id},{asset}{pad},{balance},{tier}").into_bytes();
                r.extend_from_slice(match odd {
                    1 => b"\"q,x\"",
                    2 => b"\r",
                    3 => b"\xff",
                    4 => b",extra",
                    _ => b"",
                });
                r.push(b'\n');
                r
            },
        )
    }

    fn file_of(rows: Vec<Vec<u8>>) -> Vec<u8> {
        let mut text = b"account, asset,balance,tier\n".to_vec();
        for r in rows {
            text.extend_from_slice(&r);
        }
        text
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Split in place or by the csv crate, a file gives the same rows, lines and first
        /// problem, wherever the chunks end and wherever the csv crate takes over.
        #[test]
        fn splitting_in_place_reads_as_the_csv_crate(rows in proptest::collection::vec(row_with(4, 45), 0..600)) {
            let text = file_of(rows);
            prop_assert_eq!(read(&text, Split::Plain), read(&text, Split::Csv));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// The same on long files that are plain for many chunks (split by both threads, taken
        /// out of order) before a problem or a row only the csv crate reads, if any.
        #[test]
        fn many_plain_chunks_read_as_the_csv_crate(rows in proptest::collection::vec(row_with(3000, 3000), 2000..4000)) {
            let text = file_of(rows);
            prop_assert!(text.len() > 6 * CHUNK_BYTES);
            prop_assert_eq!(read(&text, Split::Plain), read(&text, Split::Csv));
        }
    }

    /// Every row keeps its tier and its line, in every chunk: a plain chunk's batch once lost
    /// the tier column unless it was the batch the header came in.
    #[test]
    fn every_chunk_keeps_the_tier_and_the_line() {
        let mut text = b"account,asset,balance,tier\n".to_vec();
        let n = 20 * CHUNK_BYTES / 20;
        for i in 0..n {
            text.extend_from_slice(format!("a{i},ETH,{i},t{}\n", i % 3).as_bytes());
        }
        text.extend_from_slice(b"b,ETH,zz,t0\n");
        let (rows, end) = read(&text, Split::Plain);
        assert_eq!(rows.len(), n);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(
                (r.1.as_str(), r.4.as_deref()),
                (format!("a{i}").as_str(), Some(format!("t{}", i % 3).as_str()))
            );
        }
        let want = format!("t.csv:{}: balance: 'zz' is not a decimal", n + 2);
        assert!(end.as_deref().is_some_and(|e| e.starts_with(&want)), "{end:?}");
    }

    #[test]
    fn an_empty_file_or_a_bad_header_is_refused_at_line_1() {
        for text in ["", "\n\n", "acct,asset,balance\na,ETH,1\n"] {
            for split in [Split::Plain, Split::Csv] {
                let (rows, end) = read(text.as_bytes(), split);
                assert!(rows.is_empty());
                assert!(
                    end.as_deref().is_some_and(|e| e.starts_with("t.csv:1: header must name")),
                    "{end:?}"
                );
            }
        }
    }

    /// Blank lines are skipped and counted: the problem below is on line 4.
    #[test]
    fn blank_lines_are_counted() {
        let (rows, end) = read(b"account,asset,balance\na,ETH,1\n\nb,ETH,zz\n", Split::Plain);
        assert_eq!(rows.len(), 1);
        assert!(
            end.as_deref().is_some_and(|e| e.starts_with("t.csv:4: balance: 'zz' is not a decimal")),
            "{end:?}"
        );
    }

    #[test]
    fn a_row_with_too_many_or_too_few_fields_names_both_counts() {
        let (rows, end) = read(b"account,asset,balance\na,ETH,1\n\nb,ETH\n", Split::Plain);
        assert_eq!(rows.len(), 1);
        assert_eq!(end.as_deref(), Some("t.csv:4: malformed row: 2 fields where the header has 3"));
    }

    /// A line longer than a chunk is read whole, and a file without a last line end too.
    #[test]
    fn long_lines_and_a_missing_last_line_end() {
        let id = "x".repeat(3 * CHUNK_BYTES);
        let text = format!("account,asset,balance\n{id},ETH,1\nb,USDC,2");
        let (rows, end) = read(text.as_bytes(), Split::Plain);
        assert_eq!(end, None);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].1.len(), rows[1].0, rows[1].3.as_str()), (id.len(), 2, "2"));
    }
}
