//! The read path: point gets, multi-gets and forward scans at an epoch,
//! merged across memtables, L0 files and sorted levels (newest wins), with
//! point and range tombstones applied.

use std::sync::Arc;

use bytes::Bytes;

use crate::entry::Value;
use crate::error::{Error, Result};
use crate::keys::{prefix_end, Epoch, Stamp};
use crate::memtable::Memtable;
use crate::merge::{Merge, Source};
use crate::range_tombstone::{hidden, RangeTombstone};
use crate::sst::reader::probe_hash;
use crate::store::{Inner, Store};
use crate::version::{SstHandle, Version};

/// What one read sees: taken under the state lock in three `Arc` clones, then
/// read without locks. Files stay alive as long as the snapshot does.
struct Snapshot {
    memtables: Arc<Vec<Arc<Memtable>>>,
    pending: Arc<Vec<RangeTombstone>>,
    version: Arc<Version>,
    epoch: Epoch,
}

/// The newest version of a key found so far, with its stamp.
type Found = Option<(Stamp, Value)>;

/// Keeps the newer of what was found and `(stamp, value)`.
fn consider(best: &mut Found, stamp: Stamp, value: Value) {
    if best.as_ref().is_none_or(|(s, _)| stamp > *s) {
        *best = Some((stamp, value));
    }
}

impl Snapshot {
    fn hidden(&self, key: &[u8], stamp: Stamp) -> bool {
        hidden(&self.pending, key, stamp, self.epoch)
            || hidden(&self.version.tombstones, key, stamp, self.epoch)
    }

    /// The newest version of `key` in the memtables the epoch sees.
    fn in_memtables(&self, key: &[u8]) -> Found {
        let mut best = None;
        for m in self.memtables.iter() {
            if m.epoch() <= self.epoch {
                if let Some(v) = m.get(key) {
                    consider(&mut best, m.stamp(), v);
                }
            }
        }
        best
    }

    /// The value a read returns for the newest version found: none for a
    /// tombstone or a version a range tombstone hides.
    fn visible(&self, key: &[u8], found: Found) -> Option<Bytes> {
        match found {
            Some((stamp, Value::Put(v))) if !self.hidden(key, stamp) => Some(v),
            _ => None,
        }
    }
}

impl Inner {
    fn snapshot(&self, epoch: Epoch) -> Result<Snapshot> {
        self.check_open()?;
        let st = self.state.read();
        if epoch < st.version.committed && !self.is_retained(epoch) {
            return Err(Error::InvalidArgument(format!(
                "read epoch {} is below the committed epoch {} and no retained checkpoint's: \
                 its versions may be compacted away",
                epoch.0, st.version.committed.0
            )));
        }
        Ok(Snapshot {
            memtables: st.memtables.clone(),
            pending: st.pending.clone(),
            version: st.version.clone(),
            epoch,
        })
    }

    async fn get_in(&self, snap: &Snapshot, key: &[u8]) -> Result<Option<Bytes>> {
        let epoch = snap.epoch;
        let mut best = snap.in_memtables(key);
        let hash = probe_hash(key);
        for f in &snap.version.levels[0] {
            let p = f.props();
            if p.min_epoch > epoch || key < &p.smallest[..] || key > &p.largest[..] {
                continue;
            }
            let reader = f.reader(&self.storage.store, &self.storage.cache).await?;
            if let Some((s, val)) = reader.get(key, hash, epoch).await? {
                consider(&mut best, s, val);
            }
        }
        if best.is_none() {
            best = self.in_sorted_levels(snap, key, hash).await?;
        }
        Ok(snap.visible(key, best))
    }

    /// [`Self::get_in`] for many keys, file by file instead of key by key:
    /// the keys are sorted once, so a file's key range is one run of them
    /// (found by binary searches, not two comparisons per key and file),
    /// and its filter is probed for the whole run at once, with the misses
    /// overlapped. After a large epoch's commit a multi-get meets tens of L0
    /// files that each span the key space; on large state each sorted
    /// level's filters are megabytes.
    async fn multi_get_in(&self, snap: &Snapshot, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_unstable_by(|&a, &b| keys[a].cmp(&keys[b]));
        let sorted: Vec<&[u8]> = order.iter().map(|&i| &keys[i][..]).collect();
        let hashes: Vec<u64> = sorted.iter().map(|k| probe_hash(k)).collect();
        let mut best: Vec<Found> = sorted.iter().map(|k| snap.in_memtables(k)).collect();
        let mut maybe = Vec::new();
        for f in &snap.version.levels[0] {
            let p = f.props();
            if p.min_epoch > snap.epoch {
                continue;
            }
            let lo = sorted.partition_point(|k| *k < &p.smallest[..]);
            let hi = lo + sorted[lo..].partition_point(|k| *k <= &p.largest[..]);
            let found = &mut best[lo..hi];
            self.probe_run(snap, f, &sorted[lo..hi], &hashes[lo..hi], &mut maybe, found)
                .await?;
        }
        // Sorted levels hold only versions older than any in memtables or
        // L0, each level older than the one above: a key is looked for
        // level by level until one has it. A level's files are disjoint and
        // in order, so the keys still sought split into one run per file.
        let mut sought: Vec<usize> = (0..sorted.len()).filter(|&j| best[j].is_none()).collect();
        let mut still = Vec::new();
        let mut gathered: (Vec<&[u8]>, Vec<u64>, Vec<Found>) = Default::default();
        for level in 1..snap.version.levels.len() {
            if sought.is_empty() {
                break;
            }
            still.clear();
            let mut i = 0;
            while i < sought.len() {
                let key = sorted[sought[i]];
                let Some(f) = snap.version.file_for(level, key) else {
                    still.push(sought[i]);
                    i += 1;
                    continue;
                };
                let largest = &f.props().largest[..];
                let end = i + sought[i..].partition_point(|&j| sorted[j] <= largest);
                let run = &sought[i..end];
                // The run gathered, probed, and its finds put back.
                let (run_keys, run_hashes, run_found) = &mut gathered;
                run_keys.clear();
                run_keys.extend(run.iter().map(|&j| sorted[j]));
                run_hashes.clear();
                run_hashes.extend(run.iter().map(|&j| hashes[j]));
                run_found.clear();
                run_found.resize(run.len(), None);
                self.probe_run(snap, f, run_keys, run_hashes, &mut maybe, run_found)
                    .await?;
                for (&j, hit) in run.iter().zip(run_found.drain(..)) {
                    match hit {
                        Some(hit) => best[j] = Some(hit),
                        None => still.push(j),
                    }
                }
                i = end;
            }
            std::mem::swap(&mut sought, &mut still);
        }
        let mut out = vec![None; keys.len()];
        for (j, found) in best.into_iter().enumerate() {
            out[order[j]] = snap.visible(sorted[j], found);
        }
        Ok(out)
    }

    /// Looks up `keys` (ascending, all inside `f`'s key range, with their
    /// filter `hashes`) in file `f`: its filter for all of them at once,
    /// then the blocks of the keys it may hold, keeping in `found` what is
    /// newer than what it holds.
    async fn probe_run(
        &self,
        snap: &Snapshot,
        f: &SstHandle,
        keys: &[&[u8]],
        hashes: &[u64],
        maybe: &mut Vec<usize>,
        found: &mut [Found],
    ) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let reader = f.reader(&self.storage.store, &self.storage.cache).await?;
        maybe.clear();
        reader.may_contain_each(hashes, |r| maybe.push(r));
        for &r in maybe.iter() {
            if let Some((s, val)) = reader.get_checked(keys[r], snap.epoch).await? {
                consider(&mut found[r], s, val);
            }
        }
        Ok(())
    }

    /// The newest version of `key` in the sorted levels, which hold only
    /// versions older than any in memtables or L0, each level older than
    /// the one above: the first hit wins.
    async fn in_sorted_levels(&self, snap: &Snapshot, key: &[u8], hash: u64) -> Result<Found> {
        let v = &snap.version;
        for level in 1..v.levels.len() {
            if let Some(f) = v.file_for(level, key) {
                let reader = f.reader(&self.storage.store, &self.storage.cache).await?;
                if let Some(found) = reader.get(key, hash, snap.epoch).await? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    async fn scan_in(
        &self,
        snap: &Snapshot,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let epoch = snap.epoch;
        let mut sources = Vec::new();
        for m in snap.memtables.iter() {
            if m.epoch() <= epoch {
                let entries = m.range(start, end);
                if !entries.is_empty() {
                    sources.push(Source::mem(entries));
                }
            }
        }
        let in_range =
            |smallest: &[u8], largest: &[u8]| largest >= start && end.is_none_or(|e| smallest < e);
        let v = &snap.version;
        for f in &v.levels[0] {
            let p = f.props();
            if p.min_epoch <= epoch && in_range(&p.smallest, &p.largest) {
                sources.push(Source::sst(f, &self.storage, Some(start)).await?);
            }
        }
        for files in v.levels.iter().skip(1) {
            let files: Vec<_> = files
                .iter()
                .filter(|f| in_range(&f.props().smallest, &f.props().largest))
                .cloned()
                .collect();
            if !files.is_empty() {
                let end = end.map(Bytes::copy_from_slice);
                sources.push(Source::level(files, &self.storage, Some(start), end).await?);
            }
        }
        let mut out = Vec::new();
        let mut decided: Option<Bytes> = None;
        let mut merge = Merge::new(sources);
        while let Some(src) = merge.top() {
            if out.len() >= limit {
                break;
            }
            let key = src.key().unwrap_or_default();
            if end.is_some_and(|e| key >= e) {
                break;
            }
            let stamp = src.stamp();
            let seen = decided.as_ref().is_some_and(|d| &d[..] == key);
            if !seen && stamp.epoch <= epoch {
                if let Some((k, value)) = src.key_value() {
                    if let Value::Put(v) = value {
                        if !snap.hidden(&k, stamp) {
                            out.push((k.clone(), v));
                        }
                    }
                    decided = Some(k);
                }
            }
            merge.advance().await?;
        }
        Ok(out)
    }
}

impl Store {
    /// The value of `key` as of `epoch`: the newest version written at or
    /// below it. `epoch` may be above the committed epoch (a writer reading
    /// its own writes) but not below it.
    pub async fn get(&self, key: &[u8], epoch: Epoch) -> Result<Option<Bytes>> {
        let snap = self.inner.snapshot(epoch)?;
        self.inner
            .get_in(&snap, key)
            .await
            .map_err(|e| self.located(e))
    }

    /// Gets for many keys, all from one snapshot.
    pub async fn multi_get(&self, keys: &[Bytes], epoch: Epoch) -> Result<Vec<Option<Bytes>>> {
        let snap = self.inner.snapshot(epoch)?;
        self.inner
            .multi_get_in(&snap, keys)
            .await
            .map_err(|e| self.located(e))
    }

    /// Up to `limit` live entries with keys in `[start, end)` (`end = None`:
    /// to the end of the key space), in key order, as of `epoch`.
    pub async fn scan(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        epoch: Epoch,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let snap = self.inner.snapshot(epoch)?;
        if end.is_some_and(|e| e <= start) {
            return Ok(Vec::new());
        }
        self.inner
            .scan_in(&snap, start, end, limit)
            .await
            .map_err(|e| self.located(e))
    }

    fn located(&self, e: Error) -> Error {
        e.in_namespace(&self.inner.opts.namespace)
    }

    /// Up to `limit` live entries whose keys start with `prefix`.
    pub async fn scan_prefix(
        &self,
        prefix: &[u8],
        epoch: Epoch,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let end = prefix_end(prefix);
        self.scan(prefix, end.as_deref(), epoch, limit).await
    }
}
