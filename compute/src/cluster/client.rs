//! A client of a job's coordinator service.

use std::time::Duration;

use riverbed_proto::coordinator::v1 as pb;
use riverbed_state_store::grpc::client::connect_error;
use tonic::transport::Channel;

pub use pb::{RescaleResponse, StatusResponse};

type Client = pb::coordinator_client::CoordinatorClient<Channel>;

/// Connects to the coordinator at `addr` (`HOST:PORT`).
pub async fn connect(addr: &str) -> Result<Client, String> {
    let url = format!("http://{addr}");
    let endpoint = tonic::transport::Endpoint::from_shared(url)
        .map_err(|e| format!("coordinator address {addr:?}: {e}"))?
        .connect_timeout(Duration::from_secs(5));
    let channel = endpoint.connect().await.map_err(|e| {
        format!(
            "connecting to the coordinator at {addr}: {}",
            connect_error(&e)
        )
    })?;
    Ok(Client::new(channel))
}

/// The job's status.
pub async fn status(addr: &str) -> Result<StatusResponse, String> {
    let mut c = connect(addr).await?;
    c.status(pb::StatusRequest {})
        .await
        .map(|r| r.into_inner())
        .map_err(|s| s.message().to_string())
}

/// Rescales the job to `parallelism`; answers once it runs again.
pub async fn rescale(addr: &str, parallelism: u32) -> Result<RescaleResponse, String> {
    let mut c = connect(addr).await?;
    c.rescale(pb::RescaleRequest { parallelism })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| s.message().to_string())
}

/// A worker's client of the coordinator's `Workers` service at `addr`.
pub async fn connect_workers(
    addr: &str,
) -> Result<pb::workers_client::WorkersClient<Channel>, String> {
    let url = format!("http://{addr}");
    let endpoint = tonic::transport::Endpoint::from_shared(url)
        .map_err(|e| format!("coordinator address {addr:?}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.map_err(|e| connect_error(&e))?;
    Ok(pb::workers_client::WorkersClient::new(channel))
}
