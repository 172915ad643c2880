//! Where a run's events come from: the deterministic generator, or an event
//! file (JSON lines, see `json`) read completely before the job starts, so
//! that a malformed line fails the run up front with its line number.
//!
//! Either way parallel source subtask `i` of `p` takes events `i, i+p, ...`
//! and counts them into a shared progress counter.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use riverbed_compute::{DataStream, Env, WatermarkStrategy};

use crate::error::{Error, Result};
use crate::model::Event;
use crate::{json, Generator, GeneratorConfig};

/// The suite's watermark: event time minus 4 s.
pub const WATERMARK_DELAY_MS: i64 = 4_000;

/// The events of a run.
#[derive(Clone)]
pub enum EventSource {
    /// Events `0..events` of the generator.
    Generator { generator: Generator, events: u64 },
    /// Events read from a file.
    File {
        path: PathBuf,
        events: Arc<Vec<Event>>,
    },
}

impl EventSource {
    /// The first `events` events of the generator with `config`.
    pub fn generator(config: GeneratorConfig, events: u64) -> Result<Self> {
        Ok(EventSource::Generator {
            generator: Generator::new(config)?,
            events,
        })
    }

    /// Every event of the file at `path`.
    pub fn file(path: &Path) -> Result<Self> {
        let reader = json::open_file(path)?;
        let events = reader
            .collect::<Result<Vec<Event>>>()
            .map_err(|e| match e {
                Error::Json { line, reason } => Error::Json {
                    line,
                    reason: format!("{}: {reason}", path.display()),
                },
                other => other,
            })?;
        Ok(EventSource::File {
            path: path.to_path_buf(),
            events: Arc::new(events),
        })
    }

    /// How many events a run reads.
    pub fn len(&self) -> u64 {
        match self {
            EventSource::Generator { events, .. } => *events,
            EventSource::File { events, .. } => events.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The source of a job: `parallelism` subtasks with event time and the
    /// suite's watermark, counting into `progress`.
    pub fn stream(
        &self,
        env: &Env,
        parallelism: usize,
        progress: Arc<AtomicU64>,
    ) -> DataStream<Event> {
        let source = self.clone();
        env.source_with_event_time(
            "nexmark-source",
            parallelism,
            move |i, p| -> Box<dyn Iterator<Item = Event> + Send> {
                let events: Box<dyn Iterator<Item = Event> + Send> = match &source {
                    EventSource::Generator { generator, events } => Box::new(
                        generator
                            .split(i as u64, p as u64, 0..*events)
                            .expect("subtask below parallelism"),
                    ),
                    EventSource::File { events, .. } => {
                        let events = events.clone();
                        Box::new((i..events.len()).step_by(p).map(move |j| events[j].clone()))
                    }
                };
                Box::new(Counted {
                    inner: events,
                    progress: progress.clone(),
                    pending: 0,
                })
            },
            Event::timestamp,
            WatermarkStrategy::bounded(WATERMARK_DELAY_MS),
        )
    }
}

/// Counts the items it passes into a shared counter, a few thousand at a
/// time so that parallel sources do not contend on it.
struct Counted<I> {
    inner: I,
    progress: Arc<AtomicU64>,
    pending: u64,
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next();
        if item.is_some() {
            self.pending += 1;
            if self.pending == 4096 {
                self.progress.fetch_add(4096, Ordering::Relaxed);
                self.pending = 0;
            }
        } else if self.pending > 0 {
            self.progress.fetch_add(self.pending, Ordering::Relaxed);
            self.pending = 0;
        }
        item
    }
}
