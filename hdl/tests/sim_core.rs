//! The rust-hdl simulation (hand-clocked) against the golden models and the i128 reference,
//! on random and extreme vectors, with random idle cycles on the inputs and random
//! back-pressure on the output.

mod common;
use common::*;
use liqscan_hdl::abi::regs::{self, error_bit, offset};
use liqscan_hdl::abi::*;
use liqscan_hdl::core::col_acc::{ColumnAcc, ColumnAccModel};
use liqscan_hdl::core::driver::*;
use liqscan_hdl::core::fanout::{FanWord, WriteFan, fan_model};
use liqscan_hdl::core::lane_mem::{PRICE_ADDR_BITS, TERM_ADDR_BITS};
use liqscan_hdl::core::mac_lane::MacLane;
use liqscan_hdl::core::mul::{Mul16, Mul17, mul17_model};
use liqscan_hdl::core::ram::SyncRamReg;
use liqscan_hdl::golden::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_hdl::prelude::*;

fn tick<B: Block>(uut: &mut B, clock: impl Fn(&mut B, bool)) {
    clock(uut, false);
    assert!(simulate(uut, 1000));
    clock(uut, true);
    assert!(simulate(uut, 1000));
}

#[test]
fn mul16_is_a_two_cycle_pipeline() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut uut = Mul16::default();
    uut.connect_all();
    let clk = |u: &mut Mul16, c: bool| u.clock.next = Clock { clk: c };
    let mut sent: Vec<(u64, u64)> = vec![];
    for t in 0..500 {
        let (a, b) = match t % 7 {
            0 => (0xFFFF, 0xFFFF),
            1 => (0, rng.gen_range(0..=0xFFFF)),
            _ => (rng.gen_range(0..=0xFFFF), rng.gen_range(0..=0xFFFF)),
        };
        uut.a.next = a.into();
        uut.b.next = b.into();
        sent.push((a, b));
        tick(&mut uut, clk);
        // After edge t the product of the operands of edge t - 1 is out.
        if t >= 1 {
            let (pa, pb) = sent[t - 1];
            assert_eq!(uut.p.val().to_u64(), pa * pb, "edge {t}");
        }
    }
}

#[test]
fn mul17_is_a_two_cycle_pipeline_matching_its_model() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut uut = Mul17::default();
    uut.connect_all();
    let clk = |u: &mut Mul17, c: bool| u.clock.next = Clock { clk: c };
    let mut sent: Vec<(u32, u32)> = vec![];
    for t in 0..500 {
        let (a, b) = match t % 7 {
            0 => (0x1_FFFF, 0x1_FFFF),
            1 => (0x1_0000, rng.gen_range(0..=0x1_FFFF)),
            _ => (rng.gen_range(0..=0x1_FFFF), rng.gen_range(0..=0x1_FFFF)),
        };
        uut.a.next = (a as u64).into();
        uut.b.next = (b as u64).into();
        sent.push((a, b));
        tick(&mut uut, clk);
        // After edge t the product of the operands of edge t - 1 is out, split at bit 16.
        if t >= 1 {
            let (pa, pb) = sent[t - 1];
            let (lo, hi) = (uut.p_lo.val().to_u64(), uut.p_hi.val().to_u64());
            assert_eq!((lo as u32, hi as u32), mul17_model(pa, pb), "edge {t}");
            assert_eq!(lo + (hi << 16), pa as u64 * pb as u64, "edge {t}");
        }
    }
}

#[test]
fn sync_ram_reg_reads_two_edges_late_and_marks_collisions() {
    // An array model beside the block: random writes and reads, a word two edges after its
    // address; a read of the address written at the same edge gives the new word (the
    // hardware's is undefined, see core::ram), which differs from the stored one here.
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut uut = SyncRamReg::<Bits<32>, 5>::default();
    uut.connect_all();
    let clk = |u: &mut SyncRamReg<Bits<32>, 5>, c: bool| u.clock.next = Clock { clk: c };
    let mut mem = [0u64; 32];
    let mut expect: Vec<u64> = vec![];
    let mut collisions = 0;
    for t in 0..2000 {
        let ra = rng.gen_range(0..32u64);
        let we = rng.gen_bool(0.4);
        let wa = if rng.gen_bool(0.2) { ra } else { rng.gen_range(0..32u64) };
        let wd: u64 = rng.r#gen::<u32>() as u64;
        uut.read_address.next = ra.into();
        uut.write_enable.next = we;
        uut.write_address.next = wa.into();
        uut.write_data.next = wd.into();
        if we && wa == ra && mem[ra as usize] != wd {
            collisions += 1;
        }
        expect.push(if we && wa == ra { wd } else { mem[ra as usize] });
        if we {
            mem[wa as usize] = wd;
        }
        tick(&mut uut, clk);
        if t >= 1 {
            assert_eq!(uut.read_data.val().to_u64(), expect[t - 1], "edge {t}");
        }
    }
    assert!(collisions > 100, "the vectors must collide: {collisions}");
}

#[test]
fn write_fan_registers_every_field_once() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut uut = WriteFan::default();
    uut.connect_all();
    let clk = |u: &mut WriteFan, c: bool| u.clock.next = Clock { clk: c };
    let out = |u: &WriteFan| FanWord {
        ctl: u.o_ctl.val().to_u32(),
        rd_word: u.o_rd_word.val().to_u32(),
        price: u.o_price.val(),
        price_addr: u.o_price_addr.val().to_u32(),
        spot: u.o_spot.val().to_u32(),
        stressed: u.o_stressed.val().to_u32(),
        term: u.o_term.val(),
        term_lane: u.o_term_lane.val().to_u32(),
        term_addr: u.o_term_addr.val().to_u32(),
        coeff: u.o_coeff.val().to_u32(),
        term_paddr: u.o_term_paddr.val().to_u32(),
    };
    let mask = |bits: usize| ((1u64 << bits) - 1) as u32;
    let mut prev = FanWord::default();
    for t in 0..300 {
        let w = FanWord {
            ctl: rng.r#gen::<u32>() & 0xF,
            rd_word: rng.r#gen::<u32>() & mask(TERM_WORD_BITS),
            price: rng.r#gen(),
            price_addr: rng.r#gen::<u32>() & mask(PRICE_ADDR_BITS),
            spot: rng.r#gen(),
            stressed: rng.r#gen(),
            term: rng.r#gen(),
            term_lane: rng.r#gen::<u32>() & mask(LANE_BITS),
            term_addr: rng.r#gen::<u32>() & mask(TERM_ADDR_BITS),
            coeff: rng.r#gen(),
            term_paddr: rng.r#gen::<u32>() & mask(PRICE_ADDR_BITS),
        };
        uut.ctl.next = (w.ctl as u64).into();
        uut.rd_word.next = (w.rd_word as u64).into();
        uut.w_price.next = w.price;
        uut.w_price_addr.next = (w.price_addr as u64).into();
        uut.w_spot.next = (w.spot as u64).into();
        uut.w_stressed.next = (w.stressed as u64).into();
        uut.w_term.next = w.term;
        uut.w_term_lane.next = (w.term_lane as u64).into();
        uut.w_term_addr.next = (w.term_addr as u64).into();
        uut.w_coeff.next = (w.coeff as u64).into();
        uut.w_term_paddr.next = (w.term_paddr as u64).into();
        // Before the edge the outputs still hold the previous word.
        assert!(simulate(&mut uut, 1000));
        if t > 0 {
            assert_eq!(out(&uut), fan_model(prev), "before edge {t}");
        }
        tick(&mut uut, clk);
        assert_eq!(out(&uut), fan_model(w), "edge {t}");
        prev = w;
    }
}

#[test]
fn column_accumulator_matches_its_model() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let mut uut = ColumnAcc::default();
    uut.connect_all();
    let clk = |u: &mut ColumnAcc, c: bool| u.clock.next = Clock { clk: c };
    let mut model = ColumnAccModel::default();
    let wide = (1u32 << 24) - 1;
    for t in 0..2000 {
        // Random control bits (valid, first, last, neg in any combination) and contributions,
        // including the extremes of the 24-bit range.
        let ctl = rng.gen_range(0..16u32);
        let pick = |r: &mut ChaCha8Rng| match r.gen_range(0..5) {
            0 => 0,
            1 => wide,
            _ => r.gen_range(0..1u32 << 19),
        };
        let b = pick(&mut rng);
        uut.ctl.next = (ctl as u64).into();
        uut.b.next = (b as u64).into();
        tick(&mut uut, clk);
        assert_eq!(uut.acc.val().to_u32(), model.clock(ctl, b), "edge {t}");
    }
}

#[test]
fn mac_lane_matches_its_golden_model_with_idle_cycles() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut uut = MacLane::default();
    uut.connect_all();
    let clk = |u: &mut MacLane, c: bool| u.clock.next = Clock { clk: c };
    let mut accounts: Vec<Vec<(i32, u32, u32)>> = vec![
        vec![(COEFF_MAX, u32::MAX, u32::MAX); 16],
        vec![(COEFF_MIN, u32::MAX, 0); 16],
        vec![(COEFF_MIN, 0, u32::MAX); 16],
        vec![(0, 0, 0)],
    ];
    for _ in 0..400 {
        let n = rng.gen_range(1..=16);
        accounts.push((0..n).map(|_| (coeff(&mut rng), price(&mut rng), price(&mut rng))).collect());
    }
    let mut expected = vec![];
    let mut got = vec![];
    for acc in &accounts {
        let spot: Vec<(i32, u32)> = acc.iter().map(|&(c, p, _)| (c, p)).collect();
        let stress: Vec<(i32, u32)> = acc.iter().map(|&(c, _, r)| (c, r)).collect();
        let r_spot: i128 = spot.iter().map(|&(c, p)| c as i128 * p as i128).sum();
        assert_eq!(lane_health_negative(&spot), r_spot < 0);
        expected.push((lane_health_negative(&spot), lane_health_negative(&stress)));
        for (k, &(c, p, r)) in acc.iter().enumerate() {
            while rng.gen_range(0..4) == 0 {
                uut.valid.next = false;
                tick(&mut uut, clk);
                if uut.out_valid.val() {
                    got.push((uut.breach.val(), uut.at_risk.val()));
                }
            }
            uut.valid.next = true;
            uut.first.next = k == 0;
            uut.last.next = k + 1 == acc.len();
            uut.neg.next = c < 0;
            uut.mag.next = (c.unsigned_abs() as u64).into();
            uut.spot.next = (p as u64).into();
            uut.stressed.next = (r as u64).into();
            tick(&mut uut, clk);
            if uut.out_valid.val() {
                got.push((uut.breach.val(), uut.at_risk.val()));
            }
        }
    }
    uut.valid.next = false;
    for _ in 0..12 {
        tick(&mut uut, clk);
        if uut.out_valid.val() {
            got.push((uut.breach.val(), uut.at_risk.val()));
        }
    }
    assert_eq!(got, expected);
}

fn model_run(model: &mut CoreModel, cmds: &[CoreCmd]) -> Vec<CoreOut> {
    cmds.iter().flat_map(|c| model.apply(c)).collect()
}

fn values(outs: &[Timed<CoreOut>]) -> Vec<CoreOut> {
    outs.iter().map(|o| o.value).collect()
}

#[test]
fn core_matches_model_and_reference_with_jitter() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for round in 0..6 {
        let jitter = Jitter {
            idle: [0, 64, 160][round % 3],
            stall: [0, 96, 200][(round / 2) % 3],
            seed: round as u64 + 9,
        };
        let mut sim = CoreSim::new(jitter);
        let mut model = CoreModel::new();
        let assets = rng.gen_range(2..=24);
        let mut prices: Vec<PriceEntry> = (0..assets).map(|_| price_entry(&mut rng)).collect();
        let n = rng.gen_range(1..=80);
        let max_terms = [16, 4, 1][round % 3];
        let mut accounts: Vec<Vec<Coeff>> = (0..n).map(|_| account(&mut rng, assets, max_terms)).collect();
        if max_terms >= 2 {
            accounts.extend(edge_accounts(&prices));
        }
        let mut cmds = load_commands(&accounts, &prices).unwrap();
        cmds.push(CoreCmd::ScanFull);
        let (outs, _) = sim.run(&cmds);
        let expect = model_run(&mut model, &cmds);
        assert_eq!(values(&outs), expect, "round {round}: full scan");
        assert_eq!(words_from_groups(&expect, accounts.len()), reference_bitmaps(&accounts, &prices));
        // Ticks: incremental scans after a price move, and an account upsert in between.
        for _ in 0..3 {
            let a = rng.gen_range(0..assets);
            prices[a] = price_entry(&mut rng);
            let i = rng.gen_range(0..accounts.len());
            accounts[i] = account(&mut rng, assets, max_terms);
            let mut tick = vec![];
            for s in 0..16 {
                let term = accounts[i].get(s).copied().unwrap_or_default();
                tick.push(CoreCmd::WriteTerm { account: i as u16, word: unpacked_word(i, s), term });
            }
            tick.push(CoreCmd::SetPrice {
                asset: a as u16,
                liability: false,
                spot: prices[a].spot.asset,
                stressed: prices[a].stressed.asset,
            });
            tick.push(CoreCmd::SetPrice {
                asset: a as u16,
                liability: true,
                spot: prices[a].spot.liability,
                stressed: prices[a].stressed.liability,
            });
            tick.push(CoreCmd::ScanAsset { asset: a as u16 });
            let (outs, _) = sim.run(&tick);
            assert_eq!(values(&outs), model_run(&mut model, &tick), "round {round}: tick on asset {a}");
        }
        // A full resync after the ticks agrees with the reference.
        let (outs, _) = sim.run(&[CoreCmd::ScanFull]);
        let expect = model_run(&mut model, &[CoreCmd::ScanFull]);
        assert_eq!(values(&outs), expect);
        let slots = model.active_slots as usize;
        let trimmed: Vec<Vec<Coeff>> = accounts.iter().map(|a| a[..a.len().min(slots)].to_vec()).collect();
        assert_eq!(words_from_groups(&expect, accounts.len()), reference_bitmaps(&trimmed, &prices));
        // Statistics agree with the model.
        assert_eq!(sim.read_reg(offset::STAT_COMMANDS), model.commands);
        assert_eq!(sim.read_reg(offset::STAT_SCANS), model.scans);
        assert_eq!(sim.read_reg(offset::STAT_WORDS), model.words);
    }
}

/// A one-slot full scan of every account makes a word per cycle, far faster than a consumer
/// that is ready in 6 cycles of 256 takes them: the output FIFO fills, the sequencer must stop
/// issuing while the words already in the pipeline still fit (`FIFO_MARGIN`), and every word
/// must come out once, in order. A margin too small for the registered `almost_full` flag
/// loses or repeats words here.
#[test]
fn output_fifo_holds_the_pipeline_under_long_stalls() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let assets = 8;
    let prices: Vec<PriceEntry> = (0..assets).map(|_| price_entry(&mut rng)).collect();
    let mut cmds = load_commands(&[], &prices).unwrap();
    cmds.pop(); // load_commands' SetParams for no accounts
    // The power-on layout's accounts (its groups are the first UNPACKED_GROUPS).
    let n = UNPACKED_GROUPS * LANES;
    for i in (0..n).filter(|i| i % 3 != 1) {
        let asset = rng.gen_range(0..assets) as u16;
        let coeff = rng.gen_range(-(1 << 20)..(1 << 20));
        cmds.push(CoreCmd::WriteTerm {
            account: i as u16,
            word: unpacked_word(i, 0),
            term: Coeff { asset, coeff },
        });
    }
    cmds.push(CoreCmd::SetParams { accounts: n as u32, slots: 1 });
    let mut model = CoreModel::new();
    let load = model_run(&mut model, &cmds);
    assert!(load.is_empty());
    let mut sim = CoreSim::new(Jitter { idle: 0, stall: 250, seed: 5 });
    sim.run(&cmds);
    let start = sim.cycle;
    let (outs, _) = sim.run(&[CoreCmd::ScanFull]);
    let expect = model_run(&mut model, &[CoreCmd::ScanFull]);
    assert_eq!(expect.len(), UNPACKED_GROUPS + 1);
    assert_eq!(values(&outs), expect);
    // The consumer, not the sequencer, set the pace: far more cycles than words.
    assert!(sim.cycle - start > 20 * UNPACKED_GROUPS as u64, "{} cycles", sim.cycle - start);
}

/// The sequencer keeps its last-slot and last-group tests in registers updated as it steps;
/// the parameter edges (the defaults after reset, no accounts, 1 and 2 slots, every account,
/// parameters changed between scans) agree with the model.
#[test]
fn scans_at_parameter_edges_match_the_model() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let prices: Vec<PriceEntry> = (0..4).map(|_| price_entry(&mut rng)).collect();
    let accounts: Vec<Vec<Coeff>> = (0..LANES * 3 + 1).map(|_| account(&mut rng, 4, 3)).collect();
    let mut sim = CoreSim::default();
    let mut model = CoreModel::new();
    // Right after reset: no active accounts, so both scans yield only their done markers.
    let first = [CoreCmd::ScanFull, CoreCmd::ScanAsset { asset: 0 }];
    let (outs, _) = sim.run(&first);
    assert_eq!(values(&outs), model_run(&mut model, &first));
    assert_eq!(outs.len(), 2);
    let mut cmds = load_commands(&accounts, &prices).unwrap();
    cmds.retain(|c| !matches!(c, CoreCmd::SetParams { .. }));
    let (outs, _) = sim.run(&cmds);
    assert_eq!(values(&outs), model_run(&mut model, &cmds));
    let n = accounts.len() as u32;
    for (accounts, slots) in [
        (0, 1),
        (n, 1),
        (n, 2),
        (1, 1),
        (LANES as u32, 2),
        (n, 3),
        (CARD_ACCOUNTS as u32, 1),
        (CORE_ACCOUNTS as u32, 2),
        (0, 16),
    ] {
        let cmds = [
            CoreCmd::SetParams { accounts, slots },
            CoreCmd::ScanFull,
            CoreCmd::ScanAsset { asset: 1 },
            CoreCmd::ScanFull,
        ];
        let (outs, _) = sim.run(&cmds);
        assert_eq!(values(&outs), model_run(&mut model, &cmds), "{accounts} accounts, {slots} slots");
    }
    // Parameters just outside the range (and far outside it) are refused: the scan that
    // follows still uses the previous ones, and the error is flagged like the model's.
    let (a, s) = (CORE_ACCOUNTS as u32, TERM_SLOTS as u32);
    for (accounts, slots) in [
        (a + 1, 1),
        (2 * a, 1),
        (3 * a, 1),
        (u32::MAX, 1),
        (1, s + 1),
        (1, 2 * s),
        (1, 3 * s),
        (1, u32::MAX),
        (1, 0),
    ] {
        let cmds = [CoreCmd::SetParams { accounts, slots }, CoreCmd::ScanFull];
        let (outs, _) = sim.run(&cmds);
        assert_eq!(values(&outs), model_run(&mut model, &cmds), "{accounts} accounts, {slots} slots");
        assert_eq!(sim.read_reg(offset::ERRORS), model.errors, "{accounts} accounts, {slots} slots");
    }
}

#[test]
fn register_reads_take_read_latency_cycles_and_pipeline() {
    use liqscan_hdl::core::regs::{READ_LATENCY, RegBlock};
    let mut uut = RegBlock::new(0x0BAD_CAFE);
    uut.connect_all();
    let clk = |u: &mut RegBlock, c: bool| u.clock.next = Clock { clk: c };
    uut.reset.next = true;
    uut.reg_addr.next = (offset::ID_NEXT as u64).into();
    tick(&mut uut, clk);
    tick(&mut uut, clk);
    uut.reset.next = false;
    // One address per cycle; the data of the address of cycle t is on reg_rdata in cycle
    // t + READ_LATENCY, and not before.
    let addrs =
        [offset::ID_TYPE, offset::BUILD_ID, offset::CONFIG_LANES, 0x7FC, offset::ID_VERSION, offset::ID_TYPE];
    let want = [regs::TYPE_LIQSCAN, 0x0BAD_CAFE, LANES as u32, 0, regs::VERSION, regs::TYPE_LIQSCAN];
    let mut seen = vec![];
    for t in 0..addrs.len() + READ_LATENCY as usize {
        uut.reg_addr.next = (addrs.get(t).copied().unwrap_or(offset::ID_NEXT) as u64).into();
        tick(&mut uut, clk);
        seen.push(uut.reg_rdata.val().to_u32());
    }
    // seen[t] is the value after the clock edge ending cycle t.
    let lat = READ_LATENCY as usize;
    assert_eq!(&seen[lat - 1..lat - 1 + want.len()], &want);
    assert_ne!(seen[lat - 2], regs::TYPE_LIQSCAN, "data one cycle early");
}

#[test]
fn register_block_identity_scratch_errors_and_reset() {
    let mut sim = CoreSim::default();
    assert_eq!(sim.read_reg(offset::ID_TYPE), regs::TYPE_LIQSCAN);
    assert_eq!(sim.read_reg(offset::ID_VERSION), regs::VERSION);
    assert_eq!(sim.read_reg(offset::CONFIG_LANES), LANES as u32);
    assert_eq!(sim.read_reg(offset::CONFIG_ACCOUNTS), CARD_ACCOUNTS as u32);
    assert_eq!(sim.read_reg(offset::CONFIG_ASSETS), CARD_ASSETS as u32);
    assert_eq!(sim.read_reg(offset::CONFIG_TERM_SLOTS), TERM_SLOTS as u32);
    for v in [0xDEAD_BEEF, 0, u32::MAX, 0x1234_5678] {
        sim.write_reg(offset::SCRATCH, v);
        assert_eq!(sim.read_reg(offset::SCRATCH), v);
    }
    // Bad commands set sticky errors, like the model.
    let bad = [
        CoreCmd::SetPrice { asset: CARD_ASSETS as u16, liability: false, spot: 1, stressed: 1 },
        CoreCmd::WriteTerm { account: CORE_ACCOUNTS as u16, word: 0, term: Coeff { asset: 0, coeff: 1 } },
        CoreCmd::WriteTerm { account: 0, word: TERM_WORDS as u16, term: Coeff { asset: 0, coeff: 1 } },
        CoreCmd::WriteTerm { account: 0, word: 0, term: Coeff { asset: 0, coeff: i32::MIN } },
        CoreCmd::SetGroup { group: GROUPS as u16, first: 0, len: 1 },
        CoreCmd::SetGroup { group: 0, first: TERM_WORDS as u16, len: 1 },
        CoreCmd::SetGroup { group: 0, first: 0, len: TERM_SLOTS as u8 + 1 },
        CoreCmd::SetParams { accounts: 1, slots: 0 },
        CoreCmd::SetParams { accounts: CARD_ACCOUNTS as u32 + 1, slots: 1 },
    ];
    let mut model = CoreModel::new();
    for c in &bad {
        let (outs, _) = sim.run(std::slice::from_ref(c));
        assert!(outs.is_empty());
        model.apply(c);
    }
    let errs = sim.read_reg(offset::ERRORS);
    assert_eq!(errs, model.errors);
    assert_eq!(
        errs,
        error_bit::ASSET_RANGE
            | error_bit::ACCOUNT_RANGE
            | error_bit::SLOT_RANGE
            | error_bit::COEFF_RANGE
            | error_bit::PARAMS_RANGE
    );
    // The refused coefficient was not written.
    assert_eq!(sim.uut.peek_term(0, 0), (0, 0));
    // Write 1 to clear.
    sim.write_reg(offset::ERRORS, error_bit::SLOT_RANGE);
    assert_eq!(sim.read_reg(offset::ERRORS), errs & !error_bit::SLOT_RANGE);
    // Soft reset clears errors, scratch and statistics.
    sim.write_reg(offset::CONTROL, regs::CONTROL_SOFT_RESET);
    sim.read_reg(offset::ID_TYPE);
    assert_eq!(sim.read_reg(offset::ERRORS), 0);
    assert_eq!(sim.read_reg(offset::SCRATCH), 0);
    assert_eq!(sim.read_reg(offset::STAT_COMMANDS), 0);
}

#[test]
fn command_port_takes_commands_at_the_documented_rate() {
    use liqscan_hdl::golden::throughput::*;
    let mut sim = CoreSim::default();
    let price = CoreCmd::SetPrice { asset: 3, liability: false, spot: 7, stressed: 5 };
    let term =
        |coeff| CoreCmd::WriteTerm { account: 5, word: unpacked_word(5, 1), term: Coeff { asset: 3, coeff } };
    let params = CoreCmd::SetParams { accounts: 64, slots: 2 };
    let group = CoreCmd::SetGroup { group: 300, first: 7, len: 0 };
    let cmds = [
        price,
        price,
        price,
        term(9),
        term(-4),
        term(0),
        term(0),
        params,
        params,
        group,
        group,
        price,
        CoreCmd::ScanFull,
        price,
    ];
    let (_, acc) = sim.run(&cmds);
    let gaps: Vec<u64> = acc.windows(2).map(|w| w[1] - w[0]).collect();
    // After each command, the cycles until the port takes the next one: 1 for a price write,
    // PARAMS_CYCLES for parameters (their commit cycle), TERM_WRITE_CYCLES for a term write
    // with a non-zero coefficient, 2 for one with a zero coefficient (the port waits a cycle
    // for any term write's decode), and a full scan of 64 accounts x 2 slots until its drain
    // ends; GROUP_CYCLES for a group table write.
    let scan = FULL_WALK_START + walk(&[Some(2); 4]).end + 1 + DRAIN_CYCLES;
    assert_eq!(
        gaps,
        [
            1,
            1,
            1,
            TERM_WRITE_CYCLES,
            TERM_WRITE_CYCLES,
            2,
            2,
            PARAMS_CYCLES,
            PARAMS_CYCLES,
            GROUP_CYCLES,
            GROUP_CYCLES,
            1,
            scan
        ]
    );
}

#[test]
fn throughput_and_latency_match_the_cycle_model() {
    use liqscan_hdl::golden::throughput::*;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let prices: Vec<PriceEntry> = (0..16).map(|_| price_entry(&mut rng)).collect();
    let mut report = vec![];
    let t0 = std::time::Instant::now();
    let mut cycles_run = 0u64;
    for (n, slots) in [(16usize, 1usize), (64, 2), (100, 4), (128, 16), (512, 3)] {
        let mut sim = CoreSim::default();
        let accounts: Vec<Vec<Coeff>> = (0..n)
            .map(|i| {
                (0..slots).map(|s| Coeff { asset: ((i + s) % 16) as u16, coeff: coeff(&mut rng) }).collect()
            })
            .collect();
        let (_, _) = sim.run(&load_commands(&accounts, &prices).unwrap());
        let (outs, acc) = sim.run(&[CoreCmd::ScanFull]);
        let groups = n.div_ceil(LANES) as u64;
        let first = outs[0].cycle - acc[0];
        let done = outs.last().unwrap().cycle - acc[0];
        assert_eq!(first, first_word_latency(slots as u64), "first word, {n} accounts x {slots}");
        assert_eq!(done, full_scan_cycles(groups, slots as u64), "done, {n} accounts x {slots}");
        report.push(format!("full {n} accounts x {slots} slots: first word {first}, done {done}"));
        // Incremental: only asset 0's exposure; accounts with asset 0 are those with i % 8 in
        // a window of `slots` below.
        let walked: Vec<Option<u64>> = (0..groups as usize)
            .map(|g| {
                (g * LANES..((g + 1) * LANES).min(n))
                    .any(|i| accounts[i].iter().any(|t| t.asset == 0 && t.coeff != 0))
                    .then_some(slots as u64)
            })
            .collect();
        let exposed = walked.iter().flatten().count() as u64;
        let (outs, acc) = sim.run(&[CoreCmd::ScanAsset { asset: 0 }]);
        let done = outs.last().unwrap().cycle - acc[0];
        assert_eq!(outs.len() as u64, exposed + 1);
        let (words, model_done) = scan_cycles(INCR_WALK_START, &walked);
        assert_eq!(done, model_done, "incremental, {n} x {slots}");
        let got: Vec<u64> = outs[..outs.len() - 1].iter().map(|o| o.cycle - acc[0]).collect();
        assert_eq!(got, words, "incremental words, {n} x {slots}");
        report.push(format!(
            "incremental {n} accounts x {slots} slots, {exposed} of {groups} groups exposed: done {done}"
        ));
        cycles_run += sim.cycle;
    }
    // A sparse tick over several exposure words: 1024 accounts (64 groups), only groups 3, 31,
    // 32 and 63 hold the moved asset.
    {
        let mut sim = CoreSim::default();
        let n = 1024;
        let hot = [3usize, 31, 32, 63];
        let accounts: Vec<Vec<Coeff>> = (0..n)
            .map(|i| {
                let asset = if hot.contains(&(i / LANES)) && i % LANES == 5 { 0 } else { 1 + (i % 7) as u16 };
                vec![Coeff { asset, coeff: coeff(&mut rng) | 1 }]
            })
            .collect();
        sim.run(&load_commands(&accounts, &prices).unwrap());
        let (outs, acc) = sim.run(&[CoreCmd::ScanAsset { asset: 0 }]);
        let groups: Vec<CoreOut> = outs.iter().map(|o| o.value).collect();
        let scanned: Vec<u32> = groups
            .iter()
            .filter_map(|o| if let CoreOut::Word { group, .. } = o { Some(*group) } else { None })
            .collect();
        assert_eq!(scanned, vec![3, 31, 32, 63]);
        let done = outs.last().unwrap().cycle - acc[0];
        let walked: Vec<Option<u64>> = (0..64).map(|g| hot.contains(&g).then_some(1)).collect();
        assert_eq!(done, scan_cycles(INCR_WALK_START, &walked).1);
        report.push(format!("incremental {n} accounts x 1 slot, 4 of 64 groups exposed: done {done}"));
        cycles_run += sim.cycle;
    }
    let secs = t0.elapsed().as_secs_f64();
    report.push(format!(
        "simulation speed: {cycles_run} cycles in {secs:.2} s = {:.0} cycles/s",
        cycles_run as f64 / secs
    ));
    for r in &report {
        println!("{r}");
    }
}

/// Packed books on the simulated core: groups of 1 to 16 words (and an empty group, which
/// yields no word) at packed addresses, then an account grows and its group moves to free
/// words while scans go on: the new terms are written first (a full scan and a tick in between
/// still see the old ones), then one SET_GROUP switches the group. Every output word and
/// cycle agrees with the model and its cycle model, with random idle cycles and back-pressure.
#[test]
fn packed_books_and_a_group_move_match_the_model() {
    use liqscan_hdl::golden::throughput::{FULL_WALK_START, scan_cycles};
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    for round in 0..3 {
        let jitter = Jitter { idle: [0, 80, 40][round], stall: [0, 60, 160][round], seed: 40 + round as u64 };
        let mut sim = CoreSim::new(jitter);
        let mut model = CoreModel::new();
        let assets = rng.gen_range(3..=12);
        let prices: Vec<PriceEntry> = (0..assets).map(|_| price_entry(&mut rng)).collect();
        let n = rng.gen_range(40..=70);
        let mut accounts: Vec<Vec<Coeff>> = (0..n)
            .map(|i| if i / LANES == 1 { vec![] } else { account(&mut rng, assets, [16, 4, 2][round]) })
            .collect();
        let mut cmds = packed_load_commands(&accounts, &prices).unwrap();
        cmds.push(CoreCmd::ScanFull);
        let (outs, acc) = sim.run(&cmds);
        let expect = model_run(&mut model, &cmds);
        assert_eq!(values(&outs), expect, "round {round}: packed full scan");
        assert_eq!(words_from_groups(&expect, n), reference_bitmaps(&accounts, &prices));
        assert!(!expect.iter().any(|o| matches!(o, CoreOut::Word { group: 1, .. })), "the empty group");
        if jitter.idle == 0 && jitter.stall == 0 {
            let walked: Vec<Option<u64>> =
                (0..n.div_ceil(LANES)).map(|g| Some(model.walked_len(g) as u64).filter(|&l| l > 0)).collect();
            let (words, done) = scan_cycles(FULL_WALK_START, &walked);
            let scan = *acc.last().unwrap();
            let got: Vec<u64> = outs.iter().map(|o| o.cycle - scan).collect();
            assert_eq!(got[..got.len() - 1], words[..], "round {round}: word cycles");
            assert_eq!(got[got.len() - 1], done, "round {round}: done");
        }
        // Grow an account of group 0 to 16 terms on assets 0.. and move the group past the
        // book's words.
        let used: usize = (0..GROUPS).map(|g| model.groups[g].len as usize).sum();
        accounts[3] =
            (0..assets.min(16)).map(|a| Coeff { asset: a as u16, coeff: coeff(&mut rng) | 1 }).collect();
        let (mv, _) = move_group(&accounts, 0, used);
        let (writes, switch) = mv.split_at(mv.len() - 1);
        let a = rng.gen_range(0..assets) as u16;
        let mut seq: Vec<CoreCmd> = writes.to_vec();
        seq.extend([
            CoreCmd::ScanFull,
            CoreCmd::ScanAsset { asset: a },
            switch[0],
            CoreCmd::ScanAsset { asset: 0 },
        ]);
        seq.push(CoreCmd::ScanFull);
        let (outs, _) = sim.run(&seq);
        let expect = model_run(&mut model, &seq);
        assert_eq!(values(&outs), expect, "round {round}: move");
        let last_full: Vec<CoreOut> =
            expect.iter().rev().skip(1).take_while(|o| **o != CoreOut::Done).copied().collect();
        assert_eq!(words_from_groups(&last_full, n), reference_bitmaps(&accounts, &prices));
        assert_eq!(sim.read_reg(offset::ERRORS), 0);
    }
}
