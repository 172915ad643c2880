//! A batch of writes applied to one epoch, in order, as one unit.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::keys::{full_key, KeyGroup, TableId, KEY_PREFIX_LEN};

/// Largest key the engine accepts: keys sit uncompressed in the block index.
pub const MAX_KEY_BYTES: usize = 64 << 10;
/// Largest value: it must fit in one data block frame.
pub const MAX_VALUE_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(Bytes, Bytes),
    Delete(Bytes),
    /// Deletes every key in `start..end` (end exclusive).
    DeleteRange(Bytes, Bytes),
}

#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub(crate) ops: Vec<Op>,
    pub(crate) has_range_delete: bool,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        WriteBatch {
            ops: Vec::with_capacity(n),
            has_range_delete: false,
        }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Puts a full key (`table | key_group | user_key`, see `keys.rs`).
    pub fn put(&mut self, key: Bytes, value: Bytes) -> &mut Self {
        self.ops.push(Op::Put(key, value));
        self
    }

    pub fn put_in(
        &mut self,
        table: TableId,
        group: KeyGroup,
        user_key: &[u8],
        value: Bytes,
    ) -> &mut Self {
        self.put(full_key(table, group, user_key), value)
    }

    pub fn delete(&mut self, key: Bytes) -> &mut Self {
        self.ops.push(Op::Delete(key));
        self
    }

    pub fn delete_range(&mut self, start: Bytes, end: Bytes) -> &mut Self {
        self.has_range_delete = true;
        self.ops.push(Op::DeleteRange(start, end));
        self
    }

    /// Rejects the whole batch before any of it is applied.
    pub(crate) fn validate(&self) -> Result<()> {
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::Put(k, v) => {
                    check_key(k, i)?;
                    if v.len() > MAX_VALUE_BYTES {
                        return Err(Error::InvalidArgument(format!(
                            "op {i}: value of {} bytes exceeds the limit of {MAX_VALUE_BYTES}",
                            v.len()
                        )));
                    }
                }
                Op::Delete(k) => check_key(k, i)?,
                Op::DeleteRange(s, e) => {
                    check_key(s, i)?;
                    check_key(e, i)?;
                    if s >= e {
                        return Err(Error::InvalidArgument(format!(
                            "op {i}: empty range: start >= end"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_key(k: &[u8], i: usize) -> Result<()> {
    if k.len() < KEY_PREFIX_LEN {
        return Err(Error::InvalidArgument(format!(
            "op {i}: key of {} bytes is shorter than the {KEY_PREFIX_LEN}-byte table|key_group prefix",
            k.len()
        )));
    }
    if k.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidArgument(format!(
            "op {i}: key of {} bytes exceeds the limit of {MAX_KEY_BYTES}",
            k.len()
        )));
    }
    Ok(())
}
