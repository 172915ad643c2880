//! What a run reports: per query the suite's summary columns (events,
//! cores = process CPU time / wall time, time, cores × time, throughput per
//! core), as a table for people and as JSON for tools.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// The measurements of one query run.
#[derive(Clone, Debug, Serialize)]
pub struct QueryReport {
    pub query: String,
    /// Events the source read.
    pub events: u64,
    /// Changelog rows the sink received (inserts, updates, deletes). For
    /// updating queries it varies between identical runs, with mini-batching.
    pub changelog_rows: u64,
    /// Rows of the final table the changelog builds, for updating queries
    /// (for insert-only ones it is `changelog_rows`).
    pub final_rows: Option<u64>,
    #[serde(serialize_with = "secs")]
    pub wall: Duration,
    /// CPU time of the whole process (user + system) during the run.
    #[serde(serialize_with = "secs")]
    pub cpu: Duration,
    pub state_reads: u64,
    pub state_writes: u64,
    /// Bytes the store wrote to object storage (flushes and compactions).
    pub store_bytes_written: u64,
    /// Bytes the store read back from object storage for compactions.
    pub store_bytes_read: u64,
    /// Peak resident memory of the process so far, in bytes.
    pub peak_rss_bytes: u64,
    /// Milliseconds from the start of the process to the first row that
    /// reached the sink (for a resumed run: its recovery time as a user
    /// sees it). `None` when no row came out.
    pub first_output_ms: Option<u64>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl QueryReport {
    /// CPU time over wall time: how many cores the run kept busy.
    pub fn cores(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// Events per second of CPU time (the suite's "throughput / cores").
    pub fn throughput_per_core(&self) -> f64 {
        self.events as f64 / self.cpu.as_secs_f64().max(1e-9)
    }

    /// Events per second of wall time.
    pub fn throughput(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// The width of each column: its widest cell or its header.
fn column_widths<R: AsRef<[String]>>(header: &[&str], rows: &[R]) -> Vec<usize> {
    (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.as_ref()[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1_234_567.0` as `1.23 M/s`.
fn per_second(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M/s", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} K/s", v / 1e3)
    } else {
        format!("{v:.0} /s")
    }
}

/// The summary table of `reports`, one line per query, like the suite's.
pub fn table(reports: &[QueryReport]) -> String {
    let header = [
        "Nexmark Query",
        "Events Num",
        "Cores",
        "Time(s)",
        "Cores * Time(s)",
        "Throughput/Cores",
        "Changelog rows",
        "Final rows",
    ];
    let rows: Vec<[String; 8]> = reports
        .iter()
        .map(|r| {
            [
                r.query.clone(),
                grouped(r.events),
                format!("{:.2}", r.cores()),
                format!("{:.3}", r.wall.as_secs_f64()),
                format!("{:.3}", r.cpu.as_secs_f64()),
                per_second(r.throughput_per_core()),
                grouped(r.changelog_rows),
                r.final_rows.map(grouped).unwrap_or_default(),
            ]
        })
        .collect();
    let widths = column_widths(&header, &rows);
    let rule: String = widths.iter().fold(String::from("+"), |mut s, w| {
        s.push_str(&"-".repeat(w + 2));
        s.push('+');
        s
    });
    let line = |cells: &[&str]| {
        let mut s = String::from("|");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(s, " {c:<w$} |");
        }
        s
    };
    let mut out = String::new();
    let _ = writeln!(out, "{rule}");
    let _ = writeln!(out, "{}", line(&header));
    let _ = writeln!(out, "{rule}");
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        let _ = writeln!(out, "{}", line(&cells));
    }
    if reports.len() > 1 {
        let events: u64 = reports.iter().map(|r| r.events).sum();
        let wall: f64 = reports.iter().map(|r| r.wall.as_secs_f64()).sum();
        let cpu: f64 = reports.iter().map(|r| r.cpu.as_secs_f64()).sum();
        let total = [
            "Total".to_string(),
            grouped(events),
            format!("{:.2}", cpu / wall.max(1e-9)),
            format!("{wall:.3}"),
            format!("{cpu:.3}"),
            per_second(events as f64 / cpu.max(1e-9)),
            String::new(),
            String::new(),
        ];
        let cells: Vec<&str> = total.iter().map(String::as_str).collect();
        let _ = writeln!(out, "{}", line(&cells));
    }
    let _ = write!(out, "{rule}");
    out
}

/// One checkpoint as JSON, with the query it belongs to.
pub fn checkpoint_json(query: &str, c: &riverbed_state_store::CheckpointMeta) -> serde_json::Value {
    serde_json::json!({
        "query": query,
        "job": c.job,
        "epoch": c.epoch.0,
        "finished": c.finished,
        "parallelism": c.parallelism,
        "wall_time_ms": c.wall_time_ms,
        "watermark": c.watermark,
        "duration_ms": c.stats.duration_ms,
        "commit_ms": c.stats.commit_ms,
        "dirty_bytes": c.stats.dirty_bytes,
        "bytes_written": c.stats.bytes_written,
        "files_added": c.stats.files_added,
        "alignment_ms": c.stats.alignment_ms.iter().map(|(op, ms)| serde_json::json!({"operator": op, "ms": ms})).collect::<Vec<_>>(),
        "sources": c.positions.iter().map(|s| serde_json::json!({"source": s.source, "subtasks": s.subtasks.len()})).collect::<Vec<_>>(),
    })
}

/// The checkpoints of every query's store, one line each, like the summary.
pub fn checkpoint_table(
    found: &[(
        String,
        std::path::PathBuf,
        Vec<riverbed_state_store::CheckpointMeta>,
    )],
) -> String {
    if found.iter().all(|(_, _, c)| c.is_empty()) {
        return "no checkpoints".into();
    }
    let header = [
        "Query",
        "Epoch",
        "Finished",
        "Time (UTC)",
        "Duration(ms)",
        "Alignment(ms)",
        "Commit(ms)",
        "Dirty",
        "Written",
        "Files",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (query, _, cps) in found {
        for c in cps {
            let time = crate::timestamp::timestamp_to_string(c.wall_time_ms as i64)
                .unwrap_or_else(|| c.wall_time_ms.to_string());
            rows.push(vec![
                query.clone(),
                c.epoch.0.to_string(),
                if c.finished { "yes" } else { "no" }.into(),
                time,
                c.stats.duration_ms.to_string(),
                longest_alignment(&c.stats.alignment_ms),
                c.stats.commit_ms.to_string(),
                bytes(c.stats.dirty_bytes),
                bytes(c.stats.bytes_written),
                c.stats.files_added.to_string(),
            ]);
        }
    }
    let widths = column_widths(&header, &rows);
    let line = |cells: &[&str]| {
        let mut s = String::from("|");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(s, " {c:<w$} |");
        }
        s
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", line(&header));
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        let _ = writeln!(out, "{}", line(&cells));
    }
    out.trim_end().to_string()
}

/// `1234567` bytes as `1.2 MB`.
/// The operator that waited longest for barrier alignment, `op=ms`, or `-`
/// when no operator merges several inputs.
fn longest_alignment(ops: &[(String, u64)]) -> String {
    ops.iter()
        .max_by_key(|(_, ms)| *ms)
        .map_or_else(|| "-".into(), |(op, ms)| format!("{op}={ms}"))
}

fn bytes(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1} MB", n as f64 / 1e6)
    } else if n >= 1_000 {
        format!("{:.1} KB", n as f64 / 1e3)
    } else {
        format!("{n} B")
    }
}

fn rusage() -> Option<libc::rusage> {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    (unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } == 0).then_some(usage)
}

/// Peak resident set size of this process so far, in bytes: `VmHWM` of
/// `/proc/self/status` where there is one. getrusage's `ru_maxrss` is the
/// fallback only: on Linux it survives `execve`, so a runner started by a
/// large process (a benchmark harness) would report its parent's peak.
pub fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_vm_hwm(&s))
        // ru_maxrss is in KiB on Linux.
        .unwrap_or_else(|| rusage().map_or(0, |u| u.ru_maxrss as u64 * 1024))
}

/// `VmHWM:   1234 kB` in a `/proc/<pid>/status` text, in bytes.
fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// How long this process has run: now minus the start time the kernel
/// recorded for it (`/proc/self/stat`, in clock ticks since boot, against
/// `/proc/uptime`), so it includes everything before `main`. Both have a
/// resolution of 10 ms. `None` where `/proc` does not say.
pub fn process_age() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    parse_process_age(&stat, &uptime, ticks_per_s)
}

/// The age from a `/proc/<pid>/stat` text (field 22, `starttime`, counted
/// after the command name, which may hold spaces and parentheses) and a
/// `/proc/uptime` text.
fn parse_process_age(stat: &str, uptime: &str, ticks_per_s: i64) -> Option<Duration> {
    if ticks_per_s <= 0 {
        return None;
    }
    let after_comm = stat.rsplit_once(')')?.1;
    // Fields after the name start at field 3 (`state`).
    let start_ticks: u64 = after_comm.split_whitespace().nth(22 - 3)?.parse().ok()?;
    let up: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    let started = start_ticks as f64 / ticks_per_s as f64;
    Some(Duration::from_secs_f64((up - started).max(0.0)))
}

/// CPU time (user + system) this process has used so far.
pub fn cpu_time() -> Duration {
    let Some(usage) = rusage() else {
        return Duration::ZERO;
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_age_reads_the_start_after_the_command_name() {
        // A name with a space and a parenthesis; starttime is 1500 ticks.
        let stat = "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    3 1 0 0 20 0 1 0 1500 10000000 300";
        let age = parse_process_age(stat, "17.25 30.00", 100).unwrap();
        assert_eq!(age, Duration::from_millis(2_250));
        assert_eq!(parse_process_age(stat, "17.25 30.00", 0), None);
        assert_eq!(parse_process_age("garbage", "17.25", 100), None);
        // This process: it has run for some time, and not for a day.
        let mine = process_age().expect("Linux has /proc");
        assert!(mine < Duration::from_secs(86_400), "{mine:?}");
    }

    fn report(q: &str, events: u64, wall: f64, cpu: f64) -> QueryReport {
        QueryReport {
            query: q.into(),
            events,
            changelog_rows: 5,
            final_rows: (q == "q5").then_some(3),
            wall: Duration::from_secs_f64(wall),
            cpu: Duration::from_secs_f64(cpu),
            state_reads: 0,
            state_writes: 0,
            store_bytes_written: 0,
            store_bytes_read: 0,
            peak_rss_bytes: 0,
            first_output_ms: None,
        }
    }

    #[test]
    fn table_shows_cores_and_throughput_per_core() {
        let t = table(&[
            report("q0", 10_000_000, 2.0, 4.0),
            report("q5", 1000, 1.0, 0.5),
        ]);
        assert!(t.contains("| q0 "), "{t}");
        assert!(t.contains("10,000,000"), "{t}");
        assert!(t.contains("2.00"), "{t}");
        assert!(t.contains("2.50 M/s"), "{t}");
        assert!(t.contains("2.0 K/s"), "{t}");
        assert!(t.contains("Total"), "{t}");
        assert!(
            t.contains("Changelog rows") && t.contains("Final rows"),
            "{t}"
        );
        assert!(
            t.lines()
                .any(|l| l.starts_with("| q5 ") && l.contains("| 3 ")),
            "{t}"
        );
    }

    #[test]
    fn vm_hwm_is_parsed_in_bytes() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1234 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        assert!(peak_rss() > 0);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_time();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_time() > before);
    }
}
