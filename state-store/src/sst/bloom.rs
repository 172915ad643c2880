//! Bloom filter over the keys of one SST, so a point read skips files that
//! cannot hold its key without touching their blocks.
//!
//! Encodings (the last byte tells them apart), over a 64-bit hash of the
//! key ([`key_hash`]), which is stable across versions because files outlive
//! processes:
//! - blocked (written today): `bits (a multiple of 64 bytes) | 0x80 | k`.
//!   The block is `(hash * blocks) >> 64`; the `k` (≤ 7) bit positions
//!   inside its 512 bits are successive 9-bit fields, lowest first, of
//!   `x ^ (x >> 29)` where `x = hash * 0x9e3779b97f4a7c15` (wrapping).
//! - classic (read for older files): `bits (m/8 bytes) | k` with `k` in
//!   1..=30 and probes `h1 + i*h2` (double hashing) modulo `m`.

/// The hash the filter probes with: the key layout's stable hash (files
/// written with it must keep reading).
pub use crate::keys::stable_hash as key_hash;

/// Bits in one block of a blocked filter: a 64-byte cache line.
const BLOCK_BITS: u64 = 512;

/// Marks the last byte of a blocked filter (`0x80 | k`); a classic filter's
/// last byte is `k` itself (1..=30), so both kinds decode unambiguously.
const BLOCKED: u8 = 0x80;

/// Keys whose blocks [`build`] loads before setting their bits: enough
/// misses in flight to fill a core's line-fill buffers.
const TOUCH_AHEAD: usize = 16;

/// Filters up to this size sit in a core's L2 cache, where loading blocks
/// ahead only costs time (criterion `bloom_build`: 500 K keys).
const CACHED_FILTER_BYTES: usize = 1 << 20;

/// Builds a blocked filter for a set of key hashes: each key sets its `k`
/// bits inside one 64-byte block chosen by the hash, so a probe costs one
/// cache miss instead of `k`. Point reads of absent keys probe a filter per
/// L0 file and per level, and on large state those probes are main-memory
/// misses: with `k` misses per file they dominated the read path.
pub fn build(hashes: &[u64], bits_per_key: usize) -> Vec<u8> {
    let blocks = (hashes.len() * bits_per_key)
        .div_ceil(BLOCK_BITS as usize)
        .max(1);
    let bytes = blocks * (BLOCK_BITS as usize / 8);
    // Blocked filters lose a little to uneven block loads; one probe fewer
    // than the classic optimum keeps the false-positive rate near 1% at 10
    // bits per key.
    let k = ((bits_per_key as f64) * 0.69).round().clamp(1.0, 7.0) as u8;
    let mut out = vec![0u8; bytes + 1];
    let block_bytes = BLOCK_BITS as usize / 8;
    if bytes <= CACHED_FILTER_BYTES {
        for &h in hashes {
            set_bits(&mut out, block_of(h, blocks as u64) * block_bytes, h, k);
        }
    } else {
        // A filter larger than the caches (a compaction output of small,
        // well-compressed entries holds millions of keys) missed memory
        // once per key, and each miss stalled the `k` read-modify-writes
        // behind it. Per group of keys, one independent load of each block
        // first: the CPU overlaps those misses, and the bit setting then
        // hits the cache.
        let mut base = [0usize; TOUCH_AHEAD];
        for group in hashes.chunks(TOUCH_AHEAD) {
            let mut touched = 0u8;
            for (b, &h) in base.iter_mut().zip(group) {
                *b = block_of(h, blocks as u64) * block_bytes;
                touched |= out[*b];
            }
            std::hint::black_box(touched);
            for (&b, &h) in base.iter().zip(group) {
                set_bits(&mut out, b, h, k);
            }
        }
    }
    out[bytes] = BLOCKED | k;
    out
}

/// Sets the `k` bits of hash `h` in the block starting at byte `base`.
#[inline]
fn set_bits(out: &mut [u8], base: usize, h: u64, k: u8) {
    let mut x = in_block_bits(h);
    for _ in 0..k {
        let bit = (x & (BLOCK_BITS - 1)) as usize;
        out[base + bit / 8] |= 1 << (bit % 8);
        x >>= 9;
    }
}

/// The block of hash `h` among `blocks`: multiply-shift, no division.
#[inline]
fn block_of(h: u64, blocks: u64) -> usize {
    ((u128::from(h) * u128::from(blocks)) >> 64) as usize
}

/// Seven 9-bit bit positions, from hash bits independent of the block's.
#[inline]
fn in_block_bits(h: u64) -> u64 {
    let x = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

/// A decoded filter; `None` bytes (an empty filter) answer "maybe".
#[derive(Debug, Clone)]
pub struct Bloom {
    bits: bytes::Bytes,
    k: u8,
    blocked: bool,
}

impl Bloom {
    /// `None` when the encoding is impossible (no bits, or `k` out of range).
    pub fn decode(data: bytes::Bytes) -> Option<Bloom> {
        let (&last, _) = data.split_last()?;
        if data.len() < 2 {
            return None;
        }
        let bits = data.slice(..data.len() - 1);
        if last & BLOCKED != 0 {
            let k = last & !BLOCKED;
            let block_bytes = (BLOCK_BITS / 8) as usize;
            if k == 0 || k > 7 || !bits.len().is_multiple_of(block_bytes) {
                return None;
            }
            return Some(Bloom {
                bits,
                k,
                blocked: true,
            });
        }
        if last == 0 || last > 30 {
            return None;
        }
        Some(Bloom {
            bits,
            k: last,
            blocked: false,
        })
    }

    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        if self.blocked {
            return self.block_has(self.block_base(hash), hash);
        }
        // Classic double hashing, kept so that files written before blocked
        // filters still read.
        let nbits = (self.bits.len() * 8) as u64;
        let delta = hash.rotate_left(31) | 1;
        let mut x = hash;
        for _ in 0..self.k {
            let bit = (x % nbits) as usize;
            if self.bits[bit / 8] & (1 << (bit % 8)) == 0 {
                return false;
            }
            x = x.wrapping_add(delta);
        }
        true
    }

    /// Calls `maybe(i)` for each `hashes[i]` the filter may hold, in order.
    ///
    /// Why not `may_contain` in a loop: a multi-get probes every L0 file's
    /// filter for each of its keys, and after a large epoch's commit tens of
    /// filters of hundreds of KiB each are far larger than the caches. Each
    /// probe then waited for its own miss (a criterion multi-get over 40 L0
    /// files spent most of its time on one load). Per group of hashes, one
    /// independent load of each block first lets the CPU overlap the misses.
    pub fn may_contain_each(&self, hashes: &[u64], mut maybe: impl FnMut(usize)) {
        if !self.blocked {
            for (i, &h) in hashes.iter().enumerate() {
                if self.may_contain(h) {
                    maybe(i);
                }
            }
            return;
        }
        let mut base = [0usize; TOUCH_AHEAD];
        for (g, group) in hashes.chunks(TOUCH_AHEAD).enumerate() {
            let mut touched = 0u8;
            for (b, &h) in base.iter_mut().zip(group) {
                *b = self.block_base(h);
                touched |= self.bits[*b];
            }
            std::hint::black_box(touched);
            for (j, (&b, &h)) in base.iter().zip(group).enumerate() {
                if self.block_has(b, h) {
                    maybe(g * TOUCH_AHEAD + j);
                }
            }
        }
    }

    /// Byte offset of the block of `hash` in a blocked filter.
    #[inline]
    fn block_base(&self, hash: u64) -> usize {
        let block_bytes = BLOCK_BITS as usize / 8;
        block_of(hash, (self.bits.len() / block_bytes) as u64) * block_bytes
    }

    /// Whether all `k` bits of `hash` are set in the block at byte `base`.
    #[inline]
    fn block_has(&self, base: usize, hash: u64) -> bool {
        let block = &self.bits[base..base + BLOCK_BITS as usize / 8];
        let mut x = in_block_bits(hash);
        for _ in 0..self.k {
            let bit = (x & (BLOCK_BITS - 1)) as usize;
            if block[bit / 8] & (1 << (bit % 8)) == 0 {
                return false;
            }
            x >>= 9;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let keys: Vec<Vec<u8>> = (0..10_000u32)
            .map(|i| format!("key{i}").into_bytes())
            .collect();
        let hashes: Vec<u64> = keys.iter().map(|k| key_hash(k)).collect();
        let bloom = Bloom::decode(build(&hashes, 10).into()).unwrap();
        assert!(hashes.iter().all(|&h| bloom.may_contain(h)));
        let fp = (0..10_000u32)
            .filter(|i| bloom.may_contain(key_hash(format!("other{i}").as_bytes())))
            .count();
        assert!(fp < 200, "false positive rate too high: {fp}/10000");
    }

    /// The batched probe answers as the single one does, for both encodings
    /// and for a number of hashes that is not a multiple of the group.
    #[test]
    fn batched_probes_answer_as_single_ones() {
        let mut rng = crate::test_rng::XorShift(0x9e37_79b9_7f4a_7c15);
        let present: Vec<u64> = (0..20_000).map(|_| rng.next_u64()).collect();
        let probes: Vec<u64> = present
            .iter()
            .step_by(3)
            .copied()
            .chain((0..10_001).map(|_| rng.next_u64()))
            .collect();
        let blocked = Bloom::decode(build(&present, 10).into()).unwrap();
        let mut classic = vec![0u8; 25_000];
        for &h in &present {
            let delta = h.rotate_left(31) | 1;
            let mut x = h;
            for _ in 0..7 {
                let bit = (x % (25_000 * 8)) as usize;
                classic[bit / 8] |= 1 << (bit % 8);
                x = x.wrapping_add(delta);
            }
        }
        classic.push(7);
        let classic = Bloom::decode(classic.into()).unwrap();
        for filter in [blocked, classic] {
            let mut batched = Vec::new();
            filter.may_contain_each(&probes, |i| batched.push(i));
            let single: Vec<usize> = (0..probes.len())
                .filter(|&i| filter.may_contain(probes[i]))
                .collect();
            assert_eq!(batched, single);
            assert!(batched.len() >= present.len().div_ceil(3));
            assert!(batched.len() < probes.len());
        }
    }

    /// Files outlive processes: the filter a large build writes (blocks
    /// loaded ahead) must be bit for bit the one the format spec above
    /// describes, written here key by key from the spec.
    #[test]
    fn large_filters_are_the_bits_the_spec_describes() {
        let mut rng = crate::test_rng::XorShift(0x2545_f491_4f6c_dd1d);
        let hashes: Vec<u64> = (0..1_000_003).map(|_| rng.next_u64()).collect();
        for bits_per_key in [3, 10] {
            let built = build(&hashes, bits_per_key);
            let blocks = (hashes.len() * bits_per_key).div_ceil(512) as u128;
            let k = ((bits_per_key as f64) * 0.69).round() as u32;
            let mut spec = vec![0u8; blocks as usize * 64];
            for &h in &hashes {
                let block = ((u128::from(h) * blocks) >> 64) as usize;
                let y = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let y = y ^ (y >> 29);
                for i in 0..k {
                    let bit = ((y >> (9 * i)) & 511) as usize;
                    spec[block * 64 + bit / 8] |= 1 << (bit % 8);
                }
            }
            spec.push(0x80 | k as u8);
            assert!(built.len() > CACHED_FILTER_BYTES || bits_per_key == 3);
            assert!(built == spec, "{bits_per_key} bits per key");
        }
    }

    #[test]
    fn classic_filters_still_read() {
        // A classic filter written by hand: bits then k.
        let hashes: Vec<u64> = (0..1000u64).map(|i| key_hash(&i.to_be_bytes())).collect();
        let nbits = 1000 * 10u64;
        let mut bits = vec![0u8; (nbits / 8) as usize];
        for &h in &hashes {
            let delta = h.rotate_left(31) | 1;
            let mut x = h;
            for _ in 0..7 {
                let bit = (x % nbits) as usize;
                bits[bit / 8] |= 1 << (bit % 8);
                x = x.wrapping_add(delta);
            }
        }
        bits.push(7);
        let bloom = Bloom::decode(bits.into()).unwrap();
        assert!(!bloom.blocked);
        assert!(hashes.iter().all(|&h| bloom.may_contain(h)));
        let fp = (1000..11_000u64)
            .filter(|i| bloom.may_contain(key_hash(&i.to_be_bytes())))
            .count();
        assert!(fp < 300, "false positive rate too high: {fp}/10000");
    }

    #[test]
    fn impossible_encodings_are_refused() {
        assert!(Bloom::decode(vec![0xff; 65].into()).is_none()); // k = 127
        assert!(Bloom::decode(vec![0x87; 10].into()).is_none()); // not whole blocks
        assert!(Bloom::decode(vec![0, 0].into()).is_none()); // k = 0
    }
}
