//! Object storage: opening the store a URL names, and the handles every file
//! read goes through (the object store and the block cache).

use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::options::S3Options;

/// What a file read needs: where files are, and the cache in front of them.
#[derive(Clone)]
pub struct Storage {
    pub store: Arc<dyn ObjectStore>,
    pub cache: Arc<BlockCache>,
    /// Set for compaction: files are read sequentially in runs of this many
    /// bytes, bypassing the block cache.
    pub compaction_readahead: Option<u64>,
}

/// Compaction reads its inputs in runs of 8 MiB: few requests per file, and
/// bounded memory per input.
pub const COMPACTION_READAHEAD_BYTES: u64 = 8 << 20;

/// Opens the object store `url` names:
/// - a path or `file:///path`: a local directory (created if missing);
/// - `s3://bucket[/prefix]`: S3 or any S3-compatible server. Endpoint,
///   region and credentials come from `s3`, else from `AWS_ENDPOINT_URL` /
///   `AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`.
pub fn open_object_store(url: &str, s3: &S3Options) -> Result<Arc<dyn ObjectStore>> {
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Config(format!("{url}: no bucket name")));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = s3
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        if let Some(ep) = endpoint {
            b = b
                .with_allow_http(ep.starts_with("http://"))
                .with_endpoint(ep);
        }
        if let Some(r) = &s3.region {
            b = b.with_region(r);
        }
        if let Some(k) = &s3.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &s3.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        let s3 = b
            .build()
            .map_err(|e| Error::Config(format!("{url}: {e}")))?;
        let prefix = prefix.trim_matches('/');
        return Ok(if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        });
    }
    if url.contains("://") && !url.starts_with("file://") {
        return Err(Error::Config(format!(
            "{url}: unsupported object store URL (use a path, file:///path or s3://bucket/prefix)"
        )));
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    std::fs::create_dir_all(path)
        .map_err(|e| Error::Config(format!("cannot create {path}: {e}")))?;
    let fs = LocalFileSystem::new_with_prefix(path)
        .map_err(|e| Error::Config(format!("{path}: {e}")))?;
    Ok(Arc::new(fs))
}
