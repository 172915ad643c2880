//! Keyed group aggregate with an updating result (Flink's GroupAggregate):
//! per key an accumulator in state; per input batch, each key touched emits
//! `Insert` the first time, then `UpdateBefore` / `UpdateAfter` when its
//! result changed (mini-batch: one update per key per batch).

use std::collections::HashMap;

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_state_store::Epoch;

use super::{Aggregate, Operator};
use crate::changelog::{Change, RowKind};
use crate::codec::Codec;
use crate::error::Result;
use crate::state::keyed::FastHash;
use crate::state::KeyedState;
use crate::time::{KeyFn, Timestamp};

pub struct GroupAggregate<T, K, Acc, Out> {
    pub(crate) key_fn: KeyFn<T, K>,
    pub(crate) agg: Aggregate<T, Acc, Out>,
    pub(crate) state: KeyedState<Acc>,
    pub(crate) max_parallelism: u16,
}

impl<T, K, Acc, Out> Operator<T, Change<(K, Out)>> for GroupAggregate<T, K, Acc, Out>
where
    T: Send + 'static,
    K: Codec + Clone + Send + Sync + 'static,
    Acc: Codec + Clone + Send + Sync + 'static,
    Out: PartialEq + Clone + Send + 'static,
{
    fn on_batch<'a>(
        &'a mut self,
        batch: Vec<T>,
        epoch: Epoch,
        out: &'a mut Vec<Change<(K, Out)>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let keys: Vec<(K, Bytes)> = batch
                .iter()
                .map(|t| {
                    let k = (self.key_fn)(t);
                    let sk = self.state.key_of(&k, self.max_parallelism, &[]);
                    (k, sk)
                })
                .collect();
            let sks: Vec<Bytes> = keys.iter().map(|(_, sk)| sk.clone()).collect();
            self.state.load(&sks, epoch).await?;
            let mut before: HashMap<Bytes, Option<Out>, FastHash> = HashMap::default();
            let mut order: Vec<(K, Bytes)> = Vec::new();
            for (t, (k, sk)) in batch.iter().zip(keys) {
                if !before.contains_key(&sk) {
                    before.insert(
                        sk.clone(),
                        self.state.get(&sk).map(|a| (self.agg.result)(a)),
                    );
                    order.push((k, sk.clone()));
                }
                let add = &self.agg.add;
                self.state.update(&sk, self.agg.create, |acc| add(acc, t));
            }
            for (k, sk) in order {
                let new = match self.state.get(&sk) {
                    Some(acc) => (self.agg.result)(acc),
                    None => continue,
                };
                match before.remove(&sk).flatten() {
                    None => out.push(Change {
                        kind: RowKind::Insert,
                        row: (k, new),
                    }),
                    Some(old) if old != new => {
                        out.push(Change {
                            kind: RowKind::UpdateBefore,
                            row: (k.clone(), old),
                        });
                        out.push(Change {
                            kind: RowKind::UpdateAfter,
                            row: (k, new),
                        });
                    }
                    Some(_) => {}
                }
            }
            self.state.shrink(epoch).await
        })
    }

    fn on_watermark<'a>(
        &'a mut self,
        _wm: Timestamp,
        _epoch: Epoch,
        _out: &'a mut Vec<Change<(K, Out)>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.state.flush(epoch).await })
    }
}
