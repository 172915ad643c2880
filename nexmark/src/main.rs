//! `riverbed-nexmark`: generate Nexmark events, or run Nexmark queries on
//! Riverbed and print the suite's summary table. `--help` on each command
//! explains every flag.
#![allow(clippy::disallowed_methods)] // the CLI reads the wall clock for progress

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use riverbed_nexmark::json::DEFAULT_MAX_LINE_BYTES;
use riverbed_nexmark::queries::{self, QUERIES};
use riverbed_nexmark::runner::{self, report, EventSource, RunOptions, StateDirLock};
use riverbed_nexmark::source::SourceSpec;
use riverbed_nexmark::{json, Error, Generator, GeneratorConfig};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "riverbed-nexmark",
    about = "Nexmark on Riverbed: generate events, run queries, report throughput",
    long_about = "Nexmark on Riverbed. `run` executes Nexmark queries (q0..q23) on the \
                  streaming engine, with their state in a Riverbed state store, over \
                  generated events or an event file, and prints the Nexmark suite's \
                  summary table. `generate` writes events as JSON lines."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one query or all of them and print the summary table.
    Run(Box<RunArgs>),
    /// Write generated events to a JSON-lines file (the suite's source-table shape).
    Generate(GenerateArgs),
    /// List the checkpoints each query's store under a state directory holds.
    Checkpoints(CheckpointsArgs),
    /// Export the last checkpoint of a query as a savepoint: a
    /// self-contained folder (or S3 prefix) that `run --from-savepoint`
    /// starts from, on this machine or another.
    Savepoint(SavepointArgs),
    /// Change the parallelism of a running job (one started with
    /// `run --coordinator-listen`): it stops at a checkpoint taken at once
    /// and goes on from it with new key-group ranges; no state is copied.
    Rescale(RescaleArgs),
    /// Show what a running job (one started with `run --coordinator-listen`)
    /// is doing: its query, parallelism and last committed checkpoint.
    Status(StatusArgs),
    /// Run one query on worker processes: this process is the job's
    /// coordinator (checkpoints, failover, rescaling); `worker` processes
    /// attach to it and run the subtasks. State lives in a store service.
    Coordinator(Box<CoordinatorArgs>),
    /// Serve as a worker of a coordinator: run the subtasks it assigns,
    /// exchanging records with the other workers over TCP. Holds nothing
    /// that must survive: kill it and the job goes on from its last
    /// checkpoint on the other workers.
    Worker(WorkerArgs),
}

#[derive(clap::Args)]
struct CoordinatorArgs {
    /// Workers the job runs on: the first attempt waits for this many to
    /// attach; after a worker is lost the job goes on with the live ones,
    /// and spreads again over workers that join.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// A worker silent this long (no heartbeat) is dead (`500ms`, `2s`).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_interval)]
    heartbeat_timeout: Interval,
    /// The query and its settings, as for `run` (one query; state in a
    /// store service: --state remote://HOST:PORT; --coordinator-listen is
    /// where workers, `status` and `rescale` reach this process). An
    /// unfinished run of the query in the store goes on from its last
    /// checkpoint, unless --fresh.
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// The job's coordinator, `HOST:PORT` (its --coordinator-listen).
    #[arg(long, env = "RIVERBED_COORDINATOR", default_value = "127.0.0.1:7072")]
    coordinator: String,
    /// Where this worker takes exchange edges from the other workers
    /// (`HOST:PORT`; port 0 picks a free one, printed as `worker exchange
    /// listening on ADDR`).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The address the other workers reach this one at [default: the
    /// address --listen bound]
    #[arg(long, value_name = "HOST:PORT")]
    advertise: Option<String>,
}

#[derive(clap::Args)]
struct RescaleArgs {
    /// The job's coordinator service, `HOST:PORT`.
    #[arg(long, env = "RIVERBED_COORDINATOR", default_value = "127.0.0.1:7072")]
    coordinator: String,
    /// The new parallelism: 1 up to the job's max parallelism.
    #[arg(long, short)]
    parallelism: u32,
    /// Print what the rescale did as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct StatusArgs {
    /// The job's coordinator service, `HOST:PORT`.
    #[arg(long, env = "RIVERBED_COORDINATOR", default_value = "127.0.0.1:7072")]
    coordinator: String,
    /// Print it as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct SavepointArgs {
    /// The query whose store is exported.
    #[arg(long, short)]
    query: String,
    /// The state directory of the query's runs.
    #[arg(long, default_value = "target/nexmark-state")]
    state_dir: PathBuf,
    /// Where the savepoint goes: an empty (or new) folder, or `s3://bucket/prefix`
    /// (endpoint and credentials from the `AWS_*` variables); with --state
    /// remote://…, a name for it in the store's own storage.
    #[arg(long, value_name = "PATH")]
    to: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// Where a query's state lives, and how to reach a store service.
#[derive(clap::Args)]
struct StoreArgs {
    /// Where state lives: `embedded` (a store in this process, under
    /// --state-dir) or `remote://HOST:PORT` (a `riverbed-store serve`
    /// process; each query is a namespace there). --state-dir still holds
    /// the run's lock and staged output.
    #[arg(long, value_name = "WHERE", default_value = "embedded")]
    state: String,
    /// Token for a store that has a token file (`rw` for the query's
    /// namespace).
    #[arg(long, env = "RIVERBED_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Speak TLS to the store, trusting the certificate authority in this
    /// PEM file (the store's own certificate when self-signed)
    #[arg(long, env = "RIVERBED_TLS_CA", value_name = "FILE")]
    tls_ca: Option<std::path::PathBuf>,
    /// The name the store's certificate must carry [default: the host of
    /// remote://HOST:PORT]
    #[arg(long, requires = "tls_ca", value_name = "NAME")]
    tls_domain: Option<String>,
}

impl StoreArgs {
    /// The store service, when --state names one.
    fn remote(&self) -> Result<Option<runner::RemoteState>, Error> {
        let mut remote = runner::RemoteState::parse(&self.state, self.token.clone())?;
        match (remote.as_mut(), &self.tls_ca) {
            (Some(r), Some(ca)) => {
                r.tls = Some(
                    runner::ClientTls::from_ca_file(ca, self.tls_domain.clone())
                        .map_err(Error::InvalidArgument)?,
                )
            }
            (None, Some(_)) => {
                return Err(Error::InvalidArgument(
                    "--tls-ca is for a store service: give --state remote://HOST:PORT".into(),
                ))
            }
            _ => {}
        }
        Ok(remote)
    }
}

#[derive(clap::Args)]
struct CheckpointsArgs {
    /// The state directory of earlier runs.
    #[arg(long, default_value = "target/nexmark-state")]
    state_dir: PathBuf,
    /// Print them as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Query to run: q0..q23, or `all` for every query in order.
    #[arg(long, short)]
    query: String,
    /// Number of generated events (ignored with --source).
    #[arg(long, short, default_value_t = 10_000_000)]
    events: u64,
    /// Events per second of event time: the suite's TPS
    /// (`first-event.rate` / `next-event.rate`). Spaces the generated
    /// timestamps; it does not pace the run. The suite's published runs use
    /// 100 M events at 10 M/s: `--events 100000000 --rate 10000000`.
    #[arg(long, default_value_t = 10_000, conflicts_with = "source")]
    rate: u64,
    /// Subtasks per operator (and source) [default: 2; with --resume, the
    /// parallelism of the checkpoint, so a rescaled job keeps its scale]
    #[arg(long, short)]
    parallelism: Option<usize>,
    /// Key groups of the keyed state (the most parallelism the state can
    /// be split for), 1 to 32768.
    #[arg(long, default_value_t = 128)]
    max_parallelism: u16,
    /// Read events from JSON-lines files instead of generating them: a
    /// file, or a folder (its files, recursively, in name order; names
    /// starting with `.` or `_` are skipped). May be given several times.
    /// The files are streamed: each source subtask reads its own
    /// line-aligned byte range.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    source: Vec<PathBuf>,
    /// The longest line an event file may hold; a longer one is an error
    /// naming its line.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE_BYTES)]
    max_line_bytes: usize,
    /// Directory for the state store of each query (emptied before each
    /// query). One run at a time: a second run on the same directory fails
    /// at once.
    #[arg(long, default_value = "target/nexmark-state")]
    state_dir: PathBuf,
    /// Write each query's result changelog as JSON lines into DIR/<query>/
    /// (q10 writes its partitioned CSV files into DIR/q10/bid/). Results are
    /// staged and replace DIR/<query>/ whole when the query completes; a
    /// failed run leaves the last complete results as they were.
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// q13's side input, a file of `key,value` lines (default: keys 0..9999
    /// with their own text).
    #[arg(long, value_name = "FILE")]
    side_input: Option<PathBuf>,
    /// Seed of the generator (event n depends only on the seed and n).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker-side state cache per subtask, in entries.
    #[arg(long, default_value_t = 100_000)]
    state_cache: usize,
    /// Print the report as JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
    /// Time between checkpoints (`500ms`, `1s`, `2m`); `0` checkpoints only
    /// at the end of the input. A checkpoint commits the epoch's state in
    /// the store with every source's position, so a killed run can go on.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    checkpoint_interval: Interval,
    /// Continue the query from the last checkpoint in --state-dir: its state
    /// is kept, the sources seek to the checkpointed positions, and the
    /// output goes on from what the checkpoints committed.
    #[arg(long, conflicts_with = "fresh")]
    resume: bool,
    /// Start over even when --state-dir holds checkpoints of an unfinished
    /// run (which is refused otherwise, so that state is not wiped by
    /// mistake).
    #[arg(long)]
    fresh: bool,
    /// Start from a savepoint (a folder or `s3://bucket/prefix` written by
    /// `riverbed-nexmark savepoint`): its state is copied into --state-dir
    /// and the sources seek to its positions; output starts afresh from
    /// there.
    #[arg(long, value_name = "PATH", conflicts_with = "resume")]
    from_savepoint: Option<String>,
    /// Serve the job's coordinator service on this address (`HOST:PORT`;
    /// port 0 picks a free one and prints `coordinator listening on ADDR`
    /// on stdout), where `riverbed-nexmark rescale` and `status` reach the
    /// running job.
    #[arg(long, value_name = "ADDR")]
    coordinator_listen: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// A checkpoint interval; `None` checkpoints only at the end.
#[derive(Clone, Copy, Debug)]
struct Interval(Option<Duration>);

/// `0`, or a number with `ms`, `s` or `m`.
fn parse_interval(text: &str) -> Result<Interval, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Interval(None));
    }
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 1s or 2m (or 0)"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    if d < Duration::from_millis(10) || d > Duration::from_secs(24 * 3600) {
        return Err(format!(
            "{text:?} is outside 10ms..=24h (or 0 for the end only)"
        ));
    }
    Ok(Interval(Some(d)))
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Number of events to write.
    #[arg(long, short)]
    events: u64,
    /// Output file.
    #[arg(long, short)]
    out: PathBuf,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Events per second of event time (the suite's TPS).
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
}

fn main() -> ExitCode {
    // Logs only when asked for (`RIVERBED_LOG=info`, say): by default a run
    // prints its progress and report, and a failure as one line.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RIVERBED_LOG")
                .unwrap_or_else(|_| "off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: what is wrong; --help has the rest.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (see riverbed-nexmark --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run(args) => run(*args),
        Command::Generate(args) => generate(args),
        Command::Checkpoints(args) => list_checkpoints(args),
        Command::Savepoint(args) => export_savepoint(args),
        Command::Rescale(args) => rescale(args),
        Command::Status(args) => job_status(args),
        Command::Coordinator(args) => coordinator(*args),
        Command::Worker(args) => worker(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(args: GenerateArgs) -> Result<(), Error> {
    let generator = Generator::new(GeneratorConfig {
        seed: args.seed,
        first_event_rate: args.rate,
        ..GeneratorConfig::default()
    })
    .map_err(rate_flag)?;
    let mut writer = json::create_file(&args.out)?;
    let start = Instant::now();
    let mut batch = Vec::with_capacity(4096);
    let mut events = generator.events(0..args.events);
    let mut written = 0u64;
    let mut last = Instant::now();
    while events.next_batch(&mut batch, 4096) > 0 {
        writer.write_all(&batch)?;
        written += batch.len() as u64;
        batch.clear();
        if last.elapsed() >= Duration::from_secs(1) {
            eprint!("\rgenerate: {written} / {} events", args.events);
            last = Instant::now();
        }
    }
    writer.finish()?;
    eprintln!(
        "\rgenerate: wrote {written} events to {} in {:.1} s",
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A generator setting in the runner's words (`first_event_rate` is `--rate`).
/// The events a run's flags name.
fn source_spec(args: &RunArgs) -> SourceSpec {
    SourceSpec {
        events: args.events,
        rate: args.rate,
        seed: args.seed,
        files: args.source.clone(),
        max_line_bytes: args.max_line_bytes,
    }
}

fn rate_flag(e: Error) -> Error {
    match e {
        Error::InvalidConfig(m) if m.contains("first_event_rate") => {
            Error::InvalidArgument("--rate must be at least 1 event per second".into())
        }
        other => other,
    }
}

/// Every check of a run comes first, in an order that opens nothing until
/// the settings are known good: query names, job settings, the generator's
/// settings or the listing of the event files, then the state directory's
/// lock, the side input, and only then threads and stores.
/// The queries, the checked options and the events of a run's flags.
fn prepare(
    args: &RunArgs,
) -> Result<(Vec<&'static queries::QueryInfo>, RunOptions, EventSource), Error> {
    let selected: Vec<_> = if args.query == "all" {
        QUERIES.iter().collect()
    } else {
        vec![queries::info(&args.query).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "unknown query {:?}: expected q0 to q23 or all",
                args.query
            ))
        })?]
    };
    let mut options = RunOptions::new(&args.state_dir);
    options.parallelism = args.parallelism.unwrap_or(2);
    options.parallelism_from_checkpoint = args.parallelism.is_none();
    options.max_parallelism = args.max_parallelism;
    options.output = args.output.clone();
    options.state_cache_entries = args.state_cache;
    options.checkpoint_interval = args.checkpoint_interval.0;
    options.resume = args.resume;
    options.fresh = args.fresh;
    options.from_savepoint = args.from_savepoint.clone();
    options.remote = args.store.remote()?;
    if options.from_savepoint.is_some() && selected.len() != 1 {
        return Err(Error::InvalidArgument(
            "--from-savepoint starts one query: name it with --query".into(),
        ));
    }
    options.job_config()?;
    let source = source_spec(args).open().map_err(rate_flag)?;
    Ok((selected, options, source))
}

fn coordinator(args: CoordinatorArgs) -> Result<(), Error> {
    let (selected, options, _) = prepare(&args.run)?;
    let [query] = selected[..] else {
        return Err(Error::InvalidArgument(
            "the coordinator runs one query: name it with --query".into(),
        ));
    };
    let remote = options.remote.clone().ok_or_else(|| {
        Error::InvalidArgument(
            "workers share state through a store service: give --state remote://HOST:PORT".into(),
        )
    })?;
    if options.from_savepoint.is_some() {
        return Err(Error::InvalidArgument(
            "--from-savepoint is for `run`; a coordinator starts fresh or goes on from the \
             store's last checkpoint"
                .into(),
        ));
    }
    if args.workers == 0 {
        return Err(Error::InvalidArgument(
            "--workers must be at least 1".into(),
        ));
    }
    let Some(timeout) = args.heartbeat_timeout.0 else {
        return Err(Error::InvalidArgument(
            "--heartbeat-timeout must be more than 0".into(),
        ));
    };
    let listen = args.run.coordinator_listen.clone().ok_or_else(|| {
        Error::InvalidArgument(
            "the coordinator needs --coordinator-listen HOST:PORT for its workers".into(),
        )
    })?;
    let _lock = StateDirLock::acquire(&args.run.state_dir)?;
    let rt = build_runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(2))?;
    let _guard = rt.enter();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(listen.as_str()))
        .map_err(|e| {
            Error::InvalidArgument(format!("--coordinator-listen {listen}: cannot listen: {e}"))
        })?;
    let bound = listener.local_addr().map_err(|source| Error::Io {
        path: PathBuf::from(&listen),
        source,
    })?;
    let slot = runner::CoordinatorSlot::new(args.run.max_parallelism);
    // Running from the first status on (the job waits for its workers).
    slot.handle.update(|s| {
        s.job = query.name.to_string();
        s.parallelism = options.parallelism;
        s.phase = riverbed_compute::cluster::JobPhase::Running;
    });
    let (members, member_events) = riverbed_compute::cluster::members::Members::new(timeout);
    let (handle, served) = (slot.handle.clone(), members.clone());
    rt.spawn(async move {
        if let Err(e) = riverbed_compute::cluster::service::serve(
            listener,
            handle,
            Some(served),
            std::future::pending(),
        )
        .await
        {
            eprintln!("error: the coordinator service stopped: {e}");
        }
    });
    println!("coordinator listening on {bound}");
    let _ = std::io::stdout().flush();
    let r = &args.run;
    let template = runner::cluster::ClusterJob {
        query: query.name.to_string(),
        source: source_spec(r),
        parallelism: options.parallelism,
        max_parallelism: options.max_parallelism,
        state_cache_entries: options.state_cache_entries,
        checkpoint_interval_ms: options.checkpoint_interval.map(|d| d.as_millis() as u64),
        store: remote.addr.clone(),
        token: remote.token.clone(),
        resume_epoch: None,
        staging: None,
        output_from: None,
        state_dir: options.state_dir.clone(),
    };
    let cluster = runner::cluster::ClusterOptions {
        workers: args.workers,
        heartbeat_timeout: timeout,
        ..Default::default()
    };
    let report = rt.block_on(runner::cluster::run(
        query,
        template,
        &options,
        &cluster,
        members,
        member_events,
        slot,
    ));
    // The workers' dismissals go out before the process ends.
    rt.block_on(tokio::time::sleep(Duration::from_millis(200)));
    let report = report?;
    if r.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::InvalidArgument(format!("report is not JSON-serialisable: {e}")))?;
        println!("{text}");
    } else {
        println!(
            "{}: finished at checkpoint {} in {:.1} s: {} events read, {} attempts, {} \
             failovers, {} rescales",
            report.query,
            report.committed_epoch,
            report.wall_ms as f64 / 1000.0,
            report.events,
            report.attempts,
            report.failovers,
            report.rescales
        );
        for ms in &report.recovery_ms {
            println!("{}: recovered in {ms} ms", report.query);
        }
    }
    Ok(())
}

fn worker(args: WorkerArgs) -> Result<(), Error> {
    let rt = build_runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(2))?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(args.listen.as_str()))
        .map_err(|e| {
            Error::InvalidArgument(format!("--listen {}: cannot listen: {e}", args.listen))
        })?;
    let bound = listener.local_addr().map_err(|source| Error::Io {
        path: PathBuf::from(&args.listen),
        source,
    })?;
    let advertise = args.advertise.clone().unwrap_or_else(|| bound.to_string());
    println!("worker exchange listening on {bound}");
    let _ = std::io::stdout().flush();
    rt.block_on(riverbed_compute::cluster::worker::serve(
        args.coordinator.clone(),
        listener,
        advertise,
        runner::worker::attempts(),
    ))
    .map_err(Error::InvalidArgument)
}

fn run(args: RunArgs) -> Result<(), Error> {
    let (selected, mut options, source) = prepare(&args)?;
    let lock = Arc::new(StateDirLock::acquire(&args.state_dir)?);
    options.lock = Some(lock);
    if let Some(path) = &args.side_input {
        options.side_input = Arc::new(runner::read_side_input(path)?);
    }
    // Subtasks are tasks, not threads: one worker thread per core is enough.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = build_runtime(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.parallelism.min(cores).max(2)),
    )?;
    if let Some(addr) = &args.coordinator_listen {
        let slot = runner::CoordinatorSlot::new(args.max_parallelism);
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr.as_str()))
            .map_err(|e| {
                Error::InvalidArgument(format!("--coordinator-listen {addr}: cannot listen: {e}"))
            })?;
        let bound = listener.local_addr().map_err(|source| Error::Io {
            path: PathBuf::from(addr),
            source,
        })?;
        println!("coordinator listening on {bound}");
        let _ = std::io::stdout().flush();
        let handle = slot.handle.clone();
        rt.spawn(async move {
            if let Err(e) = riverbed_compute::cluster::service::serve(
                listener,
                handle,
                None,
                std::future::pending(),
            )
            .await
            {
                eprintln!("error: the coordinator service stopped: {e}");
            }
        });
        options.coordinator = Some(slot);
    }
    let mut reports = Vec::new();
    for q in selected {
        let progress = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU8::new(RUNNING));
        let printer = (!args.quiet).then(|| {
            let (progress, done, total, name) =
                (progress.clone(), done.clone(), source.known_len(), q.name);
            std::thread::spawn(move || show_progress(name, total, &progress, &done))
        });
        let result = rt.block_on(runner::run_query(q, &source, &options, progress));
        done.store(
            if result.is_ok() { FINISHED } else { FAILED },
            Ordering::Relaxed,
        );
        if let Some(p) = printer {
            let _ = p.join();
        }
        let run = result?;
        reports.push(run.report);
    }
    if args.json {
        let text = serde_json::to_string_pretty(&reports)
            .map_err(|e| Error::InvalidArgument(format!("report is not JSON-serialisable: {e}")))?;
        println!("{text}");
    } else {
        println!("{}", report::table(&reports));
        if options.resume || options.from_savepoint.is_some() {
            for r in &reports {
                if let Some(ms) = r.first_output_ms {
                    println!(
                        "{}: first new output {ms} ms after the process started",
                        r.query
                    );
                }
            }
        }
    }
    Ok(())
}

/// A tokio runtime with I/O and timers, its failure as this binary's error.
fn build_runtime(b: &mut tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, Error> {
    b.enable_all().build().map_err(|source| Error::Io {
        path: PathBuf::from("tokio runtime"),
        source,
    })
}

/// Asks a running job to rescale and says what it did.
fn rescale(args: RescaleArgs) -> Result<(), Error> {
    let rt = build_runtime(&mut tokio::runtime::Builder::new_current_thread())?;
    let r = rt
        .block_on(riverbed_compute::cluster::client::rescale(
            &args.coordinator,
            args.parallelism,
        ))
        .map_err(Error::InvalidArgument)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "from": r.from_parallelism,
                "to": r.to_parallelism,
                "checkpoint": r.checkpoint,
                "stop_ms": r.stop_ms,
                "restart_ms": r.restart_ms,
                "objects_copied": r.objects_copied,
                "bytes_written": r.bytes_written,
                "bytes_read": r.bytes_read,
            })
        );
        return Ok(());
    }
    println!(
        "rescaled from {} to {} at checkpoint {} in {} ms (stop {} ms, restart {} ms); \
         objects copied {}, bytes written {}, bytes read {}",
        r.from_parallelism,
        r.to_parallelism,
        r.checkpoint,
        r.stop_ms + r.restart_ms,
        r.stop_ms,
        r.restart_ms,
        r.objects_copied,
        r.bytes_written,
        r.bytes_read
    );
    Ok(())
}

/// Prints a running job's status.
fn job_status(args: StatusArgs) -> Result<(), Error> {
    let rt = build_runtime(&mut tokio::runtime::Builder::new_current_thread())?;
    let s = rt
        .block_on(riverbed_compute::cluster::client::status(&args.coordinator))
        .map_err(Error::InvalidArgument)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "job": s.job,
                "state": s.state,
                "parallelism": s.parallelism,
                "max_parallelism": s.max_parallelism,
                "committed_epoch": s.committed_epoch,
                "rescales": s.rescales,
                "workers": s.workers,
                "failovers": s.failovers,
            })
        );
    } else {
        println!(
            "job {}: {} at parallelism {} (max {}) on {} worker(s), checkpoint {} committed, {} \
             rescales, {} failovers",
            if s.job.is_empty() { "-" } else { &s.job },
            s.state,
            s.parallelism,
            s.max_parallelism,
            s.workers,
            s.committed_epoch,
            s.rescales,
            s.failovers
        );
    }
    Ok(())
}

/// Lists the checkpoints of every query's store under `--state-dir`.
fn list_checkpoints(args: CheckpointsArgs) -> Result<(), Error> {
    let rt = build_runtime(&mut tokio::runtime::Builder::new_current_thread())?;
    let found = rt.block_on(runner::checkpoints::under(&args.state_dir))?;
    if args.json {
        let list: Vec<serde_json::Value> = found
            .iter()
            .flat_map(|(query, _, cps)| cps.iter().map(move |c| report::checkpoint_json(query, c)))
            .collect();
        let text = serde_json::to_string_pretty(&list).map_err(|e| {
            Error::InvalidArgument(format!("checkpoints are not JSON-serialisable: {e}"))
        })?;
        println!("{text}");
    } else {
        println!("{}", report::checkpoint_table(&found));
    }
    Ok(())
}

/// Exports the last checkpoint of `--query` to `--to`.
fn export_savepoint(args: SavepointArgs) -> Result<(), Error> {
    if queries::info(&args.query).is_none() {
        return Err(Error::InvalidArgument(format!(
            "unknown query {:?}: expected q0 to q23",
            args.query
        )));
    }
    let rt = build_runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(2))?;
    let info = match args.store.remote()? {
        Some(r) => rt.block_on(runner::savepoint::export_remote(&r, &args.query, &args.to))?,
        None => rt.block_on(runner::savepoint::export(
            &args.state_dir,
            &args.query,
            &args.to,
        ))?,
    };
    let cp = &info.checkpoint;
    println!(
        "savepoint of {} at checkpoint {} written to {}: {} files, {} bytes{}",
        args.query,
        cp.epoch.0,
        args.to,
        info.files,
        info.bytes,
        if cp.finished {
            " (the run had finished)"
        } else {
            ""
        }
    );
    Ok(())
}

/// States of a query for its progress line.
const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const FAILED: u8 = 2;

/// Prints the events read so far to stderr until `done`: in place on a
/// terminal, a line every 5 s otherwise.
fn show_progress(name: &str, total: Option<u64>, progress: &AtomicU64, done: &AtomicU8) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let start = Instant::now();
    let mut last = Instant::now();
    while done.load(Ordering::Relaxed) == RUNNING {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() < every {
            continue;
        }
        last = Instant::now();
        let n = progress.load(Ordering::Relaxed);
        let of = match total {
            Some(0) => " / 0 events (100%)".to_string(),
            Some(t) => format!(" / {t} events ({:.0}%)", 100.0 * n as f64 / t as f64),
            None => " events".to_string(),
        };
        let rate = runner::rate(n, start.elapsed());
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = write!(err, "\r{name}: {n}{of}, {:.2} M events/s   ", rate / 1e6);
        } else {
            let _ = writeln!(err, "{name}: {n}{of}, {:.2} M events/s", rate / 1e6);
        }
    }
    let n = progress.load(Ordering::Relaxed);
    let mut err = std::io::stderr().lock();
    if done.load(Ordering::Relaxed) == FAILED {
        // The error is the one line a failed run prints: clear ours.
        if tty {
            let _ = write!(err, "\r\x1b[K");
        }
        return;
    }
    let end = if tty { "\r" } else { "" };
    let _ = writeln!(
        err,
        "{end}{name}: {n} events in {:.1} s                    ",
        start.elapsed().as_secs_f64()
    );
}
