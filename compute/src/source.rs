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
//! emits a watermark after each batch. When the checkpoint coordinator asks
//! for barrier *e*, the subtask emits it before its next batch and reports
//! its position there; when its input ends it reports its final position.
//!
//! # Checkpointed position of a source subtask
//!
//! What a checkpoint stores for one subtask (little-endian):
//!
//! ```text
//! version u8 = 1 | max_timestamp i64 | reader position (the source's own bytes)
//! ```
//! `max_timestamp` is the largest event time the subtask had seen, so that a
//! resumed subtask's watermark goes on from where it was.

use std::sync::Arc;

use futures::future::BoxFuture;
use riverbed_state_store::Epoch;

use crate::checkpoint::Event;
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

const CHECKPOINT_POSITION_VERSION: u8 = 1;

/// A subtask's checkpointed position: its largest timestamp and its
/// reader's position (the format is at the top of this file).
pub fn encode_checkpoint_position(max_ts: Timestamp, reader: &Position) -> Vec<u8> {
    let mut b = Vec::with_capacity(9 + reader.0.len());
    b.push(CHECKPOINT_POSITION_VERSION);
    b.extend_from_slice(&max_ts.to_le_bytes());
    b.extend_from_slice(&reader.0);
    b
}

/// The largest timestamp and the reader position of a checkpointed
/// subtask position.
pub fn decode_checkpoint_position(bytes: &[u8]) -> Result<(Timestamp, Position)> {
    match bytes.split_first() {
        Some((&CHECKPOINT_POSITION_VERSION, rest)) if rest.len() >= 8 => {
            let ts = i64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
            Ok((ts, Position(rest[8..].to_vec())))
        }
        _ => Err(Error::Source(format!(
            "a checkpointed source position of {} bytes is not one this version wrote",
            bytes.len()
        ))),
    }
}

pub(crate) struct SourcePull<T> {
    pub(crate) open: Option<OpenReader<T>>,
    pub(crate) reader: Option<Box<dyn SourceReader<T>>>,
    /// Index of this source among the job's sources, and this subtask's.
    pub(crate) source: usize,
    pub(crate) subtask: usize,
    /// The checkpointed position to resume from, if the job resumes.
    pub(crate) resume: Option<Vec<u8>>,
    pub(crate) batch_size: usize,
    pub(crate) event_time: Option<EventTime<T>>,
    pub(crate) max_ts: Timestamp,
    pub(crate) last_watermark: Timestamp,
    /// The barrier the coordinator wants, and the last one emitted.
    pub(crate) wanted: tokio::sync::watch::Receiver<Epoch>,
    pub(crate) emitted: Epoch,
    pub(crate) events: tokio::sync::mpsc::UnboundedSender<Event>,
    pub(crate) queued: std::collections::VecDeque<Msg<T>>,
    pub(crate) done: bool,
    /// The checkpoint the job stops at: after its barrier this subtask
    /// emits nothing more (it is parked until the job ends it).
    pub(crate) stop_at: tokio::sync::watch::Receiver<Option<Epoch>>,
    pub(crate) parked: bool,
    pub(crate) counters: Arc<OperatorCounters>,
}

impl<T> SourcePull<T> {
    /// Opens the reader on the first pull, seeking it when the job resumes.
    fn reader(&mut self) -> Result<&mut Box<dyn SourceReader<T>>> {
        if let Some(open) = self.open.take() {
            let mut reader = open()?;
            if let Some(bytes) = self.resume.take() {
                let (max_ts, position) = decode_checkpoint_position(&bytes)?;
                reader.seek(&position)?;
                self.max_ts = max_ts;
                if let Some(et) = &self.event_time {
                    self.last_watermark = et.strategy.watermark(max_ts);
                }
            }
            self.reader = Some(reader);
        }
        self.reader
            .as_mut()
            .ok_or_else(|| Error::Runtime("a source subtask has no reader".into()))
    }

    fn position(&mut self) -> Result<Vec<u8>> {
        let max_ts = self.max_ts;
        let p = self.reader()?.position();
        Ok(encode_checkpoint_position(max_ts, &p))
    }
}

impl<T: Send + 'static> Pull<T> for SourcePull<T> {
    fn next(&mut self) -> BoxFuture<'_, Result<Msg<T>>> {
        Box::pin(async move {
            if let Some(m) = self.queued.pop_front() {
                return Ok(m);
            }
            if self.parked {
                return std::future::pending().await;
            }
            if self.done {
                return Ok(Msg::End);
            }
            // A barrier the coordinator asked for goes before the next batch,
            // with the position after everything emitted so far.
            let wanted = *self.wanted.borrow();
            if wanted > self.emitted {
                self.emitted = wanted;
                let position = Position(self.position()?);
                let _ = self.events.send(Event::SourceBarrier {
                    source: self.source,
                    subtask: self.subtask,
                    epoch: wanted,
                    position,
                    watermark: self.last_watermark,
                });
                self.parked = self.stop_at.borrow().is_some_and(|stop| wanted >= stop);
                return Ok(Msg::Barrier(wanted));
            }
            let batch_size = self.batch_size;
            let mut batch: Vec<T> = Vec::with_capacity(batch_size);
            if !self.reader()?.read_batch(&mut batch, batch_size)? || batch.is_empty() {
                self.done = true;
                let position = Position(self.position()?);
                let _ = self.events.send(Event::SourceEnded {
                    source: self.source,
                    subtask: self.subtask,
                    position,
                });
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
            Ok(Msg::Data(batch))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_positions_round_trip_and_refuse_garbage() {
        let p = Position(vec![7, 8, 9]);
        let bytes = encode_checkpoint_position(-5, &p);
        assert_eq!(decode_checkpoint_position(&bytes).unwrap(), (-5, p));
        assert!(decode_checkpoint_position(&[]).is_err());
        assert!(decode_checkpoint_position(&[2, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_checkpoint_position(&[1, 0, 0]).is_err());
    }
}
