//! Riverbed's benchmark harness: one command (`riverbed-bench report`) that
//! measures the state store beside RocksDB and SlateDB, the Nexmark suite and
//! the store's cost as state grows, and writes a Markdown report with SVG
//! charts and the raw numbers as JSON under `bench/results/<date>/`.
//!
//! - [`config`]: what a run measures and at which sizes (`--quick`, `--tiny`).
//! - [`dataset`]: the keys, values and access orders every engine gets.
//! - [`engines`]: one trait over the three stores; RocksDB and SlateDB sit
//!   behind the cargo features `rocksdb` and `slatedb`, off by default.
//! - [`compare`]: the interleaved store-vs-store workloads and their medians.
//! - [`goals`]: the goals as ratios, judged from one run.
//! - [`scale`]: the store's throughput and bytes at growing state sizes.
//! - [`nexmark`]: every query in its own child process (peak RSS per query).
//! - [`checkpoints`]: checkpoint cost and recovery as state grows, and
//!   what 1 s checkpoints cost in throughput.
//! - [`service_load`]: a bounded load test of the store service on
//!   loopback (`riverbed-bench store-load`).
//! - [`rescale`]: rescaling a running one-process job
//!   (`riverbed-bench rescale`).
//! - [`cluster`]: a query on worker processes: the scaling curve over 1, 2,
//!   3 workers, and a worker's failover and a 2 → 4 rescale at a state size
//!   (`riverbed-bench cluster-scaling`, `cluster-failover`).
//! - [`charts`]: SVG charts drawn with `plotters`.
//! - [`run`]: runs the selected sections and gathers [`run::Results`].
//! - [`report`]: the Markdown report, its charts and `results.json`.
//!
//! Criterion micro-benchmarks of hot paths live beside the code they measure
//! (`state-store/benches/`, `compute/benches/`); the report lists them.

pub mod charts;
pub mod checkpoints;
pub mod cluster;
pub mod compare;
pub mod config;
pub mod dataset;
pub mod engines;
pub mod goals;
pub mod nexmark;
pub mod report;
pub mod rescale;
pub mod run;
pub mod scale;
pub mod service_load;
pub mod timing;
