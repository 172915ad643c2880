//! The compute layer's one error type.

/// Everything that can stop a job.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job graph is not runnable; found before anything runs.
    #[error("invalid job: {0}")]
    InvalidJob(String),
    /// A job setting is out of range; `field` is its name in `JobConfig`.
    #[error("{reason}")]
    InvalidConfig { field: &'static str, reason: String },
    /// The state store failed.
    #[error("state: {0}")]
    State(#[from] riverbed_state_store::Error),
    /// State bytes that do not decode as the operator's type.
    #[error("state of operator {operator} does not decode: {reason}")]
    StateDecode { operator: String, reason: String },
    /// A subtask panicked or the runtime failed.
    #[error("runtime: {0}")]
    Runtime(String),
    /// A sink or source failed on I/O.
    #[error("i/o in {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A source could not read its input (a malformed record, a position
    /// it did not report, an unreadable file); the message says where.
    #[error("{0}")]
    Source(String),
    /// An input channel closed without the end of its stream: the subtask
    /// upstream failed or was cancelled (its own error is the cause).
    #[error("runtime: an upstream subtask stopped without ending its stream")]
    UpstreamStopped,
    /// An output channel closed: the subtask downstream failed or was
    /// cancelled (its own error is the cause).
    #[error("runtime: a downstream subtask stopped early")]
    DownstreamStopped,
    /// The job was cancelled.
    #[error("job cancelled")]
    Cancelled,
}

impl Error {
    /// Whether this error only reports another subtask's failure (a channel
    /// that closed under it), not a cause.
    pub fn is_consequence(&self) -> bool {
        matches!(self, Error::UpstreamStopped | Error::DownstreamStopped)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
