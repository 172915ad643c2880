//! The parallel runtime: messages, the pull chain, exchanges between
//! subtasks, and per-operator counters.

pub mod exchange;
pub mod message;
pub mod metrics;
pub mod pull;
