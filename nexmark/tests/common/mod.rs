//! Helpers shared by the crate's integration tests.
//!
//! Every test binary that says `mod common;` compiles this whole module but
//! may use only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod reference;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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

/// The final table of a changelog folder: each row (the line without its
/// `op`) with how many times it is in the table; a retraction of a row that
/// is not there fails the test.
pub fn table(dir: &Path) -> BTreeMap<String, i64> {
    table_of(dir, true)
}

/// Like [`table`] for a rescaled run: a key's changes went to the files of
/// its owner at each parallelism, so the order holds per key only across
/// files, and the check is that no row is retracted more often than it was
/// added in the end.
pub fn rescaled_table(dir: &Path) -> BTreeMap<String, i64> {
    table_of(dir, false)
}

fn table_of(dir: &Path, ordered: bool) -> BTreeMap<String, i64> {
    let mut t: BTreeMap<String, i64> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let (op, row) = (&line[7..9], &line[10..]);
            let n = t.entry(row.to_string()).or_default();
            *n += if op == "+I" || op == "+U" { 1 } else { -1 };
            assert!(
                !ordered || *n >= 0,
                "{}: a retraction of a row not there: {line}",
                path.display()
            );
        }
    }
    if let Some((row, n)) = t.iter().find(|(_, n)| **n < 0) {
        panic!(
            "{}: {row} retracted {} times more than added",
            dir.display(),
            -n
        );
    }
    t.retain(|_, n| *n != 0);
    t
}

/// The rows sink subtasks had committed at checkpoint `epoch` of a killed
/// run whose staging folder is `staging`: each subtask's staged record
/// names its files and their lengths at that checkpoint.
pub fn committed_rows(staging: &Path, epoch: u64) -> Vec<String> {
    let mut rows = Vec::new();
    let commits = staging.join(".commits");
    for part in std::fs::read_dir(&commits).unwrap() {
        let record = part.unwrap().path().join(epoch.to_string());
        let Ok(text) = std::fs::read_to_string(&record) else {
            continue; // this subtask staged nothing yet
        };
        for line in text.lines().skip(1) {
            let (len, rel) = line.split_once(' ').unwrap();
            let bytes = std::fs::read(staging.join(rel)).unwrap();
            let kept = &bytes[..len.parse::<usize>().unwrap()];
            rows.extend(String::from_utf8_lossy(kept).lines().map(str::to_string));
        }
    }
    rows
}

/// The table of `before` (rows a killed run had committed) followed by
/// every row a continued run wrote under `after`; `scratch` holds the
/// joined file.
pub fn joined_table(before: &[String], after: &Path, scratch: &Path) -> BTreeMap<String, i64> {
    let mut combined = before.to_vec();
    for e in std::fs::read_dir(after).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            combined.extend(
                std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .map(str::to_string),
            );
        }
    }
    std::fs::create_dir_all(scratch).unwrap();
    std::fs::write(scratch.join("all.jsonl"), combined.join("\n")).unwrap();
    table(scratch)
}

/// The staging folder a killed run of `query` left in its output `dir`.
pub fn staging_of(dir: &Path, query: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(&format!(".staging-{query}"))
        })
        .expect("the killed run's staging folder")
}

/// Everything a child wrote on its piped stderr, once it has ended.
pub fn child_stderr(child: &mut Child) -> String {
    use std::io::Read;
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// A store config file in `dir` for storage `url` on the S3 server at
/// `endpoint` (the test command's SeaweedFS); returns its path.
pub fn s3_store_config(dir: &Path, url: &str, endpoint: &str) -> PathBuf {
    let config = dir.join("store.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{url}\"\n[store.s3]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\naccess_key_id = \"riverbed\"\nsecret_access_key = \"riverbed\"\n"
        ),
    )
    .unwrap();
    config
}

/// A `riverbed-store serve` process on 127.0.0.1, killed when dropped.
pub struct StoreServer {
    pub child: Child,
    /// `HOST:PORT` of its gRPC side, as it printed it.
    pub addr: String,
    /// `HOST:PORT` of its HTTP side.
    pub http: String,
}

/// The `riverbed-store` binary: built beside this test's binary by the
/// test command (`scripts/test.sh`), as the workspace build enables the
/// state store's `server` feature for this crate's tests.
pub fn store_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("riverbed-store");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p riverbed-state-store --features server --bin riverbed-store`",
        bin.display()
    );
    bin
}

impl StoreServer {
    /// Starts a store on `url` with free ports and waits for its
    /// `listening on ADDR` and `http listening on ADDR` lines; its log goes
    /// to `log`.
    pub fn start(url: &Path, log: &Path, extra: &[&str]) -> StoreServer {
        let mut args = vec!["--url", url.to_str().unwrap()];
        args.extend_from_slice(extra);
        StoreServer::start_with(log, &args)
    }

    /// Like [`StoreServer::start`], with every setting in `args` (a
    /// `--config` file naming the storage, say).
    pub fn start_with(log: &Path, args: &[&str]) -> StoreServer {
        use std::io::BufRead;
        let mut child = Command::new(store_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("riverbed-store starts");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut read = |prefix: &str| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix(prefix)
                .unwrap_or_else(|| {
                    panic!(
                        "riverbed-store printed {line:?}; its log: {}",
                        std::fs::read_to_string(log).unwrap_or_default()
                    )
                })
                .to_string()
        };
        let addr = read("listening on ");
        let http = read("http listening on ");
        StoreServer { child, addr, http }
    }

    /// `GET path` on its HTTP side: the status code and the body.
    pub fn http_get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.http).unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\n{auth}Connection: close\r\n\r\n",
            self.http
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP answer");
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("a status line");
        (code, body.to_string())
    }

    /// `kill -9` by pid.
    pub fn kill(&mut self) {
        // SAFETY: kill(2) on the pid of our own child.
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        assert_eq!(rc, 0);
        let _ = self.child.wait();
    }
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The store's `name` counter of namespace `ns`, from its /metrics.
pub fn store_counter(server: &StoreServer, name: &str, ns: &str) -> u64 {
    let (code, body) = server.http_get("/metrics", None);
    assert_eq!(code, 200);
    let prefix = format!("riverbed_store_{name}{{namespace=\"{ns}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{body}"))
        .trim()
        .parse()
        .unwrap()
}
