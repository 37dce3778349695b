//! The BAR register block (rust-hdl, hand-clocked) against its golden model: random register
//! writes and reads over the AXI4-Lite port with random valid delays and ready stalls, a stand-in
//! for the core's register port (data [`READ_LATENCY`] cycles after the address).
//!
//! ```text
//!  random accesses ──AW/W/AR──> BarRegs ──B/R──> check against BarModel
//!                                 │ core_addr/write ──> stand-in core (value = f(addr)) ──┘
//!                                 └ ring outputs, doorbell and soft-reset pulses ──> check
//! ```

use liqscan_hdl::abi::regs::{REGISTERS, offset};
use liqscan_hdl::core::regs::READ_LATENCY;
use liqscan_hdl::front::bar_regs::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_hdl::prelude::*;

/// What the stand-in core's register port returns for an address.
fn core_value(addr: u64) -> u32 {
    (addr as u32).wrapping_mul(0x9E37_79B9) ^ 0x5A5A_0000
}

fn random_offset(rng: &mut ChaCha8Rng) -> u32 {
    match rng.gen_range(0..10) {
        0 => rng.gen_range(0x1000..0x2_0000) & !3,
        1 => rng.gen_range(0..0x1000) & !3,
        _ => REGISTERS[rng.gen_range(0..REGISTERS.len())].offset,
    }
}

#[derive(Clone, Copy, Debug)]
enum Access {
    Write { off: u32, value: u32, strb: u8 },
    Read { off: u32 },
}

fn run(seed: u64, n: usize, idle: u32, stall: u32) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let accesses: Vec<Access> = (0..n)
        .map(|_| {
            let off = random_offset(&mut rng);
            if rng.r#gen() {
                let value = if off == offset::CONTROL { rng.gen_range(0..4) } else { rng.r#gen() };
                Access::Write {
                    off,
                    value,
                    strb: if rng.gen_range(0..12) == 0 { rng.gen_range(0..15) } else { 0xF },
                }
            } else {
                Access::Read { off }
            }
        })
        .collect();
    let mut uut = BarRegs::default();
    uut.connect_all();
    let mut model = BarModel::default();
    let front_errors = 0x140u32;
    let mut addr_hist = vec![0u64; READ_LATENCY as usize];
    let (mut next, mut aw_done, mut w_done, mut ar_done) = (0usize, false, false, false);
    let (mut core_writes, mut want_core_writes, mut resets, mut want_resets) = (vec![], vec![], 0, 0);
    let (mut bells, mut want_bells) = (vec![], vec![]);
    let mut cycle = 0u64;
    while next < n {
        assert!(cycle < 100_000, "seed {seed}: stuck at access {next}");
        let a = accesses[next];
        let (mut awv, mut wv, mut arv) = (false, false, false);
        match a {
            Access::Write { off, value, strb } => {
                awv = !aw_done && rng.gen_range(0..100) >= idle;
                wv = !w_done && rng.gen_range(0..100) >= idle;
                uut.awaddr.next = (off as u64).into();
                uut.wdata.next = (value as u64).into();
                uut.wstrb.next = (strb as u64).into();
            }
            Access::Read { off } => {
                arv = !ar_done && rng.gen_range(0..100) >= idle;
                uut.araddr.next = (off as u64).into();
            }
        }
        uut.awvalid.next = awv;
        uut.wvalid.next = wv;
        uut.arvalid.next = arv;
        let (bready, rready) = (rng.gen_range(0..100) >= stall, rng.gen_range(0..100) >= stall);
        uut.bready.next = bready;
        uut.rready.next = rready;
        uut.front_errors.next = (front_errors as u64).into();
        uut.core_rdata.next = (core_value(addr_hist[READ_LATENCY as usize - 1]) as u64).into();
        uut.clock.next = Clock { clk: false };
        assert!(simulate(&mut uut, 1000));
        // The stand-in core: the address of this cycle is answered READ_LATENCY cycles on.
        addr_hist.rotate_right(1);
        addr_hist[0] = uut.core_addr.val().to_u64();
        if uut.core_write.val() {
            core_writes.push((uut.core_addr.val().to_u64() as u32, uut.core_wdata.val().to_u32()));
        }
        resets += uut.soft_reset.val() as usize;
        if uut.doorbell_write.val() {
            bells.push(uut.doorbell.val().to_u32());
        }
        // AXI4-Lite lets AW and W come in either order; the block takes them together.
        aw_done |= awv && uut.awready.val();
        w_done |= wv && uut.wready.val();
        assert_eq!(uut.awready.val(), uut.wready.val(), "seed {seed}: AW and W are taken together");
        ar_done |= arv && uut.arready.val();
        if uut.bvalid.val() && bready {
            let Access::Write { off, value, strb } = a else { panic!("seed {seed}: B for a read") };
            assert!(aw_done && w_done);
            if strb == 0xF {
                assert_eq!(uut.bresp.val().to_u64(), 0, "seed {seed}: write {next}");
                match model.write(off, value) {
                    BarWrite::Core(reset) => {
                        want_core_writes.push((off, value));
                        want_resets += reset as usize;
                    }
                    BarWrite::Ring if off == offset::CMD_DOORBELL => want_bells.push(value),
                    _ => {}
                }
            } else {
                assert_eq!(uut.bresp.val().to_u64(), 2, "seed {seed}: partial write {next}");
            }
            (aw_done, w_done) = (false, false);
            next += 1;
        }
        if uut.rvalid.val() && rready {
            let Access::Read { off } = a else { panic!("seed {seed}: R for a write") };
            assert!(ar_done);
            let want = model.read(off, core_value(off as u64 & 0xFFF), front_errors);
            assert_eq!(uut.rdata.val().to_u32(), want, "seed {seed}: read {next} of 0x{off:x}");
            ar_done = false;
            next += 1;
        }
        uut.clock.next = Clock { clk: true };
        assert!(simulate(&mut uut, 1000));
        cycle += 1;
        // Outputs to the ring engines follow the registers written.
        if !uut.bvalid.val() {
            assert_eq!(uut.cmd_ring_base.val().to_u64(), model.cmd_addr, "seed {seed}");
            assert_eq!(uut.evt_ring_base.val().to_u64(), model.evt_addr, "seed {seed}");
            assert_eq!(uut.cmd_ring_mask.val().to_u32(), model.cmd_entries.wrapping_sub(1), "seed {seed}");
            assert_eq!(uut.evt_ring_mask.val().to_u32(), model.evt_entries.wrapping_sub(1), "seed {seed}");
            assert_eq!(uut.evt_consumer.val().to_u32(), model.evt_consumer, "seed {seed}");
        }
    }
    for _ in 0..4 {
        uut.clock.next = Clock { clk: false };
        assert!(simulate(&mut uut, 1000));
        if uut.core_write.val() {
            core_writes.push((uut.core_addr.val().to_u64() as u32, uut.core_wdata.val().to_u32()));
        }
        resets += uut.soft_reset.val() as usize;
        uut.clock.next = Clock { clk: true };
        assert!(simulate(&mut uut, 1000));
    }
    assert_eq!(core_writes, want_core_writes, "seed {seed}: writes forwarded to the core");
    assert_eq!(resets, want_resets, "seed {seed}: soft resets");
    assert_eq!(bells, want_bells, "seed {seed}: doorbells");
    assert!(
        want_resets > 0 && !want_bells.is_empty() && !want_core_writes.is_empty(),
        "seed {seed}: coverage"
    );
}

#[test]
fn bar_registers_match_their_model_with_idle_cycles_and_back_pressure() {
    for (k, (idle, stall)) in [(0, 0), (30, 30), (60, 70)].into_iter().enumerate() {
        for s in 0..3 {
            run(300 + 10 * k as u64 + s, 600, idle, stall);
        }
    }
}
