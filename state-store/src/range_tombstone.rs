//! Range tombstones: `delete_range(start..end)` as data.
//!
//! A tombstone with stamp `s` hides every version in `[start, end)` whose
//! stamp is older than `s`. Versions written later in the same memtable share
//! the stamp and stay visible, because the memtable removed the older ones
//! it held when the tombstone arrived. Uncommitted tombstones live in the
//! store's pending list (lost with their epoch); committed ones in the
//! version and the manifest, until compaction has applied them to every file
//! that could hold an older covered version.

use bytes::Bytes;

use crate::keys::{Epoch, Stamp};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeTombstone {
    pub start: Bytes,
    pub end: Bytes,
    pub stamp: Stamp,
}

impl RangeTombstone {
    #[inline]
    pub fn contains(&self, key: &[u8]) -> bool {
        &self.start[..] <= key && key < &self.end[..]
    }

    /// Does this tombstone, seen by a reader at `read_epoch`, hide a version
    /// of `key` stamped `stamp`?
    #[inline]
    pub fn hides(&self, key: &[u8], stamp: Stamp, read_epoch: Epoch) -> bool {
        self.stamp.epoch <= read_epoch && stamp < self.stamp && self.contains(key)
    }

    /// Does `[start, end)` intersect the closed key range `[smallest, largest]`?
    pub fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        &self.start[..] <= largest && smallest < &self.end[..]
    }
}

/// True if any tombstone in `set` hides the version.
#[inline]
pub fn hidden(set: &[RangeTombstone], key: &[u8], stamp: Stamp, read_epoch: Epoch) -> bool {
    set.iter().any(|t| t.hides(key, stamp, read_epoch))
}
