//! Counters of the engine, readable as a struct or as Prometheus text.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub write_batches: AtomicU64,
    pub write_ops: AtomicU64,
    pub write_stalls: AtomicU64,
    pub write_slowdowns: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_bytes: AtomicU64,
    pub compactions: AtomicU64,
    pub compaction_parts: AtomicU64,
    pub l0_merges: AtomicU64,
    pub compactions_beside: AtomicU64,
    pub compaction_read_bytes: AtomicU64,
    pub compaction_write_bytes: AtomicU64,
    pub compaction_kept_bytes: AtomicU64,
    pub files_deleted: AtomicU64,
    pub commits: AtomicU64,
    /// What went through the object store (see `counted.rs`).
    pub objects: std::sync::Arc<crate::counted::ObjectCounters>,
}

/// Object-storage traffic of a store, counted since it was opened: how a
/// rescale or a restore shows that it copied no state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectStats {
    pub objects_read: u64,
    pub read_bytes: u64,
    pub objects_written: u64,
    pub written_bytes: u64,
    pub objects_deleted: u64,
    pub objects_copied: u64,
}

impl ObjectStats {
    /// The traffic between `earlier` and this.
    pub fn since(&self, earlier: &ObjectStats) -> ObjectStats {
        ObjectStats {
            objects_read: self.objects_read.saturating_sub(earlier.objects_read),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
            objects_written: self.objects_written.saturating_sub(earlier.objects_written),
            written_bytes: self.written_bytes.saturating_sub(earlier.written_bytes),
            objects_deleted: self.objects_deleted.saturating_sub(earlier.objects_deleted),
            objects_copied: self.objects_copied.saturating_sub(earlier.objects_copied),
        }
    }
}

/// A point-in-time copy of [`Metrics`] plus cache and shape figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub write_batches: u64,
    pub write_ops: u64,
    pub write_stalls: u64,
    /// Writes paced because compaction fell behind (see `write_pace.rs`).
    pub write_slowdowns: u64,
    pub flushes: u64,
    pub flush_bytes: u64,
    pub compactions: u64,
    /// Parts merged at once (see `compaction/executor.rs`): at least one per compaction.
    pub compaction_parts: u64,
    /// Compactions that merged small L0 files within L0 (see `compaction/picker.rs`).
    pub l0_merges: u64,
    /// Compactions that started while the other lane's ran (see
    /// `compaction/picker.rs`, `Lane`).
    pub compactions_beside: u64,
    pub compaction_read_bytes: u64,
    pub compaction_write_bytes: u64,
    /// Bytes of lower files compactions left in place instead of rewriting
    /// them (see `compaction/untouched.rs`).
    pub compaction_kept_bytes: u64,
    pub files_deleted: u64,
    pub commits: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub memtable_bytes: u64,
    pub objects_read: u64,
    pub object_read_bytes: u64,
    pub objects_written: u64,
    pub object_written_bytes: u64,
    pub objects_deleted: u64,
    pub objects_copied: u64,
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
        s.write_slowdowns = g(&self.write_slowdowns);
        s.flushes = g(&self.flushes);
        s.flush_bytes = g(&self.flush_bytes);
        s.compactions = g(&self.compactions);
        s.compaction_parts = g(&self.compaction_parts);
        s.l0_merges = g(&self.l0_merges);
        s.compactions_beside = g(&self.compactions_beside);
        s.compaction_read_bytes = g(&self.compaction_read_bytes);
        s.compaction_write_bytes = g(&self.compaction_write_bytes);
        s.compaction_kept_bytes = g(&self.compaction_kept_bytes);
        s.files_deleted = g(&self.files_deleted);
        s.commits = g(&self.commits);
        let o = &self.objects;
        s.objects_read = g(&o.reads);
        s.object_read_bytes = g(&o.read_bytes);
        s.objects_written = g(&o.writes);
        s.object_written_bytes = g(&o.written_bytes);
        s.objects_deleted = g(&o.deletes);
        s.objects_copied = g(&o.copies);
    }
}

impl MetricsSnapshot {
    /// The object-storage part.
    pub fn objects(&self) -> ObjectStats {
        ObjectStats {
            objects_read: self.objects_read,
            read_bytes: self.object_read_bytes,
            objects_written: self.objects_written,
            written_bytes: self.object_written_bytes,
            objects_deleted: self.objects_deleted,
            objects_copied: self.objects_copied,
        }
    }

    /// Prometheus text exposition format.
    pub fn to_prometheus(&self) -> String {
        prometheus_of(&[(String::new(), self.clone())])
    }
}

type Getter = fn(&MetricsSnapshot) -> u64;

/// Counters and gauges of a store: name, help, type, value.
const FAMILIES: [(&str, &str, &str, Getter); 24] = [
    (
        "write_batches_total",
        "Write batches applied.",
        "counter",
        |s| s.write_batches,
    ),
    (
        "write_ops_total",
        "Operations in applied write batches.",
        "counter",
        |s| s.write_ops,
    ),
    (
        "write_stalls_total",
        "Times a writer waited for flushes.",
        "counter",
        |s| s.write_stalls,
    ),
    (
        "write_slowdowns_total",
        "Writes paced because L0 files waited for compaction.",
        "counter",
        |s| s.write_slowdowns,
    ),
    (
        "flushes_total",
        "Memtables flushed to SSTs.",
        "counter",
        |s| s.flushes,
    ),
    (
        "flush_bytes_total",
        "Bytes of SSTs written by flushes.",
        "counter",
        |s| s.flush_bytes,
    ),
    (
        "compactions_total",
        "Compactions completed.",
        "counter",
        |s| s.compactions,
    ),
    (
        "compaction_parts_total",
        "Parts of compactions, each merged on its own task.",
        "counter",
        |s| s.compaction_parts,
    ),
    (
        "l0_merges_total",
        "Compactions that merged small L0 files into one L0 file.",
        "counter",
        |s| s.l0_merges,
    ),
    (
        "compactions_beside_total",
        "Compactions that started while the other lane's compaction ran.",
        "counter",
        |s| s.compactions_beside,
    ),
    (
        "compaction_read_bytes_total",
        "Bytes of input files compacted.",
        "counter",
        |s| s.compaction_read_bytes,
    ),
    (
        "compaction_write_bytes_total",
        "Bytes of files written by compaction.",
        "counter",
        |s| s.compaction_write_bytes,
    ),
    (
        "compaction_kept_bytes_total",
        "Bytes of lower-level files compactions left in place, none of the keys moved down falling in them.",
        "counter",
        |s| s.compaction_kept_bytes,
    ),
    (
        "files_deleted_total",
        "Obsolete files deleted.",
        "counter",
        |s| s.files_deleted,
    ),
    ("commits_total", "Epochs committed.", "counter", |s| {
        s.commits
    }),
    (
        "block_cache_hits_total",
        "Block cache hits.",
        "counter",
        |s| s.cache_hits,
    ),
    (
        "block_cache_misses_total",
        "Block cache misses.",
        "counter",
        |s| s.cache_misses,
    ),
    ("memtable_bytes", "Bytes held in memtables.", "gauge", |s| {
        s.memtable_bytes
    }),
    (
        "objects_read_total",
        "Object-store reads (GETs and ranges).",
        "counter",
        |s| s.objects_read,
    ),
    (
        "object_read_bytes_total",
        "Bytes read from the object store.",
        "counter",
        |s| s.object_read_bytes,
    ),
    (
        "objects_written_total",
        "Objects written to the object store.",
        "counter",
        |s| s.objects_written,
    ),
    (
        "object_written_bytes_total",
        "Bytes written to the object store.",
        "counter",
        |s| s.object_written_bytes,
    ),
    (
        "objects_deleted_total",
        "Objects deleted.",
        "counter",
        |s| s.objects_deleted,
    ),
    (
        "objects_copied_total",
        "Objects copied or renamed by the object store.",
        "counter",
        |s| s.objects_copied,
    ),
];

/// The metrics of several stores in one exposition, each family once;
/// `labels` is each store's label set without braces (`namespace="q5"`),
/// empty for none.
pub fn prometheus_of(stores: &[(String, MetricsSnapshot)]) -> String {
    let mut out = String::new();
    let join = |labels: &str, more: &str| {
        let all: Vec<&str> = [labels, more]
            .into_iter()
            .filter(|l| !l.is_empty())
            .collect();
        if all.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", all.join(","))
        }
    };
    for (name, help, kind, get) in FAMILIES {
        let _ = writeln!(
            out,
            "# HELP riverbed_store_{name} {help}\n# TYPE riverbed_store_{name} {kind}"
        );
        for (labels, s) in stores {
            let _ = writeln!(out, "riverbed_store_{name}{} {}", join(labels, ""), get(s));
        }
    }
    type PerLevel = fn(&MetricsSnapshot) -> Vec<u64>;
    let levels: [(&str, &str, PerLevel); 2] = [
        ("level_files", "Files per level.", |s| {
            s.files_per_level.iter().map(|&n| n as u64).collect()
        }),
        ("level_bytes", "Bytes per level.", |s| {
            s.bytes_per_level.clone()
        }),
    ];
    for (name, help, get) in levels {
        let _ = writeln!(
            out,
            "# HELP riverbed_store_{name} {help}\n# TYPE riverbed_store_{name} gauge"
        );
        for (labels, s) in stores {
            for (l, n) in get(s).iter().enumerate() {
                let level = format!("level=\"{l}\"");
                let _ = writeln!(out, "riverbed_store_{name}{} {n}", join(labels, &level));
            }
        }
    }
    out
}
