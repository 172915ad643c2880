//! A replayable input for the tests of stopping and resuming jobs: events
//! split over source subtasks round-robin, a reader that reports how far it
//! read and seeks back there, and a sink that stages its rows per epoch the
//! way the runner's file sinks do.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use riverbed_compute::sink::Sink;
use riverbed_compute::{Error, EventTime, Position, Source, SourceReader, WatermarkStrategy};
use riverbed_state_store::{Epoch, Store};

use super::Ev;

/// Events of `keys` keys, time going up with some disorder; a key shows up
/// in bursts, so sessions and windows open and close all through the input.
/// With `phases`, the input's third sixth (up to where the failing runs
/// fail) has keys of its own that never come back.
pub fn events(n: u32, keys: u32, seed: u32, phases: bool) -> Vec<Ev> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let burst = (i / 64) % keys;
            let key = (burst + x % 3) % keys;
            Ev {
                key: if phases && (n / 3..n / 2).contains(&i) {
                    key + keys
                } else {
                    key
                },
                ts: i64::from(i) * 3 + i64::from(x % 40),
                id: i + seed * 1_000_000,
            }
        })
        .collect()
}

/// An input split over subtasks round-robin; subtask 0 fails once it has
/// read `fail_at` records.
pub struct Input {
    pub events: Arc<Vec<Ev>>,
    pub fail_at: Option<u64>,
    /// The job's store: the failure waits for its first checkpoint, so
    /// that a loaded machine cannot fail the run before any commit.
    pub store: Arc<Store>,
}

pub struct Reader {
    events: Arc<Vec<Ev>>,
    next: usize,
    step: usize,
    read: u64,
    fail_at: Option<u64>,
    store: Arc<Store>,
}

impl Source<Ev> for Input {
    fn reader(
        &self,
        subtask: usize,
        parallelism: usize,
    ) -> riverbed_compute::Result<Box<dyn SourceReader<Ev>>> {
        Ok(Box::new(Reader {
            events: self.events.clone(),
            next: subtask,
            step: parallelism,
            read: 0,
            fail_at: if subtask == 0 { self.fail_at } else { None },
            store: self.store.clone(),
        }))
    }
}

impl SourceReader<Ev> for Reader {
    fn read_batch(&mut self, out: &mut Vec<Ev>, max: usize) -> riverbed_compute::Result<bool> {
        if self.fail_at.is_some_and(|f| self.read >= f) {
            if self.store.latest_checkpoint().is_some() {
                return Err(Error::Source("injected failure".into()));
            }
            // Read on slowly until the barriers have made a checkpoint.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let before = out.len();
        while out.len() - before < max && self.next < self.events.len() {
            out.push(self.events[self.next].clone());
            self.next += self.step;
            self.read += 1;
        }
        Ok(out.len() > before)
    }

    fn position(&self) -> Position {
        Position(self.read.to_le_bytes().to_vec())
    }

    fn seek(&mut self, position: &Position) -> riverbed_compute::Result<()> {
        let read = u64::from_le_bytes(
            position
                .0
                .as_slice()
                .try_into()
                .map_err(|_| Error::Source("bad position".into()))?,
        );
        self.next += read as usize * self.step;
        self.read = read;
        Ok(())
    }
}

/// Rows staged per epoch, surviving a failed run.
pub type Staged<T> = Arc<Mutex<BTreeMap<Epoch, Vec<T>>>>;

pub struct StagingSink<T> {
    pub open: Vec<T>,
    pub staged: Staged<T>,
}

impl<T: Send> Sink<T> for StagingSink<T> {
    fn write(&mut self, batch: Vec<T>) -> riverbed_compute::Result<()> {
        self.open.extend(batch);
        Ok(())
    }
    fn pre_commit(&mut self, epoch: Epoch) -> riverbed_compute::Result<()> {
        let rows = std::mem::take(&mut self.open);
        self.staged.lock().entry(epoch).or_default().extend(rows);
        Ok(())
    }
}

pub fn event_time() -> Option<EventTime<Ev>> {
    Some(EventTime {
        timestamp: Arc::new(|e: &Ev| e.ts),
        strategy: WatermarkStrategy::bounded(50),
    })
}
