//! Checkpoints of a running job: the coordinator ([`coordinator`]), a pure
//! state machine that decides when barriers are injected and which epochs
//! are committed, and what the runtime hands it.
//!
//! A checkpoint costs the workers nothing but shipping what their caches
//! still hold dirty: the store already has every file, so a checkpoint is
//! the commit of an epoch (a manifest version) with the sources' positions
//! in its metadata. Recovery opens the last one and seeks the sources.

pub mod coordinator;

pub use coordinator::{Action, Coordinator, Event, Settings};
