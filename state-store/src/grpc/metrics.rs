//! The service's own metrics: requests and their latency per method, in
//! Prometheus' text format beside every open namespace's store metrics.
//!
//! ```text
//! riverbed_store_requests_total{method="write",outcome="ok|error"}
//! riverbed_store_request_duration_seconds_bucket{method="write",le="0.001"} …
//! riverbed_store_request_duration_seconds_sum / _count{method="write"}
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Every method of the service, in the order they are printed.
pub const METHODS: [&str; 16] = [
    "write",
    "multi_get",
    "scan",
    "read_page",
    "register_table",
    "commit",
    "rollback",
    "status",
    "list_checkpoints",
    "drop_namespace",
    "export_savepoint",
    "restore_savepoint",
    "query",
    "list_tables",
    "health",
    "http_query",
];

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Default)]
struct MethodStats {
    ok: AtomicU64,
    errors: AtomicU64,
    /// Counts per bucket (not cumulative), the last for +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

/// When a request began: its latency is a statistic, never a decision,
/// so wall time is fine here.
#[allow(clippy::disallowed_methods)]
pub fn started() -> std::time::Instant {
    std::time::Instant::now()
}

/// Request counters of the service.
pub struct RequestMetrics {
    methods: Vec<MethodStats>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            methods: METHODS.iter().map(|_| MethodStats::default()).collect(),
        }
    }
}

impl RequestMetrics {
    /// Records one request of `method` (one of [`METHODS`]).
    pub fn observe(&self, method: &str, took: Duration, ok: bool) {
        let Some(i) = METHODS.iter().position(|m| *m == method) else {
            debug_assert!(false, "unknown method {method}");
            return;
        };
        let m = &self.methods[i];
        if ok { &m.ok } else { &m.errors }.fetch_add(1, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let b = BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(BUCKETS.len());
        m.buckets[b].fetch_add(1, Ordering::Relaxed);
        m.sum_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The counters in Prometheus' text format.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP riverbed_store_requests_total Requests answered, by method and outcome.\n\
             # TYPE riverbed_store_requests_total counter"
        );
        for (name, m) in METHODS.iter().zip(&self.methods) {
            for (outcome, c) in [("ok", &m.ok), ("error", &m.errors)] {
                let _ = writeln!(
                    out,
                    "riverbed_store_requests_total{{method=\"{name}\",outcome=\"{outcome}\"}} {}",
                    g(c)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP riverbed_store_request_duration_seconds Time to answer a request, by method.\n\
             # TYPE riverbed_store_request_duration_seconds histogram"
        );
        for (name, m) in METHODS.iter().zip(&self.methods) {
            let mut cumulative = 0;
            for (i, c) in m.buckets.iter().enumerate() {
                cumulative += g(c);
                let le = BUCKETS
                    .get(i)
                    .map(|b| b.to_string())
                    .unwrap_or_else(|| "+Inf".into());
                let _ = writeln!(
                    out,
                    "riverbed_store_request_duration_seconds_bucket{{method=\"{name}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "riverbed_store_request_duration_seconds_sum{{method=\"{name}\"}} {}",
                g(&m.sum_nanos) as f64 / 1e9
            );
            let _ = writeln!(
                out,
                "riverbed_store_request_duration_seconds_count{{method=\"{name}\"}} {cumulative}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_in_their_bucket_and_outcome() {
        let m = RequestMetrics::default();
        m.observe("write", Duration::from_micros(300), true);
        m.observe("write", Duration::from_millis(2), false);
        m.observe("query", Duration::from_secs(60), true);
        let text = m.to_prometheus();
        for line in [
            "riverbed_store_requests_total{method=\"write\",outcome=\"ok\"} 1",
            "riverbed_store_requests_total{method=\"write\",outcome=\"error\"} 1",
            "riverbed_store_request_duration_seconds_bucket{method=\"write\",le=\"0.00025\"} 0",
            "riverbed_store_request_duration_seconds_bucket{method=\"write\",le=\"0.0005\"} 1",
            "riverbed_store_request_duration_seconds_bucket{method=\"write\",le=\"0.0025\"} 2",
            "riverbed_store_request_duration_seconds_bucket{method=\"query\",le=\"30\"} 0",
            "riverbed_store_request_duration_seconds_bucket{method=\"query\",le=\"+Inf\"} 1",
            "riverbed_store_request_duration_seconds_count{method=\"write\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
