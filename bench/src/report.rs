//! Writes a run's [`Results`] as `report.md` (tables, goals, notes), SVG
//! charts beside it and `results.json` with every raw sample.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::charts::{self, si, BarPanel, LinePanel};
use crate::compare::{rate_of, WIDE_SPREAD, WORKLOADS};
use crate::config::Section;
use crate::engines::{Budget, SETTING_ROWS};
use crate::run::Results;
use crate::scale;

pub const STORE_CHART: &str = "store_comparison.svg";
pub const NEXMARK_CHART: &str = "nexmark_throughput_per_core.svg";
pub const RESOURCE_CHART: &str = "nexmark_resources.svg";
pub const SCALE_CHART: &str = "store_cost_vs_state_size.svg";

/// Writes the report, charts and JSON into `dir`.
pub fn write(r: &Results, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(r)?)?;
    if !r.store_summary.is_empty() {
        store_chart(r, &dir.join(STORE_CHART))?;
    }
    if !r.nexmark.is_empty() {
        nexmark_charts(r, dir)?;
    }
    if !r.scale.is_empty() {
        scale_chart(r, &dir.join(SCALE_CHART))?;
    }
    std::fs::write(dir.join("report.md"), markdown(r))?;
    Ok(())
}

fn store_chart(r: &Results, path: &Path) -> Result<()> {
    let panels: Vec<BarPanel> = WORKLOADS
        .iter()
        .map(|&w| BarPanel {
            title: w.name().into(),
            y_desc: w.unit().into(),
            bars: r
                .engines
                .iter()
                .filter_map(|e| {
                    rate_of(&r.store_summary, e.name, w).map(|v| (e.name.to_string(), v))
                })
                .collect(),
            color_by_bar: true,
        })
        .collect();
    charts::bars(path, 4, (330, 260), &panels)
}

fn nexmark_charts(r: &Results, dir: &Path) -> Result<()> {
    let bars = |f: &dyn Fn(&crate::nexmark::QueryRun) -> f64| -> Vec<(String, f64)> {
        r.nexmark.iter().map(|q| (q.query.clone(), f(q))).collect()
    };
    charts::bars(
        &dir.join(NEXMARK_CHART),
        1,
        (1100, 380),
        &[BarPanel {
            title: "Nexmark throughput per core (events per CPU second)".into(),
            y_desc: "events/s per core".into(),
            bars: bars(&|q| q.throughput_per_core()),
            color_by_bar: false,
        }],
    )?;
    charts::bars(
        &dir.join(RESOURCE_CHART),
        1,
        (1100, 300),
        &[
            BarPanel {
                title: "Peak RSS per query (one process per query)".into(),
                y_desc: "bytes".into(),
                bars: bars(&|q| q.peak_rss_bytes as f64),
                color_by_bar: false,
            },
            BarPanel {
                title: "Store bytes written to object storage (flush + compaction)".into(),
                y_desc: "bytes".into(),
                bars: bars(&|q| q.store_bytes_written as f64),
                color_by_bar: false,
            },
        ],
    )
}

fn scale_chart(r: &Results, path: &Path) -> Result<()> {
    let series = |names: &[(&str, &'static str)]| -> Vec<(String, Vec<(f64, f64)>)> {
        names
            .iter()
            .map(|(label, key)| {
                let pts = r
                    .scale
                    .iter()
                    .filter_map(|p| p.measures.get(key).map(|v| (p.state_bytes as f64, *v)))
                    .collect();
                (label.to_string(), pts)
            })
            .collect()
    };
    charts::lines(
        path,
        (460, 340),
        &[
            LinePanel {
                title: "Throughput vs state size".into(),
                x_desc: "state bytes (key + value)".into(),
                y_desc: "ops/s".into(),
                series: series(&[
                    ("write keys/s", scale::WRITE_KEYS_PER_SEC),
                    ("point gets/s", scale::GET_PER_SEC),
                    ("scan entries/s", scale::SCAN_ENTRIES_PER_SEC),
                ]),
            },
            LinePanel {
                title: "Bytes on object storage".into(),
                x_desc: "state bytes (key + value)".into(),
                y_desc: "bytes".into(),
                series: series(&[
                    ("stored", scale::STORED_BYTES),
                    ("written (flush + compaction)", scale::WRITTEN_BYTES),
                ]),
            },
            LinePanel {
                title: "Checkpoint and recovery time".into(),
                x_desc: "state bytes (key + value)".into(),
                y_desc: "seconds".into(),
                series: series(&[
                    ("checkpoint (commit)", scale::CHECKPOINT_SECS),
                    ("recovery (reopen + get)", scale::RECOVERY_SECS),
                ]),
            },
        ],
    )
}

fn mb(b: u64) -> String {
    format!("{:.1}", b as f64 / 1e6)
}

/// The Markdown text of the report.
pub fn markdown(r: &Results) -> String {
    let mut s = String::new();
    let c = &r.config;
    let _ = writeln!(s, "# Riverbed benchmark report — {}\n", r.date);
    let _ = writeln!(s, "- Command: `{}`", r.command);
    let _ = writeln!(
        s,
        "- Mode: {:?}; commit: {}",
        c.mode,
        r.commit.as_deref().unwrap_or("unknown")
    );
    let _ = writeln!(
        s,
        "- Machine: {}, {} cores, {:.1} GiB memory, {}",
        r.machine.cpu,
        r.machine.cores,
        r.machine.memory_bytes as f64 / (1u64 << 30) as f64,
        r.machine.os
    );
    let _ = writeln!(
        s,
        "- Raw numbers: `results.json` (every sample of every round). Charts: SVG files beside this report.\n"
    );
    let _ = writeln!(s, "Sections: [State store vs RocksDB and SlateDB](#state-store-vs-rocksdb-and-slatedb) · [Goals](#goals) · [Nexmark](#nexmark) · [Resource use](#resource-use) · [Store cost vs state size](#store-cost-vs-state-size) · [Checkpoints and recovery](#checkpoints-and-recovery) · [Micro-benchmarks](#micro-benchmarks)\n");

    store_section(r, &mut s);
    goals_section(r, &mut s);
    nexmark_section(r, &mut s);
    resource_section(r, &mut s);
    scale_section(r, &mut s);
    checkpoint_section(r, &mut s);
    micro_section(&mut s);
    notes_section(r, &mut s);
    s
}

fn notes_section(r: &Results, s: &mut String) {
    let _ = writeln!(s, "## Notes\n");
    for (name, why) in &r.engines_missing {
        let _ = writeln!(s, "- {name} was not compared: {why}.");
    }
    for (q, why) in &r.nexmark_skipped {
        let _ = writeln!(s, "- Nexmark {q}: {why}.");
    }
    if let Some(n) = r.config.q23_events {
        let _ = writeln!(
            s,
            "- Nexmark q23 ran on {n} events only: its output is bids × auctions."
        );
    }
    for n in &r.notes {
        let _ = writeln!(s, "- {n}");
    }
    let _ = writeln!(s);
}

fn not_run(s: &mut String, section: &str) {
    let _ = writeln!(
        s,
        "_Not run in this report (`--only` left out `{section}`)._\n"
    );
}

fn store_section(r: &Results, s: &mut String) {
    let c = &r.config;
    let _ = writeln!(s, "## State store vs RocksDB and SlateDB\n");
    if !c.wants(Section::Store) {
        return not_run(s, "store");
    }
    let _ = writeln!(
        s,
        "Same process, same machine, same data: {} keys of 16 bytes (`table | key_group | user_key`) with 100-byte values (half random, half a fixed pattern), written in batches of {}. \
Engines run interleaved (one engine's whole run, then the next, for {} round(s), after {} warm-up round(s) that are not counted); each cell is the median over rounds. \
Point reads: {} per workload (hot: a warmed set of {} keys); scans: {} of {} entries from random keys (warmed). \
`overwrite` writes every key twice more in scattered order, then settles; `delete_range` drops the first quarter of the 256 key groups and settles; `checkpoint` follows {} unsettled overwrites.\n",
        c.store_keys, c.batch, c.rounds, c.warmup_rounds, c.point_reads, c.hot_keys, c.scans, c.scan_len,
        (crate::engines::riverbed::BATCHES_PER_EPOCH as usize * c.batch).min(c.store_keys as usize)
    );
    engines_section(r, s);
    let names: Vec<&str> = r.engines.iter().map(|e| e.name).collect();
    let _ = writeln!(s, "### Results (median of {} round(s))\n", c.rounds);
    let mut head = "| workload | unit |".to_string();
    let mut rule = "|---|---|".to_string();
    for n in &names {
        let _ = write!(head, " {n} |");
        rule.push_str("---:|");
    }
    for n in names.iter().skip(1) {
        let _ = write!(head, " Riverbed / {n} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for &w in WORKLOADS {
        let mut row = format!("| {} | {} |", w.name(), w.unit());
        let ours = rate_of(&r.store_summary, "Riverbed", w);
        for n in &names {
            let v = rate_of(&r.store_summary, n, w);
            let _ = write!(row, " {} |", v.map_or("—".into(), si));
        }
        for n in names.iter().skip(1) {
            let ratio = match (ours, rate_of(&r.store_summary, n, w)) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
                _ => "—".into(),
            };
            let _ = write!(row, " {ratio} |");
        }
        let _ = writeln!(s, "{row}");
    }
    spread_section(r, &names, s);
    let _ = writeln!(s, "\n![store comparison]({STORE_CHART})\n");
    let _ = writeln!(s, "Bytes on disk after the workload (median; MB):\n");
    let _ = writeln!(s, "| engine | after sequential_fill | after random_fill | after overwrite | after delete_range |\n|---|---:|---:|---:|---:|");
    for n in &names {
        let cell = |w| {
            r.store_summary
                .iter()
                .find(|x| x.engine == *n && x.workload == w)
                .and_then(|x| x.disk_bytes)
                .map_or("—".into(), mb)
        };
        use crate::compare::Workload::*;
        let _ = writeln!(
            s,
            "| {n} | {} | {} | {} | {} |",
            cell(SequentialFill),
            cell(RandomFill),
            cell(Overwrite),
            cell(DeleteRange)
        );
    }
    let _ = writeln!(s);
}

/// The engines' settings side by side, then what still differs and how
/// each workload maps onto each engine.
fn engines_section(r: &Results, s: &mut String) {
    let b = &r.config.budget;
    let _ = writeln!(s, "### Engines and settings\n");
    let _ = writeln!(
        s,
        "Every engine gets the same budget: block cache {}, write buffers {}, bloom filters of {} bits/key, {} data blocks, zstd level {}, {} background threads. Side by side, what each runs with:\n",
        Budget::mib(b.block_cache_bytes),
        b.write_buffer(),
        b.bloom_bits_per_key,
        Budget::mib(b.block_bytes),
        b.zstd_level,
        b.background_threads
    );
    let mut head = "| setting |".to_string();
    let mut rule = "|---|".to_string();
    for e in &r.engines {
        let _ = write!(head, " {} {} |", e.name, e.version);
        rule.push_str("---|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    for (i, row) in SETTING_ROWS.iter().enumerate() {
        let mut line = format!("| {row} |");
        for e in &r.engines {
            let _ = write!(line, " {} |", e.settings.get(i).map_or("—", String::as_str));
        }
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s, "\nWhat the budget does not make equal, and why:\n");
    for e in &r.engines {
        for d in &e.differences {
            let _ = writeln!(s, "- **{}**: {d}", e.name);
        }
    }
    let _ = writeln!(s, "\nHow the workloads map onto each engine:\n");
    for e in &r.engines {
        let _ = writeln!(s, "- **{}**: {}", e.name, e.notes.join("; "));
    }
    let _ = writeln!(s);
    for (name, why) in &r.engines_missing {
        let _ = writeln!(s, "**{name}**: {why}.\n");
    }
}

/// How far the rounds lie apart per cell, with a warning where they
/// disagree enough that the cell's ratios mean little.
fn spread_section(r: &Results, names: &[&str], s: &mut String) {
    let rounds = r.config.rounds;
    if rounds < 2 {
        let _ = writeln!(
            s,
            "\n_One round only: no spread to report; ratios may carry run-to-run noise._"
        );
        return;
    }
    let _ = writeln!(
        s,
        "\nSpread over the {rounds} rounds, `(max − min) / median` of each cell's rates (⚠ above {:.0}%):\n",
        WIDE_SPREAD * 100.0
    );
    let mut head = "| workload |".to_string();
    let mut rule = "|---|".to_string();
    for n in names {
        let _ = write!(head, " {n} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(s, "{head}\n{rule}");
    let mut wide = Vec::new();
    for &w in WORKLOADS {
        let mut row = format!("| {} |", w.name());
        for n in names {
            let cell = r
                .store_summary
                .iter()
                .find(|x| x.engine == *n && x.workload == w);
            let text = match cell.and_then(|c| c.spread.map(|sp| (c, sp))) {
                Some((c, sp)) => {
                    if c.is_wide() {
                        wide.push(format!("{n} {}", w.name()));
                        format!("⚠ {:.0}%", sp * 100.0)
                    } else {
                        format!("{:.0}%", sp * 100.0)
                    }
                }
                None => "—".into(),
            };
            let _ = write!(row, " {text} |");
        }
        let _ = writeln!(s, "{row}");
    }
    if !wide.is_empty() {
        let _ = writeln!(
            s,
            "\n**Warning:** the rounds of {} cell(s) disagree by more than {:.0}% ({}): their medians, and the ratios built on them, are not repeatable at this size. Rerun with more `--rounds` on a quiet machine before quoting them.",
            wide.len(),
            WIDE_SPREAD * 100.0,
            wide.join(", ")
        );
    }
}

fn goals_section(r: &Results, s: &mut String) {
    let _ = writeln!(s, "## Goals\n");
    if !r.config.wants(Section::Store) {
        return not_run(s, "store");
    }
    let _ = writeln!(
        s,
        "Ratios of medians from this one run (ours over theirs; higher is better for us).\n"
    );
    let _ = writeln!(
        s,
        "| against | workload | target | measured | verdict |\n|---|---|---:|---:|---|"
    );
    for g in &r.goals {
        let _ = writeln!(
            s,
            "| {} | {} | ≥ {:.1}× | {} | {} |",
            g.against,
            g.workload.name(),
            g.target,
            g.ratio.map_or("—".into(), |x| format!("{x:.2}×")),
            g.verdict()
        );
    }
    let _ = writeln!(s);
}

fn nexmark_section(r: &Results, s: &mut String) {
    let _ = writeln!(s, "## Nexmark\n");
    if !r.config.wants(Section::Nexmark) {
        return not_run(s, "nexmark");
    }
    let _ = writeln!(
        s,
        "Every query on generated events (default generator), parallelism {}, state in a Riverbed store on a local directory; each query in its own child process. Cores = CPU time / wall time; throughput per core = events / CPU seconds.\n",
        r.config.parallelism
    );
    let _ = writeln!(s, "| query | events | changelog rows | final rows | time (s) | cores | throughput/core |\n|---|---:|---:|---:|---:|---:|---:|");
    for q in &r.nexmark {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {:.2} | {:.2} | {}/s |",
            q.query,
            q.events,
            q.changelog_rows,
            q.final_rows.map_or(String::new(), |n| n.to_string()),
            q.wall,
            q.cores(),
            si(q.throughput_per_core())
        );
    }
    for (q, why) in &r.nexmark_skipped {
        let _ = writeln!(s, "| {q} | — | — | — | — | — | {why} |");
    }
    let _ = writeln!(s, "\n![nexmark throughput per core]({NEXMARK_CHART})\n");
}

fn resource_section(r: &Results, s: &mut String) {
    let _ = writeln!(s, "## Resource use\n");
    if !r.config.wants(Section::Nexmark) {
        return not_run(s, "nexmark");
    }
    let _ = writeln!(s, "Per Nexmark query: the peak RSS of its own process (VmHWM; store and workers share the process in the embedded deployment, and the event generator runs in it too) and the store's bytes to and from object storage.\n");
    let _ = writeln!(s, "| query | peak RSS (MB) | store bytes written (MB) | store bytes read (MB) | state reads | state writes |\n|---|---:|---:|---:|---:|---:|");
    for q in &r.nexmark {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            q.query,
            mb(q.peak_rss_bytes),
            mb(q.store_bytes_written),
            mb(q.store_bytes_read),
            q.state_reads,
            q.state_writes
        );
    }
    let _ = writeln!(s, "\n![resource use]({RESOURCE_CHART})\n");
}

fn scale_section(r: &Results, s: &mut String) {
    let _ = writeln!(s, "## Store cost vs state size\n");
    if !r.config.wants(Section::Scale) {
        return not_run(s, "scale");
    }
    let _ = writeln!(s, "Our store alone, a fresh store per size: scattered batched writes then settle; uniform point reads; scans of {} entries; bytes in the object store directory and bytes written to it; checkpoint = commit of one epoch of overwrites (a tenth of the keys, at most 100,000); recovery = reopen the committed state and read a key. Each point is a map of named measures, so rescale and restore times join this table when those features exist.\n", r.config.scan_len);
    let _ = writeln!(s, "| state (MB) | keys | write keys/s | gets/s | scan entries/s | stored (MB) | written (MB) | checkpoint (s) | recovery (s) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &r.scale {
        let m = |k: &str| p.measures.get(k).copied().unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {:.3} | {:.3} |",
            mb(p.state_bytes),
            p.keys,
            si(m(scale::WRITE_KEYS_PER_SEC)),
            si(m(scale::GET_PER_SEC)),
            si(m(scale::SCAN_ENTRIES_PER_SEC)),
            mb(m(scale::STORED_BYTES) as u64),
            mb(m(scale::WRITTEN_BYTES) as u64),
            m(scale::CHECKPOINT_SECS),
            m(scale::RECOVERY_SECS)
        );
    }
    let _ = writeln!(s, "\n![store cost vs state size]({SCALE_CHART})\n");
}

fn checkpoint_section(r: &Results, s: &mut String) {
    use crate::checkpoints::Recovery;
    let _ = writeln!(s, "## Checkpoints and recovery\n");
    if !r.config.wants(Section::Checkpoints) {
        return not_run(s, "checkpoints");
    }
    let c = &r.checkpoints;
    let _ = writeln!(s, "q9 and q20 on generated events at growing counts, parallelism {}, a checkpoint every second, state in a store on a local directory. Duration = barrier injected at the sources to the checkpoint's manifest durable, of which commit = the store sealing the epoch and writing its files and manifest (the rest is the operators shipping their dirty state, which waits when the store stalls writes for compaction); dirty = bytes the operators shipped for it; written = bytes of the files the checkpoint has that the previous one did not (flushed state and compaction outputs); state = the store's files after the run. Recovery: the same run killed with SIGKILL after 60% of its time (once it has a checkpoint), then `--resume`: time from the resumed process's start (the kernel's record of it) to its first output row.\n", r.config.parallelism);
    let _ = writeln!(s, "| query | events | state (MB) | checkpoints | p50 (ms) | p99 (ms) | max (ms) | commit p99 (ms) | dirty / checkpoint (MB) | written / checkpoint (MB) | written / dirty | killed at (s) | resumed from | first output after resume (ms) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &c.sizes {
        let (killed, from, first) = match &p.recovery {
            Recovery::Measured {
                killed_after_s,
                from_epoch,
                first_output_ms,
                ..
            } => (
                format!("{killed_after_s:.1}"),
                format!("checkpoint {from_epoch}"),
                first_output_ms.map_or("no output".into(), |m| m.to_string()),
            ),
            Recovery::NotMeasured(why) => ("—".into(), "—".into(), why.clone()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {killed} | {from} | {first} |",
            p.query,
            p.events,
            mb(p.state_bytes),
            p.checkpoints,
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            p.commit_p99_ms,
            mb(p.dirty_bytes_mean),
            mb(p.written_bytes_mean),
            p.written_bytes_mean as f64 / p.dirty_bytes_mean.max(1) as f64
        );
    }
    // Growth between the smallest and largest size of each query.
    for q in ["q9", "q20"] {
        let pts: Vec<_> = c.sizes.iter().filter(|p| p.query == q).collect();
        if let (Some(a), Some(b)) = (pts.first(), pts.last()) {
            if a.events < b.events {
                let first = |p: &crate::checkpoints::SizePoint| match p.recovery {
                    Recovery::Measured {
                        first_output_ms: Some(m),
                        ..
                    } => Some(m as f64),
                    _ => None,
                };
                let _ = writeln!(
                    s,
                    "\n{q}: state ×{:.1} from {} to {} events; p99 checkpoint ×{:.2}; recovery ×{}.",
                    b.state_bytes as f64 / a.state_bytes.max(1) as f64,
                    a.events,
                    b.events,
                    b.p99_ms as f64 / a.p99_ms.max(1) as f64,
                    match (first(a), first(b)) {
                        (Some(x), Some(y)) => format!("{:.2}", y / x.max(1.0)),
                        _ => "— (not measured at both sizes)".into(),
                    }
                );
            }
        }
    }
    if c.intervals.is_empty() {
        let _ = writeln!(
            s,
            "\n_What 1 s checkpoints cost in throughput was not measured in this report (`--no-throughput-pairs`)._\n"
        );
        return;
    }
    let rounds = c.intervals.first().map_or(1, |p| p.rounds);
    let _ = writeln!(s, "\nWhat 1 s checkpoints cost: every query with a checkpoint each second and with one only at the end, {rounds} round(s) of one run each, back to back (order alternating by round and query). Throughput per core is events per CPU second (the process's user + system time, the store's compaction included); in wall time, events per second. Each cost is the median over the rounds of the round's ratio.\n");
    let _ = writeln!(s, "| query | events | checkpoints | 1 s checkpoints, per core | end only, per core | cost per core | 1 s checkpoints, wall | end only, wall | cost in wall time |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in &c.intervals {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {}/s | {}/s | {:+.1}% | {}/s | {}/s | {:+.1}% |",
            p.query,
            p.events,
            p.checkpoints,
            si(p.every_second),
            si(p.end_only),
            100.0 * p.cost(),
            si(p.every_second_wall),
            si(p.end_only_wall),
            100.0 * p.cost_wall()
        );
    }
    let _ = writeln!(s);
}

fn micro_section(s: &mut String) {
    let _ = writeln!(s, "## Micro-benchmarks\n");
    let _ = writeln!(s, "Criterion benchmarks of hot paths, run separately (they take minutes each and report with confidence intervals in `target/criterion/`):\n");
    let _ = writeln!(s, "| command | benchmarks (group/name) |\n|---|---|");
    let rows = [
        ("cargo bench -p riverbed-state-store --bench engine", "memtable_insert/batch_of_1000_puts, write_batched/fill_1m_random_puts_with_flush_and_compaction, point_get/cache_hit_1000_gets, point_get/cache_miss_1000_gets, multi_get/100_cached_keys_over_{40_l0_files,compacted_4m}, scan/100000_entries_cached, bloom_probe/1000_probes_100k_key_filter, bloom_build/{500000,8000000}_keys, compaction/l0_to_l1_40_overlapping_files_of_40k"),
        ("cargo bench -p riverbed-state-store --bench sst_block", "sst_block_decode/decode_and_iterate_16k_block, sst_block_decode/check_frame_and_unzstd_16k_block, sst_block_decode/seek_100_keys_in_16k_block, block_codec/{compress,decompress}_16k_block_{lz4,zstd}, key_encoding/full_key_1000_keys, key_encoding/encode_full_key_into_reused_buffer_1000_keys, key_encoding/decode_full_key_1000_keys"),
        ("cargo bench -p riverbed-compute --bench exchange", "batch_exchange/key_by_exchange_200k_records_to_blackhole"),
        ("cargo bench -p riverbed-compute --bench pipeline", "whole jobs: stateless/map_filter_hash_exchange, keyed aggregates, windows, joins"),
    ];
    for (cmd, what) in rows {
        let _ = writeln!(s, "| `{cmd}` | {what} |");
    }
    let _ = writeln!(s);
}
