//! The bundled sample: exactly one exposure window, on the exposed table, within a minute of the
//! truth the generator recorded, and the same bytes from every way of feeding it in.

use crate::{TestEnv, repo};
use chrono::DateTime;
use serde_json::Value;

fn truth() -> Value {
    let text = std::fs::read_to_string(repo("sample-logs/incident.truth.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn secs(v: &Value) -> i64 {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .timestamp()
}

#[test]
fn the_incident_is_one_window_with_the_right_table_bounds_and_principals() {
    let env = TestEnv::new();
    let sample = repo("sample-logs/incident.jsonl");
    let run = env.run(&["replay", sample.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts = run.alerts();
    let statuses: Vec<&str> = alerts
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["open", "closed"], "{}", run.stdout);

    let truth = truth();
    let closed = &alerts[1];
    assert_eq!(closed["table"], truth["table"]);
    assert_eq!(closed["id"], alerts[0]["id"]);
    assert!((secs(&closed["window_start"]) - secs(&truth["window_start"])).abs() <= 60);
    assert!((secs(&closed["window_end"]) - secs(&truth["window_end"])).abs() <= 60);
    let mut principals: Vec<&str> = closed["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["principal"].as_str().unwrap())
        .collect();
    principals.sort();
    let expected: Vec<&str> = truth["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(principals, expected);
    assert_eq!(closed["closed_by"], "quiet");
    assert_eq!(closed["severity"], "critical");
    assert!(run.stderr.contains("0 malformed"), "{}", run.stderr);
}

#[test]
fn plain_gzip_stdin_and_out_file_give_identical_bytes() {
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    let env = TestEnv::new();
    let bytes = std::fs::read(repo("sample-logs/incident.jsonl")).unwrap();
    let plain = env.write("incident.jsonl", &bytes);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&bytes).unwrap();
    let gzipped = env.write("incident.log.gz", gz.finish().unwrap());

    let reference = env.run(&["replay", plain.to_str().unwrap()]);
    assert!(!reference.stdout.is_empty());
    let from_gz = env.run(&["replay", gzipped.to_str().unwrap()]);
    assert_eq!(from_gz.stdout, reference.stdout);
    let from_stdin = env.run_with_stdin(&["replay", "-"], &bytes);
    assert_eq!(from_stdin.stdout, reference.stdout);
    for threads in ["1", "2"] {
        let run = env.run(&["replay", "--threads", threads, plain.to_str().unwrap()]);
        assert_eq!(run.stdout, reference.stdout, "--threads {threads}");
    }
    let to_file = env.run(&["replay", "--out", "alerts.jsonl", plain.to_str().unwrap()]);
    assert_eq!(to_file.code, 0);
    assert_eq!(to_file.stdout, "");
    assert_eq!(
        std::fs::read_to_string(env.path("alerts.jsonl")).unwrap(),
        reference.stdout
    );
}

#[test]
fn split_files_replay_as_one_stream() {
    let env = TestEnv::new();
    let text = std::fs::read_to_string(repo("sample-logs/incident.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (a, b) = lines.split_at(lines.len() * 2 / 3);
    let first = env.write("a.jsonl", a.join("\n") + "\n");
    let second = env.write("b.jsonl", b.join("\n"));
    let whole = env.run(&[
        "replay",
        repo("sample-logs/incident.jsonl").to_str().unwrap(),
    ]);
    let split = env.run(&["replay", first.to_str().unwrap(), second.to_str().unwrap()]);
    assert_eq!(split.stdout, whole.stdout);
    assert!(split.stderr.contains("2 inputs"), "{}", split.stderr);
}

#[test]
fn with_its_permission_changes_the_sample_names_the_grant_that_opened_the_window() {
    let env = TestEnv::new();
    let sample = repo("sample-logs/incident.jsonl");
    let grants = repo("sample-logs/permissions.jsonl");
    let alone = env.run(&["replay", sample.to_str().unwrap()]);
    let run = env.run(&["replay", sample.to_str().unwrap(), grants.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("; 6 permission changes"),
        "{}",
        run.stderr
    );
    let alerts = run.alerts();
    let statuses: Vec<&str> = alerts
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    // The grant to everyone warns at once; the new hire's grant does not.
    assert_eq!(statuses, ["grant", "open", "closed"], "{}", run.stdout);
    let warning = &alerts[0];
    assert_eq!(warning["table"], "warehouse.users");
    assert_eq!(warning["as_of"], "2026-03-16T13:57:02.301Z");
    assert_eq!(
        warning["tables"],
        serde_json::json!(["warehouse.users.payment_methods", "warehouse.users.pii"])
    );
    let truth = truth();
    for (with_cause, without) in alerts[1..].iter().zip(alone.alerts()) {
        assert_eq!(with_cause["cause"]["actor"], "dev.platform@corp.example");
        assert_eq!(with_cause["cause"]["grantee"], "PUBLIC");
        assert_eq!(with_cause["exposed_from"], "2026-03-16T13:57:02.301Z");
        // Everything else is the window as the sample alone gives it.
        let mut stripped = with_cause.clone();
        for field in ["cause", "exposed_from", "exposed_until"] {
            stripped.as_object_mut().unwrap().remove(field);
        }
        assert_eq!(stripped, without);
    }
    assert_eq!(alerts[1].get("exposed_until"), None);
    // The fix, before the window went quiet: the closed alert says when the door shut.
    assert_eq!(alerts[2]["exposed_until"], "2026-03-16T16:04:00.000Z");
    assert!(
        (secs(&alerts[2]["exposed_until"]) - secs(&truth["fix_at"])).abs() <= 60,
        "{}",
        alerts[2]
    );
}

#[test]
fn a_parquet_archive_keeps_the_permission_changes() {
    let env = TestEnv::new();
    let sample = repo("sample-logs/incident.jsonl");
    let grants = repo("sample-logs/permissions.jsonl");
    let (sample, grants) = (sample.to_str().unwrap(), grants.to_str().unwrap());
    let lake = env.path("lake");
    let archived = env.run(&["archive", sample, grants, "--out", lake.to_str().unwrap()]);
    assert_eq!(archived.code, 0, "{}", archived.stderr);
    let from_lines = env.run(&["replay", sample, grants]);
    let from_parquet = env.run(&["replay", lake.to_str().unwrap()]);
    assert_eq!(from_parquet.code, 0, "{}", from_parquet.stderr);
    assert!(
        from_parquet.stdout.contains("\"cause\""),
        "{}",
        from_parquet.stdout
    );
    assert_eq!(from_parquet.stdout, from_lines.stdout);
}
