//! Every operator against a naive reference (plain Rust collections over the
//! whole input) on randomized, out-of-order input, at parallelism 1 and 4.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::{run_job as run, runtime, sorted, split};
use proptest::prelude::*;
use riverbed_compute::changelog::materialize;
use riverbed_compute::sink::CollectHandle;
use riverbed_compute::{
    Aggregate, EmbeddedBackend, Env, Error, JobConfig, JobReport, WatermarkStrategy, WindowResult,
    Windows,
};
use riverbed_state_store::{Options, Store};

use common::Val as Ev;

const DELAY: i64 = 100;

/// Events with timestamps out of order by at most `DELAY` ms.
fn events(max_len: usize) -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec((0..40u32, 0..DELAY, -50..50i64), 1..max_len).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (key, jitter, val))| Ev {
                key,
                ts: i as i64 * 7 + jitter,
                val,
            })
            .collect()
    })
}

fn config(p: usize) -> JobConfig {
    JobConfig {
        parallelism: p,
        batch_size: 16,
        // Barriers every millisecond, so checkpoints fall between batches.
        checkpoint_interval: Some(std::time::Duration::from_millis(1)),
        state_cache_entries: 1_000,
        ..JobConfig::default()
    }
}

fn window_reference(evs: &[Ev], w: Windows) -> Vec<WindowResult<u32, (u64, i64)>> {
    let mut acc: BTreeMap<(u32, i64), (u64, i64)> = BTreeMap::new();
    for e in evs {
        for start in w.starts(e.ts) {
            let a = acc.entry((e.key, start)).or_default();
            a.0 += 1;
            a.1 += e.val;
        }
    }
    acc.into_iter()
        .map(|((key, start), value)| WindowResult {
            key,
            start,
            end: start + w.size,
            value,
        })
        .collect()
}

fn count_and_sum() -> Aggregate<Ev, (u64, i64), (u64, i64)> {
    Aggregate::new(
        || (0, 0),
        |acc: &mut (u64, i64), e: &Ev| {
            acc.0 += 1;
            acc.1 += e.val;
        },
        |acc| *acc,
    )
}

type Windowed = Vec<WindowResult<u32, (u64, i64)>>;

fn window_job(evs: &[Ev], p: usize, w: Windows) -> (Windowed, JobReport) {
    let evs = evs.to_vec();
    run(config(p), move |env| {
        env.source_with_event_time(
            "events",
            p,
            split(&evs),
            |e: &Ev| e.ts,
            WatermarkStrategy::bounded(DELAY),
        )
        .key_by(|e: &Ev| e.key)
        .window("window", w, count_and_sum)
        .collect("sink")
    })
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn stateless_chain_and_union_match_reference(evs in events(400), p in prop::sample::select(vec![1usize, 4])) {
        let input = evs.clone();
        let (got, report) = run(config(p), move |env| {
            let a = env.source("a", p, split(&input)).filter("positive", |e: &Ev| e.val >= 0);
            let b = env.source("b", p, split(&input)).map("negate", |e: Ev| Ev { val: -e.val, ..e });
            a.union(b)
                .flat_map("twice-even", |e: Ev| if e.key.is_multiple_of(2) { vec![e.val, e.val] } else { vec![e.val] })
                .collect("sink")
        }).unwrap();
        let mut want: Vec<i64> = Vec::new();
        let a = evs.iter().filter(|e| e.val >= 0).cloned();
        let b = evs.iter().map(|e| Ev { val: -e.val, ..e.clone() });
        for e in a.chain(b) {
            want.push(e.val);
            if e.key.is_multiple_of(2) {
                want.push(e.val);
            }
        }
        prop_assert_eq!(sorted(got), sorted(want.clone()));
        prop_assert_eq!(report.operator("sink").unwrap().records_in, want.len() as u64);
    }

    #[test]
    fn group_aggregate_changelog_matches_reference(evs in events(600), p in prop::sample::select(vec![1usize, 4])) {
        let input = evs.clone();
        let (got, _) = run(config(p), move |env| {
            env.source("events", p, split(&input))
                .key_by(|e: &Ev| e.key)
                .aggregate("sum", || Aggregate::sum(|e: &Ev| e.val))
                .collect("sink")
        }).unwrap();
        let table = materialize(&got, |row| row.0);
        let mut want: BTreeMap<u32, (u32, i64)> = BTreeMap::new();
        for e in &evs {
            want.entry(e.key).or_insert((e.key, 0)).1 += e.val;
        }
        prop_assert_eq!(table, want);
    }

    #[test]
    fn tumbling_window_matches_reference_and_sorted_input(evs in events(800), p in prop::sample::select(vec![1usize, 4])) {
        let w = Windows::tumbling(50);
        let (got, report) = window_job(&evs, p, w);
        prop_assert_eq!(report.operator("window").unwrap().late_records, 0);
        prop_assert_eq!(sorted(got.clone()), window_reference(&evs, w));
        let mut in_order = evs.clone();
        in_order.sort_by_key(|e| e.ts);
        let (got_sorted, _) = window_job(&in_order, p, w);
        prop_assert_eq!(sorted(got), sorted(got_sorted));
    }

    #[test]
    fn hopping_window_matches_reference(evs in events(500), p in prop::sample::select(vec![1usize, 4])) {
        let w = Windows::hopping(60, 20);
        let (got, _) = window_job(&evs, p, w);
        prop_assert_eq!(sorted(got), window_reference(&evs, w));
    }

    #[test]
    fn dedup_keeps_the_first_row_per_key(evs in events(500), p in prop::sample::select(vec![1usize, 4])) {
        let input = evs.clone();
        // One source subtask: "first" is input order; the keyed part runs at p.
        let (got, _) = run(config(p), move |env| {
            env.source("events", 1, split(&input)).key_by(|e: &Ev| e.key).dedup_first("dedup").collect("sink")
        }).unwrap();
        let mut seen = BTreeSet::new();
        let want: Vec<Ev> = evs.iter().filter(|e| seen.insert(e.key)).cloned().collect();
        prop_assert_eq!(sorted(got), sorted(want));
    }
}

/// Records delayed beyond the watermark bound are counted as late and left
/// out; everything else gives exactly the reference windows.
#[test]
fn late_records_are_counted_and_dropped() {
    let w = Windows::tumbling(50);
    let mut evs: Vec<Ev> = (0..400)
        .map(|i| Ev {
            key: i % 7,
            ts: i as i64 * 5,
            val: 1,
        })
        .collect();
    // Every 37th record arrives 500 ms late: far beyond the 100 ms bound.
    for (i, e) in evs.iter_mut().enumerate() {
        if i % 37 == 36 {
            e.ts -= 500;
        }
    }
    let mut cfg = config(4);
    cfg.batch_size = 1;
    let input = evs.clone();
    let (got, report) = run(cfg, move |env| {
        env.source_with_event_time(
            "events",
            1,
            split(&input),
            |e: &Ev| e.ts,
            WatermarkStrategy::bounded(DELAY),
        )
        .key_by(|e: &Ev| e.key)
        .window("window", w, count_and_sum)
        .collect("sink")
    })
    .unwrap();
    // Reference: with one source and batches of one record, record k sees the
    // watermark made from records before it.
    let mut max_ts = i64::MIN;
    let mut on_time = Vec::new();
    let mut late = 0;
    for e in &evs {
        let wm = if max_ts == i64::MIN {
            i64::MIN
        } else {
            max_ts - DELAY - 1
        };
        if w.starts(e.ts).all(|s| s + w.size - 1 <= wm) {
            late += 1;
        } else {
            on_time.push(e.clone());
        }
        max_ts = max_ts.max(e.ts);
    }
    assert!(late > 0);
    assert_eq!(report.operator("window").unwrap().late_records, late);
    assert_eq!(sorted(got), window_reference(&on_time, w));
}

/// State several times the worker cache gives the same result as a cache
/// holding everything, only with more store reads.
#[test]
fn state_larger_than_cache_gives_the_same_result() {
    let evs: Vec<Ev> = (0..60_000u32)
        .map(|i| Ev {
            key: (i * 7919) % 20_000,
            ts: i64::from(i),
            val: i64::from(i % 13),
        })
        .collect();
    let run_with = |cache: usize| {
        let input = evs.clone();
        let mut cfg = config(4);
        cfg.batch_size = 512;
        cfg.state_cache_entries = cache;
        run(cfg, move |env| {
            env.source("events", 2, split(&input))
                .key_by(|e: &Ev| e.key)
                .aggregate("sum", || Aggregate::sum(|e: &Ev| e.val))
                .collect("sink")
        })
        .unwrap()
    };
    let (small, small_report) = run_with(1_000);
    let (big, big_report) = run_with(1_000_000);
    let table = |rows: &[riverbed_compute::Change<(u32, i64)>]| materialize(rows, |r| r.0);
    assert_eq!(table(&small), table(&big));
    assert_eq!(table(&big).len(), 20_000);
    let reads = |r: &JobReport| r.operator("sum").unwrap().state_reads;
    assert!(
        reads(&small_report) > 2 * reads(&big_report),
        "small cache {} reads, large cache {}",
        reads(&small_report),
        reads(&big_report)
    );
}

#[test]
fn invalid_jobs_fail_before_running() {
    let err = run(config(2), |env| {
        env.source("events", 1, |_, _| {
            vec![Ev {
                key: 1,
                ts: 1,
                val: 1,
            }]
            .into_iter()
        })
        .key_by(|e: &Ev| e.key)
        .window("window", Windows::tumbling(10), count_and_sum)
        .collect("sink")
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidJob(m) if m.contains("needs event time")),
        "{err}"
    );

    let err = run(config(2), |env| {
        env.source("events", 1, |_, _| Vec::<Ev>::new().into_iter())
            .map("same", |e| e)
            .map("same", |e: Ev| e)
            .collect("sink")
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidJob(m) if m.contains("named")),
        "{err}"
    );

    let err = run(config(2), |env| {
        env.source_with_event_time(
            "events",
            1,
            |_, _| Vec::<Ev>::new().into_iter(),
            |e: &Ev| e.ts,
            WatermarkStrategy::bounded(1),
        )
        .key_by(|e: &Ev| e.key)
        .window("window", Windows::hopping(10, 20), count_and_sum)
        .collect("sink")
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidJob(m) if m.contains("slide")),
        "{err}"
    );
}

#[test]
fn absurd_settings_are_refused_before_anything_is_built() {
    let rt = runtime();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open(Options::with_url(dir.path().to_str().unwrap()))
                .await
                .unwrap(),
        );
        let backend: Arc<dyn riverbed_compute::JobState> =
            Arc::new(EmbeddedBackend::new(store.clone()));
        let cases: Vec<(JobConfig, &str)> = vec![
            (
                JobConfig {
                    parallelism: 0,
                    ..config(1)
                },
                "parallelism",
            ),
            (
                JobConfig {
                    parallelism: 2000,
                    ..config(1)
                },
                "parallelism",
            ),
            (
                JobConfig {
                    parallelism: 100_000,
                    max_parallelism: 32_768,
                    ..config(1)
                },
                "parallelism",
            ),
            (
                JobConfig {
                    max_parallelism: 0,
                    ..config(1)
                },
                "max_parallelism",
            ),
            (
                JobConfig {
                    max_parallelism: 40_000,
                    ..config(1)
                },
                "max_parallelism",
            ),
            (
                JobConfig {
                    batch_size: 0,
                    ..config(1)
                },
                "batch_size",
            ),
            (
                JobConfig {
                    batch_size: usize::MAX,
                    ..config(1)
                },
                "batch_size",
            ),
            (
                JobConfig {
                    state_cache_entries: 0,
                    ..config(1)
                },
                "state_cache_entries",
            ),
            (
                JobConfig {
                    state_cache_entries: usize::MAX,
                    ..config(1)
                },
                "state_cache_entries",
            ),
            (
                JobConfig {
                    mini_batch_records: 0,
                    ..config(1)
                },
                "mini_batch_records",
            ),
            (
                JobConfig {
                    mini_batch_latency_ms: -1,
                    ..config(1)
                },
                "mini_batch_latency_ms",
            ),
        ];
        for (bad, field) in cases {
            match Env::new(bad.clone(), backend.clone()) {
                Err(Error::InvalidConfig { field: f, reason }) => {
                    assert_eq!(f, field, "{reason}");
                    assert!(reason.contains(field), "{reason} names {field}");
                }
                Err(other) => panic!("{bad:?}: unexpected error {other}"),
                Ok(_) => panic!("{bad:?} was accepted"),
            }
        }
        store.close().await.unwrap();
    });
    // Window shapes: refused when the job is checked, before it runs.
    for (windows, needle) in [
        (Windows::tumbling(0), "positive"),
        (Windows::hopping(86_400_000, 1), "windows; at most"),
    ] {
        let err = run(config(2), |env| {
            env.source_with_event_time(
                "events",
                1,
                |_, _| {
                    vec![Ev {
                        key: 1,
                        ts: 1,
                        val: 1,
                    }]
                    .into_iter()
                },
                |e: &Ev| e.ts,
                WatermarkStrategy::bounded(1),
            )
            .key_by(|e: &Ev| e.key)
            .window("window", windows, count_and_sum)
            .collect("sink")
        })
        .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidJob(m) if m.contains(needle)),
            "{err}"
        );
    }
}

/// Barriers injected on the interval become checkpoints: each records every
/// source subtask's position, epochs go up one by one, and the final commit
/// is the last of them.
#[test]
fn epochs_commit_as_barriers_complete() {
    let evs: Vec<Ev> = (0..200_000)
        .map(|i| Ev {
            key: i % 100,
            ts: i64::from(i),
            val: 1,
        })
        .collect();
    let input = evs.clone();
    let (_, report) = run(config(4), move |env| {
        env.source("events", 4, split(&input))
            .key_by(|e: &Ev| e.key)
            .aggregate("count", Aggregate::count)
            .collect("sink")
    })
    .unwrap();
    let cps = &report.checkpoints;
    assert!(cps.len() >= 3, "only {} checkpoints", cps.len());
    assert!(cps.windows(2).all(|w| w[0].epoch < w[1].epoch));
    assert_eq!(cps.last().unwrap().epoch, report.committed_epoch);
    for c in cps {
        let positions = c.positions_of("events").expect("the source's positions");
        assert_eq!(positions.len(), 4);
        assert!(positions.iter().all(|p| !p.is_empty()), "{c:?}");
        // Only the aggregate merges several inputs (four), so only it has
        // alignment times.
        let ops: Vec<&str> = c
            .stats
            .alignment_ms
            .iter()
            .map(|(o, _)| o.as_str())
            .collect();
        assert!(ops.is_empty() || ops == ["count"], "{c:?}");
    }
    // Each barrier the aggregate passed has one; a checkpoint taken after
    // the sources ended, and the final commit, follow no barrier.
    let aligned = cps
        .iter()
        .filter(|c| !c.stats.alignment_ms.is_empty())
        .count();
    assert!(
        aligned >= 2,
        "{aligned} checkpoints with alignment times: {cps:?}"
    );
}

/// An endless job stops when cancelled and reports it; committed state stays.
#[test]
fn a_running_job_can_be_cancelled() {
    let rt = runtime();
    let err = rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open(Options::with_url(dir.path().to_str().unwrap()))
                .await
                .unwrap(),
        );
        let env = Env::new(config(2), Arc::new(EmbeddedBackend::new(store.clone())))
            .expect("valid job config");
        let seen = CollectHandle::new();
        let h = seen.clone();
        env.source("endless", 2, |i, _| {
            (0u32..).map(move |n| Ev {
                key: n % 10,
                ts: i64::from(n),
                val: i as i64,
            })
        })
        .key_by(|e: &Ev| e.key)
        .aggregate("count", Aggregate::count)
        .sink("sink", move |_| Ok(h.sink()));
        // Cancel once the job has produced output: progress, not a timer.
        let progressed = async {
            while seen.take().is_empty() {
                tokio::task::yield_now().await;
            }
        };
        let result = env.execute_until(progressed).await;
        store.close().await.unwrap();
        result.unwrap_err()
    });
    assert!(matches!(err, Error::Cancelled), "{err}");
}

/// Late records can go to a side output instead of being dropped: exactly
/// the records the reference calls late arrive there, and they are counted.
#[test]
fn late_records_can_be_routed_to_a_side_output() {
    let w = Windows::tumbling(50);
    let mut evs: Vec<Ev> = (0..300)
        .map(|i| Ev {
            key: i % 5,
            ts: i as i64 * 5,
            val: i as i64,
        })
        .collect();
    for (i, e) in evs.iter_mut().enumerate() {
        if i % 29 == 28 {
            e.ts -= 400;
        }
    }
    let mut cfg = config(4);
    cfg.batch_size = 1;
    let input = evs.clone();
    let late_handle = CollectHandle::new();
    let lh = late_handle.clone();
    let (got, report) = run(cfg, move |env| {
        let (results, late) = env
            .source_with_event_time(
                "events",
                1,
                split(&input),
                |e: &Ev| e.ts,
                WatermarkStrategy::bounded(DELAY),
            )
            .key_by(|e: &Ev| e.key)
            .window_with_late_output("window", w, count_and_sum);
        late.sink("late", move |_| Ok(lh.sink()));
        results.collect("sink")
    })
    .unwrap();
    let mut max_ts = i64::MIN;
    let (mut on_time, mut late) = (Vec::new(), Vec::new());
    for e in &evs {
        let wm = if max_ts == i64::MIN {
            i64::MIN
        } else {
            max_ts - DELAY - 1
        };
        if w.starts(e.ts).all(|s| s + w.size - 1 <= wm) {
            late.push(e.clone());
        } else {
            on_time.push(e.clone());
        }
        max_ts = max_ts.max(e.ts);
    }
    assert!(!late.is_empty());
    assert_eq!(sorted(late_handle.take()), sorted(late.clone()));
    assert_eq!(
        report.operator("window").unwrap().late_records,
        late.len() as u64
    );
    assert_eq!(sorted(got), window_reference(&on_time, w));
}

/// Processing-time windows follow the runtime clock, not the records: with
/// a hand-driven clock every record lands in the window holding the clock's
/// time when it arrived, and every window fires by the end.
#[test]
fn processing_time_windows_follow_the_runtime_clock() {
    use riverbed_compute::time::ManualClock;
    let clock = Arc::new(ManualClock::new(0));
    let evs: Vec<Ev> = (0..2_000)
        .map(|i| Ev {
            key: i % 3,
            ts: 0,
            val: 1,
        })
        .collect();
    let mut cfg = config(1);
    cfg.clock = clock.clone();
    cfg.batch_size = 100;
    // Checkpoints on this manual clock would come every record: only the end.
    cfg.checkpoint_interval = None;
    let input = evs.clone();
    let c = clock.clone();
    let (got, _) = run(cfg, move |env| {
        // The source moves the clock 10 ms per record: batch b (of 100) is read at ~b·1000 ms.
        let input = input.clone();
        env.source("events", 1, move |_, _| {
            let c = c.clone();
            input.clone().into_iter().enumerate().map(move |(i, e)| {
                c.set(i as i64 * 10);
                e
            })
        })
        .key_by(|e: &Ev| e.key)
        .window_processing_time("window", Windows::tumbling(5_000), count_and_sum)
        .collect("sink")
    })
    .unwrap();
    let total: u64 = got.iter().map(|r| r.value.0).sum();
    assert_eq!(total, 2_000, "every record counted once");
    let windows: BTreeSet<i64> = got.iter().map(|r| r.start).collect();
    // The clock spans four windows; the exchange's sender may run ahead of
    // the window by its channel's batches, so records can land later than
    // they were read, never earlier: at least two windows see records.
    assert!(
        windows.len() >= 2,
        "the clock spanned several windows: {windows:?}"
    );
    assert!(got
        .iter()
        .all(|r| r.start % 5_000 == 0 && r.end == r.start + 5_000));
    assert!(
        windows.iter().all(|&s| (0..20_000).contains(&s)),
        "{windows:?}"
    );
}

/// Mini-batches: with no size or time trigger, an updating aggregate holds
/// every change until the end and emits one insert per key; emitting per
/// batch gives updates too; both materialize to the same table.
#[test]
fn mini_batches_hold_updates_back_until_a_trigger() {
    let records: Vec<(u32, i64)> = (0..20_000).map(|i| (i % 50, i64::from(i % 7))).collect();
    let go = |mini_batch_records: usize, latency: i64| {
        let config = JobConfig {
            parallelism: 2,
            batch_size: 256,
            mini_batch_records,
            mini_batch_latency_ms: latency,
            clock: Arc::new(riverbed_compute::time::ManualClock::new(0)),
            ..JobConfig::default()
        };
        let records = records.clone();
        run(config, move |env| {
            env.source("src", 2, move |i, p| split(&records)(i, p))
                .key_by(|r: &(u32, i64)| r.0)
                .aggregate("sum", || Aggregate::sum(|r: &(u32, i64)| r.1))
                .collect("sink")
        })
        .unwrap()
        .0
    };
    let held = go(usize::MAX, i64::MAX);
    assert_eq!(held.len(), 50, "one insert per key");
    assert!(held
        .iter()
        .all(|c| c.kind == riverbed_compute::RowKind::Insert));
    let per_batch = go(1, 0);
    assert!(per_batch.len() > 200, "{} changes", per_batch.len());
    let mut expected: BTreeMap<u32, i64> = BTreeMap::new();
    for (k, v) in &records {
        *expected.entry(*k).or_default() += v;
    }
    for changes in [held, per_batch] {
        let table = materialize(&changes, |r: &(u32, i64)| r.0);
        let got: BTreeMap<u32, i64> = table.into_values().collect();
        assert_eq!(got, expected);
    }
}
