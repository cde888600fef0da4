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
fn a_missing_input_is_reported_the_others_replayed_and_the_exit_code_is_1() {
    let env = TestEnv::new();
    let sample = std::fs::read_to_string(repo("sample-logs/incident.jsonl")).unwrap();
    env.write("good.jsonl", &sample);
    let alone = env.run(&["replay", "good.jsonl"]);
    assert_eq!(alone.code, 0, "{}", alone.stderr);
    assert!(!alone.stdout.is_empty());

    let run = env.run(&["replay", "nope.jsonl", "good.jsonl"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("exposure: nope.jsonl: no such file or directory"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stdout, alone.stdout,
        "the other input is replayed in full"
    );
    assert!(run.stderr.contains("3707 events"), "{}", run.stderr);

    // A glob that matches nothing and an empty directory are the same: reported, exit 1.
    std::fs::create_dir(env.path("empty")).unwrap();
    let glob = env.run(&["replay", "logs/*.jsonl", "good.jsonl"]);
    assert_eq!(glob.code, 1, "{}", glob.stderr);
    assert!(
        glob.stderr.contains("logs/*.jsonl: no file matches"),
        "{}",
        glob.stderr
    );
    assert_eq!(glob.stdout, alone.stdout);

    // Nothing at all to read is an error, never a quiet `0 inputs`.
    for args in [
        &["replay", "empty"][..],
        &["replay", "logs/*.jsonl"],
        &["learn", "--state-dir", "st", "empty"],
        &["archive", "empty", "--out", "lake"],
    ] {
        let run = env.run(args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("nothing to read"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("0 inputs"), "{}", run.stderr);
    }
    let empty = env.run(&["replay", "empty"]);
    assert!(
        empty
            .stderr
            .contains("empty: the directory holds no log files"),
        "{}",
        empty.stderr
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

#[test]
fn an_input_with_no_readable_line_exits_1_and_names_the_format_to_give() {
    let env = TestEnv::new();
    let pg = repo("tests/data/formats/pgaudit/postgresql.log");
    let pg = pg.to_str().unwrap();
    let sample = repo("sample-logs/incident.jsonl");
    let sample = sample.to_str().unwrap();
    env.write("notes.txt", "hello\nworld\n");
    env.write(
        "long.jsonl",
        format!("{{\"ts\":1,\"pad\":\"{}\"}}\n", "x".repeat(2 << 20)),
    );

    // (arguments, what the hint says)
    let cases: &[(&[&str], &str)] = &[
        (&["replay", "--format", "jsonl", pg], "try --format pgaudit"),
        (
            &["replay", "--format", "cloudtrail", sample],
            "try --format jsonl",
        ),
        (
            &["archive", "--format", "cloudtrail", "--out", "lake", sample],
            "try --format jsonl",
        ),
        (
            &["replay", "notes.txt"],
            "does not look like a format exposure reads",
        ),
        (
            &["replay", "long.jsonl"],
            "within the line cap of 1048576 bytes (`[input] max_line_bytes`)",
        ),
    ];
    for (args, hint) in cases {
        let run = env.run(args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("no line could be read"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains(hint), "{args:?}: {}", run.stderr);
    }

    // One unreadable input among good ones: the good ones still give their alerts.
    let alone = env.run(&["replay", sample]);
    let mixed = env.run(&["replay", sample, "notes.txt"]);
    assert_eq!(mixed.code, 1, "{}", mixed.stderr);
    assert_eq!(mixed.stdout, alone.stdout);
    // A file with some good lines is not unusable: its bad lines are reported, exit 0.
    let mut partly = std::fs::read_to_string(sample).unwrap();
    partly.push_str("not json\n");
    env.write("partly.jsonl", partly);
    let run = env.run(&["replay", "partly.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("no line could be read"),
        "{}",
        run.stderr
    );
}

#[test]
fn one_odd_record_of_a_cloudtrail_file_is_reported_alone_and_the_summary_agrees_with_the_exit_code()
{
    let env = TestEnv::new();
    let record = |i: usize, name: &str, parameters: &str| {
        format!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/u{i}"}},"eventTime":"2026-03-18T10:00:0{i}Z","eventSource":"s3.amazonaws.com","eventName":"{name}","requestParameters":{parameters},"readOnly":true,"eventCategory":"Data"}}"#
        )
    };
    let get = r#"{"bucketName":"lake","key":"customers/part-0.parquet"}"#;
    // A delivered file: three reads and an ACL change whose bucket name is empty.
    let records = [
        record(1, "GetObject", get),
        record(2, "GetObject", get),
        record(3, "PutBucketAcl", r#"{"bucketName":"","acl":[""]}"#),
        record(4, "GetObject", get),
    ];
    env.write(
        "file.json",
        format!("{{\"Records\":[{}]}}\n", records.join(",")),
    );
    env.write("lines.jsonl", records.join("\n") + "\n");
    for (file, at) in [
        ("file.json", "file.json:1:"),
        ("lines.jsonl", "lines.jsonl:3:"),
    ] {
        for format in ["auto", "cloudtrail"] {
            let run = env.run(&["replay", "--format", format, file]);
            assert_eq!(run.code, 0, "{file} as {format}: {}", run.stderr);
            assert!(
                run.stderr
                    .contains(&format!("{at} skipped: access event names no object"))
            );
            assert!(
                run.stderr.contains("3 events, 3 reads, 0 malformed"),
                "{file} as {format}: {}",
                run.stderr
            );
            assert!(run.stderr.contains("1 access events unattributable"));
            assert!(!run.stderr.contains("no line could be read"));
        }
    }
    // Strict stops at the record that names no object, after the reads before it.
    let run = env.run(&["replay", "--strict", "lines.jsonl"]);
    assert_eq!(run.code, 1, "{}", run.stderr);

    // A file of which nothing can be read, recognised as CloudTrail: the hint does not say to
    // try the format already tried.
    let no_time = record(1, "GetObject", get).replace(r#""eventTime":"2026-03-18T10:00:01Z","#, "");
    env.write("bad.json", format!("{{\"Records\":[{no_time}]}}\n"));
    let run = env.run(&["replay", "bad.json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "no line could be read as cloudtrail (recognised from its first line) (1 malformed): \
             its lines look like cloudtrail but none could be decoded"
        ),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("try --format cloudtrail"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("1 malformed, 0 late"), "{}", run.stderr);
}

#[test]
fn a_reader_of_stderr_that_goes_away_does_not_crash_the_run() {
    // `exposure replay … 2>&1 >/dev/null | head -1`: the pipe's reader is gone before the
    // summary is written. The run ends with its own exit code, not a panic (101).
    let env = TestEnv::new();
    let sample = repo("sample-logs/incident.jsonl");
    for (args, code) in [
        (vec!["replay", sample.to_str().unwrap()], 0),
        (vec!["replay", "missing.jsonl", sample.to_str().unwrap()], 1),
        (
            vec!["replay", "--format", "cloudtrail", sample.to_str().unwrap()],
            1,
        ),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = env
            .command(&args)
            .stdout(std::process::Stdio::null())
            .stderr(writer)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(code), "{args:?}");
    }
}
