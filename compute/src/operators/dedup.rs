//! Deduplication keeping the first row per key (Flink's Deduplicate with
//! `ROW_NUMBER() ... = 1` on processing order): a row passes if its key was
//! never seen; the key's presence is the state.

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_state_store::Epoch;

use super::Operator;
use crate::codec::Codec;
use crate::error::Result;
use crate::state::KeyedState;
use crate::time::{KeyFn, Timestamp};

pub struct DedupFirst<T, K> {
    pub(crate) key_fn: KeyFn<T, K>,
    pub(crate) state: KeyedState<()>,
    pub(crate) max_parallelism: u16,
}

impl<T, K> Operator<T, T> for DedupFirst<T, K>
where
    T: Send + 'static,
    K: Codec + Send + Sync + 'static,
{
    fn on_batch<'a>(
        &'a mut self,
        batch: Vec<T>,
        epoch: Epoch,
        out: &'a mut Vec<T>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let sks: Vec<Bytes> = batch
                .iter()
                .map(|t| {
                    self.state
                        .key_of(&(self.key_fn)(t), self.max_parallelism, &[])
                })
                .collect();
            self.state.load(&sks, epoch).await?;
            for (t, sk) in batch.into_iter().zip(sks) {
                if self.state.get(&sk).is_none() {
                    self.state.put(sk, ());
                    out.push(t);
                }
            }
            self.state.shrink(epoch).await
        })
    }

    fn on_watermark<'a>(
        &'a mut self,
        _wm: Timestamp,
        _epoch: Epoch,
        _out: &'a mut Vec<T>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.state.flush(epoch).await })
    }
}
