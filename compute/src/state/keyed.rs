//! Keyed value state behind a worker-side, write-back cache.
//!
//! A subtask is the only writer of its key groups, so its cache is coherent:
//! reads of a batch's keys go to the store in one multi-get for the keys not
//! cached; writes stay in the cache (dirty) and are shipped in one write
//! batch when the cache is over capacity and at every barrier. State larger
//! than the cache works: it only costs more store reads.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use riverbed_state_store::{full_key, Epoch, KeyGroup, TableId, WriteBatch};

use super::backend::StateBackend;
use super::written::WrittenKeys;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::runtime::metrics::OperatorCounters;

struct Slot<V> {
    value: Option<V>,
    dirty: bool,
}

/// The hasher of state keys in worker-side maps: a fast, well-mixed,
/// fixed-seed hash (foldhash). The keys come from this process's own
/// operators, so hash flooding is not a concern and SipHash would cost more
/// than the lookups it serves; a hand-rolled hash before it mixed the
/// trailing bytes of keys that differ only there (window ends, sequence
/// numbers) badly enough that lookups spent their time comparing keys.
pub type FastHash = foldhash::fast::FixedState;

pub struct KeyedState<V> {
    table: TableId,
    operator: String,
    backend: Arc<dyn StateBackend>,
    counters: Arc<OperatorCounters>,
    cache: HashMap<Bytes, Slot<V>, FastHash>,
    capacity: usize,
    /// Keys this subtask wrote, when the store held no state at the start:
    /// reads of other keys need not go to the store.
    written: Option<WrittenKeys>,
}

impl<V: Codec + Clone + Send> KeyedState<V> {
    pub fn new(
        table: TableId,
        operator: &str,
        backend: Arc<dyn StateBackend>,
        counters: Arc<OperatorCounters>,
        capacity: usize,
    ) -> Self {
        KeyedState {
            table,
            operator: operator.to_string(),
            backend,
            counters,
            cache: HashMap::default(),
            capacity: capacity.max(1),
            written: None,
        }
    }

    /// Declares that the store held no state when this subtask started, so
    /// that keys it never wrote are known to be absent.
    pub fn started_empty(mut self) -> Self {
        self.written = Some(WrittenKeys::default());
        self
    }

    /// The store key of `key_bytes` (already encoded) in key group `kg`.
    pub fn state_key(&self, kg: u16, key_bytes: &[u8]) -> Bytes {
        full_key(self.table, KeyGroup(kg), key_bytes)
    }

    /// Makes sure every key of `keys` is cached: one multi-get for the misses.
    pub async fn load(&mut self, keys: &[Bytes], epoch: Epoch) -> Result<()> {
        let mut missing: Vec<Bytes> = Vec::new();
        let mut asked: HashSet<&Bytes, FastHash> = HashSet::default();
        let mut hits = 0;
        let mut absent: Vec<Bytes> = Vec::new();
        for k in keys {
            if self.cache.contains_key(k) {
                hits += 1;
            } else if self.written.as_ref().is_some_and(|w| !w.may_hold(k)) {
                absent.push(k.clone());
            } else if asked.insert(k) {
                missing.push(k.clone());
            }
        }
        for k in absent {
            self.cache.entry(k).or_insert(Slot {
                value: None,
                dirty: false,
            });
        }
        OperatorCounters::add(&self.counters.cache_hits, hits);
        if missing.is_empty() {
            return Ok(());
        }
        // Sorted, the lookups walk the store's trees and blocks in order.
        missing.sort_unstable();
        OperatorCounters::add(&self.counters.state_reads, missing.len());
        let values = self.backend.multi_get(&missing, epoch).await?;
        for (k, v) in missing.into_iter().zip(values) {
            let value = match v {
                Some(b) => Some(V::from_bytes(&b).ok_or_else(|| Error::StateDecode {
                    operator: self.operator.clone(),
                    reason: format!("{} bytes under key {k:?}", b.len()),
                })?),
                None => None,
            };
            self.cache.insert(
                k,
                Slot {
                    value,
                    dirty: false,
                },
            );
        }
        Ok(())
    }

    /// The cached value of a loaded key.
    pub fn get(&self, key: &Bytes) -> Option<&V> {
        self.cache.get(key).and_then(|s| s.value.as_ref())
    }

    /// Moves the value of a loaded key out of the cache, leaving it absent
    /// until the caller puts or deletes it (its dirty mark is unchanged).
    pub fn take(&mut self, key: &Bytes) -> Option<V> {
        self.cache.get_mut(key).and_then(|s| s.value.take())
    }

    /// Updates a loaded key in place, starting from `default()` if absent.
    /// Returns whether the key had no value before (one lookup serves both).
    pub fn update(
        &mut self,
        key: &Bytes,
        default: impl FnOnce() -> V,
        f: impl FnOnce(&mut V),
    ) -> bool {
        let slot = match self.cache.get_mut(key) {
            Some(s) => s,
            None => self.cache.entry(key.clone()).or_insert(Slot {
                value: None,
                dirty: false,
            }),
        };
        let created = slot.value.is_none();
        f(slot.value.get_or_insert_with(default));
        slot.dirty = true;
        created
    }

    /// The store key of `key` in the key group its encoding hashes to.
    pub fn key_of<K: Codec>(&self, key: &K, max_parallelism: u16, suffix: &[u8]) -> Bytes {
        let mut kb = key.to_bytes();
        let kg = crate::runtime::exchange::key_group_of(&kb, max_parallelism);
        kb.extend_from_slice(suffix);
        self.state_key(kg, &kb)
    }

    pub fn put(&mut self, key: Bytes, value: V) {
        self.cache.insert(
            key,
            Slot {
                value: Some(value),
                dirty: true,
            },
        );
    }

    pub fn delete(&mut self, key: Bytes) {
        self.cache.insert(
            key,
            Slot {
                value: None,
                dirty: true,
            },
        );
    }

    /// Ships every dirty entry to the store in one batch.
    pub async fn flush(&mut self, epoch: Epoch) -> Result<()> {
        let mut batch = WriteBatch::new();
        let mut buf = Vec::new();
        // Key order: the store's memtable is a B-tree, and inserting sorted
        // keys walks paths already in the CPU cache instead of a random
        // path per key (the write-back dominated large-state profiles).
        let mut dirty: Vec<(&Bytes, &mut Slot<V>)> =
            self.cache.iter_mut().filter(|(_, s)| s.dirty).collect();
        dirty.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (k, slot) in dirty {
            if let Some(w) = &mut self.written {
                w.insert(k);
            }
            match &slot.value {
                Some(v) => {
                    buf.clear();
                    v.encode(&mut buf);
                    batch.put(k.clone(), Bytes::copy_from_slice(&buf));
                }
                None => {
                    batch.delete(k.clone());
                }
            }
            slot.dirty = false;
        }
        if batch.is_empty() {
            return Ok(());
        }
        OperatorCounters::add(&self.counters.state_writes, batch.len());
        self.backend.write(epoch, &batch).await
    }

    /// Keeps the cache within its capacity: writes back, then forgets half.
    pub async fn shrink(&mut self, epoch: Epoch) -> Result<()> {
        if self.cache.len() <= self.capacity {
            return Ok(());
        }
        self.flush(epoch).await?;
        let mut keep = self.capacity / 2;
        self.cache.retain(|_, _| {
            if keep > 0 {
                keep -= 1;
                true
            } else {
                false
            }
        });
        Ok(())
    }
}
