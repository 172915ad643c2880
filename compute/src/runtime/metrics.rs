//! Per-operator counters, shared by the operator's subtasks and read by the
//! job report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use riverbed_state_store::Epoch;

#[derive(Debug, Default)]
pub struct OperatorCounters {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub late_records: AtomicU64,
    pub state_reads: AtomicU64,
    pub state_writes: AtomicU64,
    pub cache_hits: AtomicU64,
    /// Per barrier epoch, the longest any subtask waited between its first
    /// input's barrier and its last one (milliseconds).
    alignment: Mutex<std::collections::BTreeMap<Epoch, u64>>,
}

impl OperatorCounters {
    #[inline]
    pub fn add_in(&self, n: usize) {
        self.records_in.fetch_add(n as u64, Ordering::Relaxed);
    }
    #[inline]
    pub fn add_out(&self, n: usize) {
        self.records_out.fetch_add(n as u64, Ordering::Relaxed);
    }
    #[inline]
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A subtask aligned barrier `epoch` after waiting `waited`.
    pub fn record_alignment(&self, epoch: Epoch, waited: std::time::Duration) {
        let ms = waited.as_millis() as u64;
        let mut g = self.alignment.lock();
        let slot = g.entry(epoch).or_default();
        *slot = (*slot).max(ms);
    }

    /// The alignment time of `epoch` (`None` if no subtask of this operator
    /// aligned inputs for it), forgetting it and every older epoch.
    fn take_alignment(&self, epoch: Epoch) -> Option<u64> {
        let mut g = self.alignment.lock();
        let got = g.get(&epoch).copied();
        *g = g.split_off(&epoch.next());
        got
    }
}

/// One operator's totals after a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorReport {
    pub name: String,
    pub parallelism: usize,
    pub records_in: u64,
    pub records_out: u64,
    pub late_records: u64,
    pub state_reads: u64,
    pub state_writes: u64,
    pub cache_hits: u64,
}

/// Name, parallelism and counters of one operator.
type Registered = (String, usize, Arc<OperatorCounters>);

/// The operators of a job, in the order they were added.
#[derive(Default, Clone)]
pub struct Registry {
    ops: Arc<Mutex<Vec<Registered>>>,
}

impl Registry {
    pub fn register(&self, name: &str, parallelism: usize) -> Arc<OperatorCounters> {
        let c = Arc::new(OperatorCounters::default());
        self.ops
            .lock()
            .push((name.to_string(), parallelism, c.clone()));
        c
    }

    /// Each operator's alignment time for checkpoint `epoch`, for the
    /// operators whose subtasks merge several inputs.
    pub fn take_alignments(&self, epoch: Epoch) -> Vec<(String, u64)> {
        self.ops
            .lock()
            .iter()
            .filter_map(|(name, _, c)| c.take_alignment(epoch).map(|ms| (name.clone(), ms)))
            .collect()
    }

    pub fn report(&self) -> Vec<OperatorReport> {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.ops
            .lock()
            .iter()
            .map(|(name, p, c)| OperatorReport {
                name: name.clone(),
                parallelism: *p,
                records_in: g(&c.records_in),
                records_out: g(&c.records_out),
                late_records: g(&c.late_records),
                state_reads: g(&c.state_reads),
                state_writes: g(&c.state_writes),
                cache_hits: g(&c.cache_hits),
            })
            .collect()
    }
}
