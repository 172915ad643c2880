//! The checkpoints a state directory holds, read without opening the store
//! (opening writes a manifest version to fence older writers, which a
//! listing must not do to a running job).
//!
//! A query's store lives in `<state dir>/<query>`, in the namespace named
//! after the query.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use riverbed_state_store::storage::open_object_store;
use riverbed_state_store::{namespace, CheckpointMeta, S3Options};

use crate::error::{Error, Result};

fn store_error(dir: &Path, e: riverbed_state_store::Error) -> Error {
    Error::InvalidArgument(format!("{}: {e}", dir.display()))
}

fn root_of(dir: &Path) -> Result<Arc<dyn ObjectStore>> {
    let url = dir.to_str().ok_or_else(|| {
        Error::InvalidArgument(format!("state directory {} is not UTF-8", dir.display()))
    })?;
    open_object_store(url, &S3Options::default()).map_err(|e| store_error(dir, e))
}

/// The retained checkpoints of namespace `query` of the store in `dir`,
/// oldest first; none when there is no store there.
pub async fn list(dir: &Path, query: &str) -> Result<Vec<CheckpointMeta>> {
    if !dir.join(namespace::NAMESPACES_DIR).exists() {
        return Ok(Vec::new());
    }
    let data = namespace::read_manifest(root_of(dir)?, query)
        .await
        .map_err(|e| store_error(dir, e))?;
    Ok(data.map(|d| d.checkpoints).unwrap_or_default())
}

/// The newest checkpoint of namespace `query` of the store in `dir`.
pub async fn latest(dir: &Path, query: &str) -> Result<Option<CheckpointMeta>> {
    Ok(list(dir, query).await?.pop())
}

/// Every query's checkpoints under a state directory: `(query, its store's
/// directory, its checkpoints)` for each namespace of each store, by name.
pub async fn under(state_dir: &Path) -> Result<Vec<(String, PathBuf, Vec<CheckpointMeta>)>> {
    let rd = std::fs::read_dir(state_dir).map_err(|source| Error::Io {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(namespace::NAMESPACES_DIR).is_dir())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        let root = root_of(&d)?;
        let names = namespace::list(&*root)
            .await
            .map_err(|e| store_error(&d, e))?;
        for name in names {
            let cps = list(&d, &name).await?;
            out.push((name, d.clone(), cps));
        }
    }
    Ok(out)
}
