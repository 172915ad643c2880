//! Counters of the engine, readable as a struct or as Prometheus text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub write_batches: AtomicU64,
    pub write_ops: AtomicU64,
    pub write_stalls: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_bytes: AtomicU64,
    pub compactions: AtomicU64,
    pub compaction_read_bytes: AtomicU64,
    pub compaction_write_bytes: AtomicU64,
    pub files_deleted: AtomicU64,
    pub commits: AtomicU64,
}

/// A point-in-time copy of [`Metrics`] plus cache and shape figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub write_batches: u64,
    pub write_ops: u64,
    pub write_stalls: u64,
    pub flushes: u64,
    pub flush_bytes: u64,
    pub compactions: u64,
    pub compaction_read_bytes: u64,
    pub compaction_write_bytes: u64,
    pub files_deleted: u64,
    pub commits: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub memtable_bytes: u64,
    pub files_per_level: Vec<usize>,
    pub bytes_per_level: Vec<u64>,
}

impl Metrics {
    pub fn add(c: &AtomicU64, v: u64) {
        c.fetch_add(v, Ordering::Relaxed);
    }

    pub(crate) fn fill(&self, s: &mut MetricsSnapshot) {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        s.write_batches = g(&self.write_batches);
        s.write_ops = g(&self.write_ops);
        s.write_stalls = g(&self.write_stalls);
        s.flushes = g(&self.flushes);
        s.flush_bytes = g(&self.flush_bytes);
        s.compactions = g(&self.compactions);
        s.compaction_read_bytes = g(&self.compaction_read_bytes);
        s.compaction_write_bytes = g(&self.compaction_write_bytes);
        s.files_deleted = g(&self.files_deleted);
        s.commits = g(&self.commits);
    }
}

impl MetricsSnapshot {
    /// Prometheus text exposition format.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP riverbed_store_{name} {help}\n# TYPE riverbed_store_{name} counter"
            );
            let _ = writeln!(out, "riverbed_store_{name} {v}");
        };
        counter(
            "write_batches_total",
            "Write batches applied.",
            self.write_batches,
        );
        counter(
            "write_ops_total",
            "Operations in applied write batches.",
            self.write_ops,
        );
        counter(
            "write_stalls_total",
            "Times a writer waited for flushes.",
            self.write_stalls,
        );
        counter("flushes_total", "Memtables flushed to SSTs.", self.flushes);
        counter(
            "flush_bytes_total",
            "Bytes of SSTs written by flushes.",
            self.flush_bytes,
        );
        counter(
            "compactions_total",
            "Compactions completed.",
            self.compactions,
        );
        counter(
            "compaction_read_bytes_total",
            "Bytes of input files compacted.",
            self.compaction_read_bytes,
        );
        counter(
            "compaction_write_bytes_total",
            "Bytes of files written by compaction.",
            self.compaction_write_bytes,
        );
        counter(
            "files_deleted_total",
            "Obsolete files deleted.",
            self.files_deleted,
        );
        counter("commits_total", "Epochs committed.", self.commits);
        counter(
            "block_cache_hits_total",
            "Block cache hits.",
            self.cache_hits,
        );
        counter(
            "block_cache_misses_total",
            "Block cache misses.",
            self.cache_misses,
        );
        let _ = writeln!(out, "# HELP riverbed_store_memtable_bytes Bytes held in memtables.\n# TYPE riverbed_store_memtable_bytes gauge\nriverbed_store_memtable_bytes {}", self.memtable_bytes);
        let _ = writeln!(out, "# HELP riverbed_store_level_files Files per level.\n# TYPE riverbed_store_level_files gauge");
        for (l, n) in self.files_per_level.iter().enumerate() {
            let _ = writeln!(out, "riverbed_store_level_files{{level=\"{l}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP riverbed_store_level_bytes Bytes per level.\n# TYPE riverbed_store_level_bytes gauge");
        for (l, n) in self.bytes_per_level.iter().enumerate() {
            let _ = writeln!(out, "riverbed_store_level_bytes{{level=\"{l}\"}} {n}");
        }
        out
    }
}
