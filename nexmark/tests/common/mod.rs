//! Helpers shared by the crate's integration tests.
//!
//! Every test binary that says `mod common;` compiles this whole module but
//! may use only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod reference;

use std::collections::{BTreeMap, HashMap};
use std::process::{Command, Output};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use riverbed_compute::{Change, RowKind};
use riverbed_nexmark::queries::info;
use riverbed_nexmark::runner::{run_query, EventSource, QueryRun, RunOptions};
use riverbed_nexmark::Row;

/// Applies a changelog as a multiset; a retraction of a row that is not
/// there is a bug in the changelog.
pub fn final_table(changes: &[Change<Row>]) -> Vec<Row> {
    let mut counts: BTreeMap<Row, i64> = BTreeMap::new();
    for c in changes {
        let n = counts.entry(c.row.clone()).or_default();
        match c.kind {
            RowKind::Insert | RowKind::UpdateAfter => *n += 1,
            RowKind::UpdateBefore | RowKind::Delete => {
                *n -= 1;
                assert!(*n >= 0, "retraction of a row not in the table: {:?}", c.row);
            }
        }
    }
    counts
        .into_iter()
        .flat_map(|(row, n)| std::iter::repeat_n(row, n as usize))
        .collect()
}

/// Runs `query` over `source` on the engine at `parallelism`, collecting its
/// changelog, with a worker cache of 2,000 entries so that state also goes
/// through the store.
pub fn run_engine(
    query: &str,
    source: &EventSource,
    parallelism: usize,
    side_input: HashMap<i64, String>,
) -> QueryRun {
    let dir = tempfile::tempdir().unwrap();
    let mut options = RunOptions::new(dir.path());
    options.parallelism = parallelism;
    options.collect = true;
    options.state_cache_entries = 2_000;
    options.side_input = Arc::new(side_input);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run_query(
        info(query).unwrap(),
        source,
        &options,
        Arc::new(AtomicU64::new(0)),
    ))
    .unwrap()
}

/// Runs the `riverbed-nexmark` binary with `args` and waits for it.
pub fn nexmark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riverbed-nexmark"))
        .args(args)
        .output()
        .expect("the binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
