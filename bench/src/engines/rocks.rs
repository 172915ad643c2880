//! RocksDB through the `rocksdb` crate (feature `rocksdb`): its defaults, with
//! compression set to zstd to match ours and the WAL off, since ours has none.

use std::path::Path;

use anyhow::Result;
use bytes::Bytes;
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{DBCompressionType, Options, WaitForCompactOptions, WriteBatch, WriteOptions, DB};

use super::{Engine, EngineInfo};

/// The `rocksdb` crate version pinned in Cargo.toml.
pub const CRATE_VERSION: &str = "0.25.0";

pub struct Rocks {
    db: DB,
    write_opts: WriteOptions,
}

pub fn info() -> EngineInfo {
    EngineInfo {
        name: "RocksDB",
        version: CRATE_VERSION,
        settings: vec![
            format!(
                "`rocksdb` crate {CRATE_VERSION} (bundled RocksDB C++ library, built from source)"
            ),
            "compression zstd on every level (to match ours); everything else default".into(),
            "default block cache (the library's default LRU cache, 32 MiB)".into(),
            "default write buffer (64 MiB), default background jobs".into(),
            "WAL off (`WriteOptions::disable_wal(true)`): ours has none".into(),
            "local filesystem (reads also go through the OS page cache)".into(),
        ],
        notes: vec![
            "settle = flush memtables + wait_for_compact".into(),
            "checkpoint = `Checkpoint::create_checkpoint` (flush + hard links)".into(),
            "delete-range = `WriteBatch::delete_range`".into(),
        ],
    }
}

impl Engine for Rocks {
    async fn open(dir: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(DBCompressionType::Zstd);
        let db = DB::open(&opts, dir)?;
        let mut write_opts = WriteOptions::default();
        write_opts.disable_wal(true);
        Ok(Rocks { db, write_opts })
    }

    async fn put_batch(&mut self, batch: &[(Bytes, Bytes)]) -> Result<()> {
        let mut wb = WriteBatch::default();
        for (k, v) in batch {
            wb.put(k, v);
        }
        self.db.write_opt(wb, &self.write_opts)?;
        Ok(())
    }

    async fn delete_range(&mut self, start: &Bytes, end: &Bytes) -> Result<()> {
        let mut wb = WriteBatch::default();
        wb.delete_range(start, end);
        self.db.write_opt(wb, &self.write_opts)?;
        Ok(())
    }

    async fn get(&mut self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.db.get_pinned(key)?.map(|v| Bytes::copy_from_slice(&v)))
    }

    async fn scan(&mut self, start: &[u8], limit: usize) -> Result<usize> {
        let mut it = self.db.raw_iterator();
        it.seek(start);
        let mut n = 0;
        while n < limit && it.valid() {
            // Copy out as the other engines hand back owned entries.
            let kv = (
                Bytes::copy_from_slice(it.key().unwrap_or_default()),
                Bytes::copy_from_slice(it.value().unwrap_or_default()),
            );
            std::hint::black_box(kv);
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }

    async fn settle(&mut self) -> Result<()> {
        self.db.flush()?;
        self.db
            .wait_for_compact(&WaitForCompactOptions::default())?;
        Ok(())
    }

    async fn checkpoint(&mut self, dir: &Path) -> Result<()> {
        Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }

    async fn close(self) -> Result<()> {
        drop(self.db);
        Ok(())
    }
}
