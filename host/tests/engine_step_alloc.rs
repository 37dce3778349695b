//! The engine step allocates nothing per tick: a message applied through `FeedMsg::apply_to`
//! to any engine behind `Box<dyn ScanEngine>` (the software engine, or a fail-over engine with
//! its mirror), then `Step::collect` and `Step::diff`, as the pipeline's engine thread does.
//! Counted by a global allocator that counts this thread's allocations only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use liqscan_hdl::abi::{Coeff, PriceEntry, QuotedPrice};
use liqscan_host::engine::failover::FailoverEngine;
use liqscan_host::engine::{ScanEngine, SoftwareEngine, Step};
use liqscan_host::pipeline::FeedMsg;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed to the system allocator unchanged; the count is a thread-local
// `Cell` with a const initialiser, which needs no allocation to reach.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is forwarded as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

const SLOTS: usize = 20_000;
const ASSETS: usize = 8;

fn price(p: u32) -> PriceEntry {
    PriceEntry {
        spot: QuotedPrice { asset: p, liability: p },
        stressed: QuotedPrice { asset: p * 9 / 10, liability: p * 11 / 10 },
    }
}

/// Loads a book, then counts the allocations of 3,000 ticks (which breach and clear accounts)
/// through apply, collect and diff.
fn ticks_allocate_nothing(mut engine: Box<dyn ScanEngine>) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for a in 0..ASSETS {
        engine.tick(a as u16, price(1000)).unwrap();
    }
    for s in 0..SLOTS {
        let (c, d) = (rng.gen_range(0..ASSETS as u16), rng.gen_range(0..ASSETS as u16));
        let k = rng.gen_range(100..10_000);
        let mut t = vec![Coeff { asset: c, coeff: k }];
        if c != d {
            t.push(Coeff { asset: d, coeff: -(k * rng.gen_range(60..95) / 100) });
        }
        engine.upsert(s as u32, &t).unwrap();
    }
    engine.loaded();
    let mut step = Step::new(&mut engine);
    step.scan(&mut engine);
    let ticks: Vec<FeedMsg> = (0..3000)
        .map(|_| FeedMsg::Tick {
            asset: rng.gen_range(0..ASSETS as u16),
            price: price(rng.gen_range(700..1300)),
        })
        .collect();
    // One pass to let every structure reach its working size, then the counted pass.
    let mut news = 0;
    for pass in 0..2 {
        let before = allocs();
        for m in &ticks {
            m.apply_to(&mut engine).unwrap();
            step.collect(&mut engine);
            let n = step.diff(&engine);
            news += n.breached.len() + n.cleared.len();
        }
        if pass == 1 {
            assert_eq!(allocs() - before, 0, "{}: allocations in 3,000 ticks", engine.name());
        }
    }
    assert!(news > 1000, "the ticks breach and clear accounts: {news}");
}

#[test]
fn a_tick_through_the_step_allocates_nothing() {
    let before = allocs();
    drop(std::hint::black_box(Vec::<u64>::with_capacity(16)));
    assert_eq!(allocs() - before, 1, "the counter sees this thread's allocations");
    ticks_allocate_nothing(Box::new(SoftwareEngine::new(SLOTS, ASSETS)));
    ticks_allocate_nothing(Box::new(FailoverEngine::new(Box::new(SoftwareEngine::new(SLOTS, ASSETS)))));
}
