//! Writes one SST (layout in `format.rs`) from entries given in order:
//! key ascending, stamp descending.

use bytes::Bytes;

use super::block::BlockBuilder;
use super::bloom;
use super::compression::{BlockCompressor, Compression};
use super::format::{encode_index, put_frame, Footer, IndexEntry, SstProps, CODEC_RAW};
use crate::keys::{Epoch, Stamp};

/// The settings that shape a file (a subset of `Options`).
#[derive(Debug, Clone, Copy)]
pub struct SstShape {
    pub block_bytes: usize,
    pub restart_interval: usize,
    pub bloom_bits_per_key: usize,
    /// The data blocks' codec: the level's, from `compression_per_level`.
    pub compression: Compression,
    pub zstd_level: i32,
}

impl SstShape {
    /// The shape of a file written into `level` (0 for a flush).
    pub fn for_level(o: &crate::Options, level: usize) -> Self {
        SstShape {
            block_bytes: o.block_bytes,
            restart_interval: o.restart_interval,
            bloom_bits_per_key: o.bloom_bits_per_key,
            compression: Compression::for_level(&o.compression_per_level, level),
            zstd_level: o.zstd_level,
        }
    }
}

pub struct SstBuilder {
    shape: SstShape,
    out: Vec<u8>,
    block: BlockBuilder,
    index: Vec<IndexEntry>,
    hashes: Vec<u64>,
    props: SstProps,
    first: bool,
    compressor: BlockCompressor,
}

impl SstBuilder {
    pub fn new(shape: SstShape) -> Self {
        let compressor = BlockCompressor::new(shape.compression, shape.zstd_level);
        SstBuilder {
            shape,
            out: Vec::new(),
            block: BlockBuilder::new(shape.block_bytes, shape.restart_interval),
            index: Vec::new(),
            hashes: Vec::new(),
            props: SstProps {
                min_epoch: Epoch::MAX,
                ..SstProps::default()
            },
            first: true,
            compressor,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.first
    }

    /// Bytes written so far plus the open block: where to cut output files.
    pub fn estimated_size(&self) -> u64 {
        (self.out.len() + self.block.size()) as u64
    }

    /// The last key added, if any.
    pub fn last_key(&self) -> Option<&[u8]> {
        (!self.first).then(|| self.block_or_index_last_key())
    }

    fn block_or_index_last_key(&self) -> &[u8] {
        if self.block.is_empty() {
            self.index.last().map(|e| &e.last_key[..]).unwrap_or(&[])
        } else {
            self.block.last_key()
        }
    }

    /// Adds one version. `value` is `None` for a point tombstone.
    pub fn add(&mut self, key: &[u8], stamp: Stamp, value: Option<&[u8]>) {
        let new_key = self.first || self.block_or_index_last_key() != key;
        if new_key {
            self.hashes.push(bloom::key_hash(key));
        }
        if self.first {
            self.props.smallest = Bytes::copy_from_slice(key);
            self.first = false;
        }
        self.props.entries += 1;
        self.props.min_epoch = self.props.min_epoch.min(stamp.epoch);
        self.props.max_epoch = self.props.max_epoch.max(stamp.epoch);
        self.block.add(key, stamp, value);
        if self.block.size() >= self.shape.block_bytes {
            self.finish_block();
        }
    }

    fn finish_block(&mut self) {
        if self.block.is_empty() {
            return;
        }
        let last_key = Bytes::copy_from_slice(self.block.last_key());
        let raw = self.block.finish();
        let offset = self.out.len() as u64;
        let (payload, codec) = self.compressor.compress(&raw);
        put_frame(&mut self.out, payload, codec);
        self.index.push(IndexEntry {
            last_key,
            offset,
            len: (self.out.len() as u64 - offset) as u32,
        });
    }

    /// Finishes the file: its bytes and its properties.
    pub fn finish(mut self) -> (Bytes, SstProps) {
        self.finish_block();
        if let Some(last) = self.index.last() {
            self.props.largest = last.last_key.clone();
        }
        if self.props.entries == 0 {
            self.props.min_epoch = Epoch(0);
        }
        let section = |out: &mut Vec<u8>, payload: &[u8]| {
            let off = out.len() as u64;
            put_frame(out, payload, CODEC_RAW);
            (off, (out.len() as u64 - off) as u32)
        };
        let filter = section(
            &mut self.out,
            &bloom::build(&self.hashes, self.shape.bloom_bits_per_key),
        );
        let index = section(&mut self.out, &encode_index(&self.index));
        let props = section(&mut self.out, &self.props.encode());
        Footer {
            filter,
            index,
            props,
        }
        .encode(&mut self.out);
        (Bytes::from(self.out), self.props)
    }
}
