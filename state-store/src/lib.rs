//! Riverbed's state store engine: an LSM tree whose files and manifest live
//! on object storage, versioned by epochs.
//!
//! - Writes go to per-epoch memtables ([`memtable`]), are flushed to SSTs
//!   ([`sst`]) in the background, and become durable when their epoch is
//!   committed ([`Store::commit`]), which writes a manifest version
//!   ([`manifest`]) by compare-and-swap. There is no WAL: an uncommitted
//!   epoch is rebuilt by the caller (sources replay), or discarded.
//! - Reads name an epoch and see the newest version at or below it, merged
//!   across memtables and levels ([`read`](Store::get), [`merge`]), with
//!   point and range tombstones ([`range_tombstone`]).
//! - Writes slow down before they stop when compaction falls behind
//!   ([`write_pace`]).
//! - Compaction ([`compaction`]) is leveled; files leave object storage only
//!   when no version and no reader needs them ([`version`]).
//! - Blocks are cached in memory on `foyer` ([`cache`]).
//!
//! Keys are `table | key_group | user_key` ([`keys`]); tables are
//! registered by name ([`catalog`]) in a namespace ([`namespace`]), one per
//! job sharing the store.

pub mod cache;
pub mod catalog;
pub mod checkpoint;
pub mod compaction;
pub mod counted;
pub mod entry;
pub mod error;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod keys;
pub mod manifest;
pub mod memtable;
pub mod merge;
pub mod metrics;
pub mod namespace;
pub mod options;
pub mod paths;
pub mod range_tombstone;
mod read;
pub mod savepoint;
pub mod schema;
pub mod sst;
pub mod storage;
pub mod store;
#[cfg(test)]
mod test_rng;
pub mod varint;
pub mod version;
pub mod write_batch;
pub mod write_pace;

pub use checkpoint::{CheckpointMeta, CheckpointStats, SourcePositions};
pub use error::{Error, ErrorKind, Result};
pub use keys::{full_key, Epoch, FileId, KeyGroup, Stamp, TableId};
pub use metrics::{MetricsSnapshot, ObjectStats};
pub use options::{Options, S3Options};
pub use savepoint::SavepointInfo;
pub use store::Store;
pub use write_batch::{Op, WriteBatch};
