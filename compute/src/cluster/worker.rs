//! A worker process's side of a job spread over workers: it attaches to
//! the coordinator, takes edges from its peers, and runs the attempts it is
//! assigned, each from the job description the coordinator sends (the
//! caller turns that into a plan: [`RunAttempt`]).
//!
//! A worker holds nothing that must survive: when the coordinator goes
//! away the worker drops its attempt and attaches again once it is back;
//! when the coordinator abandons an attempt (another worker died), the
//! worker ends its subtasks before it says so, so that nothing of the old
//! attempt writes after the coordinator has rolled the store back.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_proto::coordinator::v1 as pb;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::link::{Command, WorkerLink};
use super::wire;
use crate::runtime::lease::{heartbeat_clock, Lease};
use crate::runtime::placement::{accept_edges, EdgeBoard, Placement};
use riverbed_state_store::Epoch;

/// A job description as it travels to the workers.
pub type JobBytes = Bytes;

/// How often a worker tells the coordinator it is alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);

/// One attempt this worker is given.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub attempt: u64,
    /// This worker runs subtask `i` of each operator with
    /// `i % peers.len() == index`.
    pub index: usize,
    pub peers: Vec<String>,
    /// The store's writer generation for this attempt's writes.
    pub generation: u64,
    /// The job, as the coordinator's caller encoded it.
    pub job: Bytes,
}

/// What this worker's part of an attempt did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    pub events: u64,
    pub state_reads: u64,
    pub state_writes: u64,
}

/// Builds the plan of an assignment and runs this worker's part of it
/// (with `Env::for_worker`).
pub type RunAttempt = Arc<
    dyn Fn(Assignment, Placement, WorkerLink) -> BoxFuture<'static, Result<Outcome, String>>
        + Send
        + Sync,
>;

struct Current {
    attempt: u64,
    commands: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl Current {
    /// Ends the attempt's subtasks and waits until they are gone.
    async fn end(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Serves as a worker of the coordinator at `coordinator` until it says
/// the job is over; `exchange` takes the edges of peers and is advertised
/// as `advertise`.
pub async fn serve(
    coordinator: String,
    exchange: TcpListener,
    advertise: String,
    run: RunAttempt,
) -> Result<(), String> {
    let board = Arc::new(EdgeBoard::default());
    tokio::spawn(accept_edges(exchange, board.clone()));
    let lease = Arc::new(Lease::new());
    let mut waiting_said = false;
    loop {
        let mut client = match super::client::connect_workers(&coordinator).await {
            Ok(c) => c,
            Err(e) => {
                if !waiting_said {
                    tracing::warn!(error = %e, "waiting for the coordinator");
                    eprintln!("worker: waiting for the coordinator at {coordinator} ({e})");
                    waiting_said = true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        waiting_said = false;
        let (out, out_rx) = mpsc::unbounded_channel::<pb::FromWorker>();
        let registered_at = heartbeat_clock();
        let _ = out.send(pb::FromWorker {
            kind: Some(pb::from_worker::Kind::Register(pb::Register {
                exchange_addr: advertise.clone(),
                pid: std::process::id(),
            })),
        });
        let outgoing =
            futures::stream::unfold(
                out_rx,
                |mut rx| async move { rx.recv().await.map(|m| (m, rx)) },
            );
        let mut incoming = match client.attach(outgoing).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                tracing::warn!(error = s.message(), "attaching to the coordinator");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        // Heartbeats start once the coordinator said its timeout; the
        // times they were sent, for the lease their acknowledgements give.
        let sent: Arc<parking_lot::Mutex<VecDeque<(u64, Instant)>>> = Arc::default();
        let mut beat: Option<JoinHandle<()>> = None;
        let mut span = Duration::ZERO;
        let mut current: Option<Current> = None;
        let done = loop {
            let msg = match incoming.message().await {
                Ok(Some(m)) => m,
                Ok(None) => {
                    tracing::warn!("the coordinator closed the link");
                    break false;
                }
                Err(s) => {
                    tracing::warn!(error = s.message(), "the link to the coordinator failed");
                    break false;
                }
            };
            use pb::to_worker::Kind;
            match msg.kind {
                Some(Kind::Welcome(w)) => {
                    tracing::info!(worker = w.worker_id, "attached to the coordinator");
                    eprintln!(
                        "worker: attached to {coordinator} as worker {}",
                        w.worker_id
                    );
                    let timeout = Duration::from_millis(w.heartbeat_timeout_ms.max(4));
                    span = timeout * 3 / 4;
                    lease.extend(registered_at, span);
                    let every = HEARTBEAT_EVERY.min(timeout / 4);
                    if let Some(b) = beat.take() {
                        b.abort();
                    }
                    beat = Some(tokio::spawn(heartbeats(out.clone(), sent.clone(), every)));
                }
                Some(Kind::HeartbeatAck(a)) => {
                    let at = sent
                        .lock()
                        .iter()
                        .find(|(s, _)| *s == a.seq)
                        .map(|(_, t)| *t);
                    if let Some(t) = at {
                        lease.extend(t, span);
                    }
                }
                Some(Kind::Assign(a)) => {
                    if let Some(c) = current.take() {
                        c.end().await;
                    }
                    current = Some(start(a, &board, &out, &run, &lease));
                }
                Some(Kind::Command(c)) => {
                    match (current.as_ref(), Command::parse(&c.kind, Epoch(c.epoch))) {
                        (Some(cur), Some(cmd)) if cur.attempt == c.attempt => {
                            let _ = cur.commands.send(cmd);
                        }
                        (_, None) => tracing::warn!(kind = c.kind, "unknown command"),
                        _ => {}
                    }
                }
                Some(Kind::Abort(a)) => {
                    if a.job_done {
                        if let Some(c) = current.take() {
                            c.end().await;
                        }
                        break true;
                    }
                    if current.as_ref().is_some_and(|c| c.attempt == a.attempt) {
                        if let Some(c) = current.take() {
                            c.end().await;
                        }
                        let _ = out.send(ended(a.attempt, Err("aborted".into())));
                    }
                }
                None => {}
            }
        };
        if let Some(b) = beat.take() {
            b.abort();
        }
        if let Some(c) = current.take() {
            c.end().await;
        }
        if done {
            tracing::info!("the job is over");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ended(attempt: u64, r: Result<Outcome, String>) -> pb::FromWorker {
    let (error, o) = match r {
        Ok(o) => (String::new(), o),
        Err(e) => (e, Outcome::default()),
    };
    pb::FromWorker {
        kind: Some(pb::from_worker::Kind::Ended(pb::AttemptEnded {
            attempt,
            error,
            events: o.events,
            state_reads: o.state_reads,
            state_writes: o.state_writes,
        })),
    }
}

/// Sends a heartbeat every `every`, remembering when each was sent.
async fn heartbeats(
    out: mpsc::UnboundedSender<pb::FromWorker>,
    sent: Arc<parking_lot::Mutex<VecDeque<(u64, Instant)>>>,
    every: Duration,
) {
    let mut t = tokio::time::interval(every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1.. {
        t.tick().await;
        {
            let mut s = sent.lock();
            s.push_back((seq, heartbeat_clock()));
            while s.len() > 64 {
                s.pop_front();
            }
        }
        let msg = pb::FromWorker {
            kind: Some(pb::from_worker::Kind::Heartbeat(pb::Heartbeat { seq })),
        };
        if out.send(msg).is_err() {
            return;
        }
    }
}

fn start(
    a: pb::Assign,
    board: &Arc<EdgeBoard>,
    out: &mpsc::UnboundedSender<pb::FromWorker>,
    run: &RunAttempt,
    lease: &Arc<Lease>,
) -> Current {
    let attempt = a.attempt;
    tracing::info!(attempt, index = a.index, workers = a.workers, "assigned");
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events, mut events_rx) = mpsc::unbounded_channel();
    let placement = Placement::worker(
        a.index as usize,
        a.peers.clone(),
        attempt,
        board.clone(),
        lease.clone(),
    );
    let assignment = Assignment {
        attempt,
        index: a.index as usize,
        peers: a.peers,
        generation: a.generation,
        job: a.job,
    };
    let link = WorkerLink {
        events,
        commands: commands_rx,
    };
    let job = run(assignment, placement, link);
    let out = out.clone();
    let task = tokio::spawn(async move {
        let forward = {
            let out = out.clone();
            async move {
                while let Some(e) = events_rx.recv().await {
                    if let Some(e) = wire::event_to_pb(attempt, e) {
                        let msg = pb::FromWorker {
                            kind: Some(pb::from_worker::Kind::Event(e)),
                        };
                        let _ = out.send(msg);
                    }
                }
            }
        };
        let (r, ()) = tokio::join!(job, forward);
        if let Err(e) = &r {
            tracing::warn!(attempt, error = %e, "attempt failed");
        }
        let _ = out.send(ended(attempt, r));
    });
    Current {
        attempt,
        commands,
        task,
    }
}
