//! Riverbed's wire protocol: `.proto` files and the tonic/prost code generated
//! from them. The state store service issue adds the first service; until then
//! this crate holds nothing so that the dependency direction
//! `nexmark → compute → state-store → proto` is fixed from the start.
