//! Hot paths of the compute layer, each a whole job on a fresh store:
//! stateless map/filter with a hash exchange, a keyed aggregate with few and
//! with many keys (state in the store, many keys exceeding the worker
//! cache), a tumbling window, and an interval join. Record counts come from
//! `RIVERBED_BENCH_RECORDS` (default 10,000,000).
#![allow(clippy::disallowed_methods)] // benchmarks measure wall time

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riverbed_compute::sink::Blackhole;
use riverbed_compute::{Aggregate, EmbeddedBackend, Env, JobConfig, WatermarkStrategy, Windows};
use riverbed_state_store::{Options, Store};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn records() -> u64 {
    std::env::var("RIVERBED_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000)
}

#[derive(Clone, Copy)]
struct Rec {
    key: u64,
    ts: i64,
    val: i64,
}

impl riverbed_compute::Codec for Rec {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.key, self.ts, self.val).encode(out)
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let (key, ts, val) = <(u64, i64, i64)>::decode(input)?;
        Some(Rec { key, ts, val })
    }
}

/// `n` records split over `parallelism` source subtasks, `keys` distinct keys.
/// Record `j` gets key `j * P mod keys` with `P` prime to every key count used
/// here (powers of 2 and 5), so each run of `keys` records holds every key
/// exactly once, in a scattered order: 10 M records over 10 M keys are 10 M
/// distinct keys, and 10 M over 100 K see each key 100 times.
fn gen(i: usize, p: usize, n: u64, keys: u64) -> impl Iterator<Item = Rec> + Send {
    const P: u64 = 2_654_435_761; // prime, and j * P fits in u64 for j < 7e9
    (i as u64..n).step_by(p).map(move |j| Rec {
        key: (j * P) % keys,
        ts: j as i64,
        val: (j % 100) as i64,
    })
}

/// Runs the job `build` makes once and returns its wall time.
fn time_job(cache: usize, build: impl FnOnce(&Env)) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            Store::open(Options::with_url(dir.path().to_str().unwrap()))
                .await
                .unwrap(),
        );
        let config = JobConfig {
            parallelism: 2,
            state_cache_entries: cache,
            ..JobConfig::default()
        };
        let env = Env::new(config, Arc::new(EmbeddedBackend::new(store.clone())))
            .expect("valid job config");
        build(&env);
        let start = Instant::now();
        env.execute().await.unwrap();
        let took = start.elapsed();
        store.close().await.unwrap();
        took
    })
}

fn bench_job(c: &mut Criterion, group: &str, name: &str, n: u64, job: impl Fn() -> Duration) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(n));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let took = job();
                    // Each job's own rate, so a quick `--profile-time 1` run
                    // (one job) still gives the figure.
                    eprintln!(
                        "{group}/{name}: {:.0} records/s",
                        n as f64 / took.as_secs_f64()
                    );
                    took
                })
                .sum()
        })
    });
    g.finish();
}

fn stateless(c: &mut Criterion) {
    let n = records();
    bench_job(c, "stateless", "map_filter_hash_exchange", n, || {
        time_job(1, |env| {
            env.source("src", 2, move |i, p| gen(i, p, n, 1_000_000))
                .map("map", |r: Rec| Rec {
                    val: r.val * 2,
                    ..r
                })
                .filter("filter", |r: &Rec| r.val != 7)
                .key_by(|r: &Rec| r.key)
                .stream()
                .sink("sink", |_| Ok(Blackhole));
        })
    });
}

fn keyed_aggregate(c: &mut Criterion) {
    let n = records();
    for (name, keys) in [("100k_keys", 100_000u64), ("10m_keys", 10_000_000)] {
        bench_job(c, "keyed_aggregate", name, n, move || {
            // 100 K entries per subtask: the 10 M-key state is 50× the cache.
            time_job(100_000, |env| {
                env.source("src", 2, move |i, p| gen(i, p, n, keys))
                    .key_by(|r: &Rec| r.key)
                    .aggregate("sum", || Aggregate::sum(|r: &Rec| r.val))
                    .sink("sink", |_| Ok(Blackhole));
            })
        });
    }
}

fn tumbling_window(c: &mut Criterion) {
    let n = records();
    bench_job(c, "tumbling_window", "10s_windows_10k_keys", n, || {
        time_job(100_000, |env| {
            env.source_with_event_time(
                "src",
                2,
                move |i, p| gen(i, p, n, 10_000),
                |r: &Rec| r.ts,
                WatermarkStrategy::bounded(1000),
            )
            .key_by(|r: &Rec| r.key)
            .window("window", Windows::tumbling(10_000), Aggregate::count)
            .sink("sink", |_| Ok(Blackhole));
        })
    });
}

fn interval_join(c: &mut Criterion) {
    let n = records() / 10;
    bench_job(
        c,
        "interval_join",
        "both_sides_100k_keys_pm_1s",
        2 * n,
        || {
            time_job(100_000, |env| {
                let keyed = |name: &str| {
                    env.source_with_event_time(
                        &format!("{name}-source"),
                        1,
                        move |i, p| gen(i, p, n, 100_000),
                        |r: &Rec| r.ts,
                        WatermarkStrategy::bounded(1000),
                    )
                    .map(name, |r: Rec| (r.key, r.ts, r.val))
                    .with_timestamps(|r: &(u64, i64, i64)| r.1)
                    .key_by(|r: &(u64, i64, i64)| r.0)
                };
                let (l, r) = (keyed("left"), keyed("right"));
                l.interval_join("join", r, -1000, 1000)
                    .sink("sink", |_| Ok(Blackhole));
            })
        },
    );
}

criterion_group!(
    benches,
    stateless,
    keyed_aggregate,
    tumbling_window,
    interval_join
);
criterion_main!(benches);
