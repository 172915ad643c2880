//! One edge of an exchange across processes: the messages a sender subtask
//! sends to a receiver subtask on another worker travel over one TCP
//! connection, records encoded with their [`Codec`], watermarks, barriers
//! and the end in the same stream (so a receiver aligns barriers exactly as
//! it does for an in-process channel), with credit-based back-pressure: the
//! sender has at most as many frames in flight as the receiver granted, and
//! the receiver grants them back as it hands messages on. Data batches
//! that queue behind each other travel in one frame.
//!
//! # Wire format
//!
//! ```text
//! handshake (sender → receiver): magic "RVBX" | version u8 = 1 | edge u64 LE
//! frame     (sender → receiver): body length u32 LE | kind u8 | body
//!     kind 0 data:      record count u32 LE | the records' Codec encodings, back to back
//!     kind 1 watermark: i64 LE
//!     kind 2 barrier:   epoch u64 LE
//!     kind 3 end:       (empty)
//! credit    (receiver → sender): frames granted u32 LE
//! ```
//!
//! The receiver grants [`CHANNEL_BATCHES`] frames once it has read the
//! handshake, then `GRANT_EVERY` each time its channel has taken that many
//! messages. A data frame holds the batches that were waiting when it was
//! written (its record count is theirs together), up to `COALESCE_BYTES`.
//! A frame longer
//! than the receiver's limit, an unknown kind, records that do not decode,
//! or a connection that closes before the end frame fail the edge with an
//! error that says which.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::exchange::CHANNEL_BATCHES;
use super::message::Msg;
use crate::codec::Codec;
use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"RVBX";
const VERSION: u8 = 1;
const DATA: u8 = 0;
const WATERMARK: u8 = 1;
const BARRIER: u8 = 2;
const END: u8 = 3;

/// A data frame takes the batches waiting behind its first until it holds
/// this many bytes.
const COALESCE_BYTES: usize = 1 << 20;

/// The receiver grants credits back in groups of this many messages (one
/// write per group instead of one per message).
const GRANT_EVERY: u32 = (CHANNEL_BATCHES / 2) as u32;

/// The largest frame a receiver takes by default: a batch far larger than
/// any source batch of encoded records.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 256 << 20;

fn io(what: &str, e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::BrokenPipe => Error::UpstreamStopped,
        _ => Error::Io {
            what: what.to_string(),
            source: e,
        },
    }
}

fn wire(why: String) -> Error {
    Error::Runtime(format!("network exchange: {why}"))
}

/// Frames sent, for observing back-pressure.
#[derive(Debug, Default)]
pub struct EdgeCounters {
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
}

/// Sends what `rx` yields over `stream` as edge `edge`, until the end of
/// the stream; returns once the end frame is written. A receiver that goes
/// away is [`Error::DownstreamStopped`].
pub async fn send_over<T: Codec>(
    mut rx: mpsc::Receiver<Msg<T>>,
    stream: TcpStream,
    edge: u64,
    counters: Arc<EdgeCounters>,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let mut credits_in = BufReader::new(read);
    let mut out = BufWriter::with_capacity(256 << 10, write);
    let gone = |_| Error::DownstreamStopped;
    let mut hello = Vec::with_capacity(13);
    hello.extend_from_slice(MAGIC);
    hello.push(VERSION);
    hello.extend_from_slice(&edge.to_le_bytes());
    out.write_all(&hello).await.map_err(gone)?;
    out.flush().await.map_err(gone)?;
    let mut credits: u64 = 0;
    let mut frame = Vec::new();
    // A control message that ended the coalescing of a data frame: it
    // goes next, in a frame of its own.
    let mut pending: Option<Msg<T>> = None;
    loop {
        while credits == 0 {
            out.flush().await.map_err(gone)?;
            let granted = credits_in.read_u32_le().await.map_err(gone)?;
            credits += u64::from(granted);
        }
        let msg = match pending.take() {
            Some(m) => m,
            None => match rx.recv().await {
                Some(m) => m,
                // The sending subtask stopped without ending its stream:
                // the receiver must see a failure, not an end.
                None => return Err(Error::UpstreamStopped),
            },
        };
        frame.clear();
        frame.extend_from_slice(&[0; 4]);
        let end = matches!(msg, Msg::End);
        match msg {
            Msg::Data(batch) => {
                // Batches waiting behind this one go in the same frame (up
                // to COALESCE_BYTES): a hash exchange splits each batch
                // over every receiver, and a frame per small part costs a
                // wake-up and a syscall on both sides.
                frame.push(DATA);
                frame.extend_from_slice(&[0; 4]);
                let mut count = batch.len();
                for r in &batch {
                    r.encode(&mut frame);
                }
                while frame.len() < COALESCE_BYTES {
                    match rx.try_recv() {
                        Ok(Msg::Data(more)) => {
                            count += more.len();
                            for r in &more {
                                r.encode(&mut frame);
                            }
                        }
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                frame[5..9].copy_from_slice(&(count as u32).to_le_bytes());
            }
            Msg::Watermark(w) => {
                frame.push(WATERMARK);
                frame.extend_from_slice(&w.to_le_bytes());
            }
            Msg::Barrier(e) => {
                frame.push(BARRIER);
                frame.extend_from_slice(&e.0.to_le_bytes());
            }
            Msg::End => frame.push(END),
        }
        let body = (frame.len() - 4) as u32;
        frame[..4].copy_from_slice(&body.to_le_bytes());
        out.write_all(&frame).await.map_err(gone)?;
        credits -= 1;
        counters.frames.fetch_add(1, Ordering::Relaxed);
        counters
            .bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        // Control messages go out at once: a barrier must not wait for
        // the buffer to fill.
        if !matches!(frame[4], DATA) || (pending.is_none() && rx.is_empty()) {
            out.flush().await.map_err(gone)?;
        }
        if end {
            out.shutdown().await.map_err(gone)?;
            // Close only once the receiver has: a socket closed with the
            // receiver's credits unread resets the connection, and a reset
            // drops frames the receiver had not read yet.
            let mut rest = [0u8; 64];
            while let Ok(n) = credits_in.read(&mut rest).await {
                if n == 0 {
                    break;
                }
            }
            return Ok(());
        }
    }
}

/// Reads a connection's handshake: the edge it carries.
pub async fn read_handshake(stream: &mut TcpStream) -> Result<u64> {
    let mut hello = [0u8; 13];
    stream
        .read_exact(&mut hello)
        .await
        .map_err(|e| io("network exchange handshake", e))?;
    if &hello[..4] != MAGIC {
        return Err(wire("a connection that is not an exchange edge".into()));
    }
    if hello[4] != VERSION {
        return Err(wire(format!(
            "edge protocol version {} (this worker speaks {VERSION})",
            hello[4]
        )));
    }
    Ok(u64::from_le_bytes(hello[5..].try_into().expect("8 bytes")))
}

/// Receives one edge (its handshake already read) into `tx` until its end
/// frame; frames over `max_frame` bytes are refused. The connection closing
/// before the end is [`Error::UpstreamStopped`].
pub async fn receive_from<T: Codec>(
    stream: TcpStream,
    tx: mpsc::Sender<Msg<T>>,
    max_frame: usize,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut input = BufReader::with_capacity(256 << 10, read);
    let grant = |n: u32| n.to_le_bytes();
    write
        .write_all(&grant(CHANNEL_BATCHES as u32))
        .await
        .map_err(|e| io("granting credits", e))?;
    let mut body = Vec::new();
    let mut taken = 0u32;
    loop {
        let len = input
            .read_u32_le()
            .await
            .map_err(|e| io("reading a frame", e))? as usize;
        if len == 0 || len > max_frame {
            return Err(wire(format!(
                "a frame of {len} bytes (the limit is {max_frame})"
            )));
        }
        body.resize(len, 0);
        input
            .read_exact(&mut body)
            .await
            .map_err(|e| io("reading a frame", e))?;
        let (kind, mut rest) = (body[0], &body[1..]);
        let fixed = |rest: &[u8]| -> Result<[u8; 8]> {
            rest.try_into()
                .map_err(|_| wire(format!("a frame of kind {kind} with {} bytes", rest.len())))
        };
        let msg = match kind {
            DATA => {
                if rest.len() < 4 {
                    return Err(wire("a data frame without its record count".into()));
                }
                let n = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
                rest = &rest[4..];
                // Each record takes at least a byte, but for zero-sized
                // ones: bound the allocation by the frame.
                let mut batch = Vec::with_capacity(n.min(rest.len().max(1)));
                for i in 0..n {
                    batch.push(T::decode(&mut rest).ok_or_else(|| {
                        wire(format!("record {i} of a batch of {n} does not decode"))
                    })?);
                }
                if !rest.is_empty() {
                    return Err(wire(format!(
                        "{} bytes after the {n} records of a batch",
                        rest.len()
                    )));
                }
                Msg::Data(batch)
            }
            WATERMARK => Msg::Watermark(i64::from_le_bytes(fixed(rest)?)),
            BARRIER => Msg::Barrier(riverbed_state_store::Epoch(u64::from_le_bytes(fixed(
                rest,
            )?))),
            END if rest.is_empty() => Msg::End,
            other => return Err(wire(format!("a frame of unknown kind {other}"))),
        };
        let end = matches!(msg, Msg::End);
        tx.send(msg).await.map_err(|_| Error::DownstreamStopped)?;
        if end {
            return Ok(());
        }
        // The channel took it: the sender may send one more, granted in
        // groups (the sender still has CHANNEL_BATCHES - GRANT_EVERY + 1
        // in hand when a group is due, so it never waits on a group that
        // is not). A sender that is gone after its end frame is no
        // failure; before, the next read says so.
        taken += 1;
        if taken == GRANT_EVERY {
            taken = 0;
            let _ = write.write_all(&grant(GRANT_EVERY)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riverbed_state_store::Epoch;
    use tokio::net::TcpListener;

    type Rec = (u64, String);

    /// `msgs` with each run of data batches merged into one (what a
    /// receiver may see of them).
    fn coalesced(msgs: Vec<Msg<Rec>>) -> Vec<Msg<Rec>> {
        let mut out: Vec<Msg<Rec>> = Vec::new();
        for m in msgs {
            match (out.last_mut(), m) {
                (Some(Msg::Data(prev)), Msg::Data(more)) => prev.extend(more),
                (_, m) => out.push(m),
            }
        }
        out
    }

    /// A connected pair on loopback: the sender's stream and the
    /// receiver's, its handshake not yet read.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (a.unwrap(), b.unwrap().0)
    }

    /// A seeded sequence of batches, watermarks and barriers, then the end.
    fn messages(seed: u64, n: usize) -> Vec<Msg<Rec>> {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut out = Vec::new();
        for i in 0..n {
            match next() % 5 {
                0 => out.push(Msg::Watermark(next() as i64 >> 1)),
                1 => out.push(Msg::Barrier(Epoch(i as u64))),
                _ => {
                    let len = (next() % 300) as usize;
                    out.push(Msg::Data(
                        (0..len)
                            .map(|j| (next(), "v".repeat((j + i) % 40)))
                            .collect(),
                    ))
                }
            }
        }
        out.push(Msg::End);
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_arrive_in_order_and_whole() {
        for seed in 1..=5u64 {
            let want = messages(seed, 400);
            let (s, mut r) = pair().await;
            let (local_tx, local_rx) = mpsc::channel(CHANNEL_BATCHES);
            let (remote_tx, mut remote_rx) = mpsc::channel(CHANNEL_BATCHES);
            let counters = Arc::new(EdgeCounters::default());
            let sender = tokio::spawn(send_over(local_rx, s, 7, counters.clone()));
            let receiver = tokio::spawn(async move {
                assert_eq!(read_handshake(&mut r).await.unwrap(), 7);
                receive_from::<Rec>(r, remote_tx, DEFAULT_MAX_FRAME_BYTES).await
            });
            let feed = want.clone();
            tokio::spawn(async move {
                for m in feed {
                    local_tx.send(m).await.unwrap();
                }
            });
            let mut got = Vec::new();
            while let Some(m) = remote_rx.recv().await {
                got.push(m);
            }
            sender.await.unwrap().unwrap();
            receiver.await.unwrap().unwrap();
            // Batches that queued behind each other arrive as one.
            assert_eq!(coalesced(got), coalesced(want.clone()), "seed {seed}");
            assert!(counters.frames.load(Ordering::Relaxed) <= want.len() as u64);
        }
    }

    /// A receiver whose downstream does not read takes in no more than the
    /// credits it granted plus what its channel holds: the sender stops
    /// pulling from its subtask.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_receiver_holds_the_sender_back() {
        let (s, mut r) = pair().await;
        let (local_tx, local_rx) = mpsc::channel(1000);
        let (remote_tx, mut remote_rx) = mpsc::channel(2);
        let counters = Arc::new(EdgeCounters::default());
        let sender = tokio::spawn(send_over::<Rec>(local_rx, s, 1, counters.clone()));
        let receiver = tokio::spawn(async move {
            read_handshake(&mut r).await.unwrap();
            receive_from::<Rec>(r, remote_tx, DEFAULT_MAX_FRAME_BYTES).await
        });
        // Each batch fills a frame of its own.
        let big = "x".repeat(COALESCE_BYTES);
        for i in 0..40u64 {
            local_tx
                .send(Msg::Data(vec![(i, big.clone())]))
                .await
                .unwrap();
        }
        local_tx.send(Msg::End).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let sent = counters.frames.load(Ordering::Relaxed);
        // Granted at the start; the channel took 2 and the receiver holds
        // one waiting for room, fewer than a group of grants.
        assert!(
            sent <= CHANNEL_BATCHES as u64 + u64::from(GRANT_EVERY),
            "{sent} frames went out to a receiver that took 2"
        );
        let mut n = 0;
        while let Some(m) = remote_rx.recv().await {
            if let Msg::Data(b) = m {
                for r in b {
                    assert_eq!(r.0, n);
                    n += 1;
                }
            }
        }
        assert_eq!(n, 40);
        sender.await.unwrap().unwrap();
        receiver.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_lost_before_the_end_is_an_upstream_failure() {
        let (s, mut r) = pair().await;
        let (local_tx, local_rx) = mpsc::channel(8);
        let (remote_tx, mut remote_rx) = mpsc::channel(8);
        let sender = tokio::spawn(send_over::<Rec>(
            local_rx,
            s,
            1,
            Arc::new(EdgeCounters::default()),
        ));
        let receiver = tokio::spawn(async move {
            read_handshake(&mut r).await.unwrap();
            receive_from::<Rec>(r, remote_tx, DEFAULT_MAX_FRAME_BYTES).await
        });
        local_tx
            .send(Msg::Data(vec![(1, "a".into())]))
            .await
            .unwrap();
        assert_eq!(
            remote_rx.recv().await,
            Some(Msg::Data(vec![(1, "a".into())]))
        );
        // The sending subtask dies: its channel closes without an end.
        drop(local_tx);
        assert!(matches!(sender.await.unwrap(), Err(Error::UpstreamStopped)));
        assert!(matches!(
            receiver.await.unwrap(),
            Err(Error::UpstreamStopped)
        ));
        assert_eq!(remote_rx.recv().await, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_frames_are_refused_with_what_was_wrong() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"HTTP/1.1 200 OK\r\n".to_vec(), "not an exchange edge"),
            ([&MAGIC[..], &[9], &[0; 8]].concat(), "protocol version 9"),
            (
                [&MAGIC[..], &[VERSION], &[0; 8], &u32::MAX.to_le_bytes()].concat(),
                "the limit is",
            ),
            (
                [&MAGIC[..], &[VERSION], &[0; 8], &1u32.to_le_bytes(), &[7]].concat(),
                "unknown kind 7",
            ),
            (
                [
                    &MAGIC[..],
                    &[VERSION],
                    &[0; 8],
                    &7u32.to_le_bytes(),
                    &[DATA],
                    &2u32.to_le_bytes(),
                    &[0, 1],
                ]
                .concat(),
                "does not decode",
            ),
        ];
        for (bytes, want) in cases {
            let (mut s, mut r) = pair().await;
            s.write_all(&bytes).await.unwrap();
            let (tx, _rx) = mpsc::channel::<Msg<Rec>>(8);
            let err = match read_handshake(&mut r).await {
                Err(e) => e,
                Ok(_) => receive_from(r, tx, 1 << 20).await.unwrap_err(),
            };
            assert!(err.to_string().contains(want), "{err} (wanted {want:?})");
        }
    }
}
