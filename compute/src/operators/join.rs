//! Two-input keyed joins: regular (inner and left outer, with state TTL),
//! interval, and tumbling/hopping window joins.
//!
//! Both inputs are keyed by the same key type, so subtask `i` of each owns
//! the same key groups; `connect` tags each side and merges subtask `i` of
//! both into one input (watermark: the minimum of the two; barriers
//! aligned), and the join runs as one keyed operator over `Side<L, R>`.
//! Each key's rows of both sides live in one state entry.
//!
//! State TTL is measured in event time (rows expire once the watermark
//! passes their timestamp plus the TTL), so a run over the same input is
//! reproducible; Flink measures state TTL in processing time.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_state_store::keys::KEY_PREFIX_LEN;
use riverbed_state_store::Epoch;

use super::window::Windows;
use super::Operator;
use crate::changelog::{Change, RowKind};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::runtime::metrics::OperatorCounters;
use crate::state::KeyedState;
use crate::stream::{DataStream, KeyedStream};
use crate::time::{KeyFn, Timestamp, TimestampFn, MIN_WATERMARK};

/// A record of either input of a two-input operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Side<L, R> {
    Left(L),
    Right(R),
}

/// Rows of one key: `(timestamp, row, matched)` on the left (whether the
/// row ever met a right row: an outer join retracts its unmatched form only
/// once, as Flink's association count does), `(timestamp, row)` on the right.
type Rows<L, R> = (Vec<(i64, L, bool)>, Vec<(i64, R)>);

struct Common<L, R, K> {
    key_fn: KeyFn<Side<L, R>, K>,
    timestamp: Option<TimestampFn<Side<L, R>>>,
    state: KeyedState<Rows<L, R>>,
    max_parallelism: u16,
    counters: Arc<OperatorCounters>,
    watermark: Timestamp,
    /// Keys with rows to expire, by the watermark that expires them.
    timers: BTreeMap<(Timestamp, Bytes), ()>,
    /// Whether the timers of a restored subtask were read back from state.
    timers_restored: bool,
}

impl<L, R, K> Common<L, R, K>
where
    L: Codec + Clone + Send + 'static,
    R: Codec + Clone + Send + 'static,
    K: Codec + Send + Sync + 'static,
{
    fn keys(&self, batch: &[Side<L, R>]) -> Vec<Bytes> {
        batch
            .iter()
            .map(|s| {
                self.state
                    .key_of(&(self.key_fn)(s), self.max_parallelism, &[])
            })
            .collect()
    }

    fn ts(&self, s: &Side<L, R>) -> Timestamp {
        self.timestamp.as_ref().map_or(0, |f| f(s))
    }

    /// After a restore, re-arms from the rows in state what lives only in
    /// memory: `timer` gives the time a key's rows next need attention
    /// (`None`: never) and `arm` records it.
    async fn restore_timers(
        &mut self,
        epoch: Epoch,
        mut arm: impl FnMut(&mut Self, Bytes, &Rows<L, R>),
    ) -> Result<()> {
        if std::mem::replace(&mut self.timers_restored, true) || !self.state.restored() {
            return Ok(());
        }
        for (sk, rows) in self.state.scan_owned_values(epoch).await? {
            arm(self, sk, &rows);
        }
        Ok(())
    }

    /// Re-arms the expiry timers of a restored subtask, `next` as in [`Common::expire`].
    async fn restore_expiry(
        &mut self,
        epoch: Epoch,
        next: impl Fn(&Rows<L, R>) -> Option<Timestamp>,
    ) -> Result<()> {
        self.restore_timers(epoch, |c, sk, rows| {
            if let Some(t) = next(rows) {
                c.timers.insert((t, sk), ());
            }
        })
        .await
    }

    /// Keys whose rows may expire at `wm`.
    fn due(&mut self, wm: Timestamp) -> Vec<Bytes> {
        self.watermark = self.watermark.max(wm);
        let mut keys = Vec::new();
        while let Some(e) = self.timers.first_entry() {
            if e.key().0 > self.watermark {
                break;
            }
            keys.push(e.remove_entry().0 .1);
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// Drops rows `keep` rejects from the due keys, re-arming timers for the rest.
    async fn expire(
        &mut self,
        wm: Timestamp,
        epoch: Epoch,
        keep_left: impl Fn(i64, Timestamp) -> bool,
        keep_right: impl Fn(i64, Timestamp) -> bool,
        next_timer: impl Fn(&Rows<L, R>) -> Option<Timestamp>,
    ) -> Result<()> {
        let keys = self.due(wm);
        if keys.is_empty() {
            return Ok(());
        }
        self.state.load(&keys, epoch).await?;
        let wm = self.watermark;
        for k in keys {
            let Some(rows) = self.state.get(&k).cloned() else {
                continue;
            };
            let left: Vec<_> = rows
                .0
                .into_iter()
                .filter(|(t, _, _)| keep_left(*t, wm))
                .collect();
            let right: Vec<_> = rows
                .1
                .into_iter()
                .filter(|(t, _)| keep_right(*t, wm))
                .collect();
            if left.is_empty() && right.is_empty() {
                self.state.delete(k);
            } else {
                let rows = (left, right);
                if let Some(t) = next_timer(&rows) {
                    self.timers.insert((t, k.clone()), ());
                }
                self.state.put(k, rows);
            }
        }
        self.state.shrink(epoch).await
    }
}

/// Inner or left outer regular join.
pub struct RegularJoin<L, R, K> {
    c: Common<L, R, K>,
    outer: bool,
    ttl: Option<i64>,
}

impl<L, R, K> Operator<Side<L, R>, Change<(L, Option<R>)>> for RegularJoin<L, R, K>
where
    L: Codec + Clone + Send + 'static,
    R: Codec + Clone + Send + 'static,
    K: Codec + Send + Sync + 'static,
{
    fn on_batch<'a>(
        &'a mut self,
        batch: Vec<Side<L, R>>,
        epoch: Epoch,
        out: &'a mut Vec<Change<(L, Option<R>)>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.restore_timers(epoch).await?;
            let keys = self.c.keys(&batch);
            self.c.state.load(&keys, epoch).await?;
            for (rec, k) in batch.into_iter().zip(keys) {
                let ts = self.c.ts(&rec);
                if self
                    .ttl
                    .is_some_and(|ttl| ts.saturating_add(ttl) < self.c.watermark)
                {
                    OperatorCounters::add(&self.c.counters.late_records, 1);
                    continue;
                }
                let mut rows = self.c.state.get(&k).cloned().unwrap_or_default();
                match rec {
                    Side::Left(l) => {
                        if rows.1.is_empty() {
                            if self.outer {
                                out.push(insert((l.clone(), None)));
                            }
                        } else {
                            for (_, r) in &rows.1 {
                                out.push(insert((l.clone(), Some(r.clone()))));
                            }
                        }
                        let matched = !rows.1.is_empty();
                        rows.0.push((ts, l, matched));
                    }
                    Side::Right(r) => {
                        for (_, l, matched) in rows.0.iter_mut() {
                            if self.outer && !*matched {
                                // The left row stops being unmatched.
                                out.push(Change {
                                    kind: RowKind::Delete,
                                    row: (l.clone(), None),
                                });
                            }
                            *matched = true;
                            out.push(insert((l.clone(), Some(r.clone()))));
                        }
                        rows.1.push((ts, r));
                    }
                }
                if let Some(ttl) = self.ttl {
                    self.c
                        .timers
                        .insert((ts.saturating_add(ttl), k.clone()), ());
                }
                self.c.state.put(k, rows);
            }
            self.c.state.shrink(epoch).await
        })
    }

    fn on_watermark<'a>(
        &'a mut self,
        wm: Timestamp,
        epoch: Epoch,
        _out: &'a mut Vec<Change<(L, Option<R>)>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.restore_timers(epoch).await?;
            let Some(ttl) = self.ttl else {
                self.c.watermark = self.c.watermark.max(wm);
                return Ok(());
            };
            let live = move |t: i64, wm: Timestamp| t.saturating_add(ttl) >= wm;
            self.c.expire(wm, epoch, live, live, ttl_expiry(ttl)).await
        })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.c.state.flush(epoch).await })
    }
}

impl<L, R, K> RegularJoin<L, R, K>
where
    L: Codec + Clone + Send + 'static,
    R: Codec + Clone + Send + 'static,
    K: Codec + Send + Sync + 'static,
{
    /// Without a TTL nothing expires, so there are no timers to restore.
    async fn restore_timers(&mut self, epoch: Epoch) -> Result<()> {
        match self.ttl {
            Some(ttl) => self.c.restore_expiry(epoch, ttl_expiry(ttl)).await,
            None => Ok(()),
        }
    }
}

/// When a key's oldest row outlives the TTL.
fn ttl_expiry<L, R>(ttl: i64) -> impl Fn(&Rows<L, R>) -> Option<Timestamp> + Copy {
    move |rows: &Rows<L, R>| {
        rows.0
            .iter()
            .map(|r| r.0)
            .chain(rows.1.iter().map(|r| r.0))
            .min()
            .map(|t| t.saturating_add(ttl))
    }
}

fn insert<T>(row: T) -> Change<T> {
    Change {
        kind: RowKind::Insert,
        row,
    }
}

/// Interval join: pairs `(l, r)` with `l.ts + lower <= r.ts <= l.ts + upper`.
pub struct IntervalJoin<L, R, K> {
    c: Common<L, R, K>,
    lower: i64,
    upper: i64,
}

impl<L, R, K> Operator<Side<L, R>, (L, R)> for IntervalJoin<L, R, K>
where
    L: Codec + Clone + Send + 'static,
    R: Codec + Clone + Send + 'static,
    K: Codec + Send + Sync + 'static,
{
    fn on_batch<'a>(
        &'a mut self,
        batch: Vec<Side<L, R>>,
        epoch: Epoch,
        out: &'a mut Vec<(L, R)>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.c
                .restore_expiry(epoch, interval_expiry(self.lower, self.upper))
                .await?;
            let keys = self.c.keys(&batch);
            self.c.state.load(&keys, epoch).await?;
            let (lower, upper) = (self.lower, self.upper);
            for (rec, k) in batch.into_iter().zip(keys) {
                let ts = self.c.ts(&rec);
                if ts <= self.c.watermark {
                    // As in Flink, a record behind the watermark may miss partners already dropped.
                    OperatorCounters::add(&self.c.counters.late_records, 1);
                    continue;
                }
                let mut rows = self.c.state.get(&k).cloned().unwrap_or_default();
                let cleanup = match rec {
                    Side::Left(l) => {
                        for (rt, r) in &rows.1 {
                            if ts + lower <= *rt && *rt <= ts + upper {
                                out.push((l.clone(), r.clone()));
                            }
                        }
                        rows.0.push((ts, l, true));
                        ts.saturating_add(upper.max(0))
                    }
                    Side::Right(r) => {
                        for (lt, l, _) in &rows.0 {
                            if lt + lower <= ts && ts <= lt + upper {
                                out.push((l.clone(), r.clone()));
                            }
                        }
                        rows.1.push((ts, r));
                        ts.saturating_sub(lower.min(0))
                    }
                };
                self.c.timers.insert((cleanup, k.clone()), ());
                self.c.state.put(k, rows);
            }
            self.c.state.shrink(epoch).await
        })
    }

    fn on_watermark<'a>(
        &'a mut self,
        wm: Timestamp,
        epoch: Epoch,
        _out: &'a mut Vec<(L, R)>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (lower, upper) = (self.lower, self.upper);
            // A left row can still meet right rows up to ts + upper; a right
            // row can still meet left rows down to ts - upper.. i.e. left rows
            // with lt >= ts - upper, which arrive only while ts - lower > wm.
            let keep_left = move |t: i64, wm: Timestamp| t.saturating_add(upper.max(0)) > wm;
            let keep_right = move |t: i64, wm: Timestamp| t.saturating_sub(lower.min(0)) > wm;
            let next = interval_expiry(lower, upper);
            self.c.restore_expiry(epoch, next).await?;
            self.c.expire(wm, epoch, keep_left, keep_right, next).await
        })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.c.state.flush(epoch).await })
    }
}

/// When the first of a key's rows can no longer meet a partner.
fn interval_expiry<L, R>(
    lower: i64,
    upper: i64,
) -> impl Fn(&Rows<L, R>) -> Option<Timestamp> + Copy {
    move |rows: &Rows<L, R>| {
        let l = rows.0.iter().map(|r| r.0.saturating_add(upper.max(0)));
        let r = rows.1.iter().map(|r| r.0.saturating_sub(lower.min(0)));
        l.chain(r).min()
    }
}

/// Window join: pairs of rows of one key in the same window, emitted when
/// the window fires.
pub struct WindowJoin<L, R, K> {
    c: Common<L, R, K>,
    windows: Windows,
    /// `(window end, state key) -> window start`.
    pending: BTreeMap<(Timestamp, Bytes), Timestamp>,
}

impl<L, R, K> Operator<Side<L, R>, (Timestamp, L, R)> for WindowJoin<L, R, K>
where
    L: Codec + Clone + Send + 'static,
    R: Codec + Clone + Send + 'static,
    K: Codec + Send + Sync + 'static,
{
    fn on_batch<'a>(
        &'a mut self,
        batch: Vec<Side<L, R>>,
        epoch: Epoch,
        _out: &'a mut Vec<(Timestamp, L, R)>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.restore_pending(epoch).await?;
            let mut assigned = Vec::new();
            for (i, rec) in batch.iter().enumerate() {
                let ts = self.c.ts(rec);
                if ts > Timestamp::MAX - 2 * self.windows.size {
                    OperatorCounters::add(&self.c.counters.late_records, 1);
                    continue;
                }
                let key = (self.c.key_fn)(rec);
                let mut any = false;
                for start in self.windows.starts(ts) {
                    let end = start + self.windows.size;
                    if end - 1 <= self.c.watermark {
                        continue;
                    }
                    any = true;
                    let sk = self
                        .c
                        .state
                        .key_of(&key, self.c.max_parallelism, &end.to_be_bytes());
                    assigned.push((i, sk, start, end, ts));
                }
                if !any {
                    OperatorCounters::add(&self.c.counters.late_records, 1);
                }
            }
            let sks: Vec<Bytes> = assigned.iter().map(|a| a.1.clone()).collect();
            self.c.state.load(&sks, epoch).await?;
            for (i, sk, start, end, ts) in assigned {
                let rec = batch[i].clone();
                self.c
                    .state
                    .update(&sk, Default::default, |rows| match rec {
                        Side::Left(l) => rows.0.push((ts, l, true)),
                        Side::Right(r) => rows.1.push((ts, r)),
                    });
                self.pending.insert((end, sk), start);
            }
            self.c.state.shrink(epoch).await
        })
    }

    fn on_watermark<'a>(
        &'a mut self,
        wm: Timestamp,
        epoch: Epoch,
        out: &'a mut Vec<(Timestamp, L, R)>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.restore_pending(epoch).await?;
            self.c.watermark = self.c.watermark.max(wm);
            let mut due = Vec::new();
            while let Some(e) = self.pending.first_entry() {
                if e.key().0 - 1 > self.c.watermark {
                    break;
                }
                let ((_, sk), start) = e.remove_entry();
                due.push((sk, start));
            }
            if due.is_empty() {
                return Ok(());
            }
            let sks: Vec<Bytes> = due.iter().map(|d| d.0.clone()).collect();
            self.c.state.load(&sks, epoch).await?;
            for (sk, start) in due {
                if let Some((ls, rs)) = self.c.state.get(&sk) {
                    for (_, l, _) in ls {
                        for (_, r) in rs {
                            out.push((start, l.clone(), r.clone()));
                        }
                    }
                }
                self.c.state.delete(sk);
            }
            self.c.state.shrink(epoch).await
        })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.c.state.flush(epoch).await })
    }
}

impl<L, R, K> WindowJoin<L, R, K>
where
    L: Codec + Clone + Send + 'static,
    R: Codec + Clone + Send + 'static,
    K: Codec + Send + Sync + 'static,
{
    /// After a restore, the pending windows are the keys in state: each
    /// state key ends in its window's end.
    async fn restore_pending(&mut self, epoch: Epoch) -> Result<()> {
        let size = self.windows.size;
        let mut pending = std::mem::take(&mut self.pending);
        let mut bad = false;
        self.c
            .restore_timers(epoch, |_, sk, _| {
                match sk.len().checked_sub(8).and_then(|at| sk.get(at..)) {
                    Some(end) if sk.len() >= KEY_PREFIX_LEN + 8 => {
                        let end = Timestamp::from_be_bytes(end.try_into().expect("8 bytes"));
                        pending.insert((end, sk), end - size);
                    }
                    _ => bad = true,
                }
            })
            .await?;
        self.pending = pending;
        if bad {
            return Err(Error::StateDecode {
                operator: "window join".into(),
                reason: "a window join state key without its window end".into(),
            });
        }
        Ok(())
    }
}

impl<L, K> KeyedStream<L, K>
where
    L: Codec + Clone + Send + Sync + 'static,
    K: Codec + Clone + Send + Sync + 'static,
{
    /// Both inputs as one keyed stream of `Side`s, subtask by subtask.
    fn connect<R: Codec + Clone + Send + Sync + 'static>(
        self,
        other: KeyedStream<R, K>,
    ) -> KeyedStream<Side<L, R>, K> {
        let (lk, rk) = (self.key_fn.clone(), other.key_fn.clone());
        let lt = self.stream.timestamp.clone();
        let rt = other.stream.timestamp.clone();
        let left = self.stream.map_unregistered(Side::Left);
        let right = other.stream.map_unregistered(Side::Right);
        let mut stream = left.union(right);
        stream.timestamp = match (lt, rt) {
            (Some(lt), Some(rt)) => Some(Arc::new(move |s: &Side<L, R>| match s {
                Side::Left(l) => lt(l),
                Side::Right(r) => rt(r),
            })),
            _ => None,
        };
        KeyedStream {
            stream,
            key_fn: Arc::new(move |s: &Side<L, R>| match s {
                Side::Left(l) => lk(l),
                Side::Right(r) => rk(r),
            }),
        }
    }

    fn join_op<R, O: Send + 'static>(
        self,
        name: &str,
        other: KeyedStream<R, K>,
        needs_time: Option<&str>,
        make: impl Fn(Common<L, R, K>) -> Box<dyn Operator<Side<L, R>, O>>,
    ) -> DataStream<O>
    where
        R: Codec + Clone + Send + Sync + 'static,
    {
        let connected = self.connect(other);
        let env = connected.stream.env.clone();
        let timestamp = connected.stream.timestamp.clone();
        if let Some(what) = needs_time {
            if timestamp.is_none() || !connected.stream.watermarks {
                env.invalid(format!("{what} {name:?} needs event time on both inputs"));
            }
        }
        let key_fn = connected.key_fn.clone();
        let max = env.config.max_parallelism;
        connected.stateful(name, move |state, counters| {
            make(Common {
                key_fn: key_fn.clone(),
                timestamp: timestamp.clone(),
                state,
                max_parallelism: max,
                counters,
                watermark: MIN_WATERMARK,
                timers: BTreeMap::new(),
                timers_restored: false,
            })
        })
    }

    /// Regular inner join on the key: every pair of rows of both sides with
    /// equal keys, emitted as soon as both rows are in. With `ttl_ms`, rows
    /// expire when the watermark passes their event time plus the TTL.
    pub fn join<R>(
        self,
        name: &str,
        other: KeyedStream<R, K>,
        ttl_ms: Option<i64>,
    ) -> DataStream<(L, R)>
    where
        R: Codec + Clone + Send + Sync + 'static,
    {
        let needs = ttl_ms.map(|_| "join with state TTL");
        self.join_op(name, other, needs, move |c| {
            Box::new(RegularJoin {
                c,
                outer: false,
                ttl: ttl_ms,
            })
        })
        .map_unregistered(|change: Change<(L, Option<R>)>| {
            let (l, r) = change.row;
            (l, r.expect("an inner join emits only matched pairs"))
        })
    }

    /// Regular left outer join: an updating result where an unmatched left
    /// row appears as `(l, None)` until its first match retracts it.
    pub fn left_outer_join<R>(
        self,
        name: &str,
        other: KeyedStream<R, K>,
        ttl_ms: Option<i64>,
    ) -> DataStream<Change<(L, Option<R>)>>
    where
        R: Codec + Clone + Send + Sync + 'static,
    {
        let needs = ttl_ms.map(|_| "join with state TTL");
        self.join_op(name, other, needs, move |c| {
            Box::new(RegularJoin {
                c,
                outer: true,
                ttl: ttl_ms,
            })
        })
    }

    /// Interval join: pairs with `l.ts + lower_ms <= r.ts <= l.ts + upper_ms`.
    pub fn interval_join<R>(
        self,
        name: &str,
        other: KeyedStream<R, K>,
        lower_ms: i64,
        upper_ms: i64,
    ) -> DataStream<(L, R)>
    where
        R: Codec + Clone + Send + Sync + 'static,
    {
        let env = self.stream.env.clone();
        if lower_ms > upper_ms {
            env.invalid(format!("interval join {name:?}: lower bound {lower_ms} ms is above upper bound {upper_ms} ms"));
        }
        self.join_op(name, other, Some("interval join"), move |c| {
            Box::new(IntervalJoin {
                c,
                lower: lower_ms,
                upper: upper_ms,
            })
        })
    }

    /// Window join: pairs of rows with equal keys in the same window, as
    /// `(window start, l, r)`, emitted when the window fires.
    pub fn window_join<R>(
        self,
        name: &str,
        other: KeyedStream<R, K>,
        windows: Windows,
    ) -> DataStream<(Timestamp, L, R)>
    where
        R: Codec + Clone + Send + Sync + 'static,
    {
        if let Err(e) = windows.validate() {
            self.stream
                .env
                .invalid(format!("window join {name:?}: {e}"));
        }
        self.join_op(name, other, Some("window join"), move |c| {
            Box::new(WindowJoin {
                c,
                windows,
                pending: BTreeMap::new(),
            })
        })
    }
}
