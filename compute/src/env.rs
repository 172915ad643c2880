//! Building and running a job: the environment holds the graph under
//! construction (channels, tasks, operator counters), checks it, runs every
//! subtask as a task, commits epochs as barriers complete, and reports.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use riverbed_state_store::{CheckpointMeta, Epoch, TableId};
use tokio::sync::{mpsc, watch};

use crate::checkpoint::{coordinator::Injections, Action, Coordinator, Event, Settings};
use crate::cluster::link::{Command, WorkerLink};
use crate::error::{Error, Result};
use crate::runtime::metrics::{OperatorReport, Registry};
use crate::runtime::placement::Placement;
use crate::state::{JobState, StateBackend, StateControl};

/// Settings of one job.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Subtasks per operator (sources may choose their own).
    pub parallelism: usize,
    /// Key groups: the upper bound of parallelism and the unit of rescaling.
    /// 128 is Flink's default for small jobs.
    pub max_parallelism: u16,
    /// Records per batch from sources.
    pub batch_size: usize,
    /// Time between checkpoint barriers, injected at the sources by the
    /// coordinator (as RisingWave does); `None` checkpoints only at the end
    /// of bounded input. 1 s by default: a checkpoint writes back every dirty
    /// key, so much shorter intervals turn state updates into store writes.
    pub checkpoint_interval: Option<Duration>,
    /// A checkpoint not complete after this long is abandoned; its writes go
    /// with the next one. 60 s.
    pub checkpoint_timeout: Duration,
    /// The job's name, recorded in its checkpoints.
    pub job_name: String,
    /// The checkpoint to resume from: sources seek to its positions (the
    /// store must be at its epoch, see `StateBackend::rollback`).
    pub resume: Option<CheckpointMeta>,
    /// Entries each stateful subtask keeps in its worker-side cache.
    pub state_cache_entries: usize,
    /// Updating aggregates buffer their changes per key and emit them once
    /// this many input records have been folded (Flink's
    /// `table.exec.mini-batch.size`), ...
    pub mini_batch_records: usize,
    /// ... or once this much processing time has passed since the last
    /// emission (`table.exec.mini-batch.allow-latency`), and always before
    /// a checkpoint barrier and at the end of the input. 0 emits per batch.
    pub mini_batch_latency_ms: i64,
    /// Processing time for operators that use it (the wall clock by default).
    pub clock: Arc<dyn crate::time::Clock>,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            parallelism: 1,
            max_parallelism: 128,
            batch_size: 1024,
            checkpoint_interval: Some(Duration::from_secs(1)),
            checkpoint_timeout: Duration::from_secs(60),
            job_name: "job".into(),
            resume: None,
            state_cache_entries: 100_000,
            mini_batch_records: 50_000,
            mini_batch_latency_ms: 2_000,
            clock: Arc::new(crate::time::SystemClock),
        }
    }
}

/// The most subtasks per operator. The in-process runtime connects every
/// pair of subtasks of an exchange with a channel, so memory grows with the
/// square of the parallelism: 1,024 is about a million channels per exchange.
pub const MAX_PARALLELISM_LIMIT: usize = 1024;

/// The most key groups: Flink's upper bound for `max_parallelism` (2^15).
pub const MAX_KEY_GROUPS: u16 = 32_768;

/// The largest source batch, in records (a batch is one allocation).
pub const MAX_BATCH_SIZE: usize = 1 << 20;

/// The largest worker-side cache, in entries per subtask (positions in the
/// cache's index are 32-bit).
pub const MAX_STATE_CACHE_ENTRIES: usize = 1 << 31;

impl JobConfig {
    /// Checks every setting before anything is built: a bad value is refused
    /// with the name of its field, before any subtask, channel, thread or
    /// store exists.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::InvalidConfig { field, reason });
        if self.max_parallelism == 0 || self.max_parallelism > MAX_KEY_GROUPS {
            return bad(
                "max_parallelism",
                format!(
                    "max_parallelism {} is outside 1..={MAX_KEY_GROUPS}",
                    self.max_parallelism
                ),
            );
        }
        if self.parallelism == 0 {
            return bad("parallelism", "parallelism must be at least 1".into());
        }
        if self.parallelism > usize::from(self.max_parallelism) {
            return bad(
                "parallelism",
                format!(
                    "parallelism {} exceeds max_parallelism {}",
                    self.parallelism, self.max_parallelism
                ),
            );
        }
        if self.parallelism > MAX_PARALLELISM_LIMIT {
            return bad(
                "parallelism",
                format!(
                    "parallelism {} is above {MAX_PARALLELISM_LIMIT}, the most this runtime \
                     runs (each exchange connects every pair of subtasks)",
                    self.parallelism
                ),
            );
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return bad(
                "batch_size",
                format!(
                    "batch_size {} is outside 1..={MAX_BATCH_SIZE} records",
                    self.batch_size
                ),
            );
        }
        if self.state_cache_entries == 0 || self.state_cache_entries > MAX_STATE_CACHE_ENTRIES {
            return bad(
                "state_cache_entries",
                format!(
                    "state_cache_entries {} is outside 1..={MAX_STATE_CACHE_ENTRIES}",
                    self.state_cache_entries
                ),
            );
        }
        if self.mini_batch_records == 0 {
            return bad(
                "mini_batch_records",
                "mini_batch_records must be at least 1 (usize::MAX: no size trigger)".into(),
            );
        }
        if self.mini_batch_latency_ms < 0 {
            return bad(
                "mini_batch_latency_ms",
                format!(
                    "mini_batch_latency_ms {} is negative",
                    self.mini_batch_latency_ms
                ),
            );
        }
        Ok(())
    }
}

/// What a finished job reports.
#[derive(Debug, Clone)]
pub struct JobReport {
    pub operators: Vec<OperatorReport>,
    /// The last epoch committed in the store.
    pub committed_epoch: Epoch,
    /// Every checkpoint the run completed, in order, as the store recorded
    /// them (with their statistics); the last is the final commit.
    pub checkpoints: Vec<CheckpointMeta>,
    /// The checkpoint the job stopped at when it was asked to stop
    /// ([`Env::execute_until_stopped`]) before its input ended: a job
    /// resumed from it, at any parallelism, goes on where this one stopped.
    pub stopped_at: Option<CheckpointMeta>,
}

impl JobReport {
    pub fn operator(&self, name: &str) -> Option<&OperatorReport> {
        self.operators.iter().find(|o| o.name == name)
    }
}

pub(crate) use crate::runtime::Task;

pub(crate) struct Graph {
    pub(crate) tasks: Vec<(String, Task)>,
    pub(crate) errors: Vec<String>,
    pub(crate) sinks: usize,
    /// Name and subtask count of every source, in the order added.
    pub(crate) sources: Vec<(String, usize)>,
    pub(crate) names: std::collections::HashSet<String>,
}

/// The job under construction. Cheap to clone; every stream holds one.
#[derive(Clone)]
pub struct Env {
    pub(crate) graph: Arc<Mutex<Graph>>,
    /// The data plane: all an operator's state is given.
    pub(crate) backend: Arc<dyn StateBackend>,
    /// The control plane: the coordinator's alone.
    pub(crate) control: Arc<dyn StateControl>,
    pub(crate) config: JobConfig,
    pub(crate) registry: Registry,
    /// What sources and sinks tell the checkpoint coordinator.
    pub(crate) events: mpsc::UnboundedSender<Event>,
    events_rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<Event>>>>,
    /// The barrier the coordinator asks the sources for (the committed
    /// epoch while none is).
    pub(crate) barrier_wanted: watch::Receiver<Epoch>,
    barrier_tx: Arc<watch::Sender<Epoch>>,
    /// The last committed epoch, for sinks to publish what they staged.
    pub(crate) committed: watch::Receiver<Epoch>,
    committed_tx: Arc<watch::Sender<Epoch>>,
    /// The checkpoint the job stops at, once asked to stop: sources emit
    /// nothing after its barrier.
    pub(crate) stop_at: watch::Receiver<Option<Epoch>>,
    stop_tx: Arc<watch::Sender<Option<Epoch>>>,
    /// Which subtasks run here when the job is spread over workers
    /// (`None`: all of them).
    pub(crate) placement: Option<Arc<Placement>>,
    /// Who runs the checkpoint coordinator (taken when the job runs).
    role: Arc<Mutex<Option<Role>>>,
}

/// Where the job's checkpoint coordinator runs.
enum Role {
    /// Here, for a job that runs whole in this process.
    Local,
    /// Here, for subtasks on worker processes: every command also goes to
    /// `outbox` for the workers; their events come in by
    /// [`Env::event_sender`].
    Coordinator(mpsc::UnboundedSender<Command>),
    /// On the coordinator process: this worker follows its commands.
    Worker(WorkerLink),
}

impl Env {
    /// A job with `config`, its state in `state`. Fails, with the field
    /// named, when [`JobConfig::validate`] does: nothing is built then.
    pub fn new(config: JobConfig, state: Arc<dyn JobState>) -> Result<Self> {
        config.validate()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let committed = state.committed_epoch();
        let backend = state.clone().data_plane();
        let control = state.control_plane();
        let (barrier_tx, barrier_wanted) = watch::channel(committed);
        let (committed_tx, committed_rx) = watch::channel(committed);
        let (stop_tx, stop_at) = watch::channel(None);
        Ok(Env {
            graph: Arc::new(Mutex::new(Graph {
                tasks: Vec::new(),
                errors: Vec::new(),
                sinks: 0,
                sources: Vec::new(),
                names: Default::default(),
            })),
            backend,
            control,
            config,
            registry: Registry::default(),
            events: tx,
            events_rx: Arc::new(Mutex::new(Some(rx))),
            barrier_wanted,
            barrier_tx: Arc::new(barrier_tx),
            committed: committed_rx,
            committed_tx: Arc::new(committed_tx),
            stop_at,
            stop_tx: Arc::new(stop_tx),
            placement: None,
            role: Arc::new(Mutex::new(Some(Role::Local))),
        })
    }

    /// The part of a job that worker `placement` runs: only its subtasks,
    /// exchanging with the other workers' over the network, checkpointing
    /// as the coordinator at the other end of `link` commands. The store
    /// is not rolled back here: the coordinator did it, and gave this
    /// worker its writer generation.
    pub fn for_worker(
        config: JobConfig,
        state: Arc<dyn JobState>,
        placement: Placement,
        link: WorkerLink,
    ) -> Result<Self> {
        let mut env = Env::new(config, state)?;
        env.placement = Some(Arc::new(placement));
        *env.role.lock() = Some(Role::Worker(link));
        Ok(env)
    }

    /// The coordinator's copy of a job spread over `workers` processes: no
    /// subtask runs here; the checkpoint coordinator does, hearing the
    /// workers' events through [`Env::event_sender`] and telling them its
    /// commands through `outbox`. The caller rolls the store back (and
    /// fences it) before the workers start.
    pub fn for_coordinator(
        config: JobConfig,
        state: Arc<dyn JobState>,
        workers: usize,
        outbox: mpsc::UnboundedSender<Command>,
    ) -> Result<Self> {
        let mut env = Env::new(config, state)?;
        env.placement = Some(Arc::new(Placement::coordinator(workers)));
        *env.role.lock() = Some(Role::Coordinator(outbox));
        Ok(env)
    }

    /// Where the workers' source and sink events go in (coordinator).
    pub fn event_sender(&self) -> mpsc::UnboundedSender<Event> {
        self.events.clone()
    }

    /// Whether subtask `i` of an operator runs in this process.
    pub(crate) fn owns(&self, i: usize) -> bool {
        self.placement.as_ref().is_none_or(|p| p.owns(i))
    }

    pub fn config(&self) -> &JobConfig {
        &self.config
    }

    /// The job's committed epoch as it moves (checkpoint by checkpoint).
    pub fn committed_epochs(&self) -> watch::Receiver<Epoch> {
        self.committed.clone()
    }

    pub(crate) fn invalid(&self, why: String) {
        self.graph.lock().errors.push(why);
    }

    /// The state table `name` of a stateful operator, registered with the
    /// store so that a restarted job finds it under the same id.
    pub(crate) fn table(&self, name: &str) -> TableId {
        self.table_with(name, None)
    }

    /// Like [`Env::table`], describing the table's keys and values so that
    /// its state can be queried by key.
    pub(crate) fn table_with(
        &self,
        name: &str,
        info: Option<riverbed_state_store::catalog::TableInfo>,
    ) -> TableId {
        match self.control.register_table(name, info.as_ref()) {
            Ok(t) => t,
            Err(e) => {
                self.invalid(format!("state table {name:?}: {e}"));
                TableId(0)
            }
        }
    }

    /// Registers an operator; a name used twice is a build error.
    pub(crate) fn operator(
        &self,
        name: &str,
        parallelism: usize,
    ) -> Arc<crate::runtime::metrics::OperatorCounters> {
        if !self.graph.lock().names.insert(name.to_string()) {
            self.invalid(format!(
                "two operators are named {name:?}; names must be unique"
            ));
        }
        self.registry.register(name, parallelism)
    }

    pub(crate) fn spawn(&self, name: String, task: Task) {
        self.graph.lock().tasks.push((name, task));
    }

    pub(crate) fn first_epoch(&self) -> Epoch {
        self.control.committed_epoch().next()
    }

    /// Checks the job, runs it to the end of its bounded sources, commits its
    /// state, and reports per-operator counts.
    pub async fn execute(self) -> Result<JobReport> {
        self.execute_until(std::future::pending()).await
    }

    /// Like [`execute`](Self::execute), but stops every subtask and returns
    /// `Error::Cancelled` as soon as `cancel` completes. Nothing of the
    /// running epoch is committed; the store keeps the last committed one.
    pub async fn execute_until(
        self,
        cancel: impl std::future::Future<Output = ()>,
    ) -> Result<JobReport> {
        self.run(cancel, std::future::pending()).await
    }

    /// Like [`execute`](Self::execute), but once `stop` completes the job
    /// takes a checkpoint at once and stops there, as Flink's
    /// stop-with-savepoint does: its sources emit nothing after that
    /// checkpoint's barrier, every subtask ends when it is committed, and
    /// the report names it in [`JobReport::stopped_at`]. A job whose input
    /// ends first finishes as `execute` does (`stopped_at` is `None`).
    /// Rescaling is this stop and a job resumed from the checkpoint at
    /// another parallelism: no state moves, the new subtasks read their key
    /// groups where the old ones left them.
    pub async fn execute_until_stopped(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<JobReport> {
        self.run(std::future::pending(), stop).await
    }

    /// Both: cancelled when `cancel` completes, stopped at a checkpoint
    /// when `stop` does.
    pub async fn execute_with(
        self,
        cancel: impl std::future::Future<Output = ()>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<JobReport> {
        self.run(cancel, stop).await
    }

    async fn run(
        self,
        cancel: impl std::future::Future<Output = ()>,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<JobReport> {
        let (tasks, sinks, sources) = {
            let mut g = self.graph.lock();
            if !g.errors.is_empty() {
                return Err(Error::InvalidJob(g.errors.join("; ")));
            }
            if g.sinks == 0 {
                return Err(Error::InvalidJob(
                    "the job has no sink: nothing would run".into(),
                ));
            }
            (std::mem::take(&mut g.tasks), g.sinks, g.sources.clone())
        };
        let mut events = self
            .events_rx
            .lock()
            .take()
            .ok_or_else(|| Error::InvalidJob("a job runs once".into()))?;
        let role = self
            .role
            .lock()
            .take()
            .ok_or_else(|| Error::InvalidJob("a job runs once".into()))?;
        // Whatever an earlier, failed or cancelled run left above the last
        // commit must not leak into this one (a cluster's coordinator does
        // this before its workers start).
        if matches!(role, Role::Local) {
            self.control.rollback().await?;
        }
        let mut set = tokio::task::JoinSet::new();
        for (name, task) in tasks {
            set.spawn(async move { task.await.map_err(|e| (name, e)) });
        }
        let control = self.control.clone();
        let clock = self.config.clock.clone();
        let settings = Settings {
            job: self.config.job_name.clone(),
            sources,
            sinks,
            interval_ms: self
                .config
                .checkpoint_interval
                .map(|d| d.as_millis().max(1) as i64),
            timeout_ms: self.config.checkpoint_timeout.as_millis() as i64,
            parallelism: self.config.parallelism,
        };
        let tick = self
            .config
            .checkpoint_interval
            .map_or(Duration::from_millis(100), |d| {
                (d / 4).clamp(Duration::from_millis(1), Duration::from_millis(100))
            });
        let (barrier_tx, committed_tx) = (self.barrier_tx.clone(), self.committed_tx.clone());
        let stop_tx = self.stop_tx.clone();
        let registry = self.registry.clone();
        let (outbox, link) = match role {
            Role::Local => (None, None),
            Role::Coordinator(o) => (Some(o), None),
            Role::Worker(l) => (None, Some(l)),
        };
        let tell = move |c: Command| {
            if let Some(o) = &outbox {
                let _ = o.send(c);
            }
        };
        let coordinator = match link {
            Some(link) => futures::future::Either::Left(follow(
                link,
                events,
                barrier_tx,
                committed_tx,
                stop_tx,
            )),
            None => futures::future::Either::Right(async move {
                let mut c = Coordinator::new(settings, control.committed_epoch());
                let mut injections = Injections::default();
                let mut recorded = Vec::new();
                let mut ticker = tokio::time::interval(tick);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tokio::pin!(stop);
                let mut stop_epoch: Option<Epoch> = None;
                loop {
                    let mut pending: std::collections::VecDeque<Action> = tokio::select! {
                        e = events.recv() => match e {
                            Some(e) => c.on(e).into(),
                            None => return Err(Error::Runtime("sources and sinks stopped without finishing".into())),
                        },
                        _ = ticker.tick() => c.on(Event::Tick { now: clock.now() }).into(),
                        _ = &mut stop, if stop_epoch.is_none() => {
                            let e = c.next_epoch();
                            tracing::info!(epoch = e.0, "stopping at a checkpoint");
                            stop_epoch = Some(e);
                            // Before the barrier: a source that sees barrier
                            // `e` sees that it is the last.
                            let _ = stop_tx.send(Some(e));
                            tell(Command::StopAt(e));
                            c.request_checkpoint(clock.now()).into()
                        }
                    };
                    while let Some(action) = pending.pop_front() {
                        match action {
                            Action::Inject(e) => {
                                injections.record(e, clock.now());
                                tracing::debug!(epoch = e.0, "checkpoint barrier injected");
                                let _ = barrier_tx.send(e);
                                tell(Command::Inject(e));
                            }
                            Action::Commit { epoch, mut meta } => {
                                #[allow(clippy::disallowed_methods)] // wall time is the record's
                                let wall = std::time::SystemTime::now()
                                    .duration_since(std::time::UNIX_EPOCH)
                                    .map_or(0, |d| d.as_millis() as u64);
                                meta.wall_time_ms = wall;
                                let now = clock.now();
                                meta.stats.duration_ms = injections.take(epoch, now);
                                // Every operator aligned `epoch` before the sinks
                                // passed it, so its times are all in.
                                meta.stats.alignment_ms = registry.take_alignments(epoch);
                                let meta = control.commit_checkpoint(epoch, meta).await?;
                                let done = clock.now();
                                tracing::info!(
                                    epoch = epoch.0,
                                    duration_ms = meta.stats.duration_ms,
                                    files = meta.stats.files_added,
                                    bytes = meta.stats.bytes_written,
                                    "checkpoint complete"
                                );
                                recorded.push(meta.clone());
                                let _ = committed_tx.send(epoch);
                                tell(Command::Committed(epoch));
                                if stop_epoch == Some(epoch) {
                                    return Ok(Ended::Stopped(meta, recorded));
                                }
                                pending.extend(c.on(Event::Committed { epoch, now: done }));
                            }
                            Action::Abandon(e) => {
                                tracing::warn!(
                                    epoch = e.0,
                                    "checkpoint abandoned; its writes go with the next one"
                                );
                            }
                            Action::Finished(e) => {
                                tell(Command::Finished(e));
                                return Ok::<_, Error>(Ended::Finished(e, recorded));
                            }
                        }
                    }
                }
            }),
        };
        tokio::pin!(coordinator);
        tokio::pin!(cancel);
        let mut first_error: Option<Error> = None;
        let mut committed = None;
        // Stopped at a checkpoint: the subtasks are ended by abort, and
        // what they say then is of no account.
        let mut stopped = false;
        loop {
            tokio::select! {
                _ = &mut cancel, if first_error.is_none() => {
                    tracing::info!("job cancelled");
                    first_error = Some(Error::Cancelled);
                    set.abort_all();
                    if set.is_empty() {
                        break;
                    }
                }
                joined = set.join_next(), if !set.is_empty() => {
                    match joined {
                        Some(Ok(Ok(()))) => {}
                        Some(Ok(Err(_))) if stopped => {}
                        Some(Ok(Err((name, e)))) => {
                            tracing::error!(task = %name, error = %e, "subtask failed");
                            // A subtask that only saw its upstream vanish is a
                            // consequence: the cause, when it comes, wins.
                            match &first_error {
                                Some(f) if f.is_consequence() && !e.is_consequence() => {
                                    first_error = Some(e)
                                }
                                Some(_) => {}
                                None => first_error = Some(e),
                            }
                            set.abort_all();
                        }
                        Some(Err(e)) if e.is_cancelled() => {}
                        Some(Err(e)) => {
                            first_error.get_or_insert(Error::Runtime(format!("a subtask panicked: {e}")));
                            set.abort_all();
                        }
                        None => {}
                    }
                    if first_error.is_some() && set.is_empty() {
                        break;
                    }
                }
                done = &mut coordinator, if committed.is_none() && first_error.is_none() => {
                    match done {
                        Ok(Ended::Stopped(meta, recorded)) => {
                            stopped = true;
                            set.abort_all();
                            committed = Some((meta.epoch, recorded, Some(meta)));
                        }
                        Ok(Ended::Finished(e, recorded)) => committed = Some((e, recorded, None)),
                        Err(e) => {
                            first_error.get_or_insert(e);
                            set.abort_all();
                        }
                    }
                }
                else => break,
            }
            if set.is_empty() && (committed.is_some() || first_error.is_some()) {
                break;
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let (committed_epoch, checkpoints, stopped_at) =
            committed.unwrap_or_else(|| (self.control.committed_epoch(), Vec::new(), None));
        Ok(JobReport {
            operators: self.registry.report(),
            committed_epoch,
            checkpoints,
            stopped_at,
        })
    }
}

/// A worker's stand-in for the checkpoint coordinator: passes its
/// subtasks' events on and the coordinator's commands in, and ends as the
/// coordinator's loop does.
async fn follow(
    mut link: WorkerLink,
    mut events: mpsc::UnboundedReceiver<Event>,
    barrier_tx: Arc<watch::Sender<Epoch>>,
    committed_tx: Arc<watch::Sender<Epoch>>,
    stop_tx: Arc<watch::Sender<Option<Epoch>>>,
) -> Result<Ended> {
    let mut stop_epoch = None;
    loop {
        tokio::select! {
            e = events.recv() => {
                if let Some(e) = e {
                    let _ = link.events.send(e);
                }
            }
            c = link.commands.recv() => match c {
                None => return Err(Error::Runtime("the link to the coordinator is gone".into())),
                Some(Command::Inject(e)) => {
                    let _ = barrier_tx.send(e);
                }
                Some(Command::StopAt(e)) => {
                    stop_epoch = Some(e);
                    let _ = stop_tx.send(Some(e));
                }
                Some(Command::Committed(e)) => {
                    let _ = committed_tx.send(e);
                    if stop_epoch == Some(e) {
                        let meta = CheckpointMeta { epoch: e, ..Default::default() };
                        return Ok(Ended::Stopped(meta, Vec::new()));
                    }
                }
                Some(Command::Finished(e)) => return Ok(Ended::Finished(e, Vec::new())),
            },
        }
    }
}

/// How the coordinator's loop ends.
enum Ended {
    /// The input ended and its final epoch is committed.
    Finished(Epoch, Vec<CheckpointMeta>),
    /// Asked to stop: the checkpoint it stopped at, and all completed.
    Stopped(CheckpointMeta, Vec<CheckpointMeta>),
}
