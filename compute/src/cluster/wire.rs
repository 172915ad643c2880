//! Events and commands of the coordinator–worker link in their protobuf
//! shape (`workers.proto`) and back.

use riverbed_proto::coordinator::v1 as pb;
use riverbed_state_store::Epoch;

use super::link::Command;
use crate::checkpoint::Event;
use crate::source::Position;

/// A source or sink event as a worker sends it; `None` for events that
/// only a coordinator makes (ticks, commits).
pub fn event_to_pb(attempt: u64, e: Event) -> Option<pb::WorkerEvent> {
    use pb::worker_event::Kind;
    let kind = match e {
        Event::SourceBarrier {
            source,
            subtask,
            epoch,
            position,
            watermark,
        } => Kind::SourceBarrier(pb::SourceBarrier {
            source: source as u32,
            subtask: subtask as u32,
            epoch: epoch.0,
            position: position.0.into(),
            watermark,
        }),
        Event::SourceEnded {
            source,
            subtask,
            position,
        } => Kind::SourceEnded(pb::SourceEnded {
            source: source as u32,
            subtask: subtask as u32,
            position: position.0.into(),
        }),
        Event::SinkBarrier { sink, epoch } => Kind::SinkBarrier(pb::SinkPassed {
            sink: sink as u32,
            epoch: epoch.0,
        }),
        Event::SinkEnded { sink, epoch } => Kind::SinkEnded(pb::SinkPassed {
            sink: sink as u32,
            epoch: epoch.0,
        }),
        Event::Tick { .. } | Event::Committed { .. } => return None,
    };
    Some(pb::WorkerEvent {
        attempt,
        kind: Some(kind),
    })
}

/// The event a worker sent, with its attempt.
pub fn event_from_pb(e: pb::WorkerEvent) -> Option<(u64, Event)> {
    use pb::worker_event::Kind;
    let event = match e.kind? {
        Kind::SourceBarrier(b) => Event::SourceBarrier {
            source: b.source as usize,
            subtask: b.subtask as usize,
            epoch: Epoch(b.epoch),
            position: Position(b.position.to_vec()),
            watermark: b.watermark,
        },
        Kind::SourceEnded(b) => Event::SourceEnded {
            source: b.source as usize,
            subtask: b.subtask as usize,
            position: Position(b.position.to_vec()),
        },
        Kind::SinkBarrier(s) => Event::SinkBarrier {
            sink: s.sink as usize,
            epoch: Epoch(s.epoch),
        },
        Kind::SinkEnded(s) => Event::SinkEnded {
            sink: s.sink as usize,
            epoch: Epoch(s.epoch),
        },
    };
    Some((e.attempt, event))
}

pub fn command_to_pb(attempt: u64, c: Command) -> pb::ToWorker {
    pb::ToWorker {
        kind: Some(pb::to_worker::Kind::Command(pb::Command {
            attempt,
            kind: c.kind().into(),
            epoch: c.epoch().0,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_commands_survive_the_wire() {
        let events = [
            Event::SourceBarrier {
                source: 1,
                subtask: 3,
                epoch: Epoch(7),
                position: Position(vec![1, 2, 3]),
                watermark: -5,
            },
            Event::SourceEnded {
                source: 0,
                subtask: 2,
                position: Position(vec![]),
            },
            Event::SinkBarrier {
                sink: 4,
                epoch: Epoch(9),
            },
            Event::SinkEnded {
                sink: 5,
                epoch: Epoch(10),
            },
        ];
        for e in events {
            let pb = event_to_pb(12, e.clone()).expect("a worker event");
            assert_eq!(event_from_pb(pb), Some((12, e)));
        }
        assert!(event_to_pb(1, Event::Tick { now: 3 }).is_none());
        for c in [
            Command::Inject(Epoch(2)),
            Command::StopAt(Epoch(3)),
            Command::Committed(Epoch(4)),
            Command::Finished(Epoch(5)),
        ] {
            let Some(pb::to_worker::Kind::Command(got)) = command_to_pb(3, c).kind else {
                panic!("a command");
            };
            assert_eq!(got.attempt, 3);
            assert_eq!(Command::parse(&got.kind, Epoch(got.epoch)), Some(c));
        }
    }
}
