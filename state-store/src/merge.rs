//! Merging sorted sources (memtables, L0 files, sorted levels) into one
//! stream ordered by key ascending and stamp descending, so the first
//! version seen of a key is its newest. Used by scans and by compaction.
//!
//! Sources are few (memtables + L0 files + levels), so the smallest is found
//! by a linear pass instead of a heap: no allocation per entry, and keys are
//! compared in place.

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::entry::{Entry, Value};
use crate::error::Result;
use crate::keys::Stamp;
use crate::sst::SstIter;
use crate::storage::Storage;
use crate::version::SstHandle;

pub enum Source {
    /// Entries already materialised (from a memtable), sorted.
    Mem { entries: Vec<Entry>, pos: usize },
    /// One file.
    Sst(SstIter),
    /// A sorted run of non-overlapping files, opened one at a time.
    Level {
        files: Vec<Arc<SstHandle>>,
        next: usize,
        cur: Option<SstIter>,
        storage: Storage,
        end: Option<Bytes>,
    },
}

impl Source {
    pub fn mem(entries: Vec<Entry>) -> Self {
        Source::Mem { entries, pos: 0 }
    }

    pub async fn sst(file: &SstHandle, storage: &Storage, start: Option<&[u8]>) -> Result<Self> {
        let reader = file.reader(&storage.store, &storage.cache).await?.clone();
        let mut it = match storage_mode(storage) {
            Some(readahead) => SstIter::for_compaction(reader, readahead),
            None => SstIter::new(reader),
        };
        match start {
            Some(k) => it.seek(k).await?,
            None => it.seek_to_first().await?,
        }
        Ok(Source::Sst(it))
    }

    /// A sorted level positioned at the first key `>= start`.
    pub async fn level(
        files: Vec<Arc<SstHandle>>,
        storage: &Storage,
        start: Option<&[u8]>,
        end: Option<Bytes>,
    ) -> Result<Self> {
        let first = match start {
            Some(k) => files.partition_point(|f| &f.props().largest[..] < k),
            None => 0,
        };
        let mut src = Source::Level {
            files,
            next: first,
            cur: None,
            storage: storage.clone(),
            end,
        };
        src.open_next_file(start).await?;
        Ok(src)
    }

    async fn open_next_file(&mut self, mut start: Option<&[u8]>) -> Result<()> {
        if let Source::Level {
            files,
            next,
            cur,
            storage,
            end,
        } = self
        {
            *cur = None;
            while *next < files.len() {
                let f = &files[*next];
                *next += 1;
                if end.as_ref().is_some_and(|e| f.props().smallest >= *e) {
                    break;
                }
                let reader = f.reader(&storage.store, &storage.cache).await?.clone();
                let mut it = match storage_mode(storage) {
                    Some(readahead) => SstIter::for_compaction(reader, readahead),
                    None => SstIter::new(reader),
                };
                match start.take() {
                    Some(k) => it.seek(k).await?,
                    None => it.seek_to_first().await?,
                }
                if it.current().is_some() {
                    *cur = Some(it);
                    break;
                }
            }
        }
        Ok(())
    }

    #[inline]
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Source::Mem { entries, pos } => entries.get(*pos).map(|e| &e.key[..]),
            Source::Sst(it) => it.current().map(|c| c.key()),
            Source::Level { cur, .. } => cur.as_ref().and_then(|it| it.current()).map(|c| c.key()),
        }
    }

    /// Stamp of the current entry; call only when `key()` is `Some`.
    #[inline]
    pub fn stamp(&self) -> Stamp {
        match self {
            Source::Mem { entries, pos } => entries[*pos].stamp,
            Source::Sst(it) => it.current().map(|c| c.stamp()).unwrap_or_default(),
            Source::Level { cur, .. } => cur
                .as_ref()
                .and_then(|it| it.current())
                .map(|c| c.stamp())
                .unwrap_or_default(),
        }
    }

    /// The current value as a borrowed slice (`None` = tombstone).
    #[inline]
    pub fn value_slice(&self) -> Option<&[u8]> {
        match self {
            Source::Mem { entries, pos } => match &entries[*pos].value {
                Value::Put(v) => Some(v),
                Value::Delete => None,
            },
            Source::Sst(it) => it.current().and_then(|c| c.value_slice()),
            Source::Level { cur, .. } => cur
                .as_ref()
                .and_then(|it| it.current())
                .and_then(|c| c.value_slice()),
        }
    }

    /// The current key and value as owned `Bytes` (values are not copied).
    pub fn key_value(&self) -> Option<(Bytes, Value)> {
        match self {
            Source::Mem { entries, pos } => {
                entries.get(*pos).map(|e| (e.key.clone(), e.value.clone()))
            }
            Source::Sst(it) => it
                .current()
                .map(|c| (Bytes::copy_from_slice(c.key()), c.value())),
            Source::Level { cur, .. } => cur
                .as_ref()
                .and_then(|it| it.current())
                .map(|c| (Bytes::copy_from_slice(c.key()), c.value())),
        }
    }

    pub async fn next(&mut self) -> Result<()> {
        match self {
            Source::Mem { pos, .. } => *pos += 1,
            Source::Sst(it) => it.next().await?,
            Source::Level { cur, .. } => {
                if let Some(it) = cur.as_mut() {
                    it.next().await?;
                    if it.current().is_none() {
                        self.open_next_file(None).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// `Some(readahead)` when `storage` is a compaction's view of the files.
fn storage_mode(storage: &Storage) -> Option<u64> {
    storage.compaction_readahead
}

/// Index of the source holding the smallest (key, newest stamp), if any.
#[inline]
pub fn smallest(sources: &[Source]) -> Option<usize> {
    let mut best: Option<(usize, &[u8], Stamp)> = None;
    for (i, s) in sources.iter().enumerate() {
        let Some(k) = s.key() else { continue };
        let better = match best {
            None => true,
            Some((_, bk, bs)) => match k.cmp(bk) {
                Ordering::Less => true,
                Ordering::Equal => s.stamp() > bs,
                Ordering::Greater => false,
            },
        };
        if better {
            best = Some((i, k, s.stamp()));
        }
    }
    best.map(|(i, _, _)| i)
}
