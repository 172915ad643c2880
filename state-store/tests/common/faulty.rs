//! `FaultyStore`: a real object store with one fault injected at a chosen
//! mutating operation — a put, a delete, a copy or a rename.
//!
//! It wraps any `ObjectStore` (the tests use a local directory) and numbers
//! every mutating operation from 1 as it starts. Armed with a [`Fault`], the
//! operation its [`Target`] names (the n-th of a [`Scope`], or the first of
//! a kind on a path) either:
//! - fails once, with an injected `object_store::Error::Generic`, before it
//!   reaches the real store ([`FaultKind::FailBefore`]) or after it did
//!   ([`FaultKind::FailAfter`]: the object changed but the caller saw an
//!   error, as after a timeout on a request that succeeded); every other
//!   operation goes through;
//! - "crashes" the process, with or without performing the operation
//!   ([`FaultKind::CrashAfter`], [`FaultKind::CrashBefore`]): from then on
//!   every operation, reads and listings included, fails, so the store sees
//!   exactly what a dead process left behind.
//!
//! Operations that started before a crash run to completion: they count as
//! having happened just before it. [`Faults::quiesce`] waits for them, so
//! that no write of the dead process lands after a new one opened the store.
//!
//! Puts can also be stalled ([`Faults::stall_puts`]): each waits a while
//! before it reaches the store, as over a slow link, so that background
//! work overlaps what comes after it.
//!
//! Every mutating operation is recorded ([`OpRecord`]) with the workload
//! phase the test set, so a failing case can show where it crashed.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    UploadPart,
};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// What happens at the faulted operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The operation fails without reaching the store.
    FailBefore,
    /// The operation reaches the store, then the caller gets an error.
    FailAfter,
    /// The process dies just before the operation.
    CrashBefore,
    /// The process dies just after the operation, before seeing its result.
    CrashAfter,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::FailBefore,
        FaultKind::FailAfter,
        FaultKind::CrashBefore,
        FaultKind::CrashAfter,
    ];

    /// Whether the faulted operation reaches the real store.
    pub fn performs(self) -> bool {
        matches!(self, FaultKind::FailAfter | FaultKind::CrashAfter)
    }

    /// Whether every operation after the faulted one fails too.
    pub fn crashes(self) -> bool {
        matches!(self, FaultKind::CrashBefore | FaultKind::CrashAfter)
    }
}

/// Which mutating operations count towards [`Target::Nth`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every mutating operation.
    All,
    /// Only those issued from a spawned tokio task: the store's background
    /// flusher, compactor and deleter (foreground calls run in `block_on`,
    /// outside any task).
    Background,
}

/// The mutating operation a fault hits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The `n`-th (from 1) of `scope`. Background tasks interleave with
    /// the caller, so which operation that is may vary between runs.
    Nth { scope: Scope, n: u64 },
    /// The first `kind` operation on `path`: the same operation in every
    /// run of a workload that names its objects deterministically.
    First { kind: OpKind, path: String },
}

/// The fault to inject, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub target: Target,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Put,
    Delete,
    Copy,
    Rename,
    /// The completion of a multipart upload: when its object appears.
    CompleteMultipart,
}

/// One mutating operation, as it started.
#[derive(Debug, Clone)]
pub struct OpRecord {
    /// Position among all mutating operations, from 1.
    pub index: u64,
    /// Position among background ones, from 1, if it was one.
    pub background: Option<u64>,
    pub kind: OpKind,
    pub path: String,
    /// What the workload was doing (see [`Faults::set_phase`]).
    pub phase: String,
    /// The fault injected here, if any.
    pub injected: Option<FaultKind>,
}

impl fmt::Display for OpRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {:?} {} [{}",
            self.index, self.kind, self.path, self.phase
        )?;
        if let Some(b) = self.background {
            write!(f, ", background #{b}")?;
        }
        write!(f, "]")?;
        if let Some(k) = self.injected {
            write!(f, " <== {k:?}")?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Schedule {
    fault: Option<Fault>,
    fired: bool,
    dead: bool,
    ops: u64,
    background_ops: u64,
    phase: String,
    trace: Vec<OpRecord>,
    put_stall: Option<std::time::Duration>,
}

/// The fault schedule and the trace, shared by a [`FaultyStore`] and the test.
#[derive(Default)]
pub struct Faults {
    schedule: Mutex<Schedule>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Faults {
    pub fn new(fault: Option<Fault>) -> Arc<Faults> {
        Arc::new(Faults {
            schedule: Mutex::new(Schedule {
                fault,
                ..Schedule::default()
            }),
            ..Faults::default()
        })
    }

    /// Every put from now on waits `stall` before it reaches the store.
    #[allow(dead_code)] // engine.rs stalls puts; the fault sweeps do not
    pub fn stall_puts(&self, stall: std::time::Duration) {
        self.schedule.lock().put_stall = Some(stall);
    }

    fn put_stall(&self) -> Option<std::time::Duration> {
        self.schedule.lock().put_stall
    }

    /// Names what the workload does from now on, for the trace.
    pub fn set_phase(&self, phase: impl Into<String>) {
        self.schedule.lock().phase = phase.into();
    }

    pub fn trace(&self) -> Vec<OpRecord> {
        self.schedule.lock().trace.clone()
    }

    /// Whether the armed fault was injected.
    pub fn fired(&self) -> bool {
        self.schedule.lock().fired
    }

    /// Kills the simulated process now, if the fault did not already.
    pub fn kill(&self) {
        self.schedule.lock().dead = true;
    }

    /// Waits until no operation that started is still running.
    pub async fn quiesce(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Fails when the process is dead: every operation's first step.
    fn check_alive(&self, what: &str, path: &Path) -> object_store::Result<()> {
        if self.schedule.lock().dead {
            return Err(injected(format!(
                "{what} {path}: the process crashed earlier"
            )));
        }
        Ok(())
    }

    /// Numbers a mutating operation and decides its fate: an error now, or
    /// a permit to run it whose [`Permit::finish`] may turn its result
    /// into an error.
    fn begin(self: &Arc<Self>, kind: OpKind, path: &Path) -> object_store::Result<Permit> {
        let background = tokio::task::try_id().is_some();
        let mut s = self.schedule.lock();
        if s.dead {
            return Err(injected(format!(
                "{kind:?} {path}: the process crashed earlier"
            )));
        }
        s.ops += 1;
        let background = background.then(|| {
            s.background_ops += 1;
            s.background_ops
        });
        let hits = |f: &Fault| match &f.target {
            Target::Nth {
                scope: Scope::All,
                n,
            } => s.ops == *n,
            Target::Nth {
                scope: Scope::Background,
                n,
            } => background == Some(*n),
            Target::First { kind: k, path: p } => *k == kind && p.as_str() == path.as_ref(),
        };
        let hit = s
            .fault
            .as_ref()
            .filter(|f| !s.fired && hits(f))
            .map(|f| f.kind);
        let record = OpRecord {
            index: s.ops,
            background,
            kind,
            path: path.to_string(),
            phase: s.phase.clone(),
            injected: hit,
        };
        let error = hit.map(|k| injected(format!("{k:?} at mutating op {record}")));
        s.trace.push(record);
        if let Some(k) = hit {
            s.fired = true;
            s.dead = k.crashes();
            if !k.performs() {
                return Err(error.expect("set with hit"));
            }
        }
        drop(s);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok(Permit {
            faults: self.clone(),
            error,
        })
    }
}

fn injected(what: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: format!("injected fault: {what}").into(),
    }
}

/// A mutating operation under way.
struct Permit {
    faults: Arc<Faults>,
    /// Returned instead of the operation's result (a fault after it).
    error: Option<object_store::Error>,
}

impl Permit {
    fn finish<T>(mut self, result: object_store::Result<T>) -> object_store::Result<T> {
        match self.error.take() {
            Some(e) => Err(e),
            None => result,
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.faults.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.faults.idle.notify_waiters();
        }
    }
}

/// An `ObjectStore` that injects the faults of its [`Faults`] into `inner`.
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, faults: Arc<Faults>) -> FaultyStore {
        FaultyStore { inner, faults }
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// What `#[async_trait]` turns an `async fn` of the trait into (the crate
/// is not a dependency of the tests, so the impl spells it out).
type Fut<'a, T> = Pin<Box<dyn Future<Output = object_store::Result<T>> + Send + 'a>>;

impl ObjectStore for FaultyStore {
    fn put_opts<'life0, 'life1, 'async_trait>(
        &'life0 self,
        location: &'life1 Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Fut<'async_trait, PutResult>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let op = self.faults.begin(OpKind::Put, location)?;
            if let Some(stall) = self.faults.put_stall() {
                tokio::time::sleep(stall).await;
            }
            op.finish(self.inner.put_opts(location, payload, opts).await)
        })
    }

    fn put_multipart_opts<'life0, 'life1, 'async_trait>(
        &'life0 self,
        location: &'life1 Path,
        opts: PutMultipartOptions,
    ) -> Fut<'async_trait, Box<dyn MultipartUpload>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.faults.check_alive("put_multipart", location)?;
            let upload = self.inner.put_multipart_opts(location, opts).await?;
            Ok(Box::new(FaultyUpload {
                inner: upload,
                faults: self.faults.clone(),
                location: location.clone(),
            }) as Box<dyn MultipartUpload>)
        })
    }

    fn get_opts<'life0, 'life1, 'async_trait>(
        &'life0 self,
        location: &'life1 Path,
        options: GetOptions,
    ) -> Fut<'async_trait, GetResult>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.faults.check_alive("get", location)?;
            self.inner.get_opts(location, options).await
        })
    }

    fn get_ranges<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        location: &'life1 Path,
        ranges: &'life2 [Range<u64>],
    ) -> Fut<'async_trait, Vec<Bytes>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.faults.check_alive("get_ranges", location)?;
            self.inner.get_ranges(location, ranges).await
        })
    }

    /// Each location is one mutating operation, deleted on its own.
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let inner = self.inner.clone();
        let faults = self.faults.clone();
        locations
            .then(move |location| {
                let inner = inner.clone();
                let faults = faults.clone();
                async move {
                    let location = location?;
                    let op = faults.begin(OpKind::Delete, &location)?;
                    op.finish(inner.delete(&location).await).map(|()| location)
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let root = Path::default();
        match self.faults.check_alive("list", prefix.unwrap_or(&root)) {
            Ok(()) => self.inner.list(prefix),
            Err(e) => stream::once(async move { Err(e) }).boxed(),
        }
    }

    fn list_with_delimiter<'life0, 'life1, 'async_trait>(
        &'life0 self,
        prefix: Option<&'life1 Path>,
    ) -> Fut<'async_trait, ListResult>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let root = Path::default();
            self.faults
                .check_alive("list_with_delimiter", prefix.unwrap_or(&root))?;
            self.inner.list_with_delimiter(prefix).await
        })
    }

    fn copy_opts<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        from: &'life1 Path,
        to: &'life2 Path,
        options: CopyOptions,
    ) -> Fut<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let op = self.faults.begin(OpKind::Copy, to)?;
            op.finish(self.inner.copy_opts(from, to, options).await)
        })
    }

    /// One operation, as the inner store may rename atomically (the default
    /// would be a copy and a delete).
    fn rename_opts<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        from: &'life1 Path,
        to: &'life2 Path,
        options: RenameOptions,
    ) -> Fut<'async_trait, ()>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let op = self.faults.begin(OpKind::Rename, to)?;
            op.finish(self.inner.rename_opts(from, to, options).await)
        })
    }
}

/// A multipart upload whose completion is the mutating operation: that is
/// when the object appears.
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    faults: Arc<Faults>,
    location: Path,
}

impl fmt::Debug for FaultyUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyUpload")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        match self.faults.check_alive("put_part", &self.location) {
            Ok(()) => self.inner.put_part(data),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }

    fn complete<'life0, 'async_trait>(&'life0 mut self) -> Fut<'async_trait, PutResult>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let op = self
                .faults
                .begin(OpKind::CompleteMultipart, &self.location)?;
            op.finish(self.inner.complete().await)
        })
    }

    fn abort<'life0, 'async_trait>(&'life0 mut self) -> Fut<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.faults.check_alive("abort", &self.location)?;
            self.inner.abort().await
        })
    }
}
