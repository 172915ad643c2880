//! Keys, versions and the small value types that name them.
//!
//! A full key is `table_id (u32 BE) | key_group (u16 BE) | user_key`. Big-endian
//! makes the byte order of full keys the order of `(table, key group, user
//! key)`, so one table's key groups are contiguous ranges: a worker's state is
//! a few ranges, and dropping a key-group range is one range delete.
//!
//! Every stored version carries a [`Stamp`]: the epoch it was written in and
//! the sequence number of the memtable that held it. Versions order by
//! `(epoch, seq)`; the newest stamp at or below the read epoch wins.

use bytes::{BufMut, Bytes, BytesMut};

/// A table: one operator's state of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId(pub u32);

/// `hash(key) % max_parallelism`: the unit of ownership and rescaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyGroup(pub u16);

/// A checkpoint interval. Writes carry one; reads name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

impl Epoch {
    /// Reads at `Epoch::MAX` see every write, committed or not.
    pub const MAX: Epoch = Epoch(u64::MAX);
    pub fn next(self) -> Epoch {
        Epoch(self.0 + 1)
    }
}

/// Identifies one immutable file in object storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(pub u64);

/// Length of the `table_id | key_group` prefix of every full key.
pub const KEY_PREFIX_LEN: usize = 6;

/// The order of versions: epoch first, then the memtable sequence number that
/// breaks ties between memtables of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Stamp {
    pub epoch: Epoch,
    pub seq: u64,
}

/// The stable 64-bit hash of the key layout (8 bytes at a time, murmur-style
/// finaliser). It is a contract: it picks a key's key group
/// ([`key_group_of`]), hence its owner, and the bloom filters of stored files
/// probe with it, so it never changes (a test pins its values).
#[inline]
pub fn stable_hash(key: &[u8]) -> u64 {
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

/// The key group of a user key's encoding: `stable_hash(key) % max_parallelism`,
/// as Flink assigns key groups.
#[inline]
pub fn key_group_of(key: &[u8], max_parallelism: u16) -> KeyGroup {
    KeyGroup((stable_hash(key) % u64::from(max_parallelism)) as u16)
}

/// The `table | key_group` prefix of every full key of `key_group`.
pub fn key_prefix(table: TableId, key_group: KeyGroup) -> [u8; KEY_PREFIX_LEN] {
    let mut p = [0u8; KEY_PREFIX_LEN];
    p[..4].copy_from_slice(&table.0.to_be_bytes());
    p[4..].copy_from_slice(&key_group.0.to_be_bytes());
    p
}

/// Encodes `table | key_group | user_key` into `buf`.
pub fn encode_full_key(buf: &mut BytesMut, table: TableId, key_group: KeyGroup, user_key: &[u8]) {
    buf.reserve(KEY_PREFIX_LEN + user_key.len());
    buf.put_u32(table.0);
    buf.put_u16(key_group.0);
    buf.put_slice(user_key);
}

/// A full key as one `Bytes`.
pub fn full_key(table: TableId, key_group: KeyGroup, user_key: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(KEY_PREFIX_LEN + user_key.len());
    encode_full_key(&mut buf, table, key_group, user_key);
    buf.freeze()
}

/// The first full key of a key-group range: with [`key_group_end`] it bounds a
/// `delete_range` or scan over key groups `[first, last]`.
pub fn key_group_start(table: TableId, key_group: KeyGroup) -> Bytes {
    full_key(table, key_group, &[])
}

/// The first full key after key group `last` of `table`.
pub fn key_group_end(table: TableId, last: KeyGroup) -> Bytes {
    match last.0.checked_add(1) {
        Some(next) => full_key(table, KeyGroup(next), &[]),
        None => match table.0.checked_add(1) {
            Some(t) => full_key(TableId(t), KeyGroup(0), &[]),
            None => Bytes::from_static(&[0xff; KEY_PREFIX_LEN + 1]),
        },
    }
}

/// Splits a full key into its parts; `None` if it is shorter than the prefix.
pub fn decode_full_key(key: &[u8]) -> Option<(TableId, KeyGroup, &[u8])> {
    if key.len() < KEY_PREFIX_LEN {
        return None;
    }
    let table = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    let group = u16::from_be_bytes([key[4], key[5]]);
    Some((TableId(table), KeyGroup(group), &key[KEY_PREFIX_LEN..]))
}

/// The smallest key greater than every key starting with `prefix`, or `None`
/// when no such key exists (the prefix is all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Bytes> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(Bytes::from(end));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stable_hash_and_key_groups_are_pinned() {
        // Key groups decide ownership and bloom filters are stored with
        // these hashes: a change here breaks every existing store.
        assert_eq!(stable_hash(b""), PINNED[0]);
        assert_eq!(stable_hash(b"riverbed"), PINNED[1]);
        assert_eq!(stable_hash(b"key-group-contract"), PINNED[2]);
        assert_eq!(
            key_group_of(b"riverbed", 128),
            KeyGroup((PINNED[1] % 128) as u16)
        );
    }

    const PINNED: [u64; 3] = [
        0x4a14_1a19_c0d1_0cdd,
        0xf4d6_d6c6_cca1_f774,
        0x308e_3d31_5ce6_b706,
    ];

    #[test]
    fn full_keys_sort_by_table_then_group_then_user_key() {
        let a = full_key(TableId(1), KeyGroup(2), b"zz");
        let b = full_key(TableId(1), KeyGroup(3), b"aa");
        let c = full_key(TableId(2), KeyGroup(0), b"");
        assert!(a < b && b < c);
        assert_eq!(a[..KEY_PREFIX_LEN], key_prefix(TableId(1), KeyGroup(2)));
        assert_eq!(
            decode_full_key(&a),
            Some((TableId(1), KeyGroup(2), &b"zz"[..]))
        );
        assert_eq!(&a[..], &[0, 0, 0, 1, 0, 2, b'z', b'z']);
    }

    #[test]
    fn key_group_range_covers_exactly_its_groups() {
        let start = key_group_start(TableId(7), KeyGroup(3));
        let end = key_group_end(TableId(7), KeyGroup(4));
        let inside = full_key(TableId(7), KeyGroup(4), &[0xff, 0xff]);
        let outside = full_key(TableId(7), KeyGroup(5), b"");
        assert!(start <= inside && inside < end);
        assert!(outside >= end);
        assert_eq!(
            key_group_end(TableId(7), KeyGroup(u16::MAX)),
            key_group_start(TableId(8), KeyGroup(0))
        );
    }

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(b"ab").as_deref(), Some(&b"ac"[..]));
        assert_eq!(prefix_end(&[1, 0xff]).as_deref(), Some(&[2][..]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
