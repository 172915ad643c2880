//! Where a run's results go: counted always (changelog rows, and the net
//! rows of the final table they build); with `--output`, written as
//! JSON lines (one file per subtask, the changelog kind as `"op"`); for
//! q10, written as CSV files partitioned by `dt` and `hm`, like the suite's
//! filesystem sink (`<dir>/dt=2015-07-15/hm=00:05/part-<subtask>.csv`,
//! partition columns in the path, not in the file).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use riverbed_compute::sink::Sink;
use riverbed_compute::{Change, RowKind};

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
    }
}

/// One subtask's result sink.
pub struct ResultSink {
    counts: Arc<RowCounts>,
    columns: &'static [&'static str],
    json: Option<(PathBuf, BufWriter<File>)>,
    partitions: Option<Partitioned>,
    line: String,
}

impl ResultSink {
    /// A sink counting into `counts`, writing JSON lines into `json_dir` and
    /// partitioned CSV into `partition_dir` when given.
    pub fn create(
        subtask: usize,
        counts: Arc<RowCounts>,
        columns: &'static [&'static str],
        json_dir: Option<&Path>,
        partition_dir: Option<&Path>,
    ) -> riverbed_compute::Result<Self> {
        let json = match json_dir {
            Some(dir) => {
                fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
                let path = dir.join(format!("part-{subtask}.jsonl"));
                let file = File::create(&path).map_err(|e| io_error(&path, e))?;
                Some((path, BufWriter::with_capacity(1 << 20, file)))
            }
            None => None,
        };
        Ok(ResultSink {
            counts,
            columns,
            json,
            partitions: partition_dir.map(|d| Partitioned {
                dir: d.to_path_buf(),
                subtask,
                files: HashMap::new(),
            }),
            line: String::new(),
        })
    }
}

impl Sink<Change<Row>> for ResultSink {
    fn write(&mut self, batch: Vec<Change<Row>>) -> riverbed_compute::Result<()> {
        self.counts.count(batch.iter().map(|c| c.kind));
        if let Some((path, out)) = &mut self.json {
            for c in &batch {
                self.line.clear();
                c.row.to_json(op(c.kind), self.columns, &mut self.line);
                self.line.push('\n');
                out.write_all(self.line.as_bytes())
                    .map_err(|e| io_error(path, e))?;
            }
        }
        if let Some(p) = &mut self.partitions {
            for c in &batch {
                p.write(&c.row, &mut self.line)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> riverbed_compute::Result<()> {
        if let Some((path, out)) = &mut self.json {
            out.flush().map_err(|e| io_error(path, e))?;
        }
        if let Some(p) = &mut self.partitions {
            p.finish()?;
        }
        Ok(())
    }
}

/// q10's partitioned CSV files: the last two columns name the partition.
struct Partitioned {
    dir: PathBuf,
    subtask: usize,
    files: HashMap<(String, String), (PathBuf, BufWriter<File>)>,
}

impl Partitioned {
    fn write(&mut self, row: &Row, line: &mut String) -> riverbed_compute::Result<()> {
        let n = row.0.len();
        let (Value::Str(dt), Value::Str(hm)) = (&row.0[n - 2], &row.0[n - 1]) else {
            return Ok(());
        };
        let key = (dt.clone(), hm.clone());
        if !self.files.contains_key(&key) {
            let dir = self.dir.join(format!("dt={dt}")).join(format!("hm={hm}"));
            fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
            let path = dir.join(format!("part-{}.csv", self.subtask));
            let file = File::create(&path).map_err(|e| io_error(&path, e))?;
            self.files.insert(
                key.clone(),
                (path, BufWriter::with_capacity(64 << 10, file)),
            );
        }
        let (path, out) = self.files.get_mut(&key).expect("inserted above");
        line.clear();
        for (i, v) in row.0[..n - 2].iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            write_csv(v, line);
        }
        line.push('\n');
        out.write_all(line.as_bytes())
            .map_err(|e| io_error(path, e))
    }

    fn finish(&mut self) -> riverbed_compute::Result<()> {
        for (path, out) in self.files.values_mut() {
            out.flush().map_err(|e| io_error(path, e))?;
        }
        Ok(())
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
