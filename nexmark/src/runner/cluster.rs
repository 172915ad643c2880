//! A query on worker processes: the coordinator's side
//! (`riverbed-nexmark coordinator`).
//!
//! The coordinator owns the run: it takes the store's namespace over
//! (fencing every earlier writer), decides where to start (the last
//! checkpoint of an unfinished run, which the store keeps with its
//! parallelism and source positions: a restarted coordinator resumes the
//! job from it), builds the plan to run the checkpoint coordinator over it,
//! and assigns subtask `i` of each operator to live worker `i % workers`.
//! Workers build the same plan from the [`ClusterJob`] it sends them and
//! run their subtasks; they hold nothing that must survive.
//!
//! An attempt ends in one of three ways:
//! - the input ends: the final epoch is committed, every worker publishes
//!   its sink files, the results are published whole;
//! - a stop at a checkpoint (a rescale, or workers joining a job that runs
//!   on fewer than it asked for): the next attempt resumes from it with the
//!   new parallelism or spread;
//! - a worker dies (its stream ends, or no heartbeat for the timeout) or
//!   fails: the attempt is abandoned, every live worker ends its subtasks,
//!   and the next attempt resumes from the last committed checkpoint on the
//!   live workers. The store is rolled back and fenced first, so a write
//!   still in flight from the dead worker is refused.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use riverbed_compute::cluster::link::Command;
use riverbed_compute::cluster::members::{MemberEvent, Members};
use riverbed_compute::cluster::worker::JobBytes;
use riverbed_compute::cluster::{JobPhase, Refused, RescaleReport, RescaleRequest};
use riverbed_compute::state::StateControl;
use riverbed_compute::Env;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{
    build_cluster_part, connect_remote, output, txn_files, CoordinatorSlot, Restart, RunOptions,
};
use crate::error::{Error, Result};
use crate::queries::QueryInfo;
use crate::source::SourceSpec;

/// What a worker needs to build the plan of an attempt: the same on every
/// worker of the attempt, so every worker builds the same plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterJob {
    pub query: String,
    pub source: SourceSpec,
    pub parallelism: usize,
    pub max_parallelism: u16,
    pub state_cache_entries: usize,
    pub checkpoint_interval_ms: Option<u64>,
    /// The store service (`HOST:PORT`) and its token.
    pub store: String,
    pub token: Option<String>,
    /// The checkpoint to resume from.
    pub resume_epoch: Option<u64>,
    /// The sinks' staging folder and the epoch their files go on from.
    pub staging: Option<PathBuf>,
    pub output_from: Option<u64>,
    /// q10's partition folder when there is no `--output`.
    pub state_dir: PathBuf,
}

/// Settings of the coordinator.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Workers the job runs on: the first attempt waits for this many; a
    /// job left with fewer after a failure goes on with the live ones and
    /// spreads again when workers join.
    pub workers: usize,
    /// A worker silent this long is dead (2 s by default).
    pub heartbeat_timeout: Duration,
    /// How long an abandoned attempt's workers have to end their subtasks.
    pub drain_timeout: Duration,
    /// Consecutive failed attempts (with no checkpoint between them) after
    /// which the coordinator gives up.
    pub max_failures: usize,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            workers: 1,
            heartbeat_timeout: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(10),
            max_failures: 20,
        }
    }
}

/// What a cluster run did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClusterReport {
    pub query: String,
    pub committed_epoch: u64,
    pub attempts: u64,
    pub failovers: u64,
    pub rescales: u64,
    /// Events of the input (for generated events; else those the workers'
    /// sources read in attempts that ended cleanly).
    pub events: u64,
    pub wall_ms: u64,
    /// Per failover: from the worker's loss to the next attempt assigned.
    pub restart_ms: Vec<u64>,
    /// Per failover: from the worker's loss to the first checkpoint of the
    /// attempt after it (the first new output: sinks publish at
    /// checkpoints).
    pub recovery_ms: Vec<u64>,
    /// Per attempt: checkpoint durations, injection to commit.
    pub checkpoint_ms: Vec<u64>,
}

/// How an attempt ended.
enum AttemptEnd {
    Finished,
    /// Stopped at a checkpoint to go on at `parallelism`.
    Stopped {
        meta: riverbed_state_store::CheckpointMeta,
        parallelism: usize,
        request: Option<RescaleRequest>,
    },
    /// A worker died or failed.
    Failed(String),
}

/// Runs `query` on the workers that attach to `members`, in the store
/// service `options.remote`, until its input ends.
#[allow(clippy::disallowed_methods)] // the coordinator measures wall time
pub async fn run(
    query: &QueryInfo,
    template: ClusterJob,
    options: &RunOptions,
    cluster: &ClusterOptions,
    members: Arc<Members>,
    mut member_events: mpsc::UnboundedReceiver<MemberEvent>,
    slot: CoordinatorSlot,
) -> Result<ClusterReport> {
    let remote = options.remote.as_ref().ok_or_else(|| {
        Error::InvalidArgument(
            "the coordinator keeps state in a store service: give --state remote://HOST:PORT"
                .into(),
        )
    })?;
    let mut config = options.job_config()?;
    config.job_name = query.name.to_string();
    let backend = Arc::new(connect_remote(remote, query.name).await?);
    let started = std::time::Instant::now();
    // Where to start: an unfinished run goes on (a restarted coordinator
    // finds it in the store), unless asked to start over.
    let last = backend.checkpoints().await.map_err(Error::Compute)?.pop();
    let resuming = match &last {
        Some(cp) if !cp.finished && !options.fresh => {
            if cp.parallelism > 0 && options.parallelism_from_checkpoint {
                config.parallelism = cp.parallelism as usize;
            }
            eprintln!(
                "coordinator: {} goes on from checkpoint {} at parallelism {}",
                query.name, cp.epoch.0, config.parallelism
            );
            true
        }
        Some(cp) if !cp.finished => {
            eprintln!(
                "coordinator: --fresh: dropping the unfinished run of {} (checkpoint {})",
                query.name, cp.epoch.0
            );
            false
        }
        _ => false,
    };
    if !resuming && backend.committed_epoch().0 > 0 {
        backend.drop_namespace().await.map_err(Error::Compute)?;
    }
    config.validate().map_err(Error::Compute)?;
    let staged = match &options.output {
        Some(out) => Some(output::Staged::prepare(
            out,
            query.name,
            &options.state_dir,
            resuming,
        )?),
        None => None,
    };
    let dir = options.state_dir.join(query.name);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    let source = template.source.open()?;
    let handle = slot.handle.clone();
    handle.update(|s| {
        s.job = query.name.to_string();
        s.parallelism = config.parallelism;
        s.max_parallelism = config.max_parallelism;
        s.committed_epoch = backend.committed_epoch();
        s.phase = JobPhase::Running;
    });
    let mut requests = slot.requests.lock().await;
    let mut report = ClusterReport {
        query: query.name.to_string(),
        ..Default::default()
    };
    let mut waiting_said = 0;
    let mut attempt: u64 = 0;
    let mut failures = 0usize;
    // From a worker's loss to the next attempt's first checkpoint.
    let mut lost_at: Option<std::time::Instant> = None;
    let mut restarting: Option<Restart> = None;
    let mut parallelism = config.parallelism;
    loop {
        // Workers: the first attempt waits for all it asked for; later
        // ones go on with the live ones.
        let want = if report.attempts == 0 {
            cluster.workers
        } else {
            1
        };
        while members.live().len() < want {
            let n = members.live().len();
            if n != waiting_said || report.attempts == 0 && n == 0 && waiting_said == 0 {
                eprintln!(
                    "coordinator: waiting for workers ({n} of {})",
                    cluster.workers
                );
                waiting_said = n;
            }
            match member_events.recv().await {
                Some(_) => {}
                None => return Err(Error::InvalidArgument("the worker service stopped".into())),
            }
        }
        // One worker per subtask at most: a worker beyond the parallelism
        // would own nothing, and stays idle (its loss costs nothing).
        let live: Vec<_> = members.live().into_iter().take(parallelism).collect();
        let ids: Vec<u64> = live.iter().map(|(id, _, _)| *id).collect();
        let peers: Vec<String> = live.iter().map(|(_, addr, _)| addr.clone()).collect();
        // Take the namespace over: the last attempt's writers are fenced
        // off, and what they left above the last commit is dropped.
        backend.rollback().await.map_err(Error::Compute)?;
        let generation = backend.generation();
        let last = backend.checkpoints().await.map_err(Error::Compute)?.pop();
        let resume = last.filter(|c| !c.finished && (resuming || attempt > 0));
        config.parallelism = parallelism;
        config.resume = resume.clone();
        let output_from = resume.as_ref().map(|c| c.epoch);
        if let (Some(s), Some(at)) = (&staged, output_from) {
            txn_files::cut_back_all(&s.staging, at).map_err(Error::Compute)?;
        }
        // The attempt is named by the generation: unique across restarts
        // of the coordinator, so no edge of an old attempt is taken for one
        // of the new.
        attempt = generation;
        report.attempts += 1;
        if let Some(t) = lost_at {
            report.restart_ms.push(t.elapsed().as_millis() as u64);
        }
        let job = ClusterJob {
            parallelism,
            resume_epoch: resume.as_ref().map(|c| c.epoch.0),
            staging: staged.as_ref().map(|s| s.staging.clone()),
            output_from: output_from.map(|e| e.0),
            state_dir: options.state_dir.clone(),
            ..template.clone()
        };
        let job_bytes = serde_json::to_vec(&job)
            .map_err(|e| Error::InvalidArgument(format!("the job does not encode: {e}")))?;
        let (outbox, mut commands) = mpsc::unbounded_channel();
        let env = Env::for_coordinator(config.clone(), backend.clone(), ids.len(), outbox)?;
        build_cluster_part(
            query,
            &source,
            options,
            &env,
            output_from,
            &dir,
            staged.as_ref(),
        )?;
        let events = env.event_sender();
        let job_bytes = JobBytes::from(job_bytes);
        for (index, id) in ids.iter().enumerate() {
            members.assign(*id, attempt, index, &peers, generation, job_bytes.clone());
        }
        tracing::info!(
            attempt,
            workers = ids.len(),
            parallelism,
            resume = output_from.map_or(0, |e| e.0),
            "attempt assigned"
        );
        eprintln!(
            "coordinator: attempt {attempt}: {} at parallelism {parallelism} on {} worker(s){}",
            query.name,
            ids.len(),
            output_from.map_or(String::new(), |e| format!(", from checkpoint {}", e.0))
        );
        handle.update(|s| {
            s.workers = ids.len();
            s.parallelism = parallelism;
        });
        if let Some(r) = restarting.take() {
            r.answer(backend.as_ref(), Some(&handle)).await;
        }
        let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel::<()>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = env.execute_with(
            async {
                let _ = cancel_rx.await;
            },
            async {
                if stop_rx.await.is_err() {
                    std::future::pending::<()>().await
                }
            },
        );
        tokio::pin!(run);
        let mut cancel_tx = Some(cancel_tx);
        let mut stop_tx = Some(stop_tx);
        let mut failed: Option<String> = None;
        let mut asked: Option<RescaleRequest> = None;
        let mut grow = false;
        let mut ended: HashSet<u64> = HashSet::new();
        let mut first_commit = true;
        let outcome = loop {
            tokio::select! {
                r = &mut run => break r,
                Some(c) = commands.recv() => {
                    members.broadcast(&ids, attempt, c);
                    if let Command::Committed(e) = c {
                        handle.update(|s| s.committed_epoch = e);
                        failures = 0;
                        if first_commit {
                            first_commit = false;
                            if let Some(t) = lost_at.take() {
                                let ms = t.elapsed().as_millis() as u64;
                                report.recovery_ms.push(ms);
                                eprintln!(
                                    "coordinator: recovered: {ms} ms from the worker's loss \
                                     to checkpoint {} of attempt {attempt}",
                                    e.0
                                );
                            }
                        }
                    }
                }
                m = member_events.recv() => match m {
                    None => return Err(Error::InvalidArgument("the worker service stopped".into())),
                    Some(MemberEvent::Event { attempt: a, event, id }) if a == attempt => {
                        tracing::debug!(worker = id, ?event, "worker event");
                        let _ = events.send(event);
                    }
                    Some(MemberEvent::Left { id, why }) if ids.contains(&id) => {
                        failed.get_or_insert(format!("worker {id} lost: {why}"));
                        if let Some(c) = cancel_tx.take() {
                            let _ = c.send(());
                        }
                    }
                    Some(MemberEvent::Ended { id, ended: e }) if e.attempt == attempt => {
                        report.events += e.events;
                        ended.insert(id);
                        if !e.error.is_empty() {
                            failed.get_or_insert(format!("worker {id} failed: {}", e.error));
                            if let Some(c) = cancel_tx.take() {
                                let _ = c.send(());
                            }
                        }
                    }
                    Some(MemberEvent::Joined(_)) => {
                        // A worker the job would use (it runs on fewer
                        // than its parallelism): spread the job again
                        // over it at a checkpoint taken now.
                        if ids.len() < parallelism.min(members.live().len()) && asked.is_none() {
                            if let Some(s) = stop_tx.take() {
                                grow = true;
                                let _ = s.send(());
                            }
                        }
                    }
                    Some(_) => {}
                },
                r = requests.recv(), if asked.is_none() && !grow && stop_tx.is_some() => {
                    if let Some(r) = r {
                        asked = Some(r);
                        if let Some(s) = stop_tx.take() {
                            let _ = s.send(());
                        }
                    }
                }
            }
        };
        // Commands the run gave as it ended (the final commit) go out too.
        while let Ok(c) = commands.try_recv() {
            members.broadcast(&ids, attempt, c);
        }
        let end = match (outcome, failed) {
            (_, Some(why)) => AttemptEnd::Failed(why),
            (Err(e), None) => AttemptEnd::Failed(format!("the attempt failed: {e}")),
            (Ok(run), None) => {
                report
                    .checkpoint_ms
                    .extend(run.checkpoints.iter().map(|c| c.stats.duration_ms));
                match run.stopped_at {
                    None => AttemptEnd::Finished,
                    Some(meta) => AttemptEnd::Stopped {
                        parallelism: asked.as_ref().map_or(parallelism, |r| r.parallelism),
                        meta,
                        request: asked.take(),
                    },
                }
            }
        };
        if let Some(r) = asked.take() {
            let _ = r.reply.send(Err(Refused::Unavailable(
                "the job failed while it stopped to rescale; ask again".into(),
            )));
        }
        // Every worker of the attempt ends its part before the next one
        // starts (or the results are published).
        if let AttemptEnd::Failed(_) = &end {
            for id in &ids {
                members.abort(*id, attempt);
            }
        }
        drain(
            &members,
            &mut member_events,
            &ids,
            attempt,
            &mut ended,
            &mut report,
            cluster.drain_timeout,
        )
        .await;
        match end {
            AttemptEnd::Finished => {
                if let Some(s) = staged {
                    s.publish()?;
                }
                members.dismiss_all();
                handle.update(|s| {
                    s.phase = JobPhase::Finished;
                    s.committed_epoch = backend.committed_epoch();
                });
                report.committed_epoch = backend.committed_epoch().0;
                if let Some(n) = source.known_len() {
                    report.events = n;
                }
                report.wall_ms = started.elapsed().as_millis() as u64;
                eprintln!(
                    "coordinator: {} finished at checkpoint {} ({} attempts, {} failovers, {} \
                     rescales)",
                    query.name,
                    report.committed_epoch,
                    report.attempts,
                    report.failovers,
                    report.rescales
                );
                return Ok(report);
            }
            AttemptEnd::Stopped {
                meta,
                parallelism: to,
                request,
            } => {
                handle.update(|s| {
                    s.phase = JobPhase::Rescaling;
                    s.committed_epoch = meta.epoch;
                });
                if let Some(request) = request {
                    report.rescales += 1;
                    restarting = Some(Restart {
                        stopped: std::time::Instant::now(),
                        objects: backend.object_stats().await.unwrap_or_default(),
                        report: RescaleReport {
                            checkpoint: meta.epoch,
                            from: parallelism,
                            to,
                            stop_ms: request.at.elapsed().as_millis() as u64,
                            ..Default::default()
                        },
                        reply: request.reply,
                    });
                } else {
                    eprintln!(
                        "coordinator: spreading {} over the workers that joined (checkpoint {})",
                        query.name, meta.epoch.0
                    );
                    handle.update(|s| s.phase = JobPhase::Running);
                }
                parallelism = to;
            }
            AttemptEnd::Failed(why) => {
                failures += 1;
                report.failovers += 1;
                handle.update(|s| s.failovers += 1);
                lost_at.get_or_insert_with(std::time::Instant::now);
                handle.update(|s| s.phase = JobPhase::Rescaling);
                eprintln!("coordinator: attempt {attempt} abandoned: {why}; restarting from the last checkpoint");
                tracing::warn!(attempt, %why, "attempt abandoned");
                if failures > cluster.max_failures {
                    members.dismiss_all();
                    return Err(Error::InvalidArgument(format!(
                        "{} failed {failures} times in a row without a checkpoint; the last: \
                         {why}",
                        query.name
                    )));
                }
                handle.update(|s| s.phase = JobPhase::Running);
            }
        }
    }
}

/// Waits until every live worker of `attempt` has said its part ended (or
/// is gone, or `timeout` passed: a worker that does not answer is treated
/// as gone).
async fn drain(
    members: &Members,
    member_events: &mut mpsc::UnboundedReceiver<MemberEvent>,
    ids: &[u64],
    attempt: u64,
    ended: &mut HashSet<u64>,
    report: &mut ClusterReport,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let live: BTreeMap<u64, ()> = members
            .live()
            .into_iter()
            .map(|(id, _, _)| (id, ()))
            .collect();
        let waiting: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| live.contains_key(id) && !ended.contains(id))
            .collect();
        if waiting.is_empty() {
            return;
        }
        match tokio::time::timeout_at(deadline, member_events.recv()).await {
            Ok(Some(MemberEvent::Ended { id, ended: e })) if e.attempt == attempt => {
                report.events += e.events;
                ended.insert(id);
            }
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(_) => {
                for id in waiting {
                    members.remove(id, format!("its attempt {attempt} did not end in time"));
                }
                return;
            }
        }
    }
}
