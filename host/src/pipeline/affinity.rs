//! # Pinning threads to cores
//!
//! Every pinned thread of liqscan (feed, engine, dispatch, the emulated card, the scan helper)
//! goes through [`pin_current`]. The cores it may choose from are the process's allowed set,
//! read once, before this module pins anything ([`allowed_cores`]): not the calling thread's
//! mask. A thread inherits its creator's mask, so once one thread is pinned every thread it
//! spawns starts with that one-core mask; looking the wanted core up in the caller's own mask
//! (what `core_affinity::get_core_ids` lists) would then refuse every other core and leave the
//! whole pipeline on the first one.
//!
//! Pinning and reading masks are system calls: at thread start and in reports, never on a hot
//! path.

use std::sync::OnceLock;

/// Why a thread was not pinned.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The core is not in the set this process may run on (it does not exist, is offline, or
    /// is outside the process's cpuset or start-up mask).
    #[error("core {core} is not one this process may run on (allowed cores: {allowed})")]
    NotAllowed {
        /// The core asked for.
        core: usize,
        /// The allowed set, as a list (`0-3,6`).
        allowed: String,
    },
    /// The kernel refused the new mask (a cpuset changed since start, a container limit).
    #[error("the kernel refused to pin to core {core}: {source}")]
    Refused {
        /// The core asked for.
        core: usize,
        /// What `sched_setaffinity` said.
        source: std::io::Error,
    },
}

/// The cores this process may run on, read once, the first time any thread asks (the first
/// pin included, so before this module has narrowed any mask): the process's own mask
/// (`sched_getaffinity` of the process, i.e. its main thread), which reflects `taskset` and
/// the cgroup cpuset. Sorted, never empty (falls back to the online cores).
pub fn allowed_cores() -> &'static [usize] {
    static ALLOWED: OnceLock<Vec<usize>> = OnceLock::new();
    ALLOWED.get_or_init(|| {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        let mut set = mask_of(pid).unwrap_or_default();
        if set.is_empty() {
            // SAFETY: sysconf has no preconditions.
            let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize;
            set = (0..online).collect();
        }
        set
    })
}

/// The calling thread's current mask (`sched_getaffinity(0)`), sorted; `None` if the kernel
/// will not say.
pub fn current_cores() -> Option<Vec<usize>> {
    mask_of(0)
}

/// The mask of thread `tid` of this process (a Linux task id, e.g. from `/proc/self/task`).
pub fn thread_cores(tid: i32) -> Option<Vec<usize>> {
    mask_of(tid)
}

fn mask_of(tid: libc::pid_t) -> Option<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most
    // size_of::<cpu_set_t>() bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return None;
    }
    // SAFETY: CPU_ISSET reads the set within its bounds (CPU_SETSIZE).
    Some((0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect())
}

/// Pins the calling thread to `core`, whatever mask it inherited, if `core` is in
/// [`allowed_cores`]; otherwise, or if the kernel refuses, says why and leaves the mask alone.
pub fn pin_current(core: usize) -> Result<(), PinError> {
    check_core(core)?;
    // SAFETY: a zeroed cpu_set_t is a valid empty set; `core` < CPU_SETSIZE (checked above,
    // the allowed set holds only cores below it).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(core, &mut set) };
    // SAFETY: pid 0 is the calling thread; the set is fully initialised.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc != 0 {
        return Err(PinError::Refused { core, source: std::io::Error::last_os_error() });
    }
    Ok(())
}

/// `Ok` when `core` is in [`allowed_cores`]: check configured cores at start, before any
/// thread is spawned, to refuse a bad configuration instead of running unpinned.
pub fn check_core(core: usize) -> Result<(), PinError> {
    let allowed = allowed_cores();
    if allowed.binary_search(&core).is_err() {
        return Err(PinError::NotAllowed { core, allowed: list(allowed) });
    }
    Ok(())
}

/// Pins the calling thread (`what`, for the message) to `core`; on refusal prints why and
/// returns false (the thread runs unpinned: latency tails will be wider). Called once at a
/// thread's start.
pub fn pin(what: &str, core: usize) -> bool {
    match pin_current(core) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(
                thread = what,
                "{what} not pinned: {e}; it runs unpinned (latency tails will be wider)"
            );
            false
        }
    }
}

/// The core for the scan helper thread: when the calling thread is pinned to one core, the
/// first other allowed core (a helper inheriting the caller's mask would share its core and
/// spin against it); otherwise the first allowed core the caller is not limited away from.
pub fn helper_core() -> Option<core_affinity::CoreId> {
    let allowed = allowed_cores();
    let mine = current_cores().unwrap_or_default();
    let id = match mine[..] {
        [only] => allowed.iter().copied().find(|&c| c != only).unwrap_or(only),
        _ => mine.iter().copied().find(|c| allowed.contains(c)).or(allowed.first().copied())?,
    };
    Some(core_affinity::CoreId { id })
}

/// A core list in the kernel's notation (`0-3,6`).
pub fn list(cores: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < cores.len() {
        let mut j = i;
        while j + 1 < cores.len() && cores[j + 1] == cores[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j == i {
            out.push_str(&cores[i].to_string());
        } else {
            out.push_str(&format!("{}-{}", cores[i], cores[j]));
        }
        i = j + 1;
    }
    out
}

/// One thread of this process as `/proc/self/task` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskStat {
    /// Linux task id.
    pub tid: i32,
    /// Thread name (`comm`, at most 15 bytes).
    pub name: String,
    /// Its affinity mask.
    pub cores: Vec<usize>,
    /// Nanoseconds on a CPU (schedstat).
    pub run_ns: u64,
    /// Nanoseconds runnable, waiting for a CPU (schedstat).
    pub wait_ns: u64,
    /// The CPU it last ran on (`stat` field 39).
    pub last_cpu: Option<usize>,
}

/// Every thread of this process, from `/proc/self/task/*` (several system calls per thread:
/// for reports, before and after a run, never on a hot path). Threads that end while being
/// read are left out.
pub fn tasks() -> Vec<TaskStat> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else { return vec![] };
    let mut out: Vec<TaskStat> = dir
        .filter_map(|e| {
            let e = e.ok()?;
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let p = e.path();
            let name = std::fs::read_to_string(p.join("comm")).ok()?.trim_end().to_string();
            let ss = std::fs::read_to_string(p.join("schedstat")).ok()?;
            let mut it = ss.split_whitespace().map(|x| x.parse::<u64>().ok());
            let (run_ns, wait_ns) = (it.next()??, it.next()??);
            // Fields after the parenthesised name; `processor` is field 39 overall.
            let stat = std::fs::read_to_string(p.join("stat")).ok()?;
            let last_cpu =
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(36)?.parse().ok());
            let cores = thread_cores(tid)?;
            Some(TaskStat { tid, name, cores, run_ns, wait_ns, last_cpu })
        })
        .collect();
    out.sort_by_key(|t| t.tid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_in_kernel_notation() {
        assert_eq!(list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(list(&[5]), "5");
        assert_eq!(list(&[]), "");
    }

    #[test]
    fn refuses_a_core_that_is_not_allowed() {
        let beyond = allowed_cores().last().unwrap() + 1;
        let before = current_cores();
        let e = pin_current(beyond).unwrap_err();
        assert!(matches!(e, PinError::NotAllowed { core, .. } if core == beyond), "{e}");
        assert!(e.to_string().contains(&format!("core {beyond} is not one")), "{e}");
        assert_eq!(current_cores(), before, "a refused pin leaves the mask alone");
        assert!(pin_current(usize::MAX).is_err());
    }

    /// Each thread pins itself after its creator was pinned to another core: every one lands
    /// on its own core (read back from the kernel, and from /proc as another thread sees it).
    #[test]
    fn threads_spawned_after_a_pin_land_on_their_own_cores() {
        let allowed = allowed_cores().to_vec();
        if allowed.len() < 2 {
            eprintln!("skipped: this process may run on {} core(s), the test needs 2", allowed.len());
            return;
        }
        let (first, other) = (allowed[0], *allowed.last().unwrap());
        std::thread::spawn(move || {
            pin_current(first).unwrap();
            assert_eq!(current_cores().unwrap(), vec![first]);
            // Spawned by a pinned thread: starts with the one-core mask, pins to the other.
            let (tx, rx) = std::sync::mpsc::channel();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            let h = std::thread::spawn(move || {
                assert_eq!(current_cores().unwrap(), vec![first], "inherited mask");
                pin_current(other).unwrap();
                // SAFETY: gettid has no preconditions.
                tx.send((unsafe { libc::gettid() }, current_cores().unwrap())).unwrap();
                done_rx.recv().unwrap();
            });
            let (tid, mask) = rx.recv().unwrap();
            assert_eq!(mask, vec![other]);
            assert_eq!(thread_cores(tid).unwrap(), vec![other], "as another thread reads it");
            let t = tasks().into_iter().find(|t| t.tid == tid).expect("listed in /proc/self/task");
            assert_eq!(t.cores, vec![other]);
            done_tx.send(()).unwrap();
            h.join().unwrap();
            // And back: the first thread can move to the other core too.
            pin_current(other).unwrap();
            assert_eq!(current_cores().unwrap(), vec![other]);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn helper_goes_to_another_core_than_its_pinned_caller() {
        let allowed = allowed_cores().to_vec();
        if allowed.len() < 2 {
            eprintln!("skipped: this process may run on {} core(s), the test needs 2", allowed.len());
            return;
        }
        let last = *allowed.last().unwrap();
        let h = std::thread::spawn(move || {
            pin_current(last).unwrap();
            helper_core().unwrap().id
        });
        let id = h.join().unwrap();
        assert_ne!(id, last);
        assert!(allowed.contains(&id));
    }
}
