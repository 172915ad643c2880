//! Queries against a store in another process: `riverbed-store serve`
//! started on a free port, the runner with `--state remote://ADDR`. The
//! output must equal the embedded store's, and tokens keep jobs out of
//! each other's namespaces.

mod common;

use std::path::Path;

use common::{nexmark, stderr, table, StoreServer};

/// Runs `query` with `extra` flags, writing its output under `out`.
fn run(
    dir: &Path,
    query: &str,
    state_dir: &str,
    out: &str,
    extra: &[&str],
) -> std::process::Output {
    let sd = dir.join(state_dir);
    let od = dir.join(out);
    let mut args = vec![
        "run",
        "--query",
        query,
        "--events",
        "30000",
        "-p",
        "2",
        "--quiet",
        "--state-cache",
        "500",
        "--checkpoint-interval",
        "50ms",
        "--state-dir",
        sd.to_str().unwrap(),
        "--output",
        od.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    nexmark(&args)
}

#[test]
fn queries_on_a_remote_store_equal_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = StoreServer::start(
        &dir.path().join("store"),
        &dir.path().join("store.log"),
        &[],
    );
    let state = format!("remote://{}", server.addr);
    for q in ["q5", "q9", "q20", "q8"] {
        let o = run(dir.path(), q, "sd-embedded", "embedded", &[]);
        assert!(o.status.success(), "{q} embedded: {}", stderr(&o));
        let o = run(dir.path(), q, "sd-remote", "remote", &["--state", &state]);
        assert!(o.status.success(), "{q} remote: {}", stderr(&o));
        let want = table(&dir.path().join("embedded").join(q));
        assert!(!want.is_empty(), "{q} has no output");
        assert_eq!(table(&dir.path().join("remote").join(q)), want, "{q}");
    }
    // The state is in the store's files, not in the runner's state dir.
    assert!(dir.path().join("store").join("ns").join("q9").exists());
    // A second run starts over (the namespace is dropped first) and still agrees.
    let o = run(
        dir.path(),
        "q5",
        "sd-remote",
        "remote2",
        &["--state", &state],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        table(&dir.path().join("remote2").join("q5")),
        table(&dir.path().join("embedded").join("q5"))
    );
}

#[test]
fn tokens_keep_jobs_to_their_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        "# job tokens\nJOB5 q5 rw\nREAD5 q5 ro\nOTHER q7 rw\n",
    )
    .unwrap();
    let log = dir.path().join("store.log");
    let server = StoreServer::start(
        &dir.path().join("store"),
        &log,
        &["--token-file", tokens.to_str().unwrap()],
    );
    let state = format!("remote://{}", server.addr);
    let o = run(dir.path(), "q5", "sd", "none", &["--state", &state]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("needs a token"), "{}", stderr(&o));
    for (token, why) in [("OTHER", "reading"), ("READ5", "writing")] {
        let o = run(
            dir.path(),
            "q5",
            "sd",
            "x",
            &["--state", &state, "--token", token],
        );
        assert!(!o.status.success(), "{token}");
        let e = stderr(&o);
        assert!(
            e.contains("does not allow") && e.contains(why),
            "{token}: {e}"
        );
        assert!(!e.contains(token), "the error shows the token: {e}");
    }
    let o = run(
        dir.path(),
        "q5",
        "sd",
        "ok",
        &["--state", &state, "--token", "JOB5"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!table(&dir.path().join("ok").join("q5")).is_empty());
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("refused"), "{log}");
    for t in ["JOB5", "READ5", "OTHER"] {
        assert!(!log.contains(t), "the log shows a token: {log}");
    }
}
