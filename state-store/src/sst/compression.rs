//! Block compression: the codecs a data block's frame may carry, and the
//! setting that picks one per level.
//!
//! ```text
//! frame codec byte (the frame itself is drawn in format.rs):
//!   0 raw   payload = the block as is
//!   1 zstd  payload = one zstd frame that records its content size
//!   2 lz4   payload = uncompressed_len u32 LE ‖ one LZ4 block   (format 3 on)
//! ```
//! A block that a codec does not shrink is stored raw, whatever the level asks.
//!
//! Why levels differ: every checkpoint flushes its epoch into L0 and most of
//! what compaction writes goes into the upper levels, which hold a small part
//! of the data and are rewritten soonest. Compressing them with zstd cost the
//! job a fifth of its CPU (q18 with 1 s checkpoints); LZ4 compresses several
//! times faster and decompresses faster still. The deep levels hold most of
//! the bytes and change least, so zstd pays there (RocksDB's advice is the
//! same: a fast codec on top, zstd at the bottom).

use bytes::Bytes;
use serde::Deserialize;

use super::format::{CODEC_LZ4, CODEC_RAW, CODEC_ZSTD};

/// A block codec as settings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Blocks stored as they are.
    None,
    /// LZ4 block format: fast both ways, about half of zstd's ratio.
    Lz4,
    /// zstd at the options' `zstd_level`.
    Zstd,
}

impl Compression {
    /// The codec of level `level` in a per-level list: entry `level`, or the
    /// last entry for levels past the list (the list is never empty).
    pub fn for_level(per_level: &[Compression], level: usize) -> Compression {
        per_level
            .get(level)
            .or(per_level.last())
            .copied()
            .unwrap_or(Compression::Zstd)
    }
}

/// Compresses blocks into frames with one codec, reusing its buffers.
pub struct BlockCompressor {
    compression: Compression,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    scratch: Vec<u8>,
}

impl BlockCompressor {
    pub fn new(compression: Compression, zstd_level: i32) -> Self {
        let zstd = (compression == Compression::Zstd).then(|| {
            zstd::bulk::Compressor::new(zstd_level).expect("zstd context for a valid level")
        });
        BlockCompressor {
            compression,
            zstd,
            scratch: Vec::new(),
        }
    }

    /// The payload to frame for `raw` and its codec byte: the compressed
    /// form when it is smaller, else `raw` itself.
    pub fn compress<'a>(&'a mut self, raw: &'a [u8]) -> (&'a [u8], u8) {
        let codec = match self.compression {
            Compression::None => return (raw, CODEC_RAW),
            Compression::Zstd => {
                let z = self.zstd.as_mut().expect("made for zstd");
                self.scratch.clear();
                self.scratch
                    .reserve(zstd::zstd_safe::compress_bound(raw.len()));
                match z.compress_to_buffer(raw, &mut self.scratch) {
                    Ok(_) => CODEC_ZSTD,
                    Err(_) => return (raw, CODEC_RAW),
                }
            }
            Compression::Lz4 => {
                let Ok(len) = u32::try_from(raw.len()) else {
                    return (raw, CODEC_RAW);
                };
                let bound = lz4_flex::block::get_maximum_output_size(raw.len());
                self.scratch.clear();
                self.scratch.resize(4 + bound, 0);
                self.scratch[..4].copy_from_slice(&len.to_le_bytes());
                match lz4_flex::block::compress_into(raw, &mut self.scratch[4..]) {
                    Ok(n) => {
                        self.scratch.truncate(4 + n);
                        CODEC_LZ4
                    }
                    Err(_) => return (raw, CODEC_RAW),
                }
            }
        };
        if self.scratch.len() < raw.len() {
            (&self.scratch, codec)
        } else {
            (raw, CODEC_RAW)
        }
    }
}

thread_local! {
    /// One zstd context per thread: creating one per block costs more than
    /// decompressing a small block.
    static ZSTD_DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        std::cell::RefCell::new(zstd::bulk::Decompressor::new().ok());
}

/// The raw block of a frame's `payload` under `codec`. A block may not claim
/// more than `max_bytes` (a corrupted size must not ask for a huge buffer).
pub fn decompress(codec: u8, payload: Bytes, max_bytes: usize) -> Result<Bytes, &'static str> {
    match codec {
        CODEC_RAW => Ok(payload),
        CODEC_ZSTD => {
            let size = zstd::zstd_safe::get_frame_content_size(&payload)
                .ok()
                .flatten()
                .filter(|&s| s <= max_bytes as u64)
                .ok_or("zstd frame without a sane content size")? as usize;
            let raw = ZSTD_DECOMPRESSOR
                .with(|d| match d.borrow_mut().as_mut() {
                    Some(d) => d.decompress(&payload, size).ok(),
                    None => zstd::bulk::decompress(&payload, size).ok(),
                })
                .ok_or("zstd decode failed")?;
            Ok(Bytes::from(raw))
        }
        CODEC_LZ4 => {
            let (len, block) = payload
                .split_first_chunk::<4>()
                .ok_or("lz4 frame shorter than its length")?;
            let len = u32::from_le_bytes(*len) as usize;
            if len > max_bytes {
                return Err("lz4 frame without a sane content size");
            }
            let mut raw = vec![0; len];
            match lz4_flex::block::decompress_into(block, &mut raw) {
                Ok(n) if n == len => Ok(Bytes::from(raw)),
                _ => Err("lz4 decode failed"),
            }
        }
        _ => Err("unknown block codec"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..16_384u32)
            .flat_map(|i| format!("key-{:06} value-{} ", i % 700, i % 13).into_bytes())
            .take(16_384)
            .collect()
    }

    #[test]
    fn every_codec_round_trips_and_shrinks_redundant_blocks() {
        let raw = sample();
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let mut z = BlockCompressor::new(c, 1);
            let (payload, codec) = z.compress(&raw);
            let payload = Bytes::copy_from_slice(payload);
            if c == Compression::None {
                assert_eq!(codec, CODEC_RAW);
            } else {
                assert_ne!(codec, CODEC_RAW, "{c:?} should shrink a redundant block");
                assert!(payload.len() < raw.len() / 2, "{c:?}: {}", payload.len());
            }
            assert_eq!(&decompress(codec, payload, 1 << 20).unwrap()[..], &raw[..]);
        }
    }

    #[test]
    fn blocks_that_do_not_shrink_stay_raw() {
        let mut rng = crate::test_rng::XorShift(0x9e37_79b9_7f4a_7c15);
        let noise: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
        for c in [Compression::Lz4, Compression::Zstd] {
            let mut z = BlockCompressor::new(c, 1);
            assert_eq!(z.compress(&noise).1, CODEC_RAW, "{c:?}");
        }
    }

    #[test]
    fn corrupt_payloads_are_errors_not_panics() {
        let raw = sample();
        let mut z = BlockCompressor::new(Compression::Lz4, 1);
        let good = Bytes::copy_from_slice(z.compress(&raw).0);
        // A length above the bound, a truncated block, a length that lies.
        let mut huge = good.to_vec();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decompress(CODEC_LZ4, huge.into(), 1 << 20).is_err());
        assert!(decompress(CODEC_LZ4, good.slice(..good.len() / 2), 1 << 20).is_err());
        let mut lies = good.to_vec();
        lies[..4].copy_from_slice(&((raw.len() + 10) as u32).to_le_bytes());
        assert!(decompress(CODEC_LZ4, lies.into(), 1 << 20).is_err());
        assert!(decompress(CODEC_LZ4, Bytes::from_static(b"ab"), 1 << 20).is_err());
        assert!(decompress(9, good, 1 << 20).is_err());
    }

    #[test]
    fn levels_past_the_list_use_its_last_entry() {
        use Compression::*;
        let per_level = [Lz4, Lz4, Zstd];
        let at = |l| Compression::for_level(&per_level, l);
        assert_eq!((at(0), at(1), at(2), at(6)), (Lz4, Lz4, Zstd, Zstd));
        assert_eq!(Compression::for_level(&[None], 3), None);
    }
}
