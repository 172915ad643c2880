//! Hot paths of the Nexmark input: generating events (in batches, as
//! sources do), the JSON-lines event format both ways, and the streaming
//! event-file source (chunked reads and batch parsing, one subtask, so its
//! events/s are per core).
#![allow(clippy::disallowed_methods)] // benchmarks measure wall time

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riverbed_compute::Source;
use riverbed_nexmark::json::{encode_event, EventReader, EventWriter, DEFAULT_MAX_LINE_BYTES};
use riverbed_nexmark::source::EventFiles;
use riverbed_nexmark::{Event, Generator, GeneratorConfig};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const EVENTS: u64 = 100_000;

fn generate(c: &mut Criterion) {
    let generator = Generator::new(GeneratorConfig::default()).unwrap();
    let mut g = c.benchmark_group("generator");
    g.throughput(Throughput::Elements(EVENTS));
    g.bench_function("100k_events_in_batches_of_1024", |b| {
        let mut batch = Vec::with_capacity(1024);
        b.iter(|| {
            let mut events = generator.events(0..EVENTS);
            let mut n = 0;
            while events.next_batch(&mut batch, 1024) > 0 {
                n += batch.len();
                batch.clear();
            }
            n
        })
    });
    g.finish();
}

fn json(c: &mut Criterion) {
    let generator = Generator::new(GeneratorConfig::default()).unwrap();
    let sample: Vec<Event> = generator.events(0..EVENTS).collect();
    let mut encoded = Vec::new();
    for e in &sample {
        encode_event(e, &mut encoded).unwrap();
    }
    let mut g = c.benchmark_group("event_json");
    g.throughput(Throughput::Elements(EVENTS));
    g.bench_function("write_100k_events", |b| {
        b.iter(|| {
            let mut w = EventWriter::new(std::io::sink());
            w.write_all(&sample).unwrap();
            w.finish().unwrap();
        })
    });
    g.bench_function("read_100k_events", |b| {
        b.iter(|| EventReader::new(&encoded[..]).count())
    });
    g.finish();
}

fn file_source(c: &mut Criterion) {
    const FILE_EVENTS: u64 = 1_000_000;
    let generator = Generator::new(GeneratorConfig::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mut w = riverbed_nexmark::json::create_file(&path).unwrap();
    w.write_all(&generator.events(0..FILE_EVENTS).collect::<Vec<_>>())
        .unwrap();
    w.finish().unwrap();
    let files = EventFiles::list(&[path], DEFAULT_MAX_LINE_BYTES).unwrap();
    let mut g = c.benchmark_group("event_file_source");
    g.throughput(Throughput::Elements(FILE_EVENTS));
    g.sample_size(10);
    g.bench_function("stream_1m_events_one_subtask_batches_of_1024", |b| {
        b.iter(|| {
            let source = files.source();
            let mut reader = source.reader(0, 1).unwrap();
            let mut batch = Vec::with_capacity(1024);
            let mut n = 0;
            while reader.read_batch(&mut batch, 1024).unwrap() {
                n += batch.len();
                batch.clear();
            }
            assert_eq!(n as u64, FILE_EVENTS);
            n
        })
    });
    g.finish();
}

criterion_group!(benches, generate, json, file_source);
criterion_main!(benches);
