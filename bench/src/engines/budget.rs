//! The resources every engine of the comparison gets, so that a ratio
//! measures the engines and not their defaults.
//!
//! Each engine maps the budget onto its own settings (its module says how)
//! and reports, setting by setting, what it runs with; what cannot be made
//! equal is listed with the reason (`EngineInfo::differences`).

use serde::Serialize;

/// Memory, threads and file layout given to each engine alike.
#[derive(Clone, Debug, Serialize)]
pub struct Budget {
    /// Cache of decompressed data blocks, in bytes. 256 MiB: a fifth of the
    /// largest data set, so uniform reads miss and hot ones hit.
    pub block_cache_bytes: usize,
    /// A memtable (write buffer) is frozen and flushed at this size.
    pub memtable_bytes: usize,
    /// Memtables that may be held at once (the one being filled and those
    /// waiting for their flush): writers wait beyond that.
    pub memtables: usize,
    /// Bloom filter bits per key, on every table file.
    pub bloom_bits_per_key: u32,
    /// Uncompressed size of a data block.
    pub block_bytes: usize,
    /// zstd level of data blocks. 3: SlateDB's, which it does not let a user
    /// change, so the others take it too.
    pub zstd_level: i32,
    /// Threads for flushes and compactions (the machine's two cores).
    pub background_threads: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            block_cache_bytes: 256 << 20,
            memtable_bytes: 32 << 20,
            memtables: 4,
            bloom_bits_per_key: 10,
            block_bytes: 16 << 10,
            zstd_level: 3,
            background_threads: 2,
        }
    }
}

/// The settings the report lists side by side, one row each, in order.
pub const SETTING_ROWS: &[&str] = &[
    "block cache",
    "write buffer",
    "bloom filter",
    "data block",
    "compression",
    "block checksums",
    "background work",
    "write-ahead log",
    "files",
];

impl Budget {
    /// `256 MiB`.
    pub fn mib(bytes: usize) -> String {
        if bytes >= 1 << 20 {
            format!("{} MiB", bytes >> 20)
        } else {
            format!("{} KiB", bytes >> 10)
        }
    }

    /// The write buffer row: `32 MiB × 4 (128 MiB)`.
    pub fn write_buffer(&self) -> String {
        format!(
            "{} × {} ({})",
            Self::mib(self.memtable_bytes),
            self.memtables,
            Self::mib(self.memtable_bytes * self.memtables)
        )
    }
}
