//! Queries on worker processes, killed: a store service on S3 (SeaweedFS),
//! a `riverbed-nexmark coordinator` and three `riverbed-nexmark worker`
//! processes, all on 127.0.0.1. While the query runs, a random worker is
//! killed with `kill -9` ten times (a new one started in its place each
//! time), and the coordinator once (started again on the same address).
//! The final table equals the one of an embedded run that never failed:
//! nothing lost, nothing duplicated.

mod common;
/// The engine tests' S3 helper: the test command's SeaweedFS, or one this
/// process starts.
#[path = "../../state-store/tests/common/mod.rs"]
mod s3;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{nexmark, stderr, stdout, table, StoreServer};

const WORKERS: usize = 3;
const KILLS: usize = 10;

/// A process of ours and the first line it printed.
fn spawn(args: &[&str], log: &Path, prefix: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_riverbed-nexmark"))
        .args(args)
        .env("RIVERBED_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| {
            panic!(
                "{args:?} printed {line:?}; its log: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        })
        .to_string();
    // The rest of its stdout (the coordinator's report) is read at the end.
    std::mem::forget(out);
    (child, addr)
}

fn kill9(child: &mut Child) {
    // SAFETY: kill(2) on the pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let _ = child.wait();
}

/// A coordinator, its workers, and the logs of all of them.
struct Cluster {
    dir: PathBuf,
    coordinator: Child,
    addr: String,
    args: Vec<String>,
    workers: Vec<Child>,
    started: usize,
}

impl Cluster {
    fn start(dir: &Path, args: Vec<String>) -> Cluster {
        let mut first: Vec<&str> = args.iter().map(String::as_str).collect();
        first.extend(["--coordinator-listen", "127.0.0.1:0"]);
        let (coordinator, addr) = spawn(
            &first,
            &dir.join("coordinator-0.log"),
            "coordinator listening on ",
        );
        Cluster {
            dir: dir.to_path_buf(),
            coordinator,
            addr,
            args,
            workers: Vec::new(),
            started: 0,
        }
    }

    fn add_worker(&mut self) {
        self.started += 1;
        let log = self.dir.join(format!("worker-{}.log", self.started));
        let (w, _) = spawn(
            &["worker", "--coordinator", &self.addr],
            &log,
            "worker exchange listening on ",
        );
        self.workers.push(w);
    }

    /// The coordinator's committed epoch and state, or `None` while it is
    /// not there (restarting).
    fn status(&self) -> Option<(u64, String)> {
        let o = nexmark(&["status", "--coordinator", &self.addr, "--json"]);
        if !o.status.success() {
            return None;
        }
        let s: serde_json::Value = serde_json::from_str(stdout(&o).trim()).ok()?;
        Some((
            s["committed_epoch"].as_u64()?,
            s["state"].as_str()?.to_string(),
        ))
    }

    /// Waits for a checkpoint after `epoch` while the job runs; `None`
    /// once it has finished.
    #[allow(clippy::disallowed_methods)] // a test's patience, not a measurement
    fn wait_past(&mut self, epoch: u64) -> Option<u64> {
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = self.coordinator.try_wait().unwrap() {
                assert!(s.success(), "the coordinator failed: {}", self.logs());
                return None;
            }
            match self.status() {
                Some((e, state)) if e > epoch && state == "running" => return Some(e),
                Some((_, state)) if state == "finished" => return None,
                _ => {}
            }
            assert!(
                start.elapsed() < Duration::from_secs(180),
                "no checkpoint after {epoch}: {}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn restart_coordinator(&mut self, n: usize) {
        kill9(&mut self.coordinator);
        let mut again: Vec<&str> = self.args.iter().map(String::as_str).collect();
        again.extend(["--coordinator-listen", &self.addr]);
        let (c, addr) = spawn(
            &again,
            &self.dir.join(format!("coordinator-{n}.log")),
            "coordinator listening on ",
        );
        assert_eq!(addr, self.addr);
        self.coordinator = c;
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for e in std::fs::read_dir(&self.dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "log") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                all += &format!("\n== {}\n", p.display());
                for l in tail.into_iter().rev() {
                    all += l;
                    all.push('\n');
                }
            }
        }
        all
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.coordinator.kill();
        let _ = self.coordinator.wait();
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// A small xorshift: which worker dies next (seeded per run, printed).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// A store service on S3, the table of an embedded run that never failed,
/// and where a cluster run of the same query goes.
struct Setup {
    dir: tempfile::TempDir,
    server: StoreServer,
    logs: PathBuf,
    query: String,
    /// The run's flags but for where its state and output go.
    flags: Vec<String>,
    want: BTreeMap<String, i64>,
}

impl Setup {
    /// `query` over `events` at parallelism `p`, checkpoints every 200 ms;
    /// its reference table from `run`.
    fn new(name: &str, query: &str, events: &str, p: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let b = s3::backend(s3::Kind::S3, name);
        let config = common::s3_store_config(dir.path(), &b.url, b.s3.endpoint.as_deref().unwrap());
        let server = StoreServer::start_with(
            &dir.path().join("store.log"),
            &["--config", config.to_str().unwrap()],
        );
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let flags = [
            "--query",
            query,
            "--events",
            events,
            "-p",
            p,
            "--quiet",
            "--checkpoint-interval",
            "200ms",
        ]
        .map(String::from)
        .to_vec();
        let mut s = Setup {
            dir,
            server,
            logs,
            query: query.to_string(),
            flags,
            want: BTreeMap::new(),
        };
        let mut args = vec!["run".to_string()];
        args.extend(s.flags_into("want"));
        let o = nexmark(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", stderr(&o));
        s.want = table(&s.dir.path().join("want").join(query));
        assert!(!s.want.is_empty(), "the query produced nothing to compare");
        s
    }

    /// The flags of a run whose state and output go under `name`.
    fn flags_into(&self, name: &str) -> Vec<String> {
        let mut f = self.flags.clone();
        for (flag, sub) in [("--state-dir", "sd"), ("--output", "")] {
            f.push(flag.into());
            let p = self.dir.path().join(format!("{sub}{name}"));
            f.push(p.to_str().unwrap().into());
        }
        f
    }

    /// A coordinator for `workers` workers on the store, with `extra`
    /// flags, and its first workers; its output goes under `got`.
    fn cluster(&self, workers: usize, started: usize, extra: &[&str]) -> Cluster {
        let mut args = vec![
            "coordinator".to_string(),
            "--workers".into(),
            workers.to_string(),
            "--state".into(),
            format!("remote://{}", self.server.addr),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args.extend(self.flags_into("got"));
        let mut c = Cluster::start(&self.logs, args);
        for _ in 0..started {
            c.add_worker();
        }
        c
    }

    /// The cluster's table, checked against the reference; `why` names
    /// what the cluster went through.
    fn check(&self, why: &str, rescaled: bool) {
        let out = self.dir.path().join("got").join(&self.query);
        let got = if rescaled {
            common::rescaled_table(&out)
        } else {
            table(&out)
        };
        assert_eq!(got.len(), self.want.len(), "rows after {why}");
        assert!(got == self.want, "the table after {why} differs");
    }
}

fn survives_kills(query: &str, events: &str) {
    let setup = Setup::new(&format!("workers-{query}"), query, events, "3");
    let logs = setup.logs.clone();
    let mut cluster = setup.cluster(WORKERS, WORKERS, &[]);
    #[allow(clippy::disallowed_methods)] // a seed, not a measurement
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut dice = Dice(seed);
    let mut epoch = cluster.wait_past(0).expect("the job runs");
    for kill in 0..KILLS {
        let Some(e) = cluster.wait_past(epoch) else {
            panic!(
                "{query} finished after {kill} kills (seed {seed}): give it more events\n{}",
                cluster.logs()
            );
        };
        epoch = e;
        let victim = dice.roll(cluster.workers.len());
        let mut w = cluster.workers.swap_remove(victim);
        kill9(&mut w);
        cluster.add_worker();
        if kill == KILLS / 2 {
            let e = cluster
                .wait_past(epoch)
                .expect("the job runs after the kills");
            epoch = e;
            cluster.restart_coordinator(1);
        }
    }
    let exit = cluster.coordinator.wait().unwrap();
    assert!(exit.success(), "seed {seed}: {}", cluster.logs());
    let log = std::fs::read_to_string(logs.join("coordinator-1.log")).unwrap();
    assert!(log.contains("finished at checkpoint"), "{log}");
    let before = std::fs::read_to_string(logs.join("coordinator-0.log")).unwrap();
    let lost = before.matches("worker lost").count() + log.matches("worker lost").count();
    assert!(
        lost >= KILLS,
        "the coordinators saw {lost} workers lost for {KILLS} kills (seed {seed})"
    );
    setup.check(&format!("{KILLS} kills (seed {seed})"), false);
    drop(cluster);
}

#[test]
fn q5_survives_ten_worker_kills_and_a_coordinator_kill() {
    survives_kills("q5", "2000000");
}

#[test]
fn q8_survives_ten_worker_kills_and_a_coordinator_kill() {
    survives_kills("q8", "2000000");
}

#[test]
fn q9_survives_ten_worker_kills_and_a_coordinator_kill() {
    survives_kills("q9", "600000");
}

#[test]
fn q20_survives_ten_worker_kills_and_a_coordinator_kill() {
    survives_kills("q20", "600000");
}

/// `status --json` of the coordinator at `addr`.
fn status_json(addr: &str) -> serde_json::Value {
    let o = nexmark(&["status", "--coordinator", addr, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).unwrap()
}

/// 2 -> 4 -> 1 workers while the query runs: two workers join and the job
/// is rescaled to 4 (one subtask per worker), then to 1. The table equals
/// a run never rescaled, and the store copied no object.
fn rescales_over_workers(query: &str, events: &str) {
    let setup = Setup::new(&format!("workers-rescale-{query}"), query, events, "2");
    let mut cluster = setup.cluster(2, 2, &[]);
    let addr = cluster.addr.clone();
    let mut epoch = cluster.wait_past(0).expect("the job runs");
    assert_eq!(status_json(&addr)["workers"], 2);
    cluster.add_worker();
    cluster.add_worker();
    for (p, workers) in [("4", 4), ("1", 1)] {
        epoch = cluster
            .wait_past(epoch)
            .unwrap_or_else(|| panic!("{query} finished before the rescale to {p}"));
        let o = nexmark(&["rescale", "--coordinator", &addr, "--parallelism", p]);
        assert!(
            o.status.success(),
            "rescale to {p}: {}\n{}",
            stderr(&o),
            cluster.logs()
        );
        let text = stdout(&o);
        assert!(text.contains(&format!(" to {p} at checkpoint ")), "{text}");
        assert!(text.contains("objects copied 0,"), "{text}");
        let s = status_json(&addr);
        assert_eq!(s["parallelism"].as_u64().unwrap().to_string(), p, "{s}");
        assert_eq!(s["workers"], workers, "{s}");
    }
    let exit = cluster.coordinator.wait().unwrap();
    assert!(exit.success(), "{}", cluster.logs());
    setup.check("rescaling 2 -> 4 -> 1 workers", true);
    assert_eq!(
        common::store_counter(&setup.server, "objects_copied_total", query),
        0
    );
}

#[test]
fn q20_rescales_over_2_4_1_workers_without_copying_state() {
    rescales_over_workers("q20", "600000");
}

#[test]
fn q9_rescales_over_2_4_1_workers_without_copying_state() {
    rescales_over_workers("q9", "600000");
}

/// A worker that stops answering (`kill -STOP`) is declared dead after the
/// heartbeat timeout and the job goes on without it. Woken (`kill -CONT`)
/// once its replacement attempt has written output, it writes nothing of
/// its old attempt: its lease ran out (and the store fences its writes); it
/// attaches again and the job spreads over it. The table equals a run that
/// never failed.
#[test]
fn a_paused_worker_is_replaced_and_writes_nothing_when_it_wakes() {
    let setup = Setup::new("workers-paused", "q20", "600000", "2");
    let mut cluster = setup.cluster(2, 2, &["--heartbeat-timeout", "1s"]);
    let addr = cluster.addr.clone();
    let epoch = cluster.wait_past(0).expect("the job runs");
    let paused = cluster.workers[0].id() as i32;
    // SAFETY: kill(2) on the pid of our own child.
    assert_eq!(unsafe { libc::kill(paused, libc::SIGSTOP) }, 0);
    // Declared dead, the job goes on on the other worker alone, and
    // commits output there.
    #[allow(clippy::disallowed_methods)] // a test's patience, not a measurement
    let start = std::time::Instant::now();
    loop {
        let s = status_json(&addr);
        if s["failovers"].as_u64().unwrap() >= 1
            && s["workers"] == 1
            && s["state"] == "running"
            && s["committed_epoch"].as_u64().unwrap() > epoch + 2
        {
            break;
        }
        assert!(
            s["state"] != "finished" && start.elapsed() < Duration::from_secs(120),
            "the paused worker was not replaced: {s}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(paused, libc::SIGCONT) }, 0);
    let exit = cluster.coordinator.wait().unwrap();
    assert!(exit.success(), "{}", cluster.logs());
    let log = std::fs::read_to_string(setup.logs.join("coordinator-0.log")).unwrap();
    assert!(log.contains("no heartbeat for 1000 ms"), "{log}");
    setup.check("a pause and a wake-up", false);
}
