//! Moving batches between subtasks: key groups, partitioning senders and
//! the merging receiver that aligns watermarks and barriers.
//!
//! Key groups follow Flink: `key_group = hash(key) % max_parallelism`, and
//! subtask `i` of `p` owns the contiguous range of key groups
//! `[ceil(i·m/p), ceil((i+1)·m/p))`. The hash is the store's stable key hash
//! of the key's encoding, so owners never change across versions.

use std::sync::Arc;
use std::task::Poll;

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::message::Msg;
use super::pull::{BoxPull, Pull};
use crate::error::{Error, Result};
use crate::time::{Timestamp, MIN_WATERMARK};

/// Batches a channel holds before its sender waits: the back-pressure bound.
pub const CHANNEL_BATCHES: usize = 8;

#[inline]
pub fn key_group_of(key_bytes: &[u8], max_parallelism: u16) -> u16 {
    riverbed_state_store::keys::key_group_of(key_bytes, max_parallelism).0
}

/// The subtask owning `key_group` (Flink's `computeOperatorIndexForKeyGroup`).
#[inline]
pub fn subtask_of(key_group: u16, max_parallelism: u16, parallelism: usize) -> usize {
    usize::from(key_group) * parallelism / usize::from(max_parallelism)
}

/// The key groups subtask `i` of `p` owns, as an inclusive range.
pub fn key_groups_of(i: usize, parallelism: usize, max_parallelism: u16) -> (u16, u16) {
    let m = usize::from(max_parallelism);
    let start = (i * m).div_ceil(parallelism);
    let end = ((i + 1) * m).div_ceil(parallelism) - 1;
    (start as u16, end as u16)
}

/// Appends the encoding of a record's key to a buffer.
pub type KeyEncoder<T> = Arc<dyn Fn(&T, &mut Vec<u8>) + Send + Sync>;

/// How a sender spreads data batches over the receivers.
pub enum Partitioner<T> {
    /// By the key group of each record's key bytes.
    Hash {
        key_bytes: KeyEncoder<T>,
        max_parallelism: u16,
    },
    /// All data to one receiver (union and rebalance use this per sender).
    Forward(usize),
}

/// Runs one sender: pulls its chain and sends to every receiver.
pub async fn send_all<T: Send + 'static>(
    mut input: BoxPull<T>,
    senders: Vec<mpsc::Sender<Msg<T>>>,
    partitioner: Partitioner<T>,
) -> Result<()> {
    let n = senders.len();
    let mut buf = Vec::new();
    loop {
        let msg = input.next().await?;
        match msg {
            Msg::Data(batch) => match &partitioner {
                Partitioner::Forward(i) => send(&senders[*i], Msg::Data(batch)).await?,
                Partitioner::Hash {
                    key_bytes,
                    max_parallelism,
                } => {
                    let mut parts: Vec<Vec<T>> = (0..n).map(|_| Vec::new()).collect();
                    for rec in batch {
                        buf.clear();
                        key_bytes(&rec, &mut buf);
                        let kg = key_group_of(&buf, *max_parallelism);
                        parts[subtask_of(kg, *max_parallelism, n)].push(rec);
                    }
                    for (i, part) in parts.into_iter().enumerate() {
                        if !part.is_empty() {
                            send(&senders[i], Msg::Data(part)).await?;
                        }
                    }
                }
            },
            other => {
                let end = matches!(other, Msg::End);
                for s in &senders {
                    send(s, clone_control(&other)).await?;
                }
                if end {
                    return Ok(());
                }
            }
        }
    }
}

fn clone_control<T>(m: &Msg<T>) -> Msg<T> {
    match m {
        Msg::Watermark(w) => Msg::Watermark(*w),
        Msg::Barrier(e) => Msg::Barrier(*e),
        Msg::End => Msg::End,
        Msg::Data(_) => unreachable!("data is partitioned, not broadcast"),
    }
}

async fn send<T>(s: &mpsc::Sender<Msg<T>>, m: Msg<T>) -> Result<()> {
    s.send(m).await.map_err(|_| Error::DownstreamStopped)
}

struct Input<T> {
    rx: mpsc::Receiver<Msg<T>>,
    watermark: Timestamp,
    /// Delivered the pending barrier; not read until the barrier is aligned.
    blocked: bool,
    ended: bool,
}

/// The receiving side of an exchange for one subtask: merges its inputs,
/// forwards the minimum watermark, aligns barriers (an input that delivered
/// barrier `e` is not read again until all inputs have), ends when all end.
pub struct MergePull<T> {
    inputs: Vec<Input<T>>,
    watermark: Timestamp,
    pending_barrier: Option<riverbed_state_store::Epoch>,
    /// When the first input delivered the pending barrier.
    first_barrier_at: Option<std::time::Instant>,
    /// The wait of the barrier last released, until taken.
    aligned_after: Option<std::time::Duration>,
    start: usize,
}

impl<T> MergePull<T> {
    pub fn new(rxs: Vec<mpsc::Receiver<Msg<T>>>) -> Self {
        MergePull {
            inputs: rxs
                .into_iter()
                .map(|rx| Input {
                    rx,
                    watermark: MIN_WATERMARK,
                    blocked: false,
                    ended: false,
                })
                .collect(),
            watermark: MIN_WATERMARK,
            pending_barrier: None,
            first_barrier_at: None,
            aligned_after: None,
            start: 0,
        }
    }

    fn min_watermark(&self) -> Timestamp {
        self.inputs
            .iter()
            .filter(|i| !i.ended)
            .map(|i| i.watermark)
            .min()
            .unwrap_or(crate::time::MAX_WATERMARK)
    }

    /// Releases the pending barrier once every live input delivered it.
    fn barrier_aligned(&mut self) -> Option<riverbed_state_store::Epoch> {
        let e = self.pending_barrier?;
        if self.inputs.iter().all(|i| i.ended || i.blocked) {
            self.inputs.iter_mut().for_each(|i| i.blocked = false);
            self.pending_barrier = None;
            if self.inputs.len() > 1 {
                self.aligned_after = self.first_barrier_at.take().map(|t| t.elapsed());
            }
            return Some(e);
        }
        None
    }

    fn advanced_watermark(&mut self) -> Option<Timestamp> {
        let m = self.min_watermark();
        (m > self.watermark).then(|| {
            self.watermark = m;
            m
        })
    }
}

impl<T: Send + 'static> Pull<T> for MergePull<T> {
    fn next(&mut self) -> BoxFuture<'_, Result<Msg<T>>> {
        Box::pin(async move {
            loop {
                if self.inputs.iter().all(|i| i.ended) {
                    return Ok(Msg::End);
                }
                let n = self.inputs.len();
                let start = self.start;
                let inputs = &mut self.inputs;
                let (idx, msg) = futures::future::poll_fn(|cx| {
                    for k in 0..n {
                        let idx = (start + k) % n;
                        let input = &mut inputs[idx];
                        if input.ended || input.blocked {
                            continue;
                        }
                        if let Poll::Ready(m) = input.rx.poll_recv(cx) {
                            return Poll::Ready((idx, m));
                        }
                    }
                    Poll::Pending
                })
                .await;
                self.start = idx + 1;
                match msg {
                    None => return Err(Error::UpstreamStopped),
                    Some(Msg::Data(b)) => return Ok(Msg::Data(b)),
                    Some(Msg::Watermark(w)) => {
                        self.inputs[idx].watermark = self.inputs[idx].watermark.max(w);
                        if let Some(m) = self.advanced_watermark() {
                            return Ok(Msg::Watermark(m));
                        }
                    }
                    Some(Msg::Barrier(e)) => {
                        self.inputs[idx].blocked = true;
                        if self.pending_barrier.is_none() {
                            #[allow(clippy::disallowed_methods)] // a duration, not event time
                            let now = std::time::Instant::now();
                            self.first_barrier_at = Some(now);
                        }
                        self.pending_barrier = Some(e);
                        if let Some(e) = self.barrier_aligned() {
                            return Ok(Msg::Barrier(e));
                        }
                    }
                    Some(Msg::End) => {
                        self.inputs[idx].ended = true;
                        self.inputs[idx].blocked = false;
                        if let Some(e) = self.barrier_aligned() {
                            return Ok(Msg::Barrier(e));
                        }
                        if self.inputs.iter().any(|i| !i.ended) {
                            if let Some(m) = self.advanced_watermark() {
                                return Ok(Msg::Watermark(m));
                            }
                        }
                    }
                }
            }
        })
    }

    fn take_alignment(&mut self) -> Option<std::time::Duration> {
        self.aligned_after.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_group_ranges_cover_all_groups_once() {
        for p in 1..=7 {
            let mut next = 0u32;
            for i in 0..p {
                let (s, e) = key_groups_of(i, p, 128);
                assert_eq!(u32::from(s), next);
                for kg in s..=e {
                    assert_eq!(subtask_of(kg, 128, p), i);
                }
                next = u32::from(e) + 1;
            }
            assert_eq!(next, 128);
        }
    }

    #[tokio::test]
    async fn merge_aligns_barriers_and_takes_the_minimum_watermark() {
        let (a_tx, a_rx) = mpsc::channel(16);
        let (b_tx, b_rx) = mpsc::channel(16);
        let mut m = MergePull::new(vec![a_rx, b_rx]);
        let e1 = riverbed_state_store::Epoch(1);
        a_tx.send(Msg::Watermark(10)).await.unwrap();
        a_tx.send(Msg::Barrier(e1)).await.unwrap();
        a_tx.send(Msg::Data(vec![1])).await.unwrap();
        b_tx.send(Msg::Watermark(5)).await.unwrap();
        b_tx.send(Msg::Data(vec![2])).await.unwrap();
        b_tx.send(Msg::Barrier(e1)).await.unwrap();
        b_tx.send(Msg::End).await.unwrap();
        a_tx.send(Msg::End).await.unwrap();
        let mut got = Vec::new();
        loop {
            let msg = m.next().await.unwrap();
            let end = msg == Msg::End;
            got.push(msg);
            if end {
                break;
            }
        }
        // Data 1 (after a's barrier) only comes after the aligned barrier;
        // the watermark never exceeds the slower input.
        let barrier_at = got.iter().position(|x| *x == Msg::Barrier(e1)).unwrap();
        let one_at = got.iter().position(|x| *x == Msg::Data(vec![1])).unwrap();
        let two_at = got.iter().position(|x| *x == Msg::Data(vec![2])).unwrap();
        assert!(two_at < barrier_at && barrier_at < one_at, "{got:?}");
        assert_eq!(
            got.iter().find_map(|x| if let Msg::Watermark(w) = x {
                Some(*w)
            } else {
                None
            }),
            Some(5)
        );
    }
}
