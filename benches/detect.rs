//! Detection alone (issue 45): the reads of an archive, decoded and interned beforehand, fed to
//! a fresh detector row group by row group as Parquet replay feeds it (collected, applied as a
//! chunk, the watermark moved to the next row group), per shape — `200t` (200 tables, 20 000
//! principals) and `100kt` (10^5 tables, 10^6 principals, cache-hostile), as in
//! `benches/parquet.rs`. What replay costs beyond decoding, and what no decoder can take away.
//! Run: `cargo bench --bench detect` (`EXPOSURE_EVENTS`, default 2 000 000;
//! `EXPOSURE_SHAPES`). Cache misses per event: `examples/detect_only.rs` under callgrind
//! (docs/performance.md).

mod synth;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use exposure::config::{Config, ConfigFile, DetectOverrides};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let config = Config::build(ConfigFile::default(), &DetectOverrides::default(), None)
        .expect("defaults are valid");
    let events = synth::env_u64("EXPOSURE_EVENTS", 2_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let only = std::env::var("EXPOSURE_SHAPES").unwrap_or_default();
    for (name, shape) in synth::Shape::measured(events) {
        if !only.is_empty() && !only.split(',').any(|o| o == name) {
            continue;
        }
        let json = dir.path().join(format!("{name}.jsonl"));
        let lake = dir.path().join(name);
        synth::write_archive(&config, shape, &json, &lake);
        let reads = synth::PreInterned::from_archive(&config, &lake);
        let mut group = c.benchmark_group("detect");
        group.throughput(Throughput::Elements(reads.events));
        group.sample_size(10);
        group.bench_function(name, |b| {
            b.iter_batched(
                || reads.template.clone(),
                |detector| black_box(reads.detect_once(detector)),
                BatchSize::LargeInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
