//! Joins against naive references (all pairs over the whole input) on
//! randomized, out-of-order input, at parallelism 1 and 4.

mod common;

use std::collections::BTreeMap;

use common::{sorted, split, Ev};
use proptest::prelude::*;
use riverbed_compute::sink::CollectHandle;
use riverbed_compute::{Change, Env, Error, JobConfig, RowKind, WatermarkStrategy, Windows};

const DELAY: i64 = 100;

fn events(max_len: usize, keys: u32) -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec((0..keys, 0..DELAY), 1..max_len).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (key, jitter))| Ev {
                key,
                ts: i as i64 * 7 + jitter,
                id: i as u32,
            })
            .collect()
    })
}

fn run<X: Send + 'static>(
    p: usize,
    build: impl FnOnce(&Env) -> CollectHandle<X>,
) -> Result<Vec<X>, Error> {
    let config = JobConfig {
        parallelism: p,
        batch_size: 16,
        // Barriers every millisecond, so checkpoints fall between batches.
        checkpoint_interval: Some(std::time::Duration::from_millis(1)),
        state_cache_entries: 200,
        ..JobConfig::default()
    };
    common::run_job(config, build).map(|(rows, _)| rows)
}

/// The multiset a changelog leaves behind.
fn final_multiset<T: Ord + Clone>(changes: &[Change<T>]) -> Vec<T> {
    let mut counts: BTreeMap<T, i64> = BTreeMap::new();
    for c in changes {
        let d = match c.kind {
            RowKind::Insert | RowKind::UpdateAfter => 1,
            RowKind::UpdateBefore | RowKind::Delete => -1,
        };
        *counts.entry(c.row.clone()).or_default() += d;
    }
    let mut out = Vec::new();
    for (row, n) in counts {
        assert!(n >= 0, "retraction of a row never inserted: {n}");
        out.extend(std::iter::repeat_n(row, n as usize));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn inner_and_left_outer_join_match_reference(left in events(150, 30), right in events(150, 30), p in prop::sample::select(vec![1usize, 4])) {
        let (l2, r2) = (left.clone(), right.clone());
        let inner = run(p, move |env| {
            let l = env.source("left", p, split(&l2)).key_by(|e: &Ev| e.key);
            let r = env.source("right", p, split(&r2)).key_by(|e: &Ev| e.key);
            l.join("join", r, None).collect("sink")
        }).unwrap();
        let mut want = Vec::new();
        for l in &left {
            for r in right.iter().filter(|r| r.key == l.key) {
                want.push((l.clone(), r.clone()));
            }
        }
        prop_assert_eq!(sorted(inner), sorted(want));

        let (l2, r2) = (left.clone(), right.clone());
        let outer = run(p, move |env| {
            let l = env.source("left", p, split(&l2)).key_by(|e: &Ev| e.key);
            let r = env.source("right", p, split(&r2)).key_by(|e: &Ev| e.key);
            l.left_outer_join("join", r, None).collect("sink")
        }).unwrap();
        let mut want = Vec::new();
        for l in &left {
            let matches: Vec<_> = right.iter().filter(|r| r.key == l.key).collect();
            if matches.is_empty() {
                want.push((l.clone(), None));
            }
            for r in matches {
                want.push((l.clone(), Some(r.clone())));
            }
        }
        prop_assert_eq!(final_multiset(&outer), sorted(want));
    }

    #[test]
    fn interval_join_matches_reference(left in events(200, 10), right in events(200, 10), lower in -60i64..10, width in 0i64..80, p in prop::sample::select(vec![1usize, 4])) {
        let upper = lower + width;
        let (l2, r2) = (left.clone(), right.clone());
        let got = run(p, move |env| {
            let l = env.source_with_event_time("left", p, split(&l2), |e: &Ev| e.ts, WatermarkStrategy::bounded(DELAY)).key_by(|e: &Ev| e.key);
            let r = env.source_with_event_time("right", p, split(&r2), |e: &Ev| e.ts, WatermarkStrategy::bounded(DELAY)).key_by(|e: &Ev| e.key);
            l.interval_join("join", r, lower, upper).collect("sink")
        }).unwrap();
        let mut want = Vec::new();
        for l in &left {
            for r in right.iter().filter(|r| r.key == l.key && l.ts + lower <= r.ts && r.ts <= l.ts + upper) {
                want.push((l.clone(), r.clone()));
            }
        }
        prop_assert_eq!(sorted(got), sorted(want));
    }

    #[test]
    fn window_join_matches_reference(left in events(200, 10), right in events(200, 10), p in prop::sample::select(vec![1usize, 4])) {
        let w = Windows::tumbling(40);
        let (l2, r2) = (left.clone(), right.clone());
        let got = run(p, move |env| {
            let l = env.source_with_event_time("left", p, split(&l2), |e: &Ev| e.ts, WatermarkStrategy::bounded(DELAY)).key_by(|e: &Ev| e.key);
            let r = env.source_with_event_time("right", p, split(&r2), |e: &Ev| e.ts, WatermarkStrategy::bounded(DELAY)).key_by(|e: &Ev| e.key);
            l.window_join("join", r, w).collect("sink")
        }).unwrap();
        let mut want = Vec::new();
        for l in &left {
            for r in right.iter().filter(|r| r.key == l.key && r.ts.div_euclid(40) == l.ts.div_euclid(40)) {
                want.push((l.ts.div_euclid(40) * 40, l.clone(), r.clone()));
            }
        }
        prop_assert_eq!(sorted(got), sorted(want));
    }
}

/// With a TTL, rows older than the watermark minus the TTL no longer join.
#[test]
fn join_state_ttl_expires_rows_by_event_time() {
    // Left rows at ts 0; right rows far later: with a 50 ms TTL they must not
    // meet; without it, they do.
    let left: Vec<Ev> = (0..5)
        .map(|i| Ev {
            key: 1,
            ts: i,
            id: i as u32,
        })
        .collect();
    // Twenty batches of other keys move the right side's watermark to
    // 5-7 s before any key-1 right row arrives; the left input, all of it
    // in one batch followed by its end, is long consumed by then (its end
    // sits in the join's input channel from the start), so the join's
    // watermark has passed the left rows' TTL when key 1 arrives.
    let filler = (0..20_480).map(|i| Ev {
        key: 2 + i as u32,
        ts: 5_000 + i / 10,
        id: 200 + i as u32,
    });
    let right: Vec<Ev> = filler
        .chain((0..5).map(|i| Ev {
            key: 1,
            ts: 10_000 + i,
            id: 100 + i as u32,
        }))
        .collect();
    // Right rows come only after the left ones (and a watermark) have passed.
    let go = |ttl: Option<i64>| {
        let (l2, r2) = (left.clone(), right.clone());
        run(1, move |env| {
            let both: Vec<Ev> = l2.iter().chain(r2.iter()).cloned().collect();
            let b2 = both.clone();
            let l = env
                .source_with_event_time(
                    "left",
                    1,
                    move |_, _| both.clone().into_iter().filter(|e| e.id < 100),
                    |e: &Ev| e.ts,
                    WatermarkStrategy::bounded(0),
                )
                .key_by(|e: &Ev| e.key);
            let r = env
                .source_with_event_time(
                    "right",
                    1,
                    move |_, _| b2.clone().into_iter().filter(|e| e.id >= 100),
                    |e: &Ev| e.ts,
                    WatermarkStrategy::bounded(0),
                )
                .key_by(|e: &Ev| e.key);
            l.join("join", r, ttl).collect("sink")
        })
        .unwrap()
    };
    assert_eq!(go(None).len(), 25);
    assert_eq!(
        go(Some(50)).len(),
        0,
        "rows seconds older than a 50 ms TTL still joined"
    );
}

#[test]
fn event_time_joins_without_event_time_are_rejected() {
    let err = run(1, |env| {
        let l = env
            .source("left", 1, |_, _| Vec::<Ev>::new().into_iter())
            .key_by(|e: &Ev| e.key);
        let r = env
            .source("right", 1, |_, _| Vec::<Ev>::new().into_iter())
            .key_by(|e: &Ev| e.key);
        l.interval_join("join", r, 0, 10).collect("sink")
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidJob(m) if m.contains("needs event time")),
        "{err}"
    );
}

/// A left row matched once stays matched after its partner expires: a later
/// partner adds a pair without retracting `(l, None)` a second time.
#[test]
fn left_outer_join_retracts_the_unmatched_row_once() {
    let left = vec![Ev {
        key: 1,
        ts: 100,
        id: 1,
    }];
    // R1 matches, then expires (TTL 10); R2 arrives later for the same key.
    let right = vec![
        Ev {
            key: 1,
            ts: 95,
            id: 10,
        },
        Ev {
            key: 2,
            ts: 150,
            id: 11,
        },
        Ev {
            key: 1,
            ts: 160,
            id: 12,
        },
    ];
    let got = run(1, move |env| {
        let l = env
            .source_with_event_time(
                "left",
                1,
                move |_, _| left.clone().into_iter(),
                |e: &Ev| e.ts,
                WatermarkStrategy::bounded(0),
            )
            .key_by(|e: &Ev| e.key);
        let r = env
            .source_with_event_time(
                "right",
                1,
                move |_, _| right.clone().into_iter(),
                |e: &Ev| e.ts,
                WatermarkStrategy::bounded(0),
            )
            .key_by(|e: &Ev| e.key);
        l.left_outer_join("join", r, Some(1_000)).collect("sink")
    })
    .unwrap();
    let retractions = got.iter().filter(|c| c.kind == RowKind::Delete).count();
    assert!(
        retractions <= 1,
        "unmatched row retracted {retractions} times: {got:?}"
    );
    let table = final_multiset(&got);
    assert!(
        table.iter().all(|(_, r)| r.is_some()),
        "the left row is still unmatched: {table:?}"
    );
}

/// A hot key with far more rows than the cache holds and than one store
/// read returns: every row is its own store entry, read back page by page,
/// and the join still pairs every one.
#[test]
fn a_hot_key_larger_than_the_cache_joins_every_row() {
    use riverbed_compute::EmbeddedBackend;
    use riverbed_state_store::{Options, Store};
    use std::sync::Arc;

    let left: Vec<Ev> = (0..3_000)
        .map(|i| Ev {
            key: if i % 10 == 0 { 2 + i % 7 } else { 1 },
            ts: i64::from(i),
            id: i,
        })
        .collect();
    let right: Vec<Ev> = (0..3)
        .map(|i| Ev {
            key: 1 + i,
            ts: 0,
            id: 10_000 + i,
        })
        .collect();
    let (l2, r2) = (left.clone(), right.clone());
    let (got, entries) = common::runtime().block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open(Options::with_url(dir.path().to_str().unwrap()))
                .await
                .unwrap(),
        );
        let config = JobConfig {
            parallelism: 1,
            batch_size: 64,
            checkpoint_interval: Some(std::time::Duration::from_millis(1)),
            // At most 8 entries of a key are cached: the hot key is paged.
            state_cache_entries: 64,
            ..JobConfig::default()
        };
        let env = Env::new(config, Arc::new(EmbeddedBackend::new(store.clone()))).unwrap();
        let l = env.source("left", 1, split(&l2)).key_by(|e: &Ev| e.key);
        let r = env.source("right", 1, split(&r2)).key_by(|e: &Ev| e.key);
        let handle = l.join("join", r, None).collect("sink");
        env.execute().await.unwrap();
        let table = store
            .tables()
            .into_iter()
            .find(|(n, _)| n == "join")
            .expect("the join's table")
            .1;
        let (start, end) = riverbed_compute::state::keyed::owned_range(table, (0, u16::MAX));
        let entries = store
            .scan(&start, Some(&end), store.committed_epoch(), usize::MAX)
            .await
            .unwrap()
            .len();
        store.close().await.unwrap();
        (handle.take(), entries)
    });
    let mut want = Vec::new();
    for l in &left {
        for r in right.iter().filter(|r| r.key == l.key) {
            want.push((l.clone(), r.clone()));
        }
    }
    assert!(want.len() > 2_000, "the hot key dominates: {}", want.len());
    assert_eq!(sorted(got), sorted(want));
    // One entry per row of either side, not one value per key.
    assert_eq!(entries, left.len() + right.len());
}

/// A join with state TTL registers its table with it, for queries (and
/// the store's knowledge of when rows expire); other joins register none.
#[test]
fn a_join_registers_its_state_ttl() {
    common::runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let opts = riverbed_state_store::Options::with_url(dir.path().to_str().unwrap());
        let store = std::sync::Arc::new(riverbed_state_store::Store::open(opts).await.unwrap());
        let env = Env::new(
            JobConfig::default(),
            std::sync::Arc::new(riverbed_compute::EmbeddedBackend::new(store.clone())),
        )
        .unwrap();
        let side = |name: &str| {
            env.source_with_event_time(
                name,
                1,
                |_, _| Vec::<Ev>::new().into_iter(),
                |e: &Ev| e.ts,
                WatermarkStrategy::bounded(0),
            )
            .key_by(|e: &Ev| e.key)
        };
        let _ = side("l1")
            .join("with-ttl", side("r1"), Some(1_500))
            .collect("s1");
        let _ = side("l2")
            .interval_join("interval", side("r2"), -5, 5)
            .collect("s2");
        assert_eq!(store.table("with-ttl").unwrap().info.ttl_ms, 1_500);
        assert_eq!(store.table("interval").unwrap().info.ttl_ms, 0);
        store.close().await.unwrap();
    });
}
