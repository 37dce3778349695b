//! The front end's test drivers, shared by the rust-hdl tests (tests/front_sim.rs) and the
//! co-simulation of the generated Verilog (tests/front_verilog.rs): host models on both
//! rings, an [`AxiMemory`], the golden models, and a per-cycle trace of every port.
#![allow(dead_code)]

use liqscan_hdl::abi::ring::{PHASE_BIT, RING_ENTRY_BYTES, RING_ENTRY_WORDS};
use liqscan_hdl::front::axi::*;
use liqscan_hdl::front::cmd_reader::*;
use liqscan_hdl::front::evt_writer::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_hdl::prelude::*;

/// Per cycle: the block's inputs and its settled outputs just before the rising edge, as
/// space-separated hex fields (the width of each field in hex digits, as Verilog's `%h`).
#[derive(Default)]
pub struct Trace {
    /// Input lines.
    pub inputs: Vec<String>,
    /// Output lines.
    pub outputs: Vec<String>,
}

/// Formats (value, bits) pairs as `%h` does.
pub fn hex_fields(fields: &[(u64, usize)]) -> String {
    fields.iter().map(|&(v, b)| format!("{v:0w$x}", w = b.div_ceil(4))).collect::<Vec<_>>().join(" ")
}

fn b(x: bool) -> (u64, usize) {
    (x as u64, 1)
}

fn reader_io(u: &CmdReader) -> (String, String) {
    let a = &u.axi;
    let i = hex_fields(&[
        b(u.reset.val()),
        b(u.doorbell_write.val()),
        (u.doorbell.val().to_u64(), 32),
        b(u.cmd_ready.val()),
        b(a.arready.val()),
        b(a.rvalid.val()),
        (a.rdata.val().to_u64(), 64),
        (a.rresp.val().to_u64(), 2),
        b(a.rlast.val()),
        (u.ring_base.val().to_u64(), 64),
        (u.ring_mask.val().to_u64(), 32),
    ]);
    let o = hex_fields(&[
        b(a.arvalid.val()),
        (a.araddr.val().to_u64(), 64),
        (a.arlen.val().to_u64(), 8),
        b(a.rready.val()),
        b(u.cmd_valid.val()),
        (u.cmd_data.val().to_u64(), 64),
        (u.cmd_beat.val().to_u64(), 3),
        b(u.cmd_last.val()),
        b(u.cmd_seq_gap.val()),
        (u.cmd_expect.val().to_u64(), 32),
        (u.consumer.val().to_u64(), 32),
        (u.seq_gaps.val().to_u64(), 32),
        b(u.dma_error.val()),
    ]);
    (i, o)
}

fn writer_io(u: &EvtWriter) -> (String, String) {
    let a = &u.axi;
    let i = hex_fields(&[
        b(u.reset.val()),
        (u.ring_base.val().to_u64(), 64),
        (u.ring_mask.val().to_u64(), 32),
        (u.consumer.val().to_u64(), 32),
        b(u.evt_valid.val()),
        (u.evt_data.val().to_u64(), 64),
        b(a.awready.val()),
        b(a.wready.val()),
        b(a.bvalid.val()),
        (a.bresp.val().to_u64(), 2),
    ]);
    let o = hex_fields(&[
        b(u.evt_ready.val()),
        b(a.awvalid.val()),
        (a.awaddr.val().to_u64(), 64),
        (a.awlen.val().to_u64(), 8),
        b(a.wvalid.val()),
        (a.wdata.val().to_u64(), 64),
        b(a.wlast.val()),
        b(a.bready.val()),
        (u.producer.val().to_u64(), 32),
        b(u.ring_full.val()),
        b(u.dma_error.val()),
    ]);
    (i, o)
}

pub const TIMINGS: [(u64, u64, u32); 3] = [(0, 0, 0), (1, 20, 30), (0, 6, 60)];
const MAX_CYCLES: u64 = 200_000;

fn timing(t: (u64, u64, u32)) -> AxiTiming {
    AxiTiming { latency: t.0..=t.1, stall_percent: t.2 }
}

fn entry_words(rng: &mut ChaCha8Rng) -> [u32; RING_ENTRY_WORDS] {
    let mut w = [0u32; RING_ENTRY_WORDS];
    for x in w.iter_mut() {
        *x = match rng.gen_range(0..6) {
            0 => 0,
            1 => u32::MAX,
            _ => rng.r#gen(),
        };
    }
    w
}

fn put_entry(mem: &mut AxiMemory, addr: u64, w: &[u32; RING_ENTRY_WORDS]) {
    let i = (addr - mem.base) as usize;
    for (k, x) in w.iter().enumerate() {
        mem.mem[i + 4 * k..i + 4 * k + 4].copy_from_slice(&x.to_le_bytes());
    }
}

fn get_entry(mem: &AxiMemory, addr: u64) -> [u32; RING_ENTRY_WORDS] {
    let i = (addr - mem.base) as usize;
    std::array::from_fn(|k| u32::from_le_bytes(mem.mem[i + 4 * k..i + 4 * k + 4].try_into().unwrap()))
}

/// Host side of the command ring: posts `n` entries whose sequence numbers run on from 0 but
/// jump at random (1 in 8), rings the doorbell at random, keeps the ring from overflowing, and
/// halfway through soft-resets the reader (as `CONTROL.SOFT_RESET`) once it has drained,
/// restarting its own sequence numbers from 0.
pub fn run_reader(seed: u64, t: (u64, u64, u32), mut trace: Option<&mut Trace>) {
    const ENTRIES: u32 = 8;
    const N: usize = 200;
    let base: u64 = 0x1_FFFF_FE00; // the ring's end is a 2^33 boundary: the address adder carries
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mem = AxiMemory::new(base, ENTRIES as usize * RING_ENTRY_BYTES, timing(t), seed ^ 0x5EED);
    let mut uut = CmdReader::default();
    uut.connect_all();
    uut.ring_base.next = base.into();
    uut.ring_mask.next = ((ENTRIES - 1) as u64).into();
    let mut model = CmdReaderModel::default();
    let mut expected: Vec<FetchedEntry> = vec![];
    let (mut posted, mut rung, mut seq) = (0u32, 0u32, 0u32);
    let mut total_posted = 0usize;
    let (mut delivered, mut beats) = (0usize, Vec::<u64>::new());
    let (mut reset_done, mut stalls) = (false, 0u64);
    let mut cycle = 0u64;
    while delivered < N {
        assert!(cycle < MAX_CYCLES, "seed {seed}: {delivered} of {N} entries after {cycle} cycles");
        let consumer = uut.consumer.val().to_u32();
        let mut reset = false;
        if !reset_done && total_posted == N / 2 && delivered == N / 2 && consumer == rung && mem.idle() {
            reset = true;
            reset_done = true;
            (posted, rung, seq) = (0, 0, 0);
            model = CmdReaderModel::default();
        } else if total_posted < N
            && posted.wrapping_sub(consumer) < ENTRIES
            && rng.gen_range(0..3) == 0
            && (reset_done || total_posted < N / 2)
        {
            let mut w = entry_words(&mut rng);
            if rng.gen_range(0..8) == 0 {
                seq = rng.r#gen();
            }
            w[1] = seq;
            seq = seq.wrapping_add(1);
            put_entry(&mut mem, base + (posted & (ENTRIES - 1)) as u64 * 64, &w);
            expected.push(model.fetch(&w));
            posted = posted.wrapping_add(1);
            total_posted += 1;
        }
        let ring = !reset && rung != posted && rng.gen_range(0..4) == 0;
        if ring {
            rung = posted;
        }
        uut.reset.next = reset;
        uut.doorbell_write.next = ring;
        uut.doorbell.next = (rung as u64).into();
        let ready = rng.gen_range(0..10) < 7;
        uut.cmd_ready.next = ready;
        uut.clock.next = Clock { clk: false };
        mem.drive_read(&mut uut.axi);
        assert!(simulate(&mut uut, 1000));
        if let Some(tr) = trace.as_deref_mut() {
            let (i, o) = reader_io(&uut);
            tr.inputs.push(i);
            tr.outputs.push(o);
        }
        mem.sample_read(&uut.axi);
        if uut.cmd_valid.val() && !ready {
            stalls += 1;
        }
        if uut.cmd_valid.val() && ready {
            let k = beats.len();
            assert_eq!(uut.cmd_beat.val().to_u64() as usize, k, "seed {seed} cycle {cycle}");
            assert_eq!(uut.cmd_last.val(), k == 7, "seed {seed} cycle {cycle}");
            let want = &expected[delivered];
            assert_eq!(uut.cmd_seq_gap.val(), want.seq_gap, "seed {seed} entry {delivered}");
            assert_eq!(uut.cmd_expect.val().to_u32(), want.expect, "seed {seed} entry {delivered}");
            beats.push(uut.cmd_data.val().to_u64());
            if k == 7 {
                let words: [u32; RING_ENTRY_WORDS] =
                    std::array::from_fn(|i| (beats[i / 2] >> (32 * (i % 2))) as u32);
                assert_eq!(words, want.words, "seed {seed} entry {delivered}");
                beats.clear();
                delivered += 1;
            }
        }
        uut.clock.next = Clock { clk: true };
        assert!(simulate(&mut uut, 1000));
        mem.clock();
        cycle += 1;
    }
    assert!(reset_done, "seed {seed}: the soft reset was exercised");
    assert_eq!(uut.consumer.val().to_u32(), model.consumer, "seed {seed}");
    assert_eq!(uut.seq_gaps.val().to_u32(), model.seq_gaps, "seed {seed}");
    assert!(model.seq_gaps > 0, "seed {seed}: the vectors held sequence gaps");
    assert!(!uut.dma_error.val());
    assert!(mem.violations.is_empty(), "seed {seed}: {:?}", mem.violations);
    if t.2 > 0 {
        assert!(stalls > 0, "seed {seed}: the command port was back-pressured");
    }
}

/// The event source offers `n` random entries beat by beat with random gaps (holding each
/// offered beat until taken); the host polls the phase bit of its next slot and, when it
/// flips, reads the whole entry and compares it with the model's; it publishes its consumer
/// index late and at random, and is now and then busy for up to 300 cycles, so the ring
/// (4 entries) is often full.
pub fn run_writer(seed: u64, t: (u64, u64, u32), mut trace: Option<&mut Trace>) {
    const ENTRIES: u32 = 4;
    const N: usize = 120;
    let base: u64 = 0x1_FFFF_FF00;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mem = AxiMemory::new(base, ENTRIES as usize * RING_ENTRY_BYTES, timing(t), seed ^ 0xBEEF);
    let mut uut = EvtWriter::default();
    uut.connect_all();
    uut.ring_base.next = base.into();
    uut.ring_mask.next = ((ENTRIES - 1) as u64).into();
    let mut model = EvtWriterModel::new(ENTRIES);
    let events: Vec<[u32; RING_ENTRY_WORDS]> = (0..N).map(|_| entry_words(&mut rng)).collect();
    let expected: Vec<_> = events.iter().map(|w| model.place(w)).collect();
    let (mut src_entry, mut src_beat, mut offering) = (0usize, 0usize, false);
    let (mut read, mut published) = (0u32, 0u32);
    let (mut full_cycles, mut cycle, mut host_busy_until) = (0u64, 0u64, 0u64);
    // Until the host has read every event and the last write response is in.
    while (read as usize) < N || uut.producer.val().to_u32() != N as u32 {
        assert!(cycle < MAX_CYCLES, "seed {seed}: host read {read} of {N} after {cycle} cycles");
        // Host: now and then busy elsewhere for a while (so the ring fills); otherwise poll the
        // next slot's phase: a whole entry must be there when it flips.
        if rng.gen_range(0..150) == 0 {
            host_busy_until = cycle + rng.gen_range(50..300);
        }
        if (read as usize) < N && cycle >= host_busy_until && rng.gen_range(0..2) == 0 {
            let addr = base + (read & (ENTRIES - 1)) as u64 * 64;
            let w = get_entry(&mem, addr);
            let phase = (read / ENTRIES).is_multiple_of(2);
            if (w[0] & PHASE_BIT != 0) == phase {
                let (slot, want) = expected[read as usize];
                assert_eq!(slot, read & (ENTRIES - 1));
                assert_eq!(w, want, "seed {seed}: entry {read} seen by the host at cycle {cycle}");
                read += 1;
            }
        }
        if published != read && rng.gen_range(0..6) == 0 {
            published = read;
        }
        if !offering && src_entry < N && rng.gen_range(0..10) < 7 {
            offering = true;
        }
        uut.consumer.next = (published as u64).into();
        uut.evt_valid.next = offering;
        let (lo, hi) = if src_entry < N {
            (events[src_entry][2 * src_beat], events[src_entry][2 * src_beat + 1])
        } else {
            (0, 0)
        };
        uut.evt_data.next = ((hi as u64) << 32 | lo as u64).into();
        uut.clock.next = Clock { clk: false };
        mem.drive_write(&mut uut.axi);
        assert!(simulate(&mut uut, 1000));
        if let Some(tr) = trace.as_deref_mut() {
            let (i, o) = writer_io(&uut);
            tr.inputs.push(i);
            tr.outputs.push(o);
        }
        let before = mem.write_log.len();
        mem.sample_write(&uut.axi);
        if mem.write_log.len() > before {
            let p = uut.producer.val().to_u32();
            assert!(
                p.wrapping_sub(published) < ENTRIES,
                "seed {seed}: wrote slot of entry {p}, host at {published}"
            );
            let (addr, _) = mem.write_log[before];
            assert_eq!(
                (addr - base) / 64,
                (p & (ENTRIES - 1)) as u64,
                "seed {seed}: write to the producer's slot"
            );
        }
        if uut.ring_full.val() {
            full_cycles += 1;
        }
        if offering && uut.evt_ready.val() {
            offering = false;
            src_beat += 1;
            if src_beat == 8 {
                src_beat = 0;
                src_entry += 1;
            }
        }
        uut.clock.next = Clock { clk: true };
        assert!(simulate(&mut uut, 1000));
        mem.clock();
        cycle += 1;
    }
    assert_eq!(uut.producer.val().to_u32(), N as u32, "seed {seed}");
    assert!(full_cycles > 0, "seed {seed}: the ring was full at times");
    assert!(!uut.dma_error.val());
    assert!(mem.violations.is_empty(), "seed {seed}: {:?}", mem.violations);
    // Every entry was written as its body burst then, after its response, its head beat.
    let heads = mem.write_log.iter().filter(|(a, _)| (a - base).is_multiple_of(64)).count();
    assert_eq!(heads, N);
    assert_eq!(mem.write_log.len(), 8 * N);
}

/// The host on both rings of a [`Loopback`]: posts `n` random commands with consecutive
/// sequence numbers into an 8-entry command ring, rings the doorbell at random, polls a
/// 4-entry event ring and checks each event it sees against the loopback model. Both rings
/// sit in one memory near the top of the 64-bit address space.
pub fn run_loopback(seed: u64, t: (u64, u64, u32)) {
    use liqscan_hdl::front::loopback::*;
    const CMD_ENTRIES: u32 = 8;
    const EVT_ENTRIES: u32 = 4;
    const N: usize = 60;
    let base: u64 = 0xFFFF_FFFF_FFFF_E000;
    let evt_base = base + 0x1000;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut mem =
        AxiMemory::new(base, 0x1000 + EVT_ENTRIES as usize * RING_ENTRY_BYTES, timing(t), seed ^ 0xF00D);
    let mut uut = Loopback::default();
    uut.connect_all();
    uut.cmd_ring_base.next = base.into();
    uut.cmd_ring_mask.next = ((CMD_ENTRIES - 1) as u64).into();
    uut.evt_ring_base.next = evt_base.into();
    uut.evt_ring_mask.next = ((EVT_ENTRIES - 1) as u64).into();
    let cmds: Vec<[u32; RING_ENTRY_WORDS]> = (0..N as u32)
        .map(|s| {
            let mut w = entry_words(&mut rng);
            w[1] = s;
            w
        })
        .collect();
    let expected = loopback_model(&cmds, EVT_ENTRIES);
    let (mut posted, mut rung, mut read, mut published, mut cycle) = (0u32, 0u32, 0u32, 0u32, 0u64);
    // Until the host has read every event and the last write response is in.
    while (read as usize) < N || uut.evt_producer.val().to_u32() != N as u32 {
        assert!(cycle < MAX_CYCLES, "seed {seed}: host read {read} of {N} events after {cycle} cycles");
        let consumer = uut.cmd_consumer.val().to_u32();
        if (posted as usize) < N && posted.wrapping_sub(consumer) < CMD_ENTRIES && rng.gen_range(0..3) == 0 {
            put_entry(&mut mem, base + (posted & (CMD_ENTRIES - 1)) as u64 * 64, &cmds[posted as usize]);
            posted += 1;
        }
        let ring = rung != posted && rng.gen_range(0..4) == 0;
        if ring {
            rung = posted;
        }
        if (read as usize) < N && rng.gen_range(0..2) == 0 {
            let w = get_entry(&mem, evt_base + (read & (EVT_ENTRIES - 1)) as u64 * 64);
            if (w[0] & PHASE_BIT != 0) == (read / EVT_ENTRIES).is_multiple_of(2) {
                assert_eq!(w, expected[read as usize], "seed {seed}: event {read} at cycle {cycle}");
                read += 1;
            }
        }
        if published != read && rng.gen_range(0..6) == 0 {
            published = read;
        }
        uut.doorbell_write.next = ring;
        uut.doorbell.next = (rung as u64).into();
        uut.evt_consumer.next = (published as u64).into();
        uut.clock.next = Clock { clk: false };
        mem.drive_read(&mut uut.axi_rd);
        mem.drive_write(&mut uut.axi_wr);
        assert!(simulate(&mut uut, 1000));
        mem.sample_read(&uut.axi_rd);
        mem.sample_write(&uut.axi_wr);
        uut.clock.next = Clock { clk: true };
        assert!(simulate(&mut uut, 1000));
        mem.clock();
        cycle += 1;
    }
    assert_eq!(uut.cmd_consumer.val().to_u32(), N as u32);
    assert_eq!(uut.evt_producer.val().to_u32(), N as u32);
    assert_eq!(uut.seq_gaps.val().to_u32(), 0);
    assert!(!uut.dma_error.val());
    assert!(mem.violations.is_empty(), "seed {seed}: {:?}", mem.violations);
}
