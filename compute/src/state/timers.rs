//! Timers of a keyed operator, kept in a table of their own so that a job
//! restored from a checkpoint fires the timers it had set (Flink keeps its
//! timers in the state backend for the same reason).
//!
//! Timers live in memory as before; every timer set or cleared since the
//! last barrier is also written to the timer table with the epoch's other
//! writes, so the table as of a checkpoint holds exactly the timers pending
//! then. A restored subtask reads back the timers of the key groups it owns.
//!
//! # Key and value
//!
//! ```text
//! key   := timer table u32 BE | key group u16 BE | timestamp i64 (sign bit
//!          flipped, BE: sorts by time) | kind u8 | the state key it belongs to
//! value := the key (its Codec encoding)
//! ```

use bytes::Bytes;
use riverbed_state_store::keys::{key_prefix, KEY_PREFIX_LEN};
use riverbed_state_store::{Epoch, KeyGroup, TableId, WriteBatch};

use super::backend::StateBackend;
use crate::error::{Error, Result};
use crate::time::Timestamp;

/// The timer writes of one operator subtask.
pub struct TimerTable {
    table: TableId,
    pending: WriteBatch,
}

/// A timer read back: `(time, kind, state key, encoded key)`.
pub type StoredTimer = (Timestamp, u8, Bytes, Bytes);

impl TimerTable {
    pub fn new(table: TableId) -> Self {
        TimerTable {
            table,
            pending: WriteBatch::new(),
        }
    }

    pub fn table(&self) -> TableId {
        self.table
    }

    fn key(&self, time: Timestamp, kind: u8, state_key: &[u8]) -> Vec<u8> {
        // The timer's key group is its state key's.
        let kg = state_key
            .get(4..KEY_PREFIX_LEN)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        let mut k = Vec::with_capacity(KEY_PREFIX_LEN + 9 + state_key.len());
        k.extend_from_slice(&key_prefix(self.table, KeyGroup(kg)));
        k.extend_from_slice(&((time as u64) ^ (1 << 63)).to_be_bytes());
        k.push(kind);
        k.extend_from_slice(state_key);
        k
    }

    /// Timer `(time, kind)` of `state_key` is set; `key` is its encoded key.
    pub fn set(&mut self, time: Timestamp, kind: u8, state_key: &[u8], key: &[u8]) {
        let k = self.key(time, kind, state_key);
        self.pending.put(k, key);
    }

    /// Timer `(time, kind)` of `state_key` fired or was dropped.
    pub fn clear(&mut self, time: Timestamp, kind: u8, state_key: &[u8]) {
        let k = self.key(time, kind, state_key);
        self.pending.delete(k);
    }

    /// Writes what changed into `epoch` (at its barrier).
    pub async fn flush(&mut self, backend: &dyn StateBackend, epoch: Epoch) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        backend.write(epoch, &batch).await
    }

    /// Every timer of key groups `lo..=hi` as of `epoch`.
    pub async fn load(
        &self,
        backend: &dyn StateBackend,
        (lo, hi): (u16, u16),
        epoch: Epoch,
    ) -> Result<Vec<StoredTimer>> {
        let (start, end) = super::keyed::owned_range(self.table, (lo, hi));
        let bad = || Error::StateDecode {
            operator: "timers".into(),
            reason: "a timer key shorter than its layout".into(),
        };
        let mut out = Vec::new();
        for (k, v) in backend.scan(&start, &end, epoch).await? {
            let rest = k.get(KEY_PREFIX_LEN..).ok_or_else(bad)?;
            if rest.len() < 9 {
                return Err(bad());
            }
            let time =
                (u64::from_be_bytes(rest[..8].try_into().expect("8 bytes")) ^ (1 << 63)) as i64;
            let kind = rest[8];
            let state_key = k.slice(KEY_PREFIX_LEN + 9..);
            out.push((time, kind, state_key, v));
        }
        Ok(out)
    }
}
