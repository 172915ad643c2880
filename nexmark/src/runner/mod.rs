//! The benchmark runner: runs Nexmark queries on the compute layer with
//! their state in a state store on a local directory (or any object store
//! URL), and measures them the way the suite does (events, cores = CPU time
//! / wall time of the process, time, throughput per core).

pub mod report;
pub mod sink;
pub mod source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use riverbed_compute::sink::CollectHandle;
use riverbed_compute::time::Clock;
use riverbed_compute::{Change, EmbeddedBackend, Env, JobConfig};
use riverbed_state_store::{Options, Store};

use crate::error::{Error, Result};
use crate::queries::{self, QueryContext, QueryInfo};
use crate::row::Row;
pub use report::{cpu_time, peak_rss, QueryReport};
pub use source::EventSource;

/// How to run a query.
#[derive(Clone)]
pub struct RunOptions {
    pub parallelism: usize,
    /// The store of a query lives in `<state_dir>/<query>`, emptied first.
    pub state_dir: PathBuf,
    /// Write results as JSON lines under `<output>/<query>/`.
    pub output: Option<PathBuf>,
    /// Entries of the worker-side state cache per subtask.
    pub state_cache_entries: usize,
    /// q13's side input.
    pub side_input: Arc<HashMap<u64, String>>,
    /// The processing-time clock (q12); the system clock by default.
    pub clock: Option<Arc<dyn Clock>>,
    /// Keep every result change in memory (tests).
    pub collect: bool,
}

impl RunOptions {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        RunOptions {
            parallelism: 2,
            state_dir: state_dir.into(),
            output: None,
            state_cache_entries: JobConfig::default().state_cache_entries,
            side_input: Arc::new(default_side_input()),
            clock: None,
            collect: false,
        }
    }
}

/// q13's side input when no file is given: keys 0..10 000, each with the
/// text of its key (the suite ships a file of that shape).
pub fn default_side_input() -> HashMap<u64, String> {
    (0..10_000u64).map(|k| (k, k.to_string())).collect()
}

/// Reads a side input file of `key,value` lines.
pub fn read_side_input(path: &Path) -> Result<HashMap<u64, String>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut map = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (k, v) = line.split_once(',').ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{} line {}: expected key,value",
                path.display(),
                i + 1
            ))
        })?;
        let key = k.trim().parse::<u64>().map_err(|_| {
            Error::InvalidArgument(format!(
                "{} line {}: key {k:?} is not a non-negative integer",
                path.display(),
                i + 1
            ))
        })?;
        map.insert(key, v.to_string());
    }
    Ok(map)
}

/// One finished query: its report and, with `collect`, its changelog.
pub struct QueryRun {
    pub report: QueryReport,
    pub changes: Vec<Change<Row>>,
}

/// Runs `query` over `source`, updating `progress` with events read.
#[allow(clippy::disallowed_methods)] // the runner measures wall time
pub async fn run_query(
    query: &QueryInfo,
    source: &EventSource,
    options: &RunOptions,
    progress: Arc<AtomicU64>,
) -> Result<QueryRun> {
    let dir = options.state_dir.join(query.name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
    }
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    let url = dir.to_str().ok_or_else(|| {
        Error::InvalidArgument(format!("state directory {} is not UTF-8", dir.display()))
    })?;
    let store = Arc::new(
        Store::open(Options::with_url(url))
            .await
            .map_err(compute_err)?,
    );
    let mut config = JobConfig {
        parallelism: options.parallelism,
        state_cache_entries: options.state_cache_entries,
        ..JobConfig::default()
    };
    if let Some(clock) = &options.clock {
        config.clock = clock.clone();
    }
    let env = Env::new(config, Arc::new(EmbeddedBackend::new(store.clone())));
    let events = source.stream(&env, options.parallelism, progress);
    let ctx = QueryContext {
        side_input: options.side_input.clone(),
    };
    let results = queries::build(query.name, events, &ctx)?;
    let rows = Arc::new(AtomicU64::new(0));
    let handle = CollectHandle::new();
    if options.collect {
        results.sink("nexmark-sink", {
            let h = handle.clone();
            move |_| Ok(h.sink())
        });
    } else {
        let json_dir = options.output.as_ref().map(|o| o.join(query.name));
        let partition_dir = (query.name == "q10").then(|| match &options.output {
            Some(o) => o.join("q10").join("bid"),
            None => dir.join("output").join("bid"),
        });
        let (rows, columns) = (rows.clone(), query.columns);
        results.sink("nexmark-sink", move |i| {
            sink::ResultSink::create(
                i,
                rows.clone(),
                columns,
                json_dir.as_deref(),
                partition_dir.as_deref(),
            )
        });
    }
    let cpu_before = cpu_time();
    let wall = std::time::Instant::now();
    let job = env.execute().await.map_err(Error::Compute)?;
    let wall = wall.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let metrics = store.metrics();
    store.close().await.map_err(compute_err)?;
    let changes = handle.take();
    let rows = if options.collect {
        changes.len() as u64
    } else {
        rows.load(Ordering::Relaxed)
    };
    Ok(QueryRun {
        report: QueryReport {
            query: query.name.to_string(),
            events: source.len(),
            rows,
            wall,
            cpu,
            state_reads: job.operators.iter().map(|o| o.state_reads).sum(),
            state_writes: job.operators.iter().map(|o| o.state_writes).sum(),
            store_bytes_written: metrics.flush_bytes + metrics.compaction_write_bytes,
            store_bytes_read: metrics.compaction_read_bytes,
            peak_rss_bytes: report::peak_rss(),
        },
        changes,
    })
}

fn compute_err(e: riverbed_state_store::Error) -> Error {
    Error::Compute(riverbed_compute::Error::from(e))
}

/// Events per second over `took`.
pub fn rate(events: u64, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64().max(1e-9)
}
