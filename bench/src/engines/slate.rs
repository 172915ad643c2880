//! SlateDB through the `slatedb` crate (feature `slatedb`), over a local
//! directory as its object store, zstd, WAL off to match ours.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use slatedb::config::{CheckpointOptions, CheckpointScope, CompressionCodec, Settings};
use slatedb::object_store::local::LocalFileSystem;
use slatedb::object_store::ObjectStore;
use slatedb::{Db, WriteBatch};

use super::{Engine, EngineInfo};

/// The `slatedb` crate version pinned in Cargo.toml.
pub const CRATE_VERSION: &str = "0.18.0";

pub struct Slate {
    db: Db,
}

pub fn info() -> EngineInfo {
    EngineInfo {
        name: "SlateDB",
        version: CRATE_VERSION,
        settings: vec![
            format!("`slatedb` crate {CRATE_VERSION}, features zstd, wal_disable, foyer"),
            "object store: `object_store` LocalFileSystem over a local directory".into(),
            "compression zstd; WAL off (`wal_enabled = false`): ours has none".into(),
            "default block cache (foyer, 512 MiB), default L0 SST size (64 MiB), default compactor".into(),
        ],
        notes: vec![
            "settle = flush memtable to L0 (SlateDB offers no wait for compaction)".into(),
            "checkpoint = `create_checkpoint(CheckpointScope::All)`".into(),
            "delete-range = emulated: scan the range and delete each key in batches of 1,000 (SlateDB has no range delete)".into(),
        ],
    }
}

impl Engine for Slate {
    async fn open(dir: &Path) -> Result<Self> {
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir)?);
        let settings = Settings {
            wal_enabled: false,
            compression_codec: Some(CompressionCodec::Zstd),
            ..Settings::default()
        };
        let db = Db::builder("db", store)
            .with_settings(settings)
            .build()
            .await?;
        Ok(Slate { db })
    }

    async fn put_batch(&mut self, batch: &[(Bytes, Bytes)]) -> Result<()> {
        let mut wb = WriteBatch::new();
        for (k, v) in batch {
            wb.put_bytes(k.clone(), v.clone());
        }
        self.db.write(wb).await?;
        Ok(())
    }

    async fn delete_range(&mut self, start: &Bytes, end: &Bytes) -> Result<()> {
        let mut it = self.db.scan(start.clone()..end.clone()).await?;
        let mut wb = WriteBatch::new();
        let mut in_batch = 0;
        while let Some(kv) = it.next().await? {
            wb.delete(&kv.key);
            in_batch += 1;
            if in_batch == 1000 {
                self.db.write(std::mem::take(&mut wb)).await?;
                in_batch = 0;
            }
        }
        if in_batch > 0 {
            self.db.write(wb).await?;
        }
        Ok(())
    }

    async fn get(&mut self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.db.get(key).await?)
    }

    async fn scan(&mut self, start: &[u8], limit: usize) -> Result<usize> {
        let mut it = self.db.scan(Bytes::copy_from_slice(start)..).await?;
        let mut n = 0;
        while n < limit {
            match it.next().await? {
                Some(kv) => {
                    std::hint::black_box(kv);
                    n += 1;
                }
                None => break,
            }
        }
        Ok(n)
    }

    async fn settle(&mut self) -> Result<()> {
        self.db.flush().await?;
        Ok(())
    }

    async fn checkpoint(&mut self, _dir: &Path) -> Result<()> {
        self.db
            .create_checkpoint(CheckpointScope::All, &CheckpointOptions::default())
            .await?;
        Ok(())
    }

    async fn close(self) -> Result<()> {
        self.db.close().await?;
        Ok(())
    }
}
