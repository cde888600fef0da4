//! The bad-input corpus in tests/data/malformed/: each file holds a good line, one bad line and
//! another good line. The bad line is skipped, reported as `FILE:LINE[:COL]: skipped: reason`,
//! counted; the good ones are used; `--strict` turns it into exit 1. A guard fails when a corpus
//! file has no case here.

use crate::{TestEnv, repo};

/// (file stem, where the report points, what it says)
const CASES: &[(&str, &str, &str)] = &[
    (
        "not_json",
        ":2:1:",
        "not valid JSON: expected a JSON object",
    ),
    (
        "truncated_object",
        ":2:",
        "not valid JSON: EOF while parsing a string",
    ),
    (
        "not_an_object",
        ":2:1:",
        "not valid JSON: expected a JSON object",
    ),
    (
        "trailing_garbage",
        ":2:",
        "not valid JSON: trailing characters",
    ),
    ("invalid_utf8", ":2:50:", "invalid UTF-8 at byte 50"),
    ("missing_ts", ":2:", "missing field `ts`"),
    ("missing_principal", ":2:", "missing field `principal`"),
    ("missing_table", ":2:", "missing field `table`"),
    ("null_table", ":2:", "missing field `table`"),
    (
        "wrong_type_principal",
        ":2:",
        "field `principal` must be a string, found an object",
    ),
    (
        "wrong_type_ts",
        ":2:",
        "field `ts` must be an RFC 3339 string or an epoch number, found an array",
    ),
    (
        "wrong_type_action",
        ":2:",
        "field `action` must be a string, found number 42",
    ),
    ("empty_principal", ":2:", "field `principal` is empty"),
    (
        "bad_timestamp",
        ":2:",
        "field `ts`: bad timestamp \"18/03/2026 14:01\"",
    ),
    (
        "impossible_date",
        ":2:",
        "field `ts`: bad timestamp \"2026-02-30T14:01:00Z\"",
    ),
    ("timestamp_out_of_range", ":2:", "field `ts`: timestamp"),
    (
        "too_long",
        ":2:",
        "line is longer than 1024 bytes (max_line_bytes)",
    ),
];

fn corpus(stem: &str) -> String {
    repo(&format!("tests/data/malformed/{stem}.jsonl"))
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn every_corpus_file_has_a_case() {
    let mut files: Vec<String> = std::fs::read_dir(repo("tests/data/malformed"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    cases.sort();
    assert_eq!(files, cases, "tests/data/malformed and CASES must match");
}

#[test]
fn each_bad_line_is_skipped_reported_and_counted() {
    let env = TestEnv::new();
    let config = env.write("small-lines.toml", "[input]\nmax_line_bytes = 1024\n");
    for (stem, place, reason) in CASES {
        let path = corpus(stem);
        let run = env.run(&["replay", "--config", config.to_str().unwrap(), &path]);
        assert_eq!(run.code, 0, "{stem}: {}", run.stderr);
        let expected = format!("{path}{place}");
        let report = run
            .stderr
            .lines()
            .find(|l| l.starts_with(&expected))
            .unwrap_or_else(|| panic!("{stem}: no report at {expected} in:\n{}", run.stderr));
        assert!(
            report.contains(reason),
            "{stem}: {report:?} lacks {reason:?}"
        );
        assert!(
            run.stderr.contains("2 events, 2 reads, 1 malformed"),
            "{stem}: {}",
            run.stderr
        );
    }
}

#[test]
fn strict_stops_at_the_first_bad_line_with_exit_1() {
    let env = TestEnv::new();
    for (stem, place, _) in CASES.iter().filter(|c| c.0 != "too_long") {
        let path = corpus(stem);
        let run = env.run(&["replay", "--strict", &path]);
        assert_eq!(run.code, 1, "{stem}: {}", run.stderr);
        let single = env.run(&["replay", "--strict", "--threads", "1", &path]);
        assert_eq!((single.code, &single.stdout), (1, &run.stdout), "{stem}");
        assert!(
            run.stderr.contains(&format!("{path}{place}")),
            "{stem}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("--strict"), "{stem}: {}", run.stderr);
    }
}

#[test]
fn reports_are_capped_but_everything_is_counted() {
    let env = TestEnv::new();
    let mut text = String::new();
    for i in 0..25 {
        text.push_str(&format!("garbage {i}\n"));
    }
    text.push_str("{\"ts\":1773842400000,\"principal\":\"a\",\"table\":\"t\"}\n");
    let path = env.write("bad.jsonl", text);
    let run = env.run(&["replay", "--max-reports", "3", path.to_str().unwrap()]);
    assert_eq!(run.code, 0);
    assert_eq!(
        run.stderr.matches(": skipped: ").count(),
        3,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("22 more skipped or late lines not shown"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 events, 1 reads, 25 malformed"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_input_is_a_usage_error_before_anything_runs() {
    let env = TestEnv::new();
    let good = env.write(
        "good.jsonl",
        "{\"ts\":1773842400000,\"principal\":\"a\",\"table\":\"t\"}\n",
    );
    let run = env.run(&["replay", "nope.jsonl", good.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("nope.jsonl: no such file or directory"),
        "{}",
        run.stderr
    );
    let glob = env.run(&["replay", "logs/*.jsonl"]);
    assert_eq!(glob.code, 2, "{}", glob.stderr);
    assert!(
        glob.stderr.contains("logs/*.jsonl: no file matches"),
        "{}",
        glob.stderr
    );
}

#[test]
fn a_corrupt_gzip_input_keeps_what_was_read() {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let env = TestEnv::new();
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    for i in 0..2000 {
        writeln!(
            gz,
            "{{\"ts\":{},\"principal\":\"p{i}\",\"table\":\"t\"}}",
            1_773_842_400_000i64 + i
        )
        .unwrap();
    }
    let mut bytes = gz.finish().unwrap();
    let cut = bytes.len() - 40;
    bytes.truncate(cut);
    let path = env.write("cut.jsonl.gz", bytes);
    let run = env.run(&["replay", path.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("cut.jsonl.gz: read error"),
        "{}",
        run.stderr
    );
}
