//! The tables of a namespace, registered by name. The store hands out the
//! ids, so two operators (or two jobs sharing a namespace's key space)
//! never both take `TableId(1)`, and a restarted job finds its tables'
//! data under the ids it had: the name is what the job knows, the id is
//! what keys carry.
//!
//! A table also carries what a query needs to read it without the job's
//! code ([`TableInfo`]): how many key groups its keys are spread over,
//! whether a key holds one value or many entries, and the schemas of its
//! keys and values (see `schema.rs`).
//!
//! # Encoding (inside the manifest body, see `manifest.rs`)
//!
//! ```text
//! catalog := next_table_id varint | table count varint
//!          | per table, by name: name (len ‖ utf-8) | id varint
//!          |   [format ≥ 4] key_groups varint | kind u8 (0 raw, 1 values, 2 entries)
//!          |                key schema (len ‖ utf-8, empty = none)
//!          |                value schema (len ‖ utf-8, empty = none)
//!          |                ttl_ms varint (0 = none) | time_shard_ms varint (0 = none)
//! ```

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::keys::TableId;
use crate::schema::Schema;
use crate::varint::{get_bytes, get_uvarint, put_bytes, put_uvarint};

/// Longest table name accepted.
pub const MAX_NAME_BYTES: usize = 256;

/// How a table's keys map to what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableKind {
    /// Unknown layout: keys and values are shown as bytes.
    #[default]
    Raw,
    /// One value per key: `table | key group | key`.
    Values,
    /// Many entries per key: `table | key group | key | entry suffix`.
    Entries,
}

impl TableKind {
    fn code(self) -> u8 {
        match self {
            TableKind::Raw => 0,
            TableKind::Values => 1,
            TableKind::Entries => 2,
        }
    }

    fn of_code(c: u8) -> Option<TableKind> {
        Some(match c {
            0 => TableKind::Raw,
            1 => TableKind::Values,
            2 => TableKind::Entries,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            TableKind::Raw => "raw",
            TableKind::Values => "values",
            TableKind::Entries => "entries",
        }
    }
}

/// What a query needs to know of a table: given at registration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableInfo {
    /// The job's max parallelism: keys are spread over this many key
    /// groups. 0 when unknown (then a key can only be looked up raw).
    pub key_groups: u16,
    pub kind: TableKind,
    /// Schema of the user key (without table and key group).
    pub key: Option<Schema>,
    /// Schema of a value or entry.
    pub value: Option<Schema>,
    /// The state's time to live in event-time milliseconds (0: none). Kept
    /// for the store's compaction filters and time sharding to come; the
    /// job expires its state itself today.
    pub ttl_ms: u64,
    /// Width of the table's time shards in milliseconds (0: unsharded).
    pub time_shard_ms: u64,
}

/// One registered table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableEntry {
    pub id: TableId,
    pub info: TableInfo,
}

/// Registered tables and the next id to hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    next: u32,
    by_name: BTreeMap<String, TableEntry>,
}

impl Default for Catalog {
    /// Ids start at 1: 0 stays free for keys that belong to no table.
    fn default() -> Self {
        Catalog {
            next: 1,
            by_name: BTreeMap::new(),
        }
    }
}

impl Catalog {
    /// The id of table `name`, registering it on first use.
    pub fn register(&mut self, name: &str) -> Result<TableId> {
        self.register_with(name, None)
    }

    /// Like [`Catalog::register`]; with `info`, the table's description is
    /// set (a job whose code changed describes its table anew).
    pub fn register_with(&mut self, name: &str, info: Option<TableInfo>) -> Result<TableId> {
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(Error::InvalidArgument(format!(
                "table name {name:?} must be 1 to {MAX_NAME_BYTES} bytes"
            )));
        }
        if let Some(t) = self.by_name.get_mut(name) {
            if let Some(info) = info {
                t.info = info;
            }
            return Ok(t.id);
        }
        if self.next == u32::MAX {
            return Err(Error::InvalidArgument(
                "the namespace has used every table id".into(),
            ));
        }
        let id = TableId(self.next);
        self.next += 1;
        self.by_name.insert(
            name.to_string(),
            TableEntry {
                id,
                info: info.unwrap_or_default(),
            },
        );
        Ok(id)
    }

    pub fn get(&self, name: &str) -> Option<TableId> {
        self.by_name.get(name).map(|t| t.id)
    }

    pub fn entry(&self, name: &str) -> Option<&TableEntry> {
        self.by_name.get(name)
    }

    /// Every table, by name.
    pub fn tables(&self) -> impl Iterator<Item = (&str, TableId)> {
        self.by_name.iter().map(|(n, t)| (n.as_str(), t.id))
    }

    /// Every table with its description, by name.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &TableEntry)> {
        self.by_name.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The current encoding (manifest format 4).
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, u64::from(self.next));
        put_uvarint(out, self.by_name.len() as u64);
        for (name, t) in &self.by_name {
            put_bytes(out, name.as_bytes());
            put_uvarint(out, u64::from(t.id.0));
            put_uvarint(out, u64::from(t.info.key_groups));
            out.push(t.info.kind.code());
            let text = |s: &Option<Schema>| s.as_ref().map(|s| s.to_string()).unwrap_or_default();
            put_bytes(out, text(&t.info.key).as_bytes());
            put_bytes(out, text(&t.info.value).as_bytes());
            put_uvarint(out, t.info.ttl_ms);
            put_uvarint(out, t.info.time_shard_ms);
        }
    }

    /// Decodes a catalog; `with_info` for manifest format 4 and later.
    pub fn decode(
        input: &mut &[u8],
        with_info: bool,
    ) -> std::result::Result<Catalog, &'static str> {
        let next = get_uvarint(input).ok_or("truncated next table id")?;
        let next = u32::try_from(next).map_err(|_| "next table id out of range")?;
        let n = get_uvarint(input).ok_or("truncated table count")?;
        let mut by_name = BTreeMap::new();
        for _ in 0..n {
            let name = get_bytes(input).ok_or("truncated table name")?;
            let name = String::from_utf8(name.to_vec()).map_err(|_| "table name is not UTF-8")?;
            let id = get_uvarint(input).ok_or("truncated table id")?;
            let id = u32::try_from(id).map_err(|_| "table id out of range")?;
            if id >= next {
                return Err("table id at or above the next table id");
            }
            let info = if with_info {
                decode_info(input)?
            } else {
                TableInfo::default()
            };
            by_name.insert(
                name,
                TableEntry {
                    id: TableId(id),
                    info,
                },
            );
        }
        Ok(Catalog { next, by_name })
    }
}

fn decode_info(input: &mut &[u8]) -> std::result::Result<TableInfo, &'static str> {
    let key_groups = get_uvarint(input).ok_or("truncated key group count")?;
    let key_groups = u16::try_from(key_groups).map_err(|_| "key group count out of range")?;
    let (&kind, rest) = input.split_first().ok_or("truncated table kind")?;
    *input = rest;
    let kind = TableKind::of_code(kind).ok_or("unknown table kind")?;
    let mut schema = || -> std::result::Result<Option<Schema>, &'static str> {
        let b = get_bytes(input).ok_or("truncated table schema")?;
        if b.is_empty() {
            return Ok(None);
        }
        let text = std::str::from_utf8(b).map_err(|_| "table schema is not UTF-8")?;
        Schema::parse(text)
            .map(Some)
            .map_err(|_| "table schema does not parse")
    };
    let key = schema()?;
    let value = schema()?;
    let ttl_ms = get_uvarint(input).ok_or("truncated table TTL")?;
    let time_shard_ms = get_uvarint(input).ok_or("truncated table time-shard width")?;
    Ok(TableInfo {
        key_groups,
        kind,
        key,
        value,
        ttl_ms,
        time_shard_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_stable_distinct_ids() {
        let mut c = Catalog::default();
        let a = c.register("window").unwrap();
        let b = c.register("timers").unwrap();
        assert_ne!(a, b);
        assert_eq!(c.register("window").unwrap(), a);
        assert!(c.register("").is_err());
        let mut enc = Vec::new();
        c.encode(&mut enc);
        let back = Catalog::decode(&mut &enc[..], true).unwrap();
        assert_eq!(back, c);
        let mut again = back;
        assert_eq!(again.register("timers").unwrap(), b);
        assert_eq!(again.register("new").unwrap(), TableId(3));
    }

    #[test]
    fn descriptions_persist_and_a_new_one_replaces_the_old() {
        let mut c = Catalog::default();
        let info = TableInfo {
            key_groups: 128,
            kind: TableKind::Entries,
            key: Some(Schema::I64),
            value: Some(Schema::Tuple(vec![Schema::Str, Schema::opt(Schema::U32)])),
            ttl_ms: 60_000,
            time_shard_ms: 0,
        };
        let a = c.register_with("join", Some(info.clone())).unwrap();
        // Registering by name alone keeps the description.
        assert_eq!(c.register("join").unwrap(), a);
        assert_eq!(c.entry("join").unwrap().info, info);
        let mut enc = Vec::new();
        c.encode(&mut enc);
        let mut input = &enc[..];
        let back = Catalog::decode(&mut input, true).unwrap();
        assert!(input.is_empty());
        assert_eq!(back, c);
        let newer = TableInfo {
            key_groups: 64,
            ..info
        };
        c.register_with("join", Some(newer.clone())).unwrap();
        assert_eq!(c.entry("join").unwrap().info, newer);
        // A damaged kind byte is an error, not a guess: it follows the
        // next id, the count, the name, the id and 128 as a varint.
        let at = 1 + 1 + 5 + 1 + 2;
        assert_eq!(enc[at], 2);
        enc[at] = 9;
        assert_eq!(
            Catalog::decode(&mut &enc[..], true),
            Err("unknown table kind")
        );
    }
}
