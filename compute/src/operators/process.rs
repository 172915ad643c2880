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
//!   be larger than memory (bids waiting for their auction);
//! - up to 256 **maps** of `M` values (Flink's `MapState`), numbered by a
//!   `u8`, with one store key per entry: a put or remove writes that entry
//!   alone, and a map is read only when the function asks for it (a join's
//!   two sides, each larger than memory if need be). Map keys are bytes the
//!   function encodes; a map reads back in their byte order.
//!
//! Store reads are asynchronous and callbacks are not, so a callback *asks*
//! for its list ([`Context::drain_list`]) or a map ([`Context::read_map`]),
//! and gets it once it returns: `on_list` for the list, the closure given to
//! `read_map` for a map.
//!
//! With a TTL, a key's state (value, list and maps) expires once the
//! watermark passes its last update's event time plus the TTL: it reads as
//! absent from then on and is deleted by a cleanup timer.
//!
//! # State layout
//!
//! ```text
//! table NAME        key   := table | key group | key
//!                   value := (value Option<S>, last update i64, list u32)
//!                   list  := list length (bits 0-30) | the key has map entries (bit 31)
//! table NAME.list   key   := table | key group | key | epoch u64 BE | seq u32 BE
//!                   value := item L
//! table NAME.map    key   := table | key group | key | map u8 | map key
//!                   value := M
//! table NAME.timers see state::timers
//! ```
//!
//! A key has a record in `NAME` while it has a value, list items or map
//! entries; the list length in it spares a store read when a drained list
//! is empty, and the map bit spares an expired key's cleanup a scan of its
//! maps when it never had any. (Records written before maps existed have
//! bit 31 clear: a list never holds 2^31 items.)

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
pub struct Context<'a, O, L = (), M = ()> {
    out: &'a mut Vec<O>,
    timers: &'a mut Vec<Timestamp>,
    processing_timers: &'a mut Vec<Timestamp>,
    list: &'a mut ListOps<L>,
    map: &'a mut MapOps<O, L, M>,
    watermark: Timestamp,
    timestamp: Option<Timestamp>,
    now: Timestamp,
}

/// What callbacks asked of their key's list, applied once they return.
struct ListOps<L> {
    added: Vec<L>,
    drain: bool,
}

/// What callbacks asked of their key's maps, applied once they return:
/// writes in order, then the reads.
struct MapOps<O, L, M> {
    /// `(map, map key, value)`; `None` removes the entry.
    writes: Vec<(u8, Vec<u8>, Option<M>)>,
    reads: Vec<MapRead<O, L, M>>,
}

/// What a callback does with a map it asked for: take all its entries at
/// once, or look at them one by one where they lie (no copies).
enum MapThen<O, L, M> {
    All(Box<AllEntries<O, L, M>>),
    Each(Box<EachEntry<O, L, M>>),
}

/// A map's entries, `(map key, value)` in map key order.
type Entries<M> = Vec<(Vec<u8>, M)>;
type AllEntries<O, L, M> = dyn for<'c> FnOnce(Entries<M>, &mut Context<'c, O, L, M>) + Send;
type EachEntry<O, L, M> = dyn for<'c> FnMut(&[u8], &M, &mut Context<'c, O, L, M>) + Send;

/// A read of one of the key's maps, and what to do with its entries.
struct MapRead<O, L, M> {
    map: u8,
    then: MapThen<O, L, M>,
}

impl<O, L, M> Context<'_, O, L, M> {
    pub fn emit(&mut self, o: O) {
        self.out.push(o);
    }

    /// Sets entry `key` of the key's map `map` to `value` (a write of that
    /// entry alone: the map is not read).
    pub fn put_in_map(&mut self, map: u8, key: &[u8], value: M) {
        self.map.writes.push((map, key.to_vec(), Some(value)));
    }

    /// Removes entry `key` of the key's map `map`.
    pub fn remove_from_map(&mut self, map: u8, key: &[u8]) {
        self.map.writes.push((map, key.to_vec(), None));
    }

    /// Asks for the key's map `map`: once this callback returns, `then`
    /// gets all of its entries in map key order, with every put and remove
    /// this callback made, and a context of the same key (to emit, set
    /// timers or ask for more). `then` does not see the key's value: take
    /// what it needs from it into the closure.
    pub fn read_map(
        &mut self,
        map: u8,
        then: impl for<'c> FnOnce(Vec<(Vec<u8>, M)>, &mut Context<'c, O, L, M>) + Send + 'static,
    ) {
        self.map.reads.push(MapRead {
            map,
            then: MapThen::All(Box::new(then)),
        });
    }

    /// Like [`read_map`](Self::read_map), but `each` looks at the entries
    /// one at a time, in map key order, where they lie: nothing is copied
    /// (a join's probe of the other side).
    pub fn visit_map(
        &mut self,
        map: u8,
        each: impl for<'c> FnMut(&[u8], &M, &mut Context<'c, O, L, M>) + Send + 'static,
    ) {
        self.map.reads.push(MapRead {
            map,
            then: MapThen::Each(Box::new(each)),
        });
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

/// User code run per key. `L` is the item type of the key's list and `M`
/// the value type of its maps; a function that keeps no list or no maps
/// leaves them `()`.
pub trait KeyedProcessFunction<K, T, S, O, L = (), M = ()>: Send + 'static {
    fn process(
        &mut self,
        key: &K,
        record: T,
        state: &mut Option<S>,
        ctx: &mut Context<'_, O, L, M>,
    );

    fn on_timer(
        &mut self,
        _key: &K,
        _time: Timestamp,
        _state: &mut Option<S>,
        _ctx: &mut Context<'_, O, L, M>,
    ) {
    }

    fn on_processing_timer(
        &mut self,
        _key: &K,
        _time: Timestamp,
        _state: &mut Option<S>,
        _ctx: &mut Context<'_, O, L, M>,
    ) {
    }

    /// A page of the key's list after [`Context::drain_list`], oldest first.
    fn on_list(
        &mut self,
        _key: &K,
        _items: Vec<L>,
        _state: &mut Option<S>,
        _ctx: &mut Context<'_, O, L, M>,
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
/// last update, its list's length with [`HAS_MAPS`].
type Record<S> = (Option<S>, i64, u32);

/// The bit of a record's list length that says the key has map entries.
const HAS_MAPS: u32 = 1 << 31;

/// Items handed to `on_list` at a time.
const LIST_PAGE: usize = 256;

pub(crate) struct ProcessOperator<T, K, S, L, M, F> {
    key_fn: KeyFn<T, K>,
    timestamp: Option<TimestampFn<T>>,
    f: F,
    state: KeyedState<Record<S>>,
    list: EntryState<L>,
    list_table: TableId,
    list_seq: EntrySeq,
    maps: EntryState<M>,
    map_table: TableId,
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
    /// The key has map entries.
    maps: bool,
    /// The key's map entries expired, to delete.
    stale_maps: bool,
    /// Event time of the last update.
    updated: Option<i64>,
}

impl<O, L, M> MapOps<O, L, M> {
    fn new() -> Self {
        MapOps {
            writes: Vec::new(),
            reads: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.reads.is_empty()
    }
}

impl<T, K, S, L, M, F> ProcessOperator<T, K, S, L, M, F>
where
    K: Codec + Clone + Send + Sync + 'static,
    S: Codec + Clone + Send + 'static,
    L: Codec + Clone + Send + 'static,
    M: Codec + Clone + Send + 'static,
{
    /// Moves the key's live state out of the cache (no copy: a value can
    /// be a long `Vec`); `finish` puts back what the function leaves.
    fn take_live(&mut self, sk: &Bytes) -> Held<S> {
        let Some((value, updated, list)) = self.state.take(sk) else {
            return Held {
                value: None,
                existed: false,
                len: 0,
                stale: 0,
                maps: false,
                stale_maps: false,
                updated: None,
            };
        };
        let (len, maps) = (list & !HAS_MAPS, list & HAS_MAPS != 0);
        let expired = self
            .ttl
            .is_some_and(|ttl| updated.saturating_add(ttl) < self.watermark);
        Held {
            value: if expired { None } else { value },
            existed: true,
            len: if expired { 0 } else { len },
            stale: if expired { len } else { 0 },
            maps: maps && !expired,
            stale_maps: maps && expired,
            updated: Some(updated),
        }
    }

    /// The prefix of the key's entries in `table` (its list items or its
    /// maps): its value key with the table's id.
    fn entries_prefix(sk: &Bytes, table: TableId) -> Bytes {
        let mut p = sk.to_vec();
        p[..4].copy_from_slice(&table.0.to_be_bytes());
        Bytes::from(p)
    }

    /// After a callback on `key`: writes the key's record back, unless the
    /// callback left list work (an expired list to delete, items added, a
    /// drain of a non-empty list); then it hands the record back for
    /// [`finish`](Self::finish). Most callbacks leave none, and this spares
    /// them building `finish`'s future.
    fn settle(
        &mut self,
        key: &K,
        sk: Bytes,
        held: Held<S>,
        now: i64,
        maps_work: bool,
    ) -> Option<(Bytes, Held<S>)> {
        let ops = &mut self.scratch.list;
        if held.stale > 0
            || held.stale_maps
            || maps_work
            || !ops.added.is_empty()
            || (ops.drain && held.len > 0)
        {
            return Some((sk, held));
        }
        ops.drain = false;
        self.store(key, sk, held, now);
        None
    }

    /// The list and map work `settle` handed back: deletes an expired list
    /// and maps, applies the callback's additions, map writes, map reads
    /// and drains (and those of the callbacks they run), then writes the
    /// key's record back. `now` is the event time the update counts at.
    #[allow(clippy::too_many_arguments)]
    async fn finish<O>(
        &mut self,
        key: &K,
        sk: Bytes,
        mut held: Held<S>,
        now: i64,
        epoch: Epoch,
        out: &mut Vec<O>,
        mut mops: MapOps<O, L, M>,
    ) -> Result<()>
    where
        F: KeyedProcessFunction<K, T, S, O, L, M>,
        O: Send,
    {
        let prefix = Self::entries_prefix(&sk, self.list_table);
        let map_prefix = Self::entries_prefix(&sk, self.map_table);
        if held.stale > 0 {
            if let Some(young) = self.young.remove(&prefix) {
                self.young_items -= young.len();
            } else {
                drain_items(&mut self.list, &prefix, epoch, |_| {}).await?;
            }
        }
        if held.stale_maps {
            clear_maps(&mut self.maps, &map_prefix, epoch).await?;
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
            for (map, k, v) in mops.writes.drain(..) {
                let part = map_part(&map_prefix, map);
                match v {
                    Some(v) => {
                        self.maps.put(&part, &k, v);
                        held.maps = true;
                    }
                    None => self.maps.delete(&part, &k),
                }
            }
            if !mops.reads.is_empty() {
                // One at a time, so each read sees the writes before it.
                let read = mops.reads.remove(0);
                self.read_map(&map_prefix, read, epoch, out, &mut mops)
                    .await?;
                continue;
            }
            if !std::mem::take(&mut self.scratch.list.drain) || held.len == 0 {
                break;
            }
            self.drain(key, &prefix, &mut held.value, epoch, out, &mut mops)
                .await?;
            held.len = 0;
        }
        self.scratch.list.drain = false;
        self.store(key, sk, held, now);
        Ok(())
    }

    /// Hands the entries of one of the key's maps to the closure that
    /// asked for them.
    async fn read_map<O>(
        &mut self,
        map_prefix: &Bytes,
        read: MapRead<O, L, M>,
        epoch: Epoch,
        out: &mut Vec<O>,
        mops: &mut MapOps<O, L, M>,
    ) -> Result<()>
    where
        O: Send,
    {
        let ProcessOperator {
            maps,
            scratch,
            watermark,
            now,
            ..
        } = self;
        let mut ctx = Context {
            out,
            timers: &mut scratch.timers,
            processing_timers: &mut scratch.processing_timers,
            list: &mut scratch.list,
            map: mops,
            watermark: *watermark,
            timestamp: None,
            now: *now,
        };
        let part = map_part(map_prefix, read.map);
        match read.then {
            MapThen::All(then) => {
                let mut entries: Vec<(Vec<u8>, M)> = Vec::new();
                maps.for_each(&part, epoch, |k, v| {
                    entries.push((k.to_vec(), v.clone()));
                    true
                })
                .await?;
                then(entries, &mut ctx);
            }
            MapThen::Each(mut each) => {
                maps.for_each(&part, epoch, |k, v| {
                    each(k, v, &mut ctx);
                    true
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Hands the list under `prefix` to `on_list` page by page and empties it.
    #[allow(clippy::too_many_arguments)]
    async fn drain<O>(
        &mut self,
        key: &K,
        prefix: &Bytes,
        value: &mut Option<S>,
        epoch: Epoch,
        out: &mut Vec<O>,
        mops: &mut MapOps<O, L, M>,
    ) -> Result<()>
    where
        F: KeyedProcessFunction<K, T, S, O, L, M>,
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
                map: &mut *mops,
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
        if held.value.is_some() || held.len > 0 || held.maps {
            if let Some(ttl) = self.ttl {
                let at = now.saturating_add(ttl).saturating_add(1);
                self.timer_table
                    .set(at, TimerKind::Cleanup.code(), &sk, &encoded(key));
                self.timers
                    .insert((at, sk.clone(), TimerKind::Cleanup), key.clone());
            }
            // A list longer than 2^31 - 1 counts as that long: the count
            // only says whether a drain has anything to read.
            let list = held.len.min(!HAS_MAPS) | if held.maps { HAS_MAPS } else { 0 };
            self.state.put(sk, (held.value, now, list));
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

/// The prefix of map `map` among a key's maps.
fn map_part(map_prefix: &Bytes, map: u8) -> Bytes {
    let mut p = Vec::with_capacity(map_prefix.len() + 1);
    p.extend_from_slice(map_prefix);
    p.push(map);
    Bytes::from(p)
}

/// Deletes every entry of every map of a key, read in one scan of all the
/// maps.
async fn clear_maps<M: Codec + Clone + Send + 'static>(
    maps: &mut EntryState<M>,
    map_prefix: &Bytes,
    epoch: Epoch,
) -> Result<()> {
    let mut entries: Vec<Vec<u8>> = Vec::new();
    maps.for_each_under(map_prefix, epoch, |entry, _| {
        entries.push(entry.to_vec());
        true
    })
    .await?;
    for e in entries {
        if let Some((map, k)) = e.split_first() {
            maps.delete(&map_part(map_prefix, *map), k);
        }
    }
    Ok(())
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

impl<T, K, S, L, M, O, F> Operator<T, O> for ProcessOperator<T, K, S, L, M, F>
where
    T: Send + 'static,
    K: Codec + Clone + Send + Sync + 'static,
    S: Codec + Clone + Send + Sync + 'static,
    L: Codec + Clone + Send + Sync + 'static,
    M: Codec + Clone + Send + Sync + 'static,
    O: Send + 'static,
    F: KeyedProcessFunction<K, T, S, O, L, M>,
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
                let mut mops = MapOps::new();
                let mut ctx = Context {
                    out: &mut *out,
                    timers: &mut self.scratch.timers,
                    processing_timers: &mut self.scratch.processing_timers,
                    list: &mut self.scratch.list,
                    map: &mut mops,
                    watermark: self.watermark,
                    timestamp: ts,
                    now: self.now,
                };
                self.f.process(&key, rec, &mut held.value, &mut ctx);
                let updated = ts.unwrap_or(self.watermark);
                let maps_work = !mops.is_empty();
                if let Some((sk, held)) = self.settle(&key, sk, held, updated, maps_work) {
                    self.finish(&key, sk, held, updated, epoch, out, mops)
                        .await?;
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
            self.maps.flush(epoch).await?;
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

impl<T, K, S, L, M, F> ProcessOperator<T, K, S, L, M, F>
where
    T: Send + 'static,
    K: Codec + Clone + Send + Sync + 'static,
    S: Codec + Clone + Send + Sync + 'static,
    L: Codec + Clone + Send + Sync + 'static,
    M: Codec + Clone + Send + Sync + 'static,
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
        self.list.shrink(epoch).await?;
        self.maps.shrink(epoch).await
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
        F: KeyedProcessFunction<K, T, S, O, L, M>,
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
                    // Reads as absent: `finish` deletes the record, the
                    // list and the maps.
                    let held = self.take_live(&sk);
                    if let Some((sk, held)) = self.settle(&key, sk, held, t, false) {
                        self.finish(&key, sk, held, t, epoch, out, MapOps::new())
                            .await?;
                    }
                }
                continue;
            }
            let mut held = self.take_live(&sk);
            let updated = held.updated.unwrap_or(t);
            let mut mops = MapOps::new();
            let mut ctx = Context {
                out: &mut *out,
                timers: &mut self.scratch.timers,
                processing_timers: &mut self.scratch.processing_timers,
                list: &mut self.scratch.list,
                map: &mut mops,
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
            let maps_work = !mops.is_empty();
            if let Some((sk, held)) = self.settle(&key, sk, held, updated, maps_work) {
                self.finish(&key, sk, held, updated, epoch, out, mops)
                    .await?;
            }
        }
        self.shrink(epoch).await
    }
}

impl<T: Send + 'static, K: Codec + Clone + Send + Sync + 'static> KeyedStream<T, K> {
    /// Runs `f` on every record with its key's state: a value of type `S`,
    /// a list of `L` items and maps of `M` values (see the module's
    /// documentation).
    pub fn process<S, O, L, M, F>(self, name: &str, f: impl Fn() -> F) -> DataStream<O>
    where
        S: Codec + Clone + Send + Sync + 'static,
        L: Codec + Clone + Send + Sync + 'static,
        M: Codec + Clone + Send + Sync + 'static,
        O: Send + 'static,
        F: KeyedProcessFunction<K, T, S, O, L, M>,
    {
        self.process_op(name, None, f)
    }

    /// Like [`process`](Self::process), with state that expires `ttl_ms`
    /// of event time after its last update. Needs event time.
    pub fn process_with_ttl<S, O, L, M, F>(
        self,
        name: &str,
        ttl_ms: i64,
        f: impl Fn() -> F,
    ) -> DataStream<O>
    where
        S: Codec + Clone + Send + Sync + 'static,
        L: Codec + Clone + Send + Sync + 'static,
        M: Codec + Clone + Send + Sync + 'static,
        O: Send + 'static,
        F: KeyedProcessFunction<K, T, S, O, L, M>,
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

    fn process_op<S, O, L, M, F>(
        self,
        name: &str,
        ttl: Option<i64>,
        f: impl Fn() -> F,
    ) -> DataStream<O>
    where
        S: Codec + Clone + Send + Sync + 'static,
        L: Codec + Clone + Send + Sync + 'static,
        M: Codec + Clone + Send + Sync + 'static,
        O: Send + 'static,
        F: KeyedProcessFunction<K, T, S, O, L, M>,
    {
        let key_fn = self.key_fn.clone();
        let timestamp = self
            .stream
            .timestamp
            .clone()
            .filter(|_| self.stream.watermarks);
        let max = self.stream.env.config.max_parallelism;
        let timer_table = self.stream.env.table(&format!("{name}.timers"));
        // A key's list items and map entries are entries after its key:
        // queryable too.
        let entries_table = |suffix: &str, value| {
            self.stream.env.table_with(
                &format!("{name}.{suffix}"),
                Some(riverbed_state_store::catalog::TableInfo {
                    key_groups: max,
                    kind: riverbed_state_store::catalog::TableKind::Entries,
                    key: Some(K::schema()),
                    value: Some(value),
                    ttl_ms: ttl.map_or(0, |t| t.max(0) as u64),
                    time_shard_ms: 0,
                }),
            )
        };
        let list_table = entries_table("list", L::schema());
        let map_table = entries_table("map", M::schema());
        let capacity = self.stream.env.config.state_cache_entries;
        let operator = name.to_string();
        self.stateful_ttl(name, ttl, move |state: KeyedState<Record<S>>, counters| {
            let list = EntryState::new(
                list_table,
                &operator,
                state.backend().clone(),
                counters.clone(),
                capacity,
            )
            .owning(state.owned_key_groups(), state.restored());
            let maps = EntryState::new(
                map_table,
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
                maps,
                map_table,
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
