//! Where a run's results go: counted always (changelog rows, and the net
//! rows of the final table they build; a resumed run counts its own); with
//! `--output`, written as JSON lines (one file per subtask, the changelog
//! kind as `"op"`); for q10, written as CSV files partitioned by `dt` and
//! `hm`, like the suite's filesystem sink
//! (`<dir>/bid/dt=2015-07-15/hm=00:05/part-<subtask>.csv`, partition
//! columns in the path, not in the file). Files are written with two-phase
//! commit (`txn_files.rs`): exactly once across a kill and a resume.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use riverbed_compute::sink::Sink;
use riverbed_compute::{Change, RowKind};

use super::txn_files::TxnFiles;
use crate::row::{Row, Value};

/// The Flink-style changelog tag of a kind.
pub fn op(kind: RowKind) -> &'static str {
    match kind {
        RowKind::Insert => "+I",
        RowKind::UpdateBefore => "-U",
        RowKind::UpdateAfter => "+U",
        RowKind::Delete => "-D",
    }
}

fn io_error(path: &Path, e: std::io::Error) -> riverbed_compute::Error {
    riverbed_compute::Error::Io {
        what: path.display().to_string(),
        source: e,
    }
}

/// What the sinks of a query received, summed over subtasks.
#[derive(Debug, Default)]
pub struct RowCounts {
    /// Changelog rows (every insert, update and delete).
    pub changes: AtomicU64,
    /// Rows of the final table: inserts and update-afters add one,
    /// update-befores and deletes take one away.
    pub net: AtomicI64,
    /// The process's age when the first row came: see
    /// [`super::report::QueryReport::first_output_ms`].
    pub first_output: std::sync::OnceLock<Option<std::time::Duration>>,
}

impl RowCounts {
    /// Counts a batch of changes of these kinds.
    pub fn count(&self, kinds: impl Iterator<Item = RowKind>) {
        let (mut changes, mut net) = (0u64, 0i64);
        for kind in kinds {
            changes += 1;
            net += match kind {
                RowKind::Insert | RowKind::UpdateAfter => 1,
                RowKind::UpdateBefore | RowKind::Delete => -1,
            };
        }
        self.changes.fetch_add(changes, Ordering::Relaxed);
        self.net.fetch_add(net, Ordering::Relaxed);
        if changes > 0 && self.first_output.get().is_none() {
            let _ = self.first_output.set(super::report::process_age());
        }
    }
}

/// One subtask's result sink: the rows it counts and, when writing files,
/// its files with two-phase commit (`txn_files.rs`) under one root.
pub struct ResultSink {
    counts: Arc<RowCounts>,
    columns: &'static [&'static str],
    subtask: usize,
    files: Option<TxnFiles>,
    /// Write the changelog as JSON lines (`part-<subtask>.jsonl`).
    json: bool,
    /// Write q10's partitioned CSV files (`bid/dt=…/hm=…/part-<subtask>.csv`).
    partitioned: bool,
    /// The relative path of each partition's file, by `(dt, hm)`.
    partitions: HashMap<(String, String), PathBuf>,
    line: String,
}

/// Where a sink subtask writes, and how.
#[derive(Clone, Debug)]
pub struct SinkFiles {
    /// The root of the query's files.
    pub root: PathBuf,
    pub json: bool,
    pub partitioned: bool,
    /// The checkpoint a resumed run starts from: the files are cut back to
    /// what it staged first.
    pub resume: Option<riverbed_state_store::Epoch>,
}

impl ResultSink {
    /// A sink counting into `counts`, and writing files as `files` says.
    pub fn create(
        subtask: usize,
        counts: Arc<RowCounts>,
        columns: &'static [&'static str],
        files: Option<&SinkFiles>,
    ) -> riverbed_compute::Result<Self> {
        let mut txn = files
            .map(|f| TxnFiles::open(&f.root, subtask, f.resume))
            .transpose()?;
        // Every subtask has its JSON file, empty when it wrote nothing.
        if let (Some(t), true) = (&mut txn, files.is_some_and(|f| f.json)) {
            t.file(Path::new(&format!("part-{subtask}.jsonl")))?;
        }
        Ok(ResultSink {
            counts,
            columns,
            subtask,
            files: txn,
            json: files.is_some_and(|f| f.json),
            partitioned: files.is_some_and(|f| f.partitioned),
            partitions: HashMap::new(),
            line: String::new(),
        })
    }

    fn write_partitioned(&mut self, row: &Row) -> riverbed_compute::Result<()> {
        let n = row.0.len();
        let (Value::Str(dt), Value::Str(hm)) = (&row.0[n - 2], &row.0[n - 1]) else {
            return Ok(());
        };
        let subtask = self.subtask;
        let rel = self
            .partitions
            .entry((dt.clone(), hm.clone()))
            .or_insert_with(|| {
                Path::new("bid")
                    .join(format!("dt={dt}"))
                    .join(format!("hm={hm}"))
                    .join(format!("part-{subtask}.csv"))
            })
            .clone();
        self.line.clear();
        for (i, v) in row.0[..n - 2].iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            write_csv(v, &mut self.line);
        }
        self.line.push('\n');
        let out = self
            .files
            .as_mut()
            .expect("partitioned sinks write files")
            .file(&rel)?;
        out.write_all(self.line.as_bytes())
            .map_err(|e| io_error(&rel, e))
    }
}

impl Sink<Change<Row>> for ResultSink {
    fn write(&mut self, batch: Vec<Change<Row>>) -> riverbed_compute::Result<()> {
        self.counts.count(batch.iter().map(|c| c.kind));
        if self.json {
            let rel = PathBuf::from(format!("part-{}.jsonl", self.subtask));
            let out = self
                .files
                .as_mut()
                .expect("json sinks write files")
                .file(&rel)?;
            for c in &batch {
                self.line.clear();
                c.row.to_json(op(c.kind), self.columns, &mut self.line);
                self.line.push('\n');
                out.write_all(self.line.as_bytes())
                    .map_err(|e| io_error(&rel, e))?;
            }
        }
        if self.partitioned {
            for c in &batch {
                self.write_partitioned(&c.row)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> riverbed_compute::Result<()> {
        match &mut self.files {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }

    fn pre_commit(&mut self, epoch: riverbed_state_store::Epoch) -> riverbed_compute::Result<()> {
        match &mut self.files {
            Some(f) => f.pre_commit(epoch),
            None => Ok(()),
        }
    }

    fn commit(&mut self, epoch: riverbed_state_store::Epoch) -> riverbed_compute::Result<()> {
        match &mut self.files {
            Some(f) => f.commit(epoch),
            None => Ok(()),
        }
    }

    fn hold(&mut self, lease: Arc<riverbed_compute::runtime::lease::Lease>) {
        if let Some(f) = &mut self.files {
            f.hold(lease);
        }
    }
}

/// A CSV field: strings quoted when they hold a comma, quote or newline.
fn write_csv(v: &Value, out: &mut String) {
    match v {
        Value::Str(s) if s.contains([',', '"', '\n', '\r']) => {
            out.push('"');
            out.push_str(&s.replace('"', "\"\""));
            out.push('"');
        }
        Value::Str(s) => out.push_str(s),
        Value::Time(_) => {
            let mut json = String::new();
            v.write_json(&mut json);
            out.push_str(json.trim_matches('"'));
        }
        other => other.write_json(out),
    }
}
