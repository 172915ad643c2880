//! Crash safety by crashing: a writer process commits epochs (each overwrites
//! every key with its epoch number) and is killed with SIGKILL at random
//! points, mid-write, mid-flush or mid-commit. Each reopen must find exactly
//! the last committed state: every key holding the same epoch number, at
//! least the last epoch the writer reported committed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{backend, runtime, Kind};
use riverbed_state_store::{full_key, KeyGroup, Options, Store, TableId};

const KEYS: u64 = 20_000;

fn crash_rounds(kind: Kind, rounds: u32) {
    let b = backend(kind, "crash");
    let mut last_reported = 0u64;
    for round in 0..rounds {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_riverbed-state-store"));
        cmd.args(["crash-writer", "--url", &b.url, "--keys", &KEYS.to_string()]);
        if let Some(ep) = &b.s3.endpoint {
            cmd.args(["--s3-endpoint", ep]);
            cmd.env("AWS_ACCESS_KEY_ID", "riverbed")
                .env("AWS_SECRET_ACCESS_KEY", "riverbed")
                .env("AWS_REGION", "us-east-1");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the crash writer");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Let it commit a few epochs, then kill it after a varying number of
        // further lines, so the kill lands at different points of an epoch.
        let target = 2 + u64::from(round % 3);
        let mut seen = 0;
        while let Some(Ok(line)) = lines.next() {
            if let Some(e) = line.strip_prefix("committed ") {
                last_reported = e.parse().expect("epoch number");
                seen += 1;
                if seen >= target {
                    break;
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(u64::from(
            round * 37 % 200,
        )));
        child.kill().expect("kill the writer");
        let _ = child.wait();
        while let Some(Ok(line)) = lines.next() {
            if let Some(e) = line.strip_prefix("committed ") {
                last_reported = e.parse().expect("epoch number");
            }
        }
        verify(&b, last_reported);
    }
}

fn verify(b: &common::Backend, at_least: u64) {
    runtime().block_on(async {
        let mut opts = Options::with_url(b.url.clone());
        opts.s3 = b.s3.clone();
        let store = Store::open(opts).await.expect("reopen after the crash");
        let committed = store.committed_epoch();
        assert!(
            committed.0 >= at_least,
            "lost committed epoch {at_least}: store is at {}",
            committed.0
        );
        let all = store
            .scan(
                &full_key(TableId(9), KeyGroup(0), &[]),
                None,
                committed,
                usize::MAX,
            )
            .await
            .expect("scan");
        assert_eq!(all.len() as u64, KEYS, "key count after recovery");
        let want = committed.0.to_string();
        for (k, v) in &all {
            assert_eq!(
                &v[..],
                want.as_bytes(),
                "key {k:?} holds another epoch than the committed {want}"
            );
        }
        store.close().await.expect("close");
    });
}

#[test]
fn killed_writer_recovers_last_commit_local() {
    crash_rounds(Kind::Local, 6);
}

#[test]
fn killed_writer_recovers_last_commit_s3() {
    crash_rounds(Kind::S3, 3);
}
