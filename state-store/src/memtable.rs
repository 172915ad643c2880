//! A memtable: the writes of one epoch not yet in an SST.
//!
//! Every memtable belongs to one epoch and has its own sequence number; its
//! versions are stamped `(epoch, seq)`. A key has one version per memtable
//! (a later write in the same memtable replaces it). Once frozen, a memtable
//! takes no more writes and waits to be flushed; writers that lose a race
//! with freezing see `Frozen` and retry on the epoch's new memtable.
//!
//! Layout: sorted runs, not a search tree. Writers of large state ship
//! batches already in key order (a worker writes its cache back sorted), so
//! a batch becomes one run; inserting the same keys one by one into a tree
//! cost a random path of out-of-line key comparisons per key and dominated
//! large-state profiles. A batch out of order has its slots sorted (stable,
//! the last write of a key wins).
//!
//! ```text
//! arenas: one per batch: the batch's bytes, copied once   key₀ value₀ key₁ value₁ …
//! slot:   [arena, key offset, key length, value length | TOMBSTONE]   (value follows its key)
//! run:    slots sorted by key, one per key
//! runs:   oldest … newest; a newer run's slot hides an older run's
//! ```
//!
//! A pushed run merges with the run before it while that one is no larger,
//! as a binary counter does, so a memtable holds O(log n) runs. Merges move
//! only the 16-byte slots; keys and values stay in their batch's arena,
//! so a large value is copied once however often its run merges. A point
//! read probes the memtable's bloom filter and then binary-searches the
//! runs newest first. A range delete cuts the covered slots out of every
//! run (writes after it in the same batch start a new run).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::RwLock;

use crate::entry::{Entry, Value};
use crate::keys::{Epoch, Stamp};
use crate::range_tombstone::RangeTombstone;
use crate::write_batch::{Op, WriteBatch};

/// Bookkeeping bytes charged per entry on top of key and value: a slot, and
/// slack for the copy a merge of runs makes while both exist.
const ENTRY_OVERHEAD: usize = 24;
/// Bookkeeping bytes charged per batch: its arena's handle and allocation,
/// which many one-op batches would otherwise leave uncounted.
const BATCH_OVERHEAD: usize = 64;

pub struct Memtable {
    stamp: Stamp,
    inner: RwLock<Inner>,
    size: AtomicUsize,
    /// Set when the epoch is discarded while a flush of this memtable runs:
    /// the flush must then throw its file away.
    discarded: AtomicBool,
}

/// Byte-order comparison, a word at a time while both keys have one: full
/// keys share a 6-byte table|key-group prefix and are short, so most
/// comparisons finish without a call to memcmp.
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

/// `value_len` of a point tombstone.
const TOMBSTONE: u32 = u32::MAX;

/// Where one version sits: in which arena, and where in it.
#[derive(Clone, Copy)]
struct Slot {
    arena: u32,
    key: u32,
    key_len: u32,
    value_len: u32,
}

/// The batches' bytes, indexed by `Slot::arena`.
struct Arenas(Vec<Bytes>);

impl Arenas {
    #[inline]
    fn key(&self, s: Slot) -> &[u8] {
        &self.0[s.arena as usize][s.key as usize..(s.key + s.key_len) as usize]
    }

    #[inline]
    fn value(&self, s: Slot) -> Option<&[u8]> {
        let at = (s.key + s.key_len) as usize;
        (s.value_len != TOMBSTONE).then(|| &self.0[s.arena as usize][at..at + s.value_len as usize])
    }

    /// The key as an owned `Bytes`: a slice of the arena, no copy.
    fn key_bytes(&self, s: Slot) -> Bytes {
        self.0[s.arena as usize].slice(s.key as usize..(s.key + s.key_len) as usize)
    }

    /// The value as an owned version: a slice of the arena, no copy.
    fn version(&self, s: Slot) -> Value {
        let at = (s.key + s.key_len) as usize;
        match s.value_len {
            TOMBSTONE => Value::Delete,
            n => Value::Put(self.0[s.arena as usize].slice(at..at + n as usize)),
        }
    }

    /// Index of the first slot of `run` whose key is `>= key`.
    fn lower_bound(&self, run: &[Slot], key: &[u8]) -> usize {
        run.partition_point(|&s| key_cmp(self.key(s), key).is_lt())
    }

    fn find(&self, run: &[Slot], key: &[u8]) -> Option<Slot> {
        let i = self.lower_bound(run, key);
        run.get(i).copied().filter(|&s| self.key(s) == key)
    }
}

/// Every version of `runs` at or after `start` (and before `end`), in key
/// order, the newest run's version of each key only.
struct Merged<'a> {
    arenas: &'a Arenas,
    runs: &'a [Vec<Slot>],
    pos: Vec<usize>,
    end: Option<&'a [u8]>,
}

impl<'a> Merged<'a> {
    fn new(
        arenas: &'a Arenas,
        runs: &'a [Vec<Slot>],
        start: Option<&[u8]>,
        end: Option<&'a [u8]>,
    ) -> Self {
        let pos = runs
            .iter()
            .map(|r| start.map_or(0, |s| arenas.lower_bound(r, s)))
            .collect();
        Merged {
            arenas,
            runs,
            pos,
            end,
        }
    }
}

impl Iterator for Merged<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        let (runs, arenas) = (self.runs, self.arenas);
        let mut best: Option<(usize, &[u8])> = None;
        // Newest first: an older run's head equal to the best so far is
        // hidden by it and skipped for good (the newer one stays at its head).
        for r in (0..runs.len()).rev() {
            let Some(&s) = runs[r].get(self.pos[r]) else {
                continue;
            };
            let k = arenas.key(s);
            match best {
                None => best = Some((r, k)),
                Some((_, b)) => match key_cmp(k, b) {
                    std::cmp::Ordering::Less => best = Some((r, k)),
                    std::cmp::Ordering::Equal => self.pos[r] += 1,
                    std::cmp::Ordering::Greater => {}
                },
            }
        }
        let (r, k) = best?;
        if self.end.is_some_and(|e| key_cmp(k, e).is_ge()) {
            return None;
        }
        let s = runs[r][self.pos[r]];
        self.pos[r] += 1;
        Some(s)
    }
}

struct Inner {
    arenas: Arenas,
    /// Sorted runs of slots, oldest first.
    runs: Vec<Vec<Slot>>,
    /// A bloom filter over the keys in `runs`: a read of a key the memtable
    /// lacks (most reads, once state spreads over files) skips the runs'
    /// searches and their key comparisons.
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
    fn may_hold(&self, key: &[u8]) -> bool {
        let (i, m, j, n) = bloom_bits(key);
        self.bloom[i] & m != 0 && self.bloom[j] & n != 0
    }

    /// Adds the puts and deletes among `batch`'s ops `ops` (no range
    /// deletes), whose bytes are in arena `arena`, as one run.
    fn add_run(&mut self, batch: &WriteBatch, arena: u32, ops: Range<usize>) {
        if ops.is_empty() {
            return;
        }
        let mut run: Vec<Slot> = ops
            .map(|i| {
                let (op, at) = batch.op_at(i);
                let (key, value_len) = match op {
                    Op::Put(k, v) => (k, v.len() as u32),
                    Op::Delete(k) => (k, TOMBSTONE),
                    Op::DeleteRange(..) => unreachable!("segments hold no range deletes"),
                };
                Slot {
                    arena,
                    key: at as u32,
                    key_len: key.len() as u32,
                    value_len,
                }
            })
            .collect();
        let arenas = &self.arenas;
        let ascending = run
            .windows(2)
            .all(|w| key_cmp(arenas.key(w[0]), arenas.key(w[1])).is_lt());
        if !ascending {
            // Stable, so equal keys keep batch order; the last one wins.
            run.sort_by(|&x, &y| key_cmp(arenas.key(x), arenas.key(y)));
            let mut keep: Vec<Slot> = Vec::with_capacity(run.len());
            for s in run {
                match keep.last_mut() {
                    Some(last) if arenas.key(*last) == arenas.key(s) => *last = s,
                    _ => keep.push(s),
                }
            }
            run = keep;
        }
        for &s in &run {
            let (i, m, j, n) = bloom_bits(self.arenas.key(s));
            self.bloom[i] |= m;
            self.bloom[j] |= n;
        }
        self.push_run(run);
    }

    /// Appends `run` as the newest, merging while the run before is no larger.
    fn push_run(&mut self, run: Vec<Slot>) {
        self.runs.push(run);
        while let [.., older, newer] = &self.runs[..] {
            if older.len() > newer.len() {
                break;
            }
            let n = self.runs.len();
            let pair = &self.runs[n - 2..];
            let mut merged = Vec::with_capacity(pair[0].len() + pair[1].len());
            merged.extend(Merged::new(&self.arenas, pair, None, None));
            self.runs.truncate(n - 2);
            self.runs.push(merged);
        }
    }

    /// Drops every version with a key in `start..end`.
    fn remove_range(&mut self, start: &[u8], end: &[u8]) {
        let arenas = &self.arenas;
        for run in &mut self.runs {
            let (lo, hi) = (arenas.lower_bound(run, start), arenas.lower_bound(run, end));
            run.drain(lo..hi);
        }
        self.runs.retain(|r| !r.is_empty());
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
                arenas: Arenas(Vec::new()),
                runs: Vec::new(),
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
        self.inner.read().runs.iter().all(|r| r.is_empty())
    }

    /// Applies `batch` in order; returns the bytes added and the range
    /// tombstones the batch carried (stamped with this memtable's stamp).
    pub fn apply(&self, batch: &WriteBatch) -> Result<(usize, Vec<RangeTombstone>), Frozen> {
        let mut inner = self.inner.write();
        if inner.frozen {
            return Err(Frozen);
        }
        let mut added = BATCH_OVERHEAD;
        let mut tombstones = Vec::new();
        // The batch's bytes, copied once; its slots point into them.
        let arena = inner.arenas.0.len() as u32;
        inner.arenas.0.push(Bytes::copy_from_slice(batch.data()));
        let mut segment = 0;
        for (i, op) in batch.ops().enumerate() {
            match op {
                Op::Put(k, v) => added += k.len() + v.len() + ENTRY_OVERHEAD,
                Op::Delete(k) => added += k.len() + ENTRY_OVERHEAD,
                Op::DeleteRange(s, e) => {
                    inner.add_run(batch, arena, segment..i);
                    segment = i + 1;
                    inner.remove_range(s, e);
                    added += s.len() + e.len() + ENTRY_OVERHEAD;
                    tombstones.push(RangeTombstone {
                        start: Bytes::copy_from_slice(s),
                        end: Bytes::copy_from_slice(e),
                        stamp: self.stamp,
                    });
                }
            }
        }
        inner.add_run(batch, arena, segment..batch.len());
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
        let arenas = &inner.arenas;
        inner
            .runs
            .iter()
            .rev()
            .find_map(|r| arenas.find(r, key).map(|s| arenas.version(s)))
    }

    /// Versions with keys in `[start, end)` (`end = None`: unbounded), sorted.
    pub fn range(&self, start: &[u8], end: Option<&[u8]>) -> Vec<Entry> {
        let inner = self.inner.read();
        let arenas = &inner.arenas;
        Merged::new(arenas, &inner.runs, Some(start), end)
            .map(|s| Entry {
                key: arenas.key_bytes(s),
                stamp: self.stamp,
                value: arenas.version(s),
            })
            .collect()
    }

    /// Calls `f` on every version in key order (used by flush, on a frozen memtable).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], Option<&[u8]>)) {
        let inner = self.inner.read();
        let arenas = &inner.arenas;
        for s in Merged::new(arenas, &inner.runs, None, None) {
            f(arenas.key(s), arenas.value(s));
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
mod model_tests {
    //! The memtable against a `BTreeMap` on random batches: sorted and
    //! shuffled, with repeated keys, deletes and range deletes.
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;
    use crate::keys::{full_key, KeyGroup, TableId};

    #[derive(Debug, Clone)]
    enum ModelOp {
        Put(u16, u8),
        Delete(u16),
        DeleteRange(u16, u16),
    }

    fn key(i: u16) -> Bytes {
        full_key(TableId(7), KeyGroup(1), format!("k{i:04}").as_bytes())
    }

    fn op() -> impl Strategy<Value = ModelOp> {
        prop_oneof![
            8 => (0u16..300, any::<u8>()).prop_map(|(k, v)| ModelOp::Put(k, v)),
            2 => (0u16..300).prop_map(ModelOp::Delete),
            1 => (0u16..300, 1u16..40).prop_map(|(k, n)| ModelOp::DeleteRange(k, k + n)),
        ]
    }

    fn batch() -> impl Strategy<Value = (Vec<ModelOp>, bool)> {
        (prop::collection::vec(op(), 0..80), any::<bool>())
    }

    proptest! {
        #[test]
        fn runs_agree_with_a_sorted_map(batches in prop::collection::vec(batch(), 1..40)) {
            let m = Memtable::new(Epoch(1), 1);
            let mut model: BTreeMap<Bytes, Value> = BTreeMap::new();
            let mut batch_bytes = 0;
            for (ops, sort) in batches {
                let mut ops = ops;
                if sort {
                    // Writers of large state send sorted, distinct keys.
                    ops.retain(|o| !matches!(o, ModelOp::DeleteRange(..)));
                    ops.sort_by_key(|o| match o { ModelOp::Put(k, _) | ModelOp::Delete(k) => *k, _ => 0 });
                    ops.dedup_by_key(|o| match o { ModelOp::Put(k, _) | ModelOp::Delete(k) => *k, _ => 0 });
                }
                let mut b = WriteBatch::new();
                for o in &ops {
                    match *o {
                        ModelOp::Put(k, v) => {
                            b.put(key(k), Bytes::from(vec![v; (v % 5) as usize]));
                            model.insert(key(k), Value::Put(Bytes::from(vec![v; (v % 5) as usize])));
                        }
                        ModelOp::Delete(k) => {
                            b.delete(key(k));
                            model.insert(key(k), Value::Delete);
                        }
                        ModelOp::DeleteRange(s, e) => {
                            b.delete_range(key(s), key(e));
                            let gone: Vec<Bytes> = model.range(key(s)..key(e)).map(|(k, _)| k.clone()).collect();
                            for k in gone {
                                model.remove(&k);
                            }
                        }
                    }
                }
                m.apply(&b).unwrap();
                batch_bytes += b.data().len();
                let arena_bytes: usize = m.inner.read().arenas.0.iter().map(|a| a.len()).sum();
                prop_assert_eq!(arena_bytes, batch_bytes, "bytes are copied once, never by merges");
                for i in 0..345u16 {
                    prop_assert_eq!(m.get(&key(i)), model.get(&key(i)).cloned(), "key {}", i);
                }
                let mut all = Vec::new();
                m.for_each(|k, v| all.push((Bytes::copy_from_slice(k), v.map(Bytes::copy_from_slice))));
                let want: Vec<(Bytes, Option<Bytes>)> = model
                    .iter()
                    .map(|(k, v)| (k.clone(), match v { Value::Put(v) => Some(v.clone()), Value::Delete => None }))
                    .collect();
                prop_assert_eq!(&all, &want);
                let got: Vec<(Bytes, Value)> = m.range(&key(50), Some(&key(120))).into_iter().map(|e| (e.key, e.value)).collect();
                let want: Vec<(Bytes, Value)> = model.range(key(50)..key(120)).map(|(k, v)| (k.clone(), v.clone())).collect();
                prop_assert_eq!(got, want);
                prop_assert!(m.inner.read().runs.len() <= 12, "runs merge as a binary counter");
            }
        }
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
