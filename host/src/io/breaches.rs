//! Breach events as JSONL: one object a line, written as bitmaps change.
//!
//! ```json
//! {"tick":17,"ts":"2020-03-12T01:10:00.000Z","account":"a42","slot":42,"event":"breach","health":"-12.5","health_factor":0.93}
//! ```
//! `event` is `breach` (health fell below zero), `recovered` (back to zero or above),
//! `at_risk` (stressed health fell below zero) or `safe` (stressed health back up). `health` is
//! in quote units, exact; `health_factor` is for display only.

use std::io::Write;

use serde::Serialize;

/// What changed for an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Spot health fell below zero: liquidatable.
    Breach,
    /// Spot health is back to zero or above.
    Recovered,
    /// Stressed health fell below zero.
    AtRisk,
    /// Stressed health is back to zero or above.
    Safe,
}

/// One line of the breach file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreachEvent {
    /// Index of the tick (0-based) after which this was seen.
    pub tick: u64,
    /// The tick's timestamp, RFC 3339.
    pub ts: String,
    /// Account id.
    pub account: String,
    /// Bitmap slot.
    pub slot: u32,
    /// What changed.
    pub event: EventKind,
    /// Exact spot health in quote units.
    pub health: String,
    /// Collateral value over debt value at spot (display only; null when there is no debt).
    pub health_factor: Option<f64>,
}

/// Writes events, one JSON object a line.
pub struct BreachWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> BreachWriter<W> {
    /// Wraps a sink.
    pub fn new(out: W) -> Self {
        BreachWriter { out, written: 0 }
    }

    /// Writes one event.
    pub fn write(&mut self, e: &BreachEvent) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, e)?;
        self.out.write_all(b"\n")?;
        self.written += 1;
        Ok(())
    }

    /// Events written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and returns the sink.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_object_a_line() {
        let mut w = BreachWriter::new(Vec::new());
        let e = BreachEvent {
            tick: 3,
            ts: "2020-03-12T00:00:00.000Z".into(),
            account: "a".into(),
            slot: 7,
            event: EventKind::AtRisk,
            health: "-1.5".into(),
            health_factor: None,
        };
        w.write(&e).unwrap();
        w.write(&e).unwrap();
        let out = String::from_utf8(w.finish().unwrap()).unwrap();
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["event"], "at_risk");
        assert_eq!(v["slot"], 7);
        assert!(v["health_factor"].is_null());
    }
}
