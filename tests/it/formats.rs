//! Vendor log formats: every fixture in `tests/data/formats` gives exactly its expected events
//! (with the format named and recognised by `auto`), every malformed line is reported without a
//! panic, and `replay --format X` runs end to end.

use super::TestEnv;
use exposure::config::{Config, DetectOverrides};
use exposure::event::AccessEvent;
use exposure::format::Format;
use exposure::format::{DecodeSink, Line, ParseError};
use exposure::time::format_ts;
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

fn data(path: &str) -> PathBuf {
    super::repo("tests/data/formats").join(path)
}

fn text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut out)
            .unwrap();
        out
    } else {
        String::from_utf8(bytes).unwrap()
    }
}

/// What the decoding pipeline makes of `input` in `format`: one JSON value per event (or
/// `"not_access"`), and the errors.
fn read_all(format: Format, input: &str) -> (Vec<Value>, Vec<String>) {
    #[derive(Default)]
    struct Collected {
        items: Vec<Value>,
        errors: Vec<String>,
    }
    impl DecodeSink for Collected {
        fn event(&mut self, _line: u64, e: &AccessEvent<'_>, read: bool) {
            let mut item = json!({
                "ts": format_ts(e.ts), "principal": e.principal, "table": e.table, "read": read,
            });
            if !e.columns.is_empty() {
                item["columns"] = json!(e.columns);
            }
            self.items.push(item);
        }
        fn permission(&mut self, _line: u64, c: &exposure::event::PermissionChange) {
            self.items.push(json!({
                "ts": format_ts(c.ts), "action": c.action.as_str(), "actor": c.actor,
                "object": c.object, "grantee": c.grantee, "privilege": c.privilege,
                "statement": c.statement,
            }));
        }
        fn not_access(&mut self, _line: u64, _why: exposure::format::vendor::NotAccess) {
            self.items.push(json!("not_access"));
        }
        fn malformed(&mut self, line: u64, error: ParseError) {
            self.errors.push(format!("line {line}: {error}"));
        }
    }
    let config = Config::load(None, &DetectOverrides::default(), Some(format)).unwrap();
    let mut decoder = config.decoder();
    let mut out = Collected::default();
    for (i, line) in input.lines().enumerate() {
        decoder.line(i as u64 + 1, Line::Text(line.as_bytes()), &mut out);
    }
    decoder.finish(&mut out);
    (out.items, out.errors)
}

fn expected(path: &str) -> Vec<Value> {
    text(&data(path))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const FIXTURES: &[(Format, &str, &str)] = &[
    (
        Format::Cloudtrail,
        "cloudtrail/123456789012_CloudTrail_us-east-1_20260318T1005Z_EXAMPLE.json.gz",
        "cloudtrail/expected.jsonl",
    ),
    (
        Format::Cloudtrail,
        "cloudtrail/records.jsonl",
        "cloudtrail/records.expected.jsonl",
    ),
    (
        Format::Cloudtrail,
        "cloudtrail/others/records.jsonl",
        "cloudtrail/others/records.expected.jsonl",
    ),
    (
        Format::GcpAudit,
        "gcp-audit/data_access.jsonl",
        "gcp-audit/expected.jsonl",
    ),
    (
        Format::GcpAudit,
        "gcp-audit/others/legacy-and-both.jsonl",
        "gcp-audit/others/legacy-and-both.expected.jsonl",
    ),
    (
        Format::Snowflake,
        "snowflake/access_history.jsonl",
        "snowflake/expected.jsonl",
    ),
    (
        Format::Databricks,
        "databricks/audit.jsonl",
        "databricks/expected.jsonl",
    ),
    (
        Format::Databricks,
        "databricks/others/system-access-audit.jsonl",
        "databricks/others/system-access-audit.expected.jsonl",
    ),
    (
        Format::Pgaudit,
        "pgaudit/postgresql.log",
        "pgaudit/expected.jsonl",
    ),
    (
        Format::Pgaudit,
        "pgaudit/others/default-prefix.log",
        "pgaudit/others/default-prefix.expected.jsonl",
    ),
    (
        Format::Pgaudit,
        "pgaudit/others/jsonlog.json",
        "pgaudit/others/jsonlog.expected.jsonl",
    ),
    (
        Format::Pgaudit,
        "pgaudit/others/yugabyte.log",
        "pgaudit/others/yugabyte.expected.jsonl",
    ),
    (
        Format::Pgaudit,
        "pgaudit/others/pgbadger.log",
        "pgaudit/others/pgbadger.expected.jsonl",
    ),
    (
        Format::Pgaudit,
        "pgaudit/others/pgaudit-readme-prefix.log",
        "pgaudit/others/pgaudit-readme-prefix.expected.jsonl",
    ),
    (
        Format::S3Access,
        "s3_access/access.log",
        "s3_access/events.expected.jsonl",
    ),
    (
        Format::GcsUsage,
        "gcs_usage/usage.csv",
        "gcs_usage/events.expected.jsonl",
    ),
    (
        Format::GcpAudit,
        "gcp-audit/storage/records.jsonl",
        "gcp-audit/storage/records.expected.jsonl",
    ),
];

#[test]
fn every_fixture_gives_its_expected_events_named_or_recognised() {
    for (format, input, want) in FIXTURES {
        let input_text = text(&data(input));
        for as_given in [*format, Format::Auto] {
            let (items, errors) = read_all(as_given, &input_text);
            assert!(errors.is_empty(), "{input} as {as_given:?}: {errors:?}");
            assert_eq!(items, expected(want), "{input} as {as_given:?}");
        }
    }
}

#[test]
fn every_malformed_line_is_reported_never_a_panic() {
    for folder in [
        "cloudtrail",
        "gcp-audit",
        "snowflake",
        "databricks",
        "pgaudit",
        "s3_access",
        "gcs_usage",
    ] {
        let format = match folder {
            "cloudtrail" => Format::Cloudtrail,
            "gcp-audit" => Format::GcpAudit,
            "snowflake" => Format::Snowflake,
            "databricks" => Format::Databricks,
            "s3_access" => Format::S3Access,
            "gcs_usage" => Format::GcsUsage,
            _ => Format::Pgaudit,
        };
        let corpus = text(&data(&format!("{folder}/malformed.txt")));
        for (i, line) in corpus.lines().enumerate() {
            let (items, errors) = read_all(format, line);
            assert_eq!(
                errors.len(),
                1,
                "{folder}/malformed.txt line {}: {line}\n gave {items:?}",
                i + 1
            );
        }
    }
}

#[test]
fn replay_reads_each_format_end_to_end_and_counts_non_access_records() {
    let env = TestEnv::new();
    for (format, input, _) in FIXTURES {
        let path = data(input);
        let flag = format.name();
        let run = env.run(&["replay", "--format", flag, path.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{input}: {}", run.stderr);
        assert!(
            run.stderr.contains("0 malformed"),
            "{input}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("records not access events ("),
            "{input}: {}",
            run.stderr
        );
    }
    // Counted by reason: the KMS Decrypt and the two DescribeTable calls are management calls.
    let run = env.run(&[
        "replay",
        "--format",
        "cloudtrail",
        data("cloudtrail/others/records.jsonl").to_str().unwrap(),
    ]);
    assert!(
        run.stderr
            .contains("; 3 records not access events (3 management calls)"),
        "{}",
        run.stderr
    );
    // A malformed line is reported with its file and line.
    let run = env.run(&[
        "replay",
        "--format",
        "pgaudit",
        data("pgaudit/malformed.txt").to_str().unwrap(),
    ]);
    // Not one line of it could be read: the input is reported as unreadable, exit 1.
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("its lines look like pgaudit but none could be decoded"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("malformed.txt:1:1: skipped"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("5 malformed"), "{}", run.stderr);
}

#[test]
fn an_exposure_in_cloudtrail_records_is_found() {
    // Three analysts' sessions read a bucket nobody reads: a window, principals per session.
    let env = TestEnv::new();
    let mut lines = String::new();
    let record = |t: &str, who: &str, key: &str| {
        json!({
            "eventVersion": "1.09", "eventTime": t, "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject", "readOnly": true, "eventCategory": "Data",
            "userIdentity": {
                "type": "AssumedRole",
                "arn": format!("arn:aws:sts::123456789012:assumed-role/Analyst/{who}"),
                "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::123456789012:role/Analyst"}},
            },
            "requestParameters": {"bucketName": "hr-exports", "key": key},
        })
        .to_string()
    };
    lines.push_str(&record("2026-03-18T09:00:00Z", "etl", "a.csv"));
    lines.push('\n');
    for (i, who) in ["alice", "bob", "carol"].iter().enumerate() {
        lines.push_str(&record(&format!("2026-03-18T10:0{i}:00Z"), who, "a.csv"));
        lines.push('\n');
    }
    env.write("trail.jsonl", lines);
    env.write(
        "c.toml",
        "[detect]\nlearn = \"30m\"\n[input.cloudtrail]\nresource = \"bucket\"\n",
    );
    let run = env.run(&["replay", "--config", "c.toml", "trail.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts = run.alerts();
    assert_eq!(alerts[0]["status"], "open");
    assert_eq!(alerts[0]["table"], "hr-exports");
    assert_eq!(
        alerts[0]["principals"][0]["principal"],
        "arn:aws:iam::123456789012:role/Analyst/alice"
    );

    // Archived to Parquet, the same events give the same alerts.
    let archived = env.run(&[
        "archive",
        "--config",
        "c.toml",
        "trail.jsonl",
        "--out",
        "lake",
    ]);
    assert_eq!(archived.code, 0, "{}", archived.stderr);
    let again = env.run(&["replay", "--config", "c.toml", "lake"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.stdout, run.stdout);
}

#[test]
fn a_partitioned_data_lake_in_cloudtrail_is_one_table_per_dataset() {
    // Readers of `lake/customers/dt=…/part-N.parquet`: each reads other part files of the
    // same dataset. By default the dataset is the table (one window); `resource = "object"`
    // makes each part file its own table (no window: nobody else reads any one of them).
    let env = TestEnv::new();
    let record = |t: &str, who: &str, key: &str| {
        json!({
            "eventVersion": "1.09", "eventTime": t, "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject", "readOnly": true, "eventCategory": "Data",
            "userIdentity": {"type": "IAMUser", "arn": format!("arn:aws:iam::1:user/{who}")},
            "requestParameters": {"bucketName": "lake", "key": key},
        })
        .to_string()
    };
    let mut lines = Vec::new();
    for day in 10..15 {
        lines.push(record(
            &format!("2026-03-{day}T02:00:00Z"),
            "etl",
            &format!("customers/dt=2026-03-{day}/part-0.parquet"),
        ));
    }
    for (i, who) in ["ana", "ben", "cy", "dee", "eli"].iter().enumerate() {
        lines.push(record(
            &format!("2026-03-16T10:0{i}:00Z"),
            who,
            &format!("customers/dt=2026-03-1{i}/part-{i}.parquet"),
        ));
    }
    env.write("trail.jsonl", lines.join("\n") + "\n");
    let detect = "[detect]\nlearn = \"5d\"\nmin_principals = 3\n";
    env.write("dataset.toml", detect);
    env.write(
        "object.toml",
        format!("{detect}[input.cloudtrail]\nresource = \"object\"\n"),
    );

    let run = env.run(&["replay", "--config", "dataset.toml", "trail.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts = run.alerts();
    assert_eq!(alerts.len(), 2, "{}", run.stdout);
    assert_eq!(alerts[1]["table"], "lake/customers");
    assert_eq!(alerts[1]["principals"].as_array().unwrap().len(), 5);

    let per_object = env.run(&["replay", "--config", "object.toml", "trail.jsonl"]);
    assert_eq!(per_object.code, 0, "{}", per_object.stderr);
    assert_eq!(per_object.stdout, "");
    assert!(
        per_object.stderr.contains(" 0 windows"),
        "{}",
        per_object.stderr
    );
}

#[test]
fn snowflake_access_history_unloaded_as_parquet_reads_like_its_json_export() {
    use arrow_array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
    use std::sync::Arc;
    let env = TestEnv::new();
    let base = |t: &str| {
        format!("[{{\"objectDomain\":\"Table\",\"objectName\":\"HR.PUBLIC.{t}\",\"columns\":[]}}]")
    };
    let t0 = 1_773_828_000_000_000i64; // 2026-03-18T10:00:00Z
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "QUERY_START_TIME",
            Arc::new(
                TimestampMicrosecondArray::from(vec![t0, t0 + 1_000_000]).with_timezone("UTC"),
            ),
        ),
        (
            "USER_NAME",
            Arc::new(StringArray::from(vec!["ALICE", "BOB"])),
        ),
        (
            "BASE_OBJECTS_ACCESSED",
            Arc::new(StringArray::from(vec![base("SALARIES"), base("PEOPLE")])),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let path = env.path("access_history.parquet");
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        batch.schema(),
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    env.write("c.toml", "[detect]\nlearn = \"0s\"\nmin_principals = 2\n");
    let run = env.run(&[
        "replay",
        "--config",
        "c.toml",
        "--format",
        "snowflake",
        "--table",
        "HR.PUBLIC.*",
        path.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("2 events, 2 reads, 0 malformed"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("2 tables"), "{}", run.stderr);
}

/// Guard: every format folder under `tests/data/formats` has its fixtures checked above — an
/// expectation in [`FIXTURES`] and a malformed corpus — so a new folder cannot go untested.
#[test]
fn every_format_folder_has_an_expectation_and_a_malformed_corpus() {
    let root = data("");
    let mut folders: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert!(!folders.is_empty());
    for folder in folders {
        let covered = FIXTURES
            .iter()
            .any(|(_, _, expected)| expected.starts_with(&format!("{folder}/")));
        assert!(
            covered,
            "tests/data/formats/{folder} has no entry in FIXTURES"
        );
        assert!(
            data(&format!("{folder}/malformed.txt")).exists(),
            "tests/data/formats/{folder} has no malformed.txt corpus"
        );
    }
}

#[test]
fn access_events_naming_no_table_are_counted_apart_shown_and_fail_strict() {
    let env = TestEnv::new();
    // Databricks' getTable (a read action) without request_params, a CloudTrail S3 data event
    // that names neither bucket nor resource: accesses, but of nothing a baseline can hold.
    env.write(
        "uc.jsonl",
        concat!(
            r#"{"event_time":"2026-03-18T10:00:00Z","user_identity":{"email":"a@x.example"},"service_name":"unityCatalog","action_name":"getTable","request_params":null,"response":{"status_code":200}}"#,
            "\n",
            r#"{"event_time":"2026-03-18T10:00:01Z","user_identity":{"email":"b@x.example"},"service_name":"unityCatalog","action_name":"getTable","request_params":{"full_name_arg":"main.hr.t"},"response":{"status_code":200}}"#,
            "\n",
        ),
    );
    let run = env.run(&["replay", "--format", "databricks", "uc.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("uc.jsonl:1: skipped: access event names no object: unityCatalog getTable")
            && run.stderr.contains(" 0 malformed")
            && run.stderr.contains("1 access events unattributable"),
        "{}",
        run.stderr
    );
    let strict = env.run(&["replay", "--strict", "--format", "databricks", "uc.jsonl"]);
    assert_ne!(strict.code, 0, "{}", strict.stderr);
    assert!(
        strict.stderr.contains("names no object"),
        "{}",
        strict.stderr
    );

    env.write(
        "ct.jsonl",
        r#"{"eventVersion":"1.09","eventTime":"2026-03-18T10:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventCategory":"Data","readOnly":true,"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a"},"requestParameters":{},"resources":[]}"#.to_string() + "\n",
    );
    let run = env.run(&["replay", "--format", "cloudtrail", "ct.jsonl"]);
    assert!(
        run.stderr.contains("data event s3.amazonaws.com GetObject")
            && run.stderr.contains("1 access events unattributable"),
        "{}",
        run.stderr
    );
}

#[test]
fn pretty_printed_cloudtrail_documents_and_top_level_arrays_are_read() {
    let want: Vec<Value> = expected("cloudtrail/others/records.expected.jsonl")
        .into_iter()
        .filter(|e| {
            let ts = e["ts"].as_str().unwrap_or("");
            ts.ends_with("10:00:02.000Z") || ts.ends_with("10:00:04.000Z")
        })
        .collect();
    assert_eq!(want.len(), 3, "a read, and a copy's read and write");
    for file in [
        "cloudtrail/others/pretty.json",
        "cloudtrail/others/array.json",
    ] {
        let (items, errors) = read_all(Format::Cloudtrail, &text(&data(file)));
        assert!(errors.is_empty(), "{file}: {errors:?}");
        assert_eq!(items, want, "{file}");
        // Replay (whose parsing is parallel) frames it the same way.
        let env = TestEnv::new();
        let run = env.run(&[
            "replay",
            "--format",
            "cloudtrail",
            data(file).to_str().unwrap(),
        ]);
        assert!(
            run.stderr.contains(" 3 events") && run.stderr.contains(" 0 malformed"),
            "{file}: {}",
            run.stderr
        );
    }
    // A record cut short at the margin does not swallow the lines after it.
    let cut = "{\n  \"Records\": [\n    {\"eventVersion\": \"1.08\",\n{\"eventVersion\":\"1.09\",\"eventTime\":\"2026-03-18T10:00:00Z\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\",\"eventCategory\":\"Data\",\"readOnly\":true,\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::1:user/a\"},\"requestParameters\":{\"bucketName\":\"b\",\"key\":\"k.csv\"}}\n";
    let (items, errors) = read_all(Format::Cloudtrail, cut);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(items.len(), 1, "{items:?}");
}

#[test]
fn a_bigquery_job_in_both_shapes_is_read_once_whichever_comes_first() {
    let input = text(&data("gcp-audit/others/legacy-and-both.jsonl"));
    let lines: Vec<&str> = input.lines().collect();
    // The new shape first, then the legacy one; and a RUNNING entry before either.
    let running = lines[1]
        .replace("\"after\":\"DONE\"", "\"after\":\"RUNNING\"")
        .replace("\"jobState\":\"DONE\"", "\"jobState\":\"RUNNING\"");
    let reordered = [running.as_str(), lines[1], lines[0]].join("\n");
    let (items, errors) = read_all(Format::GcpAudit, &reordered);
    assert!(errors.is_empty(), "{errors:?}");
    let reads: Vec<&Value> = items.iter().filter(|i| i.is_object()).collect();
    assert_eq!(reads.len(), 1, "{items:?}");
    assert_eq!(reads[0]["table"], "acme.hr.salaries");
}

/// A number beyond `f64`'s range in a field no parser reads (`"bytes": 1e400`) makes the record
/// an error, as serde_json — the authority — refuses it, in every JSON vendor format; the same
/// record with a number in range is read. (The fast paths once skipped such a value unchecked
/// and gave the event.)
#[test]
fn a_number_serde_json_refuses_in_an_unread_field_is_an_error_in_every_format() {
    let records = [
        (
            Format::Cloudtrail,
            r#"{"eventTime":"2026-03-18T10:00:01Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventCategory":"Data","readOnly":true,"requestParameters":{"bucketName":"lake","key":"k.csv"},"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/ann"},"additionalEventData":{"bytesTransferredOut":NUMBER}}"#,
        ),
        (
            Format::GcpAudit,
            r#"{"protoPayload":{"authenticationInfo":{"principalEmail":"ann@acme.example"},"resourceName":"projects/acme/datasets/hr/tables/t","metadata":{"tableDataRead":{"reason":"JOB"}},"numResponseItems":NUMBER},"timestamp":"2026-03-18T10:00:01Z"}"#,
        ),
        (
            Format::Snowflake,
            r#"{"QUERY_ID":"q","QUERY_START_TIME":"2026-03-18 10:00:01.000 +0000","USER_NAME":"ANN","BASE_OBJECTS_ACCESSED":[{"objectDomain":"Table","objectName":"HR.PUBLIC.T"}],"ROWS_PRODUCED":NUMBER}"#,
        ),
        (
            Format::Databricks,
            r#"{"timestamp":1773828001000,"userIdentity":{"email":"ann@acme.example"},"serviceName":"unityCatalog","actionName":"getTable","requestParams":{"full_name_arg":"main.hr.t"},"response":{"statusCode":200},"executionTime":NUMBER}"#,
        ),
    ];
    for (format, record) in records {
        let (items, errors) = read_all(format, &record.replace("NUMBER", "12.5"));
        assert_eq!(
            (items.len(), errors.len()),
            (1, 0),
            "{format:?}: {errors:?}"
        );
        assert_eq!(
            items[0]["principal"]
                .as_str()
                .map(|p| p.to_lowercase().contains("ann")),
            Some(true)
        );
        for huge in ["1e400", &format!("1{}", "0".repeat(400))] {
            let (items, errors) = read_all(format, &record.replace("NUMBER", huge));
            assert!(items.is_empty(), "{format:?}: {items:?}");
            assert_eq!(errors.len(), 1, "{format:?}");
            assert!(errors[0].contains("number out of range"), "{}", errors[0]);
        }
    }
}
