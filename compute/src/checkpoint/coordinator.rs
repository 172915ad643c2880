//! The checkpoint coordinator as a pure state machine: events in, actions
//! out, time passed in with the events. The one-process runtime drives it
//! (`env.rs`); a coordinator process will drive the same machine.
//!
//! One checkpoint at a time, as Flink's default: the coordinator injects
//! barrier *e* at the sources once the interval has passed since the last
//! injection and checkpoint *e − 1* is done. Every source subtask answers
//! with its position at the barrier; every sink subtask reports when the
//! barrier has passed it, at which point everything upstream of it has
//! shipped its epoch-*e* writes to the store. When all have answered the
//! coordinator asks for the commit of *e* with the checkpoint's metadata.
//!
//! A subtask that has ended counts as having answered every later barrier
//! (its last position and its last writes are final). A checkpoint that
//! takes longer than the timeout is abandoned: nothing is recorded for it,
//! and its writes, which the operators' caches already hold, are committed
//! with the next checkpoint (a store commit of *e + 1* commits every epoch up
//! to it). When every sink has ended, the final epoch is committed and the
//! job is finished.

use std::collections::{BTreeMap, HashMap};

use riverbed_state_store::{CheckpointMeta, Epoch, SourcePositions};

use crate::source::Position;
use crate::time::{Timestamp, MAX_WATERMARK};

/// What the coordinator hears.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Time passed (wall-clock milliseconds).
    Tick { now: i64 },
    /// Source `source`'s subtask emitted barrier `epoch` at `position`,
    /// with its watermark then.
    SourceBarrier {
        source: usize,
        subtask: usize,
        epoch: Epoch,
        position: Position,
        watermark: Timestamp,
    },
    /// Source `source`'s subtask ended its input at `position`.
    SourceEnded {
        source: usize,
        subtask: usize,
        position: Position,
    },
    /// Sink subtask `sink` passed barrier `epoch`.
    SinkBarrier { sink: usize, epoch: Epoch },
    /// Sink subtask `sink` ended; its last writes belong to `epoch`.
    SinkEnded { sink: usize, epoch: Epoch },
    /// The commit the coordinator asked for is durable.
    Committed { epoch: Epoch, now: i64 },
}

/// What the coordinator asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Sources: emit barrier `epoch` before your next batch.
    Inject(Epoch),
    /// Commit `epoch` in the store as a checkpoint with `meta`, then report
    /// [`Event::Committed`].
    Commit { epoch: Epoch, meta: CheckpointMeta },
    /// Checkpoint `epoch` is abandoned (timeout); its writes go with the
    /// next one.
    Abandon(Epoch),
    /// Every sink ended and the final epoch is committed.
    Finished(Epoch),
}

/// Settings of the coordinator.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The job's name, recorded in every checkpoint.
    pub job: String,
    /// Names and subtask counts of the job's sources, in registration order.
    pub sources: Vec<(String, usize)>,
    /// Sink subtasks of the job.
    pub sinks: usize,
    /// Milliseconds between barrier injections; `None`: checkpoints only at
    /// the end of the input.
    pub interval_ms: Option<i64>,
    /// A checkpoint not complete after this many ms is abandoned.
    pub timeout_ms: i64,
    /// The job's parallelism, recorded in every checkpoint.
    pub parallelism: usize,
}

/// One checkpoint in flight.
#[derive(Debug)]
struct InFlight {
    epoch: Epoch,
    injected_at: i64,
    positions: HashMap<(usize, usize), (Position, Timestamp)>,
    sinks_passed: Vec<bool>,
    commit_asked: bool,
}

/// The coordinator's state.
#[derive(Debug)]
pub struct Coordinator {
    s: Settings,
    /// The last committed epoch.
    committed: Epoch,
    /// The next epoch a barrier will carry.
    next: Epoch,
    last_injection: Option<i64>,
    in_flight: Option<InFlight>,
    /// Final positions of ended source subtasks.
    ended_sources: HashMap<(usize, usize), Position>,
    /// Per sink: its final epoch once it ended.
    ended_sinks: Vec<Option<Epoch>>,
    /// The last position each source subtask reported (for the final commit).
    last_positions: HashMap<(usize, usize), (Position, Timestamp)>,
    final_asked: Option<Epoch>,
    finished: bool,
    /// A checkpoint was asked for out of turn (a stop or a rescale): it is
    /// injected as soon as none is in flight, whatever the interval.
    forced: bool,
}

impl Coordinator {
    /// A coordinator for a job whose store has committed `committed`; its
    /// first barrier is `committed + 1`.
    pub fn new(settings: Settings, committed: Epoch) -> Self {
        let sinks = settings.sinks;
        Coordinator {
            s: settings,
            committed,
            next: committed.next(),
            last_injection: None,
            in_flight: None,
            ended_sources: HashMap::new(),
            ended_sinks: vec![None; sinks],
            last_positions: HashMap::new(),
            final_asked: None,
            finished: false,
            forced: false,
        }
    }

    /// The epoch the next barrier will carry.
    pub fn next_epoch(&self) -> Epoch {
        self.next
    }

    /// Asks for a checkpoint now (Flink's stop-with-savepoint starts so):
    /// it is injected at once when none is in flight, else right after the
    /// one in flight completes. Its epoch is [`Coordinator::next_epoch`]
    /// as of this call. Nothing is injected once the sinks have ended: the
    /// final commit is then the checkpoint.
    pub fn request_checkpoint(&mut self, now: i64) -> Vec<Action> {
        self.forced = true;
        let mut out = Vec::new();
        self.tick(now, &mut out);
        out
    }

    /// The last committed epoch.
    pub fn committed(&self) -> Epoch {
        self.committed
    }

    /// Whether the job's final epoch is committed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The epoch in flight, if a checkpoint is.
    pub fn in_flight(&self) -> Option<Epoch> {
        self.in_flight.as_ref().map(|f| f.epoch)
    }

    /// Feeds one event; returns what to do, in order.
    pub fn on(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Tick { now } => self.tick(now, &mut out),
            Event::SourceBarrier {
                source,
                subtask,
                epoch,
                position,
                watermark,
            } => {
                self.last_positions
                    .insert((source, subtask), (position.clone(), watermark));
                if let Some(f) = self.in_flight.as_mut().filter(|f| f.epoch == epoch) {
                    f.positions.insert((source, subtask), (position, watermark));
                }
                self.try_complete(&mut out);
            }
            Event::SourceEnded {
                source,
                subtask,
                position,
            } => {
                self.last_positions
                    .insert((source, subtask), (position.clone(), MAX_WATERMARK));
                self.ended_sources.insert((source, subtask), position);
                self.try_complete(&mut out);
            }
            Event::SinkBarrier { sink, epoch } => {
                if let Some(f) = self.in_flight.as_mut().filter(|f| f.epoch == epoch) {
                    if let Some(p) = f.sinks_passed.get_mut(sink) {
                        *p = true;
                    }
                }
                self.try_complete(&mut out);
            }
            Event::SinkEnded { sink, epoch } => {
                if let Some(slot) = self.ended_sinks.get_mut(sink) {
                    *slot = Some(epoch);
                }
                self.try_complete(&mut out);
                self.try_finish(&mut out);
            }
            Event::Committed { epoch, now } => {
                self.committed = self.committed.max(epoch);
                if self.in_flight.as_ref().is_some_and(|f| f.epoch == epoch) {
                    self.in_flight = None;
                    self.last_injection = Some(now);
                }
                if self.final_asked == Some(epoch) {
                    self.finished = true;
                    out.push(Action::Finished(epoch));
                } else {
                    self.try_finish(&mut out);
                    if self.forced {
                        self.tick(now, &mut out);
                    }
                }
            }
        }
        out
    }

    fn all_sinks_ended(&self) -> bool {
        self.ended_sinks.iter().all(Option::is_some)
    }

    fn tick(&mut self, now: i64, out: &mut Vec<Action>) {
        if self.finished || self.final_asked.is_some() {
            return;
        }
        if let Some(f) = &self.in_flight {
            if !f.commit_asked && now - f.injected_at > self.s.timeout_ms {
                // Abandoned: its writes stay with the operators and go with
                // the next checkpoint.
                out.push(Action::Abandon(f.epoch));
                self.in_flight = None;
                self.last_injection = Some(now);
            }
            return;
        }
        if self.all_sinks_ended() {
            return;
        }
        let last = *self.last_injection.get_or_insert(now);
        let due = self.s.interval_ms.is_some_and(|i| now - last >= i);
        if !(due || self.forced) {
            return;
        }
        self.forced = false;
        let epoch = self.next;
        self.next = epoch.next();
        self.in_flight = Some(InFlight {
            epoch,
            injected_at: now,
            positions: HashMap::new(),
            sinks_passed: vec![false; self.s.sinks],
            commit_asked: false,
        });
        self.last_injection = Some(now);
        out.push(Action::Inject(epoch));
    }

    /// Asks for the commit of the checkpoint in flight once everyone answered.
    fn try_complete(&mut self, out: &mut Vec<Action>) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        if f.commit_asked {
            return;
        }
        let sinks_done = f
            .sinks_passed
            .iter()
            .zip(&self.ended_sinks)
            .all(|(passed, ended)| *passed || ended.is_some());
        let sources_done = self.s.sources.iter().enumerate().all(|(s, (_, n))| {
            (0..*n).all(|i| {
                f.positions.contains_key(&(s, i)) || self.ended_sources.contains_key(&(s, i))
            })
        });
        if !(sinks_done && sources_done) {
            return;
        }
        f.commit_asked = true;
        let positions = &f.positions;
        let ended = &self.ended_sources;
        let meta = checkpoint_meta(&self.s, f.epoch, |key| {
            positions
                .get(&key)
                .cloned()
                .or_else(|| ended.get(&key).map(|p| (p.clone(), MAX_WATERMARK)))
        });
        out.push(Action::Commit {
            epoch: f.epoch,
            meta,
        });
    }

    /// Once every sink ended and nothing is in flight, commits the final epoch.
    fn try_finish(&mut self, out: &mut Vec<Action>) {
        if self.finished || self.final_asked.is_some() || !self.all_sinks_ended() {
            return;
        }
        if self.in_flight.as_ref().is_some_and(|f| f.commit_asked) {
            return; // its Committed comes first
        }
        if let Some(f) = self.in_flight.take() {
            // Sinks ended mid-checkpoint: the final commit covers it.
            out.push(Action::Abandon(f.epoch));
        }
        let last_sink = self.ended_sinks.iter().flatten().max().copied();
        // Past every epoch a sink wrote in and every barrier injected.
        let epoch = last_sink
            .unwrap_or(self.committed)
            .max(Epoch(self.next.0.saturating_sub(1)))
            .max(self.committed.next());
        self.next = epoch.next();
        self.final_asked = Some(epoch);
        let last = &self.last_positions;
        let ended = &self.ended_sources;
        let mut meta = checkpoint_meta(&self.s, epoch, |key| {
            ended
                .get(&key)
                .map(|p| (p.clone(), MAX_WATERMARK))
                .or_else(|| last.get(&key).cloned())
        });
        meta.finished = true;
        out.push(Action::Commit { epoch, meta });
    }
}

/// The metadata of checkpoint `epoch`, positions looked up by
/// `(source, subtask)`; the watermark is the smallest of the sources'.
fn checkpoint_meta(
    s: &Settings,
    epoch: Epoch,
    position: impl Fn((usize, usize)) -> Option<(Position, Timestamp)>,
) -> CheckpointMeta {
    let mut watermark = MAX_WATERMARK;
    let positions = s
        .sources
        .iter()
        .enumerate()
        .map(|(si, (name, n))| SourcePositions {
            source: name.clone(),
            subtasks: (0..*n)
                .map(|i| match position((si, i)) {
                    Some((p, w)) => {
                        watermark = watermark.min(w);
                        p.0
                    }
                    None => Vec::new(),
                })
                .collect(),
        })
        .collect();
    CheckpointMeta {
        epoch,
        job: s.job.clone(),
        watermark,
        positions,
        parallelism: u32::try_from(s.parallelism).unwrap_or(u32::MAX),
        ..CheckpointMeta::default()
    }
}

/// Per-epoch bookkeeping the runtime keeps beside the coordinator: when each
/// barrier was injected, for the checkpoint's duration.
#[derive(Debug, Default)]
pub struct Injections(BTreeMap<Epoch, i64>);

impl Injections {
    pub fn record(&mut self, epoch: Epoch, now: i64) {
        self.0.insert(epoch, now);
    }

    /// Milliseconds from the injection of `epoch` to `now` (0 if unknown),
    /// forgetting it and everything older.
    pub fn take(&mut self, epoch: Epoch, now: i64) -> u64 {
        let at = self.0.get(&epoch).copied();
        self.0 = self.0.split_off(&epoch.next());
        at.map_or(0, |t| (now - t).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_checkpoint_is_injected_at_once_or_right_after_the_one_in_flight() {
        // No interval at all: only the request injects.
        let mut c = Coordinator::new(settings(None), Epoch(4));
        assert_eq!(c.on(Event::Tick { now: 0 }), vec![]);
        assert_eq!(c.next_epoch(), Epoch(5));
        assert_eq!(c.request_checkpoint(1), vec![Action::Inject(Epoch(5))]);
        assert_eq!(c.on(Event::Tick { now: 500 }), vec![]);
        // Asked for while 5 is in flight: 6 goes in when 5 is committed.
        assert_eq!(c.request_checkpoint(2), vec![]);
        assert_eq!(c.next_epoch(), Epoch(6));
        c.on(barrier(0, 5, 1, 0));
        c.on(barrier(1, 5, 1, 0));
        c.on(Event::SinkBarrier {
            sink: 0,
            epoch: Epoch(5),
        });
        let acts = c.on(Event::SinkBarrier {
            sink: 1,
            epoch: Epoch(5),
        });
        assert!(matches!(
            acts.as_slice(),
            [Action::Commit {
                epoch: Epoch(5),
                ..
            }]
        ));
        assert_eq!(
            c.on(Event::Committed {
                epoch: Epoch(5),
                now: 3
            }),
            vec![Action::Inject(Epoch(6))]
        );
        // Served once: no further injection without an interval.
        c.on(barrier(0, 6, 2, 0));
        c.on(barrier(1, 6, 2, 0));
        c.on(Event::SinkBarrier {
            sink: 0,
            epoch: Epoch(6),
        });
        c.on(Event::SinkBarrier {
            sink: 1,
            epoch: Epoch(6),
        });
        assert_eq!(
            c.on(Event::Committed {
                epoch: Epoch(6),
                now: 4
            }),
            vec![]
        );
        assert_eq!(c.on(Event::Tick { now: 5 }), vec![]);
        // Once the sinks ended nothing is injected: the final commit is it.
        let mut c = Coordinator::new(settings(Some(1000)), Epoch(0));
        c.on(Event::SinkEnded {
            sink: 0,
            epoch: Epoch(1),
        });
        c.on(Event::SourceEnded {
            source: 0,
            subtask: 0,
            position: pos(1),
        });
        c.on(Event::SourceEnded {
            source: 0,
            subtask: 1,
            position: pos(1),
        });
        let acts = c.on(Event::SinkEnded {
            sink: 1,
            epoch: Epoch(1),
        });
        assert!(matches!(acts.as_slice(), [Action::Commit { .. }]));
        assert_eq!(c.request_checkpoint(5), vec![]);
    }

    fn settings(interval: Option<i64>) -> Settings {
        Settings {
            job: "j".into(),
            sources: vec![("src".into(), 2)],
            sinks: 2,
            interval_ms: interval,
            timeout_ms: 1000,
            parallelism: 2,
        }
    }

    fn pos(b: u8) -> Position {
        Position(vec![b])
    }

    fn barrier(subtask: usize, e: u64, p: u8, w: i64) -> Event {
        Event::SourceBarrier {
            source: 0,
            subtask,
            epoch: Epoch(e),
            position: pos(p),
            watermark: w,
        }
    }

    #[test]
    fn a_checkpoint_commits_once_every_source_and_sink_answered() {
        let mut c = Coordinator::new(settings(Some(100)), Epoch(4));
        assert!(c.on(Event::Tick { now: 0 }).is_empty());
        assert!(c.on(Event::Tick { now: 50 }).is_empty());
        assert_eq!(c.on(Event::Tick { now: 100 }), [Action::Inject(Epoch(5))]);
        // One at a time: no second injection while 5 is in flight.
        assert!(c.on(Event::Tick { now: 250 }).is_empty());
        assert!(c.on(barrier(0, 5, 1, 10)).is_empty());
        assert!(c
            .on(Event::SinkBarrier {
                sink: 0,
                epoch: Epoch(5)
            })
            .is_empty());
        assert!(c.on(barrier(1, 5, 2, 7)).is_empty());
        let actions = c.on(Event::SinkBarrier {
            sink: 1,
            epoch: Epoch(5),
        });
        let [Action::Commit { epoch, meta }] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        assert_eq!(*epoch, Epoch(5));
        assert_eq!(meta.positions[0].subtasks, [vec![1u8], vec![2u8]]);
        assert_eq!(meta.watermark, 7);
        assert_eq!(meta.job, "j");
        assert!(c
            .on(Event::Committed {
                epoch: Epoch(5),
                now: 260
            })
            .is_empty());
        assert_eq!(c.committed(), Epoch(5));
        // The interval counts from the commit: 6 is injected at 360.
        assert!(c.on(Event::Tick { now: 300 }).is_empty());
        assert_eq!(c.on(Event::Tick { now: 360 }), [Action::Inject(Epoch(6))]);
    }

    #[test]
    fn ended_subtasks_count_for_later_barriers_and_the_end_commits_last() {
        let mut c = Coordinator::new(settings(Some(10)), Epoch(0));
        c.on(Event::Tick { now: 0 });
        assert_eq!(c.on(Event::Tick { now: 10 }), [Action::Inject(Epoch(1))]);
        // Subtask 1 ended before the barrier reached it.
        c.on(Event::SourceEnded {
            source: 0,
            subtask: 1,
            position: pos(9),
        });
        c.on(barrier(0, 1, 3, 5));
        c.on(Event::SinkBarrier {
            sink: 0,
            epoch: Epoch(1),
        });
        let a = c.on(Event::SinkBarrier {
            sink: 1,
            epoch: Epoch(1),
        });
        let [Action::Commit { meta, .. }] = a.as_slice() else {
            panic!("{a:?}")
        };
        assert_eq!(meta.positions[0].subtasks, [vec![3u8], vec![9u8]]);
        c.on(Event::Committed {
            epoch: Epoch(1),
            now: 11,
        });
        // The input ends: sinks end in epoch 2, which is committed last with
        // the final positions.
        c.on(Event::SourceEnded {
            source: 0,
            subtask: 0,
            position: pos(4),
        });
        assert!(c
            .on(Event::SinkEnded {
                sink: 0,
                epoch: Epoch(2)
            })
            .is_empty());
        let a = c.on(Event::SinkEnded {
            sink: 1,
            epoch: Epoch(2),
        });
        let [Action::Commit { epoch, meta }] = a.as_slice() else {
            panic!("{a:?}")
        };
        assert_eq!(*epoch, Epoch(2));
        assert_eq!(meta.positions[0].subtasks, [vec![4u8], vec![9u8]]);
        assert_eq!(meta.watermark, MAX_WATERMARK);
        assert!(meta.finished, "the final commit says the input ended");
        assert!(
            c.on(Event::Tick { now: 100 }).is_empty(),
            "no barrier after the end"
        );
        assert_eq!(
            c.on(Event::Committed {
                epoch: Epoch(2),
                now: 101
            }),
            [Action::Finished(Epoch(2))]
        );
        assert!(c.is_finished());
    }

    #[test]
    fn a_slow_checkpoint_is_abandoned_and_the_next_one_covers_it() {
        let mut c = Coordinator::new(settings(Some(10)), Epoch(0));
        c.on(Event::Tick { now: 0 });
        assert_eq!(c.on(Event::Tick { now: 10 }), [Action::Inject(Epoch(1))]);
        c.on(barrier(0, 1, 1, 0));
        assert!(c.on(Event::Tick { now: 500 }).is_empty());
        assert_eq!(c.on(Event::Tick { now: 1011 }), [Action::Abandon(Epoch(1))]);
        assert_eq!(c.on(Event::Tick { now: 1021 }), [Action::Inject(Epoch(2))]);
        // Late answers for 1 change nothing.
        assert!(c
            .on(Event::SinkBarrier {
                sink: 0,
                epoch: Epoch(1)
            })
            .is_empty());
        for s in 0..2 {
            c.on(barrier(s, 2, 5, 0));
        }
        c.on(Event::SinkBarrier {
            sink: 0,
            epoch: Epoch(2),
        });
        let a = c.on(Event::SinkBarrier {
            sink: 1,
            epoch: Epoch(2),
        });
        assert!(
            matches!(
                a.as_slice(),
                [Action::Commit {
                    epoch: Epoch(2),
                    ..
                }]
            ),
            "{a:?}"
        );
    }

    #[test]
    fn without_an_interval_only_the_end_commits() {
        let mut c = Coordinator::new(settings(None), Epoch(3));
        for now in [0, 1_000, 1_000_000] {
            assert!(c.on(Event::Tick { now }).is_empty());
        }
        for s in 0..2 {
            c.on(Event::SourceEnded {
                source: 0,
                subtask: s,
                position: pos(s as u8),
            });
        }
        c.on(Event::SinkEnded {
            sink: 0,
            epoch: Epoch(4),
        });
        let a = c.on(Event::SinkEnded {
            sink: 1,
            epoch: Epoch(4),
        });
        assert!(
            matches!(
                a.as_slice(),
                [Action::Commit {
                    epoch: Epoch(4),
                    ..
                }]
            ),
            "{a:?}"
        );
        // Sinks that end in an epoch already committed move the final one up.
        let mut c = Coordinator::new(settings(None), Epoch(9));
        c.on(Event::SinkEnded {
            sink: 0,
            epoch: Epoch(9),
        });
        let a = c.on(Event::SinkEnded {
            sink: 1,
            epoch: Epoch(9),
        });
        assert!(
            matches!(
                a.as_slice(),
                [Action::Commit {
                    epoch: Epoch(10),
                    ..
                }]
            ),
            "{a:?}"
        );
    }

    #[test]
    fn injections_give_durations_and_forget_older_epochs() {
        let mut i = Injections::default();
        i.record(Epoch(3), 100);
        i.record(Epoch(4), 150);
        assert_eq!(i.take(Epoch(3), 180), 80);
        assert_eq!(i.take(Epoch(3), 200), 0);
        assert_eq!(i.take(Epoch(4), 200), 50);
    }
}
