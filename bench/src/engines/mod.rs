//! The key-value stores compared, behind one trait (as TiKV's engine_traits
//! hide an engine), so every workload runs the same code on each.
//!
//! Every engine runs with the same [`Budget`] (cache, write buffers, bloom
//! bits, block size, compression, background threads), states the settings
//! that budget gives it, and names what still differs and why; the report
//! prints them side by side. RocksDB and SlateDB are compiled only with the
//! cargo features `rocksdb` and `slatedb`.

use std::path::Path;

use anyhow::Result;
use bytes::Bytes;
use serde::Serialize;

pub use budget::{Budget, SETTING_ROWS};

pub mod budget;
pub mod riverbed;
#[cfg(feature = "rocksdb")]
pub mod rocks;
#[cfg(feature = "slatedb")]
pub mod slate;

/// A store under test. Writes come in batches; `settle` makes everything
/// written durable and waits for the background work it caused.
#[allow(async_fn_in_trait)] // used through generics only, on one thread
pub trait Engine: Sized {
    /// Opens a fresh store in the empty directory `dir`, within `budget`.
    async fn open(dir: &Path, budget: &Budget) -> Result<Self>;
    /// Writes one batch of puts atomically.
    async fn put_batch(&mut self, batch: &[(Bytes, Bytes)]) -> Result<()>;
    /// Deletes every key in `[start, end)`.
    async fn delete_range(&mut self, start: &Bytes, end: &Bytes) -> Result<()>;
    async fn get(&mut self, key: &[u8]) -> Result<Option<Bytes>>;
    /// Reads up to `limit` entries from `start` on; returns how many.
    async fn scan(&mut self, start: &[u8], limit: usize) -> Result<usize>;
    /// Makes every write durable and waits until flushes and compactions
    /// that follow from them are done (as far as the engine lets us wait).
    async fn settle(&mut self) -> Result<()>;
    /// A checkpoint of the current state (including unsettled writes).
    async fn checkpoint(&mut self, dir: &Path) -> Result<()>;
    async fn close(self) -> Result<()>;
}

/// What the report says about an engine.
#[derive(Clone, Debug, Serialize)]
pub struct EngineInfo {
    pub name: &'static str,
    pub version: &'static str,
    /// What the engine runs with, one value per row of [`SETTING_ROWS`].
    pub settings: Vec<String>,
    /// What the budget could not make equal, each with its reason.
    pub differences: Vec<String>,
    /// How each workload maps onto the engine, where it is not obvious.
    pub notes: Vec<String>,
}

/// Every engine compiled into this build, ours first, with the settings
/// `budget` gives each.
pub fn compiled(budget: &Budget) -> Vec<EngineInfo> {
    #[allow(unused_mut)]
    let mut v = vec![riverbed::info(budget)];
    #[cfg(feature = "rocksdb")]
    v.push(rocks::info(budget));
    #[cfg(feature = "slatedb")]
    v.push(slate::info(budget));
    v
}

/// Names of engines this build could not compare, with the reason.
#[allow(clippy::vec_init_then_push)] // each push depends on a feature
pub fn missing() -> Vec<(&'static str, &'static str)> {
    #[allow(unused_mut)]
    let mut v = Vec::new();
    #[cfg(not(feature = "rocksdb"))]
    v.push((
        "RocksDB",
        "not compiled in: build with `--features rocksdb` (needs clang/libclang)",
    ));
    #[cfg(not(feature = "slatedb"))]
    v.push((
        "SlateDB",
        "not compiled in: build with `--features slatedb`",
    ));
    v
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
