//! A hint to the CPU to start loading a cache line that is needed soon.
//!
//! Reporting events reads an account's terms and id at slots spread over the whole book, one
//! cache miss (often a TLB miss too) each. Read one after another they cost a memory latency
//! apiece; hinted a few accounts ahead they overlap. A hint never faults and changes no result.

/// Starts loading the cache line holding `slice[i]`; nothing when `i` is out of range.
#[inline(always)]
pub fn prefetch<T>(slice: &[T], i: usize) {
    if let Some(x) = slice.get(i) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never dereferences in a way that can fault, and the
        // pointer comes from a live reference.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>((x as *const T).cast::<i8>());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = x;
    }
}
