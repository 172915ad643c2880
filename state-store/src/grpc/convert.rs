//! Engine types ⇄ wire messages, both ways, so that a checkpoint, a write
//! batch or an error means the same on either side of the network.

use bytes::Bytes;
use tonic::{Code, Status};

use super::pb;
use crate::catalog::{TableInfo, TableKind};
use crate::schema::Schema;
use crate::{
    CheckpointMeta, CheckpointStats, Epoch, Error, ErrorKind, Op, SavepointInfo, SourcePositions,
    WriteBatch,
};

/// A checkpoint's metadata as sent.
pub fn checkpoint_to_pb(m: &CheckpointMeta) -> pb::Checkpoint {
    pb::Checkpoint {
        epoch: m.epoch.0,
        job: m.job.clone(),
        wall_time_ms: m.wall_time_ms,
        watermark: m.watermark,
        finished: m.finished,
        positions: m
            .positions
            .iter()
            .map(|p| pb::SourcePositions {
                source: p.source.clone(),
                subtasks: p.subtasks.iter().map(|s| Bytes::from(s.clone())).collect(),
            })
            .collect(),
        stats: Some(pb::CheckpointStats {
            duration_ms: m.stats.duration_ms,
            commit_ms: m.stats.commit_ms,
            dirty_bytes: m.stats.dirty_bytes,
            bytes_written: m.stats.bytes_written,
            files_added: m.stats.files_added,
            alignment: m
                .stats
                .alignment_ms
                .iter()
                .map(|(operator, ms)| pb::OperatorAlignment {
                    operator: operator.clone(),
                    ms: *ms,
                })
                .collect(),
        }),
        parallelism: m.parallelism,
    }
}

/// A checkpoint's metadata as received.
pub fn checkpoint_from_pb(c: pb::Checkpoint) -> CheckpointMeta {
    let stats = c.stats.unwrap_or_default();
    CheckpointMeta {
        parallelism: c.parallelism,
        epoch: Epoch(c.epoch),
        job: c.job,
        wall_time_ms: c.wall_time_ms,
        watermark: c.watermark,
        finished: c.finished,
        positions: c
            .positions
            .into_iter()
            .map(|p| SourcePositions {
                source: p.source,
                subtasks: p.subtasks.into_iter().map(|s| s.to_vec()).collect(),
            })
            .collect(),
        stats: CheckpointStats {
            duration_ms: stats.duration_ms,
            commit_ms: stats.commit_ms,
            dirty_bytes: stats.dirty_bytes,
            bytes_written: stats.bytes_written,
            files_added: stats.files_added,
            alignment_ms: stats
                .alignment
                .into_iter()
                .map(|a| (a.operator, a.ms))
                .collect(),
        },
    }
}

/// The operations of `batch` from `from` on, as sent, cut where their keys
/// and values pass `max_bytes` (at least one operation per part).
pub fn ops_to_pb(batch: &WriteBatch, from: usize, max_bytes: usize) -> (Vec<pb::WriteOp>, usize) {
    let mut ops = Vec::new();
    let mut bytes = 0;
    let mut i = from;
    while i < batch.len() {
        let op = batch.op(i);
        let size = match op {
            Op::Put(k, v) => k.len() + v.len(),
            Op::Delete(k) => k.len(),
            Op::DeleteRange(s, e) => s.len() + e.len(),
        } + 8;
        if !ops.is_empty() && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        let op = match op {
            Op::Put(k, v) => pb::write_op::Op::Put(pb::Put {
                key: Bytes::copy_from_slice(k),
                value: Bytes::copy_from_slice(v),
            }),
            Op::Delete(k) => pb::write_op::Op::Delete(pb::Delete {
                key: Bytes::copy_from_slice(k),
            }),
            Op::DeleteRange(s, e) => pb::write_op::Op::DeleteRange(pb::DeleteRange {
                start: Bytes::copy_from_slice(s),
                end: Bytes::copy_from_slice(e),
            }),
        };
        ops.push(pb::WriteOp { op: Some(op) });
        i += 1;
    }
    (ops, i)
}

/// A write batch as received.
pub fn batch_from_pb(ops: &[pb::WriteOp]) -> Result<WriteBatch, Status> {
    let mut batch = WriteBatch::with_capacity(ops.len());
    for op in ops {
        match &op.op {
            Some(pb::write_op::Op::Put(p)) => {
                batch.put(&p.key, &p.value);
            }
            Some(pb::write_op::Op::Delete(d)) => {
                batch.delete(&d.key);
            }
            Some(pb::write_op::Op::DeleteRange(r)) => {
                batch.delete_range(&r.start, &r.end);
            }
            None => return Err(Status::invalid_argument("a write op with no operation")),
        }
    }
    Ok(batch)
}

/// The status that carries an engine error.
pub fn status_of(e: &Error) -> Status {
    let code = match e.kind() {
        ErrorKind::InvalidArgument | ErrorKind::Config => Code::InvalidArgument,
        ErrorKind::WrongEpoch | ErrorKind::Fenced => Code::FailedPrecondition,
        ErrorKind::Conflict => Code::Aborted,
        ErrorKind::Closed => Code::Unavailable,
        ErrorKind::Corrupted => Code::DataLoss,
        ErrorKind::Io => Code::Internal,
    };
    Status::new(code, e.to_string())
}

/// The engine error a status stands for, on the client side: the message
/// is the server's, prefixed with what was asked.
pub fn error_of(what: &str, s: &Status) -> Error {
    let msg = format!("{what}: {}", s.message());
    match s.code() {
        Code::InvalidArgument | Code::OutOfRange => Error::InvalidArgument(msg),
        // The server words a fenced write "fenced: …".
        Code::FailedPrecondition if s.message().starts_with("fenced: ") => {
            Error::Fenced(format!("{what}: {}", &s.message()["fenced: ".len()..]))
        }
        Code::FailedPrecondition => Error::WrongEpoch(msg),
        Code::Aborted => Error::Closed(msg),
        Code::DataLoss => Error::Corrupted {
            file: "(remote)".into(),
            offset: 0,
            reason: msg,
        },
        Code::Unauthenticated | Code::PermissionDenied => Error::Config(msg),
        _ => Error::Closed(format!("{msg} ({:?})", s.code())),
    }
}

/// Object-storage traffic as sent.
pub fn objects_to_pb(o: &crate::ObjectStats) -> pb::ObjectStats {
    pb::ObjectStats {
        objects_read: o.objects_read,
        read_bytes: o.read_bytes,
        objects_written: o.objects_written,
        written_bytes: o.written_bytes,
        objects_deleted: o.objects_deleted,
        objects_copied: o.objects_copied,
    }
}

/// Object-storage traffic as received.
pub fn objects_from_pb(o: &pb::ObjectStats) -> crate::ObjectStats {
    crate::ObjectStats {
        objects_read: o.objects_read,
        read_bytes: o.read_bytes,
        objects_written: o.objects_written,
        written_bytes: o.written_bytes,
        objects_deleted: o.objects_deleted,
        objects_copied: o.objects_copied,
    }
}

/// A savepoint's description as sent.
pub fn savepoint_to_pb(i: &SavepointInfo) -> pb::SavepointResponse {
    pb::SavepointResponse {
        from_namespace: i.namespace.clone(),
        files: i.files,
        bytes: i.bytes,
        checkpoint: Some(checkpoint_to_pb(&i.checkpoint)),
    }
}

/// A savepoint's description as received.
pub fn savepoint_from_pb(r: pb::SavepointResponse) -> SavepointInfo {
    SavepointInfo {
        namespace: r.from_namespace,
        files: r.files,
        bytes: r.bytes,
        checkpoint: checkpoint_from_pb(r.checkpoint.unwrap_or_default()),
    }
}

/// A table's description as sent.
pub fn table_info_to_pb(i: &TableInfo) -> pb::TableInfo {
    let text = |s: &Option<Schema>| s.as_ref().map(|s| s.to_string()).unwrap_or_default();
    pb::TableInfo {
        key_groups: u32::from(i.key_groups),
        kind: i.kind.name().to_string(),
        key_schema: text(&i.key),
        value_schema: text(&i.value),
        ttl_ms: i.ttl_ms,
        time_shard_ms: i.time_shard_ms,
    }
}

/// A table's description as received; a bad field is `INVALID_ARGUMENT`.
pub fn table_info_from_pb(i: &pb::TableInfo) -> Result<TableInfo, Status> {
    let bad = |why: String| Status::invalid_argument(format!("table description: {why}"));
    let key_groups = u16::try_from(i.key_groups)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| bad(format!("key_groups {} must be 1 to 65535", i.key_groups)))?;
    let kind = match i.kind.as_str() {
        "raw" | "" => TableKind::Raw,
        "values" => TableKind::Values,
        "entries" => TableKind::Entries,
        other => return Err(bad(format!("kind {other:?} is not values, entries or raw"))),
    };
    let schema = |text: &str| -> Result<Option<Schema>, Status> {
        if text.is_empty() {
            return Ok(None);
        }
        Schema::parse(text)
            .map(Some)
            .map_err(|e| bad(e.to_string()))
    };
    Ok(TableInfo {
        key_groups,
        kind,
        key: schema(&i.key_schema)?,
        value: schema(&i.value_schema)?,
        ttl_ms: i.ttl_ms,
        time_shard_ms: i.time_shard_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_survives_the_round_trip() {
        let m = CheckpointMeta {
            epoch: Epoch(7),
            job: "q5".into(),
            wall_time_ms: 123,
            watermark: -5,
            finished: true,
            positions: vec![SourcePositions {
                source: "events".into(),
                subtasks: vec![vec![1, 2], vec![]],
            }],
            stats: CheckpointStats {
                duration_ms: 1,
                commit_ms: 2,
                dirty_bytes: 3,
                bytes_written: 4,
                files_added: 5,
                alignment_ms: vec![("join".into(), 6)],
            },
            parallelism: 3,
        };
        assert_eq!(checkpoint_from_pb(checkpoint_to_pb(&m)), m);
    }

    #[test]
    fn a_batch_is_cut_in_order_and_survives_the_round_trip() {
        let mut b = WriteBatch::new();
        for i in 0u32..100 {
            b.put(i.to_be_bytes(), vec![i as u8; 50]);
            if i % 10 == 0 {
                b.delete_range(i.to_be_bytes(), (i + 3).to_be_bytes());
            }
            b.delete((i + 1000).to_be_bytes());
        }
        let mut back = WriteBatch::new();
        let mut from = 0;
        let mut parts = 0;
        while from < b.len() {
            let (ops, next) = ops_to_pb(&b, from, 500);
            assert!(next > from);
            let part = batch_from_pb(&ops).unwrap();
            for op in part.ops() {
                match op {
                    Op::Put(k, v) => back.put(k, v),
                    Op::Delete(k) => back.delete(k),
                    Op::DeleteRange(s, e) => back.delete_range(s, e),
                };
            }
            from = next;
            parts += 1;
        }
        assert!(parts > 5, "{parts} parts");
        assert_eq!(back.ops().collect::<Vec<_>>(), b.ops().collect::<Vec<_>>());
    }
}
