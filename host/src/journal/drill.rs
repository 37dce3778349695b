//! A deterministic journal workload for tests, the kill -9 drill, the soak and the bench.
//!
//! The next record is a pure function of the seed and the state it applies to, so a process
//! killed at any point and restarted from its recovered state carries on with exactly the
//! records a run that never stopped would have written, and a checker can rebuild the expected
//! state for any record count.

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::record::{OrderRecord, OrderState, Record};
use super::state::DurableState;

/// The workload: book shape and seed.
#[derive(Clone, Copy, Debug)]
pub struct Drill {
    /// Seed.
    pub seed: u64,
    /// Account slots.
    pub slots: usize,
    /// Assets.
    pub assets: usize,
}

/// A random price entry: spot asset side in 1..=10^6, liability at or above it, stressed 10%
/// out each way.
pub fn random_price(rng: &mut impl Rng) -> PriceEntry {
    let a: u32 = rng.gen_range(1..=1_000_000);
    let l = a + rng.gen_range(0..=a / 100);
    PriceEntry {
        spot: QuotedPrice { asset: a, liability: l },
        stressed: QuotedPrice { asset: a - a / 10, liability: l + l / 10 },
    }
}

impl Drill {
    /// The record that follows `state` (it becomes record `state.seq + 1`).
    pub fn next(&self, state: &DurableState) -> Record {
        let i = state.seq + 1;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // An order journaled as pending is sent, and its send journaled, before anything else.
        if let Some(t) = state.orders.values().find(|t| t.state == OrderState::Pending) {
            return Record::OrderSent { id: t.order.id, attempt: t.order.attempt };
        }
        let ts_ns = i as i64 * 1_000_000;
        let r: f64 = rng.r#gen();
        let slot = rng.gen_range(0..self.slots) as u32;
        let held = state.accounts[slot as usize].as_ref().map(|a| a.account);
        if r < 0.08 {
            // A tick from a live stream, now and then after a gap in its frame numbers.
            let source = rng.gen_range(1..=2u8);
            let seq = state.live_seq.get(&source).copied().unwrap_or(0) + rng.gen_range(1..=2);
            let asset = rng.gen_range(0..self.assets) as u16;
            let record = Box::new(Record::Tick { ts_ns, asset, price: random_price(&mut rng) });
            Record::Live { source, seq, record }
        } else if r < 0.40 {
            let asset = rng.gen_range(0..self.assets) as u16;
            Record::Tick { ts_ns, asset, price: random_price(&mut rng) }
        } else if r < 0.43 {
            Record::BatchTick { ts_ns, prices: (0..self.assets).map(|_| random_price(&mut rng)).collect() }
        } else if r < 0.70 || (r < 0.80 && held.is_none()) {
            let n = rng.gen_range(1..=self.assets.min(4));
            let mut assets: Vec<u16> = (0..self.assets as u16).collect();
            let mut terms = Vec::with_capacity(n);
            for k in 0..n {
                let j = rng.gen_range(k..assets.len());
                assets.swap(k, j);
                // Never zero: the journal refuses a zero term (leave it out), and the drill
                // writes only records that apply.
                let magnitude = rng.gen_range(1..=1_000_000);
                let coeff = if rng.r#gen() { magnitude } else { -magnitude };
                terms.push(Coeff { asset: assets[k], coeff });
            }
            Record::Upsert { account: held.unwrap_or(i), slot, terms }
        } else if r < 0.80 {
            Record::Remove { account: held.expect("checked above"), slot }
        } else if r < 0.83 {
            Record::Param {
                name: format!("stress.{}", rng.gen_range(0..4)),
                value: format!("0.{}", rng.gen_range(1..99)),
            }
        } else if let (true, Some(account)) = (r < 0.93, held) {
            let id = state.next_order_id;
            let repay: i128 = rng.gen_range(1..=i64::MAX) as i128 * 1000;
            let body = format!("{{\"repay\":\"{repay}\"}}");
            Record::OrderPending(OrderRecord { id, account, slot, attempt: 1, episode: 0, ordinal: 0, body })
        } else if let Some((&id, _)) = state.orders.iter().find(|(_, t)| t.state == OrderState::Sent) {
            Record::OrderDone { id, outcome: "filled".into() }
        } else {
            let asset = rng.gen_range(0..self.assets) as u16;
            Record::Tick { ts_ns, asset, price: random_price(&mut rng) }
        }
    }

    /// The state after the first `n` records of this workload, built in memory.
    pub fn expected(&self, n: u64) -> DurableState {
        let mut s = DurableState::new(self.slots, self.assets);
        while s.seq < n {
            let r = self.next(&s);
            let seq = s.seq + 1;
            s.apply(seq, &r).expect("the drill writes only records that apply");
        }
        s
    }
}
