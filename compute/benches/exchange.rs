//! Batch exchange between subtasks: a two-operator job (a source of 2
//! subtasks, `key_by` hash exchange, a blackhole sink of 2 subtasks) over a
//! small record count, so the time is the runtime's batching, channels and
//! hash routing rather than state. Records from `RIVERBED_BENCH_EXCHANGE_RECORDS`
//! (default 200,000).
//!
//! `network_edge`: the same records in batches of 1,024 `(u64, u64)` over
//! one exchange edge on a loopback TCP connection (`net_exchange.rs`):
//! encoding, framing, credits and decoding.
#![allow(clippy::disallowed_methods)] // benchmarks measure wall time

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riverbed_compute::sink::Blackhole;
use riverbed_compute::{EmbeddedBackend, Env, JobConfig};
use riverbed_state_store::{Options, Store};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn records() -> u64 {
    std::env::var("RIVERBED_BENCH_EXCHANGE_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

fn key_by_exchange(c: &mut Criterion) {
    let n = records();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        rt.block_on(Store::open(Options::with_url(dir.path().to_str().unwrap())))
            .unwrap(),
    );
    let mut g = c.benchmark_group("batch_exchange");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(n));
    g.bench_function(
        format!("key_by_exchange_{}k_records_to_blackhole", n / 1000),
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let env = Env::new(
                        JobConfig {
                            parallelism: 2,
                            ..JobConfig::default()
                        },
                        Arc::new(EmbeddedBackend::new(store.clone())),
                    )
                    .expect("valid job config");
                    env.source("src", 2, move |i, p| (i as u64..n).step_by(p))
                        .key_by(|r: &u64| r.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                        .stream()
                        .sink("sink", |_| Ok(Blackhole));
                    let start = Instant::now();
                    rt.block_on(env.execute()).unwrap();
                    total += start.elapsed();
                }
                total
            })
        },
    );
    g.finish();
    rt.block_on(store.close()).unwrap();
}

fn network_edge(c: &mut Criterion) {
    use riverbed_compute::runtime::message::Msg;
    use riverbed_compute::runtime::net_exchange::{
        read_handshake, receive_from, send_over, EdgeCounters, DEFAULT_MAX_FRAME_BYTES,
    };
    let n = records();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("batch_exchange");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(n));
    g.bench_function(format!("network_edge_{}k_records", n / 1000), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(async {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    let addr = listener.local_addr().unwrap();
                    let (s, r) =
                        tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
                    let (s, mut r) = (s.unwrap(), r.unwrap().0);
                    let (local_tx, local_rx) = tokio::sync::mpsc::channel(8);
                    let (remote_tx, mut remote_rx) = tokio::sync::mpsc::channel(8);
                    let start = Instant::now();
                    let send = tokio::spawn(send_over::<(u64, u64)>(
                        local_rx,
                        s,
                        0,
                        Arc::new(EdgeCounters::default()),
                    ));
                    let recv = tokio::spawn(async move {
                        read_handshake(&mut r).await.unwrap();
                        receive_from::<(u64, u64)>(r, remote_tx, DEFAULT_MAX_FRAME_BYTES).await
                    });
                    tokio::spawn(async move {
                        let mut i = 0;
                        while i < n {
                            let end = (i + 1024).min(n);
                            let batch: Vec<(u64, u64)> = (i..end).map(|k| (k, k ^ 7)).collect();
                            local_tx.send(Msg::Data(batch)).await.unwrap();
                            i = end;
                        }
                        local_tx.send(Msg::End).await.unwrap();
                    });
                    let mut got = 0u64;
                    while let Some(m) = remote_rx.recv().await {
                        if let Msg::Data(b) = m {
                            got += b.len() as u64;
                        }
                    }
                    send.await.unwrap().unwrap();
                    recv.await.unwrap().unwrap();
                    assert_eq!(got, n);
                    start.elapsed()
                });
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, key_by_exchange, network_edge);
criterion_main!(benches);
