//! Jobs that fail mid-run and resume from their last checkpoint end with
//! exactly the output of a run that never failed: the state comes back from
//! the store, the sources seek to the checkpointed positions, and what lives
//! only in memory (the timers of session windows, window joins and joins
//! whose rows expire) is rebuilt from the state.
//!
//! The sink is transactional as the runner's file sinks are: a subtask's
//! rows of an epoch are staged at its barrier, durably (here: in a map that
//! outlives the run), and on recovery the epochs after the checkpoint are
//! dropped, the others published.

mod common;

use std::sync::Arc;

use riverbed_compute::{
    Aggregate, DataStream, EmbeddedBackend, Env, Error, JobConfig, Source, Windows,
};
use riverbed_state_store::{Options, Store};

use common::replay::{event_time, events, Input, Staged, StagingSink};
use common::Ev;

/// What a test job is made of.
struct Job<T> {
    build: Build<T>,
    phases: bool,
}

impl<T> Clone for Job<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Job<T> {}

type Build<T> = fn(&Env, Arc<dyn Source<Ev>>, Arc<dyn Source<Ev>>) -> DataStream<T>;

fn config() -> JobConfig {
    JobConfig {
        parallelism: 2,
        batch_size: 16,
        // Barriers every millisecond: many checkpoints before the failure.
        checkpoint_interval: Some(std::time::Duration::from_millis(1)),
        state_cache_entries: 64,
        ..JobConfig::default()
    }
}

/// Runs `build` on the store at `dir`, resuming from its last checkpoint
/// when it has one; the left input fails at `fail_at`.
fn run<T: Send + 'static>(
    dir: &std::path::Path,
    job: Job<T>,
    staged: &Staged<T>,
    fail_at: Option<u64>,
) -> Result<(), Error> {
    common::runtime().block_on(async {
        let mut opts = Options::with_url(dir.to_str().expect("utf-8 path"));
        opts.memtable_bytes = 64 << 10;
        let store = Arc::new(Store::open(opts).await.expect("open store"));
        let mut config = config();
        config.resume = store.latest_checkpoint().filter(|c| !c.finished);
        let env = Env::new(config, Arc::new(EmbeddedBackend::new(store.clone())))
            .expect("valid job config");
        let left: Arc<dyn Source<Ev>> = Arc::new(Input {
            events: Arc::new(events(12_000, 24, 1, job.phases)),
            fail_at,
            store: store.clone(),
        });
        let right: Arc<dyn Source<Ev>> = Arc::new(Input {
            events: Arc::new(events(12_000, 24, 2, job.phases)),
            fail_at: None,
            store: store.clone(),
        });
        let s = staged.clone();
        (job.build)(&env, left, right).sink("sink", move |_| {
            Ok(StagingSink {
                open: Vec::new(),
                staged: s.clone(),
            })
        });
        let result = env.execute().await;
        store.close().await.expect("close store");
        result.map(|_| ())
    })
}

/// How many rows each of the job's tables holds at its last commit.
fn rows_per_table(dir: &std::path::Path) -> Vec<(String, usize)> {
    common::runtime().block_on(async {
        let store = Store::open(Options::with_url(dir.to_str().unwrap()))
            .await
            .unwrap();
        let mut out = Vec::new();
        for (name, id) in store.tables() {
            let (start, end) = riverbed_compute::state::keyed::owned_range(id, (0, u16::MAX));
            let rows = store
                .scan(&start, Some(&end), store.committed_epoch(), usize::MAX)
                .await
                .unwrap();
            out.push((name, rows.len()));
        }
        store.close().await.unwrap();
        out
    })
}

/// A run killed by a failure, then resumed to the end, against one that
/// never failed.
fn fails_and_resumes<T: Ord + Clone + Send + std::fmt::Debug + 'static>(job: Job<T>) -> Outcome<T> {
    let whole: Staged<T> = Default::default();
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), job, &whole, None).expect("uninterrupted run");
    let mut want: Vec<T> = whole.lock().values().flatten().cloned().collect();
    want.sort();
    assert!(!want.is_empty(), "the job produced nothing to compare");

    let staged: Staged<T> = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let err = run(dir.path(), job, &staged, Some(3_000)).expect_err("the injected failure");
    assert!(err.to_string().contains("injected failure"), "{err}");
    // What recovery finds: the last checkpoint, and staged epochs after it
    // rolled back.
    let checkpoint = common::runtime().block_on(async {
        let store = Store::open(Options::with_url(dir.path().to_str().unwrap()))
            .await
            .unwrap();
        let c = store.latest_checkpoint();
        store.close().await.unwrap();
        c
    });
    let checkpoint = checkpoint.expect("a checkpoint before the failure");
    assert!(!checkpoint.finished);
    assert!(
        staged.lock().range(..=checkpoint.epoch).next().is_some(),
        "nothing was committed before the failure, so nothing was restored"
    );
    staged.lock().retain(|e, _| *e <= checkpoint.epoch);
    run(dir.path(), job, &staged, None).expect("resumed run");
    let mut got: Vec<T> = staged.lock().values().flatten().cloned().collect();
    got.sort();
    Outcome {
        want,
        got,
        state: rows_per_table(dir.path()),
    }
}

/// The uninterrupted run's rows, the failed-and-resumed run's rows, and what
/// the latter's tables hold at the end.
struct Outcome<T> {
    want: Vec<T>,
    got: Vec<T>,
    state: Vec<(String, usize)>,
}

impl<T: PartialEq> Outcome<T> {
    fn assert_equal(&self) {
        assert_eq!(self.got.len(), self.want.len(), "rows after recovery");
        assert!(self.got == self.want, "the resumed run's output differs");
    }
}

#[test]
fn a_session_window_fires_its_restored_sessions() {
    fails_and_resumes(Job {
        phases: false,
        build: |env, left, _| {
            env.from_source("left", 2, left, event_time())
                .key_by(|e: &Ev| e.key)
                .session_window("sessions", 40, Aggregate::count, |a, b| *a += *b)
                .map("out", |w| (w.key, w.start, w.end, w.value))
        },
    })
    .assert_equal();
}

#[test]
fn a_window_join_fires_its_restored_windows() {
    fails_and_resumes(Job {
        phases: false,
        build: |env, left, right| {
            let l = env
                .from_source("left", 2, left, event_time())
                .key_by(|e: &Ev| e.key);
            let r = env
                .from_source("right", 2, right, event_time())
                .key_by(|e: &Ev| e.key);
            l.window_join("join", r, Windows::tumbling(300))
                .map("out", |(start, l, r)| (start, l.id, r.id))
        },
    })
    .assert_equal();
}

/// A regular join's output depends on how its inputs interleave (a row
/// meets the other side's rows until the slower input's watermark expires
/// them), so the check is what holds whatever the order: a pair of one key
/// whose times are within the TTL always meets, exactly once. The keys of
/// the sixth of the input before the failure never come back: only their
/// restored timers can expire their rows, so the join's table is empty at
/// the end only if the restored subtasks re-armed them.
#[test]
fn a_join_with_state_ttl_expires_restored_rows() {
    const TTL: i64 = 1_500;
    let out = fails_and_resumes(Job {
        phases: true,
        build: |env, left, right| {
            let l = env
                .from_source("left", 2, left, event_time())
                .key_by(|e: &Ev| e.key);
            let r = env
                .from_source("right", 2, right, event_time())
                .key_by(|e: &Ev| e.key);
            l.join("join", r, Some(TTL))
                .map("out", |(l, r)| (l.key, l.ts, l.id, r.key, r.ts, r.id))
        },
    });
    let (left, right) = (events(12_000, 24, 1, true), events(12_000, 24, 2, true));
    let mut must: Vec<_> = Vec::new();
    for l in &left {
        for r in right
            .iter()
            .filter(|r| r.key == l.key && (l.ts - r.ts).abs() <= TTL)
        {
            must.push((l.key, l.ts, l.id, r.key, r.ts, r.id));
        }
    }
    for (name, rows) in [("uninterrupted", &out.want), ("resumed", &out.got)] {
        assert!(
            rows.windows(2).all(|w| w[0] != w[1]),
            "{name}: a pair twice"
        );
        assert!(
            rows.iter().all(|p| p.0 == p.3),
            "{name}: a pair across keys"
        );
        let missing = must
            .iter()
            .filter(|p| rows.binary_search(p).is_err())
            .count();
        assert_eq!(missing, 0, "{name}: pairs within the TTL that never met");
    }
    let join_rows: usize = out
        .state
        .iter()
        .filter(|(t, _)| t == "join")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        join_rows, 0,
        "rows left in the join's state: {:?}",
        out.state
    );
}

#[test]
fn an_interval_join_resumes_exactly() {
    fails_and_resumes(Job {
        phases: false,
        build: |env, left, right| {
            let l = env
                .from_source("left", 2, left, event_time())
                .key_by(|e: &Ev| e.key);
            let r = env
                .from_source("right", 2, right, event_time())
                .key_by(|e: &Ev| e.key);
            l.interval_join("join", r, -100, 200)
                .map("out", |(l, r)| (l.id, r.id))
        },
    })
    .assert_equal();
}
