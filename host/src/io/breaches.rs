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

impl BreachEvent {
    /// The same event, borrowed.
    pub fn as_record(&self) -> BreachRecord<'_> {
        BreachRecord {
            tick: self.tick,
            ts: &self.ts,
            account: &self.account,
            slot: self.slot,
            event: self.event,
            health: &self.health,
            health_factor: self.health_factor,
        }
    }
}

/// One line of the breach file with its text borrowed: what a replay hands out per event, so
/// that writing a million events allocates nothing per event. Serialises exactly as
/// [`BreachEvent`] does.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BreachRecord<'a> {
    /// Index of the tick (0-based) after which this was seen.
    pub tick: u64,
    /// The tick's timestamp, RFC 3339.
    pub ts: &'a str,
    /// Account id.
    pub account: &'a str,
    /// Bitmap slot.
    pub slot: u32,
    /// What changed.
    pub event: EventKind,
    /// Exact spot health in quote units.
    pub health: &'a str,
    /// Collateral value over debt value at spot (display only; null when there is no debt).
    pub health_factor: Option<f64>,
}

impl BreachRecord<'_> {
    /// The same event, owned.
    pub fn to_event(&self) -> BreachEvent {
        BreachEvent {
            tick: self.tick,
            ts: self.ts.to_string(),
            account: self.account.to_string(),
            slot: self.slot,
            event: self.event,
            health: self.health.to_string(),
            health_factor: self.health_factor,
        }
    }
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
        self.write_record(&e.as_record())
    }

    /// Writes one borrowed event.
    pub fn write_record(&mut self, e: &BreachRecord<'_>) -> std::io::Result<()> {
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

    #[test]
    fn a_record_writes_the_same_line_as_its_event() {
        for hf in [None, Some(0.93), Some(1.0903303540921108), Some(1e-300)] {
            let e = BreachEvent {
                tick: u64::MAX,
                ts: "2025-10-10T21:00:03.000Z".into(),
                account: "a \"quoted\" \\ id\u{1}é".into(),
                slot: u32::MAX,
                event: EventKind::Recovered,
                health: "-123456789012345678901234.5".into(),
                health_factor: hf,
            };
            let (mut a, mut b) = (BreachWriter::new(Vec::new()), BreachWriter::new(Vec::new()));
            a.write(&e).unwrap();
            b.write_record(&e.as_record()).unwrap();
            let line = a.finish().unwrap();
            assert_eq!(line, b.finish().unwrap());
            let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(v["account"], e.account.as_str());
            assert_eq!(e.as_record().to_event(), e);
        }
    }
}
