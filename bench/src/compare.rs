//! Our store beside RocksDB and SlateDB: the same data, the same access
//! orders, in one process, interleaved (A B C A B C ...), each run on a fresh
//! directory. The report shows the median of the rounds.
//!
//! One run of an engine:
//! 1. `sequential_fill`: every key in key order, batched, then settle.
//! 2. On a second fresh store, `random_fill`: every key in a scattered order,
//!    batched, then settle. The rest runs on this state.
//! 3. `point_read_hot`: reads of a small hot set, warmed first (cached).
//! 4. `point_read_uniform`: reads of uniformly random keys.
//! 5. `range_scan`: scans of `scan_len` entries from random keys (warmed).
//! 6. `overwrite`: two passes of scattered overwrites of every key, then
//!    settle (so compaction has to rewrite and drop old versions).
//! 7. `delete_range`: the first quarter of the key groups, then settle.
//! 8. `checkpoint`: one epoch of overwrites left unsettled, then the
//!    engine's checkpoint.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Result};
use bytes::Bytes;
use serde::Serialize;

use crate::config::RunConfig;
use crate::dataset::{Dataset, SplitMix64, KEY_GROUPS};
use crate::engines::{dir_bytes, Engine};
use crate::timing::{median, timed};

/// The workloads, in the order they run and appear in the report.
pub const WORKLOADS: &[Workload] = &[
    Workload::SequentialFill,
    Workload::RandomFill,
    Workload::PointReadHot,
    Workload::PointReadUniform,
    Workload::RangeScan,
    Workload::Overwrite,
    Workload::DeleteRange,
    Workload::Checkpoint,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    SequentialFill,
    RandomFill,
    PointReadHot,
    PointReadUniform,
    RangeScan,
    Overwrite,
    DeleteRange,
    Checkpoint,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::SequentialFill => "sequential_fill",
            Workload::RandomFill => "random_fill",
            Workload::PointReadHot => "point_read_hot",
            Workload::PointReadUniform => "point_read_uniform",
            Workload::RangeScan => "range_scan",
            Workload::Overwrite => "overwrite",
            Workload::DeleteRange => "delete_range",
            Workload::Checkpoint => "checkpoint",
        }
    }

    /// What one "op" of the workload's rate is.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::SequentialFill | Workload::RandomFill | Workload::Overwrite => "keys/s",
            Workload::PointReadHot | Workload::PointReadUniform => "gets/s",
            Workload::RangeScan => "entries/s",
            Workload::DeleteRange => "keys dropped/s",
            Workload::Checkpoint => "checkpoints/s",
        }
    }
}

/// One workload of one engine in one round.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub engine: &'static str,
    pub round: usize,
    pub workload: Workload,
    pub ops: u64,
    pub secs: f64,
    /// Bytes the engine's directory holds after the workload, where measured.
    pub disk_bytes: Option<u64>,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }
}

/// The median over rounds of one engine's workload.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub engine: &'static str,
    pub workload: Workload,
    pub ops_per_sec: f64,
    pub secs: f64,
    pub disk_bytes: Option<u64>,
    /// Rounds measured.
    pub rounds: usize,
    /// How far the rounds' rates lie apart: `(max - min) / median`; `None`
    /// with a single round.
    pub spread: Option<f64>,
}

/// Above this spread over rounds a cell's ratio is not to be trusted, and
/// the report says so.
pub const WIDE_SPREAD: f64 = 0.2;

impl Summary {
    /// Whether the rounds disagree by more than [`WIDE_SPREAD`].
    pub fn is_wide(&self) -> bool {
        self.spread.is_some_and(|s| s > WIDE_SPREAD)
    }
}

pub fn summarize(samples: &[Sample], engines: &[&'static str]) -> Vec<Summary> {
    let mut out = Vec::new();
    for &engine in engines {
        for &w in WORKLOADS {
            let s: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.engine == engine && s.workload == w)
                .collect();
            let rates: Vec<f64> = s.iter().map(|s| s.rate()).collect();
            let rate = median(&rates);
            let spread = rate.filter(|m| rates.len() > 1 && *m > 0.0).map(|m| {
                let max = rates.iter().copied().fold(f64::MIN, f64::max);
                let min = rates.iter().copied().fold(f64::MAX, f64::min);
                (max - min) / m
            });
            let secs = median(&s.iter().map(|s| s.secs).collect::<Vec<_>>());
            let disk = median(
                &s.iter()
                    .filter_map(|s| s.disk_bytes.map(|b| b as f64))
                    .collect::<Vec<_>>(),
            );
            if let (Some(ops_per_sec), Some(secs)) = (rate, secs) {
                out.push(Summary {
                    engine,
                    workload: w,
                    ops_per_sec,
                    secs,
                    disk_bytes: disk.map(|d| d as u64),
                    rounds: rates.len(),
                    spread,
                });
            }
        }
    }
    out
}

/// The median rate of `engine` on `w`.
pub fn rate_of(summaries: &[Summary], engine: &str, w: Workload) -> Option<f64> {
    summaries
        .iter()
        .find(|s| s.engine == engine && s.workload == w)
        .map(|s| s.ops_per_sec)
}

/// Writes `batches`, then settles; returns the time of both.
async fn fill<E: Engine>(e: &mut E, batches: &[Vec<(Bytes, Bytes)>]) -> Result<Duration> {
    let (r, t) = timed(async {
        for b in batches {
            e.put_batch(b).await?;
        }
        e.settle().await
    })
    .await;
    r.map(|()| t)
}

/// Point-reads every key of `keys`; returns how many were found and the time.
async fn read_all<E: Engine>(e: &mut E, keys: &[Bytes]) -> Result<(u64, Duration)> {
    let (r, t) = timed(async {
        let mut found = 0u64;
        for k in keys {
            found += e.get(k).await?.is_some() as u64;
        }
        anyhow::Ok(found)
    })
    .await;
    Ok((r?, t))
}

/// Runs every workload on engine `E` in fresh directories under `root`.
pub async fn run_engine<E: Engine>(
    name: &'static str,
    round: usize,
    cfg: &RunConfig,
    root: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<Sample>> {
    let d = Dataset::new(cfg.store_keys);
    let mut out = Vec::new();
    let mut push = |w: Workload, ops: u64, secs: f64, disk: Option<u64>| {
        progress(&format!(
            "{name} round {round}: {} {:.0} {} ({secs:.2} s)",
            w.name(),
            ops as f64 / secs.max(1e-9),
            w.unit()
        ));
        out.push(Sample {
            engine: name,
            round,
            workload: w,
            ops,
            secs,
            disk_bytes: disk,
        });
    };

    // 1. Sequential fill on its own store.
    let dir = root.join(format!("{name}-{round}-seq"));
    std::fs::create_dir_all(&dir)?;
    let batches = d.batches(0..d.n, 0, cfg.batch);
    let mut e = E::open(&dir, &cfg.budget).await?;
    let t = fill(&mut e, &batches).await?;
    push(
        Workload::SequentialFill,
        d.n,
        t.as_secs_f64(),
        Some(dir_bytes(&dir)),
    );
    e.close().await?;
    drop(batches);
    std::fs::remove_dir_all(&dir)?;

    // 2. Random fill; the state the rest runs on.
    let dir = root.join(format!("{name}-{round}-rand"));
    std::fs::create_dir_all(&dir)?;
    let batches = d.batches((0..d.n).map(|j| d.scattered(j)), 0, cfg.batch);
    let mut e = E::open(&dir, &cfg.budget).await?;
    let t = fill(&mut e, &batches).await?;
    push(
        Workload::RandomFill,
        d.n,
        t.as_secs_f64(),
        Some(dir_bytes(&dir)),
    );
    drop(batches);

    // 3. Hot point reads, warmed first.
    let mut rng = SplitMix64::new(42);
    let hot: Vec<_> = (0..cfg.hot_keys.min(d.n))
        .map(|j| d.key(d.scattered(j * 7 + 1)))
        .collect();
    for k in &hot {
        ensure!(e.get(k).await?.is_some(), "{name}: hot key missing");
    }
    let picks: Vec<_> = (0..cfg.point_reads)
        .map(|_| hot[rng.below(hot.len() as u64) as usize].clone())
        .collect();
    let (found, t) = read_all(&mut e, &picks).await?;
    ensure!(found == cfg.point_reads, "{name}: hot reads missed keys");
    push(
        Workload::PointReadHot,
        cfg.point_reads,
        t.as_secs_f64(),
        None,
    );

    // 4. Uniform point reads.
    let picks: Vec<_> = (0..cfg.point_reads)
        .map(|_| d.key(rng.below(d.n)))
        .collect();
    let (found, t) = read_all(&mut e, &picks).await?;
    ensure!(
        found == cfg.point_reads,
        "{name}: uniform reads missed keys"
    );
    push(
        Workload::PointReadUniform,
        cfg.point_reads,
        t.as_secs_f64(),
        None,
    );

    // 5. Range scans from random keys, after one warming pass.
    let starts: Vec<_> = (0..cfg.scans).map(|_| d.key(rng.below(d.n))).collect();
    for s in &starts {
        e.scan(s, cfg.scan_len).await?;
    }
    let (r, t) = timed(async {
        let mut entries = 0u64;
        for s in &starts {
            entries += e.scan(s, cfg.scan_len).await? as u64;
        }
        anyhow::Ok(entries)
    })
    .await;
    let entries = r?;
    push(Workload::RangeScan, entries, t.as_secs_f64(), None);

    // 6. Overwrites: two scattered passes over every key, then settle.
    let mut overwritten = 0;
    let (r, t) = timed(async {
        for pass in 1..=2u64 {
            // Pass 1 visits the scattered order forwards, pass 2 backwards.
            let order = (0..d.n).map(|j| d.scattered(if pass == 1 { j } else { d.n - 1 - j }));
            for b in d.batches(order, pass, cfg.batch) {
                e.put_batch(&b).await?;
                overwritten += b.len() as u64;
            }
        }
        e.settle().await
    })
    .await;
    r?;
    push(
        Workload::Overwrite,
        overwritten,
        t.as_secs_f64(),
        Some(dir_bytes(&dir)),
    );

    // 7. Delete-range of the first quarter of the key groups.
    let end_index = d.first_index_of_group(KEY_GROUPS / 4);
    let (start, end) = (d.key(0), d.key(end_index));
    let (r, t) = timed(async {
        e.delete_range(&start, &end).await?;
        e.settle().await
    })
    .await;
    r?;
    ensure!(
        e.get(&d.key(end_index / 2)).await?.is_none(),
        "{name}: a deleted key is still visible"
    );
    ensure!(
        end_index >= d.n || e.get(&d.key(end_index)).await?.is_some(),
        "{name}: delete-range removed a key past its end"
    );
    push(
        Workload::DeleteRange,
        end_index,
        t.as_secs_f64(),
        Some(dir_bytes(&dir)),
    );

    // 8. Checkpoint of state with one epoch of unsettled overwrites.
    let tail =
        (crate::engines::riverbed::BATCHES_PER_EPOCH as usize * cfg.batch).min(d.n as usize) as u64;
    for b in d.batches((0..tail).map(|j| d.scattered(j)), 3, cfg.batch) {
        e.put_batch(&b).await?;
    }
    let cp = root.join(format!("{name}-{round}-checkpoint"));
    let (r, t) = timed(e.checkpoint(&cp)).await;
    r?;
    push(Workload::Checkpoint, 1, t.as_secs_f64(), None);
    e.close().await?;
    std::fs::remove_dir_all(&dir)?;
    if cp.exists() {
        std::fs::remove_dir_all(&cp)?;
    }
    Ok(out)
}

/// Runs the comparison: `warmup_rounds` not counted, then `rounds` ×
/// every compiled engine, interleaved. The warm-up pays what only a fresh
/// process pays (page faults of new heap, the first file opens), which
/// otherwise makes round 0 an outlier.
pub fn run_all(
    rt: &tokio::runtime::Runtime,
    cfg: &RunConfig,
    root: &Path,
    progress: &dyn Fn(&str),
) -> Result<Vec<Sample>> {
    let mut all = Vec::new();
    for round in 0..cfg.warmup_rounds + cfg.rounds {
        all.extend(
            rt.block_on(run_engine::<crate::engines::riverbed::Riverbed>(
                "Riverbed", round, cfg, root, progress,
            ))?,
        );
        #[cfg(feature = "rocksdb")]
        all.extend(rt.block_on(run_engine::<crate::engines::rocks::Rocks>(
            "RocksDB", round, cfg, root, progress,
        ))?);
        #[cfg(feature = "slatedb")]
        all.extend(rt.block_on(run_engine::<crate::engines::slate::Slate>(
            "SlateDB", round, cfg, root, progress,
        ))?);
    }
    // Warm-up samples go; counted rounds are numbered from 0.
    all.retain(|s| s.round >= cfg.warmup_rounds);
    for s in &mut all {
        s.round -= cfg.warmup_rounds;
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_give_the_median_and_the_spread_of_their_rounds() {
        let sample = |round, secs| Sample {
            engine: "E",
            round,
            workload: Workload::RangeScan,
            ops: 100,
            secs,
            disk_bytes: None,
        };
        // Rates 100, 50 and 200 per second: median 100, spread 150%.
        let s = summarize(&[sample(0, 1.0), sample(1, 2.0), sample(2, 0.5)], &["E"]);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].ops_per_sec, 100.0);
        assert_eq!(s[0].rounds, 3);
        assert!((s[0].spread.unwrap() - 1.5).abs() < 1e-9);
        assert!(s[0].is_wide());
        let one = summarize(&[sample(0, 1.0)], &["E"]);
        assert_eq!(one[0].spread, None);
        assert!(!one[0].is_wide());
    }
}
