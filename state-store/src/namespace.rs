//! Namespaces: several jobs share one store (one bucket, prefix or
//! directory), each in a namespace of its own with its own tables, its own
//! committed epoch and its own checkpoints.
//!
//! A namespace is a separate LSM tree under `<root>/ns/<name>/` (see
//! `paths.rs` for what lies inside): committing, compacting or restoring
//! one job never touches another's files or manifest, and a job's
//! checkpoint is that namespace's manifest version alone. Names are
//! 1..=128 characters of `A-Z a-z 0-9 . _ -`, not starting with a dot, so
//! they are safe as object path segments on every backend.

use std::sync::Arc;

use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use crate::error::{Error, Result};
use crate::manifest::{ManifestData, ManifestStore};

/// The folder under the store's root that holds one folder per namespace.
pub const NAMESPACES_DIR: &str = "ns";

/// The namespace a store opens when none is named.
pub const DEFAULT: &str = "default";

/// Checks that `name` can name a namespace.
pub fn validate(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 128 || name.starts_with('.') || !name.chars().all(ok_char) {
        return Err(Error::Config(format!(
            "namespace {name:?} is not valid: use 1 to 128 of A-Z a-z 0-9 . _ - \
             (not starting with a dot)"
        )));
    }
    Ok(())
}

/// Where namespace `name` lives under the store's root.
pub fn root(name: &str) -> Path {
    Path::from(format!("{NAMESPACES_DIR}/{name}"))
}

/// The object store seen from inside namespace `name`: every path the
/// engine uses is relative to the namespace's folder.
pub fn scoped(store: Arc<dyn ObjectStore>, name: &str) -> Result<Arc<dyn ObjectStore>> {
    validate(name)?;
    Ok(Arc::new(PrefixStore::new(store, root(name))))
}

/// The namespaces under a store's root, by name.
pub async fn list(store: &dyn ObjectStore) -> Result<Vec<String>> {
    let listed = store
        .list_with_delimiter(Some(&Path::from(NAMESPACES_DIR)))
        .await?;
    let mut names: Vec<String> = listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename().map(str::to_string))
        .filter(|n| validate(n).is_ok())
        .collect();
    names.sort();
    Ok(names)
}

/// The newest manifest of namespace `name`, read without opening the
/// store: opening writes a manifest version to fence older writers, which
/// an inspection (a checkpoint listing, say) must not do to a running job.
pub async fn read_manifest(
    store: Arc<dyn ObjectStore>,
    name: &str,
) -> Result<Option<ManifestData>> {
    let (_, data) = ManifestStore::open(scoped(store, name)?).await?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["default", "q5", "job-1.v2", "A_b"] {
            validate(ok).unwrap();
        }
        for bad in ["", ".hidden", "a/b", "a b", "ü", &"x".repeat(129)] {
            let e = validate(bad).unwrap_err().to_string();
            assert!(e.contains("namespace"), "{e}");
        }
        assert_eq!(root("q5").as_ref(), "ns/q5");
    }
}
