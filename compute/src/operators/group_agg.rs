//! Keyed group aggregate with an updating result (Flink's GroupAggregate):
//! per key an accumulator in state; each key touched emits `Insert` the
//! first time, then `UpdateBefore` / `UpdateAfter` when its result changed.
//!
//! Mini-batches, as Flink's `table.exec.mini-batch.*`: changes are held per
//! key (the result before the mini-batch and the latest one) and emitted
//! once enough records were folded or enough processing time passed, before
//! every checkpoint barrier and at the end. A key updated many times in a
//! mini-batch emits one update, so hot keys do not flood the output.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::BuildHasher;

use bytes::Bytes;
use futures::future::BoxFuture;
use hashbrown::HashTable;
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
    pub(crate) mini_batch: MiniBatch<K, Out>,
}

/// Changes held back since the last emission.
pub(crate) struct MiniBatch<K, Out> {
    /// Per key: `(key, result before the mini-batch, latest result)`.
    pending: HashMap<Bytes, (K, Option<Out>, Out), FastHash>,
    records: usize,
    max_records: usize,
    latency_ms: i64,
    last_emit: Option<Timestamp>,
}

impl<K: Clone, Out: PartialEq> MiniBatch<K, Out> {
    pub(crate) fn new(max_records: usize, latency_ms: i64) -> Self {
        MiniBatch {
            pending: HashMap::default(),
            records: 0,
            max_records,
            latency_ms,
            last_emit: None,
        }
    }

    fn emit(&mut self, out: &mut Vec<Change<(K, Out)>>) {
        self.records = 0;
        for (_, (k, before, after)) in self.pending.drain() {
            match before {
                None => out.push(Change {
                    kind: RowKind::Insert,
                    row: (k, after),
                }),
                Some(old) if old != after => {
                    out.push(Change {
                        kind: RowKind::UpdateBefore,
                        row: (k.clone(), old),
                    });
                    out.push(Change {
                        kind: RowKind::UpdateAfter,
                        row: (k, after),
                    });
                }
                Some(_) => {}
            }
        }
    }
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
            // Group the batch by key first: per distinct key one state read
            // and one write, with the records chained through `next`.
            const NONE: usize = usize::MAX;
            let hasher = FastHash::default();
            let mut index: HashTable<usize> = HashTable::with_capacity(batch.len());
            let mut sks: Vec<Bytes> = Vec::new();
            let mut hashes: Vec<u64> = Vec::new();
            let mut groups: Vec<(K, usize)> = Vec::new();
            let mut last: Vec<usize> = Vec::new();
            let mut next = vec![NONE; batch.len()];
            for (i, t) in batch.iter().enumerate() {
                let k = (self.key_fn)(t);
                let sk = self.state.key_of(&k, self.max_parallelism, &[]);
                let h = hasher.hash_one(&sk[..]);
                match index.find(h, |&g| sks[g] == sk) {
                    Some(&g) => {
                        next[last[g]] = i;
                        last[g] = i;
                    }
                    None => {
                        index.insert_unique(h, sks.len(), |&g| hashes[g]);
                        sks.push(sk);
                        hashes.push(h);
                        groups.push((k, i));
                        last.push(i);
                    }
                }
            }
            drop(index);
            let slots = self.state.load_slots(&sks, epoch).await?;
            for ((sk, (k, first)), slot) in sks.into_iter().zip(groups).zip(slots) {
                // Folded in place: an accumulator can be large (a
                // distinct-count map), and the load's slot spares a lookup.
                let agg = &self.agg;
                let (before, new) = self.state.modify_slot(slot, |slot| {
                    let before = slot.as_ref().map(|a| (agg.result)(a));
                    let acc = slot.get_or_insert_with(agg.create);
                    let mut i = first;
                    while i != NONE {
                        (agg.add)(acc, &batch[i]);
                        i = next[i];
                    }
                    (before, (agg.result)(acc))
                });
                match self.mini_batch.pending.entry(sk) {
                    Entry::Occupied(mut p) => p.get_mut().2 = new,
                    Entry::Vacant(v) => {
                        v.insert((k, before, new));
                    }
                }
            }
            self.mini_batch.records += batch.len();
            if self.mini_batch.records >= self.mini_batch.max_records
                || self.mini_batch.latency_ms == 0
            {
                self.mini_batch.emit(out);
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

    fn on_processing_time<'a>(
        &'a mut self,
        now: Timestamp,
        _epoch: Epoch,
        out: &'a mut Vec<Change<(K, Out)>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let last = *self.mini_batch.last_emit.get_or_insert(now);
            if now.saturating_sub(last) >= self.mini_batch.latency_ms {
                self.mini_batch.emit(out);
                self.mini_batch.last_emit = Some(now);
            }
            Ok(())
        })
    }

    fn before_barrier<'a>(
        &'a mut self,
        _epoch: Epoch,
        out: &'a mut Vec<Change<(K, Out)>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.mini_batch.emit(out);
            Ok(())
        })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.state.flush(epoch).await })
    }
}
