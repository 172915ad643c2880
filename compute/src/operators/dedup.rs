//! Deduplication on processing order, as Flink's Deduplicate
//! (`ROW_NUMBER() OVER (PARTITION BY k ORDER BY proctime ...) = 1`).
//!
//! Keep first (`ORDER BY proctime ASC`): a row passes if its key was never
//! seen; the key's presence is the state. The output is append-only.
//!
//! Keep last (`ORDER BY proctime DESC`): the result is the latest row per
//! key, which changes, so the output is a changelog: `Insert` for a key's
//! first row, then `UpdateBefore(previous)` / `UpdateAfter(new)`; the state
//! is the key's current row. Mini-batch, as Flink's
//! `MiniBatchDeduplicateKeepLastRowFunction`: per input batch only the last
//! row of each key counts. A new row equal to the current one emits nothing,
//! since materialising the update would change nothing.

use std::collections::HashMap;

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_state_store::Epoch;

use super::Operator;
use crate::changelog::{Change, RowKind};
use crate::codec::Codec;
use crate::error::Result;
use crate::state::KeyedState;
use crate::stream::{DataStream, KeyedStream};
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

pub struct DedupLast<T, K> {
    pub(crate) key_fn: KeyFn<T, K>,
    pub(crate) state: KeyedState<T>,
    pub(crate) max_parallelism: u16,
}

impl<T, K> Operator<T, Change<T>> for DedupLast<T, K>
where
    T: Codec + Clone + PartialEq + Send + 'static,
    K: Codec + Send + Sync + 'static,
{
    fn on_batch<'a>(
        &'a mut self,
        batch: Vec<T>,
        epoch: Epoch,
        out: &'a mut Vec<Change<T>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let sks: Vec<Bytes> = batch
                .iter()
                .map(|t| {
                    self.state
                        .key_of(&(self.key_fn)(t), self.max_parallelism, &[])
                })
                .collect();
            // The position of each key's last row in the batch.
            let mut last: HashMap<&Bytes, usize> = HashMap::with_capacity(sks.len());
            for (i, sk) in sks.iter().enumerate() {
                last.insert(sk, i);
            }
            let keep: Vec<bool> = sks
                .iter()
                .enumerate()
                .map(|(i, sk)| last[sk] == i)
                .collect();
            drop(last);
            self.state.load(&sks, epoch).await?;
            for ((t, sk), keep) in batch.into_iter().zip(sks).zip(keep) {
                if !keep {
                    continue;
                }
                match self.state.get(&sk) {
                    None => out.push(Change {
                        kind: RowKind::Insert,
                        row: t.clone(),
                    }),
                    Some(prev) if *prev == t => continue,
                    Some(prev) => {
                        out.push(Change {
                            kind: RowKind::UpdateBefore,
                            row: prev.clone(),
                        });
                        out.push(Change {
                            kind: RowKind::UpdateAfter,
                            row: t.clone(),
                        });
                    }
                }
                self.state.put(sk, t);
            }
            self.state.shrink(epoch).await
        })
    }

    fn on_watermark<'a>(
        &'a mut self,
        _wm: Timestamp,
        _epoch: Epoch,
        _out: &'a mut Vec<Change<T>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.state.flush(epoch).await })
    }
}

impl<T: Send + 'static, K: Codec + Clone + Send + Sync + 'static> KeyedStream<T, K> {
    /// Keeps the latest row of each key, as an updating result; see the
    /// module documentation for the changelog it emits.
    pub fn dedup_last(self, name: &str) -> DataStream<Change<T>>
    where
        T: Codec + Clone + PartialEq,
    {
        let key_fn = self.key_fn.clone();
        let max = self.stream.env.config.max_parallelism;
        self.stateful(name, move |state, _| {
            Box::new(DedupLast {
                key_fn: key_fn.clone(),
                state,
                max_parallelism: max,
            })
        })
    }
}
