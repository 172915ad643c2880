//! Rescaling a running query: `run --coordinator-listen` serves the job's
//! coordinator, `riverbed-nexmark rescale` takes it from 2 to 4 to 1
//! subtasks while it runs, with its state in a store service on S3
//! (SeaweedFS). The output equals a run that was never rescaled, and the
//! store's object counters show that no object was copied: the new
//! subtasks read the same files under new key-group ranges.

mod common;
/// The engine tests' S3 helper: the test command's SeaweedFS, or one this
/// process starts.
#[path = "../../state-store/tests/common/mod.rs"]
mod s3;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{nexmark, rescaled_table, stderr, stdout, table, StoreServer};

/// Enough that a run on the store service is still going at its second
/// rescale on a fast, idle machine.
const EVENTS: &str = "1200000";

/// The arguments of a run of `query` at parallelism 2 with output in `out`.
fn run_args<'a>(query: &'a str, sd: &'a Path, out: &'a Path) -> Vec<&'a str> {
    run_args_of(query, EVENTS, sd, out)
}

/// Like [`run_args`] with `events` events.
fn run_args_of<'a>(query: &'a str, events: &'a str, sd: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "run",
        "--query",
        query,
        "--events",
        events,
        "-p",
        "2",
        "--quiet",
        "--checkpoint-interval",
        "100ms",
        "--state-dir",
        sd.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]
}

/// Starts a run with `args` (which serve a coordinator on port 0), its
/// stderr going to `stderr`; returns it, its coordinator's address and its
/// stdout (kept open, so that the run can print its report).
fn start_run(
    args: &[&str],
    stderr: Stdio,
) -> (
    std::process::Child,
    String,
    std::io::BufReader<std::process::ChildStdout>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_riverbed-nexmark"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("coordinator listening on ")
        .unwrap_or_else(|| panic!("the run printed {line:?}"))
        .to_string();
    (child, addr, out)
}

/// `riverbed-nexmark status --json` of the job at `addr`.
fn status(addr: &str) -> serde_json::Value {
    let o = nexmark(&["status", "--coordinator", addr, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(stdout(&o).trim()).unwrap()
}

/// Waits until the job at `addr` has committed a checkpoint after `epoch`.
#[allow(clippy::disallowed_methods)] // a test's patience, not a measurement
fn wait_past(addr: &str, epoch: u64) -> u64 {
    let start = std::time::Instant::now();
    loop {
        let s = status(addr);
        let e = s["committed_epoch"].as_u64().unwrap();
        if e > epoch && s["state"] == "running" {
            return e;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "no checkpoint after {epoch}: {s}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn rescales_during(query: &str) {
    let dir = tempfile::tempdir().unwrap();
    let b = s3::backend(s3::Kind::S3, &format!("rescale-{query}"));
    let config = common::s3_store_config(dir.path(), &b.url, b.s3.endpoint.as_deref().unwrap());
    let server = StoreServer::start_with(
        &dir.path().join("store.log"),
        &["--config", config.to_str().unwrap()],
    );
    let state = format!("remote://{}", server.addr);

    // The run that is never rescaled, embedded.
    let (sd, want_dir) = (dir.path().join("sd-e"), dir.path().join("want"));
    let o = nexmark(&run_args(query, &sd, &want_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    let want = table(&want_dir.join(query));
    assert!(!want.is_empty(), "the query produced nothing to compare");

    // The rescaled run, on the store service.
    let (sd, got_dir) = (dir.path().join("sd"), dir.path().join("got"));
    let mut args = run_args(query, &sd, &got_dir);
    args.extend(["--state", &state, "--coordinator-listen", "127.0.0.1:0"]);
    let log = dir.path().join("run.log");
    let (mut child, addr, _out) = start_run(&args, std::fs::File::create(&log).unwrap().into());
    let mut epoch = wait_past(&addr, 0);
    for p in ["4", "1"] {
        epoch = wait_past(&addr, epoch);
        let o = nexmark(&["rescale", "--coordinator", &addr, "--parallelism", p]);
        assert!(
            o.status.success(),
            "rescale to {p}: {}\nrun log: {}",
            stderr(&o),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let text = stdout(&o);
        assert!(text.contains(&format!(" to {p} at checkpoint ")), "{text}");
        assert!(text.contains("objects copied 0,"), "{text}");
        let s = status(&addr);
        assert_eq!(s["parallelism"].as_u64().unwrap().to_string(), p, "{s}");
    }
    let bad = nexmark(&["rescale", "--coordinator", &addr, "--parallelism", "129"]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("exceeds max_parallelism 128"),
        "{}",
        stderr(&bad)
    );
    let exit = child.wait().unwrap();
    let run_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(exit.success(), "{run_log}");
    assert_eq!(run_log.matches("rescaled ").count(), 2, "{run_log}");
    let got = rescaled_table(&got_dir.join(query));
    assert_eq!(got.len(), want.len(), "rows after rescaling 2 -> 4 -> 1");
    assert!(got == want, "the rescaled run's table differs");
    assert_eq!(
        common::store_counter(&server, "objects_copied_total", query),
        0
    );
}

#[test]
fn q20_rescales_2_4_1_without_copying_state() {
    rescales_during("q20");
}

#[test]
fn q9_rescales_2_4_1_without_copying_state() {
    rescales_during("q9");
}

/// Enough events (on the embedded store) that the run is still going when
/// the kill comes, even on a fast machine.
const KILLED_EVENTS: &str = "1500000";

/// q20 run never rescaled nor killed (its table), and the same run
/// rescaled 2 -> 4 and killed with `kill -9` two checkpoints later, mid
/// epoch: its state directory and output folder.
fn rescaled_then_killed(dir: &Path) -> (BTreeMap<String, i64>, PathBuf, PathBuf) {
    let (sd, want_dir) = (dir.join("sd-want"), dir.join("want"));
    let o = nexmark(&run_args_of("q20", KILLED_EVENTS, &sd, &want_dir));
    assert!(o.status.success(), "{}", stderr(&o));
    let want = table(&want_dir.join("q20"));
    assert!(!want.is_empty());
    let (sd, got_dir) = (dir.join("sd"), dir.join("got"));
    let mut args = run_args_of("q20", KILLED_EVENTS, &sd, &got_dir);
    args.extend(["--coordinator-listen", "127.0.0.1:0"]);
    let (mut child, addr, _out) = start_run(&args, Stdio::null());
    let epoch = wait_past(&addr, 0);
    let o = nexmark(&["rescale", "--coordinator", &addr, "--parallelism", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    wait_past(&addr, wait_past(&addr, epoch));
    // SAFETY: kill(2) on the pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let _ = child.wait();
    (want, sd, got_dir)
}

/// A run rescaled 2 -> 4 and then killed resumes at 2 subtasks and still
/// ends exactly as a run never rescaled nor killed: the sink files of
/// subtasks 2 and 3, which the resumed run does not have, are cut back to
/// the checkpoint like the others.
#[test]
fn a_run_killed_after_a_rescale_resumes_exactly_at_its_first_parallelism() {
    let dir = tempfile::tempdir().unwrap();
    let (want, sd, got_dir) = rescaled_then_killed(dir.path());
    let mut resume = run_args_of("q20", KILLED_EVENTS, &sd, &got_dir);
    resume.push("--resume");
    let o = nexmark(&resume);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = rescaled_table(&got_dir.join("q20"));
    assert_eq!(
        got.len(),
        want.len(),
        "rows after the rescale, the kill and the resume"
    );
    assert!(got == want, "the resumed run's table differs");
}

/// The same kill, resumed without `--parallelism`: the run goes on at the
/// parallelism its checkpoint recorded, the rescaled 4, and still ends
/// exactly as a run never rescaled nor killed.
#[test]
fn a_run_resumed_without_a_parallelism_keeps_its_rescaled_one() {
    let dir = tempfile::tempdir().unwrap();
    let (want, sd, got_dir) = rescaled_then_killed(dir.path());
    let mut resume: Vec<&str> = run_args_of("q20", KILLED_EVENTS, &sd, &got_dir)
        .into_iter()
        .filter(|a| *a != "-p" && *a != "2")
        .collect();
    resume.push("--resume");
    let o = nexmark(&resume);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = nexmark(&["checkpoints", "--state-dir", sd.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let last = list.as_array().unwrap().last().unwrap();
    assert_eq!(last["parallelism"], 4, "{last}");
    assert_eq!(last["finished"], true, "{last}");
    let got = rescaled_table(&got_dir.join("q20"));
    assert!(got == want, "the resumed run's table differs");
}
