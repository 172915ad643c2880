//! Which files to compact next: a pure function of a version, so it can be
//! tested without I/O.
//!
//! # L0: merged among itself until it is worth moving down
//!
//! Every checkpoint flushes its epoch as one L0 file, so with checkpoints
//! each second an L0 file holds about a second of writes: a few MB, against
//! an L1 of `level_base_bytes` (256 MiB). Keys spread over the whole key
//! space (most operators' keys are hashes), so an L0 → L1 compaction
//! rewrites all of L1 however little L0 brings. Moving four such files down
//! rewrote about 30 to 60 bytes of L1 per byte of L0, and made L0 → L1 most
//! of the store's compaction work.
//!
//! So an L0 → L1 compaction runs only when it rewrites at most
//! [`L0_MAX_L1_REWRITE`] bytes of L1 per byte of L0. Until then, once
//! `l0_trigger` committed files wait, the smallest of them are merged into
//! one L0 file, size-tiered: taken smallest first, each next only while it
//! is at most twice the ones taken so far together, and only when that
//! gathers `l0_trigger` files. A byte is then merged within L0 a few times
//! (about log2 of L1 over four flushes) before it moves down. Should sizes
//! differ too much for that, at twice the trigger the smallest files merge
//! whatever their sizes, so L0 never holds more than twice the trigger
//! (a point read probes each one's bloom filter). For flushes of 1 MiB
//! into a 256 MiB L1 this writes about 8 bytes per byte flushed, up to and
//! into L1, where moving down at four files wrote 66.
//!
//! Merging any L0 files into one is correct whichever are taken: reads and
//! merges order the versions of a key in L0 by their stamps, not by file.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::keys::{Epoch, FileId};
use crate::version::{SstHandle, Version};

#[derive(Debug, Clone, Copy)]
pub struct PickerOptions {
    pub l0_trigger: usize,
    pub level_base_bytes: u64,
    pub level_multiplier: u64,
    /// An L0 merge takes at most half of this, so that it writes one
    /// file and always leaves fewer files than it took.
    pub sst_target_bytes: u64,
}

impl From<&crate::Options> for PickerOptions {
    fn from(o: &crate::Options) -> Self {
        PickerOptions {
            l0_trigger: o.l0_compaction_trigger,
            level_base_bytes: o.level_base_bytes,
            level_multiplier: o.level_multiplier,
            sst_target_bytes: o.sst_target_bytes,
        }
    }
}

/// An L0 → L1 compaction waits while it would rewrite more than this many
/// bytes of L1 per byte of L0 (see the module's doc).
pub const L0_MAX_L1_REWRITE: u64 = 4;

/// Why a compaction was planned (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    L0Files,
    /// Small L0 files merged into one L0 file.
    L0Merge,
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
    /// Whether no other compaction may run beside this one (see [`InFlight`]).
    pub fn runs_alone(&self) -> bool {
        matches!(self.reason, Reason::RangeTombstone | Reason::Manual)
    }

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

/// The next compaction the version needs, if any, when compactions run one
/// at a time: the upper lane's, else the deep lane's. `snapshots` are the
/// retained checkpoints' epochs below the committed epoch: a range
/// tombstone with one of them below it cannot be removed yet (that snapshot
/// still sees what it covers), so it waits until they are released.
pub fn pick(v: &Version, o: &PickerOptions, snapshots: &[Epoch]) -> Option<Plan> {
    let idle = InFlight::default();
    pick_in(Lane::Upper, v, o, snapshots, &idle)
        .or_else(|| pick_in(Lane::Deep, v, o, snapshots, &idle))
}

/// The two kinds of compaction that may run at once, each at most one at a
/// time. Without lanes, a long merge of deep levels (tens of seconds at
/// 10 GB) held back every L0 merge behind it: L0 grew past the depth where
/// writes are paced, and a checkpoint's writes waited seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// L0 merges and L0 → L1: what keeps L0 shallow.
    Upper,
    /// Level n → n + 1 for n ≥ 1, and range tombstones to the bottom.
    Deep,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Upper, Lane::Deep];
}

/// What the compactions in progress hold: their input files, and whether
/// one of them must run alone.
///
/// Why "alone": a range compaction writes into the deepest level over a
/// key range widened across every level, gaps between files included. An
/// L0 file committed after it was picked may fall into such a gap; moved
/// down meanwhile, it would land in a level, or over a range, that the
/// range compaction's output is about to cover, and two files of one
/// sorted level would overlap. Busy files alone cannot say so, so such a
/// plan holds back the other lane until it is installed.
#[derive(Debug, Default, Clone)]
pub struct InFlight {
    files: HashSet<FileId>,
    /// Plans in progress that run alone (0 or 1).
    alone: usize,
}

impl InFlight {
    /// Records `plan` as started.
    pub fn start(&mut self, plan: &Plan) {
        self.files.extend(plan.input_files().map(|f| f.id()));
        self.alone += usize::from(plan.runs_alone());
    }

    /// Records `plan` as finished (installed or failed).
    pub fn finish(&mut self, plan: &Plan) {
        for f in plan.input_files() {
            self.files.remove(&f.id());
        }
        self.alone -= usize::from(plan.runs_alone());
    }

    pub fn is_idle(&self) -> bool {
        self.files.is_empty() && self.alone == 0
    }

    fn holds(&self, f: &Arc<SstHandle>) -> bool {
        self.files.contains(&f.id())
    }
}

/// The next compaction of `lane`, none of whose files are busy (held by
/// the other lane's compaction in progress, `busy`). A plan never takes a
/// busy file and never writes into a key range a busy file of its output
/// level covers, so two plans picked this way touch disjoint files and
/// install in either order.
///
/// A range compaction, which takes files of every level, starts only when
/// nothing else runs, and nothing else starts until it is done (see
/// [`InFlight`]). A busy L0 file would belong to one: moving newer L0 files
/// down while older ones stay in L0 would let the older versions shadow
/// the newer.
pub fn pick_in(
    lane: Lane,
    v: &Version,
    o: &PickerOptions,
    snapshots: &[Epoch],
    busy: &InFlight,
) -> Option<Plan> {
    if busy.alone > 0 {
        return None;
    }
    let is_busy = |f: &Arc<SstHandle>| busy.holds(f);
    match lane {
        Lane::Upper => {
            if v.levels[0].iter().any(is_busy) {
                return None;
            }
            pick_l0(v, o, busy)
        }
        Lane::Deep => {
            let last = v.levels.len() - 1;
            for level in 1..last {
                if v.level_bytes(level) > level_target(o, level) {
                    // The largest file frees the most room per byte
                    // rewritten below; a file whose plan would touch a
                    // busy file waits for the next pick.
                    // Reversed first: of files of one size the last is
                    // taken, as before lanes.
                    let mut files: Vec<_> = v.levels[level].iter().rev().cloned().collect();
                    files.sort_by_key(|f| std::cmp::Reverse(f.meta.size));
                    let plan = files
                        .into_iter()
                        .filter(|f| !is_busy(f))
                        .map(|f| down(v, Reason::LevelSize(level), level, vec![f]))
                        .find(|p| !p.input_files().any(is_busy));
                    if plan.is_some() {
                        return plan;
                    }
                }
            }
            if !busy.is_idle() {
                return None;
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
    }
}

/// The upper lane's plan (no L0 file is busy).
fn pick_l0(v: &Version, o: &PickerOptions, busy: &InFlight) -> Option<Plan> {
    let committed_l0: Vec<_> = v.levels[0]
        .iter()
        .filter(|f| v.is_committed(f))
        .cloned()
        .collect();
    if committed_l0.is_empty() || committed_l0.len() < o.l0_trigger {
        return None;
    }
    let l0_bytes: u64 = committed_l0.iter().map(|f| f.meta.size).sum();
    let (lo, hi) = bounds(&committed_l0);
    let l1 = v.overlapping(1, &lo, &hi);
    // L1 files in a deep compaction: L0 cannot move down over them yet.
    let l1_free = !l1.iter().any(|f| busy.holds(f));
    let l1_rewritten: u64 = l1.iter().map(|f| f.meta.size).sum();
    if l1_free && l1_rewritten <= l0_bytes.saturating_mul(L0_MAX_L1_REWRITE) {
        return Some(down(v, Reason::L0Files, 0, committed_l0));
    }
    // Files of about one size first; past twice the trigger, the
    // smallest whatever their sizes, so that L0 stays shallow.
    let deep = committed_l0.len() >= 2 * o.l0_trigger;
    let tier = l0_tier(&committed_l0, o.l0_trigger, 2, o.sst_target_bytes).or_else(|| {
        deep.then(|| l0_tier(&committed_l0, 2, u64::MAX, o.sst_target_bytes))
            .flatten()
    });
    match tier {
        Some(files) => Some(Plan {
            reason: Reason::L0Merge,
            inputs: vec![(0, files)],
            output_level: 0,
            drop_deletes: false,
        }),
        // Files too large to merge within L0 (from large flushes).
        None if deep && l1_free => Some(down(v, Reason::L0Files, 0, committed_l0)),
        None => None,
    }
}

/// The smallest committed L0 files, at least `min` of them: smallest
/// first, each next while it is at most `ratio` times the ones taken so far
/// together (files of about one size, as flushes of one checkpoint
/// interval are; 2 leaves room for intervals that wrote more or less), and
/// while all fit in half an output file of `target` bytes. The merge then
/// writes one file (an output is cut only past its target, and the half
/// leaves room for an open block and for an output compressing worse than
/// its inputs), so it always leaves fewer files than it took.
fn l0_tier(
    files: &[Arc<SstHandle>],
    min: usize,
    ratio: u64,
    target: u64,
) -> Option<Vec<Arc<SstHandle>>> {
    let max = target / 2;
    let mut files = files.to_vec();
    files.sort_by_key(|f| (f.meta.size, f.id()));
    let mut taken = 0u64;
    let mut n = 0;
    for f in &files {
        if n > 0 && (f.meta.size > taken.saturating_mul(ratio) || taken + f.meta.size > max) {
            break;
        }
        taken += f.meta.size;
        n += 1;
    }
    files.truncate(n);
    (n >= min.max(2)).then_some(files)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compaction::test_file as file;
    use crate::keys::FileId;

    const OPTS: PickerOptions = PickerOptions {
        l0_trigger: 4,
        // L1 is never over its target here: only L0 plans are made.
        level_base_bytes: 1 << 40,
        level_multiplier: 10,
        sst_target_bytes: 1 << 20,
    };

    fn version(l0: Vec<Arc<SstHandle>>, l1: Vec<Arc<SstHandle>>) -> Version {
        let mut v = Version::empty(4);
        v.levels[0] = l0;
        v.levels[1] = l1;
        v
    }

    fn l0_of(sizes: &[u64]) -> Vec<Arc<SstHandle>> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, s)| file(i as u64 + 1, "a", "z", *s))
            .collect()
    }

    fn ids(files: &[Arc<SstHandle>]) -> Vec<u64> {
        let mut ids: Vec<u64> = files.iter().map(|f| f.id().0).collect();
        ids.sort();
        ids
    }

    #[test]
    fn l0_moves_down_while_l1_is_at_most_four_times_its_size() {
        let l1 = || vec![file(100, "a", "z", 1600)];
        let plan = pick(&version(l0_of(&[100; 4]), l1()), &OPTS, &[]).unwrap();
        assert_eq!(plan.reason, Reason::L0Files);
        assert_eq!(plan.output_level, 1);
        assert_eq!(ids(&plan.inputs[0].1), vec![1, 2, 3, 4]);
        assert_eq!(ids(&plan.inputs[1].1), vec![100]);
        // Past L1 files it does not overlap, at once.
        let l1 = vec![file(100, "x", "z", 1 << 30)];
        let l0 = vec![
            file(1, "a", "b", 1),
            file(2, "a", "c", 1),
            file(3, "b", "d", 1),
            file(4, "a", "e", 1),
        ];
        let plan = pick(&version(l0, l1), &OPTS, &[]).unwrap();
        assert_eq!(plan.reason, Reason::L0Files);
        assert!(plan.inputs[1].1.is_empty());
        // Into an empty L1 at once.
        let plan = pick(&version(l0_of(&[1; 4]), vec![]), &OPTS, &[]).unwrap();
        assert_eq!(plan.reason, Reason::L0Files);
        // One byte more of L1 and the same files merge within L0.
        let l1 = vec![file(100, "a", "z", 1601)];
        let plan = pick(&version(l0_of(&[100; 4]), l1), &OPTS, &[]).unwrap();
        assert_eq!(plan.reason, Reason::L0Merge);
        assert_eq!(plan.output_level, 0);
        assert!(!plan.drop_deletes);
        assert_eq!(plan.inputs.len(), 1);
        assert_eq!(ids(&plan.inputs[0].1), vec![1, 2, 3, 4]);
    }

    #[test]
    fn an_l0_merge_takes_the_smallest_files_of_about_one_size() {
        let l1 = || vec![file(100, "a", "z", 1 << 40)];
        // 10 + 10 + 10 = 30 and 35 ≤ 60, but 200 > 130.
        let v = version(l0_of(&[200, 10, 35, 10, 10]), l1());
        let plan = pick(&v, &OPTS, &[]).unwrap();
        assert_eq!(plan.reason, Reason::L0Merge);
        assert_eq!(ids(&plan.inputs[0].1), vec![2, 3, 4, 5]);
        // Two of about one size, short of the trigger: nothing yet.
        let sizes = [10, 10, 100, 1000, 10_000, 100_000, 1_000_000];
        assert!(pick(&version(l0_of(&sizes), l1()), &OPTS, &[]).is_none());
        // At twice the trigger the smallest merge whatever their sizes,
        // up to half an output file.
        let mut sizes = sizes.to_vec();
        sizes.push(600_000);
        let plan = pick(&version(l0_of(&sizes), l1()), &OPTS, &[]).unwrap();
        assert_eq!(plan.reason, Reason::L0Merge);
        assert_eq!(ids(&plan.inputs[0].1), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn l0_files_too_large_to_merge_move_down_at_twice_the_trigger() {
        let big = OPTS.sst_target_bytes / 2;
        let l1 = || vec![file(100, "a", "z", 100 * big)];
        assert!(pick(&version(l0_of(&[big; 7]), l1()), &OPTS, &[]).is_none());
        let plan = pick(&version(l0_of(&[big; 8]), l1()), &OPTS, &[]).unwrap();
        assert_eq!(plan.reason, Reason::L0Files);
        assert_eq!(plan.inputs[0].1.len(), 8);
    }

    /// L0 of four files over two L1 files, over two L2 files, with L1 over
    /// its target: both lanes have work.
    fn two_lane_version() -> (Version, PickerOptions) {
        let mut v = version(
            l0_of(&[100; 4]),
            vec![file(10, "a", "m", 1000), file(11, "n", "z", 600)],
        );
        v.levels[2] = vec![file(20, "a", "f", 500), file(21, "g", "z", 500)];
        let o = PickerOptions {
            level_base_bytes: 1000,
            ..OPTS
        };
        (v, o)
    }

    fn busy_of(plan: &Plan) -> InFlight {
        let mut busy = InFlight::default();
        busy.start(plan);
        busy
    }

    fn busy_files(ids: &[u64]) -> InFlight {
        InFlight {
            files: ids.iter().map(|i| FileId(*i)).collect(),
            alone: 0,
        }
    }

    #[test]
    fn lanes_running_at_once_take_disjoint_files() {
        let (v, o) = two_lane_version();
        let none = InFlight::default();
        // The deep lane first: L1's largest file and what it overlaps in L2.
        let deep = pick_in(Lane::Deep, &v, &o, &[], &none).unwrap();
        assert_eq!(deep.reason, Reason::LevelSize(1));
        assert_eq!(ids(&deep.inputs[0].1), vec![10]);
        assert_eq!(ids(&deep.inputs[1].1), vec![20, 21]);
        // L0 cannot move down over file 10 meanwhile, but it can merge.
        let busy = busy_of(&deep);
        let upper = pick_in(Lane::Upper, &v, &o, &[], &busy).unwrap();
        assert_eq!(upper.reason, Reason::L0Merge);
        assert!(upper.input_files().all(|f| !busy.holds(f)));
        // Without the deep lane running, the same L0 moves down.
        let alone = pick_in(Lane::Upper, &v, &o, &[], &none).unwrap();
        assert_eq!(alone.reason, Reason::L0Files);
        assert_eq!(ids(&alone.inputs[1].1), vec![10, 11]);
        // And then the deep lane finds no L1 file it may take.
        assert!(pick_in(Lane::Deep, &v, &o, &[], &busy_of(&alone)).is_none());
        // Sequential picking is the upper lane's, then the deep lane's.
        assert_eq!(pick(&v, &o, &[]).unwrap().reason, Reason::L0Files);
    }

    #[test]
    fn the_deep_lane_passes_over_busy_files_to_the_next_largest() {
        let (v, o) = two_lane_version();
        let busy = busy_files(&[10]);
        let plan = pick_in(Lane::Deep, &v, &o, &[], &busy).unwrap();
        assert_eq!(ids(&plan.inputs[0].1), vec![11]);
        assert_eq!(ids(&plan.inputs[1].1), vec![21]);
        // Its file below busy as well: nothing for now.
        let busy = busy_files(&[10, 21]);
        assert!(pick_in(Lane::Deep, &v, &o, &[], &busy).is_none());
    }

    #[test]
    fn range_compactions_run_alone_and_hold_back_the_upper_lane() {
        let (mut v, o) = two_lane_version();
        v.levels[1].clear();
        v.tombstones.push(crate::range_tombstone::RangeTombstone {
            start: Bytes::from_static(b"b"),
            end: Bytes::from_static(b"c"),
            stamp: crate::keys::Stamp {
                epoch: Epoch(0),
                seq: 1,
            },
        });
        let none = InFlight::default();
        let range = pick_in(Lane::Deep, &v, &o, &[], &none).unwrap();
        assert_eq!(range.reason, Reason::RangeTombstone);
        // Not while anything else runs.
        let merging = busy_files(&[1, 2]);
        assert!(pick_in(Lane::Deep, &v, &o, &[], &merging).is_none());
        // While it runs, L0 files it holds keep the upper lane waiting:
        // newer files moving down past older ones left in L0 would be
        // shadowed by them.
        assert!(range.inputs[0].0 == 0);
        assert!(pick_in(Lane::Upper, &v, &o, &[], &busy_of(&range)).is_none());
    }

    /// What the background sweep of `tests/faults.rs` found: a range
    /// compaction that held no L0 file let L0 move down beside it, into a
    /// gap of the range its output was about to cover, and two L1 files
    /// overlapped once both were installed.
    #[test]
    fn a_range_compaction_holding_no_l0_file_still_holds_back_the_upper_lane() {
        let mut v = version(
            Vec::new(),
            vec![file(10, "a", "c", 100), file(11, "x", "z", 100)],
        );
        v.tombstones.push(crate::range_tombstone::RangeTombstone {
            start: Bytes::from_static(b"b"),
            end: Bytes::from_static(b"y"),
            stamp: crate::keys::Stamp {
                epoch: Epoch(0),
                seq: 1,
            },
        });
        let range = pick_in(Lane::Deep, &v, &OPTS, &[], &InFlight::default()).unwrap();
        assert_eq!(range.reason, Reason::RangeTombstone);
        assert_eq!(range.output_level, 1);
        assert!(range.inputs.iter().all(|(level, _)| *level == 1));
        // L0 files committed after that pick, all in the gap "d".."w".
        v.levels[0] = (1..=4).map(|i| file(i, "m", "n", 100)).collect();
        let mut busy = busy_of(&range);
        assert!(pick_in(Lane::Upper, &v, &OPTS, &[], &busy).is_none());
        assert!(pick_in(Lane::Deep, &v, &OPTS, &[], &busy).is_none());
        // Once it is done, they move down.
        busy.finish(&range);
        assert!(busy.is_idle());
        let down = pick_in(Lane::Upper, &v, &OPTS, &[], &busy).unwrap();
        assert_eq!(down.reason, Reason::L0Files);
    }

    #[test]
    fn uncommitted_l0_files_are_never_merged() {
        let mut l0 = l0_of(&[10; 4]);
        let mut meta = l0[3].meta.clone();
        meta.props.max_epoch = Epoch(9);
        l0[3] = Arc::new(SstHandle::new(meta, Default::default()));
        let v = version(l0.clone(), vec![file(100, "a", "z", 100_000)]);
        assert!(pick(&v, &OPTS, &[]).is_none());
        l0.push(file(5, "a", "z", 10));
        let v = version(l0, vec![file(100, "a", "z", 100_000)]);
        let plan = pick(&v, &OPTS, &[]).unwrap();
        assert_eq!(ids(&plan.inputs[0].1), vec![1, 2, 3, 5]);
    }

    /// Flushes of 1/256 of L1 on average, as 1 MiB checkpoints into a
    /// 256 MiB L1: the bytes written from flush to L1 per byte flushed, and
    /// the deepest L0 gets. Moving four files down each time would write 66 per
    /// byte (4 MiB of L0 rewriting 256 MiB of L1), with 4 files at most.
    #[test]
    fn small_flushes_reach_l1_with_a_few_writes_per_byte_and_a_shallow_l0() {
        let flush = 1u64 << 12;
        let l1_bytes = 256 * flush;
        let opts = PickerOptions {
            sst_target_bytes: 64 * flush,
            ..OPTS
        };
        let mut l0: Vec<Arc<SstHandle>> = Vec::new();
        let (mut flushed, mut written, mut deepest, mut next_id) = (0u64, 0u64, 0usize, 1u64);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..4096 {
            // Intervals write from 0.3 to 1.7 times the mean.
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let size = flush * 3 / 10 + (rng >> 33) % (flush * 14 / 10);
            l0.push(file(next_id, "a", "z", size));
            next_id += 1;
            flushed += size;
            written += size;
            deepest = deepest.max(l0.len());
            // The L1 stays at its size: what it gains moves on below.
            while let Some(plan) = pick(
                &version(l0.clone(), vec![file(0, "a", "z", l1_bytes)]),
                &opts,
                &[],
            ) {
                let taken: Vec<FileId> = plan.inputs[0].1.iter().map(|f| f.id()).collect();
                let bytes: u64 = plan.inputs[0].1.iter().map(|f| f.meta.size).sum();
                l0.retain(|f| !taken.contains(&f.id()));
                match plan.reason {
                    Reason::L0Merge => {
                        l0.push(file(next_id, "a", "z", bytes));
                        next_id += 1;
                        written += bytes;
                    }
                    Reason::L0Files => written += bytes + l1_bytes,
                    other => panic!("unexpected plan {other:?}"),
                }
            }
        }
        let per_byte = written as f64 / flushed as f64;
        assert!(
            per_byte < 10.0,
            "{per_byte:.1} bytes written per byte flushed"
        );
        assert!(deepest <= 2 * opts.l0_trigger, "L0 reached {deepest} files");
    }
}
