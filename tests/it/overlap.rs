//! Logs as companies have them: one period split over several files (regions, hosts, the parts
//! of an unload), given in any order, and files out of order beyond `lateness`. The alerts must
//! be those of the same events in one time-ordered file, byte for byte.

use super::TestEnv;
use super::util::{Lcg, cloudtrail_file, cloudtrail_read, repo};

fn sample_lines() -> Vec<String> {
    std::fs::read_to_string(repo("sample-logs/incident.jsonl"))
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect()
}

fn replay(env: &TestEnv, extra: &[&str], files: &[String]) -> super::util::Run {
    let mut args = vec!["replay", "--no-progress"];
    args.extend_from_slice(extra);
    args.extend(files.iter().map(String::as_str));
    env.run(&args)
}

#[test]
fn the_sample_split_as_two_regions_would_write_it_gives_the_same_alerts() {
    let env = TestEnv::new();
    let whole = replay(
        &env,
        &[],
        &[repo("sample-logs/incident.jsonl").display().to_string()],
    );
    assert_eq!(whole.code, 0);
    assert_eq!(whole.alerts().len(), 2);
    let lines = sample_lines();
    let even: String = lines.iter().step_by(2).cloned().collect();
    let odd: String = lines.iter().skip(1).step_by(2).cloned().collect();
    let r1 = env.write("us-east-1.jsonl", even).display().to_string();
    let r2 = env.write("eu-west-1.jsonl", odd).display().to_string();
    for threads in ["1", "2"] {
        for files in [[r1.clone(), r2.clone()], [r2.clone(), r1.clone()]] {
            let split = replay(&env, &["--threads", threads], &files);
            assert_eq!(split.code, 0, "{}", split.stderr);
            assert_eq!(split.stdout, whole.stdout, "threads {threads}, {files:?}");
            assert!(
                split
                    .stderr
                    .contains("3707 events, 3577 reads, 0 malformed, 0 late"),
                "{}",
                split.stderr
            );
        }
    }
    let closed = &whole.alerts()[1];
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["principals"].as_array().unwrap().len(), 40);
}

#[test]
fn any_split_into_one_to_eight_files_in_any_order_gives_the_same_alerts() {
    let env = TestEnv::new();
    let whole = replay(
        &env,
        &[],
        &[repo("sample-logs/incident.jsonl").display().to_string()],
    );
    let lines = sample_lines();
    let mut rng = Lcg(7);
    for case in 0..8 {
        let files = 1 + rng.below(8) as usize;
        let mut parts = vec![String::new(); files];
        // Runs of random length to random files: each file keeps its lines' order.
        let mut i = 0;
        while i < lines.len() {
            let run = 1 + rng.below(400) as usize;
            let part = rng.below(files as u64) as usize;
            for line in &lines[i..(i + run).min(lines.len())] {
                parts[part].push_str(line);
            }
            i += run;
        }
        let mut names: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(k, text)| env.write(&format!("c{case}-part{k}.jsonl"), text))
            .map(|p| p.display().to_string())
            .collect();
        // Any order on the command line.
        for k in (1..names.len()).rev() {
            names.swap(k, rng.below((k + 1) as u64) as usize);
        }
        let threads = ["1", "2", "3"][rng.below(3) as usize];
        let split = replay(&env, &["--threads", threads], &names);
        assert_eq!(split.code, 0, "{}", split.stderr);
        assert_eq!(split.stdout, whole.stdout, "case {case}: {files} files");
        assert!(split.stderr.contains(" 0 late"), "{}", split.stderr);
    }
}

#[test]
fn a_cloudtrail_tree_of_two_regions_counts_every_reader() {
    let env = TestEnv::new();
    env.write(
        "exposure.toml",
        "[detect]\nlearn = \"1h\"\nmin_principals = 3\nlateness = \"1m\"\n",
    );
    // A day of a known reader in both regions, then six new readers within minutes: three
    // in each region. Files per region every 5 minutes, as CloudTrail delivers them.
    for (region, users) in [
        ("us-east-1", ["eve", "mallory", "trudy"]),
        ("eu-west-1", ["oscar", "peggy", "victor"]),
    ] {
        for hour in 0..3 {
            let time = format!("2026-03-18T0{hour}:00:00Z");
            cloudtrail_file(
                &env,
                &format!(
                    "AWSLogs/123456789012/CloudTrail/{region}/2026/03/18/{region}_0{hour}00.json.gz"
                ),
                vec![cloudtrail_read(
                    &time,
                    "etl",
                    region,
                    "salaries/2026-03.csv",
                )],
            );
        }
        for (i, user) in users.iter().enumerate() {
            let time = format!(
                "2026-03-18T04:0{}:{}0Z",
                i,
                if region == "us-east-1" { 1 } else { 3 }
            );
            cloudtrail_file(
                &env,
                &format!(
                    "AWSLogs/123456789012/CloudTrail/{region}/2026/03/18/{region}_040{i}.json.gz"
                ),
                vec![cloudtrail_read(&time, user, region, "salaries/2026-03.csv")],
            );
        }
    }
    let run = env.run(&[
        "replay",
        "--config",
        "exposure.toml",
        "--format",
        "cloudtrail",
        "AWSLogs",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(" 0 late"), "{}", run.stderr);
    let alerts = run.alerts();
    let closed = alerts
        .iter()
        .find(|a| a["status"] == "closed")
        .expect("a window");
    assert_eq!(
        closed["principals"].as_array().unwrap().len(),
        6,
        "{closed}"
    );
}

#[test]
fn a_snowflake_unload_in_three_parts_gives_the_alerts_of_the_whole() {
    let env = TestEnv::new();
    env.write(
        "exposure.toml",
        "[detect]\nlearn = \"1h\"\nmin_principals = 3\nlateness = \"1m\"\n",
    );
    let row = |minute: u32, user: &str| {
        serde_json::json!({
            "QUERY_ID": format!("q-{minute}-{user}"),
            "QUERY_START_TIME": format!("2026-03-18 {:02}:{:02}:00.000 +0000", minute / 60, minute % 60),
            "USER_NAME": user,
            "DIRECT_OBJECTS_ACCESSED": [{"objectDomain": "Table", "objectId": 1, "objectName": "HR.PUBLIC.SALARIES", "columns": []}],
            "BASE_OBJECTS_ACCESSED": [{"objectDomain": "Table", "objectId": 1, "objectName": "HR.PUBLIC.SALARIES", "columns": []}],
            "OBJECTS_MODIFIED": []
        })
        .to_string()
            + "\n"
    };
    let mut rows = Vec::new();
    for minute in (0..180).step_by(10) {
        rows.push(row(minute, "ETL"));
    }
    for (i, user) in ["EVE", "MALLORY", "TRUDY", "OSCAR", "PEGGY"]
        .iter()
        .enumerate()
    {
        rows.push(row(200 + i as u32, user));
    }
    let whole: String = rows.concat();
    env.write("whole.jsonl", &whole);
    // An unload cut into three files, each in time order, the period spread over all three.
    for part in 0..3 {
        let text: String = rows.iter().skip(part).step_by(3).cloned().collect();
        env.write(&format!("unload/data_0_0_{part}.json"), text);
    }
    let args = |input: &str| {
        vec![
            "replay".to_string(),
            "--config".into(),
            "exposure.toml".into(),
            "--format".into(),
            "snowflake".into(),
            input.into(),
        ]
    };
    let run = |input: &str| {
        let args = args(input);
        env.run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let (whole, parts) = (run("whole.jsonl"), run("unload"));
    assert_eq!(parts.code, 0, "{}", parts.stderr);
    assert_eq!(whole.alerts().len(), 2, "{}", whole.stderr);
    assert_eq!(parts.stdout, whole.stdout);
    assert!(parts.stderr.contains(" 0 late"), "{}", parts.stderr);
}

#[test]
fn an_input_out_of_order_beyond_lateness_is_sorted_unless_refused() {
    let env = TestEnv::new();
    let whole = replay(
        &env,
        &[],
        &[repo("sample-logs/incident.jsonl").display().to_string()],
    );
    let mut lines = sample_lines();
    let mut rng = Lcg(42);
    for k in (1..lines.len()).rev() {
        lines.swap(k, rng.below((k + 1) as u64) as usize);
    }
    let shuffled = env
        .write("unordered.jsonl", lines.concat())
        .display()
        .to_string();

    let sorted = replay(&env, &[], std::slice::from_ref(&shuffled));
    assert_eq!(sorted.code, 0, "{}", sorted.stderr);
    assert_eq!(sorted.stdout, whole.stdout);
    assert!(
        sorted.stderr.contains("out of order beyond lateness")
            && sorted.stderr.contains("sorting every event by time"),
        "{}",
        sorted.stderr
    );
    assert!(sorted.stderr.contains(" 0 late"), "{}", sorted.stderr);

    // Beyond the memory budget, through sorted runs on disk: the same.
    let spilled = replay(
        &env,
        &["--sort-memory", "64K"],
        std::slice::from_ref(&shuffled),
    );
    assert_eq!(spilled.stdout, whole.stdout);
    assert!(
        spilled.stderr.contains("runs on disk"),
        "{}",
        spilled.stderr
    );

    // Refused: the late events are reported, left out, and the exit code says so.
    let refused = replay(&env, &["--no-sort"], std::slice::from_ref(&shuffled));
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("left out (--no-sort)"),
        "{}",
        refused.stderr
    );
    assert_ne!(refused.stdout, whole.stdout);

    // Stdin cannot be read twice: a clear error, not a wrong result.
    let piped = env.run_with_stdin(&["replay", "-"], lines.concat().as_bytes());
    assert_eq!(piped.code, 1, "{}", piped.stderr);
    assert!(
        piped.stderr.contains("stdin cannot be read twice"),
        "{}",
        piped.stderr
    );
    assert_eq!(piped.stdout, "", "no alert of a wrong result");
}

#[test]
fn learn_sorts_an_unordered_history_too() {
    let env = TestEnv::new();
    let mut lines = sample_lines();
    lines.reverse();
    let history = env
        .write("history.jsonl", lines.concat())
        .display()
        .to_string();
    let run = env.run(&["learn", "--state-dir", "state", &history]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("sorting every event by time"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(" 0 late"), "{}", run.stderr);
}

#[test]
fn one_event_from_a_wrong_clock_is_quarantined_not_allowed_to_blind_the_detector() {
    let env = TestEnv::new();
    let whole = replay(
        &env,
        &[],
        &[repo("sample-logs/incident.jsonl").display().to_string()],
    );
    let mut lines = sample_lines();
    lines.insert(
        1800,
        "{\"ts\":\"2027-01-05T09:00:00Z\",\"principal\":\"svc-etl@corp.example\",\"table\":\"warehouse.users.pii\",\"action\":\"INSERT\"}\n".into(),
    );
    let file = env
        .write("clock.jsonl", lines.concat())
        .display()
        .to_string();
    for threads in ["1", "2"] {
        let run = replay(&env, &["--threads", threads], std::slice::from_ref(&file));
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stdout, whole.stdout, "the same windows as without it");
        assert!(
            run.stderr.contains("clock.jsonl:1801: quarantined:"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(" 0 late")
                && run
                    .stderr
                    .contains("1 events quarantined (far ahead of their input)"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_real_jump_in_time_is_not_quarantined() {
    let env = TestEnv::new();
    // Two quiet days between the lines: the next line confirms the jump.
    let text = "{\"ts\":\"2026-03-14T10:00:00Z\",\"principal\":\"a\",\"table\":\"t\"}\n\
                {\"ts\":\"2026-03-16T10:00:00Z\",\"principal\":\"b\",\"table\":\"t\"}\n\
                {\"ts\":\"2026-03-16T10:00:01Z\",\"principal\":\"c\",\"table\":\"t\"}\n\
                {\"ts\":\"2026-03-18T10:00:00Z\",\"principal\":\"d\",\"table\":\"t\"}\n";
    let file = env.write("gaps.jsonl", text).display().to_string();
    let run = replay(&env, &[], &[file]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("4 events, 4 reads, 0 malformed, 0 late"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("quarantined"), "{}", run.stderr);
}
