//! Two-level bitset used by every allocator.
//!
//! Level 0 holds one bit per id/address in `u64` words. Level 1 keeps, per level-0 word,
//! one bit saying "this word has a set bit" (`nonempty`) and one saying "this word is
//! completely set" (`full`). Searching for the next set or clear bit therefore skips 64
//! words (4,096 ids) per summary word: a /8 network (2^24 addresses, 2 MiB of level 0) has
//! only 4,096 summary words, so any search touches at most a few thousand words and
//! usually one or two.
//!
//! Bits past `len` in the last word are kept clear and are never reported.

const W: u32 = 64;

/// Fixed-size bitset with summary levels; indices are `0..len`.
#[derive(Debug, Clone)]
pub(crate) struct Bitmap {
    len: u32,
    ones: u32,
    words: Vec<u64>,
    nonempty: Vec<u64>,
    full: Vec<u64>,
}

impl Bitmap {
    /// All-clear bitmap of `len` bits (`len` may be 0).
    pub(crate) fn new(len: u32) -> Bitmap {
        let nwords = (len as usize).div_ceil(W as usize);
        let nsum = nwords.div_ceil(W as usize);
        Bitmap {
            len,
            ones: 0,
            words: vec![0; nwords],
            nonempty: vec![0; nsum],
            full: vec![0; nsum],
        }
    }

    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Number of set bits.
    pub(crate) fn ones(&self) -> u32 {
        self.ones
    }

    pub(crate) fn get(&self, i: u32) -> bool {
        i < self.len && self.words[(i / W) as usize] & (1u64 << (i % W)) != 0
    }

    /// Sets bit `i`; returns true if it was clear.
    pub(crate) fn set(&mut self, i: u32) -> bool {
        if i >= self.len || self.get(i) {
            return false;
        }
        let w = (i / W) as usize;
        self.words[w] |= 1u64 << (i % W);
        self.ones += 1;
        self.sync(w);
        true
    }

    /// Clears bit `i`; returns true if it was set.
    pub(crate) fn clear(&mut self, i: u32) -> bool {
        if !self.get(i) {
            return false;
        }
        let w = (i / W) as usize;
        self.words[w] &= !(1u64 << (i % W));
        self.ones -= 1;
        self.sync(w);
        true
    }

    /// Mask of the valid bits of word `w` (all ones except in a partial last word).
    fn valid_mask(&self, w: usize) -> u64 {
        let rem = self.len % W;
        if rem != 0 && w + 1 == self.words.len() {
            (1u64 << rem) - 1
        } else {
            !0
        }
    }

    fn sync(&mut self, w: usize) {
        let (s, b) = (w / W as usize, 1u64 << (w % W as usize));
        let word = self.words[w];
        if word != 0 {
            self.nonempty[s] |= b;
        } else {
            self.nonempty[s] &= !b;
        }
        if word == self.valid_mask(w) {
            self.full[s] |= b;
        } else {
            self.full[s] &= !b;
        }
    }

    /// First set bit in `from..=to`.
    pub(crate) fn next_set(&self, from: u32, to: u32) -> Option<u32> {
        self.next(from, to, true)
    }

    /// First clear bit in `from..=to`.
    pub(crate) fn next_clear(&self, from: u32, to: u32) -> Option<u32> {
        self.next(from, to, false)
    }

    fn next(&self, from: u32, to: u32, want_set: bool) -> Option<u32> {
        let to = to.min(self.len.checked_sub(1)?);
        if from > to {
            return None;
        }
        let word = |w: usize| {
            if want_set {
                self.words[w]
            } else {
                !self.words[w]
            }
        };
        let w0 = (from / W) as usize;
        let first = word(w0) & (!0u64 << (from % W));
        let hit = if first != 0 {
            Some(w0 as u32 * W + first.trailing_zeros())
        } else {
            self.next_word(w0 + 1, (to / W) as usize, want_set)
                .map(|w| w as u32 * W + word(w).trailing_zeros())
        };
        hit.filter(|&i| i <= to)
    }

    /// First word index in `from..=to` holding a wanted bit, found through the summary.
    fn next_word(&self, from: usize, to: usize, want_set: bool) -> Option<usize> {
        if from > to || from >= self.words.len() {
            return None;
        }
        let sum = |s: usize| {
            if want_set {
                self.nonempty[s]
            } else {
                !self.full[s]
            }
        };
        let mut s = from / W as usize;
        let mut bits = sum(s) & (!0u64 << (from % W as usize));
        loop {
            if bits != 0 {
                let w = s * W as usize + bits.trailing_zeros() as usize;
                return (w <= to && w < self.words.len()).then_some(w);
            }
            s += 1;
            if s * W as usize > to || s >= self.nonempty.len() {
                return None;
            }
            bits = sum(s);
        }
    }

    /// Calls `f(start, end)` for each maximal run of set bits inside `from..=to`.
    /// Cost is proportional to the number of runs plus skipped summary words.
    pub(crate) fn for_each_run(&self, from: u32, to: u32, mut f: impl FnMut(u32, u32)) {
        let mut at = from;
        while let Some(start) = self.next_set(at, to) {
            let end = match self.next_clear(start, to) {
                Some(c) => c - 1,
                None => to.min(self.len - 1),
            };
            f(start, end);
            match end.checked_add(1) {
                Some(n) if n <= to => at = n,
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Bitmap;

    #[test]
    fn empty_and_tiny() {
        let b = Bitmap::new(0);
        assert_eq!(b.next_clear(0, 10), None);
        assert_eq!(b.next_set(0, 10), None);
        let mut b = Bitmap::new(1);
        assert_eq!(b.next_clear(0, 0), Some(0));
        assert!(b.set(0));
        assert!(!b.set(0));
        assert_eq!(b.next_clear(0, 5), None);
        assert_eq!(b.ones(), 1);
    }

    #[test]
    fn search_across_words_and_summaries() {
        let n = 64 * 64 * 3 + 17;
        let mut b = Bitmap::new(n);
        for i in 0..n - 1 {
            b.set(i);
        }
        assert_eq!(b.next_clear(0, n - 1), Some(n - 1));
        assert_eq!(b.next_clear(0, n - 2), None);
        b.clear(5000);
        assert_eq!(b.next_clear(0, n), Some(5000));
        assert_eq!(b.next_clear(5001, n), Some(n - 1));
        let mut b = Bitmap::new(n);
        b.set(9000);
        assert_eq!(b.next_set(0, n), Some(9000));
        assert_eq!(b.next_set(9001, n), None);
        assert_eq!(b.next_set(0, 8999), None);
    }

    #[test]
    fn runs() {
        let mut b = Bitmap::new(300);
        for i in (10..=70).chain([100, 299]) {
            b.set(i);
        }
        let mut v = vec![];
        b.for_each_run(0, 299, |s, e| v.push((s, e)));
        assert_eq!(v, vec![(10, 70), (100, 100), (299, 299)]);
        v.clear();
        b.for_each_run(20, 100, |s, e| v.push((s, e)));
        assert_eq!(v, vec![(20, 70), (100, 100)]);
    }
}
