//! Which files to compact next: a pure function of a version, so it can be
//! tested without I/O.

use std::sync::Arc;

use bytes::Bytes;

use crate::keys::Epoch;
use crate::version::{SstHandle, Version};

#[derive(Debug, Clone, Copy)]
pub struct PickerOptions {
    pub l0_trigger: usize,
    pub level_base_bytes: u64,
    pub level_multiplier: u64,
}

impl From<&crate::Options> for PickerOptions {
    fn from(o: &crate::Options) -> Self {
        PickerOptions {
            l0_trigger: o.l0_compaction_trigger,
            level_base_bytes: o.level_base_bytes,
            level_multiplier: o.level_multiplier,
        }
    }
}

/// Why a compaction was planned (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    L0Files,
    LevelSize(usize),
    RangeTombstone,
    Manual,
}

/// A compaction to run: input files by level and where the output goes.
#[derive(Clone)]
pub struct Plan {
    pub reason: Reason,
    /// `(level, files)`; level 0 files may overlap, others are sorted runs.
    pub inputs: Vec<(usize, Vec<Arc<SstHandle>>)>,
    pub output_level: usize,
    /// No deeper level holds keys of this range: point tombstones can go.
    pub drop_deletes: bool,
}

impl Plan {
    pub fn input_files(&self) -> impl Iterator<Item = &Arc<SstHandle>> {
        self.inputs.iter().flat_map(|(_, f)| f.iter())
    }
}

/// Target size of sorted level `level` (1-based).
pub fn level_target(o: &PickerOptions, level: usize) -> u64 {
    let mut t = o.level_base_bytes;
    for _ in 1..level {
        t = t.saturating_mul(o.level_multiplier);
    }
    t
}

/// The next compaction the version needs, if any. `snapshots` are the
/// retained checkpoints' epochs below the committed epoch: a range
/// tombstone with one of them below it cannot be removed yet (that snapshot
/// still sees what it covers), so it waits until they are released.
pub fn pick(v: &Version, o: &PickerOptions, snapshots: &[Epoch]) -> Option<Plan> {
    let committed_l0: Vec<_> = v.levels[0]
        .iter()
        .filter(|f| v.is_committed(f))
        .cloned()
        .collect();
    if !committed_l0.is_empty() && committed_l0.len() >= o.l0_trigger {
        return Some(down(v, Reason::L0Files, 0, committed_l0));
    }
    let last = v.levels.len() - 1;
    for level in 1..last {
        if v.level_bytes(level) > level_target(o, level) {
            // The largest file frees the most room per byte rewritten below.
            let f = v.levels[level]
                .iter()
                .max_by_key(|f| f.meta.size)
                .cloned()?;
            return Some(down(v, Reason::LevelSize(level), level, vec![f]));
        }
    }
    let t = v
        .tombstones
        .iter()
        .find(|t| !snapshots.iter().any(|s| *s < t.stamp.epoch))?;
    Some(range_to_bottom(
        v,
        Reason::RangeTombstone,
        t.start.clone(),
        t.end.clone(),
    ))
}

/// Moves `upper` (files of `from`) into level `from + 1` with what they overlap there.
fn down(v: &Version, reason: Reason, from: usize, upper: Vec<Arc<SstHandle>>) -> Plan {
    let to = from + 1;
    let (lo, hi) = bounds(&upper);
    let lower = v.overlapping(to, &lo, &hi);
    let (lo2, hi2) = bounds(&lower);
    let lo = if lower.is_empty() { lo } else { lo.min(lo2) };
    let hi = if lower.is_empty() { hi } else { hi.max(hi2) };
    let drop_deletes = (to + 1..v.levels.len()).all(|l| v.overlapping(l, &lo, &hi).is_empty());
    Plan {
        reason,
        inputs: vec![(from, upper), (to, lower)],
        output_level: to,
        drop_deletes,
    }
}

/// Every committed file holding keys in `[start, end)`, widened until no
/// file outside the plan overlaps it, merged into the deepest level in use.
pub fn range_to_bottom(v: &Version, reason: Reason, start: Bytes, end: Bytes) -> Plan {
    let mut picked: Vec<Vec<Arc<SstHandle>>> = vec![Vec::new(); v.levels.len()];
    // Closed range [lo, hi] standing for [start, end) (end exclusive): a
    // file overlaps when smallest < end and largest >= start.
    let mut lo = start;
    let mut hi_excl = end;
    let mut hi_incl: Option<Bytes> = None;
    loop {
        let mut grew = false;
        for (l, files) in v.levels.iter().enumerate() {
            for f in files {
                if !v.is_committed(f) || picked[l].iter().any(|p| p.id() == f.id()) {
                    continue;
                }
                let p = f.props();
                let below_end =
                    p.smallest < hi_excl || hi_incl.as_ref().is_some_and(|h| p.smallest <= *h);
                if below_end && p.largest >= lo {
                    picked[l].push(f.clone());
                    lo = lo.min(p.smallest.clone());
                    if hi_incl.as_ref().is_none_or(|h| p.largest > *h) {
                        hi_incl = Some(p.largest.clone());
                    }
                    grew = true;
                }
            }
        }
        if !grew {
            break;
        }
        if let Some(h) = &hi_incl {
            if *h >= hi_excl {
                hi_excl = h.clone();
            }
        }
    }
    let deepest = (1..v.levels.len())
        .rev()
        .find(|&l| !v.levels[l].is_empty())
        .unwrap_or(1);
    for files in picked.iter_mut().skip(1) {
        files.sort_by(|a, b| a.props().smallest.cmp(&b.props().smallest));
    }
    Plan {
        reason,
        inputs: picked
            .into_iter()
            .enumerate()
            .filter(|(_, f)| !f.is_empty())
            .collect(),
        output_level: deepest,
        drop_deletes: true,
    }
}

/// Every committed file, into the deepest level in use (manual full compaction).
pub fn full(v: &Version) -> Plan {
    let mut plan = range_to_bottom(
        v,
        Reason::Manual,
        Bytes::new(),
        Bytes::from_static(&[0xff; 80]),
    );
    // Keys may exceed the 0xff.. sentinel; take every committed file regardless.
    plan.inputs = v
        .levels
        .iter()
        .enumerate()
        .map(|(l, files)| {
            (
                l,
                files
                    .iter()
                    .filter(|f| v.is_committed(f))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, f)| !f.is_empty())
        .collect();
    plan
}

fn bounds(files: &[Arc<SstHandle>]) -> (Bytes, Bytes) {
    let lo = files
        .iter()
        .map(|f| f.props().smallest.clone())
        .min()
        .unwrap_or_default();
    let hi = files
        .iter()
        .map(|f| f.props().largest.clone())
        .max()
        .unwrap_or_default();
    (lo, hi)
}
