//! `deploy/local-cluster.sh` as a user meets it: SeaweedFS, a
//! `riverbed-store` on it, a coordinator and two worker processes, all on
//! 127.0.0.1; a worker is killed with `kill -9` and the job goes on, it is
//! rescaled 2 -> 4 -> 1 while it runs (two workers started for it), its
//! state is listed, and every process is stopped by pid at the end.

mod common;

use std::process::Command;

#[test]
fn the_local_cluster_runs_rescales_and_stops_everything() {
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_riverbed-nexmark"))
        .parent()
        .unwrap()
        .to_path_buf();
    // The store binary the test command builds beside this one.
    assert_eq!(common::store_bin().parent().unwrap(), bin_dir);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/local-cluster.sh");
    let o = Command::new("bash")
        .args([
            script,
            "--query",
            "q20",
            "--events",
            // Enough that the job still runs at the second rescale on a
            // fast machine.
            "1000000",
            "--rescale",
            "4,1",
        ])
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--dir")
        .arg(dir.path().join("cluster"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    let logs = dir.path().join("cluster/logs/coordinator.log");
    assert!(
        o.status.success(),
        "{out}\n{err}\njob log: {}",
        std::fs::read_to_string(&logs).unwrap_or_default()
    );
    for want in [
        "metrics http://127.0.0.1:",
        "checkpoints are coming in:",
        "killing worker 1 (kill -9 ",
        "the job goes on from its last checkpoint on the live workers:",
        "rescales, 1 failovers",
        "starting a worker for parallelism 4",
        "rescaled from 2 to 4 at checkpoint",
        "rescaled from 4 to 1 at checkpoint",
        "at parallelism 1 (max 128) on 1 worker(s)",
        "q20-join",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    assert!(out.matches("objects copied 0,").count() == 2, "{out}");
    let rows: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("[cluster] done: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row count in:\n{out}"));
    assert!(rows > 0, "{out}");
    // Every process it started is gone.
    for line in out.lines().filter(|l| l.contains(" pid ")) {
        let pid: i32 = line
            .split(" pid ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap();
        // SAFETY: signal 0 only asks whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "pid {pid} still runs after the script: {line}");
    }
}
