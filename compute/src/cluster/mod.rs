//! What a running job answers from outside its process: the coordinator's
//! service (`proto/riverbed/coordinator/v1/coordinator.proto`).
//!
//! - [`handle`]: the job's side — its status, and the rescale requests it
//!   takes between runs of its plan.
//! - [`service`]: the gRPC server of the handle.
//! - [`client`]: the client `riverbed-nexmark rescale` uses.

pub mod client;
pub mod handle;
pub mod service;

pub use handle::{JobHandle, JobPhase, JobStatus, Refused, RescaleReport, RescaleRequest};
