//! Exposures through public access: a bucket made public and read anonymously from the
//! internet (`tests/data/formats/cloudtrail/public/`, its README says what happens). Replayed
//! as CloudTrail delivers it and watched as its files arrive, it gives one grant alert and one
//! window of every anonymous address, caused by the ACL change and ended by the public access
//! block, byte for byte the same alerts.

use super::TestEnv;
use super::util::{Watcher, append, cloudtrail_file, repo};
use serde_json::Value;
use std::time::Duration;

const FIXTURE: &str = "tests/data/formats/cloudtrail/public";

/// Once the window closed, stops `watcher` and checks it said what replay says (`want`), byte
/// for byte.
fn stops_with_the_alerts_of_replay(watcher: Watcher, want: &str) {
    watcher.wait_for("closed", Duration::from_secs(10), |a| {
        a["status"] == "closed"
    });
    let (code, got) = watcher.stop();
    assert_eq!(code, 0);
    let want: Vec<&str> = want.lines().collect();
    assert_eq!(
        got, want,
        "watch and replay give the same alerts, byte for byte"
    );
}

fn records() -> Vec<Value> {
    std::fs::read_to_string(repo(&format!("{FIXTURE}/records.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The records as CloudTrail delivers them: a gzipped log file per five minutes, in the
/// account's and region's folder.
fn deliver(env: &TestEnv, records: &[Value]) -> Vec<String> {
    let mut files: Vec<(String, Vec<Value>)> = Vec::new();
    for record in records {
        let time = record["eventTime"].as_str().unwrap();
        // 2026-03-18T10:07:00Z → 20260318T1005Z
        let (date, clock) = time.split_once('T').unwrap();
        let minute: u32 = clock[3..5].parse().unwrap();
        let name = format!(
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/03/18/\
             123456789012_CloudTrail_us-east-1_{}T{}{:02}Z_x.json.gz",
            date.replace('-', ""),
            &clock[..2],
            minute - minute % 5
        );
        match files.last_mut() {
            Some((last, batch)) if *last == name => batch.push(record.clone()),
            _ => files.push((name, vec![record.clone()])),
        }
    }
    for (name, batch) in &files {
        cloudtrail_file(env, name, batch.clone());
    }
    files.into_iter().map(|(name, _)| name).collect()
}

#[test]
fn a_bucket_made_public_and_read_anonymously_is_one_window_of_every_address() {
    let env = TestEnv::new();
    let want = std::fs::read_to_string(repo(&format!("{FIXTURE}/expected.jsonl"))).unwrap();
    let run = env.run(&[
        "replay",
        repo(&format!("{FIXTURE}/records.jsonl")).to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(" 0 malformed"), "{}", run.stderr);
    assert_eq!(run.stdout, want);
    let alerts = run.alerts();
    let [grant, open, closed] = alerts.as_slice() else {
        panic!("{alerts:#?}")
    };
    assert_eq!(
        (
            grant["status"].as_str(),
            grant["change"]["grantee"].as_str()
        ),
        (Some("grant"), Some("allUsers"))
    );
    // At the first anonymous read: one reader is enough.
    assert_eq!(open["status"], "open");
    assert_eq!(open["window_start"], "2026-03-18T10:05:00.000Z");
    assert_eq!(open["principals"][0]["principal"], "anonymous@203.0.113.7");
    assert_eq!(open["severity"], "critical");
    assert_eq!(open["cause"]["grantee"], "allUsers");
    assert_eq!(
        open["cause"]["actor"],
        "arn:aws:iam::123456789012:user/ops-bot"
    );
    // Every address a principal; the access block is where the exposure ended.
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["novel_principals"], 12);
    assert!(
        closed["principals"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["principal"].as_str().unwrap().starts_with("anonymous@")),
        "{closed}"
    );
    assert_eq!(closed["exposed_until"], "2026-03-18T10:44:30.000Z");

    // As delivered: gzipped files per five minutes, read as a tree.
    deliver(&env, &records());
    let delivered = env.run(&["replay", "--format", "cloudtrail", "AWSLogs"]);
    assert_eq!(delivered.code, 0, "{}", delivered.stderr);
    assert_eq!(
        delivered.stdout, want,
        "the delivered files give the same alerts"
    );

    // One shared principal instead, when asked.
    env.write("shared.toml", "[input]\nanonymous = \"shared\"\n");
    let shared = env.run(&["replay", "--config", "shared.toml", "AWSLogs"]);
    let alerts = shared.alerts();
    let closed = alerts.iter().find(|a| a["status"] == "closed").unwrap();
    assert_eq!(closed["novel_principals"], 1, "{closed}");
    assert_eq!(closed["principals"][0]["principal"], "anonymous");
    assert_eq!(closed["principals"][0]["reads"], 13);
}

#[test]
fn watch_sees_the_public_read_as_its_files_arrive_as_replay_does() {
    let env = TestEnv::new();
    let want = std::fs::read_to_string(repo(&format!("{FIXTURE}/expected.jsonl"))).unwrap();
    std::fs::create_dir_all(env.path("AWSLogs")).unwrap();
    env.write("watch.toml", "[input]\nformat = \"cloudtrail\"\n");
    let watcher = Watcher::start(&env, &["--from-beginning", "AWSLogs/**/*.json.gz"]);
    // The files arrive one by one, as CloudTrail writes them.
    let records = records();
    let staging = TestEnv::new();
    let names = deliver(&staging, &records);
    for name in &names {
        let before = watcher.metric("events_read_total").unwrap_or(0.0);
        let bytes = std::fs::read(staging.path(name)).unwrap();
        let path = env.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        append(&path, bytes);
        super::util::eventually(Duration::from_secs(10), || {
            let read = watcher.metric("events_read_total").unwrap_or(0.0)
                + watcher.metric("not_access_total").unwrap_or(0.0);
            (read > before)
                .then_some(())
                .ok_or(format!("{name} not read yet"))
        });
    }
    let open = watcher.wait_for("open", Duration::from_secs(10), |a| a["status"] == "open");
    assert_eq!(open["principals"][0]["principal"], "anonymous@203.0.113.7");
    // The analysts' read an hour later closes the window; a stop ends the rest.
    stops_with_the_alerts_of_replay(watcher, &want);
}

const S3_ACCESS: &str = "tests/data/formats/s3_access";

#[test]
fn s3_server_access_logs_as_delivered_show_the_public_read_recognised_or_named() {
    let env = TestEnv::new();
    let want = std::fs::read_to_string(repo(&format!("{S3_ACCESS}/expected.jsonl"))).unwrap();
    let logs = repo(&format!("{S3_ACCESS}/logs"));
    for format in ["auto", "s3-access"] {
        let run = env.run(&["replay", "--format", format, logs.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.stderr.contains(" 0 malformed"), "{}", run.stderr);
        assert!(
            run.stderr.contains("1 failed calls, 1 other calls"),
            "{}",
            run.stderr
        );
        assert_eq!(run.stdout, want, "--format {format}");
    }
    let alerts: Vec<Value> = want
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let [open, closed] = alerts.as_slice() else {
        panic!("{alerts:#?}")
    };
    assert_eq!(open["window_start"], "2026-03-18T10:05:00.000Z");
    assert_eq!(open["severity"], "critical");
    assert_eq!(closed["novel_principals"], 9);
    assert_eq!(closed["table"], "acme-exports/salaries");
    // The files in another order (delivery is best effort, late, and in no order): the same.
    let mut files: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.reverse();
    let args: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let run = env.run(&[&["replay"][..], &args].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, want, "the files in reverse order");
}

#[test]
fn watch_reads_s3_server_access_logs_as_s3_delivers_them_as_replay_does() {
    let env = TestEnv::new();
    let want = std::fs::read_to_string(repo(&format!("{S3_ACCESS}/expected.jsonl"))).unwrap();
    std::fs::create_dir_all(env.path("logs")).unwrap();
    env.write("watch.toml", "[input]\nformat = \"s3-access\"\n");
    let watcher = Watcher::start(&env, &["--from-beginning", "logs/*"]);
    let mut files: Vec<_> = std::fs::read_dir(repo(&format!("{S3_ACCESS}/logs")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // Each file appears whole, in delivery order, once the one before was read.
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let path = env.path(&format!(
            "logs/{}",
            file.file_name().unwrap().to_str().unwrap()
        ));
        watcher.append_and_wait(&path, text);
    }
    stops_with_the_alerts_of_replay(watcher, &want);
}

/// The public-bucket records (as one JSON text each), shipped four ways: CloudWatch Logs
/// subscription batches as Firehose writes them to S3 (gzip, batches back to back, a control
/// message first), Logstash documents (`@timestamp`, `@version`, CloudTrail's `eventTime`
/// dropped as Elastic's integration does), Splunk HEC events (several to a line), and Fluent
/// Bit records holding each as text in `log`.
pub(crate) fn shipped(env: &TestEnv) -> Vec<(&'static str, Vec<&'static str>)> {
    use std::io::Write;
    let records = records();
    let text: Vec<String> = records.iter().map(Value::to_string).collect();
    // CloudWatch: the trail's log group, 5 events a batch.
    let mut firehose = String::from(
        r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1773828000000,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#,
    );
    for (n, batch) in text.chunks(5).enumerate() {
        let events: Vec<Value> = batch
            .iter()
            .enumerate()
            .map(|(i, m)| serde_json::json!({"id": format!("{n}{i}"), "timestamp": 1773828000000u64, "message": m}))
            .collect();
        firehose.push_str(
            &serde_json::json!({
                "messageType": "DATA_MESSAGE", "owner": "123456789012",
                "logGroup": "aws-cloudtrail-logs-123456789012", "logStream": "123456789012_CloudTrail_us-east-1",
                "subscriptionFilters": ["to-firehose"], "logEvents": events,
            })
            .to_string(),
        );
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(firehose.as_bytes()).unwrap();
    env.write(
        "firehose/2026/03/18/10/cloudtrail-to-s3-1-2026-03-18-10-00-00-x.gz",
        gz.finish().unwrap(),
    );
    // Logstash: @timestamp instead of eventTime.
    let logstash: String = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let time = r.as_object_mut().unwrap().remove("eventTime").unwrap();
            r["@timestamp"] = time;
            r["@version"] = "1".into();
            format!("{r}\n")
        })
        .collect();
    env.write("logstash.jsonl", logstash);
    // Splunk HEC: three events a line, as a request body holds them.
    let hec: String = records
        .chunks(3)
        .map(|chunk| {
            let events: Vec<String> = chunk
                .iter()
                .map(|r| serde_json::json!({"time": 1773828000.5, "host": "trail", "source": "s3://trail", "sourcetype": "aws:cloudtrail", "event": r}).to_string())
                .collect();
            format!("{}\n", events.join(""))
        })
        .collect();
    env.write("hec.json", hec);
    let fluent: String = text
        .iter()
        .map(|t| {
            format!(
                "{}\n",
                serde_json::json!({"log": t, "stream": "stdout", "time": "2026-03-18T11:59:59Z"})
            )
        })
        .collect();
    env.write("fluent.jsonl", fluent);
    env.write("fluent.toml", "[input]\nrecord_field = \"log\"\n");
    vec![
        ("CloudWatch Logs via Firehose", vec!["firehose"]),
        ("Logstash", vec!["logstash.jsonl"]),
        ("Splunk HEC", vec!["hec.json"]),
        (
            "Fluent Bit",
            vec!["--config", "fluent.toml", "fluent.jsonl"],
        ),
    ]
}

#[test]
fn cloudtrail_as_shippers_deliver_it_gives_the_alerts_of_the_trail() {
    let env = TestEnv::new();
    let want = std::fs::read_to_string(repo(&format!("{FIXTURE}/expected.jsonl"))).unwrap();
    for (shipper, args) in shipped(&env) {
        let run = env.run(&[&["replay"][..], &args].concat());
        assert_eq!(run.code, 0, "{shipper}: {}", run.stderr);
        assert!(
            run.stderr.contains(" 0 malformed"),
            "{shipper}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("envelope"),
            "{shipper}: the envelope is said: {}",
            run.stderr
        );
        assert_eq!(run.stdout, want, "{shipper}");
    }
    // The control message is counted, not read.
    let run = env.run(&["replay", "firehose"]);
    assert!(
        run.stderr.contains("1 shipper control messages"),
        "{}",
        run.stderr
    );
    // A field mapping a vendor format would not use is refused, naming the key.
    env.write(
        "ts.toml",
        "[input]\nformat = \"cloudtrail\"\n[input.fields]\nts = \"@timestamp\"\n",
    );
    env.run(&["replay", "--config", "ts.toml", "logstash.jsonl"])
        .expect(2, "input.fields.ts");
}

#[test]
fn watch_takes_records_out_of_shipper_envelopes_as_replay_does() {
    let env = TestEnv::new();
    let want = std::fs::read_to_string(repo(&format!("{FIXTURE}/expected.jsonl"))).unwrap();
    let staging = TestEnv::new();
    shipped(&staging);
    env.write("watch.toml", "");
    let log = env.write("logstash.jsonl", "");
    let watcher = Watcher::start(&env, &["logstash.jsonl"]);
    let text = std::fs::read_to_string(staging.path("logstash.jsonl")).unwrap();
    // The history, then the incident as it is shipped, document by document.
    let lines: Vec<&str> = text.lines().collect();
    let history: String = lines[..4].iter().map(|l| format!("{l}\n")).collect();
    watcher.append_and_wait(&log, history);
    for line in &lines[4..] {
        watcher.append_and_wait(&log, format!("{line}\n"));
    }
    stops_with_the_alerts_of_replay(watcher, &want);
}

const GCS: &str = "tests/data/formats/gcs_usage";
const GCS_AUDIT: &str = "tests/data/formats/gcp-audit/storage/records.jsonl";

/// The usage log files of the Cloud Storage story, in delivery (time) order.
fn gcs_usage_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo(&format!("{GCS}/logs")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn a_gcs_bucket_granted_to_all_users_and_read_from_the_internet_is_a_window_with_its_cause() {
    // Usage logs (every request, by address) and the audit log (who signed in, the IAM change):
    // the grant alert at the change, then one window of the twelve new addresses caused by it.
    let env = TestEnv::new();
    let config = repo(&format!("{GCS}/exposure.toml"));
    let config = config.to_str().unwrap();
    let want = std::fs::read_to_string(repo(&format!("{GCS}/expected.jsonl"))).unwrap();
    let audit = repo(GCS_AUDIT);
    let logs = repo(&format!("{GCS}/logs"));
    let run = env.run(&[
        "replay",
        "--config",
        config,
        audit.to_str().unwrap(),
        logs.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(" 0 malformed") && run.stderr.contains("4 header rows"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, want);
    let alerts = run.alerts();
    let [grant, open, closed] = alerts.as_slice() else {
        panic!("{alerts:#?}")
    };
    assert_eq!(grant["status"], "grant");
    assert_eq!(grant["change"]["grantee"], "allUsers");
    assert_eq!(grant["change"]["privilege"], "roles/storage.objectViewer");
    assert_eq!(grant["table"], "acme-exports");
    assert_eq!(open["cause"]["grantee"], "allUsers");
    assert_eq!(closed["table"], "acme-exports/salaries");
    assert_eq!(closed["novel_principals"], 12);
    assert_eq!(closed["exposed_until"], "2026-03-18T10:44:30.123Z");
    assert!(
        (closed["principals"].as_array().unwrap().iter())
            .all(|p| p["principal"].as_str().unwrap().starts_with("address@")),
        "{closed}"
    );
    // The usage files in reverse order, and named: the same.
    let mut files = gcs_usage_files();
    files.reverse();
    let mut args = vec!["replay", "--config", config, audit.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let reversed = env.run(&args);
    assert_eq!(reversed.stdout, want, "{}", reversed.stderr);
    let usage_only = |format: &str| {
        let run = env.run(&[
            "replay",
            "--config",
            config,
            "--format",
            format,
            logs.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout
    };
    assert_eq!(usage_only("gcs-usage"), usage_only("auto"));

    // A bucket only the public reads: each request anonymous, a window at the first.
    env.write(
        "public.toml",
        "[detect]\nlearn = \"1h\"\n[input.gcs_usage]\nrequester = \"anonymous\"\n",
    );
    let public = env.run(&["replay", "--config", "public.toml", logs.to_str().unwrap()]);
    let alerts = public.alerts();
    let first = alerts
        .iter()
        .find(|a| a["status"] == "open")
        .expect("a window");
    assert_eq!(first["window_start"], "2026-03-18T08:10:00.000Z");
    assert_eq!(first["severity"], "critical");
    assert_eq!(first["principals"][0]["principal"], "anonymous@10.20.0.5");
}

#[test]
fn watch_reads_gcs_usage_files_as_they_arrive_as_replay_does() {
    // One file an hour, each appearing whole after its hour, as Cloud Storage delivers them.
    let env = TestEnv::new();
    env.write("watch.toml", "[detect]\nlearn = \"1h\"\n");
    let logs = repo(&format!("{GCS}/logs"));
    let replay = env.run(&["replay", "--config", "watch.toml", logs.to_str().unwrap()]);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert!(
        replay.stdout.contains("\"status\":\"closed\""),
        "{}",
        replay.stdout
    );
    std::fs::create_dir_all(env.path("usage")).unwrap();
    let watcher = Watcher::start(&env, &["--from-beginning", "usage/*"]);
    for file in gcs_usage_files() {
        let name = file.file_name().unwrap().to_str().unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        watcher.append_and_wait(&env.path(&format!("usage/{name}")), text);
    }
    stops_with_the_alerts_of_replay(watcher, &replay.stdout);
}
