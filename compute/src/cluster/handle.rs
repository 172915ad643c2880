//! The job's side of its coordinator service: a status the job keeps up to
//! date, and a queue of rescale requests it serves between runs of its
//! plan (stop at a checkpoint, build the plan again at the new parallelism,
//! resume from the checkpoint).

use std::sync::Arc;

use parking_lot::Mutex;
use riverbed_state_store::Epoch;
use tokio::sync::{mpsc, oneshot};

/// What the job is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobPhase {
    Running,
    Rescaling,
    Finished,
}

impl JobPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            JobPhase::Running => "running",
            JobPhase::Rescaling => "rescaling",
            JobPhase::Finished => "finished",
        }
    }
}

/// The job as its service reports it.
#[derive(Debug, Clone)]
pub struct JobStatus {
    pub job: String,
    pub parallelism: usize,
    pub max_parallelism: u16,
    pub committed_epoch: Epoch,
    pub phase: JobPhase,
    pub rescales: u64,
    /// Worker processes the job's subtasks run on (1: the job's own
    /// process).
    pub workers: usize,
    /// Attempts abandoned because a worker died or failed.
    pub failovers: u64,
}

/// What a rescale did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RescaleReport {
    /// The checkpoint the job stopped at and went on from.
    pub checkpoint: Epoch,
    pub from: usize,
    pub to: usize,
    /// From the request to the stop checkpoint's commit.
    pub stop_ms: u64,
    /// From that commit to the job running again.
    pub restart_ms: u64,
    /// Object-storage traffic between the stop and the new start.
    pub objects_copied: u64,
    pub bytes_written: u64,
    pub bytes_read: u64,
}

/// Why a rescale was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The parallelism asked for is not one the job can take.
    #[error("{0}")]
    Invalid(String),
    /// The job cannot rescale now (it finished, or failed while it did).
    #[error("{0}")]
    Unavailable(String),
}

/// One rescale asked for; the job answers on `reply`.
pub struct RescaleRequest {
    pub parallelism: usize,
    /// When the request arrived (for `stop_ms`).
    pub at: std::time::Instant,
    pub reply: oneshot::Sender<Result<RescaleReport, Refused>>,
}

struct Shared {
    status: Mutex<JobStatus>,
    requests: mpsc::Sender<RescaleRequest>,
}

/// Shared by the job and its service. Cheap to clone.
#[derive(Clone)]
pub struct JobHandle {
    shared: Arc<Shared>,
}

impl JobHandle {
    /// A handle of job `job` and the queue its requests arrive on (one
    /// rescale is served at a time; a few more wait).
    pub fn new(
        job: &str,
        parallelism: usize,
        max_parallelism: u16,
    ) -> (JobHandle, mpsc::Receiver<RescaleRequest>) {
        let (tx, rx) = mpsc::channel(4);
        let status = JobStatus {
            job: job.to_string(),
            parallelism,
            max_parallelism,
            committed_epoch: Epoch(0),
            phase: JobPhase::Running,
            rescales: 0,
            workers: 1,
            failovers: 0,
        };
        (
            JobHandle {
                shared: Arc::new(Shared {
                    status: Mutex::new(status),
                    requests: tx,
                }),
            },
            rx,
        )
    }

    pub fn status(&self) -> JobStatus {
        self.shared.status.lock().clone()
    }

    /// Changes the status (the job calls this as it goes).
    pub fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        f(&mut self.shared.status.lock())
    }

    /// Asks the job to rescale to `parallelism`; answers once it runs
    /// again. A parallelism the job cannot take is refused here, before
    /// the job is stopped.
    pub async fn rescale(&self, parallelism: usize) -> Result<RescaleReport, Refused> {
        let status = self.status();
        // The job's own checks of a parallelism, before it is stopped.
        crate::env::JobConfig {
            parallelism,
            max_parallelism: status.max_parallelism,
            ..Default::default()
        }
        .validate()
        .map_err(|e| Refused::Invalid(format!("job {}: {e}", status.job)))?;
        if status.phase == JobPhase::Finished {
            return Err(Refused::Unavailable(format!(
                "job {} has finished",
                status.job
            )));
        }
        let (reply, answer) = oneshot::channel();
        #[allow(clippy::disallowed_methods)] // a duration, not event time
        let at = std::time::Instant::now();
        self.shared
            .requests
            .try_send(RescaleRequest {
                parallelism,
                at,
                reply,
            })
            .map_err(|e| {
                Refused::Unavailable(match e {
                    mpsc::error::TrySendError::Full(_) => {
                        "too many rescales are waiting; try again when they are done".into()
                    }
                    mpsc::error::TrySendError::Closed(_) => {
                        format!("job {} has finished", status.job)
                    }
                })
            })?;
        answer.await.map_err(|_| {
            Refused::Unavailable(format!("job {} ended before it rescaled", status.job))
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_parallelism_is_refused_before_the_job_hears_of_it() {
        let (h, mut rx) = JobHandle::new("q5", 2, 8);
        assert!(h
            .rescale(0)
            .await
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
        assert!(h
            .rescale(9)
            .await
            .unwrap_err()
            .to_string()
            .contains("max_parallelism 8"));
        assert!(rx.try_recv().is_err());
        h.update(|s| s.phase = JobPhase::Finished);
        assert!(h
            .rescale(4)
            .await
            .unwrap_err()
            .to_string()
            .contains("has finished"));
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_request_reaches_the_job_and_its_answer_comes_back() {
        let (h, mut rx) = JobHandle::new("q5", 2, 8);
        let job = tokio::spawn(async move {
            let r = rx.recv().await.unwrap();
            assert_eq!(r.parallelism, 4);
            let _ = r.reply.send(Ok(RescaleReport {
                checkpoint: Epoch(3),
                from: 2,
                to: 4,
                ..Default::default()
            }));
        });
        let got = h.rescale(4).await.unwrap();
        assert_eq!((got.checkpoint, got.from, got.to), (Epoch(3), 2, 4));
        job.await.unwrap();
    }
}
