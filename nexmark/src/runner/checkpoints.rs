//! The checkpoints a query's state directory holds, read without opening
//! the store (opening writes a manifest version to fence older writers,
//! which a listing must not do to a running job).

use std::path::{Path, PathBuf};

use riverbed_state_store::manifest::ManifestStore;
use riverbed_state_store::storage::open_object_store;
use riverbed_state_store::{CheckpointMeta, S3Options};

use crate::error::{Error, Result};

fn store_error(dir: &Path, e: riverbed_state_store::Error) -> Error {
    Error::InvalidArgument(format!("{}: {e}", dir.display()))
}

/// The retained checkpoints of the store in `dir`, oldest first; none when
/// there is no store there.
pub async fn list(dir: &Path) -> Result<Vec<CheckpointMeta>> {
    if !dir.join("manifest").exists() {
        return Ok(Vec::new());
    }
    let url = dir.to_str().ok_or_else(|| {
        Error::InvalidArgument(format!("state directory {} is not UTF-8", dir.display()))
    })?;
    let store = open_object_store(url, &S3Options::default()).map_err(|e| store_error(dir, e))?;
    let (_, data) = ManifestStore::open(store)
        .await
        .map_err(|e| store_error(dir, e))?;
    Ok(data.map(|d| d.checkpoints).unwrap_or_default())
}

/// The newest checkpoint of the store in `dir`, if any.
pub async fn latest(dir: &Path) -> Result<Option<CheckpointMeta>> {
    Ok(list(dir).await?.pop())
}

/// Every query's checkpoints under a state directory: `(query, its
/// checkpoints)` for each subdirectory holding a store, by name.
pub async fn under(state_dir: &Path) -> Result<Vec<(String, PathBuf, Vec<CheckpointMeta>)>> {
    let rd = std::fs::read_dir(state_dir).map_err(|source| Error::Io {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("manifest").is_dir())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cps = list(&d).await?;
        out.push((name, d, cps));
    }
    Ok(out)
}
