//! Our store's cost as its state grows: write, point-read and scan
//! throughput, bytes on object storage, and the time of a checkpoint
//! (commit of one epoch) and of a recovery (reopen + first read) at each
//! state size.
//!
//! Each point is a map of named measures, so checkpoint, recovery and
//! rescale times of later features join the same table and chart by adding
//! a name, not a field.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{ensure, Result};
use serde::Serialize;

use crate::config::RunConfig;
use crate::dataset::{Dataset, SplitMix64};
use crate::engines::riverbed::Riverbed;
use crate::engines::{dir_bytes, Engine};
use crate::timing::timed;

/// Measure names (and units) a point may hold.
pub const WRITE_KEYS_PER_SEC: &str = "write_keys_per_sec";
pub const GET_PER_SEC: &str = "point_get_per_sec";
pub const SCAN_ENTRIES_PER_SEC: &str = "scan_entries_per_sec";
pub const STORED_BYTES: &str = "object_store_bytes";
pub const WRITTEN_BYTES: &str = "bytes_written_to_object_store";
pub const CHECKPOINT_SECS: &str = "checkpoint_secs";
pub const RECOVERY_SECS: &str = "recovery_secs";

/// One state size.
#[derive(Clone, Debug, Serialize)]
pub struct ScalePoint {
    /// Logical bytes of key + value.
    pub state_bytes: u64,
    pub keys: u64,
    pub measures: BTreeMap<&'static str, f64>,
}

/// Measures one state size on a fresh store under `root`.
pub async fn measure(
    cfg: &RunConfig,
    state_bytes: u64,
    root: &Path,
    progress: &dyn Fn(&str),
) -> Result<ScalePoint> {
    let keys = (state_bytes / Dataset::new(1).entry_bytes()).max(1000);
    let d = Dataset::new(keys);
    let dir = root.join(format!("scale-{state_bytes}"));
    std::fs::create_dir_all(&dir)?;
    let mut m = BTreeMap::new();
    let mut e = Riverbed::open(&dir, &cfg.budget).await?;

    // Writes, batch by batch so memory holds one batch, not the state.
    let (r, t) = timed(async {
        let mut from = 0;
        while from < keys {
            let to = (from + cfg.batch as u64).min(keys);
            let b = d.batches((from..to).map(|j| d.scattered(j)), 0, cfg.batch);
            e.put_batch(&b[0]).await?;
            from = to;
        }
        e.settle().await
    })
    .await;
    r?;
    m.insert(WRITE_KEYS_PER_SEC, keys as f64 / t.as_secs_f64());
    let metrics = e.store().metrics();
    m.insert(
        WRITTEN_BYTES,
        (metrics.flush_bytes + metrics.compaction_write_bytes) as f64,
    );
    m.insert(STORED_BYTES, dir_bytes(&dir) as f64);

    let mut rng = SplitMix64::new(state_bytes);
    let reads = cfg.point_reads.min(keys * 4);
    let picks: Vec<_> = (0..reads).map(|_| d.key(rng.below(keys))).collect();
    let (r, t) = timed(async {
        let mut found = 0;
        for k in &picks {
            found += e.get(k).await?.is_some() as u64;
        }
        anyhow::Ok(found)
    })
    .await;
    ensure!(r? == reads, "scale: reads missed keys");
    m.insert(GET_PER_SEC, reads as f64 / t.as_secs_f64());

    let starts: Vec<_> = (0..cfg.scans).map(|_| d.key(rng.below(keys))).collect();
    let (r, t) = timed(async {
        let mut n = 0;
        for s in &starts {
            n += e.scan(s, cfg.scan_len).await? as u64;
        }
        anyhow::Ok(n)
    })
    .await;
    m.insert(SCAN_ENTRIES_PER_SEC, r? as f64 / t.as_secs_f64());

    // Checkpoint: one epoch of overwrites, then its commit.
    let tail = (keys / 10).clamp(1, 100_000);
    for b in d.batches((0..tail).map(|j| d.scattered(j)), 1, cfg.batch) {
        e.put_batch(&b).await?;
    }
    let (r, t) = timed(e.checkpoint(&dir)).await;
    r?;
    m.insert(CHECKPOINT_SECS, t.as_secs_f64());
    e.close().await?;

    // Recovery: reopen the committed state and read one key.
    let (r, t) = timed(async {
        let mut e = Riverbed::open(&dir, &cfg.budget).await?;
        let v = e.get(&d.key(keys / 2)).await?;
        e.close().await?;
        anyhow::Ok(v)
    })
    .await;
    ensure!(r?.is_some(), "scale: key missing after reopen");
    m.insert(RECOVERY_SECS, t.as_secs_f64());
    std::fs::remove_dir_all(&dir)?;
    progress(&format!(
        "scale {:.1} MB: write {:.0} keys/s, get {:.0}/s, scan {:.0} entries/s, {:.1} MB stored",
        state_bytes as f64 / 1e6,
        m[WRITE_KEYS_PER_SEC],
        m[GET_PER_SEC],
        m[SCAN_ENTRIES_PER_SEC],
        m[STORED_BYTES] / 1e6
    ));
    Ok(ScalePoint {
        state_bytes,
        keys,
        measures: m,
    })
}
