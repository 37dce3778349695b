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

impl EventKind {
    /// The name the breach file gives it (its serde name).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Breach => "breach",
            EventKind::Recovered => "recovered",
            EventKind::AtRisk => "at_risk",
            EventKind::Safe => "safe",
        }
    }
}

/// Writes events, one JSON object a line.
///
/// The line is put together by hand, byte for byte what `serde_json` writes for a
/// [`BreachRecord`] (the test below checks it on random records): a crash writes millions of
/// events, and the generic serializer cost about 0.6 us an event, a third of the whole job's
/// event side. Strings with nothing to escape (every id and text liqscan writes) are copied;
/// any other goes through `serde_json`.
pub struct BreachWriter<W: Write> {
    out: W,
    written: u64,
    line: Vec<u8>,
}

/// Appends `s` as a JSON string.
fn json_str(b: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\') {
        b.push(b'"');
        b.extend_from_slice(s.as_bytes());
        b.push(b'"');
    } else {
        serde_json::to_writer(&mut *b, s).expect("writing to a Vec");
    }
}

impl<W: Write> BreachWriter<W> {
    /// Wraps a sink.
    pub fn new(out: W) -> Self {
        BreachWriter { out, written: 0, line: Vec::with_capacity(256) }
    }

    /// Writes one event.
    pub fn write(&mut self, e: &BreachEvent) -> std::io::Result<()> {
        self.write_record(&e.as_record())
    }

    /// Writes one borrowed event.
    pub fn write_record(&mut self, e: &BreachRecord<'_>) -> std::io::Result<()> {
        let b = &mut self.line;
        b.clear();
        b.extend_from_slice(b"{\"tick\":");
        b.extend_from_slice(itoa::Buffer::new().format(e.tick).as_bytes());
        b.extend_from_slice(b",\"ts\":");
        json_str(b, e.ts);
        b.extend_from_slice(b",\"account\":");
        json_str(b, e.account);
        b.extend_from_slice(b",\"slot\":");
        b.extend_from_slice(itoa::Buffer::new().format(e.slot).as_bytes());
        b.extend_from_slice(b",\"event\":\"");
        b.extend_from_slice(e.event.name().as_bytes());
        b.extend_from_slice(b"\",\"health\":");
        json_str(b, e.health);
        b.extend_from_slice(b",\"health_factor\":");
        match e.health_factor {
            // serde_json's own float format (and its null for what JSON cannot hold).
            Some(f) if f.is_finite() => b.extend_from_slice(zmij::Buffer::new().format_finite(f).as_bytes()),
            _ => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(b"}\n");
        self.out.write_all(b)?;
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
    use proptest::strategy::Strategy;

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

    proptest::proptest! {
        /// The hand-put line is serde_json's, byte for byte, on any record: strings with
        /// quotes, backslashes, control characters and non-ASCII text, any float (NaN and
        /// infinities too), the extreme integers.
        #[test]
        fn a_line_is_what_serde_json_writes(
            tick: u64,
            ts in "\\PC{0,30}",
            account in proptest::prop_oneof!["[a-z0-9]{1,12}", "\\PC{0,20}", proptest::collection::vec(0u8..0x80, 0..12).prop_map(|v| v.into_iter().map(char::from).collect::<String>())],
            slot: u32,
            kind in 0..4u8,
            health in "-?[0-9]{1,30}(\\.[0-9]{1,10})?",
            hf in proptest::option::of(proptest::prop_oneof![proptest::num::f64::ANY, 0.0..10.0f64]),
        ) {
            let event = [EventKind::Breach, EventKind::Recovered, EventKind::AtRisk, EventKind::Safe][kind as usize];
            let r = BreachRecord { tick, ts: &ts, account: &account, slot, event, health: &health, health_factor: hf };
            let mut w = BreachWriter::new(Vec::new());
            w.write_record(&r).unwrap();
            let mut want = serde_json::to_vec(&r).unwrap();
            want.push(b'\n');
            proptest::prop_assert_eq!(String::from_utf8(w.finish().unwrap()).unwrap(), String::from_utf8(want).unwrap());
        }
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
