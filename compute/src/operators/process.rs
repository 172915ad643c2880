//! Keyed process functions (Flink's `KeyedProcessFunction`): user code that
//! sees one record at a time with its key's state, emits any number of
//! outputs, and sets event-time timers.
//!
//! The state of a key is one value of the user's type `S`: a plain value
//! (value state), a `Vec` (list state) or a `BTreeMap` (map state), all
//! through [`Codec`]. It is loaded for a whole batch with one multi-get and
//! written back through the worker cache. With a TTL, a key's state expires
//! once the watermark passes its last update's event time plus the TTL: it
//! reads as absent from then on and is deleted by a cleanup timer.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_state_store::Epoch;

use super::Operator;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::state::timers::TimerTable;
use crate::state::KeyedState;
use crate::stream::{DataStream, KeyedStream};
use crate::time::{KeyFn, Timestamp, TimestampFn, MIN_WATERMARK};

/// What a process function can do besides changing its state.
pub struct Context<'a, O> {
    out: &'a mut Vec<O>,
    timers: &'a mut Vec<Timestamp>,
    processing_timers: &'a mut Vec<Timestamp>,
    watermark: Timestamp,
    timestamp: Option<Timestamp>,
    now: Timestamp,
}

impl<O> Context<'_, O> {
    pub fn emit(&mut self, o: O) {
        self.out.push(o);
    }

    /// Calls `on_timer` for this key once the watermark reaches `time`.
    pub fn register_timer(&mut self, time: Timestamp) {
        self.timers.push(time);
    }

    /// Calls `on_processing_timer` for this key once the runtime clock
    /// (`JobConfig::clock`) reaches `time`, or at the end of the input.
    pub fn register_processing_timer(&mut self, time: Timestamp) {
        self.processing_timers.push(time);
    }

    pub fn watermark(&self) -> Timestamp {
        self.watermark
    }

    /// Processing time: the runtime clock as of the current input message.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Event time of the record being processed (`None` in `on_timer` or without event time).
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.timestamp
    }
}

pub trait KeyedProcessFunction<K, T, S, O>: Send + 'static {
    fn process(&mut self, key: &K, record: T, state: &mut Option<S>, ctx: &mut Context<'_, O>);

    fn on_timer(
        &mut self,
        _key: &K,
        _time: Timestamp,
        _state: &mut Option<S>,
        _ctx: &mut Context<'_, O>,
    ) {
    }

    fn on_processing_timer(
        &mut self,
        _key: &K,
        _time: Timestamp,
        _state: &mut Option<S>,
        _ctx: &mut Context<'_, O>,
    ) {
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    User,
    Cleanup,
    Processing,
}

impl TimerKind {
    /// The kind's code in the timer table.
    fn code(self) -> u8 {
        match self {
            TimerKind::User => 0,
            TimerKind::Cleanup => 1,
            TimerKind::Processing => 2,
        }
    }

    fn from_code(c: u8) -> Option<TimerKind> {
        match c {
            0 => Some(TimerKind::User),
            1 => Some(TimerKind::Cleanup),
            2 => Some(TimerKind::Processing),
            _ => None,
        }
    }
}

pub(crate) struct ProcessOperator<T, K, S, F> {
    key_fn: KeyFn<T, K>,
    timestamp: Option<TimestampFn<T>>,
    f: F,
    /// `(state, event time of the last update)`.
    state: KeyedState<(S, i64)>,
    ttl: Option<i64>,
    max_parallelism: u16,
    watermark: Timestamp,
    now: Timestamp,
    timers: BTreeMap<(Timestamp, Bytes, TimerKind), K>,
    processing_timers: BTreeMap<(Timestamp, Bytes, TimerKind), K>,
    /// The timers' copy in the store, read back after a restore.
    timer_table: TimerTable,
    timers_restored: bool,
}

impl<T, K, S, F> ProcessOperator<T, K, S, F>
where
    K: Codec + Clone + Send + Sync + 'static,
    S: Codec + Clone + Send + 'static,
{
    /// Moves the key's live state out of the cache (no copy: a key's state
    /// can be a long list); `store` puts back what the function leaves.
    fn take_live(&mut self, sk: &Bytes) -> Option<S> {
        let (s, updated) = self.state.take(sk)?;
        match self.ttl {
            Some(ttl) if updated.saturating_add(ttl) < self.watermark => None,
            _ => Some(s),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        key: &K,
        sk: Bytes,
        before: bool,
        after: Option<S>,
        now: i64,
        new_timers: &mut Vec<Timestamp>,
        new_processing_timers: &mut Vec<Timestamp>,
    ) {
        let mut key_bytes: Option<Vec<u8>> = None;
        let mut encoded = |key: &K| key_bytes.get_or_insert_with(|| key.to_bytes()).clone();
        for t in new_timers.drain(..) {
            self.timer_table
                .set(t, TimerKind::User.code(), &sk, &encoded(key));
            self.timers
                .insert((t, sk.clone(), TimerKind::User), key.clone());
        }
        for t in new_processing_timers.drain(..) {
            self.timer_table
                .set(t, TimerKind::Processing.code(), &sk, &encoded(key));
            self.processing_timers
                .insert((t, sk.clone(), TimerKind::Processing), key.clone());
        }
        match after {
            Some(s) => {
                if let Some(ttl) = self.ttl {
                    let at = now.saturating_add(ttl).saturating_add(1);
                    self.timer_table
                        .set(at, TimerKind::Cleanup.code(), &sk, &encoded(key));
                    self.timers
                        .insert((at, sk.clone(), TimerKind::Cleanup), key.clone());
                }
                self.state.put(sk, (s, now));
            }
            None if before => self.state.delete(sk),
            None => {}
        }
    }
}

impl<T, K, S, O, F> Operator<T, O> for ProcessOperator<T, K, S, F>
where
    T: Send + 'static,
    K: Codec + Clone + Send + Sync + 'static,
    S: Codec + Clone + Send + Sync + 'static,
    O: Send + 'static,
    F: KeyedProcessFunction<K, T, S, O>,
{
    fn on_batch<'a>(
        &'a mut self,
        batch: Vec<T>,
        epoch: Epoch,
        out: &'a mut Vec<O>,
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
            let (mut timers, mut ptimers) = (Vec::new(), Vec::new());
            for (rec, (key, sk)) in batch.into_iter().zip(keys) {
                let ts = self.timestamp.as_ref().map(|f| f(&rec));
                let before = self.state.get(&sk).is_some();
                let mut s = self.take_live(&sk);
                let mut ctx = Context {
                    out: &mut *out,
                    timers: &mut timers,
                    processing_timers: &mut ptimers,
                    watermark: self.watermark,
                    timestamp: ts,
                    now: self.now,
                };
                self.f.process(&key, rec, &mut s, &mut ctx);
                let updated = ts.unwrap_or(self.watermark);
                self.store(&key, sk, before, s, updated, &mut timers, &mut ptimers);
            }
            self.state.shrink(epoch).await
        })
    }

    fn on_watermark<'a>(
        &'a mut self,
        wm: Timestamp,
        epoch: Epoch,
        out: &'a mut Vec<O>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.restore_timers(epoch).await?;
            self.watermark = self.watermark.max(wm);
            let due = take_due(&mut self.timers, self.watermark, &mut self.timer_table);
            self.fire(due, epoch, out).await
        })
    }

    fn on_processing_time<'a>(
        &'a mut self,
        now: Timestamp,
        epoch: Epoch,
        out: &'a mut Vec<O>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.restore_timers(epoch).await?;
            self.now = self.now.max(now);
            let due = take_due(&mut self.processing_timers, self.now, &mut self.timer_table);
            self.fire(due, epoch, out).await
        })
    }

    fn on_barrier(&mut self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let backend = self.state.backend().clone();
            self.timer_table.flush(backend.as_ref(), epoch).await?;
            self.state.flush(epoch).await
        })
    }
}

type Due<K> = Vec<(Timestamp, Bytes, TimerKind, K)>;

/// Removes and returns the timers at or before `time`, clearing them in
/// the timer table too.
fn take_due<K>(
    timers: &mut BTreeMap<(Timestamp, Bytes, TimerKind), K>,
    time: Timestamp,
    table: &mut TimerTable,
) -> Due<K> {
    let mut due = Vec::new();
    while let Some(e) = timers.first_entry() {
        if e.key().0 > time {
            break;
        }
        let ((t, sk, kind), key) = e.remove_entry();
        table.clear(t, kind.code(), &sk);
        due.push((t, sk, kind, key));
    }
    due
}

impl<T, K, S, F> ProcessOperator<T, K, S, F>
where
    T: Send + 'static,
    K: Codec + Clone + Send + Sync + 'static,
    S: Codec + Clone + Send + Sync + 'static,
{
    /// After a restore, reads back the timers of the owned key groups.
    async fn restore_timers(&mut self, epoch: Epoch) -> Result<()> {
        if self.timers_restored {
            return Ok(());
        }
        self.timers_restored = true;
        if !self.state.restored() {
            return Ok(());
        }
        let backend = self.state.backend().clone();
        let stored = self
            .timer_table
            .load(backend.as_ref(), self.state.owned_key_groups(), epoch)
            .await?;
        let bad = |why: &str| Error::StateDecode {
            operator: "process timers".into(),
            reason: why.to_string(),
        };
        for (t, kind, sk, key) in stored {
            let kind = TimerKind::from_code(kind).ok_or_else(|| bad("unknown timer kind"))?;
            let key = K::from_bytes(&key).ok_or_else(|| bad("a timer's key does not decode"))?;
            let map = if kind == TimerKind::Processing {
                &mut self.processing_timers
            } else {
                &mut self.timers
            };
            map.insert((t, sk, kind), key);
        }
        Ok(())
    }

    /// Runs due timers: user callbacks with the key's state, and TTL cleanup.
    async fn fire<O>(&mut self, due: Due<K>, epoch: Epoch, out: &mut Vec<O>) -> Result<()>
    where
        F: KeyedProcessFunction<K, T, S, O>,
    {
        if due.is_empty() {
            return Ok(());
        }
        let sks: Vec<Bytes> = due.iter().map(|d| d.1.clone()).collect();
        self.state.load(&sks, epoch).await?;
        let (mut timers, mut ptimers) = (Vec::new(), Vec::new());
        for (t, sk, kind, key) in due {
            let before = self.state.get(&sk).is_some();
            let updated = self.state.get(&sk).map(|(_, u)| *u).unwrap_or(t);
            if kind == TimerKind::Cleanup {
                let expired = match (self.ttl, self.state.get(&sk)) {
                    (Some(ttl), Some((_, u))) => u.saturating_add(ttl) < self.watermark,
                    _ => false,
                };
                if expired {
                    self.state.delete(sk);
                }
                continue;
            }
            let mut s = self.take_live(&sk);
            let mut ctx = Context {
                out: &mut *out,
                timers: &mut timers,
                processing_timers: &mut ptimers,
                watermark: self.watermark,
                timestamp: None,
                now: self.now,
            };
            if kind == TimerKind::User {
                self.f.on_timer(&key, t, &mut s, &mut ctx);
            } else {
                self.f.on_processing_timer(&key, t, &mut s, &mut ctx);
            }
            self.store(&key, sk, before, s, updated, &mut timers, &mut ptimers);
        }
        self.state.shrink(epoch).await
    }
}

impl<T: Send + 'static, K: Codec + Clone + Send + Sync + 'static> KeyedStream<T, K> {
    /// Runs `f` on every record with its key's state of type `S`.
    pub fn process<S, O, F>(self, name: &str, f: impl Fn() -> F) -> DataStream<O>
    where
        S: Codec + Clone + Send + Sync + 'static,
        O: Send + 'static,
        F: KeyedProcessFunction<K, T, S, O>,
    {
        self.process_op(name, None, f)
    }

    /// Like [`process`](Self::process), with state that expires `ttl_ms`
    /// of event time after its last update. Needs event time.
    pub fn process_with_ttl<S, O, F>(
        self,
        name: &str,
        ttl_ms: i64,
        f: impl Fn() -> F,
    ) -> DataStream<O>
    where
        S: Codec + Clone + Send + Sync + 'static,
        O: Send + 'static,
        F: KeyedProcessFunction<K, T, S, O>,
    {
        if ttl_ms <= 0 {
            self.stream
                .env
                .invalid(format!("process {name:?}: the state TTL must be positive"));
        }
        if self.stream.timestamp.is_none() || !self.stream.watermarks {
            self.stream.env.invalid(format!(
                "process {name:?} with a state TTL needs event time"
            ));
        }
        self.process_op(name, Some(ttl_ms), f)
    }

    fn process_op<S, O, F>(self, name: &str, ttl: Option<i64>, f: impl Fn() -> F) -> DataStream<O>
    where
        S: Codec + Clone + Send + Sync + 'static,
        O: Send + 'static,
        F: KeyedProcessFunction<K, T, S, O>,
    {
        let key_fn = self.key_fn.clone();
        let timestamp = self
            .stream
            .timestamp
            .clone()
            .filter(|_| self.stream.watermarks);
        let max = self.stream.env.config.max_parallelism;
        let timer_table = self.stream.env.table(&format!("{name}.timers"));
        self.stateful(name, move |state, _| {
            Box::new(ProcessOperator {
                key_fn: key_fn.clone(),
                timestamp: timestamp.clone(),
                f: f(),
                state,
                ttl,
                max_parallelism: max,
                watermark: MIN_WATERMARK,
                now: MIN_WATERMARK,
                timers: BTreeMap::new(),
                processing_timers: BTreeMap::new(),
                timer_table: TimerTable::new(timer_table),
                timers_restored: false,
            })
        })
    }
}
