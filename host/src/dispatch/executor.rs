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
}

/// Writes each order as one JSON line (to a file, stdout, or any writer) and reports it
/// [`Outcome::Sent`]: a sink has no confirmation to wait for.
pub struct JsonlSink<W: Write> {
    name: String,
    out: W,
    done: Vec<Completion>,
    /// Lines written.
    pub written: u64,
}

impl<W: Write> JsonlSink<W> {
    /// A sink over a writer (wrap files in a `BufWriter`; call [`JsonlSink::flush`] when idle).
    pub fn new(name: impl Into<String>, out: W) -> Self {
        JsonlSink { name: name.into(), out, done: Vec::new(), written: 0 }
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

impl JsonlSink<std::io::BufWriter<std::fs::File>> {
    /// A sink that creates (or truncates) a file.
    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let f = std::fs::File::create(path)?;
        Ok(JsonlSink::new(path.display().to_string(), std::io::BufWriter::new(f)))
    }
}

impl<W: Write> Executor for JsonlSink<W> {
    fn name(&self) -> &str {
        &self.name
    }

    fn submit(&mut self, order: &LiquidationOrder) -> Result<(), SubmitError> {
        let io = |source| SubmitError::Io { executor: self.name.clone(), order: order.id, source };
        serde_json::to_writer(&mut self.out, order).map_err(|e| io(e.into()))?;
        self.out.write_all(b"\n").map_err(io)?;
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
}
