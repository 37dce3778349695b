//! Which accounts a step must look at: a margin watch, so a step costs the accounts near their
//! line, not every account.
//!
//! An account found healthy has a slack `equity * 10^6 - MM_scaled >= 0`. While its quote
//! balance and positions do not change, only the marks move it: a move of `dp` in market `k`
//! changes its equity by at most `|s_k| dp` and its maintenance margin by at most
//! `rate_max_k |s_k| dp` (the brackets are marginal, so the margin grows with notional at most
//! at the top bracket's rate). Each market keeps its marks' running total variation
//! `V_k = sum |mark_t - mark_t-1|`; the slack is shared over the positions by notional, and
//! position `k` is safe while `V_k` has grown by at most
//! `floor(slack_k / ((10^6 + rate_max_k) |s_k|))`. That bound goes into a min-heap per market;
//! when `V_k` passes it the account is checked again. The shares sum to at most the slack, so an
//! account none of whose bounds was passed cannot be under maintenance: skipping it changes
//! nothing.
//!
//! Everything else that moves an account (a fill, an ADL haircut, a margin transfer) marks it
//! for a check; funding marks every account (a full pass, once per funding interval); accounts
//! in breach or in a partial liquidation's cooldown are checked every step, as before.
//! Accounts are checked in index order within a step, and one touched by the pass ahead of its
//! index joins the same pass, so a step does exactly what a check of every account would
//! ([`PerpVenue::check_every_account`] does that, and a test compares the two).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::tiers::PPM;
use super::{PerpVenue, liquidation};

/// A bound on a market's variation past which an armed account must be checked:
/// (bound, account, the account's arming generation).
type Bound = Reverse<(i128, u32, u32)>;

/// The watch's state.
#[derive(Clone, Debug, Default)]
pub struct MarginWatch {
    /// Running total variation of each market's mark, quote quanta per lot.
    pub variation: Vec<i128>,
    /// Per market, the bounds of armed accounts, lowest first.
    bounds: Vec<BinaryHeap<Bound>>,
    /// Bounds alive after the last compaction, per market (to decide when to compact).
    compacted_len: Vec<usize>,
    /// Per account, its arming generation; `armed[i]` says whether its current bounds count.
    generation: Vec<u32>,
    armed: Vec<bool>,
    /// Accounts to check in the next step (touched, in breach, or cooling down).
    pending: Vec<u32>,
    /// This step's accounts still to check, lowest index first.
    queue: BinaryHeap<Reverse<u32>>,
    queued: Vec<bool>,
    /// The account the pass is at (accounts touched above it join this pass).
    cursor: Option<usize>,
    /// The next pass checks every account (funding was paid, or nothing is armed yet).
    pub full: bool,
}

impl MarginWatch {
    /// A watch over `markets` markets.
    pub fn new(markets: usize) -> Self {
        MarginWatch {
            variation: vec![0; markets],
            bounds: vec![BinaryHeap::new(); markets],
            compacted_len: vec![0; markets],
            ..Default::default()
        }
    }

    /// Room for account `i`.
    pub fn open(&mut self, i: usize) {
        if self.generation.len() <= i {
            self.generation.resize(i + 1, 0);
            self.armed.resize(i + 1, false);
            self.queued.resize(i + 1, false);
        }
    }

    /// Account `i`'s balance or positions changed: check it in this pass if the pass has not
    /// reached it yet, else in the next.
    pub fn touch(&mut self, i: usize) {
        if i < 2 {
            return; // the book and the vault are never liquidated
        }
        self.armed[i] = false;
        match self.cursor {
            Some(c) if i > c => self.enqueue(i),
            _ => self.pending.push(i as u32),
        }
    }

    fn enqueue(&mut self, i: usize) {
        if !self.queued[i] {
            self.queued[i] = true;
            self.queue.push(Reverse(i as u32));
        }
    }
}

/// One liquidation pass: the accounts the watch names (or all of them), in index order.
pub fn pass(v: &mut PerpVenue) {
    let n = v.accounts.len();
    let w = &mut v.watch;
    w.open(n - 1);
    if w.full || v.check_every_account {
        w.full = false;
        w.pending.clear();
        for i in 2..n {
            if v.accounts[i].has_position() {
                w.enqueue(i);
            }
        }
    } else {
        for i in std::mem::take(&mut w.pending) {
            w.enqueue(i as usize);
        }
        for k in 0..w.bounds.len() {
            let vk = w.variation[k];
            while let Some(&Reverse((bound, i, g))) = w.bounds[k].peek() {
                if bound >= vk {
                    break;
                }
                w.bounds[k].pop();
                let i = i as usize;
                if w.armed[i] && w.generation[i] == g {
                    w.armed[i] = false;
                    w.enqueue(i);
                }
            }
        }
    }
    while let Some(Reverse(i)) = v.watch.queue.pop() {
        let i = i as usize;
        v.watch.queued[i] = false;
        v.watch.cursor = Some(i);
        liquidation::liquidate(v, i);
        arm(v, i);
    }
    v.watch.cursor = None;
}

/// After account `i` was checked: bounds if it is healthy and not cooling down, else a check
/// in the next step.
fn arm(v: &mut PerpVenue, i: usize) {
    let a = &v.accounts[i];
    if !a.has_position() {
        v.watch.armed[i] = false;
        return;
    }
    let slack = v.equity(i) * PPM - v.maintenance_scaled(i);
    if slack < 0 || a.last_liquidation.is_some() {
        v.watch.armed[i] = false;
        v.watch.pending.push(i as u32);
        return;
    }
    let w = &mut v.watch;
    w.generation[i] = w.generation[i].wrapping_add(1);
    w.armed[i] = true;
    let g = w.generation[i];
    let total: i128 = a.positions.iter().map(|(k, p)| p.size.abs() * v.markets[k].mark).sum();
    for (k, p) in a.positions.iter() {
        // The slack's share by notional, an integer: rounded down with a margin, so the shares
        // never sum to more than the slack (floating point sizes them, never the money).
        let notional = p.size.abs() * v.markets[k].mark;
        let share = if a.positions.len() == 1 || total <= 0 {
            slack
        } else {
            let f = slack as f64 * (notional as f64 / total as f64) * (1.0 - 1e-9);
            (f.floor() as i128).clamp(0, slack)
        };
        let lip = PPM + v.markets[k].params.tiers.tiers().last().map_or(0, |t| t.mmr_ppm as i128);
        let allowed = share / (lip * p.size.abs());
        w.bounds[k].push(Reverse((w.variation[k] + allowed, i as u32, g)));
        // Stale bounds (accounts re-armed or touched since) are dropped now and then.
        if w.bounds[k].len() > 2 * w.compacted_len[k] + 1024 {
            let (generation, armed) = (&w.generation, &w.armed);
            w.bounds[k].retain(|&Reverse((_, j, g))| armed[j as usize] && generation[j as usize] == g);
            w.compacted_len[k] = w.bounds[k].len();
        }
    }
}
