//! Keyed process functions with value, list and map state, timers and
//! state TTL, against plain references.

mod common;

use std::collections::BTreeMap;

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::sink::CollectHandle;
use riverbed_compute::{Env, Error, JobConfig, WatermarkStrategy};

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
        env.source_with_event_time(
            "src",
            1,
            move |_, _| evs.clone().into_iter(),
            |r: &(u32, i64, i64)| r.1,
            WatermarkStrategy::bounded(0),
        )
        .key_by(|r: &(u32, i64, i64)| r.0)
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
            env.source_with_event_time(
                "src",
                1,
                move |_, _| e2.clone().into_iter(),
                |r: &(u32, i64, i64)| r.1,
                WatermarkStrategy::bounded(10),
            )
            .key_by(|r: &(u32, i64, i64)| r.0)
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

#[test]
fn state_ttl_expires_list_items_too() {
    let evs = vec![(1, 0, 0), (1, 10, 0), (2, 500, 0), (1, 520, 0), (1, 530, 0)];
    let got = run(config(1, 1), move |env| {
        env.source_with_event_time(
            "src",
            1,
            move |_, _| evs.clone().into_iter(),
            |r: &(u32, i64, i64)| r.1,
            WatermarkStrategy::bounded(0),
        )
        .key_by(|r: &(u32, i64, i64)| r.0)
        .process_with_ttl("seen", 50, || TimesSeen)
        .collect("sink")
    })
    .unwrap();
    assert_eq!(
        got,
        vec![(1, vec![520, 530])],
        "list items older than the TTL were still read"
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
