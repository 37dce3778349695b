//! The cost of the one engine step against the hand-forwarded path it replaced, per tick.
//!
//! ```text
//!   cargo bench -p liqscan-host --bench engine_step
//! ```
//!
//! Three identical software engines take the same ticks, round by round (so the machine's
//! load falls on all three alike): (a) called directly, as `pipeline::Backend::Software` did
//! (static calls, then changed words, sort, `bitmap::Diff`); (b) behind `Box<dyn ScanEngine>`
//! through `FeedMsg::apply_to`, `Step::collect`, `Step::diff` and the fail-over check the
//! pipeline's engine thread makes; (c) the same inside a `FailoverEngine` (the card's wrapper:
//! mirror updated per tick). Each tick's time (apply to diff) goes into a histogram.

use std::hint::black_box;
use std::time::Instant;

use hdrhistogram::Histogram;
use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::bitmap::{Changes, Diff};
use liqscan_host::engine::failover::FailoverEngine;
use liqscan_host::engine::{ScanEngine, SoftwareEngine, Step};
use liqscan_host::pipeline::FeedMsg;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SLOTS: usize = 20_000;
const ASSETS: usize = 16;
const TICKS: usize = 20_000;
const ROUNDS: usize = 5;

fn price(p: u32) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: p, liability: p },
        stressed: QuotedPrice { asset: p * 9 / 10, liability: p * 11 / 10 },
    }
}

fn loaded(seed: u64) -> SoftwareEngine {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut e = SoftwareEngine::new(SLOTS, ASSETS);
    for a in 0..ASSETS {
        e.tick(a as u16, price(1000)).unwrap();
    }
    for s in 0..SLOTS {
        let (c, d) = (rng.gen_range(0..ASSETS as u16), rng.gen_range(0..ASSETS as u16));
        let k = rng.gen_range(100..10_000);
        let mut t = vec![Coeff { asset: c, coeff: k }];
        if c != d {
            t.push(Coeff { asset: d, coeff: -(k * rng.gen_range(60..95) / 100) });
        }
        e.upsert(s as u32, &t).unwrap();
    }
    e.loaded();
    e
}

fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).unwrap()
}

fn row(name: &str, h: &Histogram<u64>) {
    println!(
        "{name:<36} {:>8} {:>9.0} {:>9} {:>9} {:>9}",
        h.len(),
        h.mean(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99)
    );
}

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let ticks: Vec<(u16, PriceEntry)> =
        (0..TICKS).map(|_| (rng.gen_range(0..ASSETS as u16), price(rng.gen_range(800..1200)))).collect();

    // (a) the path before: static calls on the engine, changed words, sort, Diff.
    let mut direct = loaded(1);
    let words = direct.breach().len();
    let mut changed: Vec<u32> = Vec::with_capacity(words);
    direct.changed_words(&mut changed);
    let mut diff = Diff::starting_at(direct.breach(), direct.at_risk());
    let mut news = Changes::default();
    // (b) any engine behind the trait, through the one step.
    let mut boxed: Box<dyn ScanEngine> = Box::new(loaded(1));
    let mut step_b = Step::starting_at(&mut boxed);
    // (c) the fail-over wrapper the card runs in (the primary here is software).
    let mut failover: Box<dyn ScanEngine> =
        Box::new(FailoverEngine::new(Box::new(SoftwareEngine::new(SLOTS, ASSETS))));
    {
        let src = loaded(1);
        failover.batch_tick(src.prices()).unwrap();
        for s in 0..SLOTS as u32 {
            failover.upsert(s, src.terms(s)).unwrap();
        }
    }
    let mut step_c = Step::starting_at(&mut failover);
    let (mut ha, mut hb, mut hc) = (hist(), hist(), hist());
    let mut seen = 0usize;
    for _ in 0..ROUNDS {
        for &(asset, p) in &ticks {
            let t0 = Instant::now();
            direct.tick(asset, p).unwrap();
            changed.clear();
            direct.changed_words(&mut changed);
            changed.sort_unstable();
            news.clear();
            diff.step(&changed, direct.breach(), direct.at_risk(), &mut news);
            seen += black_box(news.breached.len());
            ha.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        for (step, engine, h) in [(&mut step_b, &mut boxed, &mut hb), (&mut step_c, &mut failover, &mut hc)] {
            let mut failovers = engine.failovers().len();
            for &(asset, price) in &ticks {
                let t0 = Instant::now();
                FeedMsg::Tick { asset, price }.apply_to(engine).unwrap();
                if engine.failovers().len() != failovers {
                    failovers = engine.failovers().len();
                }
                step.collect(engine);
                seen += black_box(step.diff(engine).breached.len());
                h.saturating_record(t0.elapsed().as_nanos() as u64);
            }
        }
    }
    assert_eq!(direct.breach(), boxed.breach());
    assert_eq!(direct.breach(), failover.breach());
    println!(
        "# engine step: {SLOTS} accounts, {ASSETS} assets, {TICKS} ticks x {ROUNDS} rounds ({seen} breaches seen)"
    );
    println!(
        "{:<36} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "path (ns per tick)", "ticks", "mean", "p50", "p90", "p99"
    );
    row("direct SoftwareEngine + Diff (before)", &ha);
    row("Box<dyn ScanEngine> + Step", &hb);
    row("FailoverEngine + Step", &hc);
}
