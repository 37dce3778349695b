//! A persistent helper thread for the full scan: spawned once, pinned, woken by an atomic.
//!
//! ```text
//!   batch_tick (caller's thread)                 helper (spawned once, pinned)
//!     publish job (blocks mid..n, pointers)
//!     go += 1  ─────────────────────────────────>  sees go change (spinning)
//!     scan blocks 0..mid into the bitmaps          scan blocks mid..n into `out`
//!     spin until done == go  <───────────────────  done = go
//!     apply `out` (and rechecks) to the bitmaps
//! ```
//!
//! No allocation, lock or syscall per scan while the helper is spinning. After
//! [`SPIN_FOR`] without work it parks (so an idle engine does not burn a core); the next scan
//! then pays one `unpark` (a futex wake) and the helper's wake-up latency. A keeper that wants
//! no syscall at all keeps scans closer together than [`SPIN_FOR`].

use std::cell::UnsafeCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::blocks::BlockStore;
use super::kernel::{Kernel, PriceTables, Words};

/// How long the idle helper spins before it parks.
pub(crate) const SPIN_FOR: Duration = Duration::from_millis(20);

/// What the helper scans: raw views of the engine's structures, valid from the `go` store
/// that publishes them until the helper's `done` store (the caller neither moves nor mutates
/// them in between: it is inside `batch_tick` and waits for `done`).
#[derive(Clone, Copy)]
struct Job {
    kernel: Kernel,
    store: *const BlockStore,
    prices: *const PriceTables,
    from: usize,
    to: usize,
    out: *mut Words,
}

struct Shared {
    go: AtomicU64,
    done: AtomicU64,
    stop: AtomicBool,
    sleeping: AtomicBool,
    job: UnsafeCell<Job>,
}

// SAFETY: `job` is written only by the owning engine while the helper is idle (done == go) and
// read by the helper only between seeing a new `go` (Acquire) and storing `done` (Release);
// the pointers it holds are valid for that interval (see `Job`).
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

pub(crate) struct Pool {
    shared: Arc<Shared>,
    helper: Option<JoinHandle<()>>,
    out: Vec<Words>,
}

impl Pool {
    /// Spawns the helper for a store of `blocks` blocks; pinned to `core` when given.
    pub fn new(blocks: usize, core: Option<core_affinity::CoreId>) -> Pool {
        let shared = Arc::new(Shared {
            go: AtomicU64::new(0),
            done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            job: UnsafeCell::new(Job {
                kernel: Kernel::Portable,
                store: std::ptr::null(),
                prices: std::ptr::null(),
                from: 0,
                to: 0,
                out: std::ptr::null_mut(),
            }),
        });
        let s = Arc::clone(&shared);
        let helper = std::thread::Builder::new()
            .name("liqscan-scan".into())
            .spawn(move || {
                if let Some(c) = core {
                    crate::pipeline::affinity::pin("scan helper thread", c.id);
                }
                helper(&s)
            })
            .expect("spawn the scan helper thread");
        Pool { shared, helper: Some(helper), out: vec![Words::default(); blocks] }
    }

    /// Starts the helper on blocks `from..to`; the caller must call [`wait`](Self::wait)
    /// before touching `store` or `prices` mutably or letting them move.
    pub fn start(
        &mut self,
        kernel: Kernel,
        store: &BlockStore,
        prices: &PriceTables,
        from: usize,
        to: usize,
    ) {
        let job = Job { kernel, store, prices, from, to, out: self.out.as_mut_ptr() };
        // SAFETY: the helper is idle (every start is followed by a wait before the next).
        unsafe { *self.shared.job.get() = job };
        self.shared.go.fetch_add(1, Ordering::SeqCst);
        if self.shared.sleeping.load(Ordering::SeqCst)
            && let Some(h) = &self.helper
        {
            h.thread().unpark();
        }
    }

    /// Waits for the helper; returns its words for blocks `from..to`, indexed from 0.
    pub fn wait(&self) -> &[Words] {
        let go = self.shared.go.load(Ordering::Relaxed);
        while self.shared.done.load(Ordering::Acquire) != go {
            std::hint::spin_loop();
        }
        // SAFETY: the helper is idle again; the job was ours.
        let job = unsafe { *self.shared.job.get() };
        &self.out[..job.to - job.from]
    }
}

fn helper(s: &Shared) {
    let mut seen = 0u64;
    let mut idle_since = Instant::now();
    loop {
        let go = s.go.load(Ordering::Acquire);
        if s.stop.load(Ordering::Acquire) {
            return;
        }
        if go == seen {
            if idle_since.elapsed() < SPIN_FOR {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            } else {
                s.sleeping.store(true, Ordering::SeqCst);
                if s.go.load(Ordering::SeqCst) == seen && !s.stop.load(Ordering::SeqCst) {
                    std::thread::park();
                }
                s.sleeping.store(false, Ordering::SeqCst);
                idle_since = Instant::now();
            }
            continue;
        }
        // SAFETY: published before `go` (Acquire above); valid until `done` (see `Job`).
        unsafe {
            let job = *s.job.get();
            let store = &*job.store;
            let prices = &*job.prices;
            let out = std::slice::from_raw_parts_mut(job.out, job.to - job.from);
            for (b, w) in (job.from..job.to).zip(out) {
                *w = job.kernel.scan_block(&store.view(b), prices);
            }
        }
        seen = go;
        s.done.store(go, Ordering::Release);
        idle_since = Instant::now();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.helper.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}
