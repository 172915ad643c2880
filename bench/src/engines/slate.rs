//! SlateDB through the `slatedb` crate (feature `slatedb`), over a local
//! directory as its object store, within the comparison's [`Budget`]: a
//! foyer block cache of its size, memtables frozen at its size with its
//! bound on unflushed bytes, bloom filters at its bits per key, its block
//! size, zstd (SlateDB's fixed level 3, which the budget takes), WAL off to
//! match ours.

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use slatedb::config::{CheckpointOptions, CheckpointScope, CompressionCodec, Settings};
use slatedb::db_cache::foyer::{FoyerCache, FoyerCacheOptions};
use slatedb::db_cache::{DbCache, SplitCache};
use slatedb::object_store::local::LocalFileSystem;
use slatedb::object_store::ObjectStore;
use slatedb::{BloomFilterPolicy, Db, SstBlockSize, WriteBatch};

use super::{Budget, Engine, EngineInfo};

/// SlateDB's zstd level (fixed in its block encoder).
pub const ZSTD_LEVEL: i32 = 3;

/// The `slatedb` crate version pinned in Cargo.toml.
pub const CRATE_VERSION: &str = "0.18.0";

pub struct Slate {
    db: Db,
}

pub fn info(budget: &Budget) -> EngineInfo {
    let mut differences = vec![
        "index and filter blocks go to a second foyer cache (SlateDB's default meta cache, \
         128 MiB); the others keep them in memory outside the block cache"
            .into(),
        "delete-range is emulated (scan + delete): SlateDB has no range delete".into(),
        "settle cannot wait for compaction: SlateDB offers no wait".into(),
    ];
    if budget.zstd_level != ZSTD_LEVEL {
        differences.push(format!(
            "zstd level {ZSTD_LEVEL}, not the budget's {}: SlateDB does not let it be set",
            budget.zstd_level
        ));
    }
    EngineInfo {
        name: "SlateDB",
        version: CRATE_VERSION,
        settings: vec![
            format!(
                "{} (foyer, in memory)",
                Budget::mib(budget.block_cache_bytes)
            ),
            format!(
                "{} (`l0_sst_size_bytes`, `max_unflushed_bytes`)",
                budget.write_buffer()
            ),
            format!(
                "{} bits/key (`BloomFilterPolicy`)",
                budget.bloom_bits_per_key
            ),
            Budget::mib(budget.block_bytes),
            format!("zstd level {ZSTD_LEVEL} (fixed)"),
            "crc32 per block (crc32fast: hardware, chosen at run time)".into(),
            format!(
                "compactor and flushes on the process's {} runtime threads",
                budget.background_threads
            ),
            "off (`wal_enabled = false`): ours has none".into(),
            format!(
                "`object_store` LocalFileSystem over a local directory (crate {CRATE_VERSION}, \
                 features zstd, wal_disable, foyer); reads pass the OS page cache"
            ),
        ],
        differences,
        notes: vec![
            "settle = flush memtable to L0".into(),
            "checkpoint = `create_checkpoint(CheckpointScope::All)`".into(),
            "delete-range = emulated: scan the range and delete each key in batches of 1,000"
                .into(),
        ],
    }
}

/// SlateDB's block size nearest above `bytes` (it takes powers of two).
fn block_size(bytes: usize) -> SstBlockSize {
    match bytes {
        0..=1024 => SstBlockSize::Block1Kib,
        1025..=2048 => SstBlockSize::Block2Kib,
        2049..=4096 => SstBlockSize::Block4Kib,
        4097..=8192 => SstBlockSize::Block8Kib,
        8193..=16384 => SstBlockSize::Block16Kib,
        16385..=32768 => SstBlockSize::Block32Kib,
        _ => SstBlockSize::Block64Kib,
    }
}

impl Engine for Slate {
    async fn open(dir: &Path, budget: &Budget) -> Result<Self> {
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(dir)?);
        let settings = Settings {
            wal_enabled: false,
            compression_codec: Some(CompressionCodec::Zstd),
            l0_sst_size_bytes: budget.memtable_bytes,
            max_unflushed_bytes: budget.memtable_bytes * budget.memtables,
            ..Settings::default()
        };
        let blocks: Arc<dyn DbCache> = Arc::new(FoyerCache::new_with_opts(FoyerCacheOptions {
            max_capacity: budget.block_cache_bytes as u64,
            ..FoyerCacheOptions::default()
        }));
        let cache: Arc<dyn DbCache> = Arc::new(
            SplitCache::new()
                .with_block_cache(Some(blocks))
                .with_meta_cache(Some(Arc::new(FoyerCache::new_with_opts(
                    FoyerCacheOptions {
                        max_capacity: 128 << 20,
                        ..FoyerCacheOptions::default()
                    },
                ))))
                .build(),
        );
        let db = Db::builder("db", store)
            .with_settings(settings)
            .with_db_cache(cache, 0)
            .with_filter_policies(vec![Arc::new(BloomFilterPolicy::new(
                budget.bloom_bits_per_key,
            ))])
            .with_sst_block_size(block_size(budget.block_bytes))
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
