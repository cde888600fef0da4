//! `replay --shard K/N` and `exposure merge`: for N = 1, 2, 3 and 7, the shards' alerts merged
//! are the unsharded run's, byte for byte and in its order, on a generated set shaped as
//! companies have it — 120 tables in 10 schemas, three regional exports per day given in no
//! particular order and a little out of order inside, exposures with and without a grant
//! before them (on the table or on its schema, some revoked), decoys below the threshold —
//! from JSON lines and from a Parquet archive, with `--updates`, and with `--from`.

use crate::TestEnv;
use crate::util::Lcg;
use serde_json::Value;

const T0: i64 = 1_772_409_600; // 2026-03-02T00:00:00Z
const DAY: i64 = 86_400;

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn read(ms: i64, principal: &str, table: &str) -> String {
    format!(
        r#"{{"ts":"{}","principal":"{principal}","table":"{table}","action":"SELECT"}}"#,
        rfc3339(ms)
    )
}

fn change(ms: i64, verb: &str, object: &str) -> String {
    let to = if verb == "GRANT" { "TO" } else { "FROM" };
    format!(
        r#"{{"ts":"{}","principal":"dba","table":"{object}","action":"{verb}","grantee":"PUBLIC","privilege":"SELECT","statement":"{verb} SELECT ON {object} {to} PUBLIC"}}"#,
        rfc3339(ms)
    )
}

/// Four days of logs as (file name, lines): per day, one export per region.
pub fn exports() -> Vec<(String, Vec<String>)> {
    let mut rng = Lcg(17);
    let schemas: Vec<String> = (0..10).map(|s| format!("wh.s{s}")).collect();
    let tables: Vec<String> = schemas
        .iter()
        .flat_map(|s| (0..12).map(move |t| format!("{s}.t{t}")))
        .collect();
    let mut events: Vec<(i64, String)> = Vec::new();
    for table in &tables {
        let readers: Vec<String> = (0..12).map(|_| format!("u{}", rng.below(300))).collect();
        for _ in 0..250 {
            let ts = T0 * 1000 + rng.below(4 * DAY as u64 * 1000) as i64;
            let who = &readers[rng.below(12) as usize];
            events.push((ts, read(ts, who, table)));
        }
    }
    for e in 0..70u64 {
        let table = &tables[rng.below(tables.len() as u64) as usize];
        let start = (T0 + DAY + DAY / 2) * 1000 + rng.below(2 * DAY as u64 * 1000) as i64;
        // Decoys: one or two new readers only.
        let readers = if e % 5 == 0 {
            1 + rng.below(2)
        } else {
            3 + rng.below(8)
        };
        if e % 3 == 0 {
            let object = if e % 2 == 0 {
                table.rsplit_once('.').unwrap().0.to_string()
            } else {
                table.clone()
            };
            events.push((start - 300_000, change(start - 300_000, "GRANT", &object)));
            if e % 4 != 3 {
                let revoke = start + 2_400_000;
                events.push((revoke, change(revoke, "REVOKE", &object)));
            }
        }
        for _ in 0..readers {
            let who = format!("x{}", rng.below(5000));
            for _ in 0..1 + rng.below(5) {
                let ts = start + rng.below(1_800_000) as i64;
                events.push((ts, read(ts, &who, table)));
            }
        }
    }
    events.sort();
    let mut files: Vec<(String, Vec<String>)> = Vec::new();
    for day in 0..4 {
        for region in ["eu", "us", "ap"] {
            files.push((format!("logs/dt={day}/{region}.jsonl"), Vec::new()));
        }
    }
    for (ts, line) in events {
        let day = ((ts / 1000 - T0) / DAY).clamp(0, 3) as usize;
        let region = (rng.below(3)) as usize;
        files[day * 3 + region].1.push(line);
    }
    // A little out of order inside each export (neighbours swapped, well within lateness).
    for (_, lines) in &mut files {
        for i in (1..lines.len()).step_by(7) {
            lines.swap(i - 1, i);
        }
    }
    // Exports listed in no particular order.
    files.reverse();
    files.swap(1, 7);
    files
}

/// The data set's detection settings (shared by the object-storage tests).
pub const DETECT: &[&str] = &[
    "--learn",
    "1d",
    "--span",
    "10m",
    "--close-after",
    "15m",
    "--min-principals",
    "3",
    "--no-progress",
];

/// `exposure replay` with the data set's settings, `extra` flags and `inputs`: its stdout.
fn replay(env: &TestEnv, extra: &[&str], inputs: &[String]) -> String {
    let mut args = vec!["replay"];
    args.extend_from_slice(DETECT);
    args.extend_from_slice(extra);
    args.extend(inputs.iter().map(String::as_str));
    let run = env.run(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
}

/// Each shard of `n` replayed to its own file, then `exposure merge`d: its output.
fn sharded(env: &TestEnv, n: u32, extra: &[&str], inputs: &[String]) -> String {
    let mut files = Vec::new();
    for k in 1..=n {
        let shard = format!("{k}/{n}");
        let mut flags = extra.to_vec();
        flags.extend(["--shard", shard.as_str()]);
        let name = format!("shard-{k}-of-{n}.jsonl");
        env.write(&name, replay(env, &flags, inputs));
        files.push(name);
    }
    // Given in reverse: the order of the inputs does not matter.
    files.reverse();
    let out = format!("merged-{n}.jsonl");
    let mut args = vec!["merge", "--out", out.as_str()];
    args.extend(files.iter().map(String::as_str));
    let run = env.run(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::read_to_string(env.path(&out)).unwrap()
}

/// Writes [`exports`] into `env`: their names, in the order given.
pub fn write_exports(env: &TestEnv) -> Vec<String> {
    let mut inputs = Vec::new();
    for (name, lines) in exports() {
        env.write(&name, lines.join("\n") + "\n");
        inputs.push(name);
    }
    inputs
}

fn statuses(alerts: &str) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for line in alerts.lines() {
        let alert: Value = serde_json::from_str(line).unwrap();
        let mut status = alert["status"].as_str().unwrap().to_string();
        if alert.get("exposed_until").is_some() {
            status.push_str("+reverted");
        }
        *counts.entry(status).or_insert(0) += 1;
    }
    counts
}

#[test]
fn merged_shards_are_the_unsharded_run_byte_for_byte() {
    let env = TestEnv::new();
    let inputs = write_exports(&env);
    let whole = replay(&env, &["--updates"], &inputs);
    // Not a vacuous comparison: every kind of alert is there, many times.
    let counts = statuses(&whole);
    for (status, at_least) in [
        ("open", 30),
        ("closed", 30),
        ("update", 5),
        ("grant", 10),
        ("closed+reverted", 3),
    ] {
        let n = counts.get(status).copied().unwrap_or(0);
        assert!(n >= at_least, "{n} {status} alerts: {counts:?}");
    }
    for n in [1, 2, 3, 7] {
        let merged = sharded(&env, n, &["--updates"], &inputs);
        assert!(
            merged == whole,
            "{n} shards merged differ from the unsharded run"
        );
    }
    // --from holds a window's earlier alerts until its first one after it.
    let from = ["--from", "2026-03-04T06:00:00Z"];
    let whole_from = replay(&env, &from, &inputs);
    assert!(whole_from.len() < whole.len() && !whole_from.is_empty());
    for n in [3, 7] {
        assert!(
            sharded(&env, n, &from, &inputs) == whole_from,
            "{n} shards with --from"
        );
    }
}

#[test]
fn shards_of_a_parquet_archive_merge_to_its_unsharded_run() {
    let env = TestEnv::new();
    let inputs = write_exports(&env);
    let mut args = vec!["archive", "--out", "archive"];
    args.extend(inputs.iter().map(String::as_str));
    let run = env.run(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let archive = vec!["archive".to_string()];
    let whole = replay(&env, &[], &archive);
    assert_eq!(
        whole,
        replay(&env, &[], &inputs),
        "the archive replays as its logs"
    );
    for n in [2, 7] {
        assert!(
            sharded(&env, n, &[], &archive) == whole,
            "{n} shards of the archive"
        );
    }
}

#[test]
fn a_bad_shard_or_a_bad_alert_line_is_refused_with_what_and_where() {
    let env = TestEnv::new();
    env.write("a.jsonl", read(T0 * 1000, "alice", "hr.salaries") + "\n");
    for bad in ["0/3", "4/3", "3", "x/y"] {
        env.run(&["replay", "--shard", bad, "a.jsonl"])
            .expect(2, "expected K/N with 1 <= K <= N");
    }
    env.write("plain.jsonl", "{\"status\": 1}\n");
    env.run(&["merge", "plain.jsonl"])
        .expect(1, "plain.jsonl: not the output of `replay --shard`");
    let run = env.run(&["replay", "--shard", "1/1", "--out", "one.jsonl", "a.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let framed = std::fs::read_to_string(env.path("one.jsonl")).unwrap();
    let (header, end) = framed.split_once('\n').unwrap();
    let end = end.replace("\"alerts\":0", "\"alerts\":1");
    env.write(
        "alerts.jsonl",
        format!("{header}\n{{\"status\": 1}}\n{end}"),
    );
    env.run(&["merge", "alerts.jsonl"])
        .expect(1, "alerts.jsonl:2: not an alert line");
    env.run(&["merge", "missing.jsonl"])
        .expect(1, "cannot read missing.jsonl");
}

/// Merge refuses every set of shard outputs that is not one whole run, naming the file: a
/// shard missing, repeated, empty (killed before it wrote anything), cut (killed mid-way, or
/// a line lost), run with other settings, over other inputs, or of another N.
#[test]
fn merge_refuses_shards_that_are_not_one_whole_run() {
    let env = TestEnv::new();
    let inputs = write_exports(&env);
    let shard = |k: u32, n: u32, extra: &[&str], name: &str| {
        let spec = format!("{k}/{n}");
        let mut args = vec!["replay", "--shard", spec.as_str(), "--out", name];
        args.extend(extra);
        args.extend(inputs.iter().map(String::as_str));
        let run = env.run(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
    };
    shard(1, 3, &[], "s1.jsonl");
    shard(2, 3, &[], "s2.jsonl");
    shard(3, 3, &[], "s3.jsonl");
    let merge = |files: &[&str]| env.run(&[&["merge"][..], files].concat());
    let whole = merge(&["s1.jsonl", "s2.jsonl", "s3.jsonl"]);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    assert!(whole.stdout.lines().count() > 20, "{}", whole.stdout);
    assert!(
        !whole.stdout.contains("exposure_shard"),
        "framing is not merged"
    );

    merge(&["s1.jsonl", "s3.jsonl"]).expect(1, "shard 2/3 missing");
    merge(&["s1.jsonl", "s2.jsonl", "s1.jsonl", "s3.jsonl"])
        .expect(1, "shard 1/3 is given twice: s1.jsonl and s1.jsonl");
    shard(2, 3, &["--min-principals", "5"], "s2-other.jsonl");
    merge(&["s1.jsonl", "s2-other.jsonl", "s3.jsonl"]).expect(
        1,
        "s2-other.jsonl was run with other settings than s1.jsonl",
    );
    shard(2, 4, &[], "s2-of-4.jsonl");
    merge(&["s1.jsonl", "s2-of-4.jsonl", "s3.jsonl"])
        .expect(1, "s2-of-4.jsonl was run with another shard count");
    // The 0-byte file a killed shard leaves when its output is a fifo or a device, or a
    // file truncated by hand.
    env.write("empty.jsonl", "");
    merge(&["s1.jsonl", "empty.jsonl", "s3.jsonl"]).expect(1, "empty.jsonl: empty");
    // Killed mid-way (no end record), or a line lost.
    let text = std::fs::read_to_string(env.path("s2.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    env.write("cut.jsonl", lines[..lines.len() - 1].join("\n") + "\n");
    merge(&["s1.jsonl", "cut.jsonl", "s3.jsonl"]).expect(1, "cut.jsonl: incomplete");
    let mut lost = lines.clone();
    lost.remove(1);
    env.write("lost.jsonl", lost.join("\n") + "\n");
    merge(&["s1.jsonl", "lost.jsonl", "s3.jsonl"]).expect(1, "lost.jsonl: says it holds");
    // Other inputs: one export left out.
    let mut args = vec!["replay", "--shard", "2/3", "--out", "fewer.jsonl"];
    args.extend(inputs[1..].iter().map(String::as_str));
    assert_eq!(env.run(&args).code, 0);
    merge(&["s1.jsonl", "fewer.jsonl", "s3.jsonl"])
        .expect(1, "fewer.jsonl was run over other inputs than s1.jsonl");
}
