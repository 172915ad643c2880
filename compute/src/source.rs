//! Sources: each subtask pulls records from its own iterator, in batches,
//! and (with event time) emits watermarks after each batch and barriers at
//! the configured interval.

use std::sync::Arc;

use futures::future::BoxFuture;
use riverbed_state_store::Epoch;

use crate::error::Result;
use crate::runtime::message::Msg;
use crate::runtime::metrics::OperatorCounters;
use crate::runtime::pull::Pull;
use crate::time::{Timestamp, TimestampFn, WatermarkStrategy, MAX_WATERMARK, MIN_WATERMARK};

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

pub(crate) struct SourcePull<T> {
    pub(crate) iter: Box<dyn Iterator<Item = T> + Send>,
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
            let batch: Vec<T> = self.iter.by_ref().take(self.batch_size).collect();
            if batch.is_empty() {
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
