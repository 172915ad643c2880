//! One report run: the selected sections, in order, gathered into
//! [`Results`] (what `results.json` holds and the report is written from).

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::compare::{self, Sample, Summary};
use crate::config::{RunConfig, Section};
use crate::engines::{self, EngineInfo};
use crate::goals::{self, Goal};
use crate::nexmark::{self, QueryRun};
use crate::scale::{self, ScalePoint};

/// The machine a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub os: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_bytes = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// Everything one run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Results {
    pub date: String,
    pub command: String,
    pub commit: Option<String>,
    pub config: RunConfig,
    pub machine: Machine,
    pub engines: Vec<EngineInfo>,
    pub engines_missing: Vec<(&'static str, &'static str)>,
    pub store_samples: Vec<Sample>,
    pub store_summary: Vec<Summary>,
    pub goals: Vec<Goal>,
    pub nexmark: Vec<QueryRun>,
    pub nexmark_skipped: Vec<(&'static str, String)>,
    pub scale: Vec<ScalePoint>,
    pub checkpoints: crate::checkpoints::CheckpointResults,
    /// Notes given on the command line (`--note`).
    pub notes: Vec<String>,
}

/// Runs every section `cfg` selects, with scratch data under `scratch` and
/// Nexmark queries as children of `exe`.
pub fn run(
    cfg: &RunConfig,
    date: String,
    command: String,
    exe: &Path,
    scratch: &Path,
    progress: &dyn Fn(&str),
    partial: &dyn Fn(&Results) -> Result<()>,
) -> Result<Results> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let engines = engines::compiled(&cfg.budget);
    let mut r = Results {
        date,
        command,
        commit: git_commit(),
        config: cfg.clone(),
        machine: Machine::read(),
        engines_missing: engines::missing(),
        engines,
        store_samples: Vec::new(),
        store_summary: Vec::new(),
        goals: Vec::new(),
        nexmark: Vec::new(),
        nexmark_skipped: Vec::new(),
        scale: Vec::new(),
        checkpoints: Default::default(),
        notes: Vec::new(),
    };
    if cfg.wants(Section::Store) {
        progress(&format!(
            "store comparison: {} keys, {} rounds, engines: {}",
            cfg.store_keys,
            cfg.rounds,
            r.engines
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let dir = scratch.join("store");
        std::fs::create_dir_all(&dir)?;
        r.store_samples = compare::run_all(&rt, cfg, &dir, progress)?;
        let names: Vec<&'static str> = r.engines.iter().map(|e| e.name).collect();
        r.store_summary = compare::summarize(&r.store_samples, &names);
        r.goals = goals::judge(&r.store_summary);
    }
    if cfg.wants(Section::Nexmark) {
        let dir = scratch.join("nexmark");
        std::fs::create_dir_all(&dir)?;
        r.nexmark = nexmark::run_all(exe, cfg, &dir, progress)?;
        r.nexmark_skipped = nexmark::plan(cfg).skipped;
    }
    if cfg.wants(Section::Scale) {
        let dir = scratch.join("scale");
        std::fs::create_dir_all(&dir)?;
        for &bytes in &cfg.scale_bytes {
            r.scale
                .push(rt.block_on(scale::measure(cfg, bytes, &dir, progress))?);
        }
    }
    if cfg.wants(Section::Checkpoints) {
        let dir = scratch.join("checkpoints");
        std::fs::create_dir_all(&dir)?;
        let so_far = |c: &crate::checkpoints::CheckpointResults| {
            let mut now = r.clone();
            now.checkpoints = c.clone();
            partial(&now)
        };
        let c = crate::checkpoints::run_all(exe, cfg, &dir, progress, &so_far)?;
        r.checkpoints = c;
    }
    Ok(r)
}

/// The checked-out commit, when run inside a git work tree.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
