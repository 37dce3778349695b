//! Breach and at-risk bitmaps: bit `i % 64` of word `i / 64` is account slot `i`.
//!
//! The same layout crosses the card link, so bitmaps are plain `u64` words.

/// Words needed for `slots` bits.
pub fn words_for(slots: usize) -> usize {
    slots.div_ceil(64)
}

/// Reads bit `slot`.
#[inline]
pub fn get(words: &[u64], slot: usize) -> bool {
    words[slot / 64] >> (slot % 64) & 1 == 1
}

/// Writes bit `slot`.
#[inline]
pub fn set(words: &mut [u64], slot: usize, value: bool) {
    let (w, b) = (slot / 64, slot % 64);
    words[w] = (words[w] & !(1u64 << b)) | ((value as u64) << b);
}

/// Slots whose bit is set, in ascending order.
pub fn ones(words: &[u64]) -> impl Iterator<Item = usize> + '_ {
    words.iter().enumerate().flat_map(|(w, &word)| {
        let mut rest = word;
        std::iter::from_fn(move || {
            if rest == 0 {
                return None;
            }
            let b = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            Some(w * 64 + b)
        })
    })
}

/// Number of set bits.
pub fn count(words: &[u64]) -> usize {
    words.iter().map(|w| w.count_ones() as usize).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_ones_count() {
        let mut w = vec![0u64; words_for(130)];
        assert_eq!(w.len(), 3);
        for s in [0, 63, 64, 129] {
            set(&mut w, s, true);
        }
        assert!(get(&w, 63) && get(&w, 64) && !get(&w, 65));
        assert_eq!(ones(&w).collect::<Vec<_>>(), vec![0, 63, 64, 129]);
        set(&mut w, 63, false);
        assert_eq!(count(&w), 3);
    }
}
