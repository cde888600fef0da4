//! A synthetic access log for benchmarks: `tables` tables, `principals` principals, events over
//! two weeks in ms-precision RFC 3339, each table read mostly by its own regular readers, ~10%
//! writes, a little disorder (within seconds), and an occasional burst of novel readers. Shared by
//! `benches/replay.rs` and `examples/synth.rs` (which writes it to stdout for whole-binary runs).

#![allow(dead_code)]

use std::io::Write;

/// A bench setting from the environment (`EXPOSURE_…`), or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small, fast, deterministic generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Shape of the generated log.
#[derive(Clone, Copy)]
pub struct Shape {
    pub events: u64,
    pub tables: u64,
    pub principals: u64,
    /// How many distinct principals read each table (a window of the principal space).
    pub readers_per_table: u64,
    /// Incidents: grants of SELECT on a schema to PUBLIC, evenly spread, each revoked two
    /// hours later; while one stands, one read in ten of its schema's tables is by anyone
    /// (novel readers: windows with that grant as their cause). 0: none (the default; the
    /// benches' data stays what it was).
    pub grants: u64,
    pub seed: u64,
}

impl Shape {
    pub fn new(events: u64) -> Shape {
        Shape {
            events,
            tables: 200,
            principals: 20_000,
            readers_per_table: 1_000,
            grants: 0,
            seed: 42,
        }
    }
}

impl Shape {
    /// The shapes issue 45 measures, by name: `200t` (the default) and `100kt` — 10^5 tables,
    /// 10^6 principals, 100 readers per table: state far larger than the caches.
    pub fn measured(events: u64) -> [(&'static str, Shape); 2] {
        let wide = Shape {
            tables: 100_000,
            principals: 1_000_000,
            readers_per_table: 100,
            ..Shape::new(events)
        };
        [("200t", Shape::new(events)), ("100kt", wide)]
    }
}

const START_MS: i64 = 1_772_582_400_000; // 2026-03-04T00:00:00Z
const SPAN_MS: i64 = 14 * 86_400_000;

/// Writes `shape.events` JSON lines to `out`.
pub fn write_jsonl(shape: Shape, out: &mut dyn Write) -> std::io::Result<()> {
    let mut rng = Rng::new(shape.seed);
    let step = (SPAN_MS as f64 / shape.events as f64).max(0.001);
    let readers_per_table = shape.readers_per_table.clamp(1, shape.principals);
    let mut line = String::with_capacity(160);
    // (start, end, schema) of each incident, after the first day (learning).
    let incidents: Vec<(i64, i64, u64)> = (0..shape.grants)
        .map(|k| {
            let start =
                START_MS + 86_400_000 + (k as i64 * (SPAN_MS - 86_400_000)) / shape.grants as i64;
            (start, start + 2 * 3_600_000, k % 17)
        })
        .collect();
    let mut next_change = 0;
    for i in 0..shape.events {
        let jitter = rng.below(4_000) as i64;
        let ts = START_MS + (i as f64 * step) as i64 + jitter;
        let table = rng.below(shape.tables);
        while let Some(&(start, end, schema)) = incidents.get(next_change / 2)
            && ts >= if next_change % 2 == 0 { start } else { end }
        {
            use std::fmt::Write as _;
            let (at, action) = if next_change % 2 == 0 {
                (start, "GRANT")
            } else {
                (end, "REVOKE")
            };
            let at = chrono::DateTime::from_timestamp_millis(at).expect("in range");
            line.clear();
            let _ = writeln!(
                line,
                r#"{{"ts":"{}","principal":"dba@corp.example","table":"warehouse.schema{schema:02}","action":"{action}","grantee":"PUBLIC","privilege":"SELECT"}}"#,
                at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            );
            out.write_all(line.as_bytes())?;
            next_change += 1;
        }
        let exposed = incidents
            .iter()
            .any(|&(start, end, schema)| ts >= start && ts < end && table % 17 == schema);
        // Mostly the table's own readers (a window of the principal space), sometimes anyone.
        let principal = if rng.below(1000) == 0 || (exposed && rng.below(10) == 0) {
            rng.below(shape.principals)
        } else {
            (table * 97 + rng.below(readers_per_table)) % shape.principals
        };
        let action = match rng.below(10) {
            0 => "INSERT",
            1 => "select",
            _ => "SELECT",
        };
        line.clear();
        use std::fmt::Write as _;
        let secs = ts.div_euclid(1000);
        let dt = chrono::DateTime::from_timestamp(secs, (ts.rem_euclid(1000) * 1_000_000) as u32)
            .expect("in range");
        let _ = writeln!(
            line,
            r#"{{"ts":"{}","principal":"user{principal:05}@corp.example","table":"warehouse.schema{:02}.table{table:03}","action":"{action}"}}"#,
            dt.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            table % 17,
        );
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// `data` written to a file in a temporary dir (kept alive by the returned handle), as an
/// input: what the end-to-end benches replay.
pub fn temp_input(data: &[u8]) -> (tempfile::TempDir, exposure::source::Input) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, data).expect("write bench input");
    (dir, exposure::source::Input::File(path))
}

/// The generated log in memory.
pub fn jsonl(shape: Shape) -> Vec<u8> {
    let mut buf = Vec::with_capacity(shape.events as usize * 130);
    write_jsonl(shape, &mut buf).expect("writing to memory");
    buf
}

/// One whole replay of `inputs` with `threads`, alerts to memory: what the end-to-end benches
/// time. Returns (events, bytes of alerts).
pub fn replay_once(
    config: &exposure::config::Config,
    inputs: &[exposure::source::Input],
    threads: usize,
) -> (u64, usize) {
    use exposure::replay::{ReplayOptions, replay};
    use exposure::report::Problems;
    let options = ReplayOptions {
        threads,
        ..ReplayOptions::default()
    };
    let mut out = Vec::new();
    let mut problems = Problems::new(Box::new(std::io::sink()), 0);
    let outcome = replay(config, inputs, &options, &mut out, &mut problems).expect("replay");
    (outcome.summary.events, out.len())
}

/// Writes `shape`'s events to `json` and converts them with `exposure archive` into `lake`: the
/// archive the Parquet benches read (`json` stays, for other writers).
pub fn write_archive(
    config: &exposure::config::Config,
    shape: Shape,
    json: &std::path::Path,
    lake: &std::path::Path,
) {
    use exposure::report::Problems;
    std::fs::write(json, jsonl(shape)).expect("write events");
    let mut quiet = Problems::new(Box::new(std::io::sink()), 0);
    let inputs = [exposure::source::Input::File(json.to_path_buf())];
    exposure::archive::archive(config, &inputs, lake, false, &mut quiet).expect("archive");
}

/// The reads of an archive as the detector's ids, row group by row group in replay order,
/// each with the first time of the next (what the watermark moves to): detection alone, fed
/// what Parquet replay feeds it, without decoding (`benches/detect.rs`,
/// `examples/detect_only.rs`).
pub struct PreInterned {
    /// A detector that has every name interned and has seen nothing.
    pub template: exposure::detect::Detector,
    pub chunks: Vec<Chunk>,
    pub events: u64,
}

/// A read's (table, principal) ids.
pub type Ids = (exposure::intern::TableId, exposure::intern::PrincipalId);

/// One row group's rows (time, and for a read its ids), and the next row group's first time.
pub struct Chunk {
    pub rows: Vec<(i64, Option<Ids>)>,
    pub next: Option<i64>,
}

impl PreInterned {
    /// Decodes every row group of the sorted archive at `lake` with `config`'s detector.
    pub fn from_archive(config: &exposure::config::Config, lake: &std::path::Path) -> PreInterned {
        use exposure::format::columns::Collect;
        use exposure::source::parquet::ParquetInput;
        let mut template = exposure::detect::Detector::new(config.detector.clone());
        let inputs = exposure::source::expand_inputs(
            &[lake.display().to_string()],
            exposure::format::Format::Parquet,
            Default::default(),
        )
        .expect("inputs")
        .inputs;
        // (first time, rows) of every row group, then put in replay order.
        let mut groups = Vec::new();
        for input in &inputs {
            let source = input.parquet_source().expect("a Parquet input");
            let file = ParquetInput::open(source, &config.input.fields, config.input.ts_unit)
                .expect("open");
            let mut decoder = file.decoder();
            for span in &file.row_groups {
                let (mut rows, mut changes, mut bad) = (Vec::new(), Vec::new(), Vec::new());
                let batches = file
                    .read_row_group(span.index, exposure::replay::parquet::BATCH_ROWS)
                    .expect("readable");
                for batch in batches {
                    let batch = batch.expect("decodes");
                    let mut collect = Collect {
                        names: &mut template.by_id(),
                        rows: &mut rows,
                        changes: &mut changes,
                    };
                    decoder
                        .decode(&batch, &mut collect, &Default::default(), &mut bad)
                        .expect("decodes");
                }
                assert!(changes.is_empty() && bad.is_empty(), "reads only");
                let rows: Vec<_> = rows.iter().map(|r| (r.ts, r.read)).collect();
                groups.push((span.min_ts.expect("statistics"), rows));
            }
        }
        groups.sort_by_key(|(min, _)| *min);
        let firsts: Vec<i64> = groups.iter().map(|(min, _)| *min).collect();
        let chunks: Vec<Chunk> = groups
            .into_iter()
            .enumerate()
            .map(|(k, (_, rows))| Chunk {
                rows,
                next: firsts.get(k + 1).copied(),
            })
            .collect();
        let events = chunks.iter().map(|c| c.rows.len() as u64).sum();
        PreInterned {
            template,
            chunks,
            events,
        }
    }

    /// Detection alone on a copy of the template (made beforehand): collect each row group,
    /// apply it as a chunk, move the watermark, finish. Returns the alerts.
    #[inline(never)]
    pub fn detect_once(&self, mut detector: exposure::detect::Detector) -> usize {
        let mut alerts = Vec::new();
        let mut chunk = Vec::new();
        detector.use_external_watermark();
        for Chunk { rows, next } in &self.chunks {
            let mut by_id = detector.by_id();
            chunk.clear();
            for &(ts, read) in rows {
                by_id.collect_in_order(ts, read, &mut chunk);
            }
            by_id.apply_chunk(&chunk, *next, &mut alerts);
            if let Some(next) = next {
                detector.advance(*next, &mut alerts);
            }
        }
        detector.finish(&mut alerts);
        alerts.len()
    }
}
