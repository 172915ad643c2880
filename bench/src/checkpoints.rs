//! Checkpoints and recovery, measured on whole Nexmark runs in child
//! processes of this binary:
//!
//! - **Cost as state grows**: q9 and q20 at growing event counts (so growing
//!   state), checkpointing every second. Per run: each checkpoint's
//!   duration (barrier injected to commit durable), the bytes its operators
//!   shipped (dirty) and the bytes the store wrote for it (new files plus
//!   the manifest), and the store's size at the end.
//! - **Recovery**: the same run is started again, killed with SIGKILL once
//!   60% of the uninterrupted run's time has passed and it has a
//!   checkpoint, and resumed with `--resume`: the figure is the time from
//!   the resumed process's start to its first output row (the kernel's
//!   process start time, so everything before `main` counts too).
//! - **What checkpoints cost**: every query with 1 s checkpoints and with
//!   checkpoints only at the end, one after the other, as events per CPU
//!   second.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::nexmark::{plan, QueryRun};
use crate::timing::Stopwatch;

/// One checkpoint as the child reports it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CheckpointStat {
    pub epoch: u64,
    pub duration_ms: u64,
    pub commit_ms: u64,
    pub dirty_bytes: u64,
    pub bytes_written: u64,
    pub files_added: u64,
    pub finished: bool,
}

/// A query at one state size: its checkpoints and its recovery.
#[derive(Clone, Debug, Serialize)]
pub struct SizePoint {
    pub query: String,
    pub events: u64,
    /// Bytes of the store's files after the run.
    pub state_bytes: u64,
    pub wall_s: f64,
    /// Checkpoints taken during the run (the final commit not counted).
    pub checkpoints: usize,
    pub p50_ms: u64,
    pub p99_ms: u64,
    pub max_ms: u64,
    /// The store's part of the duration: sealing the epoch, writing its
    /// files and the manifest.
    pub commit_p99_ms: u64,
    /// Means per checkpoint.
    pub dirty_bytes_mean: u64,
    pub written_bytes_mean: u64,
    pub recovery: Recovery,
    /// Every checkpoint of the uninterrupted run.
    pub stats: Vec<CheckpointStat>,
}

#[derive(Clone, Debug, Serialize)]
pub enum Recovery {
    /// Killed at `killed_after_s`, resumed from checkpoint `from_epoch`.
    Measured {
        killed_after_s: f64,
        from_epoch: u64,
        first_output_ms: Option<u64>,
        resumed_wall_s: f64,
    },
    /// Why there is no figure.
    NotMeasured(String),
}

/// A query with 1 s checkpoints and with checkpoints only at the end, in
/// rounds of one run each, back to back.
#[derive(Clone, Debug, Serialize)]
pub struct IntervalPair {
    pub query: String,
    pub events: u64,
    pub rounds: usize,
    /// Events per CPU second, medians of the rounds.
    pub every_second: f64,
    pub end_only: f64,
    /// Events per second of wall time, medians of the rounds.
    pub every_second_wall: f64,
    pub end_only_wall: f64,
    /// Medians of the rounds' ratios, 1 s checkpoints over end-only: per
    /// CPU second and per wall second. A round's two runs share the
    /// machine's speed of the moment, so its ratio is steadier than a
    /// ratio of medians.
    pub ratio_cpu: f64,
    pub ratio_wall: f64,
    /// Checkpoints of the last 1 s run.
    pub checkpoints: usize,
}

impl IntervalPair {
    /// The throughput per core 1 s checkpoints cost, as a fraction of end-only's.
    pub fn cost(&self) -> f64 {
        1.0 - self.ratio_cpu
    }

    /// The same in events per wall second.
    pub fn cost_wall(&self) -> f64 {
        1.0 - self.ratio_wall
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckpointResults {
    pub sizes: Vec<SizePoint>,
    pub intervals: Vec<IntervalPair>,
}

/// The child's command line for `query`.
fn child(
    exe: &Path,
    query: &str,
    events: u64,
    cfg: &RunConfig,
    interval_ms: u64,
    state_dir: &Path,
    resume: bool,
) -> Command {
    let mut c = Command::new(exe);
    c.args(["nexmark-query", "--query", query, "--events"])
        .arg(events.to_string())
        .arg("--parallelism")
        .arg(cfg.parallelism.to_string())
        .arg("--state-dir")
        .arg(state_dir)
        .arg("--checkpoint-interval-ms")
        .arg(interval_ms.to_string());
    if resume {
        c.arg("--resume");
    }
    c
}

/// Runs a child to its end and parses its report.
fn finish(query: &str, c: &mut Command) -> Result<QueryRun> {
    let output = c.output().context("starting the benchmark's child")?;
    if !output.status.success() {
        bail!(
            "{query} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| format!("{query}: report is not JSON: {line:?}"))
}

/// Bytes of every file under `dir`.
pub fn du(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => du(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// The `p`-th percentile (0..=100) of sorted `v`, nearest rank.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The newest checkpoint of `query` in `state_dir`, read without opening
/// the store (the child holds it).
fn latest(rt: &tokio::runtime::Runtime, state_dir: &Path, query: &str) -> Option<(u64, bool)> {
    let dir = state_dir.join(query);
    rt.block_on(riverbed_nexmark::runner::checkpoints::latest(&dir, query))
        .ok()
        .flatten()
        .map(|c| (c.epoch.0, c.finished))
}

/// Kills `child` once `after` has passed and it has an unfinished
/// checkpoint; `None` if it ended first.
fn kill_after_checkpoint(
    rt: &tokio::runtime::Runtime,
    child: &mut Child,
    after: Duration,
    state_dir: &Path,
    query: &str,
) -> Result<Option<(f64, u64)>> {
    let clock = Stopwatch::start();
    loop {
        if child.try_wait()?.is_some() {
            return Ok(None);
        }
        if clock.elapsed() >= after {
            if let Some((epoch, false)) = latest(rt, state_dir, query) {
                child.kill()?;
                child.wait()?;
                // The kill may land after a later commit than the one seen.
                let epoch = latest(rt, state_dir, query).map_or(epoch, |l| l.0);
                return Ok(Some((clock.elapsed().as_secs_f64(), epoch)));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One query at one event count: the uninterrupted run, then a killed and
/// resumed one.
pub fn size_point(
    exe: &Path,
    cfg: &RunConfig,
    query: &str,
    events: u64,
    scratch: &Path,
    progress: &dyn Fn(&str),
) -> Result<SizePoint> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = scratch.join(format!("{query}-{events}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    progress(&format!(
        "checkpoints: {query} on {events} events, 1 s checkpoints"
    ));
    let run = finish(
        query,
        &mut child(exe, query, events, cfg, 1000, &dir, false),
    )?;
    let state_bytes = du(&dir.join(query));
    let taken: Vec<&CheckpointStat> = run.checkpoints.iter().filter(|c| !c.finished).collect();
    let mut durations: Vec<u64> = taken.iter().map(|c| c.duration_ms).collect();
    durations.sort_unstable();
    let mut commits: Vec<u64> = taken.iter().map(|c| c.commit_ms).collect();
    commits.sort_unstable();
    let n = taken.len().max(1) as u64;
    let mean = |f: fn(&CheckpointStat) -> u64| taken.iter().map(|c| f(c)).sum::<u64>() / n;
    progress(&format!(
        "checkpoints: {query}: {:.1} s, state {:.0} MB, {} checkpoints, p50 {} ms, p99 {} ms",
        run.wall,
        state_bytes as f64 / 1e6,
        taken.len(),
        percentile(&durations, 50.0),
        percentile(&durations, 99.0)
    ));
    std::fs::remove_dir_all(&dir)?;
    std::fs::create_dir_all(&dir)?;
    let mut killed = child(exe, query, events, cfg, 1000, &dir, false)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the run to kill")?;
    let after = Duration::from_secs_f64(run.wall * 0.6);
    let recovery = match kill_after_checkpoint(&rt, &mut killed, after, &dir, query)? {
        None => Recovery::NotMeasured(
            "the run ended before it could be killed after a checkpoint".into(),
        ),
        Some((killed_after_s, from_epoch)) => {
            progress(&format!(
                "checkpoints: {query}: killed after {killed_after_s:.1} s, resuming from checkpoint {from_epoch}"
            ));
            let resumed = finish(query, &mut child(exe, query, events, cfg, 1000, &dir, true))?;
            progress(&format!(
                "checkpoints: {query}: first output {} ms after the resumed process started",
                resumed
                    .first_output_ms
                    .map_or("-".into(), |m| m.to_string())
            ));
            Recovery::Measured {
                killed_after_s,
                from_epoch,
                first_output_ms: resumed.first_output_ms,
                resumed_wall_s: resumed.wall,
            }
        }
    };
    std::fs::remove_dir_all(&dir)?;
    Ok(SizePoint {
        query: query.to_string(),
        events,
        state_bytes,
        wall_s: run.wall,
        checkpoints: taken.len(),
        p50_ms: percentile(&durations, 50.0),
        p99_ms: percentile(&durations, 99.0),
        max_ms: durations.last().copied().unwrap_or(0),
        commit_p99_ms: percentile(&commits, 99.0),
        dirty_bytes_mean: mean(|c| c.dirty_bytes),
        written_bytes_mean: mean(|c| c.bytes_written),
        recovery,
        stats: run.checkpoints.clone(),
    })
}

/// Every planned query with 1 s checkpoints and end-only, in
/// `cfg.checkpoint_pair_rounds` rounds, the order alternating from round to
/// round and query to query so neither always runs second.
pub fn intervals(
    exe: &Path,
    cfg: &RunConfig,
    scratch: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<IntervalPair>> {
    let dir = scratch.join("intervals");
    let mut out = Vec::new();
    let rounds = cfg.checkpoint_pair_rounds.max(1);
    for (i, (q, events)) in plan(cfg).run.into_iter().enumerate() {
        let one = |interval_ms: u64| -> Result<QueryRun> {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            finish(q, &mut child(exe, q, events, cfg, interval_ms, &dir, false))
        };
        let mut runs: Vec<(QueryRun, QueryRun)> = Vec::new();
        for r in 0..rounds {
            runs.push(if (i + r) % 2 == 0 {
                let a = one(1000)?;
                (a, one(0)?)
            } else {
                let b = one(0)?;
                (one(1000)?, b)
            });
        }
        let wall = |run: &QueryRun| run.events as f64 / run.wall.max(1e-9);
        let of = |f: &dyn Fn(&(QueryRun, QueryRun)) -> f64| median(runs.iter().map(f).collect());
        let pair = IntervalPair {
            query: q.to_string(),
            events,
            rounds,
            every_second: of(&|(e, _)| e.throughput_per_core()),
            end_only: of(&|(_, b)| b.throughput_per_core()),
            every_second_wall: of(&|(e, _)| wall(e)),
            end_only_wall: of(&|(_, b)| wall(b)),
            ratio_cpu: of(&|(e, b)| e.throughput_per_core() / b.throughput_per_core().max(1e-9)),
            ratio_wall: of(&|(e, b)| wall(e) / wall(b).max(1e-9)),
            checkpoints: runs.last().map_or(0, |(e, _)| {
                e.checkpoints.iter().filter(|c| !c.finished).count()
            }),
        };
        progress(&format!(
            "checkpoints: {q}: {:.0} events/s per core with 1 s checkpoints, {:.0} end-only \
             (cost {:+.1}% per core, {:+.1}% in wall time; {rounds} rounds)",
            pair.every_second,
            pair.end_only,
            100.0 * pair.cost(),
            100.0 * pair.cost_wall()
        ));
        out.push(pair);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(out)
}

/// Runs the section; `done_so_far` sees the results after each part (the
/// report is rewritten then, so a run stopped midway keeps what it measured).
pub fn run_all(
    exe: &Path,
    cfg: &RunConfig,
    scratch: &Path,
    progress: &dyn Fn(&str),
    done_so_far: &dyn Fn(&CheckpointResults) -> Result<()>,
) -> Result<CheckpointResults> {
    let mut r = CheckpointResults::default();
    // Each query's smallest size, then the throughput pairs, then the
    // larger sizes, smallest first: the long runs come last, so a run
    // stopped early has the rest.
    let mut first = Vec::new();
    let mut later = Vec::new();
    for (query, sizes) in &cfg.checkpoint_events {
        let mut sizes = sizes.clone();
        sizes.sort_unstable();
        for (i, events) in sizes.into_iter().enumerate() {
            if i == 0 { &mut first } else { &mut later }.push((query.as_str(), events));
        }
    }
    later.sort_by_key(|(_, events)| *events);
    for (query, events) in first {
        r.sizes
            .push(size_point(exe, cfg, query, events, scratch, progress)?);
        done_so_far(&r)?;
    }
    if cfg.checkpoint_pair_rounds > 0 {
        r.intervals = intervals(exe, cfg, scratch, progress)?;
        done_so_far(&r)?;
    }
    for (query, events) in later {
        r.sizes
            .push(size_point(exe, cfg, query, events, scratch, progress)?);
        done_so_far(&r)?;
    }
    r.sizes
        .sort_by(|a, b| (&a.query, a.events).cmp(&(&b.query, b.events)));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
