//! State for operators: the backend seam and the state built on it: keyed
//! values behind a cache (`keyed`), entries read by prefix (`entries`) and
//! timers (`timers`).

pub mod backend;
pub mod entries;
pub mod keyed;
pub mod remote;
pub mod timers;
pub mod written;

use std::sync::Arc;

use riverbed_state_store::catalog::TableKind;
use riverbed_state_store::TableId;

pub use backend::{EmbeddedBackend, JobState, StateBackend, StateControl};
pub use entries::EntryState;
pub use keyed::KeyedState;
pub use remote::{RemoteBackend, RemoteOptions};
pub use riverbed_state_store::ObjectStats;

use crate::codec::{Codec, Schema};
use crate::runtime::metrics::OperatorCounters;

/// Where one subtask's state lives, for building it.
pub struct SubtaskStateSpec<'a> {
    pub table: TableId,
    pub operator: &'a str,
    pub backend: Arc<dyn StateBackend>,
    pub counters: Arc<OperatorCounters>,
    /// Cache capacity in entries (`JobConfig::state_cache_entries`).
    pub capacity: usize,
    /// The key groups the subtask owns, first and last.
    pub key_groups: (u16, u16),
    /// Nothing of the job is committed: the store holds none of its state.
    pub fresh: bool,
}

/// A kind of operator state, built once per subtask.
pub trait SubtaskState: Sized {
    fn for_subtask(spec: SubtaskStateSpec<'_>) -> Self;
    /// How its table holds a key's state, and the schema of what it holds
    /// (registered for queries).
    fn described() -> (TableKind, Schema);
}

impl<V: Codec + Clone + Send> SubtaskState for KeyedState<V> {
    fn described() -> (TableKind, Schema) {
        (TableKind::Values, V::schema())
    }

    fn for_subtask(s: SubtaskStateSpec<'_>) -> Self {
        let state = KeyedState::new(s.table, s.operator, s.backend, s.counters, s.capacity)
            .owning(s.key_groups, !s.fresh);
        if s.fresh {
            state.started_empty()
        } else {
            state
        }
    }
}

impl<E: Codec + Clone + Send + 'static> SubtaskState for EntryState<E> {
    fn described() -> (TableKind, Schema) {
        (TableKind::Entries, E::schema())
    }

    fn for_subtask(s: SubtaskStateSpec<'_>) -> Self {
        EntryState::new(s.table, s.operator, s.backend, s.counters, s.capacity)
            .owning(s.key_groups, !s.fresh)
    }
}
