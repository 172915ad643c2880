//! State for operators: the backend seam and the keyed, cached state built on it.

pub mod backend;
pub mod keyed;
pub mod timers;
pub mod written;

pub use backend::{EmbeddedBackend, StateBackend};
pub use keyed::KeyedState;
