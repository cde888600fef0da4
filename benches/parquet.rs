//! Parquet replay throughput (decode + detect) on a generated archive: 2 M events, 200 tables,
//! 20 000 principals, written by `exposure archive` (sorted, zstd, dictionary strings). Run:
//! `cargo bench --bench parquet`. Target: at least 30 M events/s on one core; the DuckDB
//! reference on the same kind of archive is `benches/duckdb_compare.py`.

mod synth;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use exposure::archive::archive;
use exposure::config::{Config, ConfigFile, DetectOverrides};
use exposure::format::Format;
use exposure::report::Problems;
use exposure::source::{Input, expand_inputs};
use std::hint::black_box;

const EVENTS: u64 = 2_000_000;

fn bench(c: &mut Criterion) {
    let config = Config::build(ConfigFile::default(), &DetectOverrides::default(), None)
        .expect("defaults are valid");
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("events.jsonl");
    std::fs::write(&json, synth::jsonl(synth::Shape::new(EVENTS))).expect("write events");
    let lake = dir.path().join("lake");
    let mut quiet = Problems::new(Box::new(std::io::sink()), 0);
    archive(&config, &[Input::File(json)], &lake, false, &mut quiet).expect("archive");
    let inputs = expand_inputs(&[lake.display().to_string()], Format::Parquet).expect("inputs");

    let mut group = c.benchmark_group("parquet");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    for threads in [1, 2] {
        group.bench_function(format!("replay_{threads}_thread"), |b| {
            b.iter(|| black_box(synth::replay_once(&config, &inputs, threads)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
