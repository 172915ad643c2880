//! The manifest: the durable description of the committed store, replaced
//! atomically on every commit and compaction.
//!
//! Versions are objects named `manifest/<n>.manifest` (see `paths.rs`). A
//! writer creates version `n + 1` with a conditional put (`If-None-Match`):
//! if two writers race for the same number, exactly one succeeds and the
//! other gets [`Error::ManifestConflict`] instead of overwriting it. Opening
//! reads the highest number. Only the newest few versions are kept.
//!
//! ```text
//! +---------------------+-------------------+------+----------------------------+
//! | magic u64 LE        | format_version u32| body | crc32 (u32 LE) of all before |
//! | "RVBDMAN\0"         | = 5               |      |                            |
//! +---------------------+-------------------+------+----------------------------+
//! body: committed_epoch varint | next_file_id varint | next_seq varint
//!     | level count varint | per level (L0 first): file count varint
//!     |     | per file: id varint | size varint | props (len-prefixed, as in sst/format.rs)
//!     | tombstone count varint | per tombstone: start (len ‖ bytes) | end (len ‖ bytes)
//!     |     | epoch varint | seq varint
//!     | checkpoint count varint | per checkpoint, oldest first: see checkpoint.rs
//!     | namespace (len ‖ utf-8) | catalog: see catalog.rs
//!     | writer generation varint
//! ```
//!
//! The writer generation fences off old owners of a namespace: each run of
//! a job that (re)starts from a checkpoint takes the next one
//! (`Store::fence`), and a write tagged with another generation is
//! refused, so a process that lost the namespace cannot write into the run
//! that took it over.
//!
//! Older formats are still read, and the next write upgrades them: format 4
//! lacks the writer generation (read as 0: no run has fenced yet), format 3
//! lacks the tables' descriptions (read as raw tables), format 2 the
//! namespace and catalog (read as an unnamed namespace with no
//! registered tables), format 1 also the checkpoints.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::catalog::Catalog;
use crate::checkpoint::CheckpointMeta;
use crate::error::{Error, Result};
use crate::keys::{Epoch, FileId, Stamp};
use crate::paths;
use crate::range_tombstone::RangeTombstone;
use crate::sst::SstProps;
use crate::varint::{get_bytes, get_uvarint, put_bytes, put_uvarint};
use crate::version::SstMeta;

const MAGIC: u64 = u64::from_le_bytes(*b"RVBDMAN\0");
const FORMAT_VERSION: u32 = 5;
/// The oldest format still read: before checkpoints (1) and before
/// namespaces and the table catalog (2).
const OLDEST_FORMAT: u32 = 1;
/// Older manifest versions kept beside the newest, for inspection after a failure.
const KEEP_OLD: u64 = 2;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ManifestData {
    pub committed: Epoch,
    pub next_file_id: u64,
    pub next_seq: u64,
    /// `levels[0]` is L0.
    pub levels: Vec<Vec<SstMeta>>,
    pub tombstones: Vec<RangeTombstone>,
    /// Retained checkpoints, oldest first.
    pub checkpoints: Vec<CheckpointMeta>,
    /// The namespace the manifest belongs to; empty when written before
    /// namespaces existed.
    pub namespace: String,
    pub catalog: Catalog,
    /// The generation of the namespace's current writer (0: none fenced).
    pub writer_generation: u64,
}

impl ManifestData {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        put_uvarint(&mut out, self.committed.0);
        put_uvarint(&mut out, self.next_file_id);
        put_uvarint(&mut out, self.next_seq);
        put_uvarint(&mut out, self.levels.len() as u64);
        for level in &self.levels {
            put_uvarint(&mut out, level.len() as u64);
            for f in level {
                put_uvarint(&mut out, f.id.0);
                put_uvarint(&mut out, f.size);
                put_bytes(&mut out, &f.props.encode());
            }
        }
        put_uvarint(&mut out, self.tombstones.len() as u64);
        for t in &self.tombstones {
            put_bytes(&mut out, &t.start);
            put_bytes(&mut out, &t.end);
            put_uvarint(&mut out, t.stamp.epoch.0);
            put_uvarint(&mut out, t.stamp.seq);
        }
        put_uvarint(&mut out, self.checkpoints.len() as u64);
        for c in &self.checkpoints {
            c.encode(&mut out);
        }
        put_bytes(&mut out, self.namespace.as_bytes());
        self.catalog.encode(&mut out);
        put_uvarint(&mut out, self.writer_generation);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a manifest; `Err((offset, reason))` when it is damaged.
    pub fn decode(data: &[u8]) -> Result<ManifestData, (u64, &'static str)> {
        if data.len() < 16 {
            return Err((0, "manifest shorter than its header and checksum"));
        }
        let (body, crc) = data.split_at(data.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(((data.len() - 4) as u64, "manifest checksum mismatch"));
        }
        if u64::from_le_bytes(body[..8].try_into().expect("8 bytes")) != MAGIC {
            return Err((0, "bad magic number: not a Riverbed manifest"));
        }
        let format = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes"));
        if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&format) {
            return Err((8, "unsupported manifest format version"));
        }
        let mut input = &body[12..];
        let at = |input: &[u8]| (body.len() - input.len()) as u64;
        macro_rules! field {
            ($e:expr, $why:expr) => {
                match $e {
                    Some(v) => v,
                    None => return Err((at(input), $why)),
                }
            };
        }
        let committed = Epoch(field!(get_uvarint(&mut input), "truncated committed epoch"));
        let next_file_id = field!(get_uvarint(&mut input), "truncated next file id");
        let next_seq = field!(get_uvarint(&mut input), "truncated next seq");
        let nlevels = field!(get_uvarint(&mut input), "truncated level count");
        if nlevels > 64 {
            return Err((at(input), "too many levels"));
        }
        let mut levels = Vec::new();
        for _ in 0..nlevels {
            let n = field!(get_uvarint(&mut input), "truncated file count");
            let mut files = Vec::new();
            for _ in 0..n {
                let id = FileId(field!(get_uvarint(&mut input), "truncated file id"));
                let size = field!(get_uvarint(&mut input), "truncated file size");
                let props = field!(get_bytes(&mut input), "truncated file properties");
                let props = SstProps::decode(props).map_err(|why| (at(input), why))?;
                files.push(SstMeta { id, size, props });
            }
            levels.push(files);
        }
        let nt = field!(get_uvarint(&mut input), "truncated tombstone count");
        let mut tombstones = Vec::new();
        for _ in 0..nt {
            let start =
                Bytes::copy_from_slice(field!(get_bytes(&mut input), "truncated tombstone start"));
            let end =
                Bytes::copy_from_slice(field!(get_bytes(&mut input), "truncated tombstone end"));
            let epoch = Epoch(field!(get_uvarint(&mut input), "truncated tombstone epoch"));
            let seq = field!(get_uvarint(&mut input), "truncated tombstone seq");
            tombstones.push(RangeTombstone {
                start,
                end,
                stamp: Stamp { epoch, seq },
            });
        }
        let mut checkpoints = Vec::new();
        if format >= 2 {
            let n = field!(get_uvarint(&mut input), "truncated checkpoint count");
            for _ in 0..n {
                let c =
                    CheckpointMeta::decode(&mut input, format).map_err(|why| (at(input), why))?;
                checkpoints.push(c);
            }
        }
        let (namespace, catalog) = if format >= 3 {
            let ns = field!(get_bytes(&mut input), "truncated namespace");
            let ns = String::from_utf8(ns.to_vec())
                .map_err(|_| (at(input), "namespace is not UTF-8"))?;
            let catalog =
                Catalog::decode(&mut input, format >= 4).map_err(|why| (at(input), why))?;
            (ns, catalog)
        } else {
            (String::new(), Catalog::default())
        };
        let writer_generation = if format >= 5 {
            field!(get_uvarint(&mut input), "truncated writer generation")
        } else {
            0
        };
        if !input.is_empty() {
            return Err((at(input), "trailing bytes after the manifest body"));
        }
        Ok(ManifestData {
            committed,
            next_file_id,
            next_seq,
            levels,
            tombstones,
            checkpoints,
            namespace,
            catalog,
            writer_generation,
        })
    }
}

/// What [`ManifestStore::put`] found.
enum Put {
    Written,
    /// The number holds what a dropped write of this writer put there.
    TakenByDropped,
}

/// Reads and writes manifest versions of one store.
pub struct ManifestStore {
    store: Arc<dyn ObjectStore>,
    /// Number of the newest version this writer knows; 0 = none yet.
    current: u64,
    /// A write failed without telling whether it landed.
    uncertain: bool,
    /// The version and bytes of a write whose future was dropped before it
    /// returned (its caller was cancelled): the put may have landed, or may
    /// still land, so finding that version taken by exactly these bytes
    /// is not another writer.
    dropped: Option<(u64, Bytes)>,
}

impl ManifestStore {
    /// Loads the newest manifest, if the store has one.
    pub async fn open(
        store: Arc<dyn ObjectStore>,
    ) -> Result<(ManifestStore, Option<ManifestData>)> {
        let listed: Vec<_> = store
            .list(Some(&paths::manifest_dir()))
            .try_collect()
            .await?;
        let newest = listed
            .iter()
            .filter_map(|m| paths::parse_manifest(&m.location))
            .max();
        let mut ms = ManifestStore {
            store,
            current: 0,
            uncertain: false,
            dropped: None,
        };
        let Some(n) = newest else {
            return Ok((ms, None));
        };
        let path = paths::manifest(n);
        let bytes = ms.store.get(&path).await?.bytes().await?;
        let data =
            ManifestData::decode(&bytes).map_err(|(off, why)| Error::corrupted(&path, off, why))?;
        ms.current = n;
        Ok((ms, Some(data)))
    }

    pub fn current_version(&self) -> u64 {
        self.current
    }

    /// Writes the next version; fails with `ManifestConflict` if another
    /// writer created it first.
    ///
    /// A put that fails otherwise may still have landed (the request
    /// reached the server and the answer was lost), so its outcome is read
    /// back: the version holding exactly these bytes is a success. When the
    /// outcome stays unknown, this writer refuses every later write: the
    /// caller must stop and reopen, and the next open learns the truth.
    pub async fn write(&mut self, data: &ManifestData) -> Result<()> {
        if self.uncertain {
            return Err(Error::Closed(
                "an earlier manifest write may or may not have landed; reopen the store".into(),
            ));
        }
        let bytes = Bytes::from(data.encode());
        loop {
            let next = self.current + 1;
            match self.put(next, &bytes).await? {
                Put::Written => break,
                // A dropped write of ours took the number: step past it.
                Put::TakenByDropped => self.current = next,
            }
        }
        let next = self.current + 1;
        self.current = next;
        if next > KEEP_OLD + 1 {
            let old = paths::manifest(next - KEEP_OLD - 1);
            if let Err(e) = self.store.delete(&old).await {
                tracing::warn!(path = %old, error = %e, "could not delete an old manifest version");
            }
        }
        Ok(())
    }

    /// Creates version `n` holding `bytes`.
    async fn put(&mut self, n: u64, bytes: &Bytes) -> Result<Put> {
        let path = paths::manifest(n);
        let earlier = self.dropped.replace((n, bytes.clone()));
        let opts = PutOptions::from(PutMode::Create);
        let outcome = match self
            .store
            .put_opts(&path, PutPayload::from(bytes.clone()), opts)
            .await
        {
            Ok(_) => Ok(Put::Written),
            Err(e) => {
                let landed = match self.store.get(&path).await {
                    Ok(r) => r.bytes().await.ok(),
                    Err(_) => None,
                };
                let exists = matches!(e, object_store::Error::AlreadyExists { .. });
                match landed {
                    Some(b) if b == *bytes => {
                        if !exists {
                            tracing::warn!(path = %path, error = %e, "manifest put reported an error but landed");
                        }
                        Ok(Put::Written)
                    }
                    Some(b)
                        if earlier
                            .as_ref()
                            .is_some_and(|(en, eb)| *en == n && *eb == b) =>
                    {
                        tracing::warn!(path = %path, "a cancelled manifest write landed; writing the next version");
                        Ok(Put::TakenByDropped)
                    }
                    Some(_) => Err(Error::ManifestConflict { version: n }),
                    None if exists => Err(Error::ManifestConflict { version: n }),
                    None => {
                        self.uncertain = true;
                        Err(e.into())
                    }
                }
            }
        };
        // Returned: not dropped. (A still-pending earlier write of the same
        // number is kept in mind for the next attempt at it.)
        self.dropped = match (&outcome, earlier) {
            (Ok(Put::TakenByDropped), _) => None,
            (_, Some((en, eb))) if en > n => Some((en, eb)),
            _ => None,
        };
        outcome
    }

    /// Deletes every version older than the ones [`ManifestStore::write`]
    /// keeps. A crash between a write and its delete, or a failed delete,
    /// leaves old versions behind; the store calls this once it holds the
    /// fence, so no other writer is adding versions meanwhile.
    pub async fn collect_old(&self) -> Result<usize> {
        let keep_from = self.current.saturating_sub(KEEP_OLD);
        let listed: Vec<_> = self
            .store
            .list(Some(&paths::manifest_dir()))
            .try_collect()
            .await?;
        let mut deleted = 0;
        for obj in listed {
            if paths::parse_manifest(&obj.location).is_some_and(|v| v < keep_from) {
                tracing::info!(path = %obj.location, "deleting an old manifest version");
                self.store.delete(&obj.location).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write whose caller is cancelled after the put started lands in
    /// the background; the next write steps past it instead of taking it
    /// for another writer.
    #[test]
    fn a_cancelled_write_that_lands_is_not_another_writer() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store: Arc<dyn ObjectStore> = Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
            );
            let data = |epoch: u64| ManifestData {
                committed: crate::Epoch(epoch),
                next_file_id: 1,
                ..ManifestData::default()
            };
            let (mut ms, _) = ManifestStore::open(store.clone()).await.unwrap();
            ms.write(&data(1)).await.unwrap();
            // What a write of version 2 dropped mid-put leaves: its record,
            // and the version landing afterwards from the put's thread.
            let two = Bytes::from(data(2).encode());
            ms.dropped = Some((2, two.clone()));
            store
                .put(&paths::manifest(2), PutPayload::from(two))
                .await
                .unwrap();
            ms.write(&data(3)).await.expect("not a conflict");
            assert_eq!(ms.current_version(), 3);
            let (_, newest) = ManifestStore::open(store.clone()).await.unwrap();
            assert_eq!(newest.unwrap().committed, crate::Epoch(3));
            // Another writer's version is still a conflict.
            store
                .put(
                    &paths::manifest(4),
                    PutPayload::from(Bytes::from(data(9).encode())),
                )
                .await
                .unwrap();
            assert!(matches!(
                ms.write(&data(4)).await,
                Err(Error::ManifestConflict { version: 4 })
            ));
        });
    }

    /// A manifest written in format 1 (before checkpoints), pinned as bytes:
    /// committed epoch 7, one L0 file (id 10, 4096 bytes, keys k1..k9, epochs
    /// 6..7) and one range tombstone [a, b) at epoch 5, seq 2.
    const FORMAT_1: &str =
        "525642444d414e0001000000070cd90202010a802009026b31026b3903060700010161016205023656110e";

    #[test]
    fn format_1_is_still_read() {
        let bytes: Vec<u8> = (0..FORMAT_1.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&FORMAT_1[i..i + 2], 16).unwrap())
            .collect();
        let m = ManifestData::decode(&bytes).unwrap();
        assert_eq!(m.committed, Epoch(7));
        assert_eq!((m.next_file_id, m.next_seq), (12, 345));
        assert_eq!(m.levels[0][0].id, FileId(10));
        assert_eq!(m.levels[0][0].props.largest, Bytes::from("k9"));
        assert_eq!(m.tombstones[0].stamp.seq, 2);
        assert!(m.checkpoints.is_empty());
        // Written again, it is the current format and reads back equal.
        let again = m.encode();
        assert_eq!(
            u32::from_le_bytes(again[8..12].try_into().unwrap()),
            FORMAT_VERSION
        );
        assert_eq!(ManifestData::decode(&again).unwrap(), m);
    }

    /// A manifest written in format 2 (checkpoints, no namespace or
    /// catalog), pinned as bytes: committed epoch 9, one L0 file (id 10,
    /// 4096 bytes, keys k1..k9, 3 entries, epochs 6..9) and one checkpoint
    /// of job q5 at epoch 9 (source `bids` at [1, 2], watermark -5, 40 ms,
    /// of which 30 ms commit, 100 dirty bytes, one 4096-byte file, `join`
    /// aligned in 3 ms).
    const FORMAT_2: &str = "525642444d414e0002000000090cd90201010a802009026b31026b39030609000109\
        027135e807090001046269647301020102281e6480200101046a6f696e0388950dd4";

    #[test]
    fn format_2_is_still_read() {
        let hex = FORMAT_2.replace(char::is_whitespace, "");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let m = ManifestData::decode(&bytes).unwrap();
        assert_eq!(m.committed, Epoch(9));
        assert_eq!(m.levels[0][0].props.entries, 3);
        let c = &m.checkpoints[0];
        assert_eq!((c.epoch, c.job.as_str(), c.watermark), (Epoch(9), "q5", -5));
        assert_eq!(c.positions[0].subtasks, vec![vec![1, 2]]);
        assert_eq!(c.stats.alignment_ms, vec![("join".to_string(), 3)]);
        assert_eq!(m.namespace, "");
        assert_eq!(m.catalog, Catalog::default());
        let again = m.encode();
        assert_eq!(ManifestData::decode(&again).unwrap(), m);
    }

    /// Format 3 (namespace and catalog, no table descriptions): format 2's
    /// bytes with the namespace `q5` and one table `join` (id 1) appended.
    #[test]
    fn format_3_is_still_read() {
        let hex = FORMAT_2.replace(char::is_whitespace, "");
        let mut bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        bytes.truncate(bytes.len() - 4);
        bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
        bytes.extend_from_slice(&[2, b'q', b'5', 2, 1, 4, b'j', b'o', b'i', b'n', 1]);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let m = ManifestData::decode(&bytes).unwrap();
        assert_eq!(m.namespace, "q5");
        let join = m.catalog.entry("join").unwrap();
        assert_eq!(join.id, crate::TableId(1));
        assert_eq!(join.info, crate::catalog::TableInfo::default());
        let again = m.encode();
        assert_eq!(ManifestData::decode(&again).unwrap(), m);
    }

    /// Format 4 (before the writer generation): this version's bytes of a
    /// manifest whose generation is 0, without its last field, read as 0.
    #[test]
    fn format_4_is_still_read() {
        let m = ManifestData {
            committed: Epoch(3),
            next_file_id: 4,
            namespace: "q9".into(),
            ..ManifestData::default()
        };
        let mut bytes = m.encode();
        bytes.truncate(bytes.len() - 5); // the checksum and the generation 0
        bytes[8..12].copy_from_slice(&4u32.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let old = ManifestData::decode(&bytes).unwrap();
        assert_eq!(old, m);
        assert_eq!(old.writer_generation, 0);
    }

    #[test]
    fn encoding_round_trips_and_detects_every_flipped_byte() {
        let m = ManifestData {
            committed: Epoch(5),
            next_file_id: 9,
            next_seq: 77,
            levels: vec![
                vec![SstMeta {
                    id: FileId(3),
                    size: 1000,
                    props: SstProps {
                        smallest: Bytes::from("a"),
                        largest: Bytes::from("z"),
                        entries: 10,
                        min_epoch: Epoch(2),
                        max_epoch: Epoch(5),
                    },
                }],
                vec![],
            ],
            tombstones: vec![RangeTombstone {
                start: Bytes::from("b"),
                end: Bytes::from("c"),
                stamp: Stamp {
                    epoch: Epoch(4),
                    seq: 1,
                },
            }],
            checkpoints: vec![crate::checkpoint::CheckpointMeta {
                epoch: Epoch(5),
                job: "j".into(),
                positions: vec![crate::checkpoint::SourcePositions {
                    source: "s".into(),
                    subtasks: vec![vec![9, 9]],
                }],
                ..Default::default()
            }],
            namespace: "ns1".into(),
            catalog: {
                let mut c = Catalog::default();
                c.register("t").unwrap();
                c
            },
            writer_generation: 7,
        };
        let enc = m.encode();
        assert_eq!(ManifestData::decode(&enc).unwrap(), m);
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x10;
            assert!(
                ManifestData::decode(&bad).is_err(),
                "flip at {i} went unnoticed"
            );
        }
    }
}
