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
