//! The parallel runtime: messages, the pull chain, exchanges between
//! subtasks (in-process channels, and edges over TCP for subtasks on other
//! workers), which subtasks a process runs (`placement`), a worker's lease
//! on writing output, and per-operator counters.

pub mod exchange;
pub mod lease;
pub mod message;
pub mod metrics;
pub mod net_exchange;
pub mod placement;
pub mod pull;

/// One task of a running job: a subtask's loop, an exchange sender, an
/// edge to or from another worker.
pub(crate) type Task = futures::future::BoxFuture<'static, crate::error::Result<()>>;
