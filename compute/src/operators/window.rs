//! Event-time window aggregate over tumbling and hopping (sliding) windows.
//!
//! Each record is assigned to the windows `[start, start + size)` that
//! contain its timestamp (one for tumbling, `size / slide` for hopping). The
//! accumulator of `(key, window)` lives in state under the key's encoding
//! followed by the window end, so it shares the key's key group. A window
//! fires when the watermark reaches `end - 1`, as in Flink; it emits its
//! result and clears its state. Records whose every window has fired are
//! late: they are counted and dropped.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_state_store::Epoch;

use super::join::Side;
use super::{Aggregate, Operator};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::runtime::exchange::key_group_of;
use crate::runtime::metrics::OperatorCounters;
use crate::state::keyed::FastHash;
use crate::state::KeyedState;
use crate::time::{KeyFn, Timestamp, TimestampFn, MIN_WATERMARK};

/// Window shape: tumbling when `slide == size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub size: i64,
    pub slide: i64,
}

/// The most windows of a hopping shape one record may fall into
/// (`size / slide`, rounded up).
pub const MAX_WINDOWS_PER_RECORD: i64 = 100_000;

impl Windows {
    pub fn tumbling(size_ms: i64) -> Self {
        Windows {
            size: size_ms,
            slide: size_ms,
        }
    }

    pub fn hopping(size_ms: i64, slide_ms: i64) -> Self {
        Windows {
            size: size_ms,
            slide: slide_ms,
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.size <= 0 || self.slide <= 0 || self.slide > self.size {
            return Err(Error::InvalidJob(format!(
                "window size {} ms and slide {} ms: both must be positive and slide <= size",
                self.size, self.slide
            )));
        }
        // Each record is folded into every window holding it: past this
        // many, one record costs more than a batch should.
        let per_record = (self.size + self.slide - 1) / self.slide;
        if per_record > MAX_WINDOWS_PER_RECORD {
            return Err(Error::InvalidJob(format!(
                "window size {} ms and slide {} ms put each record in {per_record} windows; \
                 at most {MAX_WINDOWS_PER_RECORD} are allowed",
                self.size, self.slide
            )));
        }
        Ok(())
    }

    /// Starts of the windows holding `ts`, earliest first.
    pub fn starts(&self, ts: Timestamp) -> impl Iterator<Item = Timestamp> {
        let last = ts - ts.rem_euclid(self.slide);
        let (size, slide) = (self.size, self.slide);
        let mut first = last - ((size + slide - 1) / slide - 1) * slide;
        while first + size <= ts {
            first += slide;
        }
        (0..)
            .map(move |i| first + i * slide)
            .take_while(move |s| *s <= last)
    }
}

/// One fired window's result.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowResult<K, Out> {
    pub key: K,
    pub start: Timestamp,
    pub end: Timestamp,
    pub value: Out,
}

/// A window's result as it crosses an exchange: key, start, end, value.
impl<K: Codec, Out: Codec> Codec for WindowResult<K, Out> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.key.encode(out);
        self.start.encode(out);
        self.end.encode(out);
        self.value.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        Some(WindowResult {
            key: K::decode(input)?,
            start: Timestamp::decode(input)?,
            end: Timestamp::decode(input)?,
            value: Out::decode(input)?,
        })
    }
}

pub struct WindowAggregate<T, K, Acc, Out> {
    pub(crate) key_fn: KeyFn<T, K>,
    pub(crate) timestamp: TimestampFn<T>,
    pub(crate) windows: Windows,
    pub(crate) agg: Aggregate<T, Acc, Out>,
    pub(crate) state: KeyedState<Acc>,
    pub(crate) max_parallelism: u16,
    pub(crate) counters: Arc<OperatorCounters>,
    /// Pending windows by end: `end -> [(state key, key, start)]`, one
    /// entry per window, added when its accumulator is created (keyed by
    /// end alone: ordering by state key too cost a key comparison per
    /// window and batch).
    pub(crate) timers: BTreeMap<Timestamp, Vec<(Bytes, K, Timestamp)>>,
    pub(crate) watermark: Timestamp,
    /// Emit late records as `Side::Right` (a side output) instead of dropping them.
    pub(crate) route_late: bool,
    /// Windows in processing time: records belong to the window holding the
    /// runtime clock's `now` at arrival, and fire as the clock passes their end.
    pub(crate) processing_time: bool,
    pub(crate) now: Timestamp,
    /// Whether the timers of a restored subtask were read back from state.
    pub(crate) timers_restored: bool,
}

impl<T, K, Acc, Out> WindowAggregate<T, K, Acc, Out> {
    pub(crate) fn new(
        key_fn: KeyFn<T, K>,
        timestamp: TimestampFn<T>,
        windows: Windows,
        agg: Aggregate<T, Acc, Out>,
        state: KeyedState<Acc>,
        max_parallelism: u16,
        counters: Arc<OperatorCounters>,
    ) -> Self {
        WindowAggregate {
            key_fn,
            timestamp,
            windows,
            agg,
            state,
            max_parallelism,
            counters,
            timers: BTreeMap::new(),
            watermark: MIN_WATERMARK,
            route_late: false,
            processing_time: false,
            now: MIN_WATERMARK,
            timers_restored: false,
        }
    }

    /// After a restore, the pending windows are the accumulators in state:
    /// each state key ends in its window's end, so the timers are read back
    /// from a scan of the owned key groups.
    async fn restore_timers(&mut self, epoch: Epoch) -> Result<()>
    where
        K: Codec,
        Acc: Codec + Clone + Send,
    {
        if self.timers_restored || !self.state.restored() {
            self.timers_restored = true;
            return Ok(());
        }
        self.timers_restored = true;
        let table = self.state.table();
        for (sk, _) in self.state.scan_owned(table, epoch).await? {
            let body = &sk[riverbed_state_store::keys::KEY_PREFIX_LEN..];
            let Some((key_bytes, end)) = body.split_at_checked(body.len().saturating_sub(8)) else {
                continue;
            };
            let end = Timestamp::from_be_bytes(end.try_into().map_err(|_| Error::StateDecode {
                operator: "window".into(),
                reason: "a window state key without its end".into(),
            })?);
            let key = K::from_bytes(key_bytes).ok_or_else(|| Error::StateDecode {
                operator: "window".into(),
                reason: "a window state key whose key does not decode".into(),
            })?;
            self.timers
                .entry(end)
                .or_default()
                .push((sk, key, end - self.windows.size));
        }
        Ok(())
    }
}

impl<T, K, Acc, Out> Operator<T, Side<WindowResult<K, Out>, T>> for WindowAggregate<T, K, Acc, Out>
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
        out: &'a mut Vec<Side<WindowResult<K, Out>, T>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.restore_timers(epoch).await?;
            // Records of one batch with the same key and the same slide
            // slice (hence the same windows) fold into one state update and
            // one timer per window: hot keys and hopping windows cost one
            // state access per distinct (key, window), not per record.
            let slide = self.windows.slide;
            // Groups: (key bytes as a range of `arena`, key, a timestamp,
            // first and last row), rows chained through `next`; found by a
            // hash of (key bytes, slice). A hash collision only splits a
            // group in two, which is still correct.
            const NONE: u32 = u32::MAX;
            let mut arena: Vec<u8> = Vec::new();
            let mut groups: Vec<(std::ops::Range<usize>, K, Timestamp, u32, u32)> = Vec::new();
            let mut group_of: HashMap<u64, usize, FastHash> = HashMap::default();
            let mut next = vec![NONE; batch.len()];
            let mut late_rows: Vec<usize> = Vec::new();
            let hasher = FastHash::default();
            for (i, t) in batch.iter().enumerate() {
                let ts = if self.processing_time {
                    self.now
                } else {
                    (self.timestamp)(t)
                };
                if ts > Timestamp::MAX - 2 * self.windows.size {
                    // No window that holds it can end: it can never fire.
                    late_rows.push(i);
                    continue;
                }
                let key = (self.key_fn)(t);
                let start = arena.len();
                key.encode(&mut arena);
                let slice = ts.div_euclid(slide);
                let h = hasher.hash_one((&arena[start..], slice));
                let found = group_of.get(&h).copied().filter(|&g| {
                    let (r, _, gts, _, _) = &groups[g];
                    arena[r.clone()] == arena[start..] && gts.div_euclid(slide) == slice
                });
                match found {
                    Some(g) => {
                        arena.truncate(start);
                        next[groups[g].4 as usize] = i as u32;
                        groups[g].4 = i as u32;
                    }
                    None => {
                        group_of.insert(h, groups.len());
                        groups.push((start..arena.len(), key, ts, i as u32, i as u32));
                    }
                }
            }
            let mut sks: Vec<Bytes> = Vec::new();
            let mut windows: Vec<(usize, Timestamp, Timestamp)> = Vec::new();
            let mut kb = Vec::new();
            for (g, (range, _, ts, first, _)) in groups.iter().enumerate() {
                kb.clear();
                kb.extend_from_slice(&arena[range.clone()]);
                let kg = key_group_of(&kb, self.max_parallelism);
                let key_len = kb.len();
                let mut any = false;
                for start in self.windows.starts(*ts) {
                    let end = start + self.windows.size;
                    if end - 1 <= self.watermark {
                        continue;
                    }
                    any = true;
                    kb.truncate(key_len);
                    kb.extend_from_slice(&end.to_be_bytes());
                    sks.push(self.state.state_key(kg, &kb));
                    windows.push((g, start, end));
                }
                if !any {
                    let mut i = *first;
                    while i != NONE {
                        late_rows.push(i as usize);
                        i = next[i as usize];
                    }
                }
            }
            late_rows.sort_unstable();
            OperatorCounters::add(&self.counters.late_records, late_rows.len());
            let slots = self.state.load_slots(&sks, epoch).await?;
            for ((sk, (g, start, end)), slot) in sks.into_iter().zip(windows).zip(slots) {
                let (_, key, _, first, _) = &groups[g];
                let (add, create) = (&self.agg.add, &self.agg.create);
                let new_window = self.state.modify_slot(slot, |acc| {
                    let created = acc.is_none();
                    let acc = acc.get_or_insert_with(create);
                    let mut i = *first;
                    while i != NONE {
                        add(acc, &batch[i as usize]);
                        i = next[i as usize];
                    }
                    created
                });
                if new_window {
                    self.timers
                        .entry(end)
                        .or_default()
                        .push((sk, key.clone(), start));
                }
            }
            if self.route_late && !late_rows.is_empty() {
                let mut late_rows = late_rows.into_iter().peekable();
                for (i, t) in batch.into_iter().enumerate() {
                    if late_rows.peek() == Some(&i) {
                        late_rows.next();
                        out.push(Side::Right(t));
                    }
                }
            }
            self.state.shrink(epoch).await
        })
    }

    fn on_watermark<'a>(
        &'a mut self,
        wm: Timestamp,
        epoch: Epoch,
        out: &'a mut Vec<Side<WindowResult<K, Out>, T>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if self.processing_time {
                return Ok(());
            }
            self.restore_timers(epoch).await?;
            self.fire(wm, epoch, out).await
        })
    }

    fn on_processing_time<'a>(
        &'a mut self,
        now: Timestamp,
        epoch: Epoch,
        out: &'a mut Vec<Side<WindowResult<K, Out>, T>>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if !self.processing_time {
                return Ok(());
            }
            self.restore_timers(epoch).await?;
            self.now = self.now.max(now);
            // A watermark t says no record at or before t is to come, but a
            // clock at t still assigns the records arriving now to the window
            // holding t: a window [start, end) fires once the clock reaches
            // its end, not its last millisecond, or the records arriving in
            // that millisecond would find it closed and be dropped as late.
            self.fire(self.now.saturating_sub(1), epoch, out).await
        })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.state.flush(epoch).await })
    }
}

impl<T, K, Acc, Out> WindowAggregate<T, K, Acc, Out>
where
    T: Send + 'static,
    K: Codec + Clone + Send + Sync + 'static,
    Acc: Codec + Clone + Send + Sync + 'static,
    Out: Send + 'static,
{
    /// Fires every window whose end - 1 is at or below `wm`.
    async fn fire(
        &mut self,
        wm: Timestamp,
        epoch: Epoch,
        out: &mut Vec<Side<WindowResult<K, Out>, T>>,
    ) -> Result<()> {
        {
            self.watermark = self.watermark.max(wm);
            let mut due = Vec::new();
            while let Some(entry) = self.timers.first_entry() {
                if entry.key() - 1 > self.watermark {
                    break;
                }
                let (end, windows) = entry.remove_entry();
                due.extend(
                    windows
                        .into_iter()
                        .map(|(sk, key, start)| (end, sk, key, start)),
                );
            }
            if due.is_empty() {
                return Ok(());
            }
            let sks: Vec<Bytes> = due.iter().map(|d| d.1.clone()).collect();
            self.state.load(&sks, epoch).await?;
            for (end, sk, key, start) in due {
                if let Some(acc) = self.state.get(&sk) {
                    out.push(Side::Left(WindowResult {
                        key,
                        start,
                        end,
                        value: (self.agg.result)(acc),
                    }));
                }
                self.state.delete(sk);
            }
            self.state.shrink(epoch).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A processing-time window stays open through its last millisecond:
    /// a batch arriving when the clock reads `end - 1` is counted in it,
    /// and the window fires once with that count when the clock reaches
    /// `end`.
    #[test]
    fn processing_time_windows_take_records_in_their_last_millisecond() {
        use riverbed_state_store::TableId;

        use crate::state::EmbeddedBackend;

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_dir, backend) = EmbeddedBackend::in_temp_dir().await;
            let counters = Arc::new(OperatorCounters::default());
            let state = KeyedState::new(TableId(1), "w", backend, counters.clone(), 100);
            let mut op: WindowAggregate<u64, u64, u64, u64> = WindowAggregate::new(
                Arc::new(|k: &u64| *k),
                Arc::new(|_: &u64| 0),
                Windows::tumbling(10),
                Aggregate::count(),
                state,
                128,
                counters,
            );
            op.processing_time = true;
            let epoch = Epoch(1);
            let mut out = Vec::new();
            let fired = |out: &mut Vec<Side<WindowResult<u64, u64>, u64>>| -> Vec<(u64, i64, u64)> {
                out.drain(..)
                    .map(|s| match s {
                        Side::Left(r) => (r.key, r.start, r.value),
                        Side::Right(t) => panic!("record {t} dropped as late"),
                    })
                    .collect()
            };
            op.on_processing_time(3, epoch, &mut out).await.unwrap();
            op.on_batch(vec![7, 7], epoch, &mut out).await.unwrap();
            op.on_processing_time(9, epoch, &mut out).await.unwrap();
            assert_eq!(
                fired(&mut out),
                vec![],
                "the window [0, 10) is still open at 9"
            );
            op.route_late = true;
            op.on_batch(vec![7, 8], epoch, &mut out).await.unwrap();
            assert_eq!(fired(&mut out), vec![]);
            op.on_processing_time(10, epoch, &mut out).await.unwrap();
            let mut got = fired(&mut out);
            got.sort_unstable();
            assert_eq!(got, vec![(7, 0, 3), (8, 0, 1)]);
            op.on_batch(vec![7], epoch, &mut out).await.unwrap();
            op.on_processing_time(20, epoch, &mut out).await.unwrap();
            assert_eq!(fired(&mut out), vec![(7, 10, 1)]);
        });
    }

    #[test]
    fn assigns_tumbling_and_hopping_windows() {
        let t = Windows::tumbling(10);
        assert_eq!(t.starts(0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(t.starts(19).collect::<Vec<_>>(), vec![10]);
        assert_eq!(t.starts(-1).collect::<Vec<_>>(), vec![-10]);
        let h = Windows::hopping(10, 5);
        assert_eq!(h.starts(12).collect::<Vec<_>>(), vec![5, 10]);
        assert_eq!(h.starts(10).collect::<Vec<_>>(), vec![5, 10]);
        assert_eq!(h.starts(9).collect::<Vec<_>>(), vec![0, 5]);
        let h3 = Windows::hopping(10, 3);
        for ts in -20..40 {
            let got: Vec<_> = h3.starts(ts).collect();
            let want: Vec<i64> = (-40i64..40)
                .filter(|s| s.rem_euclid(3) == 0 && *s <= ts && ts < s + 10)
                .collect();
            assert_eq!(got, want, "ts {ts}");
        }
    }
}
