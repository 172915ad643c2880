//! Stateful operators, each in its own file, and the chain link that drives
//! them. An operator sees batches, watermarks, barriers and the end of its
//! input; it keeps state only through `KeyedState` (the store behind a cache).

pub mod dedup;
pub mod group_agg;
pub mod join;
pub mod process;
pub mod session;
pub mod top_n;
pub mod window;

use futures::future::BoxFuture;
use riverbed_state_store::Epoch;

use crate::error::Result;
use crate::runtime::message::Msg;
use crate::runtime::pull::{BoxPull, Pull};
use crate::time::Timestamp;

pub trait Operator<I, O>: Send {
    fn on_batch<'a>(
        &'a mut self,
        batch: Vec<I>,
        epoch: Epoch,
        out: &'a mut Vec<O>,
    ) -> BoxFuture<'a, Result<()>>;
    fn on_watermark<'a>(
        &'a mut self,
        wm: Timestamp,
        epoch: Epoch,
        out: &'a mut Vec<O>,
    ) -> BoxFuture<'a, Result<()>>;
    /// Ships dirty state of `epoch` before the barrier moves on.
    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>>;
    /// Emits output the operator holds back (a mini-batch) so that it
    /// precedes a checkpoint barrier or the end of the input.
    fn before_barrier<'a>(
        &'a mut self,
        _epoch: Epoch,
        _out: &'a mut Vec<O>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Processing time has reached `now` (called before each input message,
    /// and with `MAX_WATERMARK` at the end of the input).
    fn on_processing_time<'a>(
        &'a mut self,
        _now: Timestamp,
        _epoch: Epoch,
        _out: &'a mut Vec<O>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Drives an operator inside a subtask's chain.
pub struct OperatorPull<I, O> {
    input: BoxPull<I>,
    op: Box<dyn Operator<I, O>>,
    /// The epoch writes belong to: one past the last barrier.
    epoch: Epoch,
    /// A control message to deliver after the output produced before it.
    held: Option<Msg<O>>,
    counters: std::sync::Arc<crate::runtime::metrics::OperatorCounters>,
    clock: std::sync::Arc<dyn crate::time::Clock>,
}

impl<I, O> OperatorPull<I, O> {
    pub fn new(
        input: BoxPull<I>,
        op: Box<dyn Operator<I, O>>,
        first_epoch: Epoch,
        counters: std::sync::Arc<crate::runtime::metrics::OperatorCounters>,
        clock: std::sync::Arc<dyn crate::time::Clock>,
    ) -> Self {
        OperatorPull {
            input,
            op,
            epoch: first_epoch,
            held: None,
            counters,
            clock,
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Pull<O> for OperatorPull<I, O> {
    fn next(&mut self) -> BoxFuture<'_, Result<Msg<O>>> {
        Box::pin(async move {
            if let Some(m) = self.held.take() {
                return Ok(m);
            }
            loop {
                let mut out = Vec::new();
                let msg = self.input.next().await?;
                let now = if matches!(msg, Msg::End) {
                    crate::time::MAX_WATERMARK
                } else {
                    self.clock.now()
                };
                self.op
                    .on_processing_time(now, self.epoch, &mut out)
                    .await?;
                let control = match msg {
                    Msg::Data(batch) => {
                        self.counters.add_in(batch.len());
                        self.op.on_batch(batch, self.epoch, &mut out).await?;
                        None
                    }
                    Msg::Watermark(w) => {
                        self.op.on_watermark(w, self.epoch, &mut out).await?;
                        Some(Msg::Watermark(w))
                    }
                    Msg::Barrier(e) => {
                        if let Some(waited) = self.input.take_alignment() {
                            self.counters.record_alignment(e, waited);
                        }
                        self.op.before_barrier(self.epoch, &mut out).await?;
                        self.op.on_barrier(self.epoch).await?;
                        self.epoch = e.next();
                        Some(Msg::Barrier(e))
                    }
                    Msg::End => {
                        self.op
                            .on_watermark(crate::time::MAX_WATERMARK, self.epoch, &mut out)
                            .await?;
                        self.op.before_barrier(self.epoch, &mut out).await?;
                        self.op.on_barrier(self.epoch).await?;
                        Some(Msg::End)
                    }
                };
                self.counters.add_out(out.len());
                match (out.is_empty(), control) {
                    (true, None) => continue,
                    (true, Some(c)) => return Ok(c),
                    (false, c) => {
                        self.held = c;
                        return Ok(Msg::Data(out));
                    }
                }
            }
        })
    }
}

/// Folds one record into an accumulator.
pub type AddFn<T, Acc> = Box<dyn Fn(&mut Acc, &T) + Send + Sync>;

/// Aggregation as Flink's `AggregateFunction`: an accumulator per key (and
/// window), updated record by record, turned into a result when read.
pub struct Aggregate<T, Acc, Out> {
    pub create: fn() -> Acc,
    pub add: AddFn<T, Acc>,
    pub result: Box<dyn Fn(&Acc) -> Out + Send + Sync>,
}

impl<T> Aggregate<T, u64, u64> {
    pub fn count() -> Self {
        Aggregate {
            create: || 0,
            add: Box::new(|acc, _| *acc += 1),
            result: Box::new(|acc| *acc),
        }
    }
}

impl<T> Aggregate<T, i64, i64> {
    pub fn sum(f: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Self {
        Aggregate {
            create: || 0,
            add: Box::new(move |acc, t| *acc += f(t)),
            result: Box::new(|acc| *acc),
        }
    }

    pub fn max(f: impl Fn(&T) -> i64 + Send + Sync + 'static) -> Self {
        Aggregate {
            create: || i64::MIN,
            add: Box::new(move |acc, t| *acc = (*acc).max(f(t))),
            result: Box::new(|acc| *acc),
        }
    }
}

impl<T, Acc, Out> Aggregate<T, Acc, Out> {
    pub fn new(
        create: fn() -> Acc,
        add: impl Fn(&mut Acc, &T) + Send + Sync + 'static,
        result: impl Fn(&Acc) -> Out + Send + Sync + 'static,
    ) -> Self {
        Aggregate {
            create,
            add: Box::new(add),
            result: Box::new(result),
        }
    }
}
