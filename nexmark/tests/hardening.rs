//! Bad input, tried as a user would: absurd settings fail at once with one
//! line, numbers past `BIGINT` are refused with their line and field, output
//! is never stale or half-written, a state directory serves one run at a
//! time, an event file streams in bounded memory, and the suite's settings
//! (`--rate`) and row counts are reachable.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{nexmark, stderr};

/// CPU time (user + system) of the children this test process has waited for.
fn children_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Runs the binary expecting failure with exactly one line on stderr that
/// contains every needle; returns the child's CPU time.
fn fails_with(args: &[&str], needles: &[&str]) -> Duration {
    let before = children_cpu();
    let o = nexmark(args);
    let cpu = children_cpu() - before;
    let err = stderr(&o);
    assert!(!o.status.success(), "{args:?} succeeded");
    assert_eq!(
        o.status.code(),
        Some(if err.contains("see riverbed-nexmark --help") {
            2
        } else {
            1
        }),
        "{args:?}: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{args:?}: {n:?} missing in {err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    cpu
}

#[test]
fn absurd_settings_fail_at_once_naming_the_flag_and_open_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--parallelism", "2000"],
            &["--parallelism", "2000", "exceeds --max-parallelism 128"],
        ),
        (
            &["--parallelism", "8000", "--max-parallelism", "32768"],
            &["--parallelism", "8000", "1024"],
        ),
        (
            &["--parallelism", "100000", "--max-parallelism", "32768"],
            &["--parallelism", "100000"],
        ),
        (&["--parallelism", "0"], &["--parallelism", "at least 1"]),
        (&["--max-parallelism", "0"], &["--max-parallelism"]),
        (
            &["--max-parallelism", "40000"],
            &["--max-parallelism", "40000"],
        ),
        (
            &["--max-parallelism", "70000"],
            &["--max-parallelism", "70000"],
        ),
        (&["--state-cache", "0"], &["--state-cache"]),
        (
            &["--state-cache", "99999999999999"],
            &["--state-cache", "99999999999999"],
        ),
        (&["--rate", "0"], &["--rate"]),
        (&["--events", "-5"], &["-5"]),
        (
            &["--source", "/dev/null", "--max-line-bytes", "0"],
            &["--max-line-bytes"],
        ),
        (
            &["--source", "/dev/null", "--rate", "7"],
            &["--rate", "--source"],
        ),
    ];
    for (extra, needles) in cases {
        let mut args = vec![
            "run",
            "--query",
            "q5",
            "--events",
            "20000",
            "--state-dir",
            s,
        ];
        args.extend_from_slice(extra);
        let cpu = fails_with(&args, needles);
        // Well under a second of CPU: nothing was built before the check.
        assert!(
            cpu < Duration::from_millis(500),
            "{extra:?} took {cpu:?} of CPU"
        );
        assert!(!state.exists(), "{extra:?} created the state directory");
    }
}

/// Bids with these prices, one per auction `1000 + i`, all at one time, and
/// the auctions open around them; written as an event file.
fn extreme_file(path: &Path, prices: &[i64]) {
    use riverbed_nexmark::{Auction, Bid, Event};
    let t0 = 1_436_918_400_000;
    let mut events = Vec::new();
    for (i, &price) in prices.iter().enumerate() {
        let id = 1000 + i as i64;
        events.push(Event::Auction(Auction {
            id,
            item_name: "i".into(),
            description: "d".into(),
            initial_bid: price,
            reserve: price,
            date_time: t0,
            expires: t0 + 1000,
            seller: 7,
            category: 10,
            extra: String::new(),
            seq: 0,
        }));
        for bidder in [1, 2] {
            events.push(Event::Bid(Bid {
                auction: id,
                bidder,
                price,
                channel: "Google".into(),
                url: "https://www.nexmark.com/a/b/c/item.htm?query=1".into(),
                date_time: t0 + 500,
                extra: String::new(),
                seq: 0,
            }));
        }
    }
    let mut w = riverbed_nexmark::json::create_file(path).unwrap();
    w.write_all(&events).unwrap();
    w.finish().unwrap();
}

/// The JSON lines of `dir`'s part files, parsed.
fn output_rows(dir: &Path) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "jsonl") {
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                rows.push(serde_json::from_str(line).unwrap());
            }
        }
    }
    rows
}

/// The raw text of `column` in every row of the final table that the
/// changelog in `dir`'s part files builds (numbers as written, so no
/// precision is lost to a float parse), sorted.
fn final_column(dir: &Path, column: &str) -> Vec<String> {
    let mut table: std::collections::BTreeMap<String, i64> = Default::default();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let (op, row) = (&line[7..9], &line[10..]);
            let n = table.entry(row.to_string()).or_default();
            *n += if op == "+I" || op == "+U" { 1 } else { -1 };
            assert!(*n >= 0, "retraction of a missing row {line}");
        }
    }
    let key = format!("\"{column}\":");
    let mut out = Vec::new();
    for (row, n) in table {
        let start = row.find(&key).unwrap() + key.len();
        let end = row[start..].find([',', '}']).unwrap() + start;
        out.extend(std::iter::repeat_n(row[start..end].to_string(), n as usize));
    }
    out.sort();
    out
}

/// `0.908 * p` as the suite's DECIMAL(23, 3) prints it.
fn dec3(p: i64) -> String {
    let v = 908 * i128::from(p);
    let sign = if v < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:03}",
        v.unsigned_abs() / 1000,
        v.unsigned_abs() % 1000
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn extreme_bigint_values_stay_exact_through_every_arithmetic_query() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("extreme.jsonl");
    let prices = [0, 1, 1 << 62, i64::MAX, i64::MIN, -1];
    extreme_file(&events, &prices);
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    for q in [
        "q1", "q2", "q4", "q6", "q7", "q9", "q14", "q17", "q18", "q19",
    ] {
        let o = nexmark(&[
            "run",
            "--query",
            q,
            "--source",
            events.to_str().unwrap(),
            "--quiet",
            "--state-dir",
            state.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{q}: {}", stderr(&o));
    }
    let twice = |v: Vec<String>| sorted(v.iter().flat_map(|x| [x.clone(), x.clone()]).collect());
    let text = |v: &[i64]| sorted(v.iter().map(i64::to_string).collect());
    // q1: 0.908 * price, DECIMAL(23, 3), exact at both ends of BIGINT.
    assert_eq!(
        final_column(&out.join("q1"), "price"),
        twice(prices.iter().map(|&p| dec3(p)).collect())
    );
    assert!(final_column(&out.join("q1"), "price").contains(&"8374821809464136432.756".to_string()));
    // q14 keeps only 1 M < 0.908 * price < 50 M: none of these.
    assert!(final_column(&out.join("q14"), "price").is_empty());
    // q17: per auction, sum and average of its two equal bids: the sum
    // passes BIGINT and is printed exactly; the average is the price.
    assert_eq!(
        final_column(&out.join("q17"), "sum_price"),
        sorted(
            prices
                .iter()
                .map(|&p| (2 * i128::from(p)).to_string())
                .collect()
        )
    );
    assert!(
        final_column(&out.join("q17"), "sum_price").contains(&"18446744073709551614".to_string())
    );
    for column in ["avg_price", "min_price", "max_price"] {
        assert_eq!(
            final_column(&out.join("q17"), column),
            text(&prices),
            "{column}"
        );
    }
    // q4: category 10 averages the six auction maxima: exact sum / 6.
    let total: i128 = prices.iter().map(|&p| i128::from(p)).sum();
    assert_eq!(
        final_column(&out.join("q4"), "final"),
        [(total / 6).to_string()]
    );
    // q6: one seller; the running averages of 1..=6 closed auctions, each
    // from the exact sum (closing order: expires, then id).
    let averages = (1..=prices.len())
        .map(|n| (prices[..n].iter().map(|&p| i128::from(p)).sum::<i128>() / n as i128).to_string())
        .collect();
    assert_eq!(final_column(&out.join("q6"), "avg_price"), sorted(averages));
    // q7: one window; the maximum is i64::MAX, held by two bids.
    assert_eq!(
        final_column(&out.join("q7"), "price"),
        twice(vec![i64::MAX.to_string()])
    );
    // q9 keeps one bid per auction; q18 and q19 one per bidder and auction.
    assert_eq!(final_column(&out.join("q9"), "price"), text(&prices));
    assert_eq!(
        final_column(&out.join("q18"), "price"),
        twice(text(&prices))
    );
    assert_eq!(
        final_column(&out.join("q19"), "price"),
        twice(text(&prices))
    );
    // q2: auction % 123 == 0 holds for none of the auctions 1000..=1005.
    assert!(final_column(&out.join("q2"), "price").is_empty());
}

#[test]
fn values_outside_bigint_are_refused_naming_the_line_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    extreme_file(&events, &[5, 6, 7]);
    let text = std::fs::read_to_string(&events).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (value, field, line) in [
        ("9223372036854775808", "price", 5),
        ("-9223372036854775809", "bidder", 3),
        ("1e17", "price", 6),
        ("100000000000000000000", "auction", 9),
    ] {
        let original = lines[line - 1].clone();
        let pattern = format!("\"{field}\":");
        let nested = original.find("\"bid\":{").unwrap();
        let start = nested + original[nested..].find(&pattern).unwrap() + pattern.len();
        let end = original[start..].find([',', '}']).unwrap() + start;
        lines[line - 1] = format!("{}{value}{}", &original[..start], &original[end..]);
        std::fs::write(&events, lines.join("\n") + "\n").unwrap();
        let state = dir.path().join("state");
        fails_with(
            &[
                "run",
                "--query",
                "q0",
                "--source",
                events.to_str().unwrap(),
                "--state-dir",
                state.to_str().unwrap(),
            ],
            &[&format!("line {line}: bid.{field}: {value}"), "BIGINT"],
        );
        lines[line - 1] = original;
    }
}

#[test]
fn output_is_exactly_the_last_complete_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let run = |p: &str, source: Option<&Path>| {
        let mut args = vec![
            "run",
            "--query",
            "q5",
            "--events",
            "30000",
            "-p",
            p,
            "--quiet",
            // Checkpoints only at the end: a failed run has nothing to
            // resume, so it keeps nothing (resumable runs: the kill tests).
            "--checkpoint-interval",
            "0",
            "--state-dir",
            state.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ];
        if let Some(s) = source {
            args.extend(["--source", s.to_str().unwrap()]);
        }
        nexmark(&args)
    };
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert!(run("4", None).status.success());
    assert_eq!(
        names(&out.join("q5")),
        [
            "part-0.jsonl",
            "part-1.jsonl",
            "part-2.jsonl",
            "part-3.jsonl"
        ]
    );
    std::fs::write(out.join("q5").join("by-hand.txt"), "x").unwrap();
    let four = output_rows(&out.join("q5")).len();
    assert!(run("2", None).status.success());
    // Nothing of the first run is kept beside the second.
    assert_eq!(names(&out.join("q5")), ["part-0.jsonl", "part-1.jsonl"]);
    assert_eq!(output_rows(&out.join("q5")).len(), four);
    assert_eq!(names(&out), ["q5"]);
    // A run that fails (a bad line deep in its input) publishes nothing
    // and leaves the last complete results as they were.
    let bad = dir.path().join("bad.jsonl");
    let o = nexmark(&[
        "generate",
        "--events",
        "40000",
        "--out",
        bad.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let mut text = std::fs::read_to_string(&bad).unwrap();
    text.push_str("{\"event_type\": 9}\n");
    std::fs::write(&bad, text).unwrap();
    let before = std::fs::read(out.join("q5").join("part-0.jsonl")).unwrap();
    let o = run("2", Some(&bad));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("line 40001"), "{}", stderr(&o));
    assert_eq!(names(&out), ["q5"], "no staging folder is left behind");
    assert_eq!(
        std::fs::read(out.join("q5").join("part-0.jsonl")).unwrap(),
        before
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // a deadline for the first run to start
fn a_second_run_on_a_held_state_directory_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    let mut first = Command::new(env!("CARGO_BIN_EXE_riverbed-nexmark"))
        .args([
            "run",
            "--query",
            "q5",
            "--events",
            "1000000000",
            "--quiet",
            "--state-dir",
            s,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait (on the event, not a guess) until the first run holds the lock:
    // its process id is in the lock file.
    let lock = state.join("LOCK");
    let pid = first.id().to_string();
    let start = Instant::now();
    while std::fs::read_to_string(&lock).ok().as_deref() != Some(pid.as_str()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = children_cpu();
    fails_with(
        &["run", "--query", "q5", "--events", "1000", "--state-dir", s],
        &[s, "in use by another run", &format!("process {pid}")],
    );
    assert!(children_cpu() - before < Duration::from_millis(500));
    // The first run was not disturbed; killed, it frees the directory.
    assert!(first.try_wait().unwrap().is_none(), "the first run stopped");
    first.kill().unwrap();
    first.wait().unwrap();
    let o = nexmark(&[
        "run",
        "--query",
        "q1",
        "--events",
        "1000",
        "--quiet",
        "--state-dir",
        s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn an_event_file_streams_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    // About 170 MB of events: a reader holding them would pass 300 MB.
    let o = nexmark(&[
        "generate",
        "--events",
        "500000",
        "--out",
        events.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let size = std::fs::metadata(&events).unwrap().len();
    assert!(size > 150 << 20, "{size}");
    let state = dir.path().join("state");
    let o = nexmark(&[
        "run",
        "--query",
        "q0",
        "--source",
        events.to_str().unwrap(),
        "--json",
        "--quiet",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report[0]["events"], 500_000);
    let rss = report[0]["peak_rss_bytes"].as_u64().unwrap();
    assert!(rss < size / 2, "peak RSS {rss} for a file of {size} bytes");
    // A device that never ends a line fails at the line limit.
    fails_with(
        &[
            "run",
            "--query",
            "q0",
            "--source",
            "/dev/zero",
            "--max-line-bytes",
            "1000000",
            "--state-dir",
            state.to_str().unwrap(),
        ],
        &["/dev/zero: line 1", "longer than 1000000 bytes"],
    );
}

#[test]
fn the_rate_spaces_event_time_and_the_table_counts_changelog_and_final_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (slow, fast) = (dir.path().join("slow.jsonl"), dir.path().join("fast.jsonl"));
    for (path, rate) in [(&slow, "10000"), (&fast, "10000000")] {
        let o = nexmark(&[
            "generate",
            "--events",
            "100000",
            "--rate",
            rate,
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let last_time = |p: &Path| {
        let text = std::fs::read_to_string(p).unwrap();
        let line = text.lines().last().unwrap();
        let at = line.find("\"dateTime\":\"").unwrap() + 12;
        line[at..at + 23].to_string()
    };
    // 100 000 events are 10 s of event time at 10 000/s, 10 ms at 10 M/s.
    assert_eq!(last_time(&slow), "2015-07-15 00:00:09.999");
    assert_eq!(last_time(&fast), "2015-07-15 00:00:00.009");
    let state = dir.path().join("state");
    let o = nexmark(&[
        "run",
        "--query",
        "q4",
        "--events",
        "50000",
        "--rate",
        "10000000",
        "--quiet",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        table.contains("Changelog rows") && table.contains("Final rows"),
        "{table}"
    );
    let o = nexmark(&[
        "run",
        "--query",
        "q4",
        "--events",
        "50000",
        "--json",
        "--quiet",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // q4 has one final row per category (5), reached through updates.
    assert_eq!(report[0]["final_rows"], 5);
    assert!(report[0]["changelog_rows"].as_u64().unwrap() > 5);
    let o = nexmark(&[
        "run",
        "--query",
        "q0",
        "--events",
        "5000",
        "--json",
        "--quiet",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report[0]["final_rows"].is_null());
}
