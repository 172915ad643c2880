//! The data every engine gets, byte for byte: `n` keys of 16 bytes in the
//! state store's layout (`table u32 | key_group u16 | user_key 10 B`, built
//! with [`full_key`]) and values of 100 bytes, half pseudo-random and half a
//! fixed pattern, so compression has about as much to do as on real state.
//!
//! Key `i` sits in key group `i * KEY_GROUPS / n`, so key order is index
//! order and a key-group range is an index range. Random orders come from a
//! seeded generator, never from the OS.

use bytes::Bytes;
use riverbed_state_store::{full_key, KeyGroup, TableId};

/// Key groups the keys are spread over (a key group is the unit that
/// delete-range drops).
pub const KEY_GROUPS: u64 = 256;
pub const VALUE_LEN: usize = 100;
pub const TABLE: TableId = TableId(1);
/// A prime larger than any key count used here, so `i * STRIDE mod n` is a
/// permutation of `0..n` whenever `n` is not a multiple of it.
const STRIDE: u64 = 1_000_000_007;

/// The keys `0..n` and their values.
#[derive(Clone, Copy, Debug)]
pub struct Dataset {
    pub n: u64,
}

impl Dataset {
    pub fn new(n: u64) -> Self {
        assert!(n > 0 && n < STRIDE, "key count out of range");
        Dataset { n }
    }

    pub fn key_group(&self, i: u64) -> u16 {
        ((i as u128 * KEY_GROUPS as u128) / self.n as u128) as u16
    }

    pub fn key(&self, i: u64) -> Bytes {
        let mut user = [0u8; 10];
        user[..8].copy_from_slice(&i.to_be_bytes());
        user[8..].copy_from_slice(&[0x5a, 0xa5]);
        full_key(TABLE, KeyGroup(self.key_group(i)), &user)
    }

    /// The value of key `i` as written by pass `version` (overwrites change it).
    pub fn value(&self, i: u64, version: u64) -> Bytes {
        let mut v = Vec::with_capacity(VALUE_LEN);
        let mut rng = SplitMix64::new(i ^ version.rotate_left(32));
        while v.len() < 48 {
            v.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        const PATTERN: &[u8] = b"riverbed-bench-value-";
        while v.len() < VALUE_LEN {
            let take = (VALUE_LEN - v.len()).min(PATTERN.len());
            v.extend_from_slice(&PATTERN[..take]);
        }
        Bytes::from(v)
    }

    /// The `j`-th key index of a scattered order visiting each index once.
    pub fn scattered(&self, j: u64) -> u64 {
        ((j as u128 * STRIDE as u128 + 12_345) % self.n as u128) as u64
    }

    /// Batches of `(key, value)` for the indices `order` yields.
    pub fn batches(
        &self,
        order: impl Iterator<Item = u64>,
        version: u64,
        batch: usize,
    ) -> Vec<Vec<(Bytes, Bytes)>> {
        let mut out = Vec::new();
        let mut cur = Vec::with_capacity(batch);
        for i in order {
            cur.push((self.key(i), self.value(i, version)));
            if cur.len() == batch {
                out.push(std::mem::replace(&mut cur, Vec::with_capacity(batch)));
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }

    /// The first index of key group `kg` (`n` for one past the last group).
    pub fn first_index_of_group(&self, kg: u64) -> u64 {
        // Smallest i with i * KEY_GROUPS / n >= kg.
        ((kg as u128 * self.n as u128).div_ceil(KEY_GROUPS as u128)) as u64
    }

    /// Encoded bytes of one entry (key + value).
    pub fn entry_bytes(&self) -> u64 {
        16 + VALUE_LEN as u64
    }
}

/// A small seeded generator (SplitMix64): reproducible access orders.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_in_index_order_and_groups_split_ranges() {
        let d = Dataset::new(10_000);
        for i in 1..d.n {
            assert!(d.key(i - 1) < d.key(i), "key {i} out of order");
        }
        assert_eq!(d.key(0).len(), 16);
        assert_eq!(d.value(7, 0).len(), VALUE_LEN);
        assert_ne!(d.value(7, 0), d.value(7, 1));
        for kg in 0..=KEY_GROUPS {
            let first = d.first_index_of_group(kg);
            if first < d.n {
                assert_eq!(d.key_group(first) as u64, kg);
            }
            if first > 0 && kg < KEY_GROUPS {
                assert!((d.key_group(first - 1) as u64) < kg);
            }
        }
    }

    #[test]
    fn scattered_order_is_a_permutation() {
        let d = Dataset::new(1000);
        let mut seen = vec![false; 1000];
        for j in 0..1000 {
            seen[d.scattered(j) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
