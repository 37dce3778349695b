//! How a polling loop waits for work: one type for every loop that looks at a queue, a ring or
//! a flag until something arrives (the engine and dispatch threads, the feed queue's
//! back-pressure, the card link's event ring).
//!
//! A thread that busy-polls is always runnable, so on a shared core the scheduler charges its
//! spinning against the work it has to do (`liqscan bench-link` measured a spinning engine
//! thread getting 22 % of its core under load against 49 % for the bare loop; see
//! `pipeline::IDLE_SPINS`). A dedicated, isolated core should spin; anything else should spin
//! a little, then sleep between looks.

use std::time::Duration;

/// A waiting policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Busy-poll, never sleep (a dedicated core).
    Spin,
    /// Spin `spins` empty polls, then sleep `sleep` between looks.
    SpinThenSleep {
        /// Empty polls before the first sleep.
        spins: u32,
        /// Sleep between later looks (the timer's slack, ~50 us, comes on top).
        sleep: Duration,
    },
}

impl WaitStrategy {
    /// Spin 4096 empty polls, then sleep 20 us between looks: the default of the pipeline's
    /// threads on a shared core.
    pub const SHARED_CORE: WaitStrategy =
        WaitStrategy::SpinThenSleep { spins: 4096, sleep: Duration::from_micros(20) };

    /// `Spin` if `spin`, else `fallback`.
    pub fn spin_or(spin: bool, fallback: WaitStrategy) -> WaitStrategy {
        if spin { WaitStrategy::Spin } else { fallback }
    }

    /// A fresh waiter.
    pub fn waiter(self) -> Waiter {
        Waiter { strategy: self, idle: 0 }
    }
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SHARED_CORE
    }
}

/// One loop's wait state: call [`idle`](Waiter::idle) after each empty poll and
/// [`reset`](Waiter::reset) when work arrived.
#[derive(Clone, Debug)]
pub struct Waiter {
    strategy: WaitStrategy,
    idle: u32,
}

impl Waiter {
    /// Waits once, as the strategy says for the empty polls so far.
    #[inline]
    pub fn idle(&mut self) {
        // Wraps after 2^32 looks (a day asleep): a few thousand spins, then sleeping again.
        self.idle = self.idle.wrapping_add(1);
        match self.strategy {
            WaitStrategy::SpinThenSleep { spins, sleep } if self.idle > spins => std::thread::sleep(sleep),
            _ => std::hint::spin_loop(),
        }
    }

    /// Work arrived: the next empty poll starts spinning again.
    #[inline]
    pub fn reset(&mut self) {
        self.idle = 0;
    }

    /// Empty polls since the last [`reset`](Waiter::reset) (modulo 2^32).
    pub fn idle_polls(&self) -> u32 {
        self.idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn spins_then_sleeps_and_reset_spins_again() {
        let sleep = Duration::from_millis(2);
        let mut w = WaitStrategy::SpinThenSleep { spins: 100, sleep }.waiter();
        for _ in 0..100 {
            w.idle();
        }
        let t = Instant::now();
        for _ in 0..3 {
            w.idle();
        }
        assert!(t.elapsed() >= 3 * sleep, "past the spins every look sleeps");
        assert_eq!(w.idle_polls(), 103);
        w.reset();
        assert_eq!(w.idle_polls(), 0);
    }

    #[test]
    fn spin_never_sleeps() {
        let mut w = WaitStrategy::spin_or(true, WaitStrategy::SHARED_CORE).waiter();
        let t = Instant::now();
        for _ in 0..100_000 {
            w.idle();
        }
        // 100,000 sleeps of 20 us would take two seconds at least.
        assert!(t.elapsed() < Duration::from_secs(1));
        assert_eq!(WaitStrategy::spin_or(false, WaitStrategy::SHARED_CORE), WaitStrategy::SHARED_CORE);
    }
}
