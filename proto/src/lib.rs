//! Riverbed's wire protocol: the `.proto` files under `proto/` and the
//! tonic/prost code built from them. The dependency direction is
//! `nexmark → compute → state-store → proto`.

/// The state store service (`riverbed.store.v1`): see
/// `proto/riverbed/store/v1/store.proto`.
pub mod store {
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("riverbed.store.v1");
    }
}

/// The job coordinator's service (`riverbed.coordinator.v1`): see
/// `proto/riverbed/coordinator/v1/coordinator.proto`.
pub mod coordinator {
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("riverbed.coordinator.v1");
    }
}
