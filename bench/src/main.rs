//! `riverbed-bench report`: runs the benchmark sections and writes
//! `<out>/<date>/report.md` with SVG charts and `results.json`.
//! `riverbed-bench nexmark-query` is the child process the report starts for
//! each Nexmark query.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use riverbed_bench::config::{Mode, RunConfig, Section};
use riverbed_bench::timing::Stopwatch;
use riverbed_bench::{nexmark, report, run, timing};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "riverbed-bench",
    about = "Riverbed's benchmark harness and report generator"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the benchmarks and write report.md, SVG charts and results.json
    /// into <out>/<date>/. Progress goes to stderr. RocksDB and SlateDB join
    /// the store comparison when built with `--features rocksdb,slatedb`.
    Report(ReportArgs),
    /// Run one Nexmark query and print its report as one JSON line (the
    /// report runs each query this way, in its own process, so peak RSS is
    /// the query's own).
    NexmarkQuery(NexmarkArgs),
    /// Load-test a `riverbed-store` process on loopback for a fixed time:
    /// batched writes (entries/s), multi-get of 100 cached keys and
    /// queryable lookups while q20 writes (p50/p99). Prints a summary on
    /// stderr and one JSON line on stdout.
    StoreLoad(StoreLoadArgs),
    /// Rescale a running query once its state reaches a size: the stop,
    /// the restart, the first checkpoint at the new parallelism and what
    /// the store moved. Prints a summary on stderr and one JSON line on
    /// stdout.
    Rescale(RescaleCmd),
    /// A query on 1, 2, 3 ... worker processes (a store, a coordinator and
    /// the workers on 127.0.0.1): throughput and CPU per event of the whole
    /// cluster. Prints a summary on stderr and one JSON line per point.
    ClusterScaling(ClusterScalingCmd),
    /// A query on two worker processes until the store holds --at-mib:
    /// kill -9 a worker and time the recovery (to the first checkpoint
    /// after the kill), then rescale 2 -> 4 on four workers; with the
    /// checkpoint durations up to the kill. Prints a summary on stderr and
    /// one JSON line.
    ClusterFailover(ClusterFailoverCmd),
}

#[derive(Parser)]
struct ClusterBins {
    /// The `riverbed-nexmark` binary [default: beside this one]
    #[arg(long)]
    nexmark_bin: Option<PathBuf>,
    /// The `riverbed-store` binary [default: beside this one]
    #[arg(long)]
    store_bin: Option<PathBuf>,
    /// Where the clusters' files go (removed after each).
    #[arg(long, default_value = "target/cluster-bench")]
    scratch: PathBuf,
}

impl ClusterBins {
    fn resolve(self) -> Result<riverbed_bench::cluster::Binaries> {
        let here = std::env::current_exe()?;
        let nexmark = self
            .nexmark_bin
            .unwrap_or_else(|| here.with_file_name("riverbed-nexmark"));
        let store = self
            .store_bin
            .unwrap_or_else(|| here.with_file_name("riverbed-store"));
        for b in [&nexmark, &store] {
            anyhow::ensure!(
                b.exists(),
                "{} is missing: build it, or pass its flag",
                b.display()
            );
        }
        Ok(riverbed_bench::cluster::Binaries {
            nexmark,
            store,
            scratch: self.scratch,
        })
    }
}

#[derive(Parser)]
struct ClusterScalingCmd {
    #[arg(long, default_value = "q5")]
    query: String,
    #[arg(long, default_value_t = 20_000_000)]
    events: u64,
    /// Worker counts, comma-separated (parallelism = workers).
    #[arg(long, default_value = "1,2,3", value_delimiter = ',')]
    workers: Vec<usize>,
    #[command(flatten)]
    bins: ClusterBins,
}

#[derive(Parser)]
struct ClusterFailoverCmd {
    #[arg(long, default_value = "q9")]
    query: String,
    /// Events of the run (enough to reach --at-mib with room to spare).
    #[arg(long, default_value_t = 60_000_000)]
    events: u64,
    /// Kill a worker once the store holds this many MiB.
    #[arg(long, default_value_t = 1024)]
    at_mib: u64,
    /// Keep the cluster's folder (store, logs) after the run, to read its
    /// logs; by default it is removed.
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    bins: ClusterBins,
}

#[derive(Parser)]
struct RescaleCmd {
    /// The query.
    #[arg(long, default_value = "q9")]
    query: String,
    /// Events of the run (enough to reach --at-mib with room to spare).
    #[arg(long, default_value_t = 36_000_000)]
    events: u64,
    /// Parallelism before the rescale.
    #[arg(long, default_value_t = 2)]
    from: usize,
    /// Parallelism after it.
    #[arg(long, default_value_t = 4)]
    to: usize,
    /// Rescale once the query's state directory holds this many MiB.
    #[arg(long, default_value_t = 1024)]
    at_mib: u64,
    /// Where the run's state goes (removed after).
    #[arg(long, default_value = "target/rescale-bench")]
    scratch: PathBuf,
    /// The `riverbed-nexmark` binary [default: beside this one]
    #[arg(long)]
    nexmark_bin: Option<PathBuf>,
}

#[derive(Parser)]
struct StoreLoadArgs {
    /// Concurrent clients of the write and multi-get phases.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Entries per write batch.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Events of the q20 run the lookups race.
    #[arg(long, default_value_t = 20_000_000)]
    events: u64,
    /// Nice value (0..=19) of the q20 run the lookups race: 0 runs it at the
    /// store's and the clients' priority; 10 models a batch job sharing the
    /// machine with a serving store.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    job_nice: i32,
    /// The `riverbed-store` binary [default: beside this one]
    #[arg(long)]
    store_bin: Option<PathBuf>,
    /// The `riverbed-nexmark` binary [default: beside this one]
    #[arg(long)]
    nexmark_bin: Option<PathBuf>,
}

#[derive(Parser)]
struct ReportArgs {
    /// Small sizes that finish in a few minutes: 200 K keys, 200 K Nexmark
    /// events (q23 skipped), state sizes 4, 16 and 64 MiB.
    #[arg(long)]
    quick: bool,
    /// Smallest sizes, seconds even in a debug build (what the test runs):
    /// 10 K keys, one round, 2,000 Nexmark events, 1 and 2 MiB of state.
    #[arg(long, conflicts_with = "quick")]
    tiny: bool,
    /// Comma-separated sections to run: store, nexmark, scale, checkpoints
    /// (default: all).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Directory the dated report directory is created in.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Name of the report directory instead of today's date (YYYY-MM-DD).
    #[arg(long)]
    date: Option<String>,
    /// Rounds of the interleaved store comparison (median reported).
    #[arg(long)]
    rounds: Option<usize>,
    /// Rounds of the store comparison run first and not counted (default 1;
    /// 0 with --tiny).
    #[arg(long)]
    warmup_rounds: Option<usize>,
    /// Keys of the store comparison's data set.
    #[arg(long)]
    store_keys: Option<u64>,
    /// Events per Nexmark query.
    #[arg(long)]
    nexmark_events: Option<u64>,
    /// Events for q23 (0 skips it); its output grows as bids × auctions.
    #[arg(long)]
    q23_events: Option<u64>,
    /// Event counts of the checkpoint section's runs: `N,N,...` for both
    /// q9 and q20, or `QUERY=N,N,...` for one of them (repeatable;
    /// `QUERY=` leaves it out).
    #[arg(long, value_name = "[QUERY=]N,N")]
    checkpoint_events: Vec<String>,
    /// State sizes of the scale section in MiB, comma-separated.
    #[arg(long, value_delimiter = ',')]
    scale_mib: Vec<u64>,
    /// Leave out the checkpoint section's 1 s vs end-only throughput pairs.
    #[arg(long)]
    no_throughput_pairs: bool,
    /// Rounds of the checkpoint section's throughput pairs (default 3, 1
    /// with --tiny); the report gives the medians.
    #[arg(long)]
    pair_rounds: Option<usize>,
    /// A note for the report's Notes section (repeatable): what was unusual
    /// about this run.
    #[arg(long)]
    note: Vec<String>,
    /// Directory for the stores under test (default: a temporary directory).
    #[arg(long)]
    scratch: Option<PathBuf>,
}

#[derive(Parser)]
struct NexmarkArgs {
    #[arg(long)]
    query: String,
    #[arg(long)]
    events: u64,
    #[arg(long, default_value_t = 2)]
    parallelism: usize,
    #[arg(long)]
    state_dir: PathBuf,
    /// Milliseconds between checkpoints (0: only at the end).
    #[arg(long, default_value_t = 1000)]
    checkpoint_interval_ms: u64,
    /// Continue from the last checkpoint in --state-dir.
    #[arg(long)]
    resume: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Report(a) => report_cmd(a),
        Cmd::StoreLoad(a) => store_load(a),
        Cmd::Rescale(a) => rescale(a),
        Cmd::ClusterScaling(a) => (|| {
            anyhow::ensure!(
                !a.workers.is_empty() && !a.workers.contains(&0),
                "--workers: counts of at least 1"
            );
            let b = a.bins.resolve()?;
            for p in riverbed_bench::cluster::scaling(&b, &a.query, a.events, &a.workers)? {
                println!("{}", serde_json::to_string(&p)?);
            }
            Ok(())
        })(),
        Cmd::ClusterFailover(a) => (|| {
            let b = a.bins.resolve()?;
            let r = riverbed_bench::cluster::failover(&b, &a.query, a.events, a.at_mib, a.keep)?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        })(),
        Cmd::NexmarkQuery(a) => nexmark::run_child(nexmark::ChildArgs {
            query: &a.query,
            events: a.events,
            parallelism: a.parallelism,
            state_dir: &a.state_dir,
            checkpoint_interval_ms: a.checkpoint_interval_ms,
            resume: a.resume,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("riverbed-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn config(a: &ReportArgs) -> Result<RunConfig> {
    let mode = if a.tiny {
        Mode::Tiny
    } else if a.quick {
        Mode::Quick
    } else {
        Mode::Full
    };
    let mut cfg = RunConfig::new(mode);
    if !a.only.is_empty() {
        cfg.sections = a
            .only
            .iter()
            .map(|s| {
                Section::parse(s).with_context(|| {
                    format!("--only: unknown section {s:?} (expected store, nexmark, scale or checkpoints)")
                })
            })
            .collect::<Result<_>>()?;
    }
    if let Some(r) = a.rounds {
        if r == 0 {
            bail!("--rounds must be at least 1");
        }
        cfg.rounds = r;
    }
    if let Some(w) = a.warmup_rounds {
        cfg.warmup_rounds = w;
    }
    if let Some(n) = a.store_keys {
        if n < 1000 {
            bail!("--store-keys must be at least 1000");
        }
        cfg.store_keys = n;
    }
    if let Some(n) = a.nexmark_events {
        cfg.nexmark_events = n.max(1);
    }
    if let Some(n) = a.q23_events {
        cfg.q23_events = (n > 0).then_some(n);
    }
    if let Some(r) = a.pair_rounds {
        cfg.checkpoint_pair_rounds = r;
    }
    if a.no_throughput_pairs {
        cfg.checkpoint_pair_rounds = 0;
    }
    for spec in &a.checkpoint_events {
        let (query, counts) = match spec.split_once('=') {
            Some((q, c)) => (Some(q.trim()), c),
            None => (None, spec.as_str()),
        };
        // `QUERY=` alone leaves that query out.
        let counts: Vec<u64> = counts
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| {
                n.trim()
                    .parse::<u64>()
                    .map(|n| n.max(1))
                    .with_context(|| format!("--checkpoint-events {spec:?}: {n:?} is not a count"))
            })
            .collect::<Result<_>>()?;
        let mut matched = false;
        for (q, sizes) in cfg.checkpoint_events.iter_mut() {
            if query.is_none_or(|want| want == q) {
                *sizes = counts.clone();
                matched = true;
            }
        }
        if !matched {
            bail!("--checkpoint-events {spec:?}: the section runs q9 and q20 only");
        }
    }
    if !a.scale_mib.is_empty() {
        cfg.scale_bytes = a.scale_mib.iter().map(|m| m.max(&1) << 20).collect();
    }
    Ok(cfg)
}

fn report_cmd(a: ReportArgs) -> Result<()> {
    let cfg = config(&a)?;
    let date = a.date.clone().unwrap_or_else(timing::today);
    let out = a.out.join(&date);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let exe = std::env::current_exe().context("locating this binary")?;
    let tmp;
    let scratch = match &a.scratch {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("creating a scratch directory")?;
            tmp.path().to_path_buf()
        }
    };
    let clock = Stopwatch::start();
    let progress = |msg: &str| eprintln!("[{:>7.1}s] {msg}", clock.elapsed().as_secs_f64());
    progress(&format!(
        "mode {:?}, report into {}",
        cfg.mode,
        out.display()
    ));
    let notes = a.note.clone();
    let partial = |r: &run::Results| {
        let mut r = r.clone();
        r.notes = notes.clone();
        r.notes
            .push("Written while the run went on: a section still running is incomplete.".into());
        report::write(&r, &out)
    };
    let mut results = run::run(&cfg, date, command, &exe, &scratch, &progress, &partial)?;
    results.notes = a.note.clone();
    report::write(&results, &out)?;
    progress(&format!("wrote {}", out.join("report.md").display()));
    Ok(())
}

fn rescale(a: RescaleCmd) -> anyhow::Result<()> {
    let nexmark_bin = match a.nexmark_bin {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("riverbed-nexmark"),
    };
    anyhow::ensure!(
        nexmark_bin.exists(),
        "{} is missing: build it, or pass --nexmark-bin",
        nexmark_bin.display()
    );
    anyhow::ensure!(
        a.from >= 1 && a.to >= 1 && a.from != a.to,
        "--from and --to must be different parallelisms of at least 1"
    );
    let r = riverbed_bench::rescale::run(&riverbed_bench::rescale::RescaleArgs {
        nexmark_bin,
        query: a.query,
        events: a.events,
        from: a.from,
        to: a.to,
        at_mib: a.at_mib,
        scratch: a.scratch,
    })?;
    eprintln!(
        "{}: rescaled {} -> {} at {:.0} MiB of state: stop {} ms, restart {} ms, first \
         checkpoint after {:.0} ms; objects copied {}, bytes written {}, read {}",
        r.query,
        r.rescaled.from,
        r.rescaled.to,
        r.state_mib_at_rescale,
        r.rescaled.stop_ms,
        r.rescaled.restart_ms,
        r.first_checkpoint_ms,
        r.rescaled.objects_copied,
        r.rescaled.bytes_written,
        r.rescaled.bytes_read
    );
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}

fn store_load(a: StoreLoadArgs) -> anyhow::Result<()> {
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        anyhow::bail!("--seconds {} must be above 0 and at most 3600", a.seconds);
    }
    let beside = |name: &str| -> anyhow::Result<PathBuf> {
        let exe = std::env::current_exe()?;
        let p = exe.with_file_name(name);
        anyhow::ensure!(
            p.exists(),
            "{} is missing: build it, or pass its path",
            p.display()
        );
        Ok(p)
    };
    let args = riverbed_bench::service_load::LoadArgs {
        store_bin: match a.store_bin {
            Some(p) => p,
            None => beside("riverbed-store")?,
        },
        nexmark_bin: match a.nexmark_bin {
            Some(p) => p,
            None => beside("riverbed-nexmark")?,
        },
        clients: a.clients,
        duration: std::time::Duration::from_secs_f64(a.seconds),
        batch: a.batch,
        events: a.events,
        job_nice: a.job_nice,
    };
    let r = riverbed_bench::service_load::run(&args)?;
    eprintln!(
        "batched writes: {:.0} entries/s ({} clients, batches of {}, p99 {:.2} ms)",
        r.write_entries_per_s, r.clients, r.write_batch, r.write_batch_latency.p99_ms
    );
    eprintln!(
        "multi-get of 100 cached keys: p50 {:.3} ms, p99 {:.3} ms ({} calls)",
        r.multi_get_100_latency.p50_ms,
        r.multi_get_100_latency.p99_ms,
        r.multi_get_100_latency.calls
    );
    eprintln!(
        "point lookup while q20 writes: p50 {:.3} ms, p99 {:.3} ms ({} lookups, {} found)",
        r.lookup_latency_while_q20_writes.p50_ms,
        r.lookup_latency_while_q20_writes.p99_ms,
        r.lookup_latency_while_q20_writes.calls,
        r.lookups_found
    );
    let in_server = |s: &Option<riverbed_bench::service_load::ServerLatency>| match s {
        Some(s) => {
            let ms = |v: Option<f64>| v.map_or("over 30 s".to_string(), |v| format!("<= {v} ms"));
            format!("p50 {}, p99 {}", ms(s.p50_le_ms), ms(s.p99_le_ms))
        }
        None => "not recorded".into(),
    };
    eprintln!(
        "  inside the store: multi-get {}; lookup {} (q20 at nice {})",
        in_server(&r.multi_get_100_in_server),
        in_server(&r.lookup_in_server),
        r.job_nice
    );
    println!("{}", serde_json::to_string(&r)?);
    Ok(())
}
