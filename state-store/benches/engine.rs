//! Engine micro-benchmarks, named for the question each answers. Keys are
//! 16 bytes (6-byte table|key-group prefix + 10-byte user key), values 100
//! bytes, writes in batches of 1,000, as in the engine issue's targets.
#![allow(clippy::disallowed_methods)] // benchmarks measure wall time

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use riverbed_state_store::memtable::Memtable;
use riverbed_state_store::sst::bloom::{self, Bloom};
use riverbed_state_store::{full_key, Epoch, KeyGroup, Options, Store, TableId, WriteBatch};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const BATCH: u64 = 1000;

fn key(i: u64) -> Bytes {
    let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    full_key(
        TableId(1),
        KeyGroup((h >> 54) as u16),
        &h.to_be_bytes()[..8]
            .iter()
            .chain(&[0u8, 1])
            .copied()
            .collect::<Vec<_>>(),
    )
}

fn value() -> Bytes {
    Bytes::from(vec![b'v'; 100])
}

fn batch(from: u64) -> WriteBatch {
    let v = value();
    let mut b = WriteBatch::with_capacity(BATCH as usize);
    for i in from..from + BATCH {
        b.put(key(i), v.clone());
    }
    b
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn memtable_insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("memtable_insert");
    g.throughput(Throughput::Elements(BATCH));
    let mut next = 0u64;
    g.bench_function("batch_of_1000_puts", |b| {
        b.iter_batched(
            || {
                next += BATCH;
                (Memtable::new(Epoch(1), 1), batch(next))
            },
            |(m, wb)| m.apply(&wb).map(|_| ()).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// Writes of 1,000,000 random keys into a fresh store: batches of 1,000,
/// committed every 100 batches (each commit running beside the next epoch's
/// writes, as a checkpoint does), then waiting until background flush and
/// compaction are done. The time covers all of it.
fn write_throughput(c: &mut Criterion) {
    let rt = rt();
    let n = 1_000_000u64;
    let mut g = c.benchmark_group("write_batched");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(n));
    g.bench_function("fill_1m_random_puts_with_flush_and_compaction", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let batches: Vec<WriteBatch> = (0..n).step_by(BATCH as usize).map(batch).collect();
                let start = Instant::now();
                rt.block_on(async {
                    let store = std::sync::Arc::new(
                        Store::open(Options::with_url(dir.path().to_str().unwrap()))
                            .await
                            .unwrap(),
                    );
                    let mut pending: Option<tokio::task::JoinHandle<()>> = None;
                    for (i, wb) in batches.iter().enumerate() {
                        let epoch = 1 + i as u64 / 100;
                        store.write(Epoch(epoch), wb).await.unwrap();
                        if i % 100 == 99 {
                            if let Some(p) = pending.take() {
                                p.await.unwrap();
                            }
                            let s = store.clone();
                            pending = Some(tokio::spawn(async move {
                                s.commit(Epoch(epoch)).await.unwrap()
                            }));
                        }
                    }
                    if let Some(p) = pending {
                        p.await.unwrap();
                    }
                    store.compact_until_idle().await.unwrap();
                    store.close().await.unwrap();
                });
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

/// One compaction of 40 committed L0 files into L1, as a store behind on
/// compaction does: 40 checkpoints of 40,000 keys each, every file
/// overlapping the next by three quarters (a job updating much the same
/// keys). The time is the merge alone; filling the files is set-up.
fn compaction_of_many_l0_files(c: &mut Criterion) {
    let rt = rt();
    let (files, per) = (40u64, 40_000u64);
    let mut g = c.benchmark_group("compaction");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(files * per));
    g.bench_function("l0_to_l1_40_overlapping_files_of_40k", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let mut opts = Options::with_url(dir.path().to_str().unwrap());
                opts.background_compaction = false;
                let store = rt.block_on(async {
                    let store = Store::open(opts).await.unwrap();
                    for f in 0..files {
                        let first = f * per / 4;
                        for from in (first..first + per).step_by(BATCH as usize) {
                            store.write(Epoch(f + 1), &batch(from)).await.unwrap();
                        }
                        store.commit(Epoch(f + 1)).await.unwrap();
                    }
                    store
                });
                (dir, store)
            },
            |(dir, store)| {
                rt.block_on(store.compact()).unwrap();
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// A store of `n` committed, compacted keys.
fn loaded_store(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    n: u64,
    cache_bytes: usize,
) -> Store {
    let mut opts = Options::with_url(dir.to_str().unwrap());
    opts.block_cache_bytes = cache_bytes;
    rt.block_on(async {
        let store = Store::open(opts).await.unwrap();
        for from in (0..n).step_by(BATCH as usize) {
            store.write(Epoch(1), &batch(from)).await.unwrap();
        }
        store.commit(Epoch(1)).await.unwrap();
        store.compact().await.unwrap();
        store
    })
}

fn point_get(c: &mut Criterion) {
    let rt = rt();
    let n = 1_000_000u64;
    let mut g = c.benchmark_group("point_get");
    g.throughput(Throughput::Elements(BATCH));
    for (name, cache) in [("cache_hit", 1usize << 30), ("cache_miss", 1usize)] {
        let dir = tempfile::tempdir().unwrap();
        let store = loaded_store(&rt, dir.path(), n, cache);
        let keys: Vec<Bytes> = (0..BATCH).map(|i| key((i * 7919) % n)).collect();
        // Warm the cache (or, with a one-byte cache, prove nothing stays).
        rt.block_on(async {
            for k in &keys {
                assert!(store.get(k, Epoch(1)).await.unwrap().is_some());
            }
        });
        g.bench_function(format!("{name}_1000_gets"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    for k in &keys {
                        std::hint::black_box(store.get(k, Epoch(1)).await.unwrap());
                    }
                })
            })
        });
        let s = store.cache_stats();
        eprintln!(
            "point_get/{name}: cache hits {}, misses {}",
            s.hits, s.misses
        );
        rt.block_on(store.close()).unwrap();
    }
    g.finish();
}

/// Multi-gets of 100 present keys (in the block cache) while 40 committed
/// L0 files of 100,000 keys each overlap the whole key space, as after a
/// large epoch's commit and before its compaction: each key is checked
/// against every file's range and filter.
fn multi_get_over_l0(c: &mut Criterion) {
    let rt = rt();
    let (files, per) = (40u64, 100_000u64);
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::with_url(dir.path().to_str().unwrap());
    opts.background_compaction = false;
    opts.block_cache_bytes = 1 << 30;
    let store = rt.block_on(async {
        let store = Store::open(opts).await.unwrap();
        for f in 0..files {
            for from in (f * per..(f + 1) * per).step_by(BATCH as usize) {
                store.write(Epoch(f + 1), &batch(from)).await.unwrap();
            }
            store.commit(Epoch(f + 1)).await.unwrap();
        }
        store
    });
    let n = files * per;
    let calls: Vec<Vec<Bytes>> = (0..64u64)
        .map(|c| {
            (0..100u64)
                .map(|i| key((c * 100 + i) * 39_989 % n))
                .collect()
        })
        .collect();
    let epoch = Epoch(files);
    rt.block_on(async {
        for keys in &calls {
            let got = store.multi_get(keys, epoch).await.unwrap();
            assert!(got.iter().all(Option::is_some));
        }
    });
    let mut g = c.benchmark_group("multi_get");
    g.throughput(Throughput::Elements(100));
    let mut next = 0;
    g.bench_function("100_cached_keys_over_40_l0_files", |b| {
        b.iter(|| {
            next = (next + 1) % calls.len();
            rt.block_on(store.multi_get(&calls[next], epoch)).unwrap()
        })
    });
    rt.block_on(store.close()).unwrap();
    // The same gets once all of it is compacted into sorted levels: each
    // key meets one file per level, and those files' filters are megabytes.
    let dir = tempfile::tempdir().unwrap();
    let store = loaded_store(&rt, dir.path(), n, 1 << 30);
    rt.block_on(async {
        for keys in &calls {
            let got = store.multi_get(keys, Epoch(1)).await.unwrap();
            assert!(got.iter().all(Option::is_some));
        }
    });
    g.bench_function("100_cached_keys_over_compacted_4m", |b| {
        b.iter(|| {
            next = (next + 1) % calls.len();
            rt.block_on(store.multi_get(&calls[next], Epoch(1)))
                .unwrap()
        })
    });
    g.finish();
    rt.block_on(store.close()).unwrap();
}

fn scan(c: &mut Criterion) {
    let rt = rt();
    let n = 1_000_000u64;
    let dir = tempfile::tempdir().unwrap();
    let store = loaded_store(&rt, dir.path(), n, 1 << 30);
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Elements(100_000));
    rt.block_on(store.scan(&[], None, Epoch(1), usize::MAX))
        .unwrap();
    g.bench_function("100000_entries_cached", |b| {
        b.iter(|| {
            let got = rt
                .block_on(store.scan(&[], None, Epoch(1), 100_000))
                .unwrap();
            assert_eq!(got.len(), 100_000);
        })
    });
    g.finish();
    rt.block_on(store.close()).unwrap();
}

fn bloom_probe(c: &mut Criterion) {
    let hashes: Vec<u64> = (0..100_000u64).map(|i| bloom::key_hash(&key(i))).collect();
    let filter = Bloom::decode(bloom::build(&hashes, 10).into()).unwrap();
    let probes: Vec<u64> = (0..1000u64).map(|i| bloom::key_hash(&key(i * 3))).collect();
    let mut g = c.benchmark_group("bloom_probe");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000_probes_100k_key_filter", |b| {
        b.iter(|| probes.iter().filter(|&&h| filter.may_contain(h)).count())
    });
    g.finish();
}

/// Filter builds of a compaction output's size: 500 K keys (a 64 MiB file
/// of 116-byte entries at 2× compression, a 625 KiB filter) and 8 M keys
/// (the same file when values compress 16×, as the load test's do: 10 MiB).
fn bloom_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("bloom_build");
    for keys in [500_000u64, 8_000_000] {
        let hashes: Vec<u64> = (0..keys).map(|i| bloom::key_hash(&key(i))).collect();
        g.throughput(Throughput::Elements(keys));
        g.bench_function(format!("{keys}_keys"), |b| {
            b.iter(|| bloom::build(&hashes, 10).len())
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bloom_build,
    memtable_insert,
    write_throughput,
    point_get,
    multi_get_over_l0,
    scan,
    bloom_probe,
    compaction_of_many_l0_files
);
criterion_main!(benches);
