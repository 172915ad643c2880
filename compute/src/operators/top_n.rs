//! Top-N per key with an updating result, as Flink's
//! `ROW_NUMBER() OVER (PARTITION BY k ORDER BY x DESC) AS rn ... WHERE rn <= N`
//! on an append-only input (Flink's `AppendOnlyTopNFunction` with the row
//! number in the output).
//!
//! Order: by sort key descending (rank 1 is the largest); rows with equal
//! sort keys by their encoded bytes ascending. The tie-break makes the
//! order total over distinct rows, so the final top N of a key depends only
//! on the multiset of its rows, not on arrival order, batching or
//! parallelism (rows with equal encodings are equal rows, so which copy
//! holds a rank cannot be observed).
//!
//! Flink's `AppendOnlyTopNFunction` instead ranks rows with equal sort keys
//! by arrival: the earlier first, the later the first to fall out. Arrival
//! order across parallel sources is not deterministic; a job that wants
//! Flink's rule deterministically carries each record's place in its input
//! and ends the sort key with it, reversed (`(price, Reverse(seq))`), as
//! Nexmark's q19 does.
//!
//! Output: `Change<(key, rank, row)>` with ranks `1..=N`. Each `(key, rank)`
//! holds at most one row at a time, so materialising the changelog keyed by
//! `(key, rank)` gives exactly the current top N. Per input batch, each key
//! touched emits, for every rank whose row changed, `UpdateBefore(old)` /
//! `UpdateAfter(new)`, or `Insert(new)` for a rank filled for the first time
//! (mini-batch: a row that enters and leaves within one batch is never seen).
//!
//! State: per key its current top N rows in rank order; the sort key is
//! recomputed from the rows, not stored.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

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

/// Reads the value rows are ranked by.
pub type SortKeyFn<T, S> = Arc<dyn Fn(&T) -> S + Send + Sync>;

/// A row with what it is ranked by, computed once per batch.
struct Ranked<S, T> {
    sort: S,
    bytes: Vec<u8>,
    row: T,
}

/// The rank order: larger sort key first, then smaller encoding first.
fn rank_order<S: Ord, T>(a: &Ranked<S, T>, b: &Ranked<S, T>) -> Ordering {
    b.sort.cmp(&a.sort).then_with(|| a.bytes.cmp(&b.bytes))
}

/// Inserts `row` into `top` (sorted by `rank_order`, at most `n` long) if it
/// ranks within the first `n`, dropping whatever falls off the end.
fn offer<S: Ord, T>(top: &mut Vec<Ranked<S, T>>, row: Ranked<S, T>, n: usize) {
    let pos = top.partition_point(|r| rank_order(r, &row) != Ordering::Greater);
    if pos >= n {
        return;
    }
    top.insert(pos, row);
    top.truncate(n);
}

/// The changes turning the ranking `old` into `new` (both in rank order, as
/// encoded rows with the row), ranks counted from 1.
fn diff<K: Clone, T: Clone>(
    key: &K,
    old: &[(Vec<u8>, T)],
    new: &[(&[u8], &T)],
    out: &mut Vec<Change<(K, u32, T)>>,
) {
    for i in 0..old.len().max(new.len()) {
        let rank = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let row = |t: &T| (key.clone(), rank, t.clone());
        match (old.get(i), new.get(i)) {
            (Some((ob, _)), Some((nb, _))) if ob.as_slice() == *nb => {}
            (Some((_, o)), Some((_, n))) => {
                out.push(Change {
                    kind: RowKind::UpdateBefore,
                    row: row(o),
                });
                out.push(Change {
                    kind: RowKind::UpdateAfter,
                    row: row(n),
                });
            }
            (None, Some((_, n))) => out.push(Change {
                kind: RowKind::Insert,
                row: row(n),
            }),
            (Some((_, o)), None) => out.push(Change {
                kind: RowKind::Delete,
                row: row(o),
            }),
            (None, None) => {}
        }
    }
}

pub struct TopN<T, K, S> {
    pub(crate) key_fn: KeyFn<T, K>,
    pub(crate) sort_key: SortKeyFn<T, S>,
    pub(crate) n: usize,
    pub(crate) state: KeyedState<Vec<T>>,
    pub(crate) max_parallelism: u16,
}

impl<T, K, S> Operator<T, Change<(K, u32, T)>> for TopN<T, K, S>
where
    T: Codec + Clone + Send + 'static,
    K: Codec + Clone + Send + Sync + 'static,
    S: Ord + Send + 'static,
{
    fn on_batch<'a>(
        &'a mut self,
        batch: Vec<T>,
        epoch: Epoch,
        out: &'a mut Vec<Change<(K, u32, T)>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            // The batch's rows grouped by key, keys in order of first arrival.
            let mut slot: HashMap<Bytes, usize> = HashMap::new();
            let mut groups: Vec<(K, Bytes, Vec<T>)> = Vec::new();
            for t in batch {
                let k = (self.key_fn)(&t);
                let sk = self.state.key_of(&k, self.max_parallelism, &[]);
                match slot.get(&sk) {
                    Some(&i) => groups[i].2.push(t),
                    None => {
                        slot.insert(sk.clone(), groups.len());
                        groups.push((k, sk, vec![t]));
                    }
                }
            }
            let sks: Vec<Bytes> = groups.iter().map(|g| g.1.clone()).collect();
            self.state.load(&sks, epoch).await?;
            for (key, sk, rows) in groups {
                let old: Vec<(Vec<u8>, T)> = self
                    .state
                    .get(&sk)
                    .map(|top| top.iter().map(|t| (t.to_bytes(), t.clone())).collect())
                    .unwrap_or_default();
                let ranked = |row: T, bytes: Vec<u8>| Ranked {
                    sort: (self.sort_key)(&row),
                    bytes,
                    row,
                };
                let mut top: Vec<Ranked<S, T>> = old
                    .iter()
                    .map(|(b, t)| ranked(t.clone(), b.clone()))
                    .collect();
                for row in rows {
                    let bytes = row.to_bytes();
                    offer(&mut top, ranked(row, bytes), self.n);
                }
                let new: Vec<(&[u8], &T)> =
                    top.iter().map(|r| (r.bytes.as_slice(), &r.row)).collect();
                let before = out.len();
                diff(&key, &old, &new, out);
                if out.len() > before {
                    self.state.put(sk, top.into_iter().map(|r| r.row).collect());
                }
            }
            self.state.shrink(epoch).await
        })
    }

    fn on_watermark<'a>(
        &'a mut self,
        _wm: Timestamp,
        _epoch: Epoch,
        _out: &'a mut Vec<Change<(K, u32, T)>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.state.flush(epoch).await })
    }
}

impl<T: Send + 'static, K: Codec + Clone + Send + Sync + 'static> KeyedStream<T, K> {
    /// The `n` rows of each key with the largest `sort_key`, as an updating
    /// `(key, rank, row)` result; ties go to the smaller row encoding. See
    /// the module documentation for the changelog it emits.
    pub fn top_n<S>(
        self,
        name: &str,
        n: usize,
        sort_key: impl Fn(&T) -> S + Send + Sync + 'static,
    ) -> DataStream<Change<(K, u32, T)>>
    where
        T: Codec + Clone,
        S: Ord + Send + 'static,
    {
        if n == 0 || u32::try_from(n).is_err() {
            self.stream.env.invalid(format!(
                "top_n {name:?}: n is {n}; it must be between 1 and {}",
                u32::MAX
            ));
        }
        let key_fn = self.key_fn.clone();
        let sort_key: SortKeyFn<T, S> = Arc::new(sort_key);
        let max = self.stream.env.config.max_parallelism;
        self.stateful(name, move |state, _| {
            Box::new(TopN {
                key_fn: key_fn.clone(),
                sort_key: sort_key.clone(),
                n,
                state,
                max_parallelism: max,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(sort: i64, row: u32) -> Ranked<i64, u32> {
        Ranked {
            sort,
            bytes: row.to_bytes(),
            row,
        }
    }

    fn rows(top: &[Ranked<i64, u32>]) -> Vec<u32> {
        top.iter().map(|r| r.row).collect()
    }

    #[test]
    fn keeps_the_largest_and_breaks_ties_by_encoding() {
        let mut top = Vec::new();
        for (sort, row) in [(5, 1), (9, 2), (5, 0), (1, 3), (9, 4), (7, 5)] {
            offer(&mut top, ranked(sort, row), 4);
        }
        // 9 (rows 2 and 4, smaller encoding first), 7, then the tie at 5
        // goes to row 0 over row 1.
        assert_eq!(rows(&top), vec![2, 4, 5, 0]);
        offer(&mut top, ranked(5, 3), 4);
        assert_eq!(rows(&top), vec![2, 4, 5, 0], "ranks below the last row");
        offer(&mut top, ranked(8, 6), 4);
        assert_eq!(rows(&top), vec![2, 4, 6, 5]);
    }

    #[test]
    fn diff_emits_per_rank_changes() {
        let enc = |v: &[u32]| v.iter().map(|r| (r.to_bytes(), *r)).collect::<Vec<_>>();
        let old = enc(&[10, 20]);
        let new_rows = enc(&[10, 30, 20]);
        let new: Vec<(&[u8], &u32)> = new_rows.iter().map(|(b, r)| (b.as_slice(), r)).collect();
        let mut out = Vec::new();
        diff(&7u8, &old, &new, &mut out);
        let got: Vec<(RowKind, u32, u32)> =
            out.iter().map(|c| (c.kind, c.row.1, c.row.2)).collect();
        assert_eq!(
            got,
            vec![
                (RowKind::UpdateBefore, 2, 20),
                (RowKind::UpdateAfter, 2, 30),
                (RowKind::Insert, 3, 20),
            ]
        );
    }
}
