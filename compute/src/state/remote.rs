//! The state backend of a store in another process: a gRPC client of
//! `riverbed-store serve` (`riverbed.store.v1`).
//!
//! One HTTP/2 connection is shared by every subtask (requests are
//! multiplexed on it) and driven by a small runtime of the backend's own,
//! so that calls work from any thread, the synchronous ones too. Every call
//! has a deadline. Reads, writes and status calls are retried with backoff
//! while the server is unavailable: a subtask awaits each write before its
//! next one, so a repeated write lands in the same order (puts and deletes
//! are idempotent). A commit is not retried: the coordinator decides.
//! Large write batches are cut into parts under the server's message limit,
//! in order, all in the same epoch.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use riverbed_state_store::catalog::TableInfo;
use riverbed_state_store::grpc::client::{connect_error, endpoint, ClientTls};
use riverbed_state_store::grpc::convert::{
    checkpoint_from_pb, checkpoint_to_pb, error_of, ops_to_pb, savepoint_from_pb, table_info_to_pb,
};
use riverbed_state_store::grpc::pb;
use riverbed_state_store::grpc::pb::state_store_client::StateStoreClient;
use riverbed_state_store::{CheckpointMeta, Epoch, SavepointInfo, TableId, WriteBatch};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use super::{ObjectStats, StateBackend, StateControl};
use crate::error::{Error, Result};

/// Keys and values per write request: well under the server's default
/// 256 MiB message limit, and small enough to pipeline.
const PART_BYTES: usize = 8 << 20;
/// Entries per scan page asked of the server.
const SCAN_PAGE: u32 = 4096;

/// How to reach a store service.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// `HOST:PORT` of `riverbed-store serve`.
    pub addr: String,
    /// The job's namespace in the store.
    pub namespace: String,
    /// Sent as `authorization: Bearer TOKEN` when the store has a token file.
    pub token: Option<String>,
    /// TLS to the store, when it serves TLS.
    pub tls: Option<ClientTls>,
    /// Deadline of each call.
    pub timeout: Duration,
    /// How long an idempotent call is retried while the store is unavailable.
    pub retry_for: Duration,
}

impl RemoteOptions {
    pub fn new(addr: impl Into<String>, namespace: impl Into<String>) -> Self {
        RemoteOptions {
            addr: addr.into(),
            namespace: namespace.into(),
            token: None,
            tls: None,
            timeout: Duration::from_secs(60),
            retry_for: Duration::from_secs(10),
        }
    }
}

pub struct RemoteBackend {
    client: StateStoreClient<Channel>,
    opts: RemoteOptions,
    auth: Option<MetadataValue<tonic::metadata::Ascii>>,
    committed: AtomicU64,
    /// The writer generation this client's job took at its last start
    /// (`rollback`); its writes carry it, so a client whose job was taken
    /// over is refused (0 until then: unfenced).
    generation: AtomicU64,
    /// Drives the connection; shut down without waiting when dropped
    /// (which may happen inside another runtime).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for RemoteBackend {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `fut` on `handle`'s runtime from a thread of its own, so that a
/// caller inside another runtime may wait for it.
fn run_blocking<T: Send>(
    handle: &tokio::runtime::Handle,
    fut: impl std::future::Future<Output = T> + Send,
) -> T {
    std::thread::scope(|s| {
        s.spawn(move || handle.block_on(fut))
            .join()
            .expect("a client call panicked")
    })
}

fn remote_err(what: &str, s: &Status) -> Error {
    Error::from(error_of(what, s))
}

impl RemoteBackend {
    /// Connects to the store and reads the namespace's committed epoch.
    pub fn connect(opts: RemoteOptions) -> Result<RemoteBackend> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("riverbed-remote")
            .enable_all()
            .build()
            .map_err(|e| Error::InvalidConfig {
                field: "state",
                reason: format!("cannot start the client's runtime: {e}"),
            })?;
        let auth = match &opts.token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| Error::InvalidConfig {
                        field: "token",
                        reason: "the token holds characters a header cannot carry".into(),
                    })?,
            ),
            None => None,
        };
        // The deadline is enforced by the channel too: a lost answer fails
        // the call at its deadline.
        let endpoint = endpoint(
            &opts.addr,
            opts.tls.as_ref(),
            Duration::from_secs(5),
            opts.timeout,
        )
        .map_err(|reason| Error::InvalidConfig {
            field: "state",
            reason,
        })?;
        let handle = runtime.handle().clone();
        let channel = run_blocking(&handle, async {
            let deadline = tokio::time::Instant::now() + opts.retry_for;
            loop {
                match endpoint.connect().await {
                    Ok(c) => return Ok(c),
                    Err(e) if tokio::time::Instant::now() < deadline => {
                        tracing::debug!(error = %e, "store not reachable yet");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        return Err(Error::InvalidConfig {
                            field: "state",
                            reason: format!(
                                "cannot reach the store at {}: {}",
                                opts.addr,
                                connect_error(&e)
                            ),
                        });
                    }
                }
            }
        })?;
        let client = StateStoreClient::new(channel)
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        let backend = RemoteBackend {
            client,
            opts,
            auth,
            committed: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            runtime: Some(runtime),
        };
        // The first call tells whether gRPC is spoken at all: a plain
        // client of a TLS store (or the reverse) fails here, not later.
        let status = backend.blocking(backend.status()).map_err(|e| {
            // Only a connection that never spoke gRPC gets the TLS hint; a
            // refused token or a bad namespace says so itself.
            let transport = matches!(
                &e,
                Error::State(s) if s.kind() == riverbed_state_store::ErrorKind::Closed
            );
            if !transport {
                return e;
            }
            let hint = if backend.opts.tls.is_some() {
                "is it serving TLS?"
            } else {
                "a store serving TLS needs --tls-ca"
            };
            Error::InvalidConfig {
                field: "state",
                reason: format!(
                    "the store at {} did not answer ({hint}): {e}",
                    backend.opts.addr
                ),
            }
        })?;
        backend
            .committed
            .store(status.committed_epoch, Ordering::SeqCst);
        Ok(backend)
    }

    /// The writer generation this client's writes carry.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Writes with `generation`, one a coordinator took for its workers
    /// (a worker does not take the namespace over itself: it is one of
    /// several writers of the coordinator's attempt).
    pub fn adopt_generation(&self, generation: u64) {
        self.generation.store(generation, Ordering::SeqCst);
    }

    pub fn namespace(&self) -> &str {
        &self.opts.namespace
    }

    /// Runs `fut` to its end from synchronous code, on any thread.
    fn blocking<T: Send>(&self, fut: impl std::future::Future<Output = T> + Send) -> T {
        let rt = self.runtime.as_ref().expect("running until dropped");
        run_blocking(rt.handle(), fut)
    }

    fn request<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.set_timeout(self.opts.timeout);
        if let Some(a) = &self.auth {
            r.metadata_mut().insert("authorization", a.clone());
        }
        r
    }

    /// Calls `call` until it succeeds, fails for good, or the store has
    /// been unavailable for `retry_for`.
    async fn retried<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T>
    where
        F: FnMut(StateStoreClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, Status>>,
    {
        let deadline = tokio::time::Instant::now() + self.opts.retry_for;
        let mut wait = Duration::from_millis(20);
        loop {
            match call(self.client.clone()).await {
                Ok(v) => return Ok(v),
                Err(s)
                    if s.code() == Code::Unavailable && tokio::time::Instant::now() < deadline =>
                {
                    tracing::debug!(what, status = %s, "store unavailable; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
                Err(s) => return Err(remote_err(what, &s)),
            }
        }
    }

    async fn status(&self) -> Result<pb::StatusResponse> {
        let ns = self.opts.namespace.clone();
        self.retried("status", |mut c| {
            let r = self.request(pb::StatusRequest {
                namespace: ns.clone(),
            });
            async move { c.status(r).await.map(|r| r.into_inner()) }
        })
        .await
    }

    /// The namespace's retained checkpoints, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointMeta>> {
        let ns = self.opts.namespace.clone();
        let list = self
            .retried("list checkpoints", |mut c| {
                let r = self.request(pb::ListCheckpointsRequest {
                    namespace: ns.clone(),
                });
                async move { c.list_checkpoints(r).await.map(|r| r.into_inner()) }
            })
            .await?;
        Ok(list
            .checkpoints
            .into_iter()
            .map(checkpoint_from_pb)
            .collect())
    }

    /// Deletes everything the namespace holds (a fresh run's start).
    pub async fn drop_namespace(&self) -> Result<()> {
        let r = self.request(pb::DropNamespaceRequest {
            namespace: self.opts.namespace.clone(),
        });
        self.client
            .clone()
            .drop_namespace(r)
            .await
            .map_err(|s| remote_err("drop namespace", &s))?;
        self.committed.store(0, Ordering::SeqCst);
        Ok(())
    }

    /// Copies the namespace's latest checkpoint out as savepoint `name` in
    /// the store's own storage; what it holds.
    pub async fn export_savepoint(&self, name: &str) -> Result<SavepointInfo> {
        self.savepoint_call(name, false).await
    }

    /// Fills this namespace, which must hold nothing committed, from
    /// savepoint `name`: the job resumes from its checkpoint.
    pub async fn restore_savepoint(&self, name: &str) -> Result<SavepointInfo> {
        let info = self.savepoint_call(name, true).await?;
        self.committed
            .store(info.checkpoint.epoch.0, Ordering::SeqCst);
        Ok(info)
    }

    async fn savepoint_call(&self, name: &str, restore: bool) -> Result<SavepointInfo> {
        let r = self.request(pb::SavepointRequest {
            namespace: self.opts.namespace.clone(),
            name: name.to_string(),
        });
        let mut c = self.client.clone();
        let got = if restore {
            c.restore_savepoint(r).await
        } else {
            c.export_savepoint(r).await
        };
        let what = if restore {
            "restore savepoint"
        } else {
            "export savepoint"
        };
        let got = got.map_err(|s| remote_err(what, &s))?;
        Ok(savepoint_from_pb(got.into_inner()))
    }

    /// Entries of `[start, end)`, at most `limit`, read a page per call.
    async fn scan_entries(
        &self,
        start: &[u8],
        end: &[u8],
        epoch: Epoch,
        limit: usize,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let ns = self.opts.namespace.clone();
        let end = Bytes::copy_from_slice(end);
        let mut cursor = Bytes::copy_from_slice(start);
        let mut out: Vec<(Bytes, Bytes)> = Vec::new();
        while out.len() < limit {
            let want = (limit - out.len()).min(SCAN_PAGE as usize);
            let page = self
                .retried("scan", |mut c| {
                    let r = self.request(pb::ScanRequest {
                        namespace: ns.clone(),
                        epoch: epoch.0,
                        start: cursor.clone(),
                        end: end.clone(),
                        limit: want as u64,
                        page_size: SCAN_PAGE,
                    });
                    async move { c.read_page(r).await.map(|r| r.into_inner()) }
                })
                .await?;
            let full = page.entries.len() == want;
            out.extend(page.entries.into_iter().map(|e| (e.key, e.value)));
            if !full {
                break;
            }
            let mut next = out.last().expect("a full page").0.to_vec();
            next.push(0);
            cursor = Bytes::from(next);
        }
        Ok(out)
    }
}

impl StateBackend for RemoteBackend {
    fn multi_get<'a>(
        &'a self,
        keys: &'a [Bytes],
        epoch: Epoch,
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        Box::pin(async move {
            let ns = self.opts.namespace.clone();
            let got = self
                .retried("multi_get", |mut c| {
                    let r = self.request(pb::MultiGetRequest {
                        namespace: ns.clone(),
                        epoch: epoch.0,
                        keys: keys.to_vec(),
                    });
                    async move { c.multi_get(r).await.map(|r| r.into_inner()) }
                })
                .await?;
            if got.values.len() != keys.len() {
                return Err(Error::from(riverbed_state_store::Error::InvalidArgument(
                    format!(
                        "the store answered {} values for {} keys",
                        got.values.len(),
                        keys.len()
                    ),
                )));
            }
            Ok(got
                .values
                .into_iter()
                .map(|v| v.found.then_some(v.value))
                .collect())
        })
    }

    fn write<'a>(&'a self, epoch: Epoch, batch: &'a WriteBatch) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let ns = self.opts.namespace.clone();
            let generation = self.generation.load(Ordering::SeqCst);
            let mut from = 0;
            while from < batch.len() {
                let (ops, next) = ops_to_pb(batch, from, PART_BYTES);
                self.retried("write", |mut c| {
                    let r = self.request(pb::WriteRequest {
                        namespace: ns.clone(),
                        epoch: epoch.0,
                        ops: ops.clone(),
                        generation,
                    });
                    async move { c.write(r).await.map(|_| ()) }
                })
                .await?;
                from = next;
            }
            Ok(())
        })
    }

    fn scan<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        epoch: Epoch,
    ) -> BoxFuture<'a, Result<Vec<(Bytes, Bytes)>>> {
        Box::pin(self.scan_entries(start, end, epoch, usize::MAX))
    }

    fn scan_page<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
        epoch: Epoch,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<(Bytes, Bytes)>>> {
        Box::pin(self.scan_entries(start, end, epoch, limit))
    }
}

impl StateControl for RemoteBackend {
    fn commit(&self, epoch: Epoch) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let r = self.request(pb::CommitRequest {
                namespace: self.opts.namespace.clone(),
                epoch: epoch.0,
                checkpoint: None,
            });
            self.client
                .clone()
                .commit(r)
                .await
                .map_err(|s| remote_err("commit", &s))?;
            self.committed.fetch_max(epoch.0, Ordering::SeqCst);
            Ok(())
        })
    }

    fn commit_checkpoint(
        &self,
        epoch: Epoch,
        meta: CheckpointMeta,
    ) -> BoxFuture<'_, Result<CheckpointMeta>> {
        Box::pin(async move {
            let r = self.request(pb::CommitRequest {
                namespace: self.opts.namespace.clone(),
                epoch: epoch.0,
                checkpoint: Some(checkpoint_to_pb(&meta)),
            });
            let done = self
                .client
                .clone()
                .commit(r)
                .await
                .map_err(|s| remote_err("commit checkpoint", &s))?
                .into_inner();
            self.committed.fetch_max(epoch.0, Ordering::SeqCst);
            Ok(done.checkpoint.map(checkpoint_from_pb).unwrap_or(meta))
        })
    }

    fn committed_epoch(&self) -> Epoch {
        Epoch(self.committed.load(Ordering::SeqCst))
    }

    fn rollback(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let ns = self.opts.namespace.clone();
            // A run starts: it takes the namespace over, then drops what
            // earlier runs left uncommitted.
            let got = self
                .retried("rollback", |mut c| {
                    let r = self.request(pb::RollbackRequest {
                        namespace: ns.clone(),
                        fence: true,
                    });
                    async move { c.rollback(r).await.map(|r| r.into_inner()) }
                })
                .await?;
            self.generation.store(got.generation, Ordering::SeqCst);
            Ok(())
        })
    }

    fn register_table(&self, name: &str, info: Option<&TableInfo>) -> Result<TableId> {
        let ns = self.opts.namespace.clone();
        let name = name.to_string();
        let info = info.map(table_info_to_pb);
        let got = self.blocking(self.retried("register table", |mut c| {
            let r = self.request(pb::RegisterTableRequest {
                namespace: ns.clone(),
                name: name.clone(),
                info: info.clone(),
            });
            async move { c.register_table(r).await.map(|r| r.into_inner()) }
        }))?;
        Ok(TableId(got.table_id))
    }

    fn object_stats(&self) -> BoxFuture<'_, Result<ObjectStats>> {
        Box::pin(async move {
            let o = self.status().await?.objects.unwrap_or_default();
            Ok(riverbed_state_store::grpc::convert::objects_from_pb(&o))
        })
    }
}
