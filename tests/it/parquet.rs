//! Parquet: archive-then-replay equals replay of the JSON lines; files written by pyarrow and
//! DuckDB (tests/data/parquet, made by make_fixtures.py there) replay to the same alerts; schema
//! problems name the file and column; corrupt files are reported and skipped.

use crate::{TestEnv, repo};

fn sample() -> String {
    repo("sample-logs/incident.jsonl")
        .to_str()
        .unwrap()
        .to_string()
}

fn fixture(name: &str) -> String {
    repo(&format!("tests/data/parquet/{name}"))
        .to_str()
        .unwrap()
        .to_string()
}

/// A deterministic log over four days: regular readers, bursts of newcomers on several tables,
/// and rows delivered up to two minutes out of order.
fn disordered_log() -> String {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let base = 1_773_792_000_000i64; // 2026-03-18T00:00:00Z, ms
    let mut events: Vec<(i64, String)> = Vec::new();
    for i in 0..20_000i64 {
        let ts = base + i * 17_000 + next(1000) as i64;
        let mut table = format!("db.t{}", next(6));
        let principal = if (700..704).contains(&(i % 1500)) {
            // Every seven hours, four newcomers read one table within a minute.
            table = format!("db.t{}", (i / 1500) % 6);
            format!("burst{}-{}", i / 1500, i % 1500)
        } else if next(400) == 0 {
            format!("new{}", next(30))
        } else {
            format!("user{}", next(12))
        };
        let action = ["SELECT", "SELECT", "INSERT", "select"][next(4) as usize];
        let line = format!(
            "{{\"ts\":{ts},\"principal\":\"{principal}\",\"table\":\"{table}\",\"action\":\"{action}\",\"rows\":{}}}",
            next(500)
        );
        // Delivered up to two minutes late.
        events.push((ts + next(120_000) as i64, line));
    }
    events.sort();
    events.into_iter().map(|(_, l)| l + "\n").collect()
}

/// `replay --learn 1d --threads THREADS INPUTS…`.
fn replay_learning_a_day(env: &TestEnv, threads: &str, inputs: &[&std::path::Path]) -> crate::Run {
    let mut args = vec!["replay", "--learn", "1d", "--threads", threads];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));
    env.run(&args)
}

#[test]
fn archive_then_replay_equals_replay_of_the_json_lines() {
    let env = TestEnv::new();
    let log = env.write("disordered.jsonl", disordered_log());
    for input in [sample(), log.to_str().unwrap().to_string()] {
        let json = env.run(&["replay", "--learn", "1d", &input]);
        assert_eq!(json.code, 0, "{}", json.stderr);
        assert!(
            !json.alerts().is_empty(),
            "the input must alert to prove anything"
        );
        let out = env.path("archive");
        let _ = std::fs::remove_dir_all(&out);
        let archived = env.run(&["archive", &input, "--out", out.to_str().unwrap()]);
        assert_eq!(archived.code, 0, "{}", archived.stderr);
        assert!(archived.stderr.contains("archived"), "{}", archived.stderr);
        for threads in ["1", "2"] {
            let replayed = replay_learning_a_day(&env, threads, &[&out]);
            assert_eq!(replayed.code, 0, "{}", replayed.stderr);
            assert_eq!(replayed.stdout, json.stdout, "{input} --threads {threads}");
        }
    }
}

/// The forensic replay people run most: last month's archive plus the JSON lines since, in one
/// run. The Parquet rows go through the same decoder as the lines and are merged with them by
/// event time: the alerts are those of replaying every event as JSON lines.
#[test]
fn an_archive_and_json_lines_replay_together_as_one_log() {
    let env = TestEnv::new();
    let log = disordered_log();
    let lines: Vec<&str> = log.lines().collect();
    // History: the first 14,000 lines and every fifth line after them (so the two inputs
    // overlap in time); the rest stays JSON lines, in delivery order.
    let (mut history, mut recent) = (String::new(), String::new());
    for (i, line) in lines.iter().enumerate() {
        let to = if i < 14_000 || i % 5 == 0 {
            &mut history
        } else {
            &mut recent
        };
        to.push_str(line);
        to.push('\n');
    }
    let whole = env.write("whole.jsonl", &log);
    let history = env.write("history.jsonl", history);
    let recent = env.write("recent.jsonl", recent);
    let archive = env.path("archive");
    let archived = env.run(&[
        "archive",
        history.to_str().unwrap(),
        "--out",
        archive.to_str().unwrap(),
    ]);
    assert_eq!(archived.code, 0, "{}", archived.stderr);
    let expected = env.run(&["replay", "--learn", "1d", whole.to_str().unwrap()]);
    assert_eq!(expected.code, 0, "{}", expected.stderr);
    assert!(expected.alerts().len() >= 4, "{}", expected.stdout);
    for threads in ["1", "2"] {
        let mixed = replay_learning_a_day(&env, threads, &[&archive, &recent]);
        assert_eq!(mixed.code, 0, "{}", mixed.stderr);
        assert_eq!(mixed.stdout, expected.stdout, "--threads {threads}");
        assert!(mixed.stderr.contains("20000 events"), "{}", mixed.stderr);
    }
}

#[test]
fn the_archive_is_day_partitioned_sorted_and_complete() {
    let env = TestEnv::new();
    let out = env.path("archive");
    let run = env.run(&["archive", &sample(), "--out", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut days: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    days.sort();
    // The manifest, written last, lists every part; the progress journal is gone.
    assert_eq!(days.remove(0), "_manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "exposure.archive");
    assert_eq!(manifest["parts"].as_array().unwrap().len(), 14);
    assert_eq!(manifest["days"].as_array().unwrap().len(), 14);
    assert_eq!(days.len(), 14, "{days:?}");
    assert_eq!(days[0], "dt=2026-03-04");
    for day in &days {
        let files: Vec<String> = std::fs::read_dir(out.join(day))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            files,
            ["part-00000.parquet"],
            "{day}: no temporary file is left behind"
        );
    }
    // A second run into it is refused (it would add every day again): see tests/it/evidence.rs.
    let again = env.run(&["archive", &sample(), "--out", out.to_str().unwrap()]);
    again.expect(1, "not empty");
    assert!(!out.join("dt=2026-03-04/part-00001.parquet").exists());
}

#[test]
fn files_written_by_pyarrow_and_duckdb_replay_to_the_same_alerts() {
    let env = TestEnv::new();
    let reference = env.run(&["replay", &sample()]);
    for name in [
        "pyarrow_ms_plain.parquet",
        "duckdb_tstz.parquet",
        "pyarrow_string_ts.parquet",
    ] {
        let run = env.run(&["replay", &fixture(name)]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(run.stdout, reference.stdout, "{name}");
    }
    let mapping = env.write(
        "map.toml",
        "[input.fields]\nprincipal = \"user\"\ntable = \"resource\"\naction = \"op\"\n",
    );
    let run = env.run(&[
        "replay",
        "--config",
        mapping.to_str().unwrap(),
        "--format",
        "parquet",
        &fixture("pyarrow_epoch_us_large.parquet"),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, reference.stdout);
}

#[test]
fn directories_and_globs_find_hive_partitions() {
    let env = TestEnv::new();
    let out = env.path("lake");
    env.run(&["archive", &sample(), "--out", out.to_str().unwrap()]);
    let reference = env.run(&["replay", &sample()]);
    let by_dir = env.run(&["replay", "lake"]);
    assert_eq!(by_dir.stdout, reference.stdout, "{}", by_dir.stderr);
    let by_glob = env.run(&["replay", "lake/dt=*/part-*.parquet"]);
    assert_eq!(by_glob.stdout, reference.stdout, "{}", by_glob.stderr);
    assert!(by_glob.stderr.contains("14 inputs"), "{}", by_glob.stderr);
}

#[test]
fn from_until_and_table_select_and_prune() {
    let env = TestEnv::new();
    let out = env.path("lake");
    env.run(&["archive", &sample(), "--out", out.to_str().unwrap()]);
    let window = [
        "--from",
        "2026-03-04T00:00:00Z",
        "--until",
        "2026-03-17T00:00:00Z",
    ];
    for input in [sample(), "lake".to_string()] {
        let run = env.run(&["replay", window[0], window[1], window[2], window[3], &input]);
        assert_eq!(run.alerts().len(), 2, "{input}: {}", run.stderr);
        let before = env.run(&["replay", "--until", "2026-03-16T00:00:00Z", &input]);
        assert_eq!(before.alerts().len(), 0, "{input}");
        assert!(
            before.stderr.contains("at or after --until skipped"),
            "{}",
            before.stderr
        );
        let other = env.run(&["replay", "--table", "warehouse.hr.*", &input]);
        assert_eq!(other.alerts().len(), 0, "{input}");
        let pii = env.run(&["replay", "--table", "warehouse.users.*", &input]);
        assert_eq!(pii.alerts().len(), 2, "{input}");
    }
}

#[test]
fn schema_problems_name_the_file_and_column_and_exit_2() {
    let env = TestEnv::new();
    let missing = env.run(&["replay", &fixture("pyarrow_epoch_us_large.parquet")]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("pyarrow_epoch_us_large.parquet: column `principal` is missing"),
        "{}",
        missing.stderr
    );
    let wrong = env.write(
        "wrong.toml",
        "[input.fields]\nts = \"resource\"\nprincipal = \"ts\"\ntable = \"user\"\n",
    );
    let run = env.run(&[
        "replay",
        "-c",
        wrong.to_str().unwrap(),
        &fixture("pyarrow_epoch_us_large.parquet"),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("column `ts` has type Int64, expected a string"),
        "{}",
        run.stderr
    );
}

#[test]
fn corrupt_and_truncated_files_are_reported_and_skipped() {
    let env = TestEnv::new();
    let out = env.path("lake");
    env.run(&["archive", &sample(), "--out", out.to_str().unwrap()]);
    // Damaged in place, their sizes kept (so the manifest, which checks sizes, lets them
    // through to the Parquet reader): the second half zeroed, and garbage between magics.
    let victim = out.join("dt=2026-03-05/part-00000.parquet");
    let bytes = std::fs::read(&victim).unwrap();
    let mut cut = bytes[..bytes.len() / 2].to_vec();
    cut.resize(bytes.len(), 0);
    std::fs::write(&victim, cut).unwrap();
    let garbage = out.join("dt=2026-03-06/part-00000.parquet");
    let size = std::fs::metadata(&garbage).unwrap().len() as usize;
    let mut junk = b"PAR1".to_vec();
    junk.extend(std::iter::repeat_n(0x5a, size - 8));
    junk.extend(b"PAR1");
    std::fs::write(&garbage, junk).unwrap();

    let run = env.run(&["replay", "lake"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("dt=2026-03-05/part-00000.parquet: skipped"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("dt=2026-03-06/part-00000.parquet: skipped"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.alerts().len(),
        2,
        "the other twelve days are still replayed"
    );
    let strict = env.run(&["replay", "--strict", "lake"]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert!(strict.stderr.contains("--strict"), "{}", strict.stderr);
}

#[test]
fn bad_json_lines_are_skipped_and_counted_by_archive_as_by_replay() {
    let env = TestEnv::new();
    let corpus = repo("tests/data/malformed/wrong_type_ts.jsonl");
    let out = env.path("lake");
    let run = env.run(&[
        "archive",
        corpus.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("wrong_type_ts.jsonl:2: skipped: field `ts` must be"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("archived 2 events into 1 files over 1 days, 1 malformed"),
        "{}",
        run.stderr
    );
}

#[test]
fn formats_are_recognised_by_their_bytes() {
    let env = TestEnv::new();
    let forced = env.run(&["replay", "--format", "parquet", &sample()]);
    assert_eq!(forced.code, 2, "{}", forced.stderr);
    assert!(
        forced.stderr.contains("not a Parquet file"),
        "{}",
        forced.stderr
    );
    let stdin = env.run(&["replay", "--format", "parquet", "-"]);
    assert_eq!(stdin.code, 2, "{}", stdin.stderr);
    // A Parquet file named like JSON is still Parquet: the magic bytes decide.
    let renamed = env.path("events.jsonl");
    std::fs::copy(fixture("duckdb_tstz.parquet"), &renamed).unwrap();
    let auto = env.run(&["replay", renamed.to_str().unwrap()]);
    assert_eq!(auto.code, 0, "{}", auto.stderr);
    assert_eq!(auto.stdout, env.run(&["replay", &sample()]).stdout);
}

/// Exports as other tools write them (DuckDB, Spark, pyarrow): rows in arrival order, so each
/// row group overlaps the next by the input's disorder; several files per day and region; time
/// as a UTC timestamp and names as plain strings. Replay applies such row groups in chunks once
/// the next one's first time passes them, and gives exactly the alerts of the JSON lines.
#[test]
fn exports_in_arrival_order_with_overlapping_row_groups_replay_like_the_json_lines() {
    use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    let env = TestEnv::new();
    let log = disordered_log();
    // (day, region) -> rows in arrival order.
    let mut parts: BTreeMap<(i64, &str), Vec<serde_json::Value>> = BTreeMap::new();
    for line in log.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let ms = row["ts"].as_i64().unwrap();
        let region = if row["principal"].as_str().unwrap().len().is_multiple_of(2) {
            "eu"
        } else {
            "us"
        };
        parts
            .entry((ms.div_euclid(86_400_000), region))
            .or_default()
            .push(row);
    }
    let out = env.path("export");
    let mut files = 0;
    let mut overlapping = 0;
    for ((day, region), rows) in &parts {
        // Each day and region in three files, each in row groups of 700 rows.
        for (part, rows) in rows.chunks(rows.len().div_ceil(3)).enumerate() {
            let text = |key: &str| -> ArrayRef {
                let values: Vec<&str> = rows.iter().map(|r| r[key].as_str().unwrap()).collect();
                Arc::new(StringArray::from(values))
            };
            let ts: Vec<i64> = rows
                .iter()
                .map(|r| r["ts"].as_i64().unwrap() * 1000)
                .collect();
            let columns: Vec<(&str, ArrayRef)> = vec![
                (
                    "ts",
                    Arc::new(TimestampMicrosecondArray::from(ts.clone()).with_timezone("UTC")),
                ),
                ("principal", text("principal")),
                ("table", text("table")),
                ("action", text("action")),
            ];
            let batch = RecordBatch::try_from_iter(columns).unwrap();
            let dir = out.join(format!("region={region}/day={day}"));
            std::fs::create_dir_all(&dir).unwrap();
            let props = parquet::file::properties::WriterProperties::builder()
                .set_max_row_group_row_count(Some(700))
                .build();
            let file = std::fs::File::create(dir.join(format!("part-{part}.parquet"))).unwrap();
            let mut writer =
                parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
            files += 1;
            // A row group overlaps the next when its latest time is after the next's earliest.
            let groups: Vec<&[i64]> = ts.chunks(700).collect();
            overlapping += groups
                .windows(2)
                .filter(|w| w[0].iter().max() > w[1].iter().min())
                .count();
        }
    }
    assert!(files >= 20, "{files} files");
    assert!(
        overlapping >= 10,
        "only {overlapping} row groups overlap the next"
    );
    let whole = env.write("whole.jsonl", &log);
    let expected = env.run(&["replay", "--learn", "1d", whole.to_str().unwrap()]);
    assert_eq!(expected.code, 0, "{}", expected.stderr);
    assert!(expected.alerts().len() >= 4, "{}", expected.stdout);
    for threads in ["1", "2"] {
        let replayed = replay_learning_a_day(&env, threads, &[&out]);
        assert_eq!(replayed.code, 0, "{}", replayed.stderr);
        assert_eq!(replayed.stdout, expected.stdout, "--threads {threads}");
        assert!(
            replayed.stderr.contains("20000 events"),
            "{}",
            replayed.stderr
        );
    }
}
