//! Executors: where orders go. One trait; the simulated venue, a JSONL sink and a TCP client
//! implement it, so the keeper's dispatch code is the same against all of them.

use std::io::Write;

use super::order::{Completion, LiquidationOrder, Outcome};

/// Why an executor did not accept an order for sending. The dispatcher backs off the account
/// and tries again; it never loses the account.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The executor's queue is full.
    #[error("executor '{0}' is busy (its queue is full)")]
    Busy(String),
    /// The executor cannot reach its destination (connection refused or down).
    #[error("executor '{executor}' is unavailable: {detail}")]
    Unavailable {
        /// Executor name.
        executor: String,
        /// What failed.
        detail: String,
    },
    /// Writing the order failed.
    #[error("executor '{executor}' could not write order {order}: {source}")]
    Io {
        /// Executor name.
        executor: String,
        /// Order id.
        order: u64,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Takes orders and reports what became of them.
pub trait Executor {
    /// Short name for logs and errors.
    fn name(&self) -> &str;
    /// Hands an order over. Must not block for long: queue it, or refuse with [`SubmitError`].
    fn submit(&mut self, order: &LiquidationOrder) -> Result<(), SubmitError>;
    /// Appends the completions that arrived since the last call.
    fn poll(&mut self, out: &mut Vec<Completion>);
    /// Breach episodes a restarted keeper continues (an executor backed by a journal knows
    /// them); none by default.
    fn resume_points(&self) -> Vec<super::dispatcher::ResumePoint> {
        Vec::new()
    }
    /// What the executor's connection refused or went through, for the metrics; an executor
    /// without a connection has nothing to say (all zero).
    fn link_stats(&self) -> LinkStats {
        LinkStats::default()
    }
}

/// Hands `order` to an executor's I/O thread through its bounded queue, without blocking
/// (the TCP and NATS executors): a full queue is [`SubmitError::Busy`], a stopped thread
/// [`SubmitError::Unavailable`].
pub fn hand_to_io_thread(
    executor: &str,
    tx: &crossbeam::channel::Sender<LiquidationOrder>,
    order: &LiquidationOrder,
) -> Result<(), SubmitError> {
    use crossbeam::channel::TrySendError;
    tx.try_send(order.clone()).map_err(|e| match e {
        TrySendError::Full(_) => SubmitError::Busy(executor.into()),
        TrySendError::Disconnected(_) => {
            SubmitError::Unavailable { executor: executor.into(), detail: "I/O thread stopped".into() }
        }
    })
}

/// Totals of an executor's connection to the venue side (TCP executor), copied into the
/// metrics by the dispatch thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Connections made.
    pub connects: u64,
    /// Answer lines that did not parse.
    pub bad_lines: u64,
    /// Answer lines over the length limit (each closed its connection).
    pub long_lines: u64,
    /// Answer lines failing authentication (each closed its connection).
    pub auth_failures: u64,
}

/// Keeps every order in memory and answers each [`Outcome::Sent`] at the next poll: orders for
/// the program that runs the keeper (a test, a simulation, a service in the same process).
/// Clones share the orders, so the program keeps one and hands the keeper another.
#[derive(Clone, Debug, Default)]
pub struct InMemory {
    orders: std::sync::Arc<std::sync::Mutex<Vec<LiquidationOrder>>>,
    done: Vec<Completion>,
}

impl InMemory {
    /// An executor holding no order yet.
    pub fn new() -> Self {
        InMemory::default()
    }

    /// The orders taken so far, in order.
    pub fn orders(&self) -> Vec<LiquidationOrder> {
        self.orders.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Executor for InMemory {
    fn name(&self) -> &str {
        "in-memory"
    }

    fn submit(&mut self, order: &LiquidationOrder) -> Result<(), SubmitError> {
        self.orders.lock().unwrap_or_else(|e| e.into_inner()).push(order.clone());
        self.done.push(Completion { id: order.id, attempt: order.attempt, outcome: Outcome::Sent });
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.done);
    }
}

/// Writes each order as one JSON line (to a file, stdout, or any writer) and reports it
/// [`Outcome::Sent`]: a sink has no confirmation to wait for.
///
/// Each line is built in a buffer and handed to the writer in one `write_all`, so over an
/// unbuffered file ([`JsonlSink::create`], [`JsonlSink::append`]) an order that `submit`
/// accepted is in the kernel (one `write(2)`) before it returns: a kill -9 right after cannot
/// lose it, and a journal that records it as sent tells the truth.
pub struct JsonlSink<W: Write> {
    name: String,
    out: W,
    /// The file to `fdatasync` after each line (see [`JsonlSink::sync_each_line`]).
    sync: Option<std::fs::File>,
    line: Vec<u8>,
    done: Vec<Completion>,
    /// Lines written.
    pub written: u64,
}

impl<W: Write> JsonlSink<W> {
    /// A sink over a writer (a buffered writer loses its unflushed lines at a crash; call
    /// [`JsonlSink::flush`] when idle).
    pub fn new(name: impl Into<String>, out: W) -> Self {
        JsonlSink {
            name: name.into(),
            out,
            sync: None,
            line: Vec::with_capacity(512),
            done: Vec::new(),
            written: 0,
        }
    }

    /// Flushes the writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl JsonlSink<std::io::Stdout> {
    /// A sink to standard output.
    pub fn stdout() -> Self {
        JsonlSink::new("stdout", std::io::stdout())
    }
}

impl JsonlSink<std::fs::File> {
    /// Makes each line durable (`fdatasync`) before `submit` returns, so an order a journal
    /// with the `always` fsync policy records as sent survives a power cut too, not only a
    /// kill -9. Costs a disk flush per order.
    pub fn sync_each_line(mut self) -> std::io::Result<Self> {
        self.sync = Some(self.out.try_clone()?);
        Ok(self)
    }

    /// A sink that creates (or truncates) a file; one `write(2)` per order.
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let f = std::fs::File::create(path)?;
        Ok(JsonlSink::new(path.display().to_string(), f))
    }

    /// A sink that appends to a file (created if missing), for a keeper restarted over its
    /// journal: the orders of earlier runs stay. One `write(2)` per order, `O_APPEND`. A line
    /// cut by a crash of the earlier run (a full disk, a power cut) is ended with a newline
    /// first, so the next order starts its own line.
    pub fn append(path: &std::path::Path) -> std::io::Result<Self> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::OpenOptions::new().create(true).append(true).read(true).open(path)?;
        let len = f.seek(SeekFrom::End(0))?;
        if len > 0 {
            f.seek(SeekFrom::Start(len - 1))?;
            let mut last = [0u8];
            f.read_exact(&mut last)?;
            if last[0] != b'\n' {
                f.write_all(b"\n")?;
            }
        }
        Ok(JsonlSink::new(path.display().to_string(), f))
    }
}

impl<W: Write> Executor for JsonlSink<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn submit(&mut self, order: &LiquidationOrder) -> Result<(), SubmitError> {
        let io = |source| SubmitError::Io { executor: self.name.clone(), order: order.id, source };
        self.line.clear();
        serde_json::to_writer(&mut self.line, order).map_err(|e| io(e.into()))?;
        self.line.push(b'\n');
        // One write: the whole line reaches the file or the call fails.
        self.out.write_all(&self.line).map_err(io)?;
        self.out.flush().map_err(io)?;
        if let Some(f) = &self.sync {
            f.sync_data().map_err(io)?;
        }
        self.written += 1;
        self.done.push(Completion { id: order.id, attempt: order.attempt, outcome: Outcome::Sent });
        Ok(())
    }

    fn poll(&mut self, out: &mut Vec<Completion>) {
        out.append(&mut self.done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::order::{Leg, OrderKind};

    #[test]
    fn jsonl_sink_writes_one_line_per_order_and_round_trips() {
        let mut sink = JsonlSink::new("mem", Vec::new());
        let order = LiquidationOrder {
            id: 9,
            account: 1 << 40,
            slot: 3,
            attempt: 1,
            episode: 0,
            ordinal: 1,
            kind: OrderKind::Direct {
                legs: vec![Leg { debt_asset: 1, repay: i128::from(i64::MAX) * 4, collateral_asset: 0 }],
                close_all: false,
            },
            value_at_risk: 123,
            created_ns: 5,
            prebuilt: false,
        };
        sink.submit(&order).unwrap();
        sink.submit(&LiquidationOrder { id: 10, kind: OrderKind::Kick, ..order.clone() }).unwrap();
        let mut done = Vec::new();
        sink.poll(&mut done);
        assert_eq!(done.len(), 2);
        assert!(done.iter().all(|c| c.outcome == Outcome::Sent));
        let text = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: LiquidationOrder = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(back, order);
        assert!(lines[1].contains("\"kick\""));
    }

    #[test]
    fn append_keeps_earlier_orders_and_ends_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.jsonl");
        let order = LiquidationOrder {
            id: 1,
            account: 7,
            slot: 7,
            attempt: 1,
            episode: 0,
            ordinal: 1,
            kind: OrderKind::Kick,
            value_at_risk: 1,
            created_ns: 0,
            prebuilt: false,
        };
        let mut a = JsonlSink::create(&path).unwrap();
        a.submit(&order).unwrap();
        drop(a);
        // An earlier run cut in the middle of its second line.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"id\":2,").unwrap();
        let mut b = JsonlSink::append(&path).unwrap().sync_each_line().unwrap();
        b.submit(&LiquidationOrder { id: 3, ..order.clone() }).unwrap();
        // Unbuffered: the line is in the file before the sink is dropped or flushed.
        let text = std::fs::read_to_string(&path).unwrap();
        let ids: Vec<u64> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<LiquidationOrder>(l).ok())
            .map(|o| o.id)
            .collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(text.lines().count(), 3, "the cut line stays, on its own line: {text:?}");
        drop(b);
        // create truncates.
        JsonlSink::create(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
