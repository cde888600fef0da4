//! Parquet replay throughput (decode + detect) against the decoder's own limit, measured in the
//! same run, per **shape** and per **file kind** (issue 45):
//! - shapes: `200t` — 200 tables, 20 000 principals, ~1 000 readers per table (the benchmark
//!   data of every other bench); `100kt` — 10^5 tables, 10^6 principals, 100 readers per
//!   table (cache-hostile: state far larger than the caches, most reads a first one);
//! - kinds: `archive` — written by `exposure archive` (sorted, row groups of 2^20 rows,
//!   dictionary strings, delta-encoded time); `duckdb` — the same events written by DuckDB
//!   (`COPY … (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)`: rows in arrival
//!   order, so that each row group overlaps the next by a few seconds, time stored plain). The
//!   DuckDB kind needs `python3` with the `duckdb` module (`pip install duckdb`); without it,
//!   it is skipped and says so.
//!
//! Per shape and kind: `replay_1_thread`, `replay_2_thread`, and `decode_only_1_thread` (the
//! same row groups, projection and dictionary types as replay, and nothing done with them: the
//! ceiling of any replay here). After each, the ratios the issue sets targets on are printed
//! from the criterion estimates of this run (replay on one thread ≥ 50 % of decode-only; two
//! threads ≥ 1.7× one). Run: `cargo bench --bench parquet`; `EXPOSURE_EVENTS` sets the events
//! per shape (default 2 000 000), `EXPOSURE_SHAPES=200t` or `=100kt` one shape only. The
//! comparison with DuckDB's own SQL is `benches/duckdb_compare.py`.

mod synth;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use exposure::config::{Config, ConfigFile, DetectOverrides};
use exposure::format::Format;
use exposure::format::jsonl::FieldPaths;
use exposure::source::expand_inputs;
use exposure::source::parquet::ParquetInput;
use exposure::time::EpochUnit;
use std::hint::black_box;
use std::path::Path;

/// The shapes measured, by name (`EXPOSURE_SHAPES` picks some).
fn shapes(events: u64) -> Vec<(&'static str, synth::Shape)> {
    let only = std::env::var("EXPOSURE_SHAPES").unwrap_or_default();
    synth::Shape::measured(events)
        .into_iter()
        .filter(|(name, _)| only.is_empty() || only.split(',').any(|o| o == *name))
        .collect()
}

/// The events of `json` written by DuckDB into `out` (one file), or why not.
fn write_with_duckdb(json: &Path, out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let script = format!(
        r#"
import duckdb
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("""COPY (SELECT ts, principal, "table", action FROM read_json('{json}',
    format = 'newline_delimited',
    columns = {{ts: 'TIMESTAMPTZ', principal: 'VARCHAR', "table": 'VARCHAR', action: 'VARCHAR'}}))
    TO '{out}/events.parquet' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)""")
"#,
        json = json.display(),
        out = out.display()
    );
    let run = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !run.status.success() {
        let stderr = String::from_utf8_lossy(&run.stderr);
        return Err(stderr.lines().last().unwrap_or("failed").to_string());
    }
    Ok(())
}

/// The mean time of benchmark `id` in this run (estimates written since `started`), from
/// criterion's estimates; `None` for one this run did not measure (`--test`, a filter), whose
/// estimates are an earlier run's, perhaps over another number of events.
fn mean_ns(id: &str, started: std::time::SystemTime) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = Path::new(&target)
        .join("criterion")
        .join(id)
        .join("new/estimates.json");
    let written = std::fs::metadata(&path).ok()?.modified().ok()?;
    if written < started {
        return None;
    }
    let estimates: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    estimates["mean"]["point_estimate"].as_f64()
}

fn bench(c: &mut Criterion) {
    let config = Config::build(ConfigFile::default(), &DetectOverrides::default(), None)
        .expect("defaults are valid");
    let events = synth::env_u64("EXPOSURE_EVENTS", 2_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ratios = Vec::new();
    let started = std::time::SystemTime::now();
    for (shape_name, shape) in shapes(events) {
        let json = dir.path().join(format!("{shape_name}.jsonl"));
        let lake = dir.path().join(format!("{shape_name}-archive"));
        synth::write_archive(&config, shape, &json, &lake);
        let duck = dir.path().join(format!("{shape_name}-duckdb"));
        let mut kinds = vec![("archive", lake)];
        match write_with_duckdb(&json, &duck) {
            Ok(()) => kinds.push(("duckdb", duck)),
            Err(why) => eprintln!("parquet-{shape_name}-duckdb skipped: {why}"),
        }
        std::fs::remove_file(&json).expect("remove the events");
        for (kind, path) in kinds {
            let group_name = format!("parquet-{shape_name}-{kind}");
            measure(c, &config, &group_name, &path, events);
            let replay_1 = mean_ns(&format!("{group_name}/replay_1_thread"), started);
            let replay_2 = mean_ns(&format!("{group_name}/replay_2_thread"), started);
            let decode = mean_ns(&format!("{group_name}/decode_only_1_thread"), started);
            if let (Some(r1), Some(r2), Some(d)) = (replay_1, replay_2, decode) {
                ratios.push(format!(
                    "{group_name}: replay 1 thread {:.1} M/s = {:.0} % of decode-only {:.1} M/s; \
                     2 threads {:.1} M/s = {:.2}x one",
                    events as f64 / r1 * 1e3,
                    100.0 * d / r1,
                    events as f64 / d * 1e3,
                    events as f64 / r2 * 1e3,
                    r1 / r2
                ));
            }
        }
    }
    for line in ratios {
        println!("{line}");
    }
}

/// The three benchmarks of one file kind of one shape.
fn measure(c: &mut Criterion, config: &Config, group_name: &str, path: &Path, events: u64) {
    let inputs = expand_inputs(
        &[path.display().to_string()],
        Format::Parquet,
        Default::default(),
    )
    .expect("inputs")
    .inputs;
    let mut group = c.benchmark_group(group_name);
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    for threads in [1, 2] {
        group.bench_function(format!("replay_{threads}_thread"), |b| {
            b.iter(|| black_box(synth::replay_once(config, &inputs, threads)))
        });
    }
    let files: Vec<ParquetInput> = inputs
        .iter()
        .map(|input| match input.parquet_source() {
            Some(source) => {
                ParquetInput::open(source, &FieldPaths::default(), EpochUnit::default())
                    .expect("a file just written")
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
            assert_eq!(rows as u64, events);
            black_box(rows)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
