//! Sinks: where results leave the job. One instance per subtask.

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};

/// Where a stream ends. Exactly-once sinks stage what they wrote for an
/// epoch when its barrier passes (`pre_commit`) and publish it when the
/// epoch's checkpoint is committed (`commit`): a reader then never sees the
/// output of an epoch that a failure rolls back.
pub trait Sink<T>: Send {
    fn write(&mut self, batch: Vec<T>) -> Result<()>;
    /// The input ended (called before the last `pre_commit`).
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    /// Everything written so far belongs to `epoch` (its barrier passed, or
    /// the input ended): stage it.
    fn pre_commit(&mut self, _epoch: riverbed_state_store::Epoch) -> Result<()> {
        Ok(())
    }
    /// Checkpoint `epoch` is committed: publish what was staged for it and
    /// every epoch before it.
    fn commit(&mut self, _epoch: riverbed_state_store::Epoch) -> Result<()> {
        Ok(())
    }
    /// On a worker: the lease its output depends on, given before the first
    /// record. The runtime checks it before each call, but a worker can be
    /// paused inside a call (formatting a batch, staging an epoch) and wake
    /// after its replacement took over: a sink whose bytes reach an outside
    /// system in that call checks the lease again right before they leave.
    fn hold(&mut self, _lease: Arc<crate::runtime::lease::Lease>) {}
}

/// Drops everything (benchmarks measure the pipeline, not the output).
pub struct Blackhole;

impl<T> Sink<T> for Blackhole {
    fn write(&mut self, _batch: Vec<T>) -> Result<()> {
        Ok(())
    }
}

/// Prints each record's `Debug` form on its own line.
pub struct Stdout;

impl<T: std::fmt::Debug> Sink<T> for Stdout {
    fn write(&mut self, batch: Vec<T>) -> Result<()> {
        let mut out = std::io::stdout().lock();
        for r in batch {
            writeln!(out, "{r:?}").map_err(|source| Error::Io {
                what: "stdout sink".into(),
                source,
            })?;
        }
        Ok(())
    }
}

/// Collects every record in memory; the handle reads them after the run.
pub struct Collector<T> {
    rows: Arc<Mutex<Vec<T>>>,
}

/// Read side of a [`Collector`].
pub struct CollectHandle<T> {
    rows: Arc<Mutex<Vec<T>>>,
}

impl<T> Clone for CollectHandle<T> {
    fn clone(&self) -> Self {
        CollectHandle {
            rows: self.rows.clone(),
        }
    }
}

impl<T> CollectHandle<T> {
    pub fn new() -> Self {
        CollectHandle {
            rows: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn sink(&self) -> Collector<T> {
        Collector {
            rows: self.rows.clone(),
        }
    }

    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.rows.lock())
    }
}

impl<T> Default for CollectHandle<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send> Sink<T> for Collector<T> {
    fn write(&mut self, batch: Vec<T>) -> Result<()> {
        self.rows.lock().extend(batch);
        Ok(())
    }
}

/// Formats one record as a line (without the newline).
pub type LineFormat<T> = Arc<dyn Fn(&T, &mut String) + Send + Sync>;

/// Writes one line per record, formatted by the caller (JSON lines, CSV),
/// to `<dir>/part-<subtask>`.
pub struct LinesFile<T> {
    path: std::path::PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    format: LineFormat<T>,
    line: String,
}

impl<T> LinesFile<T> {
    pub fn create(dir: &std::path::Path, subtask: usize, format: LineFormat<T>) -> Result<Self> {
        let io = |source| Error::Io {
            what: format!("creating {}", dir.display()),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(format!("part-{subtask}"));
        let file = std::fs::File::create(&path).map_err(io)?;
        Ok(LinesFile {
            path,
            out: std::io::BufWriter::new(file),
            format,
            line: String::new(),
        })
    }
}

impl<T: Send> Sink<T> for LinesFile<T> {
    fn write(&mut self, batch: Vec<T>) -> Result<()> {
        for r in &batch {
            self.line.clear();
            (self.format)(r, &mut self.line);
            self.line.push('\n');
            self.out
                .write_all(self.line.as_bytes())
                .map_err(|source| Error::Io {
                    what: format!("writing {}", self.path.display()),
                    source,
                })?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.out.flush().map_err(|source| Error::Io {
            what: format!("flushing {}", self.path.display()),
            source,
        })
    }
}
