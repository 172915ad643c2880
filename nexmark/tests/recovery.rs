//! Exactly-once under `kill -9`: a query run with checkpoints is killed by
//! its pid at random moments (each after a new checkpoint, then a random
//! delay, so kills land mid-epoch and mid-checkpoint), resumed each time with
//! `--resume`, and its output compared with a run that never failed: an
//! append query's rows as a multiset (no duplicates, none missing), an
//! updating query's final table.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{committed_rows, joined_table, nexmark, stderr, table};

/// Kills of each run.
const KILLS: usize = 10;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_riverbed-nexmark"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// The newest checkpoint epoch of the query's store (the directory and the
/// namespace are named after the query), if any.
fn latest_epoch(store: &Path) -> Option<u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let query = store.file_name()?.to_str()?;
    rt.block_on(riverbed_nexmark::runner::checkpoints::latest(store, query))
        .ok()
        .flatten()
        .map(|c| c.epoch.0)
}

/// Runs `query` on `input` once without failing, and once killed and resumed
/// `KILLS` times; both outputs must build the same table.
#[allow(clippy::disallowed_methods)] // deadlines and random delays of the kills
fn killed_and_resumed_equals_uninterrupted(query: &str, input: &[&str], seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let base = |state: &str, out: &str| -> Vec<String> {
        let mut a: Vec<String> = ["run", "--query", query, "--quiet", "-p", "2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(input.iter().map(|s| s.to_string()));
        a.extend([
            "--state-dir".into(),
            path(state),
            "--output".into(),
            path(out),
        ]);
        a
    };
    // The run that never fails.
    let mut args = base("state-ref", "ref");
    args.extend(["--checkpoint-interval".into(), "0".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = nexmark(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = table(&dir.path().join("ref").join(query));
    assert!(!expected.is_empty());

    // The run that is killed.
    let mut args = base("state", "out");
    args.extend(["--checkpoint-interval".into(), "100ms".into()]);
    let store: PathBuf = dir.path().join("state").join(query);
    let mut rng = Rng(seed);
    let mut child = spawn(&args);
    let mut kills = 0;
    let mut seen = latest_epoch(&store);
    while kills < KILLS {
        // Wait for progress: a checkpoint newer than the last one seen.
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut finished = false;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let err = common::child_stderr(&mut child);
                assert!(status.success(), "{query}: the run failed: {err}");
                finished = true;
                break;
            }
            let now = latest_epoch(&store);
            if now.is_some() && now != seen {
                seen = now;
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{query}: no new checkpoint in 120 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !finished,
            "{query}: the run finished after {kills} kills; give it more input"
        );
        // Then a random moment within the next epoch or its checkpoint.
        std::thread::sleep(Duration::from_millis(rng.below(250)));
        assert!(
            child.try_wait().unwrap().is_none(),
            "{query}: the run finished after {kills} kills; give it more input"
        );
        // SAFETY: kill(2) on the pid of our own child.
        let rc = unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        assert_eq!(rc, 0);
        let _ = child.wait();
        kills += 1;
        let mut resume = args.clone();
        resume.push("--resume".into());
        child = spawn(&resume);
    }
    let status = child.wait().unwrap();
    let err = common::child_stderr(&mut child);
    assert!(
        status.success(),
        "{query}: the last resumed run failed: {err}"
    );
    let got = table(&dir.path().join("out").join(query));
    if got != expected {
        let missing: Vec<_> = expected
            .iter()
            .filter(|(r, n)| got.get(*r) != Some(n))
            .take(3)
            .collect();
        let extra: Vec<_> = got
            .iter()
            .filter(|(r, n)| expected.get(*r) != Some(n))
            .take(3)
            .collect();
        panic!(
            "{query} after {kills} kills: {} rows, expected {}; differs e.g. {missing:?} / {extra:?}",
            got.values().sum::<i64>(),
            expected.values().sum::<i64>()
        );
    }
}

fn event_file(dir: &Path, events: u64) -> PathBuf {
    let path = dir.join("events.jsonl");
    let o = nexmark(&[
        "generate",
        "--events",
        &events.to_string(),
        "--out",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    path
}

#[test]
fn q8_survives_kills_on_generated_events() {
    killed_and_resumed_equals_uninterrupted("q8", &["--events", "3000000"], 8);
}

#[test]
fn q9_survives_kills_on_generated_events() {
    killed_and_resumed_equals_uninterrupted("q9", &["--events", "1500000"], 9);
}

#[test]
fn q9_survives_kills_on_an_event_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = event_file(dir.path(), 1_500_000);
    killed_and_resumed_equals_uninterrupted("q9", &["--source", file.to_str().unwrap()], 90);
}

#[test]
fn q18_survives_kills_on_an_event_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = event_file(dir.path(), 1_500_000);
    killed_and_resumed_equals_uninterrupted("q18", &["--source", file.to_str().unwrap()], 18);
}

#[test]
fn q20_survives_kills_on_generated_events() {
    killed_and_resumed_equals_uninterrupted("q20", &["--events", "2000000"], 20);
}

#[test]
fn q5_survives_kills_on_generated_events() {
    // Window timers come back from the window state, the winners' timers
    // from their timer table.
    killed_and_resumed_equals_uninterrupted("q5", &["--events", "3000000"], 5);
}

/// What a user meets around resuming: one clear line for each mistake, and
/// the listing of what a directory holds.
#[test]
#[allow(clippy::disallowed_methods)] // a deadline for the first checkpoint
fn resume_fresh_and_the_checkpoint_listing_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    let one_line = |args: &[&str], needle: &str| {
        let o = nexmark(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    };
    one_line(
        &[
            "run",
            "--query",
            "q1",
            "--events",
            "1000",
            "--resume",
            "--state-dir",
            s,
        ],
        "no checkpoint of q1",
    );
    one_line(
        &[
            "run",
            "--query",
            "q1",
            "--checkpoint-interval",
            "5ms",
            "--state-dir",
            s,
        ],
        "--checkpoint-interval",
    );
    one_line(
        &[
            "run",
            "--query",
            "q1",
            "--checkpoint-interval",
            "1h30",
            "--state-dir",
            s,
        ],
        "unit",
    );
    one_line(
        &[
            "run",
            "--query",
            "q1",
            "--resume",
            "--fresh",
            "--state-dir",
            s,
        ],
        "--fresh",
    );
    // A finished run can be run again without --fresh, but not resumed.
    let ok = nexmark(&[
        "run",
        "--query",
        "q1",
        "--events",
        "2000",
        "--quiet",
        "--state-dir",
        s,
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let ok = nexmark(&[
        "run",
        "--query",
        "q1",
        "--events",
        "2000",
        "--quiet",
        "--state-dir",
        s,
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    one_line(
        &[
            "run",
            "--query",
            "q1",
            "--events",
            "2000",
            "--resume",
            "--state-dir",
            s,
        ],
        "finished",
    );
    let listed = nexmark(&["checkpoints", "--state-dir", s, "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(json[0]["query"], "q1");
    assert_eq!(json[0]["finished"], true);
    assert_eq!(json[0]["sources"][0]["source"], "nexmark-source");
    // An unfinished run (killed after its first checkpoint) is not wiped
    // by a plain run.
    let mut child = spawn(
        &[
            "run",
            "--query",
            "q9",
            "--events",
            "100000000",
            "--quiet",
            "--checkpoint-interval",
            "50ms",
            "--state-dir",
            s,
        ]
        .map(String::from),
    );
    let store = state.join("q9");
    let deadline = Instant::now() + Duration::from_secs(60);
    while latest_epoch(&store).is_none() {
        assert!(Instant::now() < deadline, "no checkpoint in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let _ = child.wait();
    one_line(
        &["run", "--query", "q9", "--events", "1000", "--state-dir", s],
        "unfinished run of q9",
    );
    let table = nexmark(&["checkpoints", "--state-dir", s]);
    let text = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(text.contains("| q9 ") && text.contains("| no "), "{text}");
    let fresh = nexmark(&[
        "run",
        "--query",
        "q9",
        "--events",
        "1000",
        "--quiet",
        "--fresh",
        "--state-dir",
        s,
    ]);
    assert!(fresh.status.success(), "{}", stderr(&fresh));
}

/// A savepoint taken from a killed run starts the query on another state
/// directory: what the first run had committed at the savepoint's
/// checkpoint plus everything the second run writes equals a run that never
/// stopped. Mistakes get one clear line.
#[test]
#[allow(clippy::disallowed_methods)] // a deadline for the first checkpoint
fn a_savepoint_continues_a_query_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = |state: &str, out: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "run", "--query", "q9", "--quiet", "-p", "2", "--events", "4000000",
        ]
        .map(String::from)
        .to_vec();
        a.extend(["--state-dir".into(), p(state), "--output".into(), p(out)]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let args = run("state-ref", "ref", &["--checkpoint-interval", "0"]);
    let o = nexmark(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = table(&dir.path().join("ref").join("q9"));

    let mut child = spawn(&run("a", "out-a", &["--checkpoint-interval", "100ms"]));
    let store = dir.path().join("a").join("q9");
    let deadline = Instant::now() + Duration::from_secs(120);
    while latest_epoch(&store).is_none() {
        assert!(Instant::now() < deadline, "no checkpoint in 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished before the kill; give it more input"
    );
    // SAFETY: kill(2) on the pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let _ = child.wait();
    let epoch = latest_epoch(&store).unwrap();
    let staging = common::staging_of(&dir.path().join("out-a"), "q9");
    let before = committed_rows(&staging, epoch);

    let sp = p("savepoint");
    let o = nexmark(&[
        "savepoint",
        "--query",
        "q9",
        "--state-dir",
        &p("a"),
        "--to",
        &sp,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        said.starts_with(&format!(
            "savepoint of q9 at checkpoint {epoch} written to {sp}"
        )),
        "{said}"
    );
    // The state directory it came from can go: the savepoint stands alone.
    std::fs::remove_dir_all(dir.path().join("a")).unwrap();

    let one_line = |args: &[&str], needle: &str| {
        let o = nexmark(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    };
    one_line(
        &[
            "savepoint",
            "--query",
            "q9",
            "--state-dir",
            &p("state-ref"),
            "--to",
            &sp,
        ],
        "already holds",
    );
    one_line(
        &[
            "run",
            "--query",
            "q8",
            "--quiet",
            "--state-dir",
            &p("x"),
            "--from-savepoint",
            &sp,
        ],
        "a savepoint of q9, not of q8",
    );
    one_line(
        &[
            "run",
            "--query",
            "q9",
            "--quiet",
            "--state-dir",
            &p("x"),
            "--from-savepoint",
            &p("nowhere"),
        ],
        "not a savepoint",
    );

    let args = run(
        "b",
        "out-b",
        &["--checkpoint-interval", "100ms", "--from-savepoint", &sp],
    );
    let o = nexmark(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let got = joined_table(
        &before,
        &dir.path().join("out-b").join("q9"),
        &dir.path().join("joined"),
    );
    assert!(!before.is_empty(), "the first run had committed nothing");
    assert_eq!(
        got.values().sum::<i64>(),
        expected.values().sum::<i64>(),
        "rows before the savepoint: {}",
        before.len()
    );
    assert!(got == expected, "the tables differ");
}
