//! Settings of the engine: one documented struct with defaults, loadable from
//! TOML. Every default says why it is what it is.

use serde::Deserialize;

use crate::error::{Error, Result};

/// How the engine uses memory, files and background work.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// Where files and the manifest live: a local directory path (the
    /// embedded default), `file:///path`, or `s3://bucket/prefix`.
    pub url: String,
    /// S3 settings used when `url` is `s3://`; unset fields come from the
    /// usual `AWS_*` environment variables.
    pub s3: S3Options,
    /// The namespace (one per job sharing the store) this handle opens:
    /// its files and manifest live under `<url>/ns/<namespace>/`.
    pub namespace: String,
    /// A memtable is frozen and flushed once it holds this many bytes.
    /// 32 MiB makes L0 files large enough that an object-store PUT costs little
    /// per byte, yet small enough that a flush finishes in well under a second.
    pub memtable_bytes: usize,
    /// Writers wait (never fail) once memtables hold this much in total, until
    /// the flusher catches up. 4 memtables' worth lets one flush run while
    /// writers keep filling others.
    pub max_memory_bytes: usize,
    /// Uncompressed size of a data block. 16 KiB keeps a point read's block
    /// fetch cheap on a miss while letting zstd find redundancy.
    pub block_bytes: usize,
    /// Entries between restart points inside a block: the binary search
    /// granularity of a point read.
    pub restart_interval: usize,
    /// Bloom filter bits per key: 10 gives about 1% false positives.
    pub bloom_bits_per_key: usize,
    /// The codec of each level's data blocks: entry 0 for L0 (checkpoint
    /// flushes), entry 1 for L1, and so on; levels past the list use its last
    /// entry. `["lz4", "lz4", "zstd"]`: L0 and L1 take most of the writes and
    /// hold little of the data, so they get the codec that costs the least CPU
    /// (zstd there was a fifth of a checkpointing job's CPU); the deeper
    /// levels hold most of the bytes and get zstd's ratio. `"none"` stores
    /// blocks as they are.
    pub compression_per_level: Vec<crate::sst::Compression>,
    /// zstd level for the levels that use zstd. Level 1 compresses at
    /// hundreds of MB/s, so compaction stays I/O-bound, not CPU-bound.
    pub zstd_level: i32,
    /// Compaction output files are cut at this size. 64 MiB: few objects per GB.
    pub sst_target_bytes: u64,
    /// Parts one compaction is cut into and merged at once (see
    /// `compaction/executor.rs`). 2: the machines Riverbed is measured on
    /// have two cores, and a compaction in two parts takes half as long to
    /// let the L0 compaction that writers wait for start.
    pub subcompactions: usize,
    /// Committed L0 files that trigger an L0 → L1 compaction.
    pub l0_compaction_trigger: usize,
    /// Writes are paced (see `write_pace.rs`) while this many committed L0
    /// files wait for compaction (with background compaction on), so that
    /// the backlog levels off before the hard stop below. 12: three L0
    /// compactions' worth behind, well before the stop.
    pub l0_slowdown_writes_files: usize,
    /// The pace writes start at once slowed, in bytes per second; it then
    /// adapts to what compaction keeps up with. 16 MiB/s, RocksDB's
    /// `delayed_write_rate` default.
    pub delayed_write_bytes_per_sec: u64,
    /// Writers wait while this many committed L0 files wait for compaction
    /// (with background compaction on). Without it, a write rate above what
    /// compaction sustains piles up L0 files and every read probes them all;
    /// 36 matches RocksDB's stop trigger.
    pub l0_stop_writes_files: usize,
    /// Size target of L1; each deeper level is `level_multiplier` times larger.
    pub level_base_bytes: u64,
    pub level_multiplier: u64,
    /// Deepest level (L1..=max_levels).
    pub max_levels: usize,
    /// Capacity of the in-memory block cache (decompressed blocks).
    pub block_cache_bytes: usize,
    /// Run flushes and compactions in background tasks. Tests that want to
    /// drive every step by hand turn it off; flush and commit still work.
    pub background_compaction: bool,
    /// Checkpoints whose metadata the manifest keeps, newest last. 3, as
    /// Flink's `state.checkpoints.num-retained` default is 1 and users who
    /// roll back want a few to choose from.
    pub retained_checkpoints: usize,
}

/// Connection settings for an S3-compatible object store.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            url: "riverbed-data".into(),
            s3: S3Options::default(),
            namespace: crate::namespace::DEFAULT.into(),
            memtable_bytes: 32 << 20,
            max_memory_bytes: 128 << 20,
            block_bytes: 16 << 10,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            compression_per_level: {
                use crate::sst::Compression::{Lz4, Zstd};
                vec![Lz4, Lz4, Zstd]
            },
            zstd_level: 1,
            sst_target_bytes: 64 << 20,
            subcompactions: 2,
            l0_compaction_trigger: 4,
            l0_slowdown_writes_files: 12,
            delayed_write_bytes_per_sec: 16 << 20,
            l0_stop_writes_files: 36,
            level_base_bytes: 256 << 20,
            level_multiplier: 10,
            max_levels: 6,
            block_cache_bytes: 256 << 20,
            background_compaction: true,
            retained_checkpoints: 3,
        }
    }
}

impl Options {
    /// Options for `url` with every other setting at its default.
    pub fn with_url(url: impl Into<String>) -> Self {
        Options {
            url: url.into(),
            ..Options::default()
        }
    }

    /// Parses TOML; unknown keys are an error so a typo is not silently ignored.
    pub fn from_toml(text: &str) -> Result<Self> {
        let opts: Options = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        opts.validate()?;
        Ok(opts)
    }

    pub fn validate(&self) -> Result<()> {
        let check = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::Config(what.to_string()))
            }
        };
        check(
            self.memtable_bytes >= 1024,
            "memtable_bytes must be at least 1024",
        )?;
        check(
            self.max_memory_bytes >= self.memtable_bytes,
            "max_memory_bytes must be at least memtable_bytes",
        )?;
        check(self.block_bytes >= 64, "block_bytes must be at least 64")?;
        check(
            !self.compression_per_level.is_empty(),
            "compression_per_level must name at least one codec (none, lz4 or zstd)",
        )?;
        let zstd_levels = zstd::compression_level_range();
        check(
            zstd_levels.contains(&self.zstd_level),
            &format!(
                "zstd_level must be in {}..={}",
                zstd_levels.start(),
                zstd_levels.end()
            ),
        )?;
        check(
            self.restart_interval >= 1,
            "restart_interval must be at least 1",
        )?;
        check(
            (1..=64).contains(&self.bloom_bits_per_key),
            "bloom_bits_per_key must be in 1..=64",
        )?;
        check(
            self.sst_target_bytes >= 1024,
            "sst_target_bytes must be at least 1024",
        )?;
        check(
            (1..=64).contains(&self.subcompactions),
            "subcompactions must be in 1..=64",
        )?;
        check(
            self.l0_compaction_trigger >= 1,
            "l0_compaction_trigger must be at least 1",
        )?;
        check(
            (1..=self.l0_stop_writes_files).contains(&self.l0_slowdown_writes_files),
            "l0_slowdown_writes_files must be in 1..=l0_stop_writes_files",
        )?;
        check(
            self.delayed_write_bytes_per_sec >= 1 << 20,
            "delayed_write_bytes_per_sec must be at least 1048576 (1 MiB/s)",
        )?;
        check(
            self.level_multiplier >= 2,
            "level_multiplier must be at least 2",
        )?;
        check(
            (1..=16).contains(&self.max_levels),
            "max_levels must be in 1..=16",
        )?;
        check(
            (1..=1000).contains(&self.retained_checkpoints),
            "retained_checkpoints must be in 1..=1000",
        )?;
        crate::namespace::validate(&self.namespace)?;
        check(!self.url.is_empty(), "url must not be empty")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_rejects_typos() {
        let o =
            Options::from_toml("url = \"s3://b/p\"\nmemtable_bytes = 4096\n[s3]\nregion = \"x\"")
                .unwrap();
        assert_eq!(o.memtable_bytes, 4096);
        assert_eq!(o.s3.region.as_deref(), Some("x"));
        assert_eq!(o.block_bytes, Options::default().block_bytes);
        assert!(Options::from_toml("memtable_byte = 1").is_err());
        assert!(Options::from_toml("memtable_bytes = 1").is_err());
    }

    #[test]
    fn compression_is_chosen_per_level_by_name() {
        use crate::sst::Compression::*;
        let o = Options::from_toml("compression_per_level = [\"none\", \"zstd\"]").unwrap();
        assert_eq!(o.compression_per_level, vec![None, Zstd]);
        assert_eq!(
            Options::default().compression_per_level,
            vec![Lz4, Lz4, Zstd]
        );
        let err = |t: &str| Options::from_toml(t).unwrap_err().to_string();
        assert!(err("compression_per_level = []").contains("at least one codec"));
        assert!(err("compression_per_level = [\"snappy\"]").contains("snappy"));
        assert!(err("zstd_level = 23").contains("zstd_level"));
    }
}
