//! Event-time session windows, as Flink's `EventTimeSessionWindows.withGap`.
//!
//! Every record opens the window `[ts, ts + gap)`. Windows of one key that
//! intersect, with Flink's `TimeWindow.intersects` rule
//! (`a.start <= b.end && a.end >= b.start`, so windows that only touch merge
//! too), merge into one covering both, and their accumulators merge. A
//! session fires when the watermark reaches `end - 1`, emits its result and
//! leaves state.
//!
//! Lateness is decided after merging, as Flink's `WindowOperator` does: a
//! record whose own window already ended (`ts + gap - 1 <= watermark`) is
//! still counted if it intersects a live session of its key, because the
//! merged session has not fired. Only a record that merges with nothing and
//! ended is late: it is counted in `late_records` and dropped.
//!
//! State: per key one entry, the key's live sessions sorted by start. Live
//! sessions of a key never intersect (they would have merged), so their
//! starts and ends are both increasing and one record merges with a
//! contiguous run of them. Timers are an in-memory index by session end,
//! like the tumbling/hopping window operator's; a restored subtask rebuilds
//! it from its sessions in state.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_state_store::keys::KEY_PREFIX_LEN;
use riverbed_state_store::Epoch;

use super::window::WindowResult;
use super::{Aggregate, Operator};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::runtime::metrics::OperatorCounters;
use crate::state::KeyedState;
use crate::stream::{DataStream, KeyedStream};
use crate::time::{KeyFn, Timestamp, TimestampFn, MIN_WATERMARK};

/// Combines the accumulator of a session absorbed by a merge into the
/// surviving one (Flink's `AggregateFunction.merge`).
pub type MergeFn<Acc> = Box<dyn Fn(&mut Acc, &Acc) + Send + Sync>;

/// One live session of a key: the window `[start, end)` and its accumulator.
#[derive(Debug, Clone, PartialEq)]
pub struct Session<Acc> {
    pub start: Timestamp,
    pub end: Timestamp,
    pub acc: Acc,
}

/// State encoding: `start: i64 | end: i64 | acc`, with the codec's
/// order-preserving integers.
impl<Acc: Codec> Codec for Session<Acc> {
    fn schema() -> crate::codec::Schema {
        use crate::codec::Schema;
        Schema::record(&[
            ("start", Schema::I64),
            ("end", Schema::I64),
            ("acc", Acc::schema()),
        ])
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.start.encode(out);
        self.end.encode(out);
        self.acc.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        Some(Session {
            start: i64::decode(input)?,
            end: i64::decode(input)?,
            acc: Acc::decode(input)?,
        })
    }
}

/// The indices of the sessions the window `[start, end)` intersects. Valid
/// because `sessions` is sorted and pairwise non-intersecting, so both
/// starts and ends increase.
fn intersecting<Acc>(sessions: &[Session<Acc>], start: Timestamp, end: Timestamp) -> Range<usize> {
    let lo = sessions.partition_point(|s| s.end < start);
    let hi = sessions.partition_point(|s| s.start <= end);
    lo..hi.max(lo)
}

/// Adds the window `[start, end)` to a key's sessions, merging every session
/// it intersects into one, and returns the index of the session covering it.
/// The ends of the sessions that were replaced go to `retired`: their timers
/// must go (the caller registers the covering session's end afresh).
fn add_window<Acc>(
    sessions: &mut Vec<Session<Acc>>,
    start: Timestamp,
    end: Timestamp,
    create: fn() -> Acc,
    merge: &dyn Fn(&mut Acc, &Acc),
    retired: &mut Vec<Timestamp>,
) -> usize {
    let run = intersecting(sessions, start, end);
    if run.is_empty() {
        sessions.insert(
            run.start,
            Session {
                start,
                end,
                acc: create(),
            },
        );
        return run.start;
    }
    let first = run.start;
    retired.extend(sessions[run.clone()].iter().map(|s| s.end));
    let absorbed: Vec<Session<Acc>> = sessions.drain(first + 1..run.end).collect();
    let target = &mut sessions[first];
    for s in &absorbed {
        merge(&mut target.acc, &s.acc);
    }
    target.start = target.start.min(start);
    target.end = absorbed.last().map_or(target.end, |s| s.end).max(end);
    first
}

pub struct SessionWindowAggregate<T, K, Acc, Out> {
    pub(crate) key_fn: KeyFn<T, K>,
    pub(crate) timestamp: TimestampFn<T>,
    pub(crate) gap: i64,
    pub(crate) agg: Aggregate<T, Acc, Out>,
    pub(crate) merge: MergeFn<Acc>,
    pub(crate) state: KeyedState<Vec<Session<Acc>>>,
    pub(crate) max_parallelism: u16,
    pub(crate) counters: Arc<OperatorCounters>,
    /// Live sessions by end: `(end, state key) -> key`. One entry per live
    /// session (a key's sessions have distinct ends).
    pub(crate) timers: BTreeMap<(Timestamp, Bytes), K>,
    pub(crate) watermark: Timestamp,
    /// Whether the timers of a restored subtask were read back from state.
    pub(crate) timers_restored: bool,
}

impl<T, K: Codec + Clone, Acc: Codec + Clone + Send + 'static, Out>
    SessionWindowAggregate<T, K, Acc, Out>
{
    /// After a restore, the live sessions are the ones in state: their ends
    /// are the timers, read back from a scan of the owned key groups.
    async fn restore_timers(&mut self, epoch: Epoch) -> Result<()> {
        if std::mem::replace(&mut self.timers_restored, true) || !self.state.restored() {
            return Ok(());
        }
        for (sk, sessions) in self.state.scan_owned_values(epoch).await? {
            let key = K::from_bytes(&sk[KEY_PREFIX_LEN..]).ok_or_else(|| Error::StateDecode {
                operator: "session window".into(),
                reason: "a session state key whose key does not decode".into(),
            })?;
            for s in sessions {
                self.timers.insert((s.end, sk.clone()), key.clone());
            }
        }
        Ok(())
    }
}

impl<T, K, Acc, Out> Operator<T, WindowResult<K, Out>> for SessionWindowAggregate<T, K, Acc, Out>
where
    T: Send + 'static,
    K: Codec + Clone + Send + Sync + 'static,
    Acc: Codec + Clone + Send + Sync + 'static,
    Out: Send + 'static,
{
    fn on_batch<'a>(
        &'a mut self,
        batch: Vec<T>,
        epoch: Epoch,
        _out: &'a mut Vec<WindowResult<K, Out>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.restore_timers(epoch).await?;
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
            let mut late = 0;
            let mut retired = Vec::new();
            // Record by record, in arrival order: the watermark does not move
            // inside a batch, so this is what Flink does record at a time.
            for (t, (key, sk)) in batch.iter().zip(keys) {
                let start = (self.timestamp)(t);
                let end = start.saturating_add(self.gap);
                let merges = self
                    .state
                    .get(&sk)
                    .is_some_and(|s| !intersecting(s, start, end).is_empty());
                if !merges && end - 1 <= self.watermark {
                    late += 1;
                    continue;
                }
                retired.clear();
                let mut new_end = end;
                let (add, merge, create) = (&self.agg.add, &self.merge, self.agg.create);
                self.state.update(&sk, Vec::new, |sessions| {
                    let i = add_window(sessions, start, end, create, merge, &mut retired);
                    add(&mut sessions[i].acc, t);
                    new_end = sessions[i].end;
                });
                for e in &retired {
                    self.timers.remove(&(*e, sk.clone()));
                }
                self.timers.insert((new_end, sk), key);
            }
            OperatorCounters::add(&self.counters.late_records, late);
            self.state.shrink(epoch).await
        })
    }

    fn on_watermark<'a>(
        &'a mut self,
        wm: Timestamp,
        epoch: Epoch,
        out: &'a mut Vec<WindowResult<K, Out>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.restore_timers(epoch).await?;
            self.watermark = self.watermark.max(wm);
            let mut due = Vec::new();
            while let Some(entry) = self.timers.first_entry() {
                if entry.key().0 - 1 > self.watermark {
                    break;
                }
                let ((end, sk), key) = entry.remove_entry();
                due.push((end, sk, key));
            }
            if due.is_empty() {
                return Ok(());
            }
            let sks: Vec<Bytes> = due.iter().map(|d| d.1.clone()).collect();
            self.state.load(&sks, epoch).await?;
            for (end, sk, key) in due {
                let mut fired = None;
                self.state.update(&sk, Vec::new, |sessions| {
                    if let Ok(i) = sessions.binary_search_by_key(&end, |s| s.end) {
                        fired = Some(sessions.remove(i));
                    }
                });
                if let Some(s) = fired {
                    out.push(WindowResult {
                        key,
                        start: s.start,
                        end: s.end,
                        value: (self.agg.result)(&s.acc),
                    });
                }
                if self.state.get(&sk).is_none_or(Vec::is_empty) {
                    self.state.delete(sk);
                }
            }
            self.state.shrink(epoch).await
        })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.state.flush(epoch).await })
    }
}

impl<T: Send + 'static, K: Codec + Clone + Send + Sync + 'static> KeyedStream<T, K> {
    /// Event-time session windows with inactivity gap `gap_ms`; needs a
    /// source with event time. `merge` folds the accumulator of a session
    /// absorbed by a merge into the surviving one; it must be associative and
    /// commutative, since which accumulator survives is an implementation
    /// detail (as in Flink).
    pub fn session_window<Acc, Out>(
        self,
        name: &str,
        gap_ms: i64,
        agg: impl Fn() -> Aggregate<T, Acc, Out>,
        merge: impl Fn(&mut Acc, &Acc) + Clone + Send + Sync + 'static,
    ) -> DataStream<WindowResult<K, Out>>
    where
        Acc: Codec + Clone + Send + Sync + 'static,
        Out: Send + 'static,
    {
        let env = self.stream.env.clone();
        if gap_ms <= 0 {
            env.invalid(format!(
                "session window {name:?}: gap {gap_ms} ms must be positive"
            ));
        }
        let timestamp = match (&self.stream.timestamp, self.stream.watermarks) {
            (Some(ts), true) => ts.clone(),
            _ => {
                env.invalid(format!(
                    "session window {name:?} needs event time: use a source with event time, \
                     and with_timestamps after operators that change the record type"
                ));
                Arc::new(|_: &T| 0)
            }
        };
        let key_fn = self.key_fn.clone();
        let max = env.config.max_parallelism;
        self.stateful(name, move |state, counters| {
            Box::new(SessionWindowAggregate {
                key_fn: key_fn.clone(),
                timestamp: timestamp.clone(),
                gap: gap_ms.max(1),
                agg: agg(),
                merge: Box::new(merge.clone()),
                state,
                max_parallelism: max,
                counters,
                timers: BTreeMap::new(),
                watermark: MIN_WATERMARK,
                timers_restored: false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(sessions: &[Session<u64>]) -> Vec<(i64, i64, u64)> {
        sessions.iter().map(|s| (s.start, s.end, s.acc)).collect()
    }

    /// Adds one record's window and counts it, as the operator does.
    fn add(sessions: &mut Vec<Session<u64>>, ts: i64, gap: i64) -> Vec<i64> {
        let mut retired = Vec::new();
        let i = add_window(sessions, ts, ts + gap, || 0, &|a, b| *a += *b, &mut retired);
        sessions[i].acc += 1;
        retired
    }

    #[test]
    fn windows_merge_when_they_intersect_or_touch() {
        let mut s = Vec::new();
        add(&mut s, 30, 10);
        add(&mut s, 0, 10);
        add(&mut s, 60, 10);
        assert_eq!(windows(&s), vec![(0, 10, 1), (30, 40, 1), (60, 70, 1)]);
        // [10, 20) touches [0, 10): Flink merges touching windows.
        assert_eq!(add(&mut s, 10, 10), vec![10]);
        assert_eq!(windows(&s), vec![(0, 20, 2), (30, 40, 1), (60, 70, 1)]);
        // [20, 30) touches both neighbours and bridges them.
        assert_eq!(add(&mut s, 20, 10), vec![20, 40]);
        assert_eq!(windows(&s), vec![(0, 40, 4), (60, 70, 1)]);
        // Inside a session: nothing moves but the count.
        assert_eq!(add(&mut s, 5, 10), vec![40]);
        assert_eq!(windows(&s), vec![(0, 40, 5), (60, 70, 1)]);
        // A window spanning several sessions swallows them all.
        add(&mut s, 100, 10);
        assert_eq!(add(&mut s, -50, 200), vec![40, 70, 110]);
        assert_eq!(windows(&s), vec![(-50, 150, 8)]);
        // A gap of one tick apart does not merge.
        add(&mut s, 151, 10);
        assert_eq!(windows(&s), vec![(-50, 150, 8), (151, 161, 1)]);
    }

    #[test]
    fn encodes_sessions_and_rejects_truncated_state() {
        let v = vec![
            Session {
                start: -3,
                end: 7,
                acc: (2u64, -9i64),
            },
            Session {
                start: 10,
                end: 20,
                acc: (1, 4),
            },
        ];
        let bytes = v.to_bytes();
        assert_eq!(Vec::<Session<(u64, i64)>>::from_bytes(&bytes), Some(v));
        assert_eq!(
            Vec::<Session<(u64, i64)>>::from_bytes(&bytes[..bytes.len() - 1]),
            None
        );
    }
}
