//! `--output ocsf`: every alert of the sample, the permission fixtures of each vendor and a
//! generated data set with `update` alerts is an OCSF 1.7.0 Detection Finding that validates
//! against the published schema (vendored in tests/data/ocsf/, made by
//! scripts/vendor-ocsf-schema.py from the OCSF project's own compiler), and says what the
//! `exposure.alert/v1` alert says. Also through a `watch` sink.

use super::{TestEnv, repo};
use serde_json::{Map, Value};

/// The vendored schema: the class, the objects it reaches, the data types.
struct Schema(Value);

impl Schema {
    fn load() -> Schema {
        let text = std::fs::read_to_string(repo("tests/data/ocsf/detection_finding-1.7.0.json"))
            .expect("vendored OCSF schema");
        Schema(serde_json::from_str(&text).expect("schema JSON"))
    }

    /// Every way `finding` breaks the schema, as `path: what`.
    fn validate(&self, finding: &Value) -> Vec<String> {
        let class = &self.0["class"];
        let mut errors = Vec::new();
        let profiles: Vec<&str> = finding["metadata"]["profiles"]
            .as_array()
            .map_or(Vec::new(), |p| p.iter().filter_map(Value::as_str).collect());
        self.object(finding, class, "", &profiles, &mut errors);
        let activity = finding["activity_id"].as_u64().unwrap_or(0);
        let expect = |key: &str, want: Value, errors: &mut Vec<String>| {
            if finding[key] != want {
                errors.push(format!("{key}: {} where {want} was due", finding[key]));
            }
        };
        expect("class_uid", class["uid"].clone(), &mut errors);
        expect("category_uid", class["category_uid"].clone(), &mut errors);
        expect(
            "type_uid",
            Value::from(class["uid"].as_u64().unwrap() * 100 + activity),
            &mut errors,
        );
        // A caption beside its id says what the id's enum says.
        for (id, caption) in [
            ("activity_id", "activity_name"),
            ("severity_id", "severity"),
            ("status_id", "status"),
        ] {
            let key = finding[id].to_string();
            let due = &class["attributes"][id]["enum"][&key]["caption"];
            if finding.get(caption).is_some() && &finding[caption] != due {
                errors.push(format!(
                    "{caption}: {} but {id} {key} is {due}",
                    finding[caption]
                ));
            }
        }
        errors
    }

    /// Checks an object against its definition; the attributes of a profile are required only
    /// where `profiles` (`metadata.profiles`) declares it.
    fn object(
        &self,
        value: &Value,
        definition: &Value,
        path: &str,
        profiles: &[&str],
        errors: &mut Vec<String>,
    ) {
        let Some(fields) = value.as_object() else {
            errors.push(format!("{path}: an object was due, not {value}"));
            return;
        };
        let attributes = definition["attributes"].as_object().expect("attributes");
        for (name, field) in fields {
            let at = format!("{path}.{name}");
            let Some(attribute) = attributes.get(name) else {
                errors.push(format!("{at}: not an attribute of this object"));
                continue;
            };
            if attribute.get("@deprecated").is_some() {
                errors.push(format!("{at}: deprecated"));
            }
            if attribute["is_array"] == true {
                match field.as_array() {
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let at = format!("{at}[{i}]");
                            self.value(item, attribute, &at, profiles, errors);
                        }
                    }
                    None => errors.push(format!("{at}: an array was due")),
                }
            } else {
                self.value(field, attribute, &at, profiles, errors);
            }
        }
        for (name, attribute) in attributes {
            let in_use = attribute["profile"]
                .as_str()
                .is_none_or(|profile| profiles.contains(&profile));
            if attribute["requirement"] == "required" && in_use && !fields.contains_key(name) {
                errors.push(format!("{path}.{name}: required, missing"));
            }
        }
        let present = |names: &Value| {
            names.as_array().map_or(0, |n| {
                n.iter()
                    .filter(|k| fields.contains_key(k.as_str().unwrap()))
                    .count()
            })
        };
        let constraints = &definition["constraints"];
        if constraints.get("at_least_one").is_some() && present(&constraints["at_least_one"]) == 0 {
            errors.push(format!(
                "{path}: needs one of {}",
                constraints["at_least_one"]
            ));
        }
        if constraints.get("just_one").is_some() && present(&constraints["just_one"]) != 1 {
            errors.push(format!(
                "{path}: needs exactly one of {}",
                constraints["just_one"]
            ));
        }
    }

    fn value(
        &self,
        value: &Value,
        attribute: &Value,
        path: &str,
        profiles: &[&str],
        errors: &mut Vec<String>,
    ) {
        let kind = attribute["type"].as_str().expect("type");
        // `object` unextended (as `unmapped` is) holds anything.
        if let (Some(object), false) = (self.0["objects"].get(kind), kind == "object") {
            return self.object(value, object, path, profiles, errors);
        }
        let base = self.0["types"]
            .get(kind)
            .and_then(|t| t["type"].as_str())
            .unwrap_or(kind);
        let fits = match base {
            "string_t" => value.is_string(),
            "integer_t" | "long_t" => value.is_i64() || value.is_u64(),
            "float_t" => value.is_number(),
            "boolean_t" => value.is_boolean(),
            "json_t" => true,
            "object" => value.is_object(),
            other => panic!("{path}: type {other} not known to this validator"),
        };
        if !fits {
            errors.push(format!("{path}: {value} is not a {kind}"));
        }
        if let Some(values) = attribute.get("enum").and_then(Value::as_object) {
            let key = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if !values.contains_key(&key) {
                errors.push(format!("{path}: {key} is not one of its enum's values"));
            }
        }
    }
}

/// Replays with `--output exposure` and `--output ocsf`; checks each finding against the
/// schema and against its alert. Gives the alerts.
fn both(env: &TestEnv, schema: &Schema, args: &[&str]) -> Vec<Value> {
    let exposure = env.run(args);
    assert_eq!(exposure.code, 0, "{}", exposure.stderr);
    let mut ocsf_args = args.to_vec();
    ocsf_args.extend(["--output", "ocsf"]);
    let ocsf = env.run(&ocsf_args);
    assert_eq!(ocsf.code, 0, "{}", ocsf.stderr);
    let alerts = exposure.alerts();
    let findings = ocsf.alerts();
    assert_eq!(alerts.len(), findings.len());
    assert!(!alerts.is_empty(), "{args:?} gives alerts to check");
    for (alert, finding) in alerts.iter().zip(&findings) {
        let errors = schema.validate(finding);
        assert!(errors.is_empty(), "{finding:#}\n{}", errors.join("\n"));
        agrees(alert, finding);
    }
    alerts
}

/// What the finding says is what the alert says.
fn agrees(alert: &Value, finding: &Value) {
    let ms = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(alert[key].as_str().unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let status = alert["status"].as_str().unwrap();
    let type_uid = match status {
        "open" | "grant" | "still_readable" => 200401,
        "update" => 200402,
        "closed" => 200403,
        other => panic!("status {other}"),
    };
    assert_eq!(finding["type_uid"], type_uid, "{alert}");
    assert_eq!(finding["finding_info"]["uid"], alert["id"]);
    assert_eq!(finding["time"], ms("as_of"));
    let severity = match alert["severity"].as_str().unwrap() {
        "medium" => 3,
        "high" => 4,
        "critical" => 5,
        other => panic!("severity {other}"),
    };
    assert_eq!(finding["severity_id"], severity);
    assert_eq!(finding["resources"][0]["name"], alert["table"]);
    let raw: Value = serde_json::from_str(finding["raw_data"].as_str().unwrap()).unwrap();
    assert_eq!(&raw, alert);
    let classification = &finding["resources"][0]["data_classifications"][0];
    match alert["sensitivity"].as_str() {
        Some("restricted") => assert_eq!(classification["confidentiality_id"], 6),
        Some(other) => assert!(classification.is_object(), "{other}: {finding}"),
        None => assert!(classification.is_null()),
    }
    if status == "still_readable" {
        assert_eq!(finding["start_time"], ms("as_of"));
        return;
    }
    if status == "grant" {
        assert_eq!(finding["start_time"], {
            let change = &alert["change"]["ts"];
            chrono::DateTime::parse_from_rfc3339(change.as_str().unwrap())
                .unwrap()
                .timestamp_millis()
        });
        return;
    }
    assert_eq!(finding["start_time"], ms("window_start"));
    assert_eq!(finding["end_time"], ms("window_end"));
    let principals: Vec<&Value> = alert["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["principal"])
        .collect();
    let observed: Vec<&Value> = finding["observables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["type_id"] == 4)
        .map(|o| &o["value"])
        .collect();
    assert_eq!(observed, principals, "every principal is an observable");
    let evidenced: Vec<&Value> = finding["evidences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "novel reader")
        .map(|e| &e["actor"]["user"]["name"])
        .collect();
    assert_eq!(evidenced, principals, "every principal is an evidence");
    assert_eq!(
        finding["evidences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "cause"),
        alert.get("cause").is_some()
    );
}

#[test]
fn every_alert_of_the_sample_fixtures_and_generated_data_is_a_valid_detection_finding() {
    let env = TestEnv::new();
    let schema = Schema::load();
    let sample = repo("sample-logs/incident.jsonl");
    let grants = repo("sample-logs/permissions.jsonl");
    let sample = sample.to_str().unwrap();
    both(&env, &schema, &["replay", "--no-progress", sample]);
    let with_cause = both(
        &env,
        &schema,
        &["replay", "--no-progress", sample, grants.to_str().unwrap()],
    );
    assert!(with_cause.iter().any(|a| a.get("cause").is_some()));
    // Classified data, and a read after the revoke (tests/data/still-readable).
    env.write(
        "classify.toml",
        "[[classify]]\ntables = [\"warehouse.users.*\"]\nlevel = \"restricted\"\n",
    );
    let still = [
        repo("tests/data/still-readable/permissions.jsonl"),
        repo("tests/data/still-readable/after.jsonl"),
    ];
    let classified = both(
        &env,
        &schema,
        &[
            "replay",
            "--no-progress",
            "--config",
            "classify.toml",
            sample,
            grants.to_str().unwrap(),
            still[0].to_str().unwrap(),
            still[1].to_str().unwrap(),
        ],
    );
    assert!(classified.iter().all(|a| a["sensitivity"] == "restricted"));
    assert!(classified.iter().any(|a| a["status"] == "still_readable"));

    env.write(
        "perm.toml",
        "[detect]\nlearn = \"1d\"\nmin_principals = 3\n",
    );
    let mut statuses = std::collections::BTreeSet::new();
    for (format, file) in [
        ("cloudtrail", "cloudtrail.jsonl"),
        ("gcp-audit", "gcp-audit.jsonl"),
        ("snowflake", "snowflake.jsonl"),
        ("databricks", "databricks.jsonl"),
    ] {
        let path = repo(&format!("tests/data/permissions/{file}"));
        let args = [
            "replay",
            "--config",
            "perm.toml",
            "--format",
            format,
            path.to_str().unwrap(),
        ];
        for alert in both(&env, &schema, &args) {
            statuses.insert(alert["status"].as_str().unwrap().to_string());
        }
    }
    assert!(statuses.contains("grant"), "{statuses:?}");

    let mut log = Vec::new();
    crate::golden::synth::write_jsonl(crate::golden::synth::Shape::new(200_000), &mut log).unwrap();
    env.write("synth.jsonl", &log);
    let generated = both(
        &env,
        &schema,
        &["replay", "--no-progress", "--updates", "synth.jsonl"],
    );
    for status in ["open", "update", "closed"] {
        assert!(generated.iter().any(|a| a["status"] == status), "{status}");
    }
}

#[test]
fn the_validator_finds_what_breaks_the_schema() {
    let env = TestEnv::new();
    let schema = Schema::load();
    let sample = repo("sample-logs/incident.jsonl");
    let run = env.run(&["replay", "--output", "ocsf", sample.to_str().unwrap()]);
    let finding = &run.alerts()[0];
    assert!(schema.validate(finding).is_empty());
    let broken = |change: &dyn Fn(&mut Map<String, Value>)| {
        let mut finding = finding.clone();
        change(finding.as_object_mut().unwrap());
        schema.validate(&finding).join("\n")
    };
    assert!(
        broken(&|f| {
            f.remove("finding_info");
        })
        .contains(".finding_info: required, missing")
    );
    assert!(
        broken(&|f| {
            f.insert("severity_id".into(), 7.into());
        })
        .contains("7 is not one of")
    );
    assert!(
        broken(&|f| {
            f.insert("time".into(), "now".into());
        })
        .contains("is not a timestamp_t")
    );
    assert!(
        broken(&|f| {
            f.insert("made_up".into(), 1.into());
        })
        .contains(".made_up: not an attribute")
    );
    assert!(
        broken(&|f| {
            f["finding_info"]["analytic"] = serde_json::json!({"type_id": 2});
        })
        .contains("needs one of")
    );
    assert!(
        broken(&|f| {
            f.insert("type_uid".into(), 200409.into());
        })
        .contains("type_uid")
    );
    assert!(
        broken(&|f| {
            f.insert("severity".into(), "Low".into());
        })
        .contains("severity")
    );
}

#[test]
fn a_watch_sink_writes_ocsf_and_watch_output_ocsf_writes_it_to_stdout() {
    let env = TestEnv::new();
    let schema = Schema::load();
    let sample = std::fs::read(repo("sample-logs/incident.jsonl")).unwrap();
    env.write(
        "sink.toml",
        "[[sinks]]\nkind = \"jsonl\"\npath = \"findings.jsonl\"\nformat = \"ocsf\"\n",
    );
    let run = env.run_with_stdin(
        &["watch", "--config", "sink.toml", "--state-dir", "s1", "-"],
        &sample,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let written = std::fs::read_to_string(env.path("findings.jsonl")).unwrap();
    let stdout = env.run_with_stdin(
        &["watch", "--output", "ocsf", "--state-dir", "s2", "-"],
        &sample,
    );
    assert_eq!(stdout.code, 0, "{}", stdout.stderr);
    assert_eq!(
        written, stdout.stdout,
        "the sink and stdout write the same findings"
    );
    let replayed = env.run(&[
        "replay",
        "--output",
        "ocsf",
        repo("sample-logs/incident.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(written, replayed.stdout, "watch gives what replay gives");
    for line in written.lines() {
        let finding: Value = serde_json::from_str(line).unwrap();
        assert!(schema.validate(&finding).is_empty(), "{line}");
    }
    let both = env.run(&[
        "watch",
        "--config",
        "sink.toml",
        "--output",
        "ocsf",
        "--state-dir",
        "s3",
        "-",
    ]);
    both.expect(2, "give each sink its own `format`");
}
