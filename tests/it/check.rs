//! `exposure check` on the seed scenario: against the sample's learned state, the grant of the
//! incident is denied naming the two tables it opens, a grant to one new hire is warned, a
//! revoke allowed — the same answers from a state dir, from the history files, and from the
//! `POST /v1/check` endpoint of a running `watch` (asked with a real HTTP client).

use super::util::*;
use serde_json::Value;

const PUBLIC_SCHEMA: &str = "GRANT SELECT ON ALL TABLES IN SCHEMA warehouse.users TO PUBLIC";
const NEW_HIRE: &str = "GRANT SELECT ON warehouse.users.pii TO new.hire@corp.example";
const REVOKE: &str = "REVOKE SELECT ON warehouse.users.pii FROM PUBLIC";

fn sample(name: &str) -> String {
    repo(&format!("sample-logs/{name}"))
        .to_string_lossy()
        .into_owned()
}

/// A state dir learned from the sample and its permission changes.
fn learned(env: &TestEnv) {
    let (logs, permissions) = (sample("incident.jsonl"), sample("permissions.jsonl"));
    let run = env.run(&["learn", "-q", "--state-dir", "state", &logs, &permissions]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

fn check_json(env: &TestEnv, source: &[&str], sql: &str) -> (i32, Value) {
    let mut args = vec!["check", "--json", "--sql", sql];
    args.extend_from_slice(source);
    let run = env.run(&args);
    let answer = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    (run.code, answer)
}

fn tables(answer: &Value) -> Vec<(String, String, u64)> {
    answer["changes"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["verdict"].as_str().unwrap().to_string(),
                t["would_gain_read"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn the_seed_scenario_gets_the_same_answers_from_a_state_dir_and_from_history() {
    let env = TestEnv::new();
    learned(&env);
    let state: &[&str] = &["--state-dir", "state"];
    let (logs, permissions) = (sample("incident.jsonl"), sample("permissions.jsonl"));
    let history: &[&str] = &[&logs, &permissions];

    let (code, answer) = check_json(&env, state, PUBLIC_SCHEMA);
    assert_eq!(code, 1, "{answer}");
    assert_eq!(answer["schema"], "exposure.check/v1");
    assert_eq!(answer["verdict"], "deny");
    let denied = tables(&answer);
    let names: Vec<&str> = denied.iter().map(|(t, _, _)| t.as_str()).collect();
    assert_eq!(
        names,
        ["warehouse.users.payment_methods", "warehouse.users.pii"]
    );
    let population = answer["known_principals"].as_u64().unwrap();
    for (table, verdict, gain) in &denied {
        assert_eq!(verdict, "deny", "{table}");
        // Everyone the logs show but the table's own readers.
        assert!(
            *gain > 50 && *gain < population,
            "{table}: {gain} of {population}"
        );
        let reason = answer["reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("{table} (confidential, +{gain})")),
            "{reason}"
        );
    }
    assert_eq!(
        answer["changes"][0]["undo"],
        "REVOKE SELECT ON ALL TABLES IN SCHEMA warehouse.users FROM PUBLIC"
    );
    assert_eq!(check_json(&env, history, PUBLIC_SCHEMA), (code, answer));

    let (code, answer) = check_json(&env, state, NEW_HIRE);
    assert_eq!(code, 3, "warned, never denied: {answer}");
    assert_eq!(
        answer["changes"][0]["tables"][0]["principals"],
        serde_json::json!(["new.hire@corp.example"])
    );
    assert_eq!(check_json(&env, history, NEW_HIRE), (code, answer));

    let (code, answer) = check_json(&env, state, REVOKE);
    assert_eq!((code, answer["verdict"].as_str()), (0, Some("allow")));
    assert_eq!(check_json(&env, history, REVOKE), (code, answer));

    // The human form leads with the verdict and its reason.
    let run = env.run(&["check", "--state-dir", "state", "--sql", PUBLIC_SCHEMA]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.starts_with(
            "deny: everyone (PUBLIC) would gain read of warehouse.users.payment_methods"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn changes_of_other_kinds_and_bad_input() {
    let env = TestEnv::new();
    learned(&env);
    // A Terraform plan granting Unity Catalog's `account users` the schema.
    let plan = serde_json::json!({"format_version": "1.2", "resource_changes": [
        {"address": "databricks_grants.users", "type": "databricks_grants",
         "change": {"actions": ["create"], "before": null, "after": {"schema": "warehouse.users",
           "grant": [{"principal": "account users", "privileges": ["SELECT", "USE_SCHEMA"]}]}}}
    ]});
    env.write("plan.json", plan.to_string());
    let run = env.run(&[
        "check",
        "--state-dir",
        "state",
        "--change",
        "plan.json",
        "--json",
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let answer: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(tables(&answer).len(), 2);
    assert_eq!(
        answer["changes"][0]["statement"],
        "databricks_grants.users (create)"
    );
    // The same read from stdin.
    let piped = env.run_with_stdin(
        &["check", "--state-dir", "state", "--change", "-", "--json"],
        plan.to_string().as_bytes(),
    );
    assert_eq!(piped.stdout, run.stdout);
    // A migration: only its grants count.
    let run = env.run(&[
        "check",
        "--state-dir",
        "state",
        "--sql",
        "CREATE TABLE warehouse.users.t (id int); GRANT SELECT ON warehouse.finance.ledger TO nina.newman@corp.example;",
    ]);
    assert_eq!(
        run.code, 0,
        "a grant to a reader changes nothing: {}",
        run.stdout
    );
    assert!(
        run.stdout.starts_with("allow: changes nothing"),
        "{}",
        run.stdout
    );
    // No answer: exit 2, naming what is wrong.
    let run = env.run(&[
        "check",
        "--state-dir",
        "state",
        "--sql",
        "GRANT EXECUTE ON FUNCTION f() TO x",
    ]);
    run.expect(2, "statement 1: not a grant or revoke");
    let run = env.run(&["check", "--state-dir", "nowhere", "--sql", NEW_HIRE]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

/// POSTs `body` to the watch's check endpoint with a real HTTP client.
fn post(addr: &str, query: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
    let response = reqwest::blocking::Client::new()
        .post(format!("http://{addr}/v1/check{query}"))
        .body(body)
        .send()
        .expect("the endpoint answers");
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, value)
}

#[test]
fn a_running_watch_answers_the_same_on_its_endpoint() {
    let env = TestEnv::new();
    learned(&env);
    env.write(
        "watch.toml",
        "[check]\nendpoint = true\nmax_request_bytes = 4096\n",
    );
    env.write("app.log", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    let addr = watcher.metrics_addr.clone();
    for sql in [PUBLIC_SCHEMA, NEW_HIRE, REVOKE] {
        let (status, mut answer) = post(&addr, "", sql);
        assert_eq!(status, 200, "{answer}");
        let cli = env.run(&["check", "--json", "--state-dir", "state", "--sql", sql]);
        let mut cli: Value = serde_json::from_str(&cli.stdout).unwrap();
        // Event time goes on by the wall clock while the watch runs: the state's time is
        // not the CLI's a moment later; the rest is.
        for answer in [&mut answer, &mut cli] {
            answer.as_object_mut().unwrap().remove("as_of");
        }
        assert_eq!(answer, cli, "{sql}");
    }
    // Query parameters are the CLI's flags.
    let (status, answer) = post(&addr, "?dialect=postgres&kind=sql", NEW_HIRE);
    assert_eq!((status, answer["verdict"].as_str()), (200, Some("warn")));
    // Errors are JSON with a message, and echo nothing of the request.
    let (status, answer) = post(&addr, "", "GRANT EXECUTE ON FUNCTION secret_fn() TO x");
    assert_eq!(status, 422);
    assert!(
        answer["error"].as_str().unwrap().contains("statement 1"),
        "{answer}"
    );
    let (status, answer) = post(&addr, "", "x".repeat(5000));
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("max_request_bytes")
    );
    let (status, answer) = post(&addr, "?token=hunter2", NEW_HIRE);
    assert_eq!(status, 400);
    assert!(!answer.to_string().contains("hunter2"), "{answer}");
    let (status, _) = http_get(&addr, "/v1/check").unwrap();
    assert_eq!(status, 405);
    // Metrics and readiness on the same listener.
    assert_eq!(http_get(&addr, "/ready").unwrap().0, 200);
    assert!(watcher.metric("events_read_total").is_some());
    drop(watcher);

    // Off unless configured.
    env.write("watch.toml", "");
    let watcher = Watcher::start(&env, &["app.log"]);
    let (status, answer) = post(&watcher.metrics_addr, "", PUBLIC_SCHEMA);
    assert_eq!(status, 404, "{answer}");
}
