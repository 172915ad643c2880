//! Runs a plan: merges the input files, keeps the versions of each key that
//! some reader may still see, applies committed range tombstones, drops
//! point tombstones where the plan allows, and writes output files cut at
//! the target size.
//!
//! # Where outputs are cut
//!
//! Only between keys, so that every version of a key lives in one file. An
//! output ends once it reaches the target size, before a key past a fence
//! (the first key of a lower file the plan leaves in place, see
//! `untouched.rs`), and, in sorted levels, where the key group changes once
//! it holds [`GROUP_CUT_FRACTION`] of the target: a group's old keys then
//! sit in files of their own that later compactions can leave alone.
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
//!
//! # Subcompactions
//!
//! A plan's key range is cut into up to `subcompactions` parts at the
//! starts of files of its sorted-level inputs, balanced by bytes, and the
//! parts are merged at once on separate tasks. Every version of a key falls
//! in one part (a cut is a key, and a part holds the keys `>= ` its start and
//! `<` the next part's), so the parts' outputs, concatenated in order, are
//! one sorted run, exactly as one merge would have written it. Without
//! parts, one long merge of a deep level holds back the L0 compaction that
//! writers wait for (it needs the same L1 files), and uses one core of many.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload};

use super::picker::Plan;
use crate::error::{Error, Result};
use crate::keys::{Epoch, FileId, KEY_PREFIX_LEN};
use crate::merge::{Merge, Source};
use crate::paths;
use crate::range_tombstone::{hidden, RangeTombstone};
use crate::sst::{SstBuilder, SstShape};
use crate::storage::Storage;
use crate::version::SstMeta;

/// What a compaction wrote and read.
pub struct Outcome {
    pub outputs: Vec<SstMeta>,
    /// How many parts were merged at once.
    pub parts: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

/// Everything a merge needs, owned, so that parts can run on their own tasks.
#[derive(Clone)]
pub struct Job {
    pub plan: Plan,
    pub tombstones: Vec<RangeTombstone>,
    pub storage: Storage,
    pub shape: SstShape,
    pub target_bytes: u64,
    /// Epochs of the retained checkpoints below the committed epoch, ascending.
    pub snapshots: Vec<Epoch>,
    /// The store's file id counter.
    pub ids: Arc<AtomicU64>,
    /// First keys of the lower files the plan leaves in place, ascending:
    /// no output may span one (`untouched.rs`).
    pub fences: Vec<Bytes>,
}

/// In a sorted level, an output ends where the key group (or table) changes
/// once it holds `1 / GROUP_CUT_FRACTION` of the target size.
pub const GROUP_CUT_FRACTION: u64 = 32;

/// Runs the job's plan in up to `subcompactions` parts at once.
pub async fn execute(job: Job, subcompactions: usize) -> Result<Outcome> {
    let bytes_read = job.plan.input_files().map(|f| f.meta.size).sum();
    let cuts = split_keys(&job.plan, subcompactions);
    let parts = cuts.len() + 1;
    let mut outputs = Vec::new();
    if cuts.is_empty() {
        outputs = merge_part(&job, None, None).await?;
    } else {
        let mut starts = vec![None];
        starts.extend(cuts.iter().cloned().map(Some));
        let mut ends: Vec<Option<Bytes>> = cuts.into_iter().map(Some).collect();
        ends.push(None);
        let tasks: Vec<_> = starts
            .into_iter()
            .zip(ends)
            .map(|(start, end)| {
                let job = job.clone();
                tokio::spawn(async move { merge_part(&job, start, end).await })
            })
            .collect();
        // Every part is awaited, also after one failed: none may still be
        // writing a file once the compaction has returned.
        let mut first_error = None;
        for t in tasks {
            match t.await {
                Ok(Ok(part)) => outputs.extend(part),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error
                        .get_or_insert(Error::Closed(format!("a subcompaction task failed: {e}")));
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
    }
    let bytes_written = outputs.iter().map(|m| m.size).sum();
    Ok(Outcome {
        outputs,
        parts,
        bytes_read,
        bytes_written,
    })
}

/// Up to `parts - 1` keys, ascending, that cut the plan into parts of
/// about equal bytes: starts of the files of its largest sorted-level
/// input (the level below, most often, which holds most of the bytes).
/// None when the plan has no sorted level of two files or more to cut at.
pub fn split_keys(plan: &Plan, parts: usize) -> Vec<Bytes> {
    let Some((_, files)) = plan
        .inputs
        .iter()
        .filter(|(level, files)| *level > 0 && files.len() >= 2)
        .max_by_key(|(_, files)| files.iter().map(|f| f.meta.size).sum::<u64>())
    else {
        return Vec::new();
    };
    let parts = parts.min(files.len()).max(1);
    let total: u64 = files.iter().map(|f| f.meta.size).sum();
    let mut cuts: Vec<Bytes> = Vec::new();
    let mut below = 0u64;
    for (i, f) in files.iter().enumerate() {
        // Cut before file i when the bytes before it reach the next share.
        let share = total * (cuts.len() as u64 + 1) / parts as u64;
        if i > 0 && below >= share && cuts.len() + 1 < parts {
            cuts.push(f.props().smallest.clone());
        }
        below += f.meta.size;
    }
    cuts
}

/// Merges the keys in `[start, end)` of every input into output files.
async fn merge_part(job: &Job, start: Option<Bytes>, end: Option<Bytes>) -> Result<Vec<SstMeta>> {
    let Job {
        plan,
        tombstones,
        storage,
        shape,
        target_bytes,
        snapshots,
        ids,
        fences,
    } = job;
    let (shape, target_bytes) = (*shape, *target_bytes);
    let group_cut_bytes = if plan.output_level > 0 {
        (target_bytes / GROUP_CUT_FRACTION).max(1)
    } else {
        u64::MAX
    };
    let mut fence = 0;
    let next_id = || FileId(ids.fetch_add(1, Ordering::Relaxed));
    let mut sources = Vec::new();
    for (level, files) in &plan.inputs {
        if *level == 0 {
            for f in files {
                sources.push(Source::sst(f, storage, start.as_deref()).await?);
            }
        } else {
            sources
                .push(Source::level(files.clone(), storage, start.as_deref(), end.clone()).await?);
        }
    }
    let mut outputs = Vec::new();
    let mut builder = SstBuilder::new(shape);
    let mut last_key: Vec<u8> = Vec::new();
    let mut any = false;
    // Versions of the current key at or below this epoch may still be
    // needed (by the largest snapshot below the last version kept).
    let mut floor: Option<Epoch> = None;
    let mut merge = Merge::new(sources);
    // No yields to the runtime between entries: in an embedded job the
    // merge shares the runtime with every operator task, and a merge that
    // yielded every 256 entries waited behind all of them each time. It fell
    // behind, writes were paced for its backlog, and q9's checkpoints at
    // 3.7 GB of state went from a p99 of 3.6 s to 15.5 s.
    while let Some(src) = merge.top() {
        let key = src.key().unwrap_or_default();
        if end.as_ref().is_some_and(|e| key >= &e[..]) {
            break;
        }
        let stamp = src.stamp();
        if any && key == &last_key[..] {
            if floor.is_none_or(|f| stamp.epoch > f) {
                merge.advance().await?;
                continue;
            }
        } else {
            any = true;
            let mut past_fence = false;
            while fences.get(fence).is_some_and(|f| &f[..] <= key) {
                fence += 1;
                past_fence = true;
            }
            let new_group = key.get(..KEY_PREFIX_LEN) != last_key.get(..KEY_PREFIX_LEN);
            last_key.clear();
            last_key.extend_from_slice(key);
            // Cut only between keys: every version of a key lives in one
            // file, so a level's files never overlap and a point read
            // finds all of a key's versions in the one file it opens.
            let size = builder.estimated_size();
            if !builder.is_empty()
                && (size >= target_bytes || past_fence || (new_group && size >= group_cut_bytes))
            {
                let full = std::mem::replace(&mut builder, SstBuilder::new(shape));
                outputs.push(upload(full, storage, next_id()).await?);
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
        merge.advance().await?;
    }
    if !builder.is_empty() {
        outputs.push(upload(builder, storage, next_id()).await?);
    }
    Ok(outputs)
}

/// Finishes `builder` and stores it as file `id`.
///
/// Finishing builds the file's filter and index: tens of milliseconds for a
/// file of millions of keys, which on a runtime worker would hold back
/// every request queued behind it, so it runs on a blocking thread.
pub async fn upload(builder: SstBuilder, storage: &Storage, id: FileId) -> Result<SstMeta> {
    let (bytes, props): (Bytes, _) = tokio::task::spawn_blocking(move || builder.finish())
        .await
        .map_err(|e| Error::Closed(format!("finishing file {} failed: {e}", id.0)))?;
    let size = bytes.len() as u64;
    storage
        .store
        .put(&paths::sst(id), PutPayload::from(bytes))
        .await?;
    Ok(SstMeta { id, size, props })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::{test_file as file, Reason};
    use crate::version::SstHandle;

    fn plan(inputs: Vec<(usize, Vec<Arc<SstHandle>>)>) -> Plan {
        Plan {
            reason: Reason::Manual,
            inputs,
            output_level: 2,
            drop_deletes: false,
        }
    }

    #[test]
    fn cuts_fall_at_file_starts_of_the_largest_level_balanced_by_bytes() {
        let upper = vec![file(1, "a", "z", 10)];
        let lower = vec![
            file(2, "b", "c", 100),
            file(3, "d", "e", 100),
            file(4, "f", "g", 100),
            file(5, "h", "i", 100),
        ];
        let p = plan(vec![(1, upper.clone()), (2, lower.clone())]);
        assert_eq!(split_keys(&p, 2), vec![Bytes::from_static(b"f")]);
        assert_eq!(
            split_keys(&p, 4),
            vec![
                Bytes::from_static(b"d"),
                Bytes::from_static(b"f"),
                Bytes::from_static(b"h")
            ]
        );
        // More parts than files: one part per file at most.
        assert_eq!(split_keys(&p, 64).len(), 3);
        assert!(split_keys(&p, 1).is_empty());
        // A heavy first file takes its share alone.
        let skewed = vec![
            file(6, "b", "c", 1000),
            file(7, "d", "e", 10),
            file(8, "f", "g", 10),
        ];
        let p = plan(vec![(2, skewed)]);
        assert_eq!(split_keys(&p, 2), vec![Bytes::from_static(b"d")]);
    }

    #[test]
    fn nothing_to_cut_without_a_sorted_level_of_two_files() {
        let l0 = vec![file(1, "a", "z", 10), file(2, "a", "z", 10)];
        assert!(split_keys(&plan(vec![(0, l0.clone())]), 4).is_empty());
        let p = plan(vec![(0, l0), (1, vec![file(3, "a", "m", 10)])]);
        assert!(split_keys(&p, 4).is_empty());
    }
}
