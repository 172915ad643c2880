//! Checkpoints: a committed epoch together with what a job needs to resume
//! from it. A checkpoint is nothing but a manifest version's committed
//! epoch plus this metadata, so taking one writes no data beyond the files
//! flushed since the last one, and consecutive checkpoints share files.
//!
//! The store keeps the metadata of the last `Options::retained_checkpoints`
//! checkpoints in the manifest, newest last. It does not interpret source
//! positions: each is opaque bytes that the source encoded.
//!
//! # Encoding (inside the manifest body, see `manifest.rs`)
//!
//! ```text
//! checkpoint := epoch varint | job (len ‖ utf-8) | wall_time_ms varint
//!             | watermark (zigzag varint) | finished u8 (0 or 1)
//!             | source count varint
//!             | per source: name (len ‖ utf-8) | subtask count varint
//!             |     | per subtask: position (len ‖ bytes)
//!             | stats | parallelism varint (manifest format 5 on)
//! stats      := duration_ms varint | commit_ms varint | dirty_bytes varint
//!             | bytes_written varint | files_added varint
//!             | operator count varint | per operator: name (len ‖ utf-8)
//!             |     | alignment_ms varint
//! ```

use crate::keys::Epoch;
use crate::varint::{get_bytes, get_uvarint, put_bytes, put_uvarint};

/// The positions of one source's subtasks at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourcePositions {
    /// The source operator's name in its job.
    pub source: String,
    /// Position of subtask `i` at index `i` (opaque, the source's encoding).
    pub subtasks: Vec<Vec<u8>>,
}

/// What one checkpoint cost.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointStats {
    /// From the barrier's injection to the commit's end, in ms.
    pub duration_ms: u64,
    /// The store's part: flushing the epoch's memtables and writing the
    /// manifest, in ms.
    pub commit_ms: u64,
    /// Bytes of writes the epoch held in memory when it was committed.
    pub dirty_bytes: u64,
    /// Bytes of files this checkpoint added (flushed since the previous).
    pub bytes_written: u64,
    /// Files this checkpoint added.
    pub files_added: u64,
    /// Per operator: how long its barrier waited for the slowest input.
    pub alignment_ms: Vec<(String, u64)>,
}

/// A retained checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointMeta {
    /// The committed epoch: reads at it see exactly this checkpoint's state.
    pub epoch: Epoch,
    /// The job that took it.
    pub job: String,
    /// Wall time when it completed, ms since the Unix epoch.
    pub wall_time_ms: u64,
    /// The job's watermark at the barrier (smallest over sources).
    pub watermark: i64,
    /// The job's input ended with this checkpoint: it is the final commit of
    /// a finished run, with nothing left to resume.
    pub finished: bool,
    /// Where every source subtask resumes.
    pub positions: Vec<SourcePositions>,
    pub stats: CheckpointStats,
    /// The job's parallelism when it took the checkpoint (0: not recorded,
    /// before manifest format 5): a job restarted without being told
    /// another goes on at it, rescales included.
    pub parallelism: u32,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn get_str(input: &mut &[u8], why: &'static str) -> Result<String, &'static str> {
    let b = get_bytes(input).ok_or(why)?;
    String::from_utf8(b.to_vec()).map_err(|_| why)
}

impl CheckpointMeta {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.epoch.0);
        put_bytes(out, self.job.as_bytes());
        put_uvarint(out, self.wall_time_ms);
        put_uvarint(out, zigzag(self.watermark));
        out.push(u8::from(self.finished));
        put_uvarint(out, self.positions.len() as u64);
        for s in &self.positions {
            put_bytes(out, s.source.as_bytes());
            put_uvarint(out, s.subtasks.len() as u64);
            for p in &s.subtasks {
                put_bytes(out, p);
            }
        }
        let st = &self.stats;
        for v in [
            st.duration_ms,
            st.commit_ms,
            st.dirty_bytes,
            st.bytes_written,
            st.files_added,
        ] {
            put_uvarint(out, v);
        }
        put_uvarint(out, st.alignment_ms.len() as u64);
        for (op, ms) in &st.alignment_ms {
            put_bytes(out, op.as_bytes());
            put_uvarint(out, *ms);
        }
        put_uvarint(out, u64::from(self.parallelism));
    }

    /// Decodes one checkpoint from the front of `input`, written in
    /// manifest format `format`.
    pub fn decode(input: &mut &[u8], format: u32) -> Result<CheckpointMeta, &'static str> {
        let num = |input: &mut &[u8], why| get_uvarint(input).ok_or(why);
        let epoch = Epoch(num(input, "truncated checkpoint epoch")?);
        let job = get_str(input, "truncated checkpoint job")?;
        let wall_time_ms = num(input, "truncated checkpoint wall time")?;
        let watermark = unzigzag(num(input, "truncated checkpoint watermark")?);
        let (&finished, rest) = input.split_first().ok_or("truncated checkpoint")?;
        *input = rest;
        let finished = match finished {
            0 => false,
            1 => true,
            _ => return Err("checkpoint finished flag is neither 0 nor 1"),
        };
        let sources = num(input, "truncated checkpoint source count")?;
        if sources > input.len() as u64 {
            return Err("checkpoint source count exceeds the manifest");
        }
        let mut positions = Vec::with_capacity(sources as usize);
        for _ in 0..sources {
            let source = get_str(input, "truncated checkpoint source name")?;
            let n = num(input, "truncated checkpoint subtask count")?;
            if n > input.len() as u64 {
                return Err("checkpoint subtask count exceeds the manifest");
            }
            let mut subtasks = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let p = get_bytes(input).ok_or("truncated checkpoint position")?;
                subtasks.push(p.to_vec());
            }
            positions.push(SourcePositions { source, subtasks });
        }
        let mut v = [0u64; 5];
        for x in &mut v {
            *x = num(input, "truncated checkpoint statistics")?;
        }
        let ops = num(input, "truncated checkpoint operator count")?;
        if ops > input.len() as u64 {
            return Err("checkpoint operator count exceeds the manifest");
        }
        let mut alignment_ms = Vec::with_capacity(ops as usize);
        for _ in 0..ops {
            let op = get_str(input, "truncated checkpoint operator name")?;
            alignment_ms.push((op, num(input, "truncated checkpoint alignment")?));
        }
        let parallelism = if format >= 5 {
            u32::try_from(num(input, "truncated checkpoint parallelism")?)
                .map_err(|_| "checkpoint parallelism out of range")?
        } else {
            0
        };
        Ok(CheckpointMeta {
            epoch,
            job,
            wall_time_ms,
            watermark,
            finished,
            positions,
            stats: CheckpointStats {
                duration_ms: v[0],
                commit_ms: v[1],
                dirty_bytes: v[2],
                bytes_written: v[3],
                files_added: v[4],
                alignment_ms,
            },
            parallelism,
        })
    }

    /// The positions of source `name`, if this checkpoint has them.
    pub fn positions_of(&self, name: &str) -> Option<&[Vec<u8>]> {
        self.positions
            .iter()
            .find(|s| s.source == name)
            .map(|s| s.subtasks.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip() {
        let c = CheckpointMeta {
            epoch: Epoch(42),
            job: "q5".into(),
            wall_time_ms: 1_700_000_000_123,
            watermark: -7,
            finished: true,
            positions: vec![SourcePositions {
                source: "nexmark-source".into(),
                subtasks: vec![vec![1, 2, 3], vec![]],
            }],
            stats: CheckpointStats {
                duration_ms: 12,
                commit_ms: 3,
                dirty_bytes: 1 << 20,
                bytes_written: 999,
                files_added: 2,
                alignment_ms: vec![("q5-counts".into(), 4)],
            },
            parallelism: 4,
        };
        let mut out = Vec::new();
        c.encode(&mut out);
        let mut input = &out[..];
        assert_eq!(CheckpointMeta::decode(&mut input, 5).unwrap(), c);
        assert!(input.is_empty());
        for cut in 0..out.len() {
            assert!(
                CheckpointMeta::decode(&mut &out[..cut], 5).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(
            c.positions_of("nexmark-source").unwrap()[0],
            vec![1u8, 2, 3]
        );
        for w in [i64::MIN, -1, 0, 1, i64::MAX] {
            assert_eq!(unzigzag(zigzag(w)), w);
        }
    }
}
