//! Queries against a store in another process: `riverbed-store serve`
//! started on a free port, the runner with `--state remote://ADDR`. The
//! output must equal the embedded store's; a store killed with `kill -9`
//! and restarted on the same files lets the query `--resume`; tokens keep
//! jobs out of each other's namespaces.

mod common;
/// The engine tests' S3 helper: the test command's SeaweedFS, or one this
/// process starts.
#[path = "../../state-store/tests/common/mod.rs"]
mod s3;

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

/// `run` arguments of the long q20 run the store dies in the middle of.
fn long_q20(sd: &Path, od: &Path, state: &str) -> Vec<String> {
    [
        "run",
        "--query",
        "q20",
        "--events",
        "1000000",
        "-p",
        "2",
        "--quiet",
        "--checkpoint-interval",
        "50ms",
        "--state-dir",
        sd.to_str().unwrap(),
        "--output",
        od.to_str().unwrap(),
        "--state",
        state,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The long q20 run that never failed, embedded, under `dir`: its table.
fn reference_q20(dir: &Path) -> std::collections::BTreeMap<String, i64> {
    let o = nexmark(&[
        "run",
        "--query",
        "q20",
        "--events",
        "1000000",
        "-p",
        "2",
        "--quiet",
        "--checkpoint-interval",
        "0",
        "--state-dir",
        dir.join("sd-ref").to_str().unwrap(),
        "--output",
        dir.join("ref").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    table(&dir.join("ref").join("q20"))
}

#[test]
#[allow(clippy::disallowed_methods)] // waits for the first checkpoints
fn a_killed_store_restarts_on_its_files_and_the_query_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("store");
    let (sd, od) = (dir.path().join("sd"), dir.path().join("out"));
    let mut server = StoreServer::start(&url, &dir.path().join("store1.log"), &[]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_riverbed-nexmark"))
        .args(long_q20(&sd, &od, &format!("remote://{}", server.addr)))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the store once the query has checkpointed twice.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let last = rt
            .block_on(riverbed_nexmark::runner::checkpoints::latest(&url, "q20"))
            .ok()
            .flatten();
        if last.is_some_and(|c| c.epoch.0 >= 2) {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the kill"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint in 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.kill();
    let status = child.wait().unwrap();
    let err = common::child_stderr(&mut child);
    assert!(!status.success(), "the run went on without its store");
    assert!(err.contains("store"), "{err}");

    // A new store process on the same files; the query resumes there.
    let server = StoreServer::start(&url, &dir.path().join("store2.log"), &[]);
    let mut args = long_q20(&sd, &od, &format!("remote://{}", server.addr));
    args.push("--resume".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = nexmark(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = table(&od.join("q20"));
    // The run that never failed, embedded.
    let want = reference_q20(dir.path());
    assert!(!want.is_empty());
    let differs: Vec<_> = want
        .iter()
        .filter(|(r, n)| got.get(*r) != Some(n))
        .chain(got.iter().filter(|(r, n)| want.get(*r) != Some(n)))
        .take(2)
        .collect();
    assert!(
        differs.is_empty(),
        "resumed on a restarted store: {} rows, expected {}; e.g. {differs:?}",
        got.values().sum::<i64>(),
        want.values().sum::<i64>()
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

#[test]
fn a_tls_store_refuses_plain_clients_and_serves_those_that_trust_it() {
    let dir = tempfile::tempdir().unwrap();
    // A self-signed certificate for the loopback address, made here.
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let (cert_file, key_file) = (dir.path().join("store.pem"), dir.path().join("store.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, signing_key.serialize_pem()).unwrap();
    let server = StoreServer::start(
        &dir.path().join("store"),
        &dir.path().join("store.log"),
        &[
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
    );
    let state = format!("remote://{}", server.addr);
    // A plain client is refused (its HTTP/2 preface is not a TLS hello).
    let o = run(dir.path(), "q5", "sd1", "plain", &["--state", &state]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("did not answer (a store serving TLS needs --tls-ca)"),
        "{}",
        stderr(&o)
    );
    let store = |args: &[&str]| {
        std::process::Command::new(common::store_bin())
            .args(args)
            .output()
            .unwrap()
    };
    let o = store(&["tables", "--addr", &server.addr]);
    assert!(!o.status.success(), "a plain `tables` was answered");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("needs --tls-ca"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A client trusting another certificate is refused too.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let other_file = dir.path().join("other.pem");
    std::fs::write(&other_file, other.cert.pem()).unwrap();
    let o = run(
        dir.path(),
        "q5",
        "sd2",
        "wrong",
        &["--state", &state, "--tls-ca", other_file.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("cannot reach the store"),
        "{}",
        stderr(&o)
    );
    // Trusting the store's certificate, the query runs and equals the
    // embedded store's run; `tables` and `query` work over TLS too.
    let ca = cert_file.to_str().unwrap();
    let o = run(
        dir.path(),
        "q5",
        "sd3",
        "tls",
        &["--state", &state, "--tls-ca", ca],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(dir.path(), "q5", "sd4", "embedded", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = table(&dir.path().join("embedded").join("q5"));
    assert!(!want.is_empty());
    assert_eq!(table(&dir.path().join("tls").join("q5")), want);
    let o = store(&["tables", "--addr", &server.addr, "--tls-ca", ca]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("q5"));
}

#[test]
fn every_query_on_a_remote_store_equals_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = StoreServer::start(
        &dir.path().join("store"),
        &dir.path().join("store.log"),
        &[],
    );
    let state = format!("remote://{}", server.addr);
    // `all` runs q0..q23 in turn, each query a namespace of the store.
    let all = |sd: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "--query",
            "all",
            "--events",
            "8000",
            "-p",
            "2",
            "--quiet",
            "--checkpoint-interval",
            "100ms",
            "--state-dir",
        ];
        let sd = dir.path().join(sd);
        let od = dir.path().join(out);
        args.push(sd.to_str().unwrap());
        args.push("--output");
        args.push(od.to_str().unwrap());
        args.extend_from_slice(extra);
        let o = nexmark(&args);
        assert!(o.status.success(), "{out}: {}", stderr(&o));
    };
    all("sd-e", "embedded", &[]);
    all("sd-r", "remote", &["--state", &state]);
    let mut compared = 0;
    for q in riverbed_nexmark::queries::QUERIES {
        let want = dir.path().join("embedded").join(q.name);
        // q12 windows by the wall clock: its rows differ run to run (its
        // own test checks what must hold).
        if q.name == "q12" || !want.exists() {
            continue;
        }
        assert_eq!(
            table(&dir.path().join("remote").join(q.name)),
            table(&want),
            "{}",
            q.name
        );
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} queries wrote output");
}

#[test]
fn a_store_on_s3_serves_a_query_that_survives_its_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = s3::backend(s3::Kind::S3, "remote-store");
    let config = common::s3_store_config(dir.path(), &b.url, b.s3.endpoint.as_deref().unwrap());
    let cfg = config.to_str().unwrap();
    let server = StoreServer::start_with(&dir.path().join("store1.log"), &["--config", cfg]);
    let state = format!("remote://{}", server.addr);
    let o = run(dir.path(), "q9", "sd", "s3", &["--state", &state]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(dir.path(), "q9", "sd-e", "embedded", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let want = table(&dir.path().join("embedded").join("q9"));
    assert!(!want.is_empty());
    assert_eq!(table(&dir.path().join("s3").join("q9")), want);
    // A new store process on the same bucket finds the job's checkpoints.
    drop(server);
    let server = StoreServer::start_with(&dir.path().join("store2.log"), &["--config", cfg]);
    let o = std::process::Command::new(common::store_bin())
        .args(["tables", "--addr", &server.addr, "--namespace", "q9"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.lines().count() > 1 && text.contains("q9"), "{text}");
}

/// A savepoint of a namespace, exported into the store's own storage from
/// a killed run, starts the query again there: what the first run had
/// committed at the savepoint's checkpoint plus everything the second run
/// writes equals a run that never stopped.
#[test]
#[allow(clippy::disallowed_methods)] // waits for the first checkpoints
fn a_remote_savepoint_continues_a_killed_query() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("store");
    let server = StoreServer::start(&url, &dir.path().join("store.log"), &[]);
    let state = format!("remote://{}", server.addr);
    let (sd, od) = (dir.path().join("sd"), dir.path().join("out"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_riverbed-nexmark"))
        .args(long_q20(&sd, &od, &state))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let latest = || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(riverbed_nexmark::runner::checkpoints::latest(&url, "q20"))
            .ok()
            .flatten()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while latest().is_none_or(|c| c.epoch.0 < 2) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the kill"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint in 120 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the pid of our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGKILL) }, 0);
    let _ = child.wait();
    let epoch = latest().unwrap().epoch.0;
    let before = common::committed_rows(&common::staging_of(&od, "q20"), epoch);

    let o = nexmark(&[
        "savepoint",
        "--query",
        "q20",
        "--to",
        "sp1",
        "--state",
        &state,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        said.starts_with(&format!(
            "savepoint of q20 at checkpoint {epoch} written to sp1"
        )),
        "{said}"
    );
    // The name is taken now; a bad name is refused.
    for (name, why) in [("sp1", "already holds"), ("../x", "name")] {
        let o = nexmark(&[
            "savepoint",
            "--query",
            "q20",
            "--to",
            name,
            "--state",
            &state,
        ]);
        assert!(!o.status.success(), "{name}");
        assert!(stderr(&o).contains(why), "{name}: {}", stderr(&o));
    }

    // The namespace holds the killed run: --fresh drops it, the savepoint
    // fills it, the sources seek to its positions.
    let (sd2, od2) = (dir.path().join("sd2"), dir.path().join("out2"));
    let mut args = long_q20(&sd2, &od2, &state);
    args.extend(["--from-savepoint".into(), "sp1".into(), "--fresh".into()]);
    let o = nexmark(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));

    let want = reference_q20(dir.path());
    let got = common::joined_table(&before, &od2.join("q20"), &dir.path().join("joined"));
    assert!(!before.is_empty(), "the killed run had committed nothing");
    assert_eq!(
        got.values().sum::<i64>(),
        want.values().sum::<i64>(),
        "rows before: {}",
        before.len()
    );
    assert!(got == want, "the tables differ");
    // Another query's savepoint is refused, and leaves its namespace empty.
    let mut args = long_q20(&dir.path().join("sd3"), &dir.path().join("out3"), &state);
    args[2] = "q9".into();
    args.extend(["--from-savepoint".into(), "sp1".into()]);
    let o = nexmark(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("a savepoint of q20, not of q9"),
        "{}",
        stderr(&o)
    );
}
