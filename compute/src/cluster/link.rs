//! What flows between a job's coordinator and its workers while an attempt
//! runs, as the runtime sees it: the checkpoint coordinator's commands, in
//! the order it gives them, and the events of the workers' sources and
//! sinks. The transport (`workers.proto`) carries both; a job built for a
//! worker ([`crate::Env::for_worker`]) follows the commands instead of
//! running a checkpoint coordinator of its own.

use riverbed_state_store::Epoch;
use tokio::sync::mpsc;

use crate::checkpoint::Event;

/// One command of the checkpoint coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Sources: emit barrier `epoch` before your next batch.
    Inject(Epoch),
    /// The job stops at checkpoint `epoch`: sources emit nothing after its
    /// barrier. Sent before that barrier's `Inject`.
    StopAt(Epoch),
    /// Checkpoint `epoch` is committed: sinks publish what they staged.
    Committed(Epoch),
    /// The input ended and its final epoch is committed.
    Finished(Epoch),
}

impl Command {
    /// The command's name on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Inject(_) => "inject",
            Command::StopAt(_) => "stop_at",
            Command::Committed(_) => "committed",
            Command::Finished(_) => "finished",
        }
    }

    pub fn epoch(&self) -> Epoch {
        match *self {
            Command::Inject(e)
            | Command::StopAt(e)
            | Command::Committed(e)
            | Command::Finished(e) => e,
        }
    }

    /// The command named `kind` (see [`Command::kind`]).
    pub fn parse(kind: &str, epoch: Epoch) -> Option<Command> {
        Some(match kind {
            "inject" => Command::Inject(epoch),
            "stop_at" => Command::StopAt(epoch),
            "committed" => Command::Committed(epoch),
            "finished" => Command::Finished(epoch),
            _ => return None,
        })
    }
}

/// A worker's end of the link for one attempt.
pub struct WorkerLink {
    /// Events of this worker's sources and sinks, to the coordinator.
    pub events: mpsc::UnboundedSender<Event>,
    /// The coordinator's commands, in order.
    pub commands: mpsc::UnboundedReceiver<Command>,
}
