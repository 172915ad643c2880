//! The keys a subtask has written to the store, as a filter: a read of a
//! key the filter has never seen can skip the store.
//!
//! A subtask is the only writer of its key groups, so on a store that held
//! no committed state when the job started, "never written by me" means
//! "absent". Large state makes most reads of new keys: without the filter
//! each one probes every memtable and a bloom filter per file and level;
//! with it, one probe of this filter answers. On a store with earlier state
//! the filter is off (rebuilding it from a scan belongs with recovery).
//!
//! Layout: a chain of blocked bloom filters (one 64-byte block per key,
//! 10 bits per key, about 1% false positives); when the newest holds its
//! capacity a new one four times the size starts, so memory follows the
//! number of keys written (from 1.25 MiB) and a probe costs one cache miss
//! per filter.

const BITS_PER_KEY: usize = 10;
const PROBES: u32 = 6;
const FIRST_CAPACITY: usize = 1 << 20;
/// Each new filter holds this many times the keys of the one before, so
/// that 10 M keys take three filters (three probes for an absent key).
const GROWTH: usize = 4;

struct Bloom {
    blocks: Vec<[u64; 8]>,
    keys: usize,
    capacity: usize,
}

impl Bloom {
    fn new(capacity: usize) -> Self {
        let blocks = (capacity * BITS_PER_KEY).div_ceil(512).max(1);
        Bloom {
            blocks: vec![[0; 8]; blocks],
            keys: 0,
            capacity,
        }
    }

    #[inline]
    fn positions(&self, h: u64) -> (usize, u64) {
        let block = ((u128::from(h) * self.blocks.len() as u128) >> 64) as usize;
        (block, h.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn insert(&mut self, h: u64) {
        let (b, mut x) = self.positions(h);
        for _ in 0..PROBES {
            let bit = (x >> 55) as usize; // 9 bits: 0..512
            self.blocks[b][bit / 64] |= 1 << (bit % 64);
            x = x.rotate_left(9);
        }
        self.keys += 1;
    }

    /// Without early exits: callers probe many keys in a tight loop, and
    /// straight-line probes let the CPU overlap their cache misses.
    #[inline]
    fn may_hold(&self, h: u64) -> bool {
        let (b, mut x) = self.positions(h);
        let block = &self.blocks[b];
        let mut all = true;
        for _ in 0..PROBES {
            let bit = (x >> 55) as usize;
            all &= block[bit / 64] & (1 << (bit % 64)) != 0;
            x = x.rotate_left(9);
        }
        all
    }
}

/// Keys written by one subtask since it started on an empty store, by
/// their 64-bit hashes (the worker cache's, computed once per key).
pub struct WrittenKeys {
    filters: Vec<Bloom>,
}

impl Default for WrittenKeys {
    fn default() -> Self {
        WrittenKeys {
            filters: vec![Bloom::new(FIRST_CAPACITY)],
        }
    }
}

impl WrittenKeys {
    /// Adds `h`. A hash the filter may hold already is not added again, so
    /// that the filters fill with distinct keys, not with rewrites of them.
    pub fn insert(&mut self, h: u64) {
        if self.may_hold(h) {
            return;
        }
        let last = self.filters.last_mut().expect("at least one filter");
        if last.keys >= last.capacity {
            let capacity = last.capacity * GROWTH;
            self.filters.push(Bloom::new(capacity));
        }
        self.filters.last_mut().expect("just pushed").insert(h);
    }

    /// False only for hashes never inserted.
    #[inline]
    pub fn may_hold(&self, h: u64) -> bool {
        self.filters
            .iter()
            .fold(false, |any, f| any | f.may_hold(h))
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;
    use crate::state::keyed::FastHash;

    #[test]
    fn never_forgets_a_key_and_rarely_claims_one() {
        let mut w = WrittenKeys::default();
        let h = |i: u64| FastHash::default().hash_one(i.to_be_bytes());
        let n = 1_500_000u64;
        for i in 0..n {
            w.insert(h(i));
        }
        assert!(w.filters.len() > 1, "the chain grew");
        assert!((0..n).all(|i| w.may_hold(h(i))));
        let false_positives = (n..2 * n).filter(|&i| w.may_hold(h(i))).count();
        assert!(
            false_positives < (n as usize) * 5 / 100,
            "{false_positives} false positives in {n}"
        );
    }
}
