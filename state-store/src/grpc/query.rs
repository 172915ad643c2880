//! Queryable state: a job's state read by table name and key, at the
//! latest committed epoch (a consistent snapshot: nothing of an epoch in
//! progress is seen) or at a retained checkpoint (time travel).
//!
//! The stored key is `table id | key group | user key [| entry suffix]`;
//! the table's description (registered by the job, see `catalog.rs`)
//! gives the key groups to find the key's group, the key schema to encode
//! a typed key, and the value schema to print what is found.

use bytes::Bytes;
use tonic::Status;

use super::convert::{status_of, table_info_to_pb};
use super::json;
use super::pb;
use crate::catalog::TableKind;
use crate::keys::{key_group_of, key_prefix};
use crate::{Epoch, Store};

/// Entries an entries table returns unless the request says otherwise.
const DEFAULT_LIMIT: usize = 1000;
/// Most entries one answer holds.
const MAX_LIMIT: usize = 100_000;

/// The epoch a query reads: `asked`, or the committed one for 0. Anything
/// else than the committed epoch or a retained checkpoint's is refused, as
/// compaction keeps no other versions.
pub fn epoch_to_read(store: &Store, asked: u64) -> Result<Epoch, Status> {
    let committed = store.committed_epoch();
    if asked == 0 {
        if committed == Epoch(0) {
            return Err(Status::failed_precondition(format!(
                "namespace {:?} has nothing committed yet",
                store.namespace()
            )));
        }
        return Ok(committed);
    }
    let retained: Vec<u64> = store.checkpoints().iter().map(|c| c.epoch.0).collect();
    if asked == committed.0 || retained.contains(&asked) {
        return Ok(Epoch(asked));
    }
    Err(Status::failed_precondition(format!(
        "epoch {asked} is neither the committed epoch {} nor a retained checkpoint (retained: {})",
        committed.0,
        if retained.is_empty() {
            "none".to_string()
        } else {
            retained
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    )))
}

/// Answers one query against `store` (authorization is the caller's).
pub async fn lookup(
    store: &Store,
    r: &pb::QueryRequest,
    max_key_bytes: usize,
) -> Result<pb::QueryResponse, Status> {
    let Some(table) = store.table(&r.table) else {
        let known: Vec<String> = store.tables().into_iter().map(|(n, _)| n).collect();
        return Err(Status::not_found(format!(
            "namespace {:?} has no table {:?} (tables: {})",
            store.namespace(),
            r.table,
            known.join(", ")
        )));
    };
    let info = &table.info;
    let user_key: Vec<u8> = match &r.key {
        Some(pb::query_request::Key::KeyBytes(b)) => b.to_vec(),
        Some(pb::query_request::Key::KeyText(t)) => {
            let Some(schema) = &info.key else {
                return Err(Status::failed_precondition(format!(
                    "table {:?} has no key schema: give the key's bytes as hex",
                    r.table
                )));
            };
            json::encode_key(schema, t).map_err(Status::invalid_argument)?
        }
        None => return Err(Status::invalid_argument("a query needs a key")),
    };
    if user_key.len() > max_key_bytes {
        return Err(Status::invalid_argument(format!(
            "a key of {} bytes is over max_key_bytes {max_key_bytes}",
            user_key.len()
        )));
    }
    if info.key_groups == 0 {
        return Err(Status::failed_precondition(format!(
            "table {:?} was registered without its key groups, so a key cannot be found in it",
            r.table
        )));
    }
    let epoch = epoch_to_read(store, r.epoch)?;
    let kg = key_group_of(&user_key, info.key_groups);
    let mut full = key_prefix(table.id, kg).to_vec();
    full.extend_from_slice(&user_key);
    let limit = match r.limit as usize {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let found: Vec<(Bytes, Bytes)> = if info.kind == TableKind::Values {
        let key = Bytes::from(full.clone());
        let v = store
            .multi_get(std::slice::from_ref(&key), epoch)
            .await
            .map_err(|e| status_of(&e))?;
        v.into_iter()
            .next()
            .flatten()
            .map(|v| (key, v))
            .into_iter()
            .collect()
    } else {
        let end = prefix_end(&full);
        store
            .scan(&full, end.as_deref(), epoch, limit + 1)
            .await
            .map_err(|e| status_of(&e))?
    };
    let truncated = found.len() > limit;
    let entries = found
        .into_iter()
        .take(limit)
        .map(|(k, value)| {
            let (value_json, decode_error) = match &info.value {
                None => (String::new(), String::new()),
                Some(s) => match json::decode(s, &value) {
                    Ok(v) => (v.to_string(), String::new()),
                    Err(e) => (String::new(), e),
                },
            };
            pb::QueryEntry {
                suffix: k.slice(full.len()..),
                value,
                value_json,
                decode_error,
            }
        })
        .collect::<Vec<_>>();
    Ok(pb::QueryResponse {
        epoch: epoch.0,
        found: !entries.is_empty(),
        entries,
        truncated,
        info: Some(table_info_to_pb(info)),
    })
}

/// The first key after every key that starts with `prefix` (`None`: no
/// such key, the prefix is all 0xff).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The namespace's tables as listed.
pub fn summaries(store: &Store) -> Vec<pb::TableSummary> {
    let committed = store.committed_epoch().0;
    store
        .table_summaries()
        .into_iter()
        .map(|t| pb::TableSummary {
            namespace: store.namespace().to_string(),
            name: t.name,
            table_id: t.entry.id.0,
            info: Some(table_info_to_pb(&t.entry.info)),
            bytes: t.bytes,
            entries: t.entries,
            committed_epoch: committed,
        })
        .collect()
}

/// A query's answer as JSON (what the HTTP endpoint and the CLI print):
/// each entry's value decoded by the table's schema, or as hex.
pub fn answer_json(namespace: &str, table: &str, r: &pb::QueryResponse) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = r
        .entries
        .iter()
        .map(|e| {
            let mut m = serde_json::Map::new();
            if !e.suffix.is_empty() {
                m.insert("suffix".into(), json::hex(&e.suffix).into());
            }
            let value = if e.value_json.is_empty() {
                None
            } else {
                serde_json::from_str(&e.value_json).ok()
            };
            match value {
                Some(v) => {
                    m.insert("value".into(), v);
                }
                None => {
                    m.insert("value_hex".into(), json::hex(&e.value).into());
                }
            }
            if !e.decode_error.is_empty() {
                m.insert("decode_error".into(), e.decode_error.clone().into());
            }
            serde_json::Value::Object(m)
        })
        .collect();
    serde_json::json!({
        "namespace": namespace,
        "table": table,
        "epoch": r.epoch,
        "found": r.found,
        "truncated": r.truncated,
        "entries": entries,
    })
}

/// One listed table as JSON.
pub fn summary_json(t: &pb::TableSummary) -> serde_json::Value {
    let info = t.info.clone().unwrap_or_default();
    serde_json::json!({
        "namespace": t.namespace,
        "table": t.name,
        "id": t.table_id,
        "kind": info.kind,
        "key_groups": info.key_groups,
        "key_schema": info.key_schema,
        "value_schema": info.value_schema,
        "ttl_ms": info.ttl_ms,
        "time_shard_ms": info.time_shard_ms,
        "bytes": t.bytes,
        "entries": t.entries,
        "committed_epoch": t.committed_epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_after_its_last_key() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
