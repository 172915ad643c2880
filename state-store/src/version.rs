//! A version: the set of SST files and committed range tombstones that make
//! up the store at one moment. Versions are immutable and shared (`Arc`);
//! every change builds a new one. A reader holds the version it started
//! with, so a file stays alive while any reader or version needs it.
//!
//! Invariants (checked by [`Version::check`] in tests):
//! - `levels[0]` is L0: files from flushes, which may overlap. A flushed
//!   file holds one epoch; an L0 merge's output holds several committed
//!   ones. Files whose epoch is above `committed` are not in the manifest
//!   yet and are the only ones a discard may remove.
//! - `levels[i]`, `i >= 1`, is sorted by key and its files do not overlap.
//! - For any key, versions in L0 are newer than those in L1, and those in
//!   `Li` newer than those in `Li+1`: compaction moves all committed L0 files
//!   at once, and a write's epoch is always above the committed epoch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use object_store::ObjectStore;
use parking_lot::Mutex;
use tokio::sync::OnceCell;

use crate::cache::BlockCache;
use crate::error::Result;
use crate::keys::{Epoch, FileId};
use crate::range_tombstone::RangeTombstone;
use crate::sst::{SstProps, SstReader};

/// What the manifest records about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SstMeta {
    pub id: FileId,
    pub size: u64,
    pub props: SstProps,
}

/// Files whose last reference is gone and that no manifest names any more.
#[derive(Default)]
pub struct GcQueue {
    ready: Mutex<Vec<FileId>>,
    /// Woken when a file is queued.
    pub notify: tokio::sync::Notify,
}

impl GcQueue {
    pub fn take(&self) -> Vec<FileId> {
        std::mem::take(&mut *self.ready.lock())
    }
}

/// A file in a version. Dropped for the last time after being marked
/// obsolete, it queues its file for deletion.
pub struct SstHandle {
    pub meta: SstMeta,
    reader: OnceCell<Arc<SstReader>>,
    obsolete: AtomicBool,
    gc: Arc<GcQueue>,
}

impl SstHandle {
    pub fn new(meta: SstMeta, gc: Arc<GcQueue>) -> Self {
        SstHandle {
            meta,
            reader: OnceCell::new(),
            obsolete: AtomicBool::new(false),
            gc,
        }
    }

    pub fn id(&self) -> FileId {
        self.meta.id
    }

    pub fn props(&self) -> &SstProps {
        &self.meta.props
    }

    /// Opens the file on first use (lazily, so opening a store costs no reads).
    pub async fn reader(
        &self,
        store: &Arc<dyn ObjectStore>,
        cache: &Arc<BlockCache>,
    ) -> Result<&Arc<SstReader>> {
        self.reader
            .get_or_try_init(|| async {
                SstReader::open(self.meta.id, self.meta.size, store.clone(), cache.clone())
                    .await
                    .map(Arc::new)
            })
            .await
    }

    /// After this, the last drop of the handle deletes the file.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        &self.meta.props.smallest[..] <= largest && smallest <= &self.meta.props.largest[..]
    }
}

impl Drop for SstHandle {
    fn drop(&mut self) {
        if self.obsolete.load(Ordering::Acquire) {
            self.gc.ready.lock().push(self.meta.id);
            self.gc.notify.notify_one();
        }
    }
}

#[derive(Clone, Default)]
pub struct Version {
    /// Reads at or above this epoch are served; it is the last committed epoch.
    pub committed: Epoch,
    /// `levels[0]` is L0; deeper levels are sorted runs.
    pub levels: Vec<Vec<Arc<SstHandle>>>,
    /// Committed range tombstones not yet applied everywhere.
    pub tombstones: Vec<RangeTombstone>,
}

impl Version {
    pub fn empty(max_levels: usize) -> Self {
        Version {
            committed: Epoch(0),
            levels: vec![Vec::new(); max_levels + 1],
            tombstones: Vec::new(),
        }
    }

    pub fn is_committed(&self, f: &SstHandle) -> bool {
        f.props().max_epoch <= self.committed
    }

    /// Every file, L0 first.
    pub fn files(&self) -> impl Iterator<Item = &Arc<SstHandle>> {
        self.levels.iter().flatten()
    }

    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|f| f.meta.size).sum()
    }

    /// Files of sorted level `level` that overlap `[smallest, largest]`.
    pub fn overlapping(
        &self,
        level: usize,
        smallest: &[u8],
        largest: &[u8],
    ) -> Vec<Arc<SstHandle>> {
        self.levels[level]
            .iter()
            .filter(|f| f.overlaps(smallest, largest))
            .cloned()
            .collect()
    }

    /// The file of sorted level `level` whose range holds `key`, if any.
    pub fn file_for(&self, level: usize, key: &[u8]) -> Option<&Arc<SstHandle>> {
        let files = &self.levels[level];
        let i = files.partition_point(|f| &f.props().largest[..] < key);
        files.get(i).filter(|f| &f.props().smallest[..] <= key)
    }

    /// Panics with a description if an invariant does not hold (tests only).
    pub fn check(&self) {
        for (l, files) in self.levels.iter().enumerate().skip(1) {
            for w in files.windows(2) {
                assert!(
                    w[0].props().largest < w[1].props().smallest,
                    "L{l}: files {:?} and {:?} overlap or are out of order",
                    w[0].id(),
                    w[1].id()
                );
            }
            for f in files {
                assert!(
                    self.is_committed(f),
                    "L{l} holds uncommitted file {:?}",
                    f.id()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_obsolete_file_is_queued_only_after_its_last_reader_lets_go() {
        let gc = Arc::new(GcQueue::default());
        let meta = SstMeta {
            id: FileId(9),
            size: 1,
            props: SstProps::default(),
        };
        let handle = Arc::new(SstHandle::new(meta, gc.clone()));
        let mut version = Version::empty(1);
        version.levels[0].push(handle.clone());
        let reader_snapshot = Arc::new(version.clone());
        handle.mark_obsolete();
        drop(handle);
        drop(version);
        assert!(gc.take().is_empty(), "a reader still holds the file");
        drop(reader_snapshot);
        assert_eq!(gc.take(), vec![FileId(9)]);
    }
}
