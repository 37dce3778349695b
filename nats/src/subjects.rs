//! Subject and stream layout. A venue is a namespace: every subject and stream of a venue
//! carries its name.
//!
//! | what                      | subject                        | stream                      |
//! |---------------------------|--------------------------------|-----------------------------|
//! | ticks (inputs)            | `liqscan.<venue>.ticks`        | `liqscan_<venue>_inputs`    |
//! | account deltas (inputs)   | `liqscan.<venue>.accounts`     | `liqscan_<venue>_inputs`    |
//! | liquidation orders        | `liqscan.<venue>.orders`       | `liqscan_<venue>_orders`    |
//! | candidates (events out)   | `liqscan.<venue>.candidates`   | `liqscan_<venue>_candidates`|
//!
//! Ticks and account deltas share one stream so that its sequence numbers order every delta
//! against every tick, as a keeper must apply them (a delta before or after a price move
//! breaches different accounts). Each input message is one feed frame in the wire format of
//! `docs/WIRE_FORMAT.md` (ticks on `.ticks`; upserts and removes on `.accounts`), signed
//! when the feed has a shared secret; the keeper numbers it by its stream sequence.
//!
//! Venue names are 1 to 64 characters of `A-Z a-z 0-9 _ -` (they appear in subjects, where
//! `.`, `*`, `>` and spaces have meanings, and in stream names).

use std::fmt;

/// A validated venue name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Venue(String);

/// A venue name that cannot be used in subjects.
#[derive(Debug, thiserror::Error)]
#[error("venue name {0:?}: use 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'")]
pub struct BadVenue(pub String);

impl Venue {
    /// Checks a venue name.
    pub fn new(name: &str) -> Result<Self, BadVenue> {
        let ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok { Ok(Venue(name.to_string())) } else { Err(BadVenue(name.to_string())) }
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Subject of the venue's ticks.
    pub fn ticks_subject(&self) -> String {
        format!("liqscan.{}.ticks", self.0)
    }

    /// Subject of the venue's account deltas (upserts and removes).
    pub fn accounts_subject(&self) -> String {
        format!("liqscan.{}.accounts", self.0)
    }

    /// Stream holding the venue's ticks and account deltas, in one order.
    pub fn inputs_stream(&self) -> String {
        format!("liqscan_{}_inputs", self.0)
    }

    /// Subject of the venue's orders.
    pub fn orders_subject(&self) -> String {
        format!("liqscan.{}.orders", self.0)
    }

    /// Stream holding the venue's orders.
    pub fn orders_stream(&self) -> String {
        format!("liqscan_{}_orders", self.0)
    }

    /// Subject of the venue's candidates.
    pub fn candidates_subject(&self) -> String {
        format!("liqscan.{}.candidates", self.0)
    }

    /// Stream holding the venue's candidates.
    pub fn candidates_stream(&self) -> String {
        format!("liqscan_{}_candidates", self.0)
    }
}

impl fmt::Display for Venue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn venue_names_that_would_break_subjects_are_refused() {
        for bad in ["", "a.b", "a*", ">", "a b", "é", &"x".repeat(65)] {
            assert!(Venue::new(bad).is_err(), "{bad:?} accepted");
        }
        let v = Venue::new("perp-eth_1").unwrap();
        assert_eq!(v.orders_subject(), "liqscan.perp-eth_1.orders");
        assert_eq!(v.orders_stream(), "liqscan_perp-eth_1_orders");
        assert_eq!(v.candidates_subject(), "liqscan.perp-eth_1.candidates");
        assert_eq!(v.ticks_subject(), "liqscan.perp-eth_1.ticks");
        assert_eq!(v.accounts_subject(), "liqscan.perp-eth_1.accounts");
        assert_eq!(v.inputs_stream(), "liqscan_perp-eth_1_inputs");
    }
}
