//! Updating results as a changelog, like Flink's `RowKind`.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    Insert,
    UpdateBefore,
    UpdateAfter,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Change<T> {
    pub kind: RowKind,
    pub row: T,
}

/// A change as it crosses an exchange: its kind (0 insert, 1 update-before,
/// 2 update-after, 3 delete), then the row.
impl<T: crate::codec::Codec> crate::codec::Codec for Change<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(match self.kind {
            RowKind::Insert => 0,
            RowKind::UpdateBefore => 1,
            RowKind::UpdateAfter => 2,
            RowKind::Delete => 3,
        });
        self.row.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        let (&tag, rest) = input.split_first()?;
        *input = rest;
        let kind = match tag {
            0 => RowKind::Insert,
            1 => RowKind::UpdateBefore,
            2 => RowKind::UpdateAfter,
            3 => RowKind::Delete,
            _ => return None,
        };
        Some(Change {
            kind,
            row: T::decode(input)?,
        })
    }
}

/// Applies a changelog to a table keyed by `key`: the final state a sink
/// that materialises the changelog would hold.
pub fn materialize<T: Clone, K: Ord>(
    changes: &[Change<T>],
    key: impl Fn(&T) -> K,
) -> std::collections::BTreeMap<K, T> {
    let mut table = std::collections::BTreeMap::new();
    for c in changes {
        match c.kind {
            RowKind::Insert | RowKind::UpdateAfter => {
                table.insert(key(&c.row), c.row.clone());
            }
            RowKind::UpdateBefore | RowKind::Delete => {
                table.remove(&key(&c.row));
            }
        }
    }
    table
}
