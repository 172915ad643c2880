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

struct Inner {
    map: BTreeMap<Bytes, Value>,
    frozen: bool,
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
                    inner.map.insert(k.clone(), Value::Put(v.clone()));
                }
                Op::Delete(k) => {
                    added += k.len() + ENTRY_OVERHEAD;
                    inner.map.insert(k.clone(), Value::Delete);
                }
                Op::DeleteRange(s, e) => {
                    let covered: Vec<Bytes> = inner
                        .map
                        .range::<[u8], _>((Bound::Included(&s[..]), Bound::Excluded(&e[..])))
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
        self.inner.read().map.get(key).cloned()
    }

    /// Versions with keys in `[start, end)` (`end = None`: unbounded), sorted.
    pub fn range(&self, start: &[u8], end: Option<&[u8]>) -> Vec<Entry> {
        let inner = self.inner.read();
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        inner
            .map
            .range::<[u8], _>((Bound::Included(start), upper))
            .map(|(k, v)| Entry {
                key: k.clone(),
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
                Value::Put(v) => f(k, Some(v)),
                Value::Delete => f(k, None),
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
