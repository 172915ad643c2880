//! Our store, embedded, on a local directory as its object store.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use riverbed_state_store::{Epoch, Options, Store, WriteBatch};
use tokio::task::JoinHandle;

use super::{Engine, EngineInfo};

/// Batches written per epoch before it is committed: 100 batches of 1,000
/// keys, about a checkpoint interval's worth at these rates.
pub const BATCHES_PER_EPOCH: u64 = 100;

pub struct Riverbed {
    store: Arc<Store>,
    epoch: u64,
    batches_in_epoch: u64,
    /// The previous epoch's commit, running beside the next epoch's writes
    /// as a checkpoint does.
    pending: Option<JoinHandle<riverbed_state_store::Result<()>>>,
}

pub fn options(dir: &Path) -> Result<Options> {
    let url = dir.to_str().context("state directory is not UTF-8")?;
    Ok(Options::with_url(url))
}

pub fn info() -> EngineInfo {
    let o = Options::default();
    EngineInfo {
        name: "Riverbed",
        version: env!("CARGO_PKG_VERSION"),
        settings: vec![
            "defaults of `Options` (this repository's engine)".into(),
            format!(
                "block cache {} MiB (foyer, in memory)",
                o.block_cache_bytes >> 20
            ),
            format!("zstd level {} on data blocks", o.zstd_level),
            format!(
                "memtable {} MiB, block {} KiB, bloom {} bits/key",
                o.memtable_bytes >> 20,
                o.block_bytes >> 10,
                o.bloom_bits_per_key
            ),
            "object store: local directory; no WAL (by design)".into(),
            format!("writes committed every {BATCHES_PER_EPOCH} batches, in the background"),
        ],
        notes: vec![
            "settle = commit the open epoch + compact until idle".into(),
            "checkpoint = commit (flush memtables + manifest version)".into(),
            "delete-range = range tombstone in a write batch".into(),
        ],
    }
}

impl Riverbed {
    async fn await_pending(&mut self) -> Result<()> {
        if let Some(p) = self.pending.take() {
            p.await.context("commit task")??;
        }
        Ok(())
    }

    async fn commit_now(&mut self) -> Result<()> {
        self.await_pending().await?;
        self.store.commit(Epoch(self.epoch)).await?;
        self.epoch += 1;
        self.batches_in_epoch = 0;
        Ok(())
    }

    fn read_epoch(&self) -> Epoch {
        // The writer reads its own writes, committed or not.
        Epoch(self.epoch)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Engine for Riverbed {
    async fn open(dir: &Path) -> Result<Self> {
        let store = Store::open(options(dir)?).await?;
        let epoch = store.committed_epoch().0 + 1;
        Ok(Riverbed {
            store: Arc::new(store),
            epoch,
            batches_in_epoch: 0,
            pending: None,
        })
    }

    async fn put_batch(&mut self, batch: &[(Bytes, Bytes)]) -> Result<()> {
        let mut wb = WriteBatch::with_capacity(batch.len());
        for (k, v) in batch {
            wb.put(k, v);
        }
        self.store.write(Epoch(self.epoch), &wb).await?;
        self.batches_in_epoch += 1;
        if self.batches_in_epoch == BATCHES_PER_EPOCH {
            self.await_pending().await?;
            let (store, epoch) = (self.store.clone(), Epoch(self.epoch));
            self.pending = Some(tokio::spawn(async move { store.commit(epoch).await }));
            self.epoch += 1;
            self.batches_in_epoch = 0;
        }
        Ok(())
    }

    async fn delete_range(&mut self, start: &Bytes, end: &Bytes) -> Result<()> {
        let mut wb = WriteBatch::new();
        wb.delete_range(start.clone(), end.clone());
        self.store.write(Epoch(self.epoch), &wb).await?;
        Ok(())
    }

    async fn get(&mut self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.store.get(key, self.read_epoch()).await?)
    }

    async fn scan(&mut self, start: &[u8], limit: usize) -> Result<usize> {
        Ok(self
            .store
            .scan(start, None, self.read_epoch(), limit)
            .await?
            .len())
    }

    async fn settle(&mut self) -> Result<()> {
        self.commit_now().await?;
        self.store.compact_until_idle().await?;
        Ok(())
    }

    async fn checkpoint(&mut self, _dir: &Path) -> Result<()> {
        self.commit_now().await
    }

    async fn close(mut self) -> Result<()> {
        self.await_pending().await?;
        self.store.close().await?;
        Ok(())
    }
}
