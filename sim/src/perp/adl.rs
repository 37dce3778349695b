//! Bankruptcy prices and auto-deleveraging.
//!
//! The bankruptcy prices of an account with deficit `D` (minus its equity at the marks) are the
//! prices at which closing every position leaves it at zero: `D` is shared over the positions
//! pro rata to notional (the last takes the rounding remainder), and position `k` of size `s`
//! closes at `p + ceil(D_k / s)` (long) or `p - ceil(D_k / |s|)` (short), never below zero.
//! Rounding is in the account's favour, so it ends with at most a few quanta of dust, never in
//! debt (unless a short's price would go below zero).
//!
//! Auto-deleveraging closes the bankrupt account's positions against counterparties on the
//! other side, ranked as Binance ranks them: profitable positions first, by
//! `P&L % * effective leverage` (`upnl / |entry value|` times `notional / equity`), then the
//! rest; ties by account index. Each market side's queue is ranked once per step (and again
//! if it runs dry), from the market's list of holders, not from every account. Each is closed at the mark and pays the bankrupt account a
//! haircut `lots * |bankruptcy price - mark|` (what closing at the bankruptcy price costs it),
//! recorded per event. The ranking uses floating point; the money does not.

use super::account::PerpAccount;
use super::{PerpEvent, PerpVenue};

/// Ceiling division (b > 0).
pub fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a.div_euclid(b);
    if a.rem_euclid(b) == 0 { q } else { q + 1 }
}

/// (market, bankruptcy price) of every open position of `a` for a `deficit` (negative: surplus).
pub fn bankruptcy_prices(a: &PerpAccount, marks: &[i128], deficit: i128) -> Vec<(usize, i128)> {
    let open = a.positions.len();
    let total: i128 = a.positions.iter().map(|(k, p)| p.size.abs() * marks[k]).sum();
    let mut left = deficit;
    let mut out = Vec::with_capacity(open);
    for (n, (k, p)) in a.positions.iter().enumerate() {
        let s = p.size;
        let share = if n + 1 == open || total == 0 {
            left
        } else {
            (deficit * (s.abs() * marks[k])).div_euclid(total)
        };
        left -= share;
        let shift = div_ceil(share, s.abs());
        let pb = if s > 0 { marks[k] + shift } else { marks[k] - shift };
        out.push((k, pb.max(0)));
    }
    out
}

/// Binance's ADL ranking score: `P&L % * effective leverage`, negative for losing positions.
fn score(a: &PerpAccount, k: usize, marks: &[i128]) -> f64 {
    let p = &a.positions[k];
    let upnl = p.unrealised(marks[k]) as f64;
    let cost = (p.entry_value.abs() as f64).max(1.0);
    let equity = (a.equity(marks) as f64).max(1.0);
    let lev = (p.size.abs() * marks[k]) as f64 / equity;
    if upnl > 0.0 { upnl / cost * lev } else { upnl / cost }
}

/// One market side's ADL queue: its holders ranked once per step (as the venues publish an ADL
/// queue indicator rather than re-ranking on every close), consumed in order.
#[derive(Clone, Debug, Default)]
pub struct AdlQueue {
    /// The venue's time when it was ranked (None: never).
    pub ranked_at: Option<u64>,
    /// Accounts, best ranked first.
    pub order: Vec<u32>,
    /// The next account to close.
    pub cursor: usize,
}

/// Ranks the holders of side `sign` (long 1, short -1) in market `k`, compacting the market's
/// holder list to the accounts that hold it now.
fn rank(v: &mut PerpVenue, k: usize, sign: i128, marks: &[i128]) {
    let mut holders = std::mem::take(&mut v.holders[k]);
    holders.sort_unstable();
    holders.dedup();
    holders.retain(|&j| v.accounts[j as usize].positions[k].size != 0);
    let mut ranked: Vec<(f64, u32)> = holders
        .iter()
        .filter(|&&j| v.accounts[j as usize].positions[k].size.signum() == sign)
        .map(|&j| (score(&v.accounts[j as usize], k, marks), j))
        .collect();
    ranked.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
    v.holders[k] = holders;
    let q = &mut v.adl_queues[k][(sign < 0) as usize];
    q.order.clear();
    q.order.extend(ranked.iter().map(|&(_, j)| j));
    q.cursor = 0;
    q.ranked_at = Some(v.now);
}

/// Closes every position of bankrupt account `i` against ranked counterparties, each paying a
/// haircut so that `i` recovers `deficit`.
pub fn deleverage(v: &mut PerpVenue, i: usize, deficit: i128) {
    let marks = v.marks();
    for (k, pb) in bankruptcy_prices(&v.accounts[i], &marks, deficit) {
        let s = v.accounts[i].positions[k].size;
        let side = -s.signum(); // the counterparties' side
        let q = (side < 0) as usize;
        let mut ranked_now = false;
        if v.adl_queues[k][q].ranked_at != Some(v.now) {
            rank(v, k, side, &marks);
            ranked_now = true;
        }
        let per_lot = (pb - marks[k]).abs();
        let mut left = s.abs();
        while left > 0 {
            let queue = &v.adl_queues[k][q];
            let Some(&j) = queue.order.get(queue.cursor) else {
                // Run dry: accounts that took this side since the ranking join a new one, once.
                if ranked_now {
                    break;
                }
                rank(v, k, side, &marks);
                ranked_now = true;
                continue;
            };
            let j = j as usize;
            let held = v.accounts[j].positions[k].size;
            if j == i || held.signum() != side {
                v.adl_queues[k][q].cursor += 1;
                continue;
            }
            let qty = left.min(held.abs());
            let d = s.signum() * qty; // the counterparty's trade: buys back a short, sells a long
            v.fill(i, k, -d, marks[k]);
            v.fill(j, k, d, marks[k]);
            let haircut = qty * per_lot;
            let cp = &mut v.accounts[j];
            cp.quote -= haircut;
            cp.adl_paid += haircut;
            let b = &mut v.accounts[i];
            b.quote += haircut;
            b.adl_received += haircut;
            v.ledger.adl_events += 1;
            v.events.push(PerpEvent::Adl {
                bankrupt: i,
                counterparty: j,
                market: k,
                size: d,
                price: pb,
                haircut,
            });
            left -= qty;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perp::account::Role;

    #[test]
    fn bankruptcy_prices_share_the_deficit_by_notional_and_leave_only_dust() {
        // No margin, a long of 3 lots and a short of 7, both losing: equity -300 - 700.
        let mut a = PerpAccount::new(Role::Trader, 0);
        a.fill(0, 3, 1_000);
        a.fill(1, -7, 300);
        let marks = [900, 400];
        let deficit = -a.equity(&marks);
        assert_eq!(deficit, 1_000);
        let pb = bankruptcy_prices(&a, &marks, deficit);
        // Notionals 2 700 and 2 800: shares floor(1 000 * 2 700 / 5 500) = 490 and the rest 510.
        // Long: 900 + ceil(490 / 3) = 1 064; short: 400 - ceil(510 / 7) = 327.
        assert_eq!(pb, vec![(0, 1_064), (1, 327)]);
        for &(k, p) in &pb {
            let s = a.positions[k].size;
            a.fill(k, -s, p);
        }
        assert!(!a.has_position());
        // Realised 3 * 1 064 - 3 000 = 192 and 2 100 - 7 * 327 = -189: 3 quanta of dust, under
        // one per lot.
        assert_eq!(a.quote, 3);
        // A surplus (negative deficit) moves the prices the other way.
        let mut b = PerpAccount::new(Role::Trader, 500);
        b.fill(0, 10, 100);
        assert_eq!(bankruptcy_prices(&b, &[100], -500), vec![(0, 50)]);
    }
}
