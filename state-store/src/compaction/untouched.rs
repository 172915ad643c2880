//! Files of the level below that a compaction leaves where they are.
//!
//! A plan that moves files of level n (or L0) into level n + 1 takes every
//! file of n + 1 that their key *range* overlaps. Ranges overlap far more
//! often than keys do. A job's keys start with `table | key group`, and the
//! keys of many operators grow with time inside a group (auction ids, window
//! starts, sequence numbers). An upper file then holds each group's newest
//! keys, a lower file a few groups' older ones: the upper file's range spans
//! the lower file's, yet none of its keys falls inside it, and rewriting
//! that lower file would change no byte of it. With q9 at about 1 GB of
//! state, the store wrote about four bytes per byte the job shipped.
//!
//! So before a plan runs, each of its lower files is checked against the
//! upper files' keys ([`SstReader::has_key_in`]: the index, else one block).
//! A file no upper key falls in stays in its level, out of the plan, and its
//! first key becomes a *fence*: the merge ends an output file before a key
//! past a fence (`executor.rs`), so no output spans a kept file and the
//! level stays a sorted run of disjoint files. The other lower files' keys
//! cannot fall in a kept file's range either (files of a level are
//! disjoint), so no key the merge sees lies in it.
//!
//! Nothing a reader sees changes. A kept file keeps every version it had,
//! and the merge drops versions key by key, of keys the kept file does not
//! hold. A point tombstone is dropped only when no *deeper* level holds its
//! key, which the kept file, at the output level, is not. A range tombstone
//! applied by the merge stays in the version while a file it covers
//! remains that the merge did not rewrite (`store.rs::apply_compaction`),
//! which includes the kept files. Range compactions, which exist to apply
//! tombstones to every file they cover, are left as they are.
//!
//! Files are cut at key-group boundaries in sorted levels (`executor.rs`)
//! so that a group's old keys sit in files of their own, which is what lets
//! them be kept.

use std::sync::Arc;

use bytes::Bytes;

use super::picker::{Plan, Reason};
use crate::error::Result;
use crate::sst::SstReader;
use crate::storage::Storage;

/// `plan` without the lower files no upper key falls in, and the first keys
/// of those files, ascending (the fences its merge cuts outputs at).
pub async fn leave_untouched(plan: Plan, storage: &Storage) -> Result<(Plan, Vec<Bytes>)> {
    if !matches!(plan.reason, Reason::L0Files | Reason::LevelSize(_)) {
        return Ok((plan, Vec::new()));
    }
    let out = plan.output_level;
    let mut upper: Vec<Arc<SstReader>> = Vec::new();
    for (_, files) in plan.inputs.iter().filter(|(level, _)| *level != out) {
        for f in files {
            upper.push(f.reader(&storage.store, &storage.cache).await?.clone());
        }
    }
    let Plan {
        reason,
        inputs,
        output_level,
        drop_deletes,
    } = plan;
    let mut narrowed = Vec::with_capacity(inputs.len());
    let mut fences = Vec::new();
    for (level, files) in inputs {
        if level != out {
            narrowed.push((level, files));
            continue;
        }
        let mut rewritten = Vec::with_capacity(files.len());
        for f in files {
            let props = f.props();
            let mut touched = false;
            for r in &upper {
                if r.has_key_in(&props.smallest, &props.largest).await? {
                    touched = true;
                    break;
                }
            }
            if touched {
                rewritten.push(f);
            } else {
                fences.push(props.smallest.clone());
            }
        }
        narrowed.push((level, rewritten));
    }
    fences.sort();
    let plan = Plan {
        reason,
        inputs: narrowed,
        output_level,
        drop_deletes,
    };
    Ok((plan, fences))
}
