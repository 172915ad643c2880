//! Nexmark: every query in a child process of this binary
//! (`riverbed-bench nexmark-query`), so the peak RSS a query reports is its
//! own and not the maximum of everything run before it.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use riverbed_nexmark::queries::{self, QUERIES};
use riverbed_nexmark::runner::{self, EventSource, RunOptions};
use riverbed_nexmark::GeneratorConfig;
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;

/// What the runner reports for one query (its JSON report's fields).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct QueryRun {
    pub query: String,
    pub events: u64,
    /// Changelog rows the sink received.
    pub changelog_rows: u64,
    /// Rows of the final table, for updating queries.
    pub final_rows: Option<u64>,
    /// Seconds.
    pub wall: f64,
    /// CPU seconds of the child process during the run.
    pub cpu: f64,
    pub state_reads: u64,
    pub state_writes: u64,
    pub store_bytes_written: u64,
    pub store_bytes_read: u64,
    pub peak_rss_bytes: u64,
    /// Milliseconds from the child's start to its first output row.
    #[serde(default)]
    pub first_output_ms: Option<u64>,
    /// Every checkpoint the run completed.
    #[serde(default)]
    pub checkpoints: Vec<crate::checkpoints::CheckpointStat>,
}

impl QueryRun {
    pub fn cores(&self) -> f64 {
        self.cpu / self.wall.max(1e-9)
    }

    /// Events per CPU second: the suite's throughput per core.
    pub fn throughput_per_core(&self) -> f64 {
        self.events as f64 / self.cpu.max(1e-9)
    }
}

/// What the child runs.
pub struct ChildArgs<'a> {
    pub query: &'a str,
    pub events: u64,
    pub parallelism: usize,
    pub state_dir: &'a Path,
    /// Milliseconds between checkpoints; 0: only at the end.
    pub checkpoint_interval_ms: u64,
    /// Continue from the last checkpoint in `state_dir`.
    pub resume: bool,
}

/// The child's side: runs one query and prints its report, with every
/// checkpoint it took, as one JSON line.
pub fn run_child(a: ChildArgs<'_>) -> Result<()> {
    let query = a.query;
    let info = queries::info(query).with_context(|| format!("unknown query {query:?}"))?;
    let source = EventSource::generator(GeneratorConfig::default(), a.events)?;
    let mut options = RunOptions::new(a.state_dir);
    options.parallelism = a.parallelism;
    options.checkpoint_interval = (a.checkpoint_interval_ms > 0)
        .then(|| std::time::Duration::from_millis(a.checkpoint_interval_ms));
    options.resume = a.resume;
    let parallelism = a.parallelism;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(parallelism.max(2))
        .enable_all()
        .build()?;
    let run = rt.block_on(runner::run_query(
        info,
        &source,
        &options,
        Arc::new(AtomicU64::new(0)),
    ))?;
    // The runner's peak RSS is this process's own (VmHWM).
    let mut report = serde_json::to_value(&run.report)?;
    let checkpoints: Vec<crate::checkpoints::CheckpointStat> = run
        .checkpoints
        .iter()
        .map(|c| crate::checkpoints::CheckpointStat {
            epoch: c.epoch.0,
            duration_ms: c.stats.duration_ms,
            commit_ms: c.stats.commit_ms,
            dirty_bytes: c.stats.dirty_bytes,
            bytes_written: c.stats.bytes_written,
            files_added: c.stats.files_added,
            finished: c.finished,
        })
        .collect();
    report["checkpoints"] = serde_json::to_value(checkpoints)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// The queries a run covers and those it skips.
pub struct Plan {
    /// Each query with the events it gets.
    pub run: Vec<(&'static str, u64)>,
    /// Each skipped query with why.
    pub skipped: Vec<(&'static str, String)>,
}

pub fn plan(cfg: &RunConfig) -> Plan {
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for q in QUERIES {
        if q.name == "q23" {
            match cfg.q23_events {
                Some(n) => run.push((q.name, n.min(cfg.nexmark_events))),
                None => skipped.push((
                    q.name,
                    "skipped in this mode: its output is bids × auctions".to_string(),
                )),
            }
        } else {
            run.push((q.name, cfg.nexmark_events));
        }
    }
    Plan { run, skipped }
}

/// The parent's side: runs every planned query in its own child process.
pub fn run_all(
    exe: &Path,
    cfg: &RunConfig,
    state_dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<QueryRun>> {
    let planned = plan(cfg).run;
    let mut out = Vec::new();
    for (i, (q, events)) in planned.iter().enumerate() {
        progress(&format!(
            "nexmark {}/{}: {q} on {events} events",
            i + 1,
            planned.len()
        ));
        let output = Command::new(exe)
            .args(["nexmark-query", "--query", q, "--events"])
            .arg(events.to_string())
            .arg("--parallelism")
            .arg(cfg.parallelism.to_string())
            .arg("--state-dir")
            .arg(state_dir)
            .output()
            .with_context(|| format!("starting {}", exe.display()))?;
        if !output.status.success() {
            bail!(
                "nexmark {q} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let line = text.lines().last().unwrap_or_default();
        let run: QueryRun = serde_json::from_str(line)
            .with_context(|| format!("nexmark {q}: report is not JSON: {line:?}"))?;
        progress(&format!(
            "nexmark {q}: {:.2} s, {:.0} events/s per core, peak RSS {:.0} MB",
            run.wall,
            run.throughput_per_core(),
            run.peak_rss_bytes as f64 / 1e6
        ));
        out.push(run);
        let _ = std::fs::remove_dir_all(state_dir.join(q));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {}
