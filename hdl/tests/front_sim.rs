//! The front end's rust-hdl simulation (hand-clocked) against its golden models, with random
//! idle cycles, random memory latency and random back-pressure on every channel.
//!
//! ```text
//!  host model ──entries, doorbell──> CmdReader ──AXI R──> AxiMemory     command port ──> check
//!  event source ──beats──> EvtWriter ──AXI W──> AxiMemory <──polls phase── host model ──> check
//! ```
//!
//! Each test runs 24 seeds (the loopback 12) over three timings: a memory answering at once
//! and never stalling, one with 1..=20 cycles of latency and 30 % stalls, and one with 0..=6
//! cycles and 60 % stalls.

mod front_common;
use front_common::*;

#[test]
fn command_reader_matches_its_model_under_latency_and_back_pressure() {
    for seed in 0..24 {
        run_reader(11 + seed, TIMINGS[seed as usize % TIMINGS.len()], None);
    }
}

#[test]
fn event_writer_matches_its_model_and_the_host_sees_whole_entries_only() {
    for seed in 0..24 {
        run_writer(21 + seed, TIMINGS[seed as usize % TIMINGS.len()], None);
    }
}

#[test]
fn loopback_echoes_every_command_as_an_event() {
    for seed in 0..12 {
        run_loopback(31 + seed, TIMINGS[seed as usize % TIMINGS.len()]);
    }
}

/// Runs `step` (one clock cycle, returning whether an entry completed in it) for `cycles`
/// cycles; returns the cycles between consecutive completions.
fn steady_state_period(mut step: impl FnMut(u64) -> bool, cycles: u64) -> Vec<u64> {
    let at: Vec<u64> = (0..cycles).filter(|&c| step(c)).collect();
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

/// The steady-state cost of an entry with a fixed memory latency and no stalls, as the block
/// docs state it: reader L + 9 cycles, writer 2L + 11.
#[test]
fn cycles_per_entry_match_the_documented_figures() {
    use liqscan_hdl::front::axi::*;
    use liqscan_hdl::front::cmd_reader::CmdReader;
    use liqscan_hdl::front::evt_writer::EvtWriter;
    use rust_hdl::prelude::*;
    let base = 0x1000u64;
    for latency in [1u64, 4, 20] {
        let timing = AxiTiming { latency: latency..=latency, stall_percent: 0 };
        // Reader: a full ring of 8 entries with consecutive sequence numbers, one doorbell.
        let mut mem = AxiMemory::new(base, 8 * 64, timing.clone(), 1);
        for k in 0..8u64 {
            mem.mem[k as usize * 64 + 4..k as usize * 64 + 8].copy_from_slice(&(k as u32).to_le_bytes());
        }
        let mut r = CmdReader::default();
        r.connect_all();
        r.ring_base.next = base.into();
        r.ring_mask.next = 7u64.into();
        r.doorbell.next = 8u64.into();
        r.cmd_ready.next = true;
        let periods = steady_state_period(
            |c| {
                r.doorbell_write.next = c == 0;
                r.clock.next = Clock { clk: false };
                mem.drive_read(&mut r.axi);
                assert!(simulate(&mut r, 1000));
                mem.sample_read(&r.axi);
                let done = r.cmd_valid.val() && r.cmd_last.val();
                r.clock.next = Clock { clk: true };
                assert!(simulate(&mut r, 1000));
                mem.clock();
                done
            },
            8 * (latency + 9) + 10,
        );
        assert_eq!(periods, vec![latency + 9; 7], "reader, latency {latency}");
        assert_eq!(r.seq_gaps.val().to_u64(), 0);
        // Writer: an event source that always has a beat, a host that never holds the ring.
        let mut mem = AxiMemory::new(base, 4 * 64, timing, 2);
        let mut w = EvtWriter::default();
        w.connect_all();
        w.ring_base.next = base.into();
        w.ring_mask.next = 3u64.into();
        w.evt_valid.next = true;
        let mut prev = 0u64;
        let periods = steady_state_period(
            |_| {
                w.consumer.next = prev.into();
                w.clock.next = Clock { clk: false };
                mem.drive_write(&mut w.axi);
                assert!(simulate(&mut w, 1000));
                mem.sample_write(&w.axi);
                w.clock.next = Clock { clk: true };
                assert!(simulate(&mut w, 1000));
                mem.clock();
                let p = w.producer.val().to_u64();
                let advanced = p != prev;
                prev = p;
                advanced
            },
            8 * (2 * latency + 11) + 10,
        );
        assert!(periods.len() >= 6, "writer, latency {latency}: {periods:?}");
        assert!(periods.iter().all(|&p| p == 2 * latency + 11), "writer, latency {latency}: {periods:?}");
        assert!(mem.violations.is_empty());
    }
}

/// A DMA path answering SLVERR: both blocks raise their sticky `dma_error` with the first
/// answer and keep it until a soft reset; with OKAY answers it stays low (checked by the other
/// tests).
#[test]
fn dma_errors_are_sticky_until_reset() {
    use liqscan_hdl::front::axi::*;
    use liqscan_hdl::front::cmd_reader::CmdReader;
    use liqscan_hdl::front::evt_writer::EvtWriter;
    use rust_hdl::prelude::*;
    let timing = AxiTiming { latency: 2..=2, stall_percent: 0 };
    let mut mem = AxiMemory::new(0, 4 * 64, timing.clone(), 3);
    mem.fail = true;
    let mut r = CmdReader::default();
    r.connect_all();
    r.ring_mask.next = 3u64.into();
    r.cmd_ready.next = true;
    let mut first_error = None;
    for c in 0..40u64 {
        r.doorbell_write.next = c == 0;
        r.doorbell.next = 1u64.into();
        r.reset.next = c == 30;
        r.clock.next = Clock { clk: false };
        mem.drive_read(&mut r.axi);
        assert!(simulate(&mut r, 1000));
        mem.sample_read(&r.axi);
        if c == 30 {
            assert!(mem.idle() && r.consumer.val().to_u64() == 1);
        }
        if r.dma_error.val() && first_error.is_none() {
            first_error = Some(c);
        }
        if let Some(f) = first_error {
            assert_eq!(r.dma_error.val(), c <= 30, "reader, cycle {c} (first error {f})");
        }
        r.clock.next = Clock { clk: true };
        assert!(simulate(&mut r, 1000));
        mem.clock();
    }
    assert!(first_error.is_some_and(|f| f < 10), "reader: {first_error:?}");
    assert!(mem.violations.is_empty(), "{:?}", mem.violations);
    let mut mem = AxiMemory::new(0, 4 * 64, timing, 4);
    mem.fail = true;
    let mut w = EvtWriter::default();
    w.connect_all();
    w.ring_mask.next = 3u64.into();
    let (mut first_error, mut beats) = (None, 0);
    for c in 0..60u64 {
        // One entry, then quiet; the reset comes when nothing is in flight.
        w.evt_valid.next = beats < 8;
        w.reset.next = c == 50;
        w.clock.next = Clock { clk: false };
        mem.drive_write(&mut w.axi);
        assert!(simulate(&mut w, 1000));
        mem.sample_write(&w.axi);
        if beats < 8 && w.evt_ready.val() {
            beats += 1;
        }
        if c == 50 {
            assert!(mem.idle() && w.producer.val().to_u64() == 1);
        }
        if w.dma_error.val() && first_error.is_none() {
            first_error = Some(c);
        }
        if let Some(f) = first_error {
            assert_eq!(w.dma_error.val(), c <= 50, "writer, cycle {c} (first error {f})");
        }
        w.clock.next = Clock { clk: true };
        assert!(simulate(&mut w, 1000));
        mem.clock();
    }
    assert!(first_error.is_some_and(|f| f < 20), "writer: {first_error:?}");
    assert!(mem.violations.is_empty(), "{:?}", mem.violations);
}

/// The ring fills exactly: with the consumer held, the writer writes until `entries` entries
/// are unread, raises `ring_full` and writes nothing more; each consumer step lets exactly that
/// many more in. Ring sizes 1 to 64, steps of 1 to `entries`, over several laps (the consumer
/// wraps around the ring), each write to the producer's slot.
#[test]
fn event_writer_fills_the_ring_exactly_and_waits_for_the_consumer() {
    use liqscan_hdl::front::axi::*;
    use liqscan_hdl::front::evt_writer::EvtWriter;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rust_hdl::prelude::*;
    let base = 0x4000u64;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for entries in [1u32, 2, 8, 64] {
        let timing = AxiTiming { latency: 1..=3, stall_percent: 20 };
        let mut mem = AxiMemory::new(base, entries as usize * 64, timing, entries as u64);
        let mut w = EvtWriter::default();
        w.connect_all();
        w.ring_base.next = base.into();
        w.ring_mask.next = ((entries - 1) as u64).into();
        w.evt_valid.next = true;
        let mut consumer = 0u32;
        let mut step = |w: &mut EvtWriter, consumer: u32| {
            w.consumer.next = (consumer as u64).into();
            w.clock.next = Clock { clk: false };
            mem.drive_write(&mut w.axi);
            assert!(simulate(w, 1000));
            let before = mem.write_log.len();
            mem.sample_write(&w.axi);
            if mem.write_log.len() > before {
                let p = w.producer.val().to_u32();
                assert!(p.wrapping_sub(consumer) < entries, "{entries}: wrote entry {p}, host at {consumer}");
                assert_eq!((mem.write_log[before].0 - base) / 64, (p & (entries - 1)) as u64);
            }
            let full = w.ring_full.val();
            w.clock.next = Clock { clk: true };
            assert!(simulate(w, 1000));
            mem.clock();
            full
        };
        while consumer < 4 * entries {
            let target = consumer + entries;
            let mut cycles = 0;
            while w.producer.val().to_u32() != target {
                step(&mut w, consumer);
                cycles += 1;
                assert!(
                    cycles < 40 * entries + 100,
                    "{entries}: producer {} of {target}",
                    w.producer.val().to_u32()
                );
            }
            // Full: no further entry however long the host waits.
            let full_cycles = (0..100).filter(|_| step(&mut w, consumer)).count();
            assert_eq!(w.producer.val().to_u32(), target, "{entries}: wrote past a full ring");
            assert!(full_cycles >= 99, "{entries}: ring_full in {full_cycles} of 100 cycles");
            consumer += rng.gen_range(1..=entries);
        }
        assert!(mem.violations.is_empty(), "{:?}", mem.violations);
    }
}
