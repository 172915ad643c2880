//! The tables of a namespace, registered by name. The store hands out the
//! ids, so two operators (or two jobs sharing a namespace's key space)
//! never both take `TableId(1)`, and a restarted job finds its tables'
//! data under the ids it had: the name is what the job knows, the id is
//! what keys carry.
//!
//! # Encoding (inside the manifest body, see `manifest.rs`)
//!
//! ```text
//! catalog := next_table_id varint | table count varint
//!          | per table, by name: name (len ‖ utf-8) | id varint
//! ```

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::keys::TableId;
use crate::varint::{get_bytes, get_uvarint, put_bytes, put_uvarint};

/// Longest table name accepted.
pub const MAX_NAME_BYTES: usize = 256;

/// Registered tables and the next id to hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    next: u32,
    by_name: BTreeMap<String, TableId>,
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
        if name.is_empty() || name.len() > MAX_NAME_BYTES {
            return Err(Error::InvalidArgument(format!(
                "table name {name:?} must be 1 to {MAX_NAME_BYTES} bytes"
            )));
        }
        if let Some(id) = self.by_name.get(name) {
            return Ok(*id);
        }
        if self.next == u32::MAX {
            return Err(Error::InvalidArgument(
                "the namespace has used every table id".into(),
            ));
        }
        let id = TableId(self.next);
        self.next += 1;
        self.by_name.insert(name.to_string(), id);
        Ok(id)
    }

    pub fn get(&self, name: &str) -> Option<TableId> {
        self.by_name.get(name).copied()
    }

    /// Every table, by name.
    pub fn tables(&self) -> impl Iterator<Item = (&str, TableId)> {
        self.by_name.iter().map(|(n, id)| (n.as_str(), *id))
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, u64::from(self.next));
        put_uvarint(out, self.by_name.len() as u64);
        for (name, id) in &self.by_name {
            put_bytes(out, name.as_bytes());
            put_uvarint(out, u64::from(id.0));
        }
    }

    pub fn decode(input: &mut &[u8]) -> std::result::Result<Catalog, &'static str> {
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
            by_name.insert(name, TableId(id));
        }
        Ok(Catalog { next, by_name })
    }
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
        let back = Catalog::decode(&mut &enc[..]).unwrap();
        assert_eq!(back, c);
        let mut again = back;
        assert_eq!(again.register("timers").unwrap(), b);
        assert_eq!(again.register("new").unwrap(), TableId(3));
    }
}
