//! Test backends: every engine test runs against a local directory and
//! against a real S3-compatible server (SeaweedFS) that the test command
//! (`scripts/test.sh`) starts on 127.0.0.1 and names in `RIVERBED_TEST_S3_ENDPOINT`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use riverbed_state_store::{Options, S3Options};

pub const S3_BUCKET: &str = "riverbed-test";

/// Where a test's store lives; the temp dir (if any) is removed on drop.
pub struct Backend {
    pub url: String,
    pub s3: S3Options,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Local,
    S3,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn backend(kind: Kind, name: &str) -> Backend {
    match kind {
        Kind::Local => {
            let dir = tempfile::tempdir().expect("temp dir");
            Backend {
                url: dir.path().to_str().expect("utf-8 temp path").to_string(),
                s3: S3Options::default(),
                _dir: Some(dir),
            }
        }
        Kind::S3 => {
            let endpoint = std::env::var("RIVERBED_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
                panic!(
                    "RIVERBED_TEST_S3_ENDPOINT is not set: S3 tests need the SeaweedFS server that \
                     scripts/test.sh starts (run the tests with scripts/test.sh)"
                )
            });
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let unique = format!("{name}-{}-{n}-{}", std::process::id(), nanos());
            Backend {
                url: format!("s3://{S3_BUCKET}/{unique}"),
                s3: S3Options {
                    endpoint: Some(endpoint),
                    region: Some("us-east-1".into()),
                    access_key_id: Some("riverbed".into()),
                    secret_access_key: Some("riverbed".into()),
                },
                _dir: None,
            }
        }
    }
}

/// Wall time only names test objects uniquely; it never steers the engine.
#[allow(clippy::disallowed_methods)]
fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Options that make every mechanism run on little data: tiny memtables,
/// blocks and files, so flushes, multi-block files, several levels and
/// compactions all happen within a few thousand operations.
pub fn small_options(b: &Backend) -> Options {
    Options {
        url: b.url.clone(),
        s3: b.s3.clone(),
        memtable_bytes: 4 << 10,
        max_memory_bytes: 16 << 10,
        block_bytes: 256,
        restart_interval: 4,
        sst_target_bytes: 8 << 10,
        l0_compaction_trigger: 3,
        l0_stop_writes_files: 6,
        level_base_bytes: 16 << 10,
        level_multiplier: 4,
        max_levels: 4,
        block_cache_bytes: 64 << 10,
        ..Options::default()
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}
