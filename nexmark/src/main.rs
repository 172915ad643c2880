//! `riverbed-nexmark`: generate Nexmark events, or run Nexmark queries on
//! Riverbed and print the suite's summary table. `--help` on each command
//! explains every flag.
#![allow(clippy::disallowed_methods)] // the CLI reads the wall clock for progress

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use riverbed_nexmark::queries::{self, QUERIES};
use riverbed_nexmark::runner::{self, report, EventSource, RunOptions};
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
    Run(RunArgs),
    /// Write generated events to a JSON-lines file (the suite's source-table shape).
    Generate(GenerateArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Query to run: q0..q23, or `all` for every query in order.
    #[arg(long, short)]
    query: String,
    /// Number of generated events (ignored with --source).
    #[arg(long, short, default_value_t = 10_000_000)]
    events: u64,
    /// Subtasks per operator (and source).
    #[arg(long, short, default_value_t = 2)]
    parallelism: usize,
    /// Read events from this JSON-lines file instead of generating them.
    #[arg(long)]
    source: Option<PathBuf>,
    /// Directory for the state store of each query (emptied before each query).
    #[arg(long, default_value = "target/nexmark-state")]
    state_dir: PathBuf,
    /// Write each query's result changelog as JSON lines into DIR/<query>/
    /// (q10 writes its partitioned CSV files into DIR/q10/bid/).
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
}

fn main() -> ExitCode {
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
        Command::Run(args) => run(args),
        Command::Generate(args) => generate(args),
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
        ..GeneratorConfig::default()
    })?;
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

fn run(args: RunArgs) -> Result<(), Error> {
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
    if args.parallelism == 0 {
        return Err(Error::InvalidArgument(
            "--parallelism must be at least 1".into(),
        ));
    }
    let source = match &args.source {
        Some(path) => EventSource::file(path)?,
        None => EventSource::generator(
            GeneratorConfig {
                seed: args.seed,
                ..GeneratorConfig::default()
            },
            args.events,
        )?,
    };
    let mut options = RunOptions::new(&args.state_dir);
    options.parallelism = args.parallelism;
    options.output = args.output.clone();
    options.state_cache_entries = args.state_cache.max(1);
    if let Some(path) = &args.side_input {
        options.side_input = Arc::new(runner::read_side_input(path)?);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.parallelism.max(2))
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            path: PathBuf::from("tokio runtime"),
            source,
        })?;
    let mut reports = Vec::new();
    for q in selected {
        let progress = Arc::new(AtomicU64::new(0));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let printer = (!args.quiet).then(|| {
            let (progress, done, total, name) =
                (progress.clone(), done.clone(), source.len(), q.name);
            std::thread::spawn(move || show_progress(name, total, &progress, &done))
        });
        let result = rt.block_on(runner::run_query(q, &source, &options, progress));
        done.store(true, Ordering::Relaxed);
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
    }
    Ok(())
}

/// Prints the events read so far to stderr until `done`: in place on a
/// terminal, a line every 5 s otherwise.
fn show_progress(
    name: &str,
    total: u64,
    progress: &AtomicU64,
    done: &std::sync::atomic::AtomicBool,
) {
    let tty = std::io::stderr().is_terminal();
    let every = if tty {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    };
    let start = Instant::now();
    let mut last = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() < every {
            continue;
        }
        last = Instant::now();
        let n = progress.load(Ordering::Relaxed);
        let pct = if total > 0 {
            100.0 * n as f64 / total as f64
        } else {
            100.0
        };
        let rate = runner::rate(n, start.elapsed());
        let mut err = std::io::stderr().lock();
        if tty {
            let _ = write!(
                err,
                "\r{name}: {n} / {total} events ({pct:.0}%), {:.2} M events/s   ",
                rate / 1e6
            );
        } else {
            let _ = writeln!(
                err,
                "{name}: {n} / {total} events ({pct:.0}%), {:.2} M events/s",
                rate / 1e6
            );
        }
    }
    let n = progress.load(Ordering::Relaxed);
    let mut err = std::io::stderr().lock();
    let end = if tty { "\r" } else { "" };
    let _ = writeln!(
        err,
        "{end}{name}: {n} events in {:.1} s                    ",
        start.elapsed().as_secs_f64()
    );
}
