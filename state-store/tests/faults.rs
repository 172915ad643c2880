//! Crash safety of checkpoint commits, compactions and file deletion, shown
//! by injecting a fault at every mutating object-store operation of a
//! workload, one operation and one kind of fault at a time.
//!
//! Why: the store's durability rests on the order of its writes to object
//! storage. An SST is written before a manifest names it; a manifest
//! version is created (by compare-and-swap) before the files it drops are
//! deleted; files no manifest names are collected at open. An error or a
//! crash between any two of those steps must leave a store that reopens at
//! a committed epoch with that epoch's contents, with every retained
//! checkpoint readable, and with no file leaked. The kill test (`crash.rs`)
//! lands at random points of a real process; this test lands at each point
//! in turn, including the ones a kill rarely hits (between a compaction's
//! manifest write and its deletions, say), and the one no kill can produce:
//! a request that took effect although its caller saw an error.
//!
//! How: a seeded workload (random puts, deletes and range deletes over a few
//! hundred keys; checkpoints and plain commits; flushes; compactions) runs
//! once without faults, recording its N mutating operations, then once per
//! operation and per [`FaultKind`]: that put or delete fails once (before
//! or after it took effect), or the process "crashes" there (with or
//! without it taking effect) and every later operation, reads included,
//! fails. The store runs on a [`FaultyStore`] over a local directory. An
//! operation is found again by its kind and object path, which the workload
//! makes the same in every run; the background sweep, whose file names
//! depend on timing, counts the background tasks' operations instead.
//!
//! A failed call stops the workload after a crash; after a plain failure
//! the workload carries on, as a caller that retries would. The store is
//! then dropped (crash) or closed (failure), and the directory is reopened
//! with a plain store, which must show:
//! - (a) as committed epoch the last one whose commit returned `Ok`, or one
//!   whose commit returned an error after its manifest version was written;
//! - (b) at that epoch, exactly the model's contents (a full scan, and
//!   point reads of sampled keys and of every file's first and last key);
//! - (c) as retained checkpoints the last `retained_checkpoints` of those
//!   committed, each reading exactly as the model did;
//! - (d) after the close that follows, exactly the objects the manifest
//!   names: each `sst/` file is one the newest manifest lists and the
//!   reverse, and no more manifest versions than the store keeps.
//!
//! A second open, a full compaction and a close must then keep (b)–(d). The
//! version's invariants are checked after each open, and a panic in any task
//! breaks the case.
//!
//! Every case runs, and a test fails at the end with all broken cases, each
//! named `<FaultKind>@<op number in the baseline>`, with what went wrong and
//! the op trace around the fault, then a summary by check. To rerun a few:
//! `RIVERBED_FAULTS_ONLY=FailAfter@7,CrashBefore@12 cargo nextest run -p
//! riverbed-state-store --test faults`.

mod common;
#[path = "common/faulty.rs"]
mod faulty;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::ObjectStore;
use parking_lot::Mutex;

use common::{backend, runtime, small_options, Kind};
use faulty::{Fault, FaultKind, Faults, FaultyStore, OpKind, OpRecord, Scope, Target};
use riverbed_state_store::manifest::ManifestStore;
use riverbed_state_store::{
    full_key, namespace, paths, CheckpointMeta, Epoch, KeyGroup, MetricsSnapshot, Options, Store,
    TableId, WriteBatch,
};

const KEYS: u16 = 600;
const EPOCHS: u64 = 12;
const OPS_PER_BATCH: usize = 25;
const JOB: &str = "faults";
/// `Options::retained_checkpoints` of `small_options` (the default).
const RETAINED: usize = 3;
/// Manifest versions the store keeps: the newest and `KEEP_OLD` = 2 older.
const MANIFEST_VERSIONS_KEPT: usize = 3;
/// Far above a case's real time (well under a second): only a hang hits it.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// A fault at every mutating operation of a workload that commits,
/// checkpoints, flushes and compacts by hand (background compaction off),
/// in each of the four ways.
#[test]
fn every_fault_point_of_commit_compaction_and_deletion_is_crash_safe() {
    let w = Workload::generate(0x5eed_0001, true);
    sweep("manual compaction", &w, false, Scope::All, |trace| {
        // The baseline must really have exercised what the test is about.
        for (what, found) in [
            (
                "a checkpoint commit",
                has(trace, OpKind::Put, "manifest", "checkpoint"),
            ),
            (
                "a compaction",
                has(trace, OpKind::Put, "manifest", "compact"),
            ),
            ("a file deletion", has(trace, OpKind::Delete, "sst", "")),
        ] {
            assert!(found, "the workload made no {what}");
        }
    });
}

/// A fault at every operation the background tasks (flusher, compactor,
/// deleter) issue, with compaction in the background: a failed or crashed
/// background compaction never breaks a retained checkpoint.
#[test]
fn faults_in_background_compaction_keep_checkpoints_intact() {
    let w = Workload::generate(0x5eed_0002, false);
    sweep(
        "background compaction",
        &w,
        true,
        Scope::Background,
        |trace| {
            let compaction = trace
                .iter()
                .any(|r| r.background.is_some() && folder(&r.path) == "manifest");
            assert!(compaction, "no compaction ran in the background");
        },
    );
}

/// What the sweeps above found without any fault (most seeds of the
/// background sweep's workload break even their fault-free baseline): a
/// compaction cuts its output files wherever the size target falls, also
/// between two versions of one key that retained checkpoints keep apart. The
/// two files of a sorted level then share that key; a point read looks in
/// only one of them (the first whose range holds the key) and misses the
/// versions in the other, and once one of the two moves down a level, an
/// older version can shadow a newer one. One key, eight checkpointed
/// versions of 400 bytes, 1 KiB files: the versions must stay readable.
#[test]
fn compaction_never_splits_the_versions_of_a_key_across_files() {
    record_panics();
    runtime().block_on(async {
        let b = backend(Kind::Local, "split-versions");
        let opts = Options {
            sst_target_bytes: 1024,
            retained_checkpoints: 8,
            background_compaction: false,
            ..small_options(&b)
        };
        let store = Store::open(opts).await.expect("open");
        let k = key(1);
        // Random hex: incompressible enough that each version is ~200 bytes
        // of its file.
        let value = |e: u64| {
            let mut rng = Rng(e);
            let hex: String = (0..25).map(|_| format!("{:016x}", rng.next())).collect();
            Bytes::from(format!("e{e}-{hex}"))
        };
        for e in 1..=8 {
            let mut batch = WriteBatch::new();
            batch.put(&k, value(e));
            store.write(Epoch(e), &batch).await.expect("write");
            let meta = CheckpointMeta {
                job: JOB.into(),
                ..Default::default()
            };
            store
                .commit_checkpoint(Epoch(e), meta)
                .await
                .expect("checkpoint");
        }
        store.compact().await.expect("compact");
        let files = store.metrics().files_per_level;
        let mut wrong = Vec::new();
        for e in 1..=8 {
            let got = store.get(&k, Epoch(e)).await.expect("get");
            if got != Some(value(e)) {
                wrong.push(format!(
                    "epoch {e}: {:?}",
                    got.map(|v| String::from_utf8_lossy(&v[..4]).into_owned())
                ));
            }
        }
        let invariants = expecting_panic(|| store.check_invariants()).map_err(|p| panic_text(&*p));
        store.close().await.expect("close");
        assert!(
            wrong.is_empty() && invariants.is_ok(),
            "after a full compaction into files per level {files:?}: \
             invariants {invariants:?}; reads at these checkpoints are wrong: {wrong:?}"
        );
    });
}

/// Whether `trace` holds a `kind` operation on a file of `dir` during a
/// phase starting with `phase`.
fn has(trace: &[OpRecord], kind: OpKind, dir: &str, phase: &str) -> bool {
    trace
        .iter()
        .any(|r| r.kind == kind && folder(&r.path) == dir && r.phase.starts_with(phase))
}

/// The folder an object is in (`sst`, `manifest`), wherever the store's
/// root is.
fn folder(path: &str) -> &str {
    path.rsplit('/').nth(1).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// The workload and its model.

/// splitmix64: the workload's seeded randomness, without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Key `n`: spread over 4 key groups of one table.
fn key(n: u16) -> Bytes {
    full_key(TableId(1), KeyGroup(n % 4), format!("key{n:04}").as_bytes())
}

enum Step {
    Write(Epoch, WriteBatch),
    Flush,
    Commit(Epoch),
    Checkpoint(Epoch),
    Compact,
    CompactUntilIdle,
}

impl Step {
    fn label(&self) -> String {
        match self {
            Step::Write(e, _) => format!("write e{}", e.0),
            Step::Flush => "flush".into(),
            Step::Commit(e) => format!("commit e{}", e.0),
            Step::Checkpoint(e) => format!("checkpoint e{}", e.0),
            Step::Compact => "compact".into(),
            Step::CompactUntilIdle => "compact_until_idle".into(),
        }
    }
}

struct Workload {
    steps: Vec<Step>,
    /// What epoch `e` sees once committed: every write of epochs up to `e`
    /// (`models[0]` is the empty store). A failed commit leaves its writes
    /// to the next commit, so this holds whichever commit got through.
    models: Vec<BTreeMap<Bytes, Bytes>>,
}

impl Workload {
    /// Per epoch: three batches (a flush before the third every third
    /// epoch), then a plain commit every fourth epoch and a checkpoint
    /// otherwise; with `compactions`, a full compaction every fifth epoch
    /// and background-style compactions every other one.
    fn generate(seed: u64, compactions: bool) -> Workload {
        let mut rng = Rng(seed);
        let mut model = BTreeMap::new();
        let mut models = vec![model.clone()];
        let mut steps = Vec::new();
        for e in 1..=EPOCHS {
            let epoch = Epoch(e);
            for b in 0..3 {
                if b == 2 && e % 3 == 0 {
                    steps.push(Step::Flush);
                }
                steps.push(Step::Write(epoch, random_batch(&mut rng, e, &mut model)));
            }
            models.push(model.clone());
            steps.push(if e % 4 == 0 {
                Step::Commit(epoch)
            } else {
                Step::Checkpoint(epoch)
            });
            if compactions && e % 5 == 0 {
                steps.push(Step::Compact);
            } else if compactions && e % 2 == 0 {
                steps.push(Step::CompactUntilIdle);
            }
        }
        Workload { steps, models }
    }
}

/// Mostly puts, some deletes, a rare range delete of a few keys; applied
/// to `model` too.
fn random_batch(rng: &mut Rng, epoch: u64, model: &mut BTreeMap<Bytes, Bytes>) -> WriteBatch {
    let mut batch = WriteBatch::with_capacity(OPS_PER_BATCH);
    for _ in 0..OPS_PER_BATCH {
        let k = key(rng.below(KEYS.into()) as u16);
        match rng.below(40) {
            0..=31 => {
                // Random hex, so that blocks do not compress to nothing.
                let words = 1 + rng.below(5);
                let v: String = (0..words).map(|_| format!("{:016x}", rng.next())).collect();
                let v = Bytes::from(format!("e{epoch}-{v}"));
                batch.put(&k, &v);
                model.insert(k, v);
            }
            32..=38 => {
                batch.delete(&k);
                model.remove(&k);
            }
            _ => {
                // A few keys of one key group: key `n + 4 i` is in `n`'s.
                let n = rng.below(u64::from(KEYS) - 32) as u16;
                let (start, end) = (key(n), key(n + 4 * (1 + rng.below(8) as u16)));
                batch.delete_range(&start, &end);
                model.retain(|key, _| key < &start || key >= &end);
            }
        }
    }
    batch
}

// ---------------------------------------------------------------------------
// Running one case.

/// What the workload's calls returned.
#[derive(Default)]
struct Outcome {
    /// The last epoch whose commit returned `Ok` (0: none).
    last_ok: u64,
    /// Epochs whose commit returned an error: one may still have landed.
    failed_commits: BTreeSet<u64>,
    ok_checkpoints: Vec<u64>,
    failed_checkpoints: BTreeSet<u64>,
    /// Every error a call returned, with the step.
    errors: Vec<String>,
    /// The store's counters at the end of the workload.
    metrics: Option<MetricsSnapshot>,
}

impl Outcome {
    fn commit_returned(&mut self, epoch: Epoch, ok: bool, checkpoint: bool) {
        match (ok, checkpoint) {
            (true, true) => self.ok_checkpoints.push(epoch.0),
            (false, true) => drop(self.failed_checkpoints.insert(epoch.0)),
            _ => {}
        }
        if ok {
            self.last_ok = epoch.0;
        } else {
            self.failed_commits.insert(epoch.0);
        }
    }

    /// The checkpoints a store reopened at `committed` must retain.
    fn expected_checkpoints(&self, committed: u64) -> Vec<u64> {
        let mut cps: Vec<u64> = self
            .ok_checkpoints
            .iter()
            .copied()
            .filter(|e| *e <= committed)
            .collect();
        if committed > self.last_ok && self.failed_checkpoints.contains(&committed) {
            cps.push(committed);
        }
        cps.split_off(cps.len().saturating_sub(RETAINED))
    }
}

struct CaseResult {
    violations: Vec<String>,
    errors: Vec<String>,
    metrics: Option<MetricsSnapshot>,
    trace: Vec<OpRecord>,
    fired: bool,
}

fn local(url: &str) -> Arc<dyn ObjectStore> {
    Arc::new(LocalFileSystem::new_with_prefix(url).expect("the test directory"))
}

/// Runs `w` on a fresh directory with `fault` armed, then checks what a
/// plain store finds there.
fn run_case(w: &Workload, background: bool, fault: Option<Fault>) -> CaseResult {
    let b = backend(Kind::Local, "faults");
    let mut opts = small_options(&b);
    opts.background_compaction = background;
    let crash = fault.as_ref().is_some_and(|f| f.kind.crashes());
    let faults = Faults::new(fault);
    let rt = runtime();
    let mut errors = Vec::new();
    let mut metrics = None;
    let run = std::panic::catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async {
            let store: Arc<dyn ObjectStore> =
                Arc::new(FaultyStore::new(local(&b.url), faults.clone()));
            let case = async {
                let outcome = drive(opts.clone(), store, &faults, w, crash).await;
                faults.quiesce().await;
                errors.clone_from(&outcome.errors);
                metrics.clone_from(&outcome.metrics);
                verify(&opts, w, &outcome).await
            };
            tokio::time::timeout(CASE_TIMEOUT, case)
                .await
                .unwrap_or_else(|_| vec![format!("hung: for {CASE_TIMEOUT:?}")])
        })
    }));
    let mut violations = run.unwrap_or_else(|p| vec![format!("panicked: {}", panic_text(&*p))]);
    violations.extend(
        PANICS
            .lock()
            .drain(..)
            .map(|p| format!("task panicked: {p}")),
    );
    CaseResult {
        violations,
        errors,
        metrics,
        trace: faults.trace(),
        fired: faults.fired(),
    }
}

/// Runs the workload; after a `crash`, stops at the first error and
/// abandons the store as a dead process would.
async fn drive(
    opts: Options,
    object_store: Arc<dyn ObjectStore>,
    faults: &Faults,
    w: &Workload,
    crash: bool,
) -> Outcome {
    let mut out = Outcome::default();
    faults.set_phase("open");
    let store = match Store::open_with_object_store(opts, object_store).await {
        Ok(s) => s,
        Err(e) => {
            out.errors.push(format!("open: {e}"));
            faults.kill();
            return out;
        }
    };
    for step in &w.steps {
        let label = step.label();
        faults.set_phase(label.clone());
        let result = match step {
            Step::Write(e, batch) => store.write(*e, batch).await,
            Step::Flush => store.flush().await,
            Step::Commit(e) => {
                let r = store.commit(*e).await;
                out.commit_returned(*e, r.is_ok(), false);
                r
            }
            Step::Checkpoint(e) => {
                let meta = CheckpointMeta {
                    job: JOB.into(),
                    ..Default::default()
                };
                let r = store.commit_checkpoint(*e, meta).await.map(drop);
                out.commit_returned(*e, r.is_ok(), true);
                r
            }
            Step::Compact => store.compact().await,
            Step::CompactUntilIdle => store.compact_until_idle().await,
        };
        if let Err(e) = result {
            out.errors.push(format!("{label}: {e}"));
            if crash {
                break;
            }
        }
    }
    out.metrics = Some(store.metrics());
    if crash {
        // Dead from here on, if the fault did not kill it already: nothing
        // the abandoned store's tasks still try reaches the directory.
        faults.kill();
        drop(store);
    } else {
        faults.set_phase("close");
        if let Err(e) = store.close().await {
            out.errors.push(format!("close: {e}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Checking what a plain store finds.

async fn verify(opts: &Options, w: &Workload, out: &Outcome) -> Vec<String> {
    let mut v = Vec::new();
    let store = match Store::open(opts.clone()).await {
        Ok(s) => s,
        Err(e) => return vec![format!("reopen failed: {e}")],
    };
    let committed = store.committed_epoch().0;
    let landed = committed > out.last_ok && out.failed_commits.contains(&committed);
    if committed != out.last_ok && !landed {
        v.push(format!(
            "(a) wrong committed epoch: reopened at epoch {committed}, but the last commit that returned Ok \
             was of epoch {} and the failed ones were {:?}",
            out.last_ok, out.failed_commits
        ));
    }
    let cps = out.expected_checkpoints(committed);
    check_contents(&store, opts, w, committed, &cps, "after reopen", &mut v).await;
    if let Err(e) = store.close().await {
        v.push(format!("close failed: after reopen: {e}"));
    }
    check_objects(opts, "after reopen and close", &mut v).await;

    // The recovered store keeps working: a full compaction keeps every
    // retained checkpoint's versions and deletes only what it replaced.
    let when = "after a second reopen and a full compaction";
    match Store::open(opts.clone()).await {
        Ok(store) => {
            if let Err(e) = store.compact().await {
                v.push(format!("compact failed: {when}: {e}"));
            }
            check_contents(&store, opts, w, committed, &cps, when, &mut v).await;
            if let Err(e) = store.close().await {
                v.push(format!("close failed: {when}: {e}"));
            }
            check_objects(opts, when, &mut v).await;
        }
        Err(e) => v.push(format!("reopen failed: second: {e}")),
    }
    v
}

/// (b) and (c): the committed epoch and every retained checkpoint read as
/// the model says; `want_cps` are the checkpoints that must be retained.
async fn check_contents(
    store: &Store,
    opts: &Options,
    w: &Workload,
    committed: u64,
    want_cps: &[u64],
    when: &str,
    v: &mut Vec<String>,
) {
    let invariants = expecting_panic(|| store.check_invariants());
    if let Err(p) = invariants {
        v.push(format!(
            "version invariant broken: {when}: {}",
            panic_text(&*p)
        ));
    }
    let probes = probe_keys(opts).await;
    let check = |epoch, what| check_epoch(store, w, epoch, &probes, what, when);
    v.extend(check(committed, "(b) committed epoch reads wrong").await);
    let cps = store.checkpoints();
    let got: Vec<u64> = cps.iter().map(|c| c.epoch.0).collect();
    if got != want_cps {
        v.push(format!(
            "(c) wrong retained checkpoints: {when}: {got:?}, expected {want_cps:?}"
        ));
    }
    for cp in &cps {
        if cp.job != JOB {
            v.push(format!(
                "(c) checkpoint of another job: {when}: checkpoint {} names job {:?}",
                cp.epoch.0, cp.job
            ));
        }
        v.extend(check(cp.epoch.0, "(c) checkpoint reads wrong").await);
    }
}

/// The keys point reads probe: a sample of all keys, and the first and
/// last key of every file the newest manifest names, where a file cut
/// between two versions of one key would split what a read must see.
async fn probe_keys(opts: &Options) -> Vec<Bytes> {
    let mut keys: BTreeSet<Bytes> = (0..KEYS).step_by(13).map(key).collect();
    if let Ok(Some(data)) = namespace::read_manifest(local(&opts.url), &opts.namespace).await {
        for f in data.levels.iter().flatten() {
            keys.insert(f.props.smallest.clone());
            keys.insert(f.props.largest.clone());
        }
    }
    keys.into_iter().collect()
}

/// A full scan and point reads of `probes` at `epoch` against the model.
async fn check_epoch(
    store: &Store,
    w: &Workload,
    epoch: u64,
    probes: &[Bytes],
    what: &str,
    when: &str,
) -> Vec<String> {
    let mut v = Vec::new();
    let Some(want) = w.models.get(epoch as usize) else {
        v.push(format!(
            "{what}: epoch {epoch} {when}: the workload has no such epoch"
        ));
        return v;
    };
    match store.scan(&[], None, Epoch(epoch), usize::MAX).await {
        Ok(got) => {
            if let Some(diff) = difference(&got, want) {
                v.push(format!("{what}: epoch {epoch} {when}: full scan: {diff}"));
            }
        }
        Err(e) => v.push(format!(
            "{what}: epoch {epoch} {when}: full scan failed: {e}"
        )),
    }
    let mut wrong = Vec::new();
    for k in probes {
        match store.get(k, Epoch(epoch)).await {
            Ok(got) if got.as_ref() == want.get(k) => {}
            Ok(got) => wrong.push(format!("get {k:?} = {got:?}, expected {:?}", want.get(k))),
            Err(e) => wrong.push(format!("get {k:?} failed: {e}")),
        }
    }
    if let Some(first) = wrong.first() {
        v.push(format!(
            "{what}: epoch {epoch} {when}: {} of {} point reads wrong, first: {first}",
            wrong.len(),
            probes.len()
        ));
    }
    v
}

/// How a scan differs from the model, if it does.
fn difference(got: &[(Bytes, Bytes)], want: &BTreeMap<Bytes, Bytes>) -> Option<String> {
    let want: Vec<(&Bytes, &Bytes)> = want.iter().collect();
    let i = (0..got.len().max(want.len()))
        .find(|&i| got.get(i).map(|(k, v)| (k, v)) != want.get(i).copied())?;
    Some(format!(
        "{} entries, expected {}; first difference at entry {i}: got {:?}, expected {:?}",
        got.len(),
        want.len(),
        got.get(i),
        want.get(i)
    ))
}

/// (d): the objects in the directory are exactly the newest manifest's
/// files and the manifest versions the store keeps, all in the store's
/// namespace, and nothing else.
async fn check_objects(opts: &Options, when: &str, v: &mut Vec<String>) {
    let root = local(&opts.url);
    let objects: Vec<_> = match root.list(None).try_collect().await {
        Ok(o) => o,
        Err(e) => return v.push(format!("(d) listing failed: {when}: {e}")),
    };
    let ns = namespace::root(&opts.namespace);
    let (sst_dir, manifest_dir) = (
        Path::from_iter(ns.parts().chain(paths::sst_dir().parts())),
        Path::from_iter(ns.parts().chain(paths::manifest_dir().parts())),
    );
    let mut on_disk = BTreeSet::new();
    let mut manifests = Vec::new();
    for o in &objects {
        let loc = &o.location;
        match (paths::parse_sst(loc), paths::parse_manifest(loc)) {
            (Some(id), _) if loc.prefix_matches(&sst_dir) => drop(on_disk.insert(id.0)),
            (_, Some(n)) if loc.prefix_matches(&manifest_dir) => manifests.push(n),
            _ => v.push(format!("(d) unexpected object: {when}: {loc}")),
        }
    }
    let scoped = match namespace::scoped(root, &opts.namespace) {
        Ok(s) => s,
        Err(e) => return v.push(format!("(d) bad namespace: {when}: {e}")),
    };
    let live: BTreeSet<u64> = match ManifestStore::open(scoped).await {
        Ok((_, Some(data))) => data.levels.iter().flatten().map(|f| f.id.0).collect(),
        Ok((_, None)) => BTreeSet::new(),
        Err(e) => return v.push(format!("(d) reading the manifest failed: {when}: {e}")),
    };
    let leaked: Vec<_> = on_disk.difference(&live).collect();
    if !leaked.is_empty() {
        v.push(format!(
            "(d) leaked sst files: {when}: no manifest names {leaked:?}"
        ));
    }
    let missing: Vec<_> = live.difference(&on_disk).collect();
    if !missing.is_empty() {
        v.push(format!(
            "(d) manifest names missing sst files: {when}: {missing:?}"
        ));
    }
    if manifests.len() > MANIFEST_VERSIONS_KEPT {
        v.push(format!(
            "(d) stale manifest versions: {when}: {} versions {manifests:?}, the store keeps {MANIFEST_VERSIONS_KEPT}",
            manifests.len()
        ));
    }
}

// ---------------------------------------------------------------------------
// The sweep.

/// Runs `w` without faults (which must pass too, and which
/// `baseline_check` inspects), then with a fault of each kind at each operation of the
/// baseline (`Scope::All`: every mutating operation, each found again by
/// its kind and path) or at the n-th background operation for every n the
/// baseline had (`Scope::Background`); fails listing every broken case.
fn sweep(
    name: &str,
    w: &Workload,
    background: bool,
    scope: Scope,
    baseline_check: impl Fn(&[OpRecord]),
) {
    record_panics();
    let mut broken = Vec::new();
    let mut by_check: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let baseline = run_case(w, background, None);
    let mut baseline_broken = baseline.violations.clone();
    baseline_broken.extend(baseline.errors.iter().map(|e| format!("call failed: {e}")));
    if !baseline_broken.is_empty() {
        // Reported with the faulted runs: the sweep still runs on the
        // baseline's operations.
        for check in baseline_broken
            .iter()
            .map(|v| check_of(v))
            .collect::<BTreeSet<_>>()
        {
            by_check.entry(check).or_default().push("no-fault".into());
        }
        broken.push(format!(
            "no-fault: the workload without faults\n  violations:\n    - {}",
            baseline_broken.join("\n    - ")
        ));
    }
    baseline_check(&baseline.trace);
    // Each point is named by its number in the baseline (op index, or
    // background op index).
    let points: Vec<(u64, Target)> = match scope {
        Scope::All => {
            let mut seen = BTreeSet::new();
            baseline
                .trace
                .iter()
                .filter(|r| seen.insert((format!("{:?}", r.kind), r.path.clone())))
                .map(|r| {
                    let target = Target::First {
                        kind: r.kind,
                        path: r.path.clone(),
                    };
                    (r.index, target)
                })
                .collect()
        }
        Scope::Background => {
            let n = baseline
                .trace
                .iter()
                .filter(|r| r.background.is_some())
                .count() as u64;
            (1..=n).map(|n| (n, Target::Nth { scope, n })).collect()
        }
    };
    // `RIVERBED_FAULTS_ONLY=FailAfter@7,CrashBefore@12` reruns just those
    // cases (named as in the failure report).
    let only = std::env::var("RIVERBED_FAULTS_ONLY").ok();
    let selected = |case: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|c| c.trim() == case))
    };
    let (mut cases, mut fired) = (0, 0);
    for (at, target) in &points {
        for kind in FaultKind::ALL {
            let case = format!("{kind:?}@{at}");
            if !selected(&case) {
                continue;
            }
            let fault = Fault {
                target: target.clone(),
                kind,
            };
            let r = run_case(w, background, Some(fault.clone()));
            cases += 1;
            fired += u64::from(r.fired);
            if !r.violations.is_empty() {
                for check in r
                    .violations
                    .iter()
                    .map(|v| check_of(v))
                    .collect::<BTreeSet<_>>()
                {
                    by_check.entry(check).or_default().push(case.clone());
                }
                broken.push(describe(&case, &fault, &r));
            }
        }
    }
    let m = baseline.metrics.unwrap_or_default();
    eprintln!(
        "{name}: {} fault points ({scope:?}) x 4 kinds = {cases} faulted runs, \
         {fired} of them reached their fault. Baseline: {} flushes, {} compactions, \
         {} files deleted, files per level {:?}; operations by phase: {}",
        points.len(),
        m.flushes,
        m.compactions,
        m.files_deleted,
        m.files_per_level,
        phases(&baseline.trace)
    );
    let summary: Vec<String> = by_check
        .iter()
        .map(|(check, cases)| format!("  {check}: {} runs: {}", cases.len(), cases.join(" ")))
        .collect();
    assert!(
        broken.is_empty(),
        "{name}: {} of {} runs ({cases} with a fault, one without) broke crash safety:\
         \n\n{}\n\nbroken checks:\n{}",
        broken.len(),
        cases + 1,
        broken.join("\n\n"),
        summary.join("\n")
    );
}

/// The check a violation belongs to: its text up to the first colon.
fn check_of(violation: &str) -> String {
    violation.split(':').next().unwrap_or_default().to_string()
}

/// A broken case: the fault, where it hit, what the calls returned, what
/// the checks found, and the trace around the fault.
fn describe(case: &str, fault: &Fault, r: &CaseResult) -> String {
    let hit = r.trace.iter().position(|op| op.injected.is_some());
    let mut s = format!("{case}: {:?}", fault.target);
    match hit {
        Some(i) => s += &format!("\n  hit: {}", r.trace[i]),
        None => s += "\n  not reached",
    }
    s += "\n  violations:";
    for v in r.violations.iter().take(10) {
        s += &format!("\n    - {v}");
    }
    if r.violations.len() > 10 {
        s += &format!("\n    - ... {} more", r.violations.len() - 10);
    }
    s += "\n  errors the workload saw:";
    for e in r.errors.iter().take(4) {
        s += &format!("\n    - {e}");
    }
    if r.errors.len() > 4 {
        s += &format!("\n    - ... {} more", r.errors.len() - 4);
    }
    let at = hit.unwrap_or(r.trace.len());
    s += "\n  trace around the fault:";
    for op in &r.trace[at.saturating_sub(8)..(at + 4).min(r.trace.len())] {
        s += &format!("\n    {op}");
    }
    s
}

/// The baseline's operations counted by phase and kind.
fn phases(trace: &[OpRecord]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in trace {
        let phase = r.phase.split(' ').next().unwrap_or_default();
        *counts
            .entry(format!("{phase}/{:?} {}", r.kind, folder(&r.path)))
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Panics anywhere in the process, background tasks included (tokio
/// catches those): each case reports the ones it caused. Under nextest each
/// test is its own process, so cases of two tests never mix.
static PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

thread_local! {
    /// Set while a check that reports its own panic runs.
    static EXPECTING_PANIC: Cell<bool> = const { Cell::new(false) };
}

fn record_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EXPECTING_PANIC.with(Cell::get) {
                PANICS.lock().push(info.to_string());
                previous(info);
            }
        }));
    });
}

/// Runs `f`, which reports its failures by panicking (as the store's
/// invariant check does), catching the panic without recording it.
fn expecting_panic(f: impl FnOnce()) -> std::thread::Result<()> {
    EXPECTING_PANIC.with(|e| e.set(true));
    let r = std::panic::catch_unwind(AssertUnwindSafe(f));
    EXPECTING_PANIC.with(|e| e.set(false));
    r
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a non-string panic".into())
}
