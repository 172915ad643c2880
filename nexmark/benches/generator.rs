//! Hot paths of the Nexmark input: generating events (in batches, as
//! sources do) and the JSON-lines event format both ways.
#![allow(clippy::disallowed_methods)] // benchmarks measure wall time

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use riverbed_nexmark::json::{encode_event, EventReader, EventWriter};
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

criterion_group!(benches, generate, json);
criterion_main!(benches);
