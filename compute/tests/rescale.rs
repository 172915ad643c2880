//! Rescaling: a job stopped at a checkpoint (`Env::execute_until_stopped`)
//! and resumed from it at another parallelism — 2, then 4, then 1 subtasks
//! — ends with exactly the output of a run that was never stopped. The new
//! subtasks own other key-group ranges and read their state where the old
//! ones left it, in the same store: between a stop and the restart the
//! store moves no object, and no object is ever copied.

mod common;

use std::sync::Arc;

use riverbed_compute::state::{ObjectStats, StateControl};
use riverbed_compute::{
    Aggregate, DataStream, EmbeddedBackend, Env, JobConfig, JobReport, Source, Windows,
};
use riverbed_state_store::{Options, Store};

use common::replay::{event_time, events, Input, Staged, StagingSink};
use common::Ev;

type Build<T> = fn(&Env, Arc<dyn Source<Ev>>, Arc<dyn Source<Ev>>) -> DataStream<T>;

const EVENTS: u32 = 30_000;

fn config(parallelism: usize) -> JobConfig {
    JobConfig {
        parallelism,
        batch_size: 16,
        checkpoint_interval: Some(std::time::Duration::from_millis(1)),
        state_cache_entries: 64,
        ..JobConfig::default()
    }
}

/// Builds the job on `store` at `parallelism`, resumed from `resume`.
fn build<T: Send + 'static>(
    store: &Arc<Store>,
    backend: &Arc<EmbeddedBackend>,
    build: Build<T>,
    parallelism: usize,
    resume: Option<riverbed_state_store::CheckpointMeta>,
    staged: &Staged<T>,
) -> Env {
    let mut config = config(parallelism);
    config.resume = resume;
    let env = Env::new(config, backend.clone()).expect("valid job config");
    let source = |seed| -> Arc<dyn Source<Ev>> {
        Arc::new(Input {
            events: Arc::new(events(EVENTS, 24, seed, false)),
            fail_at: None,
            store: store.clone(),
        })
    };
    let s = staged.clone();
    build(&env, source(1), source(2)).sink("sink", move |_| {
        Ok(StagingSink {
            open: Vec::new(),
            staged: s.clone(),
        })
    });
    env
}

/// Runs the job through `parallelisms`, stopping it a few checkpoints into
/// each but the last; returns its rows, sorted, and the store's traffic.
fn run_rescaled<T: Ord + Clone + Send + 'static>(
    job: Build<T>,
    parallelisms: &[usize],
) -> (Vec<T>, Vec<JobReport>, ObjectStats) {
    common::runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = Options::with_url(dir.path().to_str().unwrap());
        opts.memtable_bytes = 64 << 10;
        // Files are written at commits only, so that what the restart
        // moves is not hidden by a compaction running beside it.
        opts.background_compaction = false;
        let store = Arc::new(Store::open(opts).await.unwrap());
        let backend = Arc::new(EmbeddedBackend::new(store.clone()));
        let staged: Staged<T> = Default::default();
        let mut resume = None;
        let mut reports = Vec::new();
        for (i, &p) in parallelisms.iter().enumerate() {
            let before = backend.object_stats().await.unwrap();
            let env = build(&store, &backend, job, p, resume.clone(), &staged);
            if i > 0 {
                // Building the plan at the new parallelism moved nothing.
                let d = backend.object_stats().await.unwrap().since(&before);
                assert_eq!(
                    (d.objects_copied, d.objects_written, d.written_bytes),
                    (0, 0, 0),
                    "the restart at parallelism {p} moved objects: {d:?}"
                );
            }
            let last = i + 1 == parallelisms.len();
            let started = store.committed_epoch().0;
            let store2 = store.clone();
            let stop = async move {
                if last {
                    return std::future::pending().await;
                }
                while store2.committed_epoch().0 < started + 3 {
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            };
            let report = env.execute_until_stopped(stop).await.unwrap();
            if last {
                assert!(report.stopped_at.is_none());
            } else {
                let at = report
                    .stopped_at
                    .clone()
                    .expect("the input ended before the stop: too few events to rescale mid-run");
                assert_eq!(store.committed_epoch(), at.epoch);
                // Nothing after the stop's barrier reached a sink.
                assert!(staged.lock().keys().all(|e| *e <= at.epoch));
                resume = Some(at);
            }
            reports.push(report);
        }
        let stats = backend.object_stats().await.unwrap();
        store.close().await.unwrap();
        let mut rows: Vec<T> = staged.lock().values().flatten().cloned().collect();
        rows.sort();
        (rows, reports, stats)
    })
}

fn rescales_exactly<T: Ord + Clone + Send + std::fmt::Debug + 'static>(job: Build<T>, op: &str) {
    let (want, _, _) = run_rescaled(job, &[2]);
    assert!(!want.is_empty(), "the job produced nothing to compare");
    let (got, reports, stats) = run_rescaled(job, &[2, 4, 1]);
    for (r, p) in reports.iter().zip([2, 4, 1]) {
        assert_eq!(r.operator(op).map(|o| o.parallelism), Some(p));
        // The sources keep the parallelism of their checkpoint.
        assert_eq!(r.operator("left").map(|o| o.parallelism), Some(2));
    }
    assert_eq!(stats.objects_copied, 0, "state was copied: {stats:?}");
    assert_eq!(got.len(), want.len(), "rows after rescaling 2 -> 4 -> 1");
    assert!(got == want, "the rescaled run's output differs");
}

#[test]
fn a_window_aggregate_rescales_exactly() {
    rescales_exactly(
        |env, left, _| {
            env.from_source("left", 2, left, event_time())
                .key_by(|e: &Ev| e.key)
                .window("counts", Windows::tumbling(200), Aggregate::count)
                .map("out", |w| (w.key, w.start, w.value))
        },
        "counts",
    );
}

#[test]
fn a_window_join_rescales_exactly() {
    rescales_exactly(
        |env, left, right| {
            let l = env
                .from_source("left", 2, left, event_time())
                .key_by(|e: &Ev| e.key);
            let r = env
                .from_source("right", 2, right, event_time())
                .key_by(|e: &Ev| e.key);
            l.window_join("join", r, Windows::tumbling(300))
                .map("out", |(start, l, r)| (start, l.id, r.id))
        },
        "join",
    );
}

#[test]
fn session_windows_rescale_exactly() {
    rescales_exactly(
        |env, left, _| {
            env.from_source("left", 2, left, event_time())
                .key_by(|e: &Ev| e.key)
                .session_window("sessions", 40, Aggregate::count, |a, b| *a += *b)
                .map("out", |w| (w.key, w.start, w.end, w.value))
        },
        "sessions",
    );
}
