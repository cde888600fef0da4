//! Operating exposure with the tools operators already run: the man pages and completions made
//! from the flags, `exposure config check`, and the Grafana dashboard and Prometheus rules in
//! `deploy/`, whose every metric a running `watch` must really export.

use crate::util::{Watcher, append, http_get, read_line};
use crate::{TestEnv, repo};
use clap::CommandFactory;
use std::collections::BTreeSet;

/// Every subcommand path (`["baseline", "allow"]`), depth-first, without clap's `help`.
fn subcommand_paths() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands() {
            if sub.get_name() == "help" || sub.is_hide_set() {
                continue;
            }
            path.push(sub.get_name().to_string());
            out.push(path.clone());
            walk(sub, path, out);
            path.pop();
        }
    }
    let mut out = Vec::new();
    walk(&exposure::cli::Cli::command(), &mut Vec::new(), &mut out);
    out
}

fn find(path: &[String]) -> clap::Command {
    let mut command = exposure::cli::Cli::command();
    for name in path {
        command = command.find_subcommand(name).unwrap().clone();
    }
    command
}

/// roff escapes `-` as `\-`.
fn roff(text: &str) -> String {
    text.replace('-', "\\-").replace('\'', "\\*(Aq")
}

#[test]
fn every_subcommand_has_a_man_page_with_its_flags() {
    let env = TestEnv::new();
    env.run(&["man", "--out", "man"]).expect(0, "");
    let written: BTreeSet<String> = std::fs::read_dir(env.path("man"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let paths = subcommand_paths();
    assert!(paths.len() >= 18, "{paths:?}");
    let mut expected = BTreeSet::from(["exposure.1".to_string()]);
    for path in &paths {
        let name = format!("exposure-{}", path.join("-"));
        expected.insert(format!("{name}.1"));
        let page = std::fs::read_to_string(env.path(&format!("man/{name}.1")))
            .unwrap_or_else(|e| panic!("no page for `exposure {}`: {e}", path.join(" ")));
        assert!(
            page.contains(&format!(".TH {name} 1")),
            "{name}: title\n{page}"
        );
        let command = find(path);
        let about = command
            .get_about()
            .expect("every subcommand says what it does");
        let first_words: String = about.to_string().chars().take(40).collect();
        assert!(
            page.contains(&roff(&first_words)),
            "{name}: about `{first_words}` missing"
        );
        for arg in command.get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    page.contains(&roff(&format!("--{long}"))),
                    "{name}: --{long} missing"
                );
            }
        }
        // `exposure man SUB…` prints the same page.
        let mut args = vec!["man"];
        args.extend(path.iter().map(String::as_str));
        let one = env.run(&args);
        assert_eq!(one.code, 0, "{}", one.stderr);
        assert_eq!(one.stdout, page, "{name}");
    }
    assert_eq!(written, expected);
    // The top page lists every subcommand's page.
    let top = std::fs::read_to_string(env.path("man/exposure.1")).unwrap();
    for path in paths.iter().filter(|p| p.len() == 1) {
        assert!(top.contains(&roff(&format!("exposure-{}(1)", path[0]))));
    }
    let unknown = env.run(&["man", "frobnicate"]);
    unknown.expect(2, "has no subcommand `frobnicate`");
}

#[test]
fn completions_name_every_subcommand_and_are_valid_scripts() {
    let env = TestEnv::new();
    let top: Vec<Vec<String>> = subcommand_paths()
        .into_iter()
        .filter(|p| p.len() == 1)
        .collect();
    for (shell, file) in [
        ("bash", "exposure.bash"),
        ("zsh", "_exposure"),
        ("fish", "exposure.fish"),
    ] {
        let run = env.run(&["completions", shell]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        for path in &top {
            assert!(
                run.stdout.contains(&path[0]),
                "{shell}: {} missing",
                path[0]
            );
        }
        assert!(run.stdout.contains("--state-dir"), "{shell}: flags missing");
        env.write(file, &run.stdout);
    }
    // bash parses its script (zsh and fish, when installed, check theirs too).
    for (shell, flag, file) in [
        ("bash", "-n", "exposure.bash"),
        ("zsh", "-n", "_exposure"),
        ("fish", "--no-execute", "exposure.fish"),
    ] {
        let status = std::process::Command::new(shell)
            .arg(flag)
            .arg(env.path(file))
            .status();
        match status {
            Ok(status) => assert!(status.success(), "{shell} refuses {file}"),
            Err(_) if shell != "bash" => eprintln!("{shell} not installed: {file} not parsed"),
            Err(e) => panic!("bash: {e}"),
        }
    }
    env.run(&["completions", "tcsh"]).expect(2, "invalid value");
}

#[test]
fn config_check_names_every_problem_and_exits_2() {
    let env = TestEnv::new();
    let good = env.run(&[
        "config",
        "check",
        repo("packaging/exposure.toml").to_str().unwrap(),
    ]);
    good.expect(0, "");
    assert!(good.stdout.contains("valid"), "{}", good.stdout);
    assert!(good.stdout.contains("sinks: none"), "{}", good.stdout);
    assert!(
        env.run(&[
            "config",
            "check",
            "--quiet",
            repo("packaging/exposure.toml").to_str().unwrap()
        ])
        .stdout
        .is_empty()
    );

    // The example needs its sinks' secrets: each missing one is named, then all is well.
    let example = repo("examples/exposure.toml");
    let example = example.to_str().unwrap();
    let missing = env.run(&["config", "check", example]);
    missing.expect(2, "config key `sinks[1].routing_key_env`: environment variable `EXPOSURE_PD_ROUTING_KEY` is not set");
    missing.expect(2, "config key `sinks[2].headers_env.Authorization`");
    let resolved = env
        .command(&["config", "check", example])
        .env("EXPOSURE_PD_ROUTING_KEY", "r0uting")
        .env("EXPOSURE_WEBHOOK_AUTH", "Bearer s3cret")
        .output()
        .unwrap();
    let resolved = crate::Run::from_output(resolved);
    resolved.expect(0, "");
    assert!(
        resolved.stdout.contains("pagerduty (pagerduty)"),
        "{}",
        resolved.stdout
    );
    assert!(!resolved.stdout.contains("s3cret") && !resolved.stdout.contains("r0uting"));

    // A bad key: file, line, column and key.
    env.write("typo.toml", "[detect]\nlearn = \"7d\"\nmin_principal = 3\n");
    let typo = env.run(&["config", "check", "typo.toml"]);
    typo.expect(2, "typo.toml");
    typo.expect(2, "line 3, column 1");
    typo.expect(2, "unknown field `min_principal`");

    // Kafka client settings as librdkafka reads them, every one named, no value echoed.
    env.write(
        "kafka.toml",
        "[input.kafka]\nbrokers = \"127.0.0.1:9092\"\ntopics = [\"raw\"]\ngroup = \"g\"\n\
         [input.kafka.client]\n\"no.such.setting\" = \"1\"\n\"compression.codec\" = \"hunter2\"\n\
         \"ssl.ca.location\" = \"/nonexistent/ca.pem\"\n\"sasl.password\" = \"hunter3\"\n\
         [[sinks]]\nkind = \"kafka\"\nbrokers = \"127.0.0.1:9\"\ntopic = \"alerts\"\n\
         client = { \"acks\" = \"hunter4\" }\n",
    );
    let kafka = env.run(&["config", "check", "kafka.toml"]);
    kafka.expect(
        2,
        "`input.kafka.client.no.such.setting`: No such configuration property",
    );
    kafka.expect(2, "`input.kafka.client.compression.codec`: Invalid value");
    kafka.expect(
        2,
        "`input.kafka.client.ssl.ca.location`: cannot read /nonexistent/ca.pem",
    );
    // The Kafka sink's producer is judged by librdkafka without being created (no connection).
    kafka.expect(
        2,
        "`sinks[0].client`: Invalid value for configuration property",
    );
    assert!(!kafka.stderr.contains("hunter"), "{}", kafka.stderr);
    assert!(!kafka.stderr.contains("sasl.password"), "{}", kafka.stderr);

    assert_eq!(env.run(&["config", "check", "nonexistent.toml"]).code, 2);
}

/// The configurations the Kubernetes manifests ship are valid but for the secrets the cluster
/// mounts (files and variables that exist only there).
#[test]
fn the_manifests_configurations_are_valid_but_for_the_clusters_secrets() {
    let env = TestEnv::new();
    let kafka = repo("deploy/kubernetes/kafka-watch/exposure.toml");
    let run = env.run(&["config", "check", kafka.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let problems: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(problems.len(), 4, "{}", run.stderr);
    for problem in problems {
        assert!(
            problem.contains("cannot read /etc/exposure/"),
            "not a mounted secret: {problem}"
        );
    }
    let file = repo("deploy/kubernetes/file-watch/exposure.toml");
    let run = env
        .command(&["config", "check", file.to_str().unwrap()])
        .env("EXPOSURE_WEBHOOK_AUTH", "Bearer x")
        .output()
        .unwrap();
    crate::Run::from_output(run).expect(0, "");
}

/// The metric names a scrape shows: each sample's name (`exposure_alerts_total`,
/// `exposure_sink_delivery_seconds_bucket`, …).
fn exported(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// Every `exposure_…` metric name a text mentions.
pub fn mentioned(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("exposure_") {
        let before = rest[..at].chars().last();
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        rest = &rest[at + name.len().max(1)..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            continue;
        }
        names.insert(name);
    }
    names
}

/// The dashboard's queries and the alert rules' expressions.
pub fn dashboard_and_rule_metrics() -> BTreeSet<String> {
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("deploy/grafana/exposure-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut names = BTreeSet::new();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut queries = 0;
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let found = mentioned(expr);
            assert!(!found.is_empty(), "a query on no exposure metric: {expr}");
            names.extend(found);
            queries += 1;
        }
    }
    assert!(queries >= 30, "{queries} queries");
    let variables = dashboard["templating"]["list"].to_string();
    names.extend(mentioned(&variables));
    let rules = std::fs::read_to_string(repo("deploy/prometheus/exposure-rules.yml")).unwrap();
    let expressions: String = rules
        .lines()
        .skip_while(|l| !l.contains("groups:"))
        .filter(|l| {
            !l.trim_start().starts_with("summary:") && !l.trim_start().starts_with("description:")
        })
        .collect::<Vec<_>>()
        .join("\n");
    names.extend(mentioned(&expressions));
    names
}

#[test]
fn the_dashboard_and_the_rules_query_only_metrics_watch_exports() {
    let names = dashboard_and_rule_metrics();
    for needed in [
        "exposure_events_read_total",
        "exposure_alerts_total",
        "exposure_sink_delivery_seconds_bucket",
        "exposure_kafka_partition_lag",
        "exposure_outbox_max_bytes",
    ] {
        assert!(names.contains(needed), "{needed} not queried: {names:?}");
    }
    // A running watch over files, with an alert opened and delivered.
    let env = TestEnv::new();
    let log = env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    for who in ["mallory", "trent", "oscar"] {
        append(&log, read_line(who, "warehouse.users.pii"));
    }
    watcher.wait_for("the window", std::time::Duration::from_secs(20), |a| {
        a["status"] == "open"
    });
    let scrape = crate::util::eventually(std::time::Duration::from_secs(10), || {
        let (_, body) = http_get(&watcher.metrics_addr, "/metrics").ok_or("no scrape")?;
        if body.contains("exposure_sink_delivery_seconds_count{sink=\"stdout\"} 1") {
            Ok(body)
        } else {
            Err(body)
        }
    });
    assert!(
        scrape.contains("exposure_alerts_total{status=\"open\",severity=\"high\"} 1")
            || scrape.contains("exposure_alerts_total{status=\"open\",severity=\"medium\"} 1"),
        "{scrape}"
    );
    let exported = exported(&scrape);
    drop(watcher);
    // Kafka's families are exported by `watch` over Kafka (tests/it/kafka.rs checks those).
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !n.starts_with("exposure_kafka_") && !exported.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\n{scrape}"
    );
}
