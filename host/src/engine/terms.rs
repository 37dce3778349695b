//! Every slot's terms (and every delta account's windows) in one vector each: a span (start, length, capacity) per slot instead of a
//! `Vec` per slot, which costs a 24-byte header and a heap block of its own (about 35 bytes an
//! account more on a book of pairs and four-term accounts).
//!
//! Replacing an account's terms writes in place when they fit the slot's capacity (a power of
//! two), so the steady state of upserts allocates nothing; an account that outgrows its room
//! moves to the end of the vector, and when the room left behind exceeds the live terms the
//! vector is rewritten in slot order (amortised O(1) per move; O(n) that once).

#[derive(Clone, Copy, Default)]
struct Span {
    start: u32,
    len: u8,
    cap: u8,
}

/// Per-slot lists of `T` (at most 255 a slot) in one vector.
pub(crate) struct SlotStore<T> {
    spans: Vec<Span>,
    data: Vec<T>,
    /// Capacity no span uses any more.
    garbage: usize,
}

impl<T: Copy + Default> SlotStore<T> {
    /// `slots` empty slots (on transparent huge pages where the kernel grants them: a slot's
    /// span is read at random, and 4 KiB pages would cost a TLB miss a read at 10 M slots).
    pub fn new(slots: usize) -> Self {
        let mut spans = Vec::with_capacity(slots);
        super::advise_huge(&spans);
        spans.resize(slots, Span::default());
        SlotStore { spans, data: Vec::new(), garbage: 0 }
    }

    /// Makes room for `extra` more entries at once (a bulk load: one allocation, on huge
    /// pages where granted, instead of doubling on 4 KiB pages).
    pub fn reserve(&mut self, extra: usize) {
        if self.data.capacity() - self.data.len() < extra {
            let mut data = Vec::with_capacity(self.data.len() + extra);
            super::advise_huge(&data);
            data.extend_from_slice(&self.data);
            self.data = data;
        }
    }

    pub fn slots(&self) -> usize {
        self.spans.len()
    }

    /// The terms of `slot` (empty when out of range).
    #[inline]
    pub fn get(&self, slot: usize) -> &[T] {
        match self.spans.get(slot) {
            Some(k) => &self.data[k.start as usize..k.start as usize + k.len as usize],
            None => &[],
        }
    }

    /// Hints the CPU to load `slot`'s span, the first of the two reads of [`get`](Self::get).
    #[inline]
    pub fn prefetch_span(&self, slot: usize) {
        crate::prefetch::prefetch(&self.spans, slot);
    }

    /// Hints the CPU to load `slot`'s list (reads its span: hint that a little earlier).
    #[inline]
    pub fn prefetch_list(&self, slot: usize) {
        if let Some(k) = self.spans.get(slot) {
            crate::prefetch::prefetch(&self.data, k.start as usize);
        }
    }

    /// Replaces the list of `slot` (at most 255 entries).
    pub fn set(&mut self, slot: usize, terms: &[T]) {
        let n = terms.len();
        debug_assert!(n <= u8::MAX as usize);
        let k = self.spans[slot];
        if n > k.cap as usize {
            let cap = n.next_power_of_two().min(u8::MAX as usize);
            if self.garbage + k.cap as usize > self.data.len() / 2 && self.data.len() >= 1024 {
                self.spans[slot].len = 0;
                self.compact();
            }
            self.garbage += self.spans[slot].cap as usize;
            let start = self.data.len();
            assert!(start + cap <= u32::MAX as usize, "term store beyond 2^32 terms");
            self.data.resize(start + cap, T::default());
            self.spans[slot] = Span { start: start as u32, len: 0, cap: cap as u8 };
        }
        let k = &mut self.spans[slot];
        self.data[k.start as usize..k.start as usize + n].copy_from_slice(terms);
        k.len = n as u8;
    }

    /// Empties `slot` (its capacity stays for the next account).
    pub fn clear(&mut self, slot: usize) {
        self.spans[slot].len = 0;
    }

    /// Rewrites the vector in slot order with each slot's capacity unchanged but no garbage.
    /// Nothing to do when it is so already (after a bulk load in slot order): a copy would
    /// hold the vector twice, at 10 M accounts 200 MB more at the load's peak.
    pub fn compact(&mut self) {
        if self.garbage == 0 && in_order(self.spans.iter().map(|k| (k.start as usize, k.cap as usize))) {
            return;
        }
        let live: usize = self.spans.iter().map(|k| k.cap as usize).sum();
        let mut data = Vec::with_capacity(live);
        for k in &mut self.spans {
            let s = k.start as usize;
            let start = data.len();
            data.extend_from_slice(&self.data[s..s + k.cap as usize]);
            k.start = start as u32;
        }
        self.data = data;
        self.garbage = 0;
    }
}

/// Whether the (start, capacity) spans, in order, follow each other in the vector without
/// overlapping (spans without capacity aside).
pub(crate) fn in_order(spans: impl Iterator<Item = (usize, usize)>) -> bool {
    let mut end = 0;
    for (start, cap) in spans.filter(|&(_, cap)| cap > 0) {
        if start < end {
            return false;
        }
        end = start + cap;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use liqscan_hdl::abi::Coeff;

    #[test]
    fn set_get_clear_and_compaction_keep_every_slot() {
        let mut st = SlotStore::<Coeff>::new(50);
        let mut want: Vec<Vec<Coeff>> = vec![Vec::new(); 50];
        for round in 0..400usize {
            let x = round as i32 * 100;
            let slot = (round * 7) % 50;
            let n = (round * 13) % 70;
            let t: Vec<Coeff> = (0..n).map(|i| Coeff { asset: i as u16, coeff: x + i as i32 }).collect();
            if round % 5 == 0 {
                st.clear(slot);
                want[slot].clear();
            } else {
                st.set(slot, &t);
                want[slot] = t;
            }
            for (s, w) in want.iter().enumerate() {
                assert_eq!(st.get(s), &w[..], "slot {s} after round {round}");
            }
        }
        st.compact();
        for (s, w) in want.iter().enumerate() {
            assert_eq!(st.get(s), &w[..]);
        }
        assert!(st.get(50).is_empty());
    }
}
