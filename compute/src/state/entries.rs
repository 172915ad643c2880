//! List and map state with one store key per entry, read by prefix scans.
//!
//! [`KeyedState`](super::KeyedState) keeps a key's state as one value, so
//! every change rewrites all of it and all of it must fit in memory. Here a
//! key's state is many entries (a list's elements, a map's pairs, a join's
//! rows), each its own store key under the key's prefix: adding one writes
//! one entry, and reading a key's entries pages through them, so one key's
//! state may be larger than memory (a hot auction's bids in a join).
//!
//! # Key and value
//!
//! ```text
//! key   := prefix | entry key
//! prefix := table u32 BE | key group u16 BE | the key (its Codec encoding)
//!           [| a suffix of the operator's, e.g. a window end]
//! value := the entry (its Codec encoding)
//! ```
//!
//! The entry key orders a key's entries (a list appends with increasing
//! entry keys; a map uses its map keys).
//!
//! # Writes and reads
//!
//! Writes wait in a write-back buffer (`pending`) until the barrier or until
//! the buffer is full, then go to the store in one batch. Reads merge the
//! store's entries with the buffer, page by page, so a subtask always reads
//! its own writes. The entries of a key that has few of them are cached
//! whole (a join's lookup of the other side is then a memory read); a key
//! with more than `max_cached_per_key` entries is never cached and is paged
//! from the store on every read.
//!
//! On a store that held none of the job's state at the start, a filter of
//! the prefixes this subtask has written (see `written.rs`) answers the
//! first read of a new key without a store request: a join's first row of
//! an auction, a session's first event. It knows prefixes as `put` and
//! `delete` were given them, so a read of a shorter prefix, spanning
//! several, goes through [`EntryState::for_each_under`].

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::Bytes;
use riverbed_state_store::{Epoch, TableId, WriteBatch};

use super::backend::StateBackend;
use super::keyed::{owned_range, scan_decoded, state_key_of, FastHash};
use super::written::WrittenKeys;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::runtime::metrics::OperatorCounters;

/// Entries read from the store per request.
const PAGE: usize = 1024;

pub struct EntryState<E> {
    table: TableId,
    operator: String,
    backend: Arc<dyn StateBackend>,
    counters: Arc<OperatorCounters>,
    /// Writes not yet in the store, by full key (`None`: deleted).
    pending: BTreeMap<Bytes, Option<E>>,
    /// Flush the buffer once it holds this many writes.
    pending_limit: usize,
    /// Every entry of a prefix, for prefixes with few: `prefix -> full key -> entry`.
    cache: HashMap<Bytes, BTreeMap<Bytes, E>, FastHash>,
    /// Entries held by `cache` (an empty prefix counts one).
    cached: usize,
    capacity: usize,
    max_cached_per_key: usize,
    /// Entries read from the store per request.
    page: usize,
    key_groups: (u16, u16),
    restored: bool,
    /// Prefixes given to `put` since the start, when the store held no
    /// state then: a prefix it has never seen has no entries.
    written: Option<WrittenKeys>,
    hasher: FastHash,
}

impl<E: Codec + Clone + Send + 'static> EntryState<E> {
    /// Entry state of `table`; `capacity` bounds the cached entries and the
    /// write buffer alike.
    pub fn new(
        table: TableId,
        operator: &str,
        backend: Arc<dyn StateBackend>,
        counters: Arc<OperatorCounters>,
        capacity: usize,
    ) -> Self {
        let capacity = capacity.max(16);
        EntryState {
            table,
            operator: operator.to_string(),
            backend,
            counters,
            pending: BTreeMap::new(),
            pending_limit: capacity,
            cache: HashMap::default(),
            cached: 0,
            capacity,
            max_cached_per_key: (capacity / 8).max(8),
            page: PAGE,
            key_groups: (0, u16::MAX),
            restored: false,
            written: None,
            hasher: FastHash::default(),
        }
    }

    /// Declares the key groups the subtask owns and whether it restores a
    /// checkpoint. A subtask that does not restore starts on a store without
    /// its state, and so keeps the filter of the prefixes it writes.
    pub fn owning(mut self, key_groups: (u16, u16), restored: bool) -> Self {
        self.key_groups = key_groups;
        self.restored = restored;
        self.written = (!restored).then(WrittenKeys::default);
        self
    }

    /// Caps how many entries of one key are cached whole, and how many a
    /// store read returns (tests use small ones to force the paged path).
    pub fn limits(mut self, max_cached_per_key: usize, page: usize) -> Self {
        self.max_cached_per_key = max_cached_per_key;
        self.page = page.max(1);
        self
    }

    pub fn restored(&self) -> bool {
        self.restored
    }

    /// The prefix of `key`'s entries, with the operator's `suffix` after it.
    pub fn prefix_of<K: Codec>(&self, key: &K, max_parallelism: u16, suffix: &[u8]) -> Bytes {
        state_key_of(self.table, key, max_parallelism, suffix)
    }

    fn full(prefix: &[u8], entry: &[u8]) -> Bytes {
        let mut k = Vec::with_capacity(prefix.len() + entry.len());
        k.extend_from_slice(prefix);
        k.extend_from_slice(entry);
        Bytes::from(k)
    }

    /// Sets entry `entry` of `prefix` to `value`.
    pub fn put(&mut self, prefix: &Bytes, entry: &[u8], value: E) {
        if let Some(w) = &mut self.written {
            w.insert(self.hasher.hash_one(prefix));
        }
        let k = Self::full(prefix, entry);
        if let Some(c) = self.cache.get_mut(prefix) {
            if c.insert(k.clone(), value.clone()).is_none() {
                self.cached += 1;
            }
        }
        self.pending.insert(k, Some(value));
    }

    /// Removes entry `entry` of `prefix`.
    pub fn delete(&mut self, prefix: &Bytes, entry: &[u8]) {
        let k = Self::full(prefix, entry);
        if let Some(c) = self.cache.get_mut(prefix) {
            c.remove(&k);
        }
        self.pending.insert(k, None);
    }

    /// Calls `f(entry key, entry)` for the entries of `prefix` in entry key
    /// order, as of `epoch` with this subtask's own writes, until `f`
    /// returns `false`. `prefix` is one that `put` and `delete` are given.
    pub async fn for_each(
        &mut self,
        prefix: &Bytes,
        epoch: Epoch,
        mut f: impl FnMut(&[u8], &E) -> bool,
    ) -> Result<()> {
        if let Some(c) = self.cache.get(prefix) {
            OperatorCounters::add(&self.counters.cache_hits, 1);
            for (k, v) in c {
                if !f(&k[prefix.len()..], v) {
                    break;
                }
            }
            return Ok(());
        }
        if let Some(w) = &self.written {
            if !w.may_hold(self.hasher.hash_one(prefix)) {
                // Never written, so in neither the store nor the buffer.
                // Not a cache hit (keyed state counts these reads the same
                // way): the hit rate says how well the cache serves keys.
                self.cached += 1;
                self.cache.insert(prefix.clone(), BTreeMap::new());
                return Ok(());
            }
        }
        self.read(prefix, epoch, true, f).await
    }

    /// [`for_each`](Self::for_each) for a prefix of the prefixes entries
    /// were written under (all the maps of a key): it always reads the store,
    /// and caches nothing, as the cache keeps the written prefixes one by one.
    pub async fn for_each_under(
        &mut self,
        prefix: &Bytes,
        epoch: Epoch,
        f: impl FnMut(&[u8], &E) -> bool,
    ) -> Result<()> {
        self.read(prefix, epoch, false, f).await
    }

    /// The store's entries under `prefix` merged with the buffer's, page by
    /// page; with `cache`, a prefix read to its end is cached.
    async fn read(
        &mut self,
        prefix: &Bytes,
        epoch: Epoch,
        cache: bool,
        mut f: impl FnMut(&[u8], &E) -> bool,
    ) -> Result<()> {
        let end = prefix_end(prefix);
        // Only a prefix read to its end becomes a cache entry.
        let mut whole: Option<BTreeMap<Bytes, E>> = cache.then(BTreeMap::new);
        let mut cursor: Vec<u8> = prefix.to_vec();
        'pages: loop {
            let page = self
                .backend
                .scan_page(&cursor, &end, epoch, self.page)
                .await?;
            OperatorCounters::add(&self.counters.state_reads, 1);
            let full_page = page.len() == self.page;
            // What this page covers: up to its last key, or to the end.
            let upto: Vec<u8> = match page.last() {
                Some((k, _)) if full_page => successor(k),
                _ => end.clone(),
            };
            let mut pend = self
                .pending
                .range::<[u8], _>((
                    std::ops::Bound::Included(&cursor[..]),
                    std::ops::Bound::Excluded(&upto[..]),
                ))
                .peekable();
            let mut stored = page.into_iter().peekable();
            loop {
                let take_pending = match (stored.peek(), pend.peek()) {
                    (None, None) => break,
                    (Some(_), None) => false,
                    (None, Some(_)) => true,
                    (Some((sk, _)), Some((pk, _))) => pk.as_ref() <= sk.as_ref(),
                };
                let (key, value) = if take_pending {
                    let (pk, pv) = pend.next().expect("peeked");
                    if stored.peek().is_some_and(|(sk, _)| sk == pk) {
                        stored.next();
                    }
                    match pv {
                        Some(v) => (pk.clone(), v.clone()),
                        None => continue,
                    }
                } else {
                    let (sk, sv) = stored.next().expect("peeked");
                    let v = E::from_bytes(&sv).ok_or_else(|| Error::StateDecode {
                        operator: self.operator.clone(),
                        reason: "a stored entry that does not decode".into(),
                    })?;
                    (sk, v)
                };
                if !f(&key[prefix.len()..], &value) {
                    whole = None;
                    break 'pages;
                }
                if let Some(w) = whole.as_mut() {
                    if w.len() < self.max_cached_per_key {
                        w.insert(key, value);
                    } else {
                        whole = None;
                    }
                }
            }
            if !full_page {
                break;
            }
            cursor = upto;
        }
        if let Some(w) = whole {
            self.cached += w.len().max(1);
            self.cache.insert(prefix.clone(), w);
        }
        Ok(())
    }

    /// Ships the buffered writes into `epoch`.
    pub async fn flush(&mut self, epoch: Epoch) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let mut batch = WriteBatch::new();
        for (k, v) in &pending {
            match v {
                Some(v) => {
                    batch.put_with(k, |out| v.encode(out));
                }
                None => {
                    batch.delete(k);
                }
            }
        }
        OperatorCounters::add(&self.counters.state_writes, pending.len());
        self.backend.write(epoch, &batch).await
    }

    /// Between batches: ships the buffer when full and drops cached
    /// prefixes beyond the capacity.
    pub async fn shrink(&mut self, epoch: Epoch) -> Result<()> {
        if self.pending.len() >= self.pending_limit {
            self.flush(epoch).await?;
        }
        if self.cached > self.capacity {
            // Keep about half; which half does not matter for correctness
            // (the store and the buffer hold everything).
            let keep = self.capacity / 2;
            let mut cached = 0;
            self.cache.retain(|_, entries| {
                let n = entries.len().max(1);
                if cached + n <= keep {
                    cached += n;
                    true
                } else {
                    false
                }
            });
            self.cached = cached;
        }
        Ok(())
    }

    /// Every entry in the owned key groups as of `epoch` (a restored
    /// subtask rebuilds its timers from them). Borrows nothing of `self`.
    pub fn scan_owned(
        &self,
        epoch: Epoch,
    ) -> impl std::future::Future<Output = Result<Vec<(Bytes, E)>>> + Send + 'static {
        scan_decoded(
            self.backend.clone(),
            owned_range(self.table, self.key_groups),
            epoch,
            self.operator.clone(),
        )
    }
}

/// Entry keys in the order they are made: the epoch and a counter within
/// it, both big-endian. Unique per subtask across restores, because a
/// restored run writes only in epochs after its checkpoint's.
#[derive(Default)]
pub struct EntrySeq {
    epoch: Epoch,
    seq: u32,
}

/// The length of an [`EntrySeq`] key.
pub const SEQ_LEN: usize = 8 + 4;

impl EntrySeq {
    /// The next entry key for a write in `epoch`.
    pub fn next(&mut self, epoch: Epoch) -> [u8; SEQ_LEN] {
        if epoch != self.epoch {
            self.epoch = epoch;
            self.seq = 0;
        }
        let mut k = [0u8; SEQ_LEN];
        k[..8].copy_from_slice(&epoch.0.to_be_bytes());
        k[8..].copy_from_slice(&self.seq.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        k
    }
}

/// The first key after every key that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    // All 0xFF: nothing sorts after it but longer keys; the table's prefix
    // always has a non-0xFF byte, so this is not reached for state keys.
    vec![u8::MAX; prefix.len() + 1]
}

/// The smallest key above `k`.
fn successor(k: &[u8]) -> Vec<u8> {
    let mut s = k.to_vec();
    s.push(0);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::EmbeddedBackend;
    use proptest::prelude::*;
    use riverbed_state_store::{Options, Store};

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8, u32),
        Delete(u8, u8),
        /// Read a prefix, stopping after this many entries (`None`: all).
        Read(u8, Option<u8>),
        /// Read every prefix at once (`for_each_under`).
        ReadAll,
        Shrink,
        /// The barrier: flush, then write into the next epoch.
        Barrier,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..4, 0u8..40, any::<u32>()).prop_map(|(p, e, v)| Op::Put(p, e, v)),
            2 => (0u8..4, 0u8..40).prop_map(|(p, e)| Op::Delete(p, e)),
            4 => (0u8..4, prop::option::of(0u8..10)).prop_map(|(p, n)| Op::Read(p, n)),
            1 => Just(Op::ReadAll),
            1 => Just(Op::Shrink),
            1 => Just(Op::Barrier),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        /// Reads equal a `BTreeMap` of the same writes, through the buffer,
        /// the cache, flushes and pages of three entries, with the filter of
        /// written prefixes (a fresh store) and without (a restored one).
        #[test]
        fn reads_match_a_map_of_the_writes(ops in prop::collection::vec(op(), 1..200), fresh in any::<bool>()) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let store = Arc::new(Store::open(Options::with_url(dir.path().to_str().unwrap())).await.unwrap());
                let backend: Arc<dyn StateBackend> = Arc::new(EmbeddedBackend::new(store.clone()));
                let mut st: EntryState<u32> = EntryState::new(TableId(7), "t", backend, Default::default(), 32)
                    .limits(5, 3)
                    .owning((0, u16::MAX), !fresh);
                let mut model: BTreeMap<(u8, u8), u32> = BTreeMap::new();
                let prefix = |p: u8| st_prefix(p);
                let mut epoch = Epoch(1);
                for op in ops {
                    match op {
                        Op::Put(p, e, v) => { st.put(&prefix(p), &[e], v); model.insert((p, e), v); }
                        Op::Delete(p, e) => { st.delete(&prefix(p), &[e]); model.remove(&(p, e)); }
                        Op::Read(p, stop) => {
                            let mut got = Vec::new();
                            let n = stop.map_or(usize::MAX, usize::from);
                            st.for_each(&prefix(p), epoch, |k, v| { got.push((k.to_vec(), *v)); got.len() < n }).await.unwrap();
                            let want: Vec<(Vec<u8>, u32)> = model.range((p, 0)..=(p, u8::MAX)).map(|((_, e), v)| (vec![*e], *v)).take(n.max(1)).collect();
                            assert_eq!(got, want);
                        }
                        Op::ReadAll => {
                            let mut got = Vec::new();
                            st.for_each_under(&st_prefix_all(), epoch, |k, v| { got.push((k.to_vec(), *v)); true }).await.unwrap();
                            let want: Vec<(Vec<u8>, u32)> = model.iter().map(|((p, e), v)| (vec![*p, *e], *v)).collect();
                            assert_eq!(got, want);
                        }
                        Op::Shrink => st.shrink(epoch).await.unwrap(),
                        Op::Barrier => { st.flush(epoch).await.unwrap(); epoch = epoch.next(); }
                    }
                }
                store.close().await.unwrap();
            });
        }
    }

    /// A read that the written filter answers is neither a cache hit nor a
    /// store read, as in keyed state; a read served by the cache is a hit,
    /// and one the store serves is a store read.
    #[test]
    fn only_reads_the_cache_serves_count_as_hits() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let url = dir.path().to_str().unwrap();
            let store = Arc::new(Store::open(Options::with_url(url)).await.unwrap());
            let backend: Arc<dyn StateBackend> = Arc::new(EmbeddedBackend::new(store.clone()));
            let counters: Arc<OperatorCounters> = Default::default();
            let seen = |c: &OperatorCounters| {
                use std::sync::atomic::Ordering::Relaxed;
                (c.cache_hits.load(Relaxed), c.state_reads.load(Relaxed))
            };
            async fn read(st: &mut EntryState<u32>, p: u8) -> usize {
                let mut n = 0;
                st.for_each(&st_prefix(p), Epoch(1), |_, _| {
                    n += 1;
                    true
                })
                .await
                .unwrap();
                n
            }
            let mut fresh: EntryState<u32> =
                EntryState::new(TableId(7), "t", backend.clone(), counters.clone(), 32)
                    .owning((0, u16::MAX), false);
            assert_eq!(read(&mut fresh, 1).await, 0);
            assert_eq!(seen(&counters), (0, 0), "answered by the filter");
            assert_eq!(read(&mut fresh, 1).await, 0);
            assert_eq!(seen(&counters), (1, 0), "answered by the cache");
            let counters: Arc<OperatorCounters> = Default::default();
            let mut restored: EntryState<u32> =
                EntryState::new(TableId(7), "t", backend, counters.clone(), 32)
                    .owning((0, u16::MAX), true);
            assert_eq!(read(&mut restored, 2).await, 0);
            assert_eq!(seen(&counters), (0, 1), "answered by the store");
            store.close().await.unwrap();
        });
    }

    /// Prefixes of the model test: table 7, key group 0, key `p`.
    fn st_prefix(p: u8) -> Bytes {
        riverbed_state_store::full_key(TableId(7), riverbed_state_store::KeyGroup(0), &[p])
    }

    /// The prefix of every prefix of the model test.
    fn st_prefix_all() -> Bytes {
        riverbed_state_store::full_key(TableId(7), riverbed_state_store::KeyGroup(0), &[])
    }

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(prefix_end(b"ab"), b"ac".to_vec());
        assert_eq!(prefix_end(&[1, 0xFF]), vec![2]);
        assert!(prefix_end(b"ab").as_slice() > b"ab\xFF\xFF".as_slice());
    }
}
