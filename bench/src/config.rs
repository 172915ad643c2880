//! What one report run measures and at which sizes. Three presets: `full`
//! (the default, minutes to an hour on two cores), `quick` (a few minutes)
//! and `tiny` (seconds, even in a debug build: the test's size).

use serde::Serialize;

/// The parts of the report a run can select with `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Section {
    /// Our store beside RocksDB and SlateDB.
    Store,
    /// Every Nexmark query, with throughput per core and resource use.
    Nexmark,
    /// Our store's cost at growing state sizes.
    Scale,
    /// Checkpoint cost and recovery as state grows; checkpoints' cost in
    /// throughput.
    Checkpoints,
}

impl Section {
    pub const ALL: [Section; 4] = [
        Section::Store,
        Section::Nexmark,
        Section::Scale,
        Section::Checkpoints,
    ];

    pub fn parse(s: &str) -> Option<Section> {
        match s.trim() {
            "store" => Some(Section::Store),
            "nexmark" => Some(Section::Nexmark),
            "scale" => Some(Section::Scale),
            "checkpoints" => Some(Section::Checkpoints),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Full,
    Quick,
    Tiny,
}

/// Sizes and repetitions of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunConfig {
    pub mode: Mode,
    pub sections: Vec<Section>,
    /// Keys of the store comparison's data set.
    pub store_keys: u64,
    /// Keys per write batch (as the compute layer ships them).
    pub batch: usize,
    /// Point reads per read workload.
    pub point_reads: u64,
    /// Range scans, each of `scan_len` entries.
    pub scans: u64,
    pub scan_len: usize,
    /// Hot keys of the cached point-read workload.
    pub hot_keys: u64,
    /// Rounds of the interleaved comparison (A B C A B C ...): the report
    /// shows the median, so 3 rounds damp one disturbed run.
    pub rounds: usize,
    /// Rounds run first and not counted (see `compare::run_all`).
    pub warmup_rounds: usize,
    /// State sizes of the scale chart, in bytes of key + value.
    pub scale_bytes: Vec<u64>,
    /// Events per Nexmark query.
    pub nexmark_events: u64,
    /// Events for q23, whose output is bids × auctions and so grows much
    /// faster than the input; `None` skips it.
    pub q23_events: Option<u64>,
    pub parallelism: usize,
    /// Per query of the checkpoint section, the event counts it runs at
    /// (chosen for about 1 GB and 10 GB of state in the full mode).
    pub checkpoint_events: Vec<(String, Vec<u64>)>,
    /// Rounds in which the checkpoint section runs every query with 1 s and
    /// with end-only checkpoints (0: not at all).
    pub checkpoint_pair_rounds: usize,
    /// What every engine of the store comparison gets alike.
    pub budget: crate::engines::Budget,
}

/// Events that leave about 1 GB of q9's and q20's state in the store
/// (measured: see the report's checkpoint section for the sizes reached).
const Q9_1GB: u64 = 36_000_000;
const Q20_1GB: u64 = 175_000_000;

const MB: u64 = 1 << 20;
const GB: u64 = 1 << 30;

impl RunConfig {
    pub fn new(mode: Mode) -> Self {
        match mode {
            Mode::Full => RunConfig {
                mode,
                sections: Section::ALL.to_vec(),
                store_keys: 2_000_000,
                batch: 1000,
                point_reads: 500_000,
                scans: 20_000,
                scan_len: 100,
                hot_keys: 1000,
                rounds: 3,
                warmup_rounds: 1,
                scale_bytes: vec![100 * MB, GB, 5 * GB],
                nexmark_events: 10_000_000,
                q23_events: Some(100_000),
                parallelism: 2,
                checkpoint_pair_rounds: 3,
                checkpoint_events: vec![
                    ("q9".into(), vec![Q9_1GB, 10 * Q9_1GB]),
                    ("q20".into(), vec![Q20_1GB, 10 * Q20_1GB]),
                ],
                budget: crate::engines::Budget::default(),
            },
            Mode::Quick => RunConfig {
                mode,
                sections: Section::ALL.to_vec(),
                store_keys: 200_000,
                batch: 1000,
                point_reads: 100_000,
                scans: 5000,
                scan_len: 100,
                hot_keys: 1000,
                rounds: 3,
                warmup_rounds: 1,
                scale_bytes: vec![4 * MB, 16 * MB, 64 * MB],
                nexmark_events: 200_000,
                q23_events: None,
                parallelism: 2,
                checkpoint_pair_rounds: 3,
                checkpoint_events: vec![
                    ("q9".into(), vec![2_000_000, 8_000_000]),
                    ("q20".into(), vec![2_000_000, 8_000_000]),
                ],
                budget: crate::engines::Budget::default(),
            },
            Mode::Tiny => RunConfig {
                mode,
                sections: Section::ALL.to_vec(),
                store_keys: 10_000,
                batch: 1000,
                point_reads: 5000,
                scans: 200,
                scan_len: 100,
                hot_keys: 100,
                rounds: 1,
                warmup_rounds: 0,
                scale_bytes: vec![MB, 2 * MB],
                nexmark_events: 2000,
                q23_events: None,
                parallelism: 2,
                checkpoint_pair_rounds: 1,
                checkpoint_events: vec![("q9".into(), vec![2000]), ("q20".into(), vec![2000])],
                budget: crate::engines::Budget::default(),
            },
        }
    }

    pub fn wants(&self, s: Section) -> bool {
        self.sections.contains(&s)
    }
}
