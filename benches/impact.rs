//! `exposure impact` against `exposure replay` on the same generated log, in the same run
//! (issue 41: impact at most 1.5× replay's time). The log is the benches' synthetic one with ten
//! incidents (a grant of read on a schema to PUBLIC, anyone reading it, its revoke two hours
//! later: `synth::Shape::grants`), so that impact has exposures to assess — its second pass,
//! every read handed to the pure core, is what it costs beyond the replay. Both run with the
//! threads replay uses by default on two cores. Run: `cargo bench --bench impact`; events with
//! `EXPOSURE_IMPACT_EVENTS` (default 1 000 000).

mod synth;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use exposure::config::{Config, ConfigFile, DetectOverrides};
use exposure::incident::impact::{Asked, assess};
use exposure::report::Problems;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let events = synth::env_u64("EXPOSURE_IMPACT_EVENTS", 1_000_000);
    let mut shape = synth::Shape::new(events);
    shape.grants = 10;
    let data = synth::jsonl(shape);
    let (_dir, input) = synth::temp_input(&data);
    let inputs = [input];
    let config = Config::build(ConfigFile::default(), &DetectOverrides::default(), None)
        .expect("defaults are valid");
    // What is measured is real work: ten exposures, each read by hundreds of newcomers.
    let mut problems = Problems::new(Box::new(std::io::sink()), 0);
    let impacts = assess(&config, &inputs, &Asked::All, &mut problems).expect("impact");
    assert_eq!(impacts.len(), 10, "ten incidents, ten exposures");
    assert!(impacts.iter().all(|i| i.did_read_count > 0));

    let mut group = c.benchmark_group("impact");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    group.bench_function("replay_2_threads", |b| {
        b.iter(|| black_box(synth::replay_once(&config, &inputs, 2)))
    });
    group.bench_function("impact_all_exposures", |b| {
        b.iter(|| {
            let mut problems = Problems::new(Box::new(std::io::sink()), 0);
            black_box(assess(&config, &inputs, &Asked::All, &mut problems).expect("impact"))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
