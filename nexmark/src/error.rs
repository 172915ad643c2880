//! The crate's one error type.
//!
//! Every fallible function of `riverbed-nexmark` returns [`Result`]. The
//! variants say what a caller can act on: a configuration to fix, a line of an
//! event file to look at, or an I/O failure on a named file or stream. Later
//! parts of the crate (queries, the runner) add their own variants here rather
//! than growing a second error type.

use std::io;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the Nexmark crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A [`GeneratorConfig`](crate::GeneratorConfig) value is out of range;
    /// the message names the field and the rule it breaks.
    #[error("invalid Nexmark generator config: {0}")]
    InvalidConfig(String),

    /// An argument is out of range (e.g. a split of a source into zero
    /// subtasks); the message names the argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A line of an event file is not a valid event. `line` is 1-based;
    /// `reason` says what is wrong (malformed JSON, missing field, a number
    /// outside `BIGINT`, bad timestamp, `event_type` not matching the nested
    /// object, a line over the length limit, ...).
    #[error("{}line {line}: {reason}", file_prefix(file))]
    Json {
        /// The file, when the input is one.
        file: Option<PathBuf>,
        /// 1-based line number in the input (in the file, when named).
        line: u64,
        /// What is wrong with the line.
        reason: String,
    },

    /// Reading the input failed while reading the given 1-based line.
    #[error("event file line {line}: read failed: {source}")]
    Read {
        /// 1-based number of the line being read.
        line: u64,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// Writing events to the output failed.
    #[error("writing events failed: {0}")]
    Write(#[source] io::Error),

    /// Opening or creating a named file failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file that could not be opened or created.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// The state directory is held by another run.
    #[error("{}", .0)]
    Busy(String),

    /// The streaming job of a query failed (state store, operator, sink).
    #[error("{0}")]
    Compute(#[from] riverbed_compute::Error),
}

fn file_prefix(file: &Option<PathBuf>) -> String {
    match file {
        Some(f) => format!("{}: ", f.display()),
        None => "event file ".to_string(),
    }
}
