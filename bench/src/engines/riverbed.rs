//! Our store, embedded, on a local directory as its object store.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use riverbed_state_store::{Epoch, Options, Store, WriteBatch};
use tokio::task::JoinHandle;

use super::{Budget, Engine, EngineInfo};

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

/// Our store's options within `budget`: the block cache, the memtable size
/// and the memory bound of all memtables, bloom bits, block size and zstd
/// level are the budget's, and zstd is used on every level as the other
/// engines are set to; the rest are the defaults of `Options`.
pub fn options(dir: &Path, budget: &Budget) -> Result<Options> {
    let url = dir.to_str().context("state directory is not UTF-8")?;
    Ok(Options {
        block_cache_bytes: budget.block_cache_bytes,
        memtable_bytes: budget.memtable_bytes,
        max_memory_bytes: budget.memtable_bytes * budget.memtables,
        bloom_bits_per_key: budget.bloom_bits_per_key as usize,
        block_bytes: budget.block_bytes,
        compression_per_level: vec![riverbed_state_store::sst::Compression::Zstd],
        zstd_level: budget.zstd_level,
        ..Options::with_url(url)
    })
}

pub fn info(budget: &Budget) -> EngineInfo {
    EngineInfo {
        name: "Riverbed",
        version: env!("CARGO_PKG_VERSION"),
        settings: vec![
            format!(
                "{} (foyer, in memory)",
                Budget::mib(budget.block_cache_bytes)
            ),
            format!(
                "{} (`memtable_bytes`, `max_memory_bytes`)",
                budget.write_buffer()
            ),
            format!("{} bits/key", budget.bloom_bits_per_key),
            Budget::mib(budget.block_bytes),
            format!("zstd level {} on every level", budget.zstd_level),
            "crc32 per block (crc32fast: the hardware instruction, chosen at run time)".into(),
            format!(
                "flush and compaction tasks on the process's {} runtime threads",
                budget.background_threads
            ),
            "none (by design: sources replay the uncommitted tail)".into(),
            "object store on a local directory; reads pass the OS page cache".into(),
        ],
        differences: vec![format!(
            "writes are committed (a manifest version, as at a checkpoint) every \
             {BATCHES_PER_EPOCH} batches, in the background: that is how the compute layer \
             writes; the other engines have no such step"
        )],
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
    async fn open(dir: &Path, budget: &Budget) -> Result<Self> {
        let store = Store::open(options(dir, budget)?).await?;
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
