//! Sorted string tables: immutable files of versions sorted by key (and by
//! stamp, newest first), with a block index, a bloom filter, compressed
//! blocks (LZ4 or zstd by level, `compression.rs`) and a crc32 per block.
//! `format.rs` draws the layout.

pub mod block;
pub mod bloom;
pub mod builder;
pub mod compression;
pub mod format;
pub mod reader;

pub use builder::{SstBuilder, SstShape};
pub use compression::Compression;
pub use format::SstProps;
pub use reader::{SstIter, SstReader};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use object_store::local::LocalFileSystem;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

    use super::*;
    use crate::cache::BlockCache;
    use crate::entry::Value;
    use crate::keys::{Epoch, FileId, Stamp};
    use crate::paths;

    fn shape() -> SstShape {
        SstShape {
            block_bytes: 48,
            restart_interval: 2,
            bloom_bits_per_key: 10,
            compression: Compression::Zstd,
            zstd_level: 1,
        }
    }

    fn stamp(e: u64, s: u64) -> Stamp {
        Stamp {
            epoch: Epoch(e),
            seq: s,
        }
    }

    /// The known table: three keys, one with two versions, one tombstone,
    /// spread over two data blocks.
    fn known_table() -> (Bytes, SstProps) {
        let mut b = SstBuilder::new(shape());
        b.add(b"apple", stamp(7, 3), Some(b"red"));
        b.add(b"apple", stamp(5, 1), Some(b"green"));
        b.add(b"banana", stamp(6, 2), None);
        b.add(b"cherry", stamp(7, 3), Some(b"dark"));
        b.finish()
    }

    /// Pins the byte encoding of format version 3: if this test fails, the
    /// format changed and needs a new version number, not a new constant.
    #[test]
    fn encoding_of_a_known_table_is_pinned() {
        let (bytes, props) = known_table();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, PINNED_HEX, "SST encoding changed");
        assert_eq!(props.entries, 4);
        assert_eq!((props.min_epoch, props.max_epoch), (Epoch(5), Epoch(7)));
        assert_eq!(&props.smallest[..], b"apple");
        assert_eq!(&props.largest[..], b"cherry");
    }

    const PINNED_HEX: &str = concat!(
        "0005000703036170706c65726564050000050105677265656e00060106026261",
        "6e616e6100000000190000000200000000d99822c70006000703046368657272",
        "796461726b00000000010000000086d662cb4040400000000000410000400000",
        "0000400100000000080020002410000200000000000000401000000000000000",
        "000000000022240000000000000000000800870030d641890662616e616e6100",
        "3506636865727279351d009788e3c2056170706c650663686572727904050700",
        "2dc401c0520000000000000046000000980000000000000017000000af000000",
        "0000000015000000030000005256424453535400",
    );

    /// The same table written by format version 2 (no LZ4 codec yet): files
    /// of that version must still read.
    const V2_HEX: &str = concat!(
        "0005000703036170706c65726564050000050105677265656e00060106026261",
        "6e616e6100000000190000000200000000d99822c70006000703046368657272",
        "796461726b00000000010000000086d662cb4040400000000000410000400000",
        "0000400100000000080020002410000200000000000000401000000000000000",
        "000000000022240000000000000000000800870030d641890662616e616e6100",
        "3506636865727279351d009788e3c2056170706c650663686572727904050700",
        "2dc401c0520000000000000046000000980000000000000017000000af000000",
        "0000000015000000020000005256424453535400",
    );

    /// The same table written by format version 1 (classic bloom filter):
    /// files of that version must still read.
    const V1_HEX: &str = concat!(
        "0005000703036170706c65726564050000050105677265656e00060106026261",
        "6e616e6100000000190000000200000000d99822c70006000703046368657272",
        "796461726b00000000010000000086d662cb0b318410146a404807001d6d9673",
        "0662616e616e61003506636865727279351d009788e3c2056170706c65066368",
        "65727279040507002dc401c052000000000000000e0000006000000000000000",
        "17000000770000000000000015000000010000005256424453535400",
    );

    /// Stores `bytes` as file `id` and opens a reader of it.
    async fn stored(store: &Arc<dyn ObjectStore>, id: u64, bytes: Bytes) -> SstReader {
        let size = bytes.len() as u64;
        store
            .put(&paths::sst(FileId(id)), PutPayload::from(bytes))
            .await
            .unwrap();
        SstReader::open(
            FileId(id),
            size,
            store.clone(),
            Arc::new(BlockCache::new(1 << 20)),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn reads_back_versions_newest_first_with_epoch_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let unhex = |h: &str| -> Bytes {
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
                .into()
        };
        for (id, bytes) in [(1, known_table().0), (2, unhex(V1_HEX)), (3, unhex(V2_HEX))] {
            let r = Arc::new(stored(&store, id, bytes).await);
            reads_back(r).await;
        }
    }

    async fn reads_back(r: Arc<SstReader>) {
        assert!(r.num_blocks() >= 2, "the known table spans blocks");
        let get = |k: &'static [u8], e: u64| {
            let r = r.clone();
            async move { r.get(k, reader::probe_hash(k), Epoch(e)).await.unwrap() }
        };
        assert_eq!(
            get(b"apple", 9).await,
            Some((stamp(7, 3), Value::Put(Bytes::from("red"))))
        );
        assert_eq!(
            get(b"apple", 6).await,
            Some((stamp(5, 1), Value::Put(Bytes::from("green"))))
        );
        assert_eq!(get(b"apple", 4).await, None);
        assert_eq!(get(b"banana", 9).await, Some((stamp(6, 2), Value::Delete)));
        assert_eq!(get(b"blueberry", 9).await, None);
        let mut it = SstIter::new(r.clone());
        it.seek(b"b").await.unwrap();
        let mut keys = Vec::new();
        while let Some(c) = it.current() {
            keys.push(c.key().to_vec());
            it.next().await.unwrap();
        }
        assert_eq!(keys, vec![b"banana".to_vec(), b"cherry".to_vec()]);
    }

    /// A table large enough to fill many blocks, written with each codec,
    /// reads back every version; the codecs shrink it in the expected order.
    #[tokio::test]
    async fn every_codec_writes_blocks_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let key = |i: u32| format!("user-{i:08}").into_bytes();
        let value = |i: u32| format!("bid of {} at price {}", i % 97, i % 1013).into_bytes();
        let mut sizes = Vec::new();
        for (id, compression) in [
            (10, Compression::None),
            (11, Compression::Lz4),
            (12, Compression::Zstd),
        ] {
            let mut b = SstBuilder::new(SstShape {
                block_bytes: 4096,
                compression,
                ..shape()
            });
            for i in 0..5_000 {
                b.add(&key(i), stamp(3, u64::from(i)), Some(&value(i)));
            }
            let (bytes, _) = b.finish();
            sizes.push(bytes.len() as u64);
            let r = Arc::new(stored(&store, id, bytes).await);
            let mut it = SstIter::new(r.clone());
            it.seek(b"").await.unwrap();
            let mut i = 0;
            while let Some(c) = it.current() {
                assert_eq!(c.key(), &key(i)[..], "{compression:?}");
                assert_eq!(c.value(), Value::Put(Bytes::from(value(i))));
                it.next().await.unwrap();
                i += 1;
            }
            assert_eq!(i, 5_000, "{compression:?}");
        }
        assert!(
            sizes[2] < sizes[1] && sizes[1] < sizes[0],
            "none, lz4, zstd sizes: {sizes:?}"
        );
    }

    /// `has_key_in` answers as a search of the file's keys does, for ranges
    /// within a block, across blocks, between keys and outside the file.
    #[tokio::test]
    async fn has_key_in_agrees_with_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        // Even numbers only, two versions of some: the odd ones are gaps.
        let key = |i: u32| format!("k{i:04}").into_bytes();
        let mut b = SstBuilder::new(shape());
        let mut keys = Vec::new();
        for i in (100..500).step_by(2) {
            b.add(&key(i), stamp(4, 1), Some(b"v"));
            if i % 6 == 0 {
                b.add(&key(i), stamp(2, 1), None);
            }
            keys.push(key(i));
        }
        let (bytes, _) = b.finish();
        let r = stored(&store, 20, bytes).await;
        assert!(r.num_blocks() > 20, "the table spans many blocks");
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u32| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % u64::from(n)) as u32
        };
        for _ in 0..2000 {
            let lo = next(600);
            let width = if next(2) == 0 { 4 } else { 300 };
            let hi = lo + next(width);
            let (lo, hi) = (key(lo), key(hi));
            let want = keys.iter().any(|k| *k >= lo && *k <= hi);
            assert_eq!(
                r.has_key_in(&lo, &hi).await.unwrap(),
                want,
                "{lo:?}..={hi:?}"
            );
        }
        assert!(
            !r.has_key_in(b"k0300", b"k0200").await.unwrap(),
            "empty range"
        );
    }
}
