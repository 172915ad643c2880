//! The SST file format, version 3. Version 2 differs only in its block codecs
//! (no LZ4), version 1 also in its filter (classic instead of blocked bloom);
//! both still read.
//!
//! ```text
//! +--------------+-----+--------------+--------------+-------------+-------------------+--------------+
//! | data block 0 | ... | data block n | filter frame | index frame | properties frame  | footer (48 B)|
//! +--------------+-----+--------------+--------------+-------------+-------------------+--------------+
//!
//! frame (every block, filter, index and properties section):
//! +-------------------+----------+------------------------------------+
//! | payload           | codec u8 | crc32 (u32 LE) of payload ‖ codec  |
//! +-------------------+----------+------------------------------------+
//! codec 0 = stored as is, 1 = zstd, 2 = lz4 (data blocks only; kept raw when the
//! codec does not shrink them; payloads drawn in compression.rs)
//!
//! data block payload: see `block.rs` (prefix-compressed entries, restart points)
//! filter payload:     see `bloom.rs`  (blocked bloom bits ‖ 0x80|k)
//! index payload:      per data block: last_key (varint len ‖ bytes) ‖ offset varint ‖ frame_len varint
//! properties payload: smallest_key (len ‖ bytes) ‖ largest_key (len ‖ bytes) ‖ entries varint
//!                     ‖ min_epoch varint ‖ max_epoch varint
//!
//! footer (little-endian, 48 bytes):
//! | filter_offset u64 | filter_len u32 | index_offset u64 | index_len u32
//! | props_offset u64 | props_len u32 | format_version u32 | magic u64 = "RVBDSST\0" |
//! ```
//! The index holds the last key of every data block, so a seek reads the
//! first block whose last key is `>=` the target. Versions of one key may
//! straddle blocks; readers continue into the next block.

use bytes::{BufMut, Bytes};

use crate::keys::Epoch;
use crate::varint::{get_bytes, get_uvarint, put_bytes, put_uvarint};

pub const FOOTER_LEN: usize = 48;
pub const MAGIC: u64 = u64::from_le_bytes(*b"RVBDSST\0");
pub const FORMAT_VERSION: u32 = 3;
/// The oldest version this build reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;
pub const CODEC_RAW: u8 = 0;
pub const CODEC_ZSTD: u8 = 1;
pub const CODEC_LZ4: u8 = 2;
/// Bytes a frame adds after its payload.
pub const FRAME_TRAILER: usize = 5;

/// Appends `payload` framed with its codec and checksum to `out`.
pub fn put_frame(out: &mut Vec<u8>, payload: &[u8], codec: u8) {
    let start = out.len();
    out.extend_from_slice(payload);
    out.push(codec);
    let crc = crc32fast::hash(&out[start..]);
    out.put_u32_le(crc);
}

/// Checks a frame's checksum and returns `(payload, codec)`.
pub fn check_frame(frame: &Bytes) -> Result<(Bytes, u8), &'static str> {
    if frame.len() < FRAME_TRAILER {
        return Err("frame shorter than its trailer");
    }
    let body_len = frame.len() - 4;
    let stored = u32::from_le_bytes(frame[body_len..].try_into().expect("4 bytes"));
    if crc32fast::hash(&frame[..body_len]) != stored {
        return Err("checksum mismatch");
    }
    Ok((frame.slice(..body_len - 1), frame[body_len - 1]))
}

/// Where the filter, index and properties sit in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub filter: (u64, u32),
    pub index: (u64, u32),
    pub props: (u64, u32),
}

impl Footer {
    pub fn encode(&self, out: &mut Vec<u8>) {
        for (off, len) in [self.filter, self.index, self.props] {
            out.put_u64_le(off);
            out.put_u32_le(len);
        }
        out.put_u32_le(FORMAT_VERSION);
        out.put_u64_le(MAGIC);
    }

    pub fn decode(b: &[u8]) -> Result<Footer, &'static str> {
        if b.len() != FOOTER_LEN {
            return Err("footer has the wrong length");
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        if u64_at(40) != MAGIC {
            return Err("bad magic number: not a Riverbed SST");
        }
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&u32_at(36)) {
            return Err("unsupported SST format version");
        }
        Ok(Footer {
            filter: (u64_at(0), u32_at(8)),
            index: (u64_at(12), u32_at(20)),
            props: (u64_at(24), u32_at(32)),
        })
    }
}

/// One index entry: the last key of a data block and where its frame is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub last_key: Bytes,
    pub offset: u64,
    pub len: u32,
}

pub fn encode_index(entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        put_bytes(&mut out, &e.last_key);
        put_uvarint(&mut out, e.offset);
        put_uvarint(&mut out, u64::from(e.len));
    }
    out
}

pub fn decode_index(payload: &Bytes) -> Result<Vec<IndexEntry>, &'static str> {
    let mut input = &payload[..];
    let mut out = Vec::new();
    while !input.is_empty() {
        let key = get_bytes(&mut input).ok_or("truncated index key")?;
        let offset = get_uvarint(&mut input).ok_or("truncated index offset")?;
        let len = get_uvarint(&mut input).ok_or("truncated index length")?;
        let len = u32::try_from(len).map_err(|_| "index length too large")?;
        out.push(IndexEntry {
            last_key: payload.slice_ref(key),
            offset,
            len,
        });
    }
    Ok(out)
}

/// What a file holds, recorded in the file and copied into the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SstProps {
    pub smallest: Bytes,
    pub largest: Bytes,
    pub entries: u64,
    pub min_epoch: Epoch,
    pub max_epoch: Epoch,
}

impl SstProps {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, &self.smallest);
        put_bytes(&mut out, &self.largest);
        put_uvarint(&mut out, self.entries);
        put_uvarint(&mut out, self.min_epoch.0);
        put_uvarint(&mut out, self.max_epoch.0);
        out
    }

    pub fn decode(payload: &[u8]) -> Result<SstProps, &'static str> {
        let mut input = payload;
        let smallest =
            Bytes::copy_from_slice(get_bytes(&mut input).ok_or("truncated smallest key")?);
        let largest = Bytes::copy_from_slice(get_bytes(&mut input).ok_or("truncated largest key")?);
        let entries = get_uvarint(&mut input).ok_or("truncated entry count")?;
        let min_epoch = Epoch(get_uvarint(&mut input).ok_or("truncated min epoch")?);
        let max_epoch = Epoch(get_uvarint(&mut input).ok_or("truncated max epoch")?);
        Ok(SstProps {
            smallest,
            largest,
            entries,
            min_epoch,
            max_epoch,
        })
    }
}
