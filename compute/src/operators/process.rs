//! Keyed process functions (Flink's `KeyedProcessFunction`): user code that
//! sees one record at a time with its key's state, emits any number of
//! outputs, and sets event-time timers.
//!
//! A key has two kinds of state:
//! - a **value** of the user's type `S` (a plain value, a small `Vec` or
//!   `BTreeMap`, through [`Codec`]), loaded for a whole batch with one
//!   multi-get and written back through the worker cache;
//! - a **list** of `L` items (Flink's `ListState`) with one store key per
//!   item: adding an item writes only that item, and the list is read, a
//!   page at a time, only when the function drains it, so one key's list may
//!   be larger than memory (bids waiting for their auction).
//!
//! With a TTL, a key's state (value and list) expires once the watermark
//! passes its last update's event time plus the TTL: it reads as absent from
//! then on and is deleted by a cleanup timer.
//!
//! # State layout
//!
//! ```text
//! table NAME        key   := table | key group | key
//!                   value := (value Option<S>, last update i64, list length u32)
//! table NAME.list   key   := table | key group | key | epoch u64 BE | seq u32 BE
//!                   value := item L
//! table NAME.timers see state::timers
//! ```
//!
//! A key has a record in `NAME` while it has a value or list items; the
//! list length in it spares a store read when a drained list is empty.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_state_store::{Epoch, TableId};

use super::Operator;
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::state::entries::EntrySeq;
use crate::state::keyed::FastHash;
use crate::state::timers::TimerTable;
use crate::state::{EntryState, KeyedState};
use crate::stream::{DataStream, KeyedStream};
use crate::time::{KeyFn, Timestamp, TimestampFn, MIN_WATERMARK};

/// What a process function can do besides changing its state.
pub struct Context<'a, O, L = ()> {
    out: &'a mut Vec<O>,
    timers: &'a mut Vec<Timestamp>,
    processing_timers: &'a mut Vec<Timestamp>,
    list: &'a mut ListOps<L>,
    watermark: Timestamp,
    timestamp: Option<Timestamp>,
    now: Timestamp,
}

/// What callbacks asked of their key's list, applied once they return.
struct ListOps<L> {
    added: Vec<L>,
    drain: bool,
}

impl<O, L> Context<'_, O, L> {
    pub fn emit(&mut self, o: O) {
        self.out.push(o);
    }

    /// Appends `item` to the key's list (a write of the item alone: the
    /// list is not read).
    pub fn add_to_list(&mut self, item: L) {
        self.list.added.push(item);
    }

    /// Asks for the key's list: once this callback returns,
    /// [`on_list`](KeyedProcessFunction::on_list) gets every item, the ones
    /// this callback added included, oldest first and a page at a time, and
    /// the list is left empty. Items added inside `on_list` stay for the
    /// next drain.
    pub fn drain_list(&mut self) {
        self.list.drain = true;
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

/// User code run per key. `L` is the item type of the key's list; a
/// function that keeps no list leaves it `()`.
pub trait KeyedProcessFunction<K, T, S, O, L = ()>: Send + 'static {
    fn process(&mut self, key: &K, record: T, state: &mut Option<S>, ctx: &mut Context<'_, O, L>);

    fn on_timer(
        &mut self,
        _key: &K,
        _time: Timestamp,
        _state: &mut Option<S>,
        _ctx: &mut Context<'_, O, L>,
    ) {
    }

    fn on_processing_timer(
        &mut self,
        _key: &K,
        _time: Timestamp,
        _state: &mut Option<S>,
        _ctx: &mut Context<'_, O, L>,
    ) {
    }

    /// A page of the key's list after [`Context::drain_list`], oldest first.
    fn on_list(
        &mut self,
        _key: &K,
        _items: Vec<L>,
        _state: &mut Option<S>,
        _ctx: &mut Context<'_, O, L>,
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

/// A key's record in the value table: its value, the event time of its
/// last update, its list's length.
type Record<S> = (Option<S>, i64, u32);

/// Items handed to `on_list` at a time.
const LIST_PAGE: usize = 256;

pub(crate) struct ProcessOperator<T, K, S, L, F> {
    key_fn: KeyFn<T, K>,
    timestamp: Option<TimestampFn<T>>,
    f: F,
    state: KeyedState<Record<S>>,
    list: EntryState<L>,
    list_table: TableId,
    list_seq: EntrySeq,
    /// Lists begun since the last barrier, by list prefix: their items stay
    /// here, moved rather than copied, until the barrier (or a full
    /// buffer) writes them to `list`. Bids that wait for an auction that
    /// comes a moment later never reach the store.
    young: HashMap<Bytes, Vec<L>, FastHash>,
    /// Items in `young`; bounded by the state cache's capacity.
    young_items: usize,
    young_limit: usize,
    ttl: Option<i64>,
    max_parallelism: u16,
    watermark: Timestamp,
    now: Timestamp,
    timers: BTreeMap<(Timestamp, Bytes, TimerKind), K>,
    processing_timers: BTreeMap<(Timestamp, Bytes, TimerKind), K>,
    /// The timers' copy in the store, read back after a restore.
    timer_table: TimerTable,
    timers_restored: bool,
    scratch: Scratch<L>,
}

/// What one callback left besides the key's value: reused across records.
struct Scratch<L> {
    timers: Vec<Timestamp>,
    processing_timers: Vec<Timestamp>,
    list: ListOps<L>,
}

/// A key's state as a callback finds it.
struct Held<S> {
    value: Option<S>,
    /// The key has a record in the value table.
    existed: bool,
    /// Items in its live list.
    len: u32,
    /// Items of an expired list, to delete.
    stale: u32,
    /// Event time of the last update.
    updated: Option<i64>,
}

impl<T, K, S, L, F> ProcessOperator<T, K, S, L, F>
where
    K: Codec + Clone + Send + Sync + 'static,
    S: Codec + Clone + Send + 'static,
    L: Codec + Clone + Send + 'static,
{
    /// Moves the key's live state out of the cache (no copy: a value can
    /// be a long `Vec`); `finish` puts back what the function leaves.
    fn take_live(&mut self, sk: &Bytes) -> Held<S> {
        let Some((value, updated, len)) = self.state.take(sk) else {
            return Held {
                value: None,
                existed: false,
                len: 0,
                stale: 0,
                updated: None,
            };
        };
        let expired = self
            .ttl
            .is_some_and(|ttl| updated.saturating_add(ttl) < self.watermark);
        Held {
            value: if expired { None } else { value },
            existed: true,
            len: if expired { 0 } else { len },
            stale: if expired { len } else { 0 },
            updated: Some(updated),
        }
    }

    /// The prefix of the key's list items: its value key in the list table.
    fn list_prefix(&self, sk: &Bytes) -> Bytes {
        let mut p = sk.to_vec();
        p[..4].copy_from_slice(&self.list_table.0.to_be_bytes());
        Bytes::from(p)
    }

    /// After a callback on `key`: writes the key's record back, unless the
    /// callback left list work (an expired list to delete, items added, a
    /// drain of a non-empty list); then it hands the record back for
    /// [`finish`](Self::finish). Most callbacks leave none, and this spares
    /// them building `finish`'s future.
    fn settle(&mut self, key: &K, sk: Bytes, held: Held<S>, now: i64) -> Option<(Bytes, Held<S>)> {
        let ops = &mut self.scratch.list;
        if held.stale > 0 || !ops.added.is_empty() || (ops.drain && held.len > 0) {
            return Some((sk, held));
        }
        ops.drain = false;
        self.store(key, sk, held, now);
        None
    }

    /// The list work `settle` handed back: deletes an expired list, applies
    /// the callback's additions and drains, then writes the key's record
    /// back. `now` is the event time the update counts at.
    async fn finish<O>(
        &mut self,
        key: &K,
        sk: Bytes,
        mut held: Held<S>,
        now: i64,
        epoch: Epoch,
        out: &mut Vec<O>,
    ) -> Result<()>
    where
        F: KeyedProcessFunction<K, T, S, O, L>,
        O: Send,
    {
        let prefix = self.list_prefix(&sk);
        if held.stale > 0 {
            if let Some(young) = self.young.remove(&prefix) {
                self.young_items -= young.len();
            } else {
                drain_items(&mut self.list, &prefix, epoch, |_| {}).await?;
            }
        }
        loop {
            let added = std::mem::take(&mut self.scratch.list.added);
            if !added.is_empty() {
                let was_empty = held.len == 0;
                held.len = held.len.saturating_add(added.len() as u32);
                if let Some(young) = self.young.get_mut(&prefix) {
                    self.young_items += added.len();
                    young.extend(added);
                } else if was_empty {
                    // A new list: its items wait in memory until the barrier.
                    self.young_items += added.len();
                    self.young.insert(prefix.clone(), added);
                } else {
                    for item in added {
                        let e = self.list_seq.next(epoch);
                        self.list.put(&prefix, &e, item);
                    }
                }
            }
            if !std::mem::take(&mut self.scratch.list.drain) || held.len == 0 {
                break;
            }
            self.drain(key, &prefix, &mut held.value, epoch, out)
                .await?;
            held.len = 0;
        }
        self.scratch.list.drain = false;
        self.store(key, sk, held, now);
        Ok(())
    }

    /// Hands the list under `prefix` to `on_list` page by page and empties it.
    async fn drain<O>(
        &mut self,
        key: &K,
        prefix: &Bytes,
        value: &mut Option<S>,
        epoch: Epoch,
        out: &mut Vec<O>,
    ) -> Result<()>
    where
        F: KeyedProcessFunction<K, T, S, O, L>,
        O: Send,
    {
        let (watermark, now) = (self.watermark, self.now);
        let young = self.young.remove(prefix);
        let ProcessOperator {
            f,
            list,
            scratch,
            young_items,
            ..
        } = self;
        let mut call = |items: Vec<L>| {
            let mut ctx = Context {
                out: &mut *out,
                timers: &mut scratch.timers,
                processing_timers: &mut scratch.processing_timers,
                list: &mut scratch.list,
                watermark,
                timestamp: None,
                now,
            };
            f.on_list(key, items, value, &mut ctx);
        };
        if let Some(mut items) = young {
            *young_items -= items.len();
            while items.len() > LIST_PAGE {
                let rest = items.split_off(LIST_PAGE);
                call(std::mem::replace(&mut items, rest));
            }
            call(items);
            return Ok(());
        }
        let mut page: Vec<L> = Vec::new();
        drain_items(list, prefix, epoch, |item| {
            page.push(item.clone());
            if page.len() == LIST_PAGE {
                call(std::mem::take(&mut page));
            }
        })
        .await?;
        if !page.is_empty() {
            call(page);
        }
        Ok(())
    }

    fn store(&mut self, key: &K, sk: Bytes, held: Held<S>, now: i64) {
        let mut key_bytes: Option<Vec<u8>> = None;
        let mut encoded = |key: &K| key_bytes.get_or_insert_with(|| key.to_bytes()).clone();
        for t in self.scratch.timers.drain(..) {
            self.timer_table
                .set(t, TimerKind::User.code(), &sk, &encoded(key));
            self.timers
                .insert((t, sk.clone(), TimerKind::User), key.clone());
        }
        for t in self.scratch.processing_timers.drain(..) {
            self.timer_table
                .set(t, TimerKind::Processing.code(), &sk, &encoded(key));
            self.processing_timers
                .insert((t, sk.clone(), TimerKind::Processing), key.clone());
        }
        if held.value.is_some() || held.len > 0 {
            if let Some(ttl) = self.ttl {
                let at = now.saturating_add(ttl).saturating_add(1);
                self.timer_table
                    .set(at, TimerKind::Cleanup.code(), &sk, &encoded(key));
                self.timers
                    .insert((at, sk.clone(), TimerKind::Cleanup), key.clone());
            }
            self.state.put(sk, (held.value, now, held.len));
        } else if held.existed {
            self.state.delete(sk);
        }
    }
}

impl<L> Scratch<L> {
    fn new() -> Self {
        Scratch {
            timers: Vec::new(),
            processing_timers: Vec::new(),
            list: ListOps {
                added: Vec::new(),
                drain: false,
            },
        }
    }
}

/// Calls `f` on every item of the list under `prefix`, oldest first, and
/// deletes them all.
async fn drain_items<L: Codec + Clone + Send + 'static>(
    list: &mut EntryState<L>,
    prefix: &Bytes,
    epoch: Epoch,
    mut f: impl FnMut(&L) + Send,
) -> Result<()> {
    let mut entries: Vec<Vec<u8>> = Vec::new();
    list.for_each(prefix, epoch, |entry, item| {
        entries.push(entry.to_vec());
        f(item);
        true
    })
    .await?;
    for e in entries {
        list.delete(prefix, &e);
    }
    Ok(())
}

impl<T, K, S, L, O, F> Operator<T, O> for ProcessOperator<T, K, S, L, F>
where
    T: Send + 'static,
    K: Codec + Clone + Send + Sync + 'static,
    S: Codec + Clone + Send + Sync + 'static,
    L: Codec + Clone + Send + Sync + 'static,
    O: Send + 'static,
    F: KeyedProcessFunction<K, T, S, O, L>,
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
            for (rec, (key, sk)) in batch.into_iter().zip(keys) {
                let ts = self.timestamp.as_ref().map(|f| f(&rec));
                let mut held = self.take_live(&sk);
                let mut ctx = Context {
                    out: &mut *out,
                    timers: &mut self.scratch.timers,
                    processing_timers: &mut self.scratch.processing_timers,
                    list: &mut self.scratch.list,
                    watermark: self.watermark,
                    timestamp: ts,
                    now: self.now,
                };
                self.f.process(&key, rec, &mut held.value, &mut ctx);
                let updated = ts.unwrap_or(self.watermark);
                if let Some((sk, held)) = self.settle(&key, sk, held, updated) {
                    if let Some((sk, held)) = self.settle(&key, sk, held, updated) {
                        self.finish(&key, sk, held, updated, epoch, out).await?;
                    }
                }
            }
            self.shrink(epoch).await
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
            self.spill_young(epoch);
            self.list.flush(epoch).await?;
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

impl<T, K, S, L, F> ProcessOperator<T, K, S, L, F>
where
    T: Send + 'static,
    K: Codec + Clone + Send + Sync + 'static,
    S: Codec + Clone + Send + Sync + 'static,
    L: Codec + Clone + Send + Sync + 'static,
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

    /// Between batches: bounds the caches and write buffers.
    async fn shrink(&mut self, epoch: Epoch) -> Result<()> {
        if self.young_items > self.young_limit {
            self.spill_young(epoch);
        }
        self.state.shrink(epoch).await?;
        self.list.shrink(epoch).await
    }

    /// Moves the young lists' items into the list state, in order.
    fn spill_young(&mut self, epoch: Epoch) {
        for (prefix, items) in self.young.drain() {
            for item in items {
                let e = self.list_seq.next(epoch);
                self.list.put(&prefix, &e, item);
            }
        }
        self.young_items = 0;
    }

    /// Runs due timers: user callbacks with the key's state, and TTL cleanup.
    async fn fire<O>(&mut self, due: Due<K>, epoch: Epoch, out: &mut Vec<O>) -> Result<()>
    where
        F: KeyedProcessFunction<K, T, S, O, L>,
        O: Send,
    {
        if due.is_empty() {
            return Ok(());
        }
        let sks: Vec<Bytes> = due.iter().map(|d| d.1.clone()).collect();
        self.state.load(&sks, epoch).await?;
        for (t, sk, kind, key) in due {
            if kind == TimerKind::Cleanup {
                let expired = match (self.ttl, self.state.get(&sk)) {
                    (Some(ttl), Some((_, u, _))) => u.saturating_add(ttl) < self.watermark,
                    _ => false,
                };
                if expired {
                    // Reads as absent: `finish` deletes the record and the list.
                    let held = self.take_live(&sk);
                    if let Some((sk, held)) = self.settle(&key, sk, held, t) {
                        self.finish(&key, sk, held, t, epoch, out).await?;
                    }
                }
                continue;
            }
            let mut held = self.take_live(&sk);
            let updated = held.updated.unwrap_or(t);
            let mut ctx = Context {
                out: &mut *out,
                timers: &mut self.scratch.timers,
                processing_timers: &mut self.scratch.processing_timers,
                list: &mut self.scratch.list,
                watermark: self.watermark,
                timestamp: None,
                now: self.now,
            };
            if kind == TimerKind::User {
                self.f.on_timer(&key, t, &mut held.value, &mut ctx);
            } else {
                self.f
                    .on_processing_timer(&key, t, &mut held.value, &mut ctx);
            }
            if let Some((sk, held)) = self.settle(&key, sk, held, updated) {
                self.finish(&key, sk, held, updated, epoch, out).await?;
            }
        }
        self.shrink(epoch).await
    }
}

impl<T: Send + 'static, K: Codec + Clone + Send + Sync + 'static> KeyedStream<T, K> {
    /// Runs `f` on every record with its key's state: a value of type `S`
    /// and a list of `L` items (see the module's documentation).
    pub fn process<S, O, L, F>(self, name: &str, f: impl Fn() -> F) -> DataStream<O>
    where
        S: Codec + Clone + Send + Sync + 'static,
        L: Codec + Clone + Send + Sync + 'static,
        O: Send + 'static,
        F: KeyedProcessFunction<K, T, S, O, L>,
    {
        self.process_op(name, None, f)
    }

    /// Like [`process`](Self::process), with state that expires `ttl_ms`
    /// of event time after its last update. Needs event time.
    pub fn process_with_ttl<S, O, L, F>(
        self,
        name: &str,
        ttl_ms: i64,
        f: impl Fn() -> F,
    ) -> DataStream<O>
    where
        S: Codec + Clone + Send + Sync + 'static,
        L: Codec + Clone + Send + Sync + 'static,
        O: Send + 'static,
        F: KeyedProcessFunction<K, T, S, O, L>,
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

    fn process_op<S, O, L, F>(
        self,
        name: &str,
        ttl: Option<i64>,
        f: impl Fn() -> F,
    ) -> DataStream<O>
    where
        S: Codec + Clone + Send + Sync + 'static,
        L: Codec + Clone + Send + Sync + 'static,
        O: Send + 'static,
        F: KeyedProcessFunction<K, T, S, O, L>,
    {
        let key_fn = self.key_fn.clone();
        let timestamp = self
            .stream
            .timestamp
            .clone()
            .filter(|_| self.stream.watermarks);
        let max = self.stream.env.config.max_parallelism;
        let timer_table = self.stream.env.table(&format!("{name}.timers"));
        // A key's list items are entries after its key: queryable too.
        let list_table = self.stream.env.table_with(
            &format!("{name}.list"),
            Some(riverbed_state_store::catalog::TableInfo {
                key_groups: max,
                kind: riverbed_state_store::catalog::TableKind::Entries,
                key: Some(K::schema()),
                value: Some(L::schema()),
                ttl_ms: ttl.map_or(0, |t| t.max(0) as u64),
                time_shard_ms: 0,
            }),
        );
        let capacity = self.stream.env.config.state_cache_entries;
        let operator = name.to_string();
        self.stateful_ttl(name, ttl, move |state: KeyedState<Record<S>>, counters| {
            let list = EntryState::new(
                list_table,
                &operator,
                state.backend().clone(),
                counters,
                capacity,
            )
            .owning(state.owned_key_groups(), state.restored());
            Box::new(ProcessOperator {
                key_fn: key_fn.clone(),
                timestamp: timestamp.clone(),
                f: f(),
                state,
                list,
                list_table,
                list_seq: EntrySeq::default(),
                young: HashMap::default(),
                young_items: 0,
                young_limit: capacity,
                ttl,
                max_parallelism: max,
                watermark: MIN_WATERMARK,
                now: MIN_WATERMARK,
                timers: BTreeMap::new(),
                processing_timers: BTreeMap::new(),
                timer_table: TimerTable::new(timer_table),
                timers_restored: false,
                scratch: Scratch::new(),
            })
        })
    }
}
