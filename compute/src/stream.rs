//! The typed dataflow API, in the spirit of Flink's DataStream.
//!
//! A `DataStream<T>` is one pull chain per subtask. Stateless operators
//! (`map`, `filter`, `flat_map`) chain onto it; `key_by` and `union` insert an
//! exchange (channels between subtasks); keyed operators run on the
//! receiving side and keep their state in the store. Cycles cannot be built,
//! and keyed operators exist only on a `KeyedStream`, so those mistakes are
//! type errors; the checks left for run time (event time for windows,
//! operator names, parallelism) fail `execute` before anything runs.

use std::sync::Arc;

use riverbed_state_store::Epoch;
use tokio::sync::mpsc;

use crate::changelog::Change;
use crate::checkpoint::Event;
use crate::codec::Codec;
use crate::env::Env;
use crate::error::{Error, Result};
use crate::operators::dedup::DedupFirst;
use crate::operators::group_agg::{GroupAggregate, MiniBatch};
use crate::operators::join::Side;
use crate::operators::window::{WindowAggregate, WindowResult, Windows};
use crate::operators::{Aggregate, Operator, OperatorPull};
use crate::runtime::exchange::{send_all, MergePull, Partitioner, CHANNEL_BATCHES};
use crate::runtime::message::Msg;
use crate::runtime::pull::{BoxPull, Transform};
use crate::sink::{CollectHandle, Sink};
use crate::source::{EventTime, IterReader, OpenReader, Source, SourcePull, SourceReader};
use crate::time::{KeyFn, Timestamp, TimestampFn, WatermarkStrategy, MIN_WATERMARK};

/// How a window operator reads time and treats late records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WindowMode {
    EventTime,
    EventTimeLateOutput,
    ProcessingTime,
}

pub struct DataStream<T> {
    pub(crate) env: Env,
    pub(crate) pulls: Vec<BoxPull<T>>,
    /// How to read event time from this stream's records, if declared.
    pub(crate) timestamp: Option<TimestampFn<T>>,
    /// Whether watermarks flow (some source has event time).
    pub(crate) watermarks: bool,
}

/// A stream partitioned by key: each key's records reach one subtask, the
/// owner of the key's key group.
pub struct KeyedStream<T, K> {
    pub(crate) stream: DataStream<T>,
    pub(crate) key_fn: KeyFn<T, K>,
}

impl Env {
    /// A source whose subtask `i` of `parallelism` reads `make(i, parallelism)`.
    pub fn source<T: Send + 'static, I>(
        &self,
        name: &str,
        parallelism: usize,
        make: impl Fn(usize, usize) -> I,
    ) -> DataStream<T>
    where
        I: Iterator<Item = T> + Send + 'static,
    {
        self.make_source(name, parallelism, iter_readers(make), None)
    }

    /// A source with event time: timestamps read by `timestamp`, watermarks
    /// by `strategy` after every batch.
    pub fn source_with_event_time<T: Send + 'static, I>(
        &self,
        name: &str,
        parallelism: usize,
        make: impl Fn(usize, usize) -> I,
        timestamp: impl Fn(&T) -> Timestamp + Send + Sync + 'static,
        strategy: WatermarkStrategy,
    ) -> DataStream<T>
    where
        I: Iterator<Item = T> + Send + 'static,
    {
        let et = EventTime {
            timestamp: Arc::new(timestamp),
            strategy,
        };
        self.make_source(name, parallelism, iter_readers(make), Some(et))
    }

    /// A stream read from `source` by `parallelism` subtasks, with event time
    /// when `event_time` says how to read it. Each subtask opens its reader
    /// on its first pull, inside the running job.
    pub fn from_source<T: Send + 'static>(
        &self,
        name: &str,
        parallelism: usize,
        source: Arc<dyn Source<T>>,
        event_time: Option<EventTime<T>>,
    ) -> DataStream<T> {
        let open = move |i: usize, p: usize| -> OpenReader<T> {
            let source = source.clone();
            Box::new(move || source.reader(i, p))
        };
        self.make_source(name, parallelism, open, event_time)
    }

    fn make_source<T: Send + 'static>(
        &self,
        name: &str,
        parallelism: usize,
        open: impl Fn(usize, usize) -> OpenReader<T>,
        et: Option<EventTime<T>>,
    ) -> DataStream<T> {
        if parallelism == 0 {
            self.invalid(format!("source {name:?} has parallelism 0"));
        }
        // Positions to resume from: the checkpoint's, for this source's name.
        // A source keeps the parallelism it was checkpointed with, whatever
        // the job's is now: its positions are per split of its input, and a
        // rescaled job re-partitions after the source, at its exchange.
        let resume: Vec<Option<Vec<u8>>> = match self
            .config
            .resume
            .as_ref()
            .and_then(|c| c.positions_of(name))
        {
            Some(ps) => ps
                .iter()
                .map(|p| (!p.is_empty()).then(|| p.clone()))
                .collect(),
            None => vec![None; parallelism],
        };
        if resume.len() != parallelism {
            tracing::info!(
                source = name,
                checkpointed = resume.len(),
                asked = parallelism,
                "the source keeps the parallelism of its checkpoint"
            );
        }
        let parallelism = resume.len();
        let counters = self.operator(name, parallelism);
        let source = {
            let mut g = self.graph.lock();
            g.sources.push((name.to_string(), parallelism));
            g.sources.len() - 1
        };
        let committed = self.control.committed_epoch();
        let pulls = (0..parallelism)
            .map(|i| {
                Box::new(SourcePull {
                    open: Some(open(i, parallelism)),
                    reader: None,
                    source,
                    subtask: i,
                    resume: resume[i].clone(),
                    batch_size: self.config.batch_size.max(1),
                    event_time: et.clone(),
                    max_ts: MIN_WATERMARK,
                    last_watermark: MIN_WATERMARK,
                    wanted: self.barrier_wanted.clone(),
                    emitted: committed,
                    events: self.events.clone(),
                    queued: Default::default(),
                    done: false,
                    stop_at: self.stop_at.clone(),
                    parked: false,
                    counters: counters.clone(),
                }) as BoxPull<T>
            })
            .collect();
        DataStream {
            env: self.clone(),
            pulls,
            timestamp: et.as_ref().map(|e| e.timestamp.clone()),
            watermarks: et.is_some(),
        }
    }
}

/// Readers over the iterators `make` builds now, at graph construction.
fn iter_readers<T: Send + 'static, I: Iterator<Item = T> + Send + 'static>(
    make: impl Fn(usize, usize) -> I,
) -> impl Fn(usize, usize) -> OpenReader<T> {
    move |i, p| {
        let reader: Box<dyn SourceReader<T>> = Box::new(IterReader::new(make(i, p)));
        Box::new(move || Ok(reader))
    }
}

impl<T: Send + 'static> DataStream<T> {
    pub fn parallelism(&self) -> usize {
        self.pulls.len()
    }

    fn chain<U: Send + 'static, F>(self, name: &str, make: impl Fn() -> F) -> DataStream<U>
    where
        F: FnMut(Vec<T>, &mut Vec<U>) + Send + 'static,
    {
        let counters = self.env.operator(name, self.pulls.len());
        let pulls = self
            .pulls
            .into_iter()
            .map(|p| Box::new(Transform::new(p, make(), counters.clone())) as BoxPull<U>)
            .collect();
        DataStream {
            env: self.env,
            pulls,
            timestamp: None,
            watermarks: self.watermarks,
        }
    }

    /// A flat map that is part of another operator (no counters of its own).
    pub(crate) fn flat_map_unregistered<U: Send + 'static>(
        self,
        f: impl Fn(T) -> Option<U> + Clone + Send + 'static,
    ) -> DataStream<U> {
        let counters = std::sync::Arc::new(crate::runtime::metrics::OperatorCounters::default());
        let pulls = self
            .pulls
            .into_iter()
            .map(|p| {
                let f = f.clone();
                Box::new(Transform::new(
                    p,
                    move |batch: Vec<T>, out: &mut Vec<U>| {
                        out.extend(batch.into_iter().filter_map(&f))
                    },
                    counters.clone(),
                )) as BoxPull<U>
            })
            .collect();
        DataStream {
            env: self.env,
            pulls,
            timestamp: None,
            watermarks: self.watermarks,
        }
    }

    /// A map that is part of another operator (no counters of its own).
    pub(crate) fn map_unregistered<U: Send + 'static>(
        self,
        f: impl Fn(T) -> U + Clone + Send + 'static,
    ) -> DataStream<U> {
        self.flat_map_unregistered(move |t| Some(f(t)))
    }

    pub fn map<U: Send + 'static>(
        self,
        name: &str,
        f: impl Fn(T) -> U + Clone + Send + 'static,
    ) -> DataStream<U> {
        self.chain(name, move || {
            let f = f.clone();
            move |batch: Vec<T>, out: &mut Vec<U>| out.extend(batch.into_iter().map(&f))
        })
    }

    pub fn filter(
        self,
        name: &str,
        f: impl Fn(&T) -> bool + Clone + Send + 'static,
    ) -> DataStream<T> {
        let ts = self.timestamp.clone();
        let mut s = self.chain(name, move || {
            let f = f.clone();
            move |batch: Vec<T>, out: &mut Vec<T>| out.extend(batch.into_iter().filter(|t| f(t)))
        });
        s.timestamp = ts;
        s
    }

    pub fn flat_map<U: Send + 'static, I: IntoIterator<Item = U>>(
        self,
        name: &str,
        f: impl Fn(T) -> I + Clone + Send + 'static,
    ) -> DataStream<U> {
        self.chain(name, move || {
            let f = f.clone();
            move |batch: Vec<T>, out: &mut Vec<U>| out.extend(batch.into_iter().flat_map(&f))
        })
    }

    /// Declares how to read event time from this stream's records (after a
    /// `map` changed their type). Watermarks still come from the sources.
    pub fn with_timestamps(mut self, f: impl Fn(&T) -> Timestamp + Send + Sync + 'static) -> Self {
        self.timestamp = Some(Arc::new(f));
        self
    }

    /// Partitions the stream by `key` over the job's parallelism. The
    /// records need a [`Codec`]: an exchange edge between workers carries
    /// them encoded (`runtime/net_exchange.rs`), as Flink needs a
    /// serializer for every type that crosses a network shuffle.
    pub fn key_by<K: Codec + Send + Sync + 'static>(
        self,
        key: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> KeyedStream<T, K>
    where
        T: crate::codec::Codec,
    {
        let key_fn: KeyFn<T, K> = Arc::new(key);
        let kf = key_fn.clone();
        let max = self.env.config.max_parallelism;
        let p = self.env.config.parallelism.max(1);
        let stream = self.exchange(p, move |_| Partitioner::Hash {
            key_bytes: {
                let kf = kf.clone();
                Arc::new(move |t: &T, buf: &mut Vec<u8>| kf(t).encode(buf))
            },
            max_parallelism: max,
        });
        KeyedStream { stream, key_fn }
    }

    /// Merges two streams of the same type (their subtasks spread
    /// round-robin); its records need a [`Codec`], as for `key_by`.
    pub fn union(self, other: DataStream<T>) -> DataStream<T>
    where
        T: crate::codec::Codec,
    {
        let p = self.env.config.parallelism.max(1);
        let watermarks = self.watermarks || other.watermarks;
        let timestamp = self.timestamp.clone().filter(|_| other.timestamp.is_some());
        let env = self.env.clone();
        let mut pulls = self.pulls;
        pulls.extend(other.pulls);
        let both = DataStream {
            env,
            pulls,
            timestamp,
            watermarks,
        };
        both.exchange(p, move |sender| Partitioner::Forward(sender % p))
    }

    /// Connects every current subtask to `p` receivers through channels.
    fn exchange(self, p: usize, partitioner: impl Fn(usize) -> Partitioner<T>) -> DataStream<T>
    where
        T: crate::codec::Codec,
    {
        let mut rxs: Vec<Vec<mpsc::Receiver<Msg<T>>>> = (0..p).map(|_| Vec::new()).collect();
        let env = &self.env;
        // Spread over workers: an edge between two subtasks of this worker
        // is a channel; one to or from another worker is a connection; an
        // edge between two other workers is not built here.
        let placement = env.placement.clone();
        let exchange = placement.as_ref().map_or(0, |pl| pl.next_exchange());
        for (i, pull) in self.pulls.into_iter().enumerate() {
            let sends = env.owns(i);
            let mut senders = Vec::with_capacity(p);
            for (j, rx_list) in rxs.iter_mut().enumerate() {
                let receives = env.owns(j);
                if !(sends || receives) {
                    continue;
                }
                let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
                match (sends, receives, &placement) {
                    (true, false, Some(pl)) => {
                        senders.push(tx);
                        env.spawn(
                            format!("exchange edge {i}->{j}"),
                            pl.outbound(exchange, i, j, rx),
                        );
                    }
                    (false, true, Some(pl)) => {
                        rx_list.push(rx);
                        env.spawn(
                            format!("exchange edge {i}->{j}"),
                            pl.inbound(exchange, i, j, tx),
                        );
                    }
                    _ => {
                        senders.push(tx);
                        rx_list.push(rx);
                    }
                }
            }
            if sends {
                let part = partitioner(i);
                env.spawn(
                    format!("exchange sender {i}"),
                    Box::pin(send_all(pull, senders, part)),
                );
            }
        }
        DataStream {
            env: self.env,
            pulls: rxs
                .into_iter()
                .map(|r| Box::new(MergePull::new(r)) as BoxPull<T>)
                .collect(),
            timestamp: self.timestamp,
            watermarks: self.watermarks,
        }
    }

    /// Ends the stream in a sink; `make(i)` builds subtask `i`'s instance.
    pub fn sink<S: Sink<T> + 'static>(self, name: &str, make: impl Fn(usize) -> Result<S>) {
        let counters = self.env.operator(name, self.pulls.len());
        let base = {
            let mut g = self.env.graph.lock();
            let base = g.sinks;
            g.sinks += self.pulls.len();
            base
        };
        let first = self.env.first_epoch();
        for (i, mut pull) in self.pulls.into_iter().enumerate() {
            let id = base + i;
            if !self.env.owns(i) {
                continue;
            }
            let sink = make(i);
            let events = self.env.events.clone();
            // On a worker: no output once its lease ran out.
            let placement = self.env.placement.clone();
            let held = placement.as_ref().and_then(|p| p.lease());
            let lease = move || placement.as_ref().map_or(Ok(()), |p| p.check_lease());
            let mut committed = self.env.committed.clone();
            let counters = counters.clone();
            self.env.spawn(
                format!("{name} {i}"),
                Box::pin(async move {
                    let mut sink = sink?;
                    if let Some(l) = held {
                        sink.hold(l);
                    }
                    let mut epoch: Epoch = first;
                    // Publishes what was staged for epochs the coordinator has
                    // committed since the last look (between messages: a sink
                    // never waits for a commit but at its end).
                    let publish =
                        |sink: &mut S, committed: &mut tokio::sync::watch::Receiver<Epoch>| {
                            if committed.has_changed().unwrap_or(false) {
                                let c = *committed.borrow_and_update();
                                lease()?;
                                sink.commit(c)?;
                            }
                            Ok::<(), crate::error::Error>(())
                        };
                    loop {
                        match pull.next().await? {
                            Msg::Data(batch) => {
                                counters.add_in(batch.len());
                                lease()?;
                                sink.write(batch)?;
                            }
                            Msg::Watermark(_) => {}
                            Msg::Barrier(e) => {
                                if let Some(waited) = pull.take_alignment() {
                                    counters.record_alignment(e, waited);
                                }
                                lease()?;
                                sink.pre_commit(e)?;
                                epoch = e.next();
                                let _ = events.send(Event::SinkBarrier { sink: id, epoch: e });
                            }
                            Msg::End => {
                                lease()?;
                                sink.finish()?;
                                sink.pre_commit(epoch)?;
                                let _ = events.send(Event::SinkEnded { sink: id, epoch });
                                // The job's final commit covers this epoch.
                                let c =
                                    *committed.wait_for(|c| *c >= epoch).await.map_err(|_| {
                                        Error::Runtime(
                                            "the job ended before its final commit".into(),
                                        )
                                    })?;
                                lease()?;
                                sink.commit(c)?;
                                return Ok(());
                            }
                        }
                        publish(&mut sink, &mut committed)?;
                    }
                }),
            );
        }
    }

    /// Collects the stream in memory (tests, small results).
    pub fn collect(self, name: &str) -> CollectHandle<T> {
        let handle = CollectHandle::new();
        let h = handle.clone();
        self.sink(name, move |_| Ok(h.sink()));
        handle
    }
}

impl<T, K> KeyedStream<T, K> {
    /// The partitioned stream itself, for stateless work after the exchange.
    pub fn stream(self) -> DataStream<T> {
        self.stream
    }
}

impl<T: Send + 'static, K: Codec + Clone + Send + Sync + 'static> KeyedStream<T, K> {
    /// Runs one instance of the operator `make` builds on each subtask, with
    /// its own keyed state table (shared by the subtasks, split by key group).
    pub(crate) fn stateful<O: Send + 'static, S: crate::state::SubtaskState>(
        self,
        name: &str,
        make: impl Fn(S, Arc<crate::runtime::metrics::OperatorCounters>) -> Box<dyn Operator<T, O>>,
    ) -> DataStream<O> {
        self.stateful_ttl(name, None, make)
    }

    /// Like [`KeyedStream::stateful`] for state that expires after `ttl`
    /// ms of event time: the table is registered with it.
    pub(crate) fn stateful_ttl<O: Send + 'static, S: crate::state::SubtaskState>(
        self,
        name: &str,
        ttl: Option<i64>,
        make: impl Fn(S, Arc<crate::runtime::metrics::OperatorCounters>) -> Box<dyn Operator<T, O>>,
    ) -> DataStream<O> {
        let env = self.stream.env.clone();
        let counters = env.operator(name, self.stream.pulls.len());
        let (kind, value) = S::described();
        let table = env.table_with(
            name,
            Some(riverbed_state_store::catalog::TableInfo {
                key_groups: env.config.max_parallelism,
                kind,
                key: Some(K::schema()),
                value: Some(value),
                ttl_ms: ttl.map_or(0, |t| t.max(0) as u64),
                time_shard_ms: 0,
            }),
        );
        let first = env.first_epoch();
        // Nothing committed yet: the store holds no state of this job (a
        // run starts by dropping uncommitted epochs).
        let fresh = env.control.committed_epoch() == riverbed_state_store::Epoch(0);
        let parallelism = self.stream.pulls.len();
        let max = env.config.max_parallelism;
        let pulls = self
            .stream
            .pulls
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let state = S::for_subtask(crate::state::SubtaskStateSpec {
                    table,
                    operator: name,
                    backend: env.backend.clone(),
                    counters: counters.clone(),
                    capacity: env.config.state_cache_entries,
                    key_groups: crate::runtime::exchange::key_groups_of(i, parallelism, max),
                    fresh,
                });
                let op = make(state, counters.clone());
                Box::new(OperatorPull::new(
                    p,
                    op,
                    first,
                    counters.clone(),
                    env.config.clock.clone(),
                )) as BoxPull<O>
            })
            .collect();
        DataStream {
            env,
            pulls,
            timestamp: None,
            watermarks: self.stream.watermarks,
        }
    }

    /// Keyed aggregate emitting an updating result per key (insert /
    /// update-before / update-after).
    pub fn aggregate<Acc, Out>(
        self,
        name: &str,
        agg: impl Fn() -> Aggregate<T, Acc, Out>,
    ) -> DataStream<Change<(K, Out)>>
    where
        Acc: Codec + Clone + Send + Sync + 'static,
        Out: PartialEq + Clone + Send + 'static,
    {
        let key_fn = self.key_fn.clone();
        let max = self.stream.env.config.max_parallelism;
        let (records, latency) = (
            self.stream.env.config.mini_batch_records,
            self.stream.env.config.mini_batch_latency_ms,
        );
        self.stateful(name, move |state, _| {
            Box::new(GroupAggregate {
                key_fn: key_fn.clone(),
                agg: agg(),
                state,
                max_parallelism: max,
                mini_batch: MiniBatch::new(records, latency),
            })
        })
    }

    /// Event-time window aggregate; needs a source with event time. Late
    /// records (every window they belong to has fired) are counted and dropped.
    pub fn window<Acc, Out>(
        self,
        name: &str,
        windows: Windows,
        agg: impl Fn() -> Aggregate<T, Acc, Out>,
    ) -> DataStream<WindowResult<K, Out>>
    where
        Acc: Codec + Clone + Send + Sync + 'static,
        Out: Send + 'static,
    {
        self.window_op(name, windows, agg, WindowMode::EventTime)
            .lefts()
    }

    /// Like [`window`](Self::window), with late records routed to a second
    /// stream (Flink's `sideOutputLateData`) instead of dropped; they are
    /// counted either way.
    pub fn window_with_late_output<Acc, Out>(
        self,
        name: &str,
        windows: Windows,
        agg: impl Fn() -> Aggregate<T, Acc, Out>,
    ) -> (DataStream<WindowResult<K, Out>>, DataStream<T>)
    where
        Acc: Codec + Clone + Send + Sync + 'static,
        Out: Send + 'static,
    {
        self.window_op(name, windows, agg, WindowMode::EventTimeLateOutput)
            .split(name)
    }

    /// Window aggregate in processing time: a record joins the window that
    /// holds the runtime clock (`JobConfig::clock`) when it arrives, and a
    /// window fires once the clock reaches its end (its last millisecond
    /// still takes records), or at the end of input.
    pub fn window_processing_time<Acc, Out>(
        self,
        name: &str,
        windows: Windows,
        agg: impl Fn() -> Aggregate<T, Acc, Out>,
    ) -> DataStream<WindowResult<K, Out>>
    where
        Acc: Codec + Clone + Send + Sync + 'static,
        Out: Send + 'static,
    {
        self.window_op(name, windows, agg, WindowMode::ProcessingTime)
            .lefts()
    }

    fn window_op<Acc, Out>(
        self,
        name: &str,
        windows: Windows,
        agg: impl Fn() -> Aggregate<T, Acc, Out>,
        mode: WindowMode,
    ) -> DataStream<Side<WindowResult<K, Out>, T>>
    where
        Acc: Codec + Clone + Send + Sync + 'static,
        Out: Send + 'static,
    {
        let env = self.stream.env.clone();
        if let Err(e) = windows.validate() {
            env.invalid(format!("window {name:?}: {e}"));
        }
        let timestamp = match (&self.stream.timestamp, self.stream.watermarks, mode) {
            (_, _, WindowMode::ProcessingTime) => Arc::new(|_: &T| 0),
            (Some(ts), true, _) => ts.clone(),
            _ => {
                env.invalid(format!(
                    "window {name:?} needs event time: use a source with event time, and \
                     with_timestamps after operators that change the record type"
                ));
                Arc::new(|_: &T| 0)
            }
        };
        let key_fn = self.key_fn.clone();
        let max = env.config.max_parallelism;
        self.stateful(name, move |state, counters| {
            let mut op = WindowAggregate::new(
                key_fn.clone(),
                timestamp.clone(),
                windows,
                agg(),
                state,
                max,
                counters,
            );
            op.route_late = mode == WindowMode::EventTimeLateOutput;
            op.processing_time = mode == WindowMode::ProcessingTime;
            Box::new(op)
        })
    }

    /// Keeps the first record of each key, drops the rest.
    pub fn dedup_first(self, name: &str) -> DataStream<T> {
        let key_fn = self.key_fn.clone();
        let max = self.stream.env.config.max_parallelism;
        let ts = self.stream.timestamp.clone();
        let mut s = self.stateful(name, move |state, _| {
            Box::new(DedupFirst {
                key_fn: key_fn.clone(),
                state,
                max_parallelism: max,
            })
        });
        s.timestamp = ts;
        s
    }
}

impl<A: Send + 'static, B: Send + 'static> DataStream<Side<A, B>> {
    /// Only the left records (the right ones are dropped).
    pub(crate) fn lefts(self) -> DataStream<A> {
        self.flat_map_unregistered(|s| match s {
            Side::Left(a) => Some(a),
            Side::Right(_) => None,
        })
    }

    /// Two streams from one: lefts and rights, subtask by subtask, with
    /// watermarks, barriers and the end sent to both.
    pub(crate) fn split(self, name: &str) -> (DataStream<A>, DataStream<B>) {
        let mut lefts = Vec::new();
        let mut rights = Vec::new();
        for (i, mut pull) in self.pulls.into_iter().enumerate() {
            let (ltx, lrx) = mpsc::channel(CHANNEL_BATCHES);
            let (rtx, rrx) = mpsc::channel(CHANNEL_BATCHES);
            lefts.push(Box::new(MergePull::new(vec![lrx])) as BoxPull<A>);
            rights.push(Box::new(MergePull::new(vec![rrx])) as BoxPull<B>);
            if !self.env.owns(i) {
                continue;
            }
            self.env.spawn(
                format!("{name} split {i}"),
                Box::pin(async move {
                    // An output nobody consumes (a dropped stream) just takes nothing;
                    // a consumer that failed reports its own error.
                    loop {
                        let msg = pull.next().await?;
                        match msg {
                            Msg::Data(batch) => {
                                let (mut a, mut b) = (Vec::new(), Vec::new());
                                for s in batch {
                                    match s {
                                        Side::Left(x) => a.push(x),
                                        Side::Right(y) => b.push(y),
                                    }
                                }
                                if !a.is_empty() {
                                    let _ = ltx.send(Msg::Data(a)).await;
                                }
                                if !b.is_empty() {
                                    let _ = rtx.send(Msg::Data(b)).await;
                                }
                            }
                            control => {
                                let end = matches!(control, Msg::End);
                                let (l, r) = match control {
                                    Msg::Watermark(w) => (Msg::Watermark(w), Msg::Watermark(w)),
                                    Msg::Barrier(e) => (Msg::Barrier(e), Msg::Barrier(e)),
                                    _ => (Msg::End, Msg::End),
                                };
                                let _ = ltx.send(l).await;
                                let _ = rtx.send(r).await;
                                if end {
                                    return Ok(());
                                }
                            }
                        }
                    }
                }),
            );
        }
        let (env, watermarks) = (self.env, self.watermarks);
        (
            DataStream {
                env: env.clone(),
                pulls: lefts,
                timestamp: None,
                watermarks,
            },
            DataStream {
                env,
                pulls: rights,
                timestamp: None,
                watermarks,
            },
        )
    }
}
