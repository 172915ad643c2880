//! Two-input keyed joins: regular (inner and left outer, with state TTL),
//! interval, and tumbling/hopping window joins.
//!
//! Both inputs are keyed by the same key type, so subtask `i` of each owns
//! the same key groups; `connect` tags each side and merges subtask `i` of
//! both into one input (watermark: the minimum of the two; barriers
//! aligned), and the join runs as one keyed operator over `Side<L, R>`.
//!
//! # State
//!
//! Every row is an entry of its own ([`EntryState`]): a key's rows are
//! read by a prefix scan, a new row writes one entry, and a key with more
//! rows than memory holds (a hot auction's bids) is paged from the store.
//!
//! ```text
//! prefix    := table | key group | key [| window end i64 BE (window join)]
//! key       := prefix | side u8 (0 left, 1 right) | entry key
//! entry key := event time i64 (sign bit flipped, BE) | epoch u64 BE |
//!              sequence in the epoch u32 BE
//! value     := JoinRow: left row with whether it ever matched, or right row
//! ```
//!
//! Entries of a side sort by event time, so the rows a watermark expires
//! are the first ones of each side.
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
use crate::state::entries::{EntrySeq, EntryState, SEQ_LEN};
use crate::stream::{DataStream, KeyedStream};
use crate::time::{KeyFn, Timestamp, TimestampFn, MIN_WATERMARK};

/// A record of either input of a two-input operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Side<L, R> {
    Left(L),
    Right(R),
}

/// A record of either side as it crosses an exchange: a tag, then the row.
impl<L: Codec, R: Codec> Codec for Side<L, R> {
    fn schema() -> crate::codec::Schema {
        use crate::codec::Schema;
        Schema::Enum(vec![
            ("left".into(), Some(L::schema())),
            ("right".into(), Some(R::schema())),
        ])
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Side::Left(l) => {
                out.push(0);
                l.encode(out);
            }
            Side::Right(r) => {
                out.push(1);
                r.encode(out);
            }
        }
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        let (&tag, rest) = input.split_first()?;
        *input = rest;
        match tag {
            0 => Some(Side::Left(L::decode(input)?)),
            1 => Some(Side::Right(R::decode(input)?)),
            _ => None,
        }
    }
}

/// One stored row. A left row remembers whether it ever met a right row:
/// an outer join retracts its unmatched form only once, as Flink's
/// association count does.
#[derive(Debug, Clone, PartialEq)]
pub enum JoinRow<L, R> {
    Left(L, bool),
    Right(R),
}

impl<L: Codec, R: Codec> Codec for JoinRow<L, R> {
    fn schema() -> crate::codec::Schema {
        use crate::codec::Schema;
        Schema::Enum(vec![
            ("left".into(), Some(L::schema())),
            ("left_matched".into(), Some(L::schema())),
            ("right".into(), Some(R::schema())),
        ])
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            JoinRow::Left(l, matched) => {
                out.push(if *matched { 1 } else { 0 });
                l.encode(out);
            }
            JoinRow::Right(r) => {
                out.push(2);
                r.encode(out);
            }
        }
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        let (&tag, rest) = input.split_first()?;
        *input = rest;
        match tag {
            0 | 1 => Some(JoinRow::Left(L::decode(input)?, tag == 1)),
            2 => Some(JoinRow::Right(R::decode(input)?)),
            _ => None,
        }
    }
}

const LEFT: u8 = 0;
const RIGHT: u8 = 1;
/// Bytes of an entry key within its side: time, epoch, sequence.
const ENTRY_LEN: usize = 8 + SEQ_LEN;

/// The part of an entry key up to its time: a bound for "rows older than
/// `ts`".
fn time_bound(ts: Timestamp) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

/// The event time in an entry key.
fn time_of(entry: &[u8]) -> Option<Timestamp> {
    let t: [u8; 8] = entry.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(t) ^ (1 << 63)) as i64)
}

/// The entries of one side of a key: the key's prefix and the side byte.
fn side_prefix(prefix: &[u8], side: u8) -> Bytes {
    let mut p = Vec::with_capacity(prefix.len() + 1);
    p.extend_from_slice(prefix);
    p.push(side);
    Bytes::from(p)
}

struct Common<L, R, K> {
    key_fn: KeyFn<Side<L, R>, K>,
    timestamp: Option<TimestampFn<Side<L, R>>>,
    state: EntryState<JoinRow<L, R>>,
    max_parallelism: u16,
    counters: Arc<OperatorCounters>,
    watermark: Timestamp,
    /// Keys with rows to expire, by the watermark that expires them.
    timers: BTreeMap<(Timestamp, Bytes), ()>,
    /// Whether the timers of a restored subtask were read back from state.
    timers_restored: bool,
    /// Makes entry keys unique after the row's time.
    seq: EntrySeq,
}

impl<L, R, K> Common<L, R, K>
where
    L: Codec + Clone + Send + 'static,
    R: Codec + Clone + Send + 'static,
    K: Codec + Send + Sync + 'static,
{
    fn prefix(&self, s: &Side<L, R>, suffix: &[u8]) -> Bytes {
        self.state
            .prefix_of(&(self.key_fn)(s), self.max_parallelism, suffix)
    }

    fn ts(&self, s: &Side<L, R>) -> Timestamp {
        self.timestamp.as_ref().map_or(0, |f| f(s))
    }

    /// A fresh entry key for a row at `ts`, written in `epoch`.
    fn entry_key(&mut self, ts: Timestamp, epoch: Epoch) -> [u8; ENTRY_LEN] {
        let mut k = [0u8; ENTRY_LEN];
        k[..8].copy_from_slice(&time_bound(ts));
        k[8..].copy_from_slice(&self.seq.next(epoch));
        k
    }

    /// The left rows under `lefts` (a key's left side): `(entry key, row,
    /// whether it ever matched)`, oldest first.
    ///
    /// Rows are collected rather than handed to a callback: a callback
    /// borrowing the caller's rows across the store read would need them to
    /// be `Sync`.
    async fn lefts(&mut self, lefts: &Bytes, epoch: Epoch) -> Result<Vec<(Vec<u8>, L, bool)>> {
        let mut rows = Vec::new();
        self.state
            .for_each(lefts, epoch, |entry, row| {
                if let JoinRow::Left(l, matched) = row {
                    rows.push((entry.to_vec(), l.clone(), *matched));
                }
                true
            })
            .await?;
        Ok(rows)
    }

    /// The right rows under `rights` with their entry keys, oldest first.
    async fn rights_with_entries(
        &mut self,
        rights: &Bytes,
        epoch: Epoch,
    ) -> Result<Vec<(Vec<u8>, R)>> {
        let mut rows = Vec::new();
        self.state
            .for_each(rights, epoch, |entry, row| {
                if let JoinRow::Right(r) = row {
                    rows.push((entry.to_vec(), r.clone()));
                }
                true
            })
            .await?;
        Ok(rows)
    }

    /// The right rows under `rights` with their event times, oldest first.
    async fn rights(&mut self, rights: &Bytes, epoch: Epoch) -> Result<Vec<(Timestamp, R)>> {
        let rows = self.rights_with_entries(rights, epoch).await?;
        Ok(rows
            .into_iter()
            .map(|(e, r)| (time_of(&e).unwrap_or(Timestamp::MIN), r))
            .collect())
    }

    /// Adds `row` of `side` under `prefix`.
    fn add(&mut self, prefix: &[u8], side: u8, ts: Timestamp, epoch: Epoch, row: JoinRow<L, R>) {
        let entry = self.entry_key(ts, epoch);
        let p = side_prefix(prefix, side);
        self.state.put(&p, &entry, row);
    }

    /// After a restore, re-arms from the rows in state what lives only in
    /// memory: `arm(self, prefix, side, time)` sees the oldest row of each
    /// side of each key.
    async fn restore_timers(
        &mut self,
        epoch: Epoch,
        mut arm: impl FnMut(&mut Self, Bytes, u8, Timestamp),
    ) -> Result<()> {
        if std::mem::replace(&mut self.timers_restored, true) || !self.state.restored() {
            return Ok(());
        }
        let bad = || Error::StateDecode {
            operator: "join".into(),
            reason: "a join state key shorter than its layout".into(),
        };
        let mut last: Option<(Bytes, u8)> = None;
        for (k, _) in self.state.scan_owned(epoch).await? {
            // prefix | side | entry key
            let at = k
                .len()
                .checked_sub(ENTRY_LEN + 1)
                .filter(|a| *a >= KEY_PREFIX_LEN)
                .ok_or_else(bad)?;
            let (prefix, side, entry) = (k.slice(..at), k[at], &k[at + 1..]);
            // Entries of a side sort by time: its first is its oldest.
            if last
                .as_ref()
                .is_some_and(|(p, s)| *p == prefix && *s == side)
            {
                continue;
            }
            let ts = time_of(entry).ok_or_else(bad)?;
            last = Some((prefix.clone(), side));
            arm(self, prefix, side, ts);
        }
        Ok(())
    }

    /// Re-arms the expiry timers of a restored subtask; `offsets` are as in
    /// [`Common::expire`].
    async fn restore_expiry(&mut self, epoch: Epoch, offsets: [i64; 2]) -> Result<()> {
        self.restore_timers(epoch, |c, prefix, side, ts| {
            let t = ts.saturating_add(offsets[usize::from(side)]);
            c.timers.insert((t, prefix), ());
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

    /// Drops the rows of the due keys whose time plus their side's offset
    /// (`offsets[side]`) the watermark has passed (`strict`: or reached),
    /// and re-arms a timer at the next row to expire.
    async fn expire(
        &mut self,
        wm: Timestamp,
        epoch: Epoch,
        offsets: [i64; 2],
        strict: bool,
    ) -> Result<()> {
        let keys = self.due(wm);
        let wm = self.watermark;
        for k in keys {
            let mut next: Option<Timestamp> = None;
            for side in [LEFT, RIGHT] {
                let off = offsets[usize::from(side)];
                let p = side_prefix(&k, side);
                // A row stays while time + offset >= watermark (strict: >).
                let cutoff = wm.saturating_sub(off);
                let below = time_bound(if strict {
                    cutoff.saturating_add(1)
                } else {
                    cutoff
                });
                let mut gone: Vec<Vec<u8>> = Vec::new();
                let mut first_kept: Option<Timestamp> = None;
                self.state
                    .for_each(&p, epoch, |entry, _| {
                        if entry < &below[..] {
                            gone.push(entry.to_vec());
                            true
                        } else {
                            first_kept = time_of(entry);
                            false
                        }
                    })
                    .await?;
                for e in gone {
                    self.state.delete(&p, &e);
                }
                if let Some(t) = first_kept {
                    let t = t.saturating_add(off);
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
            if let Some(t) = next {
                self.timers.insert((t, k), ());
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
            let outer = self.outer;
            for rec in batch {
                let ts = self.c.ts(&rec);
                if self
                    .ttl
                    .is_some_and(|ttl| ts.saturating_add(ttl) < self.c.watermark)
                {
                    OperatorCounters::add(&self.c.counters.late_records, 1);
                    continue;
                }
                let k = self.c.prefix(&rec, &[]);
                match rec {
                    Side::Left(l) => {
                        let rights = side_prefix(&k, RIGHT);
                        let partners = self.c.rights(&rights, epoch).await?;
                        for (_, r) in &partners {
                            out.push(insert((l.clone(), Some(r.clone()))));
                        }
                        let matched = !partners.is_empty();
                        if !matched && outer {
                            out.push(insert((l.clone(), None)));
                        }
                        self.c.add(&k, LEFT, ts, epoch, JoinRow::Left(l, matched));
                    }
                    Side::Right(r) => {
                        let lefts = side_prefix(&k, LEFT);
                        for (entry, l, matched) in self.c.lefts(&lefts, epoch).await? {
                            if outer && !matched {
                                // The left row stops being unmatched.
                                out.push(Change {
                                    kind: RowKind::Delete,
                                    row: (l.clone(), None),
                                });
                                self.c
                                    .state
                                    .put(&lefts, &entry, JoinRow::Left(l.clone(), true));
                            }
                            out.push(insert((l, Some(r.clone()))));
                        }
                        self.c.add(&k, RIGHT, ts, epoch, JoinRow::Right(r));
                    }
                }
                if let Some(ttl) = self.ttl {
                    self.c.timers.insert((ts.saturating_add(ttl), k), ());
                }
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
            self.c.expire(wm, epoch, [ttl, ttl], false).await
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
            Some(ttl) => self.c.restore_expiry(epoch, [ttl, ttl]).await,
            None => Ok(()),
        }
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

impl<L, R, K> IntervalJoin<L, R, K> {
    /// How long past its time each side's row can still meet a partner: a
    /// left row meets right rows up to `ts + upper`; a right row meets left
    /// rows down to `ts - upper`, which arrive only while `ts - lower` is
    /// above the watermark.
    fn offsets(&self) -> [i64; 2] {
        [self.upper.max(0), self.lower.min(0).saturating_neg()]
    }
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
            let offsets = self.offsets();
            self.c.restore_expiry(epoch, offsets).await?;
            let (lower, upper) = (self.lower, self.upper);
            for rec in batch {
                let ts = self.c.ts(&rec);
                if ts <= self.c.watermark {
                    // As in Flink, a record behind the watermark may miss partners already dropped.
                    OperatorCounters::add(&self.c.counters.late_records, 1);
                    continue;
                }
                let k = self.c.prefix(&rec, &[]);
                let cleanup = match rec {
                    Side::Left(l) => {
                        // Right rows in [ts + lower, ts + upper].
                        let (lo, hi) = (ts.saturating_add(lower), ts.saturating_add(upper));
                        for (rt, r) in self.c.rights(&side_prefix(&k, RIGHT), epoch).await? {
                            if lo <= rt && rt <= hi {
                                out.push((l.clone(), r));
                            }
                        }
                        self.c.add(&k, LEFT, ts, epoch, JoinRow::Left(l, true));
                        ts.saturating_add(offsets[0])
                    }
                    Side::Right(r) => {
                        // Left rows in [ts - upper, ts - lower].
                        let (lo, hi) = (ts.saturating_sub(upper), ts.saturating_sub(lower));
                        for (entry, l, _) in self.c.lefts(&side_prefix(&k, LEFT), epoch).await? {
                            let lt = time_of(&entry).unwrap_or(Timestamp::MIN);
                            if lo <= lt && lt <= hi {
                                out.push((l, r.clone()));
                            }
                        }
                        self.c.add(&k, RIGHT, ts, epoch, JoinRow::Right(r));
                        ts.saturating_add(offsets[1])
                    }
                };
                self.c.timers.insert((cleanup, k), ());
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
            let offsets = self.offsets();
            self.c.restore_expiry(epoch, offsets).await?;
            // A row that can only meet partners at the watermark or below
            // meets none: those come late.
            self.c.expire(wm, epoch, offsets, true).await
        })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.c.state.flush(epoch).await })
    }
}

/// Window join: pairs of rows of one key in the same window, emitted when
/// the window fires.
pub struct WindowJoin<L, R, K> {
    c: Common<L, R, K>,
    windows: Windows,
    /// `(window end, key's prefix) -> window start`.
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
            for rec in batch {
                let ts = self.c.ts(&rec);
                if ts > Timestamp::MAX - 2 * self.windows.size {
                    OperatorCounters::add(&self.c.counters.late_records, 1);
                    continue;
                }
                let mut any = false;
                for start in self.windows.starts(ts) {
                    let end = start + self.windows.size;
                    if end - 1 <= self.c.watermark {
                        continue;
                    }
                    any = true;
                    let k = self.c.prefix(&rec, &end.to_be_bytes());
                    let (side, row) = match &rec {
                        Side::Left(l) => (LEFT, JoinRow::Left(l.clone(), true)),
                        Side::Right(r) => (RIGHT, JoinRow::Right(r.clone())),
                    };
                    self.c.add(&k, side, ts, epoch, row);
                    self.pending.insert((end, k), start);
                }
                if !any {
                    OperatorCounters::add(&self.c.counters.late_records, 1);
                }
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
            while let Some(e) = self.pending.first_entry() {
                if e.key().0 - 1 > self.c.watermark {
                    break;
                }
                let ((_, k), start) = e.remove_entry();
                let lefts = side_prefix(&k, LEFT);
                let ls = self.c.lefts(&lefts, epoch).await?;
                let rights = side_prefix(&k, RIGHT);
                let rs = self.c.rights_with_entries(&rights, epoch).await?;
                for (_, l, _) in &ls {
                    for (_, r) in &rs {
                        out.push((start, l.clone(), r.clone()));
                    }
                }
                for (e, _, _) in &ls {
                    self.c.state.delete(&lefts, e);
                }
                for (e, _) in &rs {
                    self.c.state.delete(&rights, e);
                }
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
    /// key's prefix ends in its window's end.
    async fn restore_pending(&mut self, epoch: Epoch) -> Result<()> {
        let size = self.windows.size;
        let mut pending = std::mem::take(&mut self.pending);
        let mut bad = false;
        self.c
            .restore_timers(epoch, |_, prefix, _, _| {
                match prefix.len().checked_sub(8).and_then(|at| prefix.get(at..)) {
                    Some(end) if prefix.len() >= KEY_PREFIX_LEN + 8 => {
                        let end = Timestamp::from_be_bytes(end.try_into().expect("8 bytes"));
                        pending.insert((end, prefix), end - size);
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
        ttl_ms: Option<i64>,
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
        // A join with state TTL registers it: the store's compaction filter
        // and a query see when its rows expire.
        connected.stateful_ttl(name, ttl_ms, move |state, counters| {
            make(Common {
                key_fn: key_fn.clone(),
                timestamp: timestamp.clone(),
                state,
                max_parallelism: max,
                counters,
                watermark: MIN_WATERMARK,
                timers: BTreeMap::new(),
                timers_restored: false,
                seq: EntrySeq::default(),
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
        self.join_op(name, other, needs, ttl_ms, move |c| {
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
        self.join_op(name, other, needs, ttl_ms, move |c| {
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
        self.join_op(name, other, Some("interval join"), None, move |c| {
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
        self.join_op(name, other, Some("window join"), None, move |c| {
            Box::new(WindowJoin {
                c,
                windows,
                pending: BTreeMap::new(),
            })
        })
    }
}
