//! A query on worker processes, measured on whole processes on this
//! machine: a `riverbed-store serve` on a local directory, a
//! `riverbed-nexmark coordinator` and its `riverbed-nexmark worker`s, all
//! on 127.0.0.1.
//!
//! - [`scaling`]: one query on 1, 2, 3 ... workers (one subtask per
//!   worker): events per second of wall time, and CPU seconds per million
//!   events summed over every process of the cluster (store, coordinator,
//!   workers), from `getrusage(RUSAGE_CHILDREN)` once all are reaped.
//! - [`failover`]: a query on two workers until the store holds a given
//!   amount of state; then one worker is killed with `kill -9`, and the
//!   time to the first checkpoint the job commits after it (the first new
//!   output: sinks publish at checkpoints) is taken; then two workers are
//!   added and the job rescaled 2 → 4, with what the store moved; and the
//!   checkpoint durations the coordinator logged up to the kill.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::checkpoints::du;
use crate::rescale::Rescaled;
use crate::timing::Stopwatch;

/// The binaries and where their files go.
#[derive(Clone)]
pub struct Binaries {
    pub nexmark: PathBuf,
    pub store: PathBuf,
    pub scratch: PathBuf,
}

/// A process and the rest of its stdout.
struct Proc {
    child: Child,
}

impl Proc {
    /// Starts `bin args`, its stderr into `log`; returns it and what its
    /// first stdout line says after `prefix`.
    fn start(bin: &Path, args: &[String], log: &Path, prefix: &str) -> Result<(Proc, String)> {
        let mut child = Command::new(bin)
            .args(args)
            .env("RIVERBED_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut out = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        out.read_line(&mut line)?;
        let Some(rest) = line.trim().strip_prefix(prefix) else {
            bail!("{} printed {line:?}; see {}", bin.display(), log.display());
        };
        let rest = rest.to_string();
        // Its later output is not needed; a drained pipe never blocks it.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Ok((Proc { child }, rest))
    }

    fn kill9(&mut self) {
        // SAFETY: kill(2) on the pid of our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds of every reaped child of this process so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// A store, a coordinator and its workers.
struct Cluster {
    b: Binaries,
    dir: PathBuf,
    store: Proc,
    coordinator: Proc,
    coordinator_addr: String,
    workers: Vec<Proc>,
}

impl Cluster {
    fn start(
        b: &Binaries,
        name: &str,
        coordinator_args: &[&str],
        workers: usize,
    ) -> Result<Cluster> {
        let dir = b.scratch.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("logs"))?;
        let store_dir = dir.join("store");
        let (store, store_addr) = Proc::start(
            &b.store,
            &[
                "serve".into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--http-listen".into(),
                "".into(),
                "--url".into(),
                store_dir.to_string_lossy().into_owned(),
            ],
            &dir.join("logs/store.log"),
            "listening on ",
        )?;
        let mut args: Vec<String> = vec!["coordinator".into()];
        args.extend(coordinator_args.iter().map(|s| s.to_string()));
        args.extend([
            "--workers".into(),
            workers.to_string(),
            "--state".into(),
            format!("remote://{store_addr}"),
            "--state-dir".into(),
            dir.join("job").to_string_lossy().into_owned(),
            "--quiet".into(),
            "--json".into(),
            "--fresh".into(),
            "--coordinator-listen".into(),
            "127.0.0.1:0".into(),
        ]);
        let (coordinator, coordinator_addr) = Proc::start(
            &b.nexmark,
            &args,
            &dir.join("logs/coordinator.log"),
            "coordinator listening on ",
        )?;
        let mut c = Cluster {
            b: b.clone(),
            dir,
            store,
            coordinator,
            coordinator_addr,
            workers: Vec::new(),
        };
        for _ in 0..workers {
            c.add_worker()?;
        }
        Ok(c)
    }

    fn add_worker(&mut self) -> Result<()> {
        let n = self.workers.len() + 1;
        let (w, _) = Proc::start(
            &self.b.nexmark,
            &[
                "worker".into(),
                "--coordinator".into(),
                self.coordinator_addr.clone(),
            ],
            &self.dir.join(format!("logs/worker-{n}.log")),
            "worker exchange listening on ",
        )?;
        self.workers.push(w);
        Ok(())
    }

    fn status(&self) -> Result<serde_json::Value> {
        let o = Command::new(&self.b.nexmark)
            .args(["status", "--coordinator", &self.coordinator_addr, "--json"])
            .output()?;
        if !o.status.success() {
            bail!("status: {}", String::from_utf8_lossy(&o.stderr).trim());
        }
        Ok(serde_json::from_slice(&o.stdout)?)
    }

    /// Waits until `done(status)` holds, polling every 5 ms.
    fn wait_for(&mut self, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> Result<()> {
        let clock = Stopwatch::start();
        loop {
            if let Some(s) = self.coordinator.child.try_wait()? {
                bail!("the coordinator ended ({s}) while waiting for {what}: give more --events");
            }
            if let Ok(s) = self.status() {
                if done(&s) {
                    return Ok(());
                }
            }
            if clock.elapsed() > Duration::from_secs(1800) {
                bail!("no {what} after 30 minutes");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn store_bytes(&self) -> u64 {
        du(&self.dir.join("store"))
    }
}

/// One point of the scaling curve.
#[derive(Debug, Serialize)]
pub struct ScalingPoint {
    pub query: String,
    pub workers: usize,
    pub events: u64,
    pub wall_s: f64,
    pub events_per_s: f64,
    /// CPU seconds of all processes of the cluster per million events.
    pub cpu_s_per_m_events: f64,
}

/// `query` over `events` on each count of `workers` (parallelism = workers).
pub fn scaling(
    b: &Binaries,
    query: &str,
    events: u64,
    workers: &[usize],
) -> Result<Vec<ScalingPoint>> {
    let mut out = Vec::new();
    for &w in workers {
        let cpu_before = children_cpu();
        let clock = Stopwatch::start();
        let ev = events.to_string();
        let p = w.to_string();
        let mut c = Cluster::start(
            b,
            &format!("scaling-{query}-{w}"),
            &["--query", query, "--events", &ev, "-p", &p],
            w,
        )?;
        let exit = c.coordinator.child.wait()?;
        let wall = clock.elapsed().as_secs_f64();
        if !exit.success() {
            bail!("{query} on {w} workers failed; see {}", c.dir.display());
        }
        // The workers exit when dismissed; the store is stopped.
        for wk in &mut c.workers {
            let _ = wk.child.wait();
        }
        c.store.kill9();
        let cpu = children_cpu() - cpu_before;
        eprintln!(
            "{query} on {w} worker(s): {events} events in {wall:.1} s ({:.0} events/s), {:.2} CPU \
             s per M events",
            events as f64 / wall,
            cpu / (events as f64 / 1e6)
        );
        let _ = std::fs::remove_dir_all(&c.dir);
        out.push(ScalingPoint {
            query: query.into(),
            workers: w,
            events,
            wall_s: wall,
            events_per_s: events as f64 / wall,
            cpu_s_per_m_events: cpu / (events as f64 / 1e6),
        });
    }
    Ok(out)
}

/// What one failover-and-rescale run measured.
#[derive(Debug, Serialize)]
pub struct FailoverReport {
    pub query: String,
    pub events: u64,
    pub state_mib_at_kill: f64,
    /// `kill -9` of a worker to the first checkpoint committed after it.
    pub recovery_ms: f64,
    pub state_mib_at_rescale: f64,
    /// The rescale call 2 → 4 as the client timed it, and its answer.
    pub rescale_call_ms: f64,
    pub rescaled: Rescaled,
    /// Checkpoints the coordinator completed before the kill, and their
    /// durations (injection to commit).
    pub checkpoints: usize,
    pub checkpoint_p50_ms: u64,
    pub checkpoint_p99_ms: u64,
    pub checkpoint_max_ms: u64,
}

fn committed(s: &serde_json::Value) -> u64 {
    s["committed_epoch"].as_u64().unwrap_or(0)
}

/// The checkpoint durations in a coordinator log (`duration_ms=N` of its
/// `checkpoint complete` lines).
fn checkpoint_durations(log: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut v: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("checkpoint complete"))
        .filter_map(|l| {
            let plain: String = strip_ansi(l);
            plain
                .split_whitespace()
                .find_map(|w| w.strip_prefix("duration_ms="))
                .and_then(|n| n.parse().ok())
        })
        .collect();
    v.sort_unstable();
    v
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

fn nearest_rank(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `query` on two workers until the store holds `at_mib` MiB: kill one,
/// time the recovery; add two and rescale to 4. `keep`: leave the
/// cluster's folder (its logs) in place.
pub fn failover(
    b: &Binaries,
    query: &str,
    events: u64,
    at_mib: u64,
    keep: bool,
) -> Result<FailoverReport> {
    let ev = events.to_string();
    let mut c = Cluster::start(
        b,
        &format!("failover-{query}-{at_mib}"),
        &[
            "--query",
            query,
            "--events",
            &ev,
            "-p",
            "2",
            "--checkpoint-interval",
            "1s",
        ],
        2,
    )?;
    let want = at_mib << 20;
    let mut polls = 0u64;
    loop {
        if let Some(s) = c.coordinator.child.try_wait()? {
            bail!("{query} ended ({s}) before the store held {at_mib} MiB: give more --events");
        }
        let have = c.store_bytes();
        if have >= want {
            break;
        }
        polls += 1;
        if polls.is_multiple_of(300) {
            eprintln!("{query}: {} of {at_mib} MiB", have >> 20);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let durations = checkpoint_durations(&c.dir.join("logs/coordinator.log"));
    let state_at_kill = c.store_bytes();
    let at_kill = committed(&c.status()?);
    let clock = Stopwatch::start();
    c.workers[0].kill9();
    c.wait_for("a checkpoint after the kill", |s| {
        s["failovers"].as_u64().unwrap_or(0) >= 1
            && s["state"] == "running"
            && committed(s) > at_kill
    })?;
    let recovery_ms = clock.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "{query}: worker killed at {:.0} MiB; first checkpoint after {recovery_ms:.0} ms",
        state_at_kill as f64 / (1 << 20) as f64
    );
    // Back to two, then two more: the job spreads over the newcomer (one
    // stop), then is rescaled to 4 on four workers.
    c.add_worker()?;
    c.wait_for("the job on two workers again", |s| {
        s["workers"] == 2 && s["state"] == "running"
    })?;
    let e = committed(&c.status()?);
    c.wait_for("a checkpoint on two workers", |s| {
        committed(s) > e && s["state"] == "running"
    })?;
    c.add_worker()?;
    c.add_worker()?;
    let state_at_rescale = c.store_bytes();
    let call = Stopwatch::start();
    let o = Command::new(&b.nexmark)
        .args([
            "rescale",
            "--coordinator",
            &c.coordinator_addr,
            "--json",
            "--parallelism",
            "4",
        ])
        .output()?;
    let rescale_call_ms = call.elapsed().as_secs_f64() * 1e3;
    if !o.status.success() {
        bail!("rescale: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    let rescaled: Rescaled = serde_json::from_slice(&o.stdout).context("rescale --json")?;
    eprintln!(
        "{query}: rescaled 2 -> 4 at {:.0} MiB in {rescale_call_ms:.0} ms (stop {} ms, restart {} \
         ms), objects copied {}",
        state_at_rescale as f64 / (1 << 20) as f64,
        rescaled.stop_ms,
        rescaled.restart_ms,
        rescaled.objects_copied
    );
    let dir = c.dir.clone();
    drop(c);
    if keep {
        eprintln!("{query}: the cluster's folder is kept: {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(FailoverReport {
        query: query.into(),
        events,
        state_mib_at_kill: state_at_kill as f64 / (1 << 20) as f64,
        recovery_ms,
        state_mib_at_rescale: state_at_rescale as f64 / (1 << 20) as f64,
        rescale_call_ms,
        rescaled,
        checkpoints: durations.len(),
        checkpoint_p50_ms: nearest_rank(&durations, 50.0),
        checkpoint_p99_ms: nearest_rank(&durations, 99.0),
        checkpoint_max_ms: durations.last().copied().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_lines_are_read_through_their_colours() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        std::fs::write(
            &log,
            "\u{1b}[2m2026\u{1b}[0m INFO riverbed_compute::env: checkpoint complete \
             \u{1b}[3mepoch\u{1b}[0m\u{1b}[2m=\u{1b}[0m1 \u{1b}[3mduration_ms\u{1b}[0m\u{1b}[2m=\u{1b}[0m68 files=1\n\
             other line duration_ms=5\n\
             x checkpoint complete epoch=2 duration_ms=900 files=1\n",
        )
        .unwrap();
        assert_eq!(checkpoint_durations(&log), vec![68, 900]);
        assert_eq!(nearest_rank(&[68, 900], 99.0), 900);
        assert_eq!(nearest_rank(&[68, 900], 50.0), 68);
        assert_eq!(nearest_rank(&[], 50.0), 0);
    }
}
