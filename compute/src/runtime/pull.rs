//! The pull interface every chained operator implements.
//!
//! A subtask is a chain of pulls: the sink asks its input for the next
//! message, which asks its own input, down to a source or an exchange
//! receiver. Chaining is therefore free (no channel, no task per operator),
//! and dynamic dispatch happens once per batch, never per record.

use futures::future::BoxFuture;

use super::message::Msg;
use crate::error::Result;

pub trait Pull<T>: Send {
    /// The next message. After `End` it is not called again.
    fn next(&mut self) -> BoxFuture<'_, Result<Msg<T>>>;

    /// How long the barrier just returned by `next` waited for alignment
    /// across several inputs; `None` where there is nothing to align. Pulls
    /// that pass barriers through unchanged forward it from their input.
    fn take_alignment(&mut self) -> Option<std::time::Duration> {
        None
    }
}

pub type BoxPull<T> = Box<dyn Pull<T>>;

/// A per-batch transformation chained onto its input (map, filter, flat_map).
pub struct Transform<S, T, F> {
    input: BoxPull<S>,
    f: F,
    counters: std::sync::Arc<super::metrics::OperatorCounters>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<S, T, F> Transform<S, T, F>
where
    F: FnMut(Vec<S>, &mut Vec<T>) + Send,
{
    pub fn new(
        input: BoxPull<S>,
        f: F,
        counters: std::sync::Arc<super::metrics::OperatorCounters>,
    ) -> Self {
        Transform {
            input,
            f,
            counters,
            _t: std::marker::PhantomData,
        }
    }
}

impl<S: Send + 'static, T: Send + 'static, F> Pull<T> for Transform<S, T, F>
where
    F: FnMut(Vec<S>, &mut Vec<T>) + Send,
{
    fn next(&mut self) -> BoxFuture<'_, Result<Msg<T>>> {
        Box::pin(async move {
            loop {
                match self.input.next().await? {
                    Msg::Data(batch) => {
                        self.counters.add_in(batch.len());
                        let mut out = Vec::with_capacity(batch.len());
                        (self.f)(batch, &mut out);
                        self.counters.add_out(out.len());
                        if !out.is_empty() {
                            return Ok(Msg::Data(out));
                        }
                    }
                    other => return Ok(other.control()),
                }
            }
        })
    }

    fn take_alignment(&mut self) -> Option<std::time::Duration> {
        self.input.take_alignment()
    }
}
