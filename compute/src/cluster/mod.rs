//! What a running job answers from outside its process: the coordinator's
//! service (`proto/riverbed/coordinator/v1/coordinator.proto`).
//!
//! - [`handle`]: the job's side — its status, and the rescale requests it
//!   takes between runs of its plan.
//! - [`service`]: the gRPC server of the handle.
//! - [`client`]: the client `riverbed-nexmark rescale` uses.
//! - [`members`]: the coordinator's side of its worker processes.
//! - [`worker`]: a worker process's side.
//! - [`wire`]: their messages in protobuf.
//! - [`link`]: what the coordinator and its worker processes tell each
//!   other while the job runs.

pub mod client;
pub mod handle;
pub mod link;
pub mod members;
pub mod service;
pub mod wire;
pub mod worker;

pub use handle::{JobHandle, JobPhase, JobStatus, Refused, RescaleReport, RescaleRequest};
