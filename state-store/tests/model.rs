//! Model test: random sequences of writes, reads, flushes, commits,
//! checkpoints, discards, compactions and reopenings, checked after every
//! step against a plain `BTreeMap` model of what each epoch should see,
//! every retained checkpoint's epoch included.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::{backend, runtime, small_options, Kind};
use proptest::prelude::*;
use riverbed_state_store::keys::{key_group_end, key_group_start};
use riverbed_state_store::{full_key, Epoch, KeyGroup, Store, TableId, WriteBatch};

#[derive(Debug, Clone)]
enum Op {
    Put(u16, u8),
    PutBatch(Vec<(u16, u8)>),
    Delete(u16),
    DeleteRange(u16, u16),
    DeleteKeyGroups(u8, u8),
    Get(u16, bool),
    /// A multi-get of these keys (in this order, repeats allowed).
    MultiGet(Vec<u16>, bool),
    Scan(u16, Option<u16>, bool, usize),
    Flush,
    Commit,
    Checkpoint,
    /// A read at the `n`-th newest retained checkpoint (key or full scan).
    ReadCheckpoint(usize, Option<u16>),
    NextEpoch,
    Discard,
    Compact,
    CompactIdle,
    Reopen,
}

const KEYS: u16 = 160;

/// Key `n`: spread over 2 tables and 4 key groups.
fn key(n: u16) -> Bytes {
    let table = TableId(1 + u32::from(n % 2));
    let group = KeyGroup((n / 2) % 4);
    full_key(table, group, format!("user{:03}", n / 8).as_bytes())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        40 => (0..KEYS, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        6 => prop::collection::vec((0..KEYS, any::<u8>()), 1..40).prop_map(Op::PutBatch),
        8 => (0..KEYS).prop_map(Op::Delete),
        3 => (0..KEYS, 0..KEYS).prop_map(|(a, b)| Op::DeleteRange(a, b)),
        1 => (0..4u8, 0..4u8).prop_map(|(a, b)| Op::DeleteKeyGroups(a, b)),
        15 => (0..KEYS, any::<bool>()).prop_map(|(k, c)| Op::Get(k, c)),
        4 => (prop::collection::vec(0..KEYS, 1..60), any::<bool>()).prop_map(|(k, c)| Op::MultiGet(k, c)),
        4 => (0..KEYS, prop::option::of(0..KEYS), any::<bool>(), 1..200usize).prop_map(|(a, b, c, l)| Op::Scan(a, b, c, l)),
        2 => Just(Op::Flush),
        3 => Just(Op::Commit),
        3 => Just(Op::Checkpoint),
        6 => (0..4usize, prop::option::of(0..KEYS)).prop_map(|(n, k)| Op::ReadCheckpoint(n, k)),
        2 => Just(Op::NextEpoch),
        1 => Just(Op::Discard),
        1 => Just(Op::Compact),
        2 => Just(Op::CompactIdle),
        1 => Just(Op::Reopen),
    ]
}

/// The reference: the committed state, plus the writes of each uncommitted
/// epoch in the order they happened.
#[derive(Default)]
struct Model {
    committed: BTreeMap<Bytes, Bytes>,
    committed_epoch: u64,
    pending: BTreeMap<u64, Vec<MOp>>,
    /// Retained checkpoints, oldest first: epoch and what it sees.
    checkpoints: Vec<(u64, BTreeMap<Bytes, Bytes>)>,
}

/// `retained_checkpoints` of the test's options.
const RETAINED: usize = 3;

#[derive(Clone)]
enum MOp {
    Put(Bytes, Bytes),
    Delete(Bytes),
    DeleteRange(Bytes, Bytes),
}

fn apply(state: &mut BTreeMap<Bytes, Bytes>, op: &MOp) {
    match op {
        MOp::Put(k, v) => {
            state.insert(k.clone(), v.clone());
        }
        MOp::Delete(k) => {
            state.remove(k);
        }
        MOp::DeleteRange(s, e) => state.retain(|k, _| !(k >= s && k < e)),
    }
}

impl Model {
    fn view(&self, epoch: u64) -> BTreeMap<Bytes, Bytes> {
        let mut s = self.committed.clone();
        for (_, ops) in self.pending.range(..=epoch) {
            ops.iter().for_each(|op| apply(&mut s, op));
        }
        s
    }

    fn commit(&mut self, epoch: u64) {
        let later = self.pending.split_off(&(epoch + 1));
        for (_, ops) in std::mem::replace(&mut self.pending, later) {
            ops.iter().for_each(|op| apply(&mut self.committed, op));
        }
        self.committed_epoch = epoch;
    }
}

fn value(step: usize, v: u8) -> Bytes {
    Bytes::from(format!("{step}:{}", "x".repeat(usize::from(v % 48))))
}

/// Every key in descending order, then every 16th again: a multi-get
/// that meets each file's whole key range, out of order and with repeats.
fn every_key_and_repeats() -> Vec<Bytes> {
    (0..KEYS)
        .rev()
        .chain((0..KEYS).step_by(16))
        .map(key)
        .collect()
}

async fn check_all(store: &Store, model: &Model, epoch: u64, ctx: &str) {
    for e in [model.committed_epoch, epoch] {
        let view = model.view(e);
        let got = store
            .scan(&[], None, Epoch(e), usize::MAX)
            .await
            .expect("full scan");
        let want: Vec<_> = view.clone().into_iter().collect();
        assert_eq!(got, want, "full scan at epoch {e} after {ctx}");
        let keys = every_key_and_repeats();
        let got = store.multi_get(&keys, Epoch(e)).await.expect("multi-get");
        let want: Vec<_> = keys.iter().map(|k| view.get(k).cloned()).collect();
        assert_eq!(got, want, "multi-get of every key at epoch {e} after {ctx}");
    }
    let retained: Vec<u64> = store.checkpoints().iter().map(|c| c.epoch.0).collect();
    let modeled: Vec<u64> = model.checkpoints.iter().map(|(e, _)| *e).collect();
    assert_eq!(retained, modeled, "retained checkpoints after {ctx}");
    for (e, view) in &model.checkpoints {
        let want: Vec<_> = view.clone().into_iter().collect();
        let got = store
            .scan(&[], None, Epoch(*e), usize::MAX)
            .await
            .expect("scan at a retained checkpoint");
        assert_eq!(got, want, "full scan at checkpoint {e} after {ctx}");
    }
}

fn run_case(kind: Kind, ops: Vec<Op>, background: bool) {
    let rt = runtime();
    rt.block_on(async move {
        let b = backend(kind, "model");
        let mut opts = small_options(&b);
        opts.background_compaction = background;
        let mut store = Store::open(opts.clone()).await.expect("open");
        let mut model = Model::default();
        let mut epoch = 1u64;
        // Counters summed over every store instance of the case (reopen starts new ones).
        let (mut flushes, mut compactions) = (0, 0);
        for (step, op) in ops.into_iter().enumerate() {
            let ctx = format!("step {step}: {op:?}");
            let read_epoch = |committed: bool| {
                if committed {
                    model.committed_epoch
                } else {
                    epoch
                }
            };
            match op {
                Op::Put(k, v) => {
                    let mut batch = WriteBatch::new();
                    batch.put(key(k), value(step, v));
                    store.write(Epoch(epoch), &batch).await.expect(&ctx);
                    model
                        .pending
                        .entry(epoch)
                        .or_default()
                        .push(MOp::Put(key(k), value(step, v)));
                    let got = store.get(&key(k), Epoch(epoch)).await.expect(&ctx);
                    assert_eq!(got, Some(value(step, v)), "{ctx}");
                }
                Op::PutBatch(items) => {
                    let mut batch = WriteBatch::new();
                    for (k, v) in &items {
                        batch.put(key(*k), value(step, *v));
                        model
                            .pending
                            .entry(epoch)
                            .or_default()
                            .push(MOp::Put(key(*k), value(step, *v)));
                    }
                    store.write(Epoch(epoch), &batch).await.expect(&ctx);
                }
                Op::Delete(k) => {
                    let mut batch = WriteBatch::new();
                    batch.delete(key(k));
                    store.write(Epoch(epoch), &batch).await.expect(&ctx);
                    model
                        .pending
                        .entry(epoch)
                        .or_default()
                        .push(MOp::Delete(key(k)));
                    assert_eq!(
                        store.get(&key(k), Epoch(epoch)).await.expect(&ctx),
                        None,
                        "{ctx}"
                    );
                }
                Op::DeleteRange(a, b) => {
                    let (s, e) = if key(a) <= key(b) {
                        (key(a), key(b))
                    } else {
                        (key(b), key(a))
                    };
                    if s == e {
                        continue;
                    }
                    let mut batch = WriteBatch::new();
                    batch.delete_range(s.clone(), e.clone());
                    store.write(Epoch(epoch), &batch).await.expect(&ctx);
                    model
                        .pending
                        .entry(epoch)
                        .or_default()
                        .push(MOp::DeleteRange(s, e));
                }
                Op::DeleteKeyGroups(a, b) => {
                    let (lo, hi) = (a.min(b), a.max(b));
                    let s = key_group_start(TableId(1), KeyGroup(u16::from(lo)));
                    let e = key_group_end(TableId(1), KeyGroup(u16::from(hi)));
                    let mut batch = WriteBatch::new();
                    batch.delete_range(s.clone(), e.clone());
                    store.write(Epoch(epoch), &batch).await.expect(&ctx);
                    model
                        .pending
                        .entry(epoch)
                        .or_default()
                        .push(MOp::DeleteRange(s, e));
                }
                Op::Get(k, committed) => {
                    let e = read_epoch(committed);
                    let got = store.get(&key(k), Epoch(e)).await.expect(&ctx);
                    assert_eq!(
                        got,
                        model.view(e).get(&key(k)).cloned(),
                        "{ctx} at epoch {e}"
                    );
                }
                Op::MultiGet(keys, committed) => {
                    let e = read_epoch(committed);
                    let keys: Vec<Bytes> = keys.into_iter().map(key).collect();
                    let got = store.multi_get(&keys, Epoch(e)).await.expect(&ctx);
                    let view = model.view(e);
                    let want: Vec<_> = keys.iter().map(|k| view.get(k).cloned()).collect();
                    assert_eq!(got, want, "{ctx}: multi-get at epoch {e}");
                }
                Op::Scan(a, b, committed, limit) => {
                    let e = read_epoch(committed);
                    let start = key(a);
                    let end = b.map(key);
                    let got = store
                        .scan(&start, end.as_deref(), Epoch(e), limit)
                        .await
                        .expect(&ctx);
                    let want: Vec<_> = model
                        .view(e)
                        .into_iter()
                        .filter(|(k, _)| *k >= start && end.as_ref().is_none_or(|end| k < end))
                        .take(limit)
                        .collect();
                    assert_eq!(got, want, "{ctx} at epoch {e}");
                }
                Op::Flush => {
                    store.flush().await.expect(&ctx);
                    check_all(&store, &model, epoch, &ctx).await;
                }
                Op::Commit => {
                    store.commit(Epoch(epoch)).await.expect(&ctx);
                    model.commit(epoch);
                    epoch += 1;
                    check_all(&store, &model, epoch, &ctx).await;
                }
                Op::Checkpoint => {
                    let meta = riverbed_state_store::CheckpointMeta {
                        job: "model".into(),
                        ..Default::default()
                    };
                    store
                        .commit_checkpoint(Epoch(epoch), meta)
                        .await
                        .expect(&ctx);
                    model.commit(epoch);
                    model.checkpoints.push((epoch, model.committed.clone()));
                    if model.checkpoints.len() > RETAINED {
                        model.checkpoints.remove(0);
                    }
                    epoch += 1;
                    check_all(&store, &model, epoch, &ctx).await;
                }
                Op::ReadCheckpoint(n, k) => {
                    let Some(i) = model.checkpoints.len().checked_sub(1 + n) else {
                        continue;
                    };
                    let (e, view) = &model.checkpoints[i];
                    match k {
                        Some(k) => {
                            let got = store.get(&key(k), Epoch(*e)).await.expect(&ctx);
                            assert_eq!(got, view.get(&key(k)).cloned(), "{ctx} at checkpoint {e}");
                        }
                        None => {
                            let got = store
                                .scan(&[], None, Epoch(*e), usize::MAX)
                                .await
                                .expect(&ctx);
                            let want: Vec<_> = view.clone().into_iter().collect();
                            assert_eq!(got, want, "{ctx} at checkpoint {e}");
                        }
                    }
                }
                Op::NextEpoch => epoch += 1,
                Op::Discard => {
                    store.discard(Epoch(epoch)).await.expect(&ctx);
                    model.pending.remove(&epoch);
                    check_all(&store, &model, epoch, &ctx).await;
                }
                Op::Compact => {
                    store.compact().await.expect(&ctx);
                    store.check_invariants();
                    check_all(&store, &model, epoch, &ctx).await;
                }
                Op::CompactIdle => {
                    store.compact_until_idle().await.expect(&ctx);
                    store.check_invariants();
                }
                Op::Reopen => {
                    flushes += store.metrics().flushes;
                    compactions += store.metrics().compactions;
                    store.close().await.expect(&ctx);
                    drop(store);
                    store = Store::open(opts.clone()).await.expect(&ctx);
                    model.pending.clear();
                    assert_eq!(
                        store.committed_epoch(),
                        Epoch(model.committed_epoch),
                        "{ctx}"
                    );
                    check_all(&store, &model, epoch, &ctx).await;
                }
            }
            if step % 100 == 99 {
                check_all(&store, &model, epoch, &ctx).await;
            }
        }
        store.compact().await.expect("final compaction");
        store.check_invariants();
        check_all(&store, &model, epoch, "final compaction").await;
        let m = store.metrics();
        flushes += m.flushes;
        compactions += m.compactions;
        assert!(
            flushes > 0 && compactions > 0,
            "the case did not exercise flush ({flushes}) and compaction ({compactions})"
        );
        store.close().await.expect("close");
    });
}

fn cases(var: &str, default: u32) -> u32 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases("RIVERBED_MODEL_CASES", 24),
        max_shrink_iters: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_model_on_local_directory(
        ops in prop::collection::vec(op(), 2000..3000),
        background in any::<bool>(),
    ) {
        run_case(Kind::Local, ops, background);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases("RIVERBED_MODEL_S3_CASES", 4),
        max_shrink_iters: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_model_on_s3(
        ops in prop::collection::vec(op(), 2000..2500),
        background in any::<bool>(),
    ) {
        run_case(Kind::S3, ops, background);
    }
}
