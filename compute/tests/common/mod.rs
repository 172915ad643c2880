//! Helpers shared by the compute layer's integration tests: a runtime, a
//! job on a fresh store, and input splitting over source subtasks.
#![allow(dead_code)]

pub mod replay;

use std::sync::Arc;

use riverbed_compute::sink::CollectHandle;
use riverbed_compute::{Codec, EmbeddedBackend, Env, Error, JobConfig, JobReport};
use riverbed_state_store::{Options, Store};

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs the job `build` makes on a fresh store (small memtables, so state
/// reaches files) and returns what it collected and the job's report.
pub fn run_job<X: Send + 'static>(
    config: JobConfig,
    build: impl FnOnce(&Env) -> CollectHandle<X>,
) -> Result<(Vec<X>, JobReport), Error> {
    runtime().block_on(async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut opts = Options::with_url(dir.path().to_str().expect("utf-8 path"));
        opts.memtable_bytes = 64 << 10;
        opts.max_memory_bytes = 256 << 10;
        let store = Arc::new(Store::open(opts).await.expect("open store"));
        let env = Env::new(config, Arc::new(EmbeddedBackend::new(store.clone())))
            .expect("valid job config");
        let handle = build(&env);
        let report = env.execute().await?;
        store.close().await.expect("close store");
        Ok((handle.take(), report))
    })
}

/// Subtask `i` of `n` reads every `n`-th event.
pub fn split<E: Clone>(events: &[E]) -> impl Fn(usize, usize) -> std::vec::IntoIter<E> + '_ {
    move |i, n| {
        events
            .iter()
            .skip(i)
            .step_by(n)
            .cloned()
            .collect::<Vec<_>>()
            .into_iter()
    }
}

pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// A keyed event with a time and an id (the joins' and restores' input).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ev {
    pub key: u32,
    pub ts: i64,
    pub id: u32,
}

impl Codec for Ev {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.key, self.ts, self.id).encode(out)
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let (key, ts, id) = <(u32, i64, u32)>::decode(input)?;
        Some(Ev { key, ts, id })
    }
}

/// A keyed event with a time and a value (the aggregates' and windows'
/// input).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Val {
    pub key: u32,
    pub ts: i64,
    pub val: i64,
}

impl Codec for Val {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.key, self.ts, self.val).encode(out)
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let (key, ts, val) = <(u32, i64, i64)>::decode(input)?;
        Some(Val { key, ts, val })
    }
}
