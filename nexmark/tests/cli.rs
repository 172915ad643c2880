//! The runner as a newcomer uses it: help, one-line errors with a non-zero
//! exit, `--query all` printing one table, event files in and out, q10's
//! partitioned files, and a run on an event file giving the same results as
//! the same events from the generator.

mod common;

use std::path::Path;

use common::{nexmark, stderr, stdout};

#[test]
fn help_explains_every_flag() {
    let o = nexmark(&["run", "--help"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for flag in [
        "--query",
        "--events",
        "--parallelism",
        "--source",
        "--state-dir",
        "--output",
        "--side-input",
        "--seed",
        "--state-cache",
        "--json",
        "--quiet",
        "--rate",
        "--max-parallelism",
        "--max-line-bytes",
        "--checkpoint-interval",
        "--resume",
        "--fresh",
        "--from-savepoint",
    ] {
        assert!(text.contains(flag), "run --help lacks {flag}:\n{text}");
    }
    let top = stdout(&nexmark(&["--help"]));
    assert!(
        top.contains("run")
            && top.contains("generate")
            && top.contains("checkpoints")
            && top.contains("savepoint"),
        "{top}"
    );
    let sp = stdout(&nexmark(&["savepoint", "--help"]));
    for flag in ["--query", "--state-dir", "--to"] {
        assert!(sp.contains(flag), "savepoint --help lacks {flag}:\n{sp}");
    }
}

#[test]
fn bad_input_gives_one_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["run", "--query", "q5", "--bogus"], "--bogus"),
        (
            &["run", "--query", "q99", "--state-dir", state],
            "unknown query \"q99\"",
        ),
        (
            &[
                "run",
                "--query",
                "q0",
                "--source",
                "/no/such/events.jsonl",
                "--state-dir",
                state,
            ],
            "/no/such/events.jsonl",
        ),
        (&["run", "--query", "q0", "--events", "many"], "many"),
    ];
    for (args, needle) in cases {
        let o = nexmark(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        let err = stderr(&o);
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: not one line:\n{err}"
        );
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn malformed_event_file_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let o = nexmark(&[
        "generate",
        "--events",
        "20",
        "--out",
        events.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut text = std::fs::read_to_string(&events).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut broken: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    broken[6] = "{\"event_type\": 2, \"bid\": {\"auction\": ".to_string();
    text = broken.join("\n");
    std::fs::write(&events, text).unwrap();
    let state = dir.path().join("state");
    let o = nexmark(&[
        "run",
        "--query",
        "q0",
        "--source",
        events.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("line 7"), "{err}");
}

/// Result lines of every query's JSON output under `dir`, sorted.
fn result_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            lines.extend(
                std::fs::read_to_string(&path)
                    .unwrap()
                    .lines()
                    .map(str::to_string),
            );
        }
    }
    lines.sort();
    lines
}

#[test]
fn event_file_run_equals_generator_run_and_q10_writes_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let n = "30000";
    let o = nexmark(&["generate", "--events", n, "--out", events.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = |source: Option<&Path>, out: &Path| {
        let state = dir.path().join("state");
        let mut args = vec![
            "run",
            "--query",
            "q10",
            "--events",
            n,
            "--quiet",
            "--state-dir",
            state.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ];
        if let Some(s) = source {
            args.extend(["--source", s.to_str().unwrap()]);
        }
        let o = nexmark(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let (gen_out, file_out) = (dir.path().join("gen"), dir.path().join("file"));
    run(None, &gen_out);
    let table = run(Some(&events), &file_out);
    assert!(table.contains("| q10 "), "{table}");
    // q10 writes CSV partitioned by day and minute: 30 000 events are 3 s
    // of event time from 2015-07-15 00:00:00.
    let part = file_out.join("q10/bid/dt=2015-07-15/hm=00:00");
    let csv: usize = std::fs::read_dir(&part)
        .unwrap()
        .map(|e| {
            std::fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    let bids = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"event_type\":2"))
        .count();
    assert_eq!(csv, bids);
    // The other query outputs are identical between the two sources.
    let state = dir.path().join("state");
    for (source, out) in [(None, &gen_out), (Some(events.as_path()), &file_out)] {
        let mut args = vec![
            "run",
            "--query",
            "q5",
            "--events",
            n,
            "--quiet",
            "--state-dir",
            state.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ];
        if let Some(s) = source {
            args.extend(["--source", s.to_str().unwrap()]);
        }
        assert!(nexmark(&args).status.success());
    }
    let (a, b) = (
        result_lines(&gen_out.join("q5")),
        result_lines(&file_out.join("q5")),
    );
    assert!(!a.is_empty());
    assert_eq!(a, b);
}

#[test]
fn query_all_prints_one_table_with_every_query() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let o = nexmark(&[
        "run",
        "--query",
        "all",
        "--events",
        "20000",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("Nexmark Query").count(), 1, "{out}");
    for i in 0..=23 {
        assert!(out.contains(&format!("| q{i} ")), "q{i} missing:\n{out}");
    }
    // Progress went to stderr, the table to stdout.
    assert!(stderr(&o).contains("events"), "{}", stderr(&o));
    let o = nexmark(&[
        "run",
        "--query",
        "q1",
        "--events",
        "5000",
        "--json",
        "--quiet",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json[0]["query"], "q1");
    assert_eq!(json[0]["events"], 5000);
}
