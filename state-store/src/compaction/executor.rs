//! Runs a plan: merges the input files, keeps the versions of each key that
//! some reader may still see, applies committed range tombstones, drops
//! point tombstones where the plan allows, and writes output files cut at
//! the target size.
//!
//! # Which versions stay
//!
//! Reads are served at the committed epoch and above, and at the epoch of
//! every retained checkpoint (a *snapshot*). Of a key's versions, newest
//! first, the newest stays (it serves the latest reads and every snapshot at
//! or above its epoch); an older version stays when a snapshot lies below
//! the epoch of the last version kept and at or above its own: it is what
//! that snapshot sees. A version hidden by a range tombstone at the lowest
//! read point it serves is hidden at all of them (tombstones only add up as
//! epochs grow) and goes. A point tombstone goes where the plan allows only
//! when no snapshot below it could see an older version.

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};

use super::picker::Plan;
use crate::error::Result;
use crate::keys::{Epoch, FileId};
use crate::merge::{smallest, Source};
use crate::paths;
use crate::range_tombstone::{hidden, RangeTombstone};
use crate::sst::{SstBuilder, SstShape};
use crate::storage::Storage;
use crate::version::SstMeta;

/// What a compaction wrote and read.
pub struct Outcome {
    pub outputs: Vec<SstMeta>,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// Runs `plan`; `snapshots` are the epochs of the retained checkpoints
/// below the committed epoch, ascending.
pub async fn execute(
    plan: &Plan,
    tombstones: &[RangeTombstone],
    storage: &Storage,
    shape: SstShape,
    target_bytes: u64,
    snapshots: &[Epoch],
    mut next_id: impl FnMut() -> FileId,
) -> Result<Outcome> {
    let mut sources = Vec::new();
    let mut bytes_read = 0;
    for (level, files) in &plan.inputs {
        bytes_read += files.iter().map(|f| f.meta.size).sum::<u64>();
        if *level == 0 {
            for f in files {
                sources.push(Source::sst(f, storage, None).await?);
            }
        } else {
            sources.push(Source::level(files.clone(), storage, None, None).await?);
        }
    }
    let mut outputs = Vec::new();
    let mut bytes_written = 0;
    let mut builder = SstBuilder::new(shape);
    let mut last_key: Vec<u8> = Vec::new();
    let mut any = false;
    // Versions of the current key at or below this epoch may still be
    // needed (by the largest snapshot below the last version kept).
    let mut floor: Option<Epoch> = None;
    while let Some(i) = smallest(&sources) {
        let src = &sources[i];
        let key = src.key().unwrap_or_default();
        let stamp = src.stamp();
        if any && key == &last_key[..] {
            if floor.is_none_or(|f| stamp.epoch > f) {
                sources[i].next().await?;
                continue;
            }
        } else {
            any = true;
            last_key.clear();
            last_key.extend_from_slice(key);
            // Cut only between keys: every version of a key lives in one
            // file, so a level's files never overlap and a point read
            // finds all of a key's versions in the one file it opens.
            if !builder.is_empty() && builder.estimated_size() >= target_bytes {
                let full = std::mem::replace(&mut builder, SstBuilder::new(shape));
                let meta = upload(full, storage, next_id()).await?;
                bytes_written += meta.size;
                outputs.push(meta);
            }
        }
        // The lowest read point this version serves, and the snapshot
        // below it that an older version would serve.
        let lowest = snapshots
            .iter()
            .find(|s| **s >= stamp.epoch)
            .copied()
            .unwrap_or(Epoch::MAX);
        floor = snapshots.iter().rev().find(|s| **s < stamp.epoch).copied();
        let value = src.value_slice();
        let dropped = hidden(tombstones, key, stamp, lowest)
            || (value.is_none() && plan.drop_deletes && floor.is_none());
        if !dropped {
            builder.add(key, stamp, value);
        }
        sources[i].next().await?;
    }
    if !builder.is_empty() {
        let meta = upload(builder, storage, next_id()).await?;
        bytes_written += meta.size;
        outputs.push(meta);
    }
    Ok(Outcome {
        outputs,
        bytes_read,
        bytes_written,
    })
}

/// Finishes `builder` and stores it as file `id`.
pub async fn upload(builder: SstBuilder, storage: &Storage, id: FileId) -> Result<SstMeta> {
    let (bytes, props): (Bytes, _) = builder.finish();
    let size = bytes.len() as u64;
    storage
        .store
        .put(&paths::sst(id), PutPayload::from(bytes))
        .await?;
    Ok(SstMeta { id, size, props })
}
