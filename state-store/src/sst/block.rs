//! Data blocks: sorted entries with prefix-compressed keys and restart points.
//!
//! ```text
//! uncompressed block:
//! +---------+---------+-----+-----------------+------------------+
//! | entry 0 | entry 1 | ... | restart u32 LE* | num_restarts u32 |
//! +---------+---------+-----+-----------------+------------------+
//! entry:
//! | shared varint | unshared varint | kind u8 (0 put, 1 delete) | epoch varint
//! | seq varint | value_len varint (put only) | key suffix | value |
//! ```
//! `shared` is the length of the prefix this key shares with the previous
//! key; it is 0 at every restart point (each `restart_interval`-th entry),
//! whose offsets the trailer lists so a seek can binary-search them.
//! Entries sort by key ascending, then by stamp descending (newest first).
//!
//! On storage a block is framed by [`super::frame`] (codec byte and crc32).

use bytes::{BufMut, Bytes};

use crate::entry::{Entry, Value};
use crate::keys::{Epoch, Stamp};
use crate::varint::{get_uvarint, put_uvarint, take};

const KIND_PUT: u8 = 0;
const KIND_DELETE: u8 = 1;

/// Accumulates entries into one uncompressed block.
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    last_key: Vec<u8>,
    count: usize,
    restart_interval: usize,
}

impl BlockBuilder {
    pub fn new(capacity: usize, restart_interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::with_capacity(capacity + 1024),
            restarts: Vec::new(),
            last_key: Vec::new(),
            count: 0,
            restart_interval,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size the block will have once finished.
    pub fn size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    pub fn add(&mut self, key: &[u8], stamp: Stamp, value: Option<&[u8]>) {
        let shared = if self.count.is_multiple_of(self.restart_interval) {
            self.restarts.push(self.buf.len() as u32);
            0
        } else {
            common_prefix(&self.last_key, key)
        };
        put_uvarint(&mut self.buf, shared as u64);
        put_uvarint(&mut self.buf, (key.len() - shared) as u64);
        self.buf.put_u8(if value.is_some() {
            KIND_PUT
        } else {
            KIND_DELETE
        });
        put_uvarint(&mut self.buf, stamp.epoch.0);
        put_uvarint(&mut self.buf, stamp.seq);
        if let Some(v) = value {
            put_uvarint(&mut self.buf, v.len() as u64);
        }
        self.buf.extend_from_slice(&key[shared..]);
        if let Some(v) = value {
            self.buf.extend_from_slice(v);
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.count += 1;
    }

    /// Appends the restart trailer and returns the block bytes; the builder
    /// is empty again afterwards.
    pub fn finish(&mut self) -> Vec<u8> {
        for r in &self.restarts {
            self.buf.put_u32_le(*r);
        }
        self.buf.put_u32_le(self.restarts.len() as u32);
        self.restarts.clear();
        self.count = 0;
        std::mem::take(&mut self.buf)
    }
}

#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A decoded (decompressed, checked) block, cheap to clone.
#[derive(Clone, Debug)]
pub struct Block {
    data: Bytes,
    /// Offset where the restart array starts (= end of entries).
    entries_end: usize,
    num_restarts: usize,
}

impl Block {
    /// Validates the trailer; `Err(reason)` if it cannot be a block.
    pub fn decode(data: Bytes) -> Result<Block, &'static str> {
        if data.len() < 4 {
            return Err("block shorter than its trailer");
        }
        let n = u32::from_le_bytes(data[data.len() - 4..].try_into().expect("4 bytes")) as usize;
        let trailer = n
            .checked_mul(4)
            .and_then(|t| t.checked_add(4))
            .ok_or("restart count overflows")?;
        if n == 0 || trailer > data.len() {
            return Err("bad restart count");
        }
        let entries_end = data.len() - trailer;
        let block = Block {
            data,
            entries_end,
            num_restarts: n,
        };
        for i in 0..n {
            if block.restart(i) >= entries_end {
                return Err("restart offset past entries");
            }
        }
        Ok(block)
    }

    /// Bytes held, for cache accounting.
    pub fn size(&self) -> usize {
        self.data.len()
    }

    fn restart(&self, i: usize) -> usize {
        let at = self.entries_end + 4 * i;
        u32::from_le_bytes(self.data[at..at + 4].try_into().expect("4 bytes")) as usize
    }
}

/// A cursor over one block. Decoding errors carry the offset inside the
/// block; the caller adds the file and the block's position.
pub struct BlockIter {
    block: Block,
    /// Offset of the next entry to decode.
    next: usize,
    key: Vec<u8>,
    stamp: Stamp,
    value: Option<(usize, usize)>,
    valid: bool,
}

/// A decoding failure at an offset inside a block.
#[derive(Debug)]
pub struct BlockError {
    pub offset: usize,
    pub reason: &'static str,
}

impl BlockIter {
    pub fn new(block: Block) -> Self {
        BlockIter {
            block,
            next: 0,
            key: Vec::new(),
            stamp: Stamp::default(),
            value: None,
            valid: false,
        }
    }

    pub fn valid(&self) -> bool {
        self.valid
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }

    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// The current value without copying: `None` for a tombstone.
    pub fn value_slice(&self) -> Option<&[u8]> {
        self.value.map(|(s, e)| &self.block.data[s..e])
    }

    pub fn value(&self) -> Value {
        match self.value {
            Some((s, e)) => Value::Put(self.block.data.slice(s..e)),
            None => Value::Delete,
        }
    }

    pub fn entry(&self) -> Entry {
        Entry {
            key: Bytes::copy_from_slice(&self.key),
            stamp: self.stamp,
            value: self.value(),
        }
    }

    pub fn seek_to_first(&mut self) -> Result<(), BlockError> {
        self.next = 0;
        self.key.clear();
        self.advance()
    }

    /// Moves to the first entry whose key is `>= target`.
    pub fn seek(&mut self, target: &[u8]) -> Result<(), BlockError> {
        // Binary search for the last restart whose key is < target.
        let (mut lo, mut hi) = (0usize, self.block.num_restarts);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            let key = self.restart_key(mid)?;
            if key < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        self.next = self.block.restart(lo);
        self.key.clear();
        self.advance()?;
        while self.valid && self.key.as_slice() < target {
            self.advance()?;
        }
        Ok(())
    }

    fn restart_key(&self, i: usize) -> Result<&[u8], BlockError> {
        let off = self.block.restart(i);
        let mut input = &self.block.data[off..self.block.entries_end];
        let err = |reason| BlockError {
            offset: off,
            reason,
        };
        let shared = get_uvarint(&mut input).ok_or(err("truncated entry header"))?;
        let unshared = get_uvarint(&mut input).ok_or(err("truncated entry header"))? as usize;
        if shared != 0 {
            return Err(err("restart entry shares a prefix"));
        }
        let kind = *take(&mut input, 1)
            .ok_or(err("truncated entry header"))?
            .first()
            .ok_or(err("kind"))?;
        get_uvarint(&mut input).ok_or(err("truncated epoch"))?;
        get_uvarint(&mut input).ok_or(err("truncated seq"))?;
        if kind == KIND_PUT {
            get_uvarint(&mut input).ok_or(err("truncated value length"))?;
        }
        take(&mut input, unshared).ok_or(err("key runs past block"))
    }

    /// Decodes the entry at `self.next`; at the end, `valid` becomes false.
    pub fn advance(&mut self) -> Result<(), BlockError> {
        let start = self.next;
        if start >= self.block.entries_end {
            self.valid = false;
            return Ok(());
        }
        let data = &self.block.data[..self.block.entries_end];
        let mut input = &data[start..];
        let err = |reason| BlockError {
            offset: start,
            reason,
        };
        let shared = get_uvarint(&mut input).ok_or(err("truncated entry header"))? as usize;
        let unshared = get_uvarint(&mut input).ok_or(err("truncated entry header"))? as usize;
        let (&kind, rest) = input.split_first().ok_or(err("truncated entry header"))?;
        input = rest;
        let epoch = get_uvarint(&mut input).ok_or(err("truncated epoch"))?;
        let seq = get_uvarint(&mut input).ok_or(err("truncated seq"))?;
        let value_len = match kind {
            KIND_PUT => {
                Some(get_uvarint(&mut input).ok_or(err("truncated value length"))? as usize)
            }
            KIND_DELETE => None,
            _ => return Err(err("unknown entry kind")),
        };
        if shared > self.key.len() {
            return Err(err("shared prefix longer than previous key"));
        }
        let suffix = take(&mut input, unshared).ok_or(err("key runs past block"))?;
        self.key.truncate(shared);
        self.key.extend_from_slice(suffix);
        let value_start = data.len() - input.len();
        self.value = match value_len {
            Some(n) => {
                take(&mut input, n).ok_or(err("value runs past block"))?;
                Some((value_start, value_start + n))
            }
            None => None,
        };
        self.stamp = Stamp {
            epoch: Epoch(epoch),
            seq,
        };
        self.next = data.len() - input.len();
        self.valid = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(e: u64) -> Stamp {
        Stamp {
            epoch: Epoch(e),
            seq: 0,
        }
    }

    fn build(n: usize) -> Block {
        let mut b = BlockBuilder::new(4096, 4);
        for i in 0..n {
            let key = format!("key{:04}", i * 2);
            if i % 5 == 0 {
                b.add(key.as_bytes(), stamp(i as u64), None);
            } else {
                b.add(
                    key.as_bytes(),
                    stamp(i as u64),
                    Some(format!("v{i}").as_bytes()),
                );
            }
        }
        Block::decode(b.finish().into()).unwrap()
    }

    #[test]
    fn iterates_and_seeks() {
        let block = build(50);
        let mut it = BlockIter::new(block.clone());
        it.seek_to_first().unwrap();
        let mut n = 0;
        while it.valid() {
            assert_eq!(it.key(), format!("key{:04}", n * 2).as_bytes());
            assert_eq!(it.stamp(), stamp(n as u64));
            assert_eq!(it.value_slice().is_none(), n % 5 == 0);
            it.advance().unwrap();
            n += 1;
        }
        assert_eq!(n, 50);
        it.seek(b"key0031").unwrap();
        assert_eq!(it.key(), b"key0032");
        it.seek(b"key0000").unwrap();
        assert_eq!(it.key(), b"key0000");
        it.seek(b"zzz").unwrap();
        assert!(!it.valid());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = {
            let mut b = BlockBuilder::new(256, 2);
            for i in 0..10u8 {
                b.add(&[b'k', i], stamp(1), Some(&[i; 3]));
            }
            b.finish()
        };
        for pos in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[pos] ^= flip;
                if let Ok(block) = Block::decode(bad.into()) {
                    let mut it = BlockIter::new(block);
                    let _ = it.seek(&[b'k', 5]);
                    if it.seek_to_first().is_ok() {
                        while it.valid() {
                            if it.advance().is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
}
