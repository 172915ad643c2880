//! Reads an SST from object storage: the footer, filter, index and
//! properties once at open (they stay in memory), data blocks on demand
//! through the block cache.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::block::{Block, BlockError, BlockIter};
use super::bloom::{key_hash, Bloom};
use super::compression;
use super::format::{
    check_frame, decode_index, Footer, IndexEntry, SstProps, CODEC_RAW, FOOTER_LEN,
};
use crate::cache::BlockCache;
use crate::entry::Value;
use crate::error::{Error, Result};
use crate::keys::{Epoch, FileId, Stamp};
use crate::paths;

/// A decompressed block may not claim more than this (guards against a
/// corrupted size field asking for a huge allocation).
const MAX_BLOCK_BYTES: usize = 256 << 20;

pub struct SstReader {
    id: FileId,
    path: Path,
    store: Arc<dyn ObjectStore>,
    cache: Arc<BlockCache>,
    index: Vec<IndexEntry>,
    /// `key_prefix` of every index entry's last key, for the binary search.
    index_prefixes: Vec<u64>,
    bloom: Option<Bloom>,
    props: SstProps,
}

/// A data block's frame as stored (compressed, checksummed), not yet
/// decoded, with its offset in the file (the block cache's key).
struct Frame {
    offset: u64,
    bytes: Bytes,
}

impl SstReader {
    /// Opens file `id` of `size` bytes (the size comes from the manifest).
    pub async fn open(
        id: FileId,
        size: u64,
        store: Arc<dyn ObjectStore>,
        cache: Arc<BlockCache>,
    ) -> Result<Self> {
        let path = paths::sst(id);
        let corrupt = |off: u64, why: &str| Error::corrupted(&path, off, why);
        if size < FOOTER_LEN as u64 {
            return Err(corrupt(0, "file shorter than a footer"));
        }
        let footer_at = size - FOOTER_LEN as u64;
        let footer_bytes = store.get_range(&path, footer_at..size).await?;
        let footer = Footer::decode(&footer_bytes).map_err(|why| corrupt(footer_at, why))?;
        let meta_start = footer.filter.0;
        let sections = [footer.filter, footer.index, footer.props];
        for (off, len) in sections {
            let end = off.checked_add(u64::from(len));
            if off < meta_start || end.is_none_or(|end| end > footer_at) {
                return Err(corrupt(footer_at, "footer points outside the file"));
            }
        }
        let meta = store.get_range(&path, meta_start..footer_at).await?;
        let section = |(off, len): (u64, u32)| -> Result<Bytes> {
            let start = (off - meta_start) as usize;
            let frame = meta.slice(start..start + len as usize);
            let (payload, codec) = check_frame(&frame).map_err(|why| corrupt(off, why))?;
            if codec != CODEC_RAW {
                return Err(corrupt(off, "metadata section has a codec"));
            }
            Ok(payload)
        };
        let filter = section(footer.filter)?;
        let index =
            decode_index(&section(footer.index)?).map_err(|why| corrupt(footer.index.0, why))?;
        let props = SstProps::decode(&section(footer.props)?)
            .map_err(|why| corrupt(footer.props.0, why))?;
        let mut prev_end = 0u64;
        for e in &index {
            let end = e.offset.checked_add(u64::from(e.len));
            match end {
                Some(end) if e.offset == prev_end && end <= meta_start => prev_end = end,
                _ => return Err(corrupt(footer.index.0, "index entry out of place")),
            }
        }
        let bloom = Bloom::decode(filter);
        let index_prefixes = index.iter().map(|e| key_prefix(&e.last_key)).collect();
        Ok(SstReader {
            id,
            path,
            store,
            cache,
            index,
            index_prefixes,
            bloom,
            props,
        })
    }

    pub fn id(&self) -> FileId {
        self.id
    }

    pub fn props(&self) -> &SstProps {
        &self.props
    }

    pub fn num_blocks(&self) -> usize {
        self.index.len()
    }

    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        self.bloom.as_ref().is_none_or(|b| b.may_contain(hash))
    }

    /// Data block `i`, from the cache or from object storage.
    pub async fn block(&self, i: usize) -> Result<Block> {
        let e = &self.index[i];
        if let Some(b) = self.cache.get(self.id, e.offset) {
            return Ok(b);
        }
        let frame = self
            .store
            .get_range(&self.path, e.offset..e.offset + u64::from(e.len))
            .await?;
        let block = self.decode_block(e.offset, &frame)?;
        self.cache.insert(self.id, e.offset, block.clone());
        Ok(block)
    }

    /// The frames of blocks `first..`, up to about `max_bytes` of them,
    /// fetched in one request: sequential readers (scans, compaction) pay one
    /// round trip per run of blocks instead of one per block. The caller
    /// decodes them ([`Self::decode_frame`]) when it likes: a megabyte of
    /// well-compressed frames is many megabytes of blocks, and a compaction
    /// that decoded whole runs of tens of files held all of them at once, on
    /// fresh pages (criterion `compaction/l0_to_l1_40_overlapping_files_of_40k`
    /// took a third less time once it decoded block by block).
    async fn block_run(&self, first: usize, max_bytes: u64) -> Result<Vec<Frame>> {
        let start = self.index[first].offset;
        let mut end = start;
        let mut last = first;
        while last < self.index.len()
            && (last == first || end - start + u64::from(self.index[last].len) <= max_bytes)
        {
            end += u64::from(self.index[last].len);
            last += 1;
        }
        let data = self.store.get_range(&self.path, start..end).await?;
        if data.len() as u64 != end - start {
            return Err(Error::corrupted(
                &self.path,
                start,
                "short read of a block run",
            ));
        }
        Ok(self.index[first..last]
            .iter()
            .map(|e| {
                let at = (e.offset - start) as usize;
                Frame {
                    offset: e.offset,
                    bytes: data.slice(at..at + e.len as usize),
                }
            })
            .collect())
    }

    /// The block in `frame`; with `fill_cache` it also goes into the cache.
    fn decode_frame(&self, frame: &Frame, fill_cache: bool) -> Result<Block> {
        let block = self.decode_block(frame.offset, &frame.bytes)?;
        if fill_cache {
            self.cache.insert(self.id, frame.offset, block.clone());
        }
        Ok(block)
    }

    pub(crate) fn cached_block(&self, i: usize) -> Option<Block> {
        self.cache.get(self.id, self.index[i].offset)
    }

    fn decode_block(&self, offset: u64, frame: &Bytes) -> Result<Block> {
        let corrupt = |why: &str| Error::corrupted(&self.path, offset, why);
        let (payload, codec) = check_frame(frame).map_err(corrupt)?;
        let raw = compression::decompress(codec, payload, MAX_BLOCK_BYTES).map_err(corrupt)?;
        Block::decode(raw).map_err(corrupt)
    }

    pub(crate) fn block_error(&self, block: usize, e: BlockError) -> Error {
        let at = self.index.get(block).map_or(0, |e| e.offset);
        Error::corrupted(
            &self.path,
            at,
            format!(
                "{} (at byte {} of the decompressed block)",
                e.reason, e.offset
            ),
        )
    }

    /// Index of the first block that may hold `key` (its last key is `>= key`).
    fn block_for(&self, key: &[u8]) -> usize {
        // Compare 8-byte big-endian prefixes first: most steps of the search
        // are decided without a call to memcmp.
        let kp = key_prefix(key);
        let (mut lo, mut hi) = (0usize, self.index.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let ep = self.index_prefixes[mid];
            let less = ep < kp || (ep == kp && &self.index[mid].last_key[..] < key);
            if less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The newest version of `key` with epoch `<= max_epoch`, if the file has one.
    /// A point read touches one block, or the next ones when the key's
    /// versions straddle a block boundary.
    pub async fn get(
        &self,
        key: &[u8],
        hash: u64,
        max_epoch: Epoch,
    ) -> Result<Option<(Stamp, Value)>> {
        if !self.may_contain(hash)
            || key < &self.props.smallest[..]
            || key > &self.props.largest[..]
        {
            return Ok(None);
        }
        self.get_checked(key, max_epoch).await
    }

    /// Calls `maybe(i)` for each `hashes[i]` the file's filter may hold (all
    /// of them when it has none). See [`Bloom::may_contain_each`].
    pub fn may_contain_each(&self, hashes: &[u64], mut maybe: impl FnMut(usize)) {
        match &self.bloom {
            Some(b) => b.may_contain_each(hashes, maybe),
            None => (0..hashes.len()).for_each(&mut maybe),
        }
    }

    /// Whether the file holds any version of a key in `[lo, hi]`. The index
    /// decides when the first block that may hold such a key ends inside
    /// the range; otherwise that one block is read.
    pub async fn has_key_in(&self, lo: &[u8], hi: &[u8]) -> Result<bool> {
        if lo > hi || hi < &self.props.smallest[..] || lo > &self.props.largest[..] {
            return Ok(false);
        }
        let b = self.block_for(lo);
        let Some(entry) = self.index.get(b) else {
            return Ok(false);
        };
        // `block_for` gives a last key `>= lo`.
        if &entry.last_key[..] <= hi {
            return Ok(true);
        }
        let mut it = BlockIter::new(self.block(b).await?);
        it.seek(lo).map_err(|e| self.block_error(b, e))?;
        Ok(it.valid() && it.key() <= hi)
    }

    /// [`Self::get`] for a key the caller has already checked against the
    /// file's key range and filter.
    pub async fn get_checked(
        &self,
        key: &[u8],
        max_epoch: Epoch,
    ) -> Result<Option<(Stamp, Value)>> {
        let mut b = self.block_for(key);
        let mut first = true;
        while b < self.index.len() {
            let mut it = BlockIter::new(self.block(b).await?);
            let sought = if first {
                it.seek(key)
            } else {
                it.seek_to_first()
            };
            sought.map_err(|e| self.block_error(b, e))?;
            first = false;
            while it.valid() {
                if it.key() != key {
                    return Ok(None);
                }
                if it.stamp().epoch <= max_epoch {
                    return Ok(Some((it.stamp(), it.value())));
                }
                it.advance().map_err(|e| self.block_error(b, e))?;
            }
            b += 1;
        }
        Ok(None)
    }
}

/// The first 8 bytes of `key` as a big-endian number (zero-padded): its
/// order agrees with the byte order of keys wherever the prefixes differ.
#[inline]
fn key_prefix(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = key.len().min(8);
    b[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(b)
}

/// Hash used for the bloom probe, computed once per key and reused for every file.
pub fn probe_hash(key: &[u8]) -> u64 {
    key_hash(key)
}

/// A forward cursor over a whole SST.
pub struct SstIter {
    reader: Arc<SstReader>,
    block: usize,
    it: Option<BlockIter>,
    /// Blocks fetched ahead: `(first block number, blocks)`.
    ahead: (usize, std::collections::VecDeque<Ahead>),
    readahead_bytes: u64,
    fill_cache: bool,
}

/// A block fetched ahead of its reader. Scans fill the cache, so they
/// decode a run as it arrives (its blocks then also lie together in
/// memory); compaction keeps the frames and decodes each when it gets
/// there, holding one decoded block per input file instead of a run's.
enum Ahead {
    Block(Block),
    Frame(Frame),
}

/// How much a sequential reader fetches per request when blocks are not cached.
pub const SCAN_READAHEAD_BYTES: u64 = 1 << 20;

impl SstIter {
    /// A cursor for scans: cached blocks are used, missing ones fetched in
    /// runs and cached.
    pub fn new(reader: Arc<SstReader>) -> Self {
        SstIter {
            reader,
            block: 0,
            it: None,
            ahead: (0, Default::default()),
            readahead_bytes: SCAN_READAHEAD_BYTES,
            fill_cache: true,
        }
    }

    /// A cursor for compaction: reads the file in large runs and leaves the
    /// cache to the blocks readers use.
    pub fn for_compaction(reader: Arc<SstReader>, readahead_bytes: u64) -> Self {
        SstIter {
            readahead_bytes,
            fill_cache: false,
            ..SstIter::new(reader)
        }
    }

    /// The entry under the cursor, `None` once past the end.
    #[inline]
    pub fn current(&self) -> Option<&BlockIter> {
        self.it.as_ref().filter(|it| it.valid())
    }

    pub async fn seek_to_first(&mut self) -> Result<()> {
        self.load(0).await?;
        if let Some(it) = self.it.as_mut() {
            it.seek_to_first()
                .map_err(|e| self.reader.block_error(0, e))?;
        }
        self.skip_exhausted().await
    }

    pub async fn seek(&mut self, key: &[u8]) -> Result<()> {
        let b = self.reader.block_for(key);
        self.load(b).await?;
        if let Some(it) = self.it.as_mut() {
            it.seek(key).map_err(|e| self.reader.block_error(b, e))?;
        }
        self.skip_exhausted().await
    }

    #[inline]
    pub async fn next(&mut self) -> Result<()> {
        if let Some(it) = self.it.as_mut() {
            it.advance()
                .map_err(|e| self.reader.block_error(self.block, e))?;
            if !it.valid() {
                return self.skip_exhausted().await;
            }
        }
        Ok(())
    }

    async fn load(&mut self, b: usize) -> Result<()> {
        self.block = b;
        self.it = if b < self.reader.num_blocks() {
            Some(BlockIter::new(self.fetch(b).await?))
        } else {
            None
        };
        Ok(())
    }

    async fn fetch(&mut self, b: usize) -> Result<Block> {
        let (first, blocks) = &mut self.ahead;
        while *first < b && !blocks.is_empty() {
            blocks.pop_front();
            *first += 1;
        }
        if *first == b {
            if let Some(ahead) = blocks.pop_front() {
                *first += 1;
                return self.decoded(ahead);
            }
        }
        if self.fill_cache {
            if let Some(block) = self.reader.cached_block(b) {
                return Ok(block);
            }
        }
        let frames = self.reader.block_run(b, self.readahead_bytes).await?;
        let mut run = std::collections::VecDeque::with_capacity(frames.len());
        for frame in frames {
            run.push_back(if self.fill_cache {
                Ahead::Block(self.reader.decode_frame(&frame, true)?)
            } else {
                Ahead::Frame(frame)
            });
        }
        let ahead = run
            .pop_front()
            .ok_or_else(|| Error::corrupted(&self.reader.path, 0, "empty block run"))?;
        self.ahead = (b + 1, run);
        self.decoded(ahead)
    }

    fn decoded(&self, ahead: Ahead) -> Result<Block> {
        match ahead {
            Ahead::Block(block) => Ok(block),
            Ahead::Frame(frame) => self.reader.decode_frame(&frame, self.fill_cache),
        }
    }

    /// Moves into the next block(s) while the current one is used up.
    async fn skip_exhausted(&mut self) -> Result<()> {
        while let Some(it) = self.it.as_ref() {
            if it.valid() {
                break;
            }
            let next = self.block + 1;
            self.load(next).await?;
            if let Some(it) = self.it.as_mut() {
                it.seek_to_first()
                    .map_err(|e| self.reader.block_error(next, e))?;
            }
        }
        Ok(())
    }
}
