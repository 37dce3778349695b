//! Breach and at-risk bitmaps with the record of which words changed since the last drain.

use crate::bitmap;

pub(crate) struct Bits {
    pub breach: Vec<u64>,
    pub at_risk: Vec<u64>,
    dirty: Vec<u64>,
    dirty_list: Vec<u32>,
}

impl Bits {
    pub fn new(slots: usize) -> Self {
        let words = bitmap::words_for(slots);
        Bits {
            breach: vec![0; words],
            at_risk: vec![0; words],
            dirty: vec![0; bitmap::words_for(words)],
            // Every word at most once: never grows.
            dirty_list: Vec::with_capacity(words),
        }
    }

    #[inline]
    fn mark(&mut self, w: usize) {
        let (d, b) = (w / 64, 1u64 << (w % 64));
        if self.dirty[d] & b == 0 {
            self.dirty[d] |= b;
            self.dirty_list.push(w as u32);
        }
    }

    #[inline]
    fn put(words: &mut [u64], slot: usize, v: bool) -> bool {
        let (w, b) = (slot / 64, slot % 64);
        let old = words[w];
        let new = (old & !(1u64 << b)) | ((v as u64) << b);
        words[w] = new;
        old != new
    }

    #[inline]
    pub fn set_breach(&mut self, slot: usize, v: bool) {
        if Self::put(&mut self.breach, slot, v) {
            self.mark(slot / 64);
        }
    }

    #[inline]
    pub fn set_at_risk(&mut self, slot: usize, v: bool) {
        if Self::put(&mut self.at_risk, slot, v) {
            self.mark(slot / 64);
        }
    }

    #[inline]
    pub fn set(&mut self, slot: usize, breach: bool, at_risk: bool) {
        self.set_breach(slot, breach);
        self.set_at_risk(slot, at_risk);
    }

    /// Replaces word `w` of both bitmaps.
    #[inline]
    pub fn set_words(&mut self, w: usize, breach: u64, at_risk: u64) {
        if self.breach[w] != breach || self.at_risk[w] != at_risk {
            self.breach[w] = breach;
            self.at_risk[w] = at_risk;
            self.mark(w);
        }
    }

    pub fn drain(&mut self, out: &mut Vec<u32>) {
        for &w in &self.dirty_list {
            self.dirty[w as usize / 64] = 0;
        }
        out.extend_from_slice(&self.dirty_list);
        self.dirty_list.clear();
    }
}
