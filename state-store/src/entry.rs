//! One version of one key, as it moves between memtables, SSTs, merges and
//! compaction.

use bytes::Bytes;

use crate::keys::Stamp;

/// What a version says about its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Put(Bytes),
    /// A point tombstone: the key has no value as of this version.
    Delete,
}

impl Value {
    /// Bytes this value adds to a memtable, for accounting.
    pub fn size(&self) -> usize {
        match self {
            Value::Put(v) => v.len(),
            Value::Delete => 0,
        }
    }
}

/// A key, the stamp of this version, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Bytes,
    pub stamp: Stamp,
    pub value: Value,
}
