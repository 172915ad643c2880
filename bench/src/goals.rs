//! The goals, as ratios of medians measured in one run: our store
//! at least 1.5× RocksDB on batched random writes and at least 1× on cached
//! point reads and scans; at least 5× SlateDB on the same three.

use serde::Serialize;

use crate::compare::{rate_of, Summary, Workload};

/// One goal and how the run did.
#[derive(Clone, Debug, Serialize)]
pub struct Goal {
    pub against: &'static str,
    pub workload: Workload,
    /// Our rate over theirs, at least this.
    pub target: f64,
    /// Our rate over theirs as measured; `None` when an engine was not run.
    pub ratio: Option<f64>,
}

impl Goal {
    pub fn met(&self) -> Option<bool> {
        self.ratio.map(|r| r >= self.target)
    }

    /// How the report states the outcome.
    pub fn verdict(&self) -> String {
        match self.ratio {
            None => format!("not measured ({} not in this build)", self.against),
            Some(r) if r >= self.target => "met".into(),
            Some(r) => format!(
                "MISSED by {:.0}% ({:.2}× of the {:.1}× target)",
                (1.0 - r / self.target) * 100.0,
                r,
                self.target
            ),
        }
    }
}

/// The goals judged from `summaries` (medians of one run).
pub fn judge(summaries: &[Summary]) -> Vec<Goal> {
    const GOALS: &[(&str, Workload, f64)] = &[
        ("RocksDB", Workload::RandomFill, 1.5),
        ("RocksDB", Workload::PointReadHot, 1.0),
        ("RocksDB", Workload::RangeScan, 1.0),
        ("SlateDB", Workload::RandomFill, 5.0),
        ("SlateDB", Workload::PointReadHot, 5.0),
        ("SlateDB", Workload::RangeScan, 5.0),
    ];
    GOALS
        .iter()
        .map(|&(against, workload, target)| Goal {
            against,
            workload,
            target,
            ratio: match (
                rate_of(summaries, "Riverbed", workload),
                rate_of(summaries, against, workload),
            ) {
                (Some(ours), Some(theirs)) if theirs > 0.0 => Some(ours / theirs),
                _ => None,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(engine: &'static str, workload: Workload, r: f64) -> Summary {
        Summary {
            engine,
            workload,
            ops_per_sec: r,
            secs: 1.0,
            disk_bytes: None,
            rounds: 1,
            spread: None,
        }
    }

    #[test]
    fn ratios_and_verdicts() {
        let sums = vec![
            s("Riverbed", Workload::RandomFill, 300.0),
            s("RocksDB", Workload::RandomFill, 100.0),
            s("Riverbed", Workload::PointReadHot, 80.0),
            s("RocksDB", Workload::PointReadHot, 100.0),
        ];
        let g = judge(&sums);
        assert_eq!(g[0].ratio, Some(3.0));
        assert_eq!(g[0].verdict(), "met");
        assert_eq!(g[1].met(), Some(false));
        assert!(
            g[1].verdict().starts_with("MISSED by 20%"),
            "{}",
            g[1].verdict()
        );
        assert_eq!(g[3].met(), None);
        assert!(g[3].verdict().starts_with("not measured"));
    }
}
