//! The coordinator's side of its workers: the `Workers` gRPC service they
//! attach to, who is alive, and what they say.
//!
//! A worker is alive from its `Register` until its stream ends or it has
//! been silent for the heartbeat timeout; either way the coordinator hears
//! [`MemberEvent::Left`] once, and the worker's later messages are ignored
//! (a worker that comes back registers again, under a new id).

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use parking_lot::Mutex;
use riverbed_proto::coordinator::v1 as pb;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::{Request, Response, Status, Streaming};

use super::link::Command;
use super::wire;
use crate::checkpoint::Event;

pub use pb::workers_server::WorkersServer;

/// What the coordinator hears from its workers.
#[derive(Debug)]
pub enum MemberEvent {
    Joined(u64),
    /// Worker `id` is gone: its stream ended or it was silent too long.
    Left {
        id: u64,
        why: String,
    },
    /// A source or sink event of worker `id`'s subtasks in `attempt`.
    Event {
        id: u64,
        attempt: u64,
        event: Event,
    },
    /// Worker `id`'s part of `attempt` ended.
    Ended {
        id: u64,
        ended: pb::AttemptEnded,
    },
}

struct Member {
    exchange_addr: String,
    pid: u32,
    tx: mpsc::UnboundedSender<Result<pb::ToWorker, Status>>,
    last_seen: Instant,
}

/// The live workers.
pub struct Members {
    inner: Mutex<Inner>,
    events: mpsc::UnboundedSender<MemberEvent>,
    timeout: Duration,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    live: BTreeMap<u64, Member>,
}

impl Members {
    /// No workers yet; a worker silent for `heartbeat_timeout` is dead.
    pub fn new(
        heartbeat_timeout: Duration,
    ) -> (Arc<Members>, mpsc::UnboundedReceiver<MemberEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let m = Arc::new(Members {
            inner: Mutex::new(Inner {
                next_id: 1,
                ..Default::default()
            }),
            events,
            timeout: heartbeat_timeout,
        });
        tokio::spawn(watch_heartbeats(Arc::downgrade(&m)));
        (m, rx)
    }

    /// The gRPC service workers attach to.
    pub fn service(self: &Arc<Self>) -> WorkersServer<WorkersService> {
        WorkersServer::new(WorkersService {
            members: self.clone(),
        })
    }

    /// The live workers, oldest first: id, exchange address and pid.
    pub fn live(&self) -> Vec<(u64, String, u32)> {
        self.inner
            .lock()
            .live
            .iter()
            .map(|(id, m)| (*id, m.exchange_addr.clone(), m.pid))
            .collect()
    }

    /// Sends `msg` to worker `id`; false when it is gone.
    fn send(&self, id: u64, msg: pb::ToWorker) -> bool {
        self.inner
            .lock()
            .live
            .get(&id)
            .is_some_and(|m| m.tx.send(Ok(msg)).is_ok())
    }

    /// Assigns worker `id` its part of `attempt`: index `index` of
    /// `peers.len()`, writing with `generation`, building the plan from
    /// `job`. False when it is gone.
    pub fn assign(
        &self,
        id: u64,
        attempt: u64,
        index: usize,
        peers: &[String],
        generation: u64,
        job: bytes::Bytes,
    ) -> bool {
        self.send(
            id,
            pb::ToWorker {
                kind: Some(pb::to_worker::Kind::Assign(pb::Assign {
                    attempt,
                    index: index as u32,
                    workers: peers.len() as u32,
                    peers: peers.to_vec(),
                    generation,
                    job,
                })),
            },
        )
    }

    /// Tells worker `id` to end its part of `attempt` (it answers with
    /// [`MemberEvent::Ended`] once its subtasks are gone).
    pub fn abort(&self, id: u64, attempt: u64) -> bool {
        self.send(
            id,
            pb::ToWorker {
                kind: Some(pb::to_worker::Kind::Abort(pb::Abort {
                    attempt,
                    job_done: false,
                })),
            },
        )
    }

    /// Sends `command` of `attempt` to each of `ids` that is alive.
    pub fn broadcast(&self, ids: &[u64], attempt: u64, command: Command) {
        let msg = wire::command_to_pb(attempt, command);
        let inner = self.inner.lock();
        for id in ids {
            if let Some(m) = inner.live.get(id) {
                let _ = m.tx.send(Ok(msg.clone()));
            }
        }
    }

    /// Tells every live worker that the job is over (they exit).
    pub fn dismiss_all(&self) {
        let inner = self.inner.lock();
        for m in inner.live.values() {
            let _ = m.tx.send(Ok(pb::ToWorker {
                kind: Some(pb::to_worker::Kind::Abort(pb::Abort {
                    attempt: 0,
                    job_done: true,
                })),
            }));
        }
    }

    /// Worker `id` is gone (once).
    pub fn remove(&self, id: u64, why: String) {
        let gone = self.inner.lock().live.remove(&id);
        if let Some(m) = gone {
            tracing::warn!(worker = id, pid = m.pid, %why, "worker lost");
            let _ = self.events.send(MemberEvent::Left { id, why });
        }
    }

    fn register(
        &self,
        r: pb::Register,
        tx: mpsc::UnboundedSender<Result<pb::ToWorker, Status>>,
    ) -> u64 {
        let id = {
            let mut inner = self.inner.lock();
            let id = inner.next_id;
            inner.next_id += 1;
            inner.live.insert(
                id,
                Member {
                    exchange_addr: r.exchange_addr.clone(),
                    pid: r.pid,
                    tx: tx.clone(),
                    last_seen: Instant::now(),
                },
            );
            id
        };
        tracing::info!(worker = id, pid = r.pid, exchange = %r.exchange_addr, "worker registered");
        let _ = tx.send(Ok(pb::ToWorker {
            kind: Some(pb::to_worker::Kind::Welcome(pb::Welcome {
                worker_id: id,
                heartbeat_timeout_ms: self.timeout.as_millis() as u64,
            })),
        }));
        let _ = self.events.send(MemberEvent::Joined(id));
        id
    }

    /// A message of worker `id`; false once the worker counts as gone.
    fn heard(&self, id: u64, msg: pb::FromWorker) -> bool {
        use pb::from_worker::Kind;
        {
            let mut inner = self.inner.lock();
            match inner.live.get_mut(&id) {
                Some(m) => {
                    m.last_seen = Instant::now();
                    if let Some(Kind::Heartbeat(h)) = &msg.kind {
                        let ack = pb::ToWorker {
                            kind: Some(pb::to_worker::Kind::HeartbeatAck(pb::HeartbeatAck {
                                seq: h.seq,
                            })),
                        };
                        let _ = m.tx.send(Ok(ack));
                    }
                }
                None => return false,
            }
        }
        match msg.kind {
            Some(Kind::Event(e)) => {
                if let Some((attempt, event)) = wire::event_from_pb(e) {
                    let _ = self.events.send(MemberEvent::Event { id, attempt, event });
                }
            }
            Some(Kind::Ended(ended)) => {
                let _ = self.events.send(MemberEvent::Ended { id, ended });
            }
            Some(Kind::Heartbeat(_)) | Some(Kind::Register(_)) | None => {}
        }
        true
    }
}

async fn watch_heartbeats(members: std::sync::Weak<Members>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let Some(m) = members.upgrade() else { return };
        let now = Instant::now();
        let silent: Vec<u64> = m
            .inner
            .lock()
            .live
            .iter()
            .filter(|(_, w)| now.duration_since(w.last_seen) > m.timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            m.remove(id, format!("no heartbeat for {} ms", m.timeout.as_millis()));
        }
    }
}

/// The `Workers` service.
pub struct WorkersService {
    members: Arc<Members>,
}

type ToWorkerStream = Pin<Box<dyn Stream<Item = Result<pb::ToWorker, Status>> + Send>>;

#[tonic::async_trait]
impl pb::workers_server::Workers for WorkersService {
    type AttachStream = ToWorkerStream;

    async fn attach(
        &self,
        req: Request<Streaming<pb::FromWorker>>,
    ) -> Result<Response<ToWorkerStream>, Status> {
        let mut incoming = req.into_inner();
        let first = incoming
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("a worker's stream starts with Register"))?;
        let Some(pb::from_worker::Kind::Register(r)) = first.kind else {
            return Err(Status::invalid_argument(
                "a worker's stream starts with Register",
            ));
        };
        if r.exchange_addr.is_empty() {
            return Err(Status::invalid_argument(
                "Register needs the worker's exchange address",
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let id = self.members.register(r, tx);
        let members = self.members.clone();
        tokio::spawn(async move {
            let why = loop {
                match incoming.message().await {
                    Ok(Some(msg)) => {
                        if !members.heard(id, msg) {
                            return;
                        }
                    }
                    Ok(None) => break "its stream ended".to_string(),
                    Err(s) => break format!("its stream failed: {}", s.message()),
                }
            };
            members.remove(id, why);
        });
        let out =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        Ok(Response::new(Box::pin(out)))
    }
}
