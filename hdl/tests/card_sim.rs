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

use liqscan_hdl::abi::regs::{CONTROL_SOFT_RESET, TYPE_LIQSCAN, offset};
use liqscan_hdl::abi::ring::{PHASE_BIT, RING_ENTRY_BYTES, RING_ENTRY_WORDS, evt_kind, upsert_entries};
use liqscan_hdl::abi::widths::{Coeff, PriceEntry, QuotedPrice};
use liqscan_hdl::abi::{Command, EventEntry};
use liqscan_hdl::front::axi::{AxiMemory, AxiTiming};
use liqscan_hdl::front::card::Card;
use liqscan_hdl::front::cmd_decoder::DecoderModel;
use liqscan_hdl::front::evt_packer::PackerModel;
use liqscan_hdl::front::evt_writer::EvtWriterModel;
use liqscan_hdl::golden::CoreModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_hdl::prelude::*;
use std::collections::VecDeque;

const CMD_ENTRIES: u32 = 8;
const EVT_ENTRIES: u32 = 4;

#[derive(Clone, Copy, Debug)]
enum Bar {
    Write(u32, u32),
    Read(u32),
}

struct Host {
    uut: Box<Card>,
    mem: AxiMemory,
    base: u64,
    rng: ChaCha8Rng,
    bar: VecDeque<Bar>,
    bar_state: (bool, bool, bool),
    reads: Vec<(u32, u32)>,
    cycle: u64,
}

impl Host {
    /// One clock cycle: the BAR access at the head of the queue, the memory's half of the DMA.
    fn step(&mut self) {
        let u = &mut self.uut;
        let (mut awv, mut wv, mut arv) = (false, false, false);
        let (aw_done, w_done, ar_done) = self.bar_state;
        match self.bar.front() {
            Some(Bar::Write(off, v)) => {
                awv = !aw_done && self.rng.gen_range(0..4) != 0;
                wv = !w_done && self.rng.gen_range(0..4) != 0;
                u.bar_awaddr.next = (*off as u64).into();
                u.bar_wdata.next = (*v as u64).into();
                u.bar_wstrb.next = 0xF.into();
            }
            Some(Bar::Read(off)) => {
                arv = !ar_done;
                u.bar_araddr.next = (*off as u64).into();
            }
            None => {}
        }
        u.bar_awvalid.next = awv;
        u.bar_wvalid.next = wv;
        u.bar_arvalid.next = arv;
        u.bar_bready.next = true;
        u.bar_rready.next = true;
        u.clock.next = Clock { clk: false };
        self.mem.drive_read(&mut u.axi_rd);
        self.mem.drive_write(&mut u.axi_wr);
        assert!(simulate(&mut **u, 2000));
        self.mem.sample_read(&u.axi_rd);
        self.mem.sample_write(&u.axi_wr);
        let mut st = (aw_done || (awv && u.bar_awready.val()), w_done || (wv && u.bar_wready.val()), ar_done);
        st.2 |= arv && u.bar_arready.val();
        if u.bar_bvalid.val() {
            assert_eq!(u.bar_bresp.val().to_u64(), 0);
            self.bar.pop_front();
            st = (false, false, false);
        }
        if u.bar_rvalid.val() {
            let Some(Bar::Read(off)) = self.bar.pop_front() else { panic!("R without a read") };
            self.reads.push((off, u.bar_rdata.val().to_u32()));
            st = (false, false, false);
        }
        self.bar_state = st;
        u.clock.next = Clock { clk: true };
        assert!(simulate(&mut **u, 2000));
        self.mem.clock();
        self.cycle += 1;
    }

    fn settle_bar(&mut self) {
        while !self.bar.is_empty() {
            assert!(self.cycle < 100_000, "BAR access stuck");
            self.step();
        }
    }

    fn evt_base(&self) -> u64 {
        self.base + CMD_ENTRIES as u64 * RING_ENTRY_BYTES as u64
    }

    fn words_at(&self, addr: u64) -> [u32; RING_ENTRY_WORDS] {
        let o = (addr - self.base) as usize;
        std::array::from_fn(|i| {
            u32::from_le_bytes(self.mem.mem[o + 4 * i..o + 4 * i + 4].try_into().unwrap())
        })
    }
}

fn price(rng: &mut ChaCha8Rng) -> PriceEntry {
    let mut q = || {
        let a = rng.gen_range(1..2000u32);
        QuotedPrice { asset: a, liability: a + rng.gen_range(0..200) }
    };
    PriceEntry { spot: q(), stressed: q() }
}

/// A book of up to `accounts` accounts on `assets` assets, then ticks, upserts, removes,
/// fences, full scans and now and then a bad entry.
fn command_stream(
    rng: &mut ChaCha8Rng,
    accounts: u32,
    assets: u16,
    n: usize,
) -> Vec<[u32; RING_ENTRY_WORDS]> {
    let mut cmds: Vec<Command> = vec![Command::Params { active_accounts: accounts, term_slots: 4 }];
    for a in 0..assets {
        cmds.push(Command::BatchTick { asset: a, price: price(rng), last: a + 1 == assets });
    }
    let terms = |rng: &mut ChaCha8Rng| -> Vec<Coeff> {
        (0..rng.gen_range(0..=4))
            .map(|_| Coeff { asset: rng.gen_range(0..assets), coeff: rng.gen_range(-1000..1000) })
            .collect()
    };
    for acct in 0..accounts {
        let t = terms(rng);
        cmds.extend(upsert_entries(acct, &t));
    }
    cmds.push(Command::ScanFull);
    while cmds.len() < n {
        match rng.gen_range(0..10) {
            0..=4 => cmds.push(Command::Tick { asset: rng.gen_range(0..assets), price: price(rng) }),
            5 => {
                let t = terms(rng);
                cmds.extend(upsert_entries(rng.gen_range(0..accounts), &t));
            }
            6 => cmds.push(Command::AccountRemove { account: rng.gen_range(0..accounts) }),
            7 => cmds.push(Command::Fence { token: rng.r#gen() }),
            8 => cmds.push(Command::ScanFull),
            _ => cmds.push(Command::Tick { asset: 300, price: price(rng) }),
        }
    }
    let mut seq = 0u32;
    cmds.iter()
        .map(|c| {
            let mut w = c.encode_words(seq);
            seq = seq.wrapping_add(1);
            // Now and then a bad kind or a sequence jump.
            match rng.gen_range(0..40) {
                0 => w[0] = 0x7F,
                1 => {
                    w[1] = w[1].wrapping_add(5);
                    seq = w[1].wrapping_add(1);
                }
                _ => {}
            }
            w
        })
        .collect()
}

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
    let entries = command_stream(&mut rng, accounts, assets, n);
    let want = model_events(&entries);
    let base = 0x7_FFFF_F000u64;
    let len = (CMD_ENTRIES + EVT_ENTRIES) as usize * RING_ENTRY_BYTES;
    let mut uut = Box::new(Card::new(0x1234_5678));
    uut.connect_all();
    let mut h = Host {
        uut,
        mem: AxiMemory::new(base, len, timing, seed ^ 0x5EED),
        base,
        rng,
        bar: VecDeque::new(),
        bar_state: (false, false, false),
        reads: vec![],
        cycle: 0,
    };
    h.uut.reset.next = true;
    h.step();
    h.step();
    h.uut.reset.next = false;
    // Bring-up, as CardLink::open: identity, scratch, ring set-up, soft reset.
    let evt = h.evt_base();
    h.bar.extend([
        Bar::Read(offset::ID_TYPE),
        Bar::Write(offset::SCRATCH, 0xA5A5_0F0F),
        Bar::Read(offset::SCRATCH),
        Bar::Read(offset::BUILD_ID),
        Bar::Write(offset::CMD_RING_ENTRIES, CMD_ENTRIES),
        Bar::Write(offset::CMD_RING_ADDR_LO, base as u32),
        Bar::Write(offset::CMD_RING_ADDR_HI, (base >> 32) as u32),
        Bar::Write(offset::EVT_RING_ENTRIES, EVT_ENTRIES),
        Bar::Write(offset::EVT_RING_ADDR_LO, evt as u32),
        Bar::Write(offset::EVT_RING_ADDR_HI, (evt >> 32) as u32),
        Bar::Read(offset::EVT_RING_ADDR_HI),
        Bar::Write(offset::CONTROL, CONTROL_SOFT_RESET),
    ]);
    h.settle_bar();
    assert_eq!(
        h.reads,
        [
            (offset::ID_TYPE, TYPE_LIQSCAN),
            (offset::SCRATCH, 0xA5A5_0F0F),
            (offset::BUILD_ID, 0x1234_5678),
            (offset::EVT_RING_ADDR_HI, (evt >> 32) as u32)
        ]
    );
    let (mut posted, mut rung, mut seen, mut published) = (0u32, 0u32, 0u32, 0u32);
    let mut got = vec![];
    let mut busy_until = 0u64;
    while got.len() < want.len() || (posted as usize) < entries.len() {
        assert!(
            h.cycle < 400_000,
            "seed {seed}: stuck: {} of {} events, {posted} posted",
            got.len(),
            want.len()
        );
        // Post while the ring has room (the card's consumer index is the host's flow control
        // here; the driver uses the cmd_seq in the events).
        let consumer = h.uut.cmd_consumer.val().to_u32();
        if (posted as usize) < entries.len() && posted.wrapping_sub(consumer) < CMD_ENTRIES {
            let o = (posted % CMD_ENTRIES) as usize * RING_ENTRY_BYTES;
            for (i, x) in entries[posted as usize].iter().enumerate() {
                h.mem.mem[o + 4 * i..o + 4 * i + 4].copy_from_slice(&x.to_le_bytes());
            }
            posted += 1;
        }
        if h.bar.is_empty() && rung != posted && h.rng.gen_range(0..3) == 0 {
            h.bar.push_back(Bar::Write(offset::CMD_DOORBELL, posted));
            rung = posted;
        }
        // Poll the next event slot by its phase bit; now and then the host is busy.
        if h.cycle >= busy_until {
            let slot = evt + (seen % EVT_ENTRIES) as u64 * RING_ENTRY_BYTES as u64;
            let w = h.words_at(slot);
            let phase = (seen / EVT_ENTRIES).is_multiple_of(2);
            if (w[0] & PHASE_BIT != 0) == phase {
                let i = got.len();
                assert!(i < want.len(), "seed {seed}: more events than the models give");
                assert_eq!(
                    without_cycles(w),
                    without_cycles(want[i]),
                    "seed {seed}: event {i}: {:?}",
                    EventEntry::decode_words(&want[i])
                );
                got.push(w);
                seen += 1;
            }
            if h.rng.gen_range(0..50) == 0 {
                busy_until = h.cycle + h.rng.gen_range(0..200);
            }
        }
        if h.bar.is_empty() && published != seen && h.rng.gen_range(0..4) == 0 {
            h.bar.push_back(Bar::Write(offset::EVT_CONSUMER, seen));
            published = seen;
        }
        h.step();
    }
    for _ in 0..200 {
        h.step();
    }
    assert_eq!(h.uut.evt_producer.val().to_u32() as usize, want.len(), "seed {seed}: no extra events");
    assert!(!h.uut.dma_error.val());
    assert!(h.mem.violations.is_empty(), "seed {seed}: {:?}", h.mem.violations);
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
    (h.cycle, got.len())
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
                let (cycles, events) = run_card(500 + k as u64, 40, 6, 90, t);
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
