//! The store: the write path, epochs (seal, commit, discard), opening and
//! closing, and the background tasks (flusher, compactor, file deleter).
//! Reads are in `read.rs`.
//!
//! Concurrency: `state` (a short-held lock) owns the memtables, the pending
//! range tombstones and the current version. The manifest lock serialises
//! everything that writes a manifest version (commit, compaction), so the
//! committed part of the version only changes under it; flushes and
//! discards touch only uncommitted files. Lock order: state, then a
//! memtable's own lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::cache::{BlockCache, CacheStats};
use crate::catalog::{Catalog, TableEntry, TableInfo};
use crate::checkpoint::CheckpointMeta;
use crate::compaction::{executor, picker, untouched, InFlight, Lane, PickerOptions, Plan};
use crate::error::{Error, Result};
use crate::keys::{Epoch, FileId, TableId};
use crate::manifest::{ManifestData, ManifestStore};
use crate::memtable::Memtable;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::namespace;
use crate::options::Options;
use crate::paths;
use crate::range_tombstone::RangeTombstone;
use crate::sst::{SstBuilder, SstShape};
use crate::storage::{open_object_store, Storage};
use crate::version::{GcQueue, SstHandle, SstMeta, Version};
use crate::write_batch::WriteBatch;
use crate::write_pace::WritePace;

/// A registered table and its estimated size (see [`Store::table_summaries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub name: String,
    pub entry: TableEntry,
    pub bytes: u64,
    /// Entries in its files, versions and deletions included.
    pub entries: u64,
}

/// A handle to an open store. Cheap to share behind an `Arc`.
pub struct Store {
    pub(crate) inner: Arc<Inner>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

pub(crate) struct Inner {
    pub(crate) opts: Options,
    /// The shape of a flush's file (level 0).
    flush_shape: SstShape,
    picker: PickerOptions,
    pub(crate) storage: Storage,
    pub(crate) state: RwLock<State>,
    manifest: tokio::sync::Mutex<ManifestStore>,
    flush_lock: tokio::sync::Mutex<()>,
    /// Held shared by each lane's compaction, exclusively by a full one.
    compaction_gate: tokio::sync::RwLock<()>,
    /// What the compactions in progress hold (see `picker::pick_in`).
    compacting: Mutex<InFlight>,
    next_seq: AtomicU64,
    /// Shared with compaction's parts, which name their outputs themselves.
    next_file_id: Arc<AtomicU64>,
    mem_bytes: AtomicUsize,
    flush_wanted: Notify,
    /// Woken after every flush and compaction: stalled writers re-check.
    flushed: Notify,
    /// One per compaction lane (`picker::Lane`), in `Lane::ALL`'s order.
    compact_wanted: [Notify; 2],
    gc: Arc<GcQueue>,
    /// Retained checkpoints, oldest first (changed under the manifest lock).
    checkpoints: Mutex<Vec<CheckpointMeta>>,
    /// Registered tables; durable with the next manifest version.
    catalog: Mutex<Catalog>,
    /// The namespace's writer generation (see `manifest.rs`), and the gate
    /// that keeps a fence from passing a fenced write halfway.
    generation: AtomicU64,
    fence_gate: tokio::sync::RwLock<()>,
    /// The write slowdown's timeline (see `write_pace.rs`).
    pace: WritePace,
    /// The files of the newest checkpoint: what the next one shares.
    checkpoint_files: Mutex<std::collections::HashMap<FileId, u64>>,
    failure: Mutex<Option<String>>,
    closed: AtomicBool,
    pub(crate) metrics: Metrics,
}

pub(crate) struct State {
    /// Writes must carry an epoch above this one.
    sealed: Epoch,
    active: BTreeMap<Epoch, Arc<Memtable>>,
    /// Oldest first; each waits for the flusher.
    frozen: Vec<Arc<Memtable>>,
    /// `active` and `frozen` together, rebuilt on change, for readers.
    pub(crate) memtables: Arc<Vec<Arc<Memtable>>>,
    /// Range tombstones of uncommitted epochs.
    pub(crate) pending: Arc<Vec<RangeTombstone>>,
    pub(crate) version: Arc<Version>,
}

impl State {
    fn rebuild_memtables(&mut self) {
        let list: Vec<_> = self
            .active
            .values()
            .chain(self.frozen.iter())
            .cloned()
            .collect();
        self.memtables = Arc::new(list);
    }
}

impl Store {
    /// Opens (or creates) the store at `opts.url` and recovers its last
    /// committed version. Files of uncommitted epochs left by an earlier
    /// process are deleted. Must be called inside a tokio runtime.
    pub async fn open(opts: Options) -> Result<Store> {
        opts.validate()?;
        let store = open_object_store(&opts.url, &opts.s3)?;
        Self::open_with_object_store(opts, store).await
    }

    /// Like [`open`](Self::open), on an object store the caller built (a
    /// real one wrapped with fault injection, say) holding the store's root;
    /// `opts.url` only names it in logs. The namespace `opts.namespace` is
    /// a folder under that root.
    pub async fn open_with_object_store(
        opts: Options,
        root: Arc<dyn object_store::ObjectStore>,
    ) -> Result<Store> {
        opts.validate()?;
        let objects = Arc::new(crate::counted::ObjectCounters::default());
        let root: Arc<dyn object_store::ObjectStore> =
            Arc::new(crate::counted::CountedStore::new(root, objects.clone()));
        let storage = Storage {
            store: namespace::scoped(root, &opts.namespace)?,
            cache: Arc::new(BlockCache::new(opts.block_cache_bytes)),
            compaction_readahead: None,
        };
        let (mut manifest, data) = ManifestStore::open(storage.store.clone())
            .await
            .map_err(|e| e.in_namespace(&opts.namespace))?;
        let data = data.unwrap_or_else(|| ManifestData {
            next_file_id: 1,
            namespace: opts.namespace.clone(),
            ..ManifestData::default()
        });
        if !data.namespace.is_empty() && data.namespace != opts.namespace {
            return Err(Error::Config(format!(
                "{}: the manifest in namespace {:?} belongs to namespace {:?} (copied by hand?); \
                 restore a savepoint instead, which renames it",
                opts.url, opts.namespace, data.namespace
            )));
        }
        let gc = Arc::new(GcQueue::default());
        let mut version = Version::empty(opts.max_levels);
        if data.levels.len() > version.levels.len() {
            return Err(Error::Config(format!(
                "the store has {} levels but max_levels allows {}",
                data.levels.len() - 1,
                opts.max_levels
            )));
        }
        version.committed = data.committed;
        version.tombstones = data.tombstones.clone();
        let mut live = std::collections::HashSet::new();
        for (l, files) in data.levels.iter().enumerate() {
            for meta in files {
                live.insert(meta.id);
                version.levels[l].push(Arc::new(SstHandle::new(meta.clone(), gc.clone())));
            }
        }
        // Writing a version at open fences off an older writer of the same
        // store: its next manifest write finds the number taken. Orphans are
        // looked for only after the fence holds, so a file the old writer
        // named in a manifest it got in first is never taken for one.
        let listed: Vec<_> = storage
            .store
            .list(Some(&paths::sst_dir()))
            .try_collect()
            .await?;
        let mut next_file_id = data.next_file_id;
        for obj in &listed {
            if let Some(id) = paths::parse_sst(&obj.location) {
                next_file_id = next_file_id.max(id.0 + 1);
            }
        }
        let fenced = ManifestData {
            next_file_id,
            ..data.clone()
        };
        manifest.write(&fenced).await?;
        manifest.collect_old().await?;
        // Orphans: files of epochs that never committed, or of compactions
        // whose manifest write never happened.
        for obj in listed {
            if let Some(id) = paths::parse_sst(&obj.location) {
                if !live.contains(&id) {
                    tracing::info!(file = id.0, "deleting orphan file");
                    storage.store.delete(&obj.location).await?;
                }
            }
        }
        tracing::info!(url = %opts.url, committed = data.committed.0, manifest = manifest.current_version(), "store opened");
        let checkpoint_files = if data.checkpoints.is_empty() {
            Default::default()
        } else {
            data.levels
                .iter()
                .flatten()
                .map(|f| (f.id, f.size))
                .collect()
        };
        let inner = Arc::new(Inner {
            flush_shape: SstShape::for_level(&opts, 0),
            picker: PickerOptions::from(&opts),
            storage,
            state: RwLock::new(State {
                sealed: data.committed,
                active: BTreeMap::new(),
                frozen: Vec::new(),
                memtables: Arc::new(Vec::new()),
                pending: Arc::new(Vec::new()),
                version: Arc::new(version),
            }),
            manifest: tokio::sync::Mutex::new(manifest),
            flush_lock: tokio::sync::Mutex::new(()),
            compaction_gate: tokio::sync::RwLock::new(()),
            compacting: Mutex::new(InFlight::default()),
            next_seq: AtomicU64::new(data.next_seq.max(1)),
            next_file_id: Arc::new(AtomicU64::new(next_file_id)),
            mem_bytes: AtomicUsize::new(0),
            flush_wanted: Notify::new(),
            flushed: Notify::new(),
            compact_wanted: [Notify::new(), Notify::new()],
            gc,
            checkpoints: Mutex::new(data.checkpoints.clone()),
            catalog: Mutex::new(data.catalog.clone()),
            generation: AtomicU64::new(data.writer_generation),
            fence_gate: tokio::sync::RwLock::new(()),
            pace: WritePace::new(opts.delayed_write_bytes_per_sec),
            checkpoint_files: Mutex::new(checkpoint_files),
            failure: Mutex::new(None),
            closed: AtomicBool::new(false),
            metrics: Metrics {
                objects,
                ..Metrics::default()
            },
            opts,
        });
        let mut tasks = vec![
            tokio::spawn(flusher(inner.clone())),
            tokio::spawn(deleter(inner.clone())),
        ];
        if inner.opts.background_compaction {
            for lane in Lane::ALL {
                tasks.push(tokio::spawn(compactor(inner.clone(), lane)));
            }
            inner.want_compaction();
        }
        Ok(Store {
            inner,
            tasks: Mutex::new(tasks),
        })
    }

    /// Applies `batch` to `epoch` as one unit. Waits (never fails) while
    /// memtables are over their memory bound and flushes catch up.
    pub async fn write(&self, epoch: Epoch, batch: &WriteBatch) -> Result<()> {
        self.inner.write(epoch, batch).await
    }

    /// Like [`write`](Self::write) for the writer of `generation`: refused
    /// with [`Error::Fenced`] once a later generation fenced the namespace
    /// (another run of the job took it over).
    pub async fn write_fenced(
        &self,
        epoch: Epoch,
        batch: &WriteBatch,
        generation: u64,
    ) -> Result<()> {
        let _gate = self.inner.fence_gate.read().await;
        let current = self.inner.generation.load(Ordering::Acquire);
        if generation != current {
            return Err(Error::Fenced(format!(
                "namespace {:?} belongs to writer generation {current}; this writer has \
                 generation {generation} (another run of the job took it over)",
                self.inner.opts.namespace
            )));
        }
        self.inner.write(epoch, batch).await
    }

    /// Takes the namespace over for a new writer: durably moves its writer
    /// generation on (a manifest version) and returns the new one. From
    /// then on [`write_fenced`](Self::write_fenced) refuses every other
    /// generation, so a process that lost the namespace — a killed run that
    /// is not quite dead, a worker cut off by the network — cannot write
    /// into the run that replaced it. A job calls this before it rolls back
    /// to its checkpoint and starts.
    pub async fn fence(&self) -> Result<u64> {
        let inner = &self.inner;
        inner.check_open()?;
        let _gate = inner.fence_gate.write().await;
        let mut manifest = inner.manifest.lock().await;
        let next = inner.generation.load(Ordering::Acquire) + 1;
        let mut data = {
            let v = inner.state.read().version.clone();
            inner.manifest_data(&v)
        };
        data.writer_generation = next;
        if let Err(e) = manifest.write(&data).await {
            inner.fail("writing the manifest of a fence", &e);
            return Err(e);
        }
        inner.generation.store(next, Ordering::Release);
        tracing::info!(namespace = %inner.opts.namespace, generation = next, "writer generation fenced");
        Ok(next)
    }

    /// The namespace's current writer generation (0: never fenced).
    pub fn writer_generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Makes `epoch` and every epoch below it durable: flushes their
    /// memtables and writes a manifest version. Reads at `epoch` then see a
    /// consistent snapshot, and reopening the store recovers it.
    pub async fn commit(&self, epoch: Epoch) -> Result<()> {
        self.inner.commit(epoch, None).await.map(drop)
    }

    /// Commits `epoch` as a checkpoint with `meta` (its `epoch` is set to
    /// `epoch`): the manifest version that makes the epoch durable also
    /// records the checkpoint, and keeps the last
    /// `Options::retained_checkpoints` of them. The store fills in what it
    /// alone knows (`commit_ms`, `dirty_bytes`, and the files and bytes the
    /// checkpoint added over the previous one) and returns what it recorded.
    pub async fn commit_checkpoint(
        &self,
        epoch: Epoch,
        meta: CheckpointMeta,
    ) -> Result<CheckpointMeta> {
        let recorded = self.inner.commit(epoch, Some(meta)).await?;
        Ok(recorded.expect("a checkpoint commit records one"))
    }

    /// The retained checkpoints, oldest first.
    pub fn checkpoints(&self) -> Vec<CheckpointMeta> {
        self.inner.checkpoints.lock().clone()
    }

    /// The newest retained checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Option<CheckpointMeta> {
        self.inner.checkpoints.lock().last().cloned()
    }

    /// Drops every write of uncommitted `epoch`, in memory and in files.
    pub async fn discard(&self, epoch: Epoch) -> Result<()> {
        self.inner.discard(epoch)
    }

    /// Drops every uncommitted epoch and unseals them, so writing can start
    /// again right after the committed epoch: what a job does before it
    /// (re)starts from its last checkpoint.
    pub async fn rollback_to_committed(&self) -> Result<()> {
        self.inner.rollback_to_committed()
    }

    /// Flushes every memtable to L0 files without committing anything.
    pub async fn flush(&self) -> Result<()> {
        self.inner.check_open()?;
        {
            let mut st = self.inner.state.write();
            let epochs: Vec<Epoch> = st.active.keys().copied().collect();
            for e in epochs {
                if let Some(m) = st.active.remove(&e) {
                    m.freeze();
                    st.frozen.push(m);
                }
            }
            st.rebuild_memtables();
        }
        while self.inner.flush_one().await? {}
        Ok(())
    }

    /// Compacts every committed file into the deepest level, applying and
    /// removing all committed range tombstones. Waits until done.
    pub async fn compact(&self) -> Result<()> {
        self.inner.check_open()?;
        let _c = self.inner.compaction_gate.write().await;
        let plan = picker::full(&self.inner.state.read().version);
        self.inner.run_plan(plan).await
    }

    /// Runs background-style compactions, one at a time, until neither lane
    /// finds anything to do.
    pub async fn compact_until_idle(&self) -> Result<()> {
        while self.inner.compact_once(Lane::Upper).await?
            || self.inner.compact_once(Lane::Deep).await?
        {}
        Ok(())
    }

    /// The id of table `name` in this namespace, registered on first use.
    /// The registration is durable with the next commit; a table whose
    /// data never committed may get another id after a restart, which is
    /// harmless as none of its keys survived either.
    pub fn register_table(&self, name: &str) -> Result<TableId> {
        self.inner.check_open()?;
        self.inner.catalog.lock().register(name)
    }

    /// Registers table `name` with what a query needs to read it (key
    /// groups, kind, schemas); a later registration replaces it.
    pub fn register_table_with(&self, name: &str, info: TableInfo) -> Result<TableId> {
        self.inner.check_open()?;
        self.inner.catalog.lock().register_with(name, Some(info))
    }

    /// Table `name`'s id and description, if registered.
    pub fn table(&self, name: &str) -> Option<TableEntry> {
        self.inner.catalog.lock().entry(name).cloned()
    }

    /// Every registered table of this namespace, by name.
    pub fn tables(&self) -> Vec<(String, TableId)> {
        let c = self.inner.catalog.lock();
        c.tables().map(|(n, id)| (n.to_string(), id)).collect()
    }

    /// Every registered table with its description and its size on
    /// storage, by name. Sizes come from the files' key ranges, not a scan:
    /// a file whose keys span several tables is split evenly between them,
    /// and what is still in memory is not counted.
    pub fn table_summaries(&self) -> Vec<TableSummary> {
        let tables: Vec<(String, TableEntry)> = {
            let c = self.inner.catalog.lock();
            c.entries()
                .map(|(n, t)| (n.to_string(), t.clone()))
                .collect()
        };
        let mut sizes: HashMap<u32, (f64, f64)> = HashMap::new();
        {
            let state = self.inner.state.read();
            let table_of = |k: &[u8]| {
                k.get(..4)
                    .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
                    .unwrap_or(0)
            };
            for f in state.version.files() {
                let p = f.props();
                let (lo, hi) = (table_of(&p.smallest), table_of(&p.largest));
                let spanned: Vec<u32> = tables
                    .iter()
                    .map(|(_, t)| t.id.0)
                    .filter(|id| (lo..=hi).contains(id))
                    .collect();
                let n = spanned.len().max(1) as f64;
                for id in spanned {
                    let e = sizes.entry(id).or_default();
                    e.0 += f.meta.size as f64 / n;
                    e.1 += p.entries as f64 / n;
                }
            }
        }
        tables
            .into_iter()
            .map(|(name, t)| {
                let (bytes, entries) = sizes.get(&t.id.0).copied().unwrap_or_default();
                TableSummary {
                    name,
                    entry: t,
                    bytes: bytes.round() as u64,
                    entries: entries.round() as u64,
                }
            })
            .collect()
    }

    /// The namespace this handle opened.
    pub fn namespace(&self) -> &str {
        &self.inner.opts.namespace
    }

    /// The latest committed epoch.
    pub fn committed_epoch(&self) -> Epoch {
        self.inner.state.read().version.committed
    }

    pub fn cache_stats(&self) -> CacheStats {
        self.inner.storage.cache.stats()
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let mut s = MetricsSnapshot::default();
        self.inner.metrics.fill(&mut s);
        let c = self.cache_stats();
        s.cache_hits = c.hits;
        s.cache_misses = c.misses;
        s.memtable_bytes = self.inner.mem_bytes.load(Ordering::Relaxed) as u64;
        let v = self.inner.state.read().version.clone();
        s.files_per_level = v.levels.iter().map(Vec::len).collect();
        s.bytes_per_level = (0..v.levels.len()).map(|l| v.level_bytes(l)).collect();
        s
    }

    /// Checks the version's invariants; panics when one is broken (tests).
    pub fn check_invariants(&self) {
        self.inner.state.read().version.check();
    }

    /// Stops background work and deletes files waiting for deletion.
    /// Uncommitted epochs are lost, as after a crash (there is no WAL).
    pub async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.flush_wanted.notify_one();
        self.inner.want_compaction();
        self.inner.gc.notify.notify_one();
        self.inner.flushed.notify_waiters();
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        {
            let mut st = self.inner.state.write();
            st.active.clear();
            st.frozen.clear();
            st.rebuild_memtables();
            st.version = Arc::new(Version::empty(0));
        }
        self.inner.delete_ready_files().await;
        match self.inner.failure.lock().clone() {
            Some(f) => Err(Error::Closed(f)),
            None => Ok(()),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.flushed.notify_waiters();
        self.inner.flush_wanted.notify_one();
        self.inner.want_compaction();
        self.inner.gc.notify.notify_one();
    }
}

impl Inner {
    pub(crate) fn check_open(&self) -> Result<()> {
        if let Some(f) = self.failure.lock().as_ref() {
            return Err(Error::Closed(f.clone()));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed("closed by its owner".into()));
        }
        Ok(())
    }

    fn fail(&self, what: &str, e: &Error) {
        tracing::error!(error = %e, "{what} failed; the store stops accepting writes");
        self.failure
            .lock()
            .get_or_insert_with(|| format!("{what} failed: {e}"));
        self.flushed.notify_waiters();
    }

    fn next_file_id(&self) -> FileId {
        FileId(self.next_file_id.fetch_add(1, Ordering::Relaxed))
    }

    async fn write(&self, epoch: Epoch, batch: &WriteBatch) -> Result<()> {
        self.check_open()?;
        batch.validate()?;
        if batch.is_empty() {
            return Ok(());
        }
        let (mem, added) = loop {
            let mem = self.memtable_for(epoch)?;
            if batch.has_range_delete {
                let mut st = self.state.write();
                check_not_sealed(&st, epoch)?;
                if let Ok((added, ts)) = mem.apply(batch) {
                    Arc::make_mut(&mut st.pending).extend(ts);
                    break (mem, added);
                }
            } else if let Ok((added, _)) = mem.apply(batch) {
                break (mem, added);
            }
        };
        self.mem_bytes.fetch_add(added, Ordering::Relaxed);
        Metrics::add(&self.metrics.write_batches, 1);
        Metrics::add(&self.metrics.write_ops, batch.len() as u64);
        if mem.size() >= self.opts.memtable_bytes {
            self.freeze(&mem);
        }
        self.slow_down(added).await;
        self.stall_while_full().await
    }

    /// Paces a write of `bytes` while compaction is behind (see `write_pace.rs`).
    async fn slow_down(&self, bytes: usize) {
        let backlog = self.l0_backlog();
        // Pacing is by wall time on purpose: it trades write speed for
        // compaction's, both measured in it.
        let delay = self.pace.delay(
            bytes,
            backlog,
            self.opts.l0_slowdown_writes_files,
            tokio::time::Instant::now(),
        );
        if !delay.is_zero() {
            Metrics::add(&self.metrics.write_slowdowns, 1);
            if delay >= std::time::Duration::from_secs(1) {
                tracing::warn!(
                    delay_ms = delay.as_millis() as u64,
                    l0_files = backlog,
                    bytes_per_sec = self.pace.rate(),
                    "writes slowed: compaction is behind"
                );
            }
            tokio::time::sleep(delay).await;
        }
    }

    fn memtable_for(&self, epoch: Epoch) -> Result<Arc<Memtable>> {
        {
            let st = self.state.read();
            check_not_sealed(&st, epoch)?;
            if let Some(m) = st.active.get(&epoch) {
                return Ok(m.clone());
            }
        }
        let mut st = self.state.write();
        check_not_sealed(&st, epoch)?;
        let seq = &self.next_seq;
        let m = st
            .active
            .entry(epoch)
            .or_insert_with(|| Arc::new(Memtable::new(epoch, seq.fetch_add(1, Ordering::Relaxed))))
            .clone();
        st.rebuild_memtables();
        Ok(m)
    }

    fn freeze(&self, mem: &Arc<Memtable>) {
        let mut st = self.state.write();
        if st
            .active
            .get(&mem.epoch())
            .is_some_and(|m| Arc::ptr_eq(m, mem))
        {
            st.active.remove(&mem.epoch());
            mem.freeze();
            st.frozen.push(mem.clone());
            st.rebuild_memtables();
            self.flush_wanted.notify_one();
        }
    }

    /// Committed L0 files compaction has yet to take.
    fn l0_backlog(&self) -> usize {
        if !self.opts.background_compaction {
            return 0;
        }
        let st = self.state.read();
        st.version.levels[0]
            .iter()
            .filter(|f| st.version.is_committed(f))
            .count()
    }

    fn over_bounds(&self) -> bool {
        self.mem_bytes.load(Ordering::Relaxed) >= self.opts.max_memory_bytes
            || self.l0_backlog() >= self.opts.l0_stop_writes_files
    }

    /// The write stall: wait for flushes while memtables exceed their bound,
    /// and for compaction while L0 is too deep.
    async fn stall_while_full(&self) -> Result<()> {
        let mut stalled: Option<std::time::Instant> = None;
        loop {
            if !self.over_bounds() {
                self.log_long_stall(stalled);
                return Ok(());
            }
            if stalled.is_none() {
                #[allow(clippy::disallowed_methods)] // a statistic, never a decision
                let now = std::time::Instant::now();
                stalled = Some(now);
                Metrics::add(&self.metrics.write_stalls, 1);
            }
            let notified = self.flushed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.mem_bytes.load(Ordering::Relaxed) >= self.opts.max_memory_bytes {
                let mut st = self.state.write();
                if st.frozen.is_empty() {
                    // Nothing queued: freeze the largest memtable so the flusher has work.
                    if let Some(e) = st
                        .active
                        .iter()
                        .max_by_key(|(_, m)| m.size())
                        .map(|(e, _)| *e)
                    {
                        if let Some(m) = st.active.remove(&e) {
                            m.freeze();
                            st.frozen.push(m);
                            st.rebuild_memtables();
                        }
                    }
                }
            }
            self.flush_wanted.notify_one();
            self.want_compaction();
            self.check_open()?;
            if !self.over_bounds() {
                self.log_long_stall(stalled);
                return Ok(());
            }
            notified.await;
        }
    }

    /// Says in the log when a write waited a second or more in the stall,
    /// and for what: slow checkpoints are most often this wait.
    fn log_long_stall(&self, since: Option<std::time::Instant>) {
        let Some(since) = since else { return };
        let waited = since.elapsed();
        if waited >= std::time::Duration::from_secs(1) {
            tracing::warn!(
                waited_ms = waited.as_millis() as u64,
                l0_files = self.l0_backlog(),
                l0_stop_writes_files = self.opts.l0_stop_writes_files,
                "writes stalled: flushes or compaction fell behind"
            );
        }
    }

    /// Flushes the oldest frozen memtable; false if there was none.
    async fn flush_one(&self) -> Result<bool> {
        let _g = self.flush_lock.lock().await;
        let Some(mem) = self.state.read().frozen.first().cloned() else {
            return Ok(false);
        };
        let handle = if mem.is_empty() {
            None
        } else {
            let id = self.next_file_id();
            let shape = self.flush_shape;
            let m = mem.clone();
            let builder = tokio::task::spawn_blocking(move || {
                let mut b = SstBuilder::new(shape);
                let stamp = m.stamp();
                m.for_each(|k, v| b.add(k, stamp, v));
                b
            })
            .await
            .map_err(|e| Error::Closed(format!("flush task failed: {e}")))?;
            let meta = executor::upload(builder, &self.storage, id).await?;
            Metrics::add(&self.metrics.flush_bytes, meta.size);
            tracing::debug!(
                file = id.0,
                epoch = mem.epoch().0,
                bytes = meta.size,
                "flushed memtable"
            );
            Some(Arc::new(SstHandle::new(meta, self.gc.clone())))
        };
        {
            let mut st = self.state.write();
            let before = st.frozen.len();
            st.frozen.retain(|m| !Arc::ptr_eq(m, &mem));
            if st.frozen.len() != before {
                self.mem_bytes.fetch_sub(mem.size(), Ordering::Relaxed);
            }
            st.rebuild_memtables();
            if let Some(h) = handle {
                if mem.is_discarded() {
                    h.mark_obsolete();
                } else {
                    let mut v = (*st.version).clone();
                    v.levels[0].push(h);
                    st.version = Arc::new(v);
                }
            }
        }
        Metrics::add(&self.metrics.flushes, 1);
        self.flushed.notify_waiters();
        self.want_compaction();
        Ok(true)
    }

    async fn commit(
        &self,
        epoch: Epoch,
        meta: Option<CheckpointMeta>,
    ) -> Result<Option<CheckpointMeta>> {
        self.check_open()?;
        #[allow(clippy::disallowed_methods)] // a statistic, never a decision
        let started = std::time::Instant::now();
        let dirty_bytes: u64;
        {
            let mut st = self.state.write();
            if epoch <= st.version.committed {
                return Err(Error::WrongEpoch(format!(
                    "epoch {} is not above the committed epoch {}",
                    epoch.0, st.version.committed.0
                )));
            }
            st.sealed = st.sealed.max(epoch);
            dirty_bytes = st
                .active
                .range(..=epoch)
                .map(|(_, m)| m.size() as u64)
                .chain(
                    st.frozen
                        .iter()
                        .filter(|m| m.epoch() <= epoch)
                        .map(|m| m.size() as u64),
                )
                .sum();
            let sealed: Vec<Epoch> = st.active.range(..=epoch).map(|(e, _)| *e).collect();
            for e in sealed {
                if let Some(m) = st.active.remove(&e) {
                    m.freeze();
                    st.frozen.push(m);
                }
            }
            st.rebuild_memtables();
        }
        while self.state.read().frozen.iter().any(|m| m.epoch() <= epoch) {
            self.flush_one().await?;
        }
        let mut manifest = self.manifest.lock().await;
        let data = {
            let st = self.state.read();
            if epoch <= st.version.committed {
                return Err(Error::WrongEpoch(format!(
                    "epoch {} was overtaken by a concurrent commit of epoch {}",
                    epoch.0, st.version.committed.0
                )));
            }
            let mut v = (*st.version).clone();
            v.committed = epoch;
            v.tombstones.extend(
                st.pending
                    .iter()
                    .filter(|t| t.stamp.epoch <= epoch)
                    .cloned(),
            );
            self.manifest_data(&v)
        };
        let (data, recorded, files) = match meta {
            None => (data, None, None),
            Some(mut meta) => {
                let files: std::collections::HashMap<FileId, u64> = data
                    .levels
                    .iter()
                    .flatten()
                    .map(|f| (f.id, f.size))
                    .collect();
                let shared = self.checkpoint_files.lock();
                let added: Vec<u64> = files
                    .iter()
                    .filter(|(id, _)| !shared.contains_key(id))
                    .map(|(_, size)| *size)
                    .collect();
                drop(shared);
                meta.epoch = epoch;
                meta.stats.files_added = added.len() as u64;
                meta.stats.bytes_written = added.iter().sum();
                meta.stats.dirty_bytes = dirty_bytes;
                meta.stats.commit_ms = started.elapsed().as_millis() as u64;
                // The caller measured up to the commit; the store adds its part.
                meta.stats.duration_ms += meta.stats.commit_ms;
                let mut data = data;
                data.checkpoints.push(meta.clone());
                let keep = self.opts.retained_checkpoints;
                if data.checkpoints.len() > keep {
                    data.checkpoints.drain(..data.checkpoints.len() - keep);
                }
                (data, Some(meta), Some(files))
            }
        };
        if let Err(e) = manifest.write(&data).await {
            // Whether epoch `epoch` committed is known only to the next open.
            self.fail("writing the manifest of a commit", &e);
            return Err(e);
        }
        if let Some(files) = files {
            *self.checkpoints.lock() = data.checkpoints.clone();
            *self.checkpoint_files.lock() = files;
        }
        {
            let mut st = self.state.write();
            let moved: Vec<_> = st
                .pending
                .iter()
                .filter(|t| t.stamp.epoch <= epoch)
                .cloned()
                .collect();
            Arc::make_mut(&mut st.pending).retain(|t| t.stamp.epoch > epoch);
            let mut v = (*st.version).clone();
            v.committed = epoch;
            v.tombstones.extend(moved);
            st.version = Arc::new(v);
        }
        drop(manifest);
        Metrics::add(&self.metrics.commits, 1);
        tracing::debug!(
            epoch = epoch.0,
            checkpoint = recorded.is_some(),
            "epoch committed"
        );
        self.want_compaction();
        Ok(recorded)
    }

    fn discard(&self, epoch: Epoch) -> Result<()> {
        self.check_open()?;
        let mut st = self.state.write();
        if epoch <= st.sealed {
            return Err(Error::WrongEpoch(format!(
                "epoch {} is sealed or committed (sealed up to {}, committed {}); it cannot be discarded",
                epoch.0, st.sealed.0, st.version.committed.0
            )));
        }
        let mut freed = 0;
        if let Some(m) = st.active.remove(&epoch) {
            m.mark_discarded();
            m.freeze();
            freed += m.size();
        }
        st.frozen.retain(|m| {
            if m.epoch() == epoch {
                m.mark_discarded();
                freed += m.size();
                false
            } else {
                true
            }
        });
        self.mem_bytes.fetch_sub(freed, Ordering::Relaxed);
        st.rebuild_memtables();
        Arc::make_mut(&mut st.pending).retain(|t| t.stamp.epoch != epoch);
        let mut v = (*st.version).clone();
        v.levels[0].retain(|f| {
            let gone = f.props().min_epoch == epoch && f.props().max_epoch == epoch;
            if gone {
                f.mark_obsolete();
            }
            !gone
        });
        st.version = Arc::new(v);
        drop(st);
        self.flushed.notify_waiters();
        Ok(())
    }

    fn rollback_to_committed(&self) -> Result<()> {
        self.check_open()?;
        let mut st = self.state.write();
        let committed = st.version.committed;
        let mut freed = 0;
        for (_, m) in std::mem::take(&mut st.active) {
            m.mark_discarded();
            m.freeze();
            freed += m.size();
        }
        for m in std::mem::take(&mut st.frozen) {
            m.mark_discarded();
            freed += m.size();
        }
        self.mem_bytes.fetch_sub(freed, Ordering::Relaxed);
        st.rebuild_memtables();
        st.pending = Arc::new(Vec::new());
        let mut v = (*st.version).clone();
        v.levels[0].retain(|f| {
            let uncommitted = f.props().max_epoch > committed;
            if uncommitted {
                f.mark_obsolete();
            }
            !uncommitted
        });
        st.version = Arc::new(v);
        st.sealed = committed;
        drop(st);
        self.flushed.notify_waiters();
        Ok(())
    }

    /// The retained checkpoints' epochs below `committed`, ascending: the
    /// snapshots that reads may still name.
    fn snapshots_below(&self, committed: Epoch) -> Vec<Epoch> {
        let mut s: Vec<Epoch> = self
            .checkpoints
            .lock()
            .iter()
            .map(|c| c.epoch)
            .filter(|e| *e < committed)
            .collect();
        s.sort();
        s.dedup();
        s
    }

    /// Whether reads at `epoch`, below the committed epoch, are served: it
    /// is a retained checkpoint's.
    pub(crate) fn is_retained(&self, epoch: Epoch) -> bool {
        self.checkpoints.lock().iter().any(|c| c.epoch == epoch)
    }

    /// What the manifest records for `v`: its committed files and tombstones.
    fn manifest_data(&self, v: &Version) -> ManifestData {
        let levels = v
            .levels
            .iter()
            .map(|files| {
                files
                    .iter()
                    .filter(|f| v.is_committed(f))
                    .map(|f| f.meta.clone())
                    .collect()
            })
            .collect();
        ManifestData {
            committed: v.committed,
            next_file_id: self.next_file_id.load(Ordering::Relaxed),
            next_seq: self.next_seq.load(Ordering::Relaxed),
            levels,
            tombstones: v.tombstones.clone(),
            checkpoints: self.checkpoints.lock().clone(),
            namespace: self.opts.namespace.clone(),
            catalog: self.catalog.lock().clone(),
            writer_generation: self.generation.load(Ordering::Relaxed),
        }
    }

    /// Wakes both lanes' compactors: something they pick from changed.
    fn want_compaction(&self) {
        for w in &self.compact_wanted {
            w.notify_one();
        }
    }

    /// Runs the next compaction of `lane`, if there is one; false if not.
    async fn compact_once(&self, lane: Lane) -> Result<bool> {
        let _shared = self.compaction_gate.read().await;
        let plan = {
            // The version is read under this lock: a compaction installs
            // its version before it releases its files, so a version read
            // here has every released compaction in it. Read before, it
            // could be one without a compaction whose files are already
            // free, and the same files would be compacted twice (two
            // pickers run: each lane's, and `compact_until_idle`).
            let mut busy = self.compacting.lock();
            let v = self.state.read().version.clone();
            let snapshots = self.snapshots_below(v.committed);
            let plan = picker::pick_in(lane, &v, &self.picker, &snapshots, &busy);
            if let Some(p) = &plan {
                if !busy.is_idle() {
                    Metrics::add(&self.metrics.compactions_beside, 1);
                }
                busy.start(p);
            }
            plan
        };
        let Some(plan) = plan else {
            return Ok(false);
        };
        let result = self.run_plan(plan.clone()).await;
        self.compacting.lock().finish(&plan);
        // The other lane may have waited for these files.
        self.want_compaction();
        result.map(|_| true)
    }

    /// Executes `plan` and installs its result (caller holds the compaction
    /// gate, shared with at most one compaction of the other lane on other
    /// files, or exclusively).
    async fn run_plan(&self, plan: Plan) -> Result<()> {
        let (applied, committed) = {
            let st = self.state.read();
            (st.version.tombstones.clone(), st.version.committed)
        };
        // Taken now: a checkpoint recorded later sees only versions that
        // are the newest of their files, which the compaction keeps.
        let snapshots = self.snapshots_below(committed);
        let compaction_storage = Storage {
            compaction_readahead: Some(crate::storage::COMPACTION_READAHEAD_BYTES),
            ..self.storage.clone()
        };
        let planned: u64 = plan.input_files().map(|f| f.meta.size).sum();
        let (plan, fences) = untouched::leave_untouched(plan, &compaction_storage).await?;
        let kept = planned - plan.input_files().map(|f| f.meta.size).sum::<u64>();
        let job = executor::Job {
            plan: plan.clone(),
            tombstones: applied.clone(),
            storage: compaction_storage,
            shape: SstShape::for_level(&self.opts, plan.output_level),
            target_bytes: self.opts.sst_target_bytes,
            snapshots: snapshots.clone(),
            ids: self.next_file_id.clone(),
            fences,
        };
        let outcome = executor::execute(job, self.opts.subcompactions).await?;
        let outputs: Vec<Arc<SstHandle>> = outcome
            .outputs
            .iter()
            .map(|m| Arc::new(SstHandle::new(m.clone(), self.gc.clone())))
            .collect();
        let mut manifest = self.manifest.lock().await;
        let data = {
            let st = self.state.read();
            self.manifest_data(&apply_compaction(
                &st.version,
                &plan,
                &outputs,
                &applied,
                &snapshots,
            ))
        };
        if let Err(e) = manifest.write(&data).await {
            // The outputs may be named by a manifest that landed: leave them
            // to the next open, which collects them if they are not.
            self.fail("writing the manifest of a compaction", &e);
            return Err(e);
        }
        {
            let mut st = self.state.write();
            st.version = Arc::new(apply_compaction(
                &st.version,
                &plan,
                &outputs,
                &applied,
                &snapshots,
            ));
        }
        drop(manifest);
        plan.input_files().for_each(|f| f.mark_obsolete());
        self.flushed.notify_waiters();
        Metrics::add(&self.metrics.compactions, 1);
        Metrics::add(&self.metrics.compaction_parts, outcome.parts as u64);
        if plan.reason == crate::compaction::Reason::L0Merge {
            Metrics::add(&self.metrics.l0_merges, 1);
        }
        Metrics::add(&self.metrics.compaction_read_bytes, outcome.bytes_read);
        Metrics::add(&self.metrics.compaction_write_bytes, outcome.bytes_written);
        Metrics::add(&self.metrics.compaction_kept_bytes, kept);
        tracing::debug!(reason = ?plan.reason, inputs = plan.input_files().count(), kept_bytes = kept, outputs = outputs.len(), level = plan.output_level, "compaction installed");
        Ok(())
    }

    async fn delete_ready_files(&self) {
        for id in self.gc.take() {
            match self.storage.store.delete(&paths::sst(id)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                    Metrics::add(&self.metrics.files_deleted, 1);
                }
                Err(e) => {
                    tracing::warn!(file = id.0, error = %e, "could not delete an obsolete file; it is removed at the next open")
                }
            }
        }
    }
}

fn check_not_sealed(st: &State, epoch: Epoch) -> Result<()> {
    if epoch <= st.sealed {
        return Err(Error::WrongEpoch(format!(
            "epoch {} is sealed or committed (sealed up to {}); write to a newer epoch",
            epoch.0, st.sealed.0
        )));
    }
    Ok(())
}

/// `v` with the plan's inputs replaced by `outputs`, and with the applied
/// range tombstones removed where no remaining file can hold a version they hide.
fn apply_compaction(
    v: &Version,
    plan: &Plan,
    outputs: &[Arc<SstHandle>],
    applied: &[RangeTombstone],
    snapshots: &[Epoch],
) -> Version {
    let inputs: std::collections::HashSet<FileId> = plan.input_files().map(|f| f.id()).collect();
    let mut nv = v.clone();
    for files in nv.levels.iter_mut() {
        files.retain(|f| !inputs.contains(&f.id()));
    }
    let out = &mut nv.levels[plan.output_level];
    out.extend(outputs.iter().cloned());
    out.sort_by(|a, b| a.props().smallest.cmp(&b.props().smallest));
    let outs: std::collections::HashSet<FileId> = outputs.iter().map(|f| f.id()).collect();
    let levels = nv.levels.clone();
    nv.tombstones.retain(|t| {
        let was_applied = applied.contains(t);
        let still_needed = levels.iter().flatten().any(|f| {
            !outs.contains(&f.id())
                && t.overlaps(&f.props().smallest, &f.props().largest)
                && f.props().min_epoch <= t.stamp.epoch
        });
        // A snapshot below the tombstone may have kept versions it covers:
        // reads above the tombstone must still not see them.
        let snapshot_below = snapshots.iter().any(|s| *s < t.stamp.epoch);
        !was_applied || still_needed || snapshot_below
    });
    nv
}

async fn flusher(inner: Arc<Inner>) {
    loop {
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        match inner.flush_one().await {
            Ok(true) => {}
            Ok(false) => inner.flush_wanted.notified().await,
            Err(e) => {
                inner.fail("flush", &e);
                return;
            }
        }
    }
}

async fn compactor(inner: Arc<Inner>, lane: Lane) {
    let wanted = &inner.compact_wanted[Lane::ALL.iter().position(|l| *l == lane).unwrap_or(0)];
    loop {
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        // Registered before picking, so a wake-up while picking is kept.
        let notified = wanted.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match inner.compact_once(lane).await {
            Ok(true) => {}
            Ok(false) => notified.await,
            Err(e) => {
                inner.fail("compaction", &e);
                return;
            }
        }
    }
}

async fn deleter(inner: Arc<Inner>) {
    loop {
        inner.delete_ready_files().await;
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        inner.gc.notify.notified().await;
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Store>();
    is::<SstMeta>();
}
