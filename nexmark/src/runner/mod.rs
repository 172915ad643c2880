//! The benchmark runner: runs Nexmark queries on the compute layer with
//! their state in a state store on a local directory (or any object store
//! URL), and measures them the way the suite does (events, cores = CPU time
//! / wall time of the process, time, throughput per core).
//!
//! Every setting is checked before anything is built ([`RunOptions::job_config`]);
//! the state directory is locked for the run ([`lock`]); results are staged
//! and published whole when a query completes ([`output`]).

pub mod checkpoints;
pub mod cluster;
pub mod lock;
pub mod output;
pub mod report;
pub mod savepoint;
pub mod sink;
pub mod txn_files;
pub mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use riverbed_compute::cluster::{JobHandle, JobPhase, Refused, RescaleReport, RescaleRequest};
use riverbed_compute::sink::CollectHandle;
use riverbed_compute::state::{JobState, RemoteBackend, RemoteOptions, StateControl};
use riverbed_compute::time::Clock;
use riverbed_compute::{Change, EmbeddedBackend, Env, JobConfig};
pub use riverbed_state_store::grpc::client::ClientTls;
use riverbed_state_store::{Options, Store};

use crate::error::{Error, Result};
use crate::queries::{self, QueryContext, QueryInfo};
use crate::row::Row;
pub use crate::source::EventSource;
pub use lock::StateDirLock;
pub use report::{cpu_time, peak_rss, QueryReport};

/// How to run a query.
#[derive(Clone)]
pub struct RunOptions {
    pub parallelism: usize,
    /// A resumed run goes on at the parallelism its checkpoint recorded
    /// (a rescaled job keeps its scale across a restart) instead of
    /// `parallelism`.
    pub parallelism_from_checkpoint: bool,
    /// Key groups of every keyed operator (the most parallelism a job's
    /// state can be split for).
    pub max_parallelism: u16,
    /// The store of a query lives in `<state_dir>/<query>`, emptied first.
    pub state_dir: PathBuf,
    /// The lock on `state_dir` when the caller holds it for several
    /// queries; without it each query locks the directory itself.
    pub lock: Option<Arc<StateDirLock>>,
    /// Write results as JSON lines under `<output>/<query>/`.
    pub output: Option<PathBuf>,
    /// Entries of the worker-side state cache per subtask.
    pub state_cache_entries: usize,
    /// q13's side input.
    pub side_input: Arc<HashMap<i64, String>>,
    /// The processing-time clock (q12); the system clock by default.
    pub clock: Option<Arc<dyn Clock>>,
    /// Keep every result change in memory (tests).
    pub collect: bool,
    /// Time between checkpoints; `None`: only at the end of the input.
    pub checkpoint_interval: Option<std::time::Duration>,
    /// Continue from the last checkpoint in the state directory instead of
    /// starting over.
    pub resume: bool,
    /// Start over even when the state directory holds checkpoints of an
    /// unfinished run.
    pub fresh: bool,
    /// Start from this savepoint (a folder or an `s3://` URL, see
    /// `riverbed_state_store::savepoint`) instead of empty state.
    pub from_savepoint: Option<String>,
    /// Keep state in a store service (`riverbed-store serve`) instead of
    /// the embedded store under `state_dir`; each query is a namespace.
    pub remote: Option<RemoteState>,
    /// The job's coordinator service, when the run serves one: the job
    /// reports its status there and takes rescale requests from it.
    pub coordinator: Option<CoordinatorSlot>,
}

/// The job side of a coordinator service the run serves
/// (`riverbed_compute::cluster`): every query of the run reports there in
/// turn.
#[derive(Clone)]
pub struct CoordinatorSlot {
    pub handle: JobHandle,
    pub requests: Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<RescaleRequest>>>,
}

impl CoordinatorSlot {
    pub fn new(max_parallelism: u16) -> Self {
        let (handle, requests) = JobHandle::new("", 0, max_parallelism);
        handle.update(|s| s.phase = JobPhase::Finished);
        CoordinatorSlot {
            handle,
            requests: Arc::new(tokio::sync::Mutex::new(requests)),
        }
    }
}

/// A store service to keep state in.
#[derive(Clone, Debug)]
pub struct RemoteState {
    /// `HOST:PORT`.
    pub addr: String,
    pub token: Option<String>,
    pub tls: Option<ClientTls>,
}

impl RemoteState {
    /// Parses `--state`: `embedded` (none) or `remote://HOST:PORT`.
    pub fn parse(state: &str, token: Option<String>) -> Result<Option<RemoteState>> {
        if state == "embedded" {
            return Ok(None);
        }
        match state.strip_prefix("remote://") {
            Some(addr) if addr.contains(':') && !addr.contains('/') => Ok(Some(RemoteState {
                addr: addr.to_string(),
                token,
                tls: None,
            })),
            _ => Err(Error::InvalidArgument(format!(
                "--state {state:?}: expected `embedded` or `remote://HOST:PORT`"
            ))),
        }
    }
}

impl RunOptions {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        RunOptions {
            parallelism: 2,
            parallelism_from_checkpoint: false,
            max_parallelism: JobConfig::default().max_parallelism,
            state_dir: state_dir.into(),
            lock: None,
            output: None,
            state_cache_entries: JobConfig::default().state_cache_entries,
            side_input: Arc::new(default_side_input()),
            clock: None,
            collect: false,
            checkpoint_interval: JobConfig::default().checkpoint_interval,
            resume: false,
            fresh: false,
            from_savepoint: None,
            remote: None,
            coordinator: None,
        }
    }

    /// The job settings of a query, checked: the error names the flag of
    /// the runner that is out of range. Nothing is allocated or opened
    /// before this passes.
    pub fn job_config(&self) -> Result<JobConfig> {
        let mut config = JobConfig {
            parallelism: self.parallelism,
            max_parallelism: self.max_parallelism,
            state_cache_entries: self.state_cache_entries,
            checkpoint_interval: self.checkpoint_interval,
            ..JobConfig::default()
        };
        if let Some(clock) = &self.clock {
            config.clock = clock.clone();
        }
        config.validate().map_err(|e| match e {
            riverbed_compute::Error::InvalidConfig { reason, .. } => {
                Error::InvalidArgument(flagged(&reason))
            }
            other => Error::Compute(other),
        })?;
        Ok(config)
    }
}

/// A validation message in the runner's words: each word that is a
/// `JobConfig` field the runner sets becomes its flag.
fn flagged(reason: &str) -> String {
    reason
        .split(' ')
        .map(|word| match word {
            "parallelism" => "--parallelism",
            "max_parallelism" => "--max-parallelism",
            "state_cache_entries" => "--state-cache",
            other => other,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// q13's side input when no file is given: keys 0..10 000, each with the
/// text of its key (the suite ships a file of that shape).
pub fn default_side_input() -> HashMap<i64, String> {
    (0..10_000i64).map(|k| (k, k.to_string())).collect()
}

/// Reads a side input file of `key,value` lines.
pub fn read_side_input(path: &Path) -> Result<HashMap<i64, String>> {
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
        let key = k.trim().parse::<i64>().map_err(|_| {
            Error::InvalidArgument(format!(
                "{} line {}: key {k:?} is not an integer in BIGINT",
                path.display(),
                i + 1
            ))
        })?;
        map.insert(key, v.to_string());
    }
    Ok(map)
}

/// The client of `query`'s namespace in the store service `r`.
pub(crate) async fn connect_remote(r: &RemoteState, query: &str) -> Result<RemoteBackend> {
    let mut ro = RemoteOptions::new(r.addr.clone(), query);
    ro.token = r.token.clone();
    ro.tls = r.tls.clone();
    tokio::task::spawn_blocking(move || RemoteBackend::connect(ro))
        .await
        .map_err(|e| Error::InvalidArgument(format!("connecting to the store: {e}")))?
        .map_err(Error::Compute)
}

/// One finished query: its report and, with `collect`, its changelog.
pub struct QueryRun {
    pub report: QueryReport,
    pub changes: Vec<Change<Row>>,
    /// Every checkpoint this run completed, with its statistics (the store
    /// retains only the last few).
    pub checkpoints: Vec<riverbed_state_store::CheckpointMeta>,
}

/// Runs `query` over `source`, updating `progress` with events read.
#[allow(clippy::disallowed_methods)] // the runner measures wall time
pub async fn run_query(
    query: &QueryInfo,
    source: &EventSource,
    options: &RunOptions,
    progress: Arc<AtomicU64>,
) -> Result<QueryRun> {
    let config = options.job_config()?;
    let _lock = match &options.lock {
        Some(held) if held.dir() == options.state_dir => None,
        _ => Some(StateDirLock::acquire(&options.state_dir)?),
    };
    let dir = options.state_dir.join(query.name);
    let mut config = config;
    config.job_name = query.name.to_string();
    let remote = match &options.remote {
        Some(r) => Some(Arc::new(connect_remote(r, query.name).await?)),
        None => None,
    };
    let place = match &options.remote {
        Some(r) => format!("namespace {} of remote://{}", query.name, r.addr),
        None => dir.display().to_string(),
    };
    // What the state holds decides how to start: resume its last
    // checkpoint, refuse to wipe an unfinished run, or start over.
    let last = latest_checkpoint(remote.as_deref(), &dir, query.name).await?;
    match (&last, options.resume) {
        (Some(cp), true) if !cp.finished => {
            if options.parallelism_from_checkpoint && cp.parallelism > 0 {
                config.parallelism = cp.parallelism as usize;
                config.validate().map_err(|e| {
                    Error::InvalidArgument(format!(
                        "{place}: checkpoint {} was taken at parallelism {}: {e}; give \
                         --parallelism",
                        cp.epoch.0, cp.parallelism
                    ))
                })?;
            }
            config.resume = Some(cp.clone());
        }
        (Some(cp), true) => {
            return Err(Error::InvalidArgument(format!(
                "{place}: the run of {} finished (checkpoint {}); there is nothing to resume \
                 (run without --resume to start over)",
                query.name, cp.epoch.0
            )))
        }
        (None, true) => {
            return Err(Error::InvalidArgument(format!(
                "{place}: no checkpoint of {} to resume from",
                query.name
            )))
        }
        (Some(cp), false) if !cp.finished && !options.fresh => {
            return Err(Error::InvalidArgument(format!(
                "{place} holds checkpoints of an unfinished run of {} (the last: epoch {}); \
                 continue it with --resume, or give --fresh to start over",
                query.name, cp.epoch.0
            )))
        }
        _ => {
            // A namespace with nothing committed has nothing to drop (what
            // is uncommitted the job rolls back when it starts).
            if let Some(b) = remote.as_ref().filter(|b| b.committed_epoch().0 > 0) {
                b.drop_namespace().await.map_err(Error::Compute)?;
            }
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|source| Error::Io {
                    path: dir.clone(),
                    source,
                })?;
            }
        }
    }
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    let url = dir.to_str().ok_or_else(|| {
        Error::InvalidArgument(format!("state directory {} is not UTF-8", dir.display()))
    })?;
    // Output goes on from the checkpoint only when it is this directory's;
    // a savepoint's run starts its output afresh.
    let resuming = config.resume.is_some();
    if let Some(from) = &options.from_savepoint {
        config.resume = Some(match &remote {
            // A savepoint the store holds, by name.
            Some(b) => savepoint::restore_remote(b, from, query.name).await?,
            None => savepoint::restore(from, query.name, url).await?,
        });
    }
    let staged = match (&options.output, options.collect) {
        (Some(out), false) => Some(output::Staged::prepare(
            out,
            query.name,
            &options.state_dir,
            resuming,
        )?),
        _ => None,
    };
    let result = execute(
        query,
        source,
        options,
        config,
        resuming,
        &dir,
        url,
        remote.clone(),
        staged.as_ref(),
        progress,
    )
    .await;
    match (result, staged) {
        (Ok(run), Some(staged)) => {
            staged.publish()?;
            Ok(run)
        }
        (Err(e), Some(staged)) => {
            // Keep what checkpoints committed if there is one to resume,
            // or if the state cannot tell (a remote store that died with
            // the run must find the output of its checkpoints when it is
            // back).
            let resumable = match latest_checkpoint(remote.as_deref(), &dir, query.name).await {
                Ok(last) => last.is_some_and(|c| !c.finished),
                Err(_) => true,
            };
            if !resumable {
                staged.discard();
            }
            Err(e)
        }
        (result, None) => result,
    }
}

#[allow(clippy::disallowed_methods)] // the runner measures wall time
#[allow(clippy::too_many_arguments)]
async fn execute(
    query: &QueryInfo,
    source: &EventSource,
    options: &RunOptions,
    config: JobConfig,
    output_resumes: bool,
    dir: &Path,
    url: &str,
    remote: Option<Arc<RemoteBackend>>,
    staged: Option<&output::Staged>,
    progress: Arc<AtomicU64>,
) -> Result<QueryRun> {
    let resuming = config
        .resume
        .as_ref()
        .map(|c| c.epoch)
        .filter(|_| output_resumes);
    let (backend, store): (Arc<dyn JobState>, Option<Arc<Store>>) = match remote {
        Some(b) => (b, None),
        None => {
            let store = Arc::new(
                Store::open(Options {
                    namespace: query.name.to_string(),
                    ..Options::with_url(url)
                })
                .await
                .map_err(compute_err)?,
            );
            (Arc::new(EmbeddedBackend::new(store.clone())), Some(store))
        }
    };
    let counts = Arc::new(sink::RowCounts::default());
    let handle = CollectHandle::new();
    let cpu_before = cpu_time();
    let wall = std::time::Instant::now();
    let slot = options.coordinator.as_ref();
    if let Some(c) = slot {
        c.handle.update(|s| {
            s.job = query.name.to_string();
            s.parallelism = config.parallelism;
            s.max_parallelism = config.max_parallelism;
            s.committed_epoch = backend.committed_epoch();
            s.phase = JobPhase::Running;
        });
    }
    let mut requests = match slot {
        Some(c) => Some(c.requests.lock().await),
        None => None,
    };
    let mut config = config;
    let mut output_from = resuming;
    let mut totals = Totals::default();
    // A rescale served up to its restart: answered once the job runs again.
    let mut restarting: Option<Restart> = None;
    let job = loop {
        let env = Env::new(config.clone(), backend.clone())?;
        build_job(
            query,
            source,
            options,
            &env,
            output_from,
            dir,
            staged,
            &counts,
            &handle,
            progress.clone(),
            true,
        )?;
        if let Some(r) = restarting.take() {
            r.answer(backend.as_ref(), slot.map(|c| &c.handle)).await;
        }
        if let Some(c) = slot {
            let (mut epochs, h) = (env.committed_epochs(), c.handle.clone());
            tokio::spawn(async move {
                while epochs.changed().await.is_ok() {
                    let e = *epochs.borrow_and_update();
                    h.update(|s| s.committed_epoch = e);
                }
            });
        }
        let mut asked: Option<RescaleRequest> = None;
        let stop = async {
            match requests.as_mut() {
                Some(rx) => match rx.recv().await {
                    Some(r) => asked = Some(r),
                    None => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        let run = env
            .execute_until_stopped(stop)
            .await
            .map_err(Error::Compute);
        let run = match run {
            Ok(run) => run,
            Err(e) => {
                if let Some(r) = asked {
                    let _ = r.reply.send(Err(Refused::Unavailable(format!(
                        "the job failed while it stopped to rescale: {e}"
                    ))));
                }
                break Err(e);
            }
        };
        totals.add(&run);
        let Some(meta) = run.stopped_at.clone() else {
            if let Some(r) = asked {
                let _ = r.reply.send(Err(Refused::Unavailable(format!(
                    "job {} finished before it could stop to rescale",
                    query.name
                ))));
            }
            break Ok(run);
        };
        let Some(request) = asked else {
            break Err(Error::InvalidArgument(
                "the job stopped with no rescale asked for".into(),
            ));
        };
        let from = config.parallelism;
        tracing::info!(
            query = query.name,
            from,
            to = request.parallelism,
            checkpoint = meta.epoch.0,
            "rescaling"
        );
        if let Some(c) = slot {
            c.handle.update(|s| {
                s.phase = JobPhase::Rescaling;
                s.committed_epoch = meta.epoch;
            });
        }
        restarting = Some(Restart {
            stopped: std::time::Instant::now(),
            objects: backend.object_stats().await.unwrap_or_default(),
            report: RescaleReport {
                checkpoint: meta.epoch,
                from,
                to: request.parallelism,
                stop_ms: request.at.elapsed().as_millis() as u64,
                ..Default::default()
            },
            reply: request.reply,
        });
        config.parallelism = request.parallelism;
        config.resume = Some(meta.clone());
        output_from = Some(meta.epoch);
    };
    drop(requests);
    if let Some(c) = slot {
        c.handle.update(|s| {
            s.phase = JobPhase::Finished;
            if let Ok(j) = &job {
                s.committed_epoch = j.committed_epoch;
            }
        });
    }
    let wall = wall.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    // A remote store's own figures are its process's: /metrics there.
    let metrics = store.as_ref().map(|s| s.metrics()).unwrap_or_default();
    let closed = match &store {
        Some(s) => s.close().await.map_err(compute_err),
        None => Ok(()),
    };
    job?;
    closed?;
    let changes = handle.take();
    if options.collect {
        counts.count(changes.iter().map(|c| c.kind));
    }
    let events = totals.events;
    Ok(QueryRun {
        report: QueryReport {
            query: query.name.to_string(),
            events,
            changelog_rows: counts.changes.load(Ordering::Relaxed),
            final_rows: query
                .updating
                .then(|| counts.net.load(Ordering::Relaxed).max(0) as u64),
            wall,
            cpu,
            state_reads: totals.state_reads,
            state_writes: totals.state_writes,
            store_bytes_written: metrics.flush_bytes + metrics.compaction_write_bytes,
            store_bytes_read: metrics.compaction_read_bytes,
            peak_rss_bytes: report::peak_rss(),
            first_output_ms: counts
                .first_output
                .get()
                .copied()
                .flatten()
                .map(|d| d.as_millis() as u64),
        },
        changes,
        checkpoints: totals.checkpoints,
    })
}

/// What the runs of a job's plan (one per parallelism) add up to.
#[derive(Default)]
struct Totals {
    events: u64,
    state_reads: u64,
    state_writes: u64,
    checkpoints: Vec<riverbed_state_store::CheckpointMeta>,
}

impl Totals {
    fn add(&mut self, run: &riverbed_compute::JobReport) {
        self.events += run
            .operator(crate::source::SOURCE_NAME)
            .map_or(0, |o| o.records_out);
        self.state_reads += run.operators.iter().map(|o| o.state_reads).sum::<u64>();
        self.state_writes += run.operators.iter().map(|o| o.state_writes).sum::<u64>();
        self.checkpoints.extend(run.checkpoints.iter().cloned());
    }
}

/// A rescale between the stop at its checkpoint and the job running again.
struct Restart {
    stopped: std::time::Instant,
    /// The store's object traffic at the stop.
    objects: riverbed_compute::state::ObjectStats,
    report: RescaleReport,
    reply: tokio::sync::oneshot::Sender<std::result::Result<RescaleReport, Refused>>,
}

impl Restart {
    /// Answers the request: the job is built at its new parallelism.
    async fn answer(self, backend: &dyn JobState, handle: Option<&JobHandle>) {
        let mut report = self.report;
        report.restart_ms = self.stopped.elapsed().as_millis() as u64;
        if let Ok(now) = backend.object_stats().await {
            let d = now.since(&self.objects);
            report.objects_copied = d.objects_copied;
            report.bytes_written = d.written_bytes;
            report.bytes_read = d.read_bytes;
        }
        tracing::info!(
            from = report.from,
            to = report.to,
            checkpoint = report.checkpoint.0,
            stop_ms = report.stop_ms,
            restart_ms = report.restart_ms,
            objects_copied = report.objects_copied,
            bytes_written = report.bytes_written,
            "rescaled"
        );
        eprintln!(
            "rescaled {} -> {} at checkpoint {} (stop {} ms, restart {} ms; objects copied {}, \
             bytes written {})",
            report.from,
            report.to,
            report.checkpoint.0,
            report.stop_ms,
            report.restart_ms,
            report.objects_copied,
            report.bytes_written
        );
        if let Some(h) = handle {
            h.update(|s| {
                s.parallelism = report.to;
                s.phase = JobPhase::Running;
                s.rescales += 1;
            });
        }
        let _ = self.reply.send(Ok(report));
    }
}

/// Builds one attempt's plan of a job on worker processes: nobody in this
/// process counts or collects its rows (the workers' sinks write files, the
/// coordinator's plan only drives checkpoints), and the coordinator cuts
/// the sinks' files back once, before the attempt, so no part does it.
fn build_cluster_part(
    query: &QueryInfo,
    source: &EventSource,
    options: &RunOptions,
    env: &Env,
    resuming: Option<riverbed_state_store::Epoch>,
    dir: &Path,
    staged: Option<&output::Staged>,
) -> Result<()> {
    build_job(
        query,
        source,
        options,
        env,
        resuming,
        dir,
        staged,
        &Arc::new(sink::RowCounts::default()),
        &CollectHandle::new(),
        Arc::new(AtomicU64::new(0)),
        false,
    )
}

/// Builds the query's plan on `env`: its source, the query and its sink.
/// `cut_back`: cut the sinks' files back to the resumed checkpoint (the
/// process that starts a run does it once, before any sink writes; a
/// worker of a cluster leaves it to the coordinator).
#[allow(clippy::too_many_arguments)]
fn build_job(
    query: &QueryInfo,
    source: &EventSource,
    options: &RunOptions,
    env: &Env,
    resuming: Option<riverbed_state_store::Epoch>,
    dir: &Path,
    staged: Option<&output::Staged>,
    counts: &Arc<sink::RowCounts>,
    handle: &CollectHandle<Change<Row>>,
    progress: Arc<AtomicU64>,
    cut_back: bool,
) -> Result<()> {
    let events = source.stream(env, options.parallelism, progress);
    let ctx = QueryContext {
        side_input: options.side_input.clone(),
    };
    let results = queries::build(query.name, events, &ctx)?;
    if options.collect {
        results.sink("nexmark-sink", {
            let h = handle.clone();
            move |_| Ok(h.sink())
        });
    } else {
        let partitioned = query.name == "q10";
        let files = match staged {
            Some(s) => Some(sink::SinkFiles {
                root: s.staging.clone(),
                json: true,
                partitioned,
                resume: resuming,
            }),
            // q10 writes its partitions even without --output, into the
            // query's state directory.
            None => partitioned.then(|| sink::SinkFiles {
                root: dir.join("output"),
                json: false,
                partitioned: true,
                resume: resuming,
            }),
        };
        if let Some(f) = files.as_ref().filter(|_| cut_back) {
            if let Some(at) = f.resume {
                txn_files::cut_back_all(&f.root, at).map_err(Error::Compute)?;
            }
        }
        let (counts, columns) = (counts.clone(), query.columns);
        results.sink("nexmark-sink", move |i| {
            sink::ResultSink::create(i, counts.clone(), columns, files.as_ref())
        });
    }
    Ok(())
}

/// The last checkpoint of `query`: in the remote store when there is one,
/// else in the query's state directory.
async fn latest_checkpoint(
    remote: Option<&RemoteBackend>,
    dir: &Path,
    query: &str,
) -> Result<Option<riverbed_state_store::CheckpointMeta>> {
    match remote {
        Some(b) => Ok(b.checkpoints().await.map_err(Error::Compute)?.pop()),
        None => checkpoints::latest(dir, query).await,
    }
}

fn compute_err(e: riverbed_state_store::Error) -> Error {
    Error::Compute(riverbed_compute::Error::from(e))
}

/// Events per second over `took`.
pub fn rate(events: u64, took: Duration) -> f64 {
    events as f64 / took.as_secs_f64().max(1e-9)
}
