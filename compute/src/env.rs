//! Building and running a job: the environment holds the graph under
//! construction (channels, tasks, operator counters), checks it, runs every
//! subtask as a task, commits epochs as barriers complete, and reports.

use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use riverbed_state_store::{Epoch, TableId};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::runtime::metrics::{OperatorReport, Registry};
use crate::state::StateBackend;

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
    /// A source emits a checkpoint barrier after this many batches (0: only
    /// the final commit at the end of bounded input). 1,000 batches of 1,024
    /// records is about a second of input per source subtask at the
    /// throughput we aim for: a checkpoint writes back every dirty key, so
    /// much shorter intervals turn state updates into store writes.
    pub checkpoint_every_batches: u64,
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
            checkpoint_every_batches: 1_000,
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
}

impl JobReport {
    pub fn operator(&self, name: &str) -> Option<&OperatorReport> {
        self.operators.iter().find(|o| o.name == name)
    }
}

pub(crate) type Task = BoxFuture<'static, Result<()>>;

pub(crate) struct Graph {
    pub(crate) tasks: Vec<(String, Task)>,
    pub(crate) next_table: u32,
    pub(crate) errors: Vec<String>,
    pub(crate) sinks: usize,
    pub(crate) names: std::collections::HashSet<String>,
}

/// The job under construction. Cheap to clone; every stream holds one.
#[derive(Clone)]
pub struct Env {
    pub(crate) graph: Arc<Mutex<Graph>>,
    pub(crate) backend: Arc<dyn StateBackend>,
    pub(crate) config: JobConfig,
    pub(crate) registry: Registry,
    pub(crate) acks: mpsc::UnboundedSender<SinkEvent>,
    acks_rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<SinkEvent>>>>,
}

/// What sink subtasks tell the coordinator.
pub(crate) enum SinkEvent {
    /// Sink subtask `i` passed barrier `e`: every write of epoch `e`
    /// upstream of it is in the store.
    Barrier(usize, Epoch),
    /// Sink subtask `i` finished; its last writes belong to this epoch.
    Ended(usize, Epoch),
}

impl Env {
    /// A job with `config`, its state in `backend`. Fails, with the field
    /// named, when [`JobConfig::validate`] does: nothing is built then.
    pub fn new(config: JobConfig, backend: Arc<dyn StateBackend>) -> Result<Self> {
        config.validate()?;
        let (tx, rx) = mpsc::unbounded_channel();
        Ok(Env {
            graph: Arc::new(Mutex::new(Graph {
                tasks: Vec::new(),
                next_table: 1,
                errors: Vec::new(),
                sinks: 0,
                names: Default::default(),
            })),
            backend,
            config,
            registry: Registry::default(),
            acks: tx,
            acks_rx: Arc::new(Mutex::new(Some(rx))),
        })
    }

    pub fn config(&self) -> &JobConfig {
        &self.config
    }

    pub(crate) fn invalid(&self, why: String) {
        self.graph.lock().errors.push(why);
    }

    /// A state table for a new stateful operator.
    pub(crate) fn table(&self) -> TableId {
        let mut g = self.graph.lock();
        let t = TableId(g.next_table);
        g.next_table += 1;
        t
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
        self.backend.committed_epoch().next()
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
        let (tasks, sinks) = {
            let mut g = self.graph.lock();
            if !g.errors.is_empty() {
                return Err(Error::InvalidJob(g.errors.join("; ")));
            }
            if g.sinks == 0 {
                return Err(Error::InvalidJob(
                    "the job has no sink: nothing would run".into(),
                ));
            }
            (std::mem::take(&mut g.tasks), g.sinks)
        };
        let mut acks = self
            .acks_rx
            .lock()
            .take()
            .ok_or_else(|| Error::InvalidJob("a job runs once".into()))?;
        // Whatever an earlier, failed or cancelled run left above the last
        // commit must not leak into this one.
        self.backend.rollback().await?;
        let mut set = tokio::task::JoinSet::new();
        for (name, task) in tasks {
            set.spawn(async move { task.await.map_err(|e| (name, e)) });
        }
        let backend = self.backend.clone();
        let coordinator = async move {
            // Per sink subtask: the last barrier it passed, and whether it ended.
            // An ended sink has shipped all it will ever write, so it counts
            // as having passed every later barrier.
            let mut passed: Vec<Option<Epoch>> = vec![None; sinks];
            let mut done = vec![false; sinks];
            let mut last = backend.committed_epoch();
            let mut final_epoch = last.next();
            while done.iter().any(|d| !d) {
                match acks.recv().await {
                    Some(SinkEvent::Barrier(i, e)) => passed[i] = Some(e),
                    Some(SinkEvent::Ended(i, e)) => {
                        done[i] = true;
                        final_epoch = final_epoch.max(e);
                    }
                    None => return Err(Error::Runtime("sinks stopped without finishing".into())),
                }
                let live: Vec<Option<Epoch>> = (0..sinks)
                    .filter(|&i| !done[i])
                    .map(|i| passed[i])
                    .collect();
                if live.is_empty() {
                    // Writes after the last barrier (flushed at the end) belong to
                    // the sinks' final epoch; commit it, or the next one when it
                    // was already committed.
                    let e = final_epoch.max(last.next());
                    backend.commit(e).await?;
                    last = e;
                } else if let Some(Some(e)) = live.iter().min() {
                    if *e > last {
                        backend.commit(*e).await?;
                        last = *e;
                    }
                }
            }
            Ok::<Epoch, Error>(last)
        };
        tokio::pin!(coordinator);
        tokio::pin!(cancel);
        let mut first_error: Option<Error> = None;
        let mut committed = None;
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
                        Ok(e) => committed = Some(e),
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
        Ok(JobReport {
            operators: self.registry.report(),
            committed_epoch: committed.unwrap_or_else(|| self.backend.committed_epoch()),
        })
    }
}
