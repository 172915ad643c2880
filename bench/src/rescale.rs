//! Rescaling a running query, measured on whole processes: a
//! `riverbed-nexmark run --coordinator-listen` child runs the query at
//! `from` subtasks until its state directory holds `at_mib` MiB, then
//! `riverbed-nexmark rescale` takes it to `to` subtasks and the child runs
//! on to its end. Figures: the state's size at the rescale, the stop (the
//! request to its checkpoint's commit), the restart (that commit to the job
//! running at the new parallelism), the time to the first checkpoint at the
//! new parallelism, and what the store moved through object storage
//! between the stop and the restart.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::checkpoints::du;
use crate::timing::Stopwatch;

/// What to measure.
pub struct RescaleArgs {
    pub nexmark_bin: PathBuf,
    pub query: String,
    pub events: u64,
    pub from: usize,
    pub to: usize,
    /// Rescale once the state directory holds this much.
    pub at_mib: u64,
    pub scratch: PathBuf,
}

/// What `riverbed-nexmark rescale --json` prints.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rescaled {
    pub from: u64,
    pub to: u64,
    pub checkpoint: u64,
    pub stop_ms: u64,
    pub restart_ms: u64,
    pub objects_copied: u64,
    pub bytes_written: u64,
    pub bytes_read: u64,
}

#[derive(Debug, Serialize)]
pub struct RescaleReport {
    pub query: String,
    pub events: u64,
    pub state_mib_at_rescale: f64,
    /// The rescale call as the client timed it.
    pub call_ms: f64,
    /// From the request to the first checkpoint committed at the new
    /// parallelism.
    pub first_checkpoint_ms: f64,
    pub rescaled: Rescaled,
    /// The whole run, rescale included.
    pub run_s: f64,
}

/// `riverbed-nexmark status --json` of the job at `addr`.
fn status(bin: &Path, addr: &str) -> Result<serde_json::Value> {
    let o = Command::new(bin)
        .args(["status", "--coordinator", addr, "--json"])
        .output()?;
    if !o.status.success() {
        bail!("status: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(serde_json::from_slice(&o.stdout)?)
}

pub fn run(a: &RescaleArgs) -> Result<RescaleReport> {
    let state_dir = a.scratch.join("state");
    let _ = std::fs::remove_dir_all(&state_dir);
    std::fs::create_dir_all(&a.scratch)?;
    let log = a.scratch.join("run.log");
    let clock = Stopwatch::start();
    let mut child = Command::new(&a.nexmark_bin)
        .args(["run", "--query", &a.query, "--events"])
        .arg(a.events.to_string())
        .arg("--parallelism")
        .arg(a.from.to_string())
        .args([
            "--quiet",
            "--json",
            "--fresh",
            "--checkpoint-interval",
            "1s",
        ])
        .arg("--state-dir")
        .arg(&state_dir)
        .args(["--coordinator-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting riverbed-nexmark")?;
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    out.read_line(&mut line)?;
    let Some(addr) = line.trim().strip_prefix("coordinator listening on ") else {
        bail!("riverbed-nexmark printed {line:?}");
    };
    let addr = addr.to_string();
    let dir = state_dir.join(&a.query);
    let want = a.at_mib << 20;
    loop {
        if let Some(s) = child.try_wait()? {
            bail!(
                "{} ended ({s}) before its state reached {} MiB: give more --events",
                a.query,
                a.at_mib
            );
        }
        if du(&dir) >= want {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let size = du(&dir);
    let call = Stopwatch::start();
    let o = Command::new(&a.nexmark_bin)
        .args(["rescale", "--coordinator", &addr, "--json", "--parallelism"])
        .arg(a.to.to_string())
        .output()?;
    let call_ms = call.elapsed().as_secs_f64() * 1e3;
    if !o.status.success() {
        bail!("rescale: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    let rescaled: Rescaled = serde_json::from_slice(&o.stdout).context("rescale --json")?;
    let first_checkpoint_ms = loop {
        let s = match status(&a.nexmark_bin, &addr) {
            Ok(s) => s,
            Err(e) if child.try_wait()?.is_some() => bail!(
                "{} ended right after the rescale ({e}): give more --events",
                a.query
            ),
            Err(e) => return Err(e),
        };
        if s["committed_epoch"].as_u64().unwrap_or(0) > rescaled.checkpoint {
            break call.elapsed().as_secs_f64() * 1e3;
        }
        if call.elapsed() > Duration::from_secs(600) {
            bail!("no checkpoint at the new parallelism after 600 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    let exit = child.wait()?;
    if !exit.success() {
        let err = std::fs::read_to_string(&log).unwrap_or_default();
        bail!("{} failed ({exit}): {}", a.query, err.trim());
    }
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(RescaleReport {
        query: a.query.clone(),
        events: a.events,
        state_mib_at_rescale: size as f64 / (1 << 20) as f64,
        call_ms,
        first_checkpoint_ms,
        rescaled,
        run_s: clock.elapsed().as_secs_f64(),
    })
}
