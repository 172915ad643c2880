//! Riverbed's compute layer: a typed dataflow API ([`stream`]), stateful
//! operators ([`operators`]) whose state lives in the state store behind a
//! worker-side cache ([`state`]), and a parallel runtime ([`runtime`]) of
//! subtasks that own key-group ranges, exchange batches over bounded
//! channels, and align watermarks and checkpoint barriers ([`env`]).

pub mod changelog;
pub mod checkpoint;
pub mod cluster;
pub mod codec;
pub mod env;
pub mod error;
pub mod operators;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod state;
pub mod stream;
pub mod time;

pub use changelog::{Change, RowKind};
pub use codec::Codec;
pub use env::{Env, JobConfig, JobReport};
pub use error::{Error, Result};
pub use operators::window::{WindowResult, Windows};
pub use operators::Aggregate;
pub use source::{EventTime, IterReader, Position, Source, SourceReader};
pub use state::{EmbeddedBackend, JobState, StateBackend, StateControl};
pub use stream::{DataStream, KeyedStream};
pub use time::{Timestamp, WatermarkStrategy};
