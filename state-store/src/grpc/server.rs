//! The store service: one process that many jobs' workers and coordinators
//! share, each job in its own namespace, and that outside clients query.
//!
//! # Tokens
//!
//! With a token file, every request carries `authorization: Bearer TOKEN`
//! and the file says what the token may do. One token a line:
//!
//! ```text
//! TOKEN NAMESPACE rw|data|ro      # NAMESPACE `*` for every namespace
//! ```
//!
//! Blank lines and lines starting with `#` are skipped. `ro` allows reads,
//! scans, queries, status and checkpoint listings; `data` adds writes (the
//! data plane: what a worker's operators do); `rw` allows everything,
//! the control plane too (tables, commits, rollback, savepoints, dropping
//! the namespace: what a job's coordinator does). A refusal is logged with
//! the namespace and the call, never the token.
//!
//! # Limits
//!
//! Keys, values, requests and scan pages have size limits ([`Limits`]); a
//! request over one is refused with `INVALID_ARGUMENT` naming the limit.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use serde::Deserialize;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::convert::{
    batch_from_pb, checkpoint_from_pb, checkpoint_to_pb, savepoint_to_pb, status_of,
    table_info_from_pb,
};
use super::metrics::RequestMetrics;
use super::{pb, query};
use crate::error::{Error, Result};
use crate::{Epoch, Options, Store};

/// Size limits on what a request may carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest key. 64 KiB: state keys are a table, a key group and a
    /// user key; anything longer is a bug in the caller.
    pub max_key_bytes: usize,
    /// Largest value. 64 MiB: one key's state (a window's list) can be
    /// large, but a value is read whole.
    pub max_value_bytes: usize,
    /// Largest request message. 256 MiB: a worker's barrier flush is cut
    /// into parts below this by the client.
    pub max_request_bytes: usize,
    /// Most entries in one scan page.
    pub max_scan_page: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 64 << 10,
            max_value_bytes: 64 << 20,
            max_request_bytes: 256 << 20,
            max_scan_page: 64 << 10,
        }
    }
}

/// What a token may do, each level including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    /// Reads and writes: the data plane.
    Write,
    /// Everything: the control plane too.
    ReadWrite,
}

/// The token file, parsed: token → (namespace or `*`, access).
#[derive(Debug, Default)]
pub struct Tokens {
    grants: HashMap<String, Vec<(String, Access)>>,
}

impl Tokens {
    pub fn parse(text: &str) -> Result<Tokens> {
        let mut grants: HashMap<String, Vec<(String, Access)>> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| Error::Config(format!("token file line {}: {why}", i + 1));
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [token, ns, access] = parts[..] else {
                return Err(bad("expected `TOKEN NAMESPACE rw|data|ro`"));
            };
            let access = match access {
                "rw" => Access::ReadWrite,
                "data" => Access::Write,
                "ro" => Access::Read,
                _ => return Err(bad("access must be `rw`, `data` or `ro`")),
            };
            if ns != "*" {
                crate::namespace::validate(ns).map_err(|e| bad(&e.to_string()))?;
            }
            grants
                .entry(token.to_string())
                .or_default()
                .push((ns.to_string(), access));
        }
        Ok(Tokens { grants })
    }

    pub fn load(path: &Path) -> Result<Tokens> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!("cannot read token file {}: {e}", path.display()))
        })?;
        Tokens::parse(&text)
    }

    fn allows(&self, token: &str, ns: &str, want: Access) -> bool {
        self.grants
            .get(token)
            .is_some_and(|g| g.iter().any(|(n, a)| (n == "*" || n == ns) && *a >= want))
    }
}

/// The folder of savepoints, beside the namespaces' (`ns/`).
pub const SAVEPOINTS_DIR: &str = "savepoints";

/// The service: namespaces opened on first use, each its own store.
pub struct StoreService {
    /// The engine settings every namespace opens with (its `namespace` set).
    template: Options,
    stores: tokio::sync::Mutex<HashMap<String, Arc<Store>>>,
    tokens: Option<Tokens>,
    limits: Limits,
    stopping: AtomicBool,
    metrics: RequestMetrics,
}

impl StoreService {
    pub fn new(template: Options, tokens: Option<Tokens>, limits: Limits) -> Self {
        StoreService {
            template,
            stores: tokio::sync::Mutex::new(HashMap::new()),
            tokens,
            limits,
            stopping: AtomicBool::new(false),
            metrics: RequestMetrics::default(),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Refuses new work from now on (health says so) ahead of a shutdown.
    pub fn begin_shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Closes every open namespace: their background work ends.
    pub async fn close(&self) -> Result<()> {
        let stores: Vec<Arc<Store>> = self.stores.lock().await.values().cloned().collect();
        for s in stores {
            s.close().await?;
        }
        Ok(())
    }

    /// The namespace's store, opened on first use.
    async fn store(&self, ns: &str) -> Result<Arc<Store>, Status> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(Status::unavailable("the store is shutting down"));
        }
        crate::namespace::validate(ns).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut stores = self.stores.lock().await;
        if let Some(s) = stores.get(ns) {
            return Ok(s.clone());
        }
        let opts = Options {
            namespace: ns.to_string(),
            ..self.template.clone()
        };
        let store = Arc::new(Store::open(opts).await.map_err(|e| status_of(&e))?);
        tracing::info!(namespace = ns, "namespace opened");
        stores.insert(ns.to_string(), store.clone());
        Ok(store)
    }

    /// The namespace's store when it exists: a query must not create one.
    async fn existing_store(&self, ns: &str) -> Result<Arc<Store>, Status> {
        self.store_if_exists(ns)
            .await?
            .ok_or_else(|| Status::not_found(format!("the store has no namespace {ns:?}")))
    }

    /// The namespace's store, or `None` when the storage holds no such
    /// namespace (and then none is created: reading calls leave no trace).
    async fn store_if_exists(&self, ns: &str) -> Result<Option<Arc<Store>>, Status> {
        crate::namespace::validate(ns).map_err(|e| Status::invalid_argument(e.to_string()))?;
        if let Some(s) = self.stores.lock().await.get(ns) {
            return Ok(Some(s.clone()));
        }
        let manifest = crate::namespace::read_manifest(self.objects()?, ns)
            .await
            .map_err(|e| status_of(&e))?;
        match manifest {
            None => Ok(None),
            Some(_) => self.store(ns).await.map(Some),
        }
    }

    fn objects(&self) -> Result<Arc<dyn object_store::ObjectStore>, Status> {
        crate::storage::open_object_store(&self.template.url, &self.template.s3)
            .map_err(|e| status_of(&e))
    }

    /// Deletes every object under `root` of the store's storage; how many.
    async fn delete_objects(&self, root: &object_store::path::Path) -> Result<usize, Status> {
        let objects = self.objects()?;
        let paths: Vec<_> = objects
            .list(Some(root))
            .map(|m| m.map(|m| m.location))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| status_of(&Error::from(e)))?;
        for p in &paths {
            objects
                .delete(p)
                .await
                .map_err(|e| status_of(&Error::from(e)))?;
        }
        Ok(paths.len())
    }

    /// Where savepoint `name` lives: `savepoints/NAME` beside the
    /// namespaces, never a path the client picks.
    fn savepoint_root(&self, name: &str) -> Result<Arc<dyn object_store::ObjectStore>, Status> {
        crate::namespace::validate(name).map_err(|_| {
            Status::invalid_argument(format!(
                "savepoint name {name:?} is not valid: use 1 to 128 of A-Z a-z 0-9 . _ - \
                 (not starting with a dot)"
            ))
        })?;
        Ok(Arc::new(object_store::prefix::PrefixStore::new(
            self.objects()?,
            format!("{SAVEPOINTS_DIR}/{name}"),
        )))
    }

    /// The request counters, for `/metrics`.
    pub fn request_metrics(&self) -> &RequestMetrics {
        &self.metrics
    }

    /// Every open namespace's store metrics and the request counters, in
    /// Prometheus' text format.
    pub async fn prometheus(&self) -> String {
        let stores: Vec<(String, Arc<Store>)> = self
            .stores
            .lock()
            .await
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        let snaps: Vec<(String, crate::MetricsSnapshot)> = stores
            .iter()
            .map(|(n, s)| (format!("namespace=\"{n}\""), s.metrics()))
            .collect();
        let mut out = self.metrics.to_prometheus();
        out.push_str(&crate::metrics::prometheus_of(&snaps));
        let checkpoints: Vec<(String, usize)> = stores
            .iter()
            .map(|(n, s)| (n.clone(), s.checkpoints().len()))
            .collect();
        out.push_str(
            "# HELP riverbed_store_checkpoints_retained Checkpoints a namespace retains.\n\
             # TYPE riverbed_store_checkpoints_retained gauge\n",
        );
        for (n, c) in checkpoints {
            out.push_str(&format!(
                "riverbed_store_checkpoints_retained{{namespace=\"{n}\"}} {c}\n"
            ));
        }
        out
    }

    /// Whether it still takes requests (readiness).
    pub fn is_serving(&self) -> bool {
        !self.stopping.load(Ordering::SeqCst)
    }

    fn authorize(
        &self,
        md: &MetadataMap,
        ns: &str,
        call: &str,
        want: Access,
    ) -> Result<(), Status> {
        let Some(tokens) = &self.tokens else {
            return Ok(());
        };
        let token = md
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = token else {
            tracing::warn!(namespace = ns, call, "refused: no token");
            return Err(Status::unauthenticated(
                "this store needs a token (--token or RIVERBED_TOKEN)",
            ));
        };
        if tokens.allows(token, ns, want) {
            return Ok(());
        }
        tracing::warn!(
            namespace = ns,
            call,
            wanted = ?want,
            "refused: the token does not allow it"
        );
        Err(Status::permission_denied(format!(
            "the token does not allow {} namespace {ns:?}",
            match want {
                Access::Read => "reading",
                Access::Write => "writing to",
                Access::ReadWrite =>
                    "writing to or committing (tables, commits, rollback, savepoints) in",
            }
        )))
    }

    fn check_key(&self, what: &str, k: &[u8]) -> Result<(), Status> {
        if k.len() > self.limits.max_key_bytes {
            return Err(Status::invalid_argument(format!(
                "{what} of {} bytes is over max_key_bytes {}",
                k.len(),
                self.limits.max_key_bytes
            )));
        }
        Ok(())
    }
}

impl StoreService {
    /// Checks a scan's bounds and gives the entries of one of its pages.
    fn scan_page_size(&self, r: &pb::ScanRequest) -> Result<usize, Status> {
        self.check_key("a scan start", &r.start)?;
        self.check_key("a scan end", &r.end)?;
        Ok(match r.page_size as usize {
            0 => 1024,
            n => n.min(self.limits.max_scan_page),
        })
    }
}

type Reply<T> = Result<Response<T>, Status>;

/// The calls themselves; the trait below times each one.
impl StoreService {
    async fn write_call(&self, req: Request<pb::WriteRequest>) -> Reply<pb::WriteResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "write", Access::Write)?;
        for op in &r.ops {
            match &op.op {
                Some(pb::write_op::Op::Put(p)) => {
                    self.check_key("a key", &p.key)?;
                    if p.value.len() > self.limits.max_value_bytes {
                        return Err(Status::invalid_argument(format!(
                            "a value of {} bytes is over max_value_bytes {}",
                            p.value.len(),
                            self.limits.max_value_bytes
                        )));
                    }
                }
                Some(pb::write_op::Op::Delete(d)) => self.check_key("a key", &d.key)?,
                Some(pb::write_op::Op::DeleteRange(d)) => {
                    self.check_key("a range start", &d.start)?;
                    self.check_key("a range end", &d.end)?;
                }
                None => {}
            }
        }
        let batch = batch_from_pb(&r.ops)?;
        let store = self.store(&r.namespace).await?;
        let written = match r.generation {
            0 => store.write(Epoch(r.epoch), &batch).await,
            g => store.write_fenced(Epoch(r.epoch), &batch, g).await,
        };
        written.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::WriteResponse {}))
    }

    async fn multi_get_call(
        &self,
        req: Request<pb::MultiGetRequest>,
    ) -> Reply<pb::MultiGetResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "multi_get", Access::Read)?;
        for k in &r.keys {
            self.check_key("a key", k)?;
        }
        let store = self.store(&r.namespace).await?;
        let values = store
            .multi_get(&r.keys, Epoch(r.epoch))
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::MultiGetResponse {
            values: values
                .into_iter()
                .map(|v| pb::MaybeValue {
                    found: v.is_some(),
                    value: v.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn scan_call(&self, req: Request<pb::ScanRequest>) -> Reply<ScanStream> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "scan", Access::Read)?;
        let page = self.scan_page_size(&r)?;
        let store = self.store(&r.namespace).await?;
        let epoch = Epoch(r.epoch);
        let limit = if r.limit == 0 { u64::MAX } else { r.limit };
        let end = r.end;
        // Pages are read one at a time as the client takes them: a long
        // scan holds one page in memory, not the range. The state is the
        // next start and how many entries may still come.
        let stream = futures::stream::unfold(Some((r.start, limit)), move |state| {
            let store = store.clone();
            let end = end.clone();
            async move {
                let (start, left) = state?;
                if left == 0 {
                    return None;
                }
                let n = (page as u64).min(left) as usize;
                match store.scan(&start, Some(&end), epoch, n).await {
                    Err(e) => Some((Err(status_of(&e)), None)),
                    Ok(entries) if entries.is_empty() => None,
                    Ok(entries) => {
                        let left = left - entries.len() as u64;
                        let next = (entries.len() == n).then(|| {
                            let mut k = entries.last().expect("not empty").0.to_vec();
                            k.push(0);
                            (Bytes::from(k), left)
                        });
                        let page = pb::ScanPage {
                            entries: entries
                                .into_iter()
                                .map(|(key, value)| pb::Entry { key, value })
                                .collect(),
                        };
                        Some((Ok(page), next))
                    }
                }
            }
        });
        Ok(Response::new(stream.boxed()))
    }

    async fn read_page_call(&self, req: Request<pb::ScanRequest>) -> Reply<pb::ScanPage> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "read_page", Access::Read)?;
        let page = self.scan_page_size(&r)?;
        let n = if r.limit == 0 {
            page
        } else {
            (r.limit as usize).min(page)
        };
        let store = self.store(&r.namespace).await?;
        let entries = store
            .scan(&r.start, Some(&r.end), Epoch(r.epoch), n)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::ScanPage {
            entries: entries
                .into_iter()
                .map(|(key, value)| pb::Entry { key, value })
                .collect(),
        }))
    }

    async fn register_table_call(
        &self,
        req: Request<pb::RegisterTableRequest>,
    ) -> Reply<pb::RegisterTableResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "register_table", Access::ReadWrite)?;
        let store = self.store(&r.namespace).await?;
        let id = match &r.info {
            Some(info) => store.register_table_with(&r.name, table_info_from_pb(info)?),
            None => store.register_table(&r.name),
        }
        .map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::RegisterTableResponse { table_id: id.0 }))
    }

    async fn commit_call(&self, req: Request<pb::CommitRequest>) -> Reply<pb::CommitResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "commit", Access::ReadWrite)?;
        let store = self.store(&r.namespace).await?;
        let epoch = Epoch(r.epoch);
        let checkpoint = match r.checkpoint {
            Some(c) => {
                let meta = store
                    .commit_checkpoint(epoch, checkpoint_from_pb(c))
                    .await
                    .map_err(|e| status_of(&e))?;
                Some(checkpoint_to_pb(&meta))
            }
            None => {
                store.commit(epoch).await.map_err(|e| status_of(&e))?;
                None
            }
        };
        Ok(Response::new(pb::CommitResponse { checkpoint }))
    }

    async fn rollback_call(
        &self,
        req: Request<pb::RollbackRequest>,
    ) -> Reply<pb::RollbackResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "rollback", Access::ReadWrite)?;
        let store = self.store(&r.namespace).await?;
        if r.fence {
            store.fence().await.map_err(|e| status_of(&e))?;
        }
        store
            .rollback_to_committed()
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::RollbackResponse {
            generation: store.writer_generation(),
        }))
    }

    async fn status_call(&self, req: Request<pb::StatusRequest>) -> Reply<pb::StatusResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "status", Access::Read)?;
        let store = self.store_if_exists(&r.namespace).await?;
        let objects = store
            .as_ref()
            .map(|s| crate::grpc::convert::objects_to_pb(&s.metrics().objects()));
        Ok(Response::new(pb::StatusResponse {
            committed_epoch: store.map_or(0, |s| s.committed_epoch().0),
            objects,
        }))
    }

    async fn list_checkpoints_call(
        &self,
        req: Request<pb::ListCheckpointsRequest>,
    ) -> Reply<pb::ListCheckpointsResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "list_checkpoints", Access::Read)?;
        let store = self.store_if_exists(&r.namespace).await?;
        Ok(Response::new(pb::ListCheckpointsResponse {
            checkpoints: store
                .map(|s| s.checkpoints().iter().map(checkpoint_to_pb).collect())
                .unwrap_or_default(),
        }))
    }

    async fn drop_namespace_call(
        &self,
        req: Request<pb::DropNamespaceRequest>,
    ) -> Reply<pb::DropNamespaceResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "drop_namespace", Access::ReadWrite)?;
        crate::namespace::validate(&r.namespace)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        // Held across the deletion: no request opens it meanwhile.
        let mut stores = self.stores.lock().await;
        if let Some(s) = stores.remove(&r.namespace) {
            s.close().await.map_err(|e| status_of(&e))?;
        }
        let deleted = self
            .delete_objects(&crate::namespace::root(&r.namespace))
            .await?;
        drop(stores);
        tracing::info!(namespace = %r.namespace, objects = deleted, "namespace dropped");
        Ok(Response::new(pb::DropNamespaceResponse {}))
    }

    async fn health_call(&self, _req: Request<pb::HealthRequest>) -> Reply<pb::HealthResponse> {
        let status = if self.stopping.load(Ordering::SeqCst) {
            "shutting down"
        } else {
            "serving"
        };
        Ok(Response::new(pb::HealthResponse {
            status: status.into(),
        }))
    }

    async fn export_savepoint_call(
        &self,
        req: Request<pb::SavepointRequest>,
    ) -> Reply<pb::SavepointResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "export_savepoint", Access::ReadWrite)?;
        let target = self.savepoint_root(&r.name)?;
        // Its files are flushed and the manifest current: the export reads
        // the namespace from storage.
        self.existing_store(&r.namespace).await?;
        let info = crate::savepoint::export(self.objects()?, &r.namespace, None, target)
            .await
            .map_err(|e| status_of(&e))?;
        Ok(Response::new(savepoint_to_pb(&info)))
    }

    async fn restore_savepoint_call(
        &self,
        req: Request<pb::SavepointRequest>,
    ) -> Reply<pb::SavepointResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "restore_savepoint", Access::ReadWrite)?;
        crate::namespace::validate(&r.namespace)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let source = self.savepoint_root(&r.name)?;
        // Held throughout: no request opens the namespace meanwhile.
        let mut stores = self.stores.lock().await;
        let committed = match stores.get(&r.namespace) {
            Some(s) => s.committed_epoch(),
            None => {
                let m = crate::namespace::read_manifest(self.objects()?, &r.namespace)
                    .await
                    .map_err(|e| status_of(&e))?;
                m.map(|m| m.committed).unwrap_or(Epoch(0))
            }
        };
        if committed != Epoch(0) {
            return Err(Status::failed_precondition(format!(
                "namespace {:?} holds committed state (epoch {}); drop it before restoring into it",
                r.namespace, committed.0
            )));
        }
        // An opened but empty namespace has a manifest (opening fences
        // older writers): it goes, so that the restore finds it empty.
        if let Some(s) = stores.remove(&r.namespace) {
            s.close().await.map_err(|e| status_of(&e))?;
        }
        self.delete_objects(&crate::namespace::root(&r.namespace))
            .await?;
        let info = crate::savepoint::restore(source, self.objects()?, &r.namespace)
            .await
            .map_err(|e| status_of(&e))?;
        drop(stores);
        tracing::info!(namespace = %r.namespace, savepoint = %r.name, epoch = info.checkpoint.epoch.0, "savepoint restored");
        Ok(Response::new(savepoint_to_pb(&info)))
    }

    async fn query_call(&self, req: Request<pb::QueryRequest>) -> Reply<pb::QueryResponse> {
        let (md, _, r) = req.into_parts();
        self.authorize(&md, &r.namespace, "query", Access::Read)?;
        let store = self.existing_store(&r.namespace).await?;
        let answer = query::lookup(&store, &r, self.limits.max_key_bytes).await?;
        Ok(Response::new(answer))
    }

    async fn list_tables_call(
        &self,
        req: Request<pb::ListTablesRequest>,
    ) -> Reply<pb::ListTablesResponse> {
        let (md, _, r) = req.into_parts();
        let namespaces = if r.namespace.is_empty() {
            let objects = crate::storage::open_object_store(&self.template.url, &self.template.s3)
                .map_err(|e| status_of(&e))?;
            let all = crate::namespace::list(objects.as_ref())
                .await
                .map_err(|e| status_of(&e))?;
            // Only those the token may read; the others are not named.
            all.into_iter()
                .filter(|ns| self.authorize(&md, ns, "list_tables", Access::Read).is_ok())
                .collect()
        } else {
            self.authorize(&md, &r.namespace, "list_tables", Access::Read)?;
            vec![r.namespace.clone()]
        };
        let mut tables = Vec::new();
        for ns in namespaces {
            let store = self.existing_store(&ns).await?;
            tables.extend(query::summaries(&store));
        }
        Ok(Response::new(pb::ListTablesResponse { tables }))
    }
}

type ScanStream = BoxStream<'static, Result<pb::ScanPage, Status>>;

/// Runs one call and records its latency and outcome.
macro_rules! timed {
    ($self:ident, $name:literal, $call:expr) => {{
        let started = super::metrics::started();
        // One span per request: what its logs (and the engine's) belong to.
        let r = tracing::Instrument::instrument($call, tracing::info_span!("rpc", method = $name))
            .await;
        $self.metrics.observe($name, started.elapsed(), r.is_ok());
        r
    }};
}

#[tonic::async_trait]
impl pb::state_store_server::StateStore for StoreService {
    type ScanStream = ScanStream;

    async fn write(&self, req: Request<pb::WriteRequest>) -> Reply<pb::WriteResponse> {
        timed!(self, "write", self.write_call(req))
    }

    async fn multi_get(&self, req: Request<pb::MultiGetRequest>) -> Reply<pb::MultiGetResponse> {
        timed!(self, "multi_get", self.multi_get_call(req))
    }

    async fn scan(&self, req: Request<pb::ScanRequest>) -> Reply<Self::ScanStream> {
        timed!(self, "scan", self.scan_call(req))
    }

    async fn read_page(&self, req: Request<pb::ScanRequest>) -> Reply<pb::ScanPage> {
        timed!(self, "read_page", self.read_page_call(req))
    }

    async fn register_table(
        &self,
        req: Request<pb::RegisterTableRequest>,
    ) -> Reply<pb::RegisterTableResponse> {
        timed!(self, "register_table", self.register_table_call(req))
    }

    async fn commit(&self, req: Request<pb::CommitRequest>) -> Reply<pb::CommitResponse> {
        timed!(self, "commit", self.commit_call(req))
    }

    async fn rollback(&self, req: Request<pb::RollbackRequest>) -> Reply<pb::RollbackResponse> {
        timed!(self, "rollback", self.rollback_call(req))
    }

    async fn status(&self, req: Request<pb::StatusRequest>) -> Reply<pb::StatusResponse> {
        timed!(self, "status", self.status_call(req))
    }

    async fn list_checkpoints(
        &self,
        req: Request<pb::ListCheckpointsRequest>,
    ) -> Reply<pb::ListCheckpointsResponse> {
        timed!(self, "list_checkpoints", self.list_checkpoints_call(req))
    }

    async fn drop_namespace(
        &self,
        req: Request<pb::DropNamespaceRequest>,
    ) -> Reply<pb::DropNamespaceResponse> {
        timed!(self, "drop_namespace", self.drop_namespace_call(req))
    }

    async fn query(&self, req: Request<pb::QueryRequest>) -> Reply<pb::QueryResponse> {
        timed!(self, "query", self.query_call(req))
    }

    async fn list_tables(
        &self,
        req: Request<pb::ListTablesRequest>,
    ) -> Reply<pb::ListTablesResponse> {
        timed!(self, "list_tables", self.list_tables_call(req))
    }

    async fn export_savepoint(
        &self,
        req: Request<pb::SavepointRequest>,
    ) -> Reply<pb::SavepointResponse> {
        timed!(self, "export_savepoint", self.export_savepoint_call(req))
    }

    async fn restore_savepoint(
        &self,
        req: Request<pb::SavepointRequest>,
    ) -> Reply<pb::SavepointResponse> {
        timed!(self, "restore_savepoint", self.restore_savepoint_call(req))
    }

    async fn health(&self, req: Request<pb::HealthRequest>) -> Reply<pb::HealthResponse> {
        timed!(self, "health", self.health_call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_grant_by_namespace_and_access() {
        let t = Tokens::parse("# jobs\nJOB q5 rw\nQ q5 ro\n\nADMIN * rw\n").unwrap();
        assert!(t.allows("JOB", "q5", Access::ReadWrite));
        assert!(t.allows("Q", "q5", Access::Read));
        assert!(!t.allows("Q", "q5", Access::ReadWrite));
        assert!(!t.allows("JOB", "q7", Access::Read));
        assert!(t.allows("ADMIN", "q7", Access::ReadWrite));
        assert!(!t.allows("nope", "q5", Access::Read));
        let w = Tokens::parse("W q5 data").unwrap();
        assert!(w.allows("W", "q5", Access::Write) && w.allows("W", "q5", Access::Read));
        assert!(!w.allows("W", "q5", Access::ReadWrite));
        let e = Tokens::parse("A q5 rx").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("rw"), "{e}");
        assert!(Tokens::parse("A q5").is_err());
    }
}
