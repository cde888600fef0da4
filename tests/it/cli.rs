//! The command line: help, exit codes, configuration errors that name the key, and flags that
//! change detection.

use crate::TestEnv;

#[test]
fn help_reads_well() {
    let env = TestEnv::new();
    let top = env.run(&["--help"]);
    assert_eq!(top.code, 0);
    assert!(
        top.stdout
            .contains("Find exposure windows in data-access logs"),
        "{}",
        top.stdout
    );
    assert!(top.stdout.contains("replay"));
    let replay = env.run(&["replay", "--help"]);
    assert_eq!(replay.code, 0);
    for flag in [
        "--config",
        "--min-principals",
        "--span",
        "--quiet",
        "--forget-after",
        "--lateness",
        "--strict",
        "--out",
    ] {
        assert!(
            replay.stdout.contains(flag),
            "{flag} missing from:\n{}",
            replay.stdout
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new();
    assert_eq!(env.run(&["replay"]).code, 2);
    assert_eq!(env.run(&["frobnicate"]).code, 2);
    let bad_duration = env.run(&["replay", "--span", "soon", "x.jsonl"]);
    assert_eq!(bad_duration.code, 2);
    assert!(
        bad_duration.stderr.contains("bad duration"),
        "{}",
        bad_duration.stderr
    );
    let zero = env.run(&["replay", "--min-principals", "0", "x.jsonl"]);
    assert_eq!(zero.code, 2);
    assert!(
        zero.stderr.contains("detect.min_principals"),
        "{}",
        zero.stderr
    );
}

#[test]
fn config_errors_name_the_key_and_exit_2() {
    let env = TestEnv::new();
    for (text, needle) in [
        (
            "[detect]\nmin_princpals = 3\n",
            "unknown field `min_princpals`",
        ),
        ("[detect]\nquiet = 5\n", "quiet"),
        ("[[tables]]\nmatch = \"hr.[\"\n", "tables[0].match"),
        ("not toml at all", "config file"),
    ] {
        let config = env.write("bad.toml", text);
        let run = env.run(&["replay", "--config", config.to_str().unwrap(), "x.jsonl"]);
        assert_eq!(run.code, 2, "{text:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{text:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("bad.toml") || needle.starts_with("tables"),
            "{}",
            run.stderr
        );
    }
    let missing = env.run(&["replay", "--config", "nope.toml", "x.jsonl"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("cannot read config file nope.toml"),
        "{}",
        missing.stderr
    );
}

/// A tiny log: three regulars learn for a day, then three newcomers read within 10 minutes.
fn tiny_log() -> String {
    let base = 1_773_792_000_000i64; // 2026-03-18T00:00:00Z in ms
    let mut lines = Vec::new();
    for (minute, who) in [(0, "alice"), (10, "bob"), (20, "carol")] {
        lines.push((base + minute * 60_000, who));
    }
    for (minute, who) in [(2000, "x"), (2003, "y"), (2006, "z"), (3000, "alice")] {
        lines.push((base + minute * 60_000, who));
    }
    lines
        .iter()
        .map(|(ts, who)| format!("{{\"ts\":{ts},\"principal\":\"{who}\",\"table\":\"db.t\"}}\n"))
        .collect()
}

#[test]
fn flags_and_config_change_detection() {
    let env = TestEnv::new();
    let log = env.write("tiny.jsonl", tiny_log());
    let log = log.to_str().unwrap();
    let learn = ["--learn", "1h"];

    let default = env.run(&["replay", learn[0], learn[1], log]);
    assert_eq!(default.alerts().len(), 2, "{}", default.stderr);

    let more = env.run(&["replay", learn[0], learn[1], "--min-principals", "4", log]);
    assert_eq!(more.alerts().len(), 0);

    let allowed = env.run(&["replay", learn[0], learn[1], "--allow", "z", log]);
    assert_eq!(allowed.alerts().len(), 0);

    let config = env.write(
        "c.toml",
        "[detect]\nlearn = \"1h\"\n[[tables]]\nmatch = \"db.*\"\nignore = true\n",
    );
    let ignored = env.run(&["replay", "--config", config.to_str().unwrap(), log]);
    assert_eq!(ignored.alerts().len(), 0, "{}", ignored.stdout);

    let fields = env.write(
        "f.toml",
        "[detect]\nlearn = \"1h\"\n[input.fields]\nprincipal = \"who\"\n",
    );
    let renamed = tiny_log().replace("\"principal\"", "\"who\"");
    let renamed_log = env.write("renamed.jsonl", renamed);
    let mapped = env.run(&[
        "replay",
        "--config",
        fields.to_str().unwrap(),
        renamed_log.to_str().unwrap(),
    ]);
    assert_eq!(mapped.stdout, default.stdout);

    let updates = env.run(&["replay", learn[0], learn[1], "--updates", log]);
    assert_eq!(updates.alerts().len(), 2, "three principals never double");
}

#[test]
fn late_events_are_sorted_or_with_no_sort_reported_and_counted() {
    let env = TestEnv::new();
    let log = env.write(
        "late.jsonl",
        "{\"ts\":\"2026-03-18T10:00:00Z\",\"principal\":\"a\",\"table\":\"t\"}\n\
         {\"ts\":\"2026-03-18T11:00:00Z\",\"principal\":\"b\",\"table\":\"t\"}\n\
         {\"ts\":\"2026-03-18T10:30:00Z\",\"principal\":\"c\",\"table\":\"t\"}\n",
    );
    // By default the input is sorted: nothing is late.
    let run = env.run(&["replay", log.to_str().unwrap()]);
    assert_eq!(run.code, 0);
    assert!(
        run.stderr.contains(
            "late.jsonl:3: out of order beyond lateness (25m behind; 1 event so in all): sorting"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("3 events, 3 reads, 0 malformed, 0 late"),
        "{}",
        run.stderr
    );
    // Refused: reported line by line, counted, left out, exit code 1.
    let run = env.run(&["replay", "--no-sort", log.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("late.jsonl:3: late: 25m behind the watermark (lateness 5m); not used"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("3 events, 2 reads, 0 malformed, 1 late"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    use std::process::Stdio;
    let env = TestEnv::new();
    let sample = crate::repo("sample-logs/incident.jsonl");
    let mut child = env
        .command(&["replay", sample.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(status.success() || status.code() == Some(0), "{status:?}");
}
