//! Sorted string tables: immutable files of versions sorted by key (and by
//! stamp, newest first), with a block index, a bloom filter, zstd-compressed
//! blocks and a crc32 per block. `format.rs` draws the layout.

pub mod block;
pub mod bloom;
pub mod builder;
pub mod format;
pub mod reader;

pub use builder::{SstBuilder, SstShape};
pub use format::SstProps;
pub use reader::{SstIter, SstReader};
