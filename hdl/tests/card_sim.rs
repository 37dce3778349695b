//! The whole card (front end and scan core, rust-hdl, hand-clocked) driven as the host driver
//! drives a card: registers over the BAR port, command entries in host memory, doorbells,
//! events polled by their phase bit, `EVT_CONSUMER` published late. Every event entry must
//! equal the golden models chained (decoder, core, packer, writer), `ScanDone.cycles` aside.
//!
//! ```text
//!  host model ──BAR writes/reads──> Card ──AXI R/W──> AxiMemory (command ring, event ring)
//!      │ entries, doorbell                                 │ polled by phase
//!      └──> DecoderModel -> CoreModel -> PackerModel -> EvtWriterModel ──> equal? <──┘
//! ```

use liqscan_hdl::abi::EventEntry;
use liqscan_hdl::abi::regs::offset;
use liqscan_hdl::abi::ring::{RING_ENTRY_WORDS, evt_kind};
use liqscan_hdl::front::axi::AxiTiming;
use liqscan_hdl::front::card_driver::CardSim;
use liqscan_hdl::front::cmd_decoder::DecoderModel;
use liqscan_hdl::front::evt_packer::PackerModel;
use liqscan_hdl::front::evt_writer::EvtWriterModel;
use liqscan_hdl::front::stimulus::{StreamShape, command_stream};
use liqscan_hdl::golden::CoreModel;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const CMD_ENTRIES: u32 = 8;
const EVT_ENTRIES: u32 = 4;

/// The event entries the golden models give for `entries`, as the host reads them.
fn model_events(entries: &[[u32; RING_ENTRY_WORDS]]) -> Vec<[u32; RING_ENTRY_WORDS]> {
    let (mut dec, mut core, mut pack) = (DecoderModel::default(), CoreModel::new(), PackerModel::default());
    let mut writer = EvtWriterModel::new(EVT_ENTRIES);
    let mut out = vec![];
    for w in entries {
        let (cmds, job) = dec.entry(w);
        let outs: Vec<_> = cmds.iter().flat_map(|c| core.apply(c)).collect();
        if let Some(job) = job {
            for event in pack.job(&job, &outs, 0) {
                out.push(writer.place(&EventEntry { phase: false, seq: 0, event }.encode_words()).1);
            }
        }
    }
    out
}

fn without_cycles(mut w: [u32; RING_ENTRY_WORDS]) -> [u32; RING_ENTRY_WORDS] {
    if w[0] & 0xFF == evt_kind::SCAN_DONE as u32 {
        w[5] = 0;
    }
    w
}

fn run_card(seed: u64, accounts: u32, assets: u16, n: usize, timing: AxiTiming) -> (u64, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let entries = command_stream(
        &mut rng,
        StreamShape { accounts, assets, commands: n, refused: false, fence_last: false },
    );
    let want = model_events(&entries);
    let mut card = CardSim::new(CMD_ENTRIES, EVT_ENTRIES, timing, seed);
    card.bring_up().unwrap();
    assert_eq!(card.read_reg(offset::BUILD_ID), 0x1234_5678);
    assert_eq!(card.read_reg(offset::EVT_RING_ADDR_HI), (card.evt_base() >> 32) as u32);
    let got = card.run_until(&entries, |got| got.len() >= want.len(), 400_000);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            without_cycles(*g),
            without_cycles(*w),
            "seed {seed}: event {i}: {:?}",
            EventEntry::decode_words(w)
        );
    }
    for _ in 0..200 {
        card.step();
    }
    assert_eq!(card.uut.evt_producer.val().to_u32() as usize, want.len(), "seed {seed}: no extra events");
    assert!(!card.uut.dma_error.val());
    assert!(card.mem.violations.is_empty(), "seed {seed}: {:?}", card.mem.violations);
    // The stream exercised every kind of answer.
    for kind in [
        evt_kind::BITMAP,
        evt_kind::CHANGED_WORDS,
        evt_kind::SCAN_DONE,
        evt_kind::ERROR,
        evt_kind::FENCE_DONE,
    ] {
        assert!(got.iter().any(|w| w[0] & 0xFF == kind as u32), "seed {seed}: no event of kind 0x{kind:x}");
    }
    assert!(
        got.iter().any(|w| w[0] & 0xFF == evt_kind::CHANGED_WORDS as u32 && (w[5] | w[6]) != 0),
        "seed {seed}: breaches"
    );
    (card.cycle, got.len())
}

#[test]
fn whole_card_answers_a_host_as_the_golden_models_do() {
    // The card's blocks are built on the stack before they are boxed: more than a test
    // thread's 2 MiB.
    let run = std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(|| {
            let timings = [
                AxiTiming { latency: 0..=0, stall_percent: 0 },
                AxiTiming { latency: 1..=12, stall_percent: 30 },
            ];
            for (k, t) in timings.into_iter().enumerate() {
                let t0 = std::time::Instant::now();
                let (cycles, events) = run_card(500 + k as u64, 40, 6, 160, t);
                eprintln!(
                    "seed {}: {events} events, {cycles} cycles in {:.1} s",
                    500 + k,
                    t0.elapsed().as_secs_f64()
                );
            }
        })
        .unwrap();
    run.join().unwrap();
}
