//! Parquet replay throughput (decode + detect) on a generated archive: 2 M events, 200 tables,
//! 20 000 principals, written by `exposure archive` (sorted, zstd, dictionary strings). Run:
//! `cargo bench --bench parquet`. Target: at least 30 M events/s on one core; the DuckDB
//! reference on the same kind of archive is `benches/duckdb_compare.py`. `decode_only_1_thread`
//! reads the same row groups with the same projection and dictionary types as replay, and does
//! nothing with them: the ceiling of any replay on this machine, measured in the same run.

mod synth;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use exposure::archive::archive;
use exposure::config::{Config, ConfigFile, DetectOverrides};
use exposure::format::Format;
use exposure::format::jsonl::FieldPaths;
use exposure::report::Problems;
use exposure::source::parquet::ParquetInput;
use exposure::source::{Input, expand_inputs};
use exposure::time::EpochUnit;
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
    let inputs = expand_inputs(
        &[lake.display().to_string()],
        Format::Parquet,
        Default::default(),
    )
    .expect("inputs")
    .inputs;

    let mut group = c.benchmark_group("parquet");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    for threads in [1, 2] {
        group.bench_function(format!("replay_{threads}_thread"), |b| {
            b.iter(|| black_box(synth::replay_once(&config, &inputs, threads)))
        });
    }
    let files: Vec<ParquetInput> = inputs
        .iter()
        .map(|input| match input.parquet_source() {
            Some(source) => {
                ParquetInput::open(source, &FieldPaths::default(), EpochUnit::default())
                    .expect("our own archive")
            }
            None => panic!("not a Parquet input: {input:?}"),
        })
        .collect();
    group.bench_function("decode_only_1_thread", |b| {
        b.iter(|| {
            let mut rows = 0usize;
            for file in &files {
                for row_group in &file.row_groups {
                    let reader = file
                        .read_row_group(row_group.index, exposure::replay::parquet::BATCH_ROWS)
                        .expect("readable");
                    for batch in reader {
                        rows += batch.expect("decodes").num_rows();
                    }
                }
            }
            assert_eq!(rows as u64, EVENTS);
            black_box(rows)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
