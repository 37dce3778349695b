//! The front end's rust-hdl simulation (hand-clocked) against its golden models, with random
//! idle cycles, random memory latency and random back-pressure on every channel.
//!
//! ```text
//!  host model ──entries, doorbell──> CmdReader ──AXI R──> AxiMemory     command port ──> check
//!  event source ──beats──> EvtWriter ──AXI W──> AxiMemory <──polls phase── host model ──> check
//! ```
//!
//! Each test runs six seeds over three timings: a memory answering at once and never stalling, one with
//! 1..=20 cycles of latency and 30 % stalls, and one with 0..=6 cycles and 60 % stalls.

mod front_common;
use front_common::*;

#[test]
fn command_reader_matches_its_model_under_latency_and_back_pressure() {
    for seed in 0..6 {
        run_reader(11 + seed, TIMINGS[seed as usize % TIMINGS.len()], None);
    }
}

#[test]
fn event_writer_matches_its_model_and_the_host_sees_whole_entries_only() {
    for seed in 0..6 {
        run_writer(21 + seed, TIMINGS[seed as usize % TIMINGS.len()], None);
    }
}
