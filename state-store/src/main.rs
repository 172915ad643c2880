//! `riverbed-state-store`: the state store's command-line entry point.
//!
//! Until the Nexmark runner and the gRPC service exist, its job is `demo`:
//! a real workload on the engine (batched writes across epochs with commits,
//! background flush and compaction, point reads, scans, a key-group range
//! delete, a reopen) that reports what it measured.
#![allow(clippy::disallowed_methods)] // the demo measures wall time

use std::time::Instant;

use anyhow::{bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use clap::{Parser, Subcommand};
use riverbed_state_store::keys::{key_group_end, key_group_start};
use riverbed_state_store::{full_key, KeyGroup, Options, Store, TableId, WriteBatch};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "riverbed-state-store",
    version,
    about = "Riverbed's state store engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a workload on the engine and reports throughput and store shape.
    Demo(DemoArgs),
    /// Writes and commits epochs until killed, printing each committed epoch.
    /// Used by the crash test: every epoch overwrites all `--keys` keys with
    /// its own number, so any recovered state must hold one epoch's number
    /// everywhere.
    #[command(hide = true)]
    CrashWriter(CrashWriterArgs),
}

#[derive(clap::Args)]
struct CrashWriterArgs {
    /// Object store URL (a directory, file:///path or s3://bucket/prefix).
    #[arg(long)]
    url: String,
    /// Keys overwritten by every epoch.
    #[arg(long, default_value_t = 20_000)]
    keys: u64,
    /// S3 endpoint, when the URL is s3://.
    #[arg(long)]
    s3_endpoint: Option<String>,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Object store: a directory, file:///path or s3://bucket/prefix.
    /// Defaults to a fresh temporary directory, removed at the end.
    #[arg(long)]
    url: Option<String>,
    /// Settings file (TOML, fields of the engine's Options); --url overrides its url.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Number of distinct keys written.
    #[arg(long, default_value_t = 2_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Puts per write batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Batches per epoch; each epoch ends with a commit.
    #[arg(long, default_value_t = 200)]
    batches_per_epoch: u64,
    /// Point reads after loading.
    #[arg(long, default_value_t = 500_000)]
    reads: u64,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Demo(args) => rt.block_on(demo(args)),
        Command::CrashWriter(args) => rt.block_on(crash_writer(args)),
    }
}

/// Key `i` as a 16-byte user key spread over 256 key groups of table 1.
fn key(i: u64) -> Bytes {
    let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    full_key(
        TableId(1),
        KeyGroup((h >> 56) as u16),
        &h.to_be_bytes().repeat(2),
    )
}

async fn demo(args: DemoArgs) -> Result<()> {
    if args.batch == 0 || args.batches_per_epoch == 0 {
        bail!("--batch and --batches-per-epoch must be at least 1");
    }
    let mut opts = match &args.config {
        Some(p) => Options::from_toml(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => Options::default(),
    };
    let tmp = tempfile::tempdir()?;
    opts.url = match args.url.clone() {
        Some(u) => u,
        None => tmp
            .path()
            .to_str()
            .context("temp dir path is not UTF-8")?
            .to_string(),
    };
    println!(
        "riverbed state store demo: {} keys × {} B values into {}",
        args.keys, args.value_bytes, opts.url
    );
    let store = std::sync::Arc::new(Store::open(opts.clone()).await?);
    let value = {
        let mut v = BytesMut::with_capacity(args.value_bytes);
        v.put_bytes(b'v', args.value_bytes);
        v.freeze()
    };

    let start = Instant::now();
    let mut epoch = store.committed_epoch().next();
    let mut written = 0u64;
    let mut batches = 0u64;
    let mut pending_commit: Option<tokio::task::JoinHandle<riverbed_state_store::Result<()>>> =
        None;
    let report_every = (args.keys / 10).max(1);
    while written < args.keys {
        let n = (args.keys - written).min(args.batch as u64);
        let mut batch = WriteBatch::with_capacity(n as usize);
        for i in written..written + n {
            batch.put(key(i), value.clone());
        }
        store.write(epoch, &batch).await?;
        written += n;
        batches += 1;
        if batches.is_multiple_of(args.batches_per_epoch) {
            // Commits run beside the writes, as a checkpoint does: the writer
            // moves on to the next epoch while the last one is flushed.
            if let Some(previous) = pending_commit.take() {
                previous.await??;
            }
            let (s, e) = (store.clone(), epoch);
            pending_commit = Some(tokio::spawn(async move { s.commit(e).await }));
            epoch = epoch.next();
        }
        if written % report_every < n {
            eprintln!(
                "  loaded {written}/{} keys ({:.0}/s)",
                args.keys,
                written as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(previous) = pending_commit.take() {
        previous.await??;
    }
    store.commit(epoch).await?;
    let load = start.elapsed();
    store.compact_until_idle().await?;
    let settled = start.elapsed();
    let m = store.metrics();
    println!(
        "load:    {written} puts in {:.2}s = {:.0} puts/s (compaction settled at {:.2}s); files per level {:?}",
        load.as_secs_f64(),
        written as f64 / load.as_secs_f64(),
        settled.as_secs_f64(),
        m.files_per_level
    );

    let t = Instant::now();
    let mut found = 0u64;
    for r in 0..args.reads {
        let i = r.wrapping_mul(7919) % args.keys.max(1);
        if store.get(&key(i), epoch).await?.is_some() {
            found += 1;
        }
    }
    if found != args.reads.min(if args.keys == 0 { 0 } else { args.reads }) {
        bail!(
            "point reads found {found} of {} keys that were written",
            args.reads
        );
    }
    let c = store.cache_stats();
    println!(
        "reads:   {} gets in {:.2}s = {:.0} gets/s (block cache {} hits, {} misses)",
        args.reads,
        t.elapsed().as_secs_f64(),
        args.reads as f64 / t.elapsed().as_secs_f64(),
        c.hits,
        c.misses
    );

    let t = Instant::now();
    let all = store.scan(&[], None, epoch, usize::MAX).await?;
    if all.len() as u64 != args.keys {
        bail!(
            "full scan returned {} entries, expected {}",
            all.len(),
            args.keys
        );
    }
    println!(
        "scan:    {} entries in {:.2}s = {:.0} entries/s",
        all.len(),
        t.elapsed().as_secs_f64(),
        all.len() as f64 / t.elapsed().as_secs_f64()
    );
    drop(all);

    // Rescaling drops a worker's key groups with one range delete.
    epoch = epoch.next();
    let mut drop_groups = WriteBatch::new();
    drop_groups.delete_range(
        key_group_start(TableId(1), KeyGroup(0)),
        key_group_end(TableId(1), KeyGroup(127)),
    );
    store.write(epoch, &drop_groups).await?;
    store.commit(epoch).await?;
    let t = Instant::now();
    store.compact().await?;
    let left = store.scan(&[], None, epoch, usize::MAX).await?.len();
    println!(
        "delete-range of key groups 0..=127: {left} keys left, compacted in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    store.close().await?;

    let t = Instant::now();
    let reopened = Store::open(opts).await?;
    let recovered = reopened
        .scan(&[], None, reopened.committed_epoch(), usize::MAX)
        .await?
        .len();
    println!(
        "reopen:  recovered epoch {} with {recovered} keys in {:.2}s",
        reopened.committed_epoch().0,
        t.elapsed().as_secs_f64()
    );
    if recovered != left {
        bail!("reopened store has {recovered} keys, expected {left}");
    }
    reopened.close().await?;
    println!(
        "\n{}",
        m.to_prometheus()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

async fn crash_writer(args: CrashWriterArgs) -> Result<()> {
    let mut opts = Options::with_url(args.url);
    opts.memtable_bytes = 256 << 10;
    opts.max_memory_bytes = 1 << 20;
    opts.sst_target_bytes = 512 << 10;
    opts.level_base_bytes = 2 << 20;
    opts.s3.endpoint = args.s3_endpoint;
    let store = Store::open(opts).await?;
    let mut epoch = store.committed_epoch().next();
    println!("start {}", store.committed_epoch().0);
    loop {
        let value = Bytes::from(epoch.0.to_string());
        for chunk in (0..args.keys).collect::<Vec<_>>().chunks(1000) {
            let mut batch = WriteBatch::with_capacity(chunk.len());
            for &i in chunk {
                batch.put(
                    full_key(TableId(9), KeyGroup((i % 128) as u16), &i.to_be_bytes()),
                    value.clone(),
                );
            }
            store.write(epoch, &batch).await?;
        }
        store.commit(epoch).await?;
        println!("committed {}", epoch.0);
        epoch = epoch.next();
    }
}
