//! The store over gRPC (`riverbed-proto`'s `riverbed.store.v1`): the
//! conversions between the engine's types and the wire messages, shared by
//! the server here and the compute layer's client (feature `grpc`), and the
//! server itself (feature `server`).

pub mod client;
#[cfg(feature = "server")]
pub mod config;
pub mod convert;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod json;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
pub mod query;
#[cfg(feature = "server")]
pub mod server;

pub use riverbed_proto::store::v1 as pb;
