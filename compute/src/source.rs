//! Sources: the seam where records enter a job.
//!
//! A [`Source`] splits its input over the source's parallel subtasks and
//! gives each subtask a [`SourceReader`]. A reader reads batches, reports its
//! [`Position`] (what a checkpoint stores for it) and can seek back to a
//! position it reported, so a job can replay its input from a checkpoint:
//! the generator's position is the next event number, a file's the byte
//! offset and line of the next line.
//!
//! Readers are opened lazily, inside the running job, on their subtask's
//! first pull: planning splits (listing files, finding line boundaries) is
//! part of the job's time and its errors are the job's errors.
//!
//! Each source subtask pulls batches from its reader and, with event time,
//! emits a watermark after each batch, and a barrier at the configured
//! interval.

use std::sync::Arc;

use futures::future::BoxFuture;
use riverbed_state_store::Epoch;

use crate::error::{Error, Result};
use crate::runtime::message::Msg;
use crate::runtime::metrics::OperatorCounters;
use crate::runtime::pull::Pull;
use crate::time::{Timestamp, TimestampFn, WatermarkStrategy, MAX_WATERMARK, MIN_WATERMARK};

/// Where one source subtask is in its input: bytes the source encodes and
/// decodes itself. Checkpoints keep them opaque.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Position(pub Vec<u8>);

/// A parallel, replayable input.
pub trait Source<T>: Send + Sync + 'static {
    /// The reader of subtask `subtask` of `parallelism`, at the start of its
    /// share of the input. The shares of subtasks `0..parallelism` together
    /// are the whole input, each record in exactly one share.
    fn reader(&self, subtask: usize, parallelism: usize) -> Result<Box<dyn SourceReader<T>>>;
}

/// One subtask's share of a [`Source`].
pub trait SourceReader<T>: Send {
    /// Appends up to `max` records to `out`. Returns `false` when the share
    /// is exhausted (and nothing was appended).
    fn read_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<bool>;

    /// The position after the last record read: a reader seeked there reads
    /// exactly the records this one would read next.
    fn position(&self) -> Position;

    /// Moves to `position`, one that a reader of the same source, subtask and
    /// parallelism reported. A position that is not one is an error, never a
    /// silent restart.
    fn seek(&mut self, position: &Position) -> Result<()>;
}

/// A reader over an iterator (the sources of [`Env::source`]). Its position
/// is the number of records read; it seeks forward by skipping records, so a
/// fresh reader over the same deterministic iterator replays exactly.
///
/// [`Env::source`]: crate::Env::source
pub struct IterReader<I> {
    iter: I,
    read: u64,
}

impl<I> IterReader<I> {
    pub fn new(iter: I) -> Self {
        IterReader { iter, read: 0 }
    }
}

impl<T, I: Iterator<Item = T> + Send> SourceReader<T> for IterReader<I> {
    fn read_batch(&mut self, out: &mut Vec<T>, max: usize) -> Result<bool> {
        let before = out.len();
        out.extend(self.iter.by_ref().take(max));
        let n = out.len() - before;
        self.read += n as u64;
        Ok(n > 0)
    }

    fn position(&self) -> Position {
        Position(self.read.to_le_bytes().to_vec())
    }

    fn seek(&mut self, position: &Position) -> Result<()> {
        let target = decode_count(position)?;
        if target < self.read {
            return Err(Error::Source(format!(
                "an iterator source cannot seek back to record {target} after reading {}",
                self.read
            )));
        }
        while self.read < target {
            if self.iter.next().is_none() {
                return Err(Error::Source(format!(
                    "position {target} is past the end of the input ({} records)",
                    self.read
                )));
            }
            self.read += 1;
        }
        Ok(())
    }
}

/// A record count encoded as 8 little-endian bytes.
pub fn decode_count(position: &Position) -> Result<u64> {
    let bytes: [u8; 8] = position.0.as_slice().try_into().map_err(|_| {
        Error::Source(format!(
            "a position of {} bytes is not a record count (8 bytes)",
            position.0.len()
        ))
    })?;
    Ok(u64::from_le_bytes(bytes))
}

/// Event time of a source: how to read a record's timestamp and how far
/// watermarks trail the largest one seen.
pub struct EventTime<T> {
    pub timestamp: TimestampFn<T>,
    pub strategy: WatermarkStrategy,
}

impl<T> Clone for EventTime<T> {
    fn clone(&self) -> Self {
        EventTime {
            timestamp: self.timestamp.clone(),
            strategy: self.strategy,
        }
    }
}

/// Opens a subtask's reader on its first pull.
pub(crate) type OpenReader<T> = Box<dyn FnOnce() -> Result<Box<dyn SourceReader<T>>> + Send>;

pub(crate) struct SourcePull<T> {
    pub(crate) open: Option<OpenReader<T>>,
    pub(crate) reader: Option<Box<dyn SourceReader<T>>>,
    pub(crate) batch_size: usize,
    pub(crate) event_time: Option<EventTime<T>>,
    pub(crate) max_ts: Timestamp,
    pub(crate) last_watermark: Timestamp,
    pub(crate) barrier_every: u64,
    pub(crate) batches: u64,
    pub(crate) next_epoch: Epoch,
    pub(crate) queued: std::collections::VecDeque<Msg<T>>,
    pub(crate) done: bool,
    pub(crate) counters: Arc<OperatorCounters>,
}

impl<T: Send + 'static> Pull<T> for SourcePull<T> {
    fn next(&mut self) -> BoxFuture<'_, Result<Msg<T>>> {
        Box::pin(async move {
            if let Some(m) = self.queued.pop_front() {
                return Ok(m);
            }
            if self.done {
                return Ok(Msg::End);
            }
            if let Some(open) = self.open.take() {
                self.reader = Some(open()?);
            }
            let Some(reader) = self.reader.as_mut() else {
                return Err(Error::Runtime("a source subtask has no reader".into()));
            };
            let mut batch: Vec<T> = Vec::with_capacity(self.batch_size);
            if !reader.read_batch(&mut batch, self.batch_size)? || batch.is_empty() {
                self.done = true;
                if self.event_time.is_some() {
                    return Ok(Msg::Watermark(MAX_WATERMARK));
                }
                return Ok(Msg::End);
            }
            self.counters.add_out(batch.len());
            if let Some(et) = &self.event_time {
                for r in &batch {
                    self.max_ts = self.max_ts.max((et.timestamp)(r));
                }
                let wm = et.strategy.watermark(self.max_ts);
                if wm > self.last_watermark && wm != MIN_WATERMARK {
                    self.last_watermark = wm;
                    self.queued.push_back(Msg::Watermark(wm));
                }
            }
            self.batches += 1;
            if self.barrier_every > 0 && self.batches.is_multiple_of(self.barrier_every) {
                self.queued.push_back(Msg::Barrier(self.next_epoch));
                self.next_epoch = self.next_epoch.next();
            }
            Ok(Msg::Data(batch))
        })
    }
}
