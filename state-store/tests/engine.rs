//! Behaviour across modules: corruption is detected, the manifest's
//! compare-and-swap stops a second writer, writers stall instead of failing,
//! obsolete files leave object storage, bad input is rejected. Each runs on a
//! local directory and on S3.

mod common;
// Only its put stall is used here.
#[allow(dead_code)]
#[path = "common/faulty.rs"]
mod faulty;

use std::sync::Arc;

use bytes::Bytes;
use common::{backend, runtime, small_options, Backend, Kind};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use riverbed_state_store::storage::open_object_store;
use riverbed_state_store::{
    full_key, Epoch, ErrorKind, KeyGroup, Options, Store, TableId, WriteBatch,
};

fn key(i: u32) -> Bytes {
    full_key(
        TableId(1),
        KeyGroup((i % 8) as u16),
        format!("key{i:05}").as_bytes(),
    )
}

fn val(i: u32) -> Bytes {
    Bytes::from(format!("value-{i}-{}", "v".repeat((i % 37) as usize)))
}

async fn write_committed(store: &Store, n: u32, epoch: u64) {
    let mut batch = WriteBatch::new();
    for i in 0..n {
        batch.put(key(i), val(i));
    }
    store.write(Epoch(epoch), &batch).await.unwrap();
    store.commit(Epoch(epoch)).await.unwrap();
}

async fn list(os: &Arc<dyn ObjectStore>, dir: &str) -> Vec<Path> {
    let mut v: Vec<Path> = os
        .list(Some(&Path::from(dir)))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .unwrap();
    v.sort();
    v
}

fn os_of(b: &Backend) -> Arc<dyn ObjectStore> {
    open_object_store(&b.url, &b.s3).unwrap()
}

/// Flips bytes across every SST (blocks, filter, index, properties, footer):
/// every read returns the right value or a `Corrupted` error, and every flip
/// is noticed by some read.
async fn sst_corruption(kind: Kind, flips_per_file: usize) {
    let b = backend(kind, "sst-corruption");
    let mut opts = small_options(&b);
    opts.background_compaction = false;
    opts.memtable_bytes = 1 << 20;
    opts.max_memory_bytes = 4 << 20;
    let n = 300;
    {
        let store = Store::open(opts.clone()).await.unwrap();
        write_committed(&store, n, 1).await;
        store.compact().await.unwrap();
        store.close().await.unwrap();
    }
    let os = os_of(&b);
    let files = list(&os, "ns/default/sst").await;
    assert!(!files.is_empty());
    for file in files {
        let good = os.get(&file).await.unwrap().bytes().await.unwrap();
        let len = good.len();
        let mut positions: Vec<usize> = (0..len).step_by((len / flips_per_file).max(1)).collect();
        positions.extend(len.saturating_sub(48)..len); // the whole footer
        for pos in positions {
            let mut bad = good.to_vec();
            bad[pos] ^= 0x5a;
            os.put(&file, PutPayload::from(bad)).await.unwrap();
            let store = Store::open(opts.clone()).await.unwrap();
            let mut noticed = 0;
            for i in 0..n {
                match store.get(&key(i), Epoch(1)).await {
                    Ok(v) => assert_eq!(
                        v,
                        Some(val(i)),
                        "flip at {pos} of {file} gave a wrong value"
                    ),
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::Corrupted, "flip at {pos}: {e}");
                        assert!(
                            e.to_string().contains(file.as_ref()),
                            "error does not name the file: {e}"
                        );
                        noticed += 1;
                    }
                }
            }
            match store.scan(&[], None, Epoch(1), usize::MAX).await {
                Ok(all) => assert_eq!(all.len(), n as usize, "flip at {pos}: scan lost entries"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::Corrupted),
            }
            assert!(noticed > 0, "flip at byte {pos} of {file} went unnoticed");
            store.close().await.unwrap();
        }
        os.put(&file, PutPayload::from(good)).await.unwrap();
    }
}

async fn manifest_corruption(kind: Kind) {
    let b = backend(kind, "manifest-corruption");
    let opts = small_options(&b);
    {
        let store = Store::open(opts.clone()).await.unwrap();
        write_committed(&store, 50, 1).await;
        store.close().await.unwrap();
    }
    let os = os_of(&b);
    let newest = list(&os, "ns/default/manifest").await.pop().unwrap();
    let good = os.get(&newest).await.unwrap().bytes().await.unwrap();
    for pos in (0..good.len()).step_by(3) {
        let mut bad = good.to_vec();
        bad[pos] ^= 0x01;
        os.put(&newest, PutPayload::from(bad)).await.unwrap();
        match Store::open(opts.clone()).await {
            Ok(_) => panic!("flip at byte {pos} of the manifest went unnoticed"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
                assert!(e.to_string().contains("manifest"), "{e}");
            }
        }
    }
    os.put(&newest, PutPayload::from(good)).await.unwrap();
    let store = Store::open(opts).await.unwrap();
    assert_eq!(store.get(&key(3), Epoch(1)).await.unwrap(), Some(val(3)));
    store.close().await.unwrap();
}

/// A second writer opening the store fences the first: the first's next
/// commit fails with a conflict, and nothing it wrote is lost or mixed in.
async fn second_writer_wins(kind: Kind) {
    let b = backend(kind, "fencing");
    let opts = small_options(&b);
    let first = Store::open(opts.clone()).await.unwrap();
    write_committed(&first, 20, 1).await;
    let second = Store::open(opts.clone()).await.unwrap();
    let mut batch = WriteBatch::new();
    batch.put(key(1), Bytes::from("from the first writer"));
    first.write(Epoch(2), &batch).await.unwrap();
    let err = first.commit(Epoch(2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(second.get(&key(1), Epoch(1)).await.unwrap(), Some(val(1)));
    write_committed(&second, 30, 2).await;
    second.close().await.unwrap();
    let _ = first.close().await;
    let reopened = Store::open(opts).await.unwrap();
    assert_eq!(reopened.committed_epoch(), Epoch(2));
    assert_eq!(
        reopened.get(&key(25), Epoch(2)).await.unwrap(),
        Some(val(25))
    );
    reopened.close().await.unwrap();
}

/// Many concurrent writers against a tiny memory bound: they wait for the
/// flusher, none fails, nothing is dropped.
async fn write_stall(kind: Kind) {
    let b = backend(kind, "stall");
    let mut opts = small_options(&b);
    opts.memtable_bytes = 2 << 10;
    opts.max_memory_bytes = 4 << 10;
    let store = Arc::new(Store::open(opts).await.unwrap());
    let mut tasks = Vec::new();
    for w in 0..4u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..25u32 {
                let mut batch = WriteBatch::new();
                for j in 0..20u32 {
                    let i = w * 10_000 + round * 20 + j;
                    batch.put(key(i), val(i));
                }
                store.write(Epoch(1), &batch).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    store.commit(Epoch(1)).await.unwrap();
    let m = store.metrics();
    assert!(
        m.write_stalls > 0,
        "the memory bound never stalled a writer: {m:?}"
    );
    let all = store.scan(&[], None, Epoch(1), usize::MAX).await.unwrap();
    assert_eq!(all.len(), 4 * 25 * 20);
    for w in 0..4u32 {
        let i = w * 10_000 + 7;
        assert_eq!(store.get(&key(i), Epoch(1)).await.unwrap(), Some(val(i)));
    }
    store.close().await.unwrap();
}

/// After compaction, object storage holds exactly the files the manifest names.
async fn obsolete_files_are_deleted(kind: Kind) {
    let b = backend(kind, "gc");
    let mut opts = small_options(&b);
    opts.background_compaction = false;
    let store = Store::open(opts.clone()).await.unwrap();
    for e in 1..=5u64 {
        write_committed(&store, 200, e).await;
    }
    let before = store.metrics();
    store.compact().await.unwrap();
    let live: usize = store.metrics().files_per_level.iter().sum();
    store.close().await.unwrap();
    let after = store.metrics();
    assert!(after.files_deleted > before.files_deleted);
    let os = os_of(&b);
    assert_eq!(
        list(&os, "ns/default/sst").await.len(),
        live,
        "files left behind: {after:?}"
    );
}

async fn bad_input_is_rejected(kind: Kind) {
    let b = backend(kind, "bad-input");
    let store = Store::open(small_options(&b)).await.unwrap();
    let mut short = WriteBatch::new();
    short.put(Bytes::from_static(b"abc"), Bytes::from_static(b"v"));
    assert_eq!(
        store.write(Epoch(1), &short).await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let mut empty_range = WriteBatch::new();
    empty_range.delete_range(key(5), key(5));
    assert_eq!(
        store
            .write(Epoch(1), &empty_range)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
    write_committed(&store, 10, 3).await;
    let mut late = WriteBatch::new();
    late.put(key(1), val(2));
    let err = store.write(Epoch(3), &late).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongEpoch, "{err}");
    assert_eq!(
        store.get(&key(1), Epoch(2)).await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        store.commit(Epoch(2)).await.unwrap_err().kind(),
        ErrorKind::WrongEpoch
    );
    assert_eq!(
        store.discard(Epoch(3)).await.unwrap_err().kind(),
        ErrorKind::WrongEpoch
    );
    // A rejected batch left nothing behind.
    assert_eq!(store.get(&key(1), Epoch(3)).await.unwrap(), Some(val(1)));
    store.close().await.unwrap();
}

/// Checkpoints are manifest versions with metadata: they survive a reopen,
/// share files (the second adds only what was flushed since the first), and
/// only the last `retained_checkpoints` are kept.
async fn checkpoints_share_files_and_are_retained(kind: Kind) {
    use riverbed_state_store::{CheckpointMeta, SourcePositions};
    let b = backend(kind, "checkpoints");
    let mut opts = small_options(&b);
    opts.background_compaction = false;
    opts.retained_checkpoints = 2;
    let meta = |pos: u8| CheckpointMeta {
        job: "j".into(),
        watermark: 7,
        positions: vec![SourcePositions {
            source: "src".into(),
            subtasks: vec![vec![pos], vec![pos, pos]],
        }],
        ..CheckpointMeta::default()
    };
    {
        let store = Store::open(opts.clone()).await.unwrap();
        let mut batch = WriteBatch::new();
        for i in 0..200 {
            batch.put(key(i), val(i));
        }
        store.write(Epoch(1), &batch).await.unwrap();
        let first = store.commit_checkpoint(Epoch(1), meta(1)).await.unwrap();
        assert_eq!(first.epoch, Epoch(1));
        assert!(first.stats.files_added > 0 && first.stats.bytes_written > 0);
        assert!(first.stats.dirty_bytes > 0);
        // A small second epoch: the checkpoint adds only its own file(s).
        let mut batch = WriteBatch::new();
        batch.put(key(1), Bytes::from("new"));
        store.write(Epoch(2), &batch).await.unwrap();
        let second = store.commit_checkpoint(Epoch(2), meta(2)).await.unwrap();
        assert_eq!(second.stats.files_added, 1, "{second:?}");
        assert!(second.stats.bytes_written < first.stats.bytes_written);
        // An epoch committed without metadata is not a checkpoint.
        store.write(Epoch(3), &batch).await.unwrap();
        store.commit(Epoch(3)).await.unwrap();
        store.write(Epoch(4), &batch).await.unwrap();
        store.commit_checkpoint(Epoch(4), meta(4)).await.unwrap();
        let epochs: Vec<Epoch> = store.checkpoints().iter().map(|c| c.epoch).collect();
        assert_eq!(epochs, [Epoch(2), Epoch(4)], "the last two are retained");
        store.close().await.unwrap();
    }
    let store = Store::open(opts).await.unwrap();
    let cps = store.checkpoints();
    assert_eq!(cps.len(), 2);
    let latest = store.latest_checkpoint().unwrap();
    assert_eq!(latest.epoch, Epoch(4));
    assert_eq!(latest.positions_of("src").unwrap(), [vec![4], vec![4, 4]]);
    assert_eq!(latest.watermark, 7);
    assert_eq!(store.committed_epoch(), Epoch(4));
    assert_eq!(
        store.get(&key(1), Epoch(4)).await.unwrap(),
        Some(Bytes::from("new"))
    );
    store.close().await.unwrap();
}

/// A seeded xorshift drawing numbers below its argument.
fn below(mut rng: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    }
}

/// `writes` random puts and deletes (one in `delete_one_in`) of keys below
/// `keys`, applied to `model` as well.
fn random_writes(
    next: &mut impl FnMut(u64) -> u64,
    model: &mut std::collections::BTreeMap<Bytes, Bytes>,
    epoch: u64,
    writes: usize,
    keys: u64,
    delete_one_in: u64,
) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for _ in 0..writes {
        let i = next(keys) as u32;
        if next(delete_one_in) == 0 {
            batch.delete(key(i));
            model.remove(&key(i));
        } else {
            let v = Bytes::from(format!("{}-{epoch}", val(i).len()));
            batch.put(key(i), &v);
            model.insert(key(i), v);
        }
    }
    batch
}

/// A compaction merged in parts leaves the same contents as one merged
/// whole, checked against a `BTreeMap` of what was written, and the parts
/// did run (the counter says so).
async fn compaction_in_parts(kind: Kind) {
    let b = backend(kind, "parts");
    let mut opts = small_options(&b);
    opts.background_compaction = false;
    let whole = Store::open(Options {
        subcompactions: 1,
        namespace: "whole".into(),
        ..opts.clone()
    })
    .await
    .unwrap();
    let parts = Store::open(Options {
        subcompactions: 4,
        namespace: "parts".into(),
        ..opts
    })
    .await
    .unwrap();
    let mut model = std::collections::BTreeMap::new();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (rng >> 33) % n
    };
    for epoch in 1..=30u64 {
        let batch = random_writes(&mut next, &mut model, epoch, 150, 2000, 5);
        for store in [&whole, &parts] {
            store.write(Epoch(epoch), &batch).await.unwrap();
            store.commit(Epoch(epoch)).await.unwrap();
            if epoch % 3 == 0 {
                store.compact_until_idle().await.unwrap();
                store.check_invariants();
            }
        }
    }
    let want: Vec<(Bytes, Bytes)> = model.into_iter().collect();
    for store in [&whole, &parts] {
        let got = store.scan(&[], None, Epoch(30), usize::MAX).await.unwrap();
        assert_eq!(got.len(), want.len(), "{}", store.namespace());
        assert!(got == want, "{} differs from the model", store.namespace());
    }
    let (w, p) = (whole.metrics(), parts.metrics());
    assert_eq!(w.compaction_parts, w.compactions);
    assert!(
        p.compaction_parts > p.compactions && p.compactions > 0,
        "no compaction ran in parts: {p:?}"
    );
    whole.close().await.unwrap();
    parts.close().await.unwrap();
}

/// Small checkpoints over a large L1 merge within L0 before they move
/// down (see `compaction/picker.rs`). Every retained checkpoint and the
/// latest epoch still read equal to a `BTreeMap` of what was written, with
/// point and range deletes among the writes, before and after a reopen.
async fn l0_merges(kind: Kind) {
    use riverbed_state_store::CheckpointMeta;
    let b = backend(kind, "l0-merges");
    let mut opts = small_options(&b);
    opts.background_compaction = false;
    opts.retained_checkpoints = 3;
    // An L1 that is large against an epoch's file, as 256 MiB is against
    // a second of writes.
    opts.level_base_bytes = 64 << 10;
    opts.sst_target_bytes = 32 << 10;
    let store = Store::open(opts.clone()).await.unwrap();
    let mut model = std::collections::BTreeMap::new();
    let mut batch = WriteBatch::new();
    for i in 0..3000 {
        batch.put(key(i), val(i));
        model.insert(key(i), val(i));
    }
    store.write(Epoch(1), &batch).await.unwrap();
    store.commit(Epoch(1)).await.unwrap();
    store.compact_until_idle().await.unwrap();
    let mut next = below(0x2545_f491_4f6c_dd1d);
    let mut views: Vec<(u64, std::collections::BTreeMap<Bytes, Bytes>)> = Vec::new();
    for epoch in 2..=60u64 {
        let mut batch = random_writes(&mut next, &mut model, epoch, 12, 3000, 6);
        // One range delete: its compaction takes every file down to the
        // deepest level once no retained checkpoint is below it.
        if epoch == 30 {
            // Ten keys of one key group (`key` spreads them over eight).
            let lo = next(2900) as u32;
            let (s, e) = (key(lo), key(lo + 80));
            batch.delete_range(s.clone(), e.clone());
            let gone: Vec<Bytes> = model.range(s..e).map(|(k, _)| k.clone()).collect();
            for k in gone {
                model.remove(&k);
            }
        }
        store.write(Epoch(epoch), &batch).await.unwrap();
        let meta = CheckpointMeta {
            job: "j".into(),
            ..CheckpointMeta::default()
        };
        store.commit_checkpoint(Epoch(epoch), meta).await.unwrap();
        views.push((epoch, model.clone()));
        store.compact_until_idle().await.unwrap();
        store.check_invariants();
    }
    let m = store.metrics();
    assert!(
        m.l0_merges >= 5 && m.compactions > m.l0_merges,
        "no L0 merge, or nothing moved down: {m:?}"
    );
    let retained = &views[views.len() - 3..];
    async fn check(store: &Store, views: &[(u64, std::collections::BTreeMap<Bytes, Bytes>)]) {
        for (epoch, want) in views {
            let got = store
                .scan(&[], None, Epoch(*epoch), usize::MAX)
                .await
                .unwrap();
            let want: Vec<(Bytes, Bytes)> = want.clone().into_iter().collect();
            assert_eq!(got.len(), want.len(), "at epoch {epoch}");
            assert!(got == want, "epoch {epoch} differs from the model");
            for (k, v) in want.iter().step_by(97) {
                assert_eq!(store.get(k, Epoch(*epoch)).await.unwrap().as_ref(), Some(v));
            }
        }
    }
    check(&store, retained).await;
    store.close().await.unwrap();
    let store = Store::open(opts).await.unwrap();
    check(&store, retained).await;
    store.close().await.unwrap();
}

/// Both compaction lanes at work: with every put stalled, deep compactions
/// (many output files) run long, and L0 merges and moves start beside them
/// (the counter says so). Every retained checkpoint and the latest epoch
/// read equal to a `BTreeMap` of what was written, with point and range
/// deletes among the writes, and again after a reopen.
async fn lanes_at_once(kind: Kind) {
    use riverbed_state_store::CheckpointMeta;
    let b = backend(kind, "lanes");
    let mut opts = small_options(&b);
    opts.retained_checkpoints = 3;
    opts.l0_slowdown_writes_files = opts.l0_stop_writes_files;
    // An L1 large against an epoch's file (so L0 merges within itself),
    // over levels cut into small files (so a deep compaction writes many).
    opts.level_base_bytes = 32 << 10;
    opts.sst_target_bytes = 4 << 10;
    let faults = faulty::Faults::new(None);
    let slow: Arc<dyn ObjectStore> = Arc::new(faulty::FaultyStore::new(
        open_object_store(&b.url, &b.s3).unwrap(),
        faults.clone(),
    ));
    let store = Store::open_with_object_store(opts.clone(), slow)
        .await
        .unwrap();
    let mut model = std::collections::BTreeMap::new();
    let mut batch = WriteBatch::new();
    for i in 0..3000 {
        batch.put(key(i), val(i));
        model.insert(key(i), val(i));
    }
    store.write(Epoch(1), &batch).await.unwrap();
    store.commit(Epoch(1)).await.unwrap();
    store.compact_until_idle().await.unwrap();
    faults.stall_puts(std::time::Duration::from_millis(10));
    let mut rng = 0x5851_f42d_4c95_7f2du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut views = Vec::new();
    for epoch in 2..=120u64 {
        let mut batch = random_writes(&mut next, &mut model, epoch, 40, 3000, 7);
        if epoch % 30 == 0 {
            let lo = next(2900) as u32;
            let (s, e) = (key(lo), key(lo + 40));
            batch.delete_range(s.clone(), e.clone());
            let gone: Vec<Bytes> = model.range(s..e).map(|(k, _)| k.clone()).collect();
            for k in gone {
                model.remove(&k);
            }
        }
        store.write(Epoch(epoch), &batch).await.unwrap();
        let meta = CheckpointMeta {
            job: "j".into(),
            ..CheckpointMeta::default()
        };
        store.commit_checkpoint(Epoch(epoch), meta).await.unwrap();
        views.push((epoch, model.clone()));
        store.check_invariants();
    }
    let m = store.metrics();
    assert!(
        m.compactions_beside > 0 && m.l0_merges > 0,
        "the lanes never ran at once: {m:?}"
    );
    let retained = &views[views.len() - 3..];
    async fn check(store: &Store, views: &[(u64, std::collections::BTreeMap<Bytes, Bytes>)]) {
        for (epoch, want) in views {
            let got = store
                .scan(&[], None, Epoch(*epoch), usize::MAX)
                .await
                .unwrap();
            let want: Vec<(Bytes, Bytes)> = want.clone().into_iter().collect();
            assert_eq!(got.len(), want.len(), "at epoch {epoch}");
            assert!(got == want, "epoch {epoch} differs from the model");
            for (k, v) in want.iter().step_by(61) {
                assert_eq!(store.get(k, Epoch(*epoch)).await.unwrap().as_ref(), Some(v));
            }
        }
    }
    check(&store, retained).await;
    store.close().await.unwrap();
    let store = Store::open(opts).await.unwrap();
    check(&store, retained).await;
    store.close().await.unwrap();
}

/// Multi-gets read file by file and level by level (`read.rs`): over a
/// store whose keys lie in L0 and in three sorted levels, with deletes
/// among the writes, a multi-get of random keys (present, deleted, never
/// written, repeated, out of order) returns what a `BTreeMap` of the
/// writes holds, at the latest epoch and at an older retained checkpoint.
async fn multi_gets_across_levels(kind: Kind) {
    use riverbed_state_store::CheckpointMeta;
    let b = backend(kind, "multi-get");
    // Compactions only where the test asks for them: the last ten epochs
    // stay in L0 whatever the timing.
    let mut opts = small_options(&b);
    opts.background_compaction = false;
    let store = Store::open(opts).await.unwrap();
    let mut model = std::collections::BTreeMap::new();
    let mut next = below(0x2545_f491_4f6c_dd1d);
    let mut older = None;
    for epoch in 1..=60u64 {
        let batch = random_writes(&mut next, &mut model, epoch, 120, 3000, 6);
        store.write(Epoch(epoch), &batch).await.unwrap();
        store
            .commit_checkpoint(Epoch(epoch), CheckpointMeta::default())
            .await
            .unwrap();
        if epoch % 10 == 0 && epoch < 60 {
            store.compact_until_idle().await.unwrap();
        }
        if epoch == 58 {
            older = Some(model.clone());
        }
    }
    let levels = store.metrics().files_per_level;
    assert!(
        levels[0] > 0 && levels.iter().skip(1).filter(|&&n| n > 0).count() >= 2,
        "the test wants keys in L0 and in two sorted levels at least: {levels:?}"
    );
    for (epoch, view) in [(60, &model), (58, older.as_ref().unwrap())] {
        for _ in 0..40 {
            let keys: Vec<Bytes> = (0..1 + next(200)).map(|_| key(next(3500) as u32)).collect();
            let got = store.multi_get(&keys, Epoch(epoch)).await.unwrap();
            let want: Vec<Option<Bytes>> = keys.iter().map(|k| view.get(k).cloned()).collect();
            assert_eq!(got, want, "multi-get at epoch {epoch}");
        }
    }
    store.close().await.unwrap();
}

#[test]
fn multi_gets_agree_with_the_model_across_levels() {
    runtime().block_on(multi_gets_across_levels(Kind::Local));
}

macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[test]
            fn local() {
                runtime().block_on($body(Kind::Local));
            }
            #[test]
            fn s3() {
                runtime().block_on($body(Kind::S3));
            }
        }
    };
}

/// A key of a job whose keys grow with time inside each key group, as
/// auction ids do: key `i` is in group `i % 8`, and sorts by `i` there.
fn growing_key(i: u64) -> Bytes {
    full_key(TableId(1), KeyGroup((i % 8) as u16), &i.to_be_bytes())
}

/// Keys that grow inside their groups, with updates and deletes of mostly
/// the newest ones: compactions leave lower files that hold only older keys
/// where they are (and say so in their metrics), levels stay disjoint, and
/// every read, at the latest epoch, at an older retained checkpoint and
/// after a reopen, equals a `BTreeMap`.
async fn untouched_files_stay(kind: Kind) {
    use riverbed_state_store::CheckpointMeta;
    let b = backend(kind, "untouched");
    let mut next = below(0x9e37_79b9_7f4a_7c15);
    let mut model = std::collections::BTreeMap::new();
    let mut older = None;
    let mut top = 0u64;
    // Compactions only where the test asks for them, so that what they
    // meet does not depend on timing.
    let opts = Options {
        background_compaction: false,
        ..small_options(&b)
    };
    let store = Store::open(opts.clone()).await.unwrap();
    for epoch in 1..=90u64 {
        let mut batch = WriteBatch::new();
        for _ in 0..60 {
            let v = Bytes::from(format!("new-{top}-{epoch}"));
            batch.put(growing_key(top), &v);
            model.insert(growing_key(top), v);
            top += 1;
        }
        // Mostly the newest keys, now and then any older one: an upper
        // file then holds keys of a group on both sides of a lower file.
        for n in 0..15 {
            let back = if n == 0 { top } else { top.min(200) };
            let k = growing_key(top - 1 - next(back));
            if next(4) == 0 {
                batch.delete(&k);
                model.remove(&k);
            } else {
                let v = Bytes::from(format!("update-{epoch}"));
                batch.put(&k, &v);
                model.insert(k, v);
            }
        }
        store.write(Epoch(epoch), &batch).await.unwrap();
        store
            .commit_checkpoint(Epoch(epoch), CheckpointMeta::default())
            .await
            .unwrap();
        if epoch % 6 == 0 {
            store.compact_until_idle().await.unwrap();
            store.check_invariants();
        }
        if epoch == 88 {
            older = Some(model.clone());
        }
    }
    store.compact_until_idle().await.unwrap();
    store.check_invariants();
    let m = store.metrics();
    assert!(
        m.compaction_kept_bytes > 0,
        "no compaction left a file in place: {m:?}"
    );
    assert!(
        m.files_per_level.iter().skip(1).filter(|&&n| n > 0).count() >= 2,
        "the test wants two sorted levels at least: {:?}",
        m.files_per_level
    );
    let check = |store: Store, views: Vec<(u64, std::collections::BTreeMap<Bytes, Bytes>)>| async move {
        for (epoch, view) in views {
            let got = store
                .scan(&[], None, Epoch(epoch), usize::MAX)
                .await
                .unwrap();
            let want: Vec<(Bytes, Bytes)> = view.clone().into_iter().collect();
            assert!(got == want, "scan at epoch {epoch} differs from the model");
            let keys: Vec<Bytes> = (0..top + 10).step_by(7).map(growing_key).collect();
            let got = store.multi_get(&keys, Epoch(epoch)).await.unwrap();
            let want: Vec<Option<Bytes>> = keys.iter().map(|k| view.get(k).cloned()).collect();
            assert_eq!(got, want, "multi-get at epoch {epoch}");
        }
        store
    };
    let views = vec![(90, model.clone()), (88, older.clone().unwrap())];
    let store = check(store, views.clone()).await;
    store.close().await.unwrap();
    let store = Store::open(opts).await.unwrap();
    let store = check(store, views).await;
    store.close().await.unwrap();
}

on_both!(
    compactions_leave_files_no_key_falls_in,
    untouched_files_stay
);

on_both!(sst_corruption_is_an_error, |k| sst_corruption(
    k,
    if k == Kind::Local { 120 } else { 25 }
));
on_both!(manifest_corruption_is_an_error, manifest_corruption);
on_both!(second_writer_fences_the_first, second_writer_wins);
on_both!(writers_stall_instead_of_failing, write_stall);
on_both!(
    obsolete_files_leave_object_storage,
    obsolete_files_are_deleted
);
on_both!(bad_input_gets_a_clear_error, bad_input_is_rejected);
on_both!(compaction_in_parts_equals_one_merge, compaction_in_parts);
on_both!(l0_merges_keep_every_checkpoint_readable, l0_merges);
on_both!(
    compaction_lanes_run_at_once_and_agree_with_the_model,
    lanes_at_once
);

/// Rolling back drops every uncommitted epoch and unseals it, so a job can
/// restart from its last commit and write those epochs again.
async fn rollback_restarts_from_the_commit(kind: Kind) {
    let b = backend(kind, "rollback");
    let store = Store::open(small_options(&b)).await.unwrap();
    write_committed(&store, 10, 1).await;
    for e in 2..=3u64 {
        let mut batch = WriteBatch::new();
        batch.put(key(1), Bytes::from(format!("uncommitted {e}")));
        batch.delete_range(key(5), key(13));
        store.write(Epoch(e), &batch).await.unwrap();
    }
    store.flush().await.unwrap();
    store.rollback_to_committed().await.unwrap();
    assert_eq!(store.get(&key(1), Epoch(3)).await.unwrap(), Some(val(1)));
    assert_eq!(store.get(&key(5), Epoch(3)).await.unwrap(), Some(val(5)));
    let mut batch = WriteBatch::new();
    batch.put(key(2), Bytes::from_static(b"again"));
    store.write(Epoch(2), &batch).await.unwrap();
    store.commit(Epoch(2)).await.unwrap();
    assert_eq!(
        store.get(&key(2), Epoch(2)).await.unwrap(),
        Some(Bytes::from_static(b"again"))
    );
    assert_eq!(store.get(&key(1), Epoch(2)).await.unwrap(), Some(val(1)));
    store.close().await.unwrap();
}

on_both!(
    rollback_drops_uncommitted_epochs,
    rollback_restarts_from_the_commit
);
on_both!(
    checkpoints_are_recorded_shared_and_retained,
    checkpoints_share_files_and_are_retained
);

/// Two jobs share one store, each in its own namespace: the same table name
/// and key in both hold different values, commits and checkpoints of one
/// do not move the other, table ids survive a reopen, and the namespaces
/// are listed.
async fn namespaces_are_isolated(kind: Kind) {
    let b = backend(kind, "namespaces");
    let opts = |ns: &str| riverbed_state_store::Options {
        namespace: ns.into(),
        ..small_options(&b)
    };
    let (t_a, t_b);
    {
        let a = Store::open(opts("job-a")).await.unwrap();
        let bb = Store::open(opts("job-b")).await.unwrap();
        assert_eq!(a.namespace(), "job-a");
        t_a = a.register_table("window").unwrap();
        t_b = bb.register_table("window").unwrap();
        let other = a.register_table("timers").unwrap();
        assert_ne!(t_a, other, "two tables of a namespace never share an id");
        assert_eq!(a.register_table("window").unwrap(), t_a);
        let k = |t: TableId| full_key(t, KeyGroup(0), b"k");
        let mut batch = WriteBatch::new();
        batch.put(k(t_a), Bytes::from("a1"));
        a.write(Epoch(1), &batch).await.unwrap();
        a.commit_checkpoint(Epoch(1), Default::default())
            .await
            .unwrap();
        let mut batch = WriteBatch::new();
        batch.put(k(t_b), Bytes::from("b1"));
        bb.write(Epoch(1), &batch).await.unwrap();
        bb.commit(Epoch(1)).await.unwrap();
        let mut batch = WriteBatch::new();
        batch.put(k(t_b), Bytes::from("b2"));
        bb.write(Epoch(2), &batch).await.unwrap();
        bb.commit(Epoch(2)).await.unwrap();
        assert_eq!(a.committed_epoch(), Epoch(1));
        assert_eq!(bb.committed_epoch(), Epoch(2));
        assert_eq!(a.checkpoints().len(), 1);
        assert!(bb.checkpoints().is_empty());
        a.close().await.unwrap();
        bb.close().await.unwrap();
    }
    let names = riverbed_state_store::namespace::list(&*os_of(&b))
        .await
        .unwrap();
    assert_eq!(names, ["job-a", "job-b"]);
    let a = Store::open(opts("job-a")).await.unwrap();
    let bb = Store::open(opts("job-b")).await.unwrap();
    assert_eq!(a.register_table("window").unwrap(), t_a);
    assert_eq!(a.tables().len(), 2);
    let k = |t: TableId| full_key(t, KeyGroup(0), b"k");
    assert_eq!(
        a.get(&k(t_a), Epoch(1)).await.unwrap(),
        Some(Bytes::from("a1"))
    );
    assert_eq!(
        bb.get(&k(t_b), Epoch(2)).await.unwrap(),
        Some(Bytes::from("b2"))
    );
    assert_eq!(
        (a.committed_epoch(), bb.committed_epoch()),
        (Epoch(1), Epoch(2))
    );
    a.close().await.unwrap();
    bb.close().await.unwrap();
    let e = Store::open(opts("../escape")).await.err().unwrap();
    assert!(e.to_string().contains("namespace"), "{e}");
}

on_both!(
    namespaces_share_a_store_in_isolation,
    namespaces_are_isolated
);

/// A savepoint is a checkpoint copied out as a self-contained folder: it
/// restores into another store (here: from `kind` to a local directory and
/// back into `kind` under another namespace) and reads equal to the
/// checkpoint there, after the source store is gone. Bad uses are refused
/// with the reason.
async fn savepoints_are_portable(kind: Kind) {
    use riverbed_state_store::savepoint;
    let src = backend(kind, "savepoint-src");
    let opts = small_options(&src);
    let mut want = std::collections::BTreeMap::new();
    {
        let store = Store::open(opts.clone()).await.unwrap();
        for e in 1..=4u64 {
            let mut batch = WriteBatch::new();
            for i in 0..300u32 {
                if (i + e as u32).is_multiple_of(5) {
                    batch.delete(key(i));
                    want.remove(&key(i));
                } else {
                    let v = Bytes::from(format!("{i}@{e}"));
                    batch.put(key(i), v.clone());
                    want.insert(key(i), v);
                }
            }
            store.write(Epoch(e), &batch).await.unwrap();
            let meta = riverbed_state_store::CheckpointMeta {
                job: "sp".into(),
                watermark: e as i64,
                ..Default::default()
            };
            store.commit_checkpoint(Epoch(e), meta).await.unwrap();
            if e == 2 {
                store.compact().await.unwrap();
            }
        }
        store.close().await.unwrap();
    }
    let sp_dir = tempfile::tempdir().unwrap();
    let sp = open_object_store(sp_dir.path().to_str().unwrap(), &Default::default()).unwrap();
    // Only the latest checkpoint can go.
    let e = savepoint::export(os_of(&src), "default", Some(Epoch(3)), sp.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("only the latest"), "{e}");
    let info = savepoint::export(os_of(&src), "default", None, sp.clone())
        .await
        .unwrap();
    assert_eq!(
        (info.checkpoint.epoch, info.checkpoint.watermark),
        (Epoch(4), 4)
    );
    assert!(info.files > 0 && info.bytes > 0);
    assert_eq!(savepoint::read(sp.clone()).await.unwrap(), info);
    let e = savepoint::export(os_of(&src), "default", None, sp.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already holds"), "{e}");
    drop(src); // the source store is gone: the savepoint stands alone
    let dst = backend(kind, "savepoint-dst");
    let restored = savepoint::restore(sp.clone(), os_of(&dst), "job-2")
        .await
        .unwrap();
    assert_eq!(restored.checkpoint, info.checkpoint);
    let e = savepoint::restore(sp.clone(), os_of(&dst), "job-2")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already holds"), "{e}");
    let store = Store::open(riverbed_state_store::Options {
        namespace: "job-2".into(),
        ..small_options(&dst)
    })
    .await
    .unwrap();
    assert_eq!(store.committed_epoch(), Epoch(4));
    assert_eq!(store.latest_checkpoint().unwrap().watermark, 4);
    let got = store.scan(&[], None, Epoch(4), usize::MAX).await.unwrap();
    assert_eq!(got, want.into_iter().collect::<Vec<_>>());
    // It goes on from there.
    let mut batch = WriteBatch::new();
    batch.put(key(1), Bytes::from("after"));
    store.write(Epoch(5), &batch).await.unwrap();
    store.commit(Epoch(5)).await.unwrap();
    store.close().await.unwrap();
    // A folder without the descriptor is not a savepoint.
    sp.delete(&Path::from(savepoint::DESCRIPTOR)).await.unwrap();
    let e = savepoint::read(sp).await.unwrap_err();
    assert!(e.to_string().contains("not a savepoint"), "{e}");
}

on_both!(savepoints_restore_on_another_store, savepoints_are_portable);
