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
        "--close-after",
        "--quiet",
        "--verbose",
        "--from",
        "--until",
        "--updates",
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
        (
            "[detect]\nclose_after = \"30M\"\n",
            "could be minutes or months",
        ),
        (
            "[detect]\nclose_after = \"1h\"\nquiet = \"1h\"\n",
            "`detect.quiet`: is the old name of close_after",
        ),
        ("[[tables]]\nmatch = \"hr.[\"\n", "tables[0].match"),
        // An unknown key of a sink is shown at its own line, not its table's header.
        (
            "[[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\n\n[[sinks]]\nkind = \"webhook\"\nname = \"b\"\n  retry_intial = \"1s\"\n",
            "line 8, column 3\n  |\n8 |   retry_intial = …\n  |   ^^^^^^^^^^^^\nunknown field `retry_intial`",
        ),
        ("not toml at all", "config file"),
    ] {
        let config = env.write("bad.toml", text);
        let run = env.run(&["replay", "--config", config.to_str().unwrap(), "x.jsonl"]);
        assert_eq!(run.code, 2, "{text:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{text:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("bad.toml") || run.stderr.contains("config key `"),
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

#[test]
fn each_command_shows_and_takes_only_its_own_flags() {
    let env = TestEnv::new();
    // (command, flags it must offer, flags it must not)
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "replay",
            &[
                "--from",
                "--until",
                "--updates",
                "--close-after",
                "-q, --quiet",
                "-v, --verbose",
            ],
            &["--state-dir", "--from-beginning"],
        ),
        (
            "watch",
            &[
                "--updates",
                "--close-after",
                "--from-beginning",
                "-q, --quiet",
            ],
            &["--from ", "--until", "--no-sort"],
        ),
        (
            "learn",
            &["--until", "--close-after", "-q, --quiet"],
            &["--updates", "--from ", "--no-sort"],
        ),
        (
            "archive",
            &["--out", "-q, --quiet"],
            &["--updates", "--from "],
        ),
    ];
    for (command, has, lacks) in cases {
        let help = env.run(&[command, "--help"]);
        assert_eq!(help.code, 0);
        for flag in *has {
            assert!(
                help.stdout.contains(flag),
                "{command} lacks {flag}:\n{}",
                help.stdout
            );
        }
        for flag in *lacks {
            assert!(
                !help.stdout.contains(flag),
                "{command} offers {flag}:\n{}",
                help.stdout
            );
        }
    }
    // What a command does not take is a usage error, not a flag accepted then refused.
    for args in [
        &[
            "watch",
            "--state-dir",
            "st",
            "--from",
            "2026-03-16",
            "x.jsonl",
        ][..],
        &["learn", "--state-dir", "st", "--updates", "x.jsonl"],
    ] {
        let run = env.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("unexpected argument"), "{}", run.stderr);
    }
}

#[test]
fn quiet_means_less_output_and_the_old_duration_flag_says_its_new_name() {
    let env = TestEnv::new();
    let log = env.write("tiny.jsonl", tiny_log());
    let log = log.to_str().unwrap();
    let normal = env.run(&["replay", "--learn", "1h", log]);
    assert!(
        normal.stderr.contains("exposure: 1 input"),
        "{}",
        normal.stderr
    );

    for quiet in ["-q", "--quiet"] {
        let run = env.run(&["replay", quiet, "--learn", "1h", log]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stdout, normal.stdout, "the same alerts");
        assert_eq!(run.stderr, "", "no summary");
    }
    // Problems are still shown when quiet; -v shows every one of them.
    let mut bad = tiny_log();
    for i in 0..15 {
        bad.push_str(&format!("not json {i}\n"));
    }
    env.write("bad.jsonl", bad);
    let quiet = env.run(&["replay", "-q", "bad.jsonl"]);
    assert_eq!(
        quiet
            .stderr
            .lines()
            .filter(|l| l.contains(": skipped:"))
            .count(),
        10
    );
    let verbose = env.run(&["replay", "-v", "bad.jsonl"]);
    assert_eq!(
        verbose
            .stderr
            .lines()
            .filter(|l| l.contains(": skipped:"))
            .count(),
        15
    );
    assert_eq!(env.run(&["replay", "-q", "-v", log]).code, 2);

    // The duration is now --close-after; `--quiet 30m` says so instead of reading "30m".
    for args in [
        &["replay", "--quiet", "30m", log][..],
        &["replay", "--quiet=30m", log],
    ] {
        let run = env.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("`--close-after 30m`"), "{}", run.stderr);
    }
    let renamed = env.run(&["replay", "--learn", "1h", "--close-after", "30m", log]);
    assert_eq!(renamed.stdout, normal.stdout);
    // `quiet` in a config file is still read, with a notice.
    let old = env.write("old.toml", "[detect]\nlearn = \"1h\"\nquiet = \"30m\"\n");
    let run = env.run(&["replay", "--config", old.to_str().unwrap(), log]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, normal.stdout);
    assert!(
        run.stderr
            .contains("detect.quiet is now detect.close_after"),
        "{}",
        run.stderr
    );
    // `M` is refused as ambiguous (it was read as months).
    let months = env.run(&["replay", "--close-after", "30M", log]);
    assert_eq!(months.code, 2);
    assert!(
        months.stderr.contains("minutes or months"),
        "{}",
        months.stderr
    );
}

#[test]
fn from_reports_the_windows_from_then_on_with_the_baseline_learned_before() {
    let env = TestEnv::new();
    let sample = crate::repo("sample-logs/incident.jsonl");
    let sample = sample.to_str().unwrap();
    let whole = env.run(&["replay", sample]);
    assert_eq!(whole.alerts().len(), 2);
    env.run(&["archive", sample, "--out", "lake"]);

    for input in [sample, "lake"] {
        // The window opens at 14:02:11.512: any --from before, or while it is open, reports it
        // exactly as a whole replay does (its open alert included), baseline learned before.
        for from in [
            "2026-03-16",
            "2026-03-16 14:00:00Z",
            "2026-03-16T14:00:00Z",
            "2026-03-16T15:30:00Z",
        ] {
            let run = env.run(&["replay", "--from", from, input]);
            assert_eq!(run.code, 0, "{from}: {}", run.stderr);
            assert_eq!(run.stdout, whole.stdout, "--from {from} on {input}");
        }
        // After it closed: nothing to report, and the summary says why.
        let later = env.run(&["replay", "--from", "2026-03-17", input]);
        assert_eq!(later.code, 0);
        assert_eq!(later.stdout, "");
        assert!(
            later
                .stderr
                .contains("1 window over before --from not reported"),
            "{}",
            later.stderr
        );
    }
    let backwards = env.run(&[
        "replay",
        "--from",
        "2026-03-17",
        "--until",
        "2026-03-16",
        sample,
    ]);
    assert_eq!(backwards.code, 2);
    assert!(
        backwards.stderr.contains("is not before --until"),
        "{}",
        backwards.stderr
    );
    let garbled = env.run(&["replay", "--from", "16/03/2026", sample]);
    assert_eq!(garbled.code, 2);
    assert!(
        garbled.stderr.contains("expected a date"),
        "{}",
        garbled.stderr
    );
}

/// Every output path: a device (as `/dev/null` is) or a fifo named as the output is written
/// to in place and stays what it was; never replaced by a regular file. Folder outputs refuse
/// one.
#[test]
fn outputs_that_are_devices_or_fifos_are_written_in_place_never_replaced() {
    use std::os::unix::fs::FileTypeExt;
    let env = TestEnv::new();
    let sample = crate::repo("sample-logs/incident.jsonl");
    let sample = sample.to_str().unwrap();
    let expected = env.run(&["replay", sample]).stdout;
    let shard = env.path("shard.jsonl");
    let run = env.run(&[
        "replay",
        "--shard",
        "1/1",
        "--out",
        shard.to_str().unwrap(),
        sample,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let make = |name: &str, kind: &str| -> Option<std::path::PathBuf> {
        let path = env.path(name);
        let _ = std::fs::remove_file(&path);
        let status = match kind {
            "fifo" => std::process::Command::new("mkfifo").arg(&path).status(),
            // The device /dev/null is: needs root (CI runs as root).
            _ => std::process::Command::new("mknod")
                .args([path.to_str().unwrap(), "c", "1", "3"])
                .status(),
        };
        status.ok()?.success().then_some(path)
    };
    let commands: [(&str, Vec<&str>); 2] = [
        ("replay", vec!["replay", sample, "--out"]),
        ("merge", vec!["merge", shard.to_str().unwrap(), "--out"]),
    ];
    for (command, args) in &commands {
        if let Some(device) = make("device", "device") {
            let run = env.run(&[&args[..], &[device.to_str().unwrap()]].concat());
            assert_eq!(run.code, 0, "{command}: {}", run.stderr);
            let kind = std::fs::metadata(&device).unwrap().file_type();
            assert!(kind.is_char_device(), "{command} replaced the device");
        } else {
            eprintln!("{command}: device case skipped (mknod needs root)");
        }
        let fifo = make("fifo", "fifo").expect("mkfifo");
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        let run = env.run(&[&args[..], &[fifo.to_str().unwrap()]].concat());
        assert_eq!(run.code, 0, "{command}: {}", run.stderr);
        assert_eq!(reader.join().unwrap(), expected, "{command} through a fifo");
        let kind = std::fs::metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "{command} replaced the fifo");
    }
    // Folder outputs: a fifo (or device) where the folder should be is refused, left alone.
    let fifo = make("fifo", "fifo").unwrap();
    let alerts = env.write("alerts.jsonl", &expected);
    for args in [
        vec!["archive", sample, "--out", fifo.to_str().unwrap()],
        vec![
            "report",
            "--alerts",
            alerts.to_str().unwrap(),
            "--out",
            fifo.to_str().unwrap(),
            sample,
        ],
    ] {
        let run = env.run(&args);
        assert_ne!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
}

/// Everything written that names principals is readable by its owner only.
#[test]
fn outputs_are_private_files_in_private_folders() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let sample = crate::repo("sample-logs/incident.jsonl");
    let sample = sample.to_str().unwrap();
    let mode = |name: &str| {
        std::fs::metadata(env.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(
        env.run(&["replay", "--out", "alerts.jsonl", sample]).code,
        0
    );
    assert_eq!(mode("alerts.jsonl"), 0o600);
    assert_eq!(env.run(&["archive", "--out", "arch", sample]).code, 0);
    assert_eq!(mode("arch"), 0o700);
    let day = std::fs::read_dir(env.path("arch"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("dt="))
        .unwrap();
    assert_eq!(mode(&format!("arch/{day}")), 0o700);
    assert_eq!(mode(&format!("arch/{day}/part-00000.parquet")), 0o600);
    let report = env.run(&["report", "--alerts", "alerts.jsonl", "--out", "rep", sample]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert_eq!(mode("rep"), 0o700);
    assert_eq!(mode("rep/index.html"), 0o600);
}
