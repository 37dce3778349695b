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

/// Slots that became breached, stopped being breached, and became at risk (stressed health
/// below zero, not breached) between two scans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Newly breached, ascending.
    pub breached: Vec<u32>,
    /// No longer breached, ascending.
    pub cleared: Vec<u32>,
    /// Newly at risk and not breached, ascending.
    pub at_risk: Vec<u32>,
}

impl Changes {
    /// Empties the three lists, keeping their room.
    pub fn clear(&mut self) {
        self.breached.clear();
        self.cleared.clear();
        self.at_risk.clear();
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.breached.is_empty() && self.cleared.is_empty() && self.at_risk.is_empty()
    }
}

/// The previous scan's bitmaps, and the difference a new scan makes to them: the one
/// old-versus-new comparison behind the pipeline, the simulator and the events log.
#[derive(Clone, Debug)]
pub struct Diff {
    breach: Vec<u64>,
    at_risk: Vec<u64>,
}

impl Diff {
    /// All clear: `words` words of zeros.
    pub fn new(words: usize) -> Diff {
        Diff { breach: vec![0; words], at_risk: vec![0; words] }
    }

    /// Starting from a scan already made (its changes are not reported).
    pub fn starting_at(breach: &[u64], at_risk: &[u64]) -> Diff {
        Diff { breach: breach.to_vec(), at_risk: at_risk.to_vec() }
    }

    /// The previous breach bitmap.
    pub fn breach(&self) -> &[u64] {
        &self.breach
    }

    /// The previous at-risk bitmap.
    pub fn at_risk(&self) -> &[u64] {
        &self.at_risk
    }

    /// Compares the words `changed` (no repeats; ascending words give ascending lists) of the
    /// new bitmaps with the previous ones, appends the changes to `out` (which it does not
    /// clear) and keeps the new words. Words not in `changed` are taken as unchanged. No
    /// allocation once `out` has room.
    #[inline]
    pub fn step(&mut self, changed: &[u32], breach: &[u64], at_risk: &[u64], out: &mut Changes) {
        self.step_into(changed, breach, at_risk, [&mut out.breached, &mut out.cleared, &mut out.at_risk]);
    }

    /// [`step`](Diff::step) into three separate lists: breached, cleared, at risk.
    #[inline]
    pub fn step_into(&mut self, changed: &[u32], breach: &[u64], at_risk: &[u64], out: [&mut Vec<u32>; 3]) {
        let [breached, cleared, risk] = out;
        self.step_words(changed, breach, at_risk, |w, [ob, oa], [nb, na]| {
            push_ones(breached, w, nb & !ob);
            push_ones(cleared, w, ob & !nb);
            push_ones(risk, w, na & !oa & !nb);
        });
    }

    /// The comparison under [`step`](Diff::step), word by word: calls `f(word, [old breach,
    /// old at-risk], [new breach, new at-risk])` for each word of `changed` that differs, in
    /// the order given, and keeps the new words.
    #[inline]
    pub fn step_words(
        &mut self,
        changed: &[u32],
        breach: &[u64],
        at_risk: &[u64],
        mut f: impl FnMut(usize, [u64; 2], [u64; 2]),
    ) {
        for &w in changed {
            let w = w as usize;
            let (ob, oa, nb, na) = (self.breach[w], self.at_risk[w], breach[w], at_risk[w]);
            if ob != nb || oa != na {
                f(w, [ob, oa], [nb, na]);
                self.breach[w] = nb;
                self.at_risk[w] = na;
            }
        }
    }
}

/// Appends the slots of the set bits of word `w`, ascending.
#[inline]
fn push_ones(out: &mut Vec<u32>, w: usize, mut bits: u64) {
    while bits != 0 {
        out.push((w * 64) as u32 + bits.trailing_zeros());
        bits &= bits - 1;
    }
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

    proptest::proptest! {
        /// The diff's lists are exactly the slots whose bits moved, slot by slot.
        #[test]
        fn diff_lists_the_bits_that_moved(
            scans in proptest::collection::vec((proptest::collection::vec(proptest::prelude::any::<u64>(), 3), proptest::collection::vec(proptest::prelude::any::<u64>(), 3)), 1..6),
        ) {
            let mut d = Diff::new(3);
            let (mut ob, mut oa) = (vec![0u64; 3], vec![0u64; 3]);
            for (b, a) in scans {
                let mut out = Changes::default();
                d.step(&[0, 1, 2], &b, &a, &mut out);
                let (mut xb, mut xc, mut xa) = (vec![], vec![], vec![]);
                for s in 0..192 {
                    let (was, is) = (get(&ob, s), get(&b, s));
                    if is && !was { xb.push(s as u32) }
                    if was && !is { xc.push(s as u32) }
                    if get(&a, s) && !get(&oa, s) && !is { xa.push(s as u32) }
                }
                proptest::prop_assert_eq!(&out, &Changes { breached: xb, cleared: xc, at_risk: xa });
                proptest::prop_assert_eq!(d.breach(), &b[..]);
                (ob, oa) = (b, a);
            }
        }
    }
}
