//! The parallel runtime: messages, the pull chain, exchanges between
//! subtasks (in-process channels, and one edge over TCP for subtasks on
//! other workers), and per-operator counters.

pub mod exchange;
pub mod message;
pub mod metrics;
pub mod net_exchange;
pub mod placement;
pub mod pull;
