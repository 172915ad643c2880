//! Helpers shared by the crate's integration tests.
//!
//! Every test binary that says `mod common;` compiles this whole module but
//! may use only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod reference;
