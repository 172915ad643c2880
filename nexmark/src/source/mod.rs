//! Where a run's events come from: the deterministic generator
//! ([`generator`]) or event files ([`files`]), both as replayable sources
//! of the compute layer: every source subtask can say where it is and seek
//! back there.
//!
//! Either way each event carries its `seq` (its place in the input), the
//! source subtasks count what they read into a shared progress counter, and
//! the stream has the suite's event time: `dateTime`, with watermarks 4 s
//! behind the largest timestamp seen.

pub mod files;
pub mod generator;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use riverbed_compute::{
    DataStream, Env, EventTime, Position, Source, SourceReader, WatermarkStrategy,
};

use crate::error::Result;
use crate::model::Event;
use crate::{Generator, GeneratorConfig};
pub use files::EventFiles;
pub use generator::GeneratorSource;
use serde::{Deserialize, Serialize};

/// The name of the source operator in a query's job (its report counts the
/// events read).
pub const SOURCE_NAME: &str = "nexmark-source";

/// The suite's watermark: event time minus 4 s.
pub const WATERMARK_DELAY_MS: i64 = 4_000;

/// The events of a run as its flags name them: generated (seed, rate and
/// count) when `files` is empty, else read from the files. It is what a
/// coordinator hands every worker, so that all of them read the same
/// events.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SourceSpec {
    /// Generated events (when `files` is empty).
    pub events: u64,
    pub rate: u64,
    pub seed: u64,
    pub files: Vec<PathBuf>,
    pub max_line_bytes: usize,
}

impl SourceSpec {
    /// Checks the settings (or lists the files) and gives the source.
    pub fn open(&self) -> Result<EventSource> {
        if self.files.is_empty() {
            EventSource::generator(
                GeneratorConfig {
                    seed: self.seed,
                    first_event_rate: self.rate,
                    ..GeneratorConfig::default()
                },
                self.events,
            )
        } else {
            Ok(EventSource::Files(EventFiles::list(
                &self.files,
                self.max_line_bytes,
            )?))
        }
    }
}

/// The events of a run.
#[derive(Clone)]
pub enum EventSource {
    /// Events `0..events` of the generator.
    Generator { generator: Generator, events: u64 },
    /// The events of files, streamed.
    Files(EventFiles),
}

impl EventSource {
    /// The first `events` events of the generator with `config`.
    pub fn generator(config: GeneratorConfig, events: u64) -> Result<Self> {
        Ok(EventSource::Generator {
            generator: Generator::new(config)?,
            events,
        })
    }

    /// How many events a run reads, when known before reading.
    pub fn known_len(&self) -> Option<u64> {
        match self {
            EventSource::Generator { events, .. } => Some(*events),
            EventSource::Files(_) => None,
        }
    }

    /// The source of a job: `parallelism` subtasks with event time and the
    /// suite's watermark, counting into `progress`.
    pub fn stream(
        &self,
        env: &Env,
        parallelism: usize,
        progress: Arc<AtomicU64>,
    ) -> DataStream<Event> {
        let inner: Box<dyn Source<Event>> = match self {
            EventSource::Generator { generator, events } => Box::new(GeneratorSource {
                generator: generator.clone(),
                events: *events,
            }),
            EventSource::Files(files) => Box::new(files.source()),
        };
        env.from_source(
            SOURCE_NAME,
            parallelism,
            Arc::new(Counted { inner, progress }),
            Some(EventTime {
                timestamp: Arc::new(Event::timestamp),
                strategy: WatermarkStrategy::bounded(WATERMARK_DELAY_MS),
            }),
        )
    }
}

/// A source whose readers count the records they read into `progress`.
struct Counted {
    inner: Box<dyn Source<Event>>,
    progress: Arc<AtomicU64>,
}

impl Source<Event> for Counted {
    fn reader(
        &self,
        subtask: usize,
        parallelism: usize,
    ) -> riverbed_compute::Result<Box<dyn SourceReader<Event>>> {
        Ok(Box::new(CountedReader {
            inner: self.inner.reader(subtask, parallelism)?,
            progress: self.progress.clone(),
        }))
    }
}

struct CountedReader {
    inner: Box<dyn SourceReader<Event>>,
    progress: Arc<AtomicU64>,
}

impl SourceReader<Event> for CountedReader {
    fn read_batch(&mut self, out: &mut Vec<Event>, max: usize) -> riverbed_compute::Result<bool> {
        let before = out.len();
        let more = self.inner.read_batch(out, max)?;
        self.progress
            .fetch_add((out.len() - before) as u64, Ordering::Relaxed);
        Ok(more)
    }

    fn position(&self) -> Position {
        self.inner.position()
    }

    fn seek(&mut self, position: &Position) -> riverbed_compute::Result<()> {
        self.inner.seek(position)
    }
}
