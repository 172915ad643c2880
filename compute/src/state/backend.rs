//! The seam between a job and the state store, in two planes.
//!
//! - The data plane, [`StateBackend`]: reads, writes and scans. It is all
//!   an operator's state (every subtask's) is given, so an operator — and
//!   a worker running only operators — cannot commit or roll back a job.
//! - The control plane, [`StateControl`]: table registration, commits
//!   with checkpoint metadata, rollback. Only the job itself (its
//!   checkpoint coordinator) holds it.
//!
//! A store that serves both is a [`JobState`]: the embedded store
//! ([`EmbeddedBackend`], the library in this process) and the service
//! client (`remote.rs`).

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_state_store::catalog::TableInfo;
use riverbed_state_store::{CheckpointMeta, Epoch, ObjectStats, Store, TableId, WriteBatch};

use crate::error::Result;

pub trait StateBackend: Send + Sync + 'static {
    /// Values of `keys` as of `epoch` (a worker reads its own uncommitted writes).
    fn multi_get<'a>(
        &'a self,
        keys: &'a [Bytes],
        epoch: Epoch,
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>>;
    /// Applies `batch` to `epoch` as one unit.
    fn write<'a>(&'a self, epoch: Epoch, batch: &'a WriteBatch) -> BoxFuture<'a, Result<()>>;
    /// Every entry with a key in `[start, end)` as of `epoch`, in key order
    /// (a restored operator reads its owned key groups back).
    fn scan<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        epoch: Epoch,
    ) -> BoxFuture<'a, Result<Vec<(Bytes, Bytes)>>>;
    /// The first `limit` entries with a key in `[start, end)` as of
    /// `epoch`, in key order: one page of a prefix scan.
    fn scan_page<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        epoch: Epoch,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(Bytes, Bytes)>>>;
}

/// The control plane: what only the job's coordinator does.
pub trait StateControl: Send + Sync + 'static {
    /// Makes `epoch` durable once every subtask has passed its barrier.
    fn commit(&self, epoch: Epoch) -> BoxFuture<'_, Result<()>>;
    /// Commits `epoch` as a checkpoint with `meta`; returns what the store
    /// recorded (with the statistics it adds).
    fn commit_checkpoint(
        &self,
        epoch: Epoch,
        meta: CheckpointMeta,
    ) -> BoxFuture<'_, Result<CheckpointMeta>>;
    /// The epoch a restarted job resumes after.
    fn committed_epoch(&self) -> Epoch;
    /// Drops every uncommitted epoch: a job (re)starts from the last commit.
    fn rollback(&self) -> BoxFuture<'_, Result<()>>;
    /// The id the store gives table `name` of this job: the same name finds
    /// the same table (and its data) after a restart. `info` describes its
    /// keys and values for queries.
    fn register_table(&self, name: &str, info: Option<&TableInfo>) -> Result<TableId>;
    /// What the job's store has moved through object storage: how a
    /// rescale or a restore shows that it copied no state.
    fn object_stats(&self) -> BoxFuture<'_, Result<ObjectStats>>;
}

/// A store both planes reach: what a job is built on.
pub trait JobState: StateBackend + StateControl {
    /// The data plane alone, for operators.
    fn data_plane(self: Arc<Self>) -> Arc<dyn StateBackend>;
    /// The control plane alone, for the coordinator.
    fn control_plane(self: Arc<Self>) -> Arc<dyn StateControl>;
}

impl<T: StateBackend + StateControl> JobState for T {
    fn data_plane(self: Arc<Self>) -> Arc<dyn StateBackend> {
        self
    }

    fn control_plane(self: Arc<Self>) -> Arc<dyn StateControl> {
        self
    }
}

/// The store library in this process: the embedded default.
pub struct EmbeddedBackend {
    store: Arc<Store>,
    /// The writer generation the job took at its last start (`rollback`),
    /// carried by its writes as over the wire (0 until then: unfenced).
    generation: std::sync::atomic::AtomicU64,
}

impl EmbeddedBackend {
    pub fn new(store: Arc<Store>) -> Self {
        EmbeddedBackend {
            store,
            generation: Default::default(),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// A backend on a store in a new temporary directory, which lives as
    /// long as the returned guard (for unit tests).
    #[cfg(test)]
    pub(crate) async fn in_temp_dir() -> (tempfile::TempDir, Arc<EmbeddedBackend>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(riverbed_state_store::Options::with_url(
            dir.path().to_str().unwrap(),
        ))
        .await
        .unwrap();
        (dir, Arc::new(EmbeddedBackend::new(Arc::new(store))))
    }
}

impl StateBackend for EmbeddedBackend {
    fn multi_get<'a>(
        &'a self,
        keys: &'a [Bytes],
        epoch: Epoch,
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        Box::pin(async move { Ok(self.store.multi_get(keys, epoch).await?) })
    }

    fn write<'a>(&'a self, epoch: Epoch, batch: &'a WriteBatch) -> BoxFuture<'a, Result<()>> {
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            match generation {
                0 => Ok(self.store.write(epoch, batch).await?),
                g => Ok(self.store.write_fenced(epoch, batch, g).await?),
            }
        })
    }

    fn scan<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        epoch: Epoch,
    ) -> BoxFuture<'a, Result<Vec<(Bytes, Bytes)>>> {
        Box::pin(async move { Ok(self.store.scan(start, Some(end), epoch, usize::MAX).await?) })
    }

    fn scan_page<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        epoch: Epoch,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(Bytes, Bytes)>>> {
        Box::pin(async move { Ok(self.store.scan(start, Some(end), epoch, limit).await?) })
    }
}

impl StateControl for EmbeddedBackend {
    fn commit(&self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { Ok(self.store.commit(epoch).await?) })
    }

    fn commit_checkpoint(
        &self,
        epoch: Epoch,
        meta: CheckpointMeta,
    ) -> BoxFuture<'_, Result<CheckpointMeta>> {
        Box::pin(async move { Ok(self.store.commit_checkpoint(epoch, meta).await?) })
    }

    fn committed_epoch(&self) -> Epoch {
        self.store.committed_epoch()
    }

    fn rollback(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // A run starts: it takes the namespace over, then drops what
            // earlier runs left uncommitted.
            let g = self.store.fence().await?;
            self.generation
                .store(g, std::sync::atomic::Ordering::SeqCst);
            Ok(self.store.rollback_to_committed().await?)
        })
    }

    fn register_table(&self, name: &str, info: Option<&TableInfo>) -> Result<TableId> {
        Ok(match info {
            Some(i) => self.store.register_table_with(name, i.clone())?,
            None => self.store.register_table(name)?,
        })
    }

    fn object_stats(&self) -> BoxFuture<'_, Result<ObjectStats>> {
        let o = self.store.metrics().objects();
        Box::pin(async move { Ok(o) })
    }
}
