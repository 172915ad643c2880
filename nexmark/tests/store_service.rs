//! The store service's API, crossed for real: a `riverbed-store` process
//! on 127.0.0.1 driven through its gRPC client.
//!
//! - Random operations through every data- and control-plane call,
//!   compared with a `BTreeMap` model of the committed and the open epoch.
//! - Malformed requests (bad names, wrong epochs, oversized or garbage
//!   fields) get precise statuses, never crash the server and never change
//!   what it stores: compared with a snapshot taken before them.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::StoreServer;
use riverbed_state_store::grpc::pb;
use riverbed_state_store::grpc::pb::state_store_client::StateStoreClient;
use tonic::transport::Channel;
use tonic::Code;

type Client = StateStoreClient<Channel>;

/// A seeded xorshift: the same run every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    /// Up to `max - 1` random bytes.
    fn some_bytes(&mut self, max: u64) -> Vec<u8> {
        let n = self.below(max) as usize;
        self.bytes(n)
    }
}

fn key(i: u64) -> Bytes {
    Bytes::from(vec![0, 0, 0, 1, (i >> 8) as u8, i as u8])
}

fn put(k: Bytes, v: Vec<u8>) -> pb::WriteOp {
    pb::WriteOp {
        op: Some(pb::write_op::Op::Put(pb::Put {
            key: k,
            value: v.into(),
        })),
    }
}

/// Everything in `[start, end)` at `epoch`, by the streaming scan.
async fn scan_all(c: &mut Client, ns: &str, epoch: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut s = c
        .scan(pb::ScanRequest {
            namespace: ns.into(),
            epoch,
            start: Bytes::new(),
            end: Bytes::from(vec![0xff; 8]),
            limit: 0,
            page_size: 7,
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = BTreeMap::new();
    while let Some(page) = s.message().await.unwrap() {
        assert!(page.entries.len() <= 7, "a page over its size");
        for e in page.entries {
            out.insert(e.key.to_vec(), e.value.to_vec());
        }
    }
    out
}

#[test]
fn random_operations_through_every_call_agree_with_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let server = StoreServer::start(
        &dir.path().join("store"),
        &dir.path().join("store.log"),
        &[],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Client::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
        let ns = "model";
        let health = c.health(pb::HealthRequest {}).await.unwrap().into_inner();
        assert_eq!(health.status, "serving");
        let t = c
            .register_table(pb::RegisterTableRequest {
                namespace: ns.into(),
                name: "t".into(),
                info: None,
            })
            .await
            .unwrap()
            .into_inner()
            .table_id;
        assert_eq!(t, 1, "the first table of a namespace");
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut open = committed.clone();
        let mut epoch = 1u64;
        let mut checkpoints = 0;
        for step in 0..600 {
            match rng.below(100) {
                0..=49 => {
                    // A batch of puts, deletes and a range delete, applied in order.
                    let mut ops = Vec::new();
                    for _ in 0..1 + rng.below(8) {
                        let k = key(rng.below(200));
                        match rng.below(10) {
                            0..=6 => {
                                let v = rng.some_bytes(40);
                                open.insert(k.to_vec(), v.clone());
                                ops.push(put(k, v));
                            }
                            7..=8 => {
                                open.remove(&k[..]);
                                ops.push(pb::WriteOp {
                                    op: Some(pb::write_op::Op::Delete(pb::Delete { key: k })),
                                });
                            }
                            _ => {
                                let (a, b) = (rng.below(200), rng.below(200));
                                let (a, b) = (key(a.min(b)), key(a.max(b) + 1));
                                open.retain(|k, _| !(k[..] >= a[..] && k[..] < b[..]));
                                ops.push(pb::WriteOp {
                                    op: Some(pb::write_op::Op::DeleteRange(pb::DeleteRange {
                                        start: a,
                                        end: b,
                                    })),
                                });
                            }
                        }
                    }
                    c.write(pb::WriteRequest {
                        namespace: ns.into(),
                        epoch,
                        ops,
                        generation: 0,
                    })
                    .await
                    .unwrap();
                }
                50..=64 => {
                    // Multi-get at the open epoch and at the committed one.
                    let keys: Vec<Bytes> = (0..10).map(|_| key(rng.below(200))).collect();
                    for (at, model) in [(epoch, &open), (epoch - 1, &committed)] {
                        let got = c
                            .multi_get(pb::MultiGetRequest {
                                namespace: ns.into(),
                                epoch: at,
                                keys: keys.clone(),
                            })
                            .await
                            .unwrap()
                            .into_inner();
                        for (k, v) in keys.iter().zip(&got.values) {
                            let want = model.get(&k[..]);
                            assert_eq!(v.found, want.is_some(), "step {step}: {k:?} at {at}");
                            if let Some(w) = want {
                                assert_eq!(&v.value[..], &w[..], "step {step}");
                            }
                        }
                    }
                }
                65..=74 => {
                    // One page of a range, by ReadPage.
                    let (a, b) = (rng.below(200), rng.below(200));
                    let (a, b) = (key(a.min(b)), key(a.max(b) + 1));
                    let limit = 1 + rng.below(20);
                    let page = c
                        .read_page(pb::ScanRequest {
                            namespace: ns.into(),
                            epoch,
                            start: a.clone(),
                            end: b.clone(),
                            limit,
                            page_size: 0,
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    let want: Vec<(Vec<u8>, Vec<u8>)> = open
                        .range(a.to_vec()..b.to_vec())
                        .take(limit as usize)
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let got: Vec<(Vec<u8>, Vec<u8>)> = page
                        .entries
                        .iter()
                        .map(|e| (e.key.to_vec(), e.value.to_vec()))
                        .collect();
                    assert_eq!(got, want, "step {step}");
                }
                75..=86 => {
                    // Commit, every other one a checkpoint.
                    let checkpoint = (rng.below(2) == 0).then(|| pb::Checkpoint {
                        epoch,
                        job: "model".into(),
                        ..Default::default()
                    });
                    checkpoints += usize::from(checkpoint.is_some());
                    c.commit(pb::CommitRequest {
                        namespace: ns.into(),
                        epoch,
                        checkpoint,
                    })
                    .await
                    .unwrap();
                    committed = open.clone();
                    epoch += 1;
                }
                87..=92 => {
                    // Roll back the open epoch.
                    c.rollback(pb::RollbackRequest {
                        namespace: ns.into(),
                        fence: false,
                    })
                    .await
                    .unwrap();
                    open = committed.clone();
                }
                _ => {
                    // The whole committed state, by the streaming scan.
                    assert_eq!(
                        scan_all(&mut c, ns, epoch - 1).await,
                        committed,
                        "step {step}"
                    );
                    assert_eq!(scan_all(&mut c, ns, epoch).await, open, "step {step}");
                }
            }
        }
        let status = c
            .status(pb::StatusRequest {
                namespace: ns.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.committed_epoch, epoch - 1);
        let listed = c
            .list_checkpoints(pb::ListCheckpointsRequest {
                namespace: ns.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .checkpoints;
        assert!(
            !listed.is_empty() && listed.len() <= checkpoints,
            "{listed:?}"
        );
        let tables = c
            .list_tables(pb::ListTablesRequest {
                namespace: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .tables;
        assert_eq!(tables.len(), 1);
        assert_eq!(
            (tables[0].namespace.as_str(), tables[0].name.as_str()),
            ("model", "t")
        );
        // Dropping the namespace leaves nothing: a new one starts empty.
        c.drop_namespace(pb::DropNamespaceRequest {
            namespace: ns.into(),
        })
        .await
        .unwrap();
        assert!(scan_all(&mut c, ns, 1).await.is_empty());
        let status = c
            .status(pb::StatusRequest {
                namespace: ns.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.committed_epoch, 0);
    });
}

#[test]
fn malformed_requests_get_precise_statuses_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("store.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_key_bytes = 64\nmax_value_bytes = 1024\nmax_request_bytes = 65536\nmax_scan_page = 100\n",
    )
    .unwrap();
    let mut server = StoreServer::start(
        &dir.path().join("store"),
        &dir.path().join("store.log"),
        &["--config", config.to_str().unwrap()],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Client::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
        let ns = "kept";
        // What must survive: two committed epochs of data.
        for epoch in 1..=2u64 {
            let ops = (0..50)
                .map(|i| put(key(i * epoch), vec![epoch as u8; 30]))
                .collect();
            c.write(pb::WriteRequest {
                namespace: ns.into(),
                epoch,
                ops,
                generation: 0,
            })
            .await
            .unwrap();
            c.commit(pb::CommitRequest {
                namespace: ns.into(),
                epoch,
                checkpoint: None,
            })
            .await
            .unwrap();
        }
        let snapshot = scan_all(&mut c, ns, 2).await;
        assert_eq!(snapshot.len(), 75);

        // The named refusals first, each with its status.
        let big = pb::WriteRequest {
            generation: 0,
            namespace: ns.into(),
            epoch: 3,
            ops: (0..100).map(|i| put(key(i), vec![1; 1000])).collect(),
        };
        let e = c.write(big).await.unwrap_err();
        assert_eq!(e.code(), Code::OutOfRange, "an oversized batch: {e:?}");
        let cases: Vec<(pb::WriteRequest, Code, &str)> = vec![
            (
                pb::WriteRequest {
                    generation: 0,
                    namespace: ns.into(),
                    epoch: 2,
                    ops: vec![put(key(1), vec![9])],
                },
                Code::FailedPrecondition,
                "epoch 2 is sealed or committed",
            ),
            (
                pb::WriteRequest {
                    generation: 0,
                    namespace: ns.into(),
                    epoch: 3,
                    ops: vec![put(Bytes::from(vec![1u8; 65]), vec![9])],
                },
                Code::InvalidArgument,
                "max_key_bytes",
            ),
            (
                pb::WriteRequest {
                    generation: 0,
                    namespace: ns.into(),
                    epoch: 3,
                    ops: vec![put(key(1), vec![9; 1025])],
                },
                Code::InvalidArgument,
                "max_value_bytes",
            ),
            (
                pb::WriteRequest {
                    generation: 0,
                    namespace: "no/such".into(),
                    epoch: 3,
                    ops: vec![put(key(1), vec![9])],
                },
                Code::InvalidArgument,
                "namespace",
            ),
        ];
        for (req, code, why) in cases {
            let e = c.write(req).await.unwrap_err();
            assert_eq!(e.code(), code, "{e:?}");
            assert!(e.message().contains(why), "{e:?}");
        }
        // A batch with one bad op is refused whole: its good ops are not applied.
        let e = c
            .write(pb::WriteRequest {
                generation: 0,
                namespace: ns.into(),
                epoch: 3,
                ops: vec![
                    put(key(500), vec![1]),
                    put(Bytes::from(vec![2u8; 100]), vec![1]),
                ],
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        let got = c
            .multi_get(pb::MultiGetRequest {
                namespace: ns.into(),
                epoch: 3,
                keys: vec![key(500)],
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!got.values[0].found, "half a batch was applied");

        // Then a seeded fuzz run: random bytes in every field of every call.
        let mut rng = Rng(0xbad_5eed_0000_0001);
        let mut refused = 0;
        for _ in 0..1500 {
            let name = |rng: &mut Rng| -> String {
                match rng.below(4) {
                    0 => ns.to_string(),
                    1 => "other".to_string(),
                    2 => String::from_utf8_lossy(&rng.some_bytes(12)).into_owned(),
                    _ => "x".repeat(rng.below(300) as usize),
                }
            };
            let namespace = name(&mut rng);
            // Writes never reach the kept namespace's committed epochs: at
            // most they open a later one, which the snapshot does not see.
            let epoch = match rng.below(4) {
                0 => 0,
                1 => rng.below(3),
                2 => 3 + rng.below(3),
                _ => rng.next(),
            };
            let garbage = |rng: &mut Rng| Bytes::from(rng.some_bytes(80));
            let r = match rng.below(7) {
                0 => {
                    let ops = (0..rng.below(4))
                        .map(|_| match rng.below(4) {
                            0 => put(garbage(&mut rng), rng.some_bytes(2000)),
                            1 => pb::WriteOp { op: None },
                            2 => pb::WriteOp {
                                op: Some(pb::write_op::Op::Delete(pb::Delete {
                                    key: garbage(&mut rng),
                                })),
                            },
                            _ => pb::WriteOp {
                                op: Some(pb::write_op::Op::DeleteRange(pb::DeleteRange {
                                    start: garbage(&mut rng),
                                    end: garbage(&mut rng),
                                })),
                            },
                        })
                        .collect();
                    // Only later epochs of the kept namespace: the fuzz must
                    // not be able to legitimately change the snapshot.
                    let epoch = if namespace == ns {
                        3 + epoch % 1000
                    } else {
                        epoch
                    };
                    c.write(pb::WriteRequest {
                        generation: 0,
                        namespace,
                        epoch,
                        ops,
                    })
                    .await
                    .map(|_| ())
                }
                1 => c
                    .multi_get(pb::MultiGetRequest {
                        namespace,
                        epoch,
                        keys: (0..rng.below(5)).map(|_| garbage(&mut rng)).collect(),
                    })
                    .await
                    .map(|_| ()),
                2 => c
                    .read_page(pb::ScanRequest {
                        namespace,
                        epoch,
                        start: garbage(&mut rng),
                        end: garbage(&mut rng),
                        limit: rng.next() % 1000,
                        page_size: rng.next() as u32,
                    })
                    .await
                    .map(|_| ()),
                3 => c
                    .query(pb::QueryRequest {
                        namespace,
                        table: String::from_utf8_lossy(&rng.bytes(4)).into_owned(),
                        key: match rng.below(3) {
                            0 => None,
                            1 => Some(pb::query_request::Key::KeyBytes(garbage(&mut rng))),
                            _ => Some(pb::query_request::Key::KeyText(
                                String::from_utf8_lossy(&rng.bytes(10)).into_owned(),
                            )),
                        },
                        epoch,
                        limit: rng.next() as u32,
                    })
                    .await
                    .map(|_| ()),
                4 => c
                    .register_table(pb::RegisterTableRequest {
                        namespace: if namespace == ns {
                            "other".into()
                        } else {
                            namespace
                        },
                        name: String::from_utf8_lossy(&rng.some_bytes(300)).into_owned(),
                        info: Some(pb::TableInfo {
                            key_groups: rng.next() as u32 % 70_000,
                            kind: ["values", "entries", "raw", "bogus"][rng.below(4) as usize]
                                .into(),
                            key_schema: String::from_utf8_lossy(&rng.bytes(6)).into_owned(),
                            value_schema: ["i64", "list<", "(i64,str)", "?"][rng.below(4) as usize]
                                .into(),
                            ttl_ms: rng.next(),
                            time_shard_ms: rng.next(),
                        }),
                    })
                    .await
                    .map(|_| ()),
                5 => c
                    .commit(pb::CommitRequest {
                        // Committing the kept namespace's past is refused.
                        namespace: ns.into(),
                        epoch: rng.below(3),
                        checkpoint: None,
                    })
                    .await
                    .map(|_| ()),
                _ => c.status(pb::StatusRequest { namespace }).await.map(|_| ()),
            };
            if let Err(e) = r {
                refused += 1;
                assert!(
                    matches!(
                        e.code(),
                        Code::InvalidArgument
                            | Code::FailedPrecondition
                            | Code::NotFound
                            | Code::OutOfRange
                    ),
                    "an imprecise status: {e:?}"
                );
            }
        }
        assert!(
            refused > 500,
            "the fuzz run hardly tested refusals: {refused}"
        );
        // Alive, healthy and unchanged.
        let health = c.health(pb::HealthRequest {}).await.unwrap().into_inner();
        assert_eq!(health.status, "serving");
        let status = c
            .status(pb::StatusRequest {
                namespace: ns.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.committed_epoch, 2);
        assert_eq!(scan_all(&mut c, ns, 2).await, snapshot);
    });
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited"
    );
    server.kill();
}

/// A `data` token (a worker's) reads and writes its namespace but cannot
/// commit, roll back, register tables or drop it: the control plane is the
/// coordinator's.
#[test]
fn a_data_plane_token_writes_but_cannot_commit() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "W job data\nC job rw\n").unwrap();
    let server = StoreServer::start(
        &dir.path().join("store"),
        &dir.path().join("store.log"),
        &["--token-file", tokens.to_str().unwrap()],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = Client::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
        fn with<T>(token: &str, msg: T) -> tonic::Request<T> {
            let mut r = tonic::Request::new(msg);
            r.metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
            r
        }
        let write = pb::WriteRequest {
            generation: 0,
            namespace: "job".into(),
            epoch: 1,
            ops: vec![put(key(1), vec![1])],
        };
        c.write(with("W", write)).await.unwrap();
        let commit = || pb::CommitRequest {
            namespace: "job".into(),
            epoch: 1,
            checkpoint: None,
        };
        let e = c.commit(with("W", commit())).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert!(e.message().contains("committing"), "{e:?}");
        let e = c
            .rollback(with(
                "W",
                pb::RollbackRequest {
                    namespace: "job".into(),
                    fence: false,
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let register = pb::RegisterTableRequest {
            namespace: "job".into(),
            name: "t".into(),
            info: None,
        };
        let e = c.register_table(with("W", register)).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        let e = c
            .drop_namespace(with(
                "W",
                pb::DropNamespaceRequest {
                    namespace: "job".into(),
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
        // The coordinator's token commits what the worker wrote.
        c.commit(with("C", commit())).await.unwrap();
        let got = c
            .multi_get(with(
                "W",
                pb::MultiGetRequest {
                    namespace: "job".into(),
                    epoch: 1,
                    keys: vec![key(1)],
                },
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(got.values[0].found);
    });
}

/// Two runs of one job on one namespace: the one that started last (its
/// rollback fences) owns it, and the other's writes are refused with a
/// clear status — also after the store was killed and started again on its
/// files, since the generation is in the manifest.
#[test]
fn the_run_that_took_a_namespace_over_fences_the_old_one() {
    use riverbed_compute::state::{RemoteBackend, RemoteOptions, StateBackend, StateControl};
    use riverbed_state_store::{Epoch, WriteBatch};
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("store");
    let mut server = StoreServer::start(&url, &dir.path().join("store1.log"), &[]);
    let connect = |addr: &str| RemoteBackend::connect(RemoteOptions::new(addr, "job")).unwrap();
    let (old, new) = (connect(&server.addr), connect(&server.addr));
    let one = |v: u8| {
        let mut b = WriteBatch::new();
        b.put(key(1), [v]);
        b
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        old.rollback().await.unwrap();
        old.write(Epoch(1), &one(1)).await.unwrap();
        new.rollback().await.unwrap();
        let e = old.write(Epoch(1), &one(2)).await.unwrap_err();
        assert!(
            e.to_string().contains("fenced") && e.to_string().contains("took it over"),
            "{e}"
        );
        new.write(Epoch(1), &one(3)).await.unwrap();
        new.commit(Epoch(1)).await.unwrap();
    });
    drop((old, new));
    server.kill();
    let server = StoreServer::start(&url, &dir.path().join("store2.log"), &[]);
    rt.block_on(async {
        let mut c = Client::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
        let write = |generation| pb::WriteRequest {
            namespace: "job".into(),
            epoch: 2,
            ops: vec![put(key(1), vec![9])],
            generation,
        };
        // The first run had generation 1, the second 2.
        let e = c.write(write(1)).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert!(e.message().starts_with("fenced: "), "{e:?}");
        c.write(write(2)).await.unwrap();
        let got = c
            .multi_get(pb::MultiGetRequest {
                namespace: "job".into(),
                epoch: 1,
                keys: vec![key(1)],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            got.values[0].value.as_ref(),
            &[3],
            "the old run's write got in"
        );
    });
}
