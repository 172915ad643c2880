//! A batch of writes applied to one epoch, in order, as one unit.
//!
//! Layout: the keys and values of every op back to back in one buffer, and
//! per op its kind, where its bytes start and the lengths of its two parts
//! (key and value, key alone, or range start and end). A writer of many
//! small entries, such as a worker writing its cache back, makes a few
//! allocations per batch instead of two per entry.

use crate::error::{Error, Result};
use crate::keys::{full_key, KeyGroup, TableId, KEY_PREFIX_LEN};

/// Largest key the engine accepts: keys sit uncompressed in the block index.
pub const MAX_KEY_BYTES: usize = 64 << 10;
/// Largest value: it must fit in one data block frame.
pub const MAX_VALUE_BYTES: usize = 64 << 20;
/// Largest batch (keys and values together): the memtable addresses a
/// batch's bytes with 32-bit offsets.
pub const MAX_BATCH_BYTES: usize = u32::MAX as usize;

/// One op of a batch, borrowing the batch's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    Put(&'a [u8], &'a [u8]),
    Delete(&'a [u8]),
    /// Deletes every key in `start..end` (end exclusive).
    DeleteRange(&'a [u8], &'a [u8]),
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Put,
    Delete,
    DeleteRange,
}

/// Where an op's bytes sit in the batch buffer: `first` bytes from `at`
/// (the key, or the range start), then `second` (the value, or the end).
#[derive(Debug, Clone, Copy)]
struct OpRef {
    kind: Kind,
    at: usize,
    first: usize,
    second: usize,
}

#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    data: Vec<u8>,
    ops: Vec<OpRef>,
    pub(crate) has_range_delete: bool,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// A batch with room for `n` ops (and their bytes, guessed).
    pub fn with_capacity(n: usize) -> Self {
        WriteBatch {
            data: Vec::with_capacity(n * 32),
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

    /// The `i`-th op.
    #[inline]
    pub fn op(&self, i: usize) -> Op<'_> {
        let r = self.ops[i];
        let first = &self.data[r.at..r.at + r.first];
        let second = &self.data[r.at + r.first..r.at + r.first + r.second];
        match r.kind {
            Kind::Put => Op::Put(first, second),
            Kind::Delete => Op::Delete(first),
            Kind::DeleteRange => Op::DeleteRange(first, second),
        }
    }

    /// The bytes of every op, back to back.
    pub(crate) fn data(&self) -> &[u8] {
        &self.data
    }

    /// The `i`-th op and where its bytes start in [`data`](Self::data).
    #[inline]
    pub(crate) fn op_at(&self, i: usize) -> (Op<'_>, usize) {
        (self.op(i), self.ops[i].at)
    }

    /// The ops in the order they apply.
    pub fn ops(&self) -> impl ExactSizeIterator<Item = Op<'_>> + '_ {
        (0..self.ops.len()).map(|i| self.op(i))
    }

    fn push(&mut self, kind: Kind, first: &[u8], second: &[u8]) {
        let at = self.data.len();
        self.data.extend_from_slice(first);
        self.data.extend_from_slice(second);
        self.ops.push(OpRef {
            kind,
            at,
            first: first.len(),
            second: second.len(),
        });
    }

    /// Puts a full key (`table | key_group | user_key`, see `keys.rs`).
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.push(Kind::Put, key.as_ref(), value.as_ref());
        self
    }

    /// Puts a full key whose value `encode` appends to the buffer it is
    /// given: values are encoded in place, without a buffer of their own.
    pub fn put_with(&mut self, key: &[u8], encode: impl FnOnce(&mut Vec<u8>)) -> &mut Self {
        let at = self.data.len();
        self.data.extend_from_slice(key);
        encode(&mut self.data);
        self.ops.push(OpRef {
            kind: Kind::Put,
            at,
            first: key.len(),
            second: self.data.len() - at - key.len(),
        });
        self
    }

    pub fn put_in(
        &mut self,
        table: TableId,
        group: KeyGroup,
        user_key: &[u8],
        value: impl AsRef<[u8]>,
    ) -> &mut Self {
        self.put(full_key(table, group, user_key), value)
    }

    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.push(Kind::Delete, key.as_ref(), &[]);
        self
    }

    pub fn delete_range(&mut self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> &mut Self {
        self.has_range_delete = true;
        self.push(Kind::DeleteRange, start.as_ref(), end.as_ref());
        self
    }

    /// Rejects the whole batch before any of it is applied.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.data.len() > MAX_BATCH_BYTES {
            return Err(Error::InvalidArgument(format!(
                "batch of {} bytes exceeds the limit of {MAX_BATCH_BYTES}: split it",
                self.data.len()
            )));
        }
        for (i, op) in self.ops().enumerate() {
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
