//! `exposure impact`: what each exposure cost. The seed scenario (the sample): one exposure, the
//! grant of read on `warehouse.users` to PUBLIC, read by the window's 40 principals and by
//! nobody after its revoke; two principals reading on after the revoke are named; a grant to
//! everyone read by one newcomer (below `min_principals`: no window) is in impact and nowhere
//! else; a grant nobody new used is "exposed, not accessed".

use super::{TestEnv, repo};
use serde_json::Value;
use std::collections::BTreeSet;

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn principals(list: &Value) -> BTreeSet<String> {
    (list.as_array().unwrap().iter())
        .map(|p| p["principal"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_sample_exposure_was_read_by_the_windows_forty_principals_and_by_nobody_after_the_revoke() {
    let env = TestEnv::new();
    let incident = repo("sample-logs/incident.jsonl");
    let permissions = repo("sample-logs/permissions.jsonl");
    let logs = [incident.to_str().unwrap(), permissions.to_str().unwrap()];
    let run = env.run(&[&["impact"][..], &logs].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let impacts = lines(&run.stdout);
    let [impact] = impacts.as_slice() else {
        panic!("{impacts:#?}")
    };
    assert_eq!(impact["schema"], "exposure.impact/v1");
    assert_eq!(impact["change"]["object"], "warehouse.users");
    assert_eq!(impact["change"]["grantee"], "PUBLIC");
    assert_eq!(impact["exposed_from"], "2026-03-16T13:57:02.301Z");
    assert_eq!(impact["exposed_until"], "2026-03-16T16:04:00.000Z");
    assert_eq!(impact["could_read"]["kind"], "everyone");
    assert_eq!(impact["did_read_count"], 40);
    assert_eq!(impact["after_revoke_count"], 0);
    assert_eq!(impact["verdict"], "accessed");
    // The same 40 as the window's alert.
    let alerts = lines(&env.run(&[&["replay"][..], &logs].concat()).stdout);
    let closed = alerts.iter().find(|a| a["status"] == "closed").unwrap();
    assert_eq!(
        principals(&impact["did_read"]),
        principals(&closed["principals"])
    );
    assert_eq!(impact["windows"], serde_json::json!([closed["id"]]));
    // Each reader's reads add up to what the window counted.
    let reads: u64 = (impact["did_read"].as_array().unwrap().iter())
        .map(|p| p["reads"].as_u64().unwrap())
        .sum();
    assert!(reads >= closed["reads"].as_u64().unwrap(), "{reads}");

    // Two of them read on after the revoke: named, and the verdict says so.
    let mut after = std::fs::read_to_string(&incident).unwrap();
    let two: Vec<String> = principals(&impact["did_read"])
        .into_iter()
        .take(2)
        .collect();
    for (i, who) in two.iter().enumerate() {
        after.push_str(&format!(
            "{{\"ts\":\"2026-03-16T16:3{i}:00.000Z\",\"principal\":\"{who}\",\"table\":\"warehouse.users.pii\",\"action\":\"SELECT\"}}\n"
        ));
    }
    env.write("after.jsonl", after);
    let run = env.run(&["impact", "after.jsonl", logs[1]]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let impact = &lines(&run.stdout)[0];
    assert_eq!(impact["after_revoke_count"], 2);
    assert_eq!(
        principals(&impact["after_revoke"]),
        two.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(impact["verdict"], "accessed, still read after the revoke");

    // CSV for the notification list: a row per principal and table.
    let run = env.run(
        &[
            &["impact", "--output", "csv", "--out", "notify.csv"][..],
            &logs,
        ]
        .concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let csv = std::fs::read_to_string(env.path("notify.csv")).unwrap();
    let mut rows = csv.lines();
    assert!(
        rows.next()
            .unwrap()
            .starts_with("exposure,object,grantee,exposed_from")
    );
    let rows: Vec<&str> = rows.collect();
    assert!(rows.len() >= 40, "{csv}");
    assert!(
        rows.iter().all(|r| r.ends_with(",false,,")),
        "after_revoke false, no columns or sensitivity named: {csv}"
    );
}

#[test]
fn one_reader_below_the_threshold_is_in_impact_and_an_unused_grant_is_exposed_not_accessed() {
    let env = TestEnv::new();
    let mut log = String::new();
    let read = |log: &mut String, at: &str, who: &str, table: &str, rows: u32| {
        log.push_str(&format!(
            "{{\"ts\":\"{at}\",\"principal\":\"{who}\",\"table\":\"{table}\",\"action\":\"SELECT\",\"rows\":{rows}}}\n"
        ));
    };
    let change = |log: &mut String, at: &str, action: &str, object: &str| {
        log.push_str(&format!(
            "{{\"ts\":\"{at}\",\"principal\":\"dba\",\"table\":\"{object}\",\"action\":\"{action}\",\"grantee\":\"PUBLIC\",\"privilege\":\"SELECT\"}}\n"
        ));
    };
    for who in ["ann", "bob", "cat"] {
        read(&mut log, "2026-03-01T09:00:00Z", who, "hr.salaries", 10);
        read(&mut log, "2026-03-01T09:00:00Z", who, "fin.ledger", 10);
    }
    change(&mut log, "2026-03-03T10:00:00Z", "GRANT", "hr");
    read(&mut log, "2026-03-03T10:05:00Z", "ann", "hr.salaries", 10);
    read(
        &mut log,
        "2026-03-03T10:10:00Z",
        "xavier",
        "hr.salaries",
        500,
    );
    read(
        &mut log,
        "2026-03-03T10:20:00Z",
        "xavier",
        "hr.salaries",
        700,
    );
    change(&mut log, "2026-03-03T11:00:00Z", "REVOKE", "hr");
    change(&mut log, "2026-03-03T12:00:00Z", "GRANT", "fin");
    read(&mut log, "2026-03-03T12:30:00Z", "bob", "fin.ledger", 10);
    read(&mut log, "2026-03-04T09:00:00Z", "cat", "fin.ledger", 10);
    env.write("log.jsonl", log);
    env.write("c.toml", "[detect]\nlearn = \"1d\"\n");
    let replay = env.run(&["replay", "--config", "c.toml", "log.jsonl"]);
    let alerts = lines(&replay.stdout);
    assert!(
        alerts.iter().all(|a| a["status"] == "grant"),
        "one newcomer opens no window: {alerts:#?}"
    );
    let run = env.run(&["impact", "--config", "c.toml", "log.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let impacts = lines(&run.stdout);
    let [hr, fin] = impacts.as_slice() else {
        panic!("{impacts:#?}")
    };
    assert_eq!(hr["change"]["object"], "hr");
    assert_eq!(hr["did_read_count"], 1);
    let xavier = &hr["did_read"][0];
    assert_eq!(xavier["principal"], "xavier");
    assert_eq!(xavier["reads"], 2);
    assert_eq!(xavier["tables"][0]["rows"], 1200);
    assert_eq!(
        xavier["tables"][0]["first_read"],
        "2026-03-03T10:10:00.000Z"
    );
    assert_eq!(hr["windows"], serde_json::json!([]));
    assert_eq!(hr["verdict"], "accessed");
    assert_eq!(fin["change"]["object"], "fin");
    assert_eq!(fin["verdict"], "exposed, not accessed");
    assert_eq!(fin.get("exposed_until"), None, "never revoked");
    assert_eq!(
        fin["could_read"]["count"], 4,
        "everyone the logs show: {fin}"
    );

    // One exposure by its id.
    let id = hr["id"].as_str().unwrap();
    let one = env.run(&["impact", "--config", "c.toml", "--change", id, "log.jsonl"]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert_eq!(lines(&one.stdout), std::slice::from_ref(hr));
    // An interval the user names: who, not normal then, read the tables in it.
    let named = env.run(&[
        "impact",
        "--config",
        "c.toml",
        "--table",
        "hr.*",
        "--from",
        "2026-03-03T10:00:00Z",
        "--until",
        "2026-03-03T10:15:00Z",
        "log.jsonl",
    ]);
    assert_eq!(named.code, 0, "{}", named.stderr);
    let named = lines(&named.stdout);
    let [interval] = named.as_slice() else {
        panic!("{named:#?}")
    };
    assert_eq!(interval.get("change"), None);
    assert_eq!(interval["tables"], "hr.*");
    assert_eq!(interval["exposed_until"], "2026-03-03T10:15:00.000Z");
    assert_eq!(interval["did_read"][0]["principal"], "xavier");
    assert_eq!(
        interval["did_read"][0]["reads"], 1,
        "the read at 10:10 only"
    );
    assert_eq!(
        interval["after_revoke"][0]["reads"], 1,
        "10:20 is after the interval"
    );
    let usage = env.run(&["impact", "--from", "2026-03-03T10:00:00Z", "log.jsonl"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    assert!(usage.stderr.contains("--table GLOB"), "{}", usage.stderr);
}

#[test]
fn a_public_gcs_bucket_s_impact_names_every_address_with_the_bytes_it_took() {
    // The Cloud Storage story: the audit log's allUsers grant and revoke, the usage logs' reads
    // (tests/data/formats/gcs_usage/README.md).
    let env = TestEnv::new();
    let config = repo("tests/data/formats/gcs_usage/exposure.toml");
    let audit = repo("tests/data/formats/gcp-audit/storage/records.jsonl");
    let logs = repo("tests/data/formats/gcs_usage/logs");
    let run = env.run(&[
        "impact",
        "--config",
        config.to_str().unwrap(),
        audit.to_str().unwrap(),
        logs.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let impacts = lines(&run.stdout);
    let [impact] = impacts.as_slice() else {
        panic!("{impacts:#?}")
    };
    assert_eq!(impact["change"]["grantee"], "allUsers");
    assert_eq!(impact["exposed_until"], "2026-03-18T10:44:30.123Z");
    assert_eq!(impact["did_read_count"], 12);
    assert_eq!(impact["after_revoke_count"], 0);
    for reader in impact["did_read"].as_array().unwrap() {
        assert!(
            reader["principal"]
                .as_str()
                .unwrap()
                .starts_with("address@")
        );
        assert_eq!(reader["tables"][0]["table"], "acme-exports/salaries");
        assert_eq!(reader["tables"][0]["bytes"], 48213, "sc_bytes: {reader}");
    }
}

/// The seed scenario's variant (tests/data/still-readable): during the exposure an agent
/// grants `warehouse.users.pii` to a support role and puts two of the forty in it; the revoke
/// of the PUBLIC grant does not close the table to them. Impact names both with the grant
/// still standing; replay (and so watch) raises one `still_readable` per principal naming it.
#[test]
fn two_readers_kept_reading_through_a_role_grant_after_the_revoke() {
    let env = TestEnv::new();
    let inputs = still_readable_inputs();
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let run = env.run(&[&["impact"][..], &inputs].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let impact = &lines(&run.stdout)[0];
    assert_eq!(impact["change"]["grantee"], "PUBLIC");
    assert_eq!(impact["did_read_count"], 40);
    assert_eq!(impact["after_revoke_count"], 2);
    let two = ["amira.ueda@corp.example", "ben.adams@corp.example"];
    assert_eq!(
        principals(&impact["after_revoke"]),
        two.map(String::from).into()
    );
    for reader in impact["after_revoke"].as_array().unwrap() {
        let granted = &reader["tables"][0]["still_granted"];
        assert_eq!(granted["grantee"], "support_escalations", "{reader}");
        assert_eq!(granted["object"], "warehouse.users.pii");
    }
    assert_eq!(impact["verdict"], "accessed, still read after the revoke");

    let run = env.run(&[&["replay"][..], &inputs].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let still: Vec<Value> = lines(&run.stdout)
        .into_iter()
        .filter(|a| a["status"] == "still_readable")
        .collect();
    let named: Vec<&str> = (still.iter())
        .map(|a| a["principals"][0]["principal"].as_str().unwrap())
        .collect();
    assert_eq!(named, two, "once each, in time order");
    for alert in &still {
        assert_eq!(alert["standing"]["grantee"], "support_escalations");
        assert_eq!(alert["change"]["grantee"], "PUBLIC");
        assert_eq!(alert["exposed_until"], "2026-03-16T16:04:00.000Z");
    }
    // Classified: the impact is weighed by its data.
    env.write(
        "classify.toml",
        "[[classify]]\ntables = [\"warehouse.users.*\"]\nlevel = \"confidential\"\n",
    );
    let run = env.run(&[&["impact", "--config", "classify.toml"][..], &inputs].concat());
    let impact = &lines(&run.stdout)[0];
    assert_eq!(impact["sensitivity"], "confidential");
    assert_eq!(
        impact["severity"], "critical",
        "read, and still after the revoke"
    );
    let run = env.run(&[&["impact", "--config", "classify.toml"][..], &inputs[..3]].concat());
    let impact = &lines(&run.stdout)[0];
    assert_eq!(impact["severity"], "high", "read while it stood");
    // Without the two reads after the revoke: no such alert.
    let run = env.run(&[&["replay"][..], &inputs[..3]].concat());
    assert!(!run.stdout.contains("still_readable"), "{}", run.stdout);
}

/// The same impact from a Parquet archive of the same logs as from the JSON lines, volumes
/// included (the archive keeps `rows`; impact reads that column).
#[test]
fn impact_from_a_parquet_archive_is_byte_identical_to_impact_from_the_json_lines() {
    let env = TestEnv::new();
    let inputs = still_readable_inputs();
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let from_lines = env.run(&[&["impact"][..], &inputs].concat());
    assert_eq!(from_lines.code, 0, "{}", from_lines.stderr);
    assert!(
        from_lines.stdout.contains("\"rows\":"),
        "volumes to compare"
    );
    let archived = env.run(&[&["archive", "-q", "--out", "archive"][..], &inputs].concat());
    assert_eq!(archived.code, 0, "{}", archived.stderr);
    let from_parquet = env.run(&["impact", "archive"]);
    assert_eq!(from_parquet.code, 0, "{}", from_parquet.stderr);
    assert_eq!(from_parquet.stdout, from_lines.stdout);
}

/// The sample and its still-readable variant (tests/data/still-readable), in that order.
fn still_readable_inputs() -> Vec<String> {
    [
        "sample-logs/incident.jsonl",
        "sample-logs/permissions.jsonl",
        "tests/data/still-readable/permissions.jsonl",
        "tests/data/still-readable/after.jsonl",
    ]
    .map(|p| repo(p).to_string_lossy().into_owned())
    .to_vec()
}

/// A Snowflake day: four analysts read `PROD.HR.PEOPLE` for days; `GRANT SELECT ON ALL TABLES
/// IN SCHEMA PROD.HR TO ROLE PUBLIC`; newcomers read it — `nina` its harmless columns, `omar`
/// (`read_ssn`) its `SSN` too; the grant is revoked.
fn snowflake_people(read_ssn: bool) -> String {
    let mut log = String::new();
    let access = |log: &mut String, at: &str, who: &str, columns: &[&str]| {
        let columns: Vec<String> = columns
            .iter()
            .map(|c| format!("{{\"columnId\":1,\"columnName\":\"{c}\"}}"))
            .collect();
        log.push_str(&format!(
            "{{\"QUERY_ID\":\"q\",\"QUERY_START_TIME\":\"{at}\",\"USER_NAME\":\"{who}\",\"BASE_OBJECTS_ACCESSED\":[{{\"objectDomain\":\"Table\",\"objectId\":7,\"objectName\":\"PROD.HR.PEOPLE\",\"columns\":[{}]}}]}}\n",
            columns.join(",")
        ));
    };
    let change = |log: &mut String, at: &str, verb: &str| {
        let (kind, text) = match verb {
            "GRANT" => (
                "GRANT",
                "grant select on all tables in schema prod.hr to role public",
            ),
            _ => (
                "REVOKE",
                "revoke select on all tables in schema prod.hr from role public",
            ),
        };
        log.push_str(&format!(
            "{{\"QUERY_ID\":\"g\",\"QUERY_TEXT\":\"{text}\",\"DATABASE_NAME\":\"PROD\",\"SCHEMA_NAME\":\"HR\",\"QUERY_TYPE\":\"{kind}\",\"USER_NAME\":\"SECADMIN\",\"EXECUTION_STATUS\":\"SUCCESS\",\"START_TIME\":\"{at}\",\"END_TIME\":\"{at}\"}}\n"
        ));
    };
    for day in 1..=3 {
        for who in ["ANN", "BEA", "CAL", "DAN"] {
            access(
                &mut log,
                &format!("2026-03-0{day} 09:00:00.000 +0000"),
                who,
                &["NAME", "SSN"],
            );
        }
    }
    change(&mut log, "2026-03-04 10:00:00.000 +0000", "GRANT");
    access(
        &mut log,
        "2026-03-04 10:05:00.000 +0000",
        "NINA",
        &["NAME", "DEPT"],
    );
    access(&mut log, "2026-03-04 10:06:00.000 +0000", "NINA", &["NAME"]);
    let omar: &[&str] = if read_ssn {
        &["NAME", "SSN"]
    } else {
        &["DEPT"]
    };
    access(&mut log, "2026-03-04 10:07:00.000 +0000", "OMAR", omar);
    change(&mut log, "2026-03-04 11:00:00.000 +0000", "REVOKE");
    log
}

const PEOPLE_CLASSIFIED: &str = r#"[input]
format = "snowflake"

[detect]
learn = "1d"

[[classify]]
tables = ["PROD.HR.*"]
level = "internal"

[[classify]]
tables = ["PROD.HR.PEOPLE"]
columns = ["ssn", "*_email"]
level = "restricted"
"#;

#[test]
fn the_columns_read_are_named_and_weigh_the_verdict_from_snowflake_and_its_archive() {
    let env = TestEnv::new();
    env.write("c.toml", PEOPLE_CLASSIFIED);
    env.write("ssn.jsonl", snowflake_people(true));
    env.write("harmless.jsonl", snowflake_people(false));
    let run = env.run(&["impact", "--config", "c.toml", "ssn.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let impacts = lines(&run.stdout);
    let [impact] = impacts.as_slice() else {
        panic!("{impacts:#?}")
    };
    assert_eq!(impact["did_read_count"], 2, "{impact:#}");
    let reads = |who: &str| {
        let principal = (impact["did_read"].as_array().unwrap().iter())
            .find(|p| p["principal"] == who)
            .unwrap_or_else(|| panic!("{who}: {impact:#}"));
        principal["tables"][0].clone()
    };
    let (nina, omar) = (reads("NINA"), reads("OMAR"));
    assert_eq!(
        nina["columns"],
        serde_json::json!(["DEPT", "NAME"]),
        "every read's, together"
    );
    assert_eq!(nina["sensitivity"], "internal", "no restricted column read");
    assert_eq!(omar["columns"], serde_json::json!(["NAME", "SSN"]));
    assert_eq!(omar["sensitivity"], "restricted");
    assert_eq!(
        impact["sensitivity"], "restricted",
        "what the grant laid open"
    );
    assert_eq!(impact["severity"], "critical", "the SSN column was read");

    // Nobody new read a restricted column: the same exposure, a lesser severity.
    let harmless = env.run(&["impact", "--config", "c.toml", "harmless.jsonl"]);
    assert_eq!(harmless.code, 0, "{}", harmless.stderr);
    let harmless = lines(&harmless.stdout);
    assert_eq!(harmless[0]["sensitivity"], "restricted");
    assert_eq!(harmless[0]["severity"], "medium", "{:#}", harmless[0]);

    // The notification list carries them.
    let csv = env.run(&[
        "impact",
        "--config",
        "c.toml",
        "--output",
        "csv",
        "ssn.jsonl",
    ]);
    assert_eq!(csv.code, 0, "{}", csv.stderr);
    assert!(
        csv.stdout
            .lines()
            .next()
            .unwrap()
            .ends_with(",columns,sensitivity")
    );
    assert!(
        csv.stdout
            .lines()
            .any(|l| l.contains(",OMAR,PROD.HR.PEOPLE,") && l.ends_with(",NAME;SSN,restricted")),
        "{}",
        csv.stdout
    );

    // The archive keeps the columns: impact from it is impact from the logs.
    let archived = env.run(&[
        "archive",
        "-q",
        "--config",
        "c.toml",
        "--out",
        "archive",
        "ssn.jsonl",
    ]);
    assert_eq!(archived.code, 0, "{}", archived.stderr);
    env.write(
        "archive.toml",
        PEOPLE_CLASSIFIED.replace("format = \"snowflake\"", "format = \"auto\""),
    );
    let from_parquet = env.run(&["impact", "--config", "archive.toml", "archive"]);
    assert_eq!(from_parquet.code, 0, "{}", from_parquet.stderr);
    assert_eq!(from_parquet.stdout, run.stdout);
}

#[test]
fn snowflake_tag_references_rate_the_impact_as_the_same_classify_rules_do() {
    let env = TestEnv::new();
    env.write("ssn.jsonl", snowflake_people(true));
    env.write("classified.toml", PEOPLE_CLASSIFIED);
    // What the warehouse holds: its classification's privacy tag on SSN, a governance tag on
    // the schema; [tags] says what they mean.
    env.write(
        "tags.csv",
        "TAG_DATABASE,TAG_SCHEMA,TAG_ID,TAG_NAME,TAG_VALUE,OBJECT_DATABASE,OBJECT_SCHEMA,OBJECT_ID,OBJECT_NAME,OBJECT_DELETED,DOMAIN,COLUMN_ID,COLUMN_NAME,APPLY_METHOD\n\
         SNOWFLAKE,CORE,1,PRIVACY_CATEGORY,IDENTIFIER,PROD,HR,7,PEOPLE,,COLUMN,3,SSN,CLASSIFIED\n\
         GOV,TAGS,2,SENSITIVITY,internal,PROD,,9,HR,,SCHEMA,,,MANUAL\n",
    );
    env.write(
        "tagged.toml",
        "[input]\nformat = \"snowflake\"\n\n[detect]\nlearn = \"1d\"\n\n[tags]\n\"PRIVACY_CATEGORY=IDENTIFIER\" = \"restricted\"\nSENSITIVITY = \"value\"\n",
    );
    let classified = env.run(&["impact", "--config", "classified.toml", "ssn.jsonl"]);
    assert_eq!(classified.code, 0, "{}", classified.stderr);
    let tagged = env.run(&[
        "impact",
        "--config",
        "tagged.toml",
        "--tags",
        "tags.csv",
        "ssn.jsonl",
    ]);
    assert_eq!(tagged.code, 0, "{}", tagged.stderr);
    assert!(
        tagged.stdout.contains("\"severity\":\"critical\""),
        "{}",
        tagged.stdout
    );
    assert_eq!(tagged.stdout, classified.stdout);
    // The alerts carry it as well.
    let replay = env.run(&[
        "replay",
        "--config",
        "tagged.toml",
        "--tags",
        "tags.csv",
        "ssn.jsonl",
    ]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    let alerts = lines(&replay.stdout);
    assert!(
        !alerts.is_empty() && alerts.iter().all(|a| a["sensitivity"] == "restricted"),
        "{}",
        replay.stdout
    );
    // A tag file that rates nothing is refused, naming the file, the line and the tags.
    let unmapped = env.run(&[
        "impact",
        "--config",
        "classified.toml",
        "--tags",
        "tags.csv",
        "ssn.jsonl",
    ]);
    assert_eq!(unmapped.code, 2, "{}", unmapped.stderr);
    assert!(
        unmapped.stderr.contains("tags.csv:1") && unmapped.stderr.contains("PRIVACY_CATEGORY"),
        "{}",
        unmapped.stderr
    );
}

/// Events of `lines` (canonical JSON lines) before `at` (epoch ms), and the others, each in
/// their order.
fn split_at(lines: &[String], at: i64) -> (Vec<String>, Vec<String>) {
    lines.iter().cloned().partition(|line| {
        let value: Value = serde_json::from_str(line).unwrap();
        let ms = match &value["ts"] {
            Value::Number(n) => n.as_i64().unwrap(),
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis(),
            other => panic!("{other}"),
        };
        ms < at
    })
}

#[test]
fn impact_from_the_evidence_a_learned_and_killed_watch_kept_is_impact_from_the_logs() {
    let env = TestEnv::new();
    let mut all = Vec::new();
    for input in still_readable_inputs() {
        all.extend(
            std::fs::read_to_string(input)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    // History until the incident's day, learned; then the day as a live log.
    let day = chrono::DateTime::parse_from_rfc3339("2026-03-16T00:00:00Z").unwrap();
    let (history, live) = split_at(&all, day.timestamp_millis());
    let text = |lines: &[String]| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    env.write("history.jsonl", text(&history));
    env.write("watch.toml", "");
    let learned = env.run(&[
        "learn",
        "--config",
        "watch.toml",
        "--keep-reads",
        "--state-dir",
        "state",
        "history.jsonl",
    ]);
    assert_eq!(learned.code, 0, "{}", learned.stderr);

    let kept = || -> usize {
        let dir = env.path("state/evidence");
        let mut lines = 0;
        for file in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            lines += text.lines().count();
        }
        lines
    };
    assert_eq!(kept(), history.len(), "learn kept the history");

    // The live log in two parts, the watch killed after the first before any checkpoint:
    // what it kept of the first part is cut on restart, and read again.
    // (Most of it: more than the evidence's write buffer, so that some reaches the disk.)
    let (first, second) = live.split_at(live.len() * 9 / 10);
    env.write("live.jsonl", text(first));
    let args = ["--keep-reads", "--from-beginning", "live.jsonl"];
    let never = [&args[..], &["--checkpoint-every", "1h"]].concat();
    let watcher = super::util::Watcher::start(&env, &never);
    watcher.wait_lines(first.len() as u64);
    watcher.kill9();
    let on_disk = kept();
    assert!(
        on_disk > history.len(),
        "{on_disk} events on disk: some to cut"
    );
    super::util::append(&env.path("live.jsonl"), text(second));
    let watcher = super::util::Watcher::start(&env, &args);
    // Every event kept exactly once.
    super::util::eventually(std::time::Duration::from_secs(30), || {
        let n = kept();
        (n >= all.len())
            .then_some(())
            .ok_or_else(|| format!("{n} of {} events kept", all.len()))
    });
    let (code, _) = watcher.stop();
    assert_eq!(code, 0);
    assert_eq!(kept(), all.len(), "nothing kept twice");

    let from_state = env.run(&["impact", "--config", "watch.toml", "--state-dir", "state"]);
    assert_eq!(from_state.code, 0, "{}", from_state.stderr);
    let from_logs = env.run(&[
        "impact",
        "--config",
        "watch.toml",
        "history.jsonl",
        "live.jsonl",
    ]);
    assert_eq!(from_logs.code, 0, "{}", from_logs.stderr);
    assert!(
        from_logs.stdout.contains("\"after_revoke_count\":2"),
        "{}",
        from_logs.stdout
    );
    assert_eq!(from_state.stdout, from_logs.stdout);

    // A state dir without evidence says so.
    let learned = env.run(&[
        "learn",
        "--config",
        "watch.toml",
        "--state-dir",
        "bare",
        "history.jsonl",
    ]);
    assert_eq!(learned.code, 0, "{}", learned.stderr);
    let none = env.run(&["impact", "--state-dir", "bare"]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("keeps no evidence"), "{}", none.stderr);
}
