//! SST block and key-encoding micro-benchmarks, named for what they measure:
//! how fast a 16 KiB data block (the default block size, 16-byte keys and
//! 100-byte values) is checked, decompressed, decoded and iterated, how fast
//! a seek inside it is, what each block codec costs to compress and to
//! decompress it (the choice `compression_per_level` makes), and what
//! building and parsing `full_key`s costs.
//! Only public APIs.
#![allow(clippy::disallowed_methods)] // benchmarks measure wall time

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riverbed_state_store::keys::{decode_full_key, encode_full_key};
use riverbed_state_store::sst::block::{Block, BlockBuilder, BlockIter};
use riverbed_state_store::sst::compression::{decompress, BlockCompressor, Compression};
use riverbed_state_store::sst::format::{check_frame, put_frame, CODEC_ZSTD};
use riverbed_state_store::{full_key, Epoch, KeyGroup, Options, Stamp, TableId};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn key(i: u64) -> Bytes {
    let mut user = [0u8; 10];
    user[..8].copy_from_slice(&i.to_be_bytes());
    full_key(TableId(1), KeyGroup((i / 1000) as u16), &user)
}

/// A full default-size block of consecutive keys; returns it raw with its
/// entry count and keys.
fn raw_block() -> (Vec<u8>, Vec<Bytes>) {
    let o = Options::default();
    let mut b = BlockBuilder::new(o.block_bytes, o.restart_interval);
    let mut keys = Vec::new();
    let mut i = 0u64;
    let value: Vec<u8> = (0..100u8).map(|x| x.wrapping_mul(37) ^ (x >> 2)).collect();
    while b.size() < o.block_bytes {
        let k = key(i * 7);
        let stamp = Stamp {
            epoch: Epoch(3),
            seq: i,
        };
        b.add(&k, stamp, Some(&value));
        keys.push(k);
        i += 1;
    }
    (b.finish(), keys)
}

fn sst_block_decode(c: &mut Criterion) {
    let (raw, keys) = raw_block();
    let entries = keys.len() as u64;
    let raw = Bytes::from(raw);
    let compressed = zstd::bulk::compress(&raw, Options::default().zstd_level).unwrap();
    let mut frame = Vec::new();
    put_frame(&mut frame, &compressed, CODEC_ZSTD);
    let frame = Bytes::from(frame);

    let mut g = c.benchmark_group("sst_block_decode");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("check_frame_and_unzstd_16k_block", |b| {
        b.iter(|| {
            let (payload, codec) = check_frame(&frame).unwrap();
            assert_eq!(codec, CODEC_ZSTD);
            zstd::bulk::decompress(&payload, raw.len()).unwrap()
        })
    });
    g.throughput(Throughput::Elements(entries));
    g.bench_function("decode_and_iterate_16k_block", |b| {
        b.iter(|| {
            let mut it = BlockIter::new(Block::decode(raw.clone()).unwrap());
            it.seek_to_first().unwrap();
            let mut n = 0u64;
            while it.valid() {
                n += it.value_slice().map_or(0, |v| v.len() as u64);
                it.advance().unwrap();
            }
            n
        })
    });
    let targets: Vec<Bytes> = (0..100)
        .map(|j| keys[(j * 37) % keys.len()].clone())
        .collect();
    g.throughput(Throughput::Elements(targets.len() as u64));
    g.bench_function("seek_100_keys_in_16k_block", |b| {
        let block = Block::decode(raw.clone()).unwrap();
        b.iter(|| {
            for t in &targets {
                let mut it = BlockIter::new(block.clone());
                it.seek(t).unwrap();
                assert!(it.valid());
            }
        })
    });
    g.finish();
}

fn block_codec(c: &mut Criterion) {
    let (raw, _) = raw_block();
    let level = Options::default().zstd_level;
    let mut g = c.benchmark_group("block_codec");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    for (name, compression) in [("lz4", Compression::Lz4), ("zstd", Compression::Zstd)] {
        let mut z = BlockCompressor::new(compression, level);
        let (payload, codec) = z.compress(&raw);
        let payload = Bytes::copy_from_slice(payload);
        g.bench_function(format!("compress_16k_block_{name}"), |b| {
            b.iter(|| z.compress(&raw).0.len())
        });
        g.bench_function(format!("decompress_16k_block_{name}"), |b| {
            b.iter(|| decompress(codec, payload.clone(), 1 << 20).unwrap().len())
        });
    }
    g.finish();
}

fn key_encoding(c: &mut Criterion) {
    let users: Vec<[u8; 10]> = (0..1000u64)
        .map(|i| {
            let mut u = [0u8; 10];
            u[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
            u
        })
        .collect();
    let mut g = c.benchmark_group("key_encoding");
    g.throughput(Throughput::Elements(users.len() as u64));
    g.bench_function("full_key_1000_keys", |b| {
        b.iter(|| {
            users
                .iter()
                .enumerate()
                .map(|(i, u)| full_key(TableId(7), KeyGroup(i as u16), u).len())
                .sum::<usize>()
        })
    });
    g.bench_function("encode_full_key_into_reused_buffer_1000_keys", |b| {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        b.iter(|| {
            buf.clear();
            for (i, u) in users.iter().enumerate() {
                encode_full_key(&mut buf, TableId(7), KeyGroup(i as u16), u);
            }
            buf.len()
        })
    });
    let encoded: Vec<Bytes> = users
        .iter()
        .enumerate()
        .map(|(i, u)| full_key(TableId(7), KeyGroup(i as u16), u))
        .collect();
    g.bench_function("decode_full_key_1000_keys", |b| {
        b.iter(|| {
            encoded
                .iter()
                .filter_map(|k| decode_full_key(k))
                .map(|(_, kg, _)| kg.0 as u64)
                .sum::<u64>()
        })
    });
    g.finish();
}

criterion_group!(benches, sst_block_decode, block_codec, key_encoding);
criterion_main!(benches);
