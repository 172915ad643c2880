//! The block cache: decompressed, checked data blocks in memory, on `foyer`,
//! keyed by `(file id, block offset)`. Files are immutable, so an entry is
//! never stale; it is only evicted.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::keys::FileId;
use crate::sst::block::Block;

pub struct BlockCache {
    cache: foyer::Cache<(u64, u64), Block>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Counters a caller can read at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub usage_bytes: u64,
    pub capacity_bytes: u64,
}

impl BlockCache {
    pub fn new(capacity_bytes: usize) -> Self {
        let cache = foyer::CacheBuilder::new(capacity_bytes.max(1))
            .with_weighter(|_k: &(u64, u64), v: &Block| v.size() + 64)
            .build();
        BlockCache {
            cache,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn get(&self, file: FileId, offset: u64) -> Option<Block> {
        match self.cache.get(&(file.0, offset)) {
            Some(entry) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(entry.value().clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn insert(&self, file: FileId, offset: u64, block: Block) {
        self.cache.insert((file.0, offset), block);
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            usage_bytes: self.cache.usage() as u64,
            capacity_bytes: self.cache.capacity() as u64,
        }
    }
}
