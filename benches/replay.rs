//! Throughput of the JSON-lines path on a generated log (200 tables, 20 000 principals, ms
//! timestamps, a little disorder): parsing alone, and the whole replay (read file, split, parse,
//! detect, write alerts). Run: `cargo bench --bench replay`. Target (issue 19): end-to-end
//! replay at least 5 M events/s on one core. `parse_serde_only` is the parser before the
//! canonical byte scanner, measured in the same run. Two reference floors are measured in the same run:
//! `serde_json_borrowed_struct` (serde_json into a derived struct of borrowed strings, no
//! timestamp, no detection) and `serde_json_and_humantime` (the same, plus the timestamp through
//! humantime, as replay parses it): no replay built on these crates can be faster than them.

mod synth;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use exposure::config::{Config, ConfigFile, DetectOverrides};
use exposure::detect::Detector;
use exposure::format::Line;
use exposure::source::lines::LineReader;
use std::hint::black_box;

/// The line cap of a canonical JSON-lines input, as `replay` applies it.
fn line_cap() -> exposure::format::decode::LineCap {
    exposure::format::decode::LineCap::new(
        exposure::format::Format::Jsonl,
        exposure::format::decode::DEFAULT_MAX_LINE_BYTES,
    )
}

const EVENTS: u64 = 1_000_000;

/// The canonical line as serde_json's derive reads it, borrowing every string: the floor.
#[derive(serde::Deserialize)]
struct Borrowed<'a> {
    #[serde(borrow)]
    ts: &'a str,
    #[serde(borrow)]
    principal: &'a str,
    #[serde(borrow)]
    table: &'a str,
    #[serde(borrow)]
    action: Option<&'a str>,
}

/// serde_json over every line of `data` into [`Borrowed`]; `use_line` turns each into a number
/// to sum, so that nothing is optimised away.
fn sum_over_lines(data: &[u8], mut use_line: impl FnMut(Borrowed<'_>) -> u64) -> u64 {
    let mut lines = LineReader::new(data, line_cap());
    let mut sum = 0u64;
    while let Some((_, Line::Text(line))) = lines.next_line().expect("memory") {
        let text = std::str::from_utf8(line).expect("UTF-8");
        let parsed: Borrowed = serde_json::from_str(text).expect("valid");
        sum = sum.wrapping_add(use_line(parsed));
    }
    sum
}

fn config() -> Config {
    Config::build(ConfigFile::default(), &DetectOverrides::default(), None)
        .expect("defaults are valid")
}

fn bench(c: &mut Criterion) {
    let data = synth::jsonl(synth::Shape::new(EVENTS));
    let config = config();
    let parser = config.input.jsonl.clone();

    let mut group = c.benchmark_group("jsonl");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);

    group.bench_function("split_lines", |b| {
        b.iter(|| {
            let mut lines = LineReader::new(&data[..], line_cap());
            let mut n = 0u64;
            while let Some((_, Line::Text(line))) = lines.next_line().expect("memory") {
                n += line.len() as u64;
            }
            black_box(n)
        })
    });

    group.bench_function("serde_json_borrowed_struct", |b| {
        b.iter(|| {
            black_box(sum_over_lines(&data, |parsed| {
                (parsed.ts.len()
                    + parsed.principal.len()
                    + parsed.table.len()
                    + parsed.action.map_or(0, str::len)) as u64
            }))
        })
    });

    group.bench_function("serde_json_and_humantime", |b| {
        b.iter(|| {
            black_box(sum_over_lines(&data, |parsed| {
                let ts = humantime::parse_rfc3339(parsed.ts).expect("RFC 3339");
                let since = ts
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970");
                since.as_secs()
                    + (parsed.principal.len() + parsed.table.len()) as u64
                    + parsed.action.map_or(0, str::len) as u64
            }))
        })
    });

    // `parse`: the canonical byte scanner first; `parse_serde_only`: the previous parser
    // (serde_json's flat pass, then the general one), what `parse` was before the scanner.
    for (name, scanner) in [("parse", true), ("parse_serde_only", false)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut lines = LineReader::new(&data[..], line_cap());
                let mut sum = 0i64;
                while let Some((_, Line::Text(line))) = lines.next_line().expect("memory") {
                    let event = if scanner {
                        parser.parse(line)
                    } else {
                        parser.parse_with_serde(line)
                    };
                    let event = event.expect("valid").expect("not blank");
                    let event = event.access().expect("an access event");
                    sum = sum.wrapping_add(event.ts);
                }
                black_box(sum)
            })
        });
    }

    group.bench_function("parse_and_detect", |b| {
        b.iter_batched(
            || {
                // As replay does: reads applied in chunks, table by table.
                let mut detector = Detector::new(config.detector.clone());
                detector.apply_in_chunks(exposure::replay::CHUNK_READS);
                detector
            },
            |mut detector| {
                let mut lines = LineReader::new(&data[..], line_cap());
                let mut alerts = Vec::new();
                while let Some((_, Line::Text(line))) = lines.next_line().expect("memory") {
                    let event = parser.parse(line).expect("valid").expect("not blank");
                    let event = event.access().expect("an access event");
                    detector.observe(&event, &mut alerts);
                }
                detector.finish(&mut alerts);
                black_box(alerts.len())
            },
            BatchSize::PerIteration,
        )
    });

    let (_dir, input) = synth::temp_input(&data);
    let inputs = [input];
    for threads in [1, 2] {
        group.bench_function(format!("replay_end_to_end_{threads}_thread"), |b| {
            b.iter(|| black_box(synth::replay_once(&config, &inputs, threads)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
