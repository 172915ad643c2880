//! The state store's one error type.
//!
//! `Error` is rich (it names files, offsets and causes); `ErrorKind` is the
//! small set a caller matches on to decide what to do: retry, report
//! corruption, fix its input, or give up on a lost manifest race.

use std::fmt;

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bytes read back do not decode or fail their checksum. Never returned
    /// as data: the read fails and names where the damage is.
    #[error("corrupted data in {file} at offset {offset}: {reason}")]
    Corrupted {
        file: String,
        offset: u64,
        reason: String,
    },
    /// The caller asked for something the engine cannot do as asked.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A write, commit or discard named an epoch that is already sealed or
    /// committed: the request is well formed, the store's state refuses it.
    #[error("wrong epoch: {0}")]
    WrongEpoch(String),
    /// A write tagged with a writer generation the namespace has moved past:
    /// another run of the job took the namespace over (`Store::fence`).
    #[error("fenced: {0}")]
    Fenced(String),
    /// Another writer committed a manifest version first; this writer's view
    /// of the store is stale and it must reopen.
    #[error("manifest version {version} was written by another writer")]
    ManifestConflict { version: u64 },
    /// The object store failed (I/O, network, permissions).
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// The store was closed, or a background task failed and stopped it.
    #[error("store is closed: {0}")]
    Closed(String),
    /// A setting is missing or malformed.
    #[error("configuration: {0}")]
    Config(String),
}

/// What a caller can act on, independent of the details in [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Corrupted,
    InvalidArgument,
    /// The epoch named is sealed or committed ([`Error::WrongEpoch`]).
    WrongEpoch,
    /// The writer was fenced off ([`Error::Fenced`]).
    Fenced,
    Conflict,
    Io,
    Closed,
    Config,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Corrupted { .. } => ErrorKind::Corrupted,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::WrongEpoch(_) => ErrorKind::WrongEpoch,
            Error::Fenced(_) => ErrorKind::Fenced,
            Error::ManifestConflict { .. } => ErrorKind::Conflict,
            Error::ObjectStore(_) => ErrorKind::Io,
            Error::Closed(_) => ErrorKind::Closed,
            Error::Config(_) => ErrorKind::Config,
        }
    }

    /// Names a damaged file by its path under the store's root: inside the
    /// engine paths are relative to the namespace's folder.
    pub(crate) fn in_namespace(self, namespace: &str) -> Self {
        match self {
            Error::Corrupted {
                file,
                offset,
                reason,
            } => Error::Corrupted {
                file: format!("{}/{file}", crate::namespace::root(namespace)),
                offset,
                reason,
            },
            e => e,
        }
    }

    pub(crate) fn corrupted(
        file: impl fmt::Display,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupted {
            file: file.to_string(),
            offset,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
