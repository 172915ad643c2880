//! Savepoints: a checkpoint copied out of its store as a self-contained,
//! versioned snapshot that a job can start from on another store, machine
//! or release.
//!
//! A checkpoint lives in its namespace and shares files with the ones
//! before and after it; a savepoint owns copies of every file it needs, so
//! it outlives the store's retention and can be moved (or kept in another
//! bucket) as a plain folder.
//!
//! # Layout (under the savepoint's own root: a folder or an S3 prefix)
//!
//! ```text
//! sst/<file id, 20 digits>.sst            every file of the checkpoint, as in the store
//! manifest/00000000000000000001.manifest   its manifest (see manifest.rs): the files,
//!                                          the checkpoint's epoch as committed epoch,
//!                                          that one checkpoint, the table catalog
//! SAVEPOINT                                the descriptor, written last
//! ```
//!
//! The descriptor is UTF-8 text, one `key value` per line after the first:
//!
//! ```text
//! riverbed-savepoint 1
//! namespace <the namespace it was exported from>
//! job <job name>
//! epoch <checkpoint epoch>
//! files <file count>
//! bytes <total file bytes>
//! ```
//!
//! A folder without the descriptor is an export that did not finish and is
//! refused. A descriptor with a version above 1 was written by a newer
//! release and is refused with that reason; the manifest inside carries its
//! own format version, which every later release still reads.

use std::sync::Arc;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::checkpoint::CheckpointMeta;
use crate::error::{Error, Result};
use crate::keys::{Epoch, FileId};
use crate::manifest::{ManifestData, ManifestStore};
use crate::{namespace, paths};

/// The descriptor's object name.
pub const DESCRIPTOR: &str = "SAVEPOINT";
const HEADER: &str = "riverbed-savepoint";
const VERSION: u32 = 1;
/// Files copied at once: object stores serve parallel requests well.
const PARALLEL_COPIES: usize = 8;

/// What a savepoint holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavepointInfo {
    /// The namespace it was exported from.
    pub namespace: String,
    pub files: u64,
    pub bytes: u64,
    /// The checkpoint: its epoch, job, source positions and statistics.
    pub checkpoint: CheckpointMeta,
}

impl SavepointInfo {
    fn descriptor(&self) -> String {
        format!(
            "{HEADER} {VERSION}\nnamespace {}\njob {}\nepoch {}\nfiles {}\nbytes {}\n",
            self.namespace, self.checkpoint.job, self.checkpoint.epoch.0, self.files, self.bytes
        )
    }
}

fn invalid(why: String) -> Error {
    Error::InvalidArgument(why)
}

/// Copies checkpoint `epoch` (the latest when `None`) of namespace
/// `namespace` of the store at `source` to the empty root `target`.
///
/// It reads the source without opening it, so a running job keeps running;
/// if the job's compaction deletes a file during the copy, the export fails
/// and says so (export again: the next checkpoint's files are current).
/// Only the latest checkpoint can be exported: older retained checkpoints
/// share their files with later epochs' versions.
pub async fn export(
    source: Arc<dyn ObjectStore>,
    namespace: &str,
    epoch: Option<Epoch>,
    target: Arc<dyn ObjectStore>,
) -> Result<SavepointInfo> {
    let data = namespace::read_manifest(source.clone(), namespace)
        .await?
        .ok_or_else(|| invalid(format!("namespace {namespace:?} holds no store")))?;
    let latest = data.checkpoints.last().ok_or_else(|| {
        invalid(format!(
            "namespace {namespace:?} holds no checkpoint to export"
        ))
    })?;
    let checkpoint = match epoch {
        None => latest.clone(),
        Some(e) if e == latest.epoch => latest.clone(),
        Some(e) => {
            let retained: Vec<u64> = data.checkpoints.iter().map(|c| c.epoch.0).collect();
            return Err(invalid(format!(
                "checkpoint {} cannot be exported: only the latest ({}) can \
                 (retained: {retained:?})",
                e.0, latest.epoch.0
            )));
        }
    };
    if checkpoint.epoch != data.committed {
        return Err(invalid(format!(
            "the latest checkpoint ({}) is behind the committed epoch ({}): \
             epochs committed after it would be lost",
            checkpoint.epoch.0, data.committed.0
        )));
    }
    ensure_empty(&*target).await?;
    let from = namespace::scoped(source, namespace)?;
    let files: Vec<_> = data.levels.iter().flatten().cloned().collect();
    // Ids collected first: an iterator borrowing `files` held across the
    // copy's awaits keeps the future from being `Send` (the service needs it).
    let ids: Vec<FileId> = files.iter().map(|f| f.id).collect();
    copy_files(&from, &target, ids.into_iter()).await?;
    let info = SavepointInfo {
        namespace: namespace.to_string(),
        files: files.len() as u64,
        bytes: files.iter().map(|f| f.size).sum(),
        checkpoint: checkpoint.clone(),
    };
    let manifest = ManifestData {
        checkpoints: vec![checkpoint],
        ..data
    };
    let (mut ms, existing) = ManifestStore::open(target.clone()).await?;
    debug_assert!(existing.is_none());
    ms.write(&manifest).await?;
    target
        .put(
            &Path::from(DESCRIPTOR),
            PutPayload::from(info.descriptor().into_bytes()),
        )
        .await?;
    tracing::info!(
        namespace,
        epoch = info.checkpoint.epoch.0,
        files = info.files,
        bytes = info.bytes,
        "savepoint exported"
    );
    Ok(info)
}

/// Reads and checks the savepoint at `root`.
pub async fn read(root: Arc<dyn ObjectStore>) -> Result<SavepointInfo> {
    let text = match root.get(&Path::from(DESCRIPTOR)).await {
        Ok(r) => r.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(invalid(format!(
                "no {DESCRIPTOR} descriptor: not a savepoint, or an export that did not finish"
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let text = std::str::from_utf8(&text)
        .map_err(|_| Error::corrupted(DESCRIPTOR, 0, "descriptor is not UTF-8"))?;
    let mut lines = text.lines();
    let version = lines
        .next()
        .and_then(|l| l.strip_prefix(HEADER))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .ok_or_else(|| Error::corrupted(DESCRIPTOR, 0, "not a Riverbed savepoint descriptor"))?;
    if version > VERSION {
        return Err(invalid(format!(
            "the savepoint is format {version}, written by a newer Riverbed; this one reads up to {VERSION}"
        )));
    }
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .map(str::to_string)
            .ok_or_else(|| Error::corrupted(DESCRIPTOR, 0, format!("descriptor lacks `{key}`")))
    };
    let number = |key: &str| -> Result<u64> {
        field(key)?
            .parse()
            .map_err(|_| Error::corrupted(DESCRIPTOR, 0, format!("`{key}` is not a number")))
    };
    let (_, manifest) = ManifestStore::open(root).await?;
    let manifest = manifest.ok_or_else(|| {
        Error::corrupted(
            "manifest",
            0,
            "the savepoint has a descriptor but no manifest",
        )
    })?;
    let checkpoint = manifest.checkpoints.last().cloned().ok_or_else(|| {
        Error::corrupted("manifest", 0, "the savepoint's manifest has no checkpoint")
    })?;
    let info = SavepointInfo {
        namespace: field("namespace")?,
        files: number("files")?,
        bytes: number("bytes")?,
        checkpoint,
    };
    if number("epoch")? != info.checkpoint.epoch.0 {
        return Err(Error::corrupted(
            DESCRIPTOR,
            0,
            "the descriptor's epoch differs from the manifest's checkpoint",
        ));
    }
    Ok(info)
}

/// Copies the savepoint at `savepoint` into namespace `namespace` of the
/// store at `root`, which must hold nothing there yet, and returns its
/// checkpoint: a job opening that namespace resumes from it.
pub async fn restore(
    savepoint: Arc<dyn ObjectStore>,
    root: Arc<dyn ObjectStore>,
    namespace: &str,
) -> Result<SavepointInfo> {
    let info = read(savepoint.clone()).await?;
    let into = namespace::scoped(root, namespace)?;
    let (mut ms, existing) = ManifestStore::open(into.clone()).await?;
    if existing.is_some() {
        return Err(invalid(format!(
            "namespace {namespace:?} already holds a store; restore a savepoint into an empty one"
        )));
    }
    let (_, manifest) = ManifestStore::open(savepoint.clone()).await?;
    let manifest = manifest.expect("read() checked the manifest");
    let files: Vec<_> = manifest.levels.iter().flatten().map(|f| f.id).collect();
    if files.len() as u64 != info.files {
        return Err(Error::corrupted(
            DESCRIPTOR,
            0,
            "the descriptor's file count differs from the manifest's",
        ));
    }
    copy_files(&savepoint, &into, files.into_iter()).await?;
    ms.write(&ManifestData {
        namespace: namespace.to_string(),
        ..manifest
    })
    .await?;
    tracing::info!(
        namespace,
        epoch = info.checkpoint.epoch.0,
        files = info.files,
        "savepoint restored"
    );
    Ok(info)
}

/// Fails unless `target` holds nothing a savepoint would overwrite.
async fn ensure_empty(target: &dyn ObjectStore) -> Result<()> {
    for dir in [paths::manifest_dir(), paths::sst_dir()] {
        if target.list(Some(&dir)).next().await.is_some() {
            return Err(invalid(format!(
                "the savepoint target already holds {dir}/: export into an empty folder or prefix"
            )));
        }
    }
    if target.head(&Path::from(DESCRIPTOR)).await.is_ok() {
        return Err(invalid(
            "the savepoint target already holds a savepoint".into(),
        ));
    }
    Ok(())
}

/// Copies SST files `ids` from `from` to `to`, a few at a time.
async fn copy_files(
    from: &Arc<dyn ObjectStore>,
    to: &Arc<dyn ObjectStore>,
    ids: impl Iterator<Item = FileId>,
) -> Result<()> {
    futures::stream::iter(ids.map(|id| async move {
        let path = paths::sst(id);
        let bytes: Bytes = match from.get(&path).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(invalid(format!(
                    "{path} vanished during the copy (compacted away by the running job?); \
                     try again"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        to.put(&path, PutPayload::from(bytes)).await?;
        Ok(())
    }))
    .buffer_unordered(PARALLEL_COPIES)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}
