//! The oracle model: what price the venue sees, and when.
//!
//! Every second the oracle looks at the market price of `delay_secs` ago (the time a price
//! takes from the market to the chain). It publishes that price when `heartbeat_secs` have
//! passed since its last update, or when it differs from the last published price by at least
//! `deviation` (a fraction, e.g. 0.005 for 0.5%), like push oracles do. The venue halts
//! liquidations while the last update is older than `max_staleness_secs`.

use serde::{Deserialize, Serialize};

/// Oracle settings (per scenario; one oracle per asset with the same settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OracleConfig {
    /// Longest time between updates, seconds.
    pub heartbeat_secs: f64,
    /// Relative move that triggers an update.
    pub deviation: f64,
    /// Delay from the market to the published price, seconds.
    pub delay_secs: f64,
    /// Age beyond which the venue halts liquidations, seconds (0: never).
    pub max_staleness_secs: f64,
}

impl Default for OracleConfig {
    fn default() -> Self {
        OracleConfig { heartbeat_secs: 3600.0, deviation: 0.005, delay_secs: 0.0, max_staleness_secs: 0.0 }
    }
}

/// One asset's oracle.
#[derive(Clone, Debug)]
pub struct Oracle {
    cfg: OracleConfig,
    history: std::collections::VecDeque<(f64, f64)>,
    /// Last published price.
    pub published: f64,
    /// Time of the last update, seconds.
    pub updated_s: f64,
    /// Updates so far.
    pub updates: u64,
}

impl Oracle {
    /// An oracle that has just published `price` at time `t`.
    pub fn new(cfg: OracleConfig, t: f64, price: f64) -> Self {
        let mut history = std::collections::VecDeque::new();
        history.push_back((t, price));
        Oracle { cfg, history, published: price, updated_s: t, updates: 0 }
    }

    /// Observes the market price at `t`; returns the new published price if the oracle updates.
    pub fn observe(&mut self, t: f64, market: f64) -> Option<f64> {
        self.history.push_back((t, market));
        let seen_at = t - self.cfg.delay_secs;
        // The price seen is the latest market price at or before `seen_at`.
        while self.history.len() > 1 && self.history[1].0 <= seen_at + 1e-9 {
            self.history.pop_front();
        }
        let seen = self.history[0].1;
        if self.history[0].0 > seen_at + 1e-9 {
            return None;
        }
        let moved = (seen / self.published - 1.0).abs() >= self.cfg.deviation;
        let due = t - self.updated_s >= self.cfg.heartbeat_secs;
        if (moved || due) && seen > 0.0 {
            self.published = seen;
            self.updated_s = t;
            self.updates += 1;
            Some(seen)
        } else {
            None
        }
    }

    /// Seconds since the last update.
    pub fn age(&self, t: f64) -> f64 {
        t - self.updated_s
    }

    /// True when the venue should halt liquidations.
    pub fn stale(&self, t: f64) -> bool {
        self.cfg.max_staleness_secs > 0.0 && self.age(t) > self.cfg.max_staleness_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deviation_heartbeat_and_delay() {
        let cfg =
            OracleConfig { heartbeat_secs: 10.0, deviation: 0.01, delay_secs: 2.0, max_staleness_secs: 5.0 };
        let mut o = Oracle::new(cfg, 0.0, 100.0);
        assert_eq!(o.observe(1.0, 100.5), None);
        // 102 at t=2 is seen at t=4 (delay 2).
        assert_eq!(o.observe(2.0, 102.0), None);
        assert_eq!(o.observe(3.0, 102.0), None);
        assert_eq!(o.observe(4.0, 102.0), Some(102.0));
        assert!(!o.stale(9.0) && o.stale(9.5));
        for t in 5..14 {
            assert_eq!(o.observe(t as f64, 102.5), None, "t={t}");
        }
        // Heartbeat: 10 s after t=4.
        assert_eq!(o.observe(14.0, 102.5), Some(102.5));
        assert_eq!(o.updates, 2);
    }
}
