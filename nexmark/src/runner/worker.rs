//! A worker process's part of a cluster run (`riverbed-nexmark worker`):
//! each assignment the coordinator sends is built into the query's whole
//! plan, from the [`ClusterJob`] it carries, and only this worker's
//! subtasks run (`riverbed_compute::cluster::worker`).

use std::sync::Arc;

use riverbed_compute::cluster::link::WorkerLink;
use riverbed_compute::cluster::worker::{Assignment, Outcome, RunAttempt};
use riverbed_compute::runtime::placement::Placement;
use riverbed_compute::Env;
use riverbed_state_store::Epoch;

use super::cluster::ClusterJob;
use super::{build_cluster_part, connect_remote, output, RemoteState, RunOptions};
use crate::error::{Error, Result};
use crate::queries;

/// Runs the assignments a worker is given.
pub fn attempts() -> RunAttempt {
    Arc::new(|a: Assignment, placement: Placement, link: WorkerLink| {
        Box::pin(async move {
            run_part(a, placement, link)
                .await
                .map_err(|e| e.to_string())
        })
    })
}

async fn run_part(a: Assignment, placement: Placement, link: WorkerLink) -> Result<Outcome> {
    let job: ClusterJob = serde_json::from_slice(&a.job).map_err(|e| {
        Error::InvalidArgument(format!("the coordinator's job does not decode: {e}"))
    })?;
    let query = queries::info(&job.query)
        .ok_or_else(|| Error::InvalidArgument(format!("unknown query {:?}", job.query)))?;
    let mut options = RunOptions::new(&job.state_dir);
    options.parallelism = job.parallelism;
    options.max_parallelism = job.max_parallelism;
    options.state_cache_entries = job.state_cache_entries;
    options.checkpoint_interval = job
        .checkpoint_interval_ms
        .map(std::time::Duration::from_millis);
    let remote = RemoteState {
        addr: job.store.clone(),
        token: job.token.clone(),
        tls: None,
    };
    let mut config = options.job_config()?;
    config.job_name = query.name.to_string();
    let backend = Arc::new(connect_remote(&remote, query.name).await?);
    backend.adopt_generation(a.generation);
    if let Some(e) = job.resume_epoch {
        let all = backend.checkpoints().await.map_err(Error::Compute)?;
        config.resume = Some(all.into_iter().find(|c| c.epoch.0 == e).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "checkpoint {e} of {} is not in the store",
                query.name
            ))
        })?);
    }
    let env = Env::for_worker(config, backend, placement, link)?;
    let staged = job.staging.clone().map(|staging| output::Staged {
        staging,
        target: Default::default(),
    });
    let source = job.source.open()?;
    let dir = job.state_dir.join(query.name);
    build_cluster_part(
        query,
        &source,
        &options,
        &env,
        job.output_from.map(Epoch),
        &dir,
        staged.as_ref(),
    )?;
    tracing::info!(attempt = a.attempt, index = a.index, "running");
    let report = env.execute().await.map_err(Error::Compute)?;
    Ok(Outcome {
        events: report
            .operator(crate::source::SOURCE_NAME)
            .map_or(0, |o| o.records_out),
        state_reads: report.operators.iter().map(|o| o.state_reads).sum(),
        state_writes: report.operators.iter().map(|o| o.state_writes).sum(),
    })
}
