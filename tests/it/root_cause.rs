//! Root cause from each vendor's permission changes, as each writes them
//! (tests/data/permissions/, made by its generate.py): the same story everywhere — a grant to
//! one new hire (no alert), read granted to everyone on the sensitive table's container, four new
//! readers, the revert after the window went quiet, and a window on another table with no change
//! before it.

use crate::{TestEnv, repo};
use serde_json::Value;
use std::time::Duration;

/// (format, file, the container granted on, the table read, the grantee, the privilege, the
/// table of the window with no cause).
const VENDORS: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    (
        "cloudtrail",
        "cloudtrail.jsonl",
        "acme-hr",
        "acme-hr/current",
        "*",
        "s3:GetObject",
        "acme-logs/current",
    ),
    (
        "gcp-audit",
        "gcp-audit.jsonl",
        "acme.hr",
        "acme.hr.salaries",
        "allAuthenticatedUsers",
        "roles/bigquery.dataViewer",
        "acme.logs.events",
    ),
    (
        "snowflake",
        "snowflake.jsonl",
        "PROD.HR",
        "PROD.HR.SALARIES",
        "PUBLIC",
        "SELECT",
        "PROD.LOGS.EVENTS",
    ),
    (
        "databricks",
        "databricks.jsonl",
        "main.hr",
        "main.hr.salaries",
        "account users",
        "SELECT",
        "main.logs.events",
    ),
];

#[test]
fn each_vendors_permission_changes_name_the_cause_of_the_window_they_open() {
    let env = TestEnv::new();
    env.write(
        "perm.toml",
        "[detect]\nlearn = \"1d\"\nmin_principals = 3\n",
    );
    for &(format, file, container, table, grantee, privilege, uncaused) in VENDORS {
        let path = repo(&format!("tests/data/permissions/{file}"));
        let run = env.run(&[
            "replay",
            "--config",
            "perm.toml",
            "--format",
            format,
            path.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{format}: {}", run.stderr);
        assert!(
            run.stderr.contains(" 0 malformed"),
            "{format}: {}",
            run.stderr
        );
        let alerts = run.alerts();
        let summary: Vec<(&str, &str)> = alerts
            .iter()
            .map(|a| (a["status"].as_str().unwrap(), a["table"].as_str().unwrap()))
            .collect();
        assert_eq!(
            summary,
            [
                ("grant", container),
                ("open", table),
                ("closed", table),
                ("update", table),
                ("open", uncaused),
                ("closed", uncaused),
            ],
            "{format}: the new hire's grant raises nothing"
        );
        let warning = &alerts[0];
        assert_eq!(warning["as_of"], "2026-03-11T10:00:00.000Z", "{format}");
        assert_eq!(warning["change"]["grantee"], grantee, "{format}");
        assert_eq!(warning["severity"], "critical", "{format}");
        assert_eq!(warning["tables"], serde_json::json!([table]), "{format}");
        for alert in &alerts[1..4] {
            let cause = &alert["cause"];
            assert_eq!(cause["object"], container, "{format}: {alert}");
            assert_eq!(cause["grantee"], grantee, "{format}");
            assert_eq!(cause["privilege"], privilege, "{format}");
            assert_eq!(
                alert["exposed_from"], "2026-03-11T10:00:00.000Z",
                "{format}"
            );
        }
        assert_eq!(
            alerts[2].get("exposed_until"),
            None,
            "{format}: not yet reverted at the close"
        );
        let update = &alerts[3];
        assert_eq!(
            update["exposed_until"], "2026-03-11T11:00:00.000Z",
            "{format}"
        );
        assert_eq!(update["as_of"], "2026-03-11T11:00:00.000Z", "{format}");
        assert_eq!(update["closed_by"], "quiet", "{format}");
        assert_eq!(update["principals"], alerts[2]["principals"], "{format}");
        let readers: Vec<&str> = alerts[2]["principals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["principal"].as_str().unwrap())
            .collect();
        assert_eq!(readers.len(), 4, "{format}: {readers:?}");
        for alert in &alerts[4..] {
            assert_eq!(alert.get("cause"), None, "{format}: never a guess: {alert}");
            assert_eq!(alert.get("exposed_from"), None, "{format}");
        }
        // Every way of reading gives the same: auto-detected, and through a Parquet archive.
        let auto = env.run(&["replay", "--config", "perm.toml", path.to_str().unwrap()]);
        assert_eq!(
            auto.stdout, run.stdout,
            "{format} recognised: {}",
            auto.stderr
        );
        let lake = env.path(&format!("lake-{format}"));
        let archived = env.run(&[
            "archive",
            "--config",
            "perm.toml",
            "--format",
            format,
            path.to_str().unwrap(),
            "--out",
            lake.to_str().unwrap(),
        ]);
        assert_eq!(archived.code, 0, "{format}: {}", archived.stderr);
        let parquet = env.run(&["replay", "--config", "perm.toml", lake.to_str().unwrap()]);
        assert_eq!(
            parquet.stdout, run.stdout,
            "{format} from Parquet: {}",
            parquet.stderr
        );
    }
}

#[test]
fn an_iam_policy_attached_to_a_role_is_the_cause_of_the_window_its_sessions_open() {
    // The same story as VENDORS', read given through IAM: AmazonS3ReadOnlyAccess attached to
    // role Support (every bucket), its sessions read, the policy detached.
    let env = TestEnv::new();
    env.write(
        "perm.toml",
        "[detect]\nlearn = \"1d\"\nmin_principals = 3\n",
    );
    let path = repo("tests/data/permissions/cloudtrail-iam.jsonl");
    let run = env.run(&["replay", "--config", "perm.toml", path.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(" 0 malformed") && run.stderr.contains("3 permission changes"));
    let alerts = run.alerts();
    let summary: Vec<(&str, &str)> = alerts
        .iter()
        .map(|a| (a["status"].as_str().unwrap(), a["table"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("open", "acme-hr/current"),
            ("closed", "acme-hr/current"),
            ("update", "acme-hr/current"),
            ("open", "acme-logs/current"),
            ("closed", "acme-logs/current"),
        ],
        "a grant to one role is no grant alert; the new hire's inline policy raises nothing"
    );
    for alert in &alerts[..3] {
        let cause = &alert["cause"];
        assert_eq!(cause["object"], "*", "{alert}");
        assert_eq!(cause["grantee"], "arn:aws:iam::111122223333:role/Support");
        assert_eq!(cause["privilege"], "s3:GetObject");
        assert!(
            cause["statement"]
                .as_str()
                .unwrap()
                .contains("AmazonS3ReadOnlyAccess"),
            "{cause}"
        );
        assert_eq!(alert["exposed_from"], "2026-03-11T10:00:00.000Z");
    }
    assert_eq!(alerts[2]["exposed_until"], "2026-03-11T11:00:00.000Z");
    for alert in &alerts[3..] {
        assert_eq!(
            alert.get("cause"),
            None,
            "the role's grant covers no user: {alert}"
        );
    }
}

/// The grant alert of an input, if any.
fn grants(alerts: &[Value]) -> Vec<&Value> {
    alerts.iter().filter(|a| a["status"] == "grant").collect()
}

#[test]
fn overlapping_exports_of_one_change_warn_once() {
    // The same CloudTrail records delivered twice (two trails, a re-export): one warning.
    let env = TestEnv::new();
    env.write(
        "perm.toml",
        "[detect]\nlearn = \"1d\"\nmin_principals = 3\n",
    );
    let path = repo("tests/data/permissions/cloudtrail.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    env.write("a.jsonl", &text);
    env.write("b.jsonl", &text);
    let run = env.run(&[
        "replay",
        "--config",
        "perm.toml",
        "--format",
        "cloudtrail",
        env.path("a.jsonl").to_str().unwrap(),
        env.path("b.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let alerts = run.alerts();
    assert_eq!(grants(&alerts).len(), 1, "{alerts:#?}");
}

#[test]
fn learn_hands_the_permission_state_to_watch() {
    use crate::util::{Watcher, append, read_line};
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        crate::util::CONFIG.replace("learn = \"0s\"", "learn = \"1h\""),
    );
    // History: alice, bob and carol read `pay` two hours ago; ten minutes ago read on it was
    // granted to everyone, and nobody has read it since.
    let now = chrono::Utc::now().timestamp();
    let mut history = String::new();
    for (i, p) in ["alice", "bob", "carol"].iter().enumerate() {
        let ts = now - 7200 + i as i64;
        history.push_str(&format!(
            "{{\"ts\":{ts},\"principal\":\"{p}\",\"table\":\"db.pay\",\"action\":\"SELECT\"}}\n"
        ));
    }
    let granted = now - 600;
    history.push_str(&format!(
        "{{\"ts\":{granted},\"principal\":\"dba\",\"table\":\"db\",\"action\":\"GRANT\",\"grantee\":\"PUBLIC\",\"privilege\":\"SELECT\"}}\n"
    ));
    env.write("history.jsonl", history);
    let run = env.run(&[
        "learn",
        "--config",
        "watch.toml",
        "--state-dir",
        "state",
        "history.jsonl",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let state = crate::util::checkpoint(&env.path("state"))
        .unwrap()
        .to_string();
    assert!(
        state.contains("\"grantee\":\"PUBLIC\""),
        "the state keeps what is granted: {state}"
    );

    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    for p in ["alice", "dave", "erin", "frank"] {
        append(&log, read_line(p, "db.pay"));
    }
    let open = watcher.wait_for("open", Duration::from_secs(10), |a| a["status"] == "open");
    assert_eq!(open["cause"]["grantee"], "PUBLIC", "{open}");
    assert_eq!(open["cause"]["object"], "db");
    assert_eq!(
        open["exposed_from"],
        exposure::time::format_ts(granted * 1_000_000).as_str()
    );
}

#[test]
fn an_unordered_export_with_permission_changes_is_sorted_with_them() {
    let env = TestEnv::new();
    let sample = repo("sample-logs/incident.jsonl");
    let grants = repo("sample-logs/permissions.jsonl");
    let (sample, grants) = (sample.to_str().unwrap(), grants.to_str().unwrap());
    let ordered = env.run(&["replay", sample, grants]);
    assert!(ordered.stdout.contains("\"cause\""), "{}", ordered.stdout);
    // One file, every line in reverse: far beyond lateness.
    let mut lines: Vec<String> = [sample, grants]
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.reverse();
    env.write("unordered.jsonl", lines.join("\n") + "\n");
    let unordered = env.path("unordered.jsonl");
    for memory in ["1G", "64K"] {
        let run = env.run(&[
            "replay",
            "--sort-memory",
            memory,
            unordered.to_str().unwrap(),
        ]);
        assert!(
            run.stderr.contains("sorting every event by time"),
            "{}",
            run.stderr
        );
        assert_eq!(
            run.stdout, ordered.stdout,
            "--sort-memory {memory}: {}",
            run.stderr
        );
    }
}

#[test]
fn a_permission_change_dated_far_ahead_is_quarantined_like_any_event() {
    // A wrong clock on the machine that logged a grant: a year ahead of its input.
    let env = TestEnv::new();
    let grants = std::fs::read_to_string(repo("sample-logs/permissions.jsonl")).unwrap();
    let mut lines: Vec<&str> = grants.lines().collect();
    let future = lines[4].replace("2026-03-16T13:57:02.301Z", "2027-03-16T13:57:02.301Z");
    lines[4] = &future;
    env.write("grants.jsonl", lines.join("\n") + "\n");
    let sample = repo("sample-logs/incident.jsonl");
    let run = env.run(&[
        "replay",
        sample.to_str().unwrap(),
        env.path("grants.jsonl").to_str().unwrap(),
    ]);
    assert!(
        run.stderr.contains("grants.jsonl:5: quarantined"),
        "{}",
        run.stderr
    );
    let alerts = run.alerts();
    assert!(alerts.iter().all(|a| a["status"] != "grant"), "{alerts:#?}");
    assert!(
        alerts.iter().all(|a| a.get("cause").is_none()),
        "never used"
    );
}
