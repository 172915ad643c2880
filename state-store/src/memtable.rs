//! A memtable: the writes of one epoch not yet in an SST.
//!
//! Every memtable belongs to one epoch and has its own sequence number; its
//! versions are stamped `(epoch, seq)`. A key has one version per memtable
//! (a later write in the same memtable replaces it). Once frozen, a memtable
//! takes no more writes and waits to be flushed; writers that lose a race
//! with freezing see `Frozen` and retry on the epoch's new memtable.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;

use crate::entry::{Entry, Value};
use crate::keys::{Epoch, Stamp};
use crate::range_tombstone::RangeTombstone;
use crate::write_batch::{Op, WriteBatch};

/// Bookkeeping bytes charged per entry on top of key and value.
const ENTRY_OVERHEAD: usize = 48;

pub struct Memtable {
    stamp: Stamp,
    inner: RwLock<Inner>,
    size: AtomicUsize,
    /// Set when the epoch is discarded while a flush of this memtable runs:
    /// the flush must then throw its file away.
    discarded: AtomicBool,
}

/// A memtable key. Ordered like its bytes, but compared 8 bytes at a time
/// as big-endian words first: full keys share a 6-byte table|key-group
/// prefix and are short, so most comparisons finish without a call to
/// memcmp, which dominated insert and lookup profiles.
#[derive(Clone, PartialEq, Eq)]
struct MemKey(Bytes);

impl Ord for MemKey {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        key_cmp(&self.0, &other.0)
    }
}

impl PartialOrd for MemKey {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Byte-order comparison, a word at a time while both keys have one.
#[inline]
pub fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (mut a, mut b) = (a, b);
    while a.len() >= 8 && b.len() >= 8 {
        let x = u64::from_be_bytes(a[..8].try_into().expect("8 bytes"));
        let y = u64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
        if x != y {
            return x.cmp(&y);
        }
        a = &a[8..];
        b = &b[8..];
    }
    // Tails shorter than a word: compare them zero-padded, then by length
    // (a shorter key that is a prefix sorts first).
    let pad = |t: &[u8]| {
        let mut w = [0u8; 8];
        let n = t.len().min(8);
        w[..n].copy_from_slice(&t[..n]);
        u64::from_be_bytes(w)
    };
    if a.len() < 8 && b.len() < 8 {
        return pad(a).cmp(&pad(b)).then(a.len().cmp(&b.len()));
    }
    a.cmp(b)
}

struct Inner {
    map: BTreeMap<MemKey, Value>,
    /// A bloom filter over the keys in `map`: a read of a key the memtable
    /// lacks (most reads, once state spreads over files) skips the tree
    /// search and its key comparisons.
    bloom: Vec<u64>,
    frozen: bool,
}

/// Bits of a memtable's bloom filter: 2^21 bits (256 KiB) keep false
/// positives near 3% at the ~300 K entries of a full 32 MiB memtable.
const BLOOM_BITS: u64 = 1 << 21;

#[inline]
fn bloom_bits(key: &[u8]) -> (usize, u64, usize, u64) {
    let h = crate::sst::bloom::key_hash(key);
    let a = h % BLOOM_BITS;
    let b = (h >> 32) % BLOOM_BITS;
    (
        (a / 64) as usize,
        1 << (a % 64),
        (b / 64) as usize,
        1 << (b % 64),
    )
}

impl Inner {
    #[inline]
    fn note(&mut self, key: &[u8]) {
        let (i, m, j, n) = bloom_bits(key);
        self.bloom[i] |= m;
        self.bloom[j] |= n;
    }

    #[inline]
    fn may_hold(&self, key: &[u8]) -> bool {
        let (i, m, j, n) = bloom_bits(key);
        self.bloom[i] & m != 0 && self.bloom[j] & n != 0
    }
}

/// The memtable was frozen before the write got in.
#[derive(Debug)]
pub struct Frozen;

impl Memtable {
    pub fn new(epoch: Epoch, seq: u64) -> Self {
        Memtable {
            stamp: Stamp { epoch, seq },
            inner: RwLock::new(Inner {
                map: BTreeMap::new(),
                bloom: vec![0; (BLOOM_BITS / 64) as usize],
                frozen: false,
            }),
            size: AtomicUsize::new(0),
            discarded: AtomicBool::new(false),
        }
    }

    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    pub fn epoch(&self) -> Epoch {
        self.stamp.epoch
    }

    pub fn size(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.inner.read().map.is_empty()
    }

    /// Applies `batch` in order; returns the bytes added and the range
    /// tombstones the batch carried (stamped with this memtable's stamp).
    pub fn apply(&self, batch: &WriteBatch) -> Result<(usize, Vec<RangeTombstone>), Frozen> {
        let mut inner = self.inner.write();
        if inner.frozen {
            return Err(Frozen);
        }
        let mut added = 0usize;
        let mut tombstones = Vec::new();
        for op in &batch.ops {
            match op {
                Op::Put(k, v) => {
                    added += k.len() + v.len() + ENTRY_OVERHEAD;
                    inner.note(k);
                    inner.map.insert(MemKey(k.clone()), Value::Put(v.clone()));
                }
                Op::Delete(k) => {
                    added += k.len() + ENTRY_OVERHEAD;
                    inner.note(k);
                    inner.map.insert(MemKey(k.clone()), Value::Delete);
                }
                Op::DeleteRange(s, e) => {
                    let covered: Vec<MemKey> = inner
                        .map
                        .range((
                            Bound::Included(MemKey(s.clone())),
                            Bound::Excluded(MemKey(e.clone())),
                        ))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in covered {
                        inner.map.remove(&k);
                    }
                    added += s.len() + e.len() + ENTRY_OVERHEAD;
                    tombstones.push(RangeTombstone {
                        start: s.clone(),
                        end: e.clone(),
                        stamp: self.stamp,
                    });
                }
            }
        }
        self.size.fetch_add(added, Ordering::Relaxed);
        Ok((added, tombstones))
    }

    /// Stops writes; returns false if it was already frozen.
    pub fn freeze(&self) -> bool {
        let mut inner = self.inner.write();
        !std::mem::replace(&mut inner.frozen, true)
    }

    pub fn get(&self, key: &[u8]) -> Option<Value> {
        let inner = self.inner.read();
        if !inner.may_hold(key) {
            return None;
        }
        inner.map.get(&MemKey(Bytes::copy_from_slice(key))).cloned()
    }

    /// Versions with keys in `[start, end)` (`end = None`: unbounded), sorted.
    pub fn range(&self, start: &[u8], end: Option<&[u8]>) -> Vec<Entry> {
        let inner = self.inner.read();
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let upper = match upper {
            Bound::Excluded(e) => Bound::Excluded(MemKey(Bytes::copy_from_slice(e))),
            _ => Bound::Unbounded,
        };
        inner
            .map
            .range((
                Bound::Included(MemKey(Bytes::copy_from_slice(start))),
                upper,
            ))
            .map(|(k, v)| Entry {
                key: k.0.clone(),
                stamp: self.stamp,
                value: v.clone(),
            })
            .collect()
    }

    /// Calls `f` on every version in key order (used by flush, on a frozen memtable).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], Option<&[u8]>)) {
        let inner = self.inner.read();
        for (k, v) in inner.map.iter() {
            match v {
                Value::Put(v) => f(&k.0, Some(v)),
                Value::Delete => f(&k.0, None),
            }
        }
    }

    pub fn mark_discarded(&self) {
        self.discarded.store(true, Ordering::Release);
    }

    pub fn is_discarded(&self) -> bool {
        self.discarded.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{full_key, KeyGroup, TableId};

    fn k(s: &str) -> Bytes {
        full_key(TableId(1), KeyGroup(0), s.as_bytes())
    }

    #[test]
    fn later_writes_win_and_range_delete_removes_only_earlier_ones() {
        let m = Memtable::new(Epoch(3), 9);
        let mut b = WriteBatch::new();
        b.put(k("a"), Bytes::from("1"))
            .put(k("b"), Bytes::from("2"))
            .delete_range(k("a"), k("c"))
            .put(k("b"), Bytes::from("3"));
        let (_, ts) = m.apply(&b).unwrap();
        assert_eq!(ts.len(), 1);
        assert_eq!(
            ts[0].stamp,
            Stamp {
                epoch: Epoch(3),
                seq: 9
            }
        );
        assert_eq!(m.get(&k("a")), None);
        assert_eq!(m.get(&k("b")), Some(Value::Put(Bytes::from("3"))));
        assert!(m.freeze());
        assert!(m.apply(&b).is_err());
    }
}

#[cfg(test)]
mod key_order_tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn word_comparison_agrees_with_byte_order(a in prop::collection::vec(any::<u8>(), 0..40), b in prop::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(super::key_cmp(&a, &b), a.cmp(&b));
            let mut c = a.clone();
            c.extend_from_slice(&b);
            prop_assert_eq!(super::key_cmp(&a, &c), a.cmp(&c));
        }
    }
}
