//! An object store that counts what goes through it: objects and bytes
//! read and written, deletions and copies. Every store wraps its object
//! store in one, so its metrics say what it cost in requests and bytes —
//! and a test can show that a restore or a rescale copied no state.
//!
//! Reads count the bytes of the ranges asked for (what a `GET` transfers);
//! multipart uploads count their parts as they are sent.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};

/// The counters, shared with the store's metrics.
#[derive(Debug, Default)]
pub struct ObjectCounters {
    pub reads: AtomicU64,
    pub read_bytes: AtomicU64,
    pub writes: AtomicU64,
    pub written_bytes: AtomicU64,
    pub deletes: AtomicU64,
    pub copies: AtomicU64,
    pub lists: AtomicU64,
}

impl ObjectCounters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// `inner`, counted into `counters`.
pub struct CountedStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<ObjectCounters>,
}

impl CountedStore {
    pub fn new(inner: Arc<dyn ObjectStore>, counters: Arc<ObjectCounters>) -> Self {
        CountedStore { inner, counters }
    }
}

impl fmt::Debug for CountedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counted({:?})", self.inner)
    }
}

impl fmt::Display for CountedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counted({})", self.inner)
    }
}

/// A multipart upload whose parts are counted as they go.
#[derive(Debug)]
struct CountedUpload {
    inner: Box<dyn MultipartUpload>,
    counters: Arc<ObjectCounters>,
}

#[async_trait::async_trait]
impl MultipartUpload for CountedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        ObjectCounters::add(&self.counters.written_bytes, data.content_length() as u64);
        self.inner.put_part(data)
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let r = self.inner.complete().await?;
        ObjectCounters::add(&self.counters.writes, 1);
        Ok(r)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl ObjectStore for CountedStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let n = payload.content_length() as u64;
        let r = self.inner.put_opts(location, payload, opts).await?;
        ObjectCounters::add(&self.counters.writes, 1);
        ObjectCounters::add(&self.counters.written_bytes, n);
        Ok(r)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(CountedUpload {
            inner,
            counters: self.counters.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let head = options.head;
        let r = self.inner.get_opts(location, options).await?;
        ObjectCounters::add(&self.counters.reads, 1);
        if !head {
            ObjectCounters::add(&self.counters.read_bytes, r.range.end - r.range.start);
        }
        Ok(r)
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        let r = self.inner.get_ranges(location, ranges).await?;
        ObjectCounters::add(&self.counters.reads, ranges.len() as u64);
        let n: usize = r.iter().map(Bytes::len).sum();
        ObjectCounters::add(&self.counters.read_bytes, n as u64);
        Ok(r)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        use futures::StreamExt;
        let counters = self.counters.clone();
        self.inner
            .delete_stream(locations)
            .inspect(move |r| {
                if r.is_ok() {
                    ObjectCounters::add(&counters.deletes, 1);
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        ObjectCounters::add(&self.counters.lists, 1);
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        ObjectCounters::add(&self.counters.lists, 1);
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        ObjectCounters::add(&self.counters.lists, 1);
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await?;
        ObjectCounters::add(&self.counters.copies, 1);
        Ok(())
    }

    /// The inner store's own rename (atomic where it has one), counted as
    /// a copy: it moves no bytes through this process.
    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await?;
        ObjectCounters::add(&self.counters.copies, 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn requests_and_bytes_are_counted() {
        let c = Arc::new(ObjectCounters::default());
        let s = CountedStore::new(Arc::new(InMemory::new()), c.clone());
        let p = Path::from("a/b");
        s.put(&p, PutPayload::from(vec![1u8; 100])).await.unwrap();
        assert_eq!(s.get_range(&p, 10..30).await.unwrap().len(), 20);
        let all = s.get(&p).await.unwrap().bytes().await.unwrap();
        assert_eq!(all.len(), 100);
        s.copy(&p, &Path::from("a/c")).await.unwrap();
        s.delete(&p).await.unwrap();
        let g = ObjectCounters::get;
        assert_eq!((g(&c.writes), g(&c.written_bytes)), (1, 100));
        assert_eq!(g(&c.read_bytes), 120);
        assert!(g(&c.reads) >= 2);
        assert_eq!((g(&c.copies), g(&c.deletes)), (1, 1));
    }
}
