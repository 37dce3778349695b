//! The command decoder and the event packer (rust-hdl, hand-clocked) against their golden
//! models, with random idle cycles on every input port and random back-pressure on every
//! output port.
//!
//! ```text
//!  random entries ──beats──> CmdDecoder ──core commands──> check against DecoderModel
//!                                       └─jobs───────────> check
//!  random jobs + core words ──> EvtPacker ──event beats──> check against PackerModel
//! ```

use liqscan_hdl::abi::config::{CARD_ACCOUNTS, GROUPS, LANES, TERM_WORDS, UNPACKED_GROUPS};
use liqscan_hdl::abi::ring::{RING_ENTRY_WORDS, TERMS_PER_ENTRY};
use liqscan_hdl::abi::widths::{Coeff, PriceEntry, QuotedPrice};
use liqscan_hdl::abi::{Command, Event, EventEntry};
use liqscan_hdl::front::cmd_decoder::*;
use liqscan_hdl::front::evt_packer::*;
use liqscan_hdl::golden::{CoreOut, cmd_fields, op};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_hdl::prelude::*;

fn price(rng: &mut ChaCha8Rng) -> PriceEntry {
    let mut q = || QuotedPrice { asset: rng.r#gen(), liability: rng.r#gen() };
    PriceEntry { spot: q(), stressed: q() }
}

/// Mostly in range, now and then beyond the card's limit.
fn index(rng: &mut ChaCha8Rng, limit: u32, max: u32) -> u32 {
    match rng.gen_range(0..10) {
        0 => rng.gen_range(limit..=max),
        1 => limit - 1,
        _ => rng.gen_range(0..limit.min(40)),
    }
}

/// A random command entry with sequence number `seq`: every kind, fields now and then out of
/// the card's range, and now and then a word changed at random (mostly no longer decoding).
fn random_entry(rng: &mut ChaCha8Rng, seq: u32) -> [u32; RING_ENTRY_WORDS] {
    let cmd = match rng.gen_range(0..16) {
        0..=3 => Command::Tick { asset: index(rng, 256, 65535) as u16, price: price(rng) },
        4..=5 => {
            Command::BatchTick { asset: index(rng, 256, 65535) as u16, price: price(rng), last: rng.r#gen() }
        }
        6..=9 => {
            let count = rng.gen_range(0..=TERMS_PER_ENTRY as u8);
            let mut terms = [Coeff::default(); TERMS_PER_ENTRY];
            for t in terms.iter_mut().take(count as usize) {
                let coeff = if rng.gen_range(0..6) == 0 { 0 } else { rng.gen_range(-i32::MAX..=i32::MAX) };
                *t = Coeff { asset: index(rng, 256, 65535) as u16, coeff };
            }
            let word = index(rng, TERM_WORDS as u32 - count as u32 + 1, u16::MAX as u32) as u16;
            Command::AccountTerms { account: index(rng, CARD_ACCOUNTS as u32, u32::MAX), word, count, terms }
        }
        10 => Command::SetGroup {
            group: index(rng, GROUPS as u32, u32::MAX),
            first: index(rng, TERM_WORDS as u32 - 16, u16::MAX as u32) as u16,
            len: rng.gen_range(0..=18),
        },
        11 => Command::Params {
            active_accounts: index(rng, CARD_ACCOUNTS as u32 + 1, u32::MAX),
            term_slots: rng.gen_range(0..=17),
        },
        12..=13 => Command::Fence { token: rng.r#gen() },
        _ => Command::ScanFull,
    };
    let mut w = cmd.encode_words(seq);
    match rng.gen_range(0..12) {
        0 => {
            let i = rng.gen_range(0..RING_ENTRY_WORDS);
            if i != 1 {
                w[i] ^= 1 << rng.gen_range(0..32);
            }
        }
        1 => w[0] = rng.gen_range(0..0x20),
        2 => w[4 + rng.gen_range(0..8)] = 0x8000_0000,
        _ => {}
    }
    w
}

/// The core command the decoder offers, as the port's fields.
fn core_fields(u: &CmdDecoder) -> (u64, u64, u64, u64, u64) {
    (
        u.core_op.val().to_u64(),
        u.core_addr.val().to_u64(),
        u.core_sub.val().to_u64(),
        u.core_data0.val().to_u64(),
        u.core_data1.val().to_u64(),
    )
}

/// `n` entries (1 in 10 with a jumped sequence number) through the decoder: beats with random
/// idle cycles, core and job ports back-pressured at random; every core command and job equals
/// the model's, in order, and the sticky `errors` take an Error job's bits in the cycle after
/// its handshake, every cycle checked.
fn run_decoder(seed: u64, n: usize, idle: u32, stall: u32) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut model = DecoderModel::default();
    let (mut want_cmds, mut want_jobs) = (vec![], vec![]);
    let mut entries = vec![];
    let mut seq = 0u32;
    for _ in 0..n {
        if rng.gen_range(0..10) == 0 {
            seq = rng.r#gen();
        }
        let w = random_entry(&mut rng, seq);
        seq = seq.wrapping_add(1);
        let (c, j) = model.entry(&w);
        want_cmds.extend(c.iter().map(cmd_fields));
        want_jobs.extend(j);
        entries.push(w);
    }
    let mut uut = CmdDecoder::default();
    uut.connect_all();
    let (mut got_cmds, mut got_jobs, mut scan_starts) = (vec![], vec![], 0);
    let (mut entry, mut beat, mut quiet, mut cycle) = (0usize, 0usize, 0, 0u64);
    let mut errors = 0u32;
    while quiet < 40 {
        assert!(cycle < 200_000, "seed {seed}: the decoder stopped making progress");
        let offer = entry < n && rng.gen_range(0..100) >= idle;
        let (core_ready, job_ready) = (rng.gen_range(0..100) >= stall, rng.gen_range(0..100) >= stall);
        if entry < n {
            let w = &entries[entry];
            uut.cmd_data.next = (w[2 * beat] as u64 | (w[2 * beat + 1] as u64) << 32).into();
        }
        uut.cmd_valid.next = offer;
        uut.cmd_last.next = beat == 7;
        uut.core_ready.next = core_ready;
        uut.job_ready.next = job_ready;
        uut.clock.next = Clock { clk: false };
        assert!(simulate(&mut uut, 1000));
        let mut active = uut.core_valid.val() || uut.job_valid.val() || entry < n;
        if offer && uut.cmd_ready.val() {
            beat += 1;
            if beat == 8 {
                beat = 0;
                entry += 1;
            }
        }
        if uut.core_valid.val() && core_ready {
            let f = core_fields(&uut);
            if uut.scan_start.val() {
                assert!(f.0 == op::SCAN_FULL || f.0 == op::SCAN_ASSET, "seed {seed}: scan_start on {f:?}");
                scan_starts += 1;
            }
            got_cmds.push(f);
        } else {
            assert!(!uut.scan_start.val(), "seed {seed}: scan_start without a command taken");
        }
        assert_eq!(uut.errors.val().to_u32(), errors, "seed {seed}: errors in cycle {cycle}");
        if uut.job_valid.val() && job_ready {
            got_jobs.push(Job {
                kind: uut.job_kind.val().to_u64(),
                seq: uut.job_seq.val().to_u32(),
                arg: uut.job_arg.val().to_u32(),
                detail: uut.job_detail.val().to_u32(),
                refresh: uut.job_refresh.val(),
            });
            if uut.job_kind.val().to_u64() == job_kind::ERROR {
                errors |= uut.job_arg.val().to_u32();
            }
        }
        uut.clock.next = Clock { clk: true };
        assert!(simulate(&mut uut, 1000));
        assert_eq!(uut.errors.val().to_u32(), errors, "seed {seed}: errors after cycle {cycle}'s edge");
        active |= uut.core_valid.val() || uut.job_valid.val();
        quiet = if active { 0 } else { quiet + 1 };
        cycle += 1;
    }
    for (i, (g, w)) in got_cmds.iter().zip(&want_cmds).enumerate() {
        assert_eq!(g, w, "seed {seed}: core command {i}");
    }
    assert_eq!(got_cmds.len(), want_cmds.len(), "seed {seed}: core commands");
    for (i, (g, w)) in got_jobs.iter().zip(&want_jobs).enumerate() {
        assert_eq!(g, w, "seed {seed}: job {i}");
    }
    assert_eq!(got_jobs.len(), want_jobs.len(), "seed {seed}: jobs");
    let scans = want_jobs.iter().filter(|j| j.kind == job_kind::TICK || j.kind == job_kind::FULL).count();
    assert_eq!(scan_starts, scans, "seed {seed}: one scan_start per scan job");
    assert_eq!(uut.errors.val().to_u32(), model.errors, "seed {seed}");
    assert_eq!(uut.entries.val().to_u32() as usize, n, "seed {seed}");
    // The vectors covered what they are for.
    let kinds = |k| want_jobs.iter().filter(|j| j.kind == k).count();
    assert!(kinds(job_kind::ERROR) > 0 && kinds(job_kind::TICK) > 0 && kinds(job_kind::FULL) > 0);
    assert!(want_jobs.iter().any(|j| j.refresh), "seed {seed}: a refresh tick");
    assert!(want_cmds.iter().any(|c| c.0 == op::WRITE_TERM), "seed {seed}: term writes");
}

#[test]
fn decoder_matches_its_model_with_idle_cycles_and_back_pressure() {
    for (seed, (idle, stall)) in [(0, 0), (20, 30), (50, 60), (5, 80)].into_iter().enumerate() {
        for k in 0..3 {
            run_decoder(100 + 10 * seed as u64 + k, 300, idle, stall);
        }
    }
}

/// What the core sends for a scan job over `groups` active groups.
fn core_outputs(rng: &mut ChaCha8Rng, job: &Job, groups: u32) -> Vec<CoreOut> {
    let word = |rng: &mut ChaCha8Rng, group| {
        let m = ((1u64 << LANES) - 1) as u32;
        let (b, a) =
            if rng.gen_range(0..4) == 0 { (0, 0) } else { (rng.r#gen::<u32>() & m, rng.r#gen::<u32>() & m) };
        CoreOut::Word { group, breach: b, at_risk: a }
    };
    let mut out = vec![];
    if job.kind == job_kind::TICK {
        for g in 0..groups {
            if rng.gen_range(0..3) == 0 {
                out.push(word(rng, g));
            }
        }
        out.push(CoreOut::Done);
    }
    if job.kind == job_kind::FULL || job.refresh {
        // The core skips empty groups: in half the scans now and then a whole card word's
        // groups, so the words reported have gaps (a Bitmap entry holds consecutive words only).
        let per_word = (32 / LANES) as u32;
        let gappy = rng.gen_range(0..2) == 0;
        let mut skip = false;
        for g in 0..groups {
            if g % per_word == 0 {
                skip = gappy && rng.gen_range(0..4) == 0;
            }
            if !skip {
                out.push(word(rng, g));
            }
        }
        out.push(CoreOut::Done);
    }
    out
}

fn random_job(rng: &mut ChaCha8Rng, seq: u32) -> Job {
    let kind = [job_kind::ERROR, job_kind::FENCE, job_kind::TICK, job_kind::TICK, job_kind::FULL]
        [rng.gen_range(0..5)];
    Job {
        kind,
        seq,
        arg: if kind == job_kind::TICK { rng.gen_range(0..256) } else { rng.r#gen() },
        detail: if kind == job_kind::ERROR { rng.r#gen() } else { 0 },
        refresh: kind == job_kind::TICK && rng.gen_range(0..4) == 0,
    }
}

/// Takes the event beat the packer offers this cycle, if `evt_ready`; eight beats make an entry.
fn take_beat(
    uut: &EvtPacker,
    evt_ready: bool,
    beats: &mut Vec<u64>,
    entries: &mut Vec<[u32; RING_ENTRY_WORDS]>,
) {
    if uut.evt_valid.val() && evt_ready {
        beats.push(uut.evt_data.val().to_u64());
        if beats.len() == 8 {
            entries.push(std::array::from_fn(|i| (beats[i / 2] >> (32 * (i % 2))) as u32));
            beats.clear();
        }
    }
}

/// What the packer's test bench offers in one cycle: job `job` (while `offer_job`) and, while
/// job `serving` is served, its core output `out_i`.
struct Offer<'a> {
    jobs: &'a [Job],
    outs: &'a [Vec<CoreOut>],
    job: usize,
    offer_job: bool,
    serving: Option<usize>,
    out_i: usize,
    idle: u32,
}

/// Drives the packer's job port and core-output port for one cycle; returns whether a core
/// output is offered. The last scan command is taken before its first word (a refresh: before
/// the full scan's first word), and the core's first output comes at least a cycle after it
/// took the command (`scan_start`, at `start_cycle`).
fn drive_packer(
    uut: &mut EvtPacker,
    rng: &mut ChaCha8Rng,
    o: Offer,
    started: &mut bool,
    start_cycle: &mut u64,
    cycle: u64,
) -> bool {
    if let Some(j) = o.jobs.get(o.job) {
        uut.job_kind.next = j.kind.into();
        uut.job_seq.next = (j.seq as u64).into();
        uut.job_arg.next = (j.arg as u64).into();
        uut.job_detail.next = (j.detail as u64).into();
        uut.job_refresh.next = j.refresh;
    }
    uut.job_valid.next = o.offer_job;
    let mut scan_start = false;
    let mut offer_out = false;
    if let Some(s) = o.serving {
        let out = &o.outs[s];
        let last_scan_from =
            if o.jobs[s].refresh { out.iter().position(|x| *x == CoreOut::Done).unwrap() + 1 } else { 0 };
        offer_out = (o.out_i < last_scan_from || *started) && rng.gen_range(0..100) >= o.idle;
        if !*started && o.out_i >= last_scan_from && rng.gen_range(0..3) == 0 {
            scan_start = true;
            *started = true;
            *start_cycle = cycle;
        }
        match out[o.out_i] {
            CoreOut::Done => uut.out_done.next = true,
            CoreOut::Word { group, breach, at_risk } => {
                uut.out_done.next = false;
                uut.out_group.next = (group as u64).into();
                uut.out_breach.next = (breach as u64).into();
                uut.out_at_risk.next = (at_risk as u64).into();
            }
        }
    }
    uut.scan_start.next = scan_start;
    uut.out_valid.next = offer_out;
    offer_out
}

/// `n` random jobs through the packer: jobs and core words with random idle cycles, the event
/// port back-pressured at random; every entry equals the model's (with the cycle count the
/// test measured from `scan_start` to the done marker's transfer). Returns whether a scan's
/// words had a gap inside a Bitmap run (a new entry not where the previous one ended).
fn run_packer(seed: u64, n: usize, idle: u32, stall: u32) -> bool {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let jobs: Vec<Job> = (0..n as u32).map(|i| random_job(&mut rng, i.wrapping_mul(7))).collect();
    let outs: Vec<Vec<CoreOut>> = jobs
        .iter()
        .map(|j| {
            let groups = match rng.gen_range(0..8) {
                // The card's every group now and then (its last card word), else a fifth of them.
                0 => [GROUPS, UNPACKED_GROUPS][rng.gen_range(0..4).min(1)] as u32,
                1 => 0,
                _ => rng.gen_range(1..24),
            };
            core_outputs(&mut rng, j, groups)
        })
        .collect();
    let mut uut = EvtPacker::default();
    uut.connect_all();
    let (mut job, mut out_i, mut started, mut start_cycle) = (0usize, 0usize, false, 0u64);
    let mut cycles = vec![0u32; n];
    let (mut beats, mut entries) = (vec![], vec![]);
    let (mut quiet, mut cycle) = (0, 0u64);
    // Index of the job whose core words are being offered (taken by the packer).
    let mut serving: Option<usize> = None;
    while quiet < 40 {
        assert!(cycle < 400_000, "seed {seed}: the packer stopped making progress");
        let offer_job = serving.is_none() && job < n && rng.gen_range(0..100) >= idle;
        let offer_out = drive_packer(
            &mut uut,
            &mut rng,
            Offer { jobs: &jobs, outs: &outs, job, offer_job, serving, out_i, idle },
            &mut started,
            &mut start_cycle,
            cycle,
        );
        let evt_ready = rng.gen_range(0..100) >= stall;
        uut.evt_ready.next = evt_ready;
        uut.clock.next = Clock { clk: false };
        assert!(simulate(&mut uut, 1000));
        let active = uut.busy.val() || serving.is_some() || job < n;
        if offer_job && uut.job_ready.val() {
            if jobs[job].kind == job_kind::TICK || jobs[job].kind == job_kind::FULL {
                serving = Some(job);
                (out_i, started) = (0, false);
            }
            job += 1;
        }
        if offer_out && uut.out_ready.val() {
            let s = serving.unwrap();
            out_i += 1;
            if out_i == outs[s].len() {
                cycles[s] = (cycle - start_cycle) as u32;
                serving = None;
            }
        }
        take_beat(&uut, evt_ready, &mut beats, &mut entries);
        uut.clock.next = Clock { clk: true };
        assert!(simulate(&mut uut, 1000));
        quiet = if active { 0 } else { quiet + 1 };
        cycle += 1;
    }
    let mut model = PackerModel::default();
    let want: Vec<[u32; RING_ENTRY_WORDS]> = jobs
        .iter()
        .zip(&outs)
        .zip(&cycles)
        .flat_map(|((j, o), &c)| model.job(j, o, c))
        .map(|event| EventEntry { phase: false, seq: 0, event }.encode_words())
        .collect();
    for (i, (g, w)) in entries.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "seed {seed}: entry {i}: {:?}", EventEntry::decode_words(w));
    }
    assert_eq!(entries.len(), want.len(), "seed {seed}: entries");
    let decoded: Vec<Event> = want.iter().map(|w| EventEntry::decode_words(w).unwrap().event).collect();
    assert!(decoded.iter().any(|e| matches!(e, Event::ChangedWords { count: 4, .. })));
    assert!(decoded.iter().any(|e| matches!(e, Event::Bitmap { count: 6, .. })));
    // A scan's Bitmap entry that does not start where its previous one ended: a gap was taken.
    let runs: Vec<(u32, u32, u32)> = decoded
        .iter()
        .filter_map(|e| match *e {
            Event::Bitmap { cmd_seq, base_word, count, .. } => Some((cmd_seq, base_word, count as u32)),
            _ => None,
        })
        .collect();
    runs.windows(2).any(|p| p[0].0 == p[1].0 && p[1].1 != p[0].1 + p[0].2)
}

#[test]
fn packer_matches_its_model_with_idle_cycles_and_back_pressure() {
    let mut gaps = 0;
    for (seed, (idle, stall)) in [(0, 0), (20, 30), (50, 60), (5, 80)].into_iter().enumerate() {
        for k in 0..2 {
            gaps += run_packer(200 + 10 * seed as u64 + k, 60, idle, stall) as u32;
        }
    }
    assert!(gaps >= 4, "{gaps} runs of 8 split a scan's Bitmap words at a gap");
}

/// Where [`run_packer_resets`] resets the packer in a scan job: in the Read after the core's
/// word `k` (counted from 0) was taken, or in a Take with `out_ready` high once `k` outputs
/// were taken.
#[derive(Clone, Copy, Debug)]
enum ResetAt {
    Read(usize),
    Take(usize),
}

/// `n` random jobs through the packer as in [`run_packer`], but now and then a scan job is cut
/// by a one-cycle `reset` while the packer is in Read or Take (the core's remaining outputs for
/// it dropped, as the card's soft reset resets the core too). The cut job's entries sent before
/// the reset must be the first of the model's; every job after it must get exactly the model's
/// entries, the model's bitmap holding the words the packer merged before the reset (the shadow
/// is kept across a reset: in Take every word taken, in Read all but the last). Every other cut
/// job's next job is offered in the first cycle after the reset. Returns the cuts in Read that
/// had a push coming (a second-scan word, a word pending, another card word than it) and the
/// cuts in all.
fn run_packer_resets(seed: u64, n: usize, idle: u32, stall: u32) -> (u32, u32) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let jobs: Vec<Job> = (0..n as u32).map(|i| random_job(&mut rng, i.wrapping_mul(7))).collect();
    let outs: Vec<Vec<CoreOut>> = jobs
        .iter()
        .map(|j| {
            let groups = if rng.gen_range(0..4) == 0 { 0 } else { rng.gen_range(1..40) };
            core_outputs(&mut rng, j, groups)
        })
        .collect();
    // Where each scan job with words is cut, for about half of them.
    let cut_at: Vec<Option<ResetAt>> = outs
        .iter()
        .map(|o| {
            let words = o.iter().filter(|x| matches!(x, CoreOut::Word { .. })).count();
            if words < 2 || rng.gen_range(0..2) == 0 {
                return None;
            }
            // A taken output that is a word (Read) or any point before the last output (Take).
            let k = rng.gen_range(1..o.len() - 1);
            if matches!(o[k], CoreOut::Word { .. }) && rng.gen_range(0..3) != 0 {
                Some(ResetAt::Read(k))
            } else {
                Some(ResetAt::Take(k))
            }
        })
        .collect();
    let mut uut = EvtPacker::default();
    uut.connect_all();
    let (mut job, mut out_i, mut started, mut start_cycle) = (0usize, 0usize, false, 0u64);
    let mut cycles = vec![0u32; n];
    // Per job: the outputs the packer merged into its shadow, when the job was cut.
    let mut merged: Vec<Option<Vec<CoreOut>>> = vec![None; n];
    let (mut beats, mut entries) = (vec![], vec![]);
    let (mut quiet, mut cycle) = (0, 0u64);
    let mut serving: Option<usize> = None;
    // The last output taken was a word (so this cycle is Read).
    let mut took_word = false;
    let (mut pushing_cuts, mut cuts, mut offer_now) = (0u32, 0u32, false);
    while quiet < 40 {
        assert!(cycle < 400_000, "seed {seed}: the packer stopped making progress");
        let offer_job = serving.is_none() && job < n && (offer_now || rng.gen_range(0..100) >= idle);
        offer_now = false;
        let offer_out = drive_packer(
            &mut uut,
            &mut rng,
            Offer { jobs: &jobs, outs: &outs, job, offer_job, serving, out_i, idle },
            &mut started,
            &mut start_cycle,
            cycle,
        );
        uut.reset.next = false;
        let evt_ready = rng.gen_range(0..100) >= stall;
        uut.evt_ready.next = evt_ready;
        uut.clock.next = Clock { clk: false };
        assert!(simulate(&mut uut, 1000));
        // The cut, if it is due in this cycle: nothing offered, nothing taken.
        let cut = serving.and_then(|s| match cut_at[s] {
            Some(ResetAt::Read(k)) if took_word && out_i == k + 1 => Some((s, true)),
            Some(ResetAt::Take(k)) if uut.out_ready.val() && out_i == k => Some((s, false)),
            _ => None,
        });
        if let Some((s, in_read)) = cut {
            assert!(!offer_job && beats.is_empty(), "seed {seed}: a cut with a job or an entry on the way");
            uut.reset.next = true;
            uut.out_valid.next = false;
            uut.scan_start.next = false;
            uut.evt_ready.next = false;
            assert!(simulate(&mut uut, 1000));
            let taken = &outs[s][..out_i];
            if in_read {
                // Merge pushes the pending word when the scan's word taken in Take is in another
                // card word: the words reported so far, the last before it (its own excluded).
                let reported_from = if jobs[s].refresh {
                    taken.iter().position(|x| *x == CoreOut::Done).map(|p| p + 1)
                } else {
                    Some(0)
                };
                let card_word = |x: &CoreOut| match *x {
                    CoreOut::Word { group, .. } => group as usize * LANES / 32,
                    CoreOut::Done => usize::MAX,
                };
                if let Some(from) = reported_from
                    && out_i >= from + 2
                    && card_word(&taken[out_i - 1]) != card_word(&taken[out_i - 2])
                {
                    pushing_cuts += 1;
                }
                merged[s] = Some(taken[..out_i - 1].to_vec());
            } else {
                merged[s] = Some(taken.to_vec());
            }
            cuts += 1;
            serving = None;
            took_word = false;
            offer_now = cuts % 2 == 1;
        } else {
            if offer_job && uut.job_ready.val() {
                if jobs[job].kind == job_kind::TICK || jobs[job].kind == job_kind::FULL {
                    serving = Some(job);
                    (out_i, started) = (0, false);
                }
                job += 1;
            }
            took_word = false;
            if offer_out && uut.out_ready.val() {
                let s = serving.unwrap();
                took_word = matches!(outs[s][out_i], CoreOut::Word { .. });
                out_i += 1;
                if out_i == outs[s].len() {
                    cycles[s] = (cycle - start_cycle) as u32;
                    serving = None;
                }
            }
            take_beat(&uut, evt_ready, &mut beats, &mut entries);
        }
        let active = uut.busy.val() || serving.is_some() || job < n;
        uut.clock.next = Clock { clk: true };
        assert!(simulate(&mut uut, 1000));
        quiet = if active || cut.is_some() { 0 } else { quiet + 1 };
        cycle += 1;
    }
    // The entries, job by job (word 2 is the command's sequence number in every entry).
    let mut model = PackerModel::default();
    let mut at = 0usize;
    for (i, (j, o)) in jobs.iter().zip(&outs).enumerate() {
        let encode = |event| EventEntry { phase: false, seq: 0, event }.encode_words();
        let mine = entries[at..].iter().take_while(|w| w[2] == j.seq).count();
        let got = &entries[at..at + mine];
        at += mine;
        match &merged[i] {
            None => {
                let want: Vec<_> = model.job(j, o, cycles[i]).into_iter().map(encode).collect();
                assert_eq!(got, &want[..], "seed {seed}: job {i} ({j:?}), after {cuts} cuts");
            }
            Some(m) => {
                let want: Vec<_> = model.clone().job(j, o, 0).into_iter().map(encode).collect();
                assert!(got.len() < want.len(), "seed {seed}: job {i} cut, yet all its entries came");
                assert_eq!(got, &want[..got.len()], "seed {seed}: cut job {i} ({j:?})");
                model.job(j, m, 0);
            }
        }
    }
    assert_eq!(at, entries.len(), "seed {seed}: entries left over");
    (pushing_cuts, cuts)
}

/// A soft reset in the middle of a scan (the packer in Read or Take) leaves the packer idle and
/// ready: the next jobs' entries are the model's, nothing of the cut job's slots, pending word
/// or push carried into them.
#[test]
fn packer_recovers_from_a_reset_in_read_or_take() {
    let (mut pushing, mut cuts) = (0, 0);
    for (seed, (idle, stall)) in [(0, 0), (20, 30), (50, 60), (5, 80)].into_iter().enumerate() {
        for k in 0..2 {
            let (p, c) = run_packer_resets(300 + 10 * seed as u64 + k, 40, idle, stall);
            pushing += p;
            cuts += c;
        }
    }
    assert!(cuts >= 40 && pushing >= 8, "{cuts} cuts, {pushing} of them in Read with a push coming");
}

/// A reset in the cycle the packer takes an Error job wins: its bits never reach `errors`
/// (the decoder's `err_take` is cleared by the reset as `errs` is); without the reset they
/// show in the cycle after the handshake and stay.
#[test]
fn decoder_reset_at_an_error_jobs_handshake_drops_its_bits() {
    use liqscan_hdl::abi::regs::error_bit;
    let mut uut = CmdDecoder::default();
    uut.connect_all();
    let cycle = |uut: &mut CmdDecoder, check: &mut dyn FnMut(&CmdDecoder)| {
        uut.clock.next = Clock { clk: false };
        assert!(simulate(uut, 1000));
        check(uut);
        uut.clock.next = Clock { clk: true };
        assert!(simulate(uut, 1000));
    };
    uut.reset.next = true;
    cycle(&mut uut, &mut |_| {});
    uut.reset.next = false;
    for reset_at_handshake in [true, false] {
        // Sequence number 5 where 0 is expected (a reset restarts the count): a SEQ_GAP job.
        let w = Command::Fence { token: 9 }.encode_words(5);
        uut.job_ready.next = false;
        for beat in 0..8 {
            uut.cmd_valid.next = true;
            uut.cmd_data.next = (w[2 * beat] as u64 | (w[2 * beat + 1] as u64) << 32).into();
            uut.cmd_last.next = beat == 7;
            cycle(&mut uut, &mut |u| assert!(u.cmd_ready.val()));
        }
        uut.cmd_valid.next = false;
        let mut waited = 0;
        loop {
            let mut offered = false;
            uut.reset.next = false;
            uut.job_ready.next = false;
            uut.clock.next = Clock { clk: false };
            assert!(simulate(&mut uut, 1000));
            if uut.job_valid.val() {
                assert_eq!(uut.job_kind.val().to_u64(), job_kind::ERROR);
                assert_eq!(uut.job_arg.val().to_u32(), error_bit::SEQ_GAP);
                uut.job_ready.next = true;
                uut.reset.next = reset_at_handshake;
                assert!(simulate(&mut uut, 1000));
                offered = true;
            }
            assert_eq!(uut.errors.val().to_u32(), 0, "before the handshake");
            uut.clock.next = Clock { clk: true };
            assert!(simulate(&mut uut, 1000));
            if offered {
                break;
            }
            waited += 1;
            assert!(waited < 10, "no job");
        }
        uut.reset.next = false;
        uut.job_ready.next = false;
        let want = if reset_at_handshake { 0 } else { error_bit::SEQ_GAP };
        for k in 0..4 {
            cycle(&mut uut, &mut |u| {
                assert_eq!(u.errors.val().to_u32(), want, "reset {reset_at_handshake}, cycle {k} after")
            });
        }
    }
}
