//! Session windows, top-N and keep-last dedup against naive references
//! (plain Rust collections over the whole input, or a record-at-a-time model
//! where watermarks matter) on randomized, out-of-order input, at
//! parallelism 1 and 4; plus hand-worked cases of what Flink emits.

mod common;

use std::collections::BTreeMap;
use std::fmt::Debug;

use common::{run_job as run, sorted, split};
use proptest::prelude::*;
use riverbed_compute::changelog::materialize;
use riverbed_compute::{
    Aggregate, Change, Codec, Error, JobConfig, JobReport, RowKind, WatermarkStrategy, WindowResult,
};

use common::Val as Ev;

const DELAY: i64 = 100;

/// A small worker cache, so state also goes through the store and back.
fn config(p: usize) -> JobConfig {
    JobConfig {
        parallelism: p,
        batch_size: 16,
        // Barriers every millisecond, so checkpoints fall between batches.
        checkpoint_interval: Some(std::time::Duration::from_millis(1)),
        state_cache_entries: 16,
        ..JobConfig::default()
    }
}

/// Applies a changelog to a table keyed by `key`, checking that it is well
/// formed: inserts and update-afters only where the key is absent, deletes
/// and update-befores only of the row the table holds. Also checks that the
/// library's `materialize` agrees.
fn apply_strict<T: Clone + PartialEq + Debug, K: Ord + Clone + Debug>(
    changes: &[Change<T>],
    key: impl Fn(&T) -> K,
) -> BTreeMap<K, T> {
    let mut table = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        let k = key(&c.row);
        match c.kind {
            RowKind::Insert | RowKind::UpdateAfter => {
                assert!(
                    !table.contains_key(&k),
                    "change {i} {c:?}: {k:?} is already present"
                );
                table.insert(k, c.row.clone());
            }
            RowKind::UpdateBefore | RowKind::Delete => {
                assert_eq!(
                    table.remove(&k).as_ref(),
                    Some(&c.row),
                    "change {i} {c:?} retracts a row the table does not hold"
                );
            }
        }
    }
    assert_eq!(materialize(changes, &key), table);
    table
}

// ---------------------------------------------------------------- sessions

type Sessions = Vec<WindowResult<u32, (u64, i64)>>;

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

fn merge_count_and_sum(a: &mut (u64, i64), b: &(u64, i64)) {
    a.0 += b.0;
    a.1 += b.1;
}

/// Events whose timestamps are even and out of order by less than `DELAY`:
/// every record is on time, and with an odd gap no record's window ever
/// just touches another (whose end is odd), so the sessions are the same
/// whatever order the parallel sources interleave in.
fn even_events(max_len: usize) -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec((0..8u32, 0..DELAY / 2, -50..50i64), 1..max_len).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (key, jitter, val))| Ev {
                key,
                ts: 2 * (3 * i as i64 + jitter),
                val,
            })
            .collect()
    })
}

/// Sessions over the whole input: per key, the windows `[ts, ts + gap)` in
/// order of start, merged while the next start is at most the current end.
fn session_reference(evs: &[Ev], gap: i64) -> Sessions {
    let mut by_key: BTreeMap<u32, Vec<&Ev>> = BTreeMap::new();
    for e in evs {
        by_key.entry(e.key).or_default().push(e);
    }
    let mut out = Vec::new();
    for (key, mut es) in by_key {
        es.sort_by_key(|e| e.ts);
        let mut cur: Option<WindowResult<u32, (u64, i64)>> = None;
        for e in es {
            match &mut cur {
                Some(s) if e.ts <= s.end => {
                    s.end = s.end.max(e.ts + gap);
                    s.value.0 += 1;
                    s.value.1 += e.val;
                }
                _ => {
                    out.extend(cur.take());
                    cur = Some(WindowResult {
                        key,
                        start: e.ts,
                        end: e.ts + gap,
                        value: (1, e.val),
                    });
                }
            }
        }
        out.extend(cur);
    }
    sorted(out)
}

/// Flink's session window operator record at a time, for one source read
/// in batches of `batch`: records see the watermark of the batches before
/// theirs; after each batch the watermark advances and due sessions fire.
/// Returns the fired sessions and the number of late records.
fn session_model(evs: &[Ev], gap: i64, batch: usize) -> (Sessions, u64) {
    let mut live: BTreeMap<u32, Vec<(i64, i64, u64, i64)>> = BTreeMap::new();
    let mut fired = Vec::new();
    let mut late = 0;
    let mut wm = i64::MIN;
    let mut max_ts = i64::MIN;
    let mut fire = |live: &mut BTreeMap<u32, Vec<(i64, i64, u64, i64)>>, wm: i64| {
        for (key, sessions) in live.iter_mut() {
            sessions.retain(|&(start, end, count, sum)| {
                if end - 1 <= wm {
                    fired.push(WindowResult {
                        key: *key,
                        start,
                        end,
                        value: (count, sum),
                    });
                    false
                } else {
                    true
                }
            });
        }
    };
    for chunk in evs.chunks(batch) {
        for e in chunk {
            let (start, end) = (e.ts, e.ts + gap);
            let sessions = live.entry(e.key).or_default();
            let (hit, rest): (Vec<_>, Vec<_>) = std::mem::take(sessions)
                .into_iter()
                .partition(|s| s.0 <= end && s.1 >= start);
            *sessions = rest;
            if hit.is_empty() && end - 1 <= wm {
                late += 1;
                continue;
            }
            let mut merged = (start, end, 1, e.val);
            for s in hit {
                merged = (
                    merged.0.min(s.0),
                    merged.1.max(s.1),
                    merged.2 + s.2,
                    merged.3 + s.3,
                );
            }
            sessions.push(merged);
        }
        for e in chunk {
            max_ts = max_ts.max(e.ts);
        }
        wm = wm.max(max_ts - DELAY - 1);
        fire(&mut live, wm);
    }
    fire(&mut live, i64::MAX);
    (sorted(fired), late)
}

fn session_job(
    evs: &[Ev],
    sources: usize,
    cfg: JobConfig,
    gap: i64,
) -> Result<(Sessions, JobReport), Error> {
    let evs = evs.to_vec();
    run(cfg, move |env| {
        env.source_with_event_time(
            "events",
            sources,
            split(&evs),
            |e: &Ev| e.ts,
            WatermarkStrategy::bounded(DELAY),
        )
        .key_by(|e: &Ev| e.key)
        .session_window("session", gap, count_and_sum, merge_count_and_sum)
        .collect("sink")
    })
}

// ------------------------------------------------------------ top-N, dedup

/// Events with few distinct values per key, so the top-N sees many ties.
fn tie_events(max_len: usize) -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec((0..12u32, 0..DELAY, -4..4i64), 1..max_len).prop_map(|raw| {
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

type Ranked = BTreeMap<(u32, u32), (u32, u32, Ev)>;

/// Per key, all its rows sorted by value descending then encoding
/// ascending, the first `n` numbered from 1.
fn top_n_reference(evs: &[Ev], n: usize) -> Ranked {
    let mut by_key: BTreeMap<u32, Vec<&Ev>> = BTreeMap::new();
    for e in evs {
        by_key.entry(e.key).or_default().push(e);
    }
    let mut out = BTreeMap::new();
    for (key, mut es) in by_key {
        es.sort_by(|a, b| b.val.cmp(&a.val).then(a.to_bytes().cmp(&b.to_bytes())));
        for (i, e) in es.into_iter().take(n).enumerate() {
            let rank = i as u32 + 1;
            out.insert((key, rank), (key, rank, e.clone()));
        }
    }
    out
}

fn top_n_job(evs: &[Ev], p: usize, cfg: JobConfig, n: usize) -> Vec<Change<(u32, u32, Ev)>> {
    let evs = evs.to_vec();
    run(cfg, move |env| {
        env.source("events", p, split(&evs))
            .key_by(|e: &Ev| e.key)
            .top_n("top", n, |e: &Ev| e.val)
            .collect("sink")
    })
    .unwrap()
    .0
}

fn dedup_last_job(evs: &[Ev], cfg: JobConfig) -> Vec<Change<Ev>> {
    let evs = evs.to_vec();
    // One source subtask: "last" is input order; the keyed part runs at p.
    run(cfg, move |env| {
        env.source("events", 1, split(&evs))
            .key_by(|e: &Ev| e.key)
            .dedup_last("dedup")
            .collect("sink")
    })
    .unwrap()
    .0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn session_windows_match_reference(
        evs in even_events(600),
        p in prop::sample::select(vec![1usize, 4]),
        gap in prop::sample::select(vec![1i64, 41, 151]),
    ) {
        let want = session_reference(&evs, gap);
        let (got, report) = session_job(&evs, p, config(p), gap).unwrap();
        prop_assert_eq!(report.operator("session").unwrap().late_records, 0);
        prop_assert_eq!(sorted(got.clone()), want.clone());
        // Input in timestamp order gives the same sessions.
        let mut in_order = evs.clone();
        in_order.sort_by_key(|e| e.ts);
        let (got_sorted, _) = session_job(&in_order, p, config(p), gap).unwrap();
        prop_assert_eq!(sorted(got_sorted), want);
    }

    /// Records far behind the watermark, windows that touch, late records
    /// rescued by merging into a live session: with one source the order
    /// of records and watermarks is fixed, so a record-at-a-time model of
    /// Flink's operator says exactly what must come out.
    #[test]
    fn session_windows_with_late_records_match_the_model(
        raw in prop::collection::vec((0..5u32, -400..100i64, -50..50i64), 1..400),
        p in prop::sample::select(vec![1usize, 4]),
        gap in prop::sample::select(vec![10i64, 37, 80]),
        batch in 1usize..6,
    ) {
        let evs: Vec<Ev> = raw
            .into_iter()
            .enumerate()
            .map(|(i, (key, jitter, val))| Ev { key, ts: i as i64 * 5 + jitter, val })
            .collect();
        let (want, want_late) = session_model(&evs, gap, batch);
        let mut cfg = config(p);
        cfg.batch_size = batch;
        let (got, report) = session_job(&evs, 1, cfg, gap).unwrap();
        prop_assert_eq!(report.operator("session").unwrap().late_records, want_late);
        prop_assert_eq!(sorted(got), want);
    }

    #[test]
    fn top_n_changelog_materializes_to_reference(
        evs in tie_events(500),
        p in prop::sample::select(vec![1usize, 4]),
        n in prop::sample::select(vec![1usize, 3]),
    ) {
        let got = top_n_job(&evs, p, config(p), n);
        let table = apply_strict(&got, |r| (r.0, r.1));
        prop_assert_eq!(table, top_n_reference(&evs, n));
    }

    #[test]
    fn dedup_last_changelog_materializes_to_reference(
        evs in tie_events(500),
        p in prop::sample::select(vec![1usize, 4]),
    ) {
        let got = dedup_last_job(&evs, config(p));
        let table = apply_strict(&got, |e| e.key);
        let mut want = BTreeMap::new();
        for e in &evs {
            want.insert(e.key, e.clone());
        }
        prop_assert_eq!(&table, &want);
        let inserts = got.iter().filter(|c| c.kind == RowKind::Insert).count();
        prop_assert_eq!(inserts, want.len());
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Click {
    user: String,
    ts: i64,
}

impl Codec for Click {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.user.clone(), self.ts).encode(out)
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let (user, ts) = <(String, i64)>::decode(input)?;
        Some(Click { user, ts })
    }
}

/// Worked by hand the way Flink's `EventTimeSessionWindows.withGap(10)`
/// with `forBoundedOutOfOrderness(20)` (watermark = max seen − 21) and one
/// record per batch processes it; value = (count, sum of timestamps).
///
/// | # | record | watermark seen | live sessions after                      |
/// |---|--------|----------------|------------------------------------------|
/// | 1 | a@0    | none           | a[0,10)                                  |
/// | 2 | a@5    | −21            | a[0,15)                                  |
/// | 3 | a@30   | −16            | a[0,15) a[30,40)                         |
/// | 4 | a@12   | 9              | a[0,22) a[30,40)                         |
/// | 5 | a@20   | 9              | a[0,40): [20,30) touches both and bridges |
/// | 6 | a@100  | 9              | a[0,40) a[100,110); then wm 79 fires a[0,40) |
/// | 7 | a@45   | 79             | late: [45,55) ended (54 ≤ 79), merges with nothing |
/// | 8 | a@85   | 79             | a[85,95) a[100,110)                      |
/// | 9 | a@75   | 79             | a[75,95): [75,85) touches [85,95)        |
/// |10 | a@62   | 79             | late: [62,72) ended and misses [75,95)   |
/// |11 | a@66   | 79             | a[66,95): [66,76) ended (75 ≤ 79) but merges into a live session |
/// |12 | b@70   | 79             | late: [70,80) ended (79 ≤ 79)            |
/// |13 | b@90   | 79             | b[90,100)                                |
///
/// The end of input fires the rest.
#[test]
fn session_windows_match_flink_by_hand() {
    let input: Vec<Click> = [
        ("a", 0),
        ("a", 5),
        ("a", 30),
        ("a", 12),
        ("a", 20),
        ("a", 100),
        ("a", 45),
        ("a", 85),
        ("a", 75),
        ("a", 62),
        ("a", 66),
        ("b", 70),
        ("b", 90),
    ]
    .into_iter()
    .map(|(u, ts)| Click {
        user: u.to_string(),
        ts,
    })
    .collect();
    let count_ts = || {
        Aggregate::new(
            || (0u64, 0i64),
            |acc: &mut (u64, i64), c: &Click| {
                acc.0 += 1;
                acc.1 += c.ts;
            },
            |acc| *acc,
        )
    };
    for p in [1, 4] {
        let mut cfg = config(p);
        cfg.batch_size = 1;
        let input = input.clone();
        let (got, report) = run(cfg, move |env| {
            env.source_with_event_time(
                "clicks",
                1,
                split(&input),
                |c: &Click| c.ts,
                WatermarkStrategy::bounded(20),
            )
            .key_by(|c: &Click| c.user.clone())
            .session_window("session", 10, count_ts, |a: &mut (u64, i64), b| {
                a.0 += b.0;
                a.1 += b.1;
            })
            .collect("sink")
        })
        .unwrap();
        let w = |user: &str, start, end, count, sum| WindowResult {
            key: user.to_string(),
            start,
            end,
            value: (count, sum),
        };
        assert_eq!(
            sorted(got),
            vec![
                w("a", 0, 40, 5, 67),
                w("a", 66, 95, 3, 226),
                w("a", 100, 110, 1, 100),
                w("b", 90, 100, 1, 90),
            ],
            "parallelism {p}"
        );
        assert_eq!(report.operator("session").unwrap().late_records, 3);
    }
}

/// The changelog itself, batch of one record at a time: every rank whose
/// row changes gets an update-before/after pair, a rank filled for the
/// first time an insert, and a row that does not make the top N nothing.
#[test]
fn top_n_emits_rank_updates() {
    let vals = [5, 9, 7, 1, 9];
    let evs: Vec<Ev> = vals
        .iter()
        .enumerate()
        .map(|(i, &val)| Ev {
            key: 1,
            ts: i as i64,
            val,
        })
        .collect();
    let mut cfg = config(2);
    cfg.batch_size = 1;
    let got = top_n_job(&evs, 1, cfg, 2);
    let row = |rank, i: usize| (1u32, rank, evs[i].clone());
    let ch = |kind, r| Change { kind, row: r };
    use RowKind::*;
    assert_eq!(
        got,
        vec![
            ch(Insert, row(1, 0)),
            // 9 takes rank 1; 5 moves down to rank 2.
            ch(UpdateBefore, row(1, 0)),
            ch(UpdateAfter, row(1, 1)),
            ch(Insert, row(2, 0)),
            // 7 takes rank 2 from 5.
            ch(UpdateBefore, row(2, 0)),
            ch(UpdateAfter, row(2, 2)),
            // 1 does not make the top 2. The second 9 ties with the first
            // (ts 1): the first has the smaller encoding (ts 1 < ts 4), so
            // the new one takes rank 2.
            ch(UpdateBefore, row(2, 2)),
            ch(UpdateAfter, row(2, 4)),
        ]
    );
}

/// Keep-last dedup emits insert, then update-before/after per later row;
/// a row equal to the current one emits nothing; within one batch only a
/// key's last row counts.
#[test]
fn dedup_last_emits_updates() {
    let ev = |key, ts, val| Ev { key, ts, val };
    let evs = vec![
        ev(1, 0, 10),
        ev(2, 1, 20),
        ev(1, 2, 11),
        ev(1, 2, 11),
        ev(2, 3, 21),
        ev(2, 4, 22),
    ];
    use RowKind::*;
    let ch = |kind, row: &Ev| Change {
        kind,
        row: row.clone(),
    };
    let mut cfg = config(1);
    cfg.batch_size = 1;
    assert_eq!(
        dedup_last_job(&evs, cfg),
        vec![
            ch(Insert, &evs[0]),
            ch(Insert, &evs[1]),
            ch(UpdateBefore, &evs[0]),
            ch(UpdateAfter, &evs[2]),
            ch(UpdateBefore, &evs[1]),
            ch(UpdateAfter, &evs[4]),
            ch(UpdateBefore, &evs[4]),
            ch(UpdateAfter, &evs[5]),
        ]
    );
    // One batch: key 1's last row is evs[3], key 2's is evs[5]; ordered by
    // the position of that last row.
    let mut cfg = config(1);
    cfg.batch_size = 16;
    assert_eq!(
        dedup_last_job(&evs, cfg),
        vec![ch(Insert, &evs[3]), ch(Insert, &evs[5])]
    );
}

#[test]
fn invalid_jobs_fail_before_running() {
    let one = |_, _| {
        vec![Ev {
            key: 1,
            ts: 1,
            val: 1,
        }]
        .into_iter()
    };
    let err = run(config(2), move |env| {
        env.source("events", 1, one)
            .key_by(|e: &Ev| e.key)
            .session_window("session", 10, count_and_sum, merge_count_and_sum)
            .collect("sink")
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidJob(m) if m.contains("needs event time")),
        "{err}"
    );

    let err = session_job(&[], 1, config(2), 0).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidJob(m) if m.contains("gap 0 ms must be positive")),
        "{err}"
    );

    let err = run(config(2), move |env| {
        env.source("events", 1, one)
            .key_by(|e: &Ev| e.key)
            .top_n("top", 0, |e: &Ev| e.val)
            .collect("sink")
    })
    .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidJob(m) if m.contains("n is 0")),
        "{err}"
    );
}
