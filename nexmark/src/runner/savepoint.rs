//! Savepoints of a query: `riverbed-nexmark savepoint` exports the last
//! checkpoint of a query's store as a self-contained folder (or S3
//! prefix), and `run --from-savepoint` starts a query from one, on any
//! machine. The format is the store's (`riverbed_state_store::savepoint`).

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use riverbed_state_store::storage::open_object_store;
use riverbed_state_store::{savepoint, CheckpointMeta, S3Options, SavepointInfo};

use crate::error::{Error, Result};

fn open(location: &str) -> Result<Arc<dyn ObjectStore>> {
    open_object_store(location, &S3Options::default())
        .map_err(|e| Error::InvalidArgument(format!("{location}: {e}")))
}

fn located(location: &str) -> impl Fn(riverbed_state_store::Error) -> Error + '_ {
    move |e| Error::InvalidArgument(format!("{location}: {e}"))
}

/// Exports the last checkpoint of `query` under `state_dir` to `to`, which
/// must be empty. Works on a running query too: the store is only read.
pub async fn export(state_dir: &Path, query: &str, to: &str) -> Result<SavepointInfo> {
    let dir = state_dir.join(query);
    let url = dir.to_str().ok_or_else(|| {
        Error::InvalidArgument(format!("state directory {} is not UTF-8", dir.display()))
    })?;
    if !dir.exists() {
        return Err(Error::InvalidArgument(format!(
            "{}: no store of {query} here",
            dir.display()
        )));
    }
    if !to.starts_with("s3://") {
        std::fs::create_dir_all(to).map_err(|source| Error::Io {
            path: to.into(),
            source,
        })?;
    }
    savepoint::export(open(url)?, query, None, open(to)?)
        .await
        .map_err(located(to))
}

/// Copies the savepoint at `from` into the (empty) store of `query` at
/// `url` and returns the checkpoint the query resumes from.
pub async fn restore(from: &str, query: &str, url: &str) -> Result<CheckpointMeta> {
    let sp = open(from)?;
    let info = savepoint::read(sp.clone()).await.map_err(located(from))?;
    startable(&info, query, from)?;
    let info = savepoint::restore(sp, open(url)?, query)
        .await
        .map_err(located(from))?;
    Ok(info.checkpoint)
}

/// Refuses a savepoint that `query` cannot start from: another query's, or
/// one of a run that had finished.
fn startable(info: &SavepointInfo, query: &str, from: &str) -> Result<()> {
    let cp = &info.checkpoint;
    if cp.job != query {
        return Err(Error::InvalidArgument(format!(
            "{from}: a savepoint of {}, not of {query}",
            cp.job
        )));
    }
    if cp.finished {
        return Err(Error::InvalidArgument(format!(
            "{from}: the savepoint's run of {query} had finished (checkpoint {}); \
             there is nothing to continue",
            cp.epoch.0
        )));
    }
    Ok(())
}

/// Exports the last checkpoint of `query`'s namespace in the store service
/// as the savepoint `name` there (in the store's own storage).
pub async fn export_remote(
    remote: &super::RemoteState,
    query: &str,
    name: &str,
) -> Result<SavepointInfo> {
    let backend = Arc::new(super::connect_remote(remote, query).await?);
    backend.export_savepoint(name).await.map_err(Error::Compute)
}

/// Fills `query`'s namespace of the store service from its savepoint
/// `name` and returns the checkpoint to resume from; a savepoint the query
/// cannot start from is refused and leaves the namespace empty.
pub async fn restore_remote(
    backend: &riverbed_compute::state::RemoteBackend,
    name: &str,
    query: &str,
) -> Result<CheckpointMeta> {
    let info = backend
        .restore_savepoint(name)
        .await
        .map_err(Error::Compute)?;
    let from = format!("savepoint {name} of the store");
    if let Err(e) = startable(&info, query, &from) {
        backend.drop_namespace().await.map_err(Error::Compute)?;
        return Err(e);
    }
    Ok(info.checkpoint)
}
