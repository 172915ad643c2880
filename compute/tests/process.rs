//! Keyed process functions with value, list and map state, timers and
//! state TTL, against plain references.

mod common;

use std::collections::BTreeMap;

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::sink::CollectHandle;
use riverbed_compute::{Env, Error, JobConfig, KeyedStream, WatermarkStrategy};

fn run<X: Send + 'static>(
    config: JobConfig,
    build: impl FnOnce(&Env) -> CollectHandle<X>,
) -> Result<Vec<X>, Error> {
    common::run_job(config, build).map(|(rows, _)| rows)
}

fn config(p: usize, batch: usize) -> JobConfig {
    JobConfig {
        parallelism: p,
        batch_size: batch,
        // Barriers every millisecond, so checkpoints fall between batches.
        checkpoint_interval: Some(std::time::Duration::from_millis(1)),
        state_cache_entries: 16,
        ..JobConfig::default()
    }
}

/// `(key, ts, val)`: pseudo-random but fixed.
fn input(n: u32) -> Vec<(u32, i64, i64)> {
    (0..n)
        .map(|i| {
            let h = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            (
                (h >> 60) as u32,
                i64::from(i) * 3,
                ((h >> 20) % 1000) as i64,
            )
        })
        .collect()
}

/// `evs` from one source subtask (so per-key order is input order), with
/// event time `delay` ms behind, keyed by their first field.
fn keyed(env: &Env, evs: Vec<(u32, i64, i64)>, delay: i64) -> KeyedStream<(u32, i64, i64), u32> {
    env.source_with_event_time(
        "src",
        1,
        move |_, _| evs.clone().into_iter(),
        |r: &(u32, i64, i64)| r.1,
        WatermarkStrategy::bounded(delay),
    )
    .key_by(|r: &(u32, i64, i64)| r.0)
}

/// Value state: the running maximum per key, emitted when it grows.
struct RunningMax;

impl KeyedProcessFunction<u32, (u32, i64, i64), i64, (u32, i64)> for RunningMax {
    fn process(
        &mut self,
        key: &u32,
        r: (u32, i64, i64),
        state: &mut Option<i64>,
        ctx: &mut Context<'_, (u32, i64)>,
    ) {
        if state.is_none_or(|m| r.2 > m) {
            *state = Some(r.2);
            ctx.emit((*key, r.2));
        }
    }
}

#[test]
fn value_state_matches_reference_at_parallelism_1_and_4() {
    let evs = input(3_000);
    for p in [1, 4] {
        let e2 = evs.clone();
        let got = run(config(p, 32), move |env| {
            env.source("src", p, move |i, n| {
                e2.clone().into_iter().skip(i).step_by(n)
            })
            .key_by(|r: &(u32, i64, i64)| r.0)
            .process("max", || RunningMax)
            .collect("sink")
        })
        .unwrap();
        let mut last: BTreeMap<u32, i64> = BTreeMap::new();
        for (k, v) in got {
            let prev = last.insert(k, v);
            assert!(prev.is_none_or(|p| p < v), "max went down for key {k}");
        }
        let mut want: BTreeMap<u32, i64> = BTreeMap::new();
        for (k, _, v) in &evs {
            let m = want.entry(*k).or_insert(i64::MIN);
            *m = (*m).max(*v);
        }
        assert_eq!(last, want, "parallelism {p}");
    }
}

/// List state: the last three values of each key, emitted on every record.
struct LastThree;

impl KeyedProcessFunction<u32, (u32, i64, i64), Vec<i64>, (u32, Vec<i64>)> for LastThree {
    fn process(
        &mut self,
        key: &u32,
        r: (u32, i64, i64),
        state: &mut Option<Vec<i64>>,
        ctx: &mut Context<'_, (u32, Vec<i64>)>,
    ) {
        let list = state.get_or_insert_with(Vec::new);
        list.push(r.2);
        if list.len() > 3 {
            list.remove(0);
        }
        ctx.emit((*key, list.clone()));
    }
}

#[test]
fn list_state_keeps_the_last_three_values() {
    let evs = input(2_000);
    let e2 = evs.clone();
    // One source subtask: per-key order is input order.
    let got = run(config(4, 16), move |env| {
        env.source("src", 1, move |_, _| e2.clone().into_iter())
            .key_by(|r: &(u32, i64, i64)| r.0)
            .process("last3", || LastThree)
            .collect("sink")
    })
    .unwrap();
    let mut final_lists: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for (k, l) in got {
        final_lists.insert(k, l);
    }
    let mut want: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for (k, _, v) in &evs {
        let l = want.entry(*k).or_default();
        l.push(*v);
        if l.len() > 3 {
            l.remove(0);
        }
    }
    assert_eq!(final_lists, want);
}

/// Map state and timers: counts per `val % 3` in a map, emitted by a timer
/// that fires at the end of the input.
struct Buckets;

impl KeyedProcessFunction<u32, (u32, i64, i64), BTreeMap<u8, u64>, (u32, BTreeMap<u8, u64>)>
    for Buckets
{
    fn process(
        &mut self,
        _key: &u32,
        r: (u32, i64, i64),
        state: &mut Option<BTreeMap<u8, u64>>,
        ctx: &mut Context<'_, (u32, BTreeMap<u8, u64>)>,
    ) {
        *state
            .get_or_insert_with(BTreeMap::new)
            .entry((r.2 % 3) as u8)
            .or_default() += 1;
        ctx.register_timer(i64::MAX - 1);
    }

    fn on_timer(
        &mut self,
        key: &u32,
        _t: i64,
        state: &mut Option<BTreeMap<u8, u64>>,
        ctx: &mut Context<'_, (u32, BTreeMap<u8, u64>)>,
    ) {
        if let Some(m) = state.take() {
            ctx.emit((*key, m));
        }
    }
}

#[test]
fn map_state_and_timers_match_reference() {
    let evs = input(3_000);
    for p in [1, 4] {
        let e2 = evs.clone();
        let got = run(config(p, 64), move |env| {
            env.source_with_event_time(
                "src",
                p,
                move |i, n| e2.clone().into_iter().skip(i).step_by(n),
                |r: &(u32, i64, i64)| r.1,
                WatermarkStrategy::bounded(10),
            )
            .key_by(|r: &(u32, i64, i64)| r.0)
            .process("buckets", || Buckets)
            .collect("sink")
        })
        .unwrap();
        let got: BTreeMap<u32, BTreeMap<u8, u64>> = got.into_iter().collect();
        let mut want: BTreeMap<u32, BTreeMap<u8, u64>> = BTreeMap::new();
        for (k, _, v) in &evs {
            *want
                .entry(*k)
                .or_default()
                .entry((v % 3) as u8)
                .or_default() += 1;
        }
        assert_eq!(got, want, "parallelism {p}");
    }
}

/// A counter per key whose state expires 50 ms of event time after its last update.
struct Counter;

impl KeyedProcessFunction<u32, (u32, i64, i64), u64, (u32, i64, u64)> for Counter {
    fn process(
        &mut self,
        key: &u32,
        r: (u32, i64, i64),
        state: &mut Option<u64>,
        ctx: &mut Context<'_, (u32, i64, u64)>,
    ) {
        let n = state.unwrap_or(0) + 1;
        *state = Some(n);
        ctx.emit((*key, r.1, n));
    }
}

#[test]
fn state_ttl_expires_by_event_time() {
    // Key 1 at 0 and 10; key 2 at 500 moves the watermark; key 1 again at 520 and 530.
    let evs = vec![(1, 0, 0), (1, 10, 0), (2, 500, 0), (1, 520, 0), (1, 530, 0)];
    let got = run(config(1, 1), move |env| {
        keyed(env, evs, 0)
            .process_with_ttl("count", 50, || Counter)
            .collect("sink")
    })
    .unwrap();
    let key1: Vec<(i64, u64)> = got
        .iter()
        .filter(|r| r.0 == 1)
        .map(|r| (r.1, r.2))
        .collect();
    assert_eq!(
        key1,
        vec![(0, 1), (10, 2), (520, 1), (530, 2)],
        "state older than the TTL was still read"
    );
}

/// List state with entry keys: every record's value goes to the key's list;
/// every `DRAIN_EVERY`-th record of a key and a final timer drain it.
struct Drains;

const DRAIN_EVERY: u32 = 300;

/// `(key, drain number, one page of the drained items)`.
type Page = (u32, u32, Vec<i64>);

impl KeyedProcessFunction<u32, (u32, i64, i64), (u32, u32), Page, i64> for Drains {
    fn process(
        &mut self,
        _key: &u32,
        r: (u32, i64, i64),
        state: &mut Option<(u32, u32)>,
        ctx: &mut Context<'_, Page, i64>,
    ) {
        let (count, drains) = state.get_or_insert((0, 0));
        *count += 1;
        ctx.add_to_list(r.2);
        if *count % DRAIN_EVERY == 0 {
            *drains += 1;
            ctx.drain_list();
        }
        ctx.register_timer(i64::MAX - 1);
    }

    fn on_timer(
        &mut self,
        _key: &u32,
        _t: i64,
        state: &mut Option<(u32, u32)>,
        ctx: &mut Context<'_, Page, i64>,
    ) {
        if let Some((_, drains)) = state {
            *drains += 1;
        }
        ctx.drain_list();
    }

    fn on_list(
        &mut self,
        key: &u32,
        items: Vec<i64>,
        state: &mut Option<(u32, u32)>,
        ctx: &mut Context<'_, Page, i64>,
    ) {
        let drains = state.map_or(0, |s| s.1);
        ctx.emit((*key, drains, items));
    }
}

#[test]
fn entry_list_state_drains_every_item_once_in_order_and_in_pages() {
    // About 750 records a key: drains of 300 items (two pages), and a last one.
    let evs = input(12_000);
    for p in [1, 3] {
        let e2 = evs.clone();
        // One source subtask: per-key order is input order.
        let got = run(config(p, 7), move |env| {
            keyed(env, e2, 10)
                .process("drains", || Drains)
                .collect("sink")
        })
        .unwrap();
        let mut drained: BTreeMap<(u32, u32), Vec<i64>> = BTreeMap::new();
        for (key, n, page) in got {
            assert!(
                !page.is_empty() && page.len() <= 256,
                "a page of {}",
                page.len()
            );
            drained.entry((key, n)).or_default().extend(page);
        }
        let mut want: BTreeMap<(u32, u32), Vec<i64>> = BTreeMap::new();
        let mut per_key: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
        for (k, _, v) in &evs {
            per_key.entry(*k).or_default().push(*v);
        }
        for (k, vals) in per_key {
            for (i, chunk) in vals.chunks(DRAIN_EVERY as usize).enumerate() {
                want.insert((k, i as u32 + 1), chunk.to_vec());
            }
        }
        assert_eq!(drained, want, "parallelism {p}");
    }
}

/// A list and no value: each record's time goes to the list, and the
/// record at 530 drains it.
struct TimesSeen;

impl KeyedProcessFunction<u32, (u32, i64, i64), (), (u32, Vec<i64>), i64> for TimesSeen {
    fn process(
        &mut self,
        _key: &u32,
        r: (u32, i64, i64),
        _state: &mut Option<()>,
        ctx: &mut Context<'_, (u32, Vec<i64>), i64>,
    ) {
        ctx.add_to_list(r.1);
        if r.1 == 530 {
            ctx.drain_list();
        }
    }

    fn on_list(
        &mut self,
        key: &u32,
        items: Vec<i64>,
        _state: &mut Option<()>,
        ctx: &mut Context<'_, (u32, Vec<i64>), i64>,
    ) {
        ctx.emit((*key, items));
    }
}

/// `f` over `evs` (one source subtask, event time without delay) with a
/// state TTL of `ttl` ms.
fn run_with_ttl<O, L, M, F>(
    evs: Vec<(u32, i64, i64)>,
    ttl: i64,
    f: impl Fn() -> F + Send + Sync + 'static,
) -> Vec<O>
where
    O: Send + 'static,
    L: riverbed_compute::Codec + Clone + Send + Sync + 'static,
    M: riverbed_compute::Codec + Clone + Send + Sync + 'static,
    F: KeyedProcessFunction<u32, (u32, i64, i64), (), O, L, M>,
{
    run(config(1, 1), move |env| {
        keyed(env, evs, 0)
            .process_with_ttl("seen", ttl, f)
            .collect("sink")
    })
    .unwrap()
}

#[test]
fn state_ttl_expires_list_items_too() {
    let evs = vec![(1, 0, 0), (1, 10, 0), (2, 500, 0), (1, 520, 0), (1, 530, 0)];
    let got = run_with_ttl(evs, 50, || TimesSeen);
    assert_eq!(
        got,
        vec![(1, vec![520, 530])],
        "list items older than the TTL were still read"
    );
}

/// Map state driven by the record: `val % 8` picks the operation (put,
/// remove, read one map, read two maps nested), `val / 8` the map and the
/// entry key. A read emits what it saw and writes how many entries it saw
/// under the entry key `[255]` of the map it read.
struct MapOps;

/// `(key, time of the record, map, entries read)`.
type Seen = (u32, i64, u8, Vec<(Vec<u8>, i64)>);

fn map_op(val: i64) -> (i64, u8, Vec<u8>) {
    let op = val % 8;
    let map = ((val / 8) % 3) as u8;
    let entry = vec![((val / 24) % 40) as u8];
    (op, map, entry)
}

impl KeyedProcessFunction<u32, (u32, i64, i64), (), Seen, (), i64> for MapOps {
    fn process(
        &mut self,
        key: &u32,
        r: (u32, i64, i64),
        _state: &mut Option<()>,
        ctx: &mut Context<'_, Seen, (), i64>,
    ) {
        let (op, map, entry) = map_op(r.2);
        let (key, t) = (*key, r.1);
        match op {
            0..=3 => ctx.put_in_map(map, &entry, t),
            4 | 5 => ctx.remove_from_map(map, &entry),
            6 => ctx.read_map(map, move |entries, ctx| {
                let n = entries.len() as i64;
                ctx.emit((key, t, map, entries));
                ctx.put_in_map(map, &[255], n);
            }),
            _ => ctx.read_map(map, move |first, ctx| {
                let other = (map + 1) % 3;
                ctx.emit((key, t, map, first));
                ctx.read_map(other, move |second, ctx| {
                    let n = second.len() as i64;
                    ctx.emit((key, t, other, second));
                    ctx.put_in_map(other, &[255], n);
                });
            }),
        }
    }
}

/// The same operations on a `BTreeMap` per key and map.
fn map_model(evs: &[(u32, i64, i64)]) -> Vec<Seen> {
    let mut maps: BTreeMap<(u32, u8), BTreeMap<Vec<u8>, i64>> = BTreeMap::new();
    let mut out = Vec::new();
    for &(key, t, val) in evs {
        let (op, map, entry) = map_op(val);
        let mut read = |map: u8, out: &mut Vec<Seen>| {
            let m = maps.entry((key, map)).or_default();
            let entries: Vec<(Vec<u8>, i64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
            let n = entries.len() as i64;
            out.push((key, t, map, entries));
            n
        };
        match op {
            0..=3 => {
                maps.entry((key, map)).or_default().insert(entry, t);
            }
            4 | 5 => {
                maps.entry((key, map)).or_default().remove(&entry);
            }
            6 => {
                let n = read(map, &mut out);
                maps.entry((key, map)).or_default().insert(vec![255], n);
            }
            _ => {
                read(map, &mut out);
                let other = (map + 1) % 3;
                let n = read(other, &mut out);
                maps.entry((key, other)).or_default().insert(vec![255], n);
            }
        }
    }
    out
}

#[test]
fn entry_map_state_matches_a_btreemap_model() {
    // 16 keys, 3 maps of up to 41 entries each: more than the cache keeps
    // of one key (8), so reads page through the store and the write buffer.
    let evs = input(6_000);
    let mut want = map_model(&evs);
    want.sort();
    assert!(
        want.iter().any(|s| s.3.len() > 8),
        "the model never read a map larger than the cache keeps"
    );
    for p in [1, 3] {
        let e2 = evs.clone();
        // One source subtask: per-key order is input order.
        let mut got = run(config(p, 5), move |env| {
            keyed(env, e2, 10)
                .process("maps", || MapOps)
                .collect("sink")
        })
        .unwrap();
        got.sort();
        assert_eq!(got.len(), want.len(), "parallelism {p}");
        assert!(
            got == want,
            "parallelism {p}: map reads differ from the model"
        );
    }
}

/// Puts every record's time in map 0 and reads the map back at records
/// whose value is 1.
struct MapSeen;

impl KeyedProcessFunction<u32, (u32, i64, i64), (), (u32, Vec<i64>), (), i64> for MapSeen {
    fn process(
        &mut self,
        key: &u32,
        r: (u32, i64, i64),
        _state: &mut Option<()>,
        ctx: &mut Context<'_, (u32, Vec<i64>), (), i64>,
    ) {
        ctx.put_in_map(0, &r.1.to_be_bytes(), r.1);
        if r.2 == 1 {
            let key = *key;
            ctx.read_map(0, move |entries, ctx| {
                ctx.emit((key, entries.into_iter().map(|(_, t)| t).collect()));
            });
        }
    }
}

#[test]
fn state_ttl_expires_map_entries_too() {
    // Key 1 expires twice (key 2's records move the watermark on): each
    // read sees only what came after the last expiry.
    let evs = vec![
        (1, 0, 0),
        (1, 10, 0),
        (2, 500, 0),
        (1, 520, 0),
        (1, 530, 1),
        (2, 1000, 0),
        (1, 1100, 0),
        (1, 1110, 1),
    ];
    let got = run_with_ttl(evs, 50, || MapSeen);
    assert_eq!(
        got,
        vec![(1, vec![520, 530]), (1, vec![1100, 1110])],
        "map entries older than the TTL were still read"
    );
}

/// A process function's tables are registered with what a query needs to
/// read them: key groups, kind, the schemas its codecs describe, its TTL.
#[test]
fn tables_are_registered_with_their_schemas_and_ttl() {
    use riverbed_state_store::catalog::TableKind;
    common::runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let opts = riverbed_state_store::Options::with_url(dir.path().to_str().unwrap());
        let store = std::sync::Arc::new(riverbed_state_store::Store::open(opts).await.unwrap());
        let env = Env::new(
            config(2, 1),
            std::sync::Arc::new(riverbed_compute::EmbeddedBackend::new(store.clone())),
        )
        .unwrap();
        let _ = env
            .source_with_event_time(
                "src",
                1,
                |_, _| Vec::<(u32, i64, i64)>::new().into_iter(),
                |r: &(u32, i64, i64)| r.1,
                WatermarkStrategy::bounded(0),
            )
            .key_by(|r: &(u32, i64, i64)| r.0)
            .process_with_ttl("seen", 50, || TimesSeen)
            .collect("sink");
        let value = store.table("seen").expect("registered").info;
        assert_eq!(value.kind, TableKind::Values);
        assert_eq!(value.key_groups, JobConfig::default().max_parallelism);
        assert_eq!(value.key.unwrap().to_string(), "u32");
        // The record: the value (unit here), its update time, the list length.
        assert_eq!(value.value.unwrap().to_string(), "(opt<unit>,i64,u32)");
        assert_eq!(value.ttl_ms, 50);
        let list = store.table("seen.list").expect("registered").info;
        assert_eq!(list.kind, TableKind::Entries);
        assert_eq!(list.value.unwrap().to_string(), "i64");
        assert_eq!(list.ttl_ms, 50);
        let map = store.table("seen.map").expect("registered").info;
        assert_eq!(map.kind, TableKind::Entries);
        assert_eq!(map.ttl_ms, 50);
        // Timers are internal: raw, without a description.
        assert_eq!(
            store.table("seen.timers").unwrap().info.kind,
            TableKind::Raw
        );
        store.close().await.unwrap();
    });
}

#[test]
fn ttl_without_event_time_is_rejected() {
    let err = run(config(1, 1), |env| {
        env.source("src", 1, |_, _| Vec::<(u32, i64, i64)>::new().into_iter())
            .key_by(|r: &(u32, i64, i64)| r.0)
            .process_with_ttl("count", 50, || Counter)
            .collect("sink")
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidJob(m) if m.contains("needs event time")),
        "{err}"
    );
}

/// Counts per key, flushed by a processing-time timer 100 ms after the
/// key's first record: every record is counted exactly once, across flushes
/// the runtime clock triggers mid-stream and the last ones at the end.
struct FlushEvery100ms;

impl KeyedProcessFunction<u32, (u32, i64, i64), u64, (u32, u64)> for FlushEvery100ms {
    fn process(
        &mut self,
        _key: &u32,
        _r: (u32, i64, i64),
        state: &mut Option<u64>,
        ctx: &mut Context<'_, (u32, u64)>,
    ) {
        if state.is_none() {
            ctx.register_processing_timer(ctx.now() + 100);
        }
        *state = Some(state.unwrap_or(0) + 1);
    }

    fn on_processing_timer(
        &mut self,
        key: &u32,
        _t: i64,
        state: &mut Option<u64>,
        ctx: &mut Context<'_, (u32, u64)>,
    ) {
        if let Some(n) = state.take() {
            ctx.emit((*key, n));
        }
    }
}

#[test]
fn processing_time_timers_follow_the_runtime_clock() {
    use riverbed_compute::time::ManualClock;
    let clock = std::sync::Arc::new(ManualClock::new(0));
    let evs = input(2_000);
    let mut cfg = config(2, 50);
    cfg.clock = clock.clone();
    let (e2, c) = (evs.clone(), clock.clone());
    let got = run(cfg, move |env| {
        env.source("src", 1, move |_, _| {
            let c = c.clone();
            e2.clone().into_iter().enumerate().map(move |(i, e)| {
                c.set(i as i64 * 2);
                e
            })
        })
        .key_by(|r: &(u32, i64, i64)| r.0)
        .process("flush", || FlushEvery100ms)
        .collect("sink")
    })
    .unwrap();
    let total: u64 = got.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 2_000);
    let keys: std::collections::BTreeSet<u32> = got.iter().map(|(k, _)| *k).collect();
    assert!(
        got.len() > keys.len(),
        "no timer fired before the end: {} flushes for {} keys",
        got.len(),
        keys.len()
    );
}
