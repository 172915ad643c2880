//! RocksDB through the `rocksdb` crate (feature `rocksdb`), within the
//! comparison's [`Budget`]: an LRU block cache of the budget's size, write
//! buffers of its size and number, a full bloom filter at its bits per key,
//! its block size, zstd at its level on every level, its background jobs;
//! the WAL off, since ours has none. Everything else is RocksDB's default.

use std::path::Path;

use anyhow::Result;
use bytes::Bytes;
use rocksdb::checkpoint::Checkpoint;
use rocksdb::{
    BlockBasedOptions, Cache, DBCompressionType, Options, WaitForCompactOptions, WriteBatch,
    WriteOptions, DB,
};

use super::{Budget, Engine, EngineInfo};

/// The `rocksdb` crate version pinned in Cargo.toml.
pub const CRATE_VERSION: &str = "0.25.0";

pub struct Rocks {
    db: DB,
    write_opts: WriteOptions,
    /// The block cache the table options point at (kept for the DB's life).
    _cache: Cache,
}

/// What RocksDB's own log says of its CRC32C in this build ("Supported on
/// x86" when built with SSE4.2): a probe database in a temp directory,
/// opened once. Without the hardware instruction every block read from a
/// file is checksummed in software, where ours uses the instruction;
/// `.cargo/config.toml` gives the C++ build SSE4.2.
pub fn fast_crc32() -> String {
    let probe = || -> Option<String> {
        let dir = tempfile::tempdir().ok()?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        drop(DB::open(&opts, dir.path()).ok()?);
        let log = std::fs::read_to_string(dir.path().join("LOG")).ok()?;
        let line = log.lines().find(|l| l.contains("Fast CRC32 supported:"))?;
        Some(
            line.split("Fast CRC32 supported:")
                .nth(1)?
                .trim()
                .to_string(),
        )
    };
    probe().unwrap_or_else(|| "unknown (RocksDB's LOG did not say)".into())
}

pub fn info(budget: &Budget) -> EngineInfo {
    let crc = fast_crc32();
    let mut differences = vec![
        "compaction is each engine's own policy: RocksDB's leveled compaction with its \
         default triggers and dynamic level sizes (data settles in its last level)"
            .into(),
    ];
    if !crc.starts_with("Supported") {
        differences.push(format!(
            "this build of RocksDB has no hardware CRC32C ({crc}): every block it reads from a \
             file is checksummed in software, so its reads are slower than the library can be; \
             build with `CXXFLAGS=\"-msse4.2 -mpclmul\"` (`.cargo/config.toml` sets it)"
        ));
    }
    EngineInfo {
        name: "RocksDB",
        version: CRATE_VERSION,
        settings: vec![
            format!(
                "{} (LRU, `set_block_cache`; index and filter blocks outside it, the default)",
                Budget::mib(budget.block_cache_bytes)
            ),
            format!(
                "{} (`write_buffer_size`, `max_write_buffer_number`)",
                budget.write_buffer()
            ),
            format!(
                "{} bits/key, full filter (`BlockBasedOptions::set_bloom_filter`)",
                budget.bloom_bits_per_key
            ),
            Budget::mib(budget.block_bytes),
            format!("zstd level {} on every level", budget.zstd_level),
            format!("crc32c per block: {crc} (this build)"),
            format!("`max_background_jobs` {}", budget.background_threads),
            "off (`WriteOptions::disable_wal`): ours has none".into(),
            format!(
                "local files, bundled RocksDB C++ library built from source (crate {CRATE_VERSION}); \
                 reads pass the OS page cache"
            ),
        ],
        differences,
        notes: vec![
            "settle = flush memtables + wait_for_compact".into(),
            "checkpoint = `Checkpoint::create_checkpoint` (flush + hard links)".into(),
            "delete-range = `WriteBatch::delete_range`".into(),
        ],
    }
}

impl Engine for Rocks {
    async fn open(dir: &Path, budget: &Budget) -> Result<Self> {
        let cache = Cache::new_lru_cache(budget.block_cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(f64::from(budget.bloom_bits_per_key), false);
        table.set_block_size(budget.block_bytes);
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_block_based_table_factory(&table);
        opts.set_write_buffer_size(budget.memtable_bytes);
        opts.set_max_write_buffer_number(budget.memtables as i32);
        opts.set_compression_type(DBCompressionType::Zstd);
        // window bits -14 and no dictionary are RocksDB's defaults.
        opts.set_compression_options(-14, budget.zstd_level, 0, 0);
        opts.set_max_background_jobs(budget.background_threads as i32);
        let db = DB::open(&opts, dir)?;
        let mut write_opts = WriteOptions::default();
        write_opts.disable_wal(true);
        Ok(Rocks {
            db,
            write_opts,
            _cache: cache,
        })
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
