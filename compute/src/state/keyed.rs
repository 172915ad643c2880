//! Keyed value state behind a worker-side, write-back cache.
//!
//! A subtask is the only writer of its key groups, so its cache is coherent:
//! reads of a batch's keys go to the store in one multi-get for the keys not
//! cached; writes stay in the cache (dirty) and are shipped in one write
//! batch when the cache is over capacity and at every barrier. State larger
//! than the cache works: it only costs more store reads.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashTable;
use riverbed_state_store::keys::{key_prefix, KEY_PREFIX_LEN};
use riverbed_state_store::{full_key, Epoch, KeyGroup, TableId, WriteBatch};

use super::backend::StateBackend;
use super::written::WrittenKeys;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::runtime::metrics::OperatorCounters;

/// The store key of `key` in `table`: `table | key group | key | suffix`,
/// the key group from the key's encoding alone.
pub fn state_key_of<K: Codec>(
    table: TableId,
    key: &K,
    max_parallelism: u16,
    suffix: &[u8],
) -> Bytes {
    // Encoded once, after room for the prefix: one allocation per key.
    let mut buf = Vec::with_capacity(KEY_PREFIX_LEN + 16 + suffix.len());
    buf.resize(KEY_PREFIX_LEN, 0);
    key.encode(&mut buf);
    let kg = crate::runtime::exchange::key_group_of(&buf[KEY_PREFIX_LEN..], max_parallelism);
    buf[..KEY_PREFIX_LEN].copy_from_slice(&key_prefix(table, KeyGroup(kg)));
    buf.extend_from_slice(suffix);
    Bytes::from(buf)
}

/// Every entry in `[start, end)` as of `epoch`, its value decoded as `V`;
/// a value that does not decode is an error naming `operator`.
pub async fn scan_decoded<V: Codec>(
    backend: Arc<dyn StateBackend>,
    (start, end): (Vec<u8>, Vec<u8>),
    epoch: Epoch,
    operator: String,
) -> Result<Vec<(Bytes, V)>> {
    let raw = backend.scan(&start, &end, epoch).await?;
    raw.into_iter()
        .map(|(k, v)| match V::from_bytes(&v) {
            Some(v) => Ok((k, v)),
            None => Err(Error::StateDecode {
                operator: operator.clone(),
                reason: "a stored value that does not decode".into(),
            }),
        })
        .collect()
}

/// The keys of `table` in key groups `lo..=hi`: `[start, end)`.
pub fn owned_range(table: TableId, (lo, hi): (u16, u16)) -> (Vec<u8>, Vec<u8>) {
    let start = key_prefix(table, KeyGroup(lo)).to_vec();
    let end = match hi.checked_add(1) {
        Some(next) => key_prefix(table, KeyGroup(next)).to_vec(),
        None => key_prefix(TableId(table.0 + 1), KeyGroup(0)).to_vec(),
    };
    (start, end)
}

/// One cached key. Its hash sits beside it so that a probe compares
/// hashes before it follows the key's pointer: with many keys, those
/// pointer chases were cache misses on keys that did not match.
///
/// Entries live in a vector in the order they were cached, and the hash
/// index holds only their positions (4 bytes a bucket): the index of a
/// large cache stays in the CPU's cache, a batch's new keys sit side by
/// side, and write-back walks memory in order.
struct Cached<V> {
    hash: u64,
    key: Bytes,
    value: Option<V>,
    dirty: bool,
    /// The `clock` of the last batch that used this key.
    last_use: u32,
}

/// The hasher of state keys in worker-side maps: a fast, well-mixed,
/// fixed-seed hash (foldhash). The keys come from this process's own
/// operators, so hash flooding is not a concern and SipHash would cost more
/// than the lookups it serves; a hand-rolled hash before it mixed the
/// trailing bytes of keys that differ only there (window ends, sequence
/// numbers) badly enough that lookups spent their time comparing keys.
pub type FastHash = foldhash::fast::FixedState;

/// Where a loaded key sits in the worker cache until the next shrink.
#[derive(Debug, Clone, Copy)]
pub struct Slot(u32);

pub struct KeyedState<V> {
    table: TableId,
    operator: String,
    backend: Arc<dyn StateBackend>,
    counters: Arc<OperatorCounters>,
    entries: Vec<Cached<V>>,
    index: HashTable<u32>,
    hasher: FastHash,
    capacity: usize,
    /// Keys this subtask wrote, when the store held no state at the start:
    /// reads of other keys need not go to the store.
    written: Option<WrittenKeys>,
    /// Counts loads: the cache's notion of time, for keeping the keys used
    /// most recently when it shrinks.
    clock: u32,
    /// The key groups this subtask owns, first and last.
    key_groups: (u16, u16),
    /// The store held committed state of the job when this subtask started:
    /// what lives only in memory (timers) must be read back.
    restored: bool,
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
            entries: Vec::new(),
            index: HashTable::new(),
            hasher: FastHash::default(),
            // Positions are u32: a larger cache would not fit in memory anyway.
            capacity: capacity.clamp(1, u32::MAX as usize / 2),
            written: None,
            clock: 0,
            key_groups: (0, u16::MAX),
            restored: false,
        }
    }

    /// Declares the key groups the subtask owns and whether it restores a
    /// checkpoint.
    pub fn owning(mut self, key_groups: (u16, u16), restored: bool) -> Self {
        self.key_groups = key_groups;
        self.restored = restored;
        self
    }

    /// Whether the subtask started from a checkpoint's state.
    pub fn restored(&self) -> bool {
        self.restored
    }

    /// The state's table.
    pub fn table(&self) -> TableId {
        self.table
    }

    /// The key groups this subtask owns, first and last.
    pub fn owned_key_groups(&self) -> (u16, u16) {
        self.key_groups
    }

    pub fn backend(&self) -> &Arc<dyn StateBackend> {
        &self.backend
    }

    /// Every entry of `table` in the owned key groups, as of `epoch`.
    pub async fn scan_owned(&self, table: TableId, epoch: Epoch) -> Result<Vec<(Bytes, Bytes)>> {
        let (start, end) = owned_range(table, self.key_groups);
        self.backend.scan(&start, &end, epoch).await
    }

    /// This state's entries in the owned key groups as of `epoch`, decoded:
    /// a restored operator rebuilds what it keeps only in memory (its
    /// timers) from them. The future borrows nothing of `self`, so values
    /// that are `Send` but not `Sync` may be held across it.
    pub fn scan_owned_values(
        &self,
        epoch: Epoch,
    ) -> impl std::future::Future<Output = Result<Vec<(Bytes, V)>>> + Send + 'static
    where
        V: 'static,
    {
        scan_decoded(
            self.backend.clone(),
            owned_range(self.table, self.key_groups),
            epoch,
            self.operator.clone(),
        )
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

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Position of `key` (hash `h`) in `entries`.
    #[inline]
    fn find(&self, h: u64, key: &[u8]) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(h, |&i| {
                let c = &entries[i as usize];
                c.hash == h && c.key == key
            })
            .map(|&i| i as usize)
    }

    /// Position of `key` (hash `h`) in `entries`, inserted absent and
    /// clean if missing; marks it used now.
    #[inline]
    fn position(&mut self, h: u64, key: &Bytes) -> usize {
        let entries = &self.entries;
        let i = match self.index.entry(
            h,
            |&i| {
                let c = &entries[i as usize];
                c.hash == h && c.key == key
            },
            |&i| entries[i as usize].hash,
        ) {
            hashbrown::hash_table::Entry::Occupied(o) => *o.get() as usize,
            hashbrown::hash_table::Entry::Vacant(v) => {
                let i = self.entries.len();
                v.insert(i as u32);
                self.entries.push(Cached {
                    hash: h,
                    key: key.clone(),
                    value: None,
                    dirty: false,
                    last_use: self.clock,
                });
                i
            }
        };
        self.entries[i].last_use = self.clock;
        i
    }

    /// The cache entry of `key`, inserted absent and clean if missing.
    #[inline]
    fn entry(&mut self, key: &Bytes) -> &mut Cached<V> {
        let i = self.position(self.hash(key), key);
        &mut self.entries[i]
    }

    /// Makes sure every key of `keys` is cached: one multi-get for the misses.
    pub async fn load(&mut self, keys: &[Bytes], epoch: Epoch) -> Result<()> {
        self.load_slots(keys, epoch).await.map(drop)
    }

    /// [`load`](Self::load), returning where each key sits in the cache:
    /// [`modify_slot`](Self::modify_slot) then changes it without a second
    /// lookup. Slots stay valid until the next `shrink`.
    pub async fn load_slots(&mut self, keys: &[Bytes], epoch: Epoch) -> Result<Vec<Slot>> {
        self.clock = self.clock.wrapping_add(1);
        let hashes: Vec<u64> = keys.iter().map(|k| self.hash(k)).collect();
        const UNSET: u32 = u32::MAX;
        let mut slots = vec![Slot(UNSET); keys.len()];
        let mut uncached: Vec<usize> = Vec::new();
        for (i, (k, &h)) in keys.iter().zip(&hashes).enumerate() {
            match self.find(h, k) {
                Some(at) => {
                    self.entries[at].last_use = self.clock;
                    slots[i] = Slot(at as u32);
                }
                None => uncached.push(i),
            }
        }
        OperatorCounters::add(&self.counters.cache_hits, keys.len() - uncached.len());
        // The filter's probes in a loop of their own: independent cache
        // misses the CPU can overlap.
        let written: Vec<bool> = match &self.written {
            Some(w) => uncached.iter().map(|&i| w.may_hold(hashes[i])).collect(),
            None => vec![true; uncached.len()],
        };
        let mut missing: Vec<usize> = Vec::new();
        let mut asked: HashSet<&Bytes, FastHash> = HashSet::default();
        for (&i, may_hold) in uncached.iter().zip(written) {
            if !may_hold {
                slots[i] = Slot(self.position(hashes[i], &keys[i]) as u32);
            } else if asked.insert(&keys[i]) {
                missing.push(i);
            }
        }
        if !missing.is_empty() {
            // Sorted, the lookups walk the store's trees and blocks in order.
            missing.sort_unstable_by(|&x, &y| keys[x].cmp(&keys[y]));
            let ask: Vec<Bytes> = missing.iter().map(|&i| keys[i].clone()).collect();
            OperatorCounters::add(&self.counters.state_reads, ask.len());
            let values = self.backend.multi_get(&ask, epoch).await?;
            for (&i, v) in missing.iter().zip(values) {
                let value = match v {
                    Some(b) => Some(V::from_bytes(&b).ok_or_else(|| Error::StateDecode {
                        operator: self.operator.clone(),
                        reason: format!("{} bytes under key {:?}", b.len(), keys[i]),
                    })?),
                    None => None,
                };
                let at = self.position(hashes[i], &keys[i]);
                let e = &mut self.entries[at];
                e.value = value;
                e.dirty = false;
                slots[i] = Slot(at as u32);
            }
        }
        // A key given twice was asked for once; its other places find it now.
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.0 == UNSET {
                *slot = Slot(self.position(hashes[i], &keys[i]) as u32);
            }
        }
        Ok(slots)
    }

    /// [`modify`](Self::modify) for a key [`load_slots`](Self::load_slots)
    /// placed at `slot` (since the last shrink).
    pub fn modify_slot<R>(&mut self, slot: Slot, f: impl FnOnce(&mut Option<V>) -> R) -> R {
        let e = &mut self.entries[slot.0 as usize];
        e.dirty = true;
        f(&mut e.value)
    }

    /// The cached value of a loaded key.
    pub fn get(&self, key: &Bytes) -> Option<&V> {
        self.find(self.hash(key), key)
            .and_then(|i| self.entries[i].value.as_ref())
    }

    /// Moves the value of a loaded key out of the cache, leaving it absent
    /// until the caller puts or deletes it (its dirty mark is unchanged).
    pub fn take(&mut self, key: &Bytes) -> Option<V> {
        let i = self.find(self.hash(key), key)?;
        self.entries[i].value.take()
    }

    /// Changes a loaded key's value (`None`: absent) in place with one
    /// lookup, and marks it dirty; returns what `f` returns.
    pub fn modify<R>(&mut self, key: &Bytes, f: impl FnOnce(&mut Option<V>) -> R) -> R {
        let e = self.entry(key);
        e.dirty = true;
        f(&mut e.value)
    }

    /// Updates a loaded key in place, starting from `default()` if absent.
    /// Returns whether the key had no value before (one lookup serves both).
    pub fn update(
        &mut self,
        key: &Bytes,
        default: impl FnOnce() -> V,
        f: impl FnOnce(&mut V),
    ) -> bool {
        self.modify(key, |v| {
            let created = v.is_none();
            f(v.get_or_insert_with(default));
            created
        })
    }

    /// The store key of `key` in the key group its encoding hashes to.
    pub fn key_of<K: Codec>(&self, key: &K, max_parallelism: u16, suffix: &[u8]) -> Bytes {
        state_key_of(self.table, key, max_parallelism, suffix)
    }

    pub fn put(&mut self, key: Bytes, value: V) {
        self.modify(&key, |v| *v = Some(value));
    }

    pub fn delete(&mut self, key: Bytes) {
        self.modify(&key, |v| *v = None);
    }

    /// Ships every dirty entry to the store in one batch.
    pub async fn flush(&mut self, epoch: Epoch) -> Result<()> {
        // Key order: the store keeps a sorted batch as one run instead of
        // sorting it. Sorted on the first 16 bytes held inline, then on the
        // whole key, so that most comparisons do not chase key pointers.
        let mut dirty: Vec<(u128, &mut Cached<V>)> = self
            .entries
            .iter_mut()
            .filter(|c| c.dirty)
            .map(|c| (prefix(&c.key), c))
            .collect();
        if dirty.is_empty() {
            return Ok(());
        }
        dirty.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.key.cmp(&b.1.key)));
        // A key deleted before it was ever written is absent from the store
        // already: its delete would only add a tombstone for reads and
        // compaction to step over. Windows that open and fire within one
        // checkpoint interval are such keys, and they are most of a window
        // aggregate's writes. (The filter answers "never written" only when
        // true, so a key it is unsure of gets its delete.)
        let mut batch = WriteBatch::with_capacity(dirty.len());
        for (_, c) in dirty {
            c.dirty = false;
            if let Some(w) = &mut self.written {
                // A delete of a key the filter may hold needs no insert:
                // the filter answers "maybe" for it already.
                match c.value {
                    None if !w.may_hold(c.hash) => continue,
                    None => {}
                    Some(_) => w.insert(c.hash),
                }
            }
            match &c.value {
                Some(v) => batch.put_with(&c.key, |buf| v.encode(buf)),
                None => batch.delete(&c.key),
            };
        }
        if batch.is_empty() {
            return Ok(());
        }
        OperatorCounters::add(&self.counters.state_writes, batch.len());
        self.backend.write(epoch, &batch).await
    }

    /// Keeps the cache within its capacity: writes back, then forgets all
    /// but the half used most recently (hot keys stay, however long ago
    /// they were first cached).
    pub async fn shrink(&mut self, epoch: Epoch) -> Result<()> {
        if self.entries.len() <= self.capacity {
            return Ok(());
        }
        self.flush(epoch).await?;
        let keep = self.capacity / 2;
        let forget = self.entries.len() - keep;
        if forget < self.entries.len() {
            // (`clock` wraps after 2^32 loads: one shrink then keeps the
            // wrong half, which costs reads, never correctness.)
            self.entries
                .select_nth_unstable_by_key(forget, |c| c.last_use);
        }
        self.entries.drain(..forget);
        self.index.clear();
        let entries = &self.entries;
        for (i, c) in entries.iter().enumerate() {
            self.index
                .insert_unique(c.hash, i as u32, |&j| entries[j as usize].hash);
        }
        Ok(())
    }
}

/// The first 16 bytes of `key`, zero-padded, as a big-endian number: it
/// orders keys as their bytes do, up to ties that the whole key breaks.
#[inline]
fn prefix(key: &[u8]) -> u128 {
    let mut w = [0u8; 16];
    let n = key.len().min(16);
    w[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(w)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use riverbed_state_store::{Options, Store};

    use super::*;
    use crate::state::EmbeddedBackend;

    #[test]
    fn key_of_is_the_full_key_of_the_encoded_key_in_its_key_group() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let store = rt
            .block_on(Store::open(Options::with_url(dir.path().to_str().unwrap())))
            .unwrap();
        let backend = Arc::new(EmbeddedBackend::new(Arc::new(store)));
        let st: KeyedState<i64> = KeyedState::new(TableId(9), "t", backend, Arc::default(), 10);
        for key in [0u64, 7, 1 << 40, u64::MAX] {
            for suffix in [&b""[..], b"window-end"] {
                let kb = key.to_bytes();
                let kg = crate::runtime::exchange::key_group_of(&kb, 128);
                let mut user = kb.clone();
                user.extend_from_slice(suffix);
                assert_eq!(
                    st.key_of(&key, 128, suffix),
                    full_key(TableId(9), KeyGroup(kg), &user)
                );
            }
        }
    }

    /// A hot key stays cached through every shrink while cold keys come
    /// and go, and every value survives write-back, eviction and reload.
    #[test]
    fn hot_keys_stay_cached_and_evicted_values_come_back() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_dir, backend) = EmbeddedBackend::in_temp_dir().await;
            let counters = Arc::new(OperatorCounters::default());
            let mut st: KeyedState<i64> =
                KeyedState::new(TableId(1), "sum", backend, counters.clone(), 100);
            let epoch = Epoch(1);
            let hot = st.state_key(0, b"hot");
            let mut model: HashMap<Bytes, i64> = HashMap::new();
            for round in 0..60u64 {
                let mut keys = vec![hot.clone()];
                keys.extend(
                    (0..40).map(|j| st.state_key(1, &((round * 40 + j) % 700).to_be_bytes())),
                );
                st.load(&keys, epoch).await.unwrap();
                for k in &keys {
                    st.update(k, || 0, |v| *v += 1);
                    *model.entry(k.clone()).or_default() += 1;
                }
                st.shrink(epoch).await.unwrap();
                assert!(st.entries.len() <= 100);
                assert!(
                    st.find(st.hash(&hot), &hot).is_some(),
                    "round {round}: hot key evicted"
                );
            }
            let keys: Vec<Bytes> = model.keys().cloned().collect();
            st.load(&keys, epoch).await.unwrap();
            for (k, v) in &model {
                assert_eq!(st.get(k), Some(v), "key {k:?}");
            }
            let reads = counters
                .state_reads
                .load(std::sync::atomic::Ordering::Relaxed);
            assert!(
                reads > 700,
                "cold keys were evicted and read back ({reads} reads)"
            );
        });
    }

    /// On a store that started empty, a key deleted before it was ever
    /// written sends nothing; a key that was written gets its delete; and
    /// reads agree with a map of what was put and deleted, before and after
    /// the cache forgets the keys.
    #[test]
    fn deletes_of_keys_never_written_stay_local() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_dir, backend) = EmbeddedBackend::in_temp_dir().await;
            let counters = Arc::new(OperatorCounters::default());
            let mut st: KeyedState<i64> =
                KeyedState::new(TableId(1), "w", backend.clone(), counters.clone(), 1_000)
                    .started_empty();
            let writes = || {
                counters
                    .state_writes
                    .load(std::sync::atomic::Ordering::Relaxed)
            };
            let epoch = Epoch(1);
            let key = |i: u64| st.state_key(0, &i.to_be_bytes());
            let (kept, written_then_deleted, never_written) = (key(1), key(2), key(3));
            let all = vec![
                kept.clone(),
                written_then_deleted.clone(),
                never_written.clone(),
            ];
            st.load(&all, epoch).await.unwrap();
            st.put(kept.clone(), 10);
            st.put(written_then_deleted.clone(), 20);
            st.flush(epoch).await.unwrap();
            assert_eq!(writes(), 2);
            st.put(never_written.clone(), 30);
            st.delete(never_written.clone());
            st.delete(written_then_deleted.clone());
            st.flush(epoch).await.unwrap();
            assert_eq!(writes(), 3, "one delete: the key the store holds");
            let stored = backend.multi_get(&all, epoch).await.unwrap();
            assert_eq!(
                stored,
                vec![Some(Bytes::from(10i64.to_bytes())), None, None]
            );
            // Forget the cache: reads come from the filter and the store.
            st.entries.clear();
            st.index.clear();
            st.load(&all, epoch).await.unwrap();
            assert_eq!(
                all.iter().map(|k| st.get(k).copied()).collect::<Vec<_>>(),
                vec![Some(10), None, None]
            );
        });
    }
}
