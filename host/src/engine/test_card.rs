//! A software engine that poses as a card, for the fail-over and router tests: it faults on its
//! `fault_at`-th call after doing it (the card took the command, the answer never came), can
//! leave its breach bitmap scribbled on when it does (a card's mirror left half updated), and
//! can take at least `delay` a tick.

use std::time::{Duration, Instant};

use liqscan_hdl::abi::{Coeff, PriceEntry};

use super::{EngineError, ScanEngine, SoftwareEngine};
use crate::link::LinkError;

pub(crate) struct TestCard {
    inner: SoftwareEngine,
    calls: usize,
    fault_at: usize,
    delay: Duration,
    scribble: bool,
    scribbled: Vec<u64>,
}

impl TestCard {
    /// A card of `slots` slots and `assets` assets that never faults and answers at once.
    pub(crate) fn new(slots: usize, assets: usize) -> TestCard {
        TestCard {
            inner: SoftwareEngine::new(slots, assets),
            calls: 0,
            fault_at: usize::MAX,
            delay: Duration::ZERO,
            scribble: false,
            scribbled: Vec::new(),
        }
    }

    /// Faults on the `n`-th call (counted from 1) and every one after.
    pub(crate) fn faulting_at(mut self, n: usize) -> TestCard {
        self.fault_at = n;
        self
    }

    /// A fault also inverts the breach bitmap the card shows.
    pub(crate) fn scribbling(mut self) -> TestCard {
        self.scribble = true;
        self
    }

    /// Every tick and batch tick takes at least `delay`.
    pub(crate) fn slow(mut self, delay: Duration) -> TestCard {
        self.delay = delay;
        self
    }

    fn call(
        &mut self,
        f: impl FnOnce(&mut SoftwareEngine) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        self.calls += 1;
        let r = f(&mut self.inner);
        if self.calls < self.fault_at {
            return r;
        }
        if self.scribble {
            self.scribbled = self.inner.breach().iter().map(|w| !w).collect();
        }
        Err(LinkError::Protocol("scan done for the wrong command".into()).into())
    }

    fn spin(&self) {
        let t0 = Instant::now();
        while t0.elapsed() < self.delay {
            std::hint::spin_loop();
        }
    }
}

impl ScanEngine for TestCard {
    fn name(&self) -> &'static str {
        "card"
    }
    fn slots(&self) -> usize {
        self.inner.slots()
    }
    fn assets(&self) -> usize {
        self.inner.assets()
    }
    fn upsert(&mut self, slot: u32, terms: &[Coeff]) -> Result<(), EngineError> {
        self.call(|e| e.upsert(slot, terms))
    }
    fn remove(&mut self, slot: u32) -> Result<(), EngineError> {
        self.call(|e| e.remove(slot))
    }
    fn tick(&mut self, asset: u16, price: PriceEntry) -> Result<(), EngineError> {
        self.spin();
        self.call(|e| e.tick(asset, price))
    }
    fn batch_tick(&mut self, prices: &[PriceEntry]) -> Result<(), EngineError> {
        self.spin();
        self.call(|e| e.batch_tick(prices))
    }
    fn prices(&self) -> &[PriceEntry] {
        self.inner.prices()
    }
    fn breach(&self) -> &[u64] {
        if self.scribbled.is_empty() { self.inner.breach() } else { &self.scribbled }
    }
    fn at_risk(&self) -> &[u64] {
        self.inner.at_risk()
    }
    fn changed_words(&mut self, out: &mut Vec<u32>) {
        self.inner.changed_words(out)
    }
    fn is_card(&self) -> bool {
        true
    }
}
