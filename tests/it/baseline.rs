//! The analyst loop on a state dir: `exposure baseline allow | forget | show`, taken by a
//! running `watch` without a restart, by `replay --approvals`, recorded in the audit log; the
//! configuration reloaded on SIGHUP (an invalid one refused, the old one kept); and `explain`'s
//! answers against the detector's own state (learning, normal, allowed, approved, pending,
//! graduated, forgotten, in a window), from logs and from a state dir alike.

use super::util::{CONFIG, Watcher, append, eventually, read_line};
use super::{TestEnv, repo};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

fn principals(alert: &Value) -> Vec<String> {
    let mut names: Vec<String> = alert["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["principal"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn wait_metric(watcher: &Watcher, name: &str, want: f64) {
    eventually(WAIT, || {
        let got = watcher.metric(name).unwrap_or(-1.0);
        (got == want)
            .then_some(())
            .ok_or(format!("{name} = {got}, want {want}"))
    });
}

/// A folder only this user can write to, as a state dir must be.
fn private_dir(path: &std::path::Path) {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(path).unwrap();
}

fn baseline(env: &TestEnv, args: &[&str]) -> super::Run {
    let run = env.run(&[&["baseline"][..], args].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

#[test]
fn approvals_and_withdrawals_reach_a_running_watch_and_the_audit_log() {
    let env = TestEnv::new();
    let log = env.write("app.log", read_line("svc-etl", "hr.salaries"));
    let watcher = Watcher::start(&env, &["app.log"]);
    let allowed = baseline(
        &env,
        &[
            "allow",
            "--state-dir",
            "state",
            "--table",
            "hr.*",
            "contractor-*",
            "--by",
            "alice",
            "--reason",
            "SEC-1: audit contractors",
        ],
    );
    assert!(
        allowed
            .stderr
            .contains("allowed contractor-* on hr.* by alice"),
        "{}",
        allowed.stderr
    );
    // Expired (event time is now): it changes nothing.
    baseline(
        &env,
        &[
            "allow",
            "--state-dir",
            "state",
            "--table",
            "hr.*",
            "old-*",
            "--expires",
            "2020-01-01",
            "--by",
            "bob",
            "--reason",
            "SEC-0: long gone",
        ],
    );
    wait_metric(&watcher, "baseline_changes", 2.0);

    for p in [
        "contractor-a",
        "contractor-b",
        "contractor-c",
        "old-a",
        "old-b",
        "old-c",
    ] {
        append(&log, read_line(p, "hr.salaries"));
    }
    let open = watcher.wait_for("open", WAIT, |a| a["status"] == "open");
    assert_eq!(
        principals(&open),
        ["old-a", "old-b", "old-c"],
        "approved readers are normal"
    );

    // Once a checkpoint (every 100ms) holds the table.
    let shown = eventually(WAIT, || {
        let shown = baseline(&env, &["show", "--state-dir", "state", "--table", "hr.*"]).stdout;
        if shown.contains("  hr.salaries: armed since") {
            Ok(shown)
        } else {
            Err(shown)
        }
    });
    assert!(shown.contains("approvals in force (2):"), "{shown}");
    assert!(
        shown.contains("contractor-* on hr.* — by alice: \"SEC-1: audit contractors\""),
        "{shown}"
    );
    assert!(
        shown.contains("old-* on hr.* until 2020-01-01T00:00:00.000Z — by bob"),
        "{shown}"
    );
    assert!(
        shown.contains("(past its end by the wall clock)"),
        "{shown}"
    );
    assert!(shown.contains("audit log (2 changes,"), "{shown}");
    assert!(
        shown.contains("alice  Allow contractor-* on hr.*"),
        "{shown}"
    );
    assert!(shown.contains("  hr.salaries: armed since"), "{shown}");

    // Withdrawn: the contractors are novel again (on a table of their own, to see them open it).
    baseline(
        &env,
        &[
            "forget",
            "--state-dir",
            "state",
            "--table",
            "hr.*",
            "contractor-*",
            "--by",
            "carol",
            "--reason",
            "SEC-2: contract ended",
        ],
    );
    wait_metric(&watcher, "baseline_changes", 3.0);
    for p in ["contractor-a", "contractor-b", "contractor-c"] {
        append(&log, read_line(p, "hr.payroll"));
    }
    let payroll = watcher.wait_for("open on hr.payroll", WAIT, |a| {
        a["status"] == "open" && a["table"] == "hr.payroll"
    });
    assert_eq!(
        principals(&payroll),
        ["contractor-a", "contractor-b", "contractor-c"]
    );
    let shown = baseline(&env, &["show", "--state-dir", "state"]).stdout;
    assert!(shown.contains("approvals in force (1):"), "{shown}");
    assert!(
        shown.contains("carol  Forget contractor-* on hr.* — \"SEC-2: contract ended\""),
        "{shown}"
    );
    let (code, _) = watcher.stop();
    assert_eq!(code, 0);

    // A change that cannot be used never reaches the log.
    let bad = env.run(&[
        "baseline",
        "allow",
        "--state-dir",
        "state",
        "--table",
        "hr.[",
        "x",
        "--reason",
        "r",
    ]);
    bad.expect(2, "--table:");
    let log = std::fs::read_to_string(env.path("state/baseline-changes.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
}

#[test]
fn forget_takes_a_learned_reader_out_of_a_running_watchs_baseline() {
    let env = TestEnv::new();
    env.write(
        "watch.toml",
        CONFIG.replace("learn = \"0s\"", "learn = \"1d\""),
    );
    let day = 86_400_000_000i64;
    let now = chrono::Utc::now().timestamp_micros();
    let history: String = [(now - 2 * day, "bob"), (now - 3_600_000_000, "bob")]
        .iter()
        .map(|(ts, p)| {
            format!(
                "{{\"ts\":{},\"principal\":\"{p}\",\"table\":\"hr.salaries\"}}\n",
                ts / 1000
            )
        })
        .collect();
    env.write("history.jsonl", history);
    let learned = env.run(&[
        "learn",
        "--config",
        "watch.toml",
        "--state-dir",
        "state",
        "history.jsonl",
    ]);
    assert_eq!(learned.code, 0, "{}", learned.stderr);
    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    baseline(
        &env,
        &[
            "forget",
            "--state-dir",
            "state",
            "--table",
            "hr.salaries",
            "bob",
            "--reason",
            "SEC-9",
        ],
    );
    wait_metric(&watcher, "baseline_changes", 1.0);
    for p in ["bob", "carol", "dave"] {
        append(&log, read_line(p, "hr.salaries"));
    }
    let open = watcher.wait_for("open", WAIT, |a| a["status"] == "open");
    assert_eq!(
        principals(&open),
        ["bob", "carol", "dave"],
        "bob is novel once forgotten"
    );
    // Applied once: a restart does not forget bob again (he is in the window, not the baseline).
    let (code, _) = watcher.stop();
    assert_eq!(code, 0);
    let checkpoint = crate::util::checkpoint(&env.path("state")).unwrap();
    assert_eq!(checkpoint["baseline_changes"], 1);
}

#[test]
fn sighup_reloads_the_configuration_and_keeps_it_when_the_new_one_is_invalid() {
    let env = TestEnv::new();
    let log = env.write("app.log", read_line("svc-etl", "hr.salaries"));
    let watcher = Watcher::start(&env, &["app.log"]);
    env.write(
        "watch.toml",
        CONFIG.replace(
            "allow = [\"svc-*\"]",
            "allow = [\"svc-*\", \"contractor-*\"]",
        ),
    );
    let hup = |watcher: &Watcher| {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &watcher.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    hup(&watcher);
    wait_metric(&watcher, "config_reloads_total", 1.0);
    env.write("watch.toml", "[detect]\nbogus = 1\n");
    hup(&watcher);
    wait_metric(&watcher, "config_reload_failures_total", 1.0);
    // A config path that now names a device (or a link to one) is refused at once, not read
    // without end; a secret file named by mistake is not printed.
    std::fs::remove_file(env.path("watch.toml")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", env.path("watch.toml")).unwrap();
    hup(&watcher);
    wait_metric(&watcher, "config_reload_failures_total", 2.0);
    std::fs::remove_file(env.path("watch.toml")).unwrap();
    env.write("watch.toml", "token-abc123-secret\n");
    hup(&watcher);
    wait_metric(&watcher, "config_reload_failures_total", 3.0);
    env.write(
        "watch.toml",
        CONFIG.replace(
            "allow = [\"svc-*\"]",
            "allow = [\"svc-*\", \"contractor-*\"]",
        ),
    );
    // Still running, with the reloaded configuration: contractors are allowed.
    for p in [
        "contractor-a",
        "x",
        "contractor-b",
        "y",
        "contractor-c",
        "z",
    ] {
        append(&log, read_line(p, "hr.salaries"));
    }
    let closed = watcher.wait_for("closed", WAIT, |a| a["status"] == "closed");
    assert_eq!(principals(&closed), ["x", "y", "z"]);
    let logs = watcher.logs().join("\n");
    let (code, _) = watcher.stop();
    assert_eq!(code, 0);
    assert!(logs.contains("not a regular file"), "{logs}");
    assert!(!logs.contains("abc123"), "{logs}");
}

#[test]
fn replay_takes_the_approvals_of_a_state_dir_until_they_expire() {
    let env = TestEnv::new();
    let sample = repo("sample-logs/incident.jsonl");
    let sample = sample.to_str().unwrap();
    let plain = env.run(&["replay", sample]);
    let window = plain
        .alerts()
        .into_iter()
        .find(|a| a["status"] == "closed")
        .unwrap();
    let all = principals(&window);
    assert!(all.contains(&"quinn.khan@corp.example".to_string()));
    // A folder for approvals alone: `baseline` never creates one (a typo would record
    // approvals nobody reads).
    private_dir(&env.path("approvals"));
    baseline(
        &env,
        &[
            "allow",
            "--state-dir",
            "approvals",
            "--table",
            "warehouse.users.*",
            "quinn.khan@corp.example",
            "--reason",
            "on call for the data team",
        ],
    );
    // wen.lopez first read at 14:02, approved until 15:00, read again at 15:54.
    baseline(
        &env,
        &[
            "allow",
            "--state-dir",
            "approvals",
            "--table",
            "warehouse.users.pii",
            "wen.lopez@corp.example",
            "--expires",
            "2026-03-16T15:00:00Z",
            "--reason",
            "migration",
        ],
    );
    let approved = env.run(&["replay", "--approvals", "approvals", sample]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    let closed = approved
        .alerts()
        .into_iter()
        .find(|a| a["status"] == "closed")
        .unwrap();
    let names = principals(&closed);
    assert!(
        !names.contains(&"quinn.khan@corp.example".to_string()),
        "approved: {names:?}"
    );
    assert_eq!(names.len(), all.len() - 1, "only quinn left the window");
    let wen = closed["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["principal"] == "wen.lopez@corp.example")
        .expect("wen's read after the approval expired is novel");
    assert_eq!(wen["first_read"], "2026-03-16T15:54:46.648Z");
    assert_eq!(wen["reads"], 1);
}

/// A damaged line in the audit log (a bad disk, a stray edit, a crash mid-write) loses only
/// itself: every other approval stays in force, the damage is named with its line, and the
/// next `allow` starts on a line of its own.
#[test]
fn a_damaged_audit_log_keeps_every_other_approval_in_force() {
    let env = TestEnv::new();
    let sample = repo("sample-logs/incident.jsonl");
    let sample = sample.to_str().unwrap();
    private_dir(&env.path("approvals"));
    let allow = |principal: &str| {
        baseline(
            &env,
            &[
                "allow",
                "--state-dir",
                "approvals",
                "--table",
                "warehouse.users.*",
                principal,
                "--reason",
                "SEC-1",
            ],
        )
    };
    allow("someone.else@corp.example");
    allow("quinn.khan@corp.example");
    let log = env.path("approvals/baseline-changes.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    // The first record damaged on disk (its reason edited), then a torn write at the end.
    let damaged = text.replacen("SEC-1", "SEC-9", 1) + "{\"at\":\"2026-12";
    std::fs::write(&log, damaged).unwrap();
    let approved = env.run(&["replay", "--approvals", "approvals", sample]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert!(
        approved
            .stderr
            .contains("baseline-changes.jsonl:1: damaged baseline change")
            && approved.stderr.contains("sum does not match")
            && approved
                .stderr
                .contains("baseline-changes.jsonl:3: damaged")
            && approved.stderr.contains("torn"),
        "{}",
        approved.stderr
    );
    let closed = approved
        .alerts()
        .into_iter()
        .find(|a| a["status"] == "closed")
        .unwrap();
    assert!(
        !principals(&closed).contains(&"quinn.khan@corp.example".to_string()),
        "the intact approval is in force"
    );
    // The next change repairs the torn tail first and says what is quarantined.
    let next = allow("wen.lopez@corp.example");
    assert!(next.stderr.contains(":1: damaged"), "{}", next.stderr);
    let shown = baseline(&env, &["show", "--state-dir", "approvals"]).stdout;
    assert!(shown.contains("approvals in force (2):"), "{shown}");
    assert!(shown.contains("line 1: DAMAGED"), "{shown}");
    assert!(
        !shown.contains("line 3: DAMAGED"),
        "the torn tail is cut: {shown}"
    );
}

/// `baseline` writes only into a state dir that is this user's alone, and records who ran it.
#[test]
fn baseline_refuses_a_state_dir_others_can_write_and_records_the_effective_user() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let args = [
        "allow",
        "--state-dir",
        "state",
        "--table",
        "hr.*",
        "bob",
        "--reason",
        "SEC-2",
        "--by",
        "alice (for bob's manager)",
    ];
    let typo = env.run(&[&["baseline"][..], &args].concat());
    typo.expect(1, "no state dir at state");
    assert!(!env.path("state").exists(), "never created by `baseline`");
    private_dir(&env.path("state"));
    std::fs::set_permissions(env.path("state"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let open = env.run(&[&["baseline"][..], &args].concat());
    open.expect(1, "writable by other users (mode 777)");
    std::fs::set_permissions(env.path("state"), std::fs::Permissions::from_mode(0o700)).unwrap();
    baseline(&env, &args);
    let log = std::fs::read_to_string(env.path("state/baseline-changes.jsonl")).unwrap();
    let record: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(record["by"], "alice (for bob's manager)");
    assert!(
        record["user"].as_str().is_some_and(|u| !u.is_empty()),
        "{record}"
    );
    let forged = env.run(&[
        "baseline",
        "allow",
        "--state-dir",
        "state",
        "--table",
        "hr.*",
        "bob",
        "--reason",
        "ok\n2026-12-06T00:00:00Z INFO approved by security",
    ]);
    forged.expect(2, "--reason: must not hold control");
}

/// Symlinks planted in a state dir (while it was open to others, or by its owner by mistake)
/// do not steer `watch`'s writes: it refuses to start, naming them.
#[test]
fn watch_refuses_symlinks_planted_for_its_state_files() {
    let env = TestEnv::new();
    let log = env.write("a.jsonl", read_line("bob", "hr.pay"));
    let elsewhere = env.path("elsewhere");
    private_dir(&elsewhere);
    for planted in ["outbox", "sinks"] {
        private_dir(&env.path("state"));
        std::os::unix::fs::symlink(&elsewhere, env.path(&format!("state/{planted}"))).unwrap();
        let run = env.run(&["watch", "--state-dir", "state", log.to_str().unwrap()]);
        assert_ne!(run.code, 0, "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("state/{planted} is not a folder of this user")),
            "{}",
            run.stderr
        );
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        std::fs::remove_dir_all(env.path("state")).unwrap();
    }
}

/// A table's life in event time, for `explain`: learning (a, b, c), an allowed reader, a
/// newcomer who graduates (d), a forgotten reader (a), a window (f, g, h).
fn life(env: &TestEnv) {
    let t0 = 1_773_000_000_000i64; // ms
    let min = 60_000i64;
    let mut lines = String::new();
    for (at, p) in [
        (0, "a"),
        (1, "b"),
        (2, "c"),
        (90, "svc-x"),
        (100, "b"),
        (120, "d"),
        (150, "c"),
        (160, "f"),
        (161, "g"),
        (162, "h"),
        (170, "g"),
    ] {
        lines.push_str(&format!(
            "{{\"ts\":{},\"principal\":\"{p}\",\"table\":\"t\"}}\n",
            t0 + at * min
        ));
    }
    env.write("life.jsonl", lines);
    env.write(
        "life.toml",
        "[detect]\nlearn = \"1h\"\nforget_after = \"2h\"\nspan = \"10m\"\nclose_after = \"30m\"\n\
         min_principals = 3\nallow = [\"svc-*\"]\n",
    );
}

fn explain(env: &TestEnv, at_min: i64, principal: &str, extra: &[&str]) -> Value {
    let at = chrono::DateTime::from_timestamp_millis(1_773_000_000_000 + at_min * 60_000)
        .unwrap()
        .to_rfc3339();
    let run = env.run(
        &[
            &[
                "explain",
                "--config",
                "life.toml",
                "--table",
                "t",
                "--at",
                &at,
                "--principal",
                principal,
                "--json",
            ][..],
            extra,
            &["life.jsonl"],
        ]
        .concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn explain_says_what_the_detector_knew() {
    let env = TestEnv::new();
    life(&env);
    let verdict = |at: i64, p: &str| explain(&env, at, p, &[])["principal"]["verdict"].clone();
    assert_eq!(verdict(30, "a"), "learning");
    assert_eq!(verdict(95, "b"), "normal");
    assert_eq!(verdict(95, "svc-y"), "allowed");
    assert_eq!(verdict(125, "d"), "pending");
    assert_eq!(
        verdict(135, "d"),
        "graduated",
        "span (10m) passed without a window"
    );
    assert_eq!(
        verdict(140, "a"),
        "forgotten",
        "last normal read 0, forget_after 2h"
    );
    assert_eq!(verdict(165, "g"), "in_window");
    assert_eq!(verdict(165, "zed"), "novel");

    // After another read made the detector graduate d, d is in the baseline, and the logs say how.
    let d = explain(&env, 155, "d", &[]);
    assert_eq!(d["principal"]["verdict"], "normal");
    let why = d["principal"]["why"].as_str().unwrap();
    assert!(why.contains("as a novel principal, and graduated"), "{why}");
    let b = explain(&env, 155, "b", &[]);
    assert!(
        b["principal"]["why"]
            .as_str()
            .unwrap()
            .contains("while it learned")
    );

    // The state at 165 minutes, as the detector has it: its baseline, pending and window.
    let state = explain(&env, 165, "g", &[]);
    assert_eq!(state["phase"], "armed");
    let readers: Vec<&str> = state["baseline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["principal"].as_str().unwrap())
        .collect();
    assert_eq!(
        readers,
        ["c", "d", "b", "svc-x"],
        "most recent first; a forgotten"
    );
    // By then the detector has dropped a (older than forget_after): the logs say why.
    let a = explain(&env, 165, "a", &[]);
    assert_eq!(a["principal"]["verdict"], "novel");
    let why = a["principal"]["why"].as_str().unwrap();
    assert!(why.contains("last at 2026-03-08T20:00:00.000Z"), "{why}");
    assert_eq!(
        state["window"]["principals"],
        serde_json::json!(["f", "g", "h"])
    );

    // Approved in a state dir's audit log.
    private_dir(&env.path("approvals"));
    baseline(
        &env,
        &[
            "allow",
            "--state-dir",
            "approvals",
            "--table",
            "t",
            "zed",
            "--by",
            "alice",
            "--reason",
            "SEC-7",
        ],
    );
    let zed = explain(&env, 165, "zed", &["--approvals", "approvals"]);
    assert_eq!(zed["principal"]["verdict"], "approved");
    assert!(
        zed["principal"]["why"]
            .as_str()
            .unwrap()
            .contains("approved by alice")
    );

    // From a state dir: `learn` over the same history gives the same state as the logs.
    let learned = env.run(&[
        "learn",
        "--config",
        "life.toml",
        "--state-dir",
        "s",
        "life.jsonl",
    ]);
    assert_eq!(learned.code, 0, "{}", learned.stderr);
    let at = explain(&env, 171, "g", &[]);
    let from_state = env.run(&[
        "explain",
        "--config",
        "life.toml",
        "--table",
        "t",
        "--state-dir",
        "s",
        "--at",
        at["at"].as_str().unwrap(),
        "--principal",
        "g",
        "--json",
    ]);
    assert_eq!(from_state.code, 0, "{}", from_state.stderr);
    let from_state: Value = serde_json::from_str(&from_state.stdout).unwrap();
    for key in ["phase", "baseline", "forgotten", "pending", "window"] {
        assert_eq!(from_state[key], at[key], "{key}");
    }
}
