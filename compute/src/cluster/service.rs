//! The coordinator's gRPC service over a [`JobHandle`].

use riverbed_proto::coordinator::v1 as pb;
use tonic::{Request, Response, Status};

use super::handle::{JobHandle, Refused};

pub use pb::coordinator_server::CoordinatorServer;

/// The service of one job.
pub struct CoordinatorService {
    handle: JobHandle,
}

impl CoordinatorService {
    pub fn new(handle: JobHandle) -> CoordinatorServer<CoordinatorService> {
        CoordinatorServer::new(CoordinatorService { handle })
    }
}

#[tonic::async_trait]
impl pb::coordinator_server::Coordinator for CoordinatorService {
    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let s = self.handle.status();
        Ok(Response::new(pb::StatusResponse {
            job: s.job,
            parallelism: s.parallelism as u32,
            max_parallelism: u32::from(s.max_parallelism),
            committed_epoch: s.committed_epoch.0,
            state: s.phase.as_str().into(),
            rescales: s.rescales,
            workers: s.workers as u32,
            failovers: s.failovers,
        }))
    }

    async fn rescale(
        &self,
        req: Request<pb::RescaleRequest>,
    ) -> Result<Response<pb::RescaleResponse>, Status> {
        let p = req.into_inner().parallelism as usize;
        tracing::info!(parallelism = p, "rescale asked for");
        match self.handle.rescale(p).await {
            Ok(r) => Ok(Response::new(pb::RescaleResponse {
                checkpoint: r.checkpoint.0,
                from_parallelism: r.from as u32,
                to_parallelism: r.to as u32,
                stop_ms: r.stop_ms,
                restart_ms: r.restart_ms,
                objects_copied: r.objects_copied,
                bytes_written: r.bytes_written,
                bytes_read: r.bytes_read,
            })),
            Err(Refused::Invalid(why)) => Err(Status::invalid_argument(why)),
            Err(Refused::Unavailable(why)) => Err(Status::failed_precondition(why)),
        }
    }
}

/// Serves `handle` on `listener` until `shutdown` completes, with the
/// `Workers` service of `members` when the job runs on worker processes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: JobHandle,
    members: Option<std::sync::Arc<super::members::Members>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(CoordinatorService::new(handle))
        .add_optional_service(members.map(|m| m.service()))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
