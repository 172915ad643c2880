//! Queryable state: a job's state looked up by table name and key in a
//! running `riverbed-store`, by gRPC, HTTP/JSON and the `query` command,
//! at the latest commit and at retained checkpoints (time travel),
//! compared with a `BTreeMap` model of what each epoch held. Then a real
//! Nexmark job's tables, listed and queried after it ran against the store.

mod common;

use std::collections::BTreeMap;
use std::process::Output;

use common::{nexmark, stderr, store_bin, StoreServer};
use riverbed_state_store::grpc::pb;
use riverbed_state_store::grpc::pb::state_store_client::StateStoreClient;
use serde_json::{json, Value};
use tonic::Code;

fn store_cli(args: &[&str]) -> Output {
    std::process::Command::new(store_bin())
        .args(args)
        .output()
        .unwrap()
}

/// The stored key of `key` in the compute layer's layout:
/// table | key group | i64 key (sign bit flipped, big-endian).
fn state_key(table: u32, key: i64) -> Vec<u8> {
    let user = ((key as u64) ^ (1 << 63)).to_be_bytes();
    let kg = riverbed_state_store::keys::key_group_of(&user, 128);
    let mut k =
        riverbed_state_store::keys::key_prefix(riverbed_state_store::TableId(table), kg).to_vec();
    k.extend_from_slice(&user);
    k
}

/// A value `{name: str, n: i64}` in the codec's layout.
fn value(name: &str, n: i64) -> Vec<u8> {
    let mut v = (name.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(&((n as u64) ^ (1 << 63)).to_be_bytes());
    v
}

fn checkpoint(epoch: u64) -> pb::Checkpoint {
    pb::Checkpoint {
        epoch,
        job: "lookups".into(),
        ..Default::default()
    }
}

#[test]
fn state_is_looked_up_by_key_at_the_latest_commit_and_at_retained_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let server = StoreServer::start(
        &dir.path().join("store"),
        &dir.path().join("store.log"),
        &[],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ns = "lookups";
    // model[e] = what epoch e's commit holds.
    let mut model: Vec<BTreeMap<i64, (String, i64)>> = vec![BTreeMap::new()];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    rt.block_on(async {
        let mut c = StateStoreClient::connect(format!("http://{}", server.addr))
            .await
            .unwrap();
        let table = c
            .register_table(pb::RegisterTableRequest {
                namespace: ns.into(),
                name: "counts".into(),
                info: Some(pb::TableInfo {
                    key_groups: 128,
                    kind: "values".into(),
                    key_schema: "i64".into(),
                    value_schema: "{name:str,n:i64}".into(),
                    ..Default::default()
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .table_id;
        // Three checkpoints of random puts and deletes, then an epoch that
        // is written but never committed.
        for epoch in 1..=4u64 {
            let mut now = model.last().unwrap().clone();
            let mut ops = Vec::new();
            for _ in 0..200 {
                let k = rand(300) as i64 - 150;
                if rand(4) == 0 {
                    now.remove(&k);
                    ops.push(pb::WriteOp {
                        op: Some(pb::write_op::Op::Delete(pb::Delete {
                            key: state_key(table, k).into(),
                        })),
                    });
                } else {
                    let v = (
                        format!("v{epoch}-{}", rand(1000)),
                        rand(1 << 40) as i64 - (1 << 39),
                    );
                    ops.push(pb::WriteOp {
                        op: Some(pb::write_op::Op::Put(pb::Put {
                            key: state_key(table, k).into(),
                            value: value(&v.0, v.1).into(),
                        })),
                    });
                    now.insert(k, v);
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
            if epoch < 4 {
                c.commit(pb::CommitRequest {
                    namespace: ns.into(),
                    epoch,
                    checkpoint: Some(checkpoint(epoch)),
                })
                .await
                .unwrap();
                model.push(now);
            }
        }
        // Every key at every retained epoch (0 = the latest, 3), by gRPC.
        for (asked, want) in [
            (0, &model[3]),
            (1, &model[1]),
            (2, &model[2]),
            (3, &model[3]),
        ] {
            for k in -150..150i64 {
                let r = c
                    .query(pb::QueryRequest {
                        namespace: ns.into(),
                        table: "counts".into(),
                        key: Some(pb::query_request::Key::KeyText(k.to_string())),
                        epoch: asked,
                        limit: 0,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(r.epoch, if asked == 0 { 3 } else { asked });
                match want.get(&k) {
                    None => assert!(!r.found && r.entries.is_empty(), "{k} at {asked}"),
                    Some((name, n)) => {
                        assert!(r.found, "{k} at {asked}");
                        let got: Value = serde_json::from_str(&r.entries[0].value_json).unwrap();
                        assert_eq!(got, json!({"name": name, "n": n}), "{k} at {asked}");
                    }
                }
            }
        }
        // Refusals, each with its status.
        let ask = |table: &str, key: &str, epoch: u64| pb::QueryRequest {
            namespace: ns.into(),
            table: table.into(),
            key: Some(pb::query_request::Key::KeyText(key.into())),
            epoch,
            limit: 0,
        };
        for (req, code, why) in [
            (
                ask("counts", "1", 4),
                Code::FailedPrecondition,
                "retained: 1, 2, 3",
            ),
            (ask("nope", "1", 0), Code::NotFound, "no table \"nope\""),
            (
                ask("counts", "\"one\"", 0),
                Code::InvalidArgument,
                "is not an integer",
            ),
            (
                pb::QueryRequest {
                    namespace: "missing".into(),
                    ..ask("counts", "1", 0)
                },
                Code::NotFound,
                "no namespace",
            ),
        ] {
            let e = c.query(req).await.unwrap_err();
            assert_eq!(e.code(), code, "{e:?}");
            assert!(e.message().contains(why), "{e:?}");
        }
    });

    // The same answers by HTTP/JSON and by the command line.
    let (k, (name, n)) = model[1].iter().next().unwrap();
    let (code, body) = server.http_get(
        &format!("/v1/query?namespace={ns}&table=counts&key={k}&epoch=1"),
        None,
    );
    assert_eq!(code, 200, "{body}");
    let got: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["entries"][0]["value"], json!({"name": name, "n": n}));
    assert_eq!(got["epoch"], 1);
    let o = store_cli(&[
        "query",
        "--addr",
        &server.addr,
        "--table",
        &format!("{ns}/counts"),
        "--key",
        &k.to_string(),
        "--epoch",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cli, got);
    let (code, body) = server.http_get(
        "/v1/query?namespace=lookups&table=counts&key=1&epoch=9",
        None,
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    let o = store_cli(&[
        "query",
        "--addr",
        &server.addr,
        "--table",
        "counts",
        "--key",
        "1",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("NAMESPACE/TABLE"), "{}", stderr(&o));

    // Probes and metrics.
    assert_eq!(server.http_get("/healthz", None), (200, "ok\n".to_string()));
    assert_eq!(
        server.http_get("/readyz", None),
        (200, "ready\n".to_string())
    );
    let (code, metrics) = server.http_get("/metrics", None);
    assert_eq!(code, 200);
    // 1200 lookups by gRPC, one by HTTP and one by the command line; the
    // HTTP one is also counted as such, and its refusal as an error.
    for line in [
        "riverbed_store_requests_total{method=\"query\",outcome=\"ok\"} 1202",
        "riverbed_store_requests_total{method=\"http_query\",outcome=\"ok\"} 1",
        "riverbed_store_requests_total{method=\"http_query\",outcome=\"error\"} 1",
        "riverbed_store_requests_total{method=\"commit\",outcome=\"ok\"} 3",
        "riverbed_store_request_duration_seconds_count{method=\"write\"} 4",
        "riverbed_store_commits_total{namespace=\"lookups\"} 3",
        "riverbed_store_checkpoints_retained{namespace=\"lookups\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    // What went to the object store: the commits wrote the namespace's files.
    let written = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("riverbed_store_object_written_bytes_total{namespace=\"lookups\"} ")
        })
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no object bytes written in\n{metrics}"));
    assert!(written > 0, "{metrics}");
}

#[test]
fn a_nexmark_jobs_tables_are_listed_and_queried_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = StoreServer::start(
        &dir.path().join("store"),
        &dir.path().join("store.log"),
        &[],
    );
    let out = dir.path().join("out");
    let o = nexmark(&[
        "run",
        "--query",
        "q20",
        "--events",
        "20000",
        "-p",
        "2",
        "--quiet",
        "--checkpoint-interval",
        "50ms",
        "--state",
        &format!("remote://{}", server.addr),
        "--state-dir",
        dir.path().join("sd").to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = store_cli(&["tables", "--addr", &server.addr, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tables: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let join = tables
        .iter()
        .find(|t| t["namespace"] == "q20" && t["table"] == "q20-join")
        .unwrap_or_else(|| panic!("no q20-join in {tables:?}"));
    assert_eq!(join["kind"], "values");
    assert_eq!(join["key_schema"], "i64");
    assert!(
        join["value_schema"]
            .as_str()
            .unwrap()
            .contains("category:i64"),
        "{join}"
    );
    assert!(join["bytes"].as_u64().unwrap() > 0, "{join}");
    let list = tables
        .iter()
        .find(|t| t["table"] == "q20-join.list")
        .expect("the waiting bids' table");
    assert_eq!(list["kind"], "entries");
    // A row of q20's output names an auction of category 10: its state
    // in the join holds that auction.
    let rows = common::table(&out.join("q20"));
    // A row is kept without its `{"op":"+I"` head: put the brace back.
    let row = rows.keys().next().expect("q20 has output");
    let first: Value = serde_json::from_str(&format!("{{{}", &row[1..])).unwrap();
    let auction = first["auction"].as_i64().unwrap();
    let o = store_cli(&[
        "query",
        "--addr",
        &server.addr,
        "--table",
        "q20/q20-join",
        "--key",
        &auction.to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(got["found"], true, "{got}");
    // The record: (Some(Some(auction)), expiry, waiting bids).
    let seen = &got["entries"][0]["value"][0];
    assert_eq!(seen["id"], auction, "{got}");
    assert_eq!(seen["category"], 10, "{got}");
    // The column-printed listing names the same tables.
    let o = store_cli(&["tables", "--addr", &server.addr, "--namespace", "q20"]);
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.starts_with("NAMESPACE"), "{text}");
    assert!(text.contains("q20-join.list"), "{text}");
}
