//! # Oracle guards: which price updates the keeper may act on
//!
//! A keeper that trusts a bad price liquidates healthy accounts or misses breached ones. Every
//! oracle update passes [`OracleGuard::check`] before it is quantised and sent to the engine:
//!
//! ```text
//!  update (asset, ts, price, source) ──> unknown asset? ──> refuse
//!                                        non-finite / zero / negative? ──> refuse
//!                                        older than the last accepted (or equal)? ──> refuse
//!                                        older than max age against now? ──> refuse (stale)
//!                                        beyond the deviation bound of the last accepted?
//!                                            ──> hold it; accept once confirmed (a second update
//!                                                within bound of the held value, from the same
//!                                                source or another, per Confirm), else drop it
//!                                        ──> accept
//! ```
//!
//! Every refusal and hold is counted in [`GuardCounters`] and logged as a [`GuardEvent`] in a
//! bounded log the operator drains ([`OracleGuard::drain_log`]); nothing is dropped silently.
//! [`OracleGuard::is_stale`] tells the dispatcher that an asset's last accepted price is too old
//! to liquidate on. The policy is written down in `docs/RELIABILITY.md`.
//!
//! The deviation check compares ratios in `f64`: it is a sanity bound on raw oracle numbers,
//! not a risk decision (those stay in exact integers after quantisation).

use std::collections::VecDeque;
use std::fmt;

/// How a held jump is confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// By the next update of any source within the bound of the held value.
    SecondUpdate,
    /// Only by an update from another source within the bound of the held value.
    SecondSource,
}

/// Guard settings.
#[derive(Clone, Debug)]
pub struct GuardConfig {
    /// Per asset: an update older than this against `now` is refused, and an asset whose last
    /// accepted price is older is stale. `None`: no age limit.
    pub max_age_ns: Vec<Option<i64>>,
    /// Largest move from the last accepted price accepted at once, in basis points.
    pub max_jump_bps: u32,
    /// How a jump is confirmed.
    pub confirm: Confirm,
    /// A held jump not confirmed within this time is dropped.
    pub hold_ns: i64,
    /// Entries kept in the event log before the oldest are dropped (and counted).
    pub log_capacity: usize,
}

impl GuardConfig {
    /// The same limits for `assets` assets.
    pub fn uniform(assets: usize, max_age_ns: Option<i64>, max_jump_bps: u32) -> Self {
        GuardConfig {
            max_age_ns: vec![max_age_ns; assets],
            max_jump_bps,
            confirm: Confirm::SecondUpdate,
            hold_ns: 60_000_000_000,
            log_capacity: 1024,
        }
    }
}

/// Why an update was refused or held.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reason {
    /// The asset is not in the table.
    UnknownAsset,
    /// NaN or infinite.
    NonFinite,
    /// Zero or negative.
    NonPositive,
    /// Older than the last accepted update of the asset.
    OutOfOrder {
        /// The last accepted timestamp.
        last_ts: i64,
    },
    /// Same timestamp as the last accepted update (a replay or a duplicate).
    Duplicate,
    /// Older than the asset's maximum age against the caller's clock.
    Stale {
        /// Its age in nanoseconds.
        age_ns: i64,
    },
    /// Beyond the deviation bound; held until confirmed.
    Jump {
        /// The reference (last accepted) price.
        from: f64,
        /// The move in basis points.
        bps: f64,
    },
    /// A held jump that was not confirmed (contradicted, or expired).
    JumpDropped,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::UnknownAsset => write!(f, "unknown asset"),
            Reason::NonFinite => write!(f, "price is not a finite number"),
            Reason::NonPositive => write!(f, "price is zero or negative"),
            Reason::OutOfOrder { last_ts } => write!(f, "timestamp before the last accepted ({last_ts})"),
            Reason::Duplicate => write!(f, "same timestamp as the last accepted update"),
            Reason::Stale { age_ns } => write!(f, "update is {} ms old", age_ns / 1_000_000),
            Reason::Jump { from, bps } => {
                write!(f, "jump of {bps:.0} bps from {from}: held for confirmation")
            }
            Reason::JumpDropped => write!(f, "held jump not confirmed: dropped"),
        }
    }
}

/// What to do with an update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Use this price (the update's own, or the confirmed value).
    Accept(f64),
    /// Do not use it yet.
    Held(Reason),
    /// Do not use it.
    Refused(Reason),
}

/// Counts of every verdict, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardCounters {
    /// Updates accepted straight away.
    pub accepted: u64,
    /// Jumps accepted on confirmation.
    pub confirmed: u64,
    /// Updates held as jumps.
    pub held_jump: u64,
    /// Held jumps dropped (contradicted or expired).
    pub dropped_jump: u64,
    /// Refused: unknown asset.
    pub unknown_asset: u64,
    /// Refused: NaN or infinity.
    pub non_finite: u64,
    /// Refused: zero or negative.
    pub non_positive: u64,
    /// Refused: timestamp going backwards.
    pub out_of_order: u64,
    /// Refused: repeated timestamp.
    pub duplicate: u64,
    /// Refused: too old.
    pub stale: u64,
    /// Log entries dropped because the log was full.
    pub log_dropped: u64,
}

impl GuardCounters {
    /// Updates checked (every update lands in exactly one of accepted, confirmed, held or a
    /// refusal; dropped jumps are counted when they are dropped, on top).
    pub fn checked(&self) -> u64 {
        self.accepted
            + self.confirmed
            + self.held_jump
            + self.unknown_asset
            + self.non_finite
            + self.non_positive
            + self.out_of_order
            + self.duplicate
            + self.stale
    }
}

/// One refusal or hold, for the operator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardEvent {
    /// Asset index.
    pub asset: u16,
    /// The update's timestamp.
    pub ts_ns: i64,
    /// The update's price.
    pub price: f64,
    /// The update's source.
    pub source: u8,
    /// Why.
    pub reason: Reason,
}

#[derive(Clone, Copy, Debug, Default)]
struct Held {
    ts_ns: i64,
    price: f64,
    source: u8,
}

#[derive(Clone, Copy, Debug, Default)]
struct AssetState {
    last: Option<(i64, f64)>,
    held: Option<Held>,
}

/// The oracle guard of one price table.
#[derive(Clone, Debug)]
pub struct OracleGuard {
    cfg: GuardConfig,
    assets: Vec<AssetState>,
    counters: GuardCounters,
    log: VecDeque<GuardEvent>,
}

fn bps(from: f64, to: f64) -> f64 {
    (to - from).abs() / from * 10_000.0
}

impl OracleGuard {
    /// A guard with no price seen yet (the first update of each asset is accepted if sane).
    pub fn new(cfg: GuardConfig) -> Self {
        let n = cfg.max_age_ns.len();
        OracleGuard {
            cfg,
            assets: vec![AssetState::default(); n],
            counters: GuardCounters::default(),
            log: VecDeque::new(),
        }
    }

    /// Starts an asset from a known price (after recovery: the journal's last tick), so the
    /// first update after a restart is checked against it.
    pub fn seed(&mut self, asset: u16, ts_ns: i64, price: f64) {
        if let Some(a) = self.assets.get_mut(asset as usize) {
            a.last = Some((ts_ns, price));
            a.held = None;
        }
    }

    /// Counters so far.
    pub fn counters(&self) -> GuardCounters {
        self.counters
    }

    /// Takes the logged refusals and holds, oldest first.
    pub fn drain_log(&mut self) -> impl Iterator<Item = GuardEvent> + '_ {
        self.log.drain(..)
    }

    /// The last accepted (timestamp, price) of an asset.
    pub fn last(&self, asset: u16) -> Option<(i64, f64)> {
        self.assets.get(asset as usize).and_then(|a| a.last)
    }

    /// True when the asset has an age limit and its last accepted price is older than it (or
    /// it has none): do not liquidate on it.
    pub fn is_stale(&self, asset: u16, now_ns: i64) -> bool {
        match (self.cfg.max_age_ns.get(asset as usize).copied().flatten(), self.last(asset)) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(max), Some((ts, _))) => now_ns.saturating_sub(ts) > max,
        }
    }

    fn note(&mut self, asset: u16, ts_ns: i64, price: f64, source: u8, reason: Reason) {
        if self.log.len() >= self.cfg.log_capacity {
            self.log.pop_front();
            self.counters.log_dropped += 1;
        }
        self.log.push_back(GuardEvent { asset, ts_ns, price, source, reason });
    }

    fn refuse(&mut self, asset: u16, ts_ns: i64, price: f64, source: u8, reason: Reason) -> Verdict {
        let c = &mut self.counters;
        match reason {
            Reason::UnknownAsset => c.unknown_asset += 1,
            Reason::NonFinite => c.non_finite += 1,
            Reason::NonPositive => c.non_positive += 1,
            Reason::OutOfOrder { .. } => c.out_of_order += 1,
            Reason::Duplicate => c.duplicate += 1,
            Reason::Stale { .. } => c.stale += 1,
            Reason::Jump { .. } | Reason::JumpDropped => unreachable!("jumps are held, not refused"),
        }
        self.note(asset, ts_ns, price, source, reason);
        Verdict::Refused(reason)
    }

    /// Checks one update of `asset` at `ts_ns` from `source`, with the caller's clock `now_ns`.
    pub fn check(&mut self, asset: u16, ts_ns: i64, price: f64, source: u8, now_ns: i64) -> Verdict {
        let Some(&st) = self.assets.get(asset as usize) else {
            return self.refuse(asset, ts_ns, price, source, Reason::UnknownAsset);
        };
        if !price.is_finite() {
            return self.refuse(asset, ts_ns, price, source, Reason::NonFinite);
        }
        if price <= 0.0 {
            return self.refuse(asset, ts_ns, price, source, Reason::NonPositive);
        }
        if let Some((last_ts, _)) = st.last {
            if ts_ns < last_ts {
                return self.refuse(asset, ts_ns, price, source, Reason::OutOfOrder { last_ts });
            }
            if ts_ns == last_ts {
                return self.refuse(asset, ts_ns, price, source, Reason::Duplicate);
            }
        }
        if let Some(max) = self.cfg.max_age_ns[asset as usize] {
            let age_ns = now_ns.saturating_sub(ts_ns);
            if age_ns > max {
                return self.refuse(asset, ts_ns, price, source, Reason::Stale { age_ns });
            }
        }
        let bound = self.cfg.max_jump_bps as f64;
        let a = asset as usize;
        // A held jump: confirmed, contradicted, or expired.
        if let Some(h) = st.held {
            let near_held = bps(h.price, price) <= bound;
            let source_ok = match self.cfg.confirm {
                Confirm::SecondUpdate => true,
                Confirm::SecondSource => source != h.source,
            };
            let expired = ts_ns.saturating_sub(h.ts_ns) > self.cfg.hold_ns;
            if near_held && source_ok && !expired {
                self.assets[a] = AssetState { last: Some((ts_ns, price)), held: None };
                self.counters.confirmed += 1;
                return Verdict::Accept(price);
            }
            if !near_held || expired {
                // Contradicted (or too late): the held value is dropped.
                self.assets[a].held = None;
                self.counters.dropped_jump += 1;
                self.note(asset, h.ts_ns, h.price, h.source, Reason::JumpDropped);
            }
        }
        if let Some((_, last)) = self.assets[a].last {
            let moved = bps(last, price);
            if moved > bound {
                let keep = self.assets[a].held.is_some();
                if !keep {
                    self.assets[a].held = Some(Held { ts_ns, price, source });
                }
                let reason = Reason::Jump { from: last, bps: moved };
                self.counters.held_jump += 1;
                self.note(asset, ts_ns, price, source, reason);
                return Verdict::Held(reason);
            }
        }
        self.assets[a].last = Some((ts_ns, price));
        self.assets[a].held = None;
        self.counters.accepted += 1;
        Verdict::Accept(price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn guard(confirm: Confirm) -> OracleGuard {
        let mut cfg = GuardConfig::uniform(2, Some(10 * S), 500);
        cfg.confirm = confirm;
        OracleGuard::new(cfg)
    }

    #[test]
    fn refuses_insane_prices_and_time_going_backwards() {
        let mut g = guard(Confirm::SecondUpdate);
        assert_eq!(g.check(0, S, 100.0, 0, S), Verdict::Accept(100.0));
        assert_eq!(g.check(0, 2 * S, f64::NAN, 0, 2 * S), Verdict::Refused(Reason::NonFinite));
        assert_eq!(g.check(0, 2 * S, f64::INFINITY, 0, 2 * S), Verdict::Refused(Reason::NonFinite));
        assert_eq!(g.check(0, 2 * S, 0.0, 0, 2 * S), Verdict::Refused(Reason::NonPositive));
        assert_eq!(g.check(0, 2 * S, -1.0, 0, 2 * S), Verdict::Refused(Reason::NonPositive));
        assert_eq!(g.check(0, S / 2, 100.0, 0, 2 * S), Verdict::Refused(Reason::OutOfOrder { last_ts: S }));
        assert_eq!(g.check(0, S, 100.0, 0, 2 * S), Verdict::Refused(Reason::Duplicate));
        assert_eq!(g.check(0, 3 * S, 100.0, 0, 20 * S), Verdict::Refused(Reason::Stale { age_ns: 17 * S }));
        assert_eq!(g.check(7, 3 * S, 100.0, 0, 3 * S), Verdict::Refused(Reason::UnknownAsset));
        let c = g.counters();
        assert_eq!(
            (c.accepted, c.non_finite, c.non_positive, c.out_of_order, c.duplicate, c.stale),
            (1, 2, 2, 1, 1, 1)
        );
        assert_eq!(c.unknown_asset, 1);
        assert_eq!(g.drain_log().count(), 8);
    }

    #[test]
    fn a_jump_is_held_until_a_second_update_confirms_it() {
        let mut g = guard(Confirm::SecondUpdate);
        g.check(0, S, 100.0, 0, S);
        assert!(matches!(g.check(0, 2 * S, 50.0, 0, 2 * S), Verdict::Held(Reason::Jump { .. })));
        assert_eq!(g.last(0), Some((S, 100.0)));
        assert_eq!(g.check(0, 3 * S, 51.0, 0, 3 * S), Verdict::Accept(51.0));
        assert_eq!(g.counters().confirmed, 1);
    }

    #[test]
    fn a_contradicted_jump_is_dropped() {
        let mut g = guard(Confirm::SecondUpdate);
        g.check(0, S, 100.0, 0, S);
        g.check(0, 2 * S, 200.0, 0, 2 * S);
        assert_eq!(g.check(0, 3 * S, 101.0, 0, 3 * S), Verdict::Accept(101.0));
        assert_eq!(g.counters().dropped_jump, 1);
        assert!(g.drain_log().any(|e| e.reason == Reason::JumpDropped && e.price == 200.0));
    }

    #[test]
    fn second_source_confirmation_ignores_the_same_source() {
        let mut g = guard(Confirm::SecondSource);
        g.check(0, S, 100.0, 0, S);
        assert!(matches!(g.check(0, 2 * S, 50.0, 1, 2 * S), Verdict::Held(_)));
        assert!(matches!(g.check(0, 3 * S, 50.5, 1, 3 * S), Verdict::Held(_)));
        assert_eq!(g.check(0, 4 * S, 50.2, 2, 4 * S), Verdict::Accept(50.2));
    }

    #[test]
    fn staleness_of_an_asset() {
        let mut g = guard(Confirm::SecondUpdate);
        assert!(g.is_stale(0, S), "no price yet");
        g.check(0, S, 100.0, 0, S);
        assert!(!g.is_stale(0, 5 * S));
        assert!(g.is_stale(0, 12 * S));
    }
}
