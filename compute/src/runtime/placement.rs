//! Where a job's subtasks run when it is spread over worker processes.
//!
//! Every worker builds the whole plan, deterministically, from the same job
//! description; a [`Placement`] says which subtasks this process runs
//! (subtask `i` of every operator runs on worker `i % workers`) and where
//! the other workers take exchange edges. An exchange between two subtasks
//! of this worker is an in-process channel as in the one-process run; one
//! between workers is a TCP connection per (sender, receiver) pair
//! (`net_exchange.rs`), so alignment of watermarks and barriers works as it
//! does in process. A plan built with no placement runs every subtask here.
//!
//! # Edge ids
//!
//! The handshake of an edge carries a u64: `attempt (16 bits) | exchange
//! (16) | sender subtask (16) | receiver subtask (16)`, the exchange
//! numbered in the order the plan creates them. The attempt is the store's
//! writer generation the coordinator took for it, which grows with every
//! attempt, across coordinator restarts too: a connection left over from
//! an abandoned attempt is dropped by the receiver (16 bits: an attempt
//! 65,536 attempts older could pass, and would fail its edge).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::lease::Lease;
use super::message::Msg;
use super::net_exchange::{self, EdgeCounters};
use super::Task;
use crate::codec::Codec;
use crate::error::{Error, Result};

/// How long an edge's sender keeps trying to reach its receiver's worker
/// (which may still be building its plan).
const CONNECT_FOR: Duration = Duration::from_secs(20);

/// This process's share of a job spread over workers.
pub struct Placement {
    /// This worker's index; `None` on the coordinator, which runs no subtask.
    worker: Option<usize>,
    workers: usize,
    attempt: u64,
    /// Exchange address of each worker, by index.
    peers: Vec<String>,
    board: Arc<EdgeBoard>,
    exchanges: AtomicU16,
    counters: Arc<EdgeCounters>,
    /// A worker's sinks write only while it holds.
    lease: Option<Arc<Lease>>,
}

impl Placement {
    /// Worker `worker` of `peers.len()` in attempt `attempt`; its incoming
    /// edges arrive on `board`.
    pub fn worker(
        worker: usize,
        peers: Vec<String>,
        attempt: u64,
        board: Arc<EdgeBoard>,
        lease: Arc<Lease>,
    ) -> Self {
        board.begin(attempt);
        Placement {
            worker: Some(worker),
            workers: peers.len().max(1),
            attempt,
            peers,
            board,
            exchanges: AtomicU16::new(0),
            counters: Arc::default(),
            lease: Some(lease),
        }
    }

    /// `Ok` while this process may write output (always, but on a worker
    /// whose lease ran out).
    pub(crate) fn check_lease(&self) -> Result<()> {
        self.lease.as_ref().map_or(Ok(()), |l| l.check())
    }

    /// The lease a worker's sinks write under (`None` off a worker).
    pub(crate) fn lease(&self) -> Option<Arc<Lease>> {
        self.lease.clone()
    }

    /// The coordinator's view: the plan is built for its checkpoint
    /// coordinator's settings (sources, sinks), and no subtask runs here.
    pub fn coordinator(workers: usize) -> Self {
        Placement {
            worker: None,
            workers: workers.max(1),
            attempt: 0,
            peers: Vec::new(),
            board: Arc::default(),
            exchanges: AtomicU16::new(0),
            counters: Arc::default(),
            lease: None,
        }
    }

    /// The worker that runs subtask `i` of an operator.
    pub fn owner(&self, i: usize) -> usize {
        i % self.workers
    }

    /// Whether subtask `i` of an operator runs in this process.
    pub fn owns(&self, i: usize) -> bool {
        self.worker == Some(self.owner(i))
    }

    /// Whether this process runs no subtask (the coordinator).
    pub fn is_coordinator(&self) -> bool {
        self.worker.is_none()
    }

    /// Frames and bytes this worker sent to its peers.
    pub fn counters(&self) -> &EdgeCounters {
        &self.counters
    }

    /// Numbers the next exchange of the plan.
    pub(crate) fn next_exchange(&self) -> u16 {
        self.exchanges.fetch_add(1, Ordering::Relaxed)
    }

    fn edge(&self, exchange: u16, from: usize, to: usize) -> u64 {
        ((self.attempt & 0xffff) << 48)
            | (u64::from(exchange) << 32)
            | ((from as u64 & 0xffff) << 16)
            | (to as u64 & 0xffff)
    }

    /// The task sending what `rx` yields from subtask `from` here to
    /// subtask `to` on its worker.
    pub(crate) fn outbound<T: Codec + Send + 'static>(
        &self,
        exchange: u16,
        from: usize,
        to: usize,
        rx: mpsc::Receiver<Msg<T>>,
    ) -> Task {
        let edge = self.edge(exchange, from, to);
        let addr = self.peers[self.owner(to)].clone();
        let counters = self.counters.clone();
        Box::pin(async move {
            let stream = connect(&addr).await?;
            net_exchange::send_over(rx, stream, edge, counters).await
        })
    }

    /// The task receiving what subtask `from` on its worker sends to
    /// subtask `to` here, into `tx`.
    pub(crate) fn inbound<T: Codec + Send + 'static>(
        &self,
        exchange: u16,
        from: usize,
        to: usize,
        tx: mpsc::Sender<Msg<T>>,
    ) -> Task {
        let edge = self.edge(exchange, from, to);
        let arrived = self.board.expect(edge);
        let peer = self.peers[self.owner(from)].clone();
        Box::pin(async move {
            let stream = arrived.await.map_err(|_| {
                Error::Runtime(format!(
                    "the edge from subtask {from} on worker {peer} was never opened"
                ))
            })?;
            net_exchange::receive_from(stream, tx, net_exchange::DEFAULT_MAX_FRAME_BYTES).await
        })
    }
}

/// Connects to a peer, retrying while it is not listening yet.
async fn connect(addr: &str) -> Result<TcpStream> {
    let deadline = tokio::time::Instant::now() + CONNECT_FOR;
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(peer = addr, error = %e, "peer not reachable yet");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                return Err(Error::Io {
                    what: format!("connecting an exchange edge to worker {addr}"),
                    source: e,
                })
            }
        }
    }
}

/// Where a worker's incoming edges meet the subtasks waiting for them:
/// a connection may arrive before this worker has built its plan, or after.
#[derive(Default)]
pub struct EdgeBoard {
    inner: Mutex<Board>,
}

#[derive(Default)]
struct Board {
    attempt: u64,
    waiting: HashMap<u64, oneshot::Sender<TcpStream>>,
    arrived: HashMap<u64, TcpStream>,
}

impl EdgeBoard {
    /// A new attempt: what is left of the last one is dropped.
    fn begin(&self, attempt: u64) {
        let mut b = self.inner.lock();
        b.attempt = attempt;
        b.waiting.clear();
        // Edges of this attempt may have come already, from a peer that
        // was assigned first; those of later ones too.
        b.arrived.retain(|edge, _| edge >> 48 >= attempt & 0xffff);
    }

    fn expect(&self, edge: u64) -> oneshot::Receiver<TcpStream> {
        let (tx, rx) = oneshot::channel();
        let mut b = self.inner.lock();
        match b.arrived.remove(&edge) {
            Some(s) => {
                let _ = tx.send(s);
            }
            None => {
                b.waiting.insert(edge, tx);
            }
        }
        rx
    }

    fn arrive(&self, edge: u64, stream: TcpStream) {
        let mut b = self.inner.lock();
        if edge >> 48 < b.attempt & 0xffff {
            tracing::debug!(edge, "an edge of an abandoned attempt: dropped");
            return;
        }
        match b.waiting.remove(&edge) {
            Some(tx) => {
                let _ = tx.send(stream);
            }
            None => {
                b.arrived.insert(edge, stream);
            }
        }
    }
}

/// Takes a worker's incoming edges on `listener` for as long as it runs:
/// each connection's handshake names its edge.
pub async fn accept_edges(listener: TcpListener, board: Arc<EdgeBoard>) {
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an exchange edge");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let board = board.clone();
        tokio::spawn(async move {
            match net_exchange::read_handshake(&mut stream).await {
                Ok(edge) => board.arrive(edge, stream),
                Err(e) => tracing::warn!(%peer, error = %e, "not an exchange edge"),
            }
        });
    }
}
