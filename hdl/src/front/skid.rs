//! Skid buffer (a full-throughput register slice) on a valid/ready stream of 64-bit beats: both
//! directions leave through registers, so the sink's `ready` reaches no register of the source
//! in the same cycle.
//!
//! ```text
//!  in_valid/in_data ──> [ skid ] ──┐
//!          in_ready <── !skid_v    └─> [ main ] ──> out_valid/out_data
//!                                                   out_ready
//! ```
//!
//! Between the event packer and the event writer of the card (`card.rs`): the writer's
//! `evt_ready` follows the AXI write channel's `wready` and the ring-full check, and without
//! the slice it enabled the packer's eight 64-bit entry registers in the same cycle. Between
//! the command decoder and the core (a wider beat, [`Skid`]): the core's `cmd_ready` follows
//! its `state` through its command decode, and without the slice it enabled the decoder's
//! term shift registers (`tc0..tc7`, `ta`) in the same cycle.
//!
//! Cycle behaviour: a beat taken at an edge is on `out_data` from that edge on; one beat per
//! cycle in steady state; `in_ready` is low only while both registers hold a beat (the sink
//! held the main one while the source sent another). Beats leave in order, none lost or
//! repeated.
//!
//! Inputs: `clock`, `reset` (synchronous: both registers empty), `in_valid`, `in_data`,
//! `out_ready`. Outputs: `in_ready`, `out_valid`, `out_data`. Golden model: [`SkidModel`].

use std::collections::VecDeque;

use rust_hdl::prelude::*;

/// Golden model of [`SkidBuffer`]: a queue of at most two beats.
#[derive(Clone, Debug, Default)]
pub struct SkidModel {
    /// Beats held, oldest first.
    pub held: VecDeque<u64>,
}

impl SkidModel {
    /// `in_ready` in the current cycle.
    pub fn in_ready(&self) -> bool {
        self.held.len() < 2
    }

    /// `out_valid` and `out_data` in the current cycle.
    pub fn out(&self) -> Option<u64> {
        self.held.front().copied()
    }

    /// One edge: the source offers `input` (taken when `in_ready`), the sink is `out_ready`.
    /// Returns the beat the sink took, if any.
    pub fn clock(&mut self, input: Option<u64>, out_ready: bool) -> Option<u64> {
        let take_in = self.in_ready();
        let out = if out_ready { self.held.pop_front() } else { None };
        if let (Some(d), true) = (input, take_in) {
            self.held.push_back(d);
        }
        out
    }
}

/// The slice on 64-bit beats (packer to writer).
pub type SkidBuffer = Skid<64>;

/// See the module docs; `W` bits a beat (the decoder's commands to the core are wider than 64).
#[derive(LogicBlock, Default)]
pub struct Skid<const W: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// The source offers a beat.
    pub in_valid: Signal<In, Bit>,
    /// The slice takes it.
    pub in_ready: Signal<Out, Bit>,
    /// The source's beat.
    pub in_data: Signal<In, Bits<W>>,
    /// A beat is on `out_data`.
    pub out_valid: Signal<Out, Bit>,
    /// The sink takes it.
    pub out_ready: Signal<In, Bit>,
    /// The oldest beat held.
    pub out_data: Signal<Out, Bits<W>>,
    main_v: DFF<Bit>,
    main_d: DFF<Bits<W>>,
    skid_v: DFF<Bit>,
    skid_d: DFF<Bits<W>>,
    take_in: Signal<Local, Bit>,
}

impl<const W: usize> Logic for Skid<W> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, main_v, main_d, skid_v, skid_d);
        self.take_in.next = self.in_valid.val() & !self.skid_v.q.val();
        // The skid register loads the source's data in every cycle it is empty (its data
        // matters only once `skid_v` is set, which happens at an edge where it loads), so its
        // enable is one flop and not the sink's `ready` (card run 28's critical path: the core's
        // `state` through its command ready and this block's selects into the enable of
        // `skid_d`, 10.75 ns).
        if !self.skid_v.q.val() {
            self.skid_d.d.next = self.in_data.val();
        }
        if !self.main_v.q.val() | self.out_ready.val() {
            // The main register is free at this edge: it takes the older beat.
            if self.skid_v.q.val() {
                self.main_d.d.next = self.skid_d.q.val();
                self.skid_v.d.next = false;
            } else {
                self.main_v.d.next = self.take_in.val();
                self.main_d.d.next = self.in_data.val();
            }
        } else if self.take_in.val() {
            self.skid_v.d.next = true;
        }
        self.in_ready.next = !self.skid_v.q.val();
        self.out_valid.next = self.main_v.q.val();
        self.out_data.next = self.main_d.q.val();
        if self.reset.val() {
            self.main_v.d.next = false;
            self.skid_v.d.next = false;
        }
    }
}

/// The same slice as [`Skid`] (the same ports, cycle behaviour and model, [`SkidModel`]) built
/// as a two-entry queue: each data register loads the source's beat in every cycle it is empty
/// and holds once it is written, and the output is the two registers' select by a read pointer.
/// So the sink's `ready` reaches four flops (the read pointer and the two valid bits) and no
/// data register's enable. Between the command decoder and the core: the core's `cmd_ready`
/// follows its `state` through its command decode, and into [`Skid`]'s main register (92
/// flops, enabled by the ready) it was card run 38's critical path (11.27 ns). The output
/// passes a select (one LUT) that [`Skid`]'s does not.
#[derive(LogicBlock, Default)]
pub struct SkidQueue<const W: usize> {
    /// Clock.
    pub clock: Signal<In, Clock>,
    /// Synchronous reset.
    pub reset: Signal<In, Bit>,
    /// The source offers a beat.
    pub in_valid: Signal<In, Bit>,
    /// The slice takes it.
    pub in_ready: Signal<Out, Bit>,
    /// The source's beat.
    pub in_data: Signal<In, Bits<W>>,
    /// A beat is on `out_data`.
    pub out_valid: Signal<Out, Bit>,
    /// The sink takes it.
    pub out_ready: Signal<In, Bit>,
    /// The oldest beat held.
    pub out_data: Signal<Out, Bits<W>>,
    v0: DFF<Bit>,
    d0: DFF<Bits<W>>,
    v1: DFF<Bit>,
    d1: DFF<Bits<W>>,
    // The entry the oldest beat is in, and the one the next beat goes to.
    rp: DFF<Bit>,
    wp: DFF<Bit>,
    // `out_valid`: the read pointer's entry is valid (a register, so the sink's valid starts
    // at a flop as [`Skid`]'s).
    ov: DFF<Bit>,
    take_in: Signal<Local, Bit>,
    take_out: Signal<Local, Bit>,
}

impl<const W: usize> Logic for SkidQueue<W> {
    #[hdl_gen]
    fn update(&mut self) {
        dff_setup!(self, clock, v0, d0, v1, d1, rp, wp, ov);
        self.in_ready.next = !(self.v0.q.val() & self.v1.q.val());
        self.take_in.next = self.in_valid.val() & !(self.v0.q.val() & self.v1.q.val());
        self.out_valid.next = self.ov.q.val();
        self.out_data.next = self.d0.q.val();
        if self.rp.q.val() {
            self.out_data.next = self.d1.q.val();
        }
        self.take_out.next = self.out_ready.val() & self.ov.q.val();
        // A beat is held after the edge: one comes in, or one was held and the take does not
        // leave the queue empty.
        self.ov.d.next = self.take_in.val()
            | ((self.v0.q.val() | self.v1.q.val())
                & !(self.take_out.val() & !(self.v0.q.val() & self.v1.q.val())));
        // An empty entry loads the source's beat in every cycle (it matters only once the
        // entry's valid bit is set, at an edge where it loads).
        if !self.v0.q.val() {
            self.d0.d.next = self.in_data.val();
        }
        if !self.v1.q.val() {
            self.d1.d.next = self.in_data.val();
        }
        // A take and a write never meet in one entry: the write goes to the empty one.
        if self.take_out.val() {
            self.rp.d.next = !self.rp.q.val();
            if self.rp.q.val() {
                self.v1.d.next = false;
            } else {
                self.v0.d.next = false;
            }
        }
        if self.take_in.val() {
            self.wp.d.next = !self.wp.q.val();
            if self.wp.q.val() {
                self.v1.d.next = true;
            } else {
                self.v0.d.next = true;
            }
        }
        if self.reset.val() {
            self.v0.d.next = false;
            self.v1.d.next = false;
            self.rp.d.next = false;
            self.wp.d.next = false;
            self.ov.d.next = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The block against its model, cycle by cycle, with random offers and back-pressure: the
    /// same `in_ready`, `out_valid` and `out_data` every cycle, and every beat out once, in order.
    macro_rules! check {
        ($block:ty) => {
            for seed in 0..4u64 {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let (p_in, p_out) = [(90, 90), (30, 90), (90, 30), (50, 50)][seed as usize];
                let mut uut = <$block>::default();
                uut.connect_all();
                let mut model = SkidModel::default();
                let (mut next, mut seen) = (0u64, vec![]);
                for cycle in 0..2_000 {
                    let reset = cycle < 2;
                    let offer = !reset && rng.gen_range(0..100) < p_in;
                    let ready = rng.gen_range(0..100) < p_out;
                    let beat = next.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    uut.reset.next = reset;
                    uut.in_valid.next = offer;
                    uut.in_data.next = beat.into();
                    uut.out_ready.next = ready;
                    uut.clock.next = Clock { clk: false };
                    assert!(simulate(&mut uut, 100));
                    if !reset {
                        assert_eq!(uut.in_ready.val(), model.in_ready(), "seed {seed} cycle {cycle}");
                        assert_eq!(uut.out_valid.val(), model.out().is_some(), "seed {seed} cycle {cycle}");
                        if let Some(d) = model.out() {
                            assert_eq!(uut.out_data.val().to_u64(), d, "seed {seed} cycle {cycle}");
                        }
                        if offer && uut.in_ready.val() {
                            next += 1;
                        }
                        if let Some(d) = model.clock(offer.then_some(beat), ready) {
                            seen.push(d);
                        }
                    }
                    uut.clock.next = Clock { clk: true };
                    assert!(simulate(&mut uut, 100));
                }
                let sent: Vec<u64> =
                    (0..seen.len() as u64).map(|k| k.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
                assert_eq!(seen, sent, "seed {seed}: beats out in order, none lost or repeated");
                assert!(seen.len() > 300, "seed {seed}: only {} beats", seen.len());
            }
        };
    }

    #[test]
    fn skid_buffer_matches_its_model_under_random_valid_and_ready() {
        check!(SkidBuffer);
    }

    /// The same for the two-entry queue form.
    #[test]
    fn skid_queue_matches_its_model_under_random_valid_and_ready() {
        check!(SkidQueue<64>);
    }
}
