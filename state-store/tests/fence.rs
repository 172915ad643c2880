//! Fencing: a run of a job that takes a namespace over moves its writer
//! generation on, durably, and from then on the namespace refuses writes of
//! any other generation. Checked on a local directory and on S3, across a
//! reopen, and against an old writer that keeps writing while the fence
//! goes up: once the fence has returned and the new run has rolled back,
//! nothing of the old writer is left above the committed epoch.

mod common;

use std::sync::Arc;

use common::{backend, small_options, Kind};
use riverbed_state_store::{Epoch, Error, ErrorKind, Store, WriteBatch};

/// `name` under table 1, key group 0 (the 6-byte prefix every key has).
fn key(name: &[u8]) -> Vec<u8> {
    let mut k = vec![0, 0, 0, 1, 0, 0];
    k.extend_from_slice(name);
    k
}

fn batch(name: &[u8], value: &[u8]) -> WriteBatch {
    let mut b = WriteBatch::new();
    b.put(key(name), value);
    b
}

async fn fences_old_writers(kind: Kind) {
    let b = backend(kind, "fence");
    let store = Store::open(small_options(&b)).await.unwrap();
    assert_eq!(store.writer_generation(), 0);
    let first = store.fence().await.unwrap();
    assert_eq!(first, 1);
    store
        .write_fenced(Epoch(1), &batch(b"a", b"1"), first)
        .await
        .unwrap();
    store.commit(Epoch(1)).await.unwrap();
    let second = store.fence().await.unwrap();
    assert_eq!(second, 2);
    let refused = store
        .write_fenced(Epoch(2), &batch(b"a", b"old"), first)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Fenced);
    assert!(
        refused.to_string().contains("generation 2")
            && refused.to_string().contains("generation 1"),
        "{refused}"
    );
    store
        .write_fenced(Epoch(2), &batch(b"a", b"2"), second)
        .await
        .unwrap();
    store.commit(Epoch(2)).await.unwrap();
    store.close().await.unwrap();
    // The generation is in the manifest: a reopened store still refuses
    // the old writer, and its refused write left nothing.
    let store = Store::open(small_options(&b)).await.unwrap();
    assert_eq!(store.writer_generation(), 2);
    assert!(matches!(
        store
            .write_fenced(Epoch(3), &batch(b"b", b"x"), first)
            .await,
        Err(Error::Fenced(_))
    ));
    assert_eq!(
        store.get(&key(b"a"), Epoch(2)).await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_refuses_the_old_writer_on_a_local_directory() {
    fences_old_writers(Kind::Local).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_refuses_the_old_writer_on_s3() {
    fences_old_writers(Kind::S3).await;
}

/// An old writer hammers the namespace while a new run fences it and rolls
/// back: every write of the old generation after the fence is refused, and
/// none that got in before it survives the rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_of_a_writer_racing_its_fence_survives_the_rollback() {
    let b = backend(Kind::Local, "fence-race");
    let store = Arc::new(Store::open(small_options(&b)).await.unwrap());
    let old = store.fence().await.unwrap();
    store
        .write_fenced(Epoch(1), &batch(b"base", b"kept"), old)
        .await
        .unwrap();
    store.commit(Epoch(1)).await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let (mut ok, mut fenced) = (0u64, 0u64);
            for i in 0u64..20_000 {
                let key = format!("old-{i:06}");
                match store
                    .write_fenced(Epoch(2), &batch(key.as_bytes(), b"v"), old)
                    .await
                {
                    Ok(()) => ok += 1,
                    Err(Error::Fenced(_)) => fenced += 1,
                    Err(e) => panic!("old writer: {e}"),
                }
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            (ok, fenced)
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let new = store.fence().await.unwrap();
    store.rollback_to_committed().await.unwrap();
    let (ok, fenced) = writer.await.unwrap();
    assert!(
        fenced > 0,
        "the fence went up after the old writer was done ({ok} writes)"
    );
    // The new run sees the committed state and nothing of the old writer.
    store
        .write_fenced(Epoch(2), &batch(b"new", b"1"), new)
        .await
        .unwrap();
    store.commit(Epoch(2)).await.unwrap();
    let all = store.scan(b"", None, Epoch(2), usize::MAX).await.unwrap();
    let keys: Vec<&[u8]> = all.iter().map(|(k, _)| &k[6..]).collect();
    assert_eq!(keys, vec![&b"base"[..], &b"new"[..]], "old writes survived");
    store.close().await.unwrap();
}
