//! Bloom filter over the keys of one SST, so a point read skips files that
//! cannot hold its key without touching their blocks.
//!
//! Encoding: `bits (m/8 bytes) | k (u8)`. Probes use double hashing
//! `h1 + i*h2` over a 64-bit hash of the key ([`key_hash`]), which is stable
//! across versions because files outlive processes.

/// A stable 64-bit hash (8 bytes at a time, murmur-style finaliser).
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    const M: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h: u64 = 0x5151_7e1d_u64 ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ v.wrapping_mul(M)).rotate_left(29).wrapping_mul(M);
    }
    let mut tail = 0u64;
    for (i, &b) in chunks.remainder().iter().enumerate() {
        tail |= u64::from(b) << (8 * i);
    }
    h ^= tail.wrapping_mul(M);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Builds the filter bytes for a set of key hashes.
pub fn build(hashes: &[u64], bits_per_key: usize) -> Vec<u8> {
    let bits = (hashes.len() * bits_per_key).max(64);
    let bytes = bits.div_ceil(8);
    let bits = bytes * 8;
    let k = ((bits_per_key as f64) * 0.69).round().clamp(1.0, 30.0) as u8;
    let mut out = vec![0u8; bytes + 1];
    for &h in hashes {
        let delta = h.rotate_left(31) | 1;
        let mut x = h;
        for _ in 0..k {
            let bit = (x % bits as u64) as usize;
            out[bit / 8] |= 1 << (bit % 8);
            x = x.wrapping_add(delta);
        }
    }
    out[bytes] = k;
    out
}

/// A decoded filter; `None` bytes (an empty filter) answer "maybe".
#[derive(Debug, Clone)]
pub struct Bloom {
    bits: bytes::Bytes,
    k: u8,
}

impl Bloom {
    /// `None` when the encoding is impossible (no bits, or `k` out of range).
    pub fn decode(data: bytes::Bytes) -> Option<Bloom> {
        let (&k, _) = data.split_last()?;
        if data.len() < 2 || k == 0 || k > 30 {
            return None;
        }
        let bits = data.slice(..data.len() - 1);
        Some(Bloom { bits, k })
    }

    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
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
        assert!(fp < 300, "false positive rate too high: {fp}/10000");
    }
}
